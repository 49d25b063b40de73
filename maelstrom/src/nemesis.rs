//! The seeded fault schedule: quiet for an interval, one fault for an interval, and so on
//! until the time limit. Pure: the run applies it.

use crate::config::FaultKind;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use sunder_nemesis::{ClockFault, ClockMode, ClockSpec, TargetSpec};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Fault {
    /// Directed links cut: `(from, to)` means `to` does not hear `from`.
    Partition {
        shape: String,
        cuts: BTreeSet<(String, String)>,
    },
    Kill {
        nodes: Vec<String>,
    },
    Pause {
        nodes: Vec<String>,
    },
    /// A clock bump or strobe, stopped by a reset of the same nodes.
    Clock {
        fault: ClockFault,
    },
}

impl Fault {
    /// The history's `f` for the start and the stop.
    pub fn names(&self) -> (&'static str, &'static str) {
        match self {
            Fault::Partition { .. } => ("partition", "heal"),
            Fault::Kill { .. } => ("kill", "restart"),
            Fault::Pause { .. } => ("pause", "resume"),
            Fault::Clock { fault } => (fault.start_f(), "clock-reset"),
        }
    }

    /// The history's `value`: for a partition the grudge (node → nodes it does not hear).
    pub fn value(&self) -> Value {
        match self {
            Fault::Partition { shape, cuts } => {
                let mut grudge = serde_json::Map::new();
                for (from, to) in cuts {
                    grudge
                        .entry(to.clone())
                        .or_insert_with(|| json!([]))
                        .as_array_mut()
                        .expect("an array")
                        .push(json!(from));
                }
                json!({"shape": shape, "grudge": grudge})
            }
            Fault::Kill { nodes } | Fault::Pause { nodes } => json!(nodes),
            Fault::Clock { fault } => fault.value(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    #[serde(serialize_with = "ms")]
    pub start: Duration,
    #[serde(serialize_with = "ms")]
    pub stop: Duration,
    pub fault: Fault,
}

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Cuts every link between the two groups, both ways.
fn split(a: &[String], b: &[String], one_way: bool) -> BTreeSet<(String, String)> {
    let mut cuts = BTreeSet::new();
    for x in a {
        for y in b {
            cuts.insert((x.clone(), y.clone()));
            if !one_way {
                cuts.insert((y.clone(), x.clone()));
            }
        }
    }
    cuts
}

fn partition(rng: &mut ChaCha8Rng, ids: &[String]) -> Fault {
    let mut shuffled = ids.to_vec();
    shuffled.shuffle(rng);
    let n = ids.len();
    let (shape, cuts) = match rng.random_range(0..6u32) {
        0 => ("isolate-one", split(&shuffled[..1], &shuffled[1..], false)),
        1 => {
            let half = n / 2;
            ("halves", split(&shuffled[..half], &shuffled[half..], false))
        }
        2 => {
            // One-way: a minority still hears the majority, which no longer hears it.
            let half = n / 2;
            (
                "one-way-halves",
                split(&shuffled[..half.max(1)], &shuffled[half.max(1)..], true),
            )
        }
        // With fewer than four nodes every node is a ring neighbour of every other: a
        // majorities ring would cut nothing, and a "partition" that changes nothing
        // proves nothing. Isolate one instead (same draws, so larger clusters' schedules
        // do not move).
        3 if n < 4 => ("isolate-one", split(&shuffled[..1], &shuffled[1..], false)),
        4 if n >= 3 => {
            // Bridge: two halves that hear each other only through one node in between.
            let left = 1 + (n - 1) / 2;
            (
                "bridge",
                split(&shuffled[1..left], &shuffled[left..], false),
            )
        }
        // A third of the nodes (at least one) cut off from the rest.
        4 | 5 => {
            let k = (n / 3).max(1);
            (
                "minority-third",
                split(&shuffled[..k], &shuffled[k..], false),
            )
        }
        _ => {
            // Majorities ring: each node hears itself and its two ring neighbours.
            let mut cuts = BTreeSet::new();
            for (i, a) in shuffled.iter().enumerate() {
                for (j, b) in shuffled.iter().enumerate() {
                    let d = i.abs_diff(j).min(n - i.abs_diff(j));
                    if d > 1 {
                        cuts.insert((a.clone(), b.clone()));
                    }
                }
            }
            ("majorities-ring", cuts)
        }
    };
    Fault::Partition {
        shape: shape.into(),
        cuts,
    }
}

/// One node, a minority, a majority or all of them.
fn targets(rng: &mut ChaCha8Rng, ids: &[String]) -> Vec<String> {
    let n = ids.len();
    let count = match rng.random_range(0..4u32) {
        0 => 1,
        1 => (n - 1) / 2,
        2 => n / 2 + 1,
        _ => n,
    }
    .clamp(1, n);
    let mut v: Vec<String> = ids.to_vec();
    v.shuffle(rng);
    v.truncate(count);
    v.sort();
    v
}

/// A bump or a strobe of one node, a minority, a majority or all (there is no leader to
/// aim at): offsets from milliseconds to minutes either way, as sunder's own nemesis draws.
fn clock(rng: &mut ChaCha8Rng, ids: &[String]) -> ClockFault {
    let mode = if rng.random_bool(0.5) {
        ClockMode::Bump
    } else {
        ClockMode::Strobe
    };
    let target = *[
        TargetSpec::One,
        TargetSpec::Minority,
        TargetSpec::Majority,
        TargetSpec::All,
    ]
    .choose(rng)
    .expect("non-empty");
    ClockSpec { mode, target }
        .resolve(ids, None, rng)
        .expect("no target needs a leader, and there are nodes")
}

/// The schedule for `kinds` over `time_limit`.
pub fn schedule(
    seed: u64,
    kinds: &[FaultKind],
    ids: &[String],
    interval: Duration,
    time_limit: Duration,
) -> Vec<Planned> {
    // A stream of its own, so the schedule does not move when the network draws more.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7300);
    let mut out = Vec::new();
    if kinds.is_empty() || ids.is_empty() {
        return out;
    }
    let mut at = interval;
    while at + interval <= time_limit {
        let kind = kinds[rng.random_range(0..kinds.len())];
        let fault = match kind {
            FaultKind::Partition if ids.len() > 1 => partition(&mut rng, ids),
            FaultKind::Partition => Fault::Pause {
                nodes: ids.to_vec(),
            },
            FaultKind::Kill => Fault::Kill {
                nodes: targets(&mut rng, ids),
            },
            FaultKind::Pause => Fault::Pause {
                nodes: targets(&mut rng, ids),
            },
            FaultKind::Clock => Fault::Clock {
                fault: clock(&mut rng, ids),
            },
        };
        out.push(Planned {
            start: at,
            stop: at + interval,
            fault,
        });
        at += interval * 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn a_schedule_is_seeded_and_alternates_quiet_and_faults() {
        let k = [FaultKind::Partition, FaultKind::Kill, FaultKind::Pause];
        let s = |seed| {
            schedule(
                seed,
                &k,
                &ids(5),
                Duration::from_secs(1),
                Duration::from_secs(30),
            )
        };
        assert_eq!(s(4), s(4));
        assert_ne!(s(4), s(5));
        let plan = s(4);
        // Faults at 1-2 s, 3-4 s, ..., 29-30 s.
        assert_eq!(plan.len(), 15);
        for w in plan.windows(2) {
            assert!(w[0].stop < w[1].start);
        }
        assert!(plan.last().unwrap().stop <= Duration::from_secs(30));
        let kinds: BTreeSet<_> = plan.iter().map(|p| p.fault.names().0).collect();
        assert_eq!(kinds.len(), 3, "{kinds:?}");
    }

    #[test]
    fn partitions_keep_each_node_hearing_itself_and_one_way_cuts_are_one_way() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut one_way_seen = false;
        let mut shapes = BTreeSet::new();
        for i in 0..100 {
            let Fault::Partition { shape, cuts } = partition(&mut rng, &ids(2 + i % 5)) else {
                unreachable!()
            };
            assert!(!cuts.is_empty());
            assert!(cuts.iter().all(|(a, b)| a != b));
            let symmetric = cuts
                .iter()
                .all(|(a, b)| cuts.contains(&(b.clone(), a.clone())));
            assert_eq!(symmetric, shape != "one-way-halves", "{shape}");
            one_way_seen |= !symmetric;
            shapes.insert(shape.clone());
            if shape == "bridge" {
                // One node hears both sides, which do not hear each other.
                let n = 2 + i % 5;
                let heard_by_all = ids(n)
                    .into_iter()
                    .filter(|x| cuts.iter().all(|(a, b)| a != x && b != x))
                    .count();
                assert_eq!(heard_by_all, 1, "{cuts:?}");
            }
        }
        assert!(one_way_seen);
        let all: BTreeSet<&str> = [
            "isolate-one",
            "halves",
            "one-way-halves",
            "majorities-ring",
            "bridge",
            "minority-third",
        ]
        .into();
        assert_eq!(
            shapes.iter().map(String::as_str).collect::<BTreeSet<_>>(),
            all
        );
        let f = Fault::Partition {
            shape: "x".into(),
            cuts: [("n1".to_string(), "n2".to_string())].into(),
        };
        assert_eq!(f.value()["grudge"], json!({"n2": ["n1"]}));
    }
}
