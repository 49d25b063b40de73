//! # sunder-checker
//!
//! Histories, their formats, models, and the checkers that judge a history. Pure and
//! synchronous: no async runtime, no I/O beyond reading and writing history files.
//!
//! ```text
//!   history.jsonl ─┐
//!   history.edn  ──┼─ format::read ──► History ──┬─► linear::check(model) ──► LinearizabilityReport
//!   etcd_NNN.log ──┤   (by content)              ├─► set::check                 (verdict + evidence)
//!   cNN-ok.txt  ───┘                             └─► agreement::check (node dumps)
//! ```
//!
//! - [`history`]: events (`invoke`/`ok`/`fail`/`info`), processes, the in-memory history.
//! - [`verdict`]: valid / invalid / unknown and how they combine.
//! - [`linear`]: the linearizability checker and its report types.

pub mod history;
pub mod linear;
pub mod verdict;

pub use history::{Event, EventType, History, Process};
pub use verdict::Verdict;
