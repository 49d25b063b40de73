//! Peak memory (VmHWM) and time of sunder's checker and of porcupine-rs on corpus files,
//! each run alone in a fresh child process so one cannot inherit the other's heap.
//!
//! `cargo run --release -p sunder-checker --example peak_memory`

#[path = "../benches/support/porcupine_side.rs"]
mod porcupine_side;

use porcupine_side::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use sunder_checker::format::porcupine::{parse_etcd_log, parse_kv_log};
use sunder_checker::linear::{CheckOptions, check};
use sunder_checker::model::ModelSpec;
use sunder_checker::{History, Verdict};

const DATASETS: [&str; 6] = [
    "etcd-all",
    "etcd_002",
    "etcd_007",
    "c10-ok-whole",
    "c50-ok",
    "c50-bad",
];

fn corpus() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/porcupine"
    ))
    .to_path_buf()
}

fn etcd(n: u32) -> History {
    let path = corpus().join(format!("etcd/etcd_{n:03}.log"));
    parse_etcd_log(&std::fs::read_to_string(&path).unwrap(), &path).unwrap()
}

fn kv(name: &str) -> History {
    let path = corpus().join(format!("kv/{name}.txt"));
    parse_kv_log(&std::fs::read_to_string(&path).unwrap(), &path).unwrap()
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Runs one checker on one dataset; prints `valid_count elapsed_ms hwm_kib`.
fn child(checker: &str, dataset: &str) {
    let cas = ModelSpec::CasRegister {
        initial: Value::Null,
    };
    let kvm = ModelSpec::Kv {
        initial: Value::String(String::new()),
    };
    let opts = CheckOptions::default();
    let histories: Vec<History> = match dataset {
        "etcd-all" => (0..=102).filter(|&n| n != 95).map(etcd).collect(),
        "etcd_002" => vec![etcd(2)],
        "etcd_007" => vec![etcd(7)],
        "c10-ok-whole" => vec![kv("c10-ok")],
        d => vec![kv(d)],
    };
    let before = vm_hwm_kib();
    let start = Instant::now();
    let valid = match (checker, dataset) {
        ("sunder", "c10-ok-whole") => {
            let whole = ModelSpec::KvWhole {
                initial: Value::String(String::new()),
            };
            usize::from(check(&histories[0], &whole, &opts).verdict == Verdict::Valid)
        }
        ("sunder", d) if d.starts_with("etcd") => histories
            .iter()
            .filter(|h| check(h, &cas, &opts).verdict == Verdict::Valid)
            .count(),
        ("sunder", _) => usize::from(check(&histories[0], &kvm, &opts).verdict == Verdict::Valid),
        ("porcupine-rs", "c10-ok-whole") => {
            usize::from(porcupine_rs::check_operations(&kv_ops::<PKvWhole>(
                &histories[0],
            )))
        }
        ("porcupine-rs", d) if d.starts_with("etcd") => histories
            .iter()
            .filter(|h| porcupine_rs::check_operations(&etcd_ops(h)))
            .count(),
        ("porcupine-rs", _) => usize::from(porcupine_rs::check_operations(&kv_ops::<PKv>(
            &histories[0],
        ))),
        (c, _) => panic!("unknown checker {c}"),
    };
    let ms = start.elapsed().as_secs_f64() * 1e3;
    println!("{valid} {ms:.1} {} {before}", vm_hwm_kib());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 {
        return child(&args[1], &args[2]);
    }
    if !corpus().is_dir() {
        eprintln!("Porcupine corpus not found at {}", corpus().display());
        std::process::exit(2);
    }
    println!("| dataset | sunder ms | porcupine-rs ms | sunder peak RSS | porcupine-rs peak RSS |");
    println!("|---|---|---|---|---|");
    for d in DATASETS {
        let mut cols = Vec::new();
        for c in ["sunder", "porcupine-rs"] {
            let out = Command::new(&args[0])
                .args([c, d])
                .output()
                .expect("child runs");
            let text = String::from_utf8_lossy(&out.stdout);
            let f: Vec<&str> = text.split_whitespace().collect();
            assert!(
                f.len() == 4,
                "{c} on {d} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            cols.push((
                f[0].to_string(),
                f[1].to_string(),
                f[2].parse::<u64>().unwrap(),
            ));
        }
        assert_eq!(
            cols[0].0, cols[1].0,
            "{d}: the checkers disagree on how many are valid"
        );
        println!(
            "| {d} | {} | {} | {:.1} MiB | {:.1} MiB |",
            cols[0].1,
            cols[1].1,
            cols[0].2 as f64 / 1024.0,
            cols[1].2 as f64 / 1024.0
        );
    }
}
