//! `rollbook witness` end to end: the server over real HTTP on loopback (409 catch-up, every
//! refusal, a fork refused and never cosigned, state kept across a restart), the offline
//! `witness cosign` and its exit codes, and the cosigned notes checked by a signed-note verifier
//! written here from the C2SP specs, independent of `rollbook::tlog`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rollbook::crypto::merkle::{consistency_proof, leaf_hash, root_from_leaf_hashes, Hash};
use rollbook::crypto::SecretKey;
use rollbook::tlog::checkpoint::Checkpoint;
use rollbook::tlog::note::{sign_ed25519, Note};
use rollbook::tlog::witness::AddCheckpoint;
use rollbook::tlog_http::{submit_add_checkpoint, WitnessReply};

const ORIGIN: &str = "rollbook.0190aaaa-0000-7000-8000-00000000abcd";
const WITNESS_NAME: &str = "witness.example/w1";

/// A signed-note and cosignature/v1 verifier written from c2sp.org/signed-note and
/// c2sp.org/tlog-cosignature alone: it shares no code with `rollbook::tlog`.
mod independent {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use ed25519_dalek::{Signature, VerifyingKey};
    use sha2::{Digest, Sha256};

    pub struct Vkey {
        name: String,
        id: [u8; 4],
        kind: u8,
        key: VerifyingKey,
    }

    /// `name+hex(id)+base64(type || key)`, checking the id is SHA-256(name, LF, type, key)[:4].
    pub fn vkey(text: &str) -> Vkey {
        let mut parts = text.splitn(3, '+');
        let (name, id, key) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let id: [u8; 4] = hex(id).try_into().unwrap();
        let key = STANDARD.decode(key).unwrap();
        let (kind, key) = (key[0], &key[1..]);
        let digest = Sha256::new()
            .chain_update(name.as_bytes())
            .chain_update([b'\n', kind])
            .chain_update(key)
            .finalize();
        assert_eq!(digest[..4], id, "key id of {name}");
        Vkey {
            name: name.to_string(),
            id,
            kind,
            key: VerifyingKey::from_bytes(key.try_into().unwrap()).unwrap(),
        }
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Verifies `note` and returns, per key in `keys`, whether it signed (and the time of a
    /// cosignature). Panics on a known key's bad signature: the note must be rejected.
    pub fn verify(note: &str, keys: &[Vkey]) -> Vec<Option<u64>> {
        let split = note
            .rfind("\n\n")
            .expect("a blank line before the signatures");
        let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
        let mut found = vec![None; keys.len()];
        for line in signatures.lines() {
            let rest = line.strip_prefix("\u{2014} ").expect("em dash, space");
            let (name, encoded) = rest.split_once(' ').unwrap();
            let bytes = STANDARD.decode(encoded).unwrap();
            for (index, key) in keys.iter().enumerate() {
                if key.name != name || key.id[..] != bytes[..4] {
                    continue;
                }
                let (message, signature, time) = match key.kind {
                    0x01 => (text.as_bytes().to_vec(), &bytes[4..], 0),
                    0x04 => {
                        let time = u64::from_be_bytes(bytes[4..12].try_into().unwrap());
                        let message = format!("cosignature/v1\ntime {time}\n{text}");
                        (message.into_bytes(), &bytes[12..], time)
                    }
                    other => panic!("unexpected type {other}"),
                };
                let signature = Signature::from_slice(signature).unwrap();
                key.key
                    .verify_strict(&message, &signature)
                    .unwrap_or_else(|_| panic!("signature of known key {name} fails"));
                found[index] = Some(time);
            }
        }
        found
    }
}

/// A log of `leaf_count` leaves and its signer key; `salt` makes a different history.
struct Log {
    key: SecretKey,
    leaves: Vec<Hash>,
}

impl Log {
    fn new(key: SecretKey, leaf_count: u8, salt: u8) -> Log {
        Log {
            key,
            leaves: (0..leaf_count).map(|i| leaf_hash(&[salt, i])).collect(),
        }
    }

    fn note(&self, size: u64) -> Note {
        let text = Checkpoint {
            origin: ORIGIN.to_string(),
            size,
            root: root_from_leaf_hashes(&self.leaves[..size as usize]),
            extensions: vec![],
        }
        .to_text();
        let mut note = Note::new(&text).unwrap();
        note.push_signature(sign_ed25519(&text, ORIGIN, &self.key).unwrap())
            .unwrap();
        note
    }

    fn body(&self, old_size: u64, size: u64) -> String {
        let proof = consistency_proof(&self.leaves, old_size, size).unwrap();
        AddCheckpoint::format(old_size, &proof, &self.note(size))
    }
}

/// Key files, vkeys and the state directory of one witness and one log.
struct Setup {
    dir: tempfile::TempDir,
    log_key_path: PathBuf,
    witness_key_path: PathBuf,
    log_vkey: String,
    witness_vkey: String,
}

fn write_key(dir: &Path, name: &str, key: &SecretKey) -> PathBuf {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    file.write_all(key.to_pkcs8_pem_v1().as_bytes()).unwrap();
    std::fs::write(
        dir.join(format!("{name}.pub")),
        key.public().to_openssh_line(name),
    )
    .unwrap();
    path
}

fn rollbook(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rollbook"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout_line(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .trim_end()
        .to_string()
}

impl Setup {
    fn new(log_key: &SecretKey) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let log_key_path = write_key(dir.path(), "log.key", log_key);
        let witness_key_path =
            write_key(dir.path(), "witness.key", &SecretKey::generate().unwrap());
        let log_pub = dir.path().join("log.key.pub");
        let log_vkey = stdout_line(&rollbook(&[
            "vkey",
            log_pub.to_str().unwrap(),
            "--name",
            ORIGIN,
        ]));
        let witness_vkey = stdout_line(&rollbook(&[
            "witness",
            "vkey",
            "--key",
            witness_key_path.to_str().unwrap(),
            "--name",
            WITNESS_NAME,
        ]));
        Setup {
            dir,
            log_key_path,
            witness_key_path,
            log_vkey,
            witness_vkey,
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn witness_args<'a>(&'a self, verb: &'a str, witness_key: &'a Path) -> Vec<String> {
        let mut args: Vec<String> = ["witness", verb, "--key"].map(String::from).to_vec();
        args.push(witness_key.to_str().unwrap().to_string());
        args.extend(["--name", WITNESS_NAME, "--state"].map(String::from));
        args.push(self.state().to_str().unwrap().to_string());
        args.extend(["--log".to_string(), self.log_vkey.clone()]);
        args
    }

    fn serve(&self) -> Server {
        let mut args = self.witness_args("serve", &self.witness_key_path);
        args.extend(["--listen", "127.0.0.1:0"].map(String::from));
        let mut child = Command::new(env!("CARGO_BIN_EXE_rollbook"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
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
        Server { child, url }
    }

    fn cosign_offline(&self, body: &str, witness_key: &Path) -> std::process::Output {
        let request = self.dir.path().join("request.txt");
        std::fs::write(&request, body).unwrap();
        let mut args = self.witness_args("cosign", witness_key);
        args.push(request.to_str().unwrap().to_string());
        Command::new(env!("CARGO_BIN_EXE_rollbook"))
            .args(&args)
            .output()
            .unwrap()
    }

    /// Verifies a cosigned note with the independent verifier; returns the cosignature's time.
    fn check_cosigned(&self, note: &Note, reply: &WitnessReply) -> u64 {
        let mut cosigned = note.to_text();
        cosigned.push_str(&reply.body);
        let keys = [
            independent::vkey(&self.log_vkey),
            independent::vkey(&self.witness_vkey),
        ];
        let found = independent::verify(&cosigned, &keys);
        assert_eq!(found[0], Some(0), "the log's signature verifies");
        found[1].expect("the witness's cosignature verifies")
    }
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn submit(&self, body: &str) -> WitnessReply {
        submit_add_checkpoint(&self.url, body, Duration::from_secs(10)).unwrap()
    }

    fn stored_checkpoint(&self) -> (u16, String) {
        use sha2::{Digest, Sha256};
        let hash: String = Sha256::digest(ORIGIN.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent
            .get(format!("{}/{hash}/checkpoint", self.url))
            .call()
            .unwrap();
        (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_client_catches_up_after_409_and_the_cosigned_note_verifies_independently() {
    let log = Log::new(SecretKey::generate().unwrap(), 16, 1);
    let setup = Setup::new(&log.key);
    let server = setup.serve();
    let first = server.submit(&log.body(0, 5));
    assert_eq!(first.status, 200, "{}", first.body);
    let time_s = setup.check_cosigned(&log.note(5), &first);
    assert!(time_s > 1_700_000_000);

    // A client that does not know what the witness holds asks with old 0 and learns it.
    let conflict = server.submit(&log.body(0, 12));
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.content_type, "text/x.tlog.size");
    assert_eq!(conflict.body, "5\n");
    let held = conflict.held_size().unwrap();
    let retried = server.submit(&log.body(held, 12));
    assert_eq!(retried.status, 200, "{}", retried.body);
    setup.check_cosigned(&log.note(12), &retried);
    assert_eq!(retried.cosignatures().unwrap().len(), 1);

    let (status, stored) = server.stored_checkpoint();
    assert_eq!(status, 200);
    assert!(stored.starts_with(&format!("{ORIGIN}\n12\n")), "{stored}");
}

#[test]
fn refusals_over_http_carry_the_spec_s_status_codes() {
    let log = Log::new(SecretKey::generate().unwrap(), 8, 2);
    let setup = Setup::new(&log.key);
    let server = setup.serve();
    assert_eq!(server.submit("not a request").status, 400);
    let backwards = AddCheckpoint::format(6, &[], &log.note(3));
    assert_eq!(server.submit(&backwards).status, 400);
    let impostor = Log::new(SecretKey::generate().unwrap(), 8, 2);
    assert_eq!(server.submit(&impostor.body(0, 3)).status, 403);
    let other_origin = {
        let text = format!("rollbook.other\n1\n{}\n", "A".repeat(43) + "=");
        let mut note = Note::new(&text).unwrap();
        note.push_signature(sign_ed25519(&text, "rollbook.other", &log.key).unwrap())
            .unwrap();
        AddCheckpoint::format(0, &[], &note)
    };
    assert_eq!(server.submit(&other_origin).status, 404);
    let with_proof = AddCheckpoint::format(0, &[[1; 32]], &log.note(3));
    assert_eq!(server.submit(&with_proof).status, 422);
    // None of these moved the state: the witness still holds 0.
    assert_eq!(server.stored_checkpoint().0, 404);
    assert_eq!(server.submit(&log.body(0, 3)).status, 200);
}

#[test]
fn a_fork_shown_to_the_same_witness_is_refused_and_never_cosigned() {
    let key = SecretKey::generate().unwrap();
    let honest = Log::new(SecretKey::parse(&key.to_pkcs8_pem_v1()).unwrap(), 16, 3);
    // Same signer key (a signer with database access), history rewritten from leaf 4 on.
    let mut fork = Log::new(key, 16, 3);
    for (index, leaf) in fork.leaves.iter_mut().enumerate().skip(4) {
        *leaf = leaf_hash(&[9, index as u8]);
    }
    let setup = Setup::new(&honest.key);
    let server = setup.serve();
    assert_eq!(server.submit(&honest.body(0, 6)).status, 200);
    let forked = server.submit(&fork.body(6, 10));
    assert_eq!(forked.status, 422, "{}", forked.body);
    assert!(
        !forked.body.contains('\u{2014}'),
        "no signature line in a refusal"
    );
    let same_size = server.submit(&AddCheckpoint::format(6, &[], &fork.note(6)));
    assert_eq!(same_size.status, 422);
    let (_, stored) = server.stored_checkpoint();
    let held = Note::parse(stored.as_bytes()).unwrap();
    assert_eq!(
        held.text(),
        honest.note(6).text(),
        "the state is still the honest size 6"
    );
    assert_eq!(server.submit(&honest.body(6, 10)).status, 200);
}

#[test]
fn a_restarted_witness_keeps_its_state_and_one_directory_has_one_witness() {
    let log = Log::new(SecretKey::generate().unwrap(), 16, 4);
    let setup = Setup::new(&log.key);
    {
        let server = setup.serve();
        assert_eq!(server.submit(&log.body(0, 4)).status, 200);
        let second = setup.cosign_offline(&log.body(4, 5), &setup.witness_key_path);
        assert_eq!(
            second.status.code(),
            Some(4),
            "the directory is locked by the server"
        );
    }
    let server = setup.serve();
    let conflict = server.submit(&log.body(0, 7));
    assert_eq!((conflict.status, conflict.body.as_str()), (409, "4\n"));
    assert_eq!(server.submit(&log.body(4, 7)).status, 200);
}

#[test]
fn offline_cosign_answers_as_the_server_would_with_exit_codes() {
    let log = Log::new(SecretKey::generate().unwrap(), 16, 5);
    let setup = Setup::new(&log.key);
    let witness_key = setup.witness_key_path.clone();
    let ok = setup.cosign_offline(&log.body(0, 5), &witness_key);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let reply = WitnessReply {
        status: 200,
        content_type: String::new(),
        body: String::from_utf8(ok.stdout).unwrap(),
    };
    setup.check_cosigned(&log.note(5), &reply);

    let conflict = setup.cosign_offline(&log.body(0, 9), &witness_key);
    assert_eq!(conflict.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&conflict.stdout), "5\n");
    assert!(String::from_utf8_lossy(&conflict.stderr).contains("409 Conflict"));

    let mut fork = Log::new(SecretKey::parse(&log.key.to_pkcs8_pem_v1()).unwrap(), 16, 5);
    fork.leaves[2] = leaf_hash(b"rewritten");
    let forked = setup.cosign_offline(&fork.body(5, 9), &witness_key);
    assert_eq!(forked.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&forked.stderr).contains("422 Unprocessable Entity"));

    assert_eq!(
        setup.cosign_offline("old x\n", &witness_key).status.code(),
        Some(2)
    );
    let impostor = Log::new(SecretKey::generate().unwrap(), 16, 5);
    assert_eq!(
        setup
            .cosign_offline(&impostor.body(5, 9), &witness_key)
            .status
            .code(),
        Some(3)
    );
    assert_eq!(
        setup
            .cosign_offline(&log.body(5, 9), &witness_key)
            .status
            .code(),
        Some(0)
    );

    // The log's own key is refused as the witness's key, before any request is read.
    let refused = setup.cosign_offline(&log.body(9, 10), &setup.log_key_path);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("never a witness key"));
}

#[test]
fn concurrent_first_checkpoints_of_one_log_get_one_cosignature_and_the_rest_409() {
    let log = Log::new(SecretKey::generate().unwrap(), 16, 6);
    let setup = Setup::new(&log.key);
    let server = setup.serve();
    let bodies: Vec<String> = (1..=8).map(|size| log.body(0, size)).collect();
    let replies: Vec<WitnessReply> = std::thread::scope(|scope| {
        let handles: Vec<_> = bodies
            .iter()
            .map(|body| scope.spawn(|| server.submit(body)))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    let cosigned: Vec<usize> = (0..8).filter(|i| replies[*i].status == 200).collect();
    assert_eq!(cosigned.len(), 1, "exactly one request saw the empty state");
    let winner_size = cosigned[0] as u64 + 1;
    for (index, reply) in replies.iter().enumerate() {
        if index != cosigned[0] {
            assert_eq!(reply.status, 409, "{}", reply.body);
            assert_eq!(reply.held_size(), Some(winner_size));
        }
    }
    let (_, stored) = server.stored_checkpoint();
    assert!(stored.starts_with(&format!("{ORIGIN}\n{winner_size}\n")));
}

#[test]
fn bad_witness_and_vkey_arguments_are_bad_input() {
    let log = Log::new(SecretKey::generate().unwrap(), 2, 7);
    let setup = Setup::new(&log.key);
    let public = setup.dir.path().join("log.key.pub");
    let bad_name = rollbook(&["vkey", public.to_str().unwrap(), "--name", "a+b"]);
    assert_eq!(bad_name.status.code(), Some(2));
    let witness_key = setup.witness_key_path.to_str().unwrap();
    let bad_log = rollbook(&[
        "witness",
        "serve",
        "--key",
        witness_key,
        "--name",
        WITNESS_NAME,
        "--state",
        setup.state().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--log",
        "not-a-vkey",
    ]);
    assert_eq!(bad_log.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_log.stderr).contains("--log not-a-vkey"));
    // A cosigner vkey given as a log key is refused: logs sign with type 0x01.
    let cosigner_as_log = rollbook(&[
        "witness",
        "serve",
        "--key",
        witness_key,
        "--name",
        WITNESS_NAME,
        "--state",
        setup.state().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--log",
        &setup.witness_vkey,
    ]);
    assert_eq!(cosigner_as_log.status.code(), Some(2));
}

#[test]
fn two_ledgers_on_one_witness_keep_separate_states() {
    let log = Log::new(SecretKey::generate().unwrap(), 8, 8);
    let setup = Setup::new(&log.key);
    let other_key = SecretKey::generate().unwrap();
    let other_origin = "rollbook.0190bbbb-0000-7000-8000-00000000abcd";
    let other_vkey = rollbook::tlog::note::VerifierKey::new(
        other_origin,
        rollbook::tlog::note::VerifierKind::Ed25519,
        other_key.public(),
    )
    .unwrap()
    .to_string();
    let other_body = |size: u64| {
        let text = Checkpoint {
            origin: other_origin.to_string(),
            size,
            root: root_from_leaf_hashes(&log.leaves[..size as usize]),
            extensions: vec![],
        }
        .to_text();
        let mut note = Note::new(&text).unwrap();
        note.push_signature(sign_ed25519(&text, other_origin, &other_key).unwrap())
            .unwrap();
        AddCheckpoint::format(0, &[], &note)
    };
    let mut args = setup.witness_args("cosign", &setup.witness_key_path);
    args.extend(["--log".to_string(), other_vkey]);
    let request = setup.dir.path().join("other.txt");
    let run = |body: &str| {
        std::fs::write(&request, body).unwrap();
        let mut args = args.clone();
        args.push(request.to_str().unwrap().to_string());
        Command::new(env!("CARGO_BIN_EXE_rollbook"))
            .args(&args)
            .output()
            .unwrap()
    };
    assert_eq!(run(&log.body(0, 3)).status.code(), Some(0));
    // The other ledger starts from 0 although the first is at 3.
    assert_eq!(run(&other_body(6)).status.code(), Some(0));
    let conflict = run(&log.body(0, 5));
    assert_eq!(String::from_utf8_lossy(&conflict.stdout), "3\n");
    let conflict = run(&other_body(7));
    assert_eq!(String::from_utf8_lossy(&conflict.stdout), "6\n");
}

/// An in-process witness of `log` served with `limits` on a free loopback port; its URL and
/// its service (for the state it keeps).
async fn serve_in_process(
    log: &Log,
    dir: &Path,
    limits: rollbook::tlog_http::Limits,
) -> (
    String,
    std::sync::Arc<rollbook::witness_service::WitnessService>,
) {
    use rollbook::tlog::{VerifierKey, VerifierKind};
    let log_vkey = VerifierKey::new(ORIGIN, VerifierKind::Ed25519, log.key.public()).unwrap();
    let witness = rollbook::tlog::witness::Witness::new(
        WITNESS_NAME,
        SecretKey::generate().unwrap(),
        vec![log_vkey],
    )
    .unwrap();
    let state = rollbook::witness_service::StateDir::open(dir).unwrap();
    let service = std::sync::Arc::new(rollbook::witness_service::WitnessService::new(
        witness, state,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(rollbook::tlog_http::serve_with(
        listener,
        service.clone(),
        limits,
    ));
    (url, service)
}

async fn submit_async(url: &str, body: String) -> WitnessReply {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        submit_add_checkpoint(&url, &body, Duration::from_secs(10)).unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_witness_answers_503_and_a_slow_body_408() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let dir = tempfile::tempdir().unwrap();
    let log = Log::new(SecretKey::generate().unwrap(), 8, 1);
    let limits = rollbook::tlog_http::Limits {
        concurrent: 1,
        body_timeout: Duration::from_secs(1),
    };
    let (url, _) = serve_in_process(&log, dir.path(), limits).await;
    // A slow client: headers promise 100 bytes, 3 arrive. It holds the only slot.
    let address = url.strip_prefix("http://").unwrap();
    let mut slow = tokio::net::TcpStream::connect(address).await.unwrap();
    slow.write_all(b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 100\r\n\r\nold")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy = submit_async(&url, log.body(0, 5)).await;
    assert_eq!(busy.status, 503, "{}", busy.body);
    // The slow client gets 408 once its body is late; its slot is free again.
    let mut answer = vec![0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    drop(slow);
    let cosigned = submit_async(&url, log.body(0, 5)).await;
    assert_eq!(cosigned.status, 200, "{}", cosigned.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_checkpoint_is_cosigned_without_rewriting_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::new(SecretKey::generate().unwrap(), 8, 1);
    let (url, service) =
        serve_in_process(&log, dir.path(), rollbook::tlog_http::Limits::default()).await;
    assert_eq!(submit_async(&url, log.body(0, 5)).await.status, 200);
    let file = service.state().file_of(ORIGIN);
    let before = std::fs::read(&file).unwrap();
    let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The same (size, root) again, from the size held: cosigned, the state file untouched.
    let again = submit_async(&url, log.body(5, 5)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        modified
    );
    // A larger tree is stored.
    assert_eq!(submit_async(&url, log.body(5, 8)).await.status, 200);
    assert_ne!(std::fs::read(&file).unwrap(), before);
}
