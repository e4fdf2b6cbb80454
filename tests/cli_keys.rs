//! Keys people trust with real money (issue 22), through the real binary on SQLite and
//! PostgreSQL: a real `ssh-agent` started by the test, passphrase-protected keys from
//! `ssh-keygen -N` and `openssl genpkey -aes256`, and every refusal leaving the ledger as it was.

mod common;

use std::ops::Deref;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::desk::{roll_dated_now, text, tool, without_terminal, CliDesk};
use common::TestDb;

const PASSPHRASE: &str = "correct horse battery";

/// An `ssh-agent` of this test alone, on a socket in its temp dir; killed when dropped.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        // -D: in the foreground, so the child we hold is the agent itself and killing it ends it.
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent is installed");
        let started = Instant::now();
        while !socket.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "ssh-agent did not open its socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Agent { child, socket }
    }

    /// `ssh-add [flags] KEY` into this agent.
    fn add(&self, key: &Path, flags: &[&str]) {
        let mut args: Vec<&str> = flags.to_vec();
        let key = key.display().to_string();
        args.push(&key);
        tool("ssh-add", &args, &[("SSH_AUTH_SOCK", &self.socket)]);
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A desk of three: alice signs through the agent (her `.pub` as --key), bob with an
/// `openssl genpkey -aes256` key, carol with an `ssh-keygen -N` key (both through
/// --passphrase-file). Threshold 2, proposers not counted (the default policy).
struct Desk<'a> {
    /// Every command of the desk runs with the agent's socket as `SSH_AUTH_SOCK`.
    cli: CliDesk<'a>,
    agent: Agent,
}

impl<'a> Deref for Desk<'a> {
    type Target = CliDesk<'a>;
    fn deref(&self) -> &CliDesk<'a> {
        &self.cli
    }
}

impl<'a> Desk<'a> {
    fn new(db: &'a TestDb) -> Desk<'a> {
        let agent = Agent::start(db.dir.path());
        let desk = Desk {
            cli: CliDesk::new(db).with_env("SSH_AUTH_SOCK", agent.socket.clone()),
            agent,
        };
        let p = |name: &str| desk.path(name);
        std::fs::write(p("pass"), format!("{PASSPHRASE}\n")).unwrap();
        std::fs::write(p("wrong-pass"), "not the passphrase\n").unwrap();
        for name in ["alice", "dave", "frank"] {
            desk.ssh_keygen(name, &["-t", "ed25519", "-N", ""]);
        }
        desk.ssh_keygen("carol", &["-t", "ed25519", "-N", PASSPHRASE]);
        desk.ssh_keygen("erin", &["-t", "rsa", "-b", "2048", "-N", ""]);
        let pass_arg = format!("pass:{PASSPHRASE}");
        tool(
            "openssl",
            &[
                "genpkey",
                "-algorithm",
                "ed25519",
                "-aes256",
                "-pass",
                &pass_arg,
                "-out",
                &p("bob.key"),
            ],
            &[],
        );
        tool(
            "openssl",
            &[
                "pkey",
                "-in",
                &p("bob.key"),
                "-passin",
                &pass_arg,
                "-pubout",
                "-out",
                &p("bob.pub.pem"),
            ],
            &[],
        );
        for file in ["bob.key", "pass", "wrong-pass"] {
            std::fs::set_permissions(p(file), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        desk.agent.add(&desk.dir.join("alice.key"), &[]);
        desk.agent.add(&desk.dir.join("erin.key"), &[]);
        // frank's key needs a confirmation no one can give here (no askpass): the agent refuses.
        desk.agent.add(&desk.dir.join("frank.key"), &["-c"]);
        std::fs::write(
            p("signers.toml"),
            "threshold = 2\n[[signers]]\nname = \"alice\"\npublic_key_file = \"alice.key.pub\"\n\
             [[signers]]\nname = \"bob\"\npublic_key_file = \"bob.pub.pem\"\n\
             [[signers]]\nname = \"carol\"\npublic_key_file = \"carol.key.pub\"\n",
        )
        .unwrap();
        desk.ok(&[
            "init",
            "--signers",
            &p("signers.toml"),
            "--key",
            &p("alice.key.pub"),
        ]);
        desk
    }

    fn ssh_keygen(&self, name: &str, args: &[&str]) {
        let mut all = vec!["-q", "-C", name];
        all.extend_from_slice(args);
        let path = self.path(&format!("{name}.key"));
        all.extend(["-f", &path]);
        tool("ssh-keygen", &all, &[]);
    }

    /// A roll proposal file dated now.
    fn proposal(&self) -> String {
        let mut proposal = roll_dated_now(9);
        common::own_layer(&mut proposal);
        let path = self.path(&format!("p-{}.toml", uuid::Uuid::now_v7().simple()));
        std::fs::write(&path, proposal.to_toml_string()).unwrap();
        path
    }

    /// `--key KEY` plus `--passphrase-file` for the two encrypted keys.
    fn key_args(&self, who: &str) -> Vec<String> {
        match who {
            "alice" => vec!["--key".into(), self.path("alice.key.pub")],
            "bob" | "carol" => vec![
                "--key".into(),
                self.path(&format!("{who}.key")),
                "--passphrase-file".into(),
                self.path("pass"),
            ],
            other => panic!("no key for {other}"),
        }
    }

    /// `rollbook ARGS --key (who's) --json`.
    fn as_signer(&self, who: &str, args: &[&str]) -> serde_json::Value {
        let keys = self.key_args(who);
        let mut all: Vec<&str> = args.to_vec();
        all.extend(keys.iter().map(String::as_str));
        self.json(&all)
    }

    fn propose(&self, who: &str) -> String {
        let file = self.proposal();
        let value = self.as_signer(who, &["propose", &file]);
        value["proposal_id"].as_str().unwrap().to_string()
    }
}

both_backends!(
    every_decision_signs_through_the_agent_or_an_encrypted_key,
    key_refusals_leave_the_ledger_unchanged,
    keys_check_names_the_signer_without_signing,
    key_lifetimes_change_by_motion_and_an_expired_key_is_refused,
);

async fn key_lifetimes_change_by_motion_and_an_expired_key_is_refused(db: &TestDb) {
    let desk = Desk::new(db);
    let p = |name: &str| desk.path(name);
    let signers = |lifetimes: [&str; 3]| {
        format!(
            "threshold = 2\n[[signers]]\nname = \"alice\"\npublic_key_file = \"alice.key.pub\"\n{}\n\
             [[signers]]\nname = \"bob\"\npublic_key_file = \"bob.pub.pem\"\n{}\n\
             [[signers]]\nname = \"carol\"\npublic_key_file = \"carol.key.pub\"\n{}\n",
            lifetimes[0], lifetimes[1], lifetimes[2]
        )
    };
    // Two keys lapsed: the set could decide nothing, refused before anything is recorded.
    std::fs::write(
        p("dead.toml"),
        signers([
            "",
            "valid_before = 2020-01-01T00:00:00Z",
            "valid_before = \"2020-01-01T00:00:00Z\"",
        ]),
    )
    .unwrap();
    let mut propose_dead = vec!["governance", "propose-signers", "--signers"];
    let dead = p("dead.toml");
    propose_dead.push(&dead);
    let alice = desk.key_args("alice");
    propose_dead.extend(alice.iter().map(String::as_str));
    desk.refused(&propose_dead, 3, "fewer than its threshold 2");
    // carol's key lapsed long ago, bob's within the proposal's lifetime: warned about; a TOML
    // date-time and an RFC 3339 string with an offset are both read.
    let soon = (Utc::now() + chrono::Duration::seconds(90)).to_rfc3339();
    std::fs::write(
        p("next.toml"),
        signers([
            "valid_after = \"2020-01-01T01:00:00+01:00\"",
            &format!("valid_before = \"{soon}\""),
            "valid_before = 2020-01-01T00:00:00Z",
        ]),
    )
    .unwrap();
    let carol = desk.key_args("carol");
    let mut args = vec!["governance", "propose-signers", "--signers"];
    let next = p("next.toml");
    args.push(&next);
    args.extend(carol.iter().map(String::as_str));
    let out = desk.run(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("renew them with a signer-set motion"),
        "{}",
        text(&out.stderr)
    );
    let motion = text(&out.stdout)
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    // The motion shows every lifetime it changes.
    let show = desk.json(&["show", &motion]);
    let changes = show["changes"].as_array().unwrap();
    let lifetimes: Vec<&serde_json::Value> = changes
        .iter()
        .filter(|change| change["change"] == "lifetime_changed")
        .collect();
    assert_eq!(lifetimes.len(), 3, "{changes:?}");
    assert_eq!(lifetimes[0]["new"], "from 2020-01-01T00:00:00.000000Z");
    assert_eq!(lifetimes[2]["new"], "until 2020-01-01T00:00:00.000000Z");
    let shown = desk.run(&["show", &motion]);
    assert!(
        text(&shown.stdout).contains(
            "~ key lifetime of carol: valid always -> valid until 2020-01-01T00:00:00.000000Z"
        ),
        "{}",
        text(&shown.stdout)
    );
    assert_eq!(
        desk.as_signer("alice", &["sign", &motion])["status"],
        "pending"
    );
    assert_eq!(
        desk.as_signer("bob", &["sign", &motion])["status"],
        "committed"
    );
    // From now on carol's key counts for nothing: no signature, proposal or veto of hers.
    let roll = desk.propose("alice");
    let file = desk.proposal();
    let carol_key = ["--key", &p("carol.key"), "--passphrase-file", &p("pass")];
    for args in [
        vec!["sign", roll.as_str()],
        vec!["propose", file.as_str()],
        vec!["reject", roll.as_str(), "--reason", "late"],
    ] {
        let mut all = args.clone();
        all.extend(carol_key);
        desk.refused(&all, 3, "counts for nothing");
    }
    let check = desk.run(&["keys", "check", &p("carol.key.pub"), "--json"]);
    let check: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(check["ledger"]["signer"]["name"], "carol");
    assert_eq!(check["ledger"]["signer"]["valid_now"], false);
    assert_eq!(
        check["ledger"]["signer"]["valid_before"],
        "2020-01-01T00:00:00.000000Z"
    );
    // Her signatures made while her key was valid still verify.
    let export = p("audit.jsonl");
    desk.ok(&["export", "--out", &export]);
    assert_eq!(desk.json(&["verify", &export])["valid"], true);
}

async fn keys_check_names_the_signer_without_signing(db: &TestDb) {
    let desk = Desk::new(db);
    let before = desk.head();
    let check = |args: &[&str]| -> (Option<i32>, serde_json::Value) {
        let mut all = vec!["keys", "check"];
        all.extend_from_slice(args);
        all.push("--json");
        let out = desk.run(&all);
        let value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{args:?}: {}", text(&out.stderr)));
        (out.status.code(), value)
    };
    // alice's public key: held by the agent, signer alice.
    let (code, alice) = check(&[&desk.path("alice.key.pub")]);
    assert_eq!(code, Some(0), "{alice}");
    assert_eq!(alice["kind"], "public key");
    assert_eq!(alice["agent"]["holds_key"], true);
    assert_eq!(alice["ledger"]["signer"]["name"], "alice");
    assert_eq!(alice["known"], true);
    let fingerprint = Command::new("ssh-keygen")
        .args(["-lf", &desk.path("alice.key.pub")])
        .output()
        .unwrap();
    assert_eq!(
        text(&fingerprint.stdout).split_whitespace().nth(1),
        alice["key_id"].as_str()
    );
    // bob's encrypted PKCS#8, decrypted with its passphrase file: signer bob.
    let (code, bob) = check(&[
        &desk.path("bob.key"),
        "--passphrase-file",
        &desk.path("pass"),
    ]);
    assert_eq!(code, Some(0), "{bob}");
    assert_eq!(bob["format"], "encrypted PKCS#8 private key");
    assert_eq!(bob["ledger"]["signer"]["name"], "bob");
    // dave: in no agent and no signer set: exit 1, and it says both.
    let (code, dave) = check(&[&desk.path("dave.key.pub")]);
    assert_eq!(code, Some(1), "{dave}");
    assert_eq!(dave["agent"]["holds_key"], false);
    assert_eq!(dave["known"], false);
    assert!(dave["ledger"]["signer"].is_null());
    // An encrypted key with a wrong passphrase: exit 2, nothing printed on stdout.
    let out = desk.run(&[
        "keys",
        "check",
        &desk.path("carol.key"),
        "--passphrase-file",
        &desk.path("wrong-pass"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("wrong passphrase"));
    assert_eq!(desk.head(), before, "keys check signs and records nothing");
}

async fn every_decision_signs_through_the_agent_or_an_encrypted_key(db: &TestDb) {
    let desk = Desk::new(db);
    // Propose through the agent; co-sign with the two encrypted keys.
    let roll = desk.propose("alice");
    assert_eq!(desk.as_signer("bob", &["sign", &roll])["status"], "pending");
    assert_eq!(
        desk.as_signer("carol", &["sign", &roll])["status"],
        "committed"
    );
    // Veto through the agent.
    let vetoed = desk.propose("bob");
    desk.as_signer("alice", &["reject", &vetoed, "--reason", "stale quotes"]);
    assert_eq!(desk.json(&["show", &vetoed])["status"], "rejected");
    // Withdraw through the agent.
    let withdrawn = desk.propose("alice");
    desk.as_signer("alice", &["withdraw", &withdrawn]);
    assert_eq!(desk.json(&["show", &withdrawn])["status"], "withdrawn");
    // Governance: a motion proposed with an encrypted key, co-signed through the agent.
    std::fs::write(
        desk.path("policy.toml"),
        "[approval]\nproposal_ttl_seconds = 7200\n",
    )
    .unwrap();
    let motion = desk.as_signer(
        "carol",
        &[
            "governance",
            "propose-policy",
            "--policy",
            &desk.path("policy.toml"),
        ],
    )["proposal_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        desk.as_signer("alice", &["sign", &motion])["status"],
        "pending"
    );
    assert_eq!(
        desk.as_signer("bob", &["sign", &motion])["status"],
        "committed"
    );
    // Offline signing through the agent: the request, the signature file, then attach.
    let offline = desk.propose("bob");
    let request = desk.path("req.json");
    let signature = desk.path("alice.sig.json");
    desk.ok(&["request", &offline, "--out", &request]);
    let keys = desk.key_args("alice");
    let mut args = vec![
        "sign",
        &offline,
        "--offline",
        "--request",
        &request,
        "--out",
        &signature,
    ];
    args.extend(keys.iter().map(String::as_str));
    desk.ok(&args);
    assert_eq!(
        desk.json(&["attach", &signature])["status"],
        "pending",
        "alice's agent signature counts"
    );
    assert_eq!(
        desk.json(&["show", &offline])["signatures"][0]["name"],
        "alice"
    );
    // The head signed as a checkpoint through the agent, then with an encrypted key.
    let signed = desk.as_signer("alice", &["checkpoint"]);
    assert_eq!(signed["signer"], "alice");
    let signed = desk.as_signer("bob", &["checkpoint"]);
    assert_eq!(
        (&signed["signer"], &signed["signature_added"]),
        (&"bob".into(), &true.into())
    );
    // Every signature above verifies strictly, offline too.
    let export = desk.path("audit.jsonl");
    desk.ok(&["export", "--out", &export]);
    assert_eq!(desk.json(&["verify", &export])["valid"], true);
}

async fn key_refusals_leave_the_ledger_unchanged(db: &TestDb) {
    let desk = Desk::new(db);
    let file = desk.proposal();
    let pending = desk.propose("bob");
    let p = |name: &str| desk.path(name);
    // A wrong passphrase, for either kind of encrypted key: exit 2, saying so.
    for key in ["bob.key", "carol.key"] {
        desk.refused(
            &[
                "propose",
                &file,
                "--key",
                &p(key),
                "--passphrase-file",
                &p("wrong-pass"),
            ],
            2,
            "wrong passphrase",
        );
    }
    // No passphrase file and no terminal to ask on.
    desk.refused(
        &["sign", &pending, "--key", &p("carol.key")],
        2,
        "--passphrase-file",
    );
    // No agent at all, and an agent socket that no agent listens on.
    let mut no_agent = desk.command();
    no_agent.env_remove("SSH_AUTH_SOCK");
    desk.refused_with(
        no_agent,
        &["sign", &pending, "--key", &p("alice.key.pub")],
        2,
        "SSH_AUTH_SOCK is not set",
    );
    let mut dead_agent = desk.command();
    dead_agent.env("SSH_AUTH_SOCK", desk.dir.join("nobody.sock"));
    desk.refused_with(
        dead_agent,
        &["propose", &file, "--key", &p("alice.key.pub")],
        2,
        "cannot reach the ssh-agent",
    );
    // An agent without the key; an RSA key the agent holds; an agent that refuses to sign.
    desk.refused(
        &[
            "reject",
            &pending,
            "--reason",
            "no",
            "--key",
            &p("dave.key.pub"),
        ],
        2,
        "does not hold the key",
    );
    desk.refused(
        &["withdraw", &pending, "--key", &p("erin.key.pub")],
        2,
        "unsupported key type RSA",
    );
    desk.refused(
        &["propose", &file, "--key", &p("frank.key.pub")],
        2,
        "refused to sign",
    );
    // The ledger still takes the same decisions from the right keys.
    assert_eq!(
        desk.as_signer("alice", &["sign", &pending])["status"],
        "pending"
    );
}

#[test]
fn keygen_encrypts_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(p("pass"), "a long passphrase\n").unwrap();
    let run = |args: &[&str]| {
        without_terminal(&mut common::rollbook_command())
            .args(args)
            .output()
            .unwrap()
    };
    // No terminal, no passphrase file, no --no-passphrase: nothing written, and it says why.
    let out = run(&["keygen", "--out", &p("k1")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--no-passphrase"));
    assert!(!Path::new(&p("k1")).exists() && !Path::new(&p("k1.pub")).exists());
    // --passphrase-file: encrypted PKCS#8 that OpenSSL decrypts with the same passphrase.
    let out = run(&[
        "keygen",
        "--out",
        &p("k2"),
        "--passphrase-file",
        &p("pass"),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["encrypted"], true);
    let written = std::fs::read_to_string(p("k2")).unwrap();
    assert!(written.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    tool(
        "openssl",
        &[
            "pkey",
            "-in",
            &p("k2"),
            "-passin",
            "pass:a long passphrase",
            "-noout",
        ],
        &[],
    );
    // --no-passphrase: the unencrypted PKCS#8 of before.
    let out = run(&["keygen", "--out", &p("k3"), "--no-passphrase", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["encrypted"], false);
    assert!(std::fs::read_to_string(p("k3"))
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
}
