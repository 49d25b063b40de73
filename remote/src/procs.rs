//! [`RemoteProcesses`]: the nodes started on remote hosts, by recorded pid (= process
//! group), and the process faults on them: kill (SIGKILL the group and wait until no
//! member lives), restart (the same [`Launch`] again, same directory and ports), pause
//! (SIGSTOP), resume (SIGCONT).

use crate::parallel::each_parallel;
use crate::{Host, Launch, RemoteError, RunLayout, Signal};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use sunder_nemesis::{NemesisError, NodeId, Outcome, Processes};

/// How long a killed group gets to leave before the kill counts as failed.
pub const KILL_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct RemoteNode {
    host: Arc<Host>,
    launch: Launch,
    /// `None` while killed.
    pid: Option<u32>,
}

#[derive(Debug)]
pub struct RemoteProcesses {
    layout: RunLayout,
    nodes: BTreeMap<NodeId, RemoteNode>,
}

impl RemoteProcesses {
    pub fn new(layout: RunLayout) -> RemoteProcesses {
        RemoteProcesses {
            layout,
            nodes: BTreeMap::new(),
        }
    }

    /// Starts `node` on `host` and records it; returns its pid.
    pub fn start(
        &mut self,
        node: &str,
        host: Arc<Host>,
        launch: Launch,
    ) -> Result<u32, RemoteError> {
        if self.nodes.get(node).is_some_and(|n| n.pid.is_some()) {
            return Err(RemoteError::Invalid(format!("{node} is already started")));
        }
        let pid = host.start(&self.layout, &launch)?;
        self.nodes.insert(
            node.to_string(),
            RemoteNode {
                host,
                launch,
                pid: Some(pid),
            },
        );
        Ok(pid)
    }

    /// The node's pid (its process group), `None` while killed.
    pub fn pid(&self, node: &str) -> Option<u32> {
        self.nodes.get(node).and_then(|n| n.pid)
    }

    fn check(&self, nodes: &[NodeId]) -> Result<(), NemesisError> {
        match nodes.iter().find(|n| !self.nodes.contains_key(*n)) {
            Some(n) => Err(NemesisError::UnknownNode(n.clone())),
            None => Ok(()),
        }
    }

    fn running(&self, id: &str) -> Result<(&Arc<Host>, u32), RemoteError> {
        let n = &self.nodes[id];
        n.pid
            .map(|p| (&n.host, p))
            .ok_or_else(|| RemoteError::Invalid(format!("{id} is not running (killed)")))
    }

    fn kill_one(&self, id: &str) -> Result<(), RemoteError> {
        let (host, pid) = self.running(id)?;
        // A group already gone is killed all the same: only a live remainder is a failure.
        if !host.signal_and_wait_gone(pid, Some(Signal::Kill), KILL_WAIT)? {
            return Err(RemoteError::Invalid(format!(
                "{id}: process group {pid} on {} still has live members after SIGKILL",
                host.name()
            )));
        }
        Ok(())
    }

    /// Kills in parallel; the nodes reached are recorded as killed.
    fn kill_all(&mut self, nodes: &[NodeId]) -> Outcome {
        let o = each_parallel(nodes, |id| self.kill_one(id));
        for id in &o.reached {
            self.nodes.get_mut(id).expect("checked").pid = None;
        }
        o
    }

    fn restart_one(
        &self,
        id: &str,
        started: &Mutex<Vec<(NodeId, u32)>>,
    ) -> Result<(), RemoteError> {
        let n = &self.nodes[id];
        if let Some(pid) = n.pid {
            return Err(RemoteError::Invalid(format!(
                "{id} is running (pid {pid}): kill it first"
            )));
        }
        let pid = n.host.start(&self.layout, &n.launch)?;
        started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id.to_string(), pid));
        Ok(())
    }

    fn signal_one(&self, id: &str, sig: Signal) -> Result<(), RemoteError> {
        let (host, pid) = self.running(id)?;
        host.signal_group(pid, sig)
    }

    /// Kills every running node (the end of a run); the outcome names those that would not die.
    pub fn stop_all(&mut self) -> Outcome {
        let ids: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.pid.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        // A paused group dies of SIGKILL as well; CONT first would only let it run.
        self.kill_all(&ids)
    }
}

impl Processes for RemoteProcesses {
    fn kill(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.check(nodes)?;
        Ok(self.kill_all(nodes))
    }
    fn restart(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.check(nodes)?;
        let started = Mutex::new(Vec::new());
        let o = each_parallel(nodes, |id| self.restart_one(id, &started));
        for (id, pid) in started.into_inner().unwrap_or_else(|p| p.into_inner()) {
            self.nodes.get_mut(&id).expect("checked").pid = Some(pid);
        }
        Ok(o)
    }
    fn pause(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.check(nodes)?;
        Ok(each_parallel(nodes, |id| self.signal_one(id, Signal::Stop)))
    }
    fn resume(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.check(nodes)?;
        Ok(each_parallel(nodes, |id| self.signal_one(id, Signal::Cont)))
    }
}
