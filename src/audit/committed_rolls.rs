//! The committed rolls a verifier holds for checks A13 and A14, each until its recording
//! deadline (30 days past its execution window): a record per roll in one `Vec`, found by
//! proposal id through a hashed index of slots. A roll past its deadline is forgotten at once
//! (no lookup finds it) and its slot freed by a sweep that looks at a few slots per event.

use std::hash::{BuildHasher, RandomState};

use chrono::{DateTime, Utc};
use hashbrown::HashTable;
use uuid::Uuid;

use crate::domain::execution::ExecutableRoll;

/// The slots the sweep looks at per `forget_deadlines_before` (once per event). At most one
/// roll is added per event and a roll takes at least three (its recording, a signature, its
/// commit), so the sweep passes every slot at least 12 times as often as the table gains one:
/// slots held for forgotten rolls stay under a tenth of those held.
const SWEEP_SLOTS_PER_CALL: usize = 4;

/// A `HashMap<Uuid, Box<ExecutableRoll>>` with a `BTreeSet` of deadlines held each id three
/// times, an allocation per roll and half-empty tree nodes: about 230 bytes a roll, where this
/// holds the record in its slot (its id is the key the index hashes) and 4 bytes of index. A
/// heap of (deadline, slot) would cost 16 bytes more a roll: the sweep finds the forgotten
/// rolls instead (docs/audit-format.md, Memory).
#[derive(Debug, Default)]
pub(super) struct CommittedRolls {
    /// A slot per roll held; `None` once swept, until a later roll takes it.
    slots: Vec<Option<ExecutableRoll>>,
    /// The slots that are `None`.
    free_slots: Vec<u32>,
    /// Slots holding a roll, hashed by the roll's proposal id.
    by_id: HashTable<u32>,
    /// The time of the last `forget_deadlines_before`: a roll whose deadline lies before it is
    /// forgotten, unless it was added after that call (a later call forgets it).
    forgotten_before: Option<DateTime<Utc>>,
    /// Slots filled since the last `forget_deadlines_before` (a roll or two: one event's).
    added_since_forget: Vec<u32>,
    /// The slot the sweep looks at next.
    sweep_next: usize,
    /// Keyed per process, so that ids a ledger chose cannot make lookups collide on purpose.
    hasher: RandomState,
}

impl CommittedRolls {
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.ids().len()
    }

    /// The slot of the roll held under `proposal_id`, forgotten or not.
    fn slot_of(&self, proposal_id: &Uuid) -> Option<u32> {
        let slots = &self.slots;
        self.by_id
            .find(self.hasher.hash_one(proposal_id), |&slot| {
                held_id(slots, slot) == *proposal_id
            })
            .copied()
    }

    /// Whether the roll in `slot` is forgotten: a roll is found exactly as long as a heap of
    /// deadlines, emptied up to `at` at each call, would have held it.
    fn forgotten(&self, slot: u32, roll: &ExecutableRoll) -> bool {
        self.forgotten_before
            .is_some_and(|before| roll.recording_deadline() < before)
            && !self.added_since_forget.contains(&slot)
    }

    /// The slot of the roll held under `proposal_id` unless it is forgotten.
    fn found_slot(&self, proposal_id: &Uuid) -> Option<usize> {
        let slot = self.slot_of(proposal_id)?;
        let roll = self.slots[slot as usize].as_ref()?;
        (!self.forgotten(slot, roll)).then_some(slot as usize)
    }

    pub(super) fn get(&self, proposal_id: &Uuid) -> Option<&ExecutableRoll> {
        self.slots[self.found_slot(proposal_id)?].as_ref()
    }

    pub(super) fn get_mut(&mut self, proposal_id: &Uuid) -> Option<&mut ExecutableRoll> {
        let slot = self.found_slot(proposal_id)?;
        self.slots[slot].as_mut()
    }

    /// Holds `roll` until its recording deadline (in place of a roll held with its id).
    pub(super) fn insert(&mut self, roll: ExecutableRoll) -> Result<(), String> {
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
                        let slot = u32::try_from(self.slots.len()).map_err(|_| {
                            format!(
                                "more than {} committed rolls within their execution windows at once, the most a verifier holds",
                                u32::MAX
                            )
                        })?;
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
        self.added_since_forget.push(slot);
        Ok(())
    }

    /// Forgets the rolls whose recording deadline is before `at` (chain time: it never moves
    /// back, check C6), and frees the slots of the forgotten ones among the next few.
    pub(super) fn forget_deadlines_before(&mut self, at: DateTime<Utc>) {
        self.forgotten_before = Some(at);
        self.added_since_forget.clear();
        for _ in 0..SWEEP_SLOTS_PER_CALL.min(self.slots.len()) {
            let slot = self.sweep_next;
            self.sweep_next = (slot + 1) % self.slots.len();
            let Some(roll) = &self.slots[slot] else {
                continue;
            };
            if roll.recording_deadline() >= at {
                continue;
            }
            let hash = self.hasher.hash_one(roll.proposal_id);
            let slot = slot as u32;
            self.by_id
                .find_entry(hash, |&other| other == slot)
                .expect("a held roll is indexed")
                .remove();
            self.slots[slot as usize] = None;
            self.free_slots.push(slot);
        }
    }

    /// The rolls held and not forgotten, in no particular order.
    #[cfg(test)]
    pub(super) fn ids(&self) -> Vec<Uuid> {
        (0u32..)
            .zip(&self.slots)
            .filter_map(|(slot, roll)| roll.as_ref().map(|roll| (slot, roll)))
            .filter(|&(slot, roll)| !self.forgotten(slot, roll))
            .map(|(_, roll)| roll.proposal_id)
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
    use crate::domain::execution::{ApprovedTerms, Executions, EXECUTION_RECORDING_GRACE_DAYS};
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
            executions: Executions::default(),
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
        rolls.insert(first).unwrap();
        rolls.insert(second).unwrap();
        rolls.forget_deadlines_before(day(8) + grace);
        assert!(rolls.get(&first_id).is_none());
        let third = roll_ending(day(10));
        let third_id = third.proposal_id;
        rolls.insert(third).unwrap();
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
        assert!(rolls.by_id.is_empty(), "the sweep freed every slot");
    }

    /// A roll added after its deadline passed (a client loading a saved roll) is found until
    /// the next call, as a heap of deadlines would have held it, so that its execution is
    /// refused by that deadline rather than by its absence.
    #[test]
    fn a_roll_added_after_its_deadline_is_found_until_the_next_call() {
        let day = |day: u32| Utc.with_ymd_and_hms(2026, 5, day, 15, 15, 0).unwrap();
        let grace = Duration::days(EXECUTION_RECORDING_GRACE_DAYS);
        let mut rolls = CommittedRolls::default();
        rolls.forget_deadlines_before(day(20) + grace);
        let late = roll_ending(day(7));
        let late_id = late.proposal_id;
        rolls.insert(late).unwrap();
        assert!(rolls.get(&late_id).is_some());
        rolls.forget_deadlines_before(day(20) + grace);
        assert!(rolls.get(&late_id).is_none());
    }

    /// Forgotten rolls are not found at once, and the sweep frees their slots within a pass of
    /// the table: slots held for forgotten rolls stay bounded.
    #[test]
    fn the_sweep_frees_forgotten_slots_a_few_per_call() {
        let start = Utc.with_ymd_and_hms(2026, 5, 1, 15, 15, 0).unwrap();
        let grace = Duration::days(EXECUTION_RECORDING_GRACE_DAYS);
        let mut rolls = CommittedRolls::default();
        let ids: Vec<Uuid> = (0..40)
            .map(|hour| {
                let roll = roll_ending(start + Duration::hours(hour));
                let id = roll.proposal_id;
                rolls.insert(roll).unwrap();
                id
            })
            .collect();
        rolls.forget_deadlines_before(start + grace + Duration::minutes(20 * 60 - 1));
        assert_eq!(rolls.len(), 20, "the later 20 are held");
        assert!(rolls.get(&ids[19]).is_none() && rolls.get(&ids[20]).is_some());
        assert!(
            rolls.by_id.len() > 20,
            "not every forgotten slot is swept yet"
        );
        for _ in 0..10 {
            rolls.forget_deadlines_before(start + grace + Duration::minutes(20 * 60 - 1));
        }
        assert_eq!(rolls.by_id.len(), 20, "a pass of the table freed them");
        assert_eq!(rolls.free_slots.len(), 20);
    }
}
