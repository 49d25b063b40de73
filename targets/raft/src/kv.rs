//! The replicated state machine: registers and sets keyed by string.
//!
//! Kept here rather than shared so that a snapshot's serialised form is this crate's to
//! define (it is written to disk and sent in `InstallSnapshot`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sunder_wire::{Op, Val, errors};

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
            Op::Status | Op::Dump => Err(errors::BAD_REQUEST),
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
}
