//! Sweeps: `sunder test --seeds A..B --parallel P` runs one ordinary run per seed, stores
//! one summary and a JUnit file, exits with the worst verdict, and an interrupt stops
//! every run with nothing left behind.

mod support;

use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::{Guard, pids_mentioning, sweep_json};

#[test]
fn a_sweep_runs_every_seed_and_exits_with_the_worst_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let junit = tmp.path().join("junit.xml");
    let _guard = Guard {
        child: None,
        children: Vec::new(),
        marker: results.clone(),
    };
    // lww serves local reads: some seeds are invalid, and the sweep must say so.
    let out = support::sunder()
        .args([
            "test",
            "--target",
            "lww",
            "--time-limit",
            "3s",
            "--nemesis",
            "partition",
            "--fault-lengths",
            "fixed",
            "--nemesis-interval",
            "500ms",
            "--seeds",
            "1..4",
            "--parallel",
            "2",
            "--json",
            "--results",
        ])
        .arg(&results)
        .arg("--junit")
        .arg(&junit)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let s: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let (dir, stored) = sweep_json(&results);
    assert_eq!(s, stored, "stdout is the stored sweep.json");
    let runs = s["runs"].as_array().unwrap();
    let seeds: Vec<u64> = runs.iter().map(|r| r["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, [1, 2, 3, 4]);
    assert_eq!(s["finished"], true);
    let invalid = runs.iter().filter(|r| r["verdict"] == "invalid").count();
    assert!(invalid > 0, "lww under partitions: {s:#}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(s["exit_code"], 1);
    for r in runs {
        let run_dir = dir.join(r["run_dir"].as_str().expect("each seed has a run dir"));
        let results: Value =
            serde_json::from_str(&std::fs::read_to_string(run_dir.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(results["seed"], r["seed"], "the run used its seed");
        assert_eq!(results["verdict"], r["verdict"]);
        assert!(r["ops"].as_u64().unwrap() > 0);
        assert!(run_dir.join("report.html").is_file());
    }
    assert!(
        runs.iter().any(|r| r["faults"].as_u64().unwrap() > 0),
        "{s:#}"
    );
    let x = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(x.matches("<testcase").count(), 4);
    assert!(x.contains(&format!("failures=\"{invalid}\"")), "{x}");
    assert!(dir.join("summary.txt").is_file());
}

#[test]
fn a_correct_target_sweeps_valid_and_seeds_follow_test_count() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let _guard = Guard {
        child: None,
        children: Vec::new(),
        marker: results.clone(),
    };
    let out = support::sunder()
        .args([
            "test",
            "--target",
            "primary",
            "--time-limit",
            "2s",
            "--nemesis",
            "none",
            "--seed",
            "40",
            "--test-count",
            "2",
            "--json",
            "--results",
        ])
        .arg(&results)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["seeds"], "40..41");
    assert_eq!(s["counts"]["valid"], 2, "{s:#}");
}

#[test]
fn bad_sweep_flags_exit_3() {
    for args in [
        &["--seeds", "5..1"][..],
        &["--seeds", "1..2", "--seed", "3"],
        &["--test-count", "0"],
        &["--parallel", "2"],
        &["--seeds", "1..2", "--parallel", "0"],
    ] {
        let out = support::sunder()
            .arg("test")
            .args(args)
            .args(["--results", "/nonexistent/never-created"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn an_interrupted_sweep_stops_every_run_and_keeps_what_finished() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let child = support::sunder()
        .args([
            "test",
            "--target",
            "primary",
            "--time-limit",
            "60s",
            "--nemesis",
            "kill,pause",
            "--fault-lengths",
            "fixed",
            "--nemesis-interval",
            "1s",
            "--seeds",
            "1..6",
            "--parallel",
            "2",
            "--results",
        ])
        .arg(&results)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut guard = Guard {
        child: Some(child),
        children: Vec::new(),
        marker: results.clone(),
    };
    // Wait until both runs of the first pair have nodes up and a history growing.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let histories = walk(&results)
            .into_iter()
            .filter(|p| p.ends_with("history.jsonl"))
            .filter(|p| {
                std::fs::metadata(p)
                    .map(|m| m.len() > 2000)
                    .unwrap_or(false)
            })
            .count();
        if histories >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sweep's runs never got going"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = guard.child.take().unwrap().wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, s) = sweep_json(&results);
    assert_eq!(s["interrupted"], true);
    let runs = s["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "the two running seeds, no new ones: {s:#}");
    for r in runs {
        assert_eq!(r["verdict"], "interrupted", "{s:#}");
        assert_eq!(r["exit_code"], 130);
    }
    let left = pids_mentioning(&results);
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
