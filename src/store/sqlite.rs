//! The SQLite backend (the embedded default).
//!
//! `BEGIN IMMEDIATE` takes the database's write lock before the head is read, so every append
//! is serialized by SQLite itself. sqlx runs each SQLite command on the connection's own thread
//! and a round trip to it costs more than the statements, so the CLI's append (one event) is two
//! commands (`append_two_trips`); every other append takes the general locked path
//! (`append_locked`).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, SqlitePool};
use uuid::Uuid;

use super::queries::{holds_kept_writer, KeptWriter, Queries, PROJECTION};
use super::shared::{
    bind_event, bind_projection, check_expected, next_on_head, open_kept_writer, projection_ops,
    seal_checked, take_turn, Counters, ProjectionSql, ReadRow, TurnLock, Turns,
};
use super::{
    db_err, open_failed, redact_url, AppendCounts, ExpectedVersion, Landing, StoreError,
    LOCK_TIMEOUT,
};
use crate::domain::envelope::{NewEvent, StoredEvent};

macro_rules! insert_event {
    () => {
        concat!(
            "INSERT INTO events (",
            event_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        )
    };
}
/// The head and the versions of two streams (?2, ?3; the same stream twice when there is one).
/// Safe in one statement here, unlike on PostgreSQL: `BEGIN IMMEDIATE` holds the write lock
/// before this read, so nothing can commit between the head and the versions.
macro_rules! head_and_versions {
    () => {
        concat!(
            "SELECT head_seq, head_hash, head_recorded_at, ",
            "(SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE ledger_id = ?1 AND stream_id = ?2) AS stream_version, ",
            "(SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE ledger_id = ?1 AND stream_id = ?3) AS stream_version_2 ",
            "FROM ledgers WHERE ledger_id = ?1"
        )
    };
}

const INSERT_EVENT: &str = insert_event!();
const HEAD_AND_VERSIONS: &str = head_and_versions!();

/// The second command of a two-command append: the event's insert (?1..?12), its projection
/// change (parameters from ?13 in `bind_projection` order, the ledger id shared as ?1), then
/// `COMMIT`. One string per kind of change; each holds several statements, so it must run with
/// `execute` or `fetch_all`, which step every statement: `fetch_one` and `fetch_optional` stop
/// after the first row, and the `COMMIT` would silently not run.
const COMMIT_PLAIN: &str = concat!(insert_event!(), "; COMMIT");
const COMMIT_WITH: ProjectionSql = ProjectionSql {
    insert: concat!(
        insert_event!(), "; ",
        "INSERT INTO proposals (ledger_id, ", proj_columns!(), ") VALUES (?1, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26); ",
        "COMMIT"
    ),
    signed: concat!(
        insert_event!(), "; ",
        "UPDATE proposals SET signature_count = signature_count + 1, signers = CASE WHEN signers = '' THEN ?14 ELSE signers || ',' || ?14 END, last_seq = ?15 WHERE ledger_id = ?1 AND proposal_id = ?13; ",
        "COMMIT"
    ),
    status: concat!(
        insert_event!(), "; ",
        "UPDATE proposals SET status = ?14, last_seq = ?15 WHERE ledger_id = ?1 AND proposal_id = ?13; ",
        "COMMIT"
    ),
};
/// The first command of a two-command append: the write lock, the head and two stream versions.
const BEGIN_AND_READ: &str = concat!("BEGIN IMMEDIATE; ", head_and_versions!());

/// What a process's SQLite appends to one file share (`Turns`).
#[derive(Debug, Default)]
pub(super) struct WriterTurn {
    /// Two-command appends this process has started on this file: from the second on, they
    /// run on `kept`.
    appends: u64,
    /// The database is in memory, one per connection: its appends never leave the store's
    /// own connection.
    in_memory: bool,
    /// The connection this process's appends to the file run on after its first: taken by each
    /// append and given back unless the append left it in doubt (it is then dropped, which
    /// closes it and rolls back, and the next append opens another).
    kept: Option<SqliteConnection>,
}

static TURNS: Turns<WriterTurn> = Turns::new();

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// This process's queue of appends to this file.
    turn: Arc<TurnLock<WriterTurn>>,
    counts: Arc<Counters>,
}

impl KeptWriter for WriterTurn {
    type Connection = SqliteConnection;
    fn kept(&mut self) -> &mut Option<SqliteConnection> {
        &mut self.kept
    }
}

impl SqliteStore {
    pub async fn open(url: &str, create: bool) -> Result<Self, StoreError> {
        use std::str::FromStr;
        let shown = redact_url(url);
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_failed(url))?
            .create_if_missing(create)
            // WAL + FULL: a commit is durable once `append` returns, and a crash mid-append
            // leaves the last committed state (the WAL frame without its commit is ignored).
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(LOCK_TIMEOUT)
            .foreign_keys(true);
        // An in-memory database exists per connection: one connection or the data vanishes.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !create && !in_memory {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or(path);
            if !std::path::Path::new(path).exists() {
                return Err(StoreError::Missing { url: shown });
            }
        }
        // One connection per store. SQLite takes one writer at a time anyway, and a CLI command
        // is one task: with more, sqlx opened a second connection for the query right after the
        // first (the first goes back to the pool asynchronously), and each connection costs
        // its open, its WAL-index read and its schema parse (`sign` p50 10.3 against 12.8 ms).
        // Tasks sharing a store wait for the connection (acquire timeout below).
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(LOCK_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(open_failed(url))?;
        migrate(&pool, &sqlx::migrate!("migrations/sqlite"))
            .await
            .map_err(|reason| StoreError::Migrate { url: shown, reason })?;
        let turn = TURNS.of(url);
        if in_memory {
            turn.lock().await.in_memory = true;
        }
        Ok(Self {
            pool,
            turn,
            counts: Arc::default(),
        })
    }

    /// See `Store::append_before`. SQLite's transactions survive a cut at any await: sqlx rolls
    /// back a `BEGIN` whose reply was not taken and a dropped transaction on the connection's
    /// own thread, and `OpenWrite` the two-command append's.
    // `Store::append_before`'s parameters, kept public as they are (tests drive this directly).
    pub async fn append(
        &self,
        ledger_id: Uuid,
        create: bool,
        expected: &[(String, ExpectedVersion)],
        events: Vec<NewEvent>,
        now: DateTime<Utc>,
        landing: Landing,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut turn = take_turn(&self.turn).await?;
        match two_trip_shape(expected, &events) {
            Some(other) if !create => {
                let new = events.into_iter().next().expect("one event");
                let mut slot = Some(self.append_conn(&mut turn).await?);
                let appended = self
                    .append_two_trips(&mut slot, ledger_id, expected, other, new, now, landing)
                    .await;
                // A kept connection goes back to the turn unless the append left it closed (the
                // slot is then empty and the next append opens one).
                if let Some(WriteConn::Kept(conn)) = slot {
                    turn.kept = Some(conn);
                }
                appended.map(|event| vec![event])
            }
            _ => {
                self.append_locked(ledger_id, create, expected, events, now, landing)
                    .await
            }
        }
    }

    /// The connection a two-command append runs on. A process's first append to the file (the
    /// only one of a CLI command) runs on its store's own connection: no second connection to
    /// open. From the second on, appends run on one connection kept with the writer turn and
    /// shared by every store of the process on that file. A pooled connection goes back to its
    /// pool through a task of its own after every append, which the next append waits for; and
    /// in WAL mode a connection whose file another connection wrote drops its whole page cache,
    /// so 8 stores appending each on its own connection lost about a tenth of one writer's rate.
    async fn append_conn(&self, turn: &mut WriterTurn) -> Result<WriteConn, StoreError> {
        let taking = db_err("taking a connection for the append");
        if self.pool.is_closed() {
            // A closed store appends nothing (the pool would refuse; the kept connection must too).
            return Err(taking(sqlx::Error::PoolClosed));
        }
        let kept = turn.appends > 0 && !turn.in_memory;
        turn.appends += 1;
        if !kept {
            return Ok(WriteConn::Pooled(
                self.pool.acquire().await.map_err(taking)?,
            ));
        }
        let conn = match turn.kept.take() {
            Some(conn) => conn,
            None => open_kept_writer(&*self.pool.connect_options(), &self.counts).await?,
        };
        Ok(WriteConn::Kept(conn))
    }

    /// `BEGIN IMMEDIATE` and the head read in one command, the event sealed on that head, and
    /// its insert, projection change and `COMMIT` in the next. Everything the general path
    /// checks is checked here, under the same write lock; any failure rolls back.
    #[allow(clippy::too_many_arguments)]
    async fn append_two_trips(
        &self,
        slot: &mut Option<WriteConn>,
        ledger_id: Uuid,
        expected: &[(String, ExpectedVersion)],
        other: Option<&str>,
        new: NewEvent,
        now: DateTime<Utc>,
        landing: Landing,
    ) -> Result<StoredEvent, StoreError> {
        let ledger = ledger_id.to_string();
        let mut write = OpenWrite { slot, open: true };
        let appended = async {
            let rows = sqlx::query(BEGIN_AND_READ)
                .bind(&ledger)
                .bind(&new.stream_id)
                .bind(other.unwrap_or(&new.stream_id))
                .fetch_all(write.conn()?)
                .await
                .map_err(db_err("taking the write lock and reading the ledger head"))?;
            let head = rows.first().ok_or(StoreError::NoSuchLedger(ledger_id))?;
            let (head_seq, prev_hash, recorded_at) = next_on_head(head, now, landing)?;
            let own = stream_version_column(head, "stream_version")?;
            let second = stream_version_column(head, "stream_version_2")?;
            for (stream_id, expectation) in expected {
                let actual = if *stream_id == new.stream_id {
                    own
                } else {
                    second
                };
                check_expected(stream_id, *expectation, actual)?;
            }
            let event = seal_checked(ledger_id, head_seq, own + 1, recorded_at, prev_hash, new)?;
            let mut ops = projection_ops(&event)?;
            if ops.len() > 1 {
                // No event projects more than one change today; should one, its statements run
                // one by one in the same transaction.
                bind_event(INSERT_EVENT, &ledger, &event)
                    .execute(write.conn()?)
                    .await
                    .map_err(db_err("inserting an event"))?;
                for op in ops {
                    let (sql, doing) = PROJECTION.of(&op);
                    bind_projection(sqlx::query(sql).bind(ledger.as_str()), op)
                        .execute(write.conn()?)
                        .await
                        .map_err(db_err(doing))?;
                }
                sqlx::query("COMMIT")
                    .execute(write.conn()?)
                    .await
                    .map_err(db_err("committing the append"))?;
                return Ok(event);
            }
            let insert_and_commit = match ops.pop() {
                None => bind_event(COMMIT_PLAIN, &ledger, &event),
                Some(op) => bind_projection(bind_event(COMMIT_WITH.of(&op).0, &ledger, &event), op),
            };
            insert_and_commit
                .execute(write.conn()?)
                .await
                .map_err(db_err("inserting and committing an event"))?;
            Ok(event)
        }
        .await;
        match appended {
            Ok(_) => write.open = false,
            Err(_) => write.roll_back().await,
        }
        appended
    }

    /// The general append (several events, `Any` versions, creation): `BEGIN IMMEDIATE`, the
    /// head with the first two expected streams' versions in one read, then each event sealed
    /// and inserted with its projection change. The schema's insert trigger moves the head
    /// (migrations/sqlite/0002).
    async fn append_locked(
        &self,
        ledger_id: Uuid,
        create: bool,
        expected: &[(String, ExpectedVersion)],
        events: Vec<NewEvent>,
        now: DateTime<Utc>,
        landing: Landing,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let ledger = ledger_id.to_string();
        let mut tx = self.begin_write().await?;
        if create {
            // One ledger per database; `BEGIN IMMEDIATE` already excludes every other writer,
            // so two concurrent `init`s cannot both succeed.
            self.queries()
                .create_ledger(&mut tx, ledger_id, now)
                .await?;
        }
        let first = expected.first().map_or("", |(stream, _)| stream.as_str());
        let second = expected.get(1).map_or(first, |(stream, _)| stream.as_str());
        let head = sqlx::query(HEAD_AND_VERSIONS)
            .bind(&ledger)
            .bind(first)
            .bind(second)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err("locking the ledger head"))?
            .ok_or(StoreError::NoSuchLedger(ledger_id))?;
        let next = next_on_head(&head, now, landing)?;
        let mut versions: HashMap<String, u64> = HashMap::new();
        for (index, (stream_id, expectation)) in expected.iter().enumerate() {
            let actual = match index {
                0 => stream_version_column(&head, "stream_version")?,
                1 => stream_version_column(&head, "stream_version_2")?,
                _ => {
                    self.queries()
                        .stream_version(&mut tx, &ledger, stream_id)
                        .await?
                }
            };
            check_expected(stream_id, *expectation, actual)?;
            versions.insert(stream_id.clone(), actual);
        }
        self.queries()
            .insert_events(tx, ledger_id, next, versions, events)
            .await
    }

    /// `BEGIN IMMEDIATE` takes SQLite's write lock up front (waiting up to the busy timeout),
    /// so two writers never both read the same head and then fail to upgrade.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err("taking the write lock"))
    }

    /// The statements both backends run alike, on this store's pool.
    pub(super) fn queries(&self) -> Queries<'_, Sqlite> {
        Queries { pool: &self.pool }
    }

    pub async fn rebuild_projections(&self, ledger_id: Uuid) -> Result<u64, StoreError> {
        // `BEGIN IMMEDIATE` holds the write lock, so no append interleaves with the replay.
        let tx = self.begin_write().await?;
        self.queries().rebuild_projections(tx, ledger_id).await
    }

    pub async fn close(&self) {
        self.queries().close(&self.turn).await
    }

    pub(super) async fn holds_kept_writer(&self) -> bool {
        holds_kept_writer(&self.turn).await
    }

    pub(super) fn append_counts(&self) -> AppendCounts {
        self.counts.snapshot()
    }
}

/// The other stream a two-command append checks (`Some(None)` when there is none), if the
/// append has its shape: one event, and expectations on at most its own stream and one other
/// (the head read carries two stream versions).
fn two_trip_shape<'a>(
    expected: &'a [(String, ExpectedVersion)],
    events: &[NewEvent],
) -> Option<Option<&'a str>> {
    let [new] = events else {
        return None;
    };
    let mut others = expected
        .iter()
        .map(|(stream, _)| stream.as_str())
        .filter(|stream| *stream != new.stream_id);
    let other = others.next();
    if expected.len() > 2 || others.next().is_some() {
        return None;
    }
    Some(other)
}

fn stream_version_column(head: &SqliteRow, column: &str) -> Result<u64, StoreError> {
    let version = head
        .int64(column)
        .map_err(db_err("reading a stream version"))?;
    Ok(version.max(0) as u64)
}

/// The connection a two-command append runs on: the store's own, or the one kept with the turn.
enum WriteConn {
    Pooled(sqlx::pool::PoolConnection<Sqlite>),
    Kept(SqliteConnection),
}

/// A connection inside a transaction that a two-command append opened with its own `BEGIN`
/// (sqlx does not track it), borrowed from the slot its caller keeps. Until `open` is cleared by
/// the commit it must not be used again as it is: `roll_back` ends the transaction, and a drop
/// while it is still open (the append failed and so did the rollback, or the append's future
/// was cancelled) empties the slot and closes the connection, which rolls back.
struct OpenWrite<'s> {
    slot: &'s mut Option<WriteConn>,
    open: bool,
}

impl OpenWrite<'_> {
    fn conn(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        match self.slot.as_mut() {
            Some(WriteConn::Pooled(conn)) => Ok(&mut **conn),
            Some(WriteConn::Kept(conn)) => Ok(conn),
            None => Err(StoreError::WriteAborted(
                "the append's connection was closed".into(),
            )),
        }
    }

    async fn roll_back(&mut self) {
        let Ok(conn) = self.conn() else { return };
        if sqlx::query("ROLLBACK").execute(conn).await.is_ok() {
            self.open = false;
        }
    }
}

impl Drop for OpenWrite<'_> {
    fn drop(&mut self) {
        if self.open {
            match self.slot.take() {
                Some(WriteConn::Pooled(mut conn)) => conn.close_on_drop(),
                // Dropping a connection closes it; closing rolls back.
                Some(WriteConn::Kept(conn)) => drop(conn),
                None => {}
            }
        }
    }
}

/// Applies the carried migrations (the ledger's, or a client state file's). Several processes
/// may open a fresh file at once and SQLite's migrator takes no lock, so a loser of that race
/// sees the winner's tables: it retries once the winner has committed.
pub(super) async fn migrate(
    pool: &SqlitePool,
    migrator: &sqlx::migrate::Migrator,
) -> Result<(), String> {
    let mut attempt = 0;
    loop {
        if migrations_current(pool, migrator).await {
            return Ok(());
        }
        match migrator.run(pool).await {
            Ok(()) => return Ok(()),
            // A refusal of what the database records is final; only a failure to run (the race
            // above: busy, a table the winner just made) is worth a retry.
            Err(error) if attempt < 5 && !migration_refused(&error) => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
            }
            Err(error) => return Err(error.to_string()),
        }
    }
}

fn migration_refused(error: &sqlx::migrate::MigrateError) -> bool {
    use sqlx::migrate::MigrateError;
    matches!(
        error,
        MigrateError::Dirty(_)
            | MigrateError::VersionMissing(_)
            | MigrateError::VersionMismatch(_)
            | MigrateError::VersionTooOld(..)
            | MigrateError::VersionTooNew(..)
    )
}

/// Whether the database already holds exactly the migrations this binary carries, each
/// applied, successful and with its checksum: then the migrator, which spends three statements
/// (and their compilation) on every open to learn the same, has nothing to do. Anything else
/// (no table yet, a migration missing, dirty, changed or unknown to this binary) answers no,
/// and the migrator then applies or refuses exactly as it always does.
async fn migrations_current(pool: &SqlitePool, migrator: &sqlx::migrate::Migrator) -> bool {
    // The read names sqlx's default table; a migrator configured with another one (sqlx.toml)
    // always goes the long way.
    if migrator.table_name != "_sqlx_migrations" {
        return false;
    }
    let applied: Vec<(i64, Vec<u8>, bool)> = match sqlx::query_as(
        "SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(pool)
    .await
    {
        Ok(applied) => applied,
        Err(_) => return false,
    };
    let carried: Vec<&sqlx::migrate::Migration> = migrator
        .iter()
        .filter(|migration| !migration.migration_type.is_down_migration())
        .collect();
    applied.len() == carried.len()
        && applied
            .iter()
            .zip(&carried)
            .all(|((version, checksum, success), migration)| {
                *success && *version == migration.version && checksum[..] == migration.checksum[..]
            })
}
