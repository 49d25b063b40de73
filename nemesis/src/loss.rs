//! Random packet loss: which nodes drop what share of the packets their peers send them.

use crate::{NemesisError, NodeId, TargetSpec};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The smallest and largest loss the schedule draws, in percent.
pub const LOSS_PERCENT: std::ops::RangeInclusive<u8> = 10..=60;

/// Packet loss as the schedule intends it: which nodes, and how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossSpec {
    pub target: TargetSpec,
    /// Share of incoming peer packets dropped, 0..=100.
    pub percent: u8,
}

impl LossSpec {
    /// A seeded draw: any target, a loss within [`LOSS_PERCENT`].
    pub fn random(rng: &mut ChaCha8Rng) -> LossSpec {
        use rand::seq::IndexedRandom;
        LossSpec {
            target: *TargetSpec::ALL.choose(rng).expect("non-empty"),
            percent: rng.random_range(LOSS_PERCENT),
        }
    }

    pub fn resolve(
        self,
        members: &[NodeId],
        leader: Option<&str>,
        rng: &mut ChaCha8Rng,
    ) -> Result<Loss, NemesisError> {
        if self.percent > 100 {
            return Err(NemesisError::Config(format!(
                "packet loss of {}% (at most 100)",
                self.percent
            )));
        }
        Ok(Loss {
            nodes: self.target.select(members, leader, rng)?,
            percent: self.percent,
        })
    }
}

/// Packet loss in force: each of `nodes` drops `percent` % of the packets other nodes send
/// it (client traffic is spared, so that the history shows the protocol's troubles, not
/// the clients').
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loss {
    pub nodes: Vec<NodeId>,
    pub percent: u8,
}

impl Loss {
    /// The history `value`.
    pub fn value(&self) -> Value {
        json!({ "nodes": self.nodes, "percent": self.percent })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn draws_are_seeded_and_within_range() {
        let a = LossSpec::random(&mut ChaCha8Rng::seed_from_u64(5));
        assert_eq!(a, LossSpec::random(&mut ChaCha8Rng::seed_from_u64(5)));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..200 {
            assert!(LOSS_PERCENT.contains(&LossSpec::random(&mut rng).percent));
        }
        let members: Vec<NodeId> = vec!["n1".into(), "n2".into(), "n3".into()];
        let spec = LossSpec {
            target: TargetSpec::All,
            percent: 30,
        };
        let l = spec.resolve(&members, None, &mut rng).unwrap();
        assert_eq!(
            l.value(),
            json!({"nodes": ["n1", "n2", "n3"], "percent": 30})
        );
        let bad = LossSpec {
            percent: 101,
            ..spec
        };
        assert!(bad.resolve(&members, None, &mut rng).is_err());
    }
}
