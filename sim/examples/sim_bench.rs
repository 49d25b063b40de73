//! The simulation speed benchmark the README quotes: 5-node Raft, 5 clients, the default
//! faults, 10 simulated seconds per seed.
//!
//! ```text
//! cargo run --release -p sunder-sim --example sim_bench [SEEDS] [THREADS]
//! ```
//!
//! Prints simulated seconds per wall second on one thread (the checkers included), and
//! seeds per minute with THREADS threads (default: available cores).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sunder_raft::Raft;
use sunder_sim::{SimConfig, run_seed};

fn main() {
    let mut args = std::env::args().skip(1);
    let seeds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(20);
    let threads: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));

    // One thread: simulated time over wall time, and over this thread's CPU time (what a
    // dedicated core would give; the wall figure drops when the machine is shared).
    let cpu0 = thread_cpu_s();
    let start = Instant::now();
    let mut sim_ms = 0;
    let mut ops = 0;
    for seed in 1..=seeds {
        let o = run_seed::<Raft>(&SimConfig::new("raft", seed)).expect("valid config");
        sim_ms += o.sim_ms;
        ops += o.history.client_events().count() / 2;
    }
    let wall = start.elapsed().as_secs_f64();
    if let (Some(a), Some(b)) = (cpu0, thread_cpu_s()) {
        println!(
            "1 thread, CPU time: {:.2} s: {:.0}x real time per CPU second",
            b - a,
            sim_ms as f64 / 1000.0 / (b - a).max(0.01)
        );
    }
    println!(
        "1 thread: {seeds} seeds, {:.1} simulated s in {wall:.2} wall s: {:.0}x real time, {:.0} seeds/min, ~{} client ops/seed",
        sim_ms as f64 / 1000.0,
        sim_ms as f64 / 1000.0 / wall,
        seeds as f64 * 60.0 / wall,
        ops / seeds as usize
    );

    // All threads: seeds per minute.
    let next = AtomicU64::new(1);
    let total = seeds * threads as u64;
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed > total {
                        break;
                    }
                    run_seed::<Raft>(&SimConfig::new("raft", seed)).expect("valid config");
                }
            });
        }
    });
    let wall = start.elapsed().as_secs_f64();
    println!(
        "{threads} threads: {total} seeds in {wall:.2} s: {:.0} seeds/min",
        total as f64 * 60.0 / wall
    );
}

/// This thread's user + system CPU seconds, from /proc (Linux; `None` elsewhere). Clock
/// ticks are taken as 100 per second, the Linux default.
fn thread_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
