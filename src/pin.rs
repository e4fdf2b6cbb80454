//! Client pins: every command that reads a ledger first verifies it from the last head this
//! client verified (its pin) to the database's current head, with the streaming auditor resumed
//! from its saved state, and reads through what it verified. A database whose history no longer
//! extends the pin, or whose new events fail a rule, is refused before anything is decided or
//! shown. The state lives in one file per ledger in the state directory (`store::state`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::audit::auditor::{AuditFailure, Auditor, Saved};
use crate::crypto::to_hex;
use crate::domain::approval::{LayerBook, ProposalState};
use crate::domain::chain::ChainHead;
use crate::domain::envelope::{format_timestamp, StoredEvent};
use crate::domain::events::LEDGER_STREAM;
use crate::domain::projection::ProposalRow;
use crate::sizing::Proposal;
use crate::store::state::{PinRow, StateFile, StateWrite};
use crate::store::{ProposalWindow, Store, StoreError, PAGE_ROWS};

/// Where pins live unless `ROLLBOOK_STATE_DIR` says otherwise: `$XDG_STATE_HOME/rollbook`, else
/// `~/.local/state/rollbook`.
pub const STATE_DIR_ENV: &str = "ROLLBOOK_STATE_DIR";

/// A head moved by honest writers while a view compared the database with its pin: sync and
/// compare again, at most this many times, before calling the difference a tamper.
const RESYNCS_MAX: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The database's history no longer extends the pinned head.
    #[error("ledger {ledger_id} no longer extends the head this client verified (seq {pinned_seq}, hash {pinned_hash}): it diverges at seq {seq}: {detail}. The database was rewritten or restored from a backup: do not trust it and do not sign on it. Once you know why, start over by removing {state_file}; the next command verifies the ledger from genesis")]
    Diverged {
        ledger_id: Uuid,
        pinned_seq: u64,
        pinned_hash: String,
        seq: u64,
        detail: String,
        state_file: PathBuf,
    },
    /// An event after the pin breaks a rule: nothing was verified past it, nothing is written.
    #[error("ledger {ledger_id} fails verification at seq {}: {}; this client verified it up to seq {pinned_seq} and stops there: nothing was written. Run `rollbook verify` and find out who wrote that event", failure.seq, failure.reason)]
    Invalid {
        ledger_id: Uuid,
        pinned_seq: u64,
        failure: AuditFailure,
    },
    /// The database's projection or a stream read from it differs from the verified events.
    #[error("{what}; the database disagrees with the events this client verified (up to seq {pinned_seq}). If only the `proposals` table differs, `rollbook rebuild` recomputes it from the events")]
    Disagrees { what: String, pinned_seq: u64 },
    /// The ledger's clock (the database server's) and this machine's disagree: events checked
    /// against a server clock someone set ahead would enter the pin, so none are.
    #[error("this machine's clock ({local_time}) differs from the ledger's clock ({ledger_time}, the database server's) by more than timing.clock_skew_max_seconds ({max_seconds} s): nothing new was verified or shown. Set the clock that is wrong right (NTP); if the server's runs ahead, events written meanwhile lie in the future and `rollbook verify` names them (T1)")]
    ClockSkew {
        local_time: String,
        ledger_time: String,
        max_seconds: u32,
    },
    #[error("no state directory for pins: set {STATE_DIR_ENV} (or XDG_STATE_HOME or HOME)")]
    NoStateDir,
    #[error("cannot use the state directory {path}: {reason}")]
    StateDir { path: PathBuf, reason: String },
    #[error("state file: {0}")]
    State(StoreError),
    /// This machine's saved state does not read back (damaged, or written by another version).
    #[error("the state file {} does not read back at seq {seq}: {reason}. It only caches what this machine verified: remove it, and the next command verifies the ledger again from genesis", state_file.display())]
    SavedState {
        state_file: PathBuf,
        seq: u64,
        reason: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The state directory: `ROLLBOOK_STATE_DIR`, else `$XDG_STATE_HOME/rollbook`, else
/// `$HOME/.local/state/rollbook` (XDG Base Directory: state that should persist but is not
/// worth backing up with documents; it is rebuilt from genesis when missing).
pub fn state_dir() -> Result<PathBuf, PinError> {
    let set = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(dir) = set(STATE_DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = set("XDG_STATE_HOME") {
        return Ok(PathBuf::from(dir).join("rollbook"));
    }
    set("HOME")
        .map(|home| PathBuf::from(home).join(".local/state/rollbook"))
        .ok_or(PinError::NoStateDir)
}

/// The state file of `ledger_id` in `dir`.
pub fn state_file(dir: &Path, ledger_id: Uuid) -> PathBuf {
    dir.join(format!("ledger-{ledger_id}.db"))
}

/// A pin as tests and `verify FILE` see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub seq: u64,
    pub head_hash: [u8; 32],
    pub events_verified: u64,
    pub syncs: u64,
}

/// The pin of `ledger_id` in `dir`, read only (no file is created).
pub async fn pinned(dir: &Path, ledger_id: Uuid) -> Result<Option<Pin>, PinError> {
    let path = state_file(dir, ledger_id);
    if path.exists() {
        check_private(dir, &path)?;
    }
    let Some(state) = StateFile::open(&path, false)
        .await
        .map_err(PinError::State)?
    else {
        return Ok(None);
    };
    let pin = state.pin(ledger_id).await.map_err(PinError::State)?;
    state.close().await;
    Ok(pin.map(|pin| Pin {
        seq: pin.seq,
        head_hash: pin.head_hash,
        events_verified: pin.events_verified,
        syncs: pin.syncs,
    }))
}

/// A ledger verified up to its pin, and the way to read it through what was verified.
pub struct Verified {
    pub ledger_id: Uuid,
    /// The pinned head: seq and hash.
    pub seq: u64,
    pub head_hash: [u8; 32],
    /// Events this command verified (0 when the pin was already at the head).
    pub verified_now: u64,
    /// The ledger's clock, read with the head this sync verified to (`Store::chain_now`): the
    /// time views judge expiry on.
    pub ledger_clock: chrono::DateTime<chrono::Utc>,
    state: StateFile,
}

/// Verifies `ledger_id` in `store` from this client's pin (from genesis without one) to its
/// head and moves the pin there.
pub async fn sync(store: &Store, ledger_id: Uuid, dir: &Path) -> Result<Verified, PinError> {
    create_private_dir(dir)?;
    // Checked before SQLite opens or creates anything: the directory, then the files in it
    // (once the directory is this user's alone, nobody else can put a file there).
    let path = state_file(dir, ledger_id);
    check_private(dir, &path)?;
    let state = StateFile::open(&path, true)
        .await
        .map_err(PinError::State)?
        .expect("created when missing");
    let mut verified = Verified {
        ledger_id,
        seq: 0,
        head_hash: [0; 32],
        verified_now: 0,
        ledger_clock: chrono::Utc::now(),
        state,
    };
    verified.sync(store).await?;
    Ok(verified)
}

/// Check A11 for heads bound before the pin: a resumed auditor holds no hashes from before it
/// resumed, so the heads its signatures bind there are checked against the hashes this client
/// verified then.
async fn check_deferred_heads(
    write: &mut StateWrite,
    auditor: &mut Auditor,
) -> Result<(), Result<AuditFailure, PinError>> {
    for (seq, bound) in auditor.take_deferred_heads() {
        let verified = write
            .hash_at(bound.seq)
            .await
            .map_err(|error| Err(PinError::State(error)))?;
        if verified != Some(bound.hash) {
            return Err(Ok(AuditFailure {
                seq,
                reason: format!(
                    "its signature binds the head at seq {} with hash {}, which is not the event this client verified there (A11)",
                    bound.seq,
                    to_hex(&bound.hash)
                ),
            }));
        }
    }
    Ok(())
}

/// The state directory, created (with any missing parent) private to this user, mode 0700.
fn create_private_dir(dir: &Path) -> Result<(), PinError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|error| PinError::StateDir {
        path: dir.to_path_buf(),
        reason: error.to_string(),
    })
}

/// Pins say what this user verified, and whoever can write a state file can move its pin to a
/// ledger of their making, or remove it so that the next command trusts the ledger afresh:
/// the state directory, the state file and SQLite's `-wal` and `-shm` files beside it must be
/// this user's and writable by nobody else. Nothing is repaired: a directory others could
/// write may already have lost its pins, which its owner should know.
fn check_private(dir: &Path, file: &Path) -> Result<(), PinError> {
    #[cfg(unix)]
    check_owned(dir, &state_metadata(dir, std::fs::metadata(dir))?)?;
    check_files_private(file)
}

/// The state file and SQLite's `-wal` and `-shm` files beside it, those that exist, are this
/// user's own files (not links) and writable by nobody else.
fn check_files_private(file: &Path) -> Result<(), PinError> {
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        let mut path = file.as_os_str().to_owned();
        path.push(suffix);
        let path = PathBuf::from(path);
        match std::fs::symlink_metadata(&path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            found => check_owned(&path, &state_metadata(&path, found)?)?,
        }
    }
    Ok(())
}

#[cfg(unix)]
fn state_metadata(
    path: &Path,
    read: std::io::Result<std::fs::Metadata>,
) -> Result<std::fs::Metadata, PinError> {
    read.map_err(|error| PinError::StateDir {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })
}

/// `path` (of `metadata`) belongs to this process's user, is no symbolic link and is writable
/// by nobody else.
#[cfg(unix)]
fn check_owned(path: &Path, metadata: &std::fs::Metadata) -> Result<(), PinError> {
    use std::os::unix::fs::MetadataExt;
    let user = rustix::process::geteuid().as_raw();
    let problem = if metadata.file_type().is_symlink() {
        "it is a symbolic link".to_string()
    } else if metadata.uid() != user {
        format!(
            "it belongs to user {}, not to this user ({user})",
            metadata.uid()
        )
    } else if metadata.mode() & 0o022 != 0 {
        format!(
            "it is writable by others (mode {:o})",
            metadata.mode() & 0o777
        )
    } else {
        return Ok(());
    };
    Err(PinError::StateDir {
        path: path.to_path_buf(),
        reason: format!(
            "{problem}: another user could replace or remove the pins it holds. Make it yours alone (mode 0700 for a directory, 0600 for a file) or set {STATE_DIR_ENV} to a directory of your own"
        ),
    })
}

impl Verified {
    /// The hash of the event this client verified at `seq` (none past its pin).
    pub async fn verified_hash_at(&self, seq: u64) -> Result<Option<[u8; 32]>, PinError> {
        self.state.hash_at(seq).await.map_err(PinError::State)
    }

    /// What a roll `proposal` recorded at the database's head would be judged on: syncs to
    /// the head, then the closed layers it names or whose numbers it carries, as the auditor
    /// saved them there; and that head. (A concurrent sync may have saved layers of a later
    /// head: an append bound to this head is then refused, and drafted again.)
    pub async fn layers(
        &mut self,
        store: &Store,
        proposal: &Proposal,
    ) -> Result<(ChainHead, LayerBook), PinError> {
        self.sync(store).await?;
        let mut layers = LayerBook::default();
        for key in layers.wanted_for_recording(proposal) {
            let saved = self.state.layer(&key).await.map_err(PinError::State)?;
            let loaded = match saved {
                Some((id, state)) => layers.load(&id, &state),
                // Not saved: a layer the ledger never had, unless rows went missing; drafting
                // on a budget this file no longer sees would write a roll every other client
                // refuses.
                None => match self.state.missing_rows(self.ledger_id).await {
                    Ok(missing) => missing.map_or(Ok(()), Err),
                    Err(error) => return Err(PinError::State(error)),
                },
            };
            loaded.map_err(|reason| saved_state_error(self.state.path(), self.seq, reason))?;
        }
        let head = ChainHead {
            seq: self.seq,
            hash: self.head_hash,
        };
        Ok((head, layers))
    }

    /// Verifies what the database added since the pin and moves the pin, in one transaction of
    /// the state file (under its write lock, so concurrent syncs follow each other).
    async fn sync(&mut self, store: &Store) -> Result<(), PinError> {
        let ledger_id = self.ledger_id;
        let mut write = self.state.begin().await.map_err(PinError::State)?;
        let pin = write.pin(ledger_id).await.map_err(PinError::State)?;
        // The ledger's clock, read with the head, is the one new events are checked against
        // (T1): on PostgreSQL the server's, so a client whose own clock is off learns it from
        // its command's clock check, not as an invalid ledger.
        let local = chrono::Utc::now();
        let chain_now = store.chain_now(ledger_id, local).await?;
        let clock_read = std::time::Instant::now();
        let head = (chain_now.head.seq, chain_now.head.hash);
        self.ledger_clock = chain_now.clock;
        let mut auditor = match &pin {
            Some(pin) => {
                self.check_extends(store, &mut write, pin, head).await?;
                if (pin.seq, pin.head_hash) == head {
                    // Nothing new: the saved auditor state is not even read.
                    (self.seq, self.head_hash, self.verified_now) = (pin.seq, pin.head_hash, 0);
                    return Ok(());
                }
                restore(
                    &mut write,
                    self.state.path(),
                    ledger_id,
                    pin.seq,
                    chain_now.clock,
                )
                .await?
            }
            None => Auditor::new(chain_now.clock),
        };
        // T1 is judged on the ledger's clock, which whoever runs the database can set; a new
        // event is taken into the pin only while that clock agrees with this machine's.
        let skew_max_seconds = auditor.clock_skew_max_seconds();
        if (local - chain_now.clock).abs() > chrono::Duration::seconds(i64::from(skew_max_seconds))
        {
            return Err(PinError::ClockSkew {
                local_time: format_timestamp(local),
                ledger_time: format_timestamp(chain_now.clock),
                max_seconds: skew_max_seconds,
            });
        }
        let invalid = |failure: AuditFailure| PinError::Invalid {
            ledger_id,
            pinned_seq: pin.as_ref().map_or(0, |pin| pin.seq),
            failure,
        };
        let mut touched = BTreeSet::new();
        let pushed = self
            .walk(store, &mut write, &mut auditor, &mut touched, |auditor| {
                // The ledger's clock as read, moved on by the time the walk has taken (T1).
                let elapsed = chrono::Duration::from_std(clock_read.elapsed()).unwrap_or_default();
                auditor.set_verifier_clock(chain_now.clock + elapsed);
            })
            .await
            .map_err(|error| match error {
                Ok(failure) => invalid(failure),
                Err(error) => error,
            })?;
        auditor.check_complete().map_err(invalid)?;
        let reached = (auditor.events(), auditor.head_hash());
        // Honest writers may have appended since the head was read, never removed anything.
        if reached.0 < head.0 || (reached.0 == head.0 && reached.1 != head.1) {
            return Err(invalid(AuditFailure {
                seq: reached.0,
                reason: format!(
                    "the ledger head says seq {} with hash {}, but the events end at seq {} with hash {}",
                    head.0,
                    to_hex(&head.1),
                    reached.0,
                    to_hex(&reached.1)
                ),
            }));
        }
        save_open(&mut write, &mut auditor, &touched)
            .await
            .map_err(PinError::State)?;
        write
            .save_pin(ledger_id, reached, &auditor.snapshot(), pushed)
            .await
            .map_err(PinError::State)?;
        write.commit().await.map_err(PinError::State)?;
        (self.seq, self.head_hash, self.verified_now) = (reached.0, reached.1, pushed);
        Ok(())
    }

    /// Pushes every event after the auditor's last through it, page by page, recording each
    /// one it accepts and adding its stream to `touched`; how many. `Err(Ok(failure))` is the
    /// first event that failed (a rule, or a row altered after it was written), `Err(Err(_))` a
    /// database or state file error.
    async fn walk(
        &self,
        store: &Store,
        write: &mut StateWrite,
        auditor: &mut Auditor,
        touched: &mut BTreeSet<String>,
        advance_clock: impl Fn(&mut Auditor),
    ) -> Result<u64, Result<AuditFailure, PinError>> {
        let ledger = self.ledger_id.to_string();
        let mut pushed = 0u64;
        loop {
            let page = store
                .read_page(self.ledger_id, auditor.events(), PAGE_ROWS)
                .await
                .map_err(|error| match altered(&error) {
                    Some(failure) => Ok(failure),
                    None => Err(PinError::Store(error)),
                })?;
            advance_clock(auditor);
            for event in &page {
                load_layers(write, self.state.path(), auditor, event)
                    .await
                    .map_err(Err)?;
                auditor.push(event).map_err(Ok)?;
                check_deferred_heads(write, auditor).await?;
                write
                    .record(&ledger, event)
                    .await
                    .map_err(|error| Err(PinError::State(error)))?;
                if event.stream_id != LEDGER_STREAM && !touched.contains(&event.stream_id) {
                    touched.insert(event.stream_id.clone());
                }
                pushed += 1;
            }
            // A short page is the end of the events when it was read, which is after the head
            // this sync must reach was read: no need to ask again.
            if (page.len() as i64) < PAGE_ROWS {
                return Ok(pushed);
            }
        }
    }

    /// Refuses a database whose history does not contain the pinned head at the pinned seq,
    /// naming the first seq where it differs from what this client verified.
    async fn check_extends(
        &self,
        store: &Store,
        write: &mut StateWrite,
        pin: &PinRow,
        head: (u64, [u8; 32]),
    ) -> Result<(), PinError> {
        let diverged = |seq: u64, detail: String| PinError::Diverged {
            ledger_id: self.ledger_id,
            pinned_seq: pin.seq,
            pinned_hash: to_hex(&pin.head_hash),
            seq,
            detail,
            state_file: self.state.path().to_path_buf(),
        };
        let end = head.0.min(pin.seq);
        if end == pin.seq && self.store_hash(store, pin.seq).await? == Some(pin.head_hash) {
            return Ok(());
        }
        // The first seq at or before `end` whose event differs from the one verified. A history
        // rewritten from seq d on differs at every seq from d (each hash covers the one before),
        // so a bisection finds d.
        let (mut same, mut differs) = (0u64, end + 1);
        if end > 0 && self.matches(store, write, end).await? {
            same = end;
        }
        while differs - same > 1 {
            let middle = same + (differs - same) / 2;
            if self.matches(store, write, middle).await? {
                same = middle;
            } else {
                differs = middle;
            }
        }
        let seq = differs;
        if seq > head.0 {
            return Err(diverged(
                seq,
                format!(
                    "the ledger now ends at seq {}, before the pinned seq {}: events were removed",
                    head.0, pin.seq
                ),
            ));
        }
        let found = match self.store_hash(store, seq).await? {
            Some(hash) => format!("hash {}", to_hex(&hash)),
            None => "no readable event".into(),
        };
        let verified = write
            .hash_at(seq)
            .await
            .map_err(PinError::State)?
            .map_or_else(|| "?".into(), |hash| to_hex(&hash));
        Err(diverged(
            seq,
            format!("this client verified the event with hash {verified} there; the database now holds {found}"),
        ))
    }

    /// Whether the database's event at `seq` is the one this client verified.
    async fn matches(
        &self,
        store: &Store,
        write: &mut StateWrite,
        seq: u64,
    ) -> Result<bool, PinError> {
        let verified = write.hash_at(seq).await.map_err(PinError::State)?;
        Ok(verified.is_some() && self.store_hash(store, seq).await? == verified)
    }

    /// The hash of the database's event at `seq`, `None` when absent or unreadable (a row that
    /// fails its seal check is not the event that was verified either). A database that does
    /// not answer is an error, not a divergence: a server restarting under a reader (`watch`)
    /// must not be called a rewritten ledger.
    async fn store_hash(&self, store: &Store, seq: u64) -> Result<Option<[u8; 32]>, PinError> {
        match store.read_page(self.ledger_id, seq - 1, 1).await {
            Ok(page) => Ok(page
                .first()
                .filter(|event| event.seq == seq)
                .map(|event| event.hash)),
            Err(StoreError::CorruptRow { .. } | StoreError::HashMismatch { .. }) => Ok(None),
            Err(error) => Err(PinError::Store(error)),
        }
    }

    fn disagrees(&self, what: String) -> PinError {
        PinError::Disagrees {
            what,
            pinned_seq: self.seq,
        }
    }

    /// The events of `stream_id` up to the state file's pin, read from the database and checked
    /// against what was verified: the same versions, each event's hash the verified one.
    /// Another client on this machine may move the shared pin between the reads: a difference
    /// is read again (at most `RESYNCS_MAX` times) before it is called a tamper.
    pub async fn stream(
        &self,
        store: &Store,
        stream_id: &str,
    ) -> Result<Vec<StoredEvent>, PinError> {
        let mut attempt = 0;
        loop {
            match self.stream_once(store, stream_id).await {
                Err(PinError::Disagrees { .. }) if attempt < RESYNCS_MAX => attempt += 1,
                done => return done,
            }
        }
    }

    async fn stream_once(
        &self,
        store: &Store,
        stream_id: &str,
    ) -> Result<Vec<StoredEvent>, PinError> {
        // The stream and the pin of the state file are written in one transaction: read the
        // stream first, so that a pin read after it is never behind it.
        let verified = self
            .state
            .stream(stream_id)
            .await
            .map_err(PinError::State)?;
        let pinned_seq = self
            .state
            .pin(self.ledger_id)
            .await
            .map_err(PinError::State)?
            .map_or(self.seq, |pin| pin.seq.max(self.seq));
        let mut events = store.read_stream(self.ledger_id, stream_id).await?;
        events.retain(|event| event.seq <= pinned_seq);
        let (version, last_seq) = verified.unwrap_or((0, 0));
        let last = events.last().map(|e| (e.stream_version, e.seq));
        if last.unwrap_or((0, 0)) != (version, last_seq) || events.len() as u64 != version {
            return Err(self.disagrees(format!(
                "stream {stream_id}: the database holds {} events up to seq {}, the verified events are {version} up to seq {last_seq} (event rows were deleted or added)",
                events.len(),
                last.map_or(0, |(_, seq)| seq)
            )));
        }
        let seqs: Vec<u64> = events.iter().map(|event| event.seq).collect();
        let verified = self.state.hashes_at(&seqs).await.map_err(PinError::State)?;
        for (index, event) in events.iter().enumerate() {
            if event.stream_version != index as u64 + 1
                || verified.get(&event.seq) != Some(&event.hash)
            {
                return Err(self.disagrees(format!(
                    "stream {stream_id}: the event at seq {} is not the one verified (an event row was edited or replaced)",
                    event.seq
                )));
            }
        }
        Ok(events)
    }

    /// A proposal as verified: its stream checked, its database row the verified row (compared
    /// again after a sync while the head moves, as `proposals` does).
    pub async fn proposal(
        &mut self,
        store: &Store,
        proposal_id: Uuid,
    ) -> Result<Option<ProposalState>, PinError> {
        Ok(self
            .proposal_and_stream(store, proposal_id)
            .await?
            .map(|(state, _)| state))
    }

    /// `proposal`, with the verified stream it was folded from.
    pub async fn proposal_and_stream(
        &mut self,
        store: &Store,
        proposal_id: Uuid,
    ) -> Result<Option<(ProposalState, Vec<StoredEvent>)>, PinError> {
        let id = proposal_id.to_string();
        let mut attempt = 0;
        let verified = loop {
            let verified = self
                .state
                .proposal(self.ledger_id, &id)
                .await
                .map_err(PinError::State)?;
            let stored = store.proposal(self.ledger_id, &id).await?;
            match self.compare_row(&id, stored.as_ref(), verified.as_ref()) {
                Ok(()) => break verified,
                Err(error) => self.resync_or(store, &mut attempt, error).await?,
            }
        };
        if verified.is_none() {
            return Ok(None);
        }
        let events = self.stream(store, &id).await?;
        let state = ProposalState::from_stream(&events)
            .map_err(|refusal| self.disagrees(format!("proposal {id}: {refusal}")))?;
        Ok(Some((state, events)))
    }

    /// The verified projection rows (optionally of one status), oldest first, after checking
    /// that the database's rows are exactly these (`proposal_window`).
    pub async fn proposals(
        &mut self,
        store: &Store,
        status: Option<&str>,
    ) -> Result<Vec<ProposalRow>, PinError> {
        let window = ProposalWindow {
            status,
            ..ProposalWindow::default()
        };
        let mut rows = self.proposal_window(store, &window).await?;
        rows.reverse();
        Ok(rows)
    }

    /// The verified projection rows of `window`, newest first, after checking that the
    /// database's rows in the same window are exactly these: a view compares what it shows,
    /// and reads no more. A difference seen while the database's head moves on is synced and
    /// compared again; one that stays is a tamper.
    pub async fn proposal_window(
        &mut self,
        store: &Store,
        window: &ProposalWindow<'_>,
    ) -> Result<Vec<ProposalRow>, PinError> {
        let mut attempt = 0;
        loop {
            let verified = self
                .state
                .proposal_window(self.ledger_id, window)
                .await
                .map_err(PinError::State)?;
            let stored = store.proposal_window(self.ledger_id, window).await?;
            match self.compare_rows(&stored, &verified) {
                Ok(()) => return Ok(verified),
                Err(error) => self.resync_or(store, &mut attempt, error).await?,
            }
        }
    }

    /// After a difference: when the database's head moved past the pin (an honest writer
    /// appended meanwhile), syncs to compare again; when it did not, or after `RESYNCS_MAX`
    /// syncs, the difference is the answer.
    async fn resync_or(
        &mut self,
        store: &Store,
        attempt: &mut usize,
        difference: PinError,
    ) -> Result<(), PinError> {
        let head = store.head(self.ledger_id).await?;
        if *attempt == RESYNCS_MAX || head == Some((self.seq, self.head_hash)) {
            return Err(difference);
        }
        *attempt += 1;
        self.sync(store).await
    }

    /// The states of proposals given by their verified rows, each stream checked.
    pub async fn states(
        &self,
        store: &Store,
        rows: &[ProposalRow],
    ) -> Result<Vec<ProposalState>, PinError> {
        let mut states = Vec::with_capacity(rows.len());
        for row in rows {
            let events = self.stream(store, &row.proposal_id).await?;
            states.push(ProposalState::from_stream(&events).map_err(|refusal| {
                self.disagrees(format!("proposal {}: {refusal}", row.proposal_id))
            })?);
        }
        Ok(states)
    }

    fn compare_rows(
        &self,
        stored: &[ProposalRow],
        verified: &[ProposalRow],
    ) -> Result<(), PinError> {
        let by_id = |rows: &[ProposalRow]| -> std::collections::BTreeMap<String, ProposalRow> {
            rows.iter()
                .map(|row| (row.proposal_id.clone(), row.clone()))
                .collect()
        };
        let (stored, verified) = (by_id(stored), by_id(verified));
        for id in stored.keys().chain(verified.keys()) {
            self.compare_row(id, stored.get(id), verified.get(id))?;
        }
        Ok(())
    }

    /// A database row against the verified row of the same proposal: named and explained
    /// when they differ.
    fn compare_row(
        &self,
        id: &str,
        stored: Option<&ProposalRow>,
        verified: Option<&ProposalRow>,
    ) -> Result<(), PinError> {
        let what = match (stored, verified) {
            (None, None) => return Ok(()),
            (Some(stored), Some(verified)) if stored == verified => return Ok(()),
            (None, Some(verified)) => format!(
                "proposal {id} ({}, verified at seq {}) is missing from the database's proposals table",
                verified.status, verified.last_seq
            ),
            (Some(stored), None) => format!(
                "the database's proposals table lists proposal {id} ({}), which no verified event records",
                stored.status
            ),
            (Some(stored), Some(verified)) => format!(
                "proposal {id}: the database's proposals table says {}, the verified events say {}",
                row_text(stored),
                row_text(verified)
            ),
        };
        Err(self.disagrees(what))
    }

    pub async fn close(&self) {
        self.state.close().await
    }
}

/// The auditor saved at the pin (`seq`), with every saved open proposal loaded when it was
/// saved before the snapshot indexed them (else they are loaded as events name them).
async fn restore(
    write: &mut StateWrite,
    state_file: &Path,
    ledger_id: Uuid,
    seq: u64,
    verifier_clock: chrono::DateTime<chrono::Utc>,
) -> Result<Auditor, PinError> {
    let unreadable = |reason: String| saved_state_error(state_file, seq, reason);
    let saved = write.auditor(ledger_id).await.map_err(PinError::State)?;
    let (mut auditor, load_every_open) =
        Auditor::restore(&saved, verifier_clock).map_err(unreadable)?;
    if load_every_open {
        for (id, state) in write.open_proposals().await.map_err(PinError::State)? {
            auditor.load_open(&id, &state).map_err(unreadable)?;
        }
    }
    Ok(auditor)
}

/// Loads into a resumed auditor the saved layers, rolls and open proposals `event` needs that
/// it does not hold.
async fn load_layers(
    write: &mut StateWrite,
    state_file: &Path,
    auditor: &mut Auditor,
    event: &StoredEvent,
) -> Result<(), PinError> {
    for wanted in auditor.saved_wanted(event) {
        let loaded = match wanted {
            Saved::Layer(key) => match write.layer(&key).await.map_err(PinError::State)? {
                Some((id, state)) => auditor.load_layer(&id, &state),
                None => no_row_missing(write, event).await?,
            },
            Saved::Roll(id) => match write.committed_roll(&id).await.map_err(PinError::State)? {
                Some(state) => auditor.load_roll(&id, &state),
                None => no_row_missing(write, event).await?,
            },
            // Every open proposal has its row (`save_open`): a missing one is a damaged file.
            Saved::Open(id) => match write.open_proposal(&id).await.map_err(PinError::State)? {
                Some(state) => auditor.load_open(&id, &state),
                None => Err(format!("open proposal {id} has no saved row")),
            },
        };
        loaded.map_err(|reason| saved_state_error(state_file, event.seq, reason))?;
    }
    Ok(())
}

/// A layer or roll `event` needs is not saved: one the ledger never had (`Ok(())`), unless
/// rows went missing since the last sync (`Err`): the auditor would then judge the event
/// without them and call a valid ledger invalid.
async fn no_row_missing(
    write: &mut StateWrite,
    event: &StoredEvent,
) -> Result<Result<(), String>, PinError> {
    let missing = write
        .missing_rows(event.ledger_id)
        .await
        .map_err(PinError::State)?;
    Ok(missing.map_or(Ok(()), Err))
}

/// This machine's saved state does not read back, found while resuming at `seq`: what the
/// user can do about it is always the same (remove the file; it is a cache of verified work).
fn saved_state_error(state_file: &Path, seq: u64, reason: String) -> PinError {
    PinError::SavedState {
        state_file: state_file.to_path_buf(),
        seq,
        reason,
    }
}

/// Saves the layers and committed rolls the walk changed, and the open proposals whose streams
/// the new events touched, each as the auditor now holds it (removed when it closed): an event
/// changes only its own stream's proposal (check C9), so the saved rows are then the auditor's
/// open proposals plus any it dropped without an event (it forgets long-expired ones when many
/// are open), and a count tells whether there were any. Then, or when the state was saved whole
/// before (its open proposals inside the auditor's state, no rows yet), the rows are made to
/// match the auditor's open proposals.
async fn save_open(
    write: &mut StateWrite,
    auditor: &mut Auditor,
    touched: &BTreeSet<String>,
) -> Result<(), StoreError> {
    for (id, numbers_key, state) in auditor.take_touched_layers() {
        write.save_layer(&id, &numbers_key, &state).await?;
    }
    for (id, state) in auditor.take_touched_rolls() {
        write.save_committed_roll(&id, &state).await?;
    }
    for id in touched {
        write
            .save_open(id, auditor.open_proposal(id).as_deref())
            .await?;
    }
    if write.open_count().await? != auditor.open_ids().count() as u64 {
        // Rows of proposals the auditor dropped without an event go; open ones without a row
        // (a state saved whole before rows existed, all of them loaded) get one.
        let open: BTreeSet<&str> = auditor.open_ids().collect();
        let saved = write.open_ids().await?;
        for id in saved.iter().filter(|id| !open.contains(id.as_str())) {
            write.save_open(id, None).await?;
        }
        for id in open
            .iter()
            .filter(|id| !saved.iter().any(|saved| saved == *id))
        {
            write
                .save_open(id, auditor.open_proposal(id).as_deref())
                .await?;
        }
    }
    Ok(())
}

/// The columns of a row that say what happened to it, for messages.
fn row_text(row: &ProposalRow) -> String {
    format!(
        "status {}, {} signatures ({}), seqs {}..{}, verdict {}",
        row.status,
        row.signature_count,
        row.signers,
        row.first_seq,
        row.last_seq,
        row.verdict.as_deref().unwrap_or("-")
    )
}

/// A row the database could not hand back as stored (altered after it was written), as a
/// verification failure at its seq.
fn altered(error: &StoreError) -> Option<AuditFailure> {
    match error {
        StoreError::HashMismatch { seq, .. } => Some(AuditFailure {
            seq: *seq,
            reason: "the event does not match its recorded hash: its contents were altered".into(),
        }),
        StoreError::CorruptRow { seq, reason } => Some(AuditFailure {
            seq: (*seq).max(0) as u64,
            reason: format!("unreadable row: {reason}"),
        }),
        _ => None,
    }
}
