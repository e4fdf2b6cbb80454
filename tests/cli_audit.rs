//! export / verify FILE / prove / verify-proof / consistency through the real binary.

mod common;

use std::process::Output;

use chrono::{Duration, TimeZone, Utc};

fn rollbook(args: &[&str]) -> Output {
    common::rollbook_command()
        .args(args)
        .env_remove("ROLLBOOK_DB")
        .output()
        .expect("run rollbook")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Demo {
    dir: tempfile::TempDir,
    url: String,
}

impl Demo {
    fn new() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/d.db", dir.path().display());
        let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/keys-example");
        let out = rollbook(&["--db", &url, "demo", "--keys", keys]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        Demo { dir, url }
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["--db", &self.url];
        all.extend_from_slice(args);
        rollbook(&all)
    }
    fn export(&self, name: &str) -> String {
        let path = self.path(name);
        let out = self.run(&["export", "--out", &path]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        path
    }
    /// Bob proposes a fresh 9-contract roll (keys-example), so the ledger grows.
    fn grow(&self) -> String {
        let mut proposal = rollbook::sizing::Proposal::from_toml_str(include_str!(
            "vectors/example-proposal.toml"
        ))
        .unwrap();
        let as_of = Utc.with_ymd_and_hms(2026, 5, 7, 14, 30, 0).unwrap();
        proposal.shift_times(Utc::now() - Duration::minutes(10) - as_of);
        proposal.set_contracts_requested(9);
        let file = self.path("more.toml");
        std::fs::write(&file, proposal.to_toml_string()).unwrap();
        let out = self.run(&[
            "propose",
            &file,
            "--key",
            concat!(env!("CARGO_MANIFEST_DIR"), "/keys-example/bob.key"),
            "--json",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        value["proposal_id"].as_str().unwrap().to_string()
    }
}

#[test]
fn verify_exits_0_valid_1_invalid_2_unreadable() {
    let demo = Demo::new();
    let file = demo.export("audit.jsonl");
    let ok = rollbook(&["verify", &file, "--json"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(summary["valid"], true);
    assert_eq!(summary["proposals"]["executed"], 1);
    assert_eq!(summary["proposals"]["failed"], 1);
    for key in [
        "events",
        "signers",
        "policy_version",
        "head_hash",
        "merkle_root",
    ] {
        assert!(summary.get(key).is_some(), "summary lacks {key}");
    }
    // How far signatures bind it: never the last event (a commit, an execution or a signature
    // binds an earlier head), and the text says what holds the rest.
    let (signed, events) = (
        summary["signed_through_seq"].as_u64().unwrap(),
        summary["events"].as_u64().unwrap(),
    );
    assert!((1..events).contains(&signed), "{signed} of {events}");
    let plain = text(&rollbook(&["verify", &file]).stdout);
    assert!(
        plain.contains(&format!("events 1 to {signed} are bound by signatures"))
            && plain.contains(&format!(
                "the {} after them only by their hashes",
                events - signed
            )),
        "{plain}"
    );
    // One changed character in the last event line.
    let content = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<String> = content.lines().map(str::to_string).collect();
    // Signed checkpoint lines follow the events of their size: find the last event line.
    let last_event = lines
        .iter()
        .rposition(|line| line.starts_with("{\"type\":\"event\""))
        .unwrap();
    lines[last_event] =
        lines[last_event].replacen("\"stream_version\":", "\"stream_version\":1", 1);
    let tampered = demo.path("tampered.jsonl");
    std::fs::write(&tampered, lines.join("\n") + "\n").unwrap();
    let bad = rollbook(&["verify", &tampered, "--json"]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad.stderr));
    let report: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert!(report["seq"].as_u64().unwrap() >= 1);
    // Unreadable: missing, empty, not an export.
    assert_eq!(
        rollbook(&["verify", &demo.path("missing.jsonl")])
            .status
            .code(),
        Some(2)
    );
    let empty = demo.path("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    assert_eq!(rollbook(&["verify", &empty]).status.code(), Some(2));
    let junk = demo.path("junk.jsonl");
    std::fs::write(&junk, "hello\n").unwrap();
    let out = rollbook(&["verify", &junk]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("header"),
        "{}",
        text(&out.stderr)
    );
    // The live ledger verifies too, and stdout is exactly one JSON object for machines.
    let live = demo.run(&["verify", "--json"]);
    assert_eq!(live.status.code(), Some(0));
    let live: serde_json::Value = serde_json::from_slice(&live.stdout).unwrap();
    assert_eq!(live["merkle_root"], summary["merkle_root"]);
}

#[test]
fn csv_has_one_rfc4180_row_per_proposal() {
    let demo = Demo::new();
    let out = demo.run(&["export", "--format", "csv", "--out", "-"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(&out.stdout);
    let rows: Vec<&str> = csv.split("\r\n").filter(|r| !r.is_empty()).collect();
    assert_eq!(rows.len(), 3, "header + 2 proposals: {csv}");
    assert!(
        rows[0].starts_with("proposal_id,kind,status,execution,verdict,failed_checks,created_utc,"),
        "{csv}"
    );
    assert!(
        rows.iter()
            .any(|r| r.contains(",roll,executed,executed,pass,,") && r.contains(",alice; carol,")),
        "{csv}"
    );
    assert!(
        rows.iter().any(|r| r.contains(",roll,failed,,fail,irr,")),
        "{csv}"
    );
}

#[test]
fn inclusion_proofs_verify_alone_and_fail_after_any_change() {
    let demo = Demo::new();
    let list = demo.run(&["list", "--status", "executed", "--json"]);
    let id = serde_json::from_slice::<serde_json::Value>(&list.stdout).unwrap()[0]["proposal_id"]
        .as_str()
        .unwrap()
        .to_string();
    let proof = demo.path("proof.json");
    assert!(demo.run(&["prove", &id, "--out", &proof]).status.success());
    let export = demo.export("audit.jsonl");
    let ok = rollbook(&["verify-proof", &proof, "--checkpoint", &export, "--json"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let value: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(
        value["events"].as_array().unwrap().len(),
        5,
        "recorded, two signatures, commit, execution"
    );
    assert_eq!(value["anchored"], true);
    assert_eq!(rollbook(&["verify-proof", &proof]).status.code(), Some(0));
    // Flip one hex digit of a path hash, of an event field, of the root.
    let original = std::fs::read_to_string(&proof).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&original).unwrap();
    let path_hash = parsed["events"][0]["audit_path"][0]
        .as_str()
        .unwrap()
        .to_string();
    let root = parsed["merkle_root"].as_str().unwrap().to_string();
    let flip = |s: &str| {
        let mut chars: Vec<char> = s.chars().collect();
        chars[10] = if chars[10] == '0' { '1' } else { '0' };
        chars.into_iter().collect::<String>()
    };
    for (from, to) in [
        (path_hash.clone(), flip(&path_hash)),
        (root.clone(), flip(&root)),
        (
            "\"proposal.signed\"".to_string(),
            "\"proposal.signeD\"".to_string(),
        ),
    ] {
        let bad = demo.path("bad-proof.json");
        std::fs::write(&bad, original.replacen(&from, &to, 1)).unwrap();
        let out = rollbook(&["verify-proof", &bad]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "changing {from} was not caught: {}",
            text(&out.stdout)
        );
    }
    // A proof against a checkpoint it does not belong to is refused.
    demo.grow();
    let newer = demo.export("newer.jsonl");
    assert_eq!(
        rollbook(&["verify-proof", &proof, "--checkpoint", &newer])
            .status
            .code(),
        Some(1)
    );
    // Anchored to the older export: prove against its tree size.
    let old_size = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .filter(|line| line.starts_with("{\"type\":\"event\""))
        .count();
    let anchored = demo.path("anchored.json");
    let out = demo.run(&[
        "prove",
        &id,
        "--out",
        &anchored,
        "--tree-size",
        &old_size.to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        rollbook(&["verify-proof", &anchored, "--checkpoint", &export])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        demo.run(&["prove", &id, "--out", &anchored, "--tree-size", "2"])
            .status
            .code(),
        Some(2),
        "the proposal has events beyond seq 2"
    );
}

#[test]
fn consistency_proves_an_older_export_is_a_prefix_of_a_newer_one() {
    let demo = Demo::new();
    let old = demo.export("old.jsonl");
    demo.grow();
    let new = demo.export("new.jsonl");
    let ok = rollbook(&["consistency", &old, &new, "--json"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let value: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(value["consistent"], true);
    assert!(value["new_size"].as_u64().unwrap() > value["old_size"].as_u64().unwrap());
    assert_eq!(
        rollbook(&["consistency", &old, &old]).status.code(),
        Some(0),
        "a tree is a prefix of itself"
    );
    let reversed = rollbook(&["consistency", &new, &old]);
    assert_eq!(reversed.status.code(), Some(1));
    assert!(
        text(&reversed.stderr).contains("history was cut"),
        "{}",
        text(&reversed.stderr)
    );
    // Another ledger's export (a rewritten history) is not consistent with ours.
    let other = Demo::new();
    let foreign = other.export("foreign.jsonl");
    let out = rollbook(&["consistency", &old, &foreign]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("different ledgers"),
        "{}",
        text(&out.stderr)
    );
}

both_backends!(export_of_an_altered_database_fails_and_writes_nothing);

/// A row edited past rollbook: `export` stops at it as `verify` and `list` do (exit 1, the seq
/// and what did not match) and leaves no file behind, nor changes an older export.
async fn export_of_an_altered_database_fails_and_writes_nothing(db: &common::TestDb) {
    let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/keys-example");
    let run = |args: &[&str]| {
        let mut all = vec!["--db", &db.url];
        all.extend_from_slice(args);
        rollbook(&all)
    };
    let out = run(&["demo", "--keys", keys]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let older = db.dir.path().join("audit.jsonl");
    let older = older.to_str().unwrap();
    let out = run(&["export", "--out", older]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let older_bytes = std::fs::read(older).unwrap();

    // The actor is hashed with the event: the store's read-back refuses the row.
    assert_eq!(
        db.tamper("UPDATE events SET actor = 'mallory' WHERE seq = 3")
            .await
            .unwrap(),
        1
    );
    let fresh = db.dir.path().join("fresh.jsonl");
    for (path, format) in [
        (older, "jsonl"),
        (fresh.to_str().unwrap(), "jsonl"),
        (fresh.to_str().unwrap(), "csv"),
    ] {
        // --force: the older export survives even an export allowed to replace it.
        let out = run(&["export", "--format", format, "--out", path, "--force"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{format} to {path}: {stderr}");
        if format == "jsonl" {
            assert!(
                stderr.contains("seq 3") && stderr.contains("does not match its recorded hash"),
                "{stderr}"
            );
        }
    }
    assert_eq!(
        std::fs::read(older).unwrap(),
        older_bytes,
        "the older export is kept"
    );
    assert!(!fresh.exists(), "a stopped export leaves no file");
    let names: Vec<String> = std::fs::read_dir(db.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|name| !name.contains("partial")),
        "no partial file is left: {names:?}"
    );
    // The same finding as the live verification's.
    let verify = run(&["verify"]);
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify.stderr));
    assert!(
        text(&verify.stdout).contains("INVALID at seq 3"),
        "{}",
        text(&verify.stdout)
    );
}
