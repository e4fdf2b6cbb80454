//! A client's state file: one local SQLite file per ledger holding the pin (the last head this
//! client verified and the auditor's state there), the hash of every event it verified, each
//! stream's verified version, and the projection of the verified events (the ledger's own
//! `proposals` table, made by the same statements). `pin.rs` decides what goes in; this file
//! only stores it.

use std::path::{Path, PathBuf};

use chrono::Utc;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

use super::queries::Queries;
use super::shared::hash32;
use super::{db_err, ProposalWindow, StoreError, LOCK_TIMEOUT};
use crate::domain::envelope::{format_timestamp, StoredEvent};
use crate::domain::layers::LayerKey;
use crate::domain::projection::ProposalRow;

/// The pin without the auditor's state (hundreds of KiB with many open proposals), which a
/// sync reads only when there is something new to verify (`StateWrite::auditor`).
const PIN: &str = "SELECT seq, head_hash, events_verified, syncs FROM pin WHERE ledger_id = $1";
const PIN_AUDITOR: &str = "SELECT auditor FROM pin WHERE ledger_id = $1";
const LAYER_BY_ID: &str = "SELECT layer_id, state FROM layers WHERE layer_id = $1";
const LAYER_BY_NUMBERS: &str = "SELECT layer_id, state FROM layers WHERE numbers_key = $1";
const ROLL_BY_ID: &str = "SELECT state FROM committed_rolls WHERE proposal_id = $1";
const ROLL_SAVE: &str = "INSERT INTO committed_rolls (proposal_id, state) VALUES ($1, $2) \
    ON CONFLICT (proposal_id) DO UPDATE SET state = excluded.state";
const LAYER_SAVE: &str = "INSERT INTO layers (layer_id, numbers_key, state) VALUES ($1, $2, $3) \
    ON CONFLICT (layer_id) DO UPDATE SET state = excluded.state";
const PIN_SAVE: &str = "INSERT INTO pin (ledger_id, seq, head_hash, auditor, events_verified, syncs, updated_at, layers_saved, rolls_saved) \
    VALUES ($1, $2, $3, $4, $5, 1, $6, (SELECT n FROM saved_rows WHERE kind = 'layers'), (SELECT n FROM saved_rows WHERE kind = 'committed_rolls')) \
    ON CONFLICT (ledger_id) DO UPDATE SET seq = excluded.seq, head_hash = excluded.head_hash, auditor = excluded.auditor, \
    events_verified = pin.events_verified + excluded.events_verified, syncs = pin.syncs + 1, updated_at = excluded.updated_at, \
    layers_saved = excluded.layers_saved, rolls_saved = excluded.rolls_saved";
/// The rows the last sync left against the rows the file holds now (`migrations/state/0006`).
const SAVED_ROWS: &str = "SELECT pin.layers_saved, layers.n, pin.rolls_saved, rolls.n \
    FROM pin, saved_rows AS layers, saved_rows AS rolls \
    WHERE pin.ledger_id = $1 AND layers.kind = 'layers' AND rolls.kind = 'committed_rolls'";
const OPEN_ALL: &str = "SELECT proposal_id, state FROM open_proposals";
const OPEN_BY_ID: &str = "SELECT state FROM open_proposals WHERE proposal_id = $1";
const OPEN_IDS: &str = "SELECT proposal_id FROM open_proposals";
const OPEN_SAVE: &str = "INSERT INTO open_proposals (proposal_id, state) VALUES ($1, $2) \
    ON CONFLICT (proposal_id) DO UPDATE SET state = excluded.state";
const OPEN_DELETE: &str = "DELETE FROM open_proposals WHERE proposal_id = $1";
const OPEN_COUNT: &str = "SELECT count(*) FROM open_proposals";
const CHAIN_INSERT: &str = "INSERT INTO chain (seq, hash) VALUES ($1, $2)";
const CHAIN_HASH: &str = "SELECT hash FROM chain WHERE seq = $1";
/// The seqs arrive as one JSON array: a stream's events in one query, not one query each.
const CHAIN_HASHES: &str =
    "SELECT seq, hash FROM chain WHERE seq IN (SELECT value FROM json_each($1))";
const STREAM_SAVE: &str = "INSERT INTO streams (stream_id, version, last_seq) VALUES ($1, $2, $3) \
    ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_seq = excluded.last_seq";
const STREAM: &str = "SELECT version, last_seq FROM streams WHERE stream_id = $1";

/// The pin: how far this client verified the ledger.
#[derive(Debug, Clone)]
pub struct PinRow {
    pub seq: u64,
    pub head_hash: [u8; 32],
    /// Events pushed through the auditor by every sync so far.
    pub events_verified: u64,
    /// Syncs that verified at least one event.
    pub syncs: u64,
}

/// An open state file.
#[derive(Debug, Clone)]
pub struct StateFile {
    pool: SqlitePool,
    path: PathBuf,
}

impl StateFile {
    /// Opens the state file at `path`, creating it when `create` (else `Ok(None)` when absent).
    pub async fn open(path: &Path, create: bool) -> Result<Option<StateFile>, StoreError> {
        if !create && !path.exists() {
            return Ok(None);
        }
        let failed = |error: sqlx::Error| StoreError::Open {
            url: path.display().to_string(),
            reason: error.to_string(),
        };
        // WAL + NORMAL: a commit lost to a power cut leaves an older pin, which is still a
        // head this client verified (the next sync verifies a little more); readers never
        // wait for a sync.
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(LOCK_TIMEOUT);
        // Clients starting at once may create the file together: switching a new file to WAL
        // takes a lock that SQLite's busy timeout does not wait for, so the loser of that race
        // is told `SQLITE_BUSY` at once. It tries again once the winner is through.
        let mut attempt = 0;
        let pool = loop {
            match SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .acquire_timeout(LOCK_TIMEOUT)
                .connect_with(options.clone())
                .await
            {
                Ok(pool) => break pool,
                Err(error) if attempt < 5 && busy(&error) => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                Err(error) => return Err(failed(error)),
            }
        };
        super::sqlite::migrate(&pool, &sqlx::migrate!("migrations/state"))
            .await
            .map_err(|reason| StoreError::Migrate {
                url: path.display().to_string(),
                reason,
            })?;
        Ok(Some(StateFile {
            pool,
            path: path.to_path_buf(),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pin of `ledger_id`, read without a lock.
    pub async fn pin(&self, ledger_id: Uuid) -> Result<Option<PinRow>, StoreError> {
        let row = sqlx::query(PIN)
            .bind(ledger_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("reading the pin"))?;
        row.map(|row| pin_row(&row)).transpose()
    }

    /// A saved closed layer (`Auditor::take_touched_layers`): its id and state.
    pub async fn layer(&self, key: &LayerKey) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        layer(&self.pool, key).await
    }

    /// Why rows the last sync left are missing now, if they are (`missing_rows`).
    pub async fn missing_rows(&self, ledger_id: Uuid) -> Result<Option<String>, StoreError> {
        missing_rows(&self.pool, ledger_id).await
    }

    /// Starts a sync: takes the file's write lock (`BEGIN IMMEDIATE`), so two clients on this
    /// machine sync one after the other and each starts from the pin the other left.
    pub async fn begin(&self) -> Result<StateWrite, StoreError> {
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err("locking the state file"))?;
        Ok(StateWrite {
            tx,
            pool: self.pool.clone(),
        })
    }

    /// The verified hash of the event at `seq`, if this client verified it.
    pub async fn hash_at(&self, seq: u64) -> Result<Option<[u8; 32]>, StoreError> {
        hash_at(&self.pool, seq).await
    }

    /// The verified hashes of the events at `seqs`, by seq; a seq this client did not verify
    /// is absent.
    pub async fn hashes_at(
        &self,
        seqs: &[u64],
    ) -> Result<std::collections::HashMap<u64, [u8; 32]>, StoreError> {
        let seqs_json = serde_json::to_string(seqs).expect("a list of integers serializes");
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(CHAIN_HASHES)
            .bind(seqs_json)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("reading verified hashes"))?;
        rows.into_iter()
            .map(|(seq, hash)| Ok((seq as u64, hash32(seq, "verified hash", hash)?)))
            .collect()
    }

    /// A verified stream's last version and the seq of that version.
    pub async fn stream(&self, stream_id: &str) -> Result<Option<(u64, u64)>, StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(STREAM)
            .bind(stream_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("reading a verified stream"))?;
        Ok(row.map(|(version, seq)| (version.max(0) as u64, seq.max(0) as u64)))
    }

    /// Verified projection rows of `window`, newest first.
    pub async fn proposal_window(
        &self,
        ledger_id: Uuid,
        window: &ProposalWindow<'_>,
    ) -> Result<Vec<ProposalRow>, StoreError> {
        Queries { pool: &self.pool }
            .proposal_window(ledger_id, window)
            .await
    }

    pub async fn proposal(
        &self,
        ledger_id: Uuid,
        proposal_id: &str,
    ) -> Result<Option<ProposalRow>, StoreError> {
        Queries { pool: &self.pool }
            .proposal(ledger_id, proposal_id)
            .await
    }

    pub async fn close(&self) {
        self.pool.close().await
    }
}

/// `SQLITE_BUSY`, with or without an extended code.
fn busy(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(error) => error
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| code & 0xff == 5),
        _ => false,
    }
}

async fn hash_at<'e>(
    executor: impl sqlx::Executor<'e, Database = Sqlite>,
    seq: u64,
) -> Result<Option<[u8; 32]>, StoreError> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as(CHAIN_HASH)
        .bind(seq as i64)
        .fetch_optional(executor)
        .await
        .map_err(db_err("reading a verified hash"))?;
    row.map(|(hash,)| hash32(seq as i64, "verified hash", hash))
        .transpose()
}

fn pin_row(row: &sqlx::sqlite::SqliteRow) -> Result<PinRow, StoreError> {
    let read = |source| StoreError::Database {
        doing: "reading the pin",
        source,
    };
    let seq: i64 = row.try_get("seq").map_err(read)?;
    Ok(PinRow {
        seq: seq.max(0) as u64,
        head_hash: hash32(seq, "pinned hash", row.try_get("head_hash").map_err(read)?)?,
        events_verified: row
            .try_get::<i64, _>("events_verified")
            .map_err(read)?
            .max(0) as u64,
        syncs: row.try_get::<i64, _>("syncs").map_err(read)?.max(0) as u64,
    })
}

/// A sync in progress: nothing it records is seen by anyone until `commit`; dropped, it rolls
/// back.
pub struct StateWrite {
    tx: Transaction<'static, Sqlite>,
    /// The file's pool, for the projection statements shared with the ledger's store.
    pool: SqlitePool,
}

impl StateWrite {
    /// The pin, read under the write lock.
    pub async fn pin(&mut self, ledger_id: Uuid) -> Result<Option<PinRow>, StoreError> {
        let row = sqlx::query(PIN)
            .bind(ledger_id.to_string())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err("reading the pin"))?;
        row.map(|row| pin_row(&row)).transpose()
    }

    pub async fn hash_at(&mut self, seq: u64) -> Result<Option<[u8; 32]>, StoreError> {
        hash_at(&mut *self.tx, seq).await
    }

    /// The auditor's state saved with the pin (`Auditor::snapshot`) and its open proposals
    /// (`Auditor::open_proposal`), by id.
    pub async fn auditor(&mut self, ledger_id: Uuid) -> Result<Vec<u8>, StoreError> {
        let (auditor,): (Vec<u8>,) = sqlx::query_as(PIN_AUDITOR)
            .bind(ledger_id.to_string())
            .fetch_one(&mut *self.tx)
            .await
            .map_err(db_err("reading the saved auditor state"))?;
        Ok(auditor)
    }

    /// Every saved open proposal (`Auditor::open_proposal`), by id.
    pub async fn open_proposals(&mut self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        sqlx::query_as(OPEN_ALL)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(db_err("reading the saved open proposals"))
    }

    /// One saved open proposal.
    pub async fn open_proposal(&mut self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Vec<u8>,)> = sqlx::query_as(OPEN_BY_ID)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err("reading a saved open proposal"))?;
        Ok(row.map(|(state,)| state))
    }

    /// The ids of the saved open proposals.
    pub async fn open_ids(&mut self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(OPEN_IDS)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(db_err("reading the saved open proposals"))?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    pub async fn layer(&mut self, key: &LayerKey) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        layer(&mut *self.tx, key).await
    }

    /// A saved committed roll (`Auditor::take_touched_rolls`).
    /// Why rows the last sync left are missing now, if they are (`missing_rows`).
    pub async fn missing_rows(&mut self, ledger_id: Uuid) -> Result<Option<String>, StoreError> {
        missing_rows(&mut *self.tx, ledger_id).await
    }

    pub async fn committed_roll(
        &mut self,
        proposal_id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Vec<u8>,)> = sqlx::query_as(ROLL_BY_ID)
            .bind(proposal_id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err("reading a saved committed roll"))?;
        Ok(row.map(|(state,)| state))
    }

    /// Saves a committed roll's state (`Auditor::take_touched_rolls`).
    pub async fn save_committed_roll(
        &mut self,
        proposal_id: &str,
        state: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(ROLL_SAVE)
            .bind(proposal_id)
            .bind(state)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err("saving a committed roll"))?;
        Ok(())
    }

    /// Saves a closed layer's state (`Auditor::take_touched_layers`).
    pub async fn save_layer(
        &mut self,
        layer_id: &str,
        numbers_key: &str,
        state: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(LAYER_SAVE)
            .bind(layer_id)
            .bind(numbers_key)
            .bind(state)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err("saving a closed layer"))?;
        Ok(())
    }

    /// Saves the state of the open proposal `id`, or removes it (`None`: it closed).
    pub async fn save_open(&mut self, id: &str, state: Option<&[u8]>) -> Result<(), StoreError> {
        let query = match state {
            Some(state) => sqlx::query(OPEN_SAVE).bind(id).bind(state),
            None => sqlx::query(OPEN_DELETE).bind(id),
        };
        query
            .execute(&mut *self.tx)
            .await
            .map_err(db_err("saving an open proposal"))?;
        Ok(())
    }

    /// How many open proposals are saved.
    pub async fn open_count(&mut self) -> Result<u64, StoreError> {
        let (count,): (i64,) = sqlx::query_as(OPEN_COUNT)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(db_err("counting the saved open proposals"))?;
        Ok(count.max(0) as u64)
    }

    /// Records an event the auditor accepted: its hash, its stream's version, its projection.
    pub async fn record(&mut self, ledger: &str, event: &StoredEvent) -> Result<(), StoreError> {
        sqlx::query(CHAIN_INSERT)
            .bind(event.seq as i64)
            .bind(&event.hash[..])
            .execute(&mut *self.tx)
            .await
            .map_err(db_err("recording a verified hash"))?;
        sqlx::query(STREAM_SAVE)
            .bind(event.stream_id.as_str())
            .bind(event.stream_version as i64)
            .bind(event.seq as i64)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err("recording a verified stream"))?;
        Queries { pool: &self.pool }
            .apply_projection(&mut self.tx, ledger, event)
            .await
    }

    /// Moves the pin to `(seq, head_hash)` with the auditor's state there; `pushed` events
    /// were verified to get there.
    pub async fn save_pin(
        &mut self,
        ledger_id: Uuid,
        (seq, head_hash): (u64, [u8; 32]),
        auditor: &[u8],
        pushed: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(PIN_SAVE)
            .bind(ledger_id.to_string())
            .bind(seq as i64)
            .bind(&head_hash[..])
            .bind(auditor)
            .bind(pushed as i64)
            .bind(format_timestamp(Utc::now()))
            .execute(&mut *self.tx)
            .await
            .map_err(db_err("moving the pin"))?;
        Ok(())
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx
            .commit()
            .await
            .map_err(db_err("committing the state file"))
    }
}

/// Whether closed layers or committed rolls went missing since the last sync saved them: a
/// lookup that found nothing asks this before taking "never saved" for an answer. `None` also
/// when the pin predates the counts (nothing to compare until its next sync).
async fn missing_rows<'e>(
    executor: impl sqlx::Executor<'e, Database = Sqlite>,
    ledger_id: Uuid,
) -> Result<Option<String>, StoreError> {
    let row: Option<(Option<i64>, i64, Option<i64>, i64)> = sqlx::query_as(SAVED_ROWS)
        .bind(ledger_id.to_string())
        .fetch_optional(executor)
        .await
        .map_err(db_err("counting the saved layers and rolls"))?;
    let Some((layers_saved, layers, rolls_saved, rolls)) = row else {
        return Ok(None);
    };
    let missing = |what: &str, saved: Option<i64>, now: i64| {
        saved.filter(|saved| *saved != now).map(|saved| {
            format!(
                "its last sync left {saved} saved {what}, it now holds {now}: rows were removed"
            )
        })
    };
    Ok(missing("closed layers", layers_saved, layers)
        .or_else(|| missing("committed rolls", rolls_saved, rolls)))
}

async fn layer<'e>(
    executor: impl sqlx::Executor<'e, Database = Sqlite>,
    key: &LayerKey,
) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    let (query, value) = match key {
        LayerKey::Id(id) => (LAYER_BY_ID, id),
        LayerKey::Numbers(numbers) => (LAYER_BY_NUMBERS, numbers),
    };
    sqlx::query_as(query)
        .bind(value)
        .fetch_optional(executor)
        .await
        .map_err(db_err("reading a saved closed layer"))
}
