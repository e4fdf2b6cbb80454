//! Recognising and decoding key text: which format, which algorithm, and the bytes inside.
//!
//! Pure, like `keys.rs`, which owns the key types; this file owns the formats. Recognition goes
//! by PEM label or OpenSSH type name first, so that a key of another algorithm or a passphrase-
//! protected key gets a message naming what it is, rather than a parse error.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use ed25519_dalek::pkcs8::spki::der::Decode as _;
use ed25519_dalek::pkcs8::spki::SubjectPublicKeyInfoRef;
use ed25519_dalek::pkcs8::{Document, ObjectIdentifier, PrivateKeyInfoRef, SecretDocument};
use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

use super::keys::{KeyError, PublicKey, SecretKey, KEY_TEXT_LEN_MAX_BYTES, SSH_ED25519};

/// id-Ed25519 (RFC 8410).
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Parses an OpenSSH public key line or a PEM SubjectPublicKeyInfo.
pub(super) fn parse_public_key(text: &str) -> Result<PublicKey, KeyError> {
    let text = checked_key_text(text)?;
    if text.starts_with("---- BEGIN SSH2 PUBLIC KEY") {
        return Err(KeyError::Malformed {
            format: "public key",
            reason: "RFC 4716 (SSH2) public keys are not supported; convert with \
                     `ssh-keygen -i -f KEY.pub`"
                .to_string(),
        });
    }
    match pem_label(text) {
        Some("PUBLIC KEY") => parse_spki_pem(text),
        Some("RSA PUBLIC KEY") => Err(unsupported("RSA")),
        Some(label) if label.ends_with("PRIVATE KEY") => Err(KeyError::SecretKeyGiven),
        Some(_) => Err(KeyError::NotAPublicKey),
        None => parse_openssh_line(text),
    }
}

/// Parses PKCS#8 PEM (v1 or v2) or an unencrypted OpenSSH private key.
pub(super) fn parse_secret_key(text: &str) -> Result<SecretKey, KeyError> {
    let text = checked_key_text(text)?;
    match pem_label(text) {
        Some("OPENSSH PRIVATE KEY") => parse_openssh_private(text),
        Some("PRIVATE KEY") => parse_pkcs8_pem(text),
        Some("ENCRYPTED PRIVATE KEY") => Err(KeyError::Encrypted),
        Some("RSA PRIVATE KEY") => Err(unsupported("RSA")),
        Some("EC PRIVATE KEY") => Err(unsupported("ECDSA")),
        Some("DSA PRIVATE KEY") => Err(unsupported("DSA")),
        Some("PUBLIC KEY" | "RSA PUBLIC KEY") => Err(KeyError::PublicKeyGiven),
        Some(_) => Err(KeyError::NotASecretKey),
        None if text.starts_with("ssh-") || text.starts_with("ecdsa-") => {
            Err(KeyError::PublicKeyGiven)
        }
        None => Err(KeyError::NotASecretKey),
    }
}

/// Decrypts a passphrase-protected private key: an OpenSSH key (bcrypt-pbkdf, `ssh-key`'s
/// decryption) or encrypted PKCS#8 (PBES2, `pkcs8`'s). A key that is not encrypted is parsed as
/// usual (the passphrase is then not needed, and not checked).
pub(super) fn parse_encrypted_secret_key(
    text: &str,
    passphrase: &[u8],
) -> Result<SecretKey, KeyError> {
    let text = checked_key_text(text)?;
    match pem_label(text) {
        Some("OPENSSH PRIVATE KEY") => decrypt_openssh_private(text, passphrase),
        Some("ENCRYPTED PRIVATE KEY") => decrypt_pkcs8_pem(text, passphrase),
        _ => parse_secret_key(text),
    }
}

/// The name of the format key text is in (by its PEM label or its OpenSSH line), for people.
pub(super) fn format_name(text: &str) -> &'static str {
    match pem_label(text.trim()) {
        Some("OPENSSH PRIVATE KEY") => "OpenSSH private key",
        Some("PRIVATE KEY") => "PKCS#8 private key",
        Some("ENCRYPTED PRIVATE KEY") => "encrypted PKCS#8 private key",
        Some("PUBLIC KEY") => "PEM public key (SubjectPublicKeyInfo)",
        Some(_) => "PEM",
        None => "OpenSSH public key line",
    }
}

/// Standard base64, accepting input with or without `=` padding (OpenSSH pads; some tools strip it).
pub(super) const STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn checked_key_text(text: &str) -> Result<&str, KeyError> {
    if text.len() > KEY_TEXT_LEN_MAX_BYTES {
        return Err(KeyError::TooLarge {
            len_bytes: text.len(),
            max_bytes: KEY_TEXT_LEN_MAX_BYTES,
        });
    }
    let text = text.trim();
    if text.is_empty() {
        return Err(KeyError::Empty);
    }
    Ok(text)
}

/// The label of a PEM block starting the text (`-----BEGIN LABEL-----`), if it starts with one.
fn pem_label(text: &str) -> Option<&str> {
    let first_line = text.lines().next()?.trim_end();
    first_line
        .strip_prefix("-----BEGIN ")?
        .strip_suffix("-----")
}

fn unsupported(found: &str) -> KeyError {
    KeyError::UnsupportedKeyType {
        found: found.to_string(),
    }
}

/// A readable name for an OpenSSH algorithm identifier, keeping the identifier itself.
fn ssh_type_name(ssh_type: &str) -> String {
    let family = match ssh_type {
        "ssh-rsa" | "rsa-sha2-256" | "rsa-sha2-512" => "RSA",
        "ssh-dss" => "DSA",
        "sk-ssh-ed25519@openssh.com" => "Ed25519 security key (FIDO)",
        "sk-ecdsa-sha2-nistp256@openssh.com" => "ECDSA security key (FIDO)",
        other if other.starts_with("ecdsa-sha2-") => "ECDSA",
        other if other.contains("-cert-v01@openssh.com") => "OpenSSH certificate",
        _ => return ssh_type.chars().take(64).collect(),
    };
    format!("{family} ({ssh_type})")
}

/// A readable name for a PKCS#8 / SPKI algorithm OID.
fn oid_name(oid: &ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => "RSA",
        "1.2.840.113549.1.1.10" => "RSA-PSS",
        "1.2.840.10045.2.1" => "ECDSA (EC public key)",
        "1.2.840.10040.4.1" => "DSA",
        "1.3.101.110" => "X25519 (key agreement, cannot sign)",
        "1.3.101.111" => "X448 (key agreement, cannot sign)",
        "1.3.101.113" => "Ed448",
        other => return format!("with algorithm OID {other}"),
    };
    name.to_string()
}

fn parse_openssh_line(text: &str) -> Result<PublicKey, KeyError> {
    const FORMAT: &str = "OpenSSH public key line";
    if text.lines().count() != 1 {
        return Err(KeyError::Malformed {
            format: FORMAT,
            reason: "expected exactly one key on one line".to_string(),
        });
    }
    let mut fields = text.split_ascii_whitespace();
    let key_type = fields.next().ok_or(KeyError::NotAPublicKey)?;
    if key_type != SSH_ED25519 {
        let looks_like_ssh = key_type.starts_with("ssh-")
            || key_type.starts_with("ecdsa-")
            || key_type.starts_with("sk-")
            || key_type.starts_with("rsa-");
        return Err(match looks_like_ssh {
            true => unsupported(&ssh_type_name(key_type)),
            false => KeyError::NotAPublicKey,
        });
    }
    let encoded = fields.next().ok_or_else(|| KeyError::Malformed {
        format: FORMAT,
        reason: "the base64 key after `ssh-ed25519` is missing".to_string(),
    })?;
    let blob = STANDARD
        .decode(encoded)
        .map_err(|error| KeyError::Malformed {
            format: FORMAT,
            reason: format!("the key is not valid base64: {error}"),
        })?;
    let mut reader = WireReader(&blob);
    let malformed = |reason: &str| KeyError::Malformed {
        format: FORMAT,
        reason: reason.to_string(),
    };
    let inner_type = reader
        .string()
        .ok_or_else(|| malformed("the key blob is truncated"))?;
    if inner_type != SSH_ED25519.as_bytes() {
        return Err(malformed(
            "the key blob's type does not match the `ssh-ed25519` in front of it",
        ));
    }
    let key = reader
        .string()
        .ok_or_else(|| malformed("the key blob is truncated"))?;
    if !reader.0.is_empty() {
        return Err(malformed("the key blob has trailing bytes"));
    }
    let key = <&[u8; 32]>::try_from(key).map_err(|_| malformed("an Ed25519 key is 32 bytes"))?;
    PublicKey::from_bytes_checked(key)
}

fn parse_spki_pem(text: &str) -> Result<PublicKey, KeyError> {
    const FORMAT: &str = "PEM public key";
    let malformed = |reason: String| KeyError::Malformed {
        format: FORMAT,
        reason,
    };
    let (_label, document) =
        Document::from_pem(text).map_err(|error| malformed(error.to_string()))?;
    let info = SubjectPublicKeyInfoRef::from_der(document.as_bytes())
        .map_err(|error| malformed(error.to_string()))?;
    if info.algorithm.oid != OID_ED25519 {
        return Err(unsupported(&oid_name(&info.algorithm.oid)));
    }
    if info.algorithm.parameters.is_some() {
        return Err(malformed(
            "Ed25519 keys carry no algorithm parameters (RFC 8410)".to_string(),
        ));
    }
    let key = info
        .subject_public_key
        .as_bytes()
        .and_then(|bytes| <&[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| malformed("an Ed25519 key is 32 bytes".to_string()))?;
    PublicKey::from_bytes_checked(key)
}

fn parse_pkcs8_pem(text: &str) -> Result<SecretKey, KeyError> {
    const FORMAT: &str = "PKCS#8 private key";
    let malformed = |reason: String| KeyError::Malformed {
        format: FORMAT,
        reason,
    };
    let (_label, document) =
        SecretDocument::from_pem(text).map_err(|error| malformed(error.to_string()))?;
    let info = PrivateKeyInfoRef::from_der(document.as_bytes())
        .map_err(|error| malformed(error.to_string()))?;
    secret_from_pkcs8_info(info, FORMAT)
}

fn secret_from_pkcs8_info(
    info: PrivateKeyInfoRef<'_>,
    format: &'static str,
) -> Result<SecretKey, KeyError> {
    let malformed = |reason: String| KeyError::Malformed { format, reason };
    if info.algorithm.oid != OID_ED25519 {
        return Err(unsupported(&oid_name(&info.algorithm.oid)));
    }
    // Handles both layouts; for v2 it checks that the embedded public key matches the secret.
    let key = SigningKey::try_from(info).map_err(|error| {
        malformed(format!(
            "{error} (for a v2 key: the embedded public key must match the private key)"
        ))
    })?;
    Ok(SecretKey::from_signing_key(key))
}

/// The decryption of encrypted PKCS#8 (`openssl genpkey -aes256`): PBES2 by the `pkcs8` crate,
/// then the same checks as a plain PKCS#8 key.
fn decrypt_pkcs8_pem(text: &str, passphrase: &[u8]) -> Result<SecretKey, KeyError> {
    use pkcs8::EncryptedPrivateKeyInfoRef;
    const FORMAT: &str = "encrypted PKCS#8 private key";
    let malformed = |reason: String| KeyError::Malformed {
        format: FORMAT,
        reason,
    };
    let (_label, document) =
        Document::from_pem(text).map_err(|error| malformed(error.to_string()))?;
    let info = EncryptedPrivateKeyInfoRef::from_der(document.as_bytes())
        .map_err(|error| malformed(error.to_string()))?;
    let plain = info.decrypt(passphrase).map_err(|error| match error {
        // A wrong passphrase shows as bad padding or, rarely, as padding that happens to pass
        // and plaintext that is not DER.
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::DecryptFailed)
        | pkcs8::Error::Asn1(_) => KeyError::WrongPassphrase,
        other => malformed(format!("cannot decrypt it: {other}")),
    })?;
    let info =
        PrivateKeyInfoRef::from_der(plain.as_bytes()).map_err(|_| KeyError::WrongPassphrase)?;
    secret_from_pkcs8_info(info, FORMAT)
}

fn parse_openssh_private(text: &str) -> Result<SecretKey, KeyError> {
    let private = read_openssh_private(text)?;
    if private.is_encrypted() {
        return Err(KeyError::Encrypted);
    }
    secret_from_openssh(&private)
}

/// The decryption of a passphrase-protected OpenSSH key (bcrypt-pbkdf and the cipher named in
/// the file), by the `ssh-key` crate.
fn decrypt_openssh_private(text: &str, passphrase: &[u8]) -> Result<SecretKey, KeyError> {
    let private = read_openssh_private(text)?;
    if !private.is_encrypted() {
        return secret_from_openssh(&private);
    }
    let decrypted = private.decrypt(passphrase).map_err(|error| match error {
        // The two check integers differ after decryption: the passphrase is not this key's.
        ssh_key::Error::Crypto => KeyError::WrongPassphrase,
        other => KeyError::Malformed {
            format: "OpenSSH private key",
            reason: format!("cannot decrypt it: {other}"),
        },
    })?;
    secret_from_openssh(&decrypted)
}

/// An Ed25519 OpenSSH private key container, encrypted or not.
fn read_openssh_private(text: &str) -> Result<ssh_key::PrivateKey, KeyError> {
    // The type first, from the unencrypted header: decrypting an RSA key would not make it
    // usable, and ssh-key cannot parse every type it may meet (ECDSA is compiled out).
    if let Some(key_type) = openssh_private_key_type(text) {
        if key_type.as_slice() != SSH_ED25519.as_bytes() {
            return Err(unsupported(&ssh_type_name(&String::from_utf8_lossy(
                &key_type,
            ))));
        }
    }
    let private = ssh_key::PrivateKey::from_openssh(text).map_err(|error| KeyError::Malformed {
        format: "OpenSSH private key",
        reason: error.to_string(),
    })?;
    if private.algorithm() != ssh_key::Algorithm::Ed25519 {
        return Err(unsupported(&ssh_type_name(private.algorithm().as_str())));
    }
    Ok(private)
}

/// The signing key inside a decrypted OpenSSH container.
fn secret_from_openssh(private: &ssh_key::PrivateKey) -> Result<SecretKey, KeyError> {
    const FORMAT: &str = "OpenSSH private key";
    let malformed = |reason: String| KeyError::Malformed {
        format: FORMAT,
        reason,
    };
    let keypair = private
        .key_data()
        .ed25519()
        .ok_or_else(|| malformed("no Ed25519 key pair inside".to_string()))?;
    // ssh-key 0.6 is built on dalek 2: cross over to dalek 3 through bytes.
    let seed = Zeroizing::new(keypair.private.to_bytes());
    let key = SigningKey::from_bytes(&seed);
    if key.verifying_key().to_bytes() != keypair.public.0 {
        return Err(malformed(
            "the public key stored in the file does not match its private key".to_string(),
        ));
    }
    Ok(SecretKey::from_signing_key(key))
}

/// The public key type from an `openssh-key-v1` container, stored in clear even when the
/// private part is encrypted (see OpenSSH's PROTOCOL.key). None when the header is not readable.
fn openssh_private_key_type(text: &str) -> Option<Vec<u8>> {
    const MAGIC: &[u8] = b"openssh-key-v1\0";
    let body: String = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let container = STANDARD.decode(body).ok()?;
    let mut reader = WireReader(container.strip_prefix(MAGIC)?);
    let _cipher = reader.string()?;
    let _kdf_name = reader.string()?;
    let _kdf_options = reader.string()?;
    let (_key_count, rest) = reader.0.split_first_chunk::<4>()?;
    reader.0 = rest;
    let public_blob = reader.string()?;
    let key_type = WireReader(public_blob).string()?.to_vec();
    Some(key_type)
}

/// Reads SSH wire strings (u32 BE length + bytes).
struct WireReader<'a>(&'a [u8]);

impl<'a> WireReader<'a> {
    fn string(&mut self) -> Option<&'a [u8]> {
        let (length, rest) = self.0.split_first_chunk::<4>()?;
        let length = usize::try_from(u32::from_be_bytes(*length)).ok()?;
        if rest.len() < length {
            return None;
        }
        let (value, rest) = rest.split_at(length);
        self.0 = rest;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_reader_refuses_truncation() {
        assert_eq!(WireReader(&[0, 0, 0, 2, 1]).string(), None);
        assert_eq!(WireReader(&[0, 0, 0]).string(), None);
        assert_eq!(WireReader(&[0xff, 0xff, 0xff, 0xff]).string(), None);
        assert_eq!(WireReader(&[0, 0, 0, 1, 7]).string(), Some(&[7u8][..]));
    }
}
