//! Writes a history as Jepsen EDN, one op map per line, so Jepsen's and Knossos' own tools
//! can read a sunder history:
//!
//! ```text
//! {:index 0, :time 1200345, :type :invoke, :process 3, :f :cas, :key "k1", :value [1 2]}
//! {:index 2, :time 5000000, :type :info, :process :nemesis, :f :partition, :value {"n1" ["n3"]}}
//! ```
//!
//! `:type` and `:f` are keywords, the nemesis is `:process :nemesis`; map keys inside
//! values stay strings so that JSON lines → EDN → JSON lines gives the same history.

use crate::history::{Event, History, Process};
use serde_json::Value;
use std::fmt::Write as _;
use std::io::{self, Write};

/// A streaming EDN writer, one op per line.
pub struct EdnWriter<W: Write> {
    out: W,
    buf: String,
}

impl<W: Write> EdnWriter<W> {
    pub fn new(out: W) -> Self {
        EdnWriter {
            out,
            buf: String::with_capacity(256),
        }
    }

    pub fn write_event(&mut self, event: &Event) -> io::Result<()> {
        self.buf.clear();
        event_to_edn(event, &mut self.buf);
        self.buf.push('\n');
        self.out.write_all(self.buf.as_bytes())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Writes a whole history as EDN.
pub fn write_edn<W: Write>(out: W, history: &History) -> io::Result<()> {
    let mut w = EdnWriter::new(io::BufWriter::new(out));
    for event in &history.events {
        w.write_event(event)?;
    }
    w.flush()
}

/// One event as an EDN op map (no newline).
pub fn event_to_edn(e: &Event, out: &mut String) {
    let _ = write!(
        out,
        "{{:index {}, :time {}, :type :{}, :process ",
        e.index, e.time, e.kind
    );
    match e.process {
        Process::Client(p) => {
            let _ = write!(out, "{p}");
        }
        Process::Nemesis => out.push_str(":nemesis"),
    }
    out.push_str(", :f ");
    keyword_or_string(&e.f, out);
    if let Some(key) = &e.key {
        out.push_str(", :key ");
        string(key, out);
    }
    out.push_str(", :value ");
    json_to_edn(&e.value, out);
    if let Some(error) = &e.error {
        out.push_str(", :error ");
        string(error, out);
    }
    if let Some(node) = &e.node {
        out.push_str(", :node ");
        string(node, out);
    }
    out.push('}');
}

/// A JSON value as EDN: null→nil, arrays→vectors, objects→maps with string keys.
pub fn json_to_edn(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                // Beyond i64: EDN readers want the N suffix for big integers.
                let _ = write!(out, "{u}N");
            } else if let Some(f) = n.as_f64() {
                let _ = write!(out, "{f:?}");
            }
        }
        Value::String(s) => string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                json_to_edn(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                string(k, out);
                out.push(' ');
                json_to_edn(v, out);
            }
            out.push('}');
        }
    }
}

/// `:name` when `name` is a plain keyword, else a string (which reads back the same).
fn keyword_or_string(name: &str, out: &mut String) {
    let plain = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == ':' || c == '/')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.*+!?<>=".contains(c));
    if plain {
        out.push(':');
        out.push_str(name);
    } else {
        string(name, out);
    }
}

fn string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}
