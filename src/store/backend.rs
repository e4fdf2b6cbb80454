//! One implementation of the event store, instantiated for SQLite and for PostgreSQL.
//!
//! Both backends store the same column types (i64, TEXT, BLOB/BYTEA), so the Rust code is
//! identical; the macro below takes the SQL text and the transaction-opening step per backend.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ExpectedVersion, StoreError};
use crate::domain::envelope::{
    format_timestamp, parse_timestamp, NewEvent, StoredEvent, EVENTS_PER_APPEND_MAX,
    IDENT_BYTES_MAX, PAYLOAD_BYTES_MAX,
};
use crate::domain::events::Event;
use crate::domain::projection::{ops_for, ProjectionOp};

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

/// The projection changes `event` causes, from its payload.
fn projection_ops(event: &StoredEvent) -> Result<Vec<ProjectionOp>, StoreError> {
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

/// One event on a stream expected at a known version (`NoStream` is version 0), with at most
/// one other stream's expectation: the shape of the CLI's appends (a proposal's stream and the
/// ledger stream of the governance it was decided under). `Any` on the event's own stream is not
/// known, and such appends go the general way; `Any` on the other stream checks nothing.
#[derive(Clone, Copy, Debug)]
struct OneAppend<'a> {
    stream: &'a str,
    expectation: ExpectedVersion,
    version: u64,
    /// The other stream, its expectation, and the version that is.
    other: Option<(&'a str, ExpectedVersion, u64)>,
}

fn known(expectation: ExpectedVersion) -> Option<u64> {
    match expectation {
        ExpectedVersion::Exact(version) => Some(version),
        ExpectedVersion::NoStream => Some(0),
        ExpectedVersion::Any => None,
    }
}

fn one_append<'a>(
    expected: &'a [(String, ExpectedVersion)],
    events: &[NewEvent],
) -> Option<OneAppend<'a>> {
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
        expectation,
        version: known(expectation)?,
        other: other.and_then(|(stream, expectation)| {
            known(*expectation).map(|version| (stream.as_str(), *expectation, version))
        }),
    })
}

/// The other stream a `TwoTrips` append checks (`Some(None)` when there is none), if the append
/// has its shape: one event, and expectations on at most its own stream and one other (the head
/// read carries two stream versions).
fn two_trip_other<'a>(
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

/// Why the one-statement append did not go in when that is no error: the locked path then
/// decides, and reports, from the state under the lock.
fn refused_here(error: &sqlx::Error) -> bool {
    // RBH01: the trigger saw another head; 23505: the event's stream version exists already
    // (a stale expectation); 40001/40P01: serialization failure or deadlock, retried locked.
    // RBV01: the other stream is not at its expected version (the locked path reports it).
    // RBP01: the projection row was not in the statement's snapshot (the locked path redoes it).
    error
        .as_database_error()
        .and_then(|error| error.code())
        .is_some_and(|code| {
            matches!(
                code.as_ref(),
                "RBH01" | "RBV01" | "RBP01" | "23505" | "40001" | "40P01"
            )
        })
}

fn expected_text(expected: ExpectedVersion) -> String {
    match expected {
        ExpectedVersion::Any => "any version".into(),
        ExpectedVersion::NoStream => "no stream yet".into(),
        ExpectedVersion::Exact(version) => format!("version {version}"),
    }
}

fn check_expected(
    stream_id: &str,
    expected: ExpectedVersion,
    actual: u64,
) -> Result<(), StoreError> {
    let ok = match expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream => actual == 0,
        ExpectedVersion::Exact(version) => actual == version,
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            stream_id: stream_id.to_string(),
            expected: expected_text(expected),
            actual,
        })
    }
}

fn hash32(seq: i64, what: &str, bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|bytes: Vec<u8>| StoreError::CorruptRow {
            seq,
            reason: format!("{what} has {} bytes, not 32", bytes.len()),
        })
}

/// SQL text of one backend.
pub(super) struct Sql {
    pub lock_ledgers: &'static str,
    pub count_ledgers: &'static str,
    pub insert_ledger: &'static str,
    pub lock_head: &'static str,
    /// `lock_head` plus the versions of two streams (`stream_version`, `stream_version_2`; bound
    /// to the first one twice when there is one), in one round trip, where that is safe: see the
    /// PostgreSQL instance for why it is not there.
    pub lock_head_with_stream: Option<&'static str>,
    /// Insert one event only if its stream is at the expected version ($13), where the backend
    /// checks that in the insert (PostgreSQL); the schema's trigger moves the head.
    pub insert_one_at_version: Option<&'static str>,
    /// The common append as one autocommit statement after an unlocked head read, where the
    /// backend can (PostgreSQL's writable CTEs): see `OneStatement`.
    pub one_statement: Option<OneStatement>,
    /// The locked append in two commands to the connection, where the backend runs several
    /// statements in one (SQLite): see `TwoTrips`.
    pub two_trips: Option<TwoTrips>,
    pub stream_version: &'static str,
    pub insert_event: &'static str,
    pub select_page: &'static str,
    pub select_stream: &'static str,
    pub ledger_ids: &'static str,
    pub head: &'static str,
    pub proj_insert: &'static str,
    pub proj_signed: &'static str,
    pub proj_status: &'static str,
    pub proj_delete: &'static str,
    pub proj_all: &'static str,
    pub proj_by_status: &'static str,
    pub proj_one: &'static str,
}

/// One event, its stream-version checks and its projection change in one statement, one variant
/// per kind of projection change. Each inserts the event ($1..$12, `event_columns!()` order)
/// only if its stream is at version $13 and stream $14 at version $15, and returns its seq if
/// it did; the schema's trigger moves the head, or refuses the event if the head moved since it
/// was read. The projection change runs only if the event went in. Parameters from $16: see
/// `bind_op`.
pub(super) struct OneStatement {
    /// The head, unlocked: the trigger re-checks it under the row lock.
    pub read_head: &'static str,
    /// Asks the insert trigger to check, for the rest of the transaction, that stream $1 is at
    /// version $2 under the head lock (migrations/postgres/0002).
    pub expect_other: &'static str,
    pub plain: &'static str,
    pub proposal_insert: &'static str,
    pub signed: &'static str,
    pub status: &'static str,
}

/// SQLite's locked append of one event in two commands instead of four. sqlx runs each SQLite
/// command on the connection's own thread, and a command's round trip to that thread (two
/// thread wake-ups) costs more CPU than the statements themselves (BENCHMARKS.md, append), so
/// the statements of each side of the seal travel together: `BEGIN IMMEDIATE` with the head
/// read, and the insert with its projection change and `COMMIT`. The write lock is held from
/// the first command to the `COMMIT`, exactly as in the four-command path; these commands run
/// on a connection held by `OpenWrite`, which rolls back (or, failing that, closes the
/// connection) when the append stops before its commit.
///
/// Each string holds several statements, so it must run with `fetch_all` or `execute`, which
/// step every statement until one fails: `fetch_one` and `fetch_optional` stop sqlx's worker
/// after the first row, and the statements after it (the `COMMIT`) would silently not run.
pub(super) struct TwoTrips {
    /// `BEGIN IMMEDIATE`, then the head and the versions of the event's stream (?2) and the
    /// other expected stream (?3; the event's own stream again when there is none).
    pub begin_and_read: &'static str,
    /// The event's insert (?1..?12, `event_columns!()` order), then `COMMIT`.
    pub plain: &'static str,
    /// The insert, the projection change with its parameters from ?13 in `bind_op_params`
    /// order (the ledger id shared as ?1), then `COMMIT`; one per kind of change.
    pub proposal_insert: &'static str,
    pub signed: &'static str,
    pub status: &'static str,
}

macro_rules! event_columns {
    () => {
        "ledger_id, seq, stream_id, stream_version, event_id, event_type, schema_version, recorded_at, actor, payload, prev_hash, hash"
    };
}
/// PostgreSQL: insert the event ($1..$12) only if its stream is at version $13 and stream $14 is
/// at version $15 (the event's own stream again when there is no other).
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
/// PostgreSQL: the end of a one-statement append whose projection change updates a row. An
/// UPDATE that finds no row version in the statement's snapshot (a `rebuild` replaced the rows
/// while this statement waited for the head lock) changes nothing, silently: the statement then
/// fails instead (SQLSTATE RBP01, migrations/postgres/0002), so the event is not recorded without
/// its projection change, and the locked path, whose statements start after the lock, does both.
macro_rules! updated_row_or_refuse {
    () => {
        "SELECT seq, CASE WHEN EXISTS (SELECT 1 FROM projected) THEN 0 ELSE rollbook_projection_missed() END FROM inserted"
    };
}
macro_rules! sqlite_insert_event {
    () => {
        concat!(
            "INSERT INTO events (",
            event_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        )
    };
}
macro_rules! proj_columns {
    () => {
        "proposal_id, kind, status, verdict, proposer, contracts_requested, created_at, expires_at, signer_set_version, policy_version, signature_count, signers, first_seq, last_seq"
    };
}

macro_rules! backend {
    ($module:ident, $Store:ident, $Db:ty, $Pool:ty, $Row:ty, $SQL:expr) => {
        pub mod $module {
            use super::*;
            use crate::domain::projection::ProposalRow;
            use crate::store::db_err;
            use sqlx::Row;

            pub(crate) const SQL: Sql = $SQL;

            #[derive(Clone, Debug)]
            pub struct $Store {
                pub(crate) pool: $Pool,
                /// This process's queue of appends to this database (`store::writer_turn`).
                pub(super) writers: std::sync::Arc<tokio::sync::Mutex<crate::store::WriterTurn>>,
                /// Connections this store's pool may hold for writers waiting their turn (the early
                /// path): at most one fewer than the pool, so the writer whose turn it is always
                /// gets one. None on either backend since 2026-12-03 (`PostgresStore::open`).
                pub(super) early: std::sync::Arc<tokio::sync::Semaphore>,
            }

            fn row_to_event(row: &$Row) -> Result<StoredEvent, StoreError> {
                let seq: i64 = row.try_get("seq").map_err(db_err("reading an event row"))?;
                let corrupt = |reason: String| StoreError::CorruptRow { seq, reason };
                let text = |column: &str| -> Result<String, StoreError> {
                    row.try_get::<String, _>(column)
                        .map_err(|error| corrupt(format!("{column}: {error}")))
                };
                let ledger_id = Uuid::parse_str(&text("ledger_id")?)
                    .map_err(|e| corrupt(format!("ledger_id: {e}")))?;
                let event_id = Uuid::parse_str(&text("event_id")?)
                    .map_err(|e| corrupt(format!("event_id: {e}")))?;
                let stream_version: i64 = row
                    .try_get("stream_version")
                    .map_err(|e| corrupt(format!("stream_version: {e}")))?;
                let schema_version: i32 = row
                    .try_get("schema_version")
                    .map_err(|e| corrupt(format!("schema_version: {e}")))?;
                let actor: Option<String> = row
                    .try_get("actor")
                    .map_err(|e| corrupt(format!("actor: {e}")))?;
                let payload: Vec<u8> = row
                    .try_get("payload")
                    .map_err(|e| corrupt(format!("payload: {e}")))?;
                let prev_hash: Vec<u8> = row
                    .try_get("prev_hash")
                    .map_err(|e| corrupt(format!("prev_hash: {e}")))?;
                let hash: Vec<u8> = row
                    .try_get("hash")
                    .map_err(|e| corrupt(format!("hash: {e}")))?;
                if seq < 1 || stream_version < 1 || schema_version < 0 {
                    return Err(corrupt(
                        "seq, stream_version or schema_version out of range".into(),
                    ));
                }
                Ok(StoredEvent {
                    ledger_id,
                    seq: seq as u64,
                    stream_id: text("stream_id")?,
                    stream_version: stream_version as u64,
                    event_id,
                    event_type: text("event_type")?,
                    schema_version: schema_version as u32,
                    recorded_at: text("recorded_at")?,
                    actor,
                    payload,
                    prev_hash: hash32(seq, "prev_hash", prev_hash)?,
                    hash: hash32(seq, "hash", hash)?,
                })
            }

            fn row_to_proposal(row: &$Row) -> Result<ProposalRow, StoreError> {
                let read = |error: sqlx::Error| StoreError::Database {
                    doing: "reading a proposal row",
                    source: error,
                };
                Ok(ProposalRow {
                    proposal_id: row.try_get("proposal_id").map_err(read)?,
                    kind: row.try_get("kind").map_err(read)?,
                    status: row.try_get("status").map_err(read)?,
                    verdict: row.try_get("verdict").map_err(read)?,
                    proposer: row.try_get("proposer").map_err(read)?,
                    contracts_requested: row.try_get("contracts_requested").map_err(read)?,
                    created_at: row.try_get("created_at").map_err(read)?,
                    expires_at: row.try_get("expires_at").map_err(read)?,
                    signer_set_version: row.try_get("signer_set_version").map_err(read)?,
                    policy_version: row.try_get("policy_version").map_err(read)?,
                    signature_count: row.try_get("signature_count").map_err(read)?,
                    signers: row.try_get("signers").map_err(read)?,
                    first_seq: row.try_get("first_seq").map_err(read)?,
                    last_seq: row.try_get("last_seq").map_err(read)?,
                })
            }

            /// The head read under the write lock: its seq, its hash, and the time the next
            /// event records (`now`, or the head's time if that is later: clock skew between
            /// machines must not make time run backwards on the chain), refused after `deadline`.
            fn locked_head(
                head: &$Row,
                now: DateTime<Utc>,
                deadline: Option<DateTime<Utc>>,
            ) -> Result<(i64, [u8; 32], DateTime<Utc>), StoreError> {
                let head_seq: i64 = head
                    .try_get("head_seq")
                    .map_err(db_err("reading the ledger head"))?;
                let prev_hash = hash32(
                    head_seq,
                    "head_hash",
                    head.try_get("head_hash")
                        .map_err(db_err("reading the ledger head"))?,
                )?;
                let head_time: String = head
                    .try_get("head_recorded_at")
                    .map_err(db_err("reading the ledger head"))?;
                let floor = parse_timestamp(&head_time).ok_or_else(|| StoreError::CorruptRow {
                    seq: head_seq,
                    reason: format!("head_recorded_at {head_time:?} is not canonical"),
                })?;
                let recorded_at = now.max(floor);
                if let Some(deadline) = deadline {
                    if recorded_at > deadline {
                        return Err(StoreError::DeadlinePassed {
                            deadline: format_timestamp(deadline),
                            recorded_at: format_timestamp(recorded_at),
                        });
                    }
                }
                Ok((head_seq, prev_hash, recorded_at))
            }

            /// The connection a `TwoTrips` append runs on: one from the store's pool, or the
            /// connection this process's appends to the file share (`two_trip_conn`).
            pub(super) enum WriteConn {
                Pooled(sqlx::pool::PoolConnection<$Db>),
                // Only SQLite shares one (PostgreSQL never takes the two-trip path).
                #[allow(dead_code)]
                Shared(<$Db as sqlx::Database>::Connection),
            }

            /// A connection inside a transaction that `TwoTrips` opened with its own `BEGIN`
            /// (sqlx does not track it), borrowed from the slot its caller keeps. Until `open` is
            /// cleared by the commit, it must not be used again as it is: `roll_back` ends the
            /// transaction, and a drop while it is still open (the append failed and so did the
            /// rollback, or the append's future was cancelled) empties the slot and closes the
            /// connection, which rolls back.
            struct OpenWrite<'s> {
                slot: &'s mut Option<WriteConn>,
                open: bool,
            }

            impl OpenWrite<'_> {
                fn conn(
                    &mut self,
                ) -> Result<&mut <$Db as sqlx::Database>::Connection, StoreError> {
                    match self.slot.as_mut() {
                        Some(WriteConn::Pooled(conn)) => Ok(&mut **conn),
                        Some(WriteConn::Shared(conn)) => Ok(conn),
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
                            Some(WriteConn::Shared(conn)) => drop(conn),
                            None => {}
                        }
                    }
                }
            }

            /// `sql` with an event's columns bound as $1..$12, in `event_columns!()` order.
            fn bind_event<'q>(
                sql: &'static str,
                ledger: &'q str,
                event: &'q StoredEvent,
            ) -> sqlx::query::Query<'q, $Db, <$Db as sqlx::Database>::Arguments> {
                sqlx::query(sql)
                    .bind(ledger)
                    .bind(event.seq as i64)
                    .bind(&event.stream_id)
                    .bind(event.stream_version as i64)
                    .bind(event.event_id.to_string())
                    .bind(&event.event_type)
                    .bind(event.schema_version as i32)
                    .bind(&event.recorded_at)
                    .bind(&event.actor)
                    .bind(&event.payload)
                    .bind(event.prev_hash.to_vec())
                    .bind(event.hash.to_vec())
            }

            /// `insert_at_version!()`'s parameters: the event ($1..$12), its stream's expected
            /// version ($13), the other stream and its version ($14, $15; the event's own stream
            /// again when there is none).
            fn bind_at_version<'q>(
                sql: &'static str,
                ledger: &'q str,
                event: &'q StoredEvent,
                append: OneAppend<'q>,
            ) -> sqlx::query::Query<'q, $Db, <$Db as sqlx::Database>::Arguments> {
                let (other, _, other_version) =
                    append
                        .other
                        .unwrap_or((append.stream, append.expectation, append.version));
                bind_event(sql, ledger, event)
                    .bind(append.version as i64)
                    .bind(other)
                    .bind(other_version as i64)
            }

            /// The one-statement variant for `op` with its parameters bound from $16 on, after
            /// `bind_at_version`'s.
            fn bind_op<'q>(
                one: &OneStatement,
                ledger: &'q str,
                event: &'q StoredEvent,
                append: OneAppend<'q>,
                op: Option<ProjectionOp>,
            ) -> sqlx::query::Query<'q, $Db, <$Db as sqlx::Database>::Arguments> {
                let sql = match &op {
                    None => one.plain,
                    Some(ProjectionOp::Insert(_)) => one.proposal_insert,
                    Some(ProjectionOp::Signed { .. }) => one.signed,
                    Some(ProjectionOp::Status { .. }) => one.status,
                };
                let query = bind_at_version(sql, ledger, event, append);
                match op {
                    None => query,
                    Some(op) => bind_op_params(query, op),
                }
            }

            /// A projection change's parameters, in the order every statement of it takes
            /// them after the ledger id (`proj_*`) or after `bind_at_version`'s (`OneStatement`).
            fn bind_op_params<'q>(
                query: sqlx::query::Query<'q, $Db, <$Db as sqlx::Database>::Arguments>,
                op: ProjectionOp,
            ) -> sqlx::query::Query<'q, $Db, <$Db as sqlx::Database>::Arguments> {
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

            async fn apply_projection(
                tx: &mut sqlx::Transaction<'static, $Db>,
                ledger: &str,
                event: &StoredEvent,
            ) -> Result<(), StoreError> {
                for op in projection_ops(event)? {
                    let (sql, doing) = match &op {
                        ProjectionOp::Insert(_) => (SQL.proj_insert, "inserting a proposal row"),
                        ProjectionOp::Signed { .. } => (SQL.proj_signed, "updating a proposal row"),
                        ProjectionOp::Status { .. } => (SQL.proj_status, "updating a proposal row"),
                    };
                    bind_op_params(sqlx::query(sql).bind(ledger), op)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err(doing))?;
                }
                Ok(())
            }

            impl $Store {
                pub async fn append(
                    &self,
                    ledger_id: Uuid,
                    create: bool,
                    expected: &[(String, ExpectedVersion)],
                    events: Vec<NewEvent>,
                    now: DateTime<Utc>,
                    deadline: Option<DateTime<Utc>>,
                ) -> Result<Vec<StoredEvent>, StoreError> {
                    let ledger = ledger_id.to_string();
                    let one_statement = match (create, &SQL.one_statement, one_append(expected, &events)) {
                        (false, Some(one), Some(append)) => Some((one, append)),
                        _ => None,
                    };
                    // This process's turn (`store::writer_turn`). On the early path (off: no
                    // permits), when another append of this process holds it, the one-statement
                    // append opens its transaction while it waits (if the pool can spare the
                    // connection: the holder must always get one), so that it can take a head
                    // handed on before a commit (`WriterTurn`).
                    let (mut turn, mut tx, permit) = match self.writers.try_lock() {
                        Ok(turn) => (turn, None, None),
                        Err(_) => {
                            let permit = match one_statement {
                                Some(_) => self.early.clone().try_acquire_owned().ok(),
                                None => None,
                            };
                            let tx = match (permit.as_ref(), one_statement) {
                                (Some(_), Some((one, append))) => {
                                    Some(self.begin_expecting(one, append).await?)
                                }
                                _ => None,
                            };
                            let turn = tokio::time::timeout(
                                crate::store::LOCK_TIMEOUT,
                                self.writers.lock(),
                            )
                            .await
                            .map_err(|_| StoreError::WriterTurnTimeout {
                                seconds: crate::store::LOCK_TIMEOUT.as_secs(),
                            })?;
                            (turn, tx, permit)
                        }
                    };
                    let predicted = turn
                        .predicted
                        .take()
                        .filter(|head| head.ledger_id == ledger_id);
                    if let Some((one, append)) = one_statement {
                        // A handed-on head may belong to a commit still in flight, which the
                        // statement's snapshot cannot see: such an insert runs in a transaction
                        // and the other stream's version is confirmed after the head lock.
                        if tx.is_none() && predicted.is_some_and(|head| !head.committed) {
                            tx = Some(self.begin_expecting(one, append).await?);
                        }
                        // Autocommit statements after the process's first run on the connection
                        // kept with the turn (`take_kept_writer`).
                        let mut kept = match tx {
                            None => self.take_kept_writer(&mut turn).await?,
                            Some(_) => None,
                        };
                        let mut sealed_on = predicted;
                        let mut attempt = self
                            .append_one_statement(
                                one,
                                tx.as_mut(),
                                kept.as_mut(),
                                ledger_id,
                                &ledger,
                                append,
                                &events[0],
                                now,
                                deadline,
                                sealed_on,
                            )
                            .await;
                        // A head this process committed that another process has moved since:
                        // once more on a head read now, before the locked path.
                        if matches!(attempt, Ok(None))
                            && tx.is_none()
                            && sealed_on.is_some_and(|head| head.committed)
                        {
                            sealed_on = None;
                            attempt = self
                                .append_one_statement(
                                    one,
                                    None,
                                    kept.as_mut(),
                                    ledger_id,
                                    &ledger,
                                    append,
                                    &events[0],
                                    now,
                                    deadline,
                                    None,
                                )
                                .await;
                        }
                        // The kept connection goes back unless the database failed on it (a
                        // refusal leaves an autocommit connection as it was).
                        if let (Some(conn), Ok(_)) = (kept, &attempt) {
                            Self::return_kept_writer(&mut turn, conn);
                        }
                        if let Some(event) = attempt? {
                            crate::store::stats::ONE_STATEMENT
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if sealed_on.is_some() {
                                crate::store::stats::ON_HANDED_HEAD
                                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            if let Some(tx) = tx {
                                // Hand the head on now, so the next insert overlaps this commit.
                                turn.predicted = parse_timestamp(&event.recorded_at).map(
                                    |recorded_at| crate::store::PredictedHead {
                                        ledger_id,
                                        seq: event.seq,
                                        hash: event.hash,
                                        recorded_at,
                                        committed: false,
                                    },
                                );
                                drop(turn);
                                tx.commit().await.map_err(db_err("committing the append"))?;
                            } else {
                                // Committed: the next append of this process seals on this head
                                // without reading it (one round trip instead of two). Its
                                // statement's snapshot starts after this commit, so its version
                                // checks see everything up to this head; if another process has
                                // moved the head since, the trigger refuses it (RBH01) and that
                                // append reads the head and tries once more.
                                turn.predicted = parse_timestamp(&event.recorded_at).map(
                                    |recorded_at| crate::store::PredictedHead {
                                        ledger_id,
                                        seq: event.seq,
                                        hash: event.hash,
                                        recorded_at,
                                        committed: true,
                                    },
                                );
                            }
                            return Ok(vec![event]);
                        }
                        // Roll back now: until then the refused transaction may hold the head
                        // lock that the locked path is about to wait for.
                        if let Some(tx) = tx {
                            tx.rollback().await.ok();
                        }
                        drop(permit);
                    }
                    if let Some(trips) = SQL.two_trips.as_ref().filter(|_| !create) {
                        if let Some(other) = two_trip_other(expected, &events) {
                            let new = events.into_iter().next().expect("one event");
                            let mut slot = Some(self.two_trip_conn(&mut turn).await?);
                            let event = self
                                .append_two_trips(
                                    trips, &mut slot, ledger_id, &ledger, expected, other, new,
                                    now, deadline,
                                )
                                .await;
                            // A shared connection goes back to the turn unless the append left
                            // it closed (its slot is then empty and the next append opens one).
                            if let Some(WriteConn::Shared(conn)) = slot {
                                Self::return_kept_writer(&mut turn, conn);
                            }
                            return event.map(|event| vec![event]);
                        }
                    }
                    let mut tx = self.begin_write().await?;
                    if create {
                        // One ledger per database: creation is exclusive (the table lock on
                        // PostgreSQL, the write lock on SQLite), so two concurrent `init`s
                        // cannot both succeed.
                        sqlx::query(SQL.lock_ledgers)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err("locking the ledgers table"))?;
                        let existing: i64 = sqlx::query_scalar(SQL.count_ledgers)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(db_err("counting ledgers"))?;
                        if existing > 0 {
                            return Err(StoreError::LedgerExists(ledger_id));
                        }
                        let stamp = format_timestamp(now);
                        let inserted = sqlx::query(SQL.insert_ledger)
                            .bind(&ledger)
                            .bind(crate::crypto::canonical::GENESIS_PREV_HASH.to_vec())
                            .bind(&stamp)
                            .bind(&stamp)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err("creating the ledger"))?;
                        if inserted.rows_affected() == 0 {
                            return Err(StoreError::LedgerExists(ledger_id));
                        }
                    }
                    // The head row is the ledger's lock: every writer reads and moves it inside
                    // this transaction, so seq is gapless and totally ordered.
                    // The head lock and the first two expected streams' versions in one round
                    // trip (the CLI expects two): statements per append, not fsync alone, bound
                    // the append rate.
                    let combined = SQL
                        .lock_head_with_stream
                        .zip(expected.first().map(|(stream, _)| stream.as_str()));
                    let head = match combined {
                        Some((sql, first)) => {
                            let second = expected.get(1).map_or(first, |(stream, _)| stream);
                            sqlx::query(sql).bind(&ledger).bind(first).bind(second)
                        }
                        None => sqlx::query(SQL.lock_head).bind(&ledger),
                    }
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err("locking the ledger head"))?
                    .ok_or(StoreError::NoSuchLedger(ledger_id))?;
                    let (head_seq, mut prev_hash, recorded_at) = locked_head(&head, now, deadline)?;

                    // One event on a stream at a known version (the CLI's appends), with the
                    // version checks in the insert where the backend can: no separate version
                    // reads under the lock.
                    if let (Some(sql), Some(append)) =
                        (SQL.insert_one_at_version, one_append(expected, &events))
                    {
                        let new = events.into_iter().next().expect("one event");
                        let event = StoredEvent::seal(
                            ledger_id,
                            head_seq as u64 + 1,
                            append.version + 1,
                            Uuid::now_v7(),
                            recorded_at,
                            prev_hash,
                            new,
                        );
                        debug_assert_eq!(event.computed_hash(), event.hash);
                        let moved = bind_at_version(sql, &ledger, &event, append)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err("inserting an event"))?;
                        if moved.rows_affected() != 1 {
                            // A stream is not at its expected version: report which, and its
                            // actual version (the transaction rolls back, nothing was written).
                            for (stream_id, expectation) in expected {
                                let actual =
                                    self.stream_version(&mut tx, &ledger, stream_id).await?;
                                check_expected(stream_id, *expectation, actual)?;
                            }
                            return Err(StoreError::InvalidAppend(
                                "the insert refused an append whose streams are at their expected versions".into(),
                            ));
                        }
                        apply_projection(&mut tx, &ledger, &event).await?;
                        tx.commit().await.map_err(db_err("committing the append"))?;
                        return Ok(vec![event]);
                    }

                    let mut versions: HashMap<String, u64> = HashMap::new();
                    for (index, (stream_id, expectation)) in expected.iter().enumerate() {
                        let actual = if index < 2 && combined.is_some() {
                            let column = ["stream_version", "stream_version_2"][index];
                            let version: i64 = head
                                .try_get(column)
                                .map_err(db_err("reading a stream version"))?;
                            version.max(0) as u64
                        } else {
                            self.stream_version(&mut tx, &ledger, stream_id).await?
                        };
                        check_expected(stream_id, *expectation, actual)?;
                        versions.insert(stream_id.clone(), actual);
                    }

                    let mut stored = Vec::with_capacity(events.len());
                    let mut seq = head_seq as u64;
                    for new in events {
                        let version = match versions.get(&new.stream_id) {
                            Some(version) => *version,
                            None => {
                                self.stream_version(&mut tx, &ledger, &new.stream_id)
                                    .await?
                            }
                        } + 1;
                        versions.insert(new.stream_id.clone(), version);
                        seq += 1;
                        let event = StoredEvent::seal(
                            ledger_id,
                            seq,
                            version,
                            Uuid::now_v7(),
                            recorded_at,
                            prev_hash,
                            new,
                        );
                        debug_assert_eq!(event.computed_hash(), event.hash);
                        bind_event(SQL.insert_event, &ledger, &event)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err("inserting an event"))?;
                        apply_projection(&mut tx, &ledger, &event).await?;
                        prev_hash = event.hash;
                        stored.push(event);
                    }
                    // The schema's insert trigger moved the head with each event (0002).
                    tx.commit().await.map_err(db_err("committing the append"))?;
                    Ok(stored)
                }

                /// The common append in two round trips and no explicit transaction: read the
                /// head unlocked, seal the event on it, and insert the event with its projection
                /// change in one autocommit statement. The schema's insert trigger takes the
                /// head's row lock and refuses the event if another writer moved the head since
                /// the read (migrations/postgres/0002), so the chain stays gapless and ordered.
                /// With `tx`, the statements run in it and the caller commits; with `kept`, they
                /// run on the connection the process keeps for appends; else on the pool. With
                /// `predicted` (a head this process's previous append left), the read is
                /// skipped. A committed head needs no transaction (the statement's snapshot starts
                /// after that commit); a head handed on before its commit (the early path) comes
                /// with `tx` from `begin_expecting`, whose trigger check of the other stream does
                /// not depend on the statement's snapshot (which may predate that commit).
                ///
                /// `Ok(None)` when the event did not go in for a reason the locked path must
                /// judge (the head moved, a stream is not at its expected version, the deadline,
                /// a projection this path does not fold): nothing was written, and the locked
                /// path then decides and reports from the state under the lock.
                #[allow(clippy::too_many_arguments)]
                async fn append_one_statement(
                    &self,
                    one: &OneStatement,
                    mut tx: Option<&mut sqlx::Transaction<'static, $Db>>,
                    mut kept: Option<&mut <$Db as sqlx::Database>::Connection>,
                    ledger_id: Uuid,
                    ledger: &str,
                    append: OneAppend<'_>,
                    new: &NewEvent,
                    now: DateTime<Utc>,
                    deadline: Option<DateTime<Utc>>,
                    predicted: Option<crate::store::PredictedHead>,
                ) -> Result<Option<StoredEvent>, StoreError> {
                    let (head_seq, prev_hash, floor) = match predicted {
                        Some(head) => (head.seq, head.hash, head.recorded_at),
                        None => {
                            let read = sqlx::query(one.read_head).bind(ledger);
                            let head = match (tx.as_deref_mut(), kept.as_deref_mut()) {
                                (Some(tx), _) => read.fetch_optional(&mut **tx).await,
                                (None, Some(conn)) => read.fetch_optional(conn).await,
                                (None, None) => read.fetch_optional(&self.pool).await,
                            }
                            .map_err(db_err("reading the ledger head"))?;
                            // A missing or unreadable head: the locked path reports it.
                            let Some(head) = head else { return Ok(None) };
                            let parsed = (|| {
                                let head_time: String = head.try_get("head_recorded_at").ok()?;
                                Some((
                                    u64::try_from(head.try_get::<i64, _>("head_seq").ok()?)
                                        .ok()?,
                                    head.try_get::<Vec<u8>, _>("head_hash")
                                        .ok()?
                                        .try_into()
                                        .ok()?,
                                    parse_timestamp(&head_time)?,
                                ))
                            })();
                            let Some(parsed) = parsed else { return Ok(None) };
                            parsed
                        }
                    };
                    let recorded_at = now.max(floor);
                    if deadline.is_some_and(|deadline| recorded_at > deadline) {
                        return Ok(None);
                    }
                    let event = StoredEvent::seal(
                        ledger_id,
                        head_seq + 1,
                        append.version + 1,
                        Uuid::now_v7(),
                        recorded_at,
                        prev_hash,
                        new.clone(),
                    );
                    debug_assert_eq!(event.computed_hash(), event.hash);
                    let Ok(mut ops) = projection_ops(&event) else {
                        return Ok(None);
                    };
                    // Folded only when it changes the row of the event's own stream: that
                    // stream's version check (or its unique index) then also guards the row.
                    let own_row = |op: &ProjectionOp| match op {
                        ProjectionOp::Insert(row) => row.proposal_id == event.stream_id,
                        ProjectionOp::Signed { proposal_id, .. }
                        | ProjectionOp::Status { proposal_id, .. } => {
                            *proposal_id == event.stream_id
                        }
                    };
                    if ops.len() > 1 || !ops.iter().all(own_row) {
                        return Ok(None);
                    }
                    let insert = bind_op(one, ledger, &event, append, ops.pop());
                    let inserted = match (tx.as_deref_mut(), kept.as_deref_mut()) {
                        (Some(tx), _) => insert.fetch_optional(&mut **tx).await,
                        (None, Some(conn)) => insert.fetch_optional(conn).await,
                        (None, None) => insert.fetch_optional(&self.pool).await,
                    };
                    match inserted {
                        Ok(Some(_)) => {}
                        Ok(None) => return Ok(None),
                        Err(error) if refused_here(&error) => return Ok(None),
                        Err(error) => return Err(db_err("inserting an event")(error)),
                    }
                    Ok(Some(event))
                }

                /// `TwoTrips`: `BEGIN IMMEDIATE` and the head read in one command, the event
                /// sealed on that head, and its insert, projection change and `COMMIT` in the
                /// next. Everything the four-command path checks is checked here, under the same
                /// write lock; any failure rolls the transaction back.
                #[allow(clippy::too_many_arguments)]
                async fn append_two_trips(
                    &self,
                    trips: &TwoTrips,
                    slot: &mut Option<WriteConn>,
                    ledger_id: Uuid,
                    ledger: &str,
                    expected: &[(String, ExpectedVersion)],
                    other: Option<&str>,
                    new: NewEvent,
                    now: DateTime<Utc>,
                    deadline: Option<DateTime<Utc>>,
                ) -> Result<StoredEvent, StoreError> {
                    let mut write = OpenWrite { slot, open: true };
                    let appended = async {
                        let rows = sqlx::query(trips.begin_and_read)
                            .bind(ledger)
                            .bind(&new.stream_id)
                            .bind(other.unwrap_or(&new.stream_id))
                            .fetch_all(write.conn()?)
                            .await
                            .map_err(db_err("taking the write lock and reading the ledger head"))?;
                        let head = rows.first().ok_or(StoreError::NoSuchLedger(ledger_id))?;
                        let (head_seq, prev_hash, recorded_at) = locked_head(head, now, deadline)?;
                        let version = |column: &str| -> Result<u64, StoreError> {
                            let version: i64 = head
                                .try_get(column)
                                .map_err(db_err("reading a stream version"))?;
                            Ok(version.max(0) as u64)
                        };
                        let (own, second) = (version("stream_version")?, version("stream_version_2")?);
                        for (stream_id, expectation) in expected {
                            let actual = if *stream_id == new.stream_id { own } else { second };
                            check_expected(stream_id, *expectation, actual)?;
                        }
                        let event = StoredEvent::seal(
                            ledger_id,
                            head_seq as u64 + 1,
                            own + 1,
                            Uuid::now_v7(),
                            recorded_at,
                            prev_hash,
                            new,
                        );
                        debug_assert_eq!(event.computed_hash(), event.hash);
                        let mut ops = projection_ops(&event)?;
                        if ops.len() > 1 {
                            // No event projects more than one change today; should one, its
                            // statements run one by one in the same transaction.
                            bind_event(SQL.insert_event, ledger, &event)
                                .execute(write.conn()?)
                                .await
                                .map_err(db_err("inserting an event"))?;
                            for op in ops {
                                let sql = match &op {
                                    ProjectionOp::Insert(_) => SQL.proj_insert,
                                    ProjectionOp::Signed { .. } => SQL.proj_signed,
                                    ProjectionOp::Status { .. } => SQL.proj_status,
                                };
                                bind_op_params(sqlx::query(sql).bind(ledger), op)
                                    .execute(write.conn()?)
                                    .await
                                    .map_err(db_err("updating a proposal row"))?;
                            }
                            sqlx::query("COMMIT")
                                .execute(write.conn()?)
                                .await
                                .map_err(db_err("committing the append"))?;
                            return Ok(event);
                        }
                        let op = ops.pop();
                        let sql = match &op {
                            None => trips.plain,
                            Some(ProjectionOp::Insert(_)) => trips.proposal_insert,
                            Some(ProjectionOp::Signed { .. }) => trips.signed,
                            Some(ProjectionOp::Status { .. }) => trips.status,
                        };
                        let query = bind_event(sql, ledger, &event);
                        match op {
                            None => query,
                            Some(op) => bind_op_params(query, op),
                        }
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

                /// A transaction for the one-statement append, in which the insert trigger also
                /// checks the other expected stream under the head lock: a head handed on before
                /// its commit is not in the statement's snapshot, so a check in the statement
                /// could pass on a version that commit changed.
                async fn begin_expecting(
                    &self,
                    one: &OneStatement,
                    append: OneAppend<'_>,
                ) -> Result<sqlx::Transaction<'static, $Db>, StoreError> {
                    let mut tx = self.begin_write().await?;
                    if let Some((stream_id, _, version)) = append.other {
                        sqlx::query(one.expect_other)
                            .bind(stream_id)
                            .bind(version.to_string())
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err("setting the expected stream version"))?;
                    }
                    Ok(tx)
                }

                async fn stream_version(
                    &self,
                    tx: &mut sqlx::Transaction<'static, $Db>,
                    ledger: &str,
                    stream_id: &str,
                ) -> Result<u64, StoreError> {
                    let version: i64 = sqlx::query_scalar(SQL.stream_version)
                        .bind(ledger)
                        .bind(stream_id)
                        .fetch_one(&mut **tx)
                        .await
                        .map_err(db_err("reading a stream version"))?;
                    Ok(version.max(0) as u64)
                }

                pub async fn ledger_ids(&self) -> Result<Vec<Uuid>, StoreError> {
                    let ids: Vec<String> = sqlx::query_scalar(SQL.ledger_ids)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err("listing ledgers"))?;
                    ids.iter()
                        .map(|id| {
                            Uuid::parse_str(id).map_err(|e| StoreError::CorruptRow {
                                seq: 0,
                                reason: format!("ledger id {id:?}: {e}"),
                            })
                        })
                        .collect()
                }

                pub async fn head(
                    &self,
                    ledger_id: Uuid,
                ) -> Result<Option<(u64, [u8; 32])>, StoreError> {
                    let row = sqlx::query(SQL.head)
                        .bind(ledger_id.to_string())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err("reading the ledger head"))?;
                    match row {
                        None => Ok(None),
                        Some(row) => {
                            let seq: i64 = row
                                .try_get("head_seq")
                                .map_err(db_err("reading the ledger head"))?;
                            let hash = hash32(
                                seq,
                                "head_hash",
                                row.try_get("head_hash")
                                    .map_err(db_err("reading the ledger head"))?,
                            )?;
                            Ok(Some((seq.max(0) as u64, hash)))
                        }
                    }
                }

                pub async fn read_stream(
                    &self,
                    ledger_id: Uuid,
                    stream_id: &str,
                ) -> Result<Vec<StoredEvent>, StoreError> {
                    let rows = sqlx::query(SQL.select_stream)
                        .bind(ledger_id.to_string())
                        .bind(stream_id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err("reading a stream"))?;
                    rows.iter().map(row_to_event).collect()
                }

                pub async fn read_page(
                    &self,
                    ledger_id: Uuid,
                    after_seq: u64,
                    limit: i64,
                ) -> Result<Vec<StoredEvent>, StoreError> {
                    let rows = sqlx::query(SQL.select_page)
                        .bind(ledger_id.to_string())
                        .bind(after_seq as i64)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err("reading events"))?;
                    rows.iter().map(row_to_event).collect()
                }

                pub async fn rebuild_projections(
                    &self,
                    ledger_id: Uuid,
                ) -> Result<u64, StoreError> {
                    let ledger = ledger_id.to_string();
                    let mut tx = self.begin_write().await?;
                    // Hold the head like a writer does, so no append interleaves with the replay.
                    sqlx::query(SQL.lock_head)
                        .bind(&ledger)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err("locking the ledger head"))?;
                    sqlx::query(SQL.proj_delete)
                        .bind(&ledger)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err("clearing the projections"))?;
                    let mut after: i64 = 0;
                    let mut replayed = 0u64;
                    loop {
                        let rows = sqlx::query(SQL.select_page)
                            .bind(&ledger)
                            .bind(after)
                            .bind(crate::store::PAGE_ROWS)
                            .fetch_all(&mut *tx)
                            .await
                            .map_err(db_err("reading events"))?;
                        if rows.is_empty() {
                            break;
                        }
                        for row in &rows {
                            let event = row_to_event(row)?;
                            after = event.seq as i64;
                            apply_projection(&mut tx, &ledger, &event).await?;
                            replayed += 1;
                        }
                    }
                    tx.commit()
                        .await
                        .map_err(db_err("committing the rebuild"))?;
                    Ok(replayed)
                }

                pub async fn proposals(
                    &self,
                    ledger_id: Uuid,
                    status: Option<&str>,
                ) -> Result<Vec<ProposalRow>, StoreError> {
                    let rows = match status {
                        None => {
                            sqlx::query(SQL.proj_all)
                                .bind(ledger_id.to_string())
                                .fetch_all(&self.pool)
                                .await
                        }
                        Some(status) => {
                            sqlx::query(SQL.proj_by_status)
                                .bind(ledger_id.to_string())
                                .bind(status)
                                .fetch_all(&self.pool)
                                .await
                        }
                    }
                    .map_err(db_err("reading proposals"))?;
                    rows.iter().map(row_to_proposal).collect()
                }

                pub async fn proposal(
                    &self,
                    ledger_id: Uuid,
                    proposal_id: &str,
                ) -> Result<Option<ProposalRow>, StoreError> {
                    let row = sqlx::query(SQL.proj_one)
                        .bind(ledger_id.to_string())
                        .bind(proposal_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err("reading a proposal"))?;
                    row.as_ref().map(row_to_proposal).transpose()
                }

                pub async fn close(&self) {
                    // The connection the process's appends share closes with any of its stores
                    // (another store's next append opens one if it needs it).
                    let kept = Self::take_kept_for_close(&mut *self.writers.lock().await);
                    if let Some(conn) = kept {
                        use sqlx::Connection;
                        conn.close().await.ok();
                    }
                    self.pool.close().await
                }
            }
        }
    };
}

backend!(
    sqlite,
    SqliteStore,
    sqlx::Sqlite,
    sqlx::SqlitePool,
        sqlx::sqlite::SqliteRow,
    Sql {
        // BEGIN IMMEDIATE already excludes every other writer.
        lock_ledgers: "SELECT 1",
        count_ledgers: "SELECT count(*) FROM ledgers",
        insert_ledger: "INSERT INTO ledgers (ledger_id, head_seq, head_hash, head_recorded_at, created_at) VALUES (?1, 0, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        // BEGIN IMMEDIATE already holds the database write lock; no row lock needed.
                lock_head: "SELECT head_seq, head_hash, head_recorded_at FROM ledgers WHERE ledger_id = ?1",
                // Safe here: BEGIN IMMEDIATE holds the write lock before this read.
        lock_head_with_stream: Some(concat!(
            "SELECT head_seq, head_hash, head_recorded_at, ",
            "(SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE ledger_id = ?1 AND stream_id = ?2) AS stream_version, ",
            "(SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE ledger_id = ?1 AND stream_id = ?3) AS stream_version_2 ",
            "FROM ledgers WHERE ledger_id = ?1"
        )),
        // SQLite has no writable CTE; its head read already carries the stream version.
        // migrations/sqlite/0002: a trigger moves the head with each insert.
        insert_one_at_version: None,
        one_statement: None,
        two_trips: Some(TwoTrips {
            begin_and_read: concat!(
                "BEGIN IMMEDIATE; ",
                "SELECT head_seq, head_hash, head_recorded_at, ",
                "(SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE ledger_id = ?1 AND stream_id = ?2) AS stream_version, ",
                "(SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE ledger_id = ?1 AND stream_id = ?3) AS stream_version_2 ",
                "FROM ledgers WHERE ledger_id = ?1"
            ),
            plain: concat!(sqlite_insert_event!(), "; COMMIT"),
            proposal_insert: concat!(
                sqlite_insert_event!(), "; ",
                "INSERT INTO proposals (ledger_id, ", proj_columns!(), ") VALUES (?1, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26); ",
                "COMMIT"
            ),
            signed: concat!(
                sqlite_insert_event!(), "; ",
                "UPDATE proposals SET signature_count = signature_count + 1, signers = CASE WHEN signers = '' THEN ?14 ELSE signers || ',' || ?14 END, last_seq = ?15 WHERE ledger_id = ?1 AND proposal_id = ?13; ",
                "COMMIT"
            ),
            status: concat!(
                sqlite_insert_event!(), "; ",
                "UPDATE proposals SET status = ?14, last_seq = ?15 WHERE ledger_id = ?1 AND proposal_id = ?13; ",
                "COMMIT"
            ),
        }),
        stream_version: "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE ledger_id = ?1 AND stream_id = ?2",
        insert_event: sqlite_insert_event!(),
        select_page: concat!("SELECT ", event_columns!(), " FROM events WHERE ledger_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"),
        select_stream: concat!("SELECT ", event_columns!(), " FROM events WHERE ledger_id = ?1 AND stream_id = ?2 ORDER BY stream_version"),
        ledger_ids: "SELECT ledger_id FROM ledgers ORDER BY created_at, ledger_id",
        head: "SELECT head_seq, head_hash FROM ledgers WHERE ledger_id = ?1",
        proj_insert: concat!("INSERT INTO proposals (ledger_id, ", proj_columns!(), ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
        proj_signed: "UPDATE proposals SET signature_count = signature_count + 1, signers = CASE WHEN signers = '' THEN ?3 ELSE signers || ',' || ?3 END, last_seq = ?4 WHERE ledger_id = ?1 AND proposal_id = ?2",
        proj_status: "UPDATE proposals SET status = ?3, last_seq = ?4 WHERE ledger_id = ?1 AND proposal_id = ?2",
        proj_delete: "DELETE FROM proposals WHERE ledger_id = ?1",
        proj_all: concat!("SELECT ", proj_columns!(), " FROM proposals WHERE ledger_id = ?1 ORDER BY first_seq"),
        proj_by_status: concat!("SELECT ", proj_columns!(), " FROM proposals WHERE ledger_id = ?1 AND status = ?2 ORDER BY first_seq"),
        proj_one: concat!("SELECT ", proj_columns!(), " FROM proposals WHERE ledger_id = ?1 AND proposal_id = ?2"),
    }
);

backend!(
    postgres,
    PostgresStore,
    sqlx::Postgres,
    sqlx::PgPool,
        sqlx::postgres::PgRow,
    Sql {
        // Blocks concurrent creators (and appends' row locks do not conflict with it for long:
        // creation happens once).
        lock_ledgers: "LOCK TABLE ledgers IN SHARE ROW EXCLUSIVE MODE",
        count_ledgers: "SELECT count(*) FROM ledgers",
        insert_ledger: "INSERT INTO ledgers (ledger_id, head_seq, head_hash, head_recorded_at, created_at) VALUES ($1, 0, $2, $3, $4) ON CONFLICT DO NOTHING",
        // A row lock on the head, not an advisory lock: it lives and dies with the transaction
        // (a killed writer releases it), needs no key scheme, and FOR UPDATE under READ
        // COMMITTED returns the latest committed head after the wait.
                lock_head: "SELECT head_seq, head_hash, head_recorded_at FROM ledgers WHERE ledger_id = $1 FOR UPDATE",
                // Not combined: under READ COMMITTED, a FOR UPDATE that waited re-reads the locked row
        // but a subquery keeps the statement's older snapshot and could miss the events the
        // previous lock holder committed. The stream version is read by a later statement.
        lock_head_with_stream: None,
        // A new statement after the lock, so its snapshot sees every event the previous lock
        // holder committed: the version check cannot miss one (unlike a subquery of the lock).
        // migrations/postgres/0002: the insert's trigger moves the head.
        insert_one_at_version: Some(insert_at_version!()),
        two_trips: None,
        one_statement: Some(OneStatement {
            read_head: "SELECT head_seq, head_hash, head_recorded_at FROM ledgers WHERE ledger_id = $1",
            expect_other: "SELECT set_config('rollbook.expect_stream', $1, true), set_config('rollbook.expect_version', $2, true)",
            plain: concat!("WITH inserted AS (", insert_at_version!(), " RETURNING seq) SELECT seq FROM inserted"),
            proposal_insert: concat!(
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
        }),
        stream_version: "SELECT COALESCE(MAX(stream_version), 0)::BIGINT FROM events WHERE ledger_id = $1 AND stream_id = $2",
        insert_event: concat!("INSERT INTO events (", event_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"),
        select_page: concat!("SELECT ", event_columns!(), " FROM events WHERE ledger_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"),
        select_stream: concat!("SELECT ", event_columns!(), " FROM events WHERE ledger_id = $1 AND stream_id = $2 ORDER BY stream_version"),
        ledger_ids: "SELECT ledger_id FROM ledgers ORDER BY created_at, ledger_id",
        head: "SELECT head_seq, head_hash FROM ledgers WHERE ledger_id = $1",
        proj_insert: concat!("INSERT INTO proposals (ledger_id, ", proj_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"),
        proj_signed: "UPDATE proposals SET signature_count = signature_count + 1, signers = CASE WHEN signers = '' THEN $3 ELSE signers || ',' || $3 END, last_seq = $4 WHERE ledger_id = $1 AND proposal_id = $2",
        proj_status: "UPDATE proposals SET status = $3, last_seq = $4 WHERE ledger_id = $1 AND proposal_id = $2",
        proj_delete: "DELETE FROM proposals WHERE ledger_id = $1",
        proj_all: concat!("SELECT ", proj_columns!(), " FROM proposals WHERE ledger_id = $1 ORDER BY first_seq"),
        proj_by_status: concat!("SELECT ", proj_columns!(), " FROM proposals WHERE ledger_id = $1 AND status = $2 ORDER BY first_seq"),
        proj_one: concat!("SELECT ", proj_columns!(), " FROM proposals WHERE ledger_id = $1 AND proposal_id = $2"),
    }
);

/// Opens the connection a process's appends to one database keep after its first append
/// (`WriterTurn`), with its store's options.
async fn open_kept_writer<O: sqlx::ConnectOptions<Connection: Sized>>(
    options: &O,
) -> Result<O::Connection, StoreError> {
    let conn = options.connect().await.map_err(super::db_err(
        "opening the connection this process's appends share",
    ))?;
    super::stats::KEPT_WRITER_OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(conn)
}

impl sqlite::SqliteStore {
    /// The connection a two-trip append runs on. A process's first append to the file (the only
    /// one of a CLI command) runs on its store's own connection: no second connection to open.
    /// From the second on, appends run on one connection kept with the writer turn and shared by
    /// every store of the process on that file. A pooled connection goes back to its pool
    /// through a task of its own after every append, which the next append waits for; and in
    /// WAL mode a connection whose file another connection wrote drops its whole page cache and
    /// reads the pages again, so 8 stores appending each on its own connection lost about a
    /// tenth of one writer's rate (BENCHMARKS.md, append).
    async fn two_trip_conn(
        &self,
        turn: &mut super::WriterTurn,
    ) -> Result<sqlite::WriteConn, StoreError> {
        if self.pool.is_closed() {
            // A closed store appends nothing (the pool would refuse; the kept connection must too).
            return Err(super::db_err("taking a connection for the append")(
                sqlx::Error::PoolClosed,
            ));
        }
        let kept = turn.sqlite_appends > 0 && !turn.sqlite_in_memory;
        turn.sqlite_appends += 1;
        if kept {
            let conn = match turn.sqlite_writer.take() {
                Some(conn) => conn,
                None => open_kept_writer(&*self.pool.connect_options()).await?,
            };
            return Ok(sqlite::WriteConn::Shared(conn));
        }
        let conn = self
            .pool
            .acquire()
            .await
            .map_err(super::db_err("taking a connection for the append"))?;
        Ok(sqlite::WriteConn::Pooled(conn))
    }

    /// SQLite has no one-statement path (`Sql::one_statement`): its appends keep their
    /// connection in `two_trip_conn`.
    async fn take_kept_writer(
        &self,
        _turn: &mut super::WriterTurn,
    ) -> Result<Option<sqlx::SqliteConnection>, StoreError> {
        Ok(None)
    }

    /// Whether this process's appends to the file now share a kept connection (for tests).
    #[doc(hidden)]
    pub async fn holds_kept_writer(&self) -> bool {
        self.writers.lock().await.sqlite_writer.is_some()
    }

    fn return_kept_writer(turn: &mut super::WriterTurn, conn: sqlx::SqliteConnection) {
        turn.sqlite_writer = Some(conn);
    }

    fn take_kept_for_close(turn: &mut super::WriterTurn) -> Option<sqlx::SqliteConnection> {
        turn.sqlite_writer.take()
    }

    pub async fn open(url: &str, create: bool) -> Result<Self, StoreError> {
        use sqlx::sqlite::{
            SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
        };
        use std::str::FromStr;
        let shown = super::redact_url(url);
        let open_err = |reason: String| StoreError::Open {
            url: shown.clone(),
            reason,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|error| open_err(error.to_string()))?
            .create_if_missing(create)
            // WAL + FULL: a commit is durable once `append` returns, and a crash mid-append
            // leaves the last committed state (the WAL frame without its commit is ignored).
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(super::LOCK_TIMEOUT)
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
        // its open, its WAL-index read and its schema parse (`sign` p50 10.3 against 12.8 ms,
        // interleaved). Tasks sharing a store wait for the connection (acquire timeout below).
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(super::LOCK_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|error| open_err(error.to_string()))?;
        // Several processes may open a fresh file at once; SQLite's migrator takes no lock, so
        // a loser of that race sees the winner's tables: retry once it has committed.
        let migrator = sqlx::migrate!("migrations/sqlite");
        let mut attempt = 0;
        loop {
            if sqlite_migrations_current(&pool, &migrator).await {
                break;
            }
            match migrator.run(&pool).await {
                Ok(()) => break,
                // A refusal of what the database records is final; only a failure to run
                // (the race above: busy, a table the winner just made) is worth a retry.
                Err(error) if attempt < 5 && !migration_refused(&error) => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                Err(error) => {
                    return Err(StoreError::Migrate {
                        url: shown,
                        reason: error.to_string(),
                    })
                }
            }
        }
        let writers = super::writer_turn(url);
        if in_memory {
            writers.lock().await.sqlite_in_memory = true;
        }
        Ok(Self {
            pool,
            writers,
            // SQLite never opens a transaction before its turn (it has no one-statement path).
            early: std::sync::Arc::new(tokio::sync::Semaphore::new(0)),
        })
    }

    /// `BEGIN IMMEDIATE` takes SQLite's write lock up front (waiting up to the busy timeout),
    /// so two writers never both read the same head and then fail to upgrade.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(super::db_err("taking the write lock"))
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
/// (no table yet, a migration missing, dirty, changed or unknown to this binary) answers no, and
/// the migrator then applies or refuses exactly as it always does.
async fn sqlite_migrations_current(
    pool: &sqlx::SqlitePool,
    migrator: &sqlx::migrate::Migrator,
) -> bool {
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

/// Connections per PostgreSQL store.
const POOL_CONNECTIONS: u32 = 4;

impl postgres::PostgresStore {
    /// PostgreSQL appends never take the two-trip path (`Sql::two_trips` is SQLite's); should
    /// one, it runs on a connection of the store's own pool.
    async fn two_trip_conn(
        &self,
        _turn: &mut super::WriterTurn,
    ) -> Result<postgres::WriteConn, StoreError> {
        let conn = self
            .pool
            .acquire()
            .await
            .map_err(super::db_err("taking a connection for the append"))?;
        Ok(postgres::WriteConn::Pooled(conn))
    }

    /// The connection a one-statement append without a transaction runs on: `None` for the
    /// process's first append to the database (a CLI command's only one: the store's pool, no
    /// connection of its own to open), then one connection kept with the writer turn and shared
    /// by every store of the process on that URL. On the pool, the two round trips of an append
    /// went to whichever connection was idle, and 8 stores' appends to 8 server processes in
    /// turn ran below one writer's rate (BENCHMARKS.md, append). A PostgreSQL append runs to
    /// its end on a task of its own (`Store::append_before`), so the kept connection is never
    /// cut mid-conversation; the append drops it if the database failed on it.
    async fn take_kept_writer(
        &self,
        turn: &mut super::WriterTurn,
    ) -> Result<Option<sqlx::PgConnection>, StoreError> {
        if self.pool.is_closed() {
            return Err(super::db_err("taking a connection for the append")(
                sqlx::Error::PoolClosed,
            ));
        }
        let kept = turn.pg_appends > 0;
        turn.pg_appends += 1;
        if !kept {
            return Ok(None);
        }
        match turn.pg_writer.take() {
            Some(conn) => Ok(Some(conn)),
            None => Ok(Some(open_kept_writer(&*self.pool.connect_options()).await?)),
        }
    }

    fn return_kept_writer(turn: &mut super::WriterTurn, conn: sqlx::PgConnection) {
        turn.pg_writer = Some(conn);
    }

    fn take_kept_for_close(turn: &mut super::WriterTurn) -> Option<sqlx::PgConnection> {
        turn.pg_writer.take()
    }

    /// Whether this process's appends to the database now share a kept connection (for tests).
    #[doc(hidden)]
    pub async fn holds_kept_writer(&self) -> bool {
        self.writers.lock().await.pg_writer.is_some()
    }

    /// The seq of the head this process's last append committed and its next will seal on
    /// without reading it, if any (for tests).
    #[doc(hidden)]
    pub async fn remembered_head(&self) -> Option<u64> {
        let turn = self.writers.lock().await;
        turn.predicted
            .filter(|head| head.committed)
            .map(|head| head.seq)
    }

    pub async fn open(url: &str) -> Result<Self, StoreError> {
        use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
        use std::str::FromStr;
        let shown = super::redact_url(url);
        let open_err = |reason: String| StoreError::Open {
            url: shown.clone(),
            reason,
        };
        let options = PgConnectOptions::from_str(url)
            .map_err(|error| open_err(error.to_string()))?
            // Bound the wait for the head lock so a stuck writer yields an error, not a hang.
            .options([("lock_timeout", "30s")]);
        // One direct attempt first: a dead server fails now with its own error, instead of the
        // pool retrying until its acquire timeout.
        use sqlx::Connection;
        let probe = sqlx::PgConnection::connect_with(&options)
            .await
            .map_err(|error| open_err(error.to_string()))?;
        probe.close().await.ok();
        let pool = PgPoolOptions::new()
            .max_connections(POOL_CONNECTIONS)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|error| open_err(error.to_string()))?;
        // sqlx's PostgreSQL migrator holds an advisory lock, so concurrent openers are safe.
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .map_err(|error| StoreError::Migrate {
                url: shown,
                reason: error.to_string(),
            })?;
        Ok(Self {
            pool,
            writers: super::writer_turn(url),
            // No writer opens its transaction while it waits (the early path, `WriterTurn`):
            // since a writer reuses the head its predecessor committed, 8 writers appending
            // one autocommit statement each in turn ran at 1,956 per second against 1,824 with
            // the early path (the bench, 2026-12-03). The path is still in the code, which no
            // test reaches while it is off: to measure it again on another machine, give this
            // semaphore `POOL_CONNECTIONS - 1` permits (and run the store tests with it).
            early: std::sync::Arc::new(tokio::sync::Semaphore::new(0)),
        })
    }

    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        self.pool
            .begin()
            .await
            .map_err(super::db_err("starting a transaction"))
    }
}
