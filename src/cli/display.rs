//! What reaches a terminal from a ledger or a file. `shown` is the one escaping function every
//! such string passes through (ledgers written before input refused control characters may
//! hold them); `say!` and `esay!` print a line through it. The rest says what a governance
//! motion changes, computed from the motion's body and the body in force (never from free text
//! beside them), so a signer sees each key id that would gain or lose power.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::domain::envelope::format_timestamp;
use crate::domain::events::ProposalKind;
use crate::domain::governance::ActiveSet;

/// Characters a terminal acts on, or shows as nothing, instead of showing: every Unicode
/// control character (C0, DEL, C1: carriage return, escape sequences, line breaks), the line
/// and paragraph separators, the bidirectional marks, overrides and isolates (which reorder
/// what follows them on screen), and the zero-width characters and byte order mark (which make
/// `alice` and a look-alike name print the same).
fn acts_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// `text` as a terminal may show it: each character a terminal would act on is written as a
/// visible escape (`\r`, `\n`, `\t`, `\u{1b}`), everything else as it is. Borrowed (no copy)
/// when there is nothing to escape, which is every honest string.
pub fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(acts_on_terminal) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if acts_on_terminal(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The width of the terminal standard output goes to: `COLUMNS` when set (as shells export
/// it), else the terminal's own; `None` in a pipe or a file, where nothing is cut.
pub fn terminal_columns() -> Option<usize> {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .filter(|columns| *columns > 0)
    {
        return Some(columns);
    }
    terminal_size::terminal_size_of(std::io::stdout())
        .map(|(terminal_size::Width(width), _)| usize::from(width))
}

/// `println!` of one line that may hold ledger or file strings: the whole line is `shown`.
macro_rules! say {
    ($($arg:tt)*) => {
        println!("{}", $crate::cli::display::shown(&format!($($arg)*)))
    };
}

/// `eprintln!` of one line that may hold ledger or file strings: the whole line is `shown`.
macro_rules! esay {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::cli::display::shown(&format!($($arg)*)))
    };
}

pub(crate) use {esay, say};

/// One thing a governance motion changes. The JSON form (`"change"` names the kind) is part of
/// the `show`/`inbox` contract (README.md, "JSON output").
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A signer the set in force does not have (by name).
    Added {
        name: String,
        role: Option<String>,
        key_id: String,
    },
    /// A signer of the set in force the next set does not have (by name).
    Removed {
        name: String,
        role: Option<String>,
        key_id: String,
    },
    /// Same name, another key: whoever holds the new key signs as this name from then on.
    KeyRotated {
        name: String,
        old_key_id: String,
        new_key_id: String,
    },
    RoleChanged {
        name: String,
        old_role: Option<String>,
        new_role: Option<String>,
    },
    /// Same name, another lifetime of its key (`valid_after`/`valid_before`, in words).
    LifetimeChanged {
        name: String,
        old: String,
        new: String,
    },
    ThresholdChanged {
        old: u32,
        new: u32,
    },
    /// One key of the policy (dotted path into its canonical JSON) with another value.
    PolicyValueChanged {
        key: String,
        old: Value,
        new: Value,
    },
}

/// What the next signer set changes against the set in force. Signers are matched by name
/// (names are unique, case-insensitively, within a set); the threshold comes first.
pub fn signer_set_changes(before: &ActiveSet, after: &ActiveSet) -> Vec<Change> {
    let mut changes = Vec::new();
    if before.threshold != after.threshold {
        changes.push(Change::ThresholdChanged {
            old: before.threshold,
            new: after.threshold,
        });
    }
    let find = |set: &'_ ActiveSet, name: &str| -> Option<usize> {
        set.signers
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(name))
    };
    for old in &before.signers {
        let Some(index) = find(after, &old.name) else {
            changes.push(Change::Removed {
                name: old.name.clone(),
                role: old.role.clone(),
                key_id: old.key_id.clone(),
            });
            continue;
        };
        let new = &after.signers[index];
        if new.key_id != old.key_id {
            changes.push(Change::KeyRotated {
                name: new.name.clone(),
                old_key_id: old.key_id.clone(),
                new_key_id: new.key_id.clone(),
            });
        }
        if new.role != old.role {
            changes.push(Change::RoleChanged {
                name: new.name.clone(),
                old_role: old.role.clone(),
                new_role: new.role.clone(),
            });
        }
        if (new.valid_after, new.valid_before) != (old.valid_after, old.valid_before) {
            changes.push(Change::LifetimeChanged {
                name: new.name.clone(),
                old: old.lifetime_text(),
                new: new.lifetime_text(),
            });
        }
    }
    for new in &after.signers {
        if find(before, &new.name).is_none() {
            changes.push(Change::Added {
                name: new.name.clone(),
                role: new.role.clone(),
                key_id: new.key_id.clone(),
            });
        }
    }
    changes
}

/// Every key whose value differs between two policies, as dotted paths into their canonical
/// JSON, sorted by path (then keys the next policy dropped). Parsed values are compared, not
/// bytes: both sides are canonical JSON of the same struct, so one value has one spelling.
pub fn policy_changes(before_json: &str, after_json: &str) -> Result<Vec<Change>, String> {
    let parse = |json: &str, which: &str| {
        serde_json::from_str::<Value>(json)
            .map_err(|e| format!("the {which} policy is not JSON: {e}"))
    };
    let (before, after) = (parse(before_json, "current")?, parse(after_json, "next")?);
    let mut old = Vec::new();
    let mut new = Vec::new();
    flatten("", &before, &mut old);
    flatten("", &after, &mut new);
    let mut changes = Vec::new();
    for (key, value) in &new {
        let previous = old.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        if previous != Some(value) {
            changes.push(Change::PolicyValueChanged {
                key: key.clone(),
                old: previous.cloned().unwrap_or(Value::Null),
                new: value.clone(),
            });
        }
    }
    for (key, value) in &old {
        if !new.iter().any(|(k, _)| k == key) {
            changes.push(Change::PolicyValueChanged {
                key: key.clone(),
                old: value.clone(),
                new: Value::Null,
            });
        }
    }
    Ok(changes)
}

/// The leaves of a JSON value as (dotted path, value); arrays are leaves (a policy's lists are
/// compared whole).
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, child, out);
            }
        }
        leaf => out.push((prefix.to_string(), leaf.clone())),
    }
}

/// One line per change, for people (not yet `shown`: the caller prints through `say!`).
pub fn change_lines(changes: &[Change]) -> Vec<String> {
    let role = |role: &Option<String>| {
        role.as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    };
    let role_text = |role: &Option<String>| role.clone().unwrap_or_else(|| "no role".into());
    changes
        .iter()
        .map(|change| match change {
            Change::Added {
                name,
                role: r,
                key_id,
            } => {
                format!("+ added {name}{} with key {key_id}", role(r))
            }
            Change::Removed {
                name,
                role: r,
                key_id,
            } => {
                format!("- removed {name}{} (key {key_id})", role(r))
            }
            Change::KeyRotated {
                name,
                old_key_id,
                new_key_id,
            } => format!("! KEY ROTATED for {name}: {old_key_id} -> {new_key_id}"),
            Change::RoleChanged {
                name,
                old_role,
                new_role,
            } => format!(
                "~ role of {name}: {} -> {}",
                role_text(old_role),
                role_text(new_role)
            ),
            Change::LifetimeChanged { name, old, new } => {
                format!("~ key lifetime of {name}: valid {old} -> valid {new}")
            }
            Change::ThresholdChanged { old, new } => format!("~ threshold: {old} -> {new}"),
            Change::PolicyValueChanged { key, old, new } => format!("~ {key}: {old} -> {new}"),
        })
        .collect()
}

/// What a motion would change: its changes against what is in force, and for a signer-set
/// motion the complete next set (its key ids are what the signatures' digest covers).
#[derive(Debug, Clone)]
pub struct MotionView {
    pub changes: Vec<Change>,
    pub next_set: Option<ActiveSet>,
}

/// The changes of a motion of `kind` with `body`, against the set or policy in force that it is
/// bound to. `None` for a roll; an error names what could not be read.
pub fn motion_view(
    kind: ProposalKind,
    body: &str,
    set_before: Option<&ActiveSet>,
    policy_before: Option<&str>,
) -> Option<Result<MotionView, String>> {
    match kind {
        ProposalKind::Roll => None,
        ProposalKind::SignerSet => Some((|| {
            let next = ActiveSet::parse(body).map_err(|e| e.to_string())?;
            let before = set_before.ok_or("the signer set it replaces is not known")?;
            Ok(MotionView {
                changes: signer_set_changes(before, &next),
                next_set: Some(next),
            })
        })()),
        ProposalKind::Policy => Some((|| {
            let before = policy_before.ok_or("the policy it replaces is not known")?;
            Ok(MotionView {
                changes: policy_changes(before, body)?,
                next_set: None,
            })
        })()),
    }
}

/// A motion's changes for people: one line per change, then the complete next signer set with
/// its key ids.
pub fn motion_lines(view: &MotionView) -> Vec<String> {
    let mut lines = change_lines(&view.changes);
    if view.changes.is_empty() {
        lines.push(match view.next_set {
            Some(_) => "no change: same signers, keys, roles, key lifetimes and threshold".into(),
            None => "no change: every policy value stays the same".into(),
        });
    }
    if let Some(next) = &view.next_set {
        lines.extend(next_set_lines(next));
    }
    lines
}

/// The complete next signer set of a motion, one signer a line with its key id.
pub fn next_set_lines(next: &ActiveSet) -> Vec<String> {
    let mut lines = vec![format!(
        "next signer set v{}: {} of {}",
        next.version,
        next.threshold,
        next.signers.len()
    )];
    lines.extend(signer_lines(next).into_iter().map(|l| format!("  {l}")));
    lines
}

/// A motion's changes as JSON: `changes` and, for a signer-set motion, `next_signers`.
pub fn motion_json(view: &MotionView, object: &mut Value) {
    object["changes"] = serde_json::to_value(&view.changes).expect("changes serialize");
    if let Some(next) = &view.next_set {
        object["next_signers"] = Value::Array(signers_json(next));
    }
}

/// A signer set, one line per signer with its key id: what a reviewer compares with the keys
/// they know.
pub fn signer_lines(set: &ActiveSet) -> Vec<String> {
    set.signers
        .iter()
        .map(|s| {
            let lifetime = match (s.valid_after, s.valid_before) {
                (None, None) => String::new(),
                _ => format!(" (valid {})", s.lifetime_text()),
            };
            format!(
                "{:<12} {:<18} {}{lifetime}",
                s.name,
                s.role.as_deref().unwrap_or("-"),
                s.key_id
            )
        })
        .collect()
}

/// A signer set as JSON objects (name, role, key id, and a key's lifetime when it has one), in
/// set order.
pub fn signers_json(set: &ActiveSet) -> Vec<Value> {
    set.signers
        .iter()
        .map(|s| {
            let mut signer =
                serde_json::json!({"name": s.name, "role": s.role, "key_id": s.key_id});
            // Present only for a key with a lifetime, so the objects of other sets are unchanged.
            if let Some(after) = s.valid_after {
                signer["valid_after"] = Value::String(format_timestamp(after));
            }
            if let Some(before) = s.valid_before {
                signer["valid_before"] = Value::String(format_timestamp(before));
            }
            signer
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped_and_nothing_else() {
        assert!(matches!(shown("roll 9 x VIX 18"), Cow::Borrowed(_)));
        assert_eq!(
            shown("9 contracts\r\u{1b}[2Kroll 2\n\t\u{202e}x\u{7f}"),
            "9 contracts\\r\\u{1b}[2Kroll 2\\n\\t\\u{202e}x\\u{7f}"
        );
        assert_eq!(
            shown("ali\u{200b}ce\u{2028}\u{feff}\u{061c}\u{2060}"),
            "ali\\u{200b}ce\\u{2028}\\u{feff}\\u{61c}\\u{2060}"
        );
        assert_eq!(shown("Zürich, 東京 - ok"), "Zürich, 東京 - ok");
    }

    #[test]
    fn policy_changes_name_every_changed_key_with_both_values() {
        let before = r#"{"approval":{"proposer_counts":false,"proposal_ttl_seconds":3600},"caps":{"max":1.5}}"#;
        let after = r#"{"approval":{"proposer_counts":true,"proposal_ttl_seconds":3600},"caps":{"max":2.0}}"#;
        let changes = policy_changes(before, after).unwrap();
        assert_eq!(
            change_lines(&changes),
            vec![
                "~ approval.proposer_counts: false -> true",
                "~ caps.max: 1.5 -> 2.0"
            ]
        );
        assert!(policy_changes(before, before).unwrap().is_empty());
    }
}
