//! The methodology's validation list for a typed proposal: finiteness, ranges, orders, dates
//! and limits. A violation is an input error naming the field and the rule, not a failed check.

use super::proposal::Proposal;
use super::{InputError, BLACKOUTS_MAX, CASH_FLOWS_MAX, IDENTIFIER_CHARS_MAX, SERIES_VALUES_MAX};

impl Proposal {
    /// Every rule of the methodology's validation list that does not depend on the policy.
    pub fn validate(&self) -> Result<(), InputError> {
        let c = &self.closed_layer;
        if let Some(id) = &c.id {
            identifier("closed_layer.id", id)?;
        }
        at_least_one("closed_layer.contracts", c.contracts)?;
        at_least_one("closed_layer.multiplier", c.multiplier)?;
        positive("closed_layer.entry_premium_usd", c.entry_premium_usd)?;
        non_negative("closed_layer.exit_premium_usd", c.exit_premium_usd)?;
        non_negative("closed_layer.fees_usd", c.fees_usd)?;

        let n = &self.next_layer;
        at_least_one("next_layer.contracts", n.contracts)?;
        at_least_one("next_layer.multiplier", n.multiplier)?;
        positive("next_layer.strike", n.strike)?;
        positive("next_layer.premium_usd", n.premium_usd)?;
        if let Some(put) = n.put_premium_usd {
            positive("next_layer.put_premium_usd", put)?;
        }
        positive("next_layer.futures_price", n.futures_price)?;
        positive("next_layer.implied_vol", n.implied_vol)?;
        finite("next_layer.rate", n.rate)?;

        let f = &self.front_condor;
        at_least_one("front_condor.contracts", f.contracts)?;
        at_least_one("front_condor.multiplier", f.multiplier)?;
        positive("front_condor.spot", f.spot)?;
        positive("front_condor.long_put_strike", f.long_put_strike)?;
        positive("front_condor.short_put_strike", f.short_put_strike)?;
        positive("front_condor.short_call_strike", f.short_call_strike)?;
        positive("front_condor.long_call_strike", f.long_call_strike)?;
        non_negative("front_condor.net_credit_usd", f.net_credit_usd)?;
        positive("front_condor.implied_vol", f.implied_vol)?;
        finite("front_condor.rate", f.rate)?;
        non_negative("front_condor.dividend_yield", f.dividend_yield)?;
        let strikes = [
            ("long_put_strike", f.long_put_strike),
            ("short_put_strike", f.short_put_strike),
            ("short_call_strike", f.short_call_strike),
            ("long_call_strike", f.long_call_strike),
        ];
        for pair in strikes.windows(2) {
            if pair[0].1 >= pair[1].1 {
                return Err(InputError::new(
                    format!("front_condor.{}", pair[1].0),
                    format!(
                        "must be above front_condor.{} (strikes ordered long_put < short_put < short_call < long_call), got {} <= {}",
                        pair[0].0, pair[1].1, pair[0].1
                    ),
                ));
            }
        }
        let wing_usd =
            (f.short_put_strike - f.long_put_strike).max(f.long_call_strike - f.short_call_strike);
        if f.net_credit_usd >= wing_usd {
            return Err(InputError::new(
                "front_condor.net_credit_usd",
                format!(
                    "must be below the wider wing {wing_usd}, got {}",
                    f.net_credit_usd
                ),
            ));
        }

        let valuation = self.valuation_date();
        for (field, expiry) in [
            ("next_layer.expiry", n.expiry),
            ("front_condor.expiry", f.expiry),
        ] {
            if expiry <= valuation {
                return Err(InputError::new(
                    field,
                    format!("must be after the valuation date {valuation} (UTC date of roll.as_of), got {expiry}"),
                ));
            }
        }

        let s = &self.signals;
        positive("signals.price_to_cash_flow", s.price_to_cash_flow)?;
        series("signals.advance_decline_line", &s.advance_decline_line)?;
        series("signals.vix_term_spread", &s.vix_term_spread)?;

        self.validate_book()?;

        let blackouts = &self.calendar.blackouts;
        if blackouts.len() > BLACKOUTS_MAX {
            return Err(InputError::new(
                "calendar.blackouts",
                format!(
                    "must have at most {BLACKOUTS_MAX} entries, got {}",
                    blackouts.len()
                ),
            ));
        }
        for (i, b) in blackouts.iter().enumerate() {
            if b.start >= b.end {
                return Err(InputError::new(
                    format!("calendar.blackouts[{i}].start"),
                    format!(
                        "must be before end, got start {} >= end {}",
                        b.start.to_rfc3339(),
                        b.end.to_rfc3339()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_book(&self) -> Result<(), InputError> {
        let b = &self.book;
        positive("book.equity_value_usd", b.equity_value_usd)?;
        non_negative("book.debt_value_usd", b.debt_value_usd)?;
        finite("book.beta", b.beta)?;
        finite("book.risk_free_rate", b.risk_free_rate)?;
        finite("book.equity_risk_premium", b.equity_risk_premium)?;
        finite("book.cost_of_debt", b.cost_of_debt)?;
        unit_interval("book.tax_rate", b.tax_rate)?;
        unit_interval("book.ddm_weight", b.ddm_weight)?;
        if let Some(d) = b.dividend_next_usd {
            finite("book.dividend_next_usd", d)?;
        }
        if let Some(g) = b.dividend_growth {
            finite("book.dividend_growth", g)?;
        }
        if let Some(price) = b.share_price_usd {
            finite("book.share_price_usd", price)?;
        }
        if b.ddm_weight > 0.0 {
            let dividend_fields = [
                ("book.dividend_next_usd", b.dividend_next_usd),
                ("book.share_price_usd", b.share_price_usd),
                ("book.dividend_growth", b.dividend_growth),
            ];
            for (field, value) in dividend_fields {
                if value.is_none() {
                    return Err(InputError::new(
                        field,
                        "is required when book.ddm_weight > 0",
                    ));
                }
            }
            positive("book.share_price_usd", b.share_price_usd.unwrap_or(0.0))?;
        }
        finite("book.layer_cost_of_capital", b.layer_cost_of_capital)?;
        non_negative("book.cash_usd", b.cash_usd)?;
        non_negative(
            "book.marketable_securities_usd",
            b.marketable_securities_usd,
        )?;
        non_negative("book.receivables_usd", b.receivables_usd)?;
        positive("book.current_liabilities_usd", b.current_liabilities_usd)?;
        non_negative("book.ppi_loss_per_sigma_usd", b.ppi_loss_per_sigma_usd)?;
        non_negative("book.reer_loss_per_sigma_usd", b.reer_loss_per_sigma_usd)?;
        finite("book.factor_correlation", b.factor_correlation)?;
        if !(-1.0..=1.0).contains(&b.factor_correlation) {
            return Err(InputError::new(
                "book.factor_correlation",
                format!("must be in [-1, 1], got {}", b.factor_correlation),
            ));
        }
        let flows = &b.structure_cash_flows;
        if flows.len() > CASH_FLOWS_MAX {
            return Err(InputError::new(
                "book.structure_cash_flows",
                format!(
                    "must have at most {CASH_FLOWS_MAX} entries, got {}",
                    flows.len()
                ),
            ));
        }
        for (i, flow) in flows.iter().enumerate() {
            // The field name is only built for the error (this runs on every evaluation).
            if !flow.amount_usd.is_finite() {
                finite(
                    &format!("book.structure_cash_flows[{i}].amount_usd"),
                    flow.amount_usd,
                )?;
            }
        }
        let has_negative = flows.iter().any(|f| f.amount_usd < 0.0);
        let has_positive = flows.iter().any(|f| f.amount_usd > 0.0);
        if !(has_negative && has_positive) {
            return Err(InputError::new(
                "book.structure_cash_flows",
                "must contain at least one negative and one positive amount_usd (an IRR needs both)",
            ));
        }
        Ok(())
    }
}

fn finite(field: &str, x: f64) -> Result<(), InputError> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(InputError::new(
            field,
            format!("must be a finite number, got {x}"),
        ))
    }
}

fn positive(field: &str, x: f64) -> Result<(), InputError> {
    finite(field, x)?;
    if x > 0.0 {
        Ok(())
    } else {
        Err(InputError::new(field, format!("must be > 0, got {x}")))
    }
}

fn non_negative(field: &str, x: f64) -> Result<(), InputError> {
    finite(field, x)?;
    if x >= 0.0 {
        Ok(())
    } else {
        Err(InputError::new(field, format!("must be >= 0, got {x}")))
    }
}

fn unit_interval(field: &str, x: f64) -> Result<(), InputError> {
    finite(field, x)?;
    if (0.0..=1.0).contains(&x) {
        Ok(())
    } else {
        Err(InputError::new(
            field,
            format!("must be in [0, 1], got {x}"),
        ))
    }
}

fn at_least_one(field: &str, n: u32) -> Result<(), InputError> {
    if n >= 1 {
        Ok(())
    } else {
        Err(InputError::new(field, format!("must be >= 1, got {n}")))
    }
}

/// An identifier that ledgers group by (`closed_layer.id`, a proposal id): 1 to
/// `IDENTIFIER_CHARS_MAX` ASCII letters, digits and `-_.:/`. ASCII only, so that two ids that
/// look alike are alike (no Cyrillic `а` beside a Latin `a`, no invisible characters).
pub(crate) fn identifier(field: &str, text: &str) -> Result<(), InputError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.:/".contains(c);
    if let Some(c) = text.chars().find(|&c| !allowed(c)) {
        return Err(InputError::new(
            field,
            format!(
                "may hold only ASCII letters, digits and -_.:/, got {c:?} (U+{:04X})",
                u32::from(c)
            ),
        ));
    }
    // ASCII from here on: bytes are characters.
    if text.is_empty() || text.len() > IDENTIFIER_CHARS_MAX {
        return Err(InputError::new(
            field,
            format!(
                "must be 1 to {IDENTIFIER_CHARS_MAX} characters, got {}",
                text.len()
            ),
        ));
    }
    Ok(())
}

fn series(field: &str, values: &[f64]) -> Result<(), InputError> {
    if values.len() > SERIES_VALUES_MAX {
        return Err(InputError::new(
            field,
            format!(
                "must have at most {SERIES_VALUES_MAX} entries, got {}",
                values.len()
            ),
        ));
    }
    // The field name is only built for the error (this runs on every evaluation).
    if let Some(i) = values.iter().position(|x| !x.is_finite()) {
        finite(&format!("{field}[{i}]"), values[i])?;
    }
    Ok(())
}
