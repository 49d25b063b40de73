//! The planted bugs of the Raft, Paxos and PBFT targets are caught by real `sunder test`
//! runs, and the correct builds pass the very same runs. (PBFT's CI-tier checks are in
//! `pbft_cluster.rs`; its hunts here are nightly only.)
//!
//! Two tiers:
//! - the CI tier (these tests run by default): per bug, 20 s runs on 5 nodes with the fault
//!   mix documented for it, seeds 1 to 6 until one run is found invalid; then the correct
//!   build on that seed must be valid (`lease-read` excepted: caught too late in a run for
//!   this tier). Also a correct-build run of each protocol under partitions, kills and
//!   pauses, and of Raft under the `lease-read` clock mix.
//! - the nightly tier (`cargo test --release -p sunder --test bugs_caught -- --ignored
//!   --nocapture`, about two hours), which runs sunder's own sweeps (`sunder test --seeds
//!   1..N`, one seed at a time): the promises — 10 seeds in a row of the correct
//!   builds valid, and each bug found in at least 4 (Raft, PBFT) or 3 (Paxos) of 5 seeds
//!   within 120 s while the correct build passes the same seeds.
//!
//! `lease-read` needs clock faults (libfaketime): those tests skip, saying why, without it.

mod support;

use sunder_nemesis::clock::find_libfaketime;
use support::{Guard, Run, sunder_test, sweep_json};

/// A planted bug and the fault mix that catches it.
struct Hunt {
    target: &'static str,
    bug: &'static str,
    mix: &'static [&'static str],
    /// The mix has clock faults, which need libfaketime.
    clock: bool,
    /// `--nodes`.
    nodes: &'static str,
}

const RAFT_PARTITIONS: &[&str] = &[
    "--nemesis",
    "partition",
    "--fault-lengths",
    "fixed",
    "--nemesis-interval",
    "2s",
    "--concurrency",
    "20",
    "--op-timeout",
    "300ms",
];
/// A lease is only as good as the leader's clock: the leader must be cut off while its
/// clock is stepped back (clock track faults hit the leader half the time), so that it
/// serves reads past its lease while the majority elects a new leader and writes. Many
/// short-timeout clients keep coming back to the old leader and reading from it.
const RAFT_CLOCK_PARTITIONS: &[&str] = &[
    "--nemesis",
    "clock,partition",
    "--fault-lengths",
    "fixed",
    "--nemesis-interval",
    "2s",
    "--concurrency",
    "20",
    "--op-timeout",
    "300ms",
];
/// A forgotten vote shows at the first restart of a node that voted in its current term:
/// agreement's lost-vote check holds the vote the node announced as durable against the
/// state it read back. The mix also makes the double vote itself likely (the check that
/// caught the bug before the lost-vote check): with a fixed election timeout
/// (`election_jitter_ms` of one 10 ms tick) nodes restarted together time out together and
/// split the vote, and 50 ms kills every 100 ms restart voters while the split term is
/// still open (a 300 ms timeout), so a candidate's retried RequestVote finds the vote
/// forgotten.
const RAFT_KILL_VOTES: &[&str] = &[
    "--nemesis",
    "kill",
    "--fault-lengths",
    "fixed",
    "--nemesis-interval",
    "50ms",
    "--opt",
    "election_jitter_ms=10",
];
const PAXOS_ALL: &[&str] = &[
    "--nemesis",
    "partition,kill,pause",
    "--fault-lengths",
    "fixed",
    "--nemesis-interval",
    "2s",
];
/// A forgetful acceptor loses a chosen value only when a majority of the acceptors that
/// hold it restart before a new leader's phase 1: frequent kills of random minorities and
/// majorities do that within seconds. (With partitions and pauses in the mix and faults
/// aimed at the leader, kills come too seldom for a 20 s run.)
const PAXOS_KILLS: &[&str] = &[
    "--nemesis",
    "kill",
    "--fault-lengths",
    "fixed",
    "--nemesis-interval",
    "1s",
];
/// String ballots show when a deposed leader keeps proposing after a fault shorter than
/// its step-down (two election timeouts): cut off or paused, it comes back still leading
/// and its stale Accepts beat the new leader's promises. 20 clients keep proposals coming
/// at every node. Measured on a 2-core machine, debug build, two runs at a time, seeds 1
/// to 6 of 20 s: partitions alone caught 3 of 8, pauses alone 4 of 6, both 5 of 6.
const PAXOS_SHORT_CUTOFFS: &[&str] = &[
    "--nemesis",
    "partition,pause",
    "--fault-lengths",
    "fixed",
    "--nemesis-interval",
    "900ms",
    "--concurrency",
    "20",
];

/// PBFT's `no-view-change-proof` shows when a view change makes a replica that lags the
/// new primary: it ignores the prepared certificates, so it numbers new requests from what
/// it executed, below what the others executed. A kill every second (aimed at the primary
/// more often than a uniform draw, like every fault on a target that reports its leader)
/// restarts replicas behind and forces view changes; measured 4 of 5 seeds of 120 s on 4 replicas
/// (2026-12-05: first divergence at 14 to 40 s), the correct build valid on the same five,
/// with clients that send to the primary first (the default became `send=all` later).
const PBFT_KILLS: &[&str] = &[
    "--nemesis",
    "kill",
    "--fault-lengths",
    "fixed",
    "--nemesis-interval",
    "1s",
    "--client-opt",
    "send=primary",
];

/// PBFT's `quorum-2f` needs both sides of a partition to reach a quorum of 2f: on 5
/// replicas (f = 1) a 2/3 split does that (on 4 the shapes cut one or join the halves
/// through a bridge). The minority side moves to a new view only when it holds requests, so
/// clients send each to every replica (`send=all`); sent to the primary first, they are
/// answered by its side and never reach the other. Measured 5 of 5 seeds of 120 s
/// (2026-12-05: first divergence at a median of 16.2 s), the correct build valid on the
/// same five.
const PBFT_SPLITS: &[&str] = &[
    "--nemesis",
    "partition",
    "--fault-lengths",
    "fixed",
    "--nemesis-interval",
    "2s",
    "--client-opt",
    "send=all",
];

/// PBFT's `early-reply` (the er-mix of `pbft_cluster.rs`): a 200 ms op timeout makes the
/// client ask the backups while batches are in flight, and two of them answer a read from
/// state that misses an acknowledged write. Clients send to the primary first, as measured.
const PBFT_EARLY_ASKS: &[&str] = &[
    "--nemesis",
    "partition",
    "--fault-lengths",
    "fixed",
    "--nemesis-interval",
    "1s",
    "--concurrency",
    "10",
    "--op-timeout",
    "200ms",
    "--client-opt",
    "send=primary",
];

/// PBFT's `skip-sig-check` with a forging replica under PBFT's default faults (partitions,
/// kills and pauses at a 2 s beat): replicas left behind ask a peer whose status shows
/// more executed, sometimes the forger, whose altered certificates they then believe.
/// Measured 5 of 5 seeds of 120 s on 4 replicas (2026-12-05, first divergence at a median
/// of 7.7 s). The partitions-only mix this replaced (send=primary, a 1 s beat) caught 0
/// of 5 once backups relayed requests later (issue 13's batching).
const PBFT_FORGER: &[&str] = &["--byzantine", "1", "--byzantine-mode", "forge"];

const HUNTS: &[Hunt] = &[
    Hunt {
        target: "raft",
        bug: "early-ack",
        mix: RAFT_PARTITIONS,
        clock: false,
        nodes: "5",
    },
    Hunt {
        target: "raft",
        bug: "stale-read",
        mix: RAFT_PARTITIONS,
        clock: false,
        nodes: "5",
    },
    Hunt {
        target: "paxos",
        bug: "ignore-accepted",
        mix: PAXOS_ALL,
        clock: false,
        nodes: "5",
    },
    Hunt {
        target: "paxos",
        bug: "no-persist",
        mix: PAXOS_KILLS,
        clock: false,
        nodes: "5",
    },
    Hunt {
        target: "paxos",
        bug: "string-ballots",
        mix: PAXOS_SHORT_CUTOFFS,
        clock: false,
        nodes: "5",
    },
    Hunt {
        target: "raft",
        bug: "forget-vote",
        mix: RAFT_KILL_VOTES,
        clock: false,
        nodes: "5",
    },
    Hunt {
        target: "raft",
        bug: "lease-read",
        mix: RAFT_CLOCK_PARTITIONS,
        clock: true,
        nodes: "5",
    },
    Hunt {
        target: "pbft",
        bug: "no-view-change-proof",
        mix: PBFT_KILLS,
        clock: false,
        nodes: "4",
    },
    Hunt {
        target: "pbft",
        bug: "quorum-2f",
        mix: PBFT_SPLITS,
        clock: false,
        nodes: "5",
    },
    Hunt {
        target: "pbft",
        bug: "early-reply",
        mix: PBFT_EARLY_ASKS,
        clock: false,
        nodes: "4",
    },
    Hunt {
        target: "pbft",
        bug: "skip-sig-check",
        mix: PBFT_FORGER,
        clock: false,
        nodes: "4",
    },
];

/// The hunt for `name`, or `None` (having said why) when its faults cannot run here.
fn hunt(name: &str) -> Option<&'static Hunt> {
    let h = HUNTS.iter().find(|h| h.bug == name).expect("a known hunt");
    if h.clock && find_libfaketime().is_none() {
        sunder_test_support::skip_or_fail(&format!(
            "{} {}: clock faults need libfaketime (apt-get install faketime)",
            h.target, h.bug
        ));
        return None;
    }
    Some(h)
}

fn run(root: &std::path::Path, h: &Hunt, bug: bool, seed: u64, limit: &str) -> Run {
    let seed = seed.to_string();
    let mut args = vec![
        "--target",
        h.target,
        "--nodes",
        h.nodes,
        "--time-limit",
        limit,
        "--seed",
        &seed,
    ];
    args.extend_from_slice(h.mix);
    if bug {
        args.extend_from_slice(&["--bug", h.bug]);
    }
    let label = format!("{}-{}-{seed}", h.bug, if bug { "bug" } else { "correct" });
    sunder_test(root, &label, &args)
}

/// CI tier: the bug is found within six short seeds (each mix catches most seeds; six keep
/// a loaded CI machine's unlucky streak from failing the suite), and the correct build
/// passes the seed that found it.
fn caught_quickly(name: &str) {
    let Some(h) = hunt(name) else {
        return;
    };
    let seeds = 6;
    let dir = tempfile::tempdir().unwrap();
    let _guard = Guard::new(dir.path());
    let mut found = None;
    for seed in 1..=seeds {
        let r = run(dir.path(), h, true, seed, "20s");
        assert_ne!(
            r.code,
            Some(3),
            "{} seed {seed}: the harness failed:\n{}",
            h.bug,
            r.output
        );
        if r.code == Some(1) {
            // Detection is measured: the invalid run says when it first went wrong, a
            // time inside the run or its final reads, on the terminal and in results.json.
            let a = &r.results["first_anomaly"];
            assert!(
                a["time_s"].as_f64().is_some_and(|t| t > 0.0 && t < 60.0)
                    || a["checker"] == "agreement",
                "{} seed {seed}: no dated first anomaly: {a}\n{}",
                h.bug,
                r.output
            );
            assert!(r.output.contains("first anomaly: "), "{}", r.output);
            found = Some(seed);
            break;
        }
    }
    let seed = found.unwrap_or_else(|| {
        panic!(
            "{} {}: not caught in {seeds} seeds of 20 s",
            h.target, h.bug
        )
    });
    let r = run(dir.path(), h, false, seed, "20s");
    assert_eq!(
        r.code,
        Some(0),
        "{} correct build, seed {seed}, same faults: not valid:\n{}",
        h.target,
        r.output
    );
}

#[test]
fn raft_early_ack_is_caught() {
    caught_quickly("early-ack");
}

#[test]
fn raft_stale_read_is_caught() {
    caught_quickly("stale-read");
}

/// `lease-read` is first caught 5 to 80 s into its 120 s runs, too late for this tier
/// (its nightly sweep has the promise; outputs.rs the mechanism). Here: the correct build
/// stays valid under the very clock faults, with CLOCK_MONOTONIC faked.
#[test]
fn raft_correct_is_valid_under_the_lease_read_mix() {
    let Some(h) = hunt("lease-read") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let _guard = Guard::new(dir.path());
    // Debian's libfaketime (0.9.10), with FAKETIME_NO_CACHE, re-reads its control file
    // into one static buffer from whichever thread asks the time, so one thread's strtod
    // can parse the buffer while another rewrites it after a clock fault changed the file;
    // glibc then aborts the node ("strtod_l.c: ... Assertion `numsize == 1 && n < d'
    // failed", seen once in CI). Such a run says nothing about Raft (it ends unknown, a
    // node missing): that exact abort, and only it, moves the test to the next seed.
    let mut seed = 1;
    let r = loop {
        let r = run(dir.path(), h, false, seed, "20s");
        if r.code == Some(2) && r.output.contains("____strtod_l_internal") && seed < 3 {
            eprintln!("seed {seed}: a node aborted inside libfaketime's strtod; next seed");
            seed += 1;
            continue;
        }
        break r;
    };
    assert_eq!(r.code, Some(0), "seed {seed} not valid:\n{}", r.output);
}

#[test]
fn raft_forget_vote_is_caught() {
    caught_quickly("forget-vote");
}

#[test]
fn paxos_ignore_accepted_is_caught() {
    caught_quickly("ignore-accepted");
}

#[test]
fn paxos_no_persist_is_caught() {
    caught_quickly("no-persist");
}

#[test]
fn paxos_string_ballots_is_caught() {
    caught_quickly("string-ballots");
}

/// The correct builds under every process and network fault, as one sweep (the same path
/// the nightly tier takes): a seed is valid only when every checker, agreement included,
/// is.
fn correct_under_all_faults(target: &str, seeds: &str, limit: &str) {
    let dir = tempfile::tempdir().unwrap();
    let _guard = Guard::new(dir.path());
    let args = [
        "--target",
        target,
        "--nodes",
        "5",
        "--nemesis",
        "partition,kill,pause",
        "--time-limit",
        limit,
    ];
    let runs = sweep_of(dir.path(), target, &args, seeds);
    let (from, to) = seeds.split_once("..").expect("A..B");
    let expect = to.parse::<usize>().unwrap() - from.parse::<usize>().unwrap() + 1;
    assert_eq!(runs.len(), expect, "{runs:?}");
    assert!(runs.iter().all(|(_, v)| v == "valid"), "{target}: {runs:?}");
}

#[test]
fn raft_correct_is_valid_under_all_faults() {
    correct_under_all_faults("raft", "1..1", "20s");
}

#[test]
fn paxos_correct_is_valid_under_all_faults() {
    correct_under_all_faults("paxos", "1..1", "20s");
}

/// Nightly tier, through the harness's own sweeps (`sunder test --seeds 1..N`, one seed at a
/// time so that runs do not share the cores and slow each other's timers): the seeds of a
/// sweep, each with its verdict, from its `sweep.json`.
fn sweep_of(root: &std::path::Path, label: &str, args: &[&str], seeds: &str) -> Vec<(u64, String)> {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--seeds", seeds, "--parallel", "1"]);
    let r = sunder_test(root, label, &all);
    assert_ne!(
        r.code,
        Some(3),
        "{label}: the sweep failed to run:\n{}",
        r.output
    );
    let (sweep, v) = sweep_json(&root.join(label));
    eprintln!(
        "{label}: {}",
        std::fs::read_to_string(sweep.join("summary.txt")).unwrap_or_default()
    );
    assert_eq!(v["finished"], true, "{label}: sweep not finished");
    v["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| {
            (
                r["seed"].as_u64().expect("seed"),
                r["verdict"].as_str().expect("verdict").to_string(),
            )
        })
        .collect()
}

/// Nightly tier: each bug in at least `need` of 5 seeds of 120 s, the correct build valid
/// on all five.
fn sweep(name: &str, need: usize) {
    let Some(h) = hunt(name) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let _guard = Guard::new(dir.path());
    let mut args = vec![
        "--target",
        h.target,
        "--nodes",
        h.nodes,
        "--time-limit",
        "120s",
    ];
    args.extend_from_slice(h.mix);
    let correct = sweep_of(dir.path(), "correct", &args, "1..5");
    args.extend_from_slice(&["--bug", h.bug]);
    let buggy = sweep_of(dir.path(), "bug", &args, "1..5");
    assert_eq!(correct.len(), 5, "{correct:?}");
    assert!(
        correct.iter().all(|(_, v)| v == "valid"),
        "{} correct build: {correct:?}",
        h.target
    );
    let caught: Vec<u64> = buggy
        .iter()
        .filter(|(_, v)| v == "invalid")
        .map(|(s, _)| *s)
        .collect();
    assert!(
        caught.len() >= need,
        "{} {}: caught in seeds {caught:?}, need {need} of 5",
        h.target,
        h.bug
    );
}

#[test]
#[ignore = "nightly: about 20 minutes"]
fn nightly_raft_early_ack() {
    sweep("early-ack", 4);
}

#[test]
#[ignore = "nightly: about 20 minutes"]
fn nightly_raft_stale_read() {
    sweep("stale-read", 4);
}

#[test]
#[ignore = "nightly: about 25 minutes"]
fn nightly_raft_forget_vote() {
    sweep("forget-vote", 4);
}

#[test]
#[ignore = "nightly: about 25 minutes"]
fn nightly_raft_lease_read() {
    sweep("lease-read", 4);
}

#[test]
#[ignore = "nightly: about 20 minutes"]
fn nightly_pbft_no_view_change_proof() {
    sweep("no-view-change-proof", 4);
}

#[test]
#[ignore = "nightly: about 20 minutes"]
fn nightly_pbft_early_reply() {
    sweep("early-reply", 4);
}

#[test]
#[ignore = "nightly: about 20 minutes"]
fn nightly_pbft_skip_sig_check() {
    sweep("skip-sig-check", 4);
}

#[test]
#[ignore = "nightly: about 20 minutes"]
fn nightly_pbft_quorum_2f() {
    sweep("quorum-2f", 4);
}

#[test]
#[ignore = "nightly: about 20 minutes"]
fn nightly_paxos_ignore_accepted() {
    sweep("ignore-accepted", 3);
}

#[test]
#[ignore = "nightly: about 20 minutes"]
fn nightly_paxos_no_persist() {
    sweep("no-persist", 3);
}

#[test]
#[ignore = "nightly: about 20 minutes"]
fn nightly_paxos_string_ballots() {
    sweep("string-ballots", 3);
}

#[test]
#[ignore = "nightly: about 30 minutes"]
fn nightly_raft_correct_ten_seeds() {
    correct_under_all_faults("raft", "1..10", "90s");
}

#[test]
#[ignore = "nightly: about 30 minutes"]
fn nightly_paxos_correct_ten_seeds() {
    correct_under_all_faults("paxos", "1..10", "90s");
}
