//! Every file of Porcupine's corpus gives the verdict its README states.

use serde_json::Value;
use std::path::PathBuf;
use sunder_checker::Verdict;
use sunder_checker::format::porcupine::{parse_etcd_log, parse_kv_log};
use sunder_checker::linear::{CheckOptions, check};
use sunder_checker::model::ModelSpec;

const LINEARIZABLE_ETCD: [u32; 23] = [
    2, 5, 7, 18, 25, 31, 38, 45, 48, 49, 51, 53, 56, 67, 75, 76, 80, 87, 92, 98, 100, 101, 102,
];

fn corpus() -> Option<PathBuf> {
    sunder_test_support::shared_data_or_skip("porcupine")
}

#[test]
fn etcd_logs_give_the_readme_verdicts() {
    let Some(dir) = corpus() else { return };
    let model = ModelSpec::CasRegister {
        initial: Value::Null,
    };
    let mut checked = 0;
    let mut valid = 0;
    for n in 0..=102u32 {
        let path = dir.join(format!("etcd/etcd_{n:03}.log"));
        let src = std::fs::read_to_string(&path).unwrap();
        let history = parse_etcd_log(&src, &path).unwrap();
        if n == 95 {
            assert!(history.is_empty(), "etcd_095 is empty");
            continue;
        }
        assert!(
            history.len() > 100,
            "{} parsed to {} events",
            path.display(),
            history.len()
        );
        let report = check(&history, &model, &CheckOptions::default());
        let expected = if LINEARIZABLE_ETCD.contains(&n) {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        assert_eq!(
            report.verdict,
            expected,
            "{}: {}",
            path.display(),
            report.summary
        );
        if expected == Verdict::Invalid {
            let p = &report.partitions[0];
            let ce = p
                .counterexample
                .as_ref()
                .expect("an invalid partition has evidence");
            assert!(
                !ce.stuck.is_empty(),
                "{}: no stuck operations",
                path.display()
            );
        }
        checked += 1;
        valid += usize::from(expected == Verdict::Valid);
    }
    assert_eq!((checked, valid), (102, 23));
}

#[test]
fn kv_logs_give_the_readme_verdicts() {
    let Some(dir) = corpus() else { return };
    let model = ModelSpec::Kv {
        initial: Value::String(String::new()),
    };
    for name in [
        "c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad",
    ] {
        let path = dir.join(format!("kv/{name}.txt"));
        let src = std::fs::read_to_string(&path).unwrap();
        let history = parse_kv_log(&src, &path).unwrap();
        let report = check(&history, &model, &CheckOptions::default());
        let expected = if name.ends_with("ok") {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        assert_eq!(report.verdict, expected, "{name}: {}", report.summary);
    }
}

#[path = "../benches/support/porcupine_side.rs"]
mod porcupine_side;

/// The whole store as one state (the library's `kv-whole`, no per-key split) gives the same
/// verdicts, and porcupine-rs agrees on the small files.
#[test]
fn whole_store_model_gives_the_same_verdicts() {
    use porcupine_side::{PKvWhole, kv_ops};
    let Some(dir) = corpus() else { return };
    let model = ModelSpec::KvWhole {
        initial: Value::String(String::new()),
    };
    for name in ["c01-ok", "c01-bad", "c10-ok", "c10-bad"] {
        let path = dir.join(format!("kv/{name}.txt"));
        let history = parse_kv_log(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
        let report = check(&history, &model, &CheckOptions::default());
        assert_eq!(report.partitions_total, 1);
        assert_eq!(report.model, "kv-whole");
        let expected = if name.ends_with("ok") {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        assert_eq!(report.verdict, expected, "{name}: {}", report.summary);
        if name.starts_with("c01") {
            let theirs = porcupine_rs::check_operations(&kv_ops::<PKvWhole>(&history));
            assert_eq!(theirs, expected == Verdict::Valid, "{name}: porcupine-rs");
        }
    }
}
