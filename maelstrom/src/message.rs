//! Maelstrom's wire format: one JSON object per line, `{"src", "dest", "body"}`, the body a
//! JSON object with a `type` and, for requests and replies, `msg_id` and `in_reply_to`.
//!
//! Everything a node prints is untrusted: [`Message::parse`] bounds the line, checks the
//! envelope's shape and says what is wrong in words a node's author can act on.

use serde_json::{Map, Value, json};

/// The longest line a node may print. Maelstrom's own messages are small; a megabyte
/// leaves room for a broadcast read of every value a run can produce, and bounds what one
/// misbehaving node can make the router hold.
pub const MAX_LINE: usize = 1 << 20;

/// One message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub src: String,
    pub dest: String,
    /// Always a JSON object with a string `type`.
    pub body: Map<String, Value>,
}

/// Why a line is not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the line is longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a message: {0}")]
    Shape(&'static str),
}

impl Message {
    pub fn new(src: &str, dest: &str, body: Value) -> Message {
        let body = match body {
            Value::Object(m) => m,
            other => panic!("a body is an object, not {other}"),
        };
        Message {
            src: src.to_string(),
            dest: dest.to_string(),
            body,
        }
    }

    /// Parses one line (without its newline).
    pub fn parse(line: &[u8]) -> Result<Message, ParseError> {
        if line.len() > MAX_LINE {
            return Err(ParseError::TooLong);
        }
        let v: Value =
            serde_json::from_slice(line).map_err(|e| ParseError::NotJson(e.to_string()))?;
        let Value::Object(mut m) = v else {
            return Err(ParseError::Shape("expected a JSON object"));
        };
        let src = match m.remove("src") {
            Some(Value::String(s)) => s,
            _ => return Err(ParseError::Shape("`src` must be a string")),
        };
        let dest = match m.remove("dest") {
            Some(Value::String(s)) => s,
            _ => return Err(ParseError::Shape("`dest` must be a string")),
        };
        let body = match m.remove("body") {
            Some(Value::Object(b)) => b,
            _ => return Err(ParseError::Shape("`body` must be a JSON object")),
        };
        if !matches!(body.get("type"), Some(Value::String(_))) {
            return Err(ParseError::Shape("`body.type` must be a string"));
        }
        for id in ["msg_id", "in_reply_to"] {
            if body.get(id).is_some_and(|v| !v.is_u64()) {
                return Err(ParseError::Shape(
                    "`msg_id` and `in_reply_to` must be non-negative integers",
                ));
            }
        }
        Ok(Message { src, dest, body })
    }

    /// The line to write to a node's stdin (with its newline).
    pub fn to_line(&self) -> String {
        let mut s = json!({"src": self.src, "dest": self.dest, "body": self.body}).to_string();
        s.push('\n');
        s
    }

    pub fn kind(&self) -> &str {
        self.body.get("type").and_then(Value::as_str).unwrap_or("")
    }

    pub fn msg_id(&self) -> Option<u64> {
        self.body.get("msg_id").and_then(Value::as_u64)
    }

    pub fn in_reply_to(&self) -> Option<u64> {
        self.body.get("in_reply_to").and_then(Value::as_u64)
    }

    /// Parses an `error` body, if this is one.
    pub fn error(&self) -> Option<RpcError> {
        (self.kind() == "error").then(|| RpcError {
            code: self.body.get("code").and_then(Value::as_i64).unwrap_or(-1),
            text: self
                .body
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        })
    }
}

/// An `error` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    pub code: i64,
    pub text: String,
}

impl RpcError {
    /// Maelstrom's registry: a definite error means the operation certainly did not happen.
    /// Timeout (0) and crash (13) are indefinite, and so is every code Maelstrom does not
    /// define (a node's own codes say nothing about whether the operation happened).
    pub fn definite(&self) -> bool {
        matches!(self.code, 1 | 10 | 11 | 12 | 14 | 20 | 21 | 22 | 30)
    }

    /// Maelstrom's name for the code, for histories people read.
    pub fn name(&self) -> &'static str {
        match self.code {
            0 => "timeout",
            1 => "node-not-found",
            10 => "not-supported",
            11 => "temporarily-unavailable",
            12 => "malformed-request",
            13 => "crash",
            14 => "abort",
            20 => "key-does-not-exist",
            21 => "key-already-exists",
            22 => "precondition-failed",
            30 => "txn-conflict",
            _ => "unknown-code",
        }
    }

    /// The history's `error` field: code, name and the node's text.
    pub fn describe(&self) -> String {
        format!("error {} {}: {}", self.code, self.name(), self.text)
    }
}

/// An `error` body replying to `in_reply_to`.
pub fn error_body(in_reply_to: Option<u64>, code: i64, text: &str) -> Value {
    json!({"type": "error", "in_reply_to": in_reply_to, "code": code, "text": text})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_and_ids_are_read() {
        let m = Message::parse(
            br#"{"src":"n1","dest":"c1","body":{"type":"echo_ok","msg_id":3,"in_reply_to":7}}"#,
        )
        .unwrap();
        assert_eq!((m.src.as_str(), m.dest.as_str()), ("n1", "c1"));
        assert_eq!(
            (m.kind(), m.msg_id(), m.in_reply_to()),
            ("echo_ok", Some(3), Some(7))
        );
        let again = Message::parse(m.to_line().trim_end().as_bytes()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let cases: [(&[u8], &str); 6] = [
            (b"hello", "not JSON"),
            (b"[1,2]", "expected a JSON object"),
            (br#"{"dest":"c1","body":{"type":"x"}}"#, "`src`"),
            (br#"{"src":"n1","dest":"c1","body":3}"#, "`body`"),
            (br#"{"src":"n1","dest":"c1","body":{}}"#, "`body.type`"),
            (
                br#"{"src":"n1","dest":"c1","body":{"type":"x","msg_id":-1}}"#,
                "msg_id",
            ),
        ];
        for (line, want) in cases {
            let e = Message::parse(line).unwrap_err().to_string();
            assert!(e.contains(want), "{e} should mention {want}");
        }
        let long = vec![b' '; MAX_LINE + 1];
        assert_eq!(Message::parse(&long), Err(ParseError::TooLong));
    }

    #[test]
    fn definite_codes_follow_maelstroms_registry() {
        let e = |code| RpcError {
            code,
            text: String::new(),
        };
        for c in [1, 10, 11, 12, 14, 20, 21, 22, 30] {
            assert!(e(c).definite(), "{c}");
        }
        for c in [0, 13, 1000, -1] {
            assert!(!e(c).definite(), "{c}");
        }
        let m = Message::new("n1", "c1", error_body(Some(4), 22, "expected 1"));
        assert_eq!(
            m.error(),
            Some(e(22)).map(|mut x| {
                x.text = "expected 1".into();
                x
            })
        );
        assert!(
            m.error()
                .unwrap()
                .describe()
                .contains("precondition-failed")
        );
    }
}
