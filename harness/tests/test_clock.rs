//! Clock faults through libfaketime, on the real binary: a node under the preload reads the
//! offset its control file holds (and follows a rewrite), a `primary` run with
//! `--nemesis clock` is valid and records its clock events, a preload that does not reach
//! the nodes is reported, and a missing library is a harness error (exit 3).
//!
//! The tests that need libfaketime skip, saying why, when it is not installed.

mod support;

use support::Guard;

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use sunder_nemesis::clock::{faketime_env, find_libfaketime};

fn libfaketime(test: &str) -> Option<PathBuf> {
    let lib = find_libfaketime();
    if lib.is_none() {
        sunder_test_support::skip_or_fail(&format!(
            "{test}: libfaketime not found (apt-get install faketime)"
        ));
    }
    lib
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn wait_for_event(path: &Path, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(e) = events(path).into_iter().find(|e| e["event"] == name) {
            return e;
        }
        assert!(Instant::now() < deadline, "no {name} event in {path:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_node_under_the_preload_reads_its_offset_and_follows_rewrites() {
    let Some(lib) = libfaketime("a_node_under_the_preload") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("n1.faketime");
    std::fs::write(&file, "-3600\n").unwrap();
    let ev = dir.path().join("n1.events.jsonl");
    let log = std::fs::File::create(dir.path().join("n1.log")).unwrap();
    let port = |_| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut cmd = support::sunder();
    cmd.args(["node", "primary", "--id", "n1", "--client", &port(0)])
        .args(["--peer-listen", &port(1)])
        .arg("--data")
        .arg(dir.path().join("n1"))
        .arg("--events")
        .arg(&ev)
        .envs(faketime_env(&lib, &file, false))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut guard = Guard {
        child: Some(cmd.spawn().unwrap()),
        children: Vec::new(),
        marker: dir.path().to_path_buf(),
    };
    let pid = guard.child.as_ref().unwrap().id();

    let start = wait_for_event(&ev, "start");
    let skew = start["time_ms"].as_i64().unwrap() - now_ms();
    assert!(
        (-3_630_000..=-3_570_000).contains(&skew),
        "an hour behind: {skew} ms"
    );
    assert!(sunder_nemesis::clock::preloaded(pid).unwrap());

    // A rewrite reaches the running node at its next time call.
    sunder_nemesis::clock::write_offset(&file, 7_200_250).unwrap();
    // SAFETY: a plain signal to our child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let stop = wait_for_event(&ev, "stop");
    let skew = stop["time_ms"].as_i64().unwrap() - now_ms();
    assert!(
        (7_170_000..=7_230_000).contains(&skew),
        "two hours ahead: {skew} ms"
    );
    let _ = guard.child.as_mut().unwrap().wait();
}

/// Runs `sunder test` with these flags in a fresh results directory; returns the exit
/// code, the terminal output, results.json and the history's nemesis events.
fn run_test(extra: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, Value, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let mut cmd = support::sunder();
    cmd.args([
        "test",
        "--target",
        "primary",
        "--time-limit",
        "6s",
        "--seed",
        "11",
    ])
    .args([
        "--fault-lengths",
        "fixed",
        "--nemesis-interval",
        "1s",
        "--results",
    ])
    .arg(&results)
    .args(extra)
    .envs(env.iter().copied())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut guard = Guard {
        child: Some(cmd.spawn().unwrap()),
        children: Vec::new(),
        marker: dir.path().to_path_buf(),
    };
    let child = guard.child.as_mut().unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut text = String::new();
    let _ = out.read_to_string(&mut text);
    text += &t.join().unwrap();
    let code = child.wait().unwrap().code();
    let latest = results.join("latest");
    let r: Value = std::fs::read_to_string(latest.join("results.json"))
        .map(|s| serde_json::from_str(&s).unwrap())
        .unwrap_or(Value::Null);
    let nemesis = events(&latest.join("history.jsonl"))
        .into_iter()
        .filter(|e| e["process"] == "nemesis")
        .collect();
    (code, text, r, nemesis)
}

#[test]
fn primary_with_clock_faults_is_valid_and_records_them() {
    if libfaketime("primary_with_clock_faults").is_none() {
        return;
    }
    let (code, text, r, nem) = run_test(&["--nemesis", "clock"], &[]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(r["warnings"], serde_json::json!([]), "{text}");
    let fs: Vec<&str> = nem.iter().map(|e| e["f"].as_str().unwrap()).collect();
    assert!(
        fs.iter()
            .any(|f| *f == "clock-bump" || *f == "clock-strobe"),
        "{fs:?}"
    );
    assert!(fs.contains(&"clock-reset"), "{fs:?}");
    assert!(
        nem.iter().all(|e| e["error"].is_null()),
        "every clock fault applied: {nem:?}"
    );
    // the value names nodes and offsets
    let first = &nem[0];
    let offsets = if first["f"] == "clock-strobe" {
        &first["value"]["offsets"]
    } else {
        &first["value"]
    };
    assert!(
        offsets.as_object().is_some_and(|m| !m.is_empty()),
        "{first}"
    );
}

#[test]
fn a_preload_that_does_not_reach_the_nodes_is_reported_not_pretended() {
    if libfaketime("a_preload_that_does_not_reach").is_none() {
        return;
    }
    // A real library that is not libfaketime: the preload works, the clock does not move.
    let Some(other) = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file()) else {
        sunder_test_support::skip_or_fail("no libm.so.6 to stand in for a foreign preload");
        return;
    };
    let (code, text, r, nem) = run_test(&["--nemesis", "clock"], &[("SUNDER_LIBFAKETIME", other)]);
    assert_eq!(code, Some(0), "the run itself is fine: {text}");
    assert!(text.contains("clock faults cannot reach n1"), "{text}");
    let w = r["warnings"].to_string();
    assert!(w.contains("libfaketime is not loaded"), "{w}");
    let starts: Vec<&Value> = nem
        .iter()
        .filter(|e| e["f"] == "clock-bump" || e["f"] == "clock-strobe")
        .collect();
    assert!(!starts.is_empty(), "{nem:?}");
    assert!(
        starts
            .iter()
            .all(|e| e["error"].as_str().is_some_and(|s| s.contains("not moved"))),
        "{starts:?}"
    );
}

#[test]
fn a_missing_library_is_a_harness_error_naming_the_package() {
    let (code, text, r, _) = run_test(
        &["--nemesis", "clock,kill"],
        &[("SUNDER_LIBFAKETIME", "/nonexistent/libfaketime.so.1")],
    );
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("apt-get install faketime"), "{text}");
    assert!(
        r["harness_error"]
            .as_str()
            .is_some_and(|e| e.contains("libfaketime")),
        "{r}"
    );
}

/// An idle raft node (its peers are not running) must still tick and start elections
/// under the preload, whether CLOCK_MONOTONIC is faked or not, and with its clock stepped
/// back or slowed: the runtime ticks with relative sleeps, which return under libfaketime
/// (std's timed waits, with their absolute deadlines on the faked clock, would not).
#[test]
fn an_idle_node_under_the_preload_still_ticks() {
    let Some(lib) = libfaketime("an_idle_node_under_the_preload") else {
        return;
    };
    let role = |fake_monotonic: bool, offset: &str| -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("n1.faketime");
        std::fs::write(&file, "+0\n").unwrap();
        let client = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        // a peer address nobody listens on: the node stays alone
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let mut cmd = support::sunder();
        cmd.args([
            "node",
            "raft",
            "--id",
            "n1",
            "--client",
            &client.to_string(),
        ])
        .args(["--peer-listen", "127.0.0.1:0"])
        .args([
            "--peer",
            &format!("n2={dead}"),
            "--peer",
            &format!("n3={dead}"),
        ])
        .arg("--data")
        .arg(dir.path().join("n1"))
        .envs(faketime_env(&lib, &file, fake_monotonic))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let _guard = Guard {
            child: Some(cmd.spawn().unwrap()),
            children: Vec::new(),
            marker: dir.path().to_path_buf(),
        };
        // The clock moves once the node runs (a rate counts from the process start).
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(&file, format!("{offset}\n")).unwrap();
        // Past the election timeout (300-600 ms by default, 3-6 s at a tenth of the rate).
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = String::new();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            use std::io::{BufRead, BufReader, Write};
            let Ok(mut s) = std::net::TcpStream::connect(client) else {
                continue;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.write_all(b"{\"id\":1,\"op\":\"status\"}\n");
            let mut line = String::new();
            if BufReader::new(s).read_line(&mut line).is_err() {
                continue;
            }
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            last = v["value"]["role"].as_str().unwrap_or_default().to_string();
            if last != "follower" && !last.is_empty() {
                return last;
            }
        }
        last
    };
    for (fake_monotonic, offset) in [
        (false, "+0"),
        (true, "+0"),
        (true, "-120"),
        (true, "+0 x0.1"),
    ] {
        assert_ne!(
            role(fake_monotonic, offset),
            "follower",
            "monotonic faked: {fake_monotonic}, clock {offset}: the node never started an election"
        );
    }
}
