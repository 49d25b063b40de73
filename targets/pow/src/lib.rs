//! # sunder-pow
//!
//! A proof-of-work blockchain (issue #14), the target `sunder node pow`: nodes mine blocks
//! of signed bank transfers at a set hash rate, gossip blocks and transfers, follow the
//! chain with the most cumulative work and reorganise when a heavier fork arrives. The
//! core is pure: time comes in ticks (`now_ms`), the nonce search starts from the seeded
//! RNG, and the `targets/node` runtime or the simulator persists, sends and replies.
//!
//! ```text
//!  Tick(now_ms) ─► Miner (miner.rs): hashrate × elapsed nonces on a template ──┐ found
//!                  future blocks whose time came ─────────────────────────────┤
//!  Peer Block ────────────────────────────────────────────────────────────────►│
//!                                                                              ▼
//!              validate.rs: body (size, coinbase, Merkle, PoW, signatures) ─ parent? ─ no ─► orphans
//!                           link (height, retarget, timestamp ≤ now+max_future) ─ future ─► aside
//!                           state (ledger.rs: nonces, funds, expiry on the parent's state)
//!                                          │ valid: persist Record::Block, relay
//!                                          ▼
//!              Tree (tree.rs): more work than the tip? ─► switch_to ─► abandoned txs ─► Mempool
//!                                          │                            (mempool.rs)
//!                                          ▼
//!              settle clients: transfer `ok` once `confirmations` deep; balances from the
//!              state at the confirmed block
//!
//!  Client transfer ─► sign (tx.rs, keys from key_seed) ─► Mempool ─► gossip Msg::Tx
//! ```
//!
//! - [`hash`]: [`Hash`], proof-of-work arithmetic ([`hash::work_of`], [`hash::meets`]),
//!   the Merkle root.
//! - [`block`]: [`Block`], [`Header`] and the header's byte layout.
//! - [`tx`]: [`Tx`], [`Transfer`], account keys ([`Keyring`]).
//! - [`params`]: [`Params`], the `--opt`s ([`OPTS`]), genesis and the retarget rule.
//! - [`ledger`]: [`Ledger`], balances and nonces at one block.
//! - mempool.rs, tree.rs (the block tree and best chain), orphans.rs (blocks waiting
//!   for a parent or for the clock), miner.rs (the throttled search).
//! - validate.rs: every check of a peer's block and transfer ([`BlockError`]).
//! - core.rs: [`Pow`], the `Protocol` implementation; msg.rs [`Msg`]; record.rs
//!   [`Record`]; [`bugs`]: the planted bugs.
//! - [`byzantine`]: the Byzantine miners (`--byzantine-mode withhold|double-spend`):
//!   selfish mining and the double-spend, on valid blocks.
//!
//! **Time.** `now_ms` stamps mined blocks and bounds how far ahead a received block's
//! timestamp may be (`max_future_ms`): a node whose clock is skewed mines blocks others
//! keep aside, and judges others' blocks against its own skewed clock. It also paces the
//! miner. Nothing else reads it: there are no timeouts.
//!
//! **Confirmation.** The tip is at depth 1; a block at height h has depth
//! `tip height − h + 1`. A transfer is acknowledged `ok` when its block is at depth ≥
//! `confirmations` on this node's best chain; `balances` reads the state after the deepest
//! such block. A transfer is refused with `insufficient-funds` (definite) when submitted,
//! if the state the tip and the mempool lead to lacks the funds; it fails definitely with
//! `nonce-taken` or `tx-expired` once another transfer with its nonce, or its expiry
//! height, is confirmed without it.

pub mod block;
pub mod bugs;
pub mod byzantine;
mod core;
pub mod forge;
pub mod hash;
pub mod ledger;
mod mempool;
mod miner;
mod msg;
mod orphans;
pub mod params;
mod record;
mod tree;
pub mod tx;
mod validate;

#[cfg(test)]
mod tests;

pub use block::{Block, Header};
pub use core::{Counters, NONCE_TAKEN, Pow, TX_EXPIRED};
pub use hash::Hash;
pub use ledger::{Ledger, TxError};
pub use msg::{MAX_BLOCKS_PER_MSG, Msg};
pub use params::{OPTS, Params};
pub use record::Record;
pub use tree::Node;
pub use tx::{Keyring, Transfer, Tx};
pub use validate::{BlockError, MAX_TXS, TransferError};
