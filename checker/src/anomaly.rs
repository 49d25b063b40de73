//! When a run first went wrong: the time of the earliest anomaly in a checker's evidence,
//! so that detection speed is measured, not guessed.
//!
//! ```text
//!  LinearizabilityReport ─► stuck ops of each invalid key ─► earliest invocation ─┐
//!  SetReport + History ───► lost / stale: the add's ack; unexpected: first read ──┼─► earliest
//!  BankReport ────────────► the first read that broke the bank ──────────────────┤
//!  AgreementReport + History ─► missing write: its ack; divergence at index i:    │
//!                               the first ack committed at or beyond i;           │
//!                               lost vote at restart k: the k-th restart of it ───┘
//! ```
//!
//! Times are the history's (nanoseconds since the test started). A node's clock is used
//! only for evidence with no place in the history (an acceptor's broken promise), and only
//! when the caller vouches for it with the nodes' clock reading at the history's start:
//! under clock faults a node's wall clock says nothing about when. Other evidence with no
//! place in the history (two leaders of one term, a double vote) is named with no time.

use crate::agreement::AgreementReport;
use crate::bank::BankReport;
use crate::history::{EventType, History};
use crate::linear::LinearizabilityReport;
use crate::set::SetReport;
use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The earliest anomaly a checker's evidence shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// The checker whose evidence it is.
    pub checker: String,
    /// Seconds since the start of the test; `None` when the evidence has no time.
    pub time_s: Option<f64>,
    /// The history event it is dated by, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_index: Option<u64>,
    /// What went wrong, in one line.
    pub what: String,
}

impl Anomaly {
    fn at(checker: &str, time_ns: u64, index: u64, what: String) -> Anomaly {
        Anomaly {
            checker: checker.into(),
            time_s: Some(time_ns as f64 / 1e9),
            history_index: Some(index),
            what,
        }
    }

    /// Evidence with no time: named, undated.
    fn undated(checker: &str, what: String) -> Anomaly {
        Anomaly {
            checker: checker.into(),
            time_s: None,
            history_index: None,
            what,
        }
    }

    /// Dated by a history event when there is one, else undated.
    fn by(checker: &str, event: Option<&crate::history::Event>, what: String) -> Anomaly {
        match event {
            Some(e) => Anomaly::at(checker, e.time, e.index, what),
            None => Anomaly::undated(checker, what),
        }
    }

    /// One line for a terminal: `12.4 s into the run (linearizability: ...)`.
    pub fn line(&self) -> String {
        match self.time_s {
            Some(t) => format!("{t:.1} s into the run ({}: {})", self.checker, self.what),
            None => format!("time unknown ({}: {})", self.checker, self.what),
        }
    }
}

/// The earliest of several anomalies: any dated one before any undated one.
pub fn earliest(all: impl IntoIterator<Item = Anomaly>) -> Option<Anomaly> {
    all.into_iter().min_by(|a, b| {
        let key = |x: &Anomaly| x.time_s.unwrap_or(f64::INFINITY);
        key(a).total_cmp(&key(b))
    })
}

/// The invalid keys' evidence: of the operations that could come next and that no model
/// state accepts, the one invoked first.
pub fn linearizability(r: &LinearizabilityReport) -> Option<Anomaly> {
    let candidates = r
        .partitions
        .iter()
        .filter(|p| p.verdict == Verdict::Invalid)
        .flat_map(|p| {
            let ops = &p.ops;
            p.counterexample.iter().flat_map(move |c| {
                c.stuck.iter().filter_map(move |a| {
                    let op = ops.iter().find(|o| o.id == a.op)?;
                    let key = op
                        .key
                        .as_deref()
                        .map(|k| format!(" of {k}"))
                        .unwrap_or_default();
                    Some(Anomaly::at(
                        "linearizability",
                        op.call,
                        op.invoke_index,
                        format!("{}{key} by process {}: {}", op.f, op.process, a.reason),
                    ))
                })
            })
        });
    earliest(candidates)
}

/// A lost or stale element dates from its add's acknowledgement (the promise later
/// broken); an unexpected one from the first read that showed it.
pub fn set(r: &SetReport, history: &History) -> Option<Anomaly> {
    if r.verdict != Verdict::Invalid {
        return None;
    }
    let broken: BTreeSet<i64> = r
        .lost
        .elements
        .iter()
        .chain(&r.stale.elements)
        .copied()
        .collect();
    let unexpected: BTreeSet<i64> = r.unexpected.elements.iter().copied().collect();
    let mut found = Vec::new();
    for e in history.client_events() {
        if e.kind != EventType::Ok {
            continue;
        }
        if e.f == "add" {
            if let Some(x) = e.value.as_i64().filter(|x| broken.contains(x)) {
                let how = if r.lost.elements.contains(&x) {
                    "lost"
                } else {
                    "missed by a later read"
                };
                found.push(Anomaly::at(
                    "set",
                    e.time,
                    e.index,
                    format!("add {x} acknowledged, then {how}"),
                ));
            }
        } else if e.f == "read" {
            let shown = e.value.as_array().into_iter().flatten();
            if let Some(x) = shown
                .filter_map(|v| v.as_i64())
                .find(|x| unexpected.contains(x))
            {
                found.push(Anomaly::at(
                    "set",
                    e.time,
                    e.index,
                    format!("read shows {x}, which no add could have written"),
                ));
            }
        }
        if !found.is_empty() {
            // Events are in time order: the first one found is the earliest.
            break;
        }
    }
    earliest(found).or_else(|| undated("set", r.reasons.first()))
}

/// The first read (in history order, which is time order) that showed a wrong total, a
/// negative balance or a missing account.
pub fn bank(r: &BankReport) -> Option<Anomaly> {
    if r.verdict != Verdict::Invalid {
        return None;
    }
    let first = r.bad_reads.first()?;
    let mut what = format!("a read of the balances summed to {}", first.total);
    if first.total != r.expected_total {
        what.push_str(&format!(", not {}", r.expected_total));
    }
    if let Some((a, b)) = first.negative.iter().next() {
        what.push_str(&format!("; {a} held {b}"));
    }
    if !first.missing.is_empty() {
        what.push_str(&format!("; missing {}", first.missing.join(", ")));
    }
    Some(Anomaly::at("bank", first.time, first.index, what))
}

/// A missing write dates from its acknowledgement; a divergence at index `i` from the first
/// acknowledgement of an update committed at or beyond `i` (by then the diverging prefix
/// was committed); a lost vote from the restart that read the node's state back; a broken
/// promise from the node's own timestamp, but only given `clock_origin_ms`, the nodes'
/// clock at the history's time 0 (known when they run on this machine without clock
/// faults, or simulated). Two leaders or a double vote have no time in the history.
pub fn agreement(
    r: &AgreementReport,
    history: &History,
    clock_origin_ms: Option<u64>,
) -> Option<Anomaly> {
    if r.verdict != Verdict::Invalid {
        return None;
    }
    let mut found = Vec::new();
    for m in &r.missing_writes {
        if let Some(e) = history.events.get(m.history_index as usize) {
            let key = m
                .key
                .as_deref()
                .map(|k| format!(" of {k}"))
                .unwrap_or_default();
            found.push(Anomaly::at(
                "agreement",
                e.time,
                e.index,
                format!(
                    "acknowledged {}{key} = {} is in no committed log",
                    m.f, m.value
                ),
            ));
        }
    }
    let divergences = r
        .divergence
        .iter()
        .map(|d| (d.index, &d.node_a, &d.node_b))
        .chain(
            r.prefix_divergence
                .iter()
                .map(|d| (d.index, &d.node_a, &d.node_b)),
        );
    for (index, a, b) in divergences {
        let what = format!("{a} and {b} committed different entries at index {index}");
        let first_ack = history
            .client_events()
            .find(|e| e.kind == EventType::Ok && e.committed.is_some_and(|c| c.index >= index));
        found.push(Anomaly::by("agreement", first_ack, what));
    }
    for d in &r.duplicate_leaders {
        let what = format!("{} all led term {}", d.nodes.join(", "), d.term);
        found.push(Anomaly::undated("agreement", what));
    }
    let by_clock = r
        .broken_promises
        .iter()
        .map(|p| (p.time_ms, p.describe()))
        .chain(r.split_executions.iter().map(|x| (x.time_ms, x.describe())));
    for (time_ms, what) in by_clock {
        let at = clock_origin_ms
            .zip(time_ms)
            .and_then(|(o, t)| t.checked_sub(o));
        found.push(Anomaly {
            checker: "agreement".into(),
            time_s: at.map(|ms| ms as f64 / 1e3),
            history_index: None,
            what,
        });
    }
    for v in &r.lost_votes {
        let restart = nth_restart(history, &v.node, v.restart);
        found.push(Anomaly::by("agreement", restart, v.describe()));
    }
    for v in &r.double_votes {
        let what = format!(
            "{} voted for {} in term {}",
            v.node,
            v.candidates.join(" and "),
            v.term
        );
        found.push(Anomaly::undated("agreement", what));
    }
    earliest(found)
}

/// The nemesis's `n`-th `restart` of `node` (1-based), whose value lists the nodes
/// restarted.
fn nth_restart<'a>(history: &'a History, node: &str, n: u64) -> Option<&'a crate::history::Event> {
    let n = usize::try_from(n).ok()?.checked_sub(1)?;
    history
        .events
        .iter()
        .filter(|e| e.process.is_nemesis() && e.f == "restart")
        .filter(|e| {
            e.value
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(node)))
        })
        .nth(n)
}

fn undated(checker: &str, what: Option<&String>) -> Option<Anomaly> {
    what.map(|w| Anomaly::undated(checker, w.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Event;
    use crate::linear::{CheckOptions, check};
    use crate::model::ModelSpec;
    use serde_json::{Value, json};

    fn ev(index: u64, ms: u64, kind: EventType, p: u64, f: &str, key: &str, v: Value) -> Event {
        serde_json::from_value(json!({
            "index": index, "time": ms * 1_000_000, "type": kind.as_str(),
            "process": p, "f": f, "key": key, "value": v,
        }))
        .unwrap()
    }

    /// Two keys: k1 goes wrong at 5 s (a read of a value never written), k2 at 9 s.
    fn two_stale_keys() -> History {
        use EventType::*;
        History::new(vec![
            ev(0, 1000, Invoke, 0, "write", "k1", json!(1)),
            ev(1, 1100, Ok, 0, "write", "k1", json!(1)),
            ev(2, 1200, Invoke, 0, "write", "k2", json!(1)),
            ev(3, 1300, Ok, 0, "write", "k2", json!(1)),
            ev(4, 5000, Invoke, 1, "read", "k1", Value::Null),
            ev(5, 5100, Ok, 1, "read", "k1", json!(7)),
            ev(6, 9000, Invoke, 1, "read", "k2", Value::Null),
            ev(7, 9100, Ok, 1, "read", "k2", json!(8)),
        ])
    }

    #[test]
    fn the_earliest_stuck_operation_of_any_key_dates_a_non_linearizable_history() {
        let h = two_stale_keys();
        let r = check(
            &h,
            &ModelSpec::Kv {
                initial: Value::Null,
            },
            &CheckOptions::default(),
        );
        assert_eq!(r.verdict, Verdict::Invalid);
        let a = linearizability(&r).expect("an anomaly");
        assert_eq!(a.time_s, Some(5.0), "{a:?}");
        assert_eq!(a.history_index, Some(4));
        assert!(a.what.starts_with("read of k1 by process 1"), "{}", a.what);
        assert!(
            a.line()
                .starts_with("5.0 s into the run (linearizability: read of k1")
        );
    }

    #[test]
    fn a_valid_history_has_no_anomaly() {
        use EventType::*;
        let h = History::new(vec![
            ev(0, 1000, Invoke, 0, "write", "k1", json!(1)),
            ev(1, 1100, Ok, 0, "write", "k1", json!(1)),
            ev(2, 5000, Invoke, 1, "read", "k1", Value::Null),
            ev(3, 5100, Ok, 1, "read", "k1", json!(1)),
        ]);
        let r = check(
            &h,
            &ModelSpec::Kv {
                initial: Value::Null,
            },
            &CheckOptions::default(),
        );
        assert_eq!(linearizability(&r), None);
    }

    #[test]
    fn a_lost_add_dates_from_its_acknowledgement() {
        use EventType::*;
        let h = History::new(vec![
            ev(0, 1000, Invoke, 0, "add", "s", json!(1)),
            ev(1, 1100, Ok, 0, "add", "s", json!(1)),
            ev(2, 2000, Invoke, 0, "add", "s", json!(2)),
            ev(3, 2100, Ok, 0, "add", "s", json!(2)),
            ev(4, 9000, Invoke, 1, "read", "s", Value::Null),
            ev(5, 9100, Ok, 1, "read", "s", json!([1])),
        ]);
        let r = crate::set::check(&h);
        assert_eq!(r.verdict, Verdict::Invalid, "{r:?}");
        let a = set(&r, &h).expect("an anomaly");
        assert_eq!((a.time_s, a.history_index), (Some(2.1), Some(3)), "{a:?}");
        assert!(a.what.contains("add 2"), "{}", a.what);
    }

    #[test]
    fn the_earliest_dated_anomaly_wins_and_undated_ones_come_last() {
        let dated = |t: f64| Anomaly {
            checker: "x".into(),
            time_s: Some(t),
            history_index: None,
            what: String::new(),
        };
        let undated = Anomaly {
            time_s: None,
            ..dated(0.0)
        };
        let e = earliest([undated.clone(), dated(7.0), dated(3.0)]).unwrap();
        assert_eq!(e.time_s, Some(3.0));
        assert_eq!(earliest([undated.clone()]), Some(undated));
        assert_eq!(earliest([]), None);
    }
}
