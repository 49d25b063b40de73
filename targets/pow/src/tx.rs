//! Transactions: the coinbase that pays a block's miner, and signed transfers between
//! bank accounts.
//!
//! Every account has an ed25519 key pair derived from the run's key seed
//! (`--opt key_seed=`) and the account's name: SHA-256 of a domain tag, the seed and the
//! name, as PBFT's keyfile derives replica keys. These are test keys: any node can sign for
//! any account, which is what lets the node that takes a client's `transfer` sign it for
//! the client, and what a deployment never would. A signature still binds every field, so
//! a forged or altered transfer is caught by every node.
//!
//! Bytes (all integers big-endian, strings as a u16 length and their UTF-8 bytes):
//!
//! ```text
//!   signed part   "sunder-pow tx v1\0" from to amount:i64 nonce:u64 expires:u64
//!   leaf bytes    0x01 from to amount nonce expires sig[64]      (a transfer)
//!                 0x00 height:u64 to amount:i64                  (a coinbase)
//!   txid          SHA-256 of the leaf bytes
//! ```
//!
//! Miner accounts (`miner:<node>`) are credited only by coinbases and can never be named
//! by a transfer, so the bank's accounts keep their total and the supply is the bank's
//! plus the rewards minted.

use crate::hash::Hash;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use sunder_wire::Val;

/// The longest account name, in bytes.
pub const MAX_NAME: usize = 64;
/// The prefix of miner accounts.
pub const MINER_PREFIX: &str = "miner:";

/// The account a block's coinbase pays: `miner:<node id>`.
pub fn miner_account(node: &str) -> String {
    format!("{MINER_PREFIX}{node}")
}

/// Whether a client or a transfer may name this account.
pub fn is_bank_account(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && !name.starts_with(MINER_PREFIX)
}

/// A signed transfer between two bank accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub from: String,
    pub to: String,
    pub amount: Val,
    /// `from`'s sequence number: the chain takes its transfers in nonce order, each once.
    pub nonce: u64,
    /// The last height of a block that may include it; after that it is dead, so a node
    /// can tell its client a definite "no" once that height is confirmed.
    pub expires: u64,
    /// Which client request this is, from the node that took it: two clients asking two
    /// nodes for the same transfer at the same nonce get two transactions (one of them
    /// fails with `nonce-taken`), never one that answers both.
    #[serde(default)]
    pub memo: u64,
    /// ed25519 signature over the signed part, 128 hex digits.
    pub sig: String,
}

/// One transaction of a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tx {
    /// The first transaction of every block, and only there: mints `amount` to `to`.
    /// `height` makes every block's coinbase distinct.
    Coinbase {
        height: u64,
        to: String,
        amount: Val,
    },
    Transfer(Transfer),
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    // Names longer than u16 are invalid anyway; truncating the length keeps this total.
    b.extend_from_slice(&(s.len().min(u16::MAX as usize) as u16).to_be_bytes());
    b.extend_from_slice(s.as_bytes());
}

impl Transfer {
    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut b = b"sunder-pow tx v1\0".to_vec();
        put_str(&mut b, &self.from);
        put_str(&mut b, &self.to);
        b.extend_from_slice(&self.amount.to_be_bytes());
        b.extend_from_slice(&self.nonce.to_be_bytes());
        b.extend_from_slice(&self.expires.to_be_bytes());
        b.extend_from_slice(&self.memo.to_be_bytes());
        b
    }

    /// Why the transfer is malformed on its face (before any key or state), if it is.
    pub fn malformed(&self) -> Option<&'static str> {
        if !is_bank_account(&self.from) || !is_bank_account(&self.to) {
            return Some("an account name is empty, too long or a miner's");
        }
        let op = sunder_wire::Op::Transfer {
            from: self.from.clone(),
            to: self.to.clone(),
            amount: self.amount,
        };
        if let Some(why) = sunder_wire::bank::malformed(&op) {
            return Some(why);
        }
        if self.sig.len() != 128 {
            return Some("a signature is 128 hex digits");
        }
        None
    }
}

impl Tx {
    /// The bytes that are this transaction's Merkle leaf (and its id's preimage).
    pub fn leaf_bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        match self {
            Tx::Coinbase { height, to, amount } => {
                b.push(0x00);
                b.extend_from_slice(&height.to_be_bytes());
                put_str(&mut b, to);
                b.extend_from_slice(&amount.to_be_bytes());
            }
            Tx::Transfer(t) => {
                b.push(0x01);
                b.extend_from_slice(&t.signed_bytes()[b"sunder-pow tx v1\0".len()..]);
                b.extend_from_slice(&sunder_wire::bft::from_hex(&t.sig).unwrap_or_default());
            }
        }
        b
    }

    pub fn id(&self) -> Hash {
        Hash::of(&[&self.leaf_bytes()])
    }

    pub fn as_transfer(&self) -> Option<&Transfer> {
        match self {
            Tx::Transfer(t) => Some(t),
            Tx::Coinbase { .. } => None,
        }
    }
}

/// Most verifying keys kept; the cache is emptied when full (names come from peers).
const KEY_CACHE: usize = 4096;

/// Derives account keys from the key seed, signs transfers and checks their signatures.
#[derive(Debug, Clone)]
pub struct Keyring {
    seed: u64,
    public: BTreeMap<String, VerifyingKey>,
}

impl Keyring {
    pub fn new(seed: u64) -> Keyring {
        Keyring {
            seed,
            public: BTreeMap::new(),
        }
    }

    /// The secret key of `account` under key seed `seed`.
    pub fn secret(seed: u64, account: &str) -> [u8; 32] {
        Hash::of(&[
            b"sunder-pow account key v1\0",
            &seed.to_le_bytes(),
            account.as_bytes(),
        ])
        .0
    }

    /// `t` with its signature made by `t.from`'s key.
    pub fn sign(&self, mut t: Transfer) -> Transfer {
        let key = SigningKey::from_bytes(&Self::secret(self.seed, &t.from));
        t.sig = sunder_wire::bft::to_hex(&key.sign(&t.signed_bytes()).to_bytes());
        t
    }

    /// Whether `t` carries `t.from`'s signature over its fields.
    pub fn verify(&mut self, t: &Transfer) -> bool {
        let Some(sig) =
            sunder_wire::bft::from_hex(&t.sig).and_then(|b| Signature::from_slice(&b).ok())
        else {
            return false;
        };
        if !self.public.contains_key(&t.from) {
            if self.public.len() >= KEY_CACHE {
                self.public.clear();
            }
            let key = SigningKey::from_bytes(&Self::secret(self.seed, &t.from)).verifying_key();
            self.public.insert(t.from.clone(), key);
        }
        self.public[&t.from].verify(&t.signed_bytes(), &sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn unsigned(from: &str, to: &str, amount: Val, nonce: u64) -> Transfer {
        Transfer {
            from: from.into(),
            to: to.into(),
            amount,
            nonce,
            expires: 100,
            memo: 0,
            sig: String::new(),
        }
    }

    #[test]
    fn a_signature_binds_every_field_and_the_key_seed() {
        let mut k = Keyring::new(7);
        let t = k.sign(unsigned("a0", "a1", 3, 0));
        assert!(t.malformed().is_none());
        assert!(k.verify(&t));
        let alter: [fn(&mut Transfer); 6] = [
            |t| t.from = "a2".into(),
            |t| t.to = "a2".into(),
            |t| t.amount = 4,
            |t| t.nonce = 1,
            |t| t.expires = 101,
            |t| t.memo = 1,
        ];
        for f in alter {
            let mut bad = t.clone();
            f(&mut bad);
            assert!(!k.verify(&bad), "{bad:?}");
        }
        let mut bad = t.clone();
        bad.sig = "zz".into();
        assert!(!k.verify(&bad));
        assert!(!Keyring::new(8).verify(&t));
    }

    #[test]
    fn malformed_transfers_are_named_and_ids_differ() {
        let k = Keyring::new(1);
        let ok = k.sign(unsigned("a0", "a1", 3, 0));
        for bad in [
            unsigned("a0", "a0", 1, 0),
            unsigned("a0", "a1", 0, 0),
            unsigned("a0", "miner:n1", 1, 0),
            unsigned(&"x".repeat(65), "a1", 1, 0),
        ] {
            assert!(k.sign(bad).malformed().is_some());
        }
        let other = k.sign(unsigned("a0", "a1", 3, 1));
        assert_ne!(Tx::Transfer(ok.clone()).id(), Tx::Transfer(other).id());
        let cb = |h| Tx::Coinbase {
            height: h,
            to: "miner:n1".into(),
            amount: 50,
        };
        assert_ne!(cb(1).id(), cb(2).id());
        assert_ne!(cb(1).id(), Tx::Transfer(ok).id());
    }
}
