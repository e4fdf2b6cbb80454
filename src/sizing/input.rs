//! Reading untrusted TOML into the typed structs: serde derive over the `toml` crate, the field's
//! path from `serde_path_to_error`, and every error in the form `{path} {rule}`
//! (`book.structure_cash_flows[2].date must be a date YYYY-MM-DD, got "16/01/2026"`).
//!
//! The structs name their fields once; the functions below are their `deserialize_with`
//! readers, which accept what the methodology accepts (an integer where a float is expected, a
//! TOML date or a string for a date) and say what is wrong in the user's terms. Range and
//! finiteness rules live in `validation.rs` and `Policy::validate`, which also run on structs
//! built in code.

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, Deserializer, Error as _, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use super::{InputError, FILE_BYTES_MAX};

/// Reads `text` as a `T` after the size limit; `what` names the file in errors that have no
/// field (too large, not TOML).
pub(crate) fn read<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, InputError> {
    size_limit(text, what)?;
    let parse = || toml::Deserializer::parse(text).map_err(|error| not_toml(text, what, &error));
    // The path tracker allocates for every key it passes; a verifier reads thousands of valid
    // proposals, so the tracker only runs again to name the field of an error.
    match T::deserialize(parse()?) {
        Ok(value) => Ok(value),
        Err(_) => serde_path_to_error::deserialize(parse()?).map_err(path_error),
    }
}

/// Reads `text` as a `T` over `defaults`: each table of the file overrides the defaults' table
/// key by key (a policy file names only what it changes). The struct itself keeps every key
/// required, so that a stored JSON copy is read strictly.
pub(crate) fn read_over<T: Serialize + DeserializeOwned>(
    text: &str,
    what: &str,
    defaults: &T,
) -> Result<T, InputError> {
    size_limit(text, what)?;
    let given: Table = toml::from_str(text).map_err(|error| not_toml(text, what, &error))?;
    let Ok(Value::Table(mut merged)) = Value::try_from(defaults) else {
        unreachable!("defaults are a struct of tables, which serializes to a TOML table");
    };
    for (key, value) in given {
        match (merged.get_mut(&key), value) {
            (Some(Value::Table(table)), Value::Table(overrides)) => table.extend(overrides),
            // An unknown key or a value that is not a table: the struct says what is wrong.
            (_, value) => {
                merged.insert(key, value);
            }
        }
    }
    serde_path_to_error::deserialize(Value::Table(merged)).map_err(path_error)
}

fn size_limit(text: &str, what: &str) -> Result<(), InputError> {
    if text.len() > FILE_BYTES_MAX {
        return Err(InputError::new(
            what,
            format!(
                "must be at most {FILE_BYTES_MAX} bytes (1 MiB), got {} bytes",
                text.len()
            ),
        ));
    }
    Ok(())
}

fn path_error(error: serde_path_to_error::Error<toml::de::Error>) -> InputError {
    field_error(&error.path().to_string(), error.inner().message())
}

/// A syntax error, placed by line and column (there is no field to name yet).
fn not_toml(text: &str, what: &str, error: &toml::de::Error) -> InputError {
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
}

/// An error at `path` (as `serde_path_to_error` prints it: `.` for the root). The rules of the
/// readers below come as they are; serde derive's own messages (missing and unknown fields, a
/// value where a table or an array belongs) are reworded here, in the one place that knows
/// their spelling (serde's `de::Error` defaults).
fn field_error(path: &str, message: &str) -> InputError {
    let at = |key: &str| {
        if path == "." {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    if let Some(rest) = message.strip_prefix("missing field `") {
        let key = rest.trim_end_matches('`');
        return InputError::new(at(key), "is required");
    }
    if message.starts_with("unknown field `$__toml_private_datetime`") {
        // toml hands a date-time to a struct as a table with one private key.
        let parent = path
            .strip_suffix(".$__toml_private_datetime")
            .unwrap_or(path);
        return InputError::new(parent, "must be a table, got a date-time");
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // "unknown field `x`, expected one of `a`, `b`" (or "expected `a`"): the path already
        // ends with `x`; the names between the later backticks are the known fields.
        let known: Vec<&str> = rest.split('`').skip(2).step_by(2).collect();
        return InputError::new(
            path,
            format!("is not a known field (known: {})", known.join(", ")),
        );
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((unexpected, expected)) = rest.rsplit_once(", expected ") {
            let shape = if expected.starts_with("struct ") || expected == "a map" {
                Some("a table")
            } else if expected == "a sequence" {
                Some("an array")
            } else {
                None
            };
            if let Some(shape) = shape {
                return InputError::new(
                    path,
                    format!("must be {shape}, got {}", given(unexpected)),
                );
            }
        }
    }
    InputError::new(path, message)
}

/// Serde's description of a value (`integer `3``, `string "x"`, `sequence`) as `show` writes it.
fn given(unexpected: &str) -> String {
    let text = match unexpected {
        "sequence" => "an array".to_string(),
        "map" => "a table".to_string(),
        other => {
            let quoted = ["integer `", "floating point `", "boolean `"]
                .iter()
                .find_map(|prefix| other.strip_prefix(prefix))
                .map(|rest| rest.trim_end_matches('`'));
            match quoted {
                Some(value) => value.to_string(),
                None => other.strip_prefix("string ").unwrap_or(other).to_string(),
            }
        }
    };
    shortened(text)
}

/// Shows a value in an error message without echoing a megabyte of input back.
pub(crate) fn show(value: &Value) -> String {
    shortened(match value {
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "an array".to_string(),
        Value::Table(_) => "a table".to_string(),
        other => other.to_string(),
    })
}

fn shortened(mut text: String) -> String {
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

/// A table read into `T`. Serde derive would also read a struct from an array of its values in
/// order (`growth = [1.25]`); a file spells every table with its keys, so only a table is read.
pub(crate) fn table<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    struct TableOnly<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for TableOnly<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_map(TableOnly(std::marker::PhantomData))
}

/// An array of tables, each read into `T` (see `table`).
pub(crate) fn tables<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    struct Table<T>(T);
    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Table<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Table<T>, D::Error> {
            table(d).map(Table)
        }
    }
    let items = Vec::<Table<T>>::deserialize(d)?;
    Ok(items.into_iter().map(|Table(t)| t).collect())
}

// The `deserialize_with` readers. Each reads one TOML value and either converts it or returns
// its rule; `serde_path_to_error` adds the path.

/// A number; TOML integers are accepted where floats are expected (`spot = 5905`). NaN and
/// infinities pass here and are refused by the validation, which names the field, so that
/// structs built in code get the same message.
pub(crate) fn number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match Value::deserialize(d)? {
        Value::Float(x) => Ok(x),
        // i64 -> f64 is exact up to 2^53, far beyond any realistic amount.
        Value::Integer(n) => Ok(n as f64),
        other => Err(D::Error::custom(format!(
            "must be a number, got {}",
            show(&other)
        ))),
    }
}

pub(crate) fn number_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    number(d).map(Some)
}

/// An array of numbers (integers accepted); its length is checked by the validation.
pub(crate) fn numbers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    struct Number(f64);
    impl<'de> Deserialize<'de> for Number {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Number, D::Error> {
            number(d).map(Number)
        }
    }
    let items = Vec::<Number>::deserialize(d)?;
    Ok(items.into_iter().map(|Number(x)| x).collect())
}

/// A count such as `contracts` or a period: a whole number from 0 to `u32::MAX`.
pub(crate) fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    // The bound makes the cast exact.
    whole(d, u64::from(u32::MAX)).map(|n| n as u32)
}

/// A whole number of seconds (a TOML integer is at most `i64::MAX`).
pub(crate) fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    whole(d, i64::MAX as u64)
}

fn whole<'de, D: Deserializer<'de>>(d: D, max: u64) -> Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::Integer(n) if n < 0 => Err(D::Error::custom(format!(
            "must be a whole number >= 0, got {n}"
        ))),
        Value::Integer(n) if n as u64 > max => {
            Err(D::Error::custom(format!("must be at most {max}, got {n}")))
        }
        Value::Integer(n) => Ok(n as u64),
        other => Err(D::Error::custom(format!(
            "must be a whole number, got {}",
            show(&other)
        ))),
    }
}

pub(crate) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Boolean(b) => Ok(b),
        other => Err(D::Error::custom(format!(
            "must be true or false, got {}",
            show(&other)
        ))),
    }
}

pub(crate) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        other => Err(D::Error::custom(format!(
            "must be a string, got {}",
            show(&other)
        ))),
    }
}

pub(crate) fn text_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text(d).map(Some)
}

/// A calendar date: a TOML local date (`2026-07-22`) or the string `"2026-07-22"`.
pub(crate) fn date<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    let value = Value::deserialize(d)?;
    let parsed = match &value {
        Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(),
        Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => {
            NaiveDate::parse_from_str(&dt.to_string(), "%Y-%m-%d").ok()
        }
        _ => None,
    };
    parsed
        .ok_or_else(|| D::Error::custom(format!("must be a date YYYY-MM-DD, got {}", show(&value))))
}

/// An RFC 3339 timestamp with an offset (string or TOML offset date-time), converted to UTC.
/// A local time without offset is refused: it would mean different instants on different desks.
pub(crate) fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let value = Value::deserialize(d)?;
    let parsed = match &value {
        Value::String(s) => DateTime::parse_from_rfc3339(s).ok(),
        Value::Datetime(dt) if dt.offset.is_some() && dt.date.is_some() => {
            DateTime::parse_from_rfc3339(&dt.to_string()).ok()
        }
        _ => None,
    };
    parsed.map(|t| t.with_timezone(&Utc)).ok_or_else(|| {
        D::Error::custom(format!(
            "must be an RFC 3339 timestamp with offset such as \"2026-05-07T14:30:00Z\", got {}",
            show(&value)
        ))
    })
}

/// Free text a person reads on a terminal must be printable: a control character (a line break,
/// a carriage return, an escape sequence) could rewrite what the terminal shows around it.
pub(crate) fn printable(field: &str, text: &str) -> Result<(), InputError> {
    match text.chars().find(|c| c.is_control()) {
        None => Ok(()),
        Some(c) => Err(InputError::new(
            field,
            format!(
                "must be printable text on one line, got the control character {}",
                c.escape_unicode()
            ),
        )),
    }
}

impl super::Proposal {
    /// Refuses control characters in the proposal's free text (`roll.note`, blackout names).
    /// Checked where a proposal file is read, not in `from_toml_str`: a ledger written before
    /// this rule may hold such text, and it must still parse and verify (views escape it).
    pub fn check_printable(&self) -> Result<(), InputError> {
        printable("roll.note", &self.roll.note)?;
        for (i, blackout) in self.calendar.blackouts.iter().enumerate() {
            printable(&format!("calendar.blackouts[{i}].name"), &blackout.name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Times {
        #[serde(deserialize_with = "date")]
        a: NaiveDate,
        #[serde(deserialize_with = "date")]
        b: NaiveDate,
        #[serde(deserialize_with = "timestamp")]
        c: DateTime<Utc>,
        #[serde(deserialize_with = "timestamp")]
        d: DateTime<Utc>,
    }

    #[test]
    fn free_text_with_a_control_character_is_refused_naming_the_field() {
        assert!(printable("roll.note", "roll 9, Zürich desk").is_ok());
        for bad in ["9\r2", "a\nb", "\u{1b}[2K", "tab\there", "\u{85}"] {
            let error = printable("roll.note", bad).unwrap_err();
            assert_eq!(error.field, "roll.note");
            assert!(error.rule.contains("control character"), "{error}");
        }
    }

    #[test]
    fn parse_error_names_line() {
        let err = read::<Times>("a = 1\nb = = 2\n", "proposal").unwrap_err();
        assert!(err.field.starts_with("proposal (line 2"), "{err}");
    }

    #[test]
    fn dates_accept_string_and_toml_date_and_timestamps_convert_to_utc() {
        let t: Times = read(
            "a = \"2026-07-22\"\nb = 2026-07-22\nc = \"2026-05-07T16:30:00+02:00\"\nd = 2026-05-07T14:30:00Z\n",
            "x",
        )
        .unwrap();
        assert_eq!((t.a, t.c), (t.b, t.d));
        let err = read::<Times>(
            "a = 2026-07-22\nb = 2026-07-22\nc = 2026-05-07T14:30:00\nd = 2026-05-07T14:30:00Z\n",
            "x",
        )
        .unwrap_err();
        assert_eq!(err.field, "c", "{err}");
        assert!(err.rule.contains("with offset"), "{err}");
    }

    #[test]
    fn serde_messages_are_reworded_with_the_path() {
        let base = "a = 2026-07-22\nb = 2026-07-22\nd = 2026-05-07T14:30:00Z\n";
        let err = read::<Times>(base, "x").unwrap_err();
        assert_eq!(err.to_string(), "c is required");
        let err =
            read::<Times>(&format!("{base}c = 2026-05-07T14:30:00Z\ne = 1\n"), "x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "e is not a known field (known: a, b, c, d)"
        );
        assert_eq!(
            given("string \"x\""),
            "\"x\"",
            "serde's spelling of a string"
        );
        assert_eq!(given("integer `3`"), "3");
        assert_eq!(given("floating point `2.5`"), "2.5");
        assert_eq!(given("sequence"), "an array");
    }
}
