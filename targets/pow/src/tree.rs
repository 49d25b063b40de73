//! Every valid block this node holds, linked to its parent, and the best chain among them.
//!
//! ```text
//!   genesis ── b1 ── b2 ── b3 ── b4        best: [genesis, b1, b2, b3, b4] (by height)
//!                      └── c3 ── c4 ── c5  a side branch; switch_to(c5) makes it the best
//!                                          and reports b3, b4 removed, c3..c5 added
//! ```
//!
//! Every block here has its parent here (orphans wait elsewhere), so walking parents from
//! any block reaches genesis. Which tip is best is the core's choice (core.rs); the tree
//! keeps cumulative work so that the choice is one comparison.

use crate::block::Block;
use crate::hash::{Hash, work_of};
use std::collections::BTreeMap;

/// One block and the work of the chain ending with it.
#[derive(Debug, Clone)]
pub struct Node {
    pub block: Block,
    pub hash: Hash,
    /// Cumulative work from genesis through this block (saturating).
    pub work: u128,
}

impl Node {
    pub fn height(&self) -> u64 {
        self.block.header.height
    }
}

/// What a change of tip did to the best chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// Height of the last block the old and new best chains share.
    pub fork_height: u64,
    /// Blocks no longer on the best chain, highest first.
    pub removed: Vec<Hash>,
    /// Blocks newly on the best chain, lowest first.
    pub added: Vec<Hash>,
}

#[derive(Debug, Clone)]
pub struct Tree {
    nodes: BTreeMap<Hash, Node>,
    /// `best[h]` is the best chain's block at height h.
    best: Vec<Hash>,
}

impl Tree {
    pub fn new(genesis: Block) -> Tree {
        let hash = genesis.hash();
        let node = Node {
            work: work_of(genesis.header.target),
            block: genesis,
            hash,
        };
        Tree {
            nodes: BTreeMap::from([(hash, node)]),
            best: vec![hash],
        }
    }

    pub fn get(&self, hash: &Hash) -> Option<&Node> {
        self.nodes.get(hash)
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.nodes.contains_key(hash)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn tip(&self) -> &Node {
        &self.nodes[self.best.last().expect("genesis is always best")]
    }

    /// The best chain, genesis first.
    pub fn best(&self) -> &[Hash] {
        &self.best
    }

    /// The best chain's block at `height`.
    pub fn best_at(&self, height: u64) -> Option<&Node> {
        let h = self.best.get(usize::try_from(height).ok()?)?;
        self.nodes.get(h)
    }

    pub fn on_best(&self, hash: &Hash) -> bool {
        self.nodes
            .get(hash)
            .is_some_and(|n| self.best.get(n.height() as usize) == Some(hash))
    }

    /// Adds a block whose parent is here; returns its node. A block already here is
    /// returned as it is.
    pub fn insert(&mut self, block: Block) -> &Node {
        let hash = block.hash();
        let parent = self
            .nodes
            .get(&block.header.parent)
            .expect("the parent of a block added to the tree is in it");
        let work = parent.work.saturating_add(work_of(block.header.target));
        self.nodes.entry(hash).or_insert(Node { block, hash, work })
    }

    /// The ancestor of `hash` (itself included) at `height`.
    pub fn ancestor(&self, hash: &Hash, height: u64) -> Option<&Node> {
        let mut n = self.nodes.get(hash)?;
        if n.height() < height {
            return None;
        }
        while n.height() > height {
            if self.on_best(&n.hash) {
                return self.best_at(height);
            }
            n = self.nodes.get(&n.block.header.parent)?;
        }
        Some(n)
    }

    /// The blocks from genesis through `hash`, genesis first.
    pub fn path(&self, hash: &Hash) -> Vec<&Node> {
        let mut path = Vec::new();
        let mut cur = self.nodes.get(hash);
        while let Some(n) = cur {
            path.push(n);
            cur = (n.height() > 0)
                .then(|| self.nodes.get(&n.block.header.parent))
                .flatten();
        }
        path.reverse();
        path
    }

    /// Makes the chain ending at `hash` the best one.
    pub fn switch_to(&mut self, hash: Hash) -> Switch {
        let mut added = Vec::new();
        let mut cur = hash;
        while !self.on_best(&cur) {
            added.push(cur);
            cur = self.nodes[&cur].block.header.parent;
        }
        added.reverse();
        let fork_height = self.nodes[&cur].height();
        let removed: Vec<Hash> = self.best.drain(fork_height as usize + 1..).rev().collect();
        self.best.extend(&added);
        Switch {
            fork_height,
            removed,
            added,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Header;

    fn block(parent: &Hash, height: u64, nonce: u64) -> Block {
        Block {
            header: Header {
                parent: *parent,
                height,
                merkle: Hash::ZERO,
                timestamp_ms: height,
                target: u128::MAX / 8,
                miner: 0,
                nonce,
            },
            txs: Vec::new(),
        }
    }

    #[test]
    fn switching_tips_reports_the_blocks_that_left_and_joined() {
        let g = block(&Hash::ZERO, 0, 0);
        let mut t = Tree::new(g.clone());
        let (mut b, mut c) = (vec![g.hash()], vec![]);
        for h in 1..=4 {
            b.push(t.insert(block(&b[h - 1], h as u64, 1)).hash);
        }
        assert_eq!(t.get(&b[4]).unwrap().work, 40);
        let s = t.switch_to(b[4]);
        assert_eq!(
            (s.fork_height, s.removed.len(), &s.added[..]),
            (0, 0, &b[1..])
        );
        let mut parent = b[2];
        for h in 3..=5 {
            parent = t.insert(block(&parent, h, 2)).hash;
            c.push(parent);
        }
        assert_eq!(t.ancestor(&c[2], 2).unwrap().hash, b[2]);
        assert_eq!(t.ancestor(&c[2], 3).unwrap().hash, c[0]);
        assert!(t.ancestor(&c[0], 4).is_none());
        let s = t.switch_to(c[2]);
        assert_eq!(s.fork_height, 2);
        assert_eq!(s.removed, vec![b[4], b[3]]);
        assert_eq!(s.added, c);
        assert_eq!(t.tip().hash, c[2]);
        assert!(t.on_best(&b[2]) && !t.on_best(&b[3]));
        let path: Vec<Hash> = t.path(&b[4]).iter().map(|n| n.hash).collect();
        assert_eq!(path, b);
    }
}
