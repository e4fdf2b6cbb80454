//! What other proposals already drew on the same closed layer's profit: an input of
//! `evaluate`, supplied by the caller (the ledger, or the command line for a dry run), and
//! restated in the report as `drawn` (methodology, "Drawing on one closed layer").

use serde::{Deserialize, Serialize};

use super::validation::identifier;
use super::{InputError, DRAWN_CONTRACTS_MAX, DRAWN_OUTLAY_USD_MAX, DRAWN_PROPOSALS_MAX};

/// The draws on one closed layer: the sums of outlay `X` and of requested contracts over the
/// proposals drawn on, and their ids. `Draws::none()` draws nothing: every figure of the report
/// is then what it is without draws.
///
/// As an input, `closed_layer_id` names the layer the caller summed over; when given it must be
/// the proposal's `closed_layer.id`. In the report (`drawn`) it is the proposal's id.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Draws {
    pub closed_layer_id: Option<String>,
    pub outlay_usd: f64,
    pub contracts: u64,
    pub proposal_ids: Vec<String>,
}

impl Draws {
    /// Nothing drawn, on no named layer.
    pub fn none() -> Draws {
        Draws {
            closed_layer_id: None,
            outlay_usd: 0.0,
            contracts: 0,
            proposal_ids: Vec::new(),
        }
    }

    /// Whether nothing is drawn (no outlay, no contracts, no proposal).
    pub fn is_nothing(&self) -> bool {
        self.outlay_usd == 0.0 && self.contracts == 0 && self.proposal_ids.is_empty()
    }

    /// The draws on their own: a finite outlay in [0, `DRAWN_OUTLAY_USD_MAX`], contracts at
    /// most `DRAWN_CONTRACTS_MAX`, at most `DRAWN_PROPOSALS_MAX` distinct well-formed ids, and
    /// at least one contract per proposal drawn on (each requested at least one). Errors name
    /// the field as the report spells it (`drawn.outlay_usd`).
    pub fn validate(&self) -> Result<(), InputError> {
        if let Some(id) = &self.closed_layer_id {
            identifier("drawn.closed_layer_id", id)?;
        }
        let outlay_usd = self.outlay_usd;
        // `!(..).contains` also refuses NaN; -0.0 is 0.
        if !(0.0..=DRAWN_OUTLAY_USD_MAX).contains(&outlay_usd) {
            let rule = if outlay_usd.is_finite() {
                format!("must be in [0, {DRAWN_OUTLAY_USD_MAX:e}] USD, got {outlay_usd}")
            } else {
                format!("must be a finite number, got {outlay_usd}")
            };
            return Err(InputError::new("drawn.outlay_usd", rule));
        }
        if self.contracts > DRAWN_CONTRACTS_MAX {
            return Err(InputError::new(
                "drawn.contracts",
                format!(
                    "must be at most {DRAWN_CONTRACTS_MAX}, got {}",
                    self.contracts
                ),
            ));
        }
        let ids = &self.proposal_ids;
        if ids.len() > DRAWN_PROPOSALS_MAX {
            return Err(InputError::new(
                "drawn.proposal_ids",
                format!(
                    "must have at most {DRAWN_PROPOSALS_MAX} entries, got {}",
                    ids.len()
                ),
            ));
        }
        for (i, id) in ids.iter().enumerate() {
            identifier(&format!("drawn.proposal_ids[{i}]"), id)?;
        }
        // Sorting 1,000 short ids costs microseconds, and only when there are draws.
        let mut sorted: Vec<&str> = ids.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(InputError::new(
                "drawn.proposal_ids",
                format!("must name each proposal once, got {} twice", pair[0]),
            ));
        }
        if self.contracts < ids.len() as u64 {
            return Err(InputError::new(
                "drawn.contracts",
                format!(
                    "must be at least one per proposal drawn on ({}), got {}",
                    ids.len(),
                    self.contracts
                ),
            ));
        }
        Ok(())
    }

    /// `validate`, and the draws are on this layer: a named layer must be the proposal's
    /// (draws summed over another layer would spend that layer's budget here).
    pub(crate) fn validate_for(&self, closed_layer_id: Option<&str>) -> Result<(), InputError> {
        self.validate()?;
        match (&self.closed_layer_id, closed_layer_id) {
            (None, _) => Ok(()),
            (Some(drawn), Some(proposal)) if drawn == proposal => Ok(()),
            (Some(drawn), proposal) => Err(InputError::new(
                "drawn.closed_layer_id",
                match proposal {
                    Some(proposal) => {
                        format!("must be the proposal's closed_layer.id {proposal}, got {drawn}")
                    }
                    None => format!("names layer {drawn}, but the proposal has no closed_layer.id"),
                },
            )),
        }
    }
}
