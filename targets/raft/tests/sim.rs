//! Deterministic simulation: many seeds, faults on, safety checked throughout, client
//! history checked against the committed log at the end. Planted bugs must be caught by
//! the same checks that the correct build passes.

mod support;

use support::{Faults, Sim, check_history};

const ALL: Faults = Faults {
    drop: 0.02,
    max_delay: 15,
    partitions: true,
    crashes: true,
    pauses: true,
    crash_rate: 1.0,
    max_down: 600,
};

fn run(seed: u64, n: usize, bugs: &[&str], faults: Faults, ms: u64) -> (Sim, Vec<String>) {
    let mut sim = Sim::new(seed, n, bugs, faults, 6);
    sim.run(ms, true);
    sim.heal();
    let mut problems = sim.violations.clone();
    problems.extend(check_history(&sim));
    (sim, problems)
}

#[test]
fn correct_build_is_safe_under_faults() {
    // RAFT_SIM_SEEDS=500 for a long soak; the default keeps the test short.
    let seeds = std::env::var("RAFT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    for seed in 0..seeds {
        let n = if seed % 2 == 0 { 3 } else { 5 };
        let (sim, problems) = run(seed, n, &[], ALL, 20_000);
        assert!(problems.is_empty(), "seed {seed}: {problems:#?}");
        assert!(
            sim.ok_count() > 100,
            "seed {seed}: only {} ops succeeded",
            sim.ok_count()
        );
        assert!(
            sim.committed.len() > 40,
            "seed {seed}: snapshots never exercised"
        );
    }
}

#[test]
fn cluster_converges_after_healing() {
    let (sim, problems) = run(7, 5, &[], ALL, 10_000);
    assert!(problems.is_empty(), "{problems:#?}");
    let commits: Vec<u64> = sim
        .nodes
        .iter()
        .map(|n| n.raft.as_ref().unwrap().commit_index())
        .collect();
    assert!(
        commits.iter().all(|c| *c == commits[0]),
        "commits differ after healing: {commits:?}"
    );
    let states: Vec<_> = sim
        .nodes
        .iter()
        .map(|n| n.raft.as_ref().unwrap().state().to_json())
        .collect();
    assert!(
        states.iter().all(|s| *s == states[0]),
        "states differ: {states:?}"
    );
}

fn caught(bug: &str, faults: Faults, seeds: u64) -> u64 {
    (0..seeds)
        .filter(|&seed| !run(seed, 5, &[bug], faults, 20_000).1.is_empty())
        .count() as u64
}

// The same faults the correct build passes above (`ALL` includes partitions); the bug
// must be caught in most seeds. `lease-read` needs a leader clock that lies (the
// simulation's clocks do not; `sunder test --nemesis clock,partition` catches it, see the
// crate docs) and `forget-vote` two candidates in one term with a voter restarted in
// between and neither winner hearing the other: their unit tests in outputs.rs show the
// mechanism.
#[test]
fn stale_read_is_caught() {
    let f = Faults {
        crashes: false,
        pauses: false,
        ..ALL
    };
    let n = caught("stale-read", f, 8);
    assert!(n >= 4, "caught in {n} of 8 seeds");
}

#[test]
fn early_ack_is_caught() {
    let f = Faults {
        crashes: false,
        pauses: false,
        ..ALL
    };
    let n = caught("early-ack", f, 8);
    assert!(n >= 6, "caught in {n} of 8 seeds");
}

#[test]
#[ignore]
fn debug_bug() {
    let bug = std::env::var("BUG").unwrap();
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    let f = Faults {
        crashes: env("C").is_some(),
        crash_rate: env("C").unwrap_or(1.0),
        max_down: env("DOWN").unwrap_or(600.0) as u64,
        partitions: std::env::var("P").is_ok(),
        pauses: std::env::var("Z").is_ok(),
        ..ALL
    };
    let seeds = env("SEEDS").unwrap_or(6.0) as u64;
    for seed in 0..seeds {
        let (sim, p) = run(seed, 5, &[&bug], f, 20_000);
        eprintln!(
            "seed {seed}: ok {} leaders {} problems {:?}",
            sim.ok_count(),
            sim.leaders.len(),
            p.iter().take(2).collect::<Vec<_>>()
        );
    }
}
