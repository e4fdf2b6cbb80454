//! `rollbook evaluate` through the real binary: the worked example and bad input.

mod common;

use std::process::Output;

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/example-proposal.toml"
);
const NOW: &str = "2026-05-07T14:40:00Z";

fn rollbook(args: &[&str]) -> Output {
    common::rollbook_command()
        .args(args)
        .output()
        .expect("run rollbook")
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn the_worked_example_fails_on_irr_with_nine_contracts_max() {
    let out = rollbook(&["evaluate", EXAMPLE, "--now", NOW, "--json"]);
    assert_eq!(out.status.code(), Some(1), "fail verdict exits 1");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "fail");
    assert_eq!(report["contracts_max"], 9);
    assert_eq!(report["resize_to"], 9);
    let failed: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|check| check["passed"] == false)
        .map(|check| check["id"].as_str().unwrap())
        .collect();
    assert_eq!(failed, vec!["irr"]);
    assert!((report["realized_profit_usd"].as_f64().unwrap() - 10574.0).abs() < 1e-6);
    assert!((report["caps"]["budget_usd"].as_f64().unwrap() - 5886.94).abs() < 0.005);
    assert!((report["metrics"]["structure_irr"].as_f64().unwrap() - 0.351554).abs() < 1e-6);
}

#[test]
fn nine_contracts_pass_and_the_human_view_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(EXAMPLE)
            .unwrap()
            .replacen("contracts = 12", "contracts = 9", 1);
    let nine = write(&dir, "nine.toml", &text);
    let out = rollbook(&["evaluate", &nine, "--now", NOW, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "pass");
    let human = rollbook(&["evaluate", EXAMPLE, "--now", NOW]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("resize to at most 9 contracts"), "{text}");
    assert!(text.contains("irr") && text.contains("FAIL"), "{text}");
}

#[test]
fn a_policy_file_overrides_defaults_and_changes_the_hash() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        &dir,
        "policy.toml",
        "[structure]\nrequire_layer_cost_within_irr = false\n",
    );
    let out = rollbook(&[
        "evaluate", EXAMPLE, "--now", NOW, "--json", "--policy", &policy,
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let default: serde_json::Value =
        serde_json::from_slice(&rollbook(&["evaluate", EXAMPLE, "--now", NOW, "--json"]).stdout)
            .unwrap();
    assert_ne!(report["policy_hash"], default["policy_hash"]);
    assert_eq!(
        report["verdict"], "pass",
        "with the IRR switch off, 12 contracts pass"
    );
    assert_eq!(out.status.code(), Some(0));
}

fn assert_bad_input(args: &[&str], needle: &str) {
    let out = rollbook(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    assert!(
        stderr.contains(needle),
        "{args:?}: {stderr:?} does not mention {needle:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_input_exits_2_naming_the_field_and_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    let nan = write(
        &dir,
        "nan.toml",
        &example.replacen("implied_vol = 0.95", "implied_vol = nan", 1),
    );
    assert_bad_input(&["evaluate", &nan, "--now", NOW], "next_layer.implied_vol");
    let zero = write(
        &dir,
        "zero.toml",
        &example.replacen("implied_vol = 0.95", "implied_vol = 0", 1),
    );
    assert_bad_input(
        &["evaluate", &zero, "--now", NOW],
        "next_layer.implied_vol must be > 0",
    );
    let huge = write(
        &dir,
        "huge.toml",
        &example.replacen("contracts = 12", "contracts = 99999999999999999", 1),
    );
    assert_bad_input(&["evaluate", &huge, "--now", NOW], "next_layer.contracts");
    let not_toml = write(&dir, "junk.toml", "this is [not toml");
    assert_bad_input(&["evaluate", &not_toml, "--now", NOW], "junk.toml");
    let big = write(&dir, "big.toml", &"#".repeat(1024 * 1024 + 10));
    assert_bad_input(&["evaluate", &big, "--now", NOW], "larger than the limit");
    assert_bad_input(
        &["evaluate", "/no/such/file.toml"],
        "cannot read /no/such/file.toml",
    );
    assert_bad_input(&["evaluate", EXAMPLE, "--now", "yesterday"], "--now");
    let bad_policy = write(&dir, "p.toml", "[coefficient]\nfloor = 0.9\ncap = 0.5\n");
    assert_bad_input(
        &["evaluate", EXAMPLE, "--now", NOW, "--policy", &bad_policy],
        "coefficient",
    );
    let unknown = write(&dir, "u.toml", "[coefficient]\nflor = 0.4\n");
    assert_bad_input(
        &["evaluate", EXAMPLE, "--now", NOW, "--policy", &unknown],
        "flor",
    );
}

#[test]
fn drawn_flags_count_against_the_layer_and_show_in_both_views() {
    let args = [
        "evaluate",
        EXAMPLE,
        "--now",
        NOW,
        "--drawn-usd",
        "5310",
        "--drawn-contracts",
        "18",
    ];
    let out = rollbook(&[&args[..], &["--json"]].concat());
    assert_eq!(out.status.code(), Some(1), "fail verdict exits 1");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["drawn"],
        serde_json::json!({
            "closed_layer_id": "VIX-C22-2026-11-L3",
            "outlay_usd": 5310.0,
            "contracts": 18,
            "proposal_ids": [],
        })
    );
    // 5,886.94 - 5,310 = 576.94 USD left: one contract of 295; growth leaves 25 - 18 = 7.
    assert!((report["caps"]["budget_usd"].as_f64().unwrap() - 576.94).abs() < 0.005);
    assert!((report["metrics"]["budget_total_usd"].as_f64().unwrap() - 5886.94).abs() < 0.005);
    assert_eq!(report["caps"]["growth_contracts"], 7);
    assert_eq!(report["metrics"]["growth_total_contracts"], 25);
    assert_eq!(report["contracts_max"], 1);
    assert_eq!(report["resize_to"], 1);
    let human = rollbook(&args);
    assert_eq!(human.status.code(), Some(1));
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("drawn on closed layer VIX-C22-2026-11-L3: 5310.00 USD of budget 5886.94 USD, 18 of growth cap 25 contracts"),
        "{text}"
    );
    assert!(text.contains("caps: budget 576.94 USD"), "{text}");

    // Without the flags nothing is drawn, and the human view says so.
    let out = rollbook(&["evaluate", EXAMPLE, "--now", NOW, "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["drawn"]["outlay_usd"], 0.0);
    assert_eq!(report["drawn"]["contracts"], 0);
    let text = String::from_utf8_lossy(&rollbook(&["evaluate", EXAMPLE, "--now", NOW]).stdout)
        .into_owned();
    assert!(
        text.contains("drawn on closed layer VIX-C22-2026-11-L3: nothing"),
        "{text}"
    );
}

#[test]
fn bad_drawn_flags_exit_2_naming_the_flag() {
    let with = |flag: &str, value: &str| {
        // `--flag=value`, so that clap never reads a negative value as another flag.
        let arg = format!("{flag}={value}");
        vec![
            "evaluate".to_string(),
            EXAMPLE.to_string(),
            "--now".to_string(),
            NOW.to_string(),
            arg,
        ]
    };
    let cases = [
        (
            "--drawn-usd",
            "NaN",
            "--drawn-usd must be a finite number, got NaN",
        ),
        (
            "--drawn-usd",
            "inf",
            "--drawn-usd must be a finite number, got inf",
        ),
        (
            "--drawn-usd",
            "1e400",
            "--drawn-usd must be a finite number, got inf",
        ),
        (
            "--drawn-usd",
            "-1",
            "--drawn-usd must be in [0, 1e12] USD, got -1",
        ),
        (
            "--drawn-usd",
            "2e12",
            "--drawn-usd must be in [0, 1e12] USD, got 2000000000000",
        ),
        ("--drawn-usd", "lots", "--drawn-usd"),
        (
            "--drawn-contracts",
            "-5",
            "must be a whole number of contracts >= 0",
        ),
        (
            "--drawn-contracts",
            "2.5",
            "must be a whole number of contracts",
        ),
        (
            "--drawn-contracts",
            "99999999999999999999",
            "at most 1000000000000",
        ),
        (
            "--drawn-contracts",
            "1000000000001",
            "--drawn-contracts must be at most 1000000000000, got 1000000000001",
        ),
    ];
    for (flag, value, needle) in cases {
        let args = with(flag, value);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_bad_input(&args, needle);
    }
    // A negative value without `=` reaches the rule too, instead of being read as a flag.
    assert_bad_input(
        &["evaluate", EXAMPLE, "--now", NOW, "--drawn-usd", "-1"],
        "--drawn-usd must be in [0, 1e12] USD, got -1",
    );
}

#[test]
fn template_writes_the_example_dated_now() {
    let dir = tempfile::tempdir().unwrap();
    let nine = dir.path().join("nine.toml").display().to_string();
    assert!(rollbook(&["template", "--out", &nine]).status.success());
    let out = rollbook(&["evaluate", &nine, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the template passes now: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let twelve = dir.path().join("twelve.toml").display().to_string();
    assert!(
        rollbook(&["template", "--out", &twelve, "--contracts", "12"])
            .status
            .success()
    );
    let out = rollbook(&["evaluate", &twelve, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["resize_to"], 9);
}

/// Every row of the table carries its unit and the direction that passes; each failed check
/// says why in words (issue 23).
#[test]
fn the_table_has_units_and_directions_and_failures_say_why() {
    let args = [
        "evaluate",
        EXAMPLE,
        "--now",
        NOW,
        "--drawn-usd",
        "5310",
        "--drawn-contracts",
        "18",
    ];
    let text = String::from_utf8_lossy(&rollbook(&args).stdout).into_owned();
    let row = |id: &str| {
        text.lines()
            .find(|line| line.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no {id} row: {text}"))
            .to_string()
    };
    assert!(row("wacc").contains("0.3034 bps  <= 18 bps"), "{text}");
    assert!(row("wacc").ends_with("PASS"), "{text}");
    assert!(
        row("budget").contains("8,850.00 USD  <= 5,886.94 USD"),
        "{text}"
    );
    assert!(
        row("growth").contains("30 contracts  <= 25 contracts"),
        "{text}"
    );
    assert!(row("time_shift").contains("33 days  >= 14 days"), "{text}");
    assert!(row("staleness").contains("10 min  <= 30 min"), "{text}");
    assert!(
        text.contains(
            "budget: 3,540.00 USD > 576.94 USD left of 5,886.94 USD on layer VIX-C22-2026-11-L3"
        ),
        "{text}"
    );
    assert!(
        text.contains("irr: 0.4522 /yr is above 0.3516 /yr (layer cost"),
        "{text}"
    );

    // After the window: the timing check says when it ended.
    let late = ["evaluate", EXAMPLE, "--now", "2026-06-30T00:00:00Z"];
    let text = String::from_utf8_lossy(&rollbook(&late).stdout).into_owned();
    assert!(
        text.contains("timing: the execution window ended at"),
        "{text}"
    );
}
