//! The progress line: elapsed/limit, ops/s, ok/fail/info, faults in force. A live line
//! (indicatif) when stderr is a terminal, a plain log line every few seconds otherwise.

use super::faults::InForce;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};
use sunder_workloads::Recorder;
use tokio::task::JoinHandle;

pub struct Progress {
    task: JoinHandle<()>,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn start(
        recorder: Arc<Recorder>,
        in_force: InForce,
        limit: Duration,
        start: Instant,
    ) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(limit.as_secs().max(1));
            b.set_style(
                ProgressStyle::with_template("{bar:20} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        });
        let period = if bar.is_some() {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(5)
        };
        let b = bar.clone();
        let task = tokio::spawn(async move {
            let mut last = (Instant::now(), 0u64);
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                let c = recorder.counts();
                let done = c.ok + c.fail + c.info;
                let now = Instant::now();
                let rate =
                    (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
                last = (now, done);
                let faults = in_force.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let elapsed = start.elapsed();
                let line = format!(
                    "{:>4}s/{}s  {:>6.0} ops/s  ok {}  fail {}  info {}  faults: {}",
                    elapsed.as_secs(),
                    limit.as_secs(),
                    rate,
                    c.ok,
                    c.fail,
                    c.info,
                    if faults.is_empty() { "none" } else { &faults }
                );
                match &b {
                    Some(b) => {
                        b.set_position(elapsed.as_secs().min(limit.as_secs()));
                        b.set_message(line);
                    }
                    None => eprintln!("sunder: {line}"),
                }
            }
        });
        Progress { task, bar }
    }

    pub fn finish(self) {
        self.task.abort();
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}
