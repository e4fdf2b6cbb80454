//! The witness's shell around `tlog::witness`: its state directory and the one path every
//! `add-checkpoint` takes, for the HTTP server and the offline `witness cosign` alike.
//!
//! State: one file per origin, `<state dir>/<hex SHA-256(origin)>` (the origin hash of
//! tlog-witness's monitoring URLs), holding the last checkpoint the witness cosigned as a signed
//! note. It is replaced atomically: a temporary file is written and fsynced, renamed over the old
//! one, and the directory fsynced, all before the response leaves. A crash leaves the old state
//! or the new, never a mix, and never a cosignature the state does not cover, so the witness
//! cannot be led to cosign a fork of what it answered. A state file that cannot be read or parsed
//! stops the witness for that origin (500) rather than being taken as "never cosigned".
//!
//! Concurrency: requests for one origin are serialised by a lock per origin (the check against
//! the stored size and the update are one step, as the spec requires); an exclusive `flock` on
//! `<state dir>/.lock` keeps a second witness process (a server or `witness cosign`) off the
//! same directory.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::io::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::crypto::to_hex;
use crate::tlog::note::{Note, NOTE_LEN_MAX_BYTES};
use crate::tlog::witness::{AddCheckpoint, Response, Witness, WitnessState};

/// Why the state directory cannot be used.
#[derive(Debug, Error)]
pub enum StateError {
    #[error("state directory {path}: {reason}")]
    Directory { path: PathBuf, reason: String },
    #[error(
        "state directory {path} is in use by another witness process (its .lock is held); run one \
         witness per state directory"
    )]
    Locked { path: PathBuf },
    #[error("state file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// The state directory, locked for this process while the value lives.
pub struct StateDir {
    path: PathBuf,
    _lock: File,
}

impl StateDir {
    /// Creates the directory if needed (mode 0700) and takes its lock without waiting.
    pub fn open(path: &Path) -> Result<StateDir, StateError> {
        let directory = |reason: String| StateError::Directory {
            path: path.to_path_buf(),
            reason,
        };
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|error| directory(format!("cannot create it: {error}")))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join(".lock"))
            .map_err(|error| directory(format!("cannot open .lock: {error}")))?;
        // SAFETY: flock on a file descriptor this function owns; no memory is shared.
        let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked != 0 {
            return Err(StateError::Locked {
                path: path.to_path_buf(),
            });
        }
        Ok(StateDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// `<dir>/<hex SHA-256(origin)>`: a file name whatever the origin's characters.
    pub fn file_of(&self, origin: &str) -> PathBuf {
        self.path.join(to_hex(&Sha256::digest(origin.as_bytes())))
    }

    /// The stored state of `origin`: `None` when the witness never cosigned for it.
    pub fn load(&self, origin: &str) -> Result<Option<WitnessState>, StateError> {
        let path = self.file_of(origin);
        let bad = |reason: String| StateError::File {
            path: path.clone(),
            reason,
        };
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(file) => file
                .take(NOTE_LEN_MAX_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(|error| bad(format!("cannot read it: {error}")))?,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(bad(format!("cannot open it: {error}"))),
        };
        let (checkpoint, state) = WitnessState::from_stored(&bytes)
            .map_err(|error| bad(format!("not a cosigned checkpoint: {error}")))?;
        if checkpoint.origin != origin {
            return Err(bad(format!(
                "it holds origin {:?}, not {origin:?}",
                checkpoint.origin
            )));
        }
        Ok(Some(state))
    }

    /// The stored cosigned checkpoint of `origin`, byte for byte (for the monitoring GET).
    pub fn read_note(&self, origin_hash_hex: &str) -> Option<Vec<u8>> {
        let valid = origin_hash_hex.len() == 64
            && origin_hash_hex
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| std::fs::read(self.path.join(origin_hash_hex)).ok())?
    }

    /// Replaces the state of `origin` atomically and durably (see the module docs).
    pub fn store(&self, origin: &str, cosigned: &Note) -> Result<(), StateError> {
        let path = self.file_of(origin);
        // One temporary per origin: two origins are stored concurrently (each under its own lock).
        let mut temporary = path.clone().into_os_string();
        temporary.push(".new");
        let temporary = PathBuf::from(temporary);
        let bad = |step: &str, error: std::io::Error| StateError::File {
            path: path.clone(),
            reason: format!("{step}: {error}"),
        };
        let mut file = File::create(&temporary).map_err(|e| bad("cannot create its .new", e))?;
        file.write_all(cosigned.to_text().as_bytes())
            .map_err(|e| bad("cannot write its .new", e))?;
        file.sync_all()
            .map_err(|e| bad("cannot fsync its .new", e))?;
        drop(file);
        std::fs::rename(&temporary, &path).map_err(|e| bad("cannot rename its .new over it", e))?;
        File::open(&self.path)
            .and_then(|directory| directory.sync_all())
            .map_err(|e| bad("cannot fsync the directory", e))
    }
}

/// A witness with its state: what the server and `witness cosign` run.
pub struct WitnessService {
    witness: Witness,
    state: StateDir,
    origin_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl WitnessService {
    pub fn new(witness: Witness, state: StateDir) -> WitnessService {
        WitnessService {
            witness,
            state,
            origin_locks: Mutex::new(HashMap::new()),
        }
    }

    pub fn state(&self) -> &StateDir {
        &self.state
    }

    /// One `add-checkpoint`: parse, and under the origin's lock load the state, decide, persist
    /// the new state, then answer. Blocking (file IO and fsync): run it off an async runtime.
    pub fn add_checkpoint(&self, body: &[u8], now_s: u64) -> Response {
        let request = match AddCheckpoint::parse(body) {
            Ok(request) => request,
            Err(error) => return Response::bad_request(&error),
        };
        let origin = request.checkpoint.origin.clone();
        if !self.witness.knows_origin(&origin) {
            // A 404 reads no state; no lock is kept for an origin a caller made up.
            return self.witness.decide(&request, None, now_s).response;
        }
        let lock = self.origin_lock(&origin);
        // A poisoned lock only means another request panicked; the state on disk is still whole.
        let _turn = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let stored = match self.state.load(&origin) {
            Ok(stored) => stored,
            Err(error) => return Response::internal(&error),
        };
        let decision = self.witness.decide(&request, stored, now_s);
        // The same (size, root) as held: the state is already this checkpoint, cosigned; it is
        // not rewritten (a replayed request costs no write and no fsync).
        let unchanged = |cosigned: &Note| {
            stored.is_some_and(|held| {
                held.size == request.checkpoint.size && held.root == request.checkpoint.root
            }) && cosigned.text() == request.note.text()
        };
        if let Some(cosigned) = decision.new_state.as_ref().filter(|c| !unchanged(c)) {
            if let Err(error) = self.state.store(&origin, cosigned) {
                return Response::internal(&error);
            }
        }
        decision.response
    }

    fn origin_lock(&self, origin: &str) -> Arc<Mutex<()>> {
        let mut locks = self
            .origin_locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(origin.to_string()).or_default().clone()
    }
}
