//! The recorder: the one place events get their index and time.
//!
//! Workers and the nemesis record from many tasks and threads at once. Index and time are
//! assigned under one lock, so that index order is time order and every event is on disk
//! (one JSON line, flushed) before `record` returns: a run killed half-way leaves a history
//! that ends at most in a torn last line.

use serde::Serialize;
use serde_json::Value;
use std::io::{self, Write};
use std::sync::Mutex;
use std::time::Instant;
use sunder_checker::{Committed, Event, EventType, Process};

/// How many events of each type have been recorded, for the progress line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Client invocations.
    pub invoke: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// Nemesis events of any type.
    pub nemesis: u64,
}

struct Inner {
    sink: Box<dyn Write + Send>,
    events: Vec<Event>,
    counts: Counts,
    /// The highest client process recorded so far.
    max_process: Option<u64>,
    /// The first write error; later writes are skipped and `flush` reports it.
    write_error: Option<io::Error>,
    last_time: u64,
}

/// Streams events to a sink (`history.jsonl`) and keeps them in memory.
pub struct Recorder {
    start: Instant,
    inner: Mutex<Inner>,
}

impl Recorder {
    /// `start` is time zero of the test; `sink` receives one JSON line per event.
    pub fn new(start: Instant, sink: Box<dyn Write + Send>) -> Recorder {
        Recorder {
            start,
            inner: Mutex::new(Inner {
                sink,
                events: Vec::new(),
                counts: Counts::default(),
                max_process: None,
                write_error: None,
                last_time: 0,
            }),
        }
    }

    /// Records one event and returns it as written. Thread-safe.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        process: Process,
        kind: EventType,
        f: &str,
        key: Option<&str>,
        value: Value,
        error: Option<String>,
        node: Option<&str>,
    ) -> Event {
        self.record_at(process, kind, f, key, value, error, node, None)
    }

    /// As [`Recorder::record`], with the log position an `ok` update was committed at.
    #[allow(clippy::too_many_arguments)]
    pub fn record_at(
        &self,
        process: Process,
        kind: EventType,
        f: &str,
        key: Option<&str>,
        value: Value,
        error: Option<String>,
        node: Option<&str>,
        committed: Option<Committed>,
    ) -> Event {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Read the clock under the lock, and never step back, so index order is time order.
        let elapsed = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let time = elapsed.max(inner.last_time);
        inner.last_time = time;
        let event = Event {
            index: inner.events.len() as u64,
            time,
            kind,
            process,
            f: f.to_string(),
            key: key.map(str::to_string),
            value,
            error,
            node: node.map(str::to_string),
            committed,
        };
        match process {
            Process::Nemesis => inner.counts.nemesis += 1,
            Process::Client(p) => {
                inner.max_process = Some(inner.max_process.map_or(p, |m| m.max(p)));
                let c = &mut inner.counts;
                match kind {
                    EventType::Invoke => c.invoke += 1,
                    EventType::Ok => c.ok += 1,
                    EventType::Fail => c.fail += 1,
                    EventType::Info => c.info += 1,
                }
            }
        }
        if inner.write_error.is_none() {
            let mut line = serde_json::to_vec(&event).expect("an event always serialises");
            line.push(b'\n');
            let res = inner
                .sink
                .write_all(&line)
                .and_then(|()| inner.sink.flush());
            if let Err(e) = res {
                tracing::warn!("history write failed: {e}; keeping events in memory only");
                inner.write_error = Some(e);
            }
        }
        inner.events.push(event.clone());
        event
    }

    /// Counts so far.
    pub fn counts(&self) -> Counts {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).counts
    }

    /// A snapshot of every event recorded so far, in index order.
    pub fn events(&self) -> Vec<Event> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .events
            .clone()
    }

    /// A client process id never used so far (Jepsen hands out fresh ids the same way).
    pub fn fresh_process(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .max_process
            .map_or(0, |m| m + 1)
    }

    /// Flushes the sink; reports the first write error met so far, if any.
    pub fn flush(&self) -> io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &inner.write_error {
            return Err(io::Error::new(
                e.kind(),
                format!("writing the history failed: {e}"),
            ));
        }
        inner.sink.flush()
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}
