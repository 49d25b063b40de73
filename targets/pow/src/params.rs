//! The chain's parameters (`--opt`), the genesis block they define, and the retarget rule.
//!
//! | opt | default | meaning |
//! |---|---|---|
//! | `hashrate` | 2000 | hashes per second this node tries (0: it does not mine) |
//! | `byzantine_hashrate` | `hashrate` | hashes per second of a node run with `--byzantine` (byzantine.rs); 0 counts as 1 |
//! | `block_ms` | 500 | the block interval the whole cluster aims at |
//! | `retarget` | 10 | blocks between two target adjustments |
//! | `reward` | 50 | what each block's coinbase mints for its miner |
//! | `confirmations` | 3 | depth at which a transfer is acknowledged and reads are taken |
//! | `max_future_ms` | 2000 | how far ahead of the local clock a block's timestamp may be |
//! | `tx_ttl` | 20 | blocks after the tip in which a client's transfer may be included |
//! | `key_seed` | 0 | the seed every account key is derived from (tx.rs) |
//! | `initial_work` | 4000 | expected hashes per block at genesis (the genesis target) |
//!
//! Every node must be given the same values for all but the two hash rates: the genesis
//! block (its target) and the validity rules come from them. `hashrate` is each honest
//! node's own; `byzantine_hashrate` is what a Byzantine node mines at instead, so that a
//! run sets the attackers' share of the hash power, nb·Hb / (nb·Hb + nh·H), with one
//! setting. A value that is not a whole number is refused at start like
//! every opt's; 0 is raised to 1, as other opts are raised to their least sensible value
//! (an attacker that does not mine is no attacker: give the run fewer Byzantine nodes).
//!
//! **Initial target.** Genesis carries target `u128::MAX / initial_work`. The default,
//! 4000 hashes, is four nodes at the default rate (4 × 2000 hashes per second) for one
//! block interval (500 ms): three such nodes find a block every 667 ms on average, five
//! every 400 ms. The retarget corrects for the real number from the first window on.
//!
//! **Retarget.** A block whose height `h` is a multiple of `retarget` carries a new target,
//! computed from the timestamps of its parent (height `h-1`) and of the block at height
//! `max(h - 1 - retarget, 1)`, `retarget` intervals back (genesis is skipped: its
//! timestamp is 0, not a mining time, so the first window is shorter):
//! `target × actual / expected`, where `expected = block_ms × (height difference)` and
//! `actual` is the timestamp difference clamped to `[expected / 4, expected × 4]` (as
//! Bitcoin's factor of four). Every other block carries its parent's target.

use crate::block::{Block, Header};
use crate::hash::Hash;
use sunder_core::{CoreConfig, OptKind, OptSpec};
use sunder_wire::Val;

/// The `--opt` keys this target accepts, all whole numbers.
pub const OPTS: &[OptSpec] = &[
    num("hashrate"),
    num("byzantine_hashrate"),
    num("block_ms"),
    num("retarget"),
    num("reward"),
    num("confirmations"),
    num("max_future_ms"),
    num("tx_ttl"),
    num("key_seed"),
    num("initial_work"),
];

const fn num(key: &'static str) -> OptSpec {
    OptSpec {
        key,
        kind: OptKind::Number,
    }
}

/// The chain's parameters, read from the opts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub hashrate: u64,
    /// The hash rate of a Byzantine node (`None`: `hashrate`).
    pub byzantine_hashrate: Option<u64>,
    pub block_ms: u64,
    pub retarget: u64,
    pub reward: Val,
    pub confirmations: u64,
    pub max_future_ms: u64,
    pub tx_ttl: u64,
    pub key_seed: u64,
    pub initial_work: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            hashrate: 2000,
            byzantine_hashrate: None,
            block_ms: 500,
            retarget: 10,
            reward: 50,
            confirmations: 3,
            max_future_ms: 2000,
            tx_ttl: 20,
            key_seed: 0,
            initial_work: 4000,
        }
    }
}

impl Params {
    /// The parameters of `config`'s opts. The runtime checked every opt against [`OPTS`]
    /// before building the core (an unknown key or a value that is not a number is a
    /// start-up error there); values that would make no sense are raised to their least
    /// sensible value (a retarget every 0 blocks is every block).
    pub fn from_config(config: &CoreConfig) -> Params {
        let d = Params::default();
        let opt = |k: &str, v: u64| sunder_core::opts::value(OPTS, config, k, v);
        Params {
            hashrate: opt("hashrate", d.hashrate),
            byzantine_hashrate: config
                .opt("byzantine_hashrate")
                .map(|_| opt("byzantine_hashrate", 1).max(1)),
            block_ms: opt("block_ms", d.block_ms).max(1),
            retarget: opt("retarget", d.retarget).max(1),
            reward: opt("reward", d.reward as u64).min(sunder_wire::bank::MAX_AMOUNT as u64) as Val,
            confirmations: opt("confirmations", d.confirmations).max(1),
            max_future_ms: opt("max_future_ms", d.max_future_ms),
            tx_ttl: opt("tx_ttl", d.tx_ttl).max(1),
            key_seed: opt("key_seed", d.key_seed),
            initial_work: opt("initial_work", d.initial_work).max(1),
        }
    }

    /// The hash rate of this node: `byzantine_hashrate` (else `hashrate`) for a Byzantine
    /// one.
    pub fn hashrate_of(&self, byzantine: bool) -> u64 {
        match self.byzantine_hashrate {
            Some(h) if byzantine => h,
            _ => self.hashrate,
        }
    }

    pub fn initial_target(&self) -> u128 {
        u128::MAX / self.initial_work.max(1) as u128
    }

    /// The genesis block: identical on every node given the same opts.
    pub fn genesis(&self) -> Block {
        Block {
            header: Header {
                parent: Hash::ZERO,
                height: 0,
                merkle: Block::merkle_of(&[]),
                timestamp_ms: 0,
                target: self.initial_target(),
                miner: u32::MAX,
                nonce: 0,
            },
            txs: Vec::new(),
        }
    }

    /// Whether the block at `height` carries a new target.
    pub fn is_retarget(&self, height: u64) -> bool {
        height > 0 && height % self.retarget == 0
    }

    /// The height of the first block of the window that retargets the block at `height`.
    pub fn window_start(&self, height: u64) -> u64 {
        height.saturating_sub(self.retarget + 1).max(1)
    }

    /// The adjusted target: `target × actual / expected` over `intervals` block intervals
    /// that took `span_ms`, the factor clamped to [1/4, 4].
    pub fn adjust(&self, target: u128, span_ms: u64, intervals: u64) -> u128 {
        if intervals == 0 {
            return target;
        }
        let expected = self.block_ms as u128 * intervals as u128;
        let actual = (span_ms as u128).clamp((expected / 4).max(1), expected * 4);
        let new = match target.checked_mul(actual) {
            Some(p) => p / expected,
            None => (target / expected).saturating_mul(actual),
        };
        new.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_moves_with_the_block_rate_at_most_fourfold() {
        let p = Params::default();
        let t = 1u128 << 100;
        assert_eq!(p.adjust(t, 4500, 9), t, "on schedule");
        assert_eq!(p.adjust(t, 9000, 9), 2 * t, "twice slow: twice easier");
        assert_eq!(p.adjust(t, 2250, 9), t / 2);
        assert_eq!(p.adjust(t, 1_000_000, 9), 4 * t, "clamped");
        assert_eq!(p.adjust(t, 0, 9), t / 4, "clamped");
        assert_eq!(p.adjust(u128::MAX, 1_000_000, 9), u128::MAX, "saturates");
        assert_eq!(p.adjust(t, 0, 0), t);
        assert!(p.is_retarget(10) && p.is_retarget(20) && !p.is_retarget(0) && !p.is_retarget(11));
        assert_eq!((p.window_start(10), p.window_start(20)), (1, 9));
    }

    #[test]
    fn genesis_depends_on_the_opts_only() {
        let p = Params::default();
        assert_eq!(p.genesis(), Params::default().genesis());
        let own_rate = Params {
            hashrate: 1,
            ..Params::default()
        };
        assert_eq!(
            p.genesis(),
            own_rate.genesis(),
            "a node's hash rate is its own"
        );
        let q = Params {
            initial_work: 1000,
            ..Params::default()
        };
        assert_ne!(p.genesis().hash(), q.genesis().hash());
    }
}
