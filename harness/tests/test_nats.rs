//! NATS JetStream key-value, a third-party system, audited from `targets/specs/nats.toml`
//! alone: 3 servers in network namespaces under partitions and kills, the adapter creating
//! its bucket once the cluster is up. The run must reach a verdict (valid or invalid: this
//! test checks that sunder can audit NATS, not what NATS does; the README reports that).
//!
//! The netns test needs root, `ip`, `nft` and Debian's `nats-server` (CI installs them);
//! the loopback one only `nats-server`. Elsewhere each prints why it skips (and fails
//! under CI).

mod support;

use std::path::{Path, PathBuf};
use support::sunder_test;

const NATS_SERVER: &str = "/usr/sbin/nats-server";

fn usable() -> bool {
    support::netns_system_usable("NATS", &[(NATS_SERVER, "nats-server")])
}

fn spec() -> PathBuf {
    support::shipped_spec("nats.toml")
}

#[test]
fn nats_kv_under_partitions_and_kills_reaches_a_verdict() {
    if !usable() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let spec = spec();
    let r = sunder_test(
        root.path(),
        "nats",
        &[
            "--target-spec",
            spec.to_str().unwrap(),
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
            "1",
        ],
    );
    let verdict = r.checker("linearizability").unwrap_or("none").to_string();
    eprintln!("nats: seed 1: {verdict} (exit {:?})", r.code);
    assert!(
        matches!(r.code, Some(0) | Some(1)) && matches!(verdict.as_str(), "valid" | "invalid"),
        "no verdict: exit {:?}, linearizability {verdict}\n{}",
        r.code,
        r.output
    );
    let history = std::fs::read_to_string(root.path().join("nats/latest/history.jsonl")).unwrap();
    // The faults really happened: partitions and kills applied, not merely scheduled.
    for f in ["partition", "kill"] {
        let applied = history
            .lines()
            .filter(|l| l.contains(&format!(r#""f":"{f}""#)) && !l.contains(r#""error""#))
            .count();
        assert!(applied >= 1, "{applied} {f} events applied\n{}", r.output);
    }
    // The bucket was created and used: writes were acknowledged and reads saw values.
    let oks = |f: &str| {
        history
            .lines()
            .filter(|l| l.contains(r#""type":"ok""#) && l.contains(&format!(r#""f":"{f}""#)))
            .count()
    };
    assert!(oks("write") >= 10, "{} acknowledged writes", oks("write"));
    let valued_reads = history
        .lines()
        .filter(|l| {
            l.contains(r#""type":"ok""#)
                && l.contains(r#""f":"read""#)
                && !l.contains(r#""value":null"#)
        })
        .count();
    assert!(valued_reads >= 10, "{valued_reads} reads saw a value");
}

/// Without root: NATS on 127.0.0.1 (ports sunder picks), process faults only, as the spec
/// allows for the proxy backend; the client connects directly, without the relay.
#[test]
fn nats_kv_on_loopback_under_kills_and_pauses_reaches_a_verdict() {
    if !Path::new(NATS_SERVER).exists() {
        sunder_test_support::skip_or_fail(&format!(
            "{NATS_SERVER} is missing (apt-get install nats-server)"
        ));
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let spec = spec();
    let r = sunder_test(
        root.path(),
        "loopback",
        &[
            "--target-spec",
            spec.to_str().unwrap(),
            "--nemesis",
            "kill,pause",
            "--nemesis-interval",
            "3s",
            "--concurrency",
            "6",
            "--time-limit",
            "15s",
            "--seed",
            "3",
        ],
    );
    let verdict = r.checker("linearizability").unwrap_or("none").to_string();
    eprintln!("nats on loopback: seed 3: {verdict} (exit {:?})", r.code);
    assert!(
        matches!(r.code, Some(0) | Some(1)) && matches!(verdict.as_str(), "valid" | "invalid"),
        "no verdict: exit {:?}, linearizability {verdict}\n{}",
        r.code,
        r.output
    );
    let history =
        std::fs::read_to_string(root.path().join("loopback/latest/history.jsonl")).unwrap();
    assert!(history.contains(r#""f":"kill""#), "kills were applied");
    let acked = history
        .lines()
        .filter(|l| l.contains(r#""type":"ok""#) && l.contains(r#""f":"write""#))
        .count();
    assert!(acked >= 10, "{acked} acknowledged writes");
}
