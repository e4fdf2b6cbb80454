//! Ed25519 signer keys: parsing, fingerprints, signing and strict verification.
//!
//! Pure: text in, keys out. Recognising formats lives in `key_formats.rs`; reading and writing
//! key files in `keyfile.rs`.
//!
//! Accepted formats are the ones the standard tools write, and nothing else:
//! - public: an OpenSSH line (`ssh-ed25519 AAAA... comment`) or PEM SubjectPublicKeyInfo
//!   (`-----BEGIN PUBLIC KEY-----`, `openssl pkey -pubout`);
//! - private: PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, v1 or v2, `openssl genpkey`), encrypted
//!   PKCS#8 (`-----BEGIN ENCRYPTED PRIVATE KEY-----`, PBES2, `openssl genpkey -aes256`) or an
//!   OpenSSH private key (`ssh-keygen -t ed25519`, with or without a passphrase).
//!
//! Raw 32/64-byte blobs, hex and bare base64 are refused on purpose: they carry no algorithm, so
//! a key of another type or a truncated paste would be silently misread.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::der::Decode as _;
use ed25519_dalek::pkcs8::{
    EncodePrivateKey as _, EncodePublicKey as _, KeypairBytes, PrivateKeyInfoRef,
};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use super::key_formats::{self, STANDARD};

pub use ed25519_dalek::Signature;

/// Largest key text accepted. Big enough to recognise (and name) a 16384-bit RSA key, small
/// enough that a wrong file (a log, a database) is refused before it is parsed.
pub const KEY_TEXT_LEN_MAX_BYTES: usize = 64 * 1024;

/// Longest comment written into an OpenSSH public key line.
pub const KEY_COMMENT_LEN_MAX_CHARS: usize = 256;

/// The algorithm name in OpenSSH lines and wire blobs.
pub(super) const SSH_ED25519: &str = "ssh-ed25519";

/// Why a key, a key id or a signature was refused.
#[derive(Debug, Error)]
pub enum KeyError {
    #[error(
        "unsupported key type {found}: rollbook signs with Ed25519 only; create an Ed25519 key with \
         `ssh-keygen -t ed25519` or `openssl genpkey -algorithm ed25519`"
    )]
    UnsupportedKeyType { found: String },
    /// A passphrase-protected key read without a passphrase: the caller asks for one and calls
    /// `SecretKey::parse_encrypted`.
    #[error(
        "this key is passphrase-protected: give its passphrase on the terminal or with \
         --passphrase-file FILE"
    )]
    Encrypted,
    #[error("wrong passphrase: it does not decrypt this key")]
    WrongPassphrase,
    #[error("cannot read the passphrase: {reason}")]
    Passphrase { reason: String },
    #[error(
        "no ssh-agent to sign with: SSH_AUTH_SOCK is not set. A public key given as --key means \
         \"sign with the matching key held by ssh-agent\"; start one (`eval $(ssh-agent)`, then \
         `ssh-add -c KEY`) or give the private key file"
    )]
    NoAgent,
    #[error("cannot reach the ssh-agent at {socket}: {reason}")]
    AgentUnreachable { socket: PathBuf, reason: String },
    #[error(
        "the ssh-agent at {socket} does not hold the key {key_id} ({held} key(s) held, none of \
         them this one); add it with `ssh-add -c KEY` (the private key file beside the .pub)"
    )]
    AgentLacksKey {
        socket: PathBuf,
        key_id: KeyId,
        held: usize,
    },
    #[error(
        "the ssh-agent refused to sign with {key_id} (a confirmation declined, a locked agent, \
         or a key the agent may not use): nothing was signed or recorded"
    )]
    AgentRefused { key_id: KeyId },
    #[error("the ssh-agent's reply is not a valid Ed25519 signature by {key_id}: {reason}")]
    AgentBadReply { key_id: KeyId, reason: String },
    #[error(
        "not a private key: expected PKCS#8 PEM (-----BEGIN PRIVATE KEY-----) or an OpenSSH \
         private key (-----BEGIN OPENSSH PRIVATE KEY-----); raw bytes, hex and base64 are refused \
         because they do not say which algorithm they belong to"
    )]
    NotASecretKey,
    #[error(
        "not a public key: expected an OpenSSH line (ssh-ed25519 AAAA... comment) or PEM \
         (-----BEGIN PUBLIC KEY-----); raw bytes, hex and base64 are refused because they do not \
         say which algorithm they belong to"
    )]
    NotAPublicKey,
    #[error("this is a public key, but a private key is needed here (the key file without .pub)")]
    PublicKeyGiven,
    #[error(
        "this is a private key, but a public key is needed here: give the .pub file or the output \
         of `openssl pkey -in KEY -pubout`"
    )]
    SecretKeyGiven,
    #[error("key text is empty")]
    Empty,
    #[error(
        "key text is {len_bytes} bytes; the limit is {max_bytes} bytes, so this is not a key file"
    )]
    TooLarge { len_bytes: usize, max_bytes: usize },
    #[error("malformed {format}: {reason}")]
    Malformed {
        format: &'static str,
        reason: String,
    },
    #[error(
        "public key is a small-order (weak) point: signatures under it prove nothing, so it is refused"
    )]
    WeakKey,
    #[error(
        "public key is not canonically encoded (the same point has a standard encoding); refused \
         so that every key has exactly one spelling and one key id"
    )]
    NonCanonical,
    #[error("signature does not verify under this public key")]
    BadSignature,
    #[error(
        "invalid key id {text:?}: expected `SHA256:` followed by 43 base64 characters, as \
         `ssh-keygen -lf KEY.pub` prints"
    )]
    InvalidKeyId { text: String },
    #[error("invalid key comment: {reason}")]
    InvalidComment { reason: &'static str },
    #[error("the operating system's random number generator failed: {reason}")]
    Randomness { reason: String },
    #[error("{path}: {source}")]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<KeyError>,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} already exists; refusing to overwrite a key file (move it away or choose another path)")]
    AlreadyExists { path: PathBuf },
}

/// The SHA-256 fingerprint of a public key, exactly as `ssh-keygen -lf KEY.pub` prints it:
/// `SHA256:` + unpadded standard base64 of SHA-256 over the OpenSSH wire blob of the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 32]);

impl KeyId {
    /// The fingerprint's 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "SHA256:{}", STANDARD_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = KeyError;

    /// Parses `SHA256:<43 base64 chars>`; the canonical (zero trailing bits) spelling only.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || KeyError::InvalidKeyId {
            text: text.chars().take(80).collect(),
        };
        let encoded = text.strip_prefix("SHA256:").ok_or_else(invalid)?;
        let digest = STANDARD_NO_PAD.decode(encoded).map_err(|_| invalid())?;
        let digest = <[u8; 32]>::try_from(digest.as_slice()).map_err(|_| invalid())?;
        Ok(KeyId(digest))
    }
}

/// An Ed25519 public key that is canonically encoded and not of small order.
#[derive(Clone, Copy)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Accepts 32 raw bytes only if they are the canonical encoding of a point that is not of
    /// small order. Used for keys from trusted structured containers; never on user-pasted text.
    pub fn from_bytes_checked(bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::Malformed {
            format: "Ed25519 public key",
            reason: "the 32 bytes are not a point on the curve".to_string(),
        })?;
        // dalek keeps the bytes it was given; re-compressing the decoded point yields the
        // canonical form, which differs for y >= p or for a "negative zero" x.
        if VerifyingKey::from(key.to_edwards()).to_bytes() != *bytes {
            return Err(KeyError::NonCanonical);
        }
        if key.is_weak() {
            return Err(KeyError::WeakKey);
        }
        Ok(PublicKey(key))
    }

    /// Parses an OpenSSH public key line or a PEM SubjectPublicKeyInfo.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        key_formats::parse_public_key(text)
    }

    /// The OpenSSH one-line form, `ssh-ed25519 <base64 blob> <comment>`. Control characters in
    /// the comment become spaces so the result is always exactly one line.
    pub fn to_openssh_line(&self, comment: &str) -> String {
        let blob = STANDARD.encode(self.openssh_blob());
        let comment: String = comment
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let comment = comment.trim();
        if comment.is_empty() {
            format!("{SSH_ED25519} {blob}")
        } else {
            format!("{SSH_ED25519} {blob} {comment}")
        }
    }

    /// PEM SubjectPublicKeyInfo, as `openssl pkey -pubout` writes it.
    pub fn to_spki_pem(&self) -> String {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .expect("encoding a 32-byte Ed25519 SPKI cannot fail")
    }

    /// The `ssh-keygen -l` SHA-256 fingerprint.
    pub fn key_id(&self) -> KeyId {
        KeyId(Sha256::digest(self.openssh_blob()).into())
    }

    /// The 32-byte compressed point.
    pub fn as_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Strict Ed25519 verification: ed25519-dalek's `VerifyingKey::verify_strict` (RFC 8032 with
    /// canonical S, no small-order R or key, cofactorless equation). The only verification
    /// rollbook does: no cofactored or batch-equation variants, so every verifier agrees on every
    /// signature.
    pub fn verify_strict(&self, message: &[u8], signature: &Signature) -> Result<(), KeyError> {
        self.0
            .verify_strict(message, signature)
            .map_err(|_| KeyError::BadSignature)
    }

    /// OpenSSH wire encoding: string "ssh-ed25519", string key (each a u32 BE length + bytes).
    fn openssh_blob(&self) -> Vec<u8> {
        let mut blob = Vec::with_capacity(4 + SSH_ED25519.len() + 4 + 32);
        blob.extend_from_slice(&(SSH_ED25519.len() as u32).to_be_bytes());
        blob.extend_from_slice(SSH_ED25519.as_bytes());
        blob.extend_from_slice(&32u32.to_be_bytes());
        blob.extend_from_slice(self.0.as_bytes());
        blob
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for PublicKey {}

impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "PublicKey({})", self.key_id())
    }
}

/// An Ed25519 signing key. Zeroized on drop (dalek's `zeroize` feature); `Debug` shows only the
/// public key id.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<SecretKey, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|error| KeyError::Randomness {
            reason: error.to_string(),
        })?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// Parses PKCS#8 PEM (v1 or v2) or an unencrypted OpenSSH private key.
    pub fn parse(text: &str) -> Result<SecretKey, KeyError> {
        key_formats::parse_secret_key(text)
    }

    /// Decrypts a passphrase-protected key (OpenSSH or encrypted PKCS#8) with the decryption of
    /// the `ssh-key` and `pkcs8` crates. A passphrase that does not decrypt it is
    /// `KeyError::WrongPassphrase`.
    pub fn parse_encrypted(text: &str, passphrase: &[u8]) -> Result<SecretKey, KeyError> {
        key_formats::parse_encrypted_secret_key(text, passphrase)
    }

    pub(super) fn from_signing_key(key: SigningKey) -> SecretKey {
        SecretKey(key)
    }

    /// PKCS#8 v1 PEM (no embedded public key): the layout OpenSSL 3.0 reads.
    /// dalek's default writes v2, which `openssl pkey` rejects.
    pub fn to_pkcs8_pem_v1(&self) -> Zeroizing<String> {
        let keypair = KeypairBytes {
            secret_key: self.0.to_bytes(),
            public_key: None,
        };
        keypair
            .to_pkcs8_pem(LineEnding::LF)
            .expect("encoding a 32-byte Ed25519 PKCS#8 document cannot fail")
    }

    /// Encrypted PKCS#8 PEM (`-----BEGIN ENCRYPTED PRIVATE KEY-----`): the v1 layout inside
    /// PBES2 with scrypt and AES-256-CBC, the `pkcs8` crate's recommended parameters, which it
    /// keeps within what OpenSSL 3 decrypts (`openssl pkey -in KEY`).
    pub fn to_encrypted_pkcs8_pem(&self, passphrase: &[u8]) -> Result<Zeroizing<String>, KeyError> {
        let plain = KeypairBytes {
            secret_key: self.0.to_bytes(),
            public_key: None,
        }
        .to_pkcs8_der()
        .expect("encoding a 32-byte Ed25519 PKCS#8 document cannot fail");
        // Encoding a document just encoded cannot fail; encrypting fails only without randomness.
        let encrypted = PrivateKeyInfoRef::from_der(plain.as_bytes())
            .expect("a PKCS#8 document just encoded decodes")
            .encrypt(passphrase)
            .map_err(|error| KeyError::Randomness {
                reason: format!("encrypting the key failed: {error}"),
            })?;
        let pem = encrypted
            .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
            .expect("PEM-encoding a DER document cannot fail");
        Ok(pem)
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Ed25519 (RFC 8032, pure) signature over `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "SecretKey(public {})", self.public().key_id())
    }
}

/// Refuses a comment that would not survive one OpenSSH line or would mislead on a terminal.
pub fn validate_comment(comment: &str) -> Result<(), KeyError> {
    if comment.chars().count() > KEY_COMMENT_LEN_MAX_CHARS {
        return Err(KeyError::InvalidComment {
            reason: "longer than 256 characters",
        });
    }
    if comment.chars().any(char::is_control) {
        return Err(KeyError::InvalidComment {
            reason: "contains a control character (newline, tab, escape...)",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_round_trips_through_text() {
        let key = SecretKey::generate().unwrap().public();
        let id = key.key_id();
        let text = id.to_string();
        assert!(text.starts_with("SHA256:"));
        assert_eq!(text.len(), "SHA256:".len() + 43);
        assert_eq!(text.parse::<KeyId>().unwrap(), id);
        assert!("MD5:aa".parse::<KeyId>().is_err());
        assert!("SHA256:".parse::<KeyId>().is_err());
        assert!(format!("{text}=").parse::<KeyId>().is_err());
    }

    #[test]
    fn openssh_line_round_trips_and_sanitizes_comment() {
        let key = SecretKey::generate().unwrap().public();
        let line = key.to_openssh_line("alice@desk\nevil");
        assert_eq!(line.lines().count(), 1);
        assert!(line.ends_with(" alice@desk evil"));
        assert_eq!(PublicKey::parse(&line).unwrap(), key);
        assert_eq!(PublicKey::parse(&key.to_openssh_line("")).unwrap(), key);
        assert_eq!(PublicKey::parse(&key.to_spki_pem()).unwrap(), key);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = SecretKey::generate().unwrap();
        let shown = format!("{secret:?}");
        let seed_hex = crate::crypto::to_hex(&secret.0.to_bytes());
        assert!(!shown.contains(&seed_hex));
        assert!(shown.contains("SHA256:"));
    }
}
