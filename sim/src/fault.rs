//! Faults as data: what kinds exist, one fault's specification, and a seeded schedule of
//! them. The schedule is drawn up front from its own RNG stream, and each fault carries
//! its own seed for what it resolves at run time (which nodes, the leader then), so that
//! removing one fault (shrinking) leaves every other fault as it was.
//!
//! Shapes and targets mirror the real nemesis (`sunder-nemesis`, which needs a runtime):
//! a partition is a grudge, for each node the set of nodes it no longer hears from.

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{SimConfig, SimError, rng, stream};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    Partition,
    Kill,
    Pause,
    /// Clock rate changes and bumps, on one node's local clock.
    Clock,
    /// Message loss, duplication and long delays (reordering) on every link.
    Loss,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Partition,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Clock,
        FaultKind::Loss,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Clock => "clock",
            FaultKind::Loss => "loss",
        }
    }

    /// The history's `f` for undoing it (as the real nemesis names them).
    pub fn stop_f(self) -> &'static str {
        match self {
            FaultKind::Partition => "heal",
            FaultKind::Kill => "restart",
            FaultKind::Pause => "resume",
            FaultKind::Clock => "clock-reset",
            FaultKind::Loss => "loss-stop",
        }
    }

    /// A comma-separated list, `all` or `none`. Duplicates are dropped; order is kept.
    pub fn parse_list(s: &str) -> Result<Vec<FaultKind>, SimError> {
        let s = s.trim();
        match s {
            "" | "none" => return Ok(Vec::new()),
            "all" => return Ok(FaultKind::ALL.to_vec()),
            _ => {}
        }
        let mut out = Vec::new();
        for part in s.split(',') {
            let k = FaultKind::ALL
                .into_iter()
                .find(|k| k.name() == part.trim())
                .ok_or_else(|| SimError::UnknownFault(part.trim().to_string()))?;
            if !out.contains(&k) {
                out.push(k);
            }
        }
        Ok(out)
    }
}

/// Partition shapes, as Jepsen (and `sunder-nemesis`) name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    One,
    Halves,
    MajoritiesRing,
    Bridge,
    MinorityThird,
    Leader,
    OneWay,
}

impl Shape {
    pub const ALL: [Shape; 7] = [
        Shape::One,
        Shape::Halves,
        Shape::MajoritiesRing,
        Shape::Bridge,
        Shape::MinorityThird,
        Shape::Leader,
        Shape::OneWay,
    ];

    fn applies_to(self, n: usize) -> bool {
        match self {
            Shape::MajoritiesRing => n >= 4,
            Shape::Bridge => n >= 3,
            _ => n >= 2,
        }
    }
}

/// Which nodes a process or clock fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    One,
    Leader,
    Minority,
    Majority,
    All,
}

/// One fault, before it meets the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FaultSpec {
    Partition {
        shape: Shape,
    },
    Kill {
        target: Target,
    },
    Pause {
        target: Target,
    },
    /// The local clock runs at `rate_pct` percent of real time and jumps by `bump_ms`
    /// (a backward jump freezes a monotonic clock until real time catches up).
    Clock {
        target: Target,
        rate_pct: u64,
        bump_ms: i64,
    },
    /// Each message is lost with `drop_pct`, sent twice with `dup_pct` (the copy up to
    /// `delay_ms` later), and delayed by up to `delay_ms` more (so overtaken).
    Loss {
        drop_pct: u64,
        dup_pct: u64,
        delay_ms: u64,
    },
}

impl FaultSpec {
    pub fn kind(&self) -> FaultKind {
        match self {
            FaultSpec::Partition { .. } => FaultKind::Partition,
            FaultSpec::Kill { .. } => FaultKind::Kill,
            FaultSpec::Pause { .. } => FaultKind::Pause,
            FaultSpec::Clock { .. } => FaultKind::Clock,
            FaultSpec::Loss { .. } => FaultKind::Loss,
        }
    }

    /// The history's `f` for starting it.
    pub fn start_f(&self) -> &'static str {
        match self {
            FaultSpec::Clock { .. } => "clock-strobe",
            other => other.kind().name(),
        }
    }
}

/// One scheduled fault: start at `at_ms`, undo `for_ms` later (or at the heal).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub at_ms: u64,
    pub for_ms: u64,
    pub spec: FaultSpec,
    /// Seeds what the fault resolves when it starts (which nodes).
    pub seed: u64,
}

/// A run's faults, in start order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub steps: Vec<Step>,
}

impl Schedule {
    /// The seeded schedule for `cfg` (only its fault kinds, time and interval matter).
    pub fn generate(cfg: &SimConfig) -> Schedule {
        let mut r = rng(cfg.seed, stream::SCHEDULE);
        let mut steps = Vec::new();
        if cfg.faults.is_empty() {
            return Schedule { steps };
        }
        let mut t = 0;
        loop {
            t += r.random_range(cfg.interval_ms / 2..=cfg.interval_ms * 3 / 2);
            if t >= cfg.time_ms {
                break;
            }
            let kind = cfg.faults[r.random_range(0..cfg.faults.len())];
            let Some(spec) = draw_spec(kind, cfg.nodes, &mut r) else {
                continue;
            };
            // Short faults matter as much as long ones: a node killed for 20 ms comes back
            // into the election it left; one paused for 3 s wakes as a deposed leader.
            // Kills are short half the time: a voter that restarts within one election
            // is what shows whether its vote was durable.
            let short_pct = if kind == FaultKind::Kill { 50 } else { 33 };
            let for_ms = if r.random_range(0..100) < short_pct {
                r.random_range(5..100)
            } else if r.random_bool(0.5) {
                r.random_range(100..1000)
            } else {
                r.random_range(1000..3000)
            };
            steps.push(Step {
                at_ms: t,
                for_ms,
                spec,
                seed: r.random(),
            });
        }
        Schedule { steps }
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

fn draw_spec(kind: FaultKind, n: usize, r: &mut ChaCha8Rng) -> Option<FaultSpec> {
    let target = |r: &mut ChaCha8Rng| match r.random_range(0..10) {
        0..3 => Target::One,
        3..6 => Target::Leader,
        6..8 => Target::Minority,
        8 => Target::Majority,
        _ => Target::All,
    };
    Some(match kind {
        FaultKind::Partition => {
            let shapes: Vec<Shape> = Shape::ALL.into_iter().filter(|s| s.applies_to(n)).collect();
            if shapes.is_empty() {
                return None;
            }
            FaultSpec::Partition {
                shape: shapes[r.random_range(0..shapes.len())],
            }
        }
        FaultKind::Kill => FaultSpec::Kill { target: target(r) },
        FaultKind::Pause => FaultSpec::Pause { target: target(r) },
        FaultKind::Clock => FaultSpec::Clock {
            // Mostly the leader: its clock is the one leases and check-quorum trust.
            target: if r.random_bool(0.7) {
                Target::Leader
            } else {
                Target::One
            },
            rate_pct: match r.random_range(0..3) {
                0 => r.random_range(5..50),
                1 => r.random_range(50..100),
                _ => r.random_range(100..400),
            },
            bump_ms: if r.random_bool(0.5) {
                0
            } else {
                r.random_range(-2000..2000)
            },
        },
        FaultKind::Loss => FaultSpec::Loss {
            drop_pct: r.random_range(0..30),
            dup_pct: r.random_range(0..30),
            delay_ms: r.random_range(1..300),
        },
    })
}

/// Node indexes a target means now. `leader` is the node the simulator last saw win an
/// election (`None`: a random node, as the real nemesis cannot pick one either).
pub fn select(target: Target, n: usize, leader: Option<usize>, seed: u64) -> Vec<usize> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let mut all: Vec<usize> = (0..n).collect();
    all.shuffle(&mut r);
    let mut out = match target {
        Target::One => vec![all[0]],
        Target::Leader => vec![leader.unwrap_or(all[0])],
        Target::Minority => all[..(n - 1) / 2].to_vec(),
        Target::Majority => all[..n / 2 + 1].to_vec(),
        Target::All => all,
    };
    if out.is_empty() {
        out.push(0);
    }
    out.sort_unstable();
    out
}

/// `grudge[i]`: the nodes node `i` does not hear from, for a partition shape.
pub fn grudge(shape: Shape, n: usize, leader: Option<usize>, seed: u64) -> Vec<BTreeSet<usize>> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let mut s: Vec<usize> = (0..n).collect();
    s.shuffle(&mut r);
    let mut g = vec![BTreeSet::new(); n];
    // Everyone in different components stops hearing each other.
    let cut = |g: &mut Vec<BTreeSet<usize>>, a: &[usize], b: &[usize]| {
        for &x in a {
            for &y in b {
                g[x].insert(y);
                g[y].insert(x);
            }
        }
    };
    let rest = |x: usize| (0..n).filter(|&m| m != x).collect::<Vec<_>>();
    match shape {
        Shape::One => cut(&mut g, &[s[0]], &rest(s[0])),
        Shape::Leader => {
            let l = leader.unwrap_or(s[0]);
            cut(&mut g, &[l], &rest(l));
        }
        Shape::Halves => {
            let (a, b) = s.split_at(n / 2);
            cut(&mut g, a, b);
        }
        Shape::MinorityThird => {
            let k = (n / 3).max(1);
            let (a, b) = s.split_at(k);
            cut(&mut g, a, b);
        }
        Shape::Bridge => {
            // s[0] sees both halves; the halves do not see each other.
            let rest = &s[1..];
            let (a, b) = rest.split_at(rest.len() / 2);
            cut(&mut g, a, b);
        }
        Shape::MajoritiesRing => {
            // The node at ring position p hears a window of m positions around it (a
            // majority), and no two windows are the same.
            let m = n / 2 + 1;
            let back = (m - 1) / 2;
            for p in 0..n {
                let hears: BTreeSet<usize> = (0..m).map(|d| s[(p + n - back + d) % n]).collect();
                g[s[p]] = (0..n).filter(|x| !hears.contains(x)).collect();
            }
        }
        Shape::OneWay => {
            g[s[0]].insert(s[1]);
        }
    }
    g
}

/// A grudge as the history shows it: node name → the names it does not hear from.
pub fn grudge_value(g: &[BTreeSet<usize>], names: &[String]) -> serde_json::Value {
    let m: BTreeMap<&str, Vec<&str>> = g
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .map(|(i, s)| {
            (
                names[i].as_str(),
                s.iter().map(|j| names[*j].as_str()).collect(),
            )
        })
        .collect();
    serde_json::to_value(m).expect("a grudge serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_cut_what_they_say() {
        let halves = grudge(Shape::Halves, 5, None, 1);
        let cut: usize = halves.iter().map(BTreeSet::len).sum();
        assert_eq!(cut, 2 * 2 * 3, "a 2|3 split cuts 12 directed links");
        let one = grudge(Shape::Leader, 5, Some(3), 1);
        assert_eq!(one[3].len(), 4);
        assert!(one.iter().enumerate().all(|(i, s)| i == 3 || s.len() == 1));
        let ow = grudge(Shape::OneWay, 3, None, 9);
        assert_eq!(ow.iter().map(BTreeSet::len).sum::<usize>(), 1);
        // Majorities ring: every node still hears a majority (itself included).
        let ring = grudge(Shape::MajoritiesRing, 5, None, 4);
        assert!(ring.iter().all(|s| 5 - s.len() >= 3), "{ring:?}");
        assert!(ring.iter().any(|s| !s.is_empty()));
    }

    #[test]
    fn schedule_is_seeded_and_kinds_are_respected() {
        let mut c = SimConfig::new("raft", 7);
        let a = Schedule::generate(&c);
        assert_eq!(a, Schedule::generate(&c));
        assert!(a.len() > 5);
        c.seed = 8;
        assert_ne!(a, Schedule::generate(&c));
        c.faults = vec![FaultKind::Kill];
        assert!(
            Schedule::generate(&c)
                .steps
                .iter()
                .all(|s| s.spec.kind() == FaultKind::Kill)
        );
        assert_eq!(FaultKind::parse_list("kill, pause,kill").unwrap().len(), 2);
        assert!(FaultKind::parse_list("flood").is_err());
    }
}
