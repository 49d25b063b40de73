//! The test controller behind `sunder test`.
//!
//! ```text
//!  TestConfig ─► RunDir (config.json, schedule.json, latest) ─► ports ─► ProxyNet relays
//!      │                                               (--net netns: NetnsNet namespaces)
//!      │                                                                    │
//!      │        Cluster: `sunder node <target> ...` × n, own process groups ◄┘ --peer via relays
//!      │                 (netns: each enters its namespace before exec; --peer direct)
//!      │           │ wait until every node answers `status`
//!      ▼           ▼
//!  run_workers ──► Recorder ──► history.jsonl ◄── FaultRunner (schedule → Nemesis → ProxyNet /
//!      │  (until the time limit or Ctrl-C)         Cluster kill/restart/pause/resume)
//!      ▼
//!  heal all ─► settle (every node up) ─► final_reads ─► converge ─► collect_dumps ─► audit
//!      ▼                                                                               │
//!  teardown (nodes, relays, namespaces, history flushed) ◄──────────────────────────────┘
//!      ▼
//!  judge: checks (linearizability | set, agreement, availability, stats)
//!      ─► results.json, table, JUnit, exit code
//! ```
//!
//! - [`config`]: flags → [`TestConfig`], the replay command.
//! - [`rundir`]: the run directory. [`launch`], [`ports`]: bringing the cluster up;
//!   [`keys`]: a PBFT run's keys and their files.
//! - [`cluster`]: node processes. [`admin`]: status, dump. [`owner`]: whose socket answered.
//!   [`disks`]: the nodes' data directories as `sunder-diskfs` mounts, for disk faults.
//! - [`faults`]: the schedule runner. [`progress`]: the progress line.
//! - [`checks`], [`results`]: verdicts and what is written. [`run`]: the whole flow, one
//!   function per phase. [`interrupt`]: what Ctrl-C and SIGTERM do during a run.
//! - [`spec`]: target specs, third-party systems described in TOML.
//! - [`nodes`]: the node processes wherever they run, one type for the run's flow.
//! - [`remote`]: `--hosts`/`--host`: which host carries which node, how ssh reaches it,
//!   and each node's command there. [`remote_nodes`]: the nodes on those hosts, from the
//!   first connection through the download to the removal of everything the run made.

pub mod admin;
pub mod checks;
pub mod cluster;
pub mod config;
pub mod disks;
pub mod faults;
pub mod interrupt;
pub mod keys;
pub mod launch;
pub mod nodes;
pub mod owner;
pub mod ports;
pub mod probe;
pub mod progress;
pub mod remote;
pub mod remote_nodes;
pub mod results;
pub mod run;
pub mod rundir;
pub mod spec;

pub use config::TestConfig;
pub use run::{dry_run, run};
