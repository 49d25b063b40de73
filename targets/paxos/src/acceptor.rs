//! The acceptor: the only state Paxos needs to survive a crash.

use crate::ballot::Ballot;
use crate::msg::Entry;
use crate::record::Record;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Promised ballot and accepted (ballot, value) per slot.
///
/// Every change is returned as [`Record`]s; the caller puts them in the same `Output` as
/// the Promise or Accepted reply, so they are on disk before the reply leaves.
#[derive(Debug, Default, Clone)]
pub struct Acceptor {
    /// Planted bug `string-ballots`: the Accept check compares ballots as legacy strings.
    legacy_order: bool,
    promised: Ballot,
    accepted: BTreeMap<u64, (Ballot, Entry)>,
}

impl Acceptor {
    pub fn new(legacy_order: bool) -> Self {
        Acceptor {
            legacy_order,
            ..Acceptor::default()
        }
    }

    fn accept_cmp(&self, a: Ballot, b: Ballot) -> Ordering {
        if self.legacy_order {
            a.legacy_cmp(b)
        } else {
            a.cmp(&b)
        }
    }

    pub fn promised(&self) -> Ballot {
        self.promised
    }

    #[cfg(test)]
    pub fn accepted(&self, slot: u64) -> Option<&(Ballot, Entry)> {
        self.accepted.get(&slot)
    }

    /// Accepted slots in `lo..=hi` (none when `lo > hi`), in slot order.
    pub fn accepted_between(
        &self,
        lo: u64,
        hi: u64,
    ) -> impl Iterator<Item = (u64, &(Ballot, Entry))> + '_ {
        let range = if lo <= hi {
            Some(self.accepted.range(lo..=hi))
        } else {
            None
        };
        range.into_iter().flatten().map(|(s, v)| (*s, v))
    }

    /// Phase 1b. `Ok` carries every accepted value from `from_slot` on; `Err` the ballot
    /// already promised. Re-preparing the ballot already promised is answered again, since
    /// the first Promise may have been lost.
    #[allow(clippy::type_complexity)]
    pub fn prepare(
        &mut self,
        ballot: Ballot,
        from_slot: u64,
        records: &mut Vec<Record>,
    ) -> Result<Vec<(u64, Ballot, Entry)>, Ballot> {
        let order = ballot.cmp(&self.promised);
        if order == Ordering::Less {
            return Err(self.promised);
        }
        if order == Ordering::Greater {
            self.promised = ballot;
            records.push(Record::Promise(ballot));
        }
        Ok(self
            .accepted
            .range(from_slot..)
            .map(|(s, (b, e))| (*s, *b, e.clone()))
            .collect())
    }

    /// Phase 2b for a batch of slots. `Err` carries the ballot already promised.
    pub fn accept(
        &mut self,
        ballot: Ballot,
        entries: &[(u64, Entry)],
        records: &mut Vec<Record>,
    ) -> Result<Vec<u64>, Ballot> {
        let order = self.accept_cmp(ballot, self.promised);
        if order == Ordering::Less {
            return Err(self.promised);
        }
        if order == Ordering::Greater {
            self.promised = ballot;
            records.push(Record::Promise(ballot));
        }
        let mut slots = Vec::with_capacity(entries.len());
        for (slot, entry) in entries {
            let same = self
                .accepted
                .get(slot)
                .is_some_and(|(b, e)| *b == ballot && e == entry);
            if !same {
                self.accepted.insert(*slot, (ballot, entry.clone()));
                records.push(Record::Accepted {
                    slot: *slot,
                    ballot,
                    entry: entry.clone(),
                });
            }
            slots.push(*slot);
        }
        Ok(slots)
    }

    /// Replays a record on recovery.
    pub fn restore(&mut self, record: &Record) {
        match record {
            Record::Promise(b) => self.promised = *b,
            Record::Accepted {
                slot,
                ballot,
                entry,
            } => {
                if self.accept_cmp(*ballot, self.promised) == Ordering::Greater {
                    self.promised = *ballot;
                }
                self.accepted.insert(*slot, (*ballot, entry.clone()));
            }
            Record::Chosen { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(round: u64) -> Ballot {
        Ballot { round, node: 0 }
    }

    fn noop(round: u64) -> Entry {
        Entry { round, cmd: None }
    }

    #[test]
    fn promise_is_durable_and_monotonic() {
        let mut a = Acceptor::default();
        let mut recs = Vec::new();
        assert_eq!(a.prepare(b(5), 1, &mut recs), Ok(vec![]));
        assert_eq!(recs, vec![Record::Promise(b(5))]);
        recs.clear();
        assert_eq!(
            a.prepare(b(5), 1, &mut recs),
            Ok(vec![]),
            "same ballot again"
        );
        assert!(recs.is_empty());
        assert_eq!(a.prepare(b(3), 1, &mut recs), Err(b(5)));
        assert_eq!(a.accept(b(4), &[(1, noop(4))], &mut recs), Err(b(5)));
        assert!(recs.is_empty());
    }

    #[test]
    fn promise_reports_accepted_from_slot() {
        let mut a = Acceptor::default();
        let mut recs = Vec::new();
        a.accept(b(2), &[(1, noop(2)), (2, noop(2)), (3, noop(2))], &mut recs)
            .unwrap();
        assert_eq!(recs.len(), 4, "promise + three accepts");
        let got = a.prepare(b(7), 2, &mut recs).unwrap();
        assert_eq!(got.iter().map(|x| x.0).collect::<Vec<_>>(), vec![2, 3]);
        let mut fresh = Acceptor::default();
        for r in &recs {
            fresh.restore(r);
        }
        assert_eq!(fresh.promised(), b(7));
        assert_eq!(fresh.accepted(3), Some(&(b(2), noop(2))));
    }
}
