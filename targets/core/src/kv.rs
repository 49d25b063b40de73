//! The key-value state machine every built-in target applies its committed commands to,
//! so that toys, Raft and Paxos answer `read`, `write`, `cas` and `add` identically.
//!
//! A key holds either a register (one [`Val`]) or a set of them; the first update decides
//! which. Reads of an absent key give `null`; a set reads as a sorted array. The bank's
//! `transfer` and `balances` treat registers as accounts, an absent one holding
//! [`sunder_wire::bank::INITIAL_BALANCE`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use sunder_wire::{Op, Response, Val, bank, errors};

/// One key's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Register(Val),
    Set(BTreeSet<Val>),
}

impl Entry {
    pub fn to_json(&self) -> Value {
        match self {
            Entry::Register(v) => json!(v),
            Entry::Set(s) => json!(s.iter().collect::<Vec<_>>()),
        }
    }
}

/// Why an operation was refused. Every one is definite: the state did not change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    #[error("cas on {key}: expected {expected}, found {found}")]
    CasMismatch {
        key: String,
        expected: Val,
        found: Value,
    },
    #[error("{op} on {key}, which holds a {holds}")]
    WrongType {
        key: String,
        op: &'static str,
        holds: &'static str,
    },
    #[error("{0} is not a key-value operation")]
    NotData(&'static str),
    #[error("malformed: {0}")]
    Malformed(&'static str),
    #[error("account {account} holds {holds}, less than {amount}")]
    InsufficientFunds {
        account: String,
        holds: Val,
        amount: Val,
    },
}

impl KvError {
    /// The wire name of this error.
    pub fn name(&self) -> &'static str {
        match self {
            KvError::CasMismatch { .. } => errors::CAS_MISMATCH,
            KvError::WrongType { .. } => "wrong-type",
            KvError::NotData(_) | KvError::Malformed(_) => errors::BAD_REQUEST,
            KvError::InsufficientFunds { .. } => bank::INSUFFICIENT_FUNDS,
        }
    }
}

/// Keys and their contents, iterated in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvState {
    data: BTreeMap<String, Entry>,
}

impl KvState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a data operation; the value is what a client is told (`null` for updates).
    pub fn apply(&mut self, op: &Op) -> Result<Value, KvError> {
        match op {
            Op::Read { key } => Ok(self.read(key)),
            Op::Write { key, value } => {
                match self.data.get(key) {
                    Some(Entry::Set(_)) => return Err(wrong(key, "write", "set")),
                    _ => self.data.insert(key.clone(), Entry::Register(*value)),
                };
                Ok(Value::Null)
            }
            Op::Cas { key, from, to } => match self.data.get_mut(key) {
                Some(Entry::Register(v)) if v == from => {
                    *v = *to;
                    Ok(Value::Null)
                }
                Some(Entry::Set(_)) => Err(wrong(key, "cas", "set")),
                other => Err(KvError::CasMismatch {
                    key: key.clone(),
                    expected: *from,
                    found: other.map_or(Value::Null, |e| e.to_json()),
                }),
            },
            Op::Add { key, value } => {
                match self
                    .data
                    .entry(key.clone())
                    .or_insert_with(|| Entry::Set(BTreeSet::new()))
                {
                    Entry::Set(s) => {
                        s.insert(*value);
                        Ok(Value::Null)
                    }
                    Entry::Register(_) => Err(wrong(key, "add", "register")),
                }
            }
            Op::Transfer { from, to, amount } => {
                if let Some(why) = bank::malformed(op) {
                    return Err(KvError::Malformed(why));
                }
                let (f, t) = (self.balance(from)?, self.balance(to)?);
                let (f2, t2) = bank::transfer(f, t, *amount).map_err(|e| match e {
                    bank::INSUFFICIENT_FUNDS => KvError::InsufficientFunds {
                        account: from.clone(),
                        holds: f,
                        amount: *amount,
                    },
                    _ => KvError::Malformed("a balance would overflow"),
                })?;
                self.put(from, f2);
                self.put(to, t2);
                Ok(Value::Null)
            }
            Op::Balances { keys } => {
                if let Some(why) = bank::malformed(op) {
                    return Err(KvError::Malformed(why));
                }
                let mut all = serde_json::Map::new();
                for k in keys {
                    all.insert(k.clone(), json!(self.balance(k)?));
                }
                Ok(Value::Object(all))
            }
            Op::Status | Op::Dump => Err(KvError::NotData(op.name())),
        }
    }

    /// What account `key` holds: its register, or the initial balance if never written.
    fn balance(&self, key: &str) -> Result<Val, KvError> {
        match self.data.get(key) {
            None => Ok(bank::INITIAL_BALANCE),
            Some(Entry::Register(v)) => Ok(*v),
            Some(Entry::Set(_)) => Err(wrong(key, "transfer", "set")),
        }
    }

    /// The value a read of `key` returns.
    pub fn read(&self, key: &str) -> Value {
        self.data.get(key).map_or(Value::Null, Entry::to_json)
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.data.get(key)
    }

    /// Sets a register outright (last-writer-wins replicas resolve conflicts themselves).
    pub fn put(&mut self, key: &str, value: Val) {
        self.data.insert(key.to_string(), Entry::Register(value));
    }

    /// Everything, as a JSON object key → value (for `dump`).
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.data
                .iter()
                .map(|(k, e)| (k.clone(), e.to_json()))
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

fn wrong(key: &str, op: &'static str, holds: &'static str) -> KvError {
    KvError::WrongType {
        key: key.to_string(),
        op,
        holds,
    }
}

/// The client response for the result of [`KvState::apply`] (id 0: the runtime sets it).
pub fn response(result: Result<Value, KvError>) -> Response {
    match result {
        Ok(v) => Response::ok(0, v),
        Err(e) => Response::error(0, e.name(), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(key: &str, value: Val) -> Op {
        Op::Write {
            key: key.into(),
            value,
        }
    }

    #[test]
    fn register_read_write_cas() {
        let mut kv = KvState::new();
        assert_eq!(kv.apply(&Op::Read { key: "a".into() }), Ok(Value::Null));
        let miss = kv
            .apply(&Op::Cas {
                key: "a".into(),
                from: 1,
                to: 2,
            })
            .unwrap_err();
        assert_eq!(miss.name(), "cas-mismatch");
        kv.apply(&w("a", 1)).unwrap();
        assert_eq!(kv.read("a"), json!(1));
        let miss = kv
            .apply(&Op::Cas {
                key: "a".into(),
                from: 5,
                to: 2,
            })
            .unwrap_err();
        assert!(matches!(miss, KvError::CasMismatch { found, .. } if found == json!(1)));
        assert_eq!(kv.read("a"), json!(1));
        kv.apply(&Op::Cas {
            key: "a".into(),
            from: 1,
            to: 2,
        })
        .unwrap();
        assert_eq!(kv.read("a"), json!(2));
    }

    #[test]
    fn sets_read_sorted_and_types_do_not_mix() {
        let mut kv = KvState::new();
        for v in [5, 1, 3, 1] {
            kv.apply(&Op::Add {
                key: "s".into(),
                value: v,
            })
            .unwrap();
        }
        assert_eq!(
            kv.apply(&Op::Read { key: "s".into() }),
            Ok(json!([1, 3, 5]))
        );
        assert_eq!(kv.apply(&w("s", 1)).unwrap_err().name(), "wrong-type");
        kv.apply(&w("r", 1)).unwrap();
        assert_eq!(
            kv.apply(&Op::Add {
                key: "r".into(),
                value: 1
            })
            .unwrap_err()
            .name(),
            "wrong-type"
        );
        assert_eq!(kv.to_json(), json!({"r": 1, "s": [1, 3, 5]}));
        assert_eq!(kv.apply(&Op::Status).unwrap_err().name(), "bad-request");
        let r = response(kv.apply(&Op::Cas {
            key: "r".into(),
            from: 9,
            to: 1,
        }));
        assert!(!r.ok && r.definite);
    }

    #[test]
    fn transfers_move_money_atomically_and_never_below_zero() {
        let mut kv = KvState::new();
        let t = |from: &str, to: &str, amount| Op::Transfer {
            from: from.into(),
            to: to.into(),
            amount,
        };
        let all = Op::Balances {
            keys: vec!["a0".into(), "a1".into(), "a2".into()],
        };
        assert_eq!(kv.apply(&all), Ok(json!({"a0": 10, "a1": 10, "a2": 10})));
        kv.apply(&t("a0", "a1", 4)).unwrap();
        kv.apply(&t("a0", "a2", 6)).unwrap();
        let short = kv.apply(&t("a0", "a1", 1)).unwrap_err();
        assert_eq!(short.name(), "insufficient-funds");
        assert!(response(Err(short)).definite);
        assert_eq!(kv.apply(&all), Ok(json!({"a0": 0, "a1": 14, "a2": 16})));
        assert_eq!(
            kv.apply(&t("a1", "a1", 1)).unwrap_err().name(),
            "bad-request"
        );
        assert_eq!(
            kv.apply(&t("a1", "a2", -1)).unwrap_err().name(),
            "bad-request"
        );
        kv.apply(&Op::Add {
            key: "s".into(),
            value: 1,
        })
        .unwrap();
        assert_eq!(kv.apply(&t("s", "a1", 1)).unwrap_err().name(), "wrong-type");
        assert_eq!(kv.apply(&all), Ok(json!({"a0": 0, "a1": 14, "a2": 16})));
    }
}
