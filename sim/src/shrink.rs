//! Shrinking a failing schedule: fewer faults, then a shorter run, keeping each reduction
//! under which the seed still fails. Greedy and deterministic (every try is a full,
//! seeded run), so the smallest schedule found is itself a replayable counterexample.

use sunder_checker::Verdict;

use crate::check::Outcome;
use crate::config::{SimConfig, SimError};
use crate::fault::Schedule;
use crate::targets::RunFn;

/// What shrinking found: the smallest failing run, and how many runs it took.
pub struct Shrunk {
    pub config: SimConfig,
    pub outcome: Outcome,
    pub runs: usize,
}

/// Shrinks `cfg`'s seed, which must fail with `schedule` when simulated by `run` (a
/// core's [`run_with_schedule`](crate::run_with_schedule)); `budget` caps the runs tried.
pub fn shrink(
    run: RunFn,
    cfg: &SimConfig,
    schedule: Schedule,
    budget: usize,
) -> Result<Option<Shrunk>, SimError> {
    let fails = |o: &Outcome| o.verdict == Verdict::Invalid;
    let mut best_cfg = cfg.clone();
    let mut best = run(cfg, schedule)?;
    let mut runs = 1;
    if !fails(&best) {
        return Ok(None);
    }
    // 1. Cut the run short just after the fault that the failure needs last: try ending
    //    at each fault start from the first on.
    let starts: Vec<u64> = best.schedule.steps.iter().map(|s| s.at_ms).collect();
    for end in starts.iter().map(|t| t + 1).chain([best_cfg.time_ms / 2]) {
        if runs >= budget || end >= best_cfg.time_ms {
            continue;
        }
        let mut c = best_cfg.clone();
        c.time_ms = end.max(1);
        let s = Schedule {
            steps: best
                .schedule
                .steps
                .iter()
                .copied()
                .filter(|s| s.at_ms < c.time_ms)
                .collect(),
        };
        let o = run(&c, s)?;
        runs += 1;
        if fails(&o) {
            best_cfg = c;
            best = o;
            break;
        }
    }
    // 2. Drop faults one at a time, halves first, while the failure stays.
    let mut chunk = best.schedule.len().div_ceil(2).max(1);
    while chunk >= 1 && runs < budget {
        let mut i = 0;
        let mut removed = false;
        while i < best.schedule.len() && runs < budget {
            let mut steps = best.schedule.steps.clone();
            steps.drain(i..(i + chunk).min(steps.len()));
            let o = run(&best_cfg, Schedule { steps })?;
            runs += 1;
            if fails(&o) {
                best = o;
                removed = true;
            } else {
                i += chunk;
            }
        }
        if chunk == 1 && !removed {
            break;
        }
        chunk = (chunk / 2).max(1);
    }
    Ok(Some(Shrunk {
        config: best_cfg,
        outcome: best,
        runs,
    }))
}
