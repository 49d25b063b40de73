//! sunder-remote against real sshd: each test makes its hosts (network namespaces with an
//! sshd each, see `sunder_remote::testhosts`), talks to them over real SSH, and removes them on drop.

use std::collections::BTreeMap;
use std::sync::Arc;
use sunder_nemesis::{ClockFault, Clocks, Grudge, Loss, Network, NodeId, Processes};
use sunder_remote::testhosts::{TestHosts, keygen};
use sunder_remote::{
    Host, Launch, NetNode, RemoteClocks, RemoteError, RemoteNet, RemoteProcesses, RunId, RunLayout,
    Scope, Signal, clean,
};

fn ids(v: &[&str]) -> Vec<NodeId> {
    v.iter().map(|s| s.to_string()).collect()
}

fn layout(t: &TestHosts, run: &str) -> RunLayout {
    RunLayout::new(&t.base, RunId::new(run).unwrap()).unwrap()
}

/// Polls the remote process until `want` holds (bounded: a process that never gets there
/// fails the test with its last state, never hangs it).
fn wait_state(host: &Host, pid: u32, want: impl Fn(Option<char>) -> bool) -> Option<char> {
    let mut last = None;
    for _ in 0..500 {
        last = host
            .process(pid)
            .unwrap()
            .filter(|p| p.is_alive())
            .map(|p| p.state);
        if want(last) {
            return last;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("pid {pid} never reached the wanted state (last {last:?})");
}

/// This process's private control-socket directories in the temporary directory.
fn private_socket_dirs() -> Vec<String> {
    let mine = format!("sunder-ssh-{}-", std::process::id());
    let mut v: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&mine))
        .collect();
    v.sort();
    v
}

#[test]
fn a_command_runs_unquoted_words_intact_and_is_logged_with_status_and_stderr() {
    let Some(t) = TestHosts::new(1) else { return };
    let h = t.connect("n1");
    // The remote login shell parses the line: words with quotes, $, ; must arrive intact.
    let word = "it's $HOME; `id` \"x\"";
    let out = h.run(&["printf", "%s", word]).unwrap();
    assert_eq!(out.stdout_text(), word);
    let err = h
        .run(&["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"])
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RemoteError::Command { .. }), "{text}");
    assert!(
        text.contains("n1") && text.contains("exit 3") && text.contains("to-stderr"),
        "{text}"
    );
    assert_eq!(h.exec(&["false"]).unwrap().status.code(), Some(1));

    // A command that hangs is cut off at the host's command timeout, and says so.
    let mut quick = t.spec("n1");
    quick.command_timeout_secs = 1;
    let impatient = Host::connect(quick, t.dir.path(), t.log.clone()).unwrap();
    let err = impatient.run(&["sleep", "600"]).unwrap_err();
    assert!(matches!(err, RemoteError::Timeout { secs: 1, .. }), "{err}");
    assert!(err.to_string().contains("n1"), "{err}");
    drop(impatient);

    // A master that ended (idle past ControlPersist, or closed) is started again.
    h.session().close();
    assert_eq!(h.run(&["echo", "again"]).unwrap().stdout_text(), "again\n");

    // A run directory too deep for a unix socket path: the socket goes to a private
    // directory, removed with the connection.
    let deep = t.dir.path().join("d".repeat(60)).join("e".repeat(60));
    std::fs::create_dir_all(&deep).unwrap();
    let before = private_socket_dirs();
    let far = Host::connect(t.spec("n1"), &deep, t.log.clone()).unwrap();
    assert!(far.run(&["true"]).is_ok());
    assert_eq!(private_socket_dirs().len(), before.len() + 1);
    drop(far);
    assert_eq!(private_socket_dirs(), before);

    let log = std::fs::read_to_string(t.log.path()).unwrap();
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let failed = entries
        .iter()
        .find(|e| e["argv"][2] == "echo to-stdout; echo to-stderr >&2; exit 3")
        .unwrap_or_else(|| panic!("the failing command is not in the log:\n{log}"));
    assert_eq!(failed["host"], "n1");
    assert_eq!(failed["status"], "exit 3");
    assert_eq!(failed["stderr"], "to-stderr\n");
    assert!(
        entries
            .iter()
            .any(|e| e["argv"][0] == "printf" && e["status"] == "exit 0")
    );
}

#[test]
fn a_changed_or_unknown_host_key_is_refused_naming_the_host() {
    let Some(t) = TestHosts::new(1) else { return };
    // Control: the right known_hosts connects.
    drop(t.connect("n1"));

    let other = keygen(&t.dir.path().join("impostor"));
    let mut f = other.split_whitespace();
    let wrong = t.dir.path().join("known_hosts.wrong");
    std::fs::write(
        &wrong,
        format!(
            "{} {} {}\n",
            t.addr("n1"),
            f.next().unwrap(),
            f.next().unwrap()
        ),
    )
    .unwrap();
    let empty = t.dir.path().join("known_hosts.empty");
    std::fs::write(&empty, "").unwrap();
    for (kh, why) in [(wrong, "changed key"), (empty, "unknown host")] {
        let mut spec = t.spec("n1");
        spec.known_hosts = Some(kh.clone());
        let err = Host::connect(spec, t.dir.path(), t.log.clone()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, RemoteError::HostKey { .. }), "{why}: {text}");
        assert!(
            text.contains("n1") && text.contains(&t.addr("n1").to_string()),
            "{text}"
        );
        assert!(text.contains(kh.to_str().unwrap()), "{text}");
    }
}

#[test]
fn an_uploaded_program_starts_detached_pauses_resumes_dies_and_restarts_by_pid() {
    let Some(t) = TestHosts::new(1) else { return };
    let h = t.connect("n1");
    let l = layout(&t, "procs");
    let local = t.dir.path().join("node.sh");
    // A group of two (the shell and its sleep), so that the whole group has to go.
    std::fs::write(
        &local,
        "#!/bin/sh\necho \"started in $(pwd) as $SUNDER_RUN_ID with $GREETING\"\nsleep 1000 &\nwait\n",
    )
    .unwrap();
    let remote = format!("{}/bin/node.sh", l.dir());
    h.upload(&local, &remote, 0o750).unwrap();
    let mode = h.run(&["stat", "-c", "%a", &remote]).unwrap().stdout_text();
    assert_eq!(mode.trim(), "750");

    let mut procs = RemoteProcesses::new(l.clone());
    let pid = procs
        .start(
            "n1",
            h.clone(),
            Launch::in_run(&l, "n1", vec![remote.clone()]).env("GREETING", "a b'c $HOME"),
        )
        .unwrap();
    let stat = h.process(pid).unwrap().expect("started");
    assert_eq!(stat.pgrp, pid, "a process group of its own");
    let members = || h.group(pid).unwrap().len();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while members() < 2 && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(members(), 2, "the node script and its sleep");
    let pid_file = h.run(&["cat", &l.pid_file("n1")]).unwrap().stdout_text();
    assert_eq!(pid_file.trim(), pid.to_string());

    let o = procs.pause(&ids(&["n1"])).unwrap();
    assert!(o.is_complete(), "{o:?}");
    assert_eq!(wait_state(&h, pid, |s| s == Some('T')), Some('T'));
    assert!(h.group(pid).unwrap().iter().all(|p| p.is_stopped()));
    let o = procs.resume(&ids(&["n1"])).unwrap();
    assert!(o.is_complete(), "{o:?}");
    wait_state(&h, pid, |s| s.is_some_and(|c| c != 'T'));

    let o = procs.kill(&ids(&["n1"])).unwrap();
    assert!(o.is_complete(), "{o:?}");
    assert!(
        h.group(pid).unwrap().is_empty(),
        "no member of the group lives"
    );
    assert_eq!(procs.pid("n1"), None);
    // A pause of a killed node fails on it, saying so.
    let o = procs.pause(&ids(&["n1"])).unwrap();
    assert!(o.failed["n1"].contains("not running"), "{o:?}");

    let o = procs.restart(&ids(&["n1"])).unwrap();
    assert!(o.is_complete(), "{o:?}");
    let again = procs.pid("n1").unwrap();
    assert_ne!(again, pid);
    assert!(h.process(again).unwrap().is_some_and(|p| p.is_alive()));
    assert!(procs.stop_all().is_complete());
    assert!(h.group(again).unwrap().is_empty());

    // The log came back with the download: both starts, in the run's directory, marked.
    let local_dir = t.dir.path().join("downloaded");
    h.download(&l.dir(), &local_dir, 1 << 20).unwrap();
    let log = std::fs::read_to_string(local_dir.join("procs/n1.log")).unwrap();
    let want = format!("started in {} as procs with a b'c $HOME", l.work_dir("n1"));
    assert_eq!(log.lines().filter(|x| *x == want).count(), 2, "{log}");
    assert_eq!(
        std::fs::read(local_dir.join("procs/bin/node.sh")).unwrap(),
        std::fs::read(&local).unwrap()
    );
    // What a host sends back is bounded.
    let err = h
        .download(&l.dir(), &t.dir.path().join("small"), 100)
        .unwrap_err();
    assert!(matches!(err, RemoteError::TooLarge { .. }), "{err}");

    h.remove_run_dir(&l).unwrap();
    assert!(!h.exists(&l.dir()).unwrap());
    // A signal to a group that does not exist is an error, not silence. (Not `again`'s: a
    // killed group may linger as zombies until the host's pid 1 reaps them, and a signal
    // to zombies succeeds.)
    let taken: Vec<u32> = h.processes().unwrap().iter().map(|p| p.pgrp).collect();
    let none = (2..4_000_000u32)
        .rev()
        .find(|g| !taken.contains(g))
        .unwrap();
    assert!(h.signal_group(none, Signal::Cont).is_err());
}

fn net_nodes(t: &TestHosts, hosts: &BTreeMap<String, Arc<Host>>) -> BTreeMap<NodeId, NetNode> {
    hosts
        .iter()
        .map(|(id, h)| {
            (
                id.clone(),
                NetNode {
                    host: h.clone(),
                    addr: t.addr(id),
                },
            )
        })
        .collect()
}

#[test]
fn a_partition_cuts_real_packets_between_hosts_and_heal_restores_them() {
    let Some(t) = TestHosts::new(2) else { return };
    let hosts: BTreeMap<String, Arc<Host>> = t
        .names
        .iter()
        .map(|id| (id.clone(), t.connect(id)))
        .collect();
    let l = layout(&t, "part");
    let mut net = RemoteNet::setup(&l, net_nodes(&t, &hosts)).unwrap();
    assert!(t.connects("n1", "n2") && t.connects("n2", "n1"));

    let g = Grudge::complete(&ids(&["n1", "n2"]), &[ids(&["n1"]), ids(&["n2"])]);
    let o = net.partition(&g).unwrap();
    assert_eq!(o.reached, ids(&["n1", "n2"]));
    assert!(t.cut("n1", "n2") && t.cut("n2", "n1"));
    assert!(
        net.ruleset("n2")
            .unwrap()
            .contains(&format!("ip saddr {} drop", t.addr("n1")))
    );
    // The controller still reaches both hosts: only peers are dropped.
    assert!(hosts["n1"].run(&["true"]).is_ok());

    let o = net.heal(&ids(&["n1", "n2"])).unwrap();
    assert!(o.is_complete(), "{o:?}");
    assert!(t.connects("n1", "n2") && t.connects("n2", "n1"));

    // Loss of everything peers send n2: a connection from n1 cannot open.
    let o = net
        .loss(&Loss {
            nodes: ids(&["n2"]),
            percent: 100,
        })
        .unwrap();
    assert!(o.is_complete(), "{o:?}");
    assert!(t.cut("n1", "n2"));
    assert!(net.loss_stop(&ids(&["n2"])).unwrap().is_complete());
    assert!(t.connects("n1", "n2"));

    // A name that is no node is refused whole, before any host is touched.
    let mut bad = Grudge::default();
    bad.cut("n9", "n1");
    assert!(net.partition(&bad).is_err());

    // A host where the rule cannot go in fails alone; the other is reached.
    hosts["n2"]
        .run(&["nft", "delete", "table", "inet", &l.table()])
        .unwrap();
    let o = net.partition(&g).unwrap();
    assert_eq!(o.reached, ids(&["n1"]));
    assert!(o.failed["n2"].contains("n2"), "{o:?}");
    assert!(t.cut("n2", "n1"));
    assert!(net.heal(&ids(&["n1"])).unwrap().is_complete());

    assert!(t.tables("n1").contains(l.table().as_str()));
    // Idempotent: the table already gone on n2 is no error.
    net.teardown().unwrap();
    for id in &t.names {
        assert!(
            !t.tables(id).contains(l.table().as_str()),
            "{}",
            t.tables(id)
        );
    }
}

#[test]
fn clock_offsets_reach_a_faketime_process_on_the_host() {
    let Some(lib) = sunder_nemesis::clock::find_libfaketime() else {
        sunder_test_support::skip_or_fail("libfaketime is missing (Debian package faketime)");
        return;
    };
    let Some(t) = TestHosts::new(1) else { return };
    let h = t.connect("n1");
    let l = layout(&t, "clock");
    let mut clocks = RemoteClocks::new(l.clone(), [("n1".to_string(), h.clone())].into());
    clocks.init().unwrap();
    let file = clocks.file("n1").unwrap().to_string();
    let faked_now = || -> i64 {
        let env = sunder_nemesis::clock::faketime_env(&lib, std::path::Path::new(&file), false);
        let mut argv: Vec<String> = vec!["env".into()];
        argv.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        argv.extend(["date".into(), "+%s".into()]);
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        h.run(&refs).unwrap().stdout_text().trim().parse().unwrap()
    };
    let real_now = || -> i64 {
        h.run(&["date", "+%s"])
            .unwrap()
            .stdout_text()
            .trim()
            .parse()
            .unwrap()
    };
    let day: i64 = 86_400;
    let o = clocks
        .apply(&ClockFault::Bump([("n1".to_string(), -day * 1000)].into()))
        .unwrap();
    assert!(o.is_complete(), "{o:?}");
    assert_eq!(h.run(&["cat", &file]).unwrap().stdout_text(), "-86400\n");
    // A day back, give or take the seconds between the two reads.
    let skew = real_now() - faked_now();
    assert!((day - 60..=day + 60).contains(&skew), "skew {skew}");

    let o = clocks
        .apply(&ClockFault::Strobe {
            offsets: [("n1".to_string(), [0, 5_000])].into(),
            period_ms: 5,
            duration_ms: 600_000,
        })
        .unwrap();
    assert!(o.is_complete(), "{o:?}");
    let strobe_pid: u32 = h
        .run(&["cat", &l.pid_file("clock-n1")])
        .unwrap()
        .stdout_text()
        .trim()
        .parse()
        .unwrap();
    assert!(
        !h.group(strobe_pid).unwrap().is_empty(),
        "the strobe loop runs on the host"
    );
    let o = clocks.reset(&ids(&["n1"])).unwrap();
    assert!(o.is_complete(), "{o:?}");
    assert!(
        h.group(strobe_pid).unwrap().is_empty(),
        "reset stops the strobe"
    );
    assert_eq!(h.run(&["cat", &file]).unwrap().stdout_text(), "+0\n");
    assert!((real_now() - faked_now()).abs() <= 60);
    h.remove_run_dir(&l).unwrap();
}

#[test]
fn clean_after_a_killed_controller_leaves_no_process_table_or_directory_on_any_host() {
    let Some(t) = TestHosts::new(2) else { return };
    let l = layout(&t, "killed");
    let other = layout(&t, "other-run");
    {
        // The controller that gets killed: nodes started, tables made, a clock file.
        let hosts: BTreeMap<String, Arc<Host>> = t
            .names
            .iter()
            .map(|id| (id.clone(), t.connect(id)))
            .collect();
        let mut procs = RemoteProcesses::new(l.clone());
        for (id, h) in &hosts {
            let argv = vec!["sh".into(), "-c".into(), "sleep 1000 & sleep 1000".into()];
            procs
                .start(id, h.clone(), Launch::in_run(&l, id, argv))
                .unwrap();
        }
        let net = RemoteNet::setup(&l, net_nodes(&t, &hosts)).unwrap();
        let g = Grudge::complete(&ids(&["n1", "n2"]), &[ids(&["n1"]), ids(&["n2"])]);
        assert!(net.apply_partition(&g).unwrap().is_complete());
        RemoteClocks::new(l.clone(), hosts.clone()).init().unwrap();
        // Another run on n1 that a clean of this run must leave alone.
        let mut theirs = RemoteProcesses::new(other.clone());
        let argv = vec!["sleep".to_string(), "1000".into()];
        theirs
            .start(
                "n1",
                hosts["n1"].clone(),
                Launch::in_run(&other, "n1", argv),
            )
            .unwrap();
        // Killed: no teardown, no kill, nothing removed.
        std::mem::forget(net);
        std::mem::forget(procs);
        std::mem::forget(theirs);
    }
    for id in &t.names {
        assert!(!t.foreign_processes(id).is_empty());
        assert!(t.tables(id).contains(l.table().as_str()));
    }
    assert!(t.cut("n1", "n2"), "the partition outlived its controller");

    let hosts: Vec<Arc<Host>> = t.names.iter().map(|id| t.connect(id)).collect();
    let report = clean(&hosts, &t.base, &Scope::Run(l.run().clone())).unwrap();
    for r in &report {
        assert!(r.is_complete(), "{r:?}");
        assert_eq!(r.killed.len(), 1, "{r:?}");
        assert_eq!(r.tables, [l.table()], "{r:?}");
        assert_eq!(r.dirs, [l.dir()], "{r:?}");
    }
    for (id, h) in t.names.iter().zip(&hosts) {
        assert!(!t.tables(id).contains(l.table().as_str()));
        assert!(!h.exists(&l.dir()).unwrap());
    }
    assert!(t.connects("n1", "n2"));
    assert!(
        t.foreign_processes("n2").is_empty(),
        "{:?}",
        t.foreign_processes("n2")
    );
    let left = t.foreign_processes("n1");
    assert_eq!(left.len(), 1, "only the other run's node: {left:?}");
    assert!(hosts[0].exists(&other.dir()).unwrap());

    // Everything of sunder's, the other run included.
    let report = clean(&hosts, &t.base, &Scope::All).unwrap();
    assert!(report.iter().all(|r| r.is_complete()), "{report:?}");
    assert_eq!(report[0].killed.len(), 1);
    for id in &t.names {
        assert!(
            t.foreign_processes(id).is_empty(),
            "{:?}",
            t.foreign_processes(id)
        );
    }
    assert!(!hosts[0].exists(&other.dir()).unwrap());
}
