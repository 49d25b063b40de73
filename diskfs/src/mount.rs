//! [`Mount`]: a mounted diskfs, and the faults it can inject.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fuser::{BackgroundSession, Config, MountOption};

use crate::fs::DiskFs;
use crate::log::DEFAULT_LOG_LIMIT;
use crate::state::State;
use crate::{DiskError, Loss, Metadata, Pending};

/// The name the mount shows as its source, and its FUSE subtype: its type in
/// `/proc/self/mountinfo` is [`FS_TYPE`].
pub const FS_NAME: &str = "sunder-diskfs";
/// The file system type of a diskfs mount in `/proc/self/mountinfo`.
pub const FS_TYPE: &str = "fuse.sunder-diskfs";

/// How long [`Mount::lose_unsynced`] waits for the kernel's last `release` of files closed
/// by processes that have just stopped (the kernel sends them asynchronously).
const RELEASE_GRACE: Duration = Duration::from_secs(2);

/// A mounted diskfs: `mountpoint` serves `backing` and keeps what fsync has not made durable
/// undoable (see the crate documentation for the rules).
///
/// The FUSE server runs on a background thread of this process. Dropping the `Mount`
/// unmounts it (lazily if busy); the backing tree then holds the current view.
#[derive(Debug)]
pub struct Mount {
    session: Option<BackgroundSession>,
    state: Arc<Mutex<State>>,
    backing: PathBuf,
    mountpoint: PathBuf,
    trash: PathBuf,
}

/// The trash of `backing`: its sibling `.NAME.diskfs-trash`.
pub(crate) fn trash_of(backing: &Path) -> PathBuf {
    let name = backing
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    backing.with_file_name(format!(".{name}.diskfs-trash"))
}

impl Mount {
    /// Serves `mountpoint` as a passthrough of the directory `backing`.
    ///
    /// The trash of removed files is the sibling directory `.NAME.diskfs-trash` of `backing`
    /// (so `backing`'s parent must be writable and on the same file system); it is emptied
    /// at mount and deleted at unmount. `mountpoint` must not lie inside `backing`.
    #[allow(clippy::self_named_constructors)] // `Mount::mount(backing, mountpoint)` reads as what it does
    pub fn mount(backing: &Path, mountpoint: &Path) -> Result<Mount, DiskError> {
        let backing = backing
            .canonicalize()
            .map_err(DiskError::io("resolving", backing))?;
        let root_md = fs::metadata(&backing).map_err(DiskError::io("stat", &backing))?;
        if !root_md.is_dir() {
            return Err(DiskError::NotADirectory(backing));
        }
        let mountpoint = mountpoint
            .canonicalize()
            .map_err(DiskError::io("resolving", mountpoint))?;
        if mountpoint.starts_with(&backing) {
            return Err(DiskError::Nested {
                backing,
                mountpoint,
            });
        }
        let trash = trash_of(&backing);
        if fs::symlink_metadata(&trash).is_ok() {
            fs::remove_dir_all(&trash).map_err(DiskError::io("clearing the trash", &trash))?;
        }
        fs::create_dir(&trash).map_err(DiskError::io("creating the trash", &trash))?;
        let state = Arc::new(Mutex::new(State::new(
            backing.clone(),
            trash.clone(),
            &root_md,
            DEFAULT_LOG_LIMIT,
        )));
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName(FS_NAME.to_string()),
            // As a kernel option: fuser passes `Subtype` only to fusermount, not to mount(2).
            MountOption::CUSTOM(format!("subtype={FS_NAME}")),
            MountOption::DefaultPermissions,
            MountOption::RW,
        ];
        let fs = DiskFs {
            state: state.clone(),
        };
        let session = fuser::spawn_mount(fs, &mountpoint, &config).map_err(|source| {
            let _ = fs::remove_dir(&trash);
            DiskError::Mount {
                mountpoint: mountpoint.clone(),
                source,
            }
        })?;
        tracing::debug!(backing = %backing.display(), mountpoint = %mountpoint.display(), "diskfs mounted");
        Ok(Mount {
            session: Some(session),
            state,
            backing,
            mountpoint,
            trash,
        })
    }

    /// The backing tree (canonical): the current view, readable directly.
    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// The mount point (canonical).
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What fsync has not made durable yet.
    pub fn pending(&self) -> Pending {
        self.lock().pending()
    }

    /// Chooses when namespace changes become durable (see [`Metadata`]); a mount starts
    /// [`Metadata::Strict`]. Call it right after [`Mount::mount`], before any process uses
    /// the mount. Changed later, it applies from the next durability point on: changes
    /// already durable stay so, pending ones wait for that point.
    pub fn set_metadata(&self, metadata: Metadata) {
        self.lock().set_metadata(metadata);
        tracing::debug!(%metadata, "diskfs metadata durability model");
    }

    /// The metadata durability model in force.
    pub fn metadata(&self) -> Metadata {
        self.lock().metadata()
    }

    /// Bounds the pre-image bytes the undo log holds (default 256 MiB). Past the bound the
    /// oldest entries are treated as durable, and counted as such in [`Pending`] and [`Loss`].
    pub fn set_log_limit(&self, bytes: u64) {
        self.lock().set_log_limit(bytes);
    }

    /// Waits for open handles to be released, then rolls back under the lock.
    fn rollback(&self, seed: Option<u64>) -> Result<Loss, DiskError> {
        let deadline = Instant::now() + RELEASE_GRACE;
        loop {
            let mut state = self.lock();
            let open = state.open_handles();
            if open == 0 {
                let loss = state.rollback(seed);
                tracing::info!(ops = loss.ops, bytes = loss.bytes, torn = ?loss.torn, "diskfs dropped unsynced changes");
                return Ok(loss);
            }
            drop(state);
            if Instant::now() >= deadline {
                return Err(DiskError::Busy { open });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Drops every change fsync has not made durable, as a power cut would: applies the
    /// undischarged undo entries in reverse order to the backing tree.
    ///
    /// Precondition: every process using the mount has stopped. Files still open after a
    /// short grace (the kernel releases closed files asynchronously) make this fail with
    /// [`DiskError::Busy`] and change nothing.
    pub fn lose_unsynced(&self) -> Result<Loss, DiskError> {
        self.rollback(None)
    }

    /// Like [`Mount::lose_unsynced`], but one file, chosen by `seed` among those with an
    /// unsynced write (and whose creation is not itself dropped), keeps a seeded prefix
    /// `0 <= kept < len` of its last unsynced write, on top of its durable content: a torn
    /// write. Deterministic for a seed and a log; `Loss::torn` tells what was kept. With no
    /// such file it is exactly `lose_unsynced`.
    pub fn tear(&self, seed: u64) -> Result<Loss, DiskError> {
        self.rollback(Some(seed))
    }

    fn shutdown(&mut self) -> Result<(), DiskError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        if let Err(e) = session.umount_and_join() {
            tracing::warn!(mountpoint = %self.mountpoint.display(), error = %e, "unmount failed; detaching lazily");
            crate::cleanup::force_unmount(&self.mountpoint)?;
        }
        if let Err(e) = fs::remove_dir_all(&self.trash) {
            tracing::warn!(path = %self.trash.display(), error = %e, "cannot delete the trash");
        }
        Ok(())
    }

    /// Unmounts (lazily if busy). The backing tree keeps the current view, unsynced
    /// changes included.
    pub fn unmount(mut self) -> Result<(), DiskError> {
        self.shutdown()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "diskfs unmount on drop failed");
        }
    }
}
