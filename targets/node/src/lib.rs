//! # sunder-node
//!
//! The runtime shared by sunder's built-in targets. A target is a pure [`Protocol`] core;
//! [`run_node`] gives it a client server, a peer transport, a durable log, a clock and an
//! event stream.
//!
//! ```text
//!   clients ──JSON lines──► client.rs ─┐                      ┌─► wal.rs     (fsync first)
//!   peers   ──JSON lines──► peer.rs  ──┼─► runtime.rs driver ─┼─► peer.rs    ──► peers
//!   tick timer ────────────────────────┘    core.step()       ├─► client.rs  ──► clients
//!                                                              └─► events.rs ──► --events
//! ```
//!
//! - [`protocol`], [`kv`]: the core ⇄ runtime contract ([`Protocol`], [`Input`], [`Output`])
//!   and the key-value state machine, and [`opts`] (the `--opt` settings a protocol
//!   accepts), re-exported from the runtime-free `sunder-core`.
//! - [`args`]: [`NodeArgs`] (the `sunder node` command line) and [`NodeError`].
//! - [`runtime`]: [`run_node`] (and [`run_node_with`], for a core built from more than its
//!   command line), the driver loop.
//! - [`client`], [`peer`]: the two TCP faces of a node.
//! - [`wal`]: the append-only, checksummed, fsynced log; [`crc32`] its checksum.
//! - [`line`]: length-capped line reading for both.
//! - [`events`]: the structured event stream the controller reads.

pub mod args;
pub mod client;
pub mod crc32;
pub mod events;
pub mod line;
pub mod peer;
pub mod runtime;
pub mod wal;

pub use args::{NodeArgs, NodeError};
pub use runtime::{monotonic_ms, run_node, run_node_with};
pub use sunder_core::{CoreConfig, Input, KvError, KvState, NodeId, Output, Protocol, ReqToken};
pub use sunder_core::{OptError, OptKind, OptSpec};
pub use sunder_core::{kv, opts, protocol, twins};
pub use wal::{Wal, WalError};
