//! Ctrl-C and SIGTERM during a run: the first signal means "stop the clients, heal, stop
//! the nodes, keep what was recorded"; a signal while the checkers run stops them too.

use anyhow::Context;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// Fires (holds `true`) on the first SIGINT or SIGTERM. Installed before any node starts,
/// so that from then on a signal means "clean up", never "die with children running".
/// The second receiver counts every signal, so one that comes later (while the checkers
/// run) can stop the checkers too.
pub fn interrupt_channel() -> anyhow::Result<(watch::Receiver<bool>, watch::Receiver<u64>)> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("install the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("install the SIGTERM handler")?;
    let (tx, rx) = watch::channel(false);
    let (count_tx, count_rx) = watch::channel(0u64);
    tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            n += 1;
            if n == 1 {
                eprintln!("sunder: interrupted: stopping clients, healing faults, stopping nodes");
            }
            tx.send_replace(true);
            count_tx.send_replace(n);
        }
    });
    Ok((rx, count_rx))
}

/// A flag set by the next signal after this call: the checkers' cancel flag, so a Ctrl-C
/// while they run (the first or the second of the run) stops them. Abort the returned task
/// once the checkers are done.
pub fn cancel_on_next_signal(
    mut signals: watch::Receiver<u64>,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    signals.mark_unchanged();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let task = tokio::spawn(async move {
        if signals.changed().await.is_ok() {
            eprintln!("sunder: interrupted: stopping the checkers");
            flag.store(true, Ordering::Relaxed);
        }
    });
    (cancel, task)
}

/// Resolves once the first signal has come (at once if it already has).
pub async fn fired(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first Ctrl-C of a run (before the checkers) must not cancel them; the next one
    /// must, whichever number it is.
    #[tokio::test]
    async fn only_a_signal_after_the_checkers_start_cancels_them() {
        let (count, signals) = watch::channel(0u64);
        count.send_replace(1); // the run's first Ctrl-C, during the workload
        let (cancel, task) = cancel_on_next_signal(signals);
        tokio::task::yield_now().await;
        assert!(!cancel.load(Ordering::Relaxed));
        count.send_replace(2); // Ctrl-C while checking
        task.await.unwrap();
        assert!(cancel.load(Ordering::Relaxed));
    }
}
