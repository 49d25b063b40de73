//! Ports for the nodes, chosen below the kernel's ephemeral range.
//!
//! A node's ports must stay its own for the whole run: a killed node is restarted on the
//! same ports seconds later. A port the kernel hands out for `bind(0)` comes from the
//! ephemeral range, which is also where every outgoing connection (clients, relays, peers)
//! takes its local port, so while a node is down one of those connections can take its port
//! and the restart fails. Ports below that range are never taken implicitly; each is
//! checked free by binding it, and all stay bound until every one is chosen.

use anyhow::{Context, bail};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::net::{SocketAddr, TcpListener};

/// `n` distinct free addresses on 127.0.0.1.
pub fn allocate(n: usize, entropy: u64) -> anyhow::Result<Vec<SocketAddr>> {
    let Some((lo, hi)) = quiet_range() else {
        return from_kernel(n);
    };
    let mut rng = ChaCha8Rng::seed_from_u64(entropy);
    let mut held: Vec<TcpListener> = Vec::with_capacity(n);
    let mut tries = 0;
    while held.len() < n {
        tries += 1;
        if tries > 50 * n + 100 {
            bail!("no free port on 127.0.0.1 between {lo} and {hi} after {tries} tries");
        }
        let port = rng.random_range(lo..hi);
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    held.iter()
        .map(|l| l.local_addr().context("read a port"))
        .collect()
}

/// Ports from the kernel (`bind(0)`), when the ephemeral range cannot be read.
fn from_kernel(n: usize) -> anyhow::Result<Vec<SocketAddr>> {
    let ls = (0..n)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<Result<Vec<_>, _>>()
        .context("allocate a port on 127.0.0.1")?;
    ls.iter()
        .map(|l| l.local_addr().context("read a port"))
        .collect()
}

/// A range of unprivileged ports below the ephemeral range, at least 1000 wide.
fn quiet_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let first: u16 = text.split_whitespace().next()?.parse().ok()?;
    let lo = (first / 3).max(1024);
    (first >= lo + 1000).then_some((lo, first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_free_and_outside_the_ephemeral_range() {
        let a = allocate(12, 1).unwrap();
        let mut ports: Vec<u16> = a.iter().map(|s| s.port()).collect();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), 12);
        if let Some((lo, hi)) = quiet_range() {
            assert!(ports.iter().all(|p| (lo..hi).contains(p)));
        }
        for addr in a {
            TcpListener::bind(addr).expect("released for the node to bind");
        }
    }
}
