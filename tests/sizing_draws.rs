//! Drawing on one closed layer (methodology, "Drawing on one closed layer"): what other
//! proposals drew on the layer's profit counts against its budget and growth cap.

use chrono::{DateTime, Utc};
use rollbook::sizing::{
    evaluate, render, Draws, Policy, Proposal, SizingReport, Verdict, DRAWN_CONTRACTS_MAX,
    DRAWN_OUTLAY_USD_MAX, DRAWN_PROPOSALS_MAX,
};

const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/example-proposal.toml"
));
const LAYER: &str = "VIX-C22-2026-11-L3";

fn now() -> DateTime<Utc> {
    "2026-05-07T14:40:00Z".parse().unwrap()
}

/// The worked example requesting `contracts` (9 is the most that passes alone).
fn example(contracts: u32) -> Proposal {
    let mut p = Proposal::from_toml_str(EXAMPLE).unwrap();
    p.set_contracts_requested(contracts);
    p
}

fn drawn(outlay_usd: f64, contracts: u64) -> Draws {
    Draws {
        closed_layer_id: Some(LAYER.to_string()),
        outlay_usd,
        contracts,
        proposal_ids: Vec::new(),
    }
}

fn run(p: &Proposal, draws: &Draws) -> SizingReport {
    evaluate(p, &Policy::default(), draws, now()).expect("valid input")
}

fn check<'a>(report: &'a SizingReport, id: &str) -> &'a rollbook::sizing::Check {
    report.checks.iter().find(|c| c.id == id).unwrap()
}

/// Issue 20: nine proposals of 9 contracts (2,655 USD each) on one closed layer (profit
/// 10,574 USD, budget 5,886.94 USD). Each passes on its own, 23,895 USD in all. With the draws
/// of the proposals before it (passing ones only: a failed proposal draws nothing), the third
/// stops passing `budget`, and the layer's outlay never exceeds its budget.
#[test]
fn nine_rolls_on_one_layer_stop_at_the_budget() {
    let alone = run(&example(9), &Draws::none());
    assert_eq!(alone.verdict, Verdict::Pass);
    assert_eq!(alone.realized_profit_usd, 10_574.0);
    assert!((alone.metrics.budget_total_usd - 5_886.94).abs() < 0.005);

    let mut draws = drawn(0.0, 0);
    let mut verdicts = Vec::new();
    for roll in 1..=9 {
        let id = format!("roll-{roll}");
        let report = run(&example(9), &draws);
        let budget = check(&report, "budget");
        // The check's value is this outlay plus what was drawn, against the layer's total.
        assert_eq!(budget.value, 2_655.0 + draws.outlay_usd, "roll {roll}");
        assert_eq!(budget.limit, report.metrics.budget_total_usd, "roll {roll}");
        assert_eq!(budget.passed, budget.value <= budget.limit, "roll {roll}");
        assert_eq!(report.drawn.outlay_usd, draws.outlay_usd);
        assert_eq!(report.drawn.proposal_ids, draws.proposal_ids);
        if report.verdict == Verdict::Pass {
            draws.outlay_usd += report.metrics.outlay_usd;
            draws.contracts += u64::from(report.contracts_requested);
            draws.proposal_ids.push(id);
        }
        verdicts.push(report.verdict);
    }
    assert_eq!(verdicts[..2], [Verdict::Pass; 2]);
    assert_eq!(verdicts[2..], [Verdict::Fail; 7]);
    assert_eq!(draws.outlay_usd, 5_310.0);
    assert_eq!(draws.contracts, 18);

    // The third fails on budget (7,965 > 5,886.94 USD) and growth (27 > 25 contracts), and may
    // resize to what is left: floor(576.94 / 295) = 1 contract (growth leaves 7).
    let third = run(&example(9), &draws);
    assert_eq!(third.failed_check_ids(), vec!["budget", "growth"]);
    assert_eq!(check(&third, "growth").value, 27.0);
    assert_eq!(third.contracts_max, 1);
    assert_eq!(third.resize_to, Some(1));
    assert!((third.caps.budget_usd - 576.94).abs() < 0.005);
    assert_eq!(third.caps.growth_contracts, 25 - 18);
    // Resized, it passes; after it the 281.94 USD left buy no contract.
    let one = run(&example(1), &draws);
    assert_eq!(one.verdict, Verdict::Pass);
    draws.outlay_usd += one.metrics.outlay_usd;
    draws.contracts += 1;
    draws.proposal_ids.push("roll-3".into());
    let after = run(&example(1), &draws);
    assert_eq!(after.failed_check_ids(), vec!["budget"]);
    assert_eq!(after.contracts_max, 0);
    assert_eq!(after.resize_to, None);
    let text = render::human(&after);
    assert!(
        text.contains("no size passes: every cap is below one contract"),
        "{text}"
    );
    assert!(draws.outlay_usd <= alone.metrics.budget_total_usd);
}

#[test]
fn draws_reduce_the_largest_size() {
    let report = run(&example(9), &drawn(3_300.0, 0));
    // 5,886.94 - 3,300 = 2,586.94 left: 8 contracts of 295 USD (the IRR cap allows 9).
    assert!((report.caps.budget_usd - 2_586.94).abs() < 0.005);
    assert!((report.metrics.budget_total_usd - 5_886.94).abs() < 0.005);
    assert_eq!(report.contracts_max, 8);
    assert_eq!(report.failed_check_ids(), vec!["budget"]);
    assert_eq!(report.resize_to, Some(8));
    let budget = check(&report, "budget");
    assert_eq!(budget.value, 2_655.0 + 3_300.0);
    assert_eq!(
        budget.message,
        "outlay 2655.00 USD + 3300.00 USD drawn vs budget 5886.94 USD (0.5567 x profit)"
    );
    // 8 contracts fit exactly what is left.
    assert_eq!(run(&example(8), &drawn(3_300.0, 0)).verdict, Verdict::Pass);

    // Drawn beyond the total: nothing is left, and nothing can be resized.
    let over = run(&example(1), &drawn(6_000.0, 0));
    assert_eq!(over.caps.budget_usd, 0.0);
    assert_eq!(over.contracts_max, 0);
    assert_eq!(over.resize_to, None);
    assert!(!check(&over, "budget").passed);
}

#[test]
fn budget_boundary_with_draws() {
    // What is left is exactly 9 contracts (2,655 USD), then a cent less.
    let total_usd = run(&example(9), &Draws::none()).metrics.budget_total_usd;
    let inside = run(&example(9), &drawn(total_usd - 2_655.0, 0));
    assert!(
        check(&inside, "budget").passed,
        "{:?}",
        check(&inside, "budget")
    );
    assert_eq!(inside.verdict, Verdict::Pass);
    let outside = run(&example(9), &drawn(total_usd - 2_655.0 + 0.01, 0));
    assert_eq!(outside.failed_check_ids(), vec!["budget"]);
    assert_eq!(outside.resize_to, Some(8));
}

#[test]
fn growth_counts_the_contracts_drawn() {
    // The growth cap is floor(20 closed x 1.25) = 25 contracts for the layer.
    let inside = run(&example(5), &drawn(0.0, 20));
    assert!(check(&inside, "growth").passed);
    assert_eq!(inside.verdict, Verdict::Pass);
    assert_eq!(inside.caps.growth_contracts, 5);
    assert_eq!(inside.metrics.growth_total_contracts, 25);
    assert_eq!(check(&inside, "growth").value, 25.0);
    assert_eq!(check(&inside, "growth").limit, 25.0);
    assert_eq!(
        check(&inside, "growth").message,
        "5 contracts + 20 drawn vs growth cap 25 (20 closed x 1.25)"
    );

    let outside = run(&example(5), &drawn(0.0, 21));
    assert_eq!(outside.failed_check_ids(), vec!["growth"]);
    assert_eq!(check(&outside, "growth").value, 26.0);
    assert_eq!(outside.caps.growth_contracts, 4);
    assert_eq!(outside.contracts_max, 4);
    assert_eq!(outside.resize_to, Some(4));

    // More drawn than the whole cap: nothing left, never negative.
    let over = run(&example(1), &drawn(0.0, 1_000));
    assert_eq!(over.caps.growth_contracts, 0);
    assert_eq!(over.contracts_max, 0);
    assert_eq!(check(&over, "growth").value, 1_001.0);
}

#[test]
fn nothing_drawn_changes_no_figure() {
    let none = run(&example(12), &Draws::none());
    let zero = run(&example(12), &drawn(0.0, 0));
    assert_eq!(
        none, zero,
        "Draws::none() and zero draws on the named layer"
    );
    assert_eq!(none.caps.budget_usd, none.metrics.budget_total_usd);
    assert_eq!(
        none.caps.growth_contracts,
        none.metrics.growth_total_contracts
    );
    assert_eq!(check(&none, "budget").value, none.metrics.outlay_usd);
    assert_eq!(check(&none, "budget").limit, none.caps.budget_usd);
    assert_eq!(check(&none, "growth").value, 12.0);
    assert_eq!(
        check(&none, "budget").message,
        "outlay 3540.00 USD vs budget 5886.94 USD (0.5567 x profit)"
    );
    // A negative zero drawn is reported as zero.
    let negative_zero = run(&example(12), &drawn(-0.0, 0));
    assert!(negative_zero.drawn.outlay_usd.is_sign_positive());
    assert_eq!(negative_zero, none);
}

#[test]
fn the_report_states_the_draws() {
    let draws = Draws {
        closed_layer_id: Some(LAYER.into()),
        outlay_usd: 2_655.0,
        contracts: 9,
        proposal_ids: vec!["0190c7a4-0000-7000-8000-000000000001".into()],
    };
    let report = run(&example(9), &draws);
    assert_eq!(report.drawn, draws);
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["drawn"],
        serde_json::json!({
            "closed_layer_id": LAYER,
            "outlay_usd": 2655.0,
            "contracts": 9,
            "proposal_ids": ["0190c7a4-0000-7000-8000-000000000001"],
        })
    );
    assert_eq!(json["metrics"]["growth_total_contracts"], 25);
    assert!(json["metrics"]["budget_total_usd"].is_f64());
    // `drawn` follows `policy_hash`; the totals follow `metrics.outlay_usd`.
    let text = serde_json::to_string(&report).unwrap();
    let at = |key: &str| text.find(key).unwrap_or_else(|| panic!("{key}"));
    assert!(at("\"policy_hash\"") < at("\"drawn\"") && at("\"drawn\"") < at("\"coefficient\""));
    assert!(at("\"outlay_usd\":2655.0,\"budget_total_usd\"") < at("\"growth_total_contracts\""));
    let back: SizingReport = serde_json::from_str(&text).unwrap();
    assert_eq!(back, report);

    // Without draws the report names the proposal's layer, and no layer without an id.
    assert_eq!(
        run(&example(9), &Draws::none())
            .drawn
            .closed_layer_id
            .as_deref(),
        Some(LAYER)
    );
    let mut unnamed = example(9);
    unnamed.closed_layer.id = None;
    let report = run(&unnamed, &Draws::none());
    assert_eq!(report.drawn, Draws::none());
    assert_eq!(
        serde_json::to_value(&report).unwrap()["drawn"]["closed_layer_id"],
        serde_json::Value::Null
    );
    // Draws given for a file without an id (a dry run) still count.
    let dry = Draws {
        closed_layer_id: None,
        ..drawn(3_300.0, 0)
    };
    assert_eq!(run(&unnamed, &dry).contracts_max, 8);
}

#[test]
fn a_verifier_sees_other_draws() {
    let draws = Draws {
        proposal_ids: vec!["a".into(), "b".into()],
        ..drawn(2_000.0, 4)
    };
    let recorded = run(&example(9), &draws);
    assert_eq!(recorded.agrees_with(&run(&example(9), &draws)), Ok(()));
    let differs = |other: Draws| recorded.agrees_with(&run(&example(9), &other)).unwrap_err();
    assert!(differs(Draws::none()).contains("drawn.contracts"));
    assert!(differs(Draws {
        proposal_ids: vec!["a".into(), "c".into()],
        ..draws.clone()
    })
    .starts_with("drawn.proposal_ids differs: recorded [a, b], fresh evaluation [a, c]"));
    assert!(differs(Draws {
        outlay_usd: 2_000.01,
        ..draws.clone()
    })
    .starts_with("drawn.outlay_usd differs"));
    let mut renamed = recorded.clone();
    renamed.drawn.closed_layer_id = Some("other".into());
    assert!(renamed
        .agrees_with(&recorded)
        .unwrap_err()
        .starts_with("drawn.closed_layer_id differs"));
    let mut total = recorded.clone();
    total.metrics.growth_total_contracts += 1;
    assert!(total
        .agrees_with(&recorded)
        .unwrap_err()
        .starts_with("metrics.growth_total_contracts differs"));
}

#[test]
fn the_human_view_shows_the_draws() {
    let text = render::human(&run(&example(9), &Draws::none()));
    assert!(
        text.contains(&format!("drawn on closed layer {LAYER}: nothing")),
        "{text}"
    );
    let draws = Draws {
        proposal_ids: (1..=4).map(|i| format!("p{i}")).collect(),
        ..drawn(3_300.0, 12)
    };
    let text = render::human(&run(&example(9), &draws));
    assert!(
        text.contains(&format!(
            "drawn on closed layer {LAYER}: 3300.00 USD of budget 5886.94 USD, 12 of growth cap 25 contracts, by 4 proposals: p1, p2, p3, ..."
        )),
        "{text}"
    );
    // The caps line shows what is left.
    assert!(text.contains("caps: budget 2586.94 USD"), "{text}");
    assert!(text.contains("growth 13 contracts"), "{text}");
    assert!(text.contains("resize to at most 8 contracts"), "{text}");
    assert!(text.lines().count() < 25, "{text}");
}

#[test]
fn draws_out_of_bounds_are_input_errors_naming_the_field() {
    let p = example(9);
    let error = |draws: Draws| {
        evaluate(&p, &Policy::default(), &draws, now())
            .expect_err("must be refused")
            .to_string()
    };
    let cases = [
        (drawn(f64::NAN, 0), "drawn.outlay_usd must be a finite number, got NaN"),
        (
            drawn(f64::INFINITY, 0),
            "drawn.outlay_usd must be a finite number, got inf",
        ),
        (drawn(-0.01, 0), "drawn.outlay_usd must be in [0, 1e12] USD, got -0.01"),
        (
            drawn(DRAWN_OUTLAY_USD_MAX * 1.5, 0),
            "drawn.outlay_usd must be in [0, 1e12] USD, got 1500000000000",
        ),
        (
            drawn(0.0, DRAWN_CONTRACTS_MAX + 1),
            "drawn.contracts must be at most 1000000000000, got 1000000000001",
        ),
        (
            Draws {
                proposal_ids: vec!["a".into(), "b".into()],
                ..drawn(10.0, 1)
            },
            "drawn.contracts must be at least one per proposal drawn on (2), got 1",
        ),
        (
            Draws {
                proposal_ids: vec!["a".into(), "b".into(), "a".into()],
                ..drawn(10.0, 3)
            },
            "drawn.proposal_ids must name each proposal once, got a twice",
        ),
        (
            Draws {
                proposal_ids: vec!["a".into(), "b c".into()],
                ..drawn(10.0, 3)
            },
            "drawn.proposal_ids[1] may hold only ASCII letters, digits and -_.:/, got ' ' (U+0020)",
        ),
        (
            Draws {
                proposal_ids: (0..=DRAWN_PROPOSALS_MAX).map(|i| i.to_string()).collect(),
                ..drawn(10.0, 2_000)
            },
            "drawn.proposal_ids must have at most 1000 entries, got 1001",
        ),
        (
            Draws {
                closed_layer_id: Some("VIX-C22-2026-11-L4".into()),
                ..drawn(10.0, 1)
            },
            "drawn.closed_layer_id must be the proposal's closed_layer.id VIX-C22-2026-11-L3, got VIX-C22-2026-11-L4",
        ),
        (
            Draws {
                closed_layer_id: Some(String::new()),
                ..drawn(10.0, 1)
            },
            "drawn.closed_layer_id must be 1 to 64 characters, got 0",
        ),
    ];
    for (draws, expected) in cases {
        assert_eq!(error(draws.clone()), expected, "{draws:?}");
        // The same rule without a proposal (the command line checks its flags with it).
        if !expected.contains("the proposal's") {
            assert_eq!(draws.validate().unwrap_err().to_string(), expected);
        }
    }
    let mut unnamed = example(9);
    unnamed.closed_layer.id = None;
    assert_eq!(
        evaluate(&unnamed, &Policy::default(), &drawn(10.0, 1), now())
            .unwrap_err()
            .to_string(),
        "drawn.closed_layer_id names layer VIX-C22-2026-11-L3, but the proposal has no closed_layer.id"
    );
    // At the bounds: accepted.
    let at_bounds = Draws {
        proposal_ids: (0..DRAWN_PROPOSALS_MAX).map(|i| i.to_string()).collect(),
        ..drawn(DRAWN_OUTLAY_USD_MAX, DRAWN_CONTRACTS_MAX)
    };
    let report = run(&p, &at_bounds);
    assert_eq!(report.contracts_max, 0);
    assert_eq!(
        check(&report, "growth").value,
        (DRAWN_CONTRACTS_MAX + 9) as f64
    );
}
