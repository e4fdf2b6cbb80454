//! Ed25519 checkpoint cosignatures, `cosignature/v1` (c2sp.org/tlog-cosignature).
//!
//! A cosignature line is a note signature of type 0x04 whose bytes are
//! `timestamp (u64 big-endian) || Ed25519 signature (64 bytes)`, the signature over
//!
//! ```text
//! cosignature/v1\n
//! time <timestamp in decimal>\n
//! <the checkpoint's note text, final newline included>
//! ```
//!
//! It states that, at that POSIX time, the cosigner had seen no larger consistent tree for the
//! checkpoint's origin. The message does not name the cosigner, so one key must never serve two
//! cosigners (the witness refuses a key that is also a log's).

use super::note::{check_text, NoteError, NoteSignature, VerifierKey, VerifierKind};
use crate::crypto::{PublicKey, SecretKey, Signature};

/// The header line of the signed message (domain separation).
pub const HEADER: &str = "cosignature/v1";

/// Largest timestamp the spec allows (2^63 - 1).
pub const TIME_S_MAX: u64 = i64::MAX as u64;

/// Bytes of a cosignature after the key id: timestamp and Ed25519 signature.
pub const COSIGNATURE_LEN_BYTES: usize = 8 + 64;

/// The signed message: header line, `time <time_s>` line, then the checkpoint text.
pub fn message(time_s: u64, checkpoint_text: &str) -> Vec<u8> {
    format!("{HEADER}\ntime {time_s}\n{checkpoint_text}").into_bytes()
}

/// A cosignature/v1 line by `key` under `cosigner_name`, dated `time_s`. The time must be
/// positive (tlog-witness: a cosignature never omits its timestamp) and at most 2^63 - 1.
pub fn cosign(
    checkpoint_text: &str,
    cosigner_name: &str,
    key: &SecretKey,
    time_s: u64,
) -> Result<NoteSignature, NoteError> {
    check_text(checkpoint_text)?;
    if !(1..=TIME_S_MAX).contains(&time_s) {
        return Err(NoteError::BadCosignatureTime { time_s });
    }
    let vkey = VerifierKey::new(cosigner_name, VerifierKind::CosignatureV1, key.public())?;
    let mut signature = time_s.to_be_bytes().to_vec();
    signature.extend_from_slice(&key.sign(&message(time_s, checkpoint_text)));
    Ok(NoteSignature {
        key_name: cosigner_name.to_string(),
        key_id: vkey.key_id(),
        signature,
    })
}

/// Checks a cosignature's bytes (timestamp || signature) over `checkpoint_text`; returns its time.
/// A time above 2^63 - 1 is refused as the spec requires.
pub(super) fn verify(
    public_key: &PublicKey,
    checkpoint_text: &str,
    bytes: &[u8],
) -> Result<u64, ()> {
    if bytes.len() != COSIGNATURE_LEN_BYTES {
        return Err(());
    }
    let (time, signature) = bytes.split_at(8);
    let time_s = u64::from_be_bytes(time.try_into().expect("split at 8"));
    if time_s > TIME_S_MAX {
        return Err(());
    }
    let signature = Signature::from_bytes(signature.try_into().expect("72 - 8 bytes"));
    public_key
        .verify_strict(&message(time_s, checkpoint_text), &signature)
        .map_err(|_| ())?;
    Ok(time_s)
}

/// The lines of `lines` (a witness's 200 body, `note::parse_signature_lines`) that are valid
/// cosignatures of `checkpoint_text` by `cosigner` (a type 0x04 key); lines of other keys are
/// ignored, as the spec requires of clients. A line that claims `cosigner`'s name and id but
/// does not verify is an error: that witness answered with a bad cosignature.
pub fn verified_cosignatures(
    checkpoint_text: &str,
    lines: &[NoteSignature],
    cosigner: &VerifierKey,
) -> Result<Vec<NoteSignature>, NoteError> {
    if cosigner.kind() != VerifierKind::CosignatureV1 {
        return Err(NoteError::UnsupportedKeyType {
            name: cosigner.key_name().to_string(),
            type_byte: cosigner.kind().type_byte(),
        });
    }
    let mut good = Vec::new();
    for line in lines.iter().filter(|line| cosigner.matches(line)) {
        if verify(cosigner.public_key(), checkpoint_text, &line.signature).is_err() {
            return Err(NoteError::BadSignature {
                name: line.key_name.clone(),
                key_id: line.key_id,
            });
        }
        good.push(line.clone());
    }
    Ok(good)
}

/// The timestamp of a cosignature/v1 line (its first 8 bytes); `None` when the line is not
/// 72 bytes after its key id. Says nothing about whether it verifies.
pub fn cosignature_time(line: &NoteSignature) -> Option<u64> {
    if line.signature.len() != COSIGNATURE_LEN_BYTES {
        return None;
    }
    let time: [u8; 8] = line.signature.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(time))
}
