//! The seeded schedule: when each fault starts and stops. Pure: the same inputs give the
//! same list, whatever happens at run time.

use crate::{
    ClockMode, ClockSpec, FaultKind, FaultSpec, LossSpec, NemesisOp, PartitionShape, TargetSpec,
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
}

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
    let mut t = interval;
    while t < limit {
        let kind = *kinds.choose(&mut rng).expect("kinds is not empty");
        let spec = match kind {
            FaultKind::Partition => match shapes.choose(&mut rng) {
                Some(s) => FaultSpec::Partition(*s),
                None => break,
            },
            FaultKind::Kill => {
                FaultSpec::Kill(*TargetSpec::ALL.choose(&mut rng).expect("non-empty"))
            }
            FaultKind::Pause => {
                FaultSpec::Pause(*TargetSpec::ALL.choose(&mut rng).expect("non-empty"))
            }
            FaultKind::Clock => FaultSpec::Clock(clock_spec(&mut rng)),
            FaultKind::Loss => FaultSpec::Loss(LossSpec::random(&mut rng)),
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
        if t + interval < limit {
            steps.push(Step {
                at_ms: t + interval,
                op: NemesisOp::Stop(kind),
                seed: rng.random(),
            });
            if clock.is_some() {
                steps.push(Step {
                    at_ms: t + interval,
                    op: NemesisOp::Stop(FaultKind::Clock),
                    seed: clock_rng.random(),
                });
            }
        }
        t += 2 * interval;
    }
    steps
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
    fn no_kinds_no_steps() {
        assert!(
            schedule(&ScheduleConfig {
                kinds: vec![],
                ..cfg(1)
            })
            .is_empty()
        );
    }
}
