//! Bringing the cluster up: the network (ports and relays, or namespaces), node processes,
//! and the wait until every node answers `status`. A port taken by someone else between
//! choosing and binding it is retried with fresh ports; any other start-up failure is the
//! harness's (exit 3).

use super::admin::Admin;
use super::cluster::{Cluster, NodeSpec, SharedCluster};
use super::config::NetBackend;
use super::config::TestConfig;
use super::disks::NodeDisks;
use super::faults::Net;
use super::keys::RunKeys;
use super::nodes::Nodes;
use super::ports;
use super::probe::Probe;
use super::remote::Hosts;
use super::remote_nodes::RemoteNodes;
use super::rundir::RunDir;
use super::spec::{Member, NodeContext, TargetSpec};
use anyhow::Context;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use sunder_nemesis::clock::{fake_monotonic_requested, faketime_env, find_libfaketime, preloaded};
use sunder_nemesis::netns::TwinPlan;
use sunder_nemesis::{Clocks, FaketimeClocks, FaultKind, NetnsNet, NodeId, ProxyNet};
use sunder_remote::RemoteClocks;
use sunder_workloads::{AnyClient, BftClient, Dialer, Endpoint, JsonLinesClient, NsDialer};
use tokio::sync::watch;

/// Built-in nodes get this long after SIGTERM before SIGKILL.
const BUILTIN_STOP_GRACE: Duration = Duration::from_secs(3);
/// Attempts when a node finds its port taken.
const ATTEMPTS: usize = 3;

pub struct Launched {
    pub nodes: Nodes,
    /// The network backend, for the nemesis.
    pub net: Net,
    /// With `--net netns`: the namespaces, for the teardown at the end of the run (their
    /// drop guard tears them down on every other path).
    pub netns: Option<Arc<NetnsNet>>,
    /// The workers' client (it reaches the nodes the way this backend needs).
    pub client: Arc<AnyClient>,
    pub admin: Admin,
    /// Whether a node is up: `status`, or a spec's ready check.
    pub probe: Probe,
    /// How nodes are stopped at the end: a signal, then SIGKILL after the grace.
    pub stop: (nix::sys::signal::Signal, Duration),
    /// With `--nemesis clock`: the nodes' clock control files.
    pub clocks: Option<RunClocks>,
    /// Said on the terminal already; for results.json.
    pub warnings: Vec<String>,
}

/// The clock backend of a run with clock faults: control files here, or on the hosts.
pub enum RunClocks {
    Local(FaketimeClocks),
    Remote(RemoteClocks),
}

impl RunClocks {
    pub fn boxed(self) -> Box<dyn Clocks + Send> {
        match self {
            RunClocks::Local(c) => Box::new(c),
            RunClocks::Remote(c) => Box::new(c),
        }
    }
}

pub enum Startup {
    Ready(Box<Launched>),
    Failed(String),
    Interrupted,
}

/// Where one node listens and how it reaches its peers: what its command line is made of.
pub struct NodeCtx<'a> {
    pub id: &'a str,
    /// 1-based position among the members. The built-in targets do not need it or the
    /// member list; spec-file targets' templates do.
    #[allow(dead_code)]
    pub index: usize,
    #[allow(dead_code)]
    pub members: &'a [NodeId],
    /// Where clients (and the admin) reach it.
    pub client: SocketAddr,
    /// Where it accepts its peers' connections.
    pub peer_listen: SocketAddr,
    /// Where it dials each other member (a relay, or the peer itself).
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Its data directory, its event log, and its log (stdout and stderr; a spec's
    /// `{log}`).
    pub data: PathBuf,
    pub events: PathBuf,
    pub log: PathBuf,
}

/// How to start one node. The clock preload is added on top of `env`.
pub struct NodeCmd {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
}

/// Builds each node's command; see [`node_command`].
pub type CommandFor<'a> = dyn Fn(&NodeCtx<'_>) -> anyhow::Result<NodeCmd> + 'a;

/// Where node commands come from: `sunder node <target>`, or a spec file's template.
fn node_command<'a>(
    cfg: &'a TestConfig,
    dir: &'a RunDir,
    layout: &Layout,
) -> anyhow::Result<Box<CommandFor<'a>>> {
    if let Some(spec) = &cfg.spec {
        let members = spec_members(&cfg.members(), layout);
        return Ok(Box::new(move |ctx: &NodeCtx<'_>| {
            spec_command(spec, dir, &members, ctx)
        }));
    }
    let exe = std::env::current_exe().context("find this executable")?;
    Ok(Box::new(move |ctx: &NodeCtx<'_>| {
        Ok(builtin_command(cfg, &exe, ctx))
    }))
}

/// Every member as a spec's templates see it: its address and its two ports.
fn spec_members(ids: &[NodeId], layout: &Layout) -> Vec<Member> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| Member {
            id: id.clone(),
            index: i + 1,
            ip: layout.client[id].ip(),
            client_port: layout.client[id].port(),
            peer_port: layout.listen[id].port(),
        })
        .collect()
}

/// A spec target's node: its template rendered with this node's context, and its config
/// files (`[[files]]`) written into its data directory, which is created for them.
fn spec_command(
    spec: &TargetSpec,
    dir: &RunDir,
    members: &[Member],
    ctx: &NodeCtx<'_>,
) -> anyhow::Result<NodeCmd> {
    let node = NodeContext {
        me: ctx.index - 1,
        members: members.to_vec(),
        data_dir: ctx.data.clone(),
        log: ctx.log.clone(),
        run_dir: dir.path.clone(),
    };
    for (path, text) in spec.node_files(&node) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    }
    let (program, args, env) = spec.node_command(&node);
    Ok(NodeCmd { program, args, env })
}

/// `sunder node <target> --id .. --client .. --peer-listen .. --peer p=addr ...`.
pub fn builtin_command(cfg: &TestConfig, exe: &Path, ctx: &NodeCtx<'_>) -> NodeCmd {
    let mut args: Vec<OsString> = vec!["node".into(), cfg.target.clone().into()];
    let mut push = |k: &str, v: String| {
        args.push(k.into());
        args.push(v.into());
    };
    push("--id", ctx.id.to_string());
    push("--client", ctx.client.to_string());
    push("--peer-listen", ctx.peer_listen.to_string());
    for (peer, addr) in &ctx.peers {
        push("--peer", format!("{peer}={addr}"));
    }
    push("--data", ctx.data.display().to_string());
    push("--events", ctx.events.display().to_string());
    push("--seed", cfg.seed.to_string());
    for b in &cfg.bugs {
        push("--bug", b.clone());
    }
    for (k, v) in &cfg.opts {
        push("--opt", format!("{k}={v}"));
    }
    let liars = &cfg.byzantine_nodes;
    if let Some(mode) = &cfg.byzantine_mode
        && liars.iter().any(|l| l == ctx.id)
    {
        push("--byzantine", mode.clone());
        for ally in liars.iter().filter(|l| *l != ctx.id) {
            push("--byzantine-ally", ally.clone());
        }
    }
    if signs(cfg) {
        // Written by start_once into the node's directory (keys.rs).
        push(
            "--secret-key",
            ctx.data.join("secret.key").display().to_string(),
        );
        push(
            "--public-keys",
            ctx.data.join("public-keys.json").display().to_string(),
        );
    }
    NodeCmd {
        program: exe.to_path_buf(),
        args,
        env: Vec::new(),
    }
}

/// Whether the run's nodes sign and need keys from the controller (PBFT).
pub fn signs(cfg: &TestConfig) -> bool {
    cfg.spec.is_none() && cfg.target == "pbft"
}

/// How long a BFT client waits on the primary before asking every replica (and then
/// between retransmissions): a tenth of the op timeout, so that a call outlives several
/// rounds of it.
fn bft_retransmit(cfg: &TestConfig) -> Duration {
    cfg.op_timeout / 10
}

/// Starts the cluster, retrying with new ports when one was taken under our feet.
pub async fn launch(
    cfg: &TestConfig,
    dir: &RunDir,
    intr: &mut watch::Receiver<bool>,
) -> anyhow::Result<Startup> {
    if cfg.nemesis.contains(&FaultKind::Clock) && find_libfaketime().is_none() {
        return Ok(Startup::Failed(
            "--nemesis clock needs libfaketime, which was not found: install the Debian \
             package `faketime` (apt-get install faketime), or point SUNDER_LIBFAKETIME at \
             libfaketime.so.1"
                .into(),
        ));
    }
    let mut attempt = 1;
    loop {
        let entropy = super::config::derive_seed(super::config::os_entropy(), "ports");
        // Dropping `l` on any path below removes what it made (processes, namespaces).
        let mut l = match start_once(cfg, dir, entropy).await {
            Ok(l) => l,
            Err(e) => return Ok(Startup::Failed(format!("{e:#}"))),
        };
        if *intr.borrow() {
            // The signal came during setup: nothing is started on top of it.
            return Ok(Startup::Interrupted);
        }
        let spawned = l.nodes.start_all();
        let outcome = match spawned {
            Err(e) => Err(e),
            Ok(()) => wait_ready(&l.nodes, &l.probe, &cfg.byzantine_nodes, intr).await,
        };
        match outcome {
            Ok(Some(late)) => {
                for w in late {
                    eprintln!("sunder: warning: {w}");
                    l.warnings.push(w);
                }
                check_preload(&mut l);
                return Ok(Startup::Ready(Box::new(l)));
            }
            Ok(None) => {
                l.nodes.kill_all();
                return Ok(Startup::Interrupted);
            }
            Err(e) => {
                l.nodes.kill_all();
                // Remote nodes have fixed ports: new ones would not help.
                let local = cfg.hosts.is_none();
                if local && attempt < ATTEMPTS && e.contains("Address already in use") {
                    eprintln!("sunder: a port was taken during start-up; retrying with new ports");
                    for id in cfg.members() {
                        let _ = std::fs::remove_dir_all(dir.node_file(&id));
                    }
                    attempt += 1;
                    continue;
                }
                return Ok(Startup::Failed(e));
            }
        }
    }
}

/// Each node's client and peer-listen addresses, and where it dials each peer.
struct Layout {
    client: BTreeMap<NodeId, SocketAddr>,
    listen: BTreeMap<NodeId, SocketAddr>,
    dial: BTreeMap<(NodeId, NodeId), SocketAddr>,
}

/// With `--net proxy`: ports the OS hands out on 127.0.0.1, a relay per directed pair
/// (none for a spec target: its members dial each other's own addresses).
async fn proxy_layout(
    members: &[NodeId],
    entropy: u64,
    relays: bool,
) -> anyhow::Result<(Layout, ProxyNet)> {
    let n = members.len();
    let addrs = ports::allocate(2 * n, entropy)?;
    let client: BTreeMap<NodeId, SocketAddr> = members
        .iter()
        .cloned()
        .zip(addrs[..n].iter().copied())
        .collect();
    let listen: BTreeMap<NodeId, SocketAddr> = members
        .iter()
        .cloned()
        .zip(addrs[n..].iter().copied())
        .collect();
    let mut links = Vec::new();
    for a in members.iter().filter(|_| relays) {
        for b in members.iter().filter(|b| *b != a) {
            links.push((a.clone(), b.clone(), listen[b]));
        }
    }
    let net = ProxyNet::start(links)
        .await
        .context("start the proxy relays")?;
    let mut dial = BTreeMap::new();
    for a in members {
        for b in members.iter().filter(|b| *b != a) {
            let addr = net.addr(a, b).unwrap_or(listen[b]);
            dial.insert((a.clone(), b.clone()), addr);
        }
    }
    Ok((
        Layout {
            client,
            listen,
            dial,
        },
        net,
    ))
}

/// The twins of a spec target's Byzantine nodes (`--byzantine-mode twins`; a built-in
/// target's twins live inside its node process, see `sunder_core::twins`): the honest
/// members split by id as the built-in twins split them, the upper half talking to the
/// twins, the rest and the clients to the originals.
fn twin_plan(cfg: &TestConfig) -> TwinPlan {
    if cfg.spec.is_none() || cfg.byzantine_mode.as_deref() != Some(sunder_node::twins::MODE) {
        return TwinPlan::default();
    }
    let honest: Vec<NodeId> = cfg
        .members()
        .into_iter()
        .filter(|m| !cfg.byzantine_nodes.contains(m))
        .collect();
    TwinPlan {
        twinned: cfg.byzantine_nodes.clone(),
        twin_side: honest[honest.len() / 2..].to_vec(),
    }
}

/// How long, once every honest node is ready, the Byzantine ones still get.
const BYZANTINE_GRACE: Duration = Duration::from_secs(5);

/// Fixed ports inside the namespaces: each node has an address of its own.
const NETNS_CLIENT_PORT: u16 = 7000;
const NETNS_PEER_PORT: u16 = 7001;

/// With `--net netns`: every node on its bridge address, peers dialled directly.
fn netns_layout(members: &[NodeId], net: &NetnsNet, spec: Option<&TargetSpec>) -> Layout {
    let ip = |id: &str| IpAddr::V4(net.addr(id).expect("a member"));
    let (client_port, peer_port) = spec.map_or((NETNS_CLIENT_PORT, NETNS_PEER_PORT), |s| {
        (s.ports.client, s.ports.peer)
    });
    let client = members
        .iter()
        .map(|id| (id.clone(), SocketAddr::new(ip(id), client_port)))
        .collect();
    let listen: BTreeMap<NodeId, SocketAddr> = members
        .iter()
        .map(|id| (id.clone(), SocketAddr::new(ip(id), peer_port)))
        .collect();
    let mut dial = BTreeMap::new();
    for a in members {
        for b in members.iter().filter(|b| *b != a) {
            dial.insert((a.clone(), b.clone()), listen[b]);
        }
    }
    Layout {
        client,
        listen,
        dial,
    }
}

async fn start_once(cfg: &TestConfig, dir: &RunDir, entropy: u64) -> anyhow::Result<Launched> {
    if let Some(hosts) = &cfg.hosts {
        return start_remote(cfg, dir, hosts);
    }
    let members = cfg.members();
    let (layout, net, netns, dialer): (Layout, Net, Option<Arc<NetnsNet>>, Dialer) = match cfg.net {
        NetBackend::Proxy => {
            let (layout, net) = proxy_layout(&members, entropy, cfg.spec.is_none()).await?;
            (layout, Box::new(net), None, Dialer::Direct)
        }
        NetBackend::Netns => {
            let m = members.clone();
            let net = Arc::new(
                tokio::task::block_in_place(|| NetnsNet::setup_with_twins(m, twin_plan(cfg)))
                    .context("set up the network namespaces")?,
            );
            // The run's own record of what it made, so a namespace seen later is traced
            // to its run (and `sunder clean` is not the only way to find it).
            let names = net.names();
            dir.write_json(
                "netns.json",
                &serde_json::json!({
                    "tag": names.tag,
                    "namespaces": names.namespaces(),
                    "nftables_table": format!("inet {}", names.table()),
                    "addresses": members.iter()
                        .map(|m| (m.clone(), names.addr(m).map(|a| a.to_string())))
                        .collect::<BTreeMap<_, _>>(),
                    "twins": names.twins,
                    "twin_side": net.twin_side(),
                }),
            )?;
            let hub = net.hub_path();
            let dialer = NsDialer::enter(&hub)
                .with_context(|| format!("enter the clients' namespace {}", hub.display()))?;
            (
                netns_layout(&members, &net, cfg.spec.as_deref()),
                Box::new(net.clone()),
                Some(net),
                Dialer::Netns(Arc::new(dialer)),
            )
        }
    };

    // Disk faults: every member's data directory a mount of the disk filesystem, before
    // anything (keys, a spec's files) is written into it.
    let disks = if cfg.diskfs {
        Some(tokio::task::block_in_place(|| {
            NodeDisks::mount(&members, |id| dir.node_file(id), cfg.disk_metadata)
        })?)
    } else {
        None
    };
    let clock_files: BTreeMap<String, PathBuf> = members
        .iter()
        .map(|id| (id.clone(), dir.node_file(&format!("{id}.faketime"))))
        .collect();
    let (clocks, lib) = match (cfg.nemesis.contains(&FaultKind::Clock), find_libfaketime()) {
        (true, Some(lib)) => (
            Some(FaketimeClocks::new(clock_files.clone()).context("write the clock files")?),
            Some(lib),
        ),
        _ => (None, None),
    };
    // A PBFT run's keys: one client identity per worker, plus one per node for the final
    // reads, which run beside each other.
    let keys = signs(cfg)
        .then(|| RunKeys::new(cfg.seed, &members, (cfg.concurrency + members.len()) as u64));
    if let Some(k) = &keys {
        k.write(dir).context("write the run's keys")?;
    }
    let command = node_command(cfg, dir, &layout)?;
    // One node's process: `key` names its files (the member's id, or `<id>-twin`).
    let node_spec = |i: usize, id: &NodeId, key: &str| -> anyhow::Result<NodeSpec> {
        let log = dir.node_file(&format!("{key}.log"));
        let ctx = NodeCtx {
            id,
            index: i + 1,
            members: &members,
            client: layout.client[id],
            peer_listen: layout.listen[id],
            peers: members
                .iter()
                .filter(|p| *p != id)
                .map(|p| (p.clone(), layout.dial[&(id.clone(), p.clone())]))
                .collect(),
            data: dir.node_file(key),
            events: dir.node_file(&format!("{key}.events.jsonl")),
            log: log.clone(),
        };
        let NodeCmd {
            program,
            args,
            mut env,
        } = command(&ctx).with_context(|| format!("the command for node {key}"))?;
        if let Some(lib) = &lib {
            env.extend(
                faketime_env(lib, &clock_files[id], fake_monotonic_requested())
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into())),
            );
        }
        if cfg.diskfs {
            preload(&mut env, sunder_diskfs::preload_library());
        }
        Ok(NodeSpec {
            id: key.to_string(),
            program,
            args,
            env,
            log,
        })
    };
    let mut specs = Vec::new();
    for (i, id) in members.iter().enumerate() {
        specs.push(node_spec(i, id, id)?);
    }
    let mut cluster = Cluster::new(specs);
    if let Some(d) = disks {
        tokio::task::block_in_place(|| d.sync_all())?;
        cluster.set_disks(d);
    }
    if let Some(ns) = &netns {
        for id in &members {
            cluster.set_netns(id, Arc::new(ns.node_handle(id)?));
        }
        // A spec target's twins: the same command with a data directory and log of their
        // own, in the twin namespace at the member's address.
        for id in &ns.names().twins {
            let i = members.iter().position(|m| m == id).expect("a member");
            let spec = node_spec(i, id, &format!("{id}-twin"))?;
            cluster.add_twin(id, spec, Some(Arc::new(ns.twin_handle(id)?)));
        }
    }
    let endpoints: Vec<Endpoint> = members
        .iter()
        .map(|id| Endpoint {
            id: id.clone(),
            addr: layout.client[id],
        })
        .collect();
    let admin = Admin::with_dialer(endpoints.clone(), dialer.clone());
    let (client, probe, stop) = match &cfg.spec {
        Some(spec) => (
            spec.client.build(endpoints, dialer.clone()),
            Probe::Spec {
                spec: spec.clone(),
                dialer,
                addrs: spec_members(&members, &layout)
                    .iter()
                    .map(|m| (m.id.clone(), m.client_addr()))
                    .collect(),
            },
            (spec.stop.signal, spec.stop.grace),
        ),
        None => (
            builtin_client(cfg, endpoints, dialer, keys.as_ref())?,
            Probe::Admin(admin.clone()),
            (nix::sys::signal::Signal::SIGTERM, BUILTIN_STOP_GRACE),
        ),
    };
    Ok(Launched {
        nodes: Nodes::Local(SharedCluster::new(cluster)),
        net,
        netns,
        client: Arc::new(client),
        admin,
        probe,
        stop,
        clocks: clocks.map(RunClocks::Local),
        warnings: Vec::new(),
    })
}

/// Adds `lib` to the node's `LD_PRELOAD` (the disk filesystem's `sync_file_range` shim,
/// beside libfaketime when both are there).
fn preload(env: &mut Vec<(OsString, OsString)>, lib: &Path) {
    match env.iter_mut().find(|(k, _)| k == "LD_PRELOAD") {
        Some((_, v)) => {
            let mut joined = lib.as_os_str().to_os_string();
            joined.push(":");
            joined.push(&*v);
            *v = joined;
        }
        None => env.push(("LD_PRELOAD".into(), lib.into())),
    }
}

/// The workers' client for a built-in target: JSON lines, or a BFT client with the run's
/// keys.
fn builtin_client(
    cfg: &TestConfig,
    endpoints: Vec<Endpoint>,
    dialer: Dialer,
    keys: Option<&RunKeys>,
) -> anyhow::Result<AnyClient> {
    Ok(match keys {
        Some(k) => AnyClient::Bft(
            BftClient::new(
                endpoints,
                dialer,
                &k.client_secrets(),
                &k.replica_publics(),
                bft_retransmit(cfg),
            )
            .context("the BFT client")?
            .with_first_send(cfg.bft_first_send()),
        ),
        None => AnyClient::JsonLines(JsonLinesClient::with_dialer(endpoints, dialer)),
    })
}

/// `--hosts`: the nodes on their hosts over SSH, reached directly at the hosts' addresses.
fn start_remote(cfg: &TestConfig, dir: &RunDir, hosts: &Hosts) -> anyhow::Result<Launched> {
    let members = cfg.members();
    let keys = signs(cfg)
        .then(|| RunKeys::new(cfg.seed, &members, (cfg.concurrency + members.len()) as u64));
    if let Some(k) = &keys {
        k.write(dir).context("write the run's keys")?;
    }
    let setup = tokio::task::block_in_place(|| RemoteNodes::setup(cfg, dir, hosts))?;
    let endpoints: Vec<Endpoint> = members
        .iter()
        .map(|id| Endpoint {
            id: id.clone(),
            addr: setup.clients[id],
        })
        .collect();
    let admin = Admin::with_dialer(endpoints.clone(), Dialer::Direct);
    let (client, probe, stop) = match &cfg.spec {
        Some(spec) => (
            spec.client.build(endpoints, Dialer::Direct),
            Probe::Spec {
                spec: spec.clone(),
                dialer: Dialer::Direct,
                addrs: setup.clients.clone(),
            },
            (spec.stop.signal, spec.stop.grace),
        ),
        None => (
            builtin_client(cfg, endpoints, Dialer::Direct, keys.as_ref())?,
            Probe::Admin(admin.clone()),
            (nix::sys::signal::Signal::SIGTERM, BUILTIN_STOP_GRACE),
        ),
    };
    Ok(Launched {
        nodes: Nodes::Remote(setup.nodes),
        net: Box::new(setup.net),
        netns: None,
        client: Arc::new(client),
        probe,
        admin,
        stop,
        clocks: setup.clocks.map(RunClocks::Remote),
        warnings: Vec::new(),
    })
}

/// With clock faults: does every node map libfaketime? One that does not (a static or Go
/// binary) keeps its real clock; its clock faults are then recorded as not applied.
fn check_preload(l: &mut Launched) {
    let Some(RunClocks::Local(clocks)) = l.clocks.as_mut() else {
        return;
    };
    for id in l.nodes.ids() {
        let why = match l.nodes.local_pid(&id).map(preloaded) {
            Some(Ok(true)) => continue,
            Some(Ok(false)) => {
                "libfaketime is not loaded in the node process (a static or Go binary reads \
                 the clock without libc)"
                    .to_string()
            }
            Some(Err(e)) => format!("cannot read the node's /proc maps: {e}"),
            None => "the node has no process".to_string(),
        };
        let w = format!("clock faults cannot reach {id}: {why}");
        eprintln!("sunder: warning: {w}");
        clocks.unaffected(&id, &why);
        l.warnings.push(w);
    }
}

/// An answer counts only if it came from the node's own process group (see owner.rs): a
/// node whose port another program took fails to bind and exits, and the check above then
/// reports it with its log (and the launch retries on new ports).
fn not_an_impostor(nodes: &Nodes, probe: &Probe, id: &str) -> Result<(), String> {
    let (Some(pid), Some(addr)) = (nodes.local_pid(id), probe.addr(id)) else {
        return Ok(());
    };
    match super::owner::group_listens_on(pid, addr.port()) {
        Some(false) => Err(format!(
            "{addr} answers, but not from {id}'s processes (another program holds the port)"
        )),
        Some(true) | None => Ok(()),
    }
}

/// `Ok(true)` when every node is up, `Ok(false)` on interrupt, `Err` with the reason and
/// the logs of the nodes at fault otherwise.
/// Probes every node until each is ready. Byzantine nodes are not waited for beyond
/// [`BYZANTINE_GRACE`] after the honest ones: a liar that never answers (an etcd member
/// whose twin took its place) is what the run is about, not a failed start-up. Returns
/// the Byzantine nodes still not ready then, with why, or `None` on an interrupt.
async fn wait_ready(
    nodes: &Nodes,
    probe: &Probe,
    byzantine: &[NodeId],
    intr: &mut watch::Receiver<bool>,
) -> Result<Option<Vec<String>>, String> {
    let deadline = Instant::now() + probe.start_timeout();
    let mut honest_ready: Option<Instant> = None;
    let mut last_error = BTreeMap::new();
    let mut pending = nodes.ids();
    loop {
        for id in &pending {
            if let Some(status) = nodes.exited(id) {
                let (log, tail) = nodes.log_tail(id, 15);
                return Err(format!(
                    "node {id} exited during start-up ({status})\n--- {log}:\n{tail}"
                ));
            }
        }
        let mut still = Vec::new();
        for id in pending {
            let answered = match probe.up(&id).await {
                Ok(()) => not_an_impostor(nodes, probe, &id),
                Err(e) => Err(e),
            };
            if let Err(e) = answered {
                last_error.insert(id.clone(), e);
                still.push(id);
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(Some(Vec::new()));
        }
        if pending.iter().all(|id| byzantine.contains(id)) {
            let since = *honest_ready.get_or_insert_with(Instant::now);
            if since.elapsed() >= BYZANTINE_GRACE {
                return Ok(Some(
                    pending
                        .iter()
                        .map(|id| {
                            let why = last_error.get(id).map_or("", String::as_str);
                            format!(
                                "Byzantine node {id} was not ready when the honest ones were \
                                 (the run went on without waiting): {why}"
                            )
                        })
                        .collect(),
                ));
            }
        }
        if Instant::now() > deadline {
            let tails: Vec<String> = pending
                .iter()
                .map(|id| {
                    let (log, tail) = nodes.log_tail(id, 15);
                    let why = last_error.get(id).map_or("", String::as_str);
                    format!("--- {id}: {why}\n--- {log}:\n{tail}")
                })
                .collect();
            return Err(format!(
                "node(s) {} did not {} within {}s\n{}",
                pending.join(", "),
                probe.what(),
                probe.start_timeout().as_secs(),
                tails.join("\n")
            ));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = intr.wait_for(|v| *v) => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_preload_goes_before_libfaketime_or_alone() {
        let mut env: Vec<(OsString, OsString)> = vec![("A".into(), "1".into())];
        preload(&mut env, Path::new("/x/disk.so"));
        assert_eq!(env[1], ("LD_PRELOAD".into(), "/x/disk.so".into()));
        let mut env: Vec<(OsString, OsString)> =
            vec![("LD_PRELOAD".into(), "/y/faketime.so".into())];
        preload(&mut env, Path::new("/x/disk.so"));
        assert_eq!(
            env,
            vec![("LD_PRELOAD".into(), "/x/disk.so:/y/faketime.so".into())]
        );
    }
}
