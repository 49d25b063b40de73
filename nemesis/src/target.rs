//! Which nodes a process fault hits: one, a minority, a majority, all, or the leader.

use crate::{NemesisError, NodeId};
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetSpec {
    One,
    /// `(n - 1) / 2` nodes, at least one.
    Minority,
    /// `n / 2 + 1` nodes.
    Majority,
    All,
    Leader,
}

impl TargetSpec {
    pub const ALL: [TargetSpec; 5] = [
        TargetSpec::One,
        TargetSpec::Minority,
        TargetSpec::Majority,
        TargetSpec::All,
        TargetSpec::Leader,
    ];

    pub fn needs_leader(self) -> bool {
        self == TargetSpec::Leader
    }

    /// The chosen nodes, in member order.
    pub fn select(
        self,
        members: &[NodeId],
        leader: Option<&str>,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<NodeId>, NemesisError> {
        let n = members.len();
        let count = match self {
            TargetSpec::One => 1,
            TargetSpec::Minority => ((n.saturating_sub(1)) / 2).max(1),
            TargetSpec::Majority => n / 2 + 1,
            TargetSpec::All => n,
            TargetSpec::Leader => {
                let l = leader.ok_or(NemesisError::NoLeader)?;
                return members
                    .iter()
                    .find(|m| *m == l)
                    .map(|m| vec![m.clone()])
                    .ok_or_else(|| NemesisError::UnknownNode(l.into()));
            }
        };
        let picked: Vec<&NodeId> = members.sample(rng, count.min(n)).collect();
        Ok(members
            .iter()
            .filter(|m| picked.contains(m))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sizes_and_leader() {
        let m: Vec<NodeId> = (1..=5).map(|i| format!("n{i}")).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(TargetSpec::One.select(&m, None, &mut rng).unwrap().len(), 1);
        assert_eq!(
            TargetSpec::Minority
                .select(&m, None, &mut rng)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            TargetSpec::Majority
                .select(&m, None, &mut rng)
                .unwrap()
                .len(),
            3
        );
        assert_eq!(TargetSpec::All.select(&m, None, &mut rng).unwrap(), m);
        assert_eq!(
            TargetSpec::Leader.select(&m, Some("n2"), &mut rng).unwrap(),
            vec!["n2".to_string()]
        );
        assert!(TargetSpec::Leader.select(&m, None, &mut rng).is_err());
        assert!(TargetSpec::Leader.select(&m, Some("n9"), &mut rng).is_err());
    }

    #[test]
    fn same_seed_same_choice() {
        let m: Vec<NodeId> = (1..=5).map(|i| format!("n{i}")).collect();
        let a = TargetSpec::Minority
            .select(&m, None, &mut ChaCha8Rng::seed_from_u64(42))
            .unwrap();
        let b = TargetSpec::Minority
            .select(&m, None, &mut ChaCha8Rng::seed_from_u64(42))
            .unwrap();
        assert_eq!(a, b);
    }
}
