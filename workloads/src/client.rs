//! What a client adapter is: something that sends one operation to one node and says
//! whether it happened (`Ok`), certainly did not (`Fail`) or may have (`Info`).

use serde_json::Value;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use sunder_checker::EventType;
use sunder_wire::{LogPosition, Op};

/// A node a client may talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The node id, e.g. `n1`, as recorded in the history's `node` field.
    pub id: String,
    /// Where its client protocol listens.
    pub addr: SocketAddr,
}

/// How one call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It happened; the value read (or `null` for an update).
    Ok(Value),
    /// An update happened, and the node said at which log position it was committed
    /// (recorded in the history's `committed` field for the agreement checker).
    Committed(LogPosition),
    /// It certainly did not happen. `leader` is a `not-leader` answer's hint.
    Fail {
        error: String,
        leader: Option<String>,
    },
    /// It may or may not have happened: a timeout, a connection lost after sending, an
    /// indefinite error from the node.
    Info { error: String },
}

impl Outcome {
    /// The history event type this outcome is recorded as.
    pub fn event_type(&self) -> EventType {
        match self {
            Outcome::Ok(_) | Outcome::Committed(_) => EventType::Ok,
            Outcome::Fail { .. } => EventType::Fail,
            Outcome::Info { .. } => EventType::Info,
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            Outcome::Ok(_) | Outcome::Committed(_) => None,
            Outcome::Fail { error, .. } | Outcome::Info { error } => Some(error),
        }
    }
}

/// Error names the clients produce themselves (the node's own errors pass through).
pub mod errors {
    /// Could not connect: the operation was never sent. Definite.
    pub const CONNECT: &str = "connect-failed";
    /// Sending failed before any byte left. Definite.
    pub const SEND: &str = "send-failed";
    /// No answer within the client timeout. Indefinite.
    pub const TIMEOUT: &str = "client-timeout";
    /// The connection broke with the request sent and unanswered. Indefinite.
    pub const CONNECTION_LOST: &str = "connection-lost";
    /// The node answered something the client could not parse. Indefinite.
    pub const PROTOCOL: &str = "protocol-error";
}

/// A client adapter for one cluster: sunder's JSON-lines protocol, etcd's API (later).
///
/// Shared by every worker (`&self`), so an implementation may pipeline many calls from
/// many workers over one connection per node. `node` indexes [`Client::endpoints`].
pub trait Client: Send + Sync + 'static {
    /// The nodes this client can reach, in a fixed order.
    fn endpoints(&self) -> &[Endpoint];

    /// Whether the target has a compare-and-set. A system without one (a spec that
    /// describes no cas) gets none: the register workload then only reads and writes.
    fn can_cas(&self) -> bool {
        true
    }

    /// Sends `op` to node `node` and waits at most `timeout` (connecting included).
    fn call(&self, node: usize, op: &Op, timeout: Duration)
    -> impl Future<Output = Outcome> + Send;
}
