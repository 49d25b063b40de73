//! The proof-of-work chain under the simulator: five mining nodes, the bank workload
//! (transfers answered once `confirmations` blocks deep, balances read from the confirmed
//! state). Under pauses and message loss, kills, and partitions (each kind on its own) the
//! bank is conserved and every acknowledged transfer is in the confirmed chains, which
//! agree; a seed replays exactly. (Mixed together, or with clock faults, a few seeds in 200
//! reverse a confirmation: the README's pow section.)

use sunder_checker::Verdict;
use sunder_sim::{FaultKind, Outcome, SimConfig, SimWorkload, run_seed};

fn pow(seed: u64, faults: &[FaultKind]) -> SimConfig {
    let mut c = SimConfig::new("pow", seed);
    c.workload = SimWorkload::Bank;
    c.keys = 5;
    c.faults = faults.to_vec();
    c
}

fn run(c: &SimConfig) -> Outcome {
    run_seed::<sunder_pow::Pow>(c).expect("valid config")
}

fn checker<'a>(o: &'a Outcome, name: &str) -> &'a sunder_sim::CheckResult {
    o.checkers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} checker in {:?}", o.checkers))
}

#[test]
fn the_chain_conserves_the_bank_and_keeps_confirmed_transfers() {
    use FaultKind::*;
    for faults in [&[Pause, Loss][..], &[Kill], &[Partition]] {
        let (mut acked, mut found) = (0, 0);
        for seed in 1..=30 {
            let o = run(&pow(seed, faults));
            assert_eq!(
                o.verdict,
                Verdict::Valid,
                "{faults:?} seed {seed}: {}",
                o.reason()
            );
            let b = checker(&o, "bank");
            assert!(
                b.details["reads"].as_u64().unwrap_or(0) > 0,
                "{faults:?} seed {seed}: {}",
                b.reason
            );
            acked += b.details["transfers"]["ok"].as_u64().unwrap_or(0);
            found += checker(&o, "agreement").details["writes_found"]
                .as_u64()
                .unwrap_or(0);
        }
        // Transfers were confirmed, and the agreement checker located every one of them.
        assert!(acked > 100, "{faults:?}: {acked} transfers acknowledged");
        assert_eq!(found, acked, "{faults:?}");
    }
}

#[test]
fn a_pow_seed_replays_exactly() {
    let c = pow(7, &FaultKind::ALL);
    let (a, b) = (run(&c), run(&c));
    assert_eq!(a.verdict, b.verdict);
    assert_eq!(a.history_jsonl(), b.history_jsonl());
    assert_eq!(a.dumps, b.dumps);
    assert!(a.history_jsonl().contains("\"f\":\"transfer\""));
}
