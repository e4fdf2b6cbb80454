//! The fills file `rollbook execute --fills FILE` reads: `[[fills]]` tables (`contracts`,
//! `price_usd`, `at`, `broker_ref`) and, for a correction, `corrects`: the event ids of the
//! earlier executions it replaces. Read like a proposal (the `toml` crate, serde derive,
//! unknown keys refused, the field named in every error); the rules are
//! `execution::validate_request`, the same the ledger applies to a stored execution.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::execution::{fill_of, validate_request, ExecutionRequest};
use super::refusal::Refusal;
use crate::sizing::input;
use crate::sizing::InputError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FillsFile {
    #[serde(default)]
    fills: Vec<FileFill>,
    #[serde(default)]
    corrects: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFill {
    #[serde(deserialize_with = "input::count")]
    contracts: u32,
    #[serde(deserialize_with = "input::number")]
    price_usd: f64,
    #[serde(deserialize_with = "input::timestamp")]
    at: DateTime<Utc>,
    #[serde(deserialize_with = "input::text")]
    broker_ref: String,
}

/// Reads a fills file's text; `what` names the file in errors that have no field. Errors are
/// `{field} {rule}`, the field as a path (`fills[2].price_usd`).
pub fn read_fills(text: &str, what: &str) -> Result<ExecutionRequest, InputError> {
    let file: FillsFile = input::read(text, what)?;
    let fills: Vec<_> = file
        .fills
        .into_iter()
        .map(|fill| fill_of(fill.contracts, fill.price_usd, fill.at, fill.broker_ref))
        .collect();
    match validate_request(&fills, &file.corrects) {
        Ok(_) => Ok(ExecutionRequest {
            fills,
            corrects: file.corrects,
        }),
        Err(Refusal::FillInvalid { field, rule }) => Err(InputError::new(field, rule)),
        Err(other) => Err(InputError::new(what, other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        match read_fills(text, "fills.toml") {
            Err(error) => error.to_string(),
            Ok(_) => panic!("{text:?} was accepted"),
        }
    }

    #[test]
    fn a_fills_file_reads_and_each_fault_names_its_field() {
        let good = "[[fills]]\ncontracts = 4\nprice_usd = 3.15\nat = 2026-05-08T15:00:00Z\nbroker_ref = \"IB-1\"\n";
        let request = read_fills(good, "fills.toml").unwrap();
        assert_eq!(request.fills[0].at, "2026-05-08T15:00:00.000000Z");
        assert_eq!(request.fills[0].contracts, 4);
        assert!(error(&good.replace("4", "4.5")).contains("fills[0].contracts"));
        assert!(error(&good.replace("4", "-4")).contains("fills[0].contracts"));
        assert!(error(&good.replace("4", "0")).contains("fills[0].contracts"));
        assert!(error(&good.replace("3.15", "\"x\"")).contains("fills[0].price_usd"));
        assert!(error(&good.replace("3.15", "nan")).contains("fills[0].price_usd"));
        assert!(
            error(&good.replace("2026-05-08T15:00:00Z", "\"yesterday\"")).contains("fills[0].at")
        );
        assert!(error(&good.replace("\"IB-1\"", "\"\"")).contains("fills[0].broker_ref"));
        assert!(error(&format!("{good}venue = \"x\"\n")).contains("fills[0].venue"));
        assert!(error("").contains("fills"));
        assert!(error("[[fills]\n").contains("fills.toml (line 1"));
    }
}
