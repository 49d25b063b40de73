//! Statistics of a run: how many operations ended ok, fail or info, per operation and
//! overall; throughput; latency percentiles of successful operations; a per-second time
//! series for plots.
//!
//! ```text
//!  client events ─► pair invoke with completion (per process) ─┬─► per f and overall: counts, latency
//!                                                              └─► per second of completion: counts, p50/p99
//! ```
//!
//! Percentiles are exact (nearest rank over the sorted latencies), not estimated: a history
//! fits in memory anyway, and exact numbers compare cleanly between runs.

use crate::history::{EventType, History, Process};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Latency percentiles of a group of operations, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// Percentiles of `nanos`; `None` when empty. Sorts in place.
    fn of(nanos: &mut [u64]) -> Option<Latency> {
        if nanos.is_empty() {
            return None;
        }
        nanos.sort_unstable();
        let total: u128 = nanos.iter().map(|&n| u128::from(n)).sum();
        Some(Latency {
            count: nanos.len(),
            mean_ms: total as f64 / nanos.len() as f64 / 1e6,
            p50_ms: ms(percentile(nanos, 0.50)),
            p90_ms: ms(percentile(nanos, 0.90)),
            p99_ms: ms(percentile(nanos, 0.99)),
            max_ms: ms(*nanos.last().expect("not empty")),
        })
    }
}

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

/// Nearest rank: the smallest value with at least `q` of the values at or below it.
fn percentile(sorted: &[u64], q: f64) -> u64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Counts and latency of one kind of operation (or of all).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpStats {
    pub invoked: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// Invoked and never completed (the run ended first); as uncertain as `info`.
    pub pending: u64,
    /// Of `ok` operations only.
    pub latency: Option<Latency>,
}

/// One second of the run, by completion time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Seconds since the start of the test.
    pub second: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// Statistics of a history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// From the first client event to the last, in seconds.
    pub duration_s: f64,
    /// `ok` operations per second over `duration_s`.
    pub throughput: f64,
    pub overall: OpStats,
    /// Per operation name (`read`, `write`, `cas`, `add`, ...).
    pub by_f: BTreeMap<String, OpStats>,
    /// Every second from 0 to the last completion, empty seconds included.
    pub series: Vec<Bucket>,
}

#[derive(Default)]
struct Acc {
    stats: OpStats,
    latencies: Vec<u64>,
}

impl Acc {
    fn finish(mut self) -> OpStats {
        self.stats.latency = Latency::of(&mut self.latencies);
        self.stats
    }
}

/// Computes the statistics of `history`'s client operations; nemesis events are ignored.
pub fn compute(history: &History) -> Stats {
    let mut open: HashMap<Process, (u64, &str)> = HashMap::new();
    let mut overall = Acc::default();
    let mut by_f: BTreeMap<&str, Acc> = BTreeMap::new();
    let mut buckets: BTreeMap<u64, (Bucket, Vec<u64>)> = BTreeMap::new();
    let (mut first, mut last) = (None::<u64>, 0u64);

    for e in history.client_events() {
        first = Some(first.map_or(e.time, |f| f.min(e.time)));
        last = last.max(e.time);
        if e.kind == EventType::Invoke {
            // An invocation that replaces an open one leaves that one pending.
            open.insert(e.process, (e.time, e.f.as_str()));
            overall.stats.invoked += 1;
            by_f.entry(e.f.as_str()).or_default().stats.invoked += 1;
            continue;
        }
        // A completion without an invocation has no latency; it is counted still.
        let latency = open
            .remove(&e.process)
            .map(|(start, _)| e.time.saturating_sub(start));
        tally(
            &mut overall,
            &mut by_f,
            &mut buckets,
            e.f.as_str(),
            e.kind,
            e.time,
            latency,
        );
    }
    for (_, f) in open.values() {
        overall.stats.pending += 1;
        by_f.entry(f).or_default().stats.pending += 1;
    }

    let duration_s = first.map_or(0.0, |f| (last - f) as f64 / NANOS_PER_SEC as f64);
    let overall = overall.finish();
    let throughput = if duration_s > 0.0 {
        overall.ok as f64 / duration_s
    } else {
        0.0
    };
    let series = match buckets.keys().next_back() {
        None => Vec::new(),
        Some(&end) => (0..=end)
            .map(|s| match buckets.remove(&s) {
                None => Bucket {
                    second: s,
                    ..Bucket::default()
                },
                Some((mut b, mut lat)) => {
                    if let Some(l) = Latency::of(&mut lat) {
                        b.p50_ms = Some(l.p50_ms);
                        b.p99_ms = Some(l.p99_ms);
                    }
                    b
                }
            })
            .collect(),
    };
    Stats {
        duration_s,
        throughput,
        overall,
        by_f: by_f
            .into_iter()
            .map(|(f, a)| (f.to_string(), a.finish()))
            .collect(),
        series,
    }
}

fn tally<'a>(
    overall: &mut Acc,
    by_f: &mut BTreeMap<&'a str, Acc>,
    buckets: &mut BTreeMap<u64, (Bucket, Vec<u64>)>,
    f: &'a str,
    kind: EventType,
    time: u64,
    latency: Option<u64>,
) {
    let second = time / NANOS_PER_SEC;
    let (bucket, bucket_lat) = buckets.entry(second).or_insert_with(|| {
        (
            Bucket {
                second,
                ..Bucket::default()
            },
            Vec::new(),
        )
    });
    for acc in [overall, by_f.entry(f).or_default()] {
        match kind {
            EventType::Ok => {
                acc.stats.ok += 1;
                acc.latencies.extend(latency);
            }
            EventType::Fail => acc.stats.fail += 1,
            EventType::Info => acc.stats.info += 1,
            EventType::Invoke => unreachable!("completions only"),
        }
    }
    match kind {
        EventType::Ok => {
            bucket.ok += 1;
            bucket_lat.extend(latency);
        }
        EventType::Fail => bucket.fail += 1,
        EventType::Info => bucket.info += 1,
        EventType::Invoke => unreachable!("completions only"),
    }
}
