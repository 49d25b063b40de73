//! [`RemoteNet`]: partitions and packet loss on remote hosts, as nftables rules in a table
//! of the run's own on each host (`inet sunder-<run id>`), dropping by peer address. The
//! rule text is the netns backend's ([`sunder_nemesis::netns::rules`]): the same two input
//! chains, each replaced whole in one `nft -f` transaction.
//!
//! One node per host: rules match the source address of a peer, so two nodes behind one
//! address could not be told apart (refused at setup).

use crate::{Host, RemoteError, RunLayout};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use sunder_nemesis::netns::rules;
use sunder_nemesis::{Fault, Grudge, Loss, NemesisError, Network, NodeId, Outcome};

/// A node as the network backend sees it: its host and the address its peers' packets
/// come from.
#[derive(Debug, Clone)]
pub struct NetNode {
    pub host: Arc<Host>,
    pub addr: Ipv4Addr,
}

/// Clones share one set of tables: one for the nemesis, one for whoever tears it down at
/// the end of the run. The tables go when the last clone is dropped, if not before.
#[derive(Debug, Clone)]
pub struct RemoteNet {
    inner: Arc<Tables>,
}

#[derive(Debug)]
struct Tables {
    table: String,
    nodes: BTreeMap<NodeId, NetNode>,
    /// Hosts whose table exists (made, not yet deleted).
    made: Mutex<BTreeSet<NodeId>>,
}

/// Deleting a table that may not exist: declaring it first makes the delete always valid,
/// in one transaction.
fn delete_table(table: &str) -> String {
    format!("table inet {table}\ndelete table inet {table}\n")
}

impl RemoteNet {
    /// Creates the run's table on every node's host. On failure, deletes what it made and
    /// returns the error naming the host.
    pub fn setup(
        layout: &RunLayout,
        nodes: BTreeMap<NodeId, NetNode>,
    ) -> Result<RemoteNet, RemoteError> {
        let mut seen = BTreeMap::new();
        for (id, n) in &nodes {
            if let Some(other) = seen.insert(n.addr, id) {
                return Err(RemoteError::Invalid(format!(
                    "nodes {other} and {id} share address {}: the remote network backend needs one node per host",
                    n.addr
                )));
            }
        }
        let net = RemoteNet {
            inner: Arc::new(Tables {
                table: layout.table(),
                nodes,
                made: Mutex::new(BTreeSet::new()),
            }),
        };
        let text = rules::table(&net.inner.table);
        for (id, n) in &net.inner.nodes {
            // Recorded before: a table half made is deleted by teardown all the same.
            net.inner.made_set().insert(id.clone());
            if let Err(e) = n.host.nft(&text) {
                if let Err(t) = net.teardown() {
                    return Err(RemoteError::Invalid(format!(
                        "{e}\n(and deleting the tables made failed too: {t})"
                    )));
                }
                return Err(e);
            }
        }
        Ok(net)
    }

    pub fn table(&self) -> &str {
        &self.inner.table
    }

    fn node(&self, id: &str) -> Result<&NetNode, NemesisError> {
        self.inner
            .nodes
            .get(id)
            .ok_or_else(|| NemesisError::UnknownNode(id.into()))
    }

    fn addrs<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a NodeId>,
    ) -> Result<Vec<Ipv4Addr>, NemesisError> {
        ids.into_iter().map(|id| Ok(self.node(id)?.addr)).collect()
    }

    /// On each receiving node of the grudge, replaces the partition chain with drops from
    /// the nodes it holds a grudge against. A name that is no node refuses the whole grudge
    /// before any host is touched.
    pub fn apply_partition(&self, grudge: &Grudge) -> Result<Outcome, NemesisError> {
        let mut silenced = BTreeMap::new();
        for to in Fault::Partition(grudge.clone()).nodes() {
            self.node(&to)?;
            silenced.insert(to.clone(), self.addrs(&grudge.0[&to])?);
        }
        let receivers: Vec<NodeId> = silenced.keys().cloned().collect();
        Ok(crate::parallel::each_parallel(&receivers, |id| {
            self.inner.nodes[id]
                .host
                .nft(&rules::partition(&self.inner.table, &silenced[id]))
        }))
    }

    /// Empties these nodes' partition chains.
    pub fn heal_nodes(&self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.addrs(nodes)?;
        Ok(crate::parallel::each_parallel(nodes, |id| {
            self.inner.nodes[id]
                .host
                .nft(&rules::partition(&self.inner.table, &[]))
        }))
    }

    /// Random loss of what their peers send, on each of `loss.nodes`.
    pub fn apply_loss(&self, loss: &Loss) -> Result<Outcome, NemesisError> {
        self.addrs(&loss.nodes)?;
        Ok(crate::parallel::each_parallel(&loss.nodes, |id| {
            let peers: Vec<Ipv4Addr> = self
                .inner
                .nodes
                .iter()
                .filter(|(m, _)| *m != id)
                .map(|(_, n)| n.addr)
                .collect();
            self.inner.nodes[id]
                .host
                .nft(&rules::loss(&self.inner.table, &peers, loss.percent))
        }))
    }

    /// Empties these nodes' loss chains.
    pub fn stop_loss(&self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.addrs(nodes)?;
        Ok(crate::parallel::each_parallel(nodes, |id| {
            self.inner.nodes[id]
                .host
                .nft(&rules::loss(&self.inner.table, &[], 0))
        }))
    }

    /// The run's table on a node's host, as `nft list table` prints it.
    pub fn ruleset(&self, id: &str) -> Result<String, RemoteError> {
        let n = self
            .inner
            .nodes
            .get(id)
            .ok_or_else(|| RemoteError::Invalid(format!("unknown node {id}")))?;
        let out = n
            .host
            .run(&["nft", "list", "table", "inet", &self.inner.table])?;
        Ok(out.stdout_text())
    }

    /// Deletes the run's table on every host still holding it. Idempotent; every failure
    /// is returned, naming the host (those hosts stay listed for the next try).
    pub fn teardown(&self) -> Result<(), RemoteError> {
        self.inner.teardown()
    }
}

impl Tables {
    fn made_set(&self) -> std::sync::MutexGuard<'_, BTreeSet<NodeId>> {
        self.made.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn teardown(&self) -> Result<(), RemoteError> {
        let mut made = self.made_set();
        let mut errors = Vec::new();
        let text = delete_table(&self.table);
        let ids: Vec<NodeId> = made.iter().cloned().collect();
        for id in ids {
            match self.nodes[&id].host.nft(&text) {
                Ok(()) => {
                    made.remove(&id);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(RemoteError::Invalid(errors.join("; ")))
        }
    }
}

impl Drop for Tables {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::error!("deleting the run's nftables tables: {e}");
            eprintln!(
                "sunder: error: deleting nftables table {}: {e} (`sunder clean --hosts` retries)",
                self.table
            );
        }
    }
}

impl Network for RemoteNet {
    fn partition(&mut self, grudge: &Grudge) -> Result<Outcome, NemesisError> {
        self.apply_partition(grudge)
    }
    fn heal(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.heal_nodes(nodes)
    }
    fn loss(&mut self, loss: &Loss) -> Result<Outcome, NemesisError> {
        self.apply_loss(loss)
    }
    fn loss_stop(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.stop_loss(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleting_a_table_is_valid_whether_or_not_it_exists() {
        assert_eq!(
            delete_table("sunder-r1"),
            "table inet sunder-r1\ndelete table inet sunder-r1\n"
        );
    }
}
