//! `sunder sim`: run a built-in core under the deterministic simulator (`sunder-sim`) for
//! a range of seeds in parallel, report every failing seed, and write the first one as a
//! run directory that `sunder analyze`, the report and `sunder serve` read like any run.
//!
//! ```text
//!   --seeds A..B ─► threads pull seeds ─► run_seed ─► verdict per seed (printed if not valid)
//!                                                        │ lowest failing seed
//!                                                        ▼ (--shrink: fewer faults, shorter)
//!   --seed N --replay ─────────────────────────► run dir: config.json schedule.json history.jsonl
//!                                               nodes/<id>.dump.json|events.jsonl results.json report.html
//! ```

use crate::controller::checks::{self, CheckerResult};
use crate::controller::rundir::RunDir;
use crate::targets::TargetInfo;
use anyhow::{Context, bail};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use sunder_checker::Verdict;
use sunder_sim::{FaultKind, Outcome, RunFn, Schedule, SimConfig, SimWorkload};
use sunder_workloads::WorkloadKind;

/// Run a built-in target under deterministic simulation, many seeds at once.
#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    #[arg(
        long,
        default_value = "raft",
        help = "The core to simulate (--help lists them)",
        long_help = crate::targets::help("The core to simulate:", true)
    )]
    pub target: String,
    /// Seeds to run, `A..B` (both included).
    #[arg(long, conflicts_with = "seed")]
    pub seeds: Option<String>,
    /// One seed (with --replay: written as a run directory whatever its verdict).
    #[arg(long)]
    pub seed: Option<u64>,
    /// A planted bug to switch on (repeatable).
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
    /// Number of nodes.
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Simulated clients, each with one operation in flight.
    #[arg(long, default_value_t = 5)]
    pub clients: usize,
    /// register (read, write, cas on 3 keys; linearizability) or bank (transfers between
    /// --accounts accounts and reads of every balance; the bank checker).
    #[arg(long, default_value = "register")]
    pub workload: String,
    /// Bank accounts (with --workload bank).
    #[arg(long, default_value_t = 5)]
    pub accounts: usize,
    /// Fault kinds to mix: comma-separated partition, kill, pause, clock, loss; `all`
    /// (the default) or `none`.
    #[arg(long, default_value = "all")]
    pub faults: String,
    /// Simulated time of workload and faults per seed (healing and settling come after).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub time: Duration,
    /// Mean simulated time between fault starts.
    #[arg(long, default_value = "400ms", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// A protocol setting `KEY=VALUE` passed to the cores (repeatable).
    #[arg(long = "opt")]
    pub opts: Vec<String>,
    /// Make N nodes Byzantine, chosen by the seed (printed with each failing seed; the
    /// checkers judge the honest nodes only). PBFT tolerates f = (n-1)/3.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub byzantine: usize,
    /// What the Byzantine nodes do: `twins` on any target (two honest cores with one
    /// identity); pbft also: equivocate, silent, corrupt-digest, forge, replay, mix.
    #[arg(long = "byzantine-mode", default_value = "mix", value_name = "MODE")]
    pub byzantine_mode: String,
    /// Threads running seeds [default: available cores].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Rerun --seed and write its run directory (history, dumps, schedule, report).
    #[arg(long, requires = "seed")]
    pub replay: bool,
    /// Shrink the first failing seed's schedule (fewer faults, shorter) and write the
    /// smallest failing run found.
    #[arg(long)]
    pub shrink: bool,
    /// Stop the sweep at the first failing seed.
    #[arg(long = "fail-fast")]
    pub fail_fast: bool,
    /// Where run directories are written.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

fn parse_seeds(s: &str) -> anyhow::Result<(u64, u64)> {
    let (a, b) = s
        .split_once("..=")
        .or_else(|| s.split_once(".."))
        .with_context(|| format!("--seeds {s:?}: expected A..B"))?;
    let a: u64 = a
        .trim()
        .parse()
        .with_context(|| format!("--seeds {s:?}: {a:?} is not a seed"))?;
    let b: u64 = b
        .trim()
        .parse()
        .with_context(|| format!("--seeds {s:?}: {b:?} is not a seed"))?;
    if a > b {
        bail!("--seeds {s:?}: the range is empty");
    }
    Ok((a, b))
}

/// `--target` in the table of targets, with the simulator's entry for it.
fn target(a: &SimArgs) -> anyhow::Result<(&'static TargetInfo, RunFn)> {
    crate::targets::find_sim(&a.target).with_context(|| {
        format!(
            "--target {:?}: unknown target (the simulator runs {})",
            a.target,
            crate::targets::sim_names()
        )
    })
}

/// One seed with the schedule it draws.
fn simulate(run: RunFn, cfg: &SimConfig) -> anyhow::Result<Outcome> {
    run(cfg, Schedule::generate(cfg)).map_err(|e| anyhow::anyhow!("{e}"))
}

fn config(a: &SimArgs, seed: u64) -> anyhow::Result<SimConfig> {
    let (target, _) = target(a)?;
    let mut c = SimConfig::new(&a.target, seed);
    c.nodes = a.nodes;
    c.clients = a.clients;
    c.workload = SimWorkload::parse(&a.workload).map_err(|e| anyhow::anyhow!("--workload: {e}"))?;
    if c.workload == SimWorkload::Bank {
        c.keys = a.accounts;
    } else if a.accounts != 5 {
        bail!("--accounts is for --workload bank");
    }
    if let Some(only) = target.workloads
        && !only.contains(&kind_of(c.workload))
    {
        let names: Vec<String> = only.iter().map(|w| w.to_string()).collect();
        bail!(
            "--target {}: serves the {} workload only (--workload {})",
            a.target,
            names.join(", "),
            names[0]
        );
    }
    c.bugs = a.bugs.clone();
    c.faults = FaultKind::parse_list(&a.faults).map_err(|e| anyhow::anyhow!("--faults: {e}"))?;
    c.time_ms = u64::try_from(a.time.as_millis()).unwrap_or(u64::MAX);
    c.interval_ms = u64::try_from(a.interval.as_millis()).unwrap_or(u64::MAX);
    for o in &a.opts {
        match o.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                c.opts.insert(k.to_string(), v.to_string());
            }
            _ => bail!("--opt {o:?}: expected KEY=VALUE"),
        }
    }
    c.byzantine = a.byzantine;
    c.byzantine_mode = a.byzantine_mode.clone();
    c.validate((target.bugs)(), (target.byzantine_modes)())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(c)
}

/// The command that reruns one seed of this sweep and writes its run directory.
fn replay_command(a: &SimArgs, seed: u64) -> String {
    let mut s = format!("sunder sim --target {} --seed {seed} --replay", a.target);
    for b in &a.bugs {
        s += &format!(" --bug {b}");
    }
    if a.nodes != 5 {
        s += &format!(" --nodes {}", a.nodes);
    }
    if a.clients != 5 {
        s += &format!(" --clients {}", a.clients);
    }
    if a.faults != "all" {
        s += &format!(" --faults {}", a.faults);
    }
    if a.workload != "register" {
        s += &format!(" --workload {} --accounts {}", a.workload, a.accounts);
    }
    s += &format!(
        " --time {} --interval {}",
        humantime::format_duration(a.time),
        humantime::format_duration(a.interval)
    );
    for o in &a.opts {
        s += &format!(" --opt {o}");
    }
    if a.byzantine > 0 {
        s += &format!(
            " --byzantine {} --byzantine-mode {}",
            a.byzantine, a.byzantine_mode
        );
    }
    s
}

pub fn run(a: SimArgs) -> anyhow::Result<i32> {
    let (first, last) = match (&a.seeds, a.seed) {
        (Some(s), None) => parse_seeds(s)?,
        (None, Some(n)) => (n, n),
        (None, None) => bail!("give --seeds A..B or --seed N"),
        (Some(_), Some(_)) => unreachable!("clap rejects both"),
    };
    let (_, run) = target(&a)?;
    config(&a, first)?; // bad flags fail before any thread starts
    if a.replay {
        let cfg = config(&a, first)?;
        let o = simulate(run, &cfg)?;
        eprintln!(
            "sunder sim: seed {first}{}: {}",
            liars(&cfg),
            verdict_line(&o)
        );
        let dir = write_run(&a, &cfg, &o, &a.results)?;
        println!("run: {}", dir.display());
        return Ok(o.verdict.exit_code());
    }
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    eprintln!(
        "sunder sim: {} seeds {first}..{last} on {jobs} threads, target {}{}",
        last - first + 1,
        a.target,
        a.bugs
            .iter()
            .map(|b| format!(" --bug {b}"))
            .collect::<String>()
    );
    let next = AtomicU64::new(first);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<(u64, Verdict, String)>> = Mutex::new(Vec::new());
    let sim_ms = AtomicU64::new(0);
    let ran = AtomicU64::new(0);
    let start = Instant::now();
    let error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed > last {
                        break;
                    }
                    let o = match config(&a, seed).and_then(|c| Ok((simulate(run, &c)?, c))) {
                        Ok(o) => o,
                        Err(e) => {
                            *error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            stop.store(true, Ordering::Relaxed);
                            break;
                        }
                    };
                    let (o, cfg) = o;
                    sim_ms.fetch_add(o.sim_ms, Ordering::Relaxed);
                    ran.fetch_add(1, Ordering::Relaxed);
                    if o.verdict != Verdict::Valid {
                        eprintln!("seed {seed}{}: {}", liars(&cfg), verdict_line(&o));
                        if a.fail_fast && o.verdict == Verdict::Invalid {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                    results.lock().unwrap_or_else(|p| p.into_inner()).push((
                        seed,
                        o.verdict,
                        o.reason(),
                    ));
                }
            });
        }
    });
    if let Some(e) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let wall = start.elapsed().as_secs_f64();
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|r| r.0);
    let count = |v: Verdict| results.iter().filter(|r| r.1 == v).count();
    let (valid, invalid, unknown) = (
        count(Verdict::Valid),
        count(Verdict::Invalid),
        count(Verdict::Unknown),
    );
    let sim_s = sim_ms.load(Ordering::Relaxed) as f64 / 1000.0;
    let n = ran.load(Ordering::Relaxed);
    println!(
        "seeds {n}: valid {valid}  invalid {invalid}  unknown {unknown}   wall {wall:.1} s   \
         {:.0} simulated s per wall s   {:.0} seeds/min",
        sim_s / wall.max(1e-9),
        n as f64 * 60.0 / wall.max(1e-9)
    );
    let failing = results
        .iter()
        .find(|r| r.1 == Verdict::Invalid)
        .map(|r| r.0);
    if let Some(seed) = failing {
        println!("first failing seed: {seed}");
        println!("replay:  {}", replay_command(&a, seed));
        let cfg = config(&a, seed)?;
        let o = simulate(run, &cfg)?;
        let dir = write_run(&a, &cfg, &o, &a.results)?;
        println!("run:     {}", dir.display());
        if a.shrink {
            match sunder_sim::shrink::shrink(run, &cfg, o.schedule.clone(), 200)
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                Some(s) => {
                    println!(
                        "shrunk in {} runs: {} faults over {} ms → {} faults over {} ms",
                        s.runs,
                        o.schedule.len(),
                        cfg.time_ms,
                        s.outcome.schedule.len(),
                        s.config.time_ms
                    );
                    println!("{}", serde_json::to_string_pretty(&s.outcome.schedule)?);
                    let dir = write_run(&a, &s.config, &s.outcome, &a.results)?;
                    println!("shrunk run: {}", dir.display());
                }
                None => println!("shrink: the seed did not fail again (not deterministic?)"),
            }
        }
    }
    Ok(if invalid > 0 {
        1
    } else if unknown > 0 {
        2
    } else {
        0
    })
}

/// The seed's Byzantine members, for a line about the seed (empty when all are honest).
fn liars(cfg: &SimConfig) -> String {
    if cfg.byzantine == 0 {
        return String::new();
    }
    format!(
        " (Byzantine {}: {})",
        cfg.byzantine_mode,
        cfg.byzantine_nodes().join(", ")
    )
}

fn verdict_line(o: &Outcome) -> String {
    match o.verdict {
        Verdict::Valid => "valid".into(),
        v => format!("{}: {}", v.as_str().to_uppercase(), o.reason()),
    }
}

/// Writes one simulated run as a run directory and judges it with the harness's own
/// checkers (so `sunder analyze` gets the same verdict), plus the simulator's invariants.
fn write_run(a: &SimArgs, cfg: &SimConfig, o: &Outcome, results: &Path) -> anyhow::Result<PathBuf> {
    let name = format!(
        "sim-{}{}",
        cfg.target,
        cfg.bugs.iter().map(|b| format!("-{b}")).collect::<String>()
    );
    let dir = RunDir::create(results, &name)?;
    let replay = replay_command(a, cfg.seed);
    let faults: Vec<&str> = cfg.faults.iter().map(|f| f.name()).collect();
    let config = json!({
        "name": name,
        "target": cfg.target,
        "nodes": cfg.nodes,
        "workload": cfg.workload.name(),
        "concurrency": cfg.clients,
        "key_count": cfg.keys,
        "seed": cfg.seed,
        "nemesis": faults,
        "bugs": cfg.bugs,
        "opts": cfg.opts,
        "time_limit": humantime::format_duration(Duration::from_millis(cfg.time_ms)).to_string(),
        "nemesis_interval": humantime::format_duration(Duration::from_millis(cfg.interval_ms)).to_string(),
        "op_timeout": humantime::format_duration(Duration::from_millis(cfg.op_timeout_ms)).to_string(),
        "simulated": true,
        "byzantine": cfg.byzantine,
        "byzantine_mode": (cfg.byzantine > 0).then_some(&cfg.byzantine_mode),
        "byzantine_nodes": cfg.byzantine_nodes(),
    });
    dir.write_json(
        "config.json",
        &json!({ "config": config, "replay": replay }),
    )?;
    dir.write_json("schedule.json", &o.schedule)?;
    let hpath = dir.file("history.jsonl");
    std::fs::write(&hpath, o.history_jsonl())
        .with_context(|| format!("write {}", hpath.display()))?;
    let mut nodes = BTreeMap::new();
    for (id, events) in &o.events {
        let mut text = String::new();
        for e in events {
            text.push_str(&serde_json::to_string(e)?);
            text.push('\n');
        }
        let p = dir.node_file(&format!("{id}.events.jsonl"));
        std::fs::write(&p, text).with_context(|| format!("write {}", p.display()))?;
        let entry = match o.dumps.get(id) {
            Some(d) => {
                let file = format!("{id}.dump.json");
                let p = dir.node_file(&file);
                std::fs::write(&p, serde_json::to_string_pretty(d)?)
                    .with_context(|| format!("write {}", p.display()))?;
                json!({ "dump": format!("nodes/{file}") })
            }
            None => json!({ "dump": null, "error": "down at the end of the run" }),
        };
        nodes.insert(id.clone(), entry);
    }
    // Every simulated node is a member (the events map has one entry per node, quiet or
    // not); a node without a dump is named with its reason.
    let members: Vec<String> = o.events.keys().cloned().collect();
    let byzantine = cfg.byzantine_nodes();
    let outcomes = serde_json::to_value(&nodes)?;
    let agreement = checks::has_log(&cfg.target).then(|| {
        // Simulated nodes stamp their events in simulated time, the history's own.
        checks::AgreementInput::new(dir.path.as_path(), members, &outcomes)
            .clock_origin(Some(0))
            .byzantine(&byzantine)
    });
    let mut checked = checks::run(
        kind_of(cfg.workload),
        &o.history,
        Duration::from_secs(60),
        agreement,
        None,
    );
    if let Some(inv) = o.checkers.iter().find(|c| c.name == "invariants") {
        let at = checked.checkers.len().saturating_sub(1);
        checked.checkers.insert(
            at,
            CheckerResult {
                name: inv.name.clone(),
                verdict: inv.verdict,
                reason: inv.reason.clone(),
                details: inv.details.clone(),
            },
        );
    }
    let verdict = checked.verdict();
    let r = json!({
        "name": name,
        "run_dir": dir.path,
        "seed": cfg.seed,
        "replay": replay,
        "verdict": verdict,
        "exit_code": verdict.exit_code(),
        "interrupted": false,
        "config": config,
        "checkers": checked.checkers,
        "stats": checked.stats,
        "nodes": nodes,
        "warnings": o.warnings,
        // Nodes stamp events in simulated milliseconds from 0, the history's own clock.
        "clock_origin_ms": 0,
        "simulation": { "simulated_ms": o.sim_ms, "steps": o.steps, "faults": o.schedule.len() },
    });
    let mut r = r;
    if let Some(c) = checked.counterexample {
        r["counterexample"] = c;
    }
    if let Some(a) = &checked.first_anomaly {
        r["first_anomaly"] = json!(a);
    }
    dir.write_json("results.json", &r)?;
    if let Err(e) = crate::report::write_report(&dir.path) {
        eprintln!("sunder sim: report not written: {e:#}");
    }
    eprintln!(
        "sunder sim: seed {} written to {} ({})",
        cfg.seed,
        dir.path.display(),
        verdict.as_str()
    );
    Ok(dir.path)
}

/// The workload kind of `sunder test` that a simulated workload is.
fn kind_of(w: SimWorkload) -> WorkloadKind {
    match w {
        SimWorkload::Register => WorkloadKind::Register,
        SimWorkload::Bank => WorkloadKind::Bank,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse_or_say_why() {
        assert_eq!(parse_seeds("1..10000").unwrap(), (1, 10000));
        assert_eq!(parse_seeds("5..=5").unwrap(), (5, 5));
        assert!(parse_seeds("9..3").is_err());
        assert!(parse_seeds("x..3").is_err());
        assert!(parse_seeds("7").is_err());
    }
}
