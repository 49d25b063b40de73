//! The report page: sections assembled as HTML strings, every embedded value escaped.
//!
//! ```text
//!   RunData ─► header (verdict, stats) ─► checkers (reasons; set elements; agreement
//!          │   divergence; linearizability counterexample → linearizability.html iframe)
//!          ├─► configuration + replay ─► plots (plot.rs) ─► chain height and forks (pow:
//!          │   chain_plot.rs) ─► timeline (timeline.rs + .js)
//!          ├─► messages (Maelstrom: messages.rs + .js; both canvases zoom with timeaxis.js)
//!          └─► nodes (log links) ─► files ─► warnings
//! ```

use super::bands::{self, Band};
use super::escape::{html, script_json, url_path};
use super::plot;
use super::rundata::RunData;
use super::timeline;
use serde_json::Value;
use std::fmt::Write;
use sunder_checker::stats::{Latency, OpStats, Stats};

const CSS: &str = include_str!("report.css");
const TIMELINE_JS: &str = include_str!("timeline.js");
/// The zoom, pan, ticks and fault bands the timeline and the message diagram share.
const TIMEAXIS_JS: &str = include_str!("timeaxis.js");

/// Renders the page. `cex_page` names the counterexample page when one was written.
pub fn render(run: &RunData, cex_page: Option<&str>) -> String {
    let name = run.name();
    let bands: Vec<Band> = run.history.as_ref().map(bands::bands).unwrap_or_default();
    let stats = run.stats();
    let mut s = String::with_capacity(64 * 1024);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>sunder: {}</title><style>{CSS}</style><script>{TIMEAXIS_JS}</script></head><body>\n",
        html(&name)
    );
    header(&mut s, run, &name, stats.as_ref());
    super::checkers::checkers(&mut s, run, cex_page);
    config(&mut s, run);
    s.push_str("<h2 id=\"plots\">Throughput and latency</h2>\n");
    match &stats {
        Some(st) => s.push_str(&plot::charts(&st.series, &bands)),
        None => s.push_str("<p class=\"muted\">No statistics: the run recorded no history.</p>"),
    }
    super::chain_plot::section(&mut s, run, &bands);
    faults(&mut s, &bands);
    timeline_section(&mut s, run, &bands);
    super::messages::section(&mut s, run);
    nodes(&mut s, run);
    files(&mut s, run, cex_page);
    s.push_str("</body></html>\n");
    s
}

pub fn verdict_badge(v: Option<&str>) -> String {
    match v {
        Some(v @ ("valid" | "invalid" | "unknown")) => {
            format!("<span class=\"badge v-{v}\">{v}</span>")
        }
        Some(other) => format!("<span class=\"badge v-none\">{}</span>", html(other)),
        None => "<span class=\"badge v-none\">no verdict</span>".into(),
    }
}

fn header(s: &mut String, run: &RunData, name: &str, stats: Option<&Stats>) {
    let r = run.results.as_ref();
    let _ = write!(
        s,
        "<h1>{} {}</h1><div class=\"muted\">{} · seed {} · exit {}</div>",
        html(name),
        verdict_badge(r.and_then(|r| r.verdict).map(|v| v.as_str())),
        html(&run.dir.display().to_string()),
        html(&run.config["seed"].to_string()),
        html(&r.map_or("none".into(), |r| r.exit_code.to_string())),
    );
    if let Some(e) = r.and_then(|r| r.harness_error.as_deref()) {
        let _ = write!(
            s,
            "<div class=\"warn\"><b>The harness could not run this test:</b> {}</div>",
            html(e)
        );
    }
    if let Some(a) = r.and_then(|r| r.first_anomaly.as_ref()) {
        let _ = write!(
            s,
            "<div class=\"anomaly\"><b>First anomaly:</b> {}</div>",
            html(&a.line())
        );
    }
    if r.is_some_and(|r| r.interrupted) {
        s.push_str("<div class=\"warn\">Interrupted: the verdicts cover a partial history.</div>");
    }
    if r.is_none() && !run.dir.join("results.json").is_file() {
        s.push_str("<div class=\"warn\">No results.json: the run did not finish.</div>");
    }
    let warnings = r
        .map(|r| r.warnings.as_slice())
        .unwrap_or_default()
        .iter()
        .chain(&run.warnings);
    for w in warnings {
        let _ = write!(s, "<div class=\"warn\">{}</div>", html(w));
    }
    let Some(st) = stats else { return };
    let _ = write!(
        s,
        "<h2 id=\"stats\">Operations</h2><table><tr><th>f</th><th class=\"num\">invoked</th><th class=\"num\">ok</th><th class=\"num\">fail</th><th class=\"num\">info</th><th class=\"num\">pending</th><th class=\"num\">p50 ms</th><th class=\"num\">p99 ms</th><th class=\"num\">max ms</th></tr>"
    );
    let row = |s: &mut String, f: &str, o: &OpStats| {
        let lat = |pick: fn(&Latency) -> f64| {
            o.latency
                .as_ref()
                .map(|l| format!("{:.2}", pick(l)))
                .unwrap_or_default()
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            html(f),
            o.invoked,
            o.ok,
            o.fail,
            o.info,
            o.pending,
            lat(|l| l.p50_ms),
            lat(|l| l.p99_ms),
            lat(|l| l.max_ms)
        );
    };
    for (f, o) in &st.by_f {
        row(s, f, o);
    }
    row(s, "all", &st.overall);
    let _ = write!(
        s,
        "</table><div class=\"muted\">{:.1} s of operations, {:.0} ok/s</div>",
        st.duration_s, st.throughput
    );
}

fn config(s: &mut String, run: &RunData) {
    s.push_str("<h2 id=\"config\">Configuration</h2>");
    if let Some(replay) = &run.replay {
        let _ = write!(
            s,
            "<p>Replay this run (same seed, same schedule):</p><pre id=\"replay\">{}</pre>",
            html(replay)
        );
    }
    s.push_str("<table>");
    for (k, v) in run.config.as_object().into_iter().flatten() {
        let text = match v {
            Value::String(t) => t.clone(),
            Value::Array(a) if a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            other => other.to_string(),
        };
        let _ = write!(s, "<tr><th>{}</th><td>{}</td></tr>", html(k), html(&text));
    }
    s.push_str("</table>\n");
}

fn faults(s: &mut String, bands: &[Band]) {
    if bands.is_empty() {
        return;
    }
    s.push_str("<h2 id=\"faults\">Faults</h2><table><tr><th>fault</th><th>what</th><th class=\"num\">from</th><th class=\"num\">to</th></tr>");
    for b in bands {
        let to = if b.open {
            format!("{:.2} s (end, never stopped)", b.to as f64 / 1e9)
        } else {
            format!("{:.2} s", b.to as f64 / 1e9)
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{:.2} s</td><td class=\"num\">{}</td></tr>",
            html(&b.kind),
            html(&b.label),
            b.from as f64 / 1e9,
            to
        );
    }
    s.push_str("</table>\n");
}

fn timeline_section(s: &mut String, run: &RunData, bands: &[Band]) {
    s.push_str("<h2 id=\"timeline-h\">Operations over time</h2>");
    let Some(h) = &run.history else {
        s.push_str("<p class=\"muted\">No history.</p>");
        return;
    };
    let t = timeline::build(h);
    let _ = write!(
        s,
        "<div class=\"tl-controls\">{} operations in {} lanes (a lane holds one worker's successive processes) · wheel to zoom, drag to pan, double-click to reset <button id=\"tl-reset\">reset</button>\
         <span class=\"key ok\"></span>ok<span class=\"key fail\"></span>fail<span class=\"key info\"></span>info<span class=\"key pending\"></span>pending</div>\
         <div id=\"tl-wrap\"><canvas id=\"timeline\"></canvas></div><div id=\"tl-tip\"></div>\
         <script type=\"application/json\" id=\"timeline-data\">{}</script><script type=\"application/json\" id=\"bands-data\">{}</script><script>{TIMELINE_JS}</script>",
        t.procs.len(),
        t.lanes.len(),
        script_json(&t),
        script_json(&bands)
    );
}

fn nodes(s: &mut String, run: &RunData) {
    s.push_str("<h2 id=\"nodes\">Nodes</h2>");
    if run.nodes.is_empty() {
        s.push_str("<p class=\"muted\">No node files.</p>");
        return;
    }
    s.push_str("<table><tr><th>node</th><th>files</th><th>how it ended</th></tr>");
    for n in &run.nodes {
        let links: Vec<String> = n
            .files
            .iter()
            .map(|f| {
                format!(
                    "<a href=\"{}\">{}</a>",
                    html(&url_path(f)),
                    html(f.trim_start_matches("nodes/"))
                )
            })
            .collect();
        let outcome = run.results.as_ref().and_then(|r| r.nodes.get(&n.id));
        let text = match outcome.and_then(Value::as_object) {
            Some(m) => m
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}: {}",
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    )
                })
                .collect::<Vec<_>>()
                .join(" · "),
            None => String::new(),
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            html(&n.id),
            links.join(" "),
            html(&text)
        );
    }
    s.push_str("</table>\n");
}

fn files(s: &mut String, run: &RunData, cex_page: Option<&str>) {
    s.push_str("<h2 id=\"files\">Files</h2><p>");
    let mut names: Vec<&str> = [
        "config.json",
        "schedule.json",
        "history.jsonl",
        sunder_maelstrom::messages::FILE,
        "results.json",
    ]
    .into_iter()
    .filter(|f| run.dir.join(f).is_file())
    .collect();
    names.extend(cex_page);
    let links: Vec<String> = names
        .iter()
        .map(|f| format!("<a href=\"{}\">{}</a>", html(&url_path(f)), html(f)))
        .collect();
    s.push_str(&links.join(" · "));
    s.push_str("</p>\n");
}
