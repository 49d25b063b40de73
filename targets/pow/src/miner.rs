//! The throttled miner: at most `hashrate` real SHA-256 header hashes per second of the
//! local clock, so that a cluster of miners keeps the machine's CPU bounded.
//!
//! On each tick the miner may try `hashrate × elapsed_ms / 1000` nonces; the fraction is
//! carried to the next tick, and `elapsed_ms` is capped at [`MAX_ELAPSED_MS`] so that a
//! node resumed after a pause (or a clock bumped forward) does not mine a burst. The
//! search over a template starts at a nonce drawn from the core's seeded RNG, so two
//! nodes mining the same template do not repeat each other's work, and a run replays.

use crate::block::{Block, Header};
use crate::hash::meets;
use crate::tx::Tx;

/// Longest stretch of local time one tick is credited with.
pub const MAX_ELAPSED_MS: u64 = 250;

/// The block being mined: its header (nonce and timestamp move) and transactions.
#[derive(Debug, Clone)]
struct Template {
    header: Header,
    txs: Vec<Tx>,
    /// The least timestamp the block may carry (its parent's plus one).
    min_ts: u64,
    /// The header's timestamp stays as set (a forger's, forge.rs), not the clock's.
    fixed_ts: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Miner {
    last_ms: Option<u64>,
    /// Thousandths of a hash owed from earlier ticks.
    carry: u64,
    template: Option<Template>,
    /// Hashes tried since start (for tests and the dump).
    pub hashes: u64,
}

impl Miner {
    /// How many hashes this tick may try at `hashrate` hashes per second.
    pub fn budget(&mut self, now_ms: u64, hashrate: u64) -> u64 {
        let elapsed = self
            .last_ms
            .map_or(0, |l| now_ms.saturating_sub(l).min(MAX_ELAPSED_MS));
        self.last_ms = Some(now_ms);
        let milli = self.carry.saturating_add(hashrate.saturating_mul(elapsed));
        self.carry = milli % 1000;
        milli / 1000
    }

    /// Forgets the template (the tip or the mempool changed).
    pub fn invalidate(&mut self) {
        self.template = None;
    }

    pub fn has_template(&self) -> bool {
        self.template.is_some()
    }

    /// The parent of the block being mined, if any.
    pub fn parent(&self) -> Option<crate::hash::Hash> {
        self.template.as_ref().map(|t| t.header.parent)
    }

    /// Starts mining `header` (its nonce is where the search starts) with `txs`.
    pub fn set_template(&mut self, header: Header, txs: Vec<Tx>, min_ts: u64) {
        self.template = Some(Template {
            header,
            txs,
            min_ts,
            fixed_ts: false,
        });
    }

    /// Starts mining `header` with `txs`, its timestamp kept as it is.
    pub fn set_template_at(&mut self, header: Header, txs: Vec<Tx>) {
        self.template = Some(Template {
            min_ts: header.timestamp_ms,
            header,
            txs,
            fixed_ts: true,
        });
    }

    /// Tries up to `budget` nonces with the timestamp `now_ms` (or the least allowed);
    /// a block whose hash meets its target, if one is found.
    pub fn search(&mut self, budget: u64, now_ms: u64) -> Option<Block> {
        let t = self.template.as_mut()?;
        if !t.fixed_ts {
            t.header.timestamp_ms = now_ms.max(t.min_ts);
        }
        for _ in 0..budget {
            self.hashes += 1;
            if meets(&t.header.hash(), t.header.target) {
                let block = Block {
                    header: t.header.clone(),
                    txs: t.txs.clone(),
                };
                self.template = None;
                return Some(block);
            }
            t.header.nonce = t.header.nonce.wrapping_add(1);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;

    #[test]
    fn the_budget_follows_the_clock_carries_fractions_and_caps_pauses() {
        let mut m = Miner::default();
        assert_eq!(m.budget(1000, 3), 0, "the first tick only starts the clock");
        // 3 hashes per second: 100 ms is 0.3 hash; ten such ticks make 3.
        let total: u64 = (1..=10).map(|i| m.budget(1000 + 100 * i, 3)).sum();
        assert_eq!(total, 3);
        assert_eq!(
            m.budget(1_000_000, 2000),
            500,
            "a long pause counts as 250 ms"
        );
        assert_eq!(
            m.budget(999_000, 2000),
            0,
            "a clock going back gives nothing"
        );
    }

    #[test]
    fn search_finds_a_block_meeting_the_target_within_budget() {
        let mut m = Miner::default();
        let header = Header {
            parent: Hash::ZERO,
            height: 1,
            merkle: Hash::ZERO,
            timestamp_ms: 0,
            target: u128::MAX / 16,
            miner: 0,
            nonce: 12345,
        };
        m.set_template(header, vec![], 7);
        let b = m.search(10_000, 5).expect("16 expected tries");
        assert!(meets(&b.hash(), b.header.target));
        assert_eq!(b.header.timestamp_ms, 7);
        assert!(!m.has_template());
        assert!(m.search(10, 5).is_none());
    }
}
