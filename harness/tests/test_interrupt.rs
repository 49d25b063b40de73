//! Ctrl-C half-way: exit 130, a parseable history, partial results, no process left.

mod support;

use support::{Guard, pids_mentioning};

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn history_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Starts a long run, interrupts it with `sig` half-way and checks what every interrupted
/// run must leave: exit 130, a parseable history, partial results, no process. Returns the
/// results directory (inside the returned tempdir) and the history's events.
fn interrupted_run(
    sig: nix::sys::signal::Signal,
    workload: &str,
) -> (tempfile::TempDir, PathBuf, Vec<Value>) {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let child = Command::new(env!("CARGO_BIN_EXE_sunder"))
        .args([
            "test",
            "--target",
            "primary",
            "--time-limit",
            "60s",
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "1s",
            "--seed",
            "11",
            "--workload",
            workload,
            "--results",
        ])
        .arg(&results)
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

    // Half-way: once clients have done some work and the nemesis has struck at least once.
    let history = results.join("latest/history.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&history).unwrap_or_default();
        if history_lines(&history) > 50 && text.contains("\"nemesis\"") {
            break;
        }
        assert!(Instant::now() < deadline, "the run never got going");
        if let Some(st) = guard.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("sunder ended early: {st}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!pids_mentioning(&results).is_empty(), "nodes are running");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = guard.child.as_mut().unwrap().try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "sunder did not stop after {sig}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = guard.child.take().unwrap().wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status.code(), Some(130), "{text}");

    // Every line of the history parses (the controller stopped cleanly: no torn line).
    let h = std::fs::read_to_string(&history).unwrap();
    let events: Vec<Value> = h
        .lines()
        .map(|l| serde_json::from_str(l).expect("history line parses"))
        .collect();
    assert!(events.len() > 50);
    assert!(events.iter().any(|e| e["process"] == "nemesis"));
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(results.join("latest/results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(r["interrupted"], true);
    assert_eq!(r["exit_code"], 130);

    // Nothing of the run survives: no node, no controller.
    std::thread::sleep(Duration::from_millis(200));
    let left = pids_mentioning(&results);
    assert!(left.is_empty(), "processes left behind: {left:?}");
    (tmp, results, events)
}

#[test]
fn sigint_half_way_exits_130_keeps_the_history_and_leaves_nothing_behind() {
    let (_tmp, results, events) = interrupted_run(nix::sys::signal::Signal::SIGINT, "register");
    // The run did what the dry run of the same seed says: the same schedule, and each
    // worker's first operation is the generator's first.
    let dry = Command::new(env!("CARGO_BIN_EXE_sunder"))
        .args([
            "test",
            "--dry-run",
            "--dry-run-ops",
            "1",
            "--target",
            "primary",
            "--time-limit",
            "60s",
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "1s",
            "--seed",
            "11",
        ])
        .output()
        .unwrap();
    let dry: Value = serde_json::from_slice(&dry.stdout).unwrap();
    let schedule: Value = serde_json::from_str(
        &std::fs::read_to_string(results.join("latest/schedule.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dry["schedule"], schedule);
    for (worker, ops) in dry["ops"].as_array().unwrap().iter().enumerate() {
        let op = &ops[0];
        let first = events
            .iter()
            .find(|e| e["process"] == worker as u64 && e["type"] == "invoke")
            .unwrap_or_else(|| panic!("worker {worker} invoked nothing"));
        assert_eq!(first["f"], op["op"], "worker {worker}");
        assert_eq!(first["key"], op["key"], "worker {worker}");
        let value = match op["op"].as_str().unwrap() {
            "read" => Value::Null,
            "cas" => serde_json::json!([op["from"], op["to"]]),
            _ => op["value"].clone(),
        };
        assert_eq!(first["value"], value, "worker {worker}");
    }
}

#[test]
fn sigterm_does_the_same_for_a_set_run() {
    let (_tmp, _results, events) = interrupted_run(nix::sys::signal::Signal::SIGTERM, "set");
    assert!(events.iter().any(|e| e["f"] == "add"));
}
