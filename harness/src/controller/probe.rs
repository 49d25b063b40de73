//! "Is this node up?": a built-in node answers `status`; a spec target passes the ready
//! check its spec describes (a TCP connect, an HTTP GET). Used at start-up and after the
//! faults are healed.

use super::admin::Admin;
use super::spec::TargetSpec;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use sunder_nemesis::NodeId;
use sunder_workloads::Dialer;

/// How long every built-in node has to answer `status` after it is spawned.
const BUILTIN_START_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub enum Probe {
    Admin(Admin),
    Spec {
        spec: Arc<TargetSpec>,
        dialer: Dialer,
        addrs: BTreeMap<NodeId, SocketAddr>,
    },
}

impl Probe {
    /// One attempt; `Err` says why the node is not up (yet).
    pub async fn up(&self, id: &str) -> Result<(), String> {
        match self {
            Probe::Admin(admin) => admin
                .status(id, Duration::from_millis(300))
                .await
                .map(|_| ()),
            Probe::Spec {
                spec,
                dialer,
                addrs,
            } => {
                let addr = addrs.get(id).ok_or_else(|| format!("unknown node {id}"))?;
                spec.ready(*addr, dialer).await
            }
        }
    }

    /// Where the node answers: its client address, or the address its spec checks.
    pub fn addr(&self, id: &str) -> Option<SocketAddr> {
        match self {
            Probe::Admin(admin) => admin
                .endpoints()
                .iter()
                .find(|e| e.id == id)
                .map(|e| e.addr),
            Probe::Spec { addrs, .. } => addrs.get(id).copied(),
        }
    }

    /// How many of `ids` are up, asked in parallel.
    pub async fn count_up(&self, ids: &[NodeId]) -> usize {
        let mut asks = tokio::task::JoinSet::new();
        for id in ids {
            let (me, id) = (self.clone(), id.clone());
            asks.spawn(async move { me.up(&id).await.is_ok() });
        }
        let mut up = 0;
        while let Some(r) = asks.join_next().await {
            up += usize::from(r.unwrap_or(false));
        }
        up
    }

    /// How long start-up may take.
    pub fn start_timeout(&self) -> Duration {
        match self {
            Probe::Admin(_) => BUILTIN_START_TIMEOUT,
            Probe::Spec { spec, .. } => spec.ready.timeout,
        }
    }

    /// What "up" means, for messages.
    pub fn what(&self) -> &'static str {
        match self {
            Probe::Admin(_) => "answer `status`",
            Probe::Spec { .. } => "pass the spec's ready check",
        }
    }
}
