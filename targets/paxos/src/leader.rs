//! Phase 2: the distinguished proposer, one Accept round per slot.

use crate::ballot::Ballot;
use crate::msg::Entry;
use std::collections::{BTreeMap, BTreeSet};

/// A value proposed for a slot and not yet known to be chosen.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub entry: Entry,
    /// Node indexes (this one included) that accepted it at the leader's ballot.
    pub acks: BTreeSet<u32>,
}

/// Leadership at `ballot`: phase 1 is done for every slot from the first unchosen one on.
#[derive(Debug, Clone)]
pub struct Leader {
    pub ballot: Ballot,
    /// The next free slot for a new command.
    pub next_slot: u64,
    proposals: BTreeMap<u64, Proposal>,
    /// Node index → when it last answered (for stepping down when cut off).
    last_ack_ms: BTreeMap<u32, u64>,
    pub since_ms: u64,
}

impl Leader {
    pub fn new(ballot: Ballot, next_slot: u64, now_ms: u64) -> Self {
        Leader {
            ballot,
            next_slot,
            proposals: BTreeMap::new(),
            last_ack_ms: BTreeMap::new(),
            since_ms: now_ms,
        }
    }

    /// Records a proposal this node has itself accepted.
    pub fn propose(&mut self, me: u32, slot: u64, entry: Entry) {
        self.next_slot = self.next_slot.max(slot + 1);
        self.proposals.insert(
            slot,
            Proposal {
                entry,
                acks: BTreeSet::from([me]),
            },
        );
    }

    /// Counts acceptances from `from`; returns the slots that just reached `quorum`, with
    /// their values, and forgets them.
    pub fn accepted(
        &mut self,
        from: u32,
        slots: &[u64],
        quorum: usize,
        now_ms: u64,
    ) -> Vec<(u64, Entry)> {
        self.last_ack_ms.insert(from, now_ms);
        let mut chosen = Vec::new();
        for slot in slots {
            if let Some(p) = self.proposals.get_mut(slot) {
                p.acks.insert(from);
                if p.acks.len() >= quorum {
                    let p = self.proposals.remove(slot).expect("present");
                    chosen.push((*slot, p.entry));
                }
            }
        }
        chosen
    }

    /// Slots `quorum` acks could settle now (a one-node cluster needs no message).
    pub fn settled(&mut self, quorum: usize) -> Vec<(u64, Entry)> {
        let done: Vec<u64> = self
            .proposals
            .iter()
            .filter(|(_, p)| p.acks.len() >= quorum)
            .map(|(s, _)| *s)
            .collect();
        done.into_iter()
            .map(|s| (s, self.proposals.remove(&s).expect("present").entry))
            .collect()
    }

    /// Proposals `node` has not acknowledged yet, oldest first, at most `max`: resent with
    /// each heartbeat because any message may have been lost.
    pub fn unacked(&self, node: u32, max: usize) -> Vec<(u64, Entry)> {
        self.proposals
            .iter()
            .filter(|(_, p)| !p.acks.contains(&node))
            .take(max)
            .map(|(s, p)| (*s, p.entry.clone()))
            .collect()
    }

    /// Drops a proposal for a slot learned some other way.
    pub fn forget(&mut self, slot: u64) {
        self.proposals.remove(&slot);
    }

    /// How many nodes (this one included) answered since `since_ms`.
    pub fn heard_since(&self, since_ms: u64) -> usize {
        1 + self
            .last_ack_ms
            .values()
            .filter(|t| **t >= since_ms)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_majority_of_acks_chooses_once() {
        let mut l = Leader::new(Ballot { round: 1, node: 0 }, 1, 0);
        let e = Entry {
            round: 1,
            cmd: None,
        };
        l.propose(0, 1, e.clone());
        assert_eq!(l.next_slot, 2);
        assert!(l.accepted(1, &[1], 3, 5).is_empty());
        assert_eq!(l.unacked(2, 10), vec![(1, e.clone())]);
        assert!(l.unacked(1, 10).is_empty());
        assert_eq!(l.accepted(2, &[1], 3, 6), vec![(1, e)]);
        assert!(l.accepted(3, &[1], 3, 7).is_empty(), "already chosen");
        assert_eq!(l.heard_since(6), 3);
    }
}
