//! Phase 1: a node bidding for leadership collects promises and works out what to propose.

use crate::ballot::Ballot;
use crate::bugs::Bugs;
use crate::learner::Learner;
use crate::msg::Entry;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// A bid for leadership at `ballot`, covering every slot from `from_slot` on.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub ballot: Ballot,
    pub from_slot: u64,
    pub started_ms: u64,
    /// Node index → what that acceptor had accepted from `from_slot` on.
    promises: BTreeMap<u32, Vec<(u64, Ballot, Entry)>>,
}

impl Candidate {
    pub fn new(ballot: Ballot, from_slot: u64, started_ms: u64) -> Self {
        Candidate {
            ballot,
            from_slot,
            started_ms,
            promises: BTreeMap::new(),
        }
    }

    /// Counts a promise; returns how many acceptors have promised.
    pub fn promise(&mut self, from: u32, accepted: Vec<(u64, Ballot, Entry)>) -> usize {
        self.promises.insert(from, accepted);
        self.promises.len()
    }

    pub fn promise_count(&self) -> usize {
        self.promises.len()
    }

    /// The values the new leader must propose, slot by slot from `from_slot`: a value the
    /// learner already knows is chosen, else the value accepted with the highest ballot in
    /// any promise, else a no-op to fill the hole. Slots above the highest one anybody
    /// reported are free for new commands.
    pub fn recovery(&self, learner: &Learner, bugs: &Bugs) -> Vec<(u64, Entry)> {
        let mut best: BTreeMap<u64, (Ballot, Entry)> = BTreeMap::new();
        if !bugs.ignore_accepted {
            for (slot, ballot, entry) in self.promises.values().flatten() {
                let higher = match best.get(slot) {
                    None => true,
                    // The handed design compared proposal numbers in their string form
                    // right here (and in the acceptor's Accept check).
                    Some((b, _)) if bugs.string_ballots => {
                        ballot.legacy_cmp(*b) == Ordering::Greater
                    }
                    Some((b, _)) => ballot > b,
                };
                if higher {
                    best.insert(*slot, (*ballot, entry.clone()));
                }
            }
        }
        let known_top = learner.chosen().keys().next_back().copied().unwrap_or(0);
        let top = best.keys().next_back().copied().unwrap_or(0).max(known_top);
        (self.from_slot..=top)
            .map(|slot| {
                let entry = match learner.get(slot) {
                    Some(chosen) => chosen.clone(),
                    None => match best.remove(&slot) {
                        Some((_, entry)) => entry,
                        None => Entry {
                            round: self.ballot.round,
                            cmd: None,
                        },
                    },
                };
                (slot, entry)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Command;
    use sunder_wire::Op;

    fn b(round: u64, node: u32) -> Ballot {
        Ballot { round, node }
    }

    fn w(round: u64, value: i64) -> Entry {
        let op = Op::Write {
            key: "k".into(),
            value,
        };
        Entry {
            round,
            cmd: Some(Command {
                op,
                node: 0,
                origin: format!("1:{value}"),
            }),
        }
    }

    fn two_promises() -> Candidate {
        let mut c = Candidate::new(b(12, 1), 1, 0);
        c.promise(0, vec![(1, b(9, 0), w(9, 9)), (3, b(5, 0), w(5, 5))]);
        c.promise(2, vec![(1, b(10, 0), w(10, 10))]);
        c
    }

    #[test]
    fn highest_ballot_wins_and_holes_become_noops() {
        let got = two_promises().recovery(&Learner::default(), &Bugs::default());
        assert_eq!(
            got,
            vec![
                (1, w(10, 10)),
                (
                    2,
                    Entry {
                        round: 12,
                        cmd: None
                    }
                ),
                (3, w(5, 5))
            ]
        );
    }

    #[test]
    fn string_ballots_pick_the_older_value() {
        let bugs = Bugs {
            string_ballots: true,
            ..Bugs::default()
        };
        let got = two_promises().recovery(&Learner::default(), &bugs);
        assert_eq!(got[0], (1, w(9, 9)), "\"n1-9\" > \"n1-10\" as strings");
    }

    #[test]
    fn ignore_accepted_proposes_noops_over_accepted_values() {
        let bugs = Bugs {
            ignore_accepted: true,
            ..Bugs::default()
        };
        assert!(
            two_promises()
                .recovery(&Learner::default(), &bugs)
                .is_empty()
        );
    }

    #[test]
    fn known_chosen_values_are_kept() {
        let mut l = Learner::default();
        l.learn(2, w(3, 3));
        let got = two_promises().recovery(&l, &Bugs::default());
        assert_eq!(got[1], (2, w(3, 3)));
    }
}
