//! [`NetnsNet`]: one run's namespaces, bridge and nftables tables, from setup to teardown.

use super::command::run;
use super::names::{HUB_ADDR, PREFIX_LEN, RunNames};
use super::{NsHandle, rules, teardown};
use crate::{Fault, Grudge, Loss, NemesisError, Network, NodeId, Outcome};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Where `ip netns add` puts a namespace's handle.
pub fn netns_path(name: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(name)
}

/// One run's private network: a hub namespace with bridge `br0` at 10.77.0.254, and per
/// node a namespace with `eth0` at 10.77.0.<i> on that bridge and a table
/// `inet sunder_<tag>` whose input chains carry partitions and loss.
///
/// With twins ([`TwinPlan`]), a twinned member has a second namespace at its address on
/// another bridge port, and a `bridge` table in the hub decides who reaches which of the
/// two (see [`rules::twins`]).
///
/// Teardown (explicit, or on drop) kills whatever still runs in the namespaces and deletes
/// them; the veths and tables go with them. Nothing outside these namespaces is touched.
#[derive(Debug)]
pub struct NetnsNet {
    names: RunNames,
    /// The honest members that talk to the twins (none without twins).
    twin_side: Vec<NodeId>,
    /// Namespaces made and not yet deleted.
    made: Mutex<Vec<String>>,
}

impl NetnsNet {
    /// Creates the namespaces for `members` with a fresh run tag. On failure, removes what
    /// it made and returns the failing command and its stderr.
    pub fn setup(members: Vec<NodeId>) -> Result<NetnsNet, NemesisError> {
        NetnsNet::setup_with_twins(members, TwinPlan::default())
    }

    /// [`setup`](Self::setup), plus a twin namespace for each member `plan` names. A plan
    /// naming a non-member, or a member both twinned and on the twin side, is refused
    /// before anything is made.
    pub fn setup_with_twins(
        members: Vec<NodeId>,
        plan: TwinPlan,
    ) -> Result<NetnsNet, NemesisError> {
        for id in plan.twinned.iter().chain(&plan.twin_side) {
            if !members.contains(id) {
                return Err(NemesisError::UnknownNode(id.clone()));
            }
        }
        if let Some(both) = plan.twinned.iter().find(|t| plan.twin_side.contains(t)) {
            return Err(NemesisError::Backend(format!(
                "{both} cannot be twinned and on its twins' side at once"
            )));
        }
        let mut names = RunNames::new(members);
        names.twins = plan.twinned;
        let net = NetnsNet {
            names,
            twin_side: plan.twin_side,
            made: Mutex::new(Vec::new()),
        };
        match net.build() {
            Ok(()) => Ok(net),
            Err(e) => {
                if let Err(t) = net.teardown() {
                    return Err(NemesisError::Backend(format!(
                        "{e}\n(and removing what was made failed too: {t})"
                    )));
                }
                Err(e)
            }
        }
    }

    fn add_namespace(&self, name: &str) -> Result<(), NemesisError> {
        // Recorded before it exists: a signal between the two must not leave it untracked,
        // and deleting a namespace that was never made is a no-op in teardown.
        self.made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name.to_string());
        run("ip", &["netns", "add", name], None)?;
        Ok(())
    }

    fn build(&self) -> Result<(), NemesisError> {
        let hub = self.names.hub();
        let hub_cidr = format!("{HUB_ADDR}/{PREFIX_LEN}");
        self.add_namespace(&hub)?;
        run("ip", &["-n", &hub, "link", "set", "lo", "up"], None)?;
        run(
            "ip",
            &["-n", &hub, "link", "add", "br0", "type", "bridge"],
            None,
        )?;
        run(
            "ip",
            &["-n", &hub, "addr", "add", &hub_cidr, "dev", "br0"],
            None,
        )?;
        run("ip", &["-n", &hub, "link", "set", "br0", "up"], None)?;
        let table = rules::table(&self.names.table());
        for id in &self.names.members {
            let port = self.names.hub_port(id).expect("a member");
            self.add_node_namespace(id, &self.names.node(id), &port, &table)?;
        }
        if !self.names.twins.is_empty() {
            let mut twin_ports = Vec::new();
            let mut originals = Vec::new();
            for id in &self.names.twins {
                let port = self.names.twin_port(id).expect("a member");
                self.add_node_namespace(id, &self.names.twin(id), &port, &table)?;
                twin_ports.push(port);
                originals.push(self.names.hub_port(id).expect("a member"));
            }
            let side: Vec<String> = self
                .twin_side
                .iter()
                .map(|id| self.names.hub_port(id).expect("a member"))
                .collect();
            self.nft(
                &hub,
                &rules::twins(&self.names.table(), &twin_ports, &originals, &side),
            )?;
        }
        Ok(())
    }

    /// A namespace `ns` for member `id`: its `eth0` at the member's address, the hub's
    /// end `port` on the bridge, and the run's table.
    fn add_node_namespace(
        &self,
        id: &str,
        ns: &str,
        port: &str,
        table: &str,
    ) -> Result<(), NemesisError> {
        let hub = self.names.hub();
        let cidr = format!("{}/{PREFIX_LEN}", self.names.addr(id).expect("a member"));
        self.add_namespace(ns)?;
        run("ip", &["-n", ns, "link", "set", "lo", "up"], None)?;
        run(
            "ip",
            &[
                "-n", &hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns",
                ns,
            ],
            None,
        )?;
        run(
            "ip",
            &["-n", &hub, "link", "set", port, "master", "br0", "up"],
            None,
        )?;
        run("ip", &["-n", ns, "addr", "add", &cidr, "dev", "eth0"], None)?;
        run("ip", &["-n", ns, "link", "set", "eth0", "up"], None)?;
        self.nft(ns, table)
    }

    fn nft(&self, ns: &str, text: &str) -> Result<(), NemesisError> {
        run("ip", &["netns", "exec", ns, "nft", "-f", "-"], Some(text)).map(|_| ())
    }

    pub fn names(&self) -> &RunNames {
        &self.names
    }

    /// A node's address on the bridge.
    pub fn addr(&self, id: &str) -> Option<Ipv4Addr> {
        self.names.addr(id)
    }

    /// The clients' namespace (the hub), for a `NsDialer`.
    pub fn hub_path(&self) -> PathBuf {
        netns_path(&self.names.hub())
    }

    /// An open handle of a node's namespace, for its process to enter before exec.
    pub fn node_handle(&self, id: &str) -> Result<NsHandle, NemesisError> {
        if !self.names.members.iter().any(|m| m == id) {
            return Err(NemesisError::UnknownNode(id.into()));
        }
        let path = netns_path(&self.names.node(id));
        NsHandle::open(&path)
            .map_err(|e| NemesisError::Backend(format!("open {}: {e}", path.display())))
    }

    /// An open handle of a twin's namespace (a member given a twin by the plan).
    pub fn twin_handle(&self, id: &str) -> Result<NsHandle, NemesisError> {
        if !self.names.twins.iter().any(|m| m == id) {
            return Err(NemesisError::UnknownNode(format!("{id} (no twin)")));
        }
        let path = netns_path(&self.names.twin(id));
        NsHandle::open(&path)
            .map_err(|e| NemesisError::Backend(format!("open {}: {e}", path.display())))
    }

    /// The honest members that talk to the twins.
    pub fn twin_side(&self) -> &[NodeId] {
        &self.twin_side
    }

    /// Loads `text` into a member's namespace and, when it has a twin, into the twin's:
    /// the two share an address, so what one hears the other hears too.
    fn nft_node(&self, id: &str, text: &str) -> Result<(), NemesisError> {
        self.nft(&self.names.node(id), text)?;
        if self.names.twins.iter().any(|t| t == id) {
            self.nft(&self.names.twin(id), text)?;
        }
        Ok(())
    }

    fn addrs(
        &self,
        ids: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<Vec<Ipv4Addr>, NemesisError> {
        ids.into_iter()
            .map(|id| {
                self.names
                    .addr(id.as_ref())
                    .ok_or_else(|| NemesisError::UnknownNode(id.as_ref().into()))
            })
            .collect()
    }

    /// On each node the grudge names as a receiver, replaces the partition chain with drops
    /// of what comes from the nodes it holds a grudge against. Atomic per node, not across
    /// nodes: the outcome says which namespaces got their rules. A name that is no member
    /// refuses the whole grudge before anything is changed.
    pub fn apply_partition(&self, grudge: &Grudge) -> Result<Outcome, NemesisError> {
        let mut silenced = BTreeMap::new();
        for to in Fault::Partition(grudge.clone()).nodes() {
            self.addrs([&to])?;
            silenced.insert(to.clone(), self.addrs(&grudge.0[&to])?);
        }
        let table = self.names.table();
        let receivers: Vec<NodeId> = silenced.keys().cloned().collect();
        Ok(Outcome::each(&receivers, |id| {
            self.nft_node(id, &rules::partition(&table, &silenced[id]))
        }))
    }

    /// Empties the partition chain of these nodes (they hear everyone again).
    pub fn heal_nodes(&self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.addrs(nodes)?;
        let table = self.names.table();
        Ok(Outcome::each(nodes, |id| {
            self.nft_node(id, &rules::partition(&table, &[]))
        }))
    }

    /// Random loss on `loss.nodes` of what their peers send, node by node.
    pub fn apply_loss(&self, loss: &Loss) -> Result<Outcome, NemesisError> {
        self.addrs(&loss.nodes)?;
        let table = self.names.table();
        Ok(Outcome::each(&loss.nodes, |id| {
            let peers = self.addrs(self.names.members.iter().filter(|m| *m != id))?;
            self.nft_node(id, &rules::loss(&table, &peers, loss.percent))
        }))
    }

    /// Empties the loss chain of these nodes.
    pub fn stop_loss(&self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.addrs(nodes)?;
        let table = self.names.table();
        Ok(Outcome::each(nodes, |id| {
            self.nft_node(id, &rules::loss(&table, &[], 0))
        }))
    }

    /// The nftables ruleset of a node's namespace, as `nft list ruleset` prints it.
    pub fn ruleset(&self, id: &str) -> Result<String, NemesisError> {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &self.names.node(id),
                "nft",
                "list",
                "ruleset",
            ],
            None,
        )
    }

    /// Kills what runs in the namespaces and deletes them. Idempotent; every failure is
    /// returned (namespaces that could not be deleted stay listed for the next try).
    pub fn teardown(&self) -> Result<(), NemesisError> {
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        let mut errors = Vec::new();
        let mut left = Vec::new();
        // Nodes first, the hub last (made first).
        for ns in made.iter().rev() {
            if let Err(e) = teardown::remove_namespace(ns) {
                errors.push(e.to_string());
                left.push(ns.clone());
            }
        }
        left.reverse();
        *made = left;
        joined(errors)
    }
}

/// Which members get a twin, and which honest members talk to the twins rather than the
/// originals. The clients (the hub) always reach the originals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TwinPlan {
    pub twinned: Vec<NodeId>,
    pub twin_side: Vec<NodeId>,
}

fn joined(errors: Vec<String>) -> Result<(), NemesisError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(NemesisError::Backend(errors.join("; ")))
    }
}

impl Drop for NetnsNet {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::error!("removing the run's network namespaces: {e}");
            eprintln!(
                "sunder: error: removing network namespaces {}: {e} (`sunder clean` retries)",
                self.names.namespaces().join(", ")
            );
        }
    }
}

/// Shared between the nemesis and whoever tears it down at the end of the run.
impl Network for Arc<NetnsNet> {
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
