//! The audit trail: a real ledger (proposals in every status, one governance change) is
//! exported, verified offline, then tampered with in every way the issue lists. Each tamper is
//! tried naively and, where a naive edit is caught by hashes alone, by an attacker who
//! recomputes every hash and the checkpoint, so the deeper checks (signatures, governance,
//! sizing) are the ones that must catch it.

mod common;

use std::io::Cursor;

use chrono::Duration;
use common::entry;
use common::story::{body, jsonl_lines, story, t0, two_of_three_with_a_roll, Keys};
use common::TestDb;
use rollbook::audit::auditor::AuditSummary;
use rollbook::audit::export::{CheckpointLine, EventLine, Line};
use rollbook::audit::{
    verify_export, verify_live, verify_live_chain, LiveVerifyError, VerifyError,
};
use rollbook::crypto::canonical::Purpose;
use rollbook::crypto::keys::SecretKey;
use rollbook::crypto::merkle::MerkleBuilder;
use rollbook::crypto::to_hex;
use rollbook::domain::approval::message_for;
use rollbook::domain::envelope::{ChainError, StoredEvent};
use rollbook::domain::governance::seal_signature;
use rollbook::service::Ledger;
use rollbook::store::{Store, StoreError};
use uuid::Uuid;

fn verify_lines(lines: &[String]) -> Result<AuditSummary, VerifyError> {
    let text = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    verify_export(Cursor::new(text.into_bytes()), |_| {}).map(|v| v.summary)
}

fn assert_invalid(lines: &[String], needle: &str, case: &str) {
    match verify_lines(lines) {
        Err(VerifyError::Invalid(failure)) => {
            let text = failure.to_string();
            assert!(
                text.contains(needle),
                "{case}: {text:?} does not mention {needle:?}"
            );
        }
        other => panic!("{case}: expected an invalid export mentioning {needle:?}, got {other:?}"),
    }
}

fn event_line(line: &str) -> EventLine {
    match Line::parse(line).unwrap() {
        Line::Event(event) => event,
        other => panic!("not an event line: {other:?}"),
    }
}

/// An attacker with the file recomputes every hash, the header and the checkpoint.
fn rehash(lines: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut prev = [0u8; 32];
    let mut merkle = MerkleBuilder::new();
    let mut count = 0;
    let mut ledger_id = String::new();
    for line in &lines[1..lines.len() - 1] {
        let mut event = event_line(line).to_event().unwrap();
        event.prev_hash = prev;
        event.hash = event.computed_hash();
        prev = event.hash;
        merkle.push_leaf_data(&event.hash);
        count += 1;
        ledger_id = event.ledger_id.to_string();
        out.push(Line::Event(EventLine::from_event(&event).unwrap()).to_text());
    }
    let Line::Header(mut header) = Line::parse(&lines[0]).unwrap() else {
        panic!()
    };
    header.genesis_hash = event_line(&out[0]).hash.clone();
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

fn index_of(lines: &[String], event_type: &str, nth: usize) -> usize {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains(&format!("\"event_type\":\"{event_type}\"")))
        .nth(nth)
        .unwrap_or_else(|| panic!("no {event_type} #{nth}"))
        .0
}

fn edit_payload(lines: &mut [String], index: usize, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut line = event_line(&lines[index]);
    let mut payload: serde_json::Value = serde_json::from_str(&line.payload).unwrap();
    edit(&mut payload);
    let text = serde_json::to_string(&payload).unwrap();
    // Written as rollbook writes a payload (serde_json::Value sorts keys), so that the check
    // reached is the one the edit aims at, not the payload's canonical form (C11).
    line.payload =
        rollbook::domain::events::Event::from_payload(&line.event_type, 1, text.as_bytes())
            .map(|event| String::from_utf8(event.to_payload()).unwrap())
            .unwrap_or(text);
    lines[index] = Line::Event(line).to_text();
}

both_backends!(
    the_story_exports_verifies_and_every_tamper_is_caught,
    database_tampering_is_caught_live,
    verify_says_how_far_signatures_bind_the_history
);

/// The export with the events at `seqs` removed by an attacker who renumbers the rest and
/// recomputes every hash, the header and the checkpoint.
fn without_events(lines: &[String], seqs: &[u64]) -> Vec<String> {
    let mut kept = vec![lines[0].clone()];
    let events = &lines[1..lines.len() - 1];
    for line in events {
        let mut event = event_line(line);
        if seqs.contains(&event.seq) {
            continue;
        }
        event.seq = kept.len() as u64;
        kept.push(Line::Event(event).to_text());
    }
    kept.push(lines[lines.len() - 1].clone());
    rehash(&kept)
}

/// What signatures prove, and where it stops (found by an attacker's review): an offline
/// co-signature binds the head of its request, so the events between that head and the
/// signature (here a roll and its veto) are bound by no signature once nothing signed follows
/// them. Whoever recomputes the hashes can remove them and the export still verifies; `verify`
/// then says that its signatures bind only the events up to that head, so a reviewer sees how
/// much of the file only its hashes hold. Changing an event at or before a bound head breaks
/// the signature binding it (A11).
async fn verify_says_how_far_signatures_bind_the_history(db: &TestDb) {
    let (ledger, [alice, bob, carol], x) = two_of_three_with_a_roll(db, 9).await; // seq 2
    let at = |seconds: i64| t0() + Duration::seconds(seconds);
    ledger.sign(x.id, &alice, at(2)).await.unwrap(); // 3
    let at_request = ledger.head().await.unwrap();
    let x_now = ledger.proposal(x.id).await.unwrap();
    let offline = seal_signature(
        &carol,
        message_for(ledger.ledger_id, &x_now, Purpose::Cosign, &at_request, None),
    );
    let (y, _) = ledger.propose_roll(body(8), &bob, at(3)).await.unwrap(); // 4
    ledger
        .reject(y.id, &carol, "too large", at(4))
        .await
        .unwrap(); // 5, binds 4
    let outcome = ledger.attach(x.id, offline, at(5)).await.unwrap(); // 6 binds 3; 7 commits
    assert!(outcome.committed);
    let lines = jsonl_lines(&ledger, None).await;
    let summary = verify_lines(&lines).unwrap();
    assert_eq!((summary.events, summary.signed_through_seq), (7, 4));
    assert_eq!(summary.proposals.get("rejected"), Some(&1));

    // The roll and its veto, after the head the offline signature binds, removed.
    let cut = without_events(&lines, &[4, 5]);
    let summary = verify_lines(&cut).expect("nothing signed binds seq 4 or 5");
    assert_eq!((summary.events, summary.signed_through_seq), (5, 3));
    assert_eq!(summary.proposals.get("rejected"), None);

    // Changed at or before a bound head (alice's signature at seq 3, which the offline one
    // binds, moved by half a second): the signature binding it fails.
    let mut altered = lines.clone();
    let mut line = event_line(&altered[3]);
    line.recorded_at = "2026-05-07T14:40:02.500000Z".into();
    altered[3] = Line::Event(line).to_text();
    assert_invalid(
        &rehash(&altered),
        "A11",
        "an event before a bound head changed",
    );
}

async fn the_story_exports_verifies_and_every_tamper_is_caught(db: &TestDb) {
    let k = Keys::generate();
    let (ledger, committed_id) = story(db, &k, None).await;
    let lines = jsonl_lines(&ledger, None).await;
    let summary = verify_lines(&lines).expect("the genuine export verifies");
    let statuses: Vec<(&str, u64)> = summary
        .proposals
        .iter()
        .map(|(s, n)| (s.as_str(), *n))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("committed", 2),
            ("expired", 1),
            ("failed", 1),
            ("pending", 1),
            ("rejected", 1),
            ("withdrawn", 1)
        ]
    );
    assert_eq!(
        (
            summary.signer_set_version,
            summary.threshold,
            summary.signers.len()
        ),
        (2, 2, 4)
    );
    let live = verify_live(&ledger.store, ledger.ledger_id, |_| {})
        .await
        .unwrap();
    assert_eq!(live, summary, "live and offline verification agree");
    assert_eq!(
        verify_lines(&rehash(&lines)).unwrap(),
        summary,
        "rehashing an untouched export changes nothing"
    );

    // A changed byte in any event's payload, hash, signature, key or timestamp.
    let signed = index_of(&lines, "proposal.signed", 0);
    let flip = |lines: &[String], index: usize, from: &str, to: &str| {
        let mut copy = lines.to_vec();
        assert!(copy[index].contains(from), "line {index} lacks {from:?}");
        copy[index] = copy[index].replacen(from, to, 1);
        copy
    };
    let line = event_line(&lines[signed]);
    let payload_signature = &serde_json::from_str::<serde_json::Value>(&line.payload).unwrap()
        ["signature"]["signature"]
        .as_str()
        .unwrap()[..8]
        .to_string();
    let changed_sig = payload_signature.chars().rev().collect::<String>();
    assert_invalid(
        &flip(&lines, signed, payload_signature, &changed_sig),
        "does not match the recomputed hash",
        "signature byte",
    );
    assert_invalid(
        &flip(&lines, signed, &line.hash[..6], "000000"),
        "does not match the recomputed hash",
        "hash byte",
    );
    // A plausible, well-formed earlier time (still after the previous event).
    assert!(
        line.recorded_at.ends_with(":03.000000Z"),
        "{}",
        line.recorded_at
    );
    let earlier = line.recorded_at.replace(":03.000000Z", ":02.500000Z");
    assert_invalid(
        &flip(&lines, signed, &line.recorded_at, &earlier),
        "does not match the recomputed hash",
        "timestamp",
    );
    let key_id = line.actor.clone().unwrap();
    assert_invalid(
        &flip(
            &lines,
            signed,
            &key_id,
            &key_id.replace('A', "B").replace('a', "b"),
        ),
        "hash",
        "key id",
    );
    let genesis_key = {
        let payload: serde_json::Value =
            serde_json::from_str(&event_line(&lines[1]).payload).unwrap();
        let set: serde_json::Value =
            serde_json::from_str(payload["signer_set_json"].as_str().unwrap()).unwrap();
        set["signers"][0]["public_key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_invalid(
        &flip(&lines, 1, &genesis_key[..8], "00000000"),
        "hash",
        "public key",
    );
    // Same with the chain recomputed: the signature itself must fail.
    assert_invalid(
        &rehash(&flip(&lines, signed, payload_signature, &changed_sig)),
        "does not verify",
        "rehashed signature byte",
    );
    let mut key_swap = lines.clone();
    edit_payload(&mut key_swap, signed, |p| {
        p["signature"]["key_id"] = serde_json::Value::String(k.bob.public().key_id().to_string())
    });
    assert_invalid(&rehash(&key_swap), "seq", "rehashed signer swap");

    // Dropped, duplicated, inserted, swapped event lines.
    let mut dropped = lines.clone();
    dropped.remove(signed);
    assert_invalid(&dropped, "expected seq", "dropped line");
    let mut duplicated = lines.clone();
    duplicated.insert(signed, lines[signed].clone());
    assert_invalid(&duplicated, "expected seq", "duplicated line");
    let mut swapped = lines.clone();
    swapped.swap(signed, signed + 1);
    assert_invalid(&swapped, "expected seq", "swapped lines");
    let mut inserted = lines.clone();
    inserted.insert(
        signed,
        lines[2].replacen("\"seq\":2,", &format!("\"seq\":{},", signed), 1),
    );
    assert_invalid(&inserted, "hash", "inserted line");
    // Dropped events hidden by renumbering and rehashing: the K-th signature's commit is missing
    // or a commit lacks its K-th signature.
    let commit = index_of(&lines, "proposal.committed", 0);
    let mut k_minus_one = lines.clone();
    k_minus_one.remove(commit - 1);
    for (seq, line) in k_minus_one
        .iter_mut()
        .enumerate()
        .skip(1)
        .take_while(|(_, l)| l.starts_with("{\"type\":\"event\""))
    {
        let mut event = event_line(line);
        event.seq = seq as u64;
        *line = Line::Event(event).to_text();
    }
    assert_invalid(
        &rehash(&k_minus_one),
        "without the K valid signatures",
        "commit with K-1 signatures",
    );

    // A truncated tail with the old checkpoint kept.
    let mut truncated = lines.clone();
    truncated.remove(lines.len() - 2);
    assert_invalid(&truncated, "checkpoint covers", "truncated tail");
    let mut no_checkpoint = lines.clone();
    no_checkpoint.pop();
    assert_invalid(&no_checkpoint, "no checkpoint", "missing checkpoint");
    let mut after = lines.clone();
    after.push(lines[1].clone());
    assert_invalid(&after, "after the checkpoint", "data after the checkpoint");

    // A forged signer added to the genesis (the attacker re-signs nothing: they cannot).
    let mallory = SecretKey::generate().unwrap();
    let mut forged = lines.clone();
    edit_payload(&mut forged, 1, |p| {
        let mut set: serde_json::Value =
            serde_json::from_str(p["signer_set_json"].as_str().unwrap()).unwrap();
        set["signers"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::to_value(entry("mallory", &mallory)).unwrap());
        p["signer_set_json"] = serde_json::Value::String(serde_json::to_string(&set).unwrap());
    });
    assert_invalid(&rehash(&forged), "genesis", "forged genesis signer");

    // A changed policy value.
    let mut policy = lines.clone();
    edit_payload(&mut policy, 1, |p| {
        p["policy_json"] = serde_json::Value::String(p["policy_json"].as_str().unwrap().replace(
            "\"incremental_bps_max\":18.0",
            "\"incremental_bps_max\":80.0",
        ));
    });
    assert_ne!(policy, lines);
    assert_invalid(&rehash(&policy), "genesis", "changed policy value");

    // A changed number in a stored report (and the same with its verdict flipped).
    let recorded = index_of(&lines, "proposal.recorded", 1);
    let mut report = lines.clone();
    edit_payload(&mut report, recorded, |p| {
        let text = p["report_json"]
            .as_str()
            .unwrap()
            .replace("\"contracts_max\":9", "\"contracts_max\":19");
        p["report_json"] = serde_json::Value::String(text);
    });
    assert_ne!(report, lines);
    assert_invalid(
        &rehash(&report),
        "subject_digest does not match",
        "changed report number",
    );

    // A signature replayed from another ledger with the same people.
    let other_db = TestDb::sqlite();
    let (other, other_committed) = story(&other_db, &k, None).await;
    let other_lines = jsonl_lines(&other, None).await;
    let other_signed = event_line(&other_lines[index_of(&other_lines, "proposal.signed", 0)]);
    let replayed_signature: serde_json::Value =
        serde_json::from_str::<serde_json::Value>(&other_signed.payload).unwrap()["signature"]
            .clone();
    let mut replayed = lines.clone();
    edit_payload(&mut replayed, signed, |p| {
        p["signature"] = replayed_signature.clone()
    });
    assert_invalid(
        &rehash(&replayed),
        "for ledger",
        "signature from another ledger",
    );
    assert_ne!(committed_id, other_committed);

    // Unknown and duplicate keys, and a re-escaped character, are refused.
    assert_invalid(
        &flip(
            &lines,
            signed,
            "\"type\":\"event\",",
            "\"type\":\"event\",\"extra\":1,",
        ),
        "unknown field",
        "unknown key",
    );
    assert_invalid(
        &flip(
            &lines,
            signed,
            "\"type\":\"event\",",
            "\"type\":\"event\",\"seq\":1,",
        ),
        "duplicate field",
        "duplicate key",
    );
    assert_invalid(
        &flip(
            &lines,
            signed,
            "\"stream_id\":\"0",
            "\"stream_id\":\"\\u0030",
        ),
        "canonical",
        "escaped character",
    );
}

async fn database_tampering_is_caught_live(db: &TestDb) {
    let k = Keys::generate();
    let (ledger, _) = story(db, &k, None).await;
    verify_live(&ledger.store, ledger.ledger_id, |_| {})
        .await
        .unwrap();
    // Someone with database access writes a co-signature row with a correct hash chain (the
    // chain has no secret in it) but a signature they could not make.
    let (pending, _) = ledger
        .propose_roll(body(4), &k.dave, t0() + Duration::seconds(30))
        .await
        .unwrap();
    let mut forged = rollbook::domain::governance::seal_signature(
        &k.alice,
        rollbook::domain::approval::message_for(
            ledger.ledger_id,
            &pending,
            rollbook::crypto::canonical::Purpose::Cosign,
            &ledger.head().await.unwrap(),
            None,
        ),
    );
    forged.key_id = k.carol.public().key_id().to_string();
    let event =
        rollbook::domain::events::Event::ProposalSigned(rollbook::domain::events::ProposalSigned {
            proposal_id: pending.id.to_string(),
            signature: forged,
        });
    ledger
        .store
        .append(
            ledger.ledger_id,
            false,
            &[],
            vec![rollbook::domain::envelope::NewEvent {
                stream_id: pending.id.to_string(),
                event_type: event.event_type().into(),
                schema_version: 1,
                actor: Some(k.carol.public().key_id().to_string()),
                payload: event.to_payload(),
            }],
            t0() + Duration::seconds(31),
        )
        .await
        .unwrap();
    // The forged row cannot be built upon: an honest signature is refused, not counted as K.
    let honest = ledger
        .sign(pending.id, &k.bob, t0() + Duration::seconds(32))
        .await;
    let message = format!(
        "{:?}",
        honest.expect_err("the decision must refuse to build on a forged signature")
    );
    assert!(message.contains("stored signature is invalid"), "{message}");
    match verify_live(&ledger.store, ledger.ledger_id, |_| {}).await {
        Err(VerifyError::Invalid(failure)) => {
            assert!(failure.reason.contains("does not verify"), "{failure}")
        }
        other => panic!("expected the forged signature to fail verification, got {other:?}"),
    }

    // Direct edits of rows by someone who controls the database: triggers bypassed, as
    // `TestDb::tamper` does on either backend. The veto's reason is the edited field.
    let freshen_veto_reason = |event: &mut StoredEvent| {
        let text = String::from_utf8(event.payload.clone()).unwrap();
        assert!(text.contains("quotes are stale"), "{text}");
        event.payload = text
            .replace("quotes are stale", "quotes are fresh")
            .into_bytes();
    };

    // 1. The row alone is edited, its hash left as it was: the store's read-back refuses it.
    let altered = fresh_like(db).await;
    let (ledger, _) = story(&altered, &k, None).await;
    let seq = seq_of(&ledger, "proposal.rejected").await;
    rewrite_rows(
        &altered,
        &ledger,
        seq,
        freshen_veto_reason,
        Attacker::KeepsHashes,
    )
    .await;
    let reopened = Store::open(&altered.url).await.unwrap();
    match reopened.read_page(ledger.ledger_id, seq - 1, 1).await {
        Err(StoreError::HashMismatch {
            seq: found,
            stored,
            computed,
        }) => {
            assert_eq!(found, seq);
            assert_ne!(stored, computed);
        }
        other => panic!(
            "expected the read-back to refuse the altered row, got {:?}",
            other.map(|events| events.len())
        ),
    }
    expect_invalid_live(
        &reopened,
        ledger.ledger_id,
        seq,
        "does not match the recomputed hash",
    )
    .await;
    match verify_live_chain(&reopened, ledger.ledger_id).await {
        Err(LiveVerifyError::Invalid(ChainError::HashMismatch { seq: found, .. })) => {
            assert_eq!(found, seq)
        }
        other => panic!("expected the chain check to name the altered row, got {other:?}"),
    }

    // 2. The row's hash is recomputed (the chain has no secret): the link from the next row
    // breaks, and the veto's signature, which covers the reason, no longer matches.
    let relinked = fresh_like(db).await;
    let (ledger, _) = story(&relinked, &k, None).await;
    let seq = seq_of(&ledger, "proposal.rejected").await;
    rewrite_rows(
        &relinked,
        &ledger,
        seq,
        freshen_veto_reason,
        Attacker::RehashesTheRow,
    )
    .await;
    let reopened = Store::open(&relinked.url).await.unwrap();
    match verify_live_chain(&reopened, ledger.ledger_id).await {
        Err(LiveVerifyError::Invalid(ChainError::PrevHashMismatch {
            seq: found,
            prev_seq,
            ..
        })) => assert_eq!((found, prev_seq), (seq + 1, seq)),
        other => panic!("expected the next row's link to break, got {other:?}"),
    }
    expect_invalid_live(&reopened, ledger.ledger_id, seq, VETO_OVER_ANOTHER_REASON).await;

    // 3. Every later hash and the head are recomputed too: the chain is whole again, and only
    // the signature is left to catch it.
    let rechained = fresh_like(db).await;
    let (ledger, _) = story(&rechained, &k, None).await;
    let seq = seq_of(&ledger, "proposal.rejected").await;
    rewrite_rows(
        &rechained,
        &ledger,
        seq,
        freshen_veto_reason,
        Attacker::RehashesTheChain,
    )
    .await;
    let reopened = Store::open(&rechained.url).await.unwrap();
    verify_live_chain(&reopened, ledger.ledger_id)
        .await
        .expect("the rehashed chain links up and matches the head");
    expect_invalid_live(&reopened, ledger.ledger_id, seq, VETO_OVER_ANOTHER_REASON).await;

    // 4. A row deleted: the next row stands where it should be.
    let deleted = fresh_like(db).await;
    let (ledger, _) = story(&deleted, &k, None).await;
    assert_eq!(
        deleted
            .tamper("DELETE FROM events WHERE seq = 4")
            .await
            .unwrap(),
        1
    );
    let reopened = Store::open(&deleted.url).await.unwrap();
    expect_invalid_live(&reopened, ledger.ledger_id, 5, "expected seq 4").await;
}

/// What the auditor says of a veto whose signature covers another reason.
const VETO_OVER_ANOTHER_REASON: &str = "presented a veto signature over a different reason";

/// A fresh database on the same backend as `db`, for an attack that needs a ledger of its own.
async fn fresh_like(db: &TestDb) -> TestDb {
    if db.backend == "sqlite" {
        TestDb::sqlite()
    } else {
        TestDb::postgres()
            .await
            .expect("the PostgreSQL half runs only when PostgreSQL is configured")
    }
}

/// The seq of the first event of this type.
async fn seq_of(ledger: &Ledger, event_type: &str) -> u64 {
    let events = ledger
        .store
        .read_page(ledger.ledger_id, 0, 1_000)
        .await
        .unwrap();
    events
        .iter()
        .find(|event| event.event_type == event_type)
        .unwrap_or_else(|| panic!("no {event_type} event"))
        .seq
}

/// How much of the chain the attacker recomputes after editing a row.
#[derive(Clone, Copy, PartialEq)]
enum Attacker {
    KeepsHashes,
    RehashesTheRow,
    RehashesTheChain,
}

/// A byte string as an SQL literal of the backend.
fn bytes_literal(db: &TestDb, bytes: &[u8]) -> String {
    if db.backend == "sqlite" {
        format!("X'{}'", to_hex(bytes))
    } else {
        format!("'\\x{}'::bytea", to_hex(bytes))
    }
}

/// Edits the event at `seq` in the database, past rollbook, and recomputes as much of the
/// chain (and the head row) as `attacker` does.
async fn rewrite_rows(
    db: &TestDb,
    ledger: &Ledger,
    seq: u64,
    edit: impl FnOnce(&mut StoredEvent),
    attacker: Attacker,
) {
    let mut events = ledger
        .store
        .read_page(ledger.ledger_id, 0, 1_000)
        .await
        .unwrap();
    let index = (seq - 1) as usize;
    assert_eq!(events[index].seq, seq);
    edit(&mut events[index]);
    let last = match attacker {
        Attacker::KeepsHashes => index,
        Attacker::RehashesTheRow => {
            events[index].hash = events[index].computed_hash();
            index
        }
        Attacker::RehashesTheChain => {
            for i in index..events.len() {
                if i > index {
                    events[i].prev_hash = events[i - 1].hash;
                }
                events[i].hash = events[i].computed_hash();
            }
            events.len() - 1
        }
    };
    let mut statements: Vec<String> = events[index..=last]
        .iter()
        .map(|event| {
            format!(
                "UPDATE events SET payload = {}, prev_hash = {}, hash = {} WHERE seq = {}",
                bytes_literal(db, &event.payload),
                bytes_literal(db, &event.prev_hash),
                bytes_literal(db, &event.hash),
                event.seq
            )
        })
        .collect();
    if attacker == Attacker::RehashesTheChain {
        statements.push(format!(
            "UPDATE ledgers SET head_hash = {}",
            bytes_literal(db, &events[last].hash)
        ));
    }
    for statement in statements {
        assert_eq!(db.tamper(&statement).await.unwrap(), 1, "{statement}");
    }
}

/// The live verification must fail at `seq` with a reason that mentions `needle`.
async fn expect_invalid_live(store: &Store, ledger_id: Uuid, seq: u64, needle: &str) {
    match verify_live(store, ledger_id, |_| {}).await {
        Err(VerifyError::Invalid(failure)) => {
            assert_eq!(failure.seq, seq, "{failure}");
            assert!(failure.reason.contains(needle), "{failure}");
        }
        other => panic!("expected seq {seq} to fail with {needle:?}, got {other:?}"),
    }
}
