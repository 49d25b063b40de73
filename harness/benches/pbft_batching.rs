//! PBFT with batching on and off, side by side in one run: 4 real replica processes,
//! 32 BFT clients (each with one operation in flight, sent to every replica at once),
//! no faults, as fast as they go.
//!
//! ```sh
//! cargo bench -p sunder --bench pbft_batching            # 2 rounds of 10 s per setting
//! SUNDER_BENCH_SECS=20 SUNDER_BENCH_ROUNDS=3 cargo bench -p sunder --bench pbft_batching
//! ```
//!
//! Each round runs `sunder test --target pbft --opt batch=on`, then `batch=off`, with the
//! same seed; the throughput is the operations answered (ok or fail: both went through
//! the ordering protocol) per second of the run, from its `results.json`. The table shows
//! every run and the ratio of the medians.

mod common;

use common::{answered_per_sec, env_num, median};
use std::path::Path;
use std::process::Command;

/// One run; its answered operations per second and p50 latency (ms).
fn run(bin: &str, results: &Path, batch: &str, secs: u64) -> (f64, f64) {
    let mut cmd = Command::new(bin);
    cmd.args([
        "test",
        "--target",
        "pbft",
        "--nodes",
        "4",
        "--concurrency",
        "32",
    ])
    .args(["--rate", "0", "--nemesis", "none", "--seed", "1"])
    .args([
        "--client-opt",
        "send=all",
        "--opt",
        &format!("batch={batch}"),
    ])
    .arg("--time-limit")
    .arg(format!("{secs}s"))
    .arg("--results")
    .arg(results);
    answered_per_sec(cmd, &format!("batch={batch}"))
}

fn main() {
    let bin = env!("CARGO_BIN_EXE_sunder");
    let secs = env_num("SUNDER_BENCH_SECS", 10);
    let rounds = env_num("SUNDER_BENCH_ROUNDS", 2).max(1);
    let tmp = tempfile::tempdir().expect("a scratch directory");
    println!("pbft batching: 4 replicas, 32 clients (send=all), no faults, {secs} s per run");
    println!(
        "{:>5}  {:>5}  {:>12}  {:>8}",
        "round", "batch", "answered/s", "p50 ms"
    );
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        for batch in ["on", "off"] {
            let (tput, p50) = run(bin, tmp.path(), batch, secs);
            println!("{round:>5}  {batch:>5}  {tput:>12.0}  {p50:>8.1}");
            if batch == "on" {
                on.push(tput)
            } else {
                off.push(tput)
            }
        }
    }
    let (on, off) = (median(on), median(off));
    println!(
        "median answered/s: batching on {on:.0}, off {off:.0}; on/off = {:.2}x",
        on / off
    );
}
