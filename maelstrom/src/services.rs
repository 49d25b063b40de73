//! Maelstrom's services, as nodes addressed by name: `lin-kv` and `seq-kv` (key-value
//! stores with read, write and cas, cas with `create_if_not_exists`) and `lin-tso` (a
//! timestamp oracle). Each is a pure state machine the router calls in order, so every
//! operation is atomic at the moment the router handles it: linearizable.
//!
//! `seq-kv` is served linearizably too, which sequential consistency allows; Maelstrom's
//! seq-kv may also return stale reads, so a node that is wrong only when reads are stale
//! is not caught here. `lww-kv` is not done yet.

use crate::message::error_body;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub const NAMES: [&str; 3] = ["lin-kv", "seq-kv", "lin-tso"];

#[derive(Default)]
pub struct Services {
    /// One store per kv service; keys are the JSON text of the key (keys may be any JSON).
    kv: BTreeMap<&'static str, BTreeMap<String, Value>>,
    tso: u64,
}

pub fn is_service(id: &str) -> bool {
    NAMES.contains(&id)
}

impl Services {
    /// The reply body to `body` sent to service `name`.
    pub fn handle(&mut self, name: &str, body: &Map<String, Value>) -> Value {
        let id = body.get("msg_id").and_then(Value::as_u64);
        let kind = body.get("type").and_then(Value::as_str).unwrap_or("");
        let mut reply = match name {
            "lin-tso" if kind == "ts" => {
                self.tso += 1;
                json!({"type": "ts_ok", "ts": self.tso})
            }
            "lin-kv" | "seq-kv" => {
                let store = self
                    .kv
                    .entry(if name == "lin-kv" { "lin-kv" } else { "seq-kv" })
                    .or_default();
                kv(store, kind, body)
            }
            _ => error_body(None, 10, &format!("{name} does not support `{kind}`")),
        };
        reply["in_reply_to"] = json!(id);
        reply
    }
}

fn kv(store: &mut BTreeMap<String, Value>, kind: &str, body: &Map<String, Value>) -> Value {
    let Some(key) = body.get("key") else {
        return error_body(None, 12, "missing `key`");
    };
    let key = key.to_string();
    match kind {
        "read" => match store.get(&key) {
            Some(v) => json!({"type": "read_ok", "value": v}),
            None => error_body(None, 20, "key does not exist"),
        },
        "write" => match body.get("value") {
            Some(v) => {
                store.insert(key, v.clone());
                json!({"type": "write_ok"})
            }
            None => error_body(None, 12, "missing `value`"),
        },
        "cas" => {
            let (Some(from), Some(to)) = (body.get("from"), body.get("to")) else {
                return error_body(None, 12, "cas needs `from` and `to`");
            };
            let create = body
                .get("create_if_not_exists")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            match store.get(&key) {
                None if create => {
                    store.insert(key, to.clone());
                    json!({"type": "cas_ok"})
                }
                None => error_body(None, 20, "key does not exist"),
                Some(cur) if cur == from => {
                    store.insert(key, to.clone());
                    json!({"type": "cas_ok"})
                }
                Some(cur) => error_body(None, 22, &format!("current value {cur} is not {from}")),
            }
        }
        other => error_body(None, 10, &format!("kv does not support `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(s: &mut Services, name: &str, body: Value) -> Value {
        s.handle(name, body.as_object().unwrap())
    }

    #[test]
    fn lin_kv_has_maelstroms_codes_and_create_if_not_exists() {
        let mut s = Services::default();
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
        let mut s = Services::default();
        let a = call(&mut s, "lin-tso", json!({"type":"ts","msg_id":5}));
        let b = call(&mut s, "lin-tso", json!({"type":"ts"}));
        assert!(b["ts"].as_u64() > a["ts"].as_u64());
        assert_eq!(a["in_reply_to"], 5);
    }
}
