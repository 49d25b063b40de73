//! Sequential specifications the linearizability checker judges histories against.
//!
//! ```text
//!  ModelSpec (what the CLI names) ──build──► a Model (trait) ──► linear::check_model
//!       register / cas-register                RegisterModel
//!       kv                                     KvModel (one key at a time)
//!       kv-whole                               KvWholeModel (the store as one state)
//!       your own                               impl Model for Yours
//! ```
//!
//! A [`Model`] turns each operation (an invocation paired with its completion) into a
//! hashable op once, then says which states an op may lead to from a state. Returning
//! several next states makes the model nondeterministic: the engine then tracks the set of
//! states the object may be in (Porcupine's power-set construction), interning every state
//! and every set of states into small integers so the search itself only moves integers.
//!
//! # A custom model
//!
//! A register whose writes may be silently lost (a nondeterministic model):
//!
//! ```
//! use sunder_checker::linear::{check_model, CheckOptions, OpSummary};
//! use sunder_checker::model::Model;
//! use sunder_checker::{Event, EventType, History, Process, Verdict};
//! use serde_json::{json, Value};
//!
//! struct LossyRegister;
//!
//! #[derive(Clone, PartialEq, Eq, Hash)]
//! enum Op { Write(i64), Read(i64) }
//!
//! impl Model for LossyRegister {
//!     type State = i64;
//!     type Op = Op;
//!     fn init(&self) -> i64 { 0 }
//!     fn op(&self, op: &OpSummary) -> Result<Option<Op>, String> {
//!         let int = |v: &Value| v.as_i64().ok_or_else(|| format!("expected an integer, got {v}"));
//!         match op.f.as_str() {
//!             "write" => Ok(Some(Op::Write(int(&op.input)?))),
//!             "read" if op.kind == EventType::Ok => Ok(Some(Op::Read(int(&op.output)?))),
//!             "read" => Ok(None), // an unfinished read constrains nothing
//!             f => Err(format!("unknown function {f}")),
//!         }
//!     }
//!     fn step(&self, state: &i64, op: &Op, next: &mut Vec<i64>) {
//!         match op {
//!             Op::Write(v) => { next.push(*v); next.push(*state); } // applied, or lost
//!             Op::Read(v) if v == state => next.push(*state),
//!             Op::Read(_) => {}
//!         }
//!     }
//!     fn render(&self, state: &i64) -> String { state.to_string() }
//! }
//!
//! let ev = |index, kind, process, f: &str, value: Value| Event {
//!     index, time: index, kind, process: Process::Client(process), f: f.into(),
//!     key: None, value, error: None, node: None, committed: None,
//! };
//! // write 1 completes, then a read still sees 0: fine for a lossy register.
//! let history = History::new(vec![
//!     ev(0, EventType::Invoke, 0, "write", json!(1)),
//!     ev(1, EventType::Ok, 0, "write", json!(1)),
//!     ev(2, EventType::Invoke, 1, "read", Value::Null),
//!     ev(3, EventType::Ok, 1, "read", json!(0)),
//! ]);
//! let report = check_model(&history, &LossyRegister, "lossy-register", &CheckOptions::default());
//! assert_eq!(report.verdict, Verdict::Valid);
//! ```

mod hstr;
mod kv;
mod kv_whole;
mod register;
mod value;

pub use hstr::HStr;
pub use kv::{KvModel, KvOp};
pub use kv_whole::{KvState, KvWholeModel, KvWholeOp};
pub use register::{RegOp, RegisterModel};
pub use value::Val;

use crate::linear::OpSummary;
use serde_json::Value;
use std::hash::Hash;

/// A sequential specification.
///
/// The engine calls [`Model::op`] once per operation, interns the ops and the states, and
/// calls [`Model::step`] once per (set of states, op) it meets, so models can be written
/// plainly; speed comes from the engine.
pub trait Model: Send + Sync {
    type State: Clone + Eq + Hash + Send + Sync;
    type Op: Clone + Eq + Hash + Send + Sync;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The model's view of one operation (`kind` is `ok` or `info`; for `info` the output is
    /// null). `Ok(None)` when the operation constrains nothing and can be left out (an
    /// unfinished read); `Err` when the model does not understand it.
    fn op(&self, op: &OpSummary) -> Result<Option<Self::Op>, String>;

    /// Pushes onto `next` every state `op` may lead to from `state`; pushing nothing means
    /// the op cannot take effect in `state`.
    fn step(&self, state: &Self::State, op: &Self::Op, next: &mut Vec<Self::State>);

    /// True when `op` never changes the state, wherever it is allowed (a read). The search
    /// then places it as soon as it fits and tries nothing else in its place; a wrong `true`
    /// makes the checker unsound, so the default is `false`.
    fn is_read_only(&self, op: &Self::Op) -> bool {
        let _ = op;
        false
    }

    /// Whether a read-only `op` fits `state` (only asked for ops [`Model::is_read_only`]
    /// says are read-only; saves building a copy of the state). The default asks `step`.
    fn accepts(&self, state: &Self::State, op: &Self::Op) -> bool {
        let mut next = Vec::new();
        self.step(state, op, &mut next);
        !next.is_empty()
    }

    /// Marks `info` ops that no linearization needs, so the search can leave them out
    /// (`ops` are all of one partition's ops, `info[i]` says which are `info`). An info op
    /// stays a candidate to the end of the search, and each one can double the work; one
    /// whose effect nothing ever observes (a write of a value no op reads) can be dropped.
    /// A wrong mark makes the checker unsound; the default marks nothing.
    fn prune_infos(&self, ops: &[Self::Op], info: &[bool], prune: &mut [bool]) {
        let _ = (ops, info, prune);
    }

    /// Why `op` cannot take effect in `state`, for people, e.g. `read 3 but the register
    /// holds 2`.
    fn refusal(&self, state: &Self::State, op: &Self::Op) -> String {
        let _ = (state, op);
        "the model does not allow it here".to_string()
    }

    /// The state, for people.
    fn render(&self, state: &Self::State) -> String;

    /// Whether the engine may check each key's operations alone (P-compositionality:
    /// sound when the state is one independent object per key, and much faster). `false`
    /// puts the whole history in one partition, for models whose state spans keys.
    fn per_key(&self) -> bool {
        true
    }
}

/// Which built-in sequential specification a history is checked against.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    /// Single register: read / write. `initial` is the value before any write (JSON; Null = absent/nil).
    Register { initial: Value },
    /// Register with compare-and-set: read / write / cas (value `[from, to]`).
    CasRegister { initial: Value },
    /// Key-value, decomposed per key (P-compositionality). Per key it accepts read/write/cas
    /// (register semantics, as sunder's register workload records them) and get/put/append
    /// (string semantics, as Porcupine's kv corpus: append concatenates).
    Kv { initial: Value },
    /// Key-value, the whole store as one state (no per-key split): the same ops and
    /// semantics as `Kv`, every key starting at `initial`. Far slower on big histories; for
    /// multi-key histories and for comparisons with checkers that do not partition.
    KvWhole { initial: Value },
}

impl ModelSpec {
    /// The name people type: `register`, `cas-register`, `kv` or `kv-whole`.
    pub fn name(&self) -> &'static str {
        match self {
            ModelSpec::Register { .. } => "register",
            ModelSpec::CasRegister { .. } => "cas-register",
            ModelSpec::Kv { .. } => "kv",
            ModelSpec::KvWhole { .. } => "kv-whole",
        }
    }

    /// The model called `name`, starting from `initial` (None = the model's default: nil for
    /// registers, "" for kv).
    pub fn parse(name: &str, initial: Option<Value>) -> Result<ModelSpec, String> {
        match name {
            "register" => Ok(ModelSpec::Register {
                initial: initial.unwrap_or(Value::Null),
            }),
            "cas-register" | "cas" => Ok(ModelSpec::CasRegister {
                initial: initial.unwrap_or(Value::Null),
            }),
            "kv" | "key-value" => Ok(ModelSpec::Kv {
                initial: initial.unwrap_or(Value::String(String::new())),
            }),
            "kv-whole" => Ok(ModelSpec::KvWhole {
                initial: initial.unwrap_or(Value::String(String::new())),
            }),
            other => Err(format!(
                "unknown model {other:?}: expected register, cas-register, kv or kv-whole"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_names_and_defaults() {
        assert_eq!(
            ModelSpec::parse("cas-register", None),
            Ok(ModelSpec::CasRegister {
                initial: Value::Null
            })
        );
        assert_eq!(
            ModelSpec::parse("kv", None),
            Ok(ModelSpec::Kv { initial: json!("") })
        );
        assert_eq!(
            ModelSpec::parse("register", Some(json!(0))),
            Ok(ModelSpec::Register { initial: json!(0) })
        );
        assert!(
            ModelSpec::parse("queue", None)
                .unwrap_err()
                .contains("queue")
        );
        assert_eq!(ModelSpec::Kv { initial: json!("") }.name(), "kv");
        let whole = ModelSpec::parse("kv-whole", None).unwrap();
        assert_eq!(whole, ModelSpec::KvWhole { initial: json!("") });
        assert_eq!(whole.name(), "kv-whole");
    }
}
