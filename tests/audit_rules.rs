//! One test per numbered check of docs/audit-format.md ("Checks a verifier makes"). Each starts
//! from a VALID export of a real ledger (made by the service, on both backends where the case
//! also lives in the store), breaks exactly that check as an attacker would (every hash, the
//! header and the checkpoint recomputed; a signer's own signatures made afresh where the attack
//! needs one), and expects INVALID at the right seq with a reason naming the check.

mod common;

use std::io::Cursor;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::entry;
use common::story::{body, t0, Keys};
use common::TestDb;
use rollbook::audit::export::{CheckpointLine, EventLine, Line};
use rollbook::audit::{verify_export, verify_live, VerifyError};
use rollbook::crypto::canonical::ChainHead;
use rollbook::crypto::keys::SecretKey;
use rollbook::crypto::merkle::MerkleBuilder;
use rollbook::crypto::to_hex;
use rollbook::domain::approval::ProposalDraft;
use rollbook::domain::envelope::{
    format_timestamp, parse_timestamp, uuid_v7_at, StoredEvent, ID_TIME_WINDOW_SECONDS,
};
use rollbook::domain::events::{
    Event, Fill, ProposalExpired, ProposalRecorded, SignerEntry, SignerSet,
};
use rollbook::domain::execution::ExecutionRequest;
use rollbook::domain::governance::{seal_signature, ActiveSet, Governance};
use rollbook::domain::refusal::Refusal;
use rollbook::service::{self, Ledger, ServiceError};
use rollbook::sizing::{Draws, Policy, Proposal};
use rollbook::store::Store;
use uuid::Uuid;

/// The story of `common::story` (its seqs below), with its keys.
async fn story(db: &TestDb) -> (Ledger, Keys) {
    story_with(db, None).await
}

/// The story with the keys of alice, bob and carol valid only before `lifetime_end`.
async fn story_with(db: &TestDb, lifetime_end: Option<DateTime<Utc>>) -> (Ledger, Keys) {
    let k = Keys::generate();
    let (ledger, _) = common::story::story(db, &k, lifetime_end).await;
    (ledger, k)
}

const COMMITTED_ROLL: [u64; 4] = [3, 4, 5, 6];
const COMMIT: u64 = 6;
const ADOPTION: u64 = 18;
const EXPIRED_ROLL: u64 = 11;
const PENDING_ROLL: u64 = 19;
const LAST: u64 = 20;

async fn export_lines(ledger: &Ledger) -> Vec<String> {
    let lines = export_of(ledger).await;
    assert_eq!(
        lines.len() as u64,
        LAST + 2,
        "header, the story, checkpoint"
    );
    lines
}

/// The export of any ledger, checked valid.
async fn export_of(ledger: &Ledger) -> Vec<String> {
    let lines = common::story::jsonl_lines(ledger, None).await;
    verify(&lines).expect("the genuine export verifies");
    lines
}

/// A valid export of the story on SQLite (the mutations below act on the file only).
async fn valid_export() -> Vec<String> {
    let db = TestDb::sqlite();
    let (ledger, _) = story(&db).await;
    export_lines(&ledger).await
}

fn verify(lines: &[String]) -> Result<(), VerifyError> {
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    verify_export(Cursor::new(text.into_bytes()), |_| {}).map(|_| ())
}

/// The export is INVALID at `seq` with a reason that contains `needle` (the check's number).
#[track_caller]
fn assert_invalid_at(lines: &[String], seq: u64, needle: &str) {
    match verify(lines) {
        Err(VerifyError::Invalid(failure)) => {
            assert_eq!(failure.seq, seq, "{failure}");
            assert!(
                failure.reason.contains(needle),
                "{failure} does not name {needle:?}"
            );
        }
        other => panic!("expected INVALID at seq {seq} naming {needle:?}, got {other:?}"),
    }
}

fn events(lines: &[String]) -> Vec<StoredEvent> {
    lines[1..lines.len() - 1]
        .iter()
        .map(|line| match Line::parse(line).unwrap() {
            Line::Event(event) => event.to_event().unwrap(),
            other => panic!("not an event line: {other:?}"),
        })
        .collect()
}

/// An attacker's export of `events`: seqs renumbered from 1, every hash, the header's genesis
/// hash and the checkpoint recomputed. The header keeps its other fields.
fn rewrite(header: &str, events: Vec<StoredEvent>) -> Vec<String> {
    let mut prev = [0u8; 32];
    let mut merkle = MerkleBuilder::new();
    let mut out = Vec::new();
    let count = events.len() as u64;
    let ledger_id = events[0].ledger_id.to_string();
    for (index, mut event) in events.into_iter().enumerate() {
        event.seq = index as u64 + 1;
        event.prev_hash = prev;
        event.hash = event.computed_hash();
        prev = event.hash;
        merkle.push_leaf_data(&event.hash);
        out.push(Line::Event(EventLine::from_event(&event).unwrap()).to_text());
    }
    let Line::Header(mut header) = Line::parse(header).unwrap() else {
        panic!("not a header")
    };
    header.genesis_hash = Line::parse(&out[0])
        .map(|line| match line {
            Line::Event(event) => event.hash,
            _ => unreachable!(),
        })
        .unwrap();
    let checkpoint = CheckpointLine {
        line_type: "checkpoint".into(),
        ledger_id,
        tree_size: count,
        head_hash: to_hex(&prev),
        merkle_root: to_hex(&merkle.root()),
    };
    let mut all = vec![Line::Header(header).to_text()];
    all.extend(out);
    all.push(Line::Checkpoint(checkpoint).to_text());
    all
}

/// The valid export with `edit` applied to the event at `seq`, everything recomputed.
fn with_event(lines: &[String], seq: u64, edit: impl FnOnce(&mut StoredEvent)) -> Vec<String> {
    let mut all = events(lines);
    edit(&mut all[seq as usize - 1]);
    rewrite(&lines[0], all)
}

/// The valid export with `payload` edited as JSON text at `seq`, everything recomputed.
fn with_payload_text(lines: &[String], seq: u64, edit: impl FnOnce(&str) -> String) -> Vec<String> {
    with_event(lines, seq, |event| {
        event.payload = edit(std::str::from_utf8(&event.payload).unwrap()).into_bytes();
    })
}

/// The valid export with `added` appended after its last event, everything recomputed.
fn appended(lines: &[String], added: Vec<StoredEvent>) -> Vec<String> {
    let mut all = events(lines);
    all.extend(added);
    rewrite(&lines[0], all)
}

/// A copy of `event` re-stamped at `at`, with a fresh event id of that time.
fn restamped(event: &StoredEvent, at: DateTime<Utc>) -> StoredEvent {
    let mut copy = event.clone();
    copy.recorded_at = format_timestamp(at);
    copy.event_id = uuid_v7_at(at);
    copy
}

/// The valid export cut after the adoption, with the `proposal.expired` an earlier rollbook
/// wrote right after it for the roll of seq 11 (bound to the replaced set), everything
/// recomputed: still valid (rule 6). The expiry is seq `ADOPTION + 1`, the last. (Inserted
/// before later events it would break their signatures' bound heads, check A11.)
fn with_legacy_expiry(lines: &[String]) -> Vec<String> {
    let mut all = events(lines);
    all.truncate(ADOPTION as usize);
    let adoption = &all[ADOPTION as usize - 1];
    let roll = all[EXPIRED_ROLL as usize - 1].stream_id.clone();
    let payload = Event::ProposalExpired(ProposalExpired {
        proposal_id: roll.clone(),
        reason: "signer_set_changed".into(),
    });
    let mut expiry = adoption.clone();
    expiry.event_id = uuid_v7_at(parse_timestamp(&adoption.recorded_at).unwrap());
    expiry.stream_id = roll;
    expiry.stream_version = 3;
    expiry.event_type = payload.event_type().into();
    expiry.payload = payload.to_payload();
    all.insert(ADOPTION as usize, expiry);
    rewrite(&lines[0], all)
}

fn last_time(lines: &[String]) -> DateTime<Utc> {
    parse_timestamp(&events(lines).last().unwrap().recorded_at).unwrap()
}

/// The keys of alice, bob and carol are valid until 30 s after t0. Each kind of signed event
/// of theirs, moved to 40 s (the export cut right after it, every hash recomputed), counts for
/// nothing (A15): the genesis (alice), a recording (bob's, seq 2, 39 s after its draft: within
/// the skew, so only its key's lifetime is broken), a co-signature (alice, seq 4), a veto
/// (carol, seq 8), a withdrawal (bob, seq 10) and the last co-signature (alice, seq 20). Moved to
/// 29 s instead, each verifies: a key that lapses never invalidates what it signed in time.
/// On both backends: the ledger each export comes from is written by either.
async fn a15_a_signature_outside_its_keys_lifetime_counts_for_nothing(db: &TestDb) {
    let (ledger, _) = story_with(db, Some(t0() + Duration::seconds(30))).await;
    let lines = export_lines(&ledger).await;
    let cut_and_moved = |seq: u64, seconds: i64| {
        let mut all = events(&lines);
        all.truncate(seq as usize);
        let moved = restamped(&all[seq as usize - 1], t0() + Duration::seconds(seconds));
        all[seq as usize - 1] = moved;
        rewrite(&lines[0], all)
    };
    for (seq, kind) in [
        (1, "genesis"),
        (2, "proposal"),
        (4, "signature"),
        (8, "veto"),
        (10, "withdrawal"),
        (LAST, "signature"),
    ] {
        let late = cut_and_moved(seq, 40);
        assert_invalid_at(&late, seq, "A15");
        match verify(&late) {
            Err(VerifyError::Invalid(failure)) => assert!(
                failure.reason.contains(&format!("a {kind} at")),
                "seq {seq}: {failure}"
            ),
            other => panic!("seq {seq}: {other:?}"),
        }
        verify(&cut_and_moved(seq, 29))
            .unwrap_or_else(|error| panic!("seq {seq} inside its key's lifetime: {error:?}"));
    }
}

/// alice's key is valid until 50 min after t0. Her record of a committed roll's fills, made at
/// 40 min, moved to 50 min (every hash recomputed) counts for nothing (A15); moved to a
/// microsecond before, it verifies.
async fn a15_an_execution_outside_its_keys_lifetime_counts_for_nothing(db: &TestDb) {
    let (alice, bob, carol) = (
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
    );
    let lapses = t0() + Duration::minutes(50);
    let store = Store::open(&db.url).await.unwrap().trusting_caller_clock(); // a ledger built at chosen times
    let set = ActiveSet::validate(&SignerSet {
        version: 1,
        threshold: 2,
        signers: vec![
            SignerEntry {
                valid_before: Some(format_timestamp(lapses)),
                ..entry("alice", &alice)
            },
            entry("bob", &bob),
            entry("carol", &carol),
        ],
    })
    .unwrap();
    let (ledger_id, _) = service::init(&store, &set, &Policy::default(), &alice, t0())
        .await
        .unwrap();
    let ledger = Ledger::new(store, ledger_id);
    let at = |seconds: i64| t0() + Duration::seconds(seconds);
    let (roll, _) = ledger.propose_roll(body(9), &bob, at(1)).await.unwrap();
    ledger.sign(roll.id, &carol, at(2)).await.unwrap();
    assert!(ledger.sign(roll.id, &alice, at(3)).await.unwrap().committed);
    let request = ExecutionRequest {
        fills: vec![Fill {
            contracts: 9,
            price_usd: 2.95,
            at: format_timestamp(Utc.with_ymd_and_hms(2026, 5, 7, 14, 46, 0).unwrap()),
            broker_ref: "IB-1".into(),
        }],
        corrects: Vec::new(),
    };
    ledger
        .execute(roll.id, &request, &alice, t0() + Duration::minutes(40))
        .await
        .unwrap();
    let lines = export_of(&ledger).await;
    let last = lines.len() as u64 - 2;
    let late = with_event(&lines, last, |event| *event = restamped(event, lapses));
    assert_invalid_at(&late, last, "A15");
    let in_time = with_event(&lines, last, |event| {
        *event = restamped(event, lapses - Duration::microseconds(1))
    });
    verify(&in_time).expect("an execution inside its key's lifetime counts");
}

// ---------------------------------------------------------------------------------------------
// The attack of issue 19, case 2: a committed roll replayed.

/// Copies of the committed roll's recording, co-signatures and commit, appended with new event
/// ids of their own time, within the roll's expiry, every hash recomputed: a second commit of
/// one decision. Refused at the copied recording (A9).
#[tokio::test]
async fn a_replayed_roll_is_refused_a9() {
    let lines = valid_export().await;
    let all = events(&lines);
    let at = last_time(&lines) + Duration::seconds(1);
    let copies = COMMITTED_ROLL
        .iter()
        .map(|&seq| restamped(&all[seq as usize - 1], at))
        .collect();
    assert_invalid_at(&appended(&lines, copies), LAST + 1, "A9");
}

/// A signer whose clock runs 11 minutes fast moves the chain time ahead (a ledger whose clock
/// is the caller's records the later of the writer's clock and the head's). A proposer with a
/// correct clock is then more than the policy's skew behind the head: refused naming both
/// clocks before anything is signed, nothing is written, and the ledger stays valid. (Found by
/// review: the recording used to be written, invalid under A9, and every client then refused
/// the ledger at it for good.)
async fn a_fast_clock_cannot_make_an_honest_recording_invalid(db: &TestDb) {
    let (ledger, k) = story(db).await;
    let at = |seconds: i64| t0() + Duration::seconds(seconds);
    let (roll, _) = ledger.propose_roll(body(3), &k.bob, at(20)).await.unwrap();
    ledger
        .sign(roll.id, &k.carol, at(21) + Duration::minutes(11))
        .await
        .unwrap();
    let head = ledger.store.head(ledger.ledger_id).await.unwrap();
    match ledger.propose_roll(body(4), &k.bob, at(22)).await {
        Err(ServiceError::Refused(Refusal::ClockBehindChain {
            head_time,
            local_time,
            ..
        })) => {
            assert_eq!(local_time, format_timestamp(at(22)));
            assert!(head_time > local_time, "{head_time} {local_time}");
        }
        other => panic!("expected ClockBehindChain, got {other:?}"),
    }
    assert_eq!(ledger.store.head(ledger.ledger_id).await.unwrap(), head);
    verify_live(&ledger.store, ledger.ledger_id, |_| {})
        .await
        .expect("the ledger stays valid");
    // Once this machine's clock is within the skew of the chain's again, proposing works.
    ledger
        .propose_roll(body(4), &k.bob, at(21) + Duration::minutes(11))
        .await
        .unwrap();
    verify_live(&ledger.store, ledger.ledger_id, |_| {})
        .await
        .expect("still valid");
}

/// The same replay written straight into the live store, every hash recomputed, by an
/// administrator who first removes the store's own guard (each stream version once): `verify`
/// of the live ledger refuses it.
async fn a_replay_in_the_store_is_refused_live(db: &TestDb) {
    let (ledger, _) = story(db).await;
    drop_stream_version_guard(db).await;
    let stored = events(&export_lines(&ledger).await);
    let mut prev = stored.last().unwrap().hash;
    let at = parse_timestamp(&stored.last().unwrap().recorded_at).unwrap() + Duration::seconds(1);
    for (offset, &seq) in COMMITTED_ROLL.iter().enumerate() {
        let mut copy = restamped(&stored[seq as usize - 1], at);
        copy.seq = LAST + 1 + offset as u64;
        copy.prev_hash = prev;
        copy.hash = copy.computed_hash();
        prev = copy.hash;
        insert_raw(db, &copy).await;
    }
    match verify_live(&ledger.store, ledger.ledger_id, |_| {}).await {
        Err(VerifyError::Invalid(failure)) => {
            assert_eq!(failure.seq, LAST + 1, "{failure}");
            assert!(failure.reason.contains("A9"), "{failure}");
        }
        other => panic!("the live replay verified: {other:?}"),
    }
}

/// What an administrator does to write a second stream version 1: on PostgreSQL a superuser
/// drops the unique constraint; on SQLite the file's owner rebuilds the table without it (which
/// drops its triggers too, the head's included: the walk fails before the head is compared).
async fn drop_stream_version_guard(db: &TestDb) {
    if db.backend == "postgres" {
        db.tamper(
            "ALTER TABLE events DROP CONSTRAINT events_ledger_id_stream_id_stream_version_key",
        )
        .await
        .unwrap();
        return;
    }
    let create = db
        .raw_rows("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'")
        .await;
    let unguarded = create[0][0]
        .replace("CREATE TABLE \"events\"", "CREATE TABLE events_unguarded")
        .replace(",\n    UNIQUE (ledger_id, stream_id, stream_version)", "");
    assert!(
        unguarded.starts_with("CREATE TABLE events_unguarded")
            && !unguarded.contains("UNIQUE (ledger_id"),
        "{unguarded}"
    );
    db.tamper(&format!(
        "DROP TRIGGER IF EXISTS ledgers_insert_only_empty; {unguarded}; INSERT INTO events_unguarded SELECT * FROM events; DROP TABLE events; \
         ALTER TABLE events_unguarded RENAME TO events;"
    ))
    .await
    .unwrap();
}

/// An event row inserted as a database user would, bypassing rollbook (the insert trigger
/// accepts it: it extends the head).
async fn insert_raw(db: &TestDb, event: &StoredEvent) {
    use sqlx::Connection;
    const SQL: &str = "INSERT INTO events (ledger_id, seq, stream_id, stream_version, event_id, \
        event_type, schema_version, recorded_at, actor, payload, prev_hash, hash) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    if db.backend == "sqlite" {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query(SQL)
            .bind(event.ledger_id.to_string())
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
            .execute(&mut conn)
            .await
            .unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query(SQL)
            .bind(event.ledger_id.to_string())
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
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

both_backends!(
    a15_a_signature_outside_its_keys_lifetime_counts_for_nothing,
    a15_an_execution_outside_its_keys_lifetime_counts_for_nothing
);
both_backends!(a_replay_in_the_store_is_refused_live);
both_backends!(a_fast_clock_cannot_make_an_honest_recording_invalid);

// ---------------------------------------------------------------------------------------------
// Envelope and chain: C1 to C10.

#[tokio::test]
async fn c1_a_missing_event_is_a_seq_gap() {
    let lines = valid_export().await;
    let mut broken = lines.clone();
    broken.remove(4); // seq 4, the hashes of the rest untouched
    assert_invalid_at(
        &broken,
        5,
        "expected seq 4 (events missing, duplicated or reordered) (C1)",
    );
}

#[tokio::test]
async fn c2_an_event_of_another_ledger_is_refused() {
    let lines = valid_export().await;
    let broken = with_event(&lines, 7, |event| event.ledger_id = uuid_v7_at(t0()));
    assert_invalid_at(&broken, 7, "X2");
}

#[tokio::test]
async fn c3_a_prev_hash_that_does_not_chain_is_refused() {
    let lines = valid_export().await;
    let mut all = events(&lines);
    all[6].prev_hash = [7; 32];
    all[6].hash = all[6].computed_hash();
    let mut broken = lines.clone();
    broken[7] = Line::Event(EventLine::from_event(&all[6]).unwrap()).to_text();
    assert_invalid_at(&broken, 7, "C3");
}

#[tokio::test]
async fn c4_an_edited_event_no_longer_matches_its_hash() {
    let lines = valid_export().await;
    let mut all = events(&lines);
    all[7].payload = all[7].payload.replace_bytes("stale", "fresh");
    let mut broken = lines.clone();
    broken[8] = Line::Event(EventLine::from_event(&all[7]).unwrap()).to_text();
    assert_invalid_at(&broken, 8, "C4");
}

/// A leap second, an impossible date and a non-canonical spelling are no timestamps.
#[tokio::test]
async fn c5_recorded_at_is_a_real_canonical_timestamp() {
    let lines = valid_export().await;
    for text in [
        "2026-05-07T23:59:60.000000Z",
        "2026-02-30T14:40:10.000000Z",
        "2026-05-07T14:40:10Z",
        "2026-05-07T14:40:10.000000+00:00",
    ] {
        let broken = with_event(&lines, LAST, |event| event.recorded_at = text.into());
        assert_invalid_at(&broken, LAST, "C5");
    }
}

#[tokio::test]
async fn c6_time_never_goes_backwards() {
    let lines = valid_export().await;
    let broken = with_event(&lines, 8, |event| {
        let at = t0() + Duration::seconds(2);
        event.recorded_at = format_timestamp(at);
        event.event_id = uuid_v7_at(at);
    });
    assert_invalid_at(&broken, 8, "earlier than the previous event's (C6)");
}

#[tokio::test]
async fn c7_event_ids_are_uuidv7_of_their_own_time() {
    let lines = valid_export().await;
    let v4 = Uuid::from_u128(0x0196_a4f2_0000_4000_8000_0000_0000_0001);
    let far = uuid_v7_at(t0() + Duration::seconds(ID_TIME_WINDOW_SECONDS + 60));
    for id in [v4, Uuid::nil(), far] {
        let broken = with_event(&lines, 9, |event| event.event_id = id);
        assert_invalid_at(&broken, 9, "C7");
    }
}

#[tokio::test]
async fn c8_an_event_id_appears_once() {
    let lines = valid_export().await;
    let earlier = events(&lines)[8].event_id;
    let broken = with_event(&lines, 10, |event| event.event_id = earlier);
    assert_invalid_at(&broken, 10, "C8");
}

#[tokio::test]
async fn c9_the_payload_is_of_its_type_and_stream() {
    let lines = valid_export().await;
    let broken = with_event(&lines, 8, |event| {
        event.event_type = "proposal.vetoed".into()
    });
    assert_invalid_at(&broken, 8, "C9");
    let broken = with_event(&lines, 8, |event| {
        event.event_type = "proposal.withdrawn".into()
    });
    assert_invalid_at(&broken, 8, "C9");
    let broken = with_event(&lines, 8, |event| event.stream_id = "ledger".into());
    assert_invalid_at(&broken, 8, "C9");
}

#[tokio::test]
async fn c10_stream_versions_are_gapless() {
    let lines = valid_export().await;
    let broken = with_event(&lines, 5, |event| event.stream_version = 4);
    assert_invalid_at(&broken, 5, "stream version 4, expected 3 (C10)");
}

// ---------------------------------------------------------------------------------------------
// Payload form: C11 and C12.

/// Readers may rely on one spelling of every payload: an extra space, reordered keys, an
/// equivalent escape or uppercase hex are refused even with every hash recomputed.
#[tokio::test]
async fn c11_payloads_are_canonical() {
    let lines = valid_export().await;
    let spaced = with_payload_text(&lines, 8, |text| text.replacen(",\"", ", \"", 1));
    assert_invalid_at(&spaced, 8, "C11");
    let reordered = with_payload_text(&lines, 8, |text| {
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        let map = value.as_object().unwrap();
        let mut keys: Vec<&String> = map.keys().collect();
        keys.reverse();
        let fields: Vec<String> = keys
            .iter()
            .map(|key| format!("{}:{}", serde_json::json!(key), map[key.as_str()]))
            .collect();
        format!("{{{}}}", fields.join(","))
    });
    assert_invalid_at(&reordered, 8, "C11");
    let escaped = with_payload_text(&lines, 8, |text| text.replacen("stale", "st\\u0061le", 1));
    assert_invalid_at(&escaped, 8, "C11");
}

/// Hex in a payload is lowercase: the same bytes in uppercase are refused (the signature is
/// decoded from its hex, so only the spelling changes).
#[tokio::test]
async fn c12_hex_in_payloads_is_lowercase() {
    let lines = valid_export().await;
    let broken = with_payload_text(&lines, 4, |text| {
        let mut value: serde_json::Value = serde_json::from_str(text).unwrap();
        let signature = value["signature"]["signature"]
            .as_str()
            .unwrap()
            .to_uppercase();
        value["signature"]["signature"] = signature.into();
        serde_json::to_string(&value).unwrap()
    });
    assert!(verify(&broken).is_err());
    match verify(&broken) {
        Err(VerifyError::Invalid(failure)) => assert_eq!(failure.seq, 4, "{failure}"),
        other => panic!("{other:?}"),
    }
}

/// A signer who records a roll whose report is the right one in another spelling (an extra
/// space, two keys swapped, an equivalent escape, another spelling of a number; the subject
/// digest and the proposer's signature made over it) is refused: the report is not in
/// canonical form.
async fn c12_reports_are_canonical(db: &TestDb) {
    let (ledger, k) = story(db).await;
    let lines = export_lines(&ledger).await;
    let governance = ledger.governance().await.unwrap();
    let at = last_time(&lines) + Duration::seconds(1);
    let (draft, _) =
        ProposalDraft::roll(&governance, uuid_v7_at(at), body(4), &Draws::none(), at).unwrap();
    let report = draft.terms.report_json.clone().unwrap();
    let (verdict, rest) = report.split_once(',').unwrap();
    let (requested, rest) = rest.split_once(',').unwrap();
    let respelled = [
        report.replacen(",\"", ", \"", 1),
        format!(
            "{{{},{},{rest}",
            requested.trim_start_matches('{'),
            verdict.trim_start_matches('{')
        ),
        report.replacen("\"verdict\":\"pass\"", "\"verdict\":\"p\\u0061ss\"", 1),
        report.replacen(".0,", ".00,", 1),
    ];
    for text in respelled {
        assert_ne!(text, report);
        let mut draft = draft.clone();
        draft.terms.report_json = Some(text.clone());
        let broken = appended(&lines, vec![recording(&lines, &draft, &k.bob, at)]);
        assert_invalid_at(&broken, LAST + 1, "C12");
    }
}

/// An attacker's review: a proposer re-recorded a failed roll with "APPROVED BY RISK" as a
/// failed check's message (verdict, ids and numbers unchanged, signed over it), and `show` and
/// the HTML report printed it under the failure. Messages are not compared (their wording and
/// last printed digit are a build's, not the format's), so the ledger verifies; no view of a
/// ledger shows a stored message: a failure is told in its verified figures.
async fn a_stored_check_message_is_never_shown_as_the_guardrails_words(db: &TestDb) {
    const FORGED: &str = "APPROVED BY RISK (alice, phone)";
    let (ledger, k) = story(db).await;
    let lines = export_lines(&ledger).await;
    let governance = ledger.governance().await.unwrap();
    let at = last_time(&lines) + Duration::seconds(1);
    let mut proposal = Proposal::from_toml_str(&body(12)).unwrap();
    common::own_layer(&mut proposal);
    let (mut draft, report) = ProposalDraft::roll(
        &governance,
        uuid_v7_at(at),
        proposal.to_toml_string(),
        &Draws::none(),
        at,
    )
    .unwrap();
    let failed = report
        .checks
        .iter()
        .find(|c| !c.passed)
        .expect("a check fails");
    let honest = draft.terms.report_json.clone().unwrap();
    let message = serde_json::to_string(&failed.message).unwrap();
    let forged = honest.replacen(
        &format!("\"message\":{message}"),
        &format!("\"message\":\"{FORGED}\""),
        1,
    );
    assert_ne!(forged, honest);
    draft.terms.report_json = Some(forged);
    let forged = appended(&lines, vec![recording(&lines, &draft, &k.bob, at)]);
    verify(&forged).expect("messages are not compared");
    insert_raw(db, events(&forged).last().unwrap()).await;
    let state = db.state_dir();
    let run = |args: &[&str]| {
        let out = db.rollbook(&state).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["rebuild"]);
    let shown = run(&["show", &draft.terms.proposal_id]);
    assert!(
        shown.contains(&format!("{}: ", failed.id)) && !shown.contains(FORGED),
        "{shown}"
    );
    let file = db.dir.path().join("forged.jsonl");
    std::fs::write(&file, forged.join("\n") + "\n").unwrap();
    let page = db.dir.path().join("forged.html");
    run(&[
        "report",
        &file.display().to_string(),
        "--out",
        &page.display().to_string(),
    ]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("Failed attempts") && !html.contains(FORGED),
        "the report shows the stored message"
    );
}

/// The `proposal.recorded` event a signer makes for `draft` by hand.
fn recording(
    lines: &[String],
    draft: &ProposalDraft,
    key: &SecretKey,
    at: DateTime<Utc>,
) -> StoredEvent {
    // Appended after the last event of `lines`: the head it follows.
    let last = events(lines).pop().unwrap();
    let head = ChainHead {
        seq: last.seq,
        hash: last.hash,
    };
    let signature = seal_signature(key, draft.message(&head));
    let payload = Event::ProposalRecorded(ProposalRecorded {
        terms: draft.terms.clone(),
        subject_digest: to_hex(&draft.subject_digest()),
        signature,
    });
    let template = &events(lines)[1];
    StoredEvent {
        stream_id: draft.terms.proposal_id.clone(),
        stream_version: 1,
        event_type: "proposal.recorded".into(),
        actor: Some(key.public().key_id().to_string()),
        payload: payload.to_payload(),
        ..restamped(template, at)
    }
}

// ---------------------------------------------------------------------------------------------
// Actors: C13.

/// The actor of a commit, an adoption and the expiry after it is the key id of the signature
/// that decided them: another signer's, none, or garbage is refused.
#[tokio::test]
async fn c13_commits_adoptions_and_expiries_carry_the_deciding_actor() {
    let lines = valid_export().await;
    let all = events(&lines);
    let other_signer = all[3].actor.clone(); // alice, who signed first, did not decide it
    assert_ne!(other_signer, all[COMMIT as usize - 1].actor);
    let legacy = with_legacy_expiry(&lines);
    verify(&legacy).expect("an expiry written by an earlier rollbook verifies");
    for (valid, seq) in [
        (&lines, COMMIT),
        (&lines, ADOPTION),
        (&legacy, ADOPTION + 1),
    ] {
        for actor in [other_signer.clone(), None, Some("garbage".to_string())] {
            let broken = with_event(valid, seq, |event| event.actor = actor.clone());
            assert_invalid_at(&broken, seq, "C13");
        }
    }
}

#[tokio::test]
async fn c13_signed_events_carry_their_signer() {
    let lines = valid_export().await;
    let all = events(&lines);
    let someone_else = |seq: u64| {
        let signer = all[seq as usize - 1].actor.clone();
        [all[0].actor.clone(), all[1].actor.clone()]
            .into_iter()
            .find(|actor| *actor != signer)
            .unwrap()
    };
    for seq in [4, 8, 10] {
        let broken = with_event(&lines, seq, |event| event.actor = someone_else(seq));
        assert_invalid_at(&broken, seq, "C13");
        let broken = with_event(&lines, seq, |event| event.actor = None);
        assert_invalid_at(&broken, seq, "C13");
    }
}

// ---------------------------------------------------------------------------------------------
// Approval: A1 to A10.

#[tokio::test]
async fn a1_one_genesis_first() {
    let lines = valid_export().await;
    let all = events(&lines);
    let broken = appended(&lines, vec![restamped(&all[0], last_time(&lines))]);
    assert_invalid_at(&broken, LAST + 1, "a second ledger.created (A1)");
    let broken = with_event(&lines, 1, |event| event.actor = all[1].actor.clone());
    assert_invalid_at(&broken, 1, "C13");
}

/// The signer set in force, as its next version with the threshold raised to 3: a motion's body.
fn threshold_raised(governance: &Governance) -> ActiveSet {
    let mut next = governance.set.to_signer_set();
    next.version += 1;
    next.threshold = 3;
    ActiveSet::validate(&next).unwrap()
}

/// A motion recorded after its own expiry (created five hours before, its proposer's
/// signature made over that) is refused, as is a proposal created after it was recorded.
async fn a2_a_recording_lies_between_creation_and_expiry(db: &TestDb) {
    let (ledger, k) = story(db).await;
    let lines = export_lines(&ledger).await;
    let governance = ledger.governance().await.unwrap();
    let at = last_time(&lines) + Duration::seconds(1);
    let next = threshold_raised(&governance);
    let late =
        ProposalDraft::signer_set(&governance, uuid_v7_at(at), &next, at - Duration::hours(5));
    let broken = appended(&lines, vec![recording(&lines, &late, &k.alice, at)]);
    assert_invalid_at(&broken, LAST + 1, "after its own expiry");
    assert_invalid_at(&broken, LAST + 1, "A2");
    let early = ProposalDraft::signer_set(
        &governance,
        uuid_v7_at(at),
        &next,
        at + Duration::seconds(5),
    );
    let broken = appended(&lines, vec![recording(&lines, &early, &k.alice, at)]);
    assert_invalid_at(&broken, LAST + 1, "created after it was recorded (A2)");
}

/// A recording that states the set in force's version with another set's hash (its subject
/// digest and the proposer's signature made over that, as a forged offline request would make
/// a signer sign) is refused: the hash is the set in force's or nothing (A2).
async fn a2_a_recording_binds_the_signer_set_in_force_by_its_hash(db: &TestDb) {
    let (ledger, k) = story(db).await;
    let lines = export_lines(&ledger).await;
    let governance = ledger.governance().await.unwrap();
    let at = last_time(&lines) + Duration::seconds(1);
    let next = threshold_raised(&governance);
    let honest = ProposalDraft::signer_set(&governance, uuid_v7_at(at), &next, at);
    verify(&appended(
        &lines,
        vec![recording(&lines, &honest, &k.alice, at)],
    ))
    .expect("the set in force's hash");
    let mut other = governance.set.to_signer_set();
    other.threshold = 1;
    let other_json = serde_json::to_string(&other).unwrap();
    let mut forged = honest.clone();
    forged.terms.signer_set_hash =
        to_hex(&rollbook::crypto::canonical::signer_set_hash(&other_json));
    assert_ne!(forged.terms.signer_set_hash, honest.terms.signer_set_hash);
    let broken = appended(&lines, vec![recording(&lines, &forged, &k.alice, at)]);
    assert_invalid_at(&broken, LAST + 1, "hashes to");
    assert_invalid_at(&broken, LAST + 1, "(A2)");
}

/// A motion created more than the policy's skew (60 s) before its recording, yet before its
/// expiry, signed over that: refused (T2). Created exactly the skew before, it verifies.
async fn t2_a_recording_follows_its_creation_within_the_skew(db: &TestDb) {
    let (ledger, k) = story(db).await;
    let lines = export_lines(&ledger).await;
    let governance = ledger.governance().await.unwrap();
    let at = last_time(&lines) + Duration::seconds(1);
    let next = threshold_raised(&governance);
    let draft =
        |created_at| ProposalDraft::signer_set(&governance, uuid_v7_at(at), &next, created_at);
    let late = draft(at - Duration::seconds(61));
    let broken = appended(&lines, vec![recording(&lines, &late, &k.alice, at)]);
    assert_invalid_at(
        &broken,
        LAST + 1,
        "more than 60 s before it was recorded (T2)",
    );
    let in_time = draft(at - Duration::seconds(60));
    verify(&appended(
        &lines,
        vec![recording(&lines, &in_time, &k.alice, at)],
    ))
    .expect("within the skew");
}

#[tokio::test]
async fn a3_a_signer_signs_once() {
    let lines = valid_export().await;
    let all = events(&lines);
    let mut again = restamped(&all[LAST as usize - 1], last_time(&lines));
    again.stream_version += 1;
    let broken = appended(&lines, vec![again]);
    assert_invalid_at(&broken, LAST + 1, "A3");
}

#[tokio::test]
async fn a4_a_veto_binds_its_reason() {
    let lines = valid_export().await;
    let broken = with_payload_text(&lines, 8, |text| {
        text.replace("quotes are stale", "quotes are fine")
    });
    assert_invalid_at(&broken, 8, "A4");
}

#[tokio::test]
async fn a5_a_withdrawal_is_the_proposers_own() {
    let lines = valid_export().await;
    // The withdrawal of 9 re-aimed at the pending roll of 20: its signature binds proposal 9.
    let all = events(&lines);
    let pending = all[PENDING_ROLL as usize - 1].stream_id.clone();
    let mut aimed = restamped(&all[9], last_time(&lines));
    let text = String::from_utf8(aimed.payload.clone()).unwrap();
    aimed.payload = text.replace(&all[9].stream_id, &pending).into_bytes();
    aimed.stream_id = pending;
    aimed.stream_version = 3;
    let broken = appended(&lines, vec![aimed]);
    assert_invalid_at(&broken, LAST + 1, "A5");
}

#[tokio::test]
async fn a6_an_expiry_only_follows_an_adoption() {
    let lines = valid_export().await;
    let legacy = with_legacy_expiry(&lines);
    verify(&legacy).expect("an expiry written by an earlier rollbook verifies");
    let expiry_at = events(&legacy)[ADOPTION as usize].clone();
    let pending = events(&lines)[PENDING_ROLL as usize - 1].stream_id.clone();
    let mut expiry = restamped(&expiry_at, last_time(&lines));
    let text = String::from_utf8(expiry.payload.clone()).unwrap();
    expiry.payload = text.replace(&expiry_at.stream_id, &pending).into_bytes();
    expiry.stream_id = pending;
    expiry.stream_version = 3;
    let broken = appended(&lines, vec![expiry]);
    assert_invalid_at(&broken, LAST + 1, "outside a governance change (A6)");
}

#[tokio::test]
async fn a7_an_adoption_needs_its_commit() {
    let lines = valid_export().await;
    let all = events(&lines);
    let mut adoption = restamped(&all[ADOPTION as usize - 1], last_time(&lines));
    adoption.stream_version = 3;
    let broken = appended(&lines, vec![adoption]);
    assert_invalid_at(
        &broken,
        LAST + 1,
        "without the K valid signatures that decide it (A7)",
    );
}

/// A co-signature's stream version is its stream's previous + 1, even with the signature
/// otherwise valid (the version is not signed).
#[tokio::test]
async fn a8_a_signed_event_follows_its_stream() {
    let lines = valid_export().await;
    let broken = with_event(&lines, LAST, |event| event.stream_version = 5);
    assert_invalid_at(&broken, LAST, "stream version 5, expected 2 (C10)");
}

/// A proposal id is a UUIDv7 of its recording's time: a signer's recording under another kind
/// of id, or under an id of another time, is refused (and replays, above).
async fn a9_proposal_ids_are_uuidv7_of_their_recording(db: &TestDb) {
    let (ledger, k) = story(db).await;
    let lines = export_lines(&ledger).await;
    let governance = ledger.governance().await.unwrap();
    let at = last_time(&lines) + Duration::seconds(1);
    let v4 = Uuid::from_u128(0x0196_a4f2_0000_4000_8000_0000_0000_0001);
    let old = uuid_v7_at(at - Duration::seconds(ID_TIME_WINDOW_SECONDS + 1));
    for id in [v4, old] {
        let (draft, _) = ProposalDraft::roll(&governance, id, body(4), &Draws::none(), at).unwrap();
        let broken = appended(&lines, vec![recording(&lines, &draft, &k.bob, at)]);
        assert_invalid_at(&broken, LAST + 1, "A9");
    }
}

#[tokio::test]
async fn a10_nothing_is_left_due() {
    let lines = valid_export().await;
    let mut all = events(&lines);
    all.truncate(COMMIT as usize - 1);
    let broken = rewrite(&lines[0], all);
    assert_invalid_at(&broken, COMMIT - 1, "ends before the proposal.committed");
    assert_invalid_at(&broken, COMMIT - 1, "A10");
}

both_backends!(
    c12_reports_are_canonical,
    a_stored_check_message_is_never_shown_as_the_guardrails_words,
    a2_a_recording_lies_between_creation_and_expiry,
    a2_a_recording_binds_the_signer_set_in_force_by_its_hash,
    t2_a_recording_follows_its_creation_within_the_skew,
    a9_proposal_ids_are_uuidv7_of_their_recording
);

// ---------------------------------------------------------------------------------------------
// The export file: X1 to X4.

#[tokio::test]
async fn x1_a_partial_or_foreign_export_is_unverifiable() {
    let lines = valid_export().await;
    let mut broken = lines.clone();
    broken[0] = broken[0].replace("\"from_seq\":1,", "\"from_seq\":2,");
    assert!(matches!(verify(&broken), Err(VerifyError::Unreadable(_))));
    let mut broken = lines.clone();
    broken[0] = broken[0].replace("\"version\":1,", "\"version\":2,");
    assert!(matches!(verify(&broken), Err(VerifyError::Unreadable(_))));
}

/// The header's `exported_at` is a canonical timestamp of a real instant; its genesis hash
/// is seq 1's.
#[tokio::test]
async fn x2_the_header_is_checked() {
    let lines = valid_export().await;
    for text in [
        "2026-05-07T15:00:00Z",
        "2026-02-30T15:00:00.000000Z",
        "2026-05-07T23:59:60.000000Z",
        "soon",
    ] {
        let mut broken = lines.clone();
        broken[0] = broken[0].replace("2026-05-07T15:00:00.000000Z", text);
        match verify(&broken) {
            Err(VerifyError::Invalid(failure)) => {
                assert_eq!(failure.seq, 0, "{failure}");
                assert!(failure.reason.starts_with("header:"), "{failure}");
                assert!(failure.reason.contains("X2"), "{failure}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    let mut broken = lines.clone();
    let genesis = &events(&lines)[0];
    broken[0] = broken[0].replace(
        &to_hex(&genesis.hash),
        &to_hex(&genesis.hash).to_uppercase(),
    );
    assert_invalid_at(&broken, 1, "X2");
}

#[tokio::test]
async fn x3_every_line_is_canonical() {
    let lines = valid_export().await;
    let mut broken = lines.clone();
    broken[5] = broken[5].replacen(",\"", ", \"", 1);
    assert_invalid_at(&broken, 5, "X3");
    let mut broken = lines.clone();
    broken[5] = broken[5].replacen("\"event\"", "\"\\u0065vent\"", 1);
    assert!(verify(&broken).is_err());
}

#[tokio::test]
async fn x4_the_checkpoint_matches() {
    let lines = valid_export().await;
    let mut broken = lines.clone();
    broken.pop();
    assert_invalid_at(&broken, LAST, "X4");
    let mut broken = lines.clone();
    let last = broken.len() - 1;
    let root = broken[last].rsplit("\"merkle_root\":\"").next().unwrap()[..64].to_string();
    broken[last] = broken[last].replace(&root, &"0".repeat(64));
    assert_invalid_at(&broken, LAST, "Merkle root");
    assert_invalid_at(&broken, LAST, "X4");
}

trait ReplaceBytes {
    fn replace_bytes(&self, from: &str, to: &str) -> Vec<u8>;
}

impl ReplaceBytes for Vec<u8> {
    fn replace_bytes(&self, from: &str, to: &str) -> Vec<u8> {
        String::from_utf8(self.clone())
            .unwrap()
            .replace(from, to)
            .into_bytes()
    }
}

// ---------------------------------------------------------------------------------------------
// Bound heads: A11 (since format rollbook/v2). Every signature binds a head; the attacker who
// recomputes every hash cannot recompute the signatures.

/// The seq of the first event after `seq` whose payload carries a signature.
fn next_signed(lines: &[String], seq: u64) -> u64 {
    events(lines)
        .iter()
        .find(|event| {
            event.seq > seq
                && matches!(
                    event.event_type.as_str(),
                    "proposal.recorded"
                        | "proposal.signed"
                        | "proposal.rejected"
                        | "proposal.withdrawn"
                )
        })
        .map(|event| event.seq)
        .unwrap()
}

/// A change that every other check accepts (a fresh event id of the same time) at any event
/// before the last breaks the next signature: A11 at that signature.
#[tokio::test]
async fn a11_changing_any_event_before_a_signature_breaks_it() {
    let lines = valid_export().await;
    for seq in 1..LAST {
        let broken = with_event(&lines, seq, |event| {
            event.event_id = uuid_v7_at(parse_timestamp(&event.recorded_at).unwrap());
        });
        assert_invalid_at(&broken, next_signed(&lines, seq), "(A11)");
    }
}

/// Removing any event but the last, the attacker renumbering and rehashing the rest, is
/// refused; removing a veto or a withdrawal (the erasures of issue 19, case 1) is refused at
/// the next signature by A11 alone. (Removing the last events is a truncation: no later
/// signature binds them, and only an anchor taken later shows it: a pin, `rollbook
/// consistency`, signed checkpoints.)
#[tokio::test]
async fn a11_removing_any_event_is_refused() {
    let lines = valid_export().await;
    for seq in 2..LAST {
        let mut all = events(&lines);
        let removed = all.remove(seq as usize - 1);
        let broken = rewrite(&lines[0], all);
        let failure = match verify(&broken) {
            Err(VerifyError::Invalid(failure)) => failure,
            other => panic!("removing seq {seq} ({}) gave {other:?}", removed.event_type),
        };
        if matches!(
            removed.event_type.as_str(),
            "proposal.rejected" | "proposal.withdrawn"
        ) {
            // The next signed event moved down to `seq`.
            assert_eq!(failure.seq, next_signed(&lines, seq) - 1, "{failure}");
            assert!(failure.reason.contains("(A11)"), "{failure}");
        }
    }
}

/// A signature binding a head outside its proposal's lifetime, or with another hash, is A11.
#[tokio::test]
async fn a11_a_bound_head_must_be_the_chains_and_within_the_lifetime() {
    let db = TestDb::sqlite();
    let (ledger, k) = story(&db).await;
    let state = ledger
        .proposal(
            Uuid::parse_str(
                &events(&export_lines(&ledger).await)[PENDING_ROLL as usize - 1].stream_id,
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let head = ledger.head().await.unwrap();
    let before_recording = ChainHead {
        seq: PENDING_ROLL - 1,
        hash: events(&export_lines(&ledger).await)[PENDING_ROLL as usize - 2].hash,
    };
    let wrong_hash = ChainHead {
        seq: PENDING_ROLL,
        hash: [7; 32],
    };
    for (bound, needle) in [
        (before_recording, "outside seq"),
        (wrong_hash, "whose hash is not the chain's"),
        (
            ChainHead {
                seq: head.seq + 1,
                hash: head.hash,
            },
            "outside seq",
        ),
    ] {
        let signature = seal_signature(
            &k.carol,
            rollbook::domain::approval::message_for(
                ledger.ledger_id,
                &state,
                rollbook::crypto::canonical::Purpose::Cosign,
                &bound,
                None,
            ),
        );
        let refused = ledger
            .attach(state.id, signature, t0() + Duration::seconds(17))
            .await
            .expect_err("a misbound head is refused");
        assert!(refused.to_string().contains(needle), "{refused}");
    }
    // An offline signature binding the head at its request, after the recording, is valid even
    // though other events landed since.
    let at_request = ChainHead {
        seq: PENDING_ROLL,
        hash: events(&export_lines(&ledger).await)[PENDING_ROLL as usize - 1].hash,
    };
    let signature = seal_signature(
        &k.carol,
        rollbook::domain::approval::message_for(
            ledger.ledger_id,
            &state,
            rollbook::crypto::canonical::Purpose::Cosign,
            &at_request,
            None,
        ),
    );
    let outcome = ledger
        .attach(state.id, signature, t0() + Duration::seconds(17))
        .await
        .unwrap();
    assert!(outcome.committed);
    verify(&common::story::jsonl_lines(&ledger, None).await)
        .expect("an offline signature on an older head verifies");
}

/// A ledger of another format (every earlier one: v1 before bound heads, v2 before the
/// ledger's clock, closed layers and executions, v3 before the signer set's hash in the
/// subject) is named as such, beside the format this build reads, before any hash is compared.
#[tokio::test]
async fn a1_a_genesis_of_another_format_is_named() {
    let lines = valid_export().await;
    for older in ["rollbook/v1", "rollbook/v2", "rollbook/v3"] {
        let broken = with_payload_text(&lines, 1, |text| {
            let edited = text.replace(
                "\"format\":\"rollbook/v4\"",
                &format!("\"format\":\"{older}\""),
            );
            assert_ne!(edited, text, "the genesis names no rollbook/v4 format");
            edited
        });
        assert_invalid_at(
            &broken,
            1,
            &format!(
                "the ledger is format {older:?}; this build of rollbook reads \"rollbook/v4\" only"
            ),
        );
    }
}
