//! One clock per ledger: whether a command's own clock may act on the ledger's. The ledger's
//! clock is the database server's on PostgreSQL and the machine's on SQLite (read by the store);
//! this rule only compares the readings it is given.

use chrono::{DateTime, Duration, Utc};

use super::envelope::format_timestamp;
use super::refusal::Refusal;

/// Refused when `local` (the command's clock) differs from `ledger` (the ledger's clock) by
/// more than `skew_max_seconds`, or lies that much behind `head_time` (the time of the event
/// the command's would follow): on SQLite the two clocks are one, and the head is what shows a
/// slow one. Checked before anything is signed, so a refused command leaves nothing behind.
pub fn check_clocks(
    local: DateTime<Utc>,
    ledger: DateTime<Utc>,
    head_time: Option<DateTime<Utc>>,
    skew_max_seconds: u32,
) -> Result<(), Refusal> {
    let skew = Duration::seconds(i64::from(skew_max_seconds));
    if (local - ledger).abs() > skew {
        return Err(Refusal::ClockSkew {
            local_time: format_timestamp(local),
            ledger_time: format_timestamp(ledger),
            max_seconds: skew_max_seconds,
        });
    }
    if let Some(head_time) = head_time.filter(|head_time| local < *head_time - skew) {
        return Err(Refusal::ClockBehindChain {
            local_time: format_timestamp(local),
            head_time: format_timestamp(head_time),
            max_seconds: skew_max_seconds,
        });
    }
    Ok(())
}
