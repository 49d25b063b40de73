//! # sunder-pbft
//!
//! Castro and Liskov's Practical Byzantine Fault Tolerance, a replicated key-value store
//! of n = 3f+1 replicas (any n ≥ 1: f = ⌊(n-1)/3⌋, quorums of ⌈(n+f+1)/2⌉). The core is
//! pure: the runtime or the simulator (`sunder-sim`) feeds it ticks, peer messages and
//! client requests, and persists, sends and replies what it returns, in that order.
//!
//! ```text
//!  client op ─► Pbft (core.rs) ── backup? ─► Forward to the primary, start the view timer
//!                 │ primary (view mod n)
//!                 ▼ batch (on by default; --opt batch=off)
//!   PRE-PREPARE(v, n, digest, batch) ─► backups ─► PREPARE ─► all
//!                 │ pre-prepare + 2f prepares: prepared ─► COMMIT ─► all
//!                 ▼ 2f+1 commits: committed ─► execute in seq order on sunder_core::kv,
//!                 │                            reply on the token the request came on
//!                 ▼ every K (--opt checkpoint=K): CHECKPOINT(n, state digest)
//!   2f+1 matching: stable ─► discard the log below, compact the disk (record.rs)
//!
//!   timer expires ─► VIEW-CHANGE(v+1, stable proof, prepared certificates)
//!   2f+1 of them at the new primary ─► NEW-VIEW(proof, re-issued pre-prepares, nulls)
//!   (viewchange.rs: the same set O computed by the primary and checked by backups)
//!
//!   STATUS every status_ms ─► a peer behind asks: FETCH (commit certificates),
//!   FETCH-STATE (snapshot + 2f+1 checkpoint proof), FETCH-NEW-VIEW (the current view)
//! ```
//!
//! Every message is signed with ed25519 (crypto.rs); one whose signature fails or whose
//! signer is not the peer it came from (a new-view excepted: any peer may relay it) is
//! dropped and counted (`bad_signatures` in `status`). validate.rs bounds every message
//! before the core acts on it (`rejected`).
//! msg.rs holds the messages; bugs.rs the planted bugs (`--bug`); byzantine.rs the
//! behaviours a Byzantine replica acts out (`--byzantine-mode`: the honest core's output,
//! distorted after each step); keyfile.rs the run's keys and their files.
//!
//! Clients: the node runtime builds a replica with the controller's keys
//! ([`Pbft::with_keys`], files read by `keyfile.rs`): a data request must carry its client's
//! id, timestamp and ed25519 signature (`Input::Signed`; `sunder_wire::bft`), checked on
//! arrival, when relayed to the primary and inside every pre-prepare (bad ones dropped and
//! counted: `bad_client_signatures` in `status`), and every reply is signed by its replica.
//! Client signatures are checked under ZIP 215's rule, a burst of inputs at a time
//! (clientsig.rs: one batch check for all the burst's requests, the same verdicts as one
//! check each).
//! The simulator uses [`Protocol::recover`](sunder_core::Protocol::recover): the unsigned
//! mode, where a client is its connection number and a request's timestamp its id, and
//! replica keys are derived from `--opt key_seed`.

pub mod bugs;
pub mod byzantine;
mod clientsig;
mod core;
pub mod crypto;
pub mod keyfile;
mod msg;
mod record;
mod validate;
mod viewchange;

pub use crate::core::{Executed, MAX_BATCH, OPTS, Pbft};
pub use crypto::Keys;
pub use msg::{Body, CommitCert, Digest, PreparedCert, Req, Signed, Snapshot};
pub use record::Record;
pub use validate::MAX_NUMBER;
