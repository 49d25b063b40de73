//! The boundary check on every peer message, before the core acts on it.
//!
//! A peer's word is not an invariant: a message from a stranger, one whose numbers would
//! overflow the arithmetic that follows, or one that would break what the log guarantees
//! (a gap, entries out of order, a term above the message's own, a second leader in this
//! term, a rewrite of a committed entry) is dropped, logged and counted here, so that the
//! handlers after it may rely on the shape of what they get. In a correct cluster nothing
//! is ever rejected; the simulation tests check that the count stays zero.

use sunder_core::NodeId;

use crate::core::Raft;
use crate::msg::Msg;

/// Terms and indexes above this are refused: far beyond any real run, and far enough from
/// `u64::MAX` that `+ 1` never overflows.
pub const MAX_NUMBER: u64 = 1 << 62;

impl Raft {
    /// Why `msg` from `from` must be dropped, if it must.
    pub(crate) fn validate(&self, from: &NodeId, msg: &Msg) -> Result<(), &'static str> {
        if !self.peers.contains(from) {
            return Err("sender is not a peer");
        }
        let term = msg.term();
        let numbers: &[u64] = match msg {
            Msg::PreVote {
                last_index,
                last_term,
                ..
            }
            | Msg::Vote {
                last_index,
                last_term,
                ..
            } => &[*last_index, *last_term],
            Msg::PreVoteResp { .. } | Msg::VoteResp { .. } => &[],
            Msg::Append {
                prev_index,
                prev_term,
                commit,
                ..
            } => &[*prev_index, *prev_term, *commit],
            Msg::AppendResp {
                index, hint_index, ..
            } => &[*index, *hint_index],
            Msg::InstallSnapshot { snapshot, .. } => &[snapshot.index, snapshot.term],
            Msg::SnapshotResp { index, .. } => &[*index],
        };
        if term > MAX_NUMBER || numbers.iter().any(|n| *n > MAX_NUMBER) {
            return Err("term or index out of range");
        }
        match msg {
            Msg::Append {
                term,
                prev_index,
                prev_term,
                entries,
                ..
            } => {
                if prev_term > term {
                    return Err("prev_term above the message's term");
                }
                let mut last_term = *prev_term;
                for (i, e) in entries.iter().enumerate() {
                    if e.index != prev_index + 1 + i as u64 {
                        return Err("entries leave a gap or are out of order");
                    }
                    if e.term < last_term || e.term > *term {
                        return Err("entry terms out of order or above the message's term");
                    }
                    last_term = e.term;
                }
                if *term == self.term && !self.s.any_bug() {
                    if self.is_leader() {
                        return Err("a second leader in this node's term");
                    }
                    let base = self.log.base_index();
                    let rewrites = entries.iter().any(|e| {
                        e.index > base
                            && e.index <= self.commit
                            && self.log.term_at(e.index) != Some(e.term)
                    });
                    if rewrites {
                        return Err("entries rewrite committed entries");
                    }
                }
            }
            Msg::InstallSnapshot { term, snapshot, .. } => {
                if snapshot.term > *term {
                    return Err("snapshot term above the message's term");
                }
                // The compacted prefix's summary must describe exactly the snapshot's
                // prefix: it is folded into (index + 1 ...) and reported in dumps.
                let p = &snapshot.prefix;
                if !p.lost
                    && (p.index != snapshot.index
                        || p.terms.windows(2).any(|w| w[0].0 >= w[1].0)
                        || p.terms
                            .iter()
                            .any(|&(i, t)| i > p.index || t > snapshot.term))
                {
                    return Err("snapshot's prefix summary does not match the snapshot");
                }
                if *term == self.term && self.is_leader() && !self.s.any_bug() {
                    return Err("a second leader in this node's term");
                }
            }
            Msg::SnapshotResp { index, .. } if *index > self.log.last_index() => {
                return Err("acknowledges an index beyond this node's log");
            }
            _ => {}
        }
        Ok(())
    }

    /// Drops a message at the boundary: counted, and logged at powers of two so that a
    /// flood cannot fill the disk with log lines.
    pub(crate) fn reject(&mut self, from: &str, msg: &Msg, why: &str) {
        self.rejected += 1;
        if self.rejected.is_power_of_two() {
            tracing::warn!(
                node = %self.id,
                %from,
                rejected = self.rejected,
                "peer message dropped: {why}: {}",
                clip(msg)
            );
        }
    }

    /// Peer messages dropped by [`Raft::validate`] since start.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }
}

fn clip(msg: &Msg) -> String {
    let s = format!("{msg:?}");
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}
