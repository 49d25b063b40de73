//! What a run leaves behind for people and programs: `results.json`, the summary table on
//! the terminal, and a JUnit file for CI.
//!
//! ```text
//!   run / analyze ──► Results<&TestConfig> ──► results.json ──► Results<Value> ──► report, sweep,
//!                      (the writer)                              (every reader)     analyze
//! ```
//!
//! One struct for both sides: a renamed field fails to compile or fails the round trip of
//! `tests::the_writer_and_the_readers_share_every_field`, never shows as "none" in a report.
//! Readers take the configuration as plain JSON (a simulated run and older versions write
//! other shapes), and everything a run that stopped early may lack has a default.

use super::checks::CheckerResult;
use comfy_table::{ContentArrangement, Table};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use sunder_checker::Verdict;
use sunder_checker::anomaly::Anomaly;
use sunder_checker::stats::Stats;

/// `results.json`. `C` is the configuration: the run's own
/// [`TestConfig`](super::config::TestConfig) when written,
/// plain JSON when read back ([`StoredResults`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results<C = Value> {
    pub name: String,
    /// Absent from hand-written files; a reader uses the directory it read.
    #[serde(default)]
    pub run_dir: PathBuf,
    pub seed: u64,
    /// The command that replays the run; empty when a hand-written file has none.
    #[serde(default)]
    pub replay: String,
    /// Overall verdict; absent when the harness could not run the test.
    #[serde(default)]
    pub verdict: Option<Verdict>,
    pub exit_code: i32,
    /// The run was cut short by Ctrl-C or SIGTERM: the verdicts cover a partial history.
    #[serde(default)]
    pub interrupted: bool,
    /// Why the harness could not run the test, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness_error: Option<String>,
    pub config: C,
    #[serde(default)]
    pub checkers: Vec<CheckerResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Value>,
    /// When the run first went wrong (invalid runs): the earliest evidence of any checker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_anomaly: Option<Anomaly>,
    /// The nodes' wall clock (ms since the epoch) at the history's time 0, recorded when
    /// their event timestamps can date evidence (local nodes, no clock faults), so that
    /// `sunder analyze` dates it as the run did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_origin_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    /// Per node: how the run ended for it (dump fetched or why not, restarts).
    #[serde(default)]
    pub nodes: BTreeMap<String, Value>,
    /// Things that went wrong in the harness without stopping the test.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// What other writers add (`simulation` by `sunder sim`, `analyzed` by
    /// `sunder analyze`), kept as it is when the file is read and written again.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `results.json` as its readers take it.
pub type StoredResults = Results<Value>;

impl StoredResults {
    /// Reads `results.json`; `None` when there is none (the run never finished).
    pub fn read(path: &Path) -> anyhow::Result<Option<StoredResults>> {
        use anyhow::Context;
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        serde_json::from_str(&text).map(Some).with_context(|| {
            format!(
                "{} is not a results file this version reads",
                path.display()
            )
        })
    }

    /// The first checker that did not pass, by name, with its reason.
    pub fn first_failing(&self) -> Option<&CheckerResult> {
        self.checkers.iter().find(|c| c.verdict != Verdict::Valid)
    }
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

impl<C> Results<C> {
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
        // What the verdict alone does not say (a node that died by itself, a dump that
        // could not be written, a relay that closed early) is printed, not only stored.
        for w in &self.warnings {
            let mut lines = w.lines();
            out.push_str(&format!("warning: {}\n", lines.next().unwrap_or_default()));
            for l in lines {
                out.push_str(&format!("         {l}\n"));
            }
        }
        if let Some(a) = &self.first_anomaly {
            out.push_str(&format!("first anomaly: {}\n", a.line()));
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
pub fn write_junit<C>(path: &Path, r: &Results<C>) -> std::io::Result<()> {
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
        crate::report::escape::markup(&r.name)
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
            crate::report::escape::markup(&r.name),
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
            crate::report::escape::markup(&r.name),
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
    use crate::controller::config::TestConfig;

    #[test]
    fn junit_escapes_and_counts() {
        let cfg = crate::controller::config::tests_support::config();
        let r = Results {
            name: "t".into(),
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
            clock_origin_ms: None,
            first_anomaly: None,
            stats: None,
            nodes: BTreeMap::new(),
            warnings: vec![],
            extra: BTreeMap::new(),
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j/junit.xml");
        write_junit(&p, &r).unwrap();
        let x = std::fs::read_to_string(p).unwrap();
        assert!(x.contains("tests=\"2\" failures=\"1\" errors=\"0\""));
        assert!(x.contains("message=\"read 3 &lt;but&gt; &quot;2&quot;\""));
        assert!(r.summary().contains("INVALID"));
    }

    /// A run's results as the controller writes them, every field set to something a
    /// reader could miss.
    fn written<'a>(cfg: &'a TestConfig, dir: &Path) -> Results<&'a TestConfig> {
        let history = sunder_checker::History::new(vec![]);
        let mut stats = sunder_checker::stats::compute(&history);
        stats.overall.invoked = 41;
        stats.overall.ok = 37;
        stats.duration_s = 12.5;
        Results {
            name: "typed-run".into(),
            run_dir: dir.to_path_buf(),
            seed: 4711,
            replay: "sunder test --seed 4711".into(),
            verdict: Some(Verdict::Unknown),
            exit_code: 2,
            interrupted: true,
            harness_error: Some("relay <n3> would not bind".into()),
            config: cfg,
            checkers: vec![CheckerResult {
                name: "agreement".into(),
                verdict: Verdict::Unknown,
                reason: "no dump from n2: connection refused".into(),
                details: Value::Null,
            }],
            counterexample: Some(serde_json::json!({"key": "k1"})),
            clock_origin_ms: Some(1_796_403_594_586),
            first_anomaly: Some(Anomaly {
                checker: "linearizability".into(),
                time_s: Some(7.25),
                history_index: Some(12),
                what: "read of k1 by process 3: read 2 but the register holds 1".into(),
            }),
            stats: Some(stats),
            nodes: [(
                "n2".to_string(),
                serde_json::json!({"dump": null, "error": "down at the end"}),
            )]
            .into(),
            warnings: vec!["a relay closed early".into()],
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn the_summary_prints_every_warning_with_its_context_indented() {
        let cfg = crate::controller::config::tests_support::config();
        let dir = tempfile::tempdir().unwrap();
        let mut r = written(&cfg, dir.path());
        r.warnings.push(
            "node n4 exited by itself (signal: 6); see nodes/n4.log, which ends:\npanicked at x"
                .into(),
        );
        let s = r.summary();
        assert!(s.contains("warning: a relay closed early\n"), "{s}");
        assert!(s.contains("warning: node n4 exited by itself"), "{s}");
        assert!(s.contains("\n         panicked at x\n"), "{s}");
        assert!(
            s.contains("first anomaly: 7.2 s into the run (linearizability: read of k1"),
            "{s}"
        );
    }

    #[test]
    fn the_writer_and_the_readers_share_every_field() {
        let cfg = crate::controller::config::tests_support::config();
        let dir = tempfile::tempdir().unwrap();
        let w = written(&cfg, dir.path());
        let text = serde_json::to_string_pretty(&w).unwrap();
        std::fs::write(dir.path().join("results.json"), &text).unwrap();
        let r = StoredResults::read(&dir.path().join("results.json"))
            .unwrap()
            .expect("written");
        // Nothing the writer wrote fell outside the reader's named fields...
        assert!(r.extra.is_empty(), "{:?}", r.extra.keys());
        // ...and writing what was read gives the same file: no field dropped or renamed.
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::from_str::<Value>(&text).unwrap()
        );
        assert_eq!(
            (r.name.as_str(), r.seed, r.exit_code, r.interrupted),
            ("typed-run", 4711, 2, true)
        );
        assert_eq!(r.config["seed"], 1);
        assert_eq!(r.stats.as_ref().map(|s| s.overall.ok), Some(37));
        assert_eq!(
            r.first_failing().map(|c| c.name.as_str()),
            Some("agreement")
        );
    }

    /// What the controller writes is what the report shows: each field reaches the page
    /// instead of "none".
    #[test]
    fn a_written_results_file_renders_every_field_in_the_report() {
        let cfg = crate::controller::config::tests_support::config();
        let dir = tempfile::tempdir().unwrap();
        let w = written(&cfg, dir.path());
        std::fs::write(
            dir.path().join("results.json"),
            serde_json::to_string(&w).unwrap(),
        )
        .unwrap();
        let run = crate::report::rundata::RunData::load(dir.path()).unwrap();
        let page = crate::report::page::render(&run, None);
        for shown in [
            "typed-run",
            "badge v-unknown",
            "seed 1 ",
            "exit 2",
            "relay &lt;n3&gt; would not bind",
            "Interrupted: the verdicts cover a partial history.",
            "a relay closed early",
            "no dump from n2: connection refused",
            "error: down at the end",
            "sunder test --seed 4711",
            "12.5 s of operations",
            "First anomaly:</b> 7.2 s into the run (linearizability: read of k1 by process 3",
        ] {
            assert!(page.contains(shown), "{shown:?} not in the page");
        }
        assert!(!page.contains("No results.json"));
    }
}
