//! `rollbook evaluate`: a dry run of the sizing core on a proposal file. No database.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use clap::Args;

use super::{CliError, CliResult, EXIT_CHECK_FAILED, EXIT_OK};
use crate::sizing::{self, Policy, Proposal, Verdict};

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The roll proposal (TOML; fields as in docs/methodology.md).
    pub file: PathBuf,
    /// A policy file overriding any subset of the default policy.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Valuation clock as RFC 3339 (default: now).
    #[arg(long)]
    pub now: Option<String>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
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

pub(crate) fn load_proposal(path: &Path) -> Result<Proposal, CliError> {
    let text = read_input_file(path, sizing::FILE_BYTES_MAX)?;
    Proposal::from_toml_str(&text)
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

pub fn run(args: &EvaluateArgs) -> CliResult {
    let proposal = load_proposal(&args.file)?;
    let policy = load_policy(args.policy.as_deref())?;
    let now = parse_now(args.now.as_deref())?;
    let report = sizing::evaluate(&proposal, &policy, now)
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
