//! Sweeps: the same test on many seeds (`sunder test ... --test-count N`, or `--seeds
//! 1..N`), one after the other or `--parallel P` at a time.
//!
//! ```text
//!   sunder test --seeds 1..10 --parallel 2
//!     └─► results/<name>/sweep-<ts>/            sweep.json  summary.txt  [junit]
//!           ├─ seed-1.log  seed-2.log ...       each run's terminal output
//!           └─ <name>/<ts>/ ...                 one ordinary run directory per seed
//! ```
//!
//! Each seed is an ordinary `sunder test --seed S --json` child process of this same
//! executable, in a process group of its own, so a sweep gets exactly what a single run
//! gets (its own run directory, report, cleanup on interrupt) and a crash of one run
//! cannot take the others down. The child's `results.json` (its stdout) is the record.
//! `sweep.json` is rewritten after every seed, so an interrupted sweep keeps what finished.
//! The exit code is the worst one: any invalid run 1, else any run that could not run 3,
//! else any unknown 2, else 0; an interrupt 130.

use crate::controller::TestConfig;
use crate::controller::results::StoredResults;
use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeSet, VecDeque};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::seeds::SeedList;

/// What became of one seed.
#[derive(Debug, Clone, Serialize)]
pub struct SeedOutcome {
    pub seed: u64,
    /// valid, invalid, unknown, error (the run could not run) or interrupted.
    pub verdict: String,
    pub exit_code: i32,
    /// Client operations invoked, and how many ended ok.
    pub ops: u64,
    pub ok: u64,
    /// Faults that took effect (nemesis start events without an error).
    pub faults: u64,
    /// Wall time of the whole child process.
    pub seconds: f64,
    /// The run directory, relative to the sweep directory.
    pub run_dir: Option<String>,
    /// The first checker reason that is not valid, or the harness error.
    pub reason: Option<String>,
    /// Seconds into the run of its first anomaly (invalid runs whose evidence has a time).
    pub first_anomaly_s: Option<f64>,
}

/// `sweep.json`.
#[derive(Debug, Serialize)]
pub struct Sweep<'a> {
    pub name: &'a str,
    pub sweep: bool,
    pub seeds: String,
    pub parallel: usize,
    pub config: &'a Value,
    /// The command a single seed runs (with `--seed S`).
    pub command: String,
    pub finished: bool,
    pub interrupted: bool,
    pub exit_code: i32,
    pub counts: Counts,
    pub wall_seconds: f64,
    pub runs: Vec<SeedOutcome>,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub valid: usize,
    pub invalid: usize,
    pub unknown: usize,
    pub error: usize,
    pub interrupted: usize,
}

impl Counts {
    fn of(runs: &[SeedOutcome]) -> Counts {
        let mut c = Counts::default();
        for r in runs {
            match r.verdict.as_str() {
                "valid" => c.valid += 1,
                "invalid" => c.invalid += 1,
                "unknown" => c.unknown += 1,
                "interrupted" => c.interrupted += 1,
                _ => c.error += 1,
            }
        }
        c
    }

    /// The worst verdict's exit code.
    fn exit_code(&self, interrupted: bool) -> i32 {
        if self.invalid > 0 {
            1
        } else if interrupted || self.interrupted > 0 {
            130
        } else if self.error > 0 {
            3
        } else if self.unknown > 0 {
            2
        } else {
            0
        }
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn install_handlers() -> anyhow::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(sig, &action) }.context("install the signal handler")?;
    }
    Ok(())
}

/// Runs the sweep; returns the exit code.
/// The `sunder test` arguments for one seed, given the root of the sweep's runs.
pub type SeedArgs = dyn Fn(u64, &Path) -> Vec<String> + Send + Sync;

/// What a sweep runs: the same `sunder test` on every seed.
pub struct Plan {
    pub name: String,
    pub results: PathBuf,
    pub junit: Option<PathBuf>,
    /// One run's configuration, as `sweep.json` records it.
    pub config: Value,
    /// The command one seed runs, with `--seed S`, for people.
    pub command: String,
    /// The arguments after `sunder test` that run `seed` with its run directory under the
    /// given root, named `name`, and its `results.json` on stdout (`--json`).
    pub args: Box<SeedArgs>,
}

impl Plan {
    /// A built-in target's or a spec's test.
    pub fn for_test(cfg: &TestConfig) -> anyhow::Result<Plan> {
        let command = {
            let mut c = cfg.clone();
            c.seed = 0;
            c.replay_command().replace("--seed 0", "--seed S")
        };
        let one = cfg.clone();
        Ok(Plan {
            name: cfg.name.clone(),
            results: cfg.results.clone(),
            junit: cfg.junit.clone(),
            config: serde_json::to_value(cfg).context("serialise the configuration")?,
            command,
            args: Box::new(move |seed, root| {
                let mut c = one.clone();
                c.seed = seed;
                c.junit = None;
                let mut a = c.replay_args();
                a.extend([
                    "--results".to_string(),
                    root.display().to_string(),
                    "--name".to_string(),
                    c.name.clone(),
                    "--json".to_string(),
                ]);
                a
            }),
        })
    }
}

pub fn run(plan: Plan, seeds: &SeedList, parallel: usize, json: bool) -> anyhow::Result<i32> {
    if seeds.is_empty() {
        anyhow::bail!("a sweep needs at least one seed");
    }
    let parallel = parallel.clamp(1, seeds.len());
    let exe = std::env::current_exe().context("find the sunder executable")?;
    let dir = create_dir(&plan.results, &plan.name)?;
    install_handlers()?;
    let runs_root = dir.clone();
    let command = plan.command.clone();
    let plan = Arc::new(plan);
    eprintln!(
        "sunder: sweep of {} seed(s) ({seeds}), {parallel} at a time, in {}",
        seeds.len(),
        dir.display()
    );
    let started = Instant::now();
    let queue = Arc::new(Mutex::new(
        seeds.seeds().iter().copied().collect::<VecDeque<_>>(),
    ));
    let done: Arc<Mutex<Vec<SeedOutcome>>> = Arc::default();
    let running: Arc<Mutex<BTreeSet<i32>>> = Arc::default();
    let write_state = |finished: bool, runs: &[SeedOutcome]| -> anyhow::Result<i32> {
        let mut sorted = runs.to_vec();
        sorted.sort_by_key(|r| r.seed);
        let counts = Counts::of(&sorted);
        let interrupted = INTERRUPTED.load(Ordering::SeqCst);
        let exit_code = counts.exit_code(interrupted);
        let s = Sweep {
            name: &plan.name,
            sweep: true,
            seeds: seeds.to_string(),
            parallel,
            config: &plan.config,
            command: command.clone(),
            finished,
            interrupted,
            exit_code,
            counts,
            wall_seconds: started.elapsed().as_secs_f64(),
            runs: sorted,
        };
        write_atomic(&dir.join("sweep.json"), &serde_json::to_vec_pretty(&s)?)?;
        if finished {
            let text = summary(&s, &dir);
            write_atomic(&dir.join("summary.txt"), text.as_bytes())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{text}");
            }
            if let Some(p) = &plan.junit {
                write_atomic(p, junit(&s).as_bytes())
                    .with_context(|| format!("write {}", p.display()))?;
            }
        }
        Ok(exit_code)
    };
    write_state(false, &[])?;

    // Forwards an interrupt to the children (each in a process group of its own, so the
    // terminal's Ctrl-C reaches only us): one SIGTERM each, which a run answers by
    // healing, stopping its nodes and keeping its history.
    let watcher = {
        let running = running.clone();
        std::thread::spawn(move || {
            let mut told = BTreeSet::new();
            loop {
                if INTERRUPTED.load(Ordering::SeqCst) {
                    for pid in running.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                        if told.insert(*pid) {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(*pid),
                                nix::sys::signal::Signal::SIGTERM,
                            );
                        }
                    }
                }
                if Arc::strong_count(&running) == 1 {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let workers: Vec<_> = (0..parallel)
        .map(|_| {
            let (queue, done, running) = (queue.clone(), done.clone(), running.clone());
            let (exe, plan, root) = (exe.clone(), plan.clone(), runs_root.clone());
            std::thread::spawn(move || {
                loop {
                    if INTERRUPTED.load(Ordering::SeqCst) {
                        return;
                    }
                    let Some(seed) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front()
                    else {
                        return;
                    };
                    let outcome = run_seed(&exe, &plan, seed, &root, &running);
                    eprintln!("{}", line(&outcome, &root));
                    done.lock().unwrap_or_else(|p| p.into_inner()).push(outcome);
                }
            })
        })
        .collect();
    // The main thread keeps sweep.json current while the workers run.
    let mut written = 0;
    loop {
        let finished = workers.iter().all(|w| w.is_finished());
        let snapshot = done.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if snapshot.len() != written && !finished {
            written = snapshot.len();
            write_state(false, &snapshot)?;
        }
        if finished {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for w in workers {
        let _ = w.join();
    }
    drop(running);
    let _ = watcher.join();
    let runs = done.lock().unwrap_or_else(|p| p.into_inner()).clone();
    write_state(true, &runs)
}

/// `results/<name>/sweep-<timestamp>[-n]/`.
fn create_dir(results: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(['-', ':'], "");
    let parent = results.join(name);
    std::fs::create_dir_all(&parent).with_context(|| format!("create {}", parent.display()))?;
    for n in 0.. {
        let path = if n == 0 {
            parent.join(format!("sweep-{stamp}"))
        } else {
            parent.join(format!("sweep-{stamp}-{n}"))
        };
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("create {}", path.display())),
        }
    }
    unreachable!("the loop returns")
}

fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))
}

/// One seed as a child process; never fails (a child that could not run is an outcome).
fn run_seed(
    exe: &Path,
    plan: &Plan,
    seed: u64,
    root: &Path,
    running: &Mutex<BTreeSet<i32>>,
) -> SeedOutcome {
    let started = Instant::now();
    let mut outcome = SeedOutcome {
        seed,
        verdict: "error".into(),
        exit_code: 3,
        ops: 0,
        ok: 0,
        faults: 0,
        seconds: 0.0,
        run_dir: None,
        reason: None,
        first_anomaly_s: None,
    };
    let log_path = root.join(format!("seed-{seed}.log"));
    let log = match std::fs::File::create(&log_path) {
        Ok(f) => f,
        Err(e) => {
            outcome.reason = Some(format!("create {}: {e}", log_path.display()));
            return outcome;
        }
    };
    let mut cmd = Command::new(exe);
    cmd.arg("test")
        .args((plan.args)(seed, root))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            outcome.reason = Some(format!("start {}: {e}", exe.display()));
            return outcome;
        }
    };
    let pid = child.id() as i32;
    running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(pid);
    let mut stdout = String::new();
    let read = child
        .stdout
        .take()
        .map(|mut s| s.read_to_string(&mut stdout));
    let status = child.wait();
    running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&pid);
    outcome.seconds = started.elapsed().as_secs_f64();
    let code = match status {
        Ok(s) => s.code().unwrap_or(3),
        Err(e) => {
            outcome.reason = Some(format!("wait for the run: {e}"));
            return outcome;
        }
    };
    outcome.exit_code = code;
    // The child's stdout is its results.json: read as the type it was written with.
    let results: Option<StoredResults> = match read {
        Some(Ok(_)) => serde_json::from_str(&stdout).ok(),
        _ => None,
    };
    let Some(r) = results else {
        outcome.verdict = if code == 130 { "interrupted" } else { "error" }.into();
        outcome.reason = Some(format!(
            "the run exited {code} without results; see {}",
            log_path.display()
        ));
        return outcome;
    };
    outcome.verdict = match (r.interrupted, r.verdict) {
        (true, _) => "interrupted".to_string(),
        (false, Some(v)) => v.as_str().to_string(),
        (false, None) => "error".to_string(),
    };
    if let Some(st) = &r.stats {
        outcome.ops = st.overall.invoked;
        outcome.ok = st.overall.ok;
    }
    outcome.first_anomaly_s = r.first_anomaly.as_ref().and_then(|a| a.time_s);
    outcome.reason = r.harness_error.clone().or_else(|| {
        r.first_failing()
            .map(|c| format!("{}: {}", c.name, c.reason))
    });
    if !r.run_dir.as_os_str().is_empty() {
        let run_dir = r.run_dir;
        outcome.faults = count_faults(&run_dir.join("history.jsonl"));
        outcome.run_dir = Some(
            run_dir
                .strip_prefix(root)
                .unwrap_or(&run_dir)
                .display()
                .to_string(),
        );
    }
    outcome
}

/// Nemesis start events that took effect on at least one node, from a run's history.
fn count_faults(history: &Path) -> u64 {
    const STOPS: &[&str] = &[
        "heal",
        "restart",
        "resume",
        "clock-reset",
        "loss-stop",
        "lose-unsynced-restart",
        "torn-write-restart",
        "corrupt-restart",
    ];
    let Ok(text) = std::fs::read_to_string(history) else {
        return 0;
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["process"] == "nemesis")
        .filter(|e| e["f"].as_str().is_some_and(|f| !STOPS.contains(&f)))
        .filter(|e| match e["error"].as_str() {
            None => true,
            // A fault that half-applied names the nodes it reached (see sunder-nemesis).
            Some(err) => {
                sunder_nemesis::Outcome::from_error_text(err).is_some_and(|o| !o.reached.is_empty())
            }
        })
        .count() as u64
}

fn line(o: &SeedOutcome, root: &Path) -> String {
    let report = o
        .run_dir
        .as_ref()
        .map(|d| root.join(d).join("report.html").display().to_string())
        .unwrap_or_else(|| "-".into());
    format!(
        "sunder: seed {:<6} {:<11} {:>7} ops {:>4} faults {:>7.1}s  {report}",
        o.seed,
        o.verdict.to_uppercase(),
        o.ops,
        o.faults,
        o.seconds
    )
}

fn summary(s: &Sweep<'_>, dir: &Path) -> String {
    let mut t = crate::controller::results::checker_table(std::iter::empty());
    t.set_header([
        "seed",
        "verdict",
        "ops",
        "faults",
        "time",
        "first anomaly",
        "report",
    ]);
    for r in &s.runs {
        let report = r
            .run_dir
            .as_ref()
            .map(|d| format!("{d}/report.html"))
            .unwrap_or_else(|| r.reason.clone().unwrap_or_default());
        t.add_row([
            r.seed.to_string(),
            r.verdict.to_uppercase(),
            r.ops.to_string(),
            r.faults.to_string(),
            format!("{:.1}s", r.seconds),
            r.first_anomaly_s
                .map(|t| format!("{t:.1}s"))
                .unwrap_or_default(),
            report,
        ]);
    }
    let c = &s.counts;
    let detection = median(s.runs.iter().filter_map(|r| r.first_anomaly_s))
        .map(|m| {
            format!(
                "first anomaly: median {m:.1}s into the run (invalid seeds with a dated anomaly)\n"
            )
        })
        .unwrap_or_default();
    format!(
        "reports under {}\n{t}\nsweep {}: {} seed(s) in {:.1}s: {} valid, {} invalid, {} unknown, {} error, {} interrupted\n\
         {detection}sweep:   {}\n",
        dir.display(),
        s.name,
        s.runs.len(),
        s.wall_seconds,
        c.valid,
        c.invalid,
        c.unknown,
        c.error,
        c.interrupted,
        dir.join("sweep.json").display()
    )
}

/// The median of some times (the mean of the middle two for an even count).
fn median(times: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = times.collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// One test case per seed: invalid is a failure, anything else not valid an error.
fn junit(s: &Sweep<'_>) -> String {
    use crate::report::escape::markup;
    let c = &s.counts;
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<testsuites><testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\">\n",
        markup(s.name),
        s.runs.len(),
        c.invalid,
        c.unknown + c.error + c.interrupted
    ));
    for r in &s.runs {
        x.push_str(&format!(
            "  <testcase classname=\"sunder.{}\" name=\"seed {}\" time=\"{:.3}\">",
            markup(s.name),
            r.seed,
            r.seconds
        ));
        let detail = format!(
            "{}; run: {}",
            s.command.replace("--seed S", &format!("--seed {}", r.seed)),
            r.run_dir.as_deref().unwrap_or("-")
        );
        let reason = r.reason.as_deref().unwrap_or(&r.verdict);
        match r.verdict.as_str() {
            "valid" => {}
            "invalid" => x.push_str(&format!(
                "<failure message=\"{}\">{}</failure>",
                markup(reason),
                markup(&detail)
            )),
            _ => x.push_str(&format!(
                "<error message=\"{}: {}\">{}</error>",
                markup(&r.verdict),
                markup(reason),
                markup(&detail)
            )),
        }
        x.push_str("</testcase>\n");
    }
    x.push_str("</testsuite></testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(seed: u64, verdict: &str) -> SeedOutcome {
        SeedOutcome {
            seed,
            verdict: verdict.into(),
            exit_code: 0,
            ops: 10,
            ok: 9,
            faults: 2,
            seconds: 1.5,
            run_dir: Some(format!("t/{seed}")),
            reason: (verdict != "valid").then(|| format!("why <{seed}>")),
            first_anomaly_s: (verdict == "invalid").then_some(seed as f64 * 10.0),
        }
    }

    /// A finished sweep of `runs` over `seeds`.
    fn finished<'a>(cfg: &'a Value, seeds: &str, runs: Vec<SeedOutcome>) -> Sweep<'a> {
        Sweep {
            name: "t",
            sweep: true,
            seeds: seeds.into(),
            parallel: 1,
            config: cfg,
            command: "sunder test --seed S".into(),
            finished: true,
            interrupted: false,
            exit_code: 1,
            counts: Counts::of(&runs),
            wall_seconds: 3.0,
            runs,
        }
    }

    #[test]
    fn the_summary_gives_each_seeds_first_anomaly_and_their_median() {
        let cfg = serde_json::to_value(crate::controller::config::tests_support::config()).unwrap();
        let runs = vec![
            outcome(1, "invalid"),
            outcome(2, "valid"),
            outcome(4, "invalid"),
            outcome(9, "invalid"),
        ];
        let s = finished(&cfg, "1..9", runs);
        let text = summary(&s, Path::new("/tmp/x"));
        assert!(text.contains("first anomaly"), "{text}");
        assert!(text.contains("90.0s"), "{text}");
        assert!(
            text.contains("first anomaly: median 40.0s into the run"),
            "{text}"
        );
        assert_eq!(median([3.0, 1.0].into_iter()), Some(2.0));
        assert_eq!(median(std::iter::empty()), None);
    }

    #[test]
    fn the_worst_verdict_decides_the_exit_code() {
        let code = |vs: &[&str]| {
            let runs: Vec<_> = vs
                .iter()
                .enumerate()
                .map(|(i, v)| outcome(i as u64, v))
                .collect();
            Counts::of(&runs).exit_code(false)
        };
        assert_eq!(code(&["valid", "valid"]), 0);
        assert_eq!(code(&["valid", "unknown"]), 2);
        assert_eq!(code(&["unknown", "error"]), 3);
        assert_eq!(code(&["error", "invalid", "unknown"]), 1);
        assert_eq!(code(&["valid", "interrupted"]), 130);
        assert_eq!(Counts::of(&[outcome(1, "valid")]).exit_code(true), 130);
    }

    #[test]
    fn junit_has_one_case_per_seed() {
        let cfg = serde_json::to_value(crate::controller::config::tests_support::config()).unwrap();
        let runs = vec![
            outcome(1, "valid"),
            outcome(2, "invalid"),
            outcome(3, "unknown"),
        ];
        let s = finished(&cfg, "1..3", runs);
        let x = junit(&s);
        assert!(x.contains("tests=\"3\" failures=\"1\" errors=\"1\""), "{x}");
        assert_eq!(x.matches("<testcase").count(), 3);
        assert!(x.contains("name=\"seed 2\""));
        assert!(x.contains("why &lt;2&gt;"));
        assert!(x.contains("sunder test --seed 2; run: t/2"));
    }
}
