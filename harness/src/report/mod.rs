//! What a person looks at after a run: `report.html` in the run directory, and the pages
//! `sunder serve` builds to browse many runs.
//!
//! ```text
//!   run dir ──► RunData (results.json, config.json, history.jsonl, nodes/) ──► page::render
//!                  │                                                          │ plot (SVG)
//!                  │                                                          │ timeline (canvas)
//!                  ├─ messages.jsonl (Maelstrom) ─► messages::build ──────────────┤ message diagram
//!                  └─ invalid linearizability ─► linearizability.html ◄────────┘ iframe + link
//!                                                                              ▼
//!                                                                          report.html
//!   results dir ──► index::runs (a row per run) ──► index page ─┐
//!                                                              ├─► server (127.0.0.1, GET only,
//!   any directory under it ──► index::listing ─────────────────┘    nothing outside the root)
//! ```
//!
//! - [`rundata`]: reading a run. [`bands`]: nemesis faults as intervals. [`timeline`]: the
//!   operation timeline's compact data. [`messages`]: the message diagram's (Maelstrom
//!   runs). [`plot`]: SVG charts; [`chain_plot`]: chain height and forks (pow runs).
//!   [`page`]: the report page; [`checkers`]: its checkers section. `timeaxis.js` is the
//!   zoom and pan both canvases share.
//! - [`index`]: the runs table and directory listings. [`server`]: the HTTP server.
//! - [`escape`]: HTML, `<script>` JSON and URL escaping for everything embedded.

pub mod bands;
pub mod chain_plot;
pub mod checkers;
pub mod escape;
pub mod index;
pub mod messages;
pub mod page;
pub mod plot;
pub mod rundata;
pub mod server;
pub mod timeline;

use anyhow::Context;
use std::path::{Path, PathBuf};
use sunder_checker::linear::LinearizabilityReport;

pub use rundata::RunData;

/// The report's file name in a run directory.
pub const REPORT: &str = "report.html";
/// The counterexample view, written next to it for an invalid linearizability verdict.
pub const COUNTEREXAMPLE: &str = "linearizability.html";

/// Reads the run in `run_dir` and writes its `report.html` (and `linearizability.html`
/// when linearizability is invalid); returns the report's path.
pub fn write_report(run_dir: &Path) -> anyhow::Result<PathBuf> {
    let run = RunData::load(run_dir)?;
    let cex_path = run_dir.join(COUNTEREXAMPLE);
    let cex = counterexample_page(&run)?;
    let cex_page = match cex {
        Some(page) => {
            std::fs::write(&cex_path, page)
                .with_context(|| format!("write {}", cex_path.display()))?;
            Some(COUNTEREXAMPLE)
        }
        None => {
            // A re-check that no longer finds the violation must not leave the old one up.
            if cex_path.is_file() {
                std::fs::remove_file(&cex_path)
                    .with_context(|| format!("remove {}", cex_path.display()))?;
            }
            None
        }
    };
    let out = run_dir.join(REPORT);
    // Written to a temporary name and renamed: a browser (or `serve`) never sees half a page.
    let tmp = run_dir.join(format!(".{REPORT}.{}", std::process::id()));
    std::fs::write(&tmp, page::render(&run, cex_page))
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, &out)
        .with_context(|| format!("rename {} to {}", tmp.display(), out.display()))?;
    Ok(out)
}

/// The counterexample page, when the linearizability checker found the history invalid.
fn counterexample_page(run: &RunData) -> anyhow::Result<Option<String>> {
    let Some(c) = run
        .checkers()
        .iter()
        .find(|c| c.name == "linearizability" && c.verdict == sunder_checker::Verdict::Invalid)
    else {
        return Ok(None);
    };
    let report: LinearizabilityReport =
        serde_json::from_value(c.details.clone()).with_context(|| {
            format!(
                "read the linearizability report in {}",
                run.dir.join("results.json").display()
            )
        })?;
    Ok(Some(sunder_checker::html::render_report(
        &run.name(),
        &report,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    /// 100,000 operations (ten workers, overlapping, some failing) embed as a compact
    /// array: the page stays a few megabytes and holds every operation.
    #[test]
    fn a_hundred_thousand_operations_stay_compact() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(
            dir.join("config.json"),
            r#"{"config":{"name":"big","target":"lww","workload":"set","nemesis":[]},"replay":"sunder test"}"#,
        )
        .unwrap();
        let mut h = String::new();
        let (mut index, n) = (0u64, 100_000u64);
        for i in 0..n {
            let (p, t) = (i % 10, (i / 10) * 1_000_000 + (i % 10) * 50_000);
            let done = if i % 97 == 0 { "fail" } else { "ok" };
            for (kind, time) in [("invoke", t), (done, t + 700_000)] {
                let _ = writeln!(
                    h,
                    r#"{{"index":{index},"time":{time},"type":"{kind}","process":{p},"f":"add","key":"set","value":{i}}}"#
                );
                index += 1;
            }
        }
        std::fs::write(dir.join("history.jsonl"), h).unwrap();
        let page = std::fs::read_to_string(write_report(dir).unwrap()).unwrap();
        assert!(page.contains("100000 operations in 10 lanes"));
        assert!(page.len() < 12_000_000, "report is {} bytes", page.len());
        let data = page
            .split("id=\"timeline-data\">")
            .nth(1)
            .unwrap()
            .split("</script>")
            .next()
            .unwrap();
        let t: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(t["ops"].as_array().unwrap().len(), 5 * n as usize);
        assert!(
            page.contains("No results.json"),
            "an unfinished run says so"
        );
    }

    /// A results file of another shape (hand-edited, or from a version that wrote fields
    /// differently) is named with what is wrong, never drawn as a run without results.
    #[test]
    fn a_results_file_this_version_cannot_read_is_named_on_the_page() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(
            dir.join("config.json"),
            r#"{"config":{"name":"odd","target":"raft","seed":3},"replay":"sunder test --seed 3"}"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("results.json"),
            r#"{"name":"odd","seed":3,"exit_code":0,"verdict":"fine","config":{}}"#,
        )
        .unwrap();
        let page = std::fs::read_to_string(write_report(dir).unwrap()).unwrap();
        assert!(
            page.contains("is not a results file this version reads"),
            "the page says why the results are not shown"
        );
        assert!(page.contains("unknown variant"), "and names the bad field");
        assert!(!page.contains("No results.json"));
        assert!(
            page.contains("sunder test --seed 3"),
            "config.json still serves"
        );
    }
}
