//! The human view of a report: a table a risk officer reads in ten seconds.

use std::fmt::Write;

use super::report::{Check, SizingReport, Verdict, SIZE_CHECK_IDS};

/// Verdict line, what to do next, one row per check (id, value and limit with their unit, the
/// direction that passes, PASS/FAIL), each failure in words, the caps: for a report evaluated
/// here (`evaluate`), its failures told with their own messages.
pub fn human(report: &SizingReport) -> String {
    table(report, Messages::Own)
}

/// `human` for a report read from a ledger: its failures told in its verified figures alone.
pub fn human_of_stored(report: &SizingReport) -> String {
    table(report, Messages::Stored)
}

/// Whose words a report's check messages are. A verifier compares a stored report's verdict,
/// checks and numbers with a fresh evaluation, never its message texts (their wording and last
/// printed digit are this build's, not the format's): a stored message is its proposer's text,
/// so a view of a ledger never shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Messages {
    Own,
    Stored,
}

fn table(report: &SizingReport, messages: Messages) -> String {
    let mut out = String::new();
    let verdict = match report.verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
    };
    let failed = report.failed_check_ids();
    // Writing into a String cannot fail; the results are ignored deliberately.
    let _ = writeln!(
        out,
        "verdict: {verdict}  ({} contracts requested; largest size the caps allow: {})",
        report.contracts_requested, report.contracts_max
    );
    if let Some(n) = report.resize_to {
        let _ = writeln!(out, "resize to at most {n} contracts");
    } else if !failed.is_empty() {
        let gates: Vec<&str> = failed
            .iter()
            .copied()
            .filter(|id| !SIZE_CHECK_IDS.contains(id))
            .collect();
        if gates.is_empty() {
            let _ = writeln!(out, "no size passes: every cap is below one contract");
        } else {
            let _ = writeln!(
                out,
                "failed gates (no size passes until fixed): {}",
                gates.join(", ")
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<11} {:>20}  {:<22}  result",
        "check", "value", "required"
    );
    for check in &report.checks {
        let (unit, direction) = unit_and_direction(&check.id);
        let _ = writeln!(
            out,
            "{:<11} {:>20}  {:<22}  {}",
            check.id,
            with_unit(check.value, unit),
            format!("{direction} {}", with_unit(check.limit, unit)),
            if check.passed { "PASS" } else { "FAIL" }
        );
    }
    for check in report.checks.iter().filter(|check| !check.passed) {
        let _ = writeln!(out, "{}: {}", check.id, why_failed(report, check, messages));
    }
    let _ = writeln!(out);
    let caps = &report.caps;
    let optional = |x: Option<f64>| match x {
        Some(usd) => format!("{usd:.2} USD"),
        None => "none".to_string(),
    };
    let _ = writeln!(
        out,
        "caps: budget {:.2} USD | wacc {} | liquidity {:.2} USD | irr {} | growth {} contracts",
        caps.budget_usd,
        optional(caps.wacc_usd),
        caps.liquidity_usd,
        optional(caps.irr_usd),
        caps.growth_contracts
    );
    let _ = writeln!(out, "{}", drawn(report));
    let c = &report.coefficient;
    let _ = writeln!(
        out,
        "coefficient {:.6} (RSI {:.4}, P/CF score {:.4}, decay {:.4}/day, theta press {}) on realized profit {:.2} USD",
        c.final_value,
        c.rsi,
        c.pcf_score,
        c.decay_per_day,
        if c.theta_press { "on" } else { "off" },
        report.realized_profit_usd
    );
    let _ = writeln!(out, "policy {}", report.policy_hash);
    out
}

/// What other proposals drew on the closed layer, against the layer's totals; the caps line
/// above shows what they leave. At most `IDS_SHOWN` ids: a report may carry a thousand.
fn drawn(report: &SizingReport) -> String {
    const IDS_SHOWN: usize = 3;
    let d = &report.drawn;
    // Ids are ASCII letters, digits and `-_.:/` (validated), so they print as they are.
    let layer = match &d.closed_layer_id {
        Some(id) => format!("closed layer {id}"),
        None => "the closed layer (no id)".to_string(),
    };
    if d.is_nothing() {
        return format!("drawn on {layer}: nothing");
    }
    let mut text = format!(
        "drawn on {layer}: {:.2} USD of budget {:.2} USD, {} of growth cap {} contracts",
        d.outlay_usd,
        report.metrics.budget_total_usd,
        d.contracts,
        report.metrics.growth_total_contracts
    );
    let ids = &d.proposal_ids;
    if !ids.is_empty() {
        let shown: Vec<&str> = ids.iter().take(IDS_SHOWN).map(String::as_str).collect();
        let _ = write!(
            text,
            ", by {} proposal{}: {}{}",
            ids.len(),
            if ids.len() == 1 { "" } else { "s" },
            shown.join(", "),
            if ids.len() > IDS_SHOWN { ", ..." } else { "" }
        );
    }
    text
}

/// The unit of a check's value and limit, and how the value must stand to the limit to pass
/// (what `guardrails` tests; a report carries only numbers, so the table says what they are).
fn unit_and_direction(id: &str) -> (&'static str, &'static str) {
    match id {
        "profit" => ("USD", ">"),
        "budget" | "parity" => ("USD", "<="),
        "growth" => ("contracts", "<="),
        "wacc" => ("bps", "<="),
        "liquidity" => ("quick ratio", ">="),
        "irr" => ("/yr", "<="),
        "macd" => ("histogram", ">="),
        "time_shift" => ("days", ">="),
        "quote" => ("of model", "<="),
        "timing" => ("blackouts", "="),
        "staleness" => ("min", "<="),
        _ => ("", "vs"),
    }
}

/// A figure and its unit: money grouped with cents, other figures as `number` shows them.
fn with_unit(x: f64, unit: &str) -> String {
    match unit {
        "USD" => format!("{} USD", usd(x)),
        "" => number(x),
        unit => format!("{} {unit}", number(x)),
    }
}

/// A failed check in its figures alone: value against limit with their units, or for `timing`
/// what its count of blackouts says. How a failure read from a ledger is told (`Messages`).
pub fn failure_in_figures(check: &Check) -> String {
    if check.id == "timing" {
        // Its value counts blackouts; a window that ended or is out of order fails with none.
        return if check.value >= 1.0 {
            format!(
                "{} padded blackout(s) overlap the execution window",
                number(check.value)
            )
        } else {
            "the execution window is out of order or has ended".to_string()
        };
    }
    let (unit, direction) = unit_and_direction(&check.id);
    let stands = match direction {
        "<=" => "is above",
        ">=" => "is below",
        ">" => "is not above",
        _ => "is not",
    };
    format!(
        "{} {stands} {}",
        with_unit(check.value, unit),
        with_unit(check.limit, unit)
    )
}

/// Why a check failed, in words: the budget against what the other draws leave of the
/// layer's budget; otherwise its figures, with its own message when it is this build's (it
/// names the intermediate figures and the rule).
fn why_failed(report: &SizingReport, check: &Check, messages: Messages) -> String {
    if check.id != "budget" {
        return match (messages, check.id.as_str()) {
            (Messages::Own, "timing") => check.message.clone(),
            (Messages::Own, _) => format!("{} ({})", failure_in_figures(check), check.message),
            (Messages::Stored, _) => failure_in_figures(check),
        };
    }
    let drawn = &report.drawn;
    let total_usd = report.metrics.budget_total_usd;
    let layer = drawn.closed_layer_id.as_deref().map_or_else(
        || "the closed layer".to_string(),
        |id| format!("layer {id}"),
    );
    format!(
        "{} USD > {} USD left of {} USD on {layer}",
        usd(report.metrics.outlay_usd),
        usd(total_usd - drawn.outlay_usd),
        usd(total_usd)
    )
}

/// A figure as a reader compares it: integers (counts, days) bare, two decimals from 1 on,
/// four significant digits below 1 (a rate, a ratio, a fraction of a basis point), trailing
/// zeros dropped.
fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{x:.0}");
    }
    let decimals = if x.abs() >= 1.0 {
        2
    } else {
        // Four significant digits: 0.2345, 0.01234, 0.0001234.
        (3 - x.abs().log10().floor() as i32).clamp(4, 12) as usize
    };
    let text = format!("{x:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// An amount in USD with two decimals and thousands grouped: `5,310.00`, `-12,000.50`.
pub fn usd(amount_usd: f64) -> String {
    let text = format!("{:.2}", amount_usd.abs());
    let (whole, cents) = text.split_once('.').unwrap_or((&text, "00"));
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3 + 4);
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if amount_usd < 0.0 && text != "0.00" {
        "-"
    } else {
        ""
    };
    format!("{sign}{grouped}.{cents}")
}

#[cfg(test)]
mod tests {
    use super::usd;

    #[test]
    fn numbers_keep_what_a_reader_compares() {
        assert_eq!(super::number(18.0), "18");
        assert_eq!(super::number(0.23), "0.23");
        assert_eq!(super::number(1.23456), "1.23");
        assert_eq!(super::number(0.0123456), "0.01235");
        assert_eq!(super::number(-0.5), "-0.5");
        assert_eq!(super::number(12345.678), "12345.68");
    }

    #[test]
    fn usd_groups_thousands() {
        assert_eq!(usd(0.0), "0.00");
        assert_eq!(usd(999.994), "999.99");
        assert_eq!(usd(5310.0), "5,310.00");
        assert_eq!(usd(1234567.891), "1,234,567.89");
        assert_eq!(usd(-12000.5), "-12,000.50");
        assert_eq!(usd(-0.001), "0.00");
    }
}
