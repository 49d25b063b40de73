//! What a run leaves behind for people and programs: `results.json`, the summary table on
//! the terminal, and a JUnit file for CI.

use super::checks::CheckerResult;
use super::config::TestConfig;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use sunder_checker::Verdict;
use sunder_checker::stats::Stats;

/// `results.json`.
#[derive(Debug, Serialize)]
pub struct Results<'a> {
    pub name: &'a str,
    pub run_dir: PathBuf,
    pub seed: u64,
    pub replay: String,
    /// Overall verdict; absent when the harness could not run the test.
    pub verdict: Option<Verdict>,
    pub exit_code: i32,
    /// The run was cut short by Ctrl-C or SIGTERM: the verdicts cover a partial history.
    pub interrupted: bool,
    /// Why the harness could not run the test, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub harness_error: Option<String>,
    pub config: &'a TestConfig,
    pub checkers: Vec<CheckerResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    /// Per node: how the run ended for it (dump fetched or why not, restarts).
    pub nodes: BTreeMap<String, Value>,
    /// Things that went wrong in the harness without stopping the test.
    pub warnings: Vec<String>,
}

/// The table of checkers, verdicts and reasons printed at the end of a run (and by
/// `sunder analyze`). Reasons are cut at 400 characters; results.json has them whole.
pub fn checker_table<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_content_arrangement(ContentArrangement::Dynamic);
    if t.width().is_none_or(|w| w < 60) {
        // Not a terminal (CI logs, pipes), or one that reports no width: wrap anyway.
        t.set_width(110);
    }
    t.set_header(vec!["checker", "verdict", "reason"]);
    for (name, verdict, reason) in rows {
        let reason: String = reason.chars().take(400).collect();
        t.add_row(vec![name.to_string(), verdict.to_string(), reason]);
    }
    t
}

impl Results<'_> {
    /// The summary table and the replay command.
    pub fn summary(&self) -> String {
        let t = checker_table(
            self.checkers
                .iter()
                .map(|c| (c.name.as_str(), c.verdict.as_str(), c.reason.as_str())),
        );
        let mut out = String::new();
        out.push_str(&format!("\n{} (seed {})\n", self.name, self.seed));
        if let Some(s) = &self.stats {
            let o = &s.overall;
            let lat = o
                .latency
                .map(|l| format!(", latency p50 {:.1} ms p99 {:.1} ms", l.p50_ms, l.p99_ms))
                .unwrap_or_default();
            out.push_str(&format!(
                "{} ops: ok {}  fail {}  info {}  ({:.0} ok/s{lat})\n",
                o.invoked, o.ok, o.fail, o.info, s.throughput
            ));
        }
        if !self.checkers.is_empty() {
            out.push_str(&t.to_string());
            out.push('\n');
        }
        let verdict = match (self.interrupted, &self.harness_error, self.verdict) {
            (_, Some(e), _) => format!("harness error: {}", e.lines().next().unwrap_or_default()),
            (true, _, Some(v)) => format!("INTERRUPTED (partial history: {v})"),
            (_, _, Some(v)) => v.to_string().to_uppercase(),
            _ => "no verdict".into(),
        };
        out.push_str(&format!("verdict: {verdict}   exit {}\n", self.exit_code));
        out.push_str(&format!("run:     {}\n", self.run_dir.display()));
        out.push_str(&format!("replay:  {}\n", self.replay));
        out
    }
}

/// A JUnit XML report: one test case per checker; an invalid verdict is a failure, an
/// unknown one an error, both with the reason and the replay command as message.
pub fn write_junit(path: &Path, r: &Results<'_>) -> std::io::Result<()> {
    let failures = r
        .checkers
        .iter()
        .filter(|c| c.verdict == Verdict::Invalid)
        .count();
    let errors = r
        .checkers
        .iter()
        .filter(|c| c.verdict == Verdict::Unknown)
        .count()
        + usize::from(r.harness_error.is_some());
    let tests = r.checkers.len() + usize::from(r.harness_error.is_some());
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<testsuites><testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">\n",
        crate::report::escape::markup(r.name)
    ));
    let detail = format!(
        "seed {}; replay: {}; run: {}",
        r.seed,
        r.replay,
        r.run_dir.display()
    );
    for c in &r.checkers {
        x.push_str(&format!(
            "  <testcase classname=\"sunder.{}\" name=\"{}\">",
            crate::report::escape::markup(r.name),
            crate::report::escape::markup(&c.name)
        ));
        match c.verdict {
            Verdict::Valid => {}
            Verdict::Invalid => x.push_str(&format!(
                "<failure message=\"{}\">{}</failure>",
                crate::report::escape::markup(&c.reason),
                crate::report::escape::markup(&detail)
            )),
            Verdict::Unknown => x.push_str(&format!(
                "<error message=\"{}\">{}</error>",
                crate::report::escape::markup(&c.reason),
                crate::report::escape::markup(&detail)
            )),
        }
        x.push_str("</testcase>\n");
    }
    if let Some(e) = &r.harness_error {
        x.push_str(&format!(
            "  <testcase classname=\"sunder.{}\" name=\"harness\"><error message=\"{}\">{}</error></testcase>\n",
            crate::report::escape::markup(r.name),
            crate::report::escape::markup(e),
            crate::report::escape::markup(&detail)
        ));
    }
    x.push_str("</testsuite></testsuites>\n");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_escapes_and_counts() {
        let cfg = crate::controller::config::tests_support::config();
        let r = Results {
            name: "t",
            run_dir: "/tmp/x".into(),
            seed: 1,
            replay: "sunder test --seed 1".into(),
            verdict: Some(Verdict::Invalid),
            exit_code: 1,
            interrupted: false,
            harness_error: None,
            config: &cfg,
            checkers: vec![
                CheckerResult {
                    name: "linearizability".into(),
                    verdict: Verdict::Invalid,
                    reason: "read 3 <but> \"2\"".into(),
                    details: Value::Null,
                },
                CheckerResult {
                    name: "availability".into(),
                    verdict: Verdict::Valid,
                    reason: "ok".into(),
                    details: Value::Null,
                },
            ],
            counterexample: None,
            stats: None,
            nodes: BTreeMap::new(),
            warnings: vec![],
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j/junit.xml");
        write_junit(&p, &r).unwrap();
        let x = std::fs::read_to_string(p).unwrap();
        assert!(x.contains("tests=\"2\" failures=\"1\" errors=\"0\""));
        assert!(x.contains("message=\"read 3 &lt;but&gt; &quot;2&quot;\""));
        assert!(r.summary().contains("INVALID"));
    }
}
