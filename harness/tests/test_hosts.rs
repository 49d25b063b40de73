//! Remote hosts end to end, over real SSH: each host a network namespace running its own
//! `sshd` (the fixture `sunder_remote::testhosts`, shared, not copied), the `sunder` binary
//! run as the user runs it, from the namespace that can reach the hosts.
//!
//! Needs root, `ip`, `nft`, `unshare`, `ssh`, `ssh-keygen` and `/usr/sbin/sshd` (Debian
//! `openssh-server`); elsewhere each test prints why it skips (and fails under `CI`).

mod support;

use std::path::Path;
use std::sync::Arc;
use sunder_remote::testhosts::TestHosts;
use sunder_remote::{Host, Launch, RemoteProcesses, RunId, RunLayout};

/// A hosts.toml for the test hosts: root with the test's key and known_hosts, and none of
/// the machine's ssh configuration.
fn hosts_file(t: &TestHosts, path: &Path) {
    let mut text = String::new();
    for id in &t.names {
        text.push_str(&format!(
            "[{id}]\naddress = \"{}\"\nuser = \"root\"\nidentity = \"{}\"\n\
             known_hosts = \"{}\"\nssh_config = \"/dev/null\"\n",
            t.addr(id),
            t.user_key.display(),
            t.known_hosts.display()
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// `sunder ARGS` from the namespace that reaches the hosts: (exit code, stdout, stderr).
fn sunder_in_hub(t: &TestHosts, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &t.net.names().hub()])
        .arg(support::sunder_path())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn clean_hosts_removes_what_a_killed_controller_left_on_every_host() {
    let Some(t) = TestHosts::new(2) else { return };
    let run = RunLayout::new(&t.base, RunId::new("killed").unwrap()).unwrap();
    let other = RunLayout::new(&t.base, RunId::new("other").unwrap()).unwrap();
    {
        // The controller that gets killed: a node on each host and a table of its run;
        // and one node of another run on n1, which a clean of this run must leave alone.
        let hosts: Vec<(String, Arc<Host>)> = t
            .names
            .iter()
            .map(|id| (id.clone(), t.connect(id)))
            .collect();
        let mut procs = RemoteProcesses::new(run.clone());
        let mut theirs = RemoteProcesses::new(other.clone());
        for (id, h) in &hosts {
            let argv = vec!["sleep".to_string(), "1000".into()];
            procs
                .start(id, h.clone(), Launch::in_run(&run, id, argv.clone()))
                .unwrap();
            h.nft(&format!("table inet {} {{}}\n", run.table()))
                .unwrap();
            if id == "n1" {
                theirs
                    .start(id, h.clone(), Launch::in_run(&other, id, argv))
                    .unwrap();
            }
        }
        std::mem::forget(procs);
        std::mem::forget(theirs);
    }
    for id in &t.names {
        assert!(t.tables(id).contains(&run.table()));
    }
    assert_eq!(t.foreign_processes("n1").len(), 2);

    let file = t.dir.path().join("hosts.toml");
    hosts_file(&t, &file);
    let f = file.to_str().unwrap();
    let (code, out, err) = sunder_in_hub(
        &t,
        &["clean", "--hosts", f, "--base", &t.base, "--run", "killed"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    for id in &t.names {
        assert!(
            out.contains(&format!(
                "{id}: killed 1 process group(s), removed 1 table(s) and 1 run director(ies)"
            )),
            "{out}"
        );
        assert!(!t.tables(id).contains(&run.table()), "{}", t.tables(id));
    }
    assert!(
        t.foreign_processes("n2").is_empty(),
        "{:?}",
        t.foreign_processes("n2")
    );
    assert_eq!(
        t.foreign_processes("n1").len(),
        1,
        "the other run's node stays"
    );
    let n1 = t.connect("n1");
    assert!(!n1.exists(&run.dir()).unwrap());
    assert!(n1.exists(&other.dir()).unwrap());

    // Without --run: every sunder run on the hosts.
    let (code, out, err) = sunder_in_hub(&t, &["clean", "--hosts", f, "--base", &t.base]);
    assert_eq!(code, 0, "{out}\n{err}");
    for id in &t.names {
        assert!(
            t.foreign_processes(id).is_empty(),
            "{:?}",
            t.foreign_processes(id)
        );
    }
    assert!(!n1.exists(&other.dir()).unwrap());
}

#[test]
fn clean_hosts_refuses_a_bad_hosts_file_before_connecting() {
    // No hosts needed: the file is refused before any ssh runs.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.toml");
    std::fs::write(&file, "[n1]\naddress = \"10.0.0.5\"\nidenity = \"k\"\n").unwrap();
    let out = support::sunder()
        .args(["clean", "--hosts", file.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("idenity"), "{err}");
}

#[test]
fn test_with_hosts_is_checked_shown_by_dry_run_and_never_run_locally() {
    // No hosts needed: nothing connects. Until nodes start over SSH, a run with hosts must
    // be refused (exit 3) rather than quietly run on this machine.
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let base = [
        "test",
        "--nodes",
        "2",
        "--time-limit",
        "1s",
        "--results",
        results.to_str().unwrap(),
    ];
    let run = |extra: &[&str]| {
        let out = support::sunder().args(base).args(extra).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let two = [
        "--host",
        "n1=root@10.0.0.5",
        "--host",
        "n2=root@10.0.0.6:2222",
    ];
    let (code, _, err) = run(&two[..2]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("the run has nodes n1, n2"), "{err}");

    let mut dry = two.to_vec();
    dry.push("--dry-run");
    let (code, out, err) = run(&dry);
    assert_eq!(code, Some(0), "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["config"]["hosts"]["nodes"]["n2"]["port"], 2222);
    assert!(
        doc["replay"]
            .as_str()
            .unwrap()
            .contains("--host n2=root@10.0.0.6:2222"),
        "{}",
        doc["replay"]
    );

    let (code, _, err) = run(&two);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("not available yet"), "{err}");
    assert!(!results.exists(), "no run directory for a refused run");
}
