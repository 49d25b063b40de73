//! The replicated state machine: registers and sets keyed by string.
//!
//! Kept here rather than shared so that a snapshot's serialised form is this crate's to
//! define (it is written to disk and sent in `InstallSnapshot`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sunder_wire::{Op, Val, bank, errors};

/// One key's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cell {
    Reg(Val),
    Set(BTreeSet<Val>),
}

impl Cell {
    fn to_json(&self) -> Value {
        match self {
            Cell::Reg(v) => json!(v),
            Cell::Set(s) => json!(s),
        }
    }
}

/// Key → value, applied in log order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kv {
    cells: BTreeMap<String, Cell>,
}

impl Kv {
    /// Applies an operation; `Err` carries a definite error name (`cas-mismatch`,
    /// `bad-request`). Reads do not change anything.
    pub fn apply(&mut self, op: &Op) -> Result<Value, &'static str> {
        match op {
            Op::Read { key } => Ok(self.cells.get(key).map_or(Value::Null, Cell::to_json)),
            Op::Write { key, value } => {
                self.cells.insert(key.clone(), Cell::Reg(*value));
                Ok(Value::Null)
            }
            Op::Cas { key, from, to } => match self.cells.get_mut(key) {
                Some(Cell::Reg(v)) if v == from => {
                    *v = *to;
                    Ok(Value::Null)
                }
                _ => Err(errors::CAS_MISMATCH),
            },
            Op::Add { key, value } => match self
                .cells
                .entry(key.clone())
                .or_insert_with(|| Cell::Set(BTreeSet::new()))
            {
                Cell::Set(s) => {
                    s.insert(*value);
                    Ok(Value::Null)
                }
                Cell::Reg(_) => Err(errors::BAD_REQUEST),
            },
            Op::Transfer { from, to, amount } => {
                if bank::malformed(op).is_some() {
                    return Err(errors::BAD_REQUEST);
                }
                let (f, t) = bank::transfer(self.balance(from)?, self.balance(to)?, *amount)?;
                self.cells.insert(from.clone(), Cell::Reg(f));
                self.cells.insert(to.clone(), Cell::Reg(t));
                Ok(Value::Null)
            }
            Op::Balances { keys } => {
                if bank::malformed(op).is_some() {
                    return Err(errors::BAD_REQUEST);
                }
                let mut all = serde_json::Map::new();
                for k in keys {
                    all.insert(k.clone(), json!(self.balance(k)?));
                }
                Ok(Value::Object(all))
            }
            Op::Status | Op::Dump => Err(errors::BAD_REQUEST),
        }
    }

    /// An account's balance: its register, or the bank's initial balance if never written.
    fn balance(&self, key: &str) -> Result<Val, &'static str> {
        match self.cells.get(key) {
            None => Ok(bank::INITIAL_BALANCE),
            Some(Cell::Reg(v)) => Ok(*v),
            Some(Cell::Set(_)) => Err(errors::BAD_REQUEST),
        }
    }

    /// `{key: value}` for dumps.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.cells
                .iter()
                .map(|(k, c)| (k.clone(), c.to_json()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_cas_and_sets() {
        let mut kv = Kv::default();
        let k = || "k".to_string();
        assert_eq!(kv.apply(&Op::Read { key: k() }), Ok(Value::Null));
        assert_eq!(
            kv.apply(&Op::Cas {
                key: k(),
                from: 1,
                to: 2
            }),
            Err(errors::CAS_MISMATCH)
        );
        kv.apply(&Op::Write { key: k(), value: 1 }).unwrap();
        kv.apply(&Op::Cas {
            key: k(),
            from: 1,
            to: 2,
        })
        .unwrap();
        assert_eq!(kv.apply(&Op::Read { key: k() }), Ok(json!(2)));
        kv.apply(&Op::Add {
            key: "s".into(),
            value: 3,
        })
        .unwrap();
        kv.apply(&Op::Add {
            key: "s".into(),
            value: 1,
        })
        .unwrap();
        assert_eq!(kv.to_json(), json!({"k": 2, "s": [1, 3]}));
    }

    /// Raft keeps its own state machine (its snapshot format is its own); it must answer
    /// every operation as the shared one does, bank operations included.
    #[test]
    fn answers_as_the_shared_state_machine_does() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (mut ours, mut shared) = (Kv::default(), sunder_core::kv::KvState::new());
        // Accounts a0..a3 and a set s0 (Raft lets a write replace a set, the shared
        // machine refuses: an older difference, kept out of this test).
        let key = |rng: &mut rand_chacha::ChaCha8Rng| match rng.random_range(0..5) {
            4 => "s0".to_string(),
            i => format!("a{i}"),
        };
        let account = |rng: &mut rand_chacha::ChaCha8Rng| format!("a{}", rng.random_range(0..4));
        for _ in 0..5000 {
            let op = match rng.random_range(0..6) {
                0 => Op::Read { key: key(&mut rng) },
                1 => Op::Write {
                    key: account(&mut rng),
                    value: rng.random_range(-2..20),
                },
                2 => Op::Add {
                    key: "s0".into(),
                    value: rng.random_range(0..3),
                },
                3 | 4 => Op::Transfer {
                    from: key(&mut rng),
                    to: key(&mut rng),
                    amount: rng.random_range(-1..8),
                },
                _ => Op::Balances {
                    keys: (0..rng.random_range(0..3)).map(|_| key(&mut rng)).collect(),
                },
            };
            let a = ours.apply(&op);
            let b = shared.apply(&op).map_err(|e| match e.name() {
                "wrong-type" => errors::BAD_REQUEST, // Raft names every type clash so
                n => n,
            });
            assert_eq!(a, b, "{op:?}");
            assert_eq!(ours.to_json(), shared.to_json(), "after {op:?}");
        }
    }
}
