//! Who signs: a key file decrypted in memory, or a key held by an ssh-agent. Every signature
//! rollbook makes goes through `Sign`, so a command that takes `--key` signs the same way
//! whichever of the two it was given.

use super::agent::AgentKey;
use super::keys::{KeyError, PublicKey, SecretKey};

/// Something that makes Ed25519 signatures for one public key.
pub trait Sign {
    /// The public key every signature verifies under.
    fn public(&self) -> PublicKey;

    /// An Ed25519 (RFC 8032, pure) signature over exactly `message`.
    fn sign_message(&self, message: &[u8]) -> Result<[u8; 64], KeyError>;
}

/// The signer a `--key` names: a private key file (decrypted in memory, zeroized on drop) or a
/// public key file whose private half an ssh-agent holds.
#[derive(Debug)]
pub enum Signer {
    File(SecretKey),
    Agent(AgentKey),
}

impl Sign for SecretKey {
    fn public(&self) -> PublicKey {
        SecretKey::public(self)
    }

    fn sign_message(&self, message: &[u8]) -> Result<[u8; 64], KeyError> {
        Ok(self.sign(message))
    }
}

impl Sign for AgentKey {
    fn public(&self) -> PublicKey {
        AgentKey::public(self)
    }

    fn sign_message(&self, message: &[u8]) -> Result<[u8; 64], KeyError> {
        self.sign(message)
    }
}

impl Sign for Signer {
    fn public(&self) -> PublicKey {
        match self {
            Signer::File(key) => key.public(),
            Signer::Agent(key) => key.public(),
        }
    }

    fn sign_message(&self, message: &[u8]) -> Result<[u8; 64], KeyError> {
        match self {
            Signer::File(key) => key.sign_message(message),
            Signer::Agent(key) => key.sign_message(message),
        }
    }
}
