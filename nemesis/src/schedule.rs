//! The seeded schedule: when each fault starts and stops. Pure: the same inputs give the
//! same list, whatever happens at run time.

use crate::{
    ClockMode, ClockSpec, DiskSpec, FaultKind, FaultSpec, LossSpec, NemesisOp, PartitionShape,
    TargetSpec,
};
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One scheduled operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Offset from the start of the workload, in milliseconds.
    pub at_ms: u64,
    #[serde(flatten)]
    pub op: NemesisOp,
    /// Seed for resolving this step's fault (which node, which halves), so that resolution
    /// does not depend on how many steps ran before it or when.
    pub seed: u64,
}

impl Step {
    pub fn at(&self) -> Duration {
        Duration::from_millis(self.at_ms)
    }
}

/// What the schedule is made from.
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    pub kinds: Vec<FaultKind>,
    /// Quiet time before each fault, and how long each fault lasts.
    pub interval: Duration,
    pub time_limit: Duration,
    /// Cluster size: shapes that cut nothing at this size are never chosen.
    pub nodes: usize,
    pub seed: u64,
    /// How many times as likely as any other choice a fault aimed at the leader is (the
    /// `leader` partition shape, and the leader as the node to kill or pause). 1 draws
    /// every shape and target alike, as schedules did before leader weighting; 0 never
    /// aims at the leader. Targets with no leader should use 1.
    pub leader_weight: u32,
    /// How long faults last and how far apart they are.
    pub lengths: FaultLengths,
    /// How long the target waits on a silent leader before replacing it (an election or
    /// view-change timeout), if it has one: the varied rhythm's middle faults then last one
    /// to two of it (see [`FaultLengths::Varied`]).
    pub leader_timeout_ms: Option<u64>,
    /// The targets kills, pauses and disk faults draw from (`--fault-targets`); empty:
    /// all of [`TargetSpec::ALL`] (as schedules drew before the setting existed).
    pub targets: Vec<TargetSpec>,
}

/// The rhythm of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultLengths {
    /// Every fault lasts one interval and follows one interval of quiet: a steady beat,
    /// as the documented fault mixes of the planted bugs assume.
    Fixed,
    /// Quiet gaps drawn between half and one and a half intervals, and faults of every
    /// length: a third of them (half of the kills) blips of 5 to 100 ms, which end inside
    /// one election (a voter back before the vote is over, a leader back before it is
    /// deposed), a third one to two leader timeouts (100 ms to 1 s for a target without
    /// one): a leader cut off just long enough to be replaced, back before it notices
    /// and steps down, the window where two leaders overlap; a third 1 s to two
    /// intervals (a new leader elected and serving while the old one is cut off). Bugs
    /// hide behind different lengths; a run that does not know which bug it looks for
    /// tries them all.
    #[default]
    Varied,
}

impl std::str::FromStr for FaultLengths {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fixed" => Ok(FaultLengths::Fixed),
            "varied" => Ok(FaultLengths::Varied),
            _ => Err(format!("{s:?}: expected fixed or varied")),
        }
    }
}

impl std::fmt::Display for FaultLengths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FaultLengths::Fixed => "fixed",
            FaultLengths::Varied => "varied",
        })
    }
}

/// The default [`ScheduleConfig::leader_weight`] for targets that elect a leader: most
/// safety bugs of leader-based protocols show when the leader is the one cut off, killed
/// or paused, so the schedule aims there more often than a uniform draw would.
pub const LEADER_WEIGHT: u32 = 3;

/// Alternates quiet and faulty periods of `interval` each: wait, start a fault of a kind
/// chosen at random among `kinds`, wait, stop it. A fault still in force at the time limit
/// is left to the controller's final heal. Empty when no kinds are chosen.
///
/// Clock faults mixed with other kinds run on a track of their own: each faulty period
/// also gets a clock fault, started just before the other one and stopped just after it,
/// because a skewed clock matters when it meets a partition or a pause (a leader whose
/// clock stalls while it is cut off). That track draws from its own seeded stream, so
/// adding `clock` leaves the other faults of a seed as they were.
pub fn schedule(cfg: &ScheduleConfig) -> Vec<Step> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut steps = Vec::new();
    let interval = cfg.interval.as_millis() as u64;
    let limit = cfg.time_limit.as_millis() as u64;
    if cfg.kinds.is_empty() || interval == 0 {
        return steps;
    }
    let clock_track = cfg.kinds.contains(&FaultKind::Clock) && cfg.kinds.len() > 1;
    let kinds: Vec<FaultKind> = if clock_track {
        cfg.kinds
            .iter()
            .copied()
            .filter(|k| *k != FaultKind::Clock)
            .collect()
    } else {
        cfg.kinds.clone()
    };
    let mut clock_rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x636c_6f63_6b00_0000);
    let shapes: Vec<PartitionShape> = PartitionShape::ALL
        .into_iter()
        .filter(|s| s.applies_to(cfg.nodes))
        .collect();
    let targets: Vec<TargetSpec> = if cfg.targets.is_empty() {
        TargetSpec::ALL.to_vec()
    } else {
        cfg.targets.clone()
    };
    let w = cfg.leader_weight;
    let varied = cfg.lengths == FaultLengths::Varied;
    // Varied rhythm draws from a stream of its own, so the faults chosen are the same
    // under either rhythm.
    let mut rhythm = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x7268_7974_686d_0000);
    let mut t = if varied {
        gap(interval, &mut rhythm)
    } else {
        interval
    };
    while t < limit {
        let kind = *kinds.choose(&mut rng).expect("kinds is not empty");
        let spec = match kind {
            FaultKind::Partition => match pick(&shapes, PartitionShape::Leader, w, &mut rng) {
                Some(s) => FaultSpec::Partition(s),
                None => break,
            },
            FaultKind::Kill => {
                FaultSpec::Kill(pick(&targets, TargetSpec::Leader, w, &mut rng).expect("non-empty"))
            }
            FaultKind::Pause => FaultSpec::Pause(
                pick(&targets, TargetSpec::Leader, w, &mut rng).expect("non-empty"),
            ),
            FaultKind::Clock => FaultSpec::Clock(clock_spec(&mut rng)),
            FaultKind::Loss => FaultSpec::Loss(LossSpec::random(&mut rng)),
            FaultKind::LoseUnsynced | FaultKind::TornWrite | FaultKind::Corrupt => {
                let mode = kind.disk_mode().expect("a disk kind");
                let allowed: Vec<TargetSpec> = mode
                    .targets()
                    .iter()
                    .copied()
                    .filter(|t| targets.contains(t))
                    .collect();
                match pick(&allowed, TargetSpec::Leader, w, &mut rng) {
                    Some(target) => FaultSpec::Disk(DiskSpec { mode, target }),
                    // `--fault-targets` leaves this fault no target (checked up front by
                    // the controller, see `disk_targets_left`)
                    None => break,
                }
            }
        };
        let length = if varied {
            fault_length(kind, interval, cfg.leader_timeout_ms, &mut rhythm)
        } else {
            interval
        };
        let clock = clock_track.then(|| track_clock_spec(&mut clock_rng));
        if let Some(c) = clock {
            steps.push(Step {
                at_ms: t,
                op: NemesisOp::Start(FaultSpec::Clock(c)),
                seed: clock_rng.random(),
            });
        }
        steps.push(Step {
            at_ms: t,
            op: NemesisOp::Start(spec),
            seed: rng.random(),
        });
        if t + length < limit {
            steps.push(Step {
                at_ms: t + length,
                op: NemesisOp::Stop(kind),
                seed: rng.random(),
            });
            if clock.is_some() {
                steps.push(Step {
                    at_ms: t + length,
                    op: NemesisOp::Stop(FaultKind::Clock),
                    seed: clock_rng.random(),
                });
            }
        }
        t += if varied {
            length + gap(interval, &mut rhythm)
        } else {
            2 * interval
        };
    }
    steps
}

/// A quiet gap of the varied rhythm: half to one and a half intervals (at least 1 ms).
fn gap(interval: u64, rng: &mut ChaCha8Rng) -> u64 {
    rng.random_range(interval / 2..=interval * 3 / 2).max(1)
}

/// How long one fault of the varied rhythm lasts, in ms (see [`FaultLengths::Varied`]).
fn fault_length(
    kind: FaultKind,
    interval: u64,
    leader_timeout_ms: Option<u64>,
    rng: &mut ChaCha8Rng,
) -> u64 {
    let short_pct = if kind == FaultKind::Kill || kind.disk_mode().is_some() {
        50
    } else {
        33
    };
    if rng.random_range(0..100) < short_pct {
        rng.random_range(5..100)
    } else if rng.random_bool(0.5) {
        match leader_timeout_ms {
            Some(t) => rng.random_range(t.max(1)..2 * t.max(1)),
            None => rng.random_range(100..1000),
        }
    } else {
        rng.random_range(1000..(2 * interval).max(1001))
    }
}

/// One of `items`, `leader` counting `weight` times and every other item once. Weight 1
/// is a plain uniform draw (the same random numbers as before weighting existed).
fn pick<T: Copy + PartialEq>(
    items: &[T],
    leader: T,
    weight: u32,
    rng: &mut ChaCha8Rng,
) -> Option<T> {
    if weight == 1 || !items.contains(&leader) {
        return items.choose(rng).copied();
    }
    let others = items.len() as u64 - 1;
    let total = others + u64::from(weight);
    if total == 0 {
        return None;
    }
    let r = rng.random_range(0..total);
    if r >= others {
        return Some(leader);
    }
    items
        .iter()
        .copied()
        .filter(|i| *i != leader)
        .nth(r as usize)
}

/// The clock track's fault: half the time on the leader, whose clock is the one a lease
/// or a leader's timers trust (a slowed or stepped-back leader cut off by the partition
/// it is paired with); otherwise as a lone clock fault.
fn track_clock_spec(rng: &mut ChaCha8Rng) -> ClockSpec {
    let spec = clock_spec(rng);
    if rng.random_bool(0.5) {
        ClockSpec {
            target: TargetSpec::Leader,
            ..spec
        }
    } else {
        spec
    }
}

fn clock_spec(rng: &mut ChaCha8Rng) -> ClockSpec {
    ClockSpec {
        mode: *[ClockMode::Bump, ClockMode::Strobe]
            .choose(rng)
            .expect("non-empty"),
        target: *TargetSpec::ALL.choose(rng).expect("non-empty"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(seed: u64) -> ScheduleConfig {
        ScheduleConfig {
            kinds: vec![FaultKind::Partition, FaultKind::Kill, FaultKind::Pause],
            interval: Duration::from_secs(2),
            time_limit: Duration::from_secs(60),
            nodes: 3,
            seed,
            leader_weight: 1,
            lengths: FaultLengths::Fixed,
            leader_timeout_ms: None,
            targets: Vec::new(),
        }
    }

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        assert_eq!(schedule(&cfg(7)), schedule(&cfg(7)));
        assert_ne!(schedule(&cfg(7)), schedule(&cfg(8)));
    }

    #[test]
    fn starts_and_stops_alternate_within_the_limit() {
        let s = schedule(&cfg(1));
        assert_eq!(s.len(), 29); // starts at 2, 6, ..., 58; the last one has no stop
        for pair in s.chunks(2) {
            let NemesisOp::Start(spec) = pair[0].op else {
                panic!("{pair:?}")
            };
            if let Some(stop) = pair.get(1) {
                assert_eq!(stop.op, NemesisOp::Stop(spec.kind()));
                assert_eq!(stop.at_ms, pair[0].at_ms + 2000);
            }
        }
        assert!(s.iter().all(|st| st.at_ms < 60_000));
        assert!(s.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
    }

    #[test]
    fn mixes_the_chosen_kinds_only() {
        let s = schedule(&ScheduleConfig {
            kinds: FaultKind::ALL.to_vec(),
            ..cfg(3)
        });
        for k in FaultKind::ALL {
            assert!(
                s.iter().any(|st| st.op == NemesisOp::Stop(k)),
                "{k} appears"
            );
        }
        let only = ScheduleConfig {
            kinds: vec![FaultKind::Pause],
            ..cfg(3)
        };
        assert!(schedule(&only).iter().all(|st| match st.op {
            NemesisOp::Start(f) => f.kind() == FaultKind::Pause,
            NemesisOp::Stop(k) => k == FaultKind::Pause,
        }));
        // a 3-node cluster never gets a majorities ring (it would cut nothing)
        assert!(
            !s.iter().any(|st| st.op
                == NemesisOp::Start(FaultSpec::Partition(PartitionShape::MajoritiesRing)))
        );
    }

    #[test]
    fn clock_steps_are_seeded_and_mix_bumps_and_strobes() {
        let clock = |seed| ScheduleConfig {
            kinds: vec![FaultKind::Clock],
            ..cfg(seed)
        };
        assert_eq!(schedule(&clock(9)), schedule(&clock(9)));
        assert_ne!(schedule(&clock(9)), schedule(&clock(10)));
        let s = schedule(&clock(9));
        let modes: Vec<ClockMode> = s
            .iter()
            .filter_map(|st| match st.op {
                NemesisOp::Start(FaultSpec::Clock(c)) => Some(c.mode),
                NemesisOp::Stop(k) => {
                    assert_eq!(k, FaultKind::Clock);
                    None
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(modes.contains(&ClockMode::Bump) && modes.contains(&ClockMode::Strobe));
    }

    #[test]
    fn mixed_clock_faults_overlap_the_others_and_leave_them_unchanged() {
        let with_clock = || {
            vec![
                FaultKind::Partition,
                FaultKind::Kill,
                FaultKind::Pause,
                FaultKind::Clock,
            ]
        };
        let without = schedule(&cfg(4));
        let with = schedule(&ScheduleConfig {
            kinds: with_clock(),
            ..cfg(4)
        });
        let others: Vec<Step> = with
            .iter()
            .filter(|st| match st.op {
                NemesisOp::Start(f) => f.kind() != FaultKind::Clock,
                NemesisOp::Stop(k) => k != FaultKind::Clock,
            })
            .copied()
            .collect();
        assert_eq!(others, without);
        assert!(with.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        // every other fault starts under a clock fault, which ends just after it
        for (i, st) in with.iter().enumerate() {
            if let NemesisOp::Start(f) = st.op {
                if f.kind() != FaultKind::Clock {
                    let NemesisOp::Start(prev) = with[i - 1].op else {
                        panic!("{:?}", with[i - 1])
                    };
                    assert_eq!(
                        (prev.kind(), with[i - 1].at_ms),
                        (FaultKind::Clock, st.at_ms)
                    );
                }
            }
        }
        assert_eq!(
            schedule(&ScheduleConfig {
                kinds: with_clock(),
                ..cfg(4)
            }),
            with
        );
    }

    #[test]
    fn the_leader_weight_sets_how_often_faults_aim_at_the_leader() {
        let aimed = |w: u32| {
            let (mut at_leader, mut all) = (0, 0);
            for seed in 0..200 {
                for st in schedule(&ScheduleConfig {
                    leader_weight: w,
                    time_limit: Duration::from_secs(120),
                    nodes: 5,
                    ..cfg(seed)
                }) {
                    if let NemesisOp::Start(f) = st.op {
                        all += 1;
                        at_leader += u32::from(matches!(
                            f,
                            FaultSpec::Partition(PartitionShape::Leader)
                                | FaultSpec::Kill(TargetSpec::Leader)
                                | FaultSpec::Pause(TargetSpec::Leader)
                        ));
                    }
                }
            }
            f64::from(at_leader) / f64::from(all)
        };
        // 5 nodes: 7 shapes and 5 targets. Uniform: partitions 1/7, kills and pauses 1/5,
        // about 0.18 in all; weight 3: 3/9 and 3/7, about 0.40; weight 0: never.
        let (w0, w1, w3) = (aimed(0), aimed(1), aimed(3));
        assert_eq!(w0, 0.0);
        assert!((0.15..0.21).contains(&w1), "weight 1: {w1}");
        assert!((0.36..0.44).contains(&w3), "weight 3: {w3}");
    }

    #[test]
    fn varied_lengths_reach_from_blips_to_two_intervals_and_choose_the_same_faults() {
        let varied = |seed| ScheduleConfig {
            lengths: FaultLengths::Varied,
            time_limit: Duration::from_secs(600),
            ..cfg(seed)
        };
        assert_eq!(schedule(&varied(3)), schedule(&varied(3)));
        let s = schedule(&varied(3));
        let mut lengths = Vec::new();
        let mut quiet = Vec::new();
        let mut last_stop = 0;
        for pair in s.chunks(2) {
            let (NemesisOp::Start(spec), Some(stop)) = (pair[0].op, pair.get(1)) else {
                continue;
            };
            assert_eq!(stop.op, NemesisOp::Stop(spec.kind()));
            lengths.push(stop.at_ms - pair[0].at_ms);
            quiet.push(pair[0].at_ms - last_stop);
            last_stop = stop.at_ms;
        }
        // interval 2 s: blips under 100 ms, medium, and long faults up to 4 s; gaps 1-3 s
        assert!(lengths.iter().all(|l| (5..4000).contains(l)), "{lengths:?}");
        for (lo, hi) in [(5, 100), (100, 1000), (1000, 4000)] {
            assert!(
                lengths.iter().any(|l| (lo..hi).contains(l)),
                "none in {lo}..{hi}"
            );
        }
        assert!(quiet.iter().all(|q| (1000..=3000).contains(q)), "{quiet:?}");
        // the same faults in the same order as the fixed rhythm chooses
        let specs = |lengths| -> Vec<FaultSpec> {
            schedule(&ScheduleConfig {
                lengths,
                time_limit: Duration::from_secs(60),
                ..cfg(3)
            })
            .iter()
            .filter_map(|st| match st.op {
                NemesisOp::Start(f) => Some(f),
                NemesisOp::Stop(_) => None,
            })
            .collect()
        };
        let (fixed, varied) = (specs(FaultLengths::Fixed), specs(FaultLengths::Varied));
        let n = fixed.len().min(varied.len());
        assert!(n >= 10);
        assert_eq!(fixed[..n], varied[..n]);
    }

    #[test]
    fn the_middle_faults_last_one_to_two_leader_timeouts_when_the_target_has_one() {
        let lengths = |leader_timeout_ms| -> Vec<u64> {
            let s = schedule(&ScheduleConfig {
                lengths: FaultLengths::Varied,
                time_limit: Duration::from_secs(3600),
                leader_timeout_ms,
                ..cfg(5)
            });
            s.chunks(2)
                .filter_map(|p| Some(p.get(1)?.at_ms - p[0].at_ms))
                .collect()
        };
        let count =
            |ls: &[u64], lo: u64, hi: u64| ls.iter().filter(|l| (lo..hi).contains(*l)).count();
        let with = lengths(Some(500));
        // Blips, then 500-999 ms, then 1 s and longer: nothing between 100 and 500 ms.
        assert_eq!(count(&with, 100, 500), 0, "{with:?}");
        let middle = count(&with, 500, 1000);
        assert!(middle * 5 > with.len(), "{middle} of {}", with.len());
        // Without one, the middle third spreads over 100 ms to 1 s.
        let without = lengths(None);
        assert!(count(&without, 100, 500) > 0, "{without:?}");
        // Only the lengths change: the same faults start in the same order.
        let starts = |l| -> Vec<NemesisOp> {
            schedule(&ScheduleConfig {
                lengths: FaultLengths::Varied,
                leader_timeout_ms: l,
                ..cfg(5)
            })
            .iter()
            .map(|s| s.op)
            .filter(|op| matches!(op, NemesisOp::Start(_)))
            .take(10)
            .collect()
        };
        assert_eq!(starts(Some(500)), starts(None));
    }

    #[test]
    fn no_kinds_no_steps() {
        assert!(
            schedule(&ScheduleConfig {
                kinds: vec![],
                ..cfg(1)
            })
            .is_empty()
        );
    }

    /// `--fault-targets all`: every kill, pause and disk fault hits every node (a power
    /// cut each time); corruption, which never reaches a majority, is not drawn.
    #[test]
    fn fault_targets_narrow_what_process_and_disk_faults_hit() {
        let s = schedule(&ScheduleConfig {
            kinds: vec![FaultKind::Kill, FaultKind::Pause, FaultKind::LoseUnsynced],
            targets: vec![TargetSpec::All],
            ..cfg(4)
        });
        assert!(s.len() > 10);
        for step in &s {
            match step.op {
                NemesisOp::Start(FaultSpec::Kill(t) | FaultSpec::Pause(t)) => {
                    assert_eq!(t, TargetSpec::All)
                }
                NemesisOp::Start(FaultSpec::Disk(d)) => assert_eq!(d.target, TargetSpec::All),
                NemesisOp::Start(other) => panic!("{other:?}"),
                NemesisOp::Stop(_) => {}
            }
        }
        // The default draws as before the setting existed.
        assert_eq!(
            schedule(&cfg(4)),
            schedule(&ScheduleConfig {
                targets: TargetSpec::ALL.to_vec(),
                ..cfg(4)
            })
        );
    }
}
