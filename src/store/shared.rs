//! What the two backends share: the checks of an append's shape, the seal check on both sides
//! of the database (before a write, after a read), the decoding of rows and the binding of an
//! event's and a projection change's parameters, and the per-process writer turn.
//!
//! Everything here is generic over sqlx's `Database` and runs no SQL: the statements both
//! backends run alike are in `queries.rs`, the appends' own in `sqlite.rs` and `postgres.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Database, Decode, Encode, Row, Type};
use uuid::Uuid;

use super::{AppendCounts, ExpectedVersion, Landing, StoreError};
use crate::domain::envelope::{
    format_timestamp, parse_timestamp, NewEvent, StoredEvent, EVENTS_PER_APPEND_MAX,
    IDENT_BYTES_MAX, PAYLOAD_BYTES_MAX,
};
use crate::domain::events::Event;
use crate::domain::projection::{ops_for, ProjectionOp, ProposalRow};

/// The columns of an event row, in the order every insert binds them ($1..$12 / ?1..?12).
macro_rules! event_columns {
    () => {
        "ledger_id, seq, stream_id, stream_version, event_id, event_type, schema_version, recorded_at, actor, payload, prev_hash, hash"
    };
}

/// The columns of a projection row after `ledger_id`, in `bind_projection` order.
macro_rules! proj_columns {
    () => {
        "proposal_id, kind, status, verdict, proposer, contracts_requested, created_at, expires_at, signer_set_version, policy_version, signature_count, signers, first_seq, last_seq"
    };
}

/// Checks an append's shape before any SQL runs: limits first, so bad input never reaches the
/// database.
pub(super) fn validate_append(
    expected: &[(String, ExpectedVersion)],
    events: &[NewEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Err(StoreError::InvalidAppend(
            "an append needs at least one event".into(),
        ));
    }
    if events.len() > EVENTS_PER_APPEND_MAX {
        return Err(StoreError::InvalidAppend(format!(
            "{} events in one append; the limit is {EVENTS_PER_APPEND_MAX}",
            events.len()
        )));
    }
    for event in events {
        if event.payload.len() > PAYLOAD_BYTES_MAX {
            return Err(StoreError::InvalidAppend(format!(
                "{} payload is {} bytes; the limit is {PAYLOAD_BYTES_MAX}",
                event.event_type,
                event.payload.len()
            )));
        }
        for (what, value) in [
            ("stream id", &event.stream_id),
            ("event type", &event.event_type),
        ] {
            if value.is_empty() || value.len() > IDENT_BYTES_MAX {
                return Err(StoreError::InvalidAppend(format!(
                    "{what} must be 1 to {IDENT_BYTES_MAX} bytes"
                )));
            }
        }
        if event
            .actor
            .as_ref()
            .is_some_and(|actor| actor.len() > IDENT_BYTES_MAX)
        {
            return Err(StoreError::InvalidAppend(format!(
                "actor longer than {IDENT_BYTES_MAX} bytes"
            )));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (stream, _) in expected {
        if !seen.insert(stream) {
            return Err(StoreError::InvalidAppend(format!(
                "stream {stream} has two expected versions"
            )));
        }
    }
    Ok(())
}

/// The seal check, paired on both sides of the database (TigerBeetle's paired assertions): an
/// event is checked before it is written and every row again as it is read back, so a row
/// altered in the database (or a sealing bug) is a typed error, never a wrong answer.
pub(super) fn check_seal(event: &StoredEvent) -> Result<(), StoreError> {
    let computed = event.computed_hash();
    if computed == event.hash {
        Ok(())
    } else {
        Err(StoreError::HashMismatch {
            seq: event.seq,
            stored: event.hash,
            computed,
        })
    }
}

/// Seals `new` on the head (`head_seq`, `prev_hash`) and checks the seal before it is written.
pub(super) fn seal_checked(
    ledger_id: Uuid,
    head_seq: u64,
    stream_version: u64,
    recorded_at: DateTime<Utc>,
    prev_hash: [u8; 32],
    new: NewEvent,
) -> Result<StoredEvent, StoreError> {
    // The id carries the event's own time (a verifier checks it: docs/audit-format.md).
    let event = StoredEvent::seal(
        ledger_id,
        head_seq + 1,
        stream_version,
        crate::domain::envelope::uuid_v7_at(recorded_at),
        recorded_at,
        prev_hash,
        new,
    );
    check_seal(&event)?;
    Ok(event)
}

/// The projection changes `event` causes, from its payload.
pub(super) fn projection_ops(event: &StoredEvent) -> Result<Vec<ProjectionOp>, StoreError> {
    match Event::from_payload(&event.event_type, event.schema_version, &event.payload) {
        Ok(payload) => Ok(ops_for(event, &payload)),
        // Unknown types project nothing; the full verifier reports them.
        Err(crate::domain::events::PayloadError::UnknownType(_)) => Ok(Vec::new()),
        Err(error) => Err(StoreError::CorruptRow {
            seq: event.seq as i64,
            reason: error.to_string(),
        }),
    }
}

/// The version an expectation names, if it names one (`NoStream` is version 0).
pub(super) fn known_version(expectation: ExpectedVersion) -> Option<u64> {
    match expectation {
        ExpectedVersion::Exact(version) => Some(version),
        ExpectedVersion::NoStream => Some(0),
        ExpectedVersion::Any => None,
    }
}

/// A `Conflict` unless `actual` is what `expected` asks for.
pub(super) fn check_expected(
    stream_id: &str,
    expected: ExpectedVersion,
    actual: u64,
) -> Result<(), StoreError> {
    if known_version(expected).is_none_or(|version| version == actual) {
        return Ok(());
    }
    Err(StoreError::Conflict {
        stream_id: stream_id.to_string(),
        expected: match expected {
            ExpectedVersion::Any => "any version".into(),
            ExpectedVersion::NoStream => "no stream yet".into(),
            ExpectedVersion::Exact(version) => format!("version {version}"),
        },
        actual,
    })
}

/// The head read under the write lock: its seq, its hash, and the time the next event records
/// (`now`, or the head's time if that is later: clock skew between machines must not make time
/// run backwards on the chain), refused after the landing's deadline or off its head.
pub(super) fn next_on_head<R: ReadRow>(
    head: &R,
    now: DateTime<Utc>,
    landing: Landing,
) -> Result<(u64, [u8; 32], DateTime<Utc>), StoreError> {
    let read = |source| StoreError::Database {
        doing: "reading the ledger head",
        source,
    };
    let head_seq = head.int64("head_seq").map_err(read)?;
    let prev_hash = hash32(
        head_seq,
        "head_hash",
        head.bytes("head_hash").map_err(read)?,
    )?;
    let head_time = head.text("head_recorded_at").map_err(read)?;
    let floor = parse_timestamp(&head_time).ok_or_else(|| StoreError::CorruptRow {
        seq: head_seq,
        reason: format!("head_recorded_at {head_time:?} is not canonical"),
    })?;
    let recorded_at = now.max(floor);
    let head_seq = head_seq.max(0) as u64;
    if let Some(expected) = landing
        .after_head
        .filter(|expected| expected.seq != head_seq || expected.hash != prev_hash)
    {
        return Err(StoreError::HeadMoved {
            expected: expected.seq,
            actual: head_seq,
        });
    }
    if let Some(deadline) = landing.deadline.filter(|deadline| recorded_at > *deadline) {
        return Err(StoreError::DeadlinePassed {
            deadline: format_timestamp(deadline),
            recorded_at: format_timestamp(recorded_at),
        });
    }
    Ok((head_seq, prev_hash, recorded_at))
}

pub(super) fn hash32(seq: i64, what: &str, bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|bytes: Vec<u8>| StoreError::CorruptRow {
            seq,
            reason: format!("{what} has {} bytes, not 32", bytes.len()),
        })
}

/// The column types rollbook reads, by name, on either backend.
pub(super) trait ReadRow {
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn optional_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn int64(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn optional_int64(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn int32(&self, column: &str) -> Result<i32, sqlx::Error>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error>;
}

impl<R> ReadRow for R
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i32: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        self.try_get(column)
    }
    fn optional_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(column)
    }
    fn int64(&self, column: &str) -> Result<i64, sqlx::Error> {
        self.try_get(column)
    }
    fn optional_int64(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(column)
    }
    fn int32(&self, column: &str) -> Result<i32, sqlx::Error> {
        self.try_get(column)
    }
    fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error> {
        self.try_get(column)
    }
}

/// Decodes an event row and checks its seal (the read-back half of `check_seal`): a row that
/// does not decode is `CorruptRow`, one whose hash does not match its contents `HashMismatch`.
pub(super) fn row_to_event(row: &impl ReadRow) -> Result<StoredEvent, StoreError> {
    let seq = row
        .int64("seq")
        .map_err(super::db_err("reading an event row"))?;
    let corrupt = |column: &str, error: &dyn std::fmt::Display| StoreError::CorruptRow {
        seq,
        reason: format!("{column}: {error}"),
    };
    let text = |column: &str| row.text(column).map_err(|error| corrupt(column, &error));
    let uuid =
        |column: &str| Uuid::parse_str(&text(column)?).map_err(|error| corrupt(column, &error));
    let int64 = |column: &str| row.int64(column).map_err(|error| corrupt(column, &error));
    let bytes = |column: &str| row.bytes(column).map_err(|error| corrupt(column, &error));
    let stream_version = int64("stream_version")?;
    let schema_version = row
        .int32("schema_version")
        .map_err(|error| corrupt("schema_version", &error))?;
    if seq < 1 || stream_version < 1 || schema_version < 0 {
        return Err(StoreError::CorruptRow {
            seq,
            reason: "seq, stream_version or schema_version out of range".into(),
        });
    }
    let event = StoredEvent {
        ledger_id: uuid("ledger_id")?,
        seq: seq as u64,
        stream_id: text("stream_id")?,
        stream_version: stream_version as u64,
        event_id: uuid("event_id")?,
        event_type: text("event_type")?,
        schema_version: schema_version as u32,
        recorded_at: text("recorded_at")?,
        actor: row
            .optional_text("actor")
            .map_err(|error| corrupt("actor", &error))?,
        payload: bytes("payload")?,
        prev_hash: hash32(seq, "prev_hash", bytes("prev_hash")?)?,
        hash: hash32(seq, "hash", bytes("hash")?)?,
    };
    check_seal(&event)?;
    Ok(event)
}

/// Decodes rows in order up to the first that fails: the events before it, and its error.
/// A walk can then hand its caller every good event before the bad one, so a verifier still
/// names the first broken seq, whatever broke it.
pub(super) fn rows_to_events<R: ReadRow>(rows: &[R]) -> (Vec<StoredEvent>, Option<StoreError>) {
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        match row_to_event(row) {
            Ok(event) => events.push(event),
            Err(error) => return (events, Some(error)),
        }
    }
    (events, None)
}

pub(super) fn row_to_proposal(row: &impl ReadRow) -> Result<ProposalRow, StoreError> {
    let read = |error: sqlx::Error| StoreError::Database {
        doing: "reading a proposal row",
        source: error,
    };
    Ok(ProposalRow {
        proposal_id: row.text("proposal_id").map_err(read)?,
        kind: row.text("kind").map_err(read)?,
        status: row.text("status").map_err(read)?,
        verdict: row.optional_text("verdict").map_err(read)?,
        proposer: row.text("proposer").map_err(read)?,
        contracts_requested: row.optional_int64("contracts_requested").map_err(read)?,
        created_at: row.text("created_at").map_err(read)?,
        expires_at: row.text("expires_at").map_err(read)?,
        signer_set_version: row.int64("signer_set_version").map_err(read)?,
        policy_version: row.int64("policy_version").map_err(read)?,
        signature_count: row.int64("signature_count").map_err(read)?,
        signers: row.text("signers").map_err(read)?,
        first_seq: row.int64("first_seq").map_err(read)?,
        last_seq: row.int64("last_seq").map_err(read)?,
    })
}

pub(super) type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments>;

/// `sql` with an event's columns bound first, in `event_columns!()` order.
pub(super) fn bind_event<'q, DB: Database>(
    sql: &'static str,
    ledger: &'q str,
    event: &'q StoredEvent,
) -> Query<'q, DB>
where
    &'q str: Encode<'q, DB> + Type<DB>,
    &'q [u8]: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    i32: Encode<'q, DB> + Type<DB>,
{
    sqlx::query::<DB>(sql)
        .bind(ledger)
        .bind(event.seq as i64)
        .bind(event.stream_id.as_str())
        .bind(event.stream_version as i64)
        .bind(event.event_id.to_string())
        .bind(event.event_type.as_str())
        .bind(event.schema_version as i32)
        .bind(event.recorded_at.as_str())
        .bind(event.actor.as_deref())
        .bind(&event.payload[..])
        .bind(&event.prev_hash[..])
        .bind(&event.hash[..])
}

/// A projection change's parameters, in the order every statement of that change takes them
/// after the parameters already bound (the ledger id, or an event's columns).
pub(super) fn bind_projection<'q, DB: Database>(
    query: Query<'q, DB>,
    op: ProjectionOp,
) -> Query<'q, DB>
where
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<String>: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
{
    match op {
        ProjectionOp::Insert(row) => query
            .bind(row.proposal_id)
            .bind(row.kind)
            .bind(row.status)
            .bind(row.verdict)
            .bind(row.proposer)
            .bind(row.contracts_requested)
            .bind(row.created_at)
            .bind(row.expires_at)
            .bind(row.signer_set_version)
            .bind(row.policy_version)
            .bind(row.signature_count)
            .bind(row.signers)
            .bind(row.first_seq)
            .bind(row.last_seq),
        ProjectionOp::Signed {
            proposal_id,
            key_id,
            seq,
        } => query.bind(proposal_id).bind(key_id).bind(seq),
        ProjectionOp::Status {
            proposal_id,
            status,
            seq,
        } => query.bind(proposal_id).bind(status).bind(seq),
    }
}

/// The SQL of each kind of projection change, and what it is doing (for errors).
pub(super) struct ProjectionSql {
    pub insert: &'static str,
    pub signed: &'static str,
    pub status: &'static str,
}

impl ProjectionSql {
    pub fn of(&self, op: &ProjectionOp) -> (&'static str, &'static str) {
        match op {
            ProjectionOp::Insert(_) => (self.insert, "inserting a proposal row"),
            ProjectionOp::Signed { .. } => (self.signed, "updating a proposal row"),
            ProjectionOp::Status { .. } => (self.status, "updating a proposal row"),
        }
    }
}

/// This process's turn to append to one database, keyed by its URL as given, with what the
/// holder hands to the next (`T`: the backend's `WriterTurn`).
///
/// Every append takes it before it reaches the database, so the writers of one process wait
/// here, in arrival order (tokio's mutex is fair), instead of racing for the database's own
/// lock: on PostgreSQL a lost race costs a refused statement and a second, locked attempt, and
/// on SQLite a polling busy handler. Writers in different processes still meet at the
/// database, which alone orders the chain; this queue only saves them the contention.
/// Entries are weak, so the map holds only databases some store still has open.
pub(super) struct Turns<T>(OnceLock<std::sync::Mutex<HashMap<String, Weak<TurnLock<T>>>>>);

pub(super) type TurnLock<T> = tokio::sync::Mutex<T>;

impl<T: Default> Turns<T> {
    pub const fn new() -> Self {
        Self(OnceLock::new())
    }

    pub fn of(&self, url: &str) -> Arc<TurnLock<T>> {
        let mut turns = self
            .0
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(turn) = turns.get(url).and_then(Weak::upgrade) {
            return turn;
        }
        turns.retain(|_, turn| turn.strong_count() > 0);
        let turn = Arc::new(TurnLock::new(T::default()));
        turns.insert(url.to_string(), Arc::downgrade(&turn));
        turn
    }
}

/// Waits for this process's turn, up to the lock timeout.
pub(super) async fn take_turn<T>(
    turn: &TurnLock<T>,
) -> Result<tokio::sync::MutexGuard<'_, T>, StoreError> {
    tokio::time::timeout(super::LOCK_TIMEOUT, turn.lock())
        .await
        .map_err(|_| StoreError::WriterTurnTimeout {
            seconds: super::LOCK_TIMEOUT.as_secs(),
        })
}

/// Opens the connection a process's appends to one database keep after its first append, with
/// its store's options.
pub(super) async fn open_kept_writer<O: sqlx::ConnectOptions<Connection: Sized>>(
    options: &O,
    counts: &Counters,
) -> Result<O::Connection, StoreError> {
    let conn = options.connect().await.map_err(super::db_err(
        "opening the connection this process's appends share",
    ))?;
    Counters::add(&counts.kept_writer_opened);
    Ok(conn)
}

/// What one store's appends did (relaxed counters behind `AppendCounts`): observations for
/// tests and diagnostics, per store so that tests running in parallel never see each other's.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub one_statement: AtomicU64,
    pub on_remembered_head: AtomicU64,
    pub kept_writer_opened: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> AppendCounts {
        AppendCounts {
            one_statement: self.one_statement.load(Ordering::Relaxed),
            on_remembered_head: self.on_remembered_head.load(Ordering::Relaxed),
            kept_writer_opened: self.kept_writer_opened.load(Ordering::Relaxed),
        }
    }
}

/// The head row's seq and hash.
pub(super) fn head_of(row: &impl ReadRow) -> Result<(u64, [u8; 32]), StoreError> {
    let read = |source| StoreError::Database {
        doing: "reading the ledger head",
        source,
    };
    let seq = row.int64("head_seq").map_err(read)?;
    let hash = hash32(seq, "head_hash", row.bytes("head_hash").map_err(read)?)?;
    Ok((seq.max(0) as u64, hash))
}

/// The head row's seq, hash and time (`head_recorded_at`).
pub(super) fn head_with_time_of(
    row: &impl ReadRow,
) -> Result<(u64, [u8; 32], DateTime<Utc>), StoreError> {
    let (seq, hash) = head_of(row)?;
    let text = row
        .text("head_recorded_at")
        .map_err(super::db_err("reading the ledger head"))?;
    let time = parse_timestamp(&text).ok_or_else(|| StoreError::CorruptRow {
        seq: seq as i64,
        reason: format!("head_recorded_at {text:?} is not canonical"),
    })?;
    Ok((seq, hash, time))
}

pub(super) fn parse_ledger_ids(ids: &[String]) -> Result<Vec<Uuid>, StoreError> {
    ids.iter()
        .map(|id| {
            Uuid::parse_str(id).map_err(|error| StoreError::CorruptRow {
                seq: 0,
                reason: format!("ledger id {id:?}: {error}"),
            })
        })
        .collect()
}
