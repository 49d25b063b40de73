//! A hashable value for model states and operations.
//!
//! `serde_json::Value` is neither `Eq` nor `Hash`, and models intern their states; this is the
//! small closed set of values registers and key-value stores hold. Anything else (floats,
//! lists, maps) is kept as its canonical JSON text, which compares the way people expect.

use super::HStr;
use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Val {
    /// Jepsen's `nil`: absent, never written.
    Nil,
    Int(i64),
    /// A string, with its hash kept (kv states grow by appends).
    Str(HStr),
    /// Any other JSON value, as compact JSON text.
    Json(Box<str>),
}

impl Val {
    pub fn from_json(v: &Value) -> Val {
        match v {
            Value::Null => Val::Nil,
            Value::String(s) => Val::Str(HStr::new(s)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Val::Int(i),
                None => Val::Json(n.to_string().into()),
            },
            other => Val::Json(other.to_string().into()),
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Val::Nil)
    }
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Nil => f.write_str("nil"),
            Val::Int(i) => write!(f, "{i}"),
            Val::Str(s) => write!(f, "{:?}", s.as_str()),
            Val::Json(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_and_renders() {
        assert_eq!(Val::from_json(&json!(null)), Val::Nil);
        assert_eq!(Val::from_json(&json!(3)), Val::Int(3));
        assert_eq!(Val::from_json(&json!("x")).to_string(), "\"x\"");
        assert_eq!(Val::from_json(&json!([1, 2])).to_string(), "[1,2]");
        assert_eq!(Val::from_json(&json!(1.5)), Val::Json("1.5".into()));
    }
}
