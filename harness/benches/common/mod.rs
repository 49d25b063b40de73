//! Shared by the benches that time whole `sunder test` runs side by side: settings from the
//! environment, one run's throughput from its `results.json`, and medians.

use std::path::Path;
use std::process::Command;

/// A number from the environment (`SUNDER_BENCH_SECS`, ...), or `default`.
pub fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `cmd` (a `sunder test`, its `--results` set) to the end; its answered operations
/// (ok or fail) per second of the run and its p50 latency (ms), from `results.json`.
pub fn answered_per_sec(mut cmd: Command, what: &str) -> (f64, f64) {
    let out = cmd.output().expect("run sunder test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what}: sunder test failed\n{stdout}\n{}",
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

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
