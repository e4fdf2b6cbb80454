//! Signed checkpoints and witnesses (issue 21), at the library level on both backends: a real
//! ledger is checkpointed, cosigned and exported; each W check of docs/audit-format.md is shown
//! failing on a mutation of a valid export, and a rewritten history is never signed.

mod common;

use std::io::Cursor;

use chrono::{DateTime, Duration, Utc};
use common::entry;
use common::story::{body, jsonl_lines, t0};
use common::TestDb;
use rollbook::audit::completeness::{
    check_completeness, check_signed_checkpoint, log_key, Completeness, WitnessCheck,
};
use rollbook::audit::export::{CheckpointLine, EventLine, Line, SignedCheckpointLine};
use rollbook::audit::{verify_export, FileVerification, VerifyError};
use rollbook::checkpoint::{
    assembled_note, sign_head, submit_to_witness, verified_tree, witness_source, CheckpointError,
    WitnessOutcome, WitnessTarget,
};
use rollbook::crypto::keys::SecretKey;
use rollbook::crypto::merkle::MerkleBuilder;
use rollbook::crypto::to_hex;
use rollbook::domain::envelope::format_timestamp;
use rollbook::domain::events::SignerSet;
use rollbook::domain::governance::ActiveSet;
use rollbook::service::{self, Ledger};
use rollbook::sizing::Policy as SizingPolicy;
use rollbook::store::{Store, StoredCheckpoint};
use rollbook::tlog::cosignature::cosign;
use rollbook::tlog::note::sign_ed25519;
use rollbook::tlog::{ledger_checkpoint, ledger_origin, Note, Policy, VerifierKey, VerifierKind};

struct Keys {
    alice: SecretKey,
    bob: SecretKey,
    mallory: SecretKey,
    w1: SecretKey,
    w2: SecretKey,
}

fn keys() -> Keys {
    let new = || SecretKey::generate().unwrap();
    Keys {
        alice: new(),
        bob: new(),
        mallory: new(),
        w1: new(),
        w2: new(),
    }
}

/// A ledger of alice and bob (1 of 2) with one proposal per entry of `contracts`: genesis at
/// seq 1, each proposal one more event.
async fn ledger_of(db: &TestDb, k: &Keys, contracts: &[u32]) -> Ledger {
    let store = Store::open(&db.url).await.unwrap().trusting_caller_clock();
    let set = ActiveSet::validate(&SignerSet {
        version: 1,
        threshold: 1,
        signers: vec![entry("alice", &k.alice), entry("bob", &k.bob)],
    })
    .unwrap();
    let (ledger_id, _) = service::init(&store, &set, &SizingPolicy::default(), &k.alice, t0())
        .await
        .unwrap();
    let ledger = Ledger::new(store, ledger_id);
    propose(&ledger, k, contracts, 1).await;
    ledger
}

async fn propose(ledger: &Ledger, k: &Keys, contracts: &[u32], first_minute: i64) {
    for (n, contracts) in contracts.iter().enumerate() {
        let at = t0() + Duration::seconds(first_minute + n as i64);
        ledger
            .propose_roll(body(*contracts), &k.bob, at)
            .await
            .unwrap();
    }
}

/// `rollbook checkpoint --key KEY` as a library call: sync this client's pin, sign the head.
async fn checkpoint(
    db: &TestDb,
    ledger: &Ledger,
    key: &SecretKey,
) -> Result<StoredCheckpoint, CheckpointError> {
    checkpoint_from(&db.state_dir(), ledger, key).await
}

async fn checkpoint_from(
    state: &std::path::Path,
    ledger: &Ledger,
    key: &SecretKey,
) -> Result<StoredCheckpoint, CheckpointError> {
    let verified = rollbook::pin::sync(&ledger.store, ledger.ledger_id, state).await?;
    let outcome = async {
        let (tree, _) = verified_tree(&ledger.store, &verified).await?;
        sign_head(&ledger.store, &verified, &tree, key, Utc::now()).await
    }
    .await;
    verified.close().await;
    Ok(outcome?.checkpoint)
}

/// A witness's cosignature of the stored checkpoint of `size`, dated `time`, stored as
/// `checkpoint --witness` stores one.
async fn cosign_stored(
    ledger: &Ledger,
    size: u64,
    name: &str,
    key: &SecretKey,
    time: DateTime<Utc>,
) {
    let stored = ledger
        .store
        .checkpoint(ledger.ledger_id, Some(size))
        .await
        .unwrap()
        .unwrap();
    let note = Note::parse(stored.note.as_bytes()).unwrap();
    let line = cosign(note.text(), name, key, time.timestamp() as u64)
        .unwrap()
        .to_line();
    ledger
        .store
        .add_checkpoint_signature(
            ledger.ledger_id,
            size,
            line.trim_end_matches('\n'),
            Some(&witness_source(
                &VerifierKey::new(name, VerifierKind::CosignatureV1, key.public()).unwrap(),
                &format!("http://{name}"),
            )),
            Utc::now(),
        )
        .await
        .unwrap();
}

fn witness_vkey(name: &str, key: &SecretKey) -> String {
    VerifierKey::new(name, VerifierKind::CosignatureV1, key.public())
        .unwrap()
        .to_string()
}

/// One witness, w1, must cosign.
fn one_witness(k: &Keys) -> String {
    format!("witness w1 {}\nquorum w1\n", witness_vkey("w1", &k.w1))
}

/// Both w1 and w2 must cosign.
fn two_witnesses(k: &Keys) -> String {
    format!(
        "witness w1 {}\nwitness w2 {}\ngroup both 2 w1 w2\nquorum both\n",
        witness_vkey("w1", &k.w1),
        witness_vkey("w2", &k.w2)
    )
}

fn verify(lines: &[String]) -> Result<FileVerification, VerifyError> {
    let text = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    verify_export(Cursor::new(text.into_bytes()), |_| {})
}

fn complete(
    lines: &[String],
    policy: &str,
    max_age: Option<Duration>,
    now: DateTime<Utc>,
) -> Result<Completeness, String> {
    let verified = verify(lines).map_err(|error| format!("not valid: {error}"))?;
    let check = WitnessCheck {
        policy: Policy::parse(policy.as_bytes()).unwrap(),
        max_age,
        now,
    };
    let ledger_id = uuid::Uuid::parse_str(&verified.summary.ledger_id).unwrap();
    check_completeness(
        ledger_id,
        verified.summary.events,
        verified.signed.last.as_ref(),
        &verified.signed.ledger_keys,
        verified.signed.clock_skew_max_seconds,
        &check,
    )
}

fn assert_incomplete(outcome: Result<Completeness, String>, check: &str, case: &str) {
    match outcome {
        Err(reason) => assert!(
            reason.contains(check),
            "{case}: {reason:?} does not name {check}"
        ),
        Ok(done) => panic!("{case}: expected {check} to fail, the export is complete: {done:?}"),
    }
}

fn assert_invalid(lines: &[String], check: &str, case: &str) {
    match verify(lines) {
        Err(VerifyError::Invalid(failure)) => {
            let text = failure.to_string();
            assert!(
                text.contains(check),
                "{case}: {text:?} does not name {check}"
            );
        }
        other => panic!("{case}: expected an invalid export naming {check}, got {other:?}"),
    }
}

fn signed_index(lines: &[String], nth: usize) -> usize {
    lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.starts_with("{\"type\":\"signed_checkpoint\""))
        .nth(nth)
        .unwrap_or_else(|| panic!("no signed checkpoint #{nth}"))
        .0
}

fn signed_line(line: &str) -> SignedCheckpointLine {
    match Line::parse(line).unwrap() {
        Line::SignedCheckpoint(signed) => signed,
        other => panic!("not a signed checkpoint line: {other:?}"),
    }
}

/// An attacker with the file drops lines and recomputes the final (unsigned) checkpoint line,
/// which needs no key.
fn recompute_checkpoint(mut lines: Vec<String>) -> Vec<String> {
    lines.pop();
    let mut merkle = MerkleBuilder::new();
    let mut last: Option<EventLine> = None;
    for line in &lines {
        if let Ok(Line::Event(event)) = Line::parse(line) {
            merkle.push_leaf_data(&rollbook::crypto::from_hex32(&event.hash).unwrap());
            last = Some(event);
        }
    }
    let last = last.unwrap();
    lines.push(
        Line::Checkpoint(CheckpointLine {
            line_type: "checkpoint".into(),
            ledger_id: last.ledger_id.clone(),
            tree_size: merkle.leaf_count(),
            head_hash: last.hash.clone(),
            merkle_root: to_hex(&merkle.root()),
        })
        .to_text(),
    );
    lines
}

both_backends!(
    a_cosigned_checkpoint_of_the_exports_size_makes_it_complete,
    w1_a_signed_checkpoint_out_of_its_place_is_invalid,
    w2_a_rewritten_middle_contradicts_the_signed_root_and_is_never_signed,
    w3_a_checkpoint_signed_by_a_non_signer_is_invalid_and_never_stored,
    w4_a_cut_tail_is_caught_with_witnesses,
    w5_log_lines_must_be_ledger_keys_that_signed,
    w6_a_quorum_of_two_with_one_witness_missing_fails,
    w7_a_stale_checkpoint_is_complete_but_not_current,
    only_verified_cosignatures_are_stored_and_a_note_keeps_the_newest_per_witness,
    p1_the_newest_cosignature_counts_and_a_time_of_zero_never_does,
    n6_a_note_of_size_zero_needs_the_empty_root,
);

async fn a_cosigned_checkpoint_of_the_exports_size_makes_it_complete(db: &TestDb) {
    let k = keys();
    let ledger = ledger_of(db, &k, &[9, 8]).await;
    let stored = checkpoint(db, &ledger, &k.alice).await.unwrap();
    assert_eq!(stored.tree_size, 3);
    // A second signer's signature is added to the stored checkpoint, once.
    checkpoint(db, &ledger, &k.bob).await.unwrap();
    let again = checkpoint(db, &ledger, &k.bob).await.unwrap();
    assert_eq!(again.added.len(), 1, "bob's signature, stored once");
    let lines = jsonl_lines(&ledger, None).await;
    // Without cosignatures the export is valid but not complete.
    assert!(verify(&lines).is_ok());
    assert_incomplete(
        complete(&lines, &one_witness(&k), None, Utc::now()),
        "W6",
        "no cosignature",
    );
    let now = Utc::now();
    cosign_stored(&ledger, 3, "w1", &k.w1, now).await;
    let lines = jsonl_lines(&ledger, None).await;
    let done = complete(&lines, &one_witness(&k), Some(Duration::hours(1)), now).unwrap();
    assert_eq!(done.tree_size, 3);
    assert_eq!(done.signers, vec!["alice".to_string(), "bob".to_string()]);
    assert_eq!(done.cosigned_by.len(), 1);
    assert_eq!(done.cosigned_by[0].0, "w1");
    // The stored note with its added lines is a signed note any verifier reads.
    let note = ledger
        .store
        .checkpoint(ledger.ledger_id, None)
        .await
        .unwrap()
        .unwrap();
    let note = assembled_note(&note).unwrap().to_text();
    assert_eq!(Note::parse(note.as_bytes()).unwrap().signatures().len(), 3);
}

async fn w1_a_signed_checkpoint_out_of_its_place_is_invalid(db: &TestDb) {
    let k = keys();
    let ledger = ledger_of(db, &k, &[9]).await;
    checkpoint(db, &ledger, &k.alice).await.unwrap();
    propose(&ledger, &k, &[8], 10).await;
    let lines = jsonl_lines(&ledger, None).await;
    assert!(verify(&lines).is_ok());
    let at = signed_index(&lines, 0);
    // Moved after the next event: its size is no longer the events' count there.
    let mut moved = lines.clone();
    moved.swap(at, at + 1);
    assert_invalid(&moved, "W1", "moved after the next event");
    // Twice in a row.
    let mut twice = lines.clone();
    twice.insert(at, lines[at].clone());
    assert_invalid(&twice, "W1", "the same checkpoint twice");
    // Naming another ledger.
    let mut other = signed_line(&lines[at]);
    other.ledger_id = uuid::Uuid::now_v7().to_string();
    let mut elsewhere = lines.clone();
    elsewhere[at] = Line::SignedCheckpoint(other).to_text();
    assert_invalid(&elsewhere, "W1", "another ledger's");
}

async fn w2_a_rewritten_middle_contradicts_the_signed_root_and_is_never_signed(db: &TestDb) {
    let k = keys();
    let ledger = ledger_of(db, &k, &[9, 8, 7]).await;
    checkpoint(db, &ledger, &k.alice).await.unwrap();
    let valid = jsonl_lines(&ledger, None).await;
    // The note's root changed by hand (W2 is checked before any signature).
    let at = signed_index(&valid, 0);
    let mut line = signed_line(&valid[at]);
    let root_line = line.note.lines().nth(2).unwrap().to_string();
    let other_root = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    assert_ne!(root_line, other_root);
    line.note = line.note.replacen(&root_line, other_root, 1);
    let mut edited = valid.clone();
    edited[at] = Line::SignedCheckpoint(line).to_text();
    assert_invalid(&edited, "W2", "another root in the note");

    // A database administrator rewrites history after seq 2 (a fork) and writes new events in
    // its place up to the checkpointed size.
    let head: Vec<Vec<String>> = db
        .raw_rows("SELECT recorded_at FROM events WHERE seq = 2")
        .await;
    let events = ledger
        .store
        .read_page(ledger.ledger_id, 1, 1)
        .await
        .unwrap();
    let hash_2 = common::sql_bytes(db, &events[0].hash);
    db.tamper("DELETE FROM events WHERE seq > 2").await.unwrap();
    db.tamper(&format!(
        "UPDATE ledgers SET head_seq = 2, head_hash = {hash_2}, head_recorded_at = '{}'",
        head[0][0]
    ))
    .await
    .unwrap();
    propose(&ledger, &k, &[6, 5], 20).await;
    // The export carries the checkpoint signed before, which the new history contradicts.
    let forked = jsonl_lines(&ledger, None).await;
    assert_invalid(
        &forked,
        "W2",
        "a rewritten middle under a signed checkpoint",
    );
    // A client without a pin (it never saw the old history) still refuses to sign this head.
    let fresh = db.dir.path().join("fresh-client");
    match checkpoint_from(&fresh, &ledger, &k.alice).await {
        Err(CheckpointError::Inconsistent { tree_size, .. }) => assert_eq!(tree_size, 4),
        other => panic!("a head contradicting a stored checkpoint was signed: {other:?}"),
    }
    // The client that signed before is stopped by its pin already.
    match checkpoint(db, &ledger, &k.alice).await {
        Err(CheckpointError::Pin(rollbook::pin::PinError::Diverged { .. })) => {}
        other => panic!("the signer's pin did not stop the fork: {other:?}"),
    }
    let stored = ledger
        .store
        .checkpoints(ledger.ledger_id, 1, 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "nothing new was signed");
}

async fn w3_a_checkpoint_signed_by_a_non_signer_is_invalid_and_never_stored(db: &TestDb) {
    let k = keys();
    let ledger = ledger_of(db, &k, &[9]).await;
    match checkpoint(db, &ledger, &k.mallory).await {
        Err(CheckpointError::NotASigner { .. }) => {}
        other => panic!("a non-signer signed a checkpoint: {other:?}"),
    }
    assert!(ledger
        .store
        .checkpoints(ledger.ledger_id, 1, 10)
        .await
        .unwrap()
        .is_empty());
    checkpoint(db, &ledger, &k.alice).await.unwrap();
    let valid = jsonl_lines(&ledger, None).await;
    let at = signed_index(&valid, 0);
    let line = signed_line(&valid[at]);
    let note = Note::parse(line.note.as_bytes()).unwrap();
    let origin = ledger_origin(ledger.ledger_id);
    // The same checkpoint signed by mallory under the ledger's origin instead of alice.
    let mut forged = Note::new(note.text()).unwrap();
    forged
        .push_signature(sign_ed25519(note.text(), &origin, &k.mallory).unwrap())
        .unwrap();
    let mut lines = valid.clone();
    lines[at] = Line::SignedCheckpoint(SignedCheckpointLine {
        note: forged.to_text(),
        ..line.clone()
    })
    .to_text();
    assert_invalid(&lines, "W3", "signed by a non-signer");
    // Alice's line with a broken signature: a known key whose signature fails.
    let mut broken = line.note.clone();
    let sig_at = broken.rfind(' ').unwrap() + 1;
    let flipped = if &broken[sig_at + 10..sig_at + 11] == "A" {
        "B"
    } else {
        "A"
    };
    broken.replace_range(sig_at + 10..sig_at + 11, flipped);
    let mut lines = valid.clone();
    lines[at] = Line::SignedCheckpoint(SignedCheckpointLine {
        note: broken,
        ..line
    })
    .to_text();
    assert_invalid(&lines, "W3", "a signer's signature that fails");
}

async fn w4_a_cut_tail_is_caught_with_witnesses(db: &TestDb) {
    let k = keys();
    let ledger = ledger_of(db, &k, &[9, 8]).await;
    checkpoint(db, &ledger, &k.alice).await.unwrap();
    cosign_stored(&ledger, 3, "w1", &k.w1, Utc::now()).await;
    let valid = jsonl_lines(&ledger, None).await;
    assert!(complete(&valid, &one_witness(&k), None, Utc::now()).is_ok());
    // The last event (and the checkpoint after it) cut, the final line recomputed: a valid
    // export, one event short, that no signed checkpoint covers.
    let mut cut = valid.clone();
    let at = signed_index(&cut, 0);
    cut.remove(at);
    cut.remove(at - 1);
    let cut = recompute_checkpoint(cut);
    let summary = verify(&cut)
        .expect("a cut export is valid on its own")
        .summary;
    assert_eq!(summary.events, 2);
    assert_incomplete(
        complete(&cut, &one_witness(&k), None, Utc::now()),
        "W4",
        "a cut tail",
    );
    // Events after the last checkpoint: not covered either.
    propose(&ledger, &k, &[7], 10).await;
    let longer = jsonl_lines(&ledger, None).await;
    assert_incomplete(
        complete(&longer, &one_witness(&k), None, Utc::now()),
        "W4",
        "events after the checkpoint",
    );
}

async fn w5_log_lines_must_be_ledger_keys_that_signed(db: &TestDb) {
    let k = keys();
    let ledger = ledger_of(db, &k, &[9]).await;
    checkpoint(db, &ledger, &k.alice).await.unwrap();
    cosign_stored(&ledger, 2, "w1", &k.w1, Utc::now()).await;
    let lines = jsonl_lines(&ledger, None).await;
    let log = |key: &SecretKey| log_key(ledger.ledger_id, key.public()).unwrap().to_string();
    let with_log = |key: &SecretKey| format!("log {}\n{}", log(key), one_witness(&k));
    assert!(complete(&lines, &with_log(&k.alice), None, Utc::now()).is_ok());
    assert_incomplete(
        complete(&lines, &with_log(&k.mallory), None, Utc::now()),
        "W5",
        "a log key that is not the ledger's",
    );
    assert_incomplete(
        complete(&lines, &with_log(&k.bob), None, Utc::now()),
        "W5",
        "a log key (bob) that did not sign the covering checkpoint",
    );
    let elsewhere = VerifierKey::new("example.com/log", VerifierKind::Ed25519, k.alice.public())
        .unwrap()
        .to_string();
    assert_incomplete(
        complete(
            &lines,
            &format!("log {elsewhere}\n{}", one_witness(&k)),
            None,
            Utc::now(),
        ),
        "W5",
        "a log key named other than the origin",
    );
}

async fn w6_a_quorum_of_two_with_one_witness_missing_fails(db: &TestDb) {
    let k = keys();
    let ledger = ledger_of(db, &k, &[9]).await;
    checkpoint(db, &ledger, &k.alice).await.unwrap();
    cosign_stored(&ledger, 2, "w1", &k.w1, Utc::now()).await;
    let lines = jsonl_lines(&ledger, None).await;
    assert_incomplete(
        complete(&lines, &two_witnesses(&k), None, Utc::now()),
        "W6",
        "w2 missing",
    );
    cosign_stored(&ledger, 2, "w2", &k.w2, Utc::now()).await;
    let lines = jsonl_lines(&ledger, None).await;
    let done = complete(&lines, &two_witnesses(&k), None, Utc::now()).unwrap();
    assert_eq!(done.cosigned_by.len(), 2);
    // A policy witness's cosignature that does not verify refuses the export.
    let at = signed_index(&lines, 0);
    let mut line = signed_line(&lines[at]);
    let last = line
        .note
        .trim_end()
        .rsplit('\n')
        .next()
        .unwrap()
        .to_string();
    let mut bad = last.clone();
    let tail = bad.len() - 5;
    let flipped = if &bad[tail..tail + 1] == "A" {
        "B"
    } else {
        "A"
    };
    bad.replace_range(tail..tail + 1, flipped);
    line.note = line.note.replace(&last, &bad);
    let mut broken = lines.clone();
    broken[at] = Line::SignedCheckpoint(line).to_text();
    assert_incomplete(
        complete(&broken, &two_witnesses(&k), None, Utc::now()),
        "W6",
        "a witness's cosignature that fails",
    );
}

async fn w7_a_stale_checkpoint_is_complete_but_not_current(db: &TestDb) {
    let k = keys();
    let ledger = ledger_of(db, &k, &[9]).await;
    let now = Utc::now();
    checkpoint(db, &ledger, &k.alice).await.unwrap();
    cosign_stored(&ledger, 2, "w1", &k.w1, now - Duration::days(3)).await;
    propose(&ledger, &k, &[8], 10).await;
    checkpoint(db, &ledger, &k.alice).await.unwrap();
    cosign_stored(&ledger, 3, "w1", &k.w1, now - Duration::minutes(5)).await;
    let current = jsonl_lines(&ledger, None).await;
    assert!(complete(&current, &one_witness(&k), Some(Duration::hours(24)), now).is_ok());
    // Cut back to the older cosigned checkpoint: complete, yet three days old.
    let stale = jsonl_lines(&ledger, Some(2)).await;
    assert!(complete(&stale, &one_witness(&k), None, now).is_ok());
    assert_incomplete(
        complete(&stale, &one_witness(&k), Some(Duration::hours(24)), now),
        "W7",
        "a cosignature older than --max-age",
    );
    assert!(complete(&stale, &one_witness(&k), Some(Duration::days(4)), now).is_ok());
    // A cosignature dated beyond the clock skew in the future does not count.
    propose(&ledger, &k, &[7], 20).await;
    checkpoint(db, &ledger, &k.alice).await.unwrap();
    cosign_stored(&ledger, 4, "w1", &k.w1, now + Duration::hours(2)).await;
    let future = jsonl_lines(&ledger, None).await;
    assert_incomplete(
        complete(&future, &one_witness(&k), Some(Duration::hours(24)), now),
        "W7",
        "a cosignature from the future",
    );
}

/// A witness's 200 answer, as `tlog_http` hands it to the client.
fn ok_reply(lines: &[String]) -> rollbook::tlog_http::WitnessReply {
    rollbook::tlog_http::WitnessReply {
        status: 200,
        content_type: "text/plain; charset=utf-8".into(),
        body: lines.concat(),
    }
}

/// `checkpoint --witness URL --witness-vkey VKEY` against a witness answering `reply`.
async fn submit(
    db: &TestDb,
    ledger: &Ledger,
    target: &WitnessTarget,
    reply: rollbook::tlog_http::WitnessReply,
    now: DateTime<Utc>,
) -> WitnessOutcome {
    let verified = rollbook::pin::sync(&ledger.store, ledger.ledger_id, &db.state_dir())
        .await
        .unwrap();
    let (tree, _) = verified_tree(&ledger.store, &verified).await.unwrap();
    let post = |_body: String| {
        let reply = reply.clone();
        async move { Ok(reply) }
    };
    let outcome = submit_to_witness(&ledger.store, &tree, target, post, now)
        .await
        .unwrap();
    verified.close().await;
    outcome
}

async fn only_verified_cosignatures_are_stored_and_a_note_keeps_the_newest_per_witness(
    db: &TestDb,
) {
    let k = keys();
    let ledger = ledger_of(db, &k, &[9]).await;
    let stored = checkpoint(db, &ledger, &k.alice).await.unwrap();
    let text = Note::parse(stored.note.as_bytes())
        .unwrap()
        .text()
        .to_string();
    let vkey = VerifierKey::new("w1", VerifierKind::CosignatureV1, k.w1.public()).unwrap();
    let target = WitnessTarget {
        url: "http://w1.example".into(),
        vkey: vkey.clone(),
    };
    let line = |key: &SecretKey, name: &str, time: i64| {
        cosign(&text, name, key, time as u64).unwrap().to_line()
    };
    let start = Utc::now() - Duration::days(80);
    // A junk line claiming w1's name and key id (a bad witness, or a man in the middle): the
    // answer is refused and nothing is stored.
    let mut junk = cosign(&text, "w1", &k.w1, start.timestamp() as u64).unwrap();
    junk.signature[20] ^= 1;
    let outcome = submit(db, &ledger, &target, ok_reply(&[junk.to_line()]), start).await;
    assert!(
        matches!(outcome, WitnessOutcome::Refused { status: 200, .. }),
        "{outcome:?}"
    );
    let after = ledger
        .store
        .checkpoint(ledger.ledger_id, None)
        .await
        .unwrap()
        .unwrap();
    assert!(after.added.is_empty(), "nothing stored from a bad answer");
    // A line by an unknown key beside w1's good one: only w1's is stored.
    let good = line(&k.w1, "w1", start.timestamp());
    let stranger = line(&k.w2, "w1", start.timestamp());
    let outcome = submit(db, &ledger, &target, ok_reply(&[stranger, good]), start).await;
    assert_eq!(
        outcome,
        WitnessOutcome::Cosigned {
            lines: 1,
            stored: 1
        }
    );
    // A cosignature dated 0 is never stored.
    let zero = zero_cosignature(&text, &k.w1).to_line();
    let outcome = submit(db, &ledger, &target, ok_reply(&[zero]), start).await;
    assert!(
        matches!(outcome, WitnessOutcome::Refused { status: 200, .. }),
        "{outcome:?}"
    );
    // A quiet ledger re-checkpointed every day for 70 days: one new line a day is stored, the
    // note keeps the newest per witness and stays well under 64 lines.
    for day in 1..=70 {
        let at = start + Duration::days(day);
        let outcome = submit(
            db,
            &ledger,
            &target,
            ok_reply(&[line(&k.w1, "w1", at.timestamp())]),
            at,
        )
        .await;
        assert_eq!(
            outcome,
            WitnessOutcome::Cosigned {
                lines: 1,
                stored: 1
            },
            "day {day}"
        );
    }
    // A line stored unverified before vkeys were recorded (source a bare URL) is left out.
    ledger
        .store
        .add_checkpoint_signature(
            ledger.ledger_id,
            stored.tree_size,
            junk.to_line().trim_end_matches('\n'),
            Some("http://w1.example"),
            Utc::now(),
        )
        .await
        .unwrap();
    let lines = jsonl_lines(&ledger, None).await;
    let at = signed_index(&lines, 0);
    let note = signed_line(&lines[at]).note;
    let note = Note::parse(note.as_bytes()).unwrap();
    assert_eq!(
        note.signatures().len(),
        2,
        "alice's signature and w1's newest cosignature"
    );
    let newest = start + Duration::days(70);
    assert_eq!(
        note.signatures()[1],
        cosign(&text, "w1", &k.w1, newest.timestamp() as u64).unwrap()
    );
    let done = complete(&lines, &one_witness(&k), Some(Duration::hours(1)), newest).unwrap();
    assert_eq!(done.cosigned_by.len(), 1);
}

/// The export with `extra` signature lines appended to its last signed checkpoint's note (what
/// a hand-edited export, or a witness's line stored by an older rollbook, would carry).
fn with_lines(lines: &[String], extra: &[String]) -> Vec<String> {
    let at = signed_index(lines, 0);
    let mut line = signed_line(&lines[at]);
    for added in extra {
        line.note.push_str(added);
    }
    let mut out = lines.to_vec();
    out[at] = Line::SignedCheckpoint(line).to_text();
    out
}

async fn p1_the_newest_cosignature_counts_and_a_time_of_zero_never_does(db: &TestDb) {
    let k = keys();
    let ledger = ledger_of(db, &k, &[9]).await;
    let stored = checkpoint(db, &ledger, &k.alice).await.unwrap();
    let text = Note::parse(stored.note.as_bytes())
        .unwrap()
        .text()
        .to_string();
    let lines = jsonl_lines(&ledger, None).await;
    let now = Utc::now();
    // A valid cosignature dated 0 (tlog-witness: MUST NOT be zero) does not count.
    let zero = zero_cosignature(&text, &k.w1);
    assert_incomplete(
        complete(
            &with_lines(&lines, &[zero.to_line()]),
            &one_witness(&k),
            None,
            now,
        ),
        "W6",
        "a cosignature dated 0",
    );
    // P1: the witness's newest cosignature is the one judged. An older one within --max-age
    // beside a newer one from beyond the clock skew: the witness does not count.
    let at = |t: DateTime<Utc>| {
        cosign(&text, "w1", &k.w1, t.timestamp() as u64)
            .unwrap()
            .to_line()
    };
    let recent = at(now - Duration::minutes(5));
    let future = at(now + Duration::hours(2));
    let both = with_lines(&lines, &[recent.clone(), future]);
    assert!(complete(
        &with_lines(&lines, &[recent]),
        &one_witness(&k),
        Some(Duration::hours(1)),
        now
    )
    .is_ok());
    assert_incomplete(
        complete(&both, &one_witness(&k), Some(Duration::hours(1)), now),
        "W",
        "the newest cosignature is from the future",
    );
}

/// A valid cosignature by `key` as "w1" dated 0, which `cosign` never makes.
fn zero_cosignature(text: &str, key: &SecretKey) -> rollbook::tlog::NoteSignature {
    let vkey = VerifierKey::new("w1", VerifierKind::CosignatureV1, key.public()).unwrap();
    let mut signature = 0u64.to_be_bytes().to_vec();
    signature.extend_from_slice(&key.sign(&rollbook::tlog::cosignature::message(0, text)));
    rollbook::tlog::NoteSignature {
        key_name: "w1".into(),
        key_id: vkey.key_id(),
        signature,
    }
}

async fn n6_a_note_of_size_zero_needs_the_empty_root(db: &TestDb) {
    let k = keys();
    let ledger = ledger_of(db, &k, &[9]).await;
    let origin = ledger_origin(ledger.ledger_id);
    let note_of = |root: [u8; 32]| {
        let text = rollbook::tlog::Checkpoint {
            origin: origin.clone(),
            size: 0,
            root,
            extensions: vec![],
        }
        .to_text();
        let mut note = Note::new(&text).unwrap();
        note.push_signature(sign_ed25519(&text, &origin, &k.alice).unwrap())
            .unwrap();
        let now = Utc::now().timestamp() as u64;
        note.push_signature(cosign(&text, "w1", &k.w1, now).unwrap())
            .unwrap();
        note.to_text()
    };
    let log = log_key(ledger.ledger_id, k.alice.public()).unwrap();
    let check = WitnessCheck {
        policy: Policy::parse(format!("log {log}\n{}", one_witness(&k)).as_bytes()).unwrap(),
        max_age: None,
        now: Utc::now(),
    };
    let empty = rollbook::crypto::merkle::empty_root();
    let check_note = |text: &str| {
        rollbook::audit::completeness::check_note_alone(text, ledger.ledger_id, 60, &check)
    };
    assert!(check_note(&note_of(empty)).is_ok());
    let refused = check_note(&note_of([7; 32])).unwrap_err();
    assert!(refused.contains("N6"), "{refused}");
}
/// A key's lifetime (check A15's rule) holds for checkpoints too: `checkpoint` refuses a key
/// lapsed on the ledger's clock, and W3 counts a signer's line only when its key is valid at
/// the chain time of the checkpoint's last event.
async fn a_lapsed_key_signs_no_checkpoint(db: &TestDb) {
    let k = keys();
    let store = Store::open(&db.url).await.unwrap().trusting_caller_clock();
    let mut bob = entry("bob", &k.bob);
    bob.valid_before = Some(format_timestamp(t0() + Duration::hours(1)));
    let set = ActiveSet::validate(&SignerSet {
        version: 1,
        threshold: 1,
        signers: vec![entry("alice", &k.alice), bob],
    })
    .unwrap();
    let (ledger_id, _) = service::init(&store, &set, &SizingPolicy::default(), &k.alice, t0())
        .await
        .unwrap();
    let ledger = Ledger::new(store, ledger_id);
    propose(&ledger, &k, &[9], 1).await;
    // Bob's key lapsed an hour after t0; the ledger's clock (the test's now) is months later.
    match checkpoint(db, &ledger, &k.bob).await {
        Err(CheckpointError::KeyNotValid { name, .. }) => assert_eq!(name, "bob"),
        other => panic!("a lapsed key signed a checkpoint: {other:?}"),
    }
    assert!(ledger
        .store
        .checkpoints(ledger.ledger_id, 1, 10)
        .await
        .unwrap()
        .is_empty());
    checkpoint(db, &ledger, &k.alice).await.unwrap();
}

both_backends!(a_lapsed_key_signs_no_checkpoint);

#[test]
fn w3_counts_a_signer_only_inside_its_key_lifetime() {
    let k = keys();
    let lapse = t0() + Duration::hours(1);
    let mut bob = entry("bob", &k.bob);
    bob.valid_before = Some(format_timestamp(lapse));
    let set = ActiveSet::validate(&SignerSet {
        version: 1,
        threshold: 1,
        signers: vec![entry("alice", &k.alice), bob],
    })
    .unwrap();
    let ledger_id = uuid::Uuid::now_v7();
    let root = [7u8; 32];
    let text = ledger_checkpoint(ledger_id, 3, root).to_text();
    let mut note = Note::new(&text).unwrap();
    note.push_signature(sign_ed25519(&text, &ledger_origin(ledger_id), &k.bob).unwrap())
        .unwrap();
    let line = SignedCheckpointLine::new(ledger_id, 3, note.to_text());
    let inside =
        check_signed_checkpoint(&line, ledger_id, &root, &set, lapse - Duration::seconds(1))
            .unwrap();
    assert_eq!(inside.signers[0].0, "bob");
    let outside = check_signed_checkpoint(&line, ledger_id, &root, &set, lapse).unwrap_err();
    assert!(
        outside.contains("(W3)") && outside.contains("valid at"),
        "{outside}"
    );
}
