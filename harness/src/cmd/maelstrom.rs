//! `sunder test --maelstrom PROGRAM [-- ARGS]`: flags → a `sunder_maelstrom::Config`, the
//! run directory around the crate's run, and `results.json` as every other run writes it.

use super::test::TestArgs;
use crate::controller::checks::CheckerResult;
use crate::controller::results::{Results, write_junit};
use crate::controller::rundir::RunDir;
use anyhow::Context;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use sunder_checker::Verdict;
use sunder_maelstrom::config::{self, Config};

/// The flags as a validated configuration; a bad value or combination is an error (exit 3).
pub fn config(args: &TestArgs, program: PathBuf, seed: u64) -> anyhow::Result<Config> {
    let workload = args.workload.parse()?;
    let mut c = Config::new(program, args.node_args.clone(), workload, seed);
    c.nodes = args.nodes;
    c.concurrency = args.concurrency;
    c.rate = args.rate;
    c.time_limit = args.time_limit;
    c.nemesis = config::parse_nemesis(
        args.nemesis
            .as_deref()
            .unwrap_or(crate::targets::DEFAULT_NEMESIS),
    )?;
    c.nemesis_interval = args
        .nemesis_interval
        .unwrap_or(crate::targets::DEFAULT_INTERVAL);
    c.key_count = args.key_count;
    if let Some(t) = args.op_timeout {
        c.op_timeout = t;
    }
    if let Some(l) = &args.latency {
        c.latency = l.parse()?;
    }
    if let Some(t) = &args.topology {
        if c.workload != sunder_maelstrom::Workload::Broadcast {
            anyhow::bail!("--topology is for the broadcast workload");
        }
        c.topology = t.parse()?;
    }
    c.loss = args.loss;
    c.duplicate = args.duplicate;
    c.reorder = args.reorder;
    if let Some(d) = args.init_timeout {
        c.init_timeout = d;
    }
    if let Some(d) = args.recovery {
        c.recovery = d;
    }
    c.validate()?;
    Ok(c)
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The command that runs this configuration again.
pub fn replay(c: &Config) -> String {
    let mut parts = vec!["sunder".to_string(), "test".to_string()];
    parts.extend(flag_args(c).iter().map(|a| quote(a)));
    if !c.args.is_empty() {
        parts.push("--".into());
        parts.extend(c.args.iter().map(|a| quote(a)));
    }
    parts.join(" ")
}

/// The `sunder test` flags of this configuration, seed included (the node's own
/// arguments, which follow `--`, are `c.args`).
fn flag_args(c: &Config) -> Vec<String> {
    let latency = match c.latency {
        config::Latency::Constant { ms } => format!("constant:{ms}ms"),
        config::Latency::Uniform { min_ms, max_ms } => format!("uniform:{min_ms}ms..{max_ms}ms"),
        config::Latency::Exponential { mean_ms } => format!("exponential:{mean_ms}ms"),
    };
    let nemesis: Vec<String> = c
        .nemesis
        .iter()
        .map(|k| serde_json::to_value(k).map_or(String::new(), |v| v.as_str().unwrap_or("").into()))
        .collect();
    let mut a: Vec<String> = Vec::new();
    let mut flag = |k: &str, v: String| {
        a.push(k.to_string());
        a.push(v);
    };
    flag("--maelstrom", c.binary.display().to_string());
    flag("-w", c.workload.to_string());
    flag("--nodes", c.nodes.to_string());
    flag("--concurrency", c.concurrency.to_string());
    flag("--rate", c.rate.to_string());
    flag(
        "--time-limit",
        humantime::format_duration(c.time_limit).to_string(),
    );
    flag(
        "--nemesis",
        if nemesis.is_empty() {
            "none".into()
        } else {
            nemesis.join(",")
        },
    );
    flag(
        "--nemesis-interval",
        humantime::format_duration(c.nemesis_interval).to_string(),
    );
    flag("--latency", latency);
    flag("--seed", c.seed.to_string());
    if c.workload == sunder_maelstrom::Workload::Broadcast {
        let t = serde_json::to_value(c.topology).unwrap_or(Value::Null);
        flag("--topology", t.as_str().unwrap_or("grid").to_string());
    }
    if c.workload.has_keys() {
        flag("--key-count", c.key_count.to_string());
    }
    if c.loss > 0.0 {
        flag("--loss", c.loss.to_string());
    }
    if c.duplicate > 0.0 {
        flag("--duplicate", c.duplicate.to_string());
    }
    if c.reorder > 0.0 {
        flag("--reorder", c.reorder.to_string());
    }
    let d = |t| humantime::format_duration(t).to_string();
    flag("--op-timeout", d(c.op_timeout));
    flag("--init-timeout", d(c.init_timeout));
    flag("--recovery", d(c.recovery));
    a
}

/// A sweep of this configuration (`--test-count`, `--seeds`): each seed one
/// `sunder test --maelstrom ... --seed S` run.
pub fn sweep_plan(
    args: &TestArgs,
    program: PathBuf,
    seed: u64,
) -> anyhow::Result<super::sweep::Plan> {
    let c = config(args, program, seed)?;
    let name = run_name(args, &c);
    let mut shown = c.clone();
    shown.seed = 0;
    let command = replay(&shown).replace("--seed 0", "--seed S");
    let mut config = serde_json::to_value(&c).context("serialise the configuration")?;
    config["target"] = json!("maelstrom");
    config["name"] = json!(name);
    let (one, run) = (c, name.clone());
    Ok(super::sweep::Plan {
        name,
        results: args.results.clone(),
        junit: args.junit.clone(),
        config,
        command,
        args: Box::new(move |seed, root| {
            let mut c = one.clone();
            c.seed = seed;
            let mut a = flag_args(&c);
            a.extend([
                "--results".to_string(),
                root.display().to_string(),
                "--name".to_string(),
                run.clone(),
                "--json".to_string(),
            ]);
            if !c.args.is_empty() {
                a.push("--".into());
                a.extend(c.args.iter().cloned());
            }
            a
        }),
    })
}

/// `--name`, else `maelstrom-<workload>-<faults>`.
fn run_name(args: &TestArgs, c: &Config) -> String {
    let nemesis = if c.nemesis.is_empty() {
        "none".to_string()
    } else {
        args.nemesis
            .as_deref()
            .unwrap_or(crate::targets::DEFAULT_NEMESIS)
            .replace(',', "+")
    };
    args.name
        .clone()
        .unwrap_or_else(|| format!("maelstrom-{}-{nemesis}", c.workload))
}

pub fn run(args: &TestArgs, program: PathBuf, seed: u64) -> anyhow::Result<i32> {
    let cfg = config(args, program, seed)?;
    let name = run_name(args, &cfg);
    let dir = RunDir::create(&args.results, &name)?;
    let replay = replay(&cfg);
    // The configuration as readers take it: `target` and `workload` say what ran.
    let mut config = serde_json::to_value(&cfg).context("serialise the configuration")?;
    config["target"] = json!("maelstrom");
    config["name"] = json!(name);
    dir.write_json("config.json", &json!({"config": config, "replay": replay}))?;
    eprintln!(
        "sunder: {name} with seed {seed} in {}\nsunder: replay: {replay}",
        dir.path.display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let outcome = runtime.block_on(sunder_maelstrom::run::run(cfg.clone(), &dir.path));
    drop(runtime);
    let mut r: Results<Value> = Results {
        name,
        run_dir: dir.path.clone(),
        seed,
        replay,
        verdict: None,
        exit_code: 3,
        interrupted: false,
        harness_error: None,
        config,
        checkers: Vec::new(),
        counterexample: None,
        first_anomaly: None,
        clock_origin_ms: None,
        stats: None,
        nodes: BTreeMap::new(),
        warnings: Vec::new(),
        extra: BTreeMap::new(),
    };
    match outcome {
        Err(e) => {
            eprintln!("sunder: error: {e}");
            r.harness_error = Some(e.to_string());
        }
        Ok(o) => {
            dir.write_json("schedule.json", &o.schedule)?;
            r.checkers = o
                .checkers
                .into_iter()
                .map(|c| CheckerResult {
                    name: c.name,
                    verdict: c.verdict,
                    reason: c.reason,
                    details: c.details,
                })
                .collect();
            let verdict = Verdict::all(r.checkers.iter().map(|c| c.verdict));
            r.verdict = Some(verdict);
            r.interrupted = o.interrupted;
            r.exit_code = if o.interrupted {
                crate::controller::run::EXIT_INTERRUPTED
            } else {
                verdict.exit_code()
            };
            r.counterexample = o.counterexample;
            r.first_anomaly = crate::controller::checks::first_anomaly_of(&r.checkers);
            r.stats = Some(sunder_checker::stats::compute(&o.history));
            r.nodes = o.nodes;
            r.warnings = o.warnings;
            r.extra.insert(
                "messages".into(),
                serde_json::to_value(&o.messages).unwrap_or(Value::Null),
            );
            r.extra.insert(
                "message_log".into(),
                serde_json::to_value(&o.message_log).unwrap_or(Value::Null),
            );
            if o.message_log.omitted() > 0 || o.message_log.error.is_some() {
                let l = &o.message_log;
                r.warnings.push(format!(
                    "{} holds {} messages and leaves out {} ({} past its limit of {}, {} its \
                     writer could not keep up with, {} after a write error{})",
                    l.file,
                    l.written,
                    l.omitted(),
                    l.over_limit,
                    l.limit,
                    l.writer_behind,
                    l.failed,
                    l.error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    dir.write_json("results.json", &r)?;
    match crate::report::write_report(&dir.path) {
        Ok(p) => eprintln!("sunder: report {}", p.display()),
        Err(e) => eprintln!("sunder: warning: no report: {e:#}"),
    }
    if let Some(m) = r.extra.get("messages") {
        eprintln!(
            "messages: client->server {}  server->client {}  server->server {}  per op {:.2} (all {:.2})",
            m["client_to_server"],
            m["server_to_client"],
            m["server_to_server"],
            m["server_to_server_per_op"].as_f64().unwrap_or(0.0),
            m["all_per_op"].as_f64().unwrap_or(0.0)
        );
    }
    // With --json, stdout is the results alone (a sweep reads it).
    if args.json {
        eprint!("{}", r.summary());
    } else {
        print!("{}", r.summary());
    }
    if let Some(j) = &args.junit {
        write_junit(j, &r).with_context(|| format!("write {}", j.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    }
    Ok(r.exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        a: TestArgs,
    }

    fn parse(words: &[String]) -> TestArgs {
        Cli::try_parse_from(std::iter::once("sunder".to_string()).chain(words.iter().cloned()))
            .unwrap()
            .a
    }

    /// What a replay or a sweep's seed runs is the configuration the user asked for: its
    /// flags parse back to the same configuration, timeouts included.
    #[test]
    fn the_replay_flags_give_back_the_same_configuration() {
        let words = [
            "--maelstrom",
            "/bin/node",
            "-w",
            "lin-kv",
            "--nodes",
            "4",
            "--op-timeout",
            "2s",
            "--init-timeout",
            "7s",
            "--recovery",
            "3s",
            "--loss",
            "0.1",
            "--reorder",
            "0.2",
            "--latency",
            "uniform:1ms..5ms",
            "--nemesis",
            "partition,kill",
            "--key-count",
            "4",
            "--",
            "--flag",
        ]
        .map(String::from);
        let a = parse(&words);
        let c = config(&a, a.maelstrom.clone().unwrap(), 9).unwrap();
        let again = [flag_args(&c), vec!["--".to_string()], c.args.clone()].concat();
        let b = parse(&again);
        let back = config(&b, b.maelstrom.clone().unwrap(), 9).unwrap();
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::to_value(&back).unwrap()
        );
        assert!(replay(&c).contains("--op-timeout 2s --init-timeout 7s --recovery 3s"));
    }
}
