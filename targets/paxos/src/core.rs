//! `Paxos`: acceptor, learner and proposer of one node, behind the `Protocol` trait.

use crate::acceptor::Acceptor;
use crate::ballot::Ballot;
use crate::bugs::{self, Bugs};
use crate::candidate::Candidate;
use crate::leader::Leader;
use crate::learner::Learner;
use crate::msg::{Command, Entry, Msg};
use crate::record::Record;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use sunder_core::{CoreConfig, Input, NodeId, OptKind, OptSpec, Output, Protocol, ReqToken};
use sunder_wire::{LogPosition, NodeEvent, Op, Response, Status, errors};

type Out = Output<Msg, Record>;

/// Most entries in one Accept (resends) or Chosen (catch-up) message.
const MAX_BATCH: usize = 256;

/// What this node is doing as a proposer.
#[derive(Debug)]
enum Role {
    Follower,
    Candidate(Candidate),
    Leader(Leader),
}

/// Timing, in milliseconds of the local clock; `--opt heartbeat_ms=` / `election_ms=`.
#[derive(Debug, Clone, Copy)]
struct Timing {
    heartbeat_ms: u64,
    /// Base of the randomized leader-silence timeout, drawn from [base, 2 base).
    election_ms: u64,
}

/// One Multi-Paxos node.
#[derive(Debug)]
pub struct Paxos {
    id: NodeId,
    members: Vec<NodeId>,
    me: u32,
    bugs: Bugs,
    timing: Timing,
    rng: ChaCha8Rng,
    acceptor: Acceptor,
    learner: Learner,
    role: Role,
    /// The highest ballot seen anywhere: a new bid must beat it.
    seen: Ballot,
    /// Node index believed to lead.
    leader_hint: Option<u32>,
    now_ms: u64,
    /// When the leader (or this node's own candidacy) last showed signs of life.
    last_heard_ms: Option<u64>,
    timeout_ms: u64,
    next_heartbeat_ms: u64,
    last_catchup_ms: Option<u64>,
    /// Slot → the client waiting for it on this node.
    pending: BTreeMap<u64, (ReqToken, String)>,
    /// Peer messages dropped at the boundary (validate.rs).
    rejected: u64,
    /// The ballot round of the last `accept` event written.
    announced_accept: Option<u64>,
}

impl Paxos {
    pub(crate) fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Peer messages dropped by the boundary check since start.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Drops a message at the boundary: counted, logged at powers of two.
    fn reject(&mut self, from: &str, why: &str) {
        self.rejected += 1;
        if self.rejected.is_power_of_two() {
            tracing::warn!(%from, rejected = self.rejected, "peer message dropped: {why}");
        }
    }

    fn quorum(&self) -> usize {
        self.members.len() / 2 + 1
    }

    fn name(&self, idx: u32) -> NodeId {
        self.members[idx as usize].clone()
    }

    fn index(&self, node: &str) -> Option<u32> {
        self.members
            .iter()
            .position(|m| m == node)
            .map(|i| i as u32)
    }

    fn peers(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.members.len() as u32).filter(move |i| *i != self.me)
    }

    fn broadcast(&self, msg: &Msg, out: &mut Out) {
        for p in self.peers() {
            out.send.push((self.name(p), msg.clone()));
        }
    }

    /// Hands records to the runtime, and announces what they say the acceptor did: a
    /// promise that rose, and the first accept under each new ballot round (the agreement
    /// checker holds accepts and promises against the highest promise before them).
    fn persist(&mut self, records: Vec<Record>, out: &mut Out) {
        for r in &records {
            match r {
                Record::Promise(b) => out.events.push(NodeEvent::Promise { term: b.round }),
                Record::Accepted { ballot, .. } if self.announced_accept != Some(ballot.round) => {
                    self.announced_accept = Some(ballot.round);
                    out.events.push(NodeEvent::Accept { term: ballot.round });
                }
                _ => {}
            }
        }
        if !self.bugs.no_persist {
            out.persist.extend(records);
        }
    }

    fn new_timeout(&mut self) {
        let base = self.timing.election_ms;
        self.timeout_ms = self.rng.random_range(base..2 * base);
    }

    /// Every chosen slot this node knows, holes included (for tests and checkers).
    pub fn chosen(&self) -> &BTreeMap<u64, Entry> {
        self.learner.chosen()
    }

    /// The highest contiguous chosen slot.
    pub fn commit(&self) -> u64 {
        self.learner.commit()
    }

    /// Slots this node learned twice with different values (only a planted bug does that).
    pub fn conflicts(&self) -> u64 {
        self.learner.conflicts()
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }

    /// The ballot this node leads with or bids for, or else the one it promised.
    pub fn ballot(&self) -> Ballot {
        match &self.role {
            Role::Leader(l) => l.ballot,
            Role::Candidate(c) => c.ballot,
            Role::Follower => self.acceptor.promised(),
        }
    }

    fn observe(&mut self, ballot: Ballot) {
        self.seen = self.seen.max(ballot);
    }

    /// Gives up leading or bidding because `ballot` (owned by someone else) is higher.
    fn step_down(&mut self, ballot: Ballot, out: &mut Out) {
        if !matches!(self.role, Role::Follower) && ballot > self.ballot() {
            self.demote(Some(ballot.node), out);
        }
    }

    fn demote(&mut self, hint: Option<u32>, out: &mut Out) {
        self.role = Role::Follower;
        self.leader_hint = hint;
        self.last_heard_ms = Some(self.now_ms);
        self.new_timeout();
        self.abandon_pending(out);
    }

    /// The commands may still be chosen by the next leader: the outcome is unknown.
    fn abandon_pending(&mut self, out: &mut Out) {
        for (_, (token, _)) in std::mem::take(&mut self.pending) {
            out.reply
                .push((token, Response::error(0, errors::UNAVAILABLE, false)));
        }
    }

    fn tick(&mut self, now_ms: u64, out: &mut Out) {
        self.now_ms = now_ms;
        let heard = *self.last_heard_ms.get_or_insert(now_ms);
        match &self.role {
            Role::Follower if now_ms.saturating_sub(heard) >= self.timeout_ms => self.bid(out),
            Role::Candidate(c) if now_ms.saturating_sub(c.started_ms) >= self.timeout_ms => {
                self.bid(out)
            }
            Role::Leader(l) => {
                // Cut off from a majority for a whole timeout: stop taking commands that
                // cannot be chosen, so clients go elsewhere.
                let window = now_ms.saturating_sub(2 * self.timing.election_ms);
                if l.since_ms < window && l.heard_since(window) < self.quorum() {
                    tracing::info!("no quorum heard from: stepping down");
                    self.demote(None, out);
                } else if now_ms >= self.next_heartbeat_ms {
                    self.next_heartbeat_ms = now_ms + self.timing.heartbeat_ms;
                    self.heartbeat(out);
                }
            }
            _ => {}
        }
    }

    fn heartbeat(&self, out: &mut Out) {
        let Role::Leader(l) = &self.role else { return };
        for p in self.peers() {
            let entries = l.unacked(p, MAX_BATCH);
            out.send.push((
                self.name(p),
                Msg::Accept {
                    ballot: l.ballot,
                    entries,
                    commit: self.commit(),
                },
            ));
        }
    }

    /// Phase 1a: bid for leadership of every slot from the first unchosen one.
    fn bid(&mut self, out: &mut Out) {
        let ballot = Ballot::next_for(
            self.me,
            self.members.len() as u32,
            self.seen.max(self.acceptor.promised()),
        );
        self.observe(ballot);
        self.new_timeout();
        self.abandon_pending(out);
        let from_slot = self.commit() + 1;
        let mut cand = Candidate::new(ballot, from_slot, self.now_ms);
        let mut records = Vec::new();
        // The Prepare check compares numbers, and `ballot` is above everything seen.
        let mine = self
            .acceptor
            .prepare(ballot, from_slot, &mut records)
            .expect("a fresh ballot beats every promise");
        self.persist(records, out);
        cand.promise(self.me, mine);
        self.role = Role::Candidate(cand);
        self.leader_hint = None;
        tracing::debug!(%ballot, from_slot, "bidding for leadership");
        self.broadcast(&Msg::Prepare { ballot, from_slot }, out);
        self.maybe_lead(out);
    }

    /// Phase 1 done with a quorum of promises: re-propose what recovery says, then lead.
    fn maybe_lead(&mut self, out: &mut Out) {
        let Role::Candidate(c) = &self.role else {
            return;
        };
        if c.promise_count() < self.quorum() {
            return;
        }
        let recovered = c.recovery(&self.learner, &self.bugs);
        let ballot = c.ballot;
        let next_slot = recovered.last().map_or(c.from_slot, |(s, _)| s + 1);
        self.role = Role::Leader(Leader::new(ballot, next_slot, self.now_ms));
        self.leader_hint = Some(self.me);
        out.events.push(NodeEvent::Leader { term: ballot.round });
        tracing::info!(%ballot, next_slot, recovered = recovered.len(), "leading");
        self.propose(recovered, out);
        // Announce the new leader at once, so nobody else bids.
        self.next_heartbeat_ms = self.now_ms + self.timing.heartbeat_ms;
        self.heartbeat(out);
    }

    /// Phase 2a for new values: accept locally (durably), then ask everyone else.
    fn propose(&mut self, entries: Vec<(u64, Entry)>, out: &mut Out) {
        let me = self.me;
        let quorum = self.quorum();
        let commit = self.commit();
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        let ballot = l.ballot;
        let mut records = Vec::new();
        if self
            .acceptor
            .accept(ballot, &entries, &mut records)
            .is_err()
        {
            // Only string-ordered ballots get here: our own acceptor promised someone else.
            self.demote(None, out);
            return;
        }
        for (slot, entry) in &entries {
            l.propose(me, *slot, entry.clone());
        }
        let settled = l.settled(quorum);
        self.persist(records, out);
        if !entries.is_empty() {
            self.broadcast(
                &Msg::Accept {
                    ballot,
                    entries,
                    commit,
                },
                out,
            );
        }
        self.learn_all(settled, out);
    }

    /// Learns chosen values (durably, as a convenience for restarts) and applies them.
    fn learn_all(&mut self, entries: Vec<(u64, Entry)>, out: &mut Out) {
        let mut records = Vec::new();
        for (slot, entry) in entries {
            if let Role::Leader(l) = &mut self.role {
                l.forget(slot);
            }
            if self.learner.learn(slot, entry.clone()) {
                records.push(Record::Chosen { slot, entry });
            }
        }
        self.persist(records, out);
        for a in self.learner.apply_ready() {
            out.events.push(NodeEvent::Chosen { slot: a.slot });
            let Some((token, origin)) = self.pending.remove(&a.slot) else {
                continue;
            };
            let mine = a
                .entry
                .cmd
                .as_ref()
                .is_some_and(|c| c.node == self.me && c.origin == origin);
            let resp = match a.result {
                Some(result) if mine => {
                    let mut resp = sunder_core::kv::response(result);
                    // An update says where it was chosen, as Raft's do: the agreement
                    // checker dates a divergence by the first acknowledgement at or past it.
                    if resp.ok && a.entry.cmd.as_ref().is_some_and(|c| c.op.is_update()) {
                        resp.committed = Some(LogPosition {
                            index: a.slot,
                            term: a.entry.round,
                        });
                    }
                    resp
                }
                // Another value took the slot: this command was never chosen here, but
                // stay conservative about whether some leader re-proposes it elsewhere.
                _ => Response::error(0, errors::UNAVAILABLE, false),
            };
            out.reply.push((token, resp));
        }
    }

    fn on_peer(&mut self, from: u32, msg: Msg, out: &mut Out) {
        match msg {
            Msg::Prepare { ballot, from_slot } => {
                self.observe(ballot);
                // A follower that hears a live leader ignores bids from others, so a node
                // coming back from a partition cannot depose a working leader.
                if self.leader_alive() && self.leader_hint != Some(ballot.node) {
                    return;
                }
                let mut records = Vec::new();
                let reply = match self.acceptor.prepare(ballot, from_slot, &mut records) {
                    Ok(accepted) => {
                        self.step_down(ballot, out);
                        // Give the bidder a full timeout to finish phase 1 and call.
                        self.last_heard_ms = Some(self.now_ms);
                        Msg::Promise { ballot, accepted }
                    }
                    Err(promised) => Msg::Nack { ballot, promised },
                };
                self.persist(records, out);
                out.send.push((self.name(from), reply));
            }
            Msg::Promise { ballot, accepted } => {
                if let Role::Candidate(c) = &mut self.role
                    && c.ballot == ballot
                {
                    c.promise(from, accepted);
                    self.maybe_lead(out);
                }
            }
            Msg::Accept {
                ballot,
                entries,
                commit,
            } => self.on_accept(from, ballot, entries, commit, out),
            Msg::Accepted { ballot, slots } => {
                let quorum = self.quorum();
                let now = self.now_ms;
                if let Role::Leader(l) = &mut self.role
                    && l.ballot == ballot
                {
                    let chosen = l.accepted(from, &slots, quorum, now);
                    self.learn_all(chosen, out);
                }
            }
            Msg::Nack { ballot, promised } => {
                self.observe(promised);
                if ballot != self.ballot() {
                } else if promised.node == from && self.leads_a_quorum() {
                    // A lone bidder (it promised only its own ballot: typically a node back
                    // from a partition, whose bids rose while it was cut off) refuses this
                    // leader's Accepts. Its bid cannot win while the followers hear this
                    // leader (they ignore other bidders), so following it would leave the
                    // cluster leaderless until their timeouts run out (seed 9843). Bid
                    // above it instead: the followers promise to their own leader, and so
                    // does the lone bidder.
                    tracing::info!(%promised, "a lone bidder refused our Accept: bidding above it");
                    self.bid(out);
                } else {
                    self.step_down(promised, out);
                }
            }
            Msg::CatchUp { from: slot } => {
                let entries = self.learner.range(slot, MAX_BATCH);
                if !entries.is_empty() {
                    out.send.push((self.name(from), Msg::Chosen { entries }));
                }
            }
            Msg::Chosen { entries } => self.learn_all(entries, out),
        }
    }

    /// Leading, and answered by a majority (this node included) within an election
    /// timeout: the followers still hear this leader.
    fn leads_a_quorum(&self) -> bool {
        let since = self.now_ms.saturating_sub(self.timing.election_ms);
        matches!(&self.role, Role::Leader(l) if l.heard_since(since) >= self.quorum())
    }

    fn leader_alive(&self) -> bool {
        match (&self.role, self.last_heard_ms) {
            (Role::Leader(_), _) => true,
            (Role::Follower, Some(t)) => {
                self.leader_hint.is_some()
                    && self.now_ms.saturating_sub(t) < self.timing.election_ms
            }
            _ => false,
        }
    }

    fn on_accept(
        &mut self,
        from: u32,
        ballot: Ballot,
        entries: Vec<(u64, Entry)>,
        commit: u64,
        out: &mut Out,
    ) {
        self.observe(ballot);
        let mut records = Vec::new();
        match self.acceptor.accept(ballot, &entries, &mut records) {
            Err(promised) => {
                out.send
                    .push((self.name(from), Msg::Nack { ballot, promised }));
                return;
            }
            Ok(slots) => {
                self.step_down(ballot, out);
                self.leader_hint = Some(from);
                self.last_heard_ms = Some(self.now_ms);
                self.persist(records, out);
                out.send
                    .push((self.name(from), Msg::Accepted { ballot, slots }));
            }
        }
        // Piggybacked commit: a slot up to `commit` holding this leader's ballot holds the
        // very value the leader saw chosen.
        // Walks the slots this acceptor holds, not every number up to `commit`, which a
        // peer chooses.
        let learned: Vec<(u64, Entry)> = self
            .acceptor
            .accepted_between(self.commit() + 1, commit)
            .filter(|(s, _)| !self.learner.is_chosen(*s))
            .filter(|(_, (b, _))| *b == ballot)
            .map(|(s, (_, e))| (s, e.clone()))
            .collect();
        self.learn_all(learned, out);
        let due = self
            .last_catchup_ms
            .is_none_or(|t| self.now_ms >= t + self.timing.heartbeat_ms);
        if self.commit() < commit && due {
            self.last_catchup_ms = Some(self.now_ms);
            out.send.push((
                self.name(from),
                Msg::CatchUp {
                    from: self.commit() + 1,
                },
            ));
        }
    }

    fn on_client(&mut self, token: ReqToken, op: Op, out: &mut Out) {
        match op {
            Op::Status => {
                let role = match self.role {
                    Role::Follower => "follower",
                    Role::Candidate(_) => "candidate",
                    Role::Leader(_) => "leader",
                };
                let status = Status {
                    node: self.id.clone(),
                    role: role.into(),
                    term: self.ballot().round,
                    leader: self.leader_hint.map(|i| self.name(i)),
                    commit: self.commit(),
                };
                out.reply.push((
                    token,
                    Response::ok(0, serde_json::to_value(status).expect("serializable")),
                ));
            }
            Op::Dump => {
                let dump = self.learner.dump(&self.id);
                out.reply.push((
                    token,
                    Response::ok(0, serde_json::to_value(dump).expect("serializable")),
                ));
            }
            op => {
                let Role::Leader(l) = &self.role else {
                    let hint = self
                        .leader_hint
                        .filter(|i| *i != self.me)
                        .map(|i| self.name(i));
                    out.reply.push((token, Response::not_leader(0, hint)));
                    return;
                };
                let slot = l.next_slot;
                let origin = format!("{}:{}", token.conn, token.id);
                let entry = Entry {
                    round: l.ballot.round,
                    cmd: Some(Command {
                        op,
                        node: self.me,
                        origin: origin.clone(),
                    }),
                };
                self.pending.insert(slot, (token, origin));
                self.propose(vec![(slot, entry)], out);
            }
        }
    }
}

/// The `--opt` keys Paxos accepts, in milliseconds.
pub const OPTS: &[OptSpec] = &[
    OptSpec {
        key: "heartbeat_ms",
        kind: OptKind::Number,
    },
    OptSpec {
        key: "election_ms",
        kind: OptKind::Number,
    },
];

impl Protocol for Paxos {
    type Msg = Msg;
    type Record = Record;

    fn recover(config: CoreConfig, records: Vec<Record>) -> Self {
        let me = config.my_index();
        // The runtime checked every setting against `OPTS` before building the core.
        let opt = |k: &str, d: u64| sunder_core::opts::value(OPTS, &config, k, d);
        let timing = Timing {
            heartbeat_ms: opt("heartbeat_ms", 50),
            election_ms: opt("election_ms", 500).max(1),
        };
        let mut node = Paxos {
            id: config.id.clone(),
            members: config.members.clone(),
            me,
            bugs: Bugs::from_names(&config.bugs),
            timing,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            acceptor: Acceptor::new(config.has_bug("string-ballots")),
            learner: Learner::default(),
            role: Role::Follower,
            seen: Ballot::ZERO,
            leader_hint: None,
            now_ms: 0,
            last_heard_ms: None,
            timeout_ms: timing.election_ms,
            next_heartbeat_ms: 0,
            last_catchup_ms: None,
            pending: BTreeMap::new(),
            rejected: 0,
            announced_accept: None,
        };
        for r in &records {
            node.acceptor.restore(r);
            if let Record::Chosen { slot, entry } = r {
                node.learner.learn(*slot, entry.clone());
            }
        }
        node.learner.apply_ready();
        node.seen = node.acceptor.promised();
        node.new_timeout();
        node
    }

    fn step(&mut self, input: Input<Msg>, out: &mut Out) {
        match input {
            Input::Tick { now_ms } => self.tick(now_ms, out),
            Input::Peer { from, msg } => match self.index(&from) {
                Some(i) if i != self.me => match self.validate(i, msg) {
                    Ok(msg) => self.on_peer(i, msg, out),
                    Err(why) => self.reject(&from, why),
                },
                _ => self.reject(&from, "sender is not a peer"),
            },
            Input::Client { token, op } => self.on_client(token, op, out),
            Input::Signed { token, .. } => sunder_core::protocol::refuse_signed(token, out),
        }
    }

    fn known_bugs() -> &'static [&'static str] {
        bugs::KNOWN
    }

    fn accepted_opts() -> &'static [OptSpec] {
        OPTS
    }
}
