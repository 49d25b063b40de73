//! From a history to partitions of operations: invocations paired with completions,
//! `fail`s dropped (they never happened), unfinished operations turned into `info`, nemesis
//! events ignored, one partition per key (P-compositionality).

use super::report::OpSummary;
use crate::history::{EventType, History, Process};
use rustc_hash::FxHashMap;

/// The operations of one key, with their positions in the history (the search orders
/// operations by position: event order is real-time order, whatever the clocks said).
#[derive(Debug, Clone)]
pub(crate) struct Partition {
    pub key: Option<String>,
    pub ops: Vec<OpSummary>,
    /// Positions of the invoke and completion events (`None` = open to the end).
    pub pos: Vec<(u64, Option<u64>)>,
}

struct Open {
    partition: usize,
    op: usize,
}

/// Pairs events into operations and splits them by key (`per_key`; else one partition,
/// whose ops keep their keys). `Err` names the first event that does not fit the
/// invoke/complete discipline.
pub(crate) fn partitions(history: &History, per_key: bool) -> Result<Vec<Partition>, String> {
    let mut parts: Vec<Partition> = Vec::new();
    let mut part_of: FxHashMap<Option<&str>, usize> = FxHashMap::default();
    // Ops that failed: dropped at the end so ids stay dense.
    let mut failed: Vec<Vec<bool>> = Vec::new();
    let mut open: FxHashMap<u64, Open> = FxHashMap::default();

    for (pos, e) in history.events.iter().enumerate() {
        let p = match e.process {
            Process::Client(p) => p,
            Process::Nemesis => continue,
        };
        let at = || format!("event {} (process {p}, {} {})", e.index, e.kind, e.f);
        if e.kind == EventType::Invoke {
            if let Some(o) = open.get(&p) {
                let prev = &parts[o.partition].ops[o.op];
                return Err(format!(
                    "{}: the process already has an operation in flight (invoked at event {})",
                    at(),
                    prev.invoke_index
                ));
            }
            let key = e.key.as_deref().filter(|_| per_key);
            let pi = *part_of.entry(key).or_insert_with(|| {
                parts.push(Partition {
                    key: key.map(str::to_string),
                    ops: Vec::new(),
                    pos: Vec::new(),
                });
                failed.push(Vec::new());
                parts.len() - 1
            });
            let part = &mut parts[pi];
            open.insert(
                p,
                Open {
                    partition: pi,
                    op: part.ops.len(),
                },
            );
            part.ops.push(OpSummary {
                id: part.ops.len(),
                process: e.process,
                f: e.f.clone(),
                key: e.key.clone(),
                input: e.value.clone(),
                output: serde_json::Value::Null,
                kind: EventType::Info,
                call: e.time,
                ret: None,
                invoke_index: e.index,
                complete_index: None,
            });
            part.pos.push((pos as u64, None));
            failed[pi].push(false);
            continue;
        }
        let Some(o) = open.remove(&p) else {
            return Err(format!(
                "{}: completes an operation the process never invoked",
                at()
            ));
        };
        let part = &mut parts[o.partition];
        let op = &mut part.ops[o.op];
        if op.f != e.f {
            return Err(format!(
                "{}: completes an operation invoked as {} at event {}",
                at(),
                op.f,
                op.invoke_index
            ));
        }
        if e.key.is_some() && e.key != op.key {
            return Err(format!(
                "{}: completes with key {:?} an operation invoked with key {:?}",
                at(),
                e.key.as_deref().unwrap_or(""),
                op.key.as_deref().unwrap_or("")
            ));
        }
        match e.kind {
            EventType::Fail => failed[o.partition][o.op] = true,
            EventType::Ok => {
                op.kind = EventType::Ok;
                op.output = e.value.clone();
                op.ret = Some(e.time);
                op.complete_index = Some(e.index);
                part.pos[o.op].1 = Some(pos as u64);
            }
            // An info op stays open to the end; its completion only tells us so.
            EventType::Info => op.complete_index = Some(e.index),
            EventType::Invoke => unreachable!(),
        }
    }

    for (part, failed) in parts.iter_mut().zip(&failed) {
        if failed.iter().any(|&f| f) {
            let mut keep = failed.iter().map(|f| !f);
            let mut keep2 = failed.iter().map(|f| !f);
            part.ops.retain(|_| keep.next().unwrap_or(true));
            part.pos.retain(|_| keep2.next().unwrap_or(true));
            for (i, op) in part.ops.iter_mut().enumerate() {
                op.id = i;
            }
        }
    }
    parts.retain(|p| !p.ops.is_empty());
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Event;
    use serde_json::{Value, json};

    fn ev(i: u64, kind: EventType, p: u64, f: &str, key: Option<&str>, v: Value) -> Event {
        Event {
            index: i,
            time: i * 10,
            kind,
            process: Process::Client(p),
            f: f.into(),
            key: key.map(Into::into),
            value: v,
            error: None,
            node: None,
        }
    }

    #[test]
    fn pairs_drops_fails_and_splits_by_key() {
        use EventType::*;
        let h = History::new(vec![
            ev(0, Invoke, 0, "write", Some("a"), json!(1)),
            ev(1, Invoke, 1, "write", Some("b"), json!(2)),
            ev(2, Fail, 1, "write", Some("b"), json!(2)),
            ev(3, Ok, 0, "write", Some("a"), json!(1)),
            ev(4, Invoke, 1, "read", Some("a"), Value::Null),
            ev(5, Invoke, 2, "read", Some("b"), Value::Null),
            ev(6, Info, 2, "read", Some("b"), Value::Null),
        ]);
        let parts = partitions(&h, true).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].key.as_deref(), Some("a"));
        assert_eq!(parts[0].ops.len(), 2);
        assert_eq!(parts[0].pos, vec![(0, Some(3)), (4, None)]);
        assert_eq!(parts[0].ops[0].ret, Some(30));
        assert_eq!(
            parts[0].ops[1].kind, Info,
            "unmatched invocation becomes info"
        );
        assert_eq!(parts[1].ops.len(), 1, "the failed write is gone");
        assert_eq!(parts[1].ops[0].id, 0);
        assert_eq!(parts[1].ops[0].f, "read");
        let whole = partitions(&h, false).unwrap();
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].key, None);
        let keys: Vec<_> = whole[0].ops.iter().map(|o| o.key.as_deref()).collect();
        assert_eq!(
            keys,
            [Some("a"), Some("a"), Some("b")],
            "ops keep their keys"
        );
    }

    #[test]
    fn rejects_broken_discipline() {
        use EventType::*;
        let orphan = History::new(vec![ev(0, Ok, 0, "read", None, json!(1))]);
        assert!(
            partitions(&orphan, true)
                .unwrap_err()
                .contains("never invoked")
        );
        let twice = History::new(vec![
            ev(0, Invoke, 0, "read", None, Value::Null),
            ev(1, Invoke, 0, "read", None, Value::Null),
        ]);
        assert!(partitions(&twice, true).unwrap_err().contains("in flight"));
        let mismatch = History::new(vec![
            ev(0, Invoke, 0, "read", None, Value::Null),
            ev(1, Ok, 0, "write", None, json!(1)),
        ]);
        assert!(
            partitions(&mismatch, true)
                .unwrap_err()
                .contains("invoked as read")
        );
    }
}
