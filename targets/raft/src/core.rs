//! The `Raft` state machine: one `step` per input, everything it wants done in the
//! `Output`. Election, replication, reads and snapshots live in their own files as
//! further `impl Raft` blocks; this one holds the state, the dispatch and the end-of-step
//! bookkeeping (apply, persist, compact). State that belongs to one role lives in that
//! role's variant (role.rs, leader.rs).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use sunder_core::{CoreConfig, Input, NodeId, Output, Protocol, ReqToken};
use sunder_wire::{Dump, DumpEntry, LogPosition, NodeEvent, Op, Response, Status, errors};

use crate::config::{BUGS, Settings};
use crate::digest::Prefix;
use crate::kv::Kv;
use crate::leader::Leader;
use crate::log::Log;
use crate::msg::{Command, Entry, Msg, Snapshot};
use crate::record::{Record, Recovered};
use crate::role::{Role, RoleState};

pub type Out = Output<Msg, Record>;

/// One Raft node's whole state.
pub struct Raft {
    pub(crate) id: NodeId,
    pub(crate) peers: Vec<NodeId>,
    pub(crate) s: Settings,
    pub(crate) rng: ChaCha8Rng,
    // Durable (§5.2): written through `hard_dirty` / `persist_from` at the end of a step.
    pub(crate) term: u64,
    pub(crate) vote: Option<NodeId>,
    pub(crate) log: Log,
    pub(crate) snapshot: Option<Snapshot>,
    // Volatile.
    pub(crate) role: RoleState,
    /// Who leads this term, as far as this node knows (itself when leading).
    pub(crate) leader: Option<NodeId>,
    pub(crate) commit: u64,
    pub(crate) applied: u64,
    pub(crate) kv: Kv,
    /// The applied prefix, summarised for the agreement checker (digest.rs).
    pub(crate) prefix: Prefix,
    pub(crate) ticks: u64,
    pub(crate) now_ms: u64,
    pub(crate) election_elapsed: u64,
    pub(crate) election_timeout: u64,
    // End-of-step bookkeeping.
    pub(crate) hard_dirty: bool,
    pub(crate) persist_from: Option<u64>,
    pub(crate) commit_reported: u64,
    /// Peer messages dropped at the boundary (validate.rs).
    pub(crate) rejected: u64,
}

impl Raft {
    pub fn role(&self) -> Role {
        self.role.kind()
    }

    pub fn is_leader(&self) -> bool {
        self.role.is_leader()
    }

    /// The leader's own state, on a path only a leader takes (a broken invariant of this
    /// core otherwise, not something a peer can cause).
    pub(crate) fn lead(&self) -> &Leader {
        match &self.role {
            RoleState::Leader(l) => l,
            other => panic!("{}: leader-only path taken as {:?}", self.id, other.kind()),
        }
    }

    pub(crate) fn lead_mut(&mut self) -> &mut Leader {
        match &mut self.role {
            RoleState::Leader(l) => l,
            other => panic!("{}: leader-only path taken as {:?}", self.id, other.kind()),
        }
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn commit_index(&self) -> u64 {
        self.commit
    }

    /// The local clock as of the last tick.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    /// Committed entries still in the log (after the snapshot base).
    pub fn committed_entries(&self) -> Vec<Entry> {
        let from = self.log.base_index() + 1;
        if self.commit < from {
            return Vec::new();
        }
        self.log.slice(from, (self.commit - from + 1) as usize)
    }

    pub fn snapshot_index(&self) -> u64 {
        self.log.base_index()
    }

    pub fn state(&self) -> &Kv {
        &self.kv
    }

    /// A broken Raft invariant: a panic in a correct build (the simulation tests rely on
    /// it); with a planted bug switched on it is the expected outcome, so log it and go on
    /// and let the checkers find the damage.
    pub(crate) fn broken(&self, what: std::fmt::Arguments<'_>) {
        if self.s.any_bug() {
            tracing::error!("{}: invariant broken (planted bug): {what}", self.id);
        } else {
            panic!("{}: invariant broken: {what}", self.id);
        }
    }

    pub(crate) fn quorum(&self) -> usize {
        self.peers.len().div_ceil(2) + 1
    }

    pub(crate) fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let e = self.s.election_ticks;
        self.election_timeout = self.rng.random_range(e..e + self.s.jitter_ticks);
    }

    /// Adopts `term` (if newer) and follows `leader`. A leader stepping down answers its
    /// outstanding client requests: updates indefinitely (they may still commit), reads
    /// definitely (a read that was not answered had no effect).
    pub(crate) fn become_follower(&mut self, term: u64, leader: Option<NodeId>, out: &mut Out) {
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.hard_dirty = true;
        }
        self.leader = leader;
        if let RoleState::Leader(l) = std::mem::replace(&mut self.role, RoleState::Follower) {
            self.abandon_requests(*l, out);
        }
        self.reset_election_timer();
    }

    fn abandon_requests(&self, l: Leader, out: &mut Out) {
        for (_, token) in l.pending {
            out.reply
                .push((token, Response::error(token.id, errors::UNAVAILABLE, false)));
        }
        for r in l.reads.into_reads() {
            out.reply.push((
                r.token,
                Response::not_leader(r.token.id, self.leader.clone()),
            ));
        }
    }

    fn tick(&mut self, now_ms: u64, out: &mut Out) {
        self.ticks += 1;
        self.now_ms = now_ms;
        if let RoleState::Leader(l) = &mut self.role {
            l.heartbeat_elapsed += 1;
            if l.heartbeat_elapsed >= self.s.heartbeat_ticks {
                l.heartbeat_elapsed = 0;
                l.broadcast_needed = true;
            }
            // Measured on the local clock, like the lease it backs (etcd pairs lease reads
            // with check-quorum): a leader whose clock is stepped back or slowed keeps
            // leading, unaware, for that much longer. Only liveness rests on it in a
            // correct build. `stale-read` is the leader of the paper: sure of itself until
            // it hears of a newer term, so nothing tells it that it was cut off.
            let since = now_ms.saturating_sub(l.quorum_checked_ms);
            if since >= self.s.election_ms && !self.s.bug_stale_read {
                self.check_quorum(out);
            }
        } else {
            self.election_elapsed += 1;
            if self.election_elapsed >= self.election_timeout {
                self.start_pre_vote(out);
            } else if matches!(self.role, RoleState::Candidate { .. })
                && self.election_elapsed % self.s.heartbeat_ticks == 0
            {
                // Servers retry RPCs that go unanswered (§5.1): a voter may have been down.
                self.resend_votes(out);
            }
        }
    }

    /// A leader that has not heard from a majority for an election timeout steps down, so
    /// that clients on its side of a partition are told to look elsewhere.
    fn check_quorum(&mut self, out: &mut Out) {
        let quorum = self.quorum();
        let now_ms = self.now_ms;
        let l = self.lead_mut();
        l.quorum_checked_ms = now_ms;
        if !l.heard_quorum(quorum) {
            tracing::info!(
                term = self.term,
                "lost contact with a majority; stepping down"
            );
            self.become_follower(self.term, None, out);
        }
    }

    fn client(&mut self, token: ReqToken, op: Op, out: &mut Out) {
        match op {
            Op::Status => {
                let st = Status {
                    node: self.id.clone(),
                    role: self.role().as_str().into(),
                    term: self.term,
                    leader: self.leader.clone(),
                    commit: self.commit,
                };
                out.reply.push((token, Response::ok(token.id, json!(st))));
            }
            Op::Dump => {
                // Each entry with the chain through it, continued from the snapshot's.
                let base = self.snapshot.as_ref().map(|s| s.prefix.clone());
                let mut chain = base.clone().unwrap_or_default();
                let entries = self
                    .committed_entries()
                    .into_iter()
                    .map(|e| {
                        let mut d = dump_entry(e);
                        chain.push(d.index, d.term, &d.command);
                        d.digest = chain.hex();
                        d
                    })
                    .collect();
                let d = Dump {
                    node: self.id.clone(),
                    snapshot_index: self.log.base_index(),
                    entries,
                    state: self.kv.to_json(),
                    snapshot_digest: base.as_ref().and_then(Prefix::hex),
                    snapshot_terms: base.map(|b| b.terms).unwrap_or_default(),
                };
                out.reply.push((token, Response::ok(token.id, json!(d))));
            }
            _ if !self.is_leader() => {
                out.reply
                    .push((token, Response::not_leader(token.id, self.leader.clone())));
            }
            Op::Read { key } => self.read(token, key, out),
            op => self.propose(token, op, out),
        }
    }

    fn propose(&mut self, token: ReqToken, op: Op, out: &mut Out) {
        let index = self.log.last_index() + 1;
        let early = self.s.bug_early_ack && !matches!(op, Op::Cas { .. });
        let origin = format!("{}/{}:{}", self.id, token.conn, token.id);
        self.append_local(Command::Op { op, origin });
        if early {
            // The bug: "it is in my log (and on my disk), so it is as good as committed".
            let at = LogPosition {
                index,
                term: self.term,
            };
            out.reply.push((token, Response::committed(token.id, at)));
        } else {
            self.lead_mut().pending.insert(index, token);
        }
    }

    pub(crate) fn append_local(&mut self, cmd: Command) {
        let index = self.log.last_index() + 1;
        self.log.put(Entry {
            index,
            term: self.term,
            cmd,
        });
        self.persist_from = Some(self.persist_from.map_or(index, |f| f.min(index)));
        if self.peers.is_empty() {
            self.commit = index;
        }
    }

    /// Applies committed entries, answering the clients of those this leader proposed.
    fn apply(&mut self, out: &mut Out) {
        while self.applied < self.commit {
            let index = self.applied + 1;
            let entry = self
                .log
                .get(index)
                .expect("committed entry in the log")
                .clone();
            self.applied = index;
            self.prefix
                .push(index, entry.term, &dump_entry(entry.clone()).command);
            let Command::Op { op, .. } = &entry.cmd else {
                continue;
            };
            let result = self.kv.apply(op);
            let waiting = match &mut self.role {
                RoleState::Leader(l) => l.pending.remove(&index),
                _ => None,
            };
            if let Some(token) = waiting {
                let at = LogPosition {
                    index,
                    term: entry.term,
                };
                let resp = match result {
                    Ok(_) if op.is_update() => Response::committed(token.id, at),
                    // A read ordered through the log (the bank's `balances`) answers its value.
                    Ok(v) => Response::ok(token.id, v),
                    Err(e) => Response::error(token.id, e, true),
                };
                out.reply.push((token, resp));
            }
        }
    }

    /// Everything that follows from the step's changes, in one place so that no handler
    /// can forget it: replicate, apply, answer reads, persist, compact, report.
    fn finish(&mut self, out: &mut Out) {
        if self.is_leader() {
            self.advance_commit();
            self.replicate(out);
        }
        self.apply(out);
        if self.is_leader() {
            self.serve_reads(out);
        }
        if self.hard_dirty {
            self.hard_dirty = false;
            out.persist.push(self.hard_state());
        }
        if let Some(from) = self.persist_from.take() {
            if from > self.log.base_index() && from <= self.log.last_index() {
                out.persist
                    .push(Record::Entries(self.log.slice(from, usize::MAX)));
            }
        }
        self.maybe_compact(out);
        // Every advance, in the output that carries the replies it allows: the agreement
        // checker compares the dumps with the highest index ever announced. Recorded too, so
        // that a node restarted with the rest of the cluster still dumps what it committed.
        if self.commit > self.commit_reported {
            self.commit_reported = self.commit;
            out.persist.push(Record::Commit(self.commit));
            let term = self.log.term_at(self.commit).unwrap_or(0);
            out.events.push(NodeEvent::Commit {
                index: self.commit,
                term,
            });
        }
    }

    pub(crate) fn hard_state(&self) -> Record {
        // The `forget-vote` bug: the term is written but the vote is not, so a restart in
        // the same term forgets whom it voted for.
        let vote = if self.s.bug_forget_vote {
            None
        } else {
            self.vote.clone()
        };
        Record::HardState {
            term: self.term,
            vote,
        }
    }
}

fn dump_entry(e: Entry) -> DumpEntry {
    let (command, origin) = match e.cmd {
        Command::Noop => (Value::Null, None),
        Command::Op { op, origin } => (json!(op), Some(origin)),
    };
    DumpEntry {
        index: e.index,
        term: e.term,
        command,
        origin,
        digest: None,
    }
}

impl Protocol for Raft {
    type Msg = Msg;
    type Record = Record;

    fn recovered_vote(&self) -> Option<(u64, Option<String>)> {
        Some((self.term, self.vote.clone()))
    }

    fn recover(config: CoreConfig, records: Vec<Record>) -> Raft {
        let s = Settings::from_config(&config);
        let r = Recovered::replay(records);
        let peers = config
            .members
            .iter()
            .filter(|m| **m != config.id)
            .cloned()
            .collect();
        let (kv, base, prefix) = match &r.snapshot {
            Some(snap) => (snap.state.clone(), snap.index, snap.prefix.clone()),
            None => (Kv::default(), 0, Prefix::default()),
        };
        let commit = r.commit.max(base);
        let mut raft = Raft {
            id: config.id.clone(),
            peers,
            s,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            term: r.term,
            vote: r.vote,
            log: r.log,
            snapshot: r.snapshot,
            role: RoleState::Follower,
            leader: None,
            commit,
            applied: base,
            kv,
            prefix,
            ticks: 0,
            now_ms: 0,
            election_elapsed: 0,
            election_timeout: 0,
            hard_dirty: false,
            persist_from: None,
            commit_reported: commit,
            rejected: 0,
        };
        raft.reset_election_timer();
        raft
    }

    fn step(&mut self, input: Input<Msg>, out: &mut Out) {
        match input {
            Input::Tick { now_ms } => self.tick(now_ms, out),
            Input::Peer { from, msg } => self.peer(from, msg, out),
            Input::Client { token, op } => self.client(token, op, out),
            Input::Signed { token, .. } => sunder_core::protocol::refuse_signed(token, out),
        }
        self.finish(out);
    }

    fn known_bugs() -> &'static [&'static str] {
        BUGS
    }

    fn accepted_opts() -> &'static [sunder_core::OptSpec] {
        crate::config::OPTS
    }
}
