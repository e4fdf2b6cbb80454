//! The worked example of methodology.md, with the default policy at 2026-05-07T14:40:00Z.

use chrono::{DateTime, Utc};
use rollbook::sizing::{evaluate, render, Draws, Policy, Proposal, Verdict};

const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/example-proposal.toml"
));

fn now() -> DateTime<Utc> {
    "2026-05-07T14:40:00Z".parse().unwrap()
}

fn example() -> Proposal {
    Proposal::from_toml_str(EXAMPLE).expect("the worked example is valid")
}

/// Compares with the value as the methodology rounds it: |got - shown| <= half a unit of the
/// last shown decimal (plus float slack).
fn assert_rounds_to(what: &str, got: f64, shown: f64, decimals: i32) {
    let half_unit = 0.5 * 10f64.powi(-decimals) + 1e-12;
    assert!(
        (got - shown).abs() <= half_unit,
        "{what}: got {got}, methodology shows {shown} ({decimals} decimals)"
    );
}

#[test]
fn worked_example_numbers() {
    let report = evaluate(&example(), &Policy::default(), &Draws::none(), now()).unwrap();
    assert_rounds_to("realized profit", report.realized_profit_usd, 10574.00, 2);
    assert_rounds_to("RSI", report.coefficient.rsi, 54.7376, 4);
    assert_rounds_to("coefficient", report.coefficient.final_value, 0.556738, 6);
    assert!(!report.coefficient.theta_press);
    assert_rounds_to("decay", report.coefficient.decay_per_day, 0.0287, 4);
    assert_rounds_to("budget", report.caps.budget_usd, 5886.94, 2);
    assert_rounds_to("IRR", report.metrics.structure_irr, 0.351554, 6);
    assert_rounds_to("IRR cap", report.caps.irr_usd.unwrap(), 2752.33, 2);
    assert_rounds_to(
        "model price",
        report.metrics.layer_model_price_usd,
        2.868614,
        6,
    );
    assert_rounds_to("layer cost", report.metrics.layer_cost_rate, 0.4522, 4);
    assert_eq!(report.contracts_max, 9);
}

#[test]
fn twelve_contracts_fail_only_irr_and_resize_to_nine() {
    let report = evaluate(&example(), &Policy::default(), &Draws::none(), now()).unwrap();
    assert_eq!(report.contracts_requested, 12);
    assert_eq!(report.verdict, Verdict::Fail);
    assert_eq!(report.failed_check_ids(), vec!["irr"]);
    assert_eq!(report.resize_to, Some(9));
    let human = render::human(&report);
    assert!(human.contains("resize to at most 9 contracts"), "{human}");
    assert!(human.contains("FAIL"), "{human}");
}

#[test]
fn nine_or_fewer_contracts_pass_and_ten_fail() {
    for n in 1..=9 {
        let mut proposal = example();
        proposal.set_contracts_requested(n);
        let report = evaluate(&proposal, &Policy::default(), &Draws::none(), now()).unwrap();
        assert_eq!(
            report.verdict,
            Verdict::Pass,
            "{n} contracts: {:?}",
            report.failed_check_ids()
        );
        assert_eq!(report.resize_to, None);
        assert_eq!(report.contracts_max, 9);
    }
    let mut proposal = example();
    proposal.set_contracts_requested(10);
    let report = evaluate(&proposal, &Policy::default(), &Draws::none(), now()).unwrap();
    assert_eq!(report.failed_check_ids(), vec!["irr"]);
    assert_eq!(report.resize_to, Some(9));
}

#[test]
fn every_check_id_is_reported_in_order() {
    let report = evaluate(&example(), &Policy::default(), &Draws::none(), now()).unwrap();
    let ids: Vec<&str> = report.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "profit",
            "budget",
            "growth",
            "wacc",
            "liquidity",
            "irr",
            "macd",
            "time_shift",
            "quote",
            "parity",
            "timing",
            "staleness"
        ]
    );
}

#[test]
fn report_json_has_the_methodology_fields() {
    let report = evaluate(&example(), &Policy::default(), &Draws::none(), now()).unwrap();
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    for key in [
        "verdict",
        "contracts_requested",
        "contracts_max",
        "resize_to",
        "realized_profit_usd",
        "policy_hash",
        "drawn",
        "coefficient",
        "caps",
        "metrics",
        "checks",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    // Nothing drawn on the example's layer: the caps are the layer's totals.
    assert_eq!(
        json["drawn"],
        serde_json::json!({
            "closed_layer_id": "VIX-C22-2026-11-L3",
            "outlay_usd": 0.0,
            "contracts": 0,
            "proposal_ids": [],
        })
    );
    assert_eq!(
        json["metrics"]["budget_total_usd"],
        json["caps"]["budget_usd"]
    );
    assert_eq!(json["metrics"]["growth_total_contracts"], 25);
    assert_eq!(json["verdict"], "fail");
    assert_eq!(json["coefficient"]["final"], json["coefficient"]["base"]);
    for key in [
        "rsi",
        "pcf_score",
        "score",
        "base",
        "decay_per_day",
        "theta_press",
        "final",
    ] {
        assert!(
            json["coefficient"].get(key).is_some(),
            "missing coefficient.{key}"
        );
    }
    for key in [
        "budget_usd",
        "wacc_usd",
        "liquidity_usd",
        "irr_usd",
        "growth_contracts",
    ] {
        assert!(json["caps"].get(key).is_some(), "missing caps.{key}");
    }
    for key in [
        "outlay_usd",
        "budget_total_usd",
        "growth_total_contracts",
        "cost_of_equity",
        "wacc",
        "wacc_delta_bps",
        "quick_ratio_now",
        "quick_ratio_after",
        "stress_loss_usd",
        "structure_irr",
        "layer_cost_rate",
        "structure_capital_usd",
        "macd",
        "macd_signal",
        "macd_histogram",
        "layer_model_price_usd",
        "quote_deviation",
        "parity_gap_usd",
        "breakeven_put_usd",
        "breakeven_call_usd",
        "breakeven_layer_usd",
        "expected_move_usd",
        "time_shift_days",
    ] {
        assert!(json["metrics"].get(key).is_some(), "missing metrics.{key}");
    }
    // The JSON round-trips into an equal report, and agrees with itself.
    let back: rollbook::sizing::SizingReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
    assert_eq!(back.agrees_with(&report), Ok(()));
}

#[test]
fn signer_figures() {
    let report = evaluate(&example(), &Policy::default(), &Draws::none(), now()).unwrap();
    let m = &report.metrics;
    assert_rounds_to("breakeven put", m.breakeven_put_usd, 5587.60, 2);
    assert_rounds_to("breakeven call", m.breakeven_call_usd, 6162.40, 2);
    assert_rounds_to("breakeven layer", m.breakeven_layer_usd, 27.95, 2);
    // 5905 * 0.16 * sqrt(43 / 365)
    assert!((m.expected_move_usd - 5905.0 * 0.16 * (43.0f64 / 365.0).sqrt()).abs() < 1e-9);
    assert_eq!(m.time_shift_days, 33);
    assert_eq!(report.caps.growth_contracts, 25);
    assert_eq!(m.structure_capital_usd, 37600.0);
}

#[test]
fn print_human_view() {
    // Not an assertion: `cargo test print_human_view -- --nocapture` shows the table.
    let report = evaluate(&example(), &Policy::default(), &Draws::none(), now()).unwrap();
    let text = render::human(&report);
    assert!(text.lines().count() < 25, "fits on one screen:\n{text}");
    println!("{text}");
}
