//! One key-value request as Maelstrom's kv services take it (`read`, `write`, `cas` with
//! `create_if_not_exists`), and its outcome against the value a store shows the caller.
//! The stores differ only in which value that is and how a write lands, so the request
//! parsing, error codes and cas rule live here once.

use crate::message::error_body;
use serde_json::{Map, Value, json};

/// A parsed request; the key is the JSON text of the request's key (keys may be any JSON,
/// and the number 1 and the string "1" are two keys).
#[derive(Debug, Clone, PartialEq)]
pub enum KvOp {
    Read,
    Write(Value),
    Cas {
        from: Value,
        to: Value,
        create: bool,
    },
}

impl KvOp {
    /// The request in `body`, or the error reply (code 12 malformed, 10 unsupported).
    pub fn parse(kind: &str, body: &Map<String, Value>) -> Result<(String, KvOp), Value> {
        let Some(key) = body.get("key") else {
            return Err(error_body(None, 12, "missing `key`"));
        };
        let op = match kind {
            "read" => KvOp::Read,
            "write" => match body.get("value") {
                Some(v) => KvOp::Write(v.clone()),
                None => return Err(error_body(None, 12, "missing `value`")),
            },
            "cas" => {
                let (Some(from), Some(to)) = (body.get("from"), body.get("to")) else {
                    return Err(error_body(None, 12, "cas needs `from` and `to`"));
                };
                KvOp::Cas {
                    from: from.clone(),
                    to: to.clone(),
                    create: body
                        .get("create_if_not_exists")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                }
            }
            other => {
                return Err(error_body(
                    None,
                    10,
                    &format!("kv does not support `{other}`"),
                ));
            }
        };
        Ok((key.to_string(), op))
    }

    /// Whether the op may change the store (a store serves these at its head).
    pub fn writes(&self) -> bool {
        !matches!(self, KvOp::Read)
    }

    /// The reply, and the value to store if the op changes the key, given the value `cur`
    /// the store shows this caller (error 20 key-does-not-exist, 22 precondition-failed).
    pub fn decide(&self, cur: Option<&Value>) -> (Value, Option<Value>) {
        match (self, cur) {
            (KvOp::Read, Some(v)) => (json!({"type": "read_ok", "value": v}), None),
            (KvOp::Read, None) => (error_body(None, 20, "key does not exist"), None),
            (KvOp::Write(v), _) => (json!({"type": "write_ok"}), Some(v.clone())),
            (KvOp::Cas { to, create, .. }, None) if *create => {
                (json!({"type": "cas_ok"}), Some(to.clone()))
            }
            (KvOp::Cas { .. }, None) => (error_body(None, 20, "key does not exist"), None),
            (KvOp::Cas { from, to, .. }, Some(c)) if c == from => {
                (json!({"type": "cas_ok"}), Some(to.clone()))
            }
            (KvOp::Cas { from, .. }, Some(c)) => (
                error_body(None, 22, &format!("current value {c} is not {from}")),
                None,
            ),
        }
    }
}
