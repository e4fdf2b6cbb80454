//! `rollbook checkpoint --witness URL --witness-vkey VKEY` against `rollbook witness serve` over real HTTP on
//! loopback, on both backends: the first cosignature, the 409 catch-up from the size the
//! witness holds, a witness down (nothing lost), a witness restarted (its state kept), a witness
//! that refuses, and the reviewer's verification of the result.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

use chrono::{Duration, TimeZone, Utc};
use common::TestDb;
use rollbook::audit::completeness::log_key;
use rollbook::checkpoint::witness_source;
use rollbook::crypto::keyfile::read_secret_key;
use rollbook::crypto::keys::SecretKey;
use rollbook::crypto::to_hex;
use rollbook::domain::events::{SignerEntry, SignerSet};
use rollbook::domain::governance::ActiveSet;
use rollbook::service::{self, Ledger};
use rollbook::sizing::{Policy as SizingPolicy, Proposal};
use rollbook::store::Store;
use rollbook::tlog::{VerifierKey, VerifierKind};

const WITNESS: &str = "witness.example/w1";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, SecretKey) {
    let path = dir.join(format!("{name}.key"));
    let out = common::rollbook_command()
        .args([
            "keygen",
            "--out",
            path.to_str().unwrap(),
            "--name",
            name,
            "--no-passphrase",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = read_secret_key(&path).unwrap().0;
    (path, key)
}

fn body(contracts: u32) -> String {
    let mut proposal =
        Proposal::from_toml_str(include_str!("vectors/example-proposal.toml")).unwrap();
    proposal.set_contracts_requested(contracts);
    proposal.to_toml_string()
}

struct Witness {
    child: Child,
    url: String,
}

impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rollbook witness serve` on a free loopback port, knowing the logs `logs`.
fn serve(key: &Path, state: &Path, logs: &[String]) -> Witness {
    let mut command = common::rollbook_command();
    command.args([
        "witness",
        "serve",
        "--key",
        key.to_str().unwrap(),
        "--name",
        WITNESS,
    ]);
    command.args([
        "--state",
        state.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    for log in logs {
        command.args(["--log", log]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    Witness { child, url }
}

struct Desk<'a> {
    db: &'a TestDb,
    ledger: Ledger,
    alice_key: PathBuf,
    dir: PathBuf,
}

impl Desk<'_> {
    fn run(&self, args: &[&str]) -> Output {
        self.db
            .rollbook(&self.db.state_dir())
            .args(args)
            .output()
            .unwrap()
    }
    /// `checkpoint --key alice --witness URL --witness-vkey VKEY --json`: its exit code and
    /// witness outcomes.
    fn checkpoint(&self, url: &str, vkey: &VerifierKey) -> (Option<i32>, serde_json::Value) {
        let out = self.run(&[
            "checkpoint",
            "--key",
            self.alice_key.to_str().unwrap(),
            "--witness",
            url,
            "--witness-vkey",
            &vkey.to_string(),
            "--json",
        ]);
        let value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("not JSON: {}{}", text(&out.stdout), text(&out.stderr)));
        (out.status.code(), value)
    }
    async fn grow(&self, contracts: &[u32], minute: i64) {
        let bob = read_secret_key(&self.dir.join("bob.key")).unwrap().0;
        for (n, contracts) in contracts.iter().enumerate() {
            let at = t0() + Duration::seconds(minute + n as i64);
            self.ledger
                .propose_roll(body(*contracts), &bob, at)
                .await
                .unwrap();
        }
    }
    async fn witness_size(&self, url: &str, vkey: &VerifierKey) -> u64 {
        self.ledger
            .store
            .witness_size(self.ledger.ledger_id, &witness_source(vkey, url))
            .await
            .unwrap()
    }
}

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 7, 14, 40, 0).unwrap()
}

async fn desk(db: &TestDb) -> Desk<'_> {
    let dir = db.dir.path().to_path_buf();
    let (alice_key, alice) = keygen(&dir, "alice");
    let (_, bob) = keygen(&dir, "bob");
    let entry = |name: &str, key: &SecretKey| SignerEntry {
        name: name.into(),
        role: None,
        public_key: to_hex(&key.public().as_bytes()),
        key_id: key.public().key_id().to_string(),
        valid_after: None,
        valid_before: None,
    };
    let set = ActiveSet::validate(&SignerSet {
        version: 1,
        threshold: 1,
        signers: vec![entry("alice", &alice), entry("bob", &bob)],
    })
    .unwrap();
    let store = Store::open(&db.url).await.unwrap().trusting_caller_clock();
    let (ledger_id, _) = service::init(&store, &set, &SizingPolicy::default(), &alice, t0())
        .await
        .unwrap();
    let desk = Desk {
        db,
        ledger: Ledger::new(store, ledger_id),
        alice_key,
        dir,
    };
    desk.grow(&[9], 1).await;
    desk
}

both_backends!(the_client_cosigns_catches_up_after_409_and_loses_nothing);

async fn the_client_cosigns_catches_up_after_409_and_loses_nothing(db: &TestDb) {
    let desk = desk(db).await;
    let ledger_id = desk.ledger.ledger_id;
    let alice = read_secret_key(&desk.alice_key).unwrap().0;
    let bob = read_secret_key(&desk.dir.join("bob.key")).unwrap().0;
    let logs = vec![
        log_key(ledger_id, alice.public()).unwrap().to_string(),
        log_key(ledger_id, bob.public()).unwrap().to_string(),
    ];
    let (witness_key_path, witness_key) = keygen(&desk.dir, "witness");
    let state = desk.dir.join("witness-state");
    let witness = serve(&witness_key_path, &state, &logs);
    let vkey =
        VerifierKey::new(WITNESS, VerifierKind::CosignatureV1, witness_key.public()).unwrap();

    // First cosignature: from size 0.
    let (code, first) = desk.checkpoint(&witness.url, &vkey);
    assert_eq!(code, Some(0), "{first}");
    assert_eq!(first["tree_size"], 2);
    assert_eq!(first["witnesses"][0]["outcome"], "cosigned", "{first}");
    assert_eq!(desk.witness_size(&witness.url, &vkey).await, 2);

    // The ledger grows; the same URL: a consistency proof from 2, straight to 200.
    desk.grow(&[8], 10).await;
    let (code, second) = desk.checkpoint(&witness.url, &vkey);
    assert_eq!(code, Some(0), "{second}");
    assert_eq!(second["witnesses"][0]["outcome"], "cosigned", "{second}");
    assert_eq!(desk.witness_size(&witness.url, &vkey).await, 3);

    // The same witness under a URL this ledger never stored anything for: the client starts
    // from 0, the witness answers 409 with the size it holds (3), the client retries from there.
    desk.grow(&[7], 20).await;
    let alias = format!("{}/", witness.url);
    assert_eq!(desk.witness_size(&alias, &vkey).await, 0);
    let (code, caught_up) = desk.checkpoint(&alias, &vkey);
    assert_eq!(code, Some(0), "{caught_up}");
    assert_eq!(
        caught_up["witnesses"][0]["outcome"], "cosigned",
        "{caught_up}"
    );
    assert_eq!(desk.witness_size(&alias, &vkey).await, 4);

    // Down: nothing lost, the checkpoint is stored, exit 4.
    drop(witness);
    desk.grow(&[6], 30).await;
    let (code, down) = desk.checkpoint(&alias, &vkey);
    assert_eq!(code, Some(4), "{down}");
    assert_eq!(down["witnesses"][0]["outcome"], "down", "{down}");
    let stored = desk
        .ledger
        .store
        .checkpoint(ledger_id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.tree_size, 5);

    // Restarted on another port with its state: it holds 4, so from 0 it answers 409 (4),
    // then cosigns 5 from the proof 4 -> 5.
    let restarted = serve(&witness_key_path, &state, &logs);
    let (code, again) = desk.checkpoint(&restarted.url, &vkey);
    assert_eq!(code, Some(0), "{again}");
    assert_eq!(again["witnesses"][0]["outcome"], "cosigned", "{again}");

    // A witness that does not know this ledger refuses (404): exit 3, the status named.
    let stranger_state = desk.dir.join("stranger-state");
    let other_log = log_key(uuid::Uuid::now_v7(), alice.public())
        .unwrap()
        .to_string();
    let stranger = serve(&witness_key_path, &stranger_state, &[other_log]);
    let (code, refused) = desk.checkpoint(&stranger.url, &vkey);
    assert_eq!(code, Some(3), "{refused}");
    assert_eq!(refused["witnesses"][0]["outcome"], "refused");
    assert_eq!(refused["witnesses"][0]["status"], 404);

    // The reviewer: the export of size 5 is covered and cosigned.
    let file = desk.dir.join("audit.jsonl");
    let out = desk.run(&["export", "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let policy = desk.dir.join("policy.txt");
    std::fs::write(
        &policy,
        format!("log {}\nwitness w1 {vkey}\nquorum w1\n", logs[0]),
    )
    .unwrap();
    let out = desk.run(&[
        "verify",
        file.to_str().unwrap(),
        "--witnesses",
        policy.to_str().unwrap(),
        "--max-age",
        "1h",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["completeness"]["tree_size"], 5);
}
