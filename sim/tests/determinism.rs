//! Replays: the same seed gives a byte-identical history, and shrinking keeps a failure.

use sunder_checker::Verdict;
use sunder_paxos::Paxos;
use sunder_raft::Raft;
use sunder_sim::shrink::shrink;
use sunder_sim::{FaultKind, Outcome, RunFn, Schedule, SimConfig, SimError, run_with_schedule};

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

#[test]
fn same_seed_gives_a_byte_identical_history() {
    for target in ["raft", "paxos"] {
        let c = SimConfig::new(target, 11);
        let a = run_seed(&c).unwrap();
        let b = run_seed(&c).unwrap();
        assert!(
            a.history.len() > 500,
            "{target}: only {} events",
            a.history.len()
        );
        assert!(!a.schedule.is_empty());
        assert_eq!(
            a.history_jsonl(),
            b.history_jsonl(),
            "{target}: histories differ"
        );
        assert_eq!(a.dumps, b.dumps);
        // and a different seed is a different run
        let other = run_seed(&SimConfig::new(target, 12)).unwrap();
        assert_ne!(a.history_jsonl(), other.history_jsonl());
    }
}

#[test]
fn faults_are_recorded_under_the_nemesis_and_nodes_come_back() {
    let c = SimConfig::new("raft", 5);
    let o = run_seed(&c).unwrap();
    let nemesis: Vec<&str> = o
        .history
        .events
        .iter()
        .filter(|e| !e.is_client())
        .map(|e| e.f.as_str())
        .collect();
    assert!(!o.schedule.is_empty() && nemesis.len() >= 2, "{nemesis:?}");
    // every start is undone by the end (the final heal)
    let starts = nemesis
        .iter()
        .filter(|f| ["partition", "kill", "pause", "clock-strobe", "loss"].contains(f))
        .count();
    let stops = nemesis
        .iter()
        .filter(|f| ["heal", "restart", "resume", "clock-reset", "loss-stop"].contains(f))
        .count();
    assert_eq!(starts, stops, "{nemesis:?}");
    assert_eq!(
        o.dumps.len(),
        5,
        "every node dumps after healing: {:?}",
        o.warnings
    );
    assert_eq!(o.verdict, Verdict::Valid, "{}", o.reason());
}

#[test]
fn no_faults_means_an_empty_schedule_and_a_valid_run() {
    let mut c = SimConfig::new("paxos", 3);
    c.faults = Vec::new();
    c.time_ms = 3000;
    let o = run_seed(&c).unwrap();
    assert!(o.schedule.is_empty());
    assert!(o.history.events.iter().all(|e| e.is_client()));
    assert_eq!(o.verdict, Verdict::Valid, "{}", o.reason());
}

#[test]
fn bad_configs_are_errors() {
    let mut c = SimConfig::new("raft", 1);
    c.bugs = vec!["no-such-bug".into()];
    assert!(
        run_seed(&c)
            .unwrap_err()
            .to_string()
            .contains("unknown bug")
    );
    let mut c = SimConfig::new("raft", 1);
    c.nodes = 0;
    assert!(run_seed(&c).is_err());
    assert!(FaultKind::parse_list("partition,meteor").is_err());
}

#[test]
fn shrinking_keeps_the_failure_with_a_smaller_schedule() {
    // early-ack fails on the first seed with the default faults (tests/sweep.rs).
    let mut c = SimConfig::new("raft", 1);
    c.bugs = vec!["early-ack".into()];
    let full = Schedule::generate(&c);
    let s = shrink(run_fn("raft"), &c, full.clone(), 60)
        .unwrap()
        .expect("seed 1 fails");
    assert_eq!(s.outcome.verdict, Verdict::Invalid);
    assert!(
        s.outcome.schedule.len() < full.len() || s.config.time_ms < c.time_ms,
        "nothing shrunk: {} faults, {} ms",
        full.len(),
        s.config.time_ms
    );
    // the shrunk run is itself a deterministic counterexample
    let again = run_with_schedule::<Raft>(&s.config, s.outcome.schedule.clone()).unwrap();
    assert_eq!(again.verdict, Verdict::Invalid);
    assert_eq!(again.history_jsonl(), s.outcome.history_jsonl());
}
