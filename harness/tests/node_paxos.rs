//! Three real `sunder node paxos` processes on loopback: a leader is elected, writes, cas
//! and reads go through the log, a killed leader is replaced, and a restarted node recovers
//! its acceptor state from disk and catches up to the same log.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The processes of one cluster; dropping it kills every process group, also on panic.
struct Paxos3 {
    dir: tempfile::TempDir,
    client: Vec<u16>,
    peer: Vec<u16>,
    children: Vec<Option<Child>>,
}

impl Drop for Paxos3 {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}

impl Paxos3 {
    fn start() -> Paxos3 {
        let mut c = Paxos3 {
            dir: tempfile::tempdir().unwrap(),
            client: (0..3).map(|_| free_port()).collect(),
            peer: (0..3).map(|_| free_port()).collect(),
            children: vec![None, None, None],
        };
        for i in 0..3 {
            c.spawn(i);
        }
        c
    }

    fn spawn(&mut self, i: usize) {
        let mut cmd = support::sunder();
        cmd.args(["node", "paxos", "--id", &format!("n{}", i + 1)])
            .arg("--client")
            .arg(format!("127.0.0.1:{}", self.client[i]))
            .arg("--peer-listen")
            .arg(format!("127.0.0.1:{}", self.peer[i]))
            .arg("--data")
            .arg(self.dir.path().join(format!("n{}", i + 1)))
            .args(["--seed", "7", "--opt", "election_ms=300"]);
        for j in (0..3).filter(|j| *j != i) {
            cmd.arg("--peer")
                .arg(format!("n{}=127.0.0.1:{}", j + 1, self.peer[j]));
        }
        let log = std::fs::File::create(self.dir.path().join(format!("n{}.log", i + 1))).unwrap();
        cmd.stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0);
        self.children[i] = Some(cmd.spawn().expect("spawn sunder node paxos"));
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
        }
    }

    /// One request on a fresh connection; `None` when the node does not answer.
    fn ask(&self, i: usize, req: Value) -> Option<Value> {
        let addr = format!("127.0.0.1:{}", self.client[i]);
        let mut s =
            TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(500)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(format!("{req}\n").as_bytes()).ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        serde_json::from_str(&line).ok()
    }

    /// Sends `req` to whichever live node leads, following not-leader hints, until a
    /// definite answer or the deadline.
    fn ask_leader(&self, req: Value, live: &[usize]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut i = live[0];
        let mut k = 0;
        while Instant::now() < deadline {
            if let Some(resp) = self.ask(i, req.clone()) {
                let err = resp["error"].as_str();
                if resp["ok"] == json!(true) || err == Some("cas-mismatch") {
                    return resp;
                }
                let hint = resp["leader"]
                    .as_str()
                    .and_then(|l| l[1..].parse::<usize>().ok())
                    .map(|n| n - 1);
                if let Some(h) = hint.filter(|h| live.contains(h)) {
                    i = h;
                    continue;
                }
            }
            k += 1;
            i = live[k % live.len()];
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "no leader answered {req} in time; logs in {:?}",
            self.dir.path()
        );
    }

    fn dump(&self, i: usize) -> Value {
        self.ask(i, json!({"id": 99, "op": "dump"}))
            .expect("dump answered")["value"]
            .clone()
    }
}

#[test]
fn three_paxos_nodes_survive_losing_the_leader() {
    let mut c = Paxos3::start();
    let all = [0, 1, 2];
    assert_eq!(
        c.ask_leader(
            json!({"id": 1, "op": "write", "key": "a", "value": 1}),
            &all
        )["ok"],
        json!(true)
    );
    assert_eq!(
        c.ask_leader(
            json!({"id": 2, "op": "cas", "key": "a", "from": 1, "to": 2}),
            &all
        )["ok"],
        json!(true)
    );
    let miss = c.ask_leader(
        json!({"id": 3, "op": "cas", "key": "a", "from": 1, "to": 3}),
        &all,
    );
    assert_eq!(
        (miss["error"].as_str(), miss["definite"].as_bool()),
        (Some("cas-mismatch"), Some(true))
    );
    assert_eq!(
        c.ask_leader(json!({"id": 4, "op": "read", "key": "a"}), &all)["value"],
        json!(2)
    );

    let status: Vec<Value> = all
        .iter()
        .map(|i| c.ask(*i, json!({"id": 5, "op": "status"})).unwrap()["value"].clone())
        .collect();
    let leader = status
        .iter()
        .position(|s| s["role"] == "leader")
        .expect("someone leads");
    assert_eq!(
        status[leader]["commit"],
        json!(4),
        "write, cas, failed cas, read: four slots"
    );

    c.kill(leader);
    let live: Vec<usize> = all.iter().copied().filter(|i| *i != leader).collect();
    assert_eq!(
        c.ask_leader(json!({"id": 6, "op": "read", "key": "a"}), &live)["value"],
        json!(2)
    );
    assert_eq!(
        c.ask_leader(
            json!({"id": 7, "op": "write", "key": "b", "value": 7}),
            &live
        )["ok"],
        json!(true)
    );

    c.spawn(leader);
    // The restarted node learns what it missed from the new leader.
    let deadline = Instant::now() + Duration::from_secs(15);
    let reference = c.dump(live[0]);
    loop {
        let d = c
            .ask(leader, json!({"id": 8, "op": "dump"}))
            .map(|r| r["value"].clone());
        if let Some(d) = d
            && d["entries"].as_array().map(Vec::len)
                >= reference["entries"].as_array().map(Vec::len)
        {
            let n = reference["entries"].as_array().unwrap().len();
            assert_eq!(
                d["entries"].as_array().unwrap()[..n],
                reference["entries"].as_array().unwrap()[..],
                "logs differ"
            );
            assert_eq!(d["state"]["b"], json!(7));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restarted node did not catch up; logs in {:?}",
            c.dir.path()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let events = std::fs::read_to_string(
        c.dir
            .path()
            .join(format!("n{}", live[0] + 1))
            .join("events.jsonl"),
    )
    .unwrap();
    assert!(
        events
            .lines()
            .any(|l| l.contains("\"event\":\"leader\"") || l.contains("\"chosen\""))
    );
}

#[test]
fn unknown_paxos_bug_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = support::sunder()
        .args(["node", "paxos", "--id", "n1", "--bug", "no-such-bug"])
        .arg("--client")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--data")
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-bug"), "{err}");
}
