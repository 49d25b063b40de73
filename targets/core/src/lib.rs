//! # sunder-core
//!
//! What a pure protocol core is, with no runtime attached: the [`Protocol`] trait, the
//! [`Input`]s it is fed and the [`Output`] it fills, and the key-value state machine every
//! built-in target applies committed commands to. Synchronous and free of I/O: the real
//! runtime (`sunder-node`: sockets, fsync, clocks) and the deterministic simulator
//! (`sunder-sim`: a seeded event queue) both drive cores through this contract.
//!
//! ```text
//!   sunder-node runtime ─┐                     ┌─► Output { compact, persist, send, reply, events }
//!                        ├─ Input ─► Protocol::step
//!   sunder-sim  queue  ──┘                     └─  Protocol::recover(config, persisted records)
//! ```
//!
//! - [`protocol`]: [`Protocol`], [`Input`], [`Output`], [`CoreConfig`] (with a Byzantine
//!   node's [`Byzantine`] part), [`NodeId`], [`ReqToken`].
//! - [`kv`]: [`KvState`] and [`KvError`], the register/set store and its client responses.
//! - [`twins`]: [`twins::Twins`], one Byzantine identity made of two honest cores
//!   (`--byzantine-mode twins`, for every core).
//! - [`opts`]: the `--opt` settings a protocol accepts ([`OptSpec`]), checked by the node and
//!   the controller against the same list.

pub mod kv;
pub mod opts;
pub mod protocol;
pub mod twins;

pub use kv::{KvError, KvState};
pub use opts::{OptError, OptKind, OptSpec};
pub use protocol::{Byzantine, CoreConfig, Input, NodeId, Output, Protocol, ReqToken};
