//! The roll proposal: typed fields named exactly as the methodology's input table, defaults
//! applied, every rule of the validation list checked.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::input;
use super::InputError;

/// A validated roll proposal. Build it with `from_toml_str` (which validates); `evaluate`
/// re-validates whatever it is given. The structs are the file's schema: field names as in the
/// methodology's input table, defaults and readers (`input.rs`) in the attributes.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    #[serde(deserialize_with = "input::table")]
    pub roll: Roll,
    #[serde(deserialize_with = "input::table")]
    pub closed_layer: ClosedLayer,
    #[serde(deserialize_with = "input::table")]
    pub next_layer: NextLayer,
    #[serde(deserialize_with = "input::table")]
    pub front_condor: FrontCondor,
    #[serde(deserialize_with = "input::table")]
    pub signals: Signals,
    #[serde(deserialize_with = "input::table")]
    pub book: Book,
    #[serde(default, deserialize_with = "input::table")]
    pub calendar: Calendar,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Roll {
    #[serde(deserialize_with = "input::timestamp")]
    pub as_of: DateTime<Utc>,
    #[serde(deserialize_with = "input::timestamp")]
    pub execute_after: DateTime<Utc>,
    #[serde(deserialize_with = "input::timestamp")]
    pub execute_before: DateTime<Utc>,
    #[serde(default, deserialize_with = "input::text")]
    pub note: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClosedLayer {
    /// The desk's identifier of the closed layer (1 to 64 ASCII letters, digits and `-_.:/`):
    /// every proposal that draws on this layer's profit names it. Optional in the file; the
    /// ledger's `propose` requires it.
    #[serde(
        default,
        deserialize_with = "input::text_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<String>,
    #[serde(deserialize_with = "input::count")]
    pub contracts: u32,
    #[serde(deserialize_with = "input::number")]
    pub entry_premium_usd: f64,
    #[serde(deserialize_with = "input::number")]
    pub exit_premium_usd: f64,
    #[serde(default = "multiplier_default", deserialize_with = "input::count")]
    pub multiplier: u32,
    #[serde(default, deserialize_with = "input::number")]
    pub fees_usd: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NextLayer {
    #[serde(deserialize_with = "input::count")]
    pub contracts: u32,
    #[serde(deserialize_with = "input::number")]
    pub strike: f64,
    #[serde(deserialize_with = "input::date")]
    pub expiry: NaiveDate,
    #[serde(deserialize_with = "input::number")]
    pub premium_usd: f64,
    #[serde(
        default,
        deserialize_with = "input::number_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub put_premium_usd: Option<f64>,
    #[serde(deserialize_with = "input::number")]
    pub futures_price: f64,
    #[serde(deserialize_with = "input::number")]
    pub implied_vol: f64,
    #[serde(deserialize_with = "input::number")]
    pub rate: f64,
    #[serde(default = "multiplier_default", deserialize_with = "input::count")]
    pub multiplier: u32,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FrontCondor {
    #[serde(deserialize_with = "input::count")]
    pub contracts: u32,
    #[serde(deserialize_with = "input::date")]
    pub expiry: NaiveDate,
    #[serde(deserialize_with = "input::number")]
    pub spot: f64,
    #[serde(deserialize_with = "input::number")]
    pub long_put_strike: f64,
    #[serde(deserialize_with = "input::number")]
    pub short_put_strike: f64,
    #[serde(deserialize_with = "input::number")]
    pub short_call_strike: f64,
    #[serde(deserialize_with = "input::number")]
    pub long_call_strike: f64,
    #[serde(deserialize_with = "input::number")]
    pub net_credit_usd: f64,
    #[serde(deserialize_with = "input::number")]
    pub implied_vol: f64,
    #[serde(deserialize_with = "input::number")]
    pub rate: f64,
    #[serde(default, deserialize_with = "input::number")]
    pub dividend_yield: f64,
    #[serde(default = "multiplier_default", deserialize_with = "input::count")]
    pub multiplier: u32,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Signals {
    #[serde(deserialize_with = "input::number")]
    pub price_to_cash_flow: f64,
    /// Cumulative advance/decline line, daily, oldest first.
    #[serde(deserialize_with = "input::numbers")]
    pub advance_decline_line: Vec<f64>,
    /// Second-month minus front-month VIX future, daily closes, oldest first.
    #[serde(deserialize_with = "input::numbers")]
    pub vix_term_spread: Vec<f64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Book {
    #[serde(deserialize_with = "input::number")]
    pub equity_value_usd: f64,
    #[serde(deserialize_with = "input::number")]
    pub debt_value_usd: f64,
    #[serde(deserialize_with = "input::number")]
    pub beta: f64,
    #[serde(deserialize_with = "input::number")]
    pub risk_free_rate: f64,
    #[serde(deserialize_with = "input::number")]
    pub equity_risk_premium: f64,
    #[serde(deserialize_with = "input::number")]
    pub cost_of_debt: f64,
    #[serde(deserialize_with = "input::number")]
    pub tax_rate: f64,
    #[serde(default, deserialize_with = "input::number")]
    pub ddm_weight: f64,
    #[serde(
        default,
        deserialize_with = "input::number_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub dividend_next_usd: Option<f64>,
    #[serde(
        default,
        deserialize_with = "input::number_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub share_price_usd: Option<f64>,
    #[serde(
        default,
        deserialize_with = "input::number_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub dividend_growth: Option<f64>,
    #[serde(deserialize_with = "input::number")]
    pub layer_cost_of_capital: f64,
    #[serde(deserialize_with = "input::number")]
    pub cash_usd: f64,
    #[serde(deserialize_with = "input::number")]
    pub marketable_securities_usd: f64,
    #[serde(deserialize_with = "input::number")]
    pub receivables_usd: f64,
    #[serde(deserialize_with = "input::number")]
    pub current_liabilities_usd: f64,
    #[serde(deserialize_with = "input::number")]
    pub ppi_loss_per_sigma_usd: f64,
    #[serde(deserialize_with = "input::number")]
    pub reer_loss_per_sigma_usd: f64,
    #[serde(default, deserialize_with = "input::number")]
    pub factor_correlation: f64,
    /// At most `CASH_FLOWS_MAX` (checked by the validation).
    #[serde(deserialize_with = "input::tables")]
    pub structure_cash_flows: Vec<CashFlow>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CashFlow {
    #[serde(deserialize_with = "input::date")]
    pub date: NaiveDate,
    /// Negative = paid out.
    #[serde(deserialize_with = "input::number")]
    pub amount_usd: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// At most `BLACKOUTS_MAX` (checked by the validation).
    #[serde(default, deserialize_with = "input::tables")]
    pub blackouts: Vec<Blackout>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Blackout {
    #[serde(deserialize_with = "input::text")]
    pub name: String,
    #[serde(deserialize_with = "input::timestamp")]
    pub start: DateTime<Utc>,
    #[serde(deserialize_with = "input::timestamp")]
    pub end: DateTime<Utc>,
}

/// Default contract multiplier for both layers and the condor (SPX and VIX options).
fn multiplier_default() -> u32 {
    100
}

impl Proposal {
    /// Reads and validates a proposal file: applies the defaults of the methodology, then
    /// checks every rule of its validation list except the policy-dependent minimum series
    /// lengths, which `evaluate` checks.
    pub fn from_toml_str(text: &str) -> Result<Proposal, InputError> {
        let proposal: Proposal = input::read(text, "proposal")?;
        proposal.validate()?;
        Ok(proposal)
    }

    /// The proposal as TOML with every default written out; `from_toml_str` of the result
    /// equals `self`.
    pub fn to_toml_string(&self) -> String {
        // Plain structs of numbers, strings and chrono values: serialization cannot fail.
        toml::to_string(self).expect("proposal serializes to TOML")
    }

    /// Moves the whole proposal in time by `delta`: every timestamp by `delta`, every date by
    /// the number of calendar days that `as_of`'s UTC date moves, so that all day counts
    /// measured from the valuation date stay the same. Used by demos to move the example to
    /// today. Panics only if a date leaves chrono's range (about +-262,000 years).
    pub fn shift_times(&mut self, delta: Duration) {
        let as_of_shifted = self.roll.as_of + delta;
        let days =
            Duration::days((as_of_shifted.date_naive() - self.roll.as_of.date_naive()).num_days());
        self.roll.as_of = as_of_shifted;
        self.roll.execute_after += delta;
        self.roll.execute_before += delta;
        self.next_layer.expiry += days;
        self.front_condor.expiry += days;
        for flow in &mut self.book.structure_cash_flows {
            flow.date += days;
        }
        for blackout in &mut self.calendar.blackouts {
            blackout.start += delta;
            blackout.end += delta;
        }
    }

    pub fn contracts_requested(&self) -> u32 {
        self.next_layer.contracts
    }

    /// The outlay `X` of the request in USD (methodology step 5): what the proposal draws on
    /// its closed layer's budget.
    pub fn requested_outlay_usd(&self) -> f64 {
        let n = &self.next_layer;
        f64::from(n.contracts) * (n.premium_usd * f64::from(n.multiplier))
    }

    /// Moves the proposal to closed layer `id` with fees `fees_usd`: the demo and tests give
    /// each layer its own id and numbers (one layer, one set of numbers).
    pub fn set_closed_layer(&mut self, id: &str, fees_usd: f64) {
        self.closed_layer.id = Some(id.to_string());
        self.closed_layer.fees_usd = fees_usd;
    }

    pub fn set_contracts_requested(&mut self, n: u32) {
        self.next_layer.contracts = n;
    }

    /// The UTC date of `as_of`, from which every `T` is measured.
    pub fn valuation_date(&self) -> NaiveDate {
        self.roll.as_of.date_naive()
    }
}
