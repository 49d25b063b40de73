//! Operations of each workload in Maelstrom's request and reply shapes, and how a reply
//! becomes a history completion. Pure: the run sends, waits and records.

use crate::config::Workload;
use crate::message::RpcError;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use sunder_checker::EventType;

/// One operation as the history records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub f: &'static str,
    pub key: Option<String>,
    pub value: Value,
}

/// Draws operations; `next` numbers broadcast values, set elements, kafka messages and
/// echo strings so each is unique. A kafka client also keeps, per key, the offset it polls
/// from next (one past the last it was given), which its commits report.
pub struct OpGen {
    workload: Workload,
    key_count: usize,
    next: u64,
    stride: u64,
    positions: BTreeMap<String, u64>,
}

impl OpGen {
    /// Client `offset` of `stride` clients: values `offset + k * stride` never collide
    /// with another client's.
    pub fn new(workload: Workload, key_count: usize, offset: u64, stride: u64) -> OpGen {
        OpGen {
            workload,
            key_count,
            next: offset,
            stride: stride.max(1),
            positions: BTreeMap::new(),
        }
    }

    /// Learns from a completed operation: a kafka poll moves the client's positions.
    pub fn observe(&mut self, op: &Op, c: &Completion) {
        if self.workload == Workload::Kafka && op.f == "poll" && c.kind == EventType::Ok {
            // Only the keys this generator uses: a node's answer names any keys it likes,
            // and the positions must not grow with them.
            let key_count = self.key_count;
            let ours = |k: &str| k.parse::<usize>().is_ok_and(|i| i < key_count);
            for (k, pairs) in c.value.as_object().into_iter().flatten() {
                if !ours(k) {
                    continue;
                }
                let last = pairs
                    .as_array()
                    .and_then(|a| a.last())
                    .and_then(|p| p[0].as_u64());
                if let Some(o) = last {
                    let pos = self.positions.entry(k.clone()).or_default();
                    *pos = (*pos).max(o.saturating_add(1));
                }
            }
        }
    }

    fn kafka(&mut self, n: u64, rng: &mut ChaCha8Rng) -> Op {
        let key = |rng: &mut ChaCha8Rng| rng.random_range(0..self.key_count).to_string();
        let all: Vec<String> = (0..self.key_count).map(|k| k.to_string()).collect();
        let roll = rng.random_range(0..10u32);
        let committable: Map<String, Value> = self
            .positions
            .iter()
            .filter(|(_, p)| **p > 0)
            .map(|(k, p)| (k.clone(), json!(p - 1)))
            .collect();
        match roll {
            0..5 => Op {
                f: "send",
                key: Some(key(rng)),
                value: json!(n),
            },
            5 if !committable.is_empty() => Op {
                f: "commit_offsets",
                key: None,
                value: Value::Object(committable),
            },
            6 => Op {
                f: "list_committed_offsets",
                key: None,
                value: json!(all),
            },
            _ => {
                // Poll a few keys from where this client is.
                let mut offsets = Map::new();
                for k in all {
                    if offsets.is_empty() || rng.random_bool(0.5) {
                        let at = self.positions.get(&k).copied().unwrap_or(0);
                        offsets.insert(k, json!(at));
                    }
                }
                Op {
                    f: "poll",
                    key: None,
                    value: Value::Object(offsets),
                }
            }
        }
    }

    pub fn next(&mut self, rng: &mut ChaCha8Rng) -> Op {
        let n = self.next;
        self.next += self.stride;
        let op = |f, value| Op {
            f,
            key: None,
            value,
        };
        match self.workload {
            Workload::Echo => op("echo", json!(format!("please echo {n}"))),
            Workload::UniqueIds => op("generate", Value::Null),
            Workload::Broadcast if rng.random_bool(0.8) => op("broadcast", json!(n)),
            Workload::Broadcast => op("read", Value::Null),
            Workload::GCounter if rng.random_bool(0.8) => {
                op("add", json!(rng.random_range(0..5u64)))
            }
            Workload::GSet if rng.random_bool(0.8) => op("add", json!(n)),
            Workload::PnCounter if rng.random_bool(0.8) => {
                op("add", json!(rng.random_range(-5..=5i64)))
            }
            Workload::GCounter | Workload::GSet | Workload::PnCounter => op("read", Value::Null),
            Workload::Kafka => self.kafka(n, rng),
            Workload::LinKv => {
                let key = Some(rng.random_range(0..self.key_count).to_string());
                let (f, value) = match rng.random_range(0..3u32) {
                    0 => ("read", Value::Null),
                    1 => ("write", json!(rng.random_range(0..5u64))),
                    _ => (
                        "cas",
                        json!([rng.random_range(0..5u64), rng.random_range(0..5u64)]),
                    ),
                };
                Op { f, key, value }
            }
        }
    }
}

/// The final read of a workload that has them, recorded as `f = "final-read"`.
pub fn final_read() -> Op {
    Op {
        f: "final-read",
        key: None,
        value: Value::Null,
    }
}

/// One poll of kafka's final phase, from the given offsets, recorded as `final-poll`.
pub fn final_poll(offsets: &BTreeMap<String, u64>) -> Op {
    Op {
        f: "final-poll",
        key: None,
        value: json!(offsets),
    }
}

fn key_json(key: &Option<String>) -> Value {
    // Keys are recorded as strings; Maelstrom's lin-kv keys are integers.
    key.as_deref()
        .and_then(|k| k.parse::<u64>().ok())
        .map_or(Value::Null, |k| json!(k))
}

/// The request body for `op` (without `msg_id`).
pub fn request(workload: Workload, op: &Op) -> Value {
    match (workload, op.f) {
        (Workload::Echo, _) => json!({"type": "echo", "echo": op.value}),
        (Workload::UniqueIds, _) => json!({"type": "generate"}),
        (Workload::Broadcast, "broadcast") => json!({"type": "broadcast", "message": op.value}),
        (Workload::GCounter | Workload::PnCounter, "add") => {
            json!({"type": "add", "delta": op.value})
        }
        (Workload::GSet, "add") => json!({"type": "add", "element": op.value}),
        (Workload::Broadcast | Workload::GCounter | Workload::GSet | Workload::PnCounter, _) => {
            json!({"type": "read"})
        }
        (Workload::Kafka, "send") => json!({"type": "send", "key": op.key, "msg": op.value}),
        (Workload::Kafka, "poll" | "final-poll") => json!({"type": "poll", "offsets": op.value}),
        (Workload::Kafka, "commit_offsets") => {
            json!({"type": "commit_offsets", "offsets": op.value})
        }
        (Workload::Kafka, _) => json!({"type": "list_committed_offsets", "keys": op.value}),
        (Workload::LinKv, "read") => json!({"type": "read", "key": key_json(&op.key)}),
        (Workload::LinKv, "write") => {
            json!({"type": "write", "key": key_json(&op.key), "value": op.value})
        }
        (Workload::LinKv, _) => json!({
            "type": "cas", "key": key_json(&op.key), "from": op.value[0], "to": op.value[1]
        }),
    }
}

/// How an operation ended: the completion's type, value and error.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub kind: EventType,
    pub value: Value,
    pub error: Option<String>,
}

/// Operations that change nothing: any error on one, or no reply, is `fail`.
pub fn is_read(op: &Op) -> bool {
    matches!(
        op.f,
        "read" | "final-read" | "poll" | "final-poll" | "list_committed_offsets"
    )
}

/// A poll reply's `msgs`: an object of keys to arrays of `[offset, msg]` pairs with integer
/// offsets. The checker judges their order; here only the shape.
fn poll_shape(v: &Value) -> Result<(), String> {
    let Some(keys) = v.as_object() else {
        return Err("poll_ok's `msgs` is not an object".into());
    };
    for (k, pairs) in keys {
        let ok = pairs.as_array().is_some_and(|a| {
            a.iter()
                .all(|p| p.as_array().is_some_and(|p| p.len() == 2 && p[0].is_u64()))
        });
        if !ok {
            return Err(format!(
                "poll_ok's `msgs` for key {k:?} is not a list of [offset, msg] pairs"
            ));
        }
    }
    Ok(())
}

/// An object of keys to non-negative integer offsets.
fn offsets_shape(v: &Value) -> bool {
    v.as_object().is_some_and(|m| m.values().all(Value::is_u64))
}

/// A reply to `op`. An error is `fail` when definite or when the op is a read (a read
/// changes nothing), else `info`; a reply of the wrong type or shape is `info` with why.
pub fn complete(workload: Workload, op: &Op, body: &Map<String, Value>) -> Completion {
    let ok = |value| Completion {
        kind: EventType::Ok,
        value,
        error: None,
    };
    let odd = |why: String| Completion {
        kind: EventType::Info,
        value: op.value.clone(),
        error: Some(why),
    };
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("");
    if kind == "error" {
        let e = RpcError {
            code: body.get("code").and_then(Value::as_i64).unwrap_or(-1),
            text: body
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
        };
        let definite = e.definite() || is_read(op);
        return Completion {
            kind: if definite {
                EventType::Fail
            } else {
                EventType::Info
            },
            value: op.value.clone(),
            error: Some(e.describe()),
        };
    }
    let want = match (workload, op.f) {
        (Workload::Echo, _) => "echo_ok",
        (Workload::UniqueIds, _) => "generate_ok",
        (_, "send") => "send_ok",
        (_, "poll" | "final-poll") => "poll_ok",
        (_, "commit_offsets") => "commit_offsets_ok",
        (_, "list_committed_offsets") => "list_committed_offsets_ok",
        (_, "broadcast") => "broadcast_ok",
        (_, "add") => "add_ok",
        (_, "read" | "final-read") => "read_ok",
        (_, "write") => "write_ok",
        (_, _) => "cas_ok",
    };
    if kind != want {
        return odd(format!("expected a {want} reply, got `{kind}`"));
    }
    let field = |name: &str| body.get(name).cloned();
    match (workload, op.f) {
        (Workload::Echo, _) => match field("echo") {
            Some(v) => ok(v),
            None => odd("echo_ok without `echo`".into()),
        },
        (Workload::UniqueIds, _) => match field("id") {
            Some(v) if !v.is_null() => ok(v),
            _ => odd("generate_ok without `id`".into()),
        },
        (Workload::Broadcast, "read" | "final-read") => match field("messages") {
            Some(v @ Value::Array(_)) => ok(v),
            _ => odd("read_ok without a `messages` array".into()),
        },
        (Workload::GSet, "read" | "final-read") => match field("value") {
            Some(v @ Value::Array(_)) => ok(v),
            _ => odd("read_ok without a `value` array".into()),
        },
        (Workload::GCounter | Workload::PnCounter, "read" | "final-read") => match field("value") {
            Some(v) if v.is_i64() || v.is_u64() => ok(v),
            _ => odd("read_ok without an integer `value`".into()),
        },
        (Workload::LinKv, "read") => ok(field("value").unwrap_or(Value::Null)),
        (Workload::Kafka, "send") => match field("offset") {
            Some(o) if o.is_u64() => ok(json!([o, op.value])),
            _ => odd("send_ok without a non-negative integer `offset`".into()),
        },
        (Workload::Kafka, "poll" | "final-poll") => {
            let msgs = field("msgs").unwrap_or(Value::Null);
            match poll_shape(&msgs) {
                Ok(()) => ok(msgs),
                Err(why) => odd(why),
            }
        }
        (Workload::Kafka, "list_committed_offsets") => match field("offsets") {
            Some(v) if offsets_shape(&v) => ok(v),
            _ => odd("list_committed_offsets_ok without an object of integer `offsets`".into()),
        },
        _ => ok(op.value.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn errors_follow_the_definite_rule_and_reads_always_fail() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut g = OpGen::new(Workload::LinKv, 3, 0, 1);
        let ops: Vec<Op> = (0..50).map(|_| g.next(&mut rng)).collect();
        let read = ops.iter().find(|o| o.f == "read").unwrap();
        let cas = ops.iter().find(|o| o.f == "cas").unwrap();
        let crash = body(json!({"type": "error", "code": 13, "text": "boom"}));
        let absent = body(json!({"type": "error", "code": 20, "text": "no"}));
        assert_eq!(complete(Workload::LinKv, cas, &crash).kind, EventType::Info);
        assert_eq!(
            complete(Workload::LinKv, cas, &absent).kind,
            EventType::Fail
        );
        assert_eq!(
            complete(Workload::LinKv, read, &crash).kind,
            EventType::Fail
        );
        let c = complete(
            Workload::LinKv,
            read,
            &body(json!({"type": "read_ok", "value": 4})),
        );
        assert_eq!((c.kind, c.value), (EventType::Ok, json!(4)));
        // A reply of the wrong type proves nothing: info, with why.
        let c = complete(Workload::LinKv, cas, &body(json!({"type": "write_ok"})));
        assert_eq!(c.kind, EventType::Info);
        assert!(c.error.unwrap().contains("cas_ok"));
        let r = request(Workload::LinKv, cas);
        assert_eq!(r["type"], "cas");
        assert!(r["key"].is_u64() && r["from"] == cas.value[0]);
    }

    #[test]
    fn shapes_of_the_other_workloads() {
        let op = Op {
            f: "broadcast",
            key: None,
            value: json!(7),
        };
        assert_eq!(
            request(Workload::Broadcast, &op),
            json!({"type": "broadcast", "message": 7})
        );
        let fr = final_read();
        let c = complete(
            Workload::Broadcast,
            &fr,
            &body(json!({"type": "read_ok", "messages": [1, 7]})),
        );
        assert_eq!(c.value, json!([1, 7]));
        let c = complete(
            Workload::GCounter,
            &fr,
            &body(json!({"type": "read_ok", "value": "x"})),
        );
        assert_eq!(c.kind, EventType::Info);
        let c = complete(
            Workload::UniqueIds,
            &Op {
                f: "generate",
                key: None,
                value: Value::Null,
            },
            &body(json!({"type": "generate_ok", "id": "n1-4"})),
        );
        assert_eq!(c.value, json!("n1-4"));
    }

    #[test]
    fn kafka_requests_have_maelstroms_shapes_and_polls_move_the_client() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut g = OpGen::new(Workload::Kafka, 2, 0, 1);
        let ops: Vec<Op> = (0..60).map(|_| g.next(&mut rng)).collect();
        let send = ops.iter().find(|o| o.f == "send").unwrap();
        let r = request(Workload::Kafka, send);
        assert_eq!(
            (r["type"].clone(), r["msg"].clone()),
            (json!("send"), send.value.clone())
        );
        assert!(r["key"].is_string());
        // No commit before the client has polled anything.
        assert!(!ops.iter().any(|o| o.f == "commit_offsets"));
        let poll = ops.iter().find(|o| o.f == "poll").unwrap().clone();
        assert_eq!(request(Workload::Kafka, &poll)["offsets"], poll.value);
        let c = complete(
            Workload::Kafka,
            &poll,
            &body(json!({"type": "poll_ok", "msgs": {"0": [[0, 5], [3, 6]]}})),
        );
        assert_eq!(c.kind, EventType::Ok);
        g.observe(&poll, &c);
        let later: Vec<Op> = (0..60).map(|_| g.next(&mut rng)).collect();
        let commit = later.iter().find(|o| o.f == "commit_offsets").unwrap();
        assert_eq!(commit.value, json!({"0": 3}));
        assert!(
            later
                .iter()
                .filter(|o| o.f == "poll")
                .all(|o| o.value.get("0").is_none_or(|v| v == 4))
        );
        // Keys the client never asked for move nothing (a node names what it likes), and
        // the largest offset does not overflow.
        let wild = complete(
            Workload::Kafka,
            &poll,
            &body(
                json!({"type": "poll_ok", "msgs": {"7": [[1, 1]], "x": [[1, 1]], "1": [[u64::MAX, 2]]}}),
            ),
        );
        assert_eq!(wild.kind, EventType::Ok);
        g.observe(&poll, &wild);
        assert_eq!(
            g.positions.keys().collect::<Vec<_>>(),
            ["0", "1"],
            "positions only for the generator's keys"
        );
        assert_eq!(g.positions["1"], u64::MAX);
        // A reply of the wrong shape is info with why; an error on a poll is a fail.
        let bad = complete(
            Workload::Kafka,
            &poll,
            &body(json!({"type": "poll_ok", "msgs": {"0": [[-1, 5]]}})),
        );
        assert_eq!(bad.kind, EventType::Info);
        assert!(bad.error.unwrap().contains("[offset, msg]"));
        let err = complete(
            Workload::Kafka,
            &poll,
            &body(json!({"type": "error", "code": 13})),
        );
        assert_eq!(err.kind, EventType::Fail);
        let c = complete(
            Workload::Kafka,
            send,
            &body(json!({"type": "send_ok", "offset": 4})),
        );
        assert_eq!(c.value, json!([4, send.value]));
    }

    #[test]
    fn g_set_and_pn_counter_shapes() {
        let add = Op {
            f: "add",
            key: None,
            value: json!(-3),
        };
        assert_eq!(
            request(Workload::PnCounter, &add),
            json!({"type": "add", "delta": -3})
        );
        assert_eq!(
            request(Workload::GSet, &add),
            json!({"type": "add", "element": -3})
        );
        let fr = final_read();
        let c = complete(
            Workload::GSet,
            &fr,
            &body(json!({"type": "read_ok", "value": [1, 2]})),
        );
        assert_eq!(c.value, json!([1, 2]));
        let c = complete(
            Workload::GSet,
            &fr,
            &body(json!({"type": "read_ok", "elements": [1]})),
        );
        assert_eq!(c.kind, EventType::Info);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut g = OpGen::new(Workload::PnCounter, 1, 0, 1);
        assert!((0..200).any(|_| g.next(&mut rng).value.as_i64() < Some(0)));
    }
}
