//! The ledger core against real databases: the same test bodies on SQLite and PostgreSQL.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use common::{event_row_sql, sql_bytes, sql_text, TestDb};
use rollbook::audit::{verify_live_chain, LiveVerifyError};
use rollbook::domain::envelope::{ChainError, ChainVerifier, NewEvent, StoredEvent};
use rollbook::domain::events::{
    Event, ProposalCommitted, ProposalExpired, ProposalKind, ProposalRecorded, ProposalRejected,
    ProposalSigned, ProposalTerms, SignatureEnvelope,
};
use rollbook::store::{ExpectedVersion, Landing, Store, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

fn note(stream: &str, body: serde_json::Value) -> NewEvent {
    NewEvent {
        stream_id: stream.to_string(),
        event_type: "test.note".into(),
        schema_version: 1,
        actor: Some("SHA256:tester".into()),
        payload: serde_json::to_vec(&body).unwrap(),
    }
}

async fn new_ledger(store: &Store) -> Uuid {
    let ledger = Uuid::now_v7();
    store
        .append(
            ledger,
            true,
            &[("ledger".into(), ExpectedVersion::NoStream)],
            vec![note("ledger", serde_json::json!({"genesis": true}))],
            Utc::now(),
        )
        .await
        .expect("create ledger");
    ledger
}

async fn all_events(store: &Store, ledger: Uuid) -> Vec<StoredEvent> {
    let mut events = Vec::new();
    store
        .for_each_event::<StoreError>(ledger, 1, |event| {
            events.push(event);
            Ok(())
        })
        .await
        .unwrap();
    events
}

fn assert_chain(events: &[StoredEvent]) {
    let mut verifier = ChainVerifier::new();
    for event in events {
        verifier
            .push(event)
            .unwrap_or_else(|error| panic!("chain broken: {error}"));
    }
}

both_backends!(
    append_assigns_gapless_seq_and_stream_versions,
    events_table_refuses_update_and_delete,
    optimistic_concurrency_refuses_stale_writers,
    racing_writers_at_one_version_commit_exactly_once,
    a_failing_append_leaves_nothing_behind,
    eight_writer_processes_append_concurrently,
    sigkill_during_appends_leaves_a_valid_chain,
    rebuilt_projection_equals_incremental,
    live_verify_names_the_first_broken_seq,
    deleted_and_unreadable_rows_are_named,
    ledger_creation_is_exclusive,
    the_database_refuses_events_that_do_not_extend_the_head,
    queued_and_outside_writers_keep_one_gapless_chain,
    expectations_on_another_stream_hold_under_queueing,
    many_tasks_on_one_store_all_append,
    rebuilds_during_appends_lose_no_projection_change,
    a_refused_projection_change_rolls_back_its_event,
    cancelled_appends_leave_a_valid_chain_and_a_working_store,
    a_remembered_head_another_process_moved_is_refused_not_forked,
    appends_after_a_processs_first_share_one_kept_connection,
    a_closed_store_appends_nothing,
    the_database_refuses_to_move_the_head_by_hand,
    lowering_the_head_to_replace_later_events_is_refused_at_the_first_step,
    an_insert_cannot_replace_a_stored_event,
    the_head_row_cannot_be_deleted,
);

#[tokio::test]
async fn sqlite_ledgers_are_in_wal_mode() {
    let db = TestDb::sqlite();
    let store = Store::open(&db.url).await.unwrap();
    new_ledger(&store).await;
    // journal_mode is a property of the file, so a fresh connection sees it; synchronous=FULL is
    // per connection and set by Store::open (store/sqlite.rs).
    let mode = db.raw_rows("PRAGMA journal_mode").await;
    assert_eq!(mode[0][0], "wal");
}

async fn append_assigns_gapless_seq_and_stream_versions(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    let written = store
        .append(
            ledger,
            false,
            &[("a".into(), ExpectedVersion::NoStream)],
            vec![
                note("a", serde_json::json!({"n": 1})),
                note("b", serde_json::json!({"n": 2})),
                note("a", serde_json::json!({"n": 3})),
            ],
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(
        written.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    assert_eq!(
        written.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        vec![1, 1, 2]
    );
    let stream_a = store.read_stream(ledger, "a").await.unwrap();
    assert_eq!(
        stream_a,
        vec![written[0].clone(), written[2].clone()],
        "read back exactly what was written"
    );
    assert_eq!(
        store.head(ledger).await.unwrap(),
        Some((4, written[2].hash))
    );
    assert_eq!(store.head(Uuid::now_v7()).await.unwrap(), None);
    let page = store.read_page(ledger, 1, 2).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
    assert_chain(&all_events(&store, ledger).await);
    // Time never runs backwards along the chain even when a writer's clock does.
    let earlier = Utc::now() - chrono::Duration::hours(1);
    let late = store
        .append(
            ledger,
            false,
            &[],
            vec![note("a", serde_json::json!({}))],
            earlier,
        )
        .await
        .unwrap();
    assert_eq!(late[0].recorded_at, written[2].recorded_at);
    assert_chain(&all_events(&store, ledger).await);
}

async fn events_table_refuses_update_and_delete(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    store
        .append(
            ledger,
            false,
            &[],
            vec![note("a", serde_json::json!({"n": 1}))],
            Utc::now(),
        )
        .await
        .unwrap();
    let before = all_events(&store, ledger).await;
    for sql in [
        "UPDATE events SET payload = payload",
        "UPDATE events SET actor = 'SHA256:mallory' WHERE seq = 2",
        "DELETE FROM events WHERE seq = 2",
        "DELETE FROM events",
    ] {
        let error = db.raw_execute(sql).await.expect_err(sql);
        assert!(error.to_string().contains("append-only"), "{sql}: {error}");
    }
    if db.backend == "postgres" {
        let error = db
            .raw_execute("TRUNCATE events CASCADE")
            .await
            .expect_err("truncate");
        assert!(error.to_string().contains("append-only"), "{error}");
    }
    assert_eq!(all_events(&store, ledger).await, before, "rows unchanged");
}

/// Writers racing for the same stream version (the one-statement append on PostgreSQL): one
/// wins each round, every other gets a conflict and leaves nothing behind.
async fn racing_writers_at_one_version_commit_exactly_once(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    let head_before = store.head(ledger).await.unwrap().unwrap().0;
    let rounds = 5u64;
    for round in 0..rounds {
        let mut tasks = Vec::new();
        for writer in 0..6 {
            let url = db.url.clone();
            tasks.push(tokio::spawn(async move {
                let store = Store::open(&url).await.unwrap();
                let expected = if round == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(round)
                };
                let outcome = store
                    .append(
                        ledger,
                        false,
                        &[("race".into(), expected)],
                        vec![note(
                            "race",
                            serde_json::json!({"round": round, "writer": writer}),
                        )],
                        Utc::now(),
                    )
                    .await;
                store.close().await;
                outcome
            }));
        }
        let mut won = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(events) => {
                    assert_eq!(events.len(), 1);
                    assert_eq!(events[0].stream_version, round + 1);
                    won += 1;
                }
                Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, round + 1),
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert_eq!(won, 1, "round {round}: exactly one writer wins");
    }
    let events = all_events(&store, ledger).await;
    assert_chain(&events);
    assert_eq!(
        store.head(ledger).await.unwrap().unwrap().0,
        head_before + rounds,
        "losers took no seq"
    );
}

async fn optimistic_concurrency_refuses_stale_writers(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    let first = store
        .append(
            ledger,
            false,
            &[("p".into(), ExpectedVersion::NoStream)],
            vec![note("p", serde_json::json!({}))],
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(first[0].stream_version, 1);
    let again = store
        .append(
            ledger,
            false,
            &[("p".into(), ExpectedVersion::NoStream)],
            vec![note("p", serde_json::json!({}))],
            Utc::now(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&again, StoreError::Conflict { actual: 1, .. }),
        "{again}"
    );
    assert!(
        again.to_string().contains("version conflict on stream p"),
        "{again}"
    );
    let stale = store
        .append(
            ledger,
            false,
            &[("p".into(), ExpectedVersion::Exact(0))],
            vec![note("p", serde_json::json!({}))],
            Utc::now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(stale, StoreError::Conflict { .. }));
    store
        .append(
            ledger,
            false,
            &[("p".into(), ExpectedVersion::Exact(1))],
            vec![note("p", serde_json::json!({}))],
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.head(ledger).await.unwrap().unwrap().0,
        3,
        "refused appends took no seq"
    );
    let missing = store
        .append(
            Uuid::now_v7(),
            false,
            &[],
            vec![note("p", serde_json::json!({}))],
            Utc::now(),
        )
        .await;
    assert!(matches!(missing, Err(StoreError::NoSuchLedger(_))));
    let empty = store.append(ledger, false, &[], vec![], Utc::now()).await;
    assert!(matches!(empty, Err(StoreError::InvalidAppend(_))));
}

fn signature(key: &str) -> SignatureEnvelope {
    SignatureEnvelope {
        key_id: key.into(),
        message: "00".into(),
        signature: "00".into(),
    }
}

fn recorded(id: &str, verdict: &str) -> NewEvent {
    let event = Event::ProposalRecorded(ProposalRecorded {
        terms: ProposalTerms {
            proposal_id: id.into(),
            kind: ProposalKind::Roll,
            body: "[roll]".into(),
            report_json: Some("{}".into()),
            verdict: Some(verdict.into()),
            contracts_requested: Some(9),
            policy_version: 1,
            policy_hash: "ab".repeat(32),
            signer_set_version: 1,
            signer_set_hash: "ef".repeat(32),
            created_at: "2026-05-07T14:40:00.000000Z".into(),
            expires_at: "2026-05-07T18:40:00.000000Z".into(),
        },
        subject_digest: "cd".repeat(32),
        signature: signature("SHA256:bob"),
    });
    typed(id, event)
}

fn typed(stream: &str, event: Event) -> NewEvent {
    NewEvent {
        stream_id: stream.into(),
        event_type: event.event_type().into(),
        schema_version: 1,
        actor: Some("SHA256:bob".into()),
        payload: event.to_payload(),
    }
}

async fn a_failing_append_leaves_nothing_behind(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    let before = all_events(&store, ledger).await;
    // The second event's projection row collides with the first's (same proposal id in two
    // streams): the database refuses it after the first event and its row were written.
    let result = store
        .append(
            ledger,
            false,
            &[],
            vec![recorded("dup", "pass"), {
                let mut e = recorded("dup", "pass");
                e.stream_id = "other".into();
                e
            }],
            Utc::now(),
        )
        .await;
    assert!(result.is_err(), "the colliding append must fail");
    assert_eq!(
        all_events(&store, ledger).await,
        before,
        "no event of the failed append remains"
    );
    assert!(
        store.proposals(ledger, None).await.unwrap().is_empty(),
        "no projection row remains"
    );
    assert_eq!(store.head(ledger).await.unwrap().unwrap().0, 1);
}

async fn ledger_creation_is_exclusive(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    let again = store
        .append(
            ledger,
            true,
            &[],
            vec![note("ledger", serde_json::json!({}))],
            Utc::now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::LedgerExists(_)), "{again}");
    assert_eq!(store.ledger_ids().await.unwrap(), vec![ledger]);
}

/// Runs this test binary again as a child that appends to the ledger (see `child_writer`).
fn spawn_writer(
    db: &TestDb,
    ledger: Uuid,
    stream: &str,
    appends: u32,
    shared_every: u32,
) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "child_writer",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("ROLLBOOK_CHILD_DB", &db.url)
        .env("ROLLBOOK_CHILD_LEDGER", ledger.to_string())
        .env("ROLLBOOK_CHILD_STREAM", stream)
        .env("ROLLBOOK_CHILD_APPENDS", appends.to_string())
        .env("ROLLBOOK_CHILD_SHARED_EVERY", shared_every.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child writer")
}

/// Not a test on its own: the body of the writer processes spawned above. Each append is one
/// transaction of 1 to 3 events; after each commit it prints `@@done <event ids>` and flushes, so
/// the parent knows exactly which appends were reported as durable.
#[test]
fn child_writer() {
    let Ok(url) = std::env::var("ROLLBOOK_CHILD_DB") else {
        return;
    };
    let ledger: Uuid = std::env::var("ROLLBOOK_CHILD_LEDGER")
        .unwrap()
        .parse()
        .unwrap();
    let stream = std::env::var("ROLLBOOK_CHILD_STREAM").unwrap();
    let appends: u32 = std::env::var("ROLLBOOK_CHILD_APPENDS")
        .unwrap()
        .parse()
        .unwrap();
    let shared_every: u32 = std::env::var("ROLLBOOK_CHILD_SHARED_EVERY")
        .unwrap()
        .parse()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(&url).await.unwrap();
        let mut version = 0u64;
        let stdout = std::io::stdout();
        for batch in 0..appends {
            let size = batch % 3 + 1;
            let mut events: Vec<NewEvent> = (0..size)
                .map(|index| {
                    note(
                        &stream,
                        serde_json::json!({"batch": batch, "size": size, "index": index}),
                    )
                })
                .collect();
            if shared_every > 0 && batch % shared_every == 0 {
                events.push(note(
                    "shared",
                    serde_json::json!({"from": stream, "batch": batch}),
                ));
            }
            let written = store
                .append(
                    ledger,
                    false,
                    &[(stream.clone(), ExpectedVersion::Exact(version))],
                    events,
                    Utc::now(),
                )
                .await
                .unwrap();
            version += u64::from(size);
            let ids: Vec<String> = written.iter().map(|e| e.event_id.to_string()).collect();
            let mut out = stdout.lock();
            writeln!(out, "\n@@done {}", ids.join(" ")).unwrap();
            out.flush().unwrap();
        }
    });
}

fn reported_ids(stdout: impl std::io::Read) -> Vec<String> {
    BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| line.find("@@done ").map(|at| line[at + 7..].to_string()))
        .flat_map(|ids| ids.split(' ').map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// Every batch a stream holds must be whole: a crash may lose an unreported append, never half of one.
fn assert_batches_whole(events: &[StoredEvent]) {
    let mut batches: BTreeMap<(String, u64), (u64, u64)> = BTreeMap::new();
    for event in events.iter().filter(|e| e.event_type == "test.note") {
        let body: serde_json::Value = serde_json::from_slice(&event.payload).unwrap();
        if let (Some(batch), Some(size)) = (body["batch"].as_u64(), body["size"].as_u64()) {
            let entry = batches
                .entry((event.stream_id.clone(), batch))
                .or_insert((size, 0));
            entry.1 += 1;
        }
    }
    for ((stream, batch), (size, count)) in batches {
        assert_eq!(
            size, count,
            "stream {stream} batch {batch}: {count} of {size} events present"
        );
    }
}

async fn eight_writer_processes_append_concurrently(db: &TestDb) {
    const WRITERS: u32 = 8;
    const APPENDS: u32 = 30;
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    let children: Vec<_> = (0..WRITERS)
        .map(|w| spawn_writer(db, ledger, &format!("writer-{w}"), APPENDS, 5))
        .collect();
    let mut reported = Vec::new();
    for mut child in children {
        let stdout = child.stdout.take().unwrap();
        reported.extend(reported_ids(stdout));
        assert!(child.wait().unwrap().success(), "a writer failed");
    }
    let events = all_events(&store, ledger).await;
    let per_writer: u32 = (0..APPENDS).map(|b| b % 3 + 1).sum::<u32>() + APPENDS.div_ceil(5);
    assert_eq!(events.len() as u32, 1 + WRITERS * per_writer, "count exact");
    assert_eq!(
        reported.len(),
        events.len() - 1,
        "every reported event, no more"
    );
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(i, e)| e.seq == i as u64 + 1),
        "seq gapless"
    );
    assert_chain(&events);
    let ids: HashSet<String> = events.iter().map(|e| e.event_id.to_string()).collect();
    assert_eq!(ids.len(), events.len(), "no event doubled");
    assert!(
        reported.iter().all(|id| ids.contains(id)),
        "no reported event lost"
    );
    let shared: Vec<u64> = events
        .iter()
        .filter(|e| e.stream_id == "shared")
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(
        shared,
        (1..=shared.len() as u64).collect::<Vec<_>>(),
        "shared stream versions gapless in seq order"
    );
    assert_batches_whole(&events);
    assert_eq!(
        store.head(ledger).await.unwrap().unwrap(),
        (events.len() as u64, events.last().unwrap().hash)
    );
}

async fn sigkill_during_appends_leaves_a_valid_chain(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    // Time-seeded delays: each run kills at different moments; a failure prints the delays.
    let mut seed = Utc::now().timestamp_subsec_nanos() as u64 | 1;
    let mut reported = Vec::new();
    for round in 0..5 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay_ms = 150 + seed % 600;
        let mut child = spawn_writer(db, ledger, &format!("crash-{round}"), 1_000_000, 7);
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || reported_ids(stdout));
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("SIGKILL the writer");
        child.wait().unwrap();
        let ids = reader.join().unwrap();
        eprintln!(
            "round {round}: killed after {delay_ms} ms, {} events reported",
            ids.len()
        );
        reported.extend(ids);

        // Reopen as a fresh process would and check everything. A PostgreSQL server finishes
        // the killed client's last transaction on its own, and may commit it after the kill:
        // wait until the head stops moving, so the checks below see one state.
        let reopened = Store::open(&db.url).await.unwrap();
        let mut head = reopened.head(ledger).await.unwrap();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = reopened.head(ledger).await.unwrap();
            if now == head {
                break;
            }
            head = now;
        }
        let events = all_events(&reopened, ledger).await;
        assert_chain(&events);
        verify_live_chain(&reopened, ledger)
            .await
            .expect("live verify after crash");
        assert_batches_whole(&events);
        let present: HashSet<String> = events.iter().map(|e| e.event_id.to_string()).collect();
        for id in &reported {
            assert!(
                present.contains(id),
                "round {round}: event {id} was reported done but is missing"
            );
        }
        reopened.close().await;
    }
    assert!(
        !reported.is_empty(),
        "the writer never got to append: the test proved nothing"
    );
}

async fn rebuilt_projection_equals_incremental(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    let cosign = |id: &str, key: &str| {
        typed(
            id,
            Event::ProposalSigned(ProposalSigned {
                proposal_id: id.into(),
                signature: signature(key),
            }),
        )
    };
    let batches = vec![
        vec![recorded("p1", "pass")],
        vec![recorded("p2", "fail")],
        vec![recorded("p3", "pass")],
        vec![cosign("p1", "SHA256:alice")],
        vec![
            cosign("p1", "SHA256:carol"),
            typed(
                "p1",
                Event::ProposalCommitted(ProposalCommitted {
                    proposal_id: "p1".into(),
                    counted_signers: vec!["SHA256:alice".into(), "SHA256:carol".into()],
                    signer_set_version: 1,
                    threshold: 2,
                }),
            ),
        ],
        vec![typed(
            "p3",
            Event::ProposalRejected(ProposalRejected {
                proposal_id: "p3".into(),
                reason: "stale quotes".into(),
                signature: signature("SHA256:alice"),
            }),
        )],
        vec![recorded("p4", "pass")],
        vec![typed(
            "p4",
            Event::ProposalExpired(ProposalExpired {
                proposal_id: "p4".into(),
                reason: "ttl".into(),
            }),
        )],
        vec![recorded("p5", "pass")],
    ];
    // Single events go with their stream's expected version, as the CLI appends them (on
    // PostgreSQL: one statement with the projection change in it); the pair goes the general way.
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    let before = store.append_counts();
    for batch in batches {
        let expected = match batch.as_slice() {
            [one] => {
                let version = versions.get(&one.stream_id).copied().unwrap_or(0);
                vec![(one.stream_id.clone(), ExpectedVersion::Exact(version))]
            }
            _ => vec![],
        };
        for event in &batch {
            *versions.entry(event.stream_id.clone()).or_default() += 1;
        }
        store
            .append(ledger, false, &expected, batch, Utc::now())
            .await
            .unwrap();
    }
    let one_statement = store.append_counts().one_statement - before.one_statement;
    match db.backend {
        "postgres" => assert_eq!(
            one_statement, 8,
            "the 8 single-event appends went in as one statement each"
        ),
        _ => assert_eq!(one_statement, 0, "SQLite has no one-statement append"),
    }
    let query = "SELECT * FROM proposals ORDER BY proposal_id";
    let incremental = db.raw_rows(query).await;
    let statuses: Vec<&str> = incremental.iter().map(|row| row[3].as_str()).collect();
    assert_eq!(
        statuses,
        vec!["committed", "failed", "rejected", "expired", "pending"]
    );
    assert_eq!(incremental[0][11], "2", "p1 counted two co-signatures");
    let signers = rollbook::domain::projection::signer_entries(&incremental[0][12]);
    assert_eq!(
        signers
            .iter()
            .map(|(key, _)| key.as_str())
            .collect::<Vec<_>>(),
        vec!["SHA256:alice", "SHA256:carol"]
    );
    // Wreck the projection, then rebuild it from the events alone.
    db.raw_execute("UPDATE proposals SET status = 'committed', signature_count = 99")
        .await
        .unwrap();
    db.raw_execute("DELETE FROM proposals WHERE proposal_id = 'p2'")
        .await
        .unwrap();
    let replayed = store.rebuild_projections(ledger).await.unwrap();
    assert_eq!(replayed, 11, "genesis + 10 proposal events");
    assert_eq!(
        db.raw_rows(query).await,
        incremental,
        "rebuilt == incremental"
    );
}

async fn live_verify_names_the_first_broken_seq(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    for n in 0..5 {
        store
            .append(
                ledger,
                false,
                &[],
                vec![note("a", serde_json::json!({"n": n}))],
                Utc::now(),
            )
            .await
            .unwrap();
    }
    let summary = verify_live_chain(&store, ledger).await.unwrap();
    assert_eq!(summary.events, 6);
    // An attacker with full control of the database edits a payload past the triggers.
    let altered = match db.backend {
        "sqlite" => "UPDATE events SET payload = CAST('{\"n\":42}' AS BLOB) WHERE seq = 4",
        _ => "UPDATE events SET payload = convert_to('{\"n\":42}', 'UTF8') WHERE seq = 4",
    };
    assert_eq!(db.tamper(altered).await.expect("tamper"), 1);
    match verify_live_chain(&store, ledger).await {
        Err(LiveVerifyError::Invalid(ChainError::HashMismatch { seq: 4, .. })) => {}
        other => panic!("expected a hash mismatch at seq 4, got {other:?}"),
    }
    // Read back, the altered row is a typed error that names it, never an event.
    match store.read_stream(ledger, "a").await {
        Err(StoreError::HashMismatch {
            seq: 4,
            stored,
            computed,
        }) => assert_ne!(stored, computed),
        other => panic!("expected the stream read to refuse seq 4, got {other:?}"),
    }
    let page = store.read_page(ledger, 0, 10).await;
    assert!(
        matches!(page, Err(StoreError::HashMismatch { seq: 4, .. })),
        "{page:?}"
    );
    // A walk hands over every event before the altered one, then its error.
    let mut visited = Vec::new();
    let walked = store
        .for_each_event::<StoreError>(ledger, 1, |event| {
            visited.push(event.seq);
            Ok(())
        })
        .await;
    assert!(
        matches!(walked, Err(StoreError::HashMismatch { seq: 4, .. })),
        "{walked:?}"
    );
    assert_eq!(visited, vec![1, 2, 3]);
}

/// Rows deleted or made unreadable past the triggers (as a superuser on PostgreSQL, the file's
/// owner on SQLite): the live verifier names the first broken seq, and reading the bad row is a
/// typed error, never a panic.
async fn deleted_and_unreadable_rows_are_named(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    for n in 0..5 {
        store
            .append(
                ledger,
                false,
                &[(format!("s{n}"), ExpectedVersion::NoStream)],
                vec![note(&format!("s{n}"), serde_json::json!({"n": n}))],
                Utc::now(),
            )
            .await
            .unwrap();
    }
    assert_eq!(
        db.tamper("DELETE FROM events WHERE seq = 5").await.unwrap(),
        1
    );
    match verify_live_chain(&store, ledger).await {
        Err(LiveVerifyError::Invalid(ChainError::SeqGap {
            expected: 5,
            found: 6,
        })) => {}
        other => panic!("expected a gap at seq 5, got {other:?}"),
    }
    assert_eq!(
        db.tamper("UPDATE events SET event_id = 'not-a-uuid' WHERE seq = 2")
            .await
            .unwrap(),
        1
    );
    match verify_live_chain(&store, ledger).await {
        Err(LiveVerifyError::Store(StoreError::CorruptRow { seq: 2, reason })) => {
            assert!(reason.contains("event_id"), "{reason}")
        }
        other => panic!("expected seq 2 to be unreadable, got {other:?}"),
    }
    let stream = store.read_stream(ledger, "s0").await;
    assert!(
        matches!(stream, Err(StoreError::CorruptRow { seq: 2, .. })),
        "{stream:?}"
    );
    assert_eq!(store.read_stream(ledger, "s1").await.unwrap().len(), 1);
}

/// migrations/*/0002: the schema moves the head with every insert and refuses a row whose seq or
/// prev_hash does not follow it, whoever writes it (here: raw SQL past rollbook).
async fn the_database_refuses_events_that_do_not_extend_the_head(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    for n in 0..3 {
        store
            .append(
                ledger,
                false,
                &[("a".into(), ExpectedVersion::Exact(n))],
                vec![note("a", serde_json::json!({"n": n}))],
                Utc::now(),
            )
            .await
            .unwrap();
    }
    let head = store.head(ledger).await.unwrap().unwrap();
    assert_eq!(head.0, 4, "the trigger moved the head with each insert");
    let events_before = db.raw_rows("SELECT * FROM events ORDER BY seq").await;
    // A copy of event 3 under a new stream, with the given seq, prev_hash and time expressions.
    let forge = |seq: &str, prev: &str, at: &str| {
        format!(
            "INSERT INTO events (ledger_id, seq, stream_id, stream_version, event_id, event_type, \
             schema_version, recorded_at, actor, payload, prev_hash, hash) \
             SELECT ledger_id, {seq}, 'forged', 1, substr(event_id, 1, 24) || '000000000000', event_type, \
             schema_version, {at}, actor, payload, {prev}, hash FROM events WHERE seq = 3"
        )
    };
    let head_hash = "(SELECT head_hash FROM ledgers)";
    let head_time = "(SELECT head_recorded_at FROM ledgers)";
    for (what, seq, prev, at) in [
        ("a stale prev_hash", "5", "prev_hash", head_time),
        ("a gap in seq", "6", head_hash, head_time),
        ("a fork at an old seq", "4", "prev_hash", head_time),
        (
            "a time before the head's",
            "5",
            head_hash,
            "'2000-01-01T00:00:00.000000Z'",
        ),
    ] {
        let refused = db.raw_execute(&forge(seq, prev, at)).await;
        let error = refused.expect_err(what).to_string();
        assert!(
            error.contains("must extend its ledger head"),
            "{what}: {error}"
        );
        assert_eq!(store.head(ledger).await.unwrap().unwrap(), head, "{what}");
        assert_eq!(
            db.raw_rows("SELECT * FROM events ORDER BY seq").await,
            events_before,
            "{what}"
        );
    }
    // The guard checks the link, not the content: a row that links to the head goes in and
    // moves it, and the chain verifier then names it (its hash is event 3's).
    db.raw_execute(&forge("5", head_hash, head_time))
        .await
        .expect("a row that extends the head");
    assert_eq!(store.head(ledger).await.unwrap().unwrap().0, 5);
    match verify_live_chain(&store, ledger).await {
        Err(LiveVerifyError::Invalid(ChainError::HashMismatch { seq: 5, .. })) => {}
        other => panic!("expected a hash mismatch at seq 5, got {other:?}"),
    }
}

/// Another spelling of the database's URL: a store opened with it does not share this process's
/// writer turn, so it stands for another process writing to the same database.
fn outside_url(db: &TestDb) -> String {
    if db.backend == "sqlite" {
        db.url.replacen("sqlite://", "sqlite:///.", 1)
    } else {
        format!("{}&application_name=outside", db.url)
    }
}

/// Writers of one process queue for their turn and, on PostgreSQL, hand on the head they
/// committed (`WriterTurn` in store/postgres.rs); writers through another spelling of the URL stand for another
/// process: they do not share the turn, so they race the queue at the database, and some remembered
/// heads are stale. Every append must still land exactly once, on one gapless, valid chain.
async fn queued_and_outside_writers_keep_one_gapless_chain(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    let outside_url = outside_url(db);
    let (writers, each) = (6u64, 20u64);
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let url = if writer % 3 == 2 {
            outside_url.clone()
        } else {
            db.url.clone()
        };
        tasks.push(tokio::spawn(async move {
            let store = Store::open(&url).await.unwrap();
            let stream = format!("w{writer}");
            for version in 0..each {
                // A conflict can only come from another writer on the same stream: none here.
                // Shaped like the CLI's appends: the ledger stream (unchanged here) and its own.
                let written = store
                    .append(
                        ledger,
                        false,
                        &[
                            ("ledger".into(), ExpectedVersion::Exact(1)),
                            (stream.clone(), ExpectedVersion::Exact(version)),
                        ],
                        vec![note(&stream, serde_json::json!({"v": version}))],
                        Utc::now(),
                    )
                    .await
                    .unwrap_or_else(|error| panic!("{stream} v{version}: {error}"));
                assert_eq!(written.len(), 1);
                assert_eq!(written[0].stream_version, version + 1);
            }
            store.close().await;
            store.append_counts()
        }));
    }
    let (mut one_statement, mut on_remembered_head) = (0, 0);
    for task in tasks {
        let counts = task.await.unwrap();
        one_statement += counts.one_statement;
        on_remembered_head += counts.on_remembered_head;
    }
    let head = store.head(ledger).await.unwrap().unwrap();
    assert_eq!(head.0, 1 + writers * each, "every append landed once");
    if db.backend == "postgres" {
        assert!(one_statement > 0, "appends went in as one statement");
        assert!(
            on_remembered_head > 0,
            "queued writers sealed on the head their predecessor committed"
        );
    }
    let summary = verify_live_chain(&store, ledger).await.unwrap();
    assert_eq!(summary.events, 1 + writers * each);
    for writer in 0..writers {
        let stream = store
            .read_stream(ledger, &format!("w{writer}"))
            .await
            .unwrap();
        let versions: Vec<u64> = stream.iter().map(|e| e.stream_version).collect();
        assert_eq!(versions, (1..=each).collect::<Vec<_>>(), "w{writer}");
    }
}

/// The CLI binds each append to the ledger stream's version (the governance it decided under).
/// One writer moves that stream while queued writers of the same process append to their own
/// streams against the version they last saw; on PostgreSQL they insert on the head their
/// predecessor committed.
/// Whatever path an append took, it may only have landed where the ledger stream really was at
/// the version it expected.
async fn expectations_on_another_stream_hold_under_queueing(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    let seen = Arc::new(AtomicU64::new(1));
    let mut tasks = Vec::new();
    {
        let (url, seen) = (db.url.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            let store = Store::open(&url).await.unwrap();
            for version in 1..=15u64 {
                store
                    .append(
                        ledger,
                        false,
                        &[("ledger".into(), ExpectedVersion::Exact(version))],
                        vec![note("ledger", serde_json::json!({"change": version}))],
                        Utc::now(),
                    )
                    .await
                    .unwrap();
                seen.store(version + 1, Ordering::SeqCst);
            }
            store.close().await;
            Vec::new()
        }));
    }
    for writer in 0..4 {
        let (url, seen) = (db.url.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            let store = Store::open(&url).await.unwrap();
            let stream = format!("w{writer}");
            let (mut version, mut landed, mut conflicts) = (0u64, Vec::new(), 0);
            while version < 15 {
                let ledger_version = seen.load(Ordering::SeqCst);
                match store
                    .append(
                        ledger,
                        false,
                        &[
                            ("ledger".into(), ExpectedVersion::Exact(ledger_version)),
                            (stream.clone(), ExpectedVersion::Exact(version)),
                        ],
                        vec![note(&stream, serde_json::json!({"v": version}))],
                        Utc::now(),
                    )
                    .await
                {
                    Ok(written) => {
                        landed.push((written[0].seq, ledger_version));
                        version += 1;
                    }
                    Err(StoreError::Conflict { stream_id, .. }) => {
                        assert_eq!(stream_id, "ledger", "only the ledger stream moves");
                        conflicts += 1;
                        assert!(conflicts < 1000, "{stream} never got through");
                    }
                    Err(error) => panic!("{stream}: {error}"),
                }
            }
            store.close().await;
            landed
        }));
    }
    let mut landed = Vec::new();
    for task in tasks {
        landed.extend(task.await.unwrap());
    }
    assert_eq!(landed.len(), 60);
    let ledger_seqs: Vec<u64> = store
        .read_stream(ledger, "ledger")
        .await
        .unwrap()
        .iter()
        .map(|event| event.seq)
        .collect();
    assert_eq!(ledger_seqs.len(), 16);
    for (seq, expected) in landed {
        let actual = ledger_seqs.iter().filter(|at| **at < seq).count() as u64;
        assert_eq!(
            actual, expected,
            "the event at seq {seq} expected the ledger stream at {expected}"
        );
    }
    verify_live_chain(&store, ledger).await.unwrap();
}

/// A process's next append seals on the head its last append committed, without reading it
/// (PostgreSQL). Another process that appended in between has moved the real head: that append
/// must still land once, right after the other process's event, with its version checks judged
/// on the real state.
async fn a_remembered_head_another_process_moved_is_refused_not_forked(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    let outside_url = outside_url(db);
    let outside = Store::open(&outside_url).await.unwrap();
    let append = |store: &Store, stream: &str, version: u64| {
        let (store, stream) = (store.clone(), stream.to_string());
        async move {
            store
                .append(
                    ledger,
                    false,
                    &[
                        ("ledger".into(), ExpectedVersion::Exact(1)),
                        (stream.clone(), ExpectedVersion::Exact(version)),
                    ],
                    vec![note(&stream, serde_json::json!({ "v": version }))],
                    Utc::now(),
                )
                .await
                .map(|written| written[0].seq)
        }
    };
    let remembers = |seq: u64| (db.backend == "postgres").then_some(seq);
    assert_eq!(append(&store, "x", 0).await.unwrap(), 2);
    assert_eq!(store.remembered_head().await, remembers(2));
    assert_eq!(append(&outside, "y", 0).await.unwrap(), 3);
    // The head this process remembers (seq 2) is stale: refused by the database, then tried
    // again on the head read afresh.
    assert_eq!(append(&store, "x", 1).await.unwrap(), 4);
    assert_eq!(store.remembered_head().await, remembers(4));
    // Another process moves the same stream: the remembered head is stale, and the expected
    // version with it. A conflict, judged on the real stream.
    assert_eq!(append(&outside, "x", 2).await.unwrap(), 5);
    match append(&store, "x", 2).await {
        Err(StoreError::Conflict {
            stream_id, actual, ..
        }) => assert_eq!((stream_id.as_str(), actual), ("x", 3)),
        other => panic!("expected a conflict on x at version 3, got {other:?}"),
    }
    assert_eq!(append(&store, "x", 3).await.unwrap(), 6);
    assert_eq!(store.remembered_head().await, remembers(6));
    let before = store.append_counts();
    assert_eq!(append(&store, "x", 4).await.unwrap(), 7);
    assert_eq!(store.remembered_head().await, remembers(7));
    let after = store.append_counts();
    assert_eq!(
        after.on_remembered_head - before.on_remembered_head,
        u64::from(db.backend == "postgres"),
        "the append sealed on the head its predecessor committed"
    );
    assert_eq!(
        outside.append_counts().on_remembered_head,
        0,
        "never its own head in turn"
    );
    let events = all_events(&store, ledger).await;
    assert_eq!(events.len(), 7);
    assert_chain(&events);
    outside.close().await;
}

/// A process's first append to a database (a CLI command's only one) runs on its store's own
/// connections; the next ones, from every store of the process on that URL, on one connection
/// kept with the writer turn (store/sqlite.rs `append_conn`, store/postgres.rs `kept_conn`),
/// which closes with a store.
async fn appends_after_a_processs_first_share_one_kept_connection(db: &TestDb) {
    let first = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&first).await;
    append_note(&first, ledger, "alone").await.unwrap();
    assert!(
        !first.holds_kept_writer().await,
        "the first append opens no connection of its own"
    );
    append_note(&first, ledger, "again").await.unwrap();
    assert!(first.holds_kept_writer().await);

    let second = Store::open(&db.url).await.unwrap();
    let mut tasks = Vec::new();
    for (name, store) in [("a", first.clone()), ("b", second.clone())] {
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..25 {
                seqs.push(
                    append_note(&store, ledger, &format!("{name}{i}"))
                        .await
                        .unwrap(),
                );
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.extend(task.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (4..=53).collect::<Vec<_>>(),
        "each append landed once"
    );
    assert!(second.holds_kept_writer().await);

    // A conflict on the kept connection leaves it usable.
    let refused = append_note(&second, ledger, "a0").await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "{refused:?}"
    );
    assert!(second.holds_kept_writer().await);
    assert_eq!(append_note(&second, ledger, "after").await.unwrap(), 54);

    second.close().await;
    assert!(
        !first.holds_kept_writer().await,
        "closing a store closes the kept connection"
    );
    assert_eq!(append_note(&first, ledger, "last").await.unwrap(), 55);
    assert!(first.holds_kept_writer().await);
    let events = all_events(&first, ledger).await;
    assert_eq!(events.len(), 55);
    assert_chain(&events);
}

/// A closed store refuses to append, even once its process keeps a connection for appends, and
/// opens none; the other stores of the process go on.
async fn a_closed_store_appends_nothing(db: &TestDb) {
    let first = Store::open(&db.url).await.unwrap();
    let second = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&first).await;
    append_note(&first, ledger, "one").await.unwrap();
    append_note(&first, ledger, "two").await.unwrap();
    first.close().await;
    let refused = append_note(&first, ledger, "closed").await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Database {
                source: sqlx::Error::PoolClosed,
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(
        !second.holds_kept_writer().await,
        "nothing kept for a closed store"
    );
    assert_eq!(append_note(&second, ledger, "open").await.unwrap(), 4);
    let events = all_events(&second, ledger).await;
    assert_eq!(events.len(), 4);
    assert_chain(&events);
}

/// Tasks sharing one store share its connection pool: the writers waiting for their turn must
/// leave the one whose turn it is a connection (PostgreSQL: a pool of 4, 12 writers).
async fn many_tasks_on_one_store_all_append(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    let mut tasks = Vec::new();
    for writer in 0..12 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("w{writer}");
            for version in 0..5 {
                store
                    .append(
                        ledger,
                        false,
                        &[(stream.clone(), ExpectedVersion::Exact(version))],
                        vec![note(&stream, serde_json::json!({"v": version}))],
                        Utc::now(),
                    )
                    .await
                    .unwrap_or_else(|error| panic!("{stream} v{version}: {error}"));
            }
        }));
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("no writer starves")
            .unwrap();
    }
    assert_eq!(store.head(ledger).await.unwrap().unwrap().0, 61);
    verify_live_chain(&store, ledger).await.unwrap();
}

/// `rebuild` replaces every projection row under the head lock while co-signatures append (on
/// PostgreSQL, as one statement each, whose snapshot can predate the rebuild's commit): no
/// projection change may be lost, so the rows equal a rebuild from the events at the end.
async fn rebuilds_during_appends_lose_no_projection_change(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    for id in ["p1", "p2"] {
        store
            .append(
                ledger,
                false,
                &[(id.into(), ExpectedVersion::NoStream)],
                vec![recorded(id, "pass")],
                Utc::now(),
            )
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for id in ["p1", "p2"] {
        let url = db.url.clone();
        tasks.push(tokio::spawn(async move {
            let store = Store::open(&url).await.unwrap();
            for n in 0..25u64 {
                let key = format!("SHA256:k{n}");
                let event = typed(
                    id,
                    Event::ProposalSigned(ProposalSigned {
                        proposal_id: id.into(),
                        signature: signature(&key),
                    }),
                );
                store
                    .append(
                        ledger,
                        false,
                        &[
                            ("ledger".into(), ExpectedVersion::Exact(1)),
                            (id.into(), ExpectedVersion::Exact(n + 1)),
                        ],
                        vec![event],
                        Utc::now(),
                    )
                    .await
                    .unwrap_or_else(|error| panic!("{id} #{n}: {error}"));
            }
            store.close().await;
        }));
    }
    let rebuilder = {
        let url = db.url.clone();
        tokio::spawn(async move {
            let store = Store::open(&url).await.unwrap();
            for _ in 0..15 {
                store.rebuild_projections(ledger).await.unwrap();
            }
            store.close().await;
        })
    };
    for task in tasks {
        task.await.unwrap();
    }
    rebuilder.await.unwrap();
    let query = "SELECT * FROM proposals ORDER BY proposal_id";
    let incremental = db.raw_rows(query).await;
    assert_eq!(incremental[0][11], "25", "p1 counted every co-signature");
    assert_eq!(incremental[1][11], "25", "p2 counted every co-signature");
    store.rebuild_projections(ledger).await.unwrap();
    assert_eq!(
        db.raw_rows(query).await,
        incremental,
        "rebuilt == incremental"
    );
}

/// The event and its projection change commit together or not at all, on the path the CLI's
/// appends take (on SQLite the insert, the change and the commit travel as one command), and a
/// refused append leaves the store's connection usable: nothing of an open transaction lingers.
async fn a_refused_projection_change_rolls_back_its_event(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    store
        .append(
            ledger,
            false,
            &[("p1".into(), ExpectedVersion::NoStream)],
            vec![recorded("p1", "pass")],
            Utc::now(),
        )
        .await
        .unwrap();
    let before = all_events(&store, ledger).await;
    let row_before = store.proposal(ledger, "p1").await.unwrap().unwrap();
    // An injected fault: the projection's UPDATE fails after the event's insert went in.
    if db.backend == "sqlite" {
        db.raw_execute("CREATE TRIGGER injected_fault BEFORE UPDATE ON proposals BEGIN SELECT RAISE(ABORT, 'injected fault'); END")
            .await
            .unwrap();
    } else {
        db.raw_execute("CREATE FUNCTION injected_fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$; CREATE TRIGGER injected_fault BEFORE UPDATE ON proposals FOR EACH ROW EXECUTE FUNCTION injected_fault()")
            .await
            .unwrap();
    }
    let signed = || {
        typed(
            "p1",
            Event::ProposalSigned(ProposalSigned {
                proposal_id: "p1".into(),
                signature: signature("SHA256:carol"),
            }),
        )
    };
    let expected = [
        ("ledger".to_string(), ExpectedVersion::Exact(1)),
        ("p1".to_string(), ExpectedVersion::Exact(1)),
    ];
    for attempt in 0..3 {
        let error = store
            .append(ledger, false, &expected, vec![signed()], Utc::now())
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("injected fault"),
            "attempt {attempt}: {error}"
        );
        assert_eq!(
            all_events(&store, ledger).await,
            before,
            "attempt {attempt}"
        );
        assert_eq!(store.head(ledger).await.unwrap().unwrap().0, 2);
        assert_eq!(
            store.proposal(ledger, "p1").await.unwrap().unwrap(),
            row_before
        );
    }
    let drop_fault = match db.backend {
        "sqlite" => "DROP TRIGGER injected_fault",
        _ => "DROP TRIGGER injected_fault ON proposals",
    };
    db.raw_execute(drop_fault).await.unwrap();
    let stored = store
        .append(ledger, false, &expected, vec![signed()], Utc::now())
        .await
        .unwrap();
    assert_eq!((stored[0].seq, stored[0].stream_version), (3, 2));
    let events = all_events(&store, ledger).await;
    assert_eq!(events.len(), 3);
    assert_chain(&events);
    let row = store.proposal(ledger, "p1").await.unwrap().unwrap();
    assert_eq!(row.signature_count, row_before.signature_count + 1);
    assert_eq!(row.last_seq, 3);
}

/// Polls `future` until it completes or has waited `stop_at` times, then drops it there: `None`
/// when it was cut before completing.
async fn cut_at_wait<F: Future + Unpin>(mut future: F, stop_at: u64) -> Option<F::Output> {
    let mut waits = 0;
    let outcome = std::future::poll_fn(|cx| match std::pin::Pin::new(&mut future).poll(cx) {
        std::task::Poll::Ready(output) => std::task::Poll::Ready(Some(output)),
        std::task::Poll::Pending if waits == stop_at => std::task::Poll::Ready(None),
        std::task::Poll::Pending => {
            waits += 1;
            std::task::Poll::Pending
        }
    })
    .await;
    drop(future);
    outcome
}

/// Appends abandoned at every stage (their futures dropped by a timeout, as a cancelled task or
/// a stopped CLI would) leave whole events or none, a gapless chain, and a store that goes on. A
/// cancelled append's outcome is unknown to its caller (its commit may already be on its way),
/// so each goes to a stream of its own, and the checks allow for late commits.
async fn cancelled_appends_leave_a_valid_chain_and_a_working_store(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&store).await;
    let (mut cancelled, mut completed) = (0, 0);
    for i in 0..60u64 {
        let stream = format!("s{i}");
        let expected = [(stream.clone(), ExpectedVersion::NoStream)];
        let append = Box::pin(store.append(
            ledger,
            false,
            &expected,
            vec![note(&stream, serde_json::json!({ "i": i }))],
            Utc::now(),
        ));
        // Dropped at its n-th wait, from the first to past the commit: each wait is one step
        // (the turn, a command to the database, a reply).
        let stop_at = i % 12;
        let outcome = cut_at_wait(append, stop_at).await;
        match outcome {
            Some(appended) => {
                appended.unwrap();
                completed += 1;
            }
            None => cancelled += 1,
        }
    }
    assert!(
        cancelled > 0 && completed > 0,
        "{cancelled} cancelled, {completed} completed"
    );
    let stored = store
        .append(
            ledger,
            false,
            &[("after".into(), ExpectedVersion::NoStream)],
            vec![note("after", serde_json::json!({ "after": true }))],
            Utc::now(),
        )
        .await
        .unwrap();
    let (head_seq, head_hash) = store.head(ledger).await.unwrap().unwrap();
    assert!(head_seq >= stored[0].seq);
    let events = all_events(&store, ledger).await;
    assert_chain(&events);
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event.seq, index as u64 + 1, "gapless");
        assert_eq!(event.stream_version, 1, "one event per stream");
    }
    assert_eq!(events[head_seq as usize - 1].hash, head_hash);
    assert_eq!(events[stored[0].seq as usize - 1], stored[0]);
}

/// Below `Store`'s own task: SQLite's two-command append (`TwoTrips`) on the store's pooled
/// connection (a process's first append to a file: every CLI command's) dropped at each of its
/// awaits, including between its two commands, leaves no transaction open on that connection
/// (`OpenWrite` closes it): the next append neither fails nor waits for the write lock.
#[tokio::test]
async fn sqlite_two_command_appends_cut_at_every_await_leave_no_open_transaction() {
    let (mut cancelled, mut completed) = (0, 0);
    for i in 0..24u64 {
        // A file of its own each time, so the cut append is its process's first to that file.
        let db = TestDb::sqlite();
        let store = Store::open(&db.url).await.unwrap();
        let ledger = new_ledger(&store).await;
        let stream = format!("s{i}");
        let expected = [
            ("ledger".to_string(), ExpectedVersion::Exact(1)),
            (stream.clone(), ExpectedVersion::NoStream),
        ];
        let append = Box::pin(sqlite_store(&store).append(
            ledger,
            false,
            &expected,
            vec![note(&stream, serde_json::json!({ "i": i }))],
            Utc::now(),
            Landing::default(),
        ));
        let stop_at = i % 8;
        let outcome = cut_at_wait(append, stop_at).await;
        match outcome {
            Some(appended) => {
                appended.unwrap();
                completed += 1;
            }
            None => cancelled += 1,
        }
        // The next append (the process's second: on the kept connection) goes through at
        // once: a transaction left open on the pooled connection would hold the write lock its
        // BEGIN IMMEDIATE waits for, past the 10 s this allows (the busy timeout is 30 s).
        let probe = format!("probe{i}");
        tokio::time::timeout(Duration::from_secs(10), append_note(&store, ledger, &probe))
            .await
            .expect("the append after a cut one waited")
            .unwrap_or_else(|error| panic!("after cut {i} (at wait {stop_at}): {error}"));
        let events = all_events(&store, ledger).await;
        assert_chain(&events);
        assert_eq!(
            store.head(ledger).await.unwrap().unwrap().0,
            events.len() as u64
        );
        store.close().await;
    }
    assert!(
        cancelled > 0 && completed > 0,
        "{cancelled} cancelled, {completed} completed"
    );
}

/// Opening skips sqlx's migrator when the database records exactly this binary's migrations
/// (store/sqlite.rs, `migrations_current`); any other record goes through the migrator,
/// which refuses it as it always has.
#[tokio::test]
async fn sqlite_a_migration_record_unlike_this_binarys_is_refused_on_open() {
    for (what, tamper) in [
        (
            "a migration marked failed (dirty)",
            "UPDATE _sqlx_migrations SET success = false WHERE version = 3",
        ),
        (
            "a migration whose checksum changed",
            "UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 2",
        ),
        (
            "a migration from a newer binary",
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99, 'newer', true, x'00', 0)",
        ),
    ] {
        let db = TestDb::sqlite();
        Store::open(&db.url).await.unwrap().close().await;
        // Untouched, the record is current and the database opens again.
        Store::open_existing(&db.url).await.unwrap().close().await;
        db.raw_execute(tamper).await.unwrap();
        let error = Store::open_existing(&db.url)
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: opened"));
        assert!(
            matches!(error, StoreError::Migrate { .. }),
            "{what}: {error}"
        );
    }
}

/// migrations/sqlite/0003 rebuilds the events table keyed by seq: a ledger written under the
/// earlier schema keeps every event byte for byte, its chain, its head and its guards, and
/// takes new appends.
#[tokio::test]
async fn sqlite_ledgers_from_the_earlier_schema_survive_the_seq_rowid_migration() {
    use rollbook::crypto::canonical::GENESIS_PREV_HASH;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
    use std::path::Path;
    use std::str::FromStr;

    let db = TestDb::sqlite();
    // The schema as it was before 0003: the first two migrations only.
    let earlier = db.dir.path().join("earlier-migrations");
    std::fs::create_dir(&earlier).unwrap();
    for name in ["0001_ledger.sql", "0002_chain_head_trigger.sql"] {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations/sqlite")
            .join(name);
        std::fs::copy(source, earlier.join(name)).unwrap();
    }
    let options = SqliteConnectOptions::from_str(&db.url)
        .unwrap()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(earlier.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let ledger = Uuid::now_v7();
    let start = Utc::now();
    let stamp = rollbook::domain::envelope::format_timestamp(start);
    sqlx::query("INSERT INTO ledgers (ledger_id, head_seq, head_hash, head_recorded_at, created_at) VALUES (?1, 0, ?2, ?3, ?3)")
        .bind(ledger.to_string())
        .bind(GENESIS_PREV_HASH.to_vec())
        .bind(&stamp)
        .execute(&pool)
        .await
        .unwrap();
    let mut written = Vec::new();
    let mut prev = GENESIS_PREV_HASH;
    for seq in 1..=6u64 {
        let stream = if seq % 2 == 0 { "a" } else { "b" };
        let event = StoredEvent::seal(
            ledger,
            seq,
            seq.div_ceil(2),
            Uuid::now_v7(),
            start,
            prev,
            note(stream, serde_json::json!({ "seq": seq })),
        );
        sqlx::query("INSERT INTO events (ledger_id, seq, stream_id, stream_version, event_id, event_type, schema_version, recorded_at, actor, payload, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)")
            .bind(ledger.to_string())
            .bind(event.seq as i64)
            .bind(&event.stream_id)
            .bind(event.stream_version as i64)
            .bind(event.event_id.to_string())
            .bind(&event.event_type)
            .bind(event.schema_version as i64)
            .bind(&event.recorded_at)
            .bind(&event.actor)
            .bind(&event.payload)
            .bind(event.prev_hash.to_vec())
            .bind(event.hash.to_vec())
            .execute(&pool)
            .await
            .unwrap();
        prev = event.hash;
        written.push(event);
    }
    pool.close().await;

    let store = Store::open(&db.url).await.unwrap();
    assert_eq!(all_events(&store, ledger).await, written);
    assert_eq!(store.head(ledger).await.unwrap().unwrap(), (6, prev));
    assert_eq!(store.read_stream(ledger, "a").await.unwrap().len(), 3);
    // The (ledger_id, seq) index is gone; the event-id and stream-version ones remain (beside
    // 0007's proposal-id indexes, events_proposal_id_*).
    let indexes = db
        .raw_rows("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND name NOT LIKE 'events_proposal_id_%' ORDER BY name")
        .await;
    assert_eq!(indexes.len(), 2, "{indexes:?}");
    let triggers = db
        .raw_rows("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events' ORDER BY name")
        .await;
    // 0003's four, and 0004's guard against an insert that would REPLACE a stored row.
    assert_eq!(triggers.len(), 5, "{triggers:?}");
    for refused in [
        "UPDATE events SET payload = x'00' WHERE seq = 2",
        "DELETE FROM events WHERE seq = 6",
    ] {
        assert!(db.raw_execute(refused).await.is_err(), "{refused}");
    }
    let stored = store
        .append(
            ledger,
            false,
            &[("a".into(), ExpectedVersion::Exact(3))],
            vec![note("a", serde_json::json!({ "after": "0003" }))],
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!((stored[0].seq, stored[0].stream_version), (7, 4));
    let events = all_events(&store, ledger).await;
    assert_chain(&events);
    assert_eq!(&events[..6], &written[..]);
}

fn sqlite_store(store: &Store) -> &rollbook::store::SqliteStore {
    match store {
        Store::Sqlite(inner) => inner,
        Store::Postgres(_) => unreachable!("a sqlite:// URL opens SQLite"),
    }
}

async fn append_note(store: &Store, ledger: Uuid, stream: &str) -> Result<u64, StoreError> {
    let written = store
        .append(
            ledger,
            false,
            &[
                ("ledger".into(), ExpectedVersion::Exact(1)),
                (stream.to_string(), ExpectedVersion::NoStream),
            ],
            vec![note(stream, serde_json::json!({ "stream": stream }))],
            Utc::now(),
        )
        .await?;
    Ok(written[0].seq)
}

/// An in-memory SQLite database is one per connection: its appends stay on the store's own.
#[tokio::test]
async fn sqlite_in_memory_appends_stay_on_the_stores_connection() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let ledger = new_ledger(&store).await;
    for stream in ["one", "two", "three"] {
        append_note(&store, ledger, stream).await.unwrap();
    }
    assert!(!store.holds_kept_writer().await);
    assert_eq!(all_events(&store, ledger).await.len(), 4);
}

/// The shared append connection cut at each await of an append, including between its two
/// commands, is closed rather than handed on with a transaction open: the next append, from
/// either store, goes through at once and the chain stays whole.
#[tokio::test]
async fn sqlite_shared_append_connection_cut_at_every_await_leaves_no_open_transaction() {
    let db = TestDb::sqlite();
    let first = Store::open(&db.url).await.unwrap();
    let second = Store::open(&db.url).await.unwrap();
    let ledger = new_ledger(&first).await;
    let (mut cancelled, mut completed) = (0, 0);
    for i in 0..40u64 {
        let stream = format!("s{i}");
        let append = Box::pin(append_note(&first, ledger, &stream));
        let stop_at = i % 8;
        match cut_at_wait(append, stop_at).await {
            Some(appended) => {
                appended.unwrap();
                completed += 1;
            }
            None => cancelled += 1,
        }
        let probe = if i % 2 == 0 { &second } else { &first };
        tokio::time::timeout(
            Duration::from_secs(10),
            append_note(probe, ledger, &format!("probe{i}")),
        )
        .await
        .expect("the append after a cut one waited")
        .unwrap_or_else(|error| panic!("after cut {i} (at wait {stop_at}): {error}"));
    }
    assert!(
        cancelled > 0 && completed > 0,
        "{cancelled} cancelled, {completed} completed"
    );
    let opened =
        first.append_counts().kept_writer_opened + second.append_counts().kept_writer_opened;
    assert!(
        opened > 1,
        "appends cut inside their transaction closed the shared connection ({opened} opened)"
    );
    let events = all_events(&second, ledger).await;
    assert_chain(&events);
    assert_eq!(
        second.head(ledger).await.unwrap().unwrap().0,
        events.len() as u64
    );
}

/// migrations/postgres/0003 replaces the insert trigger's function of 0002 (without the
/// `rollbook.expect_*` check): a database an earlier rollbook migrated (0001 and 0002 only)
/// keeps its ledger byte for byte and its guards, and takes appends on both write paths.
#[tokio::test]
async fn postgres_ledgers_from_before_the_trigger_replacement_keep_appending() {
    use rollbook::crypto::canonical::GENESIS_PREV_HASH;
    use std::path::Path;

    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let earlier = db.dir.path().join("earlier-migrations");
    std::fs::create_dir(&earlier).unwrap();
    for name in ["0001_ledger.sql", "0002_chain_head_trigger.sql"] {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations/postgres")
            .join(name);
        std::fs::copy(source, earlier.join(name)).unwrap();
    }
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(earlier.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let ledger = Uuid::now_v7();
    let start = Utc::now();
    let stamp = rollbook::domain::envelope::format_timestamp(start);
    sqlx::query("INSERT INTO ledgers (ledger_id, head_seq, head_hash, head_recorded_at, created_at) VALUES ($1, 0, $2, $3, $3)")
        .bind(ledger.to_string())
        .bind(GENESIS_PREV_HASH.to_vec())
        .bind(&stamp)
        .execute(&pool)
        .await
        .unwrap();
    let mut written = Vec::new();
    let mut prev = GENESIS_PREV_HASH;
    for seq in 1..=4u64 {
        let stream = if seq == 1 { "ledger" } else { "a" };
        let event = StoredEvent::seal(
            ledger,
            seq,
            if seq == 1 { 1 } else { seq - 1 },
            Uuid::now_v7(),
            start,
            prev,
            note(stream, serde_json::json!({ "seq": seq })),
        );
        sqlx::query("INSERT INTO events (ledger_id, seq, stream_id, stream_version, event_id, event_type, schema_version, recorded_at, actor, payload, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
            .bind(ledger.to_string())
            .bind(event.seq as i64)
            .bind(&event.stream_id)
            .bind(event.stream_version as i64)
            .bind(event.event_id.to_string())
            .bind(&event.event_type)
            .bind(event.schema_version as i32)
            .bind(&event.recorded_at)
            .bind(&event.actor)
            .bind(&event.payload)
            .bind(event.prev_hash.to_vec())
            .bind(event.hash.to_vec())
            .execute(&pool)
            .await
            .unwrap();
        prev = event.hash;
        written.push(event);
    }
    pool.close().await;

    let store = Store::open(&db.url).await.unwrap();
    let function = db
        .raw_rows("SELECT prosrc FROM pg_proc WHERE proname = 'rollbook_extend_head' AND pronamespace = current_schema()::regnamespace")
        .await;
    assert_eq!(function.len(), 1, "{function:?}");
    assert!(
        !function[0][0].contains("expect_stream"),
        "0003 replaced the function"
    );
    let applied = db
        .raw_rows("SELECT version FROM _sqlx_migrations ORDER BY version")
        .await;
    // Every migration of the folder, the ones after 0003 included.
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count();
    let every: Vec<Vec<String>> = (1..=migrations).map(|v| vec![v.to_string()]).collect();
    assert_eq!(applied, every);
    assert_eq!(all_events(&store, ledger).await, written);
    assert_eq!(store.head(ledger).await.unwrap().unwrap(), (4, prev));
    // The one-statement path (twice: the second on the remembered head), then the locked one.
    for version in 3..5 {
        let stored = store
            .append(
                ledger,
                false,
                &[
                    ("ledger".into(), ExpectedVersion::Exact(1)),
                    ("a".into(), ExpectedVersion::Exact(version)),
                ],
                vec![note("a", serde_json::json!({ "after": version }))],
                Utc::now(),
            )
            .await
            .unwrap();
        assert_eq!(stored[0].seq, version + 2);
    }
    assert_eq!(store.append_counts().one_statement, 2);
    let stored = store
        .append(
            ledger,
            false,
            &[],
            vec![
                note("b", serde_json::json!({ "pair": 1 })),
                note("b", serde_json::json!({ "pair": 2 })),
            ],
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(stored[1].seq, 8);
    // The guard still refuses a row that does not extend the head.
    let forged = db
        .raw_execute("INSERT INTO events SELECT ledger_id, 9, 'forged', 1, 'f' || event_id, event_type, schema_version, recorded_at, actor, payload, prev_hash, hash FROM events WHERE seq = 8")
        .await
        .expect_err("a row on a stale prev_hash");
    assert!(
        forged.to_string().contains("must extend its ledger head"),
        "{forged}"
    );
    store.close().await;
    // Opened again, nothing is left to migrate.
    let store = Store::open_existing(&db.url).await.unwrap();
    let events = all_events(&store, ledger).await;
    assert_eq!(events.len(), 8);
    assert_eq!(&events[..4], &written[..]);
    assert_chain(&events);
    verify_live_chain(&store, ledger).await.unwrap();
}

/// On PostgreSQL, the UPSERT that rewrites every column of the row it collides with on `target`.
const UPSERT_EVENT_TAIL: &str =
    "DO UPDATE SET seq = EXCLUDED.seq, stream_id = EXCLUDED.stream_id, \
     stream_version = EXCLUDED.stream_version, event_id = EXCLUDED.event_id, \
     event_type = EXCLUDED.event_type, recorded_at = EXCLUDED.recorded_at, \
     payload = EXCLUDED.payload, prev_hash = EXCLUDED.prev_hash, hash = EXCLUDED.hash";

/// An event re-sealed with other chain fields, its hash recomputed as a careful attacker would.
fn resealed(event: &StoredEvent, seq: u64, prev_hash: [u8; 32]) -> StoredEvent {
    let mut forged = event.clone();
    forged.seq = seq;
    forged.prev_hash = prev_hash;
    forged.hash = forged.computed_hash();
    forged
}

/// A ledger of genesis and six notes on stream "a" (seq 4 stands for the veto an attacker
/// wants gone), and everything an attack must leave as it was.
async fn ledger_of_seven(store: &Store) -> Uuid {
    let ledger = new_ledger(store).await;
    for n in 0..6u64 {
        store
            .append(
                ledger,
                false,
                &[("a".into(), ExpectedVersion::Exact(n))],
                vec![note("a", serde_json::json!({ "n": n }))],
                Utc::now(),
            )
            .await
            .unwrap();
    }
    ledger
}

const ALL_ROWS: &str =
    "SELECT ledger_id, seq, stream_id, stream_version, event_id, hash FROM events ORDER BY seq";
const HEAD_ROWS: &str = "SELECT ledger_id, head_seq, head_hash, head_recorded_at, created_at FROM ledgers ORDER BY ledger_id";

/// Runs each attack, expects the database to refuse it (by rollbook's guards, not by accident),
/// and the ledger to be exactly as it was and still verify.
async fn assert_refused_and_unchanged(
    db: &TestDb,
    store: &Store,
    ledger: Uuid,
    attacks: &[(&str, String)],
) {
    let events_before = db.raw_rows(ALL_ROWS).await;
    let heads_before = db.raw_rows(HEAD_ROWS).await;
    let head_before = store.head(ledger).await.unwrap().unwrap();
    for (what, sql) in attacks {
        let error = db
            .raw_execute(sql)
            .await
            .map(|changed| format!("accepted, {changed} rows changed"))
            .expect_err(&format!("{what} must be refused: {sql}"))
            .to_string();
        assert!(error.contains("rollbook:"), "{what}: {error}");
        assert_eq!(db.raw_rows(ALL_ROWS).await, events_before, "{what}");
        assert_eq!(db.raw_rows(HEAD_ROWS).await, heads_before, "{what}");
        assert_eq!(store.head(ledger).await.unwrap().unwrap(), head_before);
    }
    let summary = verify_live_chain(store, ledger).await.unwrap();
    assert_eq!(summary.events, head_before.0);
}

/// migrations/*/0004: the head row moves only with an insert that extends it, one step, onto
/// the event inserted; an UPDATE or UPSERT of the head by hand is refused (issue 19, case 1).
async fn the_database_refuses_to_move_the_head_by_hand(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = ledger_of_seven(&store).await;
    let events = all_events(&store, ledger).await;
    let third = &events[2];
    let (hash3, time3) = (sql_bytes(db, &third.hash), sql_text(&third.recorded_at));
    let lowered =
        format!("UPDATE ledgers SET head_seq = 3, head_hash = {hash3}, head_recorded_at = {time3}");
    let upsert = format!(
        "INSERT INTO ledgers (ledger_id, head_seq, head_hash, head_recorded_at, created_at) \
         SELECT ledger_id, 3, {hash3}, {time3}, created_at FROM ledgers WHERE true \
         ON CONFLICT (ledger_id) DO UPDATE SET head_seq = EXCLUDED.head_seq, \
         head_hash = EXCLUDED.head_hash, head_recorded_at = EXCLUDED.head_recorded_at"
    );
    let mut attacks = vec![
        ("lowering the head", lowered),
        (
            "another hash at the same seq",
            format!("UPDATE ledgers SET head_hash = {hash3}"),
        ),
        (
            "a step forward onto no event",
            "UPDATE ledgers SET head_seq = head_seq + 1".to_string(),
        ),
        (
            "the head of another ledger id",
            format!(
                "UPDATE ledgers SET ledger_id = {}",
                sql_text(&Uuid::now_v7().to_string())
            ),
        ),
        ("an UPSERT of the head", upsert),
    ];
    if db.backend == "sqlite" {
        attacks.push((
            "an INSERT OR REPLACE of the head",
            format!(
                "INSERT OR REPLACE INTO ledgers (ledger_id, head_seq, head_hash, head_recorded_at, created_at) \
                 SELECT ledger_id, 3, {hash3}, {time3}, created_at FROM ledgers"
            ),
        ));
        attacks.push((
            "a REPLACE of the head at 0",
            "REPLACE INTO ledgers (ledger_id, head_seq, head_hash, head_recorded_at, created_at) \
             SELECT ledger_id, 0, head_hash, head_recorded_at, created_at FROM ledgers"
                .to_string(),
        ));
    }
    assert_refused_and_unchanged(db, &store, ledger, &attacks).await;
    // Honest appends still move it.
    store
        .append(
            ledger,
            false,
            &[("a".into(), ExpectedVersion::Exact(6))],
            vec![note("a", serde_json::json!({ "n": 6 }))],
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(store.head(ledger).await.unwrap().unwrap().0, 8);
    verify_live_chain(&store, ledger).await.unwrap();
}

/// Issue 19, case 1 as reproduced: lower the head below the veto (seq 4), then write every later
/// event one seq lower with its hash recomputed (REPLACE on SQLite, UPSERT on PostgreSQL), then
/// rebuild. The first step is refused, each later one too, and the ledger is as it was.
async fn lowering_the_head_to_replace_later_events_is_refused_at_the_first_step(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = ledger_of_seven(&store).await;
    let events = all_events(&store, ledger).await;
    let third = &events[2];
    let mut attacks = vec![(
        "lowering the head below the veto",
        format!(
            "UPDATE ledgers SET head_seq = 3, head_hash = {}, head_recorded_at = {}",
            sql_bytes(db, &third.hash),
            sql_text(&third.recorded_at)
        ),
    )];
    let mut prev = third.hash;
    for later in &events[4..] {
        let moved = resealed(later, later.seq - 1, prev);
        prev = moved.hash;
        attacks.push(match db.backend {
            "sqlite" => (
                "a later event REPLACEd one seq lower",
                event_row_sql(db, "INSERT OR REPLACE", &moved, ""),
            ),
            _ => (
                "a later event UPSERTed one seq lower",
                event_row_sql(
                    db,
                    "INSERT",
                    &moved,
                    &format!("ON CONFLICT (ledger_id, seq) {UPSERT_EVENT_TAIL}"),
                ),
            ),
        });
    }
    assert_refused_and_unchanged(db, &store, ledger, &attacks).await;
    store.rebuild_projections(ledger).await.unwrap();
    assert_eq!(all_events(&store, ledger).await, events);
    assert_eq!(verify_live_chain(&store, ledger).await.unwrap().events, 7);
}

/// An insert that links to the head but collides with a stored event (its event id, its stream
/// version, its seq) cannot delete or rewrite that event: SQLite's REPLACE deletes the rows it
/// collides with without firing DELETE triggers, PostgreSQL's UPSERT updates them.
async fn an_insert_cannot_replace_a_stored_event(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = ledger_of_seven(&store).await;
    let events = all_events(&store, ledger).await;
    let head = events.last().unwrap();
    let second = &events[1];
    // Extends the head (seq 8 on event 7's hash and time), but reuses event 2's id...
    let mut same_id = resealed(second, 8, head.hash);
    same_id.stream_id = "forged".into();
    same_id.stream_version = 1;
    same_id.recorded_at = head.recorded_at.clone();
    same_id.hash = same_id.computed_hash();
    // ... or event 2's stream version under a new id ...
    let mut same_version = same_id.clone();
    same_version.event_id = Uuid::now_v7();
    same_version.stream_id = second.stream_id.clone();
    same_version.stream_version = second.stream_version;
    same_version.hash = same_version.computed_hash();
    // ... or sits at event 3's seq on event 2's hash.
    let mut same_seq = same_id.clone();
    same_seq.event_id = Uuid::now_v7();
    same_seq.seq = 3;
    same_seq.prev_hash = second.hash;
    same_seq.hash = same_seq.computed_hash();
    let attacks: Vec<(&str, String)> = if db.backend == "sqlite" {
        let other_ledger = Uuid::now_v7();
        let mut other_genesis = resealed(
            &events[0],
            1,
            rollbook::crypto::canonical::GENESIS_PREV_HASH,
        );
        other_genesis.ledger_id = other_ledger;
        other_genesis.event_id = Uuid::now_v7();
        other_genesis.hash = other_genesis.computed_hash();
        vec![
            ("REPLACE on an event id", event_row_sql(db, "INSERT OR REPLACE", &same_id, "")),
            ("REPLACE on a stream version", event_row_sql(db, "REPLACE", &same_version, "")),
            ("REPLACE on a seq", event_row_sql(db, "INSERT OR REPLACE", &same_seq, "")),
            (
                // seq is the rowid, shared by every ledger in the file: a second ledger's
                // genesis at seq 1 would REPLACE this ledger's.
                "REPLACE on a seq from another ledger",
                format!(
                    "BEGIN; INSERT INTO ledgers (ledger_id, head_seq, head_hash, head_recorded_at, created_at) \
                     VALUES ({id}, 0, {zero}, {at}, {at}); {insert}; COMMIT",
                    id = sql_text(&other_ledger.to_string()),
                    zero = sql_bytes(db, &rollbook::crypto::canonical::GENESIS_PREV_HASH),
                    at = sql_text(&other_genesis.recorded_at),
                    insert = event_row_sql(db, "INSERT OR REPLACE", &other_genesis, ""),
                ),
            ),
        ]
    } else {
        vec![
            (
                "UPSERT on an event id",
                event_row_sql(
                    db,
                    "INSERT",
                    &same_id,
                    &format!("ON CONFLICT (event_id) {UPSERT_EVENT_TAIL}"),
                ),
            ),
            (
                "UPSERT on a stream version",
                event_row_sql(
                    db,
                    "INSERT",
                    &same_version,
                    &format!(
                        "ON CONFLICT (ledger_id, stream_id, stream_version) {UPSERT_EVENT_TAIL}"
                    ),
                ),
            ),
            (
                "UPSERT on a seq",
                event_row_sql(
                    db,
                    "INSERT",
                    &same_seq,
                    &format!("ON CONFLICT (ledger_id, seq) {UPSERT_EVENT_TAIL}"),
                ),
            ),
        ]
    };
    assert_refused_and_unchanged(db, &store, ledger, &attacks).await;
    assert_eq!(all_events(&store, ledger).await, events);
}

/// The head row cannot be deleted, even by a connection that switched foreign keys off (SQLite
/// lets any connection do that; on PostgreSQL the events' foreign key refused it already).
async fn the_head_row_cannot_be_deleted(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = ledger_of_seven(&store).await;
    let delete = match db.backend {
        "sqlite" => "PRAGMA foreign_keys = OFF; DELETE FROM ledgers",
        _ => "DELETE FROM ledgers",
    };
    assert_refused_and_unchanged(
        db,
        &store,
        ledger,
        &[("deleting the head row", delete.to_string())],
    )
    .await;
}
