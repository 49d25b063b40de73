//! The compacted prefix: what the dumps say about log positions they no longer list.
//!
//! A node that compacted its log up to `snapshot_index` reports, with its snapshot, a
//! digest chaining every committed entry up to it (`snapshot_digest`) and the term each
//! compacted position was committed in (`snapshot_terms`, runs of `[first index, term]`).
//! Each dumped entry carries the chain's value through it (`digest`). Two nodes whose
//! chains hold the same value at one index committed the same entries up to it, so
//! comparing chains at the highest index both know says whether their prefixes agree.

use super::Dump;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Two nodes whose hash chains differ at an index both know: their committed prefixes
/// up to it differ somewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixDivergence {
    pub index: u64,
    pub node_a: String,
    pub digest_a: String,
    pub node_b: String,
    pub digest_b: String,
}

/// For each pair of dumps (by position in the slice, `a < b`), the highest index at which
/// both report a chain value, and whether the values are equal there.
pub(super) struct Chains {
    common: BTreeMap<(usize, usize), (u64, bool)>,
}

/// The chain values a dump reports, by index.
fn known(d: &Dump) -> BTreeMap<u64, &str> {
    let mut m = BTreeMap::new();
    if let (true, Some(s)) = (d.snapshot_index > 0, d.snapshot_digest.as_deref()) {
        m.insert(d.snapshot_index, s);
    }
    for e in &d.entries {
        if let Some(g) = e.digest.as_deref() {
            m.insert(e.index, g);
        }
    }
    m
}

impl Chains {
    /// Compares every pair of dumps; returns the lowest-index disagreement, if any.
    pub(super) fn compare(dumps: &[Dump]) -> (Chains, Option<PrefixDivergence>) {
        let known: Vec<BTreeMap<u64, &str>> = dumps.iter().map(known).collect();
        let mut common = BTreeMap::new();
        let mut divergence: Option<PrefixDivergence> = None;
        for a in 0..dumps.len() {
            for b in a + 1..dumps.len() {
                let Some((&index, &da)) = known[a]
                    .iter()
                    .rev()
                    .find(|(i, _)| known[b].contains_key(i))
                else {
                    continue;
                };
                let db = known[b][&index];
                common.insert((a, b), (index, da == db));
                if da != db && divergence.as_ref().is_none_or(|d| index < d.index) {
                    divergence = Some(PrefixDivergence {
                        index,
                        node_a: dumps[a].node.clone(),
                        digest_a: da.to_string(),
                        node_b: dumps[b].node.clone(),
                        digest_b: db.to_string(),
                    });
                }
            }
        }
        (Chains { common }, divergence)
    }

    /// Whether dumps `a` and `b` were shown to agree on their prefixes up to `index` at
    /// least (equal chains at some index at or after it).
    pub(super) fn agree_through(&self, a: usize, b: usize, index: u64) -> bool {
        let key = if a < b { (a, b) } else { (b, a) };
        self.common
            .get(&key)
            .is_some_and(|&(at, equal)| equal && at >= index)
    }
}

/// Checks the shape of `snapshot_terms`: runs in increasing order of first index, the
/// first at index 1, none past the snapshot. An empty list is allowed (an old node).
pub(super) fn validate_terms(d: &Dump) -> Result<(), String> {
    let mut prev = 0;
    for (n, &(first, _)) in d.snapshot_terms.iter().enumerate() {
        if (n == 0 && first != 1) || (n > 0 && first <= prev) || first > d.snapshot_index {
            return Err(format!(
                "snapshot_terms: run {n} starts at {first}; runs must start at 1, increase \
                 and stay within the snapshot (index {})",
                d.snapshot_index
            ));
        }
        prev = first;
    }
    Ok(())
}

/// The term a compacted position was committed in, when the dump reports it.
pub(super) fn compacted_term(d: &Dump, index: u64) -> Option<u64> {
    if index == 0 || index > d.snapshot_index {
        return None;
    }
    d.snapshot_terms
        .iter()
        .take_while(|(first, _)| *first <= index)
        .last()
        .map(|&(_, term)| term)
}
