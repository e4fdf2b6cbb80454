//! The event store over sqlx: the only module that speaks SQL.
//!
//! `Store` is the backend-neutral API. Each backend has its own file with its own append:
//! `sqlite.rs` (`BEGIN IMMEDIATE`, the CLI's append in two commands) and `postgres.rs` (the CLI's
//! append as one autocommit statement guarded by the schema's trigger, else a row-locked
//! transaction). `queries.rs` holds the statements both run alike (the reads, the projection
//! changes, the rebuild walk), generic over sqlx's `Database` with each backend's SQL text;
//! `shared.rs` holds what both use besides: the checks of an append, the seal check on
//! write and on read-back, row decoding and parameter binding, and the per-process writer turn.

#[macro_use]
mod shared;
mod checkpoints;
mod postgres;
mod queries;
mod sqlite;
pub mod state;

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::crypto::canonical::ChainHead;
use crate::domain::envelope::{NewEvent, StoredEvent};
use crate::domain::projection::ProposalRow;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// The default database: a SQLite file in the current directory.
pub const DEFAULT_DB_URL: &str = "sqlite://rollbook.db";
/// How long a writer waits for another writer's lock before giving up with a clear error.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// Rows fetched per page when walking the ledger: bounds memory whatever the ledger size.
pub const PAGE_ROWS: i64 = 512;

/// Where an append may land, judged under the write lock besides the stream versions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Landing {
    /// Refused with `DeadlinePassed` when the chain time would be later (nothing commits after
    /// its proposal's expiry).
    pub deadline: Option<DateTime<Utc>>,
    /// Refused with `HeadMoved` unless the first event follows exactly this head: an event
    /// whose signature binds the head it follows (docs/audit-format.md, "Bound heads").
    pub after_head: Option<ChainHead>,
}

impl Landing {
    /// Whether an event on `head_seq`/`head_hash` at `recorded_at` would be refused.
    pub(crate) fn refuses(
        &self,
        head_seq: u64,
        head_hash: &[u8; 32],
        recorded_at: DateTime<Utc>,
    ) -> bool {
        self.deadline.is_some_and(|deadline| recorded_at > deadline)
            || self
                .after_head
                .is_some_and(|head| head.seq != head_seq || &head.hash != head_hash)
    }
}

/// The ledger's head and clock, read together: what a command decides on and appends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainNow {
    pub head: ChainHead,
    /// The time the head event recorded.
    pub head_time: DateTime<Utc>,
    /// The ledger's clock: on PostgreSQL the server's, read in the statement that read the
    /// head; on SQLite the machine's (the time the caller passes).
    pub clock: DateTime<Utc>,
}

/// What the caller expects of a stream before its append (optimistic concurrency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last version must be exactly this.
    Exact(u64),
}

/// A signed checkpoint to store: the note as its log signer signed it, and the tree it states
/// (size and root), which the caller computed from the ledger's events and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewCheckpoint<'a> {
    pub tree_size: u64,
    pub root: [u8; 32],
    /// The signed note: body, blank line, signature lines, each line ending in a newline.
    pub note: &'a str,
}

/// A stored checkpoint as read back, unjudged: its note must still be parsed and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub tree_size: u64,
    pub root: [u8; 32],
    pub note: String,
    /// When it was stored (the ledger's clock).
    pub recorded_at: String,
    /// Signature lines added after it was stored (a cosignature, another signer's), in the
    /// order they were added. `checkpoint::assembled_note` makes the note shown and exported.
    pub added: Vec<AddedSignature>,
}

/// A signature line added to a stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedSignature {
    /// The line, without its newline.
    pub line: String,
    /// The witness it came from, `<cosigner vkey> <submission URL>`
    /// (`checkpoint::witness_source`); `None` for a log signer's signature.
    pub source: Option<String>,
    pub recorded_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("there is no database at {url}: create a ledger there with `rollbook init`, or pass --db with the right path")]
    Missing { url: String },
    #[error("cannot migrate database {url}: {reason}")]
    Migrate { url: String, reason: String },
    #[error("{url} is not a supported database URL: use sqlite://PATH or postgres://...")]
    UnsupportedUrl { url: String },
    #[error("version conflict on stream {stream_id}: expected {expected}, found version {actual}; another command wrote to it first, re-read and try again")]
    Conflict {
        stream_id: String,
        expected: String,
        actual: u64,
    },
    /// The head moved since the caller read it: a signature binding the old head must be made
    /// again on the new one.
    #[error("the ledger head moved from seq {expected} to seq {actual} since it was read; sign again on the new head")]
    HeadMoved { expected: u64, actual: u64 },
    #[error("ledger {0} does not exist in this database")]
    NoSuchLedger(Uuid),
    #[error("a ledger can only be created by its first event; ledger {0} already exists")]
    LedgerExists(Uuid),
    #[error("the deadline {deadline} passed before the append could be recorded (ledger time {recorded_at})")]
    DeadlinePassed {
        deadline: String,
        recorded_at: String,
    },
    #[error("gave up after {seconds} s waiting for this process's other appends to the same database to finish")]
    WriterTurnTimeout { seconds: u64 },
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    #[error("the write stopped unexpectedly ({0}); whether it committed is unknown: read the ledger head before retrying")]
    WriteAborted(String),
    #[error("database error while {doing}: {source}")]
    Database {
        doing: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// A connection that was open is gone (the server restarted, the network dropped it).
    #[error("the database connection was lost: {0}")]
    ConnectionLost(String),
    #[error("stored row at seq {seq} is unreadable: {reason}")]
    CorruptRow { seq: i64, reason: String },
    /// An event whose recorded hash is not the hash of its contents: checked before every
    /// write and on every read, so an altered row is refused, never used.
    #[error("the event at seq {seq} does not match its recorded hash: its contents were altered")]
    HashMismatch {
        seq: u64,
        /// The hash recorded with the event.
        stored: [u8; 32],
        /// The hash of the event's contents.
        computed: [u8; 32],
    },
}

pub(crate) fn db_err(doing: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { doing, source }
}

/// What one store's appends did, counted per store (clones share the counts): observations for
/// tests and diagnostics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AppendCounts {
    /// PostgreSQL: appends recorded by one autocommit statement.
    pub one_statement: u64,
    /// Of those, sealed on the head this process's previous append committed, without reading it.
    pub on_remembered_head: u64,
    /// Connections this store opened for the appends its process shares after its first.
    pub kept_writer_opened: u64,
}

/// `StoreError::Open` for `url` (shown without its password), from the error that stopped it.
fn open_failed(url: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |error| StoreError::Open {
        url: redact_url(url),
        reason: error.to_string(),
    }
}

/// The URL without its password, for error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Which projection rows a view reads, newest first: what it shows and no more.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProposalWindow<'a> {
    /// Only rows of this stored status (a pending row may show as expired: the caller judges).
    pub status: Option<&'a str>,
    /// Only proposals created at or after this canonical timestamp.
    pub since: Option<&'a str>,
    /// Only proposals recorded before this seq (the next page after a window's last row).
    pub before_seq: Option<u64>,
    /// At most this many rows (all when `None`).
    pub limit: Option<u64>,
}

/// Part of a proposal id, as people type one: its last 12 characters (the short id `list`
/// shows) or its first 8 (the start of any longer prefix).
#[derive(Debug, Clone, Copy)]
pub enum IdPart<'a> {
    Tail(&'a str),
    Head(&'a str),
}

/// An open event store on one of the two backends.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $body:expr) => {
        match $self {
            Store::Sqlite($store) => $body,
            Store::Postgres($store) => $body,
        }
    };
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the database at `url`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_with(url, true).await
    }

    /// Opens an existing database: a SQLite file that does not exist is an error rather than
    /// created, so a mistyped `--db` leaves no stray files behind.
    pub async fn open_existing(url: &str) -> Result<Store, StoreError> {
        Self::open_with(url, false).await
    }

    async fn open_with(url: &str, create: bool) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(SqliteStore::open(url, create).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(PostgresStore::open(url).await?))
        } else {
            Err(StoreError::UnsupportedUrl {
                url: redact_url(url),
            })
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Appends `events` atomically after checking each stream's expected version. Writers of one
    /// ledger are serialized on its head. `now` is a reading of the ledger's clock (`clock`,
    /// `chain_now`; the service never passes a client's), clamped onto the head's time so time
    /// never goes backwards along the chain. `create` must be true exactly for the first append
    /// of a ledger.
    // Its parameters are `append_before`'s, as are each backend's `append` and `append_locked`:
    // one append's arguments passed on, not logic written twice (duplicates lists them).
    pub async fn append(
        &self,
        ledger_id: Uuid,
        create: bool,
        expected: &[(String, ExpectedVersion)],
        events: Vec<NewEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.append_before(ledger_id, create, expected, events, now, Landing::default())
            .await
    }

    /// Like `append`, refused with `DeadlinePassed` when the time recorded on the chain (decided
    /// inside the lock) would be later than `deadline`: nothing commits after its expiry.
    ///
    /// A dropped append leaves whole events or none, and the caller learns nothing of which: on
    /// SQLite it stops where it was and rolls back unless its commit was already sent; on
    /// PostgreSQL it runs to its commit or its rollback on a task of its own. A caller that
    /// retries after giving up must expect the first attempt to have committed (the CLI's
    /// appends carry expected stream versions, so a second copy is refused as a conflict).
    pub async fn append_before(
        &self,
        ledger_id: Uuid,
        create: bool,
        expected: &[(String, ExpectedVersion)],
        events: Vec<NewEvent>,
        now: DateTime<Utc>,
        landing: Landing,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        shared::validate_append(expected, &events)?;
        let postgres = match self {
            // SQLite's transactions survive a cut at any await: sqlx rolls back a `BEGIN` whose
            // reply was not taken, and a dropped transaction on the connection's own thread, and
            // `OpenWrite` the two-command append's (tests/store.rs, the two cut-append tests).
            // A task per append cost 8 writers a tenth of their rate (BENCHMARKS.md).
            Store::Sqlite(store) => {
                return store
                    .append(ledger_id, create, expected, events, now, landing)
                    .await
            }
            Store::Postgres(store) => store.clone(),
        };
        // On PostgreSQL the append runs to its end on a task of its own, even when the caller
        // stops waiting (a timeout, a dropped future): sqlx's `begin` cut after its `BEGIN` was
        // sent queues no rollback, and that connection, back in the pool inside the
        // transaction, then held the head's row lock of the next autocommit append until the
        // lock timeout (tests/store.rs, cancelled appends). A caller that stops waiting learns
        // nothing of the outcome, as with any database write whose reply is lost.
        let expected = expected.to_vec();
        let appending = tokio::spawn(async move {
            postgres
                .append(ledger_id, create, &expected, events, now, landing)
                .await
        });
        match appending.await {
            Ok(appended) => appended,
            // A bug, not an outcome: it surfaces as the panic it is.
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(StoreError::WriteAborted(error.to_string())),
        }
    }

    /// The ledger's clock, for a command whose own clock reads `local`: PostgreSQL's server
    /// clock (`clock_timestamp()`), SQLite's `local` (the machine's clock, whose process
    /// passes it).
    pub async fn clock(&self, local: DateTime<Utc>) -> Result<DateTime<Utc>, StoreError> {
        match self {
            Store::Sqlite(_) => Ok(local),
            Store::Postgres(store) => store.clock(local).await,
        }
    }

    /// The head, its time and the ledger's clock (`clock`), in one round trip.
    pub async fn chain_now(
        &self,
        ledger_id: Uuid,
        local: DateTime<Utc>,
    ) -> Result<ChainNow, StoreError> {
        let found =
            match self {
                Store::Sqlite(store) => store.queries().head_with_time(ledger_id).await?.map(
                    |(seq, hash, head_time)| ChainNow {
                        head: ChainHead { seq, hash },
                        head_time,
                        clock: local,
                    },
                ),
                Store::Postgres(store) => store.chain_now(ledger_id, local).await?,
            };
        found.ok_or(StoreError::NoSuchLedger(ledger_id))
    }

    /// This store with the caller's clock as the ledger's (`clock`, `chain_now`) on PostgreSQL
    /// too, as on SQLite: for tests and fixtures that build a ledger at times they choose. A
    /// command never opens a store this way.
    #[doc(hidden)]
    pub fn trusting_caller_clock(self) -> Store {
        match self {
            Store::Postgres(mut store) => {
                store.caller_clock = true;
                Store::Postgres(store)
            }
            sqlite => sqlite,
        }
    }

    /// Every ledger id in this database, oldest first.
    pub async fn ledger_ids(&self) -> Result<Vec<Uuid>, StoreError> {
        dispatch!(self, store => store.queries().ledger_ids().await)
    }

    /// The head (last seq and its hash) in O(1); `None` when the ledger does not exist.
    pub async fn head(&self, ledger_id: Uuid) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        dispatch!(self, store => store.queries().head(ledger_id).await)
    }

    /// The events of one stream in order, read through the (ledger, stream, version) index.
    pub async fn read_stream(
        &self,
        ledger_id: Uuid,
        stream_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        dispatch!(self, store => store.queries().read_stream(ledger_id, stream_id).await)
    }

    /// One page of events with seq > `after_seq`, in seq order: walking the ledger page by page
    /// keeps memory constant however long it is.
    pub async fn read_page(
        &self,
        ledger_id: Uuid,
        after_seq: u64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let (events, failure) =
            dispatch!(self, store => store.queries().read_page(ledger_id, after_seq, limit).await)?;
        match failure {
            Some(error) => Err(error),
            None => Ok(events),
        }
    }

    /// Calls `visit` on every event from `from_seq` on, in seq order, a page at a time.
    pub async fn for_each_event<E: From<StoreError>>(
        &self,
        ledger_id: Uuid,
        from_seq: u64,
        mut visit: impl FnMut(StoredEvent) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut after = from_seq.saturating_sub(1);
        loop {
            let (page, failure) = dispatch!(self, store => store.queries().read_page(ledger_id, after, PAGE_ROWS).await)?;
            // The events before a row that fails its checks are visited first, so a verifier
            // still names the first broken seq, whatever broke it.
            let last = page.last().map(|event| event.seq);
            for event in page {
                visit(event)?;
            }
            match (failure, last) {
                (Some(error), _) => return Err(error.into()),
                (None, None) => return Ok(()),
                (None, Some(last)) => after = last,
            }
        }
    }

    /// Recomputes the projections of `ledger_id` from its events alone, in one transaction.
    pub async fn rebuild_projections(&self, ledger_id: Uuid) -> Result<u64, StoreError> {
        // On a task of its own, as `append_before` explains: a transaction cut at an arbitrary
        // await could go back to the pool still open.
        let store = self.clone();
        let rebuilding = tokio::spawn(async move {
            let store = &store;
            dispatch!(store, store => store.rebuild_projections(ledger_id).await)
        });
        match rebuilding.await {
            Ok(rebuilt) => rebuilt,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(StoreError::WriteAborted(error.to_string())),
        }
    }

    /// Whether this process's appends to this database share a kept connection (for tests).
    #[doc(hidden)]
    pub async fn holds_kept_writer(&self) -> bool {
        dispatch!(self, store => store.holds_kept_writer().await)
    }

    /// What this store's appends did (for tests and diagnostics).
    #[doc(hidden)]
    pub fn append_counts(&self) -> AppendCounts {
        dispatch!(self, store => store.append_counts())
    }

    /// PostgreSQL: the seq of the head this process's last append committed, on which its next
    /// append seals without reading the head (for tests).
    #[doc(hidden)]
    pub async fn remembered_head(&self) -> Option<u64> {
        match self {
            Store::Sqlite(_) => None,
            Store::Postgres(store) => store.remembered_head().await,
        }
    }

    /// Every proposal id this ledger ever recorded that has `part`, read from the events (the
    /// projection may be rebuilt or altered; the first event of a stream never changes).
    pub async fn proposal_ids_with(
        &self,
        ledger_id: Uuid,
        part: IdPart<'_>,
    ) -> Result<Vec<String>, StoreError> {
        dispatch!(self, store => store.queries().stream_ids_with(ledger_id, part).await)
    }

    /// Projection rows, oldest first, optionally filtered by stored status.
    pub async fn proposals(
        &self,
        ledger_id: Uuid,
        status: Option<&str>,
    ) -> Result<Vec<ProposalRow>, StoreError> {
        let window = ProposalWindow {
            status,
            ..ProposalWindow::default()
        };
        let mut rows = self.proposal_window(ledger_id, &window).await?;
        rows.reverse();
        Ok(rows)
    }

    /// The projection rows of `window`, newest first (by the seq of their recording).
    pub async fn proposal_window(
        &self,
        ledger_id: Uuid,
        window: &ProposalWindow<'_>,
    ) -> Result<Vec<ProposalRow>, StoreError> {
        dispatch!(self, store => store.queries().proposal_window(ledger_id, window).await)
    }

    pub async fn proposal(
        &self,
        ledger_id: Uuid,
        proposal_id: &str,
    ) -> Result<Option<ProposalRow>, StoreError> {
        dispatch!(self, store => store.queries().proposal(ledger_id, proposal_id).await)
    }

    /// Stores a signed checkpoint beside the chain; false (nothing written) when the ledger
    /// holds one of that size already. The database refuses a size beyond its head.
    pub async fn add_checkpoint(
        &self,
        ledger_id: Uuid,
        checkpoint: &NewCheckpoint<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, store => store.queries().add_checkpoint(ledger_id, checkpoint, now).await)
    }

    /// Adds a signature line (without its newline) to the stored checkpoint of `tree_size`;
    /// false when that line is stored already. `source` is the witness it came from
    /// (`checkpoint::witness_source`).
    pub async fn add_checkpoint_signature(
        &self,
        ledger_id: Uuid,
        tree_size: u64,
        line: &str,
        source: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, store => store.queries().add_checkpoint_signature(ledger_id, tree_size, line, source, now).await)
    }

    /// The stored checkpoints of sizes `from..=to`, smallest first, with their added signatures.
    pub async fn checkpoints(
        &self,
        ledger_id: Uuid,
        from: u64,
        to: u64,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        dispatch!(self, store => store.queries().checkpoints(ledger_id, from, to).await)
    }

    /// The stored checkpoint of exactly `tree_size`, or the latest when `None`.
    pub async fn checkpoint(
        &self,
        ledger_id: Uuid,
        tree_size: Option<u64>,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let size = match tree_size {
            Some(size) => size,
            None => {
                dispatch!(self, store => store.queries().latest_checkpoint_size(ledger_id, u64::MAX).await)?
            }
        };
        if size == 0 {
            return Ok(None);
        }
        Ok(self.checkpoints(ledger_id, size, size).await?.pop())
    }

    /// The largest checkpoint size a signature line from `source` (a witness) was stored
    /// for; 0 when none was.
    pub async fn witness_size(&self, ledger_id: Uuid, source: &str) -> Result<u64, StoreError> {
        dispatch!(self, store => store.queries().witness_size(ledger_id, source).await)
    }

    pub async fn close(&self) {
        dispatch!(self, store => store.close().await)
    }

    /// What tells a follower (`rollbook watch`) that a ledger may have moved: on PostgreSQL a
    /// listener of the notifications every event insert sends (migration 0008), on SQLite a
    /// timer. Either is a hint to read the ledger again, never an event to report.
    pub async fn append_hints(&self) -> Result<AppendHints, StoreError> {
        match self {
            Store::Sqlite(_) => Ok(AppendHints::Poll),
            Store::Postgres(store) => Ok(AppendHints::Listen(Box::new(store.listener().await?))),
        }
    }
}

/// See `Store::append_hints`.
pub enum AppendHints {
    Poll,
    Listen(Box<sqlx::postgres::PgListener>),
}

impl AppendHints {
    /// Returns when `ledger_id` may have moved: after `poll` on SQLite; on PostgreSQL at its
    /// next notification, or after `fallback` without one (expiries come without events). A
    /// lost connection is an error: the follower reconnects and reads again, since
    /// notifications sent meanwhile are gone.
    pub async fn wait(
        &mut self,
        ledger_id: Uuid,
        poll: Duration,
        fallback: Duration,
    ) -> Result<(), StoreError> {
        match self {
            AppendHints::Poll => {
                tokio::time::sleep(poll).await;
                Ok(())
            }
            AppendHints::Listen(listener) => {
                let ours = format!("{ledger_id}:");
                let wait = async {
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(hint)) if hint.payload().starts_with(&ours) => return Ok(()),
                            // Another ledger of the same database (channels are per database).
                            Ok(Some(_)) => continue,
                            Ok(None) => {
                                return Err(StoreError::ConnectionLost(
                                    "the notification connection closed".into(),
                                ))
                            }
                            Err(error) => {
                                return Err(StoreError::ConnectionLost(error.to_string()))
                            }
                        }
                    }
                };
                match tokio::time::timeout(fallback, wait).await {
                    Ok(result) => result,
                    Err(_elapsed) => Ok(()),
                }
            }
        }
    }
}
