//! File verification as a pipeline with no barrier: this thread reads batches of lines, a
//! worker per core prepares them (parse, hash, payloads, signatures checked ahead), and the
//! auditing thread runs every rule on them in seq order.

use std::collections::HashMap;
use std::io::BufRead;

use super::auditor::{AuditFailure, AuditSummary, Auditor, Prepared};
use super::completeness::{check_signed_checkpoint, SignedHead};
use super::export::{
    CheckpointLine, Line, LineReader, SignedCheckpointLine, EXPORT_FORMAT, EXPORT_VERSION,
    LINE_BYTES_MAX,
};
use super::VerifyError;
use crate::crypto::keys::PublicKey;
use crate::crypto::to_hex;
use crate::domain::governance::VerifiedSignatures;

/// The outcome of verifying an export file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileVerification {
    pub summary: AuditSummary,
    pub exported_at: String,
    /// The signed checkpoints the export carries (each passed W1 to W3), and the last of them.
    pub signed: SignedCheckpoints,
}

/// What the verifier keeps of an export's signed checkpoints: the last one (the one that may
/// cover the export), how many there were, and what a witness policy is checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignedCheckpoints {
    pub last: Option<SignedHead>,
    pub count: u64,
    /// Every key of every signer set the export adopted (a policy's `log` lines name them).
    pub ledger_keys: Vec<PublicKey>,
    /// The signer set version whose keys `ledger_keys` holds last.
    set_version: u64,
    /// `timing.clock_skew_max_seconds` of the policy in force at the end.
    pub clock_skew_max_seconds: u32,
}

impl SignedCheckpoints {
    /// Learns the keys of the set in force after the event just audited, when it changed.
    fn learn_set(&mut self, auditor: &Auditor) {
        let Some(set) = auditor
            .signer_set()
            .filter(|set| set.version != self.set_version)
        else {
            return;
        };
        self.set_version = set.version;
        for signer in &set.signers {
            if !self.ledger_keys.contains(&signer.key) {
                self.ledger_keys.push(signer.key);
            }
        }
    }

    /// W1 to W3 of a signed checkpoint line met after the events so far.
    fn check(
        &mut self,
        line: &SignedCheckpointLine,
        header_ledger_id: &str,
        auditor: &Auditor,
    ) -> Result<(), String> {
        let size = auditor.events();
        if line.ledger_id != header_ledger_id {
            return Err(format!(
                "a signed checkpoint names ledger {}, the header {header_ledger_id} (W1)",
                line.ledger_id
            ));
        }
        let previous = self.last.as_ref().map_or(0, |last| last.tree_size);
        if line.tree_size != size || previous >= size {
            return Err(format!(
                "a signed checkpoint of tree size {} must come right after the event of seq {}, once (it follows seq {size}) (W1)",
                line.tree_size, line.tree_size
            ));
        }
        let (Ok(ledger_id), Some(set), Some(at)) = (
            uuid::Uuid::parse_str(header_ledger_id),
            auditor.signer_set(),
            auditor.last_event_time(),
        ) else {
            return Err("a signed checkpoint before the genesis event (W1)".into());
        };
        let head = check_signed_checkpoint(line, ledger_id, &auditor.merkle_root(), set, at)?;
        self.last = Some(head);
        self.count += 1;
        Ok(())
    }
}

/// Batches read but not yet audited, at most: bounds the pipeline's memory (3,072 events)
/// while keeping every worker busy.
const PIPELINE_BATCHES_IN_FLIGHT: usize = 48;

/// Bytes of lines read but not yet audited, at most (counted as the capacity of each line's
/// buffer, reserved before a batch is read): the verifier's memory bound for lines, whatever
/// their size. A line may be 10 MiB (X3), so 48 batches of 64 lines alone would allow 30 GiB.
/// Normal exports (lines of a few KB: 48 batches hold about 10 MiB) never reach it, so the
/// batch count stays the bound that paces them.
pub const PIPELINE_BYTES_IN_FLIGHT: usize = 64 * 1024 * 1024;

/// A batch closes at `PIPELINE_BATCH_LINES` lines or once its lines hold this many bytes.
const PIPELINE_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// What the reader reserves before reading a batch, and settles to the batch's actual size once
/// read: a batch closes at `PIPELINE_BATCH_BYTES` plus the line that reached it, whose buffer
/// may have grown (by doubling) to twice `LINE_BYTES_MAX`.
const PIPELINE_BATCH_RESERVE: usize = PIPELINE_BATCH_BYTES + 2 * LINE_BYTES_MAX;

/// What is in flight (batches and their bytes, read and not yet audited), and whether the
/// auditing thread stopped: the reader waits here for room, the auditor gives room back, and
/// stops everyone at its first failure.
#[derive(Default)]
struct Budget {
    state: std::sync::Mutex<InFlight>,
    room: std::sync::Condvar,
}

#[derive(Default)]
struct InFlight {
    batches: usize,
    bytes: usize,
    stopped: bool,
}

impl Budget {
    fn lock(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for room for one more batch of at most `bytes`, and takes it; false once the
    /// auditor stopped (read nothing more).
    fn reserve(&self, bytes: usize) -> bool {
        let mut state = self.lock();
        while !state.stopped
            && (state.batches >= PIPELINE_BATCHES_IN_FLIGHT
                || state.bytes + bytes > PIPELINE_BYTES_IN_FLIGHT)
        {
            state = self
                .room
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        if state.stopped {
            return false;
        }
        state.batches += 1;
        state.bytes += bytes;
        true
    }

    /// The reader read a batch within its reservation: keep only what it holds.
    fn settle(&self, reserved: usize, actual: usize) {
        let mut state = self.lock();
        state.bytes = state.bytes - reserved + actual;
    }

    /// A batch of `bytes` was audited (or never sent): its room is free again.
    fn release(&self, bytes: usize) {
        let mut state = self.lock();
        state.batches -= 1;
        state.bytes -= bytes;
        self.room.notify_one();
    }

    /// The auditor stopped: the reader reads no further line and the workers drop what they get.
    fn stop(&self) {
        self.lock().stopped = true;
        self.room.notify_all();
    }

    fn stopped(&self) -> bool {
        self.lock().stopped
    }
}

/// Stops the pipeline when the auditing thread ends, however it ends (a failure, a panic).
struct StopOnDrop<'a>(&'a Budget);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Worker threads per pipeline phase: every core, within reason.
const PIPELINE_WORKERS_MAX: usize = 16;

/// Public keys of every signer set seen so far, by key id, decoded and checked once each (the
/// pipeline's pre-verification uses them; the auditor still checks that a signer belongs to
/// the set in force, so a key here only says which bytes a signature is checked against).
#[derive(Default, Clone)]
struct KeyBook {
    keys: HashMap<String, PublicKey>,
    /// Counts every change, so a worker copies the shared book only when it changed.
    generation: u64,
}

impl KeyBook {
    /// Learns the keys of a signer set (none from a set that is not one: too many signers,
    /// malformed), appending the entries it added or changed to `learned`.
    fn learn_set(&mut self, json: &str, learned: &mut Vec<(String, PublicKey)>) {
        let Ok(set) = serde_json::from_str::<crate::domain::events::SignerSet>(json) else {
            return;
        };
        if set.signers.len() > crate::domain::governance::SIGNERS_MAX {
            return;
        }
        for signer in set.signers {
            let Ok(bytes) = crate::crypto::from_hex32(&signer.public_key) else {
                continue;
            };
            if self
                .keys
                .get(&signer.key_id)
                .is_some_and(|known| known.as_bytes() == bytes)
            {
                continue;
            }
            if let Ok(key) = PublicKey::from_bytes_checked(&bytes) {
                learned.push((signer.key_id.clone(), key));
                self.keys.insert(signer.key_id, key);
                self.generation += 1;
            }
        }
    }

    /// The (key, message, signature) triple of a signature envelope, when its key is known.
    fn triple(&self, envelope: &crate::domain::events::SignatureEnvelope) -> Option<Triple> {
        let key = *self.keys.get(&envelope.key_id)?;
        let message = crate::crypto::from_hex(&envelope.message).ok()?;
        let signature: [u8; 64] = crate::crypto::from_hex(&envelope.signature)
            .ok()?
            .try_into()
            .ok()?;
        Some((key, message, signature))
    }
}

/// A public key, a message and a signature over it.
type Triple = (PublicKey, Vec<u8>, [u8; 64]);

/// One line of the export body as read, with its line number, or why it could not be read.
enum RawLine {
    Text(u64, String),
    Unreadable(u64, String),
}

/// One parsed line of the export body, or why it could not be read (reported in order).
enum Item {
    Event(Box<Prepared>),
    SignedCheckpoint(SignedCheckpointLine),
    Checkpoint(CheckpointLine),
    Bad {
        line: u64,
        reason: String,
        seq_hint: Option<u64>,
    },
}

/// Parses, hashes and prepares one line; queues its signature in `to_verify` when the signer's
/// key is already known (`keys`, learning from sets the line carries). A signature whose key is
/// not known yet is left to the auditor, which verifies it in place.
fn prepare_line(
    raw: RawLine,
    keys: &mut KeyBook,
    learned: &mut Vec<(String, PublicKey)>,
    to_verify: &mut Vec<Triple>,
) -> Item {
    let (line, text) = match raw {
        RawLine::Unreadable(line, reason) => {
            return Item::Bad {
                line,
                reason,
                seq_hint: None,
            }
        }
        RawLine::Text(line, text) => (line, text),
    };
    let bad = |reason: String, seq_hint: Option<u64>| Item::Bad {
        line,
        reason,
        seq_hint,
    };
    match Line::parse(&text) {
        Err(reason) => bad(reason, None),
        Ok(Line::Header(_)) => bad("a second header".into(), None),
        Ok(Line::Checkpoint(checkpoint)) => Item::Checkpoint(checkpoint),
        Ok(Line::SignedCheckpoint(signed)) => Item::SignedCheckpoint(signed),
        Ok(Line::Event(event_line)) => match (event_line.seq, event_line.into_event()) {
            (seq, Err(reason)) => bad(reason, Some(seq)),
            (_, Ok(event)) => {
                let prepared = Prepared::new(event);
                if let Some(payload) = prepared.payload() {
                    if let Some(json) = payload.signer_set_json() {
                        keys.learn_set(json, learned);
                    }
                    to_verify.extend(payload.signature().and_then(|e| keys.triple(e)));
                }
                Item::Event(Box::new(prepared))
            }
        },
    }
}

/// Lines per unit of work a pipeline worker claims: small enough to balance the cores (roll
/// recordings cost far more than co-signatures), large enough that the thread wake-ups of
/// handing a batch on stay cheap per line (64 lines against 16: system time -40% on the
/// 20k-event export). A worker holds its batch's decoded signed messages (hundreds of bytes
/// each) until the batch's signatures are checked.
const PIPELINE_BATCH_LINES: usize = 64;

/// One batch after a worker prepared it: its index, items in order, the signatures in it that
/// `verify_strict` accepted, and the bytes it holds in the budget.
type PreparedBatch = (u64, Vec<Item>, VerifiedSignatures, usize);

/// Prepares one batch of lines with the keys known so far: `local`, this worker's copy of
/// the shared book, refreshed when the shared book changed. The sets a line carries are
/// learned into both at once, so the batches after it (on any worker) can verify their
/// signatures ahead too; a signature whose key a worker does not know yet is verified by the
/// auditor in place, which is correct but not parallel.
fn prepare_batch(
    lines: Vec<RawLine>,
    shared: &std::sync::RwLock<KeyBook>,
    local: &mut KeyBook,
) -> (Vec<Item>, VerifiedSignatures) {
    if let Ok(book) = shared.read() {
        if book.generation != local.generation {
            local.clone_from(&book);
        }
    }
    let mut to_verify = Vec::new();
    let mut learned = Vec::new();
    let items = lines
        .into_iter()
        .map(|raw| {
            let item = prepare_line(raw, local, &mut learned, &mut to_verify);
            if !learned.is_empty() {
                if let Ok(mut book) = shared.write() {
                    book.generation += learned.len() as u64;
                    book.keys.extend(learned.drain(..));
                }
                learned.clear();
            }
            item
        })
        .collect();
    // Each signature checked on its own (`verify_strict`); the auditor skips exactly these.
    (items, VerifiedSignatures::verify(&to_verify))
}

/// `prepare_batch`, with a panic (a bug) turned into a refusal of the batch's first line, so
/// that the auditor, waiting for this batch, reports it instead of waiting forever.
fn prepare_batch_or_refuse(
    lines: Vec<RawLine>,
    shared: &std::sync::RwLock<KeyBook>,
    local: &mut KeyBook,
) -> (Vec<Item>, VerifiedSignatures) {
    let first_line = match lines.first() {
        Some(RawLine::Text(line, _) | RawLine::Unreadable(line, _)) => *line,
        None => 0,
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        prepare_batch(lines, shared, local)
    }))
    .unwrap_or_else(|_| {
        // The worker's copy may be half-updated: start it afresh.
        *local = KeyBook::default();
        let item = Item::Bad {
            line: first_line,
            reason: "rollbook failed internally while reading this batch of lines (a bug: please report it with the export)".into(),
            seq_hint: None,
        };
        (vec![item], VerifiedSignatures::default())
    })
}

/// Reads the next batch of lines, closed at `PIPELINE_BATCH_LINES` lines or once it holds
/// `PIPELINE_BATCH_BYTES`, with the bytes its lines hold (their buffers' capacity); empty at
/// the end of the file (or after an unreadable line).
fn read_batch<R: BufRead>(
    reader: &mut LineReader<R>,
    finished: &mut bool,
) -> (Vec<RawLine>, usize) {
    let mut lines = Vec::with_capacity(PIPELINE_BATCH_LINES);
    let mut bytes = 0;
    while !*finished && lines.len() < PIPELINE_BATCH_LINES && bytes < PIPELINE_BATCH_BYTES {
        match reader.next_line() {
            Ok(Some(text)) => {
                bytes += text.capacity();
                lines.push(RawLine::Text(reader.line_number, text));
            }
            Ok(None) => *finished = true,
            Err(reason) => {
                bytes += reason.capacity();
                lines.push(RawLine::Unreadable(reader.line_number, reason));
                *finished = true;
            }
        }
    }
    (lines, bytes)
}

/// Verifies an export file, streaming: header, every event through the auditor, the checkpoint.
/// `progress` is called with the number of events verified so far, every 4096 events.
///
/// Pipelined, with no barrier: this thread reads batches of lines; a worker per core takes
/// the next batch, parses and hashes each line, parses payloads and roll bodies, and verifies
/// the batch's signatures (one `verify_strict` each), handing over the triples that passed so
/// the auditor skips re-checking exactly those; the auditing thread takes the prepared
/// batches back in order and runs every rule on them. Nothing prepared depends on an earlier
/// event. At most `PIPELINE_BATCHES_IN_FLIGHT` batches, holding at most
/// `PIPELINE_BYTES_IN_FLIGHT` bytes of lines, are read and not yet audited; at the auditor's
/// first failure the reader reads no further line.
pub fn verify_export(
    input: impl BufRead,
    mut progress: impl FnMut(u64) + Send,
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
    // Check X2: informational, but a reader may rely on its form (seq 0 names the header).
    if crate::domain::envelope::parse_timestamp(&header.exported_at).is_none() {
        return Err(invalid(
            0,
            format!(
                "header: exported_at {:?} is not a canonical UTC timestamp of a real instant (X2)",
                header.exported_at
            ),
        ));
    }
    let mut auditor = Auditor::new(chrono::Utc::now());
    let mut checkpoint: Option<CheckpointLine> = None;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, PIPELINE_WORKERS_MAX);

    let mut signed = SignedCheckpoints::default();
    let mut audit_chunk = |items: Vec<Item>,
                           verified: &VerifiedSignatures,
                           auditor: &mut Auditor,
                           checkpoint: &mut Option<CheckpointLine>,
                           signed: &mut SignedCheckpoints|
     -> Result<(), VerifyError> {
        for item in items {
            let seq_here = auditor.events() + 1;
            if checkpoint.is_some() {
                return Err(invalid(
                    auditor.events(),
                    "data after the checkpoint (X4)".into(),
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
                        format!("line {line}: {reason} (X3)"),
                    ));
                }
                Item::Checkpoint(line) => *checkpoint = Some(line),
                Item::SignedCheckpoint(line) => signed
                    .check(&line, &header.ledger_id, auditor)
                    .map_err(|reason| invalid(auditor.events(), reason))?,
                Item::Event(prepared) => {
                    let event = prepared.event();
                    if event.ledger_id.to_string() != header.ledger_id {
                        return Err(invalid(
                            event.seq,
                            format!(
                                "belongs to ledger {}, the header says {} (X2)",
                                event.ledger_id, header.ledger_id
                            ),
                        ));
                    }
                    if event.seq == 1 && to_hex(&event.hash) != header.genesis_hash {
                        return Err(invalid(
                            1,
                            "the genesis hash differs from the header's (X2)".into(),
                        ));
                    }
                    auditor.push_prepared(*prepared, verified)?;
                    signed.learn_set(auditor);
                    if auditor.events() % 4096 == 0 {
                        progress(auditor.events());
                        // A file's verifier saves nothing: which rolls and layers changed would
                        // otherwise grow with the ledger.
                        auditor.forget_touched();
                    }
                }
            }
        }
        Ok(())
    };

    use std::sync::mpsc;
    // The keys of every signer set seen so far, and the batches read and not yet taken.
    let keys = std::sync::RwLock::new(KeyBook::default());
    // The reader reserves room for each batch before reading it, the auditor gives it back once
    // the batch is audited, and stops everyone when it stops.
    let budget = Budget::default();
    let (batch_tx, batch_rx) = mpsc::sync_channel::<(u64, Vec<RawLine>, usize)>(workers * 2);
    // Held by the workers only: when the last one stops (the auditor stopped at a failure), the
    // reader's next send fails instead of waiting for a taker.
    let batch_rx = std::sync::Arc::new(std::sync::Mutex::new(batch_rx));
    let outcome = std::thread::scope(
        |scope| -> Result<(Auditor, Option<CheckpointLine>, SignedCheckpoints), VerifyError> {
            let (done_tx, done_rx) = mpsc::channel::<PreparedBatch>();
            let budget = &budget;
            let keys = &keys;
            for _ in 0..workers {
                let (done_tx, batch_rx) = (done_tx.clone(), std::sync::Arc::clone(&batch_rx));
                scope.spawn(move || {
                    let mut local = KeyBook::default();
                    loop {
                        let next = batch_rx.lock().ok().and_then(|rx| rx.recv().ok());
                        let Some((index, lines, bytes)) = next else {
                            return;
                        };
                        if budget.stopped() {
                            return; // the auditor stopped: drain, prepare nothing more
                        }
                        let (items, verified) = prepare_batch_or_refuse(lines, keys, &mut local);
                        if done_tx.send((index, items, verified, bytes)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop((done_tx, batch_rx));
            type Audited =
                Result<(Auditor, Option<CheckpointLine>, SignedCheckpoints), VerifyError>;
            let auditing = scope.spawn(move || -> Audited {
                let _stop = StopOnDrop(budget);
                type Waiting = (Vec<Item>, VerifiedSignatures, usize);
                let mut waiting: std::collections::BTreeMap<u64, Waiting> = Default::default();
                let mut next = 0u64;
                let outcome = (|| -> Result<(), VerifyError> {
                    for (index, items, verified, bytes) in done_rx.iter() {
                        waiting.insert(index, (items, verified, bytes));
                        while let Some((items, verified, bytes)) = waiting.remove(&next) {
                            audit_chunk(
                                items,
                                &verified,
                                &mut auditor,
                                &mut checkpoint,
                                &mut signed,
                            )?;
                            next += 1;
                            budget.release(bytes);
                        }
                    }
                    Ok(())
                })();
                outcome.map(|()| (auditor, checkpoint, signed))
            });
            let mut finished = false;
            let mut index = 0u64;
            while !finished {
                if !budget.reserve(PIPELINE_BATCH_RESERVE) {
                    break; // the auditor stopped at a failure
                }
                let (lines, bytes) = read_batch(&mut reader, &mut finished);
                budget.settle(PIPELINE_BATCH_RESERVE, bytes);
                if lines.is_empty() {
                    budget.release(bytes);
                    break;
                }
                if batch_tx.send((index, lines, bytes)).is_err() {
                    break;
                }
                index += 1;
            }
            drop(batch_tx);
            auditing.join().expect("the auditing thread panicked")
        },
    );
    let (auditor, checkpoint, mut signed) = outcome?;
    signed.clock_skew_max_seconds = auditor.clock_skew_max_seconds();

    let last = auditor.events();
    let checkpoint = checkpoint.ok_or_else(|| {
        invalid(
            last,
            "the export has no checkpoint line: it is truncated (X4)".into(),
        )
    })?;
    let (head, root) = (to_hex(&auditor.head_hash()), to_hex(&auditor.merkle_root()));
    if checkpoint.ledger_id != header.ledger_id {
        return Err(invalid(
            last,
            "the checkpoint names another ledger (X4)".into(),
        ));
    }
    if checkpoint.tree_size != last {
        return Err(invalid(last, format!("the checkpoint covers {} events but the export holds {last}: events were dropped or added (X4)", checkpoint.tree_size)));
    }
    if checkpoint.head_hash != head {
        return Err(invalid(
            last,
            format!(
                "the checkpoint head hash {} is not the last event's hash {head} (X4)",
                checkpoint.head_hash
            ),
        ));
    }
    if checkpoint.merkle_root != root {
        return Err(invalid(
            last,
            format!(
                "the checkpoint Merkle root {} differs from the recomputed root {root} (X4)",
                checkpoint.merkle_root
            ),
        ));
    }
    let summary = auditor.finish()?;
    Ok(FileVerification {
        summary,
        exported_at: header.exported_at,
        signed,
    })
}
