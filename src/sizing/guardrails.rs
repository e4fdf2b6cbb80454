//! `evaluate`: the methodology's computation, steps 1 to 12, as one pure function.

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};

use super::finance::{
    capm_cost_of_equity, cost_of_equity, gordon_growth_cost_of_equity, realized_profit_usd,
    stress_loss_usd, wacc, xirr, XIRR_RATE_MAX, XIRR_RATE_MIN,
};
use super::indicators::{macd, wilder_rsi};
use super::options::{black76_price, bsm_price, bsm_theta_per_year, OptionKind};
use super::report::{Caps, Check, CoefficientReport, Metrics, SizingReport, Verdict};
use super::{Draws, InputError, Policy, Proposal};

/// `floor(x)` of the methodology: `floor(x + 1e-9)`, so that `100 * 1.13 = 112.99999999999999`
/// counts as 113.
const FLOOR_SLACK: f64 = 1e-9;
/// Denominators in USD per share below this count as zero: a model price or an extrinsic
/// value of 1e-12 USD is "worthless", and dividing by it must still give a finite number.
const PRICE_USD_EPSILON: f64 = 1e-12;
const DAYS_PER_YEAR: f64 = 365.0;
/// Room for a check message: every message of the worked example fits, so each is built with
/// one allocation instead of growing (`format!` starts small and reallocates as it writes).
const MESSAGE_CAPACITY: usize = 128;

/// `format!` into a `String` of `MESSAGE_CAPACITY`; the text is exactly `format!`'s.
macro_rules! message {
    ($($arg:tt)*) => {{
        let mut text = String::with_capacity(MESSAGE_CAPACITY);
        // Writing into a String cannot fail.
        let _ = std::fmt::Write::write_fmt(&mut text, format_args!($($arg)*));
        text
    }};
}

/// `floor(x + 1e-9)` as a contract count, clamped to [0, u32::MAX] (never negative).
fn floor_contracts(x: f64) -> u32 {
    let n = (x + FLOOR_SLACK).floor();
    if n.is_nan() || n <= 0.0 {
        0
    } else if n >= u32::MAX as f64 {
        u32::MAX
    } else {
        n as u32
    }
}

fn days(a: NaiveDate, b: NaiveDate) -> i64 {
    (b - a).num_days()
}

/// Evaluates a roll proposal against a policy at time `now`, with what other proposals already
/// drew on the same closed layer (`Draws::none()` when nothing is drawn or there is no ledger).
/// Input errors (including series too short for the policy's indicator periods, flows without
/// an IRR in the bracket, and draws out of bounds) are returned as `InputError`; failed
/// guardrails are reported in the `SizingReport`.
pub fn evaluate(
    proposal: &Proposal,
    policy: &Policy,
    draws: &Draws,
    now: DateTime<Utc>,
) -> Result<SizingReport, InputError> {
    evaluate_hashed(proposal, policy, &policy.hash_hex(), draws, now)
}

/// `evaluate` with the policy's hash already known: `policy_hash` must be `policy.hash_hex()`
/// (the governance in force keeps it, checked when the policy was adopted; a verifier
/// re-evaluates every recorded roll, and hashing the policy was half of an evaluation).
pub fn evaluate_hashed(
    proposal: &Proposal,
    policy: &Policy,
    policy_hash: &str,
    draws: &Draws,
    now: DateTime<Utc>,
) -> Result<SizingReport, InputError> {
    debug_assert_eq!(policy_hash, policy.hash_hex(), "the hash of this policy");
    proposal.validate()?;
    policy.validate()?;
    draws.validate_for(proposal.closed_layer.id.as_deref())?;
    // `-0.0 + 0.0` is `0.0`: a report never shows a negative zero drawn.
    let drawn_outlay_usd = draws.outlay_usd + 0.0;
    let drawn_contracts = draws.contracts;
    let p = proposal;
    let cp = &policy.coefficient;
    let valuation = p.valuation_date();

    // 1. Realized profit.
    let c = &p.closed_layer;
    let profit_usd = realized_profit_usd(
        c.contracts,
        c.entry_premium_usd,
        c.exit_premium_usd,
        c.multiplier,
        c.fees_usd,
    );

    // 2. Coefficient.
    let rsi_period = cp.rsi_period as usize;
    let ad_line = &p.signals.advance_decline_line;
    let rsi = wilder_rsi(ad_line, rsi_period).ok_or_else(|| {
        InputError::new(
            "signals.advance_decline_line",
            format!(
                "must have at least {} values (coefficient.rsi_period + 1), got {}",
                rsi_period + 1,
                ad_line.len()
            ),
        )
    })?;
    let pcf_score =
        ((p.signals.price_to_cash_flow - cp.pcf_low) / (cp.pcf_high - cp.pcf_low)).clamp(0.0, 1.0);
    let score = cp.pcf_weight * pcf_score + (1.0 - cp.pcf_weight) * rsi / 100.0;
    let base = cp.floor + (cp.cap - cp.floor) * score;

    // 3. Theta cash press on the condor's two short legs.
    let f = &p.front_condor;
    let condor_days = days(valuation, f.expiry);
    let condor_t_years = condor_days as f64 / DAYS_PER_YEAR;
    let leg = |kind, strike| {
        let price = bsm_price(
            kind,
            f.spot,
            strike,
            condor_t_years,
            f.rate,
            f.dividend_yield,
            f.implied_vol,
        );
        let theta_per_day = bsm_theta_per_year(
            kind,
            f.spot,
            strike,
            condor_t_years,
            f.rate,
            f.dividend_yield,
            f.implied_vol,
        ) / DAYS_PER_YEAR;
        let intrinsic = match kind {
            OptionKind::Call => (f.spot - strike).max(0.0),
            OptionKind::Put => (strike - f.spot).max(0.0),
        };
        (theta_per_day, price - intrinsic)
    };
    let (theta_put, extrinsic_put) = leg(OptionKind::Put, f.short_put_strike);
    let (theta_call, extrinsic_call) = leg(OptionKind::Call, f.short_call_strike);
    // A European option can trade below intrinsic (deep in the money, with carry), so the
    // extrinsic sum may be ~0 or negative: then whatever theta remains burns "all" the time
    // value, and the floored denominator gives a huge finite decay that turns the press on.
    // With no theta at all (worthless short legs) the decay is 0.
    let theta_abs_sum = theta_put.abs() + theta_call.abs();
    let decay_per_day = if theta_abs_sum == 0.0 {
        0.0
    } else {
        (theta_abs_sum / (extrinsic_put + extrinsic_call).max(PRICE_USD_EPSILON)).min(f64::MAX)
    };
    let theta_press = decay_per_day >= cp.theta_press_decay_per_day_min;
    let coefficient = if theta_press {
        base * cp.theta_press_multiplier
    } else {
        base
    };

    // 4-5. Budget: the layer's total, what the draws leave of it, and the outlay of the request.
    let n = &p.next_layer;
    let requested = n.contracts;
    let contract_usd = n.premium_usd * f64::from(n.multiplier);
    let outlay_usd = p.requested_outlay_usd();
    let budget_total_usd = coefficient * profit_usd.max(0.0);
    let budget_usd = (budget_total_usd - drawn_outlay_usd).max(0.0);

    // 6. Growth cap: the layer's total and what the draws leave of it.
    let growth_total_contracts =
        floor_contracts(f64::from(c.contracts) * policy.growth.layer_growth_max);
    // At most the total, so it fits in u32.
    let growth_contracts = u64::from(growth_total_contracts).saturating_sub(drawn_contracts) as u32;

    // 7. WACC cap.
    let b = &p.book;
    let capm = capm_cost_of_equity(b.risk_free_rate, b.beta, b.equity_risk_premium);
    let gordon = match (b.dividend_next_usd, b.share_price_usd, b.dividend_growth) {
        (Some(d1), Some(p0), Some(g)) if b.ddm_weight > 0.0 => {
            Some(gordon_growth_cost_of_equity(d1, p0, g))
        }
        _ => None,
    };
    let r_e = cost_of_equity(capm, gordon, b.ddm_weight);
    let value_usd = b.equity_value_usd + b.debt_value_usd;
    let wacc_now = wacc(
        b.equity_value_usd,
        b.debt_value_usd,
        r_e,
        b.cost_of_debt,
        b.tax_rate,
    );
    let spread = b.layer_cost_of_capital - wacc_now;
    let wacc_delta = outlay_usd * spread / (value_usd + outlay_usd);
    let wacc_delta_bps = wacc_delta * 10_000.0;
    let bps_limit = policy.wacc.incremental_bps_max / 10_000.0;
    let wacc_usd = if spread <= bps_limit {
        None
    } else {
        Some(bps_limit * value_usd / (spread - bps_limit))
    };

    // 8. Liquidity cap under stress.
    let lp = &policy.liquidity;
    let liquid_usd = b.cash_usd + b.marketable_securities_usd + b.receivables_usd;
    let stress_usd = stress_loss_usd(
        lp.stress_sigma,
        b.ppi_loss_per_sigma_usd,
        b.reer_loss_per_sigma_usd,
        b.factor_correlation,
    );
    let quick_ratio_now = liquid_usd / b.current_liabilities_usd;
    let quick_ratio_after = (liquid_usd - outlay_usd - stress_usd) / b.current_liabilities_usd;
    let liquidity_usd =
        (liquid_usd - stress_usd - lp.quick_ratio_min * b.current_liabilities_usd).max(0.0);

    // 9. IRR cap.
    let flows: Vec<(NaiveDate, f64)> = b
        .structure_cash_flows
        .iter()
        .map(|f| (f.date, f.amount_usd))
        .collect();
    let irr = xirr(&flows).ok_or_else(|| {
        InputError::new(
            "book.structure_cash_flows",
            format!("have no IRR in [{XIRR_RATE_MIN}, {XIRR_RATE_MAX}]"),
        )
    })?;
    let wing_usd =
        (f.short_put_strike - f.long_put_strike).max(f.long_call_strike - f.short_call_strike);
    let capital_usd =
        (wing_usd - f.net_credit_usd) * f64::from(f.multiplier) * f64::from(f.contracts);
    let layer_days = days(valuation, n.expiry);
    let layer_t_years = layer_days as f64 / DAYS_PER_YEAR;
    let layer_cost_rate = outlay_usd / capital_usd / layer_t_years;
    let irr_required = policy.structure.require_layer_cost_within_irr;
    let irr_usd = irr_required.then(|| (irr * capital_usd * layer_t_years).max(0.0));

    // 10. Contracts max: the tightest cap in USD, in whole contracts, and the growth cap; the
    // budget and growth caps are what the draws leave.
    let cap_contracts = |cap_usd: f64| floor_contracts(cap_usd / contract_usd);
    let usd_caps = [Some(budget_usd), wacc_usd, Some(liquidity_usd), irr_usd];
    let tightest_usd = usd_caps
        .iter()
        .flatten()
        .fold(f64::INFINITY, |a, &b| a.min(b));
    let contracts_max = cap_contracts(tightest_usd).min(growth_contracts);

    // 11. Gates.
    let sp = &policy.signals;
    let spread_series = &p.signals.vix_term_spread;
    let macd_value = macd(
        spread_series,
        sp.macd_fast as usize,
        sp.macd_slow as usize,
        sp.macd_signal as usize,
    )
    .ok_or_else(|| {
        InputError::new(
            "signals.vix_term_spread",
            format!(
                "must have at least {} values (signals.macd_slow + signals.macd_signal - 1), got {}",
                (sp.macd_slow + sp.macd_signal - 1),
                spread_series.len()
            ),
        )
    })?;
    let time_shift_days = days(f.expiry, n.expiry);
    let model_usd = black76_price(
        OptionKind::Call,
        n.futures_price,
        n.strike,
        layer_t_years,
        n.rate,
        n.implied_vol,
    );
    // A model price of ~0 gives a huge finite deviation, which fails any sane limit.
    let quote_deviation = (n.premium_usd - model_usd).abs() / model_usd.max(PRICE_USD_EPSILON);
    let parity_gap_usd = n.put_premium_usd.map(|put_usd| {
        (n.premium_usd - put_usd) - (-n.rate * layer_t_years).exp() * (n.futures_price - n.strike)
    });
    let r = &p.roll;
    let window_ordered = r.execute_after < r.execute_before;
    // A roll cannot be executed in a window that has ended (at `execute_before` it has).
    let window_ended = now >= r.execute_before;
    let pad = Duration::minutes(i64::from(policy.timing.blackout_padding_minutes));
    let blackouts_hit: Vec<&str> = p
        .calendar
        .blackouts
        .iter()
        .filter(|bo| r.execute_after < bo.end + pad && bo.start - pad < r.execute_before)
        .map(|bo| bo.name.as_str())
        .collect();
    let age_minutes = (now - r.as_of).num_milliseconds() as f64 / 60_000.0;

    // The size checks pass exactly when the request fits in that cap's whole contracts; that
    // is `value <= limit` with the same 1e-9-of-a-contract slack as `floor`, so a request of
    // `contracts_max` always passes every size check (no rounding-edge contradiction).
    let fits = |cap_usd: Option<f64>| cap_usd.is_none_or(|usd| requested <= cap_contracts(usd));
    // Twelve checks at most (parity is optional): one allocation.
    let mut checks = Vec::with_capacity(12);
    checks.extend([
        Check {
            id: "profit".into(),
            passed: profit_usd > 0.0,
            value: profit_usd,
            limit: 0.0,
            message: message!("realized profit {:.2} USD must be > 0", profit_usd),
        },
        // Passes exactly when the request fits in what the draws leave: `X + drawn <= total`.
        Check {
            id: "budget".into(),
            passed: fits(Some(budget_usd)),
            value: outlay_usd + drawn_outlay_usd,
            limit: budget_total_usd,
            message: if drawn_outlay_usd == 0.0 {
                message!(
                    "outlay {:.2} USD vs budget {:.2} USD ({:.4} x profit)",
                    outlay_usd,
                    budget_total_usd,
                    coefficient
                )
            } else {
                message!(
                    "outlay {:.2} USD + {:.2} USD drawn vs budget {:.2} USD ({:.4} x profit)",
                    outlay_usd,
                    drawn_outlay_usd,
                    budget_total_usd,
                    coefficient
                )
            },
        },
        Check {
            id: "growth".into(),
            passed: requested <= growth_contracts,
            // Exact: at most 2^32 + 10^12, far below 2^53.
            value: (u64::from(requested) + drawn_contracts) as f64,
            limit: f64::from(growth_total_contracts),
            message: if drawn_contracts == 0 {
                message!(
                    "{requested} contracts vs growth cap {growth_total_contracts} ({} closed x {})",
                    c.contracts,
                    policy.growth.layer_growth_max
                )
            } else {
                message!(
                    "{requested} contracts + {drawn_contracts} drawn vs growth cap {growth_total_contracts} ({} closed x {})",
                    c.contracts,
                    policy.growth.layer_growth_max
                )
            },
        },
        Check {
            id: "wacc".into(),
            passed: fits(wacc_usd),
            value: wacc_delta_bps,
            limit: policy.wacc.incremental_bps_max,
            message: message!(
                "incremental WACC {:.3} bps vs max {} bps (layer cost {:.4} vs WACC {:.4})",
                wacc_delta_bps,
                policy.wacc.incremental_bps_max,
                b.layer_cost_of_capital,
                wacc_now
            ),
        },
        Check {
            id: "liquidity".into(),
            passed: fits(Some(liquidity_usd)),
            value: quick_ratio_after,
            limit: lp.quick_ratio_min,
            message: message!(
                "quick ratio after outlay and {} sigma stress {:.3} vs min {}",
                lp.stress_sigma,
                quick_ratio_after,
                lp.quick_ratio_min
            ),
        },
        Check {
            id: "irr".into(),
            passed: fits(irr_usd),
            value: layer_cost_rate,
            limit: irr,
            message: if irr_required {
                message!(
                    "layer cost {:.4}/yr vs structure IRR {:.4}",
                    layer_cost_rate,
                    irr
                )
            } else {
                message!(
                    "layer cost {:.4}/yr vs structure IRR {:.4} (not required by policy)",
                    layer_cost_rate,
                    irr
                )
            },
        },
        Check {
            id: "macd".into(),
            passed: macd_value.histogram >= 0.0 || !sp.require_macd_support,
            value: macd_value.histogram,
            limit: 0.0,
            message: message!(
                "MACD histogram of the VIX term spread {:.4} must be >= 0{}",
                macd_value.histogram,
                if sp.require_macd_support {
                    ""
                } else {
                    " (not required by policy)"
                }
            ),
        },
        Check {
            id: "time_shift".into(),
            passed: time_shift_days >= i64::from(policy.structure.time_shift_days_min),
            value: time_shift_days as f64,
            limit: f64::from(policy.structure.time_shift_days_min),
            message: message!(
                "layer expires {time_shift_days} days after the condor, min {}",
                policy.structure.time_shift_days_min
            ),
        },
        Check {
            id: "quote".into(),
            passed: quote_deviation <= policy.structure.quote_deviation_max,
            value: quote_deviation,
            limit: policy.structure.quote_deviation_max,
            message: message!(
                "premium {:.4} vs Black-76 model {:.4}: deviation {:.4}, max {}",
                n.premium_usd,
                model_usd,
                quote_deviation,
                policy.structure.quote_deviation_max
            ),
        },
    ]);
    if let Some(gap_usd) = parity_gap_usd {
        checks.push(Check {
            id: "parity".into(),
            passed: gap_usd.abs() <= policy.structure.parity_tolerance_usd,
            value: gap_usd.abs(),
            limit: policy.structure.parity_tolerance_usd,
            message: message!(
                "put-call parity gap {:.4} USD, tolerance {}",
                gap_usd,
                policy.structure.parity_tolerance_usd
            ),
        });
    }
    checks.push(Check {
        id: "timing".into(),
        passed: window_ordered && !window_ended && blackouts_hit.is_empty(),
        value: blackouts_hit.len() as f64,
        limit: 0.0,
        message: if !window_ordered {
            "execute_after must be before execute_before".to_string()
        } else if window_ended {
            message!(
                "the execution window ended at {} (execute_before); now is {}",
                r.execute_before
                    .to_rfc3339_opts(SecondsFormat::AutoSi, true),
                now.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            )
        } else if blackouts_hit.is_empty() {
            message!(
                "window clear of blackouts (padded {} min)",
                policy.timing.blackout_padding_minutes
            )
        } else {
            message!(
                "window overlaps padded blackouts: {}",
                blackouts_hit.join(", ")
            )
        },
    });
    let age_max = f64::from(policy.timing.snapshot_max_age_minutes);
    checks.push(Check {
        id: "staleness".into(),
        passed: (0.0..=age_max).contains(&age_minutes),
        value: age_minutes,
        limit: age_max,
        message: message!("snapshot age {:.1} min, max {age_max}", age_minutes),
    });

    // 12. Verdict and resize.
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.id.as_str())
        .collect();
    let only_size_failed = !failed.is_empty()
        && failed
            .iter()
            .all(|id| super::report::SIZE_CHECK_IDS.contains(id));
    let resize_to = (only_size_failed && contracts_max >= 1).then_some(contracts_max);
    let verdict = if failed.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };

    let report = SizingReport {
        verdict,
        contracts_requested: requested,
        contracts_max,
        resize_to,
        realized_profit_usd: profit_usd,
        policy_hash: policy_hash.to_string(),
        drawn: Draws {
            closed_layer_id: p.closed_layer.id.clone(),
            outlay_usd: drawn_outlay_usd,
            contracts: drawn_contracts,
            proposal_ids: draws.proposal_ids.clone(),
        },
        coefficient: CoefficientReport {
            rsi,
            pcf_score,
            score,
            base,
            decay_per_day,
            theta_press,
            final_value: coefficient,
        },
        caps: Caps {
            budget_usd,
            wacc_usd,
            liquidity_usd,
            irr_usd,
            growth_contracts,
        },
        metrics: Metrics {
            outlay_usd,
            budget_total_usd,
            growth_total_contracts,
            cost_of_equity: r_e,
            wacc: wacc_now,
            wacc_delta_bps,
            quick_ratio_now,
            quick_ratio_after,
            stress_loss_usd: stress_usd,
            structure_irr: irr,
            layer_cost_rate,
            structure_capital_usd: capital_usd,
            macd: macd_value.line,
            macd_signal: macd_value.signal,
            macd_histogram: macd_value.histogram,
            layer_model_price_usd: model_usd,
            quote_deviation,
            parity_gap_usd,
            breakeven_put_usd: f.short_put_strike - f.net_credit_usd,
            breakeven_call_usd: f.short_call_strike + f.net_credit_usd,
            breakeven_layer_usd: n.strike + n.premium_usd,
            expected_move_usd: f.spot * f.implied_vol * condor_t_years.sqrt(),
            time_shift_days,
        },
        checks,
    };
    ensure_finite(&report)?;
    Ok(report)
}

/// Every number in a report must be finite (JSON has no NaN, and a NaN compares false in every
/// check). Extreme but finite inputs (a rate of 1e6) can still overflow `exp`; that is reported
/// as an input error naming the result, instead of a report that cannot be stored.
fn ensure_finite(report: &SizingReport) -> Result<(), InputError> {
    // Fast path without building the paths; the slow path below finds and names the first
    // non-finite number exactly as before.
    if report.all_numbers_finite() {
        return Ok(());
    }
    for (path, value) in report.numbers() {
        if let Some(x) = value {
            if !x.is_finite() {
                return Err(InputError::new(
                    format!("report.{path}"),
                    format!("is {x} for these inputs (check their magnitudes)"),
                ));
            }
        }
    }
    Ok(())
}
