//! The sizing core: may this roll go ahead at the requested size, and what is the largest size
//! the guardrails allow? (`docs/methodology.md` is the specification.)
//!
//! Architecture invariant: this module is pure. It never reads files, the environment or the
//! clock, and never prints; `now` and every market and book figure come in as arguments, so the
//! same inputs always give the same report (the auditor re-runs `evaluate` and compares).

mod draws;
mod finance;
mod guardrails;
mod indicators;
pub(crate) mod input;
mod options;
mod policy;
mod proposal;
pub mod render;
mod report;
mod validation;

pub use draws::Draws;
pub use finance::{
    capm_cost_of_equity, cost_of_equity, gordon_growth_cost_of_equity, realized_profit_usd,
    stress_loss_usd, wacc, xirr,
};
pub use guardrails::{evaluate, evaluate_hashed};
pub use indicators::{ema_series, macd, wilder_rsi, Macd};
pub use options::{
    black76_price, bsm_price, bsm_theta_per_year, normal_cdf, normal_pdf, OptionKind,
};
pub use policy::{
    ApprovalPolicy, CoefficientPolicy, GrowthPolicy, LiquidityPolicy, Policy, SignalsPolicy,
    StructurePolicy, TimingPolicy, WaccPolicy,
};
pub use proposal::{
    Blackout, Book, Calendar, CashFlow, ClosedLayer, FrontCondor, NextLayer, Proposal, Roll,
    Signals,
};
pub use report::{Caps, Check, CoefficientReport, Metrics, SizingReport, Verdict};

/// A proposal or policy file larger than this is refused before parsing (1 MiB): a real
/// proposal is a few kilobytes, and a bound keeps parsing time and memory predictable.
pub const FILE_BYTES_MAX: usize = 1024 * 1024;
/// Longest proposal time to live a policy may set: one year. Longer makes no sense for a roll,
/// and the bound keeps every expiry time far from chrono's limits.
pub const PROPOSAL_TTL_SECONDS_MAX: u64 = 365 * 24 * 3600;
/// Largest `timing.clock_skew_max_seconds` a policy may set: one day. With clocks further
/// apart "one clock per ledger" means nothing, and staleness is counted in minutes. The least
/// is 1 second: 0 would refuse every command whose clock is not exact.
pub const CLOCK_SKEW_SECONDS_MAX: u32 = 86_400;
/// Longest indicator series accepted (`advance_decline_line`, `vix_term_spread`).
pub const SERIES_VALUES_MAX: usize = 10_000;
/// Most dated cash flows accepted in `book.structure_cash_flows`.
pub const CASH_FLOWS_MAX: usize = 1_000;
/// Most blackout windows accepted in `calendar.blackouts`.
pub const BLACKOUTS_MAX: usize = 1_000;
/// Longest identifier (`closed_layer.id`, the ids of the proposals drawn on), in characters.
pub const IDENTIFIER_CHARS_MAX: usize = 64;
/// Largest outlay drawn on one closed layer: a trillion USD, beyond any desk's layer, and small
/// enough that `X + drawn` keeps a hundredth of a cent. Beyond it is an input error, not a cap.
pub const DRAWN_OUTLAY_USD_MAX: f64 = 1e12;
/// Most contracts drawn on one closed layer (10^12): a sum of requests, each at most
/// `u32::MAX`, and exact as a check's `f64` value.
pub const DRAWN_CONTRACTS_MAX: u64 = 1_000_000_000_000;
/// Most proposals drawn on one closed layer whose ids a report carries: a layer is rolled by a
/// handful of proposals, and the bound keeps a report small.
pub const DRAWN_PROPOSALS_MAX: usize = 1_000;

/// Bad input: a proposal or policy that breaks a rule of the methodology. It names the field
/// (a TOML path such as `next_layer.implied_vol`) and the rule, so the user knows what to fix.
/// Displays as `"{field} {rule}"`, e.g. `next_layer.implied_vol must be > 0, got 0`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} {rule}")]
pub struct InputError {
    pub field: String,
    pub rule: String,
}

impl InputError {
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> InputError {
        InputError {
            field: field.into(),
            rule: rule.into(),
        }
    }
}
