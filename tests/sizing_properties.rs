//! Properties of the sizing core over perturbations of the worked example: outputs are
//! finite, caps are never exceeded, more profit never lowers the budget, a stricter policy
//! never allows more contracts, and neither does more drawn on the layer.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use rollbook::sizing::{evaluate, Draws, Policy, Proposal, SizingReport, Verdict};

const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/example-proposal.toml"
));

fn now() -> DateTime<Utc> {
    "2026-05-07T14:40:00Z".parse().unwrap()
}

/// A realistic but varied proposal: profit, premium, size, signals, book and the condor move.
#[derive(Debug, Clone)]
struct Tweak {
    exit_premium_usd: f64,
    fees_usd: f64,
    closed_contracts: u32,
    requested: u32,
    premium_usd: f64,
    futures_price: f64,
    layer_vol: f64,
    spot: f64,
    condor_vol: f64,
    pcf: f64,
    ad_shift: Vec<f64>,
    spread_last: f64,
    cash_usd: f64,
    layer_cost_of_capital: f64,
    ppi_loss_usd: f64,
    correlation: f64,
    final_flow_usd: f64,
}

fn tweak() -> impl Strategy<Value = Tweak> {
    (
        (0.0..30.0f64, 0.0..500.0f64, 1u32..200, 1u32..300),
        (0.05..20.0f64, 10.0..60.0f64, 0.2..3.0f64),
        (4000.0..8000.0f64, 0.05..0.8f64, 1.0..60.0f64),
        (prop::collection::vec(-500.0..500.0f64, 21), -3.0..3.0f64),
        (
            0.0..5e6f64,
            -0.05..0.5f64,
            0.0..5e5f64,
            -1.0..=1.0f64,
            1.0..1e5f64,
        ),
    )
        .prop_map(
            |(
                (exit_premium_usd, fees_usd, closed_contracts, requested),
                (premium_usd, futures_price, layer_vol),
                (spot, condor_vol, pcf),
                (ad_shift, spread_last),
                (cash_usd, layer_cost_of_capital, ppi_loss_usd, correlation, final_flow_usd),
            )| Tweak {
                exit_premium_usd,
                fees_usd,
                closed_contracts,
                requested,
                premium_usd,
                futures_price,
                layer_vol,
                spot,
                condor_vol,
                pcf,
                ad_shift,
                spread_last,
                cash_usd,
                layer_cost_of_capital,
                ppi_loss_usd,
                correlation,
                final_flow_usd,
            },
        )
}

fn apply(t: &Tweak) -> Proposal {
    let mut p = Proposal::from_toml_str(EXAMPLE).unwrap();
    p.closed_layer.exit_premium_usd = t.exit_premium_usd;
    p.closed_layer.fees_usd = t.fees_usd;
    p.closed_layer.contracts = t.closed_contracts;
    p.set_contracts_requested(t.requested);
    p.next_layer.premium_usd = t.premium_usd;
    p.next_layer.futures_price = t.futures_price;
    p.next_layer.implied_vol = t.layer_vol;
    p.next_layer.put_premium_usd = None;
    p.front_condor.spot = t.spot;
    p.front_condor.implied_vol = t.condor_vol;
    p.signals.price_to_cash_flow = t.pcf;
    for (x, shift) in p.signals.advance_decline_line.iter_mut().zip(&t.ad_shift) {
        *x += shift;
    }
    *p.signals.vix_term_spread.last_mut().unwrap() = t.spread_last;
    p.book.cash_usd = t.cash_usd;
    p.book.layer_cost_of_capital = t.layer_cost_of_capital;
    p.book.ppi_loss_per_sigma_usd = t.ppi_loss_usd;
    p.book.factor_correlation = t.correlation;
    p.book.structure_cash_flows.last_mut().unwrap().amount_usd = t.final_flow_usd;
    p
}

fn numbers(r: &SizingReport) -> Vec<f64> {
    let c = &r.coefficient;
    let m = &r.metrics;
    let mut v = vec![
        r.realized_profit_usd,
        r.drawn.outlay_usd,
        c.rsi,
        c.pcf_score,
        c.score,
        c.base,
        c.decay_per_day,
        c.final_value,
        r.caps.budget_usd,
        r.caps.liquidity_usd,
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
        m.breakeven_put_usd,
        m.breakeven_call_usd,
        m.breakeven_layer_usd,
        m.expected_move_usd,
    ];
    v.extend(r.caps.wacc_usd);
    v.extend(r.caps.irr_usd);
    v.extend(m.parity_gap_usd);
    for check in &r.checks {
        v.push(check.value);
        v.push(check.limit);
    }
    v
}

/// A stricter policy: lower coefficient cap, lower growth max, lower bps max, higher quick
/// ratio min (each by a fraction in [0, 1) of its room).
fn stricter(base: &Policy, s: (f64, f64, f64, f64)) -> Policy {
    let mut p = base.clone();
    p.coefficient.cap -= s.0 * (p.coefficient.cap - p.coefficient.floor);
    p.growth.layer_growth_max *= 1.0 - s.1;
    p.wacc.incremental_bps_max *= 1.0 - s.2;
    p.liquidity.quick_ratio_min += s.3 * 2.0;
    p
}

/// Draws on the example's layer: up to twice its budget (5,886.94 USD) and its growth cap (25).
fn draws() -> impl Strategy<Value = Draws> {
    (0.0..12_000.0f64, 0u64..50).prop_map(|(outlay_usd, contracts)| Draws {
        closed_layer_id: None,
        outlay_usd,
        contracts,
        proposal_ids: Vec::new(),
    })
}

fn passed(r: &SizingReport, id: &str) -> bool {
    r.checks.iter().any(|c| c.id == id && c.passed)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn outputs_are_finite_and_caps_hold(t in tweak()) {
        let p = apply(&t);
        let r = evaluate(&p, &Policy::default(), &Draws::none(), now()).unwrap();
        for x in numbers(&r) {
            prop_assert!(x.is_finite(), "{x} in {r:?}");
        }
        // JSON has no NaN: the report always serializes and reads back equal.
        let json = serde_json::to_string(&r).unwrap();
        let back: SizingReport = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &r);

        let contract_usd = p.next_layer.premium_usd * f64::from(p.next_layer.multiplier);
        let max_usd = f64::from(r.contracts_max) * contract_usd;
        prop_assert!(r.contracts_max <= r.caps.growth_contracts);
        let caps = [Some(r.caps.budget_usd), r.caps.wacc_usd, Some(r.caps.liquidity_usd), r.caps.irr_usd];
        for cap_usd in caps.into_iter().flatten() {
            // The floor's 1e-9 slack is 1e-9 of one contract.
            prop_assert!(max_usd <= cap_usd + 1e-9 * contract_usd * 1.000_001, "{max_usd} > {cap_usd}");
        }
        // At contracts_max (>= 1) every size check passes.
        if r.contracts_max >= 1 {
            let mut at_max = p.clone();
            at_max.set_contracts_requested(r.contracts_max);
            let r_max = evaluate(&at_max, &Policy::default(), &Draws::none(), now()).unwrap();
            for id in r_max.failed_check_ids() {
                prop_assert!(!["budget", "growth", "wacc", "liquidity", "irr"].contains(&id), "{id}");
            }
        }
        // resize_to is only ever contracts_max, below the request.
        if let Some(n) = r.resize_to {
            prop_assert_eq!(n, r.contracts_max);
            prop_assert!(n >= 1 && n < r.contracts_requested);
        }
    }

    #[test]
    fn more_profit_never_lowers_the_budget(t in tweak(), extra in 0.0..20.0f64) {
        let p = apply(&t);
        let mut richer = p.clone();
        richer.closed_layer.exit_premium_usd += extra;
        let a = evaluate(&p, &Policy::default(), &Draws::none(), now()).unwrap();
        let b = evaluate(&richer, &Policy::default(), &Draws::none(), now()).unwrap();
        prop_assert!(b.realized_profit_usd >= a.realized_profit_usd);
        prop_assert!(b.caps.budget_usd >= a.caps.budget_usd);
        prop_assert!(b.contracts_max >= a.contracts_max);
    }

    #[test]
    fn a_stricter_policy_never_allows_more(
        t in tweak(),
        s in (0.0..1.0f64, 0.0..1.0f64, 0.0..1.0f64, 0.0..1.0f64),
        irr_required in any::<bool>(),
    ) {
        let p = apply(&t);
        let mut base = Policy::default();
        base.structure.require_layer_cost_within_irr = irr_required;
        let strict = stricter(&base, s);
        let loose = evaluate(&p, &base, &Draws::none(), now()).unwrap();
        let tight = evaluate(&p, &strict, &Draws::none(), now()).unwrap();
        prop_assert!(tight.contracts_max <= loose.contracts_max, "{} > {}", tight.contracts_max, loose.contracts_max);
        prop_assert!(tight.caps.budget_usd <= loose.caps.budget_usd);
        prop_assert!(tight.caps.growth_contracts <= loose.caps.growth_contracts);
        // Each strictness on its own, too.
        for one in [(s.0, 0.0, 0.0, 0.0), (0.0, s.1, 0.0, 0.0), (0.0, 0.0, s.2, 0.0), (0.0, 0.0, 0.0, s.3)] {
            let r = evaluate(&p, &stricter(&base, one), &Draws::none(), now()).unwrap();
            prop_assert!(r.contracts_max <= loose.contracts_max);
        }
    }

    #[test]
    fn shifting_time_changes_nothing(t in tweak(), minutes in -600_000i64..600_000) {
        let p = apply(&t);
        let delta = chrono::Duration::minutes(minutes);
        let mut shifted = p.clone();
        shifted.shift_times(delta);
        let a = evaluate(&p, &Policy::default(), &Draws::none(), now()).unwrap();
        let b = evaluate(&shifted, &Policy::default(), &Draws::none(), now() + delta).unwrap();
        prop_assert_eq!(a.agrees_with(&b), Ok(()));
    }

    #[test]
    fn more_drawn_never_allows_more(
        t in tweak(),
        less in draws(),
        extra_usd in 0.0..6_000.0f64,
        extra_contracts in 0u64..30,
    ) {
        let p = apply(&t);
        let more = Draws {
            outlay_usd: less.outlay_usd + extra_usd,
            contracts: less.contracts + extra_contracts,
            ..less.clone()
        };
        let a = evaluate(&p, &Policy::default(), &less, now()).unwrap();
        let b = evaluate(&p, &Policy::default(), &more, now()).unwrap();
        prop_assert!(b.contracts_max <= a.contracts_max, "{} > {}", b.contracts_max, a.contracts_max);
        prop_assert!(b.caps.budget_usd <= a.caps.budget_usd);
        prop_assert!(b.caps.growth_contracts <= a.caps.growth_contracts);
        // The layer's totals do not depend on what was drawn.
        prop_assert_eq!(b.metrics.budget_total_usd, a.metrics.budget_total_usd);
        prop_assert_eq!(b.metrics.growth_total_contracts, a.metrics.growth_total_contracts);
        // Whatever passes with more drawn passes with less.
        for id in ["budget", "growth"] {
            prop_assert!(!passed(&b, id) || passed(&a, id), "{id}");
        }
        prop_assert!(b.verdict == Verdict::Fail || a.verdict == Verdict::Pass);
    }

    #[test]
    fn draws_never_let_the_layer_be_overdrawn(t in tweak(), d in draws()) {
        let p = apply(&t);
        let r = evaluate(&p, &Policy::default(), &d, now()).unwrap();
        let total_usd = r.metrics.budget_total_usd;
        let growth_total = u64::from(r.metrics.growth_total_contracts);
        // The caps are what the draws leave of the totals, never negative.
        prop_assert_eq!(r.caps.budget_usd, (total_usd - d.outlay_usd).max(0.0));
        prop_assert_eq!(u64::from(r.caps.growth_contracts), growth_total.saturating_sub(d.contracts));
        // The floor's slack (1e-9 of a contract) and the subtraction's rounding.
        let contract_usd = p.next_layer.premium_usd * f64::from(p.next_layer.multiplier);
        let slack_usd = 1e-9 * (contract_usd + total_usd);
        let max_usd = f64::from(r.contracts_max) * contract_usd;
        prop_assert!(r.contracts_max == 0 || max_usd + d.outlay_usd <= total_usd + slack_usd,
            "{max_usd} + {} > {total_usd}", d.outlay_usd);
        prop_assert!(u64::from(r.contracts_max) + d.contracts <= growth_total.max(d.contracts));
        // A passing check means the request and the draws fit in the layer's totals.
        if passed(&r, "budget") {
            prop_assert!(r.metrics.outlay_usd + d.outlay_usd <= total_usd + slack_usd);
        }
        if passed(&r, "growth") {
            prop_assert!(u64::from(r.contracts_requested) + d.contracts <= growth_total);
        }
        // At contracts_max (>= 1) with the same draws, every size check passes.
        if r.contracts_max >= 1 {
            let mut at_max = p.clone();
            at_max.set_contracts_requested(r.contracts_max);
            let r_max = evaluate(&at_max, &Policy::default(), &d, now()).unwrap();
            for id in r_max.failed_check_ids() {
                prop_assert!(!["budget", "growth", "wacc", "liquidity", "irr"].contains(&id), "{id}");
            }
        }
    }
}
