//! Partition shapes (after Jepsen's): pure functions from the members, the leader when the
//! shape needs one, and a seeded RNG to a [`Grudge`].

use crate::{Grudge, NemesisError, NodeId};
use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionShape {
    /// One random node hears no one and no one hears it.
    One,
    /// A random minority against the majority.
    Halves,
    /// Every node sees a majority, and no two nodes see the same majority (needs ≥ 4).
    MajoritiesRing,
    /// Two halves joined through one node that sees both (needs ≥ 3).
    Bridge,
    /// A random group of at most a third of the nodes (at least one) cut off.
    MinorityThird,
    /// The current leader (found by the controller) isolated.
    Leader,
    /// One random node stops hearing another; the other still hears it.
    OneWay,
}

impl PartitionShape {
    pub const ALL: [PartitionShape; 7] = [
        PartitionShape::One,
        PartitionShape::Halves,
        PartitionShape::MajoritiesRing,
        PartitionShape::Bridge,
        PartitionShape::MinorityThird,
        PartitionShape::Leader,
        PartitionShape::OneWay,
    ];

    /// Whether the shape cuts anything in a cluster of `n` nodes.
    pub fn applies_to(self, n: usize) -> bool {
        match self {
            PartitionShape::MajoritiesRing => n >= 4,
            PartitionShape::Bridge => n >= 3,
            _ => n >= 2,
        }
    }

    pub fn needs_leader(self) -> bool {
        self == PartitionShape::Leader
    }

    /// The grudge this shape means for `members` now.
    pub fn grudge(
        self,
        members: &[NodeId],
        leader: Option<&str>,
        rng: &mut ChaCha8Rng,
    ) -> Result<Grudge, NemesisError> {
        let n = members.len();
        if !self.applies_to(n) {
            return Err(NemesisError::NotApplicable(format!(
                "partition {self:?} needs more than {n} nodes"
            )));
        }
        let mut shuffled = members.to_vec();
        shuffled.shuffle(rng);
        let isolate = |x: &NodeId| {
            let rest: Vec<NodeId> = members.iter().filter(|m| *m != x).cloned().collect();
            Grudge::complete(members, &[vec![x.clone()], rest])
        };
        Ok(match self {
            PartitionShape::One => isolate(&shuffled[0]),
            PartitionShape::Leader => {
                let l = leader.ok_or(NemesisError::NoLeader)?;
                let l = members
                    .iter()
                    .find(|m| *m == l)
                    .ok_or_else(|| NemesisError::UnknownNode(l.into()))?;
                isolate(l)
            }
            PartitionShape::Halves => {
                let (minority, majority) = shuffled.split_at(n / 2);
                Grudge::complete(members, &[minority.to_vec(), majority.to_vec()])
            }
            PartitionShape::MinorityThird => {
                let k = (n / 3).max(1);
                let (cut, rest) = shuffled.split_at(k);
                Grudge::complete(members, &[cut.to_vec(), rest.to_vec()])
            }
            PartitionShape::Bridge => {
                // shuffled = [A..., bridge, B...]: A and B cannot talk; the bridge hears both.
                let half = (n - 1) / 2;
                let a = &shuffled[..half];
                let b = &shuffled[half + 1..];
                let mut g = Grudge::default();
                for x in a {
                    for y in b {
                        g.cut(x, y);
                        g.cut(y, x);
                    }
                }
                g
            }
            PartitionShape::MajoritiesRing => {
                // On a shuffled ring each node hears the nodes within distance k, k the
                // smallest that makes "itself and its neighbours" a majority.
                let majority = n / 2 + 1;
                let k = majority / 2;
                let mut g = Grudge::default();
                for (i, to) in shuffled.iter().enumerate() {
                    for (j, from) in shuffled.iter().enumerate() {
                        let d = i.abs_diff(j);
                        let ring = d.min(n - d);
                        if ring > k {
                            g.cut(from, to);
                        }
                    }
                }
                g
            }
            PartitionShape::OneWay => {
                let pair: Vec<&NodeId> = members.sample(rng, 2).collect();
                let mut g = Grudge::default();
                g.cut(pair[1], pair[0]);
                g
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn members(n: usize) -> Vec<NodeId> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    /// The nodes `x` still hears, itself included.
    fn hears(g: &Grudge, m: &[NodeId], x: &str) -> Vec<NodeId> {
        m.iter().filter(|y| !g.is_cut(y, x)).cloned().collect()
    }

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    #[test]
    fn one_and_leader_isolate_a_single_node() {
        let m = members(5);
        for seed in 0..20 {
            let g = PartitionShape::One
                .grudge(&m, None, &mut rng(seed))
                .unwrap();
            let alone: Vec<_> = m.iter().filter(|x| hears(&g, &m, x).len() == 1).collect();
            assert_eq!(alone.len(), 1);
            assert!(
                m.iter()
                    .filter(|x| *x != alone[0])
                    .all(|x| hears(&g, &m, x).len() == 4)
            );
        }
        let g = PartitionShape::Leader
            .grudge(&m, Some("n4"), &mut rng(1))
            .unwrap();
        assert_eq!(hears(&g, &m, "n4"), vec!["n4".to_string()]);
        assert!(matches!(
            PartitionShape::Leader.grudge(&m, None, &mut rng(1)),
            Err(NemesisError::NoLeader)
        ));
    }

    #[test]
    fn halves_and_minority_third_split_symmetrically() {
        for n in [3, 5, 7] {
            let m = members(n);
            let g = PartitionShape::Halves
                .grudge(&m, None, &mut rng(3))
                .unwrap();
            let mut sizes: Vec<_> = m.iter().map(|x| hears(&g, &m, x).len()).collect();
            sizes.sort();
            assert_eq!(sizes.iter().filter(|s| **s == n / 2).count(), n / 2);
            assert_eq!(sizes.iter().filter(|s| **s == n - n / 2).count(), n - n / 2);
            for (from, to) in g.links() {
                assert!(g.is_cut(&to, &from), "halves are symmetric");
            }
            let g = PartitionShape::MinorityThird
                .grudge(&m, None, &mut rng(3))
                .unwrap();
            let small = m.iter().filter(|x| hears(&g, &m, x).len() <= n / 3).count();
            assert_eq!(small, (n / 3).max(1));
        }
    }

    #[test]
    fn bridge_node_hears_everyone_and_sides_do_not_meet() {
        let m = members(5);
        let g = PartitionShape::Bridge
            .grudge(&m, None, &mut rng(9))
            .unwrap();
        let bridges: Vec<_> = m.iter().filter(|x| hears(&g, &m, x).len() == 5).collect();
        assert_eq!(bridges.len(), 1);
        for x in &m {
            if x != bridges[0] {
                assert_eq!(
                    hears(&g, &m, x).len(),
                    3,
                    "{x} hears its side and the bridge"
                );
            }
        }
    }

    #[test]
    fn majorities_ring_gives_everyone_a_distinct_majority() {
        let m = members(5);
        let g = PartitionShape::MajoritiesRing
            .grudge(&m, None, &mut rng(4))
            .unwrap();
        let mut views: Vec<Vec<NodeId>> = m.iter().map(|x| hears(&g, &m, x)).collect();
        assert!(views.iter().all(|v| v.len() == 3));
        views.sort();
        views.dedup();
        assert_eq!(views.len(), 5);
        assert!(
            PartitionShape::MajoritiesRing
                .grudge(&members(3), None, &mut rng(4))
                .is_err()
        );
    }

    #[test]
    fn one_way_cuts_a_single_direction() {
        let m = members(3);
        let g = PartitionShape::OneWay
            .grudge(&m, None, &mut rng(5))
            .unwrap();
        let links = g.links();
        assert_eq!(links.len(), 1);
        let (from, to) = &links[0];
        assert!(!g.is_cut(to, from));
    }

    #[test]
    fn same_seed_same_grudge() {
        let m = members(5);
        for s in PartitionShape::ALL {
            if s.needs_leader() {
                continue;
            }
            assert_eq!(
                s.grudge(&m, None, &mut rng(7)).unwrap(),
                s.grudge(&m, None, &mut rng(7)).unwrap()
            );
        }
    }
}
