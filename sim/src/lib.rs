//! # sunder-sim
//!
//! Deterministic simulation of any pure [`sunder_core::Protocol`] core: the engine behind
//! `sunder sim`. One seeded event queue drives the cores through the same contract the
//! real runtime uses, records the same client history, and runs the same checkers as
//! `sunder test` (linearizability, agreement) plus per-step invariants a protocol adds.
//!
//! ```text
//!   SimConfig + seed ──► fault::schedule (own RNG stream) ──► Schedule (data: shrinkable)
//!        │                                                        │
//!        ▼                                                        ▼
//!   world::World<P> ── one BinaryHeap of (time µs, seq) events ─────────────────────────┐
//!     Tick(node)      local clock (rate %, bumps) ─► Input::Tick { now_ms }              │
//!     Deliver(msg)    delay, drop, duplicate, reorder, grudges ─► Input::Peer            │
//!     Client(c)       client.rs: register ops ─► Input::Client ─► history (sim time ns) │
//!     Fault start/stop  partition / kill (rebuild from persisted records) / pause /     │
//!                       clock / loss, recorded under process "nemesis"                  │
//!        │ Hooks::invariant after every step                                           │
//!        ▼                                                                              │
//!   heal, settle, converge ─► dumps + event streams ─► check.rs ─► Outcome (verdict) ◄──┘
//! ```
//!
//! - [`config`]: [`SimConfig`] and what can be wrong with one ([`SimError`]).
//! - [`fault`]: fault kinds, specs and the seeded [`Schedule`].
//! - [`world`]: [`World`], the event queue and the simulated nodes.
//! - [`client`]: the register workload's simulated clients and their history values.
//! - [`check`]: [`Outcome`], the checkers' verdicts for one seed.
//! - [`targets`]: [`SimTarget`], what a core needs to be simulated (default options,
//!   per-step invariants such as Raft's election safety), implemented for the built-in
//!   cores; [`run_seed::<P>`](run_seed) is the one entry point, and [`RunFn`] its
//!   monomorphised shape for a table of targets. This crate keeps no list of target names:
//!   the harness's table (`sunder::targets`) does.
//! - `pbft` (private): PBFT's per-step invariant and the in-transit tampering that a
//!   signature check must stop (the `tamper` hook of [`Hooks`]).
//! - [`shrink`]: reduce a failing schedule while the violation still shows.

pub mod check;
pub mod client;
pub mod config;
pub mod fault;
mod pbft;
pub mod shrink;
pub mod targets;
pub mod world;

pub use check::{CheckResult, Outcome};
pub use config::{SimConfig, SimError, SimWorkload};
pub use fault::{FaultKind, Schedule};
pub use targets::{RunFn, SimTarget, run_seed, run_with_schedule};
pub use world::{Hooks, World};
