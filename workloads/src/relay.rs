//! A loopback relay to one node, for client libraries that open their own sockets.
//!
//! ```text
//!  library ──TCP──► 127.0.0.1:P (LoopbackRelay) ──Dialer::connect──► node (maybe in a netns)
//! ```
//!
//! With `--net netns` a node's address is only reachable from the hub namespace, and only
//! sockets made by a [`Dialer`] are there. A library such as `async-nats` connects with
//! `TcpStream::connect` on whatever thread runs it, in the controller's namespace; it
//! connects to this relay instead, which dials the node through the dialer and copies
//! bytes both ways. Each accepted connection makes one connection to the node: when the
//! node side closes or fails (the node was killed), the library's side is closed too, so
//! the library sees the loss as it would on a direct connection. A node that cannot be
//! dialled (down) gets the library's connection closed at once, before any byte.

use crate::dial::Dialer;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// How long the relay waits for the node to accept a connection.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// A listener on 127.0.0.1 that forwards every connection to one node. Dropping it stops
/// the listener and every connection it relays.
#[derive(Debug)]
pub struct LoopbackRelay {
    local: SocketAddr,
    task: JoinHandle<()>,
}

impl LoopbackRelay {
    /// Listens on a free loopback port and relays to `target` through `dialer`. Needs a
    /// tokio runtime.
    pub async fn start(target: SocketAddr, dialer: Dialer) -> io::Result<LoopbackRelay> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let local = listener.local_addr()?;
        let task = tokio::spawn(async move {
            // Owned here, so aborting this task aborts every relayed connection.
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else {
                            // Out of descriptors, say: do not spin on it.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        };
                        let dialer = dialer.clone();
                        conns.spawn(async move {
                            let outbound =
                                tokio::time::timeout(DIAL_TIMEOUT, dialer.connect(target)).await;
                            if let Ok(Ok(mut outbound)) = outbound {
                                let _ = outbound.set_nodelay(true);
                                let _ = inbound.set_nodelay(true);
                                let _ =
                                    tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            }
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Ok(LoopbackRelay { local, task })
    }

    /// Where the library should connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for LoopbackRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_go_both_ways_and_a_closed_node_closes_the_client() {
        let node = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = LoopbackRelay::start(node.local_addr().unwrap(), Dialer::Direct)
            .await
            .unwrap();
        let mut client = tokio::net::TcpStream::connect(relay.local_addr())
            .await
            .unwrap();
        let (mut at_node, _) = node.accept().await.unwrap();
        client.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        at_node.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        at_node.write_all(b"pong").await.unwrap();
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
        // The node goes away: the client reads end-of-stream, not silence.
        drop(at_node);
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
            .await
            .expect("the relay passed the close on")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn a_node_that_is_down_gets_the_client_closed_at_once() {
        // A port that was free a moment ago: nothing listens there now.
        let free = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let relay = LoopbackRelay::start(free, Dialer::Direct).await.unwrap();
        let mut client = tokio::net::TcpStream::connect(relay.local_addr())
            .await
            .unwrap();
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
            .await
            .expect("closed within the dial timeout")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn dropping_the_relay_stops_listening() {
        let node = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = LoopbackRelay::start(node.local_addr().unwrap(), Dialer::Direct)
            .await
            .unwrap();
        let addr = relay.local_addr();
        drop(relay);
        // The abort lands on the next poll of the task.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
