//! `rollbook keys check KEY`: what a key file (or the agent key a public key file names) is,
//! its key id, and whether the ledger's signer set in force knows it. Nothing is signed.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::display::say;
use super::keys::{decrypt, open_agent_key, read_key_described};
use super::{CliError, CliResult, EXIT_CHECK_FAILED, EXIT_OK};
use crate::crypto::keyfile::KeyFile;
use crate::crypto::keys::PublicKey;
use crate::domain::envelope::format_timestamp;
use crate::domain::events::LEDGER_STREAM;
use crate::domain::governance::Governance;

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// What a key is, its key id, and whether the signer set in force knows it (signs nothing).
    #[command(
        after_help = "Examples:\n  rollbook keys check ~/.rollbook/alice.key --passphrase-file pass.txt\n  rollbook keys check ~/.ssh/rollbook.pub --json   # a key held by the ssh-agent\n\nExit 0 when the ledger's signer set in force holds the key (or there is no ledger to ask), 1 when it does not, 2 for a key that cannot be read."
    )]
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A private key file (PKCS#8 or OpenSSH, passphrase-protected or not) or a public key file
    /// (OpenSSH line or PEM), whose private half the ssh-agent at SSH_AUTH_SOCK may hold.
    pub key: PathBuf,
    /// Read an encrypted key's passphrase from the first line of FILE instead of asking.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Print JSON for machines instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What was learnt about the key, before the ledger is asked.
struct KeyReport {
    format: &'static str,
    kind: &'static str,
    public: PublicKey,
    /// For a public key file: whether the ssh-agent holds its private half, or why not.
    agent: Option<Result<String, String>>,
}

pub async fn run(db: &str, args: &KeysArgs) -> CliResult {
    match &args.command {
        KeysCommand::Check(check) => keys_check(db, check).await,
    }
}

async fn keys_check(db: &str, args: &CheckArgs) -> CliResult {
    let report = inspect(args)?;
    let governance = governance_in_force(db).await;
    let signer = governance
        .as_ref()
        .ok()
        .and_then(|g| g.set.by_key(&report.public.as_bytes()).cloned());
    let known = signer.is_some();
    // This machine's clock: a reading for people, not a decision.
    let now = chrono::Utc::now();
    let key_id = report.public.key_id().to_string();
    if args.json {
        let agent = report.agent.as_ref().map(|held| match held {
            Ok(socket) => serde_json::json!({"holds_key": true, "socket": socket}),
            Err(reason) => serde_json::json!({"holds_key": false, "error": reason}),
        });
        let ledger = match &governance {
            Ok(governance) => serde_json::json!({
                "ledger_id": governance.ledger_id.to_string(),
                "signer_set_version": governance.set.version,
                "signer": signer.as_ref().map(|s| serde_json::json!({
                    "name": s.name,
                    "role": s.role,
                    "valid_after": s.valid_after.map(format_timestamp),
                    "valid_before": s.valid_before.map(format_timestamp),
                    "valid_now": s.valid_at(now),
                })),
            }),
            Err(reason) => serde_json::json!({"error": reason}),
        };
        println!(
            "{}",
            serde_json::json!({
                "key_id": key_id,
                "format": report.format,
                "kind": report.kind,
                "agent": agent,
                "ledger": ledger,
                "known": known,
            })
        );
    } else {
        say!("{key_id}");
        say!("  {} ({})", report.kind, report.format);
        match &report.agent {
            Some(Ok(socket)) => say!("  held by the ssh-agent at {socket}"),
            Some(Err(reason)) => say!("  not usable through the ssh-agent: {reason}"),
            None => {}
        }
        match (&governance, &signer) {
            (Ok(g), Some(s)) => {
                say!(
                    "  signer {} ({}) of signer set v{} in force on ledger {}",
                    s.name,
                    s.role.as_deref().unwrap_or("no role"),
                    g.set.version,
                    g.ledger_id
                );
                let now_text = match s.valid_at(now) {
                    true => "valid now",
                    false => "NOT VALID NOW: its signatures count for nothing",
                };
                say!("  key valid {} ({now_text})", s.lifetime_text());
            }
            (Ok(g), None) => say!(
                "  NOT a signer of signer set v{} in force on ledger {} ({})",
                g.set.version,
                g.ledger_id,
                g.set.names().join(", ")
            ),
            (Err(reason), _) => say!("  not checked against a ledger: {reason}"),
        }
    }
    Ok(match (&governance, known) {
        (Ok(_), false) => EXIT_CHECK_FAILED,
        _ => EXIT_OK,
    })
}

/// Reads the key and, for a public key file, asks the agent whether it holds it.
fn inspect(args: &CheckArgs) -> Result<KeyReport, CliError> {
    let read = read_key_described(&args.key)?;
    let (kind, public, agent) = match read.key {
        KeyFile::Public(public) => {
            let held = open_agent_key(public)
                .map(|agent| agent.socket().display().to_string())
                .map_err(|error| error.to_string());
            ("public key", public, Some(held))
        }
        KeyFile::Secret(secret) => ("private key, unencrypted", secret.public(), None),
        KeyFile::Encrypted(encrypted) => (
            "private key, passphrase-protected",
            decrypt(&encrypted, args.passphrase_file.as_deref())?.public(),
            None,
        ),
    };
    Ok(KeyReport {
        format: read.format,
        kind,
        public,
        agent,
    })
}

/// The governance in force on the ledger of `db`, verified from the pin; why not, as text.
async fn governance_in_force(db: &str) -> Result<Governance, String> {
    let (ledger, verified) = super::proposals::open(db)
        .await
        .map_err(|error| error.message)?;
    let governance = async {
        verified.stream(&ledger.store, LEDGER_STREAM).await?;
        ledger
            .governance()
            .await
            .map_err(super::proposals::service_error)
    }
    .await;
    super::proposals::close(&ledger, &verified).await;
    governance.map_err(|error: CliError| error.message)
}
