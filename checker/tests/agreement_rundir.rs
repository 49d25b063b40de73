//! Loading a run directory's dumps and event streams for the agreement checker.

use serde_json::json;
use sunder_checker::agreement::{self, Membership, load_run_dir};
use sunder_checker::{History, Verdict};

#[test]
fn loads_dumps_and_events_from_nodes_dir() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = dir.path().join("nodes");
    std::fs::create_dir(&nodes).unwrap();
    for (id, term) in [("n1", 1), ("n2", 2)] {
        let dump = json!({"node": id, "snapshot_index": 0, "entries": [{"index": 1, "term": 1, "command": null}], "state": {}});
        std::fs::write(nodes.join(format!("{id}.dump.json")), dump.to_string()).unwrap();
        let events = format!(
            "{{\"node\":\"{id}\",\"event\":\"start\"}}\n{{\"node\":\"{id}\",\"event\":\"leader\",\"term\":{term}}}\n"
        );
        std::fs::write(nodes.join(format!("{id}.events.jsonl")), events).unwrap();
    }
    std::fs::write(nodes.join("n1.log"), "not json, ignored").unwrap();
    let (dumps, events, warnings) = load_run_dir(dir.path()).unwrap();
    assert_eq!(dumps.len(), 2);
    assert_eq!(events.len(), 4);
    assert!(warnings.is_empty());
    assert_eq!(
        agreement::check(
            &dumps,
            &events,
            &History::default(),
            &Membership::of(["n1", "n2"])
        )
        .verdict,
        Verdict::Valid
    );

    std::fs::write(nodes.join("n2.dump.json"), "{\"node\":").unwrap();
    let err = load_run_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("n2.dump.json:1:"), "{err}");
}

/// `AGREEMENT_RUN_DIR=results/latest cargo test -p sunder-checker --test agreement_rundir -- --ignored --nocapture`
#[test]
#[ignore]
fn inspect_run_dir_from_env() {
    let dir =
        std::path::PathBuf::from(std::env::var("AGREEMENT_RUN_DIR").expect("AGREEMENT_RUN_DIR"));
    let (dumps, events, warnings) = load_run_dir(&dir).unwrap();
    let history = sunder_checker::format::read_path(&dir.join("history.jsonl"), None).unwrap();
    let members = Membership::of(dumps.iter().map(|d| d.node.clone()));
    let mut r = agreement::check(&dumps, &events, &history.history, &members);
    r.warnings.extend(warnings);
    println!("{}", r.summary());
}
