//! The approval commands through the real binary, on SQLite and PostgreSQL: keys from keygen,
//! openssl and ssh-keygen; every refusal leaves the ledger exactly as it was.

mod common;

use std::ops::Deref;
use std::path::Path;
use std::process::Command;

use common::desk::{roll_dated_now, text, tool, CliDesk};
use common::TestDb;

/// The approval tests' desk: a `CliDesk` that also writes and proposes rolls.
struct Desk<'a>(CliDesk<'a>);

impl<'a> Deref for Desk<'a> {
    type Target = CliDesk<'a>;
    fn deref(&self) -> &CliDesk<'a> {
        &self.0
    }
}

impl Desk<'_> {
    /// A roll proposal file dated now, requesting `contracts`.
    fn proposal(&self, name: &str, contracts: u32) -> String {
        let mut proposal = roll_dated_now(contracts);
        common::own_layer(&mut proposal);
        let path = self.path(name);
        std::fs::write(&path, proposal.to_toml_string()).unwrap();
        path
    }

    fn propose(&self, key: &str, contracts: u32) -> String {
        let file = self.proposal(
            &format!("p{contracts}-{}.toml", uuid::Uuid::now_v7().simple()),
            contracts,
        );
        let out = self.run(&["propose", &file, "--key", &self.path(key), "--json"]);
        let value: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out.stderr)));
        value["proposal_id"].as_str().unwrap().to_string()
    }
}

/// alice from `rollbook keygen`, bob from `openssl genpkey`, carol from `ssh-keygen`; dave and
/// erin (keygen) are not in the first set.
fn desk<'a>(db: &'a TestDb, threshold: u32, policy: Option<&str>) -> Desk<'a> {
    let desk = Desk(CliDesk::new(db));
    let p = |name: &str| desk.path(name);
    for name in ["alice", "dave", "erin"] {
        desk.keygen(name);
    }
    tool(
        "openssl",
        &["genpkey", "-algorithm", "ed25519", "-out", &p("bob.key")],
        &[],
    );
    tool(
        "openssl",
        &[
            "pkey",
            "-in",
            &p("bob.key"),
            "-pubout",
            "-out",
            &p("bob.pub.pem"),
        ],
        &[],
    );
    tool(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "carol",
            "-f",
            &p("carol.key"),
        ],
        &[],
    );
    std::fs::set_permissions(
        p("bob.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let signers = format!(
        "threshold = {threshold}\n[[signers]]\nname = \"alice\"\nrole = \"risk\"\npublic_key_file = \"alice.key.pub\"\n\
         [[signers]]\nname = \"bob\"\npublic_key_file = \"bob.pub.pem\"\n[[signers]]\nname = \"carol\"\npublic_key_file = \"carol.key.pub\"\n"
    );
    std::fs::write(p("signers.toml"), signers).unwrap();
    let mut args = vec![
        "init".to_string(),
        "--signers".into(),
        p("signers.toml"),
        "--key".into(),
        p("alice.key"),
    ];
    if let Some(policy) = policy {
        std::fs::write(p("policy.toml"), policy).unwrap();
        args.extend(["--policy".into(), p("policy.toml")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    desk.ok(&args);
    desk
}

both_backends!(
    keys_from_three_tools_commit_a_roll,
    refusals_change_nothing,
    expired_proposals_cannot_be_signed,
    an_hour_slow_signer_is_refused_under_faketime,
    offline_signing_and_replayed_or_malleated_signatures,
    a_removed_signer_is_refused,
    two_concurrent_signers_commit_exactly_once,
    two_signers_of_the_shipped_example_remove_the_third,
    init_is_refused_on_an_existing_ledger_and_bad_signer_files_are_named,
    evaluate_on_the_ledger_and_propose_count_what_the_layer_already_draws,
);

async fn keys_from_three_tools_commit_a_roll(db: &TestDb) {
    let desk = desk(db, 2, None);
    let id = desk.propose("bob.key", 9);
    let inbox = desk.json(&["inbox", "--key", &desk.path("alice.key")]);
    assert_eq!(
        inbox.as_array().unwrap().len(),
        1,
        "alice's inbox holds bob's proposal"
    );
    assert_eq!(
        desk.json(&["inbox", "--key", &desk.path("bob.key")])
            .as_array()
            .unwrap()
            .len(),
        0,
        "bob proposed it"
    );
    let first = desk.json(&["sign", &id, "--key", &desk.path("alice.key")]);
    assert_eq!(first["status"], "pending");
    let second = desk.json(&["sign", &id, "--key", &desk.path("carol.key")]);
    assert_eq!(second["status"], "committed");
    let show = desk.json(&["show", &id]);
    for key in [
        "proposal_id",
        "status",
        "verdict",
        "proposer",
        "threshold",
        "signatures",
        "missing",
        "expires_at",
    ] {
        assert!(show.get(key).is_some(), "show --json lacks {key}");
    }
    assert_eq!(show["status"], "committed");
    assert_eq!(show["proposer"], "bob");
    assert_eq!(show["threshold"], 2);
    let names: Vec<&str> = show["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["alice", "carol"]);
    assert!(show["report"]["contracts_max"].is_number());
    let list = desk.json(&["list", "--status", "committed"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(
        list[0].get("report").is_none(),
        "list leaves the report out"
    );
    assert_eq!(
        desk.json(&["list", "--limit", "0"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    desk.ok(&["rebuild"]);
    assert_eq!(desk.json(&["show", &id])["status"], "committed");
}

async fn refusals_change_nothing(db: &TestDb) {
    let desk = desk(db, 2, None);
    let key = |name: &str| desk.path(&format!("{name}.key"));
    // An outsider.
    let id = desk.propose("bob.key", 9);
    desk.refused(
        &["sign", &id, "--key", &key("dave")],
        3,
        "not in signer set v1",
    );
    desk.refused(
        &[
            "propose",
            &desk.proposal("x.toml", 9),
            "--key",
            &key("dave"),
        ],
        3,
        "not in signer set",
    );
    // The proposer's own signature, and a duplicate.
    desk.refused(&["sign", &id, "--key", &key("bob")], 3, "maker-checker");
    desk.ok(&["sign", &id, "--key", &key("alice")]);
    desk.refused(&["sign", &id, "--key", &key("alice")], 3, "already signed");
    // A failed proposal.
    let out = desk.run(&[
        "propose",
        &desk.proposal("twelve.toml", 12),
        "--key",
        &key("bob"),
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failing verdict is recorded and exits 1"
    );
    let failed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (failed["verdict"].as_str(), failed["status"].as_str()),
        (Some("fail"), Some("failed"))
    );
    assert_eq!(failed["contracts_max"], 9);
    let failed_id = failed["proposal_id"].as_str().unwrap();
    desk.refused(
        &["sign", failed_id, "--key", &key("alice")],
        3,
        "failed its guardrails",
    );
    // Vetoed, then signed.
    let vetoed = desk.propose("bob.key", 8);
    desk.ok(&[
        "reject",
        &vetoed,
        "--key",
        &key("carol"),
        "--reason",
        "quotes are stale",
    ]);
    desk.refused(&["sign", &vetoed, "--key", &key("alice")], 3, "vetoed");
    desk.refused(
        &[
            "reject",
            &vetoed,
            "--key",
            &key("alice"),
            "--reason",
            "again",
        ],
        3,
        "vetoed",
    );
    // Withdrawn by someone else, then by the proposer, then signed.
    let withdrawn = desk.propose("bob.key", 7);
    desk.refused(
        &["withdraw", &withdrawn, "--key", &key("alice")],
        3,
        "only the proposer (bob)",
    );
    desk.ok(&["withdraw", &withdrawn, "--key", &key("bob")]);
    desk.refused(&["sign", &withdrawn, "--key", &key("carol")], 3, "withdrew");
    // Bad input of other kinds.
    desk.refused(
        &["sign", "not-a-uuid", "--key", &key("alice")],
        2,
        "not a proposal id",
    );
    desk.refused(
        &[
            "sign",
            &uuid::Uuid::now_v7().to_string(),
            "--key",
            &key("alice"),
        ],
        2,
        "no proposal",
    );
    desk.refused(
        &["sign", &id, "--key", &desk.path("missing.key")],
        2,
        "missing.key",
    );
    desk.refused(
        &["sign", &id, "--key", &desk.path("alice.key.pub")],
        2,
        "alice.key.pub",
    );
    tool(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "rsa",
            "-b",
            "2048",
            "-N",
            "",
            "-f",
            &desk.path("rsa.key"),
        ],
        &[],
    );
    desk.refused(&["sign", &id, "--key", &desk.path("rsa.key")], 2, "RSA");
    std::fs::write(desk.path("raw.key"), [7u8; 64]).unwrap();
    desk.refused(&["sign", &id, "--key", &desk.path("raw.key")], 2, "raw.key");
    // Nothing above moved the proposal: carol's signature still commits it.
    assert_eq!(
        desk.json(&["sign", &id, "--key", &key("carol")])["status"],
        "committed"
    );
    desk.ok(&["verify"]);
}

async fn expired_proposals_cannot_be_signed(db: &TestDb) {
    let desk = desk(db, 2, Some("[approval]\nproposal_ttl_seconds = 1\n"));
    let id = desk.propose("bob.key", 9);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    desk.refused(
        &["sign", &id, "--key", &desk.path("alice.key")],
        3,
        "expired",
    );
    desk.refused(
        &[
            "reject",
            &id,
            "--key",
            &desk.path("alice.key"),
            "--reason",
            "late",
        ],
        3,
        "expired",
    );
    desk.refused(
        &["withdraw", &id, "--key", &desk.path("bob.key")],
        3,
        "expired",
    );
    assert_eq!(desk.json(&["show", &id])["status"], "expired");
    assert_eq!(
        desk.json(&["list", "--status", "expired"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        desk.json(&["inbox", "--key", &desk.path("alice.key")])
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

/// Issue 20, as reproduced: a proposal that expired was committed by signers running
/// `faketime -f '-1h' rollbook sign`. Each is now refused, naming the clocks, and nothing is
/// written (PostgreSQL: the server's clock disagrees; SQLite: the ledger's last event lies in
/// the slow clock's future). `faketime` (Debian's package) is installed by `.ci/run`.
async fn an_hour_slow_signer_is_refused_under_faketime(db: &TestDb) {
    let desk = desk(db, 2, Some("[approval]\nproposal_ttl_seconds = 1\n"));
    let id = desk.propose("bob.key", 9);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let before = desk.head();
    for signer in ["alice.key", "carol.key"] {
        let out = Command::new("faketime")
            .args(["-f", "-1h", env!("CARGO_BIN_EXE_rollbook")])
            .env("ROLLBOOK_STATE_DIR", db.state_dir())
            .env_remove("ROLLBOOK_DB")
            .args(["--db", &db.url, "sign", &id, "--key", &desk.path(signer)])
            .output()
            .expect("faketime is installed (Debian package faketime)");
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{signer} signed: {stderr}");
        assert!(stderr.contains("clock"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        if db.backend == "postgres" {
            assert!(
                stderr.contains("differs from the ledger's clock"),
                "{stderr}"
            );
        }
    }
    assert_eq!(desk.head(), before);
    assert_eq!(desk.json(&["show", &id])["status"], "expired");
}

fn edit_json(path: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}

async fn offline_signing_and_replayed_or_malleated_signatures(db: &TestDb) {
    let desk = desk(db, 2, None);
    let a = desk.propose("bob.key", 9);
    let b = desk.propose("bob.key", 8);
    let request = desk.path("req.json");
    desk.ok(&["request", &a, "--out", &request]);
    // The offline signer refuses an altered request.
    let altered = desk.path("altered.json");
    std::fs::copy(&request, &altered).unwrap();
    edit_json(&altered, |v| {
        v["body"] = serde_json::Value::String(
            v["body"]
                .as_str()
                .unwrap()
                .replace("contracts = 9", "contracts = 90"),
        )
    });
    let out = common::rollbook_command()
        .args([
            "sign",
            &a,
            "--key",
            &desk.path("alice.key"),
            "--offline",
            "--request",
            &altered,
            "--out",
            &desk.path("x.sig"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("altered"),
        "{}",
        text(&out.stderr)
    );
    // Sign offline (no --db needed), then attach.
    let sig = desk.path("alice.sig.json");
    let out = common::rollbook_command()
        .args([
            "sign",
            &a,
            "--key",
            &desk.path("alice.key"),
            "--offline",
            "--request",
            &request,
            "--out",
            &sig,
        ])
        .env("ROLLBOOK_DB", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Replay alice's signature for A onto B: refused.
    let replay = desk.path("replay.json");
    std::fs::copy(&sig, &replay).unwrap();
    edit_json(&replay, |v| {
        v["proposal_id"] = serde_json::Value::String(b.clone())
    });
    desk.refused(&["attach", &replay], 3, "for proposal");
    // Malleate it (S + L): refused by verify_strict.
    let malleated = desk.path("malleated.json");
    std::fs::copy(&sig, &malleated).unwrap();
    edit_json(&malleated, |v| {
        let hex = v["signature"]["signature"].as_str().unwrap().to_string();
        let mut bytes = rollbook::crypto::from_hex(&hex).unwrap();
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = bytes[32 + i] as u16 + l[i] as u16 + carry;
            bytes[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        v["signature"]["signature"] = serde_json::Value::String(rollbook::crypto::to_hex(&bytes));
    });
    desk.refused(&["attach", &malleated], 3, "does not verify");
    // The request names the head its client verified and the hash of the set in force, the
    // one `governance show` prints.
    let req: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&request).unwrap()).unwrap();
    assert!(req["head_seq"].as_u64().unwrap() >= 3, "{req}");
    let shown = desk.json(&["governance", "show"]);
    assert_eq!(req["signer_set_hash"], shown["signer_set_hash"]);
    // A request whose head was altered makes a signature on a head the chain never had:
    // attach refuses it (A11), against the hash this client verified at that seq.
    let forged_head = desk.path("forged-head.json");
    std::fs::copy(&request, &forged_head).unwrap();
    edit_json(&forged_head, |v| {
        v["head_hash"] = serde_json::Value::String("ab".repeat(32))
    });
    let forged_sig = desk.path("forged-head.sig.json");
    desk.ok(&[
        "sign",
        &a,
        "--key",
        &desk.path("carol.key"),
        "--offline",
        "--request",
        &forged_head,
        "--out",
        &forged_sig,
    ]);
    desk.refused(
        &["attach", &forged_sig],
        3,
        &format!(
            "binds the head at seq {} with hash {}, but this client verified",
            req["head_seq"],
            "ab".repeat(32)
        ),
    );
    // A signature file of an earlier format (v3, whose subject carried no signer set hash) is
    // bad input, naming both formats, even with the signature itself intact.
    let older = desk.path("older-format.sig.json");
    std::fs::copy(&sig, &older).unwrap();
    edit_json(&older, |v| {
        assert_eq!(v["format"], "rollbook-signature/v4");
        v["format"] = serde_json::Value::String("rollbook-signature/v3".into())
    });
    desk.refused(
        &["attach", &older],
        2,
        "format \"rollbook-signature/v3\" is not \"rollbook-signature/v4\"",
    );
    // A request file of the format before v4 is refused naming both, not called "altered".
    let older_request = desk.path("older-format.request.json");
    std::fs::copy(&request, &older_request).unwrap();
    edit_json(&older_request, |v| {
        assert_eq!(v["format"], "rollbook-sign-request/v4");
        v["format"] = serde_json::Value::String("rollbook-sign-request/v3".into())
    });
    let out = desk.run(&[
        "sign",
        &a,
        "--key",
        &desk.path("carol.key"),
        "--offline",
        "--request",
        &older_request,
        "--out",
        &desk.path("never.sig.json"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .contains("\"rollbook-sign-request/v3\" is not \"rollbook-sign-request/v4\""),
        "{}",
        text(&out.stderr)
    );
    // The genuine signature attaches once, and only once.
    assert_eq!(desk.json(&["attach", &sig])["status"], "pending");
    desk.refused(&["attach", &sig], 3, "already signed");
    // A signature from another ledger does not carry over.
    let other = TestDb::sqlite();
    let foreign = desk_in(&other, &desk.dir);
    let foreign_id = foreign.propose("bob.key", 9);
    let foreign_req = desk.path("foreign-req.json");
    foreign.ok(&["request", &foreign_id, "--out", &foreign_req]);
    let foreign_sig = desk.path("foreign.sig.json");
    foreign.ok(&[
        "sign",
        &foreign_id,
        "--key",
        &desk.path("carol.key"),
        "--offline",
        "--request",
        &foreign_req,
        "--out",
        &foreign_sig,
    ]);
    edit_json(&foreign_sig, |v| {
        v["proposal_id"] = serde_json::Value::String(a.clone())
    });
    desk.refused(&["attach", &foreign_sig], 3, "for ledger");
}

/// A second ledger with the same people, in another database.
fn desk_in<'a>(db: &'a TestDb, keys: &Path) -> Desk<'a> {
    let desk = Desk(CliDesk::in_dir(db, keys));
    desk.ok(&[
        "init",
        "--signers",
        &desk.path("signers.toml"),
        "--key",
        &desk.path("carol.key"),
    ]);
    desk
}

async fn a_removed_signer_is_refused(db: &TestDb) {
    let desk = desk(db, 2, None);
    let pending = desk.propose("bob.key", 9);
    // Next set: carol removed, dave added, 2 of 3.
    std::fs::write(
        desk.path("next.toml"),
        "threshold = 2\n[[signers]]\nname = \"alice\"\npublic_key_file = \"alice.key.pub\"\n[[signers]]\nname = \"bob\"\npublic_key_file = \"bob.pub.pem\"\n[[signers]]\nname = \"dave\"\npublic_key_file = \"dave.key.pub\"\n",
    )
    .unwrap();
    let motion = desk.json(&[
        "governance",
        "propose-signers",
        "--signers",
        &desk.path("next.toml"),
        "--key",
        &desk.path("alice.key"),
    ]);
    let motion = motion["proposal_id"].as_str().unwrap().to_string();
    desk.refused(
        &["sign", &motion, "--key", &desk.path("erin.key")],
        3,
        "not in signer set",
    );
    assert_eq!(
        desk.json(&["sign", &motion, "--key", &desk.path("bob.key")])["status"],
        "pending"
    );
    // Old set: carol is removed, so alice (the proposer) counts and alice + bob make 2 of the
    // 2 needed; carol's own signature counts for nothing. dave, a new key, must sign too.
    assert_eq!(
        desk.json(&["sign", &motion, "--key", &desk.path("carol.key")])["status"],
        "pending"
    );
    assert_eq!(
        desk.json(&["sign", &motion, "--key", &desk.path("dave.key")])["status"],
        "committed"
    );
    let governance = desk.json(&["governance", "show"]);
    assert_eq!(governance["signer_set_version"], 2);
    assert_eq!(
        desk.json(&["show", &pending])["status"],
        "expired",
        "pending rolls bound to v1 expire"
    );
    desk.refused(
        &["sign", &pending, "--key", &desk.path("alice.key")],
        3,
        "expired",
    );
    let fresh = desk.propose("bob.key", 9);
    desk.refused(
        &["sign", &fresh, "--key", &desk.path("carol.key")],
        3,
        "not in signer set v2",
    );
    assert_eq!(
        desk.json(&["sign", &fresh, "--key", &desk.path("dave.key")])["status"],
        "pending"
    );
    desk.ok(&["verify"]);
}

/// Issue 19, case 9: in the shipped 2-of-3 example (proposer not counted) alice proposes a set
/// without carol and bob's signature commits it; carol never signs. Rolls keep maker-checker.
async fn two_signers_of_the_shipped_example_remove_the_third(db: &TestDb) {
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example");
    let desk = Desk(CliDesk::new(db));
    for file in ["alice.key", "bob.key", "carol.key"] {
        let to = desk.path(file);
        std::fs::copy(keys.join(file), &to).unwrap();
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    for file in [
        "alice.key.pub",
        "bob.key.pub",
        "carol.key.pub",
        "signers.toml",
    ] {
        std::fs::copy(keys.join(file), desk.path(file)).unwrap();
    }
    desk.ok(&[
        "init",
        "--signers",
        &desk.path("signers.toml"),
        "--key",
        &desk.path("alice.key"),
    ]);
    let roll = desk.propose("alice.key", 9);
    assert_eq!(
        desk.json(&["sign", &roll, "--key", &desk.path("bob.key")])["status"],
        "pending",
        "a roll still needs two co-signers besides its proposer"
    );
    let signers = std::fs::read_to_string(desk.path("signers.toml")).unwrap();
    let without_carol = signers[..signers.rfind("[[signers]]").unwrap()].to_string();
    assert!(without_carol.contains("bob.key.pub") && !without_carol.contains("carol.key.pub"));
    std::fs::write(desk.path("next.toml"), without_carol).unwrap();
    let motion = desk.json(&[
        "governance",
        "propose-signers",
        "--signers",
        &desk.path("next.toml"),
        "--key",
        &desk.path("alice.key"),
    ])["proposal_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        desk.json(&["sign", &motion, "--key", &desk.path("bob.key")])["status"],
        "committed"
    );
    let governance = desk.json(&["governance", "show"]);
    assert_eq!(governance["signer_set_version"], 2);
    assert_eq!(desk.json(&["show", &roll])["status"], "expired");
    desk.refused(
        &["sign", &roll, "--key", &desk.path("carol.key")],
        3,
        "expired",
    );
    let verified = desk.json(&["verify"]);
    assert_eq!(verified["proposals"]["committed"], 1, "{verified}");
    assert_eq!(verified["proposals"]["expired"], 1, "{verified}");
}

async fn two_concurrent_signers_commit_exactly_once(db: &TestDb) {
    let desk = desk(db, 2, None);
    for round in 0..3 {
        let id = desk.propose("bob.key", 9);
        let spawn = |key: &str| {
            common::rollbook_command()
                .args([
                    "--db",
                    &db.url,
                    "sign",
                    &id,
                    "--key",
                    &desk.path(key),
                    "--json",
                ])
                .output()
        };
        let (alice, carol) = std::thread::scope(|scope| {
            let a = scope.spawn(|| spawn("alice.key"));
            let c = scope.spawn(|| spawn("carol.key"));
            (a.join().unwrap().unwrap(), c.join().unwrap().unwrap())
        });
        assert!(
            alice.status.success() && carol.status.success(),
            "round {round}: {} / {}",
            text(&alice.stderr),
            text(&carol.stderr)
        );
        let statuses: Vec<serde_json::Value> = [&alice, &carol]
            .iter()
            .map(|o| {
                serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["status"].clone()
            })
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| *s == "committed").count(),
            1,
            "round {round}: exactly one commit: {statuses:?}"
        );
        let show = desk.json(&["show", &id]);
        assert_eq!(show["status"], "committed");
        assert_eq!(show["signatures"].as_array().unwrap().len(), 2);
    }
    let committed = db
        .raw_rows("SELECT count(*) FROM events WHERE event_type = 'proposal.committed'")
        .await;
    assert_eq!(committed[0][0], "3", "one commit event per proposal");
    desk.ok(&["verify"]);
}

async fn init_is_refused_on_an_existing_ledger_and_bad_signer_files_are_named(db: &TestDb) {
    let desk = desk(db, 2, None);
    desk.refused(
        &[
            "init",
            "--signers",
            &desk.path("signers.toml"),
            "--key",
            &desk.path("alice.key"),
        ],
        3,
        "already holds ledger",
    );
    let bad = |name: &str, body: &str, needle: &str| {
        std::fs::write(desk.path(name), body).unwrap();
        let fresh = TestDb::sqlite();
        let out = common::rollbook_command()
            .args([
                "--db",
                &fresh.url,
                "init",
                "--signers",
                &desk.path(name),
                "--key",
                &desk.path("alice.key"),
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(needle),
            "{name}: {}",
            text(&out.stderr)
        );
    };
    let line = |name: &str, file: &str| {
        format!("[[signers]]\nname = \"{name}\"\npublic_key_file = \"{file}\"\n")
    };
    bad(
        "k0.toml",
        &format!("threshold = 0\n{}", line("alice", "alice.key.pub")),
        "threshold",
    );
    bad(
        "k2.toml",
        &format!("threshold = 2\n{}", line("alice", "alice.key.pub")),
        "threshold",
    );
    bad(
        "dupkey.toml",
        &format!(
            "threshold = 1\n{}{}",
            line("alice", "alice.key.pub"),
            line("alias", "alice.key.pub")
        ),
        "same public key",
    );
    bad(
        "dupname.toml",
        &format!(
            "threshold = 1\n{}{}",
            line("alice", "alice.key.pub"),
            line("alice", "bob.pub.pem")
        ),
        "duplicate signer name",
    );
    bad(
        "missing.toml",
        &format!("threshold = 1\n{}", line("alice", "nope.pub")),
        "nope.pub",
    );
    bad(
        "unknown.toml",
        &format!(
            "threshold = 1\nquorum = 2\n{}",
            line("alice", "alice.key.pub")
        ),
        "quorum",
    );
    // The creator must be in the set.
    std::fs::write(
        desk.path("solo.toml"),
        format!("threshold = 1\n{}", line("bob", "bob.pub.pem")),
    )
    .unwrap();
    let fresh = TestDb::sqlite();
    let out = common::rollbook_command()
        .args([
            "--db",
            &fresh.url,
            "init",
            "--signers",
            &desk.path("solo.toml"),
            "--key",
            &desk.path("alice.key"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("must be in its signer set"));
    // K = n warns that one lost key freezes the ledger.
    std::fs::write(
        desk.path("all.toml"),
        format!(
            "threshold = 2\n{}{}",
            line("alice", "alice.key.pub"),
            line("bob", "bob.pub.pem")
        ),
    )
    .unwrap();
    let out = common::rollbook_command()
        .args([
            "--db",
            &TestDb::sqlite().url,
            "init",
            "--signers",
            &desk.path("all.toml"),
            "--key",
            &desk.path("alice.key"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("one lost key freezes the ledger"),
        "{}",
        text(&out.stderr)
    );
}

/// `evaluate --ledger` judges a file as `propose` would now: with the ledger's policy in force
/// (here a growth cap of 10 contracts, where the default allows 25) and what its history
/// already draws on the file's closed layer; plain `evaluate` keeps the defaults. `propose`
/// reports the draws, refuses the identical file while it is pending, and refuses other
/// numbers under the same layer id.
async fn evaluate_on_the_ledger_and_propose_count_what_the_layer_already_draws(db: &TestDb) {
    let desk = desk(db, 2, Some("[growth]\nlayer_growth_max = 0.5\n"));
    let write = |name: &str, contracts: u32, fees_usd: f64| {
        let mut proposal = roll_dated_now(contracts);
        proposal.set_closed_layer("VIX-C22-2026-11-L3", fees_usd);
        proposal.roll.note = name.to_string();
        let path = desk.path(&format!("{name}.toml"));
        std::fs::write(&path, proposal.to_toml_string()).unwrap();
        path
    };
    let first = write("first", 9, 26.0);
    let second = write("second", 2, 26.0);
    let first_id = desk.json(&["propose", &first, "--key", &desk.path("bob.key")])["proposal_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Committed: it draws for good (each client's pin saves the layer and loads it again for
    // the commit and for every later roll on it).
    desk.ok(&["sign", &first_id, "--key", &desk.path("alice.key")]);
    desk.ok(&["sign", &first_id, "--key", &desk.path("carol.key")]);
    // Alone, the second roll passes the default growth cap of 25.
    let out = desk.run(&["evaluate", &second]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // On the ledger: 2 + 9 drawn > 10.
    let out = desk.run(&["evaluate", &second, "--ledger", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["drawn"]["contracts"], 9);
    assert_eq!(report["drawn"]["proposal_ids"][0], first_id.as_str());
    assert_eq!(report["metrics"]["growth_total_contracts"], 10);
    assert!(
        text(&out.stderr).contains("on ledger") && text(&out.stderr).contains("policy v1"),
        "{}",
        text(&out.stderr)
    );
    let human = desk.run(&["evaluate", &second, "--ledger"]);
    assert!(text(&human.stdout).contains("9 contracts drawn by 1 proposals"));
    // The ledger's policy is not mixed with another.
    let out = desk.run(&["evaluate", &second, "--ledger", "--drawn-usd", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // propose says what it drew on, as evaluate did.
    let out = desk.run(&[
        "propose",
        &second,
        "--key",
        &desk.path("carol.key"),
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed verdict is recorded, exit 1"
    );
    let recorded: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(recorded["status"], "failed");
    assert_eq!(recorded["drawn"]["contracts"], 9);
    // The identical file is refused while the first is pending (here: a third roll).
    let third = write("third", 1, 26.0);
    let third_id = desk.json(&["propose", &third, "--key", &desk.path("bob.key")])["proposal_id"]
        .as_str()
        .unwrap()
        .to_string();
    desk.refused(
        &["propose", &third, "--key", &desk.path("carol.key")],
        3,
        &format!("identical to pending proposal {third_id}"),
    );
    desk.ok(&["withdraw", &third_id, "--key", &desk.path("bob.key")]);
    let out = desk.run(&["evaluate", &second, "--ledger", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["drawn"]["contracts"], 9,
        "the withdrawn roll draws nothing"
    );
    let other_fees = write("other-fees", 1, 27.0);
    desk.refused(
        &["propose", &other_fees, "--key", &desk.path("bob.key")],
        2,
        &first_id,
    );
}
