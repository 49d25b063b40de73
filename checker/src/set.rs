//! The set checker: were acknowledged adds kept, and did nothing appear from nowhere?
//!
//! ```text
//!  add invoke/ok/fail/info ──► per element: acknowledged | failed | indeterminate
//!  ok reads ─────────────────► per node: its last ok read is its final read
//!                               │
//!                               ├─ lost:       acknowledged, missing from a node's final read
//!                               ├─ unexpected: read, never attempted
//!                               ├─ failed_present: read, though its add definitely failed
//!                               ├─ recovered:  indeterminate, yet present in a final read
//!                               ├─ stale:      missed by a read begun after its ack, seen later
//!                               ├─ never_read: acknowledged, in no read at all
//!                               └─ disagreements between nodes' final reads
//! ```
//!
//! Invalid if anything is lost, unexpected or failed-but-present, or if final reads on two
//! nodes differ. Unknown if a node that served the test has no final read, or if events
//! could not be understood (they are listed, never skipped). Indeterminate adds may be
//! present or absent: both are fine. Stale and never-read elements are reported but are
//! not violations on their own (Jepsen's set-full semantics without its linearizable flag).
//!
//! The history is taken to hold one set: every `add` and `read` event, whatever its key.
//! Elements are integers; a read's value is an array of them (`null` reads as empty).

use crate::history::{EventType, History, Process};
use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How many elements each list shows; counts are always exact.
pub const DISPLAY_CAP: usize = 32;

/// The node name under which reads that name no node are grouped.
pub const UNKNOWN_NODE: &str = "(no node)";

/// A set of elements as reported: the exact count and the smallest few, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Elements {
    pub count: usize,
    pub elements: Vec<i64>,
    /// True when `elements` shows fewer than `count`.
    pub truncated: bool,
}

impl Elements {
    fn of<'a>(set: impl IntoIterator<Item = &'a i64>) -> Self {
        let all: BTreeSet<i64> = set.into_iter().copied().collect();
        let elements: Vec<i64> = all.iter().copied().take(DISPLAY_CAP).collect();
        Elements {
            count: all.len(),
            truncated: elements.len() < all.len(),
            elements,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// One node's final read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRead {
    /// Index of the `ok` event of the node's last successful read; `None` when it has none.
    pub event: Option<u64>,
    /// How many elements that read held.
    pub size: Option<usize>,
    /// Acknowledged elements missing from this node's read.
    pub lost: Elements,
}

/// Two nodes whose final reads differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disagreement {
    pub a: String,
    pub b: String,
    pub only_in_a: Elements,
    pub only_in_b: Elements,
}

/// What the set checker found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetReport {
    pub verdict: Verdict,
    /// Distinct elements whose add was invoked.
    pub attempted: usize,
    pub acknowledged: usize,
    pub failed: usize,
    /// Adds that ended `info` or never completed.
    pub indeterminate: usize,
    pub lost: Elements,
    pub unexpected: Elements,
    pub failed_present: Elements,
    pub recovered: Elements,
    pub stale: Elements,
    pub never_read: Elements,
    /// Per node (every node a client event went to), its final read.
    pub final_reads: BTreeMap<String, NodeRead>,
    /// Each node whose final read differs from the first node's that has one.
    pub disagreements: Vec<Disagreement>,
    /// Events the checker could not understand, by index and why.
    pub malformed: Vec<String>,
    /// One line per reason the verdict is not valid.
    pub reasons: Vec<String>,
}

/// The attempts to add one element (normally one: generators never repeat an element).
#[derive(Debug, Clone, Copy, Default)]
struct Attempts {
    invoked: u32,
    ok: u32,
    failed: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddOutcome {
    Failed,
    Indeterminate,
    Acknowledged,
}

impl Attempts {
    /// Acknowledged if any attempt was; failed only if every attempt certainly did not happen.
    fn outcome(self) -> AddOutcome {
        if self.ok > 0 {
            AddOutcome::Acknowledged
        } else if self.failed == self.invoked {
            AddOutcome::Failed
        } else {
            AddOutcome::Indeterminate
        }
    }
}

struct Read {
    invoke: u64,
    complete: u64,
    node: String,
    elements: BTreeSet<i64>,
}

fn element(v: &Value) -> Option<i64> {
    v.as_i64()
}

fn read_elements(v: &Value) -> Option<BTreeSet<i64>> {
    match v {
        Value::Null => Some(BTreeSet::new()),
        Value::Array(items) => items.iter().map(element).collect(),
        _ => None,
    }
}

/// Checks a set history.
pub fn check(history: &History) -> SetReport {
    let mut malformed = Vec::new();
    // Per process, the invocation in flight: (index, f, element for adds).
    let mut open: HashMap<Process, (u64, &str, Option<i64>)> = HashMap::new();
    let mut attempts: BTreeMap<i64, Attempts> = BTreeMap::new();
    // Per acknowledged element, the index of its first ok.
    let mut acked_at: HashMap<i64, u64> = HashMap::new();
    let mut reads: Vec<Read> = Vec::new();
    let mut nodes: BTreeSet<String> = BTreeSet::new();

    for e in history.client_events() {
        if e.f != "add" && e.f != "read" {
            continue;
        }
        let node = e.node.clone().unwrap_or_else(|| UNKNOWN_NODE.to_string());
        nodes.insert(node.clone());
        if e.kind == EventType::Invoke {
            let el = if e.f == "add" {
                match element(&e.value) {
                    Some(x) => {
                        attempts.entry(x).or_default().invoked += 1;
                        Some(x)
                    }
                    None => {
                        malformed.push(format!(
                            "event {}: add of a non-integer {}",
                            e.index, e.value
                        ));
                        None
                    }
                }
            } else {
                None
            };
            if open
                .insert(e.process, (e.index, e.f.as_str(), el))
                .is_some()
            {
                malformed.push(format!(
                    "event {}: process {} invoked twice without completing",
                    e.index, e.process
                ));
            }
            continue;
        }
        let Some((invoke, f, el)) = open.remove(&e.process) else {
            malformed.push(format!(
                "event {}: {} completion without an invocation",
                e.index, e.kind
            ));
            continue;
        };
        if f != e.f {
            malformed.push(format!(
                "event {}: {} completes a {f} invocation (event {invoke})",
                e.index, e.f
            ));
            continue;
        }
        match (f, e.kind) {
            ("add", kind) => {
                let Some(x) = el else { continue };
                let a = attempts.get_mut(&x).expect("counted at invocation");
                match kind {
                    EventType::Ok => {
                        a.ok += 1;
                        acked_at.entry(x).or_insert(e.index);
                    }
                    EventType::Fail => a.failed += 1,
                    _ => {}
                }
            }
            ("read", EventType::Ok) => match read_elements(&e.value) {
                Some(elements) => reads.push(Read {
                    invoke,
                    complete: e.index,
                    node,
                    elements,
                }),
                None => malformed.push(format!(
                    "event {}: read of something not a set of integers: {}",
                    e.index, e.value
                )),
            },
            _ => {}
        }
    }
    let adds = attempts
        .into_iter()
        .map(|(x, a)| (x, a.outcome()))
        .collect();
    report(adds, acked_at, reads, nodes, malformed)
}

fn report(
    adds: BTreeMap<i64, AddOutcome>,
    acked_at: HashMap<i64, u64>,
    reads: Vec<Read>,
    nodes: BTreeSet<String>,
    malformed: Vec<String>,
) -> SetReport {
    let with = |o: AddOutcome| adds.iter().filter(move |(_, v)| **v == o).map(|(k, _)| *k);
    let acked: BTreeSet<i64> = with(AddOutcome::Acknowledged).collect();
    let failed: BTreeSet<i64> = with(AddOutcome::Failed).collect();
    let indeterminate: BTreeSet<i64> = with(AddOutcome::Indeterminate).collect();

    // Each node's last successful read (reads are in completion order).
    let mut last: BTreeMap<&str, &Read> = BTreeMap::new();
    for r in &reads {
        last.insert(r.node.as_str(), r);
    }
    let mut final_reads = BTreeMap::new();
    let mut lost = BTreeSet::new();
    for node in &nodes {
        let nr = match last.get(node.as_str()) {
            Some(r) => {
                let missing: Vec<&i64> = acked.difference(&r.elements).collect();
                lost.extend(missing.iter().copied());
                NodeRead {
                    event: Some(r.complete),
                    size: Some(r.elements.len()),
                    lost: Elements::of(missing),
                }
            }
            None => NodeRead {
                event: None,
                size: None,
                lost: Elements::default(),
            },
        };
        final_reads.insert(node.clone(), nr);
    }

    let mut disagreements = Vec::new();
    let mut finals = last.iter();
    if let Some((first, a)) = finals.next() {
        for (other, b) in finals {
            if a.elements != b.elements {
                disagreements.push(Disagreement {
                    a: first.to_string(),
                    b: other.to_string(),
                    only_in_a: Elements::of(a.elements.difference(&b.elements)),
                    only_in_b: Elements::of(b.elements.difference(&a.elements)),
                });
            }
        }
    }

    let seen: BTreeSet<i64> = reads
        .iter()
        .flat_map(|r| r.elements.iter().copied())
        .collect();
    let in_finals: BTreeSet<i64> = last
        .values()
        .flat_map(|r| r.elements.iter().copied())
        .collect();
    let unexpected: Vec<&i64> = seen.iter().filter(|x| !adds.contains_key(x)).collect();
    let failed_present: Vec<&i64> = failed.intersection(&seen).collect();
    let recovered: Vec<&i64> = indeterminate.intersection(&in_finals).collect();
    let never_read: Vec<&i64> = acked.difference(&seen).collect();
    let stale: Vec<&i64> = acked
        .iter()
        .filter(|x| is_stale(**x, acked_at[*x], &reads))
        .collect();

    let mut reasons = Vec::new();
    let mut verdict = Verdict::Valid;
    let mut invalid = |why: String| {
        verdict = Verdict::Invalid;
        reasons.push(why);
    };
    if !lost.is_empty() {
        invalid(format!("{} acknowledged element(s) lost", lost.len()));
    }
    if !unexpected.is_empty() {
        invalid(format!(
            "{} element(s) read that were never added",
            unexpected.len()
        ));
    }
    if !failed_present.is_empty() {
        invalid(format!(
            "{} element(s) read whose add definitely failed",
            failed_present.len()
        ));
    }
    for d in &disagreements {
        invalid(format!("final reads on {} and {} differ", d.a, d.b));
    }
    let missing_nodes: Vec<&String> = final_reads
        .iter()
        .filter(|(_, r)| r.event.is_none())
        .map(|(n, _)| n)
        .collect();
    let mut unknown = |why: String| {
        verdict = verdict.and(Verdict::Unknown);
        reasons.push(why);
    };
    if last.is_empty() {
        unknown("no successful read: nothing to check the adds against".to_string());
    } else if !missing_nodes.is_empty() {
        let names: Vec<&str> = missing_nodes.iter().map(|s| s.as_str()).collect();
        unknown(format!("no final read from {}", names.join(", ")));
    }
    if !malformed.is_empty() {
        unknown(format!("{} event(s) not understood", malformed.len()));
    }

    SetReport {
        verdict,
        attempted: adds.len(),
        acknowledged: acked.len(),
        failed: failed.len(),
        indeterminate: indeterminate.len(),
        lost: Elements::of(&lost),
        unexpected: Elements::of(unexpected),
        failed_present: Elements::of(failed_present),
        recovered: Elements::of(recovered),
        stale: Elements::of(stale),
        never_read: Elements::of(never_read),
        final_reads,
        disagreements,
        malformed,
        reasons,
    }
}

/// Whether a read begun after `x` was acknowledged missed it, and a later read showed it.
fn is_stale(x: i64, acked: u64, reads: &[Read]) -> bool {
    let Some(missed) = reads
        .iter()
        .find(|r| r.invoke > acked && !r.elements.contains(&x))
    else {
        return false;
    };
    reads
        .iter()
        .any(|r| r.invoke > missed.complete && r.elements.contains(&x))
}
