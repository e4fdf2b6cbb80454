//! The check messages of the worked example, pinned word for word: they are part of the stored
//! report, and print their numbers as `format!("{x:.N}")` does.

use chrono::{DateTime, Utc};
use rollbook::sizing::{evaluate, Draws, Policy, Proposal};

const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/example-proposal.toml"
));

fn now() -> DateTime<Utc> {
    "2026-05-07T14:40:00Z".parse().unwrap()
}

fn messages(proposal: &Proposal, policy: &Policy) -> Vec<(String, String)> {
    evaluate(proposal, policy, &Draws::none(), now())
        .unwrap()
        .checks
        .into_iter()
        .map(|check| (check.id, check.message))
        .collect()
}

#[test]
fn worked_example_messages() {
    let proposal = Proposal::from_toml_str(EXAMPLE).unwrap();
    let expected = [
        ("profit", "realized profit 10574.00 USD must be > 0"),
        (
            "budget",
            "outlay 3540.00 USD vs budget 5886.94 USD (0.5567 x profit)",
        ),
        ("growth", "12 contracts vs growth cap 25 (20 closed x 1.25)"),
        (
            "wacc",
            "incremental WACC 0.303 bps vs max 18 bps (layer cost 0.1200 vs WACC 0.0771)",
        ),
        (
            "liquidity",
            "quick ratio after outlay and 3 sigma stress 1.981 vs min 1.4",
        ),
        ("irr", "layer cost 0.4522/yr vs structure IRR 0.3516"),
        (
            "macd",
            "MACD histogram of the VIX term spread 0.4719 must be >= 0",
        ),
        (
            "time_shift",
            "layer expires 33 days after the condor, min 14",
        ),
        (
            "quote",
            "premium 2.9500 vs Black-76 model 2.8686: deviation 0.0284, max 0.25",
        ),
        ("parity", "put-call parity gap 0.0268 USD, tolerance 0.15"),
        ("timing", "window clear of blackouts (padded 30 min)"),
        ("staleness", "snapshot age 10.0 min, max 30"),
    ];
    let got = messages(&proposal, &Policy::default());
    let got: Vec<(&str, &str)> = got.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(got, expected);
}

#[test]
fn messages_restate_the_numbers_with_format_precision() {
    // Negative values, a negative zero after rounding, the switches off, and a blackout hit.
    let mut proposal = Proposal::from_toml_str(EXAMPLE).unwrap();
    proposal.closed_layer.exit_premium_usd = 1.4999;
    proposal.book.layer_cost_of_capital = 0.05;
    proposal.calendar.blackouts[0].start = proposal.roll.execute_after;
    proposal.calendar.blackouts[0].end = proposal.roll.execute_after + chrono::Duration::minutes(1);
    let mut policy = Policy::default();
    policy.signals.require_macd_support = false;
    policy.structure.require_layer_cost_within_irr = false;
    let report = evaluate(&proposal, &policy, &Draws::none(), now()).unwrap();
    let m = &report.metrics;
    let by_id = |id: &str| {
        report
            .checks
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.message.clone())
            .unwrap()
    };
    assert_eq!(
        by_id("profit"),
        format!(
            "realized profit {:.2} USD must be > 0",
            report.realized_profit_usd
        )
    );
    assert_eq!(
        by_id("budget"),
        format!(
            "outlay {:.2} USD vs budget {:.2} USD ({:.4} x profit)",
            m.outlay_usd, report.caps.budget_usd, report.coefficient.final_value
        )
    );
    assert_eq!(
        by_id("wacc"),
        format!(
            "incremental WACC {:.3} bps vs max 18 bps (layer cost 0.0500 vs WACC {:.4})",
            m.wacc_delta_bps, m.wacc
        )
    );
    assert_eq!(
        by_id("irr"),
        format!(
            "layer cost {:.4}/yr vs structure IRR {:.4} (not required by policy)",
            m.layer_cost_rate, m.structure_irr
        )
    );
    assert_eq!(
        by_id("macd"),
        format!(
            "MACD histogram of the VIX term spread {:.4} must be >= 0 (not required by policy)",
            m.macd_histogram
        )
    );
    assert_eq!(by_id("timing"), "window overlaps padded blackouts: CPI");
}
