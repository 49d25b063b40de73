//! The in-memory log: entries after a snapshot base.

use crate::msg::Entry;

/// Entries `base_index+1 ..= last_index()`; everything up to `base_index` lives in the
/// snapshot, of which only the last index and term are kept here.
#[derive(Debug, Clone, Default)]
pub struct Log {
    base_index: u64,
    base_term: u64,
    entries: Vec<Entry>,
}

impl Log {
    pub fn base_index(&self) -> u64 {
        self.base_index
    }

    pub fn base_term(&self) -> u64 {
        self.base_term
    }

    pub fn last_index(&self) -> u64 {
        self.base_index + self.entries.len() as u64
    }

    pub fn last_term(&self) -> u64 {
        self.entries.last().map_or(self.base_term, |e| e.term)
    }

    /// The term of the entry at `index`, if this log still knows it (the snapshot base
    /// counts; compacted entries before it do not).
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.base_index {
            Some(self.base_term)
        } else {
            self.get(index).map(|e| e.term)
        }
    }

    pub fn get(&self, index: u64) -> Option<&Entry> {
        if index <= self.base_index {
            return None;
        }
        self.entries.get((index - self.base_index - 1) as usize)
    }

    /// Up to `max` entries starting at `from` (which must be after the base).
    pub fn slice(&self, from: u64, max: usize) -> Vec<Entry> {
        assert!(
            from > self.base_index,
            "slice from {from} at or before base {}",
            self.base_index
        );
        let start = (from - self.base_index - 1) as usize;
        let end = start.saturating_add(max).min(self.entries.len());
        self.entries
            .get(start..end)
            .map(<[Entry]>::to_vec)
            .unwrap_or_default()
    }

    /// Appends one entry, replacing any entries from its index on (a conflicting suffix).
    pub fn put(&mut self, entry: Entry) {
        assert!(
            entry.index > self.base_index,
            "entry {} at or before base {}",
            entry.index,
            self.base_index
        );
        assert!(
            entry.index <= self.last_index() + 1,
            "gap before entry {}",
            entry.index
        );
        self.entries
            .truncate((entry.index - self.base_index - 1) as usize);
        self.entries.push(entry);
    }

    /// The first index of the run of entries with `term` that contains `index`.
    pub fn first_of_term(&self, index: u64, term: u64) -> u64 {
        let mut i = index;
        while i > self.base_index + 1 && self.term_at(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// The last index holding an entry of `term`, if any.
    pub fn last_of_term(&self, term: u64) -> Option<u64> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.term == term)
            .map(|e| e.index)
    }

    /// Drops everything up to `index` (which this log holds), making it the new base.
    pub fn compact_to(&mut self, index: u64) {
        let term = self
            .term_at(index)
            .expect("compact to an index the log holds");
        let drop = (index - self.base_index) as usize;
        self.entries.drain(..drop);
        self.base_index = index;
        self.base_term = term;
    }

    /// Replaces the whole log with an empty one based at a snapshot.
    pub fn reset_to(&mut self, index: u64, term: u64) {
        self.entries.clear();
        self.base_index = index;
        self.base_term = term;
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Command;

    fn e(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            cmd: Command::Noop,
        }
    }

    #[test]
    fn put_truncates_conflicting_suffix_and_compaction_keeps_terms() {
        let mut log = Log::default();
        for (i, t) in [(1, 1), (2, 1), (3, 2), (4, 2)] {
            log.put(e(i, t));
        }
        log.put(e(3, 3));
        assert_eq!(log.last_index(), 3);
        assert_eq!(log.term_at(3), Some(3));
        assert_eq!(log.first_of_term(2, 1), 1);
        log.compact_to(2);
        assert_eq!((log.base_index(), log.base_term()), (2, 1));
        assert_eq!(log.term_at(2), Some(1));
        assert_eq!(log.term_at(1), None);
        assert_eq!(log.slice(3, 10), vec![e(3, 3)]);
        assert_eq!(log.last_of_term(1), None);
    }
}
