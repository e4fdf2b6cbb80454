//! The roll proposal: typed fields named exactly as the methodology's input table, defaults
//! applied, every rule of the validation list checked.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::input::{as_table, parse_document, Fields, Source};
use super::{InputError, BLACKOUTS_MAX, CASH_FLOWS_MAX, SERIES_VALUES_MAX};

/// A validated roll proposal. Build it with `from_toml_str` (which validates); the serde
/// derives exist for storage, and `evaluate` re-validates whatever it is given.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    pub roll: Roll,
    pub closed_layer: ClosedLayer,
    pub next_layer: NextLayer,
    pub front_condor: FrontCondor,
    pub signals: Signals,
    pub book: Book,
    pub calendar: Calendar,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Roll {
    pub as_of: DateTime<Utc>,
    pub execute_after: DateTime<Utc>,
    pub execute_before: DateTime<Utc>,
    pub note: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClosedLayer {
    pub contracts: u32,
    pub entry_premium_usd: f64,
    pub exit_premium_usd: f64,
    pub multiplier: u32,
    pub fees_usd: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NextLayer {
    pub contracts: u32,
    pub strike: f64,
    pub expiry: NaiveDate,
    pub premium_usd: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub put_premium_usd: Option<f64>,
    pub futures_price: f64,
    pub implied_vol: f64,
    pub rate: f64,
    pub multiplier: u32,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FrontCondor {
    pub contracts: u32,
    pub expiry: NaiveDate,
    pub spot: f64,
    pub long_put_strike: f64,
    pub short_put_strike: f64,
    pub short_call_strike: f64,
    pub long_call_strike: f64,
    pub net_credit_usd: f64,
    pub implied_vol: f64,
    pub rate: f64,
    pub dividend_yield: f64,
    pub multiplier: u32,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Signals {
    pub price_to_cash_flow: f64,
    /// Cumulative advance/decline line, daily, oldest first.
    pub advance_decline_line: Vec<f64>,
    /// Second-month minus front-month VIX future, daily closes, oldest first.
    pub vix_term_spread: Vec<f64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Book {
    pub equity_value_usd: f64,
    pub debt_value_usd: f64,
    pub beta: f64,
    pub risk_free_rate: f64,
    pub equity_risk_premium: f64,
    pub cost_of_debt: f64,
    pub tax_rate: f64,
    pub ddm_weight: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dividend_next_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_price_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dividend_growth: Option<f64>,
    pub layer_cost_of_capital: f64,
    pub cash_usd: f64,
    pub marketable_securities_usd: f64,
    pub receivables_usd: f64,
    pub current_liabilities_usd: f64,
    pub ppi_loss_per_sigma_usd: f64,
    pub reer_loss_per_sigma_usd: f64,
    pub factor_correlation: f64,
    pub structure_cash_flows: Vec<CashFlow>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CashFlow {
    pub date: NaiveDate,
    /// Negative = paid out.
    pub amount_usd: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    pub blackouts: Vec<Blackout>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Blackout {
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Default contract multiplier for both layers and the condor (SPX and VIX options).
const MULTIPLIER_DEFAULT: u32 = 100;

impl Proposal {
    /// Reads and validates a proposal file: applies the defaults of the methodology, then
    /// checks every rule of its validation list except the policy-dependent minimum series
    /// lengths, which `evaluate` checks.
    pub fn from_toml_str(text: &str) -> Result<Proposal, InputError> {
        // Proposals in the plain subset are read in one walk (`proposal_fast`); anything else,
        // and every error, takes the general path below, which names the field at fault.
        if let Some(proposal) = super::proposal_fast::parse(text) {
            return Ok(proposal);
        }
        Self::from_toml_str_general(text)
    }

    /// `from_toml_str` without the fast path: a `toml::Table`, then a walk that names fields.
    pub(crate) fn from_toml_str_general(text: &str) -> Result<Proposal, InputError> {
        let doc = parse_document(text, "proposal")?;
        let root = Fields::new("", &doc, SECTIONS)?;
        let roll = read_roll(&root.table_req("roll", ROLL_KEYS)?)?;
        let closed_layer = read_closed_layer(&root.table_req("closed_layer", CLOSED_LAYER_KEYS)?)?;
        let next_layer = read_next_layer(&root.table_req("next_layer", NEXT_LAYER_KEYS)?)?;
        let front_condor = read_front_condor(&root.table_req("front_condor", FRONT_CONDOR_KEYS)?)?;
        let signals = read_signals(&root.table_req("signals", SIGNALS_KEYS)?)?;

        let t = root.table_req("book", BOOK_KEYS)?;
        let items = t.array_req("structure_cash_flows", CASH_FLOWS_MAX)?;
        let mut structure_cash_flows = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let name = format!("{}[{i}]", t.name("structure_cash_flows"));
            structure_cash_flows.push(read_cash_flow(&as_table(&name, item, CASH_FLOW_KEYS)?)?);
        }
        let book = read_book(&t, structure_cash_flows)?;

        let mut blackouts = Vec::new();
        if let Some(t) = root.table_opt("calendar", CALENDAR_KEYS)? {
            let items = t.array_opt("blackouts", BLACKOUTS_MAX)?;
            for (i, item) in items.into_iter().flatten().enumerate() {
                let name = format!("{}[{i}]", t.name("blackouts"));
                blackouts.push(read_blackout(&as_table(&name, item, BLACKOUT_KEYS)?)?);
            }
        }

        let proposal = Proposal {
            roll,
            closed_layer,
            next_layer,
            front_condor,
            signals,
            book,
            calendar: Calendar { blackouts },
        };
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

    pub fn set_contracts_requested(&mut self, n: u32) {
        self.next_layer.contracts = n;
    }

    /// The UTC date of `as_of`, from which every `T` is measured.
    pub fn valuation_date(&self) -> NaiveDate {
        self.roll.as_of.date_naive()
    }
}

// The sections of a proposal file and their keys, and how each section is read: one set of
// functions over `Source`, which both the general walk (`Fields`, errors that name the field)
// and the fast one (`proposal_fast`) implement, so the two cannot read a field differently.

pub(crate) const SECTIONS: &[&str] = &[
    "roll",
    "closed_layer",
    "next_layer",
    "front_condor",
    "signals",
    "book",
    "calendar",
];
pub(crate) const ROLL_KEYS: &[&str] = &["as_of", "execute_after", "execute_before", "note"];
pub(crate) const CLOSED_LAYER_KEYS: &[&str] = &[
    "contracts",
    "entry_premium_usd",
    "exit_premium_usd",
    "multiplier",
    "fees_usd",
];
pub(crate) const NEXT_LAYER_KEYS: &[&str] = &[
    "contracts",
    "strike",
    "expiry",
    "premium_usd",
    "put_premium_usd",
    "futures_price",
    "implied_vol",
    "rate",
    "multiplier",
];
pub(crate) const FRONT_CONDOR_KEYS: &[&str] = &[
    "contracts",
    "expiry",
    "spot",
    "long_put_strike",
    "short_put_strike",
    "short_call_strike",
    "long_call_strike",
    "net_credit_usd",
    "implied_vol",
    "rate",
    "dividend_yield",
    "multiplier",
];
pub(crate) const SIGNALS_KEYS: &[&str] = &[
    "price_to_cash_flow",
    "advance_decline_line",
    "vix_term_spread",
];
pub(crate) const BOOK_KEYS: &[&str] = &[
    "equity_value_usd",
    "debt_value_usd",
    "beta",
    "risk_free_rate",
    "equity_risk_premium",
    "cost_of_debt",
    "tax_rate",
    "ddm_weight",
    "dividend_next_usd",
    "share_price_usd",
    "dividend_growth",
    "layer_cost_of_capital",
    "cash_usd",
    "marketable_securities_usd",
    "receivables_usd",
    "current_liabilities_usd",
    "ppi_loss_per_sigma_usd",
    "reer_loss_per_sigma_usd",
    "factor_correlation",
    "structure_cash_flows",
];
pub(crate) const CASH_FLOW_KEYS: &[&str] = &["date", "amount_usd"];
pub(crate) const CALENDAR_KEYS: &[&str] = &["blackouts"];
pub(crate) const BLACKOUT_KEYS: &[&str] = &["name", "start", "end"];

pub(crate) fn read_roll<S: Source>(t: &S) -> Result<Roll, S::Error> {
    Ok(Roll {
        as_of: t.timestamp_req("as_of")?,
        execute_after: t.timestamp_req("execute_after")?,
        execute_before: t.timestamp_req("execute_before")?,
        note: t.string_opt("note")?.unwrap_or_default(),
    })
}

pub(crate) fn read_closed_layer<S: Source>(t: &S) -> Result<ClosedLayer, S::Error> {
    Ok(ClosedLayer {
        contracts: t.u32_req("contracts")?,
        entry_premium_usd: t.f64_req("entry_premium_usd")?,
        exit_premium_usd: t.f64_req("exit_premium_usd")?,
        multiplier: t.u32_opt("multiplier")?.unwrap_or(MULTIPLIER_DEFAULT),
        fees_usd: t.f64_opt("fees_usd")?.unwrap_or(0.0),
    })
}

pub(crate) fn read_next_layer<S: Source>(t: &S) -> Result<NextLayer, S::Error> {
    Ok(NextLayer {
        contracts: t.u32_req("contracts")?,
        strike: t.f64_req("strike")?,
        expiry: t.date_req("expiry")?,
        premium_usd: t.f64_req("premium_usd")?,
        put_premium_usd: t.f64_opt("put_premium_usd")?,
        futures_price: t.f64_req("futures_price")?,
        implied_vol: t.f64_req("implied_vol")?,
        rate: t.f64_req("rate")?,
        multiplier: t.u32_opt("multiplier")?.unwrap_or(MULTIPLIER_DEFAULT),
    })
}

pub(crate) fn read_front_condor<S: Source>(t: &S) -> Result<FrontCondor, S::Error> {
    Ok(FrontCondor {
        contracts: t.u32_req("contracts")?,
        expiry: t.date_req("expiry")?,
        spot: t.f64_req("spot")?,
        long_put_strike: t.f64_req("long_put_strike")?,
        short_put_strike: t.f64_req("short_put_strike")?,
        short_call_strike: t.f64_req("short_call_strike")?,
        long_call_strike: t.f64_req("long_call_strike")?,
        net_credit_usd: t.f64_req("net_credit_usd")?,
        implied_vol: t.f64_req("implied_vol")?,
        rate: t.f64_req("rate")?,
        dividend_yield: t.f64_opt("dividend_yield")?.unwrap_or(0.0),
        multiplier: t.u32_opt("multiplier")?.unwrap_or(MULTIPLIER_DEFAULT),
    })
}

pub(crate) fn read_signals<S: Source>(t: &S) -> Result<Signals, S::Error> {
    Ok(Signals {
        price_to_cash_flow: t.f64_req("price_to_cash_flow")?,
        advance_decline_line: t.numbers_req("advance_decline_line", SERIES_VALUES_MAX)?,
        vix_term_spread: t.numbers_req("vix_term_spread", SERIES_VALUES_MAX)?,
    })
}

pub(crate) fn read_cash_flow<S: Source>(t: &S) -> Result<CashFlow, S::Error> {
    Ok(CashFlow {
        date: t.date_req("date")?,
        amount_usd: t.f64_req("amount_usd")?,
    })
}

pub(crate) fn read_blackout<S: Source>(t: &S) -> Result<Blackout, S::Error> {
    Ok(Blackout {
        name: t.string_req("name")?,
        start: t.timestamp_req("start")?,
        end: t.timestamp_req("end")?,
    })
}

/// The book's fields; its cash flows are read by the caller (an array of tables is where the
/// two walks differ).
pub(crate) fn read_book<S: Source>(
    t: &S,
    structure_cash_flows: Vec<CashFlow>,
) -> Result<Book, S::Error> {
    Ok(Book {
        equity_value_usd: t.f64_req("equity_value_usd")?,
        debt_value_usd: t.f64_req("debt_value_usd")?,
        beta: t.f64_req("beta")?,
        risk_free_rate: t.f64_req("risk_free_rate")?,
        equity_risk_premium: t.f64_req("equity_risk_premium")?,
        cost_of_debt: t.f64_req("cost_of_debt")?,
        tax_rate: t.f64_req("tax_rate")?,
        ddm_weight: t.f64_opt("ddm_weight")?.unwrap_or(0.0),
        dividend_next_usd: t.f64_opt("dividend_next_usd")?,
        share_price_usd: t.f64_opt("share_price_usd")?,
        dividend_growth: t.f64_opt("dividend_growth")?,
        layer_cost_of_capital: t.f64_req("layer_cost_of_capital")?,
        cash_usd: t.f64_req("cash_usd")?,
        marketable_securities_usd: t.f64_req("marketable_securities_usd")?,
        receivables_usd: t.f64_req("receivables_usd")?,
        current_liabilities_usd: t.f64_req("current_liabilities_usd")?,
        ppi_loss_per_sigma_usd: t.f64_req("ppi_loss_per_sigma_usd")?,
        reer_loss_per_sigma_usd: t.f64_req("reer_loss_per_sigma_usd")?,
        factor_correlation: t.f64_opt("factor_correlation")?.unwrap_or(0.0),
        structure_cash_flows,
    })
}
