//! The bank: accounts are registers, moved between by `transfer` and read together by
//! `balances` (Jepsen's bank workload). Shared here so that every built-in target's state
//! machine applies a transfer the same way.
//!
//! An account never written holds [`INITIAL_BALANCE`], so a bank needs no set-up writes
//! (which faults could lose or repeat): with `n` accounts the total is always
//! `n * INITIAL_BALANCE`. A transfer that would take an account below zero is refused,
//! definitely, with [`INSUFFICIENT_FUNDS`].

use crate::Val;

/// What an account holds before anything moved it.
pub const INITIAL_BALANCE: Val = 10;

/// Error name: the source account holds less than the amount. Definite.
pub const INSUFFICIENT_FUNDS: &str = "insufficient-funds";

/// The most accounts one `balances` read may name.
pub const MAX_ACCOUNTS: usize = 1024;

/// The largest amount one transfer may move.
pub const MAX_AMOUNT: Val = 1 << 40;

/// Why a bank operation is malformed, if it is: checked before anything is applied.
pub fn malformed(op: &crate::Op) -> Option<&'static str> {
    match op {
        crate::Op::Transfer { from, to, amount } => {
            if from == to {
                Some("a transfer from an account to itself")
            } else if *amount <= 0 || *amount > MAX_AMOUNT {
                Some("a transfer amount must be between 1 and 2^40")
            } else {
                None
            }
        }
        crate::Op::Balances { keys } => {
            if keys.is_empty() || keys.len() > MAX_ACCOUNTS {
                Some("a balances read names between 1 and 1024 accounts")
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The balances after moving `amount` from an account holding `from` to one holding
/// `to`, or [`INSUFFICIENT_FUNDS`].
pub fn transfer(from: Val, to: Val, amount: Val) -> Result<(Val, Val), &'static str> {
    if from < amount {
        return Err(INSUFFICIENT_FUNDS);
    }
    match (from.checked_sub(amount), to.checked_add(amount)) {
        (Some(f), Some(t)) => Ok((f, t)),
        _ => Err(crate::errors::BAD_REQUEST),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Op;

    #[test]
    fn a_transfer_moves_what_the_source_holds_and_no_more() {
        assert_eq!(transfer(10, 10, 3), Ok((7, 13)));
        assert_eq!(transfer(3, 0, 3), Ok((0, 3)));
        assert_eq!(transfer(2, 0, 3), Err(INSUFFICIENT_FUNDS));
        assert_eq!(transfer(5, Val::MAX, 1), Err(crate::errors::BAD_REQUEST));
    }

    #[test]
    fn malformed_bank_operations_are_named() {
        let t = |from: &str, to: &str, amount| Op::Transfer {
            from: from.into(),
            to: to.into(),
            amount,
        };
        assert_eq!(malformed(&t("a0", "a1", 1)), None);
        assert!(malformed(&t("a0", "a0", 1)).is_some());
        assert!(malformed(&t("a0", "a1", 0)).is_some());
        assert!(malformed(&t("a0", "a1", -4)).is_some());
        assert!(malformed(&t("a0", "a1", MAX_AMOUNT + 1)).is_some());
        assert!(malformed(&Op::Balances { keys: vec![] }).is_some());
        let many = (0..=MAX_ACCOUNTS).map(|i| format!("a{i}")).collect();
        assert!(malformed(&Op::Balances { keys: many }).is_some());
        assert_eq!(
            malformed(&Op::Balances {
                keys: vec!["a0".into()]
            }),
            None
        );
    }
}
