//! History formats, chosen by content (or forced):
//!
//! ```text
//!   file ──► detect (first non-blank characters) ──┬─ {"         ─► jsonl::JsonlReader
//!                                                  ├─ {:process  ─► porcupine::parse_kv_log
//!                                                  ├─ {: [{: #jepsen ─► edn::parse_edn
//!                                                  └─ INFO jepsen.util ─► porcupine::parse_etcd_log
//!                                                         │
//!                                                         ▼
//!                       ReadHistory { history, format, warnings, default_model, nil_read_unconstrained }
//!
//!   History ──► jsonl::JsonlWriter (native, streamed by the controller)
//!           └─► edn_write::EdnWriter (for Jepsen / Knossos)
//! ```

pub mod edn;
pub mod edn_write;
pub mod error;
pub mod jsonl;
pub mod porcupine;

pub use edn::parse_edn;
pub use edn_write::{EdnWriter, write_edn};
pub use error::FormatError;
pub use jsonl::{JsonlReader, JsonlWriter, read_jsonl, read_jsonl_path, write_jsonl};

use crate::history::History;
use crate::model::ModelSpec;
use serde_json::Value;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::str::FromStr;

/// A history format `sunder check` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// sunder's native JSON lines.
    Jsonl,
    /// Jepsen EDN (`history.edn`).
    Edn,
    /// Porcupine corpus: etcd Jepsen log lines.
    EtcdLog,
    /// Porcupine corpus: kv EDN-like lines.
    KvLog,
}

impl Format {
    /// The name used by `--format`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::EtcdLog => "etcd-log",
            Format::KvLog => "kv-log",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "jsonl" | "json" => Ok(Format::Jsonl),
            "edn" => Ok(Format::Edn),
            "etcd-log" | "etcd" => Ok(Format::EtcdLog),
            "kv-log" | "kv" => Ok(Format::KvLog),
            other => Err(format!(
                "unknown format {other:?}: expected jsonl, edn, etcd-log or kv-log"
            )),
        }
    }
}

/// A history as read, with what the reader learnt about how to check it.
#[derive(Debug, Clone)]
pub struct ReadHistory {
    pub history: History,
    pub format: Format,
    /// Things worth telling a person that did not stop the read (a truncated last line).
    pub warnings: Vec<String>,
    /// The model this format's histories are usually checked against.
    pub default_model: ModelSpec,
    /// True for EDN input: Knossos treats an `ok` read of nil as unconstrained.
    pub nil_read_unconstrained: bool,
}

/// Guesses the format from the content; `None` when nothing matches. An empty (or blank)
/// input matches nothing: callers fall back on the file name.
pub fn detect(src: &str) -> Option<Format> {
    let head = src.trim_start();
    if head.starts_with("{\"") || head.starts_with("{ \"") {
        return Some(Format::Jsonl);
    }
    // Porcupine's kv log is EDN-like but has its own reader (and default model).
    if porcupine::looks_like_kv_log(src) {
        return Some(Format::KvLog);
    }
    // EDN may open with `;` comment lines (Jepsen's own files often do).
    let head = skip_edn_comments(head);
    let open = head.trim_start_matches(['[', '(', ' ', '\t', '\r', '\n', ',']);
    if head.starts_with("#jepsen") || open.starts_with("{:") || open.starts_with("#jepsen") {
        return Some(Format::Edn);
    }
    if head.starts_with("INFO") || porcupine::looks_like_etcd_log(src) {
        return Some(Format::EtcdLog);
    }
    None
}

/// `src` after any leading blank lines and `;` comment lines.
fn skip_edn_comments(mut src: &str) -> &str {
    loop {
        src = src.trim_start();
        match src.strip_prefix(';') {
            Some(rest) => src = rest.split_once('\n').map_or("", |(_, after)| after),
            None => return src,
        }
    }
}

/// The format an empty file's name suggests (nothing else can tell).
fn by_extension(path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("edn") => Format::Edn,
        Some("log") => Format::EtcdLog,
        _ => Format::Jsonl,
    }
}

/// Reads the history at `path` in the `forced` format, or the one its content shows.
pub fn read_path(path: &Path, forced: Option<Format>) -> Result<ReadHistory, FormatError> {
    let io = |source| FormatError::Io {
        file: path.into(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut input = BufReader::with_capacity(1 << 16, file);
    // JSON lines (the big ones: a long sunder run) stream without holding the text.
    let head = input.fill_buf().map_err(io)?;
    let jsonl = match forced {
        Some(f) => f == Format::Jsonl,
        None => {
            let head = String::from_utf8_lossy(&head[..head.len().min(64)]);
            let head = head.trim_start();
            head.starts_with("{\"") || head.starts_with("{ \"")
        }
    };
    if jsonl {
        let (history, warnings) = read_jsonl(input, path)?;
        return Ok(finish(history, Format::Jsonl, warnings));
    }
    let mut src = String::new();
    input.read_to_string(&mut src).map_err(io)?;
    read_str(&src, path, forced)
}

/// As [`read_path`], for content already in memory; `file` names it in errors.
pub fn read_str(
    src: &str,
    file: &Path,
    forced: Option<Format>,
) -> Result<ReadHistory, FormatError> {
    let format = match forced.or_else(|| detect(src)) {
        Some(f) => f,
        None if src.trim().is_empty() => by_extension(file),
        None => {
            let first = src.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            let first: String = first.chars().take(40).collect();
            return Err(FormatError::UnknownFormat {
                file: file.into(),
                why: format!(
                    "the first line starts {first:?}; expected JSON lines ({{\"...), \
                     Jepsen EDN ({{:..., [{{:..., #jepsen.history.Op{{...), \
                     an etcd Jepsen log (INFO  jepsen.util - ...) or a Porcupine kv log; \
                     use --format to force one"
                ),
            });
        }
    };
    let mut warnings = Vec::new();
    let history = match format {
        Format::Jsonl => {
            let (h, w) = read_jsonl(src.as_bytes(), file)?;
            warnings = w;
            h
        }
        Format::Edn => parse_edn(src, file)?,
        Format::EtcdLog => porcupine::parse_etcd_log(src, file)?,
        Format::KvLog => porcupine::parse_kv_log(src, file)?,
    };
    // The log formats skip lines that are not operations; a file with text but not one
    // operation was taken for the wrong format, and is not an empty (valid) history.
    if history.is_empty() && !src.trim().is_empty() && forced.is_none() {
        let first = src.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let first: String = first.chars().take(40).collect();
        return Err(FormatError::UnknownFormat {
            file: file.into(),
            why: format!(
                "it was taken for {format} (the first line starts {first:?}), but no line \
                 holds an operation of that format; use --format to force one"
            ),
        });
    }
    if history.is_empty() && !src.trim().is_empty() {
        return Err(FormatError::parse(
            file,
            1,
            format!("no line holds an operation of the {format} format"),
        ));
    }
    Ok(finish(history, format, warnings))
}

fn finish(history: History, format: Format, warnings: Vec<String>) -> ReadHistory {
    let default_model = match format {
        Format::EtcdLog => ModelSpec::CasRegister {
            initial: Value::Null,
        },
        Format::KvLog => ModelSpec::Kv {
            initial: Value::String(String::new()),
        },
        Format::Jsonl | Format::Edn => {
            if history.client_events().any(|e| e.key.is_some()) {
                ModelSpec::Kv {
                    initial: Value::Null,
                }
            } else {
                ModelSpec::CasRegister {
                    initial: Value::Null,
                }
            }
        }
    };
    ReadHistory {
        history,
        format,
        warnings,
        default_model,
        nil_read_unconstrained: format == Format::Edn,
    }
}
