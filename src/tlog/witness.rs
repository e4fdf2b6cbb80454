//! The witness's core (c2sp.org/tlog-witness, `add-checkpoint`), sans IO: a request body and
//! the state stored for its origin in, a response and the state to store out.
//!
//! Request body: `old <size>\n`, zero to 63 lines of one base64 hash each (the RFC 6962/9162
//! consistency proof from the old size to the checkpoint's), an empty line, the signed checkpoint.
//!
//! Checks, in this order (the order of the spec and of Go's reference witness):
//! 400 a body that does not parse; 404 an origin no `--log` key is named after; 403 no signature
//! by a known key, or a known key's signature that fails; 400 old size above the checkpoint's;
//! 409 (`text/x.tlog.size`, body `<size>\n`) old size other than the size last cosigned (0 when
//! none); 422 a size-0 checkpoint whose root is not the empty tree's, a proof with an old size of
//! 0, a proof that does not verify, or the same size with another root; else 200 with one
//! `cosignature/v1` line, and the cosigned checkpoint becomes the origin's state.
//!
//! The state of an origin is the last checkpoint the witness cosigned, as a signed note (the
//! log's signatures and the witness's cosignature), so a state file is itself evidence. The
//! caller must serialise requests per origin and persist the new state before it answers: the
//! check against the stored size and the update are one step (the spec's rollback race).

use thiserror::Error;

use super::checkpoint::{parse_size, Checkpoint, CheckpointError};
use super::cosignature::cosign;
use super::note::{
    verify_note, Note, NoteError, NoteSignature, VerifierKey, VerifierKind, NOTE_LEN_MAX_BYTES,
    NOTE_SIGNATURES_MAX,
};
use super::{base64_decode, base64_encode};
use crate::crypto::merkle::{empty_root, verify_consistency, Hash};
use crate::crypto::SecretKey;

/// Most consistency proof lines a request may carry (the spec's limit).
pub const PROOF_LINES_MAX: usize = 63;

/// Largest request body: a note, the old size line and 63 proof lines.
pub const ADD_CHECKPOINT_LEN_MAX_BYTES: usize = NOTE_LEN_MAX_BYTES + 32 + PROOF_LINES_MAX * 45;

/// Content type of a 409 answer's body (the size the witness holds).
pub const CONTENT_TYPE_SIZE: &str = "text/x.tlog.size";

/// Content type of every other answer.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; charset=utf-8";

/// A parsed `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    pub note: Note,
    pub checkpoint: Checkpoint,
}

/// Why a request body does not parse (answered 400).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    #[error("the request is {len_bytes} bytes; at most {ADD_CHECKPOINT_LEN_MAX_BYTES}")]
    TooLong { len_bytes: usize },
    #[error("the request does not start with `old <size>` and a newline")]
    BadOldSize,
    #[error("consistency proof line {line} is not the base64 of a 32-byte hash")]
    BadProofLine { line: usize },
    #[error("more than {PROOF_LINES_MAX} consistency proof lines")]
    TooManyProofLines,
    #[error("no empty line between the proof and the checkpoint")]
    NoSeparator,
    #[error("the checkpoint note is malformed: {0}")]
    Note(#[from] NoteError),
    #[error("the note is not a checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
}

impl AddCheckpoint {
    /// Parses a request body.
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, RequestError> {
        if body.len() > ADD_CHECKPOINT_LEN_MAX_BYTES {
            return Err(RequestError::TooLong {
                len_bytes: body.len(),
            });
        }
        let mut rest = body;
        let old_line = take_line(&mut rest).ok_or(RequestError::BadOldSize)?;
        let old_size = old_line
            .strip_prefix(b"old ")
            .and_then(|size| std::str::from_utf8(size).ok())
            .and_then(parse_size)
            .ok_or(RequestError::BadOldSize)?;
        let mut proof = Vec::new();
        loop {
            let line = take_line(&mut rest).ok_or(RequestError::NoSeparator)?;
            if line.is_empty() {
                break;
            }
            if proof.len() == PROOF_LINES_MAX {
                return Err(RequestError::TooManyProofLines);
            }
            let hash = std::str::from_utf8(line)
                .ok()
                .and_then(base64_decode)
                .and_then(|bytes| Hash::try_from(bytes).ok())
                .ok_or(RequestError::BadProofLine {
                    line: proof.len() + 1,
                })?;
            proof.push(hash);
        }
        let note = Note::parse(rest)?;
        let checkpoint = Checkpoint::parse(note.text())?;
        Ok(AddCheckpoint {
            old_size,
            proof,
            note,
            checkpoint,
        })
    }

    /// A request body: `old <size>`, the proof lines, an empty line, the signed checkpoint.
    pub fn format(old_size: u64, proof: &[Hash], note: &Note) -> String {
        let mut body = format!("old {old_size}\n");
        for hash in proof {
            body.push_str(&base64_encode(hash));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(&note.to_text());
        body
    }
}

/// The next line without its newline; `None` when no newline is left.
fn take_line<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let end = rest.iter().position(|b| *b == b'\n')?;
    let line = &rest[..end];
    *rest = &rest[end + 1..];
    Some(line)
}

/// What the witness answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    fn text(status: u16, message: impl std::fmt::Display) -> Response {
        Response {
            status,
            content_type: CONTENT_TYPE_TEXT,
            body: format!("{message}\n"),
        }
    }

    /// The 400 answer to a body that does not parse.
    pub fn bad_request(error: &RequestError) -> Response {
        Response::text(400, error)
    }

    /// A 500: the witness cannot read or write its state (never a reason to cosign).
    pub fn internal(error: &dyn std::fmt::Display) -> Response {
        Response::text(500, error)
    }

    /// The spec's name of the status: `409 Conflict`.
    pub fn status_line(&self) -> String {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            409 => "Conflict",
            422 => "Unprocessable Entity",
            _ => "Internal Server Error",
        };
        format!("{} {reason}", self.status)
    }
}

/// The witness's answer and, on 200, the origin's new state: the cosigned checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub response: Response,
    pub new_state: Option<Note>,
}

/// The size and root an origin's state holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WitnessState {
    pub size: u64,
    pub root: Hash,
}

impl WitnessState {
    /// The state in a stored cosigned checkpoint (the witness wrote it; it is parsed, not trusted
    /// blindly: a file that is not a checkpoint is an error for the caller to report).
    pub fn from_stored(bytes: &[u8]) -> Result<(Checkpoint, WitnessState), RequestError> {
        let note = Note::parse(bytes)?;
        let checkpoint = Checkpoint::parse(note.text())?;
        let state = WitnessState {
            size: checkpoint.size,
            root: checkpoint.root,
        };
        Ok((checkpoint, state))
    }
}

/// Why a witness cannot be configured.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("{0}")]
    Key(#[from] NoteError),
    #[error("--log key {vkey} is not an Ed25519 signer key (type 0x01)")]
    LogKeyType { vkey: String },
    #[error(
        "the witness key is the key of log {origin}: a key that signs for a ledger is never a \
         witness key (a cosignature does not name its cosigner, so the two roles must not share \
         a key); create a separate key for the witness"
    )]
    KeyIsALogKey { origin: String },
}

/// A witness: its name and key, and the logs it knows (vkeys named after their origins).
pub struct Witness {
    name: String,
    key: SecretKey,
    vkey: VerifierKey,
    logs: Vec<VerifierKey>,
}

impl Witness {
    /// Refuses a log key of the wrong type and a witness key that is also a log's key.
    pub fn new(name: &str, key: SecretKey, logs: Vec<VerifierKey>) -> Result<Witness, ConfigError> {
        let vkey = VerifierKey::new(name, VerifierKind::CosignatureV1, key.public())?;
        for log in &logs {
            if log.kind() != VerifierKind::Ed25519 {
                return Err(ConfigError::LogKeyType {
                    vkey: log.to_string(),
                });
            }
            if log.public_key() == vkey.public_key() {
                return Err(ConfigError::KeyIsALogKey {
                    origin: log.key_name().to_string(),
                });
            }
        }
        Ok(Witness {
            name: name.to_string(),
            key,
            vkey,
            logs,
        })
    }

    /// The witness's cosigner vkey (type 0x04).
    pub fn vkey(&self) -> &VerifierKey {
        &self.vkey
    }

    /// Whether a `--log` key is named after `origin` (else every request for it is a 404).
    pub fn knows_origin(&self, origin: &str) -> bool {
        self.logs.iter().any(|key| key.key_name() == origin)
    }

    /// Decides a request given the state stored for its origin (`None`: never cosigned) and the
    /// time. Pure: the caller persists `new_state` before sending `response`.
    pub fn decide(
        &self,
        request: &AddCheckpoint,
        stored: Option<WitnessState>,
        now_s: u64,
    ) -> Decision {
        match self.check(request, stored) {
            Err(response) => Decision {
                response,
                new_state: None,
            },
            Ok(log_lines) => self.cosign(request, log_lines, now_s),
        }
    }

    /// The request's checks in the spec's order; on success the log signature lines that
    /// verified (the only lines of the request the witness keeps).
    fn check(
        &self,
        request: &AddCheckpoint,
        stored: Option<WitnessState>,
    ) -> Result<Vec<NoteSignature>, Response> {
        let checkpoint = &request.checkpoint;
        let origin = checkpoint.origin.as_str();
        let keys: Vec<VerifierKey> = (self.logs.iter())
            .filter(|key| key.key_name() == origin)
            .cloned()
            .collect();
        if keys.is_empty() {
            return Err(Response::text(
                404,
                format!("unknown log origin {origin:?}"),
            ));
        }
        self.check_room(&request.note)?;
        let verified = match verify_note(&request.note, &keys) {
            Ok(verified) => verified,
            Err(error) => return Err(Response::text(403, error)),
        };
        let log_lines = verified
            .iter()
            .filter_map(|found| request.note.signatures().get(found.signature_index))
            .cloned()
            .collect();
        if request.old_size > checkpoint.size {
            return Err(Response::text(
                400,
                format!(
                    "old size {} is larger than the checkpoint's size {}",
                    request.old_size, checkpoint.size
                ),
            ));
        }
        let held = stored.unwrap_or(WitnessState {
            size: 0,
            root: empty_root(),
        });
        if request.old_size != held.size {
            return Err(Response {
                status: 409,
                content_type: CONTENT_TYPE_SIZE,
                body: format!("{}\n", held.size),
            });
        }
        check_consistency(request, &held).map_err(|reason| Response::text(422, reason))?;
        Ok(log_lines)
    }

    /// 400 for a note that leaves no room for this witness's cosignature line: already
    /// `NOTE_SIGNATURES_MAX` lines, or too long to take one more line under `NOTE_LEN_MAX_BYTES`
    /// (the client could not add the cosignature to its note).
    fn check_room(&self, note: &Note) -> Result<(), Response> {
        let line = NoteSignature {
            key_name: self.name.clone(),
            key_id: self.vkey.key_id(),
            signature: vec![0; super::cosignature::COSIGNATURE_LEN_BYTES],
        }
        .to_line();
        if note.signatures().len() >= NOTE_SIGNATURES_MAX {
            return Err(Response::text(
                400,
                format!("the note has {NOTE_SIGNATURES_MAX} signature lines already: no room for a cosignature"),
            ));
        }
        if note.to_text().len() + line.len() > NOTE_LEN_MAX_BYTES {
            return Err(Response::text(
                400,
                format!("the note is too long to take a cosignature line (at most {NOTE_LEN_MAX_BYTES} bytes)"),
            ));
        }
        Ok(())
    }

    /// The cosignature line, and the state to store: canonical, the checkpoint text with only
    /// the log signatures that verified and this cosignature (never a line the client added).
    fn cosign(
        &self,
        request: &AddCheckpoint,
        log_lines: Vec<NoteSignature>,
        now_s: u64,
    ) -> Decision {
        let signature: NoteSignature =
            match cosign(request.note.text(), &self.name, &self.key, now_s) {
                Ok(signature) => signature,
                Err(error) => {
                    return Decision {
                        response: Response::text(500, format!("cannot cosign: {error}")),
                        new_state: None,
                    }
                }
            };
        let line = signature.to_line();
        let state = Note::new(request.note.text()).and_then(|mut note| {
            for log_line in log_lines {
                note.push_signature(log_line)?;
            }
            note.push_signature(signature)?;
            Ok(note)
        });
        let cosigned = match state {
            Ok(note) => note,
            Err(error) => {
                return Decision {
                    response: Response::text(500, format!("cannot build the state: {error}")),
                    new_state: None,
                }
            }
        };
        Decision {
            response: Response {
                status: 200,
                content_type: CONTENT_TYPE_TEXT,
                body: line,
            },
            new_state: Some(cosigned),
        }
    }
}

/// The 422 checks: the empty tree's root at size 0, and a consistency proof from the state held.
fn check_consistency(request: &AddCheckpoint, held: &WitnessState) -> Result<(), String> {
    let checkpoint = &request.checkpoint;
    if checkpoint.size == 0 && checkpoint.root != empty_root() {
        return Err("a checkpoint of size 0 must have the empty tree's root".to_string());
    }
    if request.old_size == 0 && !request.proof.is_empty() {
        return Err("the old size is 0, so the consistency proof must be empty".to_string());
    }
    if request.old_size == checkpoint.size && held.root != checkpoint.root {
        return Err(format!(
            "size {} was cosigned with another root hash: this checkpoint is a fork",
            checkpoint.size
        ));
    }
    verify_consistency(
        held.size,
        checkpoint.size,
        &held.root,
        &checkpoint.root,
        &request.proof,
    )
    .map_err(|error| {
        format!(
            "the consistency proof from size {} to {} does not verify: {error}",
            held.size, checkpoint.size
        )
    })
}
