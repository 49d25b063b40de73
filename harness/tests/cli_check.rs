//! `sunder check` on the real binary: verdict lines, exit codes, `--json`, `--html`,
//! directories, and the Porcupine corpus.

mod support;

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn sunder() -> Command {
    let mut cmd = Command::from_std(support::sunder());
    cmd.env("NO_COLOR", "1");
    cmd
}

/// One JSON line per event: (process, type, f, value) with times 10 apart.
fn jsonl(events: &[(u64, &str, &str, Value)]) -> String {
    let mut out = String::new();
    for (i, (p, t, f, v)) in events.iter().enumerate() {
        out.push_str(&format!(
            "{{\"index\":{i},\"time\":{},\"type\":\"{t}\",\"process\":{p},\"f\":\"{f}\",\"value\":{v}}}\n",
            i * 10
        ));
    }
    out
}

fn valid() -> String {
    use serde_json::json;
    jsonl(&[
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (1, "invoke", "read", Value::Null),
        (1, "ok", "read", json!(1)),
    ])
}

fn invalid() -> String {
    use serde_json::json;
    jsonl(&[
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (1, "invoke", "read", Value::Null),
        (1, "ok", "read", json!(2)),
    ])
}

/// A long sequential history: enough search steps that a zero time budget always runs out.
fn long() -> String {
    let mut events = Vec::new();
    for i in 0..3000u64 {
        events.push((i % 7, "invoke", "write", Value::from(i)));
        events.push((i % 7, "ok", "write", Value::from(i)));
    }
    jsonl(&events)
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

fn stdout_of(cmd: &mut Command, code: i32) -> String {
    let out = cmd.assert().code(code).get_output().clone();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn valid_history_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "ok.jsonl", &valid());
    let out = stdout_of(sunder().arg("check").arg(&f), 0);
    assert!(out.starts_with("valid "), "{out}");
    assert!(out.contains("2 ops"), "{out}");
    assert!(
        out.lines().last().unwrap().starts_with("total: 1 files"),
        "{out}"
    );
    assert!(!out.contains('\x1b'), "NO_COLOR is honoured");
}

#[test]
fn invalid_history_exits_1_with_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "bad.jsonl", &invalid());
    let out = stdout_of(sunder().arg("check").arg(&f), 1);
    assert!(out.starts_with("INVALID "), "{out}");
    assert!(out.contains("longest linearizable prefix"), "{out}");
    assert!(out.contains("none of these can be placed next"), "{out}");
    assert!(out.contains("p1 read → 2"), "the stuck op is named: {out}");
    assert!(out.contains("met state 1"), "with the state it met: {out}");
}

#[test]
fn out_of_time_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "long.jsonl", &long());
    let out = stdout_of(sunder().args(["check", "--timeout", "0s"]).arg(&f), 2);
    assert!(out.starts_with("unknown "), "{out}");
    // The same history with time to spare is valid: the unknown came from the budget.
    let out = stdout_of(sunder().arg("check").arg(&f), 0);
    assert!(out.starts_with("valid "), "{out}");
}

#[test]
fn unreadable_input_exits_3_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = valid();
    body.push_str("{\"index\":4,\"time\":50,\"type\":\"ok\"}\n");
    let f = write(dir.path(), "broken.jsonl", &body);
    let out = stdout_of(sunder().arg("check").arg(&f), 3);
    assert!(out.starts_with("unreadable "), "{out}");
    assert!(out.contains(&format!("{}:5:", f.display())), "{out}");
    stdout_of(
        sunder().arg("check").arg(dir.path().join("missing.jsonl")),
        3,
    );
}

#[test]
fn exit_code_precedence_is_invalid_unreadable_unknown_valid() {
    let dir = tempfile::tempdir().unwrap();
    let ok = write(dir.path(), "a.jsonl", &valid());
    let bad = write(dir.path(), "b.jsonl", &invalid());
    let long = write(dir.path(), "c.jsonl", &long());
    let junk = write(dir.path(), "d.txt", "what is this\n");
    let empty = write(dir.path(), "e.jsonl", "");
    let check = |files: &[&PathBuf], code| {
        let mut cmd = sunder();
        cmd.args(["check", "--timeout", "0s"]).args(files);
        stdout_of(&mut cmd, code)
    };
    check(&[&ok, &bad, &long, &junk], 1);
    check(&[&ok, &long, &junk], 3);
    check(&[&ok, &long], 2);
    let out = check(&[&ok, &empty], 0);
    assert!(
        out.lines()
            .any(|l| l.starts_with("empty ") && l.contains("e.jsonl")),
        "{out}"
    );
}

#[test]
fn truncated_last_line_is_a_warning_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "killed.jsonl",
        &format!("{}{{\"index\":4,\"ti", valid()),
    );
    let out = stdout_of(sunder().arg("check").arg(&f), 0);
    assert!(
        out.contains("warning:") && out.contains("truncated"),
        "{out}"
    );
}

#[test]
fn directory_gives_one_line_per_file_and_a_total() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "1.jsonl", &valid());
    write(dir.path(), "2.jsonl", &invalid());
    write(dir.path(), "3.jsonl", &valid());
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let out = stdout_of(sunder().arg("check").arg(dir.path()), 1);
    let verdicts: Vec<&str> = out.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(verdicts.len(), 4, "{out}");
    assert!(
        verdicts[0].contains("1.jsonl")
            && verdicts[1].contains("2.jsonl")
            && verdicts[2].contains("3.jsonl")
    );
    assert!(
        verdicts[3].starts_with("total: 3 files") && verdicts[3].contains("2 valid, 1 invalid"),
        "{out}"
    );
}

#[test]
fn json_output_parses() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.jsonl", &valid());
    write(dir.path(), "b.jsonl", &invalid());
    write(dir.path(), "c.jsonl", "");
    let out = stdout_of(sunder().args(["check", "--json"]).arg(dir.path()), 1);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["status"], "valid");
    assert_eq!(lines[1]["status"], "invalid");
    assert_eq!(lines[1]["report"]["verdict"], "invalid");
    assert!(lines[1]["report"]["partitions"][0]["counterexample"]["stuck"].is_array());
    assert_eq!(lines[2]["status"], "empty");
    let total = &lines[3]["total"];
    assert_eq!(
        (
            total["files"].as_u64(),
            total["valid"].as_u64(),
            total["invalid"].as_u64()
        ),
        (Some(3), Some(1), Some(1))
    );
    assert_eq!(total["exit_code"], 1);
}

#[test]
fn html_for_one_file_and_for_several() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.jsonl", &invalid());
    let page = dir.path().join("page.html");
    sunder()
        .arg("check")
        .arg(&bad)
        .arg("--html")
        .arg(&page)
        .assert()
        .code(1);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("sunder-data"));

    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    write(&inputs, "x.jsonl", &invalid());
    write(&inputs, "y.jsonl", &valid());
    let pages = dir.path().join("pages");
    sunder()
        .arg("check")
        .arg(&inputs)
        .arg("--html")
        .arg(&pages)
        .assert()
        .code(1);
    let mut names: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["x.jsonl.html"], "one page per invalid file");
}

#[test]
fn edn_nil_reads_are_unconstrained_but_jsonl_ones_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let body = "{:type :invoke, :f :write, :process 0, :value 1}\n{:type :ok, :f :write, :process 0, :value 1}\n\
                {:type :invoke, :f :read, :process 1, :value nil}\n{:type :ok, :f :read, :process 1, :value nil}\n";
    let edn = write(dir.path(), "h.edn", body);
    stdout_of(sunder().arg("check").arg(&edn), 0);
    let jsonl = write(
        dir.path(),
        "h.jsonl",
        &invalid().replace("\"value\":2", "\"value\":null"),
    );
    stdout_of(sunder().arg("check").arg(&jsonl), 1);
}

#[test]
fn model_and_initial_flags() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "zero.jsonl",
        &jsonl(&[
            (0, "invoke", "read", Value::Null),
            (0, "ok", "read", json!(0)),
        ]),
    );
    stdout_of(sunder().arg("check").arg(&f), 1);
    let out = stdout_of(sunder().args(["check", "--initial", "0"]).arg(&f), 0);
    assert!(out.contains("cas-register"), "{out}");
    let out = stdout_of(
        sunder()
            .args(["check", "--model", "register", "--initial", "0"])
            .arg(&f),
        0,
    );
    assert!(out.contains(", register,"), "{out}");
    sunder()
        .args(["check", "--initial", "not json"])
        .arg(&f)
        .assert()
        .code(3);
    // A usage error, not a verdict (main maps it to 3, "could not run").
    sunder()
        .args(["check", "--model", "queue"])
        .arg(&f)
        .assert()
        .failure()
        .stderr(predicates::str::contains("queue"));
}

#[test]
fn porcupine_corpus_in_one_call() {
    let Some(dir) = sunder_test_support::shared_data_or_skip("porcupine") else {
        return;
    };
    let out = stdout_of(sunder().args(["check", "--json"]).arg(dir.join("etcd")), 1);
    let total: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let t = &total["total"];
    assert_eq!(
        (
            t["files"].as_u64(),
            t["valid"].as_u64(),
            t["invalid"].as_u64(),
            t["empty"].as_u64()
        ),
        (Some(103), Some(23), Some(79), Some(1)),
        "{t}"
    );
    let empty: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["status"] == "empty")
        .collect();
    assert!(empty[0]["file"].as_str().unwrap().ends_with("etcd_095.log"));
    let out = stdout_of(sunder().arg("check").arg(dir.join("kv")), 1);
    assert!(
        out.lines().last().unwrap().contains("3 valid, 3 invalid"),
        "{out}"
    );
}

#[test]
fn an_empty_directory_is_an_error_not_a_valid_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = sunder().arg("check").arg(dir.path()).assert().code(3);
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("holds no history files"), "{text}");
}

#[test]
fn a_log_file_without_operations_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "server.log",
        "INFO  starting the server\nINFO  listening on 127.0.0.1:2379\n",
    );
    let out = sunder().arg("check").arg(&p).assert().code(3);
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains("no line holds an operation of that format"),
        "{text}"
    );
    // Forced, the same file is still not an empty history.
    let out = sunder()
        .args(["check", "--format", "etcd-log"])
        .arg(&p)
        .assert()
        .code(3);
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("no line holds an operation"), "{text}");
}

#[test]
fn edn_opening_with_comments_and_blank_lines_is_edn() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "history.txt",
        ";; a Jepsen history\n\n; written by hand\n\n\
         {:type :invoke, :process 0, :f :write, :value 1}\n\
         {:type :ok, :process 0, :f :write, :value 1}\n\
         {:type :invoke, :process 1, :f :read, :value nil}\n\
         {:type :ok, :process 1, :f :read, :value 1}\n",
    );
    let out = sunder().args(["check", "--json"]).arg(&p).assert().code(0);
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["format"], "edn", "{text}");
    assert_eq!(first["status"], "valid", "{text}");
}

#[test]
fn deeply_nested_edn_and_json_are_clear_errors() {
    const N: usize = 100_000;
    let nest = format!("{}{}", "[".repeat(N), "]".repeat(N));
    let dir = tempfile::tempdir().unwrap();
    let edn = write(
        dir.path(),
        "deep.edn",
        &format!("{{:type :invoke, :process 0, :f :write, :value {nest}}}\n"),
    );
    let top = write(dir.path(), "top.edn", &format!("{nest}\n"));
    let json = write(
        dir.path(),
        "deep.jsonl",
        &format!(
            "{{\"index\":0,\"time\":0,\"type\":\"invoke\",\"process\":0,\"f\":\"write\",\"value\":{nest}}}\n"
        ),
    );
    for (p, format, says) in [
        (&edn, None, "nested more than"),
        (&top, Some("edn"), "nested more than"),
        (&json, None, "recursion limit"),
    ] {
        let mut cmd = sunder();
        cmd.arg("check");
        if let Some(f) = format {
            cmd.args(["--format", f]);
        }
        let out = cmd.arg(p).assert().code(3);
        let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
        assert!(text.contains(says), "{}: {text}", p.display());
    }
}
