//! The checkers a run's history goes through, and their verdicts with reasons.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use sunder_checker::agreement::{self, Membership};
use sunder_checker::anomaly::{self, Anomaly};
use sunder_checker::linear::{self, CheckOptions};
use sunder_checker::model::ModelSpec;
use sunder_checker::stats::{self, Stats};
use sunder_checker::{EventType, History, Verdict, bank, set};
use sunder_workloads::WorkloadKind;

/// One checker's verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// When the run first went wrong, by the earliest evidence of any checker.
    pub first_anomaly: Option<Anomaly>,
}

impl Checked {
    pub fn verdict(&self) -> Verdict {
        Verdict::all(self.checkers.iter().map(|c| c.verdict))
    }
}

/// The first anomaly of checkers run elsewhere (the Maelstrom workloads'): from the
/// linearizability checker's report in its details, and from any checker that dates its
/// own evidence in `details.first_anomaly` (g-set, pn-counter, kafka).
pub fn first_anomaly_of(checkers: &[CheckerResult]) -> Option<Anomaly> {
    let invalid = || checkers.iter().filter(|c| c.verdict == Verdict::Invalid);
    let lin = invalid()
        .filter(|c| c.name == "linearizability")
        .filter_map(|c| {
            serde_json::from_value::<linear::LinearizabilityReport>(c.details.clone()).ok()
        })
        .filter_map(|r| anomaly::linearizability(&r));
    let own = invalid().filter_map(|c| {
        serde_json::from_value::<Anomaly>(c.details.get("first_anomaly")?.clone()).ok()
    });
    anomaly::earliest(lin.chain(own))
}

/// Targets whose nodes keep a replicated log, and so get the agreement checker (the
/// table's `agreement` column; a spec target has none).
pub fn has_log(target: &str) -> bool {
    crate::targets::find(target).is_some_and(|t| t.agreement)
}

/// Where the agreement checker's evidence is: the run directory (dumps and event streams
/// in `nodes/`) and the run's members, with why any dump could not be taken.
pub struct AgreementInput<'a> {
    pub dir: &'a Path,
    pub members: Membership,
    /// The nodes' clock at the history's time 0, when their event timestamps can date
    /// evidence that has no place in the history (see [`anomaly::agreement`]).
    pub clock_origin_ms: Option<u64>,
}

impl<'a> AgreementInput<'a> {
    /// The members and failed dumps as a run's `nodes` outcome map records them
    /// (`{"n1": {"dump": null, "error": "..."}, ...}`); members without an entry are kept.
    pub fn new(dir: &'a Path, members: Vec<String>, outcomes: &Value) -> Self {
        let mut m = Membership::of(members);
        for id in &m.nodes {
            if let Some(e) = outcomes[id.as_str()]["error"].as_str() {
                m.dump_errors.insert(id.clone(), e.to_string());
            }
        }
        AgreementInput {
            dir,
            members: m,
            clock_origin_ms: None,
        }
    }

    /// The members the run made Byzantine: the checkers leave them out.
    pub fn byzantine(mut self, nodes: &[String]) -> Self {
        self.members.byzantine = nodes.iter().cloned().collect();
        self
    }

    /// Node timestamps minus `origin` are history times (local nodes, no clock faults).
    pub fn clock_origin(mut self, origin: Option<u64>) -> Self {
        self.clock_origin_ms = origin;
        self
    }
}

/// Runs the checkers that fit the workload, and the agreement checker over the node dumps
/// and event streams in `run_dir/nodes/` when `agreement` is given. The workload's
/// checker and the agreement checker are independent and run in parallel. Blocking.
/// Setting `cancel` (a second Ctrl-C) stops the linearizability search: its verdict is then
/// `unknown`, "interrupted".
pub fn run(
    kind: WorkloadKind,
    history: &History,
    budget: Duration,
    agreement: Option<AgreementInput<'_>>,
    cancel: Option<Arc<AtomicBool>>,
) -> Checked {
    let chain_input = agreement
        .as_ref()
        .map(|a| (a.dir.to_path_buf(), a.members.clone()));
    let (mut checked, agreement) = std::thread::scope(|s| {
        let agreement = agreement.map(|a| s.spawn(move || check_agreement(&a, history)));
        let checked = run_workload_checkers(kind, history, budget, cancel);
        let agreement = agreement.map(|h| {
            h.join().unwrap_or_else(|_| {
                let r = CheckerResult {
                    name: "agreement".into(),
                    verdict: Verdict::Unknown,
                    reason: "the agreement checker panicked".into(),
                    details: Value::Null,
                };
                (r, None)
            })
        });
        (checked, agreement)
    });
    if let Some((a, when)) = agreement {
        // Keep the availability line last, as the summary table reads best that way.
        let at = checked.checkers.len().saturating_sub(1);
        checked.checkers.insert(at, a);
        checked.first_anomaly =
            anomaly::earliest(checked.first_anomaly.take().into_iter().chain(when));
    }
    if let Some(c) = chain_input.and_then(|(dir, members)| check_chain(&dir, &members)) {
        let at = checked.checkers.len().saturating_sub(1);
        checked.checkers.insert(at, c);
    }
    checked
}

/// A proof-of-work run's chain checks over the dumps in `dir/nodes/` (`None` for a run
/// whose dumps carry no chain).
fn check_chain(dir: &Path, members: &agreement::Membership) -> Option<CheckerResult> {
    let mut dumps = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir.join("nodes")).ok()?.flatten() {
        let path = entry.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let Some(node) = name.strip_suffix(".dump.json") else {
            continue;
        };
        // An unreadable dump is kept as what it is: the checker calls it unknown.
        let v = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(json!({"chain": "unreadable"}));
        dumps.insert(node.to_string(), v);
    }
    let r = sunder_checker::chain::check(&dumps, members, sunder_wire::bank::INITIAL_BALANCE)?;
    Some(CheckerResult {
        name: "chain".into(),
        verdict: r.verdict,
        reason: r.summary(),
        details: serde_json::to_value(&r).unwrap_or(Value::Null),
    })
}

/// Election safety, committed-prefix agreement and acknowledged writes present.
fn check_agreement(
    input: &AgreementInput<'_>,
    history: &History,
) -> (CheckerResult, Option<Anomaly>) {
    match agreement::load_run_dir(input.dir) {
        Ok((dumps, events, warnings)) => {
            let mut r = agreement::check(&dumps, &events, history, &input.members);
            r.warnings.extend(warnings);
            let when = anomaly::agreement(&r, history, input.clock_origin_ms);
            let c = CheckerResult {
                name: "agreement".into(),
                verdict: r.verdict,
                reason: r.summary(),
                details: serde_json::to_value(&r).unwrap_or(Value::Null),
            };
            (c, when)
        }
        Err(e) => {
            let c = CheckerResult {
                name: "agreement".into(),
                verdict: Verdict::Unknown,
                reason: format!("could not read the nodes' dumps and events: {e}"),
                details: Value::Null,
            };
            (c, None)
        }
    }
}

fn run_workload_checkers(
    kind: WorkloadKind,
    history: &History,
    budget: Duration,
    cancel: Option<Arc<AtomicBool>>,
) -> Checked {
    let mut checkers = Vec::new();
    let mut counterexample = None;
    let first_anomaly;
    match kind {
        WorkloadKind::Register => {
            let opts = CheckOptions {
                timeout: Some(budget),
                cancel,
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
            first_anomaly = anomaly::linearizability(&r);
            checkers.push(CheckerResult {
                name: "linearizability".into(),
                verdict: r.verdict,
                reason: r.summary.clone(),
                details: serde_json::to_value(&r).unwrap_or(Value::Null),
            });
        }
        WorkloadKind::Set => {
            let r = set::check(history);
            first_anomaly = anomaly::set(&r, history);
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
        WorkloadKind::Bank => {
            let r = bank::check(history, sunder_wire::bank::INITIAL_BALANCE);
            first_anomaly = anomaly::bank(&r);
            checkers.push(CheckerResult {
                name: "bank".into(),
                verdict: r.verdict,
                reason: r.summary(),
                details: serde_json::to_value(&r).unwrap_or(Value::Null),
            });
        }
    }
    checkers.push(liveness(history));
    Checked {
        checkers,
        stats: stats::compute(history),
        counterexample,
        first_anomaly,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_dump_in_the_run_makes_agreement_unknown_naming_the_node() {
        // n1 dumped, n2's dump call failed: the evidence is partial, whatever n1 says.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("nodes")).unwrap();
        std::fs::write(
            dir.path().join("nodes/n1.dump.json"),
            serde_json::json!({"node": "n1", "commit_index": 0, "entries": []}).to_string(),
        )
        .unwrap();
        let outcomes = serde_json::json!({
            "n1": {"dump": "nodes/n1.dump.json"},
            "n2": {"dump": null, "error": "connection refused"},
        });
        let input = AgreementInput::new(dir.path(), vec!["n1".into(), "n2".into()], &outcomes);
        assert_eq!(
            input.members.dump_errors.get("n2").map(String::as_str),
            Some("connection refused")
        );
        assert!(!input.members.dump_errors.contains_key("n1"));
        let history = History::new(Vec::new());
        let checked = run(
            WorkloadKind::Register,
            &history,
            Duration::from_secs(5),
            Some(input),
            None,
        );
        let a = checked
            .checkers
            .iter()
            .find(|c| c.name == "agreement")
            .expect("the agreement checker ran");
        assert_eq!(a.verdict, Verdict::Unknown, "{}", a.reason);
        assert!(a.reason.contains("n2"), "{}", a.reason);
    }
}
