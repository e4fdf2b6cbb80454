//! Signed notes (c2sp.org/signed-note): text, a blank line, then signature lines
//! `— <key name> base64(key id || signature)`.
//!
//! Parsing is strict and bounded: UTF-8, no control character but newline, at most
//! `NOTE_LEN_MAX_BYTES` and `NOTE_SIGNATURES_MAX` signatures, canonical base64 only, so a parsed
//! note formats back to exactly the bytes it came from. A signature is identified by its key name
//! and key id together; verification ignores signatures of unknown keys (other names or ids, and
//! every type rollbook does not verify, such as ML-DSA-44), and refuses the whole note when a
//! known key's signature fails.

use std::fmt;

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::{base64_decode, base64_encode, cosignature};
use crate::crypto::{PublicKey, Sign, Signature};

/// Largest note accepted. The spec asks verifiers to accept at least 16 signatures of up to about
/// 5 kB (post-quantum); 256 KiB holds those and a checkpoint many times over.
pub const NOTE_LEN_MAX_BYTES: usize = 256 * 1024;

/// Most signature lines a note may carry (the spec's minimum is 16).
pub const NOTE_SIGNATURES_MAX: usize = 64;

/// Longest key name, in bytes (ML-DSA cosignatures encode the name with a one-byte length).
pub const KEY_NAME_LEN_MAX_BYTES: usize = 255;

/// Signature type byte of an Ed25519 note signature.
pub const SIGNATURE_TYPE_ED25519: u8 = 0x01;

/// Signature type byte of a timestamped Ed25519 checkpoint cosignature (`cosignature/v1`).
pub const SIGNATURE_TYPE_COSIGNATURE_V1: u8 = 0x04;

/// Starts every signature line: em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Why a note, a signature line or a vkey was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NoteError {
    #[error("the note is {len_bytes} bytes; at most {NOTE_LEN_MAX_BYTES} are accepted")]
    TooLong { len_bytes: usize },
    #[error("the note is not valid UTF-8")]
    NotUtf8,
    #[error(
        "the note holds control character {code:#04x} at byte {offset}; only newline is allowed"
    )]
    ControlCharacter { code: u8, offset: usize },
    #[error("the note text must be non-empty and end with a newline")]
    BadText,
    #[error("the note has no blank line followed by signature lines")]
    NoSignatureBlock,
    #[error("the note has more than {NOTE_SIGNATURES_MAX} signature lines")]
    TooManySignatures,
    #[error("signature line {line} is malformed: {reason}")]
    BadSignatureLine { line: usize, reason: &'static str },
    #[error("key name {name:?} is not allowed: {reason}")]
    BadKeyName { name: String, reason: &'static str },
    #[error("verifier key {text:?} is malformed: {reason}")]
    BadVerifierKey { text: String, reason: String },
    #[error(
        "verifier key {name:?} has signature type {type_byte:#04x}; rollbook verifies only Ed25519 \
         (0x01) and Ed25519 cosignatures (0x04)"
    )]
    UnsupportedKeyType { name: String, type_byte: u8 },
    #[error(
        "the signature of known key {name} ({key_id:08x}) does not verify: the note is refused"
    )]
    BadSignature { name: String, key_id: u32 },
    #[error("a cosignature's time must be from 1 to 2^63 - 1 seconds; {time_s} is not")]
    BadCosignatureTime { time_s: u64 },
    #[error("no signature by a known key: the note is refused")]
    NoKnownSignature,
    /// The signer's key did not sign (an ssh-agent that refused or went away).
    #[error("{0}")]
    Signing(String),
}

/// One signature line: who signed (key name and id) and the signature bytes after the key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub key_name: String,
    pub key_id: u32,
    /// The algorithm's bytes: 64 for Ed25519, 8 + 64 (timestamp, signature) for cosignature/v1.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line as it appears in a note: `— <name> base64(id || signature)` and a newline.
    pub fn to_line(&self) -> String {
        let mut bytes = Vec::with_capacity(4 + self.signature.len());
        bytes.extend_from_slice(&self.key_id.to_be_bytes());
        bytes.extend_from_slice(&self.signature);
        format!(
            "{SIGNATURE_PREFIX}{} {}\n",
            self.key_name,
            base64_encode(&bytes)
        )
    }
}

/// A note: its text (ending in a newline) and its signature lines, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// A note with no signature yet; the text must be a valid note text (see `check_text`).
    pub fn new(text: &str) -> Result<Note, NoteError> {
        check_text(text)?;
        Ok(Note {
            text: text.to_string(),
            signatures: Vec::new(),
        })
    }

    /// Parses a signed note: the text is everything up to the last blank line, the rest must be
    /// one or more signature lines, each ending in a newline.
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        if bytes.len() > NOTE_LEN_MAX_BYTES {
            return Err(NoteError::TooLong {
                len_bytes: bytes.len(),
            });
        }
        let all = std::str::from_utf8(bytes).map_err(|_| NoteError::NotUtf8)?;
        check_control_characters(all)?;
        let split = all.rfind("\n\n").ok_or(NoteError::NoSignatureBlock)?;
        let (text, signature_block) = (&all[..=split], &all[split + 2..]);
        check_text(text)?;
        if signature_block.is_empty() {
            return Err(NoteError::NoSignatureBlock);
        }
        let signatures = parse_signature_lines(signature_block.as_bytes())?;
        Ok(Note {
            text: text.to_string(),
            signatures,
        })
    }

    /// The signed text, final newline included.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds a signature line, unless the note already holds this exact line (a cosignature
    /// fetched twice is kept once).
    pub fn push_signature(&mut self, signature: NoteSignature) -> Result<(), NoteError> {
        if self.signatures.contains(&signature) {
            return Ok(());
        }
        if self.signatures.len() >= NOTE_SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures);
        }
        check_key_name(&signature.key_name)?;
        self.signatures.push(signature);
        Ok(())
    }

    /// The note's bytes: text, blank line, signature lines. Byte-identical to what `parse` read.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for signature in &self.signatures {
            out.push_str(&signature.to_line());
        }
        out
    }
}

/// Parses a block of signature lines (the tail of a note, or a witness's 200 response body).
pub fn parse_signature_lines(bytes: &[u8]) -> Result<Vec<NoteSignature>, NoteError> {
    if bytes.len() > NOTE_LEN_MAX_BYTES {
        return Err(NoteError::TooLong {
            len_bytes: bytes.len(),
        });
    }
    let block = std::str::from_utf8(bytes).map_err(|_| NoteError::NotUtf8)?;
    check_control_characters(block)?;
    let Some(block) = block.strip_suffix('\n') else {
        return Err(NoteError::BadSignatureLine {
            line: block.split('\n').count(),
            reason: "it does not end with a newline",
        });
    };
    let mut signatures = Vec::new();
    for (index, line) in block.split('\n').enumerate() {
        if signatures.len() == NOTE_SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures);
        }
        signatures.push(parse_signature_line(line, index + 1)?);
    }
    Ok(signatures)
}

fn parse_signature_line(line: &str, line_number: usize) -> Result<NoteSignature, NoteError> {
    let bad = |reason| NoteError::BadSignatureLine {
        line: line_number,
        reason,
    };
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or_else(|| bad("it does not start with an em dash and a space"))?;
    let (key_name, encoded) = rest
        .split_once(' ')
        .ok_or_else(|| bad("it has no space between key name and signature"))?;
    check_key_name(key_name)?;
    let bytes =
        base64_decode(encoded).ok_or_else(|| bad("the signature is not canonical base64"))?;
    if bytes.len() < 5 {
        return Err(bad("the signature is shorter than a key id and one byte"));
    }
    let (id, signature) = bytes.split_at(4);
    Ok(NoteSignature {
        key_name: key_name.to_string(),
        key_id: u32::from_be_bytes(id.try_into().expect("split at 4")),
        signature: signature.to_vec(),
    })
}

/// A note text is non-empty, ends with a newline, is within the size limit and holds no control
/// character but newline.
pub fn check_text(text: &str) -> Result<(), NoteError> {
    if text.len() > NOTE_LEN_MAX_BYTES {
        return Err(NoteError::TooLong {
            len_bytes: text.len(),
        });
    }
    check_control_characters(text)?;
    if text.is_empty() || !text.ends_with('\n') {
        return Err(NoteError::BadText);
    }
    Ok(())
}

fn check_control_characters(text: &str) -> Result<(), NoteError> {
    match text
        .bytes()
        .enumerate()
        .find(|(_, b)| *b < 0x20 && *b != b'\n')
    {
        Some((offset, code)) => Err(NoteError::ControlCharacter { code, offset }),
        None => Ok(()),
    }
}

/// Key names are non-empty, hold no Unicode space and no `+`, and no control character.
pub fn check_key_name(name: &str) -> Result<(), NoteError> {
    let bad = |reason| NoteError::BadKeyName {
        name: name.chars().take(80).collect(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > KEY_NAME_LEN_MAX_BYTES {
        return Err(bad("it is longer than 255 bytes"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains a space or a control character"));
    }
    if name.contains('+') {
        return Err(bad("it contains '+'"));
    }
    Ok(())
}

/// `SHA-256(key name || 0x0A || signature type || public key)[:4]`, big-endian.
pub fn key_id(key_name: &str, signature_type: u8, public_key: &[u8]) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(key_name.as_bytes());
    hasher.update([b'\n', signature_type]);
    hasher.update(public_key);
    let digest = hasher.finalize();
    u32::from_be_bytes(digest[..4].try_into().expect("SHA-256 has 32 bytes"))
}

/// The two signature types rollbook verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerifierKind {
    /// 0x01: Ed25519 over the note text (a log's or a signer's signature).
    Ed25519,
    /// 0x04: timestamped Ed25519 over `cosignature/v1` + time + the checkpoint (a witness's).
    CosignatureV1,
}

impl VerifierKind {
    pub fn type_byte(self) -> u8 {
        match self {
            VerifierKind::Ed25519 => SIGNATURE_TYPE_ED25519,
            VerifierKind::CosignatureV1 => SIGNATURE_TYPE_COSIGNATURE_V1,
        }
    }
}

/// A verifier key: key name, key id, signature type and Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerifierKey {
    key_name: String,
    key_id: u32,
    kind: VerifierKind,
    public_key: PublicKey,
}

impl VerifierKey {
    /// The key of `public_key` under `key_name`, its id computed as the spec recommends.
    pub fn new(
        key_name: &str,
        kind: VerifierKind,
        public_key: PublicKey,
    ) -> Result<VerifierKey, NoteError> {
        check_key_name(key_name)?;
        Ok(VerifierKey {
            key_name: key_name.to_string(),
            key_id: key_id(key_name, kind.type_byte(), &public_key.as_bytes()),
            kind,
            public_key,
        })
    }

    /// Parses `<name>+<8 lowercase hex>+base64(type || key)`. Types other than 0x01 and 0x04 are
    /// refused (`UnsupportedKeyType`), and so is a key id that is not the one computed from the
    /// name and key: rollbook's keys always use the recommended id.
    pub fn parse(text: &str) -> Result<VerifierKey, NoteError> {
        let bad = |reason: &str| NoteError::BadVerifierKey {
            text: text.chars().take(120).collect(),
            reason: reason.to_string(),
        };
        // The base64 key may itself contain '+': only the first two separate parts.
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(encoded)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(
                "expected three parts separated by '+': name, key id, key",
            ));
        };
        check_key_name(name)?;
        let id_ok = id_hex.len() == 8
            && id_hex
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let key_id = match id_ok {
            true => u32::from_str_radix(id_hex, 16).map_err(|_| bad("the key id is not hex"))?,
            false => return Err(bad("the key id is not 8 lowercase hex digits")),
        };
        let bytes = base64_decode(encoded).ok_or_else(|| bad("the key is not canonical base64"))?;
        let (&type_byte, key_bytes) = bytes.split_first().ok_or_else(|| bad("the key is empty"))?;
        let kind = match type_byte {
            SIGNATURE_TYPE_ED25519 => VerifierKind::Ed25519,
            SIGNATURE_TYPE_COSIGNATURE_V1 => VerifierKind::CosignatureV1,
            _ => {
                return Err(NoteError::UnsupportedKeyType {
                    name: name.to_string(),
                    type_byte,
                })
            }
        };
        let key_bytes: [u8; 32] = key_bytes
            .try_into()
            .map_err(|_| bad("an Ed25519 key is 32 bytes"))?;
        let public_key = PublicKey::from_bytes_checked(&key_bytes)
            .map_err(|error| bad(&format!("the Ed25519 key is refused: {error}")))?;
        let vkey = VerifierKey::new(name, kind, public_key)?;
        if vkey.key_id != key_id {
            return Err(bad("the key id is not SHA-256(name, 0x0A, type, key)[:4]"));
        }
        Ok(vkey)
    }

    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    pub fn kind(&self) -> VerifierKind {
        self.kind
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Whether a signature line claims to be by this key (name and id both match).
    pub fn matches(&self, signature: &NoteSignature) -> bool {
        self.key_name == signature.key_name && self.key_id == signature.key_id
    }

    /// Checks one signature line by this key over `text`; returns the cosignature's time, if any.
    fn verify(&self, text: &str, signature: &NoteSignature) -> Result<Option<u64>, ()> {
        match self.kind {
            VerifierKind::Ed25519 => {
                let bytes: [u8; 64] = signature.signature.as_slice().try_into().map_err(|_| ())?;
                let signature = Signature::from_bytes(&bytes);
                self.public_key
                    .verify_strict(text.as_bytes(), &signature)
                    .map_err(|_| ())?;
                Ok(None)
            }
            VerifierKind::CosignatureV1 => {
                cosignature::verify(&self.public_key, text, &signature.signature).map(Some)
            }
        }
    }
}

impl fmt::Display for VerifierKey {
    /// The vkey string, `name+hexid+base64(type || key)`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = vec![self.kind.type_byte()];
        bytes.extend_from_slice(&self.public_key.as_bytes());
        write!(
            formatter,
            "{}+{:08x}+{}",
            self.key_name,
            self.key_id,
            base64_encode(&bytes)
        )
    }
}

/// An Ed25519 (type 0x01) signature of `text` by `key` under `key_name`.
pub fn sign_ed25519(
    text: &str,
    key_name: &str,
    key: &impl Sign,
) -> Result<NoteSignature, NoteError> {
    check_text(text)?;
    let vkey = VerifierKey::new(key_name, VerifierKind::Ed25519, key.public())?;
    let signature = key
        .sign_message(text.as_bytes())
        .map_err(|error| NoteError::Signing(error.to_string()))?;
    Ok(NoteSignature {
        key_name: key_name.to_string(),
        key_id: vkey.key_id,
        signature: signature.to_vec(),
    })
}

/// A signature line of a note that verified under a known key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// Index of the key in the `known` slice that verified it.
    pub key_index: usize,
    /// Index of the line among the note's signatures.
    pub signature_index: usize,
    /// The cosignature's POSIX time (type 0x04); `None` for a plain Ed25519 signature.
    pub time_s: Option<u64>,
}

/// Checks every signature line by a known key (name and id match); ignores the others. A known
/// key's signature that fails refuses the whole note (`BadSignature`), as the spec advises and
/// tlog-witness requires. May return an empty list: `verify_note` refuses that.
pub fn verified_signatures(
    note: &Note,
    known: &[VerifierKey],
) -> Result<Vec<VerifiedSignature>, NoteError> {
    let mut verified = Vec::new();
    for (signature_index, signature) in note.signatures.iter().enumerate() {
        // Several known keys may share a name and id (a collision the spec allows for); the
        // line is good when one of them verifies it.
        let mut claimed = false;
        let mut good = None;
        for (key_index, key) in known.iter().enumerate() {
            if !key.matches(signature) {
                continue;
            }
            claimed = true;
            if let Ok(time_s) = key.verify(&note.text, signature) {
                good = Some(VerifiedSignature {
                    key_index,
                    signature_index,
                    time_s,
                });
                break;
            }
        }
        match (claimed, good) {
            (_, Some(found)) => verified.push(found),
            (true, None) => {
                return Err(NoteError::BadSignature {
                    name: signature.key_name.clone(),
                    key_id: signature.key_id,
                })
            }
            (false, None) => {}
        }
    }
    Ok(verified)
}

/// `verified_signatures`, refusing a note that no known key signed.
pub fn verify_note(
    note: &Note,
    known: &[VerifierKey],
) -> Result<Vec<VerifiedSignature>, NoteError> {
    let verified = verified_signatures(note, known)?;
    if verified.is_empty() {
        return Err(NoteError::NoKnownSignature);
    }
    Ok(verified)
}
