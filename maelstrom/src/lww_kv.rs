//! `lww-kv`: last-write-wins and eventually consistent, as Maelstrom's. [`REPLICAS`]
//! replicas each hold (value, timestamp) per key; a request goes to a seeded replica, a
//! write (or a cas that holds on that replica's copy) gets the next timestamp there and
//! reaches the other replicas after a seeded delay, where the higher timestamp wins. So a
//! read may be stale and a cas may succeed on a stale copy and be overwritten later.
//!
//! Time is an input (the router's clock), so the store stays a pure state machine.

use crate::kv_op::KvOp;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

pub const REPLICAS: usize = 3;
/// The longest a write takes to reach the other replicas.
pub const MAX_PROPAGATION: Duration = Duration::from_millis(100);
/// Propagations in flight are bounded; over it the one due first is applied at once (a
/// burst of writes makes the store more consistent, never unbounded).
const PENDING_MAX: usize = 1 << 16;

/// A write on its way to a replica.
struct Pending {
    replica: usize,
    key: String,
    value: Value,
}

#[derive(Default)]
pub struct LwwKv {
    replicas: [BTreeMap<String, (Value, u64)>; REPLICAS],
    ts: u64,
    /// Propagations by (due time, timestamp, replica): those due are at the front, so a
    /// request applies them without looking at the rest. Applying commutes (the higher
    /// timestamp wins), so their order does not matter for the result.
    pending: BTreeMap<(Duration, u64, usize), Pending>,
}

fn apply(replica: &mut BTreeMap<String, (Value, u64)>, key: String, value: Value, ts: u64) {
    match replica.get(&key) {
        Some((_, t)) if *t >= ts => {}
        _ => {
            replica.insert(key, (value, ts));
        }
    }
}

impl LwwKv {
    /// Applies every propagation due by `now`.
    fn catch_up(&mut self, now: Duration) {
        while self
            .pending
            .first_key_value()
            .is_some_and(|(k, _)| k.0 <= now)
        {
            let first = self.pending.pop_first().expect("just seen");
            self.land(first);
        }
    }

    fn land(&mut self, ((_, ts, _), p): ((Duration, u64, usize), Pending)) {
        apply(&mut self.replicas[p.replica], p.key, p.value, ts);
    }

    /// Serves `op` on `key` at time `now`: the reply body.
    pub fn handle(&mut self, key: String, op: &KvOp, now: Duration, rng: &mut ChaCha8Rng) -> Value {
        self.catch_up(now);
        let r = rng.random_range(0..REPLICAS);
        let (reply, new) = op.decide(self.replicas[r].get(&key).map(|(v, _)| v));
        if let Some(v) = new {
            self.ts += 1;
            apply(&mut self.replicas[r], key.clone(), v.clone(), self.ts);
            for other in (0..REPLICAS).filter(|o| *o != r) {
                if self.pending.len() >= PENDING_MAX
                    && let Some(first) = self.pending.pop_first()
                {
                    self.land(first);
                }
                let delay = rng.random_range(Duration::ZERO..=MAX_PROPAGATION);
                self.pending.insert(
                    (now + delay, self.ts, other),
                    Pending {
                        replica: other,
                        key: key.clone(),
                        value: v.clone(),
                    },
                );
            }
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::json;

    #[test]
    fn propagations_are_bounded_and_every_replica_converges() {
        let mut kv = LwwKv::default();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        // A flood at one instant: each write queues a propagation per other replica.
        for i in 0..PENDING_MAX {
            kv.handle(
                format!("k{}", i % 7),
                &KvOp::Write(json!(i)),
                Duration::ZERO,
                &mut rng,
            );
            assert!(kv.pending.len() <= PENDING_MAX);
        }
        let later = MAX_PROPAGATION + Duration::from_millis(1);
        kv.handle("k0".into(), &KvOp::Read, later, &mut rng);
        assert!(kv.pending.is_empty());
        assert!(kv.replicas.iter().all(|r| *r == kv.replicas[0]));
        // The last write of each key won everywhere.
        let last = PENDING_MAX - 1;
        assert_eq!(kv.replicas[1][&format!("k{}", last % 7)].0, json!(last));
    }
}
