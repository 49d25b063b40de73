//! The generic HTTP adapter end to end: sunder's own fixture store
//! (`targets/specs/fixtures/kvstore.py`, a primary with asynchronously copied followers)
//! driven only through its spec (`targets/specs/kvstore-http.toml`), 3 nodes in network
//! namespaces under partitions.
//!
//! With local reads a follower cut off from the primary keeps serving what it last copied:
//! the checker must find the history not linearizable, on every seed. So that this can
//! fail, the same store with reads sent to the primary (`--reads primary`) must be found
//! valid under the same faults and seeds.
//!
//! The netns tests need root, `ip`, `nft` and `python3` (CI installs them); elsewhere each
//! prints why it skips. The checks of what a spec lacks need nothing.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use support::{Guard, sunder, sunder_test};

/// One cluster at a time: the machine has two cores.
static SERIAL: Mutex<()> = Mutex::new(());

const SEEDS: [u64; 3] = [1, 2, 3];

fn usable() -> bool {
    let why = if !sunder_test_support::is_root() {
        Some("not root (--net netns makes network namespaces)".to_string())
    } else {
        [
            ("ip", "iproute2"),
            ("nft", "nftables"),
            ("python3", "python3"),
        ]
        .iter()
        .find_map(|(p, pkg)| {
            (!sunder_test_support::have_command(p))
                .then(|| format!("`{p}` is missing (apt-get install {pkg})"))
        })
    };
    sunder_test_support::met(why.map(|w| format!("the HTTP fixture store under --net netns: {w}")))
}

fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../targets/specs")
}

/// The shipped spec, with `replacements` made (each must apply: a spec that drifted
/// from this test fails it loudly) and the fixture named by its absolute path, written
/// into `dir`.
fn spec_variant(dir: &Path, name: &str, replacements: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(specs_dir().join("kvstore-http.toml")).unwrap();
    let program = specs_dir().join("fixtures/kvstore.py");
    let mut all = vec![(
        "program = \"fixtures/kvstore.py\"".to_string(),
        format!("program = {:?}", program.to_str().unwrap()),
    )];
    all.extend(
        replacements
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string())),
    );
    for (from, to) in all {
        assert!(text.contains(&from), "the spec no longer has {from:?}");
        text = text.replace(&from, &to);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// One 3-node run under partitions; returns the linearizability verdict and the history.
fn run(root: &Path, spec: &Path, name: &str, seed: u64) -> (String, String) {
    let seed_s = seed.to_string();
    let r = sunder_test(
        root,
        name,
        &[
            "--target-spec",
            spec.to_str().unwrap(),
            "--net",
            "netns",
            "--nodes",
            "3",
            "--nemesis",
            "partition",
            "--fault-lengths",
            "fixed",
            "--nemesis-interval",
            "2s",
            "--concurrency",
            "10",
            "--time-limit",
            "10s",
            "--seed",
            &seed_s,
        ],
    );
    let verdict = r.checker("linearizability").unwrap_or("none").to_string();
    eprintln!("{name}: seed {seed}: {verdict} (exit {:?})", r.code);
    assert!(
        matches!(r.code, Some(0) | Some(1)),
        "{name}: seed {seed}: exit {:?}\n{}",
        r.code,
        r.output
    );
    let history =
        std::fs::read_to_string(root.join(format!("{name}/latest/history.jsonl"))).unwrap();
    // The faults really happened: partitions applied, not merely scheduled.
    let applied = history
        .lines()
        .filter(|l| l.contains(r#""f":"partition""#) && !l.contains(r#""error""#))
        .count();
    assert!(applied >= 2, "{name}: seed {seed}: {applied} partitions");
    (verdict, history)
}

#[test]
fn the_fixture_store_with_local_reads_is_found_not_linearizable_under_partitions() {
    if !usable() {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let root = tempfile::tempdir().unwrap();
    let _guard = Guard::new(root.path());
    let spec = spec_variant(root.path(), "local.toml", &[]);
    for seed in SEEDS {
        let (verdict, _) = run(root.path(), &spec, &format!("local-{seed}"), seed);
        assert_eq!(verdict, "invalid", "local reads, seed {seed}");
    }
}

#[test]
fn the_fixture_store_with_reads_at_the_primary_is_valid_under_the_same_partitions() {
    if !usable() {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let root = tempfile::tempdir().unwrap();
    let _guard = Guard::new(root.path());
    let spec = spec_variant(
        root.path(),
        "primary.toml",
        &[(r#""--reads", "local""#, r#""--reads", "primary""#)],
    );
    for seed in SEEDS {
        let (verdict, history) = run(root.path(), &spec, &format!("primary-{seed}"), seed);
        assert_eq!(verdict, "valid", "reads at the primary, seed {seed}");
        // Cut-off nodes refused what they could not forward: the spec's `fail` rule
        // (503 "no primary") was met and recorded with the store's own answer.
        assert!(
            history.contains("http 503: no primary"),
            "seed {seed}: no refused forward in the history"
        );
    }
}

/// Twins of a spec target (`--byzantine 1 --byzantine-mode twins`, the spec saying
/// `twins = true`): a second store process with n1's identity and address, in a namespace
/// of its own, that n3 reaches instead of n1. With reads at the primary the store is
/// linearizable, but n3 now forwards everything to a primary of its own: two primaries, one
/// history, not linearizable, without faults. The same seed without the twin is valid, so
/// the twin, not the seed, is what breaks it.
#[test]
fn a_twin_of_the_primary_splits_the_store_and_the_same_run_without_it_is_valid() {
    if !usable() {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let root = tempfile::tempdir().unwrap();
    let _guard = Guard::new(root.path());
    let spec = spec_variant(
        root.path(),
        "primary.toml",
        &[(r#""--reads", "local""#, r#""--reads", "primary""#)],
    );
    let run = |name: &str, twins: bool| {
        let mut a = vec![
            "--target-spec",
            spec.to_str().unwrap(),
            "--net",
            "netns",
            "--nodes",
            "3",
            "--nemesis",
            "none",
            "--time-limit",
            "5s",
            // the seed that draws n1, the primary, as the Byzantine node
            "--seed",
            "1",
        ];
        if twins {
            a.extend(["--byzantine", "1", "--byzantine-mode", "twins"]);
        }
        sunder_test(root.path(), name, &a)
    };
    let twin = run("twin", true);
    assert_eq!(
        twin.results["config"]["byzantine_nodes"],
        serde_json::json!(["n1"]),
        "seed 1 no longer twins the primary: pick the seed that does"
    );
    assert_eq!(twin.code, Some(1), "{}", twin.output);
    assert_eq!(twin.checker("linearizability"), Some("invalid"));
    let nodes = root.path().join("twin/latest/nodes");
    let netns: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.path().join("twin/latest/netns.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(netns["twins"], serde_json::json!(["n1"]));
    assert_eq!(netns["twin_side"], serde_json::json!(["n3"]));
    // The twin ran as a primary of its own and took writes (forwarded by n3).
    let twin_log = std::fs::read_to_string(nodes.join("n1-twin/log.jsonl")).unwrap();
    assert!(twin_log.contains("\"put\""), "{twin_log}");
    assert!(
        !twin.output.contains("was not running at the end"),
        "{}",
        twin.output
    );

    let honest = run("honest", false);
    assert_eq!(honest.code, Some(0), "{}", honest.output);
    assert_eq!(honest.checker("linearizability"), Some("valid"));
}

/// Twins are refused where they cannot be had: a spec that does not allow them, a mode
/// other than twins, and the proxy backend (one address, two processes, needs netns).
#[test]
fn twins_of_a_spec_target_are_refused_unless_allowed_and_on_netns() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = spec_variant(dir.path(), "allowed.toml", &[]);
    let refused = spec_variant(dir.path(), "refused.toml", &[("twins = true", "")]);
    let try_run = |spec: &Path, extra: &[&str]| {
        let out = sunder()
            .args(["test", "--target-spec"])
            .arg(spec)
            .args(["--byzantine", "1"])
            .args(extra)
            .arg("--results")
            .arg(dir.path().join("results"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let twins = ["--byzantine-mode", "twins", "--net", "netns"];
    assert!(try_run(&refused, &twins).contains("does not allow twins"));
    assert!(
        try_run(
            &allowed,
            &["--byzantine-mode", "equivocate", "--net", "netns"]
        )
        .contains("known: twins")
    );
    assert!(
        try_run(&allowed, &["--byzantine-mode", "twins", "--net", "proxy"])
            .contains("needs --net netns")
    );
}

/// A spec without set operations cannot run the set workload: said before anything starts.
#[test]
fn a_workload_needing_operations_the_spec_lacks_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec_variant(
        dir.path(),
        "noset.toml",
        &[
            (
                "set_add = { method = \"POST\", path = \"/set/{key:url}\", body = \"{value}\", ok = 204 }\n",
                "",
            ),
            (
                "set_read = { method = \"GET\", path = \"/set/{key:url}\", ok = 200, value = \"body\" }\n",
                "",
            ),
        ],
    );
    let out = sunder()
        .args([
            "test",
            "--workload",
            "set",
            "--nemesis",
            "kill",
            "--target-spec",
        ])
        .arg(&spec)
        .arg("--results")
        .arg(dir.path().join("results"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("needs [client.set_add] and [client.set_read]"),
        "{err}"
    );
}

/// A spec without a cas gets none: the seeded operations of `--dry-run` (the ones the run
/// would send) hold reads and writes only, where the full spec's hold cas too.
#[test]
fn a_spec_without_cas_generates_no_cas() {
    let dir = tempfile::tempdir().unwrap();
    let full = spec_variant(dir.path(), "full.toml", &[]);
    // [client.cas] is the spec's last table: the spec without it is what comes before.
    let text = std::fs::read_to_string(&full).unwrap();
    let (before, _) = text.split_once("[client.cas]").expect("the spec has a cas");
    let nocas = dir.path().join("nocas.toml");
    std::fs::write(&nocas, before).unwrap();
    let ops = |spec: &Path| -> String {
        let out = sunder()
            .args([
                "test",
                "--dry-run",
                "--seed",
                "4",
                "--nemesis",
                "kill",
                "--target-spec",
            ])
            .arg(spec)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(
        ops(&full).contains(r#""op": "cas""#),
        "the full spec has cas"
    );
    let without = ops(&nocas);
    assert!(!without.contains(r#""op": "cas""#), "{without:.2000}");
    assert!(without.contains(r#""op": "write""#));
}
