//! One test per class of bad input. Each asserts that the error names the field (or, for a
//! file that is not TOML, the line), and that evaluate is never reached with bad data.

use chrono::{DateTime, Utc};
use rollbook::sizing::{evaluate, Draws, InputError, Policy, Proposal};

const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/example-proposal.toml"
));

fn now() -> DateTime<Utc> {
    "2026-05-07T14:40:00Z".parse().unwrap()
}

/// The example with one exact substring replaced (the substring must be present).
fn edited(from: &str, to: &str) -> String {
    assert!(EXAMPLE.contains(from), "example does not contain {from:?}");
    EXAMPLE.replacen(from, to, 1)
}

fn proposal_error(text: &str) -> InputError {
    Proposal::from_toml_str(text).expect_err("must be refused")
}

fn assert_names(err: &InputError, field: &str, rule_part: &str) {
    assert_eq!(err.field, field, "{err}");
    assert!(err.rule.contains(rule_part), "{err}");
    assert!(err.to_string().starts_with(field), "{err}");
}

#[test]
fn not_toml() {
    let err = proposal_error("[roll]\nas_of = = 3\n");
    assert!(err.field.contains("line 2"), "{err}");
    assert!(err.rule.contains("not valid TOML"), "{err}");
    let err = proposal_error("this is not toml at all");
    assert!(err.field.contains("line 1"), "{err}");
}

#[test]
fn larger_than_one_mebibyte() {
    let text = format!("{EXAMPLE}\n# {}\n", "x".repeat(1024 * 1024));
    let err = proposal_error(&text);
    assert_names(&err, "proposal", "at most 1048576 bytes");
    let err = Policy::from_toml_str(&" ".repeat(1024 * 1024 + 1)).unwrap_err();
    assert_names(&err, "policy", "at most 1048576 bytes");
}

#[test]
fn nan_and_inf() {
    let err = proposal_error(&edited("spot = 5905.0", "spot = nan"));
    assert_names(&err, "front_condor.spot", "finite");
    let err = proposal_error(&edited("beta = 0.85", "beta = inf"));
    assert_names(&err, "book.beta", "finite");
    let err = proposal_error(&edited(
        "rate = 0.043\nmultiplier",
        "rate = -inf\nmultiplier",
    ));
    assert_names(&err, "next_layer.rate", "finite");
    let err = proposal_error(&edited("[12000.0, ", "[12000.0, nan, "));
    assert_names(&err, "signals.advance_decline_line[1]", "finite");
}

#[test]
fn out_of_range_values() {
    let cases = [
        (
            "implied_vol = 0.95",
            "implied_vol = 0",
            "next_layer.implied_vol",
            "must be > 0, got 0",
        ),
        (
            "contracts = 12",
            "contracts = 0",
            "next_layer.contracts",
            ">= 1",
        ),
        (
            "contracts = 12",
            "contracts = -3",
            "next_layer.contracts",
            ">= 0, got -3",
        ),
        (
            "contracts = 12",
            "contracts = 99999999999",
            "next_layer.contracts",
            "at most 4294967295",
        ),
        (
            "contracts = 12",
            "contracts = 12.5",
            "next_layer.contracts",
            "whole number",
        ),
        (
            "tax_rate = 0.21",
            "tax_rate = 1.5",
            "book.tax_rate",
            "[0, 1]",
        ),
        (
            "ddm_weight = 0.25",
            "ddm_weight = -0.1",
            "book.ddm_weight",
            "[0, 1]",
        ),
        (
            "factor_correlation = 0.3",
            "factor_correlation = 1.01",
            "book.factor_correlation",
            "[-1, 1]",
        ),
        (
            "fees_usd = 26.0",
            "fees_usd = -1",
            "closed_layer.fees_usd",
            ">= 0",
        ),
        (
            "entry_premium_usd = 1.50",
            "entry_premium_usd = 0",
            "closed_layer.entry_premium_usd",
            "> 0",
        ),
        (
            "current_liabilities_usd = 700000.0",
            "current_liabilities_usd = 0",
            "book.current_liabilities_usd",
            "> 0",
        ),
        (
            "price_to_cash_flow = 17.8",
            "price_to_cash_flow = -2",
            "signals.price_to_cash_flow",
            "> 0",
        ),
        (
            "share_price_usd = 60.0",
            "share_price_usd = 0",
            "book.share_price_usd",
            "> 0",
        ),
        (
            "put_premium_usd = 5.50",
            "put_premium_usd = 0",
            "next_layer.put_premium_usd",
            "> 0",
        ),
        (
            "dividend_yield = 0.013",
            "dividend_yield = -0.01",
            "front_condor.dividend_yield",
            ">= 0",
        ),
        (
            "multiplier = 100\nfees_usd",
            "multiplier = 0\nfees_usd",
            "closed_layer.multiplier",
            ">= 1",
        ),
        (
            "spot = 5905.0",
            "spot = \"5905\"",
            "front_condor.spot",
            "must be a number",
        ),
    ];
    for (from, to, field, rule) in cases {
        let err = proposal_error(&edited(from, to));
        assert_names(&err, field, rule);
    }
}

#[test]
fn integers_accepted_where_floats_expected() {
    let p = Proposal::from_toml_str(&edited("spot = 5905.0", "spot = 5905")).unwrap();
    assert_eq!(p.front_condor.spot, 5905.0);
}

#[test]
fn strikes_out_of_order() {
    let err = proposal_error(&edited(
        "short_put_strike = 5600.0",
        "short_put_strike = 5500.0",
    ));
    assert_names(
        &err,
        "front_condor.short_put_strike",
        "long_put < short_put",
    );
    let err = proposal_error(&edited(
        "short_call_strike = 6150.0",
        "short_call_strike = 6250.0",
    ));
    assert_names(
        &err,
        "front_condor.long_call_strike",
        "must be above front_condor.short_call_strike",
    );
    let err = proposal_error(&edited(
        "short_call_strike = 6150.0",
        "short_call_strike = 5600.0",
    ));
    assert_names(&err, "front_condor.short_call_strike", "must be above");
}

#[test]
fn net_credit_not_below_the_wider_wing() {
    let err = proposal_error(&edited("net_credit_usd = 12.40", "net_credit_usd = 50"));
    assert_names(
        &err,
        "front_condor.net_credit_usd",
        "below the wider wing 50",
    );
    assert!(
        Proposal::from_toml_str(&edited("net_credit_usd = 12.40", "net_credit_usd = 49.99"))
            .is_ok()
    );
}

#[test]
fn short_series_are_refused_by_evaluate() {
    let mut p = Proposal::from_toml_str(EXAMPLE).unwrap();
    p.signals.advance_decline_line.truncate(14); // RSI(14) needs 15
    let err = evaluate(&p, &Policy::default(), &Draws::none(), now()).unwrap_err();
    assert_names(&err, "signals.advance_decline_line", "at least 15 values");
    let mut p = Proposal::from_toml_str(EXAMPLE).unwrap();
    p.signals.advance_decline_line.truncate(15);
    assert!(evaluate(&p, &Policy::default(), &Draws::none(), now()).is_ok());

    let mut p = Proposal::from_toml_str(EXAMPLE).unwrap();
    p.signals.vix_term_spread.truncate(33); // MACD(12, 26, 9) needs 34
    let err = evaluate(&p, &Policy::default(), &Draws::none(), now()).unwrap_err();
    assert_names(&err, "signals.vix_term_spread", "at least 34 values");
    p.signals.vix_term_spread = Proposal::from_toml_str(EXAMPLE)
        .unwrap()
        .signals
        .vix_term_spread[..34]
        .to_vec();
    assert!(evaluate(&p, &Policy::default(), &Draws::none(), now()).is_ok());
}

#[test]
fn series_longer_than_ten_thousand() {
    let long: Vec<String> = (0..10_001).map(|i| format!("{i}.0")).collect();
    let text = edited(
        "vix_term_spread = [",
        &format!("vix_term_spread = [{}, ", long.join(", ")),
    );
    let err = proposal_error(&text);
    assert_names(&err, "signals.vix_term_spread", "at most 10000");
    // Built in code, evaluate refuses it the same way.
    let mut p = Proposal::from_toml_str(EXAMPLE).unwrap();
    p.signals.advance_decline_line = vec![1.0; 10_001];
    let err = evaluate(&p, &Policy::default(), &Draws::none(), now()).unwrap_err();
    assert_names(&err, "signals.advance_decline_line", "at most 10000");
}

#[test]
fn too_many_cash_flows_and_blackouts() {
    let flows: Vec<String> = (0..1_001)
        .map(|_| "{ date = \"2025-11-21\", amount_usd = -1.0 }".to_string())
        .collect();
    let text = edited(
        "structure_cash_flows = [",
        &format!("structure_cash_flows = [{}, ", flows.join(", ")),
    );
    assert_names(
        &proposal_error(&text),
        "book.structure_cash_flows",
        "at most 1000",
    );
    let blackouts: Vec<String> = (0..1_001)
        .map(|_| {
            "{ name = \"x\", start = \"2026-01-01T00:00:00Z\", end = \"2026-01-01T01:00:00Z\" }"
                .to_string()
        })
        .collect();
    let text = edited(
        "blackouts = [",
        &format!("blackouts = [{}, ", blackouts.join(", ")),
    );
    assert_names(&proposal_error(&text), "calendar.blackouts", "at most 1000");
}

#[test]
fn dates_that_do_not_parse() {
    let err = proposal_error(&edited(
        "expiry = \"2026-07-22\"",
        "expiry = \"2026-13-01\"",
    ));
    assert_names(&err, "next_layer.expiry", "YYYY-MM-DD");
    let err = proposal_error(&edited(
        "as_of = \"2026-05-07T14:30:00Z\"",
        "as_of = \"yesterday\"",
    ));
    assert_names(&err, "roll.as_of", "RFC 3339");
    let err = proposal_error(&edited(
        "execute_before = \"2026-05-07T15:15:00Z\"",
        "execute_before = \"2026-05-07 15:15\"",
    ));
    assert_names(&err, "roll.execute_before", "RFC 3339");
    let err = proposal_error(&edited(
        "{ date = \"2026-01-16\"",
        "{ date = \"16/01/2026\"",
    ));
    assert_names(&err, "book.structure_cash_flows[2].date", "YYYY-MM-DD");
    let err = proposal_error(&edited(
        "end = \"2026-05-12T13:30:00Z\"",
        "end = \"2026-05-12T25:30:00Z\"",
    ));
    assert_names(&err, "calendar.blackouts[0].end", "RFC 3339");
    // A TOML local date-time has no offset: refused rather than guessed.
    let err = proposal_error(&edited(
        "as_of = \"2026-05-07T14:30:00Z\"",
        "as_of = 2026-05-07T14:30:00",
    ));
    assert_names(&err, "roll.as_of", "offset");
    // TOML native dates and offset date-times are accepted and converted to UTC.
    let text = edited("expiry = \"2026-07-22\"", "expiry = 2026-07-22").replacen(
        "as_of = \"2026-05-07T14:30:00Z\"",
        "as_of = 2026-05-07T16:30:00+02:00",
        1,
    );
    let p = Proposal::from_toml_str(&text).unwrap();
    assert_eq!(p, Proposal::from_toml_str(EXAMPLE).unwrap());
}

#[test]
fn blackout_start_not_before_end() {
    let err = proposal_error(&edited(
        "start = \"2026-05-12T12:30:00Z\"",
        "start = \"2026-05-12T13:30:00Z\"",
    ));
    assert_names(&err, "calendar.blackouts[0].start", "before end");
}

#[test]
fn expiry_not_after_the_valuation_date() {
    let err = proposal_error(&edited(
        "expiry = \"2026-06-19\"",
        "expiry = \"2026-05-07\"",
    ));
    assert_names(
        &err,
        "front_condor.expiry",
        "after the valuation date 2026-05-07",
    );
    let err = proposal_error(&edited(
        "expiry = \"2026-07-22\"",
        "expiry = \"2026-05-01\"",
    ));
    assert_names(&err, "next_layer.expiry", "after the valuation date");
}

#[test]
fn cash_flows_without_both_signs() {
    let text = edited("amount_usd = -37600.0", "amount_usd = 37600.0").replacen(
        "amount_usd = -3200.0",
        "amount_usd = 3200.0",
        1,
    );
    let err = proposal_error(&text);
    assert_names(
        &err,
        "book.structure_cash_flows",
        "negative and one positive",
    );
    let text = edited(
        "structure_cash_flows = [",
        "structure_cash_flows = [] \nold_flows = [",
    );
    assert!(proposal_error(&text).to_string().contains("book.old_flows"));
}

#[test]
fn missing_required_fields() {
    let err = proposal_error(&edited("cost_of_debt = 0.065\n", ""));
    assert_names(&err, "book.cost_of_debt", "is required");
    let err = proposal_error(&edited("strike = 25.0\n", ""));
    assert_names(&err, "next_layer.strike", "is required");
    let err = proposal_error(&edited("[signals]", "[signalz]"));
    assert_eq!(err.field, "signalz", "{err}"); // unknown table first
                                               // ddm_weight > 0 needs the dividend inputs; ddm_weight 0 does not.
    let err = proposal_error(&edited("share_price_usd = 60.0\n", ""));
    assert_names(
        &err,
        "book.share_price_usd",
        "required when book.ddm_weight > 0",
    );
    let text = edited("ddm_weight = 0.25\ndividend_next_usd = 2.10\nshare_price_usd = 60.0\ndividend_growth = 0.03\n", "");
    let p = Proposal::from_toml_str(&text).unwrap();
    assert_eq!(p.book.ddm_weight, 0.0);
}

#[test]
fn defaults_applied() {
    let text = edited("multiplier = 100\nfees_usd = 26.0\n", "")
        .replacen("factor_correlation = 0.3\n", "", 1)
        .replacen("dividend_yield = 0.013\n", "", 1)
        .replacen("put_premium_usd = 5.50\n", "", 1)
        .replacen(
            "note = \"VIX spike paid; roll 55% of profit into the July layer\"\n",
            "",
            1,
        );
    let text = text[..text.find("[calendar]").unwrap()].to_string();
    let p = Proposal::from_toml_str(&text).unwrap();
    assert_eq!(p.closed_layer.multiplier, 100);
    assert_eq!(p.closed_layer.fees_usd, 0.0);
    assert_eq!(p.book.factor_correlation, 0.0);
    assert_eq!(p.front_condor.dividend_yield, 0.0);
    assert_eq!(p.next_layer.put_premium_usd, None);
    assert_eq!(p.roll.note, "");
    assert!(p.calendar.blackouts.is_empty());
}

#[test]
fn closed_layer_id_is_optional_and_well_formed() {
    let p = Proposal::from_toml_str(EXAMPLE).unwrap();
    assert_eq!(p.closed_layer.id.as_deref(), Some("VIX-C22-2026-11-L3"));
    // Optional in the file (`propose` is what requires it); the TOML round trip keeps it.
    let without = edited("id = \"VIX-C22-2026-11-L3\"\n", "");
    let q = Proposal::from_toml_str(&without).unwrap();
    assert_eq!(q.closed_layer.id, None);
    assert!(!q.to_toml_string().contains("id ="));
    assert_eq!(Proposal::from_toml_str(&p.to_toml_string()).unwrap(), p);
    for ok in ["a", "L3", "desk/VIX:C22_2026.11-L3", &"x".repeat(64)] {
        let text = edited("\"VIX-C22-2026-11-L3\"", &format!("{ok:?}"));
        let p = Proposal::from_toml_str(&text).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(p.closed_layer.id.as_deref(), Some(ok));
    }
    let cases = [
        ("\"\"", "must be 1 to 64 characters, got 0"),
        (
            &format!("{:?}", "x".repeat(65)),
            "must be 1 to 64 characters, got 65",
        ),
        ("\"L 3\"", "got ' ' (U+0020)"),
        // A Cyrillic a that looks like the Latin one.
        ("\"L\u{430}yer\"", "got 'а' (U+0430)"),
        ("\"L3\\u200b\"", "(U+200B)"),
        ("\"L3\\n\"", "(U+000A)"),
        ("3", "must be a string, got 3"),
    ];
    for (value, rule) in cases {
        let err = proposal_error(&edited("\"VIX-C22-2026-11-L3\"", value));
        assert_names(&err, "closed_layer.id", rule);
    }
    let err = proposal_error(&edited("\"VIX-C22-2026-11-L3\"", "\"L\u{430}yer\""));
    assert!(
        err.rule.contains("ASCII letters, digits and -_.:/"),
        "{err}"
    );
    // Structs built in code are checked by evaluate too.
    let mut p = Proposal::from_toml_str(EXAMPLE).unwrap();
    p.closed_layer.id = Some(String::new());
    let err = evaluate(&p, &Policy::default(), &Draws::none(), now()).unwrap_err();
    assert_names(&err, "closed_layer.id", "1 to 64");
}

#[test]
fn unknown_keys() {
    let err = proposal_error(&edited("strike = 25.0", "strke = 25.0"));
    assert_names(&err, "next_layer.strke", "is not a known field");
    let err = proposal_error(&format!("{EXAMPLE}\n[extra]\nx = 1\n"));
    assert_names(&err, "extra", "is not a known field");
    let err = proposal_error(&edited(
        "{ name = \"CPI\",",
        "{ name = \"CPI\", color = \"red\",",
    ));
    assert_names(&err, "calendar.blackouts[0].color", "is not a known field");
}

#[test]
fn policy_bad_inputs() {
    let cases = [
        ("[risk]\nx = 1\n", "risk", "is not a known field"),
        (
            "[coefficient]\nflor = 0.5\n",
            "coefficient.flor",
            "is not a known field",
        ),
        (
            "[coefficient]\nfloor = 0.7\n",
            "coefficient.floor",
            "<= coefficient.cap",
        ),
        (
            "[coefficient]\npcf_low = 25\n",
            "coefficient.pcf_low",
            "< coefficient.pcf_high",
        ),
        (
            "[coefficient]\npcf_weight = 1.5\n",
            "coefficient.pcf_weight",
            "[0, 1]",
        ),
        (
            "[coefficient]\npcf_weight = -0.1\n",
            "coefficient.pcf_weight",
            "[0, 1]",
        ),
        (
            "[coefficient]\nrsi_period = 0\n",
            "coefficient.rsi_period",
            "[1, 10000]",
        ),
        (
            "[signals]\nmacd_signal = 0\n",
            "signals.macd_signal",
            "[1, 10000]",
        ),
        (
            "[signals]\nmacd_fast = 26\n",
            "signals.macd_fast",
            "< signals.macd_slow",
        ),
        (
            "[liquidity]\nquick_ratio_min = nan\n",
            "liquidity.quick_ratio_min",
            "finite",
        ),
        (
            "[wacc]\nincremental_bps_max = inf\n",
            "wacc.incremental_bps_max",
            "finite",
        ),
        (
            "[growth]\nlayer_growth_max = -1\n",
            "growth.layer_growth_max",
            ">= 0",
        ),
        (
            "[signals]\nrequire_macd_support = \"yes\"\n",
            "signals.require_macd_support",
            "true or false",
        ),
        (
            "[timing]\nsnapshot_max_age_minutes = -5\n",
            "timing.snapshot_max_age_minutes",
            ">= 0",
        ),
        (
            "[timing]\nclock_skew_max_seconds = 0\n",
            "timing.clock_skew_max_seconds",
            "must be between 1 and 86400 (one day), got 0",
        ),
        (
            "[timing]\nclock_skew_max_seconds = 86401\n",
            "timing.clock_skew_max_seconds",
            "must be between 1 and 86400 (one day), got 86401",
        ),
        (
            "[timing]\nclock_skew_max_seconds = -1\n",
            "timing.clock_skew_max_seconds",
            ">= 0, got -1",
        ),
        (
            "[timing]\nclock_skew_max_seconds = 1.5\n",
            "timing.clock_skew_max_seconds",
            "whole number",
        ),
        ("coefficient = 3\n", "coefficient", "must be a table"),
    ];
    for (text, field, rule) in cases {
        let err = Policy::from_toml_str(text).expect_err(text);
        assert_names(&err, field, rule);
    }
    let err = Policy::from_toml_str("[coefficient\n").unwrap_err();
    assert!(err.field.starts_with("policy (line 1"), "{err}");
}

#[test]
fn evaluate_revalidates_structs_built_in_code() {
    let mut p = Proposal::from_toml_str(EXAMPLE).unwrap();
    p.next_layer.implied_vol = 0.0;
    let err = evaluate(&p, &Policy::default(), &Draws::none(), now()).unwrap_err();
    assert_eq!(err.to_string(), "next_layer.implied_vol must be > 0, got 0");
    let mut policy = Policy::default();
    policy.coefficient.floor = f64::NAN;
    let p = Proposal::from_toml_str(EXAMPLE).unwrap();
    let err = evaluate(&p, &policy, &Draws::none(), now()).unwrap_err();
    assert_names(&err, "coefficient.floor", "finite");
}
