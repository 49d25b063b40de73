//! ZooKeeper, a third-party system, audited from `targets/specs/zookeeper.toml` alone: 3
//! servers in network namespaces under partitions and kills, once with plain reads
//! (getData, which a follower may answer stale) and once with `reads=sync`. Each run must
//! reach a linearizability verdict, with ZooKeeper really answering (ok writes and reads)
//! and the faults really applied. What the verdicts are is measured and reported in the
//! README, not asserted: a short run may or may not meet a stale read.
//!
//! Needs root, `ip`, `nft` and Debian's `zookeeper` (with Java); CI installs them.
//! Elsewhere each test prints why it skips.

mod support;

use std::path::PathBuf;
use std::sync::Mutex;
use support::sunder_test;

/// One ensemble at a time: three JVMs already fill the machine's two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn usable() -> bool {
    support::netns_system_usable(
        "zookeeper",
        &[
            ("/usr/share/java/zookeeper.jar", "zookeeper"),
            ("/usr/bin/java", "zookeeper"),
        ],
    )
}

fn spec() -> PathBuf {
    support::shipped_spec("zookeeper.toml")
}

/// Lines of the history that are `ok` completions of operation `f`.
fn oks(history: &str, f: &str) -> usize {
    let f = format!(r#""f":"{f}""#);
    history
        .lines()
        .filter(|l| l.contains(r#""type":"ok""#) && l.contains(&f))
        .count()
}

/// One 3-server run with partitions and kills; checks it reached a verdict with
/// ZooKeeper answering and the faults applied, and returns the verdict.
fn run(reads: &str, seed: u64) -> String {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let root = tempfile::tempdir().unwrap();
    let spec = spec();
    let seed = seed.to_string();
    let reads_opt = format!("reads={reads}");
    let r = sunder_test(
        root.path(),
        reads,
        &[
            "--target-spec",
            spec.to_str().unwrap(),
            "--client-opt",
            &reads_opt,
            "--net",
            "netns",
            "--nodes",
            "3",
            "--nemesis",
            "partition,kill",
            "--nemesis-interval",
            "4s",
            "--concurrency",
            "6",
            "--time-limit",
            "20s",
            "--seed",
            &seed,
        ],
    );
    let verdict = r.checker("linearizability").unwrap_or("none").to_string();
    eprintln!(
        "zookeeper reads={reads} seed {seed}: {verdict} (exit {:?})",
        r.code
    );
    assert!(
        matches!(r.code, Some(0) | Some(1)),
        "reads={reads}: exit {:?}\n{}",
        r.code,
        r.output
    );
    assert!(
        verdict == "valid" || verdict == "invalid",
        "reads={reads}: no verdict ({verdict})\n{}",
        r.output
    );
    let history =
        std::fs::read_to_string(root.path().join(format!("{reads}/latest/history.jsonl"))).unwrap();
    // ZooKeeper answered: writes and reads went through, not only failures.
    assert!(
        oks(&history, "write") >= 10,
        "reads={reads}: too few ok writes"
    );
    assert!(
        oks(&history, "read") >= 10,
        "reads={reads}: too few ok reads"
    );
    // The faults happened, not merely scheduled.
    let applied = |f: &str| {
        history
            .lines()
            .filter(|l| l.contains(&format!(r#""f":"{f}""#)) && !l.contains(r#""error""#))
            .count()
    };
    assert!(
        applied("partition") + applied("kill") >= 2,
        "reads={reads}: faults were not applied"
    );
    verdict
}

#[test]
fn zookeeper_with_plain_reads_reaches_a_verdict_under_partitions_and_kills() {
    if !usable() {
        return;
    }
    run("plain", 1);
}

#[test]
fn zookeeper_with_sync_reads_reaches_a_verdict_under_partitions_and_kills() {
    if !usable() {
        return;
    }
    run("sync", 1);
}
