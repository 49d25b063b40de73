//! A tiny node for the client tests: speaks the wire protocol on 127.0.0.1:0, and lets a
//! test decide per request whether to answer (after a delay), stay silent, or hang up.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use sunder_wire::{Request, Response};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::task::JoinSet;

/// What the fake node does with one request.
pub enum Action {
    Reply(Duration, Response),
    Silent,
    /// Closes the connection at once, dropping every answer still owed on it.
    HangUp,
    /// Writes a line that is not a response.
    Garbage,
}

pub type Handler = Arc<dyn Fn(&Request) -> Action + Send + Sync>;

/// A running fake node; stops when dropped.
pub struct FakeNode {
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// The most requests ever awaiting an answer on one connection at once.
    pub max_in_flight: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(handler: Handler) -> FakeNode {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let (c, m) = (connections.clone(), max_in_flight.clone());
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            c.fetch_add(1, Ordering::SeqCst);
            conns.spawn(serve(stream, handler.clone(), m.clone()));
        }
    });
    FakeNode {
        addr,
        connections,
        max_in_flight,
        task,
    }
}

async fn serve(stream: tokio::net::TcpStream, handler: Handler, max: Arc<AtomicUsize>) {
    let (read, write) = stream.into_split();
    let write = Arc::new(Mutex::new(write));
    let in_flight = Arc::new(AtomicUsize::new(0));
    // Dropping this set (on hang-up or end) aborts the answers still owed.
    let mut replies = JoinSet::new();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let req: Request = serde_json::from_str(&line).expect("client sent a bad request");
        match handler(&req) {
            Action::HangUp => return,
            Action::Silent => {}
            Action::Garbage => {
                let _ = write.lock().await.write_all(b"this is not json\n").await;
            }
            Action::Reply(delay, resp) => {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                let (write, in_flight) = (write.clone(), in_flight.clone());
                replies.spawn(async move {
                    tokio::time::sleep(delay).await;
                    let mut out = serde_json::to_vec(&resp).unwrap();
                    out.push(b'\n');
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    let _ = write.lock().await.write_all(&out).await;
                });
            }
        }
    }
}

/// A port nothing listens on (bound, then released).
pub async fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}
