//! One node program as a process: its own process group, stdin and stdout as JSON lines,
//! stderr appended to `nodes/<id>.log`, a data directory in `SUNDER_DATA_DIR`. Dropping a
//! [`NodeProcess`] SIGKILLs its whole group, so no test or run leaves one behind.

use crate::message::{MAX_LINE, Message};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Why a node could not be started or stopped speaking the protocol.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeError {
    #[error("{node}: could not start {program}: {why}")]
    Spawn {
        node: String,
        program: String,
        why: String,
    },
    #[error("{node} did not answer init with init_ok within {timeout:?}{tail}")]
    NoInitOk {
        node: String,
        timeout: Duration,
        tail: String,
    },
    #[error("{node} exited before answering init ({status}){tail}")]
    Exited {
        node: String,
        status: String,
        tail: String,
    },
    #[error("{node}: stdout line {line_no} is not a Maelstrom message ({why}): {excerpt}{tail}")]
    Garbage {
        node: String,
        line_no: u64,
        why: String,
        excerpt: String,
        tail: String,
    },
}

/// The last lines of a node's log, for error messages.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(10)..];
    if tail.is_empty() {
        format!("\n  (its log {} is empty)", log.display())
    } else {
        format!(
            "\n  last lines of {}:\n    {}",
            log.display(),
            tail.join("\n    ")
        )
    }
}

/// [`log_tail`] once the node has had a moment to finish writing: a node that just printed
/// something wrong on stdout usually says why on stderr (its log) a moment later. Waits
/// until the log is non-empty and unchanged for 50 ms, at most half a second.
pub async fn settled_log_tail(log: &Path) -> String {
    let mut last = None;
    for _ in 0..10 {
        let len = std::fs::metadata(log).map(|m| m.len()).ok();
        if len.is_some_and(|l| l > 0) && len == last {
            break;
        }
        last = len;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    log_tail(log)
}

/// Reads lines of at most [`MAX_LINE`] bytes; a longer one is an error, not a stall.
pub struct LineReader {
    inner: BufReader<ChildStdout>,
    pub line_no: u64,
}

pub enum Line {
    Message(Message),
    Eof,
    Garbage {
        line_no: u64,
        why: String,
        excerpt: String,
    },
}

impl LineReader {
    pub async fn next(&mut self) -> Line {
        let mut buf = Vec::new();
        loop {
            let chunk = match self.inner.fill_buf().await {
                Ok(c) => c,
                Err(_) => return Line::Eof,
            };
            if chunk.is_empty() {
                return Line::Eof;
            }
            let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            buf.extend_from_slice(&chunk[..take]);
            self.inner.consume(take);
            if buf.len() > MAX_LINE + 1 {
                self.line_no += 1;
                return Line::Garbage {
                    line_no: self.line_no,
                    why: format!("longer than {MAX_LINE} bytes"),
                    excerpt: excerpt(&buf),
                };
            }
            if done {
                break;
            }
        }
        self.line_no += 1;
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match Message::parse(line) {
            Ok(m) => Line::Message(m),
            Err(e) => Line::Garbage {
                line_no: self.line_no,
                why: e.to_string(),
                excerpt: excerpt(line),
            },
        }
    }
}

fn excerpt(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(120)]);
    format!("{s:?}")
}

pub struct NodeProcess {
    pub id: String,
    child: Child,
    pgid: Pid,
    pub log: PathBuf,
}

impl NodeProcess {
    /// The node's pid (the leader of its process group).
    pub fn pid(&self) -> u32 {
        self.pgid.as_raw() as u32
    }

    /// Spawns the node, sends `init` and waits for `init_ok`; returns the process, its
    /// stdin and its stdout reader positioned after the `init_ok`.
    #[allow(clippy::too_many_arguments)] // each is part of what one node is started with
    pub async fn start(
        id: &str,
        all: &[String],
        program: &Path,
        args: &[String],
        nodes_dir: &Path,
        env: &[(String, String)],
        init_timeout: Duration,
        init_msg_id: u64,
    ) -> Result<(NodeProcess, ChildStdin, LineReader), NodeError> {
        let log = nodes_dir.join(format!("{id}.log"));
        let data = nodes_dir.join(id);
        let spawn_err = |why: String| NodeError::Spawn {
            node: id.into(),
            program: program.display().to_string(),
            why,
        };
        std::fs::create_dir_all(&data).map_err(|e| spawn_err(format!("data dir: {e}")))?;
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| spawn_err(format!("{}: {e}", log.display())))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("SUNDER_DATA_DIR", &data)
            .env("SUNDER_NODE_ID", id)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| spawn_err(e.to_string()))?;
        let pid = child.id().ok_or_else(|| spawn_err("no pid".into()))?;
        let mut stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut proc = NodeProcess {
            id: id.to_string(),
            child,
            pgid: Pid::from_raw(pid as i32),
            log,
        };
        let mut reader = LineReader {
            inner: BufReader::new(stdout),
            line_no: 0,
        };
        let init = Message::new(
            "c0",
            id,
            json!({"type": "init", "msg_id": init_msg_id, "node_id": id, "node_ids": all}),
        );
        // A node that exits at once closes stdin: the write fails, and the wait below
        // reports the exit with its status.
        let _ = stdin.write_all(init.to_line().as_bytes()).await;
        let _ = stdin.flush().await;
        let waited = tokio::time::timeout(init_timeout, async {
            loop {
                match reader.next().await {
                    Line::Message(m) if m.in_reply_to() == Some(init_msg_id) => {
                        return Ok(m);
                    }
                    // Anything else before init_ok (a node may greet its peers early) is
                    // dropped: the network does not exist for it yet.
                    Line::Message(_) => {}
                    Line::Eof => return Err(None),
                    Line::Garbage {
                        line_no,
                        why,
                        excerpt,
                    } => return Err(Some((line_no, why, excerpt))),
                }
            }
        })
        .await;
        let tail = |p: &NodeProcess| log_tail(&p.log);
        match waited {
            Ok(Ok(m)) if m.kind() == "init_ok" => Ok((proc, stdin, reader)),
            Ok(Ok(m)) => Err(NodeError::NoInitOk {
                node: id.into(),
                timeout: init_timeout,
                tail: format!(
                    "\n  it answered init with `{}` instead{}",
                    m.kind(),
                    settled_log_tail(&proc.log).await
                ),
            }),
            Ok(Err(None)) => {
                let status =
                    match tokio::time::timeout(Duration::from_secs(2), proc.child.wait()).await {
                        Ok(Ok(s)) => s.to_string(),
                        _ => "stdout closed".into(),
                    };
                Err(NodeError::Exited {
                    node: id.into(),
                    status,
                    tail: tail(&proc),
                })
            }
            Ok(Err(Some((line_no, why, excerpt)))) => Err(NodeError::Garbage {
                node: id.into(),
                line_no,
                why,
                excerpt,
                tail: settled_log_tail(&proc.log).await,
            }),
            Err(_) => Err(NodeError::NoInitOk {
                node: id.into(),
                timeout: init_timeout,
                tail: tail(&proc),
            }),
        }
    }

    pub fn signal(&self, sig: Signal) -> Result<(), String> {
        killpg(self.pgid, sig).map_err(|e| format!("{sig} to {}: {e}", self.id))
    }

    /// SIGKILL to the group, then reap the leader.
    pub async fn kill(mut self) {
        let _ = self.signal(Signal::SIGKILL);
        let _ = self.child.wait().await;
    }

    /// The exit status if it has exited.
    pub fn try_exited(&mut self) -> Option<String> {
        self.child.try_wait().ok().flatten().map(|s| s.to_string())
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        // The whole group: a node's own children go too. SIGKILL also ends a stopped one.
        let _ = killpg(self.pgid, Signal::SIGKILL);
    }
}
