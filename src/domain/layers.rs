//! One budget per closed layer (methodology, "Drawing on one closed layer"): which proposals
//! draw on a closed layer's profit at a given moment, and the rules that keep one layer under
//! one name with one set of numbers. Pure: the auditor folds every recording and closing into
//! one `LayerBook`; a writer builds one from the proposals the store indexes under the layer's
//! id and numbers (`LayerBook::of_states`). Both then ask the same `draws_for`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::canonical::sha256;
use crate::crypto::to_hex;
use crate::domain::events::ProposalKind;
use crate::domain::governance::Governance;
use crate::domain::proposal::{ProposalState, Status};
use crate::sizing::{Draws, Proposal};

/// How a saved layer is looked up: by its id, or by its numbers (`numbers_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerKey {
    Id(String),
    Numbers(String),
}

/// Why a roll may not draw on the layer it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayerConflict {
    #[error("closed_layer.id is missing: a roll on a ledger names the closed layer whose profit it rolls, so that every roll on one layer counts against one budget")]
    NoLayerId,
    #[error("closed_layer.id {layer_id}: its numbers (contracts, premiums, multiplier, fees) were fixed by proposal {fixed_by}, and this proposal's differ; one layer has one set of numbers")]
    NumbersDiffer { layer_id: String, fixed_by: String },
    #[error("closed_layer.id {layer_id}: these closed-layer numbers are those of layer {other_layer_id} (fixed by proposal {fixed_by}); one layer cannot draw under two names")]
    NumbersTaken {
        layer_id: String,
        other_layer_id: String,
        fixed_by: String,
    },
    #[error("its body is identical to pending proposal {proposal_id}")]
    SameAsPending { proposal_id: String },
}

/// Where the draws of a roll's recording come from when it is checked.
#[derive(Debug, Clone, Copy)]
pub enum DrawsFrom<'a> {
    /// Derived from the history before the recording (writers and the auditor).
    Book(&'a LayerBook),
    /// As its report states them: a re-check of a stored recording that this client's pin
    /// already verified, draws included.
    Stated,
}

/// Every closed layer drawn on, as the history so far leaves it.
///
/// Serialized (a client's saved auditor state) it holds only which layer each pending roll
/// draws on: a layer itself is saved on its own (`take_touched`, `load`), so that a client's
/// state grows by the layers its new events touch, not by every layer the ledger ever had, and a
/// resumed book loads the layers the next events need (`wanted_for_*`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerBook {
    /// By `closed_layer.id`: every layer (a book built from history), or those loaded.
    #[serde(skip)]
    layers: BTreeMap<String, Layer>,
    /// The layer id that owns each set of closed-layer numbers (`numbers_key`), for the layers
    /// in `layers`.
    #[serde(skip)]
    owner_of_numbers: BTreeMap<String, String>,
    /// The layer each pending roll draws on (committed ones never change again).
    layer_of: BTreeMap<String, String>,
    /// Layers changed since the last `take_touched`.
    #[serde(skip)]
    touched: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Layer {
    numbers: String,
    /// The earliest proposal on this id that was not failed.
    fixed_by: String,
    /// Proposals that may still draw, in recording order (the order of `drawn.proposal_ids`).
    drawings: Vec<Drawing>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Drawing {
    proposal_id: String,
    outlay_usd: f64,
    contracts: u64,
    /// SHA-256 of the body, hex: a body equal to a pending proposal's is refused.
    body_sha256: String,
    expires_at: DateTime<Utc>,
    signer_set_version: u64,
    policy_version: u64,
    committed: bool,
}

impl Drawing {
    /// Committed rolls draw for good; a pending one while it could still be committed: not
    /// past its expiry and bound to the governance in force (the same rule as
    /// `ProposalState::status_under`).
    fn draws_at(&self, at: DateTime<Utc>, governance: &Governance) -> bool {
        self.committed
            || (at <= self.expires_at
                && self.signer_set_version == governance.set.version
                && self.policy_version == governance.policy_version)
    }
}

/// The closed layer's numbers as one exact key: equal keys are equal numbers (`{:?}` of an
/// f64 is its shortest round-trip spelling; `+ 0.0` turns a negative zero into zero).
pub fn numbers_key(proposal: &Proposal) -> String {
    let c = &proposal.closed_layer;
    format!(
        "{} {:?} {:?} {} {:?}",
        c.contracts,
        c.entry_premium_usd + 0.0,
        c.exit_premium_usd + 0.0,
        c.multiplier,
        c.fees_usd + 0.0
    )
}

impl LayerBook {
    /// What the other proposals draw on `proposal`'s closed layer for a recording at `at` under
    /// `governance`, or why it may not draw: no layer id, numbers that differ from the layer's,
    /// numbers of another layer, or a body equal to a pending proposal's.
    pub fn draws_for(
        &self,
        proposal: &Proposal,
        body: &str,
        governance: &Governance,
        at: DateTime<Utc>,
    ) -> Result<Draws, LayerConflict> {
        let layer_id = proposal
            .closed_layer
            .id
            .as_deref()
            .ok_or(LayerConflict::NoLayerId)?;
        let numbers = numbers_key(proposal);
        let Some(layer) = self.layers.get(layer_id) else {
            if let Some(other) = self.owner_of_numbers.get(&numbers) {
                return Err(LayerConflict::NumbersTaken {
                    layer_id: layer_id.to_string(),
                    other_layer_id: other.clone(),
                    fixed_by: self.layers[other].fixed_by.clone(),
                });
            }
            return Ok(Draws {
                closed_layer_id: Some(layer_id.to_string()),
                ..Draws::none()
            });
        };
        if layer.numbers != numbers {
            return Err(LayerConflict::NumbersDiffer {
                layer_id: layer_id.to_string(),
                fixed_by: layer.fixed_by.clone(),
            });
        }
        let body_sha256 = to_hex(&sha256(body.as_bytes()));
        let mut draws = Draws {
            closed_layer_id: Some(layer_id.to_string()),
            ..Draws::none()
        };
        for drawing in layer.drawings.iter().filter(|d| d.draws_at(at, governance)) {
            if !drawing.committed && drawing.body_sha256 == body_sha256 {
                return Err(LayerConflict::SameAsPending {
                    proposal_id: drawing.proposal_id.clone(),
                });
            }
            draws.outlay_usd += drawing.outlay_usd;
            draws.contracts += drawing.contracts;
            draws.proposal_ids.push(drawing.proposal_id.clone());
        }
        Ok(draws)
    }

    /// A roll recorded at `at` (its rules already checked): unless it failed, it fixes its
    /// layer's numbers when it is the first, and draws from now on. Proposals on the same layer
    /// that can no longer draw are forgotten here (time and governance only move forward).
    pub fn record(
        &mut self,
        state: &ProposalState,
        proposal: &Proposal,
        governance: &Governance,
        at: DateTime<Utc>,
    ) {
        let terms = &state.recorded.terms;
        let Some(layer_id) = proposal.closed_layer.id.clone() else {
            return;
        };
        if terms.kind != ProposalKind::Roll || state.status == Status::Failed {
            return;
        }
        let proposal_id = state.id.to_string();
        let layer = self.layers.entry(layer_id.clone()).or_insert_with(|| {
            let numbers = numbers_key(proposal);
            self.owner_of_numbers
                .entry(numbers.clone())
                .or_insert_with(|| layer_id.clone());
            Layer {
                numbers,
                fixed_by: proposal_id.clone(),
                drawings: Vec::new(),
            }
        });
        let layer_of = &mut self.layer_of;
        layer.drawings.retain(|drawing| {
            let keep = drawing.draws_at(at, governance);
            if !keep {
                layer_of.remove(&drawing.proposal_id);
            }
            keep
        });
        self.touched.insert(layer_id.clone());
        layer.drawings.push(Drawing {
            proposal_id: proposal_id.clone(),
            outlay_usd: proposal.requested_outlay_usd(),
            contracts: u64::from(proposal.contracts_requested()),
            body_sha256: to_hex(&sha256(terms.body.as_bytes())),
            expires_at: state.expires_at,
            signer_set_version: terms.signer_set_version,
            policy_version: terms.policy_version,
            committed: false,
        });
        layer_of.insert(proposal_id, layer_id);
    }

    /// The proposal was committed: it draws for good. (Its layer must be loaded.)
    pub fn committed(&mut self, proposal_id: &str) {
        let Some(layer_id) = self.layer_of.remove(proposal_id) else {
            return;
        };
        if let Some(layer) = self.layers.get_mut(&layer_id) {
            if let Some(drawing) = layer
                .drawings
                .iter_mut()
                .find(|d| d.proposal_id == proposal_id)
            {
                drawing.committed = true;
                // Only a pending body can be proposed twice.
                drawing.body_sha256 = String::new();
            }
            self.touched.insert(layer_id);
        }
    }

    /// The proposal was vetoed, withdrawn or expired: it draws nothing any more. (When its
    /// layer is not loaded, the roll has expired: the layer drops it at its next recording.)
    pub fn closed(&mut self, proposal_id: &str) {
        if let Some(layer_id) = self.layer_of.remove(proposal_id) {
            if let Some(layer) = self.layers.get_mut(&layer_id) {
                layer.drawings.retain(|d| d.proposal_id != proposal_id);
                self.touched.insert(layer_id);
            }
        }
    }

    /// The layers a recording of `proposal` needs: its id's, and the one owning its numbers.
    pub fn wanted_for_recording(&self, proposal: &Proposal) -> Vec<LayerKey> {
        let mut wanted = Vec::new();
        if let Some(id) = &proposal.closed_layer.id {
            if !self.layers.contains_key(id) {
                wanted.push(LayerKey::Id(id.clone()));
            }
        }
        let numbers = numbers_key(proposal);
        if !self.owner_of_numbers.contains_key(&numbers) {
            wanted.push(LayerKey::Numbers(numbers));
        }
        wanted
    }

    /// The layer a commit, veto, withdrawal or expiry of `proposal_id` needs, unless loaded.
    pub fn wanted_for_closing(&self, proposal_id: &str) -> Option<LayerKey> {
        let layer_id = self.layer_of.get(proposal_id)?;
        (!self.layers.contains_key(layer_id)).then(|| LayerKey::Id(layer_id.clone()))
    }

    /// Adds a layer saved by `take_touched` (a no-op when it is loaded already).
    pub fn load(&mut self, layer_id: &str, saved: &[u8]) -> Result<(), String> {
        if self.layers.contains_key(layer_id) {
            return Ok(());
        }
        let layer: Layer = serde_json::from_slice(saved)
            .map_err(|error| format!("saved layer {layer_id}: {error}"))?;
        self.owner_of_numbers
            .insert(layer.numbers.clone(), layer_id.to_string());
        self.layers.insert(layer_id.to_string(), layer);
        Ok(())
    }

    /// Forgets which layers changed (nothing will save them).
    pub fn forget_touched(&mut self) {
        self.touched.clear();
    }

    /// The layers changed since the last call, each as (id, numbers key, saved bytes).
    pub fn take_touched(&mut self) -> Vec<(String, String, Vec<u8>)> {
        std::mem::take(&mut self.touched)
            .into_iter()
            .filter_map(|id| {
                let layer = self.layers.get(&id)?;
                let saved = serde_json::to_vec(layer).expect("layers serialize");
                Some((id, layer.numbers.clone(), saved))
            })
            .collect()
    }

    /// The book a writer needs for one proposal: built from the states of every proposal on
    /// its layer id or with its numbers, in recording order (each with its parsed body), folded
    /// exactly as the auditor folds the history.
    pub fn of_states<'a>(
        states: impl IntoIterator<Item = (&'a ProposalState, &'a Proposal)>,
        governance: &Governance,
    ) -> LayerBook {
        let mut book = LayerBook::default();
        for (state, proposal) in states {
            book.record(state, proposal, governance, state.created_at);
            match state.status {
                // An executed roll (or one whose execution breached) was committed: it draws.
                Status::Committed | Status::Executed | Status::ExecutionBreach => {
                    book.committed(&state.id.to_string())
                }
                Status::Rejected | Status::Withdrawn | Status::Expired => {
                    book.closed(&state.id.to_string())
                }
                Status::Pending | Status::Failed => {}
            }
        }
        book
    }
}
