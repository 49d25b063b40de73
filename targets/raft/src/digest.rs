//! What a snapshot remembers of the entries it replaced, for the agreement checker: a hash
//! chain over every committed entry (index, term, command) and the term of each position
//! (as runs). Two nodes with the same chain value at one index committed the same prefix;
//! the terms let an acknowledged write be placed at its reported position after its entry
//! was compacted away (see `sunder_checker::agreement`).
//!
//! The hash is FNV-1a, 64 bits: it guards against bugs, not adversaries (Raft trusts its
//! peers), and needs no dependency. Only equality of chain values is ever used.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The applied prefix of the log, summarised. Built as entries are applied, kept in the
/// snapshot, so that it survives compaction and travels with `InstallSnapshot`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prefix {
    /// The last index folded in.
    pub index: u64,
    pub chain: u64,
    /// `(first index, term)` runs covering `1..=index`.
    pub terms: Vec<(u64, u64)>,
    /// Set when an entry was missed (a snapshot from before this summary existed): the
    /// chain and terms no longer describe the prefix, and are not reported.
    #[serde(default)]
    pub lost: bool,
}

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(PRIME);
    }
    h
}

impl Prefix {
    /// Folds in the next committed entry (`command` as the dump shows it, `null` for a
    /// no-op). An entry out of order means the summary missed some: it is then lost.
    pub fn push(&mut self, index: u64, term: u64, command: &Value) {
        if Some(index) != self.index.checked_add(1) {
            self.lost = true;
        }
        self.index = index;
        if self.lost {
            self.terms.clear();
            return;
        }
        let mut h = fnv(OFFSET, &self.chain.to_le_bytes());
        h = fnv(h, &index.to_le_bytes());
        h = fnv(h, &term.to_le_bytes());
        h = fnv(h, command.to_string().as_bytes());
        self.chain = h;
        if self.terms.last().is_none_or(|&(_, t)| t != term) {
            self.terms.push((index, term));
        }
    }

    /// The chain value as the dump reports it; `None` for the empty prefix.
    pub fn hex(&self) -> Option<String> {
        (self.index > 0 && !self.lost).then(|| format!("{:016x}", self.chain))
    }

    /// The term runs, empty when lost.
    pub fn terms(&self) -> Vec<(u64, u64)> {
        self.terms.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chains_differ_with_any_field_and_terms_form_runs() {
        let mut a = Prefix::default();
        a.push(1, 1, &Value::Null);
        a.push(2, 1, &json!({"op": "write", "key": "k", "value": 1}));
        a.push(3, 2, &json!({"op": "write", "key": "k", "value": 2}));
        assert_eq!(a.terms, vec![(1, 1), (3, 2)]);
        let mut b = Prefix::default();
        b.push(1, 1, &Value::Null);
        b.push(2, 1, &json!({"op": "write", "key": "k", "value": 1}));
        let same = b.clone();
        b.push(3, 2, &json!({"op": "write", "key": "k", "value": 2}));
        assert_eq!(a.hex(), b.hex());
        let mut c = same.clone();
        c.push(3, 3, &json!({"op": "write", "key": "k", "value": 2}));
        assert_ne!(a.hex(), c.hex());
        let mut d = same;
        d.push(3, 2, &json!({"op": "write", "key": "k", "value": 3}));
        assert_ne!(a.hex(), d.hex());
        assert_eq!(Prefix::default().hex(), None);
        // A summary that starts after index 1 (an old snapshot) reports nothing.
        let mut old = Prefix::default();
        old.push(11, 1, &Value::Null);
        assert_eq!((old.hex(), old.terms()), (None, vec![]));
    }
}
