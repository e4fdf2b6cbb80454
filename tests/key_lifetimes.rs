//! A key's lifetime (`valid_after` / `valid_before` in the signed signer set, issue 22): a
//! signature made outside it counts for nothing, for every purpose, judged by the chain time of
//! its event; what a key signed while valid stays valid after it lapses. Through the service
//! on both backends, on a store that takes the caller's clock (a ledger built at chosen times).

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::TestDb;
use rollbook::audit::verify_live;
use rollbook::crypto::keys::SecretKey;
use rollbook::crypto::to_hex;
use rollbook::domain::envelope::format_timestamp;
use rollbook::domain::events::{SignerEntry, SignerSet};
use rollbook::domain::governance::{key_valid_at, ActiveSet, Refusal};
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
    assert!(key_valid_at(bob_entry, at(99)) && !key_valid_at(bob_entry, at(100)));
    assert!(!key_valid_at(&set.signers[2], at(49)) && key_valid_at(&set.signers[2], at(50)));
    // The stored JSON of a key without a lifetime has no lifetime fields: older sets keep
    // their bytes.
    let json = set.to_json();
    assert_eq!(json.matches("valid_before").count(), 1, "{json}");
    assert_eq!(json.matches("valid_after").count(), 1, "{json}");

    let store = Store::open(&db.url).await.unwrap().trusting_caller_clock();
    let (ledger_id, _) = service::init(&store, &set, &Policy::default(), &alice, t0())
        .await
        .unwrap();
    let ledger = Ledger { store, ledger_id };

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

    // What bob signed while his key was valid still verifies after it lapsed.
    let summary = verify_live(&ledger.store, ledger.ledger_id, |_| {})
        .await
        .expect("the history stays valid");
    assert_eq!(summary.events, head_after_alice.seq);
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
        assert_eq!(set.lifetime_warning(at(seconds)), None);
    }
    let mut lapsing = set.to_signer_set();
    lapsing.signers[0].valid_before = Some(format_timestamp(at(500)));
    let lapsing = ActiveSet::validate(&lapsing).unwrap();
    lapsing.check_enough_valid_at(at(60)).unwrap();
    assert!(lapsing.lifetime_warning(at(600)).is_some());
    assert!(matches!(
        lapsing.check_enough_valid_at(at(600)),
        Err(Refusal::TooFewValidKeys {
            valid: 1,
            threshold: 2,
            ..
        })
    ));
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
