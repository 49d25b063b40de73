//! Durable records: what an acceptor must not forget, and what a learner may keep.

use crate::ballot::Ballot;
use crate::msg::Entry;
use serde::{Deserialize, Serialize};

/// One record of the durable log. Replayed in order by [`crate::Paxos`]'s `recover`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// The acceptor promised not to accept anything below this ballot.
    Promise(Ballot),
    /// The acceptor accepted `entry` for `slot` at `ballot`.
    Accepted {
        slot: u64,
        ballot: Ballot,
        entry: Entry,
    },
    /// The learner knows `entry` is chosen for `slot` (saves re-learning after a restart).
    Chosen { slot: u64, entry: Entry },
}
