//! Key files: the only part of `crypto` that touches the file system.
//!
//! Everything here is a thin shell over `keys.rs`: read bytes, check size and mode, hand the
//! text to the pure parser, and name the path in every error. Nothing is printed: a permission
//! warning is returned to the caller (the CLI decides how to show it).

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
#[cfg(unix)]
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::keys::{
    validate_comment, KeyError, KeyId, PublicKey, SecretKey, KEY_TEXT_LEN_MAX_BYTES,
};

/// Mode of a newly written private key file: owner read/write only, as ssh-keygen does.
#[cfg(unix)]
const SECRET_KEY_FILE_MODE: u32 = 0o600;
/// Mode of a newly written public key file (before the umask).
#[cfg(unix)]
const PUBLIC_KEY_FILE_MODE: u32 = 0o644;
/// Group and other permission bits: any of them set on a private key file draws a warning.
#[cfg(unix)]
const GROUP_OTHER_MODE_BITS: u32 = 0o077;

/// Reads a private key file. Returns the key and, when the file is readable or writable by group
/// or others, a warning in the spirit of OpenSSH's "UNPROTECTED PRIVATE KEY FILE".
///
/// Unlike ssh the key is still used: refusing would break shared demo setups, and the CLI shows
/// the warning on every use.
pub fn read_secret_key(path: &Path) -> Result<(SecretKey, Option<String>), KeyError> {
    let (text, mode) = read_key_text(path)?;
    let key = SecretKey::parse(&text).map_err(|source| in_file(path, source))?;
    Ok((key, permission_warning(path, mode)))
}

/// What a `--key` file holds.
pub enum KeyFile {
    /// A public key: its private half is expected in an ssh-agent.
    Public(PublicKey),
    /// An unencrypted private key.
    Secret(SecretKey),
    /// A passphrase-protected private key, still encrypted.
    Encrypted(EncryptedKey),
}

/// A passphrase-protected key file's text (zeroized on drop), waiting for its passphrase.
pub struct EncryptedKey {
    path: PathBuf,
    text: Zeroizing<String>,
}

impl EncryptedKey {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Decrypts the key; `KeyError::WrongPassphrase` (in the file) when it does not decrypt.
    pub fn decrypt(&self, passphrase: &[u8]) -> Result<SecretKey, KeyError> {
        SecretKey::parse_encrypted(&self.text, passphrase)
            .map_err(|error| in_file(&self.path, error))
    }
}

/// A key file as read: the key, its format's name, and the warning `read_secret_key` gives for a
/// private key file others may read.
pub struct KeyFileRead {
    pub key: KeyFile,
    pub format: &'static str,
    pub warning: Option<String>,
}

/// Reads a key file of any kind rollbook accepts: a public key (OpenSSH line or PEM SPKI), a
/// private key, or a passphrase-protected private key.
pub fn read_key_file(path: &Path) -> Result<KeyFileRead, KeyError> {
    let (text, mode) = read_key_text(path)?;
    let format = super::key_formats::format_name(&text);
    let key = match SecretKey::parse(&text) {
        Ok(key) => KeyFile::Secret(key),
        Err(KeyError::Encrypted) => KeyFile::Encrypted(EncryptedKey {
            path: path.to_path_buf(),
            text,
        }),
        Err(KeyError::PublicKeyGiven) => {
            let public = PublicKey::parse(&text).map_err(|source| in_file(path, source))?;
            return Ok(KeyFileRead {
                key: KeyFile::Public(public),
                format,
                warning: None,
            });
        }
        Err(source) => return Err(in_file(path, source)),
    };
    Ok(KeyFileRead {
        key,
        format,
        warning: permission_warning(path, mode),
    })
}

/// Reads a public key file (OpenSSH line or PEM SubjectPublicKeyInfo).
pub fn read_public_key(path: &Path) -> Result<PublicKey, KeyError> {
    let (text, _mode) = read_key_text(path)?;
    PublicKey::parse(&text).map_err(|source| in_file(path, source))
}

/// Generates a key pair and writes `path` (PKCS#8 v1 PEM, mode 0600; encrypted PKCS#8 under
/// `passphrase` when one is given) and `path.pub` (OpenSSH line with `comment`). Refuses to
/// overwrite either file; on failure no half pair is left.
pub fn write_keypair(
    path: &Path,
    comment: &str,
    passphrase: Option<&[u8]>,
) -> Result<KeyId, KeyError> {
    validate_comment(comment)?;
    let public_path = public_key_path(path);
    // Checked up front so that an existing .pub does not cost a freshly written private key.
    for existing in [path, public_path.as_path()] {
        if existing.symlink_metadata().is_ok() {
            return Err(KeyError::AlreadyExists {
                path: existing.to_path_buf(),
            });
        }
    }
    let secret = SecretKey::generate()?;
    let public = secret.public();

    let pem = match passphrase {
        Some(passphrase) => secret.to_encrypted_pkcs8_pem(passphrase)?,
        None => secret.to_pkcs8_pem_v1(),
    };
    write_new_file(path, pem.as_bytes(), true)?;
    let public_line = format!("{}\n", public.to_openssh_line(comment));
    if let Err(error) = write_new_file(&public_path, public_line.as_bytes(), false) {
        // Best effort: a private key without its .pub would confuse the next run.
        let _ = std::fs::remove_file(path);
        return Err(error);
    }

    // Read back what was written: a key pair that does not parse must fail here, not at signing.
    let read_back = match passphrase {
        Some(passphrase) => SecretKey::parse_encrypted(&read_key_text(path)?.0, passphrase)?,
        None => read_secret_key(path)?.0,
    };
    assert_eq!(read_back.public(), public, "private key file reads back");
    assert_eq!(
        read_public_key(&public_path)?,
        public,
        "public key file reads back"
    );
    Ok(public.key_id())
}

/// `KEY` -> `KEY.pub`: appended, not a replaced extension, as ssh-keygen names it.
pub fn public_key_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".pub");
    PathBuf::from(name)
}

fn in_file(path: &Path, source: KeyError) -> KeyError {
    KeyError::InFile {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

fn io_error(path: &Path, source: std::io::Error) -> KeyError {
    KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads at most the key size limit; returns the text and the file's permission bits.
/// The text is zeroized when dropped: it may be a private key.
fn read_key_text(path: &Path) -> Result<(Zeroizing<String>, u32), KeyError> {
    let file = File::open(path).map_err(|error| io_error(path, error))?;
    // Metadata of the open handle, not of the path: the file checked is the file read.
    let metadata = file.metadata().map_err(|error| io_error(path, error))?;
    if !metadata.is_file() {
        return Err(io_error(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
        ));
    }
    // Room for the whole limit up front: a growing buffer would leave copies of the key behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_TEXT_LEN_MAX_BYTES + 1));
    let limit = KEY_TEXT_LEN_MAX_BYTES as u64 + 1;
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|error| io_error(path, error))?;
    if bytes.len() > KEY_TEXT_LEN_MAX_BYTES {
        return Err(in_file(
            path,
            KeyError::TooLarge {
                len_bytes: metadata.len() as usize,
                max_bytes: KEY_TEXT_LEN_MAX_BYTES,
            },
        ));
    }
    // Key files are text; binary content (a raw key blob) is not a key file.
    let text = String::from_utf8(std::mem::take(&mut *bytes))
        .map_err(|_| in_file(path, KeyError::NotASecretKey))?;
    Ok((Zeroizing::new(text), file_mode(&metadata)))
}

#[cfg(unix)]
fn file_mode(metadata: &std::fs::Metadata) -> u32 {
    metadata.permissions().mode()
}

#[cfg(not(unix))]
fn file_mode(_metadata: &std::fs::Metadata) -> u32 {
    0
}

#[cfg(unix)]
fn permission_warning(path: &Path, mode: u32) -> Option<String> {
    if mode & GROUP_OTHER_MODE_BITS == 0 {
        return None;
    }
    Some(format!(
        "WARNING: UNPROTECTED PRIVATE KEY FILE! Permissions {:04o} for '{}' are too open: other \
         users of this machine may read or replace this signing key. Restrict it with: chmod 600 {}",
        mode & 0o7777,
        path.display(),
        path.display()
    ))
}

#[cfg(not(unix))]
fn permission_warning(_path: &Path, _mode: u32) -> Option<String> {
    None
}

fn write_new_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), KeyError> {
    let mut options = OpenOptions::new();
    // create_new: O_EXCL, so an existing file (or a symlink planted meanwhile) is never followed
    // or overwritten.
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(match secret {
        true => SECRET_KEY_FILE_MODE,
        false => PUBLIC_KEY_FILE_MODE,
    });
    let mut file = options.open(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::AlreadyExists => KeyError::AlreadyExists {
            path: path.to_path_buf(),
        },
        _ => io_error(path, error),
    })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|error| io_error(path, error))?;
    #[cfg(unix)]
    if secret {
        let mode = file
            .metadata()
            .map_err(|error| io_error(path, error))?
            .permissions()
            .mode();
        assert_eq!(
            mode & GROUP_OTHER_MODE_BITS,
            0,
            "new private key file is owner-only"
        );
    }
    Ok(())
}
