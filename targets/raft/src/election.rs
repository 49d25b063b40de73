//! Leader election with pre-vote (§5.2, thesis §9.6).
//!
//! ```text
//!  Follower ──timeout──► PreCandidate ──majority pre-votes──► Candidate ──majority──► Leader
//!     ▲                      │ (term unchanged)                 (term+1, persisted)    │
//!     └──────── higher term / AppendEntries from a leader of this term ◄───────────────┘
//! ```
//!
//! Pre-vote keeps a node that was cut off from bumping everyone's term when it returns:
//! nobody who heard from a leader within an election timeout grants it.

use sunder_core::NodeId;
use sunder_wire::NodeEvent;

use crate::core::{Out, Raft};
use crate::leader::Leader;
use crate::msg::{Command, Msg};
use crate::role::RoleState;

impl Raft {
    fn log_ok(&self, last_index: u64, last_term: u64) -> bool {
        (last_term, last_index) >= (self.log.last_term(), self.log.last_index())
    }

    fn broadcast(&self, msg: Msg, out: &mut Out) {
        for p in &self.peers {
            out.send.push((p.clone(), msg.clone()));
        }
    }

    pub(crate) fn start_pre_vote(&mut self, out: &mut Out) {
        self.reset_election_timer();
        self.leader = None;
        if self.peers.is_empty() {
            self.start_election(out);
            return;
        }
        self.role = RoleState::PreCandidate {
            votes: [self.id.clone()].into(),
        };
        let msg = Msg::PreVote {
            term: self.term + 1,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
        };
        self.broadcast(msg, out);
    }

    fn start_election(&mut self, out: &mut Out) {
        self.term += 1;
        self.vote = Some(self.id.clone());
        self.hard_dirty = true;
        self.role = RoleState::Candidate {
            votes: [self.id.clone()].into(),
        };
        self.reset_election_timer();
        out.events.push(NodeEvent::Vote {
            term: self.term,
            candidate: self.id.clone(),
        });
        // Its own vote is a majority only in a cluster of one.
        if self.peers.is_empty() {
            self.become_leader(out);
            return;
        }
        let msg = Msg::Vote {
            term: self.term,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
        };
        self.broadcast(msg, out);
    }

    pub(crate) fn resend_votes(&mut self, out: &mut Out) {
        let msg = Msg::Vote {
            term: self.term,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
        };
        let RoleState::Candidate { votes } = &self.role else {
            return;
        };
        for p in self.peers.iter().filter(|p| !votes.contains(*p)) {
            out.send.push((p.clone(), msg.clone()));
        }
    }

    fn become_leader(&mut self, out: &mut Out) {
        tracing::info!(term = self.term, "became leader");
        let last = self.log.last_index();
        self.role = RoleState::Leader(Box::new(Leader::new(&self.peers, last, self.now_ms)));
        self.leader = Some(self.id.clone());
        self.append_local(Command::Noop);
        self.lead_mut().term_start = self.log.last_index();
        out.events.push(NodeEvent::Leader { term: self.term });
    }

    pub(crate) fn on_pre_vote(
        &mut self,
        from: NodeId,
        term: u64,
        last_index: u64,
        last_term: u64,
        out: &mut Out,
    ) {
        let leader_alive = self.is_leader()
            || (self.leader.is_some() && self.election_elapsed < self.s.election_ticks);
        let granted = term > self.term && !leader_alive && self.log_ok(last_index, last_term);
        let term = if granted { term } else { self.term };
        out.send.push((from, Msg::PreVoteResp { term, granted }));
    }

    pub(crate) fn on_pre_vote_resp(
        &mut self,
        from: NodeId,
        term: u64,
        granted: bool,
        out: &mut Out,
    ) {
        if !granted {
            if term > self.term {
                self.become_follower(term, None, out);
            }
            return;
        }
        let quorum = self.quorum();
        if let RoleState::PreCandidate { votes } = &mut self.role
            && term == self.term + 1
        {
            votes.insert(from);
            if votes.len() >= quorum {
                self.start_election(out);
            }
        }
    }

    /// `term` is already this node's term (the dispatcher adopted a newer one).
    pub(crate) fn on_vote(
        &mut self,
        from: NodeId,
        term: u64,
        last_index: u64,
        last_term: u64,
        out: &mut Out,
    ) {
        let free = self.vote.is_none() || self.vote.as_ref() == Some(&from);
        let granted = term == self.term && free && self.log_ok(last_index, last_term);
        if granted {
            self.vote = Some(from.clone());
            self.hard_dirty = true;
            self.reset_election_timer();
            out.events.push(NodeEvent::Vote {
                term: self.term,
                candidate: from.clone(),
            });
        }
        out.send.push((
            from,
            Msg::VoteResp {
                term: self.term,
                granted,
            },
        ));
    }

    pub(crate) fn on_vote_resp(&mut self, from: NodeId, term: u64, granted: bool, out: &mut Out) {
        let quorum = self.quorum();
        if let RoleState::Candidate { votes } = &mut self.role
            && term == self.term
            && granted
        {
            votes.insert(from);
            if votes.len() >= quorum {
                self.become_leader(out);
            }
        }
    }
}
