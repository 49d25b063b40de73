//! The checkers section of the report: each checker's verdict and reason, with what its
//! details say in a form a person reads: the linearizability counterexample (and the
//! `linearizability.html` view in an iframe), the set checker's lost and unexpected
//! elements, the bank checker's broken reads, an agreement checker's first divergence. Everything embedded is escaped.
//! Each checker's details are read as that checker's own report type (the one it wrote
//! them from), so a renamed field fails to compile instead of drawing an empty section.

use super::escape::{html, url_path};
use super::page::verdict_badge;
use super::rundata::RunData;
use serde_json::Value;
use std::fmt::Write;
use sunder_checker::agreement::{AgreementReport, DumpEntry};
use sunder_checker::bank::BankReport;
use sunder_checker::linear::LinearizabilityReport;
use sunder_checker::set::{Elements, SetReport};

pub fn checkers(s: &mut String, run: &RunData, cex_page: Option<&str>) {
    s.push_str("<h2 id=\"checkers\">Checkers</h2>\n");
    let list = run.checkers();
    if list.is_empty() {
        s.push_str("<p class=\"muted\">No checker ran.</p>");
    }
    for c in list {
        let name = c.name.as_str();
        let verdict = c.verdict.as_str();
        let _ = write!(
            s,
            "<div class=\"checker {}\"><h3>{} {}</h3><div class=\"reason\">{}</div>",
            html(verdict),
            html(name),
            verdict_badge(Some(verdict)),
            html(&c.reason)
        );
        let d = &c.details;
        if name == "linearizability" {
            linearizability(s, d, cex_page);
        } else if name == "set" {
            set(s, d);
        } else if name == "bank" {
            bank(s, d);
        } else if name.starts_with("agreement") {
            agreement(s, d);
        } else if !d.is_null() {
            let _ = write!(
                s,
                "<details><summary>details</summary><pre>{}</pre></details>",
                html(&pretty(d, 8000))
            );
        }
        s.push_str("</div>\n");
    }
}

/// Reads a checker's details as that checker's own report type; details of another shape
/// get a warning naming why, and the JSON below it.
fn typed<T: serde::de::DeserializeOwned>(s: &mut String, d: &Value, what: &str) -> Option<T> {
    match T::deserialize(d) {
        Ok(r) => Some(r),
        Err(e) => {
            let _ = write!(
                s,
                "<div class=\"warn\">these details are not a {what} report this version reads: {}</div><details><summary>details</summary><pre>{}</pre></details>",
                html(&e.to_string()),
                html(&pretty(d, 8000))
            );
            None
        }
    }
}

fn linearizability(s: &mut String, d: &Value, cex_page: Option<&str>) {
    let report: Option<LinearizabilityReport> = match d.is_null() {
        true => None,
        false => typed(s, d, "linearizability"),
    };
    for p in report.iter().flat_map(|r| &r.partitions) {
        let Some(cex) = &p.counterexample else {
            continue;
        };
        let key = p
            .key
            .as_ref()
            .map(|k| format!("key {k}"))
            .unwrap_or("the register".into());
        let _ = write!(
            s,
            "<p>{}: {} operations; longest linearizable prefix {} operations, ending in state <code>{}</code>. None of these could go next:</p><ul>",
            html(&key),
            p.ops.len(),
            cex.longest_prefix.len(),
            html(&cex.state)
        );
        for a in cex.stuck.iter().take(12) {
            let what = match p.ops.iter().find(|o| o.id == a.op) {
                Some(o) => {
                    let input = if o.input.is_null() {
                        String::new()
                    } else {
                        format!(" {}", o.input)
                    };
                    let process = serde_json::to_string(&o.process).unwrap_or_default();
                    format!("process {process} {}{input} → {}", o.f, o.output)
                }
                None => format!("op {}", a.op),
            };
            let _ = write!(
                s,
                "<li><code>{}</code>: {}</li>",
                html(&what),
                html(&a.reason)
            );
        }
        s.push_str("</ul>");
    }
    if let Some(page) = cex_page {
        let _ = write!(
            s,
            "<p><a href=\"{0}\">Open the counterexample view</a> (the operations around the failure, the partial linearization, zoomable).</p><iframe class=\"cex\" src=\"{0}\" title=\"linearizability counterexample\"></iframe>",
            html(&url_path(page))
        );
    }
}

fn elements(e: &Elements) -> String {
    let list: Vec<String> = e.elements.iter().map(i64::to_string).collect();
    let more = if e.truncated { " …" } else { "" };
    format!("{}{more}", list.join(" "))
}

fn set(s: &mut String, d: &Value) {
    let Some(d) = typed::<SetReport>(s, d, "set") else {
        return;
    };
    let _ = write!(
        s,
        "<p class=\"muted\">attempted {} · acknowledged {} · failed {} · indeterminate {}</p><table>",
        d.attempted, d.acknowledged, d.failed, d.indeterminate
    );
    for (k, e, what) in [
        (
            "lost",
            &d.lost,
            "acknowledged, missing from the final reads",
        ),
        ("unexpected", &d.unexpected, "read but never added"),
        (
            "failed_present",
            &d.failed_present,
            "add failed, yet present",
        ),
        ("stale", &d.stale, "present in some reads, missing later"),
        ("never_read", &d.never_read, "no final read saw them"),
        (
            "recovered",
            &d.recovered,
            "indeterminate adds that took effect",
        ),
    ] {
        if e.count == 0 && k != "lost" && k != "unexpected" {
            continue;
        }
        let _ = write!(
            s,
            "<tr><th>{k}</th><td class=\"num\">{}</td><td class=\"muted\">{what}</td><td class=\"elements\">{}</td></tr>",
            e.count,
            html(&elements(e))
        );
    }
    s.push_str("</table>");
    for dis in d.disagreements.iter().take(8) {
        let _ = write!(
            s,
            "<div>final reads of {} and {} differ: only in {}: {} <span class=\"elements\">{}</span>; only in {}: {} <span class=\"elements\">{}</span></div>",
            html(&dis.a),
            html(&dis.b),
            html(&dis.a),
            dis.only_in_a.count,
            html(&elements(&dis.only_in_a)),
            html(&dis.b),
            dis.only_in_b.count,
            html(&elements(&dis.only_in_b))
        );
    }
}

/// What the bank checker counted, and the first reads that broke the bank.
fn bank(s: &mut String, d: &Value) {
    let Some(d) = typed::<BankReport>(s, d, "bank") else {
        return;
    };
    let totals = d
        .totals
        .map(|(lo, hi)| format!(" · totals read {lo} to {hi}"))
        .unwrap_or_default();
    let _ = write!(
        s,
        "<p class=\"muted\">{} accounts · total {} · {} reads · transfers ok {}, failed {}, indeterminate {}{}</p>",
        d.accounts.len(),
        d.expected_total,
        d.reads,
        d.transfers.ok,
        d.transfers.fail,
        d.transfers.info,
        html(&totals)
    );
    if d.bad_reads.is_empty() {
        return;
    }
    let _ = write!(
        s,
        "<table><tr><th>event</th><th>node</th><th>total</th><th>below zero</th><th>missing</th></tr>"
    );
    for r in d.bad_reads.iter().take(12) {
        let negative: Vec<String> = r.negative.iter().map(|(a, b)| format!("{a}={b}")).collect();
        let _ = write!(
            s,
            "<tr><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            r.index,
            html(r.node.as_deref().unwrap_or("")),
            r.total,
            html(&negative.join(" ")),
            html(&r.missing.join(" "))
        );
    }
    let _ = write!(
        s,
        "</table><p class=\"muted\">{} reads broke the bank in all</p>",
        d.bad_read_count
    );
}

/// The first divergence between nodes (an index and the two nodes' entries there),
/// duplicate leaders, double votes and missing writes, read as the checker's own
/// [`AgreementReport`]; details of another shape (null when the dumps could not be read)
/// are shown as JSON, with why they could not be read.
fn agreement(s: &mut String, d: &Value) {
    if d.is_null() {
        return;
    }
    if let Some(r) = typed::<AgreementReport>(s, d, "agreement") {
        agreement_findings(s, &r);
        let _ = write!(
            s,
            "<details><summary>details</summary><pre>{}</pre></details>",
            html(&pretty(d, 8000))
        );
    }
}

fn agreement_findings(s: &mut String, r: &AgreementReport) {
    if let Some(dv) = &r.divergence {
        let entry = |e: &DumpEntry| serde_json::to_string(e).unwrap_or_default();
        let _ = write!(
            s,
            "<p><b>First divergence</b> at index {}:</p><table><tr><th>node</th><th>entry</th></tr><tr><td>{}</td><td><code>{}</code></td></tr><tr><td>{}</td><td><code>{}</code></td></tr></table>",
            dv.index,
            html(&dv.node_a),
            html(&entry(&dv.entry_a)),
            html(&dv.node_b),
            html(&entry(&dv.entry_b)),
        );
    }
    if let Some(p) = &r.prefix_divergence {
        let _ = write!(
            s,
            "<div>committed prefixes differ through index {}: {} has chain <code>{}</code>, {} has <code>{}</code></div>",
            p.index,
            html(&p.node_a),
            html(&p.digest_a),
            html(&p.node_b),
            html(&p.digest_b)
        );
    }
    for dl in r.duplicate_leaders.iter().take(8) {
        let _ = write!(
            s,
            "<div>two leaders in term {}: <code>{}</code></div>",
            dl.term,
            html(&dl.nodes.join(", "))
        );
    }
    for lv in r.lost_votes.iter().take(8) {
        let _ = write!(s, "<div>lost vote: {}</div>", html(&lv.describe()));
    }
    for bp in r.broken_promises.iter().take(8) {
        let _ = write!(s, "<div>broken promise: {}</div>", html(&bp.describe()));
    }
    for x in r.split_executions.iter().take(8) {
        let _ = write!(s, "<div>split execution: {}</div>", html(&x.describe()));
    }
    for x in r.reversed_confirmations.iter().take(8) {
        let _ = write!(
            s,
            "<div>reversed confirmation: {}</div>",
            html(&x.describe())
        );
    }
    if !r.byzantine.is_empty() {
        let _ = write!(
            s,
            "<div>Byzantine, not judged: <code>{}</code></div>",
            html(&r.byzantine.join(", "))
        );
    }
    for dv in r.double_votes.iter().take(8) {
        let _ = write!(
            s,
            "<div>{} voted twice in term {}: for <code>{}</code></div>",
            html(&dv.node),
            dv.term,
            html(&dv.candidates.join(", "))
        );
    }
    if !r.missing_writes.is_empty() {
        let _ = write!(
            s,
            "<div>{} acknowledged writes missing from every log, e.g.:</div><ul>",
            r.missing_writes.len()
        );
        for w in r.missing_writes.iter().take(8) {
            let _ = write!(
                s,
                "<li><code>{} {} {}</code> (history index {})</li>",
                html(&w.f),
                html(w.key.as_deref().unwrap_or("")),
                html(&w.value.to_string()),
                w.history_index
            );
        }
        s.push_str("</ul>");
    }
}

fn pretty(v: &Value, cap: usize) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    if text.len() > cap {
        let cut = (0..=cap)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        format!(
            "{}\n… ({} more bytes in results.json)",
            &text[..cut],
            text.len() - cut
        )
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::checks::CheckerResult;
    use crate::controller::results::StoredResults;
    use sunder_checker::{Event, EventType, History, Process, Verdict};

    fn run_with(checkers: Vec<CheckerResult>) -> RunData {
        RunData {
            dir: "/nonexistent".into(),
            results: Some(StoredResults {
                name: "t".into(),
                run_dir: "/nonexistent".into(),
                seed: 1,
                replay: String::new(),
                verdict: Some(Verdict::Invalid),
                exit_code: 1,
                interrupted: false,
                harness_error: None,
                config: Value::Null,
                checkers,
                counterexample: None,
                clock_origin_ms: None,
                first_anomaly: None,
                stats: None,
                nodes: Default::default(),
                warnings: vec![],
                extra: Default::default(),
            }),
            config: Value::Null,
            replay: None,
            history: None,
            warnings: vec![],
            nodes: vec![],
            messages: None,
        }
    }

    fn ev(index: u64, kind: EventType, f: &str, value: Value) -> Event {
        Event {
            index,
            time: index,
            kind,
            process: Process::Client(0),
            f: f.into(),
            key: Some("s".into()),
            value,
            error: None,
            node: None,
            committed: None,
        }
    }

    /// The set section draws the set checker's own report, and names details of any
    /// other shape instead of drawing their fields as null.
    #[test]
    fn set_details_are_read_as_the_set_report() {
        let history = History::new(vec![
            ev(0, EventType::Invoke, "add", 7.into()),
            ev(1, EventType::Ok, "add", 7.into()),
            ev(2, EventType::Invoke, "read", Value::Null),
            ev(3, EventType::Ok, "read", serde_json::json!([])),
        ]);
        let report = sunder_checker::set::check(&history);
        assert_eq!(report.lost.count, 1, "{report:?}");
        let set = |details: Value| CheckerResult {
            name: "set".into(),
            verdict: Verdict::Invalid,
            reason: "lost".into(),
            details,
        };
        let mut s = String::new();
        checkers(
            &mut s,
            &run_with(vec![set(serde_json::to_value(&report).unwrap())]),
            None,
        );
        assert!(s.contains("attempted 1 · acknowledged 1"), "{s}");
        assert!(s.contains("<th>lost</th><td class=\"num\">1</td>"), "{s}");
        assert!(!s.contains("null"), "{s}");

        let mut s = String::new();
        checkers(
            &mut s,
            &run_with(vec![set(serde_json::json!({"attempted": 1}))]),
            None,
        );
        assert!(
            s.contains("not a set report this version reads: missing field"),
            "{s}"
        );
        assert!(!s.contains("attempted null"), "{s}");
    }

    /// The bank section draws the bank checker's counts and its broken reads.
    #[test]
    fn bank_details_show_the_reads_that_broke_the_bank() {
        let mut read = ev(
            3,
            EventType::Ok,
            "balances",
            serde_json::json!({"a0": -1, "a1": 12}),
        );
        read.key = None;
        let mut invoke = ev(2, EventType::Invoke, "balances", Value::Null);
        invoke.key = None;
        let history = History::new(vec![invoke, read]);
        let report = sunder_checker::bank::check(&history, 10);
        assert_eq!(report.verdict, Verdict::Invalid);
        let mut s = String::new();
        checkers(
            &mut s,
            &run_with(vec![CheckerResult {
                name: "bank".into(),
                verdict: report.verdict,
                reason: report.summary(),
                details: serde_json::to_value(&report).unwrap(),
            }]),
            None,
        );
        assert!(s.contains("2 accounts · total 20 · 1 reads"), "{s}");
        assert!(s.contains("<td class=\"num\">11</td><td>a0=-1</td>"), "{s}");
        assert!(s.contains("1 reads broke the bank in all"), "{s}");
    }
}
