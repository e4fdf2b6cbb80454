//! `rollbook watch`: follows a ledger for what concerns one signer (a proposal it may sign, a
//! commit, a veto, a withdrawal, an expiry soon) and prints a line, a JSON line, or runs a
//! command with the event as JSON on its standard input. It reads and never signs: the key is
//! read once for its key id and dropped.
//!
//! What wakes it is a hint (a PostgreSQL notification, or a timer on SQLite); what it reports
//! is read through the pin like every view: synced and verified from the pin to the head, each
//! proposal's stream checked against the verified events.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::{json, Value};
use uuid::Uuid;

use super::display::{esay, say};
use super::keys::load_secret;
use super::proposals::{history, may_still_sign, service_error, verified_states};
use super::views::{proposal_json, short_id, summary};
use super::{CliError, CliResult, EXIT_IO, EXIT_OK};
use crate::domain::approval::ProposalState;
use crate::pin::Verified;
use crate::service::Ledger;
use crate::store::Store;

/// The first wait before connecting again, and the longest: doubled after each failure.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// On PostgreSQL, how long to wait for a notification before reading anyway: expiries come
/// without an event, and a notification may be lost.
const LISTEN_FALLBACK: Duration = Duration::from_secs(30);
/// Events read per page when looking for the streams new events touched.
const HINT_PAGE_ROWS: i64 = 1000;

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The signer's key (private or .pub): only its key id is used; watch never signs.
    #[arg(long)]
    pub key: PathBuf,
    /// Run CMD (with `sh -c`) for each event, the event as one JSON line on its standard input;
    /// nothing from the event is put on its command line.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// Print one JSON object a line (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Report a proposal this key may still sign when it expires within this many minutes.
    #[arg(long, default_value_t = 60)]
    pub expiry_warning_minutes: u32,
    /// On SQLite, how often to read the ledger again (milliseconds).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(50..=3_600_000))]
    pub poll_ms: u64,
    /// Stop after reporting this many events (for scripts and tests); without it, run until
    /// interrupted.
    #[arg(long)]
    pub count: Option<u64>,
}

/// One thing to report.
struct Report {
    event: &'static str,
    seq: u64,
    state: ProposalState,
}

/// What the watch remembers between reads.
struct Watcher {
    key_id: String,
    /// The head this watch last read to; `None` before its first read.
    last_seq: Option<u64>,
    /// Proposals reported to sign and still open to this key: their expiry, checked each read.
    to_sign: BTreeMap<Uuid, DateTime<Utc>>,
    /// Those already reported as expiring soon (once each).
    warned: BTreeSet<Uuid>,
    reported: u64,
    /// Reads that succeeded: a session that read at least once was connected, so the next
    /// failure starts the backoff again from its shortest wait.
    reads: u64,
}

pub async fn watch(db: &str, args: &WatchArgs) -> CliResult {
    // Only the key id is kept: the secret is dropped here, so nothing below can sign.
    let key_id = key_id_of(&args.key)?;
    let mut watcher = Watcher {
        key_id,
        last_seq: None,
        to_sign: BTreeMap::new(),
        warned: BTreeSet::new(),
        reported: 0,
        reads: 0,
    };
    let dir = crate::pin::state_dir()?;
    let mut backoff = BACKOFF_MIN;
    loop {
        let reads = watcher.reads;
        match watcher.session(db, &dir, args).await {
            Ok(code) => return Ok(code),
            // Unavailable (the server restarted, the network dropped): connect again, and read
            // from the last head read, so nothing appended meanwhile is missed.
            Err(error) if error.code == EXIT_IO => {
                if watcher.reads != reads {
                    backoff = BACKOFF_MIN;
                }
                esay!(
                    "watch: {}; connecting again in {} ms",
                    error.message,
                    backoff.as_millis()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            // A ledger that fails verification, or bad input: stop and say so.
            Err(error) => return Err(error),
        }
    }
}

fn key_id_of(path: &Path) -> Result<String, CliError> {
    // A public key file (OpenSSH line or PEM) is enough; a private one is read and dropped.
    if let Ok(text) = std::fs::read_to_string(path) {
        if let Ok(public) = crate::crypto::keys::PublicKey::parse(&text) {
            return Ok(public.key_id().to_string());
        }
    }
    Ok(load_secret(path)?.public().key_id().to_string())
}

impl Watcher {
    /// One connection: listens first (so an append between a read and the wait still wakes
    /// it), then reads and waits until `--count` events were reported or the connection fails.
    async fn session(&mut self, db: &str, dir: &Path, args: &WatchArgs) -> CliResult {
        let (store, ledger_id) = super::open_ledger(db).await?;
        let result = self.follow(&store, ledger_id, dir, args).await;
        store.close().await;
        result
    }

    async fn follow(
        &mut self,
        store: &Store,
        ledger_id: Uuid,
        dir: &Path,
        args: &WatchArgs,
    ) -> CliResult {
        let mut hints = store.append_hints().await?;
        let poll = Duration::from_millis(args.poll_ms);
        loop {
            let reports = {
                let mut verified = crate::pin::sync(store, ledger_id, dir).await?;
                let ledger = Ledger::new(store.clone(), ledger_id);
                let read = self.read(&ledger, &mut verified, args).await;
                verified.close().await;
                read?
            };
            for (report, proposal) in reports {
                self.emit(&report, proposal, ledger_id, args)?;
                if args.count.is_some_and(|count| self.reported >= count) {
                    return Ok(EXIT_OK);
                }
            }
            hints.wait(ledger_id, poll, LISTEN_FALLBACK).await?;
        }
    }

    /// What concerns this key between the last head read and the one just verified, each
    /// with its proposal as `show --json` prints it.
    async fn read(
        &mut self,
        ledger: &Ledger,
        verified: &mut Verified,
        args: &WatchArgs,
    ) -> Result<Vec<(Report, Value)>, CliError> {
        let now = verified.ledger_clock;
        let governance = ledger.governance().await.map_err(service_error)?;
        let mut reports = Vec::new();
        match self.last_seq {
            // The first read: what this key may sign now.
            None => {
                for state in verified_states(ledger, verified, Some("pending")).await? {
                    if may_still_sign(&state, &governance, now, &self.key_id) {
                        self.to_sign.insert(state.id, state.expires_at);
                        reports.push(Report {
                            event: "to_sign",
                            seq: state.first_seq,
                            state,
                        });
                    }
                }
            }
            Some(last) if verified.seq > last => {
                for id in touched(&ledger.store, ledger.ledger_id, last, verified.seq).await? {
                    // Read back through the pin: only verified events are reported.
                    let events = verified.stream(&ledger.store, &id.to_string()).await?;
                    let state = ProposalState::from_stream(&events).map_err(|refusal| {
                        CliError::new(
                            super::EXIT_CHECK_FAILED,
                            format!("proposal {id}: {refusal}"),
                        )
                    })?;
                    for event in events.iter().filter(|e| e.seq > last) {
                        let what = match event.event_type.as_str() {
                            "proposal.recorded"
                                if may_still_sign(&state, &governance, now, &self.key_id) =>
                            {
                                self.to_sign.insert(state.id, state.expires_at);
                                "to_sign"
                            }
                            "proposal.committed" => "committed",
                            "proposal.rejected" => "vetoed",
                            "proposal.withdrawn" => "withdrawn",
                            _ => continue,
                        };
                        reports.push(Report {
                            event: what,
                            seq: event.seq,
                            state: state.clone(),
                        });
                    }
                    if !may_still_sign(&state, &governance, now, &self.key_id) {
                        self.forget(state.id);
                    }
                }
            }
            Some(_) => {}
        }
        // Expiring soon: checked on every read (no event announces it), once per proposal.
        let warning = chrono::Duration::minutes(i64::from(args.expiry_warning_minutes));
        let due: Vec<Uuid> = self
            .to_sign
            .iter()
            .filter(|(id, expires_at)| **expires_at - now <= warning && !self.warned.contains(id))
            .map(|(id, _)| *id)
            .collect();
        let mut warned = Vec::new();
        for id in due {
            let Some(state) = verified.proposal(&ledger.store, id).await? else {
                continue;
            };
            if may_still_sign(&state, &governance, now, &self.key_id) {
                warned.push(id);
                reports.push(Report {
                    event: "expires_soon",
                    seq: verified.seq,
                    state,
                });
            } else {
                self.forget(id);
            }
        }
        let history = history(ledger, verified).await?;
        // Remembered only once the whole read succeeded: a read that fails is made again from
        // the same head, and reports the same events.
        self.warned.extend(warned);
        self.last_seq = Some(verified.seq);
        self.reads += 1;
        Ok(reports
            .into_iter()
            .map(|report| {
                let json = proposal_json(&governance, &history, &report.state, now, false);
                (report, json)
            })
            .collect())
    }

    /// A proposal this key can no longer sign (signed, closed, expired): no longer followed,
    /// so what the watch remembers stays the size of the key's inbox.
    fn forget(&mut self, id: Uuid) {
        self.to_sign.remove(&id);
        self.warned.remove(&id);
    }

    fn emit(
        &mut self,
        report: &Report,
        proposal: Value,
        ledger_id: Uuid,
        args: &WatchArgs,
    ) -> Result<(), CliError> {
        self.reported += 1;
        let event = json!({
            "event": report.event,
            "seq": report.seq,
            "ledger_id": ledger_id.to_string(),
            "proposal": proposal,
        });
        if let Some(command) = &args.exec {
            run_command(command, report.event, &event);
            return Ok(());
        }
        if args.json {
            println!("{event}");
            return Ok(());
        }
        let state = &report.state;
        let short = short_id(&state.id);
        let kind = state.recorded.terms.kind.as_str();
        match report.event {
            "to_sign" => say!(
                "to sign       {short}  {kind}  expires {}  {}",
                state.recorded.terms.expires_at,
                summary(state)
            ),
            "expires_soon" => say!(
                "expires soon  {short}  {kind}  expires {}  {}",
                state.recorded.terms.expires_at,
                summary(state)
            ),
            "vetoed" => say!(
                "vetoed        {short}  {kind}  by {}: {}",
                event["proposal"]["rejected_by"].as_str().unwrap_or("?"),
                state.reject_reason.as_deref().unwrap_or("")
            ),
            other => say!(
                "{:<13} {short}  {kind}  {}",
                other.replace('_', " "),
                summary(state)
            ),
        }
        Ok(())
    }
}

/// The proposals whose streams the events after `last` (up to `head`) touched, read from the
/// database as a hint of where to look: each is then read through the pin.
async fn touched(
    store: &Store,
    ledger_id: Uuid,
    last: u64,
    head: u64,
) -> Result<BTreeSet<Uuid>, CliError> {
    let mut ids = BTreeSet::new();
    let mut after = last;
    while after < head {
        let page = store.read_page(ledger_id, after, HINT_PAGE_ROWS).await?;
        let Some(end) = page.last().map(|event| event.seq) else {
            break;
        };
        for event in page.iter().filter(|event| event.seq <= head) {
            if let Ok(id) = Uuid::parse_str(&event.stream_id) {
                ids.insert(id);
            }
        }
        after = end;
    }
    Ok(ids)
}

/// Runs `command` with `sh -c`, the event as one JSON line on its standard input and its name
/// in `ROLLBOOK_WATCH_EVENT`: nothing from the ledger is put on a command line. A command that
/// fails is reported on stderr and the watch goes on.
fn run_command(command: &str, name: &str, event: &Value) {
    use std::io::Write;
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("ROLLBOOK_WATCH_EVENT", name)
        .stdin(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            esay!("watch: cannot run --exec command: {error}");
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input closes the pipe: not an error of the watch.
        let _ = writeln!(stdin, "{event}");
    }
    match child.wait() {
        Ok(status) if status.success() => {}
        Ok(status) => esay!("watch: --exec command ended with {status}"),
        Err(error) => esay!("watch: --exec command: {error}"),
    }
}
