//! The event envelope and the hash chain over it. Pure: no IO, no clock.

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use crate::crypto::canonical::{event_hash, EventHashInput, GENESIS_PREV_HASH};
use crate::crypto::to_hex;

/// Limit on one event's payload: a proposal file is at most 1 MiB and its report is far smaller,
/// so 4 MiB leaves room without letting a bad row exhaust memory.
pub const PAYLOAD_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Limit on events written by one command (one transaction).
pub const EVENTS_PER_APPEND_MAX: usize = 1024;
/// Limit on identifier strings (stream ids, event types, actors).
pub const IDENT_BYTES_MAX: usize = 256;

/// An event as the domain wants to write it; the store assigns seq, version, id, time and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub stream_id: String,
    pub event_type: String,
    pub schema_version: u32,
    pub actor: Option<String>,
    /// Exact bytes (JSON written once) that are stored and hashed.
    pub payload: Vec<u8>,
}

/// An event as stored: the full envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub ledger_id: Uuid,
    pub seq: u64,
    pub stream_id: String,
    pub stream_version: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    /// Canonical RFC 3339 UTC text with microseconds, as hashed (see [`format_timestamp`]).
    pub recorded_at: String,
    pub actor: Option<String>,
    pub payload: Vec<u8>,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl StoredEvent {
    pub fn hash_input(&self) -> EventHashInput<'_> {
        EventHashInput {
            ledger_id: &self.ledger_id,
            seq: self.seq,
            stream_id: &self.stream_id,
            stream_version: self.stream_version,
            event_id: &self.event_id,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            recorded_at: &self.recorded_at,
            actor: self.actor.as_deref(),
            payload: &self.payload,
            prev_hash: &self.prev_hash,
        }
    }

    /// The hash these fields should carry.
    pub fn computed_hash(&self) -> [u8; 32] {
        event_hash(&self.hash_input())
    }

    pub fn recorded_at_utc(&self) -> Option<DateTime<Utc>> {
        parse_timestamp(&self.recorded_at)
    }

    /// Seals a new event onto a chain head: the only way a `StoredEvent` is made for writing.
    #[allow(clippy::too_many_arguments)]
    pub fn seal(
        ledger_id: Uuid,
        seq: u64,
        stream_version: u64,
        event_id: Uuid,
        recorded_at: DateTime<Utc>,
        prev_hash: [u8; 32],
        new: NewEvent,
    ) -> StoredEvent {
        let mut event = StoredEvent {
            ledger_id,
            seq,
            stream_id: new.stream_id,
            stream_version,
            event_id,
            event_type: new.event_type,
            schema_version: new.schema_version,
            recorded_at: format_timestamp(recorded_at),
            actor: new.actor,
            payload: new.payload,
            prev_hash,
            hash: [0; 32],
        };
        event.hash = event.computed_hash();
        event
    }
}

/// Canonical timestamp text: UTC, microsecond precision, `Z` suffix, always 27 bytes
/// (`2026-05-07T14:30:00.000000Z`). Microseconds because PostgreSQL keeps no more.
pub fn format_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses only the canonical form, so that one instant has exactly one accepted spelling: a
/// real date of years 0000 to 9999 and a time without a leap second (`23:59:60` is refused:
/// rollbook never writes one, and chrono would read it as a second instant 23:59:59.999999+).
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    canonical_timestamp(text)
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` with a real date and a time without a leap second.
fn canonical_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let bytes: &[u8; 27] = text.as_bytes().try_into().ok()?;
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes[range].iter().try_fold(0u32, |value, &digit| {
            digit
                .is_ascii_digit()
                .then(|| value * 10 + u32::from(digit - b'0'))
        })
    };
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (26, b'Z'),
    ];
    if separators.iter().any(|&(at, byte)| bytes[at] != byte) {
        return None;
    }
    let date =
        chrono::NaiveDate::from_ymd_opt(number(0..4)? as i32, number(5..7)?, number(8..10)?)?;
    let time = chrono::NaiveTime::from_hms_micro_opt(
        number(11..13)?,
        number(14..16)?,
        number(17..19)?,
        number(20..26)?,
    )?;
    Some(date.and_time(time).and_utc())
}

/// How far an id's UUIDv7 time may lie from the time of the event that introduces it (an
/// event id from its event's `recorded_at`, a proposal id from its recording's). Writers take
/// both from one clock reading, and the store may move `recorded_at` forward onto the head's
/// time, which another writer's clock set; 10 minutes is ten times the largest skew between
/// writers' clocks rollbook plans to allow (`clock_skew_max_seconds`, 60 s by default), yet
/// short enough that a verifier remembers ids for minutes, not for the ledger's life.
pub const ID_TIME_WINDOW_SECONDS: i64 = 600;

/// A new UUIDv7 carrying `at` (to the millisecond) and random bits: how the store names an
/// event and the service a proposal, so that each id's time is its event's time. Times before
/// 1970 cannot be carried and become 1970 (the verifier then refuses them).
pub fn uuid_v7_at(at: DateTime<Utc>) -> Uuid {
    let seconds = u64::try_from(at.timestamp()).unwrap_or(0);
    Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        seconds,
        at.timestamp_subsec_nanos(),
    ))
}

/// The time a UUIDv7 carries (its first 48 bits, Unix milliseconds), or `None` when `id` is
/// not a version 7, RFC 9562 variant UUID.
pub fn uuid_v7_time(id: &Uuid) -> Option<DateTime<Utc>> {
    if id.get_version_num() != 7 || id.get_variant() != uuid::Variant::RFC4122 {
        return None;
    }
    let bytes = id.as_bytes();
    let mut millis = [0u8; 8];
    millis[2..].copy_from_slice(&bytes[..6]);
    DateTime::from_timestamp_millis(i64::from_be_bytes(millis))
}

/// `text` as a UUID when it is spelled the one way rollbook writes ids (lowercase, hyphenated),
/// else `None`: an id held as a `Uuid` is then found exactly when its text would have been.
pub fn parse_canonical_uuid(text: &str) -> Option<Uuid> {
    Uuid::parse_str(text)
        .ok()
        .filter(|id| id.hyphenated().to_string() == text)
}

/// Whether `id` is a UUIDv7 whose time lies within `ID_TIME_WINDOW_SECONDS` of `at`.
pub fn uuid_v7_near(id: &Uuid, at: DateTime<Utc>) -> bool {
    uuid_v7_time(id)
        .is_some_and(|time| (time - at).abs() <= chrono::Duration::seconds(ID_TIME_WINDOW_SECONDS))
}

/// Why a chain does not verify, with the first seq where it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("seq {found}: expected seq {expected} (events missing, duplicated or reordered) (C1)")]
    SeqGap { expected: u64, found: u64 },
    #[error("seq {seq}: belongs to ledger {found}, expected ledger {expected} (C2)")]
    WrongLedger {
        seq: u64,
        expected: Uuid,
        found: Uuid,
    },
    #[error(
        "seq {seq}: prev_hash {found} does not match the hash of seq {prev_seq} ({expected}) (C3)"
    )]
    PrevHashMismatch {
        seq: u64,
        prev_seq: u64,
        expected: String,
        found: String,
    },
    #[error("seq {seq}: stored hash {stored} does not match the recomputed hash {computed} (the event was altered) (C4)")]
    HashMismatch {
        seq: u64,
        stored: String,
        computed: String,
    },
    #[error(
        "seq {seq}: recorded_at {text:?} is not a canonical UTC timestamp of a real instant (C5)"
    )]
    BadTimestamp { seq: u64, text: String },
    #[error("seq {seq}: recorded_at {text} is earlier than the previous event's (C6)")]
    TimeReversed { seq: u64, text: String },
    #[error("seq {seq}: {what} is longer than the limit of {limit} bytes (C9)")]
    OverLimit {
        seq: u64,
        what: &'static str,
        limit: usize,
    },
}

/// Streaming verifier of seq continuity and the hash chain: feed events in seq order; it keeps
/// only the previous hash and the version of each stream seen, never the events themselves.
/// Stream versions are checked by the store's unique index and by replay, so this verifier only
/// needs O(1) memory per event.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ChainVerifier {
    ledger_id: Option<Uuid>,
    next_seq: u64,
    prev_hash: [u8; 32],
    prev_recorded_at: Option<DateTime<Utc>>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        ChainVerifier {
            ledger_id: None,
            next_seq: 1,
            prev_hash: GENESIS_PREV_HASH,
            prev_recorded_at: None,
        }
    }

    pub fn events_verified(&self) -> u64 {
        self.next_seq - 1
    }

    pub fn head_hash(&self) -> [u8; 32] {
        self.prev_hash
    }

    pub fn push(&mut self, event: &StoredEvent) -> Result<(), ChainError> {
        self.push_hashed(event, event.computed_hash())
    }

    /// `push` with the event's hash already computed (`event.computed_hash()`, which depends on
    /// nothing else), so a pipeline can hash on another core. Same checks, same order.
    pub fn push_hashed(
        &mut self,
        event: &StoredEvent,
        computed: [u8; 32],
    ) -> Result<(), ChainError> {
        if event.seq != self.next_seq {
            return Err(ChainError::SeqGap {
                expected: self.next_seq,
                found: event.seq,
            });
        }
        match self.ledger_id {
            None => self.ledger_id = Some(event.ledger_id),
            Some(expected) if expected != event.ledger_id => {
                return Err(ChainError::WrongLedger {
                    seq: event.seq,
                    expected,
                    found: event.ledger_id,
                })
            }
            Some(_) => {}
        }
        if event.payload.len() > PAYLOAD_BYTES_MAX {
            return Err(ChainError::OverLimit {
                seq: event.seq,
                what: "payload",
                limit: PAYLOAD_BYTES_MAX,
            });
        }
        let recorded_at =
            parse_timestamp(&event.recorded_at).ok_or_else(|| ChainError::BadTimestamp {
                seq: event.seq,
                text: event.recorded_at.clone(),
            })?;
        if event.prev_hash != self.prev_hash {
            return Err(ChainError::PrevHashMismatch {
                seq: event.seq,
                prev_seq: event.seq - 1,
                expected: to_hex(&self.prev_hash),
                found: to_hex(&event.prev_hash),
            });
        }
        if computed != event.hash {
            return Err(ChainError::HashMismatch {
                seq: event.seq,
                stored: to_hex(&event.hash),
                computed: to_hex(&computed),
            });
        }
        // Writers serialize on the head and read the clock inside the lock, so time never goes
        // backwards along the chain; a reversed time means rows were reordered or forged.
        if let Some(previous) = self.prev_recorded_at {
            if recorded_at < previous {
                return Err(ChainError::TimeReversed {
                    seq: event.seq,
                    text: event.recorded_at.clone(),
                });
            }
        }
        self.prev_recorded_at = Some(recorded_at);
        self.prev_hash = event.hash;
        self.next_seq += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The timestamps read by hand agree with chrono's reading and the canonical spelling,
    /// for every field at and around its limits, leap seconds apart (refused).
    #[test]
    fn timestamps_agree_with_chrono_and_refuse_leap_seconds() {
        use chrono::Timelike;
        let chrono_reading = |text: &str| {
            let parsed = DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc);
            (format_timestamp(parsed) == text).then_some(parsed)
        };
        let mut texts = Vec::new();
        for year in [
            "0000", "0001", "1969", "1970", "2024", "2026", "2100", "9999",
        ] {
            for month in ["00", "01", "02", "12", "13"] {
                for day in ["00", "01", "28", "29", "30", "31", "32"] {
                    for time in [
                        "00:00:00.000000",
                        "23:59:59.999999",
                        "23:59:60.000000",
                        "24:00:00.000000",
                        "12:60:00.000000",
                        "12:00:61.000000",
                    ] {
                        texts.push(format!("{year}-{month}-{day}T{time}Z"));
                    }
                }
            }
        }
        for odd in [
            "2026-12-02T10:00:00.000000z",
            "2026-12-02 10:00:00.000000Z",
            "2026-12-02T10:00:00.00000Z",
            "2026-12-02T10:00:00.000000+00:00",
            "2026-12-02T10:00:00Z",
            "+2026-12-0T10:00:00.000000Z",
            "2026-1a-02T10:00:00.000000Z",
            "2026-12-02T10:00:00.0000001Z",
            "2016-12-31T23:59:60.000000Z",
            "",
        ] {
            texts.push(odd.to_string());
        }
        let mut accepted = 0;
        for text in &texts {
            let expected = chrono_reading(text).filter(|at| at.nanosecond() < 1_000_000_000);
            assert_eq!(parse_timestamp(text), expected, "{text}");
            accepted += usize::from(expected.is_some());
        }
        assert!(accepted > 100);
        assert!(chrono_reading("2016-12-31T23:59:60.000000Z").is_some());
        assert_eq!(parse_timestamp("2016-12-31T23:59:60.000000Z"), None);
    }

    #[test]
    fn ids_carry_their_time() {
        let at = Utc.with_ymd_and_hms(2026, 5, 7, 14, 30, 0).unwrap()
            + chrono::Duration::microseconds(123_456);
        let id = uuid_v7_at(at);
        assert_eq!(
            uuid_v7_time(&id),
            Some(
                Utc.with_ymd_and_hms(2026, 5, 7, 14, 30, 0).unwrap()
                    + chrono::Duration::milliseconds(123)
            )
        );
        let id_time = uuid_v7_time(&id).unwrap();
        let window = chrono::Duration::seconds(ID_TIME_WINDOW_SECONDS);
        let just_over = window + chrono::Duration::microseconds(1);
        assert!(uuid_v7_near(&id, at));
        assert!(uuid_v7_near(&id, id_time + window) && uuid_v7_near(&id, id_time - window));
        assert!(!uuid_v7_near(&id, id_time + just_over) && !uuid_v7_near(&id, id_time - just_over));
        assert_ne!(uuid_v7_at(at), id, "random bits differ");
        assert_eq!(
            uuid_v7_time(&Uuid::from_u128(0x0196_a4f2_0000_4000_8000_0000_0000_0001)),
            None
        );
        assert_eq!(uuid_v7_time(&Uuid::from_u128(7)), None);
    }
    use chrono::TimeZone;

    fn chain(count: u64) -> Vec<StoredEvent> {
        let ledger = Uuid::from_bytes([7; 16]);
        let mut prev = GENESIS_PREV_HASH;
        (1..=count)
            .map(|seq| {
                let at = Utc.with_ymd_and_hms(2026, 5, 7, 14, 30, 0).unwrap()
                    + chrono::Duration::seconds(seq as i64);
                let event = StoredEvent::seal(
                    ledger,
                    seq,
                    seq,
                    Uuid::from_u128(seq as u128),
                    at,
                    prev,
                    NewEvent {
                        stream_id: "s".into(),
                        event_type: "test.event".into(),
                        schema_version: 1,
                        actor: None,
                        payload: format!("{{\"n\":{seq}}}").into_bytes(),
                    },
                );
                prev = event.hash;
                event
            })
            .collect()
    }

    fn verify(events: &[StoredEvent]) -> Result<(), ChainError> {
        let mut verifier = ChainVerifier::new();
        events.iter().try_for_each(|event| verifier.push(event))
    }

    #[test]
    fn a_sealed_chain_verifies() {
        verify(&chain(5)).unwrap();
    }

    #[test]
    fn timestamps_have_one_spelling() {
        let at = Utc.with_ymd_and_hms(2026, 5, 7, 14, 30, 0).unwrap();
        assert_eq!(format_timestamp(at), "2026-05-07T14:30:00.000000Z");
        assert_eq!(parse_timestamp("2026-05-07T14:30:00.000000Z"), Some(at));
        assert_eq!(parse_timestamp("2026-05-07T14:30:00Z"), None);
        assert_eq!(parse_timestamp("2026-05-07T16:30:00.000000+02:00"), None);
    }

    #[test]
    fn tampering_is_reported_at_the_first_broken_seq() {
        let mut events = chain(5);
        events[2].payload = b"{\"n\":99}".to_vec();
        assert!(matches!(
            verify(&events),
            Err(ChainError::HashMismatch { seq: 3, .. })
        ));

        let mut events = chain(5);
        events.remove(2);
        assert!(matches!(
            verify(&events),
            Err(ChainError::SeqGap {
                expected: 3,
                found: 4
            })
        ));

        let mut events = chain(5);
        events.swap(1, 2);
        assert!(matches!(
            verify(&events),
            Err(ChainError::SeqGap {
                expected: 2,
                found: 3
            })
        ));

        // Renumbering a dropped tail's successor does not help: its prev_hash no longer matches.
        let mut events = chain(5);
        events.remove(2);
        events[2].seq = 3;
        events[2].hash = events[2].computed_hash();
        assert!(matches!(
            verify(&events),
            Err(ChainError::PrevHashMismatch { seq: 3, .. })
        ));
    }
}
