//! Operations of each workload in Maelstrom's request and reply shapes, and how a reply
//! becomes a history completion. Pure: the run sends, waits and records.

use crate::config::Workload;
use crate::message::RpcError;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use sunder_checker::EventType;

/// One operation as the history records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub f: &'static str,
    pub key: Option<String>,
    pub value: Value,
}

/// Draws operations; `next` numbers broadcast values and echo strings so each is unique.
pub struct OpGen {
    workload: Workload,
    key_count: usize,
    next: u64,
    stride: u64,
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
            Workload::GCounter => op("read", Value::Null),
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
        (Workload::GCounter, "add") => json!({"type": "add", "delta": op.value}),
        (Workload::Broadcast | Workload::GCounter, _) => json!({"type": "read"}),
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

fn is_read(op: &Op) -> bool {
    matches!(op.f, "read" | "final-read")
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
        (Workload::GCounter, "read" | "final-read") => match field("value") {
            Some(v) if v.is_i64() || v.is_u64() => ok(v),
            _ => odd("read_ok without an integer `value`".into()),
        },
        (Workload::LinKv, "read") => ok(field("value").unwrap_or(Value::Null)),
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
}
