//! Verification of a ledger's history. This first layer checks seq continuity and the hash
//! chain, streaming in constant memory; the audit-trail work adds signatures, governance replay
//! and re-evaluation of sizing reports on top of the same walk.

use uuid::Uuid;

use crate::crypto::hex::to_hex;
use crate::domain::envelope::{ChainError, ChainVerifier};
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSummary {
    pub ledger_id: Uuid,
    pub events: u64,
    pub head_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LiveVerifyError {
    /// The history is invalid: the first broken seq and why.
    #[error("{0}")]
    Invalid(ChainError),
    /// The head row disagrees with the events (a truncated or extended table).
    #[error("the ledger head says seq {head_seq} with hash {head_hash}, but the events end at seq {events} with hash {events_hash}")]
    HeadMismatch {
        head_seq: u64,
        head_hash: String,
        events: u64,
        events_hash: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ChainError> for LiveVerifyError {
    fn from(error: ChainError) -> Self {
        LiveVerifyError::Invalid(error)
    }
}

/// Walks the live ledger page by page and checks every event against the chain.
pub async fn verify_live_chain(
    store: &Store,
    ledger_id: Uuid,
) -> Result<ChainSummary, LiveVerifyError> {
    let head = store
        .head(ledger_id)
        .await?
        .ok_or(StoreError::NoSuchLedger(ledger_id))?;
    let mut verifier = ChainVerifier::new();
    store
        .for_each_event(ledger_id, 1, |event| {
            verifier.push(&event).map_err(LiveVerifyError::from)
        })
        .await?;
    let events = verifier.events_verified();
    if (events, verifier.head_hash()) != head {
        return Err(LiveVerifyError::HeadMismatch {
            head_seq: head.0,
            head_hash: to_hex(&head.1),
            events,
            events_hash: to_hex(&verifier.head_hash()),
        });
    }
    Ok(ChainSummary {
        ledger_id,
        events,
        head_hash: to_hex(&verifier.head_hash()),
    })
}
