//! Seeded pacing: how long a worker waits before its next operation.
//!
//! Each of `concurrency` workers aims at `rate / concurrency` operations per second, with
//! exponentially distributed gaps (arrivals look like a Poisson process, so workers do not
//! march in lock-step) drawn from the worker's own pacing stream. Gaps are measured from a
//! schedule, not from the end of the previous operation, so slow operations do not lower
//! the rate; a worker that falls behind does not burst to catch up either.

use crate::generator::worker_rng;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

const PACE_STREAM: u64 = 1;

/// The sleep schedule of one worker.
#[derive(Debug, Clone)]
pub struct Pacer {
    rng: ChaCha8Rng,
    /// Mean gap between this worker's operations; `None` = no waiting at all.
    mean: Option<Duration>,
}

impl Pacer {
    /// `rate` is the total across all workers; `None`, zero, negative or non-finite means
    /// as fast as possible.
    pub fn new(rate: Option<f64>, concurrency: usize, seed: u64, worker: usize) -> Self {
        let mean = rate
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| Duration::from_secs_f64(concurrency.max(1) as f64 / r));
        Pacer {
            rng: worker_rng(seed, worker, PACE_STREAM),
            mean,
        }
    }

    /// The next gap, or `None` when unpaced.
    pub fn next_gap(&mut self) -> Option<Duration> {
        let mean = self.mean?;
        // 1 - u lies in (0, 1], so the logarithm is finite; the cap keeps one unlucky draw
        // from idling a worker for a long stretch of a short test.
        let u: f64 = self.rng.random();
        let factor = (-(1.0 - u).ln()).min(5.0);
        Some(mean.mul_f64(factor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_average_to_the_rate_and_replay() {
        let mut a = Pacer::new(Some(100.0), 5, 9, 0);
        let mut b = Pacer::new(Some(100.0), 5, 9, 0);
        let gaps: Vec<Duration> = (0..2000).map(|_| a.next_gap().unwrap()).collect();
        let again: Vec<Duration> = (0..2000).map(|_| b.next_gap().unwrap()).collect();
        assert_eq!(gaps, again);
        let mean = gaps.iter().sum::<Duration>().as_secs_f64() / gaps.len() as f64;
        // 5 workers sharing 100 ops/s: 50 ms each, a little less for the cap.
        assert!((0.045..0.055).contains(&mean), "mean gap {mean}");
        assert!(Pacer::new(None, 5, 9, 0).next_gap().is_none());
    }
}
