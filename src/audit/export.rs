//! The export file (JSONL) and its strict reader. Grammar in docs/audit-format.md, "Export".
//!
//! Line 1 is a header, then one line per event in seq order, each signed checkpoint of the
//! ledger right after the event of its tree size, then one (unsigned) checkpoint line. Each
//! line is one JSON object whose first key is `type`; the reader refuses unknown and duplicate
//! keys, and refuses any line that is not exactly the canonical serialization of what it parsed
//! to, so a changed character anywhere after the header (even an equivalent JSON escape) is
//! caught. Hashes are always computed over the decoded payload string, never a re-serialization.

use std::io::{BufRead, Read, Write};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::crypto::{from_hex32, to_hex};
use crate::domain::envelope::StoredEvent;

pub const EXPORT_FORMAT: &str = "rollbook-export";
pub const EXPORT_VERSION: u32 = 1;
/// Limit on one line: a payload is at most 4 MiB, and JSON escaping at most doubles it here.
pub const LINE_BYTES_MAX: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderLine {
    #[serde(rename = "type")]
    pub line_type: String,
    pub format: String,
    pub version: u32,
    pub ledger_id: String,
    pub genesis_hash: String,
    pub from_seq: u64,
    pub exported_at: String,
    pub rollbook_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventLine {
    #[serde(rename = "type")]
    pub line_type: String,
    pub seq: u64,
    pub ledger_id: String,
    pub stream_id: String,
    pub stream_version: u64,
    pub event_id: String,
    pub event_type: String,
    pub schema_version: u32,
    pub recorded_at: String,
    pub actor: Option<String>,
    /// The stored payload bytes as a JSON string (they are UTF-8 JSON).
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointLine {
    #[serde(rename = "type")]
    pub line_type: String,
    pub ledger_id: String,
    pub tree_size: u64,
    pub head_hash: String,
    pub merkle_root: String,
}

/// A signed checkpoint (a C2SP signed note with every signature and cosignature stored for it),
/// placed right after the event of its tree size: the verifier's Merkle root at that point is
/// the root the note must state, so its consistency with the export is checked in one pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCheckpointLine {
    #[serde(rename = "type")]
    pub line_type: String,
    pub ledger_id: String,
    pub tree_size: u64,
    /// The signed note, byte-exact (body, blank line, signature lines, each ending in `\n`).
    pub note: String,
}

impl SignedCheckpointLine {
    pub fn new(ledger_id: Uuid, tree_size: u64, note: String) -> SignedCheckpointLine {
        SignedCheckpointLine {
            line_type: "signed_checkpoint".into(),
            ledger_id: ledger_id.to_string(),
            tree_size,
            note,
        }
    }
}

impl EventLine {
    pub fn from_event(event: &StoredEvent) -> Result<EventLine, String> {
        let payload = String::from_utf8(event.payload.clone())
            .map_err(|_| format!("seq {}: the stored payload is not UTF-8 (the row was altered); run `rollbook verify`", event.seq))?;
        Ok(EventLine {
            line_type: "event".into(),
            seq: event.seq,
            ledger_id: event.ledger_id.to_string(),
            stream_id: event.stream_id.clone(),
            stream_version: event.stream_version,
            event_id: event.event_id.to_string(),
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            recorded_at: event.recorded_at.clone(),
            actor: event.actor.clone(),
            payload,
            prev_hash: to_hex(&event.prev_hash),
            hash: to_hex(&event.hash),
        })
    }

    /// The envelope this line describes; every text field must be in its canonical spelling.
    pub fn to_event(&self) -> Result<StoredEvent, String> {
        self.clone().into_event()
    }

    /// `to_event` without copying the payload (the verifier's path).
    pub fn into_event(self) -> Result<StoredEvent, String> {
        // Canonical spellings are checked by encoding back into stack buffers (the verifier
        // reads four of these per event).
        let uuid = |what: &str, text: &str| -> Result<Uuid, String> {
            let id = Uuid::parse_str(text).map_err(|_| format!("{what} {text:?} is not a UUID"))?;
            let mut canonical = [0u8; uuid::fmt::Hyphenated::LENGTH];
            if id.hyphenated().encode_lower(&mut canonical).as_bytes() != text.as_bytes() {
                return Err(format!("{what} {text:?} is not in canonical form"));
            }
            Ok(id)
        };
        let hash = |what: &str, text: &str| -> Result<[u8; 32], String> {
            // Named first: the decoder below refuses uppercase too, but says less.
            if text.bytes().any(|digit| digit.is_ascii_uppercase()) {
                return Err(format!("{what} is not lowercase hex"));
            }
            from_hex32(text).map_err(|_| format!("{what} is not 32 bytes of hex"))
        };
        Ok(StoredEvent {
            ledger_id: uuid("ledger_id", &self.ledger_id)?,
            seq: self.seq,
            event_id: uuid("event_id", &self.event_id)?,
            prev_hash: hash("prev_hash", &self.prev_hash)?,
            hash: hash("hash", &self.hash)?,
            stream_id: self.stream_id,
            stream_version: self.stream_version,
            event_type: self.event_type,
            schema_version: self.schema_version,
            recorded_at: self.recorded_at,
            actor: self.actor,
            payload: self.payload.into_bytes(),
        })
    }
}

/// One line of an export, parsed strictly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Header(HeaderLine),
    Event(EventLine),
    SignedCheckpoint(SignedCheckpointLine),
    Checkpoint(CheckpointLine),
}

fn canonical<T: Serialize + for<'de> Deserialize<'de>>(
    text: &str,
    what: &str,
) -> Result<T, String> {
    let value: T =
        serde_json::from_str(text).map_err(|error| format!("not a valid {what} line: {error}"))?;
    // Re-serialize into this thread's reused buffer and compare once: serde writes escapes a
    // few bytes at a time, and one bulk comparison beats a comparison per write (this runs on
    // every line the verifier reads).
    let canonical = CANONICAL_BUFFER.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        buffer.clear();
        let same = serde_json::to_writer(&mut *buffer, &value).is_ok()
            && buffer.as_slice() == text.as_bytes();
        if buffer.capacity() > CANONICAL_BUFFER_KEPT_BYTES {
            // One huge line must not pin its buffer for the rest of the walk.
            *buffer = Vec::new();
        }
        same
    });
    if !canonical {
        return Err(format!("the {what} line is not in canonical form (a character was changed, added or escaped differently)"));
    }
    Ok(value)
}

/// Lines up to this size keep their re-serialization buffer between calls.
const CANONICAL_BUFFER_KEPT_BYTES: usize = 1024 * 1024;

thread_local! {
    static CANONICAL_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Line {
    /// Parses one line (without its newline): the type comes first so each line is read
    /// directly into its own struct (serde then refuses duplicate and unknown keys), then the
    /// line must be exactly the canonical serialization of what it parsed to.
    pub fn parse(text: &str) -> Result<Line, String> {
        if text.starts_with("{\"type\":\"event\",") {
            Ok(Line::Event(canonical(text, "event")?))
        } else if text.starts_with("{\"type\":\"signed_checkpoint\",") {
            Ok(Line::SignedCheckpoint(canonical(
                text,
                "signed checkpoint",
            )?))
        } else if text.starts_with("{\"type\":\"checkpoint\",") {
            Ok(Line::Checkpoint(canonical(text, "checkpoint")?))
        } else if text.starts_with("{\"type\":\"header\",") {
            Ok(Line::Header(canonical(text, "header")?))
        } else {
            Err("not a rollbook export line (each starts with {\"type\":\"header|event|signed_checkpoint|checkpoint\",)".into())
        }
    }

    pub fn to_text(&self) -> String {
        match self {
            Line::Header(line) => serde_json::to_string(line),
            Line::Event(line) => serde_json::to_string(line),
            Line::SignedCheckpoint(line) => serde_json::to_string(line),
            Line::Checkpoint(line) => serde_json::to_string(line),
        }
        .expect("export lines serialize")
    }
}

/// Reads lines of at most `LINE_BYTES_MAX` bytes; `Ok(None)` at the end.
pub struct LineReader<R> {
    reader: R,
    buffer: Vec<u8>,
    pub line_number: u64,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(reader: R) -> Self {
        LineReader {
            reader,
            buffer: Vec::with_capacity(4096),
            line_number: 0,
        }
    }

    /// The reader below, positioned after the last line read.
    pub fn into_inner(self) -> R {
        self.reader
    }

    pub fn next_line(&mut self) -> Result<Option<String>, String> {
        self.buffer.clear();
        let read = (&mut self.reader)
            .take(LINE_BYTES_MAX as u64 + 1)
            .read_until(b'\n', &mut self.buffer)
            .map_err(|error| format!("cannot read: {error}"))?;
        if read == 0 {
            return Ok(None);
        }
        self.line_number += 1;
        if self.buffer.last() != Some(&b'\n') {
            if self.buffer.len() > LINE_BYTES_MAX {
                return Err(format!(
                    "line {} is longer than {LINE_BYTES_MAX} bytes",
                    self.line_number
                ));
            }
            return Err(format!(
                "line {} does not end with a newline (the file is truncated)",
                self.line_number
            ));
        }
        self.buffer.pop();
        // The next line gets a buffer the size of this one (lines of one export are alike), so
        // that reading it does not regrow one from nothing.
        let next = Vec::with_capacity(self.buffer.len().clamp(256, 64 * 1024));
        String::from_utf8(std::mem::replace(&mut self.buffer, next))
            .map(Some)
            .map_err(|_| format!("line {} is not UTF-8", self.line_number))
    }
}

/// Writes one line and its newline.
pub fn write_line(out: &mut impl Write, line: &Line) -> std::io::Result<()> {
    out.write_all(line.to_text().as_bytes())?;
    out.write_all(b"\n")
}
