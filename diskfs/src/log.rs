//! [`UndoLog`]: the ordered record of what fsync has not made durable.
//!
//! Each mutating op appends one entry holding what undoes it. fsync of a file discharges its
//! data entries; which namespace entries a durability point discharges depends on the
//! [`Metadata`] model: under [`Metadata::Strict`], fsyncdir of a directory discharges those it
//! owns; under [`Metadata::Journal`], every durability point discharges all of them. The
//! bytes of pre-images the log holds are bounded: past the bound, the oldest entries are
//! dropped as if durable and counted.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// When namespace changes (create, mknod, mkdir, symlink, link, unlink, rmdir, rename)
/// become durable. File data is per file under both: only that file's fsync (or a write
/// through its `O_SYNC`/`O_DSYNC` handle) makes it durable.
///
/// Parsed from and shown as `strict` and `journal`. Set with [`crate::Mount::set_metadata`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Metadata {
    /// Strict POSIX: a namespace change is durable once the directory holding the name is
    /// fsynced (for a rename, the destination's; the source's makes only the departure
    /// durable). A file's fsync makes no name durable. The default.
    #[default]
    Strict,
    /// A file system with an ordered metadata journal (ext4 `data=ordered`, xfs): every
    /// durability point — fsync or fdatasync of any file, fsyncdir of any directory, a write
    /// through an `O_SYNC`/`O_DSYNC` handle — commits the journal, which makes every
    /// namespace change made before it durable, in order. Other files' data stays unsynced.
    Journal,
}

impl Metadata {
    /// The name [`FromStr`] takes and [`fmt::Display`] shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Metadata::Strict => "strict",
            Metadata::Journal => "journal",
        }
    }
}

impl fmt::Display for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name [`Metadata::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metadata durability model {0:?} (expected strict or journal)")]
pub struct UnknownMetadata(pub String);

impl FromStr for Metadata {
    type Err = UnknownMetadata;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" => Ok(Metadata::Strict),
            "journal" => Ok(Metadata::Journal),
            _ => Err(UnknownMetadata(s.to_string())),
        }
    }
}

/// What undoes one op. Nodes are FUSE numbers of the [`crate::nodes::NodeTable`].
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// `len` bytes written at `off` to a file of length `old_len`; `old` is what they
    /// overwrote (the part below `old_len`).
    Write {
        node: u64,
        off: u64,
        len: u64,
        old_len: u64,
        old: Vec<u8>,
    },
    /// Length set from `old_len` to `new_len`; `cut` is what a shrink cut off.
    SetLen {
        node: u64,
        old_len: u64,
        new_len: u64,
        cut: Vec<u8>,
    },
    /// `name` was created in `parent` (file, directory, symlink, node or hard link).
    Create {
        parent: u64,
        name: OsString,
        node: u64,
    },
    /// `name` was removed from `parent`; the inode waits in the trash at `trash`.
    Remove {
        parent: u64,
        name: OsString,
        node: u64,
        trash: PathBuf,
    },
    /// `name` in `parent` was renamed to `newname` in `newparent`, replacing `replaced`
    /// (node and its place in the trash) if the target existed. `source_synced`: the source
    /// directory (another than the destination) was fsynced since, so the name's removal
    /// there is durable even while its arrival in the destination is not.
    Rename {
        parent: u64,
        name: OsString,
        newparent: u64,
        newname: OsString,
        node: u64,
        replaced: Option<(u64, PathBuf)>,
        source_synced: bool,
    },
}

impl Op {
    /// The file whose fsync discharges a data entry.
    fn data_node(&self) -> Option<u64> {
        match self {
            Op::Write { node, .. } | Op::SetLen { node, .. } => Some(*node),
            _ => None,
        }
    }

    /// The directory whose fsyncdir discharges a namespace entry: the parent, and for a
    /// rename the destination's parent.
    fn owner_dir(&self) -> Option<u64> {
        match self {
            Op::Create { parent, .. } | Op::Remove { parent, .. } => Some(*parent),
            Op::Rename { newparent, .. } => Some(*newparent),
            _ => None,
        }
    }

    /// Bytes of pre-image held.
    fn cost(&self) -> u64 {
        match self {
            Op::Write { old, .. } => old.len() as u64,
            Op::SetLen { cut, .. } => cut.len() as u64,
            _ => 0,
        }
    }

    /// Bytes the op wrote (what dropping it loses).
    pub(crate) fn written(&self) -> u64 {
        match self {
            Op::Write { len, .. } => *len,
            _ => 0,
        }
    }

    /// Trash items that become garbage once this entry is durable.
    pub(crate) fn trash(&self) -> Option<&PathBuf> {
        match self {
            Op::Remove { trash, .. } => Some(trash),
            Op::Rename {
                replaced: Some((_, trash)),
                ..
            } => Some(trash),
            _ => None,
        }
    }
}

/// Default bound on the pre-image bytes the log holds: 256 MiB.
pub const DEFAULT_LOG_LIMIT: u64 = 256 << 20;

/// The ordered undo log.
#[derive(Debug)]
pub(crate) struct UndoLog {
    entries: VecDeque<Op>,
    metadata: Metadata,
    bytes: u64,
    limit: u64,
    forced_ops: u64,
    forced_bytes: u64,
}

impl UndoLog {
    pub(crate) fn new(limit: u64) -> Self {
        UndoLog {
            entries: VecDeque::new(),
            metadata: Metadata::Strict,
            bytes: 0,
            limit,
            forced_ops: 0,
            forced_bytes: 0,
        }
    }

    pub(crate) fn set_limit(&mut self, limit: u64) -> Vec<Op> {
        self.limit = limit;
        self.enforce()
    }

    /// Changes the model from the next durability point on; entries already discharged
    /// stay discharged, pending ones wait for that next point.
    pub(crate) fn set_metadata(&mut self, metadata: Metadata) {
        self.metadata = metadata;
    }

    pub(crate) fn metadata(&self) -> Metadata {
        self.metadata
    }

    /// Appends an entry; returns entries dropped as durable to keep within the bound (their
    /// trash is for the caller to delete).
    pub(crate) fn push(&mut self, op: Op) -> Vec<Op> {
        self.bytes += op.cost();
        self.entries.push_back(op);
        self.enforce()
    }

    fn enforce(&mut self) -> Vec<Op> {
        let mut dropped = Vec::new();
        while self.bytes > self.limit {
            let Some(op) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= op.cost();
            self.forced_ops += 1;
            self.forced_bytes += op.written();
            dropped.push(op);
        }
        dropped
    }

    /// Whether an entry of this size could ever be held.
    pub(crate) fn fits(&self, cost: u64) -> bool {
        cost <= self.limit
    }

    /// Counts an op that was too large to log as durable at once.
    pub(crate) fn force(&mut self, written: u64) {
        self.forced_ops += 1;
        self.forced_bytes += written;
    }

    fn discharge(&mut self, keep: impl Fn(&Op) -> bool) -> Vec<Op> {
        let mut gone = Vec::new();
        let mut kept = VecDeque::with_capacity(self.entries.len());
        for op in self.entries.drain(..) {
            if keep(&op) {
                kept.push_back(op);
            } else {
                self.bytes -= op.cost();
                gone.push(op);
            }
        }
        self.entries = kept;
        gone
    }

    /// fsync of file `node` (or a write through its `O_SYNC`/`O_DSYNC` handle): its writes
    /// and truncations are durable; under [`Metadata::Journal`] so is every namespace change.
    pub(crate) fn discharge_data(&mut self, node: u64) -> Vec<Op> {
        let journal = self.metadata == Metadata::Journal;
        self.discharge(|op| match op.data_node() {
            Some(n) => n != node,
            None => !journal,
        })
    }

    /// fsyncdir of directory `dir`: the namespace changes it owns are durable, and so is
    /// the departure of names renamed out of it into another directory; under
    /// [`Metadata::Journal`], every namespace change is.
    pub(crate) fn discharge_dir(&mut self, dir: u64) -> Vec<Op> {
        if self.metadata == Metadata::Journal {
            return self.discharge(|op| op.data_node().is_some());
        }
        for op in &mut self.entries {
            if let Op::Rename {
                parent,
                newparent,
                source_synced,
                ..
            } = op
            {
                if *parent == dir && *newparent != dir {
                    *source_synced = true;
                }
            }
        }
        self.discharge(|op| op.owner_dir() != Some(dir))
    }

    /// Takes every undischarged entry, oldest first.
    pub(crate) fn take(&mut self) -> Vec<Op> {
        self.bytes = 0;
        self.entries.drain(..).collect()
    }

    pub(crate) fn pending(&self) -> crate::Pending {
        let mut p = crate::Pending {
            log_bytes: self.bytes,
            forced_durable_ops: self.forced_ops,
            forced_durable_bytes: self.forced_bytes,
            ..crate::Pending::default()
        };
        for op in &self.entries {
            p.ops += 1;
            p.unsynced_bytes += op.written();
            if op.data_node().is_some() {
                p.data_ops += 1;
            } else {
                p.metadata_ops += 1;
            }
        }
        p
    }

    pub(crate) fn forced(&self) -> (u64, u64) {
        (self.forced_ops, self.forced_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(node: u64, old: usize) -> Op {
        Op::Write {
            node,
            off: 0,
            len: 10,
            old_len: 0,
            old: vec![0; old],
        }
    }

    #[test]
    fn fsync_discharges_only_that_files_data() {
        let mut log = UndoLog::new(DEFAULT_LOG_LIMIT);
        log.push(write(2, 1));
        log.push(write(3, 1));
        log.push(Op::Create {
            parent: 1,
            name: "a".into(),
            node: 2,
        });
        assert_eq!(log.discharge_data(2).len(), 1);
        let p = log.pending();
        assert_eq!(
            (p.ops, p.data_ops, p.metadata_ops, p.log_bytes),
            (2, 1, 1, 1)
        );
        assert_eq!(log.discharge_dir(1).len(), 1);
        assert_eq!(log.pending().ops, 1);
    }

    fn create(parent: u64, node: u64) -> Op {
        Op::Create {
            parent,
            name: "a".into(),
            node,
        }
    }

    #[test]
    fn under_journal_any_durability_point_discharges_every_namespace_change() {
        let mut log = UndoLog::new(DEFAULT_LOG_LIMIT);
        log.set_metadata(Metadata::Journal);
        log.push(create(1, 2));
        log.push(write(2, 1));
        log.push(create(5, 3));
        log.push(write(3, 1));
        // fsync of file 3: both creates (in any directory) and file 3's data.
        assert_eq!(log.discharge_data(3).len(), 3);
        let p = log.pending();
        assert_eq!((p.ops, p.data_ops, p.metadata_ops), (1, 1, 0));
        // fsyncdir of an unrelated directory: a later create, not file 2's data.
        log.push(create(7, 4));
        assert_eq!(log.discharge_dir(9).len(), 1);
        assert_eq!(log.pending().data_ops, 1);
        assert_eq!(log.pending().ops, 1);
    }

    #[test]
    fn metadata_names_round_trip() {
        for m in [Metadata::Strict, Metadata::Journal] {
            assert_eq!(m.to_string().parse::<Metadata>(), Ok(m));
        }
        assert_eq!(Metadata::default(), Metadata::Strict);
        assert!("ordered".parse::<Metadata>().is_err());
    }

    #[test]
    fn past_the_bound_the_oldest_entries_count_as_durable() {
        let mut log = UndoLog::new(10);
        assert!(log.push(write(2, 6)).is_empty());
        let dropped = log.push(write(3, 6));
        assert_eq!(dropped.len(), 1);
        let p = log.pending();
        assert_eq!(
            (
                p.ops,
                p.forced_durable_ops,
                p.forced_durable_bytes,
                p.log_bytes
            ),
            (1, 1, 10, 6)
        );
    }
}
