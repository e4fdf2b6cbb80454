//! `export`, `verify [FILE]`, `prove`, `verify-proof`, `consistency`.

use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};

use chrono::Utc;
use clap::{Args, ValueEnum};

use super::display::{say, shown};
use super::proposals::{close, open, service_error, verified_states};
use super::views::name_of;
use super::{CliError, CliResult, EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_IO, EXIT_OK};
use crate::audit::auditor::{AuditFailure, AuditSummary};
use crate::audit::export::{Line, LineReader};
use crate::audit::proofs::{
    check_consistency, check_inclusion, hashes_to_hex, InclusionProof, ProvenEvent,
    INCLUSION_FORMAT, PROOF_FILE_BYTES_MAX,
};
use crate::audit::{export_jsonl, verify_export, verify_live, ExportError, VerifyError};
use crate::crypto::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, root_from_leaf_hashes, Hash,
};
use crate::crypto::{from_hex32, to_hex};
use crate::domain::envelope::format_timestamp;
use crate::pin::PinError;

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
    /// Replace the file at --out if it exists (without it, an existing file is refused).
    #[arg(long)]
    pub force: bool,
}

/// Where an export or a proof goes: standard output, or a file that appears whole or not at all.
/// The file is written beside its final path under a temporary name and renamed over it once
/// complete, so an export that stops (an altered row, a full disk) leaves no half file, and an
/// older file at that path stays as it was.
struct WholeOutput {
    writer: Box<dyn Write>,
    /// The final path (`-` for standard output).
    path: PathBuf,
    /// The file being written, until `finish` renames it to `path`.
    partial: Option<PathBuf>,
}

impl WholeOutput {
    fn create(path: &Path) -> Result<WholeOutput, CliError> {
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
    fn finish(mut self) -> Result<(), CliError> {
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
            let count = export_jsonl(
                &ledger.store,
                ledger.ledger_id,
                args.from_seq,
                &mut out,
                &format_timestamp(Utc::now()),
            )
            .await?;
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
            if args.from_seq != 1 {
                return Err(CliError::bad_input(
                    "--from-seq applies to jsonl exports only",
                ));
            }
            write_csv(&ledger, &mut verified, &mut out).await?;
            out.finish()?;
        }
    }
    close(&ledger, &verified).await;
    Ok(EXIT_OK)
}

/// RFC 4180: quote a field when it holds a comma, a quote or a line break; double the quotes.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

async fn write_csv(
    ledger: &crate::service::Ledger,
    verified: &mut crate::pin::Verified,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let states = verified_states(ledger, verified, None).await?;
    let sets = ledger.signer_sets().await.map_err(service_error)?;
    let governance = ledger.governance().await.map_err(service_error)?;
    let io = |e: std::io::Error| CliError::new(EXIT_IO, format!("cannot write the CSV: {e}"));
    let header = "proposal_id,kind,created_at,proposer,contracts_requested,contracts_max,verdict,failed_checks,status,signers,committed_at,policy_hash,first_seq,last_seq,filled_contracts,execution_breaches";
    write!(out, "{header}\r\n").map_err(io)?;
    let now = verified.ledger_clock;
    for state in states {
        let report = super::views::report_of(&state);
        let status = state.status_under(now, &governance);
        let signers: Vec<String> = state
            .cosignatures
            .iter()
            .map(|c| name_of(&sets, &c.key_id))
            .collect();
        let fields = [
            state.id.to_string(),
            state.recorded.terms.kind.as_str().to_string(),
            state.recorded.terms.created_at.clone(),
            name_of(&sets, state.proposer()),
            state
                .recorded
                .terms
                .contracts_requested
                .map(|n| n.to_string())
                .unwrap_or_default(),
            report
                .as_ref()
                .map(|r| r.contracts_max.to_string())
                .unwrap_or_default(),
            state.recorded.terms.verdict.clone().unwrap_or_default(),
            report
                .as_ref()
                .map(|r| r.failed_check_ids().join(" "))
                .unwrap_or_default(),
            status.as_str().to_string(),
            signers.join("; "),
            if status.is_committed() {
                state.closed_at.clone().unwrap_or_default()
            } else {
                String::new()
            },
            state.recorded.terms.policy_hash.clone(),
            state.first_seq.to_string(),
            state.last_seq.to_string(),
            state.filled_contracts.to_string(),
            state.execution_breaches.to_string(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        write!(out, "{}\r\n", line.join(",")).map_err(io)?;
    }
    Ok(())
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
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--genesis`: 64 lowercase hex digits, the only spelling rollbook prints a hash in (a
/// malformed value is bad input, exit 2, before anything is read).
fn genesis_hash_arg(text: &str) -> Result<String, String> {
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

fn progress_printer() -> impl FnMut(u64) + Send {
    let tty = std::io::stderr().is_terminal();
    move |events| {
        if tty {
            eprint!("\rverifying: {events} events");
        }
    }
}

fn print_summary(
    summary: &AuditSummary,
    source: &str,
    exported_at: Option<&str>,
    anchors: &Anchors,
    json: bool,
) {
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[K");
    }
    if json {
        let mut value = serde_json::json!({
            "valid": true,
            "source": source,
            "ledger_id": summary.ledger_id,
            "events": summary.events,
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
    // One line per anchor checked, or a plain statement that none was.
    if anchors.genesis.is_some() {
        println!("  identity      the genesis hash is the one --genesis names");
    } else {
        println!("  identity      NOT CHECKED: this proves the ledger is internally consistent, not that it is the ledger you mean");
        println!("                (pass --genesis HASH with the genesis hash you hold for it, and compare the key ids above with the keys you know)");
    }
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
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[K");
    }
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
            let file = std::fs::File::open(path)
                .map_err(|e| CliError::bad_input(format!("cannot read {}: {e}", path.display())))?;
            // One open file for both passes (the verification and the pin's look-up), so that
            // a path swapped or a pipe refilled between them cannot show the pin another file.
            let before = file.metadata().ok();
            let reader = BufReader::with_capacity(1 << 16, &file);
            let verified = verify_export(reader, progress_printer())
                .and_then(|verified| anchors.check(&verified.summary).map(|()| verified))
                .map_err(|e| verify_failure(e, args.json))?;
            let anchor = check_against_pin(&file, before, path, &verified.summary)
                .await
                .map_err(|e| verify_failure(e, args.json))?;
            print_summary(
                &verified.summary,
                &path.display().to_string(),
                Some(&verified.exported_at),
                &anchors,
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
            let outcome = verify_live(&store, ledger_id, progress_printer()).await;
            store.close().await;
            verified.close().await;
            let summary = outcome
                .and_then(|summary| anchors.check(&summary).map(|()| summary))
                .map_err(|e| verify_failure(e, args.json))?;
            print_summary(&summary, "live database", None, &anchors, args.json);
        }
    }
    Ok(EXIT_OK)
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
            Ok(())
        })
        .await?;
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
    /// An export whose checkpoint (size and root) the proof must match: the trusted anchor.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Reads an export's checkpoint line (its last line), streaming.
fn read_checkpoint(path: &Path) -> Result<(u64, Hash, String), CliError> {
    let file = std::fs::File::open(path)
        .map_err(|e| CliError::bad_input(format!("cannot read {}: {e}", path.display())))?;
    let mut reader = LineReader::new(BufReader::new(file));
    let mut last = None;
    while let Some(line) = reader
        .next_line()
        .map_err(|e| CliError::bad_input(format!("{}: {e}", path.display())))?
    {
        last = Some(line);
    }
    match last.as_deref().map(Line::parse) {
        Some(Ok(Line::Checkpoint(checkpoint))) => {
            let root = from_hex32(&checkpoint.merkle_root).map_err(|_| {
                CliError::bad_input(format!("{}: bad checkpoint root", path.display()))
            })?;
            Ok((checkpoint.tree_size, root, checkpoint.ledger_id))
        }
        _ => Err(CliError::bad_input(format!(
            "{}: the last line is not a checkpoint",
            path.display()
        ))),
    }
}

pub fn verify_proof(args: &VerifyProofArgs) -> CliResult {
    let text = super::evaluate::read_input_file(&args.file, PROOF_FILE_BYTES_MAX)?;
    let proof: InclusionProof = serde_json::from_str(&text).map_err(|e| {
        CliError::bad_input(format!(
            "{}: not an inclusion proof: {e}",
            args.file.display()
        ))
    })?;
    let trusted = match &args.checkpoint {
        Some(path) => {
            let (size, root, ledger_id) = read_checkpoint(path)?;
            if ledger_id != proof.ledger_id {
                return Err(CliError::new(
                    EXIT_CHECK_FAILED,
                    format!(
                        "the proof is for ledger {}, the checkpoint for {ledger_id}",
                        proof.ledger_id
                    ),
                ));
            }
            Some((size, root))
        }
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
