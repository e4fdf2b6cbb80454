//! A key's lifetime (`valid_after` / `valid_before` in the signed signer set, issue 22): a
//! signature made outside it counts for nothing, for every purpose, judged by the chain time of
//! its event; what a key signed while valid stays valid after it lapses. Through the service
//! on both backends, on a store that takes the caller's clock (a ledger built at chosen times).

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::TestDb;
use rollbook::audit::verify_live;
use rollbook::crypto::canonical::{offline_signed_message, Purpose};
use rollbook::crypto::keys::SecretKey;
use rollbook::crypto::to_hex;
use rollbook::domain::approval::ProposalDraft;
use rollbook::domain::envelope::format_timestamp;
use rollbook::domain::envelope::uuid_v7_at;
use rollbook::domain::events::{Fill, SignerEntry, SignerSet};
use rollbook::domain::execution::ExecutionRequest;
use rollbook::domain::governance::{seal_signature, ActiveSet, Refusal};
use rollbook::service::{self, Ledger, ServiceError};
use rollbook::sizing::{Policy, Proposal};
use rollbook::store::Store;

const EXAMPLE: &str = include_str!("vectors/example-proposal.toml");

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 7, 14, 40, 0).unwrap()
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

fn entry(
    name: &str,
    key: &SecretKey,
    valid_after: Option<DateTime<Utc>>,
    valid_before: Option<DateTime<Utc>>,
) -> SignerEntry {
    SignerEntry {
        name: name.into(),
        role: None,
        public_key: to_hex(&key.public().as_bytes()),
        key_id: key.public().key_id().to_string(),
        valid_after: valid_after.map(format_timestamp),
        valid_before: valid_before.map(format_timestamp),
    }
}

fn body(contracts: u32) -> String {
    let mut proposal = Proposal::from_toml_str(EXAMPLE).unwrap();
    proposal.set_contracts_requested(contracts);
    common::own_layer(&mut proposal);
    proposal.to_toml_string()
}

#[track_caller]
fn assert_lapsed<T: std::fmt::Debug>(result: Result<T, ServiceError>, name: &str, action: &str) {
    match result {
        Err(ServiceError::Refused(Refusal::KeyNotValidAt {
            name: refused,
            action: refused_action,
            ..
        })) => {
            assert_eq!(refused, name);
            assert_eq!(refused_action, action);
        }
        other => panic!("expected {name}'s {action} to count for nothing, got {other:?}"),
    }
}

both_backends!(a_signature_outside_its_keys_lifetime_counts_for_nothing);

/// 2 of 3: alice always, bob until t0+100 s, carol from t0+50 s.
async fn a_signature_outside_its_keys_lifetime_counts_for_nothing(db: &TestDb) {
    let (alice, bob, carol) = (
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
    );
    let set = ActiveSet::validate(&SignerSet {
        version: 1,
        threshold: 2,
        signers: vec![
            entry("alice", &alice, None, None),
            entry("bob", &bob, None, Some(at(100))),
            entry("carol", &carol, Some(at(50)), None),
        ],
    })
    .unwrap();
    let bob_entry = &set.signers[1];
    assert!(bob_entry.valid_at(at(99)) && !bob_entry.valid_at(at(100)));
    assert!(!set.signers[2].valid_at(at(49)) && set.signers[2].valid_at(at(50)));
    // The stored JSON of a key without a lifetime has no lifetime fields: older sets keep
    // their bytes.
    let json = set.to_json();
    assert_eq!(json.matches("valid_before").count(), 1, "{json}");
    assert_eq!(json.matches("valid_after").count(), 1, "{json}");

    let store = Store::open(&db.url).await.unwrap().trusting_caller_clock();
    let (ledger_id, _) = service::init(&store, &set, &Policy::default(), &alice, t0())
        .await
        .unwrap();
    let ledger = Ledger::new(store, ledger_id);

    let (roll, _) = ledger.propose_roll(body(9), &bob, at(1)).await.unwrap();
    let (bobs_other, _) = ledger.propose_roll(body(8), &bob, at(2)).await.unwrap();
    let head = ledger.head().await.unwrap();
    // carol before her key's valid_after: her signature counts for nothing.
    assert_lapsed(
        ledger.sign(roll.id, &carol, at(10)).await,
        "carol",
        "signature",
    );
    assert_eq!(ledger.head().await.unwrap(), head, "nothing recorded");
    ledger.sign(roll.id, &alice, at(20)).await.unwrap();
    assert!(
        ledger
            .sign(roll.id, &carol, at(60))
            .await
            .unwrap()
            .committed
    );

    // An offline co-signature bob made while his key was valid, attached after it lapsed: judged
    // at the event that would record it, so it counts for nothing.
    let (target, _) = ledger.propose_roll(body(5), &alice, at(70)).await.unwrap();
    let head = ledger.head().await.unwrap();
    let made_in_time = seal_signature(
        &bob,
        offline_signed_message(
            Purpose::Cosign,
            &ledger.ledger_id,
            &target.id,
            target.recorded.terms.signer_set_version,
            &target.digest,
            &head,
            &format_timestamp(at(90)),
        ),
    );
    assert_lapsed(
        ledger.attach(target.id, made_in_time, at(120)).await,
        "bob",
        "signature",
    );
    assert_eq!(ledger.head().await.unwrap(), head, "nothing recorded");

    // bob after his key's valid_before: no proposal, veto or withdrawal of his counts.
    let head = ledger.head().await.unwrap();
    assert_lapsed(
        ledger.propose_roll(body(7), &bob, at(150)).await,
        "bob",
        "proposal",
    );
    let (alices, _) = ledger.propose_roll(body(6), &alice, at(160)).await.unwrap();
    let head_after_alice = ledger.head().await.unwrap();
    assert_eq!(head_after_alice.seq, head.seq + 1);
    assert_lapsed(
        ledger.reject(alices.id, &bob, "late", at(170)).await,
        "bob",
        "veto",
    );
    assert_lapsed(
        ledger.withdraw(bobs_other.id, &bob, at(180)).await,
        "bob",
        "withdrawal",
    );
    assert_lapsed(
        ledger.sign(alices.id, &bob, at(190)).await,
        "bob",
        "signature",
    );
    assert_eq!(
        ledger.head().await.unwrap(),
        head_after_alice,
        "nothing recorded"
    );

    // Nor may he record the fills of the roll he proposed; alice may.
    let filled = ExecutionRequest {
        fills: vec![Fill {
            contracts: 9,
            price_usd: 2.95,
            at: format_timestamp(Utc.with_ymd_and_hms(2026, 5, 7, 14, 46, 0).unwrap()),
            broker_ref: "IB-1".into(),
        }],
        corrects: Vec::new(),
    };
    let when_recorded = t0() + Duration::minutes(40);
    assert_lapsed(
        ledger.execute(roll.id, &filled, &bob, when_recorded).await,
        "bob",
        "recorded execution",
    );
    assert_eq!(
        ledger.head().await.unwrap(),
        head_after_alice,
        "nothing recorded"
    );
    ledger
        .execute(roll.id, &filled, &alice, when_recorded)
        .await
        .unwrap();

    // What bob signed while his key was valid still verifies after it lapsed.
    let summary = verify_live(&ledger.store, ledger.ledger_id, |_| {})
        .await
        .expect("the history stays valid");
    assert_eq!(summary.events, head_after_alice.seq + 1);
}

both_backends!(a_rotated_key_keeps_the_history_it_signed_valid);

/// bob signs with his first key, then a signer-set motion rotates it (same name, a new key
/// valid from t0+20 s) and ends alice's key at t0+300 s. Everything bob's first key signed stays
/// valid; it signs nothing after the rotation; his new key signs (the motion too, as every new
/// key must) only from its valid_after on.
async fn a_rotated_key_keeps_the_history_it_signed_valid(db: &TestDb) {
    let (alice, bob, carol, bob_new) = (
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
    );
    let set = ActiveSet::validate(&SignerSet {
        version: 1,
        threshold: 2,
        signers: vec![
            entry("alice", &alice, None, None),
            entry("bob", &bob, None, None),
            entry("carol", &carol, None, None),
        ],
    })
    .unwrap();
    let store = Store::open(&db.url).await.unwrap().trusting_caller_clock();
    let (ledger_id, _) = service::init(&store, &set, &Policy::default(), &alice, t0())
        .await
        .unwrap();
    let ledger = Ledger::new(store, ledger_id);
    let (first, _) = ledger.propose_roll(body(9), &bob, at(1)).await.unwrap();
    ledger.sign(first.id, &carol, at(2)).await.unwrap();
    assert!(
        ledger
            .sign(first.id, &alice, at(2))
            .await
            .unwrap()
            .committed
    );
    let (pending, _) = ledger.propose_roll(body(8), &carol, at(3)).await.unwrap();
    ledger.sign(pending.id, &bob, at(4)).await.unwrap();

    let next = ActiveSet::validate(&SignerSet {
        version: 2,
        threshold: 2,
        signers: vec![
            entry("alice", &alice, None, Some(at(300))),
            entry("bob", &bob_new, Some(at(20)), None),
            entry("carol", &carol, None, None),
        ],
    })
    .unwrap();
    let motion = ledger
        .propose_motion(
            |g, now| Ok(ProposalDraft::signer_set(g, uuid_v7_at(now), &next, now)),
            &alice,
            at(10),
        )
        .await
        .unwrap();
    ledger.sign(motion.id, &carol, at(11)).await.unwrap();
    // The new key is judged by the lifetime the motion gives it.
    let head = ledger.head().await.unwrap();
    assert_lapsed(
        ledger.sign(motion.id, &bob_new, at(15)).await,
        "bob",
        "signature",
    );
    assert_eq!(ledger.head().await.unwrap(), head, "nothing recorded");
    assert!(
        ledger
            .sign(motion.id, &bob_new, at(20))
            .await
            .unwrap()
            .committed
    );

    // The old key is no signer any more; the new one signs.
    let (roll, _) = ledger.propose_roll(body(7), &carol, at(25)).await.unwrap();
    let head = ledger.head().await.unwrap();
    assert!(matches!(
        ledger.sign(roll.id, &bob, at(26)).await,
        Err(ServiceError::Refused(Refusal::NotASigner { .. }))
    ));
    assert_eq!(ledger.head().await.unwrap(), head, "nothing recorded");
    ledger.sign(roll.id, &bob_new, at(27)).await.unwrap();
    assert!(
        ledger
            .sign(roll.id, &alice, at(28))
            .await
            .unwrap()
            .committed
    );
    // alice's key, ended by the motion, counts until 300 s and not from then on.
    ledger.propose_roll(body(6), &alice, at(299)).await.unwrap();
    let head = ledger.head().await.unwrap();
    assert_lapsed(
        ledger.propose_roll(body(5), &alice, at(300)).await,
        "alice",
        "proposal",
    );
    assert_eq!(ledger.head().await.unwrap(), head, "nothing recorded");

    let summary = verify_live(&ledger.store, ledger.ledger_id, |_| {})
        .await
        .expect("what the rotated key signed stays valid");
    assert_eq!(summary.events, head.seq);
}

#[test]
fn a_set_with_fewer_than_k_keys_valid_is_refused_and_one_that_lapses_is_warned_about() {
    let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::generate().unwrap()).collect();
    let set = ActiveSet::validate(&SignerSet {
        version: 1,
        threshold: 2,
        signers: vec![
            entry("alice", &keys[0], None, None),
            entry("bob", &keys[1], None, Some(at(100))),
            entry("carol", &keys[2], Some(at(50)), None),
        ],
    })
    .unwrap();
    // At t0 only alice and bob; at 60 s all three; from 100 s alice and carol: always 2.
    for seconds in [0, 60, 100, 1000] {
        set.check_enough_valid_at(at(seconds)).unwrap();
    }
    assert_eq!(set.lifetime_warning(at(0), at(1000)), None);
    let mut lapsing = set.to_signer_set();
    lapsing.signers[0].valid_before = Some(format_timestamp(at(500)));
    let lapsing = ActiveSet::validate(&lapsing).unwrap();
    lapsing.check_enough_valid_at(at(60)).unwrap();
    assert_eq!(lapsing.lifetime_warning(at(60), at(400)), None);
    assert!(lapsing.lifetime_warning(at(60), at(600)).is_some());
    assert!(matches!(
        lapsing.check_enough_valid_at(at(600)),
        Err(Refusal::TooFewValidKeys {
            valid: 1,
            threshold: 2,
            ..
        })
    ));
    // Two keys valid now and two at the end, but only one between (bob lapses at 100 s before
    // dave's key starts at 200 s): warned about, naming when.
    let mut gap = set.to_signer_set();
    gap.signers[2] = entry("dave", &keys[2], Some(at(200)), None);
    let gap = ActiveSet::validate(&gap).unwrap();
    gap.check_enough_valid_at(at(0)).unwrap();
    gap.check_enough_valid_at(at(300)).unwrap();
    let warning = gap
        .lifetime_warning(at(0), at(300))
        .expect("a gap is warned about");
    assert!(warning.contains(&format_timestamp(at(100))), "{warning}");
    // A lifetime that ends before it starts, or a bound that is not a canonical timestamp.
    let mut backwards = set.to_signer_set();
    backwards.signers[2].valid_before = Some(format_timestamp(at(10)));
    assert!(matches!(
        ActiveSet::validate(&backwards),
        Err(Refusal::SignerLifetime { .. })
    ));
    let mut sloppy = set.to_signer_set();
    sloppy.signers[1].valid_before = Some("2026-05-07T14:41:40Z".into());
    assert!(matches!(
        ActiveSet::validate(&sloppy),
        Err(Refusal::SignerLifetime { .. })
    ));
}

both_backends!(a_set_that_could_decide_nothing_is_refused_on_the_ledgers_clock);

/// 2 of 3 with two keys lapsed at t0: `init` refuses it and writes nothing; a motion proposing
/// it on a live ledger is refused and leaves the ledger unchanged.
async fn a_set_that_could_decide_nothing_is_refused_on_the_ledgers_clock(db: &TestDb) {
    let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::generate().unwrap()).collect();
    let signers = |lapsed: Option<DateTime<Utc>>| {
        ActiveSet::validate(&SignerSet {
            version: 1,
            threshold: 2,
            signers: vec![
                entry("alice", &keys[0], None, None),
                entry("bob", &keys[1], None, lapsed),
                entry("carol", &keys[2], None, lapsed),
            ],
        })
        .unwrap()
    };
    let store = Store::open(&db.url).await.unwrap().trusting_caller_clock();
    let dead = signers(Some(t0()));
    match service::init(&store, &dead, &Policy::default(), &keys[0], t0()).await {
        Err(ServiceError::Refused(Refusal::TooFewValidKeys {
            valid: 1,
            threshold: 2,
            ..
        })) => {}
        other => panic!("expected TooFewValidKeys, got {other:?}"),
    }
    assert!(
        store.ledger_ids().await.unwrap().is_empty(),
        "init wrote nothing"
    );
    let (ledger_id, _) = service::init(&store, &signers(None), &Policy::default(), &keys[0], t0())
        .await
        .unwrap();
    let ledger = Ledger::new(store, ledger_id);
    let head = ledger.head().await.unwrap();
    let mut next = dead.to_signer_set();
    next.version = 2;
    next.signers[1].valid_before = Some(format_timestamp(at(5)));
    next.signers[2].valid_before = Some(format_timestamp(at(5)));
    let next = ActiveSet::validate(&next).unwrap();
    match ledger
        .propose_motion(
            |g, now| Ok(ProposalDraft::signer_set(g, uuid_v7_at(now), &next, now)),
            &keys[0],
            at(10),
        )
        .await
    {
        Err(ServiceError::Refused(Refusal::TooFewValidKeys { .. })) => {}
        other => panic!("expected TooFewValidKeys, got {other:?}"),
    }
    assert_eq!(ledger.head().await.unwrap(), head, "nothing recorded");
}
