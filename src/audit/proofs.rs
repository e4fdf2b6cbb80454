//! Inclusion proofs of a proposal's events, and consistency between two exports (RFC 9162).
//! Formats in docs/audit-format.md, "Proofs".

use serde::{Deserialize, Serialize};

use crate::crypto::merkle::{leaf_hash, verify_consistency, verify_inclusion, Hash};
use crate::crypto::{from_hex32, to_hex};

use super::export::EventLine;

pub const INCLUSION_FORMAT: &str = "rollbook-inclusion-proof/v1";
/// Limit on a proof file: a proposal has at most a few dozen events, each at most ~10 MiB.
pub const PROOF_FILE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Limit on proof paths: a tree of 2^64 leaves needs at most 64 hashes.
pub const PATH_HASHES_MAX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    pub format: String,
    pub ledger_id: String,
    pub proposal_id: String,
    /// The checkpoint the proof is against: compare it with the checkpoint of an export.
    pub tree_size: u64,
    pub merkle_root: String,
    pub events: Vec<ProvenEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenEvent {
    pub leaf_index: u64,
    pub audit_path: Vec<String>,
    pub event: EventLine,
}

pub fn hashes_to_hex(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| to_hex(h)).collect()
}

fn parse_path(path: &[String]) -> Result<Vec<Hash>, String> {
    if path.len() > PATH_HASHES_MAX {
        return Err(format!(
            "an audit path of {} hashes is longer than any tree allows",
            path.len()
        ));
    }
    path.iter()
        .map(|h| from_hex32(h).map_err(|_| format!("audit path hash {h:?} is not 32 bytes of hex")))
        .collect()
}

/// What a checked inclusion proof establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionChecked {
    pub proposal_id: String,
    pub events: Vec<(u64, String)>,
    pub tree_size: u64,
    pub merkle_root: String,
}

/// Checks every event of the proof against `tree_size` and `root`, which should come from a
/// checkpoint the reviewer trusts (an export they verified), not from the proof's provider.
pub fn check_inclusion(
    proof: &InclusionProof,
    trusted: Option<(u64, Hash)>,
) -> Result<InclusionChecked, String> {
    if proof.format != INCLUSION_FORMAT {
        return Err(format!(
            "format {:?} is not {INCLUSION_FORMAT:?}",
            proof.format
        ));
    }
    let claimed_root = from_hex32(&proof.merkle_root)
        .map_err(|_| "merkle_root is not 32 bytes of hex".to_string())?;
    let (size, root) = trusted.unwrap_or((proof.tree_size, claimed_root));
    if (size, root) != (proof.tree_size, claimed_root) {
        return Err(format!(
            "the proof is against tree size {} root {}, but the trusted checkpoint has size {size} root {}",
            proof.tree_size,
            proof.merkle_root,
            to_hex(&root)
        ));
    }
    if proof.events.is_empty() {
        return Err("the proof holds no events".into());
    }
    let mut events = Vec::new();
    for proven in &proof.events {
        let event = proven.event.to_event()?;
        let seq = event.seq;
        if event.computed_hash() != event.hash {
            return Err(format!(
                "seq {seq}: the event's fields do not hash to its hash: it was altered"
            ));
        }
        if event.ledger_id.to_string() != proof.ledger_id {
            return Err(format!(
                "seq {seq}: belongs to ledger {}, not {}",
                event.ledger_id, proof.ledger_id
            ));
        }
        if event.stream_id != proof.proposal_id {
            return Err(format!(
                "seq {seq}: belongs to stream {}, not proposal {}",
                event.stream_id, proof.proposal_id
            ));
        }
        if seq == 0 || proven.leaf_index != seq - 1 {
            return Err(format!(
                "seq {seq}: leaf index {} is not seq - 1",
                proven.leaf_index
            ));
        }
        let path = parse_path(&proven.audit_path)?;
        verify_inclusion(
            proven.leaf_index,
            size,
            &leaf_hash(&event.hash),
            &path,
            &root,
        )
        .map_err(|error| format!("seq {seq}: not included in the tree of size {size}: {error}"))?;
        events.push((seq, event.event_type));
    }
    Ok(InclusionChecked {
        proposal_id: proof.proposal_id.clone(),
        events,
        tree_size: size,
        merkle_root: to_hex(&root),
    })
}

/// The consistency of two checkpoints: the older tree is a prefix of the newer.
pub fn check_consistency(old: (u64, Hash), new: (u64, Hash), proof: &[Hash]) -> Result<(), String> {
    verify_consistency(old.0, new.0, &old.1, &new.1, proof).map_err(|error| error.to_string())
}
