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
//!
//! A node's answer is read under a cap ([`MAX_ANSWER_LINE`]): a node that sends an endless
//! line costs the controller at most that much memory, then the connection is dropped and
//! its waiting calls end `info` with an error that names the cap.

use crate::client::{Client, Endpoint, Outcome, errors};
use crate::dial::Dialer;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use sunder_wire::{ClientSig, Op, Request, Response};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio::time::{Instant, timeout_at};

/// Longest answer line a node may send. The biggest answers are `dump`s: about 100 bytes
/// per committed entry (`{"index":1234567,"term":12,"command":{"op":"cas",...},"origin":
/// "n1/12:123456"}`). Raft compacts every 100,000 entries, so its dumps stay near 20 MiB;
/// Paxos keeps every slot, and a 20 s Paxos run at 2,700 ops/s (debug build) committed
/// 17,945 entries, about 1.9 MB: 256 MiB holds some 2.5 million entries, hours of such a
/// run, while a node that misbehaves costs the controller no more than this per connection.
pub const MAX_ANSWER_LINE: usize = 256 << 20;

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
    max_line: usize,
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
            max_line: MAX_ANSWER_LINE,
        }
    }

    /// The same client with another cap on answer lines (tests use a small one).
    pub fn with_max_line(mut self, max_line: usize) -> Self {
        self.max_line = max_line;
        self
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
        let reader = tokio::spawn(read_answers(
            ep.id.clone(),
            read,
            pending.clone(),
            self.max_line,
        ))
        .abort_handle();
        let conn = Arc::new(Conn {
            writer: tokio::sync::Mutex::new(write),
            pending,
            reader,
        });
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn call_at(&self, node: usize, op: &Op, deadline: Instant) -> Outcome {
        match self.exchange(node, op, None, deadline).await {
            Ok(resp) => classify(resp),
            Err(outcome) => outcome,
        }
    }

    /// Sends `op` (with a BFT client's signature, if given) to `node` and returns the
    /// node's answer as it came, or how the call ended without one (`Fail`: never sent;
    /// `Info`: sent, and the connection broke or the deadline passed).
    pub async fn exchange(
        &self,
        node: usize,
        op: &Op,
        auth: Option<ClientSig>,
        deadline: Instant,
    ) -> Result<Response, Outcome> {
        let fail = |error: String| Outcome::Fail {
            error,
            leader: None,
        };
        let conn = match timeout_at(deadline, self.connection(node)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(fail(format!("{}: {e}", errors::CONNECT))),
            Err(_) => return Err(fail(format!("{}: timed out connecting", errors::CONNECT))),
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
                return Err(fail(format!(
                    "{}: connection closed before sending",
                    errors::SEND
                )));
            }
        };
        let mut line = serde_json::to_vec(&Request {
            id,
            op: op.clone(),
            auth,
        })
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
            return Err(if sent == 0 {
                fail(format!("{}: {why}", errors::SEND))
            } else {
                Outcome::Info {
                    error: format!("{}: {why} part-way", errors::CONNECTION_LOST),
                }
            });
        }

        match timeout_at(deadline, rx).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) => Err(Outcome::Info {
                error: errors::CONNECTION_LOST.to_string(),
            }),
            Err(_) => {
                if let Some(map) = conn
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_mut()
                {
                    map.remove(&id);
                }
                Err(Outcome::Info {
                    error: errors::TIMEOUT.to_string(),
                })
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
pub fn classify(resp: Response) -> Outcome {
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
async fn read_answers(node: String, read: OwnedReadHalf, pending: Arc<Pending>, max: usize) {
    let mut reader = BufReader::new(read);
    let mut buf = Vec::new();
    let lost = loop {
        let line = match next_line(&mut reader, &mut buf, max).await {
            Ok(Some(line)) => line,
            Ok(None) => {
                tracing::debug!(%node, "connection closed by the node");
                break None;
            }
            Err(e) => {
                tracing::warn!(%node, "{e}; dropping the connection");
                break Some(e);
            }
        };
        match serde_json::from_slice::<Response>(line) {
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
                let shown = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
                tracing::warn!(%node, "{}: {e}: {shown:?}; dropping the connection", errors::PROTOCOL);
                break None;
            }
        }
    };
    let waiting = pending.lock().unwrap_or_else(|p| p.into_inner()).take();
    // Callers whose answer can no longer come learn why; without a reason, a dropped
    // sender already reads as a lost connection.
    if let (Some(why), Some(waiting)) = (lost, waiting) {
        for (id, tx) in waiting {
            let _ = tx.send(Response::error(id, why.to_string(), false));
        }
    }
}

/// Why the answers on a connection stopped being read.
#[derive(Debug, thiserror::Error)]
enum AnswerError {
    #[error("{lost}: the node sent an answer line over {max} bytes", lost = errors::CONNECTION_LOST)]
    TooLong { max: usize },
    #[error("{lost}: {0}", lost = errors::CONNECTION_LOST)]
    Io(#[from] std::io::Error),
}

/// The next line (without its newline) of at most `max` bytes, in `buf`; `None` at the end
/// of the stream. Never holds more than `max + 1` bytes of a line, however long it is.
async fn next_line<'b, R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    buf: &'b mut Vec<u8>,
    max: usize,
) -> Result<Option<&'b [u8]>, AnswerError> {
    buf.clear();
    let n = (&mut *reader)
        .take(max as u64 + 1)
        .read_until(b'\n', buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > max {
        return Err(AnswerError::TooLong { max });
    }
    // An answer line that got very long once should not pin its memory for the
    // connection's lifetime.
    if buf.capacity() > 1 << 20 && buf.len() < buf.capacity() / 4 {
        buf.shrink_to(1 << 20);
    }
    Ok(Some(&buf[..]))
}

impl std::fmt::Debug for JsonLinesClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesClient")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// What the fake node may send in all: far more than the cap and the socket buffers.
    const ENDLESS: usize = 256 << 20;

    /// Writes the start of an answer and then `x`s without a newline until the client
    /// hangs up or `ENDLESS` bytes went out; returns how many went out.
    async fn endless_answer(s: &mut tokio::net::TcpStream) -> usize {
        let mut req = [0u8; 4096];
        let _ = s.read(&mut req).await.unwrap();
        let mut sent = 0;
        let head = br#"{"id":1,"ok":true,"value":""#;
        s.write_all(head).await.unwrap();
        let chunk = vec![b'x'; 64 << 10];
        while sent < ENDLESS {
            match s.write(&chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => sent += n,
            }
        }
        sent
    }

    #[tokio::test]
    async fn an_endless_answer_line_is_cut_at_the_cap_and_the_call_ends_info() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let node = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let sent = endless_answer(&mut s).await;
            // The client reconnects after the loss; this connection answers properly.
            let (mut s, _) = l.accept().await.unwrap();
            let mut req = [0u8; 4096];
            let _ = s.read(&mut req).await.unwrap();
            let id: Request =
                serde_json::from_slice(&req[..req.iter().position(|b| *b == b'\n').unwrap()])
                    .unwrap();
            let mut a = serde_json::to_vec(&Response::ok(id.id, 7.into())).unwrap();
            a.push(b'\n');
            s.write_all(&a).await.unwrap();
            let _ = s.read(&mut req).await;
            sent
        });
        let cap = 1 << 20;
        let client = JsonLinesClient::new(vec![Endpoint {
            id: "n1".into(),
            addr,
        }])
        .with_max_line(cap);
        let op = Op::Read { key: "k".into() };
        let out = client.call(0, &op, Duration::from_secs(60)).await;
        match &out {
            Outcome::Info { error } => assert!(
                error.starts_with(errors::CONNECTION_LOST) && error.contains("over 1048576 bytes"),
                "{error}"
            ),
            other => panic!("expected info, got {other:?}"),
        }
        assert_eq!(
            client.call(0, &op, Duration::from_secs(60)).await,
            Outcome::Ok(7.into())
        );
        drop(client);
        let sent = node.await.unwrap();
        // The client stopped reading at the cap: what got out is the cap plus what the two
        // sockets' buffers hold, nowhere near the 256 MiB the node would have sent.
        assert!(sent < 64 << 20, "the node got {sent} bytes out");
        assert!(sent > cap, "{sent}");
    }

    #[tokio::test]
    async fn lines_under_the_cap_pass_and_the_buffer_stays_small() {
        let data: Vec<u8> = [b"ab\r\n".as_slice(), &vec![b'y'; 3 << 20], b"\n", b"last"].concat();
        let mut r = BufReader::new(&data[..]);
        let mut buf = Vec::new();
        assert_eq!(
            next_line(&mut r, &mut buf, 4 << 20).await.unwrap(),
            Some(&b"ab\r"[..])
        );
        assert_eq!(
            next_line(&mut r, &mut buf, 4 << 20)
                .await
                .unwrap()
                .unwrap()
                .len(),
            3 << 20
        );
        assert_eq!(
            next_line(&mut r, &mut buf, 4 << 20).await.unwrap(),
            Some(&b"last"[..])
        );
        assert!(buf.capacity() <= 1 << 20, "{}", buf.capacity());
        assert!(
            next_line(&mut r, &mut buf, 4 << 20)
                .await
                .unwrap()
                .is_none()
        );
        let mut r = BufReader::new(&data[4..]);
        assert!(matches!(
            next_line(&mut r, &mut buf, 1 << 20).await,
            Err(AnswerError::TooLong { max: 1048576 })
        ));
    }
}
