//! A desk for the CLI tests: the rollbook binary on one test database, its files (keys, signer
//! sets, proposals) in one directory, and the assertions every CLI test makes about a run.
//! What a desk holds (its keys, threshold, policy) is each test file's own setup.

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{Duration, TimeZone, Utc};
use rollbook::sizing::Proposal;

use super::TestDb;

const EXAMPLE: &str = include_str!("../vectors/example-proposal.toml");

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `program args` (openssl, ssh-keygen, ssh-add) with `env` added; it must succeed.
pub fn tool(program: &str, args: &[&str], env: &[(&str, &Path)]) {
    let mut command = Command::new(program);
    command.args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{program} is installed: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        text(&out.stderr)
    );
}

/// Runs `command` in a session of its own, with no controlling terminal: a passphrase is never
/// asked of whoever runs the tests, and a command that would ask fails instead.
pub fn without_terminal(command: &mut Command) -> &mut Command {
    // SAFETY: setsid is async-signal-safe, the one call made between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    command
}

/// The worked example (tests/vectors/example-proposal.toml) requesting `contracts`, moved so
/// that it was written ten minutes ago: inside its lifetime on the machine's clock.
pub fn roll_dated_now(contracts: u32) -> Proposal {
    let mut proposal = Proposal::from_toml_str(EXAMPLE).unwrap();
    let as_of = Utc.with_ymd_and_hms(2026, 5, 7, 14, 30, 0).unwrap();
    proposal.shift_times(Utc::now() - Duration::minutes(10) - as_of);
    proposal.set_contracts_requested(contracts);
    proposal
}

/// `out`, the run of `args`, exited with `code` and did not panic; its stdout and stderr.
#[track_caller]
pub fn assert_exit(args: &[&str], out: &Output, code: i32) -> (String, String) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (stdout, stderr)
}

/// `out` exited with `code`, did not panic and its stderr mentions `needle`; that stderr.
#[track_caller]
pub fn assert_failure(args: &[&str], out: &Output, code: i32, needle: &str) -> String {
    let (_, stderr) = assert_exit(args, out, code);
    assert!(
        stderr.contains(needle),
        "{args:?}: {stderr:?} does not mention {needle:?}"
    );
    stderr
}

pub struct CliDesk<'a> {
    pub db: &'a TestDb,
    /// Where the desk's files are: keys, signer sets, proposals, exports.
    pub dir: PathBuf,
    /// Added to every command's environment (an ssh-agent's socket, say).
    env: Vec<(String, OsString)>,
}

impl<'a> CliDesk<'a> {
    /// A desk whose files are in the database's temp dir.
    pub fn new(db: &'a TestDb) -> CliDesk<'a> {
        CliDesk::in_dir(db, db.dir.path())
    }

    /// A desk on `db` whose files are in `dir` (another desk's keys, say).
    pub fn in_dir(db: &'a TestDb, dir: &Path) -> CliDesk<'a> {
        CliDesk {
            db,
            dir: dir.to_path_buf(),
            env: Vec::new(),
        }
    }

    /// Every command of this desk runs with `name=value`.
    pub fn with_env(mut self, name: &str, value: impl Into<OsString>) -> CliDesk<'a> {
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The file `rollbook keygen --out` wrote for `name`.
    pub fn key(&self, name: &str) -> String {
        self.path(&format!("{name}.key"))
    }

    /// `rollbook keygen` for `name` (unencrypted, into `key(name)` and its `.pub`).
    pub fn keygen(&self, name: &str) {
        self.ok(&["keygen", "--no-passphrase", "--out", &self.key(name)]);
    }

    /// The rollbook binary on this desk's database, its pins in the database's state dir.
    pub fn command(&self) -> Command {
        let mut command = self.db.rollbook(&self.db.state_dir());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
    }

    pub fn run_command(&self, mut command: Command, args: &[&str]) -> Output {
        without_terminal(&mut command)
            .args(args)
            .output()
            .expect("run rollbook")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_command(self.command(), args)
    }

    /// Runs a command that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed ({:?}): {}",
            out.status.code(),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runs a command with `--json` that must succeed; its output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).unwrap_or_else(|e| panic!("{args:?}: not JSON: {e}"))
    }

    /// Runs a command that must exit with `code`; its stdout and stderr.
    #[track_caller]
    pub fn exits(&self, args: &[&str], code: i32) -> (String, String) {
        assert_exit(args, &self.run(args), code)
    }

    /// Runs a command that must exit with `code` and mention `needle`; its stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str], code: i32, needle: &str) -> String {
        assert_failure(args, &self.run(args), code, needle)
    }

    /// What the ledger is: its event count, head hash and Merkle root, as `verify` finds them.
    pub fn head(&self) -> (u64, String, String) {
        let verified = self.json(&["verify"]);
        assert_eq!(verified["valid"], true, "{verified}");
        (
            verified["events"].as_u64().unwrap(),
            verified["head_hash"].as_str().unwrap().to_string(),
            verified["merkle_root"].as_str().unwrap().to_string(),
        )
    }

    /// `command` with `args` must exit `code`, mention `needle`, and leave the ledger as it was.
    #[track_caller]
    pub fn refused_with(&self, command: Command, args: &[&str], code: i32, needle: &str) {
        let before = self.head();
        assert_failure(args, &self.run_command(command, args), code, needle);
        assert_eq!(self.head(), before, "{args:?} changed the ledger");
    }

    /// `args` must exit `code`, mention `needle`, and leave the ledger as it was.
    #[track_caller]
    pub fn refused(&self, args: &[&str], code: i32, needle: &str) {
        self.refused_with(self.command(), args, code, needle);
    }
}
