//! A real `sunder node raft` against hostile input on its sockets: a 300 MiB line without
//! a newline on the peer port and on the client port, and a client that sends without
//! ever reading its replies. The node must keep answering `status` with its memory
//! bounded (VmHWM from /proc, against its own baseline). And a few thousand seeded random
//! and mutated lines on both sockets, after which every client line has had its answer
//! and the node still answers `status`.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Growth allowed over the node's own peak before the attack.
const BOUND_KIB: u64 = 64 << 10;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One single-node raft process; killed with its group on drop, also on panic.
struct Node {
    child: Child,
    client: u16,
    peer: u16,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let (client, peer) = (free_port(), free_port());
        let child = support::sunder()
            .args(["node", "raft", "--id", "n1", "--tick-ms", "10"])
            .arg("--client")
            .arg(format!("127.0.0.1:{client}"))
            .arg("--peer-listen")
            .arg(format!("127.0.0.1:{peer}"))
            // A peer that never answers: the node stays a pre-candidate, which is fine.
            .arg("--peer")
            .arg(format!("n2=127.0.0.1:{}", free_port()))
            .arg("--data")
            .arg(dir.path().join("n1"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let node = Node {
            child,
            client,
            peer,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while node.status().is_none() {
            assert!(Instant::now() < deadline, "node never answered status");
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    }

    fn status(&self) -> Option<serde_json::Value> {
        let mut s = TcpStream::connect(("127.0.0.1", self.client)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        writeln!(s, r#"{{"id":1,"op":"status"}}"#).ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        let v: serde_json::Value = serde_json::from_str(&line).ok()?;
        (v["ok"] == true).then_some(v)
    }

    /// (VmHWM, VmRSS) in KiB.
    fn memory(&self) -> (u64, u64) {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap()
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this test created.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Writes up to `total` bytes of 'x' (no newline); returns how many the node took
/// before closing the connection or stopping to read (a write blocked for 5 s).
fn endless_line(port: u16, total: usize) -> usize {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0;
    while sent < total {
        match s.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => sent += n,
        }
    }
    sent
}

#[test]
fn a_300_mib_line_on_either_port_leaves_the_node_alive_and_small() {
    let node = Node::start();
    let (base_hwm, base_rss) = node.memory();
    let total = 300 << 20;
    let peer_took = endless_line(node.peer, total);
    let client_took = endless_line(node.client, total);
    assert!(node.status().is_some(), "node stopped answering status");
    let (hwm, rss) = node.memory();
    println!(
        "300 MiB lines: peer port took {} KiB, client port {} KiB; VmHWM {base_hwm} -> {hwm} KiB, VmRSS {base_rss} -> {rss} KiB",
        peer_took >> 10,
        client_took >> 10
    );
    assert!(
        hwm < base_hwm + BOUND_KIB,
        "VmHWM grew from {base_hwm} to {hwm} KiB"
    );
}

#[test]
fn a_client_that_never_reads_is_pushed_back_not_buffered() {
    let node = Node::start();
    let (base_hwm, _) = node.memory();
    let mut s = TcpStream::connect(("127.0.0.1", node.client)).unwrap();
    // A write blocked this long means the node stopped reading: the push-back. It ends
    // the sending phase; what is asserted is memory.
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut batch = Vec::new();
    for i in 0..10_000 {
        batch.extend_from_slice(format!("{{\"id\":{i},\"op\":\"status\"}}\n").as_bytes());
    }
    let total: usize = 512 << 20;
    let mut sent = 0;
    while sent < total {
        match s.write(&batch) {
            Ok(0) | Err(_) => break,
            Ok(n) => sent += n,
        }
    }
    assert!(node.status().is_some(), "node stopped answering status");
    let (hwm, rss) = node.memory();
    println!(
        "non-reading client: the node took {} KiB of requests before pushing back; VmHWM {base_hwm} -> {hwm} KiB, VmRSS {rss} KiB",
        sent >> 10
    );
    assert!(
        sent < total,
        "the node read 512 MiB of requests without pushing back"
    );
    assert!(
        hwm < base_hwm + BOUND_KIB,
        "VmHWM grew from {base_hwm} to {hwm} KiB"
    );
}

/// One hostile line (no newline inside): valid, mutated, or random.
fn hostile_line(rng: &mut ChaCha8Rng, valid: &[&str]) -> Vec<u8> {
    let mut b = valid[rng.random_range(0..valid.len())].as_bytes().to_vec();
    match rng.random_range(0..8) {
        0 | 1 => {}
        2 => b.truncate(rng.random_range(0..b.len())),
        3 => {
            let i = rng.random_range(0..b.len());
            b[i] = rng.random();
        }
        4 => b.insert(rng.random_range(0..b.len()), 0xff),
        5 => {
            let huge = [
                "18446744073709551616",
                "-1",
                "1e999",
                "null",
                "[[[[]]]]",
                "\"x\"",
            ];
            let at = b.iter().position(u8::is_ascii_digit).unwrap_or(0);
            b.splice(at..at + 1, huge[rng.random_range(0..huge.len())].bytes());
        }
        6 => b = vec![b'['; rng.random_range(1..3000)],
        _ => {
            b = (0..rng.random_range(0..300))
                .map(|_| rng.random())
                .collect()
        }
    }
    b.retain(|c| *c != b'\n');
    b
}

#[test]
fn random_lines_on_both_ports_leave_the_node_answering() {
    let node = Node::start();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    // Peer port: 200 connections of a hello (mostly a member's) and random messages.
    let hellos = [
        r#"{"hello":"n2"}"#,
        r#"{"hello":"n9"}"#,
        r#"{"hello":"n1"}"#,
    ];
    let msgs = [
        r#"{"PreVote":{"term":3,"last_index":0,"last_term":0}}"#,
        r#"{"Vote":{"term":4,"last_index":7,"last_term":2}}"#,
        r#"{"Append":{"term":5,"prev_index":0,"prev_term":0,"entries":[{"index":1,"term":5,"cmd":"Noop"}],"commit":1,"seq":1}}"#,
        r#"{"AppendResp":{"term":5,"success":true,"index":1,"hint_index":0,"hint_term":null,"seq":1}}"#,
        r#"{"SnapshotResp":{"term":2,"index":9,"seq":3}}"#,
    ];
    let mut peer_lines = 0;
    for _ in 0..200 {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", node.peer)) else {
            continue;
        };
        let mut out = if rng.random_bool(0.7) {
            hellos[0].as_bytes().to_vec()
        } else {
            hostile_line(&mut rng, &hellos)
        };
        out.push(b'\n');
        for _ in 0..rng.random_range(0..20) {
            out.extend(hostile_line(&mut rng, &msgs));
            out.push(b'\n');
            peer_lines += 1;
        }
        // The node may close a refused connection before all of it is written.
        let _ = s.write_all(&out);
    }
    // Client port: 3,000 lines on one connection; every non-blank one gets one answer.
    let reqs = [
        r#"{"id":1,"op":"read","key":"k1"}"#,
        r#"{"id":2,"op":"write","key":"k1","value":3}"#,
        r#"{"id":3,"op":"cas","key":"k2","from":1,"to":2}"#,
        r#"{"id":4,"op":"status"}"#,
        r#"{"id":5,"op":"add","key":"s","value":9}"#,
    ];
    let mut out = Vec::new();
    let mut owed = 0;
    for _ in 0..3_000 {
        let l = hostile_line(&mut rng, &reqs);
        if !std::str::from_utf8(&l).is_ok_and(|t| t.trim().is_empty()) {
            owed += 1;
        }
        out.extend(l);
        out.push(b'\n');
    }
    let mut s = TcpStream::connect(("127.0.0.1", node.client)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let reader = BufReader::new(s.try_clone().unwrap());
    let writer = std::thread::spawn(move || {
        s.write_all(&out).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let answers: Vec<serde_json::Value> = reader
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    writer.join().unwrap();
    let bad = answers
        .iter()
        .filter(|a| a["error"] == "bad-request")
        .count();
    println!(
        "random lines: {peer_lines} peer message lines on 200 connections; {} client lines answered, {bad} of them bad-request",
        answers.len()
    );
    assert_eq!(answers.len(), owed);
    assert!(bad > 0 && bad < owed, "{bad} of {owed}");
    assert!(node.status().is_some(), "node stopped answering status");
}
