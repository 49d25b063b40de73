//! PBFT under the simulator (4 replicas, f = 1, the default mix of every fault kind, and
//! messages altered in transit while a loss fault is in force): the correct build valid
//! over the CI share of seeds, and each planted bug found at the first seed that shows it,
//! a seed the correct build passes. Seeds are deterministic: a change to the simulator or
//! the core may move them (the sweep in `first_failing_seeds` says where they went).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sunder_checker::Verdict;
use sunder_sim::{SimConfig, run_seed};

fn config(bug: Option<&str>, seed: u64) -> SimConfig {
    let mut c = SimConfig::new("pbft", seed);
    c.nodes = 4;
    c.bugs = bug.map(|b| vec![b.to_string()]).unwrap_or_default();
    c
}

fn run(bug: Option<&str>, seed: u64) -> sunder_sim::Outcome {
    run_seed::<sunder_pbft::Pbft>(&config(bug, seed)).expect("valid config")
}

/// Seeds `from..=to` on two threads; the ones not valid, with reasons. With `first`, stops
/// once a failing seed is found and every lower seed has run.
fn sweep(bug: Option<&str>, from: u64, to: u64, first: bool) -> Vec<(u64, Verdict, String)> {
    let next = AtomicU64::new(from);
    let bad = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    let lowest = bad.lock().unwrap().iter().map(|b: &(u64, _, _)| b.0).min();
                    if seed > to || (first && lowest.is_some_and(|l| seed > l)) {
                        break;
                    }
                    let o = run(bug, seed);
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

/// The bug shows as invalid at `seed`; the correct build is valid there.
fn found_at(bug: &str, seed: u64) {
    let o = run(Some(bug), seed);
    assert_eq!(
        o.verdict,
        Verdict::Invalid,
        "--bug {bug} seed {seed}: {}",
        o.reason()
    );
    eprintln!("--bug {bug} seed {seed}: {}", o.reason());
    let c = run(None, seed);
    assert_eq!(
        c.verdict,
        Verdict::Valid,
        "correct build, seed {seed}: {}",
        c.reason()
    );
}

#[test]
fn quorum_2f_is_found() {
    found_at("quorum-2f", 1);
}

#[test]
fn no_view_change_proof_is_found() {
    found_at("no-view-change-proof", 1);
}

#[test]
fn early_reply_is_found() {
    found_at("early-reply", 1);
}

#[test]
fn skip_sig_check_is_found() {
    // Shows when an altered catch-up certificate or transferred state is believed.
    found_at("skip-sig-check", 5);
}

/// The CI share of the correct build's sweep (PBFT_SIM_SEEDS to change it): each seed
/// costs a few seconds of a debug build, mostly ed25519.
fn ci_seeds() -> u64 {
    std::env::var("PBFT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40)
}

#[test]
fn correct_pbft_passes_ci_share() {
    let bad = sweep(None, 1, ci_seeds(), false);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn the_run_is_deterministic() {
    let a = run(None, 3);
    let b = run(None, 3);
    assert_eq!(a.history_jsonl(), b.history_jsonl());
    assert_eq!(a.dumps, b.dumps);
}

#[test]
#[ignore = "nightly: each bug's first failing seed within 1,000, and 1,000 correct seeds"]
fn first_failing_seeds() {
    for bug in sunder_pbft::bugs::KNOWN {
        let bad = sweep(Some(bug), 1, 1000, true);
        eprintln!("--bug {bug}: first failing {:?}", bad.first());
        assert!(!bad.is_empty(), "--bug {bug}: not found in 1,000 seeds");
    }
    let bad = sweep(None, 1, 1000, false);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
#[ignore = "report numbers: PBFT_FROM..=PBFT_TO seeds, of the correct build or the first failing one of PBFT_BUG"]
fn seed_range() {
    let n = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let (from, to) = (n("PBFT_FROM", 1), n("PBFT_TO", 300));
    let bug = std::env::var("PBFT_BUG").ok();
    let t = std::time::Instant::now();
    let bad = sweep(bug.as_deref(), from, to, bug.is_some());
    eprintln!(
        "{bug:?} seeds {from}..={to} in {:?}: not valid {bad:#?}",
        t.elapsed()
    );
    assert_eq!(bad.is_empty(), bug.is_none());
}
