//! `sunder sim` end to end: exit codes, the failing seed's run directory, and `sunder
//! analyze` reaching the same verdict on it.

mod support;

use assert_cmd::Command;
use serde_json::Value;

fn sunder() -> Command {
    Command::from_std(support::sunder())
}

#[test]
fn a_planted_bug_fails_and_its_run_dir_analyzes_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let out = sunder()
        .args([
            "sim",
            "--target",
            "raft",
            "--bug",
            "early-ack",
            "--seeds",
            "1..2",
            "--jobs",
            "1",
        ])
        .arg("--results")
        .arg(tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("first failing seed: 1"), "{stdout}");
    assert!(stdout.contains("simulated s per wall s"), "{stdout}");
    let run = tmp.path().join("latest");
    for f in [
        "config.json",
        "history.jsonl",
        "schedule.json",
        "results.json",
        "report.html",
        "nodes/n1.dump.json",
        "nodes/n1.events.jsonl",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["verdict"], "invalid");
    let analyzed = sunder().arg("analyze").arg(&run).output().unwrap();
    assert_eq!(
        analyzed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&analyzed.stdout)
    );
    let again: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(again["verdict"], "invalid");
    // The same first anomaly, printed as the run prints it.
    assert_eq!(again["first_anomaly"], results["first_anomaly"]);
    let a = &results["first_anomaly"];
    assert!(a["time_s"].is_number(), "{a}");
    let printed = String::from_utf8_lossy(&analyzed.stdout);
    assert!(printed.contains("first anomaly: "), "{printed}");
    assert_eq!(
        again["checkers"][0]["verdict"],
        results["checkers"][0]["verdict"]
    );
    // analyze reads the simulator's results.json as the controller's type and keeps
    // what only the simulator writes.
    assert!(results["simulation"].is_object(), "{results}");
    assert_eq!(again["simulation"], results["simulation"]);
    assert!(again["analyzed"].is_object(), "{again}");
    let page = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        !page.contains("not a results file"),
        "the report reads it too"
    );
    // The simulated nodes' event streams are the lines a real node writes.
    let events = std::fs::read_to_string(run.join("nodes/n1.events.jsonl")).unwrap();
    for l in events.lines() {
        let e: sunder_wire::EventLine = serde_json::from_str(l).unwrap();
        assert_eq!(e.node, "n1");
        assert!(e.time_ms.is_some(), "{l}");
    }
}

#[test]
fn the_correct_build_passes_and_replay_writes_a_valid_run() {
    let tmp = tempfile::tempdir().unwrap();
    sunder()
        .args(["sim", "--target", "paxos", "--seeds", "1..2", "--jobs", "1"])
        .arg("--results")
        .arg(tmp.path())
        .assert()
        .code(0);
    assert!(
        !tmp.path().join("latest").exists(),
        "no run dir for a passing sweep"
    );
    sunder()
        .args(["sim", "--target", "paxos", "--seed", "2", "--replay"])
        .arg("--results")
        .arg(tmp.path())
        .assert()
        .code(0);
    let history = std::fs::read_to_string(tmp.path().join("latest/history.jsonl")).unwrap();
    assert!(history.lines().count() > 100);
}

#[test]
fn bad_flags_exit_3() {
    for args in [
        vec!["sim", "--target", "etcd", "--seed", "1"],
        vec!["sim", "--target", "raft", "--bug", "nope", "--seed", "1"],
        vec!["sim", "--seeds", "9..3"],
        vec!["sim", "--faults", "partition,meteor", "--seed", "1"],
        vec!["sim", "--seed", "1", "--frobnicate"],
        vec!["sim"],
    ] {
        sunder().args(&args).assert().code(3);
    }
}
