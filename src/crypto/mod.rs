//! Cryptography for rollbook: canonical byte strings, signer keys, signatures, hashes and the
//! Merkle tree.
//!
//! Architecture invariant: everything here is pure (bytes in, bytes out) except `keyfile`, the
//! only file that touches the file system, and `agent`, the only one that talks to an
//! ssh-agent; `signer` joins the two behind one `Sign` trait. Signatures are checked with ed25519-dalek's
//! `VerifyingKey::verify_strict` only; no curve arithmetic is written here.
//! `canonical` is the one place where hashed and signed bytes are laid out.

pub mod agent;
pub mod canonical;
mod key_formats;
pub mod keyfile;
pub mod keys;
pub mod merkle;
pub mod signer;

pub use keys::{KeyError, KeyId, PublicKey, SecretKey, Signature};
pub use merkle::{MerkleBuilder, MerkleError};
pub use signer::{Sign, Signer};

/// Why a hex string was refused: base16ct's error (a character that is not a lowercase hex digit,
/// or a wrong length). Callers name the field; the format allows lowercase digits only.
pub type HexError = base16ct::Error;

/// Lowercase hex, two digits a byte: how hashes, keys and signatures are spelled everywhere.
pub fn to_hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// Decodes lowercase hex; uppercase digits, `0x` and whitespace are refused (one spelling per
/// value, as `docs/audit-format.md` says).
pub fn from_hex(text: &str) -> Result<Vec<u8>, HexError> {
    base16ct::lower::decode_vec(text)
}

/// Decodes exactly 64 lowercase hex digits into a 32-byte hash or key.
pub fn from_hex32(text: &str) -> Result<[u8; 32], HexError> {
    if text.len() != 64 {
        return Err(base16ct::Error::InvalidLength);
    }
    let mut bytes = [0u8; 32];
    base16ct::lower::decode(text, &mut bytes)?;
    Ok(bytes)
}
