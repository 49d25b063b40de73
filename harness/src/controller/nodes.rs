//! The run's node processes wherever they run: on this machine ([`SharedCluster`]) or on
//! remote hosts over SSH ([`RemoteNodes`]). What start-up, the nemesis, the audit and the
//! teardown ask of them, one enum so that the run's flow is the same for both.

use super::cluster::{NodeState, SharedCluster};
use super::remote_nodes::RemoteNodes;
use nix::sys::signal::Signal;
use std::time::Duration;
use sunder_nemesis::{NemesisError, NodeId, Outcome, Processes};

#[derive(Clone)]
pub enum Nodes {
    Local(SharedCluster),
    Remote(RemoteNodes),
}

impl Nodes {
    pub fn ids(&self) -> Vec<NodeId> {
        match self {
            Nodes::Local(c) => c.lock().ids(),
            Nodes::Remote(r) => r.ids(),
        }
    }

    /// Starts every node.
    pub fn start_all(&self) -> Result<(), String> {
        match self {
            Nodes::Local(c) => c.lock().start_all(),
            Nodes::Remote(r) => blocking(|| r.start_all()),
        }
    }

    /// Why the node is no longer running although nobody killed it (its exit status, or
    /// that its process group is gone), `None` while it runs or after the nemesis killed it.
    pub fn exited(&self, id: &str) -> Option<String> {
        match self {
            Nodes::Local(c) => {
                let mut c = c.lock();
                if c.state(id) == Some(NodeState::Killed) {
                    return None;
                }
                c.exited(id).map(|s| s.to_string())
            }
            Nodes::Remote(r) => blocking(|| r.exited(id)),
        }
    }

    /// Where the node's log is (as the run directory will have it) and its last `n` lines.
    pub fn log_tail(&self, id: &str, n: usize) -> (String, String) {
        match self {
            Nodes::Local(c) => {
                let c = c.lock();
                let log = c
                    .spec(id)
                    .map(|s| s.log.display().to_string())
                    .unwrap_or_default();
                (log, c.log_tail(id, n))
            }
            Nodes::Remote(r) => blocking(|| r.log_tail(id, n)),
        }
    }

    /// The node's local process group, for the check that a port answers from it; `None`
    /// for remote nodes (their ports are fixed and the host is theirs).
    pub fn local_pid(&self, id: &str) -> Option<u32> {
        match self {
            Nodes::Local(c) => c.lock().pid(id),
            Nodes::Remote(_) => None,
        }
    }

    /// How many times the node was started.
    pub fn starts(&self, id: &str) -> u32 {
        match self {
            Nodes::Local(c) => c.lock().starts(id),
            Nodes::Remote(r) => r.starts(id),
        }
    }

    /// Kills every node at once (a failed start-up).
    pub fn kill_all(&self) {
        match self {
            Nodes::Local(c) => blocking(|| c.lock().kill_all()),
            Nodes::Remote(r) => {
                blocking(|| r.stop_all());
            }
        }
    }

    /// Stops every node at the end of the run: local nodes get `signal` and `grace` before
    /// SIGKILL; remote ones are killed (their dumps and event streams are written by then).
    /// A warning for what could not be stopped.
    pub fn stop_all(&self, signal: Signal, grace: Duration) -> Option<String> {
        match self {
            Nodes::Local(c) => blocking(|| {
                let mut c = c.lock();
                // A twin that died on its own leaves a run that tested less than it says.
                let gone: Vec<String> = c
                    .twins_gone()
                    .into_iter()
                    .map(|(of, why)| format!("the twin of {of} was not running at the end ({why})"))
                    .collect();
                c.stop_all_with(signal, grace);
                (!gone.is_empty()).then(|| gone.join("; "))
            }),
            Nodes::Remote(r) => blocking(|| r.stop_all()),
        }
    }
}

impl Processes for Nodes {
    fn kill(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        match self {
            Nodes::Local(c) => c.kill(nodes),
            Nodes::Remote(r) => r.kill(nodes),
        }
    }

    fn restart(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        match self {
            Nodes::Local(c) => c.restart(nodes),
            Nodes::Remote(r) => r.restart(nodes),
        }
    }

    fn pause(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        match self {
            Nodes::Local(c) => c.pause(nodes),
            Nodes::Remote(r) => r.pause(nodes),
        }
    }

    fn resume(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        match self {
            Nodes::Local(c) => c.resume(nodes),
            Nodes::Remote(r) => r.resume(nodes),
        }
    }
}

/// Runs a call that may block (remote nodes: ssh round trips, a kill waiting for the
/// group to go) without stalling the other tasks of a multi-threaded runtime.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}
