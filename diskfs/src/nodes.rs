//! [`NodeTable`]: FUSE inode numbers and the backing paths they stand for.
//!
//! A node is one backing inode, known by its `(st_dev, st_ino)` key, and keeps its number for
//! the life of the mount (nodes are never forgotten: the undo log may name them long after
//! the kernel has). Its path follows every rename, move to the trash and undo, so an undo
//! entry finds its file wherever it went. A hard-linked node keeps one of its names: the
//! last one it was looked up by.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The identity of a backing inode.
pub(crate) type Key = (u64, u64);

pub(crate) fn key_of(md: &Metadata) -> Key {
    (md.dev(), md.ino())
}

/// The key of what is at `path` now (not following a final symlink), if anything.
pub(crate) fn key_at(path: &Path) -> Option<Key> {
    std::fs::symlink_metadata(path).ok().map(|md| key_of(&md))
}

#[derive(Debug)]
struct Node {
    path: PathBuf,
    key: Key,
}

/// FUSE inode number to backing path and back.
#[derive(Debug)]
pub(crate) struct NodeTable {
    nodes: HashMap<u64, Node>,
    by_key: HashMap<Key, u64>,
    next: u64,
}

/// The FUSE number of the root directory.
pub(crate) const ROOT: u64 = 1;

impl NodeTable {
    pub(crate) fn new(root: PathBuf, root_md: &Metadata) -> Self {
        let key = key_of(root_md);
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node { path: root, key });
        NodeTable {
            nodes,
            by_key: HashMap::from([(key, ROOT)]),
            next: ROOT + 1,
        }
    }

    pub(crate) fn path(&self, ino: u64) -> Option<&Path> {
        self.nodes.get(&ino).map(|n| n.path.as_path())
    }

    pub(crate) fn key(&self, ino: u64) -> Option<Key> {
        self.nodes.get(&ino).map(|n| n.key)
    }

    /// The node of the inode at `path` (described by `md`), numbered on first sight; its
    /// path becomes `path`.
    pub(crate) fn intern(&mut self, path: PathBuf, md: &Metadata) -> u64 {
        let key = key_of(md);
        if let Some(&ino) = self.by_key.get(&key) {
            if let Some(node) = self.nodes.get_mut(&ino) {
                node.path = path;
            }
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.nodes.insert(ino, Node { path, key });
        self.by_key.insert(key, ino);
        ino
    }

    /// Node `ino` (a single inode, not a tree) now lives at `to`.
    pub(crate) fn set_path(&mut self, ino: u64, to: PathBuf) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.path = to;
        }
    }

    /// The tree at `from` moved to `to`: every node at or below `from` follows.
    pub(crate) fn renamed(&mut self, from: &Path, to: &Path) {
        for node in self.nodes.values_mut() {
            if let Ok(rest) = node.path.strip_prefix(from) {
                node.path = if rest.as_os_str().is_empty() {
                    to.to_path_buf()
                } else {
                    to.join(rest)
                };
            }
        }
    }

    /// The inode `key` was deleted for good: a new file may reuse its number in the backing
    /// file system, and must not be taken for this node.
    pub(crate) fn deleted(&mut self, key: Key) {
        self.by_key.remove(&key);
    }
}
