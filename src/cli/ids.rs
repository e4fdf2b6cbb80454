//! Proposal ids as people type them, as git takes commit ids: the full UUID, the short id
//! `list` shows (its last 12 hex digits, the random tail of a UUIDv7), or any prefix of at
//! least 8 characters; resolved against every proposal the ledger ever recorded, an
//! ambiguous one refused with the matches listed.

use uuid::Uuid;

use super::CliError;
use crate::service::Ledger;
use crate::store::IdPart;

/// The shortest prefix taken: a UUIDv7's first 8 hex digits are its time to about a minute.
pub const PREFIX_CHARS_MIN: usize = 8;
/// Characters of a short id (the random tail).
pub const SHORT_ID_CHARS: usize = 12;
/// Matches listed when an id is ambiguous.
const MATCHES_SHOWN_MAX: usize = 10;

/// An id as typed, checked for its shape only (before any database is opened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdText {
    Full(Uuid),
    /// 12 hex digits: the end of an id.
    Short(String),
    /// At least 8 characters of the start of an id (hex digits and its dashes).
    Prefix(String),
}

impl IdText {
    /// Whether `id` is one this text names.
    pub fn names(&self, id: &Uuid) -> bool {
        let text = id.to_string();
        match self {
            IdText::Full(full) => full == id,
            IdText::Short(tail) => text.ends_with(tail.as_str()),
            IdText::Prefix(head) => text.starts_with(head.as_str()),
        }
    }
}

/// The shape of a typed id: a UUID, a short id or a prefix; anything else is bad input.
pub fn parse_id(text: &str) -> Result<IdText, CliError> {
    if let Ok(id) = Uuid::parse_str(text) {
        return Ok(IdText::Full(id));
    }
    let lower = text.to_ascii_lowercase();
    let hex_and_dashes = lower.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let unlike = || {
        CliError::bad_input(format!(
            "{text:?} is not a proposal id: give the id, its short id (the last {SHORT_ID_CHARS} hex digits, as `rollbook list` shows) or its first {PREFIX_CHARS_MIN} characters or more"
        ))
    };
    if !hex_and_dashes || lower.is_empty() {
        return Err(unlike());
    }
    if lower.len() == SHORT_ID_CHARS && !lower.contains('-') {
        return Ok(IdText::Short(lower));
    }
    // A prefix must fit the hyphenated form: dashes only where a UUID has them.
    let template = Uuid::nil().to_string();
    let fits = lower.len() < template.len()
        && lower
            .chars()
            .zip(template.chars())
            .all(|(c, t)| (c == '-') == (t == '-'));
    if !fits {
        return Err(unlike());
    }
    if lower.len() < PREFIX_CHARS_MIN {
        return Err(CliError::bad_input(format!(
            "{text:?} is too short to name a proposal: give at least {PREFIX_CHARS_MIN} characters of its id, or its short id (the last {SHORT_ID_CHARS} hex digits)"
        )));
    }
    Ok(IdText::Prefix(lower))
}

/// The one proposal `text` names among every proposal `ledger` ever recorded; none or several
/// is bad input (exit 2), the matches listed.
pub async fn resolve(ledger: &Ledger, text: &IdText) -> Result<Uuid, CliError> {
    let part = match text {
        IdText::Full(id) => return Ok(*id),
        IdText::Short(tail) => IdPart::Tail(tail),
        IdText::Prefix(head) => IdPart::Head(&head[..PREFIX_CHARS_MIN]),
    };
    let found = ledger
        .store
        .proposal_ids_with(ledger.ledger_id, part)
        .await?;
    let mut matches: Vec<Uuid> = found
        .iter()
        .filter_map(|id| Uuid::parse_str(id).ok())
        .filter(|id| text.names(id))
        .collect();
    matches.sort();
    matches.dedup();
    let typed = match text {
        IdText::Full(id) => id.to_string(),
        IdText::Short(typed) | IdText::Prefix(typed) => typed.clone(),
    };
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(CliError::bad_input(format!(
            "no proposal {typed} in ledger {}; `rollbook list` shows them",
            ledger.ledger_id
        ))),
        several => {
            let shown: Vec<String> = several
                .iter()
                .take(MATCHES_SHOWN_MAX)
                .map(Uuid::to_string)
                .collect();
            Err(CliError::bad_input(format!(
                "{typed} is ambiguous: {} proposals match ({}{}); give more characters or the whole id",
                several.len(),
                shown.join(", "),
                if several.len() > MATCHES_SHOWN_MAX { ", ..." } else { "" }
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_of_typed_ids() {
        let id = Uuid::parse_str("019af0c2-1a2b-7c3d-8e4f-0123456789ab").unwrap();
        assert_eq!(parse_id(&id.to_string()).unwrap(), IdText::Full(id));
        assert_eq!(
            parse_id("0123456789AB").unwrap(),
            IdText::Short("0123456789ab".into())
        );
        for prefix in ["019af0c2", "019af0c2-1a", "019af0c2-1a2b-7c3d-8e4f-01"] {
            let parsed = parse_id(prefix).unwrap();
            assert!(matches!(parsed, IdText::Prefix(_)), "{prefix}");
            assert!(parsed.names(&id), "{prefix}");
        }
        assert!(parse_id("0123456789ab").unwrap().names(&id));
        for bad in [
            "",
            "019af0c",
            "019af0c21a2b7",
            "019a-f0c2",
            "zz9af0c2",
            "019af0c2 ",
        ] {
            assert!(parse_id(bad).is_err(), "{bad:?}");
        }
    }
}
