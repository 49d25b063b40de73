//! Shared fixture of the mount tests: a backing tree and a mount point in a temporary
//! directory, mounted, and unmounted on drop even when the test fails.

#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use sunder_diskfs::{Metadata, Mount};

/// Whether mount tests can run here: root and /dev/fuse. Without them the test prints why
/// and passes, unless `CI` is set, where it fails.
pub fn can_mount() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let why = if !root {
        "not root"
    } else if !Path::new("/dev/fuse").exists() {
        "no /dev/fuse"
    } else {
        return true;
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "mount tests need root and /dev/fuse ({why})"
    );
    eprintln!("skipped: mount tests need root and /dev/fuse ({why})");
    false
}

/// A mounted diskfs over a fresh backing tree. Field order matters: the mount drops (and
/// unmounts) before the temporary directory is removed.
pub struct Fx {
    pub mount: Option<Mount>,
    pub data: PathBuf,
    pub mnt: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Fx {
    pub fn new() -> Fx {
        Self::with(|_| {})
    }

    /// A fixture whose backing tree `prepare` fills before the mount (so it is durable).
    pub fn with(prepare: impl FnOnce(&Path)) -> Fx {
        Self::with_metadata(Metadata::Strict, prepare)
    }

    /// Like [`Fx::with`], with the mount's metadata durability model set right after mounting.
    pub fn with_metadata(metadata: Metadata, prepare: impl FnOnce(&Path)) -> Fx {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let mnt = dir.path().join("mnt");
        fs::create_dir(&data).unwrap();
        fs::create_dir(&mnt).unwrap();
        prepare(&data);
        let mount = Mount::mount(&data, &mnt).expect("mount");
        mount.set_metadata(metadata);
        assert_eq!(mount.metadata(), metadata);
        let data = mount.backing().to_path_buf();
        let mnt = mount.mountpoint().to_path_buf();
        Fx {
            mount: Some(mount),
            data,
            mnt,
            dir,
        }
    }

    pub fn m(&self) -> &Mount {
        self.mount.as_ref().unwrap()
    }

    /// A path through the mount.
    pub fn p(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    /// A path in the backing tree.
    pub fn b(&self, rel: &str) -> PathBuf {
        self.data.join(rel)
    }
}

pub fn write_at(path: &Path, off: u64, data: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    f.write_all_at(data, off).unwrap();
}

pub fn append(path: &Path, data: &[u8]) {
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(data).unwrap();
}

pub fn fsync(path: &Path) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .sync_all()
        .unwrap();
}

pub fn fsync_dir(path: &Path) {
    File::open(path).unwrap().sync_all().unwrap();
}

/// Creates `rel` through the mount with `data`, fsyncs it and its directory: durable.
pub fn durable_file(fx: &Fx, rel: &str, data: &[u8]) {
    let p = fx.p(rel);
    fs::write(&p, data).unwrap();
    fsync(&p);
    fsync_dir(p.parent().unwrap());
}
