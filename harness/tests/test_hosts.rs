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
    // No hosts needed: a host that refuses the connection fails the run (exit 3) before
    // anything starts, and nothing is run on this machine instead.
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

    // Port 1 of this machine refuses at once: no host, no node.
    let refused = [
        "--host",
        "n1=root@127.0.0.1:1",
        "--host",
        "n2=root@127.0.0.1:1",
    ];
    let (code, _, err) = run(&refused);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("connecting to the hosts"), "{err}");
    let doc = results_json(&results);
    assert!(
        doc["harness_error"]
            .as_str()
            .unwrap()
            .contains("connecting to the hosts"),
        "{doc}"
    );
    assert!(doc["verdict"].is_null(), "{doc}");
}

/// The one run directory under `results` (a sweep-less run: `<results>/<name>/<stamp>/`).
fn run_dir(results: &Path) -> std::path::PathBuf {
    let name = std::fs::read_dir(results)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.is_dir() && !p.is_symlink())
        .expect("a test directory");
    std::fs::read_dir(&name)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.is_dir() && !p.is_symlink())
        .expect("a run directory")
}

fn results_json(results: &Path) -> serde_json::Value {
    let p = run_dir(results).join("results.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// Nothing of any run is left on any host: no process but sshd, no nftables table of
/// sunder's, nothing under the remote base directory.
fn assert_nothing_left(t: &TestHosts) {
    for id in &t.names {
        let procs = t.foreign_processes(id);
        assert!(procs.is_empty(), "{id}: processes left: {procs:?}");
        let tables = t.tables(id);
        assert!(!tables.contains("sunder-"), "{id}: tables left: {tables}");
        let ls = t.connect(id).run(&["ls", "-A", "--", &t.base]).unwrap();
        assert_eq!(
            ls.stdout_text().trim(),
            "",
            "{id}: files left under {}",
            t.base
        );
    }
}

/// `sunder test` over SSH with these extra flags, from the hub: (exit code, stderr, results
/// directory).
fn remote_test(t: &TestHosts, dir: &Path, extra: &[&str]) -> (i32, String, std::path::PathBuf) {
    let file = dir.join("hosts.toml");
    hosts_file(t, &file);
    let results = dir.join("results");
    let nodes = t.names.len().to_string();
    let mut args = vec![
        "test",
        "--hosts",
        file.to_str().unwrap(),
        "--remote-base",
        &t.base,
        "--nodes",
        &nodes,
        "--results",
        results.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, _, err) = sunder_in_hub(t, &args);
    (code, err, results)
}

/// A run that must be valid, with every fault in force on the hosts it aimed at: its
/// directory, its results.json and its nemesis events (each checked to carry no error).
/// Also checks that the clients got real work through.
fn valid_run(
    code: i32,
    err: &str,
    results: &Path,
) -> (
    std::path::PathBuf,
    serde_json::Value,
    Vec<serde_json::Value>,
) {
    assert_eq!(code, 0, "{err}");
    let run = run_dir(results);
    let doc = results_json(results);
    assert_eq!(doc["verdict"], "valid", "{doc}");
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .collect();
    let oks = events.iter().filter(|e| e["type"] == "ok").count();
    assert!(oks > 50, "only {oks} operations succeeded: {err}");
    let nemesis: Vec<serde_json::Value> = events
        .into_iter()
        .filter(|e| e["process"] == "nemesis")
        .collect();
    let failed: Vec<_> = nemesis.iter().filter(|e| !e["error"].is_null()).collect();
    assert!(
        failed.is_empty(),
        "faults that failed on the hosts: {failed:?}"
    );
    (run, doc, nemesis)
}

#[test]
fn raft_over_ssh_under_partitions_kills_and_clock_faults_is_valid_and_leaves_nothing_behind() {
    let faketime = sunder_nemesis::clock::find_libfaketime()
        .is_none()
        .then(|| {
            "raft over ssh with clock faults: libfaketime is missing (apt-get install faketime)"
                .to_string()
        });
    if !sunder_test_support::met(faketime) {
        return;
    }
    let Some(t) = TestHosts::new(3) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (code, err, results) = remote_test(
        &t,
        dir.path(),
        &[
            "--target",
            "raft",
            "--time-limit",
            "20s",
            "--nemesis",
            "partition,kill,clock",
            "--nemesis-interval",
            "2s",
            "--fault-lengths",
            "fixed",
            "--seed",
            "3",
        ],
    );
    let (run, doc, nemesis) = valid_run(code, &err, &results);
    for f in ["partition", "kill", "restart", "heal", "clock-reset"] {
        assert!(nemesis.iter().any(|e| e["f"] == f), "no {f} in {nemesis:?}");
    }
    assert!(
        nemesis
            .iter()
            .any(|e| e["f"] == "clock-bump" || e["f"] == "clock-strobe"),
        "no clock fault in {nemesis:?}"
    );
    // The nodes' files came home; the dumps were taken; every remote command is logged.
    for id in &t.names {
        let nodes = run.join("nodes");
        assert!(nodes.join(id).is_dir(), "{id}'s data directory");
        assert!(nodes.join(format!("{id}.log")).is_file(), "{id}'s log");
        let events = std::fs::read_to_string(nodes.join(format!("{id}.events.jsonl"))).unwrap();
        assert!(
            events.contains("\"commit\""),
            "{id} committed nothing: {events:.300}"
        );
        assert!(doc["nodes"][id]["dump"].is_string(), "{doc}");
    }
    assert!(doc["nodes"]["n1"]["starts"].as_u64().unwrap() >= 1, "{doc}");
    let log = std::fs::read_to_string(run.join("remote.log")).unwrap();
    assert!(log.contains("nft") && log.contains("KILL"), "{log:.500}");
    assert_nothing_left(&t);
}

#[test]
fn an_interrupted_run_over_ssh_leaves_nothing_on_any_host() {
    let Some(t) = TestHosts::new(3) else { return };
    // During the setup (connecting, uploading) and in the middle of the run, under faults.
    for after_ms in [400, 6000] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hosts.toml");
        hosts_file(&t, &file);
        let results = dir.path().join("results");
        let mut guard = support::Guard::new(&results);
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", &t.net.names().hub()])
            .arg(support::sunder_path())
            .args([
                "test",
                "--hosts",
                file.to_str().unwrap(),
                "--remote-base",
                &t.base,
            ])
            .args([
                "--nodes",
                "3",
                "--time-limit",
                "60s",
                "--nemesis",
                "partition,kill",
            ])
            .args([
                "--nemesis-interval",
                "1s",
                "--results",
                results.to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        guard.child = Some(child);
        std::thread::sleep(std::time::Duration::from_millis(after_ms));
        // `ip netns exec` execs the controller: the child's pid is sunder's.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let out = guard.child.take().unwrap().wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(130),
            "interrupted after {after_ms} ms: {err}"
        );
        assert_nothing_left(&t);
    }
}

#[test]
fn etcd_over_ssh_under_partitions_and_kills_is_valid_and_leaves_nothing_behind() {
    // A spec target: the spec's command and ports on each host, its ready check and its
    // adapter from the controller, the etcd the host has (here the machine's own).
    if !support::netns_system_usable("etcd over ssh", &[("/usr/bin/etcd", "etcd-server")]) {
        return;
    }
    let Some(t) = TestHosts::new(3) else { return };
    let dir = tempfile::tempdir().unwrap();
    let spec = support::shipped_spec("etcd.toml");
    let (code, err, results) = remote_test(
        &t,
        dir.path(),
        &[
            "--target-spec",
            spec.to_str().unwrap(),
            "--time-limit",
            "20s",
            "--nemesis",
            "partition,kill",
            "--nemesis-interval",
            "3s",
            "--fault-lengths",
            "fixed",
            "--seed",
            "2",
        ],
    );
    let (run, _, faults) = valid_run(code, &err, &results);
    for f in ["partition", "kill"] {
        assert!(faults.iter().any(|e| e["f"] == f), "no {f} in {faults:?}");
    }
    for id in &t.names {
        // etcd's own data directory (its WAL) came home.
        assert!(run.join("nodes").join(id).join("member").is_dir(), "{id}");
    }
    assert_nothing_left(&t);
}

#[test]
fn pbft_over_ssh_carries_the_run_keys_to_the_hosts_and_is_valid() {
    let Some(t) = TestHosts::new(4) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (code, err, results) = remote_test(
        &t,
        dir.path(),
        &[
            "--target",
            "pbft",
            "--time-limit",
            "15s",
            "--nemesis",
            "partition,kill",
            "--fault-lengths",
            "fixed",
            "--nemesis-interval",
            "4s",
            "--seed",
            "3",
        ],
    );
    let (run, _, faults) = valid_run(code, &err, &results);
    assert!(faults.iter().any(|e| e["f"] == "kill"), "{faults:?}");
    use std::os::unix::fs::PermissionsExt;
    for id in &t.names {
        // The replica's secret key went to its host (0600) and came back with its files.
        let secret = run.join("nodes").join(id).join("secret.key");
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", secret.display());
    }
    assert_nothing_left(&t);
}

#[test]
fn a_node_that_will_not_start_over_ssh_is_reported_with_its_log_and_removed() {
    let Some(t) = TestHosts::new(2) else { return };
    let dir = tempfile::tempdir().unwrap();
    // Its config file is rendered on the host; the node prints it and exits.
    let spec = dir.path().join("broken.toml");
    std::fs::write(
        &spec,
        r#"
name = "broken"
[ports]
client = 7000
peer = 7001
[node]
program = "/bin/sh"
args = ["-c", "cat {data_dir}/boot.conf >&2; exit 3"]
[[files]]
path = "boot.conf"
text = "node {id} at {ip} refuses to boot"
[ready]
tcp = true
timeout = "10s"
[requires]
net = ["netns"]
"#,
    )
    .unwrap();
    let (code, err, results) = remote_test(
        &t,
        dir.path(),
        &["--target-spec", spec.to_str().unwrap(), "--nemesis", "kill"],
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("exited during start-up"), "{err}");
    assert!(
        err.contains("refuses to boot"),
        "the node's log is quoted: {err}"
    );
    let doc = results_json(&results);
    assert!(
        doc["harness_error"]
            .as_str()
            .is_some_and(|e| e.contains("refuses to boot")),
        "{doc}"
    );
    assert_nothing_left(&t);
}
