//! Maelstrom's services, as nodes addressed by name, with Maelstrom's semantics:
//! `lin-kv` (linearizable), `seq-kv` (sequentially consistent: stale reads, never going
//! back for one caller; [`crate::seq_kv`]), `lww-kv` (last-write-wins over replicas with
//! delayed propagation: stale reads, lost cas; [`crate::lww_kv`]), each with read, write
//! and cas (`create_if_not_exists`, errors 20 and 22; [`crate::kv_op`]), and `lin-tso` (a
//! timestamp oracle). A pure state machine the router calls in order, with the router's
//! clock and one seeded RNG as inputs: the same seed and the same sequence of requests
//! give the same replies.

use crate::kv_op::KvOp;
use crate::lww_kv::LwwKv;
use crate::message::error_body;
use crate::seq_kv::SeqKv;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

pub const NAMES: [&str; 4] = ["lin-kv", "seq-kv", "lww-kv", "lin-tso"];

pub struct Services {
    lin: BTreeMap<String, Value>,
    seq: SeqKv,
    lww: LwwKv,
    tso: u64,
    rng: ChaCha8Rng,
}

pub fn is_service(id: &str) -> bool {
    NAMES.contains(&id)
}

impl Services {
    pub fn new(seed: u64) -> Services {
        Services {
            lin: BTreeMap::new(),
            seq: SeqKv::default(),
            lww: LwwKv::default(),
            tso: 0,
            // Apart from the network's stream, so service choices do not shift its decisions.
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5e71_1ce5),
        }
    }

    /// The reply body to `body` sent by `caller` to service `name` at time `now`.
    pub fn handle(
        &mut self,
        name: &str,
        caller: &str,
        body: &Map<String, Value>,
        now: Duration,
    ) -> Value {
        let id = body.get("msg_id").and_then(Value::as_u64);
        let kind = body.get("type").and_then(Value::as_str).unwrap_or("");
        let mut reply = match name {
            "lin-tso" if kind == "ts" => {
                self.tso += 1;
                json!({"type": "ts_ok", "ts": self.tso})
            }
            "lin-kv" | "seq-kv" | "lww-kv" => match KvOp::parse(kind, body) {
                Err(e) => e,
                Ok((key, op)) => match name {
                    "lin-kv" => {
                        let (reply, new) = op.decide(self.lin.get(&key));
                        if let Some(v) = new {
                            self.lin.insert(key, v);
                        }
                        reply
                    }
                    "seq-kv" => self.seq.handle(caller, key, &op, &mut self.rng),
                    _ => self.lww.handle(key, &op, now, &mut self.rng),
                },
            },
            _ => error_body(None, 10, &format!("{name} does not support `{kind}`")),
        };
        reply["in_reply_to"] = json!(id);
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lww_kv::MAX_PROPAGATION;

    fn call(s: &mut Services, name: &str, body: Value) -> Value {
        s.handle(name, "n1", body.as_object().unwrap(), Duration::ZERO)
    }

    #[test]
    fn lin_kv_has_maelstroms_codes_and_create_if_not_exists() {
        let mut s = Services::new(1);
        let r = call(
            &mut s,
            "lin-kv",
            json!({"type":"read","key":"a","msg_id":1}),
        );
        assert_eq!(
            (r["code"].clone(), r["in_reply_to"].clone()),
            (json!(20), json!(1))
        );
        let r = call(
            &mut s,
            "lin-kv",
            json!({"type":"cas","key":"a","from":0,"to":1}),
        );
        assert_eq!(r["code"], 20);
        let r = call(
            &mut s,
            "lin-kv",
            json!({"type":"cas","key":"a","from":0,"to":1,"create_if_not_exists":true}),
        );
        assert_eq!(r["type"], "cas_ok");
        let r = call(
            &mut s,
            "lin-kv",
            json!({"type":"cas","key":"a","from":0,"to":2}),
        );
        assert_eq!(r["code"], 22);
        let r = call(&mut s, "lin-kv", json!({"type":"read","key":"a"}));
        assert_eq!(r["value"], 1);
        // Keys compare as JSON: the number 1 and the string "1" are two keys.
        call(
            &mut s,
            "lin-kv",
            json!({"type":"write","key":1,"value":"x"}),
        );
        assert_eq!(
            call(&mut s, "lin-kv", json!({"type":"read","key":"1"}))["code"],
            20
        );
        // Stores are per service.
        assert_eq!(
            call(&mut s, "seq-kv", json!({"type":"read","key":"a"}))["code"],
            20
        );
        assert_eq!(
            call(&mut s, "lin-kv", json!({"type":"bogus","key":"a"}))["code"],
            10
        );
    }

    #[test]
    fn lin_tso_counts_up() {
        let mut s = Services::new(1);
        let a = call(&mut s, "lin-tso", json!({"type":"ts","msg_id":5}));
        let b = call(&mut s, "lin-tso", json!({"type":"ts"}));
        assert!(b["ts"].as_u64() > a["ts"].as_u64());
        assert_eq!(a["in_reply_to"], 5);
    }

    /// n1 writes 1, 2, 3, ... to one key; n2 reads after each write. The values n2 reads
    /// that are not the last written (stale), and whether n2 ever went back.
    fn writer_and_reader(name: &str, seed: u64, advance: Duration) -> (usize, bool) {
        let mut s = Services::new(seed);
        let (mut stale, mut back, mut seen) = (0, false, 0);
        let mut now = Duration::ZERO;
        for i in 1..=200u64 {
            let w = json!({"type": "write", "key": "k", "value": i});
            s.handle(name, "n1", w.as_object().unwrap(), now);
            now += advance;
            let r = s.handle(
                name,
                "n2",
                json!({"type": "read", "key": "k"}).as_object().unwrap(),
                now,
            );
            let v = r["value"].as_u64().unwrap_or(0);
            stale += usize::from(v != i);
            back |= v < seen;
            seen = seen.max(v);
        }
        (stale, back)
    }

    #[test]
    fn lww_and_seq_kv_serve_stale_reads_and_lin_kv_never_does() {
        for seed in [1, 2, 3] {
            assert_eq!(
                writer_and_reader("lin-kv", seed, Duration::ZERO),
                (0, false)
            );
            let (stale, _) = writer_and_reader("lww-kv", seed, Duration::ZERO);
            assert!(stale > 20, "lww-kv seed {seed}: {stale} stale of 200");
            let (stale, back) = writer_and_reader("seq-kv", seed, Duration::ZERO);
            assert!(stale > 20, "seq-kv seed {seed}: {stale} stale of 200");
            assert!(!back, "seq-kv went back for one caller (seed {seed})");
        }
        // lww-kv is eventually consistent: once every write has propagated, reads are fresh.
        let (stale, _) = writer_and_reader("lww-kv", 1, MAX_PROPAGATION);
        assert_eq!(stale, 0);
    }

    #[test]
    fn lww_kv_can_go_back_in_time_for_one_caller_and_lose_a_cas() {
        // Replicas answer at random: a reader can see a newer value then an older one,
        // which seq-kv never shows (the test above); and a cas may hold on a stale copy.
        let back = (1..=3).any(|seed| writer_and_reader("lww-kv", seed, Duration::ZERO).1);
        assert!(back);
        let mut lost = false;
        for seed in 1..=5 {
            let mut s = Services::new(seed);
            let body = |v: Value| v.as_object().unwrap().clone();
            s.handle(
                "lww-kv",
                "n1",
                &body(json!({"type":"write","key":1,"value":0})),
                Duration::ZERO,
            );
            // Once 0 is on every replica, two cas from 0: on a linearizable store at most
            // one holds.
            let later = MAX_PROPAGATION * 2;
            let a = s.handle(
                "lww-kv",
                "n1",
                &body(json!({"type":"cas","key":1,"from":0,"to":1})),
                later,
            );
            let b = s.handle(
                "lww-kv",
                "n2",
                &body(json!({"type":"cas","key":1,"from":0,"to":2})),
                later,
            );
            lost |= a["type"] == "cas_ok" && b["type"] == "cas_ok";
        }
        assert!(lost, "no seed let two cas from one value both succeed");
    }

    #[test]
    fn seq_kv_reads_its_own_writes_and_keeps_one_order_per_caller() {
        let mut s = Services::new(9);
        let body = |v: Value| v.as_object().unwrap().clone();
        for i in 0..300u64 {
            let who = ["n1", "n2", "n3"][(i % 3) as usize];
            s.handle(
                "seq-kv",
                who,
                &body(json!({"type":"write","key":"k","value":i})),
                Duration::ZERO,
            );
            // Right after its own write a caller reads that write or a later one.
            let r = s.handle(
                "seq-kv",
                who,
                &body(json!({"type":"read","key":"k"})),
                Duration::ZERO,
            );
            assert!(
                r["value"].as_u64() >= Some(i),
                "{who} read {r} after writing {i}"
            );
        }
        // A caller that never wrote may start far behind but never before what it saw.
        let mut seen = 0;
        for _ in 0..100 {
            let r = s.handle(
                "seq-kv",
                "n9",
                &body(json!({"type":"read","key":"k"})),
                Duration::ZERO,
            );
            if r["type"] == "read_ok" {
                let v = r["value"].as_u64().unwrap();
                assert!(v >= seen);
                seen = v;
            }
        }
        // cas is decided at the head of the order, with lin-kv's codes.
        let r = s.handle(
            "seq-kv",
            "n9",
            &body(json!({"type":"cas","key":"k","from":0,"to":1})),
            Duration::ZERO,
        );
        assert_eq!(r["code"], 22);
        let r = s.handle(
            "seq-kv",
            "n9",
            &body(json!({"type":"cas","key":"z","from":0,"to":1})),
            Duration::ZERO,
        );
        assert_eq!(r["code"], 20);
        let r = s.handle(
            "lww-kv",
            "n9",
            &body(json!({"type":"cas","key":"z","from":0,"to":1,"create_if_not_exists":true})),
            Duration::ZERO,
        );
        assert_eq!(r["type"], "cas_ok");
    }
}
