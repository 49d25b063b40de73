//! Shared by the report and serve tests: fake run directories, a `sunder serve` that is
//! killed with its process group on drop, and a plain HTTP GET over a TcpStream.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub use super::sunder;

/// One history event.
pub fn ev(
    time_ms: u64,
    kind: &str,
    process: Value,
    f: &str,
    key: Option<&str>,
    value: Value,
) -> Value {
    let mut e = json!({"time": time_ms * 1_000_000, "type": kind, "process": process, "f": f, "value": value});
    if let Some(k) = key {
        e["key"] = json!(k);
    }
    e
}

/// A register history on key `k1` with a partition from 20 to 60 ms, one failed write
/// whose error tries to break out of the page, and an indeterminate read. With
/// `valid == false`, process 1 reads a value nobody wrote.
pub fn register_history(valid: bool) -> Vec<Value> {
    let read = if valid { 1 } else { 7 };
    vec![
        ev(1, "invoke", json!(0), "write", Some("k1"), json!(1)),
        ev(10, "ok", json!(0), "write", Some("k1"), json!(1)),
        ev(
            20,
            "info",
            json!("nemesis"),
            "partition",
            None,
            json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}),
        ),
        ev(30, "invoke", json!(1), "read", Some("k1"), Value::Null),
        ev(40, "ok", json!(1), "read", Some("k1"), json!(read)),
        ev(41, "invoke", json!(2), "write", Some("k1"), json!(5)),
        {
            let mut e = ev(45, "fail", json!(2), "write", Some("k1"), json!(5));
            e["error"] = json!("</script><img src=x onerror=alert(1)>");
            e
        },
        ev(50, "invoke", json!(3), "read", Some("k1"), Value::Null),
        ev(55, "info", json!(3), "read", Some("k1"), Value::Null),
        ev(60, "info", json!("nemesis"), "heal", None, json!({})),
        ev(70, "invoke", json!(0), "read", Some("k1"), Value::Null),
        ev(80, "ok", json!(0), "read", Some("k1"), json!(1)),
    ]
}

/// Writes a run directory as `sunder test` leaves it before checking: config.json,
/// history.jsonl (indices filled in), a node log.
pub fn write_run(dir: &Path, name: &str, target: &str, workload: &str, events: &[Value]) {
    std::fs::create_dir_all(dir.join("nodes")).unwrap();
    let config = json!({
        "config": {
            "name": name, "target": target, "nodes": 3, "workload": workload, "concurrency": 4,
            "rate": 200.0, "time_limit": "1s", "key_count": 1, "seed": 42,
            "nemesis": ["partition"], "nemesis_interval": "5s", "bugs": [], "opts": [],
            "results": "results", "junit": null, "op_timeout": "1s"
        },
        "replay": format!("sunder test --target {target} --workload {workload} --seed 42")
    });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
    let mut text = String::new();
    for (i, e) in events.iter().enumerate() {
        let mut e = e.clone();
        e["index"] = json!(i);
        text.push_str(&e.to_string());
        text.push('\n');
    }
    std::fs::write(dir.join("history.jsonl"), text).unwrap();
    std::fs::write(dir.join("nodes/n1.log"), "n1 started\n").unwrap();
}

/// `sunder analyze DIR`: exit code and stdout.
pub fn analyze(dir: &Path) -> (i32, String) {
    let out = sunder()
        .arg("analyze")
        .arg(dir)
        .args(["--timeout", "20s"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.code().is_some(),
        "analyze died: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().unwrap(),
        stdout + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A running `sunder serve`, killed with its process group when dropped.
pub struct Serve {
    child: Child,
    pub addr: String,
}

impl Serve {
    pub fn start(dir: &Path) -> Serve {
        Serve::start_with(dir, &[])
    }

    /// `sunder serve DIR --port 0 ARGS`.
    pub fn start_with(dir: &Path, args: &[&str]) -> Serve {
        let mut child = sunder()
            .arg("serve")
            .arg(dir)
            .args(["--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut s = Serve {
            child,
            addr: String::new(),
        };
        let url = line
            .split("http://")
            .nth(1)
            .unwrap_or_else(|| panic!("no URL in {line:?}"));
        s.addr = url.trim().trim_end_matches('/').to_string();
        s
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// GET `target` sent exactly as given (no client-side normalisation of `..`).
    pub fn get(&self, target: &str) -> (u16, String, String) {
        self.raw(&format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        ))
    }

    /// Sends `request` as it is and reads the whole answer: status, head and body.
    pub fn raw(&self, request: &str) -> (u16, String, String) {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8_lossy(&raw).to_string();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, head.to_string(), body.to_string())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let pg = self.child.id() as i32;
        // The negative pid signals the whole group the child leads.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pg}")])
            .status();
        let _ = self.child.wait();
    }
}

/// A fresh directory for a test under the target directory's scratch space.
pub fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
