//! SHA-256 digests, proof-of-work arithmetic and the Merkle root of a block's transactions.
//!
//! - A hash meets a target when its first 16 bytes, read big-endian as a `u128`, are at
//!   most the target ([`meets`]).
//! - The work of one block is the expected number of hashes to find it,
//!   2^128 / (target + 1), at least 1 ([`work_of`]); a chain's work is the saturating
//!   sum over its blocks.
//! - The Merkle root ([`merkle_root`]) hashes leaves and inner nodes under different
//!   prefixes (`0x00 ‖ tx bytes`, `0x01 ‖ left ‖ right`); an odd node at the end of a level
//!   is carried up unchanged (not paired with itself, as Bitcoin does, so two different
//!   lists of transactions never share a root). An empty list's root is all zeros.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use std::fmt;

/// A SHA-256 digest: a block's id, a transaction's id, a Merkle root. Hex in JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub const ZERO: Hash = Hash([0; 32]);

    /// SHA-256 of `parts`, concatenated.
    pub fn of(parts: &[&[u8]]) -> Hash {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        Hash(h.finalize().into())
    }

    pub fn to_hex(&self) -> String {
        sunder_wire::bft::to_hex(&self.0)
    }

    pub fn from_hex(s: &str) -> Option<Hash> {
        sunder_wire::bft::from_hex(s)?.try_into().ok().map(Hash)
    }

    /// The first 16 bytes, big-endian: what is compared with a target.
    pub fn head(&self) -> u128 {
        u128::from_be_bytes(self.0[..16].try_into().expect("16 bytes"))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hex digits name a block in logs well enough.
        write!(f, "{}", &self.to_hex()[..8])
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = String::deserialize(d)?;
        Hash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("a hash is 64 hex digits"))
    }
}

/// `u128` as a JSON string of 32 hex digits: targets and work do not fit a JSON number that
/// every reader takes.
pub mod hex128 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:032x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() != 32 {
            return Err(serde::de::Error::custom("a u128 is 32 hex digits"));
        }
        u128::from_str_radix(&s, 16).map_err(serde::de::Error::custom)
    }
}

/// Whether `hash` meets `target` (hash ≤ target, as numbers).
pub fn meets(hash: &Hash, target: u128) -> bool {
    hash.head() <= target
}

/// The expected number of hashes to find a block under `target`: 2^128 / (target + 1),
/// computed as `!target / (target + 1) + 1` (Bitcoin's trick: 2^128 itself does not fit),
/// which is `u128::MAX / (target + 1)` or one more; at least 1, saturating at the top.
pub fn work_of(target: u128) -> u128 {
    match target.checked_add(1) {
        None => 1,
        Some(d) => (!target / d).saturating_add(1),
    }
}

/// The Merkle root of the leaves' bytes (see the module doc for the rules).
pub fn merkle_root<B: AsRef<[u8]>>(leaves: &[B]) -> Hash {
    if leaves.is_empty() {
        return Hash::ZERO;
    }
    let mut level: Vec<Hash> = leaves
        .iter()
        .map(|l| Hash::of(&[&[0x00], l.as_ref()]))
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => Hash::of(&[&[0x01], &l.0, &r.0]),
                [odd] => *odd,
                _ => unreachable!("chunks of two"),
            })
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_is_the_expected_number_of_hashes() {
        assert_eq!(work_of(u128::MAX), 1);
        assert_eq!(work_of(0), u128::MAX);
        assert_eq!(work_of(u128::MAX / 4), 4);
        assert_eq!(work_of((1 << 127) - 1), 2);
        assert_eq!(work_of(1 << 127), 1);
        assert!(work_of(u128::MAX / 1000) >= 999);
    }

    #[test]
    fn a_hash_meets_a_target_at_or_above_its_head() {
        let mut h = Hash::ZERO;
        h.0[15] = 5;
        h.0[31] = 0xff; // beyond the first 16 bytes: not compared
        assert!(meets(&h, 5) && meets(&h, 6) && !meets(&h, 4));
    }

    #[test]
    fn merkle_roots_change_with_every_leaf_and_their_order() {
        let r = |ls: &[&str]| merkle_root(ls);
        let three = r(&["a", "b", "c"]);
        assert_ne!(three, r(&["a", "c", "b"]));
        assert_ne!(
            three,
            r(&["a", "b", "c", "c"]),
            "odd leaf is not paired with itself"
        );
        assert_ne!(three, r(&["a", "b"]));
        assert_eq!(r(&["a"]), Hash::of(&[&[0], b"a"]));
        assert_eq!(merkle_root::<&str>(&[]), Hash::ZERO);
        // The inner node of a and b is not a leaf anyone can claim.
        let ab = Hash::of(&[&[1], &r(&["a"]).0, &r(&["b"]).0]);
        assert_eq!(r(&["a", "b"]), ab);
        assert_ne!(r(&["a", "b"]), r(&[std::str::from_utf8(&[0]).unwrap()]));
    }

    #[test]
    fn hashes_and_u128s_round_trip_as_hex() {
        let h = Hash::of(&[b"x"]);
        let j = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Hash>(&j).unwrap(), h);
        assert!(serde_json::from_str::<Hash>("\"abc\"").is_err());
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct W(#[serde(with = "hex128")] u128);
        let j = serde_json::to_string(&W(u128::MAX - 3)).unwrap();
        assert_eq!(serde_json::from_str::<W>(&j).unwrap(), W(u128::MAX - 3));
        assert!(serde_json::from_str::<W>("\"ff\"").is_err());
    }
}
