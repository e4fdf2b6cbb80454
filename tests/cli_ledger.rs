//! The ledger commands driven through the real binary.

mod common;

use std::process::{Command, Output};

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

fn sqlite3(path: &std::path::Path, sql: &str) -> Output {
    Command::new("sqlite3")
        .arg(path)
        .arg(sql)
        .output()
        .expect("the sqlite3 shell is installed (.ci/run installs it)")
}

#[test]
fn demo_database_refuses_update_and_delete_from_the_sqlite3_shell() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let url = format!("sqlite://{}", path.display());
    let demo = rollbook(&["--db", &url, "demo"]);
    assert!(demo.status.success(), "demo failed: {}", text(&demo.stderr));
    let count = |path| {
        text(&sqlite3(path, "SELECT count(*) FROM events").stdout)
            .trim()
            .to_string()
    };
    let before = count(&path);
    assert_ne!(before, "0");
    for sql in [
        "UPDATE events SET actor = 'x'",
        "DELETE FROM events WHERE seq = 1",
        "DELETE FROM events",
    ] {
        let out = sqlite3(&path, sql);
        assert!(!out.status.success(), "{sql} was accepted");
        assert!(
            text(&out.stderr).contains("append-only"),
            "{sql}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(count(&path), before);
    let verify = rollbook(&["--db", &url, "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stderr));
    // A second demo on the same database is refused, and changes nothing.
    let again = rollbook(&["--db", &url, "demo"]);
    assert_eq!(again.status.code(), Some(3));
    assert!(text(&again.stderr).contains("already holds a ledger"));
    assert_eq!(count(&path), before);
}

#[test]
fn verify_reports_the_first_broken_seq_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let url = format!("sqlite://{}", path.display());
    assert!(rollbook(&["--db", &url, "demo"]).status.success());
    let ok = rollbook(&["--db", &url, "verify", "--json"]);
    let summary: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(summary["valid"], true);
    // An attacker drops the trigger and edits seq 3.
    let out = sqlite3(&path, "DROP TRIGGER events_refuse_update; UPDATE events SET actor = 'SHA256:mallory' WHERE seq = 3;");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bad = rollbook(&["--db", &url, "verify"]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = text(&bad.stderr);
    assert!(
        stderr.contains("seq 3") && stderr.contains("hash"),
        "{stderr}"
    );
    let json = rollbook(&["--db", &url, "verify", "--json"]);
    assert_eq!(json.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["seq"], 3);
    assert!(
        report["error"].as_str().unwrap().contains("hash"),
        "{report}"
    );
}

#[test]
fn rebuild_runs_on_the_demo_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/l.db", dir.path().display());
    assert!(rollbook(&["--db", &url, "demo"]).status.success());
    let out = rollbook(&["--db", &url, "rebuild", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["events_replayed"].as_u64().unwrap() > 0);
}

#[test]
fn the_database_comes_from_rollbook_db_when_no_flag_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/env.db", dir.path().display());
    let out = common::rollbook_command()
        .args(["demo"])
        .env("ROLLBOOK_DB", &url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join("env.db").exists());
}

#[test]
fn the_default_database_is_rollbook_db_in_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::rollbook_command()
        .arg("demo")
        .env_remove("ROLLBOOK_DB")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join("rollbook.db").exists());
}

#[test]
fn bad_and_dead_databases_get_clear_errors() {
    let unsupported = rollbook(&["--db", "mysql://localhost/x", "verify"]);
    assert_eq!(unsupported.status.code(), Some(2));
    assert!(text(&unsupported.stderr).contains("not a supported database URL"));

    // Nothing listens on port 1: a dead server.
    let dead = rollbook(&["--db", "postgres://root:secret@127.0.0.1:1/test", "verify"]);
    assert_eq!(dead.status.code(), Some(4));
    let stderr = text(&dead.stderr);
    assert!(
        stderr.contains("cannot open database postgres://root:***@127.0.0.1:1/test"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "the password leaked: {stderr}");

    let dir = tempfile::tempdir().unwrap();
    let unwritable = rollbook(&[
        "--db",
        &format!("sqlite://{}/no/such/dir/l.db", dir.path().display()),
        "verify",
    ]);
    assert_eq!(unwritable.status.code(), Some(2));
    assert!(
        text(&unwritable.stderr).contains("there is no database"),
        "{}",
        text(&unwritable.stderr)
    );

    // An existing database without a ledger (an empty file is an empty SQLite database).
    std::fs::write(dir.path().join("empty.db"), "").unwrap();
    let empty = rollbook(&[
        "--db",
        &format!("sqlite://{}/empty.db", dir.path().display()),
        "verify",
    ]);
    assert_eq!(
        empty.status.code(),
        Some(2),
        "pointing at a database without a ledger is bad input"
    );
    assert!(text(&empty.stderr).contains("no ledger"));
}

#[test]
fn help_teaches_with_examples() {
    for command in ["demo", "verify", "rebuild"] {
        let out = rollbook(&[command, "--help"]);
        assert!(out.status.success());
        assert!(
            text(&out.stdout).contains("Example"),
            "{command} --help has no example"
        );
    }
}

#[test]
fn read_only_commands_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/typo.db", dir.path().display());
    for args in [
        vec!["list"],
        vec!["verify"],
        vec!["show", "01a20c95-fcf0-703c-b080-9bafd695b4d9"],
        vec!["export", "--out", "-"],
    ] {
        let mut all = vec!["--db", url.as_str()];
        all.extend(args.iter());
        let out = rollbook(&all);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("there is no database"),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file was created"
    );
}
