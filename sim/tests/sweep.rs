//! Seed sweeps through `run_seed` with the default configuration (every fault kind): each
//! planted bug is found within the first 1,000 seeds, the correct builds pass their share.
//! The sweeps run seeds on every core; each seed is deterministic, so "the first failing
//! seed" is a fixed number that a change to the simulator or a core may move.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sunder_checker::Verdict;
use sunder_paxos::Paxos;
use sunder_raft::Raft;
use sunder_sim::{Outcome, RunFn, Schedule, SimConfig, SimError, run_with_schedule};

/// The simulator's entry for the core this configuration names (the CLI finds it in the
/// harness's table of targets; these tests simulate raft and paxos only).
fn run_seed(c: &SimConfig) -> Result<Outcome, SimError> {
    run_fn(&c.target)(c, Schedule::generate(c))
}

fn run_fn(target: &str) -> RunFn {
    match target {
        "raft" => run_with_schedule::<Raft>,
        "paxos" => run_with_schedule::<Paxos>,
        other => panic!("these tests simulate raft and paxos, not {other}"),
    }
}

fn config(target: &str, bug: Option<&str>, seed: u64) -> SimConfig {
    let mut c = SimConfig::new(target, seed);
    c.bugs = bug.map(|b| vec![b.to_string()]).unwrap_or_default();
    c
}

fn threads() -> u64 {
    std::thread::available_parallelism().map_or(2, |n| n.get() as u64)
}

/// The lowest seed in `1..=max` whose verdict is invalid, searching in parallel and
/// stopping once every lower seed has been run.
fn first_failing(target: &str, bug: Option<&str>, max: u64) -> Option<(u64, String)> {
    let next = AtomicU64::new(1);
    let found: Mutex<Option<(u64, String)>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads() {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    let best = found.lock().unwrap().as_ref().map(|f| f.0);
                    if seed > max || best.is_some_and(|b| seed > b) {
                        break;
                    }
                    let o = run_seed(&config(target, bug, seed)).expect("valid config");
                    if o.verdict == Verdict::Invalid {
                        let mut f = found.lock().unwrap();
                        if f.as_ref().is_none_or(|(b, _)| seed < *b) {
                            *f = Some((seed, o.reason()));
                        }
                    }
                }
            });
        }
    });
    found.into_inner().unwrap()
}

/// Every seed in `1..=n`; returns the ones not valid, with reasons.
fn sweep(target: &str, n: u64) -> Vec<(u64, Verdict, String)> {
    let next = AtomicU64::new(1);
    let bad = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads() {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed > n {
                        break;
                    }
                    let o = run_seed(&config(target, None, seed)).expect("valid config");
                    if o.verdict != Verdict::Valid {
                        bad.lock().unwrap().push((seed, o.verdict, o.reason()));
                    }
                }
            });
        }
    });
    let mut bad = bad.into_inner().unwrap();
    bad.sort_by_key(|b| b.0);
    bad
}

fn bug_found(target: &str, bug: &str) {
    let t = std::time::Instant::now();
    let found = first_failing(target, Some(bug), 1000);
    eprintln!(
        "{target} {bug}: first failing seed {found:?} in {:?}",
        t.elapsed()
    );
    let (seed, _) =
        found.unwrap_or_else(|| panic!("{target} --bug {bug}: not found in 1,000 seeds"));
    assert!(seed <= 1000);
}

#[test]
fn raft_stale_read_is_found() {
    bug_found("raft", "stale-read");
}

#[test]
fn raft_early_ack_is_found() {
    bug_found("raft", "early-ack");
}

#[test]
fn raft_forget_vote_is_found() {
    bug_found("raft", "forget-vote");
}

#[test]
fn raft_lease_read_is_found() {
    bug_found("raft", "lease-read");
}

#[test]
fn paxos_string_ballots_is_found() {
    bug_found("paxos", "string-ballots");
}

#[test]
fn paxos_ignore_accepted_is_found() {
    bug_found("paxos", "ignore-accepted");
}

#[test]
fn paxos_no_persist_is_found() {
    bug_found("paxos", "no-persist");
}

/// The CI share of the correct builds' sweep (SIM_SEEDS to change it).
fn ci_seeds() -> u64 {
    std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50)
}

#[test]
fn correct_raft_passes_ci_share() {
    let bad = sweep("raft", ci_seeds());
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn correct_paxos_passes_ci_share() {
    let bad = sweep("paxos", ci_seeds());
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
#[ignore = "nightly: 10,000 seeds each (about 25 minutes each on a shared 2-core machine)"]
fn nightly_correct_builds_pass_10000_seeds() {
    for target in ["raft", "paxos"] {
        let t = std::time::Instant::now();
        let bad = sweep(target, 10_000);
        eprintln!("{target}: 10,000 seeds in {:?}", t.elapsed());
        assert!(bad.is_empty(), "{target}: {bad:#?}");
    }
}
