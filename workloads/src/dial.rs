//! How a client reaches a node: directly, or from inside a network namespace.
//!
//! With `--net netns` the nodes live in namespaces of their own, joined by a bridge in a
//! hub namespace, and the root namespace is never touched. A socket belongs to the
//! namespace of the thread that created it, for its whole life; so [`NsDialer`] keeps one
//! thread that has entered the hub namespace and does nothing but create sockets there.
//! The connect itself then runs on the async runtime like any other.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use tokio::net::{TcpSocket, TcpStream};

/// Where client sockets are made. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub enum Dialer {
    /// In the controller's own namespace.
    #[default]
    Direct,
    /// In the namespace an [`NsDialer`] has entered.
    Netns(Arc<NsDialer>),
}

impl Dialer {
    /// Connects a TCP stream to `addr`. No timeout of its own: callers wrap it.
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        match self {
            Dialer::Direct => TcpStream::connect(addr).await,
            Dialer::Netns(ns) => ns.socket(addr)?.connect(addr).await,
        }
    }
}

type Request = (bool, mpsc::SyncSender<io::Result<TcpSocket>>);

/// A thread inside one network namespace that hands out unconnected sockets.
#[derive(Debug)]
pub struct NsDialer {
    path: PathBuf,
    requests: Mutex<mpsc::Sender<Request>>,
}

impl NsDialer {
    /// Starts the socket thread in the namespace whose handle is at `path` (e.g.
    /// `/run/netns/NAME`). Fails if the namespace cannot be entered (not root, or gone).
    pub fn enter(path: impl Into<PathBuf>) -> io::Result<NsDialer> {
        let path = path.into();
        let file = std::fs::File::open(&path)?;
        let (tx, rx) = mpsc::channel::<Request>();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("netns-dialer".into())
            .spawn(move || {
                let entered = nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(io::Error::from);
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if !ok {
                    return;
                }
                // Ends when the NsDialer (the only sender) is dropped.
                for (v6, reply) in rx {
                    let s = if v6 {
                        TcpSocket::new_v6()
                    } else {
                        TcpSocket::new_v4()
                    };
                    let _ = reply.send(s);
                }
            })?;
        ready_rx
            .recv()
            .map_err(|_| io::Error::other("the namespace thread died"))??;
        Ok(NsDialer {
            path,
            requests: Mutex::new(tx),
        })
    }

    /// The namespace handle this dialer entered.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// A new unconnected socket, made inside the namespace, for an address like `addr`.
    pub fn socket(&self, addr: SocketAddr) -> io::Result<TcpSocket> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send((addr.is_ipv6(), tx))
            .map_err(|_| io::Error::other("the namespace thread is gone"))?;
        rx.recv()
            .map_err(|_| io::Error::other("the namespace thread is gone"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn direct_connects_on_loopback() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let s = Dialer::Direct.connect(addr).await.unwrap();
        assert_eq!(s.peer_addr().unwrap(), addr);
    }

    #[test]
    fn a_missing_namespace_is_an_error() {
        let e = NsDialer::enter("/run/netns/sunder-no-such-namespace").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    /// Our own namespace, entered through /proc: sockets still work.
    #[tokio::test]
    async fn a_dialer_in_our_own_namespace_connects() {
        let ns = match NsDialer::enter("/proc/self/ns/net") {
            Ok(ns) => ns,
            Err(e) => {
                eprintln!("skipping: cannot setns into our own namespace ({e}); needs root");
                return;
            }
        };
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let s = Dialer::Netns(Arc::new(ns)).connect(addr).await.unwrap();
        assert_eq!(s.peer_addr().unwrap(), addr);
    }
}
