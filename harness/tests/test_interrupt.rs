//! Ctrl-C half-way: exit 130, a parseable history, partial results, no process left.

mod support;

use support::{Guard, pids_mentioning};

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
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
    let child = support::sunder()
        .args([
            "test",
            "--target",
            "primary",
            "--time-limit",
            "60s",
            "--nemesis",
            "partition,kill,pause",
            "--fault-lengths",
            "fixed",
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
    let dry = support::sunder()
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
            "--fault-lengths",
            "fixed",
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

/// A stored run whose history takes minutes to check: 22 concurrent writes on one key and a
/// read of a value nobody wrote, so every order of the writes must be tried.
fn slow_to_check_run(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let config = serde_json::json!({"config": {
        "name": "slow-check", "workload": "register", "target": "primary", "seed": 1,
    }});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let mut lines = Vec::new();
    let mut event = |process: u64, kind: &str, f: &str, value: Value| {
        let index = lines.len();
        lines.push(
            serde_json::json!({"index": index, "time": index * 1000, "process": process,
                "type": kind, "f": f, "key": "k", "value": value})
            .to_string(),
        );
    };
    for p in 0..22 {
        event(p, "invoke", "write", p.into());
    }
    for p in 0..22 {
        event(p, "ok", "write", p.into());
    }
    event(99, "invoke", "read", Value::Null);
    event(99, "ok", "read", 1000.into());
    std::fs::write(dir.join("history.jsonl"), lines.join("\n") + "\n").unwrap();
}

#[test]
fn ctrl_c_while_checking_stops_the_checkers_and_writes_partial_results() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    slow_to_check_run(&run);
    let child = support::sunder()
        .args(["analyze", "--timeout", "1h"])
        .arg(&run)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut guard = Guard {
        child: Some(child),
        children: Vec::new(),
        marker: run.clone(),
    };
    // Wait for the checkers to start (the line comes once Ctrl-C is handled), reading
    // stderr on a thread that keeps the rest of it for the failure message.
    let stderr = guard.child.as_mut().unwrap().stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("checking the history") {
                let _ = tx.send(());
            }
            all += &line;
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("sunder analyze never started checking");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();

    // Unstopped, this search runs for minutes (the budget is an hour): exiting at all
    // within two minutes means the signal stopped it.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = guard.child.as_mut().unwrap().try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the checkers did not stop on Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = reader.join().unwrap();
    assert_eq!(status.code(), Some(130), "{status}: {stderr}");

    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(r["interrupted"], true);
    assert_eq!(r["exit_code"], 130);
    assert_eq!(r["verdict"], "unknown");
    let lin = r["checkers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "linearizability")
        .expect("a linearizability verdict");
    assert_eq!(lin["verdict"], "unknown");
    assert!(
        lin["reason"].as_str().unwrap().contains("interrupted"),
        "{lin}"
    );
    assert_eq!(lin["details"]["interrupted"], true);
    assert!(
        run.join("report.html").exists(),
        "the report is still written"
    );
}
