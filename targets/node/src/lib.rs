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
//! - [`protocol`]: the core ⇄ runtime contract ([`Protocol`], [`Input`], [`Output`]).
//! - [`args`]: [`NodeArgs`] (the `sunder node` command line) and [`NodeError`].
//! - [`runtime`]: [`run_node`], the driver loop.
//! - [`client`], [`peer`]: the two TCP faces of a node.
//! - [`wal`]: the append-only, checksummed, fsynced log; [`crc32`] its checksum.
//! - [`line`]: length-capped line reading for both.
//! - [`events`]: the structured event stream the controller reads.
//! - [`kv`]: the key-value state machine every built-in target applies commands to.
//! - [`opts`]: the `--opt` settings a protocol accepts, checked by the node and the
//!   controller against the same list.

pub mod args;
pub mod client;
pub mod crc32;
pub mod events;
pub mod kv;
pub mod line;
pub mod opts;
pub mod peer;
pub mod protocol;
pub mod runtime;
pub mod wal;

pub use args::{NodeArgs, NodeError};
pub use kv::{KvError, KvState};
pub use opts::{OptError, OptKind, OptSpec};
pub use protocol::{CoreConfig, Input, NodeId, Output, Protocol, ReqToken};
pub use runtime::{monotonic_ms, run_node};
pub use wal::{Wal, WalError};
