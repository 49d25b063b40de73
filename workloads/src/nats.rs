//! The NATS adapter: register operations on a JetStream key-value bucket, through the
//! `async-nats` client, one client connection per node.
//!
//! ```text
//!  Op::Write{k,v}      ─► Store::put(k, "v")                      PUB $KV.<bucket>.k, await PubAck
//!  Op::Read{k}         ─► reads = "leader": STREAM.MSG.GET (last for $KV.<bucket>.k), the stream leader answers
//!                         reads = "direct": DIRECT.GET (last for the subject), any replica answers
//!  Op::Cas{k,from,to}  ─► leader read of k: its value and revision; value ≠ from ─► fail
//!                         Store::update(k, "to", revision)   (Nats-Expected-Last-Subject-Sequence)
//! ```
//!
//! Values are decimal integers stored as text. The bucket (stream `KV_<bucket>` configured
//! as a KV bucket: history 1, file storage, `replicas` copies, direct gets allowed, rollups
//! allowed, deletes denied, discard new) is created by the adapter on its first call,
//! idempotently (creating a stream with the same configuration again is no error), and
//! retried until `setup_timeout` while JetStream has no meta leader yet: the spec format
//! has no hook to run once the cluster is up, and only the adapter knows the bucket.
//!
//! Each node's client talks to that node only: `ignore_discovered_servers`, so the client
//! never learns (or reconnects to) another server of the cluster, and the spec starts the
//! servers with `--no_advertise` as well. A client of a node cut off by a partition stays
//! on it. With `--net netns` async-nats cannot make its sockets in the hub namespace, so it
//! connects through a [`Relay`].
//!
//! Outcomes (as the etcd adapter's: never retried, never a guessed `ok`):
//! - a call while the client is not connected (reconnecting after a kill) is `fail`:
//!   nothing is handed to the client, which would otherwise send it after reconnecting;
//! - writes: a PubAck is `ok`; "no responders" (no server had the stream's subject, so
//!   nothing was stored), a publish the client refused to send, and JetStream's wrong last
//!   sequence on an update are `fail`; a timeout, a lost connection and any other JetStream
//!   error are `info`;
//! - reads: a message is `ok` with its value, "no message" is `ok null`; a timeout, a lost
//!   connection, no responders or an error are `fail` (a read changes nothing); a value that
//!   is not an integer is `info` with the raw answer.
//! - cas: a failure of its read (or a value other than `from`, or no value) is `fail`
//!   (nothing was written); the update then goes as a write.

use crate::client::{Client, Endpoint, Outcome, errors};
use crate::dial::Dialer;
use crate::relay::Relay;
use async_nats::connection::State;
use async_nats::jetstream;
use async_nats::jetstream::context::{ContextBuilder, PublishError, PublishErrorKind};
use async_nats::jetstream::kv::{self, PutErrorKind, UpdateErrorKind};
use async_nats::jetstream::stream::{DirectGetErrorKind, LastRawMessageErrorKind};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::time::Duration;
use sunder_wire::Op;
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// The bucket's name when the spec gives none.
pub const DEFAULT_BUCKET: &str = "sunder";

/// How long setting up a node's client may take when the spec does not say.
pub const DEFAULT_SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// NATS allows at most 5 replicas of a stream.
pub const MAX_REPLICAS: usize = 5;

/// The JetStream context's own timeout: longer than any operation's, whose deadline
/// (the test's `--op-timeout`, or `timeout`) is what ends a call.
const JETSTREAM_TIMEOUT: Duration = Duration::from_secs(600);

/// The header JetStream KV marks deletes and purges with.
const KV_OPERATION: &str = "KV-Operation";

/// How reads are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatsReads {
    /// `$JS.API.STREAM.MSG.GET`: answered by the stream's leader only.
    #[default]
    Leader,
    /// `$JS.API.DIRECT.GET`: answered by any replica, the connected server's own first;
    /// documented as possibly missing a message just written.
    Direct,
}

/// The `[client]` settings of the NATS adapter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// `leader` (default) or `direct`.
    #[serde(default)]
    pub reads: NatsReads,
    /// The KV bucket's name (letters, digits, `-` and `_`).
    #[serde(default = "default_bucket", deserialize_with = "de_bucket")]
    pub bucket: String,
    /// Copies of every entry, 1 to 5; by default one per node, at most 5.
    #[serde(default, deserialize_with = "de_replicas")]
    pub replicas: Option<usize>,
    /// When set, every call waits this long instead of the test's operation timeout.
    #[serde(default, deserialize_with = "crate::adapter::de_duration")]
    pub timeout: Option<Duration>,
    /// How long the first call to a node may spend connecting and creating the bucket
    /// (default 10 s).
    #[serde(default, deserialize_with = "crate::adapter::de_duration")]
    pub setup_timeout: Option<Duration>,
}

fn default_bucket() -> String {
    DEFAULT_BUCKET.to_string()
}

fn de_bucket<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(name)
    } else {
        Err(serde::de::Error::custom(format!(
            "bucket {name:?}: 1 to 64 letters, digits, '-' or '_'"
        )))
    }
}

fn de_replicas<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let n = i64::deserialize(d)?;
    match usize::try_from(n) {
        Ok(n @ 1..=MAX_REPLICAS) => Ok(Some(n)),
        _ => Err(serde::de::Error::custom(format!(
            "replicas = {n}: NATS keeps 1 to {MAX_REPLICAS} copies"
        ))),
    }
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            reads: NatsReads::default(),
            bucket: default_bucket(),
            replicas: None,
            timeout: None,
            setup_timeout: None,
        }
    }
}

/// One node's connection and its handle on the bucket.
struct NodeConn {
    client: async_nats::Client,
    store: kv::Store,
    /// Kept alive as long as the client uses it (`--net netns` only).
    _relay: Option<Relay>,
}

impl std::fmt::Debug for NodeConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConn")
            .field("state", &self.client.connection_state())
            .field("bucket", &self.store.name)
            .finish()
    }
}

/// A client of a NATS cluster's JetStream key-value store. Needs a tokio runtime.
#[derive(Debug)]
pub struct NatsClient {
    endpoints: Vec<Endpoint>,
    dialer: Dialer,
    cfg: NatsConfig,
    /// Set up on the first call to each node; a failed setup is tried again next call.
    nodes: Vec<OnceCell<NodeConn>>,
    /// Set once the bucket exists (created through whichever node came first).
    bucket: OnceCell<()>,
}

impl NatsClient {
    /// A client for `endpoints`; connects nothing until the first call.
    pub fn new(endpoints: Vec<Endpoint>, dialer: Dialer, cfg: NatsConfig) -> NatsClient {
        let nodes = endpoints.iter().map(|_| OnceCell::new()).collect();
        NatsClient {
            endpoints,
            dialer,
            cfg,
            nodes,
            bucket: OnceCell::new(),
        }
    }

    pub fn config(&self) -> &NatsConfig {
        &self.cfg
    }

    /// The bucket's replica count: the setting, else one per node (at most 5).
    pub fn replicas(&self) -> usize {
        self.cfg
            .replicas
            .unwrap_or_else(|| self.endpoints.len().clamp(1, MAX_REPLICAS))
    }

    async fn node(&self, node: usize) -> Result<&NodeConn, String> {
        self.nodes[node].get_or_try_init(|| self.setup(node)).await
    }

    /// Connects to one node (through a relay under netns), makes sure the bucket exists
    /// and binds to it.
    async fn setup(&self, node: usize) -> Result<NodeConn, String> {
        let timeout = self.cfg.setup_timeout.unwrap_or(DEFAULT_SETUP_TIMEOUT);
        let deadline = Instant::now() + timeout;
        let target = self.endpoints[node].addr;
        let id = &self.endpoints[node].id;
        let relay = match &self.dialer {
            Dialer::Direct => None,
            Dialer::Netns(_) => Some(
                Relay::start(target, self.dialer.clone())
                    .await
                    .map_err(|e| format!("{}: loopback relay to {id}: {e}", errors::CONNECT))?,
            ),
        };
        let addr = relay.as_ref().map_or(target, Relay::local_addr);
        let options = async_nats::ConnectOptions::new()
            .name(format!("sunder-{id}"))
            .ignore_discovered_servers()
            .connection_timeout(Duration::from_secs(2))
            .ping_interval(Duration::from_secs(2))
            .reconnect_delay_callback(|_| Duration::from_millis(250))
            .max_reconnects(None);
        let client = match tokio::time::timeout_at(
            deadline,
            options.connect(format!("nats://{addr}")),
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(format!("{}: {id} ({target}): {e}", errors::CONNECT)),
            Err(_) => return Err(format!("{}: {id} ({target}): timed out", errors::CONNECT)),
        };
        let js = ContextBuilder::new()
            .timeout(JETSTREAM_TIMEOUT)
            .build(client.clone());
        self.bucket
            .get_or_try_init(|| self.create_bucket(&js, deadline))
            .await?;
        let store = retry_until(deadline, "bind to the bucket", || {
            js.get_key_value(self.cfg.bucket.clone())
        })
        .await?;
        Ok(NodeConn {
            client,
            store,
            _relay: relay,
        })
    }

    /// Creates the bucket's stream, or finds it there with the same configuration.
    /// Retried while JetStream cannot answer yet (no meta leader at start-up).
    ///
    /// Not `create_key_value`: that asks for the account's information first, whose answer
    /// from a 2.9 server lacks fields async-nats 0.51 requires. The stream is configured
    /// as that call would configure it.
    async fn create_bucket(
        &self,
        js: &jetstream::Context,
        deadline: Instant,
    ) -> Result<(), String> {
        let bucket = &self.cfg.bucket;
        let config = jetstream::stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            // History 1: only the latest revision of each key is kept.
            max_messages_per_subject: 1,
            storage: jetstream::stream::StorageType::File,
            num_replicas: self.replicas(),
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: jetstream::stream::DiscardPolicy::New,
            ..jetstream::stream::Config::default()
        };
        retry_until(deadline, "create the bucket", || {
            js.create_stream(config.clone())
        })
        .await
        .map(|_| ())
    }

    async fn call_at(&self, node: usize, op: &Op, timeout: Duration) -> Outcome {
        let conn = match self.node(node).await {
            Ok(c) => c,
            Err(error) => {
                return Outcome::Fail {
                    error,
                    leader: None,
                };
            }
        };
        let state = conn.client.connection_state();
        if state != State::Connected {
            return Outcome::Fail {
                error: format!("{}: the client is {state}", errors::CONNECT),
                leader: None,
            };
        }
        let deadline = Instant::now() + timeout;
        match op {
            Op::Read { key } if key != crate::config::SET_KEY => {
                match self.read(conn, key, self.cfg.reads, deadline).await {
                    Read::Value(v, _) => Outcome::Ok(v),
                    Read::Failed(error) => Outcome::Fail {
                        error,
                        leader: None,
                    },
                    Read::Unreadable(error) => Outcome::Info { error },
                }
            }
            Op::Write { key, value } => {
                let put = conn.store.put(key, value.to_string().into());
                match tokio::time::timeout_at(deadline, put).await {
                    Err(_) => info(errors::TIMEOUT),
                    Ok(Ok(_)) => Outcome::Ok(Value::Null),
                    Ok(Err(e)) => match e.kind() {
                        PutErrorKind::InvalidKey | PutErrorKind::Publish => Outcome::Fail {
                            error: format!("{}: {e}", errors::SEND),
                            leader: None,
                        },
                        PutErrorKind::Ack => publish_outcome(source_publish(&e), &e),
                    },
                }
            }
            Op::Cas { key, from, to } => self.cas(conn, key, *from, *to, deadline).await,
            other => Outcome::Fail {
                error: format!(
                    "unsupported-op: the nats adapter does not do `{}`",
                    other.name()
                ),
                leader: None,
            },
        }
    }

    async fn read(&self, conn: &NodeConn, key: &str, mode: NatsReads, deadline: Instant) -> Read {
        let subject = format!("{}{key}", conn.store.prefix);
        let stream = &conn.store.stream;
        let answer = match mode {
            NatsReads::Leader => {
                let get = stream.get_last_raw_message_by_subject(&subject);
                match tokio::time::timeout_at(deadline, get).await {
                    Err(_) => return Read::Failed(errors::TIMEOUT.into()),
                    Ok(Ok(m)) => Some(m),
                    Ok(Err(e)) if e.kind() == LastRawMessageErrorKind::NoMessageFound => None,
                    Ok(Err(e)) => return Read::Failed(format!("read-failed: {e}")),
                }
            }
            NatsReads::Direct => {
                let get = stream.direct_get_last_for_subject(subject.as_str());
                match tokio::time::timeout_at(deadline, get).await {
                    Err(_) => return Read::Failed(errors::TIMEOUT.into()),
                    Ok(Ok(m)) => Some(m),
                    Ok(Err(e)) if e.kind() == DirectGetErrorKind::NotFound => None,
                    Ok(Err(e)) => return Read::Failed(format!("read-failed: {e}")),
                }
            }
        };
        match answer {
            None => Read::Value(Value::Null, None),
            Some(m) => entry_value(
                m.headers.get(KV_OPERATION).map(|v| v.as_str()),
                &m.payload,
                m.sequence,
            ),
        }
    }

    async fn cas(
        &self,
        conn: &NodeConn,
        key: &str,
        from: i64,
        to: i64,
        deadline: Instant,
    ) -> Outcome {
        let mismatch = || Outcome::Fail {
            error: sunder_wire::errors::CAS_MISMATCH.to_string(),
            leader: None,
        };
        // The revision to update from; read at the leader whatever `reads` says, since a
        // stale revision could only make the update fail.
        let revision = match self.read(conn, key, NatsReads::Leader, deadline).await {
            Read::Value(Value::Number(n), Some(rev)) if n.as_i64() == Some(from) => rev,
            Read::Value(..) => return mismatch(),
            Read::Failed(error) | Read::Unreadable(error) => {
                return Outcome::Fail {
                    error: format!("cas read: {error}"),
                    leader: None,
                };
            }
        };
        let update = conn.store.update(key, to.to_string().into(), revision);
        match tokio::time::timeout_at(deadline, update).await {
            Err(_) => info(errors::TIMEOUT),
            Ok(Ok(_)) => Outcome::Ok(Value::Null),
            Ok(Err(e)) => match e.kind() {
                UpdateErrorKind::WrongLastRevision => mismatch(),
                UpdateErrorKind::InvalidKey => Outcome::Fail {
                    error: format!("{}: {e}", errors::SEND),
                    leader: None,
                },
                UpdateErrorKind::TimedOut => info(errors::TIMEOUT),
                UpdateErrorKind::Other => publish_outcome(source_publish(&e), &e),
            },
        }
    }
}

impl Client for NatsClient {
    fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    fn call(
        &self,
        node: usize,
        op: &Op,
        timeout: Duration,
    ) -> impl Future<Output = Outcome> + Send {
        self.call_at(node, op, self.cfg.timeout.unwrap_or(timeout))
    }
}

/// What a read found.
#[derive(Debug, PartialEq)]
enum Read {
    /// The value (`null`: no such key) and the entry's revision, if any.
    Value(Value, Option<u64>),
    /// No answer or an error: nothing is known.
    Failed(String),
    /// An answer that is not a value sunder wrote.
    Unreadable(String),
}

/// The register value of a KV entry: its stream message's `KV-Operation` header, payload
/// and sequence (the entry's revision).
fn entry_value(operation: Option<&str>, payload: &[u8], revision: u64) -> Read {
    if let Some(op) = operation {
        // DEL and PURGE mark a deleted key; sunder never deletes, but a reader must not
        // take the marker for a value.
        return match op {
            "DEL" | "PURGE" => Read::Value(Value::Null, Some(revision)),
            other => Read::Unreadable(format!(
                "{}: unknown {KV_OPERATION} {other:?} at revision {revision}",
                errors::PROTOCOL,
            )),
        };
    }
    let text = String::from_utf8_lossy(payload);
    match text.parse::<i64>() {
        Ok(n) => Read::Value(Value::from(n), Some(revision)),
        Err(_) => Read::Unreadable(format!(
            "{}: value is not an integer: {:?}",
            errors::PROTOCOL,
            text.chars().take(200).collect::<String>()
        )),
    }
}

fn info(error: &str) -> Outcome {
    Outcome::Info {
        error: error.to_string(),
    }
}

/// The `PublishError` under a KV error, if that is what it wraps.
fn source_publish<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a PublishError> {
    e.source().and_then(|s| s.downcast_ref::<PublishError>())
}

/// The outcome of an update whose PubAck did not come back as a success. Only answers
/// that say nothing was stored are `fail`.
fn publish_outcome(publish: Option<&PublishError>, whole: &dyn std::fmt::Display) -> Outcome {
    let Some(p) = publish else {
        return Outcome::Info {
            error: format!("{whole}"),
        };
    };
    match p.kind() {
        // A 503 "no responders": no server had interest in the subject, so no stream
        // received the message.
        PublishErrorKind::StreamNotFound => Outcome::Fail {
            error: format!("no-responders: {p}"),
            leader: None,
        },
        PublishErrorKind::WrongLastSequence => Outcome::Fail {
            error: sunder_wire::errors::CAS_MISMATCH.to_string(),
            leader: None,
        },
        // Refused before sending.
        PublishErrorKind::MaxAckPending | PublishErrorKind::MaxPayloadExceeded => Outcome::Fail {
            error: format!("{}: {p}", errors::SEND),
            leader: None,
        },
        PublishErrorKind::TimedOut => info(errors::TIMEOUT),
        PublishErrorKind::BrokenPipe => Outcome::Info {
            error: format!("{}: {p}", errors::CONNECTION_LOST),
        },
        _ => Outcome::Info {
            error: format!("{whole}"),
        },
    }
}

/// Tries `attempt` every 250 ms until it succeeds or `deadline` passes; the error is the
/// last one seen.
async fn retry_until<T, E, F, Fut>(
    deadline: Instant,
    what: &str,
    mut attempt: F,
) -> Result<T, String>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut last = String::from("timed out");
    loop {
        match tokio::time::timeout_at(deadline, attempt()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => {}
        }
        if Instant::now() + Duration::from_millis(250) >= deadline {
            return Err(format!("setup-failed: could not {what}: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<NatsConfig, serde_json::Error> {
        serde_json::from_str(s)
    }

    #[test]
    fn settings_parse_with_defaults_and_bad_ones_are_refused() {
        assert_eq!(parse("{}").unwrap(), NatsConfig::default());
        let c = parse(r#"{"reads":"direct","bucket":"b-1","replicas":3,"timeout":"2s"}"#).unwrap();
        assert_eq!(c.reads, NatsReads::Direct);
        assert_eq!(c.bucket, "b-1");
        assert_eq!(c.replicas, Some(3));
        assert_eq!(c.timeout, Some(Duration::from_secs(2)));
        for bad in [
            r#"{"reads":"stale"}"#,
            r#"{"bucket":"a.b"}"#,
            r#"{"bucket":""}"#,
            r#"{"replicas":0}"#,
            r#"{"replicas":6}"#,
            r#"{"setup_timeout":"soon"}"#,
            r#"{"read":"direct"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn replicas_default_to_one_per_node_at_most_five() {
        let eps = |n: usize| {
            (1..=n)
                .map(|i| Endpoint {
                    id: format!("n{i}"),
                    addr: "127.0.0.1:1".parse().unwrap(),
                })
                .collect::<Vec<_>>()
        };
        let c = |n, r| {
            NatsClient::new(
                eps(n),
                Dialer::Direct,
                NatsConfig {
                    replicas: r,
                    ..NatsConfig::default()
                },
            )
            .replicas()
        };
        assert_eq!(c(3, None), 3);
        assert_eq!(c(7, None), 5);
        assert_eq!(c(1, None), 1);
        assert_eq!(c(5, Some(1)), 1);
    }

    #[test]
    fn entries_are_integers_deletes_are_absent_and_anything_else_is_unreadable() {
        assert_eq!(
            entry_value(None, b"17", 42),
            Read::Value(Value::from(17), Some(42))
        );
        assert_eq!(
            entry_value(Some("DEL"), b"", 42),
            Read::Value(Value::Null, Some(42))
        );
        assert!(matches!(
            entry_value(None, b"seventeen", 42),
            Read::Unreadable(e) if e.contains("seventeen")
        ));
        assert!(matches!(
            entry_value(Some("MERGE"), b"1", 42),
            Read::Unreadable(_)
        ));
    }

    #[test]
    fn only_answers_that_store_nothing_are_failures() {
        let e = |k| PublishError::new(k);
        let whole = "update failed";
        let fail = |o: Outcome| matches!(o, Outcome::Fail { .. });
        assert!(fail(publish_outcome(
            Some(&e(PublishErrorKind::StreamNotFound)),
            &whole
        )));
        assert_eq!(
            publish_outcome(Some(&e(PublishErrorKind::WrongLastSequence)), &whole),
            Outcome::Fail {
                error: "cas-mismatch".into(),
                leader: None
            }
        );
        for k in [
            PublishErrorKind::TimedOut,
            PublishErrorKind::BrokenPipe,
            PublishErrorKind::Other,
            PublishErrorKind::WrongLastMessageId,
        ] {
            assert!(
                matches!(publish_outcome(Some(&e(k)), &whole), Outcome::Info { .. }),
                "{k:?}"
            );
        }
        assert_eq!(
            publish_outcome(None, &whole),
            Outcome::Info {
                error: whole.into()
            }
        );
    }

    #[tokio::test]
    async fn a_node_that_is_not_there_fails_without_sending() {
        // A port that was free a moment ago.
        let free = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let c = NatsClient::new(
            vec![Endpoint {
                id: "n1".into(),
                addr: free,
            }],
            Dialer::Direct,
            NatsConfig {
                setup_timeout: Some(Duration::from_secs(2)),
                ..NatsConfig::default()
            },
        );
        let o = c
            .call(
                0,
                &Op::Write {
                    key: "k1".into(),
                    value: 1,
                },
                Duration::from_secs(1),
            )
            .await;
        assert!(
            matches!(&o, Outcome::Fail { error, .. } if error.starts_with("connect-failed")),
            "{o:?}"
        );
    }
}
