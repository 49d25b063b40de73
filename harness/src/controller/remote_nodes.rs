//! [`RemoteNodes`]: a run's nodes on remote hosts over SSH (`--hosts`, `--host`), from the
//! first connection to the last removal.
//!
//! ```text
//!  setup:  connect (one ssh master per host, host key checked; every command → remote.log)
//!            ─► upload `sunder` to <base>/<run>/bin/ (and a PBFT run's keys)
//!            ─► nftables table `inet sunder-<run>` per host (RemoteNet)
//!            ─► clock control files (RemoteClocks, with --nemesis clock)
//!  start_all: `sunder node ...` per host, detached, by pid (RemoteProcesses)
//!  nemesis:   kill / restart / pause / resume by pid, partitions and loss as rules
//!  finish:    stop ─► download nodes/<id>/, <id>.log, <id>.events.jsonl
//!            ─► tables deleted, leftover processes killed, <base>/<run>/ removed
//! ```
//!
//! Dropped without [`RemoteNodes::finish`] (a failed start-up, an interrupt, a panic), the
//! same removal runs without the download: no process, rule or file of the run stays on
//! any host that still answers. `sunder clean --hosts` removes what a killed controller
//! left.

use super::config::TestConfig;
use super::remote::{Hosts, RemoteNode, node_launches, remote_launch};
use super::rundir::RunDir;
use super::spec::{Member, NodeContext, TargetSpec};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use sunder_nemesis::clock::{fake_monotonic_requested, faketime_env, find_libfaketime};
use sunder_nemesis::{FaultKind, NemesisError, NodeId, Outcome, Processes};
use sunder_remote::{
    CommandLog, Host, Launch, NetNode, RemoteClocks, RemoteNet, RemoteProcesses, RunLayout, Scope,
};

/// The most bytes of one node's files downloaded at the end (its data directory, its log,
/// its event stream, each).
const DOWNLOAD_LIMIT: u64 = 1 << 30;

/// The nodes of a run on their hosts. Clones share them.
#[derive(Clone)]
pub struct RemoteNodes(Arc<Mutex<State>>);

struct State {
    hosts: BTreeMap<NodeId, Arc<Host>>,
    layout: RunLayout,
    procs: RemoteProcesses,
    launches: BTreeMap<NodeId, Launch>,
    starts: BTreeMap<NodeId, u32>,
    /// A clone of the nemesis's network, to delete the tables first at the end.
    net: Option<RemoteNet>,
    /// Removed from the hosts already (by `finish`, or a drop).
    removed: bool,
}

/// What the rest of the run needs from the setup.
pub struct RemoteSetup {
    pub nodes: RemoteNodes,
    pub net: RemoteNet,
    pub clocks: Option<RemoteClocks>,
    /// Where the controller's clients reach each node.
    pub clients: BTreeMap<NodeId, SocketAddr>,
}

impl RemoteNodes {
    /// Connects to every host and installs what the run needs; nothing is started yet.
    /// On an error, what was made so far is removed before it returns.
    pub fn setup(cfg: &TestConfig, dir: &RunDir, hosts: &Hosts) -> anyhow::Result<RemoteSetup> {
        let run = super::remote::run_id(&dir.path, std::process::id())?;
        let layout =
            RunLayout::new(&hosts.base, run).map_err(|e| anyhow::anyhow!("--remote-base: {e}"))?;
        let log = Arc::new(
            CommandLog::open(&dir.file("remote.log")).context("open the run's remote.log")?,
        );
        let members = cfg.members();
        let connected = each_node(&members, |id| {
            Host::connect(hosts.spec(id), &dir.path, log.clone())
                .map(Arc::new)
                .map_err(|e| anyhow::anyhow!("{e}"))
        });
        // From here on, a drop removes whatever the run made on the hosts it reached.
        let mut state = State {
            hosts: BTreeMap::new(),
            layout: layout.clone(),
            procs: RemoteProcesses::new(layout.clone()),
            launches: BTreeMap::new(),
            starts: BTreeMap::new(),
            net: None,
            removed: false,
        };
        let mut errors = Vec::new();
        for (id, h) in connected {
            match h {
                Ok(h) => {
                    state.hosts.insert(id, h);
                }
                Err(e) => errors.push(format!("node {id}: {e:#}")),
            }
        }
        if !errors.is_empty() {
            bail!(
                "connecting to the hosts (every command is in {}):\n{}",
                log.path().display(),
                errors.join("\n")
            );
        }
        eprintln!(
            "sunder: connected to {} host(s) over ssh; the run's directory on them is {}",
            state.hosts.len(),
            layout.dir()
        );

        let addrs = resolve(hosts, &members)?;
        let exe = std::env::current_exe().context("find this executable")?;
        let remote_exe = format!("{}/bin/sunder", layout.dir());
        let keys = super::launch::signs(cfg);
        let builtin = cfg.spec.is_none();
        let uploaded = each_node(&members, |id| {
            let h = &state.hosts[id];
            if builtin {
                h.upload(&exe, &remote_exe, 0o755)?;
            }
            if keys {
                let home = dir.node_file(id);
                let work = layout.work_dir(id);
                h.upload(
                    &home.join("secret.key"),
                    &format!("{work}/secret.key"),
                    0o600,
                )?;
                h.upload(
                    &home.join("public-keys.json"),
                    &format!("{work}/public-keys.json"),
                    0o644,
                )?;
            }
            Ok::<(), sunder_remote::RemoteError>(())
        });
        let failed: Vec<String> = uploaded
            .into_iter()
            .filter_map(|(id, r)| r.err().map(|e| format!("node {id}: {e}")))
            .collect();
        if !failed.is_empty() {
            bail!("installing sunder on the hosts:\n{}", failed.join("\n"));
        }

        let net = RemoteNet::setup(
            &layout,
            members
                .iter()
                .map(|id| {
                    let addr = match addrs[id] {
                        IpAddr::V4(a) => a,
                        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
                    };
                    let host = state.hosts[id].clone();
                    (id.clone(), NetNode { host, addr })
                })
                .collect(),
        )
        .context("set up the run's nftables tables on the hosts")?;
        state.net = Some(net.clone());

        let mut launches = match &cfg.spec {
            None => node_launches(cfg, &layout, &addrs, &remote_exe)?,
            Some(spec) => spec_launches(spec, &layout, &members, &addrs, &state.hosts)?,
        };
        let clocks = if cfg.nemesis.contains(&FaultKind::Clock) {
            let lib = find_libfaketime().context(
                "--nemesis clock needs libfaketime: install the Debian package `faketime` \
                 (on this machine, where its path is found, and at the same path on every host)",
            )?;
            let lib_text = lib.display().to_string();
            for (id, h) in &state.hosts {
                if !h.exists(&lib_text)? {
                    bail!(
                        "--nemesis clock: host of {id} has no {lib_text} (install the Debian \
                         package `faketime` there)"
                    );
                }
            }
            let clocks = RemoteClocks::new(layout.clone(), state.hosts.clone());
            clocks.init().context("write the clock control files")?;
            for n in &mut launches {
                let file = clocks.file(&n.id).expect("a member").to_string();
                for (k, v) in faketime_env(&lib, Path::new(&file), fake_monotonic_requested()) {
                    n.launch = n.launch.clone().env(&k, &v);
                }
            }
            Some(clocks)
        } else {
            None
        };
        let clients = launches.iter().map(|n| (n.id.clone(), n.client)).collect();
        state.launches = launches.into_iter().map(|n| (n.id, n.launch)).collect();
        Ok(RemoteSetup {
            nodes: RemoteNodes(Arc::new(Mutex::new(state))),
            net,
            clocks,
            clients,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.lock().launches.keys().cloned().collect()
    }

    /// Starts every node on its host.
    pub fn start_all(&self) -> Result<(), String> {
        let mut s = self.lock();
        let State {
            hosts,
            procs,
            launches,
            starts,
            ..
        } = &mut *s;
        for (id, launch) in launches.iter() {
            procs
                .start(id, hosts[id].clone(), launch.clone())
                .map_err(|e| format!("starting node {id}: {e}"))?;
            *starts.entry(id.clone()).or_default() += 1;
        }
        Ok(())
    }

    /// `Some` when the node's process group is gone although nobody killed it.
    pub fn exited(&self, id: &str) -> Option<String> {
        let s = self.lock();
        let pid = s.procs.pid(id)?;
        match s.hosts.get(id)?.group(pid) {
            Ok(live) if live.is_empty() => Some(format!(
                "its process group {pid} on the host is gone; exit status unknown"
            )),
            _ => None,
        }
    }

    /// The node's log on its host (as `host:path`) and its last `n` lines.
    pub fn log_tail(&self, id: &str, n: usize) -> (String, String) {
        let s = self.lock();
        let Some(h) = s.hosts.get(id) else {
            return (String::new(), String::new());
        };
        let path = s.layout.log_file(id);
        let lines = n.to_string();
        let tail = match h.run(&["tail", "-n", &lines, "--", &path]) {
            Ok(o) => o.stdout_text(),
            Err(e) => format!("(cannot read it: {e})"),
        };
        (format!("{}:{path}", h.spec().address), tail)
    }

    pub fn starts(&self, id: &str) -> u32 {
        self.lock().starts.get(id).copied().unwrap_or(0)
    }

    /// Kills every running node; a warning naming those that would not die.
    pub fn stop_all(&self) -> Option<String> {
        let o = self.lock().procs.stop_all();
        (!o.failed.is_empty())
            .then(|| format!("stopping the remote nodes: {}", o.describe_failures()))
    }

    /// The end of the run: downloads every node's directory, log and event stream into
    /// `nodes/`, then removes the run from the hosts. Returns what went wrong.
    pub fn finish(&self, dir: &RunDir) -> Vec<String> {
        let mut s = self.lock();
        let mut warnings = Vec::new();
        let local = dir.path.join("nodes");
        for (id, h) in &s.hosts {
            let files = [
                s.layout.work_dir(id),
                s.layout.log_file(id),
                format!("{}/{id}.events.jsonl", s.layout.dir()),
            ];
            for f in files {
                if let Err(e) = h.download(&f, &local, DOWNLOAD_LIMIT) {
                    warnings.push(format!("downloading {f} from the host of {id}: {e}"));
                }
            }
        }
        warnings.extend(s.remove());
        for w in &warnings {
            eprintln!("sunder: warning: {w}");
        }
        warnings
    }
}

impl State {
    /// Deletes the run's tables, kills what is left of its processes and removes its
    /// directory, on every host; what failed, for warnings.
    fn remove(&mut self) -> Vec<String> {
        if self.removed {
            return Vec::new();
        }
        self.removed = true;
        let mut warnings = Vec::new();
        if let Some(net) = &self.net
            && let Err(e) = net.teardown()
        {
            warnings.push(format!("deleting the run's nftables tables: {e}"));
        }
        let hosts: Vec<Arc<Host>> = self.hosts.values().cloned().collect();
        let scope = Scope::Run(self.layout.run().clone());
        match sunder_remote::clean(&hosts, self.layout.base(), &scope) {
            Ok(cleaned) => {
                for c in cleaned.iter().filter(|c| !c.is_complete()) {
                    warnings.push(format!(
                        "removing the run from {}: {} (run `sunder clean --hosts`)",
                        c.host,
                        c.errors.join("; ")
                    ));
                }
            }
            Err(e) => warnings.push(format!(
                "removing the run from the hosts: {e} (run `sunder clean --hosts`)"
            )),
        }
        warnings
    }
}

impl Drop for State {
    fn drop(&mut self) {
        for w in self.remove() {
            eprintln!("sunder: error: {w}");
        }
    }
}

impl Processes for RemoteNodes {
    fn kill(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.lock().procs.kill(nodes)
    }

    fn restart(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        let mut s = self.lock();
        let o = s.procs.restart(nodes)?;
        for id in &o.reached {
            *s.starts.entry(id.clone()).or_default() += 1;
        }
        Ok(o)
    }

    fn pause(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.lock().procs.pause(nodes)
    }

    fn resume(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.lock().procs.resume(nodes)
    }
}

/// A spec target's nodes on their hosts: the spec's command and config files rendered with
/// each host's address, the spec's fixed ports and the run's directory there. The config
/// files are written to the hosts now; a program given relative to the spec (a script
/// of the spec's author) is uploaded to `<run>/bin/`, a bare name or an absolute path is
/// the host's own.
fn spec_launches(
    spec: &TargetSpec,
    layout: &RunLayout,
    ids: &[NodeId],
    addrs: &BTreeMap<NodeId, IpAddr>,
    hosts: &BTreeMap<NodeId, Arc<Host>>,
) -> anyhow::Result<Vec<RemoteNode>> {
    let members: Vec<Member> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| Member {
            id: id.clone(),
            index: i + 1,
            ip: addrs[id],
            client_port: spec.ports.client,
            peer_port: spec.ports.peer,
        })
        .collect();
    let spec_dir = spec.path.parent().filter(|d| !d.as_os_str().is_empty());
    let mut out = Vec::new();
    for (me, m) in members.iter().enumerate() {
        let id = &m.id;
        let host = &hosts[id];
        let ctx = NodeContext {
            me,
            members: members.clone(),
            data_dir: PathBuf::from(layout.work_dir(id)),
            log: PathBuf::from(layout.log_file(id)),
            run_dir: PathBuf::from(layout.dir()),
        };
        for (path, text) in spec.node_files(&ctx) {
            host.write_file(&path.display().to_string(), text.as_bytes(), 0o644)
                .with_context(|| format!("write {} on the host of {id}", path.display()))?;
        }
        let (program, args, env) = spec.node_command(&ctx);
        let program = match spec_dir {
            Some(d) if program.starts_with(d) => {
                let name = program
                    .file_name()
                    .with_context(|| format!("program {}", program.display()))?;
                let remote = format!("{}/bin/{}", layout.dir(), name.to_string_lossy());
                host.upload(&program, &remote, 0o755)
                    .with_context(|| format!("upload {} to the host of {id}", program.display()))?;
                remote
            }
            _ => program.display().to_string(),
        };
        out.push(RemoteNode {
            id: id.clone(),
            launch: remote_launch(layout, id, program, args, env)?,
            client: m.client_addr(),
        });
    }
    Ok(out)
}

/// `f` for every node at once, one thread each (ssh round trips, uploads); results by node.
fn each_node<T: Send>(members: &[NodeId], f: impl Fn(&str) -> T + Sync) -> BTreeMap<NodeId, T> {
    std::thread::scope(|s| {
        let handles: Vec<_> = members
            .iter()
            .map(|id| (id.clone(), s.spawn(|| f(id))))
            .collect();
        handles
            .into_iter()
            .map(|(id, h)| (id, h.join().expect("a host thread panicked")))
            .collect()
    })
}

/// Each node's host address as an IPv4 address: the peers' packets come from it, and the
/// hosts' rules drop by it. A name resolves here, once.
fn resolve(hosts: &Hosts, members: &[NodeId]) -> anyhow::Result<BTreeMap<NodeId, IpAddr>> {
    let mut out = BTreeMap::new();
    for id in members {
        let address = &hosts.nodes[id].address;
        let ip = match address.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => (address.as_str(), 22)
                .to_socket_addrs()
                .with_context(|| format!("resolve {address} (node {id})"))?
                .map(|a| a.ip())
                .find(IpAddr::is_ipv4)
                .with_context(|| format!("{address} (node {id}) has no IPv4 address"))?,
        };
        if !ip.is_ipv4() {
            bail!("node {id}: {address} is IPv6; the remote network faults match IPv4 peers only");
        }
        out.insert(id.clone(), ip);
    }
    Ok(out)
}
