//! Native JSON lines: one [`Event`] per line, read and written as a stream.
//!
//! The test controller writes `history.jsonl` while the test runs, so a run that was killed
//! leaves a last line cut short. The reader turns that one case (a final line with no
//! newline that does not parse) into a warning; any other bad line is an error naming the
//! file, the line and what was expected.

use super::FormatError;
use crate::history::{Event, History};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// What every line must hold, quoted in errors.
const EXPECTED: &str = "expected one event object per line, \
     e.g. {\"index\":0,\"time\":0,\"type\":\"invoke\",\"process\":0,\"f\":\"read\",\"value\":null}";

/// A streaming reader: an iterator of events over any [`BufRead`].
///
/// Blank lines are skipped. After the iterator ends, [`JsonlReader::warnings`] says whether
/// a truncated last line was dropped.
pub struct JsonlReader<R> {
    input: R,
    file: PathBuf,
    line: usize,
    buf: String,
    warnings: Vec<String>,
    done: bool,
}

impl<R: BufRead> JsonlReader<R> {
    /// `file` only names the source in errors and warnings.
    pub fn new(input: R, file: impl Into<PathBuf>) -> Self {
        JsonlReader {
            input,
            file: file.into(),
            line: 0,
            buf: String::new(),
            warnings: Vec::new(),
            done: false,
        }
    }

    /// Warnings so far (a truncated last line).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn into_warnings(self) -> Vec<String> {
        self.warnings
    }

    fn parse_error(&self, err: &serde_json::Error) -> FormatError {
        FormatError::parse(&self.file, self.line, describe(err))
    }
}

impl<R: BufRead> Iterator for JsonlReader<R> {
    type Item = Result<Event, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            let n = match self.input.read_line(&mut self.buf) {
                Ok(n) => n,
                Err(source) => {
                    self.done = true;
                    let message = format!("line {}: {source}", self.line + 1);
                    let source = io::Error::new(source.kind(), message);
                    return Some(Err(FormatError::Io {
                        file: self.file.clone(),
                        source,
                    }));
                }
            };
            if n == 0 {
                self.done = true;
                break;
            }
            self.line += 1;
            let text = self.buf.trim();
            if text.is_empty() {
                continue;
            }
            let complete = self.buf.ends_with('\n');
            return match serde_json::from_str::<Event>(text) {
                Ok(event) => Some(Ok(event)),
                // Only the last line can lack its newline: this is a writer cut off mid-line.
                Err(err) if !complete => {
                    self.done = true;
                    self.warnings.push(format!(
                        "{}:{}: last line is truncated (no newline, {}); ignored it",
                        self.file.display(),
                        self.line,
                        describe(&err)
                    ));
                    None
                }
                Err(err) => {
                    let e = self.parse_error(&err);
                    Some(Err(e))
                }
            };
        }
        None
    }
}

/// serde_json's message without its own `at line 1 column N` (the line is ours), plus
/// what a line should look like.
fn describe(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let text = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => &text,
    };
    format!("{text} (column {}); {EXPECTED}", err.column())
}

/// Reads a whole JSON-lines history from `input`; returns it with any warnings.
pub fn read_jsonl<R: BufRead>(
    input: R,
    file: impl Into<PathBuf>,
) -> Result<(History, Vec<String>), FormatError> {
    let mut reader = JsonlReader::new(input, file);
    let mut events = Vec::new();
    for event in reader.by_ref() {
        events.push(event?);
    }
    Ok((History::new(events), reader.into_warnings()))
}

/// Reads the JSON-lines history at `path`; returns it with any warnings.
pub fn read_jsonl_path(path: &Path) -> Result<(History, Vec<String>), FormatError> {
    let file = File::open(path).map_err(|source| FormatError::Io {
        file: path.into(),
        source,
    })?;
    read_jsonl(BufReader::with_capacity(1 << 16, file), path)
}

/// A streaming writer: one event per line, written as it happens.
///
/// Each event is serialised into a reused buffer and handed to `W` in a single
/// `write_all`, so an unbuffered file gets one write per event and a killed run leaves at
/// most one partial line. Wrap `W` in a `BufWriter` when throughput matters more.
pub struct JsonlWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> JsonlWriter<W> {
    pub fn new(out: W) -> Self {
        JsonlWriter {
            out,
            buf: Vec::with_capacity(256),
        }
    }

    pub fn write_event(&mut self, event: &Event) -> io::Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, event)?;
        self.buf.push(b'\n');
        self.out.write_all(&self.buf)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Writes a whole history as JSON lines.
pub fn write_jsonl<W: Write>(out: W, history: &History) -> io::Result<()> {
    let mut w = JsonlWriter::new(io::BufWriter::new(out));
    for event in &history.events {
        w.write_event(event)?;
    }
    w.flush()
}
