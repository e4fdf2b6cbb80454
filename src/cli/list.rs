//! `rollbook list`: the proposals newest first, in columns a risk officer reads at a glance.
//! It reads only what it shows: a window of verified projection rows (compared with the
//! database's rows in the same window), judged on their own, then the streams of those rows.

use std::cmp::Reverse;

use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use serde_json::Value;

use super::display::shown;
use super::proposals::{close, open, verified_governance};
use super::views::{name_of, proposal_json, short_id, summary_of, History};
use super::{CliError, CliResult, EXIT_OK};
use crate::domain::approval::{ProposalState, Status};
use crate::domain::envelope::{format_timestamp, parse_timestamp};
use crate::domain::events::ProposalKind;
use crate::domain::governance::Governance;
use crate::domain::projection::ProposalRow;
use crate::domain::proposal::shown_status;
use crate::pin::Verified;
use crate::service::Ledger;
use crate::sizing::render::usd;
use crate::sizing::Proposal;
use crate::store::ProposalWindow;

/// Rows read per page while a status filter skips rows that only look like a match by their
/// stored status (a pending row past its expiry shows as expired).
const PAGE_ROWS_MAX: usize = 512;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only proposals in this status: pending, committed, executed, execution_breach, failed,
    /// rejected, withdrawn, expired (as shown now: a pending proposal past its expiry is expired).
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// The N newest proposals (all when absent).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Only proposals created at or after DATE: `2026-05-07` (midnight UTC) or an RFC 3339 time.
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn list(db: &str, args: &ListArgs) -> CliResult {
    let wanted = match &args.status {
        None => None,
        Some(text) => Some(Status::parse(text).ok_or_else(|| {
            CliError::bad_input(format!(
                "--status {text:?}: use pending, committed, executed, execution_breach, failed, rejected, withdrawn or expired"
            ))
        })?),
    };
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let (ledger, mut verified) = open(db).await?;
    let (governance, history) = verified_governance(&ledger, &verified).await?;
    // Expiry on the ledger's clock, read by the sync.
    let now = verified.ledger_clock;
    let filter = Filter {
        wanted,
        since: since.as_deref(),
        limit: args.limit,
        now,
        governance: &governance,
    };
    let rows = newest_rows(&ledger, &mut verified, &filter).await?;
    let states = verified.states(&ledger.store, &rows).await?;
    close(&ledger, &verified).await;
    if args.json {
        let array: Vec<Value> = states
            .iter()
            .map(|s| proposal_json(&governance, &history, s, now, false))
            .collect();
        println!("{}", Value::Array(array));
    } else if states.is_empty() {
        println!("no proposals");
    } else {
        let table = table(&governance, &history, &states, now);
        for line in render(&table, super::display::terminal_columns()) {
            println!("{line}");
        }
    }
    Ok(EXIT_OK)
}

/// `--since`: a date (midnight UTC) or an RFC 3339 time, as the canonical timestamp the
/// projection's `created_at` is compared with (canonical timestamps sort as text).
fn parse_since(text: &str) -> Result<String, CliError> {
    let at = match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(date) => date.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
        Err(_) => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
    };
    at.map(format_timestamp).ok_or_else(|| {
        CliError::bad_input(format!(
            "--since {text:?}: give a date (2026-05-07) or an RFC 3339 time (2026-05-07T14:40:00Z)"
        ))
    })
}

/// What `list` asks for.
struct Filter<'a> {
    wanted: Option<Status>,
    since: Option<&'a str>,
    limit: Option<usize>,
    now: DateTime<Utc>,
    governance: &'a Governance,
}

impl Filter<'_> {
    /// The stored statuses a shown status comes from: an expired proposal may still be stored
    /// as pending (expiry and a replaced set or policy write no event).
    fn stored(&self) -> Vec<Option<&'static str>> {
        match self.wanted {
            None => vec![None],
            Some(Status::Expired) => vec![Some("expired"), Some("pending")],
            Some(status) => vec![Some(status.as_str())],
        }
    }

    /// Whether a verified row shows as the wanted status now, judged by the same rule as a
    /// folded proposal (`shown_status`) from the columns the row carries.
    fn keeps(&self, row: &ProposalRow) -> bool {
        let Some(wanted) = self.wanted else {
            return true;
        };
        let (Some(stored), Some(expires_at)) =
            (Status::parse(&row.status), parse_timestamp(&row.expires_at))
        else {
            // Verified rows always read back; one that does not is not the wanted one.
            return false;
        };
        let bound = (
            row.signer_set_version.max(0) as u64,
            row.policy_version.max(0) as u64,
        );
        shown_status(stored, expires_at, Some((bound, self.governance)), self.now) == wanted
    }
}

/// The newest verified rows the filter keeps, at most `limit`, newest first.
async fn newest_rows(
    ledger: &Ledger,
    verified: &mut Verified,
    filter: &Filter<'_>,
) -> Result<Vec<ProposalRow>, CliError> {
    let mut rows = Vec::new();
    for status in filter.stored() {
        rows.extend(matching_rows(ledger, verified, filter, status).await?);
    }
    rows.sort_by_key(|row| Reverse(row.first_seq));
    rows.truncate(filter.limit.unwrap_or(usize::MAX));
    Ok(rows)
}

/// The newest verified rows of one stored status that the filter keeps, read a page at a time
/// until `limit` are kept (all in one read without a limit).
async fn matching_rows(
    ledger: &Ledger,
    verified: &mut Verified,
    filter: &Filter<'_>,
    status: Option<&str>,
) -> Result<Vec<ProposalRow>, CliError> {
    let wanted = filter.limit.unwrap_or(usize::MAX);
    let page = filter.limit.map(|n| n.clamp(1, PAGE_ROWS_MAX) as u64);
    let mut kept = Vec::new();
    let mut before_seq = None;
    loop {
        let window = ProposalWindow {
            status,
            since: filter.since,
            before_seq,
            limit: page,
        };
        let rows = verified.proposal_window(&ledger.store, &window).await?;
        let more = page.is_some_and(|page| rows.len() as u64 == page);
        before_seq = rows.last().map(|row| row.first_seq.max(0) as u64);
        kept.extend(rows.into_iter().filter(|row| filter.keeps(row)));
        if kept.len() >= wanted || !more {
            kept.truncate(wanted);
            return Ok(kept);
        }
    }
}

/// One line of the table, every cell already `shown` (escaped).
struct Row {
    cells: Vec<String>,
    note: String,
}

const HEADERS: [&str; 9] = [
    "id",
    "kind",
    "status",
    "verdict",
    "proposer",
    "created UTC",
    "signed",
    "contracts",
    "outlay USD",
];
/// Numbers are right-aligned.
const RIGHT_ALIGNED: [bool; 9] = [false, false, false, false, false, false, true, true, true];
/// A proposer's name longer than this is cut (a key id of a set the ledger no longer names).
const PROPOSER_CHARS_MAX: usize = 16;
/// The note keeps at least this many characters however narrow the terminal.
const NOTE_CHARS_MIN: usize = 12;

fn table(
    governance: &Governance,
    history: &History,
    states: &[ProposalState],
    now: DateTime<Utc>,
) -> Vec<Row> {
    states
        .iter()
        .map(|state| {
            let view = proposal_json(governance, history, state, now, false);
            let terms = &state.recorded.terms;
            // A partially executed roll stays `committed`; the list says so.
            let status = match view["execution"].as_str() {
                Some("partially executed") => "committed, partial".to_string(),
                Some("execution breach") => "execution breach".to_string(),
                _ => view["status"].as_str().unwrap_or("?").to_string(),
            };
            let (contracts, outlay, note) = match terms.kind {
                ProposalKind::Roll => match Proposal::from_toml_str(&terms.body) {
                    Ok(roll) => (
                        roll.next_layer.contracts.to_string(),
                        usd(roll.requested_outlay_usd()),
                        roll.roll.note.clone(),
                    ),
                    Err(_) => ("-".into(), "-".into(), "(unreadable body)".into()),
                },
                kind => (
                    "-".into(),
                    "-".into(),
                    summary_of(kind, &terms.body, terms.policy_version),
                ),
            };
            let proposer = cut(
                &name_of(&history.sets, state.proposer()),
                PROPOSER_CHARS_MAX,
            );
            let cells = [
                short_id(&state.id),
                terms.kind.as_str().to_string(),
                status,
                terms.verdict.clone().unwrap_or_else(|| "-".into()),
                proposer,
                format_minute(state.created_at),
                format!("{}/{}", state.cosignatures.len(), view["threshold"]),
                contracts,
                outlay,
            ];
            Row {
                cells: cells.iter().map(|cell| shown(cell).into_owned()).collect(),
                note: shown(&note).into_owned(),
            }
        })
        .collect()
}

/// The table as lines: columns as wide as their widest cell, the note last and cut to what
/// is left of `columns` (not cut when the width is unknown: a pipe gets every character).
fn render(rows: &[Row], columns: Option<usize>) -> Vec<String> {
    let mut widths: Vec<usize> = HEADERS.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(&row.cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String], note: &str| {
        let mut text = String::new();
        for ((cell, width), right) in cells.iter().zip(&widths).zip(RIGHT_ALIGNED) {
            let pad = " ".repeat(width - cell.chars().count());
            if right {
                text.push_str(&format!("{pad}{cell}  "));
            } else {
                text.push_str(&format!("{cell}{pad}  "));
            }
        }
        let room = columns.map(|c| c.saturating_sub(text.chars().count()).max(NOTE_CHARS_MIN));
        text.push_str(&match room {
            Some(room) => cut(note, room),
            None => note.to_string(),
        });
        text.trim_end().to_string()
    };
    let header: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    let mut lines = vec![line(&header, "note")];
    lines.extend(rows.iter().map(|row| line(&row.cells, &row.note)));
    lines
}

/// `text` in at most `chars` characters, its end replaced by `…` when cut.
fn cut(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_string();
    }
    let mut out: String = text.chars().take(chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `2026-05-07 14:40`: a time a reader compares at a glance (UTC).
fn format_minute(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(note: &str) -> Row {
        Row {
            cells: [
                "0123456789ab",
                "roll",
                "pending",
                "pass",
                "bob",
                "2026-05-07 14:40",
                "1/2",
                "9",
                "5,310.00",
            ]
            .iter()
            .map(|c| c.to_string())
            .collect(),
            note: note.into(),
        }
    }

    #[test]
    fn the_note_is_cut_to_the_width_and_kept_whole_without_one() {
        let note = "a long note about why this roll is sized as it is ".repeat(3);
        let lines = render(&[row(&note)], Some(120));
        assert!(lines.iter().all(|l| l.chars().count() <= 120), "{lines:?}");
        assert!(lines[1].ends_with('…'));
        let whole = render(&[row(&note)], None);
        assert!(whole[1].ends_with(note.trim_end()));
    }

    #[test]
    fn numbers_align_right_under_their_header() {
        let lines = render(&[row("n")], None);
        let header_end = lines[0].find("outlay USD").unwrap() + "outlay USD".len();
        let cell_end = lines[1].find("5,310.00").unwrap() + "5,310.00".len();
        assert_eq!(header_end, cell_end, "{lines:#?}");
    }

    #[test]
    fn since_takes_a_date_or_a_time() {
        assert_eq!(
            parse_since("2026-05-07").unwrap(),
            "2026-05-07T00:00:00.000000Z"
        );
        assert_eq!(
            parse_since("2026-05-07T16:40:00+02:00").unwrap(),
            "2026-05-07T14:40:00.000000Z"
        );
        assert!(parse_since("May 7").is_err());
    }
}
