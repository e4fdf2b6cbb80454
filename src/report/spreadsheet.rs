//! The CSV a spreadsheet opens as data (`export --format csv`): one row per proposal, RFC 4180
//! quoting by the `csv` crate. Each cell is one of three kinds: a number (written by rollbook,
//! plain decimal), a date (`YYYY-MM-DD HH:MM:SS` UTC or `YYYY-MM-DD`), or text. A text cell
//! that a spreadsheet would run as a formula or read as a number, date, time or truth value
//! starts with an apostrophe (`inert`), so it stays the text it is. Pure.

use std::io::Write;

use super::rows::{Instant, ProposalRow};

/// One cell, by what a spreadsheet should make of it.
enum Cell {
    Number(String),
    Date(String),
    Text(String),
}

/// The header, in column order (documented in README.md, "The CSV").
pub const CSV_COLUMNS: [&str; 37] = [
    "proposal_id",
    "kind",
    "status",
    "execution",
    "verdict",
    "failed_checks",
    "created_utc",
    "created_at_rfc3339",
    "expires_utc",
    "expires_at_rfc3339",
    "closed_utc",
    "closed_at_rfc3339",
    "proposer",
    "signers",
    "signed_utc",
    "threshold",
    "closed_layer_id",
    "strike",
    "expiry",
    "premium_usd",
    "contracts_requested",
    "contracts_max",
    "outlay_usd",
    "outlay_max_usd",
    "budget_left_usd",
    "note",
    "vetoed_by",
    "veto_reason",
    "changes",
    "filled_contracts",
    "executions",
    "execution_breaches",
    "policy_version",
    "policy_hash",
    "signer_set_version",
    "first_seq",
    "last_seq",
];

/// Writes the header and one row per proposal.
pub fn write_csv(rows: &[ProposalRow], out: &mut dyn Write) -> Result<(), csv::Error> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    writer.write_record(CSV_COLUMNS)?;
    for row in rows {
        let cells = cells_of(row);
        debug_assert_eq!(cells.len(), CSV_COLUMNS.len());
        writer.write_record(cells.into_iter().map(|cell| match cell {
            Cell::Number(text) | Cell::Date(text) => text,
            Cell::Text(text) => inert(&text),
        }))?;
    }
    writer.flush()?;
    Ok(())
}

fn cells_of(row: &ProposalRow) -> Vec<Cell> {
    use Cell::{Date, Number, Text};
    let number = |n: Option<String>| Number(n.unwrap_or_default());
    let usd = |n: Option<f64>| number(n.map(|n| format!("{n:.2}")));
    let exact = |n: Option<f64>| number(n.map(|n| n.to_string()));
    let roll = row.roll.as_ref();
    let times = |instant: Option<&Instant>| {
        (
            Date(instant.map(Instant::utc_seconds).unwrap_or_default()),
            Text(instant.map(|i| i.rfc3339.clone()).unwrap_or_default()),
        )
    };
    let (created_utc, created_rfc) = times(Some(&row.created));
    let (expires_utc, expires_rfc) = times(Some(&row.expires));
    let (closed_utc, closed_rfc) = times(row.closed.as_ref());
    let failed: Vec<&str> = roll
        .map(|r| r.failed_checks().map(|c| c.id.as_str()).collect())
        .unwrap_or_default();
    vec![
        Text(row.proposal_id.clone()),
        Text(row.kind.as_str().into()),
        Text(row.status.as_str().into()),
        Text(row.execution.unwrap_or_default().into()),
        Text(row.verdict.clone().unwrap_or_default()),
        Text(failed.join(" ")),
        created_utc,
        created_rfc,
        expires_utc,
        expires_rfc,
        closed_utc,
        closed_rfc,
        Text(row.proposer.clone()),
        Text(join(row.signers.iter().map(|s| s.name.clone()))),
        Text(join(row.signers.iter().map(|s| s.at.utc_seconds()))),
        number(row.threshold.map(|k| k.to_string())),
        Text(
            roll.and_then(|r| r.closed_layer_id.clone())
                .unwrap_or_default(),
        ),
        exact(roll.map(|r| r.strike)),
        Date(roll.map(|r| r.expiry.to_string()).unwrap_or_default()),
        exact(roll.map(|r| r.premium_usd)),
        number(roll.map(|r| r.contracts_requested.to_string())),
        number(roll.and_then(|r| r.contracts_max).map(|n| n.to_string())),
        usd(roll.map(|r| r.outlay_usd)),
        usd(roll.and_then(|r| r.outlay_max_usd)),
        usd(roll.and_then(|r| r.budget_left_usd)),
        Text(roll.map(|r| r.note.clone()).unwrap_or_default()),
        Text(row.vetoed_by.clone().unwrap_or_default()),
        Text(row.veto_reason.clone().unwrap_or_default()),
        Text(row.changes.join("; ")),
        Number(row.filled_contracts.to_string()),
        Number(row.executions.to_string()),
        Number(row.execution_breaches.to_string()),
        Number(row.policy_version.to_string()),
        Text(row.policy_hash.clone()),
        Number(row.signer_set_version.to_string()),
        Number(row.first_seq.to_string()),
        Number(row.last_seq.to_string()),
    ]
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join("; ")
}

/// `text` as a cell no spreadsheet turns into something else: unchanged, or with an apostrophe
/// before it when a spreadsheet would act on it (OWASP's advice for CSV injection, widened to
/// the numbers, dates and truth values a spreadsheet converts silently). The apostrophe shows
/// in the cell; the exact text is the JSONL export's.
pub fn inert(text: &str) -> String {
    if needs_apostrophe(text) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

fn needs_apostrophe(text: &str) -> bool {
    // Formula triggers: a cell starting with one of these is run as a formula by Excel,
    // LibreOffice or Google Sheets (tab and carriage return by some importers), also after
    // spaces an importer may trim.
    let triggers = ['=', '+', '-', '@', '\t', '\r', '\n'];
    if text.starts_with(triggers) || text.trim_start().starts_with(triggers) {
        return true;
    }
    let trimmed = text.trim();
    looks_numeric(trimmed) || looks_like_named_date(trimmed) || is_truth_value(trimmed)
}

/// Numbers, dates, times, fractions, percentages, currency and ISO timestamps: only digits and
/// the punctuation, signs, exponents and currency marks they are written with.
fn looks_numeric(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_digit())
        && text.chars().all(|c| {
            c.is_ascii_digit()
                || c.is_whitespace()
                || matches!(
                    c,
                    '.' | ','
                        | ':'
                        | '/'
                        | '-'
                        | '+'
                        | '%'
                        | '('
                        | ')'
                        | '$'
                        | '€'
                        | '£'
                        | '¥'
                        | 'e'
                        | 'E'
                        | 'T'
                        | 'Z'
                )
        })
}

/// `Mar 5`, `5-Mar`, `March 2026`, `Tue, 3`: month or weekday names beside numbers, and
/// nothing else, make a date to a spreadsheet.
fn looks_like_named_date(text: &str) -> bool {
    const NAMES: [&str; 19] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let is_name = |token: &str| {
        let lower = token.to_lowercase();
        lower.len() >= 3 && NAMES.iter().any(|name| name.starts_with(&lower))
    };
    let tokens: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || matches!(c, '-' | '/' | ',' | '.'))
        .filter(|token| !token.is_empty())
        .collect();
    let numeric = |token: &&str| token.chars().all(|c| c.is_ascii_digit());
    tokens.iter().any(numeric)
        && tokens.iter().any(|token| is_name(token))
        && tokens.iter().all(|token| numeric(token) || is_name(token))
}

fn is_truth_value(text: &str) -> bool {
    ["true", "false"].contains(&text.to_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::inert;

    #[test]
    fn formulas_numbers_and_dates_in_text_get_an_apostrophe() {
        for text in [
            "=HYPERLINK(\"http://x\",\"y\")",
            "+1",
            "-2",
            "@SUM(A1)",
            "\tcmd",
            "\rcmd",
            "  =1+1",
            "3/4",
            "2026-05-07",
            "2026-05-07T14:40:00.000000Z",
            "12:30",
            "1e5",
            "50%",
            "$5",
            "(5)",
            "Mar 5",
            "march 2026",
            "5-Mar",
            "Tue, 3",
            "TRUE",
            "false",
        ] {
            assert_eq!(inert(text), format!("'{text}"), "{text:?}");
        }
    }

    #[test]
    fn plain_text_stays_as_it_is() {
        for text in [
            "alice",
            "quotes are stale",
            "roll",
            "SHA256:abcDEF",
            "0193c5a0-4b1e-7c3d-9f2a-3b4c5d6e7f80",
            "VIX-2026-06",
            "5 contracts",
            "May",
            "",
        ] {
            assert_eq!(inert(text), text, "{text:?}");
        }
    }
}
