//! One budget per closed layer (methodology, "Drawing on one closed layer"): which proposals
//! draw on a closed layer's profit at a given moment, and the rules that keep one layer under
//! one name with one set of numbers. Pure: the auditor folds every recording and closing into
//! one `LayerBook`; a writer drafts on the one its pin's auditor saved (or one folded from
//! genesis). Both then ask the same `draws_for`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{BuildHasher, RandomState};

use chrono::{DateTime, Utc};
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use uuid::Uuid;

use crate::crypto::canonical::sha256;
use crate::crypto::{from_hex32, to_hex};
use crate::domain::envelope::parse_canonical_uuid;
use crate::domain::events::ProposalKind;
use crate::domain::governance::Governance;
use crate::domain::proposal::{ProposalState, Status};
use crate::sizing::{Draws, Proposal};

/// How a saved layer is looked up: by its id, or by its numbers (`LayerNumbers` as text).
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
    #[error("closed_layer.id {layer_id}: one process holds at most {} closed layers and 4 GiB of their ids, and this layer would pass that", u32::MAX)]
    TooManyLayers { layer_id: String },
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
/// A verifier keeps every layer a committed roll drew on, for good (a committed roll draws on
/// its layer forever), so a layer is held compactly (`LayerTable`: about 107 bytes a layer
/// drawn on by one roll, docs/audit-format.md, Memory), and what only a pending roll needs
/// (`PendingDraw`) is held apart, by proposal id, and dropped when it commits.
///
/// Serialized (a client's saved auditor state) it holds only which layer each pending roll
/// draws on: a layer itself is saved on its own (`take_touched`, `load`), so that a client's
/// state grows by the layers its new events touch, not by every layer the ledger ever had, and a
/// resumed book loads the layers the next events need (`wanted_for_*`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LayerBook {
    /// Every layer (a book built from history), or those loaded.
    #[serde(skip)]
    layers: LayerTable,
    /// The layer each pending roll draws on (committed ones never change again), by id: a
    /// resumed book names layers it has not loaded. Saved as before ids were held as `Uuid`: a
    /// `Uuid` map key is written as its hyphenated text.
    layer_of: BTreeMap<Uuid, String>,
    /// Layers changed since the last `take_touched`, by index in `layers`.
    #[serde(skip)]
    touched: BTreeSet<u32>,
}

/// The layers held, one after another in the order they were first held (a layer is named by
/// its index, a `u32`), with their ids in one string and two hashed indexes into them: by id
/// and by numbers. Keyed maps held a copy of each key in an allocation of its own and cost
/// about 320 bytes a layer; this holds its ids' bytes once and 4 bytes a layer per index.
#[derive(Debug, Clone, Default)]
struct LayerTable {
    held: Vec<Layer>,
    /// The ids of `held`, each at its layer's `id_start`, `id_len` bytes long.
    ids: String,
    /// The proposal that fixed a layer's numbers (the earliest on its id that did not fail), by
    /// index, for the few layers whose first drawing is not that proposal's any more (it was
    /// vetoed, withdrawn or expired). Every other layer's is its first drawing's: held in the
    /// layer, it would cost 16 bytes a layer, the id its drawing holds once more.
    fixed_by_gone: BTreeMap<u32, Uuid>,
    /// What each pending drawing of `held` needs besides its draw, by proposal id; a drawing
    /// without an entry is committed. Only open proposals have one, so holding it apart spares
    /// every committed drawing a verifier keeps the 8 bytes of a pointer to it.
    pending: BTreeMap<Uuid, PendingDraw>,
    /// Indexes into `held`, hashed by their layer's id.
    by_id: HashTable<u32>,
    /// Indexes into `held`, hashed by their numbers: the layer that owns each set of numbers.
    by_numbers: HashTable<u32>,
    /// Keyed per process, so that ids a ledger chose cannot make lookups collide on purpose.
    hasher: RandomState,
}

/// Whether a layer added to a `LayerTable` takes its numbers from a layer that owns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumbersOwner {
    /// The first layer with its numbers owns them (a recording).
    KeepFirst,
    /// The layer added owns them (a saved layer loaded: rows hold each numbers once).
    Replace,
}

impl LayerTable {
    fn get(&self, index: u32) -> &Layer {
        &self.held[index as usize]
    }

    fn id(&self, index: u32) -> &str {
        id_in(&self.held, &self.ids, index)
    }

    /// The proposal that fixed the numbers of the layer at `index`.
    fn fixed_by(&self, index: u32) -> Uuid {
        match self.fixed_by_gone.get(&index) {
            Some(&fixed_by) => fixed_by,
            None => self.get(index).drawings[0].proposal_id,
        }
    }

    /// What the drawing of `proposal_id` needs while it is pending; `None` once committed.
    fn pending(&self, proposal_id: &Uuid) -> Option<&PendingDraw> {
        self.pending.get(proposal_id)
    }

    /// Drops the drawings of the layer at `index` that `keep` refuses (given each drawing and
    /// what it needs while pending), with their pending data, keeping the layer's `fixed_by`.
    fn retain_drawings(
        &mut self,
        index: u32,
        mut keep: impl FnMut(&Drawing, Option<&PendingDraw>) -> bool,
    ) {
        let fixed_by = self.fixed_by(index);
        let pending = &mut self.pending;
        let drawings = &mut self.held[index as usize].drawings;
        drawings.retain(|drawing| {
            let kept = keep(drawing, pending.get(&drawing.proposal_id));
            if !kept {
                pending.remove(&drawing.proposal_id);
            }
            kept
        });
        if drawings.first().map(|drawing| drawing.proposal_id) != Some(fixed_by) {
            self.fixed_by_gone.insert(index, fixed_by);
        }
    }

    /// The layer at `index` as a saved row holds it.
    fn saved(&self, index: u32) -> SavedLayer {
        let layer = self.get(index);
        SavedLayer {
            numbers: layer.numbers.to_string(),
            fixed_by: self.fixed_by(index).to_string(),
            drawings: layer
                .drawings
                .iter()
                .map(|drawing| SavedDrawing::of(drawing, self.pending(&drawing.proposal_id)))
                .collect(),
        }
    }

    fn index_of(&self, id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        self.by_id
            .find(hash, |&index| id_in(&self.held, &self.ids, index) == id)
            .copied()
    }

    /// The layer that owns `numbers`.
    fn owner_of(&self, numbers: &LayerNumbers) -> Option<u32> {
        let hash = self.hasher.hash_one(numbers);
        self.by_numbers
            .find(hash, |&index| self.held[index as usize].numbers == *numbers)
            .copied()
    }

    /// Adds `layer`, whose numbers `fixed_by` fixed, under `id`, which no held layer has;
    /// returns its index.
    fn insert(
        &mut self,
        id: &str,
        mut layer: Layer,
        fixed_by: Uuid,
        owner: NumbersOwner,
    ) -> Result<u32, LayerConflict> {
        debug_assert!(self.index_of(id).is_none(), "one layer per id");
        // Layers are named, and their ids placed, by `u32`. A layer id has at most 64
        // characters (`IDENTIFIER_CHARS_MAX`): 4 GiB of them would be 67 million layers, whose
        // records alone would not fit in this process either.
        let too_many = || LayerConflict::TooManyLayers {
            layer_id: id.to_string(),
        };
        let index = u32::try_from(self.held.len()).map_err(|_| too_many())?;
        layer.id_start = u32::try_from(self.ids.len()).map_err(|_| too_many())?;
        layer.id_len = u32::try_from(id.len()).map_err(|_| too_many())?;
        self.ids.push_str(id);
        let numbers = layer.numbers;
        if layer.drawings.first().map(|drawing| drawing.proposal_id) != Some(fixed_by) {
            self.fixed_by_gone.insert(index, fixed_by);
        }
        self.held.push(layer);
        let (held, ids, hasher) = (&self.held, &self.ids, &self.hasher);
        self.by_id
            .insert_unique(hasher.hash_one(id), index, |&other| {
                hasher.hash_one(id_in(held, ids, other))
            });
        let numbers_hash = hasher.hash_one(numbers);
        let rehash = |&other: &u32| hasher.hash_one(held[other as usize].numbers);
        match self.by_numbers.entry(
            numbers_hash,
            |&other| held[other as usize].numbers == numbers,
            rehash,
        ) {
            hashbrown::hash_table::Entry::Occupied(mut owned) => {
                if owner == NumbersOwner::Replace {
                    *owned.get_mut() = index;
                }
            }
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert(index);
            }
        }
        Ok(index)
    }
}

fn id_in<'a>(held: &[Layer], ids: &'a str, index: u32) -> &'a str {
    let layer = &held[index as usize];
    let start = layer.id_start as usize;
    &ids[start..start + layer.id_len as usize]
}

/// Saved (`take_touched`, `load`) as `SavedLayer`, the JSON shape saved states hold.
#[derive(Debug, Clone, PartialEq)]
struct Layer {
    /// Where its id lies in `LayerTable::ids`.
    id_start: u32,
    id_len: u32,
    numbers: LayerNumbers,
    /// Proposals that may still draw, in recording order (the order of `drawn.proposal_ids`,
    /// and the order their outlays are summed in). Most layers are drawn on by one roll, held
    /// in place: a `Vec` of one cost 24 bytes and an allocation of 48.
    drawings: SmallVec<[Drawing; 1]>,
}

/// A closed layer's numbers, compared exactly: equal values here are equal numbers, as their
/// text (`Display`, the saved `numbers_key`) compares them: `{:?}` of an f64 is its shortest
/// round-trip spelling, so one value has one text, and a negative zero is held as zero and
/// every NaN as one NaN (both print as one text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct LayerNumbers {
    contracts: u32,
    multiplier: u32,
    entry_premium_usd_bits: u64,
    exit_premium_usd_bits: u64,
    fees_usd_bits: u64,
}

impl LayerNumbers {
    fn of(proposal: &Proposal) -> LayerNumbers {
        let c = &proposal.closed_layer;
        LayerNumbers {
            contracts: c.contracts,
            multiplier: c.multiplier,
            entry_premium_usd_bits: exact_bits(c.entry_premium_usd),
            exit_premium_usd_bits: exact_bits(c.exit_premium_usd),
            fees_usd_bits: exact_bits(c.fees_usd),
        }
    }

    /// Reads the text `Display` writes, and only that text (a saved row's `numbers`).
    fn parse(text: &str) -> Result<LayerNumbers, String> {
        let malformed =
            || format!("numbers {text:?} are not a layer's numbers in their one spelling");
        let parts: Vec<&str> = text.split(' ').collect();
        let [contracts, entry, exit, multiplier, fees] = parts[..] else {
            return Err(malformed());
        };
        let number = |part: &str| part.parse::<f64>().map(exact_bits).map_err(|_| malformed());
        let count = |part: &str| part.parse::<u32>().map_err(|_| malformed());
        let numbers = LayerNumbers {
            contracts: count(contracts)?,
            multiplier: count(multiplier)?,
            entry_premium_usd_bits: number(entry)?,
            exit_premium_usd_bits: number(exit)?,
            fees_usd_bits: number(fees)?,
        };
        if numbers.to_string() != text {
            return Err(malformed());
        }
        Ok(numbers)
    }
}

/// `x`'s bits, with a negative zero as zero and every NaN as one.
fn exact_bits(x: f64) -> u64 {
    if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        (x + 0.0).to_bits()
    }
}

impl fmt::Display for LayerNumbers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?} {:?} {} {:?}",
            self.contracts,
            f64::from_bits(self.entry_premium_usd_bits),
            f64::from_bits(self.exit_premium_usd_bits),
            self.multiplier,
            f64::from_bits(self.fees_usd_bits)
        )
    }
}

/// A roll's draw on its layer. While the roll is pending, `LayerTable::pending` holds what
/// else it needs; a committed roll draws for good, so its draw is all that is kept.
#[derive(Debug, Clone, PartialEq)]
struct Drawing {
    proposal_id: Uuid,
    outlay_usd: f64,
    /// A `u64` costs nothing here: a `u32` would leave 4 bytes of padding after the `f64`.
    contracts: u64,
}

/// What a pending drawing needs to tell whether it still draws and whether a new body repeats
/// it.
#[derive(Debug, Clone, PartialEq)]
struct PendingDraw {
    /// SHA-256 of the body: a body equal to a pending proposal's is refused.
    body_sha256: [u8; 32],
    expires_at: DateTime<Utc>,
    signer_set_version: u64,
    policy_version: u64,
}

/// Whether a drawing draws at `at` under `governance`, given what it needs while pending:
/// a committed roll (`None`) draws for good; a pending one while it could still be committed:
/// not past its expiry and bound to the governance in force (the same rule as
/// `ProposalState::status_under`).
fn draws_at(pending: Option<&PendingDraw>, at: DateTime<Utc>, governance: &Governance) -> bool {
    match pending {
        None => true,
        Some(pending) => {
            at <= pending.expires_at
                && pending.signer_set_version == governance.set.version
                && pending.policy_version == governance.policy_version
        }
    }
}

/// A layer as a client's saved state holds it (one JSON row per layer): the shape rows were
/// written in before `Layer` held ids as `Uuid` and dropped what a committed drawing no longer
/// needs. Rows already on users' machines load, and new rows read the same way.
#[derive(Serialize, Deserialize)]
struct SavedLayer {
    numbers: String,
    fixed_by: String,
    drawings: Vec<SavedDrawing>,
}

/// A drawing's row. A committed one holds an empty `body_sha256` (as it always did) and, since
/// nothing reads them once it draws for good, the Unix epoch and zero versions.
#[derive(Serialize, Deserialize)]
struct SavedDrawing {
    proposal_id: String,
    outlay_usd: f64,
    contracts: u64,
    body_sha256: String,
    expires_at: DateTime<Utc>,
    signer_set_version: u64,
    policy_version: u64,
    committed: bool,
}

/// A layer as a saved row holds it: the layer, the proposal that fixed its numbers, and what
/// each of its pending drawings needs (`LayerTable::pending`), by proposal id.
struct LoadedLayer {
    layer: Layer,
    fixed_by: Uuid,
    pending: Vec<(Uuid, PendingDraw)>,
}

impl Layer {
    /// The layer a row holds; its id is placed by `LayerTable::insert`.
    fn from_saved(saved: SavedLayer) -> Result<LoadedLayer, String> {
        let id = |text: &str| {
            parse_canonical_uuid(text).ok_or_else(|| format!("{text:?} is not a proposal id"))
        };
        let mut pending = Vec::new();
        let drawings = saved
            .drawings
            .into_iter()
            .map(|drawing| {
                let proposal_id = id(&drawing.proposal_id)?;
                if !drawing.committed {
                    let body_sha256 = from_hex32(&drawing.body_sha256)
                        .map_err(|error| format!("body_sha256: {error}"))?;
                    let draw = PendingDraw {
                        body_sha256,
                        expires_at: drawing.expires_at,
                        signer_set_version: drawing.signer_set_version,
                        policy_version: drawing.policy_version,
                    };
                    pending.push((proposal_id, draw));
                }
                Ok(Drawing {
                    proposal_id,
                    outlay_usd: drawing.outlay_usd,
                    contracts: drawing.contracts,
                })
            })
            .collect::<Result<_, String>>()?;
        let layer = Layer {
            id_start: 0,
            id_len: 0,
            numbers: LayerNumbers::parse(&saved.numbers)?,
            drawings,
        };
        Ok(LoadedLayer {
            layer,
            fixed_by: id(&saved.fixed_by)?,
            pending,
        })
    }
}

impl SavedDrawing {
    /// The row of `drawing`, given what it needs while pending (`None` once committed).
    fn of(drawing: &Drawing, pending: Option<&PendingDraw>) -> Self {
        let (body_sha256, expires_at, signer_set_version, policy_version) = match pending {
            Some(pending) => (
                to_hex(&pending.body_sha256),
                pending.expires_at,
                pending.signer_set_version,
                pending.policy_version,
            ),
            None => (String::new(), DateTime::UNIX_EPOCH, 0, 0),
        };
        SavedDrawing {
            proposal_id: drawing.proposal_id.to_string(),
            outlay_usd: drawing.outlay_usd,
            contracts: drawing.contracts,
            body_sha256,
            expires_at,
            signer_set_version,
            policy_version,
            committed: pending.is_none(),
        }
    }
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
        let numbers = LayerNumbers::of(proposal);
        let Some(index) = self.layers.index_of(layer_id) else {
            if let Some(other) = self.layers.owner_of(&numbers) {
                return Err(LayerConflict::NumbersTaken {
                    layer_id: layer_id.to_string(),
                    other_layer_id: self.layers.id(other).to_string(),
                    fixed_by: self.layers.fixed_by(other).to_string(),
                });
            }
            return Ok(Draws {
                closed_layer_id: Some(layer_id.to_string()),
                ..Draws::none()
            });
        };
        let layer = self.layers.get(index);
        if layer.numbers != numbers {
            return Err(LayerConflict::NumbersDiffer {
                layer_id: layer_id.to_string(),
                fixed_by: self.layers.fixed_by(index).to_string(),
            });
        }
        let body_sha256 = sha256(body.as_bytes());
        let mut draws = Draws {
            closed_layer_id: Some(layer_id.to_string()),
            ..Draws::none()
        };
        for drawing in &layer.drawings {
            let pending = self.layers.pending(&drawing.proposal_id);
            if !draws_at(pending, at, governance) {
                continue;
            }
            if pending.is_some_and(|pending| pending.body_sha256 == body_sha256) {
                return Err(LayerConflict::SameAsPending {
                    proposal_id: drawing.proposal_id.to_string(),
                });
            }
            draws.outlay_usd += drawing.outlay_usd;
            draws.contracts += drawing.contracts;
            draws.proposal_ids.push(drawing.proposal_id.to_string());
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
    ) -> Result<(), LayerConflict> {
        let terms = &state.recorded.terms;
        let Some(layer_id) = proposal.closed_layer.id.as_deref() else {
            return Ok(());
        };
        if terms.kind != ProposalKind::Roll || state.status == Status::Failed {
            return Ok(());
        }
        let proposal_id = state.id;
        let drawing = Drawing {
            proposal_id,
            outlay_usd: proposal.requested_outlay_usd(),
            contracts: u64::from(proposal.contracts_requested()),
        };
        let pending = PendingDraw {
            body_sha256: sha256(terms.body.as_bytes()),
            expires_at: state.expires_at,
            signer_set_version: terms.signer_set_version,
            policy_version: terms.policy_version,
        };
        let index = match self.layers.index_of(layer_id) {
            Some(index) => {
                let layer_of = &mut self.layer_of;
                self.layers.retain_drawings(index, |drawing, pending| {
                    let keep = draws_at(pending, at, governance);
                    if !keep {
                        layer_of.remove(&drawing.proposal_id);
                    }
                    keep
                });
                self.layers.held[index as usize].drawings.push(drawing);
                index
            }
            // The first roll on a layer fixes its numbers.
            None => self.layers.insert(
                layer_id,
                Layer {
                    id_start: 0,
                    id_len: 0,
                    numbers: LayerNumbers::of(proposal),
                    drawings: smallvec::smallvec![drawing],
                },
                proposal_id,
                NumbersOwner::KeepFirst,
            )?,
        };
        self.layers.pending.insert(proposal_id, pending);
        self.touched.insert(index);
        self.layer_of.insert(proposal_id, layer_id.to_string());
        Ok(())
    }

    /// The proposal was committed: it draws for good. (Its layer must be loaded.)
    pub fn committed(&mut self, proposal_id: Uuid) {
        let Some(layer_id) = self.layer_of.remove(&proposal_id) else {
            return;
        };
        if let Some(index) = self.layers.index_of(&layer_id) {
            self.layers.pending.remove(&proposal_id);
            self.touched.insert(index);
        }
    }

    /// The proposal was vetoed, withdrawn or expired: it draws nothing any more. (When its
    /// layer is not loaded, the roll has expired: the layer drops it at its next recording.)
    pub fn closed(&mut self, proposal_id: Uuid) {
        if let Some(layer_id) = self.layer_of.remove(&proposal_id) {
            if let Some(index) = self.layers.index_of(&layer_id) {
                self.layers
                    .retain_drawings(index, |d, _| d.proposal_id != proposal_id);
                self.touched.insert(index);
            }
        }
    }

    /// The layers a recording of `proposal` needs: its id's, and the one owning its numbers.
    pub fn wanted_for_recording(&self, proposal: &Proposal) -> Vec<LayerKey> {
        let mut wanted = Vec::new();
        if let Some(id) = &proposal.closed_layer.id {
            if self.layers.index_of(id).is_none() {
                wanted.push(LayerKey::Id(id.clone()));
            }
        }
        let numbers = LayerNumbers::of(proposal);
        if self.layers.owner_of(&numbers).is_none() {
            wanted.push(LayerKey::Numbers(numbers.to_string()));
        }
        wanted
    }

    /// The layer a commit, veto, withdrawal or expiry of `proposal_id` needs, unless loaded.
    pub fn wanted_for_closing(&self, proposal_id: &str) -> Option<LayerKey> {
        let layer_id = self.layer_of.get(&parse_canonical_uuid(proposal_id)?)?;
        (self.layers.index_of(layer_id).is_none()).then(|| LayerKey::Id(layer_id.clone()))
    }

    /// Adds a layer saved by `take_touched` (a no-op when it is loaded already).
    pub fn load(&mut self, layer_id: &str, saved: &[u8]) -> Result<(), String> {
        if self.layers.index_of(layer_id).is_some() {
            return Ok(());
        }
        let loaded = serde_json::from_slice::<SavedLayer>(saved)
            .map_err(|error| error.to_string())
            .and_then(Layer::from_saved)
            .map_err(|error| format!("saved layer {layer_id}: {error}"))?;
        self.layers
            .insert(
                layer_id,
                loaded.layer,
                loaded.fixed_by,
                NumbersOwner::Replace,
            )
            .map_err(|error| format!("saved layer {layer_id}: {error}"))?;
        self.layers.pending.extend(loaded.pending);
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
            .map(|index| {
                let saved = self.layers.saved(index);
                let numbers_key = saved.numbers.clone();
                let saved = serde_json::to_vec(&saved).expect("layers serialize");
                (self.layers.id(index).to_string(), numbers_key, saved)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A committed roll's row as rollbook wrote it before layers held ids as `Uuid` (taken from
    /// a client's saved state), followed by a pending one.
    const SAVED_LAYER: &str = r#"{"numbers":"20 1.5 6.8 100 26.001","fixed_by":"01a1acc7-96f6-7607-bb8e-cfdeb7bdad28","drawings":[{"proposal_id":"01a1acc7-96f6-7607-bb8e-cfdeb7bdad28","outlay_usd":2655.0,"contracts":9,"body_sha256":"","expires_at":"2026-11-05T21:35:23.894150Z","signer_set_version":1,"policy_version":1,"committed":true},{"proposal_id":"01a1acc7-9fc0-7a26-b9b4-1e2745442466","outlay_usd":1180.0,"contracts":4,"body_sha256":"5e2c1f1a746fdf5bf0ad33829e0f041605f5035c05ac9eaec74b5a81e41ea52d","expires_at":"2026-11-06T21:35:26.144150Z","signer_set_version":2,"policy_version":3,"committed":false}]}"#;

    /// A verifier keeps every committed drawing for good (A12): a field added to a drawing is
    /// paid for every roll the ledger ever committed (docs/audit-format.md, Memory).
    #[test]
    fn a_committed_drawing_stays_compact() {
        assert!(std::mem::size_of::<Drawing>() <= 32);
        // Its id's place, its numbers and one drawing in place (`fixed_by` is that drawing's).
        assert!(std::mem::size_of::<Layer>() <= 80);
    }

    /// A layer's numbers stay fixed by the proposal that fixed them when its drawing goes
    /// (vetoed, withdrawn, expired), in lookups and in the saved row.
    #[test]
    fn fixed_by_outlives_the_fixing_drawing() {
        let drawing = |n: u128| Drawing {
            proposal_id: Uuid::from_u128(n),
            outlay_usd: 100.0,
            contracts: 1,
        };
        let numbers = LayerNumbers::parse("20 1.5 6.8 100 26.001").unwrap();
        let mut table = LayerTable::default();
        let layer = Layer {
            id_start: 0,
            id_len: 0,
            numbers,
            drawings: smallvec::smallvec![drawing(1)],
        };
        let index = table
            .insert("L1", layer, Uuid::from_u128(1), NumbersOwner::KeepFirst)
            .unwrap();
        assert!(table.fixed_by_gone.is_empty(), "the first drawing fixed it");
        table.held[index as usize].drawings.push(drawing(2));
        table.retain_drawings(index, |d, _| d.proposal_id != Uuid::from_u128(2));
        assert!(table.fixed_by_gone.is_empty(), "the fixing drawing stays");
        table.retain_drawings(index, |d, _| d.proposal_id != Uuid::from_u128(1));
        assert_eq!(table.fixed_by(index), Uuid::from_u128(1));
        table.held[index as usize].drawings.push(drawing(3));
        assert_eq!(table.fixed_by(index), Uuid::from_u128(1));
        let saved = table.saved(index);
        assert_eq!(saved.fixed_by, Uuid::from_u128(1).to_string());
        assert_eq!(saved.drawings.len(), 1);
        // A row whose fixing drawing is gone loads with the same `fixed_by`.
        let loaded = Layer::from_saved(saved).unwrap();
        let mut again = LayerTable::default();
        let index = again
            .insert("L1", loaded.layer, loaded.fixed_by, NumbersOwner::Replace)
            .unwrap();
        assert_eq!(again.fixed_by(index), Uuid::from_u128(1));
    }

    /// Numbers compare as their text did when they were held as text (`{:?}` of each f64):
    /// a negative zero is zero, and the text is what saved rows hold and are looked up by.
    #[test]
    fn numbers_compare_and_read_back_as_their_text() {
        let numbers = |contracts, entry: f64, exit: f64, multiplier, fees: f64| LayerNumbers {
            contracts,
            multiplier,
            entry_premium_usd_bits: exact_bits(entry),
            exit_premium_usd_bits: exact_bits(exit),
            fees_usd_bits: exact_bits(fees),
        };
        let layer = numbers(20, 1.5, 6.8, 100, 26.001);
        assert_eq!(layer.to_string(), "20 1.5 6.8 100 26.001");
        assert_eq!(LayerNumbers::parse("20 1.5 6.8 100 26.001"), Ok(layer));
        assert_eq!(numbers(1, 0.0, 2.0, 1, 0.0), numbers(1, -0.0, 2.0, 1, -0.0));
        assert_eq!(numbers(1, -0.0, 2.0, 1, 0.0).to_string(), "1 0.0 2.0 1 0.0");
        assert_eq!(
            numbers(1, f64::NAN, 2.0, 1, 0.0),
            numbers(1, -f64::NAN, 2.0, 1, 0.0)
        );
        assert_ne!(
            numbers(1, 0.1 + 0.2, 2.0, 1, 0.0),
            numbers(1, 0.3, 2.0, 1, 0.0)
        );
        for other_spelling in [
            "20 1.50 6.8 100 26.001",
            "20 1.5 6.8 100",
            "20 1.5 6.8 100 26.001 ",
        ] {
            assert!(
                LayerNumbers::parse(other_spelling).is_err(),
                "{other_spelling}"
            );
        }
    }

    /// Rows saved by earlier versions load: a client's state on a user's machine keeps working.
    #[test]
    fn a_layer_saved_in_the_earlier_shape_loads() {
        let mut book = LayerBook::default();
        book.load("BENCH-L1", SAVED_LAYER.as_bytes()).unwrap();
        let index = book.layers.index_of("BENCH-L1").expect("loaded");
        let layer = book.layers.get(index);
        assert_eq!(layer.numbers.to_string(), "20 1.5 6.8 100 26.001");
        assert_eq!(book.layers.owner_of(&layer.numbers), Some(index));
        assert_eq!(
            book.layers.fixed_by(index).to_string(),
            "01a1acc7-96f6-7607-bb8e-cfdeb7bdad28"
        );
        let [committed, pending] = &layer.drawings[..] else {
            panic!("two drawings, in their saved order");
        };
        assert!(book.layers.pending(&committed.proposal_id).is_none());
        assert_eq!((committed.outlay_usd, committed.contracts), (2655.0, 9));
        assert_eq!(
            pending.proposal_id.to_string(),
            "01a1acc7-9fc0-7a26-b9b4-1e2745442466"
        );
        let draw = book.layers.pending(&pending.proposal_id).expect("pending");
        assert_eq!(
            to_hex(&draw.body_sha256),
            "5e2c1f1a746fdf5bf0ad33829e0f041605f5035c05ac9eaec74b5a81e41ea52d"
        );
        assert_eq!((draw.signer_set_version, draw.policy_version), (2, 3));
        assert_eq!(
            draw.expires_at.to_rfc3339(),
            "2026-11-06T21:35:26.144150+00:00"
        );
    }

    /// A layer is saved in the same shape: a pending drawing exactly as before, a committed one
    /// with what no reader looks at any more (its expiry and versions) as the epoch and zeros.
    #[test]
    fn a_layer_is_saved_in_the_earlier_shape() {
        let mut book = LayerBook::default();
        book.load("BENCH-L1", SAVED_LAYER.as_bytes()).unwrap();
        book.touched
            .insert(book.layers.index_of("BENCH-L1").expect("loaded"));
        let [(id, numbers_key, saved)] = &book.take_touched()[..] else {
            panic!("one layer touched");
        };
        assert_eq!(
            (id.as_str(), numbers_key.as_str()),
            ("BENCH-L1", "20 1.5 6.8 100 26.001")
        );
        let expected = SAVED_LAYER.replace(
            r#""expires_at":"2026-11-05T21:35:23.894150Z","signer_set_version":1,"policy_version":1,"committed":true"#,
            r#""expires_at":"1970-01-01T00:00:00Z","signer_set_version":0,"policy_version":0,"committed":true"#,
        );
        assert_eq!(String::from_utf8_lossy(saved), expected);
        // And it reads back as the layer it was.
        let mut again = LayerBook::default();
        again.load("BENCH-L1", saved).unwrap();
        assert_eq!(again.layers.held, book.layers.held);
        assert_eq!(again.layers.ids, book.layers.ids);
        assert_eq!(again.layers.fixed_by_gone, book.layers.fixed_by_gone);
        assert_eq!(again.layers.pending, book.layers.pending);
    }

    /// A row whose ids or body hash are not in their one spelling is refused, not guessed at.
    #[test]
    fn a_saved_layer_with_a_malformed_id_or_hash_is_refused() {
        let upper_id = SAVED_LAYER.replace("01a1acc7-9fc0", "01A1ACC7-9FC0");
        assert!(LayerBook::default()
            .load("BENCH-L1", upper_id.as_bytes())
            .is_err());
        let short_hash = SAVED_LAYER.replace("5e2c1f1a", "5e2c");
        assert!(LayerBook::default()
            .load("BENCH-L1", short_hash.as_bytes())
            .is_err());
    }

    /// The book's own saved part, which layer each pending roll draws on, keeps its JSON: a
    /// `Uuid` key is written as the id's text.
    #[test]
    fn which_layer_a_pending_roll_draws_on_is_saved_as_before() {
        let saved = r#"{"layer_of":{"01a1acc7-9fc0-7a26-b9b4-1e2745442466":"BENCH-L1"}}"#;
        let book: LayerBook = serde_json::from_str(saved).unwrap();
        assert_eq!(
            book.wanted_for_closing("01a1acc7-9fc0-7a26-b9b4-1e2745442466"),
            Some(LayerKey::Id("BENCH-L1".into()))
        );
        assert_eq!(serde_json::to_string(&book).unwrap(), saved);
    }

    /// The table finds every layer by its id and by its numbers after its indexes grew many
    /// times, and numbers keep the owner a map keyed by them would have: a recording's layer
    /// keeps the first owner, a loaded row takes them over (rows hold each numbers once).
    #[test]
    fn layers_are_found_by_id_and_numbers_as_the_table_grows() {
        let numbers = |n: u32| LayerNumbers {
            contracts: n,
            multiplier: 100,
            entry_premium_usd_bits: 1.5f64.to_bits(),
            exit_premium_usd_bits: 6.8f64.to_bits(),
            fees_usd_bits: (26.0 + f64::from(n) * 0.001).to_bits(),
        };
        let layer = |n: u32| Layer {
            id_start: 0,
            id_len: 0,
            numbers: numbers(n),
            drawings: SmallVec::new(),
        };
        let fixed_by = |n: u32| Uuid::from_u128(u128::from(n));
        let mut table = LayerTable::default();
        for n in 0..5_000 {
            let index = table
                .insert(
                    &format!("BENCH-L{n}"),
                    layer(n),
                    fixed_by(n),
                    NumbersOwner::KeepFirst,
                )
                .unwrap();
            assert_eq!(index, n);
        }
        for n in 0..5_000 {
            let index = table.index_of(&format!("BENCH-L{n}")).expect("held");
            assert_eq!(table.id(index), format!("BENCH-L{n}"));
            assert_eq!(table.owner_of(&numbers(n)), Some(index));
            assert_eq!(table.fixed_by(index), fixed_by(n));
        }
        assert_eq!(table.index_of("BENCH-L5000"), None);
        assert_eq!(table.index_of("BENCH-L"), None);
        assert_eq!(table.owner_of(&numbers(5_000)), None);

        let second = table
            .insert("OTHER-1", layer(7), fixed_by(7), NumbersOwner::KeepFirst)
            .unwrap();
        assert_eq!(
            table.owner_of(&numbers(7)),
            Some(7),
            "the first layer keeps its numbers"
        );
        assert_eq!(table.index_of("OTHER-1"), Some(second));
        let loaded = table
            .insert("OTHER-2", layer(8), fixed_by(8), NumbersOwner::Replace)
            .unwrap();
        assert_eq!(
            table.owner_of(&numbers(8)),
            Some(loaded),
            "a loaded row takes them"
        );
    }
}
