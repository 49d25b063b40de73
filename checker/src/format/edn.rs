//! Jepsen EDN histories: one op map per line, or a top-level vector or list of op maps;
//! plain maps or `#jepsen.history.Op{...}` records.
//!
//! ```text
//! {:index 0, :time 1200345, :type :invoke, :process 3, :f :cas, :value [1 2]}
//! #jepsen.history.Op{:index 1, :time 3400999, :type :ok, :process 3, :f :cas, :value [1 2]}
//! {:type :info, :process :nemesis, :f :start, :value {"n1" #{"n3"}}}
//! ```
//!
//! Forms are read one at a time so that every error names the line the bad op starts on,
//! even inside a top-level vector. EDN values become JSON ([`edn_to_json`]); Knossos'
//! conventions (cas values `[from to]`, an `ok` read of nil is unconstrained) are the
//! checker's business, not the reader's.

use super::FormatError;
use crate::history::{Event, EventType, History, Process};
use clojure_reader::edn::{self, Edn};
use clojure_reader::error::Code;
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::path::Path;

const EXPECTED_OP: &str = "expected an op map such as \
     {:type :invoke, :process 0, :f :read, :value nil}";

/// How deep collections may nest. The EDN reader, the conversion to JSON and dropping the
/// result all recurse once per level; a file nested 100,000 deep would overflow the stack,
/// so it is refused before any of them runs. Jepsen's ops nest a handful of levels.
pub const MAX_NESTING: usize = 512;

/// Refuses input whose collections nest deeper than [`MAX_NESTING`], naming the line where
/// the limit is crossed. A scan of the bytes that does not recurse: strings, `;` comments
/// and character literals (`\[`) do not count.
pub fn check_nesting(src: &str, file: &Path) -> Result<(), FormatError> {
    let (mut depth, mut line) = (0usize, 1usize);
    let (mut in_string, mut escaped, mut in_comment) = (false, false, false);
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b == b'\n' {
            line += 1;
            in_comment = false;
            continue;
        }
        if in_comment {
            continue;
        }
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b';' => in_comment = true,
            // A character literal: the next character is data, not a delimiter.
            b'\\' => i += usize::from(i < bytes.len() && bytes[i] != b'\n'),
            b'[' | b'(' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(FormatError::parse(
                        file,
                        line,
                        format!(
                            "collections nested more than {MAX_NESTING} levels deep; \
                             a history op nests a few levels"
                        ),
                    ));
                }
            }
            b']' | b')' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Reads a whole EDN history.
pub fn parse_edn(src: &str, file: &Path) -> Result<History, FormatError> {
    check_nesting(src, file)?;
    let mut r = Reader {
        src,
        file,
        pos: 0,
        line: 1,
        line_at: 0,
        events: Vec::new(),
    };
    r.run()?;
    Ok(History::new(r.events))
}

struct Reader<'s> {
    src: &'s str,
    file: &'s Path,
    pos: usize,
    /// The line number of byte `line_at` (advanced lazily, always forward).
    line: usize,
    line_at: usize,
    events: Vec<Event>,
}

impl Reader<'_> {
    fn run(&mut self) -> Result<(), FormatError> {
        loop {
            self.skip_blank();
            let Some(c) = self.peek() else { return Ok(()) };
            let close = match c {
                '[' => ']',
                '(' => ')',
                _ => {
                    let (form, line) = self.read_form()?;
                    self.push_op(&form, line)?;
                    continue;
                }
            };
            // A top-level collection of ops: read its elements one by one to keep their lines.
            let open_line = self.line_of(self.pos);
            self.pos += 1;
            loop {
                self.skip_blank();
                match self.peek() {
                    None => {
                        return Err(self.error(
                            open_line,
                            format!("unbalanced EDN: the top-level `{c}` opened here is never closed with `{close}`"),
                        ));
                    }
                    Some(d) if d == close => {
                        self.pos += 1;
                        break;
                    }
                    Some(_) => {
                        let (form, line) = self.read_form()?;
                        self.push_op(&form, line)?;
                    }
                }
            }
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    /// Skips whitespace, commas (whitespace in EDN), `;` comments and `#_` discards of
    /// simple forms are left to the reader.
    fn skip_blank(&mut self) {
        let bytes = self.src.as_bytes();
        while self.pos < bytes.len() {
            match bytes[self.pos] {
                b' ' | b'\t' | b'\r' | b'\n' | b',' => self.pos += 1,
                b';' => {
                    while self.pos < bytes.len() && bytes[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn line_of(&mut self, pos: usize) -> usize {
        debug_assert!(pos >= self.line_at);
        self.line += self.src.as_bytes()[self.line_at..pos]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line_at = pos;
        self.line
    }

    fn error(&self, line: usize, message: impl Into<String>) -> FormatError {
        FormatError::parse(self.file, line, message)
    }

    /// Reads the form at `pos` (after blanks); returns it with the line it starts on.
    fn read_form(&mut self) -> Result<(Edn<'static>, usize), FormatError> {
        let line = self.line_of(self.pos);
        let rest = &self.src[self.pos..];
        match edn::read(rest) {
            Ok((form, remaining)) => {
                self.pos = self.src.len() - remaining.len();
                Ok((form.into_owned(), line))
            }
            Err(e) => {
                let at = match (e.line, e.column) {
                    (Some(l), Some(c)) => {
                        format!(" (reader stopped at line {}, column {c})", line + l - 1)
                    }
                    _ => String::new(),
                };
                let what = match e.code {
                    Code::UnexpectedEOF => {
                        "unbalanced EDN: the form starting here is not closed before the end of the file".to_string()
                    }
                    Code::UnmatchedDelimiter(d) => format!("unbalanced EDN: unexpected `{d}`"),
                    Code::HashMapDuplicateKey => "a map has the same key twice".to_string(),
                    other => format!("invalid EDN ({other:?})"),
                };
                Err(self.error(line, format!("{what}{at}; {EXPECTED_OP}")))
            }
        }
    }

    fn push_op(&mut self, form: &Edn<'_>, line: usize) -> Result<(), FormatError> {
        let position = self.events.len() as u64;
        let event = op_to_event(form, position).map_err(|m| self.error(line, m))?;
        self.events.push(event);
        Ok(())
    }
}

fn kw(name: &'static str) -> Edn<'static> {
    Edn::Key(Cow::Borrowed(name))
}

/// One op map (or record) to an event; `position` stands in for a missing :index / :time.
fn op_to_event(form: &Edn<'_>, position: u64) -> Result<Event, String> {
    let map = match form {
        Edn::Map(m) => m,
        Edn::Tagged(_, inner) => match inner.as_ref() {
            Edn::Map(m) => m,
            other => {
                return Err(format!(
                    "a tagged value that is not a map: {}; {EXPECTED_OP}",
                    short(other)
                ));
            }
        },
        other => return Err(format!("not a map: {}; {EXPECTED_OP}", short(other))),
    };
    let get = |k: &'static str| map.get(&kw(k));

    let kind = match get("type") {
        Some(Edn::Key(t)) | Some(Edn::Str(t)) => match t.as_ref() {
            "invoke" => EventType::Invoke,
            "ok" => EventType::Ok,
            "fail" => EventType::Fail,
            "info" => EventType::Info,
            other => {
                return Err(format!(
                    "bad :type :{other}: expected one of :invoke :ok :fail :info"
                ));
            }
        },
        Some(other) => {
            return Err(format!(
                "bad :type {}: expected one of :invoke :ok :fail :info",
                short(other)
            ));
        }
        None => return Err(format!("missing :type; {EXPECTED_OP}")),
    };
    let process = match get("process") {
        Some(Edn::Int(p)) if *p >= 0 => Process::Client(*p as u64),
        Some(Edn::Key(k)) | Some(Edn::Str(k)) if k == "nemesis" => Process::Nemesis,
        Some(other) => {
            return Err(format!(
                "bad :process {}: expected a non-negative integer or :nemesis",
                short(other)
            ));
        }
        None => return Err(format!("missing :process; {EXPECTED_OP}")),
    };
    let f = match get("f") {
        Some(Edn::Key(s)) | Some(Edn::Str(s)) | Some(Edn::Symbol(s)) => s.to_string(),
        Some(other) => {
            return Err(format!(
                "bad :f {}: expected a keyword such as :read",
                short(other)
            ));
        }
        None => return Err(format!("missing :f; {EXPECTED_OP}")),
    };
    let number = |k: &'static str| -> Result<Option<u64>, String> {
        match get(k) {
            None | Some(Edn::Nil) => Ok(None),
            Some(Edn::Int(n)) if *n >= 0 => Ok(Some(*n as u64)),
            Some(other) => Err(format!(
                "bad :{k} {}: expected a non-negative integer",
                short(other)
            )),
        }
    };
    let index = number("index")?.unwrap_or(position);
    let time = number("time")?.unwrap_or(position);
    let text = |k: &'static str| -> Option<String> {
        get(k).filter(|v| !matches!(v, Edn::Nil)).map(edn_to_text)
    };
    Ok(Event {
        index,
        time,
        kind,
        process,
        f,
        key: text("key"),
        value: get("value").map(edn_to_json).unwrap_or(Value::Null),
        error: text("error"),
        node: text("node"),
        committed: None,
    })
}

/// A key, error or node as text: strings as they are, keywords and symbols without their
/// colon, anything else as EDN.
fn edn_to_text(v: &Edn<'_>) -> String {
    match v {
        Edn::Str(s) | Edn::Key(s) | Edn::Symbol(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// An EDN value as JSON: nil→null, keywords and symbols→strings without colon,
/// vectors/lists/sets→arrays, maps→objects with stringified keys, tagged values→their
/// value.
pub fn edn_to_json(v: &Edn<'_>) -> Value {
    match v {
        Edn::Nil => Value::Null,
        Edn::Bool(b) => Value::Bool(*b),
        Edn::Int(i) => Value::Number((*i).into()),
        Edn::Double(d) => Number::from_f64(d.into_inner()).map_or(Value::Null, Value::Number),
        Edn::Rational((n, d)) => {
            Number::from_f64(*n as f64 / *d as f64).map_or(Value::Null, Value::Number)
        }
        Edn::Str(s) | Edn::Key(s) | Edn::Symbol(s) => Value::String(s.to_string()),
        Edn::Char(c) => Value::String(c.to_string()),
        Edn::Vector(items) | Edn::List(items) => {
            Value::Array(items.iter().map(edn_to_json).collect())
        }
        Edn::Set(items) => Value::Array(items.iter().map(edn_to_json).collect()),
        Edn::Map(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(edn_to_text(k), edn_to_json(v));
            }
            Value::Object(out)
        }
        Edn::Tagged(_, inner) => edn_to_json(inner),
        other => Value::String(other.to_string()),
    }
}

/// A value quoted in an error, cut short.
fn short(v: &Edn<'_>) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}
