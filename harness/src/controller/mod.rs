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
//!  heal all ─► wait for every node ─► final_phase ─► dumps ─► stop nodes
//!      ▼
//!  checks (linearizability | set, availability, stats) ─► results.json, table, JUnit, exit code
//! ```
//!
//! - [`config`]: flags → [`TestConfig`], the replay command.
//! - [`rundir`]: the run directory. [`launch`], [`ports`]: bringing the cluster up.
//! - [`cluster`]: node processes. [`admin`]: status, dump.
//! - [`faults`]: the schedule runner. [`progress`]: the progress line.
//! - [`checks`], [`results`]: verdicts and what is written. [`run`]: the whole flow.
//! - [`spec`]: target specs, third-party systems described in TOML.

pub mod admin;
pub mod checks;
pub mod cluster;
pub mod config;
pub mod faults;
pub mod launch;
pub mod ports;
pub mod probe;
pub mod progress;
pub mod results;
pub mod run;
pub mod rundir;
pub mod spec;

pub use config::TestConfig;
pub use run::{dry_run, run};
