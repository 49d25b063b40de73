//! Differential test: seeded random ops through the mount and on an in-memory model that
//! tracks the durable state on its own terms; after `lose_unsynced` the backing tree must
//! equal the model's durable state.
//!
//! The model replays forward what was made durable, where the filesystem undoes backwards
//! what was not: file data is its content at its last fsync; the namespace is the replay,
//! in order, of the creates, unlinks and renames that an fsync of their directory (for a
//! rename, the destination's) made durable. A rename moves its file from wherever the
//! durable namespace has it; its departure from the source directory is also made durable
//! by an fsync of that directory alone.
//!
//! Every sequence runs under both metadata models. Under `Journal` the model adds one rule:
//! each durability point (fsync or fdatasync of a file, fsyncdir, a write through an
//! `O_DSYNC` handle) marks every namespace change recorded so far durable; file data keeps
//! the per-file rule.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use common::*;
use sunder_diskfs::Metadata;

const DIRS: [&str; 2] = ["", "d"];
const NAMES: [&str; 3] = ["a", "b", "c"];

type Loc = (usize, &'static str);

#[derive(Debug, Clone)]
enum Meta {
    Create(Loc, u64),
    Unlink(Loc, u64),
    Rename(u64, Loc),
    /// The departure half of a rename, durable with the source directory.
    RenameOut(Loc, u64),
}

impl Meta {
    fn owner(&self) -> usize {
        match self {
            Meta::Create(l, _)
            | Meta::Unlink(l, _)
            | Meta::Rename(_, l)
            | Meta::RenameOut(l, _) => l.0,
        }
    }
}

#[derive(Default)]
struct Model {
    /// Under `Journal`: every durability point makes all namespace changes so far durable.
    journal: bool,
    next: u64,
    cur: BTreeMap<Loc, u64>,
    content: HashMap<u64, Vec<u8>>,
    durable_content: HashMap<u64, Vec<u8>>,
    meta: Vec<(Meta, bool)>,
}

impl Model {
    /// A durability point: under `Journal`, the journal commits every change recorded.
    fn durability_point(&mut self) {
        if self.journal {
            for (_, durable) in &mut self.meta {
                *durable = true;
            }
        }
    }

    /// fsync of the file `n` (or an `O_DSYNC` write to it): its content is durable.
    fn sync_file(&mut self, n: u64) {
        self.durable_content.insert(n, self.content[&n].clone());
        self.durability_point();
    }

    fn durable(&self) -> BTreeMap<String, Vec<u8>> {
        let mut tree: BTreeMap<Loc, u64> = BTreeMap::new();
        for (op, durable) in &self.meta {
            if !durable {
                continue;
            }
            match op {
                Meta::Create(l, n) => {
                    tree.insert(*l, *n);
                }
                Meta::Unlink(l, n) | Meta::RenameOut(l, n) => {
                    if tree.get(l) == Some(n) {
                        tree.remove(l);
                    }
                }
                Meta::Rename(n, to) => {
                    tree.retain(|_, v| v != n);
                    tree.insert(*to, *n);
                }
            }
        }
        tree.into_iter()
            .map(|(l, n)| {
                (
                    rel(l),
                    self.durable_content.get(&n).cloned().unwrap_or_default(),
                )
            })
            .collect()
    }
}

fn rel(l: Loc) -> String {
    if DIRS[l.0].is_empty() {
        l.1.to_string()
    } else {
        format!("{}/{}", DIRS[l.0], l.1)
    }
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn backing_files(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = format!("{prefix}{}", e.file_name().to_string_lossy());
        if e.file_type().unwrap().is_dir() {
            backing_files(&e.path(), &format!("{name}/"), out);
        } else {
            out.insert(name, fs::read(e.path()).unwrap());
        }
    }
}

fn run(seed: u64, steps: usize, metadata: Metadata) {
    let fx = Fx::with_metadata(metadata, |d| fs::create_dir(d.join("d")).unwrap());
    let mut m = Model {
        journal: metadata == Metadata::Journal,
        ..Model::default()
    };
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut trace = Vec::new();
    for step in 0..steps {
        let kind = rng.below(100);
        let files: Vec<Loc> = m.cur.keys().copied().collect();
        let pick = |rng: &mut Rng| files[rng.below(files.len() as u64) as usize];
        let loc = |rng: &mut Rng| (rng.below(2) as usize, NAMES[rng.below(3) as usize]);
        let byte = b'A' + (step % 26) as u8;
        if files.is_empty() || (60..72).contains(&kind) {
            let l = loc(&mut rng);
            if m.cur.contains_key(&l) {
                continue;
            }
            trace.push(format!("create {}", rel(l)));
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(fx.p(&rel(l)))
                .unwrap();
            m.next += 1;
            m.cur.insert(l, m.next);
            m.content.insert(m.next, Vec::new());
            m.meta.push((Meta::Create(l, m.next), false));
        } else if kind < 20 {
            let l = pick(&mut rng);
            let c = m.content.get_mut(&m.cur[&l]).unwrap();
            let off = rng.below(c.len() as u64 + 10) as usize;
            let len = 1 + rng.below(20) as usize;
            trace.push(format!("write {} {off} {len}", rel(l)));
            write_at(&fx.p(&rel(l)), off as u64, &vec![byte; len]);
            if c.len() < off + len {
                c.resize(off + len, 0);
            }
            c[off..off + len].fill(byte);
        } else if kind < 35 {
            let l = pick(&mut rng);
            let len = 1 + rng.below(20) as usize;
            trace.push(format!("append {} {len}", rel(l)));
            append(&fx.p(&rel(l)), &vec![byte; len]);
            m.content
                .get_mut(&m.cur[&l])
                .unwrap()
                .extend(vec![byte; len]);
        } else if kind < 43 {
            let l = pick(&mut rng);
            let c = m.content.get_mut(&m.cur[&l]).unwrap();
            let to = rng.below(c.len() as u64 + 10) as usize;
            trace.push(format!("truncate {} {to}", rel(l)));
            OpenOptions::new()
                .write(true)
                .open(fx.p(&rel(l)))
                .unwrap()
                .set_len(to as u64)
                .unwrap();
            c.resize(to, 0);
        } else if kind < 55 {
            let l = pick(&mut rng);
            trace.push(format!("fsync {}", rel(l)));
            fsync(&fx.p(&rel(l)));
            m.sync_file(m.cur[&l]);
        } else if kind < 57 {
            let l = pick(&mut rng);
            let len = 1 + rng.below(5) as usize;
            trace.push(format!("o_dsync append {} {len}", rel(l)));
            let mut f = OpenOptions::new()
                .append(true)
                .custom_flags(libc::O_DSYNC)
                .open(fx.p(&rel(l)))
                .unwrap();
            std::io::Write::write_all(&mut f, &vec![byte; len]).unwrap();
            let n = m.cur[&l];
            m.content.get_mut(&n).unwrap().extend(vec![byte; len]);
            m.sync_file(n);
        } else if kind < 60 {
            let l = pick(&mut rng);
            // A write through a handle that stays open across the fsync of another name.
            trace.push(format!("pwrite+fsync {}", rel(l)));
            let f = OpenOptions::new().write(true).open(fx.p(&rel(l))).unwrap();
            f.write_all_at(&[byte], 0).unwrap();
            f.sync_data().unwrap();
            let n = m.cur[&l];
            let c = m.content.get_mut(&n).unwrap();
            if c.is_empty() {
                c.push(byte);
            } else {
                c[0] = byte;
            }
            m.sync_file(n);
        } else if kind < 80 {
            let from = pick(&mut rng);
            let to = loc(&mut rng);
            if to == from {
                continue;
            }
            trace.push(format!("rename {} {}", rel(from), rel(to)));
            fs::rename(fx.p(&rel(from)), fx.p(&rel(to))).unwrap();
            let n = m.cur.remove(&from).unwrap();
            m.cur.insert(to, n);
            m.meta.push((Meta::RenameOut(from, n), false));
            m.meta.push((Meta::Rename(n, to), false));
        } else if kind < 88 {
            let l = pick(&mut rng);
            trace.push(format!("unlink {}", rel(l)));
            fs::remove_file(fx.p(&rel(l))).unwrap();
            let n = m.cur.remove(&l).unwrap();
            m.meta.push((Meta::Unlink(l, n), false));
        } else {
            let d = rng.below(2) as usize;
            trace.push(format!("fsyncdir {}", DIRS[d]));
            fsync_dir(&fx.p(DIRS[d]));
            for (op, durable) in &mut m.meta {
                if op.owner() == d {
                    *durable = true;
                }
            }
            m.durability_point();
        }
    }
    let loss = fx.m().lose_unsynced().unwrap();
    assert!(loss.errors.is_empty(), "{metadata} seed {seed}: {loss:?}");
    let mut got = BTreeMap::new();
    backing_files(&fx.data, "", &mut got);
    assert_eq!(
        got,
        m.durable(),
        "{metadata} seed {seed}, ops:\n{}",
        trace.join("\n")
    );
}

#[test]
fn lose_unsynced_leaves_what_the_model_says_is_durable() {
    if !can_mount() {
        return;
    }
    // SUNDER_DISKFS_SEEDS=N runs more seeds (and longer sequences) than the default.
    let seeds = std::env::var("SUNDER_DISKFS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150u64);
    for metadata in [Metadata::Strict, Metadata::Journal] {
        for seed in 0..seeds {
            run(seed, 40 + (seed % 3) as usize * 20, metadata);
        }
    }
}
