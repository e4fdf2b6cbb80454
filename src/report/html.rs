//! The one escaping function every string of an export passes before it enters the report's
//! HTML or SVG, and the few builders the page is made of (each escapes what it is given).

use std::fmt::Write as _;

use crate::cli::display::shown;

/// `text` as HTML text or attribute value: characters a terminal would hide or reorder are
/// written as visible escapes first (`\u{202e}`, as every view shows them), then `&`, `<`,
/// `>`, `"` and `'` become entities, so nothing from a ledger can open a tag, end an attribute
/// or disguise itself.
pub fn escape(text: &str) -> String {
    let visible = shown(text);
    let mut out = String::with_capacity(visible.len() + 8);
    for c in visible.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A `<table>` with a header row and body rows of cells already escaped (`Cell`s).
pub struct Table {
    html: String,
}

/// A table cell: text (escaped here) or markup built by this module's builders.
pub enum Cell {
    Text(String),
    /// Right-aligned figure.
    Figure(String),
    /// Markup already escaped.
    Markup(String),
}

impl Table {
    pub fn new(class: &str, headers: &[&str]) -> Table {
        let mut html = format!("<table class=\"{}\"><thead><tr>", escape(class));
        for header in headers {
            let _ = write!(html, "<th>{}</th>", escape(header));
        }
        html.push_str("</tr></thead><tbody>");
        Table { html }
    }

    /// A row; `id` becomes the row's element id when given.
    pub fn row(&mut self, id: Option<&str>, class: Option<&str>, cells: Vec<Cell>) {
        self.html.push_str("<tr");
        if let Some(id) = id {
            let _ = write!(self.html, " id=\"{}\"", escape(id));
        }
        if let Some(class) = class {
            let _ = write!(self.html, " class=\"{}\"", escape(class));
        }
        self.html.push('>');
        for cell in cells {
            match cell {
                Cell::Text(text) => {
                    let _ = write!(self.html, "<td>{}</td>", escape(&text));
                }
                Cell::Figure(text) => {
                    let _ = write!(self.html, "<td class=\"num\">{}</td>", escape(&text));
                }
                Cell::Markup(markup) => {
                    let _ = write!(self.html, "<td>{markup}</td>");
                }
            }
        }
        self.html.push_str("</tr>");
    }

    pub fn finish(mut self) -> String {
        self.html.push_str("</tbody></table>");
        self.html
    }
}

/// Lines of text as one cell's markup, each escaped, separated by line breaks.
pub fn lines(lines: &[String]) -> String {
    lines
        .iter()
        .map(|line| escape(line))
        .collect::<Vec<_>>()
        .join("<br>")
}

/// A value in a fixed-width font (ids, hashes, key ids), escaped.
pub fn code(text: &str) -> String {
    format!("<code>{}</code>", escape(text))
}

/// USD with thousands separators and cents: `3,537.00`.
pub fn usd(amount: f64) -> String {
    let cents = (amount * 100.0).round();
    let negative = cents < 0.0;
    let cents = cents.abs() as u128;
    let (whole, fraction) = (cents / 100, cents % 100);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{}{grouped}.{fraction:02}", if negative { "-" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::{escape, usd};

    #[test]
    fn markup_and_hidden_characters_are_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(escape("a\u{202e}b\r"), "a\\u{202e}b\\r");
    }

    #[test]
    fn usd_groups_thousands() {
        assert_eq!(usd(3537.0000000000005), "3,537.00");
        assert_eq!(usd(1234567.891), "1,234,567.89");
        assert_eq!(usd(0.5), "0.50");
        assert_eq!(usd(-42.0), "-42.00");
    }
}
