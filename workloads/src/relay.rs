//! A loopback relay for client libraries that open their own sockets.
//!
//! ```text
//!  library ──TCP──► 127.0.0.1:<os port> (Relay) ──Dialer::connect──► node (e.g. in a netns)
//! ```
//!
//! [`Dialer`] makes sockets where the nodes are (inside the hub namespace with `--net
//! netns`), but a client library such as `zookeeper-client` connects by itself, from the
//! controller's namespace, where the nodes' addresses do not exist. The relay listens on
//! an OS-assigned loopback port and joins every connection it accepts to a new one to the
//! node, made through the dialer; bytes are copied both ways unchanged. Either side closing
//! or failing closes the other, so the library sees a lost connection as it would without
//! the relay; a node that cannot be reached is a connection accepted and closed at once.
//! Dropping the relay stops it and every connection it carries. Used by the NATS and
//! ZooKeeper adapters.

use crate::dial::Dialer;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

/// How long the relay waits for the node to accept a connection.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// At most this many connections through one relay at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 64;

/// A listener on 127.0.0.1 that forwards each connection to one target. Needs a tokio
/// runtime.
#[derive(Debug)]
pub struct Relay {
    local: SocketAddr,
    target: SocketAddr,
    task: JoinHandle<()>,
}

impl Relay {
    /// Starts relaying connections to `target`, made through `dialer`.
    pub async fn start(target: SocketAddr, dialer: Dialer) -> io::Result<Relay> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let local = listener.local_addr()?;
        let task = tokio::spawn(accept_loop(listener, target, dialer));
        Ok(Relay {
            local,
            target,
            task,
        })
    }

    /// Where the library should connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Where connections go.
    pub fn target(&self) -> SocketAddr {
        self.target
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // The accept loop owns the connections' tasks: aborting it drops them too.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, dialer: Dialer) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = JoinSet::new();
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            // Reap finished connections so the set does not grow.
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let Ok((mut inbound, _)) = accepted else {
            // Out of descriptors and the like: wait a little rather than spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let dialer = dialer.clone();
        conns.spawn(async move {
            let _permit = permit;
            let _ = inbound.set_nodelay(true);
            // A node that cannot be reached in time: the inbound side is dropped (closed)
            // unanswered.
            let Ok(Ok(mut outbound)) =
                tokio::time::timeout(DIAL_TIMEOUT, dialer.connect(target)).await
            else {
                return;
            };
            let _ = outbound.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_go_both_ways_and_a_close_reaches_the_other_side() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = echo.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf.map(|b| b.to_ascii_uppercase()))
                .await
                .unwrap();
            // Closing here must reach the client through the relay.
        });
        let relay = Relay::start(target, Dialer::Direct).await.unwrap();
        assert_eq!(relay.target(), target);
        let mut c = tokio::net::TcpStream::connect(relay.local_addr())
            .await
            .unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HELLO");
        server.await.unwrap();
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), c.read(&mut buf))
            .await
            .expect("the close was relayed")
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn an_unreachable_target_is_a_connection_closed_at_once() {
        // A port that was free a moment ago: nothing listens there.
        let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = free.local_addr().unwrap();
        drop(free);
        let relay = Relay::start(target, Dialer::Direct).await.unwrap();
        let mut c = tokio::net::TcpStream::connect(relay.local_addr())
            .await
            .unwrap();
        let mut buf = [0u8; 1];
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), c.read(&mut buf))
            .await
            .expect("closed, not left hanging");
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    }

    #[tokio::test]
    async fn dropping_the_relay_stops_listening() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay::start(echo.local_addr().unwrap(), Dialer::Direct)
            .await
            .unwrap();
        let local = relay.local_addr();
        drop(relay);
        tokio::task::yield_now().await;
        // The listener is closed once the aborted task is dropped; allow it a moment.
        let mut refused = false;
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(local).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(refused, "still listening on {local}");
    }
}
