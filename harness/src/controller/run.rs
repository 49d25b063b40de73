//! One test run from start to end, as phases that each take what they need and return
//! what the next one consumes; and `--dry-run`.
//!
//! ```text
//!  prepare ──► launch ──► main_phase ──► settle ──► final_reads ──► converge
//!  (RunDir,    (Launched:   (MainPhase:     (warning)  (interrupted?)   (warning; logs only)
//!   schedule)   cluster,     recorder,
//!               relays...)   fault runner)
//!      ──► collect_dumps ──► audit ──► teardown ──► judge ──► finish
//!          (each member's   (nodes that (nodes stopped, (Judged:   (results.json, report,
//!           dump or why not) died alone) relays, netns,  verdict)   JUnit, exit code)
//!                                        history flushed)
//! ```
//!
//! An interrupt skips only what needs a healthy cluster (settling, final reads, dumps):
//! the teardown and the checkers run on every path that returns normally, and on an error
//! (`?`) the drop guards of the cluster, relays and namespaces clean up instead.

use super::admin::Admin;
use super::checks::{self, Checked};
use super::config::TestConfig;
use super::faults::{FaultRunner, InForce, Net};
use super::interrupt::{cancel_on_next_signal, fired, interrupt_channel};
use super::launch::{Launched, RunClocks, Startup, launch};
use super::nodes::Nodes;
use super::probe::Probe;
use super::progress::Progress;
use super::results::{self, Results};
use super::rundir::RunDir;
use anyhow::Context;
use nix::sys::signal::Signal;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sunder_checker::History;
use sunder_nemesis::{FaultKind, Nemesis, NemesisOp, NetnsNet, Step, schedule};
use sunder_wire::Op;
use sunder_workloads::{AnyClient, Generator, Recorder, final_phase_with, run_workers_with};
use tokio::sync::watch;

pub const EXIT_HARNESS: i32 = 3;
pub const EXIT_INTERRUPTED: i32 = 130;

/// How long the healed cluster has to get every node answering again.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The linearizability checker's budget; past it the verdict is unknown.
const CHECK_BUDGET: Duration = Duration::from_secs(60);
/// The checkers' budget after an interrupt: the user wants to stop, not to wait a minute.
const INTERRUPTED_CHECK_BUDGET: Duration = Duration::from_secs(10);

/// Runs the test; returns the exit code (0 valid, 1 invalid, 2 unknown, 3 harness, 130).
pub fn run(cfg: TestConfig, json: bool) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(run_async(cfg, json))
}

async fn run_async(cfg: TestConfig, json: bool) -> anyhow::Result<i32> {
    let (mut intr, signals) = interrupt_channel()?;
    let (dir, steps) = prepare(&cfg)?;
    let mut base = new_results(&cfg, &dir);

    let Launched {
        nodes,
        net,
        netns,
        client,
        admin,
        probe,
        stop,
        clocks,
        warnings,
    } = match launch(&cfg, &dir, &mut intr).await? {
        Startup::Ready(l) => *l,
        Startup::Failed(e) => {
            eprintln!("sunder: the cluster did not start: {e}");
            base.harness_error = Some(e);
            return finish(&dir, base, json);
        }
        Startup::Interrupted => {
            base.interrupted = true;
            base.exit_code = EXIT_INTERRUPTED;
            base.harness_error = Some("interrupted before the cluster was up".into());
            return finish(&dir, base, json);
        }
    };
    base.warnings.extend(warnings);
    let members = cfg.members();

    let main = main_phase(
        &cfg, &dir, steps, &nodes, net, clocks, &client, &admin, &mut intr,
    )
    .await?;
    base.warnings.extend(main.warnings);
    let mut interrupted = main.interrupted || *intr.borrow();

    if !interrupted {
        base.warnings
            .extend(settle(&probe, &members, &mut intr).await);
        interrupted = final_reads(&cfg, &client, &main.recorder, &mut intr).await;
        if !interrupted && checks::has_log(&cfg.target) {
            base.warnings
                .extend(converge(&admin, members.len(), &mut intr).await);
        }
        interrupted = *intr.borrow();
    }

    base.nodes = collect_dumps(&cfg, &dir, &admin, &members, interrupted).await;
    let died = audit(&nodes, &dir, &members, &mut base.nodes);
    base.warnings.extend(died);
    let torn = teardown(
        &nodes,
        &dir,
        stop,
        main.runner,
        netns,
        &main.recorder,
        &main.history_path,
    );
    base.warnings.extend(torn);

    // A first signal during the teardown counts too: the checkers get the short budget.
    let interrupted = interrupted || *intr.borrow();
    let history = History::new(main.recorder.events());
    base.clock_origin_ms = main.clock_origin_ms;
    let judged = judge(
        &cfg,
        &dir,
        members,
        main.clock_origin_ms,
        &base.nodes,
        history,
        interrupted,
        signals,
    )
    .await?;
    record_verdict(&mut base, judged);
    finish(&dir, base, json)
}

/// The run directory with `config.json` and `schedule.json` written before anything
/// starts (a run that dies early still says what it was), and the fault schedule.
fn prepare(cfg: &TestConfig) -> anyhow::Result<(RunDir, Vec<Step>)> {
    let dir = RunDir::create(&cfg.results, &cfg.name)?;
    let replay = cfg.replay_command();
    dir.write_json("config.json", &json!({ "config": cfg, "replay": replay }))?;
    let steps = schedule(&cfg.schedule_config());
    dir.write_json("schedule.json", &steps)?;
    eprintln!(
        "sunder: {} with seed {} in {}",
        cfg.name,
        cfg.seed,
        dir.path.display()
    );
    if let Some(d) = cfg.spec.as_ref().and_then(|s| s.description.as_ref()) {
        eprintln!("sunder: target {}: {d}", cfg.target);
    }
    if let Some(mode) = &cfg.byzantine_mode {
        eprintln!(
            "sunder: Byzantine ({mode}), not judged: {}",
            cfg.byzantine_nodes.join(", ")
        );
    }
    Ok((dir, steps))
}

/// The results as they stand before anything ran: a harness failure until a verdict
/// replaces it.
fn new_results<'a>(cfg: &'a TestConfig, dir: &RunDir) -> Results<&'a TestConfig> {
    Results {
        name: cfg.name.clone(),
        run_dir: dir.path.clone(),
        seed: cfg.seed,
        replay: cfg.replay_command(),
        verdict: None,
        exit_code: EXIT_HARNESS,
        interrupted: false,
        harness_error: None,
        config: cfg,
        checkers: Vec::new(),
        counterexample: None,
        first_anomaly: None,
        clock_origin_ms: None,
        stats: None,
        nodes: BTreeMap::new(),
        warnings: Vec::new(),
        extra: BTreeMap::new(),
    }
}

/// What the main phase leaves behind: the history so far, the fault runner (which owns
/// the relays: they must outlive the nodes), and whether it was cut short.
struct MainPhase {
    recorder: Arc<Recorder>,
    /// The nodes' wall clock (milliseconds since the epoch) at the history's time 0, when
    /// their event timestamps can be trusted: local nodes without clock faults.
    clock_origin_ms: Option<u64>,
    history_path: PathBuf,
    runner: FaultRunner,
    interrupted: bool,
    warnings: Vec<String>,
}

/// Workers and the nemesis until the time limit or an interrupt; then every fault healed.
#[allow(clippy::too_many_arguments)] // each is a distinct part of the launched cluster
async fn main_phase(
    cfg: &TestConfig,
    dir: &RunDir,
    steps: Vec<Step>,
    nodes: &Nodes,
    net: Net,
    clocks: Option<RunClocks>,
    client: &Arc<AnyClient>,
    admin: &Admin,
    intr: &mut watch::Receiver<bool>,
) -> anyhow::Result<MainPhase> {
    let history_path = dir.file("history.jsonl");
    let sink = std::fs::File::create(&history_path)
        .with_context(|| format!("create {}", history_path.display()))?;
    let start = Instant::now();
    // Remote nodes read their hosts' clocks, which this run does not vouch for.
    let clock_origin_ms = (!cfg.nemesis.contains(&FaultKind::Clock) && cfg.hosts.is_none())
        .then(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
        })
        .flatten()
        .map(|d| d.as_millis() as u64);
    let recorder = Arc::new(Recorder::new(start, Box::new(sink)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = {
        let (wcfg, client, rec, stop) = (
            cfg.workload_config(),
            client.clone(),
            recorder.clone(),
            stop_rx.clone(),
        );
        tokio::spawn(async move { run_workers_with(&wcfg, client, rec, stop).await })
    };
    let in_force: InForce = Arc::new(Mutex::new(String::new()));
    let mut runner = FaultRunner {
        nemesis: {
            let mut n = match clocks {
                Some(c) => Nemesis::new(net, nodes.clone()).with_clocks(c.boxed()),
                None => Nemesis::new(net, nodes.clone()),
            };
            // Disk faults go through the local cluster, which holds the mounts.
            if let Nodes::Local(c) = &nodes {
                n = n.with_disks(Box::new(c.clone()));
            }
            n
        },
        members: cfg.members(),
        admin: admin.clone(),
        recorder: recorder.clone(),
        in_force: in_force.clone(),
    };
    let nemesis_task = {
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            runner.run(&steps, start, stop).await;
            runner
        })
    };
    let progress = Progress::start(recorder.clone(), in_force, cfg.time_limit, start);
    let interrupted = tokio::select! {
        _ = tokio::time::sleep(cfg.time_limit) => false,
        _ = fired(intr) => true,
    };
    stop_tx.send_replace(true);
    let summary = workers.await;
    let mut runner = nemesis_task.await.context("the nemesis task panicked")?;
    runner.heal_all();
    progress.finish();
    let mut warnings = Vec::new();
    if let Err(e) = summary {
        warnings.push(format!("a worker panicked: {e}"));
    }
    Ok(MainPhase {
        recorder,
        clock_origin_ms,
        history_path,
        runner,
        interrupted,
        warnings,
    })
}

/// Waits until every node is up again (restarted nodes need a moment), up to the
/// recovery timeout; a warning if some were not. Stops early on an interrupt.
async fn settle(
    probe: &Probe,
    members: &[String],
    intr: &mut watch::Receiver<bool>,
) -> Option<String> {
    let n = members.len();
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    let up = loop {
        let up = probe.count_up(members).await;
        if up == n || Instant::now() >= deadline {
            break up;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = fired(intr) => break up,
        }
    };
    (up < n && !*intr.borrow()).then(|| {
        format!(
            "only {up} of {n} nodes {} within {}s of healing",
            probe
                .what()
                .replace("answer", "answered")
                .replace("pass", "passed"),
            RECOVERY_TIMEOUT.as_secs()
        )
    })
}

/// The workload's final phase (the set workload's final reads) on the healed cluster;
/// returns whether an interrupt came by its end.
async fn final_reads(
    cfg: &TestConfig,
    client: &Arc<AnyClient>,
    recorder: &Arc<Recorder>,
    intr: &mut watch::Receiver<bool>,
) -> bool {
    let wcfg = cfg.workload_config();
    tokio::select! {
        _ = final_phase_with(&wcfg, client.clone(), recorder.clone()) => {}
        _ = fired(intr) => {}
    }
    *intr.borrow()
}

/// For replicated logs: waits until every node answers and all report the same commit
/// index (the followers caught up with what was committed before the heal), so that the
/// dumps the agreement checker compares are complete; a warning if that did not happen.
async fn converge(admin: &Admin, n: usize, intr: &mut watch::Receiver<bool>) -> Option<String> {
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    let converged = loop {
        let statuses = admin.statuses(Duration::from_millis(300)).await;
        let mut commits = statuses.values().map(|s| s.commit);
        let first = commits.next();
        if statuses.len() == n && first.is_some() && commits.all(|c| Some(c) == first) {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = fired(intr) => break false,
        }
    };
    (!converged && !*intr.borrow()).then(|| {
        format!(
            "the nodes' commit indices did not converge within {}s of healing: \
             the dumps may miss entries the agreement checker then cannot confirm",
            RECOVERY_TIMEOUT.as_secs()
        )
    })
}

/// Each member's dump written to `nodes/<id>.dump.json`, or why there is none: the
/// agreement checker must tell a missing dump from an empty log.
async fn collect_dumps(
    cfg: &TestConfig,
    dir: &RunDir,
    admin: &Admin,
    members: &[String],
    interrupted: bool,
) -> BTreeMap<String, Value> {
    let mut nodes = BTreeMap::new();
    for id in members {
        let outcome = if interrupted {
            json!({ "dump": null, "error": "interrupted" })
        } else if cfg.spec.is_some() {
            json!({ "dump": null, "error": "a spec target has no `dump`" })
        } else {
            match admin.call(id, Op::Dump, Duration::from_secs(3)).await {
                Ok(v) => {
                    let file = format!("{id}.dump.json");
                    match std::fs::write(
                        dir.node_file(&file),
                        serde_json::to_string_pretty(&v).unwrap_or_default(),
                    ) {
                        Ok(()) => json!({ "dump": format!("nodes/{file}") }),
                        Err(e) => {
                            json!({ "dump": null, "error": format!("write nodes/{file}: {e}") })
                        }
                    }
                }
                Err(e) => json!({ "dump": null, "error": e }),
            }
        };
        nodes.insert(id.clone(), outcome);
    }
    nodes
}

/// Records how often each node started, and names the nodes that died on their own (not
/// by the nemesis): each is worth a warning.
fn audit(
    procs: &Nodes,
    dir: &RunDir,
    members: &[String],
    nodes: &mut BTreeMap<String, Value>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for id in members {
        let died = procs.exited(id);
        let entry = nodes.entry(id.clone()).or_insert_with(|| json!({}));
        entry["starts"] = json!(procs.starts(id));
        if let Some(status) = died {
            entry["exited_by_itself"] = json!(status);
            // A remote node's log is downloaded only at the teardown: read it on its host.
            let tail = match procs {
                Nodes::Local(_) => log_tail(&dir.node_file(&format!("{id}.log")), 8),
                Nodes::Remote(_) => procs.log_tail(id, 8).1,
            };
            warnings.push(format!(
                "node {id} exited by itself before the end ({status}); see nodes/{id}.log{}",
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(", which ends:\n{tail}")
                }
            ));
        }
    }
    warnings
}

/// The last `n` lines of a node's log (at most 4 KiB of them), or nothing when it cannot
/// be read: a warning's context, never its substance.
fn log_tail(path: &std::path::Path, n: usize) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return String::new();
    };
    let from = bytes.len().saturating_sub(4096);
    let text = String::from_utf8_lossy(&bytes[from..]);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Stops the nodes, then the relays (nodes talked through them until they stopped), then
/// removes the namespaces (remote nodes: downloads their files and removes the run from
/// the hosts), then makes the history durable before anything reads it. Returns what went
/// wrong, for the results.
#[allow(clippy::too_many_arguments)] // each is a distinct part of what the run made
fn teardown(
    nodes: &Nodes,
    dir: &RunDir,
    (stop_signal, stop_grace): (Signal, Duration),
    runner: FaultRunner,
    netns: Option<Arc<NetnsNet>>,
    recorder: &Recorder,
    history_path: &std::path::Path,
) -> Vec<String> {
    let mut warnings = Vec::new();
    warnings.extend(nodes.stop_all(stop_signal, stop_grace));
    drop(runner);
    if let Nodes::Remote(r) = nodes {
        warnings.extend(tokio::task::block_in_place(|| r.finish(dir)));
    }
    if let Some(ns) = netns {
        // Explicitly, to report a failure; the drop guard would only log it.
        if let Err(e) = tokio::task::block_in_place(|| ns.teardown()) {
            eprintln!("sunder: error: removing the network namespaces: {e}");
            warnings.push(format!(
                "removing the network namespaces failed (run `sunder clean`): {e}"
            ));
        }
    }
    if let Err(e) = recorder.flush() {
        warnings.push(format!("writing {}: {e}", history_path.display()));
    }
    warnings
}

/// The checkers' verdicts, and whether the run counts as interrupted (a signal while they
/// ran stops them and makes it so).
struct Judged {
    checked: Checked,
    interrupted: bool,
}

/// Runs the checkers on the history (and, for replicated logs, the dumps) off the async
/// threads; the next signal cancels them.
#[allow(clippy::too_many_arguments)] // each is a distinct piece of the run's evidence
async fn judge(
    cfg: &TestConfig,
    dir: &RunDir,
    members: Vec<String>,
    clock_origin_ms: Option<u64>,
    nodes: &BTreeMap<String, Value>,
    history: History,
    interrupted: bool,
    signals: watch::Receiver<u64>,
) -> anyhow::Result<Judged> {
    let kind = cfg.workload;
    let budget = if interrupted {
        INTERRUPTED_CHECK_BUDGET
    } else {
        CHECK_BUDGET
    };
    let agreement_dir = checks::has_log(&cfg.target).then(|| dir.path.clone());
    // The members and what became of each one's dump, so that a missing one is noticed.
    let outcomes = serde_json::to_value(nodes).unwrap_or_default();
    let (cancel, on_signal) = cancel_on_next_signal(signals);
    eprintln!("sunder: checking the history (Ctrl-C stops the checkers)");
    let flag = cancel.clone();
    let liars = cfg.byzantine_nodes.clone();
    let checked: Checked = tokio::task::spawn_blocking(move || {
        let agreement = agreement_dir.as_deref().map(|d| {
            checks::AgreementInput::new(d, members, &outcomes)
                .clock_origin(clock_origin_ms)
                .byzantine(&liars)
        });
        checks::run(kind, &history, budget, agreement, Some(flag))
    })
    .await
    .context("a checker panicked")?;
    on_signal.abort();
    Ok(Judged {
        checked,
        interrupted: interrupted || cancel.load(Ordering::Relaxed),
    })
}

/// The verdict and its exit code into the results (an interrupted run exits 130 whatever
/// the checkers found).
fn record_verdict(base: &mut Results<&TestConfig>, judged: Judged) {
    let Judged {
        checked,
        interrupted,
    } = judged;
    let verdict = checked.verdict();
    base.verdict = Some(verdict);
    base.exit_code = if interrupted {
        EXIT_INTERRUPTED
    } else {
        verdict.exit_code()
    };
    base.interrupted = interrupted;
    base.counterexample = checked.counterexample;
    base.first_anomaly = checked.first_anomaly;
    base.checkers = checked.checkers;
    base.stats = Some(checked.stats);
}

/// Writes results.json and the JUnit file, prints the summary; returns the exit code.
fn finish(dir: &RunDir, r: Results<&TestConfig>, json: bool) -> anyhow::Result<i32> {
    dir.write_json("results.json", &r)?;
    // The report is for people; failing to draw it must not change the verdict or exit code.
    let report = match crate::report::write_report(&dir.path) {
        Ok(p) => format!("report:  {}\n", p.display()),
        Err(e) => format!("report:  not written: {e:#}\n"),
    };
    let summary = r.summary() + &report;
    // The results are on disk already: a closed stdout (`| head`) must not turn the
    // verdict into a panic, so write errors are ignored here.
    if json {
        eprint!("{summary}");
        let text = serde_json::to_string_pretty(&r).context("serialise results")?;
        let _ = writeln!(std::io::stdout(), "{text}");
    } else {
        let _ = write!(std::io::stdout(), "{summary}");
    }
    if let Some(p) = &r.config.junit {
        results::write_junit(p, &r).with_context(|| format!("write {}", p.display()))?;
    }
    Ok(r.exit_code)
}

/// `--dry-run`: what this configuration and seed will do, with nothing started. The same
/// seed prints the same document.
pub fn dry_run(cfg: &TestConfig, ops: usize) -> anyhow::Result<i32> {
    let steps = schedule(&cfg.schedule_config());
    let members = cfg.members();
    let faults: Vec<Value> = steps
        .iter()
        .map(|s: &Step| match s.op {
            NemesisOp::Start(spec) if !spec.needs_leader() => {
                let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
                match spec.resolve(&members, None, &mut rng) {
                    Ok(f) => json!({"at_ms": s.at_ms, "f": f.start_f(), "value": f.value()}),
                    Err(e) => json!({"at_ms": s.at_ms, "f": spec.start_f(), "error": e.to_string()}),
                }
            }
            NemesisOp::Start(spec) => json!({"at_ms": s.at_ms, "f": spec.start_f(), "value": spec, "resolved": "at run time"}),
            NemesisOp::Stop(k) => json!({"at_ms": s.at_ms, "f": k.stop_f()}),
        })
        .collect();
    let wcfg = cfg.workload_config();
    let cas = cfg.spec.as_ref().is_none_or(|s| s.client.can_cas());
    let workers: Vec<Vec<Op>> = (0..cfg.concurrency)
        .map(|w| {
            Generator::for_worker(&wcfg, w)
                .with_cas(cas)
                .take(ops)
                .collect()
        })
        .collect();
    let doc = json!({
        "config": cfg,
        "replay": cfg.replay_command(),
        "schedule": steps,
        "faults": faults,
        "ops": workers,
    });
    // A closed pipe (`| head`) is the reader's choice, not an error worth a panic.
    let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&doc)?);
    Ok(0)
}
