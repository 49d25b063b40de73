//! Choosing the format by content, forcing it, and what `read_path` says about checking.

use serde_json::Value;
use std::path::{Path, PathBuf};
use sunder_checker::format::{Format, FormatError, detect, read_path, read_str};
use sunder_checker::model::ModelSpec;

const JSONL: &str = "{\"index\":0,\"time\":0,\"type\":\"invoke\",\"process\":0,\"f\":\"write\",\"value\":1}\n\
{\"index\":1,\"time\":5,\"type\":\"ok\",\"process\":0,\"f\":\"write\",\"value\":1}\n";
const EDN: &str = "{:type :invoke, :f :read, :process 0, :value nil}\n{:type :ok, :f :read, :process 0, :value nil}\n";
const ETCD: &str =
    "INFO  jepsen.util - 4\t:invoke\t:read\tnil\nINFO  jepsen.util - 4\t:ok\t:read\t3\n";
const KV: &str = "{:process 9, :type :invoke, :f :append, :key \"0\", :value \"x 9 0 y\"}\n\
{:process 9, :type :ok, :f :append, :key \"0\", :value \"x 9 0 y\"}\n";

fn corpus() -> Option<PathBuf> {
    sunder_test_support::shared_data_or_skip("porcupine")
}

#[test]
fn detects_each_format_by_its_first_characters() {
    assert_eq!(detect(JSONL), Some(Format::Jsonl));
    assert_eq!(detect(&format!("\n  \n{JSONL}")), Some(Format::Jsonl));
    assert_eq!(detect(EDN), Some(Format::Edn));
    assert_eq!(detect(&format!("[{EDN}]")), Some(Format::Edn));
    assert_eq!(detect(&format!("({EDN})")), Some(Format::Edn));
    assert_eq!(
        detect("#jepsen.history.Op{:type :ok, :f :read, :process 0}"),
        Some(Format::Edn)
    );
    assert_eq!(detect(ETCD), Some(Format::EtcdLog));
    assert_eq!(
        detect(KV),
        Some(Format::KvLog),
        "the kv log is EDN-like but has its own reader"
    );
    assert_eq!(detect("hello\n"), None);
    assert_eq!(detect(""), None);
}

#[test]
fn default_models_and_nil_reads() {
    let read = |src: &str| read_str(src, Path::new("h"), None).unwrap();
    let j = read(JSONL);
    assert_eq!(
        (j.format, j.default_model, j.nil_read_unconstrained),
        (
            Format::Jsonl,
            ModelSpec::CasRegister {
                initial: Value::Null
            },
            false
        )
    );
    let keyed = JSONL.replace("\"f\":", "\"key\":\"k\",\"f\":");
    assert_eq!(
        read(&keyed).default_model,
        ModelSpec::Kv {
            initial: Value::Null
        }
    );
    let e = read(EDN);
    assert_eq!((e.format, e.nil_read_unconstrained), (Format::Edn, true));
    assert_eq!(
        e.default_model,
        ModelSpec::CasRegister {
            initial: Value::Null
        }
    );
    let k = read(KV);
    assert_eq!(
        (k.format, k.default_model),
        (
            Format::KvLog,
            ModelSpec::Kv {
                initial: Value::String(String::new())
            }
        )
    );
    let t = read(ETCD);
    assert_eq!(
        (t.format, t.default_model),
        (
            Format::EtcdLog,
            ModelSpec::CasRegister {
                initial: Value::Null
            }
        )
    );
}

#[test]
fn forcing_a_format_overrides_detection() {
    let err = read_str(EDN, Path::new("h.edn"), Some(Format::Jsonl)).unwrap_err();
    assert!(matches!(err, FormatError::Parse { line: 1, .. }), "{err}");
    let names: Vec<Format> = ["jsonl", "edn", "etcd-log", "kv-log"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(
        names,
        [Format::Jsonl, Format::Edn, Format::EtcdLog, Format::KvLog]
    );
    assert!(
        "yaml"
            .parse::<Format>()
            .unwrap_err()
            .contains("expected jsonl")
    );
}

#[test]
fn unknown_content_says_how_to_force() {
    let err = read_str("hello world\n", Path::new("notes.txt"), None).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, FormatError::UnknownFormat { .. }));
    assert!(
        text.starts_with("notes.txt: ") && text.contains("--format"),
        "{text}"
    );
}

#[test]
fn files_are_read_by_content_and_empty_files_are_empty() {
    let dir = tempfile::tempdir().unwrap();
    for (name, body, format) in [
        ("a.jsonl", JSONL, Format::Jsonl),
        ("b.txt", EDN, Format::Edn),
        ("c.edn", ETCD, Format::EtcdLog),
        ("d.log", KV, Format::KvLog),
        ("e.log", "", Format::EtcdLog),
        ("f.edn", "\n\n", Format::Edn),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let read = read_path(&path, None).unwrap();
        assert_eq!(read.format, format, "{name}");
        assert_eq!(read.history.is_empty(), body.trim().is_empty(), "{name}");
    }
    let truncated = dir.path().join("t.jsonl");
    std::fs::write(&truncated, format!("{JSONL}{{\"index\":2,\"ti")).unwrap();
    let read = read_path(&truncated, None).unwrap();
    assert_eq!((read.history.len(), read.warnings.len()), (2, 1));
    let err = read_path(&dir.path().join("missing.jsonl"), None).unwrap_err();
    assert!(err.to_string().contains("missing.jsonl"), "{err}");
}

#[test]
fn porcupine_logs_with_a_broken_value_name_the_line() {
    let etcd =
        "INFO  jepsen.util - 4\t:invoke\t:read\tnil\nINFO  jepsen.util - 4\t:ok\t:read\t[3\n";
    match read_str(etcd, Path::new("etcd_x.log"), None) {
        Err(FormatError::Parse { line, .. }) => assert_eq!(line, 2),
        other => panic!("expected a parse error on line 2, got {other:?}"),
    }
    let kv = format!("{KV}{{:process 9, :type :ok, :f :get, :key \"0\", :value \"x 9 0 y}}\n");
    match read_str(&kv, Path::new("c01-x.txt"), None) {
        Err(FormatError::Parse { line, .. }) => assert_eq!(line, 3),
        other => panic!("expected a parse error on line 3, got {other:?}"),
    }
}

#[test]
fn corpus_files_are_detected() {
    let Some(dir) = corpus() else { return };
    let etcd = read_path(&dir.join("etcd/etcd_000.log"), None).unwrap();
    assert_eq!(etcd.format, Format::EtcdLog);
    let empty = read_path(&dir.join("etcd/etcd_095.log"), None).unwrap();
    assert!(empty.history.is_empty());
    let kv = read_path(&dir.join("kv/c01-ok.txt"), None).unwrap();
    assert_eq!(kv.format, Format::KvLog);
}

#[test]
fn edn_after_comment_lines_is_detected_and_text_without_ops_is_refused() {
    use sunder_checker::format::{Format, detect, read_str};
    let src = ";; comment\n\n; another\n{:type :invoke, :process 0, :f :read, :value nil}\n";
    assert_eq!(detect(src), Some(Format::Edn));
    let r = read_str(src, std::path::Path::new("h"), None).unwrap();
    assert_eq!(r.history.len(), 1);
    let err = read_str("INFO  hello\n", std::path::Path::new("x.log"), None).unwrap_err();
    assert!(
        err.to_string().contains("no line holds an operation"),
        "{err}"
    );
}

#[test]
fn nesting_past_the_limit_is_refused_without_recursing() {
    use sunder_checker::format::edn::{MAX_NESTING, check_nesting};
    let p = std::path::Path::new("h.edn");
    let ok = format!("{}{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
    assert!(check_nesting(&ok, p).is_ok());
    // Brackets in strings, comments and character literals are data.
    let data = format!("\"{}\" ;{}\n\\[ \\[", "[".repeat(1000), "(".repeat(1000));
    assert!(check_nesting(&data, p).is_ok());
    let deep = format!("\n{}", "[".repeat(100_000));
    let err = check_nesting(&deep, p).unwrap_err().to_string();
    assert!(
        err.starts_with("h.edn:2: collections nested more than"),
        "{err}"
    );
}
