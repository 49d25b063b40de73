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

mod common;

use common::{answered_per_sec, env_num, median};
use std::path::Path;
use std::process::Command;

/// One run; its answered operations per second and p50 latency (ms).
fn run(bin: &str, results: &Path, disk: &str, secs: u64) -> (f64, f64) {
    let mut cmd = Command::new(bin);
    cmd.args(["test", "--target", "raft", "--nodes", "3"])
        .args(["--concurrency", "16", "--rate", "0", "--nemesis", "none"])
        .args(["--seed", "1", "--disk", disk])
        .arg("--time-limit")
        .arg(format!("{secs}s"))
        .arg("--results")
        .arg(results);
    answered_per_sec(cmd, &format!("--disk {disk}"))
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
