//! A one-walk reader of proposal files in the plain TOML subset (`toml_fast`), straight into
//! the typed `Proposal`, in front of `Proposal::from_toml_str`'s general path (a `toml::Table`,
//! then a field walk that names every error).
//!
//! It converts every value with the same functions as the general path (`input::number`,
//! `whole`, `text`, `date`, `timestamp`) and ends with the same `validate`, but answers `None`
//! at the first thing it does not expect: an unknown or duplicate key or table, a missing field,
//! a value the conversions refuse, an inline form of an array of tables, a table defined after
//! its own array. The caller then takes the general path, which decides and writes every error.
//! The contract, checked by the differential tests at the end of this file: whenever this
//! returns `Some(proposal)`, the general path returns `Ok(proposal)`.
//!
//! Why: a verifier re-reads every recorded roll; building a `toml::Table` of about 130 keys
//! and walking it cost about 300,000 instructions a proposal.

use toml::Value;

use super::input::{date, number, text, timestamp, whole, Source};
use super::proposal::{
    read_blackout, read_book, read_cash_flow, read_closed_layer, read_front_condor,
    read_next_layer, read_roll, read_signals, Calendar, Proposal, BLACKOUT_KEYS, BOOK_KEYS,
    CALENDAR_KEYS, CASH_FLOW_KEYS, CLOSED_LAYER_KEYS, FRONT_CONDOR_KEYS, NEXT_LAYER_KEYS,
    ROLL_KEYS, SIGNALS_KEYS,
};
use super::toml_fast::{read, Sink};
use super::{BLACKOUTS_MAX, CASH_FLOWS_MAX, FILE_BYTES_MAX};

/// The proposal `text` holds, when it is in the subset and valid; `None` otherwise.
pub(crate) fn parse(text: &str) -> Option<Proposal> {
    if text.len() > FILE_BYTES_MAX {
        return None;
    }
    let mut sections = Sections::default();
    read(text, &mut sections)?;
    let proposal = sections.build()?;
    proposal.validate().ok()?;
    Some(proposal)
}

/// The tables a proposal has, in the order read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Root,
    Roll,
    ClosedLayer,
    NextLayer,
    FrontCondor,
    Signals,
    Book,
    Calendar,
    CashFlow,
    Blackout,
}

/// The key/value lines of one table.
type Entries<'a> = Vec<(&'a str, Value)>;

#[derive(Default)]
struct Sections<'a> {
    place: Option<Place>,
    roll: Option<Entries<'a>>,
    closed_layer: Option<Entries<'a>>,
    next_layer: Option<Entries<'a>>,
    front_condor: Option<Entries<'a>>,
    signals: Option<Entries<'a>>,
    book: Option<Entries<'a>>,
    /// `Some` after `[calendar]`, which must then hold no keys of its own.
    calendar: Option<Entries<'a>>,
    cash_flows: Vec<Entries<'a>>,
    blackouts: Vec<Entries<'a>>,
}

impl<'a> Sink<'a> for Sections<'a> {
    fn open_table(&mut self, key: &'a str) -> Option<()> {
        let (place, slot) = match key {
            "roll" => (Place::Roll, &mut self.roll),
            "closed_layer" => (Place::ClosedLayer, &mut self.closed_layer),
            "next_layer" => (Place::NextLayer, &mut self.next_layer),
            "front_condor" => (Place::FrontCondor, &mut self.front_condor),
            "signals" => (Place::Signals, &mut self.signals),
            "book" => (Place::Book, &mut self.book),
            // `[calendar]` after `[[calendar.blackouts]]` is legal TOML; leave it to the
            // general path rather than reason about it here.
            "calendar" if self.blackouts.is_empty() => (Place::Calendar, &mut self.calendar),
            _ => return None,
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(Vec::new());
        self.place = Some(place);
        Some(())
    }

    fn open_array_entry(&mut self, parent: Option<&'a str>, key: &'a str) -> Option<()> {
        match (parent, key) {
            // `[[book.structure_cash_flows]]` only after `[book]` (the usual order).
            (Some("book"), "structure_cash_flows") if self.book.is_some() => {
                self.cash_flows.push(Vec::new());
                self.place = Some(Place::CashFlow);
            }
            (Some("calendar"), "blackouts") => {
                self.blackouts.push(Vec::new());
                self.place = Some(Place::Blackout);
            }
            _ => return None,
        }
        Some(())
    }

    fn key_value(&mut self, key: &'a str, value: Value) -> Option<()> {
        let entries = match self.place.unwrap_or(Place::Root) {
            Place::Root => return None,
            Place::Roll => self.roll.as_mut()?,
            Place::ClosedLayer => self.closed_layer.as_mut()?,
            Place::NextLayer => self.next_layer.as_mut()?,
            Place::FrontCondor => self.front_condor.as_mut()?,
            Place::Signals => self.signals.as_mut()?,
            Place::Book => self.book.as_mut()?,
            Place::Calendar => self.calendar.as_mut()?,
            Place::CashFlow => self.cash_flows.last_mut()?,
            Place::Blackout => self.blackouts.last_mut()?,
        };
        if entries.iter().any(|(known, _)| *known == key) {
            return None;
        }
        entries.push((key, value));
        Some(())
    }
}

/// One table's entries, read as the general path's `Fields` reads them, minus the messages.
struct Table<'t> {
    entries: Vec<(&'t str, &'t Value)>,
}

/// Names are built only for messages, which this reader never writes.
fn unnamed() -> String {
    String::new()
}

impl<'t> Table<'t> {
    /// Every key must be one of `known`.
    fn new(entries: &'t Entries<'_>, known: &[&str]) -> Option<Self> {
        Self::checked(entries.iter().map(|(key, value)| (*key, value)), known)
    }

    /// An inline table (`{ date = ..., amount_usd = ... }`), or `None` for another value.
    fn inline(value: &'t Value, known: &[&str]) -> Option<Self> {
        let Value::Table(table) = value else {
            return None;
        };
        Self::checked(
            table.iter().map(|(key, value)| (key.as_str(), value)),
            known,
        )
    }

    fn checked(
        entries: impl Iterator<Item = (&'t str, &'t Value)>,
        known: &[&str],
    ) -> Option<Self> {
        let entries: Vec<(&str, &Value)> = entries.collect();
        entries
            .iter()
            .all(|(key, _)| known.contains(key))
            .then_some(Table { entries })
    }

    fn get(&self, key: &str) -> Option<&'t Value> {
        self.entries
            .iter()
            .find(|(known, _)| *known == key)
            .map(|(_, value)| *value)
    }
}

/// Not on the fast path: the general path will read the file and say what is wrong.
struct NotFast;

impl Source for Table<'_> {
    type Error = NotFast;
    fn f64_req(&self, key: &str) -> Result<f64, NotFast> {
        number(&unnamed, self.get(key).ok_or(NotFast)?).map_err(|_| NotFast)
    }
    fn f64_opt(&self, key: &str) -> Result<Option<f64>, NotFast> {
        self.get(key)
            .map(|value| number(&unnamed, value).map_err(|_| NotFast))
            .transpose()
    }
    fn u32_req(&self, key: &str) -> Result<u32, NotFast> {
        let value = self.get(key).ok_or(NotFast)?;
        let n = whole(&unnamed, value, u64::from(u32::MAX)).map_err(|_| NotFast)?;
        Ok(n as u32)
    }
    fn u32_opt(&self, key: &str) -> Result<Option<u32>, NotFast> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.u32_req(key).map(Some),
        }
    }
    fn string_req(&self, key: &str) -> Result<String, NotFast> {
        text(&unnamed, self.get(key).ok_or(NotFast)?).map_err(|_| NotFast)
    }
    fn string_opt(&self, key: &str) -> Result<Option<String>, NotFast> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.string_req(key).map(Some),
        }
    }
    fn date_req(&self, key: &str) -> Result<chrono::NaiveDate, NotFast> {
        date(&unnamed, self.get(key).ok_or(NotFast)?).map_err(|_| NotFast)
    }
    fn timestamp_req(&self, key: &str) -> Result<chrono::DateTime<chrono::Utc>, NotFast> {
        timestamp(&unnamed, self.get(key).ok_or(NotFast)?).map_err(|_| NotFast)
    }
    fn numbers_req(&self, key: &str, len_max: usize) -> Result<Vec<f64>, NotFast> {
        let Some(Value::Array(items)) = self.get(key) else {
            return Err(NotFast);
        };
        if items.len() > len_max {
            return Err(NotFast);
        }
        items
            .iter()
            .map(|item| number(&unnamed, item).map_err(|_| NotFast))
            .collect()
    }
}

impl Sections<'_> {
    fn build(&self) -> Option<Proposal> {
        let roll = read_roll(&section(&self.roll, ROLL_KEYS)?).ok()?;
        let closed_layer =
            read_closed_layer(&section(&self.closed_layer, CLOSED_LAYER_KEYS)?).ok()?;
        let next_layer = read_next_layer(&section(&self.next_layer, NEXT_LAYER_KEYS)?).ok()?;
        let front_condor =
            read_front_condor(&section(&self.front_condor, FRONT_CONDOR_KEYS)?).ok()?;
        let signals = read_signals(&section(&self.signals, SIGNALS_KEYS)?).ok()?;

        // An array of tables comes as `[[...]]` headers or as one inline array of inline
        // tables (as in the example file), not both.
        let book = section(&self.book, BOOK_KEYS)?;
        let flows = tables(
            book.get("structure_cash_flows"),
            &self.cash_flows,
            CASH_FLOW_KEYS,
        )?;
        if flows.is_empty() || flows.len() > CASH_FLOWS_MAX {
            return None;
        }
        let structure_cash_flows = flows
            .iter()
            .map(|flow| read_cash_flow(flow).ok())
            .collect::<Option<Vec<_>>>()?;
        let book = read_book(&book, structure_cash_flows).ok()?;

        let inline = match &self.calendar {
            None => None,
            Some(entries) => Table::new(entries, CALENDAR_KEYS)?.get("blackouts"),
        };
        let blackouts = tables(inline, &self.blackouts, BLACKOUT_KEYS)?;
        if blackouts.len() > BLACKOUTS_MAX {
            return None;
        }
        let blackouts = blackouts
            .iter()
            .map(|blackout| read_blackout(blackout).ok())
            .collect::<Option<Vec<_>>>()?;

        Some(Proposal {
            roll,
            closed_layer,
            next_layer,
            front_condor,
            signals,
            book,
            calendar: Calendar { blackouts },
        })
    }
}

/// A section's table, when the file has the section and every key in it is known.
fn section<'t>(entries: &'t Option<Entries<'_>>, known: &[&str]) -> Option<Table<'t>> {
    Table::new(entries.as_ref()?, known)
}

/// The tables of an array of tables: from the inline value when there is one (and no header
/// made entries), else from the `[[...]]` headers' entries.
fn tables<'t>(
    inline: Option<&'t Value>,
    headers: &'t [Entries<'_>],
    known: &[&str],
) -> Option<Vec<Table<'t>>> {
    match inline {
        None => headers
            .iter()
            .map(|entries| Table::new(entries, known))
            .collect(),
        Some(Value::Array(items)) if headers.is_empty() => items
            .iter()
            .map(|item| Table::inline(item, known))
            .collect(),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use crate::sizing::Proposal;
    use proptest::prelude::*;

    const EXAMPLE: &str = include_str!("../../tests/vectors/example-proposal.toml");

    /// The general path alone (the fast path is tried first by `from_toml_str`).
    fn general(text: &str) -> Result<Proposal, crate::sizing::InputError> {
        Proposal::from_toml_str_general(text)
    }

    /// The contract: whatever the fast path reads, the general path reads the same.
    fn agrees(text: &str) -> bool {
        match parse(text) {
            Some(fast) => {
                assert_eq!(general(text).as_ref().ok(), Some(&fast), "on {text}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn the_example_and_the_template_take_the_fast_path() {
        let template = general(EXAMPLE).unwrap().to_toml_string();
        assert!(agrees(EXAMPLE), "left the fast path:\n{EXAMPLE}");
        assert!(agrees(&template), "left the fast path:\n{template}");
    }

    #[test]
    fn optional_fields_and_defaults_read_alike() {
        let template = general(EXAMPLE).unwrap().to_toml_string();
        let without = |text: &str, prefix: &str| -> String {
            text.lines()
                .filter(|line| !line.starts_with(prefix))
                .map(|line| format!("{line}\n"))
                .collect()
        };
        for prefix in [
            "note",
            "multiplier",
            "fees_usd",
            "put_premium_usd",
            "dividend_yield",
            "ddm_weight",
            "dividend_",
            "share_price_usd",
            "factor_correlation",
        ] {
            // Whatever the general path accepts here, the fast path reads alike.
            let text = without(&template, prefix);
            assert_eq!(
                agrees(&text),
                general(&text).is_ok(),
                "without {prefix}:\n{text}"
            );
        }
        let ddm_off = ["ddm_weight", "dividend_", "share_price_usd"]
            .iter()
            .fold(template.clone(), |text, prefix| without(&text, prefix));
        assert!(agrees(&ddm_off), "{ddm_off}");
        // No blackouts at all, with and without an empty [calendar] table.
        let cut = template.find("[[calendar.blackouts]]").unwrap();
        assert!(agrees(&template[..cut]));
        assert!(agrees(&format!("{}[calendar]\n", &template[..cut])));
    }

    #[test]
    fn what_it_does_not_expect_goes_to_the_general_path() {
        let template = general(EXAMPLE).unwrap().to_toml_string();
        let refusals = [
            format!("surprise = 1\n{template}"),
            template.replace("[roll]", "[roll]\nsurprise = 1"),
            template.replace("[roll]", "[rol]"),
            format!("{template}\n[roll]\n"),
            template.replace("contracts = 12", "contracts = 12\ncontracts = 12"),
            template.replace("contracts = 12", "contracts = -12"),
            template.replace("contracts = 12", "contracts = 12.5"),
            template.replace("strike = 25.0", "strike = \"25\""),
            template.replace("expiry = \"2026-07-22\"", "expiry = \"22/07/2026\""),
            template.replace("[[book.structure_cash_flows]]", "[[book.flows]]"),
            format!("{template}\n[calendar]\n"),
            template.replace("[book]", "[book]\nstructure_cash_flows = []"),
            EXAMPLE.replace("blackouts = [", "blackouts = 1\nx = ["),
        ];
        for text in refusals {
            assert_ne!(text, template);
            assert!(!agrees(&text), "took the fast path:\n{text}");
        }
    }

    /// Lines that can replace a line of the template: every kind of value, and headers.
    fn any_line() -> impl Strategy<Value = String> {
        let keys = prop::sample::select(vec![
            "contracts",
            "strike",
            "expiry",
            "as_of",
            "note",
            "multiplier",
            "date",
            "amount_usd",
            "name",
            "start",
            "vix_term_spread",
            "beta",
            "unknown",
        ]);
        let values = prop::sample::select(vec![
            "9",
            "-1",
            "0",
            "4294967296",
            "2.5",
            "-0.0",
            "1e400",
            "\"text\"",
            "\"2026-07-22\"",
            "2026-07-22",
            "\"2026-05-07T14:30:00Z\"",
            "2026-05-07T14:30:00Z",
            "true",
            "[1.0, 2]",
            "[]",
            "[\"a\"]",
            "{ a = 1 }",
        ]);
        let headers = prop::sample::select(vec![
            "[roll]",
            "[book]",
            "[calendar]",
            "[signals]",
            "[[calendar.blackouts]]",
            "[[book.structure_cash_flows]]",
            "[[roll]]",
            "[next_layer.x]",
        ]);
        prop_oneof![
            (keys, values).prop_map(|(k, v)| format!("{k} = {v}")),
            headers.prop_map(str::to_string),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Any edit of the template by lines: whenever the fast path accepts, the general
        /// path accepts the same proposal.
        #[test]
        fn line_edits_never_make_the_paths_disagree(
            at in any::<prop::sample::Index>(),
            other in any::<prop::sample::Index>(),
            edit in 0u8..4,
            line in any_line(),
            inline_form in any::<bool>(),
        ) {
            // Both spellings of the arrays of tables: the example's inline arrays, and the
            // `[[...]]` headers of what `to_toml_string` (and so the CLI) writes.
            let base = if inline_form {
                EXAMPLE.to_string()
            } else {
                general(EXAMPLE).unwrap().to_toml_string()
            };
            let mut lines: Vec<String> = base.lines().map(str::to_string).collect();
            let i = at.index(lines.len());
            match edit {
                0 => { lines.remove(i); }
                1 => lines.insert(i, line),
                2 => lines[i] = line,
                _ => { let j = other.index(lines.len()); lines.swap(i, j); }
            }
            let text = lines.join("\n");
            agrees(&text);
        }
    }
}
