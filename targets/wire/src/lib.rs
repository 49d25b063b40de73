//! The client protocol of sunder's built-in targets.
//!
//! Newline-delimited JSON over TCP. Every request carries an `id` chosen by the client;
//! many requests may be in flight on one connection and responses may come back in any
//! order, matched by `id`.
//!
//! ```text
//! → {"id":7,"op":"cas","key":"k1","from":1,"to":2}
//! ← {"id":7,"ok":true}
//! → {"id":8,"op":"write","key":"k1","value":5}
//! ← {"id":8,"ok":false,"error":"not-leader","definite":true,"leader":"n2"}
//! ```
//!
//! An error is *definite* when the operation certainly did not take effect (the client
//! records `fail`) and indefinite otherwise (`info`). A successful `cas` whose expected
//! value did not match answers `ok:false` with error `cas-mismatch`, definite.
//!
//! This crate is shared by `targets/node` (the server side) and `workloads` (the client),
//! so the two cannot drift. It depends on serde alone.
//!
//! It also holds the two other things a node hands to the harness, so that the cores that
//! write them and the agreement checker that reads them share one type each:
//!
//! ```text
//!   core / runtime ──► NodeEvent ──► nodes/<id>.events.jsonl (EventLine) ──┐
//!   core ── dump ────► Dump ───────► nodes/<id>.dump.json ──────────────────┴► sunder-checker agreement
//! ```
//!
//! - [`Op`], [`Request`], [`Response`], [`Status`]: the client protocol (this file).
//! - [`Dump`], [`DumpEntry`]: the payload of the `dump` admin reply (this file).
//! - [`event`]: [`NodeEvent`] and the stamped [`EventLine`] of a node's event stream.
//! - [`bank`]: what `transfer` and `balances` mean, for every target's state machine.
//! - [`bft`]: [`ClientSig`] and [`ReplySig`], the signatures a BFT target's (PBFT's)
//!   requests and replies carry, and the bytes they cover.

pub mod bank;
pub mod bft;
pub mod event;
pub use bft::{ClientSig, ReplySig};
pub use event::{EventLine, NodeEvent};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Register and set values.
pub type Val = i64;

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    /// The current value of a key: `null` when absent, a number for a register, a sorted
    /// array for a set.
    Read { key: String },
    /// Sets a register.
    Write { key: String, value: Val },
    /// Sets a register to `to` if it holds `from`.
    Cas { key: String, from: Val, to: Val },
    /// Adds an element to the set at `key`.
    Add { key: String, value: Val },
    /// Moves `amount` from account `from` to account `to` (registers; see [`bank`]),
    /// atomically, or refuses with `insufficient-funds`.
    Transfer {
        from: String,
        to: String,
        amount: Val,
    },
    /// The balances of the accounts `keys`, together: an object account → balance.
    Balances { keys: Vec<String> },
    /// Admin: this node's role, term, leader and commit index.
    Status,
    /// Admin: what this node has committed, for the agreement checkers.
    Dump,
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Read { .. } => "read",
            Op::Write { .. } => "write",
            Op::Cas { .. } => "cas",
            Op::Add { .. } => "add",
            Op::Transfer { .. } => "transfer",
            Op::Balances { .. } => "balances",
            Op::Status => "status",
            Op::Dump => "dump",
        }
    }

    /// The one key the operation is about: `None` for the bank's (several accounts) and
    /// the admin operations.
    pub fn key(&self) -> Option<&str> {
        match self {
            Op::Read { key }
            | Op::Write { key, .. }
            | Op::Cas { key, .. }
            | Op::Add { key, .. } => Some(key),
            Op::Transfer { .. } | Op::Balances { .. } | Op::Status | Op::Dump => None,
        }
    }

    /// Whether the operation may change state (and so must go through consensus).
    pub fn is_update(&self) -> bool {
        matches!(
            self,
            Op::Write { .. } | Op::Cas { .. } | Op::Add { .. } | Op::Transfer { .. }
        )
    }

    /// The history value of its invocation (Jepsen's): what the operation carries in.
    /// Real workers and the simulator record the same.
    pub fn invoke_value(&self) -> Value {
        match self {
            Op::Read { .. } | Op::Balances { .. } | Op::Status | Op::Dump => Value::Null,
            Op::Write { value, .. } | Op::Add { value, .. } => Value::from(*value),
            Op::Cas { from, to, .. } => Value::from(vec![*from, *to]),
            Op::Transfer { from, to, amount } => serde_json::json!({
                "from": from,
                "to": to,
                "amount": amount,
            }),
        }
    }

    /// Whether the operation is about data (anything but the harness's `status` and `dump`).
    pub fn is_data(&self) -> bool {
        !matches!(self, Op::Status | Op::Dump)
    }
}

/// A request: an id and an operation, flattened into one JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub op: Op,
    /// A BFT client's signature (PBFT); absent for every other target and for admin ops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<ClientSig>,
}

/// Error names a node may answer with. Others are allowed; these are the ones the
/// built-in targets and the client agree on.
pub mod errors {
    /// This node does not lead; `leader` may name the one that does. Definite.
    pub const NOT_LEADER: &str = "not-leader";
    /// The cas expected value did not match. Definite.
    pub const CAS_MISMATCH: &str = "cas-mismatch";
    /// The node could not finish in time; the operation may still happen. Indefinite.
    pub const TIMEOUT: &str = "timeout";
    /// The node is shutting down or lost leadership with the operation in flight.
    pub const UNAVAILABLE: &str = "unavailable";
    /// The request could not be parsed. Definite.
    pub const BAD_REQUEST: &str = "bad-request";
}

/// A response to the request with the same `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub id: u64,
    pub ok: bool,
    /// The value read, or the payload of `status` / `dump`.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For an error: true when the operation certainly did not take effect.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub definite: bool,
    /// For `not-leader`: the node believed to lead, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// For an `ok` update: the log position it was committed at, when the protocol has
    /// one, so that the agreement checker can find it after compaction. Optional both ways:
    /// older clients ignore it, older nodes leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed: Option<LogPosition>,
    /// A BFT replica's signature over the result (PBFT), for a client that needs f+1
    /// matching replies. Boxed: every other response carries `None` and stays small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<Box<ReplySig>>,
}

/// A log position: Raft index and term, or Paxos slot and ballot round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPosition {
    pub index: u64,
    pub term: u64,
}

impl Response {
    pub fn ok(id: u64, value: Value) -> Self {
        Response {
            id,
            ok: true,
            value,
            error: None,
            definite: false,
            leader: None,
            committed: None,
            signed: None,
        }
    }

    /// An `ok` update committed at `at`.
    pub fn committed(id: u64, at: LogPosition) -> Self {
        Response {
            committed: Some(at),
            ..Response::ok(id, Value::Null)
        }
    }

    pub fn error(id: u64, error: impl Into<String>, definite: bool) -> Self {
        Response {
            id,
            ok: false,
            value: Value::Null,
            error: Some(error.into()),
            definite,
            leader: None,
            committed: None,
            signed: None,
        }
    }

    pub fn not_leader(id: u64, leader: Option<String>) -> Self {
        Response {
            leader,
            ..Response::error(id, errors::NOT_LEADER, true)
        }
    }
}

/// The payload of a `status` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// This node's id, e.g. `n1`.
    pub node: String,
    /// `leader`, `follower`, `candidate`, `primary`, `replica`, ... (protocol-specific).
    pub role: String,
    /// Term, view or ballot round; 0 where the protocol has none.
    #[serde(default)]
    pub term: u64,
    /// The node this one believes leads, if any.
    #[serde(default)]
    pub leader: Option<String>,
    /// Highest committed log index or slot; 0 where the protocol has none.
    #[serde(default)]
    pub commit: u64,
}

/// One committed log entry in a `dump`: its position, the term or ballot it was
/// proposed in, and the command, as the protocol records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpEntry {
    pub index: u64,
    #[serde(default)]
    pub term: u64,
    /// The client command (an `Op` as JSON), or `null` (or absent) for a no-op.
    #[serde(default)]
    pub command: Value,
    /// The client request that proposed it, `<client-conn>:<id>`, when known, so that the
    /// agreement checker can tie acknowledged writes to log entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The node's hash chain over its committed entries through this one, when it keeps
    /// one; equal chains at one index mean equal committed prefixes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The payload of a `dump` response: what this node has committed, in order, starting
/// after `snapshot_index` (entries before it were compacted away), plus the state
/// machine's contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dump {
    pub node: String,
    #[serde(default)]
    pub snapshot_index: u64,
    pub entries: Vec<DumpEntry>,
    /// Key → value of the state machine after applying everything committed.
    #[serde(default)]
    pub state: Value,
    /// The hash chain through `snapshot_index` (what the compacted prefix was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_digest: Option<String>,
    /// `[first index, term]` runs: the term each compacted position was committed in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshot_terms: Vec<(u64, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_json_shape() {
        let r: Request =
            serde_json::from_str(r#"{"id":7,"op":"cas","key":"k1","from":1,"to":2}"#).unwrap();
        assert_eq!(
            r,
            Request {
                id: 7,
                op: Op::Cas {
                    key: "k1".into(),
                    from: 1,
                    to: 2
                },
                auth: None,
            }
        );
        let s = serde_json::to_string(&Request {
            id: 1,
            op: Op::Status,
            auth: None,
        })
        .unwrap();
        assert_eq!(s, r#"{"id":1,"op":"status"}"#);
        let t: Request =
            serde_json::from_str(r#"{"id":2,"op":"transfer","from":"a0","to":"a3","amount":4}"#)
                .unwrap();
        assert_eq!(
            t.op,
            Op::Transfer {
                from: "a0".into(),
                to: "a3".into(),
                amount: 4
            }
        );
        assert!(t.op.is_update() && t.op.is_data() && t.op.key().is_none());
        let b: Request =
            serde_json::from_str(r#"{"id":3,"op":"balances","keys":["a0","a1"]}"#).unwrap();
        assert!(!b.op.is_update() && b.op.is_data());
    }

    #[test]
    fn response_json_shape() {
        let s = serde_json::to_string(&Response::ok(7, Value::Null)).unwrap();
        assert_eq!(s, r#"{"id":7,"ok":true}"#);
        let s = serde_json::to_string(&Response::not_leader(8, Some("n2".into()))).unwrap();
        assert_eq!(
            s,
            r#"{"id":8,"ok":false,"error":"not-leader","definite":true,"leader":"n2"}"#
        );
        let back: Response = serde_json::from_str(&s).unwrap();
        assert!(back.definite);
    }
}
