//! The policy (defaults, overrides, hash, round trip), the proposal round trip, shift_times,
//! the auditor's comparison and the human view.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rollbook::sizing::{evaluate, render, Draws, Policy, Proposal, Verdict};

const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/example-proposal.toml"
));

fn now() -> DateTime<Utc> {
    "2026-05-07T14:40:00Z".parse().unwrap()
}

fn example() -> Proposal {
    Proposal::from_toml_str(EXAMPLE).unwrap()
}

/// The hash of the default policy. It changes only when the policy's canonical JSON changes
/// (a default, a field name, the field order or a field's type): that is a governance event,
/// so this constant is updated deliberately, never to make a test pass. Last changes: the domain
/// tag `rollbook/v4/policy` (format v4; the canonical JSON unchanged: its v3 hash was
/// c9e97d9d...0359); before it the tag `rollbook/v3/policy` and the key
/// `timing.clock_skew_max_seconds` (issue 20). Computed with Python's `hashlib` from
/// docs/methodology.md's default-policy table.
const DEFAULT_POLICY_HASH: &str =
    "9d99636513b3c15b218f00a7982f3b42a254cb58df8f2302c24f65d1e4d95c8c";

#[test]
fn defaults_match_the_methodology_table() {
    let p = Policy::default();
    assert_eq!((p.coefficient.floor, p.coefficient.cap), (0.45, 0.65));
    assert_eq!(
        (
            p.coefficient.pcf_low,
            p.coefficient.pcf_high,
            p.coefficient.pcf_weight
        ),
        (10.0, 25.0, 0.5)
    );
    assert_eq!(p.coefficient.rsi_period, 14);
    assert_eq!(p.coefficient.theta_press_decay_per_day_min, 0.05);
    assert_eq!(p.coefficient.theta_press_multiplier, 0.80);
    assert_eq!(p.growth.layer_growth_max, 1.25);
    assert_eq!(p.wacc.incremental_bps_max, 18.0);
    assert_eq!(
        (p.liquidity.stress_sigma, p.liquidity.quick_ratio_min),
        (3.0, 1.4)
    );
    assert_eq!(
        (
            p.signals.macd_fast,
            p.signals.macd_slow,
            p.signals.macd_signal
        ),
        (12, 26, 9)
    );
    assert!(p.signals.require_macd_support);
    assert_eq!(p.structure.time_shift_days_min, 14);
    assert_eq!(p.structure.parity_tolerance_usd, 0.15);
    assert_eq!(p.structure.quote_deviation_max, 0.25);
    assert!(p.structure.require_layer_cost_within_irr);
    assert_eq!(p.timing.blackout_padding_minutes, 30);
    assert_eq!(p.timing.snapshot_max_age_minutes, 30);
    assert_eq!(p.timing.clock_skew_max_seconds, 60);
    assert_eq!(p.approval.proposal_ttl_seconds, 14_400);
    assert!(!p.approval.proposer_counts);
    assert_eq!(Policy::from_toml_str("").unwrap(), p);
    assert_eq!(p.validate(), Ok(()));
}

#[test]
fn hash_is_stable_and_sensitive() {
    let p = Policy::default();
    assert_eq!(p.hash_hex(), DEFAULT_POLICY_HASH);
    assert_eq!(p.hash_hex(), Policy::default().hash_hex());
    assert!(p
        .hash_hex()
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    let json = p.canonical_json();
    assert!(
        json.starts_with("{\"coefficient\":{\"floor\":0.45,\"cap\":0.65,"),
        "{json}"
    );
    assert!(!json.contains(' ') && !json.contains('\n'));
    // The methodology's table order; an integer, not a float.
    assert!(
        json.contains(
            ",\"timing\":{\"blackout_padding_minutes\":30,\"snapshot_max_age_minutes\":30,\"clock_skew_max_seconds\":60},\"approval\":"
        ),
        "{json}"
    );
    let mut changed = p.clone();
    changed.wacc.incremental_bps_max = 18.5;
    assert_ne!(changed.hash_hex(), DEFAULT_POLICY_HASH);
    let mut changed = p.clone();
    changed.approval.proposer_counts = true;
    assert_ne!(changed.hash_hex(), DEFAULT_POLICY_HASH);
    // The report records the hash of the policy it used.
    let report = evaluate(&example(), &p, &Draws::none(), now()).unwrap();
    assert_eq!(report.policy_hash, DEFAULT_POLICY_HASH);
}

#[test]
fn partial_override_keeps_other_defaults() {
    let p = Policy::from_toml_str(
        "[coefficient]\ncap = 0.6\n\n[timing]\nblackout_padding_minutes = 45\n",
    )
    .unwrap();
    let mut expected = Policy::default();
    expected.coefficient.cap = 0.6;
    expected.timing.blackout_padding_minutes = 45;
    assert_eq!(p, expected);
    // Integers are accepted for float keys.
    let p = Policy::from_toml_str("[wacc]\nincremental_bps_max = 20\n").unwrap();
    assert_eq!(p.wacc.incremental_bps_max, 20.0);
}

#[test]
fn policy_toml_round_trip() {
    let mut p = Policy::default();
    p.coefficient.cap = 0.61;
    p.signals.require_macd_support = false;
    p.approval.proposal_ttl_seconds = 3_600;
    let text = p.to_toml_string();
    assert!(
        text.contains("[coefficient]") && text.contains("[approval]"),
        "{text}"
    );
    let back = Policy::from_toml_str(&text).unwrap();
    assert_eq!(back, p);
    assert_eq!(back.hash_hex(), p.hash_hex());
    assert_eq!(
        Policy::from_toml_str(&Policy::default().to_toml_string()).unwrap(),
        Policy::default()
    );
}

#[test]
fn proposal_toml_round_trip() {
    let p = example();
    let text = p.to_toml_string();
    assert_eq!(Proposal::from_toml_str(&text).unwrap(), p, "{text}");
    // Without the optional fields, too.
    let mut q = example();
    q.next_layer.put_premium_usd = None;
    q.book.ddm_weight = 0.0;
    q.book.dividend_next_usd = None;
    q.book.share_price_usd = None;
    q.book.dividend_growth = None;
    q.calendar.blackouts.clear();
    q.roll.note = String::new();
    assert_eq!(Proposal::from_toml_str(&q.to_toml_string()).unwrap(), q);
}

#[test]
fn contracts_accessors() {
    let mut p = example();
    assert_eq!(p.contracts_requested(), 12);
    p.set_contracts_requested(7);
    assert_eq!(p.contracts_requested(), 7);
    assert_eq!(p.next_layer.contracts, 7);
}

#[test]
fn shift_times_moves_everything_consistently() {
    let original = example();
    for delta in [
        Duration::days(200) + Duration::hours(3) + Duration::minutes(17),
        Duration::hours(10), // crosses midnight UTC: dates move by one day
        Duration::hours(-15),
        Duration::days(-30),
    ] {
        let mut shifted = original.clone();
        shifted.shift_times(delta);
        let day_shift =
            (shifted.roll.as_of.date_naive() - original.roll.as_of.date_naive()).num_days();
        assert_eq!(shifted.roll.as_of, original.roll.as_of + delta);
        assert_eq!(
            shifted.roll.execute_after,
            original.roll.execute_after + delta
        );
        assert_eq!(
            shifted.roll.execute_before,
            original.roll.execute_before + delta
        );
        assert_eq!(
            shifted.next_layer.expiry,
            original.next_layer.expiry + Duration::days(day_shift)
        );
        assert_eq!(
            shifted.front_condor.expiry,
            original.front_condor.expiry + Duration::days(day_shift)
        );
        for (a, b) in shifted
            .book
            .structure_cash_flows
            .iter()
            .zip(&original.book.structure_cash_flows)
        {
            assert_eq!(a.date, b.date + Duration::days(day_shift));
        }
        for (a, b) in shifted
            .calendar
            .blackouts
            .iter()
            .zip(&original.calendar.blackouts)
        {
            assert_eq!((a.start, a.end), (b.start + delta, b.end + delta));
        }
        let before = evaluate(&original, &Policy::default(), &Draws::none(), now()).unwrap();
        let after = evaluate(&shifted, &Policy::default(), &Draws::none(), now() + delta).unwrap();
        assert_eq!(after.contracts_max, before.contracts_max, "delta {delta}");
        assert_eq!(after.verdict, before.verdict);
        assert_eq!(after.failed_check_ids(), before.failed_check_ids());
        assert_eq!(after.agrees_with(&before), Ok(()), "delta {delta}");
        // Shifted files are still valid files.
        assert_eq!(
            Proposal::from_toml_str(&shifted.to_toml_string()).unwrap(),
            shifted
        );
    }
}

#[test]
fn agrees_with_tolerates_noise_and_names_the_first_difference() {
    let recorded = evaluate(&example(), &Policy::default(), &Draws::none(), now()).unwrap();
    assert_eq!(recorded.agrees_with(&recorded.clone()), Ok(()));

    let mut noisy = recorded.clone();
    noisy.caps.budget_usd *= 1.0 + 5e-10; // within relative 1e-9
    noisy.metrics.macd_histogram += 5e-10; // within absolute 1e-9
    assert_eq!(recorded.agrees_with(&noisy), Ok(()));

    let mut off = recorded.clone();
    off.caps.budget_usd *= 1.0 + 1e-8;
    let message = recorded.agrees_with(&off).unwrap_err();
    assert!(message.contains("caps.budget_usd"), "{message}");

    // The texts of a difference, exactly (they are built only when values differ).
    let mut other = recorded.clone();
    let budget = other.checks.iter_mut().find(|c| c.id == "budget").unwrap();
    let limit_before = budget.limit;
    budget.limit += 1.0;
    assert_eq!(
        recorded.agrees_with(&other).unwrap_err(),
        format!(
            "checks[budget].limit differs: recorded {limit_before}, fresh evaluation {} (tolerance: relative or absolute 1e-9)",
            limit_before + 1.0
        )
    );
    let mut other = recorded.clone();
    other.contracts_requested += 1;
    assert_eq!(
        recorded.agrees_with(&other).unwrap_err(),
        format!(
            "contracts_requested differs: recorded {}, fresh evaluation {}",
            recorded.contracts_requested,
            recorded.contracts_requested + 1
        )
    );

    let mut other = recorded.clone();
    other.verdict = Verdict::Pass;
    assert!(recorded
        .agrees_with(&other)
        .unwrap_err()
        .contains("verdict"));

    let mut other = recorded.clone();
    other.contracts_max = 8;
    assert!(recorded
        .agrees_with(&other)
        .unwrap_err()
        .contains("contracts_max"));

    let mut other = recorded.clone();
    other.caps.irr_usd = None;
    assert!(recorded
        .agrees_with(&other)
        .unwrap_err()
        .contains("caps.irr_usd"));

    let mut other = recorded.clone();
    other.policy_hash = "00".repeat(32);
    assert!(recorded
        .agrees_with(&other)
        .unwrap_err()
        .contains("policy_hash"));

    let mut other = recorded.clone();
    other.checks[0].passed = false;
    assert!(recorded
        .agrees_with(&other)
        .unwrap_err()
        .contains("failed checks"));

    let mut other = recorded.clone();
    other.checks.retain(|c| c.id != "parity");
    assert!(recorded
        .agrees_with(&other)
        .unwrap_err()
        .contains("set of checks"));

    // Check order does not matter; messages are not compared.
    let mut other = recorded.clone();
    other.checks.reverse();
    other.checks[0].message = "reworded".into();
    assert_eq!(recorded.agrees_with(&other), Ok(()));
}

#[test]
fn human_view_reads_in_ten_seconds() {
    let report = evaluate(&example(), &Policy::default(), &Draws::none(), now()).unwrap();
    let text = render::human(&report);
    assert!(text.starts_with("verdict: FAIL"), "{text}");
    assert!(text.contains("resize to at most 9 contracts"), "{text}");
    for check in &report.checks {
        assert!(text.contains(&check.id), "{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("irr") && l.ends_with("FAIL")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("budget") && l.ends_with("PASS")),
        "{text}"
    );
    assert!(text.contains("budget 5886.94 USD"), "{text}");
    assert!(text.contains("irr 2752.33 USD"), "{text}");
    assert!(text.contains("growth 25 contracts"), "{text}");

    let mut nine = example();
    nine.set_contracts_requested(9);
    let text = render::human(&evaluate(&nine, &Policy::default(), &Draws::none(), now()).unwrap());
    assert!(text.starts_with("verdict: PASS"), "{text}");
    assert!(!text.contains("resize"), "{text}");

    let mut gate = nine.clone();
    gate.calendar.blackouts[0].start = "2026-05-07T14:00:00Z".parse().unwrap();
    let text = render::human(&evaluate(&gate, &Policy::default(), &Draws::none(), now()).unwrap());
    assert!(
        text.contains("failed gates") && text.contains("timing"),
        "{text}"
    );
}

#[test]
fn cash_flows_without_an_irr_in_the_bracket() {
    // Losing 99% in one day is below -0.9999 a year: no root in the bracket.
    let mut p = example();
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    p.book.structure_cash_flows = vec![
        rollbook::sizing::CashFlow {
            date: d("2026-01-01"),
            amount_usd: -100.0,
        },
        rollbook::sizing::CashFlow {
            date: d("2026-01-02"),
            amount_usd: 1.0,
        },
    ];
    let err = evaluate(&p, &Policy::default(), &Draws::none(), now()).unwrap_err();
    assert_eq!(err.field, "book.structure_cash_flows", "{err}");
    assert!(err.rule.contains("no IRR"), "{err}");
}

#[test]
fn theta_press_lowers_the_coefficient() {
    let mut policy = Policy::default();
    policy.coefficient.theta_press_decay_per_day_min = 0.02; // the example decays 0.0287/day
    let report = evaluate(&example(), &policy, &Draws::none(), now()).unwrap();
    assert!(report.coefficient.theta_press);
    assert!((report.coefficient.final_value - report.coefficient.base * 0.8).abs() < 1e-15);
    assert!(report.coefficient.final_value < policy.coefficient.floor); // intended by the spec
}
