//! [`State`]: the backing tree, its nodes, open handles and the undo log, behind one lock.
//!
//! Every mutating op records its undo entry and applies the change to the backing tree in
//! one step under the lock; [`State::rollback`] applies the undischarged entries backwards.

use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use fuser::{Errno, FileType};

use crate::log::{Op, UndoLog};
use crate::nodes::{NodeTable, key_at, key_of};
use crate::rng::SplitMix;
use crate::{Loss, Pending, Torn};

/// An open file or directory of the mount.
#[derive(Debug)]
enum Handle {
    File {
        node: u64,
        file: File,
        writable: bool,
        append: bool,
        sync: bool,
    },
    Dir {
        entries: Vec<(u64, FileType, OsString)>,
    },
}

/// Times for `setattr`: `None` leaves a time as it is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Time {
    Now,
    At(std::time::SystemTime),
}

/// Mode, owner, size and times for `setattr`.
#[derive(Debug, Default)]
pub(crate) struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<Time>,
    pub mtime: Option<Time>,
}

/// Everything the FUSE server and the [`crate::Mount`] share.
#[derive(Debug)]
pub(crate) struct State {
    trash: PathBuf,
    nodes: NodeTable,
    log: UndoLog,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    next_trash: u64,
}

/// Largest read served at once (the kernel asks for at most its max_read).
const MAX_READ: u32 = 16 << 20;

fn errno(e: io::Error) -> Errno {
    Errno::from(e)
}

fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

fn kind_of(md: &Metadata) -> FileType {
    FileType::from_std(md.file_type()).unwrap_or(FileType::RegularFile)
}

fn cstring(p: &Path) -> Result<CString, Errno> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

fn is_empty_dir(p: &Path) -> io::Result<bool> {
    Ok(fs::read_dir(p)?.next().is_none())
}

fn read_range(file: &File, off: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut buf =
        vec![0u8; usize::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?];
    file.read_exact_at(&mut buf, off)?;
    Ok(buf)
}

fn remove_any(p: &Path) -> io::Result<()> {
    let md = fs::symlink_metadata(p)?;
    if md.is_dir() {
        fs::remove_dir_all(p)
    } else {
        fs::remove_file(p)
    }
}

/// Sets the owner of a new file to the caller's, as the kernel would.
fn chown_to(path: &Path, owner: (u32, u32)) -> Result<(), Errno> {
    // SAFETY: geteuid/getegid have no preconditions.
    let me = unsafe { (libc::geteuid(), libc::getegid()) };
    if owner != me {
        std::os::unix::fs::lchown(path, Some(owner.0), Some(owner.1)).map_err(errno)?;
    }
    Ok(())
}

fn utimens(path: &Path, atime: Option<Time>, mtime: Option<Time>) -> Result<(), Errno> {
    let spec = |t: Option<Time>| match t {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(Time::Now) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(Time::At(t)) => match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => libc::timespec {
                tv_sec: d.as_secs() as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            },
            Err(e) => {
                let d = e.duration();
                libc::timespec {
                    tv_sec: -(d.as_secs() as libc::time_t),
                    tv_nsec: 0,
                }
            }
        },
    };
    let times = [spec(atime), spec(mtime)];
    let c = cstring(path)?;
    // SAFETY: c is a valid C string and times an array of two timespecs, as utimensat needs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno(io::Error::last_os_error()))
    }
}

/// Deletes the trash of entries that became durable.
fn drop_trash(nodes: &mut NodeTable, ops: Vec<Op>) {
    for op in ops {
        if let Some(trash) = op.trash() {
            if let Some(key) = key_at(trash) {
                nodes.deleted(key);
            }
            if let Err(e) = remove_any(trash) {
                tracing::warn!(path = %trash.display(), error = %e, "cannot delete a trash item");
            }
        }
    }
}

impl State {
    pub(crate) fn new(root: PathBuf, trash: PathBuf, root_md: &Metadata, log_limit: u64) -> Self {
        State {
            trash,
            nodes: NodeTable::new(root, root_md),
            log: UndoLog::new(log_limit),
            handles: HashMap::new(),
            next_fh: 1,
            next_trash: 0,
        }
    }

    fn path(&self, ino: u64) -> Result<PathBuf, Errno> {
        self.nodes
            .path(ino)
            .map(Path::to_path_buf)
            .ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: u64, name: &OsStr) -> Result<PathBuf, Errno> {
        let b = name.as_bytes();
        if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') {
            return Err(Errno::EINVAL);
        }
        if b.len() > 255 {
            return Err(Errno::ENAMETOOLONG);
        }
        Ok(self.path(parent)?.join(name))
    }

    fn trash_slot(&mut self) -> PathBuf {
        self.next_trash += 1;
        self.trash.join(self.next_trash.to_string())
    }

    fn record(&mut self, op: Op) {
        let dropped = self.log.push(op);
        drop_trash(&mut self.nodes, dropped);
    }

    fn new_fh(&mut self, h: Handle) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, h);
        fh
    }

    pub(crate) fn open_handles(&self) -> usize {
        self.handles.len()
    }

    pub(crate) fn pending(&self) -> Pending {
        self.log.pending()
    }

    pub(crate) fn set_metadata(&mut self, metadata: crate::Metadata) {
        self.log.set_metadata(metadata);
    }

    pub(crate) fn metadata(&self) -> crate::Metadata {
        self.log.metadata()
    }

    pub(crate) fn set_log_limit(&mut self, limit: u64) {
        let dropped = self.log.set_limit(limit);
        drop_trash(&mut self.nodes, dropped);
    }

    pub(crate) fn lookup(&mut self, parent: u64, name: &OsStr) -> Result<(u64, Metadata), Errno> {
        let path = self.child(parent, name)?;
        let md = fs::symlink_metadata(&path).map_err(errno)?;
        Ok((self.nodes.intern(path, &md), md))
    }

    pub(crate) fn getattr(&self, ino: u64, fh: Option<u64>) -> Result<Metadata, Errno> {
        if let Some(Handle::File { file, .. }) = fh.and_then(|fh| self.handles.get(&fh)) {
            return file.metadata().map_err(errno);
        }
        fs::symlink_metadata(self.path(ino)?).map_err(errno)
    }

    /// Records and applies a length change of file `node` through `file`.
    fn set_len(&mut self, node: u64, file: &File, new_len: u64) -> Result<(), Errno> {
        if new_len > i64::MAX as u64 {
            return Err(Errno::EFBIG);
        }
        let old_len = file.metadata().map_err(errno)?.len();
        if old_len == new_len {
            return Ok(());
        }
        let cut_len = old_len.saturating_sub(new_len);
        if self.log.fits(cut_len) {
            let cut = read_range(file, new_len, cut_len).map_err(errno)?;
            self.record(Op::SetLen {
                node,
                old_len,
                new_len,
                cut,
            });
        } else {
            self.log.force(0);
        }
        file.set_len(new_len).map_err(errno)
    }

    pub(crate) fn setattr(
        &mut self,
        ino: u64,
        fh: Option<u64>,
        a: SetAttr,
    ) -> Result<Metadata, Errno> {
        let path = self.path(ino);
        if let Some(size) = a.size {
            let via_handle = match fh.and_then(|fh| self.handles.get(&fh)) {
                Some(Handle::File {
                    file,
                    writable: true,
                    ..
                }) => Some(file.try_clone().map_err(errno)?),
                _ => None,
            };
            let file = match via_handle {
                Some(f) => f,
                None => OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path.clone()?)
                    .map_err(errno)?,
            };
            self.set_len(ino, &file, size)?;
        }
        let path = path?;
        if let Some(mode) = a.mode {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777)).map_err(errno)?;
        }
        if a.uid.is_some() || a.gid.is_some() {
            std::os::unix::fs::lchown(&path, a.uid, a.gid).map_err(errno)?;
        }
        if a.atime.is_some() || a.mtime.is_some() {
            utimens(&path, a.atime, a.mtime)?;
        }
        self.getattr(ino, fh)
    }

    pub(crate) fn readlink(&self, ino: u64) -> Result<Vec<u8>, Errno> {
        Ok(fs::read_link(self.path(ino)?)
            .map_err(errno)?
            .into_os_string()
            .into_vec())
    }

    /// Numbers a new name and records its creation.
    fn created(
        &mut self,
        parent: u64,
        name: &OsStr,
        path: PathBuf,
    ) -> Result<(u64, Metadata), Errno> {
        let md = fs::symlink_metadata(&path).map_err(errno)?;
        let node = self.nodes.intern(path, &md);
        self.record(Op::Create {
            parent,
            name: name.to_owned(),
            node,
        });
        Ok((node, md))
    }

    pub(crate) fn mknod(
        &mut self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u32,
        owner: (u32, u32),
    ) -> Result<(u64, Metadata), Errno> {
        let path = self.child(parent, name)?;
        let c = cstring(&path)?;
        // SAFETY: c is a valid C string.
        if unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, libc::dev_t::from(rdev)) } != 0 {
            return Err(errno(io::Error::last_os_error()));
        }
        // The server's umask must not narrow the caller's mode.
        let _ = fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777));
        chown_to(&path, owner)?;
        self.created(parent, name, path)
    }

    pub(crate) fn mkdir(
        &mut self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        owner: (u32, u32),
    ) -> Result<(u64, Metadata), Errno> {
        let path = self.child(parent, name)?;
        fs::DirBuilder::new()
            .mode(mode & 0o7777)
            .create(&path)
            .map_err(errno)?;
        let _ = fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777));
        chown_to(&path, owner)?;
        self.created(parent, name, path)
    }

    pub(crate) fn symlink(
        &mut self,
        parent: u64,
        name: &OsStr,
        target: &Path,
        owner: (u32, u32),
    ) -> Result<(u64, Metadata), Errno> {
        let path = self.child(parent, name)?;
        std::os::unix::fs::symlink(target, &path).map_err(errno)?;
        chown_to(&path, owner)?;
        self.created(parent, name, path)
    }

    pub(crate) fn link(
        &mut self,
        ino: u64,
        newparent: u64,
        newname: &OsStr,
    ) -> Result<(u64, Metadata), Errno> {
        let from = self.path(ino)?;
        let to = self.child(newparent, newname)?;
        fs::hard_link(&from, &to).map_err(errno)?;
        let md = fs::symlink_metadata(&to).map_err(errno)?;
        self.record(Op::Create {
            parent: newparent,
            name: newname.to_owned(),
            node: ino,
        });
        Ok((ino, md))
    }

    /// Moves `path` (node `node`) into the trash; returns where it went.
    fn move_to_trash(&mut self, path: &Path, node: u64) -> Result<PathBuf, Errno> {
        let slot = self.trash_slot();
        fs::rename(path, &slot).map_err(errno)?;
        self.nodes.renamed(path, &slot);
        self.nodes.set_path(node, slot.clone());
        Ok(slot)
    }

    pub(crate) fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> Result<(), Errno> {
        let path = self.child(parent, name)?;
        let md = fs::symlink_metadata(&path).map_err(errno)?;
        match (dir, md.is_dir()) {
            (false, true) => return Err(Errno::EISDIR),
            (true, false) => return Err(Errno::ENOTDIR),
            (true, true) if !is_empty_dir(&path).map_err(errno)? => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let node = self.nodes.intern(path.clone(), &md);
        let trash = self.move_to_trash(&path, node)?;
        self.record(Op::Remove {
            parent,
            name: name.to_owned(),
            node,
            trash,
        });
        Ok(())
    }

    pub(crate) fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
    ) -> Result<(), Errno> {
        if flags & !(libc::RENAME_NOREPLACE) != 0 {
            return Err(Errno::EINVAL);
        }
        let from = self.child(parent, name)?;
        let to = self.child(newparent, newname)?;
        let md_from = fs::symlink_metadata(&from).map_err(errno)?;
        if md_from.is_dir() && to.starts_with(&from) {
            return Err(Errno::EINVAL);
        }
        let node = self.nodes.intern(from.clone(), &md_from);
        let mut replaced = None;
        match fs::symlink_metadata(&to) {
            Ok(md_to) => {
                if flags & libc::RENAME_NOREPLACE != 0 {
                    return Err(Errno::EEXIST);
                }
                if key_of(&md_to) == key_of(&md_from) {
                    return Ok(());
                }
                match (md_from.is_dir(), md_to.is_dir()) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) if !is_empty_dir(&to).map_err(errno)? => {
                        return Err(Errno::ENOTEMPTY);
                    }
                    _ => {}
                }
                let rnode = self.nodes.intern(to.clone(), &md_to);
                replaced = Some((rnode, self.move_to_trash(&to, rnode)?));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(errno(e)),
        }
        if let Err(e) = fs::rename(&from, &to) {
            if let Some((rnode, trash)) = &replaced {
                if fs::rename(trash, &to).is_ok() {
                    self.nodes.set_path(*rnode, to.clone());
                }
            }
            return Err(errno(e));
        }
        self.nodes.renamed(&from, &to);
        self.record(Op::Rename {
            parent,
            name: name.to_owned(),
            newparent,
            newname: newname.to_owned(),
            node,
            replaced,
            source_synced: false,
        });
        Ok(())
    }

    fn file_handle(&mut self, node: u64, file: File, flags: i32) -> Result<u64, Errno> {
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        if writable && flags & libc::O_TRUNC != 0 {
            self.set_len(node, &file, 0)?;
        }
        let sync = flags & (libc::O_SYNC | libc::O_DSYNC) != 0;
        let append = flags & libc::O_APPEND != 0;
        Ok(self.new_fh(Handle::File {
            node,
            file,
            writable,
            append,
            sync,
        }))
    }

    fn open_backing(path: &Path, flags: i32) -> io::Result<File> {
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        // Writable handles also read: the pre-image of each write comes through them.
        OpenOptions::new()
            .read(true)
            .write(writable)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
    }

    pub(crate) fn open(&mut self, ino: u64, flags: i32) -> Result<u64, Errno> {
        let file = Self::open_backing(&self.path(ino)?, flags).map_err(errno)?;
        self.file_handle(ino, file, flags)
    }

    pub(crate) fn create(
        &mut self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        owner: (u32, u32),
    ) -> Result<(u64, Metadata, u64), Errno> {
        let path = self.child(parent, name)?;
        let made = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode & 0o7777)
            .open(&path);
        let (node, file) = match made {
            Ok(file) => {
                let _ = file.set_permissions(fs::Permissions::from_mode(mode & 0o7777));
                chown_to(&path, owner)?;
                let (node, _) = self.created(parent, name, path)?;
                (node, file)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && flags & libc::O_EXCL == 0 => {
                let file = Self::open_backing(&path, flags | libc::O_RDWR).map_err(errno)?;
                let md = file.metadata().map_err(errno)?;
                (self.nodes.intern(path, &md), file)
            }
            Err(e) => return Err(errno(e)),
        };
        let fh = self.file_handle(node, file, flags)?;
        let md = self.getattr(node, Some(fh))?;
        Ok((node, md, fh))
    }

    pub(crate) fn read(&self, fh: u64, off: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let Some(Handle::File { file, .. }) = self.handles.get(&fh) else {
            return Err(Errno::EBADF);
        };
        let mut buf = vec![0u8; size.min(MAX_READ) as usize];
        let mut got = 0;
        while got < buf.len() {
            match file.read_at(&mut buf[got..], off + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(errno(e)),
            }
        }
        buf.truncate(got);
        Ok(buf)
    }

    pub(crate) fn write(&mut self, fh: u64, off: u64, data: &[u8]) -> Result<u32, Errno> {
        let Some(Handle::File {
            node,
            file,
            writable,
            append,
            sync,
        }) = self.handles.get(&fh)
        else {
            return Err(Errno::EBADF);
        };
        if !writable {
            return Err(Errno::EBADF);
        }
        let (node, append, sync) = (*node, *append, *sync);
        let file = file.try_clone().map_err(errno)?;
        let len = data.len() as u64;
        let written = u32::try_from(data.len()).map_err(|_| Errno::EINVAL)?;
        let old_len = file.metadata().map_err(errno)?.len();
        let off = if append { old_len } else { off };
        if off.checked_add(len).is_none_or(|end| end > i64::MAX as u64) {
            return Err(Errno::EFBIG);
        }
        if len == 0 {
            return Ok(0);
        }
        let keep = old_len.min(off + len).saturating_sub(off);
        if self.log.fits(keep) {
            let old = read_range(&file, off, keep).map_err(errno)?;
            self.record(Op::Write {
                node,
                off,
                len,
                old_len,
                old,
            });
        } else {
            self.log.force(len);
        }
        file.write_all_at(data, off).map_err(errno)?;
        if sync {
            file.sync_data().map_err(errno)?;
            let gone = self.log.discharge_data(node);
            drop_trash(&mut self.nodes, gone);
        }
        Ok(written)
    }

    pub(crate) fn release(&mut self, fh: u64) {
        self.handles.remove(&fh);
    }

    pub(crate) fn fsync(&mut self, ino: u64, fh: u64, datasync: bool) -> Result<(), Errno> {
        let file = match self.handles.get(&fh) {
            Some(Handle::File { file, .. }) => file.try_clone().map_err(errno)?,
            _ => File::open(self.path(ino)?).map_err(errno)?,
        };
        if datasync {
            file.sync_data()
        } else {
            file.sync_all()
        }
        .map_err(errno)?;
        let gone = self.log.discharge_data(ino);
        drop_trash(&mut self.nodes, gone);
        Ok(())
    }

    pub(crate) fn opendir(&mut self, ino: u64) -> Result<u64, Errno> {
        let path = self.path(ino)?;
        let mut entries = vec![
            (ino, FileType::Directory, OsString::from(".")),
            (ino, FileType::Directory, OsString::from("..")),
        ];
        for entry in fs::read_dir(&path).map_err(errno)? {
            let entry = entry.map_err(errno)?;
            let child = entry.path();
            let Ok(md) = fs::symlink_metadata(&child) else {
                continue;
            };
            let kind = kind_of(&md);
            entries.push((self.nodes.intern(child, &md), kind, entry.file_name()));
        }
        Ok(self.new_fh(Handle::Dir { entries }))
    }

    /// Entries of an open directory from index `offset` on.
    pub(crate) fn dir_entries(
        &self,
        fh: u64,
        offset: u64,
    ) -> Result<&[(u64, FileType, OsString)], Errno> {
        let Some(Handle::Dir { entries }) = self.handles.get(&fh) else {
            return Err(Errno::EBADF);
        };
        Ok(entries.get(offset as usize..).unwrap_or(&[]))
    }

    pub(crate) fn fsyncdir(&mut self, ino: u64) -> Result<(), Errno> {
        File::open(self.path(ino)?)
            .and_then(|d| d.sync_all())
            .map_err(errno)?;
        let gone = self.log.discharge_dir(ino);
        drop_trash(&mut self.nodes, gone);
        Ok(())
    }

    pub(crate) fn statfs(&self) -> Result<libc::statvfs, Errno> {
        let c = cstring(&self.path(crate::nodes::ROOT)?)?;
        // SAFETY: statvfs is plain data; the call fills it or fails.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: c is a valid C string and st a valid out pointer.
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return Err(errno(io::Error::last_os_error()));
        }
        Ok(st)
    }

    pub(crate) fn exists(&self, ino: u64) -> Result<(), Errno> {
        fs::symlink_metadata(self.path(ino)?)
            .map(|_| ())
            .map_err(errno)
    }

    /// The write `tear` cuts: index in `ops` and bytes kept. Candidates are the files with
    /// an undischarged write whose creation is not itself undone, by node number.
    fn choose_tear(ops: &[Op], seed: u64) -> Option<(usize, u64)> {
        let created: Vec<u64> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Create { node, .. } => Some(*node),
                _ => None,
            })
            .collect();
        let mut cands: Vec<u64> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Write { node, .. } if !created.contains(node) => Some(*node),
                _ => None,
            })
            .collect();
        cands.sort_unstable();
        cands.dedup();
        if cands.is_empty() {
            return None;
        }
        let mut rng = SplitMix::new(seed);
        let pick = cands[rng.below(cands.len() as u64) as usize];
        let (k, len) = ops.iter().enumerate().rev().find_map(|(i, op)| match op {
            Op::Write { node, len, .. } if *node == pick => Some((i, *len)),
            _ => None,
        })?;
        Some((k, rng.below(len)))
    }

    /// Applies every undischarged entry backwards; with a seed, keeps a seeded prefix of
    /// one file's last unsynced write (see [`crate::Mount::tear`]).
    pub(crate) fn rollback(&mut self, seed: Option<u64>) -> Loss {
        let ops = self.log.take();
        let mut loss = Loss::default();
        (loss.forced_durable_ops, loss.forced_durable_bytes) = self.log.forced();
        let tear = seed.and_then(|s| Self::choose_tear(&ops, s));
        let mut stash = None;
        for (i, op) in ops.iter().enumerate().rev() {
            if let (Some((k, kept)), Op::Write { node, off, len, .. }) = (tear, op) {
                if k == i {
                    let bytes = self
                        .nodes
                        .path(*node)
                        .and_then(|p| File::open(p).ok())
                        .and_then(|f| read_range(&f, *off, kept).ok());
                    stash = bytes.map(|b| (*node, *off, *len, b));
                }
            }
            loss.ops += 1;
            loss.bytes += op.written();
            if let Err(e) = self.undo(op, &mut loss) {
                loss.errors.push(e);
            }
        }
        if let Some((node, off, len, bytes)) = stash {
            let path = self.nodes.path(node).map(Path::to_path_buf);
            let kept = bytes.len() as u64;
            let done = path
                .as_deref()
                .and_then(|p| OpenOptions::new().write(true).open(p).ok())
                .map(|f| f.write_all_at(&bytes, off));
            match (path, done) {
                (Some(path), Some(Ok(()))) => {
                    loss.bytes -= kept;
                    loss.torn = Some(Torn {
                        path,
                        offset: off,
                        len,
                        kept,
                    });
                }
                (path, done) => loss
                    .errors
                    .push(format!("tear of {path:?} at {off}: {done:?}")),
            }
        }
        // What is still in the trash belongs to no entry any more.
        if let Ok(dir) = fs::read_dir(&self.trash) {
            for entry in dir.flatten() {
                if let Some(key) = key_at(&entry.path()) {
                    self.nodes.deleted(key);
                }
                let _ = remove_any(&entry.path());
            }
        }
        loss.files.sort();
        loss.files.dedup();
        loss
    }

    fn live(&self, node: u64) -> Option<PathBuf> {
        let path = self.nodes.path(node)?;
        (key_at(path)? == self.nodes.key(node)?).then(|| path.to_path_buf())
    }

    fn undo(&mut self, op: &Op, loss: &mut Loss) -> Result<(), String> {
        let fail = |what: &str, p: &Path, e: io::Error| format!("undo {what} {}: {e}", p.display());
        match op {
            Op::Write {
                node,
                off,
                old_len,
                old,
                ..
            } => {
                let Some(path) = self.live(*node) else {
                    return Ok(());
                };
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| fail("write", &path, e))?;
                f.write_all_at(old, *off)
                    .and_then(|()| f.set_len(*old_len))
                    .map_err(|e| fail("write", &path, e))?;
                loss.files.push(path);
            }
            Op::SetLen {
                node,
                old_len,
                new_len,
                cut,
            } => {
                let Some(path) = self.live(*node) else {
                    return Ok(());
                };
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| fail("truncate", &path, e))?;
                f.set_len(*old_len)
                    .and_then(|()| f.write_all_at(cut, *new_len))
                    .map_err(|e| fail("truncate", &path, e))?;
                loss.files.push(path);
            }
            Op::Create { parent, name, node } => {
                let Some(dir) = self.nodes.path(*parent) else {
                    return Ok(());
                };
                let path = dir.join(name);
                let Ok(md) = fs::symlink_metadata(&path) else {
                    return Ok(());
                };
                if Some(key_of(&md)) != self.nodes.key(*node) {
                    return Ok(());
                }
                remove_any(&path).map_err(|e| fail("create", &path, e))?;
                if md.nlink() <= 1 || md.is_dir() {
                    self.nodes.deleted(key_of(&md));
                }
                loss.names.push(path);
            }
            Op::Remove {
                parent,
                name,
                node,
                trash,
            } => {
                let Some(dir) = self.nodes.path(*parent) else {
                    return Ok(());
                };
                let path = dir.join(name);
                if exists(&path) || !exists(trash) {
                    return Ok(());
                }
                fs::rename(trash, &path).map_err(|e| fail("remove", &path, e))?;
                self.nodes.renamed(trash, &path);
                self.nodes.set_path(*node, path.clone());
                loss.names.push(path);
            }
            Op::Rename {
                parent,
                name,
                newparent,
                newname,
                node,
                replaced,
                source_synced,
            } => {
                let (Some(from_dir), Some(to_dir)) =
                    (self.nodes.path(*parent), self.nodes.path(*newparent))
                else {
                    return Ok(());
                };
                let (from, to) = (from_dir.join(name), to_dir.join(newname));
                if key_at(&to).is_some() && key_at(&to) == self.nodes.key(*node) {
                    // Back where it came from; if that name is taken by now, or its departure
                    // from there is durable, the node is lost.
                    let back = if *source_synced || exists(&from) {
                        self.trash_slot()
                    } else {
                        from.clone()
                    };
                    fs::rename(&to, &back).map_err(|e| fail("rename", &to, e))?;
                    self.nodes.renamed(&to, &back);
                }
                if let Some((rnode, trash)) = replaced {
                    if !exists(&to) && exists(trash) {
                        fs::rename(trash, &to).map_err(|e| fail("rename", &to, e))?;
                        self.nodes.renamed(trash, &to);
                        self.nodes.set_path(*rnode, to.clone());
                    }
                }
                loss.names.push(to);
            }
        }
        Ok(())
    }
}
