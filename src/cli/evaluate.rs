//! `rollbook evaluate`: a dry run of the sizing core on a proposal file, with the default (or a
//! given) policy, or with `--ledger` as `propose` would judge it on the ledger now.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use clap::Args;

use super::{CliError, CliResult, EXIT_CHECK_FAILED, EXIT_OK};
use crate::service::Ledger;
use crate::sizing::{self, Draws, InputError, Policy, Proposal, Verdict};

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The roll proposal (TOML; fields as in docs/methodology.md).
    pub file: PathBuf,
    /// A policy file overriding any subset of the default policy.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Valuation clock as RFC 3339 (default: now; with --ledger, the ledger's clock).
    #[arg(long)]
    pub now: Option<String>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Outlay in USD that other proposals already drew on this closed layer: it counts against
    /// the layer's budget (a what-if here; on a ledger the ledger supplies it).
    #[arg(
        long,
        value_name = "USD",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    pub drawn_usd: f64,
    /// Contracts that other proposals already drew on this closed layer: they count against the
    /// growth cap.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true,
        value_parser = whole_contracts
    )]
    pub drawn_contracts: u64,
    /// Evaluate against the ledger at --db, as `propose` would now: its policy in force and what
    /// its history already draws on the file's closed layer (verified from this client's pin).
    #[arg(long, conflicts_with_all = ["policy", "drawn_usd", "drawn_contracts"])]
    pub ledger: bool,
}

/// `--drawn-contracts`: a whole number; its bound is the sizing core's (`Draws::validate`).
fn whole_contracts(text: &str) -> Result<u64, String> {
    text.parse::<u64>().map_err(|_| {
        if text.starts_with('-') {
            "must be a whole number of contracts >= 0".to_string()
        } else {
            format!(
                "must be a whole number of contracts, at most {}",
                sizing::DRAWN_CONTRACTS_MAX
            )
        }
    })
}

/// The draws of the command line, on the file's closed layer, checked by the sizing core's
/// rules; an error names the flag.
fn draws_given(args: &EvaluateArgs, proposal: &Proposal) -> Result<Draws, CliError> {
    let draws = Draws {
        closed_layer_id: proposal.closed_layer.id.clone(),
        outlay_usd: args.drawn_usd,
        contracts: args.drawn_contracts,
        proposal_ids: Vec::new(),
    };
    draws.validate().map_err(|InputError { field, rule }| {
        let flag = match field.as_str() {
            "drawn.outlay_usd" => "--drawn-usd",
            "drawn.contracts" => "--drawn-contracts",
            other => other,
        };
        CliError::bad_input(format!("{flag} {rule}"))
    })?;
    Ok(draws)
}

/// Reads a UTF-8 input file of at most `limit_bytes`, with errors that name the file.
pub(crate) fn read_input_file(path: &Path, limit_bytes: usize) -> Result<String, CliError> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|error| CliError::bad_input(format!("cannot read {}: {error}", path.display())))?;
    let mut bytes = Vec::new();
    // Read one byte past the limit so an oversized file is refused without reading it all.
    file.take(limit_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| CliError::bad_input(format!("cannot read {}: {error}", path.display())))?;
    if bytes.len() > limit_bytes {
        return Err(CliError::bad_input(format!(
            "{}: the file is larger than the limit of {limit_bytes} bytes",
            path.display()
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| CliError::bad_input(format!("{}: the file is not UTF-8 text", path.display())))
}

/// A proposal file's text as a proposal, its free text printable (refused at input only:
/// the ledger's rules still read what older versions recorded).
pub(crate) fn proposal_from_input(path: &Path, text: &str) -> Result<Proposal, CliError> {
    Proposal::from_toml_str(text)
        .and_then(|proposal| proposal.check_printable().map(|()| proposal))
        .map_err(|error| CliError::bad_input(format!("{}: {error}", path.display())))
}

pub(crate) fn load_policy(path: Option<&Path>) -> Result<Policy, CliError> {
    match path {
        None => Ok(Policy::default()),
        Some(path) => {
            let text = read_input_file(path, sizing::FILE_BYTES_MAX)?;
            Policy::from_toml_str(&text)
                .map_err(|error| CliError::bad_input(format!("{}: {error}", path.display())))
        }
    }
}

pub(crate) fn parse_now(now: Option<&str>) -> Result<DateTime<Utc>, CliError> {
    match now {
        None => Ok(Utc::now()),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|error| CliError::bad_input(format!("--now {text:?} is not an RFC 3339 time ({error}); example: 2026-05-07T14:40:00Z"))),
    }
}

pub async fn run(db: &str, args: &EvaluateArgs) -> CliResult {
    let text = read_input_file(&args.file, sizing::FILE_BYTES_MAX)?;
    let proposal = proposal_from_input(&args.file, &text)?;
    let mut now = parse_now(args.now.as_deref())?;
    let (policy, draws) = if args.ledger {
        let (policy, draws, context, ledger_now) =
            on_ledger(db, args, &proposal, &text, now).await?;
        now = ledger_now;
        // Said first, so the report is read as the ledger's (on stderr with --json, whose
        // stdout is the report alone).
        if args.json {
            eprintln!("{context}");
        } else {
            println!("{context}");
        }
        (policy, draws)
    } else {
        (
            load_policy(args.policy.as_deref())?,
            draws_given(args, &proposal)?,
        )
    };
    let report = sizing::evaluate(&proposal, &policy, &draws, now)
        .map_err(|error| CliError::bad_input(format!("{}: {error}", args.file.display())))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("reports serialize")
        );
    } else {
        print!("{}", sizing::render::human(&report));
    }
    Ok(if report.verdict == Verdict::Pass {
        EXIT_OK
    } else {
        EXIT_CHECK_FAILED
    })
}

/// The ledger's policy in force and what its history draws on the proposal's closed layer at
/// its head, as `propose` would see them now, a line saying so, and the time to evaluate at:
/// `--now` when given, else the ledger's clock (as `propose` evaluates).
async fn on_ledger(
    db: &str,
    args: &EvaluateArgs,
    proposal: &Proposal,
    text: &str,
    local_now: DateTime<Utc>,
) -> Result<(Policy, Draws, String, DateTime<Utc>), CliError> {
    let (store, ledger_id, mut verified) = super::open_verified(db).await?;
    let ledger = Ledger::new(store, ledger_id);
    let read = async {
        let governance = ledger
            .governance()
            .await
            .map_err(super::proposals::service_error)?;
        let (head, layers) = verified.layers(&ledger.store, proposal).await?;
        // Read by the sync just above.
        let now = if args.now.is_some() {
            local_now
        } else {
            verified.ledger_clock
        };
        let draws = layers
            .draws_for(proposal, text, &governance, now)
            .map_err(|conflict| {
                CliError::bad_input(format!("{}: {conflict}", args.file.display()))
            })?;
        let context = format!(
            "on ledger {ledger_id} at seq {}, at {}: policy v{} ({}) in force; layer {} has {:.2} USD and {} contracts drawn by {} proposals",
            head.seq,
            crate::domain::envelope::format_timestamp(now),
            governance.policy_version,
            governance.policy_hash,
            draws.closed_layer_id.as_deref().unwrap_or("-"),
            draws.outlay_usd,
            draws.contracts,
            draws.proposal_ids.len()
        );
        Ok::<_, CliError>((governance.policy, draws, context, now))
    }
    .await;
    super::proposals::close(&ledger, &verified).await;
    read
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    /// Where to write the proposal (TOML), or - for standard output.
    #[arg(long)]
    pub out: PathBuf,
    /// Requested contracts of the next layer.
    #[arg(long, default_value_t = 9)]
    pub contracts: u32,
    /// Replace the file at --out if it exists (without it, an existing file is refused).
    #[arg(long)]
    pub force: bool,
}

/// The methodology's worked example, dated now (snapshot ten minutes old): a starting point for
/// a real proposal, and what `propose` needs to try the flow by hand.
pub fn template(args: &TemplateArgs) -> CliResult {
    use chrono::TimeZone;
    super::may_write(&args.out, args.force)?;
    const EXAMPLE: &str = include_str!("../../keys-example/proposal.toml");
    let mut proposal = Proposal::from_toml_str(EXAMPLE)
        .map_err(|e| CliError::bad_input(format!("built-in example: {e}")))?;
    let as_of = Utc
        .with_ymd_and_hms(2026, 5, 7, 14, 30, 0)
        .single()
        .expect("valid date");
    let now = Utc::now();
    proposal.shift_times(now - chrono::Duration::minutes(10) - as_of);
    if args.contracts == 0 {
        return Err(CliError::bad_input("--contracts must be at least 1"));
    }
    proposal.set_contracts_requested(args.contracts);
    let text = format!(
        "# The worked example of docs/methodology.md, dated {}: its market snapshot (as_of) is ten\n\
         # minutes old, so it passes staleness for the next twenty. Every value is an example:\n\
         # replace them with the desk's own numbers before real use.\n{}",
        crate::domain::envelope::format_timestamp(now),
        proposal.to_toml_string()
    );
    if args.out.as_os_str() == "-" {
        print!("{text}");
    } else {
        std::fs::write(&args.out, text).map_err(|e| {
            CliError::new(
                super::EXIT_IO,
                format!("cannot write {}: {e}", args.out.display()),
            )
        })?;
        eprintln!(
            "wrote {} ({} contracts); try `rollbook evaluate {}`",
            args.out.display(),
            args.contracts,
            args.out.display()
        );
    }
    Ok(EXIT_OK)
}
