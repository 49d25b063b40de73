//! Reading an HTTP answer as the spec says: which rules it matches (ok, fail, info,
//! absent) and where the value is. Pure: status and body in, a class or a value out.
//!
//! ```text
//!  (status, body) ─► fail rules? ─► info rules? ─► absent rules? ─► ok rules? ─► none: info
//!                     (first class that matches wins, in this order)
//! ```
//!
//! The order puts the classes that claim least first: a `fail` rule is written narrowly
//! (a 503 saying "not leader") and must win over a broad `ok` or `info` (any 2xx, any
//! 5xx); `info` wins over `ok` so a 200 carrying "timeout" is never taken as done. An
//! answer no rule matches is `info`: sunder never guesses that something happened, nor
//! that it did not.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use regex::Regex;
use serde_json::Value;

/// A set of status codes: one code, a class (`"5xx"`) or a range (`"500-504"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusSet {
    lo: u16,
    hi: u16,
}

impl StatusSet {
    pub fn one(code: u16) -> StatusSet {
        StatusSet { lo: code, hi: code }
    }

    /// `"5xx"` or `"500-504"`; codes between 100 and 599.
    pub fn parse(text: &str) -> Result<StatusSet, String> {
        let t = text.trim().to_ascii_lowercase();
        let bad = || {
            format!(
                "bad status {text:?}: write a code (404), a class (\"5xx\") or a range (\"500-504\")"
            )
        };
        let set = if let Some(d) = t.strip_suffix("xx") {
            let d: u16 = d.parse().map_err(|_| bad())?;
            StatusSet {
                lo: d * 100,
                hi: d * 100 + 99,
            }
        } else if let Some((a, b)) = t.split_once('-') {
            StatusSet {
                lo: a.trim().parse().map_err(|_| bad())?,
                hi: b.trim().parse().map_err(|_| bad())?,
            }
        } else {
            StatusSet::one(t.parse().map_err(|_| bad())?)
        };
        set.check().map_err(|_| bad())
    }

    pub fn check(self) -> Result<StatusSet, String> {
        if (100..=599).contains(&self.lo) && (100..=599).contains(&self.hi) && self.lo <= self.hi {
            Ok(self)
        } else {
            Err(format!(
                "status {}-{} is not within 100-599",
                self.lo, self.hi
            ))
        }
    }

    pub fn contains(self, status: u16) -> bool {
        (self.lo..=self.hi).contains(&status)
    }
}

/// One rule: a status in `status` (any, when empty) and `body` matching somewhere in the
/// body (any, when unset). At least one of the two is set.
#[derive(Debug, Clone)]
pub struct Rule {
    pub status: Vec<StatusSet>,
    pub body: Option<Regex>,
}

impl Rule {
    pub fn matches(&self, status: u16, body: &str) -> bool {
        (self.status.is_empty() || self.status.iter().any(|s| s.contains(status)))
            && self.body.as_ref().is_none_or(|r| r.is_match(body))
    }
}

/// What an answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Certainly not applied.
    Fail,
    /// May have been applied.
    Info,
    /// A read of a key that does not exist.
    Absent,
    /// Done; a read's value is in the answer.
    Ok,
}

/// The rules of one operation, per class.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub fail: Vec<Rule>,
    pub info: Vec<Rule>,
    pub absent: Vec<Rule>,
    pub ok: Vec<Rule>,
}

impl Rules {
    /// The class of an answer, or `None` when no rule matches.
    pub fn classify(&self, status: u16, body: &str) -> Option<Class> {
        [
            (Class::Fail, &self.fail),
            (Class::Info, &self.info),
            (Class::Absent, &self.absent),
            (Class::Ok, &self.ok),
        ]
        .into_iter()
        .find(|(_, rules)| rules.iter().any(|r| r.matches(status, body)))
        .map(|(c, _)| c)
    }
}

/// Where a read's value is in an ok answer.
#[derive(Debug, Clone)]
pub enum ValueAt {
    /// The whole body (trimmed).
    Body,
    /// What a JSON pointer (RFC 6901) designates in a JSON body.
    Json(String),
    /// A regex's first capture group (or the whole match without a group); for set reads,
    /// every match.
    Regex(Regex),
}

/// How the text found at a [`ValueAt`] is decoded before it is read as an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decode {
    #[default]
    Raw,
    Base64,
}

/// Where the value is and how it is written.
#[derive(Debug, Clone)]
pub struct ValueSpec {
    pub at: ValueAt,
    pub decode: Decode,
}

impl ValueSpec {
    /// A register read's integer. A JSON `null` at the pointer reads as an absent key.
    pub fn register(&self, body: &str) -> Result<Option<i64>, String> {
        match &self.at {
            ValueAt::Body => self.int(body.trim()).map(Some),
            ValueAt::Json(ptr) => match json_at(body, ptr)? {
                Value::Null => Ok(None),
                v => self.json_int(&v).map(Some),
            },
            ValueAt::Regex(re) => {
                let caps = re
                    .captures(body)
                    .ok_or_else(|| format!("the value pattern {:?} does not match", re.as_str()))?;
                let m = caps.get(1).or_else(|| caps.get(0)).expect("group 0 exists");
                self.int(m.as_str()).map(Some)
            }
        }
    }

    /// A set read's elements, sorted. The whole body is a JSON array or integers separated
    /// by commas or white space; a JSON pointer designates an array; a regex matches once
    /// per element.
    pub fn set(&self, body: &str) -> Result<Vec<i64>, String> {
        let mut elems = match &self.at {
            ValueAt::Body if body.trim_start().starts_with('[') => self.json_list(
                &serde_json::from_str(body).map_err(|e| format!("body is not JSON: {e}"))?,
            )?,
            ValueAt::Body => body
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|t| !t.is_empty())
                .map(|t| self.int(t))
                .collect::<Result<_, _>>()?,
            ValueAt::Json(ptr) => match json_at(body, ptr)? {
                Value::Null => Vec::new(),
                v => self.json_list(&v)?,
            },
            ValueAt::Regex(re) => re
                .captures_iter(body)
                .map(|c| self.int(c.get(1).or_else(|| c.get(0)).expect("group 0").as_str()))
                .collect::<Result<_, _>>()?,
        };
        elems.sort_unstable();
        Ok(elems)
    }

    fn json_list(&self, v: &Value) -> Result<Vec<i64>, String> {
        match v {
            Value::Array(items) => items.iter().map(|i| self.json_int(i)).collect(),
            other => Err(format!("{other} is not an array")),
        }
    }

    fn json_int(&self, v: &Value) -> Result<i64, String> {
        match v {
            Value::String(s) => self.int(s),
            Value::Number(n) if self.decode == Decode::Raw => n
                .as_i64()
                .ok_or_else(|| format!("{n} is not a 64-bit integer")),
            other => Err(format!("{other} is not an integer")),
        }
    }

    fn int(&self, text: &str) -> Result<i64, String> {
        let text = match self.decode {
            Decode::Raw => text.to_string(),
            Decode::Base64 => {
                let bytes = B64
                    .decode(text.trim())
                    .map_err(|e| format!("{text:?} is not base64 ({e})"))?;
                String::from_utf8(bytes).map_err(|_| format!("{text:?} is not base64 of UTF-8"))?
            }
        };
        text.trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an integer"))
    }
}

/// The body parsed as JSON and the value a pointer designates in it; a pointer to nothing
/// is an error (a key the system left out is said with an `absent` rule or a JSON `null`).
fn json_at(body: &str, ptr: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("body is not JSON: {e}"))?;
    v.pointer(ptr)
        .cloned()
        .ok_or_else(|| format!("nothing at JSON pointer {ptr:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(status: &[&str], body: Option<&str>) -> Rule {
        Rule {
            status: status
                .iter()
                .map(|s| StatusSet::parse(s).unwrap())
                .collect(),
            body: body.map(|b| Regex::new(b).unwrap()),
        }
    }

    #[test]
    fn statuses() {
        let s = |t| StatusSet::parse(t);
        assert!(s("5xx").unwrap().contains(503) && !s("5xx").unwrap().contains(499));
        assert!(s("500-504").unwrap().contains(504) && !s("500-504").unwrap().contains(505));
        assert!(s("404").unwrap().contains(404));
        for bad in ["6xx", "99", "504-500", "abc", "2x"] {
            assert!(s(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fail_then_info_then_absent_then_ok() {
        let rules = Rules {
            fail: vec![rule(&["503"], Some("not leader"))],
            info: vec![rule(&["5xx"], None), rule(&[], Some("timed out"))],
            absent: vec![rule(&["404"], None), rule(&["200"], Some("^null$"))],
            ok: vec![rule(&["2xx"], None)],
        };
        let c = |s, b| rules.classify(s, b);
        assert_eq!(c(503, "error: not leader"), Some(Class::Fail));
        assert_eq!(c(503, "overloaded"), Some(Class::Info));
        assert_eq!(c(200, "request timed out"), Some(Class::Info));
        assert_eq!(c(404, ""), Some(Class::Absent));
        assert_eq!(c(200, "null"), Some(Class::Absent));
        assert_eq!(c(200, "7"), Some(Class::Ok));
        assert_eq!(c(302, "moved"), None);
        assert_eq!(c(418, ""), None);
    }

    fn at(at: ValueAt, decode: Decode) -> ValueSpec {
        ValueSpec { at, decode }
    }

    #[test]
    fn register_values_from_body_pointer_and_regex() {
        let body = at(ValueAt::Body, Decode::Raw);
        assert_eq!(body.register(" 42\n"), Ok(Some(42)));
        assert!(body.register("forty-two").is_err());
        let ptr = at(ValueAt::Json("/node/value".into()), Decode::Raw);
        assert_eq!(ptr.register(r#"{"node":{"value":7}}"#), Ok(Some(7)));
        assert_eq!(ptr.register(r#"{"node":{"value":"8"}}"#), Ok(Some(8)));
        assert_eq!(ptr.register(r#"{"node":{"value":null}}"#), Ok(None));
        assert!(
            ptr.register(r#"{"node":{}}"#)
                .unwrap_err()
                .contains("nothing at")
        );
        assert!(ptr.register("not json").unwrap_err().contains("not JSON"));
        assert!(ptr.register(r#"{"node":{"value":1.5}}"#).is_err());
        let b64 = at(ValueAt::Json("/v".into()), Decode::Base64);
        assert_eq!(b64.register(r#"{"v":"NDI="}"#), Ok(Some(42)));
        assert!(
            b64.register(r#"{"v":42}"#).is_err(),
            "a number is not base64 text"
        );
        let re = at(
            ValueAt::Regex(Regex::new(r"value=(-?\d+)").unwrap()),
            Decode::Raw,
        );
        assert_eq!(re.register("key=k1 value=-3"), Ok(Some(-3)));
        assert!(
            re.register("key=k1")
                .unwrap_err()
                .contains("does not match")
        );
        let whole = at(ValueAt::Regex(Regex::new(r"\d+").unwrap()), Decode::Raw);
        assert_eq!(whole.register("v: 12"), Ok(Some(12)));
    }

    #[test]
    fn set_values_are_sorted_lists() {
        let body = at(ValueAt::Body, Decode::Raw);
        assert_eq!(body.set("[3, 1, \"2\"]"), Ok(vec![1, 2, 3]));
        assert_eq!(body.set("5,4\n6 "), Ok(vec![4, 5, 6]));
        assert_eq!(body.set(""), Ok(vec![]));
        assert!(body.set("1,x").is_err());
        let ptr = at(ValueAt::Json("/elements".into()), Decode::Raw);
        assert_eq!(ptr.set(r#"{"elements":[9,8]}"#), Ok(vec![8, 9]));
        assert_eq!(ptr.set(r#"{"elements":null}"#), Ok(vec![]));
        assert!(ptr.set(r#"{"elements":9}"#).is_err());
        let re = at(
            ValueAt::Regex(Regex::new(r"<e>(\d+)</e>").unwrap()),
            Decode::Raw,
        );
        assert_eq!(re.set("<e>2</e><e>1</e>"), Ok(vec![1, 2]));
    }
}
