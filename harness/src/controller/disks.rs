//! The nodes' disks for disk faults (`--nemesis lose-unsynced,torn-write,corrupt` or
//! `disk`): each member's data directory `nodes/<id>/` is a `sunder-diskfs` mount backed by
//! `nodes/<id>.disk/`, which keeps every write the node has not fsynced in an undo log, so
//! that a fault can drop it as a power cut would.
//!
//! ```text
//!   nodes/n1/        the mount: the node reads and writes here
//!   nodes/n1.disk/   the backing tree: always the current view
//!   (after the run)  unmounted, n1.disk/ renamed to n1/: the data as the node left it
//! ```
//!
//! What start-up writes into a data directory (a spec's config files, PBFT's key files)
//! is made durable before any node starts ([`NodeDisks::sync_all`]): a power cut does not
//! take away a machine's installation.
//!
//! Dropping [`NodeDisks`] unmounts every mount (lazily when something still holds it) and
//! puts the data back at `nodes/<id>/`; `sunder clean` unmounts what a killed controller
//! left ([`leftovers`]).

use anyhow::Context;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use sunder_diskfs::{Corruption, Damage, Loss, Metadata, Mount};
use sunder_nemesis::{DiskMode, NodeId};

/// The disk step of a disk fault, on a node its caller has already killed: [`NodeDisks`]
/// in a run (a test of the cluster may give a fake of this layer).
pub trait DiskStep: Send {
    /// What the fault does to `id`'s disk. `Err` when it did nothing it could vouch for
    /// (the mount still busy, no file to corrupt); `Ok` says what it did, and in
    /// [`DiskReport::partial`] what of it did not work.
    fn apply(&self, id: &str, mode: DiskMode, seed: u64) -> Result<DiskReport, String>;
}

/// What a disk step did to one node's disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskReport {
    /// A line for the node's log: all of it.
    pub line: String,
    /// When it did only part of its work, what it could not do (short: the first few
    /// errors and their count), for the history.
    pub partial: Option<String>,
}

/// How many undo errors the history names for one node (the log names all of them).
const ERRORS_SHOWN: usize = 3;
/// How much of one error the history keeps.
const ERROR_CHARS: usize = 200;

/// One mount per member.
pub struct NodeDisks {
    disks: BTreeMap<NodeId, NodeDisk>,
}

struct NodeDisk {
    mount: Option<Mount>,
    /// The mountpoint: the node's data directory.
    data: PathBuf,
    backing: PathBuf,
}

impl NodeDisks {
    /// Mounts each member's data directory `dir(id)` over `dir(id).disk`.
    pub fn mount(
        members: &[NodeId],
        data_dir: impl Fn(&str) -> PathBuf,
        metadata: Metadata,
    ) -> anyhow::Result<Self> {
        let mut disks = NodeDisks {
            disks: BTreeMap::new(),
        };
        for id in members {
            let data = data_dir(id);
            let backing = data.with_extension("disk");
            for d in [&data, &backing] {
                std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
            }
            let mount = Mount::mount(&backing, &data).with_context(|| {
                format!(
                    "mount the disk filesystem over {} (disk faults need FUSE)",
                    data.display()
                )
            })?;
            mount.set_metadata(metadata);
            disks.disks.insert(
                id.clone(),
                NodeDisk {
                    mount: Some(mount),
                    data,
                    backing,
                },
            );
        }
        Ok(disks)
    }

    /// fsyncs every file and directory under each data directory, through the mounts:
    /// what is there before the nodes start is durable.
    pub fn sync_all(&self) -> anyhow::Result<()> {
        for d in self.disks.values() {
            sync_tree(&d.data).with_context(|| format!("fsync {}", d.data.display()))?;
        }
        Ok(())
    }
}

impl DiskStep for NodeDisks {
    /// What the fault does to `id`'s disk, its process already killed. A rollback that
    /// could not undo some of its entries ([`Loss::errors`]) is a partial step.
    fn apply(&self, id: &str, mode: DiskMode, seed: u64) -> Result<DiskReport, String> {
        let d = self
            .disks
            .get(id)
            .ok_or_else(|| format!("{id} has no disk filesystem"))?;
        let mount = d.mount.as_ref().ok_or("unmounted")?;
        let seed = seed ^ fnv(id);
        match mode {
            DiskMode::LoseUnsynced => mount
                .lose_unsynced()
                .map(|l| report_loss("lose-unsynced", &l, &d.backing))
                .map_err(|e| e.to_string()),
            DiskMode::TornWrite => mount
                .tear(seed)
                .map(|l| report_loss("torn-write", &l, &d.backing))
                .map_err(|e| e.to_string()),
            DiskMode::Corrupt => {
                let how = if seed % 2 == 0 {
                    Corruption::FlipBits {
                        count: 1 + (seed >> 1) as u32 % 8,
                    }
                } else {
                    Corruption::Truncate
                };
                let c = sunder_diskfs::corrupt(&d.backing, seed, how).map_err(|e| e.to_string())?;
                let file = c.path.strip_prefix(&d.backing).unwrap_or(&c.path);
                let line = match c.done {
                    Damage::Flipped(bits) => format!(
                        "corrupt: flipped {} bit(s) of {} ({} bytes) at {:?}",
                        bits.len(),
                        file.display(),
                        c.len,
                        bits
                    ),
                    Damage::Truncated(to) => format!(
                        "corrupt: truncated {} from {} to {to} bytes",
                        file.display(),
                        c.len
                    ),
                };
                Ok(DiskReport {
                    line,
                    partial: None,
                })
            }
        }
    }
}

impl Drop for NodeDisks {
    fn drop(&mut self) {
        for (id, d) in &mut self.disks {
            if let Some(m) = d.mount.take()
                && let Err(e) = m.unmount()
            {
                tracing::warn!("{id}: unmounting {}: {e}", d.data.display());
                continue;
            }
            // The data back where the node kept it, for whoever reads the run directory.
            if std::fs::remove_dir(&d.data).is_ok()
                && let Err(e) = std::fs::rename(&d.backing, &d.data)
            {
                tracing::warn!("{id}: moving {} back: {e}", d.backing.display());
            }
        }
    }
}

/// What a lost or torn write dropped: all of it for the node's log, and what it could not
/// undo, if anything, for the history.
fn report_loss(what: &str, l: &Loss, backing: &Path) -> DiskReport {
    DiskReport {
        line: describe_loss(what, l, backing),
        partial: not_undone(l),
    }
}

/// `rolled back in part: 2 error(s) undoing the 14 unsynced change(s): E1; E2`: the first
/// [`ERRORS_SHOWN`] errors (each cut to [`ERROR_CHARS`]) and how many more; `None` when
/// every undo worked.
fn not_undone(l: &Loss) -> Option<String> {
    if l.errors.is_empty() {
        return None;
    }
    let shown: Vec<String> = l
        .errors
        .iter()
        .take(ERRORS_SHOWN)
        .map(|e| {
            let mut cut: String = e.chars().take(ERROR_CHARS).collect();
            if cut.len() < e.len() {
                cut.push('…');
            }
            cut
        })
        .collect();
    let mut s = format!(
        "rolled back in part: {} error(s) undoing the {} unsynced change(s): {}",
        l.errors.len(),
        l.ops,
        shown.join("; ")
    );
    if l.errors.len() > ERRORS_SHOWN {
        s.push_str(&format!(" (and {} more)", l.errors.len() - ERRORS_SHOWN));
    }
    Some(s)
}

/// What a lost or torn write dropped, for the node's log.
fn describe_loss(what: &str, l: &Loss, backing: &Path) -> String {
    let rel = |p: &PathBuf| p.strip_prefix(backing).unwrap_or(p).display().to_string();
    let mut s = format!(
        "{what}: dropped {} unsynced change(s), {} byte(s) of data",
        l.ops, l.bytes
    );
    if !l.files.is_empty() {
        let files: Vec<String> = l.files.iter().map(rel).collect();
        s.push_str(&format!("; files {}", files.join(", ")));
    }
    if !l.names.is_empty() {
        let names: Vec<String> = l.names.iter().map(rel).collect();
        s.push_str(&format!("; names {}", names.join(", ")));
    }
    if let Some(t) = &l.torn {
        s.push_str(&format!(
            "; {} torn: kept {} of the {} bytes written at {}",
            rel(&t.path),
            t.kept,
            t.len,
            t.offset
        ));
    }
    if l.forced_durable_ops > 0 {
        s.push_str(&format!(
            "; {} older change(s) counted durable (undo log full)",
            l.forced_durable_ops
        ));
    }
    if !l.errors.is_empty() {
        s.push_str(&format!("; could not undo: {}", l.errors.join("; ")));
    }
    s
}

/// Appends `[sunder] line` to a node's log.
pub fn log_line(log: &Path, line: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(log) {
        let _ = writeln!(f, "[sunder] {line}");
    }
}

fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            sync_tree(&e.path())?;
        } else if t.is_file() {
            std::fs::File::open(e.path())?.sync_all()?;
        }
    }
    std::fs::File::open(dir)?.sync_all()
}

/// FNV-1a: a node's own stream of the fault's seed.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Disk mounts a killed controller left: their server is gone, so the kernel answers
/// "transport endpoint is not connected". Live mounts of a run in progress answer and are
/// not listed.
pub fn leftovers() -> Vec<PathBuf> {
    sunder_diskfs::leftover_mounts()
        .into_iter()
        .filter(|p| {
            std::fs::metadata(p)
                .err()
                .and_then(|e| e.raw_os_error())
                .is_some_and(|c| c == libc::ENOTCONN)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn fuse_usable() -> bool {
        sunder_test_support::met(sunder_test_support::fuse_missing())
    }

    /// The history gets the first few undo errors and their count, each cut short; the
    /// node's log gets every one of them.
    #[test]
    fn what_a_rollback_could_not_undo_is_bounded_for_the_history() {
        let mut l = Loss {
            ops: 14,
            ..Loss::default()
        };
        assert_eq!(not_undone(&l), None);
        assert_eq!(
            report_loss("lose-unsynced", &l, Path::new("/b")).partial,
            None
        );
        l.errors = (1..=6)
            .map(|i| format!("undo write /b/w{i}: EIO"))
            .collect();
        l.errors[1] = format!("undo remove /b/{}", "x".repeat(500));
        let r = report_loss("lose-unsynced", &l, Path::new("/b"));
        let partial = r.partial.expect("a partial rollback");
        assert!(
            partial.starts_with(
                "rolled back in part: 6 error(s) undoing the 14 unsynced change(s): \
                 undo write /b/w1: EIO; undo remove /b/xxx"
            ),
            "{partial}"
        );
        assert!(
            partial.ends_with("…; undo write /b/w3: EIO (and 3 more)"),
            "{partial}"
        );
        assert!(!partial.contains("w4") && partial.len() < 400, "{partial}");
        assert!(r.line.contains("could not undo: ") && r.line.contains("/b/w6"));
    }

    /// A rollback that cannot undo an entry (here: the directory an unlinked file goes back
    /// into was removed from the backing tree behind the filesystem's back) is a step done
    /// in part, and says what it could not do.
    #[test]
    fn a_rollback_with_an_entry_it_could_not_undo_is_partial() {
        if !fuse_usable() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let disks = NodeDisks::mount(
            &["n1".to_string()],
            |id| tmp.path().join(id),
            Metadata::Strict,
        )
        .unwrap();
        let data = tmp.path().join("n1");
        std::fs::create_dir(data.join("d")).unwrap();
        File::open(&data).unwrap().sync_all().unwrap();
        std::fs::write(data.join("d/f"), b"durable").unwrap();
        File::open(data.join("d/f")).unwrap().sync_all().unwrap();
        File::open(data.join("d")).unwrap().sync_all().unwrap();
        // the one unsynced change: d/f unlinked (into the trash)
        std::fs::remove_file(data.join("d/f")).unwrap();
        std::fs::remove_dir(tmp.path().join("n1.disk/d")).unwrap();

        let r = disks.apply("n1", DiskMode::LoseUnsynced, 1).unwrap();
        let partial = r.partial.expect("partial");
        assert!(
            partial.starts_with(
                "rolled back in part: 1 error(s) undoing the 1 unsynced change(s): undo remove"
            ),
            "{partial}"
        );
        assert!(partial.contains("d/f"), "{partial}");
        assert!(r.line.contains("could not undo"), "{}", r.line);

        // nothing left to undo: a whole step again
        let r = disks.apply("n1", DiskMode::LoseUnsynced, 1).unwrap();
        assert_eq!(r.partial, None, "{}", r.line);
    }
}
