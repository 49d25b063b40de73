//! Ballots: the proposal numbers that order leaders.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// A proposal number: a round and the index of the node that owns it.
///
/// Field order matters: the derived `Ord` compares `round` first, then `node`, as numbers.
/// Each node only ever uses rounds congruent to its own index modulo the cluster size (see
/// [`Ballot::next_for`]), so a round names exactly one proposer and can serve as the "term"
/// the agreement checker expects to see at most one leader for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Ballot {
    pub round: u64,
    pub node: u32,
}

impl Ballot {
    /// The ballot below every real one: nothing promised, nothing accepted.
    pub const ZERO: Ballot = Ballot { round: 0, node: 0 };

    /// The smallest ballot owned by `node` (of `n` members) that is above `seen`.
    pub fn next_for(node: u32, n: u32, seen: Ballot) -> Ballot {
        let n = u64::from(n.max(1));
        let idx = u64::from(node);
        // Rounds of node `idx` are idx+1, idx+1+n, idx+1+2n, ...: never 0, never shared.
        let base = idx + 1;
        let round = if seen.round < base {
            base
        } else {
            base + ((seen.round - base) / n + 1) * n
        };
        Ballot { round, node }
    }

    /// The wire form the design we were handed used: `n<node+1>-<round>`.
    pub fn legacy_string(self) -> String {
        format!("n{}-{}", self.node + 1, self.round)
    }

    /// Compares two ballots the way the handed design did: as strings, so that "n1-10"
    /// sorts before "n1-9". Only the planted bug `string-ballots` calls this.
    pub fn legacy_cmp(self, other: Ballot) -> Ordering {
        self.legacy_string().cmp(&other.legacy_string())
    }
}

impl std::fmt::Display for Ballot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.round, self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_order_round_first() {
        assert!(Ballot { round: 10, node: 0 } > Ballot { round: 9, node: 4 });
        assert!(Ballot { round: 9, node: 1 } > Ballot { round: 9, node: 0 });
    }

    #[test]
    fn legacy_order_is_lexicographic() {
        let b9 = Ballot { round: 9, node: 0 };
        let b10 = Ballot { round: 10, node: 0 };
        assert_eq!(b10.legacy_string(), "n1-10");
        assert_eq!(b10.legacy_cmp(b9), Ordering::Less);
        assert_eq!(b10.cmp(&b9), Ordering::Greater);
    }

    #[test]
    fn next_rounds_are_owned_and_increasing() {
        for node in 0..5u32 {
            let mut seen = Ballot::ZERO;
            for _ in 0..20 {
                let b = Ballot::next_for(node, 5, seen);
                assert!(b > seen);
                assert_eq!((b.round - 1) % 5, u64::from(node));
                seen = b;
            }
        }
        let b = Ballot::next_for(2, 5, Ballot { round: 17, node: 1 });
        assert_eq!(b.round, 18);
        let b = Ballot::next_for(2, 5, Ballot { round: 18, node: 2 });
        assert_eq!(b.round, 23);
    }
}
