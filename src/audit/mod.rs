//! Verification of a ledger's history. This first layer checks seq continuity and the hash
//! chain, streaming in constant memory; the audit-trail work adds signatures, governance replay
//! and re-evaluation of sizing reports on top of the same walk.

pub mod auditor;
pub mod export;
pub mod proofs;

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

use std::io::{BufRead, Write};

use auditor::{AuditFailure, AuditSummary, Auditor};
use export::{
    write_line, CheckpointLine, EventLine, HeaderLine, Line, LineReader, EXPORT_FORMAT,
    EXPORT_VERSION,
};

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

/// Exports the ledger as JSONL from `from_seq` on, streaming: constant memory.
pub async fn export_jsonl(
    store: &Store,
    ledger_id: Uuid,
    from_seq: u64,
    out: &mut impl Write,
    exported_at: &str,
) -> Result<u64, String> {
    let from_seq = from_seq.max(1);
    let genesis = store
        .read_page(ledger_id, 0, 1)
        .await
        .map_err(|e| e.to_string())?;
    let genesis_hash = genesis
        .first()
        .map(|event| to_hex(&event.hash))
        .ok_or("the ledger is empty")?;
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
    let io = |error: std::io::Error| format!("cannot write the export: {error}");
    write_line(out, &Line::Header(header)).map_err(io)?;
    let mut merkle = crate::crypto::merkle::MerkleBuilder::new();
    let mut head = [0u8; 32];
    let mut count = 0u64;
    let mut failure: Option<String> = None;
    store
        .for_each_event::<StoreError>(ledger_id, 1, |event| {
            merkle.push_leaf_data(&event.hash);
            head = event.hash;
            count = event.seq;
            if event.seq >= from_seq && failure.is_none() {
                let written = EventLine::from_event(&event)
                    .and_then(|line| write_line(out, &Line::Event(line)).map_err(io));
                if let Err(error) = written {
                    failure = Some(error);
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())?;
    if let Some(error) = failure {
        return Err(error);
    }
    let checkpoint = CheckpointLine {
        line_type: "checkpoint".into(),
        ledger_id: ledger_id.to_string(),
        tree_size: count,
        head_hash: to_hex(&head),
        merkle_root: to_hex(&merkle.root()),
    };
    write_line(out, &Line::Checkpoint(checkpoint)).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(count)
}

/// The outcome of verifying an export file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileVerification {
    pub summary: AuditSummary,
    pub exported_at: String,
}

/// Events per chunk of the verification pipeline: bounds memory (a chunk in flight and one
/// being audited) while giving the signature worker enough work per hand-off.
const PIPELINE_CHUNK_EVENTS: usize = 1024;

/// Public keys of every signer set seen so far, by key id (the pipeline's pre-verification uses
/// them; the auditor still checks that a signer belongs to the set in force).
#[derive(Default)]
struct KeyBook {
    keys: std::collections::HashMap<String, [u8; 32]>,
}

impl KeyBook {
    fn learn_set(&mut self, json: &str) {
        if let Ok(set) = serde_json::from_str::<crate::domain::events::SignerSet>(json) {
            for signer in set.signers {
                if let Ok(key) = crate::crypto::hex::from_hex32(&signer.public_key) {
                    self.keys.insert(signer.key_id, key);
                }
            }
        }
    }

    /// The (key, message, signature) triple an event carries, learning new keys on the way.
    fn triple(
        &mut self,
        event: &crate::domain::envelope::StoredEvent,
    ) -> Option<([u8; 32], Vec<u8>, [u8; 64])> {
        #[derive(serde::Deserialize)]
        struct Fields {
            signature: Option<crate::domain::events::SignatureEnvelope>,
            signer_set_json: Option<String>,
            kind: Option<String>,
            body: Option<String>,
        }
        let fields: Fields = serde_json::from_slice(&event.payload).ok()?;
        if let Some(json) = &fields.signer_set_json {
            self.learn_set(json);
        }
        if fields.kind.as_deref() == Some("signer_set") {
            if let Some(body) = &fields.body {
                self.learn_set(body);
            }
        }
        let envelope = fields.signature?;
        let key = *self.keys.get(&envelope.key_id)?;
        let message = crate::crypto::hex::from_hex(&envelope.message).ok()?;
        let signature: [u8; 64] = crate::crypto::hex::from_hex(&envelope.signature)
            .ok()?
            .try_into()
            .ok()?;
        Some((key, message, signature))
    }
}

/// A public key, a message and a signature over it.
type Triple = ([u8; 32], Vec<u8>, [u8; 64]);

/// One parsed line of the export body, or why it could not be read (reported in order).
enum Item {
    Event(crate::domain::envelope::StoredEvent),
    Checkpoint(CheckpointLine),
    Bad {
        line: u64,
        reason: String,
        seq_hint: Option<u64>,
    },
}

/// Verifies an export file, streaming: header, every event through the auditor, the checkpoint.
/// `progress` is called with the number of events verified so far, every 4096 events.
///
/// Pipelined on two threads: while the auditor replays one chunk of events, a worker verifies
/// the next chunk's signatures (`verify_strict`) and hands over the triples that passed; the
/// auditor then skips the curve arithmetic for exactly those triples. Everything else (every
/// rule, every hash) runs in order on the auditing thread.
pub fn verify_export(
    input: impl BufRead,
    mut progress: impl FnMut(u64),
) -> Result<FileVerification, VerifyError> {
    let mut reader = LineReader::new(input);
    let first = reader
        .next_line()
        .map_err(VerifyError::Unreadable)?
        .ok_or_else(|| VerifyError::Unreadable("the file is empty".into()))?;
    let header = match Line::parse(&first) {
        Ok(Line::Header(header)) => header,
        Ok(_) | Err(_) => {
            return Err(VerifyError::Unreadable(
                "line 1 is not a rollbook export header".into(),
            ))
        }
    };
    if header.format != EXPORT_FORMAT || header.version != EXPORT_VERSION {
        return Err(VerifyError::Unreadable(format!(
            "export format {} version {} is not {EXPORT_FORMAT} version {EXPORT_VERSION}",
            header.format, header.version
        )));
    }
    if header.from_seq != 1 {
        return Err(VerifyError::Unreadable(format!(
            "this export starts at seq {}: signatures, governance and sizing can only be verified from seq 1; export with --from-seq 1",
            header.from_seq
        )));
    }
    let invalid = |seq: u64, reason: String| VerifyError::Invalid(AuditFailure { seq, reason });
    let mut auditor = Auditor::new();
    let mut checkpoint: Option<CheckpointLine> = None;
    let mut keys = KeyBook::default();
    let mut finished_reading = false;

    // Reads the next chunk of items; `None` at the end of the file.
    let mut read_chunk =
        |reader: &mut LineReader<_>, keys: &mut KeyBook| -> Option<(Vec<Item>, Vec<Triple>)> {
            if finished_reading {
                return None;
            }
            let mut items = Vec::with_capacity(PIPELINE_CHUNK_EVENTS);
            let mut triples = Vec::new();
            while items.len() < PIPELINE_CHUNK_EVENTS {
                let text = match reader.next_line() {
                    Ok(Some(text)) => text,
                    Ok(None) => {
                        finished_reading = true;
                        break;
                    }
                    Err(reason) => {
                        items.push(Item::Bad {
                            line: reader.line_number,
                            reason,
                            seq_hint: None,
                        });
                        finished_reading = true;
                        break;
                    }
                };
                let line_number = reader.line_number;
                match Line::parse(&text) {
                    Err(reason) => items.push(Item::Bad {
                        line: line_number,
                        reason,
                        seq_hint: None,
                    }),
                    Ok(Line::Header(_)) => items.push(Item::Bad {
                        line: line_number,
                        reason: "a second header".into(),
                        seq_hint: None,
                    }),
                    Ok(Line::Checkpoint(line)) => items.push(Item::Checkpoint(line)),
                    Ok(Line::Event(line)) => match line.to_event() {
                        Err(reason) => items.push(Item::Bad {
                            line: line_number,
                            reason,
                            seq_hint: Some(line.seq),
                        }),
                        Ok(event) => {
                            if let Some(triple) = keys.triple(&event) {
                                triples.push(triple);
                            }
                            items.push(Item::Event(event));
                        }
                    },
                }
            }
            Some((items, triples))
        };

    let mut audit_chunk = |items: Vec<Item>,
                           auditor: &mut Auditor,
                           checkpoint: &mut Option<CheckpointLine>|
     -> Result<(), VerifyError> {
        for item in items {
            let seq_here = auditor.events() + 1;
            if checkpoint.is_some() {
                return Err(invalid(
                    auditor.events(),
                    "data after the checkpoint".into(),
                ));
            }
            match item {
                Item::Bad {
                    line,
                    reason,
                    seq_hint,
                } => {
                    return Err(invalid(
                        seq_hint.unwrap_or(seq_here),
                        format!("line {line}: {reason}"),
                    ));
                }
                Item::Checkpoint(line) => *checkpoint = Some(line),
                Item::Event(event) => {
                    if event.ledger_id.to_string() != header.ledger_id {
                        return Err(invalid(
                            event.seq,
                            format!(
                                "belongs to ledger {}, the header says {}",
                                event.ledger_id, header.ledger_id
                            ),
                        ));
                    }
                    if event.seq == 1 && to_hex(&event.hash) != header.genesis_hash {
                        return Err(invalid(
                            1,
                            "the genesis hash differs from the header's".into(),
                        ));
                    }
                    auditor.push(&event)?;
                    if auditor.events() % 4096 == 0 {
                        progress(auditor.events());
                    }
                }
            }
        }
        Ok(())
    };

    let outcome = std::thread::scope(|scope| -> Result<(), VerifyError> {
        let verify = |triples: Vec<Triple>| {
            triples
                .iter()
                .filter_map(|(key, message, signature)| {
                    crate::domain::governance::verify_for_memo(key, message, signature)
                })
                .collect::<std::collections::HashSet<[u8; 32]>>()
        };
        let mut in_flight = None;
        loop {
            let next = read_chunk(&mut reader, &mut keys)
                .map(|(items, triples)| (items, scope.spawn(move || verify(triples))));
            if let Some((items, worker)) = in_flight.take() {
                let worker: std::thread::ScopedJoinHandle<'_, std::collections::HashSet<[u8; 32]>> =
                    worker;
                crate::domain::governance::set_verified_memo(worker.join().unwrap_or_default());
                audit_chunk(items, &mut auditor, &mut checkpoint)?;
            }
            match next {
                Some(chunk) => in_flight = Some(chunk),
                None => return Ok(()),
            }
        }
    });
    crate::domain::governance::set_verified_memo(Default::default());
    outcome?;

    let last = auditor.events();
    let checkpoint = checkpoint.ok_or_else(|| {
        invalid(
            last,
            "the export has no checkpoint line: it is truncated".into(),
        )
    })?;
    let (head, root) = (to_hex(&auditor.head_hash()), to_hex(&auditor.merkle_root()));
    if checkpoint.ledger_id != header.ledger_id {
        return Err(invalid(last, "the checkpoint names another ledger".into()));
    }
    if checkpoint.tree_size != last {
        return Err(invalid(last, format!("the checkpoint covers {} events but the export holds {last}: events were dropped or added", checkpoint.tree_size)));
    }
    if checkpoint.head_hash != head {
        return Err(invalid(
            last,
            format!(
                "the checkpoint head hash {} is not the last event's hash {head}",
                checkpoint.head_hash
            ),
        ));
    }
    if checkpoint.merkle_root != root {
        return Err(invalid(
            last,
            format!(
                "the checkpoint Merkle root {} differs from the recomputed root {root}",
                checkpoint.merkle_root
            ),
        ));
    }
    let summary = auditor.finish()?;
    Ok(FileVerification {
        summary,
        exported_at: header.exported_at,
    })
}

/// Verifies the live ledger with the same auditor, page by page, and checks the head row.
pub async fn verify_live(
    store: &Store,
    ledger_id: Uuid,
    mut progress: impl FnMut(u64),
) -> Result<AuditSummary, VerifyError> {
    let head = store
        .head(ledger_id)
        .await?
        .ok_or(StoreError::NoSuchLedger(ledger_id))?;
    let mut auditor = Auditor::new();
    store
        .for_each_event(ledger_id, 1, |event| {
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
            other => other,
        })?;
    let events = auditor.events();
    if (events, auditor.head_hash()) != head {
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
    Ok(auditor.finish()?)
}
