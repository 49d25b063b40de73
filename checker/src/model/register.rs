//! Registers: read / write, and optionally compare-and-set, Knossos-style.

use super::{Model, Val};
use crate::history::EventType;
use crate::linear::OpSummary;
use rustc_hash::FxHashSet;
use serde_json::Value;

/// A register op with its observed result folded in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RegOp {
    /// An `ok` read that returned this value.
    Read(Val),
    Write(Val),
    /// Takes effect only when the register holds `from` (a failed cas never happened, so it
    /// is never an op).
    Cas(Val, Val),
}

/// A single register: `read`, `write`, and `cas` (value `[from, to]`) when `cas` is set.
#[derive(Debug, Clone)]
pub struct RegisterModel {
    pub initial: Val,
    pub cas: bool,
    /// An `ok` read of nil constrains nothing (Knossos' convention for Jepsen histories).
    pub nil_read_unconstrained: bool,
}

impl RegisterModel {
    pub fn new(initial: &Value, cas: bool, nil_read_unconstrained: bool) -> Self {
        RegisterModel {
            initial: Val::from_json(initial),
            cas,
            nil_read_unconstrained,
        }
    }
}

/// The register op for `read`/`write`/`cas` (also used per key by the kv model).
pub(crate) fn reg_op(
    op: &OpSummary,
    cas: bool,
    nil_read_unconstrained: bool,
) -> Result<Option<RegOp>, String> {
    match op.f.as_str() {
        "read" => read_op(op, nil_read_unconstrained).map(|v| v.map(RegOp::Read)),
        "write" => Ok(Some(RegOp::Write(Val::from_json(&op.input)))),
        "cas" if cas => match op.input.as_array().map(Vec::as_slice) {
            Some([from, to]) => Ok(Some(RegOp::Cas(Val::from_json(from), Val::from_json(to)))),
            _ => Err(format!("a cas value must be [from, to], got {}", op.input)),
        },
        "cas" => Err("cas needs the cas-register model (this is a plain register)".to_string()),
        f => Err(format!(
            "unknown function {f:?}: a register knows read, write{}",
            if cas { ", cas" } else { "" }
        )),
    }
}

/// What a read constrains: the value an `ok` read returned, or nothing (an unfinished read,
/// or a read of nil under Knossos' convention).
pub(crate) fn read_op(op: &OpSummary, nil_read_unconstrained: bool) -> Result<Option<Val>, String> {
    if op.kind != EventType::Ok {
        return Ok(None);
    }
    let v = Val::from_json(&op.output);
    Ok(if v.is_nil() && nil_read_unconstrained {
        None
    } else {
        Some(v)
    })
}

/// Values some op observes: what reads returned and what cas ops compare against.
pub(crate) fn observed<'a>(ops: impl Iterator<Item = &'a RegOp>) -> FxHashSet<&'a Val> {
    ops.filter_map(|op| match op {
        RegOp::Read(v) | RegOp::Cas(v, _) => Some(v),
        RegOp::Write(_) => None,
    })
    .collect()
}

/// An info write (or cas) of a value nothing observes: once the register holds it, no
/// read or cas can follow until a write overwrites it, so leaving the op out changes
/// nothing any other op sees.
pub(crate) fn unobservable(op: &RegOp, observed: &FxHashSet<&Val>) -> bool {
    match op {
        RegOp::Write(v) | RegOp::Cas(_, v) => !observed.contains(v),
        RegOp::Read(_) => false,
    }
}

pub(crate) fn reg_step(state: &Val, op: &RegOp) -> Option<Val> {
    match op {
        RegOp::Read(v) => (v == state).then(|| state.clone()),
        RegOp::Write(v) => Some(v.clone()),
        RegOp::Cas(from, to) => (from == state).then(|| to.clone()),
    }
}

pub(crate) fn reg_refusal(state: &Val, op: &RegOp) -> String {
    match op {
        RegOp::Read(v) => format!("read {v} but the register holds {state}"),
        RegOp::Write(v) => format!("write {v} is always allowed (state {state})"),
        RegOp::Cas(from, to) => {
            format!("cas {from}→{to} but the register holds {state}")
        }
    }
}

impl Model for RegisterModel {
    type State = Val;
    type Op = RegOp;

    fn init(&self) -> Val {
        self.initial.clone()
    }

    fn op(&self, op: &OpSummary) -> Result<Option<RegOp>, String> {
        reg_op(op, self.cas, self.nil_read_unconstrained)
    }

    fn step(&self, state: &Val, op: &RegOp, next: &mut Vec<Val>) {
        next.extend(reg_step(state, op));
    }

    fn is_read_only(&self, op: &RegOp) -> bool {
        matches!(op, RegOp::Read(_))
    }

    fn accepts(&self, state: &Val, op: &RegOp) -> bool {
        matches!(op, RegOp::Read(v) if v == state)
    }

    fn prune_infos(&self, ops: &[RegOp], info: &[bool], prune: &mut [bool]) {
        let seen = observed(ops.iter());
        for i in (0..ops.len()).filter(|&i| info[i]) {
            prune[i] = unobservable(&ops[i], &seen);
        }
    }

    fn refusal(&self, state: &Val, op: &RegOp) -> String {
        reg_refusal(state, op)
    }

    fn render(&self, state: &Val) -> String {
        state.to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::history::Process;
    use serde_json::json;

    pub(crate) fn summary(f: &str, kind: EventType, input: Value, output: Value) -> OpSummary {
        OpSummary {
            id: 0,
            process: Process::Client(0),
            f: f.to_string(),
            key: None,
            input,
            output,
            kind,
            call: 0,
            ret: None,
            invoke_index: 0,
            complete_index: None,
        }
    }

    fn step(m: &RegisterModel, s: &Val, op: &RegOp) -> Vec<Val> {
        let mut next = Vec::new();
        m.step(s, op, &mut next);
        next
    }

    #[test]
    fn reads_writes_and_cas() {
        let m = RegisterModel::new(&Value::Null, true, false);
        let w = m
            .op(&summary("write", EventType::Ok, json!(2), json!(2)))
            .unwrap()
            .unwrap();
        let r2 = m
            .op(&summary("read", EventType::Ok, Value::Null, json!(2)))
            .unwrap()
            .unwrap();
        let cas = m
            .op(&summary("cas", EventType::Info, json!([2, 3]), Value::Null))
            .unwrap();
        let cas = cas.unwrap();
        let s0 = m.init();
        assert_eq!(step(&m, &s0, &w), vec![Val::Int(2)]);
        assert!(step(&m, &s0, &r2).is_empty());
        assert_eq!(m.refusal(&s0, &r2), "read 2 but the register holds nil");
        assert_eq!(step(&m, &Val::Int(2), &cas), vec![Val::Int(3)]);
        assert!(step(&m, &Val::Int(1), &cas).is_empty());
    }

    #[test]
    fn unfinished_and_nil_reads() {
        let strict = RegisterModel::new(&Value::Null, false, false);
        let loose = RegisterModel::new(&Value::Null, false, true);
        let info_read = summary("read", EventType::Info, Value::Null, Value::Null);
        let nil_read = summary("read", EventType::Ok, Value::Null, Value::Null);
        assert_eq!(strict.op(&info_read), Ok(None));
        assert_eq!(strict.op(&nil_read), Ok(Some(RegOp::Read(Val::Nil))));
        assert_eq!(loose.op(&nil_read), Ok(None));
        let cas = summary("cas", EventType::Ok, json!([1, 2]), json!([1, 2]));
        assert!(strict.op(&cas).unwrap_err().contains("cas-register"));
        let bad = summary("cas", EventType::Ok, json!(1), json!(1));
        assert!(
            RegisterModel::new(&Value::Null, true, false)
                .op(&bad)
                .is_err()
        );
    }

    #[test]
    fn prunes_only_unobserved_info_writes() {
        let m = RegisterModel::new(&Value::Null, true, false);
        let r1 = RegOp::Read(Val::Int(1));
        let w1 = RegOp::Write(Val::Int(1));
        let w2 = RegOp::Write(Val::Int(2));
        let c23 = RegOp::Cas(Val::Int(2), Val::Int(3));
        let ops = [r1, w1.clone(), w2.clone(), c23, w2, w1];
        let info = [false, true, true, true, false, false];
        let mut prune = [false; 6];
        m.prune_infos(&ops, &info, &mut prune);
        // write 1 is read; write 2 is compared against by the cas; nothing sees 3.
        assert_eq!(prune, [false, false, false, true, false, false]);
    }
}
