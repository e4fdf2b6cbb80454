//! `keygen`, and loading keys and signer sets for the other commands.
//!
//! Every `--key` is read by `KeyArgs::signer` (or `KeyArgs::public_key`, for a command that
//! only needs to know who you are): a private key file, a passphrase-protected one (the
//! passphrase from the terminal or `--passphrase-file`), or a public key whose private half an
//! ssh-agent holds. A command that adds `#[command(flatten)] key: KeyArgs` gets all three.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use std::os::unix::fs::DirBuilderExt;

use clap::Args;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{CliError, CliResult, EXIT_OK};
use crate::crypto::agent::AgentKey;
use crate::crypto::keyfile::{
    public_key_path, read_key_file, read_public_key, write_keypair, EncryptedKey, KeyFile,
    KeyFileRead,
};
use crate::crypto::keys::{KeyError, PublicKey, SecretKey};
use crate::crypto::Signer;
use crate::domain::events::{SignerEntry, SignerSet};
use crate::domain::governance::{ActiveSet, SIGNERS_MAX};

/// Limit on a signers file: 32 signers fit in a few KiB.
const SIGNERS_FILE_BYTES_MAX: usize = 64 * 1024;

/// Largest passphrase file read: a passphrase is a line, not a document.
const PASSPHRASE_FILE_BYTES_MAX: usize = 4096;

/// The signing key of a command: `--key` and where its passphrase comes from.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Your key: a private key file (PKCS#8 or OpenSSH, passphrase-protected or not), or a
    /// public key file (OpenSSH line or PEM) to sign with the matching key in the ssh-agent at
    /// SSH_AUTH_SOCK.
    #[arg(long)]
    pub key: PathBuf,
    /// Read the key's passphrase from the first line of FILE instead of asking on the terminal
    /// (for scripts; keep the file mode 0600).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

impl KeyArgs {
    /// The one way a `--key` becomes a signer (see the module's comment).
    pub fn signer(&self) -> Result<Signer, CliError> {
        load_signer(&self.key, self.passphrase_file.as_deref())
    }

    /// Whose key this is, without signing: a public key file is taken as it is (no agent is
    /// asked), a private key is read (and decrypted) as for signing.
    pub fn public_key(&self) -> Result<PublicKey, CliError> {
        match read_key(&self.key)? {
            KeyFile::Public(public) => Ok(public),
            KeyFile::Secret(secret) => Ok(secret.public()),
            KeyFile::Encrypted(encrypted) => {
                Ok(decrypt(&encrypted, self.passphrase_file.as_deref())?.public())
            }
        }
    }
}

/// A private key a process signs with on its own (a witness): a key file, decrypted when it is
/// passphrase-protected (asked on the terminal). An ssh-agent key is refused: a witness
/// answers requests unattended, and an agent's confirmation would stall it.
pub fn load_secret(path: &Path) -> Result<SecretKey, CliError> {
    match read_key(path)? {
        KeyFile::Secret(secret) => Ok(secret),
        KeyFile::Encrypted(encrypted) => decrypt(&encrypted, None),
        KeyFile::Public(_) => Err(CliError::bad_input(format!(
            "{}: a public key; a witness signs with its private key file (no ssh-agent)",
            path.display()
        ))),
    }
}

/// Loads the signer a `--key` names: the key file decrypted (asking its passphrase), or the
/// ssh-agent's key matching a public key file (checked present in the agent now, so a missing
/// key is named before any work).
pub fn load_signer(path: &Path, passphrase_file: Option<&Path>) -> Result<Signer, CliError> {
    match read_key(path)? {
        KeyFile::Secret(secret) => Ok(Signer::File(secret)),
        KeyFile::Encrypted(encrypted) => Ok(Signer::File(decrypt(&encrypted, passphrase_file)?)),
        KeyFile::Public(public) => {
            let agent = open_agent_key(public).map_err(|error| key_error(path, error))?;
            Ok(Signer::Agent(agent))
        }
    }
}

/// The key `public` in the ssh-agent at SSH_AUTH_SOCK.
pub(super) fn open_agent_key(public: PublicKey) -> Result<AgentKey, KeyError> {
    let socket = std::env::var_os("SSH_AUTH_SOCK")
        .filter(|socket| !socket.is_empty())
        .ok_or(KeyError::NoAgent)?;
    AgentKey::open(Path::new(&socket), public)
}

/// A key error as the CLI shows it: bad input (exit 2), naming the `--key` file.
fn key_error(path: &Path, error: KeyError) -> CliError {
    let message = error.to_string();
    match message.starts_with(&path.display().to_string()) {
        true => CliError::bad_input(message),
        false => CliError::bad_input(format!("{}: {message}", path.display())),
    }
}

/// Reads a `--key` file, printing ssh's kind of warning when others can read a private key.
fn read_key(path: &Path) -> Result<KeyFile, CliError> {
    Ok(read_key_described(path)?.key)
}

pub(super) fn read_key_described(path: &Path) -> Result<KeyFileRead, CliError> {
    let read = read_key_file(path).map_err(|error| key_error(path, error))?;
    if let Some(warning) = &read.warning {
        eprintln!("{warning}");
    }
    Ok(read)
}

pub(super) fn decrypt(
    encrypted: &EncryptedKey,
    passphrase_file: Option<&Path>,
) -> Result<crate::crypto::SecretKey, CliError> {
    let passphrase = match passphrase_file {
        Some(file) => read_passphrase_file(file)?,
        None => ask_passphrase(&format!(
            "Enter passphrase for {}: ",
            super::display::shown(&encrypted.path().display().to_string())
        ))
        .map_err(|error| key_error(encrypted.path(), error))?,
    };
    encrypted
        .decrypt(passphrase.as_bytes())
        .map_err(|error| key_error(encrypted.path(), error))
}

/// The passphrase on the first line of `path` (its line ending not included). Never an
/// argument or an environment variable: those are visible to other users of the machine
/// (`ps`, `/proc/PID/environ`) and kept in shell histories.
fn read_passphrase_file(path: &Path) -> Result<Zeroizing<String>, CliError> {
    let bad = |reason: String| {
        CliError::bad_input(format!("passphrase file {}: {reason}", path.display()))
    };
    let file = std::fs::File::open(path).map_err(|error| bad(error.to_string()))?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(PASSPHRASE_FILE_BYTES_MAX + 1));
    file.take(PASSPHRASE_FILE_BYTES_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| bad(error.to_string()))?;
    if bytes.len() > PASSPHRASE_FILE_BYTES_MAX {
        return Err(bad(format!(
            "longer than {PASSPHRASE_FILE_BYTES_MAX} bytes; a passphrase file holds one line"
        )));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8 text".to_string()))?;
    let line = text.split(['\n', '\r']).next().unwrap_or("");
    if line.is_empty() {
        return Err(bad("the first line is empty".to_string()));
    }
    Ok(Zeroizing::new(line.to_string()))
}

/// Asks on the terminal (/dev/tty) without echo.
fn ask_passphrase(prompt: &str) -> Result<Zeroizing<String>, KeyError> {
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|error| KeyError::Passphrase {
            reason: format!("no terminal to ask on ({error}); give --passphrase-file FILE"),
        })
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the private key (PKCS#8 PEM, mode 0600, encrypted under a passphrase
    /// unless --no-passphrase); the public key goes to PATH.pub.
    #[arg(long)]
    pub out: PathBuf,
    /// Comment for the public key line (default: the file name).
    #[arg(long)]
    pub name: Option<String>,
    /// Take the new key's passphrase from the first line of FILE instead of asking twice on
    /// the terminal.
    #[arg(long, value_name = "FILE", conflicts_with = "no_passphrase")]
    pub passphrase_file: Option<PathBuf>,
    /// Write the private key unencrypted (for a key kept in an ssh-agent or a hardware store
    /// only; anyone who copies the file can sign).
    #[arg(long)]
    pub no_passphrase: bool,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The new key's passphrase: None with --no-passphrase, else from the file or asked twice.
fn new_passphrase(args: &KeygenArgs) -> Result<Option<Zeroizing<String>>, CliError> {
    if args.no_passphrase {
        return Ok(None);
    }
    if let Some(file) = &args.passphrase_file {
        return read_passphrase_file(file).map(Some);
    }
    let asked = |prompt: &str| {
        ask_passphrase(prompt).map_err(|error| {
            CliError::bad_input(format!(
                "{error}, or --no-passphrase for an unencrypted key"
            ))
        })
    };
    let first = asked("Enter a passphrase for the new key: ")?;
    if first.is_empty() {
        return Err(CliError::bad_input(
            "empty passphrase: choose one, or give --no-passphrase for an unencrypted key",
        ));
    }
    let second = asked("Enter the same passphrase again: ")?;
    if *first != *second {
        return Err(CliError::bad_input(
            "the two passphrases differ; nothing was written",
        ));
    }
    Ok(Some(first))
}

pub fn keygen(args: &KeygenArgs) -> CliResult {
    let comment = args.name.clone().unwrap_or_else(|| {
        args.out
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "rollbook".into())
    });
    if let Some(parent) = args
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && !p.exists())
    {
        // Like ~/.ssh: a new key directory is private to its owner.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|error| {
                CliError::bad_input(format!(
                    "cannot create the directory {}: {error}",
                    parent.display()
                ))
            })?;
    }
    let passphrase = new_passphrase(args)?;
    let key_id = write_keypair(
        &args.out,
        &comment,
        passphrase.as_ref().map(|passphrase| passphrase.as_bytes()),
    )
    .map_err(|error| CliError::bad_input(error.to_string()))?;
    let public = public_key_path(&args.out);
    if args.json {
        println!(
            "{}",
            serde_json::json!({"key_id": key_id.to_string(), "private_key": args.out.display().to_string(), "public_key": public.display().to_string(), "encrypted": passphrase.is_some()})
        );
    } else {
        println!("{key_id}");
        let protection = match passphrase {
            Some(_) => "passphrase-protected",
            None => "UNENCRYPTED",
        };
        eprintln!(
            "wrote {} (private, {protection}, mode 0600) and {}",
            args.out.display(),
            public.display()
        );
    }
    Ok(EXIT_OK)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignersFile {
    threshold: i64,
    signers: Vec<SignerFileEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignerFileEntry {
    name: String,
    role: Option<String>,
    public_key_file: PathBuf,
    /// The key's lifetime (RFC 3339, a TOML date-time or a string): it signs for nothing before
    /// `valid_after` nor from `valid_before` on.
    valid_after: Option<FileTime>,
    valid_before: Option<FileTime>,
}

/// A time in a signers file: a TOML offset date-time (`2027-01-01T00:00:00Z`) or an RFC 3339
/// string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileTime {
    Toml(toml::value::Datetime),
    Text(String),
}

impl FileTime {
    /// The canonical timestamp text the signer set stores.
    fn canonical(&self, signer: &str, field: &str) -> Result<String, String> {
        let text = match self {
            FileTime::Toml(datetime) => datetime.to_string(),
            FileTime::Text(text) => text.clone(),
        };
        chrono::DateTime::parse_from_rfc3339(&text)
            .map(|at| crate::domain::envelope::format_timestamp(at.with_timezone(&chrono::Utc)))
            .map_err(|error| {
                format!(
                    "signer {signer}: {field} {text:?} is not an RFC 3339 date-time with an offset ({error})"
                )
            })
    }
}

/// Reads a signers file (TOML: `threshold`, `[[signers]]` with `name`, optional `role`,
/// `public_key_file` relative to the file, optional `valid_after`/`valid_before`) into a
/// validated set of the given version.
pub fn load_signer_set(path: &Path, version: u64) -> Result<ActiveSet, CliError> {
    let text = super::evaluate::read_input_file(path, SIGNERS_FILE_BYTES_MAX)?;
    let bad = |message: String| CliError::bad_input(format!("{}: {message}", path.display()));
    let file: SignersFile = toml::from_str(&text).map_err(|error| bad(error.to_string()))?;
    if file.signers.len() > SIGNERS_MAX {
        return Err(bad(format!(
            "{} signers; the limit is {SIGNERS_MAX}",
            file.signers.len()
        )));
    }
    let threshold = u32::try_from(file.threshold).map_err(|_| {
        bad(format!(
            "threshold must be between 1 and the number of signers, got {}",
            file.threshold
        ))
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let mut entries = Vec::with_capacity(file.signers.len());
    for signer in &file.signers {
        let key_path = base.join(&signer.public_key_file);
        let key = read_public_key(&key_path)
            .map_err(|error| bad(format!("signer {}: {error}", signer.name)))?;
        let bound = |field: &str, time: &Option<FileTime>| {
            time.as_ref()
                .map(|time| time.canonical(&signer.name, field).map_err(bad))
                .transpose()
        };
        entries.push(SignerEntry {
            name: signer.name.clone(),
            role: signer.role.clone(),
            public_key: crate::crypto::to_hex(&key.as_bytes()),
            key_id: key.key_id().to_string(),
            valid_after: bound("valid_after", &signer.valid_after)?,
            valid_before: bound("valid_before", &signer.valid_before)?,
        });
    }
    ActiveSet::validate(&SignerSet {
        version,
        threshold,
        signers: entries,
    })
    .map_err(|refusal| bad(refusal.to_string()))
}
