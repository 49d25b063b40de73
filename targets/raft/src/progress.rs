//! What a leader knows about one follower's log.

use std::collections::VecDeque;

/// Probe: the leader does not know where the follower's log matches and sends one batch
/// at a time; Replicate: it does, and pipelines up to `max_inflight` batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Probe,
    Replicate,
}

#[derive(Debug, Clone)]
pub struct Progress {
    pub next: u64,
    pub matched: u64,
    pub mode: Mode,
    /// Last index of each unacknowledged batch, oldest first.
    pub inflight: VecDeque<u64>,
    /// Tick at which a snapshot was last sent (it is resent if no answer by then).
    pub snapshot_sent: Option<u64>,
    /// Highest heartbeat round this follower acknowledged in the current term.
    pub acked_seq: u64,
    /// Heard from in the current check-quorum period.
    pub active: bool,
}

impl Progress {
    pub fn new(last_index: u64) -> Progress {
        Progress {
            next: last_index + 1,
            matched: 0,
            mode: Mode::Probe,
            inflight: VecDeque::new(),
            snapshot_sent: None,
            acked_seq: 0,
            active: true,
        }
    }

    /// Batches that may still be sent before waiting for an acknowledgement.
    pub fn window(&self, max_inflight: usize) -> usize {
        let cap = if self.mode == Mode::Probe {
            1
        } else {
            max_inflight
        };
        cap.saturating_sub(self.inflight.len())
    }

    /// A success up to `index`: everything sent up to there has arrived.
    pub fn ack(&mut self, index: u64) {
        if index > self.matched {
            self.matched = index;
        }
        self.next = self.next.max(self.matched + 1);
        while self.inflight.front().is_some_and(|&i| i <= self.matched) {
            self.inflight.pop_front();
        }
        self.mode = Mode::Replicate;
    }

    /// A rejection: go back to `next` and probe from there.
    pub fn back_to(&mut self, next: u64) {
        self.next = next.max(self.matched + 1);
        self.inflight.clear();
        self.mode = Mode::Probe;
    }
}
