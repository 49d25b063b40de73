//! A string that knows its hash.
//!
//! Key-value states are strings that only grow (append), and the engine hashes every new
//! state to intern it. Hashing a 2 KB string per step would dominate the search, so the
//! hash is a polynomial one kept alongside the text: extending a string by a tail costs
//! O(|tail|) hashing. Equality still compares the text, so a collision costs time, never a
//! wrong answer.

use std::cell::RefCell;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

const BASE: u64 = 0x100_0000_01b3;

thread_local! {
    static JOIN: RefCell<String> = const { RefCell::new(String::new()) };
}

#[derive(Clone)]
pub struct HStr {
    hash: u64,
    text: Arc<str>,
}

fn poly(s: &str) -> u64 {
    s.bytes().fold(0u64, |h, b| {
        h.wrapping_mul(BASE).wrapping_add(u64::from(b) + 1)
    })
}

fn pow(mut b: u64, mut e: usize) -> u64 {
    let mut r = 1u64;
    while e > 0 {
        if e & 1 == 1 {
            r = r.wrapping_mul(b);
        }
        b = b.wrapping_mul(b);
        e >>= 1;
    }
    r
}

impl HStr {
    pub fn new(s: &str) -> Self {
        HStr {
            hash: poly(s),
            text: s.into(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The address of the shared text: equal for clones, so usable as an identity while
    /// a clone is kept alive (an address can be reused once every clone is gone).
    pub fn text_ptr(&self) -> usize {
        Arc::as_ptr(&self.text) as *const u8 as usize
    }

    /// `self` followed by `tail`.
    pub fn concat(&self, tail: &HStr) -> HStr {
        // Joined in a reused buffer, then copied once into the shared text: one
        // allocation per new state instead of a `String` made and freed on the way (the
        // search builds a state per candidate append, most of its time on kv histories).
        let text = JOIN.with_borrow_mut(|joined| {
            joined.clear();
            joined.push_str(&self.text);
            joined.push_str(&tail.text);
            Arc::<str>::from(joined.as_str())
        });
        let hash = self
            .hash
            .wrapping_mul(pow(BASE, tail.text.len()))
            .wrapping_add(tail.hash);
        HStr { hash, text }
    }
}

impl PartialEq for HStr {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && (Arc::ptr_eq(&self.text, &other.text) || self.text == other.text)
    }
}

impl Eq for HStr {}

impl Hash for HStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialOrd for HStr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for HStr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl fmt::Debug for HStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_keeps_the_hash_of_the_whole() {
        let a = HStr::new("x 1 0 y");
        let b = HStr::new("x 2 0 y");
        let ab = a.concat(&b);
        assert_eq!(ab, HStr::new("x 1 0 yx 2 0 y"));
        assert_eq!(ab.hash, poly("x 1 0 yx 2 0 y"));
        assert_ne!(ab, b.concat(&a));
        assert_eq!(HStr::new("").concat(&a), a);
    }
}
