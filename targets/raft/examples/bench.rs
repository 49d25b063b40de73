//! Throughput and latency of a 3-node Raft cluster, batching on and off, in one run.
//!
//! ```text
//! cargo build --release -p sunder && \
//!   cargo run --release -p sunder-raft --example bench -- target/release/sunder [SECONDS] [CLIENTS]
//! ```
//!
//! For each mode it starts three real `sunder node raft` processes (fresh data
//! directories, OS-assigned loopback ports), waits for a leader, then runs CLIENTS (32)
//! closed-loop clients for SECONDS (10): 90% writes, 10% reads over 32 registers, every
//! request to the leader. A request counts when it answers `ok`; latency is measured per
//! request from send to answer. The nodes are killed (process group) when a mode ends,
//! also on panic.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Kills every node's process group when dropped.
struct Cluster {
    children: Vec<Child>,
    clients: Vec<String>,
    _data: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            // SAFETY: kill(2) on the process group this child leads (process_group(0)).
            unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(bin: &str, opts: &[&str]) -> Cluster {
    let data = tempfile::tempdir().unwrap();
    let ids = ["n1", "n2", "n3"];
    let client_ports: Vec<u16> = ids.iter().map(|_| free_port()).collect();
    let peer_ports: Vec<u16> = ids.iter().map(|_| free_port()).collect();
    let mut children = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let mut cmd = Command::new(bin);
        cmd.args(["node", "raft", "--id", id])
            .arg("--client")
            .arg(format!("127.0.0.1:{}", client_ports[i]))
            .arg("--peer-listen")
            .arg(format!("127.0.0.1:{}", peer_ports[i]))
            .arg("--data")
            .arg(data.path().join(id));
        for (j, peer) in ids.iter().enumerate() {
            if j != i {
                cmd.arg("--peer")
                    .arg(format!("{peer}=127.0.0.1:{}", peer_ports[j]));
            }
        }
        for o in opts {
            cmd.arg("--opt").arg(o);
        }
        cmd.env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        children.push(cmd.spawn().expect("spawn sunder node raft"));
    }
    let clients = client_ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    Cluster {
        children,
        clients,
        _data: data,
    }
}

struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
    next: u64,
}

impl Conn {
    fn open(addr: &str) -> Option<Conn> {
        let w = TcpStream::connect(addr).ok()?;
        w.set_nodelay(true).ok()?;
        w.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let r = BufReader::new(w.try_clone().ok()?);
        Some(Conn { w, r, next: 1 })
    }

    fn call(&mut self, mut req: Value) -> Option<Value> {
        req["id"] = json!(self.next);
        self.next += 1;
        let mut line = req.to_string();
        line.push('\n');
        self.w.write_all(line.as_bytes()).ok()?;
        let mut resp = String::new();
        self.r.read_line(&mut resp).ok()?;
        serde_json::from_str(&resp).ok()
    }
}

fn find_leader(c: &Cluster) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for (i, addr) in c.clients.iter().enumerate() {
            let st = Conn::open(addr).and_then(|mut k| k.call(json!({"op": "status"})));
            if st.is_some_and(|s| s["value"]["role"] == "leader") {
                return i;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no leader within 20 s");
}

struct Result {
    ops: usize,
    secs: f64,
    p50: Duration,
    p99: Duration,
}

fn run_mode(bin: &str, opts: &[&str], secs: u64, clients: usize) -> Result {
    let cluster = start(bin, opts);
    let leader = cluster.clients[find_leader(&cluster)].clone();
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|w| {
            let (stop, latencies, leader) = (stop.clone(), latencies.clone(), leader.clone());
            std::thread::spawn(move || {
                let mut conn = Conn::open(&leader).expect("connect to the leader");
                let mut mine = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let key = format!("r{}", (w as u64 * 7 + n) % 32);
                    let req = if n % 10 == 0 {
                        json!({"op": "read", "key": key})
                    } else {
                        json!({"op": "write", "key": key, "value": (w as u64) << 32 | n})
                    };
                    let t = Instant::now();
                    match conn.call(req) {
                        Some(r) if r["ok"] == true => mine.push(t.elapsed()),
                        Some(_) => {}
                        None => match Conn::open(&leader) {
                            Some(c) => conn = c,
                            None => break,
                        },
                    }
                }
                latencies.lock().unwrap().extend(mine);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    drop(cluster);
    let mut l = std::mem::take(&mut *latencies.lock().unwrap());
    l.sort();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Result {
        ops: l.len(),
        secs,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = args
        .get(1)
        .expect("usage: bench PATH/TO/sunder [SECONDS] [CLIENTS]");
    let secs = args.get(2).map_or(10, |s| s.parse().expect("SECONDS"));
    let clients = args.get(3).map_or(32, |s| s.parse().expect("CLIENTS"));
    println!(
        "3-node raft, {clients} clients, 90% writes / 10% reads, {secs} s per mode, no faults"
    );
    let on = run_mode(bin, &[], secs, clients);
    let off = run_mode(bin, &["batch=off"], secs, clients);
    for (name, r) in [("batch=on", &on), ("batch=off", &off)] {
        println!(
            "{name:10} {:>8.0} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} ok ops)",
            r.ops as f64 / r.secs,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.ops
        );
    }
    let ratio = (on.ops as f64 / on.secs) / (off.ops as f64 / off.secs).max(1e-9);
    println!("batching speed-up: {ratio:.1}x");
}
