//! What a report shows of a ledger, folded from its events in seq order: the governance over
//! time (every signer set and policy, when and by which motion it came into force), every
//! proposal's state, and every execution. Streaming, pure: the caller feeds events (from an
//! export or a live walk) and says whether they verified.

use std::collections::HashMap;

use uuid::Uuid;

use crate::cli::views::History;
use crate::crypto::to_hex;
use crate::domain::approval::ProposalState;
use crate::domain::envelope::StoredEvent;
use crate::domain::events::{Event, RollExecuted};
use crate::domain::governance::{ActiveSet, Governance};

/// A signer set or policy coming into force.
#[derive(Debug, Clone)]
pub struct Adoption {
    pub seq: u64,
    pub recorded_at: String,
    /// The motion that adopted it (`None` for the genesis set and policy).
    pub motion_id: Option<String>,
    pub what: Adopted,
}

#[derive(Debug, Clone)]
pub enum Adopted {
    SignerSet(ActiveSet),
    Policy { version: u64, hash: String },
}

/// A roll's execution as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub seq: u64,
    pub recorded_at: String,
    pub executed: RollExecuted,
}

/// Everything folded so far.
pub struct Facts {
    pub history: History,
    /// The governance in force after the last event (`None` before a readable genesis).
    pub governance: Option<Governance>,
    pub adoptions: Vec<Adoption>,
    /// Every proposal, in the order it was recorded.
    pub proposals: Vec<ProposalState>,
    index: HashMap<Uuid, usize>,
    /// Executions by the proposal they record, in seq order.
    pub executions: HashMap<Uuid, Vec<Execution>>,
    pub events: u64,
    /// The first event that could not be folded, and why: the facts stop before it.
    pub stopped: Option<(u64, String)>,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            history: History {
                genesis_hash: String::new(),
                sets: Vec::new(),
                policies: Vec::new(),
            },
            governance: None,
            adoptions: Vec::new(),
            proposals: Vec::new(),
            index: HashMap::new(),
            executions: HashMap::new(),
            events: 0,
            stopped: None,
        }
    }
}

impl Facts {
    /// Folds the next event. An event that cannot be read stops the fold (and is named in
    /// `stopped`); what came before it stays.
    pub fn push(&mut self, event: &StoredEvent) {
        if self.stopped.is_some() {
            return;
        }
        if let Err(reason) = self.fold(event) {
            self.stopped = Some((event.seq, reason));
            return;
        }
        self.events = event.seq;
    }

    fn fold(&mut self, stored: &StoredEvent) -> Result<(), String> {
        let event = Event::from_payload(&stored.event_type, stored.schema_version, &stored.payload)
            .map_err(|e| e.to_string())?;
        let adoption = |motion_id: Option<&str>, what: Adopted| Adoption {
            seq: stored.seq,
            recorded_at: stored.recorded_at.clone(),
            motion_id: motion_id.map(str::to_string),
            what,
        };
        match &event {
            Event::LedgerCreated(genesis) => {
                let governance =
                    Governance::genesis(stored.ledger_id, genesis).map_err(|e| e.to_string())?;
                self.history.genesis_hash = to_hex(&stored.hash);
                self.history.sets.push(governance.set.clone());
                self.history.policies.push((1, genesis.policy_json.clone()));
                self.adoptions
                    .push(adoption(None, Adopted::SignerSet(governance.set.clone())));
                self.adoptions.push(adoption(
                    None,
                    Adopted::Policy {
                        version: 1,
                        hash: genesis.policy_hash.clone(),
                    },
                ));
                self.governance = Some(governance);
            }
            Event::SignerSetAdopted(adopted) => {
                let set = ActiveSet::parse(&adopted.signer_set_json).map_err(|e| e.to_string())?;
                self.apply_governance(&event)?;
                self.history.sets.push(set.clone());
                self.adoptions
                    .push(adoption(Some(&adopted.motion_id), Adopted::SignerSet(set)));
            }
            Event::PolicyAdopted(adopted) => {
                self.apply_governance(&event)?;
                self.history
                    .policies
                    .push((adopted.policy_version, adopted.policy_json.clone()));
                self.adoptions.push(adoption(
                    Some(&adopted.motion_id),
                    Adopted::Policy {
                        version: adopted.policy_version,
                        hash: adopted.policy_hash.clone(),
                    },
                ));
            }
            Event::ProposalRecorded(recorded) => {
                let state = ProposalState::from_recorded(recorded.clone(), stored)
                    .map_err(|e| e.to_string())?;
                self.index.insert(state.id, self.proposals.len());
                self.proposals.push(state);
            }
            _ => {
                let id = Uuid::parse_str(event.stream_id())
                    .map_err(|_| format!("{} names no proposal", stored.event_type))?;
                let slot = *self.index.get(&id).ok_or_else(|| {
                    format!("{} of proposal {id}, never recorded", stored.event_type)
                })?;
                self.proposals[slot].evolve(&event, stored);
                if let Event::RollExecuted(executed) = event {
                    self.executions.entry(id).or_default().push(Execution {
                        seq: stored.seq,
                        recorded_at: stored.recorded_at.clone(),
                        executed,
                    });
                }
            }
        }
        Ok(())
    }

    fn apply_governance(&mut self, event: &Event) -> Result<(), String> {
        self.governance
            .as_mut()
            .ok_or("a governance change before the genesis event")?
            .apply(event)
            .map_err(|e| e.to_string())
    }

    /// The proposal with `id`, if recorded.
    pub fn proposal(&self, id: &Uuid) -> Option<&ProposalState> {
        self.index.get(id).map(|&slot| &self.proposals[slot])
    }
}
