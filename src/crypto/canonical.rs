//! Every byte string that rollbook hashes or signs is built here, and only here.
//!
//! `docs/audit-format.md` documents each layout byte by byte; a change here is a change of the
//! audit format and must bump the domain tag's version. All integers are big-endian; every
//! variable-length field is prefixed with its length as a u32, so no two different field lists
//! encode to the same bytes (no ambiguity between "ab"+"c" and "a"+"bc").

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Domain tag of the event hash. The trailing NUL ends the tag so that no tag is a prefix of another.
pub const EVENT_TAG: &[u8] = b"rollbook/v1/event\0";

/// The first event of a ledger chains to 32 zero bytes.
pub const GENESIS_PREV_HASH: [u8; 32] = [0u8; 32];

/// Appends length-prefixed fields to a byte buffer.
#[derive(Default)]
pub struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    pub fn with_tag(tag: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(256);
        bytes.extend_from_slice(tag);
        Encoder { bytes }
    }
    pub fn u32(&mut self, value: u32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }
    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }
    /// Fixed-size fields (UUIDs, hashes, keys) go in raw: their length is part of the format.
    pub fn fixed(&mut self, value: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(value);
        self
    }
    pub fn uuid(&mut self, value: &Uuid) -> &mut Self {
        self.fixed(value.as_bytes())
    }
    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        let len = u32::try_from(value.len())
            .expect("field longer than 4 GiB: limits are enforced before encoding");
        self.u32(len);
        self.bytes.extend_from_slice(value);
        self
    }
    pub fn str(&mut self, value: &str) -> &mut Self {
        self.bytes(value.as_bytes())
    }
    pub fn opt_str(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            None => self.fixed(&[0]),
            Some(text) => self.fixed(&[1]).str(text),
        }
    }
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The fields of an event envelope that its hash covers (everything but the hash itself).
pub struct EventHashInput<'a> {
    pub ledger_id: &'a Uuid,
    pub seq: u64,
    pub stream_id: &'a str,
    pub stream_version: u64,
    pub event_id: &'a Uuid,
    pub event_type: &'a str,
    pub schema_version: u32,
    /// Canonical RFC 3339 text, see `crate::ledger::format_timestamp`.
    pub recorded_at: &'a str,
    pub actor: Option<&'a str>,
    /// The payload exactly as stored: hashing never re-serializes a parsed value.
    pub payload: &'a [u8],
    pub prev_hash: &'a [u8; 32],
}

/// The exact bytes hashed into an event's `hash`.
pub fn event_hash_bytes(input: &EventHashInput<'_>) -> Vec<u8> {
    let mut enc = Encoder::with_tag(EVENT_TAG);
    enc.uuid(input.ledger_id)
        .u64(input.seq)
        .str(input.stream_id)
        .u64(input.stream_version)
        .uuid(input.event_id)
        .str(input.event_type)
        .u32(input.schema_version)
        .str(input.recorded_at)
        .opt_str(input.actor)
        .bytes(input.payload)
        .fixed(input.prev_hash);
    enc.finish()
}

pub fn event_hash(input: &EventHashInput<'_>) -> [u8; 32] {
    sha256(&event_hash_bytes(input))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(ledger: &'a Uuid, event: &'a Uuid, prev: &'a [u8; 32]) -> EventHashInput<'a> {
        EventHashInput {
            ledger_id: ledger,
            seq: 1,
            stream_id: "ledger",
            stream_version: 1,
            event_id: event,
            event_type: "ledger.created",
            schema_version: 1,
            recorded_at: "2026-05-07T14:30:00.000000Z",
            actor: None,
            payload: b"{}",
            prev_hash: prev,
        }
    }

    #[test]
    fn layout_is_tag_then_fields_in_documented_order() {
        let ledger = Uuid::from_bytes([0x11; 16]);
        let event = Uuid::from_bytes([0x22; 16]);
        let bytes = event_hash_bytes(&sample(&ledger, &event, &GENESIS_PREV_HASH));
        let mut expected = Vec::new();
        expected.extend_from_slice(b"rollbook/v1/event\0");
        expected.extend_from_slice(&[0x11; 16]);
        expected.extend_from_slice(&1u64.to_be_bytes());
        expected.extend_from_slice(&6u32.to_be_bytes());
        expected.extend_from_slice(b"ledger");
        expected.extend_from_slice(&1u64.to_be_bytes());
        expected.extend_from_slice(&[0x22; 16]);
        expected.extend_from_slice(&14u32.to_be_bytes());
        expected.extend_from_slice(b"ledger.created");
        expected.extend_from_slice(&1u32.to_be_bytes());
        expected.extend_from_slice(&27u32.to_be_bytes());
        expected.extend_from_slice(b"2026-05-07T14:30:00.000000Z");
        expected.push(0);
        expected.extend_from_slice(&2u32.to_be_bytes());
        expected.extend_from_slice(b"{}");
        expected.extend_from_slice(&[0u8; 32]);
        assert_eq!(bytes, expected);
    }

    /// The example in docs/audit-format.md, "Worked example" (hash computed independently).
    #[test]
    fn documented_worked_example() {
        let ledger = Uuid::from_bytes([0x11; 16]);
        let event = Uuid::from_bytes([0x22; 16]);
        let hash = event_hash(&sample(&ledger, &event, &GENESIS_PREV_HASH));
        assert_eq!(
            crate::crypto::hex::to_hex(&hash),
            "67782d2e7379a3f522d06505ec9760dda5d7d3cf807e3627908e4d009779961e"
        );
    }

    #[test]
    fn every_field_changes_the_hash() {
        let ledger = Uuid::from_bytes([0x11; 16]);
        let event = Uuid::from_bytes([0x22; 16]);
        let base = event_hash(&sample(&ledger, &event, &GENESIS_PREV_HASH));
        let other_ledger = Uuid::from_bytes([0x12; 16]);
        let other_event = Uuid::from_bytes([0x23; 16]);
        let other_prev = [1u8; 32];
        let variants: Vec<EventHashInput> = vec![
            EventHashInput {
                ledger_id: &other_ledger,
                ..sample(&ledger, &event, &GENESIS_PREV_HASH)
            },
            EventHashInput {
                seq: 2,
                ..sample(&ledger, &event, &GENESIS_PREV_HASH)
            },
            EventHashInput {
                stream_id: "ledgeR",
                ..sample(&ledger, &event, &GENESIS_PREV_HASH)
            },
            EventHashInput {
                stream_version: 2,
                ..sample(&ledger, &event, &GENESIS_PREV_HASH)
            },
            EventHashInput {
                event_id: &other_event,
                ..sample(&ledger, &event, &GENESIS_PREV_HASH)
            },
            EventHashInput {
                event_type: "ledger.createe",
                ..sample(&ledger, &event, &GENESIS_PREV_HASH)
            },
            EventHashInput {
                schema_version: 2,
                ..sample(&ledger, &event, &GENESIS_PREV_HASH)
            },
            EventHashInput {
                recorded_at: "2026-05-07T14:30:00.000001Z",
                ..sample(&ledger, &event, &GENESIS_PREV_HASH)
            },
            EventHashInput {
                actor: Some(""),
                ..sample(&ledger, &event, &GENESIS_PREV_HASH)
            },
            EventHashInput {
                payload: b"{ }",
                ..sample(&ledger, &event, &GENESIS_PREV_HASH)
            },
            EventHashInput {
                prev_hash: &other_prev,
                ..sample(&ledger, &event, &GENESIS_PREV_HASH)
            },
        ];
        for (index, variant) in variants.iter().enumerate() {
            assert_ne!(event_hash(variant), base, "variant {index} collided");
        }
    }
}
