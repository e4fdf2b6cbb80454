//! The benchmark suite behind `./bench/run`: append, verify, sign and evaluate, each next to the
//! machine's limit for the same work in the same run (and, for appends, next to cqrs-es).
//! Not a test: it asserts no timing. Output: a table, or one JSON object with --json.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, TimeZone, Utc};
use rollbook::audit::export_jsonl;
use rollbook::crypto::canonical::ChainHead;
use rollbook::crypto::keys::SecretKey;
use rollbook::crypto::{from_hex, to_hex};
use rollbook::domain::approval::{
    cosign_purpose, decide_propose, decide_sign, message_for, LayerBook, ProposalDraft,
    ProposalState,
};
use rollbook::domain::chain::AtHead;
use rollbook::domain::envelope::{uuid_v7_at, NewEvent, StoredEvent};
use rollbook::domain::events::{Event, SignerEntry, SignerSet};
use rollbook::domain::governance::{seal_signature, ActiveSet, Governance};
use rollbook::service::{self, Ledger};
use rollbook::sizing::{Draws, Policy, Proposal};
use rollbook::store::{ExpectedVersion, Store};
use serde_json::{json, Value};
use uuid::Uuid;

const EXAMPLE: &str = include_str!("../tests/vectors/example-proposal.toml");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every compared figure (rollbook, the raw limit, the peer, the verify_strict limit) is
/// measured this many times, interleaved, and the median is reported: these machines are shared,
/// and a single run let one noisy moment decide a ratio.
const ROUNDS: usize = 3;

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    sorted[sorted.len() / 2]
}

struct Sizes {
    append_single: u64,
    append_per_writer: u64,
    verify: Vec<u64>,
    sign: (u64, u64),
    sign_runs: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let as_json = args.iter().any(|a| a == "--json");
    // `--only SECTION[,SECTION]` runs a subset (evaluate, append, verify, sign) while iterating;
    // the full suite is what BENCHMARKS.md reports.
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|list| list.split(',').map(str::to_string).collect());
    let wanted = |section: &str| only.as_ref().is_none_or(|o| o.iter().any(|s| s == section));
    let sizes = if quick {
        Sizes {
            append_single: 1500,
            append_per_writer: 300,
            verify: vec![20_000],
            sign: (1_000, 100_000),
            sign_runs: 30,
        }
    } else {
        Sizes {
            append_single: 5000,
            append_per_writer: 1000,
            verify: vec![100_000, 1_000_000],
            sign: (1_000, 1_000_000),
            sign_runs: 40,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // ROLLBOOK_BENCH_DIR keeps the generated ledgers and exports (for profiling); by default
    // they live in a temporary directory removed at the end.
    let kept = std::env::var_os("ROLLBOOK_BENCH_DIR").map(PathBuf::from);
    let temporary = tempfile::tempdir().unwrap();
    let work_path = match &kept {
        Some(dir) => {
            std::fs::create_dir_all(dir).unwrap();
            // Ledgers and exports of an earlier run would be refused (`init` on a database
            // that holds a ledger) or mixed in: start from none.
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if [".db", ".db-wal", ".db-shm", ".jsonl"]
                    .iter()
                    .any(|end| name.ends_with(end))
                {
                    std::fs::remove_file(entry.path()).unwrap();
                }
            }
            dir.clone()
        }
        None => temporary.path().to_path_buf(),
    };
    let postgres = std::env::var("ROLLBOOK_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty());
    let mut result = json!({"quick": quick, "machine": machine()});
    let work = work_path.as_path();
    if wanted("evaluate") {
        result["evaluate"] = evaluate();
        eprintln!("bench: evaluate done");
    }
    if wanted("append") {
        result["append"] = runtime.block_on(append_all(work, postgres.as_deref(), &sizes));
        eprintln!("bench: append done");
    }
    if wanted("verify") {
        result["verify"] = runtime.block_on(verify_all(work, &sizes));
        eprintln!("bench: verify done");
    }
    if wanted("sign") {
        result["sign"] = runtime.block_on(sign_all(work, &sizes));
        eprintln!("bench: sign done");
    }
    if as_json {
        println!("{result}");
    } else {
        print_table(&result);
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    format!(
        "{} cores, {cpu}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    )
}

// ---------- evaluate ----------

fn evaluate() -> Value {
    let proposal = Proposal::from_toml_str(EXAMPLE).unwrap();
    let policy = Policy::default();
    let now = Utc.with_ymd_and_hms(2026, 5, 7, 14, 40, 0).unwrap();
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < StdDuration::from_secs(2) {
        for _ in 0..100 {
            std::hint::black_box(
                rollbook::sizing::evaluate(&proposal, &policy, &Draws::none(), now).unwrap(),
            );
        }
        count += 100;
    }
    json!({"per_s_per_core": (count as f64 / start.elapsed().as_secs_f64()).round()})
}

// ---------- ledgers ----------

struct Desk {
    keys: Vec<(String, SecretKey)>,
}

impl Desk {
    fn key(&self, name: &str) -> &SecretKey {
        &self.keys.iter().find(|(n, _)| n == name).unwrap().1
    }
}

fn entry(name: &str, key: &SecretKey) -> SignerEntry {
    SignerEntry {
        name: name.into(),
        role: None,
        public_key: to_hex(&key.public().as_bytes()),
        key_id: key.public().key_id().to_string(),
        valid_after: None,
        valid_before: None,
    }
}

/// The example dated `now`, for `contracts`, on closed layer `layer` of its own: its own id and
/// numbers (fees 0.1 cent more per layer), so that it draws on no other roll's budget and an
/// empty `LayerBook` is the book its recording is judged on.
fn roll_body(now: DateTime<Utc>, contracts: u32, layer: u32) -> String {
    let mut proposal = Proposal::from_toml_str(EXAMPLE).unwrap();
    let as_of = Utc.with_ymd_and_hms(2026, 5, 7, 14, 30, 0).unwrap();
    proposal.shift_times(now - Duration::minutes(10) - as_of);
    proposal.set_contracts_requested(contracts);
    proposal.set_closed_layer(&format!("BENCH-L{layer}"), 26.0 + f64::from(layer) * 0.001);
    proposal.to_toml_string()
}

fn dummy(event: &Event, seq: u64, version: u64, at: DateTime<Utc>) -> StoredEvent {
    StoredEvent::seal(
        Uuid::nil(),
        seq,
        version,
        Uuid::nil(),
        at,
        [0; 32],
        new_event(event, None),
    )
}

fn new_event(event: &Event, actor: Option<&str>) -> NewEvent {
    NewEvent {
        stream_id: event.stream_id().to_string(),
        event_type: event.event_type().into(),
        schema_version: 1,
        actor: actor.map(str::to_string),
        payload: event.to_payload(),
    }
}

/// One committed roll: recorded by bob, co-signed until it commits. Valid by construction: made
/// by the same decide functions as the CLI.
/// Records `draft` alone, its proposer signing the head it follows (a recording binds exactly
/// that head); returns its state.
async fn record_alone(
    ledger: &Ledger,
    gov: &Governance,
    draft: &ProposalDraft,
    proposer: &SecretKey,
    at: DateTime<Utc>,
) -> ProposalState {
    let head = ledger.head().await.unwrap();
    let recorded = decide_propose(
        gov,
        draft,
        seal_signature(proposer, draft.message(&head)),
        &mut AtHead::new(head),
        // Every roll of the generated ledger is on a closed layer of its own (`roll_body`).
        &LayerBook::default(),
    )
    .unwrap();
    let key_id = proposer.public().key_id().to_string();
    let stored = ledger
        .store
        .append(
            ledger.ledger_id,
            false,
            &[],
            vec![new_event(&recorded, Some(&key_id))],
            at,
        )
        .await
        .unwrap();
    ProposalState::from_stream(&stored).unwrap()
}

/// The co-signatures (and the commit they decide) of a recorded proposal, each binding `head`:
/// a head at or after its recording, as an offline signature does, so that many proposals'
/// signatures go in one append.
fn cosign_until_committed(
    gov: &Governance,
    desk: &Desk,
    mut state: ProposalState,
    cosigners: &[&str],
    head: ChainHead,
    at: DateTime<Utc>,
) -> (Vec<NewEvent>, Option<Event>) {
    let mut out = Vec::new();
    for name in cosigners {
        let key = desk.key(name);
        let purpose = cosign_purpose(state.recorded.terms.kind);
        let message = message_for(gov.ledger_id, &state, purpose, &head, None);
        let mut chain = AtHead {
            head: ChainHead {
                seq: head.seq + 1,
                hash: [0; 32],
            },
            earlier: Some(head),
        };
        let outcome =
            decide_sign(gov, &state, seal_signature(key, message), at, &mut chain).unwrap();
        for event in &outcome.events {
            out.push(new_event(event, Some(&key.public().key_id().to_string())));
            let version = state.stream_version + 1;
            state.evolve(event, &dummy(event, state.last_seq + 1, version, at));
        }
        if outcome.committed {
            return (out, outcome.events.last().cloned());
        }
    }
    (out, None)
}

/// Rolls recorded per append round: each recorded alone, then all their co-signatures in one
/// append binding the head after the last recording.
const ROLLS_PER_ROUND: usize = 225;

/// A realistic ledger of about `target` events on `url`: 4 signers (2 of 4), committed rolls,
/// one governance change at 10% (erin joins, 3 of 5), then `pending` proposals dated now.
async fn generate(url: &str, target: u64, pending: usize) -> (Ledger, Desk, Vec<Uuid>) {
    let desk = Desk {
        keys: ["alice", "bob", "carol", "dave", "erin"]
            .iter()
            .map(|n| (n.to_string(), SecretKey::generate().unwrap()))
            .collect(),
    };
    let store = Store::open(url).await.unwrap();
    let set = ActiveSet::validate(&SignerSet {
        version: 1,
        threshold: 2,
        signers: ["alice", "bob", "carol", "dave"]
            .iter()
            .map(|n| entry(n, desk.key(n)))
            .collect(),
    })
    .unwrap();
    let t0 = Utc::now() - Duration::days(30);
    let (ledger_id, mut gov) =
        service::init(&store, &set, &Policy::default(), desk.key("alice"), t0)
            .await
            .unwrap();
    let ledger = Ledger::new(store, ledger_id);
    let mut written = 1u64;
    let mut clock = t0;
    let mut layers = 0u32;
    let mut changed = false;
    while written < target.saturating_sub(pending as u64) {
        if !changed && written >= target / 10 {
            changed = true;
            clock += Duration::milliseconds(250);
            let mut next = set.to_signer_set();
            next.version = 2;
            next.threshold = 3;
            next.signers.push(entry("erin", desk.key("erin")));
            let next = ActiveSet::validate(&next).unwrap();
            let draft = ProposalDraft::signer_set(&gov, uuid_v7_at(clock), &next, clock);
            let state = record_alone(&ledger, &gov, &draft, desk.key("alice"), clock).await;
            let head = ledger.head().await.unwrap();
            let (batch, adoption) =
                cosign_until_committed(&gov, &desk, state, &["bob", "carol", "erin"], head, clock);
            written += 1 + batch.len() as u64;
            ledger
                .store
                .append(ledger_id, false, &[], batch, clock)
                .await
                .unwrap();
            gov.apply(&adoption.unwrap()).unwrap();
            assert_eq!(gov.set.version, 2);
            continue;
        }
        let cosigners: &[&str] = if gov.set.threshold == 2 {
            &["alice", "carol"]
        } else {
            &["alice", "carol", "dave"]
        };
        let mut states = Vec::new();
        for _ in 0..ROLLS_PER_ROUND {
            clock += Duration::milliseconds(250);
            layers += 1;
            let body = roll_body(clock, 9, layers);
            let (draft, _) =
                ProposalDraft::roll(&gov, uuid_v7_at(clock), body, &Draws::none(), clock).unwrap();
            states.push(record_alone(&ledger, &gov, &draft, desk.key("bob"), clock).await);
            written += 1;
        }
        let head = ledger.head().await.unwrap();
        let mut batch = Vec::new();
        for state in states {
            batch.extend(cosign_until_committed(&gov, &desk, state, cosigners, head, clock).0);
        }
        written += batch.len() as u64;
        ledger
            .store
            .append(ledger_id, false, &[], batch, clock)
            .await
            .unwrap();
    }
    // Pending proposals dated now, for `sign` (bob proposed; nobody has co-signed yet).
    let now = Utc::now();
    let mut ids = Vec::new();
    for _ in 0..pending {
        layers += 1;
        let fresh = roll_body(now, 9, layers);
        let (draft, _) =
            ProposalDraft::roll(&gov, uuid_v7_at(now), fresh, &Draws::none(), now).unwrap();
        record_alone(&ledger, &gov, &draft, desk.key("bob"), now).await;
        ids.push(draft.proposal_id());
    }
    (ledger, desk, ids)
}

// ---------- append ----------

fn sample_event(stream: &str) -> NewEvent {
    // The size of a real co-signature event (~650 bytes).
    let payload = json!({"proposal_id": stream, "signature": {"key_id": format!("SHA256:{}", "A".repeat(43)), "message": "ab".repeat(91), "signature": "cd".repeat(64)}});
    NewEvent {
        stream_id: stream.into(),
        event_type: "bench.signed".into(),
        schema_version: 1,
        actor: Some(format!("SHA256:{}", "A".repeat(43))),
        payload: serde_json::to_vec(&payload).unwrap(),
    }
}

async fn rollbook_append(url: &str, writers: u64, per_writer: u64) -> f64 {
    let store = Store::open(url).await.unwrap();
    let ledger = Uuid::now_v7();
    store
        .append(ledger, true, &[], vec![sample_event("ledger")], Utc::now())
        .await
        .unwrap();
    // Every writer's store is open before the clock starts, as the peer's and the raw insert's
    // connections are: the rate is of appends, not of opening databases.
    let mut stores = Vec::new();
    for _ in 0..writers {
        stores.push(Store::open(url).await.unwrap());
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (w, store) in stores.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let stream = format!("writer-{w}");
            for i in 0..per_writer {
                // Checked as the CLI checks a co-signature: the ledger stream (the governance
                // it was decided under) and the proposal's own stream, at known versions.
                store
                    .append(
                        ledger,
                        false,
                        &[
                            ("ledger".into(), ExpectedVersion::Exact(1)),
                            (stream.clone(), ExpectedVersion::Exact(i)),
                        ],
                        vec![sample_event(&stream)],
                        Utc::now(),
                    )
                    .await
                    .unwrap();
            }
            store.close().await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (writers * per_writer) as f64 / start.elapsed().as_secs_f64()
}

async fn raw_append(url: &str, writers: u64, per_writer: u64) -> f64 {
    let size = sample_event("x").payload.len();
    let start;
    if url.starts_with("sqlite") {
        use sqlx::sqlite::{
            SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
        };
        use std::str::FromStr;
        let options = SqliteConnectOptions::from_str(url)
            .unwrap()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(StdDuration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .unwrap();
        sqlx::query("CREATE TABLE raw_events (id INTEGER PRIMARY KEY, stream TEXT NOT NULL, payload BLOB NOT NULL)").execute(&pool).await.unwrap();
        let mut pools = Vec::new();
        for _ in 0..writers {
            pools.push(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options.clone())
                    .await
                    .unwrap(),
            );
        }
        start = Instant::now();
        let mut tasks = Vec::new();
        for (w, pool) in pools.into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                for _ in 0..per_writer {
                    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
                    sqlx::query("INSERT INTO raw_events (stream, payload) VALUES (?1, ?2)")
                        .bind(format!("w{w}"))
                        .bind(vec![7u8; size])
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    } else {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE raw_events (id BIGSERIAL PRIMARY KEY, stream TEXT NOT NULL, payload BYTEA NOT NULL)").execute(&pool).await.unwrap();
        let mut pools = Vec::new();
        for _ in 0..writers {
            pools.push(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(url)
                    .await
                    .unwrap(),
            );
        }
        start = Instant::now();
        let mut tasks = Vec::new();
        for (w, pool) in pools.into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                for _ in 0..per_writer {
                    let mut tx = pool.begin().await.unwrap();
                    sqlx::query("INSERT INTO raw_events (stream, payload) VALUES ($1, $2)")
                        .bind(format!("w{w}"))
                        .bind(vec![7u8; size])
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    }
    (writers * per_writer) as f64 / start.elapsed().as_secs_f64()
}

fn peer_append(backend: &str, url: &str, writers: u64, per_writer: u64) -> Option<f64> {
    // bench/run builds the peer and says where (ROLLBOOK_BENCH_PEER); a bare `cargo bench`
    // looks in the peer workspace's own target folder.
    let binary = match std::env::var_os("ROLLBOOK_BENCH_PEER") {
        Some(path) => PathBuf::from(path),
        None => Path::new(ROOT).join("bench/peer/target/release/peer-bench"),
    };
    if !binary.exists() {
        eprintln!(
            "bench: no peer binary at {}; its columns are null",
            binary.display()
        );
        return None;
    }
    let size = sample_event("x").payload.len().to_string();
    let out = Command::new(binary)
        .args([
            "--backend",
            backend,
            "--db",
            url,
            "--writers",
            &writers.to_string(),
            "--commands",
            &per_writer.to_string(),
            "--payload-bytes",
            &size,
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "bench: peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let value: Value = serde_json::from_slice(&out.stdout).ok()?;
    value["events_per_s"].as_f64()
}

async fn postgres_schema(base: &str) -> String {
    use sqlx::Connection;
    let schema = format!("rb_bench_{}", Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{schema}")
}

/// Drops the schemas `postgres_schema` made for these URLs (repeated runs must not pile up).
async fn drop_schemas(base: &str, urls: &[&str]) {
    use sqlx::Connection;
    let Ok(mut conn) = sqlx::PgConnection::connect(base).await else {
        return;
    };
    for url in urls {
        if let Some(schema) = url
            .rsplit("search_path%3D")
            .next()
            .filter(|s| s.starts_with("rb_bench_"))
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

async fn append_all(dir: &Path, postgres: Option<&str>, sizes: &Sizes) -> Value {
    let mut rows = Vec::new();
    let mut backends = vec!["sqlite"];
    if postgres.is_some() {
        backends.push("postgres");
    }
    for backend in backends {
        for writers in [1u64, 8] {
            let per_writer = if writers == 1 {
                sizes.append_single
            } else {
                sizes.append_per_writer
            };
            let (mut ours_rounds, mut raw_rounds, mut peer_rounds) = (vec![], vec![], vec![]);
            for round in 0..ROUNDS {
                // Fresh files (one ledger per database) or schemas for every round.
                let (ours_url, raw_url) = if backend == "sqlite" {
                    (
                        format!("sqlite://{}/rollbook-{writers}-{round}.db", dir.display()),
                        format!("sqlite://{}/raw-{writers}-{round}.db", dir.display()),
                    )
                } else {
                    (
                        postgres_schema(postgres.unwrap()).await,
                        postgres_schema(postgres.unwrap()).await,
                    )
                };
                let ours = rollbook_append(&ours_url, writers, per_writer).await;
                let raw = raw_append(&raw_url, writers, per_writer).await;
                let peer_url = if backend == "sqlite" {
                    format!("sqlite://{}/peer-{writers}-{round}.db", dir.display())
                } else {
                    postgres.unwrap().to_string()
                };
                let peer = peer_append(backend, &peer_url, writers, per_writer);
                eprintln!("bench: append {backend} x{writers} round {round}: rollbook {ours:.0}/s raw {raw:.0}/s peer {peer:?}");
                if backend == "postgres" {
                    drop_schemas(postgres.unwrap(), &[&ours_url, &raw_url]).await;
                }
                ours_rounds.push(ours);
                raw_rounds.push(raw);
                peer_rounds.extend(peer);
            }
            let (ours, raw) = (median(&ours_rounds), median(&raw_rounds));
            let peer = (peer_rounds.len() == ROUNDS).then(|| median(&peer_rounds));
            let rounded = |v: &[f64]| v.iter().map(|x| x.round()).collect::<Vec<_>>();
            rows.push(json!({
                "backend": backend, "writers": writers,
                "events_per_s": ours.round(), "raw_insert_per_s": raw.round(), "ratio_to_raw": round3(ours / raw),
                "peer_events_per_s": peer.map(f64::round), "ratio_to_peer": peer.map(|p| round3(ours / p)),
                "rounds": {"events_per_s": rounded(&ours_rounds), "raw_insert_per_s": rounded(&raw_rounds), "peer_events_per_s": rounded(&peer_rounds)},
            }));
        }
    }
    Value::Array(rows)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

// ---------- verify ----------

/// The `rollbook` binary measured: `ROLLBOOK_BENCH_BINARY` (bench/run sets it to the release
/// build wherever CARGO_TARGET_DIR put it, unless it names a copy of an earlier build, to compare
/// two binaries on the same machine and ledgers), else the default release build.
fn release_binary() -> PathBuf {
    match std::env::var_os("ROLLBOOK_BENCH_BINARY") {
        Some(path) => PathBuf::from(path),
        None => Path::new(ROOT).join("target/release/rollbook"),
    }
}

/// The binary measured, its client pins (`ROLLBOOK_STATE_DIR`) in `state_dir`: never the
/// home of whoever runs the bench, and a pin built by a warm-up, as on a signer's machine.
fn rollbook(state_dir: &Path) -> Command {
    let mut command = Command::new(release_binary());
    command.env("ROLLBOOK_STATE_DIR", state_dir);
    command
}

/// Runs a command, polling its peak RSS (VmHWM) until it exits: (seconds, peak MiB, stdout).
fn timed(mut command: Command) -> (f64, f64, Vec<u8>) {
    let start = Instant::now();
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watcher = {
        let peak = peak.clone();
        std::thread::spawn(move || {
            while let Ok(text) = std::fs::read_to_string(&status_path) {
                if let Some(kb) = text
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    peak.fetch_max(kb, std::sync::atomic::Ordering::Relaxed);
                }
                std::thread::sleep(StdDuration::from_millis(2));
            }
        })
    };
    let out = child.wait_with_output().unwrap();
    let seconds = start.elapsed().as_secs_f64();
    watcher.join().unwrap();
    if !out.status.success() {
        panic!(
            "{:?} failed: {}",
            command,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (
        seconds,
        peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0,
        out.stdout,
    )
}

/// Every (public key, message, signature) of an export: the work `verify` must do at least.
fn signatures_of(path: &Path) -> Vec<([u8; 32], Vec<u8>, [u8; 64])> {
    use std::io::BufRead;
    let mut keys: std::collections::HashMap<String, [u8; 32]> = Default::default();
    let mut out = Vec::new();
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    for line in file.lines() {
        let line: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let Some(payload) = line["payload"].as_str() else {
            continue;
        };
        let payload: Value = serde_json::from_str(payload).unwrap();
        for set_field in ["signer_set_json", "body"] {
            if let Some(set) = payload[set_field]
                .as_str()
                .and_then(|t| serde_json::from_str::<Value>(t).ok())
            {
                for signer in set["signers"].as_array().into_iter().flatten() {
                    let key: [u8; 32] = from_hex(signer["public_key"].as_str().unwrap())
                        .unwrap()
                        .try_into()
                        .unwrap();
                    keys.insert(signer["key_id"].as_str().unwrap().to_string(), key);
                }
            }
        }
        if let Some(sig) = payload.get("signature") {
            let key = keys[sig["key_id"].as_str().unwrap()];
            out.push((
                key,
                from_hex(sig["message"].as_str().unwrap()).unwrap(),
                from_hex(sig["signature"].as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap(),
            ));
        }
    }
    out
}

/// ed25519-dalek's `VerifyingKey::verify_strict` (the primitive rollbook's verifier calls) over
/// the same signatures on every core, no IO: the limit for verify.
/// `decoded_once`: each signer's key is decoded before the clock starts (as rollbook does),
/// instead of from its 32 bytes with every signature; the stricter limit.
fn verify_strict_limit(signatures: &[([u8; 32], Vec<u8>, [u8; 64])], decoded_once: bool) -> f64 {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let decoded: std::collections::HashMap<[u8; 32], ed25519_dalek::VerifyingKey> = signatures
        .iter()
        .map(|(key, _, _)| (*key, ed25519_dalek::VerifyingKey::from_bytes(key).unwrap()))
        .collect();
    let decoded = &decoded;
    let start = Instant::now();
    std::thread::scope(|scope| {
        for chunk in signatures.chunks(signatures.len().div_ceil(threads).max(1)) {
            scope.spawn(move || {
                for (key, message, signature) in chunk {
                    let key = if decoded_once {
                        decoded[key]
                    } else {
                        ed25519_dalek::VerifyingKey::from_bytes(key).unwrap()
                    };
                    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
                        .unwrap();
                }
            });
        }
    });
    signatures.len() as f64 / start.elapsed().as_secs_f64()
}

async fn verify_all(dir: &Path, sizes: &Sizes) -> Value {
    let mut runs = Vec::new();
    for &target in &sizes.verify {
        let url = format!("sqlite://{}/verify-{target}.db", dir.display());
        let generated = Instant::now();
        let (ledger, _, _) = generate(&url, target, 0).await;
        let file = dir.join(format!("verify-{target}.jsonl"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let events = export_jsonl(
            &ledger.store,
            ledger.ledger_id,
            1,
            &mut out,
            "2026-11-24T00:00:00.000000Z",
        )
        .await
        .unwrap();
        drop(out);
        ledger.store.close().await;
        eprintln!(
            "bench: generated and exported {events} events in {:.1} s",
            generated.elapsed().as_secs_f64()
        );
        let signatures = signatures_of(&file);
        let (mut seconds_rounds, mut limit_rounds, mut decoded_once_rounds) =
            (vec![], vec![], vec![]);
        let mut peak_mib: f64 = 0.0;
        for _ in 0..ROUNDS {
            let mut command = rollbook(&dir.join("state"));
            command.args(["verify", file.to_str().unwrap(), "--json"]);
            let (seconds, peak, _) = timed(command);
            peak_mib = peak_mib.max(peak);
            seconds_rounds.push(seconds);
            limit_rounds.push(verify_strict_limit(&signatures, false));
            decoded_once_rounds.push(verify_strict_limit(&signatures, true));
        }
        let seconds = median(&seconds_rounds);
        let limit = median(&limit_rounds);
        let limit_decoded_once = median(&decoded_once_rounds);
        let signatures_per_s = signatures.len() as f64 / seconds;
        // Each round's verify and its limit run back to back, so their ratio is taken under the
        // same machine speed; the headline divides the medians, which can pair a slow minute of
        // one with a fast minute of the other. Both are reported.
        let round_ratios: Vec<f64> = seconds_rounds
            .iter()
            .zip(&limit_rounds)
            .map(|(seconds, limit)| signatures.len() as f64 / seconds / limit)
            .collect();
        runs.push(json!({
            "events": events, "events_per_s": (events as f64 / seconds).round(), "signatures_per_s": signatures_per_s.round(),
            "verify_strict_per_s": limit.round(), "ratio_to_limit": round3(signatures_per_s / limit), "peak_rss_mib": (peak_mib * 10.0).round() / 10.0,
            "seconds": (seconds * 100.0).round() / 100.0,
            "verify_strict_keys_decoded_once_per_s": limit_decoded_once.round(),
            "ratio_to_limit_keys_decoded_once": round3(signatures_per_s / limit_decoded_once),
            "ratio_to_limit_median_of_rounds": round3(median(&round_ratios)),
            "rounds": {
                "ratio_to_limit": round_ratios.iter().map(|x| round3(*x)).collect::<Vec<_>>(),
                "seconds": seconds_rounds.iter().map(|x| (x * 100.0).round() / 100.0).collect::<Vec<_>>(),
                "verify_strict_per_s": limit_rounds.iter().map(|x| x.round()).collect::<Vec<_>>(),
            },
        }));
    }
    // The largest run is the headline; every size is kept under "runs".
    let mut headline = runs.last().cloned().unwrap_or(Value::Null);
    headline["runs"] = Value::Array(runs);
    headline
}

// ---------- sign ----------

/// Waits until the kernel has written every dirty page to disk (`sync(1)`), then a moment more
/// for its flusher threads to go idle.
fn settle_disk() {
    let start = Instant::now();
    let synced = Command::new("sync")
        .status()
        .is_ok_and(|status| status.success());
    std::thread::sleep(StdDuration::from_secs(2));
    eprintln!(
        "bench: disk settled in {:.1} s{}",
        start.elapsed().as_secs_f64(),
        if synced {
            ""
        } else {
            " (sync failed; the timings may include writeback)"
        }
    );
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// A ledger of `events` events with `runs + 2` pending proposals, and carol's key file.
async fn sign_ledger(dir: &Path, events: u64, runs: usize) -> (String, PathBuf, Vec<Uuid>) {
    let url = format!("sqlite://{}/sign-{events}.db", dir.display());
    let (ledger, desk, pending) = generate(&url, events, runs + 2).await;
    ledger.store.close().await;
    // Every signer's key, so that a kept ledger (ROLLBOOK_BENCH_DIR) can be given more
    // proposals and signatures by hand when profiling; carol's signs here.
    for (name, key) in &desk.keys {
        let path = dir.join(format!("{name}-{events}.key"));
        std::fs::write(&path, key.to_pkcs8_pem_v1().as_bytes()).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }
    (url, dir.join(format!("carol-{events}.key")), pending)
}

/// One `rollbook sign` as a whole CLI process, in milliseconds, its pins in `state_dir`.
fn sign_once(state_dir: &Path, url: &str, key_path: &Path, id: &Uuid) -> f64 {
    let start = Instant::now();
    let out = rollbook(state_dir)
        .args([
            "--db",
            url,
            "sign",
            &id.to_string(),
            "--key",
            key_path.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    let elapsed = start.elapsed().as_secs_f64() * 1000.0;
    assert!(
        out.status.success(),
        "sign failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

async fn sign_all(dir: &Path, sizes: &Sizes) -> Value {
    let runs = sizes.sign_runs;
    let (small_url, small_key, small_ids) = sign_ledger(dir, sizes.sign.0, runs).await;
    let (large_url, large_key, large_ids) = sign_ledger(dir, sizes.sign.1, runs).await;
    // The ledgers just written (gigabytes at full size) are still being flushed by the kernel:
    // its writeback would share the disk and the cores with every timed `sign` and its fsync.
    // A user's `sign` does not follow a bulk load, so wait for the flush first.
    settle_disk();
    // One warm-up each (page cache; and the client's pin, verified from genesis once, as a
    // signer's machine holds it), then small and large in turn, so that a noisy minute weighs
    // on both sizes alike and cannot fake (or hide) growth with the ledger. Each timed `sign`
    // verifies the one event the previous one appended.
    let state = dir.join("sign-state");
    let warm_up = Instant::now();
    sign_once(&state, &small_url, &small_key, &small_ids[0]);
    sign_once(&state, &large_url, &large_key, &large_ids[0]);
    eprintln!(
        "bench: warm-up signs (pins from genesis) took {:.1} s",
        warm_up.elapsed().as_secs_f64()
    );
    let (mut small, mut large) = (Vec::new(), Vec::new());
    for (small_id, large_id) in small_ids.iter().zip(&large_ids).skip(1).take(runs) {
        small.push(sign_once(&state, &small_url, &small_key, small_id));
        large.push(sign_once(&state, &large_url, &large_key, large_id));
    }
    let list = list_runs(&state, (&small_url, &large_url), runs);
    small.sort_by(|a, b| a.partial_cmp(b).unwrap());
    large.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (p50s, p95s, p50l, p95l) = (
        percentile(&small, 0.5),
        percentile(&small, 0.95),
        percentile(&large, 0.5),
        percentile(&large, 0.95),
    );
    json!({
        "events_small": sizes.sign.0, "events_large": sizes.sign.1,
        "p50_ms_small": round3(p50s), "p95_ms_small": round3(p95s), "p50_ms_large": round3(p50l), "p95_ms_large": round3(p95l),
        "ratio_large_to_small": round3(p50l / p50s), "runs": small.len(),
        "list_limit_20": list,
    })
}

/// One `rollbook list --limit 20` as a whole CLI process, in milliseconds: the page a risk
/// officer opens, which must cost the 20 rows it shows, not the ledger.
fn list_once(state_dir: &Path, url: &str) -> f64 {
    let start = Instant::now();
    let out = rollbook(state_dir)
        .args(["--db", url, "list", "--limit", "20"])
        .output()
        .unwrap();
    let elapsed = start.elapsed().as_secs_f64() * 1000.0;
    assert!(
        out.status.success(),
        "list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        21,
        "a header and 20 rows"
    );
    elapsed
}

/// `list --limit 20` on the sign section's two ledgers, alternating, after the signs (the pins
/// are at the heads): p50 and p95 of each.
fn list_runs(state_dir: &Path, (small_url, large_url): (&str, &str), runs: usize) -> Value {
    let (mut small, mut large) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        small.push(list_once(state_dir, small_url));
        large.push(list_once(state_dir, large_url));
    }
    small.sort_by(|a, b| a.partial_cmp(b).unwrap());
    large.sort_by(|a, b| a.partial_cmp(b).unwrap());
    json!({
        "p50_ms_small": round3(percentile(&small, 0.5)), "p95_ms_small": round3(percentile(&small, 0.95)),
        "p50_ms_large": round3(percentile(&large, 0.5)), "p95_ms_large": round3(percentile(&large, 0.95)),
        "runs": runs,
    })
}

// ---------- output ----------

fn print_table(result: &Value) {
    println!(
        "rollbook benchmarks ({}) on {}",
        if result["quick"] == true {
            "quick"
        } else {
            "full"
        },
        result["machine"].as_str().unwrap_or("")
    );
    println!("\nappend (durable events/s, one transaction per command)");
    println!(
        "{:<9} {:>7} {:>12} {:>12} {:>8} {:>12} {:>8}",
        "backend", "writers", "rollbook", "raw insert", "ratio", "cqrs-es", "ratio"
    );
    let cell = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
            format!("{}", n.as_f64().unwrap() as i64)
        }
        other => other.to_string().trim_matches('"').to_string(),
    };
    for row in result["append"].as_array().into_iter().flatten() {
        println!(
            "{:<9} {:>7} {:>12} {:>12} {:>8} {:>12} {:>8}",
            cell(&row["backend"]),
            cell(&row["writers"]),
            cell(&row["events_per_s"]),
            cell(&row["raw_insert_per_s"]),
            cell(&row["ratio_to_raw"]),
            cell(&row["peer_events_per_s"]),
            cell(&row["ratio_to_peer"])
        );
    }
    let v = &result["verify"];
    if !v.is_null() {
        println!("\nverify: {} events in {} s: {} events/s, {} signatures/s; verify_strict limit {} /s (ratio {}; median of the rounds' ratios {}); with keys decoded once {} /s (ratio {}); peak RSS {} MiB", v["events"], v["seconds"], v["events_per_s"], v["signatures_per_s"], v["verify_strict_per_s"], v["ratio_to_limit"], v["ratio_to_limit_median_of_rounds"], v["verify_strict_keys_decoded_once_per_s"], v["ratio_to_limit_keys_decoded_once"], v["peak_rss_mib"]);
    }
    let s = &result["sign"];
    if !s.is_null() {
        println!("sign (whole CLI process): {} events p50 {} ms p95 {} ms; {} events p50 {} ms p95 {} ms; ratio {}", s["events_small"], s["p50_ms_small"], s["p95_ms_small"], s["events_large"], s["p50_ms_large"], s["p95_ms_large"], s["ratio_large_to_small"]);
        let l = &s["list_limit_20"];
        println!("list --limit 20 (whole CLI process): {} events p50 {} ms p95 {} ms; {} events p50 {} ms p95 {} ms", s["events_small"], l["p50_ms_small"], l["p95_ms_small"], s["events_large"], l["p50_ms_large"], l["p95_ms_large"]);
    }
    if !result["evaluate"].is_null() {
        println!(
            "evaluate: {} per second per core",
            result["evaluate"]["per_s_per_core"]
        );
    }
}
