//! `Pbft`: one replica, behind the `Protocol` trait.

use crate::bugs::{self, Bugs};
use crate::byzantine::{self, Liar};
use crate::clientsig::Prechecked;
use crate::crypto::{Keys, chain, digest_of};
use crate::keyfile::ClientKeys;
use crate::msg::{Body, CommitCert, Digest, PreparedCert, Req, Signed, Snapshot};
use crate::record::Record;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use sunder_core::{
    CoreConfig, Input, KvState, NodeId, OptKind, OptSpec, Output, Protocol, ReqToken, kv,
};
use sunder_wire::bft::{ReplyBatch, batch_reply_bytes, merkle, reply_bytes, reply_leaf, to_hex};
use sunder_wire::{
    ClientSig, Dump, DumpEntry, LogPosition, NodeEvent, Op, ReplySig, Response, Status, errors,
};

pub(crate) type Out = Output<Signed, Record>;

/// Most requests in one pre-prepare.
pub const MAX_BATCH: usize = 64;
/// Most commit certificates in one `Certs` answer.
const MAX_CERTS: usize = 16;
/// Prepares and commits are kept for views at most this far ahead of this replica's.
const VIEW_AHEAD: u64 = 64;
/// Longest a view-change timer grows to, as a multiple of its base.
const MAX_BACKOFF: u64 = 64;

/// Settings, from `--opt`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// Checkpoint interval K; the sequence window above the stable checkpoint is 2K.
    pub checkpoint: u64,
    pub batch: bool,
    /// Base view-change timeout (doubles for each view that fails to start).
    pub view_change_ms: u64,
    pub status_ms: u64,
}

/// The messages of one sequence number above the stable checkpoint.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slot {
    /// The pre-prepare taken for the latest view that assigned this number.
    pub pre_prepare: Option<Signed>,
    /// Keyed by (view, sender); only the first per key counts.
    pub prepares: BTreeMap<(u64, u32), Signed>,
    pub commits: BTreeMap<(u64, u32), Signed>,
    /// The highest-view prepared certificate (what a view change carries).
    pub prepared: Option<PreparedCert>,
    /// Committed (2f+1 matching commits): the batch waiting to execute.
    pub committed: Option<(Digest, Vec<Req>)>,
}

/// An executed batch, kept in memory for `dump` and the simulator's agreement invariant.
#[derive(Debug, Clone)]
pub struct Executed {
    pub view: u64,
    pub digest: Digest,
    pub chain: Digest,
    pub batch: Vec<Req>,
}

/// One PBFT replica.
#[derive(Debug)]
pub struct Pbft {
    pub(crate) id: NodeId,
    pub(crate) members: Vec<NodeId>,
    pub(crate) me: u32,
    pub(crate) bugs: Bugs,
    pub(crate) timing: Timing,
    keys: Keys,
    /// The clients' public keys: requests must be signed, replies are. `None` is the
    /// simulator's unsigned mode, where a client is its connection number and a request's
    /// timestamp its id.
    pub(crate) clients: Option<ClientKeys>,
    /// Verdicts on the client signatures of the burst of inputs being stepped.
    pub(crate) prechecked: Prechecked,
    pub(crate) view: u64,
    /// False between sending a view change and accepting the new view.
    pub(crate) active: bool,
    new_view: Option<Signed>,
    pub(crate) slots: BTreeMap<u64, Slot>,
    /// The stable checkpoint (low-water mark), its state and proof.
    pub(crate) low: u64,
    stable: Option<(Snapshot, Vec<Signed>)>,
    /// Own checkpoints not yet stable.
    snapshots: BTreeMap<u64, Snapshot>,
    checkpoints: BTreeMap<u64, BTreeMap<u32, Signed>>,
    pub(crate) executed: u64,
    kv: KvState,
    /// Last reply per client: (timestamp, response).
    replies: BTreeMap<u64, (u64, Response)>,
    chain: Digest,
    /// The chain where `history` starts (after a restart or a state transfer).
    base_chain: Digest,
    history: BTreeMap<u64, Executed>,
    /// The primary's requests not yet assigned, and every request it has assigned or queued.
    queue: VecDeque<Req>,
    queued: BTreeSet<(u64, u64)>,
    next_seq: u64,
    /// Clients waiting on this replica: client → (timestamp, token).
    waiting: BTreeMap<u64, (u64, ReqToken)>,
    /// Requests received directly and not yet executed (a backup's view-change timer).
    pub(crate) pending: BTreeMap<(u64, u64), Req>,
    /// Pending requests a backup has not relayed to the primary yet, with when they came:
    /// once one has waited a quarter of the view-change timeout and no pre-prepare carried
    /// it, the backup relays it. (A client that sends to every replica reaches the primary
    /// itself; relayed at the next tick, every request still queued at the primary then
    /// went to it again from each backup, a signature to make and one to check each:
    /// waiting raised batched throughput from about 2,550 to 3,000 operations a second.)
    unforwarded: BTreeMap<(u64, u64), u64>,
    timer_from: Option<u64>,
    backoff: u64,
    vc_deadline: u64,
    view_changes: BTreeMap<u64, BTreeMap<u32, Signed>>,
    now_ms: u64,
    next_status_ms: u64,
    last_fetch_ms: Option<u64>,
    /// When this replica last executed a batch.
    last_exec_ms: u64,
    replaying: bool,
    rejected: u64,
    bad_signatures: u64,
    /// Client requests dropped for a bad or missing client signature.
    bad_client_signatures: u64,
    /// Set on a replica the run made Byzantine: what it does to its messages.
    liar: Option<Liar>,
}

/// The `--opt` keys PBFT accepts.
pub const OPTS: &[OptSpec] = &[
    OptSpec {
        key: "checkpoint",
        kind: OptKind::Number,
    },
    OptSpec {
        key: "batch",
        kind: OptKind::OnOff,
    },
    OptSpec {
        key: "view_change_ms",
        kind: OptKind::Number,
    },
    OptSpec {
        key: "status_ms",
        kind: OptKind::Number,
    },
    OptSpec {
        key: "key_seed",
        kind: OptKind::Number,
    },
];

impl Pbft {
    // ---- arithmetic of the cluster ----

    pub(crate) fn n(&self) -> usize {
        self.members.len()
    }

    /// f = ⌊(n-1)/3⌋.
    pub fn faults(&self) -> usize {
        (self.n() - 1) / 3
    }

    /// 2f+1 for n = 3f+1; in general ⌈(n+f+1)/2⌉, so that two quorums share f+1 replicas.
    pub(crate) fn quorum(&self) -> usize {
        if self.bugs.quorum_2f {
            return (2 * self.faults()).max(1);
        }
        (self.n() + self.faults() + 2) / 2
    }

    pub(crate) fn window(&self) -> u64 {
        2 * self.timing.checkpoint
    }

    pub(crate) fn primary_of(&self, view: u64) -> u32 {
        (view % self.n() as u64) as u32
    }

    fn is_primary(&self) -> bool {
        self.primary_of(self.view) == self.me
    }

    pub(crate) fn sig_ok(&self, s: &Signed) -> bool {
        self.bugs.skip_sig_check || self.keys.verify(s)
    }

    // ---- what tests and the simulator read ----

    /// Peer messages dropped at the boundary (malformed or out of range).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Peer messages dropped for a bad signature or a sender that is not who sent them.
    pub fn bad_signatures(&self) -> u64 {
        self.bad_signatures
    }

    /// Client requests (direct, relayed or in a batch) dropped for a bad client signature.
    pub fn bad_client_signatures(&self) -> u64 {
        self.bad_client_signatures
    }

    /// Whether a request carries a valid signature of the client it names (always, in the
    /// unsigned mode; never checked with the planted bug `skip-sig-check`).
    fn req_ok(&self, r: &Req) -> bool {
        if self.pending.get(&(r.client, r.ts)) == Some(r) {
            return true; // checked when it came from the client, byte for byte the same
        }
        match (&self.clients, &r.sig) {
            (None, _) => true,
            _ if self.bugs.skip_sig_check => true,
            (Some(c), Some(sig)) => self.client_sig_ok(c, r.client, r.ts, &r.op, sig),
            (Some(_), None) => false,
        }
    }

    /// Whether this replica has queued or executed the request of this client and
    /// timestamp (whatever its operation: a second one is never ordered).
    fn holds(&self, r: &Req) -> bool {
        self.queued.contains(&(r.client, r.ts))
            || self
                .replies
                .get(&r.client)
                .is_some_and(|(ts, _)| *ts >= r.ts)
    }

    fn bad_client(&mut self, why: &str) {
        self.bad_client_signatures += 1;
        if self.bad_client_signatures.is_power_of_two() {
            tracing::warn!(
                n = self.bad_client_signatures,
                "client request dropped: {why}"
            );
        }
    }

    /// The reply to `client`'s request `ts`, signed by this replica when clients sign.
    fn signed_reply(&self, client: u64, ts: u64, mut resp: Response) -> Response {
        if self.clients.is_some() {
            let bytes = reply_bytes(&self.id, self.view, client, ts, &resp);
            resp.signed = Some(Box::new(ReplySig {
                replica: self.id.clone(),
                view: self.view,
                client,
                ts,
                sig: to_hex(&self.keys.sign_bytes(&bytes)),
                batch: None,
            }));
        }
        resp
    }

    /// Sends replies taken by [`Pbft::due`], each with the primary of the view as leader
    /// hint. With signed clients and more than one reply, one signature covers them all:
    /// over the root of a Merkle tree of the replies, each reply carrying its path.
    fn send_replies(&self, due: Vec<(ReqToken, u64, u64, Response)>, out: &mut Out) {
        let leader = self.members[self.primary_of(self.view) as usize].clone();
        let batch = if self.clients.is_some() && due.len() > 1 {
            let leaves: Vec<[u8; 32]> = due
                .iter()
                .map(|(_, c, ts, r)| reply_leaf(&reply_bytes(&self.id, self.view, *c, *ts, r)))
                .collect();
            merkle(&leaves)
        } else {
            None
        };
        let Some((root, paths)) = batch else {
            for (token, client, ts, resp) in due {
                let mut resp = self.signed_reply(client, ts, resp);
                resp.leader = Some(leader.clone());
                out.reply.push((token, resp));
            }
            return;
        };
        let count = paths.len() as u32;
        let bytes = batch_reply_bytes(&self.id, self.view, count, &root);
        let sig = to_hex(&self.keys.sign_bytes(&bytes));
        for (index, ((token, client, ts, mut resp), path)) in due.into_iter().zip(paths).enumerate()
        {
            resp.signed = Some(Box::new(ReplySig {
                replica: self.id.clone(),
                view: self.view,
                client,
                ts,
                sig: sig.clone(),
                batch: Some(ReplyBatch {
                    index: index as u32,
                    count,
                    path: path.iter().map(|h| to_hex(h)).collect(),
                }),
            }));
            resp.leader = Some(leader.clone());
            out.reply.push((token, resp));
        }
    }

    pub fn view(&self) -> u64 {
        self.view
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The highest sequence number executed.
    pub fn executed(&self) -> u64 {
        self.executed
    }

    /// The stable checkpoint.
    pub fn stable(&self) -> u64 {
        self.low
    }

    /// Executed batches this process knows (from its start or last state transfer).
    pub fn history(&self) -> &BTreeMap<u64, Executed> {
        &self.history
    }

    /// The hash chain through `executed()`.
    pub fn chain(&self) -> Digest {
        self.chain
    }

    pub fn state(&self) -> &KvState {
        &self.kv
    }

    // ---- sending ----

    fn send_to(&self, to: u32, s: Signed, out: &mut Out) {
        if !self.replaying && to != self.me {
            out.send.push((self.members[to as usize].clone(), s));
        }
    }

    fn broadcast(&self, s: &Signed, out: &mut Out) {
        for i in 0..self.n() as u32 {
            self.send_to(i, s.clone(), out);
        }
    }

    fn persist(&self, r: Record, out: &mut Out) {
        if !self.replaying {
            out.persist.push(r);
        }
    }

    /// Signs a protocol message, takes it into this replica's own state (durably) and
    /// sends it to every peer.
    fn emit(&mut self, body: Body, out: &mut Out) {
        let s = self.keys.sign(body);
        if self.take(s.clone(), out) {
            self.persist(Record::Msg(s.clone()), out);
        }
        self.broadcast(&s, out);
    }

    fn reject(&mut self, from: &str, why: &str) {
        self.rejected += 1;
        if self.rejected.is_power_of_two() {
            tracing::warn!(%from, rejected = self.rejected, "peer message dropped: {why}");
        }
    }

    // ---- input ----

    fn on_peer(&mut self, from: &str, s: Signed, out: &mut Out) {
        let Some(i) = self.members.iter().position(|m| m == from) else {
            return self.reject(from, "sender is not a member");
        };
        // A new-view message may come from any peer that holds it (an answer to
        // FETCH-NEW-VIEW): its signer is the view's primary, not the peer that carries it,
        // and new_view_ok() checks that signer.
        let relayed = matches!(s.body, Body::NewView { .. })
            && s.from != self.me
            && (s.from as usize) < self.n();
        if i as u32 == self.me || (s.from != i as u32 && !relayed) || !self.sig_ok(&s) {
            self.bad_signatures += 1;
            if self.bad_signatures.is_power_of_two() {
                tracing::warn!(%from, n = self.bad_signatures, "bad signature or forged sender");
            }
            return;
        }
        // A new view this replica is already in (or past) changes nothing: ignored once its
        // own signature is checked (above), before the many nested ones, since every peer
        // ahead relays it.
        if let Body::NewView { view, .. } = s.body
            && (view < self.view || (view == self.view && self.active))
        {
            return;
        }
        if let Err(why) = self.validate(&s) {
            return self.reject(from, why);
        }
        // A request a client did not sign is never acted on, whoever relays or orders it.
        // (Batches inside certificates and new views were prepared by a quorum, of which
        // at least one honest replica checked them here.)
        let unsigned = match &s.body {
            // One the primary already holds or executed is dropped by on_forward unread.
            Body::Forward { req } => !self.holds(req) && !self.req_ok(req),
            Body::PrePrepare { batch, .. } => !batch.iter().all(|r| self.req_ok(r)),
            _ => false,
        };
        if unsigned {
            return self.bad_client("bad client signature in a relayed request or batch");
        }
        let from = s.from;
        match s.body.clone() {
            Body::Forward { req } => self.on_forward(req, out),
            Body::Status {
                view,
                active,
                stable,
                executed,
            } => self.on_status(from, view, active, stable, executed, out),
            Body::Fetch { from: first } => self.on_fetch(from, first, out),
            Body::Certs { certs } => {
                for c in certs {
                    self.on_cert(c, out);
                }
            }
            Body::FetchState { seq } => {
                if let Some((snapshot, proof)) = &self.stable
                    && self.low >= seq
                {
                    let body = Body::State {
                        snapshot: snapshot.clone(),
                        proof: proof.clone(),
                    };
                    self.send_to(from, self.keys.sign(body), out);
                }
            }
            Body::State { snapshot, proof } => self.on_state(snapshot, proof, out),
            Body::FetchNewView { view } => {
                if let Some(nv) = &self.new_view
                    && self.view >= view
                {
                    self.send_to(from, nv.clone(), out);
                }
            }
            Body::ViewChange { view, .. } if !self.view_change_ok(&s, view) => self.reject(
                &self.members[from as usize].clone(),
                "view change proves nothing",
            ),
            Body::NewView { .. } if !self.new_view_ok(&s) => self.reject(
                &self.members[from as usize].clone(),
                "new view does not check",
            ),
            _ => {
                if self.take(s.clone(), out) {
                    self.persist(Record::Msg(s), out);
                }
            }
        }
    }

    /// Takes a verified protocol message (pre-prepare, prepare, commit, checkpoint, view
    /// change, new view) into the state. True when it changed something worth keeping.
    fn take(&mut self, s: Signed, out: &mut Out) -> bool {
        match s.body.clone() {
            Body::PrePrepare {
                view, seq, digest, ..
            } => {
                if !self.active || view != self.view || s.from != self.primary_of(view) {
                    return false;
                }
                if !self.in_window(seq) {
                    return false;
                }
                let slot = self.slots.entry(seq).or_default();
                if let Some(pp) = &slot.pre_prepare
                    && pp_view(pp) >= view
                {
                    return false; // one pre-prepare per (view, seq): the first counts
                }
                slot.pre_prepare = Some(s.clone());
                if let Body::PrePrepare { batch, .. } = &s.body {
                    for r in batch {
                        self.unforwarded.remove(&(r.client, r.ts));
                    }
                }
                if s.from == self.me {
                    self.next_seq = self.next_seq.max(seq + 1);
                }
                if self.bugs.early_reply {
                    self.early_replies(&s, out);
                }
                if s.from != self.me {
                    self.emit(Body::Prepare { view, seq, digest }, out);
                }
                self.progress(seq, out);
                true
            }
            Body::Prepare { view, seq, .. } | Body::Commit { view, seq, .. } => {
                if view < self.view || view > self.view + VIEW_AHEAD || !self.in_window(seq) {
                    return false;
                }
                let slot = self.slots.entry(seq).or_default();
                let map = if matches!(s.body, Body::Prepare { .. }) {
                    &mut slot.prepares
                } else {
                    &mut slot.commits
                };
                if map.contains_key(&(view, s.from)) {
                    return false;
                }
                map.insert((view, s.from), s);
                self.progress(seq, out);
                true
            }
            Body::Checkpoint { seq, .. } => {
                // Beyond the window a replica learns it is behind from status messages.
                if !self.in_window(seq) {
                    return false;
                }
                let by = self.checkpoints.entry(seq).or_default();
                if by.contains_key(&s.from) {
                    return false;
                }
                by.insert(s.from, s);
                self.check_stable(seq, out);
                true
            }
            Body::ViewChange { view, .. } => self.on_view_change(s, view, out),
            Body::NewView { .. } => self.on_new_view(s, out),
            _ => false,
        }
    }

    fn in_window(&self, seq: u64) -> bool {
        seq > self.low && seq <= self.low + self.window()
    }

    // ---- normal case ----

    /// Moves a slot forward: prepared → send commit; committed → execute in order.
    fn progress(&mut self, seq: u64, out: &mut Out) {
        let q = self.quorum();
        let me = self.me;
        let Some(slot) = self.slots.get_mut(&seq) else {
            return;
        };
        let Some(pp) = slot.pre_prepare.clone() else {
            return;
        };
        let Body::PrePrepare {
            view,
            digest,
            batch,
            ..
        } = &pp.body
        else {
            return;
        };
        let (view, digest) = (*view, *digest);
        let prepares: Vec<Signed> = slot
            .prepares
            .range((view, 0)..=(view, u32::MAX))
            .filter(|(_, p)| p.from != pp.from && body_digest(&p.body) == Some(digest))
            .map(|(_, p)| p.clone())
            .collect();
        let prepared = prepares.len() + 1 >= q;
        let mut send_commit = false;
        if prepared {
            if slot
                .prepared
                .as_ref()
                .is_none_or(|c| pp_view(&c.pre_prepare) < view)
            {
                slot.prepared = Some(PreparedCert {
                    pre_prepare: pp.clone(),
                    prepares: prepares.into_iter().take(q - 1).collect(),
                });
            }
            send_commit = !slot.commits.contains_key(&(view, me));
        }
        let commits = slot
            .commits
            .range((view, 0)..=(view, u32::MAX))
            .filter(|(_, c)| body_digest(&c.body) == Some(digest))
            .count();
        if prepared && commits >= q && slot.committed.is_none() {
            slot.committed = Some((digest, batch.clone()));
        }
        if send_commit && self.active && view == self.view {
            self.emit(Body::Commit { view, seq, digest }, out);
        }
        self.execute_ready(out);
    }

    fn execute_ready(&mut self, out: &mut Out) {
        loop {
            let next = self.executed + 1;
            let Some((digest, batch)) = self.slots.get(&next).and_then(|s| s.committed.clone())
            else {
                return;
            };
            let view = self
                .slots
                .get(&next)
                .and_then(|s| s.pre_prepare.as_ref())
                .map_or(self.view, pp_view);
            self.execute(next, view, digest, batch, out);
            // The primary batches while a batch is in flight; once none is, what queued
            // up meanwhile goes out at once rather than at the next tick.
            if self.timing.batch && self.nothing_in_flight() && !self.queue.is_empty() {
                self.flush(out);
            }
        }
    }

    fn execute(&mut self, seq: u64, view: u64, digest: Digest, batch: Vec<Req>, out: &mut Out) {
        let mut due = Vec::new();
        for (pos, r) in batch.iter().enumerate() {
            let fresh = self.replies.get(&r.client).is_none_or(|(ts, _)| r.ts > *ts);
            if fresh {
                let mut resp = kv::response(self.kv.apply(&r.op));
                if resp.ok && r.op.is_update() {
                    resp.committed = Some(LogPosition {
                        index: dump_index(seq, pos, batch.len()),
                        term: 0,
                    });
                }
                self.replies.insert(r.client, (r.ts, resp));
            }
            self.queued.remove(&(r.client, r.ts));
            let before = self.pending.len();
            self.pending
                .retain(|(c, ts), _| *c != r.client || *ts > r.ts);
            if self.pending.len() != before {
                // Progress: restart the timer for what is still pending, at the base length.
                self.timer_from = (!self.pending.is_empty()).then_some(self.now_ms);
                self.backoff = 1;
            }
            due.extend(self.due(r.client, r.ts));
        }
        if !self.replaying {
            self.send_replies(due, out);
        }
        self.chain = chain(&self.chain, &digest);
        self.executed = seq;
        self.last_exec_ms = self.now_ms;
        self.history.insert(
            seq,
            Executed {
                view,
                digest,
                chain: self.chain,
                batch,
            },
        );
        if !self.replaying {
            out.events.push(NodeEvent::Execute {
                seq,
                view,
                digest: Some(hex(&digest)),
            });
        }
        if seq % self.timing.checkpoint == 0 {
            let snap = self.snapshot();
            let d = digest_of(&snap);
            self.snapshots.insert(seq, snap);
            self.emit(Body::Checkpoint { seq, digest: d }, out);
        }
    }

    /// Replies to a client waiting here for `(client, ts)` from the reply cache.
    fn answer(&mut self, client: u64, ts: u64, out: &mut Out) {
        if let Some(due) = self.due(client, ts)
            && !self.replaying
        {
            self.send_replies(vec![due], out);
        }
    }

    /// The client waiting here for `(client, ts)`, if its reply is cached: no longer
    /// waiting, its token and the reply (unsigned) to send.
    fn due(&mut self, client: u64, ts: u64) -> Option<(ReqToken, u64, u64, Response)> {
        let (wts, token) = self.waiting.get(&client).copied()?;
        let (rts, resp) = self.replies.get(&client)?;
        if wts != ts || *rts != ts {
            return None;
        }
        let resp = resp.clone();
        self.waiting.remove(&client);
        Some((token, client, ts, resp))
    }

    /// Planted bug `early-reply`: answer at pre-prepare time from a scratch copy of the state.
    fn early_replies(&mut self, pp: &Signed, out: &mut Out) {
        let Body::PrePrepare { batch, .. } = &pp.body else {
            return;
        };
        let mut scratch = self.kv.clone();
        for r in batch {
            if let Some((ts, token)) = self.waiting.get(&r.client).copied()
                && ts == r.ts
            {
                self.waiting.remove(&r.client);
                if !self.replaying {
                    let resp = kv::response(scratch.apply(&r.op));
                    out.reply
                        .push((token, self.signed_reply(r.client, r.ts, resp)));
                }
            }
        }
    }

    fn on_client(&mut self, token: ReqToken, op: Op, out: &mut Out) {
        match op {
            Op::Status => {
                let role = if !self.active {
                    "view-change"
                } else if self.is_primary() {
                    "primary"
                } else {
                    "backup"
                };
                let status = Status {
                    node: self.id.clone(),
                    role: role.into(),
                    term: self.view,
                    leader: self
                        .active
                        .then(|| self.members[self.primary_of(self.view) as usize].clone()),
                    commit: self.executed,
                };
                let mut v = serde_json::to_value(status).expect("serializable");
                v["stable"] = json!(self.low);
                v["rejected"] = json!(self.rejected);
                v["bad_signatures"] = json!(self.bad_signatures);
                v["bad_client_signatures"] = json!(self.bad_client_signatures);
                v["signed_clients"] = json!(self.clients.is_some());
                if let Some(l) = &self.liar {
                    v["byzantine_lies"] = json!(l.lies);
                }
                out.reply.push((token, Response::ok(0, v)));
            }
            Op::Dump => out.reply.push((token, Response::ok(0, self.dump()))),
            op if self.clients.is_some() => {
                // Clients sign here: an unsigned data request could be anyone's.
                let mut resp = Response::error(0, errors::BAD_REQUEST, true);
                resp.value = json!(format!("{} needs a client signature", op.name()));
                out.reply.push((token, resp));
            }
            op => {
                // The unsigned mode (the simulator): a client is its connection number
                // and its request id the timestamp.
                let req = Req {
                    client: token.conn,
                    ts: token.id,
                    op,
                    sig: None,
                };
                self.on_request(token, req, out);
            }
        }
    }

    /// A request a client signed: verified, then ordered like any other.
    fn on_signed(&mut self, token: ReqToken, op: Op, auth: ClientSig, out: &mut Out) {
        let Some(clients) = &self.clients else {
            return sunder_core::protocol::refuse_signed(token, out);
        };
        if !op.is_data() {
            // status and dump are the harness's, and unsigned.
            return sunder_core::protocol::refuse_signed(token, out);
        }
        if !self.bugs.skip_sig_check
            && !self.client_sig_ok(clients, auth.client, auth.ts, &op, &auth.sig)
        {
            return self.bad_client("bad client signature");
        }
        let req = Req {
            client: auth.client,
            ts: auth.ts,
            op,
            sig: Some(auth.sig),
        };
        self.on_request(token, req, out);
    }

    fn on_request(&mut self, token: ReqToken, req: Req, out: &mut Out) {
        match self.replies.get(&req.client) {
            Some((ts, _)) if *ts > req.ts => return, // older than what executed
            Some((ts, _)) if *ts == req.ts => {
                self.waiting.insert(req.client, (req.ts, token));
                return self.answer(req.client, req.ts, out);
            }
            _ => {}
        }
        self.waiting.insert(req.client, (req.ts, token));
        if self.active && self.is_primary() {
            self.enqueue(req, out);
        } else {
            if self.pending.is_empty() {
                self.timer_from = Some(self.now_ms);
            }
            // Held since it first came: a client's retransmission does not postpone it.
            self.unforwarded
                .entry((req.client, req.ts))
                .or_insert(self.now_ms);
            self.pending.insert((req.client, req.ts), req);
        }
    }

    /// A backup relays to the primary the requests it has held for a quarter of the
    /// view-change timeout that no pre-prepare carried since they arrived.
    fn relay_unordered(&mut self, out: &mut Out) {
        let to = self.primary_of(self.view);
        let wait = self.timing.view_change_ms / 4;
        let waited: Vec<(u64, u64)> = self
            .unforwarded
            .iter()
            .filter(|(_, at)| at.saturating_add(wait) <= self.now_ms)
            .map(|(k, _)| *k)
            .collect();
        for key in waited {
            self.unforwarded.remove(&key);
            if let Some(req) = self.pending.get(&key).cloned() {
                let s = self.keys.sign(Body::Forward { req });
                self.send_to(to, s, out);
            }
        }
    }

    fn on_forward(&mut self, req: Req, out: &mut Out) {
        // (Its client signature was checked in on_peer.)
        if self.active && self.is_primary() {
            self.enqueue(req, out);
        }
    }

    fn enqueue(&mut self, req: Req, out: &mut Out) {
        let done = self
            .replies
            .get(&req.client)
            .is_some_and(|(ts, _)| *ts >= req.ts);
        if done || !self.queued.insert((req.client, req.ts)) {
            return;
        }
        self.queue.push_back(req);
        // Nothing in flight: send at once; otherwise batch until it executes (or the next tick).
        if !self.timing.batch || self.nothing_in_flight() {
            self.flush(out);
        }
    }

    /// Whether every number this primary assigned has executed here. (Batching keeps one
    /// batch in flight: measured, two or four in flight made smaller batches and less
    /// throughput.)
    fn nothing_in_flight(&self) -> bool {
        self.next_seq <= self.executed + 1
    }

    /// The primary assigns sequence numbers to queued requests, within the window.
    fn flush(&mut self, out: &mut Out) {
        let per = if self.timing.batch { MAX_BATCH } else { 1 };
        while !self.queue.is_empty() && self.active && self.is_primary() {
            let mut seq = self.next_seq.max(self.executed + 1).max(self.low + 1);
            // Never a second pre-prepare for a number this view already assigned.
            while self
                .slots
                .get(&seq)
                .and_then(|s| s.pre_prepare.as_ref())
                .is_some_and(|pp| pp_view(pp) >= self.view)
            {
                seq += 1;
            }
            if !self.in_window(seq) {
                return;
            }
            let n = self.queue.len().min(per);
            let batch: Vec<Req> = self.queue.drain(..n).collect();
            let digest = digest_of(&batch);
            self.next_seq = seq + 1;
            self.emit(
                Body::PrePrepare {
                    view: self.view,
                    seq,
                    digest,
                    batch,
                },
                out,
            );
        }
    }

    // ---- checkpoints and catch-up ----

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            seq: self.executed,
            kv: self.kv.to_json(),
            replies: self
                .replies
                .iter()
                .map(|(c, (ts, r))| (*c, *ts, r.clone()))
                .collect(),
            chain: self.chain,
        }
    }

    fn check_stable(&mut self, seq: u64, out: &mut Out) {
        let q = self.quorum();
        let Some(by) = self.checkpoints.get(&seq) else {
            return;
        };
        let mut counts: BTreeMap<Digest, Vec<Signed>> = BTreeMap::new();
        for s in by.values() {
            if let Body::Checkpoint { digest, .. } = &s.body {
                counts.entry(*digest).or_default().push(s.clone());
            }
        }
        let Some((digest, proof)) = counts.into_iter().find(|(_, v)| v.len() >= q) else {
            return;
        };
        let proof: Vec<Signed> = proof.into_iter().take(q).collect();
        match self.snapshots.get(&seq) {
            Some(snap) if digest_of(snap) == digest => {
                let snap = snap.clone();
                self.make_stable(snap, proof, out);
            }
            Some(_) => tracing::error!(
                seq,
                "a quorum's checkpoint differs from this replica's state"
            ),
            None if self.executed < seq => {
                // Behind a proven checkpoint: fetch the state from those who proved it.
                let ask = self.keys.sign(Body::FetchState { seq });
                for s in &proof {
                    self.send_to(s.from, ask.clone(), out);
                }
            }
            None => {}
        }
    }

    /// A proven checkpoint at or below what this replica executed: discard the log
    /// below it and compact the durable state to its image.
    fn make_stable(&mut self, snap: Snapshot, proof: Vec<Signed>, out: &mut Out) {
        let seq = snap.seq;
        if seq <= self.low {
            return;
        }
        self.low = seq;
        self.stable = Some((snap, proof));
        self.slots = self.slots.split_off(&(seq + 1));
        self.checkpoints = self.checkpoints.split_off(&(seq + 1));
        self.snapshots = self.snapshots.split_off(&(seq + 1));
        if !self.replaying {
            out.events.push(NodeEvent::Stable { seq });
            out.compact = Some(self.image());
            out.persist.clear(); // the image holds everything persisted so far
        }
        self.flush(out);
    }

    /// Everything durable, compacted.
    fn image(&self) -> Vec<Record> {
        let mut r = Vec::new();
        if let Some((snapshot, proof)) = &self.stable {
            r.push(Record::Stable {
                snapshot: snapshot.clone(),
                proof: proof.clone(),
            });
        }
        r.push(Record::View {
            view: self.view,
            active: self.active,
            new_view: self.new_view.clone(),
        });
        for (seq, s) in &self.slots {
            r.push(Record::Slot {
                seq: *seq,
                pre_prepare: s.pre_prepare.clone(),
                prepares: s.prepares.values().cloned().collect(),
                commits: s.commits.values().cloned().collect(),
                prepared: s.prepared.clone(),
                committed: s.committed.clone(),
            });
        }
        for by in self.checkpoints.values() {
            r.extend(by.values().cloned().map(Record::Msg));
        }
        if let Some(vcs) = self.view_changes.get(&self.view) {
            r.extend(vcs.values().cloned().map(Record::Msg));
        }
        r
    }

    fn install(&mut self, snapshot: Snapshot, proof: Vec<Signed>, out: &mut Out) {
        let seq = snapshot.seq;
        let mut kv = KvState::new();
        if let Value::Object(m) = &snapshot.kv {
            for (k, v) in m {
                match v {
                    Value::Array(items) => {
                        for x in items.iter().filter_map(Value::as_i64) {
                            let _ = kv.apply(&Op::Add {
                                key: k.clone(),
                                value: x,
                            });
                        }
                    }
                    v => {
                        if let Some(x) = v.as_i64() {
                            kv.put(k, x);
                        }
                    }
                }
            }
        }
        self.kv = kv;
        self.replies = snapshot
            .replies
            .iter()
            .map(|(c, ts, r)| (*c, (*ts, r.clone())))
            .collect();
        self.chain = snapshot.chain;
        self.base_chain = snapshot.chain;
        self.executed = seq;
        self.history.clear();
        self.low = self.low.min(seq.saturating_sub(1));
        self.snapshots.insert(seq, snapshot.clone());
        self.make_stable(snapshot, proof, out);
        if !self.replaying {
            out.events.push(NodeEvent::StateTransfer { seq });
        }
        // Answer anyone waiting on a request the transferred state already executed.
        let waiting: Vec<(u64, u64)> = self.waiting.iter().map(|(c, (ts, _))| (*c, *ts)).collect();
        for (c, ts) in waiting {
            self.answer(c, ts, out);
        }
        self.execute_ready(out);
    }

    fn on_state(&mut self, snapshot: Snapshot, proof: Vec<Signed>, out: &mut Out) {
        if snapshot.seq <= self.executed {
            return;
        }
        let Some(Some(d)) = self.checkpoint_proof(snapshot.seq, &proof) else {
            return;
        };
        if digest_of(&snapshot) != d {
            return;
        }
        self.persist(
            Record::State {
                snapshot: snapshot.clone(),
                proof: proof.clone(),
            },
            out,
        );
        self.install(snapshot, proof, out);
    }

    fn on_status(
        &mut self,
        from: u32,
        view: u64,
        active: bool,
        stable: u64,
        executed: u64,
        out: &mut Out,
    ) {
        if view > self.view || (view == self.view && active && !self.active) {
            let ask = self.keys.sign(Body::FetchNewView { view });
            self.send_to(from, ask, out);
        }
        let due = self
            .last_fetch_ms
            .is_none_or(|t| self.now_ms >= t + self.timing.status_ms);
        // Only a replica that stopped executing asks: one a batch or two behind because
        // commits are in flight would fetch (and verify) certificates it is about to earn.
        let stalled = self.now_ms >= self.last_exec_ms + self.timing.status_ms;
        if executed > self.executed && due && stalled {
            self.last_fetch_ms = Some(self.now_ms);
            let body = if stable > self.executed {
                Body::FetchState { seq: stable }
            } else {
                Body::Fetch {
                    from: self.executed + 1,
                }
            };
            let ask = self.keys.sign(body);
            self.send_to(from, ask, out);
        }
    }

    fn on_fetch(&mut self, to: u32, first: u64, out: &mut Out) {
        if first <= self.low {
            if let Some((snapshot, proof)) = &self.stable {
                let body = Body::State {
                    snapshot: snapshot.clone(),
                    proof: proof.clone(),
                };
                self.send_to(to, self.keys.sign(body), out);
            }
            return;
        }
        // A peer may ask beyond what this replica executed (a replayed or a lying fetch):
        // nothing to send.
        if first > self.executed {
            return;
        }
        let q = self.quorum();
        let mut certs = Vec::new();
        for (_, slot) in self.slots.range(first..=self.executed) {
            let Some(pp) = &slot.pre_prepare else { break };
            let (view, digest) = (pp_view(pp), body_digest(&pp.body));
            let commits: Vec<Signed> = slot
                .commits
                .range((view, 0)..=(view, u32::MAX))
                .filter(|(_, c)| body_digest(&c.body) == digest)
                .map(|(_, c)| c.clone())
                .take(q)
                .collect();
            if commits.len() < q {
                break;
            }
            certs.push(CommitCert {
                pre_prepare: pp.clone(),
                commits,
            });
            if certs.len() == MAX_CERTS {
                break;
            }
        }
        if !certs.is_empty() {
            let s = self.keys.sign(Body::Certs { certs });
            self.send_to(to, s, out);
        }
    }

    /// A commit certificate (checked here): the slot is committed.
    fn on_cert(&mut self, c: CommitCert, out: &mut Out) {
        let Body::PrePrepare {
            view,
            seq,
            digest,
            batch,
        } = &c.pre_prepare.body
        else {
            return;
        };
        if *seq <= self.executed || !self.in_window(*seq) {
            return;
        }
        let ok_pp = c.pre_prepare.from == self.primary_of(*view)
            && digest_of(batch) == *digest
            && self.sig_ok(&c.pre_prepare);
        let mut from = BTreeSet::new();
        let ok_commits = c.commits.iter().all(|s| {
            matches!(&s.body, Body::Commit { view: v, seq: q, digest: d }
                if v == view && q == seq && d == digest)
                && self.sig_ok(s)
                && from.insert(s.from)
        });
        if !ok_pp || !ok_commits || from.len() < self.quorum() {
            return;
        }
        self.persist(Record::Cert(c.clone()), out);
        self.take_cert(c, out);
    }

    fn take_cert(&mut self, c: CommitCert, out: &mut Out) {
        let Body::PrePrepare {
            seq, digest, batch, ..
        } = &c.pre_prepare.body
        else {
            return;
        };
        let seq = *seq;
        let slot = self.slots.entry(seq).or_default();
        if slot.committed.is_none() {
            slot.committed = Some((*digest, batch.clone()));
        }
        if slot
            .pre_prepare
            .as_ref()
            .is_none_or(|p| pp_view(p) <= pp_view(&c.pre_prepare))
        {
            slot.pre_prepare = Some(c.pre_prepare.clone());
        }
        for s in c.commits {
            if let Body::Commit { view, .. } = s.body {
                slot.commits.entry((view, s.from)).or_insert(s);
            }
        }
        self.execute_ready(out);
    }

    // ---- view change ----

    fn start_view_change(&mut self, view: u64, out: &mut Out) {
        if view <= self.view {
            return;
        }
        tracing::info!(view, "starting a view change");
        self.view = view;
        self.active = false;
        self.backoff = (self.backoff * 2).clamp(1, MAX_BACKOFF);
        self.vc_deadline = self.now_ms + self.timing.view_change_ms * self.backoff;
        self.queue.clear();
        self.queued.clear();
        if !self.replaying {
            out.events.push(NodeEvent::ViewChange { view });
        }
        let (stable, proof) = match &self.stable {
            Some((s, p)) => (s.seq, p.clone()),
            None => (0, Vec::new()),
        };
        let prepared = self
            .slots
            .range(stable + 1..)
            .filter_map(|(_, s)| s.prepared.clone())
            .collect();
        self.emit(
            Body::ViewChange {
                view,
                stable,
                proof,
                prepared,
            },
            out,
        );
    }

    fn on_view_change(&mut self, s: Signed, view: u64, out: &mut Out) -> bool {
        if view < self.view || (view == self.view && self.active) {
            return false;
        }
        // One view change per sender above the current view (its highest): what a
        // replica can make this one hold stays bounded.
        let from = s.from;
        let newer = self
            .view_changes
            .range(self.view + 1..)
            .any(|(v, by)| *v >= view && by.contains_key(&from));
        if newer && view > self.view {
            return false;
        }
        for (v, by) in self.view_changes.range_mut(self.view + 1..) {
            if *v < view {
                by.remove(&from);
            }
        }
        let by = self.view_changes.entry(view).or_default();
        if by.contains_key(&from) {
            return false;
        }
        by.insert(from, s);
        // f+1 replicas want a higher view: at least one honest one does, so join the
        // lowest such view rather than wait for a timer.
        let mut ahead: BTreeMap<u32, u64> = BTreeMap::new();
        for (v, by) in self.view_changes.range(self.view + 1..) {
            for r in by.keys() {
                ahead.entry(*r).or_insert(*v);
            }
        }
        if ahead.len() > self.faults()
            && let Some(v) = ahead.values().min().copied()
        {
            self.start_view_change(v, out);
        }
        self.maybe_new_view(out);
        true
    }

    /// The new primary, with a quorum of view changes for its view, starts it.
    fn maybe_new_view(&mut self, out: &mut Out) {
        if self.active || self.primary_of(self.view) != self.me {
            return;
        }
        let Some(by) = self.view_changes.get(&self.view) else {
            return;
        };
        if by.len() < self.quorum() || !by.contains_key(&self.me) {
            return;
        }
        let vcs: Vec<Signed> = by.values().take(self.quorum()).cloned().collect();
        let (_, o) = self.reissue(&vcs);
        let view = self.view;
        let pre_prepares = o
            .into_iter()
            .map(|(seq, digest, batch)| {
                self.keys.sign(Body::PrePrepare {
                    view,
                    seq,
                    digest,
                    batch,
                })
            })
            .collect();
        self.emit(
            Body::NewView {
                view,
                view_changes: vcs,
                pre_prepares,
            },
            out,
        );
    }

    /// A checked new view: enter it and take its pre-prepares.
    fn on_new_view(&mut self, nv: Signed, out: &mut Out) -> bool {
        let Body::NewView {
            view,
            view_changes,
            pre_prepares,
        } = nv.body.clone()
        else {
            return false;
        };
        if view < self.view || (view == self.view && self.active) {
            return false;
        }
        self.view = view;
        self.active = true;
        self.new_view = Some(nv);
        self.view_changes = self.view_changes.split_off(&view);
        self.timer_from = (!self.pending.is_empty()).then_some(self.now_ms);
        if !self.replaying {
            out.events.push(NodeEvent::NewView { view });
            if self.is_primary() {
                out.events.push(NodeEvent::Leader { term: view });
            }
        }
        // The checkpoint the new view starts from.
        let (min_s, _) = self.reissue(&view_changes);
        if min_s > self.low {
            let proof = view_changes.iter().find_map(|vc| match &vc.body {
                Body::ViewChange { stable, proof, .. } if *stable == min_s => Some(proof.clone()),
                _ => None,
            });
            if let Some(proof) = proof {
                match self.snapshots.get(&min_s) {
                    Some(snap) => {
                        let snap = snap.clone();
                        self.make_stable(snap, proof, out);
                    }
                    None if self.executed < min_s => {
                        let ask = self.keys.sign(Body::FetchState { seq: min_s });
                        for s in &proof {
                            self.send_to(s.from, ask.clone(), out);
                        }
                    }
                    None => {}
                }
            }
        }
        let mut max_seq = min_s;
        for pp in pre_prepares {
            if let Body::PrePrepare { seq, .. } = pp.body {
                max_seq = max_seq.max(seq);
            }
            self.take(pp, out);
        }
        self.next_seq = max_seq + 1;
        // Requests this replica still waits on go to the new primary.
        self.unforwarded.clear();
        let pending: Vec<Req> = self.pending.values().cloned().collect();
        for req in pending {
            if self.is_primary() {
                // Queued for the next tick: this runs before the new-view message itself
                // leaves, and a pre-prepare must not overtake it.
                let done = self
                    .replies
                    .get(&req.client)
                    .is_some_and(|(ts, _)| *ts >= req.ts);
                if !done && self.queued.insert((req.client, req.ts)) {
                    self.queue.push_back(req);
                }
            } else {
                let s = self.keys.sign(Body::Forward { req });
                self.send_to(self.primary_of(view), s, out);
            }
        }
        true
    }

    // ---- time ----

    fn tick(&mut self, now_ms: u64, out: &mut Out) {
        self.now_ms = now_ms;
        if self.active {
            if self.is_primary() {
                self.flush(out);
            } else if let Some(t) = self.timer_from
                && !self.pending.is_empty()
                && now_ms >= t + self.timing.view_change_ms * self.backoff
            {
                self.start_view_change(self.view + 1, out);
            } else {
                self.relay_unordered(out);
            }
        } else if now_ms >= self.vc_deadline {
            self.start_view_change(self.view + 1, out);
        }
        if now_ms >= self.next_status_ms {
            self.next_status_ms = now_ms + self.timing.status_ms;
            let s = self.keys.sign(Body::Status {
                view: self.view,
                active: self.active,
                stable: self.low,
                executed: self.executed,
            });
            self.broadcast(&s, out);
        }
    }

    // ---- admin ----

    fn dump(&self) -> Value {
        // One entry per request: index seq·1000 + position, so that the agreement checker
        // compares requests; the view is left out (a batch re-issued in a later view is
        // the same entry). A null request (an empty batch) is one no-op entry, so that a
        // replica that executed nothing at a sequence number where another executed
        // requests is seen to differ.
        let entries = self
            .history
            .iter()
            .flat_map(|(seq, e)| {
                let noop = e.batch.is_empty().then(|| DumpEntry {
                    index: dump_index(*seq, 0, 1),
                    term: 0,
                    command: Value::Null,
                    origin: None,
                    digest: Some(hex(&e.chain)),
                });
                e.batch
                    .iter()
                    .enumerate()
                    .map(move |(i, r)| DumpEntry {
                        index: dump_index(*seq, i, e.batch.len()),
                        term: 0,
                        command: serde_json::to_value(&r.op).expect("serializable"),
                        origin: Some(format!("{}:{}", r.client, r.ts)),
                        digest: Some(hex(&e.chain)),
                    })
                    .chain(noop)
            })
            .collect();
        // What this process did not execute itself (before a restart or a state transfer)
        // is a snapshot: positions through it, all "term" 0, and the hash chain there.
        let first = self
            .history
            .keys()
            .next()
            .copied()
            .unwrap_or(self.executed + 1);
        let covered = first - 1;
        let dump = Dump {
            node: self.id.clone(),
            snapshot_index: if covered > 0 { covered * 1000 + 999 } else { 0 },
            entries,
            state: self.kv.to_json(),
            snapshot_digest: (covered > 0).then(|| hex(&self.base_chain)),
            snapshot_terms: if covered > 0 {
                vec![(1, 0)]
            } else {
                Vec::new()
            },
        };
        serde_json::to_value(dump).expect("serializable")
    }

    fn restore(&mut self, r: Record, out: &mut Out) {
        match r {
            Record::Msg(s) => {
                self.take(s, out);
            }
            Record::Cert(c) => self.take_cert(c, out),
            Record::State { snapshot, proof } | Record::Stable { snapshot, proof } => {
                self.install(snapshot, proof, out)
            }
            Record::View {
                view,
                active,
                new_view,
            } => {
                self.view = view;
                self.active = active;
                self.new_view = new_view;
            }
            Record::Slot {
                seq,
                pre_prepare,
                prepares,
                commits,
                prepared,
                committed,
            } => {
                let slot = self.slots.entry(seq).or_default();
                slot.pre_prepare = pre_prepare;
                slot.prepared = prepared;
                slot.committed = committed;
                for s in prepares {
                    if let Body::Prepare { view, .. } = s.body {
                        slot.prepares.insert((view, s.from), s);
                    }
                }
                for s in commits {
                    if let Body::Commit { view, .. } = s.body {
                        slot.commits.insert((view, s.from), s);
                    }
                }
                self.progress(seq, out);
            }
        }
    }

    /// Builds a replica with a given key set and, for signed clients, their public keys
    /// (what the node runtime hands it from the controller's key files; the simulator
    /// passes `None`: the unsigned mode).
    pub fn with_keys(
        config: CoreConfig,
        keys: Keys,
        clients: Option<ClientKeys>,
        records: Vec<Record>,
    ) -> Pbft {
        let me = config.my_index();
        let opt = |k: &str, d: u64| sunder_core::opts::value(OPTS, &config, k, d);
        let timing = Timing {
            checkpoint: opt("checkpoint", 64).clamp(1, 1 << 20),
            batch: opt("batch", 1) == 1,
            view_change_ms: opt("view_change_ms", 300).max(1),
            status_ms: opt("status_ms", 100).max(1),
        };
        let mut p = Pbft {
            id: config.id.clone(),
            members: config.members.clone(),
            me,
            bugs: Bugs::from_names(&config.bugs),
            timing,
            keys,
            clients,
            prechecked: Prechecked::default(),
            view: 0,
            active: true,
            new_view: None,
            slots: BTreeMap::new(),
            low: 0,
            stable: None,
            snapshots: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
            executed: 0,
            kv: KvState::new(),
            replies: BTreeMap::new(),
            chain: [0; 32],
            base_chain: [0; 32],
            history: BTreeMap::new(),
            queue: VecDeque::new(),
            queued: BTreeSet::new(),
            next_seq: 1,
            waiting: BTreeMap::new(),
            pending: BTreeMap::new(),
            unforwarded: BTreeMap::new(),
            timer_from: None,
            backoff: 1,
            vc_deadline: 0,
            view_changes: BTreeMap::new(),
            now_ms: 0,
            next_status_ms: 0,
            last_fetch_ms: None,
            last_exec_ms: 0,
            replaying: true,
            rejected: 0,
            bad_signatures: 0,
            bad_client_signatures: 0,
            liar: config
                .byzantine
                .as_ref()
                .map(|b| Liar::new(b, me, &config.members, config.seed).expect("a known mode")),
        };
        let mut scratch = Out::default();
        for r in records {
            p.restore(r, &mut scratch);
        }
        p.replaying = false;
        if !p.active {
            p.vc_deadline = p.timing.view_change_ms;
        }
        p
    }
}

/// A request's position in `dump` and in an acknowledgement, so that the agreement checker
/// compares requests: sequence number · 1000 + 999 for the last request of the batch,
/// counting down before it. The last one of each batch shares its index with a snapshot
/// taken through that sequence number (`seq·1000 + 999`), so that two replicas' hash
/// chains meet at a common index.
fn dump_index(seq: u64, pos: usize, len: usize) -> u64 {
    seq * 1000 + 999 - (len - 1 - pos) as u64
}

fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The view of a pre-prepare.
pub(crate) fn pp_view(s: &Signed) -> u64 {
    match &s.body {
        Body::PrePrepare { view, .. } => *view,
        _ => 0,
    }
}

fn body_digest(b: &Body) -> Option<Digest> {
    match b {
        Body::PrePrepare { digest, .. }
        | Body::Prepare { digest, .. }
        | Body::Commit { digest, .. } => Some(*digest),
        _ => None,
    }
}

impl Protocol for Pbft {
    type Msg = Signed;
    type Record = Record;

    fn recover(config: CoreConfig, records: Vec<Record>) -> Self {
        let me = config.my_index();
        let key_seed = sunder_core::opts::value(OPTS, &config, "key_seed", 0);
        let keys = Keys::derived(me, config.members.len(), key_seed);
        Pbft::with_keys(config, keys, None, records)
    }

    fn prepare(&mut self, inputs: &[Input<Signed>]) {
        self.precheck(inputs);
    }

    fn step(&mut self, input: Input<Signed>, out: &mut Out) {
        if let (Some(l), Input::Peer { msg, .. }) = (&mut self.liar, &input) {
            l.heard(msg);
        }
        match input {
            Input::Tick { now_ms } => self.tick(now_ms, out),
            Input::Peer { from, msg } => self.on_peer(&from, msg, out),
            Input::Client { token, op } => self.on_client(token, op, out),
            Input::Signed { token, op, auth } => self.on_signed(token, op, auth, out),
        }
        if let Some(l) = &mut self.liar {
            l.distort(&self.keys, out);
        }
    }

    fn known_bugs() -> &'static [&'static str] {
        bugs::KNOWN
    }

    fn byzantine_modes() -> &'static [&'static str] {
        byzantine::MODES
    }

    fn accepted_opts() -> &'static [OptSpec] {
        OPTS
    }
}
