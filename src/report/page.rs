//! The HTML report of an export: one self-contained page (inline CSS under a
//! Content-Security-Policy that allows nothing else: no script, no network, no font), charts as
//! inline SVG, print CSS that repeats the verdict at the top of every printed page. Pure: the
//! caller hands the export's facts, its SHA-256 and the verifier's verdict.

use std::fmt::Write as _;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::facts::{Adopted, Adoption, Facts};
use super::gather::Gathered;
use super::html::{code, escape, lines, usd, Cell, Table};
use super::rows::{Instant, ProposalRow};
use super::svg::{time_chart, Point, Series};
use crate::audit::auditor::AuditSummary;
use crate::domain::approval::Status;
use crate::domain::envelope::parse_timestamp;
use crate::domain::events::ProposalKind;
use crate::sizing::render::failure_in_figures;

/// What the verifier said of the export.
pub enum Verdict {
    Valid(Box<AuditSummary>),
    /// The first failing seq and why (a broken rule, or not the ledger `--genesis` names).
    Invalid {
        seq: u64,
        reason: String,
    },
    /// Not an export that can be verified (no header, an unreadable line, a partial export).
    Unreadable(String),
}

impl Verdict {
    pub fn is_valid(&self) -> bool {
        matches!(self, Verdict::Valid(_))
    }

    /// The banner line: `VALID ...` or `INVALID ...` with the reason.
    pub fn headline(&self) -> String {
        match self {
            Verdict::Valid(summary) => format!(
                "VALID: all {} events verify (chain, signatures, governance, sizing, executions, Merkle root)",
                summary.events
            ),
            Verdict::Invalid { seq, reason } => {
                format!("INVALID at seq {seq}: {reason}")
            }
            Verdict::Unreadable(reason) => format!("INVALID: the export cannot be verified: {reason}"),
        }
    }
}

/// The export file as read.
pub struct ExportFile {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

/// How the report was made: shown on it, so a reader can make it again.
pub struct Parameters {
    pub generated_at: DateTime<Utc>,
    pub rollbook_version: String,
    /// `--genesis`: the genesis hash the ledger was checked against, if any.
    pub genesis_anchor: Option<String>,
}

pub struct ReportInput<'a> {
    pub file: ExportFile,
    pub gathered: &'a Gathered,
    pub verdict: Verdict,
    pub parameters: Parameters,
}

/// The stylesheet: its SHA-256 is the only style the page's policy allows.
const CSS: &str = include_str!("report.css");

/// The whole page.
pub fn render(input: &ReportInput) -> String {
    let facts = &input.gathered.facts;
    let now = input
        .gathered
        .last_event_at
        .as_deref()
        .and_then(parse_timestamp)
        .unwrap_or(input.parameters.generated_at);
    let rows: Vec<ProposalRow> = facts
        .proposals
        .iter()
        .map(|state| ProposalRow::new(state, &facts.history, facts.governance.as_ref(), now))
        .collect();
    let ledger_id = input
        .gathered
        .header
        .as_ref()
        .map(|h| h.ledger_id.clone())
        .unwrap_or_else(|| "(unknown)".into());
    let verdict_class = if input.verdict.is_valid() {
        "valid"
    } else {
        "invalid"
    };
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Audit report of ledger {}</h1>",
        escape(&ledger_id)
    );
    body.push_str(&export_section(input));
    body.push_str(&verification_section(input));
    body.push_str(&parameters_section(input, now));
    body.push_str(&governance_section(facts));
    body.push_str(&charts_section(&rows));
    body.push_str(&proposals_section(&rows));
    body.push_str(&exceptions_section(facts, &rows));
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><style>{CSS}</style></head><body>\
<table class=\"page\"><thead><tr><td><div class=\"banner {verdict_class}\" role=\"status\">{banner}</div></td></tr></thead>\
<tbody><tr><td><main>{body}</main></td></tr></tbody></table></body></html>\n",
        csp = content_security_policy(),
        title = escape(&format!(
            "rollbook report: ledger {ledger_id}: {}",
            if input.verdict.is_valid() { "VALID" } else { "INVALID" }
        )),
        banner = escape(&input.verdict.headline()),
    )
}

/// Nothing but this page's own stylesheet: no script, no connection, no image or font from
/// anywhere (the charts are inline SVG, which needs no source).
fn content_security_policy() -> String {
    let digest = Sha256::digest(CSS.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest);
    format!("default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'")
}

fn key_values(pairs: &[(&str, String)]) -> String {
    let mut table = Table::new("facts", &["", ""]);
    for (key, value) in pairs {
        table.row(
            None,
            None,
            vec![Cell::Text(key.to_string()), Cell::Markup(value.clone())],
        );
    }
    table.finish()
}

fn export_section(input: &ReportInput) -> String {
    let header = input.gathered.header.as_ref();
    let checkpoint = input.gathered.checkpoint.as_ref();
    let signed = input.gathered.signed_checkpoint.as_ref();
    let or_missing = |value: Option<String>| match value {
        Some(value) => code(&value),
        None => "<em>not in the file</em>".into(),
    };
    let pairs = [
        ("file", escape(&input.file.path)),
        ("SHA-256 of the file", code(&input.file.sha256)),
        ("size", format!("{} bytes", input.file.bytes)),
        ("ledger id", or_missing(header.map(|h| h.ledger_id.clone()))),
        (
            "genesis hash",
            or_missing(header.map(|h| h.genesis_hash.clone())),
        ),
        (
            "exported at",
            or_missing(header.map(|h| h.exported_at.clone())),
        ),
        (
            "exported by",
            or_missing(header.map(|h| format!("rollbook {}", h.rollbook_version))),
        ),
        (
            "checkpoint: tree size",
            or_missing(checkpoint.map(|c| c.tree_size.to_string())),
        ),
        (
            "checkpoint: head hash",
            or_missing(checkpoint.map(|c| c.head_hash.clone())),
        ),
        (
            "checkpoint: Merkle root",
            or_missing(checkpoint.map(|c| c.merkle_root.clone())),
        ),
        (
            "last signed checkpoint",
            format!(
                "{}{}",
                or_missing(signed.map(|s| format!("tree size {}", s.tree_size))),
                uncovered_tail(
                    signed.map(|s| s.tree_size),
                    checkpoint.map(|c| c.tree_size)
                )
            ),
        ),
        (
            "its signed note",
            signed.map_or_else(
                || "<em>none</em>".into(),
                // A line each, breaking anywhere: a signature line is one long word, and a
                // page wider than the paper would clip the INVALID banner when printed.
                |s| s.note.lines().map(code).collect::<Vec<_>>().join("<br>"),
            ),
        ),
        (
            "completeness (W4-W7)",
            "<strong>not checked by this report</strong>: whether a signed checkpoint of exactly the export's size is cosigned by a witness quorum is checked by <code>rollbook verify FILE --witnesses POLICY</code>".into(),
        ),
    ];
    format!(
        "<section id=\"export\"><h2>The export</h2>{}</section>",
        key_values(&pairs)
    )
}

/// A warning when the last signed checkpoint covers fewer events than the export holds: the
/// events after it are not covered by any signed checkpoint in the file.
fn uncovered_tail(signed: Option<u64>, exported: Option<u64>) -> String {
    match (signed, exported) {
        (Some(signed), Some(exported)) if signed < exported => format!(
            " <strong>below the export's tree size {exported}: its last {} event(s) are not covered by a signed checkpoint</strong>",
            exported - signed
        ),
        _ => String::new(),
    }
}

fn verification_section(input: &ReportInput) -> String {
    let class = if input.verdict.is_valid() {
        "valid"
    } else {
        "invalid"
    };
    let mut html = format!(
        "<section id=\"verification\"><h2>Verification</h2><p class=\"verdict {class}\">{}</p>",
        escape(&input.verdict.headline())
    );
    match &input.verdict {
        Verdict::Valid(summary) => {
            let proposals: Vec<String> = summary
                .proposals
                .iter()
                .map(|(status, n)| format!("{status} {n}"))
                .collect();
            let pairs = [
                ("events", summary.events.to_string()),
                ("bound by signatures", signed_through_text(summary.signed_through_seq, summary.events)),
                ("proposals", escape(&proposals.join(", "))),
                ("co-signatures", format!("{} (each strict-valid)", summary.signatures)),
                ("executions", format!("{} recorded, {} in breach", summary.executions, summary.execution_breaches)),
                ("signer set in force", escape(&format!("v{}: {} of {} ({})", summary.signer_set_version, summary.threshold, summary.signers.len(), summary.signers.join(", ")))),
                ("policy in force", format!("v{} {}", summary.policy_version, code(&summary.policy_hash))),
                ("head hash", code(&summary.head_hash)),
                ("Merkle root", code(&summary.merkle_root)),
            ];
            html.push_str(&key_values(&pairs));
        }
        Verdict::Invalid { .. } | Verdict::Unreadable(_) => html.push_str(
            "<p>Nothing below is verified: it is what the file says, up to where it could be read. Do not rely on it.</p>",
        ),
    }
    if let Some(reason) = &input.gathered.unreadable {
        let _ = write!(
            html,
            "<p>The file could not be read past: {}</p>",
            escape(reason)
        );
    }
    if let Some((seq, reason)) = &input.gathered.facts.stopped {
        let _ = write!(
            html,
            "<p>The facts below stop before seq {seq}: {}</p>",
            escape(reason)
        );
    }
    html.push_str("</section>");
    html
}

/// How far signatures bind the history (A11), as `verify` says it: the rest only hashes hold.
fn signed_through_text(signed: u64, events: u64) -> String {
    if signed >= events {
        return format!("events 1 to {signed}");
    }
    format!(
        "events 1 to {signed}; the {} after them only by their hashes (without a cosigned checkpoint of this size, some may have been removed or reordered)",
        events - signed
    )
}

fn parameters_section(input: &ReportInput, now: DateTime<Utc>) -> String {
    let parameters = &input.parameters;
    let pairs = [
        ("generated at", escape(&Instant::new(&crate::domain::envelope::format_timestamp(parameters.generated_at)).utc_seconds()) + " UTC"),
        ("generated by", escape(&format!("rollbook {} (`rollbook report`)", parameters.rollbook_version))),
        ("input", escape(&input.file.path)),
        ("verification", "the checks of <code>rollbook verify FILE</code>, every event replayed from genesis".into()),
        ("identity", match &parameters.genesis_anchor {
            Some(hash) => format!("checked against --genesis {}", code(hash)),
            None => "NOT CHECKED: no --genesis given; compare the genesis hash and key ids above with those you hold".into(),
        }),
        ("statuses as of", escape(&format!("{} UTC, the last event's time (as verify counts them)", now.format("%Y-%m-%d %H:%M:%S")))),
        ("times", "UTC; recorded to the microsecond in the export".into()),
        ("amounts", "USD; outlay = contracts x premium x multiplier".into()),
    ];
    format!(
        "<section id=\"parameters\"><h2>Parameters of this report</h2>{}</section>",
        key_values(&pairs)
    )
}

fn when(adoption: &Adoption) -> String {
    format!(
        "seq {}, {} UTC",
        adoption.seq,
        Instant::new(&adoption.recorded_at).utc_seconds()
    )
}

fn governance_section(facts: &Facts) -> String {
    let mut sets = Table::new(
        "governance",
        &[
            "version",
            "in force from",
            "by motion",
            "threshold",
            "signers (role, key id)",
        ],
    );
    let mut policies = Table::new(
        "governance",
        &[
            "version",
            "in force from",
            "by motion",
            "policy hash",
            "changes",
        ],
    );
    for adoption in &facts.adoptions {
        let motion = adoption
            .motion_id
            .as_deref()
            .map(code)
            .unwrap_or_else(|| "genesis".into());
        match &adoption.what {
            Adopted::SignerSet(set) => {
                let signers: Vec<String> = set
                    .signers
                    .iter()
                    .map(|s| {
                        format!(
                            "{} ({}, {})",
                            s.name,
                            s.role.as_deref().unwrap_or("no role"),
                            s.key_id
                        )
                    })
                    .collect();
                sets.row(
                    None,
                    None,
                    vec![
                        Cell::Figure(format!("v{}", set.version)),
                        Cell::Text(when(adoption)),
                        Cell::Markup(motion),
                        Cell::Text(format!("{} of {}", set.threshold, set.signers.len())),
                        Cell::Markup(lines(&signers)),
                    ],
                );
            }
            Adopted::Policy { version, hash } => {
                let changes = adoption
                    .motion_id
                    .as_deref()
                    .and_then(|id| uuid::Uuid::parse_str(id).ok())
                    .and_then(|id| facts.proposal(&id))
                    .map(|state| facts.history.motion_lines(state))
                    .unwrap_or_default();
                policies.row(
                    None,
                    None,
                    vec![
                        Cell::Figure(format!("v{version}")),
                        Cell::Text(when(adoption)),
                        Cell::Markup(motion),
                        Cell::Markup(code(hash)),
                        Cell::Markup(lines(&changes)),
                    ],
                );
            }
        }
    }
    format!(
        "<section id=\"governance\"><h2>Signer sets and policies over time</h2><h3>Signer sets</h3>{}<h3>Policies</h3>{}</section>",
        sets.finish(),
        policies.finish()
    )
}

fn charts_section(rows: &[ProposalRow]) -> String {
    let rolls = || {
        rows.iter()
            .filter_map(|row| Some((row, row.roll.as_ref()?, row.created.at?)))
    };
    let requested = rolls()
        .map(|(row, roll, at)| Point {
            at,
            value: roll.outlay_usd,
            tip: format!(
                "{}: {} contracts, outlay {} USD ({})",
                row.proposal_id,
                roll.contracts_requested,
                usd(roll.outlay_usd),
                row.status
            ),
        })
        .collect();
    let allowed = rolls()
        .filter_map(|(row, roll, at)| {
            Some(Point {
                at,
                value: roll.outlay_max_usd?,
                tip: format!(
                    "{}: at most {} contracts, {} USD",
                    row.proposal_id,
                    roll.contracts_max?,
                    usd(roll.outlay_max_usd?)
                ),
            })
        })
        .collect();
    let outlay = time_chart(
        "Outlay requested against the largest outlay the guardrails allowed, by time of recording",
        "USD",
        &[
            Series {
                name: "largest allowed".into(),
                class: "allowed",
                joined: true,
                points: allowed,
            },
            Series {
                name: "requested".into(),
                class: "requested",
                joined: false,
                points: requested,
            },
        ],
        100.0,
        |v| usd(v).trim_end_matches(".00").to_string(),
    );
    let commit = time_chart(
        "Time from recording to commit, by time of recording",
        "minutes",
        &[Series {
            name: "committed proposals".into(),
            class: "commit",
            joined: false,
            points: rows
                .iter()
                .filter_map(|row| {
                    let seconds = row.seconds_to_commit()?;
                    Some(Point {
                        at: row.created.at?,
                        value: seconds as f64 / 60.0,
                        tip: format!(
                            "{} ({}): committed {:.1} minutes after recording",
                            row.proposal_id,
                            row.kind.as_str(),
                            seconds as f64 / 60.0
                        ),
                    })
                })
                .collect(),
        }],
        1.0,
        |v| format!("{v}"),
    );
    format!("<section id=\"charts\"><h2>Charts</h2>{outlay}{commit}</section>")
}

fn proposals_section(rows: &[ProposalRow]) -> String {
    let mut table = Table::new(
        "proposals",
        &[
            "proposal",
            "kind",
            "status",
            "verdict",
            "proposer",
            "recorded (UTC)",
            "closed (UTC)",
            "signers (UTC)",
            "contracts requested / max",
            "outlay USD",
            "largest allowed USD",
            "budget left USD",
            "failed checks",
            "what it asks",
        ],
    );
    for row in rows {
        let roll = row.roll.as_ref();
        let signers: Vec<String> = row
            .signers
            .iter()
            .map(|s| format!("{} {}", s.name, s.at.utc_seconds()))
            .chain(
                row.threshold
                    .map(|k| format!("({} of {k} co-signatures)", row.signers.len())),
            )
            .collect();
        let failed: Vec<String> = roll
            .map(|r| {
                r.failed_checks()
                    .map(|c| format!("{}: {} (limit {})", c.id, figure(c.value), figure(c.limit)))
                    .collect()
            })
            .unwrap_or_default();
        let asks = match roll {
            Some(roll) => {
                let mut asks = vec![format!(
                    "{} x strike {} exp {} at {} USD on closed layer {}",
                    roll.contracts_requested,
                    roll.strike,
                    roll.expiry,
                    roll.premium_usd,
                    roll.closed_layer_id.as_deref().unwrap_or("(no id)")
                )];
                if !roll.note.is_empty() {
                    asks.push(format!("note: {}", roll.note));
                }
                asks
            }
            None => row.changes.clone(),
        };
        let mut status = row.status.as_str().to_string();
        if let Some(execution) = row.execution {
            status = format!("{status} ({execution})");
        }
        if let (Some(by), Some(reason)) = (&row.vetoed_by, &row.veto_reason) {
            status = format!("{status}: vetoed by {by}: {reason}");
        }
        let class = match row.status {
            Status::Failed | Status::Rejected | Status::ExecutionBreach => Some("exception"),
            _ => None,
        };
        table.row(
            Some(&format!("p-{}", row.proposal_id)),
            class,
            vec![
                Cell::Markup(code(&row.proposal_id)),
                Cell::Text(row.kind.as_str().into()),
                Cell::Text(status),
                Cell::Text(row.verdict.clone().unwrap_or_default()),
                Cell::Text(row.proposer.clone()),
                Cell::Text(row.created.utc_seconds()),
                Cell::Text(
                    row.closed
                        .as_ref()
                        .map(Instant::utc_seconds)
                        .unwrap_or_default(),
                ),
                Cell::Markup(lines(&signers)),
                Cell::Figure(
                    roll.map(|r| {
                        format!(
                            "{} / {}",
                            r.contracts_requested,
                            r.contracts_max.map(|n| n.to_string()).unwrap_or("?".into())
                        )
                    })
                    .unwrap_or_default(),
                ),
                Cell::Figure(roll.map(|r| usd(r.outlay_usd)).unwrap_or_default()),
                Cell::Figure(
                    roll.and_then(|r| r.outlay_max_usd)
                        .map(usd)
                        .unwrap_or_default(),
                ),
                Cell::Figure(
                    roll.and_then(|r| r.budget_left_usd)
                        .map(usd)
                        .unwrap_or_default(),
                ),
                Cell::Markup(lines(&failed)),
                Cell::Markup(lines(&asks)),
            ],
        );
    }
    format!(
        "<section id=\"proposals\"><h2>Every proposal ({})</h2>{}</section>",
        rows.len(),
        table.finish()
    )
}

/// A guardrail figure to four decimals, trailing zeros dropped (`0.4522`, `18`).
fn figure(value: f64) -> String {
    let text = format!("{value:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn exceptions_section(facts: &Facts, rows: &[ProposalRow]) -> String {
    let mut html = String::from("<section id=\"exceptions\"><h2>Exceptions</h2>");
    let mut list = |title: &str, id: &str, items: Vec<String>| {
        let _ = write!(
            html,
            "<h3 id=\"{id}\">{} ({})</h3>",
            escape(title),
            items.len()
        );
        if items.is_empty() {
            html.push_str("<p>none</p>");
        } else {
            html.push_str("<ul>");
            for item in items {
                let _ = write!(html, "<li>{item}</li>");
            }
            html.push_str("</ul>");
        }
    };
    let of = |status: Status| rows.iter().filter(move |row| row.status == status);
    let at = |instant: Option<&Instant>| {
        instant
            .map(|i| format!("{} UTC", i.utc_seconds()))
            .unwrap_or_default()
    };
    list(
        "Failed attempts (the guardrails said no)",
        "failed",
        of(Status::Failed)
            .map(|row| {
                let checks: Vec<String> = row
                    .roll
                    .iter()
                    .flat_map(|r| r.failed_checks())
                    .map(|c| format!("{}: {}", c.id, failure_in_figures(c)))
                    .collect();
                format!(
                    "{} by {} at {}: {}",
                    code(&row.proposal_id),
                    escape(&row.proposer),
                    escape(&at(Some(&row.created))),
                    lines(&checks)
                )
            })
            .collect(),
    );
    list(
        "Vetoes",
        "vetoes",
        of(Status::Rejected)
            .map(|row| {
                format!(
                    "{} ({}) vetoed by {} at {}: {}",
                    code(&row.proposal_id),
                    row.kind.as_str(),
                    escape(row.vetoed_by.as_deref().unwrap_or("?")),
                    escape(&at(row.closed.as_ref())),
                    escape(row.veto_reason.as_deref().unwrap_or(""))
                )
            })
            .collect(),
    );
    list(
        "Expiries",
        "expiries",
        of(Status::Expired)
            .map(|row| {
                let when = match &row.closed {
                    Some(closed) => format!("recorded expired at {}", at(Some(closed))),
                    None => format!(
                        "unsigned past its expiry {} or bound to a replaced signer set or policy",
                        at(Some(&row.expires))
                    ),
                };
                format!(
                    "{} ({}) by {}: {}, {} of {} signatures",
                    code(&row.proposal_id),
                    row.kind.as_str(),
                    escape(&row.proposer),
                    escape(&when),
                    row.signers.len(),
                    row.threshold.unwrap_or(0)
                )
            })
            .collect(),
    );
    list(
        "Withdrawals",
        "withdrawals",
        of(Status::Withdrawn)
            .map(|row| {
                format!(
                    "{} ({}) withdrawn by {} at {}",
                    code(&row.proposal_id),
                    row.kind.as_str(),
                    escape(&row.proposer),
                    escape(&at(row.closed.as_ref()))
                )
            })
            .collect(),
    );
    list(
        "Governance changes",
        "governance-changes",
        facts
            .adoptions
            .iter()
            .filter(|a| a.motion_id.is_some())
            .map(|adoption| {
                let what = match &adoption.what {
                    Adopted::SignerSet(set) => format!(
                        "signer set v{} ({} of {})",
                        set.version,
                        set.threshold,
                        set.signers.len()
                    ),
                    Adopted::Policy { version, .. } => format!("policy v{version}"),
                };
                let changes = adoption
                    .motion_id
                    .as_deref()
                    .and_then(|id| rows.iter().find(|row| row.proposal_id == id))
                    .map(|row| row.changes.clone())
                    .unwrap_or_default();
                format!(
                    "{} adopted at {} by motion {}:<br>{}",
                    escape(&what),
                    escape(&when(adoption)),
                    code(adoption.motion_id.as_deref().unwrap_or("")),
                    lines(&changes)
                )
            })
            .collect(),
    );
    let mut breaches = Vec::new();
    for row in rows.iter().filter(|row| row.kind == ProposalKind::Roll) {
        let Ok(id) = uuid::Uuid::parse_str(&row.proposal_id) else {
            continue;
        };
        for execution in facts.executions.get(&id).into_iter().flatten() {
            if !execution.executed.breaches.is_empty() {
                breaches.push(format!(
                    "{} execution at seq {} ({} UTC), {} contracts filled in all:<br>{}",
                    code(&row.proposal_id),
                    execution.seq,
                    escape(&Instant::new(&execution.recorded_at).utc_seconds()),
                    execution.executed.filled_contracts,
                    lines(&execution.executed.breaches)
                ));
            }
        }
    }
    list("Execution breaches", "breaches", breaches);
    html.push_str("</section>");
    html
}
