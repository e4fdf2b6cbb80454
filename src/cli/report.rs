//! `report EXPORT --out FILE`: reads an export twice (once for its SHA-256 and facts, once
//! through the verifier), builds the page (`crate::report::page`, pure) and writes it whole.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use clap::Args;

use super::audit::WholeOutput;
use super::progress::{Progress, PROGRESS_BYTES_MIN};
use super::{CliError, CliResult, EXIT_CHECK_FAILED, EXIT_IO, EXIT_OK};
use crate::audit::{verify_export, VerifyError};
use crate::report::gather::{gather, Gathered, Hashing};
use crate::report::page::{render, ExportFile, Parameters, ReportInput, Verdict};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The export to report on (`rollbook export --out FILE`).
    pub export: PathBuf,
    /// Where to write the HTML report.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the file at --out if it exists (without it, an existing file is refused).
    #[arg(long)]
    pub force: bool,
    /// The genesis hash of the ledger you mean (as `init` or `governance show` printed it): the
    /// report says INVALID unless the export's genesis event has this hash.
    #[arg(long, value_name = "HASH", value_parser = super::audit::genesis_hash_arg)]
    pub genesis: Option<String>,
}

pub fn run(args: &ReportArgs) -> CliResult {
    super::may_write(&args.out, args.force)?;
    let (file, gathered) = read_export(&args.export)?;
    let verdict = verdict_of(&args.export, &file.sha256, args.genesis.as_deref())?;
    let valid = verdict.is_valid();
    let headline = verdict.headline();
    let input = ReportInput {
        file,
        gathered: &gathered,
        verdict,
        parameters: Parameters {
            generated_at: chrono::Utc::now(),
            rollbook_version: env!("CARGO_PKG_VERSION").into(),
            genesis_anchor: args.genesis.clone(),
        },
    };
    let html = render(&input);
    let mut out = WholeOutput::create(&args.out)?;
    out.write_all(html.as_bytes())
        .map_err(|e| CliError::new(EXIT_IO, format!("cannot write {}: {e}", args.out.display())))?;
    out.finish()?;
    eprintln!(
        "wrote {} ({} proposals): {}",
        args.out.display(),
        gathered.facts.proposals.len(),
        super::display::shown(&headline)
    );
    Ok(if valid { EXIT_OK } else { EXIT_CHECK_FAILED })
}

fn open(path: &Path) -> Result<(std::fs::File, u64), CliError> {
    let file = std::fs::File::open(path)
        .map_err(|e| CliError::bad_input(format!("cannot read {}: {e}", path.display())))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((file, bytes))
}

/// The first read: every byte hashed, every line folded.
fn read_export(path: &Path) -> Result<(ExportFile, Gathered), CliError> {
    let (file, bytes) = open(path)?;
    let progress = Progress::new("reading", None, "lines", bytes >= PROGRESS_BYTES_MIN);
    let mut hashing = Hashing::new(file);
    let gathered = gather(BufReader::with_capacity(1 << 16, &mut hashing), |lines| {
        progress.set(lines)
    });
    let (sha256, bytes) = hashing.finish();
    Ok((
        ExportFile {
            path: path.display().to_string(),
            sha256,
            bytes,
        },
        gathered,
    ))
}

/// The second read, through the verifier (the checks of `verify FILE`). A valid verdict holds
/// only for the bytes hashed in the first read: a file that changed in between is refused.
fn verdict_of(path: &Path, sha256: &str, genesis: Option<&str>) -> Result<Verdict, CliError> {
    let (file, bytes) = open(path)?;
    let progress = Progress::new("verifying", None, "events", bytes >= PROGRESS_BYTES_MIN);
    let mut hashing = Hashing::new(file);
    let outcome = verify_export(BufReader::with_capacity(1 << 16, &mut hashing), |events| {
        progress.set(events)
    });
    Ok(match outcome {
        Ok(verified) => {
            if hashing.finish().0 != sha256 {
                return Err(CliError::bad_input(format!(
                    "{} changed while it was read: report on a file nothing writes to",
                    path.display()
                )));
            }
            match genesis {
                Some(expected) if expected != verified.summary.genesis_hash => Verdict::Invalid {
                    seq: 1,
                    reason: format!(
                        "the genesis hash is {}, not {expected} (--genesis): this is another ledger, or one rewritten from its start",
                        verified.summary.genesis_hash
                    ),
                },
                _ => Verdict::Valid(Box::new(verified.summary)),
            }
        }
        Err(VerifyError::Invalid(failure)) => Verdict::Invalid {
            seq: failure.seq,
            reason: failure.reason,
        },
        Err(VerifyError::Unreadable(reason)) => Verdict::Unreadable(reason),
        Err(VerifyError::Store(error)) => Verdict::Unreadable(error.to_string()),
    })
}
