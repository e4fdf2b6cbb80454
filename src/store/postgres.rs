//! The PostgreSQL backend.
//!
//! The CLI's append (one event on a stream at a known version, with at most one other stream's
//! expected version) is one autocommit statement sealed on a head read without a lock, or on
//! the head this process's previous append committed (`append_autocommit`); the schema's insert
//! trigger takes the head's row lock and refuses the event if the head moved (SQLSTATE RBH01).
//! Every other append, and any refusal of that statement, takes the locked path
//! (`append_locked`: `SELECT ... FOR UPDATE` on the head row).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Postgres};
use uuid::Uuid;

use super::queries::{holds_kept_writer, KeptWriter, Queries};
use super::shared::{
    bind_event, bind_projection, check_expected, head_with_time_of, known_version, next_on_head,
    open_kept_writer, projection_ops, seal_checked, take_turn, Counters, ProjectionSql, Query,
    ReadRow, TurnLock, Turns,
};
use super::{
    db_err, open_failed, redact_url, AppendCounts, ChainNow, ExpectedVersion, Landing, StoreError,
};
use crate::crypto::canonical::ChainHead;
use crate::domain::envelope::{parse_timestamp, NewEvent, StoredEvent};
use crate::domain::projection::ProjectionOp;

/// Connections per PostgreSQL store.
const POOL_CONNECTIONS: u32 = 4;

/// Insert the event ($1..$12) only if its stream is at version $13 and stream $14 is at version
/// $15 (the event's own stream again when there is no other).
macro_rules! insert_at_version {
    () => {
        concat!(
            "INSERT INTO events (", event_columns!(), ") ",
            "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 ",
            "WHERE (SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE ledger_id = $1 AND stream_id = $3) = $13 ",
            "AND (SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE ledger_id = $1 AND stream_id = $14) = $15"
        )
    };
}
/// The end of a one-statement append whose projection change updates a row. An UPDATE that
/// finds no row version in the statement's snapshot (a `rebuild` replaced the rows while this
/// statement waited for the head lock) changes nothing, silently: the statement then fails
/// instead (SQLSTATE RBP01, migrations/postgres/0002), so the event is not recorded without its
/// projection change, and the locked path, whose statements start after the lock, does both.
macro_rules! updated_row_or_refuse {
    () => {
        "SELECT seq, CASE WHEN EXISTS (SELECT 1 FROM projected) THEN 0 ELSE rollbook_projection_missed() END FROM inserted"
    };
}

/// The head, unlocked: the insert trigger re-checks it under the row lock.
const READ_HEAD: &str =
    "SELECT head_seq, head_hash, head_recorded_at FROM ledgers WHERE ledger_id = $1";
/// One event, its stream-version checks and its projection change in one statement, one per
/// kind of change (`insert_at_version!` parameters, then the change's from $16 in
/// `bind_projection` order). Each returns the event's seq if it went in; the projection change
/// runs only if it did.
const ONE_STATEMENT_PLAIN: &str = concat!(
    "WITH inserted AS (",
    insert_at_version!(),
    " RETURNING seq) SELECT seq FROM inserted"
);
const ONE_STATEMENT_WITH: ProjectionSql = ProjectionSql {
    insert: concat!(
        "WITH inserted AS (", insert_at_version!(), " RETURNING seq), ",
        "projected AS (INSERT INTO proposals (ledger_id, ", proj_columns!(), ") ",
        "SELECT $1, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29 FROM inserted) ",
        "SELECT seq FROM inserted"
    ),
    signed: concat!(
        "WITH inserted AS (", insert_at_version!(), " RETURNING seq), ",
        "projected AS (UPDATE proposals SET signature_count = signature_count + 1, signers = CASE WHEN signers = '' THEN $17 ELSE signers || ',' || $17 END, last_seq = $18 ",
        "WHERE ledger_id = $1 AND proposal_id = $16 AND EXISTS (SELECT 1 FROM inserted) RETURNING 1) ",
        updated_row_or_refuse!()
    ),
    status: concat!(
        "WITH inserted AS (", insert_at_version!(), " RETURNING seq), ",
        "projected AS (UPDATE proposals SET status = $17, last_seq = $18 ",
        "WHERE ledger_id = $1 AND proposal_id = $16 AND EXISTS (SELECT 1 FROM inserted) RETURNING 1) ",
        updated_row_or_refuse!()
    ),
};

/// The server's clock in microseconds since the Unix epoch (`EXTRACT` gives an exact numeric:
/// no float rounding). `clock_timestamp()`, not `now()`: the time of the reading, not of the
/// transaction's start. Qualified, so that a function of that name in a schema put first on the
/// search path cannot stand in for the server's clock.
macro_rules! server_clock_micros {
    () => {
        "(EXTRACT(EPOCH FROM pg_catalog.clock_timestamp()) * 1000000)::int8"
    };
}
/// The head, its time and the server's clock, read in one statement: what a command decides on.
const HEAD_AND_CLOCK: &str = concat!(
    "SELECT head_seq, head_hash, head_recorded_at, ",
    server_clock_micros!(),
    " AS clock_micros FROM ledgers WHERE ledger_id = $1"
);
/// The server's clock alone (before a ledger exists).
const CLOCK: &str = concat!("SELECT ", server_clock_micros!());

/// Blocks concurrent creators (appends' row locks do not conflict with it for long: creation
/// happens once).
const LOCK_LEDGERS: &str = "LOCK TABLE ledgers IN SHARE ROW EXCLUSIVE MODE";
/// A row lock on the head, not an advisory lock: it lives and dies with the transaction (a
/// killed writer releases it), needs no key scheme, and FOR UPDATE under READ COMMITTED returns
/// the latest committed head after the wait. Not combined with the stream versions (as on
/// SQLite): a FOR UPDATE that waited re-reads the locked row, but a subquery keeps the
/// statement's older snapshot and could miss the events the previous lock holder committed.
const LOCK_HEAD: &str =
    "SELECT head_seq, head_hash, head_recorded_at FROM ledgers WHERE ledger_id = $1 FOR UPDATE";
/// After the lock: a new statement, so its snapshot sees every event the previous lock holder
/// committed.
const INSERT_AT_VERSION: &str = insert_at_version!();

/// What a process's PostgreSQL appends to one database share (`Turns`).
#[derive(Debug, Default)]
pub(super) struct WriterTurn {
    /// The head this process's last autocommit append committed: the next seals on it without
    /// reading it (one round trip instead of two). Its statement's snapshot starts after that
    /// commit, so its version checks see every event up to this head; if another process moved
    /// the head since, the trigger refuses it (RBH01) and that append reads the head and tries
    /// once more. The locked path does not remember the head it commits.
    remembered: Option<RememberedHead>,
    /// Autocommit appends this process has started on this database: from the second on, they
    /// run on `kept`.
    appends: u64,
    /// The connection this process's autocommit appends run on after its first. On the pool,
    /// the two round trips of an append went to whichever connection was idle, and 8 stores'
    /// appends to 8 server processes in turn ran below one writer's rate (BENCHMARKS.md).
    kept: Option<PgConnection>,
}

#[derive(Debug, Clone, Copy)]
struct RememberedHead {
    ledger_id: Uuid,
    seq: u64,
    hash: [u8; 32],
    recorded_at: DateTime<Utc>,
}

static TURNS: Turns<WriterTurn> = Turns::new();

#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    /// Whether the ledger's clock is the caller's instead of the server's (`Store::trusting_caller_clock`:
    /// tests and fixtures that build a ledger at given times).
    pub(super) caller_clock: bool,
    /// This process's queue of appends to this database.
    turn: Arc<TurnLock<WriterTurn>>,
    counts: Arc<Counters>,
}

/// One event on a stream expected at a known version (`NoStream` is version 0), with at most
/// one other stream's expectation: the shape of the CLI's appends (a proposal's stream and the
/// ledger stream of the governance it was decided under). `Any` on the event's own stream is
/// not known, and such appends take the locked path; `Any` on the other stream checks nothing.
#[derive(Clone, Copy, Debug)]
struct OneAppend<'a> {
    stream: &'a str,
    version: u64,
    /// The other stream and the version it must be at.
    other: Option<(&'a str, u64)>,
}

impl<'a> OneAppend<'a> {
    fn of(expected: &'a [(String, ExpectedVersion)], events: &[NewEvent]) -> Option<Self> {
        let [new] = events else {
            return None;
        };
        let own = |(stream, expectation): &'a (String, ExpectedVersion)| {
            (*stream == new.stream_id).then_some((stream.as_str(), *expectation))
        };
        let ((stream, expectation), other) = match expected {
            [first] => (own(first)?, None),
            [first, second] => match (own(first), own(second)) {
                (Some(mine), None) => (mine, Some(second)),
                (None, Some(mine)) => (mine, Some(first)),
                _ => return None,
            },
            _ => return None,
        };
        Some(OneAppend {
            stream,
            version: known_version(expectation)?,
            other: other.and_then(|(stream, expectation)| {
                known_version(*expectation).map(|version| (stream.as_str(), version))
            }),
        })
    }

    /// `insert_at_version!()`'s parameters: the event ($1..$12), its stream's expected version
    /// ($13), the other stream and its version ($14, $15; the event's own stream again when
    /// there is none).
    fn bind<'q>(
        self,
        sql: &'static str,
        ledger: &'q str,
        event: &'q StoredEvent,
    ) -> Query<'q, Postgres>
    where
        'a: 'q,
    {
        let (other, other_version) = self.other.unwrap_or((self.stream, self.version));
        bind_event(sql, ledger, event)
            .bind(self.version as i64)
            .bind(other)
            .bind(other_version as i64)
    }
}

impl KeptWriter for WriterTurn {
    type Connection = PgConnection;
    fn kept(&mut self) -> &mut Option<PgConnection> {
        &mut self.kept
    }
}

impl PostgresStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        use std::str::FromStr;
        let options = PgConnectOptions::from_str(url)
            .map_err(open_failed(url))?
            // Bound the wait for the head lock so a stuck writer yields an error, not a hang.
            .options([("lock_timeout", "30s")]);
        // One direct attempt first: a dead server fails now with its own error, instead of the
        // pool retrying until its acquire timeout.
        let probe = PgConnection::connect_with(&options)
            .await
            .map_err(open_failed(url))?;
        probe.close().await.ok();
        let pool = PgPoolOptions::new()
            .max_connections(POOL_CONNECTIONS)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open_failed(url))?;
        // sqlx's PostgreSQL migrator holds an advisory lock, so concurrent openers are safe.
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .map_err(|error| StoreError::Migrate {
                url: redact_url(url),
                reason: error.to_string(),
            })?;
        Ok(Self {
            pool,
            caller_clock: false,
            turn: TURNS.of(url),
            counts: Arc::default(),
        })
    }

    /// A listener of the channel every event insert notifies (migration 0008), on a
    /// connection of its own.
    pub(super) async fn listener(&self) -> Result<sqlx::postgres::PgListener, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool)
            .await
            .map_err(db_err("connecting to listen for appends"))?;
        listener
            .listen("rollbook_events")
            .await
            .map_err(db_err("listening for appends"))?;
        Ok(listener)
    }

    /// See `Store::append_before`, which runs this on a task of its own.
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
        let remembered = turn
            .remembered
            .take()
            .filter(|head| head.ledger_id == ledger_id);
        if let Some(append) = OneAppend::of(expected, &events).filter(|_| !create) {
            let appended = self
                .append_autocommit(
                    &mut turn, remembered, ledger_id, append, &events[0], now, landing,
                )
                .await?;
            if let Some(event) = appended {
                return Ok(vec![event]);
            }
        }
        self.append_locked(ledger_id, create, expected, events, now, landing)
            .await
    }

    /// The one-statement append: sealed on the head this process last committed, else (or if
    /// the trigger refused that head) on a head read now. `Ok(None)` when it did not go in for a
    /// reason the locked path must judge; that path then decides and reports under the lock.
    #[allow(clippy::too_many_arguments)]
    async fn append_autocommit(
        &self,
        turn: &mut WriterTurn,
        remembered: Option<RememberedHead>,
        ledger_id: Uuid,
        append: OneAppend<'_>,
        new: &NewEvent,
        now: DateTime<Utc>,
        landing: Landing,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let mut kept = self.kept_conn(turn).await?;
        let mut sealed_on = remembered;
        let mut attempt = self
            .insert_one(&mut kept, ledger_id, append, new, now, landing, sealed_on)
            .await;
        // A head this process committed that another process has moved since: once more on a
        // head read now, before the locked path.
        if matches!(attempt, Ok(None)) && sealed_on.is_some() {
            sealed_on = None;
            attempt = self
                .insert_one(&mut kept, ledger_id, append, new, now, landing, None)
                .await;
        }
        // The kept connection goes back unless the database failed on it (a refusal leaves an
        // autocommit connection as it was).
        if let (Some(conn), Ok(_)) = (kept, &attempt) {
            turn.kept = Some(conn);
        }
        let Some(event) = attempt? else {
            return Ok(None);
        };
        Counters::add(&self.counts.one_statement);
        if sealed_on.is_some() {
            Counters::add(&self.counts.on_remembered_head);
        }
        turn.remembered = parse_timestamp(&event.recorded_at).map(|recorded_at| RememberedHead {
            ledger_id,
            seq: event.seq,
            hash: event.hash,
            recorded_at,
        });
        Ok(Some(event))
    }

    /// The connection an autocommit append runs on: `None` for the process's first append to
    /// the database (a CLI command's only one: the store's pool, no connection of its own to
    /// open), then one connection kept with the writer turn and shared by every store of the
    /// process on that URL. A PostgreSQL append runs to its end on a task of its own
    /// (`Store::append_before`), so the kept connection is never cut mid-conversation.
    async fn kept_conn(&self, turn: &mut WriterTurn) -> Result<Option<PgConnection>, StoreError> {
        if self.pool.is_closed() {
            return Err(db_err("taking a connection for the append")(
                sqlx::Error::PoolClosed,
            ));
        }
        turn.appends += 1;
        if turn.appends == 1 {
            return Ok(None);
        }
        match turn.kept.take() {
            Some(conn) => Ok(Some(conn)),
            None => Ok(Some(
                open_kept_writer(&*self.pool.connect_options(), &self.counts).await?,
            )),
        }
    }

    /// Seals `new` on `head` (read now when `None`) and sends its insert with the projection
    /// change as one autocommit statement, on `kept` or else the pool. The schema's insert
    /// trigger takes the head's row lock and refuses the event if another writer moved the
    /// head since (migrations/postgres/0003), so the chain stays gapless and ordered.
    ///
    /// `Ok(None)` when the event did not go in for a reason the locked path must judge (the
    /// head moved, a stream is not at its expected version, the deadline, a projection change
    /// this statement does not fold): nothing was written.
    #[allow(clippy::too_many_arguments)]
    async fn insert_one(
        &self,
        kept: &mut Option<PgConnection>,
        ledger_id: Uuid,
        append: OneAppend<'_>,
        new: &NewEvent,
        now: DateTime<Utc>,
        landing: Landing,
        head: Option<RememberedHead>,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let ledger = ledger_id.to_string();
        let head = match head {
            Some(head) => head,
            None => {
                let read = sqlx::query(READ_HEAD).bind(&ledger);
                let row = self
                    .fetch_optional(kept, read)
                    .await
                    .map_err(db_err("reading the ledger head"))?;
                // A missing or unreadable head: the locked path reports it.
                match row.as_ref().and_then(|row| unlocked_head(ledger_id, row)) {
                    Some(head) => head,
                    None => return Ok(None),
                }
            }
        };
        let recorded_at = now.max(head.recorded_at);
        if landing.refuses(head.seq, &head.hash, recorded_at) {
            return Ok(None);
        }
        let event = seal_checked(
            ledger_id,
            head.seq,
            append.version + 1,
            recorded_at,
            head.hash,
            new.clone(),
        )?;
        let Some(op) = folded_projection(&event) else {
            return Ok(None);
        };
        let insert = match op {
            None => append.bind(ONE_STATEMENT_PLAIN, &ledger, &event),
            Some(op) => bind_projection(
                append.bind(ONE_STATEMENT_WITH.of(&op).0, &ledger, &event),
                op,
            ),
        };
        match self.fetch_optional(kept, insert).await {
            Ok(Some(_)) => Ok(Some(event)),
            Ok(None) => Ok(None),
            Err(error) if refused_here(&error) => Ok(None),
            Err(error) => Err(db_err("inserting an event")(error)),
        }
    }

    async fn fetch_optional(
        &self,
        kept: &mut Option<PgConnection>,
        query: Query<'_, Postgres>,
    ) -> Result<Option<PgRow>, sqlx::Error> {
        match kept.as_mut() {
            Some(conn) => query.fetch_optional(conn).await,
            None => query.fetch_optional(&self.pool).await,
        }
    }

    /// The locked append: `SELECT ... FOR UPDATE` on the head row, then the inserts (each moves
    /// the head through the schema's trigger) and their projection changes, in one transaction.
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
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db_err("starting a transaction"))?;
        if create {
            create_ledger(self.queries(), &mut tx, ledger_id, now).await?;
        }
        let head = sqlx::query(LOCK_HEAD)
            .bind(&ledger)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err("locking the ledger head"))?
            .ok_or(StoreError::NoSuchLedger(ledger_id))?;
        let next = next_on_head(&head, now, landing)?;

        // The CLI's shape: the version checks ride in the insert, no separate reads.
        if let Some(append) = OneAppend::of(expected, &events) {
            let (seq, prev_hash, recorded_at) = next;
            let new = events.into_iter().next().expect("one event");
            let event = seal_checked(
                ledger_id,
                seq,
                append.version + 1,
                recorded_at,
                prev_hash,
                new,
            )?;
            let inserted = append
                .bind(INSERT_AT_VERSION, &ledger, &event)
                .execute(&mut *tx)
                .await
                .map_err(db_err("inserting an event"))?;
            if inserted.rows_affected() != 1 {
                // A stream is not at its expected version: report which, and its actual version
                // (the transaction rolls back, nothing was written).
                for (stream_id, expectation) in expected {
                    let actual = self
                        .queries()
                        .stream_version(&mut tx, &ledger, stream_id)
                        .await?;
                    check_expected(stream_id, *expectation, actual)?;
                }
                return Err(StoreError::InvalidAppend(
                    "the insert refused an append whose streams are at their expected versions"
                        .into(),
                ));
            }
            self.queries()
                .apply_projection(&mut tx, &ledger, &event)
                .await?;
            tx.commit().await.map_err(db_err("committing the append"))?;
            return Ok(vec![event]);
        }

        let mut versions: HashMap<String, u64> = HashMap::new();
        for (stream_id, expectation) in expected {
            let actual = self
                .queries()
                .stream_version(&mut tx, &ledger, stream_id)
                .await?;
            check_expected(stream_id, *expectation, actual)?;
            versions.insert(stream_id.clone(), actual);
        }
        self.queries()
            .insert_events(tx, ledger_id, next, versions, events)
            .await
    }

    /// The server's clock (`clock_timestamp()`), or `local` when this store trusts the caller's.
    pub(super) async fn clock(&self, local: DateTime<Utc>) -> Result<DateTime<Utc>, StoreError> {
        if self.caller_clock {
            return Ok(local);
        }
        let micros: i64 = sqlx::query_scalar(CLOCK)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err("reading the server's clock"))?;
        micros_to_time(micros)
    }

    /// The head and the ledger's clock read in one statement (the server's, unless this store
    /// trusts the caller's): no round trip besides the head's read.
    pub(super) async fn chain_now(
        &self,
        ledger_id: Uuid,
        local: DateTime<Utc>,
    ) -> Result<Option<ChainNow>, StoreError> {
        let Some(row) = sqlx::query(HEAD_AND_CLOCK)
            .bind(ledger_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("reading the ledger head and the server's clock"))?
        else {
            return Ok(None);
        };
        let (seq, hash, head_time) = head_with_time_of(&row)?;
        let clock = if self.caller_clock {
            local
        } else {
            micros_to_time(
                row.int64("clock_micros")
                    .map_err(db_err("reading the server's clock"))?,
            )?
        };
        Ok(Some(ChainNow {
            head: ChainHead { seq, hash },
            head_time,
            clock,
        }))
    }

    /// The statements both backends run alike, on this store's pool.
    pub(super) fn queries(&self) -> Queries<'_, Postgres> {
        Queries { pool: &self.pool }
    }

    pub async fn rebuild_projections(&self, ledger_id: Uuid) -> Result<u64, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db_err("starting a transaction"))?;
        // Hold the head like a writer does, so no append interleaves with the replay.
        sqlx::query(LOCK_HEAD)
            .bind(ledger_id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err("locking the ledger head"))?;
        self.queries().rebuild_projections(tx, ledger_id).await
    }

    pub async fn close(&self) {
        self.queries().close(&self.turn).await
    }

    pub(super) async fn holds_kept_writer(&self) -> bool {
        holds_kept_writer(&self.turn).await
    }

    /// The seq of the head this process's last append committed and its next will seal on
    /// without reading it, if any (for tests).
    pub(super) async fn remembered_head(&self) -> Option<u64> {
        self.turn.lock().await.remembered.map(|head| head.seq)
    }

    pub(super) fn append_counts(&self) -> AppendCounts {
        self.counts.snapshot()
    }
}

/// A server clock reading in microseconds as a time (refused if out of chrono's range).
fn micros_to_time(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| StoreError::CorruptRow {
        seq: 0,
        reason: format!("the server's clock reads {micros} microseconds since 1970"),
    })
}

/// The head as read without a lock, if it decodes (the locked path reports one that does not).
fn unlocked_head(ledger_id: Uuid, row: &PgRow) -> Option<RememberedHead> {
    Some(RememberedHead {
        ledger_id,
        seq: u64::try_from(row.int64("head_seq").ok()?).ok()?,
        hash: row.bytes("head_hash").ok()?.try_into().ok()?,
        recorded_at: parse_timestamp(&row.text("head_recorded_at").ok()?)?,
    })
}

/// The projection change the one statement can carry: `Some(None)` for none, `Some(change)` for
/// one that changes the row of the event's own stream (that stream's version check, or its
/// unique index, then also guards the row), `None` for anything else (the locked path).
fn folded_projection(event: &StoredEvent) -> Option<Option<ProjectionOp>> {
    let mut ops = projection_ops(event).ok()?;
    let own_row = |op: &ProjectionOp| match op {
        ProjectionOp::Insert(row) => row.proposal_id == event.stream_id,
        ProjectionOp::Signed { proposal_id, .. } | ProjectionOp::Status { proposal_id, .. } => {
            *proposal_id == event.stream_id
        }
    };
    if ops.len() > 1 || !ops.iter().all(own_row) {
        return None;
    }
    Some(ops.pop())
}

/// Why the one statement did not go in when that is no error: the locked path then decides,
/// and reports, from the state under the lock.
fn refused_here(error: &sqlx::Error) -> bool {
    // RBH01: the trigger saw another head; 23505: the event's stream version exists already
    // (a stale expectation); 40001/40P01: serialization failure or deadlock, retried locked.
    // RBP01: the projection row was not in the statement's snapshot (the locked path redoes it).
    error
        .as_database_error()
        .and_then(|error| error.code())
        .is_some_and(|code| {
            matches!(
                code.as_ref(),
                "RBH01" | "RBP01" | "23505" | "40001" | "40P01"
            )
        })
}

/// One ledger per database: creation is exclusive (the table lock), so two concurrent `init`s
/// cannot both succeed.
async fn create_ledger(
    queries: Queries<'_, Postgres>,
    tx: &mut sqlx::Transaction<'static, Postgres>,
    ledger_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(LOCK_LEDGERS)
        .execute(&mut **tx)
        .await
        .map_err(db_err("locking the ledgers table"))?;
    queries.create_ledger(tx, ledger_id, now).await
}
