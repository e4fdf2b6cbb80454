//! Hashes, canonical byte strings, hex. `canonical` is the single place where hashed and signed
//! bytes are laid out.
pub mod canonical;
pub mod hex;
