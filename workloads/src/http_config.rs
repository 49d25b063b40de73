//! The `[client]` table of the generic HTTP adapter (`adapter = "http"`), checked whole
//! when the spec is loaded: every error names the key it is about (`read.value.json`).
//!
//! ```toml
//! [client]
//! adapter = "http"
//! prefix = "sunder-"            # before every key (default none)
//! connections = 16              # per node (default 16)
//! timeout = "2s"                # instead of --op-timeout (default: the test's)
//! info = ["5xx"]                # rules added to every operation's own
//! [client.read]                 # also: write, cas, set_add, set_read; one left out is
//! method = "GET"                # not generated (no cas: the register workload writes)
//! path = "/kv/{key:url}"
//! ok = 200                      # rules: a code, "4xx", "500-504", {status, body}, a list
//! absent = 404                  # reads only: the key does not exist
//! fail = { status = 503, body = "not leader" }
//! value = { json = "/value" }   # or "body", or { regex = "v=(\\d+)" }; decode = "base64"
//! ```

use crate::config::WorkloadKind;
use crate::http_answer::{Decode, Rule, Rules, StatusSet, ValueAt, ValueSpec};
use crate::http_template::{RequestTemplate, Slot};
use hyper::Method;
use regex::Regex;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::time::Duration;

/// A `[client]` setting that cannot be used; `key` is dotted, relative to `[client]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct HttpConfigError {
    pub key: String,
    pub message: String,
}

/// The operations a spec may describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpOp {
    Read,
    Write,
    Cas,
    SetAdd,
    SetRead,
}

impl HttpOp {
    pub const ALL: [HttpOp; 5] = [
        HttpOp::Read,
        HttpOp::Write,
        HttpOp::Cas,
        HttpOp::SetAdd,
        HttpOp::SetRead,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HttpOp::Read => "read",
            HttpOp::Write => "write",
            HttpOp::Cas => "cas",
            HttpOp::SetAdd => "set_add",
            HttpOp::SetRead => "set_read",
        }
    }

    /// The placeholders its templates may use.
    pub fn slots(self) -> &'static [Slot] {
        match self {
            HttpOp::Read | HttpOp::SetRead => &[Slot::Key],
            HttpOp::Write | HttpOp::SetAdd => &[Slot::Key, Slot::Value],
            HttpOp::Cas => &[Slot::Key, Slot::From, Slot::To],
        }
    }

    /// The placeholders it must use: without them two different operations would send
    /// the same request.
    fn required(self) -> &'static [Slot] {
        match self {
            HttpOp::Read => &[Slot::Key],
            HttpOp::Write => &[Slot::Key, Slot::Value],
            HttpOp::Cas => &[Slot::Key, Slot::From, Slot::To],
            HttpOp::SetAdd => &[Slot::Value],
            HttpOp::SetRead => &[],
        }
    }

    fn reads(self) -> bool {
        matches!(self, HttpOp::Read | HttpOp::SetRead)
    }
}

/// How one operation is sent and its answer read.
#[derive(Debug, Clone)]
pub struct OpSpec {
    pub method: Method,
    pub path: RequestTemplate,
    pub body: Option<RequestTemplate>,
    /// Its own rules plus the `[client]`-wide `fail` and `info`.
    pub rules: Rules,
    /// Reads only: where the value is.
    pub value: Option<ValueSpec>,
}

/// The HTTP adapter's settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub prefix: String,
    pub connections: usize,
    pub timeout: Option<Duration>,
    /// Indexed by [`HttpOp`]; boxed, so that an adapter choice stays small.
    ops: Box<[Option<OpSpec>; 5]>,
    /// The table as written: two configs are equal when they were written the same.
    source: Value,
}

impl PartialEq for HttpConfig {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl<'de> Deserialize<'de> for HttpConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        HttpConfig::from_json(&v).map_err(serde::de::Error::custom)
    }
}

impl HttpConfig {
    /// The operation's spec, `None` when the system lacks it.
    pub fn op(&self, op: HttpOp) -> Option<&OpSpec> {
        self.ops[op as usize].as_ref()
    }

    /// The operations a workload needs that this spec does not describe (cas is optional:
    /// without it the register workload only reads and writes).
    pub fn missing_for(&self, kind: WorkloadKind) -> Vec<&'static str> {
        let needs: &[HttpOp] = match kind {
            WorkloadKind::Register => &[HttpOp::Read, HttpOp::Write],
            WorkloadKind::Set => &[HttpOp::SetAdd, HttpOp::SetRead],
            // A transfer is one atomic step of two accounts: not a templated request.
            WorkloadKind::Bank => return vec!["transfer", "balances"],
        };
        needs
            .iter()
            .filter(|o| self.op(**o).is_none())
            .map(|o| o.name())
            .collect()
    }

    /// Checks a whole `[client]` table (as JSON; the `adapter` key, if there, is skipped).
    pub fn from_json(v: &Value) -> Result<HttpConfig, HttpConfigError> {
        let mut t = Table::new(v, "")?;
        t.allow("adapter");
        let prefix = t.string("prefix")?.unwrap_or_default();
        let connections = match t.get("connections") {
            None => 16,
            Some(v) => match v.as_u64() {
                Some(n @ 1..=1024) => n as usize,
                _ => return Err(t.err("connections", "must be an integer from 1 to 1024")),
            },
        };
        let timeout = match t.string("timeout")? {
            None => None,
            Some(s) => Some(humantime::parse_duration(&s).map_err(|e| {
                t.err(
                    "timeout",
                    format!("bad duration {s:?}: {e} (write e.g. \"2s\")"),
                )
            })?),
        };
        let shared_fail = rules(t.get("fail"), "fail")?;
        let shared_info = rules(t.get("info"), "info")?;
        let mut ops: [Option<OpSpec>; 5] = Default::default();
        for op in HttpOp::ALL {
            if let Some(v) = t.get(op.name()) {
                let mut spec = op_spec(op, v)?;
                spec.rules.fail.extend(shared_fail.iter().cloned());
                spec.rules.info.extend(shared_info.iter().cloned());
                ops[op as usize] = Some(spec);
            }
        }
        t.finish()?;
        if ops.iter().all(Option::is_none) {
            return Err(HttpConfigError {
                key: String::new(),
                message: format!(
                    "no operation is described: add at least one of [client.{}]",
                    HttpOp::ALL.map(HttpOp::name).join("], [client.")
                ),
            });
        }
        Ok(HttpConfig {
            prefix,
            connections,
            timeout,
            ops: Box::new(ops),
            source: v.clone(),
        })
    }
}

/// One JSON object being read, remembering which keys were used so that the rest can be
/// reported as unknown.
struct Table<'a> {
    map: &'a Map<String, Value>,
    at: String,
    used: Vec<&'static str>,
}

impl<'a> Table<'a> {
    fn new(v: &'a Value, at: &str) -> Result<Table<'a>, HttpConfigError> {
        match v.as_object() {
            Some(map) => Ok(Table {
                map,
                at: at.to_string(),
                used: Vec::new(),
            }),
            None => Err(HttpConfigError {
                key: at.to_string(),
                message: "must be a table".into(),
            }),
        }
    }

    fn key(&self, k: &str) -> String {
        if self.at.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.at)
        }
    }

    fn err(&self, k: &str, message: impl Into<String>) -> HttpConfigError {
        HttpConfigError {
            key: self.key(k),
            message: message.into(),
        }
    }

    fn allow(&mut self, k: &'static str) {
        self.used.push(k);
    }

    fn get(&mut self, k: &'static str) -> Option<&'a Value> {
        self.used.push(k);
        self.map.get(k)
    }

    fn string(&mut self, k: &'static str) -> Result<Option<String>, HttpConfigError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.err(k, "must be a string")),
        }
    }

    /// Refuses keys outside `known` before anything else is read, so that a misspelt
    /// `methd` is reported as itself rather than as a missing `method`.
    fn only(&self, known: &[&str]) -> Result<(), HttpConfigError> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => Err(self.err(
                k,
                format!("unknown key `{k}`; known here: {}", known.join(", ")),
            )),
        }
    }

    /// Unknown keys are errors: a misspelt `absnet` would otherwise be ignored and its
    /// answers read as unclassified.
    fn finish(self) -> Result<(), HttpConfigError> {
        match self.map.keys().find(|k| !self.used.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => Err(self.err(
                k,
                format!(
                    "unknown key `{k}`; known here: {}",
                    self.used
                        .iter()
                        .filter(|u| **u != "adapter")
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
}

fn op_spec(op: HttpOp, v: &Value) -> Result<OpSpec, HttpConfigError> {
    let mut t = Table::new(v, op.name())?;
    t.only(&[
        "method", "path", "body", "ok", "fail", "info", "absent", "value",
    ])?;
    let method = match t.string("method")? {
        None => return Err(t.err("method", "is required (e.g. \"GET\", \"PUT\")")),
        Some(m) => {
            let upper = m.to_ascii_uppercase();
            Method::from_bytes(upper.as_bytes())
                .ok()
                .filter(|_| !upper.is_empty())
                .ok_or_else(|| t.err("method", format!("{m:?} is not an HTTP method")))?
        }
    };
    let path_text = t
        .string("path")?
        .ok_or_else(|| t.err("path", "is required (e.g. \"/kv/{key:url}\")"))?;
    if !path_text.starts_with('/') {
        return Err(t.err("path", format!("{path_text:?} must start with /")));
    }
    let path = RequestTemplate::parse(&path_text, op.slots()).map_err(|m| t.err("path", m))?;
    let body = t
        .string("body")?
        .map(|b| RequestTemplate::parse(&b, op.slots()).map_err(|m| t.err("body", m)))
        .transpose()?;
    for slot in op.required() {
        if !path.uses(*slot) && !body.as_ref().is_some_and(|b| b.uses(*slot)) {
            return Err(t.err(
                "path",
                format!(
                    "neither path nor body uses {{{}}}: every {} would send the same request",
                    slot.name(),
                    op.name()
                ),
            ));
        }
    }
    let ok = rules(t.get("ok"), &t.key("ok"))?;
    if ok.is_empty() {
        return Err(t.err(
            "ok",
            "is required: which answers mean it was done (e.g. ok = 200)",
        ));
    }
    let fail = rules(t.get("fail"), &t.key("fail"))?;
    let info = rules(t.get("info"), &t.key("info"))?;
    let absent_v = t.get("absent");
    let value_v = t.get("value");
    if !op.reads() {
        if absent_v.is_some() {
            return Err(t.err("absent", "only reads have a key that may not exist"));
        }
        if value_v.is_some() {
            return Err(t.err("value", "only reads read a value"));
        }
    }
    let absent = rules(absent_v, &t.key("absent"))?;
    let value = match value_v {
        None if op.reads() => {
            return Err(t.err(
                "value",
                "is required for a read: \"body\", { json = \"/pointer\" } or { regex = \"...\" }",
            ));
        }
        None => None,
        Some(v) => Some(value_spec(v, &t.key("value"))?),
    };
    t.finish()?;
    Ok(OpSpec {
        method,
        path,
        body,
        rules: Rules {
            fail,
            info,
            absent,
            ok,
        },
        value,
    })
}

fn regex(text: &str, key: &str) -> Result<Regex, HttpConfigError> {
    Regex::new(text).map_err(|e| HttpConfigError {
        key: key.to_string(),
        message: format!("bad regex {text:?}: {e}"),
    })
}

fn status_sets(v: &Value, key: &str) -> Result<Vec<StatusSet>, HttpConfigError> {
    let one = |v: &Value| match v {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .map(StatusSet::one)
            .ok_or_else(|| format!("bad status {n}"))
            .and_then(StatusSet::check),
        Value::String(s) => StatusSet::parse(s),
        other => Err(format!(
            "bad status {other}: write a code (404), a class (\"5xx\") or a range (\"500-504\")"
        )),
    };
    let err = |message| HttpConfigError {
        key: key.to_string(),
        message,
    };
    match v {
        Value::Array(items) => items.iter().map(|i| one(i).map_err(err)).collect(),
        single => Ok(vec![one(single).map_err(err)?]),
    }
}

/// A rule list: a status (`200`, `"5xx"`), a table `{ status, body }`, or an array of these.
fn rules(v: Option<&Value>, key: &str) -> Result<Vec<Rule>, HttpConfigError> {
    let one = |v: &Value, key: &str| -> Result<Rule, HttpConfigError> {
        match v {
            Value::Object(_) => {
                let mut t = Table::new(v, key)?;
                let status = match t.get("status") {
                    None => Vec::new(),
                    Some(s) => status_sets(s, &t.key("status"))?,
                };
                let body = t
                    .string("body")?
                    .map(|b| regex(&b, &t.key("body")))
                    .transpose()?;
                t.finish()?;
                if status.is_empty() && body.is_none() {
                    return Err(HttpConfigError {
                        key: key.to_string(),
                        message: "a rule needs a status, a body pattern or both".into(),
                    });
                }
                Ok(Rule { status, body })
            }
            other => Ok(Rule {
                status: status_sets(other, key)?,
                body: None,
            }),
        }
    };
    match v {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(|i| one(i, key)).collect(),
        Some(single) => Ok(vec![one(single, key)?]),
    }
}

fn value_spec(v: &Value, key: &str) -> Result<ValueSpec, HttpConfigError> {
    if v.as_str() == Some("body") {
        return Ok(ValueSpec {
            at: ValueAt::Body,
            decode: Decode::Raw,
        });
    }
    if !v.is_object() {
        return Err(HttpConfigError {
            key: key.to_string(),
            message: format!(
                "{v} is not a value location: write \"body\", {{ json = \"/pointer\" }} or {{ regex = \"...\" }}"
            ),
        });
    }
    let mut t = Table::new(v, key)?;
    let json = t.string("json")?;
    let re = t.string("regex")?;
    let body = match t.get("body") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(t.err("body", "must be true or false")),
    };
    let decode = match t.string("decode")?.as_deref() {
        None | Some("raw") => Decode::Raw,
        Some("base64") => Decode::Base64,
        Some(other) => {
            return Err(t.err(
                "decode",
                format!("unknown decoding {other:?}; known: raw, base64"),
            ));
        }
    };
    let at = match (json, re, body) {
        (Some(p), None, false) => {
            pointer_ok(&p).map_err(|m| t.err("json", m))?;
            ValueAt::Json(p)
        }
        (None, Some(r), false) => {
            let re = regex(&r, &t.key("regex"))?;
            if re.captures_len() > 2 {
                return Err(t.err(
                    "regex",
                    "has more than one capture group; the value is group 1 (use (?:...) for the others)",
                ));
            }
            ValueAt::Regex(re)
        }
        (None, None, true) => ValueAt::Body,
        _ => {
            return Err(HttpConfigError {
                key: key.to_string(),
                message: "give exactly one of json = \"/pointer\", regex = \"...\", body = true"
                    .into(),
            });
        }
    };
    t.finish()?;
    Ok(ValueSpec { at, decode })
}

/// A JSON pointer as RFC 6901 writes one: empty (the whole document) or `/`-separated
/// tokens where `~` is only `~0` or `~1`.
fn pointer_ok(p: &str) -> Result<(), String> {
    if !(p.is_empty() || p.starts_with('/')) {
        return Err(format!(
            "{p:?} is not a JSON pointer: it must start with / (e.g. \"/node/value\")"
        ));
    }
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0') | Some('1')) {
            return Err(format!(
                "{p:?} is not a JSON pointer: `~` must be followed by 0 or 1"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({
            "adapter": "http",
            "read": {"method": "GET", "path": "/kv/{key:url}", "ok": 200, "absent": 404,
                     "value": {"json": "/value"}},
            "write": {"method": "PUT", "path": "/kv/{key:url}", "body": "{value}", "ok": [200, 204]},
        })
    }

    /// The error of `minimal()` with `v` set at the dotted `at`.
    fn err_with(at: &str, v: Value) -> HttpConfigError {
        let mut doc = minimal();
        let mut cur = &mut doc;
        let parts: Vec<&str> = at.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            cur = cur
                .as_object_mut()
                .unwrap()
                .entry(p.to_string())
                .or_insert(json!({}));
        }
        cur[parts[parts.len() - 1]] = v;
        HttpConfig::from_json(&doc).expect_err(at)
    }

    #[test]
    fn a_minimal_spec_has_no_cas_and_no_set() {
        let c = HttpConfig::from_json(&minimal()).unwrap();
        assert!(c.op(HttpOp::Read).is_some() && c.op(HttpOp::Cas).is_none());
        assert!(c.missing_for(WorkloadKind::Register).is_empty());
        assert_eq!(
            c.missing_for(WorkloadKind::Set),
            vec!["set_add", "set_read"]
        );
        assert_eq!(c.connections, 16);
    }

    #[test]
    fn shared_rules_are_added_to_every_operation() {
        let mut doc = minimal();
        doc["info"] = json!(["5xx"]);
        doc["fail"] = json!({"status": 503, "body": "not leader"});
        let c = HttpConfig::from_json(&doc).unwrap();
        let w = c.op(HttpOp::Write).unwrap();
        assert_eq!(w.rules.info.len(), 1);
        assert_eq!(w.rules.fail.len(), 1);
    }

    #[test]
    fn every_bad_setting_names_its_key() {
        let cases = [
            ("read.methd", json!("GET"), "read.methd", "unknown key"),
            ("colour", json!(1), "colour", "unknown key"),
            (
                "read.path",
                json!("/kv/{kye}"),
                "read.path",
                "unknown placeholder {kye}",
            ),
            (
                "read.path",
                json!("kv/{key}"),
                "read.path",
                "must start with /",
            ),
            (
                "read.path",
                json!("/kv/{value}"),
                "read.path",
                "has no value here",
            ),
            (
                "write.body",
                json!("{value:hex}"),
                "write.body",
                "unknown encoding",
            ),
            ("write.body", json!("x"), "write.path", "{value}"),
            (
                "read.value",
                json!({"json": "value"}),
                "read.value.json",
                "not a JSON pointer",
            ),
            (
                "read.value",
                json!({"json": "/a~2"}),
                "read.value.json",
                "~",
            ),
            (
                "read.value",
                json!({"regex": "(a"}),
                "read.value.regex",
                "bad regex",
            ),
            (
                "read.value",
                json!({"regex": "(a)(b)"}),
                "read.value.regex",
                "capture group",
            ),
            (
                "read.value",
                json!({"json": "/v", "regex": "x"}),
                "read.value",
                "exactly one",
            ),
            (
                "read.value",
                json!({"json": "/v", "decode": "hex"}),
                "read.value.decode",
                "unknown decoding",
            ),
            (
                "read.value",
                json!("all"),
                "read.value",
                "not a value location",
            ),
            (
                "read.ok",
                json!({"body": "(("}),
                "read.ok.body",
                "bad regex",
            ),
            (
                "read.ok",
                json!({"stat": 200}),
                "read.ok.stat",
                "unknown key",
            ),
            ("read.ok", json!({}), "read.ok", "needs a status"),
            ("read.ok", json!("6xx"), "read.ok", "bad status"),
            ("read.ok", json!(99), "read.ok", "not within 100-599"),
            ("read.ok", json!([]), "read.ok", "is required"),
            (
                "read.method",
                json!("GE T"),
                "read.method",
                "not an HTTP method",
            ),
            ("write.absent", json!(404), "write.absent", "only reads"),
            ("write.value", json!("body"), "write.value", "only reads"),
            (
                "cas",
                json!({"method": "POST", "path": "/cas/{key}", "body": "{to}", "ok": 200}),
                "cas.path",
                "{from}",
            ),
            ("timeout", json!("soon"), "timeout", "bad duration"),
            ("connections", json!(0), "connections", "1 to 1024"),
            (
                "info",
                json!({"status": "5xx", "bod": "x"}),
                "info.bod",
                "unknown key",
            ),
        ];
        for (at, v, key, msg) in cases {
            let e = err_with(at, v);
            assert_eq!(e.key, key, "{at}: {e}");
            assert!(e.message.contains(msg), "{at}: {e}");
        }
        let e = HttpConfig::from_json(&json!({"adapter": "http"})).unwrap_err();
        assert!(e.message.contains("no operation"), "{e}");
        let mut doc = minimal();
        doc["read"].as_object_mut().unwrap().remove("value");
        assert_eq!(HttpConfig::from_json(&doc).unwrap_err().key, "read.value");
    }
}
