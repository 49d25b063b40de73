//! [`DiskError`]: what can go wrong when mounting, dropping writes or corrupting files.

use std::io;
use std::path::PathBuf;

/// An error of this crate.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// A file system call on the backing tree (or on a file to corrupt) failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The error of the system call.
        source: io::Error,
    },
    /// The backing path is not a directory.
    #[error("backing {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// The mount point lies inside the backing tree, which would make the tree contain itself.
    #[error("mount point {} lies inside the backing tree {}", mountpoint.display(), backing.display())]
    Nested {
        /// The backing tree.
        backing: PathBuf,
        /// The mount point.
        mountpoint: PathBuf,
    },
    /// The FUSE mount could not be set up.
    #[error("mounting {} failed: {source}", mountpoint.display())]
    Mount {
        /// The mount point.
        mountpoint: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Files of the mount are still open: dropping unsynced writes under a running process
    /// would hand it a view that changes under its feet.
    #[error("{open} file(s) still open on the mount; stop every process using it first")]
    Busy {
        /// How many file handles are open.
        open: usize,
    },
    /// `corrupt` found no non-empty regular file to corrupt.
    #[error("no non-empty regular file under {}", .0.display())]
    NothingToCorrupt(PathBuf),
    /// Unmounting failed, also lazily.
    #[error("unmounting {} failed: {detail}", path.display())]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// What the unmount tools said.
        detail: String,
    },
}

impl DiskError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| DiskError::Io { what, path, source }
    }
}
