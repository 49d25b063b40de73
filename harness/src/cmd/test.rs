//! `sunder test`: flags → a validated [`TestConfig`] → the controller.

use super::seeds::SeedList;
use crate::controller::config::NetBackend;
use crate::controller::{self, TestConfig};
use std::path::PathBuf;
use std::time::Duration;

/// Run a test: spawn a cluster, drive clients, inject faults, check the history.
#[derive(clap::Args, Debug, Clone)]
pub struct TestArgs {
    #[arg(
        long,
        default_value = "raft",
        help = "The built-in system under test (--help lists them)",
        long_help = crate::targets::help("The built-in system under test:", false)
    )]
    pub target: String,
    /// A third-party system described by a TOML spec file (e.g. targets/specs/etcd.toml),
    /// instead of a built-in --target.
    #[arg(long = "target-spec", conflicts_with = "target")]
    pub target_spec: Option<PathBuf>,
    /// Overrides a setting of the spec's `[client]` table, `KEY=VALUE` (repeatable), e.g.
    /// `--client-opt reads=serializable`. Built-in targets: pbft's `send=primary|all` (where
    /// a BFT client's request goes first; default primary).
    #[arg(long = "client-opt")]
    pub client_opts: Vec<String>,
    /// Number of nodes.
    #[arg(long, visible_alias = "node-count", default_value_t = 3)]
    pub nodes: usize,
    /// register (read/write/cas, checked for linearizability), set (adds, final reads) or
    /// bank (transfers between accounts and reads of every balance; built-in targets);
    /// with --maelstrom: echo, unique-ids, broadcast, g-set, g-counter, pn-counter, lin-kv
    /// or kafka.
    #[arg(long, short = 'w', default_value = "register")]
    pub workload: String,
    /// Client workers, each with one operation in flight.
    #[arg(long, default_value_t = 5)]
    pub concurrency: usize,
    /// Target operations per second across all workers; 0 = as fast as possible.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// How long the workload runs, e.g. `30s`, `2m`.
    #[arg(long = "time-limit", default_value = "30s", value_parser = parse_duration)]
    pub time_limit: Duration,
    /// Number of register keys, or bank accounts (with --maelstrom: lin-kv and kafka keys).
    #[arg(long = "key-count", default_value_t = 5)]
    pub key_count: usize,
    /// The seed every random choice derives from [default: random, printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Faults to mix: a comma-separated list of partition, kill, pause, clock (needs
    /// libfaketime), loss (random packet loss, needs --net netns); or `none`
    /// [default: partition,kill; pbft: partition,kill,pause].
    #[arg(long)]
    pub nemesis: Option<String>,
    /// Network backend: `proxy` (TCP relays on 127.0.0.1, no privileges) or `netns` (root:
    /// a network namespace per node, faults as nftables rules; needed for `loss`).
    #[arg(long, default_value = "proxy")]
    pub net: String,
    /// Each node's data directory: `diskfs` serves it through sunder's disk filesystem
    /// (root; it keeps every unsynced write so that disk faults can drop them), `plain` is
    /// a plain directory, `auto` is diskfs exactly when the nemesis has disk faults.
    #[arg(long, default_value = "auto")]
    pub disk: String,
    /// When the disk filesystem makes a name (create, rename, unlink, mkdir) durable:
    /// `strict` (POSIX: when its directory is fsynced) or `journal` (at any fsync, as a
    /// journaling filesystem such as ext4 commits every earlier metadata change).
    #[arg(long = "disk-metadata", default_value = "strict")]
    pub disk_metadata: String,
    /// The nodes kills, pauses and disk faults may hit, drawn from by the seed: a list of
    /// `one`, `minority`, `majority`, `all` (for disk faults: a power cut), `leader`
    /// [default: all five].
    #[arg(long = "fault-targets")]
    pub fault_targets: Option<String>,
    /// The nemesis's beat: with `--fault-lengths fixed`, the quiet time before each fault
    /// and how long each fault lasts; with `varied`, the mean quiet time, and faults last
    /// from 5 ms to two intervals [default: 3s; pbft: 2s].
    #[arg(long = "nemesis-interval", value_parser = parse_duration)]
    pub nemesis_interval: Option<Duration>,
    /// `varied` (faults of every length, blips that end inside one election to faults of
    /// two intervals, at uneven gaps) or `fixed` (every fault and every gap one interval).
    #[arg(
        long = "fault-lengths",
        default_value = "varied",
        conflicts_with = "maelstrom"
    )]
    pub fault_lengths: sunder_nemesis::FaultLengths,
    /// A planted bug to switch on in the nodes (repeatable).
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
    /// A protocol setting `KEY=VALUE` passed to the nodes (repeatable).
    #[arg(long = "opt")]
    pub opts: Vec<String>,
    /// Make N nodes Byzantine, chosen by the seed and recorded (results.json
    /// `byzantine`); the checkers judge the honest nodes only. PBFT tolerates
    /// f = (n-1)/3; more shows what the bound is for. Default 0, or 1 when
    /// `--byzantine-mode` is given alone.
    #[arg(long, value_name = "N")]
    pub byzantine: Option<usize>,
    /// What the Byzantine nodes do (default mix): `twins` on any target (two honest cores
    /// with one identity; a second process for a spec that allows it); pbft also:
    /// equivocate, silent, corrupt-digest, forge, replay, mix.
    #[arg(long = "byzantine-mode", value_name = "MODE")]
    pub byzantine_mode: Option<String>,
    /// Where runs are stored.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Also write a JUnit XML file (one test case per checker).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// A client call not answered within this time ends `info` [default: the target's
    /// election timeout for raft (300ms) and paxos (500ms), or their `--opt election_ms`;
    /// 1s for the others].
    #[arg(long = "op-timeout", value_parser = parse_duration)]
    pub op_timeout: Option<Duration>,
    /// The test's name [default: TARGET-WORKLOAD-NEMESIS].
    #[arg(long)]
    pub name: Option<String>,
    /// Print results.json on stdout at the end.
    #[arg(long)]
    pub json: bool,
    /// Start nothing: print the configuration, the fault schedule and the first
    /// operations of each worker as JSON (what this seed will do).
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// With --dry-run: how many operations per worker to print.
    #[arg(long = "dry-run-ops", default_value_t = 20)]
    pub dry_run_ops: usize,
    /// A sweep: run the test N times, on seeds --seed, --seed + 1, ... (a random first seed,
    /// printed, without --seed); one run directory each, one summary and JUnit file.
    #[arg(long = "test-count", conflicts_with_all = ["seeds", "dry_run"])]
    pub test_count: Option<u64>,
    /// A sweep over these seeds: `1..10` (both ends included), `7`, or lists `1..5,9`.
    #[arg(long, conflicts_with_all = ["seed", "dry_run"])]
    pub seeds: Option<super::seeds::SeedList>,
    /// With a sweep: how many runs at a time.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// Run node NODE on a remote host over SSH, `NODE=[USER@]ADDRESS[:PORT]` (repeatable,
    /// one per node), e.g. `--host n1=root@10.0.0.5`.
    #[arg(long = "host", conflicts_with = "hosts")]
    pub host: Vec<String>,
    /// Run the nodes on remote hosts over SSH, as a TOML file with a table per node
    /// (address, user, port, identity, known_hosts, ssh_config; README "Remote hosts").
    #[arg(long)]
    pub hosts: Option<PathBuf>,
    /// With --host/--hosts: the private key for hosts that name none [default: the agent
    /// and the user's keys].
    #[arg(long = "ssh-identity")]
    pub ssh_identity: Option<PathBuf>,
    /// With --host/--hosts: the known_hosts file for hosts that name none [default: the
    /// user's and the system's]. Host keys are always checked.
    #[arg(long = "ssh-known-hosts")]
    pub ssh_known_hosts: Option<PathBuf>,
    /// With --host/--hosts: the directory on every host under which the run's own
    /// directory (binary, data, logs, pid files) is made and, at the end, removed
    /// [default: /tmp/sunder-remote].
    #[arg(long = "remote-base")]
    pub remote_base: Option<String>,
    /// Run a Maelstrom node program (JSON lines on stdin/stdout) as every node, with its
    /// arguments after `--`; sunder is its network, services and clients (README "Maelstrom
    /// nodes").
    #[arg(long, value_name = "PROGRAM", conflicts_with_all = [
        "target", "target_spec", "client_opts", "bugs", "opts", "dry_run", "host", "hosts", "net",
        "byzantine", "byzantine_mode",
    ])]
    pub maelstrom: Option<PathBuf>,
    /// The Maelstrom node program's arguments (after `--`).
    #[arg(last = true, requires = "maelstrom")]
    pub node_args: Vec<String>,
    /// With --maelstrom: message latency, `5` (ms, constant), `constant:5ms`,
    /// `uniform:1ms..10ms` or `exponential:5ms` [default: 0].
    #[arg(long, requires = "maelstrom")]
    pub latency: Option<String>,
    /// With --maelstrom -w broadcast: grid (default), line, total, tree2, tree3, tree4.
    #[arg(long, requires = "maelstrom")]
    pub topology: Option<String>,
    /// With --maelstrom: probability that a message between two nodes is lost.
    #[arg(long, default_value_t = 0.0, requires = "maelstrom")]
    pub loss: f64,
    /// With --maelstrom: probability that a message between two nodes arrives twice.
    #[arg(long, default_value_t = 0.0, requires = "maelstrom")]
    pub duplicate: f64,
    /// With --maelstrom: probability that a message between two nodes is held back 10 to
    /// 100 ms, so that later ones on the same link overtake it.
    #[arg(long, default_value_t = 0.0, requires = "maelstrom")]
    pub reorder: f64,
    /// With --maelstrom: how long a node has to answer `init` [default: 10s].
    #[arg(long = "init-timeout", value_parser = parse_duration, requires = "maelstrom")]
    pub init_timeout: Option<Duration>,
    /// With --maelstrom: quiet time after the final heal before the final reads [default: 3s].
    #[arg(long, value_parser = parse_duration, requires = "maelstrom")]
    pub recovery: Option<Duration>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}`: {e} (write durations like 30s, 500ms or 2m)"))
}

pub fn run(args: TestArgs) -> anyhow::Result<i32> {
    if let Some(program) = args.maelstrom.clone() {
        let seed = args
            .seed
            .unwrap_or_else(crate::controller::config::random_seed);
        let seeds = match (&args.seeds, args.test_count) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(n)) => Some(SeedList::consecutive(seed, n).map_err(anyhow::Error::msg)?),
            (None, None) => None,
        };
        return match seeds {
            Some(seeds) => {
                if args.parallel == 0 {
                    anyhow::bail!("--parallel must be at least 1");
                }
                let plan = super::maelstrom::sweep_plan(&args, program, seed)?;
                super::sweep::run(plan, &seeds, args.parallel, args.json)
            }
            None if args.parallel > 1 => {
                anyhow::bail!("--parallel is for sweeps: add --test-count N or --seeds A..B")
            }
            None => super::maelstrom::run(&args, program, seed),
        };
    }
    let cfg = TestConfig::from_args(&args)?;
    if args.parallel == 0 {
        anyhow::bail!("--parallel must be at least 1");
    }
    if args.parallel > 1 && cfg.hosts.is_some() {
        anyhow::bail!(
            "--parallel with --hosts/--host: remote nodes listen on fixed ports of their hosts, \
             so runs on the same hosts go one at a time (leave --parallel at 1)"
        );
    }
    let sweep = match (&args.seeds, args.test_count) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(n)) => Some(SeedList::consecutive(cfg.seed, n).map_err(anyhow::Error::msg)?),
        (None, None) if args.parallel > 1 => {
            anyhow::bail!("--parallel is for sweeps: add --test-count N or --seeds A..B")
        }
        (None, None) => None,
    };
    if args.dry_run {
        return controller::dry_run(&cfg, args.dry_run_ops);
    }
    if cfg.net == NetBackend::Netns {
        if let Some(why) = sunder_nemesis::netns::unavailable() {
            anyhow::bail!("{why}");
        }
    }
    match sweep {
        Some(seeds) => super::sweep::run(
            super::sweep::Plan::for_test(&cfg)?,
            &seeds,
            args.parallel,
            args.json,
        ),
        None => controller::run(cfg, args.json),
    }
}
