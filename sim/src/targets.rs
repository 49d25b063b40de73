//! The built-in cores by name, each with the per-step invariant its protocol promises.

use std::collections::BTreeMap;

use sunder_core::Protocol;

use crate::check::{Outcome, judge};
use crate::config::{SimConfig, SimError};
use crate::fault::Schedule;
use crate::world::{Hooks, World};

/// Targets `sunder sim` knows.
pub const TARGETS: &[&str] = &["raft", "paxos", "pbft", "lww", "primary"];

/// The planted bugs a target understands.
pub fn known_bugs(target: &str) -> Result<&'static [&'static str], SimError> {
    Ok(match target {
        "raft" => sunder_raft::Raft::known_bugs(),
        "paxos" => sunder_paxos::Paxos::known_bugs(),
        "pbft" => sunder_pbft::Pbft::known_bugs(),
        "lww" => sunder_toy::Lww::known_bugs(),
        "primary" => sunder_toy::Primary::known_bugs(),
        other => return Err(SimError::UnknownTarget(other.to_string())),
    })
}

/// Options a target gets unless the run sets them: Raft compacts every 200 entries, so
/// that snapshots (and InstallSnapshot to a node that was away) happen in every run.
pub fn default_opts(target: &str) -> &'static [(&'static str, &'static str)] {
    match target {
        "raft" => &[("snapshot", "200")],
        // Checkpoints (and state transfer to a replica that was away) in every run.
        "pbft" => &[("checkpoint", "16")],
        _ => &[],
    }
}

/// Runs one seed with the schedule its seed draws.
pub fn run_seed(cfg: &SimConfig) -> Result<Outcome, SimError> {
    run_with_schedule(cfg, Schedule::generate(cfg))
}

/// Runs one seed with a given schedule (a shrunk one, or one read back from a run).
pub fn run_with_schedule(cfg: &SimConfig, schedule: Schedule) -> Result<Outcome, SimError> {
    cfg.validate()?;
    let mut cfg = cfg.clone();
    for (k, v) in default_opts(&cfg.target) {
        cfg.opts
            .entry(k.to_string())
            .or_insert_with(|| v.to_string());
    }
    let cfg = &cfg;
    Ok(match cfg.target.as_str() {
        // Every simulated peer is honest: in a correct build, a message refused at a core's
        // boundary means the validation refuses what the protocol really sends.
        "raft" => go::<sunder_raft::Raft>(
            cfg,
            schedule,
            Hooks {
                invariant: Some(if cfg.bugs.is_empty() {
                    raft_honest
                } else {
                    raft_election_safety
                }),
                ..Hooks::default()
            },
        ),
        "paxos" => go::<sunder_paxos::Paxos>(
            cfg,
            schedule,
            Hooks {
                invariant: cfg.bugs.is_empty().then_some(paxos_honest as _),
                ..Hooks::default()
            },
        ),
        "pbft" => go::<sunder_pbft::Pbft>(
            cfg,
            schedule,
            Hooks {
                invariant: Some(if cfg.bugs.is_empty() {
                    crate::pbft::honest
                } else {
                    crate::pbft::same_executions
                }),
                replies_needed: Some((cfg.nodes - 1) / 3 + 1),
                tamper: Some(crate::pbft::tamper),
            },
        ),
        "lww" => go::<sunder_toy::Lww>(cfg, schedule, Hooks::default()),
        "primary" => go::<sunder_toy::Primary>(cfg, schedule, Hooks::default()),
        other => return Err(SimError::UnknownTarget(other.to_string())),
    })
}

fn go<P: Protocol>(cfg: &SimConfig, schedule: Schedule, hooks: Hooks<P>) -> Outcome
where
    P::Msg: Clone,
    P::Record: Clone,
{
    let f = World::<P>::new(cfg, schedule.clone(), hooks).run();
    judge(cfg.seed, schedule, f)
}

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
