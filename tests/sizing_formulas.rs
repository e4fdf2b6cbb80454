//! Reference values per formula: every entry of the shared formulas.json, plus textbook and
//! hand-computed values.

use chrono::NaiveDate;
use rollbook::sizing::{
    black76_price, bsm_price, bsm_theta_per_year, capm_cost_of_equity, cost_of_equity, ema_series,
    gordon_growth_cost_of_equity, macd, normal_cdf, realized_profit_usd, stress_loss_usd, wacc,
    wilder_rsi, xirr, OptionKind,
};
use serde_json::Value;

const FORMULAS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/formulas.json"
));

fn kind(inputs: &Value) -> OptionKind {
    match inputs["kind"].as_str() {
        Some("call") => OptionKind::Call,
        Some("put") => OptionKind::Put,
        other => panic!("unknown option kind {other:?}"),
    }
}

fn num(inputs: &Value, key: &str) -> f64 {
    inputs[key]
        .as_f64()
        .unwrap_or_else(|| panic!("input {key} missing"))
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[test]
fn every_formulas_json_entry() {
    let entries: Vec<Value> = serde_json::from_str(FORMULAS).unwrap();
    assert!(!entries.is_empty());
    for entry in &entries {
        let function = entry["function"].as_str().unwrap();
        let inputs = &entry["inputs"];
        let expected = entry["expected"].as_f64().unwrap();
        let tolerance = entry["tolerance"].as_f64().unwrap();
        let got = match function {
            "bsm_price" => bsm_price(
                kind(inputs),
                num(inputs, "spot"),
                num(inputs, "strike"),
                num(inputs, "t_years"),
                num(inputs, "rate"),
                num(inputs, "dividend_yield"),
                num(inputs, "vol"),
            ),
            "black76_price" => black76_price(
                kind(inputs),
                num(inputs, "futures"),
                num(inputs, "strike"),
                num(inputs, "t_years"),
                num(inputs, "rate"),
                num(inputs, "vol"),
            ),
            "xirr" => {
                let flows: Vec<(NaiveDate, f64)> = inputs["cash_flows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|pair| (date(pair[0].as_str().unwrap()), pair[1].as_f64().unwrap()))
                    .collect();
                xirr(&flows).expect("the Excel example has an IRR")
            }
            "gordon_growth_cost_of_equity" => gordon_growth_cost_of_equity(
                num(inputs, "dividend_next"),
                num(inputs, "price"),
                num(inputs, "growth"),
            ),
            "capm" => capm_cost_of_equity(
                num(inputs, "risk_free"),
                num(inputs, "beta"),
                num(inputs, "equity_risk_premium"),
            ),
            other => panic!("formulas.json names a function this test does not know: {other}"),
        };
        assert!(
            (got - expected).abs() <= tolerance,
            "{function} {inputs}: got {got}, expected {expected} +- {tolerance} ({})",
            entry["source"]
        );
    }
}

fn close(what: &str, got: f64, expected: f64, tolerance: f64) {
    assert!(
        (got - expected).abs() <= tolerance,
        "{what}: got {got}, expected {expected} +- {tolerance}"
    );
}

#[test]
fn bsm_theta_hull_example() {
    // Hull, Options, Futures, and Other Derivatives, theta example: S=49, K=50, r=5%,
    // sigma=20%, T=20 weeks (0.3846): theta = -4.31 per year (-0.0118 per calendar day).
    let theta = bsm_theta_per_year(OptionKind::Call, 49.0, 50.0, 0.3846, 0.05, 0.0, 0.2);
    close("Hull theta", theta, -4.31, 0.005);
    close("Hull theta (mpmath)", theta, -4.305_389_964_546_105, 1e-10);
}

#[test]
fn bsm_with_dividend_yield_against_high_precision() {
    // Reference values computed with mpmath at 40 digits from the same formulas.
    let cases = [
        (
            OptionKind::Call,
            8.676_697_972_495_137,
            -9.588_724_818_052_582,
        ),
        (
            OptionKind::Put,
            2.860_535_829_392_564,
            -6.897_479_033_045_904,
        ),
    ];
    for (kind, price, theta) in cases {
        close(
            "price",
            bsm_price(kind, 100.0, 95.0, 0.3, 0.05, 0.02, 0.25),
            price,
            1e-11,
        );
        close(
            "theta",
            bsm_theta_per_year(kind, 100.0, 95.0, 0.3, 0.05, 0.02, 0.25),
            theta,
            1e-10,
        );
    }
    // The worked example's short legs (T = 43/365).
    let t = 43.0 / 365.0;
    close(
        "short put",
        bsm_price(OptionKind::Put, 5905.0, 5600.0, t, 0.043, 0.013, 0.16),
        24.752_017_941_640_695,
        1e-9,
    );
    close(
        "short call theta",
        bsm_theta_per_year(OptionKind::Call, 5905.0, 6150.0, t, 0.043, 0.013, 0.16),
        -487.872_220_329_807_9,
        1e-8,
    );
}

#[test]
fn put_call_parity_holds_for_both_models() {
    let (s, k, t, r, q, v) = (100.0, 95.0, 0.3, 0.05, 0.02, 0.25);
    let lhs = bsm_price(OptionKind::Call, s, k, t, r, q, v)
        - bsm_price(OptionKind::Put, s, k, t, r, q, v);
    let rhs = s * (-q * t).exp() - k * (-r * t).exp();
    close("BSM parity", lhs, rhs, 1e-12);
    let lhs76 = black76_price(OptionKind::Call, 22.4, 25.0, t, r, 0.95)
        - black76_price(OptionKind::Put, 22.4, 25.0, t, r, 0.95);
    close(
        "Black-76 parity",
        lhs76,
        (-r * t).exp() * (22.4 - 25.0),
        1e-12,
    );
    close(
        "Black-76 worked example",
        black76_price(OptionKind::Call, 22.4, 25.0, 76.0 / 365.0, 0.043, 0.95),
        2.868_614_492_892_163,
        1e-12,
    );
}

#[test]
fn normal_cdf_textbook_values() {
    close("N(0)", normal_cdf(0.0), 0.5, 0.0);
    close("N(1.96)", normal_cdf(1.96), 0.975_002_104_851_779_6, 1e-15);
    close(
        "N(-1.645)",
        normal_cdf(-1.645),
        0.049_984_905_539_121_36,
        1e-16,
    );
    close("N(-8)", normal_cdf(-8.0), 6.220_960_574_271_784e-16, 1e-28);
}

#[test]
fn wilder_rsi_hand_computed() {
    // period 2, changes +1 +1 -1 +1: seed gain 1, loss 0; then gain 0.5, loss 0.5; then
    // gain 0.75, loss 0.25: RS = 3, RSI = 75.
    close(
        "RSI",
        wilder_rsi(&[1.0, 2.0, 3.0, 2.0, 3.0], 2).unwrap(),
        75.0,
        1e-12,
    );
    assert_eq!(wilder_rsi(&[5.0, 5.0, 5.0], 2), Some(50.0));
    assert_eq!(wilder_rsi(&[5.0, 6.0, 7.0], 2), Some(100.0));
    assert_eq!(wilder_rsi(&[5.0, 6.0], 2), None);
}

#[test]
fn ema_and_macd_hand_computed() {
    // EMA(3), alpha 1/2: seed mean(1,2,3) = 2, then 3, then 4.
    assert_eq!(
        ema_series(&[1.0, 2.0, 3.0, 4.0, 5.0], 3),
        Some(vec![2.0, 3.0, 4.0])
    );
    // MACD(2, 3, 2) of [1,3,2,5,4,6]: EMA2 = 2,2,4,4,16/3 from index 1; EMA3 = 2,3.5,3.75,4.875
    // from index 2; line = 0, 0.5, 0.25, 11/24; signal = EMA2 of the line = 0.25, 0.25, 7/18;
    // histogram = 11/24 - 7/18 = 5/72.
    let m = macd(&[1.0, 3.0, 2.0, 5.0, 4.0, 6.0], 2, 3, 2).unwrap();
    close("MACD line", m.line, 11.0 / 24.0, 1e-12);
    close("MACD signal", m.signal, 7.0 / 18.0, 1e-12);
    close("MACD histogram", m.histogram, 5.0 / 72.0, 1e-12);
    // slow + signal - 1 = 4 values are enough, 3 are not.
    assert!(macd(&[1.0, 3.0, 2.0, 5.0], 2, 3, 2).is_some());
    assert!(macd(&[1.0, 3.0, 2.0], 2, 3, 2).is_none());
}

#[test]
fn finance_definitions() {
    close(
        "realized profit",
        realized_profit_usd(20, 1.5, 6.8, 100, 26.0),
        10_574.0,
        1e-9,
    );
    let capm = capm_cost_of_equity(0.043, 0.85, 0.055);
    let gordon = gordon_growth_cost_of_equity(2.10, 60.0, 0.03);
    close(
        "blended r_e",
        cost_of_equity(capm, Some(gordon), 0.25),
        0.083_562_5,
        1e-15,
    );
    close("CAPM only", cost_of_equity(capm, None, 0.0), capm, 0.0);
    close(
        "WACC",
        wacc(4.0e6, 1.0e6, 0.083_562_5, 0.065, 0.21),
        0.8 * 0.083_562_5 + 0.2 * 0.065 * 0.79,
        1e-15,
    );
    // Perfectly correlated factors add; perfectly anti-correlated subtract.
    close(
        "stress rho=1",
        stress_loss_usd(3.0, 4.0, 3.0, 1.0),
        21.0,
        1e-12,
    );
    close(
        "stress rho=-1",
        stress_loss_usd(3.0, 4.0, 3.0, -1.0),
        3.0,
        1e-12,
    );
    close(
        "stress rho=0",
        stress_loss_usd(1.0, 4.0, 3.0, 0.0),
        5.0,
        1e-12,
    );
}

#[test]
fn xirr_worked_example_and_order_invariance() {
    let flows = [
        ("2025-11-21", -37600.0),
        ("2025-12-19", 2100.0),
        ("2026-01-16", 1850.0),
        ("2026-02-20", -3200.0),
        ("2026-03-20", 2400.0),
        ("2026-04-17", 2050.0),
        ("2026-05-07", 37600.0),
    ];
    let flows: Vec<(NaiveDate, f64)> = flows.iter().map(|(d, a)| (date(d), *a)).collect();
    let r = xirr(&flows).unwrap();
    close("structure IRR", r, 0.351_554, 5e-7);
    // The NPV at the root is zero to the tolerance.
    let npv: f64 = flows
        .iter()
        .map(|(d, a)| a / (1.0 + r).powf((*d - flows[0].0).num_days() as f64 / 365.0))
        .sum();
    assert!(npv.abs() < 1e-6, "npv at root {npv}");
    // The root does not depend on which date the exponents are measured from.
    let mut reversed = flows.clone();
    reversed.reverse();
    close("reversed order", xirr(&reversed).unwrap(), r, 1e-10);
}
