//! The pages `sunder serve` builds: the table of runs under the results directory, and a
//! plain listing of any directory under it.

use super::escape::{html, url_path};
use crate::controller::results::StoredResults;
use serde_json::Value;
use std::fmt::Write;
use std::path::Path;
use std::time::SystemTime;

/// How deep under the root runs are looked for (`<name>/<timestamp>/` is 2).
const MAX_DEPTH: usize = 6;

/// One run in the table.
#[derive(Debug, Clone)]
pub struct RunRow {
    /// The run directory relative to the root, `/`-separated, no leading slash.
    pub rel: String,
    pub name: String,
    pub time: String,
    pub started: SystemTime,
    pub target: String,
    pub faults: String,
    pub verdict: Option<String>,
    pub duration: String,
    /// False until someone opens it: `serve` writes a missing report on first request.
    pub has_report: bool,
    /// The sweep directory (relative, like `rel`) this run belongs to, if any.
    pub sweep: Option<String>,
}

/// Every directory under `root` holding a `results.json` or a `config.json`, newest first.
/// Symbolic links are not followed (`latest` would list a run twice).
pub fn runs(root: &Path) -> Vec<RunRow> {
    let mut out = Vec::new();
    walk(root, "", 0, None, &mut out);
    out.sort_by(|a, b| b.started.cmp(&a.started).then_with(|| b.rel.cmp(&a.rel)));
    out
}

fn walk(dir: &Path, rel: &str, depth: usize, sweep: Option<&str>, out: &mut Vec<RunRow>) {
    if let Some(mut row) = run_row(dir, rel) {
        row.sweep = sweep.map(str::to_string);
        out.push(row);
        return;
    }
    // A sweep (`sunder test --seeds ...`) holds ordinary run directories: list them, grouped.
    let sweep = if dir.join("sweep.json").is_file() {
        Some(rel)
    } else {
        sweep
    };
    if depth >= MAX_DEPTH {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().to_string();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || name.starts_with('.') || name == "nodes" {
            continue;
        }
        let sub = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        walk(&e.path(), &sub, depth + 1, sweep, out);
    }
}

fn read_json(p: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

fn run_row(dir: &Path, rel: &str) -> Option<RunRow> {
    // Unreadable (not JSON, or not this version's shape) counts as absent here; the run's
    // own page says why.
    let results = StoredResults::read(&dir.join("results.json"))
        .ok()
        .flatten();
    let config_file = read_json(&dir.join("config.json"));
    let marker = if results.is_some() {
        "results.json"
    } else {
        "config.json"
    };
    if results.is_none() && config_file.is_none() {
        // A file that is there but not JSON still makes this a run: show it, broken.
        if !dir.join("results.json").is_file() && !dir.join("config.json").is_file() {
            return None;
        }
    }
    let r = results.as_ref();
    let config = match r.map(|r| &r.config) {
        Some(c) if !c.is_null() => c.clone(),
        _ => config_file
            .map(|c| c["config"].clone())
            .unwrap_or(Value::Null),
    };
    // The config is written first, at the start of the run: its time is the run's.
    let started = std::fs::metadata(dir.join("config.json"))
        .or_else(|_| std::fs::metadata(dir.join(marker)))
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let faults = match &config["nemesis"] {
        Value::Array(a) if a.is_empty() => "none".to_string(),
        Value::Array(a) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => String::new(),
        v => v.to_string(),
    };
    let duration = match r.and_then(|r| r.stats.as_ref()).map(|s| s.duration_s) {
        Some(d) => format!("{d:.1} s"),
        None => config["time_limit"]
            .as_str()
            .map(|t| format!("{t} (limit)"))
            .unwrap_or_default(),
    };
    let verdict = match r {
        None => None,
        Some(r) if r.harness_error.is_some() => Some("error".into()),
        Some(r) => r.verdict.map(|v| v.as_str().to_string()),
    };
    Some(RunRow {
        rel: rel.to_string(),
        name: r
            .map(|r| r.name.as_str())
            .or(config["name"].as_str())
            .unwrap_or(rel)
            .to_string(),
        time: humantime::format_rfc3339_seconds(started)
            .to_string()
            .replace('T', " "),
        started,
        target: config["target"].as_str().unwrap_or("").to_string(),
        faults,
        verdict,
        duration,
        has_report: dir.join(super::REPORT).is_file(),
        sweep: None,
    })
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;padding:16px 24px;max-width:1250px;color:#1d1f24;background:#fbfbfc}\
h1{font-size:21px}table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 10px 4px 0;border-bottom:1px solid #e6e7ee;vertical-align:top}\
th{color:#445}a{color:#1f5fbf}.badge{display:inline-block;padding:1px 9px;border-radius:10px;color:#fff;font-weight:600;font-size:12px;text-transform:uppercase}\
.v-valid{background:#2a9d4b}.v-invalid{background:#d1495b}.v-unknown{background:#e39b1b}.v-error,.v-none{background:#778}\
.muted{color:#667}.filters{margin:8px 0 12px}.filters input{width:320px;padding:3px 6px}td.num{text-align:right}";

fn badge(v: Option<&str>) -> String {
    let v = v.unwrap_or("none");
    let class = match v {
        "valid" | "invalid" | "unknown" | "error" => v,
        _ => "none",
    };
    format!(
        "<span class=\"badge v-{class}\">{}</span>",
        html(if v == "none" { "no verdict" } else { v })
    )
}

/// The index page: the runs table with a text and verdict filter.
pub fn index_page(root: &str, rows: &[RunRow]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>sunder runs</title><style>{STYLE}</style></head><body>\
         <h1>sunder runs</h1><div class=\"muted\">{} · {} runs · <a href=\"./?list\">browse files</a></div>\
         <div class=\"filters\"><input id=\"q\" type=\"search\" placeholder=\"filter: name, target, fault…\" autofocus> \
         <select id=\"verdict\"><option value=\"\">any verdict</option><option>valid</option><option>invalid</option><option>unknown</option><option>error</option><option value=\"none\">no verdict</option></select> \
         <span id=\"shown\" class=\"muted\"></span></div>\
         {}<table id=\"runs\"><thead><tr><th>name</th><th>time</th><th>target</th><th>faults</th><th>verdict</th><th>duration</th><th>files</th></tr></thead><tbody>",
        html(root),
        rows.len(),
        sweeps_table(rows),
    );
    for r in rows {
        let href = url_path(&format!("{}/", r.rel));
        let _ = write!(
            s,
            "<tr data-verdict=\"{}\"><td><a href=\"{}{}\">{}</a><div class=\"muted\">{}{}</div></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td><a href=\"{}\">files</a>{}</td></tr>",
            html(r.verdict.as_deref().unwrap_or("none")),
            html(&href),
            super::REPORT,
            html(&r.name),
            html(&r.rel),
            r.sweep
                .as_deref()
                .map(|w| format!(" · sweep {}", html(w)))
                .unwrap_or_default(),
            html(&r.time),
            html(&r.target),
            html(&r.faults),
            badge(r.verdict.as_deref()),
            html(&r.duration),
            html(&href),
            if r.has_report {
                ""
            } else {
                " <span class=\"muted\">(report written on first open)</span>"
            },
        );
    }
    s.push_str("</tbody></table>");
    if rows.is_empty() {
        s.push_str(
            "<p class=\"muted\">No runs here yet: <code>sunder test</code> writes them.</p>",
        );
    }
    s.push_str(
        "<script>(function(){var q=document.getElementById('q'),v=document.getElementById('verdict'),shown=document.getElementById('shown');\
         var rows=[].slice.call(document.querySelectorAll('#runs tbody tr'));\
         function f(){var t=q.value.toLowerCase().split(/\\s+/).filter(Boolean),want=v.value,n=0;\
         rows.forEach(function(r){var text=r.textContent.toLowerCase();var ok=(!want||r.dataset.verdict===want)&&t.every(function(w){return text.indexOf(w)>=0});\
         r.style.display=ok?'':'none';if(ok)n++});shown.textContent=n+' shown'}\
         q.addEventListener('input',f);v.addEventListener('change',f);f()})();</script></body></html>\n",
    );
    s
}

/// The sweeps among `rows`, one line each with its verdict counts; empty without sweeps.
/// "runs" puts the sweep's directory into the filter, showing its runs below.
fn sweeps_table(rows: &[RunRow]) -> String {
    let mut groups: std::collections::BTreeMap<&str, (&str, &str, Vec<&str>)> =
        std::collections::BTreeMap::new();
    for r in rows {
        if let Some(w) = &r.sweep {
            let g = groups.entry(w).or_insert((&r.name, &r.time, Vec::new()));
            g.2.push(r.verdict.as_deref().unwrap_or("none"));
            if r.time.as_str() < g.1 {
                g.1 = &r.time; // the sweep started with its first run
            }
        }
    }
    if groups.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "<h2 style=\"font-size:16px\">sweeps</h2><table id=\"sweeps\"><thead><tr><th>sweep</th><th>started</th><th>runs</th><th>verdicts</th><th>files</th></tr></thead><tbody>",
    );
    for (rel, (name, time, verdicts)) in groups.iter().rev() {
        let mut counts = std::collections::BTreeMap::new();
        for v in verdicts {
            *counts.entry(*v).or_insert(0usize) += 1;
        }
        let badges = counts
            .iter()
            .map(|(v, n)| format!("{n} {}", badge(Some(v))))
            .collect::<Vec<_>>()
            .join(" ");
        let href = url_path(&format!("{rel}/"));
        let _ = write!(
            s,
            "<tr><td>{}<div class=\"muted\">{}</div></td><td>{}</td><td class=\"num\"><a href=\"#\" data-sweep=\"{}\" onclick=\"var q=document.getElementById('q');q.value=this.dataset.sweep;q.dispatchEvent(new Event('input'));return false\">{}</a></td><td>{badges}</td><td><a href=\"{}\">files</a> · <a href=\"{}summary.txt\">summary</a></td></tr>",
            html(name),
            html(rel),
            html(time),
            html(rel),
            verdicts.len(),
            html(&href),
            html(&href),
        );
    }
    s.push_str("</tbody></table><h2 style=\"font-size:16px\">runs</h2>");
    s
}

/// A listing of `dir`, shown at URL path `url` (ending in `/`).
pub fn listing_page(url: &str, dir: &Path) -> std::io::Result<String> {
    let mut entries: Vec<(String, bool, u64)> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let meta = std::fs::metadata(e.path()).ok();
            (
                name,
                meta.as_ref().is_some_and(|m| m.is_dir()),
                meta.map_or(0, |m| m.len()),
            )
        })
        .filter(|(n, _, _)| !n.starts_with('.'))
        .collect();
    entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0}</title><style>{STYLE}</style></head><body><h1>{0}</h1><p><a href=\"../\">..</a> · <a href=\"/\">all runs</a></p><table><tr><th>name</th><th>size</th></tr>",
        html(url)
    );
    for (name, is_dir, len) in entries {
        let (href, shown) = if is_dir {
            (format!("{name}/"), format!("{name}/"))
        } else {
            (name.clone(), name)
        };
        let size = if is_dir {
            String::new()
        } else {
            len.to_string()
        };
        let _ = write!(
            s,
            "<tr><td><a href=\"{}\">{}</a></td><td class=\"num\">{size}</td></tr>",
            html(&url_path(&href)),
            html(&shown)
        );
    }
    s.push_str("</table></body></html>\n");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A results file as the controller writes one (its own type), read by the index.
    fn run(dir: &Path, verdict: &str) {
        std::fs::create_dir_all(dir).unwrap();
        let verdict: sunder_checker::Verdict =
            serde_json::from_value(Value::String(verdict.into())).unwrap();
        let r = StoredResults {
            name: "t".into(),
            run_dir: dir.to_path_buf(),
            seed: 1,
            replay: "sunder test --seed 1".into(),
            verdict: Some(verdict),
            exit_code: verdict.exit_code(),
            interrupted: false,
            harness_error: None,
            config: serde_json::json!({"target": "raft"}),
            checkers: vec![],
            counterexample: None,
            clock_origin_ms: None,
            first_anomaly: None,
            stats: None,
            nodes: Default::default(),
            warnings: vec![],
            extra: Default::default(),
        };
        std::fs::write(dir.join("results.json"), serde_json::to_string(&r).unwrap()).unwrap();
    }

    #[test]
    fn runs_of_a_sweep_are_grouped_with_their_verdict_counts() {
        let root = tempfile::tempdir().unwrap();
        let sweep = root.path().join("t/sweep-1");
        std::fs::create_dir_all(&sweep).unwrap();
        std::fs::write(sweep.join("sweep.json"), "{}").unwrap();
        run(&sweep.join("t/a"), "valid");
        run(&sweep.join("t/b"), "valid");
        run(&sweep.join("t/c"), "invalid");
        run(&root.path().join("t/solo"), "valid");
        let rows = runs(root.path());
        assert_eq!(rows.len(), 4);
        let in_sweep = rows
            .iter()
            .filter(|r| r.sweep.as_deref() == Some("t/sweep-1"))
            .count();
        assert_eq!(in_sweep, 3);
        let page = index_page("root", &rows);
        let table = page.split("id=\"sweeps\"").nth(1).expect("a sweeps table");
        let table = table.split("</table>").next().unwrap();
        assert!(table.contains(">3</a>"), "{table}");
        assert!(
            table.contains("2 <span class=\"badge v-valid\">"),
            "{table}"
        );
        assert!(
            table.contains("1 <span class=\"badge v-invalid\">"),
            "{table}"
        );
        assert!(!index_page("root", &runs(&root.path().join("t/solo"))).contains("id=\"sweeps\""));
    }
}
