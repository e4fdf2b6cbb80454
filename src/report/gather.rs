//! Reads an export once, streaming: its SHA-256 over every byte, its header and checkpoint
//! lines, and the facts folded from its event lines. Reading is not verifying: the caller runs
//! the verifier (`audit::verify_export`) over the same bytes and says which verdict applies.

use std::io::{BufRead, Read};

use sha2::{Digest, Sha256};

use super::facts::Facts;
use crate::audit::export::{CheckpointLine, HeaderLine, Line, LineReader, SignedCheckpointLine};
use crate::crypto::to_hex;

/// A reader that hashes what passes through it: the SHA-256 of an export read once.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The SHA-256 (lowercase hex) of everything read, and its length in bytes.
    pub fn finish(self) -> (String, u64) {
        (to_hex(&self.hasher.finalize()), self.bytes)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// What one read of an export found.
pub struct Gathered {
    pub header: Option<HeaderLine>,
    pub checkpoint: Option<CheckpointLine>,
    /// The last signed checkpoint line (the one `verify --witnesses` judges completeness by).
    pub signed_checkpoint: Option<SignedCheckpointLine>,
    pub facts: Facts,
    /// The first line that could not be read as an export line, and why (the facts stop there).
    pub unreadable: Option<String>,
    /// The time of the last event folded (statuses are judged then, as `verify` judges them).
    pub last_event_at: Option<String>,
}

/// Reads every line of `input` (to its end, so a `Hashing` reader below it sees every byte).
/// `progress` is called every 4096 lines with the lines read so far.
pub fn gather(input: impl BufRead, mut progress: impl FnMut(u64)) -> Gathered {
    let mut reader = LineReader::new(input);
    let mut gathered = Gathered {
        header: None,
        checkpoint: None,
        signed_checkpoint: None,
        facts: Facts::default(),
        unreadable: None,
        last_event_at: None,
    };
    let mut lines = 0u64;
    loop {
        let text = match reader.next_line() {
            Ok(Some(text)) => text,
            Ok(None) => break,
            Err(reason) => {
                gathered.unreadable.get_or_insert(reason);
                // The rest of the bytes still count toward the SHA-256 (a read error here would
                // stop the hash short, and the caller compares it with a second read).
                let _ = std::io::copy(&mut reader.into_inner(), &mut std::io::sink());
                return gathered;
            }
        };
        lines += 1;
        if lines % 4096 == 0 {
            progress(lines);
        }
        if gathered.unreadable.is_some() {
            continue;
        }
        match Line::parse(&text) {
            Ok(Line::Header(header)) if lines == 1 => gathered.header = Some(header),
            Ok(Line::Event(line)) => match line.into_event() {
                Ok(event) => {
                    gathered.last_event_at = Some(event.recorded_at.clone());
                    gathered.facts.push(&event);
                }
                Err(reason) => gathered.unreadable = Some(format!("line {lines}: {reason}")),
            },
            Ok(Line::Checkpoint(checkpoint)) => gathered.checkpoint = Some(checkpoint),
            Ok(Line::SignedCheckpoint(signed)) => gathered.signed_checkpoint = Some(signed),
            Ok(Line::Header(_)) => {
                gathered.unreadable = Some(format!("line {lines}: a second header"))
            }
            Err(reason) => gathered.unreadable = Some(format!("line {lines}: {reason}")),
        }
    }
    gathered
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Read};

    use sha2::{Digest, Sha256};

    use super::{gather, Hashing};
    use crate::crypto::to_hex;

    #[test]
    fn every_byte_is_hashed_even_past_a_line_that_cannot_be_read() {
        let bytes = b"not a header\n\xff\xfe not utf-8\nmore after it\nno newline at the end";
        let mut hashing = Hashing::new(&bytes[..]);
        let gathered = gather(BufReader::new(&mut hashing), |_| ());
        let (sha256, length) = hashing.finish();
        assert_eq!(sha256, to_hex(&Sha256::digest(bytes)));
        assert_eq!(length, bytes.len() as u64);
        assert!(gathered.header.is_none());
        assert!(gathered.unreadable.unwrap().starts_with("line 1: "));
        assert!(gathered.facts.proposals.is_empty());
    }

    #[test]
    fn hashing_reads_through() {
        let mut hashing = Hashing::new(&b"abc"[..]);
        let mut out = String::new();
        hashing.read_to_string(&mut out).unwrap();
        assert_eq!(out, "abc");
        assert_eq!(hashing.finish().1, 3);
    }
}
