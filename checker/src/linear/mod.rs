//! Linearizability checking: Wing–Gong–Lowe search with memoization, per key, in parallel.
//!
//! ```text
//!  History ─prepare─► partitions (one per key, or one when the model spans keys;
//!                     fails dropped, open ops → info)
//!                        │ model.op() per operation, ops interned into classes
//!                        ▼
//!          bounded pool of std threads, biggest partition first
//!             each: Compiled model (states, sets of states, transition table)
//!                   + search (dancing-links entry list, Zobrist-hashed memo)
//!                        │ first invalid partition cancels the rest; deadline → unknown
//!                        ▼
//!          evidence (longest prefix, states, stuck candidates) ─► LinearizabilityReport
//! ```

mod compiled;
mod evidence;
mod memo;
mod prepare;
pub mod report;
mod search;

pub use report::*;

use crate::history::History;
use crate::model::{KvModel, KvWholeModel, Model, ModelSpec, RegisterModel};
use crate::verdict::Verdict;
use compiled::Compiled;
use prepare::Partition;
use rustc_hash::FxHashMap;
use search::{Outcome, SearchOp, Stop};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How to run a check.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Time budget; `None` = no budget. When it runs out the verdict is `unknown`.
    pub timeout: Option<Duration>,
    /// Worker threads for partitions; 0 = available parallelism.
    pub threads: usize,
    /// Include valid partitions in the report.
    pub keep_valid_partitions: bool,
    /// An `ok` read of nil constrains nothing (Knossos' convention for Jepsen EDN histories).
    /// When false, a read of nil matches only a nil state (Porcupine's corpus).
    pub nil_read_unconstrained: bool,
}

/// Checks `history` against a built-in model.
pub fn check(history: &History, model: &ModelSpec, opts: &CheckOptions) -> LinearizabilityReport {
    let nil = opts.nil_read_unconstrained;
    match model {
        ModelSpec::Register { initial } => check_model(
            history,
            &RegisterModel::new(initial, false, nil),
            model.name(),
            opts,
        ),
        ModelSpec::CasRegister { initial } => check_model(
            history,
            &RegisterModel::new(initial, true, nil),
            model.name(),
            opts,
        ),
        ModelSpec::Kv { initial } => {
            check_model(history, &KvModel::new(initial, nil), model.name(), opts)
        }
        ModelSpec::KvWhole { initial } => check_model(
            history,
            &KvWholeModel::for_history(history, initial, nil),
            model.name(),
            opts,
        ),
    }
}

/// One partition ready to search: its ops in the model's terms.
struct Prepared<M: Model> {
    part: Partition,
    classes: Vec<M::Op>,
    /// Search ops, and the partition op id of each.
    ops: Vec<SearchOp>,
    ids: Vec<usize>,
}

/// Checks `history` against any [`Model`]; `name` is what the report calls it.
/// (`opts.nil_read_unconstrained` is for the built-in models; yours decides in `op`.)
pub fn check_model<M: Model>(
    history: &History,
    model: &M,
    name: &str,
    opts: &CheckOptions,
) -> LinearizabilityReport {
    let start = Instant::now();
    let deadline = opts.timeout.map(|t| start + t);
    let mut report = LinearizabilityReport {
        verdict: Verdict::Unknown,
        model: name.to_string(),
        ops: 0,
        summary: String::new(),
        partitions: Vec::new(),
        partitions_total: 0,
        elapsed_ms: 0,
        timed_out: false,
    };
    let prepared = match prepare_all(history, model) {
        Ok(p) => p,
        Err(why) => {
            report.summary = format!("cannot check this history: {why}");
            report.elapsed_ms = start.elapsed().as_millis() as u64;
            return report;
        }
    };
    report.ops = prepared.iter().map(|p| p.part.ops.len()).sum();
    report.partitions_total = prepared.len();

    // Biggest first, so the slowest partition does not start last.
    let mut order: Vec<usize> = (0..prepared.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(prepared[i].ops.len()));
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(prepared.len())
    .max(1);
    let cancel = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<PartitionReport>>> = Mutex::new(vec![None; prepared.len()]);
    let work = || {
        let stop = Stop {
            cancel: &cancel,
            deadline,
        };
        loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            if k >= order.len() || cancel.load(Ordering::Relaxed) {
                break;
            }
            let i = order[k];
            let r = check_partition(model, &prepared[i], &stop);
            if r.verdict == Verdict::Invalid {
                cancel.store(true, Ordering::Relaxed);
            }
            results.lock().unwrap()[i] = Some(r);
        }
    };
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    let results = results.into_inner().unwrap();

    let out_of_time = deadline.is_some_and(|d| Instant::now() >= d);
    let any_invalid = results
        .iter()
        .flatten()
        .any(|r| r.verdict == Verdict::Invalid);
    let mut undecided = 0usize;
    let mut skipped = 0usize;
    for (p, r) in prepared.iter().zip(results) {
        let mut r = match r {
            // Stopped or never started because another partition already failed.
            Some(r) if any_invalid && r.verdict == Verdict::Unknown => {
                skipped += 1;
                continue;
            }
            None if any_invalid => {
                skipped += 1;
                continue;
            }
            Some(r) => r,
            None => PartitionReport {
                key: p.part.key.clone(),
                verdict: Verdict::Unknown,
                ops: Vec::new(),
                counterexample: None,
                explored: 0,
            },
        };
        if r.verdict == Verdict::Unknown {
            undecided += 1;
        }
        if r.verdict != Verdict::Valid || opts.keep_valid_partitions {
            r.ops = p.part.ops.clone();
            report.partitions.push(r);
        }
    }
    report.verdict = if any_invalid {
        Verdict::Invalid
    } else if undecided > 0 {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    report.timed_out = !any_invalid && undecided > 0 && out_of_time;
    report.summary = evidence::summarize(&report, undecided, skipped, opts.timeout);
    report.elapsed_ms = start.elapsed().as_millis() as u64;
    report
}

fn prepare_all<M: Model>(history: &History, model: &M) -> Result<Vec<Prepared<M>>, String> {
    let parts = prepare::partitions(history, model.per_key())?;
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        // The model's view of each op; `None` ops constrain nothing and are left out.
        let mut model_ops = Vec::with_capacity(part.ops.len());
        let mut info = Vec::with_capacity(part.ops.len());
        let mut at = Vec::with_capacity(part.ops.len());
        for (i, op) in part.ops.iter().enumerate() {
            let m = model.op(op).map_err(|why| {
                format!(
                    "operation invoked at event {} ({} {}): {why}",
                    op.invoke_index, op.f, op.input
                )
            })?;
            if let Some(m) = m {
                model_ops.push(m);
                info.push(part.pos[i].1.is_none());
                at.push(i);
            }
        }
        let mut prune = vec![false; model_ops.len()];
        if info.iter().any(|&i| i) {
            model.prune_infos(&model_ops, &info, &mut prune);
        }
        let mut classes = Vec::new();
        let mut class_of: FxHashMap<M::Op, u32> = FxHashMap::default();
        let mut ops = Vec::new();
        let mut ids = Vec::new();
        for ((m, i), pruned) in model_ops.into_iter().zip(at).zip(prune) {
            if pruned {
                continue;
            }
            let (call, ret) = part.pos[i];
            let class = *class_of.entry(m).or_insert_with_key(|m| {
                classes.push(m.clone());
                classes.len() as u32 - 1
            });
            ops.push(SearchOp { call, ret, class });
            ids.push(part.ops[i].id);
        }
        out.push(Prepared {
            part,
            classes,
            ops,
            ids,
        });
    }
    Ok(out)
}

fn check_partition<M: Model>(model: &M, p: &Prepared<M>, stop: &Stop<'_>) -> PartitionReport {
    let mut compiled = Compiled::new(model, p.classes.clone());
    let s = search::search(&mut compiled, &p.ops, stop);
    let (verdict, counterexample) = match s.outcome {
        Outcome::Valid => (Verdict::Valid, None),
        Outcome::Stopped => (Verdict::Unknown, None),
        Outcome::Invalid(prefix) => (
            Verdict::Invalid,
            Some(evidence::counterexample(
                &mut compiled,
                &p.ops,
                &p.ids,
                &prefix,
            )),
        ),
    };
    // `ops` is filled in only for partitions that make it into the report.
    PartitionReport {
        key: p.part.key.clone(),
        verdict,
        ops: Vec::new(),
        counterexample,
        explored: s.explored,
    }
}
