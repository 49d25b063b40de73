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
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

pub const REPLICAS: usize = 3;
/// The longest a write takes to reach the other replicas.
pub const MAX_PROPAGATION: Duration = Duration::from_millis(100);
/// Propagations in flight are bounded; over it the oldest is applied at once (a burst of
/// writes makes the store more consistent, never unbounded).
const PENDING_MAX: usize = 1 << 16;

struct Pending {
    due: Duration,
    replica: usize,
    key: String,
    value: Value,
    ts: u64,
}

#[derive(Default)]
pub struct LwwKv {
    replicas: [BTreeMap<String, (Value, u64)>; REPLICAS],
    ts: u64,
    /// Propagations, not sorted by due time (each delay is drawn on its own).
    pending: VecDeque<Pending>,
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
        let mut keep = VecDeque::with_capacity(self.pending.len());
        for p in self.pending.drain(..) {
            if p.due <= now {
                apply(&mut self.replicas[p.replica], p.key, p.value, p.ts);
            } else {
                keep.push_back(p);
            }
        }
        self.pending = keep;
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
                    && let Some(p) = self.pending.pop_front()
                {
                    apply(&mut self.replicas[p.replica], p.key, p.value, p.ts);
                }
                let delay = rng.random_range(Duration::ZERO..=MAX_PROPAGATION);
                self.pending.push_back(Pending {
                    due: now + delay,
                    replica: other,
                    key: key.clone(),
                    value: v.clone(),
                    ts: self.ts,
                });
            }
        }
        reply
    }
}
