//! A deterministic simulation of a Paxos cluster: cores wired through a seeded message
//! queue with delays, drops, partitions, pauses and crashes (a crash rebuilds the core from
//! the records it had persisted), clients sending random register operations, and checks
//! on what came out.
//!
//! ```text
//!   clients ──► Sim::queue (seeded delays/drops, partitions, pauses) ──► Paxos cores
//!      ▲                                                                   │ persist ──► disk
//!      └──────────────── replies ◄─────────────────────────────────────────┘ events ──► agreement
//!   end: global chosen log ──► replay on a fresh kv ──► every ok reply must match, in real-time order
//! ```

pub mod cluster;

pub use cluster::{Faults, Report, Sim};
