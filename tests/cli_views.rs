//! What signers and reviewers read (issue 23): `list` newest first in columns, reading only the
//! window it shows; through the real binary on SQLite and PostgreSQL.

mod common;

use std::ops::Deref;
use std::path::PathBuf;

use common::desk::{roll_dated_now, text, CliDesk};
use common::TestDb;
use rollbook::sizing::Proposal;

/// The views tests' desk: a `CliDesk` that also proposes rolls and follows the ledger.
struct Desk<'a>(CliDesk<'a>);

impl<'a> Deref for Desk<'a> {
    type Target = CliDesk<'a>;
    fn deref(&self) -> &CliDesk<'a> {
        &self.0
    }
}

impl<'a> Desk<'a> {
    /// alice, bob and carol (keys from `rollbook keygen`), 2 of 3.
    fn new(db: &'a TestDb) -> Desk<'a> {
        let desk = Desk(CliDesk::new(db));
        let mut signers = String::from("threshold = 2\n");
        for name in ["alice", "bob", "carol"] {
            desk.keygen(name);
            signers.push_str(&format!(
                "[[signers]]\nname = \"{name}\"\npublic_key_file = \"{name}.key.pub\"\n"
            ));
        }
        std::fs::write(desk.path("signers.toml"), signers).unwrap();
        desk.ok(&[
            "init",
            "--signers",
            &desk.path("signers.toml"),
            "--key",
            &desk.key("alice"),
        ]);
        desk
    }

    /// A roll of `contracts` dated now with `note`, on a closed layer of its own.
    fn roll(&self, contracts: u32, note: &str) -> Proposal {
        let mut proposal = roll_dated_now(contracts);
        proposal.roll.note = note.into();
        common::own_layer(&mut proposal);
        proposal
    }

    /// Records `roll` proposed by bob; its id.
    fn propose(&self, roll: &Proposal) -> String {
        let file = self.path(&format!("{}.toml", uuid::Uuid::now_v7().simple()));
        std::fs::write(&file, roll.to_toml_string()).unwrap();
        self.json(&["propose", &file, "--key", &self.key("bob")])["proposal_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn ids(&self, args: &[&str]) -> Vec<String> {
        self.json(args)
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["proposal_id"].as_str().unwrap().to_string())
            .collect()
    }
}

both_backends!(
    list_shows_the_newest_first_in_columns,
    list_compares_the_window_it_shows_with_the_database,
    ids_are_taken_whole_by_their_short_id_or_a_unique_prefix,
    show_prints_what_sign_shows_before_signing,
    an_existing_file_is_replaced_only_with_force,
    watch_reports_what_concerns_the_signer,
    watch_connects_again_after_the_database_drops_it,
);

async fn list_shows_the_newest_first_in_columns(db: &TestDb) {
    let desk = Desk::new(db);
    let long_note = "a quarterly roll into the next layer, sized down because the desk expects a quieter month and the budget is half drawn";
    let oldest = desk.propose(&desk.roll(9, "first roll"));
    let vetoed = desk.propose(&desk.roll(7, long_note));
    let signed = desk.roll(9, "signed roll");
    let committed = desk.propose(&signed);
    desk.ok(&[
        "reject",
        &vetoed,
        "--key",
        &desk.key("carol"),
        "--reason",
        "stale",
    ]);
    desk.ok(&["sign", &committed, "--key", &desk.key("alice")]);
    desk.ok(&["sign", &committed, "--key", &desk.key("carol")]);

    assert_eq!(
        desk.ids(&["list"]),
        [committed.as_str(), vetoed.as_str(), oldest.as_str()]
    );
    assert_eq!(
        desk.ids(&["list", "--limit", "2"]),
        [committed.as_str(), vetoed.as_str()]
    );
    assert_eq!(
        desk.ids(&["list", "--status", "committed"]),
        [committed.as_str()]
    );
    assert_eq!(
        desk.ids(&["list", "--status", "rejected"]),
        [vetoed.as_str()]
    );
    assert_eq!(
        desk.ids(&["list", "--status", "pending", "--limit", "5"]),
        [oldest.as_str()]
    );
    assert!(desk.ids(&["list", "--status", "expired"]).is_empty());
    assert!(desk.ids(&["list", "--since", "2999-01-01"]).is_empty());
    assert_eq!(
        desk.ids(&["list", "--since", "2000-01-01T00:00:00Z"]).len(),
        3
    );
    desk.fails(&["list", "--since", "yesterday"], 2, "--since");
    desk.fails(&["list", "--status", "open"], 2, "--status");
    let listed = desk.json(&["list", "--limit", "1"]);
    assert_eq!(listed[0]["short_id"], committed[committed.len() - 12..]);

    // Columns: short id, kind, status, verdict, proposer, date, k/K, contracts, outlay, note.
    let mut columns = desk.command();
    columns.env("COLUMNS", "120");
    let out = desk.run_command(columns, &["list"]);
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    for header in [
        "id",
        "kind",
        "status",
        "verdict",
        "proposer",
        "signed",
        "contracts",
        "outlay USD",
        "note",
    ] {
        assert!(lines[0].contains(header), "{table}");
    }
    assert!(
        lines.iter().all(|line| line.chars().count() <= 120),
        "{table}"
    );
    let row = lines[1];
    assert!(
        row.starts_with(&committed[committed.len() - 12..]),
        "{table}"
    );
    assert!(
        !row.contains(&committed[..8]),
        "the time part is not shown: {table}"
    );
    let outlay = rollbook::sizing::render::usd(signed.requested_outlay_usd());
    for cell in [
        "roll",
        "committed",
        "pass",
        "bob",
        "2/2",
        "9",
        outlay.as_str(),
        "signed roll",
    ] {
        assert!(row.contains(cell), "{cell:?} missing from {row:?}");
    }
    assert!(
        lines[2].contains("rejected") && lines[2].contains("0/2"),
        "{table}"
    );
    assert!(lines[2].ends_with('…'), "the long note is cut: {table}");
    // In a pipe nothing is cut.
    assert!(desk.ok(&["list"]).contains(long_note));
}

/// `list --limit N` compares the rows it shows with the database, and reads no others.
async fn list_compares_the_window_it_shows_with_the_database(db: &TestDb) {
    let desk = Desk::new(db);
    let oldest = desk.propose(&desk.roll(9, "oldest"));
    let newest = desk.propose(&desk.roll(9, "newest"));
    desk.ok(&["list"]);
    db.raw_execute(&format!(
        "DELETE FROM proposals WHERE proposal_id = '{oldest}'"
    ))
    .await
    .unwrap();
    assert_eq!(desk.ids(&["list", "--limit", "1"]), [newest.as_str()]);
    desk.fails(&["list"], 1, &format!("{oldest} (pending, verified at seq"));
    desk.ok(&["rebuild"]);
    db.raw_execute(&format!(
        "UPDATE proposals SET status = 'committed' WHERE proposal_id = '{newest}'"
    ))
    .await
    .unwrap();
    desk.fails(&["list", "--limit", "1"], 1, &newest);
}

/// Every command taking an id takes the whole id, the short id or a unique prefix of 8 or more
/// characters, resolved against every proposal ever recorded; an ambiguous one is refused.
async fn ids_are_taken_whole_by_their_short_id_or_a_unique_prefix(db: &TestDb) {
    let desk = Desk::new(db);
    let vetoed = desk.propose(&desk.roll(9, "vetoed"));
    let id = desk.propose(&desk.roll(9, "to sign"));
    let short = &id[id.len() - 12..];
    desk.ok(&[
        "reject",
        &vetoed[vetoed.len() - 12..],
        "--key",
        &desk.key("carol"),
        "--reason",
        "no",
    ]);
    assert_eq!(desk.json(&["show", &vetoed])["status"], "rejected");
    assert_eq!(desk.json(&["show", short])["proposal_id"], id.as_str());
    assert_eq!(
        desk.json(&["show", &short.to_uppercase()])["proposal_id"],
        id.as_str()
    );

    // Both were made within the same minute or so: their ids share a prefix of the time.
    let common = id
        .chars()
        .zip(vetoed.chars())
        .take_while(|(a, b)| a == b)
        .count();
    if common >= 8 {
        let stderr = desk.fails(&["show", &id[..common]], 2, "ambiguous");
        assert!(stderr.contains(&id) && stderr.contains(&vetoed), "{stderr}");
        desk.fails(
            &["sign", &id[..common], "--key", &desk.key("alice")],
            2,
            "ambiguous",
        );
    }
    let unique = &id[..(common + 1).max(8)];
    assert_eq!(desk.json(&["show", unique])["proposal_id"], id.as_str());

    desk.fails(&["show", "ffffffffffff"], 2, "no proposal ffffffffffff");
    desk.fails(&["show", &id[..6]], 2, "at least 8 characters");
    desk.fails(&["show", "not-an-id"], 2, "is not a proposal id");

    let request = desk.path("req.json");
    desk.ok(&["request", short, "--out", &request]);
    let offline = [
        "sign",
        short,
        "--key",
        &desk.key("alice"),
        "--offline",
        "--request",
        &request,
        "--out",
        &desk.path("a.sig"),
    ];
    desk.ok(&offline);
    let wrong = [
        "sign",
        &vetoed[vetoed.len() - 12..],
        "--key",
        &desk.key("alice"),
        "--offline",
        "--request",
        &request,
    ];
    desk.fails(&wrong, 2, "the request is for proposal");
    desk.ok(&["attach", &desk.path("a.sig")]);
    desk.ok(&["sign", unique, "--key", &desk.key("carol")]);
    assert_eq!(desk.json(&["show", short])["status"], "committed");
    desk.ok(&["prove", short, "--out", &desk.path("proof.json")]);
}

/// `show` prints what a signer needs, in the layout `sign` shows before it signs; a closed
/// proposal says why and when it closed, and no longer when it expires.
async fn show_prints_what_sign_shows_before_signing(db: &TestDb) {
    let desk = Desk::new(db);
    let roll = desk.roll(9, "quarterly roll");
    let id = desk.propose(&roll);
    let shown = desk.ok(&["show", &id]);
    let layer = roll.closed_layer.id.clone().unwrap();
    for needle in [
        format!(
            "proposal {id} (short id {})  roll  [pending]",
            &id[id.len() - 12..]
        ),
        "  proposed by bob (SHA256:".to_string(),
        format!("  closed layer {layer}: "),
        "  next layer: 9 x VIX ".to_string(),
        "  window ".to_string(),
        "; market snapshot at ".to_string(),
        "  note: quarterly roll".to_string(),
        "  guardrails (policy v1):".to_string(),
        "    wacc ".to_string(),
        " bps  <= 18 bps ".to_string(),
        "  signatures: 0 of 2 needed".to_string(),
        "  may still sign: alice, carol".to_string(),
        "  expires ".to_string(),
        "  subject digest ".to_string(),
    ] {
        assert!(shown.contains(&needle), "{needle:?} missing:\n{shown}");
    }
    let out = desk.run(&["sign", &short(&id), "--key", &desk.key("alice")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let seen: Vec<&str> = stderr
        .lines()
        .skip_while(|l| *l != "signing:")
        .skip(1)
        .collect();
    // The same lines (the time left may have moved by a minute between the two commands).
    let without_expiry = |lines: Vec<&str>| -> Vec<String> {
        lines
            .into_iter()
            .filter(|l| !l.starts_with("  expires "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        without_expiry(seen),
        without_expiry(shown.lines().collect()),
        "{stderr}"
    );

    // An offline signer sees the roll's terms and every guardrail line as `show` does, from
    // the request's digested body and report.
    let request = desk.path("quarterly.req.json");
    desk.ok(&["request", &id, "--out", &request]);
    let offline = desk.run(&[
        "sign",
        &id,
        "--key",
        &desk.key("carol"),
        "--offline",
        "--request",
        &request,
        "--out",
        &desk.path("quarterly.sig.json"),
    ]);
    let offline = text(&offline.stderr);
    let terms_and_guardrails = shown
        .lines()
        .skip_while(|l| !l.starts_with("  closed layer "))
        .take_while(|l| !l.starts_with("  signatures: "))
        .collect::<Vec<_>>();
    assert!(terms_and_guardrails.len() > 8, "{shown}");
    for line in terms_and_guardrails {
        assert!(offline.contains(line), "offline lacks {line:?}:\n{offline}");
    }

    let after = desk.ok(&["show", &id]);
    assert!(
        after.contains("  signatures: 1 of 2 needed\n    alice (SHA256:"),
        "{after}"
    );
    assert!(after.contains("  may still sign: carol"), "{after}");
    desk.ok(&[
        "reject",
        &id,
        "--key",
        &desk.key("carol"),
        "--reason",
        "stale quotes",
    ]);
    let closed = desk.ok(&["show", &id]);
    assert!(closed.contains("  closed: vetoed by carol at "), "{closed}");
    assert!(closed.contains(": stale quotes"), "{closed}");
    assert!(
        !closed.contains("  expires "),
        "a closed proposal has no expiry line:\n{closed}"
    );
    assert!(!closed.contains("may still sign"), "{closed}");
}

/// `template`, `export`, `request`, `prove` and `sign --offline` refuse (exit 2) to replace a
/// file that exists, leaving it as it was, and replace it with `--force`.
async fn an_existing_file_is_replaced_only_with_force(db: &TestDb) {
    let desk = Desk::new(db);
    let id = desk.propose(&desk.roll(9, "to sign offline"));
    let request = desk.path("req.json");
    desk.ok(&["request", &id, "--out", &request]);
    let commands: Vec<(&str, Vec<String>)> = vec![
        ("template", vec!["template".into(), "--out".into()]),
        ("export", vec!["export".into(), "--out".into()]),
        (
            "csv",
            vec![
                "export".into(),
                "--format".into(),
                "csv".into(),
                "--out".into(),
            ],
        ),
        (
            "request",
            vec!["request".into(), id.clone(), "--out".into()],
        ),
        ("prove", vec!["prove".into(), id.clone(), "--out".into()]),
        (
            "sign",
            vec![
                "sign".into(),
                id.clone(),
                "--key".into(),
                desk.key("alice"),
                "--offline".into(),
                "--request".into(),
                request.clone(),
                "--out".into(),
            ],
        ),
    ];
    for (name, mut args) in commands {
        let file = desk.path(&format!("existing-{name}"));
        std::fs::write(&file, "kept\n").unwrap();
        args.push(file.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stderr = desk.fails(&args, 2, "exists; give --force to replace it");
        assert!(stderr.contains(&file), "{name}: {stderr}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "kept\n", "{name}");
        let mut forced = args.clone();
        forced.push("--force");
        desk.ok(&forced);
        let replaced = std::fs::read_to_string(&file).unwrap();
        assert!(replaced != "kept\n" && !replaced.is_empty(), "{name}");
    }
    // A new file needs no --force, and standard output is never "existing".
    desk.ok(&["template", "--out", &desk.path("new.toml")]);
    assert!(desk.ok(&["template", "--out", "-"]).contains("[roll]"));
    // The signature file made above is a valid one: attach records it.
    desk.ok(&["attach", &desk.path("existing-sign")]);
}

/// A `rollbook watch` running as a child process: its stdout lines arrive on a channel, its
/// stderr goes to a file (read when a test fails or checks what it said).
struct Watch {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: PathBuf,
}

/// How long a test waits for one event: a poll, a sync and the read, on a loaded machine.
const WATCH_EVENT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Desk<'_> {
    /// Starts `rollbook --db URL watch ARGS`, with `env` added.
    fn watch(&self, url: &str, args: &[&str], env: &[(&str, &str)]) -> Watch {
        let stderr = self
            .dir
            .join(format!("watch-{}.stderr", uuid::Uuid::now_v7().simple()));
        let mut command = common::rollbook_command();
        command
            .env("ROLLBOOK_STATE_DIR", self.db.state_dir())
            .env_remove("ROLLBOOK_DB")
            .args(["--db", url, "watch"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start rollbook watch");
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Watch {
            child,
            lines,
            stderr,
        }
    }
}

impl Watch {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The next line it printed (failing after `WATCH_EVENT_WAIT`).
    fn line(&mut self) -> String {
        match self.lines.recv_timeout(WATCH_EVENT_WAIT) {
            Ok(line) => line,
            Err(error) => panic!(
                "no event from watch ({error}; exit {:?}); its stderr:\n{}",
                self.child.try_wait(),
                self.stderr()
            ),
        }
    }

    fn event(&mut self) -> serde_json::Value {
        let line = self.line();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: not JSON: {e}"))
    }

    /// Waits for it to end by itself (`--count`): its exit code.
    fn ended(mut self) -> Option<i32> {
        let start = std::time::Instant::now();
        while start.elapsed() < WATCH_EVENT_WAIT {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("watch did not end; its stderr:\n{}", self.stderr());
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_event(event: &serde_json::Value, name: &str, id: &str) {
    assert_eq!(event["event"], name, "{event}");
    assert_eq!(event["proposal"]["proposal_id"], id, "{event}");
}

/// `watch` reports what concerns its key, read through the pin: what it may sign (those
/// waiting when it starts, then each new one), commits, vetoes, expiries soon; as JSON lines,
/// as text, or to a command with the event on stdin and nothing on its command line. It
/// never signs.
async fn watch_reports_what_concerns_the_signer(db: &TestDb) {
    let desk = Desk::new(db);
    let waiting = desk.propose(&desk.roll(9, "waiting before the watch"));
    let alice_pub = format!("{}.pub", desk.key("alice"));
    let mut watch = desk.watch(
        &db.url,
        &[
            "--key",
            &alice_pub,
            "--json",
            "--poll-ms",
            "100",
            "--expiry-warning-minutes",
            "0",
        ],
        &[],
    );
    assert_event(&watch.event(), "to_sign", &waiting);
    let fresh = desk.propose(&desk.roll(9, "after the watch started"));
    let event = watch.event();
    assert_event(&event, "to_sign", &fresh);
    assert_eq!(event["proposal"]["status"], "pending");
    assert!(event["seq"].as_u64().unwrap() > 0);
    desk.ok(&["sign", &fresh, "--key", &desk.key("alice")]);
    desk.ok(&["sign", &fresh, "--key", &desk.key("carol")]);
    let event = watch.event();
    assert_event(&event, "committed", &fresh);
    assert_eq!(event["proposal"]["status"], "committed");
    desk.ok(&[
        "reject",
        &waiting,
        "--key",
        &desk.key("carol"),
        "--reason",
        "stale",
    ]);
    let event = watch.event();
    assert_event(&event, "vetoed", &waiting);
    assert_eq!(event["proposal"]["rejected_by"], "carol");
    assert_eq!(event["proposal"]["reject_reason"], "stale");
    // It signed nothing: alice's one signature is the one given above.
    assert_eq!(
        desk.json(&["show", &fresh])["signatures"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    drop(watch);

    // Text, one line an event; --count ends it.
    let pending = desk.propose(&desk.roll(9, "to read as text"));
    let mut text_watch = desk.watch(&db.url, &["--key", &desk.key("alice"), "--count", "1"], &[]);
    let line = text_watch.line();
    assert!(
        line.starts_with("to sign ") && line.contains(&short(&pending)),
        "{line}"
    );
    assert_eq!(text_watch.ended(), Some(0));

    // --exec: the event on stdin, its name in ROLLBOOK_WATCH_EVENT; a veto reason written as
    // shell code stays text.
    let out = desk.path("events.jsonl");
    let pwned = desk.path("pwned");
    let exec = desk.watch(
        &db.url,
        &[
            "--key",
            &desk.key("alice"),
            "--exec",
            "cat >> \"$WATCH_OUT\"; echo \"$ROLLBOOK_WATCH_EVENT\" >> \"$WATCH_OUT.names\"",
            "--expiry-warning-minutes",
            "100000",
            "--poll-ms",
            "100",
            "--count",
            "3",
        ],
        &[("WATCH_OUT", &out)],
    );
    // to_sign and expires_soon come with the first read; wait for both before the veto.
    let start = std::time::Instant::now();
    while std::fs::read_to_string(format!("{out}.names"))
        .unwrap_or_default()
        .lines()
        .count()
        < 2
    {
        assert!(start.elapsed() < WATCH_EVENT_WAIT, "{}", exec.stderr());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let reason = format!("$(touch {pwned}) `touch {pwned}` \"; touch {pwned}");
    desk.ok(&[
        "reject",
        &pending,
        "--key",
        &desk.key("carol"),
        "--reason",
        &reason,
    ]);
    assert_eq!(exec.ended(), Some(0));
    let names = std::fs::read_to_string(format!("{out}.names")).unwrap();
    assert_eq!(names, "to_sign\nexpires_soon\nvetoed\n");
    let events: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(events.len(), 3);
    for event in &events {
        assert_eq!(event["proposal"]["proposal_id"], pending.as_str());
    }
    assert_eq!(events[2]["proposal"]["reject_reason"], reason.as_str());
    assert!(
        !std::path::Path::new(&pwned).exists(),
        "the reason ran as a command"
    );
}

/// `watch` outlives its connections: on PostgreSQL every connection it holds (the listener
/// and the pool's) is terminated by the server, as a restart does; it connects again and
/// reports what was appended meanwhile and after. (SQLite has no server to restart: the same
/// body checks that it keeps reading.)
async fn watch_connects_again_after_the_database_drops_it(db: &TestDb) {
    let desk = Desk::new(db);
    let application = format!("rbwatch_{}", uuid::Uuid::now_v7().simple());
    let url = if db.backend == "postgres" {
        format!("{}&application_name={application}", db.url)
    } else {
        db.url.clone()
    };
    let mut watch = desk.watch(
        &url,
        &["--key", &desk.key("alice"), "--json", "--poll-ms", "100"],
        &[],
    );
    let first = desk.propose(&desk.roll(9, "before the outage"));
    assert_event(&watch.event(), "to_sign", &first);
    if db.backend == "postgres" {
        let dropped = db
            .raw_rows(&format!(
                "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity WHERE application_name = '{application}'"
            ))
            .await;
        assert!(
            !dropped.is_empty(),
            "watch holds connections named {application}"
        );
        // Appended while it is disconnected: reported once it is back.
        let during = desk.propose(&desk.roll(9, "during the outage"));
        assert_event(&watch.event(), "to_sign", &during);
        let start = std::time::Instant::now();
        while !watch.stderr().contains("connecting again") {
            assert!(start.elapsed() < WATCH_EVENT_WAIT, "{}", watch.stderr());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let after = desk.propose(&desk.roll(9, "after the outage"));
    assert_event(&watch.event(), "to_sign", &after);
    desk.ok(&["sign", &after, "--key", &desk.key("alice")]);
    desk.ok(&["sign", &after, "--key", &desk.key("carol")]);
    assert_event(&watch.event(), "committed", &after);
}

fn short(id: &str) -> String {
    id[id.len() - 12..].to_string()
}

/// Every flag and argument of every command says what it is for, and every command has a line
/// of its own in `--help`: a walk of the one command tree that parses, helps and completes.
#[test]
fn every_flag_and_command_has_help_text() {
    fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let help = arg.get_help().or(arg.get_long_help());
            if help.is_none_or(|text| text.to_string().trim().is_empty()) {
                missing.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            let sub_path = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() {
                missing.push(format!("{sub_path} (the command itself)"));
            }
            walk(sub, &sub_path, missing);
        }
    }
    let mut command = rollbook::cli::command();
    command.build();
    let mut missing = vec![];
    walk(&command, "rollbook", &mut missing);
    assert!(missing.is_empty(), "without help text: {missing:#?}");
}

/// `--db` is offered only by commands that open a database (and still accepted before any).
#[test]
fn only_commands_that_use_a_database_show_db() {
    let help = |args: &[&str]| {
        let out = common::rollbook_command()
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    for without in [
        &["template"][..],
        &["keygen"],
        &["verify-proof"],
        &["consistency"],
        &["completions"],
        &["report"],
        &["vkey"],
        &["witness", "serve"],
        &["witness", "cosign"],
    ] {
        assert!(!help(without).contains("--db"), "{without:?}");
    }
    for with in [
        &["list"][..],
        &["show"],
        &["sign"],
        &["export"],
        &["verify"],
        &["governance", "show"],
        &["init"],
        &["checkpoint"],
    ] {
        assert!(help(with).contains("--db <DB>"), "{with:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = common::rollbook_command()
        .args(["--db", "sqlite:///nonexistent/x.db", "template", "--out"])
        .arg(dir.path().join("roll.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// `rollbook completions SHELL` prints a script for bash, zsh and fish naming the commands.
#[test]
fn completions_name_the_commands_in_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = common::rollbook_command()
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for name in [
            "list",
            "show",
            "sign",
            "verify-proof",
            "governance",
            "export",
            "watch",
            "completions",
        ] {
            assert!(script.contains(name), "{shell} script lacks {name}");
        }
        assert!(
            script.contains("--limit") || script.contains("-l limit"),
            "{shell}"
        );
    }
    // bash loads its script: the function is registered for rollbook.
    let script = common::rollbook_command()
        .args(["completions", "bash"])
        .output()
        .unwrap()
        .stdout;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), script).unwrap();
    let loaded = std::process::Command::new("bash")
        .arg("-c")
        .arg("source \"$1\" && complete -p rollbook")
        .arg("bash")
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        text(&loaded.stdout).contains("rollbook"),
        "{}",
        text(&loaded.stderr)
    );
    let out = common::rollbook_command()
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
