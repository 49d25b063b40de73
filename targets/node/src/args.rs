//! The command line of one node, shared by every built-in target, and the errors that
//! stop a node.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::protocol::{Byzantine, CoreConfig, NodeId};
use crate::wal::WalError;

/// Command-line settings of one node (flattened into `sunder node <TARGET> ...`).
#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    /// This node's id, e.g. `n1`.
    #[arg(long)]
    pub id: NodeId,
    /// Address the client protocol (JSON lines) listens on.
    #[arg(long)]
    pub client: SocketAddr,
    /// Address peers' messages arrive on.
    #[arg(long = "peer-listen")]
    pub peer_listen: Option<SocketAddr>,
    /// Where to send to a peer, as `ID=ADDR` (repeat per peer; may be a relay).
    #[arg(long = "peer", value_parser = parse_peer)]
    pub peers: Vec<(NodeId, SocketAddr)>,
    /// Data directory (created if missing); the durable log lives here.
    #[arg(long)]
    pub data: PathBuf,
    /// Event stream, JSON lines, appended [default: DATA/events.jsonl].
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Switch on a planted bug (repeatable); unknown names are refused.
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
    /// A protocol setting `KEY=VALUE` (repeatable), e.g. `batch=off`.
    #[arg(long = "opt", value_parser = parse_opt)]
    pub opts: Vec<(String, String)>,
    /// Run seed; the core's RNG seed is derived from it and the node id.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Interval between ticks fed to the core, in milliseconds.
    #[arg(long = "tick-ms", default_value_t = 10)]
    pub tick_ms: u64,
    /// Most client connections served at once; more are answered `unavailable` and closed.
    #[arg(long = "max-clients", default_value_t = 256)]
    pub max_clients: usize,
    /// Most incoming peer connections at once (a peer uses one; redials and relays may
    /// briefly add more); more are closed at once.
    #[arg(long = "max-peer-conns", default_value_t = 64)]
    pub max_peer_conns: usize,
    /// This node's secret signing key, a file of 64 hex digits (a signing target: pbft).
    #[arg(long = "secret-key")]
    pub secret_key: Option<PathBuf>,
    /// Every replica's and client's public key, a JSON file (a signing target: pbft).
    #[arg(long = "public-keys")]
    pub public_keys: Option<PathBuf>,
    /// Make this node Byzantine: act out MODE, one of the core's behaviours (pbft:
    /// equivocate, silent, corrupt-digest, forge, replay, mix). The controller gives it to
    /// the members `sunder test --byzantine N` chose.
    #[arg(long = "byzantine", value_name = "MODE")]
    pub byzantine: Option<String>,
    /// Another Byzantine member this one colludes with (repeatable; with --byzantine).
    #[arg(long = "byzantine-ally", value_name = "ID")]
    pub byzantine_allies: Vec<NodeId>,
}

fn parse_peer(s: &str) -> Result<(NodeId, SocketAddr), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected ID=ADDR, e.g. n2=127.0.0.1:7002"))?;
    if id.is_empty() {
        return Err(format!("`{s}`: empty node id"));
    }
    let addr = addr
        .parse()
        .map_err(|e| format!("`{s}`: bad address `{addr}`: {e}"))?;
    Ok((id.to_string(), addr))
}

fn parse_opt(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected KEY=VALUE"))?;
    if k.is_empty() {
        return Err(format!("`{s}`: empty key"));
    }
    Ok((k.to_string(), v.to_string()))
}

impl NodeArgs {
    /// This node and every peer, sorted.
    pub fn members(&self) -> Vec<NodeId> {
        let mut m: Vec<NodeId> = self.peers.iter().map(|(id, _)| id.clone()).collect();
        m.push(self.id.clone());
        m.sort();
        m.dedup();
        m
    }

    pub fn events_path(&self) -> PathBuf {
        self.events
            .clone()
            .unwrap_or_else(|| self.data.join("events.jsonl"))
    }

    /// Checks what clap cannot, against the protocol's known bugs and Byzantine modes.
    pub fn validate(&self, known_bugs: &[&str], modes: &[&str]) -> Result<(), NodeError> {
        if let Some(m) = &self.byzantine
            && m != sunder_core::twins::MODE
            && !modes.contains(&m.as_str())
        {
            return Err(NodeError::Config(if modes.is_empty() {
                format!("--byzantine {m}: this target has no Byzantine behaviours but twins")
            } else {
                format!(
                    "--byzantine {m}: unknown; known: twins, {}",
                    modes.join(", ")
                )
            }));
        }
        if self.byzantine.is_none() && !self.byzantine_allies.is_empty() {
            return Err(NodeError::Config(
                "--byzantine-ally given without --byzantine".into(),
            ));
        }
        let members = self.members();
        if let Some(a) = self
            .byzantine_allies
            .iter()
            .find(|a| !members.contains(a) || **a == self.id)
        {
            return Err(NodeError::Config(format!(
                "--byzantine-ally {a}: not another member of the cluster"
            )));
        }
        for b in &self.bugs {
            if !known_bugs.contains(&b.as_str()) {
                return Err(NodeError::UnknownBug {
                    name: b.clone(),
                    known: known_bugs.join(", "),
                });
            }
        }
        if self.peers.iter().any(|(id, _)| *id == self.id) {
            return Err(NodeError::Config(format!(
                "--peer names this node itself ({})",
                self.id
            )));
        }
        if self.members().len() != self.peers.len() + 1 {
            return Err(NodeError::Config("a peer id is given twice".into()));
        }
        if !self.peers.is_empty() && self.peer_listen.is_none() {
            return Err(NodeError::Config(
                "--peer given without --peer-listen".into(),
            ));
        }
        if self.tick_ms == 0 {
            return Err(NodeError::Config("--tick-ms must be at least 1".into()));
        }
        if self.max_clients == 0 || self.max_peer_conns == 0 {
            return Err(NodeError::Config(
                "--max-clients and --max-peer-conns must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The command line that parses back to these settings (for whoever spawns nodes:
    /// `sunder node <TARGET>` followed by these).
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            "--id".to_string(),
            self.id.clone(),
            "--client".into(),
            self.client.to_string(),
        ];
        if let Some(p) = self.peer_listen {
            a.extend(["--peer-listen".into(), p.to_string()]);
        }
        for (id, addr) in &self.peers {
            a.extend(["--peer".into(), format!("{id}={addr}")]);
        }
        a.extend(["--data".into(), self.data.display().to_string()]);
        if let Some(e) = &self.events {
            a.extend(["--events".into(), e.display().to_string()]);
        }
        for b in &self.bugs {
            a.extend(["--bug".into(), b.clone()]);
        }
        for (k, v) in &self.opts {
            a.extend(["--opt".into(), format!("{k}={v}")]);
        }
        if let Some(p) = &self.secret_key {
            a.extend(["--secret-key".into(), p.display().to_string()]);
        }
        if let Some(p) = &self.public_keys {
            a.extend(["--public-keys".into(), p.display().to_string()]);
        }
        if let Some(m) = &self.byzantine {
            a.extend(["--byzantine".into(), m.clone()]);
        }
        for id in &self.byzantine_allies {
            a.extend(["--byzantine-ally".into(), id.clone()]);
        }
        a.extend([
            "--seed".into(),
            self.seed.to_string(),
            "--tick-ms".into(),
            self.tick_ms.to_string(),
            "--max-clients".into(),
            self.max_clients.to_string(),
            "--max-peer-conns".into(),
            self.max_peer_conns.to_string(),
        ]);
        a
    }

    /// What the core is told at creation.
    pub fn core_config(&self) -> CoreConfig {
        CoreConfig {
            id: self.id.clone(),
            members: self.members(),
            bugs: self.bugs.clone(),
            opts: self.opts.iter().cloned().collect::<BTreeMap<_, _>>(),
            seed: derive_seed(self.seed, &self.id),
            tick_ms: self.tick_ms,
            byzantine: self.byzantine.as_ref().map(|mode| Byzantine {
                mode: mode.clone(),
                allies: self.byzantine_allies.clone(),
            }),
        }
    }
}

/// A stable per-node seed: FNV-1a of the id mixed into the run seed by splitmix64, so the
/// same run seed gives every node its own, reproducible stream.
pub fn derive_seed(seed: u64, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = seed ^ h;
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Why a node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("unknown bug `{name}` (this target knows: {known})")]
    UnknownBug { name: String, known: String },
    #[error("bad configuration: {0}")]
    Config(String),
    #[error("cannot bind {what} address {addr}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("durable log")]
    Wal(#[from] WalError),
    #[error("runtime: {0}")]
    Runtime(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        node: NodeArgs,
    }

    #[test]
    fn parses_and_validates() {
        let cli = Cli::try_parse_from([
            "x",
            "--id",
            "n2",
            "--client",
            "127.0.0.1:1",
            "--peer-listen",
            "127.0.0.1:2",
            "--peer",
            "n3=127.0.0.1:4",
            "--peer",
            "n1=127.0.0.1:3",
            "--data",
            "/tmp/d",
            "--opt",
            "batch=off",
        ])
        .unwrap();
        let a = cli.node;
        assert_eq!(a.members(), vec!["n1", "n2", "n3"]);
        let c = a.core_config();
        assert_eq!(c.opt("batch"), Some("off"));
        assert_eq!(c.tick_ms, 10);
        assert!(a.validate(&[], &[]).is_ok());
        assert_eq!(c.byzantine, None);
        let mut b = a.clone();
        b.bugs.push("nope".into());
        assert!(matches!(
            b.validate(&["stale-read"], &[]),
            Err(NodeError::UnknownBug { .. })
        ));
        // A Byzantine part: a known mode, allies that are other members; it round-trips.
        let mut z = a.clone();
        z.byzantine = Some("silent".into());
        z.byzantine_allies = vec!["n3".into()];
        assert!(z.validate(&[], &["silent"]).is_ok());
        let mut tw = z.clone();
        tw.byzantine = Some("twins".into());
        assert!(tw.validate(&[], &[]).is_ok(), "every target has twins");
        let again = Cli::try_parse_from(std::iter::once("x".to_string()).chain(z.to_args()))
            .unwrap()
            .node;
        assert_eq!(
            again.core_config().byzantine,
            Some(Byzantine {
                mode: "silent".into(),
                allies: vec!["n3".into()]
            })
        );
        let err = |z: &NodeArgs, modes: &[&str]| match z.validate(&[], modes) {
            Err(NodeError::Config(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(err(&z, &[]).contains("no Byzantine behaviours"));
        assert!(err(&z, &["forge"]).contains("known: twins, forge"));
        z.byzantine_allies = vec!["n2".into()];
        assert!(err(&z, &["silent"]).contains("not another member"));
        z.byzantine = None;
        assert!(err(&z, &["silent"]).contains("without --byzantine"));
        assert!(
            Cli::try_parse_from([
                "x",
                "--id",
                "n1",
                "--client",
                "127.0.0.1:1",
                "--data",
                "d",
                "--peer",
                "bad"
            ])
            .is_err()
        );
    }

    #[test]
    fn seeds_differ_per_node_and_are_stable() {
        assert_ne!(derive_seed(1, "n1"), derive_seed(1, "n2"));
        assert_ne!(derive_seed(1, "n1"), derive_seed(2, "n1"));
        assert_eq!(derive_seed(7, "n3"), derive_seed(7, "n3"));
    }
}
