//! `--net netns` end to end: a valid run with partitions, the root namespace untouched
//! (after a normal and an interrupted run), nothing left after 20 runs interrupted at
//! random moments, and `sunder clean` after a controller killed with SIGKILL.
//!
//! Needs root, `ip` and `nft` (CI runs as root); elsewhere each test prints why it skips.

mod support;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::cell::RefCell;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::interrupt::{Interrupts, interrupt_runs};
use support::{Guard, pids_mentioning, sunder_test, wait_exit};

/// One netns run at a time: they share the machine's two cores, and the snapshots below
/// must not see another test's run mid-way.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn sh(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn usable() -> bool {
    let why = if !sunder_test_support::is_root() {
        Some("not root".to_string())
    } else {
        sh("ip", &["-V"])
            .and_then(|_| sh("nft", &["--version"]))
            .err()
    };
    sunder_test_support::met(why.map(|w| format!("--net netns needs root, `ip` and `nft`: {w}")))
}

/// The root namespace as `ip` and `nft` show it. Namespaces named `sunder-*` are left out
/// of the list (other runs on this machine may own some); [`ours`] checks for a run's own.
fn root_snapshot() -> String {
    let mut s = String::new();
    for args in [&["-d", "link"][..], &["addr"], &["route"], &["-6", "route"]] {
        s += &format!("## ip {args:?}\n{}\n", sh("ip", args).unwrap());
    }
    s += &format!("## nft\n{}\n", sh("nft", &["list", "ruleset"]).unwrap());
    let list = sh("ip", &["netns", "list"]).unwrap();
    let others: Vec<&str> = list.lines().filter(|l| !l.starts_with("sunder-")).collect();
    s += &format!("## netns\n{}\n", others.join("\n"));
    s
}

/// The namespaces a controller with this pid made and that still exist.
fn ours(pid: u32) -> Vec<String> {
    let prefix = format!("sunder-{pid}-");
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// The namespace inodes behind those names, to find processes still inside them later.
fn inodes(names: &[String]) -> Vec<u64> {
    names
        .iter()
        .filter_map(|n| std::fs::metadata(Path::new("/run/netns").join(n)).ok())
        .map(|m| m.ino())
        .collect()
}

/// Live processes whose network namespace is one of `inodes`.
fn pids_in_namespaces(inodes: &[u64]) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(m) = std::fs::metadata(e.path().join("ns/net")) {
            if inodes.contains(&m.ino()) {
                out.push(pid);
            }
        }
    }
    out
}

/// `nft` tables named sunder_* in the root namespace (there must never be any).
fn root_sunder_tables() -> Vec<String> {
    sh("nft", &["list", "tables"])
        .unwrap()
        .lines()
        .filter(|l| l.contains("sunder_"))
        .map(String::from)
        .collect()
}

fn history_lines(results: &Path) -> usize {
    std::fs::read_to_string(results.join("latest/history.jsonl"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Spawns `sunder test --net netns ...` with 3 raft nodes.
fn spawn(results: &Path, time_limit: &str, seed: u64) -> std::process::Child {
    support::sunder()
        .args([
            "test",
            "--net",
            "netns",
            "--target",
            "raft",
            "--nodes",
            "3",
            "--nemesis",
            "partition,kill",
            "--fault-lengths",
            "fixed",
            "--nemesis-interval",
            "1s",
            "--time-limit",
            time_limit,
            "--seed",
            &seed.to_string(),
            "--results",
        ])
        .arg(results)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sunder test")
}

#[test]
fn a_netns_run_is_valid_has_partitions_and_leaves_the_root_namespace_as_it_was() {
    if !usable() {
        return;
    }
    let _s = serial();
    let tmp = tempfile::tempdir().unwrap();
    let _guard = Guard::new(tmp.path());
    let before = root_snapshot();
    let run = sunder_test(
        tmp.path(),
        "valid",
        &[
            "--net",
            "netns",
            "--target",
            "raft",
            "--nodes",
            "3",
            "--nemesis",
            "partition,kill",
            "--fault-lengths",
            "fixed",
            "--nemesis-interval",
            "1s",
            "--time-limit",
            "10s",
            "--seed",
            "1",
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.output);
    // The run names what it made.
    let names: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("valid/latest/netns.json")).unwrap(),
    )
    .unwrap();
    let tag = names["tag"].as_str().unwrap();
    assert_eq!(
        names["namespaces"],
        serde_json::json!([
            format!("sunder-{tag}-n1"),
            format!("sunder-{tag}-n2"),
            format!("sunder-{tag}-n3"),
            format!("sunder-{tag}-hub")
        ])
    );
    assert_eq!(names["addresses"]["n2"], "10.77.0.2");
    assert_eq!(
        run.checker("linearizability"),
        Some("valid"),
        "{}",
        run.output
    );
    let history = std::fs::read_to_string(tmp.path().join("valid/latest/history.jsonl")).unwrap();
    let partitions = history
        .lines()
        .filter(|l| l.contains(r#""process":"nemesis""#) && l.contains(r#""f":"partition""#))
        .filter(|l| !l.contains(r#""error""#))
        .count();
    assert!(
        partitions >= 2,
        "partitions applied: {partitions}\n{history}"
    );
    let config = std::fs::read_to_string(tmp.path().join("valid/latest/config.json")).unwrap();
    assert!(config.contains(r#""net": "netns""#), "{config}");
    assert_eq!(before, root_snapshot(), "the root namespace changed");
    assert!(root_sunder_tables().is_empty());
    assert!(pids_mentioning(tmp.path()).is_empty());
}

#[test]
fn an_interrupted_netns_run_leaves_the_root_namespace_as_it_was() {
    if !usable() {
        return;
    }
    let _s = serial();
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let before = root_snapshot();
    let mut guard = Guard::new(&results);
    let child = spawn(&results, "60s", 2);
    let pid = child.id();
    guard.child = Some(child);
    // Mid-run: clients at work and the nemesis has struck.
    let deadline = Instant::now() + Duration::from_secs(40);
    while history_lines(&results) < 300 {
        assert!(Instant::now() < deadline, "the run never got going");
        std::thread::sleep(Duration::from_millis(100));
    }
    let names = ours(pid);
    assert_eq!(names.len(), 4, "three nodes and the hub: {names:?}");
    let ns_inodes = inodes(&names);
    kill(Pid::from_raw(pid as i32), Signal::SIGINT).unwrap();
    let status = wait_exit(guard.child.as_mut().unwrap(), Duration::from_secs(60));
    assert_eq!(status.code(), Some(130), "{status}");
    assert!(ours(pid).is_empty(), "{:?}", ours(pid));
    assert!(pids_in_namespaces(&ns_inodes).is_empty());
    assert!(pids_mentioning(&results).is_empty());
    assert_eq!(before, root_snapshot(), "the root namespace changed");
}

#[test]
fn twenty_runs_interrupted_at_random_moments_leave_nothing_behind() {
    if !usable() {
        return;
    }
    let _s = serial();
    let tmp = tempfile::tempdir().unwrap();
    let before = root_snapshot();
    let plan = Interrupts {
        runs: 20,
        seed: 2026,
        early_ms: 600,
        late_ms: 3000,
    };
    // The run's namespaces as they appear, to look for processes in them after.
    let ns_inodes: RefCell<Vec<u64>> = RefCell::default();
    // where each interrupt landed: no namespace yet, namespaces being made, nodes starting,
    // workload running
    let phases: [usize; 4] = interrupt_runs(
        tmp.path(),
        &plan,
        |results, i| spawn(results, "4s", i),
        |pid, results| {
            let names = ours(pid);
            let mut seen = ns_inodes.borrow_mut();
            for ino in inodes(&names) {
                if !seen.contains(&ino) {
                    seen.push(ino);
                }
            }
            match (names.len(), history_lines(results)) {
                (0, _) => 0,
                (1..4, _) => 1,
                (_, 0) => 2,
                _ => 3,
            }
        },
        |run| {
            let left = ours(run.pid);
            assert!(left.is_empty(), "{}: {left:?}", run.describe());
            let inside = pids_in_namespaces(&ns_inodes.take());
            assert!(
                inside.is_empty(),
                "run {}: processes in its namespaces: {inside:?}",
                run.index
            );
            let procs = pids_mentioning(run.results);
            assert!(
                procs.is_empty(),
                "run {}: processes left: {procs:?}",
                run.index
            );
        },
    );
    eprintln!(
        "interrupts: {} before any namespace, {} while making them, {} while nodes started, \
         {} mid-run",
        phases[0], phases[1], phases[2], phases[3]
    );
    assert!(root_sunder_tables().is_empty());
    assert_eq!(before, root_snapshot(), "the root namespace changed");
}

#[test]
fn sunder_clean_removes_what_a_killed_controller_left() {
    if !usable() {
        return;
    }
    let _s = serial();
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let mut guard = Guard::new(&results);
    let child = spawn(&results, "60s", 3);
    let pid = child.id();
    guard.child = Some(child);
    let deadline = Instant::now() + Duration::from_secs(40);
    while history_lines(&results) < 50 {
        assert!(Instant::now() < deadline, "the run never got going");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SIGKILL: no chance to clean up.
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    wait_exit(guard.child.as_mut().unwrap(), Duration::from_secs(10));
    let names = ours(pid);
    assert_eq!(
        names.len(),
        4,
        "the killed run left its namespaces: {names:?}"
    );
    let ns_inodes = inodes(&names);
    assert!(
        !pids_in_namespaces(&ns_inodes).is_empty(),
        "its nodes still run inside"
    );

    let clean = |args: &[&str]| {
        let out = support::sunder().arg("clean").args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, listed) = clean(&["--dry-run"]);
    assert_eq!(code, Some(0), "{listed}");
    assert!(names.iter().all(|n| listed.contains(n)), "{listed}");
    assert_eq!(ours(pid).len(), 4, "--dry-run removes nothing");

    let (code, removed) = clean(&[]);
    assert_eq!(code, Some(0), "{removed}");
    assert!(names.iter().all(|n| removed.contains(n)), "{removed}");
    assert!(ours(pid).is_empty());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pids_in_namespaces(&ns_inodes).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(pids_in_namespaces(&ns_inodes).is_empty());
    assert!(pids_mentioning(&results).is_empty());
}

#[test]
fn a_node_that_never_starts_leaves_no_namespace() {
    if !usable() {
        return;
    }
    let _s = serial();
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let mut guard = Guard::new(&results);
    // an unknown planted bug: every node refuses to start
    let child = support::sunder()
        .args([
            "test",
            "--net",
            "netns",
            "--bug",
            "no-such-bug",
            "--results",
        ])
        .arg(&results)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    guard.child = Some(child);
    let out = guard.child.take().unwrap().wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("exited during start-up"), "{err}");
    assert!(ours(pid).is_empty(), "{:?}", ours(pid));
    assert!(pids_mentioning(&results).is_empty());
}

#[test]
fn packet_loss_is_a_fault_of_its_own() {
    if !usable() {
        return;
    }
    let _s = serial();
    let tmp = tempfile::tempdir().unwrap();
    let _guard = Guard::new(tmp.path());
    let run = sunder_test(
        tmp.path(),
        "loss",
        &[
            "--net",
            "netns",
            "--nemesis",
            "loss",
            "--fault-lengths",
            "fixed",
            "--nemesis-interval",
            "1s",
            "--time-limit",
            "6s",
            "--seed",
            "7",
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.output);
    let history = std::fs::read_to_string(tmp.path().join("loss/latest/history.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["process"] == "nemesis")
        .collect();
    let starts: Vec<&serde_json::Value> = events.iter().filter(|e| e["f"] == "loss").collect();
    assert!(!starts.is_empty(), "{history}");
    for e in &starts {
        assert!(e.get("error").is_none(), "{e}");
        let p = e["value"]["percent"].as_u64().unwrap();
        assert!((10..=60).contains(&p), "{e}");
        assert!(!e["value"]["nodes"].as_array().unwrap().is_empty(), "{e}");
    }
    assert!(events.iter().any(|e| e["f"] == "loss-stop"), "{history}");
}

/// Clock faults work with the netns backend too: the preload reaches nodes that entered a
/// namespace, and every clock step is applied (recorded without an error).
#[test]
fn clock_faults_work_inside_namespaces() {
    if !usable() {
        return;
    }
    if sunder_nemesis::clock::find_libfaketime().is_none() {
        sunder_test_support::skip_or_fail("libfaketime is missing (apt-get install faketime)");
        return;
    }
    let _s = serial();
    let tmp = tempfile::tempdir().unwrap();
    let _guard = Guard::new(tmp.path());
    let run = sunder_test(
        tmp.path(),
        "clock",
        &[
            "--net",
            "netns",
            "--target",
            "primary",
            "--nemesis",
            "clock,partition",
            "--fault-lengths",
            "fixed",
            "--nemesis-interval",
            "1s",
            "--time-limit",
            "6s",
            "--seed",
            "5",
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.output);
    let history = std::fs::read_to_string(tmp.path().join("clock/latest/history.jsonl")).unwrap();
    let clock: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| {
            e["process"] == "nemesis" && e["f"].as_str().is_some_and(|f| f.starts_with("clock-"))
        })
        .collect();
    assert!(
        clock.iter().any(|e| e["f"] != "clock-reset"),
        "no clock fault was recorded: {history}"
    );
    for e in &clock {
        assert!(
            e.get("error").is_none(),
            "a clock step was not applied: {e}"
        );
    }
}
