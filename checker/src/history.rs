//! The history model: what a test recorded, one event per line.
//!
//! An operation is an `invoke` event followed (maybe) by one completion from the same
//! process: `ok` (it happened), `fail` (it certainly did not happen) or `info` (unknown:
//! it may take effect at any point after its invocation, or never). Nemesis events use the
//! process `nemesis`; client checkers keep them in the history but ignore them.
//!
//! The native serialisation is JSON lines with Jepsen's field names:
//!
//! ```text
//! {"index":0,"time":1200345,"type":"invoke","process":3,"f":"cas","key":"k1","value":[1,2]}
//! {"index":1,"time":3400999,"type":"ok","process":3,"f":"cas","key":"k1","value":[1,2]}
//! {"index":2,"time":5000000,"type":"info","process":"nemesis","f":"partition","value":{"n1":["n3"]}}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// What an event says about its operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }

    /// True for `ok`, `fail` and `info`.
    pub fn is_completion(self) -> bool {
        self != EventType::Invoke
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who performed an event: a client process (a logical thread with at most one operation
/// in flight) or the nemesis. Serialised as a number or the string `"nemesis"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl Process {
    pub fn is_nemesis(self) -> bool {
        self == Process::Nemesis
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Process;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative process number or \"nemesis\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Process, E> {
                Ok(Process::Client(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Process, E> {
                u64::try_from(v)
                    .map(Process::Client)
                    .map_err(|_| E::custom(format!("negative process {v}")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Process, E> {
                if v == "nemesis" {
                    Ok(Process::Nemesis)
                } else {
                    v.parse::<u64>()
                        .map(Process::Client)
                        .map_err(|_| E::custom(format!("unknown process {v:?}")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// One line of a history.
///
/// `value` is kept as JSON so that every workload's values (integers, `[from, to]` pairs for
/// cas, strings, lists for sets, maps for nemesis events) travel unchanged; `Value::Null` is
/// Jepsen's `nil`. `key` is `None` for single-register histories and for nemesis events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history, 0-based, dense.
    pub index: u64,
    /// Nanoseconds since the start of the test, monotonic.
    pub time: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub process: Process,
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Value,
    /// Why an operation failed or is indeterminate, when the client knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The node a client event was sent to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// On an `ok` update: where the node that acknowledged it says it was committed
    /// (`{"index":..,"term":..}`). Optional: histories without it read as before. The
    /// agreement checker uses it to locate writes whose log entries were compacted away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed: Option<Committed>,
}

/// A log position as a node reports it: the Raft index and term, or the Paxos slot and
/// ballot round, an acknowledged update was committed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Committed {
    pub index: u64,
    #[serde(default)]
    pub term: u64,
}

impl Event {
    pub fn is_client(&self) -> bool {
        !self.process.is_nemesis()
    }
}

/// A whole history in memory, in recorded order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub events: Vec<Event>,
}

impl History {
    pub fn new(events: Vec<Event>) -> Self {
        History { events }
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The client events only (nemesis events are kept in the history but no client
    /// checker looks at them).
    pub fn client_events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| e.is_client())
    }
}
