//! One clock per ledger (issue 20), live on both backends with the client's clock injected:
//! the ledger's clock is PostgreSQL's server clock and SQLite's machine clock (the time a
//! command is given, checked against the head). A command whose clock disagrees is refused
//! before it signs; what a clock set wrong could still write on SQLite, `verify` detects.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::entry;
use common::TestDb;
use rollbook::audit::{verify_live, VerifyError};
use rollbook::crypto::canonical::{decode_signed_message, offline_signed_message, Purpose};
use rollbook::crypto::from_hex;
use rollbook::crypto::keys::SecretKey;
use rollbook::domain::approval::{ProposalState, Status};
use rollbook::domain::envelope::{format_timestamp, NewEvent};
use rollbook::domain::events::{Event, ProposalSigned, SignatureEnvelope, SignerSet};
use rollbook::domain::governance::{seal_signature, ActiveSet, Refusal};
use rollbook::service::{self, Ledger, ServiceError};
use rollbook::sizing::{Policy, Proposal};
use rollbook::store::{ExpectedVersion, Store};

const EXAMPLE: &str = include_str!("vectors/example-proposal.toml");

/// The worked example with its snapshot taken ten minutes before `as_seen_at`.
fn body(contracts: u32, as_seen_at: DateTime<Utc>) -> String {
    let mut proposal = Proposal::from_toml_str(EXAMPLE).unwrap();
    let as_of = Utc.with_ymd_and_hms(2026, 5, 7, 14, 30, 0).unwrap();
    proposal.shift_times(as_seen_at - Duration::minutes(10) - as_of);
    proposal.set_contracts_requested(contracts);
    proposal.to_toml_string()
}

/// A 2-of-3 ledger (alice, bob, carol) created now on the ledger's own clock, with its keys.
async fn ledger(db: &TestDb) -> (Ledger, [SecretKey; 3]) {
    ledger_on(Store::open(&db.url).await.unwrap(), Utc::now()).await
}

async fn ledger_on(store: Store, now: DateTime<Utc>) -> (Ledger, [SecretKey; 3]) {
    let keys = [(); 3].map(|_| SecretKey::generate().unwrap());
    let set = ActiveSet::validate(&SignerSet {
        version: 1,
        threshold: 2,
        signers: ["alice", "bob", "carol"]
            .iter()
            .zip(&keys)
            .map(|(name, key)| entry(name, key))
            .collect(),
    })
    .unwrap();
    let (ledger_id, _) = service::init(&store, &set, &Policy::default(), &keys[0], now)
        .await
        .unwrap();
    (Ledger::new(store, ledger_id), keys)
}

async fn head(ledger: &Ledger) -> (u64, [u8; 32]) {
    ledger.store.head(ledger.ledger_id).await.unwrap().unwrap()
}

/// A refusal for a clock that disagrees with the ledger's, naming both: on PostgreSQL the
/// server's clock is the other one; on SQLite the head's time shows a slow clock.
fn assert_clock_refused(db: &TestDb, result: Result<impl std::fmt::Debug, ServiceError>) {
    match (db.backend, result) {
        (_, Err(ServiceError::Refused(refusal @ Refusal::ClockSkew { .. })))
            if db.backend == "postgres" =>
        {
            let text = refusal.to_string();
            assert!(text.contains("ledger's clock") && text.contains("this machine's clock"));
        }
        ("sqlite", Err(ServiceError::Refused(refusal @ Refusal::ClockBehindChain { .. }))) => {
            let text = refusal.to_string();
            assert!(text.contains("last event") && text.contains("this machine's clock"));
        }
        (backend, other) => panic!("{backend}: expected a clock refusal, got {other:?}"),
    }
}

/// Issue 20: three signers running an hour slow (`faketime -f '-1h' rollbook sign`) committed a
/// proposal that had expired. Now each is refused before signing, and nothing is written.
async fn signers_with_a_slow_clock_are_refused(db: &TestDb) {
    let (ledger, keys) = ledger(db).await;
    let now = Utc::now();
    let (roll, _) = ledger
        .propose_roll(body(9, now), &keys[1], now)
        .await
        .unwrap();
    let before = head(&ledger).await;
    let an_hour_slow = Utc::now() - Duration::hours(1);
    for key in [&keys[0], &keys[2]] {
        assert_clock_refused(db, ledger.sign(roll.id, key, an_hour_slow).await);
    }
    assert_clock_refused(db, ledger.withdraw(roll.id, &keys[1], an_hour_slow).await);
    assert_eq!(head(&ledger).await, before);
    // The same signers with their clocks right commit it.
    ledger.sign(roll.id, &keys[0], Utc::now()).await.unwrap();
    let outcome = ledger.sign(roll.id, &keys[2], Utc::now()).await.unwrap();
    assert!(outcome.committed);
}

/// Issue 20: a snapshot three hours old proposed under `faketime -f '-3h'` passed its staleness
/// check on the proposer's clock. Now the proposal is refused; proposed on the ledger's clock
/// the same file is recorded as failed.
async fn a_stale_snapshot_cannot_pass_on_a_slow_clock(db: &TestDb) {
    let (ledger, keys) = ledger(db).await;
    let three_hours_slow = Utc::now() - Duration::hours(3);
    let stale = body(9, three_hours_slow);
    let before = head(&ledger).await;
    assert_clock_refused(
        db,
        ledger
            .propose_roll(stale.clone(), &keys[1], three_hours_slow)
            .await,
    );
    assert_eq!(head(&ledger).await, before);
    let (state, report) = ledger
        .propose_roll(stale, &keys[1], Utc::now())
        .await
        .unwrap();
    assert_eq!(state.status, Status::Failed, "{report:?}");
}

/// A proposal's `created_at` is the ledger's clock read before it is evaluated and signed, so
/// it is never after its recording; on PostgreSQL it is the server's, not the proposer's.
async fn created_at_is_the_ledgers_clock(db: &TestDb) {
    let (ledger, keys) = ledger(db).await;
    let slow = Utc::now() - Duration::seconds(30);
    let (roll, _) = ledger
        .propose_roll(body(9, slow), &keys[1], slow)
        .await
        .unwrap();
    let recording = &ledger.stream(roll.id).await.unwrap()[0];
    let recorded_at = recording.recorded_at_utc().unwrap();
    assert!(roll.created_at <= recorded_at);
    if db.backend == "postgres" {
        assert_ne!(
            roll.created_at.timestamp_micros(),
            slow.timestamp_micros(),
            "the server's clock, not the client's"
        );
    } else {
        assert_eq!(
            roll.created_at.timestamp_micros(),
            slow.timestamp_micros(),
            "the machine's clock"
        );
    }
}

/// Issue 20: one machine a day fast stamped every later event a day ahead.
async fn a_day_fast_clock_cannot_move_the_chain(db: &TestDb) {
    a_fast_clock_cannot_freeze_the_ledger(db, Utc::now() + Duration::days(1)).await;
}

/// Issue 20: a client in 2099 froze the ledger: every later `sign` failed with "expired before
/// this could be recorded".
async fn a_clock_in_2099_cannot_freeze_the_ledger(db: &TestDb) {
    let fast = Utc.with_ymd_and_hms(2099, 1, 1, 0, 0, 0).unwrap();
    a_fast_clock_cannot_freeze_the_ledger(db, fast).await;
}

/// On PostgreSQL the fast client is refused and honest clients carry on; on SQLite (one
/// machine, one clock) what it writes is detected: `verify` on a machine whose clock is right
/// refuses the event (T1), and an honest client is told why instead of an expiry it cannot
/// meet.
async fn a_fast_clock_cannot_freeze_the_ledger(db: &TestDb, fast: DateTime<Utc>) {
    let (ledger, keys) = ledger(db).await;
    let proposed = ledger.propose_roll(body(9, fast), &keys[1], fast).await;
    if db.backend == "postgres" {
        assert_clock_refused(db, proposed);
        let now = Utc::now();
        let (roll, _) = ledger
            .propose_roll(body(9, now), &keys[1], now)
            .await
            .unwrap();
        ledger.sign(roll.id, &keys[0], Utc::now()).await.unwrap();
        verify_live(&ledger.store, ledger.ledger_id, |_| {})
            .await
            .expect("valid");
    } else {
        proposed.unwrap();
        assert_future_detected(&ledger, 2).await;
        let now = Utc::now();
        assert_clock_refused(db, ledger.propose_roll(body(9, now), &keys[1], now).await);
    }
}

async fn assert_future_detected(ledger: &Ledger, seq: u64) {
    match verify_live(&ledger.store, ledger.ledger_id, |_| {}).await {
        Err(VerifyError::Invalid(failure)) => {
            assert_eq!(failure.seq, seq, "{failure}");
            assert!(failure.reason.contains("(T1)"), "{failure}");
        }
        other => panic!("a future event verified: {other:?}"),
    }
}

/// Check T1 on a ledger written with the writer's clock trusted (as a row written around
/// rollbook would be): an event more than the skew ahead of the verifying machine is refused,
/// one within it is not.
async fn verify_refuses_an_event_in_its_future(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap().trusting_caller_clock();
    let (ledger, keys) = ledger_on(store, Utc::now() + Duration::seconds(30)).await;
    verify_live(&ledger.store, ledger.ledger_id, |_| {})
        .await
        .expect("30 s ahead is within the skew");
    let ahead = Utc::now() + Duration::minutes(5);
    ledger
        .propose_roll(body(9, ahead), &keys[1], ahead)
        .await
        .unwrap();
    assert_future_detected(&ledger, 2).await;
}

/// The skew is the policy's: a command that disagrees by less is not refused.
async fn a_clock_within_the_skew_is_accepted(db: &TestDb) {
    let (ledger, keys) = ledger(db).await;
    let slightly_slow = Utc::now() - Duration::seconds(20);
    let (roll, _): (ProposalState, _) = ledger
        .propose_roll(body(9, slightly_slow), &keys[1], slightly_slow)
        .await
        .unwrap();
    ledger
        .sign(roll.id, &keys[0], Utc::now() + Duration::seconds(20))
        .await
        .unwrap();
}

/// A ledger built at chosen times (the caller's clock trusted) with a roll proposed at `t0`.
async fn ledger_with_a_roll_at(
    db: &TestDb,
    t0: DateTime<Utc>,
) -> (Ledger, [SecretKey; 3], ProposalState) {
    let store = Store::open(&db.url).await.unwrap().trusting_caller_clock();
    let (ledger, keys) = ledger_on(store, t0 - Duration::seconds(1)).await;
    let (roll, _) = ledger
        .propose_roll(body(9, t0), &keys[1], t0)
        .await
        .unwrap();
    (ledger, keys, roll)
}

/// An offline co-signature of `roll` by `key`, bound to the head now, made at `signed_at`.
async fn offline(
    ledger: &Ledger,
    roll: &ProposalState,
    key: &SecretKey,
    signed_at: DateTime<Utc>,
) -> SignatureEnvelope {
    let head = ledger.head().await.unwrap();
    seal_signature(
        key,
        offline_signed_message(
            Purpose::Cosign,
            &ledger.ledger_id,
            &roll.id,
            roll.recorded.terms.signer_set_version,
            &roll.digest,
            &head,
            &format_timestamp(signed_at),
        ),
    )
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 7, 14, 40, 0).unwrap()
}

/// An offline signature records when it was made (T3): `attach` refuses one made after the
/// expiry (even attached before it), or off the proposal's life by more than the skew, and an
/// attach after the expiry; one made in time is recorded, its time kept in the signed bytes.
async fn an_offline_signature_records_when_it_was_made(db: &TestDb) {
    let (ledger, keys, roll) = ledger_with_a_roll_at(db, t0()).await;
    let before = head(&ledger).await;
    let attach_at = t0() + Duration::minutes(1);
    let late = offline(
        &ledger,
        &roll,
        &keys[0],
        roll.expires_at + Duration::seconds(1),
    )
    .await;
    match ledger.attach(roll.id, late, attach_at).await {
        Err(ServiceError::Refused(Refusal::SignedAfterExpiry { .. })) => {}
        other => panic!("expected SignedAfterExpiry, got {other:?}"),
    }
    for off in [attach_at + Duration::minutes(2), t0() - Duration::hours(1)] {
        let signature = offline(&ledger, &roll, &keys[0], off).await;
        match ledger.attach(roll.id, signature, attach_at).await {
            Err(ServiceError::Refused(Refusal::SigningTimeOutsideLife { .. })) => {}
            other => panic!("expected SigningTimeOutsideLife at {off}, got {other:?}"),
        }
    }
    let in_time = offline(&ledger, &roll, &keys[0], attach_at).await;
    let after_expiry = roll.expires_at + Duration::seconds(1);
    match ledger.attach(roll.id, in_time.clone(), after_expiry).await {
        Err(ServiceError::Refused(refusal)) => {
            assert!(refusal.to_string().contains("expired"), "{refusal}")
        }
        other => panic!("attached after the expiry: {other:?}"),
    }
    assert_eq!(head(&ledger).await, before);
    ledger.attach(roll.id, in_time, attach_at).await.unwrap();
    let stored = ledger.stream(roll.id).await.unwrap().pop().unwrap();
    let Event::ProposalSigned(signed) =
        Event::from_payload(&stored.event_type, stored.schema_version, &stored.payload).unwrap()
    else {
        panic!("not a signature: {}", stored.event_type);
    };
    let message = decode_signed_message(&from_hex(&signed.signature.message).unwrap()).unwrap();
    assert_eq!(message.signed_at, Some(format_timestamp(attach_at)));
    verify_live(&ledger.store, ledger.ledger_id, |_| {})
        .await
        .expect("valid");
}

/// The same late signature written around the service (its event appended as it is): `verify`
/// refuses it (T3).
async fn verify_refuses_a_signature_made_after_the_expiry(db: &TestDb) {
    let (ledger, keys, roll) = ledger_with_a_roll_at(db, t0()).await;
    let late = offline(
        &ledger,
        &roll,
        &keys[0],
        roll.expires_at + Duration::seconds(1),
    )
    .await;
    let event = Event::ProposalSigned(ProposalSigned {
        proposal_id: roll.id.to_string(),
        signature: late,
    });
    let new = NewEvent {
        stream_id: event.stream_id().to_string(),
        event_type: event.event_type().into(),
        schema_version: 1,
        actor: Some(keys[0].public().key_id().to_string()),
        payload: event.to_payload(),
    };
    let expected = [(roll.id.to_string(), ExpectedVersion::Exact(1))];
    let written = ledger
        .store
        .append(
            ledger.ledger_id,
            false,
            &expected,
            vec![new],
            t0() + Duration::minutes(1),
        )
        .await
        .unwrap();
    match verify_live(&ledger.store, ledger.ledger_id, |_| {}).await {
        Err(VerifyError::Invalid(failure)) => {
            assert_eq!(failure.seq, written[0].seq, "{failure}");
            assert!(failure.reason.contains("(T3)"), "{failure}");
        }
        other => panic!("a late signature verified: {other:?}"),
    }
}

both_backends!(
    an_offline_signature_records_when_it_was_made,
    verify_refuses_a_signature_made_after_the_expiry,
    signers_with_a_slow_clock_are_refused,
    a_stale_snapshot_cannot_pass_on_a_slow_clock,
    created_at_is_the_ledgers_clock,
    a_day_fast_clock_cannot_move_the_chain,
    a_clock_in_2099_cannot_freeze_the_ledger,
    verify_refuses_an_event_in_its_future,
    a_clock_within_the_skew_is_accepted,
);
