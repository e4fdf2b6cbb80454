//! peer-bench: durable appends through cqrs-es (sqlite-es / postgres-es), for comparison with
//! rollbook. One command = one event = one transaction, as `CqrsFramework::execute` does it.
//!
//! peer-bench --backend sqlite|postgres --db URL --writers N --commands M --payload-bytes B

use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use postgres_es::{postgres_cqrs, PostgresCqrs};
use serde::{Deserialize, Serialize};
use sqlite_es::{sqlite_cqrs, SqliteCqrs};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Executor;

type BoxErr = Box<dyn std::error::Error + Send + Sync>;

/// Aggregate ids per writer: command i goes to aggregate i % AGGS.
const AGGS: usize = 50;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Ledger {
    entries: u64,
}

struct Append {
    data: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum LedgerEvent {
    Appended { data: String },
}

impl DomainEvent for LedgerEvent {
    fn event_type(&self) -> String {
        "Appended".to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug)]
struct LedgerError;

impl std::fmt::Display for LedgerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ledger error")
    }
}

impl std::error::Error for LedgerError {}

impl Aggregate for Ledger {
    const TYPE: &'static str = "Ledger";
    type Command = Append;
    type Event = LedgerEvent;
    type Error = LedgerError;
    type Services = ();

    async fn handle(&mut self, cmd: Append, _: &(), sink: &EventSink<Self>) -> Result<(), LedgerError> {
        sink.write(LedgerEvent::Appended { data: cmd.data }, self).await;
        Ok(())
    }

    fn apply(&mut self, _event: LedgerEvent) {
        self.entries += 1;
    }
}

enum Framework {
    Sqlite(SqliteCqrs<Ledger>),
    Postgres(PostgresCqrs<Ledger>),
}

impl Framework {
    async fn execute(&self, id: &str, cmd: Append) -> Result<(), BoxErr> {
        match self {
            Framework::Sqlite(f) => f.execute(id, cmd).await?,
            Framework::Postgres(f) => f.execute(id, cmd).await?,
        }
        Ok(())
    }
}

struct Args {
    backend: String,
    db: String,
    writers: usize,
    commands: usize,
    payload_bytes: usize,
}

fn parse_args() -> Result<Args, BoxErr> {
    let (mut backend, mut db, mut w, mut c, mut p) = (None, None, None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it.next().ok_or_else(|| format!("missing value for {flag}"))?;
        match flag.as_str() {
            "--backend" => backend = Some(val),
            "--db" => db = Some(val),
            "--writers" => w = Some(val.parse::<usize>()?),
            "--commands" => c = Some(val.parse::<usize>()?),
            "--payload-bytes" => p = Some(val.parse::<usize>()?),
            _ => return Err(format!("unknown argument {flag}").into()),
        }
    }
    const USAGE: &str = "usage: peer-bench --backend sqlite|postgres --db URL --writers N --commands M --payload-bytes B";
    let a = Args {
        backend: backend.ok_or(USAGE)?,
        db: db.ok_or(USAGE)?,
        writers: w.ok_or(USAGE)?,
        commands: c.ok_or(USAGE)?,
        payload_bytes: p.ok_or(USAGE)?,
    };
    if a.backend != "sqlite" && a.backend != "postgres" {
        return Err(format!("unknown backend {} ({USAGE})", a.backend).into());
    }
    if a.writers == 0 {
        return Err("--writers must be at least 1".into());
    }
    Ok(a)
}

/// Schema from sqlite-es 0.5.0 migrations/20221114171845_init.sql (events + snapshots).
const SQLITE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
  aggregate_type text NOT NULL, aggregate_id text NOT NULL,
  sequence integer CHECK (sequence >= 0) NOT NULL,
  event_type text NOT NULL, event_version text NOT NULL,
  payload text NOT NULL, metadata text NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, sequence)) STRICT;
CREATE TABLE IF NOT EXISTS snapshots (
  aggregate_type text NOT NULL, aggregate_id text NOT NULL,
  last_sequence integer CHECK (last_sequence >= 0) NOT NULL,
  current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL,
  payload text NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)) STRICT;";

/// Schema from postgres-es 0.5.0 db/init.sql (events + snapshots), created in the search_path.
const PG_SCHEMA: &str = "
CREATE TABLE events (
  aggregate_type text NOT NULL, aggregate_id text NOT NULL,
  sequence bigint CHECK (sequence >= 0) NOT NULL,
  event_type text NOT NULL, event_version text NOT NULL,
  payload json NOT NULL, metadata json NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, sequence));
CREATE TABLE snapshots (
  aggregate_type text NOT NULL, aggregate_id text NOT NULL,
  last_sequence bigint CHECK (last_sequence >= 0) NOT NULL,
  current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
  payload json NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, last_sequence));";

/// Runs the writers; returns (events, seconds).
async fn run(frameworks: Vec<Framework>, a: &Args, tag: &str) -> Result<(usize, f64), BoxErr> {
    // Serialized payload is {"Appended":{"data":"..."}}: 24 bytes of JSON around the string.
    let data = "x".repeat(a.payload_bytes.saturating_sub(24));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (w, fw) in frameworks.into_iter().enumerate() {
        let (data, tag, m) = (data.clone(), tag.to_string(), a.commands);
        tasks.push(tokio::spawn(async move {
            for i in 0..m {
                let id = format!("agg-{tag}-{w}-{}", i % AGGS);
                fw.execute(&id, Append { data: data.clone() }).await?;
            }
            Ok::<usize, BoxErr>(m)
        }));
    }
    let mut events = 0;
    for t in tasks {
        events += t.await??;
    }
    Ok((events, start.elapsed().as_secs_f64()))
}

async fn bench_sqlite(a: &Args, tag: &str) -> Result<(usize, f64), BoxErr> {
    let opts = SqliteConnectOptions::from_str(&a.db)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(60));
    let setup = SqlitePoolOptions::new().max_connections(1).connect_with(opts.clone()).await?;
    setup.execute(SQLITE_SCHEMA).await?;
    let mut fws = Vec::new();
    for _ in 0..a.writers {
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts.clone()).await?;
        fws.push(Framework::Sqlite(sqlite_cqrs(pool, vec![], ())));
    }
    let res = run(fws, a, tag).await;
    setup.close().await;
    res
}

async fn bench_postgres(a: &Args, tag: &str) -> Result<(usize, f64), BoxErr> {
    let base = PgConnectOptions::from_str(&a.db)?;
    let schema = format!("peer_{tag}");
    let admin = PgPoolOptions::new().max_connections(1).connect_with(base.clone()).await?;
    admin.execute(format!("CREATE SCHEMA {schema}").as_str()).await?;
    let res = async {
        let opts = base.options([("search_path", schema.as_str())]);
        let setup = PgPoolOptions::new().max_connections(1).connect_with(opts.clone()).await?;
        setup.execute(PG_SCHEMA).await?;
        setup.close().await;
        let mut fws = Vec::new();
        for _ in 0..a.writers {
            let pool = PgPoolOptions::new().max_connections(1).connect_with(opts.clone()).await?;
            fws.push(Framework::Postgres(postgres_cqrs(pool, vec![], ())));
        }
        run(fws, a, tag).await
    }
    .await;
    let drop = admin.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await;
    let res = res?;
    drop?;
    Ok(res)
}

async fn main_inner() -> Result<String, BoxErr> {
    let a = parse_args()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let tag = format!("{:x}{:x}", now.as_nanos() as u64 & 0xffff_ffff_ffff, std::process::id());
    let (events, seconds) = match a.backend.as_str() {
        "sqlite" => bench_sqlite(&a, &tag).await?,
        _ => bench_postgres(&a, &tag).await?,
    };
    let rate = events as f64 / seconds;
    Ok(format!(
        r#"{{"backend":"{}","writers":{},"events":{events},"seconds":{seconds:.3},"events_per_s":{rate:.1}}}"#,
        a.backend, a.writers
    ))
}

#[tokio::main]
async fn main() {
    match main_inner().await {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("peer-bench: error: {e}");
            std::process::exit(1);
        }
    }
}
