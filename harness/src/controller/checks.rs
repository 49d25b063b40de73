//! The checkers a run's history goes through, and their verdicts with reasons.

use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;
use sunder_checker::linear::{self, CheckOptions};
use sunder_checker::model::ModelSpec;
use sunder_checker::stats::{self, Stats};
use sunder_checker::{EventType, History, Verdict, set};
use sunder_workloads::WorkloadKind;

/// One checker's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct CheckerResult {
    pub name: String,
    pub verdict: Verdict,
    /// One line a person reads first.
    pub reason: String,
    /// The checker's full report.
    pub details: Value,
}

pub struct Checked {
    pub checkers: Vec<CheckerResult>,
    pub stats: Stats,
    /// The linearizability counterexample, if any, for results.json's top level.
    pub counterexample: Option<Value>,
}

impl Checked {
    pub fn verdict(&self) -> Verdict {
        Verdict::all(self.checkers.iter().map(|c| c.verdict))
    }
}

/// Runs the checkers that fit the workload. Blocking (the checkers are synchronous).
pub fn run(kind: WorkloadKind, history: &History, budget: Duration) -> Checked {
    let mut checkers = Vec::new();
    let mut counterexample = None;
    match kind {
        WorkloadKind::Register => {
            let opts = CheckOptions {
                timeout: Some(budget),
                ..CheckOptions::default()
            };
            let r = linear::check(
                history,
                &ModelSpec::Kv {
                    initial: Value::Null,
                },
                &opts,
            );
            counterexample = r
                .partitions
                .iter()
                .find(|p| p.verdict == Verdict::Invalid)
                .map(|p| json!({"key": p.key, "summary": r.summary, "counterexample": p.counterexample}));
            checkers.push(CheckerResult {
                name: "linearizability".into(),
                verdict: r.verdict,
                reason: r.summary.clone(),
                details: serde_json::to_value(&r).unwrap_or(Value::Null),
            });
        }
        WorkloadKind::Set => {
            let r = set::check(history);
            let reason = if r.reasons.is_empty() {
                format!(
                    "{} acknowledged adds, all present in every final read",
                    r.acknowledged
                )
            } else {
                r.reasons.join("; ")
            };
            checkers.push(CheckerResult {
                name: "set".into(),
                verdict: r.verdict,
                reason,
                details: serde_json::to_value(&r).unwrap_or(Value::Null),
            });
        }
    }
    checkers.push(liveness(history));
    Checked {
        checkers,
        stats: stats::compute(history),
        counterexample,
    }
}

/// A history in which nothing succeeded proves nothing: say so rather than call it valid.
fn liveness(history: &History) -> CheckerResult {
    let ok = history
        .client_events()
        .filter(|e| e.kind == EventType::Ok)
        .count();
    let (verdict, reason) = if ok == 0 {
        (
            Verdict::Unknown,
            "no client operation succeeded: the cluster was never available".to_string(),
        )
    } else {
        (Verdict::Valid, format!("{ok} client operations succeeded"))
    };
    CheckerResult {
        name: "availability".into(),
        verdict,
        reason,
        details: json!({ "ok": ok }),
    }
}
