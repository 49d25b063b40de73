//! The validated configuration of one test run, and the command that replays it.

use super::remote::Hosts;
use super::spec::TargetSpec;
use crate::cmd::test::TestArgs;
use anyhow::{Context, bail};
use serde::{Serialize, Serializer};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use sunder_nemesis::TargetSpec as FaultTarget;
use sunder_nemesis::{FaultKind, FaultLengths, LEADER_WEIGHT, ScheduleConfig};
use sunder_workloads::{WorkloadConfig, WorkloadKind};

/// How node-to-node traffic flows, and where network faults are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetBackend {
    /// A TCP relay per directed pair on 127.0.0.1 (no privileges).
    Proxy,
    /// A network namespace per node on a private bridge (root).
    Netns,
}

impl std::fmt::Display for NetBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NetBackend::Proxy => "proxy",
            NetBackend::Netns => "netns",
        })
    }
}

/// Everything a run needs, checked. Serialised as the run's `config.json`.
#[derive(Debug, Clone, Serialize)]
pub struct TestConfig {
    pub name: String,
    /// A built-in target, or the spec's name.
    pub target: String,
    /// With `--target-spec`: the file, and the `[client]` overrides.
    pub target_spec: Option<PathBuf>,
    pub client_opts: Vec<(String, String)>,
    /// The loaded spec (with the overrides applied).
    #[serde(skip)]
    pub spec: Option<Arc<TargetSpec>>,
    pub nodes: usize,
    #[serde(serialize_with = "display")]
    pub workload: WorkloadKind,
    pub concurrency: usize,
    /// Operations per second over all workers; `None`: as fast as possible.
    pub rate: Option<f64>,
    #[serde(serialize_with = "human")]
    pub time_limit: Duration,
    pub key_count: usize,
    pub seed: u64,
    pub nemesis: Vec<FaultKind>,
    #[serde(serialize_with = "human")]
    pub nemesis_interval: Duration,
    #[serde(serialize_with = "display")]
    pub fault_lengths: FaultLengths,
    pub net: NetBackend,
    /// Whether the nodes' data directories are `sunder-diskfs` mounts (`--disk`; always
    /// with disk faults).
    pub diskfs: bool,
    /// How the disk filesystem makes names durable (`--disk-metadata`).
    #[serde(serialize_with = "display")]
    pub disk_metadata: sunder_diskfs::Metadata,
    /// `--fault-targets`: what kills, pauses and disk faults may hit (empty: anything).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fault_targets: Vec<FaultTarget>,
    pub bugs: Vec<String>,
    pub opts: Vec<(String, String)>,
    pub results: PathBuf,
    pub junit: Option<PathBuf>,
    #[serde(serialize_with = "human")]
    pub op_timeout: Duration,
    /// `--byzantine N`: how many nodes lie (0: none), and how (`--byzantine-mode`).
    #[serde(skip_serializing_if = "is_zero")]
    pub byzantine: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub byzantine_mode: Option<String>,
    /// Which nodes lie: drawn by the seed as `sunder sim` draws them
    /// (`sunder_sim::config::byzantine_members`), recorded here for the checkers and
    /// `sunder analyze`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub byzantine_nodes: Vec<String>,
    /// `--hosts`/`--host`: the nodes run on these hosts over SSH; `None`: on this machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Hosts>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn human<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

/// `--fault-targets`: a comma-separated list of target names, each once.
fn parse_targets(list: &str) -> anyhow::Result<Vec<FaultTarget>> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim) {
        let t = FaultTarget::ALL
            .into_iter()
            .find(|t| target_name(*t) == part)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--fault-targets: unknown target {part:?} (expected one, minority, \
                     majority, all or leader)"
                )
            })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

fn target_name(t: FaultTarget) -> &'static str {
    match t {
        FaultTarget::One => "one",
        FaultTarget::Minority => "minority",
        FaultTarget::Majority => "majority",
        FaultTarget::All => "all",
        FaultTarget::Leader => "leader",
    }
}

fn display<S: Serializer, T: std::fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// The `--client-opt` keys a built-in target's client takes: PBFT's `send=primary|all`
/// (where a BFT client's request goes first, [`sunder_workloads::FirstSend`]).
pub fn builtin_client_opt(
    target: &str,
    key: &str,
    value: &str,
) -> anyhow::Result<sunder_workloads::FirstSend> {
    if target != "pbft" || key != "send" {
        bail!(
            "--client-opt {key}={value}: unknown for --target {target} (a built-in target's \
             client takes only pbft's send=primary|all; the other keys are a spec's)"
        );
    }
    value
        .parse()
        .map_err(|e| anyhow::anyhow!("--client-opt send: {e}"))
}

impl TestConfig {
    /// Where a PBFT client's requests go first (`--client-opt send=...`; default `all`:
    /// a replica answers a client only on the connection the request came in on, so a
    /// request sent to the primary alone completes only at its first retransmission, and
    /// only the primary holds it until then: fewer replicas watching the primary, fewer
    /// view changes, a poorer bug finder).
    pub fn bft_first_send(&self) -> sunder_workloads::FirstSend {
        self.client_opts
            .iter()
            .rev()
            .find(|(k, _)| k == "send")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(sunder_workloads::FirstSend::All)
    }

    /// Validates the flags. Every error names the flag.
    pub fn from_args(a: &TestArgs) -> anyhow::Result<TestConfig> {
        let mut client_opts = Vec::new();
        for o in &a.client_opts {
            match o.split_once('=') {
                Some((k, v)) if !k.is_empty() => client_opts.push((k.to_string(), v.to_string())),
                _ => bail!("--client-opt {o:?}: expected KEY=VALUE"),
            }
        }
        let spec = match &a.target_spec {
            Some(path) => Some(Arc::new(
                TargetSpec::load(path)
                    .and_then(|s| s.with_client_opts(&client_opts))
                    .map_err(|e| anyhow::anyhow!("--target-spec: {e}"))?,
            )),
            None => None,
        };
        let target = spec
            .as_ref()
            .map_or_else(|| a.target.clone(), |s| s.name.clone());
        if spec.is_some() && !(a.bugs.is_empty() && a.opts.is_empty()) {
            bail!("--bug and --opt are for the built-in targets; a spec target takes --client-opt");
        }
        let builtin = crate::targets::find_node(&a.target);
        if spec.is_none() && builtin.is_none() {
            bail!(
                "--target {:?}: unknown target (expected one of {})",
                a.target,
                crate::targets::names()
            );
        }
        if spec.is_none() {
            for (k, v) in &client_opts {
                builtin_client_opt(&a.target, k, v)?;
            }
        }
        if !(1..=15).contains(&a.nodes) {
            bail!("--nodes {}: must be between 1 and 15", a.nodes);
        }
        let workload: WorkloadKind = a.workload.parse().context("--workload")?;
        if !(1..=1000).contains(&a.concurrency) {
            bail!(
                "--concurrency {}: must be between 1 and 1000",
                a.concurrency
            );
        }
        if !a.rate.is_finite() || a.rate < 0.0 {
            bail!(
                "--rate {}: must be a non-negative number of operations per second (0: unlimited)",
                a.rate
            );
        }
        if a.time_limit.is_zero() {
            bail!("--time-limit must be more than zero");
        }
        if let Some(only) = builtin.and_then(|t| t.workloads)
            && !only.contains(&workload)
        {
            let names: Vec<String> = only.iter().map(|w| w.to_string()).collect();
            bail!(
                "--target {}: serves the {} workload only, not {workload} (--workload {})",
                a.target,
                names.join(", "),
                names[0]
            );
        }
        if workload == WorkloadKind::Register && a.key_count == 0 {
            bail!("--key-count must be at least 1 for the register workload");
        }
        if workload == WorkloadKind::Bank && a.key_count < 2 {
            bail!(
                "--key-count {}: the bank workload needs at least 2 accounts",
                a.key_count
            );
        }
        let (default_nemesis, default_interval) = match (&spec, builtin) {
            (None, Some(t)) => (t.default_nemesis, t.default_interval),
            _ => (
                crate::targets::DEFAULT_NEMESIS,
                crate::targets::DEFAULT_INTERVAL,
            ),
        };
        let nemesis_interval = a.nemesis_interval.unwrap_or(default_interval);
        let nemesis = a.nemesis.as_deref().unwrap_or(default_nemesis);
        let nemesis =
            FaultKind::parse_list(nemesis).map_err(|e| anyhow::anyhow!("--nemesis: {e}"))?;
        if nemesis.contains(&FaultKind::Partition) && a.nodes < 2 {
            bail!(
                "--nemesis partition needs at least 2 nodes (--nodes {})",
                a.nodes
            );
        }
        let net = match a.net.as_str() {
            "proxy" => NetBackend::Proxy,
            "netns" => NetBackend::Netns,
            other => bail!("--net {other:?}: expected proxy or netns"),
        };
        // Nodes on remote hosts (checked in full below, with the members).
        let remote = !a.host.is_empty() || a.hosts.is_some();
        if let (Some(spec), Some(path)) = (&spec, &a.target_spec) {
            let missing = spec.client.missing_for(workload);
            if !missing.is_empty()
                && (spec.client.name() != "http" || workload == WorkloadKind::Bank)
            {
                bail!(
                    "--target-spec {}: the {} adapter does not do the {} workload",
                    path.display(),
                    spec.client.name(),
                    workload
                );
            }
            if !missing.is_empty() {
                bail!(
                    "--target-spec {}: the {} workload needs [client.{}], which the spec does \
                     not describe",
                    path.display(),
                    workload,
                    missing.join("] and [client.")
                );
            }
            // Remote hosts give every node an address of its own and cut links with rules
            // on it, as namespaces do: a spec's netns faults are the ones that apply.
            let as_net = if remote { NetBackend::Netns } else { net };
            spec.requires
                .check(&as_net.to_string(), &nemesis)
                .map_err(|e| anyhow::anyhow!("--target-spec {}: {e}", path.display()))?;
            // A spec's member list gives every peer one address per member, which no relay
            // can come between: "partitioned" would be a lie.
            if as_net == NetBackend::Proxy && nemesis.contains(&FaultKind::Partition) {
                bail!(
                    "--target-spec {}: partitions of a spec target need --net netns (its \
                     members reach each other directly, so the proxy cannot cut them)",
                    path.display()
                );
            }
        }
        if nemesis.contains(&FaultKind::Loss) && net != NetBackend::Netns && !remote {
            bail!(
                "--nemesis loss: packet loss needs --net netns or remote hosts (the proxy sees \
                 no packets)"
            );
        }
        let disk_faults = nemesis.iter().find(|k| k.disk_mode().is_some());
        let diskfs = match (a.disk.as_str(), disk_faults) {
            ("auto", d) => d.is_some(),
            ("diskfs", _) => true,
            ("plain", None) => false,
            ("plain", Some(k)) => {
                bail!("--disk plain: --nemesis {k} needs the disk filesystem (--disk diskfs)")
            }
            (other, _) => bail!("--disk {other:?}: expected auto, diskfs or plain"),
        };
        let fault_targets = match &a.fault_targets {
            None => Vec::new(),
            Some(list) => parse_targets(list)?,
        };
        for k in &nemesis {
            if let Some(mode) = k.disk_mode()
                && !fault_targets.is_empty()
                && !mode.targets().iter().any(|t| fault_targets.contains(t))
            {
                bail!(
                    "--nemesis {k} with --fault-targets {}: {k} hits only {}",
                    a.fault_targets.as_deref().unwrap_or_default(),
                    mode.targets()
                        .iter()
                        .map(|t| target_name(*t))
                        .collect::<Vec<_>>()
                        .join(" or ")
                );
            }
        }
        let disk_metadata: sunder_diskfs::Metadata = a
            .disk_metadata
            .parse()
            .map_err(|e| anyhow::anyhow!("--disk-metadata: {e}"))?;
        if diskfs {
            let disk =
                disk_faults.map_or("--disk diskfs".to_string(), |k| format!("--nemesis {k}"));
            if remote {
                bail!(
                    "{disk}: the disk filesystem needs the nodes on this machine (the \
                     controller serves their data directories itself)"
                );
            }
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                bail!(
                    "{disk}: the disk filesystem is a FUSE mount over each node's data \
                     directory, which needs root (as --net netns does)"
                );
            }
            if !std::path::Path::new("/dev/fuse").exists() {
                bail!("{disk}: /dev/fuse is missing (load the fuse module)");
            }
        }
        if net == NetBackend::Netns && a.nodes > 250 {
            bail!(
                "--nodes {}: --net netns numbers nodes within one /24",
                a.nodes
            );
        }
        if !nemesis.is_empty() && nemesis_interval.is_zero() {
            bail!("--nemesis-interval must be more than zero");
        }
        if a.op_timeout.is_some_and(|t| t.is_zero()) {
            bail!("--op-timeout must be more than zero");
        }
        let members: Vec<String> = (1..=a.nodes).map(|i| format!("n{i}")).collect();
        let mut hosts = Hosts::from_flags(
            &a.host,
            a.hosts.as_deref(),
            a.ssh_identity.as_deref(),
            a.ssh_known_hosts.as_deref(),
            &members,
        )?;
        if let Some(base) = &a.remote_base {
            let Some(h) = hosts.as_mut() else {
                bail!("--remote-base is for --hosts or --host");
            };
            sunder_remote::layout::check_base(base)
                .map_err(|e| anyhow::anyhow!("--remote-base: {e}"))?;
            h.base = base.clone();
        }
        if hosts.is_some() && net == NetBackend::Netns {
            bail!(
                "--hosts/--host with --net netns: remote nodes are on their own hosts; \
                 faults there are the hosts' nftables rules (leave --net at its default)"
            );
        }
        let mut opts = Vec::new();
        for o in &a.opts {
            match o.split_once('=') {
                Some((k, v)) if !k.is_empty() => opts.push((k.to_string(), v.to_string())),
                _ => bail!("--opt {o:?}: expected KEY=VALUE"),
            }
        }
        if let (None, Some(t)) = (&spec, builtin) {
            // Checked here, against the target's own list, so that a typo stops the run
            // before any node starts rather than in every node's log.
            sunder_node::opts::check(
                (t.opts)(),
                opts.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )?;
        }
        for b in &a.bugs {
            if b.is_empty() || b.starts_with('-') {
                bail!("--bug {b:?}: expected a bug name");
            }
        }
        // `--byzantine-mode M` alone makes one node Byzantine: the one flag a run needs.
        let byzantine = a
            .byzantine
            .unwrap_or(usize::from(a.byzantine_mode.is_some()));
        let byzantine_mode = a.byzantine_mode.clone().unwrap_or_else(|| "mix".into());
        if byzantine == 0 && a.byzantine_mode.is_some() {
            bail!("--byzantine-mode {byzantine_mode} with --byzantine 0: no node to give it to");
        }
        if byzantine > 0 {
            let twins = sunder_node::twins::MODE;
            match (&spec, builtin) {
                (Some(s), _) => {
                    if byzantine_mode != twins {
                        bail!(
                            "--byzantine-mode {}: a spec target has no Byzantine behaviours \
                             of its own; known: {twins}",
                            byzantine_mode
                        );
                    }
                    if !s.requires.twins {
                        bail!(
                            "--byzantine-mode twins: {} does not allow twins (a second process \
                             with a node's identity); a spec says `twins = true` under \
                             [requires] when that is safe",
                            s.path.display()
                        );
                    }
                    if net != NetBackend::Netns {
                        bail!(
                            "--byzantine-mode twins on a spec target needs --net netns (two \
                             processes answering one address, each seen by half the nodes)"
                        );
                    }
                }
                (None, Some(t)) => {
                    let modes = (t.byzantine_modes)();
                    if byzantine_mode != twins && !modes.contains(&byzantine_mode.as_str()) {
                        bail!(
                            "--byzantine-mode {}: unknown for {target}; known: {}",
                            byzantine_mode,
                            std::iter::once(twins)
                                .chain(modes.iter().copied())
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    }
                }
                (None, None) => bail!("--byzantine: no target to give it to"),
            }
            if byzantine >= a.nodes {
                bail!(
                    "--byzantine {}: at least one of the {} nodes must be honest",
                    byzantine,
                    a.nodes
                );
            }
        }
        let op_timeout = match (a.op_timeout, &spec, builtin) {
            (Some(t), _, _) => t,
            (None, None, Some(t)) => t.op_timeout(&opts),
            _ => crate::targets::DEFAULT_OP_TIMEOUT,
        };
        let name = match &a.name {
            Some(n) => n.clone(),
            None => {
                let faults = if nemesis.is_empty() {
                    "none".to_string()
                } else {
                    nemesis
                        .iter()
                        .map(|k| k.to_string())
                        .collect::<Vec<_>>()
                        .join("+")
                };
                format!("{}-{}-{}", target, workload, faults)
            }
        };
        if name.is_empty()
            || name.starts_with('.')
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
        {
            bail!("--name {name:?}: use letters, digits, '.', '_', '+' and '-' only");
        }
        let seed = a.seed.unwrap_or_else(random_seed);
        Ok(TestConfig {
            name,
            target,
            target_spec: a.target_spec.clone(),
            client_opts,
            spec,
            nodes: a.nodes,
            workload,
            concurrency: a.concurrency,
            rate: (a.rate > 0.0).then_some(a.rate),
            time_limit: a.time_limit,
            key_count: a.key_count,
            seed,
            nemesis,
            nemesis_interval,
            fault_lengths: a.fault_lengths,
            net,
            diskfs,
            disk_metadata,
            fault_targets,
            bugs: a.bugs.clone(),
            opts,
            results: a.results.clone(),
            junit: a.junit.clone(),
            op_timeout,
            byzantine,
            byzantine_mode: (byzantine > 0).then(|| byzantine_mode.clone()),
            byzantine_nodes: sunder_sim::config::byzantine_members(seed, a.nodes, byzantine),
            hosts,
        })
    }

    /// Node ids `n1..nN`.
    pub fn members(&self) -> Vec<String> {
        (1..=self.nodes).map(|i| format!("n{i}")).collect()
    }

    pub fn workload_config(&self) -> WorkloadConfig {
        WorkloadConfig {
            kind: self.workload,
            key_count: self.key_count,
            concurrency: self.concurrency,
            rate: self.rate,
            op_timeout: self.op_timeout,
            seed: self.seed,
        }
    }

    pub fn schedule_config(&self) -> ScheduleConfig {
        ScheduleConfig {
            kinds: self.nemesis.clone(),
            interval: self.nemesis_interval,
            time_limit: self.time_limit,
            nodes: self.nodes,
            seed: derive_seed(self.seed, "nemesis"),
            leader_weight: self.leader_weight(),
            lengths: self.fault_lengths,
            leader_timeout_ms: self.leader_timeout().map(|d| d.as_millis() as u64),
            targets: self.fault_targets.clone(),
        }
    }

    /// The built-in target's leader timeout with this run's `--opt`s (spec targets: none
    /// known).
    pub fn leader_timeout(&self) -> Option<Duration> {
        if self.spec.is_some() {
            return None;
        }
        crate::targets::find_node(&self.target)?.leader_timeout(&self.opts)
    }

    /// How much more often faults aim at the leader: [`LEADER_WEIGHT`] for a built-in
    /// target with a leader, 1 (uniform) for others and for spec targets, whose leader
    /// sunder cannot always find.
    pub fn leader_weight(&self) -> u32 {
        let leads = self.spec.is_none()
            && crate::targets::find_node(&self.target).is_some_and(|t| t.leader);
        if leads { LEADER_WEIGHT } else { 1 }
    }

    /// The command that runs this test again with the same seed.
    pub fn replay_command(&self) -> String {
        let mut c = vec!["sunder".to_string(), "test".to_string()];
        c.extend(self.replay_args().iter().map(|a| shell_word(a)));
        c.join(" ")
    }

    /// The `sunder test` arguments that run this test again with the same seed (without
    /// `--results`, `--name`, `--junit` and `--json`, which say where, not what).
    pub fn replay_args(&self) -> Vec<String> {
        let d = |d: Duration| humantime::format_duration(d).to_string().replace(' ', "");
        let mut c: Vec<String> = Vec::new();
        let mut flag = |k: &str, v: String| {
            c.push(k.to_string());
            c.push(v);
        };
        match &self.target_spec {
            Some(p) => flag("--target-spec", p.display().to_string()),
            None => flag("--target", self.target.clone()),
        }
        flag("--nodes", self.nodes.to_string());
        flag("--workload", self.workload.to_string());
        flag("--concurrency", self.concurrency.to_string());
        flag("--rate", self.rate.unwrap_or(0.0).to_string());
        flag("--time-limit", d(self.time_limit));
        flag("--key-count", self.key_count.to_string());
        flag(
            "--nemesis",
            if self.nemesis.is_empty() {
                "none".to_string()
            } else {
                self.nemesis
                    .iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            },
        );
        flag("--nemesis-interval", d(self.nemesis_interval));
        flag("--fault-lengths", self.fault_lengths.to_string());
        flag("--net", self.net.to_string());
        if self.diskfs && !self.nemesis.iter().any(|k| k.disk_mode().is_some()) {
            flag("--disk", "diskfs".to_string());
        }
        if self.diskfs && self.disk_metadata != sunder_diskfs::Metadata::default() {
            flag("--disk-metadata", self.disk_metadata.to_string());
        }
        if !self.fault_targets.is_empty() {
            let names: Vec<&str> = self.fault_targets.iter().map(|t| target_name(*t)).collect();
            flag("--fault-targets", names.join(","));
        }
        flag("--op-timeout", d(self.op_timeout));
        for b in &self.bugs {
            flag("--bug", b.clone());
        }
        if let Some(m) = &self.byzantine_mode {
            flag("--byzantine", self.byzantine.to_string());
            flag("--byzantine-mode", m.clone());
        }
        for (k, v) in &self.opts {
            flag("--opt", format!("{k}={v}"));
        }
        for (k, v) in &self.client_opts {
            flag("--client-opt", format!("{k}={v}"));
        }
        flag("--seed", self.seed.to_string());
        if let Some(h) = &self.hosts {
            c.extend(h.replay_args());
        }
        c
    }
}

/// `word` as a POSIX shell reads it back: bare when it is plain, else single-quoted.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,+:@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// A seed from the OS, for runs that were not given one (it is printed and stored, so the
/// run can be replayed).
pub fn random_seed() -> u64 {
    os_entropy() >> 1 // keep it positive wherever it is read as i64
}

/// 64 random bits from the OS (the clock and pid if /dev/urandom cannot be read).
pub fn os_entropy() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_le_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    derive_seed(t.as_nanos() as u64, &std::process::id().to_string())
}

/// A sub-seed for one purpose (`tag`), so that e.g. the nemesis schedule does not share a
/// stream with the workers: FNV-1a of the tag folded into splitmix64.
pub fn derive_seed(seed: u64, tag: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tag.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = (seed ^ h).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::tests_support::parse;
    use super::*;

    #[test]
    fn defaults_are_a_raft_register_test_with_partitions_and_kills() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            (c.target.as_str(), c.nodes, c.workload),
            ("raft", 3, WorkloadKind::Register)
        );
        assert_eq!(c.nemesis, vec![FaultKind::Partition, FaultKind::Kill]);
        assert_eq!(c.time_limit, Duration::from_secs(30));
        assert_eq!(c.name, "raft-register-partition+kill");
        assert_eq!(c.net, NetBackend::Proxy);
    }

    /// `disk` names the three disk faults; they (or `--disk diskfs`) mount the disk
    /// filesystem, which needs root and the nodes on this machine; the replay keeps it.
    #[test]
    fn disk_faults_bring_the_disk_filesystem_and_need_root() {
        let root = unsafe { libc::geteuid() } == 0 && std::path::Path::new("/dev/fuse").exists();
        for (args, kinds, diskfs) in [
            (
                vec!["--nemesis", "disk"],
                vec![
                    FaultKind::LoseUnsynced,
                    FaultKind::TornWrite,
                    FaultKind::Corrupt,
                ],
                true,
            ),
            (
                vec!["--nemesis", "kill,lose-unsynced"],
                vec![FaultKind::Kill, FaultKind::LoseUnsynced],
                true,
            ),
            (
                vec!["--nemesis", "kill", "--disk", "diskfs"],
                vec![FaultKind::Kill],
                true,
            ),
            (vec!["--nemesis", "kill"], vec![FaultKind::Kill], false),
        ] {
            match parse(&args) {
                Ok(c) => {
                    assert!(root || !diskfs, "{args:?} accepted without root");
                    assert_eq!((c.nemesis.clone(), c.diskfs), (kinds, diskfs), "{args:?}");
                    let again = c.replay_command();
                    assert_eq!(again.contains("--disk diskfs"), args.contains(&"--disk"));
                }
                Err(e) => {
                    assert!(!root && diskfs, "{args:?}: {e}");
                    assert!(e.to_string().contains("root"), "{e}");
                }
            }
        }
        let remote = parse(&["--nemesis", "corrupt", "--host", "n1=a", "--nodes", "1"]);
        assert!(remote.is_err());
    }

    #[test]
    fn pbft_adds_pauses_and_a_faster_beat_to_the_defaults_and_given_flags_win() {
        let c = parse(&["--target", "pbft", "--nodes", "4"]).unwrap();
        assert_eq!(
            c.nemesis,
            vec![FaultKind::Partition, FaultKind::Kill, FaultKind::Pause]
        );
        assert!(
            c.replay_command()
                .contains("--nemesis partition,kill,pause")
        );
        assert_eq!(c.nemesis_interval, Duration::from_secs(2));
        assert!(c.replay_command().contains("--nemesis-interval 2s"));
        let c = parse(&[
            "--target",
            "pbft",
            "--nodes",
            "4",
            "--nemesis",
            "kill",
            "--nemesis-interval",
            "5s",
        ])
        .unwrap();
        assert_eq!(c.nemesis, vec![FaultKind::Kill]);
        assert_eq!(c.nemesis_interval, Duration::from_secs(5));
        let c = parse(&["--target", "paxos"]).unwrap();
        assert_eq!(c.nemesis, vec![FaultKind::Partition, FaultKind::Kill]);
        assert_eq!(c.nemesis_interval, Duration::from_secs(3));
    }

    #[test]
    fn bad_flags_are_named() {
        for (args, needle) in [
            (&["--target", "nope"][..], "--target"),
            (&["--nodes", "0"], "--nodes"),
            (&["--workload", "queue"], "--workload"),
            (
                &["--workload", "bank", "--key-count", "1"],
                "at least 2 accounts",
            ),
            (&["--nemesis", "partition,flood"], "--nemesis"),
            (&["--opt", "novalue"], "--opt"),
            (&["--name", "../x"], "--name"),
            (&["--time-limit", "0s"], "--time-limit"),
            (&["--net", "tun"], "--net"),
            (&["--nemesis", "partition,loss"], "--net netns"),
            (&["--disk", "ext4"], "--disk"),
            (&["--disk-metadata", "ext4"], "--disk-metadata"),
            (&["--fault-targets", "half"], "--fault-targets"),
            (
                &["--nemesis", "corrupt", "--fault-targets", "all"],
                "corrupt hits only",
            ),
            (
                &["--disk", "plain", "--nemesis", "torn-write"],
                "--disk diskfs",
            ),
            (&["--nemesis", "disk,bogus"], "--nemesis"),
        ] {
            let e = parse(args).unwrap_err();
            assert!(format!("{e:#}").contains(needle), "{args:?}: {e:#}");
        }
    }

    #[test]
    fn options_are_checked_against_the_targets_own_list() {
        for (target, opt, needle) in [
            ("raft", "batch=of", "batch"),
            ("raft", "election_ms=soon", "election_ms"),
            ("raft", "timeout-ms=5", "timeout-ms"),
            ("paxos", "batch=off", "heartbeat_ms, election_ms"),
            ("primary", "timeout-ms=x", "timeout-ms"),
            ("lww", "a=b", "no options"),
        ] {
            let e = format!(
                "{:#}",
                parse(&["--target", target, "--opt", opt]).unwrap_err()
            );
            assert!(e.contains(needle), "{target} --opt {opt}: {e}");
        }
        let e = format!("{:#}", parse(&["--opt", "batch=of"]).unwrap_err());
        assert!(e.contains("on or off") && e.contains("election_ms"), "{e}");
        for (target, opt) in [
            ("raft", "batch=off"),
            ("raft", "election_jitter_ms=10"),
            ("paxos", "election_ms=200"),
            ("primary", "timeout-ms=500"),
        ] {
            parse(&["--target", target, "--opt", opt]).unwrap();
        }
    }

    #[test]
    fn replay_command_parses_back_to_the_same_config() {
        let c = parse(&[
            "--target",
            "raft",
            "--seed",
            "42",
            "--bug",
            "x",
            "--opt",
            "batch=off",
            "--rate",
            "0",
            "--net",
            "netns",
            "--nemesis",
            "loss,kill",
        ])
        .unwrap();
        super::tests_support::assert_replays(&c);
    }
}

#[cfg(test)]
mod hosts_tests {
    use super::tests_support::parse;

    #[test]
    fn hosts_are_recorded_in_the_config_and_replayed() {
        let c = parse(&[
            "--nodes",
            "2",
            "--host",
            "n1=root@10.0.0.5",
            "--host",
            "n2=root@db2.example:2222",
            "--ssh-identity",
            "/k/id",
            "--ssh-known-hosts",
            "/k/known",
        ])
        .unwrap();
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["hosts"]["nodes"]["n2"]["address"], "db2.example");
        assert_eq!(json["hosts"]["nodes"]["n2"]["port"], 2222);
        assert_eq!(json["hosts"]["nodes"]["n1"]["identity"], "/k/id");
        super::tests_support::assert_replays(&c);
        // A local run's config.json says nothing of hosts.
        let local = serde_json::to_value(super::tests_support::config()).unwrap();
        assert!(local.get("hosts").is_none());
    }

    #[test]
    fn hosts_that_do_not_fit_the_run_are_refused() {
        let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../targets/specs/etcd.toml");
        for (args, needle) in [
            (
                vec!["--nodes", "2", "--host", "n1=a"],
                "the run has nodes n1, n2",
            ),
            (vec!["--host", "n1=a", "--net", "netns"], "--net netns"),
            (vec!["--remote-base", "/srv/s"], "--remote-base is for"),
            (
                vec!["--host", "n1=a", "--remote-base", "rel/dir"],
                "--remote-base",
            ),
            (vec!["--ssh-identity", "/k"], "--ssh-identity"),
            (vec!["--host", "n1=a", "--hosts", "/h.toml"], "--hosts"),
            (vec!["--hosts", "/nonexistent/h.toml"], "cannot read"),
        ] {
            // One node, so that the node count is never what is wrong.
            let mut all = vec!["--nodes", "1", "--nemesis", "kill"];
            all.extend(args.iter().copied());
            if args.contains(&"--nodes") {
                all.drain(..2);
            }
            let e = parse(&all).unwrap_err();
            assert!(format!("{e:#}").contains(needle), "{args:?}: {e:#}");
        }
        // A spec on hosts gets the faults it allows under --net netns (partitions
        // included, which the proxy could not give it), and its base is recorded.
        let c = parse(&[
            "--nodes",
            "2",
            "--host",
            "n1=a",
            "--host",
            "n2=b",
            "--target-spec",
            spec,
            "--nemesis",
            "partition,kill",
            "--remote-base",
            "/srv/sunder",
        ])
        .unwrap();
        assert_eq!(c.hosts.as_ref().unwrap().base, "/srv/sunder");
        assert!(c.replay_command().contains("--remote-base /srv/sunder"));
    }
}

#[cfg(test)]
mod spec_tests {
    use super::tests_support::parse;

    fn etcd() -> String {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../targets/specs/etcd.toml").to_string()
    }

    #[test]
    fn a_spec_target_is_named_after_its_spec_and_takes_client_opts() {
        let spec = etcd();
        let c = parse(&[
            "--target-spec",
            &spec,
            "--net",
            "netns",
            "--client-opt",
            "reads=serializable",
        ])
        .unwrap();
        assert_eq!(c.target, "etcd");
        assert_eq!(c.name, "etcd-register-partition+kill");
        let replay = c.replay_command();
        assert!(
            replay.contains("--target-spec ") && replay.contains("--client-opt reads=serializable"),
            "{replay}"
        );
        super::tests_support::assert_replays(&c);
    }

    #[test]
    fn a_built_in_target_takes_only_its_own_client_opts() {
        let c = parse(&["--target", "pbft", "--client-opt", "send=all"]).unwrap();
        assert_eq!(c.bft_first_send(), sunder_workloads::FirstSend::All);
        assert!(c.replay_command().contains("--client-opt send=all"));
        super::tests_support::assert_replays(&c);
        let c = parse(&["--target", "pbft"]).unwrap();
        assert_eq!(c.bft_first_send(), sunder_workloads::FirstSend::All);
        let c = parse(&["--target", "pbft", "--client-opt", "send=primary"]).unwrap();
        assert_eq!(c.bft_first_send(), sunder_workloads::FirstSend::Primary);
        for bad in [
            &["--target", "pbft", "--client-opt", "send=everyone"][..],
            &["--target", "pbft", "--client-opt", "reads=sync"],
            &["--target", "raft", "--client-opt", "send=all"],
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("--client-opt"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_byzantine_mode_alone_makes_one_node_lie() {
        let c = parse(&[
            "--target",
            "pbft",
            "--nodes",
            "4",
            "--byzantine-mode",
            "forge",
        ])
        .unwrap();
        assert_eq!((c.byzantine, c.byzantine_nodes.len()), (1, 1));
        assert_eq!(c.byzantine_mode.as_deref(), Some("forge"));
        let c = parse(&["--target", "pbft", "--nodes", "4", "--byzantine", "1"]).unwrap();
        assert_eq!(c.byzantine_mode.as_deref(), Some("mix"), "the default mode");
        let none = parse(&["--target", "pbft", "--nodes", "4"]).unwrap();
        assert_eq!((none.byzantine, none.byzantine_mode), (0, None));
        let err = parse(&[
            "--target",
            "pbft",
            "--byzantine",
            "0",
            "--byzantine-mode",
            "forge",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("--byzantine 0"), "{err}");
    }

    #[test]
    fn byzantine_nodes_are_drawn_by_the_seed_checked_and_replayed() {
        let c = parse(&[
            "--target",
            "pbft",
            "--nodes",
            "7",
            "--seed",
            "9",
            "--byzantine",
            "2",
            "--byzantine-mode",
            "equivocate",
        ])
        .unwrap();
        assert_eq!(c.byzantine_nodes.len(), 2);
        assert_eq!(
            c.byzantine_nodes,
            sunder_sim::config::byzantine_members(9, 7, 2),
            "the members sunder sim makes Byzantine on this seed"
        );
        assert_eq!(c.byzantine_mode.as_deref(), Some("equivocate"));
        super::tests_support::assert_replays(&c);
        // Only a liar gets the flags, with its allies.
        let exe = std::path::Path::new("/x/sunder");
        let dir = std::path::PathBuf::from("/d");
        let members = c.members();
        for (i, id) in members.iter().enumerate() {
            let ctx = crate::controller::launch::NodeCtx {
                id,
                index: i + 1,
                members: &members,
                client: "127.0.0.1:1".parse().unwrap(),
                peer_listen: "127.0.0.1:2".parse().unwrap(),
                peers: Default::default(),
                data: dir.clone(),
                events: dir.clone(),
                log: dir.clone(),
            };
            let args: Vec<String> = crate::controller::launch::builtin_command(&c, exe, &ctx)
                .args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let liar = c.byzantine_nodes.contains(id);
            assert_eq!(args.contains(&"--byzantine".to_string()), liar, "{id}");
            assert_eq!(
                args.iter().filter(|a| *a == "--byzantine-ally").count(),
                usize::from(liar)
            );
        }
        // Honest runs say nothing of it.
        let h = parse(&["--target", "pbft", "--seed", "9"]).unwrap();
        assert!(h.byzantine_nodes.is_empty() && h.byzantine_mode.is_none());
        assert!(serde_json::to_value(&h).unwrap().get("byzantine").is_none());
        for (args, needle) in [
            (vec!["--byzantine", "1"], "unknown for raft; known: twins"),
            (
                vec![
                    "--target",
                    "pbft",
                    "--byzantine",
                    "1",
                    "--byzantine-mode",
                    "nope",
                ],
                "known: twins, equivocate",
            ),
            (
                vec!["--target", "pbft", "--nodes", "4", "--byzantine", "4"],
                "must be honest",
            ),
        ] {
            let e = parse(&args).unwrap_err().to_string();
            assert!(e.contains(needle), "{args:?}: {e}");
        }
    }

    #[test]
    fn what_a_spec_target_cannot_do_is_refused_with_the_reason() {
        let spec = etcd();
        for (args, needle) in [
            // the relays cannot come between etcd members
            (
                vec!["--target-spec", &spec, "--nemesis", "partition"],
                "--net netns",
            ),
            // the spec allows only process faults on loopback
            (
                vec!["--target-spec", &spec, "--nemesis", "clock"],
                "supports only the faults",
            ),
            (
                vec!["--target-spec", &spec, "--net", "netns", "--bug", "x"],
                "--bug",
            ),
            (
                vec![
                    "--target-spec",
                    &spec,
                    "--net",
                    "netns",
                    "--client-opt",
                    "reeds=x",
                ],
                "reeds",
            ),
            (
                vec!["--target-spec", "/nonexistent.toml"],
                "/nonexistent.toml",
            ),
            (
                vec!["--client-opt", "reads=serializable"],
                "the other keys are a spec's",
            ),
            (
                vec!["--target-spec", &spec, "--workload", "bank"],
                "does not do the bank workload",
            ),
        ] {
            let e = parse(&args).unwrap_err();
            assert!(format!("{e:#}").contains(needle), "{args:?}: {e:#}");
        }
        assert!(parse(&["--target-spec", &spec, "--nemesis", "kill"]).is_ok());
        assert!(parse(&["--workload", "bank", "--target", "pbft"]).is_ok());
        // The proof-of-work chain serves the bank only.
        let e = parse(&["--target", "pow"]).unwrap_err().to_string();
        assert!(e.contains("serves the bank workload only"), "{e}");
        assert!(parse(&["--workload", "bank", "--target", "pow"]).is_ok());
    }
}

#[cfg(test)]
pub mod tests_support {
    use super::*;

    /// A default configuration with a fixed seed, for tests.
    pub fn config() -> TestConfig {
        parse(&["--seed", "1"]).unwrap()
    }

    /// The replay command parses back to the same configuration (but the name).
    pub fn assert_replays(c: &TestConfig) {
        let cmd = c.replay_command();
        let words: Vec<&str> = cmd.split(' ').skip(2).collect();
        let mut back = parse(&words).unwrap();
        back.name = c.name.clone();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(c).unwrap()
        );
    }

    /// `sunder test ARGS` parsed and validated.
    pub fn parse(args: &[&str]) -> anyhow::Result<TestConfig> {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            a: TestArgs,
        }
        let mut v = vec!["sunder"];
        v.extend_from_slice(args);
        TestConfig::from_args(&Cli::try_parse_from(v)?.a)
    }
}
