//! Client pins (issue 19, case 3 and "clients pin what they saw"), through the real binary on
//! both backends: each client verifies the ledger from its pin to the head before it decides or
//! shows anything, so a forged event, an edited projection, a rewritten or truncated history is
//! refused, and a crafted export never moves a pin.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::{Duration, TimeZone, Utc};
use common::{event_row_sql, sql_bytes, sql_text, TestDb};
use rollbook::domain::envelope::{NewEvent, StoredEvent};
use rollbook::domain::events::{Event, ProposalCommitted, SCHEMA_VERSION};
use rollbook::pin::{pinned, Pin};
use rollbook::store::Store;
use uuid::Uuid;

const EXAMPLE: &str = include_str!("vectors/example-proposal.toml");

/// Runs `sql` on `client`'s state file (damage or surgery a test needs).
async fn state_sql(file: &Path, sql: &str) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// Puts a state file back as it was saved before the auditor's state indexed the open
/// proposals (their rows alone say which are open): text surgery on the saved JSON.
async fn save_without_open_index(file: &Path) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let auditor = saved_auditor(&pool).await;
    let start = auditor
        .find(",\"open_index\":")
        .expect("the index is saved");
    let end =
        auditor.find("\"open_indexed\":true").expect("and marked") + "\"open_indexed\":true".len();
    let old = format!("{}{}", &auditor[..start], &auditor[end..]);
    assert!(!old.contains("open_index"), "{old}");
    save_auditor(&pool, old).await;
    pool.close().await;
}

/// The auditor's state saved with the pin, as text.
async fn saved_auditor(pool: &sqlx::SqlitePool) -> String {
    let (auditor,): (Vec<u8>,) = sqlx::query_as("SELECT auditor FROM pin")
        .fetch_one(pool)
        .await
        .unwrap();
    text(&auditor)
}

/// Replaces the auditor's state saved with the pin.
async fn save_auditor(pool: &sqlx::SqlitePool, auditor: String) {
    sqlx::query("UPDATE pin SET auditor = $1")
        .bind(auditor.into_bytes())
        .execute(pool)
        .await
        .unwrap();
}

/// A sync reads the saved state of the open proposals its new events name, no other: with the
/// row of another open proposal gone, signing this one still works; the other's next event
/// names it, and the client says its state file is damaged (not that the ledger is invalid).
async fn a_sync_loads_only_the_open_proposals_its_events_name(db: &TestDb) {
    let desk = Desk::new(db);
    let (first, second) = (desk.propose(), desk.propose());
    desk.ok("carol", &["list"]);
    let ledger = desk.events().await[0].ledger_id;
    let file = rollbook::pin::state_file(&desk.state("carol"), ledger);
    state_sql(
        &file,
        &format!("DELETE FROM open_proposals WHERE proposal_id = '{second}'"),
    )
    .await;
    desk.sign("alice", &first);
    desk.ok("carol", &["show", &first]);
    desk.sign("alice", &second);
    let out = desk.run("carol", &["show", &second]);
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("open proposal {second} has no saved row")),
        "{stderr}"
    );
    // What to do about it, and where: the file is this machine's cache of verified work.
    assert!(
        stderr.contains(&format!("the state file {}", file.display()))
            && stderr
                .contains("remove it, and the next command verifies the ledger again from genesis"),
        "{stderr}"
    );
    assert!(!stderr.contains("INVALID"), "{stderr}");
}

/// A state saved before the auditor's state indexed the open proposals resumes: its open
/// proposals are read from their rows, and the next sync saves the index.
async fn a_state_saved_before_the_open_index_still_resumes(db: &TestDb) {
    let desk = Desk::new(db);
    let (first, second) = (desk.propose(), desk.propose());
    desk.ok("carol", &["list"]);
    let ledger = desk.events().await[0].ledger_id;
    let file = rollbook::pin::state_file(&desk.state("carol"), ledger);
    save_without_open_index(&file).await;
    commit_both_and_resume(&desk, &file, &first, &second).await;
}

/// After a state-format surgery on carol's `file`: `first` commits and loses its row while
/// `second` keeps it; then `second` resumes from its row, commits, and the pin reaches the head.
async fn commit_both_and_resume(desk: &Desk<'_>, file: &Path, first: &str, second: &str) {
    desk.sign("alice", first);
    desk.sign("carol", first);
    let out = desk.ok("carol", &["list"]);
    assert!(out.contains("committed"), "{out}");
    assert_eq!(open_rows(file).await, [second]);
    desk.sign("alice", second);
    desk.sign("carol", second);
    desk.ok("carol", &["show", second]);
    assert_eq!(open_rows(file).await, Vec::<String>::new());
    let pin = desk.pin("carol").await.unwrap();
    assert_eq!(pin.seq, desk.events().await.len() as u64);
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A 2-of-3 desk (alice, bob, carol), each signer a client with a state directory of its own.
struct Desk<'a> {
    db: &'a TestDb,
}

impl Desk<'_> {
    fn new(db: &TestDb) -> Desk<'_> {
        let desk = Desk { db };
        for name in ["alice", "bob", "carol"] {
            let out = common::rollbook_command()
                .args([
                    "keygen",
                    "--no-passphrase",
                    "--out",
                    &desk.path(&format!("{name}.key")),
                ])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
        let signers: String = ["alice", "bob", "carol"]
            .iter()
            .map(|n| format!("[[signers]]\nname = \"{n}\"\npublic_key_file = \"{n}.key.pub\"\n"))
            .collect();
        std::fs::write(
            desk.path("signers.toml"),
            format!("threshold = 2\n{signers}"),
        )
        .unwrap();
        desk.ok(
            "alice",
            &[
                "init",
                "--signers",
                &desk.path("signers.toml"),
                "--key",
                &desk.path("alice.key"),
            ],
        );
        desk
    }

    fn path(&self, name: &str) -> String {
        self.db.dir.path().join(name).display().to_string()
    }

    /// The state directory of `client`'s machine.
    fn state(&self, client: &str) -> PathBuf {
        self.db.state_dir().join(client)
    }

    fn run(&self, client: &str, args: &[&str]) -> Output {
        self.db
            .rollbook(&self.state(client))
            .args(args)
            .output()
            .expect("run rollbook")
    }

    /// `client` runs `args` on `url` under `faketime -f OFFSET` (Debian's package, installed by
    /// `.ci/run`): a machine whose clock is that far off.
    fn faketime(&self, client: &str, offset: &str, url: &str, args: &[&str]) -> Output {
        std::process::Command::new("faketime")
            .args(["-f", offset, env!("CARGO_BIN_EXE_rollbook")])
            .env("ROLLBOOK_STATE_DIR", self.state(client))
            .env_remove("ROLLBOOK_DB")
            .args(["--db", url])
            .args(args)
            .output()
            .expect("faketime is installed (Debian package faketime)")
    }

    fn ok(&self, client: &str, args: &[&str]) -> String {
        let out = self.run(client, args);
        assert!(
            out.status.success(),
            "{client} {args:?} failed ({:?}): {}",
            out.status.code(),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `client` runs `args`, which must fail its check (exit 1) naming every one of `needles`.
    fn refused(&self, client: &str, args: &[&str], needles: &[&str]) -> String {
        let out = self.run(client, args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{client} {args:?}: {stderr}");
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "{client} {args:?}: {stderr:?} does not name {needle:?}"
            );
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }

    /// bob proposes a 9-contract roll dated now on a layer of its own; its id.
    fn propose(&self) -> String {
        self.propose_on(None, 9)
    }

    /// bob proposes a roll of `contracts` dated now, on `layer` (one set of numbers per id)
    /// or a layer of its own; its id.
    fn propose_on(&self, layer: Option<&str>, contracts: u32) -> String {
        let mut proposal = rollbook::sizing::Proposal::from_toml_str(EXAMPLE).unwrap();
        let as_of = Utc.with_ymd_and_hms(2026, 5, 7, 14, 30, 0).unwrap();
        proposal.shift_times(Utc::now() - Duration::minutes(10) - as_of);
        proposal.set_contracts_requested(contracts);
        match layer {
            Some(layer) => proposal.set_closed_layer(layer, 26.5),
            None => common::own_layer(&mut proposal),
        }
        let file = self.path(&format!("roll-{}.toml", Uuid::now_v7().simple()));
        std::fs::write(&file, proposal.to_toml_string()).unwrap();
        let out = self.ok(
            "bob",
            &["propose", &file, "--key", &self.path("bob.key"), "--json"],
        );
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["proposal_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn sign(&self, client: &str, id: &str) {
        self.ok(
            client,
            &["sign", id, "--key", &self.path(&format!("{client}.key"))],
        );
    }

    async fn events(&self) -> Vec<StoredEvent> {
        let store = Store::open(&self.db.url).await.unwrap();
        let ledger = store.ledger_ids().await.unwrap()[0];
        let mut events = Vec::new();
        store
            .for_each_event::<rollbook::store::StoreError>(ledger, 1, |event| {
                events.push(event);
                Ok(())
            })
            .await
            .unwrap();
        store.close().await;
        events
    }

    async fn pin(&self, client: &str) -> Option<Pin> {
        let ledger = self.events().await[0].ledger_id;
        pinned(&self.state(client), ledger).await.unwrap()
    }
}

/// `event` re-sealed at `seq` on `prev_hash`, its hash recomputed as a careful attacker would.
fn resealed(event: &StoredEvent, seq: u64, prev_hash: [u8; 32]) -> StoredEvent {
    let mut forged = event.clone();
    forged.seq = seq;
    forged.prev_hash = prev_hash;
    forged.hash = forged.computed_hash();
    forged
}

/// SQL that sets the head row to `event` (or to nothing, seq 0, when `None`).
fn head_sql(db: &TestDb, event: &StoredEvent) -> String {
    format!(
        "UPDATE ledgers SET head_seq = {}, head_hash = {}, head_recorded_at = {}",
        event.seq,
        sql_bytes(db, &event.hash),
        sql_text(&event.recorded_at)
    )
}

/// Rewrites history as an attacker with the database and every hash recomputed would: the
/// events from `from` on are replaced by `replacement` (each re-sealed onto the one before),
/// the head row follows, and the projection is rebuilt from the new events.
async fn rewrite(desk: &Desk<'_>, from: u64, replacement: &[StoredEvent]) -> Vec<StoredEvent> {
    let events = desk.events().await;
    let kept = &events[..from as usize - 1];
    let mut sql = vec![
        format!("DELETE FROM events WHERE seq >= {from}"),
        head_sql(desk.db, kept.last().unwrap()),
    ];
    let mut prev = kept.last().unwrap().hash;
    let mut written = Vec::new();
    for (offset, event) in replacement.iter().enumerate() {
        let moved = resealed(event, from + offset as u64, prev);
        prev = moved.hash;
        sql.push(event_row_sql(desk.db, "INSERT", &moved, ""));
        written.push(moved);
    }
    if let Some(last) = written.last() {
        sql.push(head_sql(desk.db, last));
    }
    desk.db.tamper(&sql.join(";\n")).await.unwrap();
    written
}

both_backends!(
    a_forged_commit_is_refused_by_every_view_and_every_honest_signer,
    deleted_added_or_edited_projection_rows_are_named,
    a_history_rewritten_with_every_hash_recomputed_is_refused_by_a_pin,
    a_truncated_ledger_is_refused_by_a_pin,
    a_fresh_client_verifies_from_genesis_once_then_only_what_is_new,
    concurrent_syncs_leave_one_consistent_pin,
    a_file_that_cannot_be_read_twice_is_not_compared_with_the_pin,
    an_edited_row_with_its_own_hash_recomputed_is_neither_exported_nor_proven,
    open_proposals_are_rows_and_a_state_saved_whole_still_resumes,
    a_sync_loads_only_the_open_proposals_its_events_name,
    a_state_saved_before_the_open_index_still_resumes,
    a_layer_row_removed_from_a_state_file_is_damage_not_an_unused_layer,
    a_clock_set_ahead_by_the_database_or_a_client_enters_no_pin,
    an_offline_signature_bound_to_a_replaced_row_is_not_attached,
    a_state_directory_or_file_another_user_could_write_is_refused,
);

/// An attacker's review (from the code): `attach` compared an offline signature's bound head
/// with the database's row at that seq. A DBA replaces an earlier row with another event whose
/// own hash is recomputed and hands a signer a request bound to it; the attach was written, and
/// every client's next sync refused it (A11): a wedged ledger. The head must be one this client
/// verified.
async fn an_offline_signature_bound_to_a_replaced_row_is_not_attached(db: &TestDb) {
    let desk = Desk::new(db);
    let roll = desk.propose();
    desk.propose(); // the head a request made now binds: another stream's event
    desk.propose(); // carol's pin lies past it
    desk.ok("carol", &["list"]);
    let events = desk.events().await;
    let bound = &events[events.len() - 2];
    let mut replaced = bound.clone();
    let at = rollbook::domain::envelope::parse_timestamp(&bound.recorded_at).unwrap();
    replaced.recorded_at =
        rollbook::domain::envelope::format_timestamp(at + Duration::microseconds(1));
    let replaced = resealed(&replaced, bound.seq, bound.prev_hash);
    let request = desk.path("req.json");
    desk.ok("alice", &["request", &roll, "--out", &request]);
    let mut forged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&request).unwrap()).unwrap();
    forged["head_seq"] = bound.seq.into();
    forged["head_hash"] = rollbook::crypto::to_hex(&replaced.hash).into();
    std::fs::write(&request, forged.to_string()).unwrap();
    let sig = desk.path("alice.sig.json");
    let key = desk.path("alice.key");
    desk.ok(
        "alice",
        &[
            "sign",
            &roll,
            "--key",
            &key,
            "--offline",
            "--request",
            &request,
            "--out",
            &sig,
        ],
    );
    db.tamper(&format!(
        "UPDATE events SET recorded_at = '{}', hash = {} WHERE seq = {}",
        replaced.recorded_at,
        sql_bytes(db, &replaced.hash),
        bound.seq
    ))
    .await
    .unwrap();
    let out = desk.run("carol", &["attach", &sig]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "binds the head at seq {} with hash {}, but this client verified {}",
            bound.seq,
            rollbook::crypto::to_hex(&replaced.hash),
            rollbook::crypto::to_hex(&bound.hash)
        )),
        "{stderr}"
    );
    assert_eq!(
        desk.events().await.len(),
        events.len(),
        "nothing was attached"
    );
}

/// An attacker's review, on PostgreSQL: a DBA made a `clock_timestamp()` of their own the
/// ledger's clock (first on the search path, 20 days ahead), so a signer running 20 days fast
/// wrote an event dated then; honest clients took it into their pins, and every honest write was
/// refused until that date. The server's clock is now read qualified, so the fast signer is
/// refused; and a client whose clock disagrees with the ledger's takes nothing new into its pin
/// (on SQLite the two clocks are one: what such a client refuses is an event in its future, T1).
async fn a_clock_set_ahead_by_the_database_or_a_client_enters_no_pin(db: &TestDb) {
    let desk = Desk::new(db);
    let roll = desk.propose();
    desk.ok("carol", &["list"]);
    let pinned_seq = desk.pin("carol").await.unwrap().seq;
    let head = desk.events().await.len();
    if let Some(schema) = &db.schema {
        db.raw_execute(&format!(
            "CREATE FUNCTION {schema}.clock_timestamp() RETURNS timestamptz LANGUAGE sql \
             AS $$ SELECT pg_catalog.clock_timestamp() + interval '20 days' $$"
        ))
        .await
        .unwrap();
        let shadowed = db.url.replace(
            &format!("search_path%3D{schema}"),
            &format!("search_path%3D{schema}%2Cpg_catalog"),
        );
        assert_ne!(shadowed, db.url);
        let key = desk.path("alice.key");
        let out = desk.faketime("alice", "+20d", &shadowed, &["sign", &roll, "--key", &key]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(
            stderr.contains("differs from the ledger's clock"),
            "{stderr}"
        );
    }
    assert_eq!(desk.events().await.len(), head, "nothing was written");
    desk.sign("alice", &roll);
    let out = desk.faketime("carol", "-20d", &db.url, &["list"]);
    let stderr = text(&out.stderr);
    let (code, needle) = match db.backend {
        "postgres" => (3, "nothing new was verified"),
        _ => (1, "(T1)"),
    };
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
    assert_eq!(desk.pin("carol").await.unwrap().seq, pinned_seq);
    desk.ok("carol", &["list"]);
    assert_eq!(desk.pin("carol").await.unwrap().seq, head as u64 + 1);
}

/// A closed layer's row removed from a state file (an attacker's review did it by hand) was read
/// as a layer never drawn on: `propose` drafted a second roll on a budget the ledger had already
/// spent, which every other client then refused, and another client's sync called the valid
/// ledger invalid. Both now say the state file is damaged (exit 4, naming it) and write nothing.
async fn a_layer_row_removed_from_a_state_file_is_damage_not_an_unused_layer(db: &TestDb) {
    let desk = Desk::new(db);
    let layer = "VIX-TEST-SHARED";
    desk.propose_on(Some(layer), 2);
    desk.ok("bob", &["list"]);
    desk.ok("carol", &["list"]);
    let ledger = desk.events().await[0].ledger_id;
    for client in ["bob", "carol"] {
        let file = rollbook::pin::state_file(&desk.state(client), ledger);
        state_sql(&file, "DELETE FROM layers").await;
    }
    let damaged = |out: Output, client: &str| {
        let stderr = text(&out.stderr);
        let file = rollbook::pin::state_file(&desk.state(client), ledger);
        assert_eq!(out.status.code(), Some(4), "{client}: {stderr}");
        assert!(
            stderr.contains(&format!("the state file {}", file.display()))
                && stderr.contains("rows were removed"),
            "{client}: {stderr}"
        );
        assert!(!stderr.contains("INVALID"), "{stderr}");
    };
    // The writer: nothing is appended.
    let before = desk.events().await.len();
    let mut roll = rollbook::sizing::Proposal::from_toml_str(EXAMPLE).unwrap();
    let as_of = Utc.with_ymd_and_hms(2026, 5, 7, 14, 30, 0).unwrap();
    roll.shift_times(Utc::now() - Duration::minutes(10) - as_of);
    roll.set_contracts_requested(2);
    roll.set_closed_layer(layer, 26.5);
    let file = desk.path("second.toml");
    std::fs::write(&file, roll.to_toml_string()).unwrap();
    damaged(
        desk.run("bob", &["propose", &file, "--key", &desk.path("bob.key")]),
        "bob",
    );
    assert_eq!(desk.events().await.len(), before, "nothing was written");
    // What the message says to do: without the file, bob verifies from genesis and drafts on
    // what the ledger really drew.
    std::fs::remove_file(rollbook::pin::state_file(&desk.state("bob"), ledger)).unwrap();
    desk.propose_on(Some(layer), 2);
    // A reader whose next events name that layer: damage, not an invalid ledger (which a
    // client with an intact file confirms).
    damaged(desk.run("carol", &["list"]), "carol");
    desk.ok("alice", &["list"]);
}

/// A commit edited in place (its threshold lowered) with only its own hash recomputed: the
/// pinned head is untouched, so a sync has nothing new to check, but `export` and `prove` of a
/// client holding the pin refuse the broken link instead of writing a file around the forged
/// row (review finding: both wrote one, and `verify-proof` called the proof VALID).
async fn an_edited_row_with_its_own_hash_recomputed_is_neither_exported_nor_proven(db: &TestDb) {
    let desk = Desk::new(db);
    let id = desk.propose();
    desk.sign("alice", &id);
    desk.sign("carol", &id);
    desk.propose();
    desk.ok("alice", &["list"]);
    let events = desk.events().await;
    let commit = events
        .iter()
        .find(|e| e.event_type == "proposal.committed")
        .unwrap();
    let mut edited = commit.clone();
    let payload = String::from_utf8(edited.payload.clone()).unwrap();
    assert!(payload.contains("\"threshold\":2"), "{payload}");
    edited.payload = payload
        .replace("\"threshold\":2", "\"threshold\":1")
        .into_bytes();
    let edited = resealed(&edited, commit.seq, commit.prev_hash);
    db.tamper(&format!(
        "UPDATE events SET payload = {}, hash = {} WHERE seq = {}",
        sql_bytes(db, &edited.payload),
        sql_bytes(db, &edited.hash),
        commit.seq
    ))
    .await
    .unwrap();
    let out = desk.path("e.jsonl");
    desk.refused(
        "alice",
        &["export", "--out", &out],
        &[&format!("seq {}", commit.seq + 1)],
    );
    assert!(!std::path::Path::new(&out).exists(), "no export file");
    let proof = desk.path("p.json");
    desk.refused("alice", &["prove", &id, "--out", &proof], &[&id]);
    assert!(!std::path::Path::new(&proof).exists(), "no proof file");
}

/// `verify FILE` reads the file once to verify it and again to find the pinned seq's event: a
/// pipe (or a path swapped between the two reads) could show the pin another file than the one
/// verified. Through a pipe the comparison is refused, never reported as extending the pin.
async fn a_file_that_cannot_be_read_twice_is_not_compared_with_the_pin(db: &TestDb) {
    let desk = Desk::new(db);
    desk.propose();
    desk.ok("alice", &["list"]);
    let genuine = desk.path("genuine.jsonl");
    desk.ok("alice", &["export", "--out", &genuine]);
    let fifo = desk.path("pipe.jsonl");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let (bytes, target) = (std::fs::read(&genuine).unwrap(), fifo.clone());
    // Detached: if verify never opens the pipe, the writer blocks until the test process ends.
    std::thread::spawn(move || std::fs::write(target, bytes));
    let out = desk.run("alice", &["verify", &fifo]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(!stdout.contains("extends the head"), "{stdout}");
    assert!(
        stderr.contains("second time") || stderr.contains("changed while"),
        "{stderr}"
    );
}

/// Case 3: a chain-correct `proposal.committed` with no signatures, written straight into the
/// database with its projection row: no view shows it and no honest client appends after it.
async fn a_forged_commit_is_refused_by_every_view_and_every_honest_signer(db: &TestDb) {
    let desk = Desk::new(db);
    let forged_roll = desk.propose();
    let other = desk.propose();
    desk.ok("alice", &["list"]);
    desk.ok("carol", &["inbox", "--key", &desk.path("carol.key")]);
    let events = desk.events().await;
    let head = events.last().unwrap();
    let commit = Event::ProposalCommitted(ProposalCommitted {
        proposal_id: forged_roll.clone(),
        counted_signers: Vec::new(),
        signer_set_version: 1,
        threshold: 2,
    });
    let forged = StoredEvent::seal(
        head.ledger_id,
        head.seq + 1,
        2,
        Uuid::now_v7(),
        Utc::now(),
        head.hash,
        NewEvent {
            stream_id: forged_roll.clone(),
            event_type: commit.event_type().into(),
            schema_version: SCHEMA_VERSION,
            actor: head.actor.clone(),
            payload: commit.to_payload(),
        },
    );
    db.raw_execute(&event_row_sql(db, "INSERT", &forged, ""))
        .await
        .unwrap();
    db.raw_execute(&format!(
        "UPDATE proposals SET status = 'committed', last_seq = {} WHERE proposal_id = '{forged_roll}'",
        forged.seq
    ))
    .await
    .unwrap();
    let seq = format!("seq {}", forged.seq);
    let rule = "without the K valid signatures";
    for client in ["alice", "a-fresh-machine"] {
        desk.refused(client, &["show", &forged_roll], &[&seq, rule]);
        desk.refused(client, &["list"], &[&seq, rule]);
        let csv = desk.path(&format!("{client}.csv"));
        desk.refused(
            client,
            &["export", "--format", "csv", "--out", &csv],
            &[&seq, rule],
        );
        assert!(!Path::new(&csv).exists(), "no CSV of a forged ledger");
    }
    // An honest signer of another proposal stops: nothing is appended after the forgery.
    desk.refused(
        "carol",
        &["sign", &other, "--key", &desk.path("carol.key")],
        &[&seq, rule, "nothing was written"],
    );
    assert_eq!(desk.events().await.len() as u64, forged.seq);
    // The pins stay at the last head their clients verified.
    assert_eq!(desk.pin("alice").await.unwrap().seq, head.seq);
    assert_eq!(desk.pin("carol").await.unwrap().seq, head.seq);
}

/// A projection row deleted, added or edited (status, signatures) is named by `list`, `inbox`
/// and the CSV; `rebuild` puts the verified rows back.
async fn deleted_added_or_edited_projection_rows_are_named(db: &TestDb) {
    let desk = Desk::new(db);
    let committed = desk.propose();
    desk.sign("alice", &committed);
    desk.sign("carol", &committed);
    let pending = desk.propose();
    let csv = desk.path("p.csv");
    let inbox = ["inbox", "--key", &desk.path("alice.key")];
    let views: [&[&str]; 3] = [
        &["list"],
        &inbox,
        &["export", "--format", "csv", "--out", &csv, "--force"],
    ];
    for view in views {
        desk.ok("alice", view);
    }

    // Deleted: the committed roll vanishes from `list` and the CSV.
    db.raw_execute(&format!(
        "DELETE FROM proposals WHERE proposal_id = '{committed}'"
    ))
    .await
    .unwrap();
    desk.refused("alice", &["list"], &[&committed, "missing"]);
    desk.refused(
        "alice",
        &["export", "--format", "csv", "--out", &csv, "--force"],
        &[&committed, "missing"],
    );
    desk.ok("alice", &["rebuild"]);
    desk.ok("alice", &["list"]);

    // Edited: the pending roll disappears from every inbox.
    db.raw_execute(&format!(
        "UPDATE proposals SET status = 'rejected' WHERE proposal_id = '{pending}'"
    ))
    .await
    .unwrap();
    for view in views {
        desk.refused("alice", view, &[&pending, "pending"]);
    }
    desk.ok("alice", &["rebuild"]);
    assert!(desk.ok("alice", &inbox).contains(&pending));

    // Edited: a signature count raised.
    db.raw_execute(&format!(
        "UPDATE proposals SET signature_count = 2 WHERE proposal_id = '{pending}'"
    ))
    .await
    .unwrap();
    desk.refused("bob", &["show", &pending], &[&pending, "2 signatures"]);
    desk.ok("alice", &["rebuild"]);

    // Added: a row no verified event records.
    let ghost = Uuid::now_v7();
    db.raw_execute(&format!(
        "INSERT INTO proposals SELECT ledger_id, '{ghost}', kind, status, verdict, proposer, contracts_requested, created_at, expires_at, signer_set_version, policy_version, signature_count, signers, first_seq, last_seq FROM proposals WHERE proposal_id = '{pending}'"
    ))
    .await
    .unwrap();
    desk.refused(
        "carol",
        &["list"],
        &[&ghost.to_string(), "no verified event records"],
    );
    desk.ok("alice", &["rebuild"]);
    for view in views {
        desk.ok("alice", view);
    }
}

/// Case 1 seen by a client: the veto deleted and every later event re-chained with its hash
/// recomputed. The rewritten ledger is valid on its own, so only a pin can tell: the client
/// refuses it naming the first rewritten seq, appends nothing, and a crafted export of it
/// neither verifies against the pin nor moves it; a genuine longer export does not move it either.
async fn a_history_rewritten_with_every_hash_recomputed_is_refused_by_a_pin(db: &TestDb) {
    let desk = Desk::new(db);
    let vetoed = desk.propose();
    desk.ok(
        "carol",
        &[
            "reject",
            &vetoed,
            "--key",
            &desk.path("carol.key"),
            "--reason",
            "stale quotes",
        ],
    );
    let later = desk.propose();
    desk.ok("alice", &["list"]);
    let pinned_before = desk.pin("alice").await.unwrap();

    // A genuine export that extends alice's pin verifies against it and leaves it where it was.
    desk.propose();
    let genuine = desk.path("genuine.jsonl");
    desk.ok("bob", &["export", "--out", &genuine]);
    let out = desk.ok("alice", &["verify", &genuine]);
    assert!(
        out.contains("extends the head this client verified"),
        "{out}"
    );
    assert_eq!(desk.pin("alice").await.unwrap(), pinned_before);

    let events = desk.events().await;
    let veto = events
        .iter()
        .find(|e| e.event_type == "proposal.rejected")
        .unwrap();
    let after_veto: Vec<StoredEvent> = events[veto.seq as usize..].to_vec();
    rewrite(&desk, veto.seq, &after_veto).await;
    let seq = format!("diverges at seq {}", veto.seq);
    desk.refused("alice", &["list"], &[&seq, "do not trust it"]);
    desk.refused("alice", &["show", &vetoed], &[&seq]);
    desk.refused(
        "alice",
        &["sign", &later, "--key", &desk.path("alice.key")],
        &[&seq],
    );
    assert_eq!(
        desk.events().await.len(),
        events.len() - 1,
        "nothing appended"
    );

    // Without a pin too: every signature after the cut binds a head the rewritten chain no
    // longer has (check A11), so a fresh client refuses the ledger at the first of them.
    let first_signed_after = events[veto.seq as usize..]
        .iter()
        .find(|e| e.event_type == "proposal.recorded" || e.event_type == "proposal.signed")
        .unwrap();
    let at = format!("seq {}", first_signed_after.seq - 1);
    desk.refused("someone-new", &["list"], &[&at, "(A11)"]);
    desk.refused(
        "attacker",
        &["export", "--out", &desk.path("crafted.jsonl")],
        &["(A11)"],
    );
    assert_eq!(desk.pin("alice").await.unwrap(), pinned_before);
}

/// A ledger cut back before the pinned head is refused, naming the first missing seq.
async fn a_truncated_ledger_is_refused_by_a_pin(db: &TestDb) {
    let desk = Desk::new(db);
    let id = desk.propose();
    desk.sign("alice", &id);
    desk.sign("carol", &id);
    desk.ok("bob", &["show", &id]);
    let events = desk.events().await;
    let keep = events.len() - 3;
    db.tamper(&format!(
        "DELETE FROM events WHERE seq > {keep};\n{}",
        head_sql(db, &events[keep - 1])
    ))
    .await
    .unwrap();
    desk.ok("attacker", &["rebuild"]);
    desk.refused(
        "bob",
        &["show", &id],
        &[
            &format!("diverges at seq {}", keep + 1),
            &format!("ends at seq {keep}"),
        ],
    );
    desk.refused("bob", &["verify"], &[&format!("seq {}", keep + 1)]);
}

/// A client without a pin verifies the ledger from genesis once; afterwards each command
/// verifies only the events added since (counted by the pin, not timed).
async fn a_fresh_client_verifies_from_genesis_once_then_only_what_is_new(db: &TestDb) {
    let desk = Desk::new(db);
    for _ in 0..3 {
        let id = desk.propose();
        desk.sign("alice", &id);
    }
    let head = desk.events().await.len() as u64;
    assert_eq!(desk.pin("dave").await, None);
    desk.ok("dave", &["list"]);
    let first = desk.pin("dave").await.unwrap();
    assert_eq!(
        (first.seq, first.events_verified, first.syncs),
        (head, head, 1)
    );
    let id = desk.propose();
    desk.ok("dave", &["show", &id]);
    let second = desk.pin("dave").await.unwrap();
    assert_eq!(
        (second.seq, second.events_verified, second.syncs),
        (head + 1, head + 1, 2)
    );
    desk.ok("dave", &["list"]);
    assert_eq!(
        desk.pin("dave").await.unwrap(),
        second,
        "nothing new, nothing verified"
    );
    // A pin only moves forward, and only commands on the live ledger move it.
    let export = desk.path("e.jsonl");
    desk.ok("dave", &["export", "--out", &export]);
    desk.ok("dave", &["verify", &export]);
    assert_eq!(desk.pin("dave").await.unwrap(), second);
}

/// Several clients of one machine sync at once while signers append: each event is verified
/// exactly once into the shared state, and the pin ends at the head.
async fn concurrent_syncs_leave_one_consistent_pin(db: &TestDb) {
    let desk = Desk::new(db);
    for _ in 0..2 {
        desk.propose();
    }
    let spawn = |client: &str, args: &[&str]| {
        db.rollbook(&desk.state(client))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut children = Vec::new();
    for round in 0..3 {
        for _ in 0..3 {
            children.push(spawn("shared", &["list"]));
        }
        // A roll of its own each round: the same body twice would be refused as a duplicate.
        let file = desk.path(&format!("concurrent-{round}.toml"));
        let mut proposal = rollbook::sizing::Proposal::from_toml_str(EXAMPLE).unwrap();
        let as_of = Utc.with_ymd_and_hms(2026, 5, 7, 14, 30, 0).unwrap();
        proposal.shift_times(Utc::now() - Duration::minutes(10) - as_of);
        proposal.set_contracts_requested(9);
        common::own_layer(&mut proposal);
        std::fs::write(&file, proposal.to_toml_string()).unwrap();
        children.push(spawn(
            &format!("bob-{round}"),
            &["propose", &file, "--key", &desk.path("bob.key")],
        ));
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{:?}: {}",
            out.status.code(),
            text(&out.stderr)
        );
    }
    desk.ok("shared", &["list"]);
    let head = desk.events().await.len() as u64;
    let pin = desk.pin("shared").await.unwrap();
    assert_eq!(pin.seq, head);
    assert_eq!(
        pin.events_verified, head,
        "every event verified exactly once"
    );
    desk.ok("shared", &["inbox", "--key", &desk.path("carol.key")]);
}

/// The ids of the open proposals saved one row each in `client`'s state file.
async fn open_rows(file: &Path) -> Vec<String> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let ids: Vec<(String,)> =
        sqlx::query_as("SELECT proposal_id FROM open_proposals ORDER BY proposal_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    ids.into_iter().map(|(id,)| id).collect()
}

/// Puts a state file back as it was saved before open proposals had rows: inside the auditor's
/// state, under "open" (text surgery: the state holds u128 ids that `serde_json::Value` would
/// not keep).
async fn save_open_proposals_whole(file: &Path) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT proposal_id, state FROM open_proposals")
            .fetch_all(&pool)
            .await
            .unwrap();
    let auditor = saved_auditor(&pool).await;
    let open: Vec<String> = rows
        .iter()
        .map(|(id, state)| format!("\"{id}\":{}", text(state)))
        .collect();
    let whole = format!(
        "{},\"open\":{{{}}}}}",
        auditor.strip_suffix('}').unwrap(),
        open.join(",")
    );
    save_auditor(&pool, whole).await;
    sqlx::query("DELETE FROM open_proposals")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// Each open proposal is a row of the state file, removed when it closes; a state saved whole
/// (its open proposals inside the auditor's state, as before they had rows) still resumes, and
/// its next sync gives them rows again.
async fn open_proposals_are_rows_and_a_state_saved_whole_still_resumes(db: &TestDb) {
    let desk = Desk::new(db);
    let (first, second) = (desk.propose(), desk.propose());
    desk.ok("carol", &["list"]);
    let ledger = desk.events().await[0].ledger_id;
    let file = rollbook::pin::state_file(&desk.state("carol"), ledger);
    let mut both = vec![first.clone(), second.clone()];
    both.sort();
    assert_eq!(open_rows(&file).await, both);

    save_open_proposals_whole(&file).await;
    assert_eq!(open_rows(&file).await, Vec::<String>::new());
    commit_both_and_resume(&desk, &file, &first, &second).await;
}

/// Pins are one user's own: whoever can write a state file can move its pin to a ledger of
/// their making (an attacker's review rolled a root client's pin back to before a veto with a
/// directory and file that user `nobody` owned). A state directory is created private (mode
/// 0700); a directory or state file others may write, one another user owns, or a link in
/// place of a `-wal` file, is refused (naming it) by the commands that write pins and by
/// `verify FILE`, which reads one. Handing a file to another
/// user takes root, as CI runs the tests.
async fn a_state_directory_or_file_another_user_could_write_is_refused(db: &TestDb) {
    use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
    let desk = Desk::new(db);
    desk.ok("bob", &["list"]);
    let dir = desk.state("bob");
    let ledger = desk.events().await[0].ledger_id;
    let file = rollbook::pin::state_file(&dir, ledger);
    let export = desk.path("bob-export.jsonl");
    desk.ok("bob", &["export", "--out", &export]);
    let mode = |path: &Path| std::fs::metadata(path).unwrap().mode() & 0o777;
    // Exit 4 as an IO failure; `verify FILE` says 2, as for any input it cannot use.
    let refused = |args: &[&str], needles: &[&str]| {
        let out = desk.run("bob", args);
        let stderr = text(&out.stderr);
        let code = if args[0] == "verify" { 2 } else { 4 };
        assert_eq!(out.status.code(), Some(code), "bob {args:?}: {stderr}");
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "bob {args:?}: {stderr:?} lacks {needle:?}"
            );
        }
    };

    assert_eq!(mode(&dir), 0o700, "created private");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let open_dir = [
        &dir.display().to_string() as &str,
        "writable by others (mode 777)",
    ];
    refused(&["list"], &open_dir);
    refused(&["verify", &export], &open_dir);
    assert_eq!(mode(&dir), 0o777, "not repaired: its owner should know");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let file_shown = file.display().to_string();
    refused(&["list"], &[&file_shown, "writable by others (mode 666)"]);
    refused(&["verify", &export], &[&file_shown, "writable by others"]);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();

    let wal = PathBuf::from(format!("{file_shown}-wal"));
    let _ = std::fs::remove_file(&wal);
    std::os::unix::fs::symlink(desk.path("elsewhere"), &wal).unwrap();
    refused(&["list"], &[&wal.display().to_string(), "a symbolic link"]);
    std::fs::remove_file(&wal).unwrap();

    let user = std::fs::metadata("/proc/self").unwrap().uid();
    if user != 0 {
        eprintln!("not root: files cannot be handed to another user here; CI runs this as root");
        return;
    }
    let (nobody, before) = (65534, desk.pin("bob").await);
    chown(&file, Some(nobody), None).unwrap();
    let other_file = [
        file_shown.as_str(),
        "belongs to user 65534, not to this user (0)",
    ];
    refused(&["list"], &other_file);
    refused(&["verify", &export], &other_file);
    // Root is no exception: a directory and a file both another user's are theirs to replace.
    chown(&dir, Some(nobody), None).unwrap();
    let other_dir = [
        &dir.display().to_string() as &str,
        "belongs to user 65534, not to this user (0)",
    ];
    refused(&["list"], &other_dir);
    refused(&["verify", &export], &other_dir);
    assert_eq!(
        mode(&dir),
        0o700,
        "another user's directory is left as it was"
    );
    chown(&dir, Some(0), None).unwrap();
    chown(&file, Some(0), None).unwrap();
    assert_eq!(desk.pin("bob").await, before, "nothing moved the pin");
    desk.ok("bob", &["list"]);
}
