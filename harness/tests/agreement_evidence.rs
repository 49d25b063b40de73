//! Agreement on a real Raft cluster that compacts its log often: acknowledged writes whose
//! entries were compacted away are verified by the position the node reported and the
//! snapshots' hash chains, so the verdict is valid on complete evidence, not "unverifiable".

mod support;

use support::{Guard, sunder_test};

#[test]
fn writes_in_a_compacted_prefix_are_verified_on_a_real_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let _guard = Guard::new(tmp.path());
    let run = sunder_test(
        tmp.path(),
        "compacting",
        &[
            "--target",
            "raft",
            "--nodes",
            "3",
            "--opt",
            "snapshot=50",
            "--nemesis",
            "kill",
            "--fault-lengths",
            "fixed",
            "--nemesis-interval",
            "2s",
            "--time-limit",
            "8s",
            "--seed",
            "5",
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(run.checker("agreement"), Some("valid"), "{}", run.output);
    let agreement = run.results["checkers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "agreement")
        .unwrap();
    let d = &agreement["details"];
    assert!(
        d["writes_in_compacted_prefix"].as_u64().unwrap() > 0,
        "snapshots every 50 entries must compact some acknowledged writes: {d:#}"
    );
    assert_eq!(d["writes_unverifiable"], 0, "{d:#}");
    assert_eq!(
        d["unlocated_writes"].as_array().map_or(0, Vec::len),
        0,
        "{d:#}"
    );
    assert_eq!(d["members"].as_array().map_or(0, Vec::len), 3, "{d:#}");
    // The history carries where each acknowledged write was committed.
    let history =
        std::fs::read_to_string(tmp.path().join("compacting/latest/history.jsonl")).unwrap();
    assert!(
        history.contains("\"committed\":{\"index\":"),
        "no committed positions recorded"
    );
}
