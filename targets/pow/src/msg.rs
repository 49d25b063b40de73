//! What travels between nodes. Every count is bounded (validate.rs); a peer's word is
//! checked before anything acts on it.

use crate::block::Block;
use crate::hash::Hash;
use crate::tx::Transfer;
use serde::{Deserialize, Serialize};

/// Most blocks in one [`Msg::Blocks`] answer.
pub const MAX_BLOCKS_PER_MSG: usize = 16;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    /// A block, gossiped when first accepted (mined here or relayed).
    Block(Block),
    /// A transfer waiting for a block, gossiped when first taken into the mempool.
    Tx(Transfer),
    /// Asks for the block `hash` (the parent of an orphan) and up to
    /// [`MAX_BLOCKS_PER_MSG`]` - 1` of its ancestors.
    GetBlock { hash: Hash },
    /// The answer to `GetBlock`: the block asked for, then its ancestors, highest first.
    Blocks(Vec<Block>),
    /// "My best tip is `hash`": sent to every peer when a node starts and every
    /// `TIP_EVERY_BLOCKS` block intervals. A peer with more work answers with its own tip
    /// (whose missing ancestors the node then asks for); a peer that does not know the
    /// hash asks for it. So a restarted node, or one on the other side of a healed
    /// partition, learns the heaviest chain without waiting for the next block mined.
    Tip { hash: Hash },
}

/// How often, in block intervals (`block_ms`), a node announces its tip to its peers.
pub const TIP_EVERY_BLOCKS: u64 = 4;
