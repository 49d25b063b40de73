//! What travels between nodes, and the values they agree on.

use crate::ballot::Ballot;
use serde::{Deserialize, Serialize};
use sunder_wire::Op;

/// A client command as it sits in a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub op: Op,
    /// Index of the node whose client sent it.
    pub node: u32,
    /// `<conn>:<id>` of the request on the node that proposed it. Lets that node find the
    /// waiting client when the slot is applied, and the agreement checker tie
    /// acknowledged writes to slots.
    pub origin: String,
}

/// The value of one slot: a command or a no-op that fills a hole.
///
/// `round` is the ballot round in which a leader first put this value into the slot. A
/// later leader re-proposing it keeps the field, so every node that learns the slot reports
/// the same (term, command) pair, which is what the agreement checker compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub round: u64,
    pub cmd: Option<Command>,
}

/// Peer messages. `ballot` is always the sender's leader ballot (or the one it asks for).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    /// Phase 1a, once for every slot from `from_slot` on.
    Prepare { ballot: Ballot, from_slot: u64 },
    /// Phase 1b: everything this acceptor accepted at or after `from_slot`.
    Promise {
        ballot: Ballot,
        accepted: Vec<(u64, Ballot, Entry)>,
    },
    /// Phase 2a for several slots at once; with no entries it is the leader's heartbeat.
    /// `commit` is the leader's highest contiguous chosen slot.
    Accept {
        ballot: Ballot,
        entries: Vec<(u64, Entry)>,
        commit: u64,
    },
    /// Phase 2b: these slots are now accepted at `ballot`.
    Accepted { ballot: Ballot, slots: Vec<u64> },
    /// A Prepare or Accept was refused because the acceptor promised `promised`.
    Nack { ballot: Ballot, promised: Ballot },
    /// A learner that fell behind asks for chosen values from `from` on.
    CatchUp { from: u64 },
    /// Chosen values, in answer to `CatchUp`.
    Chosen { entries: Vec<(u64, Entry)> },
}
