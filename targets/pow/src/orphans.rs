//! Blocks whose parent this node does not hold yet, kept (bounded) until it comes, and
//! blocks from too far in the future, kept (bounded) until the local clock catches up.

use crate::block::Block;
use crate::hash::Hash;
use std::collections::BTreeMap;
use sunder_core::NodeId;

/// Most blocks waiting in one pool; the oldest arrival is dropped for a new one.
pub const MAX_WAITING: usize = 256;

/// A bounded pool of blocks waiting for something, by hash, oldest arrival dropped first.
#[derive(Debug, Clone, Default)]
pub struct Waiting {
    blocks: BTreeMap<Hash, (u64, Block, Option<NodeId>)>,
    seq: u64,
}

impl Waiting {
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.blocks.contains_key(hash)
    }

    /// Keeps `block` (sent by `from`), dropping the oldest if full.
    pub fn insert(&mut self, hash: Hash, block: Block, from: Option<NodeId>) {
        if self.blocks.len() >= MAX_WAITING && !self.blocks.contains_key(&hash) {
            let oldest = self
                .blocks
                .iter()
                .min_by_key(|(_, (seq, _, _))| *seq)
                .map(|(h, _)| *h)
                .expect("full");
            self.blocks.remove(&oldest);
        }
        self.seq += 1;
        self.blocks.insert(hash, (self.seq, block, from));
    }

    /// Takes out every block `pick` chooses, in arrival order.
    pub fn take(&mut self, mut pick: impl FnMut(&Block) -> bool) -> Vec<(Block, Option<NodeId>)> {
        let chosen: Vec<Hash> = self
            .blocks
            .iter()
            .filter(|(_, (_, b, _))| pick(b))
            .map(|(h, _)| *h)
            .collect();
        let mut out: Vec<(u64, Block, Option<NodeId>)> = chosen
            .iter()
            .filter_map(|h| self.blocks.remove(h))
            .collect();
        out.sort_by_key(|(seq, _, _)| *seq);
        out.into_iter().map(|(_, b, f)| (b, f)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Header;

    fn block(height: u64) -> Block {
        Block {
            header: Header {
                parent: Hash::ZERO,
                height,
                merkle: Hash::ZERO,
                timestamp_ms: 0,
                target: 0,
                miner: 0,
                nonce: 0,
            },
            txs: vec![],
        }
    }

    #[test]
    fn the_pool_is_bounded_and_gives_back_in_arrival_order() {
        let mut w = Waiting::default();
        for h in 0..MAX_WAITING as u64 + 2 {
            w.insert(block(h).hash(), block(h), None);
        }
        assert_eq!(w.len(), MAX_WAITING);
        assert!(!w.contains(&block(0).hash()) && !w.contains(&block(1).hash()));
        let got = w.take(|b| b.header.height % 100 == 0);
        let heights: Vec<u64> = got.iter().map(|(b, _)| b.header.height).collect();
        assert_eq!(heights, vec![100, 200]);
        assert_eq!(w.len(), MAX_WAITING - 2);
    }
}
