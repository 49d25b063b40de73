//! HTTP/1.1 to one node: a bounded pool of keep-alive connections made by a [`Dialer`].
//!
//! ```text
//!  call ─► permit (≤ max connections) ─► idle connection, or dial + handshake ─► request
//!                                              ▲                                   │
//!                                              └──── back to idle when it answered ┘
//! ```
//!
//! An HTTP/1.1 connection carries one request at a time, so concurrency needs connections:
//! the pool opens them on demand up to a bound and keeps them open between calls. The
//! framing (Content-Length, chunked bodies, trailers) is hyper's low-level
//! `client::conn::http1`, which takes any stream, so connections made inside a network
//! namespace work the same.
//!
//! What the caller needs from an error is one answer: could the node have received the
//! request? [`HttpError::NotSent`] when certainly not (no connection, no free slot before
//! the deadline, a connection that closed before hyper wrote the request);
//! [`HttpError::MaybeSent`] otherwise.
//!
//! Bodies are read under a cap ([`MAX_BODY`]; hyper caps the head itself): a server that
//! streams an endless body costs at most that much, then the connection is dropped and
//! the call fails `MaybeSent` with an error that names the cap.

use crate::dial::Dialer;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;
use tokio::time::{Instant, timeout_at};

/// Longest answer body read from a node: the biggest are set reads (a range over every
/// element, some 100 bytes each in etcd's JSON), far below this.
pub const MAX_BODY: usize = 256 << 20;

/// A finished exchange: the status and the whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Bytes,
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The request certainly never reached the node.
    #[error("{0}")]
    NotSent(String),
    /// The request may have reached the node (and taken effect).
    #[error("{0}")]
    MaybeSent(String),
}

impl HttpError {
    /// The history's outcome for a request without an answer: `fail` when it never left,
    /// `info` when it may have taken effect (never retried, as Jepsen's clients do).
    pub fn outcome(self) -> crate::client::Outcome {
        match self {
            HttpError::NotSent(error) => crate::client::Outcome::Fail {
                error,
                leader: None,
            },
            HttpError::MaybeSent(error) => crate::client::Outcome::Info { error },
        }
    }
}

/// Why reading an answer failed.
enum BodyError {
    Hyper(hyper::Error),
    TooLong,
    Other(String),
}

/// One connection: hyper's sender and the task that drives the socket, stopped with it.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: AbortHandle,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Keep-alive connections to one address, at most `max` at a time.
pub struct HttpPool {
    addr: SocketAddr,
    dialer: Dialer,
    idle: Mutex<Vec<Conn>>,
    slots: Semaphore,
    max_body: usize,
}

impl HttpPool {
    /// A pool for `addr` with at most `max` (at least 1) connections.
    pub fn new(addr: SocketAddr, dialer: Dialer, max: usize) -> HttpPool {
        HttpPool {
            addr,
            dialer,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(max.max(1)),
            max_body: MAX_BODY,
        }
    }

    /// The same pool with another cap on answer bodies (tests use a small one).
    pub fn with_max_body(mut self, max_body: usize) -> HttpPool {
        self.max_body = max_body;
        self
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends one request and reads the whole answer, all before `deadline`.
    /// A `body` is sent as JSON; `headers` are added as given.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&'static str, &'static str)],
        body: Option<Vec<u8>>,
        deadline: Instant,
    ) -> Result<HttpResponse, HttpError> {
        let _slot = match timeout_at(deadline, self.slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            Ok(Err(_)) => unreachable!("the pool's semaphore is never closed"),
            Err(_) => {
                return Err(HttpError::NotSent(format!(
                    "client-busy: every connection to {} stayed busy until the deadline",
                    self.addr
                )));
            }
        };
        let mut conn = self.checkout(deadline).await?;
        let req = self.build(method, path, headers, body);
        let max_body = self.max_body;
        let answer = timeout_at(deadline, async {
            let resp = conn
                .sender
                .send_request(req)
                .await
                .map_err(BodyError::Hyper)?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), max_body)
                .collect()
                .await
                .map_err(|e| match e.downcast::<hyper::Error>() {
                    Ok(e) => BodyError::Hyper(*e),
                    Err(e) if e.is::<LengthLimitError>() => BodyError::TooLong,
                    Err(e) => BodyError::Other(e.to_string()),
                })?
                .to_bytes();
            Ok::<_, BodyError>(HttpResponse { status, body })
        })
        .await;
        let answer = match answer {
            Ok(Err(BodyError::TooLong)) => {
                // `conn` is dropped unreturned: the rest of the body is never read.
                return Err(HttpError::MaybeSent(format!(
                    "{}: {} answered with a body over {max_body} bytes",
                    crate::client::errors::CONNECTION_LOST,
                    self.addr
                )));
            }
            Ok(Err(BodyError::Other(e))) => {
                return Err(HttpError::MaybeSent(format!(
                    "{}: {e}",
                    crate::client::errors::CONNECTION_LOST
                )));
            }
            Ok(Err(BodyError::Hyper(e))) => Ok(Err(e)),
            Ok(Ok(r)) => Ok(Ok(r)),
            Err(t) => Err(t),
        };
        match answer {
            Ok(Ok(resp)) => {
                if !conn.sender.is_closed() {
                    self.lock_idle().push(conn);
                }
                Ok(resp)
            }
            // hyper cancels a request it had queued but not yet written when the
            // connection closed: the node never saw it.
            Ok(Err(e)) if e.is_canceled() => Err(HttpError::NotSent(format!(
                "{}: {e}",
                crate::client::errors::SEND
            ))),
            Ok(Err(e)) => Err(HttpError::MaybeSent(format!(
                "{}: {e}",
                crate::client::errors::CONNECTION_LOST
            ))),
            // The connection still owes an answer: dropping it closes the socket.
            Err(_) => Err(HttpError::MaybeSent(
                crate::client::errors::TIMEOUT.to_string(),
            )),
        }
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        headers: &[(&'static str, &'static str)],
        body: Option<Vec<u8>>,
    ) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.addr.to_string());
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if body.is_some() {
            b = b.header(header::CONTENT_TYPE, "application/json");
        }
        b.body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("a path and fixed headers always make a valid request")
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection that is still open, or a new one.
    async fn checkout(&self, deadline: Instant) -> Result<Conn, HttpError> {
        loop {
            let Some(mut conn) = self.lock_idle().pop() else {
                break;
            };
            if conn.sender.is_closed() {
                continue;
            }
            // An idle HTTP/1.1 connection is ready at once unless the node closed it.
            if let Ok(Ok(())) = timeout_at(deadline, conn.sender.ready()).await {
                return Ok(conn);
            }
        }
        self.connect(deadline).await
    }

    async fn connect(&self, deadline: Instant) -> Result<Conn, HttpError> {
        let not_sent = |why: String| {
            HttpError::NotSent(format!(
                "{}: {}: {why}",
                crate::client::errors::CONNECT,
                self.addr
            ))
        };
        let stream = match timeout_at(deadline, self.dialer.connect(self.addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(not_sent(e.to_string())),
            Err(_) => return Err(not_sent("timed out connecting".into())),
        };
        let _ = stream.set_nodelay(true);
        let (sender, driver) = match timeout_at(
            deadline,
            http1::Builder::new().handshake(TokioIo::new(stream)),
        )
        .await
        {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(not_sent(e.to_string())),
            Err(_) => return Err(not_sent("timed out in the handshake".into())),
        };
        let addr = self.addr;
        let driver = tokio::spawn(async move {
            if let Err(e) = driver.await {
                tracing::debug!(%addr, "http connection ended: {e}");
            }
        })
        .abort_handle();
        Ok(Conn { sender, driver })
    }
}

impl std::fmt::Debug for HttpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPool")
            .field("addr", &self.addr)
            .field("idle", &self.lock_idle().len())
            .field("free_slots", &self.slots.available_permits())
            .finish()
    }
}

/// One GET of `path` on `addr` on a fresh connection, for readiness probes.
pub async fn get_once(
    dialer: &Dialer,
    addr: SocketAddr,
    path: &str,
    deadline: Instant,
) -> Result<HttpResponse, HttpError> {
    HttpPool::new(addr, dialer.clone(), 1)
        .request(Method::GET, path, &[], None, deadline)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server that reads one request per read() call and answers each with `answer`.
    async fn server(answers: Vec<&'static str>) -> (SocketAddr, tokio::task::JoinHandle<usize>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let h = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut served = 0;
            for a in answers {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                s.write_all(a.as_bytes()).await.unwrap();
                served += 1;
            }
            served
        });
        (addr, h)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn content_length_and_chunked_bodies_on_one_kept_alive_connection() {
        let (addr, h) = server(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n\
             3\r\nabc\r\n2\r\nde\r\n0\r\nGrpc-Trailer: x\r\n\r\n",
        ])
        .await;
        let pool = HttpPool::new(addr, Dialer::Direct, 4);
        let a = pool
            .request(Method::POST, "/a", &[], Some(b"{}".to_vec()), soon())
            .await
            .unwrap();
        assert_eq!((a.status, &a.body[..]), (200, &b"hello"[..]));
        let b = pool
            .request(Method::GET, "/b", &[], None, soon())
            .await
            .unwrap();
        assert_eq!((b.status, &b.body[..]), (503, &b"abcde"[..]));
        // Both went over the single accepted connection.
        assert_eq!(h.await.unwrap(), 2);
    }

    #[tokio::test]
    async fn refused_connect_is_not_sent() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let pool = HttpPool::new(addr, Dialer::Direct, 1);
        let e = pool.request(Method::GET, "/", &[], None, soon()).await;
        assert!(matches!(e, Err(HttpError::NotSent(_))), "{e:?}");
    }

    #[tokio::test]
    async fn no_answer_is_maybe_sent_and_a_closed_connection_too() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            // First connection: read and never answer. Second: read, then close.
            let (mut a, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = a.read(&mut buf).await;
            let (mut b, _) = l.accept().await.unwrap();
            let _ = b.read(&mut buf).await;
            drop(b);
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(a);
        });
        let pool = HttpPool::new(addr, Dialer::Direct, 1);
        let e = pool
            .request(
                Method::GET,
                "/",
                &[],
                None,
                Instant::now() + Duration::from_millis(300),
            )
            .await;
        assert_eq!(e, Err(HttpError::MaybeSent("client-timeout".into())));
        let e = pool.request(Method::GET, "/", &[], None, soon()).await;
        assert!(matches!(e, Err(HttpError::MaybeSent(_))), "{e:?}");
    }

    #[tokio::test]
    async fn an_endless_body_is_cut_at_the_cap() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await
                .unwrap();
            let mut chunk = b"10000\r\n".to_vec();
            chunk.extend(vec![b'x'; 1 << 16]);
            chunk.extend(b"\r\n");
            let mut sent = 0usize;
            while sent < 256 << 20 {
                match s.write(&chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sent += n,
                }
            }
            sent
        });
        let pool = HttpPool::new(addr, Dialer::Direct, 1).with_max_body(1 << 20);
        let e = pool
            .request(
                Method::GET,
                "/",
                &[],
                None,
                Instant::now() + Duration::from_secs(60),
            )
            .await;
        match e {
            Err(HttpError::MaybeSent(m)) => assert!(m.contains("over 1048576 bytes"), "{m}"),
            other => panic!("expected a capped body, got {other:?}"),
        }
        drop(pool);
        let sent = server.await.unwrap();
        assert!(sent < 64 << 20, "the server got {sent} bytes out");
    }
}
