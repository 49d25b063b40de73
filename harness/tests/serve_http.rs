//! `sunder serve` over real HTTP: the runs table, a report written on first request, and
//! path-traversal attempts refused.

#[path = "report_fixture.rs"]
mod fixture;

use fixture::*;
use serde_json::json;
use std::time::{Duration, SystemTime};

/// Two runs, the invalid one newer; a secret file next to the results directory and a
/// symbolic link inside it that points at the secret.
fn results_dir(tmp: &std::path::Path) -> std::path::PathBuf {
    let root = tmp.join("results");
    let old = root.join("primary-register/20261128T100000Z");
    let new = root.join("lww-register/20261128T110000Z");
    write_run(
        &old,
        "primary-register",
        "primary",
        "register",
        &register_history(true),
    );
    write_run(
        &new,
        "lww-register",
        "lww",
        "register",
        &register_history(false),
    );
    for (dir, verdict, age) in [(&old, "valid", 3600), (&new, "invalid", 60)] {
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        let results = json!({
            "name": cfg["config"]["name"], "seed": 42, "replay": cfg["replay"], "verdict": verdict,
            "exit_code": if verdict == "valid" { 0 } else { 1 }, "interrupted": false,
            "config": cfg["config"], "checkers": [{"name": "availability", "verdict": verdict, "reason": "made up", "details": null}],
            "stats": {"duration_s": 9.5}, "nodes": {}, "warnings": []
        });
        std::fs::write(dir.join("results.json"), results.to_string()).unwrap();
        let t = SystemTime::now() - Duration::from_secs(age);
        std::fs::File::options()
            .write(true)
            .open(dir.join("config.json"))
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    std::os::unix::fs::symlink("lww-register/20261128T110000Z", root.join("latest")).unwrap();
    std::fs::write(tmp.join("secret.txt"), "TOP-SECRET\n").unwrap();
    std::os::unix::fs::symlink(tmp.join("secret.txt"), root.join("leak")).unwrap();
    std::os::unix::fs::symlink(tmp, root.join("up")).unwrap();
    root
}

#[test]
fn the_index_lists_runs_newest_first_and_reports_are_served() {
    let tmp = tempfile::tempdir().unwrap();
    let root = results_dir(tmp.path());
    let s = Serve::start(&root);
    let (status, head, body) = s.get("/");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("text/html"));
    let (newer, older) = (
        body.find("lww-register/20261128T110000Z").unwrap(),
        body.find("primary-register/20261128T100000Z").unwrap(),
    );
    assert!(newer < older, "newest first");
    assert!(body.contains("<span class=\"badge v-invalid\">invalid</span>"));
    assert!(body.contains("<span class=\"badge v-valid\">valid</span>"));
    assert!(body.contains("9.5 s"));
    assert!(body.contains("id=\"q\""), "the filter box");
    assert_eq!(
        body.matches("<tr data-verdict=").count(),
        2,
        "latest is a link, not a third run"
    );

    // No report yet: the first request writes it.
    assert!(
        !root
            .join("lww-register/20261128T110000Z/report.html")
            .exists()
    );
    let (status, _, page) = s.get("/lww-register/20261128T110000Z/report.html");
    assert_eq!(status, 200);
    assert!(page.contains("lww-register") && page.contains("made up"));
    assert!(
        root.join("lww-register/20261128T110000Z/report.html")
            .is_file()
    );

    let (status, head, _) = s.get("/latest");
    assert_eq!(status, 301);
    assert!(head.contains("Location: /latest/"));
    let (status, _, listing) = s.get("/latest/");
    assert_eq!(status, 200);
    assert!(listing.contains("history.jsonl") && listing.contains("nodes/"));
    let (status, head, log) = s.get("/latest/nodes/n1.log");
    assert_eq!((status, log.as_str()), (200, "n1 started\n"));
    assert!(head.contains("text/plain"));
    assert_eq!(s.get("/nope/report.html").0, 404);
}

#[test]
fn nothing_outside_the_results_directory_can_be_reached() {
    let tmp = tempfile::tempdir().unwrap();
    let root = results_dir(tmp.path());
    let s = Serve::start(&root);
    for target in [
        "/../../etc/passwd",
        "/../secret.txt",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E/secret.txt",
        "/latest/..%2f..%2f..%2fsecret.txt",
        "/lww-register/%2e%2e/%2e%2e/secret.txt",
        "/..%5csecret.txt",
        "/leak",
        "/up/secret.txt",
        "//etc/passwd",
        "/%00/etc/passwd",
    ] {
        let (status, head, body) = s.get(target);
        assert!(matches!(status, 400 | 403 | 404), "{target}: {head}");
        assert!(
            !body.contains("TOP-SECRET") && !body.contains("root:x:0"),
            "{target} leaked: {body}"
        );
    }
    // The same server still serves what is inside.
    assert_eq!(s.get("/latest/config.json").0, 200);
}
