//! Keeps a short SQLite command on one CPU (Linux, best effort).
//!
//! sqlx runs each SQLite connection on a thread of its own, and every statement is a hand-off
//! to that thread and back. When the two threads sit on different CPUs, each hand-off wakes an
//! idle CPU, which on a virtual machine is a trip through the hypervisor: a `SELECT 1` through
//! sqlx took 270-340 us on two CPUs and 14-18 us on one (2026-12-03, 2 vCPUs), and `sign` on a
//! 1k-event ledger had p50 8.4-10.7 ms pinned against 11.5-17.2 ms free. Measured again without
//! it on 2026-12-05 (`./bench/run --quick --only sign`, a machine at load 5 to 9 on 2 cores):
//! p50 12.0 ms at 1k events and 12.4 ms at 100k, above the 10 ms target, so it stays; pinned
//! and free calls interleaved in one run (under heavier load) gave p50 29.6 against 35.7 ms and
//! p95 43 against 56 ms at 1k events.
//! PostgreSQL talks over a socket from the runtime's own thread: nothing to keep together.

use super::Command;

/// Pins the process (before any thread starts) to the CPU it runs on, when the command is a
/// short one-task command on a SQLite database. Returns whether it pinned.
pub(super) fn keep_short_sqlite_command_on_one_cpu(command: &Command, db: &str) -> bool {
    db.starts_with("sqlite:") && is_one_task(command) && keep_on_this_cpu()
}

/// Short commands that run as one task, spawning no threads of their own: a few statements,
/// each a hand-off to sqlx's SQLite connection thread and back, so the two threads mostly
/// take turns. Not `verify`, `consistency` and `demo` (they check signatures on every core),
/// nor `export`, `prove` and `rebuild`: they stream the whole ledger, and there the
/// connection thread reading rows and the command using them do overlap.
fn is_one_task(command: &Command) -> bool {
    matches!(
        command,
        Command::Init(_)
            | Command::Propose(_)
            | Command::Sign(_)
            | Command::Reject(_)
            | Command::Withdraw(_)
            | Command::Inbox(_)
            | Command::Show(_)
            | Command::List(_)
            | Command::Request(_)
            | Command::Attach(_)
            | Command::Governance(_)
    )
}

/// Keeps the process, and the threads it starts later, on the CPU it is running on. When the
/// kernel refuses (`false`), nothing changes and the command runs as before.
fn keep_on_this_cpu() -> bool {
    #[cfg(target_os = "linux")]
    // SAFETY: `cpu_set_t` is plain data, zeroed is its empty set; `sched_getcpu` and
    // `sched_setaffinity` (pid 0: this thread, before any other exists) only read and write it,
    // and the index is checked against the set's size in bits first.
    unsafe {
        let cpu = libc::sched_getcpu();
        let bits = 8 * std::mem::size_of::<libc::cpu_set_t>();
        if cpu < 0 || cpu as usize >= bits {
            return false;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
    #[cfg(not(target_os = "linux"))]
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn command(args: &[&str]) -> Command {
        let mut line = vec!["rollbook"];
        line.extend_from_slice(args);
        super::super::Cli::try_parse_from(line)
            .expect("a valid command line")
            .command
    }

    #[test]
    fn only_short_one_task_commands_are_kept_on_one_cpu() {
        for line in [
            &["verify"][..],
            &["verify", "audit.jsonl"],
            &["consistency", "a.jsonl", "b.jsonl"],
            &["demo"],
            &["export", "--out", "a.jsonl"],
            &["prove", "01a2", "--out", "p.json"],
            &["rebuild"],
        ] {
            assert!(!is_one_task(&command(line)), "{line:?}");
        }
        for line in [
            &["sign", "01a2", "--key", "k"][..],
            &["propose", "roll.toml", "--key", "k"],
            &["list"],
            &["reject", "01a2", "--key", "k", "--reason", "r"],
        ] {
            assert!(is_one_task(&command(line)), "{line:?}");
            // PostgreSQL has no connection thread to keep close: never pinned (and a SQLite
            // URL is not tried here, it would pin the test's thread).
            assert!(!keep_short_sqlite_command_on_one_cpu(
                &command(line),
                "postgres://root@127.0.0.1/test"
            ));
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn keeping_on_this_cpu_leaves_exactly_one_cpu_allowed() {
        // On a thread of its own: affinity is per thread, and the test harness's threads must
        // keep theirs.
        std::thread::spawn(|| {
            if !keep_on_this_cpu() {
                // Some sandboxes refuse affinity changes (the command then runs unpinned); CI's
                // machine does not, so there a refusal is a failure, not a skip.
                assert!(
                    std::env::var_os("CI").is_none(),
                    "keep_on_this_cpu did not pin the thread"
                );
                eprintln!("sched_setaffinity refused here: nothing to check");
                return;
            }
            // SAFETY: plain data; the kernel fills the set.
            let (allowed, cpu, on_it) = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                let size = std::mem::size_of::<libc::cpu_set_t>();
                assert_eq!(libc::sched_getaffinity(0, size, &mut set), 0);
                let cpu = libc::sched_getcpu();
                (
                    libc::CPU_COUNT(&set),
                    cpu,
                    libc::CPU_ISSET(cpu as usize, &set),
                )
            };
            assert_eq!(allowed, 1);
            assert!(
                on_it,
                "the one CPU left is not the one the thread runs on ({cpu})"
            );
        })
        .join()
        .expect("the pinned thread");
    }
}
