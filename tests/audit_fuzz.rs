//! The export reader under fuzzing. Arbitrary bytes and arbitrary JSON never panic it; and a
//! VALID export made by the product on a small ledger, mutated (fields flipped or replaced,
//! lines swapped, dropped or duplicated, payload values edited, hashes recomputed where the
//! mutation should reach the later rules), is always refused, so the auditor's rules are
//! reached, not only the parser.

use std::io::Cursor;
use std::sync::OnceLock;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::Index;
use rollbook::audit::export::{CheckpointLine, EventLine, Line};
use rollbook::audit::proofs::{check_inclusion, InclusionProof};
use rollbook::audit::{export_jsonl, verify_export};
use rollbook::crypto::keys::SecretKey;
use rollbook::crypto::merkle::MerkleBuilder;
use rollbook::domain::events::{SignerEntry, SignerSet};
use rollbook::domain::governance::ActiveSet;
use rollbook::service::{self, Ledger};
use rollbook::sizing::{Policy, Proposal};
use rollbook::store::Store;

const HEADER: &str = "{\"type\":\"header\",\"format\":\"rollbook-export\",\"version\":1,\"ledger_id\":\"01a20c95-fcf0-703c-b080-9bafd695b4d9\",\"genesis_hash\":\"00\",\"from_seq\":1,\"exported_at\":\"2026-05-07T15:00:00.000000Z\",\"rollbook_version\":\"0\"}";

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<u64>().prop_map(|n| serde_json::json!(n)),
        "[a-z0-9:.\\-]{0,70}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_string()),
                    Just("seq".to_string()),
                    Just("payload".to_string()),
                    Just("events".to_string()),
                    "[a-z_]{1,12}"
                ],
                inner,
                0..8
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_export_reader_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = verify_export(Cursor::new(bytes.clone()), |_| {});
        let mut with_header = format!("{HEADER}\n").into_bytes();
        with_header.extend(bytes);
        let _ = verify_export(Cursor::new(with_header), |_| {});
    }

    #[test]
    fn the_export_reader_never_panics_on_json(values in prop::collection::vec(json_value(), 0..6), kind in 0usize..4) {
        let mut text = format!("{HEADER}\n");
        for value in &values {
            let mut value = value.clone();
            if let serde_json::Value::Object(map) = &mut value {
                map.insert("type".into(), serde_json::Value::String(["event", "checkpoint", "header", "x"][kind].into()));
            }
            text.push_str(&serde_json::to_string(&value).unwrap());
            text.push('\n');
        }
        let _ = verify_export(Cursor::new(text.into_bytes()), |_| {});
        for value in &values {
            let _ = Line::parse(&serde_json::to_string(value).unwrap());
        }
    }

    #[test]
    fn the_proof_reader_never_panics(value in json_value(), size in any::<u64>(), index in any::<u64>(), path_len in 0usize..70) {
        if let Ok(proof) = serde_json::from_value::<InclusionProof>(value) {
            let _ = check_inclusion(&proof, None);
        }
        let proof = serde_json::json!({
            "format": "rollbook-inclusion-proof/v1",
            "ledger_id": "01a20c95-fcf0-703c-b080-9bafd695b4d9",
            "proposal_id": "p",
            "tree_size": size,
            "merkle_root": "00".repeat(32),
            "events": [{"leaf_index": index, "audit_path": vec!["11".repeat(32); path_len], "event": {
                "type": "event", "seq": index.wrapping_add(1), "ledger_id": "01a20c95-fcf0-703c-b080-9bafd695b4d9",
                "stream_id": "p", "stream_version": 1, "event_id": "01a20c95-fcf0-703c-b080-9bafd695b4d9",
                "event_type": "proposal.signed", "schema_version": 1, "recorded_at": "2026-05-07T14:30:00.000000Z",
                "actor": null, "payload": "{}", "prev_hash": "00".repeat(32), "hash": "00".repeat(32)}}]
        });
        let proof: InclusionProof = serde_json::from_value(proof).unwrap();
        prop_assert!(check_inclusion(&proof, None).is_err());
    }
}

/// A failure in the first lines of a long export ends the whole pipeline (reader, workers,
/// auditor) at once, with the first failure, whatever is still being read or prepared.
#[test]
fn an_early_failure_in_a_long_export_ends_the_walk() {
    let mut text = format!("{HEADER}\n");
    for _ in 2..20_000 {
        text.push_str("{\"type\":\"event\",\"seq\":1}\n");
    }
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome = verify_export(Cursor::new(text.into_bytes()), |_| {});
        let _ = done_tx.send(outcome.err().map(|error| error.to_string()));
    });
    let error = done_rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the verification ended")
        .expect("a broken export is refused");
    assert!(error.contains("line 2:"), "{error}");
}

/// An export made on the fly, never held whole: `HEADER`, then `line_2`, then `count` event
/// lines of `size` bytes each (refused: no fields but a seq and a payload); counts the bytes
/// the verifier pulled from it.
struct Crafted {
    pending: Vec<u8>,
    at: usize,
    line_2: Option<String>,
    count: usize,
    size: usize,
    pulled: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Crafted {
    fn new(line_2: &str, count: usize, size: usize) -> Crafted {
        Crafted {
            pending: format!("{HEADER}\n").into_bytes(),
            at: 0,
            line_2: Some(line_2.to_string()),
            count,
            size,
            pulled: Default::default(),
        }
    }

    fn len(&self) -> u64 {
        (HEADER.len()
            + 1
            + self.line_2.as_ref().map_or(0, |l| l.len() + 1)
            + self.count * self.size) as u64
    }
}

impl std::io::Read for Crafted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.pending.len() {
            self.at = 0;
            self.pending.clear();
            if let Some(line) = self.line_2.take() {
                self.pending.extend_from_slice(line.as_bytes());
                self.pending.push(b'\n');
            } else if self.count > 0 {
                self.count -= 1;
                let start = b"{\"type\":\"event\",\"seq\":1,\"payload\":\"";
                self.pending.extend_from_slice(start);
                self.pending.resize(self.size - 3, b'a');
                self.pending.extend_from_slice(b"\"}\n");
            } else {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        self.pulled
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Lines just under the 10 MiB a line may hold (X3).
const LARGE_LINE: usize = rollbook::audit::export::LINE_BYTES_MAX - 16;

/// Many lines of nearly 10 MiB, refused from line 2 (X3): refused with that line, and never read
/// 48 batches of 64 of them ahead (30 GiB), only `PIPELINE_BYTES_IN_FLIGHT`.
#[test]
fn an_export_of_large_bad_lines_is_refused_at_line_2() {
    let crafted = Crafted::new(&"a".repeat(LARGE_LINE), 100, LARGE_LINE);
    let (size, pulled) = (crafted.len(), std::sync::Arc::clone(&crafted.pulled));
    let error = verify_export(std::io::BufReader::new(crafted), |_| {})
        .expect_err("a broken export is refused")
        .to_string();
    assert!(
        error.contains("line 2:") && error.contains("(X3)"),
        "{error}"
    );
    let pulled = pulled.load(std::sync::atomic::Ordering::Relaxed);
    let bound =
        (HEADER.len() + 1 + LARGE_LINE + 64 * 1024 + rollbook::audit::PIPELINE_BYTES_IN_FLIGHT)
            as u64;
    assert!(
        pulled <= bound,
        "read {pulled} bytes of {size} ahead, more than {bound}"
    );
}

/// A valid header, a bad line 2, then 1 GiB of large lines: the reader stops once the auditor
/// failed, so it pulls at most the bytes in flight from the file, not the file.
#[test]
fn the_reader_stops_once_the_auditor_failed() {
    let crafted = Crafted::new("{\"type\":\"event\",\"seq\":1}", 100, LARGE_LINE);
    let (size, pulled) = (crafted.len(), std::sync::Arc::clone(&crafted.pulled));
    let error = verify_export(std::io::BufReader::new(crafted), |_| {})
        .expect_err("a broken export is refused")
        .to_string();
    assert!(error.contains("line 2:"), "{error}");
    let pulled = pulled.load(std::sync::atomic::Ordering::Relaxed);
    let bound = (HEADER.len() + 1 + 64 * 1024 + rollbook::audit::PIPELINE_BYTES_IN_FLIGHT) as u64;
    assert!(
        size > 8 * bound,
        "the file ({size} bytes) is far larger than the bound"
    );
    assert!(
        pulled <= bound,
        "read {pulled} bytes of {size}, more than {bound}"
    );
}

// ---------------------------------------------------------------------------------------------
// Mutations of a valid export.

const EXAMPLE: &str = include_str!("vectors/example-proposal.toml");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 7, 14, 40, 0).unwrap()
}

/// The export of a small ledger, made once: genesis (2 of 3), a committed roll with two
/// co-signatures, a failed roll, and a rejected one.
fn valid_export() -> &'static [String] {
    static EXPORT: OnceLock<Vec<String>> = OnceLock::new();
    EXPORT.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}/ledger.db", dir.path().display());
            let store = Store::open(&url).await.unwrap().trusting_caller_clock(); // a ledger built at chosen times
            let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::generate().unwrap()).collect();
            let signers = ["alice", "bob", "carol"]
                .iter()
                .zip(&keys)
                .map(|(name, key)| SignerEntry {
                    name: name.to_string(),
                    role: None,
                    public_key: hex(&key.public().as_bytes()),
                    key_id: key.public().key_id().to_string(),
                    valid_after: None,
                    valid_before: None,
                })
                .collect();
            let set = ActiveSet::validate(&SignerSet {
                version: 1,
                threshold: 2,
                signers,
            })
            .unwrap();
            let (ledger_id, _) = service::init(&store, &set, &Policy::default(), &keys[0], t0())
                .await
                .unwrap();
            let ledger = Ledger::new(store, ledger_id);
            let at = |seconds: i64| t0() + Duration::seconds(seconds);
            let body = |contracts: u32| {
                let mut proposal = Proposal::from_toml_str(EXAMPLE).unwrap();
                proposal.set_contracts_requested(contracts);
                proposal.to_toml_string()
            };
            let (committed, _) = ledger.propose_roll(body(9), &keys[1], at(1)).await.unwrap();
            ledger.sign(committed.id, &keys[0], at(2)).await.unwrap();
            ledger.sign(committed.id, &keys[2], at(3)).await.unwrap();
            ledger
                .propose_roll(body(12), &keys[1], at(4))
                .await
                .unwrap();
            let (rejected, _) = ledger.propose_roll(body(8), &keys[1], at(5)).await.unwrap();
            ledger
                .reject(rejected.id, &keys[2], "quotes are stale", at(6))
                .await
                .unwrap();
            let mut out = Vec::new();
            export_jsonl(
                &ledger.store,
                ledger_id,
                1,
                &mut out,
                "2026-05-07T15:00:00.000000Z",
            )
            .await
            .unwrap();
            let lines: Vec<String> = String::from_utf8(out)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect();
            assert!(verify(&lines).is_ok(), "the genuine export verifies");
            lines
        })
    })
}

fn verify(lines: &[String]) -> Result<(), String> {
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    verify_export(Cursor::new(text.into_bytes()), |_| {})
        .map(|_| ())
        .map_err(|error| error.to_string())
}

fn event_line(text: &str) -> Option<EventLine> {
    match Line::parse(text) {
        Ok(Line::Event(line)) => Some(line),
        _ => None,
    }
}

/// What an attacker who holds the file does after an edit: recomputes every event hash, the
/// header's genesis hash and the checkpoint, so that only the deeper rules can object.
fn rehash(lines: &[String]) -> Vec<String> {
    let Some(Ok(Line::Header(mut header))) = lines.first().map(|l| Line::parse(l)) else {
        return lines.to_vec();
    };
    let mut prev = [0u8; 32];
    let mut merkle = MerkleBuilder::new();
    let mut events = Vec::new();
    let mut ledger_id = header.ledger_id.clone();
    for text in &lines[1..lines.len() - 1] {
        let Some(mut event) = event_line(text).and_then(|line| line.to_event().ok()) else {
            events.push(text.clone());
            continue;
        };
        event.prev_hash = prev;
        event.hash = event.computed_hash();
        prev = event.hash;
        merkle.push_leaf_data(&event.hash);
        ledger_id = event.ledger_id.to_string();
        events.push(Line::Event(EventLine::from_event(&event).unwrap()).to_text());
    }
    if let Some(first) = events.first().and_then(|text| event_line(text)) {
        header.genesis_hash = first.hash;
    }
    let checkpoint = CheckpointLine {
        line_type: "checkpoint".into(),
        ledger_id,
        tree_size: events.len() as u64,
        head_hash: hex(&prev),
        merkle_root: hex(&merkle.root()),
    };
    let mut all = vec![Line::Header(header).to_text()];
    all.extend(events);
    all.push(Line::Checkpoint(checkpoint).to_text());
    all
}

/// A field of an event line's envelope.
#[derive(Debug, Clone, Copy)]
enum Field {
    Seq,
    LedgerId,
    StreamId,
    StreamVersion,
    EventId,
    EventType,
    SchemaVersion,
    RecordedAt,
    Actor,
    PrevHash,
    Hash,
}

/// Fields whose edit a re-hashing attacker must still not get past: each is bound by a rule
/// beyond the hash chain (seq continuity, one ledger, stream order, the payload's type).
const REHASHED_FIELDS: [Field; 5] = [
    Field::Seq,
    Field::LedgerId,
    Field::StreamId,
    Field::StreamVersion,
    Field::EventType,
];

#[derive(Debug, Clone)]
enum Mutation {
    Drop(Index),
    Duplicate(Index),
    Swap(Index, Index),
    /// One byte of one line replaced by a printable ASCII character.
    Byte(Index, Index, u8),
    /// One envelope field of one event, replaced by another line's value or nudged.
    Envelope(Index, Field, Index),
    /// The same for the fields of `REHASHED_FIELDS`, then every hash recomputed.
    EnvelopeRehashed(Index, Index, Index),
    /// One value inside one event's payload changed (a string, number or boolean), or one key
    /// removed or added; hashes recomputed when `rehash`.
    Payload(Index, Index, u8, bool),
    /// One field of the header or the checkpoint.
    Frame(bool, Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let field = prop::sample::select(vec![
        Field::Seq,
        Field::LedgerId,
        Field::StreamId,
        Field::StreamVersion,
        Field::EventId,
        Field::EventType,
        Field::SchemaVersion,
        Field::RecordedAt,
        Field::Actor,
        Field::PrevHash,
        Field::Hash,
    ]);
    prop_oneof![
        any::<Index>().prop_map(Mutation::Drop),
        any::<Index>().prop_map(Mutation::Duplicate),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (any::<Index>(), any::<Index>(), 0x20u8..0x7f)
            .prop_map(|(a, b, c)| Mutation::Byte(a, b, c)),
        (any::<Index>(), field, any::<Index>()).prop_map(|(a, f, b)| Mutation::Envelope(a, f, b)),
        (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(a, f, b)| Mutation::EnvelopeRehashed(a, f, b)),
        (any::<Index>(), any::<Index>(), 0u8..5, any::<bool>())
            .prop_map(|(a, b, kind, rehash)| Mutation::Payload(a, b, kind, rehash)),
        (any::<bool>(), any::<Index>(), any::<Index>())
            .prop_map(|(h, a, b)| Mutation::Frame(h, a, b)),
    ]
}

/// `field` of `line` set from `other` (another event of the export), or nudged when the two
/// agree.
fn set_field(line: &mut EventLine, field: Field, other: &EventLine) {
    let nudge = |text: &str| -> String {
        // Flips the last hex digit or character: the same length, another value.
        let mut chars: Vec<char> = text.chars().collect();
        if let Some(last) = chars.last_mut() {
            *last = if *last == '0' { '1' } else { '0' };
        }
        chars.into_iter().collect()
    };
    match field {
        Field::Seq => {
            line.seq = if other.seq != line.seq {
                other.seq
            } else {
                line.seq + 1
            }
        }
        Field::LedgerId => line.ledger_id = nudge(&line.ledger_id),
        Field::StreamId if other.stream_id != line.stream_id => {
            line.stream_id = other.stream_id.clone()
        }
        Field::StreamId => line.stream_id = nudge(&line.stream_id),
        Field::StreamVersion => line.stream_version += 1,
        Field::EventId if other.event_id != line.event_id => line.event_id = other.event_id.clone(),
        Field::EventId => line.event_id = nudge(&line.event_id),
        Field::EventType if other.event_type != line.event_type => {
            line.event_type = other.event_type.clone()
        }
        Field::EventType => line.event_type.push('x'),
        Field::SchemaVersion => line.schema_version += 1,
        Field::RecordedAt if other.recorded_at != line.recorded_at => {
            line.recorded_at = other.recorded_at.clone()
        }
        Field::RecordedAt => line.recorded_at = nudge(&line.recorded_at),
        Field::Actor => {
            line.actor = match (&line.actor, &other.actor) {
                (Some(_), _) => None,
                (None, Some(actor)) => Some(actor.clone()),
                (None, None) => Some("mallory".into()),
            }
        }
        Field::PrevHash => line.prev_hash = nudge(&line.prev_hash),
        Field::Hash => line.hash = nudge(&line.hash),
    }
}

/// Every scalar inside a JSON value, as a mutable reference.
fn leaves(value: &mut serde_json::Value) -> Vec<&mut serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map.values_mut().flat_map(leaves).collect(),
        serde_json::Value::Array(items) => items.iter_mut().flat_map(leaves).collect(),
        leaf => vec![leaf],
    }
}

fn edit_payload(line: &mut EventLine, at: Index, kind: u8) {
    let Ok(mut payload) = serde_json::from_str::<serde_json::Value>(&line.payload) else {
        return;
    };
    match kind {
        // Remove one top-level key, or add an unknown one.
        3 => {
            if let serde_json::Value::Object(map) = &mut payload {
                if let Some(key) = map.keys().nth(at.index(map.len().max(1))).cloned() {
                    map.remove(&key);
                }
            }
        }
        4 => {
            if let serde_json::Value::Object(map) = &mut payload {
                map.insert("extra".into(), serde_json::Value::Bool(true));
            }
        }
        _ => {
            let mut all = leaves(&mut payload);
            if all.is_empty() {
                return;
            }
            let leaf = &mut *all.remove(at.index(all.len()));
            *leaf = match (&*leaf, kind) {
                (serde_json::Value::String(s), 0) => serde_json::Value::String(format!("{s}x")),
                (serde_json::Value::String(s), _) if !s.is_empty() => {
                    serde_json::Value::String(s[..s.len() / 2].to_string())
                }
                (serde_json::Value::Number(n), _) => {
                    serde_json::json!(n.as_u64().map_or(1, |n| n.wrapping_add(1)))
                }
                (serde_json::Value::Bool(b), _) => serde_json::Value::Bool(!b),
                (serde_json::Value::Null, _) => serde_json::Value::String("x".into()),
                _ => serde_json::Value::Null,
            };
        }
    }
    line.payload = serde_json::to_string(&payload).unwrap();
}

fn apply(lines: &[String], mutation: &Mutation) -> Vec<String> {
    let mut out = lines.to_vec();
    let events = 1..lines.len() - 1;
    let event_at = |at: &Index| events.start + at.index(events.len());
    match mutation {
        Mutation::Drop(at) => {
            out.remove(at.index(out.len()));
        }
        Mutation::Duplicate(at) => {
            let i = at.index(out.len());
            out.insert(i, out[i].clone());
        }
        Mutation::Swap(a, b) => out.swap(a.index(lines.len()), b.index(lines.len())),
        Mutation::Byte(at, position, byte) => {
            let line = &mut out[at.index(lines.len())];
            let mut bytes = line.clone().into_bytes();
            let i = position.index(bytes.len());
            if at.index(lines.len()) == 0 && i >= line.find(",\"exported_at\":").unwrap() {
                // The header's last two fields describe the file, not the ledger (see `Frame`).
                return out;
            }
            bytes[i] = *byte;
            // A byte in the middle of a multi-byte character would not be text at all.
            if let Ok(text) = String::from_utf8(bytes) {
                *line = text;
            }
        }
        Mutation::Envelope(at, field, other) => {
            let i = event_at(at);
            let mut line = event_line(&out[i]).unwrap();
            let other = event_line(&lines[event_at(other)]).unwrap();
            set_field(&mut line, *field, &other);
            out[i] = Line::Event(line).to_text();
        }
        Mutation::EnvelopeRehashed(at, field, other) => {
            let i = event_at(at);
            let mut line = event_line(&out[i]).unwrap();
            let other = event_line(&lines[event_at(other)]).unwrap();
            let field = REHASHED_FIELDS[field.index(REHASHED_FIELDS.len())];
            set_field(&mut line, field, &other);
            out[i] = Line::Event(line).to_text();
            out = rehash(&out);
        }
        Mutation::Payload(at, leaf, kind, rehashed) => {
            let i = event_at(at);
            let mut line = event_line(&out[i]).unwrap();
            edit_payload(&mut line, *leaf, *kind);
            out[i] = Line::Event(line).to_text();
            if *rehashed {
                out = rehash(&out);
            }
        }
        Mutation::Frame(header, field, other) => {
            let i = if *header { 0 } else { out.len() - 1 };
            let mut value: serde_json::Value = serde_json::from_str(&out[i]).unwrap();
            let serde_json::Value::Object(map) = &mut value else {
                unreachable!("export lines are objects")
            };
            // `exported_at` and `rollbook_version` describe the file, not the ledger: no rule
            // binds them, so editing them is not a tamper.
            let keys: Vec<String> = map
                .keys()
                .filter(|k| !matches!(k.as_str(), "type" | "exported_at" | "rollbook_version"))
                .cloned()
                .collect();
            let key = &keys[field.index(keys.len())];
            let replacement = match &map[key] {
                serde_json::Value::Number(n) => {
                    serde_json::json!(n.as_u64().unwrap_or(0) + 1 + other.index(3) as u64)
                }
                serde_json::Value::String(s) => {
                    let mut s = s.clone();
                    let last = s.pop().unwrap_or('0');
                    s.push(if last == '0' { '1' } else { '0' });
                    serde_json::Value::String(s)
                }
                _ => serde_json::Value::Null,
            };
            map.insert(key.clone(), replacement);
            out[i] = serde_json::to_string(&value).unwrap();
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Every mutation of a valid export that changes it is refused, without a panic.
    #[test]
    fn every_mutation_of_a_valid_export_is_refused(mutation in mutation()) {
        let lines = valid_export();
        let mutated = apply(lines, &mutation);
        prop_assume!(mutated != lines);
        prop_assert!(verify(&mutated).is_err(), "accepted after {mutation:?}");
    }
}
