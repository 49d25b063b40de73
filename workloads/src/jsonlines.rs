//! The client of sunder's own protocol: JSON lines over TCP, pipelined.
//!
//! ```text
//!  worker ─┐  call(node, op)            ┌─ Conn to n1 ── writer (one line per request)
//!  worker ─┼─► id, oneshot in pending ──┤               reader task: line → pending[id]
//!  worker ─┘                            └─ Conn to n2 ...
//! ```
//!
//! One connection per node, shared by every worker, many requests in flight; answers may
//! come back in any order and are matched by id. Connections open lazily and reopen after an
//! error. Whether a failed call is `fail` or `info` turns on one question: could the node
//! have received the request? Not connected, or nothing sent: `fail`. Sent and then the
//! connection broke or the time ran out: `info`.

use crate::client::{Client, Endpoint, Outcome, errors};
use crate::dial::Dialer;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use sunder_wire::{Op, Request, Response};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio::time::{Instant, timeout_at};

/// Requests awaiting an answer; `None` once the connection is dead, which also drops every
/// waiting sender so that their callers see the loss.
type Pending = Mutex<Option<HashMap<u64, oneshot::Sender<Response>>>>;

struct Conn {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Arc<Pending>,
    reader: AbortHandle,
}

impl Conn {
    fn is_dead(&self) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    /// Marks the connection dead: its waiting callers learn the connection was lost.
    fn kill(&self) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.reader.abort();
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A pipelined JSON-lines client for a set of nodes. Must be used inside a tokio runtime.
pub struct JsonLinesClient {
    endpoints: Vec<Endpoint>,
    dialer: Dialer,
    conns: Vec<tokio::sync::Mutex<Option<Arc<Conn>>>>,
    next_id: AtomicU64,
}

impl JsonLinesClient {
    pub fn new(endpoints: Vec<Endpoint>) -> Self {
        Self::with_dialer(endpoints, Dialer::Direct)
    }

    /// A client whose connections are made by `dialer` (e.g. inside a namespace).
    pub fn with_dialer(endpoints: Vec<Endpoint>, dialer: Dialer) -> Self {
        let conns = endpoints
            .iter()
            .map(|_| tokio::sync::Mutex::new(None))
            .collect();
        JsonLinesClient {
            endpoints,
            dialer,
            conns,
            next_id: AtomicU64::new(1),
        }
    }

    /// The live connection to `node`, opening one if needed.
    async fn connection(&self, node: usize) -> std::io::Result<Arc<Conn>> {
        let mut slot = self.conns[node].lock().await;
        if let Some(conn) = slot.as_ref().filter(|c| !c.is_dead()) {
            return Ok(conn.clone());
        }
        let ep = &self.endpoints[node];
        let stream = self.dialer.connect(ep.addr).await?;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        let pending: Arc<Pending> = Arc::new(Mutex::new(Some(HashMap::new())));
        let reader =
            tokio::spawn(read_answers(ep.id.clone(), read, pending.clone())).abort_handle();
        let conn = Arc::new(Conn {
            writer: tokio::sync::Mutex::new(write),
            pending,
            reader,
        });
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn call_at(&self, node: usize, op: &Op, deadline: Instant) -> Outcome {
        let fail = |error: String| Outcome::Fail {
            error,
            leader: None,
        };
        let conn = match timeout_at(deadline, self.connection(node)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return fail(format!("{}: {e}", errors::CONNECT)),
            Err(_) => return fail(format!("{}: timed out connecting", errors::CONNECT)),
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match conn
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            Some(map) => map.insert(id, tx),
            None => {
                return fail(format!(
                    "{}: connection closed before sending",
                    errors::SEND
                ));
            }
        };
        let mut line = serde_json::to_vec(&Request { id, op: op.clone() })
            .expect("a request always serialises");
        line.push(b'\n');

        let mut sent = 0;
        let send = async {
            let mut w = conn.writer.lock().await;
            while sent < line.len() {
                match w.write(&line[sent..]).await {
                    Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                    Ok(n) => sent += n,
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        };
        let sent_result = timeout_at(deadline, send).await;
        if !matches!(sent_result, Ok(Ok(()))) {
            // A torn line would corrupt every later request on this connection.
            conn.kill();
            let why = match sent_result {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out sending".to_string(),
            };
            return if sent == 0 {
                fail(format!("{}: {why}", errors::SEND))
            } else {
                Outcome::Info {
                    error: format!("{}: {why} part-way", errors::CONNECTION_LOST),
                }
            };
        }

        match timeout_at(deadline, rx).await {
            Ok(Ok(resp)) => classify(resp),
            Ok(Err(_)) => Outcome::Info {
                error: errors::CONNECTION_LOST.to_string(),
            },
            Err(_) => {
                if let Some(map) = conn
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_mut()
                {
                    map.remove(&id);
                }
                Outcome::Info {
                    error: errors::TIMEOUT.to_string(),
                }
            }
        }
    }
}

impl Client for JsonLinesClient {
    fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    fn call(
        &self,
        node: usize,
        op: &Op,
        timeout: Duration,
    ) -> impl Future<Output = Outcome> + Send {
        let deadline = Instant::now() + timeout;
        self.call_at(node, op, deadline)
    }
}

/// The outcome a node's answer stands for.
fn classify(resp: Response) -> Outcome {
    if resp.ok {
        return match resp.committed {
            Some(at) => Outcome::Committed(at),
            None => Outcome::Ok(resp.value),
        };
    }
    let error = resp.error.unwrap_or_else(|| "unnamed-error".to_string());
    if resp.definite {
        Outcome::Fail {
            error,
            leader: resp.leader,
        }
    } else {
        Outcome::Info { error }
    }
}

/// Routes each answer to its caller until the connection ends, then fails the rest.
async fn read_answers(node: String, read: OwnedReadHalf, pending: Arc<Pending>) {
    let mut lines = BufReader::new(read).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => match serde_json::from_str::<Response>(&line) {
                Ok(resp) => {
                    let tx = pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_mut()
                        .and_then(|m| m.remove(&resp.id));
                    match tx {
                        // The caller may have timed out just now; nothing to tell then.
                        Some(tx) => drop(tx.send(resp)),
                        None => {
                            tracing::debug!(%node, id = resp.id, "answer to a request no longer awaited")
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(%node, "{}: {e}: {line:?}; dropping the connection", errors::PROTOCOL);
                    break;
                }
            },
            Ok(None) => {
                tracing::debug!(%node, "connection closed by the node");
                break;
            }
            Err(e) => {
                tracing::debug!(%node, "connection error: {e}");
                break;
            }
        }
    }
    pending.lock().unwrap_or_else(|p| p.into_inner()).take();
}

impl std::fmt::Debug for JsonLinesClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesClient")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}
