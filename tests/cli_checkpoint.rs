//! `checkpoint`, `verify --witnesses` and `verify-proof --checkpoint` through the real binary.

mod common;

use std::process::Output;

use chrono::Utc;
use rollbook::crypto::keys::SecretKey;
use rollbook::store::Store;
use rollbook::tlog::cosignature::cosign;
use rollbook::tlog::{Note, VerifierKey, VerifierKind};

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/keys-example");

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
        let demo = Demo { dir, url };
        let out = demo.run(&["demo", "--keys", KEYS]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        demo
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
    fn run(&self, args: &[&str]) -> Output {
        common::rollbook_command()
            .env("ROLLBOOK_STATE_DIR", self.dir.path().join("state"))
            .env_remove("ROLLBOOK_DB")
            .arg("--db")
            .arg(&self.url)
            .args(args)
            .output()
            .expect("run rollbook")
    }
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }
    fn key(name: &str) -> String {
        format!("{KEYS}/{name}.key")
    }
    /// A witness cosignature of the stored checkpoint of `size`, stored as the client does.
    async fn cosign(&self, size: u64, name: &str, key: &SecretKey) {
        let store = Store::open_existing(&self.url).await.unwrap();
        let ledger_id = store.ledger_ids().await.unwrap()[0];
        let stored = store
            .checkpoint(ledger_id, Some(size))
            .await
            .unwrap()
            .unwrap();
        let note = Note::parse(stored.note.as_bytes()).unwrap();
        let line = cosign(note.text(), name, key, Utc::now().timestamp() as u64)
            .unwrap()
            .to_line();
        store
            .add_checkpoint_signature(
                ledger_id,
                size,
                line.trim_end(),
                Some("http://w"),
                Utc::now(),
            )
            .await
            .unwrap();
        store.close().await;
    }
}

fn policy_file(demo: &Demo, witness: &SecretKey) -> String {
    let vkey = VerifierKey::new("w1", VerifierKind::CosignatureV1, witness.public()).unwrap();
    let path = demo.path("policy.txt");
    std::fs::write(&path, format!("witness w1 {vkey}\nquorum w1\n")).unwrap();
    path
}

#[tokio::test]
async fn a_reviewer_verifies_completeness_with_a_witness_policy() {
    let demo = Demo::new();
    let signed: serde_json::Value =
        serde_json::from_str(&demo.ok(&["checkpoint", "--key", &Demo::key("alice"), "--json"]))
            .unwrap();
    let size = signed["tree_size"].as_u64().unwrap();
    assert_eq!(signed["signer"], "alice");
    let witness = SecretKey::generate().unwrap();
    let policy = policy_file(&demo, &witness);
    let file = demo.path("audit.jsonl");
    demo.ok(&["export", "--out", &file, "--force"]);
    // Without --witnesses: valid, and it says completeness was not checked.
    let plain = demo.ok(&["verify", &file]);
    assert!(plain.contains("completeness  NOT CHECKED"), "{plain}");
    let json: serde_json::Value =
        serde_json::from_str(&demo.ok(&["verify", &file, "--json"])).unwrap();
    assert_eq!(json["completeness"], serde_json::Value::Null);
    // With a policy whose witness has not cosigned: INVALID, exit 1, naming W6.
    let refused = demo.run(&["verify", &file, "--witnesses", &policy]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stdout).contains("W6"),
        "{}",
        text(&refused.stdout)
    );
    // Cosigned: complete.
    demo.cosign(size, "w1", &witness).await;
    demo.ok(&["export", "--out", &file, "--force"]);
    let done = demo.ok(&["verify", &file, "--witnesses", &policy, "--max-age", "1h"]);
    assert!(
        done.contains("completeness  covered by the signed checkpoint"),
        "{done}"
    );
    assert!(done.contains("cosigned by w1"), "{done}");
    let json: serde_json::Value =
        serde_json::from_str(&demo.ok(&["verify", &file, "--witnesses", &policy, "--json"]))
            .unwrap();
    assert_eq!(json["completeness"]["tree_size"], size);
    assert_eq!(json["completeness"]["cosigned_by"][0]["witness"], "w1");
    // --note prints the stored note with every line, byte for byte the export's.
    // The demo's checkpoints: carol's and its witness's lines, then alice's and w1's.
    let note = demo.ok(&["checkpoint", "--note"]);
    assert_eq!(Note::parse(note.as_bytes()).unwrap().signatures().len(), 4);
    let exported = std::fs::read_to_string(&file).unwrap();
    let line = exported
        .lines()
        .rfind(|line| line.starts_with("{\"type\":\"signed_checkpoint\""))
        .unwrap();
    let line: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["note"].as_str().unwrap(), note);
    assert_eq!(
        demo.ok(&["checkpoint", "--note", "--size", &size.to_string()]),
        note
    );
    let missing = demo.run(&["checkpoint", "--note", "--size", "1"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn a_non_signer_is_refused_and_bad_input_is_named() {
    let demo = Demo::new();
    let mallory = demo.path("mallory.key");
    demo.ok(&[
        "keygen",
        "--out",
        &mallory,
        "--name",
        "mallory",
        "--no-passphrase",
    ]);
    let refused = demo.run(&["checkpoint", "--key", &mallory]);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("not a signer of the set in force"));
    let none = demo.run(&["checkpoint", "--note", "--size", "1"]);
    assert_eq!(none.status.code(), Some(2), "no checkpoint of size 1");
    let bad_url = demo.run(&[
        "checkpoint",
        "--key",
        &Demo::key("alice"),
        "--witness",
        "ftp://x",
    ]);
    assert_eq!(bad_url.status.code(), Some(2));
    let file = demo.path("audit.jsonl");
    demo.ok(&["export", "--out", &file, "--force"]);
    for age in ["", "0h", "90", "7w", "-1d", "01h", "1.5h"] {
        let wrong = demo.run(&["verify", &file, "--witnesses", &file, "--max-age", age]);
        assert_eq!(wrong.status.code(), Some(2), "--max-age {age:?}");
    }
    // quorum none and an unverifiable witness key type are refused as bad input.
    let policy = demo.path("none.txt");
    std::fs::write(&policy, "quorum none\n").unwrap();
    let none = demo.run(&["verify", &file, "--witnesses", &policy]);
    assert_eq!(none.status.code(), Some(2), "{}", text(&none.stderr));
    let beyond = demo.run(&["export", "--out", &file, "--force", "--tree-size", "999"]);
    assert_eq!(beyond.status.code(), Some(2));
}

#[tokio::test]
async fn verify_proof_accepts_only_a_checkpoint_that_verifies() {
    let demo = Demo::new();
    let listed: serde_json::Value = serde_json::from_str(&demo.ok(&["list", "--json"])).unwrap();
    let id = listed[0]["proposal_id"]
        .as_str()
        .or_else(|| listed["proposals"][0]["proposal_id"].as_str())
        .expect("a proposal id")
        .to_string();
    let signed: serde_json::Value =
        serde_json::from_str(&demo.ok(&["checkpoint", "--key", &Demo::key("bob"), "--json"]))
            .unwrap();
    let size = signed["tree_size"].as_u64().unwrap();
    let proof = demo.path("proof.json");
    demo.ok(&["prove", &id, "--out", &proof]);
    let file = demo.path("audit.jsonl");
    demo.ok(&["export", "--out", &file, "--force"]);
    // An export that verifies anchors the proof.
    demo.ok(&["verify-proof", &proof, "--checkpoint", &file]);
    // A bare checkpoint line does not.
    let last = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let bare = demo.path("bare.jsonl");
    std::fs::write(&bare, format!("{last}\n")).unwrap();
    let refused = demo.run(&["verify-proof", &proof, "--checkpoint", &bare]);
    assert_ne!(refused.status.code(), Some(0));
    // A signed note needs a policy whose log keys signed it and whose quorum cosigned it.
    let note = demo.path("head.note");
    std::fs::write(&note, demo.ok(&["checkpoint", "--note"])).unwrap();
    let alone = demo.run(&["verify-proof", &proof, "--checkpoint", &note]);
    assert_eq!(alone.status.code(), Some(2), "{}", text(&alone.stderr));
    let witness = SecretKey::generate().unwrap();
    let ledger_id = uuid::Uuid::parse_str(
        signed["origin"]
            .as_str()
            .unwrap()
            .trim_start_matches("rollbook."),
    )
    .unwrap();
    let bob = rollbook::crypto::keyfile::read_secret_key(std::path::Path::new(&Demo::key("bob")))
        .unwrap()
        .0;
    let log = rollbook::audit::completeness::log_key(ledger_id, bob.public()).unwrap();
    let vkey = VerifierKey::new("w1", VerifierKind::CosignatureV1, witness.public()).unwrap();
    let policy = demo.path("policy.txt");
    std::fs::write(
        &policy,
        format!("log {log}\nwitness w1 {vkey}\nquorum w1\n"),
    )
    .unwrap();
    let uncosigned = demo.run(&[
        "verify-proof",
        &proof,
        "--checkpoint",
        &note,
        "--witnesses",
        &policy,
    ]);
    assert_eq!(
        uncosigned.status.code(),
        Some(1),
        "{}",
        text(&uncosigned.stderr)
    );
    demo.cosign(size, "w1", &witness).await;
    std::fs::write(&note, demo.ok(&["checkpoint", "--note"])).unwrap();
    let json: serde_json::Value = serde_json::from_str(&demo.ok(&[
        "verify-proof",
        &proof,
        "--checkpoint",
        &note,
        "--witnesses",
        &policy,
        "--json",
    ]))
    .unwrap();
    assert_eq!(json["anchored"], true);
    assert_eq!(json["tree_size"], size);
}
