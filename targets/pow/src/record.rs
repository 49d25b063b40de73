//! Durable records: every block this node took into its tree, in the order it took them
//! (so every block's parent comes before it). The tip is not recorded: `recover` finds the
//! heaviest chain again from the blocks.

use crate::block::Block;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    Block(Block),
}
