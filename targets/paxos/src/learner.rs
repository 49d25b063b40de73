//! The learner: chosen values, applied to the key-value state in slot order.

use crate::msg::Entry;
use serde_json::Value;
use std::collections::BTreeMap;
use sunder_core::kv::{KvError, KvState};
use sunder_wire::{Dump, DumpEntry};

/// What applying one slot produced.
#[derive(Debug)]
pub struct Applied {
    pub slot: u64,
    pub entry: Entry,
    /// The client's result; `None` for a no-op.
    pub result: Option<Result<Value, KvError>>,
}

/// Chosen slots (possibly with holes above the applied prefix) and the state machine.
#[derive(Debug, Default)]
pub struct Learner {
    chosen: BTreeMap<u64, Entry>,
    applied: u64,
    kv: KvState,
    /// Slots learned twice with different values: impossible in a correct Paxos, counted so
    /// that tests and the log can see a planted bug at work.
    conflicts: u64,
}

impl Learner {
    /// Records that `entry` is chosen for `slot`; true when this is news.
    pub fn learn(&mut self, slot: u64, entry: Entry) -> bool {
        match self.chosen.get(&slot) {
            Some(old) if *old == entry => false,
            Some(old) => {
                self.conflicts += 1;
                tracing::error!(slot, ?old, new = ?entry, "slot learned with two different values");
                false
            }
            None => {
                self.chosen.insert(slot, entry);
                true
            }
        }
    }

    pub fn is_chosen(&self, slot: u64) -> bool {
        self.chosen.contains_key(&slot)
    }

    pub fn get(&self, slot: u64) -> Option<&Entry> {
        self.chosen.get(&slot)
    }

    /// Every chosen slot this learner knows, holes included.
    pub fn chosen(&self) -> &BTreeMap<u64, Entry> {
        &self.chosen
    }

    /// The highest slot such that it and every slot below it are chosen (and applied).
    pub fn commit(&self) -> u64 {
        self.applied
    }

    pub fn conflicts(&self) -> u64 {
        self.conflicts
    }

    #[cfg(test)]
    pub fn kv(&self) -> &KvState {
        &self.kv
    }

    /// Chosen entries from `from` on, at most `max`, for a learner that fell behind.
    pub fn range(&self, from: u64, max: usize) -> Vec<(u64, Entry)> {
        self.chosen
            .range(from..)
            .take(max)
            .map(|(s, e)| (*s, e.clone()))
            .collect()
    }

    /// The applied prefix and the state, for the agreement checker. A slot's term is the
    /// round its value was first proposed in, the same on every node that learned it.
    pub fn dump(&self, node: &str) -> Dump {
        let entries = self
            .chosen
            .range(..=self.applied)
            .map(|(slot, e)| DumpEntry {
                index: *slot,
                term: e.round,
                command: e.cmd.as_ref().map_or(Value::Null, |c| {
                    serde_json::to_value(&c.op).expect("serializable")
                }),
                origin: e.cmd.as_ref().map(|c| c.origin.clone()),
                digest: None,
            })
            .collect();
        Dump {
            node: node.to_string(),
            snapshot_index: 0,
            entries,
            state: self.kv.to_json(),
            snapshot_digest: None,
            snapshot_terms: Vec::new(),
        }
    }

    /// Applies every slot that is now contiguous with the applied prefix.
    pub fn apply_ready(&mut self) -> Vec<Applied> {
        let mut out = Vec::new();
        while let Some(entry) = self.chosen.get(&(self.applied + 1)) {
            let entry = entry.clone();
            self.applied += 1;
            let result = entry.cmd.as_ref().map(|c| self.kv.apply(&c.op));
            out.push(Applied {
                slot: self.applied,
                entry,
                result,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Command;
    use sunder_wire::Op;

    fn write(round: u64, value: i64) -> Entry {
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

    #[test]
    fn applies_in_slot_order_only() {
        let mut l = Learner::default();
        assert!(l.learn(2, write(1, 2)));
        assert!(l.apply_ready().is_empty(), "slot 1 is a hole");
        assert!(l.learn(
            1,
            Entry {
                round: 1,
                cmd: None
            }
        ));
        let applied = l.apply_ready();
        assert_eq!(
            applied.iter().map(|a| a.slot).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!(applied[0].result.is_none());
        assert_eq!(l.commit(), 2);
        assert_eq!(l.kv().read("k"), serde_json::json!(2));
    }

    #[test]
    fn a_second_value_is_a_conflict_not_an_overwrite() {
        let mut l = Learner::default();
        l.learn(1, write(1, 1));
        assert!(!l.learn(1, write(1, 1)));
        assert!(!l.learn(1, write(2, 9)));
        assert_eq!(l.conflicts(), 1);
        assert_eq!(l.get(1), Some(&write(1, 1)));
    }
}
