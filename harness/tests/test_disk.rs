//! Disk faults end to end (`--nemesis lose-unsynced,torn-write,corrupt`): the planted
//! `no-fsync` bugs of Raft and Paxos caught by power cuts that the correct builds survive on
//! the same seeds, torn writes survived by the correct build, corruption recorded, every
//! mount gone after
//! a run (the data back in `nodes/<id>/`), after 20 runs interrupted at random moments, and
//! after `sunder clean` once a controller was killed with SIGKILL.
//!
//! Needs root and /dev/fuse (CI runs as root); elsewhere each test prints why it skips.

mod support;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::interrupt::{Interrupts, interrupt_runs};
use support::{Guard, sunder_test};

/// One disk run at a time: they share the machine's two cores, and a test that counts
/// mounts must not see another test's.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn usable() -> bool {
    sunder_test_support::met(sunder_test_support::fuse_missing())
}

/// The disk mounts under `root` (any state: served, or left by a dead controller).
fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let root = std::fs::canonicalize(root).unwrap_or(root.to_path_buf());
    sunder_diskfs::leftover_mounts()
        .into_iter()
        .filter(|m| m.starts_with(&root))
        .collect()
}

fn history(run_dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(run_dir.join("history.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The disk faults a run's history records as started, with the nodes each hit.
fn disk_faults(events: &[Value], f: &str) -> Vec<Vec<String>> {
    events
        .iter()
        .filter(|e| e["process"] == "nemesis" && e["f"] == f && e["error"].is_null())
        .map(|e| {
            e["value"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// What every finished disk run leaves: no mount, each node's data back in `nodes/<id>/`,
/// and what each fault dropped in the nodes' logs.
fn check_left_clean(root: &Path, run_dir: &Path, nodes: usize) {
    assert_eq!(mounts_under(root), Vec::<PathBuf>::new(), "mounts left");
    for i in 1..=nodes {
        let data = run_dir.join(format!("nodes/n{i}"));
        assert!(
            data.join("wal.log").is_file(),
            "{} has no log",
            data.display()
        );
        assert!(!run_dir.join(format!("nodes/n{i}.disk")).exists());
    }
}

fn log_lines(run_dir: &Path, marker: &str) -> usize {
    (1..=5)
        .filter_map(|i| std::fs::read_to_string(run_dir.join(format!("nodes/n{i}.log"))).ok())
        .map(|t| t.lines().filter(|l| l.contains(marker)).count())
        .sum()
}

/// `no-fsync` (records written, never fsynced) on `target`: invalid under power cuts on
/// this seed, and the correct build valid on the very same schedule, which includes at
/// least one power cut of every node at once.
fn no_fsync_caught_and_correct_build_survives(target: &str, seed: &str) {
    if !usable() {
        return;
    }
    let _s = serial();
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "--target",
        target,
        "--nodes",
        "3",
        "--nemesis",
        "lose-unsynced",
        "--fault-lengths",
        "fixed",
        "--nemesis-interval",
        "700ms",
        "--time-limit",
        "12s",
        "--seed",
        seed,
    ];
    let correct = sunder_test(tmp.path(), "correct", &args);
    assert_eq!(correct.code, Some(0), "{}", correct.output);
    let run_dir = std::fs::canonicalize(tmp.path().join("correct/latest")).unwrap();
    let cuts = disk_faults(&history(&run_dir), "lose-unsynced");
    assert!(
        cuts.iter().any(|n| n.len() == 3),
        "the seed's schedule has no power cut of every node: {cuts:?}"
    );
    assert!(log_lines(&run_dir, "[sunder] lose-unsynced: dropped") >= cuts.len());
    check_left_clean(tmp.path(), &run_dir, 3);

    let mut buggy_args = args.to_vec();
    buggy_args.extend(["--bug", "no-fsync"]);
    let buggy = sunder_test(tmp.path(), "buggy", &buggy_args);
    assert_eq!(buggy.code, Some(1), "{}", buggy.output);
    let buggy_dir = std::fs::canonicalize(tmp.path().join("buggy/latest")).unwrap();
    // Same seed, same schedule (which nodes `leader` means is up to each run).
    let schedule = |d: &Path| std::fs::read_to_string(d.join("schedule.json")).unwrap();
    assert_eq!(schedule(&buggy_dir), schedule(&run_dir));
    let run_dir = buggy_dir;
    check_left_clean(tmp.path(), &run_dir, 3);
}

#[test]
fn raft_no_fsync_is_caught_by_power_cuts_that_the_correct_build_survives() {
    no_fsync_caught_and_correct_build_survives("raft", "3");
}

#[test]
fn paxos_no_fsync_is_caught_by_power_cuts_that_the_correct_build_survives() {
    no_fsync_caught_and_correct_build_survives("paxos", "3");
}

fn disk_run(root: &Path, name: &str, nemesis: &str, seed: &str) -> (support::Run, PathBuf) {
    let run = sunder_test(
        root,
        name,
        &[
            "--target",
            "raft",
            "--nodes",
            "3",
            "--nemesis",
            nemesis,
            "--fault-lengths",
            "fixed",
            "--nemesis-interval",
            "700ms",
            "--time-limit",
            "12s",
            "--seed",
            seed,
        ],
    );
    let dir = std::fs::canonicalize(root.join(format!("{name}/latest"))).unwrap();
    (run, dir)
}

/// Torn writes only cut what was never fsynced (a prefix of the last unsynced write
/// survives): the correct Raft build drops the torn tail of its log at start and is valid.
/// Every fault is in the history and in the nodes' logs.
#[test]
fn raft_survives_torn_writes() {
    if !usable() {
        return;
    }
    let _s = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (run, run_dir) = disk_run(tmp.path(), "torn", "torn-write", "5");
    let torn = disk_faults(&history(&run_dir), "torn-write");
    assert!(torn.len() >= 5, "{torn:?}");
    assert!(log_lines(&run_dir, "[sunder] torn-write: dropped") >= torn.len());
    assert_eq!(run.code, Some(0), "{}", run.output);
    check_left_clean(tmp.path(), &run_dir, 3);
}

/// A disk that lies: each `corrupt` hits one node of three (a minority), recorded in the
/// history and, with the bits flipped or the length cut, in that node's log. What Raft
/// makes of it is reported, not assumed: a log corrupted before its end is refused at
/// start (the node stays down, and says why: a missing dump makes agreement unknown); one
/// cut short loses records that were durable, which the checkers may find (Raft does not
/// claim to survive a lying disk).
#[test]
fn corruption_hits_a_minority_and_is_recorded() {
    if !usable() {
        return;
    }
    let _s = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (run, run_dir) = disk_run(tmp.path(), "corrupt", "corrupt", "5");
    let corrupt = disk_faults(&history(&run_dir), "corrupt");
    assert!(corrupt.len() >= 5, "{corrupt:?}");
    assert!(corrupt.iter().all(|n| n.len() == 1), "{corrupt:?}");
    assert!(log_lines(&run_dir, "[sunder] corrupt: ") >= corrupt.len());
    // Valid, invalid, or unknown (nodes that refused their corrupted logs stay down, and
    // a missing dump makes agreement unknown): a verdict, not an error of sunder's.
    assert!(
        matches!(run.code, Some(0..=2)),
        "the run completed with a verdict: {}",
        run.output
    );
    check_left_clean(tmp.path(), &run_dir, 3);
}

fn spawn(results: &Path, time_limit: &str, seed: u64) -> std::process::Child {
    support::sunder()
        .args([
            "test",
            "--target",
            "raft",
            "--nodes",
            "3",
            "--nemesis",
            "disk",
            "--nemesis-interval",
            "300ms",
            "--time-limit",
            time_limit,
            "--seed",
            &seed.to_string(),
            "--results",
        ])
        .arg(results)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn twenty_runs_interrupted_at_random_moments_leave_no_mount() {
    if !usable() {
        return;
    }
    let _s = serial();
    let tmp = tempfile::tempdir().unwrap();
    let plan = Interrupts {
        runs: 20,
        seed: 2027,
        early_ms: 800,
        late_ms: 3000,
    };
    // where each interrupt landed: before the mounts, with mounts but no history yet, or
    // with the workload (and the disk faults) going
    let phases: [usize; 3] = interrupt_runs(
        tmp.path(),
        &plan,
        |results, i| spawn(results, "5s", i),
        |_, results| {
            let mounted = mounts_under(results).len();
            let started = results.join("latest/history.jsonl").exists();
            match (mounted, started) {
                (0, _) => 0,
                (_, false) => 1,
                _ => 2,
            }
        },
        |run| {
            let left = mounts_under(run.results);
            assert!(left.is_empty(), "{}: {left:?}", run.describe());
        },
    );
    eprintln!(
        "interrupts landed: before mounts {}, mounted {}, running {}",
        phases[0], phases[1], phases[2]
    );
    assert!(phases[2] >= 5, "too few interrupts mid-run: {phases:?}");
}

#[test]
fn sunder_clean_unmounts_what_a_killed_controller_left() {
    if !usable() {
        return;
    }
    let _s = serial();
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("r");
    let mut guard = Guard::new(&results);
    guard.child = Some(spawn(&results, "30s", 7));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !results.join("latest/history.jsonl").exists() {
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let child = guard.child.as_mut().unwrap();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    // The nodes die with their process groups (the guard's job); the mounts stay behind.
    drop(guard);
    let left = mounts_under(&results);
    assert_eq!(left.len(), 3, "{left:?}");
    let out = support::sunder().arg("clean").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for m in &left {
        assert!(text.contains(&m.display().to_string()), "{text}");
    }
    assert_eq!(mounts_under(&results), Vec::<PathBuf>::new());
}
