//! Linearizable reads by read-index (thesis §6.4), and the two planted shortcuts.
//!
//! A read that arrives at the leader waits for two things: a heartbeat round sent after it
//! arrived to be acknowledged by a majority (nobody else leads a newer term), and the
//! state machine to have applied everything committed when it arrived (and this leader's
//! no-op, so that "committed" includes all earlier leaders' commits).

use std::collections::VecDeque;

use sunder_core::ReqToken;
use sunder_wire::{Op, Response};

use crate::core::{Out, Raft};
use crate::role::RoleState;

#[derive(Debug, Clone)]
pub struct PendingRead {
    pub token: ReqToken,
    pub key: String,
    /// The heartbeat round that must be acknowledged.
    pub seq: u64,
    /// Applied index to wait for.
    pub index: u64,
}

/// Reads in arrival order; `seq` and `index` never decrease along it.
#[derive(Debug, Default)]
pub struct ReadQueue {
    reads: VecDeque<PendingRead>,
    /// Send time (local clock, ms) of recent heartbeat rounds, for the `lease-read` bug.
    rounds: VecDeque<(u64, u64)>,
}

impl ReadQueue {
    /// The reads still waiting, for a leader stepping down to answer.
    pub fn into_reads(self) -> impl Iterator<Item = PendingRead> {
        self.reads.into_iter()
    }

    /// Heartbeat round `seq` went out at `now_ms` (local clock).
    pub fn note_round(&mut self, seq: u64, now_ms: u64) {
        self.rounds.push_back((seq, now_ms));
    }
}

impl Raft {
    pub(crate) fn read(&mut self, token: ReqToken, key: String, out: &mut Out) {
        let lease = self.s.bug_lease_read && self.now_ms < self.lead().lease_until;
        if self.s.bug_stale_read || lease {
            // The bugs: "I am the leader, my state is the state". `stale-read` never asks
            // the others; `lease-read` trusts that its lease, measured on its own clock, has
            // not run out: a clock stepped back or slowed stretches the lease (and the
            // check-quorum that would depose it) while the others' election timers run.
            let value = self.kv.apply(&Op::Read { key }).unwrap_or_default();
            out.reply.push((token, Response::ok(token.id, value)));
            return;
        }
        let commit = self.commit;
        let alone = self.peers.is_empty();
        let l = self.lead_mut();
        let index = commit.max(l.term_start);
        l.reads.reads.push_back(PendingRead {
            token,
            key,
            seq: l.seq + 1,
            index,
        });
        l.broadcast_needed = true;
        if alone {
            l.seq += 1;
        }
    }

    pub(crate) fn serve_reads(&mut self, out: &mut Out) {
        let quorum = self.quorum();
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        let confirmed = l.quorum_seq(quorum);
        // A majority acknowledged a round sent at `sent`: nobody can have been elected
        // before `sent + election timeout`, which is what a lease (wrongly, when clocks
        // lie) relies on.
        while let Some(&(seq, sent)) = l.reads.rounds.front() {
            if seq > confirmed {
                break;
            }
            l.lease_until = l.lease_until.max(sent + self.s.lease_ms);
            l.reads.rounds.pop_front();
        }
        while let Some(r) = l.reads.reads.front() {
            if r.seq > confirmed || r.index > self.applied {
                break;
            }
            let r = l.reads.reads.pop_front().expect("front exists");
            let value = self.kv.apply(&Op::Read { key: r.key }).unwrap_or_default();
            out.reply.push((r.token, Response::ok(r.token.id, value)));
        }
    }
}
