//! Peak memory (VmHWM) and time of sunder's checker and of porcupine-rs on corpus files,
//! each run alone in a fresh child process so one cannot inherit the other's heap.
//!
//! `cargo run --release -p sunder-checker --example peak_memory [RUNS]` (3 runs by default;
//! a range is the lowest and highest seen).

#[path = "../benches/support/porcupine_side.rs"]
mod porcupine_side;

use porcupine_side::*;
use serde_json::Value;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Counts live heap bytes and their peak, to tell the checker's own allocations apart from
/// what the allocator and the runtime add on top (RSS counts both).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new >= l.size() {
                let now = LIVE.fetch_add(new - l.size(), Ordering::Relaxed) + new - l.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

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

/// Runs one checker on one dataset; prints `valid_count elapsed_ms hwm_kib parsed_hwm_kib
/// parsed_heap_kib heap_peak_kib`.
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
    let heap_before = LIVE.load(Ordering::Relaxed);
    PEAK.store(heap_before, Ordering::Relaxed);
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
    println!(
        "{valid} {ms:.1} {} {before} {} {}",
        vm_hwm_kib(),
        heap_before >> 10,
        PEAK.load(Ordering::Relaxed) >> 10
    );
}

/// What one child reports.
struct Run {
    valid: String,
    ms: f64,
    /// Peak RSS of the whole process, and after parsing only (KiB).
    hwm: u64,
    parsed_hwm: u64,
    /// Live heap peak during the check, and live heap after parsing (KiB).
    heap: u64,
    parsed_heap: u64,
}

fn run(exe: &str, checker: &str, dataset: &str) -> Run {
    let out = Command::new(exe)
        .args([checker, dataset])
        .output()
        .expect("child runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.split_whitespace().collect();
    assert!(
        f.len() == 6,
        "{checker} on {dataset} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = |i: usize| f[i].parse::<u64>().unwrap();
    Run {
        valid: f[0].to_string(),
        ms: f[1].parse().unwrap(),
        hwm: n(2),
        parsed_hwm: n(3),
        parsed_heap: n(4),
        heap: n(5),
    }
}

/// `a–b MiB` over runs (or one number when they agree to a tenth).
fn range(runs: &[Run], kib: impl Fn(&Run) -> u64) -> String {
    let lo = runs.iter().map(&kib).min().unwrap_or(0) as f64 / 1024.0;
    let hi = runs.iter().map(&kib).max().unwrap_or(0) as f64 / 1024.0;
    if format!("{lo:.1}") == format!("{hi:.1}") {
        format!("{lo:.1}")
    } else {
        format!("{lo:.1}–{hi:.1}")
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 {
        return child(&args[1], &args[2]);
    }
    let runs: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(3);
    if !corpus().is_dir() {
        eprintln!("Porcupine corpus not found at {}", corpus().display());
        std::process::exit(2);
    }
    println!(
        "{runs} runs each; MiB; RSS = VmHWM of the whole process (the parsed history's \
         alone in brackets), heap = live heap peak"
    );
    println!(
        "| dataset | sunder ms | porcupine-rs ms | sunder RSS | porcupine-rs RSS | \
         sunder heap | porcupine-rs heap |"
    );
    println!("|---|---|---|---|---|---|---|");
    for d in DATASETS {
        // Alternate the checkers, so a busy moment on the machine hits both.
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..runs {
            ours.push(run(&args[0], "sunder", d));
            theirs.push(run(&args[0], "porcupine-rs", d));
        }
        for r in ours.iter().chain(&theirs) {
            assert_eq!(
                r.valid, ours[0].valid,
                "{d}: the checkers disagree on how many are valid"
            );
        }
        let ms = |rs: &[Run]| {
            let mut v: Vec<f64> = rs.iter().map(|r| r.ms).collect();
            v.sort_by(f64::total_cmp);
            format!("{:.1}", v[v.len() / 2])
        };
        println!(
            "| {d} | {} | {} | {} ({}) | {} ({}) | {} ({}) | {} ({}) |",
            ms(&ours),
            ms(&theirs),
            range(&ours, |r| r.hwm),
            range(&ours, |r| r.parsed_hwm),
            range(&theirs, |r| r.hwm),
            range(&theirs, |r| r.parsed_hwm),
            range(&ours, |r| r.heap),
            range(&ours, |r| r.parsed_heap),
            range(&theirs, |r| r.heap),
            range(&theirs, |r| r.parsed_heap),
        );
    }
}
