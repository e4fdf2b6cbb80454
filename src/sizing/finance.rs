//! Corporate-finance formulas: realized profit, cost of equity, WACC, stress loss and XIRR.

use chrono::NaiveDate;

/// `P = contracts * (exit - entry) * multiplier - fees`.
pub fn realized_profit_usd(
    contracts: u32,
    entry_premium_usd: f64,
    exit_premium_usd: f64,
    multiplier: u32,
    fees_usd: f64,
) -> f64 {
    f64::from(contracts) * (exit_premium_usd - entry_premium_usd) * f64::from(multiplier) - fees_usd
}

/// CAPM: `r_f + beta * ERP`.
pub fn capm_cost_of_equity(risk_free: f64, beta: f64, equity_risk_premium: f64) -> f64 {
    risk_free + beta * equity_risk_premium
}

/// Gordon growth: `D1 / P0 + g`.
pub fn gordon_growth_cost_of_equity(dividend_next: f64, price: f64, growth: f64) -> f64 {
    dividend_next / price + growth
}

/// CAPM and Gordon growth blended by `ddm_weight` (0 = CAPM only). With weight 0 the dividend
/// inputs are not needed and `gordon` may be `None`.
pub fn cost_of_equity(capm: f64, gordon: Option<f64>, ddm_weight: f64) -> f64 {
    match gordon {
        Some(g) if ddm_weight > 0.0 => (1.0 - ddm_weight) * capm + ddm_weight * g,
        _ => capm,
    }
}

/// `E/V * r_e + D/V * cost_of_debt * (1 - tax_rate)` with `V = E + D`.
pub fn wacc(
    equity_value_usd: f64,
    debt_value_usd: f64,
    cost_of_equity: f64,
    cost_of_debt: f64,
    tax_rate: f64,
) -> f64 {
    let value_usd = equity_value_usd + debt_value_usd;
    equity_value_usd / value_usd * cost_of_equity
        + debt_value_usd / value_usd * cost_of_debt * (1.0 - tax_rate)
}

/// Stress loss of liquid assets: `sigma * sqrt(a^2 + b^2 + 2 rho a b)`.
pub fn stress_loss_usd(sigma: f64, a_usd: f64, b_usd: f64, correlation: f64) -> f64 {
    // With |rho| <= 1 the variance is >= (a - b)^2 >= 0; max(0) only absorbs rounding.
    let variance = (a_usd * a_usd + b_usd * b_usd + 2.0 * correlation * a_usd * b_usd).max(0.0);
    sigma * variance.sqrt()
}

/// Bracket of the XIRR search, and its tolerance on the rate.
pub const XIRR_RATE_MIN: f64 = -0.9999;
pub const XIRR_RATE_MAX: f64 = 1e6;
pub const XIRR_TOLERANCE: f64 = 1e-10;
const NEWTON_STEPS_MAX: usize = 100;
const BISECTION_STEPS_MAX: usize = 200;
/// Grid points used to find a sign change when Newton fails; spaced in ln(1 + r) so that
/// both ends of the very wide bracket are sampled.
const GRID_POINTS: usize = 400;

/// XIRR: the rate `r` in [-0.9999, 1e6] with `sum(amount / (1 + r)^(days(first, date) / 365))
/// = 0`, to 1e-10. Newton from 10% first; if it fails or leaves the bracket, the bracket is
/// scanned for a sign change and bisected. `None` when no root lies in the bracket (also when
/// the flows lack a negative or a positive amount).
pub fn xirr(flows: &[(NaiveDate, f64)]) -> Option<f64> {
    let first = flows.first()?.0;
    let has_negative = flows.iter().any(|f| f.1 < 0.0);
    let has_positive = flows.iter().any(|f| f.1 > 0.0);
    if !has_negative || !has_positive {
        return None;
    }
    let years: Vec<(f64, f64)> = flows
        .iter()
        .map(|(date, amount)| ((*date - first).num_days() as f64 / 365.0, *amount))
        .collect();

    if let Some(rate) = newton(&years) {
        return Some(rate);
    }
    // Scan for the first sign change, then bisect it.
    let u_min = (1.0 + XIRR_RATE_MIN).ln();
    let u_max = (1.0 + XIRR_RATE_MAX).ln();
    let rate_at = |i: usize| {
        let u = u_min + (u_max - u_min) * i as f64 / GRID_POINTS as f64;
        (u.exp() - 1.0).clamp(XIRR_RATE_MIN, XIRR_RATE_MAX)
    };
    let mut lo = XIRR_RATE_MIN;
    let mut f_lo = npv_sign(&years, lo);
    if f_lo == 0.0 {
        return Some(lo);
    }
    for i in 1..=GRID_POINTS {
        let hi = rate_at(i);
        let f_hi = npv_sign(&years, hi);
        if f_hi == 0.0 {
            return Some(hi);
        }
        if f_lo * f_hi < 0.0 {
            return Some(bisect(&years, lo, hi, f_lo));
        }
        lo = hi;
        f_lo = f_hi;
    }
    None
}

/// NPV scaled by a positive factor so that it never overflows: only its sign and its ratio to
/// the derivative are used. Returns (scaled npv, scaled d npv / d r).
fn npv_scaled(years: &[(f64, f64)], rate: f64) -> (f64, f64) {
    let log_base = (1.0 + rate).ln();
    // Largest exponent -t ln(1+r); subtracting it keeps every exp() <= 1.
    let shift = years
        .iter()
        .map(|(t, _)| -t * log_base)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut npv = 0.0;
    let mut slope = 0.0;
    for (t, amount) in years {
        let discount = (-t * log_base - shift).exp();
        npv += amount * discount;
        slope += -t * amount * discount / (1.0 + rate);
    }
    (npv, slope)
}

fn npv_sign(years: &[(f64, f64)], rate: f64) -> f64 {
    // NaN (only possible with amounts near f64::MAX) has no sign: it never brackets a root.
    let (npv, _) = npv_scaled(years, rate);
    if npv > 0.0 {
        1.0
    } else if npv < 0.0 {
        -1.0
    } else if npv == 0.0 {
        0.0
    } else {
        f64::NAN
    }
}

fn newton(years: &[(f64, f64)]) -> Option<f64> {
    let mut rate = 0.1;
    for _ in 0..NEWTON_STEPS_MAX {
        let (npv, slope) = npv_scaled(years, rate);
        if !npv.is_finite() || !slope.is_finite() || slope == 0.0 {
            return None;
        }
        let step = npv / slope;
        let next = rate - step;
        if !(XIRR_RATE_MIN..=XIRR_RATE_MAX).contains(&next) {
            return None;
        }
        if step.abs() <= XIRR_TOLERANCE * 1e-2 * (1.0 + next.abs()) {
            return Some(next);
        }
        rate = next;
    }
    None
}

fn bisect(years: &[(f64, f64)], mut lo: f64, mut hi: f64, mut f_lo: f64) -> f64 {
    for _ in 0..BISECTION_STEPS_MAX {
        let mid = 0.5 * (lo + hi);
        if hi - lo <= XIRR_TOLERANCE * 1e-2 || mid == lo || mid == hi {
            return mid;
        }
        let f_mid = npv_sign(years, mid);
        if f_mid == 0.0 {
            return mid;
        }
        if f_mid * f_lo < 0.0 {
            hi = mid;
        } else {
            lo = mid;
            f_lo = f_mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn xirr_simple_year() {
        let r = xirr(&[(d("2020-01-01"), -100.0), (d("2020-12-31"), 110.0)]).unwrap();
        // 2020 is a leap year: 365 days between the dates, so exactly one "year".
        assert!((r - 0.1).abs() < 1e-12, "{r}");
    }

    #[test]
    fn xirr_bisection_matches_newton() {
        let years = [(0.0, -100.0), (0.5, 30.0), (1.0, 90.0)];
        let newton_rate = newton(&years).unwrap();
        let bisect_rate = bisect(&years, -0.5, 1.0, npv_sign(&years, -0.5));
        assert!((newton_rate - bisect_rate).abs() < 1e-10);
    }

    #[test]
    fn xirr_needs_both_signs() {
        assert!(xirr(&[(d("2020-01-01"), 100.0), (d("2020-06-01"), 10.0)]).is_none());
    }

    #[test]
    fn xirr_extreme_loss_uses_fallback() {
        // 99.9% lost in 366 days: rate near -1, where Newton from 10% overshoots.
        let r = xirr(&[(d("2020-01-01"), -1000.0), (d("2021-01-01"), 1.0)]).unwrap();
        let expected = (1e-3_f64).powf(365.0 / 366.0) - 1.0;
        assert!((r - expected).abs() < 1e-10, "{r} vs {expected}");
    }

    #[test]
    fn xirr_outside_the_bracket_is_none() {
        // 99.9999% lost in a year is below -0.9999.
        assert!(xirr(&[(d("2020-01-01"), -1e6), (d("2021-01-01"), 1.0)]).is_none());
    }
}
