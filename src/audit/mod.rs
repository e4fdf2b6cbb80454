//! The audit trail: the export writer, and verification of an export file (`pipeline`) or of
//! the live ledger, both through the same streaming `auditor`, in bounded memory.

pub mod auditor;
mod bound_heads;
mod committed_rolls;
pub mod completeness;
pub mod export;
mod pipeline;
pub mod proofs;

use std::io::Write;

use uuid::Uuid;

use crate::crypto::to_hex;
use crate::domain::approval::LayerBook;
use crate::domain::chain::ChainHead;
use crate::domain::envelope::{ChainError, ChainVerifier};
use crate::store::{Store, StoreError};
use auditor::{AuditFailure, AuditSummary, Auditor};
use export::{
    write_line, CheckpointLine, EventLine, HeaderLine, Line, SignedCheckpointLine, EXPORT_FORMAT,
    EXPORT_VERSION,
};
pub use pipeline::{verify_export, FileVerification, SignedCheckpoints, PIPELINE_BYTES_IN_FLIGHT};

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
        .await
        .map_err(|error| match error {
            LiveVerifyError::Store(StoreError::HashMismatch {
                seq,
                stored,
                computed,
            }) => LiveVerifyError::Invalid(altered_row(seq, &stored, &computed)),
            other => other,
        })?;
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

/// The store checks every row's hash as it reads it back: its finding, told as the chain
/// check tells it.
fn altered_row(seq: u64, stored: &[u8; 32], computed: &[u8; 32]) -> ChainError {
    ChainError::HashMismatch {
        seq,
        stored: to_hex(stored),
        computed: to_hex(computed),
    }
}

/// Why a verification did not succeed: the input is invalid (exit 1) or unreadable (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Invalid(AuditFailure),
    #[error("{0}")]
    Unreadable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AuditFailure> for VerifyError {
    fn from(failure: AuditFailure) -> Self {
        VerifyError::Invalid(failure)
    }
}

/// Why an export stopped. What it wrote up to there is not an export: the caller discards it.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A row failed the store's check on read-back (`HashMismatch`, `CorruptRow`), or the
    /// database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A row the store read but that cannot be an export line (a payload that is not UTF-8).
    #[error("{0}")]
    AlteredRow(String),
    #[error("the ledger is empty")]
    Empty,
    #[error("a tree of {tree_size} events was asked for; the ledger holds {events}")]
    BeyondHead { tree_size: u64, events: u64 },
    #[error("cannot write the export: {0}")]
    Write(#[source] std::io::Error),
}

/// Exports the ledger as JSONL from `from_seq` on, streaming: constant memory (but for the
/// signed checkpoints, a few hundred bytes each).
pub async fn export_jsonl(
    store: &Store,
    ledger_id: Uuid,
    from_seq: u64,
    out: &mut impl Write,
    exported_at: &str,
) -> Result<u64, ExportError> {
    export_jsonl_to(store, ledger_id, from_seq, None, out, exported_at).await
}

/// `export_jsonl` of the tree of the first `tree_size` events (the head when `None`): the
/// export a reviewer checks against a checkpoint of that size.
pub async fn export_jsonl_to(
    store: &Store,
    ledger_id: Uuid,
    from_seq: u64,
    tree_size: Option<u64>,
    out: &mut impl Write,
    exported_at: &str,
) -> Result<u64, ExportError> {
    let from_seq = from_seq.max(1);
    let to_seq = tree_size.unwrap_or(u64::MAX);
    if to_seq == 0 {
        return Err(ExportError::Empty);
    }
    // Read before the walk: every one is of a size at most the head the walk then reaches.
    let mut signed = store
        .checkpoints(ledger_id, from_seq, to_seq)
        .await?
        .into_iter()
        .peekable();
    let genesis = store.read_page(ledger_id, 0, 1).await?;
    let genesis_hash = genesis
        .first()
        .map(|event| to_hex(&event.hash))
        .ok_or(ExportError::Empty)?;
    let header = HeaderLine {
        line_type: "header".into(),
        format: EXPORT_FORMAT.into(),
        version: EXPORT_VERSION,
        ledger_id: ledger_id.to_string(),
        genesis_hash,
        from_seq,
        exported_at: exported_at.to_string(),
        rollbook_version: env!("CARGO_PKG_VERSION").into(),
    };
    write_line(out, &Line::Header(header)).map_err(ExportError::Write)?;
    let mut merkle = crate::crypto::merkle::MerkleBuilder::new();
    let mut head = [0u8; 32];
    let mut count = 0u64;
    store
        .for_each_event::<ExportError>(ledger_id, 1, |event| {
            // Each row's seal is checked on read; the links between rows are checked here, so
            // that a client whose pin confirmed the hash at its pinned seq exports exactly the
            // rows it verified up to there (an edited row with its own hash recomputed breaks
            // the next link).
            if event.seq > to_seq {
                return Ok(());
            }
            if event.seq != count + 1 || event.prev_hash != head {
                return Err(ExportError::AlteredRow(format!(
                    "seq {}: does not follow seq {count} (its seq or previous hash differs); run `rollbook verify`",
                    event.seq
                )));
            }
            merkle.push_leaf_data(&event.hash);
            head = event.hash;
            count = event.seq;
            if event.seq >= from_seq {
                let line = EventLine::from_event(&event).map_err(ExportError::AlteredRow)?;
                write_line(out, &Line::Event(line)).map_err(ExportError::Write)?;
            }
            while let Some(checkpoint) = signed.next_if(|c| c.tree_size <= event.seq) {
                // The database keeps a checkpoint at most at its head, and the walk meets every
                // size; one below this seq could only be a size the walk skipped.
                if checkpoint.tree_size == event.seq {
                    let note = crate::checkpoint::assembled_note(&checkpoint)
                        .map_err(ExportError::AlteredRow)?;
                    let line = SignedCheckpointLine::new(
                        ledger_id,
                        checkpoint.tree_size,
                        note.to_text(),
                    );
                    write_line(out, &Line::SignedCheckpoint(line)).map_err(ExportError::Write)?;
                }
            }
            Ok(())
        })
        .await?;
    if let Some(tree_size) = tree_size.filter(|size| *size > count) {
        return Err(ExportError::BeyondHead {
            tree_size,
            events: count,
        });
    }
    let checkpoint = CheckpointLine {
        line_type: "checkpoint".into(),
        ledger_id: ledger_id.to_string(),
        tree_size: count,
        head_hash: to_hex(&head),
        merkle_root: to_hex(&merkle.root()),
    };
    write_line(out, &Line::Checkpoint(checkpoint)).map_err(ExportError::Write)?;
    out.flush().map_err(ExportError::Write)?;
    Ok(count)
}

/// Verifies the live ledger with the same auditor, page by page, and checks the head row.
pub async fn verify_live(
    store: &Store,
    ledger_id: Uuid,
    progress: impl FnMut(u64),
) -> Result<AuditSummary, VerifyError> {
    Ok(audit_live(store, ledger_id, progress).await?.finish()?)
}

/// The closed layers drawn on at the live ledger's head, with that head, folded by the auditor
/// from genesis: for a writer without a pin (`pin::Verified::layers` resumes from one).
pub async fn layers_live(
    store: &Store,
    ledger_id: Uuid,
) -> Result<(ChainHead, LayerBook), VerifyError> {
    let auditor = audit_live(store, ledger_id, |_| ()).await?;
    auditor.check_complete()?;
    Ok((auditor.head(), auditor.layers().clone()))
}

/// The auditor after every event of the live ledger, the head row checked against it.
async fn audit_live(
    store: &Store,
    ledger_id: Uuid,
    mut progress: impl FnMut(u64),
) -> Result<Auditor, VerifyError> {
    let head = store
        .head(ledger_id)
        .await?
        .ok_or(StoreError::NoSuchLedger(ledger_id))?;
    let mut auditor = Auditor::new(chrono::Utc::now());
    store
        .for_each_event(ledger_id, 1, |event| {
            // This machine's clock as the walk meets the event (check T1).
            auditor.set_verifier_clock(chrono::Utc::now());
            auditor.push(&event).map_err(VerifyError::Invalid)?;
            if auditor.events() % 4096 == 0 {
                progress(auditor.events());
            }
            Ok::<(), VerifyError>(())
        })
        .await
        .map_err(|error| match error {
            VerifyError::Store(StoreError::CorruptRow { seq, reason }) => {
                VerifyError::Invalid(AuditFailure {
                    seq: seq.max(0) as u64,
                    reason: format!("unreadable row: {reason}"),
                })
            }
            VerifyError::Store(StoreError::HashMismatch {
                seq,
                stored,
                computed,
            }) => {
                // Worded as the auditor words a chain finding: the seq apart, the reason alone.
                let text = altered_row(seq, &stored, &computed).to_string();
                let reason = text.split_once(": ").map_or(text.as_str(), |(_, r)| r);
                VerifyError::Invalid(AuditFailure {
                    seq,
                    reason: reason.to_string(),
                })
            }
            other => other,
        })?;
    let events = auditor.events();
    // Honest writers may have appended since the head was read, never removed anything.
    if events < head.0 || (events == head.0 && auditor.head_hash() != head.1) {
        return Err(VerifyError::Invalid(AuditFailure {
            seq: events,
            reason: format!(
                "the ledger head says seq {} with hash {}, but the events end at seq {events} with hash {}",
                head.0,
                to_hex(&head.1),
                to_hex(&auditor.head_hash())
            ),
        }));
    }
    Ok(auditor)
}
