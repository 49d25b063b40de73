//! Runs the nemesis schedule against the cluster and records every step in the history
//! (process `nemesis`, type `info`): the resolved fault as `value`, or an `error` when it
//! could not be applied. Nothing is skipped silently.
//!
//! A step that took effect on some nodes and failed on others keeps its `value` (the fault
//! as aimed, or for a stop the part in force it undid) and carries, in `error`, the nodes it
//! reached and those it failed on with the reason, as JSON
//! (`{"reached":["n1","n2"],"failed":{"n3":"..."}}`, [`sunder_nemesis::Outcome`]), and
//! the nodes reached only in part under `partial` (a disk fault's node killed whose disk
//! step failed). Only what was reached is kept in force and undone.

use super::admin::Admin;
use super::nodes::{Nodes, blocking};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sunder_checker::{EventType, Process};
use sunder_nemesis::{
    Applied, Fault, FaultKind, Nemesis, NemesisError, NemesisOp, Network, NodeId, Outcome, Step,
};
use sunder_workloads::Recorder;
use tokio::sync::watch;

/// A short description of the faults in force, for the progress line.
pub type InForce = Arc<Mutex<String>>;

/// The network backend chosen at run time (proxy relays or namespaces).
pub type Net = Box<dyn Network + Send>;

pub struct FaultRunner {
    pub nemesis: Nemesis<Net, Nodes>,
    pub members: Vec<NodeId>,
    pub admin: Admin,
    pub recorder: Arc<Recorder>,
    pub in_force: InForce,
}

impl FaultRunner {
    /// Runs `steps` (offsets from `start`) until they end or `stop` fires.
    pub async fn run(&mut self, steps: &[Step], start: Instant, mut stop: watch::Receiver<bool>) {
        for step in steps {
            let at = tokio::time::Instant::from_std(start + step.at());
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if *stop.borrow() {
                return;
            }
            self.step(step).await;
        }
    }

    async fn step(&mut self, step: &Step) {
        match step.op {
            NemesisOp::Start(spec) => {
                let leader = if spec.needs_leader() {
                    self.admin.leader(Duration::from_millis(500)).await
                } else {
                    None
                };
                let mut rng = ChaCha8Rng::seed_from_u64(step.seed);
                let result = spec.resolve(&self.members, leader.as_deref(), &mut rng);
                match result {
                    Ok(fault) => {
                        let f = fault.start_f();
                        // One fault per kind at a time: undo (and record) the last first.
                        if self.nemesis.active().any(|a| a.kind() == fault.kind()) {
                            self.stop(fault.kind());
                        }
                        let value = fault.value();
                        match blocking(|| self.nemesis.start(fault)) {
                            Ok(applied) => self.record(f, applied.value(), applied.error()),
                            Err(e) => self.record(f, value, Some(e.to_string())),
                        }
                    }
                    Err(e) => {
                        let f = spec.start_f();
                        let intent = serde_json::to_value(spec).unwrap_or(Value::Null);
                        self.record(f, intent, Some(e.to_string()));
                    }
                }
            }
            NemesisOp::Stop(kind) => self.stop(kind),
        }
        self.update_in_force();
    }

    fn stop(&mut self, kind: FaultKind) {
        let r = blocking(|| self.nemesis.stop(kind));
        self.record_stop(kind, r, true);
    }

    fn record_stop(
        &self,
        kind: FaultKind,
        r: Result<Option<Applied>, NemesisError>,
        say_none: bool,
    ) {
        match r {
            Ok(Some(undone)) => self.record(kind.stop_f(), undone.value(), undone.error()),
            Ok(None) if say_none => self.record(
                kind.stop_f(),
                Value::Null,
                Some(format!("no {kind} fault in force")),
            ),
            Ok(None) => {}
            Err(e) => self.record(kind.stop_f(), Value::Null, Some(e.to_string())),
        }
    }

    /// Undoes every fault in force (pauses, then kills, then the network), recording each;
    /// what an undo could not reach stays in force and is named in the progress line.
    pub fn heal_all(&mut self) {
        for (kind, r) in blocking(|| self.nemesis.heal_all()) {
            self.record_stop(kind, r, false);
        }
        self.update_in_force();
    }

    fn record(&self, f: &str, value: Value, error: Option<String>) {
        match error.as_deref().map(|e| (e, Outcome::from_error_text(e))) {
            Some((_, Some(o))) if !o.reached.is_empty() => tracing::warn!(
                "nemesis {f} {value}: reached {}, {}",
                o.reached.join(","),
                o.describe_failures()
            ),
            Some((_, Some(o))) => tracing::warn!("nemesis {f}: {}", o.describe_failures()),
            Some((e, None)) => tracing::warn!("nemesis {f}: {e}"),
            None => tracing::info!("nemesis {f} {value}"),
        }
        self.recorder.record(
            Process::Nemesis,
            EventType::Info,
            f,
            None,
            value,
            error,
            None,
        );
    }

    fn update_in_force(&self) {
        let text = self
            .nemesis
            .active()
            .map(describe)
            .collect::<Vec<_>>()
            .join(", ");
        *self.in_force.lock().unwrap_or_else(|p| p.into_inner()) = text;
    }
}

/// `partition 4 links`, `kill n1,n3`, `pause n2`.
pub fn describe(f: &Fault) -> String {
    match f {
        Fault::Partition(g) => format!("partition {} links", g.links().len()),
        Fault::Kill(n) => format!("kill {}", n.join(",")),
        Fault::Pause(n) => format!("pause {}", n.join(",")),
        Fault::Clock(c) => format!("{} {}", c.start_f(), c.nodes().join(",")),
        Fault::Loss(l) => format!("loss {}% {}", l.percent, l.nodes.join(",")),
        Fault::Disk(d) => format!("{} {}", d.mode.name(), d.nodes.join(",")),
    }
}

/// An admin whose every node address refuses connections: nobody answers `status`, so
/// the leader is unknown. Returns the dead address too, for relays that lead nowhere.
#[cfg(test)]
fn unanswering_admin(members: &[String]) -> (Admin, std::net::SocketAddr) {
    let dead: std::net::SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
        l.local_addr().expect("its address")
    };
    let endpoints = members
        .iter()
        .map(|m| sunder_workloads::Endpoint {
            id: m.clone(),
            addr: dead,
        })
        .collect();
    (
        Admin::with_dialer(endpoints, sunder_workloads::Dialer::Direct),
        dead,
    )
}

/// A member that only sleeps, for the tests below: `sleep` itself, no shell, so a SIGSTOP
/// cannot land in a shell's vfork.
#[cfg(test)]
fn sleeper(dir: &std::path::Path, id: &str) -> crate::controller::cluster::NodeSpec {
    crate::controller::cluster::NodeSpec {
        id: id.into(),
        program: "sleep".into(),
        args: vec!["300".into()],
        env: Vec::new(),
        log: dir.join(format!("{id}.log")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::cluster::{Cluster, SharedCluster};
    use sunder_nemesis::{FaultSpec, LossSpec, PartitionShape, ProxyNet, TargetSpec};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_step_is_recorded_and_unresolvable_faults_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let members: Vec<String> = vec!["n1".into(), "n2".into()];
        let cluster = SharedCluster::new(Cluster::new(
            members.iter().map(|m| sleeper(dir.path(), m)).collect(),
        ));
        cluster.lock().start_all().unwrap();
        // Nobody answers `status` here, so the leader is unknown.
        let (admin, dead) = unanswering_admin(&members);
        let net = ProxyNet::start([
            ("n1".to_string(), "n2".to_string(), dead),
            ("n2".to_string(), "n1".to_string(), dead),
        ])
        .await
        .unwrap();
        let start = Instant::now();
        let recorder = Arc::new(Recorder::new(start, Box::new(std::io::sink())));
        let mut runner = FaultRunner {
            nemesis: Nemesis::new(Box::new(net), Nodes::Local(cluster.clone())),
            members,
            admin,
            recorder: recorder.clone(),
            in_force: Arc::default(),
        };
        let step = |at_ms, op| Step { at_ms, op, seed: 1 };
        let steps = [
            step(0, NemesisOp::Start(FaultSpec::Kill(TargetSpec::Leader))),
            step(1, NemesisOp::Stop(FaultKind::Kill)),
            step(2, NemesisOp::Start(FaultSpec::Pause(TargetSpec::One))),
            step(3, NemesisOp::Stop(FaultKind::Pause)),
            step(
                4,
                NemesisOp::Start(FaultSpec::Partition(PartitionShape::One)),
            ),
            step(
                5,
                NemesisOp::Start(FaultSpec::Loss(LossSpec {
                    target: TargetSpec::All,
                    percent: 20,
                })),
            ),
        ];
        let (_tx, rx) = watch::channel(false);
        runner.run(&steps, start, rx).await;
        assert_eq!(*runner.in_force.lock().unwrap(), "partition 2 links");
        runner.heal_all();
        assert_eq!(*runner.in_force.lock().unwrap(), "");
        let ev = recorder.events();
        let fs: Vec<(&str, Option<&str>)> = ev
            .iter()
            .map(|e| (e.f.as_str(), e.error.as_deref()))
            .collect();
        assert_eq!(
            fs,
            [
                ("kill", Some("no leader known")),
                ("restart", Some("no kill fault in force")),
                ("pause", None),
                ("resume", None),
                ("partition", None),
                ("loss", Some("packet loss needs --net netns")),
                ("heal", None),
            ]
        );
        assert!(
            ev.iter()
                .all(|e| e.process == Process::Nemesis && e.kind == EventType::Info)
        );
        assert_eq!(
            ev[0].value["target"], "leader",
            "the intent is kept when it cannot be resolved"
        );
        assert_eq!(ev[2].value.as_array().unwrap().len(), 1);
    }
}

#[cfg(test)]
mod half_applied {
    use super::*;
    use crate::controller::cluster::{Cluster, SharedCluster};
    use sunder_nemesis::{FaultSpec, ProxyNet, TargetSpec};

    fn state(pid: u32) -> char {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        s.rsplit_once(") ").unwrap().1.chars().next().unwrap()
    }

    /// Polls (a loaded machine delivers signals late) until `want` holds or 10 s pass, and
    /// returns the last state seen: the assertion is on the state, not on the time.
    fn wait_state(pid: u32, want: impl Fn(char) -> bool) -> char {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let c = state(pid);
            if want(c) || Instant::now() >= deadline {
                return c;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A pause aimed at all nodes while n3 is down: n1 and n2 are paused, the event says
    /// so and why n3 failed, and both the scheduled stop and heal_all resume them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pause_of_all_with_one_node_down_pauses_and_resumes_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let members: Vec<NodeId> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let cluster = SharedCluster::new(Cluster::new(
            members.iter().map(|m| sleeper(dir.path(), m)).collect(),
        ));
        cluster.lock().start_all().unwrap();
        cluster.lock().kill("n3").unwrap();
        let pids: Vec<u32> = ["n1", "n2"]
            .iter()
            .map(|n| cluster.lock().pid(n).unwrap())
            .collect();
        let (admin, _) = unanswering_admin(&members);
        let net = ProxyNet::start([]).await.unwrap();
        let start = Instant::now();
        let recorder = Arc::new(Recorder::new(start, Box::new(std::io::sink())));
        let mut runner = FaultRunner {
            nemesis: Nemesis::new(Box::new(net), Nodes::Local(cluster.clone())),
            members,
            admin,
            recorder: recorder.clone(),
            in_force: Arc::default(),
        };
        let pause_all = Step {
            at_ms: 0,
            op: NemesisOp::Start(FaultSpec::Pause(TargetSpec::All)),
            seed: 1,
        };
        let resume = Step {
            at_ms: 0,
            op: NemesisOp::Stop(FaultKind::Pause),
            seed: 1,
        };
        let (_tx, rx) = watch::channel(false);

        runner.run(&[pause_all], start, rx.clone()).await;
        for &pid in &pids {
            assert_eq!(wait_state(pid, |c| c == 'T'), 'T', "paused");
        }
        assert_eq!(*runner.in_force.lock().unwrap(), "pause n1,n2");
        runner.run(&[resume], start, rx.clone()).await;
        for &pid in &pids {
            assert_ne!(wait_state(pid, |c| c != 'T'), 'T', "resumed at the stop");
        }
        assert_eq!(*runner.in_force.lock().unwrap(), "");

        runner.run(&[pause_all], start, rx).await;
        for &pid in &pids {
            assert_eq!(wait_state(pid, |c| c == 'T'), 'T', "paused again");
        }
        runner.heal_all();
        for &pid in &pids {
            assert_ne!(wait_state(pid, |c| c != 'T'), 'T', "resumed by heal_all");
        }
        assert_eq!(*runner.in_force.lock().unwrap(), "");

        let ev = recorder.events();
        let fs: Vec<&str> = ev.iter().map(|e| e.f.as_str()).collect();
        assert_eq!(fs, ["pause", "resume", "pause", "resume"]);
        for start in [&ev[0], &ev[2]] {
            assert_eq!(
                start.value,
                serde_json::json!(["n1", "n2", "n3"]),
                "as aimed"
            );
            let o = Outcome::from_error_text(start.error.as_deref().unwrap()).unwrap();
            assert_eq!(o.reached, ["n1", "n2"]);
            assert!(o.failed["n3"].contains("not running"), "{o:?}");
        }
        for stop in [&ev[1], &ev[3]] {
            assert_eq!(
                stop.value,
                serde_json::json!(["n1", "n2"]),
                "what was undone"
            );
            assert_eq!(stop.error, None);
        }
    }
}

/// Disk faults whose disk step fails or does only part of its work, after the power cut
/// killed the nodes: the nodes killed stay in force and come back at the stop, and the
/// history says where the disk step did not do its work, and why.
#[cfg(test)]
mod disk_steps {
    use super::*;
    use crate::controller::cluster::{Cluster, NodeState, SharedCluster};
    use crate::controller::disks::{DiskReport, DiskStep, NodeDisks};
    use std::collections::BTreeMap;
    use std::path::Path;
    use sunder_nemesis::{DiskMode, DiskSpec, FaultSpec, ProxyNet, TargetSpec};

    /// A fake of the layer below the cluster's `disk_crash`: the disk step, failing on the
    /// nodes in `fail` and leaving work undone on those in `partial`. It notes, at each
    /// call, whether every node's process was already gone (one power cut).
    struct FakeDisk {
        fail: BTreeMap<NodeId, String>,
        partial: BTreeMap<NodeId, String>,
        pids: Vec<u32>,
        calls: Arc<Mutex<Vec<(NodeId, bool)>>>,
    }

    impl DiskStep for FakeDisk {
        fn apply(&self, id: &str, mode: DiskMode, _seed: u64) -> Result<DiskReport, String> {
            let all_down = self
                .pids
                .iter()
                .all(|p| !Path::new(&format!("/proc/{p}")).exists());
            self.calls.lock().unwrap().push((id.to_string(), all_down));
            if let Some(e) = self.fail.get(id) {
                return Err(e.clone());
            }
            Ok(DiskReport {
                line: format!("{}: dropped 3 unsynced change(s)", mode.name()),
                partial: self.partial.get(id).cloned(),
            })
        }
    }

    async fn runner(
        cluster: &SharedCluster,
        members: Vec<NodeId>,
        recorder: Arc<Recorder>,
    ) -> FaultRunner {
        let (admin, _) = unanswering_admin(&members);
        let net: Net = Box::new(ProxyNet::start([]).await.unwrap());
        FaultRunner {
            nemesis: Nemesis::new(net, Nodes::Local(cluster.clone()))
                .with_disks(Box::new(cluster.clone())),
            members,
            admin,
            recorder,
            in_force: Arc::default(),
        }
    }

    fn step(op: NemesisOp) -> Step {
        Step {
            at_ms: 0,
            op,
            seed: 1,
        }
    }

    fn lose_unsynced_all() -> Step {
        step(NemesisOp::Start(FaultSpec::Disk(DiskSpec {
            mode: DiskMode::LoseUnsynced,
            target: TargetSpec::All,
        })))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_killed_whose_disk_step_failed_is_restarted_at_the_stop_and_the_history_says_why()
     {
        let dir = tempfile::tempdir().unwrap();
        let members: Vec<NodeId> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let cluster = SharedCluster::new(Cluster::new(
            members.iter().map(|m| sleeper(dir.path(), m)).collect(),
        ));
        cluster.lock().start_all().unwrap();
        let pids: Vec<u32> = members
            .iter()
            .map(|n| cluster.lock().pid(n).unwrap())
            .collect();
        let calls = Arc::new(Mutex::new(Vec::new()));
        cluster.lock().set_disks(FakeDisk {
            fail: [(
                "n2".to_string(),
                "1 file(s) still open on the mount".to_string(),
            )]
            .into(),
            partial: [(
                "n3".to_string(),
                "rolled back in part: 1 error(s) undoing the 3 unsynced change(s): E".to_string(),
            )]
            .into(),
            pids: pids.clone(),
            calls: calls.clone(),
        });
        let start = Instant::now();
        let recorder = Arc::new(Recorder::new(start, Box::new(std::io::sink())));
        let mut runner = runner(&cluster, members.clone(), recorder.clone()).await;
        let (_tx, rx) = watch::channel(false);

        runner.run(&[lose_unsynced_all()], start, rx.clone()).await;
        // every node down before any disk was touched, every disk step tried
        assert_eq!(
            *calls.lock().unwrap(),
            members
                .iter()
                .map(|m| (m.clone(), true))
                .collect::<Vec<_>>()
        );
        for m in &members {
            assert_eq!(cluster.lock().state(m), Some(NodeState::Killed), "{m}");
        }
        assert_eq!(*runner.in_force.lock().unwrap(), "lose-unsynced n1,n2,n3");

        runner
            .run(
                &[step(NemesisOp::Stop(FaultKind::LoseUnsynced))],
                start,
                rx.clone(),
            )
            .await;
        for m in &members {
            assert_eq!(cluster.lock().state(m), Some(NodeState::Running), "{m}");
            assert_eq!(cluster.lock().starts(m), 2, "{m} restarted at the stop");
        }
        assert_eq!(*runner.in_force.lock().unwrap(), "");

        // heal_all, when no stop comes, restarts them too
        runner.run(&[lose_unsynced_all()], start, rx).await;
        runner.heal_all();
        for m in &members {
            assert_eq!(cluster.lock().state(m), Some(NodeState::Running), "{m}");
            assert_eq!(cluster.lock().starts(m), 3, "{m} restarted by heal_all");
        }

        let ev = recorder.events();
        let fs: Vec<&str> = ev.iter().map(|e| e.f.as_str()).collect();
        assert_eq!(
            fs,
            [
                "lose-unsynced",
                "lose-unsynced-restart",
                "lose-unsynced",
                "lose-unsynced-restart"
            ]
        );
        for start in [&ev[0], &ev[2]] {
            assert_eq!(start.value["nodes"], serde_json::json!(["n1", "n2", "n3"]));
            let o = Outcome::from_error_text(start.error.as_deref().unwrap()).unwrap();
            assert_eq!(o.reached, ["n1", "n2", "n3"], "{o:?}");
            assert!(o.failed.is_empty(), "{o:?}");
            assert_eq!(o.partial.keys().collect::<Vec<_>>(), ["n2", "n3"], "{o:?}");
            assert_eq!(
                o.partial["n2"],
                "killed, but lose-unsynced failed: 1 file(s) still open on the mount"
            );
            assert_eq!(
                o.partial["n3"],
                "lose-unsynced: rolled back in part: 1 error(s) undoing the 3 unsynced change(s): E"
            );
        }
        for stop in [&ev[1], &ev[3]] {
            assert_eq!(stop.value["nodes"], serde_json::json!(["n1", "n2", "n3"]));
            assert_eq!(stop.error, None);
        }
        let log = |n: &str| std::fs::read_to_string(dir.path().join(format!("{n}.log"))).unwrap();
        assert!(log("n1").contains("[sunder] lose-unsynced: dropped 3"));
        assert!(
            log("n2").contains(
                "[sunder] lose-unsynced: failed on the disk (the node was killed): 1 file(s) still open"
            ),
            "{}",
            log("n2")
        );
    }

    /// The same on the real disk filesystem: a mount kept busy (a file the test holds open
    /// on it) refuses the rollback; the node, killed, is still restarted at the stop.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_power_cut_on_a_busy_mount_still_restarts_the_node() {
        if !sunder_test_support::met(sunder_test_support::fuse_missing()) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let members: Vec<NodeId> = vec!["n1".into()];
        let disks = NodeDisks::mount(
            &members,
            |id| dir.path().join(id),
            sunder_diskfs::Metadata::Strict,
        )
        .unwrap();
        let held = std::fs::File::create(dir.path().join("n1/held")).unwrap();
        let cluster = SharedCluster::new(Cluster::new(vec![sleeper(dir.path(), "n1")]));
        cluster.lock().set_disks(disks);
        cluster.lock().start_all().unwrap();
        let start = Instant::now();
        let recorder = Arc::new(Recorder::new(start, Box::new(std::io::sink())));
        let mut runner = runner(&cluster, members, recorder.clone()).await;
        let (_tx, rx) = watch::channel(false);

        runner.run(&[lose_unsynced_all()], start, rx.clone()).await;
        assert_eq!(cluster.lock().state("n1"), Some(NodeState::Killed));
        runner
            .run(&[step(NemesisOp::Stop(FaultKind::LoseUnsynced))], start, rx)
            .await;
        assert_eq!(cluster.lock().state("n1"), Some(NodeState::Running));
        assert_eq!(cluster.lock().starts("n1"), 2);

        let ev = recorder.events();
        let o = Outcome::from_error_text(ev[0].error.as_deref().unwrap()).unwrap();
        assert_eq!(o.reached, ["n1"]);
        assert!(
            o.partial["n1"].starts_with("killed, but lose-unsynced failed: 1 file(s) still open"),
            "{o:?}"
        );
        assert_eq!(
            (ev[1].f.as_str(), ev[1].error.as_deref()),
            ("lose-unsynced-restart", None)
        );
        drop(held);
        cluster.lock().kill_all();
    }
}
