//! Linearizability checking: Wing–Gong–Lowe search with memoization, per key, in parallel.
//!
//! ```text
//!  History ─prepare─► partitions (one per key, or one when the model spans keys;
//!                     fails dropped, open ops → info; ops kept as event positions)
//!                        │ model.op() per operation, ops interned into classes
//!                        ▼
//!          rounds with a node budget growing 4k, 16k, 100k, 1M, 10M, unlimited:
//!          cheap refutations are found first whatever the thread count, and a round's
//!          peak memory is bounded by its budget; a partition over budget is searched
//!          again from scratch in the next round
//!          bounded pool of std threads per round (the caller alone for a small round),
//!          biggest partition first
//!             each: Compiled model (states, sets of states, transition table)
//!                   + search (dancing-links entry list, Zobrist-hashed memo;
//!                     memo + model bytes capped at the thread's share of `memory_limit`)
//!                        │ the invalid partition with the lowest key cancels higher ones;
//!                        │ deadline, memory share or the caller's cancel flag → unknown
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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to run a check.
#[derive(Debug, Clone)]
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
    /// Bytes of search memory (memo, and the model's states as the search met them,
    /// estimated) the whole check may hold, shared evenly by the worker threads; a
    /// partition that needs more than its share is `unknown`. `None` = no limit.
    pub memory_limit: Option<usize>,
    /// Set by another thread (a Ctrl-C handler) to stop the search: the verdict is then
    /// `unknown` and the report says it was interrupted. The search polls it as often as
    /// the deadline.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            timeout: None,
            threads: 0,
            keep_valid_partitions: false,
            nil_read_unconstrained: false,
            memory_limit: Some(default_memory_limit()),
            cancel: None,
        }
    }
}

/// A quarter of physical memory, at most 4 GiB (4 GiB when it cannot be read).
pub fn default_memory_limit() -> usize {
    const CAP: usize = 4 << 30;
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib.saturating_mul(1024))
    });
    total.map_or(CAP, |t| (t / 4).min(CAP))
}

/// Node (memo entry) budgets of the successive rounds; `None` = until decided. The first
/// ones are small and close: a round's peak memory grows with its budget (partitions below
/// the invalid one must use all of it, for the answer not to depend on timing), and a
/// refutation that takes a few thousand nodes should not pay for a big round.
const ROUNDS: [Option<usize>; 6] = [
    Some(4_000),
    Some(16_000),
    Some(100_000),
    Some(1_000_000),
    Some(10_000_000),
    None,
];

/// Rounds whose node budget summed over their open partitions is at most this run on the
/// calling thread.
const SERIAL_NODES: usize = 1 << 16;

/// Where one partition stands between rounds.
#[derive(Clone)]
enum State {
    /// Not decided yet (over budget so far, or not started).
    Open,
    Done(PartitionReport),
    /// Its memo outgrew its memory share: unknown.
    OutOfMemory(PartitionReport),
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
        interrupted: false,
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

    // Rank by key, so "the first invalid partition" means the same on any thread count.
    let mut by_key: Vec<usize> = (0..prepared.len()).collect();
    by_key.sort_by(|&a, &b| prepared[a].part.key.cmp(&prepared[b].part.key));
    let mut rank = vec![0usize; prepared.len()];
    for (r, &i) in by_key.iter().enumerate() {
        rank[i] = r;
    }
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(prepared.len())
    .max(1);
    let memory = opts.memory_limit.map(|m| m / threads);
    let first_invalid = AtomicUsize::new(usize::MAX);
    let out_of_time = AtomicBool::new(false);
    let cancel = opts.cancel.as_deref();
    let cancelled = || cancel.is_some_and(|c| c.load(Ordering::Relaxed));
    let mut states = vec![State::Open; prepared.len()];
    // Rounds let a cheap refutation in one partition come before a costly search in
    // another; a single partition has no other, and would only pay for the restarts.
    let rounds = if prepared.len() == 1 {
        &ROUNDS[ROUNDS.len() - 1..]
    } else {
        &ROUNDS[..]
    };
    for &budget in rounds {
        // Biggest first, so the slowest partition does not start last.
        let mut order: Vec<usize> = (0..prepared.len())
            .filter(|&i| matches!(states[i], State::Open))
            .collect();
        if order.is_empty() {
            break;
        }
        order.sort_by_key(|&i| std::cmp::Reverse(prepared[i].ops.len()));
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<(PartitionReport, bool)>>> =
            Mutex::new(vec![None; prepared.len()]);
        let work = || loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            if k >= order.len() || out_of_time.load(Ordering::Relaxed) || cancelled() {
                break;
            }
            let i = order[k];
            if first_invalid.load(Ordering::Relaxed) < rank[i] {
                continue;
            }
            let stop = Stop {
                first_invalid: &first_invalid,
                rank: rank[i],
                out_of_time: &out_of_time,
                deadline,
                cancel,
                nodes: budget,
                memory,
            };
            let (r, outcome) = check_partition(model, &prepared[i], &stop);
            if r.verdict == Verdict::Invalid {
                first_invalid.fetch_min(rank[i], Ordering::Relaxed);
            }
            let result = match outcome {
                Outcome::OverBudget => None,
                Outcome::OutOfMemory => Some((r, true)),
                _ => Some((r, false)),
            };
            results.lock().unwrap()[i] = result;
        };
        // A round whose whole budget is small (a few milliseconds of search) runs on the
        // calling thread alone: a worker thread would add its own heap arena, whose pages
        // the caller's freed memory cannot serve, to the peak for little time saved.
        let small = budget.is_some_and(|b| b.saturating_mul(order.len()) <= SERIAL_NODES);
        let threads = if small { 1 } else { threads.min(order.len()) };
        if threads == 1 {
            work();
        } else {
            // The calling thread works too: one thread fewer to start, and its
            // allocations reuse what the caller's heap already holds (freed parse
            // buffers) instead of touching a worker arena's fresh pages.
            std::thread::scope(|s| {
                for _ in 1..threads {
                    s.spawn(work);
                }
                work();
            });
        }
        for (i, r) in results.into_inner().unwrap().into_iter().enumerate() {
            match r {
                Some((r, true)) => states[i] = State::OutOfMemory(r),
                Some((r, false)) => states[i] = State::Done(r),
                None => {}
            }
        }
        if first_invalid.load(Ordering::Relaxed) != usize::MAX
            || out_of_time.load(Ordering::Relaxed)
            || cancelled()
        {
            break;
        }
    }

    let first_invalid = first_invalid.into_inner();
    let out_of_time = out_of_time.into_inner() || deadline.is_some_and(|d| Instant::now() >= d);
    let any_invalid = first_invalid != usize::MAX;
    let mut undecided = 0usize;
    let mut skipped = 0usize;
    let mut out_of_memory = 0usize;
    for (i, (p, st)) in prepared.iter().zip(states).enumerate() {
        let mut r = match st {
            // Only the lowest-ranked invalid partition is reported: which others were
            // found before the search stopped depends on thread timing.
            _ if any_invalid && rank[i] != first_invalid => {
                skipped += 1;
                continue;
            }
            State::Done(r) => r,
            State::OutOfMemory(r) => {
                out_of_memory += 1;
                r
            }
            State::Open => PartitionReport {
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
            r.ops = (p.part.ops.iter().enumerate())
                .map(|(i, op)| op.summary(history, i))
                .collect();
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
    report.interrupted = !any_invalid && undecided > 0 && cancelled();
    report.summary = evidence::summarize(&report, undecided, skipped, opts.timeout);
    if report.verdict == Verdict::Unknown && out_of_memory > 0 {
        report.summary = format!(
            "unknown: the memory budget ran out ({} KiB of search memory per thread) in \
             {out_of_memory} of {} partitions; {undecided} undecided in all",
            memory.unwrap_or(0) >> 10,
            report.partitions_total
        );
    }
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
        for (i, r) in part.ops.iter().enumerate() {
            // One summary at a time, dropped at once: the model sees the operation as
            // reports do without the check keeping a copy of every value.
            let op = r.summary(history, i);
            let m = model.op(&op).map_err(|why| {
                format!(
                    "operation invoked at event {} ({} {}): {why}",
                    op.invoke_index, op.f, op.input
                )
            })?;
            if let Some(m) = m {
                model_ops.push(m);
                info.push(!r.ok);
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
            let (call, ret) = part.ops[i].pos();
            let class = *class_of.entry(m).or_insert_with_key(|m| {
                classes.push(m.clone());
                classes.len() as u32 - 1
            });
            ops.push(SearchOp { call, ret, class });
            ids.push(i);
        }
        // Every partition's ops are held until the check ends: no growth slack.
        classes.shrink_to_fit();
        ops.shrink_to_fit();
        ids.shrink_to_fit();
        out.push(Prepared {
            part,
            classes,
            ops,
            ids,
        });
    }
    Ok(out)
}

fn check_partition<M: Model>(
    model: &M,
    p: &Prepared<M>,
    stop: &Stop<'_>,
) -> (PartitionReport, Outcome) {
    let mut compiled = Compiled::new(model, p.classes.clone());
    let s = search::search(&mut compiled, &p.ops, stop);
    let (verdict, counterexample) = match s.outcome {
        Outcome::Valid => (Verdict::Valid, None),
        Outcome::Stopped | Outcome::OverBudget | Outcome::OutOfMemory => (Verdict::Unknown, None),
        Outcome::Invalid(ref prefix) => (
            Verdict::Invalid,
            Some(evidence::counterexample(
                &mut compiled,
                &p.ops,
                &p.ids,
                prefix,
            )),
        ),
    };
    // `ops` is filled in only for partitions that make it into the report.
    let r = PartitionReport {
        key: p.part.key.clone(),
        verdict,
        ops: Vec::new(),
        counterexample,
        explored: s.explored,
    };
    (r, s.outcome)
}
