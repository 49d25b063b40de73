//! What only a leader keeps: where each follower's log stands, the client requests it
//! answers, its heartbeat rounds and read queue. It lives inside `RoleState::Leader`, so
//! it is created on election and dropped on stepping down: no follower can act on a
//! stale copy of it, and a new term never inherits the last one's.

use std::collections::BTreeMap;

use sunder_core::{NodeId, ReqToken};

use crate::progress::Progress;
use crate::read_index::ReadQueue;

#[derive(Debug)]
pub(crate) struct Leader {
    pub progress: BTreeMap<NodeId, Progress>,
    /// Index of this leader's no-op: reads wait until it is applied.
    pub term_start: u64,
    /// Client updates this leader proposed, by log index, answered when applied.
    pub pending: BTreeMap<u64, ReqToken>,
    pub reads: ReadQueue,
    /// Heartbeat round number; every AppendEntries carries the current one. Rounds are
    /// compared only with acknowledgements of this leadership (its term), so they may
    /// start again from zero in each.
    pub seq: u64,
    pub broadcast_needed: bool,
    /// Local clock (ms) until which the `lease-read` bug trusts its lease.
    pub lease_until: u64,
    pub heartbeat_elapsed: u64,
    /// Local clock (ms) of the last check-quorum.
    pub quorum_checked_ms: u64,
}

impl Leader {
    /// A leader elected at local time `now_ms` whose log ends at `last_index`: it knows
    /// nothing of its followers yet and announces itself with a heartbeat round at once.
    pub fn new(peers: &[NodeId], last_index: u64, now_ms: u64) -> Leader {
        Leader {
            progress: peers
                .iter()
                .map(|p| (p.clone(), Progress::new(last_index)))
                .collect(),
            term_start: 0,
            pending: BTreeMap::new(),
            reads: ReadQueue::default(),
            seq: 0,
            broadcast_needed: true,
            lease_until: 0,
            heartbeat_elapsed: 0,
            quorum_checked_ms: now_ms,
        }
    }

    /// The highest log index a majority (counting this leader, whose log ends at
    /// `last_index`) holds.
    pub fn quorum_match(&self, last_index: u64, quorum: usize) -> u64 {
        let mut matched: Vec<u64> = self.progress.values().map(|p| p.matched).collect();
        matched.push(last_index);
        matched.sort_unstable_by(|a, b| b.cmp(a));
        matched[quorum - 1]
    }

    /// The highest heartbeat round a majority (counting this leader) has acknowledged.
    pub fn quorum_seq(&self, quorum: usize) -> u64 {
        let mut acked: Vec<u64> = self.progress.values().map(|p| p.acked_seq).collect();
        acked.push(self.seq);
        acked.sort_unstable_by(|a, b| b.cmp(a));
        acked[quorum - 1]
    }

    /// Ends a check-quorum period: whether a majority (counting this leader) was heard
    /// from during it.
    pub fn heard_quorum(&mut self, quorum: usize) -> bool {
        let active = 1 + self.progress.values().filter(|p| p.active).count();
        for p in self.progress.values_mut() {
            p.active = false;
        }
        active >= quorum
    }
}
