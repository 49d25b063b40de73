//! A key-value store, one key at a time (the engine partitions histories by key).
//!
//! Per key it speaks both dialects: sunder's register workload (`read`/`write`/`cas`) and
//! Porcupine's kv corpus (`get`/`put`/`append`, where append concatenates strings).

use super::register::{observed, read_op, reg_op, reg_refusal, reg_step, unobservable};
use super::{HStr, Model, RegOp, Val};
use crate::linear::OpSummary;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvOp {
    Reg(RegOp),
    Append(HStr),
}

/// The value of one key.
#[derive(Debug, Clone)]
pub struct KvModel {
    pub initial: Val,
    pub nil_read_unconstrained: bool,
}

impl KvModel {
    pub fn new(initial: &Value, nil_read_unconstrained: bool) -> Self {
        KvModel {
            initial: Val::from_json(initial),
            nil_read_unconstrained,
        }
    }
}

impl Model for KvModel {
    type State = Val;
    type Op = KvOp;

    fn init(&self) -> Val {
        self.initial.clone()
    }

    fn op(&self, op: &OpSummary) -> Result<Option<KvOp>, String> {
        match op.f.as_str() {
            "get" => {
                Ok(read_op(op, self.nil_read_unconstrained)?.map(|v| KvOp::Reg(RegOp::Read(v))))
            }
            "put" => Ok(Some(KvOp::Reg(RegOp::Write(Val::from_json(&op.input))))),
            "append" => match &op.input {
                Value::String(s) => Ok(Some(KvOp::Append(HStr::new(s)))),
                v => Err(format!("append needs a string value, got {v}")),
            },
            "read" | "write" | "cas" => {
                Ok(reg_op(op, true, self.nil_read_unconstrained)?.map(KvOp::Reg))
            }
            f => Err(format!(
                "unknown function {f:?}: the kv model knows get, put, append, read, write, cas"
            )),
        }
    }

    fn step(&self, state: &Val, op: &KvOp, next: &mut Vec<Val>) {
        match op {
            KvOp::Reg(op) => next.extend(reg_step(state, op)),
            KvOp::Append(tail) => match state {
                Val::Str(s) => next.push(Val::Str(s.concat(tail))),
                Val::Nil => next.push(Val::Str(tail.clone())),
                _ => {}
            },
        }
    }

    fn is_read_only(&self, op: &KvOp) -> bool {
        matches!(op, KvOp::Reg(RegOp::Read(_)))
    }

    fn accepts(&self, state: &Val, op: &KvOp) -> bool {
        matches!(op, KvOp::Reg(RegOp::Read(v)) if v == state)
    }

    fn prune_infos(&self, ops: &[KvOp], info: &[bool], prune: &mut [bool]) {
        let seen = observed(ops.iter().filter_map(|op| match op {
            KvOp::Reg(op) => Some(op),
            KvOp::Append(_) => None,
        }));
        // An append extends whatever value the key holds, so with appends about no value
        // is safely unobservable; an appended tail is, when no observed string contains it
        // (the state keeps containing it until a write replaces it).
        let appends = ops.iter().any(|op| matches!(op, KvOp::Append(_)));
        for i in (0..ops.len()).filter(|&i| info[i]) {
            prune[i] = match &ops[i] {
                KvOp::Reg(op) => !appends && unobservable(op, &seen),
                KvOp::Append(tail) => {
                    !tail.as_str().is_empty()
                        && !seen.iter().any(|v| match v {
                            Val::Str(s) => s.as_str().contains(tail.as_str()),
                            _ => false,
                        })
                }
            };
        }
    }

    fn refusal(&self, state: &Val, op: &KvOp) -> String {
        match op {
            KvOp::Reg(op) => reg_refusal(state, op).replace("the register", "the key"),
            KvOp::Append(tail) => {
                format!("append {:?} to a non-string value {state}", tail.as_str())
            }
        }
    }

    fn render(&self, state: &Val) -> String {
        state.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType;
    use crate::model::register::tests::summary;
    use serde_json::json;

    #[test]
    fn appends_and_gets() {
        let m = KvModel::new(&json!(""), false);
        let app = m
            .op(&summary("append", EventType::Ok, json!("ab"), Value::Null))
            .unwrap();
        let get = m
            .op(&summary("get", EventType::Ok, Value::Null, json!("ab")))
            .unwrap();
        let mut next = Vec::new();
        m.step(&m.init(), &app.unwrap(), &mut next);
        assert_eq!(next, vec![Val::Str(HStr::new("ab"))]);
        let get = get.unwrap();
        let mut after = Vec::new();
        m.step(&next[0], &get, &mut after);
        assert_eq!(after, next);
        after.clear();
        m.step(&m.init(), &get, &mut after);
        assert!(after.is_empty());
        assert_eq!(
            m.refusal(&m.init(), &get),
            "read \"ab\" but the key holds \"\""
        );
        let cas = m
            .op(&summary("cas", EventType::Ok, json!([1, 2]), json!([1, 2])))
            .unwrap();
        assert_eq!(cas, Some(KvOp::Reg(RegOp::Cas(Val::Int(1), Val::Int(2)))));
        assert!(
            m.op(&summary("incr", EventType::Ok, json!(1), json!(1)))
                .is_err()
        );
    }
}
