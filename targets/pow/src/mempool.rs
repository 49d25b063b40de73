//! Transfers waiting for a block, one per (account, nonce): the first seen keeps the slot.

use crate::hash::Hash;
use crate::ledger::Ledger;
use crate::tx::{Transfer, Tx};
use std::collections::{BTreeMap, BTreeSet};

/// Most transfers waiting; more are dropped until blocks take some.
pub const MAX_MEMPOOL: usize = 4096;

#[derive(Debug, Clone, Default)]
pub struct Mempool {
    txs: BTreeMap<(String, u64), Transfer>,
    ids: BTreeSet<Hash>,
}

impl Mempool {
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn contains(&self, id: &Hash) -> bool {
        self.ids.contains(id)
    }

    /// Adds `t` unless its (account, nonce) is taken or the pool is full.
    pub fn insert(&mut self, t: Transfer) -> bool {
        let key = (t.from.clone(), t.nonce);
        if self.txs.len() >= MAX_MEMPOOL || self.txs.contains_key(&key) {
            return false;
        }
        self.ids.insert(Tx::Transfer(t.clone()).id());
        self.txs.insert(key, t);
        true
    }

    /// The highest nonce of `account` waiting here.
    pub fn last_nonce(&self, account: &str) -> Option<u64> {
        self.txs
            .range((account.to_string(), 0)..=(account.to_string(), u64::MAX))
            .next_back()
            .map(|((_, n), _)| *n)
    }

    /// Drops what can no longer be included on top of `state` at `height` or later:
    /// nonces already used, expiries passed.
    pub fn prune(&mut self, state: &Ledger, height: u64) {
        let ids = &mut self.ids;
        self.txs.retain(|(from, nonce), t| {
            let keep = *nonce >= state.next_nonce(from) && t.expires >= height;
            if !keep {
                ids.remove(&Tx::Transfer(t.clone()).id());
            }
            keep
        });
    }

    /// Up to `max` transfers that apply in order on top of `state` in a block at `height`,
    /// and the state after them. Accounts in name order, each in nonce order; a few passes,
    /// so that a transfer funded by an earlier one in the same block gets in.
    pub fn select(&self, state: &Ledger, height: u64, max: usize) -> (Vec<Transfer>, Ledger) {
        let mut after = state.clone();
        let mut picked: Vec<Transfer> = Vec::new();
        let mut taken = BTreeSet::new();
        for _pass in 0..4 {
            let before = picked.len();
            for (key, t) in &self.txs {
                if picked.len() >= max {
                    break;
                }
                if !taken.contains(key) && after.transfer(t, height).is_ok() {
                    taken.insert(key.clone());
                    picked.push(t.clone());
                }
            }
            if picked.len() == before || picked.len() >= max {
                break;
            }
        }
        (picked, after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(from: &str, to: &str, amount: i64, nonce: u64) -> Transfer {
        Transfer {
            from: from.into(),
            to: to.into(),
            amount,
            nonce,
            expires: 10,
            memo: 0,
            sig: String::new(),
        }
    }

    #[test]
    fn selection_follows_nonces_and_funds_and_the_first_seen_keeps_its_slot() {
        let mut m = Mempool::default();
        assert!(m.insert(t("a0", "a1", 10, 0)));
        assert!(!m.insert(t("a0", "a2", 1, 0)), "slot taken");
        assert!(m.insert(t("a1", "a0", 15, 0)), "funded by a0's transfer");
        assert!(m.insert(t("a2", "a0", 11, 0)), "never funded");
        assert!(m.insert(t("a3", "a0", 1, 2)), "a gap");
        let (picked, after) = m.select(&Ledger::default(), 1, 10);
        assert_eq!(picked, vec![t("a0", "a1", 10, 0), t("a1", "a0", 15, 0)]);
        assert_eq!(after.balance("a0"), 15);
        assert_eq!(m.select(&Ledger::default(), 1, 1).0.len(), 1);
        assert_eq!(m.last_nonce("a3"), Some(2));
        m.prune(&after, 1);
        assert_eq!(m.len(), 2);
        m.prune(&after, 11);
        assert_eq!(m.len(), 0);
    }
}
