//! Clock faults through libfaketime: every node runs with the library preloaded and a
//! control file of its own holding an offset from the real clock (`+0`, `-1.500`, `+90`, in
//! seconds). Rewriting the file moves the node's clock at its next time call.
//!
//! ```text
//!   ClockSpec (mode, target) ──resolve(rng)──► ClockFault ──► FaketimeClocks
//!                                              bump: node → offset ms      │ atomic rewrite
//!                                              strobe: a thread flipping    ▼
//!                                                two offsets every few ms   nodes/<id>.faketime
//! ```
//!
//! libfaketime 0.9.10 (Debian) shifts CLOCK_REALTIME and, unless
//! `FAKETIME_DONT_FAKE_MONOTONIC=1`, CLOCK_MONOTONIC too: with a relative offset the
//! monotonic clock then reads as the faked wall clock (seconds since the epoch, not since
//! boot), so a backward bump makes it go backward. Rust's std waits with timeouts
//! (`recv_timeout`, `Condvar::wait_timeout`, thread parking) pass the kernel an *absolute*
//! CLOCK_MONOTONIC deadline computed from the faked clock, which the kernel compares with
//! the real one: ~56 years ahead, so such a wait never times out. Relative sleeps
//! (`thread::sleep`, i.e. nanosleep) still return; the node runtime ticks with those, so
//! monotonic faking is on by default (a protocol's timers then see the bumps).
//! `SUNDER_FAKETIME_MONOTONIC=0` turns it off, for targets whose own waits cannot take it.

use crate::{NemesisError, NodeId, Outcome, TargetSpec};
use rand::RngExt;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Whether CLOCK_MONOTONIC is faked too (see the map): yes unless
/// `SUNDER_FAKETIME_MONOTONIC=0`.
pub fn fake_monotonic_requested() -> bool {
    std::env::var_os("SUNDER_FAKETIME_MONOTONIC").is_none_or(|v| v != "0")
}

/// Where Debian's `libfaketime` package and `make install` put the library.
pub const LIBFAKETIME_CANDIDATES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// The preload library: `$SUNDER_LIBFAKETIME` if set, else the first candidate present.
pub fn find_libfaketime() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SUNDER_LIBFAKETIME") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    LIBFAKETIME_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The environment a node needs to run under `lib` with `file` as its clock control.
/// No cache: a bump must reach the node at its next time call, not within 10 s.
pub fn faketime_env(lib: &Path, file: &Path, fake_monotonic: bool) -> Vec<(String, String)> {
    let dont = if fake_monotonic { "0" } else { "1" };
    vec![
        ("LD_PRELOAD".into(), lib.display().to_string()),
        ("FAKETIME_TIMESTAMP_FILE".into(), file.display().to_string()),
        ("FAKETIME_NO_CACHE".into(), "1".into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), dont.into()),
        // Children of the node (if any) keep the node's offset instead of restarting it.
        ("FAKETIME_DONT_RESET".into(), "1".into()),
    ]
}

/// Whether the process maps libfaketime (i.e. the preload reached it): false for static
/// and Go binaries, which read the clock without libc.
pub fn preloaded(pid: u32) -> std::io::Result<bool> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    Ok(maps.contains("libfaketime"))
}

/// libfaketime's relative offset syntax, in seconds with a '.' fraction (the node does not
/// call setlocale, so the C locale's delimiter applies): `+0`, `-1.500`, `+90.250`.
pub fn offset_text(ms: i64) -> String {
    let sign = if ms < 0 { '-' } else { '+' };
    let a = ms.unsigned_abs();
    if a % 1000 == 0 {
        format!("{sign}{}", a / 1000)
    } else {
        format!("{sign}{}.{:03}", a / 1000, a % 1000)
    }
}

/// Writes the offset atomically (a temporary file renamed over it), so that a node never
/// reads a half-written or empty file.
pub fn write_offset(path: &Path, ms: i64) -> std::io::Result<()> {
    // One writer at a time (a strobe is stopped before anything else writes), so one
    // temporary name per file is enough.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, format!("{}\n", offset_text(ms)))?;
    std::fs::rename(&tmp, path)
}

/// What the schedule intends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    Bump,
    Strobe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockSpec {
    pub mode: ClockMode,
    pub target: TargetSpec,
}

impl ClockSpec {
    pub fn start_f(self) -> &'static str {
        match self.mode {
            ClockMode::Bump => "clock-bump",
            ClockMode::Strobe => "clock-strobe",
        }
    }

    /// Offsets span milliseconds to minutes, either way: a band first (so small skews are
    /// as likely as large ones), then a value within it.
    pub fn resolve(
        self,
        members: &[NodeId],
        leader: Option<&str>,
        rng: &mut ChaCha8Rng,
    ) -> Result<ClockFault, NemesisError> {
        let nodes = self.target.select(members, leader, rng)?;
        Ok(match self.mode {
            ClockMode::Bump => {
                ClockFault::Bump(nodes.into_iter().map(|n| (n, random_offset(rng))).collect())
            }
            ClockMode::Strobe => ClockFault::Strobe {
                offsets: nodes
                    .into_iter()
                    .map(|n| (n, [0, random_offset(rng)]))
                    .collect(),
                period_ms: rng.random_range(2..=20),
                duration_ms: rng.random_range(1_000..=10_000),
            },
        })
    }
}

fn random_offset(rng: &mut ChaCha8Rng) -> i64 {
    let (lo, hi) = *[(10, 1_000), (1_000, 10_000), (10_000, 300_000)]
        .choose(rng)
        .expect("non-empty");
    let v: i64 = rng.random_range(lo..=hi);
    if rng.random() { v } else { -v }
}

/// A concrete clock fault; offsets in milliseconds from the real clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum ClockFault {
    Bump(BTreeMap<NodeId, i64>),
    /// Each node flips between its two offsets every `period_ms` for `duration_ms`, then
    /// stays at the first.
    Strobe {
        offsets: BTreeMap<NodeId, [i64; 2]>,
        period_ms: u64,
        duration_ms: u64,
    },
    /// Back to the real clock.
    Reset(Vec<NodeId>),
}

impl ClockFault {
    pub fn start_f(&self) -> &'static str {
        match self {
            ClockFault::Bump(_) => "clock-bump",
            ClockFault::Strobe { .. } => "clock-strobe",
            ClockFault::Reset(_) => "clock-reset",
        }
    }

    /// The history value: node → offset ms (a pair for a strobe, with its timing).
    pub fn value(&self) -> Value {
        match self {
            ClockFault::Bump(m) => json!(m),
            ClockFault::Strobe {
                offsets,
                period_ms,
                duration_ms,
            } => json!({ "offsets": offsets, "period_ms": period_ms, "duration_ms": duration_ms }),
            ClockFault::Reset(n) => {
                json!(n.iter().map(|n| (n.clone(), 0)).collect::<BTreeMap<_, _>>())
            }
        }
    }

    pub fn nodes(&self) -> Vec<NodeId> {
        match self {
            ClockFault::Bump(m) => m.keys().cloned().collect(),
            ClockFault::Strobe { offsets, .. } => offsets.keys().cloned().collect(),
            ClockFault::Reset(n) => n.clone(),
        }
    }

    /// The same fault on `nodes` only.
    pub fn restrict(&self, nodes: &[NodeId]) -> ClockFault {
        let keep = |n: &NodeId| nodes.contains(n);
        match self {
            ClockFault::Bump(m) => ClockFault::Bump(
                m.iter()
                    .filter(|(n, _)| keep(n))
                    .map(|(n, o)| (n.clone(), *o))
                    .collect(),
            ),
            ClockFault::Strobe {
                offsets,
                period_ms,
                duration_ms,
            } => ClockFault::Strobe {
                offsets: offsets
                    .iter()
                    .filter(|(n, _)| keep(n))
                    .map(|(n, o)| (n.clone(), *o))
                    .collect(),
                period_ms: *period_ms,
                duration_ms: *duration_ms,
            },
            ClockFault::Reset(n) => {
                ClockFault::Reset(n.iter().filter(|n| keep(n)).cloned().collect())
            }
        }
    }
}

/// Clock faults, carried out by whoever controls the nodes' clocks. Each says which nodes'
/// clocks it moved and which it could not (an `Err` means none moved).
pub trait Clocks {
    fn apply(&mut self, fault: &ClockFault) -> Result<Outcome, NemesisError>;
    /// Stops any strobe and puts these nodes back on the real clock.
    fn reset(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError>;
}

struct Strobe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// The libfaketime backend: one control file per node.
pub struct FaketimeClocks {
    files: BTreeMap<NodeId, PathBuf>,
    /// Nodes the preload did not reach: a fault on them is an error, not a pretence.
    unaffected: BTreeMap<NodeId, String>,
    strobe: Option<Strobe>,
}

impl FaketimeClocks {
    /// Writes `+0` to every file, so that nodes start on the real clock.
    pub fn new(files: BTreeMap<NodeId, PathBuf>) -> Result<Self, NemesisError> {
        for f in files.values() {
            write_offset(f, 0)?;
        }
        Ok(FaketimeClocks {
            files,
            unaffected: BTreeMap::new(),
            strobe: None,
        })
    }

    /// Marks a node as one whose clock cannot be moved, with the reason.
    pub fn unaffected(&mut self, node: &str, why: &str) {
        self.unaffected.insert(node.to_string(), why.to_string());
    }

    fn file(&self, node: &str) -> Result<&PathBuf, NemesisError> {
        if let Some(why) = self.unaffected.get(node) {
            return Err(NemesisError::Backend(format!(
                "clock of {node} not moved: {why}"
            )));
        }
        self.files
            .get(node)
            .ok_or_else(|| NemesisError::UnknownNode(node.to_string()))
    }

    fn stop_strobe(&mut self) {
        if let Some(s) = self.strobe.take() {
            s.stop.store(true, Ordering::Relaxed);
            let _ = s.thread.join();
        }
    }
}

impl Clocks for FaketimeClocks {
    fn apply(&mut self, fault: &ClockFault) -> Result<Outcome, NemesisError> {
        self.stop_strobe();
        // A name that is no member is the caller's mistake: refused whole, nothing written.
        if let Some(n) = fault.nodes().iter().find(|n| !self.files.contains_key(*n)) {
            return Err(NemesisError::UnknownNode(n.clone()));
        }
        // Node by node otherwise: a clock the preload does not reach, or a file that cannot
        // be written, fails that node and no other.
        let mut out = Outcome::default();
        let mut write = |n: &NodeId, ms: i64| match self.file(n) {
            Ok(f) => match write_offset(f, ms) {
                Ok(()) => out.reached.push(n.clone()),
                Err(e) => {
                    out.failed
                        .insert(n.clone(), format!("write {}: {e}", f.display()));
                }
            },
            Err(e) => {
                out.failed.insert(n.clone(), e.to_string());
            }
        };
        match fault {
            ClockFault::Bump(m) => {
                for (n, ms) in m {
                    write(n, *ms);
                }
            }
            ClockFault::Reset(nodes) => {
                for n in nodes {
                    write(n, 0);
                }
            }
            ClockFault::Strobe {
                offsets,
                period_ms,
                duration_ms,
            } => {
                // The first flip is written here, so that a node whose file cannot be
                // written is known at once and left out of the strobe.
                for (n, o) in offsets {
                    write(n, o[1]);
                }
                let pairs: Vec<(PathBuf, [i64; 2])> = offsets
                    .iter()
                    .filter(|(n, _)| out.reached.contains(n))
                    .map(|(n, o)| (self.files[n].clone(), *o))
                    .collect();
                let stop = Arc::new(AtomicBool::new(false));
                let (period, until) = (
                    Duration::from_millis(*period_ms),
                    Instant::now() + Duration::from_millis(*duration_ms),
                );
                let flag = stop.clone();
                let thread = std::thread::spawn(move || {
                    let mut i = 1;
                    loop {
                        std::thread::sleep(period);
                        if flag.load(Ordering::Relaxed) || Instant::now() >= until {
                            break;
                        }
                        i = 1 - i;
                        for (f, o) in &pairs {
                            // A flip that fails leaves the last offset; the reset at the
                            // fault's stop rewrites every node the strobe reached.
                            let _ = write_offset(f, o[i]);
                        }
                    }
                    for (f, o) in &pairs {
                        let _ = write_offset(f, o[0]);
                    }
                });
                self.strobe = Some(Strobe { stop, thread });
            }
        }
        Ok(out)
    }

    fn reset(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        self.stop_strobe();
        // A clock the preload never reached was never moved: resetting it is not needed,
        // but writing its file is harmless, so only unknown names and write errors fail.
        Ok(Outcome::each(nodes, |n| {
            let f = self
                .files
                .get(n)
                .ok_or_else(|| NemesisError::UnknownNode(n.clone()))?;
            write_offset(f, 0)
                .map_err(|e| NemesisError::Backend(format!("write {}: {e}", f.display())))
        }))
    }
}

impl Drop for FaketimeClocks {
    fn drop(&mut self) {
        self.stop_strobe();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn members() -> Vec<NodeId> {
        ["n1", "n2", "n3", "n4", "n5"].map(String::from).to_vec()
    }

    #[test]
    fn offsets_use_libfaketime_syntax() {
        assert_eq!(offset_text(0), "+0");
        assert_eq!(offset_text(250), "+0.250");
        assert_eq!(offset_text(-1500), "-1.500");
        assert_eq!(offset_text(-90_000), "-90");
        assert_eq!(offset_text(61_005), "+61.005");
    }

    #[test]
    fn resolution_is_seeded_and_in_range() {
        for mode in [ClockMode::Bump, ClockMode::Strobe] {
            let spec = ClockSpec {
                mode,
                target: TargetSpec::Minority,
            };
            let r = |s| spec.resolve(&members(), None, &mut ChaCha8Rng::seed_from_u64(s));
            assert_eq!(r(5).unwrap(), r(5).unwrap());
            let distinct: std::collections::BTreeSet<String> =
                (0..20).map(|s| format!("{:?}", r(s).unwrap())).collect();
            assert!(distinct.len() > 15, "{distinct:?}");
            for s in 0..50 {
                let f = r(s).unwrap();
                assert_eq!(f.nodes().len(), 2);
                match f {
                    ClockFault::Bump(m) => assert!(
                        m.values().all(|o| (10..=300_000).contains(&o.abs())),
                        "{m:?}"
                    ),
                    ClockFault::Strobe {
                        offsets,
                        period_ms,
                        duration_ms,
                    } => {
                        assert!(offsets.values().all(|[a, b]| *a == 0 && b.abs() >= 10));
                        assert!((2..=20).contains(&period_ms));
                        assert!((1_000..=10_000).contains(&duration_ms));
                    }
                    ClockFault::Reset(_) => panic!("never resolved"),
                }
            }
        }
        // both directions and all magnitudes occur
        let all: Vec<i64> = (0..200)
            .flat_map(|s| {
                match (ClockSpec {
                    mode: ClockMode::Bump,
                    target: TargetSpec::One,
                })
                .resolve(&members(), None, &mut ChaCha8Rng::seed_from_u64(s))
                .unwrap()
                {
                    ClockFault::Bump(m) => m.into_values().collect::<Vec<_>>(),
                    _ => unreachable!(),
                }
            })
            .collect();
        assert!(all.iter().any(|o| *o < 0) && all.iter().any(|o| *o > 0));
        assert!(all.iter().any(|o| o.abs() < 1000) && all.iter().any(|o| o.abs() > 60_000));
    }

    #[test]
    fn bump_strobe_reset_rewrite_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let files: BTreeMap<NodeId, PathBuf> = ["n1", "n2"]
            .iter()
            .map(|n| (n.to_string(), dir.path().join(format!("{n}.faketime"))))
            .collect();
        let read = |n: &str| std::fs::read_to_string(&files[n]).unwrap();
        let mut c = FaketimeClocks::new(files.clone()).unwrap();
        assert_eq!((read("n1"), read("n2")), ("+0\n".into(), "+0\n".into()));
        c.apply(&ClockFault::Bump([("n2".to_string(), -1500)].into()))
            .unwrap();
        assert_eq!((read("n1"), read("n2")), ("+0\n".into(), "-1.500\n".into()));
        c.apply(&ClockFault::Strobe {
            offsets: [("n1".to_string(), [0, 2000])].into(),
            period_ms: 2,
            duration_ms: 60_000,
        })
        .unwrap();
        let mut seen = std::collections::BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.len() < 2 && Instant::now() < deadline {
            seen.insert(read("n1"));
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(seen, ["+0\n".to_string(), "+2\n".to_string()].into());
        let ids = ["n1".to_string(), "n2".to_string()];
        assert!(c.reset(&ids).unwrap().is_complete());
        assert_eq!((read("n1"), read("n2")), ("+0\n".into(), "+0\n".into()));
        c.unaffected("n1", "static binary");
        let o = c
            .apply(&ClockFault::Bump(
                [("n1".to_string(), 5), ("n2".to_string(), 7)].into(),
            ))
            .unwrap();
        assert!(o.failed["n1"].contains("static binary"), "{o:?}");
        assert_eq!(o.reached, ["n2"]);
        assert_eq!((read("n1"), read("n2")), ("+0\n".into(), "+0.007\n".into()));
        let unknown = c.apply(&ClockFault::Bump([("n9".to_string(), 5)].into()));
        assert!(matches!(unknown, Err(NemesisError::UnknownNode(_))));
    }

    /// A strobe whose writes fail on one node strobes the others, says which failed, and
    /// the reset of the nodes it reached puts them back.
    #[test]
    fn a_strobe_that_cannot_write_one_file_strobes_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let files: BTreeMap<NodeId, PathBuf> = ["n1", "n2", "n3"]
            .iter()
            .map(|n| {
                let d = dir.path().join(n);
                std::fs::create_dir(&d).unwrap();
                (n.to_string(), d.join("faketime"))
            })
            .collect();
        let read = |n: &str| std::fs::read_to_string(&files[n]).unwrap();
        let mut c = FaketimeClocks::new(files.clone()).unwrap();
        // n3's directory goes away: every write of its file fails from now on
        std::fs::remove_dir_all(dir.path().join("n3")).unwrap();
        let o = c
            .apply(&ClockFault::Strobe {
                offsets: [
                    ("n1".to_string(), [0, 3000]),
                    ("n2".to_string(), [0, -4000]),
                    ("n3".to_string(), [0, 5000]),
                ]
                .into(),
                period_ms: 2,
                duration_ms: 60_000,
            })
            .unwrap();
        assert_eq!(o.reached, ["n1", "n2"]);
        assert!(o.failed["n3"].contains("write"), "{o:?}");
        let mut seen = std::collections::BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.len() < 3 && Instant::now() < deadline {
            seen.insert(read("n1"));
            seen.insert(read("n2"));
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            seen,
            ["+0\n", "+3\n", "-4\n"].map(String::from).into(),
            "both reached nodes flip"
        );
        let r = c.reset(&["n1".to_string(), "n2".to_string()]).unwrap();
        assert!(r.is_complete(), "{r:?}");
        assert_eq!((read("n1"), read("n2")), ("+0\n".into(), "+0\n".into()));
        // resetting the broken node fails and says why
        let r = c.reset(&["n3".to_string()]).unwrap();
        assert!(r.reached.is_empty() && r.failed.contains_key("n3"), "{r:?}");
    }
}
