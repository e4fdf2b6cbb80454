//! Reading untrusted TOML into typed values with errors that name the field.
//!
//! Why not `#[derive(Deserialize)]` straight into the typed structs: serde's messages name the
//! expected type, not the TOML path, and cannot say "book.cost_of_debt is required". Walking a
//! parsed `toml::Table` by hand keeps every message in the form `{path} {rule}`.

use chrono::{DateTime, NaiveDate, Utc};
use toml::{Table, Value};

use super::{InputError, FILE_BYTES_MAX};

/// Parses `text` as a TOML document after the size limit; `what` names the file in errors.
pub(crate) fn parse_document(text: &str, what: &str) -> Result<Table, InputError> {
    if text.len() > FILE_BYTES_MAX {
        return Err(InputError::new(
            what,
            format!(
                "must be at most {FILE_BYTES_MAX} bytes (1 MiB), got {} bytes",
                text.len()
            ),
        ));
    }
    // The plain subset proposals use takes the fast path; everything else (and every error)
    // goes through the `toml` crate. Both give the same table (tests in `toml_fast`).
    if let Some(table) = super::toml_fast::parse(text) {
        return Ok(table);
    }
    toml::from_str::<Table>(text).map_err(|error| {
        let place = match error.span() {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("{what} (line {line}, column {column})")
            }
            None => what.to_string(),
        };
        InputError::new(
            place,
            format!("is not valid TOML: {}", error.message().trim()),
        )
    })
}

/// Shows a value in an error message without echoing a megabyte of input back.
pub(crate) fn show(value: &Value) -> String {
    let mut text = match value {
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "an array".to_string(),
        Value::Table(_) => "a table".to_string(),
        other => other.to_string(),
    };
    if text.len() > 60 {
        let mut cut = 60;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

/// One TOML table being read: knows its own path for messages, and refuses unknown keys up
/// front (a typo such as `strke` must not silently fall back to a default).
pub(crate) struct Fields<'a> {
    path: String,
    table: &'a Table,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(path: &str, table: &'a Table, known: &[&str]) -> Result<Self, InputError> {
        for key in table.keys() {
            if !known.contains(&key.as_str()) {
                let fields = Fields {
                    path: path.to_string(),
                    table,
                };
                return Err(InputError::new(
                    fields.name(key),
                    format!("is not a known field (known: {})", known.join(", ")),
                ));
            }
        }
        Ok(Fields {
            path: path.to_string(),
            table,
        })
    }

    /// The full TOML path of `key` in this table.
    pub(crate) fn name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn required(&self, key: &str) -> Result<&'a Value, InputError> {
        self.table
            .get(key)
            .ok_or_else(|| InputError::new(self.name(key), "is required"))
    }

    pub(crate) fn table_req(&self, key: &str, known: &[&str]) -> Result<Fields<'a>, InputError> {
        let value = self.required(key)?;
        as_table(&self.name(key), value, known)
    }

    pub(crate) fn table_opt(
        &self,
        key: &str,
        known: &[&str],
    ) -> Result<Option<Fields<'a>>, InputError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(value) => as_table(&self.name(key), value, known).map(Some),
        }
    }

    pub(crate) fn f64_req(&self, key: &str) -> Result<f64, InputError> {
        number(&|| self.name(key), self.required(key)?)
    }

    pub(crate) fn f64_opt(&self, key: &str) -> Result<Option<f64>, InputError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(value) => number(&|| self.name(key), value).map(Some),
        }
    }

    pub(crate) fn u32_req(&self, key: &str) -> Result<u32, InputError> {
        whole(&|| self.name(key), self.required(key)?, u32::MAX as u64).map(|n| n as u32)
    }

    pub(crate) fn u32_opt(&self, key: &str) -> Result<Option<u32>, InputError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(value) => {
                whole(&|| self.name(key), value, u32::MAX as u64).map(|n| Some(n as u32))
            }
        }
    }

    pub(crate) fn u64_opt(&self, key: &str) -> Result<Option<u64>, InputError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(value) => whole(&|| self.name(key), value, i64::MAX as u64).map(Some),
        }
    }

    pub(crate) fn bool_opt(&self, key: &str) -> Result<Option<bool>, InputError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(InputError::new(
                self.name(key),
                format!("must be true or false, got {}", show(other)),
            )),
        }
    }

    pub(crate) fn string_req(&self, key: &str) -> Result<String, InputError> {
        text(&|| self.name(key), self.required(key)?)
    }

    pub(crate) fn string_opt(&self, key: &str) -> Result<Option<String>, InputError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(value) => text(&|| self.name(key), value).map(Some),
        }
    }

    pub(crate) fn date_req(&self, key: &str) -> Result<NaiveDate, InputError> {
        date(&|| self.name(key), self.required(key)?)
    }

    pub(crate) fn timestamp_req(&self, key: &str) -> Result<DateTime<Utc>, InputError> {
        timestamp(&|| self.name(key), self.required(key)?)
    }

    /// An array of at most `len_max` elements; an absent key is `None`.
    pub(crate) fn array_opt(
        &self,
        key: &str,
        len_max: usize,
    ) -> Result<Option<&'a Vec<Value>>, InputError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => {
                if items.len() > len_max {
                    return Err(InputError::new(
                        self.name(key),
                        format!("must have at most {len_max} entries, got {}", items.len()),
                    ));
                }
                Ok(Some(items))
            }
            Some(other) => Err(InputError::new(
                self.name(key),
                format!("must be an array, got {}", show(other)),
            )),
        }
    }

    pub(crate) fn array_req(
        &self,
        key: &str,
        len_max: usize,
    ) -> Result<&'a Vec<Value>, InputError> {
        self.required(key)?;
        self.array_opt(key, len_max)?
            .ok_or_else(|| InputError::new(self.name(key), "is required"))
    }

    /// An array of numbers (integers accepted), at most `len_max` long.
    pub(crate) fn numbers_req(&self, key: &str, len_max: usize) -> Result<Vec<f64>, InputError> {
        let items = self.array_req(key, len_max)?;
        // Names are built only for an error: this walk runs once per verified proposal.
        items
            .iter()
            .enumerate()
            .map(|(i, item)| number(&|| format!("{}[{i}]", self.name(key)), item))
            .collect()
    }
}

/// The typed reads of one table, shared by the general walk (`Fields`: errors that name the
/// field) and the fast one (`proposal_fast`: no messages, it only answers "not on the fast
/// path"), so that the proposal's sections are read by one set of functions over either.
pub(crate) trait Source {
    type Error;
    fn f64_req(&self, key: &str) -> Result<f64, Self::Error>;
    fn f64_opt(&self, key: &str) -> Result<Option<f64>, Self::Error>;
    fn u32_req(&self, key: &str) -> Result<u32, Self::Error>;
    fn u32_opt(&self, key: &str) -> Result<Option<u32>, Self::Error>;
    fn string_req(&self, key: &str) -> Result<String, Self::Error>;
    fn string_opt(&self, key: &str) -> Result<Option<String>, Self::Error>;
    fn date_req(&self, key: &str) -> Result<NaiveDate, Self::Error>;
    fn timestamp_req(&self, key: &str) -> Result<DateTime<Utc>, Self::Error>;
    /// An array of numbers (integers accepted), at most `len_max` long.
    fn numbers_req(&self, key: &str, len_max: usize) -> Result<Vec<f64>, Self::Error>;
}

impl Source for Fields<'_> {
    type Error = InputError;
    fn f64_req(&self, key: &str) -> Result<f64, InputError> {
        Fields::f64_req(self, key)
    }
    fn f64_opt(&self, key: &str) -> Result<Option<f64>, InputError> {
        Fields::f64_opt(self, key)
    }
    fn u32_req(&self, key: &str) -> Result<u32, InputError> {
        Fields::u32_req(self, key)
    }
    fn u32_opt(&self, key: &str) -> Result<Option<u32>, InputError> {
        Fields::u32_opt(self, key)
    }
    fn string_req(&self, key: &str) -> Result<String, InputError> {
        Fields::string_req(self, key)
    }
    fn string_opt(&self, key: &str) -> Result<Option<String>, InputError> {
        Fields::string_opt(self, key)
    }
    fn date_req(&self, key: &str) -> Result<NaiveDate, InputError> {
        Fields::date_req(self, key)
    }
    fn timestamp_req(&self, key: &str) -> Result<DateTime<Utc>, InputError> {
        Fields::timestamp_req(self, key)
    }
    fn numbers_req(&self, key: &str, len_max: usize) -> Result<Vec<f64>, InputError> {
        Fields::numbers_req(self, key, len_max)
    }
}

pub(crate) fn as_table<'a>(
    name: &str,
    value: &'a Value,
    known: &[&str],
) -> Result<Fields<'a>, InputError> {
    match value {
        Value::Table(table) => Fields::new(name, table, known),
        other => Err(InputError::new(
            name,
            format!("must be a table, got {}", show(other)),
        )),
    }
}

/// A number; TOML integers are accepted where floats are expected (`spot = 5905`). Finiteness
/// is checked by the typed validation so that mutated structs get the same message.
pub(crate) fn number(name: &dyn Fn() -> String, value: &Value) -> Result<f64, InputError> {
    match value {
        Value::Float(x) => Ok(*x),
        // i64 -> f64 is exact up to 2^53, far beyond any realistic amount.
        Value::Integer(n) => Ok(*n as f64),
        other => Err(InputError::new(
            name(),
            format!("must be a number, got {}", show(other)),
        )),
    }
}

pub(crate) fn whole(name: &dyn Fn() -> String, value: &Value, max: u64) -> Result<u64, InputError> {
    match value {
        Value::Integer(n) if *n < 0 => Err(InputError::new(
            name(),
            format!("must be a whole number >= 0, got {n}"),
        )),
        Value::Integer(n) if *n as u64 > max => Err(InputError::new(
            name(),
            format!("must be at most {max}, got {n}"),
        )),
        Value::Integer(n) => Ok(*n as u64),
        other => Err(InputError::new(
            name(),
            format!("must be a whole number, got {}", show(other)),
        )),
    }
}

pub(crate) fn text(name: &dyn Fn() -> String, value: &Value) -> Result<String, InputError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(InputError::new(
            name(),
            format!("must be a string, got {}", show(other)),
        )),
    }
}

/// A calendar date: a TOML local date (`2026-07-22`) or the string `"2026-07-22"`.
pub(crate) fn date(name: &dyn Fn() -> String, value: &Value) -> Result<NaiveDate, InputError> {
    let rule = || format!("must be a date YYYY-MM-DD, got {}", show(value));
    match value {
        Value::String(s) => {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| InputError::new(name(), rule()))
        }
        Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => {
            NaiveDate::parse_from_str(&dt.to_string(), "%Y-%m-%d")
                .map_err(|_| InputError::new(name(), rule()))
        }
        _ => Err(InputError::new(name(), rule())),
    }
}

/// An RFC 3339 timestamp with an offset (string or TOML offset date-time), converted to UTC.
/// A local time without offset is refused: it would mean different instants on different desks.
pub(crate) fn timestamp(
    name: &dyn Fn() -> String,
    value: &Value,
) -> Result<DateTime<Utc>, InputError> {
    let rule = || {
        format!(
            "must be an RFC 3339 timestamp with offset such as \"2026-05-07T14:30:00Z\", got {}",
            show(value)
        )
    };
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Datetime(dt) if dt.offset.is_some() && dt.date.is_some() => dt.to_string(),
        _ => return Err(InputError::new(name(), rule())),
    };
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| InputError::new(name(), rule()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_names_line() {
        let err = parse_document("a = 1\nb = = 2\n", "proposal").unwrap_err();
        assert!(err.field.starts_with("proposal (line 2"), "{err}");
    }

    #[test]
    fn dates_accept_string_and_toml_date() {
        let doc = parse_document("a = \"2026-07-22\"\nb = 2026-07-22\n", "x").unwrap();
        let fields = Fields::new("t", &doc, &["a", "b"]).unwrap();
        assert_eq!(fields.date_req("a").unwrap(), fields.date_req("b").unwrap());
    }

    #[test]
    fn timestamps_convert_to_utc() {
        let doc = parse_document("a = \"2026-05-07T16:30:00+02:00\"\nb = 2026-05-07T14:30:00Z\nc = 2026-05-07T14:30:00\n", "x").unwrap();
        let fields = Fields::new("t", &doc, &["a", "b", "c"]).unwrap();
        assert_eq!(
            fields.timestamp_req("a").unwrap(),
            fields.timestamp_req("b").unwrap()
        );
        assert!(fields.timestamp_req("c").is_err());
    }
}
