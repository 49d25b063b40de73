//! The HTML counterexample: one self-contained page (inline CSS and script, no network)
//! that draws a [`LinearizabilityReport`].
//!
//! ```text
//!   LinearizabilityReport ──► page data (JSON, escaped for <script>) ──┐
//!   page.css, page.js (include_str!) ─────────────────────────────────┴─► one HTML string
//!                                          │
//!          in the browser: page.js builds an SVG timeline per partition from the data:
//!          a row per process, ops as bars, the partial linearization numbered and joined,
//!          the ops that could not be placed next in red, zoom/pan, a sticky info panel
//! ```
//!
//! The page is built in the browser from one JSON blob rather than as server-side SVG so
//! that a partition of thousands of ops stays a few hundred kilobytes and zooming only
//! moves existing elements.

use crate::linear::LinearizabilityReport;
use serde_json::json;

const CSS: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// Renders `report` as a standalone page titled `title`.
pub fn render_report(title: &str, report: &LinearizabilityReport) -> String {
    // Invalid partitions first: they are what the reader came for.
    let mut parts: Vec<_> = report.partitions.iter().collect();
    parts.sort_by_key(|p| match p.verdict {
        crate::Verdict::Invalid => 0,
        crate::Verdict::Unknown => 1,
        crate::Verdict::Valid => 2,
    });
    let data = json!({
        "title": title,
        "verdict": report.verdict,
        "model": report.model,
        "ops": report.ops,
        "summary": report.summary,
        "partitions_total": report.partitions_total,
        "elapsed_ms": report.elapsed_ms,
        "timed_out": report.timed_out,
        "partitions": parts,
    });
    let mut page = String::with_capacity(64 * 1024);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    page.push_str(&format!("<title>{}</title>\n", escape_html(title)));
    page.push_str("<style>\n");
    page.push_str(CSS);
    page.push_str("</style>\n</head>\n<body>\n");
    page.push_str(&format!(
        "<header><h1>{}</h1><p class=\"summary verdict-{}\">{} · model {} · {} ops · {} partitions · {} ms</p></header>\n",
        escape_html(title),
        report.verdict,
        escape_html(&report.summary),
        escape_html(&report.model),
        report.ops,
        report.partitions_total,
        report.elapsed_ms,
    ));
    page.push_str(BODY);
    page.push_str("<script type=\"application/json\" id=\"sunder-data\">");
    page.push_str(&script_safe_json(&data.to_string()));
    page.push_str("</script>\n<script>\n");
    page.push_str(SCRIPT);
    page.push_str("</script>\n</body>\n</html>\n");
    page
}

/// The static skeleton the script fills.
const BODY: &str = r#"<div id="controls">
  <label>partition <select id="partition"></select></label>
  <button id="zoom-in" title="zoom in (or wheel)">+</button>
  <button id="zoom-out" title="zoom out (or wheel)">−</button>
  <button id="zoom-fit" title="show the whole history">fit</button>
  <button id="zoom-fail" title="zoom to the failing point">failing point</button>
  <label><input type="checkbox" id="only-relevant"> only the prefix and the failing ops</label>
  <span class="legend">
    <span class="sw ok"></span>ok
    <span class="sw info"></span>info (open to the end)
    <span class="sw lin"></span>in the longest linearizable prefix (step number)
    <span class="sw stuck"></span>could not be placed next
    <span class="sw failline"></span>failing point
  </span>
</div>
<main>
  <div id="timeline"><p id="nothing"></p><svg id="svg"></svg></div>
  <aside id="panel">
    <section id="hover"><h2>operation</h2><p class="hint">hover or click a bar</p></section>
    <section id="evidence"></section>
  </aside>
</main>
<noscript><p>This page draws the counterexample with JavaScript; the data is in the
<code>sunder-data</code> script element.</p></noscript>
"#;

/// JSON that cannot end its `<script>` element early or open a comment: `<`, `>` and `&`
/// only occur inside JSON strings, where `\u003c` means the same.
fn script_safe_json(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_cannot_close_the_script() {
        let s = script_safe_json(r#"{"v":"</script><!--"}"#);
        assert!(!s.contains("</"));
        assert!(!s.contains("<!--"));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back["v"], "</script><!--");
    }
}
