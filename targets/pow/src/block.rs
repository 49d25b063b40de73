//! Blocks and the fixed byte layout of their headers, which is what is mined.
//!
//! ```text
//!   offset  size  field                     (integers big-endian)
//!        0     4  magic "SPW1"
//!        4    32  parent hash
//!       36     8  height (genesis 0)
//!       44    32  Merkle root of the transactions (hash.rs)
//!       76     8  timestamp, ms of the miner's local clock (`now_ms`)
//!       84    16  target (u128)
//!      100     4  miner: index of the mining node among the sorted members
//!      104     8  nonce
//!      112        = HEADER_LEN; the block hash is SHA-256 of these bytes
//! ```

use crate::hash::{self, Hash};
use crate::tx::Tx;
use serde::{Deserialize, Serialize};

pub const HEADER_LEN: usize = 112;

/// What is hashed and mined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub parent: Hash,
    pub height: u64,
    pub merkle: Hash,
    pub timestamp_ms: u64,
    #[serde(with = "hash::hex128")]
    pub target: u128,
    pub miner: u32,
    pub nonce: u64,
}

impl Header {
    pub fn bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(b"SPW1");
        b[4..36].copy_from_slice(&self.parent.0);
        b[36..44].copy_from_slice(&self.height.to_be_bytes());
        b[44..76].copy_from_slice(&self.merkle.0);
        b[76..84].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        b[84..100].copy_from_slice(&self.target.to_be_bytes());
        b[100..104].copy_from_slice(&self.miner.to_be_bytes());
        b[104..112].copy_from_slice(&self.nonce.to_be_bytes());
        b
    }

    pub fn hash(&self) -> Hash {
        Hash::of(&[&self.bytes()])
    }
}

/// A header and its transactions (the coinbase first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub header: Header,
    pub txs: Vec<Tx>,
}

impl Block {
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The Merkle root the header should carry for these transactions.
    pub fn merkle_of(txs: &[Tx]) -> Hash {
        let leaves: Vec<Vec<u8>> = txs.iter().map(Tx::leaf_bytes).collect();
        hash::merkle_root(&leaves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_header_field_is_hashed_at_its_place() {
        let h = Header {
            parent: Hash([1; 32]),
            height: 2,
            merkle: Hash([3; 32]),
            timestamp_ms: 4,
            target: 5,
            miner: 6,
            nonce: 7,
        };
        let b = h.bytes();
        assert_eq!(&b[..4], b"SPW1");
        assert_eq!(b[43], 2);
        assert_eq!(b[83], 4);
        assert_eq!(b[99], 5);
        assert_eq!(b[103], 6);
        assert_eq!(b[111], 7);
        let base = h.hash();
        let variants: [fn(&mut Header); 7] = [
            |h| h.parent.0[31] ^= 1,
            |h| h.height += 1,
            |h| h.merkle.0[0] ^= 1,
            |h| h.timestamp_ms += 1,
            |h| h.target += 1,
            |h| h.miner += 1,
            |h| h.nonce += 1,
        ];
        for f in variants {
            let mut v = h.clone();
            f(&mut v);
            assert_ne!(v.hash(), base, "{v:?}");
        }
        let back: Header = serde_json::from_value(serde_json::to_value(&h).unwrap()).unwrap();
        assert_eq!(back, h);
    }
}
