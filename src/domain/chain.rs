//! Where a decision lands on the chain. Every signature on a proposal binds a head (seq and
//! hash, docs/audit-format.md "Bound heads"): the event its own event follows when made online,
//! the head when a request was written when made offline. Removing or changing any event before
//! a signature therefore breaks it. Pure: the caller says what it knows of the chain.

use super::envelope::StoredEvent;
use super::refusal::Mismatch;
pub use crate::crypto::canonical::ChainHead;

/// The chain as a decision sees it.
pub trait Chain {
    /// The head the decided event will follow.
    fn head(&self) -> ChainHead;
    /// Whether the event at `seq` (before the head) has `hash`. An implementation that cannot
    /// tell now may accept and check later, and must then refuse what does not match (the
    /// auditor resumed from a pin defers to the hashes that pin verified).
    fn confirm(&mut self, seq: u64, hash: &[u8; 32]) -> bool;
    /// A signature's bound head at `seq` was checked and holds: a verifier notes how far back
    /// from the head signatures cover the history (`AuditSummary::signed_through_seq`).
    fn bound_head_checked(&mut self, _seq: u64) {}
}

/// A writer's view: the head it read and, for an offline signature, the one earlier point that
/// signature binds (read from the verified chain).
pub struct AtHead {
    pub head: ChainHead,
    pub earlier: Option<ChainHead>,
}

impl AtHead {
    pub fn new(head: ChainHead) -> Self {
        AtHead {
            head,
            earlier: None,
        }
    }
}

impl Chain for AtHead {
    fn head(&self) -> ChainHead {
        self.head
    }

    fn confirm(&mut self, seq: u64, hash: &[u8; 32]) -> bool {
        self.earlier == Some(ChainHead { seq, hash: *hash })
    }
}

/// A stored event's view when its history is re-checked outside a verifier (`validate_history`):
/// the head is the event's predecessor (its seq - 1 and `prev_hash`); an earlier bound head is
/// accepted here because every event a command reads was verified by its pin's sync, which
/// checks each bound head against the chain (`pin.rs`). This re-check guards signatures and
/// content, not the chain.
pub struct Stored(pub ChainHead);

impl Stored {
    /// The view of a stored event: it follows its predecessor.
    pub fn before(event: &StoredEvent) -> Self {
        Stored(ChainHead {
            seq: event.seq - 1,
            hash: event.prev_hash,
        })
    }
}

impl Chain for Stored {
    fn head(&self) -> ChainHead {
        self.0
    }

    fn confirm(&mut self, _seq: u64, _hash: &[u8; 32]) -> bool {
        true
    }
}

/// Checks the head a signature binds: no earlier than `earliest` (the proposal's recording, or
/// for the recording itself the head it follows), no later than the head, and the chain's hash
/// at its seq.
pub fn check_bound_head(
    chain: &mut dyn Chain,
    bound: &ChainHead,
    earliest: u64,
) -> Result<(), Mismatch> {
    let head = chain.head();
    if bound.seq < earliest || bound.seq > head.seq {
        return Err(Mismatch::HeadOutOfRange {
            found: bound.seq,
            earliest,
            head: head.seq,
        });
    }
    let same = if bound.seq == head.seq {
        bound.hash == head.hash
    } else {
        chain.confirm(bound.seq, &bound.hash)
    };
    if same {
        chain.bound_head_checked(bound.seq);
        Ok(())
    } else {
        Err(Mismatch::HeadHash { seq: bound.seq })
    }
}
