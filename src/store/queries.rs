//! The statements both backends run alike, written once: the reads, the projection changes,
//! the stream-version read and the ledger's creation, the rebuild walk, and closing.
//!
//! Each function is generic over sqlx's `Database`; a backend hands it its pool (or an open
//! transaction's connection). The SQL is written once, in the part of SQL both dialects share.
//! The appends' locking and round trips stay in `sqlite.rs` and `postgres.rs`: that is where
//! the backends really differ.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};
use uuid::Uuid;

use super::checkpoints::{checkpoints_of, size_i64};
use super::shared::{
    bind_event, bind_projection, head_of, head_with_time_of, parse_ledger_ids, projection_ops,
    row_to_event, row_to_proposal, rows_to_events, seal_checked, ProjectionSql, ReadRow, TurnLock,
};
use super::{
    db_err, IdPart, NewCheckpoint, ProposalWindow, StoreError, StoredCheckpoint, PAGE_ROWS,
};
use crate::domain::envelope::{format_timestamp, NewEvent, StoredEvent};
use crate::domain::projection::ProposalRow;

// One SQL text for both backends: the statements below are standard SQL, and sqlx's SQLite
// driver reads `$N` as argument N, as PostgreSQL does.
const LEDGER_IDS: &str = "SELECT ledger_id FROM ledgers ORDER BY created_at, ledger_id";
const HEAD: &str = "SELECT head_seq, head_hash FROM ledgers WHERE ledger_id = $1";
const HEAD_WITH_TIME: &str =
    "SELECT head_seq, head_hash, head_recorded_at FROM ledgers WHERE ledger_id = $1";
const INSERT_EVENT: &str = concat!(
    "INSERT INTO events (",
    event_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
);
const SELECT_STREAM: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE ledger_id = $1 AND stream_id = $2 ORDER BY stream_version"
);
/// `(ledger_id = $1) = TRUE`: without statistics SQLite's planner answers `ledger_id = $1` with
/// the (ledger, stream, version) index, reading and sorting the whole ledger for every page (a
/// walk was quadratic, a page after a client's pin cost the ledger); written this way it walks
/// the seq rowid from `$2`. PostgreSQL folds `x = TRUE` to `x` and keeps its (ledger, seq) key.
const SELECT_PAGE: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE (ledger_id = $1) = TRUE AND seq > $2 ORDER BY seq LIMIT $3"
);
/// Proposal ids (the stream of each first event) by their last 12 characters, or by their first
/// 8: the expressions of the `events_proposal_id_*` indexes, written as they are there;
/// `(ledger_id = $1) = TRUE` as in `SELECT_PAGE`, else SQLite's planner takes the (ledger,
/// stream, version) index and reads every event of the ledger.
const IDS_BY_TAIL: &str = "SELECT stream_id FROM events WHERE (ledger_id = $1) = TRUE AND stream_version = 1 AND substr(stream_id, 25) = $2";
const IDS_BY_HEAD: &str = "SELECT stream_id FROM events WHERE (ledger_id = $1) = TRUE AND stream_version = 1 AND substr(stream_id, 1, 8) = $2";
/// The cast names the column's type, `i64`, on both (SQLite's integers are 64-bit anyway).
const STREAM_VERSION: &str = "SELECT CAST(COALESCE(MAX(stream_version), 0) AS BIGINT) FROM events WHERE ledger_id = $1 AND stream_id = $2";
const COUNT_LEDGERS: &str = "SELECT count(*) FROM ledgers";
const INSERT_LEDGER: &str = "INSERT INTO ledgers (ledger_id, head_seq, head_hash, head_recorded_at, created_at) VALUES ($1, 0, $2, $3, $4) ON CONFLICT DO NOTHING";
/// Projection changes, their parameters after the ledger id ($1) in `bind_projection` order.
pub(super) const PROJECTION: ProjectionSql = ProjectionSql {
    insert: concat!("INSERT INTO proposals (ledger_id, ", proj_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"),
    signed: "UPDATE proposals SET signature_count = signature_count + 1, signers = CASE WHEN signers = '' THEN $3 ELSE signers || ',' || $3 END, last_seq = $4 WHERE ledger_id = $1 AND proposal_id = $2",
    status: "UPDATE proposals SET status = $3, last_seq = $4 WHERE ledger_id = $1 AND proposal_id = $2",
};
const INSERT_CHECKPOINT: &str = "INSERT INTO checkpoints (ledger_id, tree_size, root, note, recorded_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
const INSERT_CHECKPOINT_SIGNATURE: &str = "INSERT INTO checkpoint_signatures (ledger_id, tree_size, line, source, recorded_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
/// Checkpoints of sizes in `$2..=$3`, smallest first.
const SELECT_CHECKPOINTS: &str = "SELECT tree_size, root, note, recorded_at FROM checkpoints WHERE ledger_id = $1 AND tree_size >= $2 AND tree_size <= $3 ORDER BY tree_size";
const SELECT_CHECKPOINT_SIGNATURES: &str = "SELECT tree_size, line, source, recorded_at FROM checkpoint_signatures WHERE ledger_id = $1 AND tree_size >= $2 AND tree_size <= $3 ORDER BY tree_size, recorded_at, line";
const LATEST_CHECKPOINT_SIZE: &str = "SELECT CAST(COALESCE(MAX(tree_size), 0) AS BIGINT) FROM checkpoints WHERE ledger_id = $1 AND tree_size <= $2";
const WITNESS_SIZE: &str = "SELECT CAST(COALESCE(MAX(tree_size), 0) AS BIGINT) FROM checkpoint_signatures WHERE ledger_id = $1 AND source = $2";
const PROJECTION_DELETE: &str = "DELETE FROM proposals WHERE ledger_id = $1";
/// The projection newest first, from before `first_seq` $2, recorded (created) at or after $3,
/// at most $4 rows: `proposals_newest` walks it, so a window costs the rows it holds.
const PROJECTION_NEWEST: &str = concat!(
    "SELECT ",
    proj_columns!(),
    " FROM proposals WHERE ledger_id = $1 AND first_seq < $2 AND created_at >= $3 ORDER BY first_seq DESC LIMIT $4"
);
/// The same window of one stored status ($5), through `proposals_by_status`.
const PROJECTION_NEWEST_BY_STATUS: &str = concat!(
    "SELECT ",
    proj_columns!(),
    " FROM proposals WHERE ledger_id = $1 AND status = $5 AND first_seq < $2 AND created_at >= $3 ORDER BY first_seq DESC LIMIT $4"
);
const PROJECTION_ONE: &str = concat!(
    "SELECT ",
    proj_columns!(),
    " FROM proposals WHERE ledger_id = $1 AND proposal_id = $2"
);

/// A backend's pool: what the statements of this module run on (or, for those that take a
/// connection, the backend they are typed for).
pub(super) struct Queries<'p, DB: Database> {
    pub pool: &'p Pool<DB>,
}

/// The sqlx bounds, written once: what the two backends' types both offer and these statements
/// use (connections that execute, rows `ReadRow` decodes, and the values they bind).
impl<DB> Queries<'_, DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    DB::Row: ReadRow,
    DB::QueryResult: RowsAffected,
    (i64,): for<'r> FromRow<'r, DB::Row>,
    (String,): for<'r> FromRow<'r, DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
{
    pub async fn ledger_ids(&self) -> Result<Vec<Uuid>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(LEDGER_IDS)
            .fetch_all(self.pool)
            .await
            .map_err(db_err("listing ledgers"))?;
        parse_ledger_ids(&ids)
    }

    pub async fn head(&self, ledger_id: Uuid) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        let row = sqlx::query(HEAD)
            .bind(ledger_id.to_string())
            .fetch_optional(self.pool)
            .await
            .map_err(db_err("reading the ledger head"))?;
        row.as_ref().map(head_of).transpose()
    }

    /// The head with its time; `None` when the ledger does not exist.
    pub async fn head_with_time(
        &self,
        ledger_id: Uuid,
    ) -> Result<Option<(u64, [u8; 32], DateTime<Utc>)>, StoreError> {
        let row = sqlx::query(HEAD_WITH_TIME)
            .bind(ledger_id.to_string())
            .fetch_optional(self.pool)
            .await
            .map_err(db_err("reading the ledger head"))?;
        row.as_ref().map(head_with_time_of).transpose()
    }

    pub async fn read_stream(
        &self,
        ledger_id: Uuid,
        stream_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(SELECT_STREAM)
            .bind(ledger_id.to_string())
            .bind(stream_id)
            .fetch_all(self.pool)
            .await
            .map_err(db_err("reading a stream"))?;
        rows.iter().map(row_to_event).collect()
    }

    /// The ids of the streams whose first event's stream id has `part` (the `ledger` stream's
    /// never does: parts are hex).
    pub async fn stream_ids_with(
        &self,
        ledger_id: Uuid,
        part: IdPart<'_>,
    ) -> Result<Vec<String>, StoreError> {
        let (sql, text) = match part {
            IdPart::Tail(text) => (IDS_BY_TAIL, text),
            IdPart::Head(text) => (IDS_BY_HEAD, text),
        };
        sqlx::query_scalar(sql)
            .bind(ledger_id.to_string())
            .bind(text)
            .fetch_all(self.pool)
            .await
            .map_err(db_err("looking up proposal ids"))
    }

    /// The events of one page up to the first row that fails its checks, and that failure.
    pub async fn read_page(
        &self,
        ledger_id: Uuid,
        after_seq: u64,
        limit: i64,
    ) -> Result<(Vec<StoredEvent>, Option<StoreError>), StoreError> {
        let rows = sqlx::query(SELECT_PAGE)
            .bind(ledger_id.to_string())
            .bind(after_seq as i64)
            .bind(limit)
            .fetch_all(self.pool)
            .await
            .map_err(db_err("reading events"))?;
        Ok(rows_to_events(&rows))
    }

    /// The projection rows of `window`, newest first.
    pub async fn proposal_window(
        &self,
        ledger_id: Uuid,
        window: &ProposalWindow<'_>,
    ) -> Result<Vec<ProposalRow>, StoreError> {
        let before = window.before_seq.map_or(i64::MAX, |seq| seq as i64);
        let since = window.since.unwrap_or("").to_string();
        let limit = window.limit.map_or(i64::MAX, |limit| limit as i64);
        let sql = match window.status {
            None => PROJECTION_NEWEST,
            Some(_) => PROJECTION_NEWEST_BY_STATUS,
        };
        let mut query = sqlx::query(sql)
            .bind(ledger_id.to_string())
            .bind(before)
            .bind(since)
            .bind(limit);
        if let Some(status) = window.status {
            query = query.bind(status);
        }
        let rows = query
            .fetch_all(self.pool)
            .await
            .map_err(db_err("reading proposals"))?;
        rows.iter().map(row_to_proposal).collect()
    }

    pub async fn proposal(
        &self,
        ledger_id: Uuid,
        proposal_id: &str,
    ) -> Result<Option<ProposalRow>, StoreError> {
        let row = sqlx::query(PROJECTION_ONE)
            .bind(ledger_id.to_string())
            .bind(proposal_id)
            .fetch_optional(self.pool)
            .await
            .map_err(db_err("reading a proposal"))?;
        row.as_ref().map(row_to_proposal).transpose()
    }

    /// Stores a signed checkpoint; false (nothing written) when one of that size is stored.
    pub async fn add_checkpoint(
        &self,
        ledger_id: Uuid,
        checkpoint: &NewCheckpoint<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(INSERT_CHECKPOINT)
            .bind(ledger_id.to_string())
            .bind(size_i64(checkpoint.tree_size)?)
            .bind(&checkpoint.root[..])
            .bind(checkpoint.note)
            .bind(format_timestamp(now))
            .execute(self.pool)
            .await
            .map_err(db_err("storing a checkpoint"))?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Adds one signature line to a stored checkpoint (one autocommit statement: each line
    /// stands alone); false when that line is stored already.
    pub async fn add_checkpoint_signature(
        &self,
        ledger_id: Uuid,
        tree_size: u64,
        line: &str,
        source: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(INSERT_CHECKPOINT_SIGNATURE)
            .bind(ledger_id.to_string())
            .bind(size_i64(tree_size)?)
            .bind(line)
            .bind(source)
            .bind(format_timestamp(now))
            .execute(self.pool)
            .await
            .map_err(db_err("storing a checkpoint signature"))?;
        Ok(inserted.rows_affected() == 1)
    }

    /// The checkpoints of sizes `from..=to`, smallest first, each with its added signatures.
    pub async fn checkpoints(
        &self,
        ledger_id: Uuid,
        from: u64,
        to: u64,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let (from, to) = (size_i64(from)?, size_i64(to.min(i64::MAX as u64))?);
        let ledger = ledger_id.to_string();
        let rows = sqlx::query(SELECT_CHECKPOINTS)
            .bind(ledger.as_str())
            .bind(from)
            .bind(to)
            .fetch_all(self.pool)
            .await
            .map_err(db_err("reading checkpoints"))?;
        let signatures = sqlx::query(SELECT_CHECKPOINT_SIGNATURES)
            .bind(ledger.as_str())
            .bind(from)
            .bind(to)
            .fetch_all(self.pool)
            .await
            .map_err(db_err("reading checkpoint signatures"))?;
        checkpoints_of(&rows, &signatures)
    }

    /// The size of the latest checkpoint at most `at_most`, 0 when there is none.
    pub async fn latest_checkpoint_size(
        &self,
        ledger_id: Uuid,
        at_most: u64,
    ) -> Result<u64, StoreError> {
        let size: i64 = sqlx::query_scalar(LATEST_CHECKPOINT_SIZE)
            .bind(ledger_id.to_string())
            .bind(size_i64(at_most.min(i64::MAX as u64))?)
            .fetch_one(self.pool)
            .await
            .map_err(db_err("reading checkpoints"))?;
        Ok(size.max(0) as u64)
    }

    /// The largest size of a checkpoint with a signature line that came from `source`, 0 when
    /// none did.
    pub async fn witness_size(&self, ledger_id: Uuid, source: &str) -> Result<u64, StoreError> {
        let size: i64 = sqlx::query_scalar(WITNESS_SIZE)
            .bind(ledger_id.to_string())
            .bind(source)
            .fetch_one(self.pool)
            .await
            .map_err(db_err("reading checkpoint signatures"))?;
        Ok(size.max(0) as u64)
    }

    /// Replaces the projections of `ledger_id` with a replay of its events, inside `tx`, which
    /// the caller opened holding the ledger's write lock (so no append interleaves), and
    /// commits it. Returns how many events were replayed.
    pub async fn rebuild_projections(
        &self,
        mut tx: Transaction<'_, DB>,
        ledger_id: Uuid,
    ) -> Result<u64, StoreError> {
        let ledger = ledger_id.to_string();
        sqlx::query(PROJECTION_DELETE)
            .bind(ledger.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err("clearing the projections"))?;
        let mut after = 0;
        let mut replayed = 0u64;
        loop {
            let rows = sqlx::query(SELECT_PAGE)
                .bind(ledger.as_str())
                .bind(after)
                .bind(PAGE_ROWS)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err("reading events"))?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let event = row_to_event(row)?;
                after = event.seq as i64;
                self.apply_projection(&mut tx, &ledger, &event).await?;
                replayed += 1;
            }
        }
        tx.commit()
            .await
            .map_err(db_err("committing the rebuild"))?;
        Ok(replayed)
    }

    /// The general append's events, inserted in `tx`, which locked the head (`next_on_head`: its
    /// seq, its hash and the time to record), and committed: each sealed at the next version of
    /// its stream (`versions` holds the versions already read under the lock) and inserted with
    /// its projection changes. The schema's insert trigger moves the head.
    pub async fn insert_events(
        &self,
        mut tx: Transaction<'_, DB>,
        ledger_id: Uuid,
        (mut seq, mut prev_hash, recorded_at): (u64, [u8; 32], DateTime<Utc>),
        mut versions: HashMap<String, u64>,
        events: Vec<NewEvent>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let ledger = ledger_id.to_string();
        let mut stored = Vec::with_capacity(events.len());
        for new in events {
            let version = match versions.get(&new.stream_id) {
                Some(version) => *version,
                None => {
                    self.stream_version(&mut tx, &ledger, &new.stream_id)
                        .await?
                }
            } + 1;
            versions.insert(new.stream_id.clone(), version);
            let event = seal_checked(ledger_id, seq, version, recorded_at, prev_hash, new)?;
            bind_event(INSERT_EVENT, &ledger, &event)
                .execute(&mut *tx)
                .await
                .map_err(db_err("inserting an event"))?;
            self.apply_projection(&mut tx, &ledger, &event).await?;
            (seq, prev_hash) = (event.seq, event.hash);
            stored.push(event);
        }
        tx.commit().await.map_err(db_err("committing the append"))?;
        Ok(stored)
    }

    /// Runs the projection changes `event` causes on `conn` (inside the append's transaction).
    pub async fn apply_projection(
        &self,
        conn: &mut DB::Connection,
        ledger: &str,
        event: &StoredEvent,
    ) -> Result<(), StoreError> {
        for op in projection_ops(event)? {
            let (sql, doing) = PROJECTION.of(&op);
            bind_projection(sqlx::query(sql).bind(ledger), op)
                .execute(&mut *conn)
                .await
                .map_err(db_err(doing))?;
        }
        Ok(())
    }

    /// The last version of `stream_id` (0 when it has no event), read on `conn`.
    pub async fn stream_version(
        &self,
        conn: &mut DB::Connection,
        ledger: &str,
        stream_id: &str,
    ) -> Result<u64, StoreError> {
        let version: i64 = sqlx::query_scalar(STREAM_VERSION)
            .bind(ledger)
            .bind(stream_id)
            .fetch_one(conn)
            .await
            .map_err(db_err("reading a stream version"))?;
        Ok(version.max(0) as u64)
    }

    /// Creates the ledger row on `conn`, refused if the database holds a ledger already (one
    /// ledger per database). The caller holds the lock that keeps a concurrent `init` out.
    pub async fn create_ledger(
        &self,
        conn: &mut DB::Connection,
        ledger_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let existing: i64 = sqlx::query_scalar(COUNT_LEDGERS)
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err("counting ledgers"))?;
        if existing > 0 {
            return Err(StoreError::LedgerExists(ledger_id));
        }
        let stamp = format_timestamp(now);
        let inserted = sqlx::query(INSERT_LEDGER)
            .bind(ledger_id.to_string())
            .bind(&crate::crypto::canonical::GENESIS_PREV_HASH[..])
            .bind(stamp.as_str())
            .bind(stamp.as_str())
            .execute(conn)
            .await
            .map_err(db_err("creating the ledger"))?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::LedgerExists(ledger_id));
        }
        Ok(())
    }

    /// Closes the pool and the connection its process's appends share (another store's next
    /// append opens one if it needs it).
    pub async fn close<T: KeptWriter<Connection = DB::Connection>>(&self, turn: &TurnLock<T>) {
        let kept = turn.lock().await.kept().take();
        if let Some(conn) = kept {
            sqlx::Connection::close(conn).await.ok();
        }
        self.pool.close().await
    }
}

/// A backend's writer turn, as far as closing and tests see it: the connection its process's
/// appends keep between appends.
pub(super) trait KeptWriter {
    type Connection;
    fn kept(&mut self) -> &mut Option<Self::Connection>;
}

/// Whether this process's appends to the database now share a kept connection (for tests).
pub(super) async fn holds_kept_writer<T: KeptWriter>(turn: &TurnLock<T>) -> bool {
    turn.lock().await.kept().is_some()
}

/// sqlx offers `rows_affected` on each backend's result type, not on the `Database` trait.
pub(super) trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}
