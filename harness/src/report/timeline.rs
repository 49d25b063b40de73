//! The operation timeline's data: every client operation as five numbers in one flat
//! array, so that 100,000 operations embed as about 3 MB of JSON and the page's canvas
//! draws them without building a DOM node each.
//!
//! ```text
//!   invoke/completion pairs ─► ops  = [lane, start_us, end_us, type, f, ...]  (flat)
//!                              vals = ["k1 w 3 → ok", ...]                   (tooltips)
//!   process lifetimes ─► lanes (a process that ended `info` is replaced by a fresh one:
//!                       packing lifetimes into lanes keeps one row per worker, not per id)
//! ```

use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use sunder_checker::{EventType, History, Process};

/// Type codes in `ops`.
pub const OK: u8 = 0;
pub const FAIL: u8 = 1;
pub const INFO: u8 = 2;
/// Invoked, never completed.
pub const PENDING: u8 = 3;

/// Longest tooltip text per operation.
const VAL_CHARS: usize = 48;

#[derive(Debug, Serialize)]
pub struct Timeline {
    /// Per lane, the processes it held, e.g. `"0, 5, 12"`.
    pub lanes: Vec<String>,
    pub fs: Vec<String>,
    /// Microseconds; the right edge.
    pub end_us: u64,
    pub ops: Vec<u64>,
    pub vals: Vec<String>,
    /// Per op, the process (for the tooltip).
    pub procs: Vec<u64>,
}

struct Op {
    process: u64,
    start: u64,
    end: Option<u64>,
    kind: u8,
    f: String,
    text: String,
}

pub fn build(history: &History) -> Timeline {
    let mut open: HashMap<Process, usize> = HashMap::new();
    let mut ops: Vec<Op> = Vec::new();
    let mut end = 0u64;
    for e in history.client_events() {
        end = end.max(e.time);
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            open.insert(e.process, ops.len());
            ops.push(Op {
                process: p,
                start: e.time,
                end: None,
                kind: PENDING,
                f: e.f.clone(),
                text: describe(e.key.as_deref(), &e.f, &e.value),
            });
        } else if let Some(i) = open.remove(&e.process) {
            let op = &mut ops[i];
            op.end = Some(e.time);
            op.kind = match e.kind {
                EventType::Ok => OK,
                EventType::Fail => FAIL,
                _ => INFO,
            };
            let out = match (&e.error, e.kind) {
                (Some(err), _) => err.clone(),
                (None, EventType::Ok) if !e.value.is_null() => compact(&e.value),
                (None, k) => k.to_string(),
            };
            op.text = format!("{} → {out}", op.text);
        }
    }
    let end = ops
        .iter()
        .map(|o| o.end.unwrap_or(o.start))
        .max()
        .unwrap_or(0)
        .max(end);
    let lane_of = pack_lanes(&ops, end);
    let mut lanes: Vec<Vec<u64>> = Vec::new();
    let mut fs: Vec<String> = Vec::new();
    let mut flat = Vec::with_capacity(ops.len() * 5);
    for op in &ops {
        let lane = lane_of[&op.process];
        if lanes.len() <= lane {
            lanes.resize(lane + 1, Vec::new());
        }
        if !lanes[lane].contains(&op.process) {
            lanes[lane].push(op.process);
        }
        let f = match fs.iter().position(|f| *f == op.f) {
            Some(i) => i,
            None => {
                fs.push(op.f.clone());
                fs.len() - 1
            }
        };
        flat.extend([
            lane as u64,
            op.start / 1000,
            op.end.unwrap_or(end) / 1000,
            u64::from(op.kind),
            f as u64,
        ]);
    }
    Timeline {
        lanes: lanes.iter().map(|ps| lane_label(ps)).collect(),
        fs,
        end_us: end / 1000,
        vals: ops
            .iter()
            .map(|o| o.text.chars().take(VAL_CHARS).collect())
            .collect(),
        procs: ops.iter().map(|o| o.process).collect(),
        ops: flat,
    }
}

/// Each process lives from its first invocation to its last completion; processes are
/// packed greedily into the lowest lane free at their start.
fn pack_lanes(ops: &[Op], end: u64) -> HashMap<u64, usize> {
    let mut life: HashMap<u64, (u64, u64)> = HashMap::new();
    for o in ops {
        let e = life.entry(o.process).or_insert((o.start, o.start));
        e.0 = e.0.min(o.start);
        e.1 = e.1.max(o.end.unwrap_or(end));
    }
    let mut procs: Vec<(u64, u64, u64)> = life.into_iter().map(|(p, (s, e))| (s, e, p)).collect();
    procs.sort_unstable();
    let mut lane_end: Vec<u64> = Vec::new();
    let mut out = HashMap::new();
    for (s, e, p) in procs {
        let lane = match lane_end.iter().position(|&le| le < s) {
            Some(l) => l,
            None => {
                lane_end.push(0);
                lane_end.len() - 1
            }
        };
        lane_end[lane] = e;
        out.insert(p, lane);
    }
    out
}

fn lane_label(ps: &[u64]) -> String {
    let mut s = ps
        .iter()
        .take(4)
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    if ps.len() > 4 {
        s.push_str(&format!(",…(+{})", ps.len() - 4));
    }
    s
}

fn describe(key: Option<&str>, f: &str, v: &Value) -> String {
    let v = if v.is_null() {
        String::new()
    } else {
        format!(" {}", compact(v))
    };
    match key {
        Some(k) => format!("{k} {f}{v}"),
        None => format!("{f}{v}"),
    }
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 24 {
        format!("{}…", s.chars().take(23).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sunder_checker::Event;

    fn ev(index: u64, time: u64, kind: EventType, p: u64, f: &str, value: Value) -> Event {
        Event {
            index,
            time,
            kind,
            process: Process::Client(p),
            f: f.into(),
            key: Some("k1".into()),
            value,
            error: None,
            node: None,
            committed: None,
        }
    }

    #[test]
    fn ops_flatten_and_replaced_processes_share_a_lane() {
        use EventType::*;
        let h = History::new(vec![
            ev(0, 1_000, Invoke, 0, "write", json!(1)),
            ev(1, 2_000, Invoke, 1, "read", Value::Null),
            ev(2, 3_000, Ok, 0, "write", json!(1)),
            ev(3, 4_000, Info, 1, "read", Value::Null),
            ev(4, 5_000, Invoke, 6, "read", Value::Null), // worker of process 1, fresh id
            ev(5, 9_000, Invoke, 0, "cas", json!([1, 2])),
        ]);
        let t = build(&h);
        assert_eq!(t.fs, vec!["write", "read", "cas"]);
        assert_eq!(
            t.ops,
            vec![
                0,
                1,
                3,
                OK as u64,
                0,
                1,
                2,
                4,
                INFO as u64,
                1,
                1,
                5,
                9,
                PENDING as u64,
                1,
                0,
                9,
                9,
                PENDING as u64,
                2
            ]
        );
        assert_eq!(t.lanes, vec!["0", "1,6"]);
        assert_eq!(t.vals[0], "k1 write 1 → 1");
        assert_eq!(t.end_us, 9);
    }
}
