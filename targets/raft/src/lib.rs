//! # sunder-raft
//!
//! A durable Raft key-value store (Ongaro & Ousterhout §5, with pre-vote, read-index,
//! batching, pipelining and snapshots from the thesis), written as a pure state machine
//! that `sunder_node::run_node` drives: `sunder node raft ...`.
//!
//! ```text
//!            Input (tick / peer Msg / client Op)
//!                         │
//!                 core::Raft::step ── validate.rs     drop malformed / hostile peer messages
//!                         │         ├ role.rs         Follower / PreCandidate / Candidate /
//!                         │         │                 Leader, each with its own state
//!                         │         ├ leader.rs       a leader's progress, requests, rounds
//!                         │         ├ election.rs     pre-vote, vote, become leader
//!                         │         ├ replication.rs  AppendEntries, backtracking, commit
//!                         │         ├ read_index.rs   linearizable reads (+ planted shortcuts)
//!                         │         └ snapshot.rs     compaction, InstallSnapshot
//!                         ▼
//!   Output: compact/persist Records ──► fsync (runtime)       record.rs: replay on restart
//!           send Msgs ──► peers                               msg.rs: Entry, Msg, Snapshot
//!           replies ──► clients (after the fsync)             log.rs, progress.rs, kv.rs
//!             (an ok update says where it committed)          digest.rs: the snapshot's
//!                                                              chain and terms, for dumps
//!           events ──► leader / vote / commit lines
//! ```
//!
//! Options (`--opt K=V`): `batch=off` (one entry per AppendEntries and one AppendEntries
//! in flight per follower, so one entry per follower fsync), `election_ms` (300),
//! `election_jitter_ms` (spread of the timeout above `election_ms`; default `election_ms`),
//! `heartbeat_ms` (50), `max_batch` (512), `max_inflight` (4), `snapshot` (compact every N
//! applied entries, 100000; 0 = never), `lease_ms`.
//!
//! Planted bugs (`--bug NAME`), each a mistake real implementations have made:
//! - `stale-read`: the leader answers reads from its own state without a heartbeat round
//!   (and, like the paper's Raft, has no check-quorum: it believes it leads until it
//!   hears of a newer term).
//! - `early-ack`: writes (not cas) are acknowledged once in the leader's own durable log.
//! - `forget-vote`: the vote is never written to disk, so a restarted node can vote twice
//!   in one term. The runtime announces the term and vote a node read back at every start
//!   (`recovered` events, from [`Protocol::recovered_vote`](sunder_core::Protocol)), and
//!   the agreement checker finds the vote missing at the first restart after one.
//! - `lease-read`: reads are served locally while a lease measured on the leader's own
//!   clock (`now_ms` of its ticks: CLOCK_MONOTONIC, which libfaketime can step back or
//!   slow) has not run out.
//! - `no-fsync` and `reply-before-persist`, acted out by the node runtime
//!   ([`DISK_BUGS`](sunder_core::protocol::DISK_BUGS)): records written but never fsynced,
//!   or fsynced only after the votes and acks that depend on them have left. Only disk
//!   faults (`--nemesis lose-unsynced`) show them; the simulator refuses them.

//!
//! ## Testing it
//!
//! ```text
//! cargo test -p sunder-raft                  # unit tests on emitted outputs
//! sunder sim --target raft --seeds 1..10000   # deterministic simulation (crate sunder-sim)
//! sunder sim --target raft --seeds 1..1000 --bug forget-vote --fail-fast
//!
//! # nightly-style: correct build, all process and network faults, 10 seeds
//! for s in $(seq 1 10); do sunder test --target raft --nodes 5 --nemesis partition,kill,pause \
//!     --time-limit 90s --opt snapshot=500 --seed $s || break; done
//! # planted bugs: stale-read and early-ack, caught by linearizability
//! sunder test --target raft --nodes 5 --nemesis partition --time-limit 120s \
//!     --concurrency 20 --op-timeout 300ms --bug stale-read --seed S
//! # no-fsync, reply-before-persist: power cuts every 500 ms (root: the disk filesystem)
//! sunder test --target raft --nemesis lose-unsynced --nemesis-interval 500ms \
//!     --fault-lengths fixed --time-limit 120s --bug no-fsync --seed S
//! # lease-read: the leader cut off while its clock is stepped back (needs libfaketime)
//! sunder test --target raft --nodes 5 --nemesis clock,partition --nemesis-interval 2s \
//!     --time-limit 120s --concurrency 20 --op-timeout 300ms --bug lease-read --seed S
//!
//! # benchmark: batching on and off, 3 nodes, 32 clients
//! cargo build --release -p sunder -p sunder-raft --examples && \
//!     target/release/examples/bench target/release/sunder 10 32
//! ```
//!
//! The simulation (`sunder sim`, crate `sunder-sim`) drives these cores through a seeded
//! event queue with every fault kind, checks election safety after every step, and runs
//! the linearizability and agreement checkers of a real run at the end.

mod config;
mod core;
pub mod digest;
mod election;
pub mod kv;
mod leader;
pub mod log;
pub mod msg;
mod progress;
mod read_index;
pub mod record;
mod replication;
mod role;
mod snapshot;
mod validate;

pub use crate::config::BUGS;
pub use crate::core::Raft;
pub use crate::msg::{Command, Entry, Msg, Snapshot};
pub use crate::record::Record;
pub use crate::role::Role;
pub use crate::validate::MAX_NUMBER;
