//! Log entries and the messages Raft peers exchange.

use serde::{Deserialize, Serialize};
use sunder_wire::Op;

use crate::digest::Prefix;
use crate::kv::Kv;

/// What a log entry asks the state machine to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Appended by a new leader so that it can commit entries of its own term (§5.4.2).
    Noop,
    /// A client update (`write`, `cas`, `add`), with the request that proposed it
    /// (`<leader>/<conn>:<id>`) so that dumps can tie entries to client operations.
    Op { op: Op, origin: String },
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub index: u64,
    pub term: u64,
    pub cmd: Command,
}

/// A state-machine snapshot: everything up to and including `index`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub index: u64,
    pub term: u64,
    pub state: Kv,
    /// The compacted entries, summarised (absent in snapshots written before it existed:
    /// their dumps then report no chain, and the checker says it cannot verify).
    #[serde(default)]
    pub prefix: Prefix,
}

/// Peer messages. Every message carries the sender's term; `seq` numbers a leader's
/// heartbeat rounds so that a read-index request knows when a majority confirmed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    /// Pre-vote (thesis §9.6): "would you vote for me in `term`?" Changes nobody's term.
    PreVote {
        term: u64,
        last_index: u64,
        last_term: u64,
    },
    PreVoteResp {
        term: u64,
        granted: bool,
    },
    Vote {
        term: u64,
        last_index: u64,
        last_term: u64,
    },
    VoteResp {
        term: u64,
        granted: bool,
    },
    Append {
        term: u64,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        commit: u64,
        seq: u64,
    },
    /// On success `index` is the last index known to match; on rejection it is the
    /// rejected `prev_index`, and `hint_index`/`hint_term` let the leader skip a whole
    /// conflicting term at once.
    AppendResp {
        term: u64,
        success: bool,
        index: u64,
        hint_index: u64,
        hint_term: Option<u64>,
        seq: u64,
    },
    InstallSnapshot {
        term: u64,
        snapshot: Snapshot,
        seq: u64,
    },
    SnapshotResp {
        term: u64,
        index: u64,
        seq: u64,
    },
}

impl Msg {
    pub fn term(&self) -> u64 {
        match self {
            Msg::PreVote { term, .. }
            | Msg::PreVoteResp { term, .. }
            | Msg::Vote { term, .. }
            | Msg::VoteResp { term, .. }
            | Msg::Append { term, .. }
            | Msg::AppendResp { term, .. }
            | Msg::InstallSnapshot { term, .. }
            | Msg::SnapshotResp { term, .. } => *term,
        }
    }
}
