//! The generic HTTP adapter: register and set operations as a target spec describes them
//! (`[client] adapter = "http"`, see [`HttpConfig`]), over the same keep-alive pool as the
//! etcd adapter.
//!
//! ```text
//!  Op::Read{k}        ─► [client.read]     method, path, body ({key})  ─► value or absent
//!  Op::Write{k,v}     ─► [client.write]    ({key}, {value})
//!  Op::Cas{k,from,to} ─► [client.cas]      ({key}, {from}, {to})       (optional)
//!  Op::Add{set,v}     ─► [client.set_add]  ({key}, {value})
//!  Op::Read{set}      ─► [client.set_read] ({key})                     ─► sorted elements
//! ```
//!
//! Outcomes. The answer's class is the spec's ([`Rules::classify`](crate::http_answer::Rules)):
//! `ok` (a read's value found where the spec says, else `info` with the answer), `absent`
//! (a read of no key: `null`, or the empty set), `fail`, `info`. An answer no rule covers
//! is `info` with its status and the start of its body in the history's error field:
//! never `ok` on a guess. Connection trouble is the etcd adapter's
//! ([`crate::http::HttpError::outcome`]): a request that certainly never left is `fail`;
//! a timeout or a connection lost after sending is `info`; nothing is retried.

use crate::client::{Client, Endpoint, Outcome, errors};
use crate::config::SET_KEY;
use crate::dial::Dialer;
use crate::http::{HttpPool, HttpResponse};
use crate::http_answer::Class;
use crate::http_config::{HttpConfig, HttpOp, OpSpec};
use crate::http_template::Fill;
use serde_json::Value;
use std::time::Duration;
use sunder_wire::Op;
use tokio::time::Instant;

/// How much of an unexpected body goes into the history's error field.
pub const ERROR_BODY_CHARS: usize = 200;

/// One operation as the spec renders it.
#[derive(Debug)]
pub struct Rendered<'a> {
    pub kind: HttpOp,
    pub spec: &'a OpSpec,
    pub path: String,
    pub body: Option<Vec<u8>>,
}

/// A client of a system described by an HTTP spec, one pool per node.
#[derive(Debug)]
pub struct HttpKvClient {
    endpoints: Vec<Endpoint>,
    pools: Vec<HttpPool>,
    cfg: HttpConfig,
}

impl HttpKvClient {
    pub fn new(endpoints: Vec<Endpoint>, dialer: Dialer, cfg: HttpConfig) -> HttpKvClient {
        let pools = endpoints
            .iter()
            .map(|e| HttpPool::new(e.addr, dialer.clone(), cfg.connections))
            .collect();
        HttpKvClient {
            endpoints,
            pools,
            cfg,
        }
    }

    /// Which described operation `op` is, and its placeholders' values.
    fn which<'a>(&self, op: &'a Op, key: &'a str) -> Option<(HttpOp, Fill<'a>)> {
        let fill = Fill {
            key,
            ..Fill::default()
        };
        match op {
            Op::Read { key: k } if k == SET_KEY => Some((HttpOp::SetRead, fill)),
            Op::Read { .. } => Some((HttpOp::Read, fill)),
            Op::Write { value, .. } => Some((
                HttpOp::Write,
                Fill {
                    value: Some(*value),
                    ..fill
                },
            )),
            Op::Cas { from, to, .. } => Some((
                HttpOp::Cas,
                Fill {
                    from: Some(*from),
                    to: Some(*to),
                    ..fill
                },
            )),
            Op::Add { value, .. } => Some((
                HttpOp::SetAdd,
                Fill {
                    value: Some(*value),
                    ..fill
                },
            )),
            _ => None,
        }
    }

    /// The method, path and body of `op`, or why it cannot be sent (a definite failure:
    /// nothing left this process).
    pub fn request(&self, op: &Op) -> Result<Rendered<'_>, String> {
        let key = format!("{}{}", self.cfg.prefix, op.key().unwrap_or_default());
        let unsupported = || {
            format!(
                "unsupported-op: the spec describes no `{}` for this system",
                op.name()
            )
        };
        let (kind, fill) = self.which(op, &key).ok_or_else(unsupported)?;
        let spec = self.cfg.op(kind).ok_or_else(unsupported)?;
        let path = spec.path.render(&fill);
        // What a template makes of a key is the spec's business; a request line hyper
        // would refuse is said here rather than panicking in the pool.
        if path.parse::<hyper::http::uri::PathAndQuery>().is_err() {
            return Err(format!(
                "bad-request: {path:?} is not a valid request path (encode the key: {{key:url}})"
            ));
        }
        let body = spec.body.as_ref().map(|b| b.render(&fill).into_bytes());
        Ok(Rendered {
            kind,
            spec,
            path,
            body,
        })
    }

    async fn call_at(&self, node: usize, op: &Op, deadline: Instant) -> Outcome {
        let Rendered {
            kind,
            spec,
            path,
            body,
        } = match self.request(op) {
            Ok(r) => r,
            Err(error) => {
                return Outcome::Fail {
                    error,
                    leader: None,
                };
            }
        };
        let answer = self.pools[node]
            .request(spec.method.clone(), &path, &[], body, deadline)
            .await;
        match answer {
            Ok(resp) => classify(kind, spec, &resp),
            Err(e) => e.outcome(),
        }
    }
}

impl Client for HttpKvClient {
    fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    fn can_cas(&self) -> bool {
        self.cfg.op(HttpOp::Cas).is_some()
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

/// `http STATUS: BODY...` for the history's error field.
fn raw_answer(resp: &HttpResponse) -> String {
    let body = String::from_utf8_lossy(&resp.body);
    let body = body.trim();
    let mut short: String = body.chars().take(ERROR_BODY_CHARS).collect();
    if short.len() < body.len() {
        short.push('…');
    }
    format!("http {}: {short}", resp.status)
}

/// The outcome an answer to a `kind` operation stands for, by `spec`'s rules.
pub fn classify(kind: HttpOp, spec: &OpSpec, resp: &HttpResponse) -> Outcome {
    let body = String::from_utf8_lossy(&resp.body);
    let class = spec.rules.classify(resp.status, &body);
    let protocol = |why: String| Outcome::Info {
        error: format!("{}: {why}: {}", errors::PROTOCOL, raw_answer(resp)),
    };
    match class {
        None => protocol("no rule of the spec matches this answer".into()),
        Some(Class::Fail) => Outcome::Fail {
            error: raw_answer(resp),
            leader: None,
        },
        Some(Class::Info) => Outcome::Info {
            error: raw_answer(resp),
        },
        Some(Class::Absent) => match kind {
            HttpOp::SetRead => Outcome::Ok(Value::Array(Vec::new())),
            _ => Outcome::Ok(Value::Null),
        },
        Some(Class::Ok) => {
            let Some(value) = &spec.value else {
                return Outcome::Ok(Value::Null);
            };
            let read = match kind {
                HttpOp::SetRead => value.set(&body).map(Value::from),
                _ => value.register(&body).map(Value::from),
            };
            match read {
                Ok(v) => Outcome::Ok(v),
                Err(why) => protocol(why),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::json;

    fn config() -> HttpConfig {
        HttpConfig::from_json(&json!({
            "prefix": "t/",
            "info": "5xx",
            "read": {"method": "GET", "path": "/kv/{key:url}", "ok": 200, "absent": 404,
                     "value": {"json": "/value"}},
            "write": {"method": "PUT", "path": "/kv/{key:url}", "body": "{value}", "ok": 204,
                      "fail": {"status": 503, "body": "no primary"}},
            "set_add": {"method": "POST", "path": "/set/{key}", "body": "{{\"e\":{value}}}", "ok": 200},
            "set_read": {"method": "GET", "path": "/set/{key}", "ok": 200, "value": "body"},
        }))
        .unwrap()
    }

    fn client(cfg: HttpConfig) -> HttpKvClient {
        HttpKvClient::new(vec![], Dialer::Direct, cfg)
    }

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            body: Bytes::from(body.to_string()),
        }
    }

    fn outcome(op: &Op, status: u16, body: &str) -> Outcome {
        let c = client(config());
        let r = c.request(op).unwrap();
        classify(r.kind, r.spec, &resp(status, body))
    }

    fn read() -> Op {
        Op::Read { key: "k1".into() }
    }

    fn write() -> Op {
        Op::Write {
            key: "k1".into(),
            value: 5,
        }
    }

    #[test]
    fn requests_render_the_spec_templates() {
        let c = client(config());
        let r = c.request(&write()).unwrap();
        assert_eq!((r.kind, r.spec.method.as_str()), (HttpOp::Write, "PUT"));
        assert_eq!(
            (r.path.as_str(), r.body),
            ("/kv/t%2Fk1", Some(b"5".to_vec()))
        );
        let add = Op::Add {
            key: SET_KEY.into(),
            value: 9,
        };
        let r = c.request(&add).unwrap();
        assert_eq!(r.path, "/set/t/set");
        assert_eq!(r.body, Some(br#"{"e":9}"#.to_vec()));
        let r = c
            .request(&Op::Read {
                key: SET_KEY.into(),
            })
            .unwrap();
        assert_eq!((r.kind, r.body), (HttpOp::SetRead, None));
    }

    #[test]
    fn an_absent_operation_is_not_sent_and_not_generated() {
        let c = client(config());
        let cas = Op::Cas {
            key: "k1".into(),
            from: 1,
            to: 2,
        };
        assert!(c.request(&cas).unwrap_err().contains("unsupported-op"));
        assert!(!c.can_cas());
        assert!(c.request(&Op::Status).is_err());
    }

    #[test]
    fn a_path_hyper_would_refuse_is_a_definite_failure() {
        let cfg = HttpConfig::from_json(&json!({
            "read": {"method": "GET", "path": "/kv/{key}", "ok": 200, "value": "body"},
        }))
        .unwrap();
        let e = client(cfg)
            .request(&Op::Read { key: "a b".into() })
            .unwrap_err();
        assert!(e.starts_with("bad-request"), "{e}");
    }

    #[test]
    fn answers_map_to_outcomes_by_the_rules() {
        assert_eq!(
            outcome(&read(), 200, r#"{"value":7}"#),
            Outcome::Ok(json!(7))
        );
        assert_eq!(
            outcome(&read(), 404, "no such key"),
            Outcome::Ok(Value::Null)
        );
        assert_eq!(outcome(&write(), 204, ""), Outcome::Ok(Value::Null));
        assert_eq!(
            outcome(&write(), 503, "no primary reachable"),
            Outcome::Fail {
                error: "http 503: no primary reachable".into(),
                leader: None
            }
        );
        assert_eq!(
            outcome(&write(), 503, "busy"),
            Outcome::Info {
                error: "http 503: busy".into()
            }
        );
        let set = Op::Read {
            key: SET_KEY.into(),
        };
        assert_eq!(outcome(&set, 200, "[3,1]"), Outcome::Ok(json!([1, 3])));
    }

    #[test]
    fn an_answer_no_rule_covers_is_info_with_the_raw_answer_never_ok() {
        let long = "x".repeat(1000);
        for (op, status, body) in [
            (read(), 302, "see other"),
            (write(), 200, "ok"), // the write's ok is 204 only
            (read(), 418, long.as_str()),
        ] {
            match outcome(&op, status, body) {
                Outcome::Info { error } => {
                    assert!(error.contains(&format!("http {status}: ")), "{error}");
                    assert!(error.contains(&body[..body.len().min(20)]), "{error}");
                    assert!(error.len() < 400, "body truncated: {}", error.len());
                }
                other => panic!("{status} {body:.20}: {other:?}"),
            }
        }
        // An ok answer without the value where the spec says is not a read of anything.
        match outcome(&read(), 200, r#"{"val":7}"#) {
            Outcome::Info { error } => assert!(error.contains("nothing at JSON pointer")),
            other => panic!("{other:?}"),
        }
    }
}
