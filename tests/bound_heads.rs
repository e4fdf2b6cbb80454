//! Signatures bind heads (since format rollbook/v2, check A11), live on both backends: an append
//! lands only on the head its signature binds, and a client resumed from its pin checks a head
//! bound before the pin against the hashes it verified then.

mod common;

use chrono::Duration;
use common::story::{body, t0, two_of_three_with_a_roll};
use common::TestDb;
use rollbook::crypto::canonical::{ChainHead, Purpose};
use rollbook::crypto::keys::SecretKey;
use rollbook::domain::approval::{message_for, ProposalState};
use rollbook::domain::envelope::NewEvent;
use rollbook::domain::events::{Event, ProposalSigned};
use rollbook::domain::governance::seal_signature;
use rollbook::pin::{sync, PinError};
use rollbook::service::Ledger;
use rollbook::store::{Landing, StoreError};

/// The co-signature event a client would append, with `signature` made over `head`.
fn cosignature(
    ledger: &Ledger,
    roll: &ProposalState,
    key: &SecretKey,
    head: &ChainHead,
) -> NewEvent {
    let signature = seal_signature(
        key,
        message_for(ledger.ledger_id, roll, Purpose::Cosign, head, None),
    );
    let event = Event::ProposalSigned(ProposalSigned {
        proposal_id: roll.id.to_string(),
        signature,
    });
    NewEvent {
        stream_id: event.stream_id().to_string(),
        event_type: event.event_type().into(),
        schema_version: 1,
        actor: Some(key.public().key_id().to_string()),
        payload: event.to_payload(),
    }
}

/// An append whose signature binds a head that moved is refused (`HeadMoved`), leaving the
/// ledger as it was; on the head it binds, it goes in.
async fn an_append_lands_only_on_the_head_it_binds(db: &TestDb) {
    let (ledger, keys, roll) = two_of_three_with_a_roll(db, 9).await;
    let stale = ledger.head().await.unwrap();
    ledger
        .propose_roll(body(3), &keys[1], t0() + Duration::seconds(2))
        .await
        .unwrap();
    let landing = Landing {
        deadline: None,
        after_head: Some(stale),
    };
    let refused = ledger
        .store
        .append_before(
            ledger.ledger_id,
            false,
            &[],
            vec![cosignature(&ledger, &roll, &keys[0], &stale)],
            t0() + Duration::seconds(3),
            landing,
        )
        .await
        .expect_err("the head moved");
    assert!(
        matches!(refused, StoreError::HeadMoved { expected, actual } if expected == stale.seq && actual == stale.seq + 1),
        "{refused}"
    );
    assert_eq!(ledger.head().await.unwrap().seq, stale.seq + 1);
    // The service signs again on the new head and lands.
    ledger
        .sign(roll.id, &keys[0], t0() + Duration::seconds(4))
        .await
        .unwrap();
}

/// A client resumed from its pin checks the head an offline signature binds before that pin
/// against the hash it verified there: an honest one passes; a rogue signer's signature
/// binding a hash the chain never had, written straight into the database, is refused (A11)
/// and the pin stays.
async fn a_head_bound_before_the_pin_is_checked_against_what_the_pin_verified(db: &TestDb) {
    let (ledger, keys, roll) = two_of_three_with_a_roll(db, 9).await;
    let dir = tempfile::tempdir().unwrap();
    let at_request = ledger.head().await.unwrap();
    ledger
        .propose_roll(body(3), &keys[1], t0() + Duration::seconds(2))
        .await
        .unwrap();
    let pinned = sync(&ledger.store, ledger.ledger_id, dir.path())
        .await
        .unwrap();
    assert!(pinned.seq > at_request.seq);
    pinned.close().await;

    // A rogue signer (carol) binds the right seq with a hash of her choosing; the row goes in
    // without the service's checks, as a database administrator would write it.
    let forged = ChainHead {
        seq: at_request.seq,
        hash: [9; 32],
    };
    ledger
        .store
        .append(
            ledger.ledger_id,
            false,
            &[],
            vec![cosignature(&ledger, &roll, &keys[2], &forged)],
            t0() + Duration::seconds(3),
        )
        .await
        .unwrap();
    match sync(&ledger.store, ledger.ledger_id, dir.path()).await {
        Err(PinError::Invalid { failure, .. }) => {
            assert!(failure.reason.contains("(A11)"), "{failure}")
        }
        Err(other) => panic!("expected A11, got {other}"),
        Ok(_) => panic!("a forged bound head passed a pinned sync"),
    }
    let still = rollbook::pin::pinned(dir.path(), ledger.ledger_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.seq, pinned.seq, "the pin did not move");
}

/// The honest case of the same: an offline co-signature binding the head at its request,
/// before the pin, is attached and verifies on the resumed client.
async fn an_offline_signature_bound_before_the_pin_verifies(db: &TestDb) {
    let (ledger, keys, roll) = two_of_three_with_a_roll(db, 9).await;
    let dir = tempfile::tempdir().unwrap();
    let at_request = ledger.head().await.unwrap();
    ledger
        .propose_roll(body(3), &keys[1], t0() + Duration::seconds(2))
        .await
        .unwrap();
    sync(&ledger.store, ledger.ledger_id, dir.path())
        .await
        .unwrap()
        .close()
        .await;
    let signature = seal_signature(
        &keys[2],
        message_for(ledger.ledger_id, &roll, Purpose::Cosign, &at_request, None),
    );
    ledger
        .attach(roll.id, signature, t0() + Duration::seconds(3))
        .await
        .unwrap();
    let verified = sync(&ledger.store, ledger.ledger_id, dir.path())
        .await
        .unwrap();
    assert_eq!(verified.verified_now, 1);
    verified.close().await;
}

both_backends!(
    an_append_lands_only_on_the_head_it_binds,
    a_head_bound_before_the_pin_is_checked_against_what_the_pin_verified,
    an_offline_signature_bound_before_the_pin_verifies,
);
