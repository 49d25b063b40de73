//! # sunder-paxos
//!
//! A Multi-Paxos replicated key-value store, the target `sunder node paxos`. The core is
//! pure: the `targets/node` runtime feeds it ticks, peer messages and client requests, and
//! persists, sends and replies what it returns, in that order.
//!
//! ```text
//!  client op ──► Paxos (core.rs) ── leader? no ──► not-leader + hint
//!                  │ yes
//!                  ▼
//!   Candidate (candidate.rs)  phase 1 once: Prepare(ballot, from_slot) ──► Acceptor
//!                  │ quorum of Promises (accepted values ≥ from_slot)      (acceptor.rs,
//!                  ▼ re-propose highest-ballot values, no-ops in holes      durable via
//!   Leader (leader.rs)        phase 2 per slot: Accept ──► Acceptor          Record,
//!                  │ quorum of Accepted                                      record.rs)
//!                  ▼
//!   Learner (learner.rs)  chosen slots ──► applied in slot order to sunder_core::kv
//!                  │                        (followers learn from the piggybacked commit
//!                  ▼                         index or by CatchUp / Chosen)
//!   client reply (the slot's result: reads go through the log too)
//! ```
//!
//! Ballots (ballot.rs) are `(round, node)` compared as numbers; each node owns the rounds
//! congruent to its index, so a round names one proposer and doubles as the "term" of
//! `status` and of the `leader` event. A leader gives way to a higher ballot that a rival
//! gathered, or when it stops hearing a majority; a refusal from a lone bidder (a node
//! back from a partition with bids raised while cut off) makes it bid higher instead, so
//! that such a node cannot leave the cluster leaderless. Planted bugs (bugs.rs) are switched on with `--bug`.
//! msg.rs holds the peer messages and the slot values; validate.rs drops peer messages
//! that are malformed or hostile (ballots naming no member, slots far beyond the window)
//! before the core acts on them.

mod acceptor;
mod ballot;
pub mod bugs;
mod candidate;
mod core;
mod leader;
mod learner;
mod msg;
mod record;
mod validate;

pub use ballot::Ballot;
pub use core::Paxos;
pub use msg::{Command, Entry, Msg};
pub use record::Record;
pub use validate::{MAX_ROUND, SLOT_WINDOW};
