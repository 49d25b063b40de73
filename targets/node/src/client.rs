//! The client protocol server: JSON lines over TCP, many requests in flight per
//! connection, replies written as the core produces them.
//!
//! ```text
//!   socket ─lines─► reader ──(ReqToken{conn,id}, Op)──► submit (to the driver)
//!   socket ◄─lines─ writer ◄── per-connection queue ◄── Replies map ◄── driver
//! ```
//!
//! The driver finds a connection's queue in [`Replies`] by `conn`; when a connection
//! closes it leaves the map, so replies to its requests are dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sunder_wire::{Op, Request, Response, errors};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::line::{Line, LineReader, MAX_CLIENT_LINE, clip};
use crate::protocol::ReqToken;

/// How long a connection whose client stopped sending still gets its replies.
const LINGER: std::time::Duration = std::time::Duration::from_secs(5);

/// Open connections' reply queues, by connection number.
#[derive(Debug, Clone, Default)]
pub struct Replies(Arc<Mutex<HashMap<u64, UnboundedSender<Response>>>>);

impl Replies {
    /// Queues `resp` (its id set from the token) for the connection, if it is still open.
    pub fn send(&self, token: ReqToken, mut resp: Response) {
        resp.id = token.id;
        let map = self.0.lock().expect("replies lock");
        if let Some(tx) = map.get(&token.conn) {
            let _ = tx.send(resp);
        }
    }

    fn open(&self, conn: u64, tx: UnboundedSender<Response>) {
        self.0.lock().expect("replies lock").insert(conn, tx);
    }

    fn close(&self, conn: u64) {
        self.0.lock().expect("replies lock").remove(&conn);
    }
}

/// Accepts client connections for ever. `submit` hands a request to the driver and
/// returns false once the driver has stopped.
pub async fn serve<F>(listener: TcpListener, replies: Replies, submit: F)
where
    F: Fn(ReqToken, Op) -> bool + Clone + Send + Sync + 'static,
{
    let next_conn = Arc::new(AtomicU64::new(1));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let conn = next_conn.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(conn, %peer, "client connected");
                tokio::spawn(connection(stream, conn, replies.clone(), submit.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!("client accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection<F>(stream: TcpStream, conn: u64, replies: Replies, submit: F)
where
    F: Fn(ReqToken, Op) -> bool,
{
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let (tx, mut rx) = unbounded_channel::<Response>();
    replies.open(conn, tx.clone());
    // Replies owed (one per request line) and written, so that a client that shut its
    // sending side is answered in full and then closed, without waiting out LINGER.
    let owed = Arc::new(AtomicU64::new(0));
    let written = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Notify::new());
    let mut writer = {
        let (written, progress) = (written.clone(), progress.clone());
        tokio::spawn(async move {
            let mut wr = BufWriter::new(wr);
            let mut unflushed = 0;
            while let Some(resp) = rx.recv().await {
                let mut line = serde_json::to_string(&resp).expect("responses serialize");
                line.push('\n');
                if wr.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
                unflushed += 1;
                // Flush once the queue is empty: pipelined replies share a write.
                if rx.is_empty() {
                    if wr.flush().await.is_err() {
                        return;
                    }
                    written.fetch_add(std::mem::take(&mut unflushed), Ordering::AcqRel);
                    progress.notify_one();
                }
            }
        })
    };
    let mut lines = LineReader::new(rd, MAX_CLIENT_LINE);
    loop {
        let line = match lines.next().await {
            Ok(Some(Line::Text(l))) => l,
            Ok(Some(Line::NotText)) => {
                tracing::warn!(conn, "client sent a line that is not UTF-8");
                owed.fetch_add(1, Ordering::AcqRel);
                let _ = tx.send(Response::error(0, errors::BAD_REQUEST, true));
                continue;
            }
            Ok(Some(Line::TooLong)) => {
                tracing::warn!(
                    conn,
                    "client sent a line over {MAX_CLIENT_LINE} bytes; closing the connection"
                );
                let _ = tx.send(Response::error(0, errors::BAD_REQUEST, true));
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
                    _ = &mut writer => {}
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
        match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                owed.fetch_add(1, Ordering::AcqRel);
                if !submit(ReqToken { conn, id: req.id }, req.op) {
                    let _ = tx.send(Response::error(req.id, errors::UNAVAILABLE, true));
                    break;
                }
            }
            Err(e) => {
                let id = serde_json::from_str::<Value>(&line)
                    .ok()
                    .and_then(|v| v.get("id")?.as_u64())
                    .unwrap_or(0);
                tracing::warn!(conn, "bad client request {:?}: {e}", clip(&line));
                owed.fetch_add(1, Ordering::AcqRel);
                let _ = tx.send(Response::error(id, errors::BAD_REQUEST, true));
            }
        }
    }
    replies.close(conn);
    tracing::debug!(conn, "client disconnected");
}
