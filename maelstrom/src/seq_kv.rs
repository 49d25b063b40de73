//! `seq-kv`: sequentially consistent, as Maelstrom's. Every write and cas is applied at the
//! head of one total order (a version number); each caller has a view, a version it has
//! seen, and a read is served at a seeded version between that view and the head, which
//! then becomes the caller's view. So each caller sees a monotonic prefix of the one order
//! (its own writes included: a write moves its view to the head) but may read stale
//! values, which a node that treats seq-kv as linearizable gets wrong.
//!
//! Old versions are kept for a bounded window ([`WINDOW`] versions behind the head, pruned
//! per key as it is written); a view that falls behind the window is moved up to its
//! start, which is still a prefix.

use crate::kv_op::KvOp;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::collections::BTreeMap;

/// How many versions behind the head a read may be served from.
pub const WINDOW: u64 = 256;
/// The chance a read is served at the head rather than at a stale version.
const FRESH: f64 = 0.5;

#[derive(Default)]
pub struct SeqKv {
    /// Per key, its changes as (version, value), oldest first; the first entry may be older
    /// than the window (it is the key's value at the window's start).
    keys: BTreeMap<String, Vec<(u64, Value)>>,
    head: u64,
    views: BTreeMap<String, u64>,
}

impl SeqKv {
    fn value_at(&self, key: &str, version: u64) -> Option<&Value> {
        let changes = self.keys.get(key)?;
        let i = changes.partition_point(|(v, _)| *v <= version);
        i.checked_sub(1).map(|i| &changes[i].1)
    }

    /// Serves `op` on `key` for `caller`: the reply body.
    pub fn handle(&mut self, caller: &str, key: String, op: &KvOp, rng: &mut ChaCha8Rng) -> Value {
        let floor = self.head.saturating_sub(WINDOW);
        let view = self.views.get(caller).copied().unwrap_or(0).max(floor);
        if !op.writes() {
            let at = if rng.random_bool(FRESH) || view == self.head {
                self.head
            } else {
                rng.random_range(view..=self.head)
            };
            self.views.insert(caller.to_string(), at);
            return op.decide(self.value_at(&key, at)).0;
        }
        let (reply, new) = op.decide(self.value_at(&key, self.head));
        if let Some(v) = new {
            self.head += 1;
            let floor = self.head.saturating_sub(WINDOW);
            let changes = self.keys.entry(key).or_default();
            changes.push((self.head, v));
            prune(changes, floor);
        }
        // The caller has now seen the head: its later reads come after its own writes.
        self.views.insert(caller.to_string(), self.head);
        reply
    }
}

/// Drops the changes of one key that no view can reach: all but the last at or below the
/// window's start `floor`. Done for the key written, so a write costs no more with more
/// keys; a key not written since keeps at most [`WINDOW`] + 1 changes.
fn prune(changes: &mut Vec<(u64, Value)>, floor: u64) {
    let below = changes.partition_point(|(v, _)| *v <= floor);
    if below > 1 {
        changes.drain(..below - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::json;

    #[test]
    fn each_key_keeps_at_most_a_window_of_changes() {
        let mut kv = SeqKv::default();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        kv.handle("n1", "quiet".into(), &KvOp::Write(json!(0)), &mut rng);
        for i in 0..5 * WINDOW {
            kv.handle("n1", "busy".into(), &KvOp::Write(json!(i)), &mut rng);
            kv.handle("n2", "other".into(), &KvOp::Write(json!(i)), &mut rng);
        }
        for (key, changes) in &kv.keys {
            assert!(
                changes.len() as u64 <= WINDOW + 1,
                "{key}: {}",
                changes.len()
            );
        }
        // A key not written since the window moved on still reads its value.
        let r = kv.handle("n3", "quiet".into(), &KvOp::Read, &mut rng);
        assert_eq!(r["value"], json!(0));
    }
}
