//! The account state at one block: balances and each account's next nonce.
//!
//! A bank account never touched holds [`sunder_wire::bank::INITIAL_BALANCE`], as in
//! `KvState`; a miner account starts empty. A transfer applies when its nonce is the
//! account's next, the block's height is at most its expiry and the source holds the
//! amount ([`Ledger::transfer`]). [`Ledger::force`] applies what a block already accepted
//! says without those checks (a replay; a planted bug): the arithmetic saturates rather
//! than panics, so a chain a bug let through still has a state to show.

use crate::block::Block;
use crate::tx::{MINER_PREFIX, Transfer, Tx};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use sunder_wire::{Val, bank};

/// Why a transfer does not apply to a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("{account} holds {holds}, less than {amount}")]
    Overdraft {
        account: String,
        holds: Val,
        amount: Val,
    },
    #[error("{account}'s next nonce is {expected}, not {got}")]
    Nonce {
        account: String,
        expected: u64,
        got: u64,
    },
    #[error("expired at height {expires}, included at {height}")]
    Expired { expires: u64, height: u64 },
    #[error("a balance would overflow")]
    Overflow,
}

/// Balances and nonces after some prefix of a chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    balances: BTreeMap<String, Val>,
    nonces: BTreeMap<String, u64>,
}

impl Ledger {
    pub fn balance(&self, account: &str) -> Val {
        match self.balances.get(account) {
            Some(v) => *v,
            None if account.starts_with(MINER_PREFIX) => 0,
            None => bank::INITIAL_BALANCE,
        }
    }

    /// Accounts that spent, with their next nonce.
    pub fn nonces(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.nonces.iter().map(|(a, n)| (a.as_str(), *n))
    }

    /// Accounts that moved (were paid or paid).
    pub fn accounts(&self) -> impl Iterator<Item = &str> + '_ {
        self.balances.keys().map(String::as_str)
    }

    pub fn next_nonce(&self, account: &str) -> u64 {
        self.nonces.get(account).copied().unwrap_or(0)
    }

    /// Applies `t` in a block at `height`, or says why it cannot be.
    pub fn transfer(&mut self, t: &Transfer, height: u64) -> Result<(), TxError> {
        self.check(t, height)?;
        let (f, to) = bank::transfer(self.balance(&t.from), self.balance(&t.to), t.amount)
            .map_err(|_| TxError::Overflow)?;
        self.balances.insert(t.from.clone(), f);
        self.balances.insert(t.to.clone(), to);
        self.nonces
            .insert(t.from.clone(), t.nonce.saturating_add(1));
        Ok(())
    }

    /// Whether `t` would apply in a block at `height`, leaving the state as it is.
    pub fn check(&self, t: &Transfer, height: u64) -> Result<(), TxError> {
        if height > t.expires {
            return Err(TxError::Expired {
                expires: t.expires,
                height,
            });
        }
        let expected = self.next_nonce(&t.from);
        if t.nonce != expected {
            return Err(TxError::Nonce {
                account: t.from.clone(),
                expected,
                got: t.nonce,
            });
        }
        let holds = self.balance(&t.from);
        if holds < t.amount {
            return Err(TxError::Overdraft {
                account: t.from.clone(),
                holds,
                amount: t.amount,
            });
        }
        Ok(())
    }

    /// Applies `t` without any check (saturating).
    pub fn force(&mut self, t: &Transfer) {
        let f = self.balance(&t.from).saturating_sub(t.amount);
        let to = self.balance(&t.to).saturating_add(t.amount);
        self.balances.insert(t.from.clone(), f);
        self.balances.insert(t.to.clone(), to);
        let n = self.next_nonce(&t.from).max(t.nonce.saturating_add(1));
        self.nonces.insert(t.from.clone(), n);
    }

    fn credit(&mut self, account: &str, amount: Val) {
        let v = self.balance(account).saturating_add(amount);
        self.balances.insert(account.to_string(), v);
    }

    /// Applies a whole block's transactions: checked (the index of the first transfer that
    /// does not apply and why; the state is then unspecified, so check a copy), or forced.
    pub fn apply_block(&mut self, block: &Block, checked: bool) -> Result<(), (usize, TxError)> {
        let height = block.header.height;
        for (i, tx) in block.txs.iter().enumerate() {
            match tx {
                Tx::Coinbase { to, amount, .. } => self.credit(to, *amount),
                Tx::Transfer(t) if checked => self.transfer(t, height).map_err(|e| (i, e))?,
                Tx::Transfer(t) => self.force(t),
            }
        }
        Ok(())
    }

    /// The balances of `keys`, as the `balances` op answers.
    pub fn balances_of(&self, keys: &[String]) -> Value {
        Value::Object(
            keys.iter()
                .map(|k| (k.clone(), json!(self.balance(k))))
                .collect(),
        )
    }

    /// Every account that moved, with its balance and next nonce (for `dump`).
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.balances
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        json!({"balance": v, "nonce": self.next_nonce(k)}),
                    )
                })
                .collect(),
        )
    }

    /// The sum of the bank accounts that moved, less their initial balances, and the sum of
    /// the miner accounts: (0, rewards minted) on a chain that kept the rules.
    pub fn supply_delta(&self) -> (i128, i128) {
        let (mut bank, mut miners) = (0i128, 0i128);
        for (k, v) in &self.balances {
            if k.starts_with(MINER_PREFIX) {
                miners += *v as i128;
            } else {
                bank += *v as i128 - bank::INITIAL_BALANCE as i128;
            }
        }
        (bank, miners)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(from: &str, to: &str, amount: Val, nonce: u64) -> Transfer {
        Transfer {
            from: from.into(),
            to: to.into(),
            amount,
            nonce,
            expires: 5,
            memo: 0,
            sig: String::new(),
        }
    }

    #[test]
    fn transfers_apply_in_nonce_order_within_funds_and_before_expiry() {
        let mut l = Ledger::default();
        assert_eq!((l.balance("a0"), l.balance("miner:n1")), (10, 0));
        l.transfer(&t("a0", "a1", 4, 0), 1).unwrap();
        assert!(matches!(
            l.transfer(&t("a0", "a1", 1, 0), 1),
            Err(TxError::Nonce { expected: 1, .. })
        ));
        assert!(matches!(
            l.transfer(&t("a0", "a1", 1, 2), 1),
            Err(TxError::Nonce { .. })
        ));
        assert!(matches!(
            l.transfer(&t("a0", "a1", 7, 1), 1),
            Err(TxError::Overdraft { holds: 6, .. })
        ));
        assert!(matches!(
            l.transfer(&t("a0", "a1", 1, 1), 6),
            Err(TxError::Expired { .. })
        ));
        l.transfer(&t("a0", "a1", 6, 1), 5).unwrap();
        assert_eq!((l.balance("a0"), l.balance("a1")), (0, 20));
        assert_eq!(l.supply_delta(), (0, 0));
        l.force(&t("a0", "a1", 3, 0));
        assert_eq!((l.balance("a0"), l.next_nonce("a0")), (-3, 2));
    }
}
