//! `sunder analyze`: re-check a stored run's history with the checkers `sunder test` ran (a
//! Maelstrom run's with `sunder-maelstrom`'s),
//! then rewrite its `results.json` (configuration kept) and `report.html`.

use crate::controller::checks;
use crate::controller::results::StoredResults;
use crate::report;
use anyhow::Context;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use sunder_checker::format::jsonl::read_jsonl_path;
use sunder_workloads::WorkloadKind;

/// Re-check a stored run (e.g. with a longer --timeout); rewrite its results and report.
#[derive(clap::Args, Debug, Clone)]
pub struct AnalyzeArgs {
    /// The run directory (`results/<name>/<timestamp>`, or `results/latest`).
    pub run_dir: PathBuf,
    /// The linearizability checker's budget; past it the verdict is unknown.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

fn read_json(p: &Path) -> anyhow::Result<Option<Value>> {
    match std::fs::read_to_string(p) {
        Ok(t) => Ok(Some(
            serde_json::from_str(&t).with_context(|| format!("parse {}", p.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", p.display())),
    }
}

/// SIGINT or SIGTERM from now on sets the returned flag (the checkers' cancel flag)
/// instead of killing the process, so an interrupted re-check still writes its results.
fn cancel_on_signal() -> anyhow::Result<Arc<AtomicBool>> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    // Blocked in this thread and so in every thread it starts later (the checker's
    // workers); only the waiting thread takes them.
    set.thread_block().context("block SIGINT and SIGTERM")?;
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if set.wait().is_ok() {
                eprintln!("sunder: interrupted: stopping the checkers");
                flag.store(true, Ordering::Relaxed);
            }
        })
        .context("start the signal thread")?;
    Ok(cancel)
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<i32> {
    let dir = &args.run_dir;
    let old = StoredResults::read(&dir.join("results.json"))?;
    let cfg_file = read_json(&dir.join("config.json"))?;
    let config = old
        .as_ref()
        .map(|r| r.config.clone())
        .filter(|c| !c.is_null())
        .or_else(|| cfg_file.as_ref().map(|c| c["config"].clone()))
        .filter(|c| !c.is_null())
        .with_context(|| {
            format!(
                "{}: no configuration (neither results.json nor config.json has one)",
                dir.display()
            )
        })?;
    let hpath = dir.join("history.jsonl");
    let (history, warnings) =
        read_jsonl_path(&hpath).with_context(|| format!("read {}", hpath.display()))?;
    for w in &warnings {
        eprintln!("sunder: warning: {w}");
    }

    let maelstrom = config["target"] == "maelstrom";
    let cancel = cancel_on_signal()?;
    eprintln!("sunder: checking the history (Ctrl-C stops the checkers)");
    let checked = if maelstrom {
        recheck_maelstrom(&config, &history, args.timeout)
            .with_context(|| format!("{}: the Maelstrom run's configuration", dir.display()))?
    } else {
        let kind: WorkloadKind = config["workload"]
            .as_str()
            .context("the configuration names no workload")?
            .parse()
            .with_context(|| format!("{}: the configuration's workload", dir.display()))?;
        let target = config["target"].as_str().unwrap_or_default();
        let agreement = match checks::has_log(target) {
            true => {
                // The members from the configuration (n1..nN), what became of each dump from
                // the old results: a dump that is missing must be noticed, not skipped.
                let n = config["nodes"]
                    .as_u64()
                    .context("the configuration has no node count")?;
                let members = (1..=n).map(|i| format!("n{i}")).collect();
                let outcomes = old.as_ref().map_or(Value::Null, |r| json!(r.nodes));
                // The run's clock origin, which it recorded when node times could be trusted.
                let origin = old.as_ref().and_then(|r| r.clock_origin_ms);
                // The members the run made Byzantine are not judged (as in the run).
                let liars: Vec<String> =
                    serde_json::from_value(config["byzantine_nodes"].clone()).unwrap_or_default();
                Some(
                    checks::AgreementInput::new(dir, members, &outcomes)
                        .clock_origin(origin)
                        .byzantine(&liars),
                )
            }
            false => None,
        };
        checks::run(
            kind,
            &history,
            args.timeout,
            agreement,
            Some(cancel.clone()),
        )
    };
    let interrupted = cancel.load(Ordering::Relaxed);
    let verdict = checked.verdict();
    let exit_code = if interrupted {
        crate::controller::run::EXIT_INTERRUPTED
    } else {
        verdict.exit_code()
    };
    let mut r = match old {
        Some(r) => r,
        None => StoredResults {
            name: config["name"].as_str().unwrap_or("run").to_string(),
            run_dir: dir.clone(),
            seed: config["seed"]
                .as_u64()
                .with_context(|| format!("{}: the configuration has no seed", dir.display()))?,
            replay: cfg_file
                .as_ref()
                .and_then(|c| c["replay"].as_str())
                .unwrap_or_default()
                .to_string(),
            verdict: None,
            exit_code,
            interrupted: false,
            harness_error: None,
            config,
            checkers: Vec::new(),
            counterexample: None,
            first_anomaly: None,
            clock_origin_ms: None,
            stats: None,
            nodes: Default::default(),
            warnings: Vec::new(),
            extra: Default::default(),
        },
    };
    r.verdict = Some(verdict);
    r.exit_code = exit_code;
    // A run cut short stays marked so: its history is partial whatever this check found.
    r.interrupted |= interrupted;
    r.checkers = checked.checkers;
    r.stats = Some(checked.stats);
    r.counterexample = checked.counterexample;
    r.first_anomaly = checked.first_anomaly;
    r.extra.insert(
        "analyzed".into(),
        json!({
            "by": "sunder analyze",
            "timeout": humantime::format_duration(args.timeout).to_string(),
            "history_warnings": warnings,
        }),
    );
    let rpath = dir.join("results.json");
    let mut text = serde_json::to_string_pretty(&r).context("serialise results")?;
    text.push('\n');
    std::fs::write(&rpath, text).with_context(|| format!("write {}", rpath.display()))?;
    let report = report::write_report(dir)?;
    print!("{}", summary(&r, &report));
    Ok(exit_code)
}

/// A run of `sunder test --maelstrom`: its workload's checkers from `sunder-maelstrom`.
fn recheck_maelstrom(
    config: &Value,
    history: &sunder_checker::History,
    budget: Duration,
) -> anyhow::Result<checks::Checked> {
    let workload: sunder_maelstrom::Workload = config["workload"]
        .as_str()
        .context("no workload")?
        .parse()?;
    let n = config["nodes"].as_u64().context("no node count")?;
    let ids: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
    let (results, counterexample) =
        sunder_maelstrom::checkers::check(workload, history, &ids, budget);
    Ok(checks::Checked {
        checkers: results
            .into_iter()
            .map(|c| checks::CheckerResult {
                name: c.name,
                verdict: c.verdict,
                reason: c.reason,
                details: c.details,
            })
            .collect(),
        stats: sunder_checker::stats::compute(history),
        counterexample,
        first_anomaly: None,
    })
    .map(|mut c: checks::Checked| {
        c.first_anomaly = checks::first_anomaly_of(&c.checkers);
        c
    })
}

fn summary(r: &StoredResults, report: &Path) -> String {
    let t = crate::controller::results::checker_table(
        r.checkers
            .iter()
            .map(|c| (c.name.as_str(), c.verdict.as_str(), c.reason.as_str())),
    );
    let o = r
        .stats
        .as_ref()
        .map(|s| s.overall.clone())
        .unwrap_or_default();
    // As the run prints it: when the run first went wrong.
    let first = r
        .first_anomaly
        .as_ref()
        .map(|a| format!("first anomaly: {}\n", a.line()))
        .unwrap_or_default();
    format!(
        "\n{} (seed {}), re-checked\n{} ops: ok {}  fail {}  info {}\n{t}\n{first}verdict: {}   exit {}\nreport:  {}\n",
        r.name,
        r.seed,
        o.invoked,
        o.ok,
        o.fail,
        o.info,
        r.verdict.map_or("?", |v| v.as_str()).to_uppercase(),
        r.exit_code,
        report.display()
    )
}
