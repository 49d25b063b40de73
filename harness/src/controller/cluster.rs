//! The node processes: spawn, kill, restart, pause, resume, stop. Each node runs in its own
//! process group so that a signal reaches everything it started, and the terminal's Ctrl-C
//! reaches only the controller, which then stops the nodes itself.
//!
//! Dropping a [`Cluster`] SIGKILLs every group it ever started: no node outlives the run,
//! whatever path (error, panic, interrupt) leaves the controller.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use sunder_nemesis::netns::NsHandle;
use sunder_nemesis::{DiskFault, Disks, NemesisError, NodeId, Outcome, Processes};

use super::disks::{DiskStep, log_line};

/// How to start one node.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub id: NodeId,
    /// The program and its arguments.
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Added to the controller's environment (e.g. the libfaketime preload).
    pub env: Vec<(OsString, OsString)>,
    /// stdout and stderr are appended here, across restarts.
    pub log: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Running,
    Paused,
    Killed,
    /// It exited by itself (or was stopped at the end).
    Exited,
}

struct NodeProc {
    spec: NodeSpec,
    child: Option<Child>,
    state: NodeState,
    /// Every process group this node ever had, for the drop guard.
    pgid: Option<i32>,
    starts: u32,
}

/// Every node of a run.
pub struct Cluster {
    /// The members, and the twins under their own keys (see [`Cluster::add_twin`]).
    nodes: BTreeMap<NodeId, NodeProc>,
    /// A member's twin's key in `nodes`.
    twin_of: BTreeMap<NodeId, NodeId>,
    /// With `--net netns`: the namespace each node's process enters before exec.
    netns: BTreeMap<NodeId, Arc<NsHandle>>,
    /// With disk faults: the members' data directories as `sunder-diskfs` mounts. Declared
    /// last, so that they are unmounted after [`Drop`] has killed every process.
    disks: Option<Box<dyn DiskStep>>,
}

impl Cluster {
    pub fn new(specs: Vec<NodeSpec>) -> Cluster {
        let nodes = specs
            .into_iter()
            .map(|spec| {
                (
                    spec.id.clone(),
                    NodeProc {
                        spec,
                        child: None,
                        state: NodeState::Exited,
                        pgid: None,
                        starts: 0,
                    },
                )
            })
            .collect();
        Cluster {
            nodes,
            twin_of: BTreeMap::new(),
            netns: BTreeMap::new(),
            disks: None,
        }
    }

    /// Gives the members the disks disk faults act on ([`super::disks::NodeDisks`] in a run).
    pub fn set_disks(&mut self, disks: impl DiskStep + 'static) {
        self.disks = Some(Box::new(disks));
    }

    /// A disk fault: SIGKILL (and reap) every node it hits first, as one power cut would
    /// stop them all at once, then make each one's disk lose, tear or corrupt data. What
    /// each disk dropped goes to that node's log. The nodes stay down.
    ///
    /// Every node killed is reached (in force: the fault's stop restarts it), whatever its
    /// disk step then did; one whose disk step failed, or did only part of its work (a
    /// rollback with entries it could not undo), is also in the outcome's `partial`, with
    /// why. A node that could not be killed is failed, and its disk left alone.
    pub fn disk_crash(&mut self, fault: &DiskFault) -> Outcome {
        if self.disks.is_none() {
            return Outcome::each(&fault.nodes, |_| {
                Err("this run has no disk filesystem".to_string())
            });
        }
        let mut out = Outcome::each(&fault.nodes, |id| self.kill(id));
        let disks = self.disks.as_deref().expect("checked above");
        let mode = fault.mode.name();
        for id in &out.reached {
            let log = |line: &str| {
                if let Some(n) = self.nodes.get(id) {
                    log_line(&n.spec.log, line);
                }
            };
            match disks.apply(id, fault.mode, fault.seed) {
                Ok(report) => {
                    log(&report.line);
                    if let Some(what) = report.partial {
                        out.partial.insert(id.clone(), format!("{mode}: {what}"));
                    }
                }
                Err(e) => {
                    log(&format!(
                        "{mode}: failed on the disk (the node was killed): {e}"
                    ));
                    out.partial
                        .insert(id.clone(), format!("killed, but {mode} failed: {e}"));
                }
            }
        }
        out
    }

    /// Gives member `of` a twin (`--byzantine-mode twins` on a spec target): a second
    /// process from `spec` (its `id` a key of its own, not a member's), in namespace
    /// `netns`, started, killed, paused and resumed together with the member. It is not
    /// among [`ids`](Self::ids): clients, probes and checks know the member only.
    pub fn add_twin(&mut self, of: &str, spec: NodeSpec, netns: Option<Arc<NsHandle>>) {
        let key = spec.id.clone();
        if let Some(h) = netns {
            self.netns.insert(key.clone(), h);
        }
        self.nodes.insert(
            key.clone(),
            NodeProc {
                spec,
                child: None,
                state: NodeState::Exited,
                pgid: None,
                starts: 0,
            },
        );
        self.twin_of.insert(of.to_string(), key);
    }

    /// Twins that are no longer running although nobody killed them: (member, why).
    pub fn twins_gone(&mut self) -> Vec<(NodeId, String)> {
        let pairs: Vec<(NodeId, NodeId)> = self
            .twin_of
            .iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect();
        let mut gone = Vec::new();
        for (of, key) in pairs {
            if self.state(&key) == Some(NodeState::Killed) {
                continue;
            }
            if let Some(status) = self.exited(&key) {
                gone.push((
                    of,
                    format!("{status}; log {}", self.nodes[&key].spec.log.display()),
                ));
            }
        }
        gone
    }

    /// The member and, when it has one, its twin's key.
    fn with_twin(&self, id: &str) -> Vec<NodeId> {
        std::iter::once(id.to_string())
            .chain(self.twin_of.get(id).cloned())
            .collect()
    }

    /// Starts this node (and its restarts) inside the namespace `handle` names.
    pub fn set_netns(&mut self, id: &str, handle: Arc<NsHandle>) {
        self.netns.insert(id.to_string(), handle);
    }

    /// The members (twins not included).
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes
            .keys()
            .filter(|k| !self.twin_of.values().any(|t| t == *k))
            .cloned()
            .collect()
    }

    pub fn spec(&self, id: &str) -> Option<&NodeSpec> {
        self.nodes.get(id).map(|n| &n.spec)
    }

    pub fn state(&self, id: &str) -> Option<NodeState> {
        self.nodes.get(id).map(|n| n.state)
    }

    /// The pid of the node's current process (its group leader), if started.
    pub fn pid(&self, id: &str) -> Option<u32> {
        self.nodes.get(id)?.child.as_ref().map(Child::id)
    }

    /// How many times the node was started (1 + restarts).
    pub fn starts(&self, id: &str) -> u32 {
        self.nodes.get(id).map_or(0, |n| n.starts)
    }

    /// Starts (or restarts) one node, and its twin if it has one, each in a new process
    /// group.
    pub fn spawn(&mut self, id: &str) -> Result<(), String> {
        for key in self.with_twin(id) {
            self.spawn_one(&key)?;
        }
        Ok(())
    }

    fn spawn_one(&mut self, id: &str) -> Result<(), String> {
        let n = self
            .nodes
            .get_mut(id)
            .ok_or_else(|| format!("unknown node {id}"))?;
        if let Some(mut old) = n.child.take() {
            // Reap whatever is left of the last incarnation before its ports are reused.
            let _ = killpg(Pid::from_raw(old.id() as i32), Signal::SIGKILL);
            let _ = old.wait();
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.spec.log)
            .map_err(|e| format!("open {}: {e}", n.spec.log.display()))?;
        let err = log
            .try_clone()
            .map_err(|e| format!("open {}: {e}", n.spec.log.display()))?;
        let mut cmd = Command::new(&n.spec.program);
        cmd.args(&n.spec.args)
            .envs(n.spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0);
        if let Some(ns) = self.netns.get(id).cloned() {
            // SAFETY: `enter` is a single setns(2) call: no allocation, no lock, so it is
            // sound between fork and exec.
            unsafe {
                cmd.pre_exec(move || ns.enter());
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {} for {id}: {e}", n.spec.program.display()))?;
        n.pgid = Some(child.id() as i32);
        n.child = Some(child);
        n.state = NodeState::Running;
        n.starts += 1;
        Ok(())
    }

    pub fn start_all(&mut self) -> Result<(), String> {
        for id in self.ids() {
            self.spawn(&id)?;
        }
        Ok(())
    }

    /// The exit status if the node's process has ended (reaping it).
    pub fn exited(&mut self, id: &str) -> Option<ExitStatus> {
        let n = self.nodes.get_mut(id)?;
        let status = n.child.as_mut()?.try_wait().ok().flatten()?;
        if n.state == NodeState::Running || n.state == NodeState::Paused {
            n.state = NodeState::Exited;
        }
        Some(status)
    }

    fn signal(&mut self, id: &str, sig: Signal) -> Result<(), String> {
        let n = self
            .nodes
            .get(id)
            .ok_or_else(|| format!("unknown node {id}"))?;
        let pgid = n.pgid.ok_or_else(|| format!("{id} was never started"))?;
        killpg(Pid::from_raw(pgid), sig).map_err(|e| format!("{sig} to {id} (group {pgid}): {e}"))
    }

    /// SIGKILL to the node's group (and its twin's), and reap them.
    pub fn kill(&mut self, id: &str) -> Result<(), String> {
        let mut first = Ok(());
        for key in self.with_twin(id) {
            let r = self.kill_one(&key);
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    fn kill_one(&mut self, id: &str) -> Result<(), String> {
        let r = self.signal(id, Signal::SIGKILL);
        let n = self.nodes.get_mut(id).expect("signal checked the id");
        if let Some(c) = n.child.as_mut() {
            let _ = c.wait();
        }
        n.state = NodeState::Killed;
        // A node that had already died cannot be signalled; it is down, which is the point.
        match r {
            Err(e) if !e.contains("ESRCH") => Err(e),
            _ => Ok(()),
        }
    }

    /// SIGSTOP to the node's group (and its twin's, if running).
    pub fn pause(&mut self, id: &str) -> Result<(), String> {
        self.pause_one(id)?;
        for key in self.with_twin(id).into_iter().skip(1) {
            if self.state(&key) == Some(NodeState::Running) {
                self.pause_one(&key)?;
            }
        }
        Ok(())
    }

    fn pause_one(&mut self, id: &str) -> Result<(), String> {
        if self.state(id) != Some(NodeState::Running) {
            return Err(format!("{id} is not running ({:?})", self.state(id)));
        }
        self.signal(id, Signal::SIGSTOP)?;
        self.nodes.get_mut(id).expect("checked").state = NodeState::Paused;
        Ok(())
    }

    /// SIGCONT to the node's group (and its twin's) if paused.
    pub fn resume(&mut self, id: &str) -> Result<(), String> {
        let mut first = Ok(());
        for key in self.with_twin(id) {
            let r = self.resume_one(&key);
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    fn resume_one(&mut self, id: &str) -> Result<(), String> {
        match self.state(id) {
            Some(NodeState::Paused) => {
                self.signal(id, Signal::SIGCONT)?;
                self.nodes.get_mut(id).expect("checked").state = NodeState::Running;
                Ok(())
            }
            // Killed or exited while paused: nothing to resume; the restart brings it back.
            Some(_) => Ok(()),
            None => Err(format!("unknown node {id}")),
        }
    }

    /// Stops every node: SIGCONT (a stopped process cannot act on a signal), `signal`
    /// (SIGTERM, or a spec's `[stop] signal`), then SIGKILL to those still alive after
    /// `grace`. Blocks.
    pub fn stop_all_with(&mut self, signal: Signal, grace: Duration) {
        let all: Vec<NodeId> = self.nodes.keys().cloned().collect();
        for id in all.clone() {
            if self.nodes[&id].child.is_some() {
                let _ = self.signal(&id, Signal::SIGCONT);
                let _ = self.signal(&id, signal);
            }
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            let alive = all
                .iter()
                .filter(|id| self.nodes[id.as_str()].child.is_some() && self.exited(id).is_none())
                .count();
            if alive == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill_all();
    }

    /// SIGKILL every group and reap. Idempotent.
    pub fn kill_all(&mut self) {
        for n in self.nodes.values_mut() {
            if let Some(pgid) = n.pgid {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
            if let Some(c) = n.child.as_mut() {
                let _ = c.wait();
            }
            n.state = NodeState::Exited;
        }
    }

    /// A node's log for an error message: all of it when short, else its first lines
    /// (where a start-up error or panic message is) and its last `lines` lines.
    pub fn log_tail(&self, id: &str, lines: usize) -> String {
        let Some(n) = self.nodes.get(id) else {
            return String::new();
        };
        let text = std::fs::read_to_string(&n.spec.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let head = 10;
        if all.len() <= head + lines {
            return all.join("\n");
        }
        format!(
            "{}\n[... {} lines ...]\n{}",
            all[..head].join("\n"),
            all.len() - head - lines,
            all[all.len() - lines..].join("\n")
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// The cluster shared between the nemesis and the rest of the controller.
#[derive(Clone)]
pub struct SharedCluster(pub Arc<Mutex<Cluster>>);

impl SharedCluster {
    pub fn new(c: Cluster) -> Self {
        SharedCluster(Arc::new(Mutex::new(c)))
    }

    pub fn lock(&self) -> MutexGuard<'_, Cluster> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Carries `f` out on each node, every one even when some fail: the outcome says
    /// exactly which nodes it reached, so that only those are undone later.
    fn each(
        &self,
        nodes: &[NodeId],
        f: impl Fn(&mut Cluster, &str) -> Result<(), String>,
    ) -> Result<Outcome, NemesisError> {
        let mut c = self.lock();
        Ok(Outcome::each(nodes, |n| f(&mut c, n)))
    }
}

impl Disks for SharedCluster {
    fn crash(&mut self, fault: &DiskFault) -> Result<Outcome, NemesisError> {
        Ok(self.lock().disk_crash(fault))
    }

    fn restart(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.each(nodes, Cluster::spawn)
    }
}

impl Processes for SharedCluster {
    fn kill(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.each(nodes, Cluster::kill)
    }

    fn restart(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.each(nodes, Cluster::spawn)
    }

    fn pause(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.each(nodes, Cluster::pause)
    }

    fn resume(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.each(nodes, Cluster::resume)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(dir: &std::path::Path, id: &str) -> NodeSpec {
        NodeSpec {
            id: id.into(),
            program: "/bin/sh".into(),
            // the child's child proves the whole group goes
            args: vec!["-c".into(), "echo started; sleep 300 & sleep 300".into()],
            env: Vec::new(),
            log: dir.join(format!("{id}.log")),
        }
    }

    fn alive(pid: i32) -> bool {
        // Zombies count as dead: look at /proc state.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.split(") ").nth(1).unwrap_or("").starts_with('Z'))
            .unwrap_or(false)
    }

    fn state_char(pid: i32) -> char {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        s.split(") ").nth(1).unwrap().chars().next().unwrap()
    }

    /// Waits (up to 5 s: a loaded machine delivers signals late, and a process may sit in
    /// `D` for a moment first) until the process's state satisfies `want`.
    fn wait_state(pid: i32, want: impl Fn(char) -> bool) -> char {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let c = state_char(pid);
            if want(c) || std::time::Instant::now() >= deadline {
                return c;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn kill_restart_pause_resume_and_drop_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cluster::new(vec![sleeper(dir.path(), "n1"), sleeper(dir.path(), "n2")]);
        c.start_all().unwrap();
        let pid1 = c.nodes["n1"].pgid.unwrap();
        assert!(alive(pid1));
        // Stop the shell only once it has spawned its children and waits: a SIGSTOP that
        // lands while it is still in vfork() leaves it in `D` until the child execs.
        let ready = |c: &Cluster| c.log_tail("n1", 5).contains("started");
        for _ in 0..250 {
            if ready(&c) && state_char(pid1) == 'S' {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        c.pause("n1").unwrap();
        assert_eq!(wait_state(pid1, |c| c == 'T'), 'T');
        c.resume("n1").unwrap();
        assert_ne!(wait_state(pid1, |c| c != 'T'), 'T');
        c.kill("n1").unwrap();
        assert!(!alive(pid1));
        assert_eq!(c.state("n1"), Some(NodeState::Killed));
        c.spawn("n1").unwrap();
        let pid1b = c.nodes["n1"].pgid.unwrap();
        assert_ne!(pid1, pid1b);
        assert!(alive(pid1b));
        for _ in 0..250 {
            if c.log_tail("n1", 5).contains("started\nstarted") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            c.log_tail("n1", 5).contains("started\nstarted"),
            "log appended across restarts"
        );
        let pid2 = c.nodes["n2"].pgid.unwrap();
        drop(c);
        assert!(!alive(pid1b) && !alive(pid2));
    }

    /// A twin is started, killed and restarted with its member, is not a member itself,
    /// is reported when it dies on its own, and goes with the drop guard.
    #[test]
    fn a_twin_follows_its_member_and_is_no_member() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cluster::new(vec![sleeper(dir.path(), "n1"), sleeper(dir.path(), "n2")]);
        c.add_twin("n1", sleeper(dir.path(), "n1-twin"), None);
        assert_eq!(c.ids(), vec!["n1".to_string(), "n2".to_string()]);
        c.start_all().unwrap();
        let twin = c.nodes["n1-twin"].pgid.unwrap();
        assert!(alive(twin));
        assert!(c.twins_gone().is_empty());
        c.kill("n1").unwrap();
        assert!(!alive(twin), "killed with its member");
        assert!(c.twins_gone().is_empty(), "killed is not gone");
        c.spawn("n1").unwrap();
        let twin_b = c.nodes["n1-twin"].pgid.unwrap();
        assert!(twin_b != twin && alive(twin_b), "restarted with its member");
        killpg(Pid::from_raw(twin_b), Signal::SIGKILL).unwrap();
        for _ in 0..250 {
            if !c.twins_gone().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let gone = c.twins_gone();
        assert_eq!(gone.len(), 1, "{gone:?}");
        assert_eq!(gone[0].0, "n1");
        assert!(gone[0].1.contains("n1-twin.log"), "{gone:?}");
        c.spawn("n1").unwrap();
        let twin_c = c.nodes["n1-twin"].pgid.unwrap();
        drop(c);
        assert!(!alive(twin_c));
    }

    #[test]
    fn an_exiting_node_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let spec = NodeSpec {
            args: vec!["-c".into(), "echo 'bad flag' >&2; exit 2".into()],
            ..sleeper(dir.path(), "n1")
        };
        let mut c = Cluster::new(vec![spec]);
        c.start_all().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = c.exited("n1") {
                break s;
            }
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(2));
        assert!(c.log_tail("n1", 3).contains("bad flag"));
        c.stop_all_with(Signal::SIGTERM, Duration::from_millis(100));
    }
}
