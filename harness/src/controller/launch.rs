//! Bringing the cluster up: ports, relays, node processes, and the wait until every node
//! answers `status`. A port taken by someone else between choosing and binding it is
//! retried with fresh ports; any other start-up failure is the harness's (exit 3).

use super::admin::Admin;
use super::cluster::{Cluster, NodeSpec, SharedCluster};
use super::config::TestConfig;
use super::ports;
use super::rundir::RunDir;
use anyhow::Context;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use sunder_nemesis::clock::{fake_monotonic_requested, faketime_env, find_libfaketime, preloaded};
use sunder_nemesis::{FaketimeClocks, FaultKind, ProxyNet};
use sunder_workloads::Endpoint;
use tokio::sync::watch;

/// How long every node has to answer `status` after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts when a node finds its port taken.
const ATTEMPTS: usize = 3;

pub struct Launched {
    pub cluster: SharedCluster,
    pub net: ProxyNet,
    pub endpoints: Vec<Endpoint>,
    pub admin: Admin,
    /// With `--nemesis clock`: the nodes' clock control files.
    pub clocks: Option<FaketimeClocks>,
    /// Said on the terminal already; for results.json.
    pub warnings: Vec<String>,
}

pub enum Startup {
    Ready(Launched),
    Failed(String),
    Interrupted,
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
        let mut l = start_once(cfg, dir, entropy).await?;
        let spawned = l.cluster.lock().start_all();
        let outcome = match spawned {
            Err(e) => Err(e),
            Ok(()) => wait_ready(&l.cluster, &l.admin, intr).await,
        };
        match outcome {
            Ok(true) => {
                check_preload(&mut l);
                return Ok(Startup::Ready(l));
            }
            Ok(false) => {
                tokio::task::block_in_place(|| l.cluster.lock().kill_all());
                return Ok(Startup::Interrupted);
            }
            Err(e) => {
                tokio::task::block_in_place(|| l.cluster.lock().kill_all());
                if attempt < ATTEMPTS && e.contains("Address already in use") {
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

async fn start_once(cfg: &TestConfig, dir: &RunDir, entropy: u64) -> anyhow::Result<Launched> {
    // A client and a peer listener per node, a relay per directed pair.
    let members = cfg.members();
    let n = members.len();
    let addrs = ports::allocate(2 * n, entropy)?;
    let client: BTreeMap<String, SocketAddr> = members
        .iter()
        .cloned()
        .zip(addrs[..n].iter().copied())
        .collect();
    let listen: BTreeMap<String, SocketAddr> = members
        .iter()
        .cloned()
        .zip(addrs[n..].iter().copied())
        .collect();
    let mut links = Vec::new();
    for a in &members {
        for b in members.iter().filter(|b| *b != a) {
            links.push((a.clone(), b.clone(), listen[b]));
        }
    }
    let net = ProxyNet::start(links)
        .await
        .context("start the proxy relays")?;

    let exe = std::env::current_exe().context("find this executable")?;
    let clock_files: BTreeMap<String, std::path::PathBuf> = members
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
    let mut specs = Vec::new();
    for id in &members {
        let mut args: Vec<OsString> = vec!["node".into(), cfg.target.clone().into()];
        let mut push = |k: &str, v: String| {
            args.push(k.into());
            args.push(v.into());
        };
        push("--id", id.clone());
        push("--client", client[id].to_string());
        push("--peer-listen", listen[id].to_string());
        for peer in members.iter().filter(|p| *p != id) {
            push(
                "--peer",
                format!("{peer}={}", net.addr(id, peer).expect("a relay per pair")),
            );
        }
        push("--data", dir.node_file(id).display().to_string());
        push(
            "--events",
            dir.node_file(&format!("{id}.events.jsonl"))
                .display()
                .to_string(),
        );
        push("--seed", cfg.seed.to_string());
        for b in &cfg.bugs {
            push("--bug", b.clone());
        }
        for (k, v) in &cfg.opts {
            push("--opt", format!("{k}={v}"));
        }
        specs.push(NodeSpec {
            id: id.clone(),
            program: exe.clone(),
            args,
            env: lib
                .as_ref()
                .map(|lib| {
                    faketime_env(lib, &clock_files[id], fake_monotonic_requested())
                        .into_iter()
                        .map(|(k, v)| (k.into(), v.into()))
                        .collect()
                })
                .unwrap_or_default(),
            log: dir.node_file(&format!("{id}.log")),
        });
    }
    let endpoints: Vec<Endpoint> = members
        .iter()
        .map(|id| Endpoint {
            id: id.clone(),
            addr: client[id],
        })
        .collect();
    Ok(Launched {
        cluster: SharedCluster::new(Cluster::new(specs)),
        net,
        admin: Admin::new(endpoints.clone()),
        endpoints,
        clocks,
        warnings: Vec::new(),
    })
}

/// With clock faults: does every node map libfaketime? One that does not (a static or Go
/// binary) keeps its real clock; its clock faults are then recorded as not applied.
fn check_preload(l: &mut Launched) {
    let Some(clocks) = l.clocks.as_mut() else {
        return;
    };
    let c = l.cluster.lock();
    for id in c.ids() {
        let why = match c.pid(&id).map(preloaded) {
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

/// `Ok(true)` when every node answers, `Ok(false)` on interrupt, `Err` with the reason and
/// the logs of the nodes at fault otherwise.
async fn wait_ready(
    cluster: &SharedCluster,
    admin: &Admin,
    intr: &mut watch::Receiver<bool>,
) -> Result<bool, String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut pending = cluster.lock().ids();
    loop {
        for id in &pending {
            let exited = cluster.lock().exited(id);
            if let Some(status) = exited {
                let c = cluster.lock();
                let log = c
                    .spec(id)
                    .map(|s| s.log.display().to_string())
                    .unwrap_or_default();
                return Err(format!(
                    "node {id} exited during start-up ({status})\n--- {log}:\n{}",
                    c.log_tail(id, 15)
                ));
            }
        }
        let mut still = Vec::new();
        for id in pending {
            if admin.status(&id, Duration::from_millis(300)).await.is_err() {
                still.push(id);
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(true);
        }
        if Instant::now() > deadline {
            let c = cluster.lock();
            let tails: Vec<String> = pending
                .iter()
                .map(|id| {
                    let log = c
                        .spec(id)
                        .map(|s| s.log.display().to_string())
                        .unwrap_or_default();
                    format!("--- {log}:\n{}", c.log_tail(id, 15))
                })
                .collect();
            return Err(format!(
                "node(s) {} did not answer `status` within {}s\n{}",
                pending.join(", "),
                START_TIMEOUT.as_secs(),
                tails.join("\n")
            ));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = intr.wait_for(|v| *v) => return Ok(false),
        }
    }
}
