//! Signed checkpoints carried by an export (checks W1 to W3), and whether an export is complete
//! under a reviewer's witness policy (W4 to W7). docs/audit-format.md, "Signed checkpoints in
//! an export", numbers the checks. Pure: the verifier's clock enters as an argument; the note,
//! checkpoint and policy formats are `tlog`'s.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::export::SignedCheckpointLine;
use crate::crypto::merkle::Hash;
use crate::crypto::{to_hex, PublicKey};
use crate::domain::governance::ActiveSet;
use crate::tlog::note::verified_signatures;
use crate::tlog::{ledger_origin, Checkpoint, Note, Policy, VerifierKey, VerifierKind};

/// A signed checkpoint of an export that passed W1 to W3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHead {
    pub tree_size: u64,
    pub note: Note,
    /// The signers in force at its size whose signature verified: name and key.
    pub signers: Vec<(String, PublicKey)>,
}

/// The log key of a signer: Ed25519 (0x01) under the ledger's origin as key name, its key id
/// computed from both (tlog-policy: a `log` key's name must be the origin).
pub fn log_key(ledger_id: Uuid, key: PublicKey) -> Result<VerifierKey, String> {
    VerifierKey::new(&ledger_origin(ledger_id), VerifierKind::Ed25519, key)
        .map_err(|error| error.to_string())
}

/// Checks W2 and W3 of a signed checkpoint line met right after the event of its size (W1 is
/// the placement, which the caller checked): `root` is the export's root over its first
/// `line.tree_size` events, `set` the signer set in force after them, `at` the chain time of
/// the last of them: a signer's key counts only if its lifetime holds `at` (A15's rule; the
/// export carries no signing time, and `checkpoint` refuses a key lapsed on the ledger's clock).
pub fn check_signed_checkpoint(
    line: &SignedCheckpointLine,
    ledger_id: Uuid,
    root: &Hash,
    set: &ActiveSet,
    at: DateTime<Utc>,
) -> Result<SignedHead, String> {
    let note = Note::parse(line.note.as_bytes())
        .map_err(|error| format!("its note is not a signed note: {error} (W2)"))?;
    let checkpoint = Checkpoint::parse(note.text())
        .map_err(|error| format!("its note is not a tlog checkpoint: {error} (W2)"))?;
    let origin = ledger_origin(ledger_id);
    if checkpoint.origin != origin {
        return Err(format!(
            "its origin is {:?}, not {origin:?} (W2)",
            checkpoint.origin
        ));
    }
    if checkpoint.size != line.tree_size {
        return Err(format!(
            "its note states tree size {}, the line {} (W2)",
            checkpoint.size, line.tree_size
        ));
    }
    if checkpoint.root != *root {
        return Err(format!(
            "its note states root {}, but the export's first {} events have root {}: the history it signed is not this one (W2)",
            to_hex(&checkpoint.root),
            line.tree_size,
            to_hex(root)
        ));
    }
    let valid: Vec<_> = set.signers.iter().filter(|s| s.valid_at(at)).collect();
    let keys = valid
        .iter()
        .map(|signer| log_key(ledger_id, signer.key))
        .collect::<Result<Vec<_>, _>>()?;
    let verified = verified_signatures(&note, &keys).map_err(|error| format!("{error} (W3)"))?;
    let mut signers: Vec<(String, PublicKey)> = Vec::new();
    for found in verified {
        let signer = valid[found.key_index];
        if !signers.iter().any(|(name, _)| *name == signer.name) {
            signers.push((signer.name.clone(), signer.key));
        }
    }
    if signers.is_empty() {
        return Err(format!(
            "no signer of the set in force at size {} (set v{}: {}) whose key is valid at {} signed it (W3)",
            line.tree_size,
            set.version,
            set.signers
                .iter()
                .map(|signer| signer.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            crate::domain::envelope::format_timestamp(at)
        ));
    }
    Ok(SignedHead {
        tree_size: line.tree_size,
        note,
        signers,
    })
}

/// What a reviewer asks of an export's completeness: a witness policy and, optionally, how old
/// a cosignature may be.
#[derive(Debug, Clone)]
pub struct WitnessCheck {
    pub policy: Policy,
    pub max_age: Option<chrono::Duration>,
    /// The verifier's clock.
    pub now: DateTime<Utc>,
}

/// What a complete export showed: its covering checkpoint's signers and the cosignatures that
/// counted toward the quorum (witness name, time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completeness {
    pub tree_size: u64,
    pub signers: Vec<String>,
    pub cosigned_by: Vec<(String, DateTime<Utc>)>,
}

/// Checks W4 to W7: the export of `events` events is covered by `covering` (its last signed
/// checkpoint, W3-checked), whose signatures and cosignatures satisfy `check`. `ledger_keys`
/// holds every key of every signer set the export adopted (for the policy's `log` lines);
/// `skew_s` is the ledger policy's clock skew, which a cosignature's time may lie ahead of
/// the verifier's clock.
pub fn check_completeness(
    ledger_id: Uuid,
    events: u64,
    covering: Option<&SignedHead>,
    ledger_keys: &[PublicKey],
    skew_s: u32,
    check: &WitnessCheck,
) -> Result<Completeness, String> {
    let head = covering.filter(|head| head.tree_size == events).ok_or_else(|| {
        format!(
            "no signed checkpoint covers the export's last event (seq {events}){}: the export may be cut short of the ledger (W4)",
            covering.map_or(String::new(), |head| format!(
                "; its last signed checkpoint is of size {}",
                head.tree_size
            ))
        )
    })?;
    check_log_lines(ledger_id, head, ledger_keys, &check.policy)?;
    let cosigned_by = counted_cosignatures(head, skew_s, check)?;
    let names: Vec<&str> = cosigned_by.iter().map(|(name, _)| name.as_str()).collect();
    if !check.policy.quorum_met(&names) {
        return Err(format!(
            "the checkpoint of size {events} is cosigned by {} of the policy's witnesses{} (counting only cosignatures that verify, not dated in the future{}), which does not meet its quorum (W6, W7)",
            names.len(),
            if names.is_empty() {
                String::new()
            } else {
                format!(" ({})", names.join(", "))
            },
            check
                .max_age
                .map_or(String::new(), |age| format!(" and at most {} s old", age.num_seconds())),
        ));
    }
    Ok(Completeness {
        tree_size: events,
        signers: head.signers.iter().map(|(name, _)| name.clone()).collect(),
        cosigned_by,
    })
}

/// A signed note given alone (`verify-proof --checkpoint NOTE`): a checkpoint of `ledger_id`
/// signed by one of the policy's `log` keys (the reviewer's trust in the ledger's signers,
/// since no export comes with it) and cosigned to meet its quorum (W6, W7). Returns its size
/// and root.
pub fn check_note_alone(
    text: &str,
    ledger_id: Uuid,
    skew_s: u32,
    check: &WitnessCheck,
) -> Result<(u64, Hash), String> {
    let note =
        Note::parse(text.as_bytes()).map_err(|error| format!("not a signed note: {error}"))?;
    let checkpoint = Checkpoint::parse(note.text())
        .map_err(|error| format!("the note is not a tlog checkpoint: {error}"))?;
    let origin = ledger_origin(ledger_id);
    if checkpoint.origin != origin {
        return Err(format!(
            "the checkpoint's origin is {:?}, not {origin:?}",
            checkpoint.origin
        ));
    }
    if checkpoint.size == 0 && checkpoint.root != crate::crypto::merkle::empty_root() {
        return Err("a checkpoint of size 0 must have the empty tree's root (N6)".into());
    }
    if check.policy.logs().is_empty() {
        return Err("a signed note alone is verified against the policy's `log` lines (the ledger's signer keys under its origin); the policy has none".into());
    }
    let keys: Vec<VerifierKey> = check
        .policy
        .logs()
        .iter()
        .map(|log| log.key.clone())
        .collect();
    let verified = verified_signatures(&note, &keys).map_err(|error| error.to_string())?;
    if verified.is_empty() {
        return Err("no log key of the policy signed the note".into());
    }
    let head = SignedHead {
        tree_size: checkpoint.size,
        note,
        signers: Vec::new(),
    };
    let cosigned_by = counted_cosignatures(&head, skew_s, check)?;
    let names: Vec<&str> = cosigned_by.iter().map(|(name, _)| name.as_str()).collect();
    if !check.policy.quorum_met(&names) {
        return Err(format!(
            "the note's cosignatures ({}) do not meet the policy's quorum (W6, W7)",
            if names.is_empty() {
                "none counted".to_string()
            } else {
                names.join(", ")
            }
        ));
    }
    Ok((checkpoint.size, checkpoint.root))
}

/// W5: every `log` key of the policy is a key of one of the ledger's signer sets, under the
/// ledger's origin; when there are any, one of them signed the covering checkpoint as a signer
/// in force.
fn check_log_lines(
    ledger_id: Uuid,
    head: &SignedHead,
    ledger_keys: &[PublicKey],
    policy: &Policy,
) -> Result<(), String> {
    let origin = ledger_origin(ledger_id);
    for log in policy.logs() {
        let key = &log.key;
        if key.key_name() != origin {
            return Err(format!(
                "the policy's log key {key} is named {:?}, not this ledger's origin {origin:?} (W5)",
                key.key_name()
            ));
        }
        if !ledger_keys.contains(key.public_key()) {
            return Err(format!(
                "the policy's log key {key} is not a key of any signer set of this ledger (W5)"
            ));
        }
    }
    let signed_by_log = policy.logs().is_empty()
        || head.signers.iter().any(|(_, signer)| {
            policy
                .logs()
                .iter()
                .any(|log| log.key.public_key() == signer)
        });
    if !signed_by_log {
        return Err(format!(
            "the checkpoint of size {} is signed by {}, none of them a log key of the policy (W5)",
            head.tree_size,
            head.signers
                .iter()
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

/// W6 and W7: the policy witnesses whose newest verified cosignature of the covering
/// checkpoint (P1; a time of 0 never counts) is not ahead of the verifier's clock by more than
/// the skew (a witness's clock may be fast, not a day fast) and, with a maximum age, is at most
/// that old.
/// A policy witness's cosignature that fails to verify refuses the export.
fn counted_cosignatures(
    head: &SignedHead,
    skew_s: u32,
    check: &WitnessCheck,
) -> Result<Vec<(String, DateTime<Utc>)>, String> {
    let witnesses = check.policy.witnesses();
    let keys: Vec<VerifierKey> = witnesses.iter().map(|w| w.key.clone()).collect();
    let verified =
        verified_signatures(&head.note, &keys).map_err(|error| format!("{error} (W6)"))?;
    let newest_allowed = check.now + chrono::Duration::seconds(i64::from(skew_s));
    let oldest_allowed = check.max_age.map(|age| check.now - age);
    // P1: each witness's newest verified cosignature (a time of 0 never counts: tlog-witness
    // says a cosignature's timestamp MUST NOT be zero), then whether that one is current.
    let mut newest: Vec<(String, DateTime<Utc>)> = Vec::new();
    for found in verified {
        let name = &witnesses[found.key_index].name;
        let Some(time) = found
            .time_s
            .filter(|s| *s > 0)
            .and_then(|s| i64::try_from(s).ok())
            .and_then(|s| DateTime::from_timestamp(s, 0))
        else {
            continue;
        };
        match newest.iter_mut().find(|(seen, _)| seen == name) {
            Some(slot) if time > slot.1 => slot.1 = time,
            Some(_) => {}
            None => newest.push((name.clone(), time)),
        }
    }
    let counted = newest
        .into_iter()
        .filter(|(_, time)| {
            *time <= newest_allowed && oldest_allowed.is_none_or(|oldest| *time >= oldest)
        })
        .collect();
    Ok(counted)
}
