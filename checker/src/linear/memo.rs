//! The search's memory of (linearized set, configuration) pairs already explored.
//!
//! A linearized set is mostly a run of ones (the operations long since placed) followed by
//! a short window of mixed bits and then zeros, so an entry stores only that window: the
//! index of its first word that is not all ones and the words up to the last non-zero one.
//! Entries live in one flat arena; the table is open addressing keyed by a hash the search
//! maintains incrementally (Zobrist), so inserting costs one window scan and no allocation.
//! A slot is one word: the hash's high half (which also places it, so the table can grow
//! without the full hash) and the entry's arena offset. Half a hash is enough to skip
//! almost every other entry; the entry itself is always compared in full.

use std::cell::RefCell;

const EMPTY: u32 = u32::MAX;
const START: usize = 1 << 10;
/// A memo no bigger than this (in words) is kept by its thread for the next search:
/// checking many small histories then costs no fresh pages, and a big search's memory is
/// still given back.
const KEEP_WORDS: usize = 1 << 19;

/// One table slot: the hash's high half above the entry's arena offset.
type Slot = u64;

const FREE: Slot = EMPTY as u64;

fn slot_off(s: Slot) -> u32 {
    s as u32
}

fn slot_tag(s: Slot) -> u32 {
    (s >> 32) as u32
}

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
        if self.arena.capacity() + self.slots.capacity() <= KEEP_WORDS {
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
        let tag = (hash >> 32) as u32;
        let mask = self.slots.len() - 1;
        let mut slot = tag as usize & mask;
        loop {
            let s = self.slots[slot];
            let off = slot_off(s);
            if off == EMPTY {
                break;
            }
            if slot_tag(s) == tag {
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
        self.slots[slot] = u64::from(tag) << 32 | off as u64;
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
        for s in old.into_iter().filter(|&s| slot_off(s) != EMPTY) {
            let mut slot = slot_tag(s) as usize & mask;
            while slot_off(self.slots[slot]) != EMPTY {
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
        // The table grew several times, placing entries by half their hash: all still found.
        for i in 0..5000u64 {
            assert!(!m.insert(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), 0, &[i, 1]));
        }
        // Same high half, different low half and entry: still told apart.
        assert!(m.insert(7 | 1 << 40, 1, &a));
        assert!(m.insert(8 | 1 << 40, 1, &b));
        assert!(!m.insert(8 | 1 << 40, 1, &b));
        assert_eq!(m.len(), 5005);
    }
}
