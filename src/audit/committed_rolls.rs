//! The committed rolls a verifier holds for checks A13 and A14, each until its recording
//! deadline (30 days past its execution window): a record per roll in one `Vec`, found by
//! proposal id through a hashed index of slots, and forgotten in deadline order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::{BuildHasher, RandomState};

use chrono::{DateTime, Utc};
use hashbrown::HashTable;
use uuid::Uuid;

use crate::domain::execution::ExecutableRoll;

/// A `HashMap<Uuid, Box<ExecutableRoll>>` with a `BTreeSet` of deadlines held each id three
/// times, an allocation per roll and half-empty tree nodes: about 230 bytes a roll, where this
/// holds the record in its slot (its id is the key the index hashes), 4 bytes of index and 16
/// of deadline (docs/audit-format.md, Memory).
#[derive(Debug, Default)]
pub(super) struct CommittedRolls {
    /// A slot per roll held; `None` once its deadline passed, until a later roll takes it.
    slots: Vec<Option<ExecutableRoll>>,
    /// The slots that are `None`.
    free_slots: Vec<u32>,
    /// Slots holding a roll, hashed by the roll's proposal id.
    by_id: HashTable<u32>,
    /// Slots by the recording deadline of the roll put in them, earliest first.
    deadlines: BinaryHeap<Reverse<(DateTime<Utc>, u32)>>,
    /// Keyed per process, so that ids a ledger chose cannot make lookups collide on purpose.
    hasher: RandomState,
}

impl CommittedRolls {
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    fn slot_of(&self, proposal_id: &Uuid) -> Option<u32> {
        let slots = &self.slots;
        self.by_id
            .find(self.hasher.hash_one(proposal_id), |&slot| {
                held_id(slots, slot) == *proposal_id
            })
            .copied()
    }

    pub(super) fn get(&self, proposal_id: &Uuid) -> Option<&ExecutableRoll> {
        let slot = self.slot_of(proposal_id)?;
        self.slots[slot as usize].as_ref()
    }

    pub(super) fn get_mut(&mut self, proposal_id: &Uuid) -> Option<&mut ExecutableRoll> {
        let slot = self.slot_of(proposal_id)?;
        self.slots[slot as usize].as_mut()
    }

    /// Holds `roll` until its recording deadline (in place of a roll held with its id).
    pub(super) fn insert(&mut self, roll: ExecutableRoll) {
        let deadline = roll.recording_deadline();
        let slot = match self.slot_of(&roll.proposal_id) {
            Some(slot) => {
                self.slots[slot as usize] = Some(roll);
                slot
            }
            None => {
                let proposal_id = roll.proposal_id;
                let slot = match self.free_slots.pop() {
                    Some(slot) => {
                        self.slots[slot as usize] = Some(roll);
                        slot
                    }
                    None => {
                        let slot = u32::try_from(self.slots.len())
                            .expect("fewer than 2^32 committed rolls within one window");
                        self.slots.push(Some(roll));
                        slot
                    }
                };
                let (slots, hasher) = (&self.slots, &self.hasher);
                self.by_id
                    .insert_unique(hasher.hash_one(proposal_id), slot, |&other| {
                        hasher.hash_one(held_id(slots, other))
                    });
                slot
            }
        };
        self.deadlines.push(Reverse((deadline, slot)));
    }

    /// Forgets the rolls whose recording deadline is before `at`.
    pub(super) fn forget_deadlines_before(&mut self, at: DateTime<Utc>) {
        while let Some(&Reverse((deadline, slot))) = self.deadlines.peek() {
            if deadline >= at {
                break;
            }
            self.deadlines.pop();
            // A slot's earlier roll, replaced or forgotten, left its deadline here: only the
            // roll the slot holds now, at its own deadline, goes.
            let held = &self.slots[slot as usize];
            if held
                .as_ref()
                .is_none_or(|roll| roll.recording_deadline() != deadline)
            {
                continue;
            }
            let proposal_id = held_id(&self.slots, slot);
            let hash = self.hasher.hash_one(proposal_id);
            self.by_id
                .find_entry(hash, |&other| other == slot)
                .expect("a held roll is indexed")
                .remove();
            self.slots[slot as usize] = None;
            self.free_slots.push(slot);
        }
    }

    /// The rolls held, in no particular order.
    #[cfg(test)]
    pub(super) fn ids(&self) -> Vec<Uuid> {
        self.slots
            .iter()
            .flatten()
            .map(|roll| roll.proposal_id)
            .collect()
    }
}

/// The proposal id of the roll in `slot`, which holds one.
fn held_id(slots: &[Option<ExecutableRoll>], slot: u32) -> Uuid {
    slots[slot as usize]
        .as_ref()
        .expect("an indexed slot holds a roll")
        .proposal_id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::envelope::uuid_v7_at;
    use crate::domain::execution::{ApprovedTerms, EXECUTION_RECORDING_GRACE_DAYS};
    use crate::domain::proposal::Status;
    use chrono::{Duration, TimeZone};

    fn roll_ending(window_end: DateTime<Utc>) -> ExecutableRoll {
        ExecutableRoll {
            proposal_id: uuid_v7_at(window_end),
            subject_digest: [0; 32],
            approved: ApprovedTerms {
                contracts: 9,
                premium_usd: 2.95,
                execute_after: window_end - Duration::minutes(30),
                execute_before: window_end,
                quote_deviation_max: 0.25,
            },
            status: Status::Committed,
            stream_version: 3,
            executions: Box::default(),
        }
    }

    /// A forgotten roll's slot goes to the next roll, and every roll held is still found by
    /// its id: the index follows the slots.
    #[test]
    fn a_forgotten_rolls_slot_is_reused_and_lookups_follow() {
        let day = |day: u32| Utc.with_ymd_and_hms(2026, 5, day, 15, 15, 0).unwrap();
        let grace = Duration::days(EXECUTION_RECORDING_GRACE_DAYS);
        let mut rolls = CommittedRolls::default();
        let (first, second) = (roll_ending(day(7)), roll_ending(day(9)));
        let (first_id, second_id) = (first.proposal_id, second.proposal_id);
        rolls.insert(first);
        rolls.insert(second);
        rolls.forget_deadlines_before(day(8) + grace);
        assert!(rolls.get(&first_id).is_none());
        let third = roll_ending(day(10));
        let third_id = third.proposal_id;
        rolls.insert(third);
        assert_eq!(rolls.slots.len(), 2, "the forgotten roll's slot was taken");
        assert_eq!(
            rolls.get(&second_id).map(|r| r.proposal_id),
            Some(second_id)
        );
        assert_eq!(rolls.get(&third_id).map(|r| r.proposal_id), Some(third_id));
        rolls.get_mut(&third_id).expect("held").stream_version = 4;
        rolls.forget_deadlines_before(day(9) + grace + Duration::seconds(1));
        assert_eq!(rolls.ids(), [third_id]);
        assert_eq!(rolls.get(&third_id).map(|r| r.stream_version), Some(4));
        rolls.forget_deadlines_before(day(11) + grace);
        assert_eq!(rolls.len(), 0);
        assert!(rolls.deadlines.is_empty());
    }
}
