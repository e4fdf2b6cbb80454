//! The sizing report: what `evaluate` returns, what the ledger stores with the proposal, and
//! what the offline auditor compares against a fresh evaluation.

use serde::{Deserialize, Serialize};

use super::Draws;

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

impl Verdict {
    /// The JSON spelling: `pass` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SizingReport {
    pub verdict: Verdict,
    pub contracts_requested: u32,
    pub contracts_max: u32,
    /// `contracts_max` when only size checks fail and it is >= 1; otherwise null.
    pub resize_to: Option<u32>,
    pub realized_profit_usd: f64,
    pub policy_hash: String,
    /// What other proposals drew on this closed layer, on the proposal's `closed_layer.id`.
    pub drawn: Draws,
    pub coefficient: CoefficientReport,
    pub caps: Caps,
    pub metrics: Metrics,
    pub checks: Vec<Check>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CoefficientReport {
    pub rsi: f64,
    pub pcf_score: f64,
    pub score: f64,
    pub base: f64,
    pub decay_per_day: f64,
    pub theta_press: bool,
    #[serde(rename = "final")]
    pub final_value: f64,
}

/// The caps in USD of outlay (and the growth cap in contracts); null where there is no cap.
/// `budget_usd` and `growth_contracts` are what the draws leave of the layer's totals.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Caps {
    pub budget_usd: f64,
    pub wacc_usd: Option<f64>,
    pub liquidity_usd: f64,
    pub irr_usd: Option<f64>,
    pub growth_contracts: u32,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    pub outlay_usd: f64,
    /// The layer's whole budget, `coefficient * max(P, 0)`, before draws.
    pub budget_total_usd: f64,
    /// The layer's whole growth cap in contracts, before draws.
    pub growth_total_contracts: u32,
    pub cost_of_equity: f64,
    pub wacc: f64,
    pub wacc_delta_bps: f64,
    pub quick_ratio_now: f64,
    pub quick_ratio_after: f64,
    pub stress_loss_usd: f64,
    pub structure_irr: f64,
    pub layer_cost_rate: f64,
    pub structure_capital_usd: f64,
    pub macd: f64,
    pub macd_signal: f64,
    pub macd_histogram: f64,
    pub layer_model_price_usd: f64,
    pub quote_deviation: f64,
    /// Null when no `put_premium_usd` was given (the parity check is then absent).
    pub parity_gap_usd: Option<f64>,
    pub breakeven_put_usd: f64,
    pub breakeven_call_usd: f64,
    pub breakeven_layer_usd: f64,
    pub expected_move_usd: f64,
    pub time_shift_days: i64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub id: String,
    pub passed: bool,
    pub value: f64,
    pub limit: f64,
    pub message: String,
}

/// Check ids whose failure only means "too big": a smaller request can pass them.
pub const SIZE_CHECK_IDS: [&str; 5] = ["budget", "growth", "wacc", "liquidity", "irr"];

/// Numbers agree when within relative 1e-9 or absolute 1e-9, whichever is larger: far above
/// the last-bit differences between platforms' libm (exp, ln, sqrt), far below anything a
/// risk officer reads (cents, basis points, four decimals of a ratio).
pub const AGREEMENT_TOLERANCE: f64 = 1e-9;

impl SizingReport {
    pub fn failed_check_ids(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.id.as_str())
            .collect()
    }

    /// Compares a recorded report (`self`) with a fresh evaluation. Exact: verdict, contracts
    /// requested and max, resize_to, policy hash, the draws' layer id, contracts and proposal
    /// ids (in order), the set of check ids and the set of failed check ids, the theta-press
    /// flag and the growth caps. Within `AGREEMENT_TOLERANCE`: every other number (the outlay
    /// drawn included). Nulls must match. Messages are not compared (they only restate numbers).
    /// Returns a plain-language description of the first difference.
    pub fn agrees_with(&self, fresh: &SizingReport) -> Result<(), String> {
        // Compared as values; the texts are built only to describe a difference (a verifier
        // compares one report per recorded roll).
        let exact =
            |what: &str, same: bool, recorded: &dyn Fn() -> String, now: &dyn Fn() -> String| {
                if same {
                    Ok(())
                } else {
                    Err(format!(
                        "{what} differs: recorded {}, fresh evaluation {}",
                        recorded(),
                        now()
                    ))
                }
            };
        exact(
            "verdict",
            self.verdict == fresh.verdict,
            &|| format!("{:?}", self.verdict),
            &|| format!("{:?}", fresh.verdict),
        )?;
        exact(
            "contracts_requested",
            self.contracts_requested == fresh.contracts_requested,
            &|| self.contracts_requested.to_string(),
            &|| fresh.contracts_requested.to_string(),
        )?;
        exact(
            "contracts_max",
            self.contracts_max == fresh.contracts_max,
            &|| self.contracts_max.to_string(),
            &|| fresh.contracts_max.to_string(),
        )?;
        exact(
            "resize_to",
            self.resize_to == fresh.resize_to,
            &|| format!("{:?}", self.resize_to),
            &|| format!("{:?}", fresh.resize_to),
        )?;
        exact(
            "policy_hash",
            self.policy_hash == fresh.policy_hash,
            &|| self.policy_hash.clone(),
            &|| fresh.policy_hash.clone(),
        )?;
        exact(
            "drawn.closed_layer_id",
            self.drawn.closed_layer_id == fresh.drawn.closed_layer_id,
            &|| format!("{:?}", self.drawn.closed_layer_id),
            &|| format!("{:?}", fresh.drawn.closed_layer_id),
        )?;
        exact(
            "drawn.contracts",
            self.drawn.contracts == fresh.drawn.contracts,
            &|| self.drawn.contracts.to_string(),
            &|| fresh.drawn.contracts.to_string(),
        )?;
        exact(
            "drawn.proposal_ids",
            self.drawn.proposal_ids == fresh.drawn.proposal_ids,
            &|| format!("[{}]", self.drawn.proposal_ids.join(", ")),
            &|| format!("[{}]", fresh.drawn.proposal_ids.join(", ")),
        )?;
        fn ids(r: &SizingReport) -> Vec<&str> {
            let mut v: Vec<&str> = r.checks.iter().map(|c| c.id.as_str()).collect();
            v.sort_unstable();
            v
        }
        let (recorded_ids, fresh_ids) = (ids(self), ids(fresh));
        exact(
            "the set of checks",
            recorded_ids == fresh_ids,
            &|| recorded_ids.join(", "),
            &|| fresh_ids.join(", "),
        )?;
        fn failed(r: &SizingReport) -> Vec<&str> {
            let mut v = r.failed_check_ids();
            v.sort_unstable();
            v
        }
        let (recorded_failed, fresh_failed) = (failed(self), failed(fresh));
        exact(
            "the set of failed checks",
            recorded_failed == fresh_failed,
            &|| format!("[{}]", recorded_failed.join(", ")),
            &|| format!("[{}]", fresh_failed.join(", ")),
        )?;
        exact(
            "coefficient.theta_press",
            self.coefficient.theta_press == fresh.coefficient.theta_press,
            &|| self.coefficient.theta_press.to_string(),
            &|| fresh.coefficient.theta_press.to_string(),
        )?;
        exact(
            "caps.growth_contracts",
            self.caps.growth_contracts == fresh.caps.growth_contracts,
            &|| self.caps.growth_contracts.to_string(),
            &|| fresh.caps.growth_contracts.to_string(),
        )?;
        exact(
            "metrics.growth_total_contracts",
            self.metrics.growth_total_contracts == fresh.metrics.growth_total_contracts,
            &|| self.metrics.growth_total_contracts.to_string(),
            &|| fresh.metrics.growth_total_contracts.to_string(),
        )?;
        exact(
            "metrics.time_shift_days",
            self.metrics.time_shift_days == fresh.metrics.time_shift_days,
            &|| self.metrics.time_shift_days.to_string(),
            &|| fresh.metrics.time_shift_days.to_string(),
        )?;
        let recorded = self.numbers();
        let now = fresh.numbers();
        for ((name, a), (_, b)) in recorded.iter().zip(now.iter()) {
            match (a, b) {
                (None, None) => {}
                (Some(a), Some(b)) if numbers_agree(*a, *b) => {}
                _ => {
                    return Err(format!(
                        "{name} differs: recorded {}, fresh evaluation {} (tolerance: relative or absolute {AGREEMENT_TOLERANCE:e})",
                        show(*a),
                        show(*b)
                    ))
                }
            }
        }
        Ok(())
    }

    /// Whether every floating-point number of the report is finite: the allocation-free fast
    /// path of `numbers()` for the evaluation's finiteness check. It covers every float that
    /// `numbers()` lists (and may cover more), so `true` implies that all of those are finite.
    pub(crate) fn all_numbers_finite(&self) -> bool {
        let c = &self.coefficient;
        let k = &self.caps;
        let m = &self.metrics;
        let fixed = [
            self.realized_profit_usd,
            self.drawn.outlay_usd,
            c.rsi,
            c.pcf_score,
            c.score,
            c.base,
            c.decay_per_day,
            c.final_value,
            k.budget_usd,
            k.wacc_usd.unwrap_or(0.0),
            k.liquidity_usd,
            k.irr_usd.unwrap_or(0.0),
            m.outlay_usd,
            m.budget_total_usd,
            m.cost_of_equity,
            m.wacc,
            m.wacc_delta_bps,
            m.quick_ratio_now,
            m.quick_ratio_after,
            m.stress_loss_usd,
            m.structure_irr,
            m.layer_cost_rate,
            m.structure_capital_usd,
            m.macd,
            m.macd_signal,
            m.macd_histogram,
            m.layer_model_price_usd,
            m.quote_deviation,
            m.parity_gap_usd.unwrap_or(0.0),
            m.breakeven_put_usd,
            m.breakeven_call_usd,
            m.breakeven_layer_usd,
            m.expected_move_usd,
        ];
        fixed.iter().all(|x| x.is_finite())
            && self
                .checks
                .iter()
                .all(|check| check.value.is_finite() && check.limit.is_finite())
    }

    /// Every floating-point number of the report with its JSON path, in a fixed order; checks
    /// are keyed by id so that their order does not matter.
    pub(crate) fn numbers(&self) -> Vec<(NumberPath<'_>, Option<f64>)> {
        let c = &self.coefficient;
        let k = &self.caps;
        let m = &self.metrics;
        let field = NumberPath::Field;
        let mut out: Vec<(NumberPath<'_>, Option<f64>)> = vec![
            (field("realized_profit_usd"), Some(self.realized_profit_usd)),
            (field("drawn.outlay_usd"), Some(self.drawn.outlay_usd)),
            (field("coefficient.rsi"), Some(c.rsi)),
            (field("coefficient.pcf_score"), Some(c.pcf_score)),
            (field("coefficient.score"), Some(c.score)),
            (field("coefficient.base"), Some(c.base)),
            (field("coefficient.decay_per_day"), Some(c.decay_per_day)),
            (field("coefficient.final"), Some(c.final_value)),
            (field("caps.budget_usd"), Some(k.budget_usd)),
            (field("caps.wacc_usd"), k.wacc_usd),
            (field("caps.liquidity_usd"), Some(k.liquidity_usd)),
            (field("caps.irr_usd"), k.irr_usd),
            (field("metrics.outlay_usd"), Some(m.outlay_usd)),
            (field("metrics.budget_total_usd"), Some(m.budget_total_usd)),
            (field("metrics.cost_of_equity"), Some(m.cost_of_equity)),
            (field("metrics.wacc"), Some(m.wacc)),
            (field("metrics.wacc_delta_bps"), Some(m.wacc_delta_bps)),
            (field("metrics.quick_ratio_now"), Some(m.quick_ratio_now)),
            (
                field("metrics.quick_ratio_after"),
                Some(m.quick_ratio_after),
            ),
            (field("metrics.stress_loss_usd"), Some(m.stress_loss_usd)),
            (field("metrics.structure_irr"), Some(m.structure_irr)),
            (field("metrics.layer_cost_rate"), Some(m.layer_cost_rate)),
            (
                field("metrics.structure_capital_usd"),
                Some(m.structure_capital_usd),
            ),
            (field("metrics.macd"), Some(m.macd)),
            (field("metrics.macd_signal"), Some(m.macd_signal)),
            (field("metrics.macd_histogram"), Some(m.macd_histogram)),
            (
                field("metrics.layer_model_price_usd"),
                Some(m.layer_model_price_usd),
            ),
            (field("metrics.quote_deviation"), Some(m.quote_deviation)),
            (field("metrics.parity_gap_usd"), m.parity_gap_usd),
            (
                field("metrics.breakeven_put_usd"),
                Some(m.breakeven_put_usd),
            ),
            (
                field("metrics.breakeven_call_usd"),
                Some(m.breakeven_call_usd),
            ),
            (
                field("metrics.breakeven_layer_usd"),
                Some(m.breakeven_layer_usd),
            ),
            (
                field("metrics.expected_move_usd"),
                Some(m.expected_move_usd),
            ),
        ];
        let mut checks: Vec<&Check> = self.checks.iter().collect();
        checks.sort_by(|a, b| a.id.cmp(&b.id));
        for check in checks {
            out.push((NumberPath::CheckValue(&check.id), Some(check.value)));
            out.push((NumberPath::CheckLimit(&check.id), Some(check.limit)));
        }
        out
    }
}

/// Where a number sits in a report, as its JSON path prints: a fixed field, or the value or
/// limit of the check with this id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberPath<'a> {
    Field(&'static str),
    CheckValue(&'a str),
    CheckLimit(&'a str),
}

impl std::fmt::Display for NumberPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NumberPath::Field(path) => f.write_str(path),
            NumberPath::CheckValue(id) => write!(f, "checks[{id}].value"),
            NumberPath::CheckLimit(id) => write!(f, "checks[{id}].limit"),
        }
    }
}

fn numbers_agree(a: f64, b: f64) -> bool {
    // Exact equality first so that equal infinities (never produced, but stored data is
    // untrusted) do not become NaN in the subtraction.
    a == b || (a - b).abs() <= AGREEMENT_TOLERANCE * a.abs().max(b.abs()).max(1.0)
}

fn show(x: Option<f64>) -> String {
    match x {
        Some(x) => format!("{x}"),
        None => "null".to_string(),
    }
}
