//! [`corrupt`]: seeded damage to one file of a tree (bit flips or a truncation).

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::DiskError;
use crate::rng::SplitMix;

/// Most bits one [`corrupt`] call flips.
pub const MAX_FLIPS: u64 = 1 << 16;

/// What [`corrupt`] does to the file it picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// Flips `count` distinct bits at seeded places (at most every bit of the file, and at
    /// most [`MAX_FLIPS`]).
    FlipBits {
        /// How many bits.
        count: u32,
    },
    /// Truncates to a seeded shorter length (`0 <= new < old`).
    Truncate,
}

/// What [`corrupt`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupted {
    /// The file.
    pub path: PathBuf,
    /// Its length before.
    pub len: u64,
    /// The damage.
    pub done: Damage,
}

/// The damage [`corrupt`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// Bits flipped, as `(byte offset, bit 0..8)`, in the order flipped.
    Flipped(Vec<(u64, u8)>),
    /// Truncated to this length.
    Truncated(u64),
}

/// Non-empty regular files under `dir` (not following symlinks), sorted by path.
fn files(dir: &Path, out: &mut Vec<(PathBuf, u64)>) -> Result<(), DiskError> {
    for entry in fs::read_dir(dir).map_err(DiskError::io("listing", dir))? {
        let entry = entry.map_err(DiskError::io("listing", dir))?;
        let path = entry.path();
        let md = fs::symlink_metadata(&path).map_err(DiskError::io("stat", &path))?;
        if md.is_dir() {
            files(&path, out)?;
        } else if md.is_file() && md.len() > 0 {
            out.push((path, md.len()));
        }
    }
    Ok(())
}

/// Damages one non-empty regular file under `dir`, chosen by `seed` among them sorted by
/// path, as `how` says. Deterministic for a seed and a tree. Meant for a stopped node's data
/// directory (a backing tree after unmount, or any directory).
pub fn corrupt(dir: &Path, seed: u64, how: Corruption) -> Result<Corrupted, DiskError> {
    let mut all = Vec::new();
    files(dir, &mut all)?;
    all.sort();
    if all.is_empty() {
        return Err(DiskError::NothingToCorrupt(dir.to_path_buf()));
    }
    let mut rng = SplitMix::new(seed);
    let (path, len) = all.swap_remove(rng.below(all.len() as u64) as usize);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(DiskError::io("opening", &path))?;
    let done = match how {
        Corruption::FlipBits { count } => {
            let count = u64::from(count).min(len.saturating_mul(8)).min(MAX_FLIPS);
            let mut flips: Vec<(u64, u8)> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            while (flips.len() as u64) < count {
                let flip = (rng.below(len), rng.below(8) as u8);
                if seen.insert(flip) {
                    flips.push(flip);
                }
            }
            for &(off, bit) in &flips {
                let mut b = [0u8];
                file.read_exact_at(&mut b, off)
                    .map_err(DiskError::io("reading", &path))?;
                b[0] ^= 1 << bit;
                file.write_all_at(&b, off)
                    .map_err(DiskError::io("writing", &path))?;
            }
            Damage::Flipped(flips)
        }
        Corruption::Truncate => {
            let to = rng.below(len);
            file.set_len(to)
                .map_err(DiskError::io("truncating", &path))?;
            Damage::Truncated(to)
        }
    };
    file.sync_all().map_err(DiskError::io("syncing", &path))?;
    Ok(Corrupted { path, len, done })
}
