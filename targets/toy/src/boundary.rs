//! The boundary check's bookkeeping, shared by both toy cores: a peer message that a core
//! refuses is counted and logged at powers of two, so that a flood of them cannot fill
//! the disk with log lines. In a correct cluster nothing is ever rejected.

use std::fmt::Debug;

/// Upper bound on a peer's numbers (timestamps): far beyond any real run, and far enough
/// from `u64::MAX` that arithmetic on them cannot overflow.
pub const MAX_NUMBER: u64 = 1 << 62;

/// Peer messages dropped at the boundary.
#[derive(Debug, Default)]
pub struct Rejections {
    count: u64,
}

impl Rejections {
    /// Counts one dropped message, logging it now and then.
    pub fn reject(&mut self, node: &str, from: &str, msg: &impl Debug, why: &str) {
        self.count += 1;
        if self.count.is_power_of_two() {
            let shown = format!("{msg:?}");
            let shown = match shown.char_indices().nth(200) {
                Some((i, _)) => format!("{}...", &shown[..i]),
                None => shown,
            };
            tracing::warn!(%node, %from, rejected = self.count, "peer message dropped: {why}: {shown}");
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}
