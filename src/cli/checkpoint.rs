//! `checkpoint`: sign the verified head as a C2SP tlog checkpoint, have witnesses cosign it,
//! or print a stored signed note byte-exact.

use std::path::PathBuf;

use chrono::Utc;
use clap::Args;

use super::display::say;
use super::keys::load_signer;
use super::proposals::{close, open};
use super::{CliError, CliResult, EXIT_CHECK_FAILED, EXIT_IO, EXIT_OK, EXIT_REFUSED};
use crate::checkpoint::{
    assembled_note, sign_head, submit_to_witness, verified_tree, CheckpointError, Signed,
    WitnessOutcome, WitnessTarget,
};
use crate::crypto::to_hex;
use crate::store::StoredCheckpoint;
use crate::tlog::{VerifierKey, VerifierKind};

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// Sign the current head with this signer's key (a signer of the set in force): a private
    /// key file (passphrase-protected or not), or a public key file to sign with the matching
    /// key in the ssh-agent at SSH_AUTH_SOCK.
    #[arg(long, required_unless_present = "note", conflicts_with = "note")]
    pub key: Option<PathBuf>,
    /// Read the key's passphrase from the first line of FILE instead of asking on the terminal.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub passphrase_file: Option<PathBuf>,
    /// A witness's submission prefix (POST URL/add-checkpoint); repeat for each witness, each
    /// with its --witness-vkey in the same order.
    #[arg(long = "witness", value_name = "URL", requires = "key")]
    pub witnesses: Vec<String>,
    /// The cosigner vkey (type 0x04, `rollbook witness vkey`) of the --witness at the same
    /// position; only cosignatures that verify under it are stored.
    #[arg(long = "witness-vkey", value_name = "VKEY", requires = "witnesses")]
    pub witness_vkeys: Vec<String>,
    /// Print the latest signed note (or the one of --size) with every signature, byte-exact.
    #[arg(long)]
    pub note: bool,
    /// With --note: the checkpoint of this tree size.
    #[arg(long, requires = "note", value_name = "N")]
    pub size: Option<u64>,
    /// Print one JSON object instead of text.
    #[arg(long, conflicts_with = "note")]
    pub json: bool,
}

impl From<CheckpointError> for CliError {
    fn from(error: CheckpointError) -> Self {
        match error {
            CheckpointError::NotASigner { .. } | CheckpointError::KeyNotValid { .. } => {
                CliError::refused(error.to_string())
            }
            CheckpointError::Inconsistent { .. } | CheckpointError::AlteredRow(_) => {
                CliError::new(EXIT_CHECK_FAILED, error.to_string())
            }
            CheckpointError::NoCheckpoint(_) | CheckpointError::Signing(_) => {
                CliError::bad_input(error.to_string())
            }
            CheckpointError::Pin(pin) => pin.into(),
            CheckpointError::Store(store) => store.into(),
        }
    }
}

pub async fn run(db: &str, args: &CheckpointArgs) -> CliResult {
    match &args.key {
        Some(key) => sign(db, key, args).await,
        None => print_note(db, args.size).await,
    }
}

/// `--note [--size N]`: the stored note with every signature line, after checking that it is of
/// the verified history (a note the history contradicts is never shown as the ledger's).
async fn print_note(db: &str, size: Option<u64>) -> CliResult {
    let (ledger, verified) = open(db).await?;
    let outcome = async {
        let (tree, stored) = verified_tree(&ledger.store, &verified).await?;
        let found = match size {
            Some(size) => stored.into_iter().find(|c| c.tree_size == size),
            None => stored.into_iter().last(),
        };
        Ok::<_, CheckpointError>((tree.size, found))
    }
    .await;
    close(&ledger, &verified).await;
    let (head, found) = outcome?;
    let checkpoint = found.ok_or_else(|| match size {
        Some(size) => CliError::bad_input(format!(
            "no signed checkpoint of size {size} in ledger {} (verified head: seq {head}); `rollbook checkpoint --note` prints the latest",
            ledger.ledger_id
        )),
        None => CliError::bad_input(format!(
            "ledger {} holds no signed checkpoint yet: sign one with `rollbook checkpoint --key KEY`",
            ledger.ledger_id
        )),
    })?;
    // Assembled from verified lines and parsed: a signed note holds no control characters, so
    // the bytes are safe on a terminal and exact for a signed-note verifier.
    let text = assembled_note(&checkpoint)
        .map_err(|error| CliError::new(EXIT_CHECK_FAILED, error))?
        .to_text();
    // Byte-exact into a file or a pipe; on a terminal through `shown`, which changes nothing
    // but a character a witness's key name could smuggle in (a bidi override, say).
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        for line in text.lines() {
            say!("{line}");
        }
    } else {
        print!("{text}");
    }
    Ok(EXIT_OK)
}

async fn sign(db: &str, key: &std::path::Path, args: &CheckpointArgs) -> CliResult {
    let key = load_signer(key, args.passphrase_file.as_deref())?;
    let witnesses = witness_targets(&args.witnesses, &args.witness_vkeys)?;
    let (ledger, verified) = open(db).await?;
    let outcome = sign_and_witness(&ledger.store, &verified, &key, &witnesses).await;
    close(&ledger, &verified).await;
    let (signed, checkpoint, witnesses) = outcome?;
    report(&signed, &checkpoint, &witnesses, args.json);
    Ok(exit_code(&witnesses))
}

/// What `checkpoint --key KEY --witness URL --witness-vkey VKEY...` does once the ledger is verified: signs the
/// pinned head, sends it to each witness in turn; the checkpoint as stored after, and what
/// each witness did.
pub(crate) async fn sign_and_witness(
    store: &crate::store::Store,
    verified: &crate::pin::Verified,
    key: &impl crate::crypto::Sign,
    targets: &[WitnessTarget],
) -> Result<(Signed, StoredCheckpoint, Vec<(String, WitnessOutcome)>), CheckpointError> {
    let (tree, _) = verified_tree(store, verified).await?;
    let now = store.clock(Utc::now()).await?;
    let signed = sign_head(store, verified, &tree, key, now).await?;
    let mut witnesses = Vec::new();
    for target in targets {
        let post = |body: String| post_add_checkpoint(&target.url, body);
        let now = store.clock(Utc::now()).await?;
        let outcome = submit_to_witness(store, &tree, target, post, now).await?;
        witnesses.push((target.url.clone(), outcome));
    }
    let checkpoint = store
        .checkpoint(tree.ledger_id, Some(tree.size))
        .await?
        .unwrap_or_else(|| signed.checkpoint.clone());
    Ok((signed, checkpoint, witnesses))
}

/// `POST {url}/add-checkpoint` through `tlog_http`'s blocking client, off the async thread;
/// `Err` (the witness is down) when no answer came back in `WITNESS_TIMEOUT`.
pub(crate) async fn post_add_checkpoint(
    url: &str,
    body: String,
) -> Result<crate::tlog_http::WitnessReply, String> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        crate::tlog_http::submit_add_checkpoint(&url, &body, crate::tlog_http::WITNESS_TIMEOUT)
    })
    .await
    .map_err(|error| error.to_string())?
    .map_err(|error| error.reason)
}

/// Each --witness URL with the --witness-vkey at its position (a cosigner vkey, type 0x04):
/// refused as bad input, before anything is signed, when the counts differ or one is malformed.
pub(crate) fn witness_targets(
    urls: &[String],
    vkeys: &[String],
) -> Result<Vec<WitnessTarget>, CliError> {
    if urls.len() != vkeys.len() {
        return Err(CliError::bad_input(format!(
            "{} --witness URL(s) but {} --witness-vkey VKEY(s): give each witness its cosigner vkey (`rollbook witness vkey`), in the same order",
            urls.len(),
            vkeys.len()
        )));
    }
    urls.iter()
        .zip(vkeys)
        .map(|(url, vkey)| {
            check_witness_url(url)?;
            let bad = |why: String| {
                CliError::bad_input(format!(
                    "--witness-vkey {:?}: {why}",
                    super::display::shown(vkey)
                ))
            };
            let vkey = VerifierKey::parse(vkey).map_err(|error| bad(error.to_string()))?;
            if vkey.kind() != VerifierKind::CosignatureV1 {
                return Err(bad(
                    "not a cosigner vkey (type 0x04, `rollbook witness vkey`)".into(),
                ));
            }
            Ok(WitnessTarget {
                url: url.clone(),
                vkey,
            })
        })
        .collect()
}

/// A witness URL is an http(s) prefix: refused before anything is signed.
fn check_witness_url(url: &str) -> Result<(), CliError> {
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !scheme_ok || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(CliError::bad_input(format!(
            "--witness {:?}: not an http:// or https:// submission prefix",
            super::display::shown(url)
        )));
    }
    Ok(())
}

/// 0 when every witness cosigned; 3 when one refused; else 4 when one was down. The checkpoint
/// and every cosignature received are stored whatever the code.
fn exit_code(witnesses: &[(String, WitnessOutcome)]) -> i32 {
    let refused = witnesses
        .iter()
        .any(|(_, outcome)| matches!(outcome, WitnessOutcome::Refused { .. }));
    let down = witnesses
        .iter()
        .any(|(_, outcome)| matches!(outcome, WitnessOutcome::Down(_)));
    match (refused, down) {
        (true, _) => EXIT_REFUSED,
        (false, true) => EXIT_IO,
        (false, false) => EXIT_OK,
    }
}

fn outcome_json(url: &str, outcome: &WitnessOutcome) -> serde_json::Value {
    match outcome {
        WitnessOutcome::Cosigned { lines, stored } => serde_json::json!({
            "url": url, "outcome": "cosigned", "signature_lines": lines, "stored": stored
        }),
        WitnessOutcome::Down(reason) => {
            serde_json::json!({"url": url, "outcome": "down", "detail": reason})
        }
        WitnessOutcome::Refused { status, detail } => serde_json::json!({
            "url": url, "outcome": "refused", "status": status, "detail": detail
        }),
    }
}

fn report(
    signed: &Signed,
    checkpoint: &StoredCheckpoint,
    witnesses: &[(String, WitnessOutcome)],
    json: bool,
) {
    let origin = checkpoint
        .note
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    if json {
        let witnesses: Vec<serde_json::Value> = witnesses
            .iter()
            .map(|(url, outcome)| outcome_json(url, outcome))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "origin": origin,
                "tree_size": checkpoint.tree_size,
                "root": to_hex(&checkpoint.root),
                "signer": signed.signer,
                "signature_added": signed.added,
                "note": assembled_note(checkpoint).map(|note| note.to_text()).unwrap_or_default(),
                "witnesses": witnesses,
            })
        );
        return;
    }
    say!(
        "checkpoint of {origin}: tree size {}, root {}",
        checkpoint.tree_size,
        to_hex(&checkpoint.root)
    );
    if signed.added {
        say!("  signed by     {} (signer in force)", signed.signer);
    } else {
        say!("  signed by     {} already: nothing added", signed.signer);
    }
    for (url, outcome) in witnesses {
        match outcome {
            WitnessOutcome::Cosigned { lines, stored } => {
                say!("  witness       {url}: cosigned ({lines} signature line(s), {stored} new)")
            }
            WitnessOutcome::Down(reason) => {
                say!("  witness       {url}: DOWN ({reason}); nothing lost, run again later")
            }
            WitnessOutcome::Refused { status, detail } => {
                say!("  witness       {url}: REFUSED with status {status}: {detail}")
            }
        }
    }
    if witnesses.is_empty() {
        println!("  witnesses     none asked (--witness URL --witness-vkey VKEY): a reviewer's --witnesses policy needs their cosignatures");
    }
}
