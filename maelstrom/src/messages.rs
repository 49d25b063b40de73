//! `messages.jsonl`: every message the router handled, one JSON line each, in the run
//! directory (the report's message diagram reads it back with [`read`]).
//!
//! ```text
//!   router ──try_send──► bounded queue ──► writer thread ──► BufWriter ──► messages.jsonl
//!   (never waits: what the     (QUEUE)       (flushes when idle, every
//!    queue cannot take is counted)            FLUSH_EVERY, and at finish)
//! ```
//!
//! The router decides every message's latency, so it must not wait on a disk: a buffered
//! writer in the router would call write(2) from a tokio worker every few kilobytes, and a
//! write can stall for as long as the kernel throttles dirty pages. So the router only
//! hands records to a bounded queue, and a thread of the log's own serialises and writes
//! them. A record the queue cannot take is counted (`writer_behind`), never waited for;
//! records past [`MAX_RECORDS`] are counted (`over_limit`), never written. The counts are
//! the [`LogSummary`] in `results.json`, so a short file is never mistaken for a quiet run.
//!
//! Times are milliseconds since the run's start: the origin of `history.jsonl`'s `time`
//! (the recorder's instant), so a message and the operation it serves line up.

use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The file's name in the run directory.
pub const FILE: &str = "messages.jsonl";
/// At most this many lines; a 10 s run of 5 nodes at 100 ops/s makes about 20,000.
pub const MAX_RECORDS: u64 = 200_000;
/// Records waiting for the writer thread.
const QUEUE: usize = 16_384;
/// Longest `src`, `dest` or `type` kept (in characters): they come from node output.
pub const MAX_FIELD: usize = 64;
/// Longest line [`read`] accepts: three fields of [`MAX_FIELD`] characters, each escaped
/// as `\uXXXX` at worst, and the numbers.
pub const MAX_LINE: usize = 4096;
/// The writer flushes at least this often while messages flow, and whenever it is idle
/// this long: a run killed outright loses at most about this much of the file.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// What became of one copy of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageFate {
    /// Handed to its destination (a node's stdin queue, a client, a service).
    Delivered,
    /// The second copy of a message the network duplicated (`--duplicate`), delivered.
    Duplicate,
    /// Held back 10 to 100 ms so later messages overtook it (`--reorder`), delivered.
    Reordered,
    /// Dropped by random loss (`--loss`).
    Lost,
    /// Dropped because a partition cut its link.
    Cut,
    /// Arrived at a node that was down (killed, not yet restarted).
    Down,
    /// Dropped because a queue was full: the destination's (a paused node's), or the
    /// network's own held-message queue.
    QueueFull,
    /// Addressed to no node, client or service.
    UnknownDest,
}

impl MessageFate {
    /// Every fate, in the order the report's legend lists them.
    pub const ALL: [MessageFate; 8] = [
        MessageFate::Delivered,
        MessageFate::Duplicate,
        MessageFate::Reordered,
        MessageFate::Lost,
        MessageFate::Cut,
        MessageFate::Down,
        MessageFate::QueueFull,
        MessageFate::UnknownDest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageFate::Delivered => "delivered",
            MessageFate::Duplicate => "duplicate",
            MessageFate::Reordered => "reordered",
            MessageFate::Lost => "lost",
            MessageFate::Cut => "cut",
            MessageFate::Down => "down",
            MessageFate::QueueFull => "queue-full",
            MessageFate::UnknownDest => "unknown-dest",
        }
    }

    /// It reached its destination's process (or service).
    pub fn arrived(self) -> bool {
        matches!(
            self,
            MessageFate::Delivered | MessageFate::Duplicate | MessageFate::Reordered
        )
    }
}

/// One line of `messages.jsonl`: one copy of one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// When the router took it (ms since the run's start, as the history's `time`).
    pub sent_ms: f64,
    /// When it left the network: handed over, or found its destination down or full.
    /// Absent when the network dropped it (lost, cut, the held queue full).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_ms: Option<f64>,
    pub src: String,
    pub dest: String,
    /// The body's `type`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<u64>,
    pub fate: MessageFate,
}

/// Milliseconds from `origin` to `at`, to the microsecond.
pub fn ms_since(origin: Instant, at: Instant) -> f64 {
    let us = at.saturating_duration_since(origin).as_micros();
    us as f64 / 1e3
}

/// `s` cut to [`MAX_FIELD`] characters.
pub fn bounded(s: &str) -> String {
    match s.char_indices().nth(MAX_FIELD) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

impl MessageRecord {
    /// A record of one message (fields cut to [`MAX_FIELD`]); `delivered_ms` is `None`
    /// until it leaves the network.
    pub fn new(
        sent_ms: f64,
        src: &str,
        dest: &str,
        kind: &str,
        msg_id: Option<u64>,
        in_reply_to: Option<u64>,
        fate: MessageFate,
    ) -> MessageRecord {
        MessageRecord {
            sent_ms,
            delivered_ms: None,
            src: bounded(src),
            dest: bounded(dest),
            kind: bounded(kind),
            msg_id,
            in_reply_to,
            fate,
        }
    }
}

/// How the log went: in `results.json` as `message_log`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSummary {
    /// The file, relative to the run directory.
    pub file: String,
    pub limit: u64,
    /// Lines in the file.
    pub written: u64,
    /// Records past `limit`: counted, not written.
    pub over_limit: u64,
    /// Records the writer's queue could not take (it fell behind): not written.
    pub writer_behind: u64,
    /// Records not written after a write error (the first is `error`).
    #[serde(default)]
    pub failed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Messages the router handled after the log was closed (the nodes were being
    /// stopped): not part of the run, not written.
    #[serde(default)]
    pub after_end: u64,
}

impl LogSummary {
    /// Records of the run left out of the file, for whatever reason.
    pub fn omitted(&self) -> u64 {
        self.over_limit + self.writer_behind + self.failed
    }
}

/// What the writer thread counted.
#[derive(Default)]
struct Written {
    written: u64,
    over_limit: u64,
    failed: u64,
    error: Option<String>,
}

/// The router's side of `messages.jsonl`: [`MessageLog::record`] never blocks.
pub struct MessageLog {
    origin: Instant,
    limit: u64,
    /// `None` once finished.
    tx: Mutex<Option<SyncSender<MessageRecord>>>,
    writer: Mutex<Option<JoinHandle<Written>>>,
    behind: AtomicU64,
    after_end: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MessageLog {
    /// Creates `dir/messages.jsonl`; `origin` is the history's time 0.
    pub fn create(dir: &Path, origin: Instant) -> io::Result<MessageLog> {
        let f = std::fs::File::create(dir.join(FILE))?;
        MessageLog::to_writer(Box::new(f), origin, MAX_RECORDS)
    }

    /// A log into any sink (a file, or `io::sink()` for the routing benchmark), keeping at
    /// most `limit` records.
    pub fn to_writer(
        sink: Box<dyn Write + Send>,
        origin: Instant,
        limit: u64,
    ) -> io::Result<MessageLog> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let writer = std::thread::Builder::new()
            .name("messages.jsonl".into())
            .spawn(move || write_records(rx, BufWriter::with_capacity(1 << 16, sink), limit))?;
        Ok(MessageLog {
            origin,
            limit,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            behind: AtomicU64::new(0),
            after_end: AtomicU64::new(0),
        })
    }

    /// Milliseconds since the run's start.
    pub fn now_ms(&self) -> f64 {
        ms_since(self.origin, Instant::now())
    }

    /// Hands one record to the writer without waiting.
    pub fn record(&self, r: MessageRecord) {
        let tx = lock(&self.tx);
        let Some(tx) = tx.as_ref() else {
            self.after_end.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match tx.try_send(r) {
            Ok(()) => {}
            // The writer is behind, or gone (it panicked): either way the record is lost.
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.behind.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Closes the queue, waits for the writer to write and flush everything queued, and
    /// says what the file holds. Blocks (call it off the async workers); a second call
    /// returns the counts with no writer's.
    pub fn finish(&self) -> LogSummary {
        drop(lock(&self.tx).take());
        let handle = lock(&self.writer).take();
        let w = match handle.map(JoinHandle::join) {
            Some(Ok(w)) => w,
            Some(Err(_)) => Written {
                error: Some("the messages.jsonl writer panicked".into()),
                ..Written::default()
            },
            None => Written::default(),
        };
        LogSummary {
            file: FILE.into(),
            limit: self.limit,
            written: w.written,
            over_limit: w.over_limit,
            writer_behind: self.behind.load(Ordering::Relaxed),
            failed: w.failed,
            error: w.error,
            after_end: self.after_end.load(Ordering::Relaxed),
        }
    }
}

fn write_records(
    rx: Receiver<MessageRecord>,
    mut out: BufWriter<Box<dyn Write + Send>>,
    limit: u64,
) -> Written {
    let mut w = Written::default();
    let mut flushed = Instant::now();
    fn fail(w: &mut Written, e: io::Error) {
        w.error.get_or_insert_with(|| e.to_string());
    }
    loop {
        match rx.recv_timeout(FLUSH_EVERY) {
            Ok(r) => {
                if w.written >= limit {
                    w.over_limit += 1;
                    continue;
                }
                if w.error.is_some() {
                    w.failed += 1;
                    continue;
                }
                let res = serde_json::to_writer(&mut out, &r)
                    .map_err(io::Error::from)
                    .and_then(|()| out.write_all(b"\n"));
                match res {
                    Ok(()) => w.written += 1,
                    Err(e) => {
                        w.failed += 1;
                        fail(&mut w, e);
                    }
                }
                if flushed.elapsed() >= FLUSH_EVERY {
                    if let Err(e) = out.flush() {
                        fail(&mut w, e);
                    }
                    flushed = Instant::now();
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = out.flush() {
                    fail(&mut w, e);
                }
                flushed = Instant::now();
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Err(e) = out.flush() {
        fail(&mut w, e);
    }
    w
}

/// Why `messages.jsonl` could not be read at all (a bad line is a warning instead).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// `messages.jsonl` as read back.
#[derive(Debug, Default)]
pub struct ReadLog {
    pub records: Vec<MessageRecord>,
    /// Lines that were not records (a torn last line, a line too long), with their
    /// numbers; at most a few are named, the rest counted.
    pub warnings: Vec<String>,
    /// Lines past `max_records`, counted and not parsed.
    pub unread: u64,
}

/// Reads at most `max_records` records from `path`, each line at most [`MAX_LINE`]
/// bytes: the file may come from anywhere `sunder serve` or `analyze` is pointed at.
pub fn read(path: &Path, max_records: usize) -> Result<ReadLog, ReadError> {
    let err = |source| ReadError::Io {
        path: path.display().to_string(),
        source,
    };
    let f = std::fs::File::open(path).map_err(err)?;
    read_from(io::BufReader::new(f), max_records).map_err(err)
}

/// [`read`] over any reader.
pub fn read_from(mut r: impl BufRead, max_records: usize) -> io::Result<ReadLog> {
    const NAMED: usize = 5;
    let mut out = ReadLog::default();
    let mut bad = 0u64;
    let mut line = Vec::with_capacity(256);
    let mut line_no = 0u64;
    loop {
        line.clear();
        let n = io::Read::take(&mut r, MAX_LINE as u64 + 1).read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let complete = line.last() == Some(&b'\n');
        let why = if !complete && line.len() > MAX_LINE {
            // Skip the rest of the overlong line.
            r.skip_until(b'\n')?;
            Some(format!("longer than {MAX_LINE} bytes"))
        } else if out.records.len() >= max_records {
            out.unread += 1;
            continue;
        } else {
            match serde_json::from_slice::<MessageRecord>(line.trim_ascii_end()) {
                Ok(rec) => {
                    out.records.push(rec);
                    None
                }
                Err(e) if !complete => Some(format!("a torn last line ({e})")),
                Err(e) => Some(e.to_string()),
            }
        };
        if let Some(why) = why {
            bad += 1;
            if out.warnings.len() < NAMED {
                out.warnings.push(format!(
                    "{FILE} line {line_no}: not a message record: {why}"
                ));
            }
        }
    }
    if bad > NAMED as u64 {
        out.warnings.push(format!(
            "{FILE}: {} more lines that are not message records",
            bad - NAMED as u64
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A sink the test can read after the writer is done with it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            lock(&self.0).extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn rec(i: u64, fate: MessageFate) -> MessageRecord {
        let mut r = MessageRecord::new(
            i as f64 * 1.5,
            "n1",
            "c2",
            "read_ok",
            Some(i),
            Some(i + 1),
            fate,
        );
        if fate.arrived() {
            r.delivered_ms = Some(i as f64 * 1.5 + 0.25);
        }
        r
    }

    #[test]
    fn a_record_round_trips_through_its_line() {
        for fate in MessageFate::ALL {
            let r = rec(7, fate);
            let line = serde_json::to_string(&r).unwrap();
            assert!(
                line.contains(&format!("\"fate\":\"{}\"", fate.as_str())),
                "{line}"
            );
            assert_eq!(serde_json::from_str::<MessageRecord>(&line).unwrap(), r);
        }
        // The field names readers rely on.
        let v: serde_json::Value = serde_json::to_value(rec(3, MessageFate::Delivered)).unwrap();
        for k in [
            "sent_ms",
            "delivered_ms",
            "src",
            "dest",
            "type",
            "msg_id",
            "in_reply_to",
        ] {
            assert!(v.get(k).is_some(), "{k} missing from {v}");
        }
        // A dropped message has no delivery time; a message without ids has none written.
        let lost = MessageRecord::new(1.0, "n1", "n2", "gossip", None, None, MessageFate::Lost);
        assert_eq!(
            serde_json::to_string(&lost).unwrap(),
            r#"{"sent_ms":1.0,"src":"n1","dest":"n2","type":"gossip","fate":"lost"}"#
        );
    }

    #[test]
    fn fields_from_node_output_are_bounded() {
        let long = "é".repeat(500);
        let r = MessageRecord::new(0.0, &long, "n1", &long, None, None, MessageFate::Cut);
        assert_eq!(r.src.chars().count(), MAX_FIELD);
        assert_eq!(r.kind.chars().count(), MAX_FIELD);
        assert!(serde_json::to_string(&r).unwrap().len() < MAX_LINE);
        // The worst escaping of three full fields still fits a line the reader accepts.
        let ctl = "\u{1}".repeat(MAX_FIELD);
        let r = MessageRecord::new(
            1e9,
            &ctl,
            &ctl,
            &ctl,
            Some(u64::MAX),
            Some(u64::MAX),
            MessageFate::UnknownDest,
        );
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.len() < MAX_LINE, "{}", line.len());
        let back = read_from(io::Cursor::new(format!("{line}\n")), 10).unwrap();
        assert_eq!(back.records, vec![r]);
    }

    #[test]
    fn the_writer_keeps_the_limit_and_counts_what_it_left_out() {
        let sink = Shared::default();
        let log = MessageLog::to_writer(Box::new(sink.clone()), Instant::now(), 100).unwrap();
        let mut sent = 0;
        for i in 0..250 {
            log.record(rec(i, MessageFate::Delivered));
            sent += 1;
            if i % 50 == 0 {
                // Let the writer keep up, so the limit (not the queue) decides.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let s = log.finish();
        assert_eq!(s.written, 100);
        assert_eq!(s.written + s.omitted(), sent, "{s:?}");
        assert_eq!(s.over_limit + s.writer_behind, 150, "{s:?}");
        assert!(s.error.is_none());
        // After finish: counted apart, not written, and the file is what was flushed.
        log.record(rec(999, MessageFate::Delivered));
        let again = log.finish();
        assert_eq!(again.after_end, 1);
        let bytes = lock(&sink.0).clone();
        let back = read_from(io::Cursor::new(bytes), usize::MAX).unwrap();
        assert_eq!(back.records.len(), 100);
        assert!(back.warnings.is_empty(), "{:?}", back.warnings);
        assert_eq!(back.records[0], rec(0, MessageFate::Delivered));
        assert_eq!(back.records[99], rec(99, MessageFate::Delivered));
    }

    #[test]
    fn a_full_queue_is_counted_not_waited_for() {
        // A sink that blocks until released: the queue fills and `record` must return.
        struct Gate(Arc<Mutex<()>>);
        impl Write for Gate {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                drop(lock(&self.0));
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                drop(lock(&self.0));
                Ok(())
            }
        }
        let gate = Arc::new(Mutex::new(()));
        let held = lock(&gate);
        let log =
            MessageLog::to_writer(Box::new(Gate(gate.clone())), Instant::now(), u64::MAX).unwrap();
        let n = QUEUE as u64 * 4;
        let t = Instant::now();
        for i in 0..n {
            log.record(rec(i, MessageFate::Delivered));
        }
        assert!(t.elapsed() < Duration::from_secs(5), "record waited");
        drop(held);
        let s = log.finish();
        assert!(s.writer_behind > 0, "{s:?}");
        assert_eq!(s.written + s.omitted(), n, "{s:?}");
    }

    #[test]
    fn the_reader_bounds_lines_and_records_and_names_bad_lines() {
        let good = serde_json::to_string(&rec(1, MessageFate::Delivered)).unwrap();
        let mut text = String::new();
        for _ in 0..5 {
            text.push_str(&good);
            text.push('\n');
        }
        text.push_str(&"x".repeat(MAX_LINE * 3));
        text.push('\n');
        text.push_str("{\"not\":\"a record\"}\n");
        text.push_str(&good);
        text.push('\n');
        text.push_str(&good[..good.len() / 2]); // a torn last line
        let r = read_from(io::Cursor::new(text.clone()), usize::MAX).unwrap();
        assert_eq!(r.records.len(), 6);
        assert_eq!(r.unread, 0);
        assert_eq!(r.warnings.len(), 3, "{:?}", r.warnings);
        assert!(r.warnings[0].contains("line 6") && r.warnings[0].contains("longer than"));
        assert!(r.warnings[1].contains("line 7"));
        assert!(r.warnings[2].contains("torn last line"), "{:?}", r.warnings);
        // At most `max_records`: the rest counted.
        let r = read_from(io::Cursor::new(text), 2).unwrap();
        assert_eq!(r.records.len(), 2);
        assert_eq!(
            r.unread, 6,
            "every line after the second but the overlong one"
        );
    }
}
