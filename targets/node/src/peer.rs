//! The peer transport: one outgoing connection per peer, dialled by this node, and the
//! connections peers dialled to us, on which we only listen.
//!
//! ```text
//!   driver ─PeerSender::send─► [bounded queue] ─► sender task ─dial─► --peer ADDR (or relay)
//!                                                            {"hello":"n1"} then messages
//!   --peer-listen ◄─ accepted connections ─► first line names the peer ─► deliver(from, msg)
//!                   (at most --max-peer-conns)  (≤ 4 KiB, within 10 s)    (lines ≤ 256 MiB)
//! ```
//!
//! Until its hello names a member, a connection is a stranger: its first line may be
//! [`MAX_HELLO_LINE`] bytes and must come within [`HELLO_TIMEOUT`]; a hello naming a
//! non-member closes it. Only then may lines be as long as a snapshot ([`MAX_PEER_LINE`]).
//!
//! Sending and receiving on different connections lets a relay in between cut one
//! direction only. Messages are JSON lines. A peer that cannot be reached loses its
//! messages (the protocols retransmit): a full queue refuses new ones, so a dead peer
//! cannot make memory grow, and messages older than [`MAX_AGE`] when a connection comes
//! up are discarded rather than delivered in a stale burst. Younger ones survive a redial,
//! so a peer that starts a moment after us still hears our first messages.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

use crate::line::{Line, LineReader, MAX_HELLO_LINE, MAX_PEER_LINE, clip};
use crate::protocol::NodeId;

/// Messages waiting for one peer's connection.
pub const QUEUE: usize = 4096;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// Messages that waited longer than this for a connection are dropped.
pub const MAX_AGE: Duration = Duration::from_secs(2);
/// A connection that names no sender within this long is closed, so that silent
/// connections cannot hold the connection slots.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// A write that cannot finish in this long means the path is dead; redial.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(serde::Serialize, serde::Deserialize)]
struct Hello {
    hello: NodeId,
}

/// The driver's handle on one peer's outgoing queue.
#[derive(Debug, Clone)]
pub struct PeerSender<M> {
    tx: mpsc::Sender<(Instant, M)>,
}

impl<M> PeerSender<M> {
    /// Queues a message without waiting; false when the queue is full (it is dropped).
    pub fn send(&self, msg: M) -> bool {
        self.tx.try_send((Instant::now(), msg)).is_ok()
    }
}

/// Starts the sender task for one peer.
pub fn spawn_sender<M>(me: NodeId, peer: NodeId, addr: SocketAddr) -> PeerSender<M>
where
    M: Serialize + Send + 'static,
{
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(sender(me, peer, addr, rx));
    PeerSender { tx }
}

type Queue<M> = mpsc::Receiver<(Instant, M)>;

async fn sender<M: Serialize>(me: NodeId, peer: NodeId, addr: SocketAddr, mut rx: Queue<M>) {
    let mut backoff = BACKOFF_MIN;
    let mut logged_down = false;
    loop {
        match tokio::time::timeout(WRITE_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                logged_down = false;
                tracing::debug!(%peer, %addr, "connected to peer");
                let since = Instant::now();
                if !connected(&me, stream, &mut rx).await {
                    return;
                }
                tracing::debug!(%peer, %addr, "lost connection to peer");
                // A relay may accept and at once hang up while its far side is down: only
                // a connection that lasted earns a quick redial.
                if since.elapsed() > BACKOFF_MAX {
                    backoff = BACKOFF_MIN;
                }
            }
            Ok(Err(e)) if !logged_down => {
                tracing::debug!(%peer, %addr, "cannot reach peer: {e}");
                logged_down = true;
            }
            _ => {}
        }
        if rx.is_closed() && rx.is_empty() {
            return;
        }
        relative_sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Waits `d` with a relative sleep on a blocking thread rather than a tokio timer. Clock
/// faults move CLOCK_MONOTONIC under the node (libfaketime), and tokio's timers run on it:
/// a redial timer set while the clock was bumped ahead would wait out the whole bump once
/// the clock is set back, leaving the link down for minutes. A relative sleep does not.
async fn relative_sleep(d: Duration) {
    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(d)).await;
}

/// Writes queued messages until the connection fails (false: the queue closed, stop).
async fn connected<M: Serialize>(me: &NodeId, stream: TcpStream, rx: &mut Queue<M>) -> bool {
    let _ = stream.set_nodelay(true);
    let (mut rd, wr) = stream.into_split();
    let mut wr = BufWriter::new(wr);
    let mut hello = serde_json::to_string(&Hello { hello: me.clone() }).expect("hello serializes");
    hello.push('\n');
    if write(&mut wr, hello.as_bytes()).await.is_err() {
        return true;
    }
    // The peer never writes on this connection; a read that returns means it was closed
    // (a relay cut it, the peer died), which we learn at once instead of on the next write.
    let mut scratch = [0u8; 64];
    loop {
        let first = tokio::select! {
            m = rx.recv() => match m {
                Some(m) => m,
                None => return false,
            },
            _ = rd.read(&mut scratch) => return true,
        };
        let mut buf = Vec::new();
        let mut item = Some(first);
        for _ in 0..256 {
            let Some((queued, m)) = item.take().or_else(|| rx.try_recv().ok()) else {
                break;
            };
            if queued.elapsed() <= MAX_AGE {
                serde_json::to_writer(&mut buf, &m).expect("peer messages serialize");
                buf.push(b'\n');
            }
        }
        if buf.is_empty() {
            continue;
        }
        if write(&mut wr, &buf).await.is_err() {
            return true;
        }
    }
}

async fn write(wr: &mut BufWriter<OwnedWriteHalf>, buf: &[u8]) -> std::io::Result<()> {
    let fut = async {
        wr.write_all(buf).await?;
        wr.flush().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, fut).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "peer write timed out",
        )),
    }
}

/// Accepts peers' connections for ever, at most `max_conns` at a time, and hands each
/// message to `deliver`, which returns false once the driver has stopped.
pub async fn serve<M, F>(listener: TcpListener, members: Vec<NodeId>, max_conns: usize, deliver: F)
where
    M: DeserializeOwned + Send + 'static,
    F: Fn(NodeId, M) -> bool + Clone + Send + Sync + 'static,
{
    let slots = Arc::new(Semaphore::new(max_conns));
    let mut refused = 0u64;
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                // Over the cap: close at once rather than queue, so that a flood of
                // connections costs a file descriptor for a moment, not memory.
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    refused += 1;
                    if refused.is_power_of_two() {
                        tracing::warn!(%addr, refused, "peer connection over the cap of {max_conns}; closed");
                    }
                    continue;
                };
                let (members, deliver) = (members.clone(), deliver.clone());
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    incoming(stream, &addr.to_string(), &members, deliver).await;
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!("peer accept failed: {e}");
                tokio::time::sleep(BACKOFF_MIN).await;
            }
        }
    }
}

/// Why the first line of a peer connection was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HelloError {
    #[error("no hello within {HELLO_TIMEOUT:?}")]
    Timeout,
    #[error("the connection ended before a hello")]
    Ended,
    #[error("first line over {MAX_HELLO_LINE} bytes")]
    TooLong,
    #[error("first line is not UTF-8")]
    NotText,
    #[error("first line is not a hello ({0})")]
    Malformed(String),
    #[error("hello from {0:?}, which is not a member")]
    NotMember(String),
}

/// The sender named by a peer connection's first line, if it is a member.
pub fn parse_hello(line: &str, members: &[NodeId]) -> Result<NodeId, HelloError> {
    match serde_json::from_str::<Hello>(line) {
        Ok(h) if members.contains(&h.hello) => Ok(h.hello),
        Ok(h) => Err(HelloError::NotMember(clip(&h.hello))),
        Err(e) => Err(HelloError::Malformed(format!("{:?}: {e}", clip(line)))),
    }
}

/// One peer connection's receiving side: a hello (under a small cap and a time limit),
/// then messages (under the big cap) for `deliver`. Generic over the stream so that the
/// fuzz tests drive exactly this code from memory.
pub async fn incoming<R, M, F>(stream: R, addr: &str, members: &[NodeId], deliver: F)
where
    R: AsyncRead + Unpin,
    M: DeserializeOwned,
    F: Fn(NodeId, M) -> bool,
{
    let mut lines = LineReader::new(stream, MAX_HELLO_LINE);
    let first = match tokio::time::timeout(HELLO_TIMEOUT, lines.next()).await {
        Err(_) => Err(HelloError::Timeout),
        Ok(Ok(Some(Line::Text(l)))) => parse_hello(&l, members),
        Ok(Ok(Some(Line::TooLong))) => Err(HelloError::TooLong),
        Ok(Ok(Some(Line::NotText))) => Err(HelloError::NotText),
        Ok(Ok(None) | Err(_)) => Err(HelloError::Ended),
    };
    let from = match first {
        Ok(from) => from,
        Err(HelloError::Ended) => return,
        Err(e) => {
            tracing::warn!(%addr, "peer connection refused: {e}; closing");
            return;
        }
    };
    lines.set_max(MAX_PEER_LINE);
    let mut undecodable = 0u64;
    loop {
        match lines.next().await {
            Ok(Some(Line::Text(line))) => match serde_json::from_str::<M>(&line) {
                Ok(msg) => {
                    if !deliver(from.clone(), msg) {
                        return;
                    }
                }
                Err(e) => {
                    undecodable += 1;
                    if undecodable.is_power_of_two() {
                        tracing::warn!(%from, undecodable, "undecodable peer message {:?}: {e}", clip(&line));
                    }
                }
            },
            Ok(Some(bad)) => {
                tracing::warn!(%from, "peer sent {bad:?}; closing the connection");
                return;
            }
            Ok(None) | Err(_) => return,
        }
    }
}
