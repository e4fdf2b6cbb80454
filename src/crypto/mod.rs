//! Cryptography for rollbook: canonical byte strings, signer keys, signatures, hashes and the
//! Merkle tree.
//!
//! Architecture invariant: everything here is pure (bytes in, bytes out) except `keyfile`, the
//! only file that touches the file system. Signatures are checked with ed25519-dalek's
//! `VerifyingKey::verify_strict` only; no curve arithmetic is written here.
//! `canonical` is the one place where hashed and signed bytes are laid out.

pub mod canonical;
pub mod hex;
mod key_formats;
pub mod keyfile;
pub mod keys;
pub mod merkle;

pub use keys::{KeyError, KeyId, PublicKey, SecretKey, Signature};
pub use merkle::{MerkleBuilder, MerkleError};
