//! One test run from start to end (see the map in `mod.rs`), and `--dry-run`.

use super::admin::Admin;
use super::checks::{self, Checked};
use super::cluster::NodeState;
use super::config::TestConfig;
use super::faults::{FaultRunner, InForce};
use super::launch::{Launched, Startup, launch};
use super::probe::Probe;
use super::progress::Progress;
use super::results::{self, Results};
use super::rundir::RunDir;
use anyhow::Context;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sunder_checker::History;
use sunder_nemesis::{Nemesis, NemesisOp, Step, schedule};
use sunder_wire::Op;
use sunder_workloads::{Generator, Recorder, final_phase_with, run_workers_with};
use tokio::sync::watch;

pub const EXIT_HARNESS: i32 = 3;
pub const EXIT_INTERRUPTED: i32 = 130;

/// How long the healed cluster has to get every node answering again.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The linearizability checker's budget; past it the verdict is unknown.
const CHECK_BUDGET: Duration = Duration::from_secs(60);

/// Runs the test; returns the exit code (0 valid, 1 invalid, 2 unknown, 3 harness, 130).
pub fn run(cfg: TestConfig, json: bool) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(run_async(cfg, json))
}

/// Fires (holds `true`) on the first SIGINT or SIGTERM. Installed before any node starts,
/// so that from then on a signal means "clean up", never "die with children running".
/// The second receiver counts every signal, so one that comes later (while the checkers
/// run) can stop the checkers too.
fn interrupt_channel() -> anyhow::Result<(watch::Receiver<bool>, watch::Receiver<u64>)> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("install the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("install the SIGTERM handler")?;
    let (tx, rx) = watch::channel(false);
    let (count_tx, count_rx) = watch::channel(0u64);
    tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            n += 1;
            if n == 1 {
                eprintln!("sunder: interrupted: stopping clients, healing faults, stopping nodes");
            }
            tx.send_replace(true);
            count_tx.send_replace(n);
        }
    });
    Ok((rx, count_rx))
}

/// A flag set by the next signal after this call: the checkers' cancel flag, so a Ctrl-C
/// while they run (the first or the second of the run) stops them. Abort the returned task
/// once the checkers are done.
fn cancel_on_next_signal(
    mut signals: watch::Receiver<u64>,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    signals.mark_unchanged();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let task = tokio::spawn(async move {
        if signals.changed().await.is_ok() {
            eprintln!("sunder: interrupted: stopping the checkers");
            flag.store(true, Ordering::Relaxed);
        }
    });
    (cancel, task)
}

async fn fired(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// Waits until every node is up again (restarted nodes need a moment), up to the
/// recovery timeout; returns how many were up last. Stops early on an interrupt.
async fn wait_recovered(probe: &Probe, ids: &[String], intr: &mut watch::Receiver<bool>) -> usize {
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    loop {
        let up = probe.count_up(ids).await;
        if up == ids.len() || Instant::now() >= deadline {
            return up;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = fired(intr) => return up,
        }
    }
}

/// For replicated logs: waits until every node answers and all report the same commit index
/// (the followers caught up with what was committed before the heal), so that the dumps the
/// agreement checker compares are complete. Returns false if that did not happen in time.
async fn wait_converged(admin: &Admin, n: usize, intr: &mut watch::Receiver<bool>) -> bool {
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    loop {
        let statuses = admin.statuses(Duration::from_millis(300)).await;
        let mut commits = statuses.values().map(|s| s.commit);
        let first = commits.next();
        if statuses.len() == n && first.is_some() && commits.all(|c| Some(c) == first) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = fired(intr) => return false,
        }
    }
}

async fn run_async(cfg: TestConfig, json: bool) -> anyhow::Result<i32> {
    let (mut intr, signals) = interrupt_channel()?;
    let dir = RunDir::create(&cfg.results, &cfg.name)?;
    let replay = cfg.replay_command();
    dir.write_json("config.json", &json!({ "config": &cfg, "replay": replay }))?;
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

    let mut base = Results {
        name: cfg.name.clone(),
        run_dir: dir.path.clone(),
        seed: cfg.seed,
        replay: replay.clone(),
        verdict: None,
        exit_code: EXIT_HARNESS,
        interrupted: false,
        harness_error: None,
        config: &cfg,
        checkers: Vec::new(),
        counterexample: None,
        stats: None,
        nodes: BTreeMap::new(),
        warnings: Vec::new(),
        extra: BTreeMap::new(),
    };

    let Launched {
        cluster,
        net,
        netns,
        client,
        admin,
        probe,
        stop: (stop_signal, stop_grace),
        clocks,
        warnings,
    } = match launch(&cfg, &dir, &mut intr).await? {
        Startup::Ready(l) => l,
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
    let n = members.len();

    // The run proper: workers and nemesis until the time limit or an interrupt.
    let history_path = dir.file("history.jsonl");
    let sink = std::fs::File::create(&history_path)
        .with_context(|| format!("create {}", history_path.display()))?;
    let start = Instant::now();
    let recorder = Arc::new(Recorder::new(start, Box::new(sink)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let wcfg = cfg.workload_config();
    let workers = {
        let (wcfg, client, rec, stop) = (
            wcfg.clone(),
            client.clone(),
            recorder.clone(),
            stop_rx.clone(),
        );
        tokio::spawn(async move { run_workers_with(&wcfg, client, rec, stop).await })
    };
    let in_force: InForce = Arc::new(Mutex::new(String::new()));
    let mut runner = FaultRunner {
        nemesis: match clocks {
            Some(c) => Nemesis::new(net, cluster.clone()).with_clocks(Box::new(c)),
            None => Nemesis::new(net, cluster.clone()),
        },
        members: members.clone(),
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
        _ = fired(&mut intr) => true,
    };
    stop_tx.send_replace(true);
    let summary = workers.await;
    let mut runner = nemesis_task.await.context("the nemesis task panicked")?;
    runner.heal_all();
    progress.finish();
    let mut interrupted = interrupted || *intr.borrow();
    if let Err(e) = summary {
        base.warnings.push(format!("a worker panicked: {e}"));
    }

    // After the faults: recovery, final reads, dumps.
    if !interrupted {
        let up = wait_recovered(&probe, &members, &mut intr).await;
        if up < n && !*intr.borrow() {
            base.warnings.push(format!(
                "only {up} of {n} nodes {} within {}s of healing",
                probe
                    .what()
                    .replace("answer", "answered")
                    .replace("pass", "passed"),
                RECOVERY_TIMEOUT.as_secs()
            ));
        }
        tokio::select! {
            _ = final_phase_with(&wcfg, client.clone(), recorder.clone()) => {}
            _ = fired(&mut intr) => {}
        }
        interrupted = *intr.borrow();
        if !interrupted
            && checks::has_log(&cfg.target)
            && !wait_converged(&admin, n, &mut intr).await
            && !*intr.borrow()
        {
            base.warnings.push(format!(
                "the nodes' commit indices did not converge within {}s of healing: \
                 the dumps may miss entries the agreement checker then cannot confirm",
                RECOVERY_TIMEOUT.as_secs()
            ));
        }
        interrupted = *intr.borrow();
    }
    for id in &members {
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
        base.nodes.insert(id.clone(), outcome);
    }
    {
        // A node that died on its own (not by the nemesis) is worth a line in the results.
        let mut c = cluster.lock();
        for id in &members {
            let was = c.state(id);
            let died = if was == Some(NodeState::Killed) {
                None
            } else {
                c.exited(id)
            };
            let entry = base.nodes.entry(id.clone()).or_insert_with(|| json!({}));
            entry["starts"] = json!(c.starts(id));
            if let Some(status) = died {
                entry["exited_by_itself"] = json!(status.to_string());
                base.warnings.push(format!(
                    "node {id} exited by itself before the end ({status}); see nodes/{id}.log"
                ));
            }
        }
    }
    tokio::task::block_in_place(|| cluster.lock().stop_all_with(stop_signal, stop_grace));
    drop(runner); // the relays go last: nodes talked through them until they stopped
    if let Some(ns) = netns {
        // Explicitly, to report a failure; the drop guard would only log it.
        if let Err(e) = tokio::task::block_in_place(|| ns.teardown()) {
            eprintln!("sunder: error: removing the network namespaces: {e}");
            base.warnings.push(format!(
                "removing the network namespaces failed (run `sunder clean`): {e}"
            ));
        }
    }
    if let Err(e) = recorder.flush() {
        base.warnings
            .push(format!("writing {}: {e}", history_path.display()));
    }

    let history = History::new(recorder.events());
    let kind = cfg.workload;
    // A first signal during the teardown counts too: the checkers get the short budget.
    let interrupted = interrupted || *intr.borrow();
    let budget = if interrupted {
        Duration::from_secs(10)
    } else {
        CHECK_BUDGET
    };
    let agreement_dir = checks::has_log(&cfg.target).then(|| dir.path.clone());
    // The members and what became of each one's dump, so that a missing one is noticed.
    let outcomes = serde_json::to_value(&base.nodes).unwrap_or_default();
    let (cancel, on_signal) = cancel_on_next_signal(signals);
    eprintln!("sunder: checking the history (Ctrl-C stops the checkers)");
    let flag = cancel.clone();
    let checked: Checked = tokio::task::spawn_blocking(move || {
        let agreement = agreement_dir
            .as_deref()
            .map(|d| checks::AgreementInput::new(d, members, &outcomes));
        checks::run(kind, &history, budget, agreement, Some(flag))
    })
    .await
    .context("a checker panicked")?;
    on_signal.abort();
    let interrupted = interrupted || cancel.load(Ordering::Relaxed);
    let verdict = checked.verdict();
    base.verdict = Some(verdict);
    base.exit_code = if interrupted {
        EXIT_INTERRUPTED
    } else {
        verdict.exit_code()
    };
    base.interrupted = interrupted;
    base.counterexample = checked.counterexample;
    base.checkers = checked.checkers;
    base.stats = Some(checked.stats);
    finish(&dir, base, json)
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
    let workers: Vec<Vec<Op>> = (0..cfg.concurrency)
        .map(|w| Generator::for_worker(&wcfg, w).take(ops).collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The first Ctrl-C of a run (before the checkers) must not cancel them; the next one
    /// must, whichever number it is.
    #[tokio::test]
    async fn only_a_signal_after_the_checkers_start_cancels_them() {
        let (count, signals) = watch::channel(0u64);
        count.send_replace(1); // the run's first Ctrl-C, during the workload
        let (cancel, task) = cancel_on_next_signal(signals);
        tokio::task::yield_now().await;
        assert!(!cancel.load(Ordering::Relaxed));
        count.send_replace(2); // Ctrl-C while checking
        task.await.unwrap();
        assert!(cancel.load(Ordering::Relaxed));
    }
}
