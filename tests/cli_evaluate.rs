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
