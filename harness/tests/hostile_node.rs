//! A real `sunder node raft` against hostile input on its sockets: a 300 MiB line without
//! a newline on the peer port and on the client port, and a client that sends without
//! ever reading its replies. The node must keep answering `status` with its memory
//! bounded (VmHWM from /proc, against its own baseline).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SUNDER: &str = env!("CARGO_BIN_EXE_sunder");
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
        let child = Command::new(SUNDER)
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
