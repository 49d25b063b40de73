//! The search's memory of (linearized set, configuration) pairs already explored.
//!
//! A linearized set is mostly a run of ones (the operations long since placed) followed by
//! a short window of mixed bits and then zeros, so an entry stores only that window: the
//! index of its first word that is not all ones and the words up to the last non-zero one.
//! Entries live in one flat arena; the table is open addressing keyed by a hash the search
//! maintains incrementally (Zobrist), so inserting costs one window scan and no allocation.

use std::cell::RefCell;

const EMPTY: u32 = u32::MAX;
const START: usize = 1 << 10;
/// A memo no bigger than this (in words) is kept by its thread for the next search:
/// checking many small histories then costs no fresh pages, and a big search's memory is
/// still given back.
const KEEP_WORDS: usize = 1 << 19;

/// One table slot: the hash, and where the entry starts in the arena.
#[derive(Clone, Copy)]
struct Slot {
    hash: u64,
    off: u32,
}

const FREE: Slot = Slot {
    hash: 0,
    off: EMPTY,
};

pub(crate) struct Memo {
    slots: Vec<Slot>,
    arena: Vec<u64>,
    len: usize,
}

thread_local! {
    static SPARE: RefCell<Option<Memo>> = const { RefCell::new(None) };
}

impl Memo {
    pub fn new() -> Self {
        Memo {
            slots: vec![FREE; START],
            arena: Vec::new(),
            len: 0,
        }
    }

    /// An empty memo, reusing this thread's spare one if there is one.
    pub fn take() -> Self {
        match SPARE.with(|s| s.borrow_mut().take()) {
            Some(mut m) => {
                m.slots.clear();
                m.slots.resize(START, FREE);
                m.arena.clear();
                m.len = 0;
                m
            }
            None => Memo::new(),
        }
    }

    /// Gives the memo back to this thread for the next search, if it is small.
    pub fn give_back(self) {
        if self.arena.capacity() + 2 * self.slots.capacity() <= KEEP_WORDS {
            SPARE.with(|s| *s.borrow_mut() = Some(self));
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes held now, counting the table's next doubling before it happens (the old and
    /// new tables coexist while it grows) so a memory share is not overshot by much.
    pub fn bytes(&self) -> usize {
        let slot = std::mem::size_of::<Slot>();
        let table = if (self.len + 1) * 2 > self.slots.len() {
            3 * self.slots.len()
        } else {
            self.slots.len()
        };
        table * slot + self.arena.capacity() * 8
    }

    /// Records (`bits`, `config`) with `hash`; false if it was already there.
    pub fn insert(&mut self, hash: u64, config: u32, bits: &[u64]) -> bool {
        let lo = bits
            .iter()
            .position(|&w| w != u64::MAX)
            .unwrap_or(bits.len());
        let hi = bits
            .iter()
            .rposition(|&w| w != 0)
            .map_or(lo, |i| (i + 1).max(lo));
        let window = &bits[lo..hi];
        let head = (config as u64) << 32 | lo as u64;
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            let Slot { hash: h, off } = self.slots[slot];
            if off == EMPTY {
                break;
            }
            if h == hash {
                let off = off as usize;
                let len = self.arena[off + 1] as usize;
                if self.arena[off] == head
                    && len == window.len()
                    && &self.arena[off + 2..off + 2 + len] == window
                {
                    return false;
                }
            }
            slot = (slot + 1) & mask;
        }
        let off = self.arena.len();
        assert!(off < EMPTY as usize, "memo arena full");
        self.arena.push(head);
        self.arena.push(window.len() as u64);
        self.arena.extend_from_slice(window);
        self.slots[slot] = Slot {
            hash,
            off: off as u32,
        };
        self.len += 1;
        if self.len * 2 > self.slots.len() {
            self.grow();
        }
        true
    }

    fn grow(&mut self) {
        let cap = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![FREE; cap]);
        let mask = cap - 1;
        for s in old.into_iter().filter(|s| s.off != EMPTY) {
            let mut slot = s.hash as usize & mask;
            while self.slots[slot].off != EMPTY {
                slot = (slot + 1) & mask;
            }
            self.slots[slot] = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_sets_and_configs() {
        let mut m = Memo::new();
        let a = [u64::MAX, 0b101, 0];
        let b = [u64::MAX, 0b100, 0];
        assert!(m.insert(7, 1, &a));
        assert!(!m.insert(7, 1, &a));
        // Same hash (a collision), different set or config: both new.
        assert!(m.insert(7, 1, &b));
        assert!(m.insert(7, 2, &a));
        for i in 0..5000u64 {
            assert!(m.insert(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), 0, &[i, 1]));
        }
        assert!(!m.insert(7, 2, &a));
        assert_eq!(m.len(), 5003);
    }
}
