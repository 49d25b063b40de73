//! The checkers of each workload, over a recorded history (so `sunder analyze` can run
//! them again). Pure and synchronous.

use crate::config::Workload;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use sunder_checker::anomaly::{self, Anomaly};
use sunder_checker::linear::{self, CheckOptions};
use sunder_checker::model::ModelSpec;
use sunder_checker::{Event, EventType, History, Process, Verdict, set};

/// One checker's verdict, with the fields of the harness' `CheckerResult`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub verdict: Verdict,
    pub reason: String,
    pub details: Value,
}

pub(crate) fn result(name: &str, verdict: Verdict, reason: String, details: Value) -> CheckResult {
    CheckResult {
        name: name.into(),
        verdict,
        reason,
        details,
    }
}

/// The usual ending of a checker over final reads: invalid on any `reasons`, else unknown
/// when a node gave no final read, else valid with `valid`.
fn judged(
    name: &str,
    reasons: Vec<String>,
    missing: &[String],
    valid: String,
    details: Value,
) -> CheckResult {
    if !reasons.is_empty() {
        return result(name, Verdict::Invalid, reasons.join("; "), details);
    }
    if !missing.is_empty() {
        let why = format!(
            "no final read from {}: the evidence is incomplete",
            missing.join(", ")
        );
        return result(name, Verdict::Unknown, why, details);
    }
    result(name, Verdict::Valid, valid, details)
}

/// Each client operation as (invoke, completion if any).
pub(crate) fn operations(h: &History) -> Vec<(&Event, Option<&Event>)> {
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

pub(crate) fn ok_of(c: Option<&Event>) -> Option<&Event> {
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

pub(crate) fn missing_nodes(nodes: &[String], reads: &BTreeMap<String, Value>) -> Vec<String> {
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
    judged(
        "broadcast",
        reasons,
        &missing,
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
    let reasons: Vec<String> = if bad.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "final reads outside [{lower}, {upper}] (acknowledged, attempted adds): {}",
            bad.join(", ")
        )]
    };
    judged(
        "g-counter",
        reasons,
        &missing,
        format!("every final read within [{lower}, {upper}]"),
        details,
    )
}

/// The earliest anomaly of a checker, dated by a history event, for `details.first_anomaly`
/// (the harness' `first_anomaly_of` reads it).
pub(crate) fn anomaly_at(checker: &str, e: &Event, what: String) -> Anomaly {
    Anomaly {
        checker: checker.into(),
        time_s: Some(e.time as f64 / 1e9),
        history_index: Some(e.index),
        what,
    }
}

/// g-set through sunder's set checker (Jepsen's set-full semantics): the final reads are
/// the nodes' last reads, so a node's mid-run reads count only when it has an ok final
/// read (a lone mid-run read would make a lost element out of one not yet gossiped).
fn g_set(h: &History, nodes: &[String]) -> CheckResult {
    let reads = final_reads(h);
    let events: Vec<Event> = h
        .events
        .iter()
        .filter(|e| e.f != "read" || e.node.as_ref().is_some_and(|n| reads.contains_key(n)))
        .map(|e| {
            let mut e = e.clone();
            if e.f == "final-read" {
                e.f = "read".into();
            }
            e
        })
        .collect();
    let as_set = History::new(events);
    let report = set::check(&as_set);
    let missing = missing_nodes(nodes, &reads);
    let counts = format!(
        "acknowledged {}, lost {}, unexpected {}, never read {}, stale {}",
        report.acknowledged,
        report.lost.count,
        report.unexpected.count,
        report.never_read.count,
        report.stale.count
    );
    let first = anomaly::set(&report, &as_set).map(|mut a| {
        a.checker = "g-set".into();
        a
    });
    let mut details = serde_json::to_value(&report).unwrap_or(Value::Null);
    details["no_final_read"] = json!(missing);
    details["first_anomaly"] = json!(first);
    let (verdict, reason) = match report.verdict {
        Verdict::Invalid => (
            Verdict::Invalid,
            format!("{} ({counts})", report.reasons.join("; ")),
        ),
        _ if !missing.is_empty() => (
            Verdict::Unknown,
            format!(
                "no final read from {}: the evidence is incomplete ({counts})",
                missing.join(", ")
            ),
        ),
        Verdict::Unknown => (
            Verdict::Unknown,
            format!("{} ({counts})", report.reasons.join("; ")),
        ),
        Verdict::Valid => (
            Verdict::Valid,
            format!("every acknowledged add in every final read ({counts})"),
        ),
    };
    result("g-set", verdict, reason, details)
}

/// pn-counter: after quiescence each node's final read lies between the sum of the
/// acknowledged adds plus every indeterminate negative one and that sum plus every
/// indeterminate positive one. Before it, a read may be stale but is still the sum of some
/// subset of the adds invoked before it completed: outside that range it counted
/// something twice or from nowhere.
fn pn_counter(h: &History, nodes: &[String]) -> CheckResult {
    let ops = operations(h);
    let (mut ok_sum, mut neg, mut pos) = (0i128, 0i128, 0i128);
    for (inv, c) in &ops {
        if inv.f != "add" {
            continue;
        }
        let d = i128::from(inv.value.as_i64().unwrap_or(0));
        match c.map(|c| c.kind) {
            Some(EventType::Ok) => ok_sum += d,
            Some(EventType::Fail) => {}
            _ if d < 0 => neg += d,
            _ => pos += d,
        }
    }
    let (lower, upper) = (ok_sum + neg, ok_sum + pos);
    let value = |v: &Value| v.as_i64().map(i128::from);
    let reads = final_reads(h);
    let mut bad = Vec::new();
    let mut first: Option<Anomaly> = None;
    for (inv, c) in &ops {
        if inv.f != "final-read" {
            continue;
        }
        if let (Some(c), Some(node)) = (ok_of(*c), inv.node.as_ref())
            && reads.get(node) == Some(&c.value)
            && value(&c.value).is_none_or(|x| x < lower || x > upper)
        {
            bad.push(format!("{node} read {}", c.value));
            first.get_or_insert(anomaly_at(
                "pn-counter",
                c,
                format!("final read {} outside [{lower}, {upper}]", c.value),
            ));
        }
    }
    // Mid-run reads: each against the adds invoked before it completed (by index).
    let mut adds: Vec<(u64, i128)> = ops
        .iter()
        .filter(|(inv, c)| inv.f == "add" && c.is_none_or(|c| c.kind != EventType::Fail))
        .map(|(inv, _)| (inv.index, i128::from(inv.value.as_i64().unwrap_or(0))))
        .collect();
    adds.sort();
    let mut wild = Vec::new();
    for (inv, c) in &ops {
        let Some(c) = ok_of(*c).filter(|_| inv.f == "read") else {
            continue;
        };
        let before = adds.partition_point(|(i, _)| *i < c.index);
        let (lo, hi) =
            adds[..before].iter().fold(
                (0, 0),
                |(lo, hi), (_, d)| {
                    if *d < 0 { (lo + d, hi) } else { (lo, hi + d) }
                },
            );
        if value(&c.value).is_none_or(|x| x < lo || x > hi) {
            wild.push(json!({"index": c.index, "read": c.value, "possible": [lo, hi]}));
            let a = anomaly_at(
                "pn-counter",
                c,
                format!(
                    "read {} outside [{lo}, {hi}], the sums of the adds before it",
                    c.value
                ),
            );
            if first.as_ref().is_none_or(|f| f.time_s > a.time_s) {
                first = Some(a);
            }
        }
    }
    let missing = missing_nodes(nodes, &reads);
    let details = json!({
        "acknowledged_sum": ok_sum, "indeterminate_negative": neg,
        "indeterminate_positive": pos, "final_reads": reads, "no_final_read": missing,
        "impossible_reads": wild.iter().take(20).collect::<Vec<_>>(),
        "first_anomaly": first,
    });
    let mut reasons = Vec::new();
    if !bad.is_empty() {
        reasons.push(format!(
            "final reads outside [{lower}, {upper}] (acknowledged adds with the \
             indeterminate negative ones, with the positive ones): {}",
            bad.join(", ")
        ));
    }
    if !wild.is_empty() {
        reasons.push(format!(
            "{} reads no subset of the adds invoked before them can sum to, first: {}",
            wild.len(),
            wild[0]
        ));
    }
    judged(
        "pn-counter",
        reasons,
        &missing,
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
        Workload::GSet => g_set(h, nodes),
        Workload::PnCounter => pn_counter(h, nodes),
        Workload::Kafka => crate::kafka_checker::check(h, nodes),
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

    #[test]
    fn g_set_counts_like_set_full_and_catches_lost_and_unexpected() {
        use EventType::*;
        let mk = |n1: Value, n2: Value| {
            History::new(vec![
                ev(0, Invoke, 0, "add", json!(1), Some("n1")),
                ev(1, Ok, 0, "add", json!(1), Some("n1")),
                ev(2, Invoke, 0, "add", json!(2), Some("n1")),
                ev(3, Info, 0, "add", json!(2), Some("n1")),
                ev(4, Invoke, 1, "read", Value::Null, Some("n2")),
                ev(5, Ok, 1, "read", json!([]), Some("n2")),
                ev(6, Invoke, 5, "final-read", Value::Null, Some("n1")),
                ev(7, Ok, 5, "final-read", n1, Some("n1")),
                ev(8, Invoke, 6, "final-read", Value::Null, Some("n2")),
                ev(9, Ok, 6, "final-read", n2, Some("n2")),
            ])
        };
        let r =
            |a, b| check(Workload::GSet, &mk(a, b), &nodes(), Duration::from_secs(1)).0[0].clone();
        let ok = r(json!([1, 2]), json!([1, 2]));
        assert_eq!(ok.verdict, Verdict::Valid, "{}", ok.reason);
        assert!(
            ok.reason.contains("acknowledged 1, lost 0"),
            "{}",
            ok.reason
        );
        let lost = r(json!([1]), json!([]));
        assert_eq!(lost.verdict, Verdict::Invalid, "{}", lost.reason);
        assert!(lost.reason.contains("lost 1"), "{}", lost.reason);
        assert!(lost.details["first_anomaly"]["what"].is_string());
        let unexpected = r(json!([1, 7]), json!([1, 7]));
        assert_eq!(unexpected.verdict, Verdict::Invalid);
        assert!(
            unexpected.reason.contains("unexpected 1"),
            "{}",
            unexpected.reason
        );
        // n2's mid-run read alone is no final read: unknown, not lost.
        let mut h = mk(json!([1]), json!([1])).events;
        h.truncate(8);
        let r = check(
            Workload::GSet,
            &History::new(h),
            &nodes(),
            Duration::from_secs(1),
        )
        .0;
        assert_eq!(r[0].verdict, Verdict::Unknown, "{}", r[0].reason);
    }

    #[test]
    fn pn_counter_bounds_use_the_sign_of_indeterminate_adds() {
        use EventType::*;
        let mk = |mid: i64, a: i64, b: i64| {
            History::new(vec![
                ev(0, Invoke, 0, "add", json!(5), Some("n1")),
                ev(1, Ok, 0, "add", json!(5), Some("n1")),
                ev(2, Invoke, 0, "add", json!(-3), Some("n1")),
                ev(3, Info, 0, "add", json!(-3), Some("n1")),
                ev(4, Invoke, 1, "add", json!(4), Some("n2")),
                ev(5, Info, 1, "add", json!(4), Some("n2")),
                ev(6, Invoke, 2, "add", json!(-100), Some("n2")),
                ev(7, Fail, 2, "add", json!(-100), Some("n2")),
                ev(8, Invoke, 3, "read", Value::Null, Some("n2")),
                ev(9, Ok, 3, "read", json!(mid), Some("n2")),
                ev(10, Invoke, 5, "final-read", Value::Null, Some("n1")),
                ev(11, Ok, 5, "final-read", json!(a), Some("n1")),
                ev(12, Invoke, 6, "final-read", Value::Null, Some("n2")),
                ev(13, Ok, 6, "final-read", json!(b), Some("n2")),
            ])
        };
        let v = |mid, a, b| {
            check(
                Workload::PnCounter,
                &mk(mid, a, b),
                &nodes(),
                Duration::from_secs(1),
            )
            .0[0]
                .verdict
        };
        // Final reads within [5 - 3, 5 + 4]; a stale mid-run read of 0 is fine.
        assert_eq!(v(0, 2, 9), Verdict::Valid);
        assert_eq!(v(-3, 5, 6), Verdict::Valid);
        assert_eq!(v(0, 1, 9), Verdict::Invalid);
        assert_eq!(v(0, 2, 10), Verdict::Invalid);
        // Mid-run, no subset of {5, -3, 4} sums above 9 or below -3: counted twice.
        assert_eq!(v(10, 5, 5), Verdict::Invalid);
        assert_eq!(v(-4, 5, 5), Verdict::Invalid);
    }
}
