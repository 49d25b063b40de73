//! The proxy network backend: one TCP relay per directed pair of nodes, no privileges.
//!
//! ```text
//!   node a ──dials──► relay (a,b) 127.0.0.1:P ──► node b's --peer-listen
//!                       │ cut: live connections closed, new ones accepted and closed
//!                       └ delay: each chunk held back before it is forwarded
//! ```
//!
//! Node `a` is told `--peer b=<relay (a,b)>`. Because a node sends only on connections it
//! dialled, cutting relay `(a,b)` silences `a → b` and nothing else: one-way cuts come free.

use crate::{Fault, Grudge, NemesisError, Network, NodeId, Outcome};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

struct Relay {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    delay: watch::Sender<Duration>,
    task: JoinHandle<()>,
}

/// All relays of a cluster. Dropping it stops every relay and closes every connection.
pub struct ProxyNet {
    relays: BTreeMap<(NodeId, NodeId), Relay>,
}

impl ProxyNet {
    /// Starts a relay for each `(from, to, to's peer-listen address)`, each listening on
    /// 127.0.0.1 at a port the OS picks. Must be called inside a tokio runtime.
    pub async fn start(
        links: impl IntoIterator<Item = (NodeId, NodeId, SocketAddr)>,
    ) -> Result<ProxyNet, NemesisError> {
        let mut relays = BTreeMap::new();
        for (from, to, target) in links {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            let addr = listener.local_addr()?;
            let (cut, _) = watch::channel(false);
            let (delay, _) = watch::channel(Duration::ZERO);
            let task = tokio::spawn(accept_loop(listener, target, cut.clone(), delay.clone()));
            relays.insert(
                (from, to),
                Relay {
                    addr,
                    cut,
                    delay,
                    task,
                },
            );
        }
        Ok(ProxyNet { relays })
    }

    /// Where `from` must dial to reach `to`.
    pub fn addr(&self, from: &str, to: &str) -> Option<SocketAddr> {
        self.relays
            .get(&(from.to_string(), to.to_string()))
            .map(|r| r.addr)
    }

    /// Holds back every chunk `from` sends to `to` by `delay` (zero: none).
    pub fn set_delay(&self, from: &str, to: &str, delay: Duration) -> Result<(), NemesisError> {
        let r = self
            .relays
            .get(&(from.to_string(), to.to_string()))
            .ok_or_else(|| NemesisError::UnknownNode(format!("{from}->{to}")))?;
        r.delay.send_replace(delay);
        Ok(())
    }

    /// The links cut now, `(from, to)`.
    pub fn cut_links(&self) -> Vec<(NodeId, NodeId)> {
        self.relays
            .iter()
            .filter(|(_, r)| *r.cut.borrow())
            .map(|(k, _)| k.clone())
            .collect()
    }
}

impl Drop for ProxyNet {
    fn drop(&mut self) {
        for r in self.relays.values() {
            r.task.abort();
        }
    }
}

/// Per receiving node: a node's cuts are the relays into it. Setting a relay cannot fail, so
/// a node fails only when its grudge names a link that has no relay (not a member).
impl Network for ProxyNet {
    fn partition(&mut self, grudge: &Grudge) -> Result<Outcome, NemesisError> {
        let receivers = Fault::Partition(grudge.clone()).nodes();
        Ok(Outcome::each(&receivers, |to| {
            let missing = grudge.0[to]
                .iter()
                .find(|from| !self.relays.contains_key(&((*from).clone(), to.clone())));
            if let Some(from) = missing {
                return Err(NemesisError::UnknownNode(format!("{from}->{to}")));
            }
            for ((from, t), r) in &self.relays {
                if t == to {
                    r.cut.send_replace(grudge.is_cut(from, to));
                }
            }
            Ok(())
        }))
    }

    fn heal(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        Ok(Outcome::each(nodes, |to| {
            for ((_, t), r) in &self.relays {
                if t == to {
                    r.cut.send_replace(false);
                }
            }
            Ok::<(), NemesisError>(())
        }))
    }
}

/// Accepts connections for one relay. The connections live in a `JoinSet` owned by this
/// task, so aborting the task closes them all.
async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    cut: watch::Sender<bool>,
    delay: watch::Sender<Duration>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((inbound, _)) = accepted else {
                    // Out of descriptors or similar: back off rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                if *cut.borrow() {
                    drop(inbound);
                    continue;
                }
                conns.spawn(relay_conn(inbound, target, cut.subscribe(), delay.subscribe()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn relay_conn(
    inbound: TcpStream,
    target: SocketAddr,
    mut cut: watch::Receiver<bool>,
    delay: watch::Receiver<Duration>,
) {
    let connect = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(target));
    let outbound = tokio::select! {
        c = connect => match c { Ok(Ok(s)) => s, _ => return },
        _ = cut.wait_for(|c| *c) => return,
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (ir, iw) = inbound.into_split();
    let (or, ow) = outbound.into_split();
    let both = async {
        tokio::join!(pump(ir, ow, delay.clone()), pump(or, iw, delay));
    };
    tokio::select! {
        _ = both => {}
        _ = cut.wait_for(|c| *c) => {}
    }
}

async fn pump(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    delay: watch::Receiver<Duration>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let d = *delay.borrow();
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
        if w.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = w.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};

    /// An echo server standing in for a node's peer listener.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (r, mut w) = s.into_split();
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if w.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn roundtrip(addr: SocketAddr) -> std::io::Result<String> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"hello\n").await?;
        let mut buf = [0u8; 6];
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf)).await??;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    #[tokio::test]
    async fn relays_cut_and_heal_one_direction() {
        let b = echo().await;
        let a = echo().await;
        let mut net =
            ProxyNet::start([("n1".into(), "n2".into(), b), ("n2".into(), "n1".into(), a)])
                .await
                .unwrap();
        let ab = net.addr("n1", "n2").unwrap();
        let ba = net.addr("n2", "n1").unwrap();
        assert_eq!(roundtrip(ab).await.unwrap(), "hello\n");

        // a live connection through the relay dies when the link is cut
        let mut live = TcpStream::connect(ab).await.unwrap();
        live.write_all(b"x\n").await.unwrap();
        let mut two = [0u8; 2];
        live.read_exact(&mut two).await.unwrap();

        let mut g = Grudge::default();
        g.cut("n1", "n2"); // n2 no longer hears n1
        assert!(net.partition(&g).unwrap().is_complete());
        assert_eq!(net.cut_links(), vec![("n1".to_string(), "n2".to_string())]);
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(2), live.read_to_end(&mut rest))
            .await
            .unwrap();
        assert!(matches!(n, Ok(0) | Err(_)), "live connection closed");
        assert!(
            roundtrip(ab).await.is_err(),
            "new connections refused while cut"
        );
        assert_eq!(
            roundtrip(ba).await.unwrap(),
            "hello\n",
            "the other direction still works"
        );

        assert!(net.heal(&["n2".to_string()]).unwrap().is_complete());
        assert_eq!(roundtrip(ab).await.unwrap(), "hello\n");
        assert!(net.cut_links().is_empty());
    }

    #[tokio::test]
    async fn delay_holds_chunks_back() {
        let b = echo().await;
        let net = ProxyNet::start([("n1".into(), "n2".into(), b)])
            .await
            .unwrap();
        net.set_delay("n1", "n2", Duration::from_millis(200))
            .unwrap();
        let t = std::time::Instant::now();
        assert_eq!(
            roundtrip(net.addr("n1", "n2").unwrap()).await.unwrap(),
            "hello\n"
        );
        // both directions go through the relay: at least two delays
        assert!(t.elapsed() >= Duration::from_millis(400));
    }

    /// A grudge naming a link with no relay fails on its receiver only; the other
    /// receivers' cuts are made, and healing those undoes exactly them.
    #[tokio::test]
    async fn a_partition_fails_only_on_the_node_whose_link_is_unknown() {
        let b = echo().await;
        let mut net = ProxyNet::start([
            ("n1".into(), "n2".into(), b),
            ("n2".into(), "n1".into(), b),
            ("n3".into(), "n2".into(), b),
        ])
        .await
        .unwrap();
        let mut g = Grudge::default();
        g.cut("n1", "n2");
        g.cut("n3", "n2");
        g.cut("n9", "n1"); // no relay n9 -> n1
        g.cut("n2", "n1");
        let o = net.partition(&g).unwrap();
        assert_eq!(o.reached, ["n2"]);
        assert!(o.failed["n1"].contains("n9->n1"), "{o:?}");
        let n = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(net.cut_links(), [n("n1", "n2"), n("n3", "n2")]);
        assert!(net.heal(&o.reached).unwrap().is_complete());
        assert!(net.cut_links().is_empty());
    }
}
