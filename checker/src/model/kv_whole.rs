//! A key-value store checked whole: every key's value in one state, no per-key split.
//!
//! [`KvModel`] relies on the engine checking each key alone (P-compositionality), which is
//! both sound and far faster. This model is for what that cannot do: histories whose
//! ops the caller wants judged against one store (a base for multi-key ops), and honest
//! comparisons with checkers that do not partition (Porcupine's `KvNoPartitionModel`).
//! Per key it means exactly what [`KvModel`] means: `read`/`write`/`cas` with register
//! semantics, `get`/`put`/`append` with string semantics, every key starting at `initial`.

use super::register::reg_step;
use super::{HStr, KvModel, KvOp, Model, RegOp, Val};
use crate::history::History;
use crate::linear::OpSummary;
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde_json::Value;
use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Mutex;

/// A kv op on the key numbered `key` (numbers index [`KvState`]'s values).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KvWholeOp {
    pub key: u32,
    pub op: KvOp,
}

/// Every key's value, by key number, with a hash of the whole kept up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvState {
    // First field, so the derived `==` compares it before the values.
    hash: u64,
    vals: Vec<Val>,
}

impl Hash for KvState {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.hash);
    }
}

/// A sum of per-key terms, so changing one key rehashes one value, not the store.
fn entry_hash(k: u32, v: &Val) -> u64 {
    FxBuildHasher
        .hash_one(v)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ u64::from(k).rotate_left(29)
}

impl KvState {
    fn new(vals: Vec<Val>) -> KvState {
        let hash = vals
            .iter()
            .enumerate()
            .fold(0u64, |h, (k, v)| h.wrapping_add(entry_hash(k as u32, v)));
        KvState { hash, vals }
    }

    /// The value of key number `k`.
    pub fn get(&self, k: u32) -> &Val {
        &self.vals[k as usize]
    }

    fn set(&self, k: u32, v: Val) -> KvState {
        let mut n = self.clone();
        n.hash = n
            .hash
            .wrapping_sub(entry_hash(k, &n.vals[k as usize]))
            .wrapping_add(entry_hash(k, &v));
        n.vals[k as usize] = v;
        n
    }
}

/// (old text address, tail text address) → (old, tail, old + tail). The first two keep the
/// addresses taken, so no other string can reuse them while the entry lives.
type ConcatMemo = FxHashMap<(usize, usize), (HStr, HStr, HStr)>;

/// The whole store as one state. Build it with [`KvWholeModel::for_history`] (or
/// [`KvWholeModel::new`] with every key the history uses): keys are numbered up front, and
/// an op on a key the model does not know is an error.
#[derive(Debug)]
pub struct KvWholeModel {
    per_key: KvModel,
    keys: FxHashMap<Option<String>, u32>,
    names: Vec<Option<String>>,
    /// Appends memoized on the identity of (old string, tail): search paths that reach the
    /// same key value by the same appends share one string, so comparing whole states
    /// compares pointers, not kilobytes of text. Only which copy of an equal string a state
    /// holds depends on the order steps run in; verdicts do not. The lock keeps the model
    /// `Sync`. The memo lives as long as the model: build one model per history.
    concat: Mutex<ConcatMemo>,
}

impl KvWholeModel {
    /// A store of exactly `keys` (`None` is the key of keyless ops), each starting at
    /// `initial`; `nil_read_unconstrained` as for [`KvModel`].
    pub fn new(
        initial: &Value,
        nil_read_unconstrained: bool,
        keys: impl IntoIterator<Item = Option<String>>,
    ) -> Self {
        // Sorted, so key numbers (and rendered states) do not depend on history order.
        let names: Vec<Option<String>> = keys
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let keys = names
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i as u32))
            .collect();
        KvWholeModel {
            per_key: KvModel::new(initial, nil_read_unconstrained),
            keys,
            names,
            concat: Mutex::new(FxHashMap::default()),
        }
    }

    /// A store of every key `history`'s client operations use.
    pub fn for_history(history: &History, initial: &Value, nil_read_unconstrained: bool) -> Self {
        let keys = history
            .events
            .iter()
            .filter(|e| e.is_client())
            .map(|e| e.key.clone());
        KvWholeModel::new(initial, nil_read_unconstrained, keys)
    }

    fn concat(&self, old: &HStr, tail: &HStr) -> HStr {
        let id = (old.text_ptr(), tail.text_ptr());
        let mut memo = self.concat.lock().unwrap_or_else(|e| e.into_inner());
        memo.entry(id)
            .or_insert_with(|| (old.clone(), tail.clone(), old.concat(tail)))
            .2
            .clone()
    }

    fn key_name(&self, k: u32) -> String {
        match &self.names[k as usize] {
            Some(name) => format!("{name:?}"),
            None => "(no key)".to_string(),
        }
    }
}

impl Model for KvWholeModel {
    type State = KvState;
    type Op = KvWholeOp;

    fn init(&self) -> KvState {
        KvState::new(vec![self.per_key.initial.clone(); self.names.len()])
    }

    fn op(&self, op: &OpSummary) -> Result<Option<KvWholeOp>, String> {
        let Some(&key) = self.keys.get(&op.key) else {
            return Err(format!(
                "key {:?} is not one of the store's keys (build the model for this history)",
                op.key.as_deref().unwrap_or("")
            ));
        };
        Ok(self.per_key.op(op)?.map(|op| KvWholeOp { key, op }))
    }

    fn step(&self, state: &KvState, op: &KvWholeOp, next: &mut Vec<KvState>) {
        let cur = state.get(op.key);
        let new = match &op.op {
            KvOp::Reg(RegOp::Read(v)) => {
                if v == cur {
                    next.push(state.clone());
                }
                return;
            }
            KvOp::Reg(r) => reg_step(cur, r),
            // As `KvModel`: nil becomes the tail, anything not a string refuses.
            KvOp::Append(tail) => match cur {
                Val::Str(s) => Some(Val::Str(self.concat(s, tail))),
                Val::Nil => Some(Val::Str(tail.clone())),
                _ => None,
            },
        };
        next.extend(new.map(|v| state.set(op.key, v)));
    }

    fn is_read_only(&self, op: &KvWholeOp) -> bool {
        self.per_key.is_read_only(&op.op)
    }

    fn accepts(&self, state: &KvState, op: &KvWholeOp) -> bool {
        self.per_key.accepts(state.get(op.key), &op.op)
    }

    fn prune_infos(&self, ops: &[KvWholeOp], info: &[bool], prune: &mut [bool]) {
        // What a key's ops observe is that key's business alone, so prune key by key with
        // the per-key rule.
        let mut by_key: FxHashMap<u32, Vec<usize>> = FxHashMap::default();
        for (i, op) in ops.iter().enumerate() {
            by_key.entry(op.key).or_default().push(i);
        }
        for at in by_key.values() {
            let sub: Vec<KvOp> = at.iter().map(|&i| ops[i].op.clone()).collect();
            let sub_info: Vec<bool> = at.iter().map(|&i| info[i]).collect();
            let mut sub_prune = vec![false; at.len()];
            self.per_key.prune_infos(&sub, &sub_info, &mut sub_prune);
            for (&i, p) in at.iter().zip(sub_prune) {
                prune[i] = p;
            }
        }
    }

    fn refusal(&self, state: &KvState, op: &KvWholeOp) -> String {
        format!(
            "key {}: {}",
            self.key_name(op.key),
            self.per_key.refusal(state.get(op.key), &op.op)
        )
    }

    fn render(&self, state: &KvState) -> String {
        let parts: Vec<String> = (0..self.names.len() as u32)
            .map(|k| format!("{} {}", self.key_name(k), state.get(k)))
            .collect();
        format!("{{{}}}", parts.join(", "))
    }

    fn per_key(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType;
    use crate::model::register::tests::summary;
    use serde_json::json;

    fn on(key: &str, f: &str, kind: EventType, input: Value, output: Value) -> OpSummary {
        OpSummary {
            key: Some(key.to_string()),
            ..summary(f, kind, input, output)
        }
    }

    fn model() -> KvWholeModel {
        let keys = ["b", "a"].map(|k| Some(k.to_string()));
        KvWholeModel::new(&json!(""), false, keys)
    }

    fn step(m: &KvWholeModel, s: &KvState, op: &KvWholeOp) -> Vec<KvState> {
        let mut next = Vec::new();
        m.step(s, op, &mut next);
        next
    }

    #[test]
    fn keys_are_independent_values_in_one_state() {
        use EventType::Ok;
        let m = model();
        let op = |key, f, input, output| m.op(&on(key, f, Ok, input, output)).unwrap().unwrap();
        let app_a = op("a", "append", json!("x"), Value::Null);
        let put_b = op("b", "put", json!("y"), Value::Null);
        let get_a = op("a", "get", Value::Null, json!("xx"));
        let get_b = op("b", "get", Value::Null, json!(""));
        assert_eq!((app_a.key, put_b.key), (0, 1), "keys are numbered in order");

        let s1 = step(&m, &m.init(), &app_a).remove(0);
        let s2 = step(&m, &s1, &app_a).remove(0);
        assert!(m.accepts(&s2, &get_a) && m.accepts(&s2, &get_b));
        assert!(step(&m, &s1, &get_a).is_empty());
        assert_eq!(m.render(&s2), r#"{"a" "xx", "b" ""}"#);
        assert_eq!(
            m.refusal(&s1, &get_a),
            r#"key "a": read "xx" but the key holds "x""#
        );
        let s3 = step(&m, &s2, &put_b).remove(0);
        assert!(!m.accepts(&s3, &get_b));

        // The same appends along another path give an equal state with the same hash.
        let other = step(&m, &step(&m, &m.init(), &app_a)[0], &app_a).remove(0);
        assert_eq!(other, s2);
        assert_eq!(FxBuildHasher.hash_one(&other), FxBuildHasher.hash_one(&s2));
        // Putting the value it already holds leaves an equal state.
        let put_x = op("a", "put", json!("xx"), Value::Null);
        assert_eq!(step(&m, &s2, &put_x), vec![s2.clone()]);
        assert_ne!(s1, s2);
    }

    #[test]
    fn registers_unknown_keys_and_pruning() {
        let m = KvWholeModel::new(&Value::Null, false, [Some("k".to_string()), None]);
        let cas = m
            .op(&on("k", "cas", EventType::Ok, json!([1, 2]), json!([1, 2])))
            .unwrap()
            .unwrap();
        let write1 = m
            .op(&summary("write", EventType::Ok, json!(1), json!(1)))
            .unwrap()
            .unwrap();
        assert!(step(&m, &m.init(), &cas).is_empty(), "nil is not 1");
        let s = step(&m, &m.init(), &write1).remove(0);
        assert!(
            step(&m, &s, &cas).is_empty(),
            "the keyless register is not k"
        );
        let err = m
            .op(&on("z", "get", EventType::Ok, Value::Null, json!("")))
            .unwrap_err();
        assert!(err.contains("\"z\""), "{err}");

        // An info write of 2 on k is seen by nothing on k; on the keyless key a cas reads 2.
        let w2k = m
            .op(&on("k", "write", EventType::Info, json!(2), Value::Null))
            .unwrap()
            .unwrap();
        let w2 = m
            .op(&summary("write", EventType::Info, json!(2), Value::Null))
            .unwrap()
            .unwrap();
        let cas2 = m
            .op(&summary("cas", EventType::Ok, json!([2, 3]), json!([2, 3])))
            .unwrap()
            .unwrap();
        let mut prune = [false; 3];
        m.prune_infos(&[w2k, w2, cas2], &[true, true, false], &mut prune);
        assert_eq!(prune, [true, false, false]);
    }
}
