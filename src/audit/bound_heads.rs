//! The hashes a later signature may still bind (check A11). A signature binds a head no older
//! than its proposal's recording, and only an open proposal that has not expired can be signed,
//! so the auditor keeps the hashes from the recording of the oldest such proposal to the last
//! event: memory follows the proposals' lifetime, never the ledger's length.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};

use crate::domain::chain::{Chain, ChainHead};

/// Hashes from `first_seq` on, and the open proposals that keep them (by recording seq).
#[derive(Debug, Default)]
pub(super) struct RecentHashes {
    first_seq: u64,
    hashes: VecDeque<[u8; 32]>,
    /// Recording seq -> expiry of each open proposal that may still be signed.
    open: BTreeMap<u64, DateTime<Utc>>,
    /// When resumed from a saved state: the last seq verified before, whose hashes are not
    /// held here; a head bound at or before it is left to the caller (`AuditedChain`).
    pub(super) resumed_after: Option<u64>,
}

impl RecentHashes {
    /// After an event was verified: its hash, which a later signature may bind.
    pub(super) fn push(&mut self, seq: u64, hash: [u8; 32]) {
        if self.hashes.is_empty() {
            self.first_seq = seq;
        }
        self.hashes.push_back(hash);
    }

    pub(super) fn opened(&mut self, recorded_seq: u64, expires_at: DateTime<Utc>) {
        self.open.insert(recorded_seq, expires_at);
    }

    pub(super) fn closed(&mut self, recorded_seq: u64) {
        self.open.remove(&recorded_seq);
    }

    /// Forgets the hashes no open, unexpired proposal can bind any more at chain time `now`.
    pub(super) fn forget_unneeded(&mut self, now: DateTime<Utc>, next_seq: u64) {
        while let Some((&seq, &expires_at)) = self.open.first_key_value() {
            if expires_at >= now {
                break;
            }
            self.open.remove(&seq);
        }
        let keep_from = self.open.keys().next().copied().unwrap_or(next_seq);
        while self.first_seq < keep_from && !self.hashes.is_empty() {
            self.hashes.pop_front();
            self.first_seq += 1;
        }
    }

    fn get(&self, seq: u64) -> Option<&[u8; 32]> {
        let index = seq.checked_sub(self.first_seq)?;
        self.hashes.get(usize::try_from(index).ok()?)
    }

    /// How many hashes are held (for tests and the memory bound).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.hashes.len()
    }
}

/// The chain as the auditor sees it at one event: the head is the event's predecessor; earlier
/// hashes come from `RecentHashes`, or, at or before the seq a resumed auditor started after,
/// are deferred to the caller, which holds the hashes it verified then.
pub(super) struct AuditedChain<'a> {
    pub head: ChainHead,
    pub recent: &'a RecentHashes,
    pub deferred: Vec<ChainHead>,
    /// The latest seq a signature checked at this event binds (0 when none did).
    pub highest_bound: u64,
}

impl Chain for AuditedChain<'_> {
    fn head(&self) -> ChainHead {
        self.head
    }

    fn bound_head_checked(&mut self, seq: u64) {
        self.highest_bound = self.highest_bound.max(seq);
    }

    fn confirm(&mut self, seq: u64, hash: &[u8; 32]) -> bool {
        match self.recent.get(seq) {
            Some(held) => held == hash,
            None if self.recent.resumed_after.is_some_and(|last| seq <= last) => {
                self.deferred.push(ChainHead { seq, hash: *hash });
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn hashes_are_kept_from_the_oldest_open_recording_only() {
        let start = Utc.with_ymd_and_hms(2026, 5, 7, 14, 0, 0).unwrap();
        let mut recent = RecentHashes::default();
        for seq in 1..=10u64 {
            recent.push(seq, [seq as u8; 32]);
        }
        recent.opened(4, start + Duration::hours(4));
        recent.opened(7, start + Duration::hours(1));
        recent.forget_unneeded(start, 11);
        assert_eq!(recent.len(), 7, "seq 4 to 10");
        assert_eq!(recent.get(4), Some(&[4u8; 32]));
        assert_eq!(recent.get(3), None);
        recent.closed(4);
        recent.forget_unneeded(start, 11);
        assert_eq!(recent.len(), 4, "seq 7 to 10");
        // Once seq 7's proposal expired nothing is needed.
        recent.forget_unneeded(start + Duration::hours(2), 11);
        assert_eq!(recent.len(), 0);
        recent.push(11, [11; 32]);
        assert_eq!(recent.get(11), Some(&[11u8; 32]));
    }
}
