//! One test per check id: the worked example tweaked to pass just inside the boundary and to
//! fail just outside it. "Just" is 1e-6 of the checked quantity unless the quantity is whole.

use chrono::{DateTime, Duration, Utc};
use rollbook::sizing::{evaluate, Blackout, Draws, Policy, Proposal, SizingReport};

const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/example-proposal.toml"
));

fn now() -> DateTime<Utc> {
    "2026-05-07T14:40:00Z".parse().unwrap()
}

/// The example at 9 contracts, where every check passes with the default policy.
fn passing() -> Proposal {
    let mut p = Proposal::from_toml_str(EXAMPLE).unwrap();
    p.set_contracts_requested(9);
    p
}

fn run(p: &Proposal, policy: &Policy) -> SizingReport {
    evaluate(p, policy, &Draws::none(), now()).expect("valid input")
}

fn check<'a>(report: &'a SizingReport, id: &str) -> &'a rollbook::sizing::Check {
    report
        .checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

/// Asserts that `id` passes on `inside` and fails on `outside`, and that no other check
/// changes (so the boundary is really this check's).
fn assert_boundary(id: &str, inside: (&Proposal, &Policy), outside: (&Proposal, &Policy)) {
    let pass = run(inside.0, inside.1);
    let fail = run(outside.0, outside.1);
    assert!(
        check(&pass, id).passed,
        "{id} should pass just inside: {:?}",
        check(&pass, id)
    );
    assert!(
        pass.failed_check_ids().is_empty(),
        "inside: {:?}",
        pass.failed_check_ids()
    );
    assert!(
        !check(&fail, id).passed,
        "{id} should fail just outside: {:?}",
        check(&fail, id)
    );
    assert_eq!(fail.failed_check_ids(), vec![id], "outside");
}

#[test]
fn profit_must_be_positive() {
    let mut p = passing();
    p.closed_layer.fees_usd = 0.0;
    let gross_usd = run(&p, &Policy::default()).realized_profit_usd;
    // Keep the budget out of the way: the boundary of profit is P = 0 whatever the size.
    let mut inside = passing();
    inside.closed_layer.fees_usd = gross_usd - 0.01;
    let mut outside = passing();
    outside.closed_layer.fees_usd = gross_usd;
    let pass = run(&inside, &Policy::default());
    let fail = run(&outside, &Policy::default());
    assert!(check(&pass, "profit").passed);
    assert!(!check(&fail, "profit").passed);
    assert_eq!(check(&fail, "profit").value, 0.0);
    // With no profit there is no budget: the size checks fail too, and nothing can be resized.
    assert_eq!(fail.caps.budget_usd, 0.0);
    assert_eq!(fail.contracts_max, 0);
    assert_eq!(fail.resize_to, None);
}

#[test]
fn budget_boundary() {
    let policy = Policy::default();
    let report = run(&passing(), &policy);
    let coefficient = report.coefficient.final_value;
    let outlay_usd = report.metrics.outlay_usd; // 9 * 2.95 * 100
    let gross_usd = report.realized_profit_usd + 26.0;
    let mut inside = passing();
    inside.closed_layer.fees_usd = gross_usd - outlay_usd * (1.0 + 1e-6) / coefficient;
    let mut outside = passing();
    outside.closed_layer.fees_usd = gross_usd - outlay_usd * (1.0 - 1e-6) / coefficient;
    assert_boundary("budget", (&inside, &policy), (&outside, &policy));
    let fail = run(&outside, &policy);
    assert_eq!(fail.contracts_max, 8);
    assert_eq!(fail.resize_to, Some(8));
}

#[test]
fn growth_boundary() {
    let p = passing();
    let mut inside = Policy::default();
    inside.growth.layer_growth_max = 9.0 / 20.0; // floor(20 * 0.45) = 9
    let mut outside = Policy::default();
    outside.growth.layer_growth_max = 8.99 / 20.0; // floor(8.99) = 8
    assert_boundary("growth", (&p, &inside), (&p, &outside));
    assert_eq!(run(&p, &outside).resize_to, Some(8));
}

#[test]
fn wacc_boundary() {
    let p = passing();
    let bps = run(&p, &Policy::default()).metrics.wacc_delta_bps;
    let mut inside = Policy::default();
    inside.wacc.incremental_bps_max = bps * (1.0 + 1e-6);
    let mut outside = Policy::default();
    outside.wacc.incremental_bps_max = bps * (1.0 - 1e-6);
    assert_boundary("wacc", (&p, &inside), (&p, &outside));
    let fail = run(&p, &outside);
    assert!(fail.caps.wacc_usd.unwrap() < fail.metrics.outlay_usd);
    assert_eq!(fail.resize_to, Some(8));
}

#[test]
fn wacc_has_no_cap_when_the_layer_is_cheap() {
    let mut p = passing();
    p.book.layer_cost_of_capital = 0.05; // below the book's WACC of 7.7%
    let report = run(&p, &Policy::default());
    assert_eq!(report.caps.wacc_usd, None);
    assert!(report.metrics.wacc_delta_bps < 0.0);
    assert!(check(&report, "wacc").passed);
}

#[test]
fn liquidity_boundary() {
    let p = passing();
    let ratio = run(&p, &Policy::default()).metrics.quick_ratio_after;
    let mut inside = Policy::default();
    inside.liquidity.quick_ratio_min = ratio * (1.0 - 1e-6);
    let mut outside = Policy::default();
    outside.liquidity.quick_ratio_min = ratio * (1.0 + 1e-6);
    assert_boundary("liquidity", (&p, &inside), (&p, &outside));
}

#[test]
fn irr_boundary_in_contracts_and_policy_switch() {
    let policy = Policy::default();
    let inside = passing(); // 9 contracts: layer cost 0.339 <= IRR 0.3516
    let mut outside = passing();
    outside.set_contracts_requested(10); // 0.3768 > 0.3516
    assert_boundary("irr", (&inside, &policy), (&outside, &policy));
    // Just inside/outside in rate terms: move the IRR limit by changing the capital at risk.
    let report = run(&inside, &policy);
    assert!(report.metrics.layer_cost_rate <= report.metrics.structure_irr);
    // Switched off: passes, no cap, metrics still reported.
    let mut off = Policy::default();
    off.structure.require_layer_cost_within_irr = false;
    let mut twelve = passing();
    twelve.set_contracts_requested(12);
    let report = run(&twelve, &off);
    assert!(check(&report, "irr").passed);
    assert_eq!(report.caps.irr_usd, None);
    assert!(report.metrics.layer_cost_rate > report.metrics.structure_irr);
    assert!(report.failed_check_ids().is_empty());
    assert_eq!(report.contracts_max, 19); // the budget binds: floor(5886.94 / 295)
}

#[test]
fn irr_boundary_in_rate_terms() {
    // The layer cost rate scales with the premium; put it 1e-6 either side of the IRR.
    let policy = Policy::default();
    let report = run(&passing(), &policy);
    let ratio = report.metrics.structure_irr / report.metrics.layer_cost_rate;
    let mut inside = passing();
    inside.next_layer.premium_usd *= ratio * (1.0 - 1e-6);
    let mut outside = passing();
    outside.next_layer.premium_usd *= ratio * (1.0 + 1e-6);
    assert_boundary("irr", (&inside, &policy), (&outside, &policy));
}

#[test]
fn macd_boundary() {
    // The histogram is affine in the last value of the series (every EMA is linear in it):
    // solve for the value where it is zero and step 1e-6 either side.
    let policy = Policy::default();
    let histogram_at = |last: f64| {
        let mut p = passing();
        *p.signals.vix_term_spread.last_mut().unwrap() = last;
        (run(&p, &policy).metrics.macd_histogram, p)
    };
    let (h0, _) = histogram_at(0.0);
    let (h1, _) = histogram_at(1.0);
    let zero_at = -h0 / (h1 - h0);
    let (h_in, inside) = histogram_at(zero_at + 1e-6);
    let (h_out, outside) = histogram_at(zero_at - 1e-6);
    assert!(h_in >= 0.0 && h_out < 0.0, "{h_in} {h_out}");
    assert_boundary("macd", (&inside, &policy), (&outside, &policy));
    // Switched off: passes, histogram still reported.
    let mut off = Policy::default();
    off.signals.require_macd_support = false;
    let report = run(&outside, &off);
    assert!(check(&report, "macd").passed);
    assert!(report.metrics.macd_histogram < 0.0);
}

#[test]
fn time_shift_boundary() {
    let p = passing(); // expiries 33 days apart
    let mut inside = Policy::default();
    inside.structure.time_shift_days_min = 33;
    let mut outside = Policy::default();
    outside.structure.time_shift_days_min = 34;
    assert_boundary("time_shift", (&p, &inside), (&p, &outside));
    // Same boundary by moving the layer: a layer one day before the condor fails.
    let mut early = passing();
    early.next_layer.expiry = early.front_condor.expiry - Duration::days(1);
    let report = run(&early, &Policy::default());
    assert_eq!(report.metrics.time_shift_days, -1);
    assert!(!check(&report, "time_shift").passed);
}

#[test]
fn quote_boundary() {
    let p = passing();
    let deviation = run(&p, &Policy::default()).metrics.quote_deviation;
    let mut inside = Policy::default();
    inside.structure.quote_deviation_max = deviation * (1.0 + 1e-6);
    let mut outside = Policy::default();
    outside.structure.quote_deviation_max = deviation * (1.0 - 1e-6);
    assert_boundary("quote", (&p, &inside), (&p, &outside));
}

#[test]
fn parity_boundary_and_absence() {
    let p = passing();
    let gap = run(&p, &Policy::default()).metrics.parity_gap_usd.unwrap();
    let mut inside = Policy::default();
    inside.structure.parity_tolerance_usd = gap.abs() * (1.0 + 1e-6);
    let mut outside = Policy::default();
    outside.structure.parity_tolerance_usd = gap.abs() * (1.0 - 1e-6);
    assert_boundary("parity", (&p, &inside), (&p, &outside));
    // Without a put quote the check is absent and the gap is null.
    let mut no_put = passing();
    no_put.next_layer.put_premium_usd = None;
    let report = run(&no_put, &Policy::default());
    assert!(report.checks.iter().all(|c| c.id != "parity"));
    assert_eq!(report.metrics.parity_gap_usd, None);
}

#[test]
fn timing_boundary_touching_is_no_overlap() {
    let policy = Policy::default(); // padding 30 minutes
    let blackout = |end: &str| Blackout {
        name: "test".into(),
        start: "2026-05-07T13:00:00Z".parse().unwrap(),
        end: end.parse().unwrap(),
    };
    // execute_after is 14:45: a blackout ending 14:15 touches the padded window only.
    let mut inside = passing();
    inside
        .calendar
        .blackouts
        .push(blackout("2026-05-07T14:15:00Z"));
    let mut outside = passing();
    outside
        .calendar
        .blackouts
        .push(blackout("2026-05-07T14:15:01Z"));
    assert_boundary("timing", (&inside, &policy), (&outside, &policy));
    let report = run(&outside, &policy);
    assert_eq!(check(&report, "timing").value, 1.0);
    // A window that is not ordered fails even without blackouts.
    let mut reversed = passing();
    std::mem::swap(
        &mut reversed.roll.execute_after,
        &mut reversed.roll.execute_before,
    );
    assert_eq!(run(&reversed, &policy).failed_check_ids(), vec!["timing"]);
    // Touching from the other side: a blackout starting 15:45 (execute_before 15:15 + 30).
    let mut after = passing();
    after.calendar.blackouts.push(Blackout {
        name: "late".into(),
        start: "2026-05-07T15:45:00Z".parse().unwrap(),
        end: "2026-05-07T16:00:00Z".parse().unwrap(),
    });
    assert!(check(&run(&after, &policy), "timing").passed);
    after.calendar.blackouts[0].start = "2026-05-07T15:44:59Z".parse().unwrap();
    assert!(!check(&run(&after, &policy), "timing").passed);
}

#[test]
fn timing_fails_once_the_window_has_ended() {
    let p = passing(); // window 14:45 to 15:15, snapshot 14:30
                       // A snapshot fresh enough for the whole window, so that only the window decides.
    let mut policy = Policy::default();
    policy.timing.snapshot_max_age_minutes = 120;
    let at = |t: &str| evaluate(&p, &policy, &Draws::none(), t.parse().unwrap()).unwrap();
    // The worked example's clock (14:40) is before the window opens: that is fine.
    assert!(check(&at("2026-05-07T14:40:00Z"), "timing").passed);
    let inside = at("2026-05-07T15:14:59.999Z");
    assert!(
        inside.failed_check_ids().is_empty(),
        "{:?}",
        inside.failed_check_ids()
    );
    for now in [
        "2026-05-07T15:15:00Z",
        "2026-05-07T15:15:00.001Z",
        "2026-05-07T16:29:00Z",
    ] {
        let ended = at(now);
        assert_eq!(ended.failed_check_ids(), vec!["timing"], "{now}");
        assert_eq!(ended.resize_to, None, "a gate: no size passes");
        let timing = check(&ended, "timing");
        assert_eq!((timing.value, timing.limit), (0.0, 0.0), "no blackout hit");
        assert_eq!(
            timing.message,
            format!(
                "the execution window ended at 2026-05-07T15:15:00Z (execute_before); now is {now}"
            )
        );
    }
    // A window that is not ordered says so first, ended or not.
    let mut reversed = passing();
    std::mem::swap(
        &mut reversed.roll.execute_after,
        &mut reversed.roll.execute_before,
    );
    let report = evaluate(
        &reversed,
        &policy,
        &Draws::none(),
        "2026-05-07T16:00:00Z".parse().unwrap(),
    )
    .unwrap();
    assert_eq!(
        check(&report, "timing").message,
        "execute_after must be before execute_before"
    );
}

#[test]
fn staleness_boundary_both_sides() {
    let p = passing(); // as_of 14:30
    let policy = Policy::default(); // 30 minutes
    let at = |t: &str| evaluate(&p, &policy, &Draws::none(), t.parse().unwrap()).unwrap();
    let inside = at("2026-05-07T15:00:00Z");
    assert!(check(&inside, "staleness").passed);
    assert_eq!(check(&inside, "staleness").value, 30.0);
    assert!(inside.failed_check_ids().is_empty());
    let outside = at("2026-05-07T15:00:01Z");
    assert_eq!(outside.failed_check_ids(), vec!["staleness"]);
    // A snapshot from the future (clock skew or a typo) fails too; exactly now passes.
    assert!(check(&at("2026-05-07T14:30:00Z"), "staleness").passed);
    assert_eq!(
        at("2026-05-07T14:29:59Z").failed_check_ids(),
        vec!["staleness"]
    );
}

#[test]
fn gate_failure_means_no_resize() {
    let mut p = passing();
    p.set_contracts_requested(12); // irr fails (size)...
    let mut policy = Policy::default();
    policy.structure.time_shift_days_min = 60; // ...and a gate fails
    let report = run(&p, &policy);
    assert_eq!(report.failed_check_ids(), vec!["irr", "time_shift"]);
    assert_eq!(report.resize_to, None);
    assert_eq!(report.contracts_max, 9);
}
