//! An open network namespace that a process about to exec can enter.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// An open fd of `/run/netns/NAME`. Kept open for as long as node processes may be
/// (re)started in it.
#[derive(Debug)]
pub struct NsHandle {
    file: File,
    path: PathBuf,
}

impl NsHandle {
    pub fn open(path: impl Into<PathBuf>) -> io::Result<NsHandle> {
        let path = path.into();
        let file = File::open(&path)?;
        Ok(NsHandle { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the calling thread into the namespace. Allocates nothing and takes no lock,
    /// so that it is safe in `Command::pre_exec` (between fork and exec).
    pub fn enter(&self) -> io::Result<()> {
        // SAFETY: setns takes an fd we own (open for self's lifetime) and a flag; it only
        // changes the calling thread's namespace.
        let r = unsafe { libc::setns(self.file.as_raw_fd(), libc::CLONE_NEWNET) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}
