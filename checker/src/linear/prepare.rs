//! From a history to partitions of operations: invocations paired with completions,
//! `fail`s dropped (they never happened), unfinished operations turned into `info`, nemesis
//! events ignored, one partition per key (P-compositionality).

use super::report::OpSummary;
use crate::history::{EventType, History, Process};
use rustc_hash::FxHashMap;

/// The operations of one key, as positions in the history: a summary of each is built
/// only when something needs it (the model's view while preparing, the report for the
/// partitions that make it into one), so checking holds no second copy of the history.
#[derive(Debug, Clone)]
pub(crate) struct Partition {
    pub key: Option<String>,
    pub ops: Vec<OpRef>,
}

/// One operation: where its events sit in the history (the search orders operations by
/// position: event order is real-time order, whatever the clocks said).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct OpRef {
    pub invoke: u32,
    /// The completion event (`ok` or `info`); [`OPEN`] when there is none.
    pub done: u32,
    /// Completed `ok`; anything else stays open to the end.
    pub ok: bool,
}

pub(crate) const OPEN: u32 = u32::MAX;

impl OpRef {
    /// Positions of the invoke and `ok` completion events (`None` = open to the end).
    pub fn pos(self) -> (u64, Option<u64>) {
        (
            u64::from(self.invoke),
            self.ok.then_some(u64::from(self.done)),
        )
    }

    /// The operation as the report and the models see it; `id` is its position in its
    /// partition.
    pub fn summary(self, history: &History, id: usize) -> OpSummary {
        let inv = &history.events[self.invoke as usize];
        let done = (self.done != OPEN).then(|| &history.events[self.done as usize]);
        let ok = done.filter(|_| self.ok);
        OpSummary {
            id,
            process: inv.process,
            f: inv.f.clone(),
            key: inv.key.clone(),
            input: inv.value.clone(),
            output: ok.map_or(serde_json::Value::Null, |e| e.value.clone()),
            kind: if ok.is_some() {
                EventType::Ok
            } else {
                EventType::Info
            },
            call: inv.time,
            ret: ok.map(|e| e.time),
            invoke_index: inv.index,
            complete_index: done.map(|e| e.index),
        }
    }
}

/// Pairs events into operations and splits them by key (`per_key`; else one partition,
/// whose ops keep their keys). `Err` names the first event that does not fit the
/// invoke/complete discipline.
pub(crate) fn partitions(history: &History, per_key: bool) -> Result<Vec<Partition>, String> {
    if history.events.len() >= OPEN as usize {
        return Err(format!(
            "the history has {} events; at most {} can be checked",
            history.events.len(),
            OPEN - 1
        ));
    }
    let mut parts: Vec<Partition> = Vec::new();
    let mut part_of: FxHashMap<Option<&str>, usize> = FxHashMap::default();
    // Ops that failed: dropped at the end so ids stay dense.
    let mut failed: Vec<Vec<bool>> = Vec::new();
    // Per process in flight: (partition, op).
    let mut open: FxHashMap<u64, (usize, usize)> = FxHashMap::default();

    for (pos, e) in history.events.iter().enumerate() {
        let p = match e.process {
            Process::Client(p) => p,
            Process::Nemesis => continue,
        };
        let at = || format!("event {} (process {p}, {} {})", e.index, e.kind, e.f);
        if e.kind == EventType::Invoke {
            if let Some(&(pi, oi)) = open.get(&p) {
                let prev = &history.events[parts[pi].ops[oi].invoke as usize];
                return Err(format!(
                    "{}: the process already has an operation in flight (invoked at event {})",
                    at(),
                    prev.index
                ));
            }
            let key = e.key.as_deref().filter(|_| per_key);
            let pi = *part_of.entry(key).or_insert_with(|| {
                parts.push(Partition {
                    key: key.map(str::to_string),
                    ops: Vec::new(),
                });
                failed.push(Vec::new());
                parts.len() - 1
            });
            let part = &mut parts[pi];
            open.insert(p, (pi, part.ops.len()));
            part.ops.push(OpRef {
                invoke: pos as u32,
                done: OPEN,
                ok: false,
            });
            failed[pi].push(false);
            continue;
        }
        let Some((pi, oi)) = open.remove(&p) else {
            return Err(format!(
                "{}: completes an operation the process never invoked",
                at()
            ));
        };
        let op = &mut parts[pi].ops[oi];
        let inv = &history.events[op.invoke as usize];
        if inv.f != e.f {
            return Err(format!(
                "{}: completes an operation invoked as {} at event {}",
                at(),
                inv.f,
                inv.index
            ));
        }
        if e.key.is_some() && e.key != inv.key {
            return Err(format!(
                "{}: completes with key {:?} an operation invoked with key {:?}",
                at(),
                e.key.as_deref().unwrap_or(""),
                inv.key.as_deref().unwrap_or("")
            ));
        }
        match e.kind {
            EventType::Fail => failed[pi][oi] = true,
            EventType::Ok => {
                op.done = pos as u32;
                op.ok = true;
            }
            // An info op stays open to the end; its completion only tells us so.
            EventType::Info => op.done = pos as u32,
            EventType::Invoke => unreachable!(),
        }
    }

    for (part, failed) in parts.iter_mut().zip(&failed) {
        if failed.iter().any(|&f| f) {
            let mut keep = failed.iter().map(|f| !f);
            part.ops.retain(|_| keep.next().unwrap_or(true));
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
            committed: None,
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
        let ops = |p: &Partition| -> Vec<OpSummary> {
            p.ops
                .iter()
                .enumerate()
                .map(|(i, r)| r.summary(&h, i))
                .collect()
        };
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].key.as_deref(), Some("a"));
        assert_eq!(parts[0].ops.len(), 2);
        let pos: Vec<_> = parts[0].ops.iter().map(|r| r.pos()).collect();
        assert_eq!(pos, vec![(0, Some(3)), (4, None)]);
        let a = ops(&parts[0]);
        assert_eq!(a[0].ret, Some(30));
        assert_eq!(a[0].complete_index, Some(3));
        assert_eq!(a[1].kind, Info, "unmatched invocation becomes info");
        assert_eq!(a[1].complete_index, None);
        assert_eq!(parts[1].ops.len(), 1, "the failed write is gone");
        let b = ops(&parts[1]);
        assert_eq!(b[0].id, 0);
        assert_eq!(b[0].f, "read");
        assert_eq!(b[0].kind, Info, "an info completion leaves it open");
        assert_eq!(b[0].complete_index, Some(6));
        assert_eq!(b[0].ret, None);
        let whole = partitions(&h, false).unwrap();
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].key, None);
        let keys: Vec<_> = whole[0]
            .ops
            .iter()
            .enumerate()
            .map(|(i, r)| r.summary(&h, i).key)
            .collect();
        let keys: Vec<_> = keys.iter().map(|k| k.as_deref()).collect();
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
