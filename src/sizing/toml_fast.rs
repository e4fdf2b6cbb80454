//! A fast reader for the plain subset of TOML that proposal files use, in front of the `toml`
//! crate: `[table]` headers, `key = value` lines, basic strings without escapes, decimal
//! integers and floats, booleans, arrays (over several lines, with comments) and one-line
//! inline tables. Anything else (escapes, literal or multi-line strings, dotted or quoted keys,
//! dates, special floats, a duplicate key, ...) makes it answer `None`, and the caller parses
//! with the `toml` crate, which also writes every error message.
//!
//! Why: a verifier re-reads every recorded proposal, and the general parser spent about 40 us
//! per proposal (a third of a verification) on this subset. The contract, checked by the
//! differential tests at the end of this file: whenever this returns `Some(table)`, the `toml`
//! crate returns `Ok` with an equal table.

use toml::{Table, Value};

/// Nesting limit for arrays and inline tables (deeper documents go to the `toml` crate).
const DEPTH_MAX: usize = 32;

/// The table `text` holds, or `None` when `text` leaves the subset (or is not valid TOML).
pub fn parse(text: &str) -> Option<Table> {
    let mut document = Document::default();
    read(text, &mut document)?;
    Some(document.root)
}

/// What the reader hands over, in document order: headers, and the key/value lines under
/// them. A sink answers `None` to leave the subset (a duplicate, a table defined twice, or for
/// a typed sink anything it does not expect); the whole read then answers `None`.
pub(crate) trait Sink<'a> {
    /// `[key]`.
    fn open_table(&mut self, key: &'a str) -> Option<()>;
    /// `[[key]]` (no parent) or `[[parent.key]]`.
    fn open_array_entry(&mut self, parent: Option<&'a str>, key: &'a str) -> Option<()>;
    /// `key = value`, in the table the last header opened (the root before any header).
    fn key_value(&mut self, key: &'a str, value: Value) -> Option<()>;
}

/// Reads `text` into `sink`; `None` when `text` leaves the subset or the sink refuses.
pub(crate) fn read<'a>(text: &'a str, sink: &mut impl Sink<'a>) -> Option<()> {
    let mut reader = Reader {
        bytes: text.as_bytes(),
        text,
        at: 0,
    };
    loop {
        reader.skip_blank();
        match reader.peek() {
            None => break,
            Some(b'\n') => {
                reader.at += 1;
            }
            Some(b'\r') => {
                reader.newline()?;
            }
            Some(b'#') => {
                reader.comment()?;
                reader.end_of_line()?;
            }
            Some(b'[') => {
                reader.at += 1;
                let array = reader.expect(b'[').is_some();
                let keys = reader.header_keys()?;
                reader.expect(b']')?;
                if array {
                    reader.expect(b']')?;
                }
                reader.end_of_line()?;
                match (array, keys.as_slice()) {
                    (false, [key]) => sink.open_table(key)?,
                    (true, [key]) => sink.open_array_entry(None, key)?,
                    (true, [parent, key]) => sink.open_array_entry(Some(parent), key)?,
                    _ => return None, // dotted `[a.b]` headers, deeper `[[a.b.c]]`
                }
            }
            Some(_) => {
                let (key, value) = reader.key_value(0)?;
                reader.end_of_line()?;
                sink.key_value(key, value)?;
            }
        }
    }
    Some(())
}

impl<'a> Sink<'a> for Document {
    fn open_table(&mut self, key: &'a str) -> Option<()> {
        Document::open_table(self, key)
    }

    fn open_array_entry(&mut self, parent: Option<&'a str>, key: &'a str) -> Option<()> {
        Document::open_array_entry(self, parent, key)
    }

    fn key_value(&mut self, key: &'a str, value: Value) -> Option<()> {
        match self.current()?.insert(key.to_string(), value) {
            Some(_) => None,
            None => Some(()),
        }
    }
}

/// Where key/value lines go.
#[derive(Default)]
enum Current {
    #[default]
    Root,
    /// After `[key]`.
    Table(String),
    /// After `[[key]]` or `[[parent.key]]`: the last table of that array.
    ArrayEntry(Option<String>, String),
}

/// The document being built, and which tables its headers made (TOML forbids defining a
/// table twice or appending to an array a header did not make; any doubt leaves the subset).
#[derive(Default)]
struct Document {
    root: Table,
    current: Current,
    /// Tables made by a header (`[key]`) or implicitly as the parent of `[[key.child]]`.
    header_tables: Vec<String>,
    /// Arrays of tables made by `[[...]]`.
    header_arrays: Vec<(Option<String>, String)>,
}

impl Document {
    fn open_table(&mut self, key: &str) -> Option<()> {
        if self.root.contains_key(key) {
            return None;
        }
        self.root
            .insert(key.to_string(), Value::Table(Table::new()));
        self.header_tables.push(key.to_string());
        self.current = Current::Table(key.to_string());
        Some(())
    }

    fn open_array_entry(&mut self, parent: Option<&str>, key: &str) -> Option<()> {
        let parent_table = match parent {
            None => &mut self.root,
            Some(parent) => {
                if !self.root.contains_key(parent) {
                    self.root
                        .insert(parent.to_string(), Value::Table(Table::new()));
                    self.header_tables.push(parent.to_string());
                } else if !self.header_tables.iter().any(|t| t == parent) {
                    return None;
                }
                match self.root.get_mut(parent)? {
                    Value::Table(table) => table,
                    _ => return None,
                }
            }
        };
        let id = (parent.map(str::to_string), key.to_string());
        match parent_table.get_mut(key) {
            None => {
                parent_table.insert(
                    key.to_string(),
                    Value::Array(vec![Value::Table(Table::new())]),
                );
                self.header_arrays.push(id.clone());
            }
            Some(Value::Array(entries)) if self.header_arrays.contains(&id) => {
                entries.push(Value::Table(Table::new()));
            }
            Some(_) => return None,
        }
        self.current = Current::ArrayEntry(id.0, id.1);
        Some(())
    }

    fn current(&mut self) -> Option<&mut Table> {
        let table = match &self.current {
            Current::Root => return Some(&mut self.root),
            Current::Table(key) => self.root.get_mut(key)?,
            Current::ArrayEntry(parent, key) => {
                let holder = match parent {
                    None => &mut self.root,
                    Some(parent) => match self.root.get_mut(parent)? {
                        Value::Table(table) => table,
                        _ => return None,
                    },
                };
                match holder.get_mut(key)? {
                    Value::Array(entries) => entries.last_mut()?,
                    _ => return None,
                }
            }
        };
        match table {
            Value::Table(table) => Some(table),
            _ => None,
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.at += 1)
    }

    /// Spaces and tabs.
    fn skip_blank(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    /// `\n` or `\r\n`.
    fn newline(&mut self) -> Option<()> {
        match self.peek() {
            Some(b'\n') => self.at += 1,
            Some(b'\r') if self.bytes.get(self.at + 1) == Some(&b'\n') => self.at += 2,
            _ => return None,
        }
        Some(())
    }

    /// A `#` comment up to (not including) the line end; control characters leave the subset.
    fn comment(&mut self) -> Option<()> {
        self.expect(b'#')?;
        while let Some(byte) = self.peek() {
            match byte {
                b'\n' | b'\r' => break,
                b'\t' => self.at += 1,
                0x00..=0x1f | 0x7f => return None,
                _ => self.at += 1,
            }
        }
        Some(())
    }

    /// Blanks, an optional comment, then a line end or the end of the text.
    fn end_of_line(&mut self) -> Option<()> {
        self.skip_blank();
        if self.peek() == Some(b'#') {
            self.comment()?;
        }
        match self.peek() {
            None => Some(()),
            _ => self.newline(),
        }
    }

    /// Blanks, comments and line ends, inside an array.
    fn skip_array_space(&mut self) -> Option<()> {
        loop {
            self.skip_blank();
            match self.peek() {
                Some(b'#') => self.comment()?,
                Some(b'\n' | b'\r') => self.newline()?,
                _ => return Some(()),
            }
        }
    }

    /// The keys of a header, `a` or `a.b` (blanks allowed around each), up to its `]`.
    fn header_keys(&mut self) -> Option<Vec<&'a str>> {
        let mut keys = Vec::with_capacity(2);
        loop {
            self.skip_blank();
            let start = self.at;
            while matches!(
                self.peek(),
                Some(b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')
            ) {
                self.at += 1;
            }
            if self.at == start || keys.len() == 3 {
                return None;
            }
            keys.push(&self.text[start..self.at]);
            self.skip_blank();
            match self.peek()? {
                b'.' => self.at += 1,
                b']' => return Some(keys),
                _ => return None,
            }
        }
    }

    /// A bare key: ASCII letters, digits, `_` and `-`, followed by something that is not a dot.
    fn bare_key(&mut self) -> Option<&'a str> {
        let start = self.at;
        while matches!(
            self.peek(),
            Some(b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')
        ) {
            self.at += 1;
        }
        if self.at == start {
            return None;
        }
        let key = &self.text[start..self.at];
        let mut after = self.at;
        while matches!(self.bytes.get(after), Some(b' ' | b'\t')) {
            after += 1;
        }
        if self.bytes.get(after) == Some(&b'.') {
            return None; // dotted keys
        }
        Some(key)
    }

    fn key_value(&mut self, depth: usize) -> Option<(&'a str, Value)> {
        let key = self.bare_key()?;
        self.skip_blank();
        self.expect(b'=')?;
        self.skip_blank();
        let value = self.value(depth)?;
        Some((key, value))
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > DEPTH_MAX {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(Value::String),
            b'[' => self.array(depth + 1),
            b'{' => self.inline_table(depth + 1),
            b't' => self.word("true").map(|_| Value::Boolean(true)),
            b'f' => self.word("false").map(|_| Value::Boolean(false)),
            b'+' | b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn word(&mut self, word: &str) -> Option<()> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            self.value_ends()
        } else {
            None
        }
    }

    /// What may follow a value: blanks, a comment, a line end, `,`, `]`, `}` or the end.
    fn value_ends(&self) -> Option<()> {
        match self.peek() {
            None | Some(b' ' | b'\t' | b'\n' | b'\r' | b'#' | b',' | b']' | b'}') => Some(()),
            _ => None,
        }
    }

    /// A basic string without escapes (`"""` strings and any backslash leave the subset).
    fn string(&mut self) -> Option<String> {
        self.expect(b'"')?;
        if self.bytes[self.at..].starts_with(b"\"\"") {
            return None; // empty string followed by a quote, or a multi-line string
        }
        let start = self.at;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => return None,
                b'\t' => self.at += 1,
                0x00..=0x1f | 0x7f => return None,
                _ => self.at += 1,
            }
        }
        let text = &self.text[start..self.at];
        self.at += 1;
        self.value_ends()?;
        Some(text.to_string())
    }

    /// A decimal integer or float: `[+-]? (0 | [1-9][0-9]*) ( . [0-9]+ )? ( [eE] [+-]? [0-9]+ )?`.
    /// Underscores, leading zeros, other bases, `inf`, `nan` and dates leave the subset.
    fn number(&mut self) -> Option<Value> {
        let start = self.at;
        if matches!(self.peek(), Some(b'+' | b'-')) {
            self.at += 1;
        }
        let digits = self.digits();
        if digits == 0 {
            return None;
        }
        if digits > 1 && self.bytes[self.at - digits] == b'0' {
            return None;
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        self.value_ends()?;
        let text = &self.text[start..self.at];
        if float {
            let value: f64 = text.parse().ok()?;
            value.is_finite().then_some(Value::Float(value))
        } else {
            text.parse::<i64>().ok().map(Value::Integer)
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    /// `[ value, value, ]` over any number of lines, with comments between values.
    fn array(&mut self, depth: usize) -> Option<Value> {
        self.expect(b'[')?;
        let mut values = Vec::new();
        loop {
            self.skip_array_space()?;
            if self.peek() == Some(b']') {
                break;
            }
            values.push(self.value(depth)?);
            self.skip_array_space()?;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => break,
                _ => return None,
            }
        }
        self.at += 1;
        self.value_ends()?;
        Some(Value::Array(values))
    }

    /// `{ key = value, key = value }` on one line, without a trailing comma.
    fn inline_table(&mut self, depth: usize) -> Option<Value> {
        self.expect(b'{')?;
        let mut table = Table::new();
        self.skip_blank();
        if self.peek() == Some(b'}') {
            self.at += 1;
            self.value_ends()?;
            return Some(Value::Table(table));
        }
        loop {
            self.skip_blank();
            let (key, value) = self.key_value(depth)?;
            if table.insert(key.to_string(), value).is_some() {
                return None;
            }
            self.skip_blank();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => break,
                _ => return None,
            }
        }
        self.at += 1;
        self.value_ends()?;
        Some(Value::Table(table))
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    /// The contract: a table from the fast path is exactly the `toml` crate's table.
    fn agrees(text: &str) -> bool {
        match parse(text) {
            Some(fast) => {
                let general = toml::from_str::<toml::Table>(text);
                assert_eq!(general.as_ref().ok(), Some(&fast), "on {text:?}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn the_example_proposal_and_the_policy_take_the_fast_path() {
        let example = include_str!("../../tests/vectors/example-proposal.toml");
        // What `rollbook template` writes (arrays of tables) must stay on it too.
        let template = crate::sizing::Proposal::from_toml_str(example)
            .unwrap()
            .to_toml_string();
        for text in [
            example,
            &template,
            include_str!("../../keys-example/policy.toml"),
        ] {
            assert!(agrees(text), "left the fast path:\n{text}");
        }
    }

    #[test]
    fn the_subset_reads_like_toml() {
        for text in [
            "",
            "\n\n",
            "a = 1",
            "a = 1\r\nb = 2\r\n",
            "# only a comment",
            "a = \"x\" # trailing comment\n",
            "[t]\n",
            "[ t ]\nx = 1\n",
            "a = -0\nb = +7\nc = 0\nd = 9223372036854775807\ne = -9223372036854775808\n",
            "a = 1.5\nb = -0.0\nc = 1e5\nd = 1E-5\ne = 6.02e+23\nf = 1e05\ng = +3.25\n",
            "a = true\nb = false\n",
            "a = []\nb = [ ]\nc = [1, 2, 3,]\nd = [\n  1, # one\n  2,\n]\n",
            "a = [[1, 2], [\"x\"], [], [{ b = 1 }]]\n",
            "a = {}\nb = { x = 1, y = \"z\", w = [1, 2] }\nc = { d = { e = 1 } }\n",
            "a = \"üñíçødé ✓\"\nb = \"tab\there\"\nc = \"\"\n",
            "k-e_y9 = 1\n123 = 2\n-- = 3\n",
            "[[a]]\nx = 1\n[[a]]\nx = 2\n",
            "[b]\nk = 1\n[[b.c]]\nx = 1\n\n[[b.c]]\ny = 2\n[d]\n[[ b . e ]]\n",
            "[[b.c]]\nx = 1\n[[b.c]]\n",
            "[a]\n[b]\n[[a.c]]\nx = 1\n",
        ] {
            assert!(agrees(text), "left the fast path: {text:?}");
        }
    }

    #[test]
    fn anything_else_goes_to_the_toml_crate() {
        for text in [
            "a = \"x\\ny\"\n",            // escapes
            "a = 'literal'\n",            // literal string
            "a = \"\"\"multi\"\"\"\n",    // multi-line string
            "a.b = 1\n",                  // dotted key
            "a . b = 1\n",                // dotted key with blanks
            "\"a\" = 1\n",                // quoted key
            "[a.b]\n",                    // dotted header
            "a = []\n[[a]]\n",            // appending to a static array
            "[b]\nc = 1\n[[b.c]]\n",      // appending to a value
            "b = {}\n[[b.c]]\n",          // extending an inline table
            "[[a.b.c]]\n",                // deeper arrays of tables
            "[[a]]\n[a]\n",               // a table over an array
            "[[a]\n",                     // unbalanced brackets
            "[a]]\n",                     // unbalanced brackets
            "[[a] ]\n",                   // split brackets
            "a = 1_000\n",                // underscores
            "a = 01\n",                   // leading zero
            "a = 0x1f\n",                 // other bases
            "a = inf\nb = nan\n",         // special floats
            "a = 1e400\n",                // overflows to infinity
            "a = 9223372036854775808\n",  // past i64
            "a = 2026-07-22\n",           // dates
            "a = 07:32:00\n",             // times
            "a = 1979-05-27T07:32:00Z\n", // date-times
            "a = 1.\n",                   // not a float
            "a = .5\n",                   // not a float
            "a = { x = 1, }\n",           // trailing comma in an inline table
            "a = { x = 1,\n y = 2 }\n",   // newline in an inline table
            "a = 1\na = 2\n",             // duplicate key
            "[t]\n[t]\n",                 // duplicate table
            "t = 1\n[t]\n",               // table over a value
            "a = { x = 1, x = 2 }\n",     // duplicate inline key
            "a = 1 b = 2\n",              // two values on a line
            "a = 1\rb = 2\n",             // bare carriage return
            "# \u{1} control\n",          // control character in a comment
            "a = \"\u{7f}\"\n",           // DEL in a string
            "\u{feff}a = 1\n",            // byte order mark
            "a = truex\n",                // not a boolean
            "a = [1 2]\n",                // missing comma
            "a = [,]\n",                  // empty element
            "a = \n",                     // missing value
            "= 1\n",                      // missing key
        ] {
            assert!(parse(text).is_none(), "kept on the fast path: {text:?}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("a = {}1{}\n", "[".repeat(200), "]".repeat(200));
        assert!(parse(&deep).is_none());
    }

    /// Fragments that are, or are near to, the subset; documents are random mixes of them.
    fn fragment() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec!["a", "b", "c", "k-1", "x_y", "9", "a.b", "\"q\""]);
        let scalar = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|x| format!("{x}")),
            any::<f64>().prop_map(|x| format!("{x:e}")),
            any::<f64>().prop_map(|x| format!("{x:.3}")),
            (0u32..100_000, 0u32..1000, -30i32..30).prop_map(|(i, f, e)| format!("{i}.{f}e{e}")),
            "[ -~]{0,12}".prop_map(|s| format!("\"{s}\"")),
            "[a-z0-9\\\\\"\u{e9}\t]{0,8}".prop_map(|s| format!("\"{s}\"")),
            prop::sample::select(vec![
                "true",
                "false",
                "0",
                "-0",
                "+1",
                "01",
                "1_0",
                "0x10",
                "1.",
                ".1",
                "1e",
                "inf",
                "nan",
                "2026-07-22",
                "'lit'",
                "\"\"",
                "[]",
                "{}",
                "1979-05-27T07:32:00Z",
            ])
            .prop_map(str::to_string),
        ];
        let value = scalar.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                (
                    prop::collection::vec(inner.clone(), 0..4),
                    any::<bool>(),
                    any::<bool>()
                )
                    .prop_map(|(items, trailing, lines)| {
                        let sep = if lines { ",\n  " } else { ", " };
                        let mut text = format!("[{}", items.join(sep));
                        if trailing && !items.is_empty() {
                            text.push(',');
                        }
                        text.push(']');
                        text
                    }),
                prop::collection::vec(
                    (prop::sample::select(vec!["a", "b", "c", "a.b"]), inner),
                    0..3
                )
                .prop_map(|pairs| {
                    let body: Vec<String> =
                        pairs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    format!("{{ {} }}", body.join(", "))
                }),
            ]
        });
        prop_oneof![
            4 => (key, value, prop::sample::select(vec!["", " ", "\t", " # c"]))
                .prop_map(|(k, v, tail)| format!("{k} = {v}{tail}\n")),
            1 => prop::sample::select(vec![
                "[t]", "[u]", "[ t ]", "[t.u]", "[[t]]", "[a]", "[[t.u]]", "[[a.b]]", "[[a . c]]",
            ])
                .prop_map(|h| format!("{h}\n")),
            1 => prop::sample::select(vec!["\n", "# note\n", "\r\n", "\r", "  \n", "#\u{1}\n"])
                .prop_map(str::to_string),
        ]
    }

    #[test]
    fn fast_tables_equal_the_toml_crates() {
        // Random documents near the subset; the run must keep a fair share on the fast path,
        // or it would prove nothing about it.
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let documents = prop::collection::vec(fragment(), 0..12);
        let (mut fast, total) = (0, 4000);
        for _ in 0..total {
            let parts = documents.new_tree(&mut runner).unwrap().current();
            fast += usize::from(agrees(&parts.concat()));
        }
        assert!(
            fast * 10 >= total,
            "only {fast} of {total} documents took the fast path"
        );
    }

    proptest! {

        #[test]
        fn fast_floats_equal_the_toml_crates(x in any::<f64>()) {
            for text in [format!("a = {x:?}\n"), format!("a = {x:e}\n")] {
                agrees(&text);
            }
        }
    }
}
