//! The bank workload under the simulator: transfers and reads of every balance on every
//! built-in target, with every fault kind. The consensus targets conserve the bank on
//! every seed; `lww`, whose transfers are two last-writer-wins writes, breaks it.

use sunder_checker::Verdict;
use sunder_sim::{Outcome, SimConfig, SimWorkload, run_seed};

fn bank(target: &str, seed: u64) -> SimConfig {
    let mut c = SimConfig::new(target, seed);
    c.workload = SimWorkload::Bank;
    c.keys = 5;
    if target == "pbft" {
        c.nodes = 4;
    }
    c
}

fn run(c: &SimConfig) -> Outcome {
    let r = match c.target.as_str() {
        "raft" => run_seed::<sunder_raft::Raft>(c),
        "paxos" => run_seed::<sunder_paxos::Paxos>(c),
        "pbft" => run_seed::<sunder_pbft::Pbft>(c),
        "primary" => run_seed::<sunder_toy::Primary>(c),
        "lww" => run_seed::<sunder_toy::Lww>(c),
        other => panic!("no {other} here"),
    };
    r.expect("valid config")
}

fn checker<'a>(o: &'a Outcome, name: &str) -> &'a sunder_sim::CheckResult {
    o.checker(name)
        .unwrap_or_else(|| panic!("no {name} checker in {:?}", o.checkers))
}

#[test]
fn consensus_targets_conserve_the_bank_under_every_fault() {
    for (target, seeds) in [("raft", 30), ("paxos", 30), ("primary", 30), ("pbft", 4)] {
        for seed in 1..=seeds {
            let o = run(&bank(target, seed));
            assert_eq!(
                o.verdict,
                Verdict::Valid,
                "{target} seed {seed}: {}",
                o.reason()
            );
            let b = checker(&o, "bank");
            assert!(
                b.details["reads"].as_u64().unwrap_or(0) > 0
                    && b.details["transfers"]["ok"].as_u64().unwrap_or(0) > 0,
                "{target} seed {seed}: reads and transfers went through: {}",
                b.reason
            );
        }
    }
}

#[test]
fn lww_makes_and_loses_money() {
    for seed in 1..=5 {
        let o = run(&bank("lww", seed));
        assert_eq!(o.verdict, Verdict::Invalid, "lww seed {seed}");
        assert_eq!(
            checker(&o, "bank").verdict,
            Verdict::Invalid,
            "lww seed {seed}"
        );
    }
}

#[test]
fn a_bank_seed_replays_exactly_and_differs_from_the_register_run() {
    let a = run(&bank("raft", 9));
    let b = run(&bank("raft", 9));
    assert_eq!(a.history_jsonl(), b.history_jsonl());
    assert!(a.history_jsonl().contains("\"f\":\"transfer\""));
    let register = run(&SimConfig::new("raft", 9));
    assert!(!register.history_jsonl().contains("\"f\":\"transfer\""));
}
