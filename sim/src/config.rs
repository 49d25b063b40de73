//! What one simulated run is: target, cluster, faults, duration, seed. Validated here so
//! that every entry point (CLI, tests, benchmark) fails the same clear way.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::fault::FaultKind;

/// Why a simulation could not run (never "the system misbehaved": that is a verdict).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("unknown bug {bug:?} for {target} (known: {known})")]
    UnknownBug {
        target: String,
        bug: String,
        known: String,
    },
    #[error("unknown fault kind {0:?} (expected partition, kill, pause, clock, loss, or none)")]
    UnknownFault(String),
    #[error("{0}")]
    Invalid(String),
}

/// Which operations the simulated clients send, and which checker reads the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SimWorkload {
    /// read, write and cas on keys `k0..`: checked for linearizability.
    Register,
    /// Jepsen's bank on accounts `a0..`: transfers and reads of every balance, checked
    /// for a conserved total and no negative balance.
    Bank,
}

impl SimWorkload {
    pub fn name(self) -> &'static str {
        match self {
            SimWorkload::Register => "register",
            SimWorkload::Bank => "bank",
        }
    }

    pub fn parse(s: &str) -> Result<SimWorkload, SimError> {
        match s {
            "register" => Ok(SimWorkload::Register),
            "bank" => Ok(SimWorkload::Bank),
            other => Err(SimError::Invalid(format!(
                "unknown workload {other:?} (expected register or bank)"
            ))),
        }
    }
}

/// One simulated run, minus its seed's schedule.
#[derive(Debug, Clone, Serialize)]
pub struct SimConfig {
    pub target: String,
    pub nodes: usize,
    /// Simulated clients, each at most one operation in flight.
    pub clients: usize,
    /// Register keys, or bank accounts.
    pub keys: usize,
    pub workload: SimWorkload,
    pub bugs: Vec<String>,
    pub opts: BTreeMap<String, String>,
    pub faults: Vec<FaultKind>,
    /// Simulated milliseconds of workload and faults, before healing.
    pub time_ms: u64,
    /// Mean simulated milliseconds between fault starts.
    pub interval_ms: u64,
    /// A client gives up (records `info`) after this long.
    pub op_timeout_ms: u64,
    /// The tick interval the cores are told about and get ticks at.
    pub tick_ms: u64,
    pub seed: u64,
    /// Byzantine members (`--byzantine N`), chosen by the seed on their own stream (see
    /// [`SimConfig::byzantine_nodes`]); 0: every node honest.
    pub byzantine: usize,
    /// What they do (`--byzantine-mode`): one of the core's `Protocol::byzantine_modes`.
    pub byzantine_mode: String,
}

impl SimConfig {
    /// The defaults `sunder sim` uses: 5 nodes, 5 clients, every fault kind, 10 s.
    pub fn new(target: &str, seed: u64) -> SimConfig {
        SimConfig {
            target: target.to_string(),
            nodes: 5,
            clients: 5,
            keys: 3,
            workload: SimWorkload::Register,
            bugs: Vec::new(),
            opts: BTreeMap::new(),
            faults: FaultKind::ALL.to_vec(),
            time_ms: 10_000,
            interval_ms: 400,
            op_timeout_ms: 500,
            tick_ms: 10,
            seed,
            byzantine: 0,
            byzantine_mode: "mix".into(),
        }
    }

    /// The Byzantine members, by name (`n1`..), in order: `byzantine` of them drawn by
    /// the seed on the BYZANTINE stream, so that a run's other draws stay as they were.
    pub fn byzantine_nodes(&self) -> Vec<String> {
        byzantine_members(self.seed, self.nodes, self.byzantine)
    }

    /// Checks the settings, the bugs against the ones the core knows (`known`, its
    /// `Protocol::known_bugs`) and a Byzantine mode against its `byzantine_modes`.
    pub fn validate(&self, known: &[&str], modes: &[&str]) -> Result<(), SimError> {
        for b in &self.bugs {
            if !known.contains(&b.as_str()) {
                return Err(SimError::UnknownBug {
                    target: self.target.clone(),
                    bug: b.clone(),
                    known: known.join(", "),
                });
            }
            if sunder_core::protocol::DISK_BUGS.contains(&b.as_str()) {
                return Err(SimError::Invalid(format!(
                    "bug {b}: acted out by the node runtime's disk writes, which the simulator \
                     does not have; use `sunder test --nemesis lose-unsynced`"
                )));
            }
        }
        let bad = |m: String| Err(SimError::Invalid(m));
        if !(1..=15).contains(&self.nodes) {
            return bad(format!("nodes {}: must be between 1 and 15", self.nodes));
        }
        if !(1..=100).contains(&self.clients) {
            return bad(format!(
                "clients {}: must be between 1 and 100",
                self.clients
            ));
        }
        if !(1..=100).contains(&self.keys) {
            return bad(format!("keys {}: must be between 1 and 100", self.keys));
        }
        if self.workload == SimWorkload::Bank && self.keys < 2 {
            return bad(format!(
                "keys {}: a bank needs at least 2 accounts",
                self.keys
            ));
        }
        if self.time_ms == 0 || self.time_ms > 3_600_000 {
            return bad(format!(
                "time {} ms: must be between 1 ms and 1 h",
                self.time_ms
            ));
        }
        if self.interval_ms == 0 || self.tick_ms == 0 || self.op_timeout_ms == 0 {
            return bad("interval, tick and op timeout must be more than zero".into());
        }
        if self.byzantine > 0 {
            if self.byzantine >= self.nodes {
                return bad(format!(
                    "byzantine {}: at least one of the {} nodes must be honest",
                    self.byzantine, self.nodes
                ));
            }
            // Twins need no behaviour in the core: every core has them.
            if self.byzantine_mode != sunder_core::twins::MODE
                && !modes.contains(&self.byzantine_mode.as_str())
            {
                return bad(if modes.is_empty() {
                    format!("{} has no Byzantine behaviours but twins", self.target)
                } else {
                    format!(
                        "byzantine mode {}: unknown for {}; known: twins, {}",
                        self.byzantine_mode,
                        self.target,
                        modes.join(", ")
                    )
                });
            }
        }
        Ok(())
    }
}

/// `count` of the members `n1..n{nodes}`, drawn by `seed` on the BYZANTINE stream, in
/// order. `sunder sim` and `sunder test` draw with this one function, so a seed makes the
/// same members Byzantine in both; the `count` drawn first are among any larger draw.
pub fn byzantine_members(seed: u64, nodes: usize, count: usize) -> Vec<String> {
    use rand::seq::SliceRandom;
    let mut all: Vec<usize> = (1..=nodes).collect();
    all.shuffle(&mut rng(seed, stream::BYZANTINE));
    let mut chosen: Vec<usize> = all.into_iter().take(count).collect();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| format!("n{i}")).collect()
}

/// The one seed formula: every random stream of a run is ChaCha8 seeded with the run seed,
/// on its own stream number, so that one stream's draws never shift another's.
pub fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// Stream numbers of [`rng`].
pub mod stream {
    pub const SCHEDULE: u64 = 1;
    pub const NETWORK: u64 = 2;
    pub const CLIENTS: u64 = 3;
    pub const CORES: u64 = 4;
    pub const BYZANTINE: u64 = 5;
}
