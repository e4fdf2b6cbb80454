//! `witness serve|vkey|cosign` (a c2sp.org/tlog-witness) and `vkey` (a signer's note key).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::display::{esay, say};
use super::keys::load_secret;
use super::{
    CliError, CliResult, EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_IO, EXIT_OK, EXIT_REFUSED,
};
use crate::crypto::keyfile::read_public_key;
use crate::tlog::note::{VerifierKey, VerifierKind};
use crate::tlog::witness::{Response, Witness, ADD_CHECKPOINT_LEN_MAX_BYTES};
use crate::witness_service::{StateDir, WitnessService};

#[derive(Debug, Args)]
pub struct WitnessArgs {
    #[command(subcommand)]
    command: WitnessCommand,
}

#[derive(Debug, Subcommand)]
enum WitnessCommand {
    /// Serve POST /add-checkpoint: cosign checkpoints consistent with what this witness saw.
    #[command(
        after_help = "Example:\n  rollbook witness serve --key witness.key --name witness.example/w1 \\\n      --state /var/lib/rollbook-witness --listen 127.0.0.1:7380 \\\n      --log rollbook.0190...+1a2b3c4d+AUd...\n\nPrints `listening on http://ADDR` once bound (port 0 picks a free port). A log is known by its --log vkeys (`rollbook vkey SIGNER.pub --name rollbook.LEDGER_ID`); the key name is the checkpoint origin. The state directory keeps, per origin, the last checkpoint cosigned; one witness process per directory."
    )]
    Serve(ServeArgs),
    /// Print this witness's cosigner verifier key (type 0x04), for reviewers' policy files.
    #[command(
        after_help = "Example:\n  rollbook witness vkey --key witness.key --name witness.example/w1\n  # in a policy: witness W1 <that vkey>"
    )]
    Vkey(IdentityArgs),
    /// Answer one add-checkpoint request offline, as the server would, and keep the state.
    #[command(
        after_help = "Example:\n  rollbook witness cosign --key witness.key --name witness.example/w1 \\\n      --state ./witness-state --log rollbook.0190...+1a2b3c4d+AUd... request.txt\n\nPrints the answer's body (cosignature lines on success). Exit 0 cosigned; 2 a malformed request (400); 3 refused: unknown origin (404), no valid signature by a known log key (403), or another old size than the one this witness holds (409, the size printed); 1 inconsistent with what it cosigned before (422: a bad proof or a fork); 4 state directory or IO failure."
    )]
    Cosign(CosignArgs),
}

#[derive(Debug, Args)]
pub struct IdentityArgs {
    /// The witness's private key (PKCS#8 PEM or OpenSSH). Never a key that signs for a ledger.
    #[arg(long)]
    key: PathBuf,
    /// The witness's key name, e.g. witness.example/w1 (no spaces, no '+').
    #[arg(long)]
    name: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    identity: IdentityArgs,
    /// Directory of the witness's state (created, mode 0700).
    #[arg(long)]
    state: PathBuf,
    /// Address to listen on, e.g. 127.0.0.1:7380 (port 0: any free port).
    #[arg(long)]
    listen: String,
    /// A known log's signer vkey (type 0x01) named after its origin; repeat for each key.
    #[arg(long = "log", required = true)]
    logs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CosignArgs {
    #[command(flatten)]
    identity: IdentityArgs,
    /// Directory of the witness's state (created, mode 0700).
    #[arg(long)]
    state: PathBuf,
    /// A known log's signer vkey (type 0x01) named after its origin; repeat for each key.
    #[arg(long = "log", required = true)]
    logs: Vec<String>,
    /// The add-checkpoint request body: `old N`, proof lines, an empty line, the signed checkpoint.
    request: PathBuf,
}

#[derive(Debug, Args)]
pub struct VkeyArgs {
    /// A signer's public key file (OpenSSH line or PEM SubjectPublicKeyInfo).
    public_key: PathBuf,
    /// The key name: for a ledger's signer, the ledger's origin `rollbook.<ledger id>`.
    #[arg(long)]
    name: String,
}

pub async fn run(args: &WitnessArgs) -> CliResult {
    match &args.command {
        WitnessCommand::Serve(args) => serve(args).await,
        WitnessCommand::Vkey(args) => witness_vkey(args),
        WitnessCommand::Cosign(args) => cosign(args).await,
    }
}

/// `rollbook vkey PUBLIC_KEY_FILE --name NAME`: a signed-note verifier key of type 0x01.
pub fn vkey(args: &VkeyArgs) -> CliResult {
    let key = read_public_key(&args.public_key)
        .map_err(|error| CliError::bad_input(error.to_string()))?;
    let vkey = VerifierKey::new(&args.name, VerifierKind::Ed25519, key)
        .map_err(|error| CliError::bad_input(format!("--name: {error}")))?;
    say!("{vkey}");
    Ok(EXIT_OK)
}

fn witness_vkey(args: &IdentityArgs) -> CliResult {
    let key = load_secret(&args.key)?;
    let vkey = VerifierKey::new(&args.name, VerifierKind::CosignatureV1, key.public())
        .map_err(|error| CliError::bad_input(format!("--name: {error}")))?;
    say!("{vkey}");
    Ok(EXIT_OK)
}

/// The witness of `--key`, `--name` and `--log`s, and its locked state directory.
fn open_service(
    identity: &IdentityArgs,
    logs: &[String],
    state: &Path,
) -> Result<WitnessService, CliError> {
    let key = load_secret(&identity.key)?;
    let mut keys = Vec::with_capacity(logs.len());
    for text in logs {
        let vkey = VerifierKey::parse(text)
            .map_err(|error| CliError::bad_input(format!("--log {text}: {error}")))?;
        keys.push(vkey);
    }
    let witness = Witness::new(&identity.name, key, keys)
        .map_err(|error| CliError::bad_input(error.to_string()))?;
    let state = StateDir::open(state).map_err(|error| CliError::new(EXIT_IO, error.to_string()))?;
    Ok(WitnessService::new(witness, state))
}

async fn serve(args: &ServeArgs) -> CliResult {
    let service = open_service(&args.identity, &args.logs, &args.state)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|error| {
            CliError::new(
                EXIT_IO,
                format!("cannot listen on {}: {error}", args.listen),
            )
        })?;
    let address = listener.local_addr().map_err(|error| {
        CliError::new(EXIT_IO, format!("cannot read the bound address: {error}"))
    })?;
    say!("listening on http://{address}");
    // Whoever started the server (a test, a supervisor) reads the line before the first request.
    let _ = std::io::stdout().flush();
    crate::tlog_http::serve(listener, Arc::new(service))
        .await
        .map_err(|error| CliError::new(EXIT_IO, format!("the witness server stopped: {error}")))?;
    Ok(EXIT_OK)
}

async fn cosign(args: &CosignArgs) -> CliResult {
    let service = open_service(&args.identity, &args.logs, &args.state)?;
    let body = read_request(&args.request)?;
    let now_s = crate::tlog_http::now_s();
    let response = tokio::task::spawn_blocking(move || service.add_checkpoint(&body, now_s))
        .await
        .map_err(|error| CliError::new(EXIT_IO, format!("the cosigning task failed: {error}")))?;
    report(&args.request, &response)
}

fn read_request(path: &Path) -> Result<Vec<u8>, CliError> {
    let cannot = |error: std::io::Error| {
        CliError::bad_input(format!("cannot read {}: {error}", path.display()))
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut body = Vec::new();
    file.take(ADD_CHECKPOINT_LEN_MAX_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .map_err(cannot)?;
    Ok(body)
}

/// Prints the answer's body; a refusal also names its status on stderr with its exit code.
fn report(request: &Path, response: &Response) -> CliResult {
    if response.status == 200 {
        // Cosignature lines, byte-exact: their only free text is this witness's checked --name.
        print!("{}", response.body);
        return Ok(EXIT_OK);
    }
    let code = match response.status {
        400 => EXIT_BAD_INPUT,
        403 | 404 | 409 => EXIT_REFUSED,
        422 => EXIT_CHECK_FAILED,
        _ => EXIT_IO,
    };
    say!("{}", response.body.trim_end());
    esay!(
        "error: {}: the witness answers {}: {}",
        request.display(),
        response.status_line(),
        response.body.trim_end()
    );
    Ok(code)
}
