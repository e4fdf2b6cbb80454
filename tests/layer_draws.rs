//! One budget per closed layer, in the ledger (issue 20; methodology, "Drawing on one closed
//! layer"), live on both backends: the ledger supplies what pending and committed rolls already
//! draw on a layer, a layer keeps one name and one set of numbers, a body equal to a pending
//! proposal's is refused, two proposals racing on one layer never overdraw it, and `verify`
//! re-derives the draws (check A12), so an understated report is INVALID.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::TestDb;
use rollbook::audit::verify_live;
use rollbook::crypto::keys::SecretKey;
use rollbook::crypto::to_hex;
use rollbook::domain::approval::{ProposalDraft, ProposalState, Status};
use rollbook::domain::envelope::{uuid_v7_at, NewEvent};
use rollbook::domain::events::{Event, ProposalRecorded, SignerEntry, SignerSet};
use rollbook::domain::governance::{seal_signature, ActiveSet, Refusal};
use rollbook::domain::layers::LayerConflict;
use rollbook::service::{self, Ledger, ServiceError};
use rollbook::sizing::{Draws, Policy, Proposal, SizingReport, Verdict};
use rollbook::store::{ExpectedVersion, Landing, Store};

const EXAMPLE: &str = include_str!("vectors/example-proposal.toml");
/// The worked example's layer: 5,886.94 USD of budget, a growth cap of 25 contracts.
const LAYER: &str = "VIX-C22-2026-11-L3";
const BUDGET_TOTAL_USD: f64 = 5886.94;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 7, 14, 40, 0).unwrap()
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

/// The worked example on `LAYER`, dated `now` (snapshot ten minutes old), for `contracts`, with
/// `note` (two rolls that differ only in their note are two proposals, not a duplicate).
fn roll(contracts: u32, note: &str, now: DateTime<Utc>) -> Proposal {
    let mut proposal = Proposal::from_toml_str(EXAMPLE).unwrap();
    let as_of = Utc.with_ymd_and_hms(2026, 5, 7, 14, 30, 0).unwrap();
    proposal.shift_times(now - Duration::minutes(10) - as_of);
    proposal.set_contracts_requested(contracts);
    proposal.roll.note = note.to_string();
    proposal
}

fn body(contracts: u32, note: &str, now: DateTime<Utc>) -> String {
    roll(contracts, note, now).to_toml_string()
}

struct Desk {
    ledger: Ledger,
    alice: SecretKey,
    bob: SecretKey,
    carol: SecretKey,
}

/// A 2-of-3 ledger (alice, bob, carol) created at t0 with the default policy.
async fn desk(db: &TestDb) -> Desk {
    let keys = [(); 3].map(|_| SecretKey::generate().unwrap());
    let entry = |name: &str, key: &SecretKey| SignerEntry {
        name: name.into(),
        role: None,
        public_key: to_hex(&key.public().as_bytes()),
        key_id: key.public().key_id().to_string(),
        valid_after: None,
        valid_before: None,
    };
    let set = ActiveSet::validate(&SignerSet {
        version: 1,
        threshold: 2,
        signers: vec![
            entry("alice", &keys[0]),
            entry("bob", &keys[1]),
            entry("carol", &keys[2]),
        ],
    })
    .unwrap();
    let store = Store::open(&db.url).await.unwrap().trusting_caller_clock(); // a ledger built at chosen times
    let (ledger_id, _) = service::init(&store, &set, &Policy::default(), &keys[0], t0())
        .await
        .unwrap();
    let [alice, bob, carol] = keys;
    Desk {
        ledger: Ledger::new(store, ledger_id),
        alice,
        bob,
        carol,
    }
}

fn check_passed(report: &SizingReport, id: &str) -> bool {
    report
        .checks
        .iter()
        .find(|check| check.id == id)
        .unwrap()
        .passed
}

async fn head(desk: &Desk) -> Option<(u64, [u8; 32])> {
    desk.ledger.store.head(desk.ledger.ledger_id).await.unwrap()
}

async fn assert_valid(desk: &Desk) {
    verify_live(&desk.ledger.store, desk.ledger.ledger_id, |_| {})
        .await
        .expect("the ledger verifies");
}

/// The nine rolls of the issue (9, 6, 6, 3, 2, 2, 2, 2, 5 contracts, 10,770 USD in all) on one
/// layer with 5,886.94 USD of budget: each is judged with what the earlier ones draw, so the
/// rolls that pass never add up to more than the budget or the growth cap, and those that do
/// not fit are recorded as failed on `budget` or `growth` alone, naming the draws.
async fn nine_rolls_on_one_layer_stop_at_its_budget(db: &TestDb) {
    let desk = desk(db).await;
    let mut drawing: Vec<(String, f64, u64)> = Vec::new();
    for (i, contracts) in [9, 6, 6, 3, 2, 2, 2, 2, 5].into_iter().enumerate() {
        let now = at(10 * i as i64 + 1);
        let (state, report) = desk
            .ledger
            .propose_roll(body(contracts, &format!("roll {i}"), now), &desk.bob, now)
            .await
            .unwrap();
        let drawn_ids: Vec<String> = drawing.iter().map(|(id, _, _)| id.clone()).collect();
        assert_eq!(report.drawn.closed_layer_id.as_deref(), Some(LAYER));
        assert_eq!(report.drawn.proposal_ids, drawn_ids, "roll {i}");
        let drawn_usd: f64 = drawing.iter().map(|(_, usd, _)| usd).sum();
        assert!(
            (report.drawn.outlay_usd - drawn_usd).abs() < 1e-6,
            "roll {i}"
        );
        let outlay_usd = f64::from(contracts) * 295.0;
        let fits = drawn_usd + outlay_usd <= BUDGET_TOTAL_USD;
        assert_eq!(check_passed(&report, "budget"), fits, "roll {i}");
        if report.verdict == Verdict::Pass {
            assert_eq!(state.status, Status::Pending);
            drawing.push((state.id.to_string(), outlay_usd, u64::from(contracts)));
        } else {
            assert_eq!(state.status, Status::Failed);
            let failed: Vec<&str> = report.failed_check_ids();
            assert!(
                failed.iter().all(|id| ["budget", "growth"].contains(id)),
                "roll {i} fails only for its layer: {failed:?}"
            );
            let budget = report.checks.iter().find(|c| c.id == "budget").unwrap();
            if !budget.passed {
                assert!(budget.message.contains("drawn"), "{}", budget.message);
            }
        }
        // The first roll is committed: a committed roll draws for good.
        if i == 0 {
            desk.ledger.sign(state.id, &desk.alice, now).await.unwrap();
            let outcome = desk.ledger.sign(state.id, &desk.carol, now).await.unwrap();
            assert!(outcome.committed);
        }
    }
    let total_usd: f64 = drawing.iter().map(|(_, usd, _)| usd).sum();
    let total_contracts: u64 = drawing.iter().map(|(_, _, n)| n).sum();
    assert!(total_usd <= BUDGET_TOTAL_USD, "{total_usd}");
    assert!(total_contracts <= 25, "{total_contracts}");
    assert!(drawing.len() < 9, "some rolls must not fit");
    assert_valid(&desk).await;
}

/// A withdrawn, vetoed or expired roll draws nothing from then on; a committed one draws for
/// good.
async fn draws_end_when_a_roll_is_withdrawn_vetoed_or_expires(db: &TestDb) {
    let desk = desk(db).await;
    let ledger = &desk.ledger;
    // 9 contracts are 2,655 USD: two fit in 5,886.94 USD, a third does not.
    let (first, _) = ledger
        .propose_roll(body(9, "first", at(1)), &desk.bob, at(1))
        .await
        .unwrap();
    let (second, _) = ledger
        .propose_roll(body(9, "second", at(2)), &desk.bob, at(2))
        .await
        .unwrap();
    let (_, third) = ledger
        .propose_roll(body(9, "third", at(3)), &desk.bob, at(3))
        .await
        .unwrap();
    assert_eq!(third.verdict, Verdict::Fail);
    assert_eq!(third.drawn.proposal_ids.len(), 2);
    ledger.withdraw(first.id, &desk.bob, at(4)).await.unwrap();
    let (_, fourth) = ledger
        .propose_roll(body(9, "fourth", at(5)), &desk.bob, at(5))
        .await
        .unwrap();
    assert_eq!(
        fourth.verdict,
        Verdict::Pass,
        "the withdrawn roll draws nothing"
    );
    assert_eq!(fourth.drawn.proposal_ids, vec![second.id.to_string()]);
    ledger
        .reject(second.id, &desk.carol, "not today", at(6))
        .await
        .unwrap();
    let (_, fifth) = ledger
        .propose_roll(body(9, "fifth", at(7)), &desk.bob, at(7))
        .await
        .unwrap();
    assert_eq!(
        fifth.drawn.proposal_ids.len(),
        1,
        "the vetoed roll draws nothing"
    );
    // Four hours later the pending rolls have expired: nothing is drawn.
    let later = at(7) + Duration::hours(4) + Duration::seconds(1);
    let (_, after_expiry) = ledger
        .propose_roll(body(9, "after expiry", later), &desk.bob, later)
        .await
        .unwrap();
    assert_eq!(
        after_expiry.drawn,
        Draws {
            closed_layer_id: Some(LAYER.into()),
            ..Draws::none()
        }
    );
    assert_valid(&desk).await;
}

/// A layer id keeps the numbers of its earliest roll that did not fail; other numbers under
/// that id, or those numbers under a new id, or no id at all, are input errors naming the
/// earlier proposal, and leave the ledger as it was. A failed roll fixes nothing.
async fn a_layer_keeps_one_set_of_numbers_and_one_name(db: &TestDb) {
    let desk = desk(db).await;
    let ledger = &desk.ledger;
    // A failed roll on layer M (40 contracts is over every cap) fixes nothing.
    let mut failing = roll(40, "too big", at(1));
    failing.set_closed_layer("M", 30.0);
    let (failed, _) = ledger
        .propose_roll(failing.to_toml_string(), &desk.bob, at(1))
        .await
        .unwrap();
    assert_eq!(failed.status, Status::Failed);
    let (first, _) = ledger
        .propose_roll(body(9, "first", at(2)), &desk.bob, at(2))
        .await
        .unwrap();
    let before = head(&desk).await;
    let refused = |result: Result<(ProposalState, SizingReport), ServiceError>| match result {
        Err(ServiceError::BadInput(message)) => message,
        other => panic!("expected an input error, got {other:?}"),
    };
    let mut other_numbers = roll(3, "other fees", at(3));
    other_numbers.set_closed_layer(LAYER, 27.0);
    let message = refused(
        ledger
            .propose_roll(other_numbers.to_toml_string(), &desk.bob, at(3))
            .await,
    );
    assert!(
        message.contains(LAYER) && message.contains(&first.id.to_string()),
        "{message}"
    );
    let mut second_name = roll(3, "second name", at(3));
    second_name.set_closed_layer("VIX-C22-ALIAS", 26.0);
    let message = refused(
        ledger
            .propose_roll(second_name.to_toml_string(), &desk.bob, at(3))
            .await,
    );
    assert!(
        message.contains("VIX-C22-ALIAS") && message.contains(LAYER),
        "{message}"
    );
    let mut unnamed = roll(3, "no id", at(3));
    unnamed.closed_layer.id = None;
    let message = refused(
        ledger
            .propose_roll(unnamed.to_toml_string(), &desk.bob, at(3))
            .await,
    );
    assert!(message.contains("closed_layer.id is missing"), "{message}");
    assert_eq!(head(&desk).await, before, "nothing was written");
    // Layer M's numbers were never fixed: other numbers there are a layer of their own.
    let mut m = roll(3, "M for real", at(4));
    m.set_closed_layer("M", 31.0);
    let (on_m, _) = ledger
        .propose_roll(m.to_toml_string(), &desk.bob, at(4))
        .await
        .unwrap();
    assert_eq!(on_m.status, Status::Pending);
    assert_valid(&desk).await;
}

/// Proposing the identical file twice is refused, naming the pending proposal; once that one
/// is withdrawn the same body may be proposed again.
async fn a_body_equal_to_a_pending_proposal_is_refused(db: &TestDb) {
    let desk = desk(db).await;
    let ledger = &desk.ledger;
    let text = body(5, "once", at(1));
    let (first, _) = ledger
        .propose_roll(text.clone(), &desk.bob, at(1))
        .await
        .unwrap();
    let before = head(&desk).await;
    match ledger.propose_roll(text.clone(), &desk.carol, at(2)).await {
        Err(ServiceError::Refused(Refusal::Layer(LayerConflict::SameAsPending {
            proposal_id,
        }))) => assert_eq!(proposal_id, first.id.to_string()),
        other => panic!("expected the duplicate to be refused, got {other:?}"),
    }
    assert_eq!(head(&desk).await, before, "nothing was written");
    ledger.withdraw(first.id, &desk.bob, at(3)).await.unwrap();
    let (again, _) = ledger.propose_roll(text, &desk.bob, at(4)).await.unwrap();
    assert_eq!(again.status, Status::Pending);
    assert_valid(&desk).await;
}

/// Two clients propose on one layer at the same moment, each a roll that fits alone but not
/// beside the other: whichever lands second was drafted again on the head after the first, so
/// at most one of them passes and the layer is never overdrawn.
async fn two_concurrent_proposals_never_overdraw_one_layer(db: &TestDb) {
    let desk = desk(db).await;
    desk.ledger
        .propose_roll(body(9, "already", at(1)), &desk.bob, at(1))
        .await
        .unwrap();
    let other = Ledger::new(
        Store::open(&db.url).await.unwrap().trusting_caller_clock(),
        desk.ledger.ledger_id,
    );
    for round in 0..3 {
        let now = at(10 + round);
        let (a, b) = tokio::join!(
            desk.ledger
                .propose_roll(body(9, &format!("a{round}"), now), &desk.bob, now),
            other.propose_roll(body(9, &format!("b{round}"), now), &desk.carol, now),
        );
        let (a, b) = (a.unwrap().1, b.unwrap().1);
        assert!(
            a.verdict == Verdict::Fail || b.verdict == Verdict::Fail,
            "round {round}: two rolls of 2,655 USD beside one more cannot both fit 5,886.94 USD"
        );
    }
    assert_valid(&desk).await;
}

/// A recording written around the service (its proposer's key, a correct chain, a report
/// evaluated as if nothing were drawn) is INVALID: `verify` re-derives the draws from the
/// history before it.
async fn verify_refuses_a_report_that_understates_the_draws(db: &TestDb) {
    let desk = desk(db).await;
    let ledger = &desk.ledger;
    ledger
        .propose_roll(body(9, "drawn on", at(1)), &desk.bob, at(1))
        .await
        .unwrap();
    let governance = ledger.governance().await.unwrap();
    let now = at(2);
    let (draft, report) = ProposalDraft::roll(
        &governance,
        uuid_v7_at(now),
        body(9, "understated", now),
        &Draws::none(),
        now,
    )
    .unwrap();
    assert!(report.drawn.proposal_ids.is_empty());
    let head = ledger.head().await.unwrap();
    let signature = seal_signature(&desk.bob, draft.message(&head));
    let event = Event::ProposalRecorded(ProposalRecorded {
        terms: draft.terms.clone(),
        subject_digest: to_hex(&draft.subject_digest()),
        signature,
    });
    ledger
        .store
        .append_before(
            ledger.ledger_id,
            false,
            &[(draft.terms.proposal_id.clone(), ExpectedVersion::NoStream)],
            vec![NewEvent {
                stream_id: event.stream_id().to_string(),
                event_type: event.event_type().into(),
                schema_version: 1,
                actor: Some(desk.bob.public().key_id().to_string()),
                payload: event.to_payload(),
            }],
            now,
            Landing {
                deadline: None,
                after_head: Some(head),
            },
        )
        .await
        .unwrap();
    let failure = verify_live(&ledger.store, ledger.ledger_id, |_| {})
        .await
        .expect_err("an understated report is INVALID");
    let text = failure.to_string();
    assert!(text.contains("drawn"), "{text}");
    assert!(
        text.contains("seq 3") || text.contains(&format!("{}", head.seq + 1)),
        "{text}"
    );
}

both_backends!(
    nine_rolls_on_one_layer_stop_at_its_budget,
    draws_end_when_a_roll_is_withdrawn_vetoed_or_expires,
    a_layer_keeps_one_set_of_numbers_and_one_name,
    a_body_equal_to_a_pending_proposal_is_refused,
    two_concurrent_proposals_never_overdraw_one_layer,
    verify_refuses_a_report_that_understates_the_draws,
);
