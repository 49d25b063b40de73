//! Target specs: a TOML file that describes a third-party system, so that auditing it
//! needs no Rust (`sunder test --target-spec targets/specs/etcd.toml`).
//!
//! ```text
//!  etcd.toml ─► TargetSpec::load ──► node_command(NodeContext) ─► program, args, env
//!   [node]       (templates parsed,   ready(addr, dialer)       ─► one readiness probe
//!   [ready]       placeholders         stop, requires            ─► how to stop, what works
//!   [stop]        checked, errors      client: AdapterConfig     ─► AnyClient (workloads)
//!   [requires]    with file:line)      with_client_opts(k=v)     ─► --client-opt overrides
//!   [client]
//! ```
//!
//! The format, with every key (see `targets/specs/etcd.toml` for a full example):
//!
//! ```toml
//! name = "etcd"
//! [ports]                      # fixed ports, used with --net netns (every node has its
//! client = 2379                # own address there); on loopback the controller picks
//! peer = 2380                  # free ports and passes them in the context instead
//! [node]
//! program = "/usr/bin/etcd"    # a bare name is looked up in PATH; a relative path with
//!                              # a slash is relative to the spec file
//! args = ["--name", "{id}", "--initial-cluster", "{members}"]
//! member = "{id}=http://{ip}:{peer_port}"   # one entry of {members}
//! separator = ","                           # between entries (default ",")
//! env = { GOMAXPROCS = "1" }
//! [ready]
//! tcp = true                   # connect to the client port (default true)
//! http_get = "/health"         # and/or GET this path on it, expecting 2xx
//! timeout = "30s"              # how long start-up may take (default 30s)
//! [stop]
//! signal = "SIGTERM"           # default SIGTERM
//! grace = "5s"                 # then SIGKILL (default 5s)
//! [requires]
//! net = ["netns", "proxy"]     # the --net backends it runs on (default: both)
//! faults.proxy = ["kill", "pause"]   # per backend, the faults that make sense (default: all)
//! [client]
//! adapter = "etcd"             # or "http", "sunder-json"; the rest are the adapter's
//! reads = "linearizable"       # settings ("http": per operation, see targets/specs/README.md)
//! ```
//!
//! `[client]` errors name the key under it and its line (`client.read.value.json`): the
//! HTTP adapter's reader reports key paths, and `client_key_lines` finds their lines.
//!
//! Placeholders: `{id}` (n1...), `{index}` (1-based), `{ip}`, `{client_port}`,
//! `{peer_port}`, `{data_dir}`, `{log}`, `{run}` (the run directory), `{members}`; `{{`
//! and `}}` are literal braces. The `member` template may use the first five.

#[path = "spec/context.rs"]
mod context;
#[path = "spec/error.rs"]
mod error;
#[path = "spec/raw.rs"]
mod raw;
#[path = "spec/template.rs"]
mod template;
#[cfg(test)]
#[path = "spec/tests.rs"]
mod tests;

pub use context::{Member, NodeContext};
pub use error::SpecError;
pub use template::Template;

use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use sunder_nemesis::FaultKind;
use sunder_workloads::{AdapterConfig, Dialer};

/// How long one readiness probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The network backends a spec may name.
pub const NET_BACKENDS: [&str; 2] = ["proxy", "netns"];

/// A loaded, checked target spec.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// The file it came from.
    pub path: PathBuf,
    pub name: String,
    pub description: Option<String>,
    /// The ports every node uses when each has an address of its own (`--net netns`).
    pub ports: FixedPorts,
    pub node: NodeTemplate,
    pub ready: ReadyCheck,
    pub stop: StopSpec,
    pub requires: Requires,
    /// The adapter and its settings, from `[client]`.
    pub client: AdapterConfig,
    /// Config files rendered into each node's data directory before it starts.
    pub files: Vec<FileTemplate>,
    /// `[client]` as written, for `--client-opt` overrides; and its line.
    client_table: toml::Table,
    client_line: Option<usize>,
    /// The line of each key under `[client]`, for errors about one of them.
    client_lines: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedPorts {
    pub client: u16,
    pub peer: u16,
}

/// How to start node i.
#[derive(Debug, Clone)]
pub struct NodeTemplate {
    pub program: Template,
    pub args: Vec<Template>,
    pub env: Vec<(String, Template)>,
    pub member: Option<Template>,
    pub separator: String,
}

/// `[[files]]`: one config file of every node, rendered from a template with the command
/// line's placeholders.
#[derive(Debug, Clone)]
pub struct FileTemplate {
    /// Relative to the node's data directory (checked to stay inside it).
    pub path: PathBuf,
    pub text: Template,
    /// How one entry of `{members}` reads in this file (the file's own, else `[node]`'s).
    pub member: Option<Template>,
    pub separator: String,
}

/// How to tell a node is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyCheck {
    pub tcp: bool,
    pub http_get: Option<String>,
    /// How long the whole start-up may take.
    pub timeout: Duration,
}

/// How to stop a node at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopSpec {
    pub signal: Signal,
    /// How long to wait after `signal` before SIGKILL.
    pub grace: Duration,
}

/// Where the target can run and which faults make sense there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requires {
    /// The `--net` backends it runs on.
    pub net: Vec<String>,
    /// Per backend, the faults allowed; a backend not listed allows every fault.
    pub faults: BTreeMap<String, Vec<FaultKind>>,
    /// `twins = true`: a second process with a node's identity, address and its own data
    /// directory may be started (`--byzantine N --byzantine-mode twins`, with netns).
    pub twins: bool,
}

impl Requires {
    /// Whether a run with `--net net` and these faults makes sense for the target; the
    /// error says why not, for the user.
    pub fn check(&self, net: &str, faults: &[FaultKind]) -> Result<(), String> {
        if !self.net.iter().any(|n| n == net) {
            return Err(format!(
                "this target does not run with --net {net}; it needs --net {}",
                self.net.join(" or --net ")
            ));
        }
        if let Some(allowed) = self.faults.get(net) {
            let refused: Vec<String> = faults
                .iter()
                .filter(|f| !allowed.contains(f))
                .map(|f| f.to_string())
                .collect();
            if !refused.is_empty() {
                let other: Vec<&str> = self
                    .net
                    .iter()
                    .filter(|n| *n != net)
                    .map(String::as_str)
                    .collect();
                return Err(format!(
                    "with --net {net} this target supports only the faults {}; {} need{} {}",
                    allowed
                        .iter()
                        .map(|f| f.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    refused.join(", "),
                    if refused.len() == 1 { "s" } else { "" },
                    if other.is_empty() {
                        "a backend it cannot use".to_string()
                    } else {
                        format!("--net {}", other.join(" or --net "))
                    }
                ));
            }
        }
        Ok(())
    }
}

impl TargetSpec {
    /// Reads and checks a spec file.
    pub fn load(path: impl AsRef<Path>) -> Result<TargetSpec, SpecError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| SpecError {
            file: path.to_path_buf(),
            line: None,
            key: None,
            message: format!("cannot read it: {e}"),
        })?;
        TargetSpec::parse(&text, path)
    }

    /// Checks spec text; `path` names it in errors and anchors relative programs.
    pub fn parse(text: &str, path: &Path) -> Result<TargetSpec, SpecError> {
        raw::check(text, path)
    }

    /// The program, arguments and added environment of one node.
    pub fn node_command(
        &self,
        ctx: &NodeContext,
    ) -> (PathBuf, Vec<OsString>, Vec<(OsString, OsString)>) {
        let members = match &self.node.member {
            Some(m) => ctx
                .members
                .iter()
                .map(|mem| m.render_member(mem))
                .collect::<Vec<_>>()
                .join(&self.node.separator),
            None => String::new(),
        };
        let program = PathBuf::from(self.node.program.render(ctx, &members));
        // A bare name is for PATH; a relative path is the spec author's, next to the spec.
        let program = if program.is_relative() && program.components().count() > 1 {
            self.path.parent().unwrap_or(Path::new(".")).join(program)
        } else {
            program
        };
        let args = self
            .node
            .args
            .iter()
            .map(|a| a.render(ctx, &members).into())
            .collect();
        let env = self
            .node
            .env
            .iter()
            .map(|(k, v)| (k.into(), v.render(ctx, &members).into()))
            .collect();
        (program, args, env)
    }

    /// The config files of one node: where each goes (inside its data directory) and its
    /// text.
    pub fn node_files(&self, ctx: &NodeContext) -> Vec<(PathBuf, String)> {
        self.files
            .iter()
            .map(|f| {
                let members = f.member.as_ref().map_or(String::new(), |m| {
                    ctx.members
                        .iter()
                        .map(|mem| m.render_member(mem))
                        .collect::<Vec<_>>()
                        .join(&f.separator)
                });
                (ctx.data_dir.join(&f.path), f.text.render(ctx, &members))
            })
            .collect()
    }

    /// One readiness probe of the node whose client port is `addr`: a TCP connect and/or
    /// an HTTP GET expecting 2xx, as the spec says. The caller retries until
    /// `self.ready.timeout`.
    pub async fn ready(&self, addr: SocketAddr, dialer: &Dialer) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + PROBE_TIMEOUT;
        if self.ready.tcp {
            match tokio::time::timeout_at(deadline, dialer.connect(addr)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(format!("connect {addr}: {e}")),
                Err(_) => return Err(format!("connect {addr}: timed out")),
            }
        }
        if let Some(path) = &self.ready.http_get {
            let r = sunder_workloads::http::get_once(dialer, addr, path, deadline)
                .await
                .map_err(|e| format!("GET http://{addr}{path}: {e}"))?;
            if !(200..300).contains(&r.status) {
                return Err(format!(
                    "GET http://{addr}{path}: http {}: {}",
                    r.status,
                    String::from_utf8_lossy(&r.body).trim()
                ));
            }
        }
        Ok(())
    }

    /// The spec with `[client]` settings replaced (`--client-opt reads=serializable`).
    /// A value is read as TOML when it parses as one (`true`, `16`, `"x"`), as a string
    /// otherwise.
    pub fn with_client_opts(&self, opts: &[(String, String)]) -> Result<TargetSpec, SpecError> {
        let mut table = self.client_table.clone();
        for (k, v) in opts {
            let value = format!("v = {v}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(v.clone()));
            table.insert(k.clone(), value);
        }
        let client = raw::adapter(&table).map_err(|e| {
            let mut err = raw::client_error(&self.path, e, &self.client_lines, self.client_line);
            err.message = format!(
                "{} (with --client-opt {})",
                err.message,
                opts.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" --client-opt ")
            );
            err
        })?;
        Ok(TargetSpec {
            client,
            client_table: table,
            ..self.clone()
        })
    }
}
