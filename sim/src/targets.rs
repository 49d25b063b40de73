//! What makes a core simulable ([`SimTarget`]), the generic entry points, and the built-in
//! cores' per-step invariants. Which cores exist, by name, is the harness's table
//! (`sunder::targets`), which holds [`run_with_schedule::<P>`](run_with_schedule) as a
//! [`RunFn`]: this crate keeps no list of names.

use std::collections::BTreeMap;

use sunder_core::Protocol;
use sunder_core::twins::{self, Twins};

use crate::check::{Outcome, judge};
use crate::config::{SimConfig, SimError};
use crate::fault::Schedule;
use crate::world::{Hooks, World};

/// A core the simulator can run: messages and records are cloned (duplicated deliveries,
/// rebuilding a crashed node from its persisted records).
pub trait SimTarget: Protocol<Msg: Clone, Record: Clone> + Sized {
    /// Options the core gets unless the run sets them.
    fn default_opts() -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// How long a simulated client waits for an answer, when the core answers slower than
    /// the simulator's default by design (a proof-of-work chain's confirmations).
    fn op_timeout_ms() -> Option<u64> {
        None
    }

    /// What the simulator checks after every step (none by default).
    fn hooks(_cfg: &SimConfig) -> Hooks<Self> {
        Hooks::default()
    }
}

/// One simulated run of a given core: [`run_with_schedule`] monomorphised, the shape a
/// table of targets stores.
pub type RunFn = fn(&SimConfig, Schedule) -> Result<Outcome, SimError>;

/// Runs one seed with the schedule its seed draws.
pub fn run_seed<P: SimTarget>(cfg: &SimConfig) -> Result<Outcome, SimError> {
    run_with_schedule::<P>(cfg, Schedule::generate(cfg))
}

/// Runs one seed with a given schedule (a shrunk one, or one read back from a run).
pub fn run_with_schedule<P: SimTarget>(
    cfg: &SimConfig,
    schedule: Schedule,
) -> Result<Outcome, SimError> {
    cfg.validate(P::known_bugs(), P::byzantine_modes())?;
    let mut cfg = cfg.clone();
    if let Some(t) = P::op_timeout_ms() {
        cfg.op_timeout_ms = t;
    }
    for (k, v) in P::default_opts() {
        cfg.opts
            .entry(k.to_string())
            .or_insert_with(|| v.to_string());
    }
    let f = if cfg.byzantine > 0 && cfg.byzantine_mode == twins::MODE {
        // Twins are honest code: the per-step invariants, made for honest cores, are left
        // to the checkers, which judge the honest members.
        let h = P::hooks(&cfg);
        let hooks = Hooks::<Twins<P>> {
            invariant: None,
            replies_needed: h.replies_needed,
            tamper: h.tamper,
        };
        World::<Twins<P>>::new(&cfg, schedule.clone(), hooks).run()
    } else {
        World::<P>::new(&cfg, schedule.clone(), P::hooks(&cfg)).run()
    };
    Ok(judge(cfg.seed, cfg.workload, schedule, f))
}

/// Raft compacts every 200 entries, so that snapshots (and InstallSnapshot to a node that
/// was away) happen in every run; with no bug planted, every simulated peer is honest, so
/// a message refused at a core's boundary means the validation refuses what the protocol
/// really sends.
impl SimTarget for sunder_raft::Raft {
    fn default_opts() -> &'static [(&'static str, &'static str)] {
        &[("snapshot", "200")]
    }

    fn hooks(cfg: &SimConfig) -> Hooks<Self> {
        Hooks {
            invariant: Some(if cfg.bugs.is_empty() {
                raft_honest
            } else {
                raft_election_safety
            }),
            ..Hooks::default()
        }
    }
}

impl SimTarget for sunder_paxos::Paxos {
    fn hooks(cfg: &SimConfig) -> Hooks<Self> {
        Hooks {
            invariant: cfg.bugs.is_empty().then_some(paxos_honest as _),
            ..Hooks::default()
        }
    }
}

/// Checkpoints (and state transfer to a replica that was away) in every run; the client
/// needs f+1 matching replies; messages are tampered with in transit while a loss fault is
/// in force, which a replica that checks signatures must refuse.
impl SimTarget for sunder_pbft::Pbft {
    fn default_opts() -> &'static [(&'static str, &'static str)] {
        &[("checkpoint", "16")]
    }

    fn hooks(cfg: &SimConfig) -> Hooks<Self> {
        Hooks {
            // With Byzantine members, honest replicas refuse what liars send: only
            // agreement among the honest (the world leaves liars out) is checked.
            invariant: Some(if cfg.bugs.is_empty() && cfg.byzantine == 0 {
                crate::pbft::honest
            } else {
                crate::pbft::same_executions
            }),
            replies_needed: Some((cfg.nodes - 1) / 3 + 1),
            tamper: Some(crate::pbft::tamper),
        }
    }
}

/// Mining is the core's own real hashing, paced by the simulated clock's ticks. A
/// transfer is answered once `confirmations` blocks deep: seconds, not milliseconds.
impl SimTarget for sunder_pow::Pow {
    fn op_timeout_ms() -> Option<u64> {
        Some(10_000)
    }
}

impl SimTarget for sunder_toy::Lww {}

impl SimTarget for sunder_toy::Primary {}

/// Election safety, and no message from an honest peer refused at the boundary.
fn raft_honest(nodes: &[(&str, &sunder_raft::Raft)]) -> Option<String> {
    raft_election_safety(nodes).or_else(|| {
        nodes
            .iter()
            .find(|(_, r)| r.rejected() > 0)
            .map(|(n, r)| format!("{n} refused {} message(s) from honest peers", r.rejected()))
    })
}

/// No message from an honest peer refused at the boundary.
fn paxos_honest(nodes: &[(&str, &sunder_paxos::Paxos)]) -> Option<String> {
    nodes
        .iter()
        .find(|(_, p)| p.rejected() > 0)
        .map(|(n, p)| format!("{n} refused {} message(s) from honest peers", p.rejected()))
}

/// Raft's election safety (§5.2): at no moment do two live nodes lead the same term.
fn raft_election_safety(nodes: &[(&str, &sunder_raft::Raft)]) -> Option<String> {
    let mut leaders: BTreeMap<u64, &str> = BTreeMap::new();
    for (name, r) in nodes {
        if r.role() == sunder_raft::Role::Leader
            && let Some(other) = leaders.insert(r.term(), name)
        {
            return Some(format!("{other} and {name} both lead term {}", r.term()));
        }
    }
    None
}
