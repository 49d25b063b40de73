//! The ZooKeeper adapter: register (and set) operations through the `zookeeper-client`
//! crate, one session per server.
//!
//! ```text
//!  Op::Read{k}         ─► [sync(prefix/k)] getData(prefix/k)        NoNode → ok null
//!  Op::Write{k,v}      ─► setData(prefix/k, "v", any version)       NoNode → create, then
//!                                                                    setData if it raced
//!  Op::Cas{k,from,to}  ─► getData → (value, version); value ≠ from → fail cas-mismatch;
//!                         setData(prefix/k, "to", version)          BadVersion → fail
//!  Op::Add{set,v}      ─► create(prefix/set/v)                      NodeExists → ok
//!  Op::Read{set}       ─► [sync] getChildren(prefix/set) → sorted integers
//! ```
//!
//! Values are decimal integers stored as text, so `zkCli.sh get /sunder/k1` shows them.
//! The cas is atomic although it takes two requests: `setData` with the version read
//! succeeds only if nothing wrote the znode in between (versions only grow; sunder never
//! deletes), so the value it replaces is the `from` that was compared.
//!
//! Each server gets a session of its own, and only that server's address, so an operation
//! sent to node i is answered by node i (the crate would otherwise fail over to another
//! server). A session that expired or closed is replaced by a new one at the next call.
//! With `--net netns` the crate cannot make its sockets inside the namespace, so every
//! session goes through a [`Relay`] on loopback that dials the server through the
//! [`Dialer`].
//!
//! Outcomes. No request is retried after an indefinite answer. An update is `info`
//! (it may have been applied) on a timeout, a lost connection, an expired session and any
//! error the adapter does not know to be definite; it is `fail` only on answers that say
//! it was refused as asked ([`definite`]: BadVersion, NoNode, NoAuth, BadArguments...). A
//! read changes nothing, so a read that got no answer is `fail`. A value that is not an
//! integer is `info`, with the raw bytes in the error.

use crate::client::{Client, Endpoint, Outcome, errors};
use crate::config::SET_KEY;
use crate::dial::Dialer;
use crate::relay::Relay;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use sunder_wire::Op;
use tokio::sync::Mutex;
use tokio::time::Instant;
use zookeeper_client as zk;

/// How reads are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZkReads {
    /// `getData` on the server the client is connected to: sequentially consistent, may
    /// be stale (a follower behind the leader, or cut off from it).
    #[default]
    Plain,
    /// `sync` first, then `getData`: the server catches up with the leader before it
    /// answers.
    Sync,
}

/// The `[client]` settings of the ZooKeeper adapter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZookeeperConfig {
    /// `plain` (default) or `sync`.
    #[serde(default)]
    pub reads: ZkReads,
    /// The parent znode of every key: absolute, without a trailing slash.
    #[serde(default = "default_prefix", deserialize_with = "de_prefix")]
    pub prefix: String,
    /// The session timeout asked of the server (which clamps it to 2..20 ticks).
    #[serde(
        default = "default_session_timeout",
        deserialize_with = "de_session_timeout"
    )]
    pub session_timeout: Duration,
    /// When set, every call waits this long instead of the test's operation timeout.
    #[serde(default, deserialize_with = "crate::adapter::de_duration")]
    pub timeout: Option<Duration>,
}

fn default_prefix() -> String {
    "/sunder".into()
}

fn default_session_timeout() -> Duration {
    Duration::from_secs(4)
}

impl Default for ZookeeperConfig {
    fn default() -> Self {
        ZookeeperConfig {
            reads: ZkReads::default(),
            prefix: default_prefix(),
            session_timeout: default_session_timeout(),
            timeout: None,
        }
    }
}

fn de_prefix<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let p = String::deserialize(d)?;
    let ok = p.starts_with('/')
        && !p.ends_with('/')
        && p.len() <= 200
        && p[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(p)
    } else {
        Err(serde::de::Error::custom(format!(
            "prefix {p:?} must be an absolute znode path without a trailing slash, e.g. \"/sunder\""
        )))
    }
}

fn de_session_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let t = crate::adapter::de_duration(d)?.unwrap_or_else(default_session_timeout);
    if (Duration::from_millis(100)..=Duration::from_secs(600)).contains(&t) {
        Ok(t)
    } else {
        Err(serde::de::Error::custom(format!(
            "session_timeout {t:?} is out of range (100ms to 10m)"
        )))
    }
}

/// One server's session, made when first needed and again after it expires.
#[derive(Debug)]
struct Server {
    addr: std::net::SocketAddr,
    conn: Mutex<Conn>,
}

#[derive(Debug, Default)]
struct Conn {
    relay: Option<Relay>,
    session: Option<zk::Client>,
}

/// A client of a ZooKeeper ensemble. Needs a tokio runtime.
#[derive(Debug)]
pub struct ZookeeperClient {
    endpoints: Vec<Endpoint>,
    servers: Vec<Server>,
    dialer: Dialer,
    cfg: ZookeeperConfig,
}

/// The ways a step of an operation can end badly.
#[derive(Debug, PartialEq)]
enum Step {
    /// The request was refused as asked: certainly not applied.
    Definite(String),
    /// It may have been applied (or, for a read, simply went unanswered).
    Unknown(String),
}

impl ZookeeperClient {
    pub fn new(endpoints: Vec<Endpoint>, dialer: Dialer, cfg: ZookeeperConfig) -> Self {
        let servers = endpoints
            .iter()
            .map(|e| Server {
                addr: e.addr,
                conn: Mutex::new(Conn::default()),
            })
            .collect();
        ZookeeperClient {
            endpoints,
            servers,
            dialer,
            cfg,
        }
    }

    pub fn config(&self) -> &ZookeeperConfig {
        &self.cfg
    }

    /// The znode of `key`, or why the adapter cannot name one.
    fn path(&self, key: &str) -> Result<String, String> {
        if key.is_empty() || key.contains('/') || key == "." || key == ".." || key.len() > 200 {
            return Err(format!(
                "unsupported-op: key {key:?} cannot be a znode name"
            ));
        }
        Ok(format!("{}/{key}", self.cfg.prefix))
    }

    /// The live session with server `node`, connecting (through a relay when the dialer
    /// is not direct) if there is none. An error means nothing was sent.
    async fn session(&self, node: usize) -> Result<zk::Client, String> {
        let server = &self.servers[node];
        let mut conn = server.conn.lock().await;
        if let Some(s) = &conn.session {
            match s.state() {
                zk::SessionState::Expired
                | zk::SessionState::Closed
                | zk::SessionState::AuthFailed => conn.session = None,
                _ => return Ok(s.clone()),
            }
        }
        let target = match (&self.dialer, &conn.relay) {
            (Dialer::Direct, _) => server.addr,
            (_, Some(r)) => r.local_addr(),
            (dialer, None) => {
                let r = Relay::start(server.addr, dialer.clone())
                    .await
                    .map_err(|e| format!("{}: relay: {e}", errors::CONNECT))?;
                let local = r.local_addr();
                conn.relay = Some(r);
                local
            }
        };
        let session = zk::Client::connector()
            .with_session_timeout(self.cfg.session_timeout)
            // One address: give up when it refused, instead of cycling until the timeout.
            .with_fail_eagerly()
            .connect(&target.to_string())
            .await
            .map_err(|e| format!("{}: {e}", errors::CONNECT))?;
        conn.session = Some(session.clone());
        Ok(session)
    }

    /// Forgets `session` if it is still the one in use: it expired or was closed.
    async fn forget(&self, node: usize, session: &zk::Client) {
        let mut conn = self.servers[node].conn.lock().await;
        if conn
            .session
            .as_ref()
            .is_some_and(|s| s.session_id() == session.session_id())
        {
            conn.session = None;
        }
    }

    async fn call_at(&self, node: usize, op: &Op, deadline: Instant) -> Outcome {
        let is_update = !matches!(op, Op::Read { .. });
        // Set once a request that may change state has been handed to the crate: from
        // then on, no answer means "maybe".
        let sent_update = AtomicBool::new(false);
        let run = async {
            let session = match self.session(node).await {
                Ok(s) => s,
                Err(error) => {
                    return Outcome::Fail {
                        error,
                        leader: None,
                    };
                }
            };
            let out = self.run(&session, op, &sent_update).await;
            let expired = matches!(&out, Outcome::Fail { error, .. } | Outcome::Info { error }
                if error.contains("SessionExpired") || error.contains("ClientClosed"));
            if expired {
                self.forget(node, &session).await;
            }
            out
        };
        match tokio::time::timeout_at(deadline, run).await {
            Ok(out) => out,
            Err(_) if is_update && sent_update.load(Ordering::SeqCst) => Outcome::Info {
                error: errors::TIMEOUT.into(),
            },
            Err(_) => Outcome::Fail {
                error: errors::TIMEOUT.into(),
                leader: None,
            },
        }
    }

    async fn run(&self, s: &zk::Client, op: &Op, sent: &AtomicBool) -> Outcome {
        let result = match op {
            Op::Read { key } if key == SET_KEY => self.read_set(s, key).await,
            Op::Read { key } => self.read(s, key).await,
            Op::Write { key, value } => self.write(s, key, *value, sent).await,
            Op::Cas { key, from, to } => self.cas(s, key, *from, *to, sent).await,
            Op::Add { key, value } => self.add(s, key, *value, sent).await,
            other => Err(Step::Definite(format!(
                "unsupported-op: the zookeeper adapter does not do `{}`",
                other.name()
            ))),
        };
        match result {
            Ok(v) => Outcome::Ok(v),
            Err(Step::Definite(error)) => Outcome::Fail {
                error,
                leader: None,
            },
            // A read that went unanswered changed nothing.
            Err(Step::Unknown(error)) if matches!(op, Op::Read { .. }) => Outcome::Fail {
                error,
                leader: None,
            },
            Err(Step::Unknown(error)) => Outcome::Info { error },
        }
    }

    async fn sync_if_asked(&self, s: &zk::Client, path: &str) -> Result<(), Step> {
        if self.cfg.reads == ZkReads::Sync {
            match s.sync(path).await {
                // sync does not need the znode to exist, but be lenient if it says so.
                Ok(()) | Err(zk::Error::NoNode) => {}
                Err(e) => return Err(classify(&e)),
            }
        }
        Ok(())
    }

    async fn read(&self, s: &zk::Client, key: &str) -> Result<Value, Step> {
        let path = self.path(key).map_err(Step::Definite)?;
        self.sync_if_asked(s, &path).await?;
        match s.get_data(&path).await {
            Ok((data, _)) => parse_value(&data).map(Value::from).map_err(Step::Unknown),
            Err(zk::Error::NoNode) => Ok(Value::Null),
            Err(e) => Err(classify(&e)),
        }
    }

    async fn write(
        &self,
        s: &zk::Client,
        key: &str,
        v: i64,
        sent: &AtomicBool,
    ) -> Result<Value, Step> {
        let path = self.path(key).map_err(Step::Definite)?;
        let data = v.to_string();
        sent.store(true, Ordering::SeqCst);
        // setData; a missing znode is created with the value; a create that lost a race
        // to another writer's create is followed by one more setData.
        match s.set_data(&path, data.as_bytes(), None).await {
            Ok(_) => return Ok(Value::Null),
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(classify(&e)),
        }
        match self.create(s, &path, data.as_bytes()).await {
            Ok(()) => return Ok(Value::Null),
            Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(classify(&e)),
        }
        match s.set_data(&path, data.as_bytes(), None).await {
            Ok(_) => Ok(Value::Null),
            Err(e) => Err(classify(&e)),
        }
    }

    async fn cas(
        &self,
        s: &zk::Client,
        key: &str,
        from: i64,
        to: i64,
        sent: &AtomicBool,
    ) -> Result<Value, Step> {
        let path = self.path(key).map_err(Step::Definite)?;
        let mismatch = || Step::Definite(sunder_wire::errors::CAS_MISMATCH.to_string());
        // Nothing is written before setData: any failure up to there is definite.
        let (data, stat) = match s.get_data(&path).await {
            Ok(r) => r,
            Err(zk::Error::NoNode) => return Err(mismatch()),
            Err(e) => return Err(Step::Definite(zk_name(&e))),
        };
        if parse_value(&data).map_err(Step::Definite)? != from {
            return Err(mismatch());
        }
        sent.store(true, Ordering::SeqCst);
        match s
            .set_data(&path, to.to_string().as_bytes(), Some(stat.version))
            .await
        {
            Ok(_) => Ok(Value::Null),
            // Written by someone else since the read: not applied.
            Err(zk::Error::BadVersion) => Err(mismatch()),
            Err(e) => Err(classify(&e)),
        }
    }

    async fn add(
        &self,
        s: &zk::Client,
        key: &str,
        v: i64,
        sent: &AtomicBool,
    ) -> Result<Value, Step> {
        let dir = self.path(key).map_err(Step::Definite)?;
        let path = format!("{dir}/{v}");
        sent.store(true, Ordering::SeqCst);
        match self.create(s, &path, v.to_string().as_bytes()).await {
            // Already an element: adding it again changes nothing.
            Ok(()) | Err(zk::Error::NodeExists) => Ok(Value::Null),
            Err(e) => Err(classify(&e)),
        }
    }

    async fn read_set(&self, s: &zk::Client, key: &str) -> Result<Value, Step> {
        let dir = self.path(key).map_err(Step::Definite)?;
        self.sync_if_asked(s, &dir).await?;
        let names = match s.list_children(&dir).await {
            Ok(names) => names,
            Err(zk::Error::NoNode) => return Ok(Value::from(Vec::<i64>::new())),
            Err(e) => return Err(classify(&e)),
        };
        let mut elems = names
            .iter()
            .map(|n| {
                n.parse::<i64>().map_err(|_| {
                    format!(
                        "{}: child {n:?} of {dir} is not an integer",
                        errors::PROTOCOL
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(Step::Unknown)?;
        elems.sort_unstable();
        Ok(Value::from(elems))
    }

    /// Creates a persistent znode, and its missing parents (empty) if need be.
    async fn create(&self, s: &zk::Client, path: &str, data: &[u8]) -> Result<(), zk::Error> {
        let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        match s.create(path, data, &opts).await {
            Err(zk::Error::NoNode) => {}
            other => return other.map(|_| ()),
        }
        // Parents, from the top; one that exists already is fine.
        let mut at = String::new();
        let parents: Vec<&str> = path[1..].split('/').collect();
        for part in &parents[..parents.len() - 1] {
            at.push('/');
            at.push_str(part);
            match s.create(&at, &[], &opts).await {
                Ok(_) | Err(zk::Error::NodeExists) => {}
                Err(e) => return Err(e),
            }
        }
        s.create(path, data, &opts).await.map(|_| ())
    }
}

impl Client for ZookeeperClient {
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

/// The integer stored in a znode, or why it is not one (with the raw bytes).
fn parse_value(data: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(data)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| {
            let shown: String = String::from_utf8_lossy(data).chars().take(200).collect();
            format!(
                "{}: znode data {shown:?} is not an integer",
                errors::PROTOCOL
            )
        })
}

/// The error as recorded in the history: its name for ZooKeeper's codes (`zookeeper:
/// BadVersion`), the crate's message for the rest (`zookeeper: no response from
/// connection in 1600ms`).
fn zk_name(e: &zk::Error) -> String {
    let name = format!("{e:?}");
    if name.chars().all(|c| c.is_ascii_alphanumeric()) {
        format!("zookeeper: {name}")
    } else {
        format!("zookeeper: {e}")
    }
}

/// Whether an error to a request that may change state means it was certainly not
/// applied. The server refuses these before a transaction is logged; everything else
/// (ConnectionLoss, a timeout, SessionExpired, an error new to this list) may have come
/// after the leader logged the request.
fn definite(e: &zk::Error) -> bool {
    matches!(
        e,
        zk::Error::NoNode
            | zk::Error::NodeExists
            | zk::Error::BadVersion
            | zk::Error::NoAuth
            | zk::Error::AuthFailed
            | zk::Error::BadArguments(_)
            | zk::Error::InvalidAcl
            | zk::Error::NoChildrenForEphemerals
            | zk::Error::NotEmpty
            | zk::Error::NotReadOnly
            | zk::Error::QuotaExceeded
            | zk::Error::Unimplemented
    )
}

fn classify(e: &zk::Error) -> Step {
    if definite(e) {
        Step::Definite(zk_name(e))
    } else {
        Step::Unknown(zk_name(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ZookeeperConfig, serde_json::Error> {
        serde_json::from_str(s)
    }

    #[test]
    fn settings_parse_with_defaults_and_bad_ones_are_errors() {
        assert_eq!(parse("{}").unwrap(), ZookeeperConfig::default());
        let c = parse(r#"{"reads":"sync","prefix":"/a/b","session_timeout":"2s","timeout":"5s"}"#)
            .unwrap();
        assert_eq!(c.reads, ZkReads::Sync);
        assert_eq!(c.prefix, "/a/b");
        assert_eq!(c.session_timeout, Duration::from_secs(2));
        assert_eq!(c.timeout, Some(Duration::from_secs(5)));
        for bad in [
            r#"{"reads":"linearizable"}"#,
            r#"{"prefix":"sunder"}"#,
            r#"{"prefix":"/sunder/"}"#,
            r#"{"prefix":"/a//b"}"#,
            r#"{"prefix":"/a/../b"}"#,
            r#"{"session_timeout":"1ms"}"#,
            r#"{"session_timeout":"soon"}"#,
            r#"{"read":"sync"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn keys_become_znodes_under_the_prefix() {
        let c = ZookeeperClient::new(vec![], Dialer::Direct, ZookeeperConfig::default());
        assert_eq!(c.path("k3").unwrap(), "/sunder/k3");
        for bad in ["", "a/b", "..", "."] {
            assert!(
                c.path(bad).unwrap_err().starts_with("unsupported-op"),
                "{bad}"
            );
        }
    }

    #[test]
    fn values_are_decimal_text_and_anything_else_is_shown() {
        assert_eq!(parse_value(b"42"), Ok(42));
        assert_eq!(parse_value(b"-7"), Ok(-7));
        let e = parse_value(b"forty").unwrap_err();
        assert!(
            e.starts_with("protocol-error") && e.contains("forty"),
            "{e}"
        );
        assert!(parse_value(&[0xff, 0x00]).is_err());
        assert!(parse_value(b"").is_err());
    }

    #[test]
    fn only_refusals_are_definite() {
        for e in [zk::Error::BadVersion, zk::Error::NoNode, zk::Error::NoAuth] {
            assert!(matches!(classify(&e), Step::Definite(_)), "{e:?}");
        }
        for e in [
            zk::Error::ConnectionLoss,
            zk::Error::SessionExpired,
            zk::Error::Timeout,
            zk::Error::ClientClosed,
            zk::Error::SessionMoved,
        ] {
            assert!(matches!(classify(&e), Step::Unknown(_)), "{e:?}");
        }
        assert_eq!(
            classify(&zk::Error::BadVersion),
            Step::Definite("zookeeper: BadVersion".into())
        );
        assert_eq!(
            zk_name(&zk::Error::UnexpectedErrorCode(-999)),
            "zookeeper: unexpected error code: -999"
        );
    }

    /// Nothing listens: the call fails at connect (nothing was sent), for an update too.
    #[tokio::test]
    async fn an_unreachable_server_is_a_definite_failure() {
        let free = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let c = ZookeeperClient::new(
            vec![Endpoint {
                id: "n1".into(),
                addr,
            }],
            Dialer::Direct,
            ZookeeperConfig::default(),
        );
        let w = Op::Write {
            key: "k".into(),
            value: 1,
        };
        let out = c.call(0, &w, Duration::from_millis(1500)).await;
        assert!(matches!(out, Outcome::Fail { .. }), "{out:?}");
    }
}
