//! # sunder-maelstrom
//!
//! Runs programs written for Jepsen's Maelstrom (JSON lines on stdin/stdout) under sunder:
//! sunder is their network, their services and their clients, records the history in
//! sunder's format and checks it. `sunder test --maelstrom ./node -w WORKLOAD` is the
//! entry point; the harness writes the run directory around [`run::run`]'s [`run::Outcome`].
//!
//! ```text
//!   Config ──► run::run ──► process (n1..nN: init/init_ok, stderr → nodes/<id>.log,
//!   (config)      │                    SUNDER_DATA_DIR = nodes/<id>/)
//!                 ├──► router ◄──► network (seeded latency, loss, duplication, cut links)
//!                 │       ├──────► services (lin-kv, seq-kv, lww-kv, lin-tso)
//!                 │       └──────► messages (each message's fate ─► writer thread ─► messages.jsonl)
//!                 ├──► clients c1..cK (workload: requests, replies → history.jsonl)
//!                 ├──► nemesis schedule (partition, kill + restart, pause)
//!                 └──► heal, final reads ──► checkers ──► Outcome (verdicts, message counts,
//!                                                              what messages.jsonl holds)
//! ```
//!
//! - [`counts`]: message counts by client, server and service ends.
//! - [`message`]: the envelope, bounded parsing, error codes and the definite rule.
//! - [`messages`]: `messages.jsonl`, one record per message and its fate (sent and
//!   delivered times, ends, type, ids), written off the router's path, bounded, read back
//!   for the report's message diagram.
//! - [`config`]: flags as a validated [`config::Config`]; workloads, latency, topology.
//! - [`network`]: the network's seeded decisions (pure).
//! - [`services`]: the services by name: `lin-kv`, `seq-kv`, `lww-kv`, `lin-tso` (pure).
//! - [`kv_op`]: a kv service request (read, write, cas) and its outcome on a value.
//! - [`seq_kv`]: `seq-kv`, sequentially consistent: stale reads, monotonic per caller.
//! - [`lww_kv`]: `lww-kv`, last-write-wins replicas with seeded propagation delay.
//! - [`nemesis`]: the seeded fault schedule (pure).
//! - [`workload`]: each workload's requests and how replies become completions (pure).
//! - [`checkers`]: each workload's checkers over a history (pure).
//! - [`kafka_checker`]: kafka's: offsets, skips, order, committed offsets, lost (pure).
//! - [`process`]: one node process: spawn, init handshake, line reader, signals.
//! - [`run`]: the run itself (tokio): router, clients, nemesis, final phase.

pub mod checkers;
pub mod config;
pub mod counts;
pub mod kafka_checker;
pub mod kv_op;
pub mod lww_kv;
pub mod message;
pub mod messages;
pub mod nemesis;
pub mod network;
pub mod process;
pub mod run;
pub mod seq_kv;
pub mod services;
pub mod workload;

pub use config::{Config, ConfigError, Workload};
pub use run::{Outcome, RunError};
