//! Ed25519 signer keys: parsing, fingerprints, signing and strict verification.
//!
//! Pure: text in, keys out. Recognising formats lives in `key_formats.rs`; reading and writing
//! key files in `keyfile.rs`.
//!
//! Accepted formats are the ones the standard tools write, and nothing else:
//! - public: an OpenSSH line (`ssh-ed25519 AAAA... comment`) or PEM SubjectPublicKeyInfo
//!   (`-----BEGIN PUBLIC KEY-----`, `openssl pkey -pubout`);
//! - private: PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, v1 or v2, `openssl genpkey`) or an
//!   unencrypted OpenSSH private key (`ssh-keygen -t ed25519 -N ''`).
//!
//! Raw 32/64-byte blobs, hex and bare base64 are refused on purpose: they carry no algorithm, so
//! a key of another type or a truncated paste would be silently misread.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, KeypairBytes};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256, Sha512};
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
    #[error(
        "passphrase-protected keys are not supported; rollbook reads unencrypted key files kept \
         with mode 0600. Remove the passphrase from a copy with `ssh-keygen -p -N '' -f KEY` \
         (OpenSSH) or `openssl pkey -in KEY -out PLAIN_KEY` (PKCS#8)"
    )]
    Encrypted,
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
    ///
    /// A key that passed is remembered (`CheckedKeys`): a command meets the same few signer
    /// keys in every signer set it reads, and each check costs a square root and an inversion
    /// in the field (8% of `sign`'s CPU samples on a 5-signer ledger, 2026-12-03).
    pub fn from_bytes_checked(bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        if let Some(key) = CheckedKeys::get(bytes) {
            return Ok(key);
        }
        let key = Self::check_bytes(bytes)?;
        CheckedKeys::put(key);
        Ok(key)
    }

    fn check_bytes(bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
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

    /// Strict Ed25519 verification (RFC 8032 with canonical S, no small-order R or key).
    /// The only verification rollbook does (alone or as `verify_strict_batch`, which checks each
    /// signature's own equation): no cofactored or batch-equation variants, so every verifier
    /// agrees on every signature.
    ///
    /// It accepts exactly what ed25519-dalek's `VerifyingKey::verify_strict` accepts (the
    /// differential tests below hold it to that), with one point decompression fewer. dalek
    /// decompresses R to refuse a small-order R, then computes R' = [s]B - [k]A and accepts when
    /// R' compresses to R's bytes. Here R' is computed first: when it compresses to R's bytes,
    /// those bytes are R''s canonical encoding, so they decompress to R' itself, and "R is of
    /// small order" is "R' is of small order", decided on R' without decompressing R (three
    /// doublings instead of a square root). When it does not compress to R's bytes, both
    /// refuse. The order of the refusals differs; they all mean the same `BadSignature`.
    pub fn verify_strict(&self, message: &[u8], signature: &Signature) -> Result<(), KeyError> {
        let bytes = signature.to_bytes();
        let expected_r = self
            .expected_r(message, &bytes)
            .ok_or(KeyError::BadSignature)?;
        if !Self::r_matches(&expected_r, &expected_r.compress(), &bytes) {
            return Err(KeyError::BadSignature);
        }
        Ok(())
    }

    /// `verify_strict` of many (key, message, signature) triples, with exactly its verdict for
    /// each (`true`: accepted). One field inversion for the whole batch instead of one per
    /// signature: compressing R' = [s]B - [k]A to compare it with R's bytes needs 1/Z, and
    /// `EdwardsPoint::compress_batch_alloc` inverts all the Z at once (Montgomery's trick), about
    /// a tenth of a signature check each. Every signature is still checked on its own equation:
    /// this is not batch verification (a random linear combination of the equations), which
    /// would accept some signatures that `verify_strict` refuses.
    pub fn verify_strict_batch(items: &[(&PublicKey, &[u8], &[u8; 64])]) -> Vec<bool> {
        let candidates: Vec<Option<EdwardsPoint>> = items
            .iter()
            .map(|(key, message, signature)| key.expected_r(message, signature))
            .collect();
        let points: Vec<EdwardsPoint> = candidates.iter().flatten().copied().collect();
        let mut compressed = EdwardsPoint::compress_batch_alloc(&points).into_iter();
        items
            .iter()
            .zip(&candidates)
            .map(|((_, _, signature), candidate)| match candidate {
                None => false,
                Some(expected_r) => {
                    let encoding = compressed.next().expect("one encoding per candidate point");
                    Self::r_matches(expected_r, &encoding, signature)
                }
            })
            .collect()
    }

    /// R' = [s]B - [k]A for a signature, or `None` when it is refused before any curve
    /// arithmetic: S not canonical, or a small-order key.
    fn expected_r(&self, message: &[u8], signature: &[u8; 64]) -> Option<EdwardsPoint> {
        let (r_bytes, s_bytes) = signature.split_at(32);
        let s_bytes: [u8; 32] = s_bytes.try_into().expect("a signature is 64 bytes");
        // S must be canonical: 0 <= S < l (dalek's `check_scalar` without
        // `legacy_compatibility`, which rollbook does not enable).
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
        let a = self.0.to_edwards();
        if a.is_small_order() {
            return None;
        }
        // k = SHA-512(R || A || M) mod l, with A the key's bytes as given (dalek's `RCompute`).
        let mut hash = Sha512::new();
        hash.update(r_bytes);
        hash.update(self.0.as_bytes());
        hash.update(message);
        let k = Scalar::from_hash(hash);
        Some(EdwardsPoint::vartime_double_scalar_mul_basepoint(
            &k,
            &(-a),
            &s,
        ))
    }

    /// The last step of the strict check: R' (with its encoding) is the signature's R, and
    /// not of small order.
    fn r_matches(
        expected_r: &EdwardsPoint,
        encoding: &curve25519_dalek::edwards::CompressedEdwardsY,
        signature: &[u8; 64],
    ) -> bool {
        encoding.as_bytes() == &signature[..32] && !expected_r.is_small_order()
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

/// Up to `CHECKED_KEYS_MAX` keys `from_bytes_checked` accepted in this process, first in first
/// out, by their exact bytes. Four full signer sets (of at most 32 keys) fit, so a ledger that
/// rotates between large sets still finds its keys; the bound keeps an export with many sets
/// from growing it without limit.
struct CheckedKeys;

const CHECKED_KEYS_MAX: usize = 128;

static CHECKED_KEYS: std::sync::Mutex<Vec<PublicKey>> = std::sync::Mutex::new(Vec::new());

impl CheckedKeys {
    fn get(bytes: &[u8; 32]) -> Option<PublicKey> {
        let keys = CHECKED_KEYS.lock().ok()?;
        keys.iter()
            .rev()
            .find(|key| key.as_bytes() == *bytes)
            .copied()
    }

    fn put(key: PublicKey) {
        if let Ok(mut keys) = CHECKED_KEYS.lock() {
            if keys.len() == CHECKED_KEYS_MAX {
                keys.remove(0);
            }
            keys.push(key);
        }
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

    mod strict_verification_matches_dalek {
        //! `PublicKey::verify_strict` must accept exactly what ed25519-dalek's `verify_strict`
        //! accepts. Deterministic inputs (SHA-512 of a counter), honest signatures and the
        //! forgeries strictness exists for: non-canonical S, small-order and mixed-order R and
        //! keys, non-canonical encodings of R and of the key.
        use super::*;
        use curve25519_dalek::constants::EIGHT_TORSION;
        use curve25519_dalek::edwards::CompressedEdwardsY;

        fn bytes64(label: &str, i: u64) -> [u8; 64] {
            let mut hash = Sha512::new();
            hash.update(label.as_bytes());
            hash.update(i.to_le_bytes());
            hash.finalize().into()
        }

        fn scalar(label: &str, i: u64) -> Scalar {
            Scalar::from_bytes_mod_order_wide(&bytes64(label, i))
        }

        /// Both verdicts; the test fails when they differ.
        fn verdicts(key_bytes: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> Option<bool> {
            let key = VerifyingKey::from_bytes(key_bytes).ok()?;
            let signature = Signature::from_bytes(signature);
            let dalek = key.verify_strict(message, &signature).is_ok();
            let ours = PublicKey(key).verify_strict(message, &signature).is_ok();
            assert_eq!(
                ours,
                dalek,
                "key {:02x?} signature {:02x?}",
                key_bytes,
                signature.to_bytes()
            );
            let alone = PublicKey::verify_strict_batch(&[(
                &PublicKey(key),
                message,
                &signature.to_bytes(),
            )]);
            assert_eq!(alone, [dalek], "a batch of one: key {key_bytes:02x?}");
            SEEN.with(|seen| {
                seen.borrow_mut().push((
                    PublicKey(key),
                    message.to_vec(),
                    signature.to_bytes(),
                    dalek,
                ))
            });
            Some(ours)
        }

        /// A key, a message, a signature and dalek's verdict on them.
        type Judged = (PublicKey, Vec<u8>, [u8; 64], bool);

        thread_local! {
            /// Every triple `verdicts` judged in this test.
            static SEEN: std::cell::RefCell<Vec<Judged>> = const { std::cell::RefCell::new(Vec::new()) };
        }

        /// `verify_strict_batch` over the triples judged since `judging_starts`, in batches of
        /// several sizes (accepted and refused mixed, so a verdict given to the wrong triple
        /// shows), gives dalek's verdict for each. Returns how many the batches accepted and
        /// refused.
        fn batches_agree() -> (usize, usize) {
            let seen = SEEN.with(|seen| std::mem::take(&mut *seen.borrow_mut()));
            assert!(PublicKey::verify_strict_batch(&[]).is_empty());
            let (mut accepted, mut refused) = (0, 0);
            for size in [2, 3, 16, 61, seen.len().max(1)] {
                for chunk in seen.chunks(size) {
                    let items: Vec<_> = chunk
                        .iter()
                        .map(|(key, message, signature, _)| (key, message.as_slice(), signature))
                        .collect();
                    let expected: Vec<bool> = chunk.iter().map(|seen| seen.3).collect();
                    let verdicts = PublicKey::verify_strict_batch(&items);
                    assert_eq!(verdicts, expected, "batches of {size}");
                    if size == seen.len().max(1) {
                        accepted += verdicts.iter().filter(|&&verdict| verdict).count();
                        refused += verdicts.iter().filter(|&&verdict| !verdict).count();
                    }
                }
            }
            (accepted, refused)
        }

        /// Forgets triples left by an earlier test that failed on this thread.
        fn judging_starts() {
            SEEN.with(|seen| seen.borrow_mut().clear());
        }

        /// A signature by the secret scalar `a` of `key` (whatever its torsion part) with
        /// nonce point `r_point` = [r]B + torsion, so that forgeries can be made to measure.
        fn sign_raw(
            key: &EdwardsPoint,
            a: &Scalar,
            r: &Scalar,
            r_point: &EdwardsPoint,
            message: &[u8],
        ) -> [u8; 64] {
            let (r_bytes, a_bytes) = (r_point.compress().to_bytes(), key.compress().to_bytes());
            let mut hash = Sha512::new();
            hash.update(r_bytes);
            hash.update(a_bytes);
            hash.update(message);
            let k = Scalar::from_hash(hash);
            let s = r + k * a;
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&r_bytes);
            signature[32..].copy_from_slice(s.as_bytes());
            signature
        }

        #[test]
        fn honest_signatures_and_their_mutations() {
            judging_starts();
            for i in 0..64u64 {
                let secret = SecretKey(SigningKey::from_bytes(
                    &bytes64("seed", i)[..32].try_into().unwrap(),
                ));
                let public = secret.public();
                let message = bytes64("message", i)[..(i as usize % 64)].to_vec();
                let signature = secret.sign(&message);
                assert_eq!(
                    verdicts(&public.as_bytes(), &message, &signature),
                    Some(true)
                );
                for bit in [0usize, 7, 100, 255, 256, 300, 500, 504, 511] {
                    let mut forged = signature;
                    forged[bit / 8] ^= 1 << (bit % 8);
                    assert_eq!(verdicts(&public.as_bytes(), &message, &forged), Some(false));
                }
                let mut other = message.clone();
                other.push(0);
                assert_eq!(
                    verdicts(&public.as_bytes(), &other, &signature),
                    Some(false)
                );
                // S + l: the same scalar, not canonical.
                let s = Scalar::from_canonical_bytes(signature[32..].try_into().unwrap()).unwrap();
                let mut wide = [0u8; 32];
                let mut carry = 0u16;
                // l, little-endian.
                let l: [u8; 32] = [
                    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde,
                    0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
                ];
                for (j, out) in wide.iter_mut().enumerate() {
                    let sum = u16::from(s.as_bytes()[j]) + u16::from(l[j]) + carry;
                    *out = sum as u8;
                    carry = sum >> 8;
                }
                if carry == 0 {
                    let mut forged = signature;
                    forged[32..].copy_from_slice(&wide);
                    assert_eq!(verdicts(&public.as_bytes(), &message, &forged), Some(false));
                }
            }
            let (accepted, refused) = batches_agree();
            assert!(accepted >= 64 && refused >= 64 * 10, "{accepted} {refused}");
        }

        #[test]
        fn mixed_order_keys_and_nonces_small_order_nonces_and_weak_keys() {
            judging_starts();
            let (mut accepted, mut small_r) = (0, 0);
            for i in 0..400u64 {
                let a = scalar("a", i);
                let torsion = EIGHT_TORSION[(i % 8) as usize];
                // A key with a torsion part (not of small order unless a is 0).
                let key = EdwardsPoint::mul_base(&a) + torsion;
                let message = bytes64("m", i);
                // A nonce point with a torsion part: the cofactorless equation holds only when
                // it cancels the key's, which happens for some of these.
                let r = scalar("r", i);
                let t = EIGHT_TORSION[(i / 8 % 8) as usize];
                let signature = sign_raw(&key, &a, &r, &(EdwardsPoint::mul_base(&r) + t), &message);
                if verdicts(&key.compress().to_bytes(), &message, &signature) == Some(true) {
                    accepted += 1;
                }
                // R of small order (r = 0): refused by both, even when the equation holds.
                let signature = sign_raw(&key, &a, &Scalar::ZERO, &t, &message);
                assert_eq!(
                    verdicts(&key.compress().to_bytes(), &message, &signature),
                    Some(false)
                );
                if t != EdwardsPoint::default() {
                    small_r += 1;
                }
                // A weak key (small order): refused by both.
                let weak = torsion.compress().to_bytes();
                let signature = sign_raw(
                    &torsion,
                    &Scalar::ZERO,
                    &r,
                    &EdwardsPoint::mul_base(&r),
                    &message,
                );
                assert_eq!(verdicts(&weak, &message, &signature), Some(false));
            }
            // Some mixed-order signatures do verify under the cofactorless equation: the
            // comparison above covered acceptances, not only refusals.
            assert!(accepted > 0, "no mixed-order signature was accepted");
            assert!(small_r > 0);
            let (batch_accepted, _) = batches_agree();
            assert_eq!(batch_accepted, accepted);
        }

        #[test]
        fn non_canonical_encodings_of_r_and_of_the_key() {
            judging_starts();
            // y + p for the few y < 19, with either sign bit; and "negative zero" x.
            let p_minus = |y: u8, sign: bool| {
                let mut bytes = [0xffu8; 32];
                bytes[0] = 0xed_u8.wrapping_add(y);
                bytes[31] = 0x7f | if sign { 0x80 } else { 0 };
                bytes
            };
            let secret = SecretKey(SigningKey::from_bytes(&[7u8; 32]));
            let public = secret.public();
            let message = b"non-canonical";
            let honest = secret.sign(message);
            for y in 0u8..19 {
                for sign in [false, true] {
                    let encoding = p_minus(y, sign);
                    if CompressedEdwardsY(encoding).decompress().is_none() {
                        continue;
                    }
                    let mut forged = honest;
                    forged[..32].copy_from_slice(&encoding);
                    assert_eq!(verdicts(&public.as_bytes(), message, &forged), Some(false));
                    verdicts(&encoding, message, &honest);
                }
            }
            for point in EIGHT_TORSION {
                let mut encoding = point.compress().to_bytes();
                encoding[31] ^= 0x80;
                let mut forged = honest;
                forged[..32].copy_from_slice(&encoding);
                verdicts(&public.as_bytes(), message, &forged);
                verdicts(&encoding, message, &honest);
            }
            let (_, refused) = batches_agree();
            assert!(refused > 0);
        }
    }

    /// `from_bytes_checked` answers from its memo exactly as a fresh check does: honest keys
    /// (more than the memo holds, each asked several times), keys of small order and encodings
    /// that are not canonical; and the memo stays within its bound.
    #[test]
    fn remembered_keys_answer_as_a_fresh_check_does() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        let fresh = |bytes: &[u8; 32]| {
            PublicKey::check_bytes(bytes)
                .map(|key| key.as_bytes())
                .map_err(|error| error.to_string())
        };
        let mut encodings: Vec<[u8; 32]> = (0..CHECKED_KEYS_MAX as u16 * 2 + 3)
            .map(|i| {
                let mut seed = [7u8; 32];
                seed[..2].copy_from_slice(&i.to_le_bytes());
                SecretKey(SigningKey::from_bytes(&seed)).public().as_bytes()
            })
            .collect();
        encodings.extend(
            EIGHT_TORSION
                .iter()
                .map(|point| point.compress().to_bytes()),
        );
        // y + p for small y (not canonical where it decodes), and a "negative zero" x.
        for y in 0u8..19 {
            let mut bytes = [0xffu8; 32];
            bytes[0] = 0xed_u8.wrapping_add(y);
            bytes[31] = 0x7f;
            encodings.push(bytes);
        }
        // The canonical spelling of a point first, then its y + p spelling: the memo is keyed
        // by exact bytes, so the second is still refused as not canonical.
        let mut both_spellings = 0;
        for y in 2u8..19 {
            let mut canonical = [0u8; 32];
            canonical[0] = y;
            if PublicKey::check_bytes(&canonical).is_err() {
                continue;
            }
            PublicKey::from_bytes_checked(&canonical).unwrap();
            let mut above_p = [0xffu8; 32];
            above_p[0] = 0xed_u8.wrapping_add(y);
            above_p[31] = 0x7f;
            assert!(matches!(
                PublicKey::from_bytes_checked(&above_p),
                Err(KeyError::NonCanonical)
            ));
            both_spellings += 1;
        }
        assert!(both_spellings > 0);
        let mut negative_zero = [0u8; 32];
        negative_zero[0] = 1;
        negative_zero[31] = 0x80;
        encodings.push(negative_zero);
        let mut answers = (0, 0);
        for round in 0..3 {
            // Forwards, then backwards: both the oldest and the newest entries get asked for.
            let order: Vec<&[u8; 32]> = if round == 1 {
                encodings.iter().rev().collect()
            } else {
                encodings.iter().collect()
            };
            for bytes in order {
                let remembered = PublicKey::from_bytes_checked(bytes)
                    .map(|key| key.as_bytes())
                    .map_err(|error| error.to_string());
                assert_eq!(remembered, fresh(bytes), "{bytes:02x?}");
                match remembered {
                    Ok(_) => answers.0 += 1,
                    Err(_) => answers.1 += 1,
                }
            }
        }
        assert!(answers.0 > 0 && answers.1 > 0, "{answers:?}");
        let key = SecretKey(SigningKey::from_bytes(&[200; 32])).public();
        PublicKey::from_bytes_checked(&key.as_bytes()).unwrap();
        assert!(
            CheckedKeys::get(&key.as_bytes()).is_some(),
            "an accepted key is remembered"
        );
        assert!(CHECKED_KEYS.lock().unwrap().len() <= CHECKED_KEYS_MAX);
    }

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
        let seed_hex = crate::crypto::hex::to_hex(&secret.0.to_bytes());
        assert!(!shown.contains(&seed_hex));
        assert!(shown.contains("SHA256:"));
    }
}
