//! `report.html` for a valid and an invalid run (through `sunder analyze`, which re-checks
//! a stored history and rewrites the results and the report), asserted on content.

mod support;

use serde_json::Value;
use support::report::*;

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn a_valid_run_reports_verdicts_config_faults_and_node_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lww-register/20261128T000000Z");
    write_run(
        &dir,
        "lww-register",
        "lww",
        "register",
        &register_history(true),
    );
    let (code, out) = analyze(&dir);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("report:  {}", dir.join("report.html").display())),
        "{out}"
    );
    let page = read(&dir.join("report.html"));
    assert!(page.contains("<span class=\"badge v-valid\">valid</span>"));
    assert!(
        page.contains("linearizable"),
        "the checker's reason is shown"
    );
    assert!(
        page.contains("sunder test --target lww --workload register --seed 42"),
        "replay command"
    );
    // The partition is a labelled band in both charts, and listed.
    assert_eq!(page.matches("<g class=\"band band-partition\">").count(), 2);
    assert!(page.contains("partition n1✗n2,n3 n2✗n1 n3✗n1"));
    assert!(page.contains("<a href=\"nodes/n1.log\">n1.log</a>"));
    assert!(page.contains("id=\"timeline-data\""));
    // An error string that tries to close the script element is escaped, never raw.
    assert!(!page.contains("</script><img"));
    assert!(page.contains("\\u003c/script\\u003e\\u003cimg"));
    assert!(!dir.join("linearizability.html").exists());
    // The configuration survives the rewrite of results.json.
    let r: Value = serde_json::from_str(&read(&dir.join("results.json"))).unwrap();
    assert_eq!(r["verdict"], "valid");
    assert_eq!(r["config"]["target"], "lww");
}

#[test]
fn an_invalid_run_shows_the_counterexample() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lww-register/20261128T000001Z");
    write_run(
        &dir,
        "lww-register",
        "lww",
        "register",
        &register_history(false),
    );
    let (code, out) = analyze(&dir);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("INVALID"));
    let page = read(&dir.join("report.html"));
    assert!(page.contains("<span class=\"badge v-invalid\">invalid</span>"));
    assert!(page.contains("key k1"), "the failing key is named");
    assert!(
        page.contains("process 1 read → 7"),
        "the operation that cannot be placed"
    );
    assert!(page.contains("<iframe class=\"cex\" src=\"linearizability.html\""));
    let cex = read(&dir.join("linearizability.html"));
    assert!(cex.contains("k1"));
    let r: Value = serde_json::from_str(&read(&dir.join("results.json"))).unwrap();
    assert_eq!(r["verdict"], "invalid");
    assert_eq!(r["exit_code"], 1);

    // Fixing the history and re-checking takes the stale counterexample away.
    write_run(
        &dir,
        "lww-register",
        "lww",
        "register",
        &register_history(true),
    );
    assert_eq!(analyze(&dir).0, 0);
    assert!(!dir.join("linearizability.html").exists());
    assert!(!read(&dir.join("report.html")).contains("linearizability.html"));
}

#[test]
fn a_set_run_lists_lost_elements() {
    use serde_json::json;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lww-set/20261128T000002Z");
    let mut h = Vec::new();
    for (i, x) in [1, 2, 3].iter().enumerate() {
        let t = 10 * i as u64;
        h.push(ev(t + 1, "invoke", json!(0), "add", Some("set"), json!(x)));
        h.push(ev(t + 2, "ok", json!(0), "add", Some("set"), json!(x)));
    }
    let mut inv = ev(50, "invoke", json!(1), "read", Some("set"), Value::Null);
    inv["node"] = json!("n1");
    let mut ok = ev(51, "ok", json!(1), "read", Some("set"), json!([1, 3]));
    ok["node"] = json!("n1");
    h.extend([inv, ok]);
    write_run(&dir, "lww-set", "lww", "set", &h);
    let (code, out) = analyze(&dir);
    assert_eq!(code, 1, "{out}");
    let page = read(&dir.join("report.html"));
    assert!(
        page.contains("<tr><th>lost</th><td class=\"num\">1</td>"),
        "{page}"
    );
    assert!(page.contains("<td class=\"elements\">2</td>"));
}

#[test]
fn analyze_refuses_a_directory_that_is_not_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out) = analyze(tmp.path());
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("no configuration"), "{out}");
}

#[test]
fn an_agreement_checker_shows_the_first_divergence() {
    use serde_json::json;
    // The controller does not run an agreement checker yet; the report draws one from
    // results.json whenever one is there, so this writes results.json directly.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("raft-register/20261128T000003Z");
    write_run(
        &dir,
        "raft-register",
        "raft",
        "register",
        &register_history(true),
    );
    // The details are the agreement checker's own report on dumps and events that
    // disagree, so a field the report reads under another name fails here.
    use sunder_checker::agreement::{self, Dump, DumpEntry, EventLine, Membership, NodeEvent};
    let dump = |node: &str, term: u64, command: &str| Dump {
        node: node.into(),
        snapshot_index: 3,
        entries: vec![DumpEntry {
            index: 4,
            term,
            command: json!(command),
            origin: None,
            digest: None,
        }],
        state: json!({}),
        snapshot_digest: None,
        snapshot_terms: vec![],
    };
    let vote = |candidate: &str| EventLine {
        node: "n2".into(),
        time_ms: None,
        event: NodeEvent::Vote {
            term: 7,
            candidate: candidate.into(),
        },
    };
    let report = agreement::check(
        &[dump("n1", 2, "w 3"), dump("n3", 3, "w <9>")],
        &[vote("n1"), vote("n<4>")],
        &sunder_checker::History::default(),
        &Membership::of(["n1", "n3"]),
    );
    let results = json!({
        "name": "raft-register", "seed": 42, "verdict": "invalid", "exit_code": 1,
        "config": {"name": "raft-register", "target": "raft", "workload": "register", "seed": 42},
        "checkers": [{"name": "agreement", "verdict": "invalid", "reason": "n1 and n3 differ at index 4",
            "details": report}],
        "nodes": {}, "warnings": []
    });
    std::fs::write(dir.join("results.json"), results.to_string()).unwrap();
    // `serve` writes a missing report on request; here, through a server.
    let s = Serve::start(tmp.path());
    let (status, _, page) = s.get("/raft-register/20261128T000003Z/report.html");
    assert_eq!(status, 200);
    assert!(
        page.contains("<b>First divergence</b> at index 4"),
        "{page}"
    );
    assert!(page.contains("<td>n3</td>"));
    assert!(page.contains("w &lt;9&gt;"));
    assert!(
        page.contains("n2 voted twice in term 7") && page.contains("n&lt;4&gt;"),
        "{page}"
    );
}

/// `sunder sim --seed 3 --replay` with `args`: the run directory it wrote.
fn simulate(results: &std::path::Path, args: &[&str]) -> std::path::PathBuf {
    let out = sunder()
        .args(["sim", "--seed", "3", "--replay", "--faults", "partition"])
        .args(args)
        .arg("--results")
        .arg(results)
        .output()
        .unwrap();
    let run = results.join("latest");
    assert!(
        run.join("report.html").is_file(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    run
}

/// A proof-of-work run's report plots every node's chain height, with a dot for each
/// reorganisation its `tip` events show and a red cross for each reversed confirmation
/// the agreement checker found; `sunder analyze` draws the same; a Raft run's report
/// has no such plot.
#[test]
fn a_pow_run_plots_chain_height_and_forks_and_a_raft_run_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    // One confirmation: partitions reverse some (seed 3 reorganises and reverses).
    let run = simulate(
        &tmp.path().join("pow"),
        &[
            "--target",
            "pow",
            "--workload",
            "bank",
            "--opt",
            "confirmations=1",
        ],
    );
    // What the nodes wrote, counted here independently of the checker.
    let mut counts: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for n in 1..=5 {
        let text = read(&run.join(format!("nodes/n{n}.events.jsonl")));
        let c = counts.entry(format!("n{n}")).or_default();
        for line in text.lines() {
            let e: Value = serde_json::from_str(line).unwrap();
            if e["event"] == "tip" {
                c.0 += 1;
                c.1 += u64::from(e["dropped"].as_u64().unwrap() > 0);
            }
        }
    }
    let reorgs: u64 = counts.values().map(|c| c.1).sum();
    assert!(reorgs > 0, "seed 3 reorganises: {counts:?}");
    let results: Value = serde_json::from_str(&read(&run.join("results.json"))).unwrap();
    let agreement = results["checkers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "agreement")
        .unwrap();
    let reversed = agreement["details"]["reversed_confirmations"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(reversed > 0, "{agreement}");
    assert_eq!(
        agreement["details"]["chain"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let check = |page: &str| {
        assert!(page.contains("<h2 id=\"chain\">Chain height and forks</h2>"));
        for (node, (tips, r)) in &counts {
            let s = if *r == 1 { "" } else { "s" };
            assert!(
                page.contains(&format!("{node}: {tips} tips, {r} reorg{s}")),
                "{node}: {tips} tips, {r} reorgs"
            );
            assert!(page.contains(&format!("<title>{node}: best chain height</title>")));
        }
        assert_eq!(page.matches("<path class=\"step best c").count(), 5);
        assert_eq!(page.matches("<path class=\"step confirmed c").count(), 5);
        assert_eq!(
            page.matches("<circle class=\"reorg c").count() as u64,
            reorgs
        );
        assert_eq!(
            page.matches("<g class=\"reversal\"><title>at ").count(),
            reversed
        );
        assert!(page.contains(&format!("{reversed} reversed confirmations")));
    };
    check(&read(&run.join("report.html")));
    let (code, out) = analyze(&run);
    assert_eq!(code, 1, "{out}");
    check(&read(&run.join("report.html")));

    let run = simulate(
        &tmp.path().join("raft"),
        &["--target", "raft", "--workload", "register"],
    );
    let page = read(&run.join("report.html"));
    assert!(page.contains("id=\"plots\""), "the other charts are there");
    assert!(!page.contains("id=\"chain\""));
    assert!(!page.contains("class=\"step"));
    assert!(!read(&run.join("results.json")).contains("\"chain\":"));
}
