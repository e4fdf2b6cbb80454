//! Checkpoint bodies (c2sp.org/tlog-checkpoint): the note text of a signed tree head.
//!
//! ```text
//! <origin>\n
//! <tree size in decimal, no leading zero>\n
//! <root hash, standard base64 of 32 bytes>\n
//! [<extension line>\n ...]
//! ```
//!
//! A ledger's origin is `rollbook.<ledger id>` (the UUID in lowercase hyphenated form), its size
//! the number of events and its root the RFC 9162 root over them (`crypto::merkle`). rollbook
//! writes no extension lines (the spec does not recommend them) but parses and keeps them.

use thiserror::Error;
use uuid::Uuid;

use super::note::{check_text, NoteError};
use super::{base64_decode, base64_encode};
use crate::crypto::merkle::Hash;

/// Why a note text is not a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CheckpointError {
    #[error("{0}")]
    Text(#[from] NoteError),
    #[error("a checkpoint has at least three lines (origin, size, root hash)")]
    TooFewLines,
    #[error("checkpoint line {line} is empty; every line must be non-empty")]
    EmptyLine { line: usize },
    #[error(
        "the checkpoint size {text:?} is not a decimal number without leading zeros below 2^64"
    )]
    BadSize { text: String },
    #[error("the checkpoint root hash {text:?} is not the base64 of 32 bytes")]
    BadRoot { text: String },
}

/// A parsed checkpoint body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    /// Number of leaves (for a ledger: of events).
    pub size: u64,
    pub root: Hash,
    /// Opaque extension lines, without their newlines.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Parses a note text as a checkpoint.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        check_text(text)?;
        let body = text.strip_suffix('\n').ok_or(NoteError::BadText)?;
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() < 3 {
            return Err(CheckpointError::TooFewLines);
        }
        if let Some(index) = lines.iter().position(|line| line.is_empty()) {
            return Err(CheckpointError::EmptyLine { line: index + 1 });
        }
        Ok(Checkpoint {
            origin: lines[0].to_string(),
            size: parse_size(lines[1]).ok_or_else(|| CheckpointError::BadSize {
                text: lines[1].chars().take(40).collect(),
            })?,
            root: parse_root(lines[2]).ok_or_else(|| CheckpointError::BadRoot {
                text: lines[2].chars().take(60).collect(),
            })?,
            extensions: lines[3..].iter().map(|line| line.to_string()).collect(),
        })
    }

    /// The note text: origin, size, root and extension lines, each ending in a newline.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            base64_encode(&self.root)
        );
        for extension in &self.extensions {
            text.push_str(extension);
            text.push('\n');
        }
        text
    }
}

/// The origin line (and the log's key name) of a ledger: `rollbook.<ledger id>`.
pub fn ledger_origin(ledger_id: Uuid) -> String {
    format!("rollbook.{}", ledger_id.hyphenated())
}

/// The checkpoint of a ledger's tree head: `size` events with RFC 9162 root `root`.
pub fn ledger_checkpoint(ledger_id: Uuid, size: u64, root: Hash) -> Checkpoint {
    Checkpoint {
        origin: ledger_origin(ledger_id),
        size,
        root,
        extensions: Vec::new(),
    }
}

/// ASCII decimal, no sign, no leading zero unless the value is 0, at most u64::MAX.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    match canonical {
        true => text.parse().ok(),
        false => None,
    }
}

fn parse_root(text: &str) -> Option<Hash> {
    base64_decode(text)?.try_into().ok()
}
