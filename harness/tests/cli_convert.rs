//! `sunder convert` on the real binary: JSON lines ⇄ EDN, Porcupine logs to JSON lines,
//! and unreadable input.

mod support;

use assert_cmd::Command;

const JSONL: &str = "{\"index\":0,\"time\":100,\"type\":\"invoke\",\"process\":3,\"f\":\"cas\",\"key\":\"k1\",\"value\":[1,2]}\n\
{\"index\":1,\"time\":250,\"type\":\"info\",\"process\":\"nemesis\",\"f\":\"partition\",\"value\":{\"n1\":[\"n3\"]}}\n\
{\"index\":2,\"time\":300,\"type\":\"fail\",\"process\":3,\"f\":\"cas\",\"key\":\"k1\",\"value\":[1,2],\"error\":\"cas-mismatch\"}\n";

fn sunder() -> Command {
    Command::from_std(support::sunder())
}

#[test]
fn jsonl_to_edn_and_back_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("h.jsonl");
    std::fs::write(&src, JSONL).unwrap();
    let edn = dir.path().join("h.edn");
    sunder()
        .args(["convert", "--to", "edn"])
        .arg(&src)
        .arg("-o")
        .arg(&edn)
        .assert()
        .code(0);
    let edn_text = std::fs::read_to_string(&edn).unwrap();
    assert!(
        edn_text.starts_with("{:index 0, :time 100, :type :invoke, :process 3, :f :cas"),
        "{edn_text}"
    );
    assert!(edn_text.contains(":process :nemesis"), "{edn_text}");
    // Back to JSON lines on stdout.
    let out = sunder()
        .args(["convert", "--to", "jsonl"])
        .arg(&edn)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert_eq!(String::from_utf8(out).unwrap(), JSONL);
}

#[test]
fn porcupine_log_to_jsonl() {
    let Some(dir) = sunder_test_support::shared_data_or_skip("porcupine/etcd") else {
        return;
    };
    let out = sunder()
        .args(["convert", "--to", "jsonl"])
        .arg(dir.join("etcd_000.log"))
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.lines().count() > 100, "{text}");
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["f"].is_string() && v["type"].is_string(), "{line}");
    }
}

#[test]
fn unreadable_input_exits_3_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("h.edn");
    std::fs::write(
        &src,
        "{:type :ok, :f :read, :process 0, :value 1}\n{:type :ok, :f :read\n",
    )
    .unwrap();
    sunder()
        .args(["convert", "--to", "jsonl"])
        .arg(&src)
        .assert()
        .code(3)
        .stderr(predicates::str::contains(format!("{}:2:", src.display())));
}
