//! Real `sunder node` processes on loopback: the client protocol, the peer transport,
//! durability across kill -9, and start-up errors, for the `primary` and `lww` targets.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sunder_wire::{EventLine, NodeEvent};

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

struct Node {
    id: String,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

/// A cluster of node processes; dropping it kills every process group, also on panic.
struct Cluster {
    dir: tempfile::TempDir,
    target: &'static str,
    nodes: Vec<Node>,
    extra: Vec<String>,
}

impl Cluster {
    /// Starts `n` nodes on ports the OS handed out. Between the probe that found a port
    /// free and the node's bind, another process may take it (an outgoing connection
    /// from a test running beside this one, seen once in CI): a node that says exactly
    /// that makes a fresh start on new ports, at most three times.
    fn start(target: &'static str, n: usize, extra: &[&str]) -> Cluster {
        for attempt in 1.. {
            let nodes = (1..=n)
                .map(|i| Node {
                    id: format!("n{i}"),
                    client: free_port(),
                    peer: free_port(),
                    child: None,
                })
                .collect();
            let mut c = Cluster {
                dir: tempfile::tempdir().unwrap(),
                target,
                nodes,
                extra: extra.iter().map(|s| s.to_string()).collect(),
            };
            for i in 0..n {
                c.spawn(i);
            }
            let taken = (0..n).find_map(|i| {
                c.ready(i)
                    .err()
                    .filter(|log| log.contains("Address already in use") && attempt < 3)
            });
            match taken {
                Some(log) => eprintln!("a port was taken under our feet, new ports: {log}"),
                None => {
                    for i in 0..n {
                        c.wait_ready(i);
                    }
                    return c;
                }
            }
        }
        unreachable!()
    }

    fn data(&self, i: usize) -> PathBuf {
        self.dir.path().join(&self.nodes[i].id)
    }

    fn log(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.nodes[i].id))
    }

    fn spawn(&mut self, i: usize) {
        let node = &self.nodes[i];
        let mut cmd = support::sunder();
        cmd.args(["node", self.target, "--id", &node.id, "--tick-ms", "10"])
            .arg("--client")
            .arg(format!("127.0.0.1:{}", node.client))
            .arg("--peer-listen")
            .arg(format!("127.0.0.1:{}", node.peer))
            .arg("--data")
            .arg(self.data(i))
            .args(&self.extra);
        for other in self.nodes.iter().filter(|o| o.id != node.id) {
            cmd.arg("--peer")
                .arg(format!("{}=127.0.0.1:{}", other.id, other.peer));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(i))
            .unwrap();
        cmd.stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .process_group(0);
        self.nodes[i].child = Some(cmd.spawn().unwrap());
    }

    fn wait_ready(&self, i: usize) {
        if let Err(log) = self.ready(i) {
            panic!("{} never answered status; log:\n{log}", self.nodes[i].id);
        }
    }

    /// Waits for node `i` to answer `status`; its log when it does not within 20 s.
    fn ready(&self, i: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(r) = try_call(self.nodes[i].client, json!({"id": 1, "op": "status"})) {
                if r["ok"] == true {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(std::fs::read_to_string(self.log(i)).unwrap_or_default())
    }

    fn call(&self, i: usize, req: Value) -> Value {
        try_call(self.nodes[i].client, req.clone())
            .unwrap_or_else(|| panic!("{}: no reply to {req}", self.nodes[i].id))
    }

    /// Calls until `pred` holds (replication and reconnection take a moment).
    fn eventually(&self, i: usize, req: Value, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = try_call(self.nodes[i].client, req.clone()).unwrap_or(Value::Null);
            if pred(&r) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {req} never satisfied; last reply {r}",
                self.nodes[i].id
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&mut self, i: usize, sig: i32) -> std::process::ExitStatus {
        let mut child = self.nodes[i].child.take().expect("node running");
        // SAFETY: kill(2) on a process group this test created.
        unsafe { libc::kill(-(child.id() as i32), sig) };
        child.wait().unwrap()
    }

    /// The node's event stream, read as the type the checker reads it with.
    fn events(&self, i: usize) -> Vec<EventLine> {
        let text = std::fs::read_to_string(self.data(i).join("events.jsonl")).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                // SAFETY: as in `signal`.
                unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
                let _ = c.wait();
            }
        }
    }
}

/// One request on a fresh connection; None if the node cannot be reached or is silent.
fn try_call(port: u16, req: Value) -> Option<Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    writeln!(s, "{req}").ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    serde_json::from_str(&line).ok()
}

fn read(key: &str) -> Value {
    json!({"id": 2, "op": "read", "key": key})
}

#[test]
fn primary_serves_through_any_node_and_survives_kill_9() {
    let mut c = Cluster::start("primary", 3, &[]);
    let ok = |r: Value| assert_eq!(r["ok"], true, "{r}");
    ok(c.call(1, json!({"id": 1, "op": "write", "key": "k", "value": 1})));
    assert_eq!(c.call(2, read("k"))["value"], 1);
    ok(c.call(
        0,
        json!({"id": 3, "op": "cas", "key": "k", "from": 1, "to": 2}),
    ));
    let miss = c.call(
        2,
        json!({"id": 4, "op": "cas", "key": "k", "from": 1, "to": 3}),
    );
    assert_eq!(
        (
            miss["id"].clone(),
            miss["error"].clone(),
            miss["definite"].clone()
        ),
        (json!(4), json!("cas-mismatch"), json!(true))
    );
    ok(c.call(1, json!({"id": 5, "op": "add", "key": "s", "value": 7})));
    ok(c.call(2, json!({"id": 6, "op": "add", "key": "s", "value": 3})));
    assert_eq!(c.call(0, read("s"))["value"], json!([3, 7]));
    assert_eq!(
        c.call(0, json!({"id": 7, "op": "status"}))["value"]["role"],
        "primary"
    );
    let st = c.call(1, json!({"id": 8, "op": "status"}))["value"].clone();
    assert_eq!(
        (st["role"].clone(), st["leader"].clone()),
        (json!("forwarder"), json!("n1"))
    );

    c.signal(0, libc::SIGKILL);
    // With n1 gone a forwarder cannot know whether the op happened: indefinite timeout.
    // (It may still happen: the forwarder's queue keeps it for n1's return. Hence key t.)
    let r = c.call(1, json!({"id": 9, "op": "write", "key": "t", "value": 9}));
    assert_eq!(
        (r["error"].clone(), r.get("definite").cloned()),
        (json!("timeout"), None),
        "{r}"
    );

    c.spawn(0);
    c.wait_ready(0);
    assert_eq!(c.call(0, read("k"))["value"], 2);
    c.eventually(2, read("s"), |r| r["value"] == json!([3, 7]));
    let dump = c.call(0, json!({"id": 10, "op": "dump"}))["value"].clone();
    let ops: Vec<&str> = dump["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["command"]["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops[..4], ["write", "cas", "add", "add"]);
    let late = ops.len() == 5;
    assert!(ops.len() == 4 || ops[4] == "write", "{ops:?}");
    assert_eq!(dump["state"]["k"], 2);
    assert_eq!(dump["state"]["s"], json!([3, 7]));
    assert_eq!(
        dump["state"]["t"],
        if late { json!(9) } else { Value::Null }
    );
    let starts: Vec<(String, u64)> = c
        .events(0)
        .into_iter()
        .filter_map(|e| match e.event {
            NodeEvent::Start { records, .. } => Some((e.node, records)),
            _ => None,
        })
        .collect();
    assert_eq!(starts, [("n1".to_string(), 0), ("n1".to_string(), 4)]);

    // A clean stop exits 0 and says so in the event stream.
    assert!(c.signal(2, libc::SIGTERM).success());
    assert_eq!(c.events(2).last().unwrap().event, NodeEvent::Stop);
}

#[test]
fn volatile_bug_loses_acknowledged_writes_on_kill() {
    for (bugs, survives) in [(&["--bug", "volatile"][..], false), (&[][..], true)] {
        let mut c = Cluster::start("primary", 1, bugs);
        assert_eq!(
            c.call(0, json!({"id": 1, "op": "write", "key": "k", "value": 5}))["ok"],
            true
        );
        c.signal(0, libc::SIGKILL);
        c.spawn(0);
        c.wait_ready(0);
        let v = c.call(0, read("k"))["value"].clone();
        assert_eq!(v == json!(5), survives, "bugs {bugs:?}: read {v}");
    }
}

#[test]
fn pipelined_requests_and_bad_lines_on_one_connection() {
    let c = Cluster::start("primary", 1, &[]);
    let mut s = TcpStream::connect(("127.0.0.1", c.nodes[0].client)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut batch = String::new();
    for i in 1..=100 {
        batch.push_str(&json!({"id": i, "op": "add", "key": "s", "value": i}).to_string());
        batch.push('\n');
    }
    batch.push_str("this is not json\n{\"id\":555,\"op\":\"frobnicate\"}\n");
    batch.push_str(&format!(
        "{}\n",
        json!({"id": 1000, "op": "read", "key": "s"})
    ));
    s.write_all(batch.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..103 {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        seen.insert(v["id"].as_u64().unwrap(), v);
    }
    assert!((1..=100).all(|i| seen[&i]["ok"] == true));
    assert_eq!(seen[&0]["error"], "bad-request");
    assert_eq!(
        (seen[&555]["error"].clone(), seen[&555]["definite"].clone()),
        (json!("bad-request"), json!(true))
    );
    // Replies come in any order, but the read was submitted after every add.
    assert_eq!(seen[&1000]["value"].as_array().unwrap().len(), 100);
}

#[test]
fn lww_replicates_to_every_node_and_recovers() {
    let mut c = Cluster::start("lww", 3, &[]);
    assert_eq!(
        c.call(0, json!({"id": 1, "op": "write", "key": "k", "value": 1}))["ok"],
        true
    );
    for i in 0..3 {
        assert_eq!(
            c.call(
                i,
                json!({"id": 2, "op": "add", "key": "s", "value": i + 10})
            )["ok"],
            true
        );
    }
    for i in 0..3 {
        c.eventually(i, read("k"), |r| r["value"] == 1);
        c.eventually(i, read("s"), |r| r["value"] == json!([10, 11, 12]));
        assert_eq!(
            c.call(i, json!({"id": 3, "op": "status"}))["value"]["role"],
            "replica"
        );
    }
    c.signal(1, libc::SIGKILL);
    c.spawn(1);
    c.wait_ready(1);
    assert_eq!(c.call(1, read("k"))["value"], 1);
    assert_eq!(c.call(1, read("s"))["value"], json!([10, 11, 12]));
    // The restarted node rejoins: its new writes reach the others.
    assert_eq!(
        c.call(1, json!({"id": 4, "op": "write", "key": "k", "value": 2}))["ok"],
        true
    );
    c.eventually(2, read("k"), |r| r["value"] == 2);
}

/// Runs `sunder node ...` expecting a start-up failure; returns its stderr. A node that
/// does not fail is killed after a while rather than left to hang the test.
fn fails(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let err_path = dir.path().join("stderr");
    let mut cmd = support::sunder();
    cmd.arg("node").args(args);
    if !args.contains(&"--data") {
        cmd.arg("--data").arg(dir.path().join("data"));
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) on the process group this test created.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            panic!("{args:?} should have failed at start-up but kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(!status.success(), "{args:?} should fail; stderr:\n{err}");
    err
}

#[test]
fn start_up_errors_exit_non_zero_with_a_message() {
    let port = free_port().to_string();
    let client = format!("127.0.0.1:{port}");
    let err = fails(&[
        "primary", "--id", "n1", "--client", &client, "--bug", "nope",
    ]);
    assert!(
        err.contains("unknown bug `nope`") && err.contains("volatile"),
        "{err}"
    );
    let err = fails(&["wat", "--id", "n1", "--client", &client]);
    assert!(
        err.contains("unknown target `wat`") && err.contains("lww, primary"),
        "{err}"
    );
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap().to_string();
    let err = fails(&["lww", "--id", "n1", "--client", &taken]);
    assert!(err.contains("cannot bind client address"), "{err}");
    let file = tempfile::NamedTempFile::new().unwrap();
    let bad_data = file.path().join("sub");
    let err = fails(&[
        "lww",
        "--id",
        "n1",
        "--client",
        &client,
        "--data",
        bad_data.to_str().unwrap(),
    ]);
    assert!(err.contains("create data directory"), "{err}");
}

/// The transport contract the proxy backend relies on: a node sends to a peer only on a
/// connection it dialled (first line a hello naming itself), receives only on connections
/// accepted on --peer-listen, and redials a connection that was closed.
#[test]
fn peer_transport_dials_out_says_hello_and_redials() {
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let fake_addr = fake.local_addr().unwrap();
    let mut c = Cluster {
        dir: tempfile::tempdir().unwrap(),
        target: "lww",
        nodes: vec![Node {
            id: "n1".into(),
            client: free_port(),
            peer: free_port(),
            child: None,
        }],
        extra: vec!["--peer".into(), format!("n2={fake_addr}")],
    };
    c.spawn(0);
    c.wait_ready(0);
    fake.set_nonblocking(false).unwrap();
    let accept = || {
        let (s, _) = fake.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        BufReader::new(s)
    };
    let next = |r: &mut BufReader<TcpStream>| {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        serde_json::from_str::<Value>(&l).unwrap()
    };
    let mut conn = accept();
    assert_eq!(next(&mut conn), json!({"hello": "n1"}));
    assert_eq!(
        c.call(0, json!({"id": 1, "op": "add", "key": "s", "value": 1}))["ok"],
        true
    );
    assert_eq!(
        next(&mut conn),
        json!({"kind": "add", "key": "s", "value": 1})
    );
    // Nothing n1 sends arrives on a connection we dial; what we send there is delivered.
    let mut inbound = TcpStream::connect(("127.0.0.1", c.nodes[0].peer)).unwrap();
    writeln!(inbound, "{}", json!({"hello": "n2"})).unwrap();
    writeln!(
        inbound,
        "{}",
        json!({"kind": "add", "key": "s", "value": 2})
    )
    .unwrap();
    c.eventually(0, read("s"), |r| r["value"] == json!([1, 2]));
    // Closing the connection n1 dialled makes it dial again, with a fresh hello.
    drop(conn);
    let mut conn = accept();
    assert_eq!(next(&mut conn), json!({"hello": "n1"}));
    assert_eq!(
        c.call(0, json!({"id": 2, "op": "add", "key": "s", "value": 3}))["ok"],
        true
    );
    assert_eq!(
        next(&mut conn),
        json!({"kind": "add", "key": "s", "value": 3})
    );
    // Strangers are refused: an unknown hello is not a member.
    let mut stranger = TcpStream::connect(("127.0.0.1", c.nodes[0].peer)).unwrap();
    let lines = format!(
        "{}\n{}\n",
        json!({"hello": "n9"}),
        json!({"kind": "add", "key": "s", "value": 9})
    );
    // The node may already have closed the connection (a reset): that is the point.
    let _ = stranger.write_all(lines.as_bytes());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.call(0, read("s"))["value"], json!([1, 2, 3]));
}

/// A client that shuts its sending side after its requests still gets every reply.
#[test]
fn half_closed_client_gets_its_replies() {
    let c = Cluster::start("primary", 1, &[]);
    let mut s = TcpStream::connect(("127.0.0.1", c.nodes[0].client)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for i in 1..=20 {
        writeln!(
            s,
            "{}",
            json!({"id": i, "op": "write", "key": "k", "value": i})
        )
        .unwrap();
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let replies: Vec<Value> = BufReader::new(s)
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert_eq!(replies.len(), 20);
    assert!(replies.iter().all(|r| r["ok"] == true));
}

/// A log left torn by a crash is cut back to its last whole record, reported in the event
/// stream, and the node serves what it had; corruption before the end stops the node.
#[test]
fn torn_log_tail_is_dropped_and_middle_corruption_refused() {
    let mut c = Cluster::start("primary", 1, &[]);
    for v in 1..=3 {
        let r = c.call(0, json!({"id": v, "op": "write", "key": "k", "value": v}));
        assert_eq!(r["ok"], true);
    }
    c.signal(0, libc::SIGKILL);
    let wal = c.data(0).join("wal.log");
    let whole = std::fs::read(&wal).unwrap();
    // The first bytes of a fourth record: a write killed half-way.
    let mut torn = whole.clone();
    torn.extend_from_slice(&whole[..whole.len() / 3 / 2]);
    std::fs::write(&wal, &torn).unwrap();
    c.spawn(0);
    c.wait_ready(0);
    assert_eq!(c.call(0, read("k"))["value"], 3);
    let ev = c.events(0);
    let cut = ev
        .iter()
        .find_map(|e| match e.event {
            NodeEvent::WalTornTail { offset, .. } => Some(offset),
            _ => None,
        })
        .expect("torn tail reported");
    assert_eq!(cut, whole.len() as u64);
    assert!(
        matches!(
            ev.last().unwrap().event,
            NodeEvent::Start { records: 3, .. }
        ),
        "{:?}",
        ev.last()
    );
    c.signal(0, libc::SIGKILL);

    // A flipped byte inside the first record, with whole records after it.
    let mut bad = std::fs::read(&wal).unwrap();
    bad[14] ^= 0x20;
    std::fs::write(&wal, &bad).unwrap();
    let data = c.data(0);
    let client = format!("127.0.0.1:{}", free_port());
    let err = fails(&[
        "primary",
        "--id",
        "n1",
        "--client",
        &client,
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(err.contains("record 0 at byte 0 is corrupt"), "{err}");
}
