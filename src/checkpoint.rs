//! Signed checkpoints of a live ledger (issue 21): sign the head this client verified as a
//! C2SP tlog checkpoint, keep it beside the chain, and have witnesses cosign it.
//!
//! A head is signed only if every checkpoint the ledger stored before is of a prefix of it:
//! the tree is recomputed from the verified events (the pin's sync verified them, so a history
//! rewritten under a pin is refused before this runs) and each stored checkpoint's root must be
//! the root of the tree at its size. A rewritten history is never signed, whoever asks.

use uuid::Uuid;

use crate::crypto::merkle::{consistency_proof, leaf_hash, Hash, MerkleBuilder};
use crate::crypto::{to_hex, PublicKey, Sign};
use crate::domain::events::{Event, LEDGER_STREAM};
use crate::domain::governance::ActiveSet;
use crate::pin::{PinError, Verified};
use crate::store::{AddedSignature, NewCheckpoint, Store, StoreError, StoredCheckpoint};
use crate::tlog::cosignature::{cosignature_time, verified_cosignatures};
use crate::tlog::note::{parse_signature_lines, sign_ed25519, NoteError};
use crate::tlog::{ledger_checkpoint, ledger_origin, Checkpoint, Note, NoteSignature, VerifierKey};
use crate::tlog_http::WitnessReply;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The key is not one of the signer set in force at the head.
    #[error("key {key_id} is not a signer of the set in force at seq {tree_size} (set v{set_version}: {signers}); only a signer in force signs the ledger's checkpoints")]
    NotASigner {
        key_id: String,
        tree_size: u64,
        set_version: u64,
        signers: String,
    },
    /// The key is a signer's, but its lifetime does not hold the ledger's clock (check A15's
    /// rule: a lapsed or not yet valid key signs nothing).
    #[error("key {key_id} of {name} is valid {window}, not at {at} (the ledger's clock); it signs no checkpoint now")]
    KeyNotValid {
        key_id: String,
        name: String,
        window: String,
        at: String,
    },
    /// The key could not sign (an ssh-agent refused, or is gone).
    #[error("the key did not sign the checkpoint: {0}")]
    Signing(String),
    /// A stored checkpoint is not of a prefix of the verified history: never sign this head.
    #[error("the ledger holds a signed checkpoint of size {tree_size} that the verified history contradicts: {detail}. The history was rewritten after it was checkpointed; this head is not signed")]
    Inconsistent { tree_size: u64, detail: String },
    /// A row read while walking the ledger does not follow the one before it.
    #[error("{0}")]
    AlteredRow(String),
    #[error("no stored checkpoint of size {0}")]
    NoCheckpoint(u64),
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The verified ledger's Merkle tree at the pinned head, with its leaves (for consistency
/// proofs to witnesses: 32 bytes per event).
pub struct LedgerTree {
    pub ledger_id: Uuid,
    pub size: u64,
    pub root: Hash,
    leaves: Vec<Hash>,
}

impl LedgerTree {
    /// The RFC 9162 consistency proof from the tree of `old_size` leaves to this one (empty
    /// from 0 or from this size).
    pub fn consistency_proof(&self, old_size: u64) -> Result<Vec<Hash>, String> {
        if old_size == 0 || old_size == self.size {
            return Ok(Vec::new());
        }
        consistency_proof(&self.leaves, old_size, self.size).map_err(|error| error.to_string())
    }
}

/// The tree of the events this client verified up to its pin, each row linked to the one
/// before and the last one the pinned hash; and every stored checkpoint up to that size,
/// checked to be of a prefix of it (root column and note alike).
pub async fn verified_tree(
    store: &Store,
    verified: &Verified,
) -> Result<(LedgerTree, Vec<StoredCheckpoint>), CheckpointError> {
    let (ledger_id, size) = (verified.ledger_id, verified.seq);
    let stored = store.checkpoints(ledger_id, 1, size).await?;
    let mut pending = stored.iter().peekable();
    let mut merkle = MerkleBuilder::new();
    let mut leaves = Vec::with_capacity(size.min(1 << 20) as usize);
    let mut previous = [0u8; 32];
    store
        .for_each_event::<CheckpointError>(ledger_id, 1, |event| {
            if event.seq > size {
                return Ok(());
            }
            if event.seq != leaves.len() as u64 + 1 || event.prev_hash != previous {
                return Err(CheckpointError::AlteredRow(format!(
                    "seq {}: does not follow the event before it (its seq or previous hash differs); run `rollbook verify`",
                    event.seq
                )));
            }
            previous = event.hash;
            let leaf = leaf_hash(&event.hash);
            merkle.push_leaf_hash(leaf);
            leaves.push(leaf);
            while let Some(checkpoint) = pending.next_if(|c| c.tree_size <= event.seq) {
                check_stored(ledger_id, checkpoint, &merkle.root())?;
            }
            Ok(())
        })
        .await?;
    if leaves.len() as u64 != size || previous != verified.head_hash {
        return Err(CheckpointError::AlteredRow(format!(
            "the events read end at seq {} with hash {}, not at the head this client verified (seq {size}, hash {})",
            leaves.len(),
            to_hex(&previous),
            to_hex(&verified.head_hash)
        )));
    }
    let tree = LedgerTree {
        ledger_id,
        size,
        root: merkle.root(),
        leaves,
    };
    Ok((tree, stored))
}

/// A stored checkpoint against the verified tree's root at its size: the root column, and the
/// note's origin, size and root.
fn check_stored(
    ledger_id: Uuid,
    stored: &StoredCheckpoint,
    root: &Hash,
) -> Result<(), CheckpointError> {
    let inconsistent = |detail: String| CheckpointError::Inconsistent {
        tree_size: stored.tree_size,
        detail,
    };
    if stored.root != *root {
        return Err(inconsistent(format!(
            "it states root {}, the verified events give {}",
            to_hex(&stored.root),
            to_hex(root)
        )));
    }
    let note = Note::parse(stored.note.as_bytes())
        .map_err(|error| inconsistent(format!("its note does not parse: {error}")))?;
    let checkpoint = Checkpoint::parse(note.text())
        .map_err(|error| inconsistent(format!("its note is not a checkpoint: {error}")))?;
    let expected = ledger_checkpoint(ledger_id, stored.tree_size, *root);
    if checkpoint != expected {
        return Err(inconsistent(format!(
            "its note states {:?}, the verified events give {:?}",
            note.text(),
            expected.to_text()
        )));
    }
    Ok(())
}

/// The signer set in force after the verified events up to `tree_size`: the last set the
/// verified `ledger` stream adopted at or before it.
pub async fn set_in_force(
    store: &Store,
    verified: &Verified,
    tree_size: u64,
) -> Result<ActiveSet, CheckpointError> {
    let events = verified.stream(store, LEDGER_STREAM).await?;
    let mut json = None;
    for event in events.iter().filter(|event| event.seq <= tree_size) {
        let corrupt =
            |reason: String| CheckpointError::AlteredRow(format!("seq {}: {reason}", event.seq));
        let payload = Event::from_payload(&event.event_type, event.schema_version, &event.payload)
            .map_err(|error| corrupt(error.to_string()))?;
        if let Event::LedgerCreated(_) | Event::SignerSetAdopted(_) = payload {
            json = payload.signer_set_json().map(str::to_string);
        }
    }
    let json = json.ok_or_else(|| {
        CheckpointError::AlteredRow("the verified ledger stream holds no signer set".into())
    })?;
    ActiveSet::parse(&json).map_err(|refusal| CheckpointError::AlteredRow(refusal.to_string()))
}

/// What `sign_head` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The checkpoint as stored now, with every signature and cosignature it has.
    pub checkpoint: StoredCheckpoint,
    /// The signer's name in the set in force.
    pub signer: String,
    /// False when this key had signed this size already (nothing was added).
    pub added: bool,
}

/// Signs the verified head as a tlog checkpoint under the ledger's origin with `key`, which must
/// be a signer of the set in force at that size, and stores it (or adds the signature to the
/// stored checkpoint of that size). Refused when a stored checkpoint contradicts the history.
pub async fn sign_head(
    store: &Store,
    verified: &Verified,
    tree: &LedgerTree,
    key: &impl Sign,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Signed, CheckpointError> {
    let set = set_in_force(store, verified, tree.size).await?;
    let public: PublicKey = key.public();
    let signer = set
        .signers
        .iter()
        .find(|signer| signer.key == public)
        .ok_or_else(|| CheckpointError::NotASigner {
            key_id: public.key_id().to_string(),
            tree_size: tree.size,
            set_version: set.version,
            signers: set
                .signers
                .iter()
                .map(|signer| format!("{} {}", signer.name, signer.key_id))
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    if !signer.valid_at(now) {
        return Err(CheckpointError::KeyNotValid {
            key_id: signer.key_id.clone(),
            name: signer.name.clone(),
            window: signer.lifetime_text(),
            at: crate::domain::envelope::format_timestamp(now),
        });
    }
    let body = ledger_checkpoint(tree.ledger_id, tree.size, tree.root).to_text();
    let signature =
        sign_ed25519(&body, &ledger_origin(tree.ledger_id), key).map_err(|error| match error {
            NoteError::Signing(reason) => CheckpointError::Signing(reason),
            other => CheckpointError::AlteredRow(other.to_string()),
        })?;
    let mut note =
        Note::new(&body).map_err(|error| CheckpointError::AlteredRow(error.to_string()))?;
    note.push_signature(signature.clone())
        .map_err(|error| CheckpointError::AlteredRow(error.to_string()))?;
    let text = note.to_text();
    let new = NewCheckpoint {
        tree_size: tree.size,
        root: tree.root,
        note: &text,
    };
    let mut added = store.add_checkpoint(tree.ledger_id, &new, now).await?;
    if !added {
        // Stored already (by another signer, or by this one): add this signature to it.
        let line = signature.to_line();
        let stored = store
            .checkpoint(tree.ledger_id, Some(tree.size))
            .await?
            .ok_or(CheckpointError::NoCheckpoint(tree.size))?;
        check_stored(tree.ledger_id, &stored, &tree.root)?;
        if !stored.note.contains(&line) {
            added = store
                .add_checkpoint_signature(
                    tree.ledger_id,
                    tree.size,
                    line.trim_end_matches('\n'),
                    None,
                    now,
                )
                .await?;
        }
    }
    let checkpoint = store
        .checkpoint(tree.ledger_id, Some(tree.size))
        .await?
        .ok_or(CheckpointError::NoCheckpoint(tree.size))?;
    Ok(Signed {
        checkpoint,
        signer: signer.name.clone(),
        added,
    })
}

/// What happened at one witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessOutcome {
    /// It cosigned: the signature lines it returned, and how many of them were new here.
    Cosigned {
        lines: usize,
        stored: usize,
    },
    Down(String),
    /// It answered with a status other than 200 (after the one 409 catch-up), or an answer
    /// rollbook cannot use.
    Refused {
        status: u16,
        detail: String,
    },
}

/// A witness the client submits to: its submission prefix and its cosigner vkey (type 0x04).
/// Only lines that verify under `vkey` are ever stored.
#[derive(Debug, Clone)]
pub struct WitnessTarget {
    pub url: String,
    pub vkey: VerifierKey,
}

impl WitnessTarget {
    /// The `source` column of the lines stored from this witness: `<vkey> <url>`. The export
    /// re-verifies each line under the vkey it names; sizes are remembered per source.
    pub fn source(&self) -> String {
        witness_source(&self.vkey, &self.url)
    }
}

/// The `source` of a witness's stored line: its vkey, a space, its URL (neither holds a space).
pub fn witness_source(vkey: &VerifierKey, url: &str) -> String {
    format!("{vkey} {url}")
}

/// The time of a stored witness line if it is a cosignature of `text` by the vkey its `source`
/// names, with a positive time; `None` for anything else (an unverifiable or legacy line).
fn verified_witness_time(text: &str, line: &NoteSignature, source: &str) -> Option<u64> {
    let vkey = VerifierKey::parse(source.split(' ').next()?).ok()?;
    let good = verified_cosignatures(text, std::slice::from_ref(line), &vkey).ok()?;
    let time = cosignature_time(good.first()?)?;
    (time > 0).then_some(time)
}

/// The note of a stored checkpoint as it is shown, exported and sent to witnesses: the signed
/// text with the log signatures stored for it and, per witness key (name and id), only its
/// newest stored cosignature that verifies under the vkey recorded with it. Lines that do not
/// verify (or were stored before vkeys were recorded) are left out, so the note always parses
/// and a quiet ledger re-checkpointed daily keeps one line per witness.
pub fn assembled_note(stored: &StoredCheckpoint) -> Result<Note, String> {
    assemble(stored, &stored.added)
}

fn assemble(stored: &StoredCheckpoint, added: &[AddedSignature]) -> Result<Note, String> {
    let failed = |error: crate::tlog::NoteError| {
        format!(
            "the stored checkpoint of size {}: its note does not parse: {error}",
            stored.tree_size
        )
    };
    let base = Note::parse(stored.note.as_bytes()).map_err(failed)?;
    let text = base.text();
    let mut lines: Vec<(NoteSignature, u64)> =
        base.signatures().iter().map(|s| (s.clone(), 0)).collect();
    for added in added {
        let Ok(parsed) = parse_signature_lines(format!("{}\n", added.line).as_bytes()) else {
            continue;
        };
        let [line] = parsed.as_slice() else { continue };
        match &added.source {
            None => lines.push((line.clone(), 0)),
            Some(source) => {
                if let Some(time) = verified_witness_time(text, line, source) {
                    lines.push((line.clone(), time));
                }
            }
        }
    }
    let mut kept: Vec<(NoteSignature, u64)> = Vec::new();
    for (line, time) in lines {
        let slot = kept
            .iter_mut()
            .find(|(k, _)| k.key_name == line.key_name && k.key_id == line.key_id);
        match slot {
            Some(slot) if time > slot.1 => *slot = (line, time),
            Some(_) => {}
            None => kept.push((line, time)),
        }
    }
    let mut note = Note::new(text).map_err(failed)?;
    for (line, _) in kept {
        note.push_signature(line).map_err(failed)?;
    }
    Note::parse(note.to_text().as_bytes()).map_err(failed)
}

/// Sends the stored checkpoint of `tree.size` to the witness at `url` (its submission prefix)
/// through `post` (`POST {url}/add-checkpoint` with the body, `tlog_http::submit_add_checkpoint`
/// or a test's; `Err` when no answer came back: the witness is down), with a
/// consistency proof from the size this ledger last stored a cosignature from `url` for (0 when
/// none). A 409 names the size the witness holds: the request is made once more from there.
/// The cosignature lines of a 200 are stored, tagged with `url`. Nothing is lost on a witness
/// that is down or refuses: the checkpoint stays stored, and the next run tries again.
pub async fn submit_to_witness<F, Fut>(
    store: &Store,
    tree: &LedgerTree,
    witness: &WitnessTarget,
    post: F,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<WitnessOutcome, CheckpointError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<WitnessReply, String>>,
{
    let stored = store
        .checkpoint(tree.ledger_id, Some(tree.size))
        .await?
        .ok_or(CheckpointError::NoCheckpoint(tree.size))?;
    let note = assembled_note(&stored).map_err(CheckpointError::AlteredRow)?;
    // A size from a checkpoint beyond this head cannot be proven from here: start from 0 and
    // let the witness's 409 say what it holds.
    let mut old_size = store
        .witness_size(tree.ledger_id, &witness.source())
        .await?;
    if old_size > tree.size {
        old_size = 0;
    }
    for attempt in 0..2 {
        let proof =
            tree.consistency_proof(old_size)
                .map_err(|detail| CheckpointError::Inconsistent {
                    tree_size: old_size,
                    detail,
                })?;
        let body = crate::tlog::witness::AddCheckpoint::format(old_size, &proof, &note);
        let reply = match post(body).await {
            Err(reason) => return Ok(WitnessOutcome::Down(reason)),
            Ok(reply) => reply,
        };
        match (reply.status, reply.held_size()) {
            (200, _) => return store_cosignatures(store, tree, &stored, witness, &reply, now).await,
            (409, Some(held)) if attempt == 0 && held <= tree.size => old_size = held,
            (409, Some(held)) if held > tree.size => {
                return Ok(WitnessOutcome::Refused {
                    status: 409,
                    detail: format!(
                        "the witness holds a checkpoint of size {held}, beyond this head (size {}): it has seen a longer history of this ledger",
                        tree.size
                    ),
                })
            }
            (409, Some(held)) => {
                return Ok(WitnessOutcome::Refused {
                    status: 409,
                    detail: format!("the witness answered 409 again (it holds size {held}): its state changed under this client"),
                })
            }
            (status, _) => {
                return Ok(WitnessOutcome::Refused {
                    status,
                    detail: reply.body.lines().next().unwrap_or("").chars().take(200).collect(),
                })
            }
        }
    }
    // Every second attempt returns above; kept so the loop needs no panic.
    Ok(WitnessOutcome::Refused {
        status: 409,
        detail: "the witness answered 409 twice".into(),
    })
}

/// Stores the cosignatures of a witness's 200 answer beside the checkpoint: only lines that
/// verify under the witness's vkey (with a positive time), each only if the note assembled with
/// it still parses. A line claiming the witness's key that does not verify refuses the answer.
async fn store_cosignatures(
    store: &Store,
    tree: &LedgerTree,
    stored: &StoredCheckpoint,
    witness: &WitnessTarget,
    reply: &WitnessReply,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<WitnessOutcome, CheckpointError> {
    let refused = |detail: String| {
        Ok(WitnessOutcome::Refused {
            status: 200,
            detail,
        })
    };
    let lines = match reply.cosignatures() {
        Ok(lines) => lines,
        Err(error) => return refused(format!("a 200 whose body is not signature lines: {error}")),
    };
    let text = ledger_checkpoint(tree.ledger_id, stored.tree_size, stored.root).to_text();
    let good = match verified_cosignatures(&text, &lines, &witness.vkey) {
        Ok(good) => good,
        Err(error) => {
            return refused(format!(
                "its cosignature does not verify under --witness-vkey: {error}; nothing stored"
            ))
        }
    };
    let good: Vec<NoteSignature> = good
        .into_iter()
        .filter(|line| cosignature_time(line).is_some_and(|time| time > 0))
        .collect();
    if good.is_empty() {
        return refused(format!(
            "a 200 without a cosignature by {} (its --witness-vkey): nothing stored",
            witness.vkey.key_name()
        ));
    }
    let source = witness.source();
    let mut added = stored.added.clone();
    let mut new = 0;
    for line in &good {
        let text = line.to_line();
        let text = text.trim_end_matches('\n');
        added.push(AddedSignature {
            line: text.to_string(),
            source: Some(source.clone()),
            recorded_at: String::new(),
        });
        if let Err(detail) = assemble(stored, &added) {
            return refused(format!(
                "its cosignature would make the note unparseable ({detail}); nothing stored"
            ));
        }
        if store
            .add_checkpoint_signature(tree.ledger_id, stored.tree_size, text, Some(&source), now)
            .await?
        {
            new += 1;
        }
    }
    Ok(WitnessOutcome::Cosigned {
        lines: good.len(),
        stored: new,
    })
}
