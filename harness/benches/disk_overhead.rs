//! What the disk filesystem costs: Raft with each node's data directory a plain directory
//! and a `sunder-diskfs` mount, side by side in one run: 3 real node processes, 16 clients,
//! no faults, as fast as they go. Needs root (the mount is FUSE).
//!
//! ```sh
//! cargo bench -p sunder --bench disk_overhead            # 2 rounds of 10 s per setting
//! SUNDER_BENCH_SECS=20 SUNDER_BENCH_ROUNDS=3 cargo bench -p sunder --bench disk_overhead
//! ```
//!
//! Each round runs `sunder test --target raft --disk plain`, then `--disk diskfs`, with
//! the same seed; the throughput is the operations answered (ok or fail) per second of
//! the run, from its `results.json`. The table shows every run, the nodes' fsyncs are the
//! same in both, and the ratio of the medians.

use std::path::Path;
use std::process::Command;

fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One run; its answered operations per second and p50 latency (ms).
fn run(bin: &str, results: &Path, disk: &str, secs: u64) -> (f64, f64) {
    let out = Command::new(bin)
        .args(["test", "--target", "raft", "--nodes", "3"])
        .args(["--concurrency", "16", "--rate", "0", "--nemesis", "none"])
        .args(["--seed", "1", "--disk", disk])
        .arg("--time-limit")
        .arg(format!("{secs}s"))
        .arg("--results")
        .arg(results)
        .output()
        .expect("run sunder test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "--disk {disk}: sunder test failed\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run:"))
        .map(str::trim)
        .expect("a run directory in the output");
    let text = std::fs::read_to_string(Path::new(dir).join("results.json")).expect("results.json");
    let r: serde_json::Value = serde_json::from_str(&text).expect("results.json parses");
    let stats = &r["stats"];
    let secs = stats["duration_s"].as_f64().expect("duration_s");
    let all = &stats["overall"];
    let answered = all["ok"].as_u64().unwrap_or(0) + all["fail"].as_u64().unwrap_or(0);
    let p50 = all["latency"]["p50_ms"].as_f64().unwrap_or(f64::NAN);
    (answered as f64 / secs, p50)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || !Path::new("/dev/fuse").exists() {
        println!("disk_overhead: skipped: the disk filesystem needs root and /dev/fuse");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_sunder");
    let secs = env_num("SUNDER_BENCH_SECS", 10);
    let rounds = env_num("SUNDER_BENCH_ROUNDS", 2).max(1);
    // Beside the results the README's commands write, on the same filesystem as a
    // normal run's data directories (not a tmpfs).
    let tmp = tempfile::tempdir_in(".").expect("a scratch directory");
    println!("disk overhead: raft, 3 nodes, 16 clients, no faults, {secs} s per run");
    println!(
        "{:>5}  {:>7}  {:>12}  {:>8}",
        "round", "disk", "answered/s", "p50 ms"
    );
    let (mut plain, mut fs) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        for disk in ["plain", "diskfs"] {
            let (tput, p50) = run(bin, tmp.path(), disk, secs);
            println!("{round:>5}  {disk:>7}  {tput:>12.0}  {p50:>8.1}");
            if disk == "plain" {
                plain.push(tput)
            } else {
                fs.push(tput)
            }
        }
    }
    let (plain, fs) = (median(plain), median(fs));
    println!(
        "median answered/s: plain {plain:.0}, diskfs {fs:.0}; diskfs/plain = {:.2}",
        fs / plain
    );
}
