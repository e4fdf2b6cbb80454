//! The command line: the only module that prints. Each command group lives in its own file.
//!
//! Exit codes (stable, documented in README.md):
//! 0 success; 1 a check said no (verification failed, sizing verdict `fail`); 2 bad input or
//! usage; 3 refused by the ledger's rules (conflict, not a signer, expired, ...); 4 database or
//! IO failure.

mod audit;
mod checkpoint;
mod demo;
mod demo_witness;
pub(crate) mod display;
pub(crate) mod evaluate;
mod execute;
mod governance;
mod ids;
mod keys;
mod keys_check;
mod ledger;
mod list;
mod progress;
mod proposals;
mod report;
pub(crate) mod views;
mod watch;
mod witness;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use uuid::Uuid;

use crate::pin::PinError;
use crate::store::{Store, StoreError, DEFAULT_DB_URL};

pub const EXIT_OK: i32 = 0;
pub const EXIT_CHECK_FAILED: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;
pub const EXIT_REFUSED: i32 = 3;
pub const EXIT_IO: i32 = 4;

#[derive(Debug, Parser)]
#[command(
    name = "rollbook",
    version,
    about = "An auditable, multi-signature ledger for rolling hedge profits",
    long_about = "rollbook records every roll proposal in an append-only, hash-chained ledger, checks it against \
the guardrails of the methodology, commits it only with k of n ed25519 co-signatures, and exports an audit \
trail that a reviewer verifies offline.",
    after_help = "Examples:\n  rollbook demo                          # the whole story on a fresh SQLite ledger\n  rollbook --db postgres://root@127.0.0.1/test verify\n\nPins: every command that reads a ledger first verifies it from the last head this machine verified (its pin) to the current head, and refuses (exit 1) a ledger whose history no longer extends the pin, a new event that breaks a rule, or a database that disagrees with the verified events. Pins live in ROLLBOOK_STATE_DIR, else $XDG_STATE_HOME/rollbook, else ~/.local/state/rollbook (one file per ledger id).\n\nExit codes: 0 ok, 1 check failed, 2 bad input, 3 refused by the ledger's rules, 4 database or IO error."
)]
pub struct Cli {
    /// Database URL: sqlite://PATH (default, created on first use) or postgres://USER@HOST/DB.
    #[arg(long, global = true, env = "ROLLBOOK_DB", default_value = DEFAULT_DB_URL)]
    pub db: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the demo story on the database given by --db.
    #[command(after_help = "Example:\n  rollbook --db sqlite://$(mktemp -d)/demo.db demo")]
    Demo(demo::DemoArgs),
    /// Dry-run the sizing core on a proposal file: every guardrail, the largest size, the verdict.
    #[command(
        after_help = "Examples:\n  rollbook evaluate keys-example/proposal.toml --now 2026-05-07T14:40:00Z --json\n  rollbook evaluate keys-example/proposal.toml --now 2026-05-07T14:40:00Z --drawn-usd 5310 --drawn-contracts 18\n      # what is left after two proposals of 9 contracts on the same closed layer\n  rollbook --db sqlite://rollbook.db evaluate roll.toml --ledger\n      # as `propose` would judge it now: the ledger's policy in force and its draws on the layer\n\nExit 0 for a pass verdict, 1 for fail (the report is still printed), 2 for bad input (nothing on stdout)."
    )]
    Evaluate(evaluate::EvaluateArgs),
    /// Write the methodology's example proposal dated now, as a starting point.
    #[command(
        after_help = "Example:\n  rollbook template --out roll.toml --contracts 9\n  rollbook evaluate roll.toml"
    )]
    Template(evaluate::TemplateArgs),
    /// Generate an ed25519 key pair: PATH (PKCS#8 PEM, mode 0600, passphrase-protected) and PATH.pub.
    #[command(
        after_help = "Examples:\n  rollbook keygen --out ~/.rollbook/alice.key --name alice           # asks a passphrase twice\n  rollbook keygen --out alice.key --passphrase-file pass.txt         # for scripts\n  rollbook keygen --out alice.key --no-passphrase                    # unencrypted\n\nPrints the key id (SHA256:..., as `ssh-keygen -lf` shows it)."
    )]
    Keygen(keys::KeygenArgs),
    /// Keys: `keys check KEY` says what a key is and whether the signer set in force knows it.
    #[command(after_help = "Example:\n  rollbook keys check alice.key.pub")]
    Keys(keys_check::KeysArgs),
    /// Create the ledger: signer set, threshold, policy, signed by a signer.
    #[command(
        after_help = "Example:\n  rollbook init --signers keys-example/signers.toml --policy keys-example/policy.toml --key keys-example/alice.key\n\nIt prints the genesis hash and each signer's key id: the trust anchors to give every signer and reviewer (`rollbook verify --genesis HASH`)."
    )]
    Init(proposals::InitArgs),
    /// Evaluate and record a roll proposal, signed by its proposer.
    #[command(
        after_help = "Example:\n  rollbook template --out roll.toml\n  rollbook propose roll.toml --key keys-example/bob.key --json\n\nA failing proposal is recorded as failed (exit 1) and tells the largest size that would pass. It is evaluated, dated (created_at) and recorded on the ledger's clock (PostgreSQL: the database server's; SQLite: this machine's), and refused when this machine's clock differs from it by more than timing.clock_skew_max_seconds."
    )]
    Propose(proposals::ProposeArgs),
    /// Co-sign a pending proposal or motion; commits when K distinct signers have signed.
    #[command(
        after_help = "Examples:\n  rollbook sign 01a2... --key alice.key\n  rollbook sign 01a2... --key alice.key --offline --request req.json --out alice.sig.json\n\nBefore signing it shows what is signed: the summary, the subject digest and, for a motion, every change against what is in force (keys added, removed or rotated with their key ids, roles, threshold, each policy value old -> new).\n\nTimes are the ledger's clock (PostgreSQL: the database server's; SQLite: this machine's): refused before signing when this machine's clock differs from it by more than timing.clock_skew_max_seconds (default 60 s). `--offline` records this machine's time in the signature; `attach` refuses it if that time or the attach is past the expiry."
    )]
    Sign(proposals::SignArgs),
    /// Veto a pending proposal or motion (any signer); the reason is signed and recorded.
    #[command(
        after_help = "Example:\n  rollbook reject 01a2... --key carol.key --reason \"quotes are stale\""
    )]
    Reject(proposals::RejectArgs),
    /// Withdraw your own pending proposal.
    #[command(after_help = "Example:\n  rollbook withdraw 01a2... --key bob.key")]
    Withdraw(proposals::WithdrawArgs),
    /// The pending proposals your key may still sign, oldest first; a motion with what it changes.
    #[command(after_help = "Example:\n  rollbook inbox --key alice.key --json")]
    Inbox(proposals::InboxArgs),
    /// One proposal: content, what a motion changes, report, signatures, status, who is missing.
    #[command(after_help = "Example:\n  rollbook show 01a2... --json")]
    Show(proposals::ShowArgs),
    /// The proposals, newest first: id, kind, status, verdict, proposer, date, signatures, size, note.
    #[command(
        after_help = "Examples:\n  rollbook list --limit 20\n  rollbook list --status pending --since 2026-05-01\n  rollbook list --json\n\nThe id shown is the short id (the last 12 hex digits of the UUID); every command taking an id accepts it. The note is cut to the terminal's width (COLUMNS, else the terminal's; not cut in a pipe)."
    )]
    List(list::ListArgs),
    /// Record a committed roll's fills (or a correction), signed by a signer; checks them against the approved bounds.
    #[command(
        after_help = "Examples:\n  rollbook execute 01a2... --fills fills.toml --key alice.key\n  rollbook execute 01a2... --fills correction.toml --key alice.key --json\n\nfills.toml:\n  [[fills]]\n  contracts = 4\n  price_usd = 3.15\n  at = 2026-05-08T15:00:00Z\n  broker_ref = \"IB-7731\"\n\nA correction adds `corrects = [\"EVENT_ID\", ...]` (the event ids `show` lists): the fills of those executions no longer count, this file's do (it may hold no fills, to cancel them). Fills are final; a correction is a new event. A fill dated later than now plus the policy's timing.clock_skew_max_seconds is refused: fills are recorded after they happen.\n\nIn bounds: total contracts at most the approved size, every fill inside execute_after..execute_before, every price within structure.quote_deviation_max of the approved premium (policy of the roll's recording). The roll becomes `executed` when the approved size is filled, else stays `committed` (partially executed). Out of bounds the fills are recorded all the same as an execution breach, named by show, list, the CSV and verify; the status stays `execution_breach`.\n\nExit 0 recorded within bounds, 1 recorded as an execution breach, 2 bad input (nothing recorded), 3 refused (not a committed roll, not a signer, recording window closed)."
    )]
    Execute(execute::ExecuteArgs),
    /// Write a request file for signing a proposal on a machine without the database.
    #[command(
        after_help = "Example:\n  rollbook request 01a2... --out req.json\n\nFor a motion the file also carries what is in force and the lines of changes; `sign --offline` recomputes and shows them."
    )]
    Request(proposals::RequestArgs),
    /// Record a signature file made with `sign --offline` (same checks as `sign`).
    #[command(
        after_help = "Example:\n  rollbook attach alice.sig.json\n\nRefused when the signature was made (its recorded time) or is attached (the ledger's clock) after the proposal's expiry."
    )]
    Attach(proposals::AttachArgs),
    /// Governance motions: the next signer set or policy; and what is in force.
    #[command(
        after_help = "Example:\n  rollbook governance show\n\n`governance show` prints the genesis hash and each signer's key id: the ledger's trust anchors."
    )]
    Governance(governance::GovernanceArgs),
    /// Export the audit trail: JSONL (verifiable offline) or CSV (one row per proposal).
    #[command(
        after_help = "Examples:\n  rollbook export --out audit.jsonl\n  rollbook export --format csv --out proposals.csv"
    )]
    Export(audit::ExportArgs),
    /// Verify an export file offline, or the live ledger: chain, signatures, governance, sizing, Merkle root.
    #[command(
        after_help = "Examples:\n  rollbook verify audit.jsonl --genesis 3f2a...   # and that it is the ledger whose genesis hash you hold\n  rollbook verify --json            # the live ledger of --db\n\nWithout --genesis, verify proves internal consistency only: a ledger fabricated with the same id and the same names verifies too, with other key ids. It prints the genesis hash and the signers' key ids to compare with those you hold.\n\nExit 0 valid, 1 invalid (the first failing seq and why, or a genesis hash other than --genesis), 2 unreadable input or a malformed --genesis."
    )]
    Verify(audit::VerifyArgs),
    /// Write an RFC 9162 inclusion proof of a proposal's events.
    #[command(after_help = "Example:\n  rollbook prove 01a2... --out proof.json")]
    Prove(audit::ProveArgs),
    /// Check an inclusion proof with no other data (optionally against an export's checkpoint).
    #[command(
        name = "verify-proof",
        after_help = "Example:\n  rollbook verify-proof proof.json --checkpoint audit.jsonl"
    )]
    VerifyProof(audit::VerifyProofArgs),
    /// Prove that an older export is a prefix of a newer one (no history rewritten in between).
    #[command(
        after_help = "Example:\n  rollbook consistency audit-october.jsonl audit-november.jsonl"
    )]
    Consistency(audit::ConsistencyArgs),
    /// Sign the verified head as a C2SP tlog checkpoint (and have witnesses cosign it), or print a signed note.
    #[command(
        after_help = "Examples:\n  rollbook checkpoint --key alice.key --witness http://127.0.0.1:7380 --witness-vkey \"$(cat w1.vkey)\"\n  rollbook checkpoint --note > head.note          # the latest, byte-exact\n  rollbook checkpoint --note --size 42\n\nCheckpoint after every commit and at the end of each day: a reviewer's `verify --witnesses POLICY` accepts an export only when a checkpoint of exactly its size is signed by a signer in force and cosigned by the policy's quorum.\n\nThe key must be a signer of the set in force at the head (exit 3 otherwise). A head that a checkpoint stored before contradicts is never signed (exit 1). Each --witness URL is paired with the --witness-vkey at the same position (its cosigner vkey, `rollbook witness vkey`). Each witness gets a consistency proof from the size it last cosigned for this ledger (learned from its 409 when unknown); only its cosignature lines that verify under its vkey are stored beside the checkpoint (a 200 with a line claiming its key that does not verify is a refusal, nothing stored), and a note shows at most the newest verified cosignature per witness key. Exit 0 when every witness cosigned, 3 when one refused, 4 when one was down: the checkpoint and the cosignatures received are kept either way."
    )]
    Checkpoint(checkpoint::CheckpointArgs),
    /// A tlog-witness: cosign checkpoints of ledgers (serve over HTTP, or offline), print its vkey.
    #[command(
        after_help = "Examples:\n  rollbook witness vkey --key witness.key --name witness.example/w1\n  rollbook witness serve --key witness.key --name witness.example/w1 --state ./w1 --listen 127.0.0.1:7380 --log VKEY\n  rollbook witness cosign --key witness.key --name witness.example/w1 --state ./w1 --log VKEY request.txt"
    )]
    Witness(witness::WitnessArgs),
    /// Print a signer's signed-note verifier key (type 0x01) under a key name.
    #[command(
        after_help = "Example:\n  rollbook vkey keys-example/alice.pub --name rollbook.0190aaaa-0000-7000-8000-000000000001\n\nA ledger's signer signs checkpoints under the ledger's origin, rollbook.<ledger id>: give that as --name, and the vkey to witnesses (--log) and reviewers (policy `log` lines)."
    )]
    Vkey(witness::VkeyArgs),
    /// Write a self-contained HTML report of an export for a compliance reviewer (verifies it first).
    #[command(
        after_help = "Examples:\n  rollbook export --out audit.jsonl\n  rollbook report audit.jsonl --out report.html --genesis 3f2a...\n\nOne HTML file with no scripts and nothing fetched: the export's SHA-256, ledger id, genesis hash and checkpoint, the verification verdict (the checks of `verify FILE`), the parameters of the report, the signer sets and policies over time, every proposal with its guardrail figures, signers and times, the exceptions (failed attempts, vetoes, expiries, withdrawals, governance changes, execution breaches) and charts. An export that does not verify still gets a report, marked INVALID with the reason at the top of every page. Print it to PDF from a browser.\n\nExit 0 report written of a valid export, 1 report written of an invalid one, 2 bad input (unreadable file, --out exists without --force), 4 cannot write."
    )]
    Report(report::ReportArgs),
    /// Rebuild the projections (proposal statuses) from the events alone.
    #[command(after_help = "Example:\n  rollbook rebuild")]
    Rebuild(ledger::RebuildArgs),
    /// Follow the ledger for what concerns a signer: to sign, committed, vetoed, withdrawn, expiring soon.
    #[command(
        after_help = "Examples:\n  rollbook watch --key alice.key\n  rollbook watch --key alice.key.pub --json\n  rollbook watch --key alice.key --exec 'notify-send \"rollbook: $ROLLBOOK_WATCH_EVENT\"'\n  rollbook watch --key alice.key --exec 'jq -r .proposal.short_id >> ~/to-read'\n\nIt starts with what the key may sign now, then reports as events are appended: on PostgreSQL woken by a notification of each append (LISTEN/NOTIFY), on SQLite by reading every --poll-ms. A notification is only a hint: every event is read back through this machine's pin and verified before it is reported. When the database goes away (a restart), it connects again, waiting 0.25 s, then twice as long each time up to 30 s, and reads on from the last head it verified. It never signs: the key is read for its key id only (a .pub file is enough).\n\n--exec runs CMD with sh -c for each event, the event as one JSON line on its standard input and its name in ROLLBOOK_WATCH_EVENT; nothing from the ledger is put on the command line.\n\nExit 1 when the ledger fails verification (it stops), 2 bad input."
    )]
    Watch(watch::WatchArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    #[command(
        after_help = "Examples:\n  rollbook completions bash > ~/.local/share/bash-completion/completions/rollbook\n  rollbook completions zsh > ~/.zfunc/_rollbook      # with fpath+=(~/.zfunc) before compinit\n  rollbook completions fish > ~/.config/fish/completions/rollbook.fish"
    )]
    Completions(CompletionsArgs),
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Commands that never open a database: their `--help` and completions do not offer `--db`
/// (it is still accepted before any command, as `rollbook --db URL COMMAND`).
const COMMANDS_WITHOUT_DATABASE: &[&str] = &[
    "template",
    "keygen",
    "verify-proof",
    "consistency",
    "completions",
    "report",
    "vkey",
    "witness",
];

/// The command tree as parsed, shown by `--help` and completed by `completions`: one tree for
/// all three, so what is offered is what is accepted.
pub fn command() -> clap::Command {
    let mut command = Cli::command();
    // A subcommand holding an argument of the global's id does not receive the global: these
    // hold a hidden copy of --db, so it still parses there (and reaches `Cli::db`) unseen.
    let hidden_db = command
        .get_arguments()
        .find(|arg| arg.get_id() == "db")
        .expect("Cli has --db")
        .clone()
        .hide(true);
    for name in COMMANDS_WITHOUT_DATABASE {
        command = command.mut_subcommand(name, |sub| sub.arg(hidden_db.clone()));
    }
    command
}

/// Parses the process's arguments against `command()`; prints usage and exits on an error.
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

fn completions(args: &CompletionsArgs) -> CliResult {
    clap_complete::generate(
        args.shell,
        &mut command(),
        "rollbook",
        &mut std::io::stdout(),
    );
    Ok(EXIT_OK)
}

/// An error on its way to the terminal: what to print and which exit code it means.
#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub message: String,
}

impl CliError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
        }
    }
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(EXIT_BAD_INPUT, message)
    }
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(EXIT_REFUSED, message)
    }
}

impl From<StoreError> for CliError {
    fn from(error: StoreError) -> Self {
        let message = error.to_string();
        CliError::from_store_ref(&error, message)
    }
}

impl CliError {
    /// `message` with the exit code `error` means.
    fn from_store_ref(error: &StoreError, message: String) -> CliError {
        let code = match error {
            StoreError::Conflict { .. } | StoreError::LedgerExists(_) => EXIT_REFUSED,
            StoreError::UnsupportedUrl { .. }
            | StoreError::InvalidAppend(_)
            | StoreError::Missing { .. } => EXIT_BAD_INPUT,
            StoreError::CorruptRow { .. } | StoreError::HashMismatch { .. } => EXIT_CHECK_FAILED,
            _ => EXIT_IO,
        };
        CliError::new(code, message)
    }
}

/// A ledger refused by this client's pin (it diverged, failed verification, or the database
/// disagrees with the verified events) is a failed check; a state directory that cannot be used
/// is an IO failure.
impl From<PinError> for CliError {
    fn from(error: PinError) -> Self {
        let code = match &error {
            PinError::Store(store) => return CliError::from_store_ref(store, error.to_string()),
            PinError::Diverged { .. } | PinError::Invalid { .. } | PinError::Disagrees { .. } => {
                EXIT_CHECK_FAILED
            }
            PinError::ClockSkew { .. } => EXIT_REFUSED,
            PinError::NoStateDir
            | PinError::StateDir { .. }
            | PinError::State(_)
            | PinError::SavedState { .. } => EXIT_IO,
        };
        CliError::new(code, error.to_string())
    }
}

pub type CliResult = Result<i32, CliError>;

/// Refuses to overwrite an existing file unless `--force` said so (`-` is standard output):
/// checked before any work, so a typo in `--out` never replaces an export or a request.
pub(crate) fn may_write(path: &std::path::Path, force: bool) -> Result<(), CliError> {
    if force || path.as_os_str() == "-" || !path.exists() {
        return Ok(());
    }
    Err(CliError::bad_input(format!(
        "{} exists; give --force to replace it",
        path.display()
    )))
}

/// Runs a parsed command line and returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return EXIT_IO;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            // Messages quote names, reasons and file content: escaped like every view.
            eprintln!("error: {}", display::shown(&error.message));
            error.code
        }
    }
}

async fn run(cli: Cli) -> CliResult {
    match &cli.command {
        Command::Demo(args) => demo::run(&cli.db, args).await,
        Command::Evaluate(args) => evaluate::run(&cli.db, args).await,
        Command::Keygen(args) => keys::keygen(args),
        Command::Keys(args) => keys_check::run(&cli.db, args).await,
        Command::Template(args) => evaluate::template(args),
        Command::Init(args) => proposals::init(&cli.db, args).await,
        Command::Propose(args) => proposals::propose(&cli.db, args).await,
        Command::Sign(args) => proposals::sign(&cli.db, args).await,
        Command::Reject(args) => proposals::reject(&cli.db, args).await,
        Command::Withdraw(args) => proposals::withdraw(&cli.db, args).await,
        Command::Inbox(args) => proposals::inbox(&cli.db, args).await,
        Command::Show(args) => proposals::show(&cli.db, args).await,
        Command::List(args) => list::list(&cli.db, args).await,
        Command::Request(args) => proposals::request(&cli.db, args).await,
        Command::Execute(args) => execute::execute(&cli.db, args).await,
        Command::Attach(args) => proposals::attach(&cli.db, args).await,
        Command::Governance(args) => governance::run(&cli.db, args).await,
        Command::Export(args) => audit::export(&cli.db, args).await,
        Command::Verify(args) => audit::verify(&cli.db, args).await,
        Command::Prove(args) => audit::prove(&cli.db, args).await,
        Command::VerifyProof(args) => audit::verify_proof(args),
        Command::Consistency(args) => audit::consistency(args),
        Command::Report(args) => report::run(args),
        Command::Rebuild(args) => ledger::rebuild(&cli.db, args).await,
        Command::Checkpoint(args) => checkpoint::run(&cli.db, args).await,
        Command::Witness(args) => witness::run(args).await,
        Command::Vkey(args) => witness::vkey(args),
        Command::Watch(args) => watch::watch(&cli.db, args).await,
        Command::Completions(args) => completions(args),
    }
}

/// Opens the store, finds its one ledger and verifies it from this client's pin to its head
/// (`pin::sync`): every command that reads a ledger starts here, so none decides or shows
/// anything it has not verified.
pub(crate) async fn open_verified(
    db: &str,
) -> Result<(Store, Uuid, crate::pin::Verified), CliError> {
    let (store, ledger_id) = open_ledger(db).await?;
    let dir = crate::pin::state_dir()?;
    match crate::pin::sync(&store, ledger_id, &dir).await {
        Ok(verified) => Ok((store, ledger_id, verified)),
        Err(error) => {
            store.close().await;
            Err(error.into())
        }
    }
}

/// Opens the store and finds its one ledger.
pub(crate) async fn open_ledger(db: &str) -> Result<(Store, Uuid), CliError> {
    let store = Store::open_existing(db).await?;
    let ids = store.ledger_ids().await?;
    match ids.as_slice() {
        [] => Err(CliError::bad_input(format!(
            "no ledger in {}: create one with `rollbook init --signers FILE --key KEY`",
            crate::store::redact_url(db)
        ))),
        [only] => Ok((store, *only)),
        many => Err(CliError::new(
            EXIT_CHECK_FAILED,
            format!(
                "{} holds {} ledgers; rollbook expects exactly one per database",
                crate::store::redact_url(db),
                many.len()
            ),
        )),
    }
}
