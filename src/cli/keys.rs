//! `keygen`, and loading keys and signer sets for the other commands.

use std::path::{Path, PathBuf};

use std::os::unix::fs::DirBuilderExt;

use clap::Args;
use serde::Deserialize;

use super::{CliError, CliResult, EXIT_OK};
use crate::crypto::keyfile::{public_key_path, read_public_key, read_secret_key, write_keypair};
use crate::crypto::keys::SecretKey;
use crate::domain::events::{SignerEntry, SignerSet};
use crate::domain::governance::{ActiveSet, SIGNERS_MAX};

/// Limit on a signers file: 32 signers fit in a few KiB.
const SIGNERS_FILE_BYTES_MAX: usize = 64 * 1024;

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the private key (PKCS#8 PEM, mode 0600); the public key goes to PATH.pub.
    #[arg(long)]
    pub out: PathBuf,
    /// Comment for the public key line (default: the file name).
    #[arg(long)]
    pub name: Option<String>,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
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
    let key_id = write_keypair(&args.out, &comment)
        .map_err(|error| CliError::bad_input(error.to_string()))?;
    let public = public_key_path(&args.out);
    if args.json {
        println!(
            "{}",
            serde_json::json!({"key_id": key_id.to_string(), "private_key": args.out.display().to_string(), "public_key": public.display().to_string()})
        );
    } else {
        println!("{key_id}");
        eprintln!(
            "wrote {} (private, mode 0600) and {}",
            args.out.display(),
            public.display()
        );
    }
    Ok(EXIT_OK)
}

/// Loads a private key, printing ssh's kind of warning when others can read the file.
pub fn load_secret(path: &Path) -> Result<SecretKey, CliError> {
    let (key, warning) =
        read_secret_key(path).map_err(|error| CliError::bad_input(error.to_string()))?;
    if let Some(warning) = warning {
        eprintln!("{warning}");
    }
    Ok(key)
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
}

/// Reads a signers file (TOML: `threshold`, `[[signers]]` with `name`, optional `role`,
/// `public_key_file` relative to the file) into a validated set of the given version.
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
        entries.push(SignerEntry {
            name: signer.name.clone(),
            role: signer.role.clone(),
            public_key: crate::crypto::to_hex(&key.as_bytes()),
            key_id: key.key_id().to_string(),
        });
    }
    ActiveSet::validate(&SignerSet {
        version,
        threshold,
        signers: entries,
    })
    .map_err(|refusal| bad(refusal.to_string()))
}
