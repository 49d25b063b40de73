//! The nemesis' faults as time intervals ("bands") for the plots and the timeline: each
//! start event in the history paired with the stop event of its kind.
//!
//! ```text
//!   info nemesis partition {..}  ──┐
//!   info nemesis heal      {..}  ──┴─► Band { kind: partition, from, to, label }
//!   info nemesis kill [n2]       ──► Band { .., to: end of run }   (never stopped)
//! ```
//!
//! A step that failed on some nodes carries its per-node outcome in `error`
//! (`sunder_nemesis::Outcome`): a start that reached some nodes is a band like any other,
//! its label naming where it failed or took effect only in part; a stop that failed on some nodes ends the band and
//! opens one for what is still in force, until the next stop of its kind.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use sunder_checker::{EventType, History, Process};
use sunder_nemesis::Outcome;

/// The stop `f` of each fault kind, and the kind it stops.
const PAIRS: &[(&str, &str)] = &[
    ("partition", "heal"),
    ("kill", "restart"),
    ("pause", "resume"),
    ("clock", "clock-reset"),
    ("loss", "loss-stop"),
    ("lose-unsynced", "lose-unsynced-restart"),
    ("torn-write", "torn-write-restart"),
    ("corrupt", "corrupt-restart"),
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Band {
    pub kind: String,
    /// Nanoseconds since the start of the test.
    pub from: u64,
    pub to: u64,
    /// What the fault was: its value, shortened (e.g. `n1 ✗ n2,n3`).
    pub label: String,
    /// The nemesis could not apply it (recorded with an `error`).
    pub failed: bool,
    /// No stop event: the fault lasted until the end of the history.
    pub open: bool,
}

/// Pairs start and stop events; a start whose kind is unknown becomes a zero-length band.
pub fn bands(history: &History) -> Vec<Band> {
    let end = history.events.iter().map(|e| e.time).max().unwrap_or(0);
    let mut open: BTreeMap<&str, Band> = BTreeMap::new();
    let mut out = Vec::new();
    for e in &history.events {
        if e.process != Process::Nemesis || e.kind == EventType::Invoke {
            continue;
        }
        // Clock faults start as `clock-bump` or `clock-strobe` and stop as `clock-reset`.
        let f = match e.f.as_str() {
            "clock-bump" | "clock-strobe" => "clock",
            f => f,
        };
        let outcome = e.error.as_deref().and_then(Outcome::from_error_text);
        if let Some((start, _)) = PAIRS.iter().find(|(_, stop)| *stop == f) {
            // An undo that failed whole leaves the fault in force: its band goes on.
            if e.error.is_some() && outcome.is_none() {
                continue;
            }
            if let Some(mut b) = open.remove(start) {
                b.to = e.time;
                b.open = false;
                out.push(b);
            }
            // What the undo could not reach is still in force.
            if let Some(o) = outcome.filter(|o| !o.failed.is_empty()) {
                let nodes: Vec<&str> = o.failed.keys().map(String::as_str).collect();
                open.insert(
                    start,
                    Band {
                        kind: start.to_string(),
                        from: e.time,
                        to: e.time,
                        label: format!(
                            "{} (undo {})",
                            nodes.join(","),
                            cut(&o.describe_failures())
                        ),
                        failed: false,
                        open: true,
                    },
                );
            }
            continue;
        }
        // Took effect somewhere: no error, or an outcome that reached some node.
        let took_effect = match (&e.error, &outcome) {
            (None, _) => true,
            (Some(_), Some(o)) => !o.reached.is_empty(),
            (Some(_), None) => false,
        };
        let band = Band {
            kind: f.to_string(),
            from: e.time,
            to: e.time,
            label: label(&e.value, e.error.as_deref()),
            failed: !took_effect,
            open: true,
        };
        if band.failed || !PAIRS.iter().any(|(start, _)| *start == f) {
            out.push(Band {
                open: false,
                ..band
            });
        } else if let Some(mut prev) =
            open.insert(PAIRS.iter().find(|(s, _)| *s == f).unwrap().0, band)
        {
            // A second start before a stop: the first ends where the second begins.
            prev.to = e.time;
            prev.open = false;
            out.push(prev);
        }
    }
    out.extend(open.into_values().map(|mut b| {
        b.to = end;
        b
    }));
    out.sort_by_key(|b| (b.from, b.to));
    out
}

/// A short human label for a fault's value.
fn label(v: &Value, error: Option<&str>) -> String {
    let text = match v {
        Value::Null => String::new(),
        Value::Array(a) => a.iter().map(short).collect::<Vec<_>>().join(","),
        Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.as_array().is_some_and(|a| a.is_empty()))
            .map(|(k, v)| format!("{k}✗{}", short(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => short(other),
    };
    let text = cut(&text);
    match error.map(|e| (e, Outcome::from_error_text(e))) {
        Some((_, Some(o))) => format!("{text} ({})", cut(&o.describe_failures())),
        Some((e, None)) => format!("{text} (failed: {})", cut(e)),
        None => text,
    }
}

/// At most 60 characters of a label part.
fn cut(s: &str) -> String {
    s.chars().take(60).collect()
}

fn short(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(short).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sunder_checker::Event;

    fn nem(index: u64, time: u64, f: &str, value: Value, error: Option<&str>) -> Event {
        Event {
            index,
            time,
            kind: EventType::Info,
            process: Process::Nemesis,
            f: f.into(),
            key: None,
            value,
            error: error.map(str::to_string),
            node: None,
            committed: None,
        }
    }

    #[test]
    fn starts_pair_with_stops_and_unclosed_ones_run_to_the_end() {
        let h = History::new(vec![
            nem(
                0,
                10,
                "partition",
                json!({"n1": ["n2", "n3"], "n2": []}),
                None,
            ),
            nem(1, 20, "kill", json!(["n2"]), None),
            nem(2, 30, "heal", json!({}), None),
            nem(3, 35, "pause", json!(["n3"]), Some("no such process")),
            nem(4, 50, "restart", json!(["n2"]), None),
            nem(5, 60, "kill", json!(["n1"]), None),
            nem(6, 90, "restart", json!(["n1"]), None),
            nem(7, 95, "pause", json!(["n1"]), None),
            nem(8, 99, "heal", json!({}), None),
        ]);
        let b = bands(&h);
        let got: Vec<_> = b
            .iter()
            .map(|b| (b.kind.as_str(), b.from, b.to, b.failed, b.open))
            .collect();
        assert_eq!(
            got,
            vec![
                ("partition", 10, 30, false, false),
                ("kill", 20, 50, false, false),
                ("pause", 35, 35, true, false),
                ("kill", 60, 90, false, false),
                ("pause", 95, 99, false, true),
            ]
        );
        assert_eq!(b[0].label, "n1✗n2,n3");
        assert!(b[2].label.contains("failed: no such process"));
    }

    #[test]
    fn clock_bumps_and_strobes_end_at_a_reset() {
        let h = History::new(vec![
            nem(0, 10, "clock-bump", json!({"n1": -5000}), None),
            nem(1, 20, "clock-reset", json!({"n1": 0}), None),
            nem(2, 30, "clock-strobe", json!({"n2": 200}), None),
            nem(3, 45, "clock-reset", json!({"n2": 0}), None),
        ]);
        let got: Vec<_> = bands(&h)
            .iter()
            .map(|b| (b.kind.clone(), b.from, b.to))
            .collect();
        assert_eq!(
            got,
            vec![("clock".to_string(), 10, 20), ("clock".to_string(), 30, 45)]
        );
    }

    #[test]
    fn half_applied_faults_are_bands_and_what_an_undo_missed_stays_one() {
        let partial = r#"{"reached":["n1","n2"],"failed":{"n3":"n3 is not running"}}"#;
        let none = r#"{"reached":[],"failed":{"n1":"x","n2":"y"}}"#;
        let undo_missed = r#"{"reached":["n1"],"failed":{"n2":"SIGCONT: EPERM"}}"#;
        let h = History::new(vec![
            nem(0, 10, "pause", json!(["n1", "n2", "n3"]), Some(partial)),
            nem(1, 20, "resume", json!(["n1", "n2"]), Some(undo_missed)),
            nem(2, 30, "resume", Value::Null, Some("the cluster is gone")),
            nem(3, 40, "resume", json!(["n2"]), None),
            nem(4, 50, "kill", json!(["n1", "n2"]), Some(none)),
            nem(5, 60, "loss", json!({"nodes": ["n1"], "percent": 20}), None),
            nem(
                6,
                70,
                "loss-stop",
                json!({"nodes": ["n1"], "percent": 20}),
                None,
            ),
        ]);
        let b = bands(&h);
        let got: Vec<_> = b
            .iter()
            .map(|b| (b.kind.as_str(), b.from, b.to, b.failed, b.open))
            .collect();
        assert_eq!(
            got,
            vec![
                ("pause", 10, 20, false, false),
                ("pause", 20, 40, false, false),
                ("kill", 50, 50, true, false),
                ("loss", 60, 70, false, false),
            ]
        );
        assert_eq!(b[0].label, "n1,n2,n3 (failed on n3: n3 is not running)");
        assert!(
            b[1].label.starts_with("n2 (undo failed on n2: SIGCONT"),
            "{}",
            b[1].label
        );
    }

    /// A disk fault whose disk step failed on a node it killed: a band like any other,
    /// until its restart, labelled with what the disk step did not do.
    #[test]
    fn a_disk_fault_done_in_part_is_a_band_naming_where() {
        let partial = r#"{"reached":["n1","n2"],"failed":{},"partial":{"n2":"killed, but lose-unsynced failed: busy"}}"#;
        let value = json!({"nodes": ["n1", "n2"], "seed": 7});
        let h = History::new(vec![
            nem(0, 10, "lose-unsynced", value.clone(), Some(partial)),
            nem(1, 20, "lose-unsynced-restart", value, None),
        ]);
        let b = bands(&h);
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(
            (
                b[0].kind.as_str(),
                b[0].from,
                b[0].to,
                b[0].failed,
                b[0].open
            ),
            ("lose-unsynced", 10, 20, false, false)
        );
        assert!(
            b[0].label
                .ends_with("(partly on n2: killed, but lose-unsynced failed: busy)"),
            "{}",
            b[0].label
        );
    }
}
