//! The HTML counterexample page: self-contained, shows the ops and the failing point, and
//! survives hostile values.

use serde_json::{Value, json};
use sunder_checker::html::render_report;
use sunder_checker::linear::{
    Attempt, Counterexample, LinearizabilityReport, OpSummary, PartitionReport, Step,
};
use sunder_checker::{EventType, Process, Verdict};

fn op(
    id: usize,
    process: u64,
    f: &str,
    input: Value,
    output: Value,
    call: u64,
    ret: Option<u64>,
) -> OpSummary {
    OpSummary {
        id,
        process: Process::Client(process),
        f: f.into(),
        key: Some("k</script>1".into()),
        input,
        output,
        kind: if ret.is_some() {
            EventType::Ok
        } else {
            EventType::Info
        },
        call,
        ret,
        invoke_index: id as u64 * 2,
        complete_index: ret.map(|_| id as u64 * 2 + 1),
    }
}

fn invalid_report() -> LinearizabilityReport {
    let ops = vec![
        op(0, 0, "write", json!(1), json!(1), 0, Some(10)),
        op(1, 1, "write", json!(2), json!(2), 20, Some(30)),
        op(
            2,
            2,
            "read",
            Value::Null,
            json!("</script><script>alert(1)</script>"),
            40,
            Some(50),
        ),
        op(3, 3, "cas", json!([2, 9]), Value::Null, 5, None),
    ];
    let partition = PartitionReport {
        key: Some("k</script>1".into()),
        verdict: Verdict::Invalid,
        ops,
        counterexample: Some(Counterexample {
            longest_prefix: vec![
                Step {
                    op: 0,
                    state: "1".into(),
                },
                Step {
                    op: 1,
                    state: "2".into(),
                },
            ],
            state: "2".into(),
            stuck: vec![Attempt {
                op: 2,
                state: "2".into(),
                reason: "read \"</script>\" but the register holds 2".into(),
            }],
        }),
        explored: 7,
    };
    LinearizabilityReport {
        verdict: Verdict::Invalid,
        model: "cas-register".into(),
        ops: 4,
        summary: "key k</script>1 is not linearizable".into(),
        partitions: vec![partition],
        partitions_total: 1,
        elapsed_ms: 3,
        timed_out: false,
        interrupted: false,
    }
}

/// The JSON blob the page's script reads.
fn embedded_data(page: &str) -> Value {
    let start =
        page.find("id=\"sunder-data\">").expect("data element") + "id=\"sunder-data\">".len();
    let end = start + page[start..].find("</script>").expect("end of data");
    serde_json::from_str(&page[start..end]).expect("the embedded data is JSON")
}

#[test]
fn page_holds_the_ops_and_the_failing_point() {
    let page = render_report("history <1>", &invalid_report());
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<title>history &lt;1&gt;</title>"));
    let data = embedded_data(&page);
    let p = &data["partitions"][0];
    assert_eq!(p["ops"].as_array().unwrap().len(), 4);
    assert_eq!(p["ops"][1]["f"], "write");
    assert_eq!(p["ops"][3]["ret"], Value::Null, "an info op stays open");
    assert_eq!(p["counterexample"]["longest_prefix"][1]["state"], "2");
    assert_eq!(p["counterexample"]["stuck"][0]["op"], 2);
    assert_eq!(
        p["counterexample"]["stuck"][0]["reason"],
        "read \"</script>\" but the register holds 2"
    );
    assert!(page.contains("failing point"));
    assert!(
        page.contains("id=\"partition\""),
        "a selector between partitions"
    );
}

#[test]
fn values_cannot_break_out_of_the_script() {
    let page = render_report("t", &invalid_report());
    // Exactly the page's own two script elements close; no value closes one early.
    assert_eq!(page.matches("</script>").count(), 2);
    assert!(!page.contains("<script>alert"));
    assert!(
        page.contains("k&lt;/script&gt;1"),
        "the summary is escaped as HTML"
    );
}

#[test]
fn page_loads_nothing_from_the_network() {
    let page = render_report("t", &invalid_report());
    assert!(!page.contains("http://") && !page.contains("https://"));
    for needle in [
        "src=",
        "@import",
        "<link",
        "url(//",
        "fetch(",
        "XMLHttpRequest",
    ] {
        assert!(!page.contains(needle), "page contains {needle}");
    }
}

#[test]
fn a_valid_report_renders_without_partitions() {
    let mut r = invalid_report();
    r.verdict = Verdict::Valid;
    r.partitions.clear();
    r.summary = "linearizable".into();
    let page = render_report("ok", &r);
    assert_eq!(embedded_data(&page)["partitions"], json!([]));
    assert!(page.contains("verdict-valid"));
}

/// Kills the browser's whole process group, even when the test fails.
struct KillGroup(u32);

impl Drop for KillGroup {
    fn drop(&mut self) {
        // Chromium forks helpers: kill the group made with process_group(0), not just the child.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .status();
    }
}

fn browser() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// The page's script really runs: a headless browser's DOM holds the bars it built.
#[test]
fn script_builds_the_timeline_in_a_browser() {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let Some(chromium) = browser() else {
        sunder_test_support::skip_or_fail("no chromium on PATH (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.html");
    std::fs::write(&page, render_report("t", &invalid_report())).unwrap();
    let dom = dir.path().join("dom.html");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .args(["--dump-dom", &format!("file://{}", page.display())])
        .stdout(std::fs::File::create(&dom).unwrap())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let _guard = KillGroup(child.id());
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "chromium did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let dom = std::fs::read_to_string(&dom).unwrap();
    let count = |needle: &str| dom.matches(needle).count();
    assert_eq!(count("class=\"bar lin\""), 2, "the two prefix ops");
    assert_eq!(
        count("class=\"bar stuck\""),
        1,
        "the op that could not go next"
    );
    assert_eq!(
        count("class=\"bar info open\""),
        1,
        "the info op, open to the end"
    );
    assert_eq!(count("class=\"bar ok\""), 0);
    assert!(
        dom.contains("class=\"failline\""),
        "the failing point is drawn"
    );
    assert!(
        dom.contains("met 2: read \"&lt;/script&gt;\" but the register holds 2"),
        "the reason is listed"
    );
    assert!(
        dom.contains("<option value=\"0\">key \"k&lt;/script&gt;1\""),
        "the partition selector"
    );
}
