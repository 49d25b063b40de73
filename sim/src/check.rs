//! One seed's verdict: the checkers `sunder test` runs (linearizability of the client
//! history under the key-value model, agreement from the dumps and event streams), the
//! simulator's own per-step findings (invariants, panics), and availability.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use sunder_checker::agreement::{self, EventLine};
use sunder_checker::linear::{self, CheckOptions};
use sunder_checker::model::ModelSpec;
use sunder_checker::{EventType, History, Verdict};

use crate::config::SimWorkload;
use crate::fault::Schedule;
use crate::world::Finished;

/// One checker's verdict (the shape of `results.json`'s `checkers`).
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub verdict: Verdict,
    pub reason: String,
    pub details: Value,
}

/// Everything one seed produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub seed: u64,
    pub verdict: Verdict,
    pub checkers: Vec<CheckResult>,
    pub history: History,
    pub dumps: std::collections::BTreeMap<String, Value>,
    pub events: std::collections::BTreeMap<String, Vec<EventLine>>,
    pub schedule: Schedule,
    pub warnings: Vec<String>,
    pub sim_ms: u64,
    pub steps: u64,
}

impl Outcome {
    /// The result of the checker called `name`, if it ran.
    pub fn checker(&self, name: &str) -> Option<&CheckResult> {
        self.checkers.iter().find(|c| c.name == name)
    }

    /// The first reason of the first checker that did not pass.
    pub fn reason(&self) -> String {
        self.checkers
            .iter()
            .find(|c| c.verdict == self.verdict)
            .map(|c| {
                // The agreement summary's first line is only its verdict: show a finding.
                let lines: Vec<&str> = c.reason.lines().map(str::trim).take(2).collect();
                format!("{}: {}", c.name, lines.join(": "))
            })
            .unwrap_or_default()
    }

    /// The history as `history.jsonl` holds it: one JSON object per line.
    pub fn history_jsonl(&self) -> String {
        let mut s = String::new();
        for e in &self.history.events {
            s.push_str(&serde_json::to_string(e).expect("an event serialises"));
            s.push('\n');
        }
        s
    }
}

/// The linearizability checker's budget per seed; past it the verdict is unknown.
const BUDGET: Duration = Duration::from_secs(60);

pub fn judge(seed: u64, workload: SimWorkload, schedule: Schedule, f: Finished) -> Outcome {
    let history = History::new(f.history);
    let mut checkers = Vec::new();

    match workload {
        SimWorkload::Register => {
            let opts = CheckOptions {
                timeout: Some(BUDGET),
                threads: 1,
                ..CheckOptions::default()
            };
            let r = linear::check(
                &history,
                &ModelSpec::Kv {
                    initial: Value::Null,
                },
                &opts,
            );
            checkers.push(CheckResult {
                name: "linearizability".into(),
                verdict: r.verdict,
                reason: r.summary.clone(),
                details: serde_json::to_value(&r).unwrap_or(Value::Null),
            });
        }
        SimWorkload::Bank => {
            let r = sunder_checker::bank::check(&history, sunder_wire::bank::INITIAL_BALANCE);
            checkers.push(CheckResult {
                name: "bank".into(),
                verdict: r.verdict,
                reason: r.summary(),
                details: serde_json::to_value(&r).unwrap_or(Value::Null),
            });
        }
    }

    let mut warnings = f.warnings;
    let mut dumps = Vec::new();
    for (node, v) in &f.dumps {
        match agreement::parse_dump(v, node) {
            Ok(d) => dumps.push(d),
            Err(e) => warnings.push(e.to_string()),
        }
    }
    // The cores' own typed events: nothing to parse, nothing to lose.
    let events: Vec<EventLine> = f.events.values().flatten().cloned().collect();
    // Every node is a member; one whose dump the final phase could not take is named, so
    // the verdict cannot be valid on partial evidence.
    let mut membership = agreement::Membership::of(f.names.iter().cloned());
    membership.byzantine = f.byzantine.iter().cloned().collect();
    for n in &f.names {
        if !f.dumps.contains_key(n) {
            membership
                .dump_errors
                .insert(n.clone(), "no dump at the end of the simulation".into());
        }
    }
    let mut a = agreement::check(&dumps, &events, &history, &membership);
    a.warnings.extend(warnings.iter().cloned());
    checkers.push(CheckResult {
        name: "agreement".into(),
        verdict: a.verdict,
        reason: a.summary(),
        details: serde_json::to_value(&a).unwrap_or(Value::Null),
    });

    if let Some(r) =
        sunder_checker::chain::check(&f.dumps, &membership, sunder_wire::bank::INITIAL_BALANCE)
    {
        checkers.push(CheckResult {
            name: "chain".into(),
            verdict: r.verdict,
            reason: r.summary(),
            details: serde_json::to_value(&r).unwrap_or(Value::Null),
        });
    }

    let (verdict, reason) = if f.violations.is_empty() {
        (
            Verdict::Valid,
            "no invariant broken after any step".to_string(),
        )
    } else {
        (Verdict::Invalid, f.violations.join("\n"))
    };
    checkers.push(CheckResult {
        name: "invariants".into(),
        verdict,
        reason,
        details: json!({ "violations": f.violations }),
    });

    let ok = history
        .client_events()
        .filter(|e| e.kind == EventType::Ok)
        .count();
    checkers.push(if ok == 0 {
        CheckResult {
            name: "availability".into(),
            verdict: Verdict::Unknown,
            reason: "no client operation succeeded: the cluster was never available".into(),
            details: json!({ "ok": 0 }),
        }
    } else {
        CheckResult {
            name: "availability".into(),
            verdict: Verdict::Valid,
            reason: format!("{ok} client operations succeeded"),
            details: json!({ "ok": ok }),
        }
    });

    Outcome {
        seed,
        verdict: Verdict::all(checkers.iter().map(|c| c.verdict)),
        checkers,
        history,
        dumps: f.dumps,
        events: f.events,
        schedule,
        warnings,
        sim_ms: f.sim_ms,
        steps: f.steps,
    }
}
