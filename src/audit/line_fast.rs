//! A one-pass reader for event lines that are exactly in canonical form, in front of the serde
//! path of `Line::parse` (parse, then re-serialize and compare).
//!
//! The canonical form of an event line is what `serde_json::to_string(&EventLine)` writes: the
//! keys in declaration order, no whitespace, integers in plain decimal, strings escaped as
//! serde_json escapes them (`\"`, `\\`, `\b \t \n \f \r`, other bytes below 0x20 as `\u00xx`
//! with lowercase hex, nothing else). This reader accepts exactly that and answers `None` for
//! anything else, and the caller then takes the serde path, which decides and writes every
//! error message. The contract, checked by the differential tests at the end of this file:
//! whenever this returns `Some(line)`, the serde path returns `Ok(line)`.
//!
//! Why: the serde path read and wrote every byte of every line, and a verifier reads each
//! recorded roll's line (about 8 KB, mostly one escaped payload) once.

use super::export::EventLine;
use crate::domain::events::{
    Event, ProposalCommitted, ProposalKind, ProposalRecorded, ProposalSigned, ProposalTerms,
    SignatureEnvelope, SCHEMA_VERSION,
};

/// The event line `text` holds when `text` is exactly its canonical serialization.
pub(crate) fn parse_event(text: &str) -> Option<EventLine> {
    let mut reader = Reader {
        bytes: text.as_bytes(),
        at: 0,
    };
    reader.literal(b"{\"type\":\"event\",\"seq\":")?;
    let seq = reader.integer()?;
    reader.literal(b",\"ledger_id\":")?;
    let ledger_id = reader.string()?;
    reader.literal(b",\"stream_id\":")?;
    let stream_id = reader.string()?;
    reader.literal(b",\"stream_version\":")?;
    let stream_version = reader.integer()?;
    reader.literal(b",\"event_id\":")?;
    let event_id = reader.string()?;
    reader.literal(b",\"event_type\":")?;
    let event_type = reader.string()?;
    reader.literal(b",\"schema_version\":")?;
    let schema_version = u32::try_from(reader.integer()?).ok()?;
    reader.literal(b",\"recorded_at\":")?;
    let recorded_at = reader.string()?;
    reader.literal(b",\"actor\":")?;
    let actor = if reader.literal(b"null").is_some() {
        None
    } else {
        Some(reader.string()?)
    };
    reader.literal(b",\"payload\":")?;
    // The payload is most of the line: room for all of it up front, instead of regrowth.
    let payload = reader.string_with_capacity(text.len() - reader.at)?;
    reader.literal(b",\"prev_hash\":")?;
    let prev_hash = reader.string()?;
    reader.literal(b",\"hash\":")?;
    let hash = reader.string()?;
    reader.literal(b"}")?;
    if reader.at != reader.bytes.len() {
        return None;
    }
    Some(EventLine {
        line_type: "event".into(),
        seq,
        ledger_id,
        stream_id,
        stream_version,
        event_id,
        event_type,
        schema_version,
        recorded_at,
        actor,
        payload,
        prev_hash,
        hash,
    })
}

/// The payload of an event of one of the three types a ledger is mostly made of, when the
/// payload is exactly serde_json's canonical serialization of it (the writer's spelling);
/// `None` for anything else, which `Event::from_payload` then reads and judges. The contract,
/// checked by the differential tests at the end of this file: whenever this returns
/// `Some(event)`, `Event::from_payload` returns `Ok(event)`.
///
/// Why: a verifier parses every payload, and serde_json decodes a roll's escaped body and
/// report a few bytes at a time.
pub(crate) fn parse_payload(
    event_type: &str,
    schema_version: u32,
    payload: &[u8],
) -> Option<Event> {
    if schema_version != SCHEMA_VERSION {
        return None;
    }
    let mut reader = Reader {
        bytes: payload,
        at: 0,
    };
    let event = match event_type {
        "proposal.signed" => {
            reader.literal(b"{\"proposal_id\":")?;
            let proposal_id = reader.string()?;
            reader.literal(b",\"signature\":")?;
            let signature = reader.envelope()?;
            Event::ProposalSigned(ProposalSigned {
                proposal_id,
                signature,
            })
        }
        "proposal.committed" => {
            reader.literal(b"{\"proposal_id\":")?;
            let proposal_id = reader.string()?;
            reader.literal(b",\"counted_signers\":[")?;
            let mut counted_signers = Vec::new();
            if reader.literal(b"]").is_none() {
                loop {
                    counted_signers.push(reader.string()?);
                    if reader.literal(b"]").is_some() {
                        break;
                    }
                    reader.literal(b",")?;
                }
            }
            reader.literal(b",\"signer_set_version\":")?;
            let signer_set_version = reader.integer()?;
            reader.literal(b",\"threshold\":")?;
            let threshold = u32::try_from(reader.integer()?).ok()?;
            Event::ProposalCommitted(ProposalCommitted {
                proposal_id,
                counted_signers,
                signer_set_version,
                threshold,
            })
        }
        "proposal.recorded" => {
            reader.literal(b"{\"proposal_id\":")?;
            let proposal_id = reader.string()?;
            reader.literal(b",\"kind\":")?;
            let kind = match reader.string()?.as_str() {
                "roll" => ProposalKind::Roll,
                "signer_set" => ProposalKind::SignerSet,
                "policy" => ProposalKind::Policy,
                _ => return None,
            };
            reader.literal(b",\"body\":")?;
            let body = reader.string()?;
            reader.literal(b",\"report_json\":")?;
            let report_json = reader.nullable(Reader::string)?;
            reader.literal(b",\"verdict\":")?;
            let verdict = reader.nullable(Reader::string)?;
            reader.literal(b",\"contracts_requested\":")?;
            let contracts_requested =
                reader.nullable(|reader| u32::try_from(reader.integer()?).ok())?;
            reader.literal(b",\"policy_version\":")?;
            let policy_version = reader.integer()?;
            reader.literal(b",\"policy_hash\":")?;
            let policy_hash = reader.string()?;
            reader.literal(b",\"signer_set_version\":")?;
            let signer_set_version = reader.integer()?;
            reader.literal(b",\"created_at\":")?;
            let created_at = reader.string()?;
            reader.literal(b",\"expires_at\":")?;
            let expires_at = reader.string()?;
            reader.literal(b",\"subject_digest\":")?;
            let subject_digest = reader.string()?;
            reader.literal(b",\"signature\":")?;
            let signature = reader.envelope()?;
            Event::ProposalRecorded(ProposalRecorded {
                terms: ProposalTerms {
                    proposal_id,
                    kind,
                    body,
                    report_json,
                    verdict,
                    contracts_requested,
                    policy_version,
                    policy_hash,
                    signer_set_version,
                    created_at,
                    expires_at,
                },
                subject_digest,
                signature,
            })
        }
        _ => return None,
    };
    reader.literal(b"}")?;
    (reader.at == payload.len()).then_some(event)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// What a byte inside a JSON string means to the reader.
const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const BACKSLASH: u8 = 2;
/// A raw control character: never in valid JSON.
const CONTROL: u8 = 3;

const CLASS: [u8; 256] = {
    let mut table = [PLAIN; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = CONTROL;
        byte += 1;
    }
    table[b'"' as usize] = QUOTE;
    table[b'\\' as usize] = BACKSLASH;
    table
};

impl Reader<'_> {
    /// `null`, or what `read` reads.
    fn nullable<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.literal(b"null").is_some() {
            Some(None)
        } else {
            read(self).map(Some)
        }
    }

    /// A signature envelope: `{"key_id":..,"message":..,"signature":..}`.
    fn envelope(&mut self) -> Option<SignatureEnvelope> {
        self.literal(b"{\"key_id\":")?;
        let key_id = self.string()?;
        self.literal(b",\"message\":")?;
        let message = self.string()?;
        self.literal(b",\"signature\":")?;
        let signature = self.string()?;
        self.literal(b"}")?;
        Some(SignatureEnvelope {
            key_id,
            message,
            signature,
        })
    }

    fn literal(&mut self, expected: &[u8]) -> Option<()> {
        let rest = self.bytes.get(self.at..)?;
        if rest.starts_with(expected) {
            self.at += expected.len();
            Some(())
        } else {
            None
        }
    }

    /// A u64 in plain decimal: no sign, no leading zero, no fraction or exponent.
    fn integer(&mut self) -> Option<u64> {
        let start = self.at;
        let mut value: u64 = 0;
        while let Some(&digit) = self.bytes.get(self.at) {
            if !digit.is_ascii_digit() {
                break;
            }
            value = value
                .checked_mul(10)?
                .checked_add(u64::from(digit - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        if digits == 0 || (digits > 1 && self.bytes[start] == b'0') {
            return None;
        }
        Some(value)
    }

    /// A string in serde_json's escaping, decoded. (Payloads are JSON, so escapes come every
    /// few bytes: the runs between them are found by a tight loop over locals and copied
    /// whole.)
    fn string(&mut self) -> Option<String> {
        self.string_with_capacity(0)
    }

    fn string_with_capacity(&mut self, capacity: usize) -> Option<String> {
        self.literal(b"\"")?;
        let bytes = self.bytes;
        let mut at = self.at;
        let mut out: Vec<u8> = Vec::with_capacity(capacity);
        loop {
            let run_start = at;
            at = plain_run_end(bytes, at);
            out.extend_from_slice(&bytes[run_start..at]);
            match *bytes.get(at)? {
                b'"' => {
                    at += 1;
                    break;
                }
                b'\\' => {
                    let decoded = match *bytes.get(at + 1)? {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'b' => 0x08,
                        b't' => b'\t',
                        b'n' => b'\n',
                        b'f' => 0x0c,
                        b'r' => b'\r',
                        b'u' => {
                            let code = bytes.get(at + 2..at + 6)?;
                            let value = match code {
                                [b'0', b'0', high @ (b'0' | b'1'), low] => {
                                    ((high - b'0') << 4) | lowercase_hex_digit(*low)?
                                }
                                _ => return None,
                            };
                            // serde_json writes these five with their short escapes.
                            if matches!(value, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                                return None;
                            }
                            at += 4;
                            value
                        }
                        _ => return None,
                    };
                    out.push(decoded);
                    at += 2;
                }
                _ => return None, // a raw control character
            }
        }
        self.at = at;
        // Every escape decodes to one ASCII byte, so runs are cut only at ASCII bytes: the
        // output is UTF-8 exactly when the input's runs are (a str's always are; a payload's
        // bytes are checked here, and a failure takes the serde path).
        String::from_utf8(out).ok()
    }
}

/// The index of the first byte at or after `at` that is not PLAIN (a quote, a backslash or a
/// control character), or `bytes.len()`. Eight bytes at a time: a word's lowest flagged byte
/// is exact (the borrows of the zero-byte test only flag bytes above a true one).
fn plain_run_end(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let flagged = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (word.wrapping_sub(ONES * 0x20) & !word);
        let flagged = flagged & HIGHS;
        if flagged != 0 {
            return at + (flagged.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while at < bytes.len() && CLASS[usize::from(bytes[at])] == PLAIN {
        at += 1;
    }
    at
}

fn lowercase_hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::export::Line;
    use proptest::prelude::*;

    fn sample(payload: String, actor: Option<String>) -> EventLine {
        EventLine {
            line_type: "event".into(),
            seq: 7,
            ledger_id: "0190a4f2-7d3c-7e2a-9b1c-3d4e5f607182".into(),
            stream_id: "ledger".into(),
            stream_version: 3,
            event_id: "0190a4f2-7d3c-7e2a-9b1c-3d4e5f607183".into(),
            event_type: "proposal.signed".into(),
            schema_version: 1,
            recorded_at: "2026-12-02T10:00:00.000000Z".into(),
            actor,
            payload,
            prev_hash: "ab".repeat(32),
            hash: "cd".repeat(32),
        }
    }

    /// The serde path of `Line::parse`, which the fast reader must agree with.
    fn serde_path(text: &str) -> Result<EventLine, String> {
        match Line::parse_without_fast_path(text)? {
            Line::Event(line) => Ok(line),
            _ => Err("not an event line".into()),
        }
    }

    #[test]
    fn the_word_scan_finds_the_same_run_end_as_the_byte_scan() {
        let byte_scan = |bytes: &[u8], mut at: usize| {
            while at < bytes.len() && CLASS[usize::from(bytes[at])] == PLAIN {
                at += 1;
            }
            at
        };
        // Every byte value at every offset of a word, behind plain bytes of every kind
        // (including the ones just above and below the flagged values, and non-ASCII).
        for stop in 0u8..=255 {
            for filler in [b'a', b'!', b'#', b'[', b']', 0x20, 0x7f, 0x80, 0xff] {
                for position in 0..20 {
                    let mut bytes = vec![filler; 24];
                    bytes[position] = stop;
                    for start in 0..4 {
                        assert_eq!(
                            plain_run_end(&bytes, start),
                            byte_scan(&bytes, start),
                            "stop {stop:#x} filler {filler:#x} at {position} from {start}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn reads_canonical_lines_with_every_escape() {
        let mut every_byte: String = (0u8..0x80).map(char::from).collect();
        every_byte.push_str("é€😀\\\"/");
        for payload in [String::new(), "{\"a\":\"b\\\"c\"}".into(), every_byte] {
            for actor in [None, Some("SHA256:abc\n".to_string())] {
                let line = sample(payload.clone(), actor);
                let text = serde_json::to_string(&line).unwrap();
                assert_eq!(parse_event(&text), Some(line.clone()), "{text}");
                assert_eq!(serde_path(&text), Ok(line));
            }
        }
    }

    #[test]
    fn leaves_non_canonical_spellings_to_the_serde_path() {
        let text = serde_json::to_string(&sample("x/y\u{1}\n".into(), None)).unwrap();
        let variants = [
            text.replace("x/y", "x\\/y"), // an escape serde does not write
            text.replace("\\u0001", "\\u0001".to_uppercase().as_str()), // uppercase \U is invalid
            text.replace("\\n", "\\u000a"), // a long escape for a short one
            text.replace("\"seq\":7", "\"seq\":07"), // a leading zero
            text.replace("\"seq\":7", "\"seq\":7.0"), // a fraction
            text.replace("\"seq\":7", "\"seq\": 7"), // whitespace
            text.replace("\"schema_version\":1", "\"schema_version\":4294967296"),
            text.replace("\"seq\":7", "\"seq\":18446744073709551616"),
            format!("{text} "),
            text.replacen(",\"actor\":null", "", 1),
        ];
        for variant in variants {
            assert_ne!(variant, text);
            assert_eq!(parse_event(&variant), None, "{variant}");
            assert!(serde_path(&variant).is_err(), "{variant}");
        }
        let mut raw_control = text.clone();
        raw_control.insert(text.find("x/y").unwrap(), '\u{2}');
        assert_eq!(parse_event(&raw_control), None);
    }

    fn any_text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                4 => proptest::char::range('\u{0}', '\u{7f}'),
                1 => proptest::char::any(),
            ],
            0..40,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    fn envelope(text: String) -> SignatureEnvelope {
        SignatureEnvelope {
            key_id: text.clone(),
            message: "00ff".into(),
            signature: text,
        }
    }

    /// The serde reading `parse_payload` must agree with.
    fn serde_payload(event_type: &str, payload: &[u8]) -> Result<Event, String> {
        Event::from_payload(event_type, SCHEMA_VERSION, payload).map_err(|e| e.to_string())
    }

    fn payload_samples(text: String, number: u64, small: u32) -> Vec<(&'static str, Event)> {
        let recorded = |report: Option<String>, verdict: Option<String>, contracts: Option<u32>| {
            Event::ProposalRecorded(ProposalRecorded {
                terms: ProposalTerms {
                    proposal_id: text.clone(),
                    kind: [
                        ProposalKind::Roll,
                        ProposalKind::SignerSet,
                        ProposalKind::Policy,
                    ][(number % 3) as usize],
                    body: format!("[roll]\nnote = \"{text}\"\n"),
                    report_json: report,
                    verdict,
                    contracts_requested: contracts,
                    policy_version: number,
                    policy_hash: text.clone(),
                    signer_set_version: u64::from(small),
                    created_at: "2026-12-02T10:00:00.000000Z".into(),
                    expires_at: text.clone(),
                },
                subject_digest: "ab".repeat(32),
                signature: envelope(text.clone()),
            })
        };
        vec![
            (
                "proposal.signed",
                Event::ProposalSigned(ProposalSigned {
                    proposal_id: text.clone(),
                    signature: envelope(text.clone()),
                }),
            ),
            (
                "proposal.committed",
                Event::ProposalCommitted(ProposalCommitted {
                    proposal_id: text.clone(),
                    counted_signers: (0..(number % 4)).map(|i| format!("{text}{i}")).collect(),
                    signer_set_version: number,
                    threshold: small,
                }),
            ),
            (
                "proposal.recorded",
                recorded(
                    Some(format!("{{\"a\":\"{text}\"}}")),
                    Some("pass".into()),
                    Some(small),
                ),
            ),
            ("proposal.recorded", recorded(None, None, None)),
        ]
    }

    fn payload_text(event: &Event) -> String {
        match event {
            Event::ProposalSigned(e) => serde_json::to_string(e),
            Event::ProposalCommitted(e) => serde_json::to_string(e),
            Event::ProposalRecorded(e) => serde_json::to_string(e),
            _ => unreachable!("only these are sampled"),
        }
        .unwrap()
    }

    #[test]
    fn payloads_of_other_types_and_versions_are_left_to_serde() {
        let (event_type, event) = payload_samples("x".into(), 1, 2).remove(0);
        let text = payload_text(&event);
        assert_eq!(
            parse_payload(event_type, SCHEMA_VERSION, text.as_bytes()),
            Some(event)
        );
        assert_eq!(
            parse_payload(event_type, SCHEMA_VERSION + 1, text.as_bytes()),
            None
        );
        assert_eq!(
            parse_payload("proposal.withdrawn", SCHEMA_VERSION, text.as_bytes()),
            None
        );
        assert_eq!(
            parse_payload("proposal.committed", SCHEMA_VERSION, text.as_bytes()),
            None
        );
        for trailing in ["x", " ", "}"] {
            let longer = format!("{text}{trailing}");
            assert_eq!(
                parse_payload(event_type, SCHEMA_VERSION, longer.as_bytes()),
                None
            );
        }
        let spaced = text.replacen(':', ": ", 1);
        assert_eq!(
            parse_payload(event_type, SCHEMA_VERSION, spaced.as_bytes()),
            None
        );
        assert!(serde_payload(event_type, spaced.as_bytes()).is_ok());
        let mut invalid = text.clone().into_bytes();
        let at = text.find("\"x\"").unwrap() + 1;
        invalid[at] = 0xff;
        assert_eq!(parse_payload(event_type, SCHEMA_VERSION, &invalid), None);
        assert!(serde_payload(event_type, &invalid).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Every canonical payload of the three types reads back to itself, as serde reads it.
        #[test]
        fn canonical_payloads_read_back(text in any_text(), number in any::<u64>(), small in any::<u32>()) {
            for (event_type, event) in payload_samples(text, number, small) {
                let payload = payload_text(&event);
                prop_assert_eq!(parse_payload(event_type, SCHEMA_VERSION, payload.as_bytes()), Some(event.clone()));
                prop_assert_eq!(serde_payload(event_type, payload.as_bytes()), Ok(event));
            }
        }

        /// Any edit of a canonical payload: whenever the fast reader accepts it, serde accepts
        /// it too, with the same value.
        #[test]
        fn payload_edits_never_make_the_fast_reader_disagree(text in any_text(), sample in 0usize..4, at in any::<prop::sample::Index>(), edit in 0u8..4, insert in prop_oneof![Just('\\'), Just('"'), Just('u'), Just('0'), Just(','), Just('n'), Just(']'), Just('}'), Just(' '), any::<char>()]) {
            let (event_type, event) = payload_samples(text, 7, 3).remove(sample);
            let mut chars: Vec<char> = payload_text(&event).chars().collect();
            let i = at.index(chars.len() + usize::from(edit == 1)); // inserts may go last
            match edit {
                0 => { chars.remove(i); }
                1 => chars.insert(i, insert),
                2 => chars[i] = insert,
                _ => { chars.insert(i, insert); chars.insert(i, '\\'); }
            }
            let edited: String = chars.into_iter().collect();
            if let Some(fast) = parse_payload(event_type, SCHEMA_VERSION, edited.as_bytes()) {
                prop_assert_eq!(serde_payload(event_type, edited.as_bytes()), Ok(fast));
            }
        }

        /// Every canonical line reads back to itself.
        #[test]
        fn canonical_lines_read_back(payload in any_text(), actor in proptest::option::of(any_text()), seq in any::<u64>(), version in any::<u32>()) {
            let mut line = sample(payload, actor);
            line.seq = seq;
            line.schema_version = version;
            let text = serde_json::to_string(&line).unwrap();
            prop_assert_eq!(parse_event(&text), Some(line));
        }

        /// Any edit of a canonical line: whenever the fast reader accepts it, the serde path
        /// accepts it too, with the same value.
        #[test]
        fn edits_never_make_the_fast_reader_disagree(payload in any_text(), at in any::<prop::sample::Index>(), edit in 0u8..4, insert in prop_oneof![Just('\\'), Just('"'), Just('u'), Just('0'), Just('/'), Just('\n'), Just(' '), any::<char>()]) {
            let text = serde_json::to_string(&sample(payload, None)).unwrap();
            let mut chars: Vec<char> = text.chars().collect();
            let i = at.index(chars.len());
            match edit {
                0 => { chars.remove(i); }
                1 => chars.insert(i, insert),
                2 => chars[i] = insert,
                _ => { chars.insert(i, insert); chars.insert(i, '\\'); }
            }
            let edited: String = chars.into_iter().collect();
            if let Some(line) = parse_event(&edited) {
                prop_assert_eq!(serde_path(&edited), Ok(line));
            }
        }
    }
}
