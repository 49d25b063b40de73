//! `sunder test --maelstrom`: real Maelstrom-protocol nodes (Python 3, `targets/maelstrom/`)
//! under sunder's network and faults. For each workload a correct node is valid and a
//! faulty one invalid; a broadcast node that keeps messages only in memory is caught by
//! `kill` while one that fsyncs to `SUNDER_DATA_DIR` passes; nodes that break the protocol
//! at start are exit 3 with a message naming the node.
//!
//! Each run is a few seconds of workload; the verdicts do not depend on timing: the faults
//! are scheduled from the seed and each faulty node is wrong on every operation it meets
//! in the fault (or, for echo and unique ids, with or without one).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn nodes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../targets/maelstrom")
}

fn have_python() -> bool {
    sunder_test_support::met(
        (!sunder_test_support::have_command("python3"))
            .then(|| "python3 is not installed (Debian package python3)".to_string()),
    )
}

struct Run {
    /// The results directory, kept as long as the run is looked at.
    tmp: tempfile::TempDir,
    code: i32,
    results: Value,
    stderr: String,
}

impl Run {
    fn checker(&self, name: &str) -> (&str, &str) {
        let c = self.results["checkers"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .unwrap_or_else(|| panic!("no {name} checker in {}", self.results));
        (
            c["verdict"].as_str().unwrap_or(""),
            c["reason"].as_str().unwrap_or(""),
        )
    }
}

/// `sunder test --maelstrom targets/maelstrom/NODE ARGS...` in a fresh results directory.
fn run(node: &str, args: &[&str]) -> Run {
    run_seeded(node, 3, args)
}

fn run_seeded(node: &str, seed: u64, args: &[&str]) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sunder"))
        .arg("test")
        .arg("--maelstrom")
        .arg(nodes_dir().join(node))
        .args(["--results".as_ref(), tmp.path().as_os_str()])
        .args(["--seed", &seed.to_string(), "--nemesis-interval", "1s"])
        .args(args)
        .output()
        .expect("run sunder");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let results = std::fs::read_to_string(tmp.path().join("latest/results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    Run {
        tmp,
        code: out.status.code().unwrap_or(-1),
        results,
        stderr,
    }
}

fn assert_verdict(r: &Run, checker: &str, verdict: &str, reason_has: &str) {
    let (v, reason) = r.checker(checker);
    assert_eq!(v, verdict, "{checker}: {reason}\n{}", r.stderr);
    assert!(
        reason.contains(reason_has),
        "{reason:?} lacks {reason_has:?}"
    );
    let want = if verdict == "valid" { 0 } else { 1 };
    assert_eq!(r.code, want, "{}", r.stderr);
}

#[test]
fn echo_correct_is_valid_and_a_wrong_echo_is_caught() {
    if !have_python() {
        return;
    }
    let args = ["-w", "echo", "--time-limit", "3s", "--nemesis", "partition"];
    let ok = run("echo.py", &args);
    assert_verdict(&ok, "echo", "valid", "each what was sent");
    // Message counts reach results.json: one request and one reply per operation.
    let m = &ok.results["messages"];
    assert!(m["client_to_server"].as_u64() > Some(0), "{m}");
    assert_eq!(m["client_to_server"], m["server_to_client"]);
    let bad = run("echo.py", &[&args[..], &["--", "--bug"]].concat());
    assert_verdict(&bad, "echo", "invalid", "differ from what was sent");
}

/// `sunder test --maelstrom NODE --test-count 2 --parallel 2 ARGS`: exit code and sweep.json.
fn sweep(node: &str, args: &[&str]) -> (i32, Value, String) {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sunder"))
        .arg("test")
        .arg("--maelstrom")
        .arg(nodes_dir().join(node))
        .args(["--results".as_ref(), tmp.path().as_os_str()])
        .args([
            "--seed",
            "5",
            "--test-count",
            "2",
            "--parallel",
            "2",
            "--name",
            "sw",
        ])
        .args(args)
        .output()
        .expect("run sunder");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let dir = std::fs::read_dir(tmp.path().join("sw"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("sweep-"))
        .unwrap_or_else(|| panic!("no sweep directory: {stderr}"))
        .path();
    let v =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap();
    (out.status.code().unwrap_or(-1), v, stderr)
}

#[test]
fn a_sweep_runs_every_seed_and_the_worst_verdict_decides() {
    if !have_python() {
        return;
    }
    let args = ["-w", "echo", "--time-limit", "2s", "--nemesis", "partition"];
    let (code, ok, err) = sweep("echo.py", &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(ok["counts"]["valid"], 2, "{ok}");
    let seeds: Vec<u64> = ok["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds, [5, 6]);
    assert!(
        ok["command"].as_str().unwrap().contains("--seed S"),
        "{}",
        ok["command"]
    );
    // The node's own arguments reach every seed's run.
    let (code, bad, err) = sweep("echo.py", &[&args[..], &["--", "--bug"]].concat());
    assert_eq!(code, 1, "{err}");
    assert_eq!(bad["counts"]["invalid"], 2, "{bad}");
}

#[test]
fn clock_faults_reach_a_python_node_and_every_one_is_recorded_and_reset() {
    if !have_python() {
        return;
    }
    let missing = sunder_nemesis::clock::find_libfaketime()
        .is_none()
        .then(|| {
            "maelstrom clock faults: libfaketime is missing (apt-get install faketime)".to_string()
        });
    if !sunder_test_support::met(missing) {
        return;
    }
    let r = run(
        "echo.py",
        &["-w", "echo", "--time-limit", "6s", "--nemesis", "clock"],
    );
    assert_verdict(&r, "echo", "valid", "each what was sent");
    let warnings = r.results["warnings"].to_string();
    assert!(
        !warnings.contains("clock faults cannot reach"),
        "{warnings}"
    );
    let run_dir = r.tmp.path().join("latest");
    let history = std::fs::read_to_string(run_dir.join("history.jsonl")).unwrap();
    let clock: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["process"] == "nemesis")
        .collect();
    let starts = clock
        .iter()
        .filter(|e| e["f"] == "clock-bump" || e["f"] == "clock-strobe")
        .count();
    let resets = clock.iter().filter(|e| e["f"] == "clock-reset").count();
    assert!(starts >= 2 && starts == resets, "{clock:?}");
    // The preload was found in every node process: no fault fell short of a node.
    assert!(clock.iter().all(|e| e["error"].is_null()), "{clock:?}");
    // Back on the real clock at the end: every control file holds +0.
    for n in 1..=3 {
        let f = std::fs::read_to_string(run_dir.join(format!("nodes/n{n}.faketime"))).unwrap();
        assert_eq!(f.trim(), "+0", "n{n}");
    }
}

#[test]
fn unique_ids_without_the_node_id_collide() {
    if !have_python() {
        return;
    }
    let args = [
        "-w",
        "unique-ids",
        "--time-limit",
        "3s",
        "--nemesis",
        "partition",
    ];
    assert_verdict(
        &run("unique_ids.py", &args),
        "unique-ids",
        "valid",
        "all distinct",
    );
    let bad = run("unique_ids.py", &[&args[..], &["--", "--bug"]].concat());
    assert_verdict(&bad, "unique-ids", "invalid", "duplicate ids");
}

const BROADCAST: [&str; 12] = [
    "-w",
    "broadcast",
    "--node-count",
    "5",
    "--time-limit",
    "5s",
    "--rate",
    "50",
    "--recovery",
    "3s",
    "--topology",
    "grid",
];

#[test]
fn broadcast_that_gossips_once_loses_messages_under_partitions() {
    if !have_python() {
        return;
    }
    // A line: every cut separates, where a grid would route around some partitions.
    let part = [
        &BROADCAST[..8],
        &["--topology", "line", "--nemesis", "partition"],
    ]
    .concat();
    let ok = run("broadcast.py", &part);
    assert_verdict(&ok, "broadcast", "valid", "in every node's final read");
    assert!(ok.results["messages"]["server_to_server"].as_u64() > Some(0));
    let bad = run(
        "broadcast.py",
        &[&part[..], &["--", "--mode", "once"]].concat(),
    );
    assert_verdict(&bad, "broadcast", "invalid", "lost");
}

/// What Maelstrom cannot show: a node that forgets on restart.
#[test]
fn broadcast_in_memory_is_caught_by_kill_and_a_persisting_node_passes() {
    if !have_python() {
        return;
    }
    let kill = [&BROADCAST[..], &["--nemesis", "kill"]].concat();
    let forgetful = run("broadcast.py", &kill);
    assert_verdict(&forgetful, "broadcast", "invalid", "lost");
    let restarts: u64 = forgetful.results["nodes"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n["restarts"].as_u64().unwrap_or(0))
        .sum();
    assert!(restarts > 0, "{}", forgetful.results["nodes"]);
    let durable = run("broadcast.py", &[&kill[..], &["--", "--persist"]].concat());
    assert_verdict(&durable, "broadcast", "valid", "in every node's final read");
}

#[test]
fn g_counter_that_adds_gossip_double_counts() {
    if !have_python() {
        return;
    }
    let args = [
        "-w",
        "g-counter",
        "--time-limit",
        "4s",
        "--rate",
        "50",
        "--nemesis",
        "partition",
        "--recovery",
        "2s",
    ];
    assert_verdict(&run("g_counter.py", &args), "g-counter", "valid", "within");
    let bad = run("g_counter.py", &[&args[..], &["--", "--bug"]].concat());
    assert_verdict(&bad, "g-counter", "invalid", "outside");
}

#[test]
fn a_counter_that_trusts_link_order_is_caught_by_reordering_alone() {
    if !have_python() {
        return;
    }
    // No faults but the network's: the FIFO-trusting node is valid on ordered links, and
    // loses the deltas that later ones overtake once messages are reordered.
    let args = [
        "-w",
        "g-counter",
        "--time-limit",
        "4s",
        "--rate",
        "100",
        "--nemesis",
        "none",
        // Constant: each link keeps its order (a random latency alone reorders).
        "--latency",
        "1",
        "--recovery",
        "1s",
    ];
    let ordered = run("g_counter.py", &[&args[..], &["--", "--fifo"]].concat());
    assert_verdict(&ordered, "g-counter", "valid", "within");
    let reordered = [&args[..], &["--reorder", "0.2"]].concat();
    let bad = run(
        "g_counter.py",
        &[&reordered[..], &["--", "--fifo"]].concat(),
    );
    assert_verdict(&bad, "g-counter", "invalid", "outside");
    assert!(
        bad.results["messages"]["reordered"].as_u64() > Some(0),
        "{}",
        bad.results["messages"]
    );
    // The gossiping node (maps merged by maximum) shrugs reordering off.
    let ok = run("g_counter.py", &reordered);
    assert_verdict(&ok, "g-counter", "valid", "within");
}

#[test]
fn lin_kv_through_the_service_is_linearizable_and_local_reads_are_not() {
    if !have_python() {
        return;
    }
    let args = [
        "-w",
        "lin-kv",
        "--time-limit",
        "5s",
        "--rate",
        "100",
        "--nemesis",
        "partition",
        "--latency",
        "uniform:0ms..5ms",
    ];
    let ok = run("lin_kv.py", &args);
    assert_verdict(&ok, "linearizability", "valid", "linearizable");
    assert!(ok.results["messages"]["server_to_service"].as_u64() > Some(0));
    let bad = run(
        "lin_kv.py",
        &[&args[..], &["--", "--bug", "local-reads"]].concat(),
    );
    assert_verdict(&bad, "linearizability", "invalid", "not linearizable");
    assert!(bad.results["counterexample"].is_object());
    // `sunder analyze` re-checks a Maelstrom run with the same checkers.
    let again = Command::new(env!("CARGO_BIN_EXE_sunder"))
        .arg("analyze")
        .arg(bad.tmp.path().join("latest"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(1), "{text}");
    assert!(text.contains("not linearizable"), "{text}");
}

/// A run's first anomaly (results.json) is dated by the named checker's own evidence.
fn assert_first_anomaly(r: &Run, checker: &str) {
    let a = &r.results["first_anomaly"];
    assert_eq!(a["checker"], checker, "{}", r.results);
    assert!(a["time_s"].as_f64().is_some(), "{a}");
}

/// `args` with the faulty node's `--bug` after `--`.
fn buggy<'a>(args: &[&'a str]) -> Vec<&'a str> {
    [args, &["--", "--bug"]].concat()
}

#[test]
fn g_set_with_fire_and_forget_gossip_loses_elements_under_partitions() {
    if !have_python() {
        return;
    }
    let args = [
        "-w",
        "g-set",
        "--node-count",
        "3",
        "--time-limit",
        "4s",
        "--rate",
        "50",
        "--nemesis",
        "partition",
        "--recovery",
        "2s",
    ];
    assert_verdict(&run("g_set.py", &args), "g-set", "valid", "lost 0");
    let bad = run("g_set.py", &buggy(&args));
    assert_verdict(&bad, "g-set", "invalid", "lost");
    assert_first_anomaly(&bad, "g-set");
}

#[test]
fn pn_counter_that_gossips_deltas_double_counts() {
    if !have_python() {
        return;
    }
    // Duplication and partitions: a CRDT's full state merges the same however often it
    // arrives; a delta applied twice is counted twice.
    let args = [
        "-w",
        "pn-counter",
        "--time-limit",
        "4s",
        "--rate",
        "50",
        "--nemesis",
        "partition",
        "--duplicate",
        "0.1",
        "--recovery",
        "2s",
    ];
    assert_verdict(
        &run("pn_counter.py", &args),
        "pn-counter",
        "valid",
        "within",
    );
    let bad = run("pn_counter.py", &buggy(&args));
    assert_verdict(&bad, "pn-counter", "invalid", "outside");
    assert_first_anomaly(&bad, "pn-counter");
}

#[test]
fn kafka_through_lin_kv_is_valid_and_local_offsets_collide() {
    if !have_python() {
        return;
    }
    let args = [
        "-w",
        "kafka",
        "--time-limit",
        "4s",
        "--rate",
        "50",
        "--key-count",
        "3",
        "--nemesis",
        "partition",
        "--recovery",
        "1s",
    ];
    let ok = run("kafka.py", &args);
    assert_verdict(&ok, "kafka", "valid", "in every node's final polls");
    assert!(ok.results["messages"]["server_to_service"].as_u64() > Some(0));
    let bad = run("kafka.py", &buggy(&args));
    assert_verdict(&bad, "kafka", "invalid", "inconsistent-offsets");
    assert_first_anomaly(&bad, "kafka");
}

/// Seed 7's schedule has a partition, a kill and a pause: each is applied (no `error` on
/// its history event), the killed node comes back with a fresh init, and a node that keeps
/// nothing itself stays linearizable through all of them.
#[test]
fn every_fault_kind_is_applied_and_undone_on_real_processes() {
    if !have_python() {
        return;
    }
    let args = [
        "-w",
        "lin-kv",
        "--time-limit",
        "6s",
        "--nemesis",
        "partition,kill,pause",
    ];
    let r = run_seeded("lin_kv.py", 7, &args);
    assert_verdict(&r, "linearizability", "valid", "linearizable");
    let history = std::fs::read_to_string(r.tmp.path().join("latest/history.jsonl")).unwrap();
    let nemesis: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["process"] == "nemesis")
        .collect();
    for f in ["partition", "heal", "kill", "restart", "pause", "resume"] {
        let e = nemesis
            .iter()
            .find(|e| e["f"] == f)
            .unwrap_or_else(|| panic!("no {f} in {nemesis:?}"));
        assert!(e.get("error").is_none(), "{e}");
    }
    let restarts: u64 = r.results["nodes"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n["restarts"].as_u64().unwrap_or(0))
        .sum();
    assert!(restarts > 0, "{}", r.results["nodes"]);
}

#[test]
fn nodes_that_break_the_protocol_at_start_are_exit_3_naming_the_node() {
    if !have_python() {
        return;
    }
    let args = ["-w", "echo", "--time-limit", "2s", "--init-timeout", "2s"];
    for (node, says, log) in [
        (
            "no_init_ok.py",
            "n1 did not answer init with init_ok",
            "waiting forever",
        ),
        (
            "garbage.py",
            "n1: stdout line 1 is not a Maelstrom message",
            "still not a message",
        ),
        (
            "exits_at_once.py",
            "n1 exited before answering init (exit status: 7)",
            "no configuration file",
        ),
    ] {
        let r = run(node, &args);
        assert_eq!(r.code, 3, "{node}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{node}: {}", r.stderr);
        assert!(
            r.stderr.contains(log),
            "{node}: the log's tail: {}",
            r.stderr
        );
        let e = r.results["harness_error"].as_str().unwrap_or_default();
        assert!(e.contains(says), "{node}: results.json: {e}");
    }
}

#[test]
fn unknown_maelstrom_combinations_are_errors() {
    for (args, says) in [
        (&["-w", "txn-list-append"][..], "unknown Maelstrom workload"),
        (
            &["-w", "echo", "--nemesis", "loss"],
            "not available with --maelstrom",
        ),
        (
            &["-w", "echo", "--topology", "grid"],
            "--topology is for the broadcast",
        ),
        (
            &["-w", "broadcast", "--topology", "star"],
            "unknown --topology",
        ),
        (
            &["-w", "echo", "--latency", "gauss:3"],
            "unknown distribution",
        ),
        (&["-w", "echo", "--target", "raft"], "cannot be used with"),
        (&["-w", "echo", "--byzantine", "1"], "cannot be used with"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sunder"))
            .args(["test", "--maelstrom", "/nonexistent/node"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // Maelstrom-only flags without --maelstrom.
    let out = Command::new(env!("CARGO_BIN_EXE_sunder"))
        .args(["test", "--latency", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

/// `messages.jsonl`, parsed with the type the router writes it with.
fn message_records(dir: &Path) -> Vec<sunder_maelstrom::messages::MessageRecord> {
    let text = std::fs::read_to_string(dir.join("messages.jsonl")).expect("messages.jsonl");
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("messages.jsonl line {}: {e}: {l}", i + 1))
        })
        .collect()
}

/// The run's client operations that completed `ok`: (invoke ms, completion ms, node, f).
fn ok_operations(dir: &Path) -> Vec<(f64, f64, String, String)> {
    let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let mut open = std::collections::HashMap::new();
    let mut ops = Vec::new();
    for l in text.lines() {
        let e: Value = serde_json::from_str(l).unwrap();
        let Some(p) = e["process"].as_u64() else {
            continue; // the nemesis
        };
        let ms = e["time"].as_u64().unwrap() as f64 / 1e6;
        match e["type"].as_str().unwrap() {
            "invoke" => {
                open.insert(p, ms);
            }
            "ok" => {
                let start = open
                    .remove(&p)
                    .expect("an invocation before its completion");
                let node = e["node"].as_str().unwrap().to_string();
                ops.push((start, ms, node, e["f"].as_str().unwrap().to_string()));
            }
            _ => {
                open.remove(&p);
            }
        }
    }
    ops
}

/// Every message of a run is in `messages.jsonl` on the history's clock: each acknowledged
/// operation is a client's request to its node sent after the invocation and the node's
/// reply (`in_reply_to` the request) delivered before the completion; gossip between nodes
/// is there, cut where the partition cut it; and the report draws the diagram from it.
#[test]
fn messages_jsonl_holds_each_operation_and_the_report_draws_them() {
    use sunder_maelstrom::messages::MessageFate;
    if !have_python() {
        return;
    }
    let r = run(
        "broadcast.py",
        &[
            "-w",
            "broadcast",
            "--node-count",
            "3",
            "--topology",
            "line",
            "--time-limit",
            "2s",
            "--rate",
            "40",
            "--recovery",
            "600ms",
            "--nemesis",
            "partition",
        ],
    );
    assert_verdict(&r, "broadcast", "valid", "in every node's final read");
    let dir = r.tmp.path().join("latest");
    let recs = message_records(&dir);
    let log = &r.results["message_log"];
    assert_eq!(log["written"].as_u64(), Some(recs.len() as u64), "{log}");
    assert_eq!(log["over_limit"], 0, "{log}");
    assert_eq!(log["writer_behind"], 0, "{log}");
    let ops = ok_operations(&dir);
    assert!(ops.len() > 20, "{} operations", ops.len());
    let slack = 0.01; // µs rounding of both clocks' readings
    for (start, end, node, f) in &ops {
        let kind = if f == "final-read" {
            "read"
        } else {
            f.as_str()
        };
        let reply_kind = format!("{kind}_ok");
        let served = recs.iter().any(|q| {
            q.dest == *node
                && q.src.starts_with('c')
                && q.kind == kind
                && q.fate == MessageFate::Delivered
                && q.sent_ms + slack >= *start
                && q.delivered_ms.is_some_and(|d| d <= *end + slack)
                && recs.iter().any(|a| {
                    a.src == *node
                        && a.dest == q.src
                        && a.kind == reply_kind
                        && a.in_reply_to.is_some()
                        && a.in_reply_to == q.msg_id
                        && a.sent_ms + slack >= q.delivered_ms.unwrap()
                        && a.delivered_ms.is_some_and(|d| d <= *end + slack)
                })
        });
        assert!(
            served,
            "no request and reply for {f} on {node} at {start}..{end} ms"
        );
    }
    // Gossip between nodes, and every message the partition cut, as counted.
    let gossip = recs
        .iter()
        .filter(|m| m.kind == "gossip" && m.src.starts_with('n') && m.dest.starts_with('n'))
        .count();
    assert!(gossip > 0, "no gossip recorded");
    let cut = recs.iter().filter(|m| m.fate == MessageFate::Cut).count() as u64;
    assert_eq!(Some(cut), r.results["messages"]["cut"].as_u64());
    assert!(
        cut > 0,
        "the partition cut nothing: {}",
        r.results["messages"]
    );
    assert!(
        recs.iter()
            .filter(|m| m.fate == MessageFate::Cut)
            .all(|m| m.delivered_ms.is_none()),
        "a cut message has no delivery time"
    );
    // The report's diagram holds every message, by name.
    let page = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(page.contains("<h2 id=\"messages-h\">Messages</h2>"));
    assert!(page.contains("function sunderZoom"), "the shared zoom code");
    let data = page
        .split("id=\"messages-data\">")
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .expect("the diagram's data");
    let d: Value = serde_json::from_str(data).unwrap();
    assert_eq!(d["msgs"].as_array().unwrap().len(), recs.len() * 8);
    let procs: Vec<&str> = d["procs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(&procs[..3], ["n1", "n2", "n3"], "nodes first: {procs:?}");
    assert!(procs[3..].iter().all(|p| p.starts_with('c')), "{procs:?}");
    let types = d["types"].as_array().unwrap();
    for t in ["broadcast", "broadcast_ok", "gossip", "read", "read_ok"] {
        assert!(types.iter().any(|x| x == t), "{t} missing from {types:?}");
    }
    assert!(
        page.contains("<a href=\"messages.jsonl\">"),
        "the file is linked"
    );
}

/// An interrupted run leaves `messages.jsonl` complete: every line whole, as many as
/// results.json says were written.
#[test]
fn an_interrupted_run_leaves_messages_jsonl_complete() {
    if !have_python() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sunder"))
        .arg("test")
        .arg("--maelstrom")
        .arg(nodes_dir().join("echo.py"))
        .args(["--results".as_ref(), tmp.path().as_os_str()])
        .args(["-w", "echo", "--time-limit", "60s", "--rate", "200"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let file = tmp.path().join("latest/messages.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // Some messages flushed (the writer flushes at least every 250 ms), then SIGINT.
    while std::fs::metadata(&file).map_or(0, |m| m.len()) < 2_000 {
        assert!(std::time::Instant::now() < deadline, "no messages recorded");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let dir = tmp.path().join("latest");
    let recs = message_records(&dir);
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["interrupted"], true);
    assert_eq!(
        results["message_log"]["written"].as_u64(),
        Some(recs.len() as u64)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with('\n'), "the last line is whole");
    assert!(recs.iter().any(|m| m.kind == "echo_ok"));
}
