//! The human view of a report: a table a risk officer reads in ten seconds.

use std::fmt::Write;

use super::report::{SizingReport, Verdict, SIZE_CHECK_IDS};

/// Verdict line, what to do next, one row per check (id, value, limit, PASS/FAIL), the caps.
pub fn human(report: &SizingReport) -> String {
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
        "{:<11} {:>14} {:>14}  result",
        "check", "value", "limit"
    );
    for check in &report.checks {
        let _ = writeln!(
            out,
            "{:<11} {:>14} {:>14}  {}",
            check.id,
            number(check.value),
            number(check.limit),
            if check.passed { "PASS" } else { "FAIL" }
        );
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

/// Up to 6 significant decimals, without noise for integers (counts, days).
fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else if x.abs() >= 1000.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.6}")
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
    fn usd_groups_thousands() {
        assert_eq!(usd(0.0), "0.00");
        assert_eq!(usd(999.994), "999.99");
        assert_eq!(usd(5310.0), "5,310.00");
        assert_eq!(usd(1234567.891), "1,234,567.89");
        assert_eq!(usd(-12000.5), "-12,000.50");
        assert_eq!(usd(-0.001), "0.00");
    }
}
