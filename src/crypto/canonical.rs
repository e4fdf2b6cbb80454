//! Every byte string that rollbook hashes or signs is built here, and only here.
//!
//! `docs/audit-format.md` documents each layout byte by byte; a change here is a change of the
//! audit format and must bump the domain tag's version. All integers are big-endian; every
//! variable-length field is prefixed with its length as a u32, so no two different field lists
//! encode to the same bytes (no ambiguity between "ab"+"c" and "a"+"bc").

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Domain tag of the event hash. The trailing NUL ends the tag so that no tag is a prefix of another.
pub const EVENT_TAG: &[u8] = b"rollbook/v4/event\0";

/// The first event of a ledger chains to 32 zero bytes.
pub const GENESIS_PREV_HASH: [u8; 32] = [0u8; 32];

/// Where an encoder's bytes go: a buffer, or straight into SHA-256 (so that a hashed byte
/// string, a large payload included, is never copied just to be hashed).
pub trait Output {
    fn put(&mut self, bytes: &[u8]);
}

impl Output for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Output for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// Appends length-prefixed fields to a byte buffer (or feeds them to a hash: `hashing`).
#[derive(Default)]
pub struct Encoder<O: Output = Vec<u8>> {
    out: O,
}

impl Encoder {
    pub fn with_tag(tag: &[u8]) -> Self {
        Self::with_tag_and_capacity(tag, 256)
    }
    /// With room for `capacity` bytes after the tag (no regrowth when the size is known).
    pub fn with_tag_and_capacity(tag: &[u8], capacity: usize) -> Self {
        let mut bytes = Vec::with_capacity(tag.len() + capacity);
        bytes.extend_from_slice(tag);
        Encoder { out: bytes }
    }
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

impl Encoder<Sha256> {
    /// The same fields, hashed as they come: `hashing(tag)...digest()` equals
    /// `sha256(&with_tag(tag)...finish())`.
    pub fn hashing(tag: &[u8]) -> Self {
        let mut out = Sha256::new();
        out.update(tag);
        Encoder { out }
    }
    pub fn digest(self) -> [u8; 32] {
        self.out.finalize().into()
    }
}

impl<O: Output> Encoder<O> {
    pub fn u32(&mut self, value: u32) -> &mut Self {
        self.out.put(&value.to_be_bytes());
        self
    }
    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.out.put(&value.to_be_bytes());
        self
    }
    /// Fixed-size fields (UUIDs, hashes, keys) go in raw: their length is part of the format.
    pub fn fixed(&mut self, value: &[u8]) -> &mut Self {
        self.out.put(value);
        self
    }
    pub fn uuid(&mut self, value: &Uuid) -> &mut Self {
        self.fixed(value.as_bytes())
    }
    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        let len = u32::try_from(value.len())
            .expect("field longer than 4 GiB: limits are enforced before encoding");
        self.u32(len);
        self.out.put(value);
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
    encode_event(&mut enc, input);
    enc.finish()
}

/// SHA-256 of `event_hash_bytes`, hashed as encoded (a verifier hashes every event).
pub fn event_hash(input: &EventHashInput<'_>) -> [u8; 32] {
    let mut enc = Encoder::hashing(EVENT_TAG);
    encode_event(&mut enc, input);
    enc.digest()
}

/// The event hash layout after its tag: the one place that orders these fields.
fn encode_event<O: Output>(enc: &mut Encoder<O>, input: &EventHashInput<'_>) {
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
}

/// Why a signature was made. Each purpose has its own domain tag, so a signature made for one
/// purpose verifies for no other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The proposer's signature on a new proposal or governance motion.
    Propose,
    /// A co-signature on a roll proposal.
    Cosign,
    /// A co-signature on a governance motion (next signer set or next policy).
    Governance,
    /// A veto; binds the reason.
    Veto,
    /// The proposer's withdrawal.
    Withdraw,
    /// A roll's execution (fills) recorded by a signer; its message has its own layout
    /// (`execution_message`), so it is not in `ALL`, the purposes of `signed_message`.
    Execute,
}

impl Purpose {
    pub const ALL: [Purpose; 5] = [
        Purpose::Propose,
        Purpose::Cosign,
        Purpose::Governance,
        Purpose::Veto,
        Purpose::Withdraw,
    ];

    pub fn tag(self) -> &'static [u8] {
        match self {
            Purpose::Propose => b"rollbook/v4/propose\0",
            Purpose::Cosign => b"rollbook/v4/cosign\0",
            Purpose::Governance => b"rollbook/v4/governance\0",
            Purpose::Veto => b"rollbook/v4/veto\0",
            Purpose::Withdraw => b"rollbook/v4/withdraw\0",
            Purpose::Execute => b"rollbook/v4/execute\0",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Purpose::Propose => "propose",
            Purpose::Cosign => "cosign",
            Purpose::Governance => "governance",
            Purpose::Veto => "veto",
            Purpose::Withdraw => "withdraw",
            Purpose::Execute => "execute",
        }
    }
}

/// Domain tag of the genesis signature.
pub const GENESIS_TAG: &[u8] = b"rollbook/v4/genesis\0";
/// Domain tag of a proposal's subject digest.
pub const SUBJECT_TAG: &[u8] = b"rollbook/v4/subject\0";
/// Domain tag of a signer set's hash.
pub const SIGNER_SET_TAG: &[u8] = b"rollbook/v4/signer-set\0";
/// Domain tag of the policy hash.
pub const POLICY_TAG: &[u8] = b"rollbook/v4/policy\0";
/// Limit on a veto reason, in bytes.
pub const REASON_BYTES_MAX: usize = 1024;

/// Everything a proposal's signatures bind, as exact strings stored in the `proposal.recorded`
/// payload (never re-serialized values).
pub struct SubjectInput<'a> {
    pub ledger_id: &'a Uuid,
    pub proposal_id: &'a Uuid,
    /// `roll`, `signer_set` or `policy`.
    pub kind: &'a str,
    pub body: &'a str,
    pub report_json: Option<&'a str>,
    pub policy_hash: &'a str,
    pub policy_version: u64,
    pub signer_set_version: u64,
    pub signer_set_hash: &'a str,
    pub created_at: &'a str,
    pub expires_at: &'a str,
}

/// The subject digest: what every signature on a proposal binds.
pub fn subject_digest(input: &SubjectInput<'_>) -> [u8; 32] {
    let mut enc = Encoder::hashing(SUBJECT_TAG);
    enc.uuid(input.ledger_id)
        .uuid(input.proposal_id)
        .str(input.kind)
        .str(input.body)
        .opt_str(input.report_json)
        .str(input.policy_hash)
        .u64(input.policy_version)
        .u64(input.signer_set_version)
        .str(input.signer_set_hash)
        .str(input.created_at)
        .str(input.expires_at);
    enc.digest()
}

/// The policy hash: SHA-256 over the tag and the policy's canonical JSON text.
pub fn policy_hash(policy_json: &str) -> [u8; 32] {
    let mut enc = Encoder::hashing(POLICY_TAG);
    enc.fixed(policy_json.as_bytes());
    enc.digest()
}

/// A point of the chain a signature binds: an event's seq and hash. Binding it binds the whole
/// history up to it (each hash covers the one before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: [u8; 32],
}

/// A signer set's hash: SHA-256 over the tag and its exact JSON text. A proposal's subject
/// digest binds the hash of the set it is bound to, so an offline signer, who cannot check the
/// head, can check the set in force it is shown against what it signs.
pub fn signer_set_hash(signer_set_json: &str) -> [u8; 32] {
    let mut enc = Encoder::hashing(SIGNER_SET_TAG);
    enc.fixed(signer_set_json.as_bytes());
    enc.digest()
}

/// The message signed for `purpose` on one proposal, binding `head`: the event the signature's
/// event follows (online), or the head when a request was written (offline). `reason` is
/// present for a veto only.
pub fn signed_message(
    purpose: Purpose,
    ledger_id: &Uuid,
    proposal_id: &Uuid,
    signer_set_version: u64,
    subject_digest: &[u8; 32],
    head: &ChainHead,
    reason: Option<&str>,
) -> Vec<u8> {
    let mut enc = Encoder::with_tag(purpose.tag());
    enc.uuid(ledger_id)
        .uuid(proposal_id)
        .u64(signer_set_version)
        .fixed(subject_digest)
        .u64(head.seq)
        .fixed(&head.hash);
    if purpose == Purpose::Veto {
        enc.str(reason.unwrap_or(""));
    }
    enc.finish()
}

/// The message of a co-signature made offline (`cosign` or `governance`): `signed_message`
/// followed by `str(signed_at)`, the canonical time the signer's machine read when it signed,
/// so that the ledger can refuse a signature made after its proposal's expiry (check T3).
pub fn offline_signed_message(
    purpose: Purpose,
    ledger_id: &Uuid,
    proposal_id: &Uuid,
    signer_set_version: u64,
    subject_digest: &[u8; 32],
    head: &ChainHead,
    signed_at: &str,
) -> Vec<u8> {
    debug_assert!(matches!(purpose, Purpose::Cosign | Purpose::Governance));
    let mut enc = Encoder::with_tag(purpose.tag());
    enc.uuid(ledger_id)
        .uuid(proposal_id)
        .u64(signer_set_version)
        .fixed(subject_digest)
        .u64(head.seq)
        .fixed(&head.hash)
        .str(signed_at);
    enc.finish()
}

/// The genesis message: binds the ledger id and the exact signer-set and policy texts.
pub fn genesis_message(
    ledger_id: &Uuid,
    signer_set_json: &str,
    policy_json: &str,
    policy_hash_hex: &str,
) -> Vec<u8> {
    let mut enc = Encoder::with_tag(GENESIS_TAG);
    enc.uuid(ledger_id)
        .str(signer_set_json)
        .str(policy_json)
        .str(policy_hash_hex);
    enc.finish()
}

/// A signed proposal message, decoded after its signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMessage {
    pub purpose: Purpose,
    pub ledger_id: Uuid,
    pub proposal_id: Uuid,
    pub signer_set_version: u64,
    pub subject_digest: [u8; 32],
    pub head: ChainHead,
    pub reason: Option<String>,
    /// When an offline co-signature was made (its text, not yet checked as a timestamp).
    pub signed_at: Option<String>,
}

/// Decodes a proposal signature's message. Call only after the signature over these exact
/// bytes verified; then compare every field with what the ledger expects.
pub fn decode_signed_message(bytes: &[u8]) -> Result<SignedMessage, String> {
    let purpose = Purpose::ALL
        .into_iter()
        .find(|purpose| bytes.starts_with(purpose.tag()))
        .ok_or_else(|| "the message starts with no known rollbook/v4 signing tag".to_string())?;
    let rest = &bytes[purpose.tag().len()..];
    let fixed_len = 16 + 16 + 8 + 32 + 8 + 32;
    if rest.len() < fixed_len {
        return Err(format!(
            "the {} message is {} bytes, too short",
            purpose.name(),
            bytes.len()
        ));
    }
    let ledger_id = Uuid::from_slice(&rest[0..16]).expect("16 bytes");
    let proposal_id = Uuid::from_slice(&rest[16..32]).expect("16 bytes");
    let signer_set_version = u64::from_be_bytes(rest[32..40].try_into().expect("8 bytes"));
    let subject_digest: [u8; 32] = rest[40..72].try_into().expect("32 bytes");
    let head = ChainHead {
        seq: u64::from_be_bytes(rest[72..80].try_into().expect("8 bytes")),
        hash: rest[80..112].try_into().expect("32 bytes"),
    };
    let tail = &rest[fixed_len..];
    let mut signed_at = None;
    let reason = if purpose == Purpose::Veto {
        Some(trailing_str(tail, REASON_BYTES_MAX, "veto reason")?)
    } else if matches!(purpose, Purpose::Cosign | Purpose::Governance) && !tail.is_empty() {
        signed_at = Some(trailing_str(tail, SIGNED_AT_BYTES_MAX, "signing time")?);
        None
    } else {
        if !tail.is_empty() {
            return Err(format!(
                "the {} message has {} trailing bytes",
                purpose.name(),
                tail.len()
            ));
        }
        None
    };
    Ok(SignedMessage {
        purpose,
        ledger_id,
        proposal_id,
        signer_set_version,
        subject_digest,
        head,
        reason,
        signed_at,
    })
}

/// The longest `signed_at` a message may carry (a canonical timestamp is 27 bytes).
const SIGNED_AT_BYTES_MAX: usize = 64;

/// The `str` field that must make up the whole `tail`: its text.
fn trailing_str(tail: &[u8], bytes_max: usize, what: &str) -> Result<String, String> {
    if tail.len() < 4 {
        return Err(format!("the message has no {what} field"));
    }
    let len = u32::from_be_bytes(tail[0..4].try_into().expect("4 bytes")) as usize;
    if len > bytes_max || tail.len() != 4 + len {
        return Err(format!("the {what}'s length does not match the message"));
    }
    String::from_utf8(tail[4..].to_vec()).map_err(|_| format!("the {what} is not UTF-8"))
}

/// Domain tag of an execution digest (the fills and corrections an execution records).
pub const FILLS_TAG: &[u8] = b"rollbook/v4/fills\0";

/// One fill as an execution digest binds it: the exact payload values.
pub struct FillInput<'a> {
    pub contracts: u32,
    /// Hashed as its IEEE 754 binary64 bits, big-endian: one encoding per value, no text.
    pub price_usd: f64,
    /// Canonical timestamp text.
    pub at: &'a str,
    pub broker_ref: &'a str,
}

/// The execution digest: the fills an execution records, in order, and the ids of the earlier
/// executions it corrects, in order.
pub fn execution_digest(fills: &[FillInput<'_>], corrects: &[Uuid]) -> [u8; 32] {
    let mut enc = Encoder::hashing(FILLS_TAG);
    let count = |n: usize| u32::try_from(n).expect("fill and correction counts are bounded");
    enc.u32(count(fills.len()));
    for fill in fills {
        enc.u32(fill.contracts)
            .u64(fill.price_usd.to_bits())
            .str(fill.at)
            .str(fill.broker_ref);
    }
    enc.u32(count(corrects.len()));
    for id in corrects {
        enc.uuid(id);
    }
    enc.digest()
}

/// The message a signer signs to record a roll's execution: the proposal fields of
/// `signed_message` under the `execute` tag (with the version of the signer set in force when
/// the execution is recorded), then the execution digest. Always online: `head` is the event
/// the execution's own event follows.
pub fn execution_message(
    ledger_id: &Uuid,
    proposal_id: &Uuid,
    signer_set_version: u64,
    subject_digest: &[u8; 32],
    head: &ChainHead,
    execution_digest: &[u8; 32],
) -> Vec<u8> {
    let mut enc = Encoder::with_tag(Purpose::Execute.tag());
    enc.uuid(ledger_id)
        .uuid(proposal_id)
        .u64(signer_set_version)
        .fixed(subject_digest)
        .u64(head.seq)
        .fixed(&head.hash)
        .fixed(execution_digest);
    enc.finish()
}

/// An execution message, decoded after its signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionMessage {
    pub ledger_id: Uuid,
    pub proposal_id: Uuid,
    pub signer_set_version: u64,
    pub subject_digest: [u8; 32],
    pub head: ChainHead,
    pub execution_digest: [u8; 32],
}

/// Decodes an execution message (exactly the tag and 144 bytes). Call only after the signature
/// over these bytes verified.
pub fn decode_execution_message(bytes: &[u8]) -> Result<ExecutionMessage, String> {
    let rest = bytes
        .strip_prefix(Purpose::Execute.tag())
        .ok_or_else(|| "the message does not start with the rollbook/v4/execute tag".to_string())?;
    if rest.len() != 16 + 16 + 8 + 32 + 8 + 32 + 32 {
        return Err(format!(
            "the execute message is {} bytes, not {}",
            bytes.len(),
            Purpose::Execute.tag().len() + 144
        ));
    }
    Ok(ExecutionMessage {
        ledger_id: Uuid::from_slice(&rest[0..16]).expect("16 bytes"),
        proposal_id: Uuid::from_slice(&rest[16..32]).expect("16 bytes"),
        signer_set_version: u64::from_be_bytes(rest[32..40].try_into().expect("8 bytes")),
        subject_digest: rest[40..72].try_into().expect("32 bytes"),
        head: ChainHead {
            seq: u64::from_be_bytes(rest[72..80].try_into().expect("8 bytes")),
            hash: rest[80..112].try_into().expect("32 bytes"),
        },
        execution_digest: rest[112..144].try_into().expect("32 bytes"),
    })
}

/// Domain tag of the verification memo's key.
const MEMO_TAG: &[u8] = b"rollbook/v4/memo\0";

/// Key of the verification memo (never stored, signed or exported): SHA-256 over the public key,
/// the signature and the message. Fixed-size fields first, so no two triples share an encoding.
pub fn signature_memo_key(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> [u8; 32] {
    let mut enc = Encoder::hashing(MEMO_TAG);
    enc.fixed(key).fixed(signature).fixed(message);
    enc.digest()
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
        expected.extend_from_slice(b"rollbook/v4/event\0");
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

    #[test]
    fn hashing_as_encoded_equals_hashing_the_bytes() {
        let ledger = Uuid::from_bytes([0x11; 16]);
        let event = Uuid::from_bytes([0x22; 16]);
        let payload = vec![b'x'; 100_000];
        let mut input = sample(&ledger, &event, &GENESIS_PREV_HASH);
        input.actor = Some("SHA256:abc");
        input.payload = &payload;
        assert_eq!(event_hash(&input), sha256(&event_hash_bytes(&input)));
        let mut buffer = Encoder::with_tag(b"t\0");
        buffer.str("a").opt_str(None).u64(7);
        let mut hashing = Encoder::hashing(b"t\0");
        hashing.str("a").opt_str(None).u64(7);
        assert_eq!(hashing.digest(), sha256(&buffer.finish()));
    }

    /// The example in docs/audit-format.md, "Worked example" (hash computed independently).
    #[test]
    fn documented_worked_example() {
        let ledger = Uuid::from_bytes([0x11; 16]);
        let event = Uuid::from_bytes([0x22; 16]);
        let hash = event_hash(&sample(&ledger, &event, &GENESIS_PREV_HASH));
        assert_eq!(
            crate::crypto::to_hex(&hash),
            "2a9327fd0d78e1e114eff5b655ec3f0e23e1e893602c95b88d4a4b9738ee251b"
        );
    }

    /// docs/audit-format.md, "Worked example: a co-signature" (computed independently).
    #[test]
    fn documented_cosign_example() {
        let ledger = Uuid::from_bytes([0x11; 16]);
        let proposal = Uuid::from_bytes([0x33; 16]);
        let policy = "ab".repeat(32);
        let digest = subject_digest(&SubjectInput {
            ledger_id: &ledger,
            proposal_id: &proposal,
            kind: "roll",
            body: "[roll]",
            report_json: Some("{}"),
            policy_hash: &policy,
            policy_version: 1,
            signer_set_version: 1,
            signer_set_hash: &"cd".repeat(32),
            created_at: "2026-05-07T14:40:00.000000Z",
            expires_at: "2026-05-07T18:40:00.000000Z",
        });
        assert_eq!(
            crate::crypto::to_hex(&digest),
            "b277782587bbf31370a0e88d6f15f9f833f3d709c893fee7be5727a01af7f27b"
        );
        let head = ChainHead {
            seq: 41,
            hash: [0x44; 32],
        };
        let message = signed_message(Purpose::Cosign, &ledger, &proposal, 1, &digest, &head, None);
        assert_eq!(
            crate::crypto::to_hex(&message),
            "726f6c6c626f6f6b2f76342f636f7369676e0011111111111111111111111111111111333333333333333333333333333333330000000000000001b277782587bbf31370a0e88d6f15f9f833f3d709c893fee7be5727a01af7f27b00000000000000294444444444444444444444444444444444444444444444444444444444444444"
        );
        // The same signature made offline at 15:10 (docs/audit-format.md): the message above
        // and `str(signed_at)`.
        let signed_at = "2026-05-07T15:10:00.000000Z";
        let offline = offline_signed_message(
            Purpose::Cosign,
            &ledger,
            &proposal,
            1,
            &digest,
            &head,
            signed_at,
        );
        assert_eq!(
            crate::crypto::to_hex(&offline[message.len()..]),
            "0000001b323032362d30352d30375431353a31303a30302e3030303030305a"
        );
        assert_eq!(&offline[..message.len()], &message[..]);
        assert_eq!(
            crate::crypto::to_hex(&sha256(&offline)),
            "3424b76809f7311f93aceb0a09c778cb2c8eaddad87bc09298002a8acd8ba7aa"
        );
        let decoded = decode_signed_message(&offline).unwrap();
        assert_eq!(decoded.signed_at.as_deref(), Some(signed_at));
        assert_eq!(decode_signed_message(&message).unwrap().signed_at, None);
        // Only co-signatures carry a time: the same tail on a proposer's message is refused.
        let mut propose = signed_message(
            Purpose::Propose,
            &ledger,
            &proposal,
            1,
            &digest,
            &head,
            None,
        );
        propose.extend_from_slice(&offline[message.len()..]);
        assert!(decode_signed_message(&propose).is_err());
    }

    /// docs/audit-format.md, "Worked example: an execution" (values computed with Python's
    /// `hashlib` and `struct` from that text alone).
    #[test]
    fn documented_execution_example() {
        let fills = [
            FillInput {
                contracts: 4,
                price_usd: 3.15,
                at: "2026-05-08T15:00:00.000000Z",
                broker_ref: "IB-1",
            },
            FillInput {
                contracts: 5,
                price_usd: 3.2,
                at: "2026-05-08T15:05:00.000000Z",
                broker_ref: "IB-2",
            },
        ];
        let corrects = [Uuid::from_bytes([0x55; 16])];
        let digest = execution_digest(&fills, &corrects);
        assert_eq!(
            crate::crypto::to_hex(&digest),
            "cce7870a00076ea7b7e3a9535dd63f17948fd0172bf48a577dd52c2a64d86154"
        );
        let subject: [u8; 32] = crate::crypto::from_hex32(
            "b277782587bbf31370a0e88d6f15f9f833f3d709c893fee7be5727a01af7f27b",
        )
        .unwrap();
        let head = ChainHead {
            seq: 41,
            hash: [0x44; 32],
        };
        let ledger = Uuid::from_bytes([0x11; 16]);
        let proposal = Uuid::from_bytes([0x33; 16]);
        let message = execution_message(&ledger, &proposal, 1, &subject, &head, &digest);
        assert_eq!(
            crate::crypto::to_hex(&message),
            "726f6c6c626f6f6b2f76342f657865637574650011111111111111111111111111111111333333333333333333333333333333330000000000000001b277782587bbf31370a0e88d6f15f9f833f3d709c893fee7be5727a01af7f27b00000000000000294444444444444444444444444444444444444444444444444444444444444444cce7870a00076ea7b7e3a9535dd63f17948fd0172bf48a577dd52c2a64d86154"
        );
        let decoded = decode_execution_message(&message).unwrap();
        assert_eq!(decoded.head, head);
        assert_eq!(decoded.execution_digest, digest);
        assert!(decode_execution_message(&message[..message.len() - 1]).is_err());
        // An execute message is no proposal message, and the reverse.
        assert!(decode_signed_message(&message).is_err());
    }

    #[test]
    fn signed_messages_decode_to_what_was_encoded_and_differ_by_purpose() {
        let ledger = Uuid::from_bytes([1; 16]);
        let proposal = Uuid::from_bytes([2; 16]);
        let digest = [3u8; 32];
        let mut seen = std::collections::HashSet::new();
        for purpose in Purpose::ALL {
            let reason = (purpose == Purpose::Veto).then_some("stale quotes");
            let head = ChainHead {
                seq: 9,
                hash: [4; 32],
            };
            let bytes = signed_message(purpose, &ledger, &proposal, 7, &digest, &head, reason);
            assert!(seen.insert(bytes.clone()), "two purposes share a message");
            let decoded = decode_signed_message(&bytes).unwrap();
            assert_eq!(decoded.purpose, purpose);
            assert_eq!(
                (
                    decoded.ledger_id,
                    decoded.proposal_id,
                    decoded.signer_set_version
                ),
                (ledger, proposal, 7)
            );
            assert_eq!(decoded.subject_digest, digest);
            assert_eq!(decoded.head, head);
            assert_eq!(decoded.reason.as_deref(), reason);
            assert!(decode_signed_message(&bytes[..bytes.len() - 1]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(decode_signed_message(&longer).is_err());
        }
        assert!(decode_signed_message(b"rollbook/v4/cosign\0").is_err());
    }

    /// Every domain tag carries the ledger format's version ("Format versions" in
    /// docs/audit-format.md), so a format bump that misses a tag fails here.
    #[test]
    fn every_domain_tag_carries_the_ledger_format() {
        let mut tags = vec![
            EVENT_TAG,
            GENESIS_TAG,
            SUBJECT_TAG,
            SIGNER_SET_TAG,
            POLICY_TAG,
            FILLS_TAG,
            Purpose::Execute.tag(),
            MEMO_TAG,
        ];
        tags.extend(Purpose::ALL.map(Purpose::tag));
        let prefix = format!("{}/", crate::domain::events::LEDGER_FORMAT);
        for tag in tags {
            let text = std::str::from_utf8(tag).unwrap();
            assert!(
                text.starts_with(&prefix),
                "{text:?} is not under {prefix:?}"
            );
            assert!(text.ends_with('\0') && text.matches('\0').count() == 1);
        }
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
