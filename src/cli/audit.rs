//! `export`, `verify [FILE]`, `prove`, `verify-proof`, `consistency`.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::Utc;
use clap::{Args, ValueEnum};

use super::display::{say, shown};
use super::progress::{LineCounting, Progress, PROGRESS_BYTES_MIN, PROGRESS_EVENTS_MIN};
use super::proposals::{close, open, verified_states};
use super::{CliError, CliResult, EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_IO, EXIT_OK};
use crate::audit::auditor::{AuditFailure, AuditSummary};
use crate::audit::completeness::{
    check_completeness, check_note_alone, Completeness, WitnessCheck,
};
use crate::audit::export::{Line, LineReader};
use crate::audit::proofs::{
    check_consistency, check_inclusion, hashes_to_hex, InclusionProof, ProvenEvent,
    INCLUSION_FORMAT, PROOF_FILE_BYTES_MAX,
};
use crate::audit::{
    export_jsonl_to, verify_export, verify_live, ExportError, FileVerification, VerifyError,
};
use crate::crypto::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, root_from_leaf_hashes, Hash,
};
use crate::crypto::{from_hex32, to_hex};
use crate::domain::envelope::format_timestamp;
use crate::domain::events::LEDGER_STREAM;
use crate::pin::PinError;
use crate::report::facts::Facts;
use crate::report::rows::ProposalRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output file, or - for standard output.
    #[arg(long)]
    pub out: PathBuf,
    /// jsonl: the verifiable audit trail; csv: one row per proposal for a spreadsheet.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
    /// Export events from this seq on (jsonl only; a partial export cannot be verified alone).
    #[arg(long, default_value_t = 1)]
    pub from_seq: u64,
    /// Export the tree of the first N events (jsonl only): e.g. the size of the latest
    /// cosigned checkpoint, which a reviewer's `verify --witnesses` then finds covering it.
    #[arg(long, value_name = "N")]
    pub tree_size: Option<u64>,
    /// Replace the file at --out if it exists (without it, an existing file is refused).
    #[arg(long)]
    pub force: bool,
}

/// Where an export or a proof goes: standard output, or a file that appears whole or not at all.
/// The file is written beside its final path under a temporary name and renamed over it once
/// complete, so an export that stops (an altered row, a full disk) leaves no half file, and an
/// older file at that path stays as it was.
pub(super) struct WholeOutput {
    writer: Box<dyn Write>,
    /// The final path (`-` for standard output).
    path: PathBuf,
    /// The file being written, until `finish` renames it to `path`.
    partial: Option<PathBuf>,
}

impl WholeOutput {
    pub(super) fn create(path: &Path) -> Result<WholeOutput, CliError> {
        if path.as_os_str() == "-" {
            return Ok(WholeOutput {
                writer: Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
                path: path.to_path_buf(),
                partial: None,
            });
        }
        let cannot_write = |e: std::io::Error| {
            CliError::new(EXIT_IO, format!("cannot write {}: {e}", path.display()))
        };
        // A path that exists but cannot be written is refused now, as creating it would be.
        if path.exists() {
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(cannot_write)?;
        }
        let name = path.file_name().ok_or_else(|| {
            CliError::new(
                EXIT_IO,
                format!("cannot write {}: not a file name", path.display()),
            )
        })?;
        let partial = path.with_file_name(format!(
            ".{}.{}.partial",
            name.to_string_lossy(),
            std::process::id()
        ));
        // A new file only: a link planted at the guessable name is never followed and truncated.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
            .map_err(cannot_write)?;
        Ok(WholeOutput {
            writer: Box::new(std::io::BufWriter::with_capacity(1 << 16, file)),
            path: path.to_path_buf(),
            partial: Some(partial),
        })
    }

    /// Flushes the export and moves a file to its final path.
    pub(super) fn finish(mut self) -> Result<(), CliError> {
        let mut finished = self.writer.flush();
        if let (Ok(()), Some(partial)) = (&finished, &self.partial) {
            finished = std::fs::rename(partial, &self.path);
            if finished.is_ok() {
                self.partial = None;
            }
        }
        finished.map_err(|e| {
            CliError::new(
                EXIT_IO,
                format!("cannot write {}: {e}", self.path.display()),
            )
        })
    }
}

impl Write for WholeOutput {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.writer.write(bytes)
    }
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

impl Drop for WholeOutput {
    /// An export that did not finish takes its partial file with it.
    fn drop(&mut self) {
        if let Some(partial) = self.partial.take() {
            self.writer = Box::new(std::io::sink()); // closes the file first
            let _ = std::fs::remove_file(partial);
        }
    }
}

/// An export that stopped, as the terminal tells it: a row that failed its check on read-back
/// is a failed check (exit 1, its seq and what did not match), like `verify` and `list` say it.
impl From<ExportError> for CliError {
    fn from(error: ExportError) -> Self {
        match error {
            ExportError::Store(store) => store.into(),
            ExportError::AlteredRow(message) => CliError::new(EXIT_CHECK_FAILED, message),
            ExportError::BeyondHead { .. } => CliError::bad_input(error.to_string()),
            ExportError::Empty | ExportError::Write(_) => CliError::new(EXIT_IO, error.to_string()),
        }
    }
}

pub async fn export(db: &str, args: &ExportArgs) -> CliResult {
    super::may_write(&args.out, args.force)?;
    let (ledger, mut verified) = open(db).await?;
    let mut out = WholeOutput::create(&args.out)?;
    match args.format {
        Format::Jsonl => {
            let total = args.tree_size.unwrap_or(verified.seq);
            let progress = Progress::new(
                "exporting",
                Some(total),
                "events",
                total >= PROGRESS_EVENTS_MIN,
            );
            let count = export_jsonl_to(
                &ledger.store,
                ledger.ledger_id,
                args.from_seq,
                args.tree_size,
                &mut LineCounting::new(&mut out, &progress),
                &format_timestamp(Utc::now()),
            )
            .await?;
            drop(progress);
            out.finish()?;
            if args.out.as_os_str() != "-" {
                let written = count.saturating_sub(args.from_seq.max(1) - 1);
                eprintln!(
                    "exported {written} events of ledger {} to {}",
                    ledger.ledger_id,
                    args.out.display()
                );
            }
        }
        Format::Csv => {
            if args.from_seq != 1 || args.tree_size.is_some() {
                return Err(CliError::bad_input(
                    "--from-seq and --tree-size apply to jsonl exports only",
                ));
            }
            write_csv(&ledger, &mut verified, &mut out).await?;
            out.finish()?;
        }
    }
    close(&ledger, &verified).await;
    Ok(EXIT_OK)
}

/// The spreadsheet CSV (`report::spreadsheet`): every row from proposal streams and a
/// governance history this client verified (each event's hash the one its pin holds), never
/// from the projection table alone.
async fn write_csv(
    ledger: &crate::service::Ledger,
    verified: &mut crate::pin::Verified,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let governance_events = verified.stream(&ledger.store, LEDGER_STREAM).await?;
    let mut facts = Facts::default();
    for event in &governance_events {
        facts.push(event);
    }
    if let Some((seq, reason)) = facts.stopped {
        return Err(CliError::new(
            EXIT_CHECK_FAILED,
            format!("seq {seq}: the governance history cannot be read: {reason}"),
        ));
    }
    let states = verified_states(ledger, verified, None).await?;
    let now = verified.ledger_clock;
    let rows: Vec<ProposalRow> = states
        .iter()
        .map(|state| ProposalRow::new(state, &facts.history, facts.governance.as_ref(), now))
        .collect();
    crate::report::spreadsheet::write_csv(&rows, out)
        .map_err(|e| CliError::new(EXIT_IO, format!("cannot write the CSV: {e}")))
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// An exported audit file to verify offline; without it, the live ledger of --db.
    pub file: Option<PathBuf>,
    /// The genesis hash (the hash of seq 1) of the ledger you mean, as `init`, `governance show`
    /// or an earlier `verify` printed it: verification fails unless the ledger's genesis event
    /// has this hash. Without it, `verify` proves internal consistency only.
    #[arg(long, value_name = "HASH", value_parser = genesis_hash_arg)]
    pub genesis: Option<String>,
    /// A C2SP tlog-policy file (`log`, `witness`, `group`, `quorum` lines): the export verifies
    /// only if a checkpoint of exactly its size is signed by a signer in force and cosigned to
    /// meet the policy's quorum (checks W4 to W7). Without it, completeness is not checked.
    #[arg(long, value_name = "POLICY", requires = "file")]
    pub witnesses: Option<PathBuf>,
    /// With --witnesses: a cosignature counts only if at most this old (`90m`, `24h`, `7d`).
    #[arg(long, value_name = "DURATION", requires = "witnesses", value_parser = duration_arg)]
    pub max_age: Option<chrono::Duration>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The largest witness policy file read (tlog-policy files are a few lines).
const POLICY_FILE_BYTES_MAX: usize = 64 * 1024;

/// `--max-age`: a positive whole number of minutes, hours or days (`90m`, `24h`, `7d`).
fn duration_arg(text: &str) -> Result<chrono::Duration, String> {
    let bad = || {
        format!(
            "{:?} is not a duration: a positive whole number followed by m, h or d (90m, 24h, 7d)",
            shown(text)
        )
    };
    let split = text.len().checked_sub(1).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let canonical = !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && !number.starts_with('0');
    let count: i64 = canonical
        .then(|| number.parse().ok())
        .flatten()
        .ok_or_else(bad)?;
    let seconds_per = match unit {
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    // At most about 27 years: beyond that a maximum age bounds nothing.
    count
        .checked_mul(seconds_per)
        .filter(|seconds| *seconds <= 10_000 * 86_400)
        .map(chrono::Duration::seconds)
        .ok_or_else(bad)
}

/// The witness policy of `--witnesses`, read and parsed (bad input, exit 2, when it is not one).
fn read_policy(path: &Path) -> Result<crate::tlog::Policy, CliError> {
    let text = super::evaluate::read_input_file(path, POLICY_FILE_BYTES_MAX)?;
    crate::tlog::Policy::parse(text.as_bytes())
        .map_err(|error| CliError::bad_input(format!("{}: {error}", path.display())))
}

/// The completeness check of `--witnesses POLICY [--max-age D]`, judged on this machine's clock
/// (none without a policy).
fn witness_check(
    policy: Option<&Path>,
    max_age: Option<chrono::Duration>,
) -> Result<Option<WitnessCheck>, CliError> {
    policy
        .map(|policy| {
            Ok(WitnessCheck {
                policy: read_policy(policy)?,
                max_age,
                now: Utc::now(),
            })
        })
        .transpose()
}

/// `--genesis`: 64 lowercase hex digits, the only spelling rollbook prints a hash in (a
/// malformed value is bad input, exit 2, before anything is read).
pub(super) fn genesis_hash_arg(text: &str) -> Result<String, String> {
    let hex = text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if hex {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{:?} is not a genesis hash: expected 64 lowercase hex digits, as `rollbook governance show` prints it",
            shown(text)
        ))
    }
}

/// What a verified ledger's identity was checked against. A pin would be the other anchor.
struct Anchors<'a> {
    genesis: Option<&'a str>,
}

impl Anchors<'_> {
    /// The anchors checked, by name (`[]` when only internal consistency was proved).
    fn checked(&self) -> Vec<&'static str> {
        self.genesis.map(|_| "genesis").into_iter().collect()
    }

    /// Fails unless the verified ledger is the one each anchor names.
    fn check(&self, summary: &AuditSummary) -> Result<(), VerifyError> {
        match self.genesis {
            Some(expected) if expected != summary.genesis_hash => {
                Err(VerifyError::Invalid(AuditFailure {
                    seq: 1,
                    reason: format!(
                        "the genesis hash is {}, not {expected} (--genesis): this is another ledger, or one rewritten from its start",
                        summary.genesis_hash
                    ),
                }))
            }
            _ => Ok(()),
        }
    }
}

fn print_summary(
    summary: &AuditSummary,
    source: &str,
    exported_at: Option<&str>,
    anchors: &Anchors,
    completeness: Option<&Completeness>,
    json: bool,
) {
    if json {
        let mut value = serde_json::json!({
            "valid": true,
            "source": source,
            "ledger_id": summary.ledger_id,
            "events": summary.events,
            "signed_through_seq": summary.signed_through_seq,
            "proposals": summary.proposals,
            "signatures": summary.signatures,
            "executions": summary.executions,
            "execution_breaches": summary.execution_breaches,
            "signer_set_version": summary.signer_set_version,
            "threshold": summary.threshold,
            "signers": summary.signers,
            "signer_keys": signer_keys_json(summary),
            "genesis_hash": summary.genesis_hash,
            "identity_checked_by": anchors.checked(),
            "policy_version": summary.policy_version,
            "policy_hash": summary.policy_hash,
            "head_hash": summary.head_hash,
            "merkle_root": summary.merkle_root,
        });
        if let Some(at) = exported_at {
            value["exported_at"] = serde_json::Value::String(at.to_string());
        }
        value["completeness"] = completeness.map_or(serde_json::Value::Null, completeness_json);
        println!("{value}");
        return;
    }
    let proposals: Vec<String> = summary
        .proposals
        .iter()
        .map(|(status, n)| format!("{status} {n}"))
        .collect();
    say!("ledger {}: VALID ({source})", summary.ledger_id);
    println!("  events        {}", summary.events);
    print_signed_through(summary);
    println!(
        "  proposals     {}",
        if proposals.is_empty() {
            "none".into()
        } else {
            proposals.join(", ")
        }
    );
    println!(
        "  signatures    {} co-signatures, each strict-valid",
        summary.signatures
    );
    println!(
        "  executions    {} recorded, {}",
        summary.executions,
        match summary.execution_breaches {
            0 => "none in breach".to_string(),
            n => format!("{n} EXECUTION BREACH(ES): `rollbook list --status execution_breach`"),
        }
    );
    say!(
        "  signers       set v{}: {} of {} ({})",
        summary.signer_set_version,
        summary.threshold,
        summary.signers.len(),
        summary.signers.join(", ")
    );
    for (name, key_id) in summary.signers.iter().zip(&summary.signer_key_ids) {
        say!("                  {name:<12} {key_id}");
    }
    println!(
        "  policy        v{} {}",
        summary.policy_version, summary.policy_hash
    );
    println!("  genesis hash  {}", summary.genesis_hash);
    println!("  head hash     {}", summary.head_hash);
    println!("  merkle root   {}", summary.merkle_root);
    if let Some(at) = exported_at {
        say!("  exported at   {at}");
    }
    print_completeness(completeness);
    // One line per anchor checked, or a plain statement that none was.
    if anchors.genesis.is_some() {
        println!("  identity      the genesis hash is the one --genesis names");
    } else {
        println!("  identity      NOT CHECKED: this proves the ledger is internally consistent, not that it is the ledger you mean");
        println!("                (pass --genesis HASH with the genesis hash you hold for it, and compare the key ids above with the keys you know)");
    }
}

/// How far signatures bind the history (A11): the events after the latest bound head are
/// held by their hashes only, which whoever holds the file recomputes after removing one.
fn print_signed_through(summary: &AuditSummary) {
    let (signed, events) = (summary.signed_through_seq, summary.events);
    println!("  signed        events 1 to {signed} are bound by signatures");
    if signed < events {
        println!(
            "                the {} after them only by their hashes: without a cosigned checkpoint of this size or your pin, some may have been removed or reordered",
            events - signed
        );
    }
}

/// Whether the export is complete: covered and cosigned (W4 to W7), or a plain statement that
/// this was not checked.
fn print_completeness(completeness: Option<&Completeness>) {
    let Some(completeness) = completeness else {
        println!("  completeness  NOT CHECKED: a valid export may still be cut short of the ledger (its last events dropped)");
        println!("                (pass --witnesses POLICY to require a checkpoint of its size cosigned by the witnesses you trust)");
        return;
    };
    say!(
        "  completeness  covered by the signed checkpoint of size {} (signed by {})",
        completeness.tree_size,
        completeness.signers.join(", ")
    );
    for (witness, time) in &completeness.cosigned_by {
        say!(
            "                cosigned by {witness} at {}",
            format_timestamp(*time)
        );
    }
    println!("                the witness policy's quorum is met");
}

fn completeness_json(completeness: &Completeness) -> serde_json::Value {
    let cosigned: Vec<serde_json::Value> = completeness
        .cosigned_by
        .iter()
        .map(|(witness, time)| serde_json::json!({"witness": witness, "time": format_timestamp(*time)}))
        .collect();
    serde_json::json!({
        "tree_size": completeness.tree_size,
        "signers": completeness.signers,
        "cosigned_by": cosigned,
    })
}

/// The signers in force as JSON objects: name and key id.
fn signer_keys_json(summary: &AuditSummary) -> Vec<serde_json::Value> {
    summary
        .signers
        .iter()
        .zip(&summary.signer_key_ids)
        .map(|(name, key_id)| serde_json::json!({"name": name, "key_id": key_id}))
        .collect()
}

fn verify_failure(error: VerifyError, json: bool) -> CliError {
    match error {
        VerifyError::Invalid(failure) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"valid": false, "seq": failure.seq, "error": failure.reason})
                );
            } else {
                say!("INVALID at seq {}: {}", failure.seq, failure.reason);
            }
            CliError::new(
                EXIT_CHECK_FAILED,
                format!(
                    "verification failed at seq {}: {}",
                    failure.seq, failure.reason
                ),
            )
        }
        VerifyError::Unreadable(message) => CliError::new(EXIT_BAD_INPUT, message),
        VerifyError::Store(store) => store.into(),
    }
}

pub async fn verify(db: &str, args: &VerifyArgs) -> CliResult {
    let anchors = Anchors {
        genesis: args.genesis.as_deref(),
    };
    match &args.file {
        Some(path) => {
            let witnesses = witness_check(args.witnesses.as_deref(), args.max_age)?;
            let file = std::fs::File::open(path)
                .map_err(|e| CliError::bad_input(format!("cannot read {}: {e}", path.display())))?;
            // One open file for both passes (the verification and the pin's look-up), so that
            // a path swapped or a pipe refilled between them cannot show the pin another file.
            let before = file.metadata().ok();
            let reader = BufReader::with_capacity(1 << 16, &file);
            let bytes = before.as_ref().map_or(0, |m| m.len());
            let progress = Progress::new("verifying", None, "events", bytes >= PROGRESS_BYTES_MIN);
            let verified = verify_export(reader, |events| progress.set(events))
                .and_then(|verified| anchors.check(&verified.summary).map(|()| verified))
                .map_err(|e| verify_failure(e, args.json))?;
            drop(progress);
            let completeness = witnesses
                .as_ref()
                .map(|check| complete(&verified, check))
                .transpose()
                .map_err(|e| verify_failure(e, args.json))?;
            let anchor = check_against_pin(&file, before, path, &verified.summary)
                .await
                .map_err(|e| verify_failure(e, args.json))?;
            print_summary(
                &verified.summary,
                &path.display().to_string(),
                Some(&verified.exported_at),
                &anchors,
                completeness.as_ref(),
                args.json,
            );
            // Text after the summary; beside JSON, on stderr (the object's keys are a contract).
            if args.json {
                eprintln!("{anchor}");
            } else {
                println!("  pin           {anchor}");
            }
        }
        None => {
            let (store, ledger_id) = super::open_ledger(db).await?;
            let dir = crate::pin::state_dir()?;
            // A refusal by the pin is a verification failure, reported as one (text or JSON).
            let verified = match crate::pin::sync(&store, ledger_id, &dir).await {
                Ok(verified) => verified,
                Err(error) => {
                    store.close().await;
                    return Err(match error {
                        PinError::Invalid { failure, .. } => {
                            verify_failure(VerifyError::Invalid(failure), args.json)
                        }
                        PinError::Diverged { seq, .. } => verify_failure(
                            VerifyError::Invalid(AuditFailure {
                                seq,
                                reason: error.to_string(),
                            }),
                            args.json,
                        ),
                        other => other.into(),
                    });
                }
            };
            let progress = Progress::new(
                "verifying",
                Some(verified.seq),
                "events",
                verified.seq >= PROGRESS_EVENTS_MIN,
            );
            let outcome = verify_live(&store, ledger_id, |events| progress.set(events)).await;
            drop(progress);
            store.close().await;
            verified.close().await;
            let summary = outcome
                .and_then(|summary| anchors.check(&summary).map(|()| summary))
                .map_err(|e| verify_failure(e, args.json))?;
            print_summary(&summary, "live database", None, &anchors, None, args.json);
        }
    }
    Ok(EXIT_OK)
}

/// Checks W4 to W7 of a verified export under a witness policy.
fn complete(
    verified: &FileVerification,
    check: &WitnessCheck,
) -> Result<Completeness, VerifyError> {
    let summary = &verified.summary;
    let ledger_id = uuid::Uuid::parse_str(&summary.ledger_id).map_err(|_| {
        VerifyError::Unreadable(format!("ledger id {:?} is not a UUID", summary.ledger_id))
    })?;
    check_completeness(
        ledger_id,
        summary.events,
        verified.signed.last.as_ref(),
        &verified.signed.ledger_keys,
        verified.signed.clock_skew_max_seconds,
        check,
    )
    .map_err(|reason| {
        VerifyError::Invalid(AuditFailure {
            seq: summary.events,
            reason,
        })
    })
}

/// Checks a verified export against this client's pin of its ledger, if there is one: the file
/// must hold the pinned head at the pinned seq. Never writes a pin (a crafted file must not
/// move one). Returns what the file was checked against.
async fn check_against_pin(
    file: &std::fs::File,
    before: Option<std::fs::Metadata>,
    path: &Path,
    summary: &AuditSummary,
) -> Result<String, VerifyError> {
    let nothing = |why: String| Ok(format!("checked against nothing pinned: {why}"));
    let Ok(ledger_id) = uuid::Uuid::parse_str(&summary.ledger_id) else {
        return nothing("the ledger id is not a UUID".into());
    };
    let dir = match crate::pin::state_dir() {
        Ok(dir) => dir,
        Err(error) => return nothing(error.to_string()),
    };
    let pin = match crate::pin::pinned(&dir, ledger_id).await {
        Ok(Some(pin)) => pin,
        Ok(None) => {
            return nothing(format!(
                "this client holds no pin of ledger {ledger_id} (in {})",
                dir.display()
            ))
        }
        Err(error) => return Err(VerifyError::Unreadable(error.to_string())),
    };
    let pinned = to_hex(&pin.head_hash);
    let invalid = |reason: String| {
        Err(VerifyError::Invalid(AuditFailure {
            seq: pin.seq,
            reason,
        }))
    };
    if summary.events < pin.seq {
        return invalid(format!(
            "the file ends at seq {}, before the head this client verified (seq {}, hash {pinned})",
            summary.events, pin.seq
        ));
    }
    let found = event_hash_at(file, before, path, pin.seq).map_err(VerifyError::Unreadable)?;
    if found.as_deref() != Some(pinned.as_str()) {
        return invalid(format!(
            "the file's event at seq {} has hash {}, but this client verified hash {pinned} there: the file's history is not the one this client verified",
            pin.seq,
            found.as_deref().unwrap_or("(none)")
        ));
    }
    Ok(format!(
        "extends the head this client verified (seq {}, hash {pinned})",
        pin.seq
    ))
}

/// The hash of the event line at `seq` of an export, streaming.
/// The hash of the event at `seq` in the export `file` just verified, read again from its
/// start. Refused when the file cannot be read twice (a pipe) or changed since the verification
/// began (its length or modification time differs).
fn event_hash_at(
    mut file: &std::fs::File,
    before: Option<std::fs::Metadata>,
    path: &Path,
    seq: u64,
) -> Result<Option<String>, String> {
    use std::io::{Seek, SeekFrom};
    let unchanged = |now: &std::fs::Metadata| {
        before.as_ref().is_some_and(|before| {
            before.len() == now.len() && before.modified().ok() == now.modified().ok()
        })
    };
    let now = file.metadata().ok();
    if !now.as_ref().is_some_and(unchanged) {
        return Err(format!(
            "{} changed while it was verified: cannot compare it with this client's pin",
            path.display()
        ));
    }
    file.seek(SeekFrom::Start(0)).map_err(|e| {
        format!(
            "{}: cannot read it a second time to compare with this client's pin ({e}); save it to a regular file first",
            path.display()
        )
    })?;
    let mut reader = LineReader::new(BufReader::new(file));
    while let Some(text) = reader
        .next_line()
        .map_err(|e| format!("{}: {e}", path.display()))?
    {
        if let Ok(Line::Event(line)) = Line::parse(&text) {
            if line.seq == seq {
                return Ok(Some(line.hash));
            }
        }
    }
    Ok(None)
}

#[derive(Debug, Args)]
pub struct ProveArgs {
    /// The proposal id: the whole id, its short id (as `list` shows) or its first 8+ characters.
    pub id: String,
    /// Where to write the proof.
    #[arg(long)]
    pub out: PathBuf,
    /// Prove against the tree of the first N events (e.g. the `tree_size` of an export the
    /// reviewer already holds) instead of the current head.
    #[arg(long)]
    pub tree_size: Option<u64>,
    /// Replace the file at --out if it exists (without it, an existing file is refused).
    #[arg(long)]
    pub force: bool,
}

pub async fn prove(db: &str, args: &ProveArgs) -> CliResult {
    let id_text = super::ids::parse_id(&args.id)?;
    super::may_write(&args.out, args.force)?;
    let (ledger, verified) = open(db).await?;
    let id = super::ids::resolve(&ledger, &id_text).await?;
    // The proposal's events as verified (each hash the one this client's pin verified).
    let events = verified.stream(&ledger.store, &id.to_string()).await?;
    if events.is_empty() {
        close(&ledger, &verified).await;
        return Err(CliError::bad_input(format!(
            "no proposal {id} in ledger {}; `rollbook list` shows them",
            ledger.ledger_id
        )));
    }
    // Leaf hashes of the whole ledger: 32 bytes per event (32 MiB per million events). Each
    // row links to the one before, so with the pin's hash confirmed at its seq every leaf up
    // to there is the verified one (an edited row with its own hash recomputed breaks a link).
    let mut leaves: Vec<Hash> = Vec::new();
    let mut previous = [0u8; 32];
    let progress = Progress::new(
        "reading the tree",
        Some(verified.seq),
        "events",
        verified.seq >= PROGRESS_EVENTS_MIN,
    );
    ledger
        .store
        .for_each_event::<CliError>(ledger.ledger_id, 1, |event| {
            if event.seq != leaves.len() as u64 + 1 || event.prev_hash != previous {
                return Err(CliError::new(
                    EXIT_CHECK_FAILED,
                    format!(
                        "seq {}: does not follow the event before it (its seq or previous hash differs); run `rollbook verify`",
                        event.seq
                    ),
                ));
            }
            previous = event.hash;
            leaves.push(leaf_hash(&event.hash));
            if event.seq % 4096 == 0 {
                progress.set(event.seq);
            }
            Ok(())
        })
        .await?;
    drop(progress);
    close(&ledger, &verified).await;
    let head = leaves.len() as u64;
    let size = args.tree_size.unwrap_or(head);
    if size == 0 || size > head {
        return Err(CliError::bad_input(format!(
            "--tree-size {size}: the ledger holds {head} events"
        )));
    }
    if let Some(last) = events.last().filter(|e| e.seq > size) {
        return Err(CliError::bad_input(format!(
            "proposal {id} has events up to seq {}, beyond --tree-size {size}; use a tree size of at least {}",
            last.seq, last.seq
        )));
    }
    leaves.truncate(size as usize);
    let mut proven = Vec::new();
    for event in &events {
        let path = inclusion_proof(&leaves, event.seq - 1, size)
            .map_err(|e| CliError::new(EXIT_CHECK_FAILED, e.to_string()))?;
        let line = crate::audit::export::EventLine::from_event(event)
            .map_err(|e| CliError::new(EXIT_CHECK_FAILED, e))?;
        proven.push(ProvenEvent {
            leaf_index: event.seq - 1,
            audit_path: hashes_to_hex(&path),
            event: line,
        });
    }
    let proof = InclusionProof {
        format: INCLUSION_FORMAT.into(),
        ledger_id: ledger.ledger_id.to_string(),
        proposal_id: id.to_string(),
        tree_size: size,
        merkle_root: to_hex(&root_from_leaf_hashes(&leaves)),
        events: proven,
    };
    let mut out = WholeOutput::create(&args.out)?;
    serde_json::to_writer_pretty(&mut out, &proof)
        .map_err(|e| CliError::new(EXIT_IO, e.to_string()))?;
    out.flush()
        .map_err(|e| CliError::new(EXIT_IO, e.to_string()))?;
    out.finish()?;
    eprintln!(
        "wrote an inclusion proof of {} events of proposal {id} against tree size {size}, root {}",
        events.len(),
        proof.merkle_root
    );
    Ok(EXIT_OK)
}

#[derive(Debug, Args)]
pub struct VerifyProofArgs {
    /// A proof written by `rollbook prove`.
    pub file: PathBuf,
    /// The trusted anchor the proof must match: an export that `verify` accepts (verified here
    /// in full), or a signed note (`checkpoint --note`) with --witnesses, whose `log` keys must
    /// have signed it and whose quorum must have cosigned it. Never a bare checkpoint line.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// A tlog-policy file: for a signed note, its log keys and witness quorum; for an export,
    /// the completeness check of `verify --witnesses`.
    #[arg(long, value_name = "POLICY", requires = "checkpoint")]
    pub witnesses: Option<PathBuf>,
    /// With --witnesses: a cosignature counts only if at most this old (`90m`, `24h`, `7d`).
    #[arg(long, value_name = "DURATION", requires = "witnesses", value_parser = duration_arg)]
    pub max_age: Option<chrono::Duration>,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The size and root of a checkpoint that verifies for `ledger_id`: an export verified in full
/// (and complete under the policy, when there is one), or a signed note checked against the
/// policy. A file that is neither is refused.
fn trusted_checkpoint(
    path: &Path,
    ledger_id: &str,
    witnesses: Option<&WitnessCheck>,
) -> Result<(u64, Hash), CliError> {
    let text_start = {
        use std::io::Read;
        let mut start = [0u8; 17];
        let file = std::fs::File::open(path)
            .map_err(|e| CliError::bad_input(format!("cannot read {}: {e}", path.display())))?;
        let read = file.take(17).read(&mut start).unwrap_or(0);
        start[..read].to_vec()
    };
    let failed = |reason: String| {
        CliError::new(
            EXIT_CHECK_FAILED,
            format!(
                "{}: the checkpoint does not verify: {reason}",
                path.display()
            ),
        )
    };
    if text_start.starts_with(b"{\"type\":\"header\"") {
        let file = std::fs::File::open(path)
            .map_err(|e| CliError::bad_input(format!("cannot read {}: {e}", path.display())))?;
        let verified = verify_export(BufReader::new(file), |_| {}).map_err(|e| {
            let error = verify_failure(e, false);
            CliError::new(error.code, format!("{}: {}", path.display(), error.message))
        })?;
        if let Some(check) = witnesses {
            complete(&verified, check).map_err(|e| match e {
                VerifyError::Invalid(failure) => failed(failure.reason),
                other => verify_failure(other, false),
            })?;
        }
        let summary = &verified.summary;
        if summary.ledger_id != ledger_id {
            return Err(failed(format!(
                "the proof is for ledger {ledger_id}, the export is of {}",
                summary.ledger_id
            )));
        }
        let root = from_hex32(&summary.merkle_root).map_err(|_| failed("bad root".into()))?;
        return Ok((summary.events, root));
    }
    let check = witnesses.ok_or_else(|| {
        CliError::bad_input(format!(
            "{}: not an export; a signed note is accepted only with --witnesses POLICY, whose log keys must have signed it",
            path.display()
        ))
    })?;
    let text = super::evaluate::read_input_file(path, crate::tlog::note::NOTE_LEN_MAX_BYTES)?;
    let ledger = uuid::Uuid::parse_str(ledger_id)
        .map_err(|_| CliError::bad_input(format!("ledger id {ledger_id:?} is not a UUID")))?;
    let skew_s = crate::sizing::Policy::default()
        .timing
        .clock_skew_max_seconds;
    check_note_alone(&text, ledger, skew_s, check).map_err(failed)
}

pub fn verify_proof(args: &VerifyProofArgs) -> CliResult {
    let text = super::evaluate::read_input_file(&args.file, PROOF_FILE_BYTES_MAX)?;
    let proof: InclusionProof = serde_json::from_str(&text).map_err(|e| {
        CliError::bad_input(format!(
            "{}: not an inclusion proof: {e}",
            args.file.display()
        ))
    })?;
    let witnesses = witness_check(args.witnesses.as_deref(), args.max_age)?;
    let trusted = match &args.checkpoint {
        Some(path) => Some(trusted_checkpoint(
            path,
            &proof.ledger_id,
            witnesses.as_ref(),
        )?),
        None => None,
    };
    let checked = check_inclusion(&proof, trusted).map_err(|reason| {
        if args.json {
            println!("{}", serde_json::json!({"valid": false, "error": reason}));
        }
        CliError::new(
            EXIT_CHECK_FAILED,
            format!("the proof does not verify: {reason}"),
        )
    })?;
    if args.json {
        let events: Vec<serde_json::Value> = checked
            .events
            .iter()
            .map(|(seq, t)| serde_json::json!({"seq": seq, "event_type": t}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"valid": true, "proposal_id": checked.proposal_id, "tree_size": checked.tree_size, "merkle_root": checked.merkle_root, "events": events, "anchored": trusted.is_some()})
        );
    } else {
        say!(
            "proof VALID: {} events of proposal {} are in the ledger tree of size {} with root {}",
            checked.events.len(),
            checked.proposal_id,
            checked.tree_size,
            checked.merkle_root
        );
        for (seq, event_type) in &checked.events {
            say!("  seq {seq:>8}  {event_type}");
        }
        if trusted.is_none() {
            println!("compare that root with the checkpoint of an export you verified (or pass --checkpoint EXPORT)");
        }
    }
    Ok(EXIT_OK)
}

#[derive(Debug, Args)]
pub struct ConsistencyArgs {
    /// The older export.
    pub old: PathBuf,
    /// The newer export.
    pub new: PathBuf,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Event hashes of an export, in order (32 bytes per event).
fn export_hashes(path: &Path) -> Result<Vec<Hash>, CliError> {
    let file = std::fs::File::open(path)
        .map_err(|e| CliError::bad_input(format!("cannot read {}: {e}", path.display())))?;
    let mut reader = LineReader::new(BufReader::new(file));
    let mut hashes = Vec::new();
    while let Some(text) = reader
        .next_line()
        .map_err(|e| CliError::bad_input(format!("{}: {e}", path.display())))?
    {
        if let Ok(Line::Event(line)) = Line::parse(&text) {
            hashes.push(from_hex32(&line.hash).map_err(|_| CliError::bad_input("bad hash"))?);
        }
    }
    Ok(hashes)
}

pub fn consistency(args: &ConsistencyArgs) -> CliResult {
    // Each export must verify on its own first: a prefix of a forged history proves nothing.
    let mut verified = Vec::new();
    for path in [&args.old, &args.new] {
        let file = std::fs::File::open(path)
            .map_err(|e| CliError::bad_input(format!("cannot read {}: {e}", path.display())))?;
        let outcome = verify_export(BufReader::new(file), |_| {}).map_err(|e| {
            let error = verify_failure(e, false);
            CliError::new(error.code, format!("{}: {}", path.display(), error.message))
        })?;
        verified.push(outcome.summary);
    }
    let (old, new) = (&verified[0], &verified[1]);
    let fail = |reason: String| {
        if args.json {
            println!(
                "{}",
                serde_json::json!({"consistent": false, "error": reason})
            );
        }
        CliError::new(EXIT_CHECK_FAILED, format!("not consistent: {reason}"))
    };
    if old.ledger_id != new.ledger_id {
        return Err(fail(format!(
            "the exports are of different ledgers ({} and {})",
            old.ledger_id, new.ledger_id
        )));
    }
    if old.events > new.events {
        return Err(fail(format!(
            "the old export has {} events, the new one only {}: history was cut (or the arguments are swapped: the older export comes first)",
            old.events, new.events
        )));
    }
    let new_leaves: Vec<Hash> = export_hashes(&args.new)?
        .iter()
        .map(|h| leaf_hash(h))
        .collect();
    let old_root = from_hex32(&old.merkle_root).expect("verified");
    let new_root = from_hex32(&new.merkle_root).expect("verified");
    let proof =
        consistency_proof(&new_leaves, old.events, new.events).map_err(|e| fail(e.to_string()))?;
    check_consistency((old.events, old_root), (new.events, new_root), &proof).map_err(|e| {
        fail(format!(
            "the new export rewrote history before seq {}: {e}",
            old.events + 1
        ))
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"consistent": true, "ledger_id": old.ledger_id, "old_size": old.events, "old_root": old.merkle_root, "new_size": new.events, "new_root": new.merkle_root, "proof": hashes_to_hex(&proof)})
        );
    } else {
        println!("CONSISTENT: the old export ({} events, root {}) is a prefix of the new one ({} events, root {})", old.events, old.merkle_root, new.events, new.merkle_root);
        println!(
            "  RFC 9162 consistency proof of {} hashes verified",
            proof.len()
        );
    }
    Ok(EXIT_OK)
}
