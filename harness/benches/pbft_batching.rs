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

use std::path::Path;
use std::process::Command;

fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One run; its answered operations per second and p50 latency (ms).
fn run(bin: &str, results: &Path, batch: &str, secs: u64) -> (f64, f64) {
    let out = Command::new(bin)
        .args([
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
        .arg(results)
        .output()
        .expect("run sunder test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "batch={batch}: sunder test failed\n{stdout}\n{}",
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
