//! # sunder-checker
//!
//! Histories, their formats, models, and the checkers that judge a history. Pure and
//! synchronous: no async runtime, no I/O beyond reading and writing history files.
//! Its one dependency of ours is `sunder-wire` (serde types only): the agreement checker
//! reads node dumps and event streams as the types the nodes write them with.
//!
//! ```text
//!   history.jsonl ─┐
//!   history.edn  ──┼─ format::read ──► History ──┬─► linear::check(model) ──► LinearizabilityReport
//!   etcd_NNN.log ──┤   (by content)              ├─► set::check, bank::check    (verdict + evidence)
//!   cNN-ok.txt  ───┘                             ├─► stats::compute
//!                                                ├─► agreement::check (node dumps, events,
//!                                                │     the run's membership)
//!                                                └   chain::check (a pow run's dumps alone)
//! ```
//!
//! - [`history`]: events (`invoke`/`ok`/`fail`/`info`), processes, the in-memory history.
//! - [`format`]: readers and writers for every history format, chosen by content.
//! - [`model`]: sequential specifications (register, cas-register, key-value, ...).
//! - [`linear`]: the linearizability checker and its report types.
//! - [`set`], [`bank`], [`stats`], [`agreement`]: the other checkers; [`chain`]: a
//!   proof-of-work chain's own rules, replayed from the nodes' dumps.
//! - [`verdict`]: valid / invalid / unknown and how they combine.
//! - [`anomaly`]: when a run first went wrong, from a checker's evidence.

pub mod agreement;
pub mod anomaly;
pub mod bank;
pub mod chain;
pub mod format;
pub mod history;
pub mod html;
pub mod linear;
pub mod model;
pub mod set;
pub mod stats;
pub mod verdict;

pub use history::{Committed, Event, EventType, History, Process};
pub use verdict::Verdict;
