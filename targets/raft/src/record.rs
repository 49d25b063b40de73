//! Durable records and how a restart rebuilds state from them.
//!
//! The record file is a sequence of these, appended; after a compaction it is
//! `[Snapshot, HardState, Entries(rest), Commit]`. Replaying them in order gives the state the node
//! had when it last fsynced.

use serde::{Deserialize, Serialize};
use sunder_core::NodeId;

use crate::log::Log;
use crate::msg::{Entry, Snapshot};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// Current term and vote (§5.2 "persistent state").
    HardState {
        term: u64,
        vote: Option<NodeId>,
    },
    /// Entries appended; an entry at an index the log already holds replaces it and
    /// everything after it (the follower truncated a conflicting suffix).
    Entries(Vec<Entry>),
    Snapshot(Snapshot),
    /// The commit index known when it was written (as etcd's raft keeps it in its hard
    /// state). Not needed for safety: it lets a restarted node report, dump and apply
    /// what it knew was committed without waiting for a leader.
    Commit(u64),
}

/// What replaying the records yields.
#[derive(Debug, Default)]
pub struct Recovered {
    pub term: u64,
    pub vote: Option<NodeId>,
    pub log: Log,
    pub snapshot: Option<Snapshot>,
    /// The highest commit index recorded, at most the last index of the log.
    pub commit: u64,
}

impl Recovered {
    pub fn replay(records: Vec<Record>) -> Recovered {
        let mut r = Recovered::default();
        for rec in records {
            match rec {
                Record::HardState { term, vote } => {
                    r.term = term;
                    r.vote = vote;
                }
                Record::Entries(entries) => {
                    for e in entries {
                        // Entries the snapshot already covers are committed and identical.
                        if e.index > r.log.base_index() {
                            r.log.put(e);
                        }
                    }
                }
                Record::Snapshot(s) => {
                    if r.log.term_at(s.index) == Some(s.term) {
                        r.log.compact_to(s.index);
                    } else {
                        r.log.reset_to(s.index, s.term);
                    }
                    r.snapshot = Some(s);
                }
                Record::Commit(c) => r.commit = r.commit.max(c),
            }
        }
        // A torn tail can drop entries the commit record was written after; never claim
        // more than the log holds.
        r.commit = r.commit.min(r.log.last_index());
        r
    }
}
