//! A target spec's `[[files]]`: config files rendered into each node's data directory
//! before it starts. Shown end to end with a real 3-node Raft cluster whose peers and
//! addresses come only from a rendered file, run under kills.

mod support;

use std::path::Path;
use support::{Guard, sunder_path, sunder_test};

fn spec(exe: &Path) -> String {
    format!(
        r#"
name = "raft-from-files"
[ports]
client = 7000
peer = 7001

[node]
program = "/bin/sh"
# Everything the node needs but its data directory comes from the files below.
args = ["-c", '. {{data_dir}}/node.env && exec "$SUNDER" node raft --id "$ID" --client "$CLIENT" --peer-listen "$LISTEN" --data {{data_dir}}/state $(grep -v "^$ID=" {{data_dir}}/conf/peers | sed "s/^/--peer /")']
env = {{ SUNDER = "{exe}" }}

[[files]]
path = "node.env"
text = """
ID={{id}}
CLIENT={{ip}}:{{client_port}}
LISTEN={{ip}}:{{peer_port}}
"""

[[files]]
path = "conf/peers"
text = "{{members}}\n"
member = "{{id}}={{ip}}:{{peer_port}}"
separator = "\n"

[ready]
tcp = true
timeout = "20s"

[requires]
net = ["proxy"]
"#,
        exe = exe.display()
    )
}

#[test]
fn nodes_configured_only_by_rendered_files_form_a_valid_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let _guard = Guard::new(dir.path());
    let spec_path = dir.path().join("raft.toml");
    std::fs::write(&spec_path, spec(sunder_path())).unwrap();
    let r = sunder_test(
        dir.path(),
        "files",
        &[
            "--target-spec",
            spec_path.to_str().unwrap(),
            "--nodes",
            "3",
            "--nemesis",
            "kill",
            "--fault-lengths",
            "fixed",
            "--nemesis-interval",
            "3s",
            "--time-limit",
            "8s",
            "--seed",
            "3",
        ],
    );
    assert_eq!(r.code, Some(0), "not valid:\n{}", r.output);
    let run = dir.path().join("files/latest");
    let env = std::fs::read_to_string(run.join("nodes/n2/node.env")).unwrap();
    assert!(env.starts_with("ID=n2\nCLIENT=127.0.0.1:"), "{env}");
    let peers = std::fs::read_to_string(run.join("nodes/n3/conf/peers")).unwrap();
    let ids: Vec<&str> = peers
        .lines()
        .map(|l| l.split('=').next().unwrap())
        .collect();
    assert_eq!(ids, ["n1", "n2", "n3"], "{peers}");
    assert!(
        r.checker("linearizability") == Some("valid"),
        "{}",
        r.output
    );
}

#[test]
fn a_file_path_that_leaves_the_data_directory_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = spec(sunder_path()).replace("path = \"node.env\"", "path = \"../escape\"");
    let spec_path = dir.path().join("bad.toml");
    std::fs::write(&spec_path, text).unwrap();
    let out = support::sunder()
        .args([
            "test",
            "--target-spec",
            spec_path.to_str().unwrap(),
            "--dry-run",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("files.path") && err.contains("../escape"),
        "{err}"
    );
    assert!(err.contains("bad.toml:"), "{err}");
}
