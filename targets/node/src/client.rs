//! The client protocol server: JSON lines over TCP, many requests in flight per
//! connection, replies written as the core produces them.
//!
//! ```text
//!   socket ─lines─► reader ──(ReqToken{conn,id}, Request)──► submit (to the driver, awaits room)
//!     │  (≤ 1 MiB)   └ takes one of MAX_INFLIGHT permits per reply owed
//!   socket ◄─lines─ writer ◄── bounded queue ◄── Replies map ◄── driver (try_send)
//!                    └ gives the permit back once the reply is written
//! ```
//!
//! The driver finds a connection's queue in [`Replies`] by `conn`; when a connection
//! closes it leaves the map, so replies to its requests are dropped.
//!
//! Memory per connection is bounded: a line is at most [`MAX_CLIENT_LINE`] bytes, and a
//! connection may owe at most [`MAX_INFLIGHT`] replies. A client that sends without
//! reading fills its socket, then the writer blocks, the permits run out and the reader
//! stops reading: TCP pushes back on the client instead of the node's memory growing.
//! At most `--max-clients` connections are served at once; more are told `unavailable`
//! and closed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sunder_wire::{Request, Response, errors};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{self, Sender, error::TrySendError};
use tokio::sync::{Notify, Semaphore};

use crate::line::{Line, LineReader, MAX_CLIENT_LINE, clip};
use crate::protocol::ReqToken;

/// Replies one connection may owe (requests read whose replies are not yet written).
pub const MAX_INFLIGHT: usize = 4096;

/// How long a connection whose client stopped sending still gets its replies.
const LINGER: std::time::Duration = std::time::Duration::from_secs(5);

/// Open connections' reply queues, by connection number.
#[derive(Debug, Clone, Default)]
pub struct Replies(Arc<Mutex<HashMap<u64, Sender<Response>>>>);

impl Replies {
    /// Queues `resp` (its id set from the token) for the connection, if it is still open.
    pub fn send(&self, token: ReqToken, mut resp: Response) {
        resp.id = token.id;
        let map = self.0.lock().expect("replies lock");
        if let Some(tx) = map.get(&token.conn) {
            // Never blocks the driver. The queue has room for every reply the connection
            // owes, so it is full only if a core answers one request twice.
            if let Err(TrySendError::Full(r)) = tx.try_send(resp) {
                tracing::warn!(
                    conn = token.conn,
                    id = r.id,
                    "reply queue full; reply dropped"
                );
            }
        }
    }

    fn open(&self, conn: u64, tx: Sender<Response>) {
        self.0.lock().expect("replies lock").insert(conn, tx);
    }

    fn close(&self, conn: u64) {
        self.0.lock().expect("replies lock").remove(&conn);
    }
}

/// Accepts client connections for ever, at most `max_conns` at a time. `submit` hands a
/// request to the driver, waiting while its queue is full, and yields false once the
/// driver has stopped.
pub async fn serve<F, Fut>(listener: TcpListener, replies: Replies, max_conns: usize, submit: F)
where
    F: Fn(ReqToken, Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let next_conn = Arc::new(AtomicU64::new(1));
    let slots = Arc::new(Semaphore::new(max_conns));
    let mut refused = 0u64;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    refused += 1;
                    if refused.is_power_of_two() {
                        tracing::warn!(%peer, refused, "client connection over the cap of {max_conns}; closed");
                    }
                    // One non-blocking attempt to say why; the socket is closed either way.
                    let mut line =
                        serde_json::to_vec(&Response::error(0, errors::UNAVAILABLE, true))
                            .expect("responses serialize");
                    line.push(b'\n');
                    let _ = stream.try_write(&line);
                    continue;
                };
                let conn = next_conn.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(conn, %peer, "client connected");
                let (replies, submit) = (replies.clone(), submit.clone());
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let (rd, wr) = stream.into_split();
                    connection(rd, wr, conn, replies, submit).await;
                    drop(slot);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!("client accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// The request a client line asks for, or the error reply it gets.
// The error is a whole response, made once per bad line and sent at once: its size on the
// stack does not matter.
#[allow(clippy::result_large_err)]
pub fn parse_request(line: &str) -> Result<Request, Response> {
    serde_json::from_str::<Request>(line).map_err(|e| {
        let id = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| v.get("id")?.as_u64())
            .unwrap_or(0);
        tracing::debug!("bad client request {:?}: {e}", clip(line));
        Response::error(id, errors::BAD_REQUEST, true)
    })
}

/// Serves one client connection until it closes. Generic over the two halves so that the
/// fuzz tests drive exactly this code from memory.
pub async fn connection<R, W, F, Fut>(rd: R, wr: W, conn: u64, replies: Replies, submit: F)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
    F: Fn(ReqToken, Request) -> Fut,
    Fut: Future<Output = bool>,
{
    let (tx, mut rx) = mpsc::channel::<Response>(MAX_INFLIGHT + 1);
    replies.open(conn, tx.clone());
    // Replies owed (one per request line) and written, so that a client that shut its
    // sending side is answered in full and then closed, without waiting out LINGER.
    let owed = Arc::new(AtomicU64::new(0));
    let written = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Notify::new());
    let inflight = Arc::new(Semaphore::new(MAX_INFLIGHT));
    let mut writer = {
        let (written, progress, inflight) = (written.clone(), progress.clone(), inflight.clone());
        tokio::spawn(async move {
            let mut wr = BufWriter::new(wr);
            let mut unflushed = 0;
            // A writer that fails closes the permits, which wakes a reader waiting for one.
            let fail = |inflight: &Semaphore| inflight.close();
            while let Some(resp) = rx.recv().await {
                let mut line = serde_json::to_string(&resp).expect("responses serialize");
                line.push('\n');
                if wr.write_all(line.as_bytes()).await.is_err() {
                    return fail(&inflight);
                }
                inflight.add_permits(1);
                unflushed += 1;
                // Flush once the queue is empty: pipelined replies share a write.
                if rx.is_empty() {
                    if wr.flush().await.is_err() {
                        return fail(&inflight);
                    }
                    written.fetch_add(std::mem::take(&mut unflushed), Ordering::AcqRel);
                    progress.notify_one();
                }
            }
        })
    };
    // One permit per reply owed, taken before the request goes anywhere.
    let owe = || async {
        match inflight.acquire().await {
            Ok(p) => {
                p.forget();
                owed.fetch_add(1, Ordering::AcqRel);
                true
            }
            Err(_) => false,
        }
    };
    let mut lines = LineReader::new(rd, MAX_CLIENT_LINE);
    let mut bad = 0u64;
    let mut writer_done = false;
    loop {
        let line = match lines.next().await {
            Ok(Some(Line::Text(l))) => l,
            Ok(Some(Line::NotText)) => {
                tracing::warn!(conn, "client sent a line that is not UTF-8");
                if !owe().await {
                    break;
                }
                let _ = tx.try_send(Response::error(0, errors::BAD_REQUEST, true));
                continue;
            }
            Ok(Some(Line::TooLong)) => {
                tracing::warn!(
                    conn,
                    "client sent a line over {MAX_CLIENT_LINE} bytes; closing the connection"
                );
                if owe().await {
                    let _ = tx.try_send(Response::error(0, errors::BAD_REQUEST, true));
                }
                break;
            }
            Ok(None) => {
                // The client may only have shut its sending side: let the replies it is
                // owed come back (for a while), unless writing shows it is gone.
                let all_written = async {
                    while written.load(Ordering::Acquire) < owed.load(Ordering::Acquire) {
                        progress.notified().await;
                    }
                };
                tokio::select! {
                    _ = all_written => {}
                    _ = &mut writer => writer_done = true,
                    _ = tokio::time::sleep(LINGER) => {}
                }
                break;
            }
            Err(e) => {
                tracing::debug!(conn, "client read failed: {e}");
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        if !owe().await {
            break;
        }
        match parse_request(&line) {
            Ok(req) => {
                let id = req.id;
                if !submit(ReqToken { conn, id }, req).await {
                    let _ = tx.try_send(Response::error(id, errors::UNAVAILABLE, true));
                    break;
                }
            }
            Err(resp) => {
                bad += 1;
                if bad.is_power_of_two() {
                    tracing::warn!(conn, bad, "bad client request {:?}", clip(&line));
                }
                let _ = tx.try_send(resp);
            }
        }
    }
    replies.close(conn);
    drop(tx);
    // The writer finishes what is queued, but a client that never reads must not keep it
    // (and the replies it holds) alive once the connection's slot is given back.
    if !writer_done && tokio::time::timeout(LINGER, &mut writer).await.is_err() {
        writer.abort();
    }
    tracing::debug!(conn, "client disconnected");
}
