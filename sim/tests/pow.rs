//! The proof-of-work chain under the simulator: five mining nodes, the bank workload
//! (transfers answered once `confirmations` blocks deep, balances read from the confirmed
//! state). Under pauses and message loss, kills, and partitions shorter than the
//! confirmation depth (each kind on its own) the bank is conserved, every acknowledged
//! transfer is in the confirmed chains, and no node ever confirms a block another honest
//! node (or itself, earlier) confirmed differently; partitions longer than the depth
//! reverse confirmations, and the agreement checker says so; a Byzantine miner with most
//! of the hash power reverses a confirmed transfer by a double spend, one with little
//! does not; a forger's blocks, each breaking one rule, are caught exactly when the
//! planted bug that lets them in is on; a seed replays exactly.

use sunder_checker::Verdict;
use sunder_sim::{FaultKind, Outcome, SimConfig, SimWorkload, run_seed};

fn pow(seed: u64, faults: &[FaultKind]) -> SimConfig {
    let mut c = SimConfig::new("pow", seed);
    c.workload = SimWorkload::Bank;
    c.keys = 5;
    c.faults = faults.to_vec();
    c
}

/// The simulator's faults last up to 3 s, six blocks at the default 500 ms: eight
/// confirmations outlast any of its partitions.
const DEEPER_THAN_ANY_PARTITION: &str = "8";

fn with_opt(mut c: SimConfig, key: &str, value: &str) -> SimConfig {
    c.opts.insert(key.into(), value.into());
    c
}

fn reversed(o: &Outcome) -> bool {
    let a = checker(o, "agreement");
    a.details["reversed_confirmations"]
        .as_array()
        .is_some_and(|r| !r.is_empty())
}

fn run(c: &SimConfig) -> Outcome {
    run_seed::<sunder_pow::Pow>(c).expect("valid config")
}

fn checker<'a>(o: &'a Outcome, name: &str) -> &'a sunder_sim::CheckResult {
    o.checker(name)
        .unwrap_or_else(|| panic!("no {name} checker in {:?}", o.checkers))
}

#[test]
fn the_chain_conserves_the_bank_and_keeps_confirmed_transfers() {
    use FaultKind::*;
    for faults in [&[Pause, Loss][..], &[Kill], &[Partition]] {
        let (mut acked, mut found) = (0, 0);
        for seed in 1..=30 {
            let mut c = pow(seed, faults);
            if faults == [Partition] {
                c = with_opt(c, "confirmations", DEEPER_THAN_ANY_PARTITION);
            }
            let o = run(&c);
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

/// With one confirmation a partition outlasts the depth: a minority side's confirmed
/// blocks are replaced when it hears the majority's heavier chain, and the agreement
/// checker reports each reversal as what it is; the same seeds with a depth deeper than
/// any partition are valid.
#[test]
fn a_partition_longer_than_the_confirmation_depth_is_reported_with_its_reversals() {
    let mut caught = 0;
    for seed in 1..=10 {
        let shallow = run(&with_opt(
            pow(seed, &[FaultKind::Partition]),
            "confirmations",
            "1",
        ));
        if shallow.verdict == Verdict::Invalid {
            assert!(reversed(&shallow), "seed {seed}: {}", shallow.reason());
            assert!(
                shallow.reason().contains("confirm"),
                "seed {seed}: {}",
                shallow.reason()
            );
            caught += 1;
        }
        let deep = run(&with_opt(
            pow(seed, &[FaultKind::Partition]),
            "confirmations",
            DEEPER_THAN_ANY_PARTITION,
        ));
        assert_eq!(
            deep.verdict,
            Verdict::Valid,
            "seed {seed}: {}",
            deep.reason()
        );
    }
    assert!(caught >= 5, "{caught} of 10 seeds reversed a confirmation");
}

/// A double-spending miner (`--byzantine 1 --byzantine-mode double-spend`) with three
/// times the honest nodes' hash power reverses transfers honest nodes had confirmed and
/// acknowledged; with a twentieth of it, on the same seeds, nothing is reversed.
#[test]
fn a_double_spender_with_most_of_the_hash_power_reverses_confirmations() {
    let attack = |seed, rate: &str| {
        let mut c = pow(seed, &[]);
        c.byzantine = 1;
        c.byzantine_mode = "double-spend".into();
        run(&with_opt(c, "byzantine_hashrate", rate))
    };
    for seed in 1..=5 {
        let strong = attack(seed, "30000");
        assert_eq!(strong.verdict, Verdict::Invalid, "seed {seed}");
        assert!(reversed(&strong), "seed {seed}: {}", strong.reason());
        let weak = attack(seed, "500");
        assert_eq!(
            weak.verdict,
            Verdict::Valid,
            "seed {seed}: {}",
            weak.reason()
        );
    }
}

/// A forger (`--byzantine 1 --byzantine-mode forge-*`, targets/pow/src/forge.rs) publishes
/// blocks breaking one rule each: with the planted bug that lets them in on the honest
/// nodes, every seed is invalid and the checker that owns the rule names it; the same
/// seeds with the correct build are valid. `forge-light` is not here: its time warp
/// spreads timestamps over the past since genesis (stamped 0), and a simulated clock
/// starts at 0, so the light chain can never outgrow the honest one in a simulation (a
/// real node's clock is the machine's monotonic clock, up since boot: the core's tests
/// and the real runs in the README show it).
#[test]
fn each_forgery_is_caught_only_past_the_bug_that_lets_it_in() {
    use FaultKind::*;
    let cases = [
        ("forge-hash", "skip-hash-check", "chain", "no proof of work"),
        (
            "forge-spend",
            "no-double-spend-check",
            "chain",
            "spent twice",
        ),
        (
            "forge-future",
            "accept-future-blocks",
            "chain",
            "from the future",
        ),
    ];
    for (mode, bug, owner, says) in cases {
        for seed in 1..=5 {
            let forged = |bugs: &[&str]| {
                let mut c = pow(seed, &[Pause, Loss]);
                c.byzantine = 1;
                c.byzantine_mode = mode.into();
                c.bugs = bugs.iter().map(|b| b.to_string()).collect();
                run(&c)
            };
            let bad = forged(&[bug]);
            assert_eq!(bad.verdict, Verdict::Invalid, "{mode} {bug} seed {seed}");
            let found = checker(&bad, owner);
            assert_eq!(
                found.verdict,
                Verdict::Invalid,
                "{mode} seed {seed}: {}",
                bad.reason()
            );
            assert!(
                found.reason.contains(says),
                "{mode} seed {seed}: {}",
                found.reason
            );
            let good = forged(&[]);
            assert_eq!(
                good.verdict,
                Verdict::Valid,
                "{mode} seed {seed}, correct build: {}",
                good.reason()
            );
        }
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
