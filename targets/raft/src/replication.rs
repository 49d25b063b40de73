//! Log replication (§5.3): the consistency check with fast backtracking, batching and
//! pipelining on the leader, commit by counting replicas of current-term entries (§5.4.2).
//!
//! ```text
//!  leader                                   follower
//!  log ──slice(next, max_batch)──► Append ──► check prev ─► put entries ─► persist ─┐
//!   ▲  (up to max_inflight batches                              │ mismatch          │
//!   │   in flight per follower)                                 ▼                   ▼
//!  Progress ◄──── back_to(hint) ◄── AppendResp{false, hint} ◄───┘    AppendResp{true, index}
//!      └── ack(index) ──► majority match in current term ──► commit
//! ```

use sunder_core::NodeId;

use crate::core::{Out, Raft};
use crate::msg::Msg;
use crate::progress::Mode;
use crate::role::RoleState;

impl Raft {
    /// Dispatches a peer message after the term rules common to all of them.
    pub(crate) fn peer(&mut self, from: NodeId, msg: Msg, out: &mut Out) {
        if let Err(why) = self.validate(&from, &msg) {
            self.reject(&from, &msg, why);
            return;
        }
        let term = msg.term();
        // Pre-vote messages carry a prospective term and must not change anyone's term;
        // everything else with a newer term means this node is behind.
        let prospective = matches!(msg, Msg::PreVote { .. } | Msg::PreVoteResp { .. });
        if !prospective && term > self.term {
            let leader = matches!(msg, Msg::Append { .. } | Msg::InstallSnapshot { .. })
                .then(|| from.clone());
            self.become_follower(term, leader, out);
        }
        match msg {
            Msg::PreVote {
                term,
                last_index,
                last_term,
            } => self.on_pre_vote(from, term, last_index, last_term, out),
            Msg::PreVoteResp { term, granted } => self.on_pre_vote_resp(from, term, granted, out),
            Msg::Vote {
                term,
                last_index,
                last_term,
            } => self.on_vote(from, term, last_index, last_term, out),
            Msg::VoteResp { term, granted } => self.on_vote_resp(from, term, granted, out),
            Msg::Append {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
                seq,
            } => {
                if term < self.term {
                    let resp = Msg::AppendResp {
                        term: self.term,
                        success: false,
                        index: prev_index,
                        hint_index: 0,
                        hint_term: None,
                        seq,
                    };
                    out.send.push((from, resp));
                    return;
                }
                self.follow(&from, out);
                self.on_append(from, prev_index, prev_term, entries, commit, seq, out);
            }
            Msg::AppendResp {
                term,
                success,
                index,
                hint_index,
                hint_term,
                seq,
            } => {
                if term == self.term && self.is_leader() {
                    self.on_append_resp(&from, success, index, hint_index, hint_term, seq);
                }
            }
            Msg::InstallSnapshot {
                term,
                snapshot,
                seq,
            } => {
                if term < self.term {
                    out.send.push((
                        from,
                        Msg::SnapshotResp {
                            term: self.term,
                            index: 0,
                            seq,
                        },
                    ));
                    return;
                }
                self.follow(&from, out);
                self.on_install_snapshot(from, snapshot, seq, out);
            }
            Msg::SnapshotResp { term, index, seq } => {
                if term == self.term && self.is_leader() {
                    self.on_snapshot_resp(&from, index, seq);
                }
            }
        }
    }

    /// A message from the leader of this term: follow it and hold off elections.
    fn follow(&mut self, leader: &NodeId, out: &mut Out) {
        if self.is_leader() {
            self.broken(format_args!(
                "another leader {leader} in my term {}",
                self.term
            ));
        }
        if !matches!(self.role, RoleState::Follower) || self.leader.as_ref() != Some(leader) {
            self.become_follower(self.term, Some(leader.clone()), out);
        }
        self.election_elapsed = 0;
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append(
        &mut self,
        from: NodeId,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<crate::msg::Entry>,
        commit: u64,
        seq: u64,
        out: &mut Out,
    ) {
        let base = self.log.base_index();
        let reply = |success, index, hint_index, hint_term| Msg::AppendResp {
            term: self.term,
            success,
            index,
            hint_index,
            hint_term,
            seq,
        };
        // Entries at or before the snapshot base are committed, hence identical: skip them.
        let entries: Vec<_> = entries.into_iter().filter(|e| e.index > base).collect();
        let prev_index_eff = prev_index.max(base);
        let prev_ok = if prev_index < base {
            true
        } else {
            self.log.term_at(prev_index) == Some(prev_term)
        };
        if !prev_ok {
            let (hint_index, hint_term) = if prev_index > self.log.last_index() {
                (self.log.last_index() + 1, None)
            } else {
                let t = self.log.term_at(prev_index).expect("index within the log");
                (self.log.first_of_term(prev_index, t), Some(t))
            };
            out.send
                .push((from, reply(false, prev_index, hint_index, hint_term)));
            return;
        }
        let last_new = entries.last().map_or(prev_index_eff, |e| e.index);
        for e in entries {
            if self.log.term_at(e.index) == Some(e.term) {
                continue;
            }
            if e.index <= self.commit {
                self.broken(format_args!(
                    "leader {from} overwrites committed entry {}",
                    e.index
                ));
            }
            self.persist_from = Some(self.persist_from.map_or(e.index, |f| f.min(e.index)));
            self.log.put(e);
        }
        // Only up to what this message proved matches: later entries may be stale.
        let new_commit = commit.min(last_new);
        if new_commit > self.commit {
            self.commit = new_commit;
        }
        out.send.push((from, reply(true, last_new, 0, None)));
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append_resp(
        &mut self,
        from: &NodeId,
        success: bool,
        index: u64,
        hint_index: u64,
        hint_term: Option<u64>,
        seq: u64,
    ) {
        let last = self.log.last_index();
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        let Some(p) = l.progress.get_mut(from) else {
            return;
        };
        p.active = true;
        p.acked_seq = p.acked_seq.max(seq);
        if success {
            p.ack(index.min(last));
            return;
        }
        let stale = match p.mode {
            Mode::Replicate => index <= p.matched,
            Mode::Probe => index + 1 != p.next,
        };
        if stale {
            return;
        }
        // Skip the follower's whole conflicting term when this log has none of it.
        let next = match hint_term.and_then(|t| self.log.last_of_term(t)) {
            Some(i) => i + 1,
            None => hint_index,
        };
        p.back_to(next.clamp(1, last + 1).min(index.max(1)));
    }

    /// The highest index a majority holds, committed only if it is of the current term.
    pub(crate) fn advance_commit(&mut self) {
        let n = self
            .lead()
            .quorum_match(self.log.last_index(), self.quorum());
        if n > self.commit && self.log.term_at(n) == Some(self.term) {
            self.commit = n;
        }
    }

    /// Sends what each follower is missing, as far as its window allows, and a heartbeat
    /// round to everyone when one is due (tick or pending reads).
    pub(crate) fn replicate(&mut self, out: &mut Out) {
        let now_ms = self.now_ms;
        let l = self.lead_mut();
        let round = std::mem::take(&mut l.broadcast_needed);
        if round {
            l.seq += 1;
            l.reads.note_round(l.seq, now_ms);
        }
        let peers = self.peers.clone();
        for peer in peers {
            let mut sent = false;
            loop {
                let p = &self.lead().progress[&peer];
                if p.window(self.s.max_inflight) == 0 || p.next > self.log.last_index() {
                    break;
                }
                if !self.send_append(&peer, false, out) {
                    break;
                }
                sent = true;
            }
            if round && !sent {
                self.send_append(&peer, true, out);
            }
        }
    }

    /// One AppendEntries (or a snapshot when the follower needs compacted entries).
    /// Returns whether a batch with entries went out.
    fn send_append(&mut self, peer: &NodeId, heartbeat: bool, out: &mut Out) -> bool {
        let next = self.lead().progress[peer].next;
        if next <= self.log.base_index() {
            self.send_snapshot(peer, out);
            return false;
        }
        let prev_index = next - 1;
        let prev_term = self.log.term_at(prev_index).expect("prev within the log");
        // Heartbeats carry no entries so that they never exceed the window; they still
        // run the consistency check, which is how a lost batch is noticed.
        let entries = if heartbeat {
            Vec::new()
        } else {
            self.log.slice(next, self.s.max_batch)
        };
        let RoleState::Leader(l) = &mut self.role else {
            unreachable!("replicate runs only while leading");
        };
        let seq = l.seq;
        let p = l.progress.get_mut(peer).expect("peer progress");
        let with_entries = !entries.is_empty();
        if let Some(last) = entries.last() {
            // Probing, `next` stays put until the follower answers, so that a rejection
            // (which names `next - 1`) is recognised as current.
            if p.mode == Mode::Replicate {
                p.next = last.index + 1;
            }
            p.inflight.push_back(last.index);
        }
        let msg = Msg::Append {
            term: self.term,
            prev_index,
            prev_term,
            entries,
            commit: self.commit,
            seq,
        };
        out.send.push((peer.clone(), msg));
        with_entries
    }
}
