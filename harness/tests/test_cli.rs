//! `sunder test` without a cluster, or with one that cannot start: configuration errors,
//! start-up failures, and the determinism of what a seed generates.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Output;

fn sunder(args: &[&str]) -> Output {
    support::sunder().args(args).output().expect("run sunder")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn dry_run(seed: &str, nemesis: &str) -> Value {
    let o = sunder(&[
        "test",
        "--dry-run",
        "--seed",
        seed,
        "--nemesis",
        nemesis,
        "--time-limit",
        "90s",
        "--fault-lengths",
        "fixed",
        "--nemesis-interval",
        "2s",
        "--concurrency",
        "4",
        "--dry-run-ops",
        "50",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    serde_json::from_slice(&o.stdout).expect("dry run prints JSON")
}

#[test]
fn the_same_seed_generates_the_same_operations_and_faults() {
    let a = dry_run("7", "partition,kill,pause");
    let b = dry_run("7", "partition,kill,pause");
    assert_eq!(a, b);
    let c = dry_run("8", "partition,kill,pause");
    assert_ne!(a["schedule"], c["schedule"]);
    assert_ne!(a["ops"], c["ops"]);
    // every worker has its own stream
    let ops = a["ops"].as_array().unwrap();
    assert_eq!(ops.len(), 4);
    assert_eq!(ops[0].as_array().unwrap().len(), 50);
    assert_ne!(ops[0], ops[1]);
    // the schedule mixes the three kinds, each start resolved or marked for run time
    let faults = a["faults"].as_array().unwrap();
    for f in ["partition", "kill", "pause", "heal", "restart", "resume"] {
        assert!(faults.iter().any(|x| x["f"] == f), "{f} in {faults:?}");
    }
    // the replay command is part of the document
    assert!(a["replay"].as_str().unwrap().ends_with("--seed 7"));
}

#[test]
fn bad_configuration_exits_3_naming_the_flag() {
    for (args, needle) in [
        (&["test", "--target", "nope"][..], "--target"),
        (&["test", "--nemesis", "meteor"], "meteor"),
        (&["test", "--time-limit", "soon"], "time-limit"),
        (&["test", "--nodes", "0"], "--nodes"),
    ] {
        let o = sunder(args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(needle), "{args:?}: {}", text(&o));
    }
    assert_eq!(sunder(&["test", "--help"]).status.code(), Some(0));
}

#[test]
fn a_node_that_exits_at_start_up_gives_exit_3_and_its_log() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let o = sunder(&[
        "test",
        "--target",
        "primary",
        "--bug",
        "no-such-bug",
        "--time-limit",
        "5s",
        "--results",
        results.to_str().unwrap(),
        "--seed",
        "3",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(out.contains("exited during start-up"), "{out}");
    assert!(
        out.contains("no-such-bug"),
        "the node's own complaint is shown: {out}"
    );
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(results.join("latest/results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(r["exit_code"], 3);
    assert!(r["harness_error"].as_str().unwrap().contains("no-such-bug"));
    assert!(results.join("latest/config.json").is_file());
    assert_no_process_mentions(&results);
}

#[test]
fn an_unknown_or_unparsable_opt_stops_the_run_before_any_node_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    for (target, opt, named) in [
        ("raft", "batch=of", "batch"),
        ("paxos", "no_such_key=1", "no_such_key"),
        ("primary", "timeout-ms=soon", "timeout-ms"),
    ] {
        let o = sunder(&[
            "test",
            "--target",
            target,
            "--opt",
            opt,
            "--time-limit",
            "5s",
            "--results",
            results.to_str().unwrap(),
        ]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(3), "{target} --opt {opt}: {out}");
        assert!(out.contains(&format!("`{named}`")), "{out}");
        assert!(out.contains("this target accepts"), "{out}");
        assert!(
            !results.exists(),
            "a run directory was made, so nodes may have started: {out}"
        );
    }
}

/// No process on the machine has `marker` in its command line.
fn assert_no_process_mentions(marker: &Path) {
    let m = marker.to_str().unwrap();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            assert!(
                !cmd.contains(m),
                "left behind: {} {cmd}",
                e.file_name().to_string_lossy()
            );
        }
    }
}

/// Help texts and errors that list targets come from the one table: every built-in target
/// is named with its line of help, and an unknown one is refused naming them all. A core
/// that runs only under the simulator would be listed by `sunder sim` alone (none is now:
/// pbft runs as nodes too).
#[test]
fn targets_in_help_and_errors_come_from_the_table() {
    use sunder::targets::{TARGETS, names, sim_names};
    for sub in ["test", "sim", "node"] {
        let help = text(&sunder(&[sub, "--help"]));
        for t in TARGETS {
            let line = format!("{}: {}", t.name, t.about);
            assert_eq!(
                help.contains(&line),
                sub == "sim" || t.run_node.is_some(),
                "`sunder {sub} --help` and {line:?}:\n{help}"
            );
        }
    }
    let out = sunder(&["test", "--target", "no-such-target", "--time-limit", "1s"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out).contains(&names()), "{}", text(&out));
    assert!(names().contains("pbft") && sim_names().contains("pbft"));
    let out = sunder(&["sim", "--target", "no-such-target", "--seed", "1"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out).contains(&sim_names()), "{}", text(&out));
    // A target that serves one workload refuses the others up front, in both commands.
    for sub in ["test", "sim"] {
        let out = sunder(&[sub, "--target", "pow", "--seed", "1"]);
        assert_eq!(out.status.code(), Some(3), "{sub}: {}", text(&out));
        assert!(
            text(&out).contains("serves the bank workload only"),
            "{sub}: {}",
            text(&out)
        );
    }
    let data = tempfile::tempdir().unwrap();
    let data = data.path().to_str().unwrap();
    let out = sunder(&[
        "node",
        "no-such-target",
        "--id",
        "n1",
        "--client",
        "127.0.0.1:0",
        "--data",
        data,
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out).contains(&names()), "{}", text(&out));
}
