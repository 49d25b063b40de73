//! The built-in targets, in one table: every place that needs to know which targets exist
//! (`sunder node`, `sunder test`'s flag checks, the checkers a run gets, `sunder sim`,
//! help texts and errors) reads [`TARGETS`]. Adding a target is one entry here plus its
//! crate (a `Protocol` core with a `sunder_sim::SimTarget` impl). Third-party systems
//! described by a spec file (`--target-spec`) are not in this table.

use sunder_node::{NodeArgs, NodeError, OptSpec};
use sunder_sim::{RunFn, SimTarget};
use sunder_workloads::WorkloadKind;

/// What the harness knows about one built-in target.
pub struct TargetInfo {
    /// The `--target` / `sunder node` name.
    pub name: &'static str,
    /// One line for help texts.
    pub about: &'static str,
    /// The planted bugs `--bug` may switch on.
    pub bugs: fn() -> &'static [&'static str],
    /// The `--opt` keys the core accepts (the controller checks them before any node starts).
    pub opts: fn() -> &'static [OptSpec],
    /// The Byzantine behaviours the core can act out (`--byzantine-mode`); none for most.
    pub byzantine_modes: fn() -> &'static [&'static str],
    /// The nodes keep a replicated log: the run takes their dumps and event streams and the
    /// agreement checker judges them.
    pub agreement: bool,
    /// The nodes elect or name a leader that `status` reports: the nemesis aims faults at
    /// it more often than at other nodes ([`sunder_nemesis::LEADER_WEIGHT`]).
    pub leader: bool,
    /// How long the nodes wait on a silent leader before they replace it, for targets that
    /// have a leader on a timeout: the nemesis's varied rhythm times its middle faults by it
    /// ([`TargetInfo::leader_timeout`]), and on targets that elect on it, a client's
    /// default op timeout is it ([`TargetInfo::op_timeout`]).
    pub leader_timeout: Option<LeaderTimeout>,
    /// Runs one node until SIGTERM or SIGINT (`sunder node NAME ...`); `None` for a core
    /// that so far runs only under the simulator (`sunder test` and `sunder node` refuse it).
    pub run_node: Option<fn(NodeArgs) -> Result<(), NodeError>>,
    /// The deterministic simulator's entry for this core (`sunder sim --target NAME`).
    pub sim: Option<RunFn>,
    /// The faults `sunder test` mixes when `--nemesis` is not given.
    pub default_nemesis: &'static str,
    /// The nemesis's beat when `--nemesis-interval` is not given.
    pub default_interval: std::time::Duration,
    /// The workloads the target serves (`None`: every one).
    pub workloads: Option<&'static [WorkloadKind]>,
    /// A client's default op timeout, for a target that answers slower than
    /// [`DEFAULT_OP_TIMEOUT`] by design (overrides [`TargetInfo::op_timeout`]'s rule).
    pub slow_answers: Option<std::time::Duration>,
}

/// The faults `sunder test` mixes when neither `--nemesis` nor the target says otherwise
/// (spec and Maelstrom targets too).
pub const DEFAULT_NEMESIS: &str = "partition,kill";

/// The nemesis's beat when neither `--nemesis-interval` nor the target says otherwise.
pub const DEFAULT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3);

/// A target's leader timeout: the `--opt` that sets it, in milliseconds, and its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderTimeout {
    pub opt: &'static str,
    pub default_ms: u64,
}

/// Raft's and Multi-Paxos's: an election timeout.
const fn election(default_ms: u64) -> Option<LeaderTimeout> {
    Some(LeaderTimeout {
        opt: "election_ms",
        default_ms,
    })
}

/// A target whose core runs both as a node process and under the simulator.
const fn builtin<P: SimTarget>(
    name: &'static str,
    about: &'static str,
    agreement: bool,
    leader: bool,
    leader_timeout: Option<LeaderTimeout>,
) -> TargetInfo {
    TargetInfo {
        name,
        about,
        bugs: P::known_bugs,
        opts: P::accepted_opts,
        byzantine_modes: P::byzantine_modes,
        agreement,
        leader,
        leader_timeout,
        run_node: Some(sunder_node::run_node::<P>),
        sim: Some(sunder_sim::run_with_schedule::<P>),
        default_nemesis: DEFAULT_NEMESIS,
        default_interval: DEFAULT_INTERVAL,
        workloads: None,
        slow_answers: None,
    }
}

/// Every built-in target, in the order help texts list them.
pub static TARGETS: &[TargetInfo] = &[
    builtin::<sunder_toy::Lww>(
        "lww",
        "last-writer-wins replicas (not linearizable under partitions)",
        false,
        false,
        None,
    ),
    builtin::<sunder_toy::Primary>(
        "primary",
        "a fixed primary that serves every operation",
        false,
        true,
        None,
    ),
    builtin::<sunder_raft::Raft>(
        "raft",
        "Raft: leader election and a replicated log",
        true,
        true,
        election(300), // `election_ms`'s default in targets/raft/src/config.rs
    ),
    builtin::<sunder_paxos::Paxos>(
        "paxos",
        "Multi-Paxos: a replicated log",
        true,
        true,
        election(500), // `election_ms`'s default in targets/paxos/src/core.rs
    ),
    // Its node reads the key files the controller writes (pbft_node.rs).
    TargetInfo {
        run_node: Some(crate::pbft_node::run),
        // Pauses too: a primary that stalls and comes back is the slow primary PBFT's view
        // change is for, and a replica stalled while the others commit falls behind the
        // way a view change must not forget. And a faster beat: a view change goes wrong
        // only when it lands on a replica still behind, so it takes more of them than an
        // election does (measured in the README's table of the default run).
        default_nemesis: "partition,kill,pause",
        default_interval: std::time::Duration::from_secs(2),
        ..builtin::<sunder_pbft::Pbft>(
            "pbft",
            "PBFT: Byzantine fault tolerant, signed messages and client requests",
            true,
            true,
            // `view_change_ms`'s default in targets/pbft/src/core.rs (its first view change;
            // later ones wait longer).
            Some(LeaderTimeout {
                opt: "view_change_ms",
                default_ms: 300,
            }),
        )
    },
    // Blocks of signed transfers between accounts: it serves the bank workload only, and
    // answers a transfer once it is `confirmations` blocks deep (seconds: with the
    // defaults a block comes about every 500 ms), so its clients wait longer.
    TargetInfo {
        workloads: Some(&[WorkloadKind::Bank]),
        slow_answers: Some(std::time::Duration::from_secs(10)),
        default_nemesis: "partition,kill,pause",
        ..builtin::<sunder_pow::Pow>(
            "pow",
            "a proof-of-work chain: throttled mining, heaviest chain, signed transfers",
            true,
            false,
            None,
        )
    },
];

/// A client's default op timeout when `--op-timeout` is not given.
pub const DEFAULT_OP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

impl TargetInfo {
    /// The default op timeout on this target with these `--opt`s: the election timeout
    /// (`election_ms`, as given or the target's default) on a target that elects on one,
    /// else [`DEFAULT_OP_TIMEOUT`]. A client that waits no longer than an election gives
    /// up on a deposed leader while the new one is being elected, and moves on (or, half
    /// of them, stays: see `workloads::worker`) in time to meet both sides of a short
    /// partition, where a longer wait would see the fault heal first.
    pub fn op_timeout(&self, opts: &[(String, String)]) -> std::time::Duration {
        if let Some(t) = self.slow_answers {
            return t;
        }
        match self.leader_timeout {
            Some(t) if t.opt == "election_ms" => self.leader_timeout(opts).expect("some"),
            _ => DEFAULT_OP_TIMEOUT,
        }
    }

    /// The leader timeout with these `--opt`s (the last one that sets it, else the
    /// default), at least 1 ms; `None` for a target without one.
    pub fn leader_timeout(&self, opts: &[(String, String)]) -> Option<std::time::Duration> {
        let t = self.leader_timeout?;
        let ms = opts
            .iter()
            .rev()
            .find(|(k, _)| k == t.opt)
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .unwrap_or(t.default_ms);
        Some(std::time::Duration::from_millis(ms.max(1)))
    }
}

/// The built-in target with this name.
pub fn find(name: &str) -> Option<&'static TargetInfo> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The built-in target with this name that runs as real node processes.
pub fn find_node(name: &str) -> Option<&'static TargetInfo> {
    find(name).filter(|t| t.run_node.is_some())
}

/// The built-in target with this name that the simulator can run, and its entry.
pub fn find_sim(name: &str) -> Option<(&'static TargetInfo, RunFn)> {
    find(name).and_then(|t| Some((t, t.sim?)))
}

/// The names of the targets that run as real nodes, comma-separated, for errors.
pub fn names() -> String {
    join(
        TARGETS
            .iter()
            .filter(|t| t.run_node.is_some())
            .map(|t| t.name),
    )
}

/// The names of the targets the simulator can run, comma-separated.
pub fn sim_names() -> String {
    join(TARGETS.iter().filter(|t| t.sim.is_some()).map(|t| t.name))
}

/// One help line per target (`name: about`), for a flag's long help.
pub fn help(lead: &str, simulated_only: bool) -> String {
    let mut s = lead.to_string();
    for t in TARGETS.iter().filter(|t| {
        if simulated_only {
            t.sim.is_some()
        } else {
            t.run_node.is_some()
        }
    }) {
        s += &format!("\n  {}: {}", t.name, t.about);
    }
    s
}

fn join<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sunder_sim::{FaultKind, Schedule, SimConfig, SimError};

    #[test]
    fn the_default_op_timeout_is_the_election_timeout_where_there_is_one() {
        let opts = |kv: &[(&str, &str)]| -> Vec<(String, String)> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let ms = std::time::Duration::from_millis;
        let raft = find("raft").unwrap();
        assert_eq!(raft.op_timeout(&[]), ms(300));
        assert_eq!(raft.op_timeout(&opts(&[("election_ms", "800")])), ms(800));
        assert_eq!(
            raft.op_timeout(&opts(&[("heartbeat_ms", "20"), ("election_ms", "150")])),
            ms(150)
        );
        assert_eq!(find("paxos").unwrap().op_timeout(&[]), ms(500));
        for t in ["lww", "primary", "pbft"] {
            assert_eq!(find(t).unwrap().op_timeout(&[]), DEFAULT_OP_TIMEOUT, "{t}");
        }
    }

    #[test]
    fn the_leader_timeout_is_the_election_or_view_change_timeout_as_set() {
        let ms = |v| Some(std::time::Duration::from_millis(v));
        let set = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert_eq!(find("raft").unwrap().leader_timeout(&[]), ms(300));
        assert_eq!(find("paxos").unwrap().leader_timeout(&[]), ms(500));
        let pbft = find("pbft").unwrap();
        assert_eq!(pbft.leader_timeout(&[]), ms(300));
        assert_eq!(pbft.leader_timeout(&set("view_change_ms", "700")), ms(700));
        assert_eq!(pbft.leader_timeout(&set("election_ms", "700")), ms(300));
        for t in ["lww", "primary"] {
            assert_eq!(find(t).unwrap().leader_timeout(&[]), None, "{t}");
        }
    }

    #[test]
    fn names_are_unique_and_found() {
        for (i, t) in TARGETS.iter().enumerate() {
            assert!(
                TARGETS[..i].iter().all(|u| u.name != t.name),
                "{} twice",
                t.name
            );
            assert!(std::ptr::eq(find(t.name).unwrap(), t));
        }
        assert!(find("etcd").is_none());
        assert!(find_node("pbft").is_some() && find_sim("pbft").is_some());
        assert!(find_sim("etcd").is_none());
    }

    /// Each entry's simulator runs the core its bug list belongs to: every bug the entry
    /// names is accepted by its simulator, and a bug no target has is refused. A row wired
    /// to another core's functions fails here.
    #[test]
    fn each_entry_simulates_the_core_it_names() {
        for t in TARGETS {
            let sim = t.sim.expect("every built-in target is simulated");
            let mut c = SimConfig::new(t.name, 1);
            c.nodes = 3;
            c.time_ms = 300;
            c.faults = vec![FaultKind::Kill];
            for bug in (t.bugs)() {
                c.bugs = vec![bug.to_string()];
                let r = sim(&c, Schedule::generate(&c));
                // The disk bugs live in the node runtime: the simulator refuses them by
                // name (it has no disk), not as unknown.
                if sunder_node::protocol::DISK_BUGS.contains(bug) {
                    assert!(
                        matches!(&r, Err(SimError::Invalid(m)) if m.contains("disk")),
                        "{}: {bug}: {:?}",
                        t.name,
                        r.err()
                    );
                } else if let Err(e) = r {
                    panic!("{}: bug {bug} refused by its own simulator: {e}", t.name);
                }
            }
            c.bugs = vec!["no-such-bug".into()];
            assert!(
                matches!(
                    sim(&c, Schedule::generate(&c)),
                    Err(SimError::UnknownBug { .. })
                ),
                "{}",
                t.name
            );
        }
    }

    #[test]
    fn help_lists_every_target_with_its_line() {
        let nodes = help("The target:", false);
        let sims = help("The target:", true);
        for t in TARGETS {
            let line = format!("{}: {}", t.name, t.about);
            assert_eq!(nodes.contains(&line), t.run_node.is_some(), "{nodes}");
            assert!(sims.contains(&line), "{sims}");
        }
        let real = TARGETS.iter().filter(|t| t.run_node.is_some()).count();
        assert_eq!(names().split(", ").count(), real);
    }
}
