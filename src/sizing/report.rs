//! The sizing report: what `evaluate` returns, what the ledger stores with the proposal, and
//! what the offline auditor compares against a fresh evaluation.

use serde::{Deserialize, Serialize};

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
    /// requested and max, resize_to, policy hash, the set of check ids and the set of failed
    /// check ids, the theta-press flag and the growth cap. Within `AGREEMENT_TOLERANCE`: every
    /// other number. Nulls must match. Messages are not compared (they only restate numbers).
    /// Returns a plain-language description of the first difference.
    pub fn agrees_with(&self, fresh: &SizingReport) -> Result<(), String> {
        let exact = |what: &str, recorded: String, now: String| {
            if recorded == now {
                Ok(())
            } else {
                Err(format!(
                    "{what} differs: recorded {recorded}, fresh evaluation {now}"
                ))
            }
        };
        exact(
            "verdict",
            format!("{:?}", self.verdict),
            format!("{:?}", fresh.verdict),
        )?;
        exact(
            "contracts_requested",
            self.contracts_requested.to_string(),
            fresh.contracts_requested.to_string(),
        )?;
        exact(
            "contracts_max",
            self.contracts_max.to_string(),
            fresh.contracts_max.to_string(),
        )?;
        exact(
            "resize_to",
            format!("{:?}", self.resize_to),
            format!("{:?}", fresh.resize_to),
        )?;
        exact(
            "policy_hash",
            self.policy_hash.clone(),
            fresh.policy_hash.clone(),
        )?;
        let ids = |r: &SizingReport| {
            let mut v: Vec<String> = r.checks.iter().map(|c| c.id.clone()).collect();
            v.sort();
            v.join(", ")
        };
        exact("the set of checks", ids(self), ids(fresh))?;
        let failed = |r: &SizingReport| {
            let mut v = r.failed_check_ids();
            v.sort_unstable();
            format!("[{}]", v.join(", "))
        };
        exact("the set of failed checks", failed(self), failed(fresh))?;
        exact(
            "coefficient.theta_press",
            self.coefficient.theta_press.to_string(),
            fresh.coefficient.theta_press.to_string(),
        )?;
        exact(
            "caps.growth_contracts",
            self.caps.growth_contracts.to_string(),
            fresh.caps.growth_contracts.to_string(),
        )?;
        exact(
            "metrics.time_shift_days",
            self.metrics.time_shift_days.to_string(),
            fresh.metrics.time_shift_days.to_string(),
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
    pub(crate) fn numbers(&self) -> Vec<(String, Option<f64>)> {
        let c = &self.coefficient;
        let k = &self.caps;
        let m = &self.metrics;
        let mut out: Vec<(String, Option<f64>)> = vec![
            ("realized_profit_usd".into(), Some(self.realized_profit_usd)),
            ("coefficient.rsi".into(), Some(c.rsi)),
            ("coefficient.pcf_score".into(), Some(c.pcf_score)),
            ("coefficient.score".into(), Some(c.score)),
            ("coefficient.base".into(), Some(c.base)),
            ("coefficient.decay_per_day".into(), Some(c.decay_per_day)),
            ("coefficient.final".into(), Some(c.final_value)),
            ("caps.budget_usd".into(), Some(k.budget_usd)),
            ("caps.wacc_usd".into(), k.wacc_usd),
            ("caps.liquidity_usd".into(), Some(k.liquidity_usd)),
            ("caps.irr_usd".into(), k.irr_usd),
            ("metrics.outlay_usd".into(), Some(m.outlay_usd)),
            ("metrics.cost_of_equity".into(), Some(m.cost_of_equity)),
            ("metrics.wacc".into(), Some(m.wacc)),
            ("metrics.wacc_delta_bps".into(), Some(m.wacc_delta_bps)),
            ("metrics.quick_ratio_now".into(), Some(m.quick_ratio_now)),
            (
                "metrics.quick_ratio_after".into(),
                Some(m.quick_ratio_after),
            ),
            ("metrics.stress_loss_usd".into(), Some(m.stress_loss_usd)),
            ("metrics.structure_irr".into(), Some(m.structure_irr)),
            ("metrics.layer_cost_rate".into(), Some(m.layer_cost_rate)),
            (
                "metrics.structure_capital_usd".into(),
                Some(m.structure_capital_usd),
            ),
            ("metrics.macd".into(), Some(m.macd)),
            ("metrics.macd_signal".into(), Some(m.macd_signal)),
            ("metrics.macd_histogram".into(), Some(m.macd_histogram)),
            (
                "metrics.layer_model_price_usd".into(),
                Some(m.layer_model_price_usd),
            ),
            ("metrics.quote_deviation".into(), Some(m.quote_deviation)),
            ("metrics.parity_gap_usd".into(), m.parity_gap_usd),
            (
                "metrics.breakeven_put_usd".into(),
                Some(m.breakeven_put_usd),
            ),
            (
                "metrics.breakeven_call_usd".into(),
                Some(m.breakeven_call_usd),
            ),
            (
                "metrics.breakeven_layer_usd".into(),
                Some(m.breakeven_layer_usd),
            ),
            (
                "metrics.expected_move_usd".into(),
                Some(m.expected_move_usd),
            ),
        ];
        let mut checks: Vec<&Check> = self.checks.iter().collect();
        checks.sort_by(|a, b| a.id.cmp(&b.id));
        for check in checks {
            out.push((format!("checks[{}].value", check.id), Some(check.value)));
            out.push((format!("checks[{}].limit", check.id), Some(check.limit)));
        }
        out
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
