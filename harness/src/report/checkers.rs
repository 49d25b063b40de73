//! The checkers section of the report: each checker's verdict and reason, with what its
//! details say in a form a person reads: the linearizability counterexample (and the
//! `linearizability.html` view in an iframe), the set checker's lost and unexpected
//! elements, an agreement checker's first divergence. Everything embedded is escaped.

use super::escape::{html, url_path};
use super::page::verdict_badge;
use super::rundata::RunData;
use serde::Deserialize;
use serde_json::Value;
use std::fmt::Write;
use sunder_checker::agreement::{AgreementReport, DumpEntry};

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

fn linearizability(s: &mut String, d: &Value, cex_page: Option<&str>) {
    for p in d["partitions"].as_array().into_iter().flatten() {
        let Some(cex) = p.get("counterexample").filter(|c| !c.is_null()) else {
            continue;
        };
        let key = p["key"]
            .as_str()
            .map(|k| format!("key {k}"))
            .unwrap_or("the register".into());
        let _ = write!(
            s,
            "<p>{}: {} operations; longest linearizable prefix {} operations, ending in state <code>{}</code>. None of these could go next:</p><ul>",
            html(&key),
            p["ops"].as_array().map_or(0, Vec::len),
            cex["longest_prefix"].as_array().map_or(0, Vec::len),
            html(cex["state"].as_str().unwrap_or(""))
        );
        for a in cex["stuck"].as_array().into_iter().flatten().take(12) {
            let op = p["ops"]
                .as_array()
                .and_then(|ops| ops.iter().find(|o| o["id"] == a["op"]));
            let what = op
                .map(|o| {
                    let input = if o["input"].is_null() {
                        String::new()
                    } else {
                        format!(" {}", o["input"])
                    };
                    format!(
                        "process {} {}{input} → {}",
                        o["process"],
                        o["f"].as_str().unwrap_or(""),
                        o["output"]
                    )
                })
                .unwrap_or_else(|| format!("op {}", a["op"]));
            let _ = write!(
                s,
                "<li><code>{}</code>: {}</li>",
                html(&what),
                html(a["reason"].as_str().unwrap_or(""))
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

fn elements(e: &Value) -> String {
    let list: Vec<String> = e["elements"]
        .as_array()
        .into_iter()
        .flatten()
        .map(Value::to_string)
        .collect();
    let more = if e["truncated"].as_bool() == Some(true) {
        " …"
    } else {
        ""
    };
    format!("{}{more}", list.join(" "))
}

fn set(s: &mut String, d: &Value) {
    let _ = write!(
        s,
        "<p class=\"muted\">attempted {} · acknowledged {} · failed {} · indeterminate {}</p><table>",
        d["attempted"], d["acknowledged"], d["failed"], d["indeterminate"]
    );
    for (k, what) in [
        ("lost", "acknowledged, missing from the final reads"),
        ("unexpected", "read but never added"),
        ("failed_present", "add failed, yet present"),
        ("stale", "present in some reads, missing later"),
        ("never_read", "no final read saw them"),
        ("recovered", "indeterminate adds that took effect"),
    ] {
        let e = &d[k];
        let count = e["count"].as_u64().unwrap_or(0);
        if count == 0 && k != "lost" && k != "unexpected" {
            continue;
        }
        let _ = write!(
            s,
            "<tr><th>{k}</th><td class=\"num\">{count}</td><td class=\"muted\">{what}</td><td class=\"elements\">{}</td></tr>",
            html(&elements(e))
        );
    }
    s.push_str("</table>");
    for dis in d["disagreements"].as_array().into_iter().flatten().take(8) {
        let _ = write!(
            s,
            "<div>final reads of {} and {} differ: only in {}: {} <span class=\"elements\">{}</span>; only in {}: {} <span class=\"elements\">{}</span></div>",
            html(dis["a"].as_str().unwrap_or("?")),
            html(dis["b"].as_str().unwrap_or("?")),
            html(dis["a"].as_str().unwrap_or("?")),
            dis["only_in_a"]["count"],
            html(&elements(&dis["only_in_a"])),
            html(dis["b"].as_str().unwrap_or("?")),
            dis["only_in_b"]["count"],
            html(&elements(&dis["only_in_b"]))
        );
    }
}

/// The first divergence between nodes (an index and the two nodes' entries there),
/// duplicate leaders, double votes and missing writes, read as the checker's own
/// [`AgreementReport`]; details of another shape (null when the dumps could not be read)
/// are shown as JSON, with why they could not be read.
fn agreement(s: &mut String, d: &Value) {
    if d.is_null() {
        return;
    }
    match AgreementReport::deserialize(d) {
        Ok(r) => agreement_findings(s, &r),
        Err(e) => {
            let _ = write!(
                s,
                "<div class=\"warn\">these details are not an agreement report this version reads: {}</div>",
                html(&e.to_string())
            );
        }
    }
    let _ = write!(
        s,
        "<details><summary>details</summary><pre>{}</pre></details>",
        html(&pretty(d, 8000))
    );
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
