//! sunder's checker and porcupine-rs on the same parsed histories, in the same run.
//!
//! `cargo bench -p sunder-checker --bench vs_porcupine`. Needs the corpus in
//! `../shared/data/porcupine` (relative to the workspace); skips with a message otherwise.

#[path = "support/porcupine_side.rs"]
mod porcupine_side;

use criterion::{Criterion, criterion_group, criterion_main};
use porcupine_side::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use sunder_checker::format::porcupine::{parse_etcd_log, parse_kv_log};
use sunder_checker::linear::{CheckOptions, check};
use sunder_checker::model::ModelSpec;
use sunder_checker::{History, Verdict};

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/porcupine"
    ));
    dir.is_dir().then(|| dir.to_path_buf())
}

fn etcd(dir: &Path, n: u32) -> History {
    let path = dir.join(format!("etcd/etcd_{n:03}.log"));
    parse_etcd_log(&std::fs::read_to_string(&path).unwrap(), &path).unwrap()
}

fn kv(dir: &Path, name: &str) -> History {
    let path = dir.join(format!("kv/{name}.txt"));
    parse_kv_log(&std::fs::read_to_string(&path).unwrap(), &path).unwrap()
}

fn bench(c: &mut Criterion) {
    let Some(dir) = corpus() else {
        eprintln!("skipping: Porcupine corpus not found");
        return;
    };
    let cas = ModelSpec::CasRegister {
        initial: Value::Null,
    };
    let kvm = ModelSpec::Kv {
        initial: Value::String(String::new()),
    };
    let opts = CheckOptions::default();
    let all: Vec<History> = (0..=102)
        .filter(|&n| n != 95)
        .map(|n| etcd(&dir, n))
        .collect();

    let mut g = c.benchmark_group("etcd all 102");
    g.sample_size(10).measurement_time(Duration::from_secs(4));
    let theirs: Vec<_> = all.iter().map(etcd_ops).collect();
    g.bench_function("sunder", |b| {
        b.iter(|| {
            all.iter()
                .filter(|h| check(h, &cas, &opts).verdict == Verdict::Valid)
                .count()
        })
    });
    g.bench_function("porcupine-rs", |b| {
        b.iter(|| {
            theirs
                .iter()
                .filter(|o| porcupine_rs::check_operations(o))
                .count()
        })
    });
    g.finish();

    for n in [2, 7] {
        let h = etcd(&dir, n);
        let theirs = etcd_ops(&h);
        let mut g = c.benchmark_group(format!("etcd_{n:03}"));
        g.sample_size(10).measurement_time(Duration::from_secs(3));
        g.bench_function("sunder", |b| b.iter(|| check(&h, &cas, &opts).verdict));
        g.bench_function("porcupine-rs", |b| {
            b.iter(|| porcupine_rs::check_operations(&theirs))
        });
        g.finish();
    }

    // Both sides see the whole store as one state, no per-key split.
    let h = kv(&dir, "c10-ok");
    let theirs = kv_ops::<PKvWhole>(&h);
    let whole = ModelSpec::KvWhole {
        initial: Value::String(String::new()),
    };
    let mut g = c.benchmark_group("kv c10-ok one partition");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function("sunder", |b| b.iter(|| check(&h, &whole, &opts).verdict));
    g.bench_function("porcupine-rs", |b| {
        b.iter(|| porcupine_rs::check_operations(&theirs))
    });
    g.finish();

    for name in ["c50-ok", "c50-bad"] {
        let h = kv(&dir, name);
        let theirs = kv_ops::<PKv>(&h);
        let mut g = c.benchmark_group(format!("kv {name} per key"));
        g.sample_size(10).measurement_time(Duration::from_secs(3));
        g.bench_function("sunder", |b| b.iter(|| check(&h, &kvm, &opts).verdict));
        g.bench_function("porcupine-rs", |b| {
            b.iter(|| porcupine_rs::check_operations(&theirs))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
