//! Every check a block or a transfer from a peer must pass, in three steps, cheapest first:
//!
//! ```text
//!   body   (alone)       counts and sizes, miner is a member, one coinbase first paying
//!                        exactly the reward to the miner's account, Merkle root, proof
//!                        of work against the header's target, every transfer well formed
//!                        and signed                                  ─► else dropped
//!   link   (its parent)  height = parent + 1, target = the retarget rule's, timestamp
//!                        after the parent's and at most max_future_ms ahead of the local
//!                        clock (beyond: kept aside, checked again later)
//!   state  (its chain)   every transfer applies in order to the state of the parent:
//!                        nonce next, funds there, not expired     ─► else dropped
//! ```
//!
//! A block whose parent is unknown passes `body` before it may wait in the orphan pool, so
//! a peer cannot fill the pool without doing the work. Nothing here panics on a peer's
//! word: a failed check is a [`BlockError`], counted and logged by the core.

use crate::block::Block;
use crate::core::Pow;
use crate::hash::{Hash, meets};
use crate::ledger::TxError;
use crate::tree::Node;
use crate::tx::{MAX_NAME, Transfer, Tx, miner_account};

/// Most transactions in one block, the coinbase included.
pub const MAX_TXS: usize = 256;

/// Why a block is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("{0} transactions (1 to {MAX_TXS})")]
    Size(usize),
    #[error("miner {0} is not a member")]
    Miner(u32),
    #[error("the first transaction is not one coinbase of the reward to the miner")]
    Coinbase,
    #[error("Merkle root does not match the transactions")]
    Merkle,
    #[error("hash does not meet the target")]
    ProofOfWork,
    #[error("transfer {0}: {1}")]
    Malformed(usize, &'static str),
    #[error("transfer {0}: bad signature")]
    Signature(usize),
    #[error("height {got}, parent's is {parent}")]
    Height { got: u64, parent: u64 },
    #[error("target {got:#x}, the retarget rule gives {expected:#x}")]
    Target { got: u128, expected: u128 },
    #[error("timestamp {got} not after the parent's {parent}")]
    Timestamp { got: u64, parent: u64 },
    #[error("timestamp {got} beyond the local clock {now} + max_future_ms")]
    Future { got: u64, now: u64 },
    #[error("transfer {0}: {1}")]
    Tx(usize, TxError),
}

impl Pow {
    /// The checks a block passes alone.
    pub(crate) fn check_body(&mut self, block: &Block, hash: &Hash) -> Result<(), BlockError> {
        let (h, txs) = (&block.header, &block.txs);
        if txs.is_empty() || txs.len() > MAX_TXS {
            return Err(BlockError::Size(txs.len()));
        }
        let miner = self
            .members
            .get(h.miner as usize)
            .ok_or(BlockError::Miner(h.miner))?;
        match &txs[0] {
            Tx::Coinbase { height, to, amount }
                if *height == h.height
                    && *to == miner_account(miner)
                    && *amount == self.params.reward => {}
            _ => return Err(BlockError::Coinbase),
        }
        if txs[1..].iter().any(|t| t.as_transfer().is_none()) {
            return Err(BlockError::Coinbase);
        }
        // Bounded before hashing: names and signatures of any length would be hashed.
        for (i, t) in txs.iter().enumerate().skip(1) {
            let t = t.as_transfer().expect("checked above");
            if t.from.len() > MAX_NAME || t.to.len() > MAX_NAME || t.sig.len() != 128 {
                return Err(BlockError::Malformed(i, "a name or signature is too long"));
            }
        }
        if Block::merkle_of(txs) != h.merkle {
            return Err(BlockError::Merkle);
        }
        let pow_ok = if self.bugs.skip_hash_check {
            // The planted bug: the hash is compared with itself.
            hash.head() <= hash.head()
        } else {
            meets(hash, h.target)
        };
        if !pow_ok {
            return Err(BlockError::ProofOfWork);
        }
        for (i, t) in txs.iter().enumerate().skip(1) {
            let t = t.as_transfer().expect("checked above");
            self.check_transfer(t).map_err(|e| match e {
                TransferError::Malformed(why) => BlockError::Malformed(i, why),
                TransferError::Signature => BlockError::Signature(i),
            })?;
        }
        Ok(())
    }

    /// A transfer's own checks: well formed and signed by its source account's key.
    pub(crate) fn check_transfer(&mut self, t: &Transfer) -> Result<(), TransferError> {
        if let Some(why) = t.malformed() {
            return Err(TransferError::Malformed(why));
        }
        if !self.keys.verify(t) {
            return Err(TransferError::Signature);
        }
        Ok(())
    }

    /// The checks of a block against its parent and the local clock.
    pub(crate) fn check_link(&self, parent: &Node, block: &Block) -> Result<(), BlockError> {
        let (h, p) = (&block.header, &parent.block.header);
        if h.height != p.height + 1 {
            return Err(BlockError::Height {
                got: h.height,
                parent: p.height,
            });
        }
        let expected = self.next_target(parent);
        if h.target != expected {
            return Err(BlockError::Target {
                got: h.target,
                expected,
            });
        }
        if h.timestamp_ms <= p.timestamp_ms {
            return Err(BlockError::Timestamp {
                got: h.timestamp_ms,
                parent: p.timestamp_ms,
            });
        }
        if !self.bugs.accept_future_blocks
            && h.timestamp_ms > self.now_ms.saturating_add(self.params.max_future_ms)
        {
            return Err(BlockError::Future {
                got: h.timestamp_ms,
                now: self.now_ms,
            });
        }
        Ok(())
    }

    /// The target a child of `parent` must carry (params.rs has the rule).
    pub(crate) fn next_target(&self, parent: &Node) -> u128 {
        let height = parent.height() + 1;
        let target = parent.block.header.target;
        if !self.params.is_retarget(height) {
            return target;
        }
        let Some(first) = self
            .tree
            .ancestor(&parent.hash, self.params.window_start(height))
        else {
            return target;
        };
        let span = parent
            .block
            .header
            .timestamp_ms
            .saturating_sub(first.block.header.timestamp_ms);
        self.params
            .adjust(target, span, parent.height() - first.height())
    }
}

/// Why a transfer is refused on its face.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("malformed: {0}")]
    Malformed(&'static str),
    #[error("bad signature")]
    Signature,
}
