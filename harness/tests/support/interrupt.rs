//! Runs of `sunder test` interrupted at seeded random moments, for the tests that check
//! that no run leaves anything behind (namespaces, mounts, processes) whenever it is
//! stopped: the driver spawns each run, watches it until its moment, sends SIGINT or
//! SIGTERM, waits for the exit, and hands the run to the caller's leftover check.

use super::{Guard, wait_exit};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// How many runs, and when to interrupt them.
pub struct Interrupts {
    pub runs: u64,
    /// Draws every delay and signal.
    pub seed: u64,
    /// Even runs are interrupted within this many milliseconds (to land in setup more
    /// often), odd runs within `late_ms`.
    pub early_ms: u64,
    pub late_ms: u64,
}

/// One interrupted run, once its controller has exited.
pub struct Interrupted<'a> {
    /// 0, 1, ... (also the run's seed, as `spawn` was given it).
    pub index: u64,
    /// The run's `--results` directory.
    pub results: &'a Path,
    /// The controller's pid.
    pub pid: u32,
    pub signal: Signal,
    pub delay: Duration,
    pub status: ExitStatus,
}

impl Interrupted<'_> {
    /// `run 3 (SIGINT after 412ms, exit status: 130)`, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "run {} ({} after {:?}, {})",
            self.index, self.signal, self.delay, self.status
        )
    }
}

/// Spawns `runs` runs in `root/r<i>` (`spawn(results, i)`), each interrupted after a
/// seeded delay. Until then `phase(pid, results)` is called every 10 ms (it may note what
/// the run has made so far); its last answer, at the signal, is where the interrupt landed.
/// After the exit, `check_left` asserts that nothing of the run is left. Returns how many
/// interrupts landed in each phase. A guard kills whatever a failing run leaves running.
pub fn interrupt_runs<const PHASES: usize>(
    root: &Path,
    plan: &Interrupts,
    mut spawn: impl FnMut(&Path, u64) -> Child,
    mut phase: impl FnMut(u32, &Path) -> usize,
    mut check_left: impl FnMut(&Interrupted),
) -> [usize; PHASES] {
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
    let mut phases = [0usize; PHASES];
    for index in 0..plan.runs {
        let results = root.join(format!("r{index}"));
        let mut guard = Guard::new(&results);
        let upto = if index % 2 == 0 {
            plan.early_ms
        } else {
            plan.late_ms
        };
        let delay = Duration::from_millis(rng.random_range(0..upto));
        let signal = if rng.random_bool(0.5) {
            Signal::SIGINT
        } else {
            Signal::SIGTERM
        };
        let child = spawn(&results, index);
        let pid = child.id();
        guard.child = Some(child);
        let until = Instant::now() + delay;
        let landed = loop {
            let p = phase(pid, &results);
            if Instant::now() >= until {
                break p;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        phases[landed] += 1;
        let _ = kill(Pid::from_raw(pid as i32), signal);
        let status = wait_exit(guard.child.as_mut().unwrap(), Duration::from_secs(60));
        check_left(&Interrupted {
            index,
            results: &results,
            pid,
            signal,
            delay,
            status,
        });
    }
    phases
}
