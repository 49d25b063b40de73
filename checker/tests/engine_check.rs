//! The engine on hand-made histories: verdicts, evidence, info/fail semantics, nil reads,
//! partitions, time budget, and a custom nondeterministic model.

use serde_json::{Value, json};
use std::time::Duration;
use sunder_checker::linear::{CheckOptions, OpSummary, check, check_model};
use sunder_checker::model::{Model, ModelSpec};
use sunder_checker::{Event, EventType, History, Process, Verdict};

/// Builds a history from `(process, type, f, value)` rows, with an optional key per row.
fn history(rows: &[(u64, &str, &str, Value)]) -> History {
    keyed(
        &rows
            .iter()
            .map(|(p, t, f, v)| (*p, *t, *f, None, v.clone()))
            .collect::<Vec<_>>(),
    )
}

fn keyed(rows: &[(u64, &str, &str, Option<&str>, Value)]) -> History {
    let events = rows
        .iter()
        .enumerate()
        .map(|(i, (p, t, f, k, v))| Event {
            index: i as u64,
            time: 1000 * i as u64,
            kind: match *t {
                "invoke" => EventType::Invoke,
                "ok" => EventType::Ok,
                "fail" => EventType::Fail,
                "info" => EventType::Info,
                t => panic!("{t}"),
            },
            process: Process::Client(*p),
            f: f.to_string(),
            key: k.map(str::to_string),
            value: v.clone(),
            error: None,
            node: None,
            committed: None,
        })
        .collect();
    History::new(events)
}

fn cas_register() -> ModelSpec {
    ModelSpec::CasRegister {
        initial: Value::Null,
    }
}

fn verdict(h: &History) -> Verdict {
    check(h, &cas_register(), &CheckOptions::default()).verdict
}

#[test]
fn stale_read_is_invalid_with_readable_evidence() {
    let h = history(&[
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (0, "invoke", "write", json!(2)),
        (0, "ok", "write", json!(2)),
        (1, "invoke", "read", Value::Null),
        (1, "ok", "read", json!(1)),
    ]);
    let r = check(&h, &cas_register(), &CheckOptions::default());
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.ops, 3);
    assert_eq!(r.partitions.len(), 1);
    let p = &r.partitions[0];
    assert_eq!(p.ops.len(), 3);
    assert_eq!((p.ops[2].call, p.ops[2].ret), (4000, Some(5000)));
    let ce = p.counterexample.as_ref().unwrap();
    let prefix: Vec<(usize, &str)> = ce
        .longest_prefix
        .iter()
        .map(|s| (s.op, s.state.as_str()))
        .collect();
    assert_eq!(prefix, vec![(0, "1"), (1, "2")]);
    assert_eq!(ce.state, "2");
    assert_eq!(ce.stuck.len(), 1);
    assert_eq!(ce.stuck[0].op, 2);
    assert_eq!(ce.stuck[0].reason, "read 1 but the register holds 2");
    assert!(
        r.summary.contains("read 1 but the register holds 2"),
        "{}",
        r.summary
    );

    // The same history with the read overlapping the second write is fine.
    let h = history(&[
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (0, "invoke", "write", json!(2)),
        (1, "invoke", "read", Value::Null),
        (0, "ok", "write", json!(2)),
        (1, "ok", "read", json!(1)),
    ]);
    assert_eq!(verdict(&h), Verdict::Valid);
}

#[test]
fn info_ops_may_happen_late_or_never() {
    // An info write can take effect long after its process gave up on it...
    let late = history(&[
        (0, "invoke", "write", json!(1)),
        (0, "info", "write", json!(1)),
        (1, "invoke", "read", Value::Null),
        (1, "ok", "read", Value::Null),
        (1, "invoke", "read", Value::Null),
        (1, "ok", "read", json!(1)),
    ]);
    assert_eq!(verdict(&late), Verdict::Valid);
    // ...or never,
    let never = history(&[
        (0, "invoke", "write", json!(1)),
        (0, "info", "write", json!(1)),
        (1, "invoke", "read", Value::Null),
        (1, "ok", "read", Value::Null),
    ]);
    assert_eq!(verdict(&never), Verdict::Valid);
    // but not before it was invoked.
    let early = history(&[
        (1, "invoke", "read", Value::Null),
        (1, "ok", "read", json!(1)),
        (0, "invoke", "write", json!(1)),
        (0, "info", "write", json!(1)),
    ]);
    assert_eq!(verdict(&early), Verdict::Invalid);
    // An unfinished invocation at the end counts as info.
    let open = history(&[
        (0, "invoke", "cas", json!([1, 2])),
        (1, "invoke", "write", json!(1)),
        (1, "ok", "write", json!(1)),
        (1, "invoke", "read", Value::Null),
        (1, "ok", "read", json!(2)),
    ]);
    assert_eq!(verdict(&open), Verdict::Valid);
}

#[test]
fn failed_ops_never_happened() {
    let rows = |kind| {
        history(&[
            (0, "invoke", "write", json!(1)),
            (0, kind, "write", json!(1)),
            (1, "invoke", "read", Value::Null),
            (1, "ok", "read", json!(1)),
        ])
    };
    assert_eq!(verdict(&rows("fail")), Verdict::Invalid);
    assert_eq!(verdict(&rows("ok")), Verdict::Valid);
    let r = check(&rows("fail"), &cas_register(), &CheckOptions::default());
    assert_eq!(r.ops, 1, "the failed write is not an operation");
}

#[test]
fn nil_reads_follow_the_chosen_convention() {
    let h = history(&[
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (1, "invoke", "read", Value::Null),
        (1, "ok", "read", Value::Null),
    ]);
    let strict = CheckOptions::default();
    let knossos = CheckOptions {
        nil_read_unconstrained: true,
        ..CheckOptions::default()
    };
    assert_eq!(
        check(&h, &cas_register(), &strict).verdict,
        Verdict::Invalid
    );
    assert_eq!(check(&h, &cas_register(), &knossos).verdict, Verdict::Valid);
}

#[test]
fn keys_are_checked_apart_and_reported_by_key() {
    let h = keyed(&[
        (0, "invoke", "write", Some("a"), json!(1)),
        (1, "invoke", "write", Some("b"), json!(1)),
        (0, "ok", "write", Some("a"), json!(1)),
        (1, "ok", "write", Some("b"), json!(1)),
        (0, "invoke", "read", Some("a"), Value::Null),
        (0, "ok", "read", Some("a"), json!(1)),
        (1, "invoke", "read", Some("b"), Value::Null),
        (1, "ok", "read", Some("b"), json!(2)),
    ]);
    let kv = ModelSpec::Kv {
        initial: Value::Null,
    };
    for threads in [1, 2, 4] {
        let r = check(
            &h,
            &kv,
            &CheckOptions {
                threads,
                ..CheckOptions::default()
            },
        );
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(r.partitions_total, 2);
        assert!(
            r.summary.starts_with("key b is not linearizable"),
            "{}",
            r.summary
        );
        assert!(r.partitions.iter().all(|p| p.verdict != Verdict::Valid));
    }
    // Without the bad read, both keys are valid, and shown when asked for.
    let good = History::new(h.events[..6].to_vec());
    let opts = CheckOptions {
        keep_valid_partitions: true,
        ..CheckOptions::default()
    };
    let r = check(&good, &kv, &opts);
    assert_eq!(r.verdict, Verdict::Valid);
    assert_eq!(r.partitions.len(), 2);
    assert_eq!(
        check(&good, &kv, &CheckOptions::default()).partitions.len(),
        0
    );
}

/// Twelve concurrent writes of distinct values, then a read of a value nobody wrote: every
/// order of the writes must be tried before the answer is known.
fn hard_history() -> History {
    let mut rows = Vec::new();
    for p in 0..12u64 {
        rows.push((p, "invoke", "write", json!(p)));
    }
    for p in 0..12u64 {
        rows.push((p, "ok", "write", json!(p)));
    }
    rows.push((99, "invoke", "read", Value::Null));
    rows.push((99, "ok", "read", json!(1000)));
    history(&rows)
}

#[test]
fn time_budget_gives_unknown_never_a_guess() {
    let opts = CheckOptions {
        timeout: Some(Duration::ZERO),
        ..CheckOptions::default()
    };
    let r = check(&hard_history(), &cas_register(), &opts);
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
    assert!(r.timed_out);
    assert_eq!(r.partitions.len(), 1);
    assert!(r.summary.contains("time budget"), "{}", r.summary);
    // Given time, the same history is decided.
    let opts = CheckOptions {
        timeout: Some(Duration::from_secs(600)),
        ..CheckOptions::default()
    };
    let r = check(&hard_history(), &cas_register(), &opts);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert!(!r.timed_out);
}

#[test]
fn broken_histories_are_reported_not_guessed() {
    let h = history(&[(0, "ok", "read", json!(1))]);
    let r = check(&h, &cas_register(), &CheckOptions::default());
    assert_eq!(r.verdict, Verdict::Unknown);
    assert!(r.summary.contains("never invoked"), "{}", r.summary);
    let h = history(&[(0, "invoke", "incr", json!(1)), (0, "ok", "incr", json!(1))]);
    let r = check(&h, &cas_register(), &CheckOptions::default());
    assert_eq!(r.verdict, Verdict::Unknown);
    assert!(
        r.summary.contains("unknown function \"incr\""),
        "{}",
        r.summary
    );
    let empty = check(
        &History::default(),
        &cas_register(),
        &CheckOptions::default(),
    );
    assert_eq!((empty.verdict, empty.ops), (Verdict::Valid, 0));
}

/// A register whose writes may be lost: nondeterministic, so the engine tracks the set of
/// states it may be in.
struct LossyRegister;

#[derive(Clone, PartialEq, Eq, Hash)]
enum LossyOp {
    Write(i64),
    Read(i64),
}

impl Model for LossyRegister {
    type State = i64;
    type Op = LossyOp;
    fn init(&self) -> i64 {
        0
    }
    fn op(&self, op: &OpSummary) -> Result<Option<LossyOp>, String> {
        match (op.f.as_str(), op.kind) {
            ("write", _) => Ok(op.input.as_i64().map(LossyOp::Write)),
            ("read", EventType::Ok) => Ok(op.output.as_i64().map(LossyOp::Read)),
            ("read", _) => Ok(None),
            (f, _) => Err(format!("unknown {f}")),
        }
    }
    fn step(&self, s: &i64, op: &LossyOp, next: &mut Vec<i64>) {
        match op {
            LossyOp::Write(v) => next.extend([*v, *s]),
            LossyOp::Read(v) if v == s => next.push(*s),
            LossyOp::Read(_) => {}
        }
    }
    fn refusal(&self, s: &i64, op: &LossyOp) -> String {
        match op {
            LossyOp::Read(v) => format!("read {v}, holds {s}"),
            LossyOp::Write(_) => unreachable!(),
        }
    }
    fn render(&self, s: &i64) -> String {
        s.to_string()
    }
}

#[test]
fn nondeterministic_models_track_every_possible_state() {
    let opts = CheckOptions::default();
    let run = |rows: &[(u64, &str, &str, Value)]| {
        check_model(&history(rows), &LossyRegister, "lossy", &opts)
    };
    let write = [
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
    ];
    let read = |v: i64| {
        [
            (1, "invoke", "read", Value::Null),
            (1, "ok", "read", json!(v)),
        ]
    };
    // Either outcome of the write can be observed...
    assert_eq!(
        run(&[&write[..], &read(1)].concat()).verdict,
        Verdict::Valid
    );
    assert_eq!(
        run(&[&write[..], &read(0)].concat()).verdict,
        Verdict::Valid
    );
    // ...but not both: once a read saw the write lost, it stays lost.
    let r = run(&[&write[..], &read(0), &read(1)].concat());
    assert_eq!(r.verdict, Verdict::Invalid);
    let ce = r.partitions[0].counterexample.as_ref().unwrap();
    assert_eq!(ce.longest_prefix[0].state, "{0 | 1}");
    assert_eq!(ce.state, "0");
    assert_eq!(ce.stuck[0].reason, "read 1, holds 0");
    assert_eq!(r.model, "lossy");
}

#[test]
fn memory_budget_gives_unknown_never_a_guess() {
    // Twelve concurrent writes, then a read of one of them: valid, after some search.
    let mut rows = Vec::new();
    for p in 0..12u64 {
        rows.push((p, "invoke", "write", json!(p)));
    }
    for p in 0..12u64 {
        rows.push((p, "ok", "write", json!(p)));
    }
    rows.push((99, "invoke", "read", Value::Null));
    rows.push((99, "ok", "read", json!(5)));
    let h = history(&rows);
    let tiny = CheckOptions {
        memory_limit: Some(1000),
        threads: 1,
        ..CheckOptions::default()
    };
    for h in [&h, &hard_history()] {
        let r = check(h, &cas_register(), &tiny);
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
        assert!(!r.timed_out);
        assert!(r.summary.contains("memory budget"), "{}", r.summary);
    }
    // With room to search, both are decided.
    let roomy = CheckOptions {
        memory_limit: Some(1 << 30),
        ..CheckOptions::default()
    };
    assert_eq!(check(&h, &cas_register(), &roomy).verdict, Verdict::Valid);
    let r = check(&hard_history(), &cas_register(), &roomy);
    assert_eq!(r.verdict, Verdict::Invalid);
}

/// Twenty concurrent writes and a read nobody wrote: a search of tens of seconds.
fn very_hard_history() -> History {
    let mut rows = Vec::new();
    for p in 0..20u64 {
        rows.push((p, "invoke", "write", json!(p)));
    }
    for p in 0..20u64 {
        rows.push((p, "ok", "write", json!(p)));
    }
    rows.push((99, "invoke", "read", Value::Null));
    rows.push((99, "ok", "read", json!(1000)));
    history(&rows)
}

#[test]
fn a_cancelled_check_is_unknown_and_says_it_was_interrupted() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    // Cancelled before it starts: nothing is decided, and the report says why.
    let cancel = Arc::new(AtomicBool::new(true));
    let opts = CheckOptions {
        cancel: Some(cancel.clone()),
        ..CheckOptions::default()
    };
    let r = check(&hard_history(), &cas_register(), &opts);
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
    assert!(r.interrupted);
    assert!(!r.timed_out);
    assert!(r.summary.contains("interrupted"), "{}", r.summary);

    // Cancelled from another thread in the middle of a search that would take tens of
    // seconds: the search polls the flag and stops (no deadline is set, so only the flag
    // can end it early).
    cancel.store(false, Ordering::Relaxed);
    let setter = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            cancel.store(true, Ordering::Relaxed);
        })
    };
    let r = check(&very_hard_history(), &cas_register(), &opts);
    setter.join().unwrap();
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary);
    assert!(r.interrupted, "{}", r.summary);
    assert!(r.summary.contains("interrupted"), "{}", r.summary);
}

/// Porcupine's c50-bad: some keys are refuted in microseconds, others take gigabytes to
/// search in full. Budgeted rounds find a cheap refutation first, and the same one, on any
/// thread count.
#[test]
fn c50_bad_is_refuted_cheaply_and_the_same_way_on_any_thread_count() {
    let Some(path) = sunder_test_support::shared_data_or_skip("porcupine/kv/c50-bad.txt") else {
        return;
    };
    let path = path.as_path();
    let src = std::fs::read_to_string(path).unwrap();
    let h = sunder_checker::format::porcupine::parse_kv_log(&src, path).unwrap();
    let kv = ModelSpec::Kv { initial: json!("") };
    let mut keys = Vec::new();
    for threads in [1, 2] {
        let opts = CheckOptions {
            threads,
            ..CheckOptions::default()
        };
        let r = check(&h, &kv, &opts);
        assert_eq!(
            r.verdict,
            Verdict::Invalid,
            "{threads} threads: {}",
            r.summary
        );
        let bad: Vec<_> = r
            .partitions
            .iter()
            .filter(|p| p.verdict == Verdict::Invalid)
            .map(|p| p.key.clone())
            .collect();
        assert_eq!(bad.len(), 1, "{threads} threads: {bad:?}");
        keys.push(bad[0].clone());
    }
    assert_eq!(keys[0], keys[1]);
}
