//! sunder-diskfs: a FUSE filesystem that keeps writes "unsynced" until fsync, so a fault can
//! drop them the way a power cut drops a kernel's page cache.
//!
//! ```text
//!   processes ──► mountpoint ──FUSE──► DiskFs ──► State ─┬─► backing tree (current view)
//!                                                        ├─► trash (removed, not yet durable)
//!                                                        └─► UndoLog (what fsync has not made durable)
//!   Mount::lose_unsynced / tear ──► State::rollback: undo entries applied newest first
//! ```
//!
//! - [`mount`] — [`Mount`], the mounted filesystem, its settings (`set_metadata`,
//!   `set_log_limit`) and its faults (`lose_unsynced`, `tear`).
//! - `fs` — the `fuser::Filesystem` that translates kernel requests for the state.
//! - `state` — the backing tree, nodes, open handles and log behind one lock; the rollback.
//! - `log` — the undo log, its discharge rules and its bound; [`Metadata`], the two models
//!   of when namespace changes become durable.
//! - `nodes` — FUSE inode numbers and the backing paths they follow across renames.
//! - [`report`] — [`Pending`] and [`Loss`], what is unsynced and what a fault dropped.
//! - [`corrupt`](mod@corrupt) — seeded bit flips or truncation of one file of a tree.
//! - [`cleanup`] — [`leftover_mounts`] and [`force_unmount`], for `sunder clean`.
//! - [`error`] — [`DiskError`].
//! - `rng` — the seeded generator behind every choice.
//!
//! # Model
//!
//! The backing directory always holds the current view: every mutating op is applied to it
//! at once, and an entry that undoes it is appended, in the same step, to one ordered undo
//! log. A removed file or directory (unlink, rmdir, a rename's replaced target) is moved into
//! the trash, the backing directory's sibling `.NAME.diskfs-trash`, so it can come back.
//!
//! # Durability rules
//!
//! - A write records the bytes it overwrites and the old length; a truncation (setattr
//!   size, `O_TRUNC`) the old length and the bytes cut off. `fsync`/`fdatasync` of a file,
//!   and every write through a handle opened `O_SYNC` or `O_DSYNC`, make all of that file's
//!   writes and truncations durable (under any of its names). `close` (FUSE flush) does not.
//! - Namespace changes — creating a name (create, mknod, mkdir, symlink, link), removing
//!   one (unlink, rmdir) and a rename — follow the mount's [`Metadata`] model, set with
//!   [`Mount::set_metadata`] right after mounting:
//!   - [`Metadata::Strict`] (the default, strict POSIX): a change is made durable by `fsync`
//!     of the directory that holds the name: the parent, and for a rename the destination's
//!     parent. A rename between two directories is durable when the destination is
//!     fsynced; if only the source is fsynced, only the name's departure is durable: after
//!     a loss the file is in neither directory (lost, as on a disk whose directories are
//!     written separately). A file's fsync does not make its name durable, nor the other
//!     way round.
//!   - [`Metadata::Journal`] (ext4 `data=ordered`, xfs: an ordered metadata journal): every
//!     durability point — `fsync`/`fdatasync` of any file, `fsyncdir` of any directory, a
//!     write through an `O_SYNC`/`O_DSYNC` handle — makes every namespace change made before
//!     it durable, in any directory. Durable names are thus always a prefix of the changes
//!     in the order they were made. File data stays per file: the point makes only its own
//!     file's data durable (a fsyncdir none). A size change (truncation, extension) is data
//!     under both models.
//!
//!   Data and names are undone independently: a file whose creation or rename is durable
//!   while its data is not keeps its (durable) name and is cut back to its durable content
//!   (empty if it was never fsynced); an undo of data follows the file to wherever it is.
//! - Durable entries leave the log; the trash they held is deleted. fsync also syncs the
//!   backing file or directory for real.
//! - `sync_file_range(2)` never reaches a FUSE filesystem (the kernel writes pages back
//!   and calls no fsync), so on its own it makes nothing durable here. Processes on a mount
//!   should get [`preload_library`] in `LD_PRELOAD` (the harness does that): it follows a
//!   call that waits for its range (`SYNC_FILE_RANGE_WAIT_AFTER`) with an `fdatasync`,
//!   which this filesystem sees. Programs that bypass libc (Go) are not reached; etcd,
//!   NATS and ZooKeeper make their data durable with fsync and fdatasync.
//! - Not tracked (never undone): mode, owner and time changes.
//! - The pre-images the log holds are bounded (default 256 MiB, [`Mount::set_log_limit`]):
//!   past it the oldest entries are treated as durable, and counted in
//!   [`Pending::forced_durable_ops`] and [`Loss::forced_durable_ops`].
//!
//! [`Mount::lose_unsynced`] applies every undischarged entry newest first. An entry whose
//! file has gone for good, or whose name is taken by a durable change, is skipped (a renamed
//! file whose old name is taken is lost, as on a disk).

pub mod cleanup;
pub mod corrupt;
pub mod error;
mod fs;
mod log;
pub mod mount;
mod nodes;
pub mod report;
mod rng;
mod state;

pub use cleanup::{force_unmount, leftover_mounts};
pub use corrupt::{Corrupted, Corruption, Damage, MAX_FLIPS, corrupt};
pub use error::DiskError;
pub use log::{DEFAULT_LOG_LIMIT, Metadata, UnknownMetadata};
pub use mount::{FS_NAME, FS_TYPE, Mount};
pub use report::{Loss, Pending, Torn};

/// The shared library to preload (`LD_PRELOAD`) into processes that use a mount, so that
/// `sync_file_range` with `SYNC_FILE_RANGE_WAIT_AFTER` makes its file's data durable here
/// (built by build.rs from `preload/sync_file_range.c`).
pub fn preload_library() -> &'static std::path::Path {
    std::path::Path::new(concat!(env!("OUT_DIR"), "/libsunder_diskfs_preload.so"))
}
