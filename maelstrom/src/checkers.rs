//! The checkers of each workload, over a recorded history (so `sunder analyze` can run
//! them again). Pure and synchronous.

use crate::config::Workload;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use sunder_checker::linear::{self, CheckOptions};
use sunder_checker::model::ModelSpec;
use sunder_checker::{Event, EventType, History, Process, Verdict};

/// One checker's verdict, with the fields of the harness' `CheckerResult`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub verdict: Verdict,
    pub reason: String,
    pub details: Value,
}

fn result(name: &str, verdict: Verdict, reason: String, details: Value) -> CheckResult {
    CheckResult {
        name: name.into(),
        verdict,
        reason,
        details,
    }
}

/// Each client operation as (invoke, completion if any).
fn operations(h: &History) -> Vec<(&Event, Option<&Event>)> {
    let mut open: HashMap<Process, usize> = HashMap::new();
    let mut out: Vec<(&Event, Option<&Event>)> = Vec::new();
    for e in h.client_events() {
        if e.kind == EventType::Invoke {
            open.insert(e.process, out.len());
            out.push((e, None));
        } else if let Some(i) = open.remove(&e.process) {
            out[i].1 = Some(e);
        }
    }
    out
}

fn ok_of(c: Option<&Event>) -> Option<&Event> {
    c.filter(|c| c.kind == EventType::Ok)
}

fn echo(h: &History) -> CheckResult {
    let mut wrong = Vec::new();
    let mut n = 0;
    for (inv, c) in operations(h) {
        if let Some(c) = ok_of(c) {
            n += 1;
            if c.value != inv.value {
                wrong.push(json!({"sent": inv.value, "echoed": c.value, "index": c.index}));
            }
        }
    }
    match wrong.first() {
        None => result(
            "echo",
            Verdict::Valid,
            format!("{n} echoes, each what was sent"),
            Value::Null,
        ),
        Some(w) => result(
            "echo",
            Verdict::Invalid,
            format!(
                "{} of {n} echoes differ from what was sent, first: sent {} got {}",
                wrong.len(),
                w["sent"],
                w["echoed"]
            ),
            json!({"wrong": wrong.iter().take(20).collect::<Vec<_>>()}),
        ),
    }
}

fn unique_ids(h: &History) -> CheckResult {
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut dups: Vec<Value> = Vec::new();
    let mut n = 0;
    for (_, c) in operations(h) {
        if let Some(c) = ok_of(c) {
            n += 1;
            let id = c.value.to_string();
            if let Some(first) = seen.insert(id.clone(), c.index) {
                dups.push(json!({"id": c.value, "first_index": first, "again_index": c.index}));
            }
        }
    }
    match dups.first() {
        None => result(
            "unique-ids",
            Verdict::Valid,
            format!("{n} ids, all distinct"),
            Value::Null,
        ),
        Some(d) => result(
            "unique-ids",
            Verdict::Invalid,
            format!(
                "{} duplicate ids among {n}, first: {} (events {} and {})",
                dups.len(),
                d["id"],
                d["first_index"],
                d["again_index"]
            ),
            json!({"duplicates": dups.iter().take(20).collect::<Vec<_>>()}),
        ),
    }
}

/// The last ok final read of each node (the node the event names).
fn final_reads(h: &History) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (inv, c) in operations(h) {
        if inv.f == "final-read" {
            if let (Some(c), Some(node)) = (ok_of(c), inv.node.as_ref()) {
                out.insert(node.clone(), c.value.clone());
            }
        }
    }
    out
}

fn missing_nodes(nodes: &[String], reads: &BTreeMap<String, Value>) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| !reads.contains_key(*n))
        .cloned()
        .collect()
}

fn broadcast(h: &History, nodes: &[String]) -> CheckResult {
    let mut acked = BTreeSet::new();
    let mut attempted = BTreeSet::new();
    for (inv, c) in operations(h) {
        if inv.f == "broadcast" {
            let v = inv.value.to_string();
            if c.is_none_or(|c| c.kind != EventType::Fail) {
                attempted.insert(v.clone());
            }
            if ok_of(c).is_some() {
                acked.insert(v);
            }
        }
    }
    let reads = final_reads(h);
    let mut lost: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut unexpected: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (node, read) in &reads {
        let got: BTreeSet<String> = read
            .as_array()
            .map(|a| a.iter().map(Value::to_string).collect())
            .unwrap_or_default();
        let l: Vec<Value> = acked
            .difference(&got)
            .map(|v| serde_json::from_str(v).unwrap_or(Value::Null))
            .collect();
        let u: Vec<Value> = got
            .difference(&attempted)
            .map(|v| serde_json::from_str(v).unwrap_or(Value::Null))
            .collect();
        if !l.is_empty() {
            let mut l = l;
            // Numbers in numeric order for people (the sets compare JSON texts).
            l.sort_by(|a, b| {
                a.as_f64()
                    .partial_cmp(&b.as_f64())
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            lost.insert(node.clone(), l);
        }
        if !u.is_empty() {
            unexpected.insert(node.clone(), u);
        }
    }
    let missing = missing_nodes(nodes, &reads);
    let details = json!({"acknowledged": acked.len(), "attempted": attempted.len(), "lost": lost, "unexpected": unexpected, "no_final_read": missing});
    let mut reasons = Vec::new();
    for (node, l) in &lost {
        let shown: Vec<String> = l.iter().take(10).map(Value::to_string).collect();
        reasons.push(format!(
            "{node} lost {} acknowledged messages ({}{})",
            l.len(),
            shown.join(", "),
            if l.len() > 10 { ", ..." } else { "" }
        ));
    }
    for (node, u) in &unexpected {
        reasons.push(format!("{node} read {} messages never broadcast", u.len()));
    }
    if !reasons.is_empty() {
        return result("broadcast", Verdict::Invalid, reasons.join("; "), details);
    }
    if !missing.is_empty() {
        return result(
            "broadcast",
            Verdict::Unknown,
            format!(
                "no final read from {}: the evidence is incomplete",
                missing.join(", ")
            ),
            details,
        );
    }
    result(
        "broadcast",
        Verdict::Valid,
        format!(
            "{} acknowledged messages, all in every node's final read",
            acked.len()
        ),
        details,
    )
}

fn g_counter(h: &History, nodes: &[String]) -> CheckResult {
    let (mut lower, mut upper) = (0i128, 0i128);
    for (inv, c) in operations(h) {
        if inv.f == "add" {
            let d = i128::from(inv.value.as_u64().unwrap_or(0));
            if ok_of(c).is_some() {
                lower += d;
            }
            if c.is_none_or(|c| c.kind != EventType::Fail) {
                upper += d;
            }
        }
    }
    let reads = final_reads(h);
    let mut bad = Vec::new();
    for (node, v) in &reads {
        let x = v.as_i64().map(i128::from).or(v.as_u64().map(i128::from));
        if x.is_none_or(|x| x < lower || x > upper) {
            bad.push(format!("{node} read {v}"));
        }
    }
    let missing = missing_nodes(nodes, &reads);
    let details = json!({"acknowledged_sum": lower, "attempted_sum": upper, "final_reads": reads, "no_final_read": missing});
    if !bad.is_empty() {
        return result(
            "g-counter",
            Verdict::Invalid,
            format!(
                "final reads outside [{lower}, {upper}] (acknowledged, attempted adds): {}",
                bad.join(", ")
            ),
            details,
        );
    }
    if !missing.is_empty() {
        return result(
            "g-counter",
            Verdict::Unknown,
            format!(
                "no final read from {}: the evidence is incomplete",
                missing.join(", ")
            ),
            details,
        );
    }
    result(
        "g-counter",
        Verdict::Valid,
        format!("every final read within [{lower}, {upper}]"),
        details,
    )
}

fn lin_kv(h: &History, budget: Duration) -> (CheckResult, Option<Value>) {
    let opts = CheckOptions {
        timeout: Some(budget),
        ..CheckOptions::default()
    };
    let r = linear::check(
        h,
        &ModelSpec::Kv {
            initial: Value::Null,
        },
        &opts,
    );
    let cex = r
        .partitions
        .iter()
        .find(|p| p.verdict == Verdict::Invalid)
        .map(|p| json!({"key": p.key, "summary": r.summary, "counterexample": p.counterexample}));
    (
        result(
            "linearizability",
            r.verdict,
            r.summary.clone(),
            serde_json::to_value(&r).unwrap_or(Value::Null),
        ),
        cex,
    )
}

/// A history in which nothing succeeded proves nothing.
fn availability(h: &History) -> CheckResult {
    let ok = h
        .client_events()
        .filter(|e| e.kind == EventType::Ok)
        .count();
    if ok == 0 {
        result(
            "availability",
            Verdict::Unknown,
            "no client operation succeeded".into(),
            json!({"ok": 0}),
        )
    } else {
        result(
            "availability",
            Verdict::Valid,
            format!("{ok} client operations succeeded"),
            json!({"ok": ok}),
        )
    }
}

/// Every checker of `workload`, and the linearizability counterexample if there is one.
pub fn check(
    workload: Workload,
    h: &History,
    nodes: &[String],
    budget: Duration,
) -> (Vec<CheckResult>, Option<Value>) {
    let mut cex = None;
    let first = match workload {
        Workload::Echo => echo(h),
        Workload::UniqueIds => unique_ids(h),
        Workload::Broadcast => broadcast(h, nodes),
        Workload::GCounter => g_counter(h, nodes),
        Workload::LinKv => {
            let (r, c) = lin_kv(h, budget);
            cex = c;
            r
        }
    };
    (vec![first, availability(h)], cex)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(index: u64, kind: EventType, p: u64, f: &str, value: Value, node: Option<&str>) -> Event {
        Event {
            index,
            time: index * 10,
            kind,
            process: Process::Client(p),
            f: f.into(),
            key: None,
            value,
            error: None,
            node: node.map(str::to_string),
            committed: None,
        }
    }

    fn nodes() -> Vec<String> {
        vec!["n1".into(), "n2".into()]
    }

    #[test]
    fn a_lost_acknowledged_broadcast_is_invalid_and_a_missing_read_unknown() {
        use EventType::*;
        let mut e = vec![
            ev(0, Invoke, 0, "broadcast", json!(1), Some("n1")),
            ev(1, Ok, 0, "broadcast", json!(1), Some("n1")),
            ev(2, Invoke, 0, "broadcast", json!(2), Some("n1")),
            ev(3, Info, 0, "broadcast", json!(2), Some("n1")),
            ev(4, Invoke, 5, "final-read", Value::Null, Some("n1")),
            ev(5, Ok, 5, "final-read", json!([1, 2]), Some("n1")),
        ];
        let (r, _) = check(
            Workload::Broadcast,
            &History::new(e.clone()),
            &nodes(),
            Duration::from_secs(1),
        );
        assert_eq!(r[0].verdict, Verdict::Unknown, "{}", r[0].reason);
        assert!(r[0].reason.contains("n2"));
        e.push(ev(6, Invoke, 6, "final-read", Value::Null, Some("n2")));
        e.push(ev(7, Ok, 6, "final-read", json!([2]), Some("n2")));
        let (r, _) = check(
            Workload::Broadcast,
            &History::new(e.clone()),
            &nodes(),
            Duration::from_secs(1),
        );
        assert_eq!(r[0].verdict, Verdict::Invalid);
        assert!(r[0].reason.contains("n2 lost 1"), "{}", r[0].reason);
        e[7].value = json!([1, 2]);
        let (r, _) = check(
            Workload::Broadcast,
            &History::new(e.clone()),
            &nodes(),
            Duration::from_secs(1),
        );
        assert_eq!(r[0].verdict, Verdict::Valid, "{}", r[0].reason);
        e[7].value = json!([1, 2, 99]);
        let (r, _) = check(
            Workload::Broadcast,
            &History::new(e),
            &nodes(),
            Duration::from_secs(1),
        );
        assert_eq!(r[0].verdict, Verdict::Invalid);
        assert!(r[0].reason.contains("never broadcast"));
    }

    #[test]
    fn a_counter_outside_acknowledged_and_attempted_is_invalid() {
        use EventType::*;
        let mk = |a: i64, b: i64| {
            History::new(vec![
                ev(0, Invoke, 0, "add", json!(3), Some("n1")),
                ev(1, Ok, 0, "add", json!(3), Some("n1")),
                ev(2, Invoke, 0, "add", json!(4), Some("n1")),
                ev(3, Info, 0, "add", json!(4), Some("n1")),
                ev(4, Invoke, 1, "add", json!(100), Some("n1")),
                ev(5, Fail, 1, "add", json!(100), Some("n1")),
                ev(6, Invoke, 5, "final-read", Value::Null, Some("n1")),
                ev(7, Ok, 5, "final-read", json!(a), Some("n1")),
                ev(8, Invoke, 6, "final-read", Value::Null, Some("n2")),
                ev(9, Ok, 6, "final-read", json!(b), Some("n2")),
            ])
        };
        let v = |a, b| {
            check(
                Workload::GCounter,
                &mk(a, b),
                &nodes(),
                Duration::from_secs(1),
            )
            .0[0]
                .verdict
        };
        assert_eq!(v(3, 7), Verdict::Valid);
        assert_eq!(v(2, 7), Verdict::Invalid);
        assert_eq!(v(3, 8), Verdict::Invalid);
    }

    #[test]
    fn echo_and_unique_ids_catch_their_faults() {
        use EventType::*;
        let h = History::new(vec![
            ev(0, Invoke, 0, "echo", json!("a"), None),
            ev(1, Ok, 0, "echo", json!("b"), None),
        ]);
        assert_eq!(
            check(Workload::Echo, &h, &nodes(), Duration::from_secs(1)).0[0].verdict,
            Verdict::Invalid
        );
        let h = History::new(vec![
            ev(0, Invoke, 0, "generate", Value::Null, None),
            ev(1, Invoke, 1, "generate", Value::Null, None),
            ev(2, Ok, 0, "generate", json!(1), None),
            ev(3, Ok, 1, "generate", json!(1), None),
        ]);
        let r = check(Workload::UniqueIds, &h, &nodes(), Duration::from_secs(1)).0;
        assert_eq!(r[0].verdict, Verdict::Invalid);
        assert_eq!(r[1].verdict, Verdict::Valid);
    }
}
