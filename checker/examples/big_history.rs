//! Generates a 1,000,000-operation register history (1,000 keys, 50 processes, some `info`
//! operations; seeded), checks it with the kv model, and prints the time and peak memory.
//!
//! `cargo run --release -p sunder-checker --example big_history [-- OPS [SEED]]`
//!
//! The history is a simulated real execution (each operation takes effect at a random
//! moment between its invocation and completion), so it must come out valid.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::time::Instant;
use sunder_checker::linear::{CheckOptions, check};
use sunder_checker::model::ModelSpec;
use sunder_checker::{Event, EventType, History, Process, Verdict};

const KEYS: usize = 1000;
const PROCESSES: usize = 50;

struct Pending {
    process: u64,
    f: &'static str,
    key: usize,
    input: Value,
    /// The result once it took effect (`Err` = a cas whose compare failed).
    effect: Option<Result<Value, ()>>,
}

fn generate(ops: usize, seed: u64) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut state = vec![Value::Null; KEYS];
    let mut slots: Vec<Option<Pending>> = (0..PROCESSES).map(|_| None).collect();
    let mut ids: Vec<u64> = (0..PROCESSES as u64).collect();
    let mut next_id = PROCESSES as u64;
    let mut events = Vec::with_capacity(2 * ops + PROCESSES);
    let mut invoked = 0;
    let push = |events: &mut Vec<Event>, kind, p: &Pending, value: Value| {
        let index = events.len() as u64;
        events.push(Event {
            index,
            time: index * 1000,
            kind,
            process: Process::Client(p.process),
            f: p.f.to_string(),
            key: Some(format!("k{}", p.key)),
            value,
            error: None,
            node: None,
            committed: None,
        });
    };
    while invoked < ops || slots.iter().any(Option::is_some) {
        let i = rng.random_range(0..PROCESSES);
        match slots[i].take() {
            None if invoked < ops => {
                let key = rng.random_range(0..KEYS);
                let (f, input) = match rng.random_range(0..10) {
                    0..5 => ("read", Value::Null),
                    5..8 => ("write", json!(rng.random_range(0..5))),
                    _ => (
                        "cas",
                        json!([rng.random_range(0..5), rng.random_range(0..5)]),
                    ),
                };
                let p = Pending {
                    process: ids[i],
                    f,
                    key,
                    input,
                    effect: None,
                };
                push(&mut events, EventType::Invoke, &p, p.input.clone());
                slots[i] = Some(p);
                invoked += 1;
            }
            None => {}
            Some(mut p) if p.effect.is_none() => {
                let s = &mut state[p.key];
                p.effect = Some(match p.f {
                    "read" => Ok(s.clone()),
                    "write" => {
                        *s = p.input.clone();
                        Ok(p.input.clone())
                    }
                    _ if *s == p.input[0] => {
                        *s = p.input[1].clone();
                        Ok(p.input.clone())
                    }
                    _ => Err(()),
                });
                slots[i] = Some(p);
            }
            Some(p) => match p.effect.clone().unwrap() {
                // 1% of operations end indeterminate; the process moves on under a new id.
                _ if rng.random_bool(0.01) => {
                    push(&mut events, EventType::Info, &p, p.input.clone());
                    ids[i] = next_id;
                    next_id += 1;
                }
                Ok(v) => push(&mut events, EventType::Ok, &p, v),
                Err(()) => push(&mut events, EventType::Fail, &p, p.input.clone()),
            },
        }
    }
    History::new(events)
}

fn vm_hwm_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ops: usize = args
        .get(1)
        .map_or(1_000_000, |a| a.parse().expect("OPS is a number"));
    let seed: u64 = args
        .get(2)
        .map_or(42, |a| a.parse().expect("SEED is a number"));
    let t = Instant::now();
    let history = generate(ops, seed);
    let infos = history
        .events
        .iter()
        .filter(|e| e.kind == EventType::Info)
        .count();
    println!(
        "generated {ops} ops ({} events, {infos} info, {KEYS} keys, {PROCESSES} processes, seed {seed}) in {:.2?}",
        history.len(),
        t.elapsed()
    );
    let t = Instant::now();
    let model = ModelSpec::Kv {
        initial: Value::Null,
    };
    let report = check(&history, &model, &CheckOptions::default());
    let elapsed = t.elapsed();
    println!("verdict: {} ({})", report.verdict, report.summary);
    println!(
        "checked in {:.2} s; peak RSS (VmHWM) {:.0} MiB",
        elapsed.as_secs_f64(),
        vm_hwm_mib()
    );
    if report.verdict != Verdict::Valid {
        std::process::exit(1);
    }
}
