//! The etcd adapter: register operations over etcd's v3 JSON gateway (HTTP/1.1).
//!
//! ```text
//!  Op::Write{k,v}      ─► POST /v3/kv/put   {"key":b64(prefix+k),"value":b64("v")}
//!  Op::Read{k}         ─► POST /v3/kv/range {"key":...,"serializable":false|true}
//!  Op::Cas{k,from,to}  ─► POST /v3/kv/txn   if value == b64("from") then put b64("to")
//!  Op::Add{set,v}      ─► POST /v3/kv/put   {"key":b64(prefix+"set/"+v),"value":b64("v")}
//!  Op::Read{set}       ─► POST /v3/kv/range over every key under prefix+"set/" → sorted
//! ```
//!
//! Values are decimal integers stored as text, so `etcdctl get` shows what sunder wrote.
//! The set workload's key ([`SET_KEY`]) is a directory with one key per element, read
//! with one range, so that adds never contend.
//! A cas against an absent key fails (etcd compares a missing key's value as false), which
//! is the register model's answer too: an absent register holds no integer.
//!
//! Outcomes. A 2xx with a body that parses is `ok` (a txn that did not succeed is
//! `fail cas-mismatch`). An error is `fail` only when etcd cannot have applied the request:
//! refused or failed connects, etcd errors raised before a proposal enters the log
//! ([`DEFINITE_ERRORS`]), and gRPC codes that mean the request was rejected as asked
//! ([`DEFINITE_CODES`]). Everything else — timeouts, a connection lost after sending,
//! 5xx answers, "request timed out", "leader changed", anything unknown — is `info`:
//! a wrong `fail` would make a correct etcd look broken, a needless `info` only costs the
//! checker some search.
//!
//! With `require_leader` (the default) each request carries gRPC metadata `hasleader`,
//! which etcd checks before running it: a member cut off from the leader answers
//! "etcdserver: no leader" at once, a definite error, instead of waiting to time out.
//! Serializable reads go without it: they exist to read a member's local state, and a
//! member cut off from the leader is exactly where that state may be stale.

use crate::client::{Client, Endpoint, Outcome, errors};
use crate::config::SET_KEY;
use crate::dial::Dialer;
use crate::http::{HttpPool, HttpResponse};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hyper::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use sunder_wire::Op;
use tokio::time::Instant;

/// etcd error messages that mean the request never took effect.
///
/// - "no leader": only raised by the `hasleader` check, before the request runs.
/// - "raft proposal dropped": raft refused the proposal (no leader known), nothing logged.
/// - "too many requests", "request is too large", "not capable": refused before proposing.
/// - "no space": the NOSPACE alarm makes the applier refuse every put.
/// - auth and argument errors: refused as asked.
pub const DEFINITE_ERRORS: &[&str] = &[
    "etcdserver: no leader",
    "raft proposal dropped",
    "etcdserver: too many requests",
    "etcdserver: request is too large",
    "etcdserver: not capable",
    "etcdserver: mvcc: database space exceeded",
    "etcdserver: permission denied",
    "etcdserver: invalid auth token",
    "etcdserver: user name is empty",
    "etcdserver: key is not provided",
];

/// gRPC status codes that etcd (and its gateway, for bad JSON) only use for requests that
/// were refused as asked: InvalidArgument, PermissionDenied, OutOfRange (compacted),
/// Unimplemented, Unauthenticated.
pub const DEFINITE_CODES: &[i64] = &[3, 7, 11, 12, 16];

/// How reads are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadMode {
    /// Through a read index confirmed by a quorum: linearizable.
    #[default]
    Linearizable,
    /// From the member's local state: may be stale, so not linearizable under partitions.
    Serializable,
}

/// The `[client]` settings of the etcd adapter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdConfig {
    /// `linearizable` (default) or `serializable`.
    #[serde(default)]
    pub reads: ReadMode,
    /// Put before every key, e.g. `/sunder/`, to keep the test's keys apart.
    #[serde(default)]
    pub prefix: String,
    /// When set, every call waits this long (e.g. `"10s"`) instead of the test's
    /// operation timeout: etcd's own request timeout is about 7 s by default, and a
    /// client that gives up first turns etcd's definite answers into `info`.
    #[serde(default, deserialize_with = "crate::adapter::de_duration")]
    pub timeout: Option<Duration>,
    /// Connections per member, at most (HTTP/1.1 carries one request at a time).
    #[serde(default = "default_connections")]
    pub connections: usize,
    /// Ask etcd to refuse requests at once on a member that knows no leader (all but
    /// serializable reads).
    #[serde(default = "default_true")]
    pub require_leader: bool,
}

fn default_connections() -> usize {
    16
}

fn default_true() -> bool {
    true
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            reads: ReadMode::default(),
            prefix: String::new(),
            timeout: None,
            connections: default_connections(),
            require_leader: true,
        }
    }
}

/// A client of an etcd cluster, one connection pool per member. Needs a tokio runtime.
#[derive(Debug)]
pub struct EtcdClient {
    endpoints: Vec<Endpoint>,
    pools: Vec<HttpPool>,
    cfg: EtcdConfig,
}

impl EtcdClient {
    pub fn new(endpoints: Vec<Endpoint>, dialer: Dialer, cfg: EtcdConfig) -> EtcdClient {
        let pools = endpoints
            .iter()
            .map(|e| HttpPool::new(e.addr, dialer.clone(), cfg.connections))
            .collect();
        EtcdClient {
            endpoints,
            pools,
            cfg,
        }
    }

    pub fn config(&self) -> &EtcdConfig {
        &self.cfg
    }

    fn key(&self, key: &str) -> String {
        B64.encode(format!("{}{key}", self.cfg.prefix))
    }

    /// The directory of a set's elements: `[start, end)` covers every key under it.
    fn set_range(&self, key: &str) -> (String, String) {
        let start = format!("{}{key}/", self.cfg.prefix);
        // The first key after the directory: its last byte, '/', plus one.
        let end = format!("{}{key}0", self.cfg.prefix);
        (B64.encode(start), B64.encode(end))
    }

    /// Extra HTTP headers for `op`: grpc-gateway passes `Grpc-Metadata-*` headers on as
    /// gRPC metadata. Serializable reads are for seeing a member's local state, leader or
    /// not, so they never require one.
    fn headers(&self, op: &Op) -> &'static [(&'static str, &'static str)] {
        let local_read = matches!(op, Op::Read { .. }) && self.cfg.reads == ReadMode::Serializable;
        if self.cfg.require_leader && !local_read {
            &[("grpc-metadata-hasleader", "true")]
        } else {
            &[]
        }
    }

    /// The gateway path and JSON body of `op`, or why the adapter cannot send it.
    fn request(&self, op: &Op) -> Result<(&'static str, Value), String> {
        let val = |v: i64| B64.encode(v.to_string());
        let serializable = self.cfg.reads == ReadMode::Serializable;
        match op {
            Op::Read { key } if key == SET_KEY => {
                let (start, end) = self.set_range(key);
                Ok((
                    "/v3/kv/range",
                    json!({"key": start, "range_end": end, "serializable": serializable}),
                ))
            }
            Op::Add { key, value } => Ok((
                "/v3/kv/put",
                json!({"key": self.key(&format!("{key}/{value}")), "value": val(*value)}),
            )),
            Op::Read { key } => Ok((
                "/v3/kv/range",
                json!({
                    "key": self.key(key),
                    "serializable": serializable,
                }),
            )),
            Op::Write { key, value } => Ok((
                "/v3/kv/put",
                json!({"key": self.key(key), "value": val(*value)}),
            )),
            Op::Cas { key, from, to } => Ok((
                "/v3/kv/txn",
                json!({
                    "compare": [{
                        "key": self.key(key),
                        "target": "VALUE",
                        "result": "EQUAL",
                        "value": val(*from),
                    }],
                    "success": [{"request_put": {"key": self.key(key), "value": val(*to)}}],
                }),
            )),
            other => Err(format!(
                "unsupported-op: the etcd adapter does not do `{}`",
                other.name()
            )),
        }
    }

    async fn call_at(&self, node: usize, op: &Op, deadline: Instant) -> Outcome {
        let (path, body) = match self.request(op) {
            Ok(r) => r,
            Err(error) => {
                return Outcome::Fail {
                    error,
                    leader: None,
                };
            }
        };
        let body = serde_json::to_vec(&body).expect("a JSON value always serialises");
        let pool = &self.pools[node];
        let headers = self.headers(op);
        let answer = pool
            .request(Method::POST, path, headers, Some(body), deadline)
            .await;
        match answer {
            Ok(resp) => classify(op, &resp),
            Err(e) => e.outcome(),
        }
    }
}

impl Client for EtcdClient {
    fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    fn call(
        &self,
        node: usize,
        op: &Op,
        timeout: Duration,
    ) -> impl Future<Output = Outcome> + Send {
        let deadline = Instant::now() + self.cfg.timeout.unwrap_or(timeout);
        self.call_at(node, op, deadline)
    }
}

/// The outcome an HTTP answer to `op` stands for.
pub fn classify(op: &Op, resp: &HttpResponse) -> Outcome {
    let parsed: Option<Value> = serde_json::from_slice(&resp.body).ok();
    if !(200..300).contains(&resp.status) {
        return classify_error(resp.status, parsed.as_ref(), &resp.body);
    }
    let protocol = |why: &str| Outcome::Info {
        error: format!(
            "{}: {why}: {}",
            errors::PROTOCOL,
            String::from_utf8_lossy(&resp.body)
        ),
    };
    let Some(v) = parsed.filter(Value::is_object) else {
        return protocol("not a JSON object");
    };
    match op {
        Op::Read { key } if key == SET_KEY => match read_set(&v) {
            Ok(x) => Outcome::Ok(x),
            Err(why) => protocol(&why),
        },
        Op::Read { .. } => match read_value(&v) {
            Ok(x) => Outcome::Ok(x),
            Err(why) => protocol(&why),
        },
        Op::Write { .. } | Op::Add { .. } => Outcome::Ok(Value::Null),
        // The gateway leaves `false` out.
        Op::Cas { .. } => match v.get("succeeded") {
            Some(Value::Bool(true)) => Outcome::Ok(Value::Null),
            None | Some(Value::Bool(false)) => Outcome::Fail {
                error: sunder_wire::errors::CAS_MISMATCH.to_string(),
                leader: None,
            },
            Some(_) => protocol("`succeeded` is not a boolean"),
        },
        _ => protocol("an answer to an operation never sent"),
    }
}

/// The register value in a range answer: `null` when the key is absent.
fn read_value(v: &Value) -> Result<Value, String> {
    match kvs(v)?.first() {
        None => Ok(Value::Null),
        Some(kv) => Ok(Value::from(kv_int(kv)?)),
    }
}

/// The elements of a set in a range answer, sorted.
fn read_set(v: &Value) -> Result<Value, String> {
    let mut elems = kvs(v)?.iter().map(kv_int).collect::<Result<Vec<_>, _>>()?;
    elems.sort_unstable();
    Ok(Value::from(elems))
}

/// The `kvs` of a range answer; the gateway leaves an empty list out.
fn kvs(v: &Value) -> Result<&[Value], String> {
    match v.get("kvs") {
        None => Ok(&[]),
        Some(Value::Array(kvs)) => Ok(kvs),
        Some(_) => Err("`kvs` is not an array".into()),
    }
}

/// The integer stored in one key-value.
fn kv_int(kv: &Value) -> Result<i64, String> {
    // An empty value is left out too; sunder never writes one.
    let b64 = kv.get("value").and_then(Value::as_str).unwrap_or("");
    let bytes = B64
        .decode(b64)
        .map_err(|e| format!("value is not base64 ({e})"))?;
    let text = String::from_utf8(bytes).map_err(|_| "value is not UTF-8".to_string())?;
    text.parse()
        .map_err(|_| format!("value {text:?} is not an integer"))
}

/// A non-2xx answer: etcd's `{"error","message","code"}` or whatever a proxy sent.
fn classify_error(status: u16, body: Option<&Value>, raw: &[u8]) -> Outcome {
    let message = body
        .and_then(|b| b.get("message").or_else(|| b.get("error")))
        .and_then(Value::as_str);
    let code = body.and_then(|b| b.get("code")).and_then(Value::as_i64);
    let error = match message {
        Some(m) => m.to_string(),
        None => format!(
            "http {status}: {}",
            String::from_utf8_lossy(raw)
                .trim()
                .chars()
                .take(200)
                .collect::<String>()
        ),
    };
    let definite = match (message, code) {
        (Some(m), _) if DEFINITE_ERRORS.contains(&m) => true,
        (Some(_), Some(c)) => DEFINITE_CODES.contains(&c),
        // Not etcd speaking: a client error (unknown path, bad method) was refused as
        // such; a server error or a timeout says nothing about what ran.
        _ => (400..500).contains(&status) && status != 408 && status != 429,
    };
    if definite {
        Outcome::Fail {
            error,
            leader: None,
        }
    } else {
        Outcome::Info { error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            body: Bytes::from(body.to_string()),
        }
    }

    fn read() -> Op {
        Op::Read { key: "k".into() }
    }

    fn cas() -> Op {
        Op::Cas {
            key: "k".into(),
            from: 1,
            to: 2,
        }
    }

    #[test]
    fn requests_are_base64_with_prefix() {
        let c = EtcdClient::new(
            vec![],
            Dialer::Direct,
            EtcdConfig {
                prefix: "/t/".into(),
                reads: ReadMode::Serializable,
                ..EtcdConfig::default()
            },
        );
        let (p, b) = c.request(&read()).unwrap();
        assert_eq!(p, "/v3/kv/range");
        assert_eq!(b, json!({"key": B64.encode("/t/k"), "serializable": true}));
        let (p, b) = c.request(&cas()).unwrap();
        assert_eq!(p, "/v3/kv/txn");
        assert_eq!(b["compare"][0]["value"], json!(B64.encode("1")));
        assert_eq!(
            b["success"][0]["request_put"]["value"],
            json!(B64.encode("2"))
        );
        assert!(c.request(&Op::Status).is_err());
        let (p, b) = c
            .request(&Op::Add {
                key: SET_KEY.into(),
                value: 7,
            })
            .unwrap();
        assert_eq!(p, "/v3/kv/put");
        assert_eq!(b["key"], json!(B64.encode("/t/set/7")));
        let (_, b) = c.request(&read_set_op()).unwrap();
        assert_eq!(b["key"], json!(B64.encode("/t/set/")));
        assert_eq!(b["range_end"], json!(B64.encode("/t/set0")));
    }

    #[test]
    fn every_request_but_serializable_reads_requires_a_leader() {
        let with = |reads, require_leader| {
            EtcdClient::new(
                vec![],
                Dialer::Direct,
                EtcdConfig {
                    reads,
                    require_leader,
                    ..EtcdConfig::default()
                },
            )
        };
        let lin = with(ReadMode::Linearizable, true);
        assert_eq!(lin.headers(&read()).len(), 1);
        assert_eq!(lin.headers(&cas()).len(), 1);
        let ser = with(ReadMode::Serializable, true);
        assert!(ser.headers(&read()).is_empty());
        assert_eq!(ser.headers(&cas()).len(), 1);
        assert!(
            with(ReadMode::Linearizable, false)
                .headers(&cas())
                .is_empty()
        );
    }

    fn read_set_op() -> Op {
        Op::Read {
            key: SET_KEY.into(),
        }
    }

    #[test]
    fn set_reads_are_sorted_arrays() {
        let kv = |n: i64| json!({"key": "eA==", "value": B64.encode(n.to_string())});
        let body = json!({"kvs": [kv(12), kv(3), kv(7)]}).to_string();
        assert_eq!(
            classify(&read_set_op(), &resp(200, &body)),
            Outcome::Ok(json!([3, 7, 12]))
        );
        assert_eq!(
            classify(&read_set_op(), &resp(200, "{}")),
            Outcome::Ok(json!([]))
        );
    }

    #[test]
    fn reads_decode_values_and_absent_keys() {
        let absent = r#"{"header":{"revision":"2"}}"#;
        assert_eq!(
            classify(&read(), &resp(200, absent)),
            Outcome::Ok(Value::Null)
        );
        let present = format!(
            r#"{{"header":{{}},"kvs":[{{"key":"aw==","value":"{}"}}],"count":"1"}}"#,
            B64.encode("42")
        );
        assert_eq!(
            classify(&read(), &resp(200, &present)),
            Outcome::Ok(json!(42))
        );
        let junk = format!(r#"{{"kvs":[{{"value":"{}"}}]}}"#, B64.encode("x"));
        assert!(matches!(
            classify(&read(), &resp(200, &junk)),
            Outcome::Info { .. }
        ));
    }

    #[test]
    fn txn_without_succeeded_is_a_mismatch() {
        assert_eq!(
            classify(&cas(), &resp(200, r#"{"header":{}}"#)),
            Outcome::Fail {
                error: "cas-mismatch".into(),
                leader: None
            }
        );
        assert_eq!(
            classify(&cas(), &resp(200, r#"{"succeeded":true}"#)),
            Outcome::Ok(Value::Null)
        );
    }

    #[test]
    fn errors_are_definite_only_when_nothing_can_have_run() {
        let err = |status, msg: &str, code| {
            classify(
                &cas(),
                &resp(
                    status,
                    &json!({"error": msg, "message": msg, "code": code}).to_string(),
                ),
            )
        };
        assert!(matches!(
            err(503, "etcdserver: no leader", 14),
            Outcome::Fail { .. }
        ));
        assert!(matches!(
            err(400, "invalid character 'g'", 3),
            Outcome::Fail { .. }
        ));
        for m in [
            "etcdserver: request timed out",
            "etcdserver: leader changed",
            "etcdserver: server stopped",
            "etcdserver: request timed out, possibly due to previous leader failure",
            "something new",
        ] {
            assert!(matches!(err(503, m, 14), Outcome::Info { .. }), "{m}");
        }
        assert!(matches!(
            classify(&cas(), &resp(502, "bad gateway")),
            Outcome::Info { .. }
        ));
        assert!(matches!(
            classify(&cas(), &resp(404, "Not Found")),
            Outcome::Fail { .. }
        ));
        assert!(matches!(
            classify(&cas(), &resp(200, "not json")),
            Outcome::Info { .. }
        ));
    }
}
