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
