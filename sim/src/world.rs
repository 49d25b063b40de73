//! The simulated world: nodes (a core, its disk, its clock), the network, clients and the
//! nemesis, all driven by one seeded queue of timed events. Nothing here reads a real
//! clock or draws an unseeded number: the same seed and schedule give the same history,
//! byte for byte.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::panic::{AssertUnwindSafe, catch_unwind};

use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use sunder_checker::{Event, EventType, Process};
use sunder_core::{Byzantine, CoreConfig, Input, Output, Protocol, ReqToken};
use sunder_wire::{EventLine, NodeEvent, Op, Response};

use crate::client::{Pending, SimClient, Workload, completion_value};
use crate::config::{SimConfig, rng, stream};
use crate::fault::{self, FaultKind, FaultSpec, Schedule};

/// What a protocol adds to the common checks: an invariant over every live core, checked
/// after every step (`Some(reason)` when broken).
pub struct Hooks<P: Protocol> {
    #[allow(clippy::type_complexity)]
    pub invariant: Option<fn(&[(&str, &P)]) -> Option<String>>,
    /// A BFT client: it sends to the node it believes leads, resends to every node after
    /// `op_timeout / 5` without an answer, and takes a result only when this many nodes
    /// gave the same one (f+1). `None`: the first reply decides.
    pub replies_needed: Option<usize>,
    /// While a loss fault is in force, the network also alters messages in transit
    /// (`tamper_pct` of them): a stand-in for a forger that signatures must stop. The
    /// function changes the message and says whether it could.
    pub tamper: Option<fn(&mut P::Msg, &mut ChaCha8Rng) -> bool>,
}

/// Percent of messages altered while a loss fault is in force (targets with a tamper hook).
pub const TAMPER_PCT: u64 = 5;

impl<P: Protocol> Default for Hooks<P> {
    fn default() -> Self {
        Hooks {
            invariant: None,
            replies_needed: None,
            tamper: None,
        }
    }
}

/// The connection number of the harness's own admin requests (status, dump).
const ADMIN: u64 = u64::MAX;
/// Most violations kept per run (the first ones are the ones that matter).
const MAX_VIOLATIONS: usize = 20;

/// A node's local monotonic clock: runs at `rate_pct` of real time from an anchor, never
/// goes back (a backward bump freezes it until real time catches up).
#[derive(Debug, Clone)]
struct Clock {
    anchor_real: u64,
    anchor_local: i64,
    rate_pct: u64,
    last_ms: u64,
}

impl Clock {
    fn local_us(&self, now: u64) -> i64 {
        self.anchor_local + ((now - self.anchor_real) * self.rate_pct / 100) as i64
    }

    fn now_ms(&mut self, now: u64) -> u64 {
        let ms = (self.local_us(now).max(0) / 1000) as u64;
        self.last_ms = self.last_ms.max(ms);
        self.last_ms
    }

    fn set(&mut self, now: u64, rate_pct: u64, bump_ms: i64) {
        self.anchor_local = self.local_us(now) + bump_ms * 1000;
        self.anchor_real = now;
        self.rate_pct = rate_pct;
    }
}

struct Node<P: Protocol> {
    core: Option<P>,
    /// A core that panicked stays down: its state can no longer be trusted.
    dead: bool,
    paused: bool,
    /// What arrived while paused, read in no particular order on resume.
    inbox: Vec<Input<P::Msg>>,
    /// Everything the core persisted: all a restart gets back.
    disk: Vec<P::Record>,
    config: CoreConfig,
    clock: Clock,
    /// The event stream, with `node` and `time` added as the runtime adds them.
    events: Vec<EventLine>,
}

enum Ev<M> {
    Tick(usize),
    Deliver {
        to: usize,
        from: usize,
        msg: M,
    },
    Request {
        node: usize,
        client: usize,
        id: u64,
        op: Op,
    },
    Reply {
        client: usize,
        from: usize,
        id: u64,
        resp: Response,
    },
    Resend {
        client: usize,
        id: u64,
    },
    ClientNext(usize),
    Timeout {
        client: usize,
        id: u64,
    },
    FaultStart(usize),
    FaultStop(usize),
}

struct Item<M> {
    at: u64,
    seq: u64,
    ev: Ev<M>,
}

impl<M> PartialEq for Item<M> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl<M> Eq for Item<M> {}
impl<M> PartialOrd for Item<M> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<M> Ord for Item<M> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// A fault in force: which schedule step, and the nodes it hit.
struct InForce {
    step: usize,
    nodes: Vec<usize>,
}

/// The end state a run leaves for the checkers.
pub struct Finished {
    /// Every member, in order: the agreement checker must hear from each honest one.
    pub names: Vec<String>,
    /// The Byzantine members: the checkers leave their dumps and events out.
    pub byzantine: Vec<String>,
    pub history: Vec<Event>,
    /// Per node, its `dump` reply's value (absent when it could not answer).
    pub dumps: BTreeMap<String, Value>,
    pub events: BTreeMap<String, Vec<EventLine>>,
    pub violations: Vec<String>,
    pub warnings: Vec<String>,
    /// Simulated milliseconds, settling included.
    pub sim_ms: u64,
    pub steps: u64,
}

pub struct World<P: Protocol> {
    cfg: SimConfig,
    names: Vec<String>,
    nodes: Vec<Node<P>>,
    queue: BinaryHeap<Reverse<Item<P::Msg>>>,
    seq: u64,
    /// Simulated microseconds.
    now: u64,
    net: ChaCha8Rng,
    crng: ChaCha8Rng,
    clients: Vec<SimClient>,
    workload: Workload,
    clients_on: bool,
    next_id: u64,
    history: Vec<Event>,
    schedule: Schedule,
    grudge: Vec<BTreeSet<usize>>,
    /// (drop %, dup %, extra delay ms) while a loss fault is in force.
    loss: Option<(u64, u64, u64)>,
    in_force: BTreeMap<FaultKind, InForce>,
    /// The highest-term leader any node announced.
    leader: Option<(u64, usize)>,
    hooks: Hooks<P>,
    violations: Vec<String>,
    admin_reply: Option<Response>,
    steps: u64,
}

impl<P: Protocol> World<P>
where
    P::Msg: Clone,
    P::Record: Clone,
{
    pub fn new(cfg: &SimConfig, schedule: Schedule, hooks: Hooks<P>) -> World<P> {
        let names: Vec<String> = (1..=cfg.nodes).map(|i| format!("n{i}")).collect();
        let mut seeds = rng(cfg.seed, stream::CORES);
        let liars = cfg.byzantine_nodes();
        let nodes = names
            .iter()
            .map(|id| {
                let config = CoreConfig {
                    id: id.clone(),
                    members: names.clone(),
                    bugs: cfg.bugs.clone(),
                    opts: cfg.opts.clone(),
                    seed: seeds.random(),
                    tick_ms: cfg.tick_ms,
                    byzantine: liars.contains(id).then(|| Byzantine {
                        mode: cfg.byzantine_mode.clone(),
                        allies: liars.iter().filter(|l| *l != id).cloned().collect(),
                    }),
                };
                Node {
                    core: Some(P::recover(config.clone(), Vec::new())),
                    dead: false,
                    paused: false,
                    inbox: Vec::new(),
                    disk: Vec::new(),
                    config,
                    clock: Clock {
                        anchor_real: 0,
                        anchor_local: 0,
                        rate_pct: 100,
                        last_ms: 0,
                    },
                    events: Vec::new(),
                }
            })
            .collect();
        let clients = (0..cfg.clients)
            .map(|c| SimClient {
                process: c as u64,
                pending: None,
                hint: c % cfg.nodes,
            })
            .collect();
        World {
            names,
            nodes,
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            net: rng(cfg.seed, stream::NETWORK),
            crng: rng(cfg.seed, stream::CLIENTS),
            clients,
            workload: Workload::new(cfg.workload, cfg.keys),
            clients_on: true,
            next_id: 1,
            history: Vec::new(),
            schedule,
            grudge: vec![BTreeSet::new(); cfg.nodes],
            loss: None,
            in_force: BTreeMap::new(),
            leader: None,
            hooks,
            violations: Vec::new(),
            admin_reply: None,
            steps: 0,
            cfg: cfg.clone(),
        }
    }

    fn push(&mut self, at: u64, ev: Ev<P::Msg>) {
        self.seq += 1;
        self.queue.push(Reverse(Item {
            at,
            seq: self.seq,
            ev,
        }));
    }

    /// Runs the workload and the schedule for the configured time, heals, lets the
    /// cluster settle and converge, and collects dumps and event streams.
    pub fn run(mut self) -> Finished {
        let tick_us = self.cfg.tick_ms * 1000;
        for i in 0..self.nodes.len() {
            // Nodes tick out of phase, as separate processes do.
            self.push(tick_us * i as u64 / self.nodes.len() as u64, Ev::Tick(i));
        }
        for c in 0..self.clients.len() {
            let at = self.crng.random_range(0..10_000);
            self.push(at, Ev::ClientNext(c));
        }
        for (i, s) in self.schedule.steps.iter().enumerate() {
            let at = s.at_ms * 1000;
            self.seq += 1;
            self.queue.push(Reverse(Item {
                at,
                seq: self.seq,
                ev: Ev::FaultStart(i),
            }));
        }
        let end = self.cfg.time_ms * 1000;
        self.run_until(end);
        // The final phase, as a real run: heal everything, stop new operations, let what
        // is in flight finish, wait for the logs to converge, then dump.
        self.heal_all();
        self.clients_on = false;
        self.run_until(end + 3_000_000);
        let mut warnings = Vec::new();
        let mut converged = false;
        for _ in 0..20 {
            if self.converged() {
                converged = true;
                break;
            }
            let t = self.now + 500_000;
            self.run_until(t);
        }
        if !converged {
            warnings.push(
                "the nodes' commit indices did not converge within 10 s of healing: \
                 the dumps may miss entries"
                    .to_string(),
            );
        }
        let mut dumps = BTreeMap::new();
        for i in 0..self.nodes.len() {
            match self.admin(i, Op::Dump) {
                Some(r) if r.ok => {
                    dumps.insert(self.names[i].clone(), r.value);
                }
                other => warnings.push(format!(
                    "{}: no dump ({})",
                    self.names[i],
                    other.map_or("node down".into(), |r| format!("{:?}", r.error))
                )),
            }
        }
        let sim_ms = self.now / 1000;
        Finished {
            names: self.names.clone(),
            byzantine: self.cfg.byzantine_nodes(),
            history: self.history,
            dumps,
            events: self
                .names
                .iter()
                .cloned()
                .zip(self.nodes.iter_mut().map(|n| std::mem::take(&mut n.events)))
                .collect(),
            violations: self.violations,
            warnings,
            sim_ms,
            steps: self.steps,
        }
    }

    fn run_until(&mut self, t: u64) {
        while let Some(Reverse(item)) = self.queue.peek() {
            if item.at > t {
                break;
            }
            let Reverse(item) = self.queue.pop().expect("peeked");
            self.now = item.at;
            self.handle(item.ev);
        }
        self.now = t;
    }

    fn handle(&mut self, ev: Ev<P::Msg>) {
        match ev {
            Ev::Tick(i) => {
                if self.up(i) {
                    let now_ms = self.nodes[i].clock.now_ms(self.now);
                    self.step(i, Input::Tick { now_ms });
                }
                self.push(self.now + self.cfg.tick_ms * 1000, Ev::Tick(i));
            }
            Ev::Deliver { to, from, msg } => {
                let input = Input::Peer {
                    from: self.names[from].clone(),
                    msg,
                };
                self.input(to, input);
            }
            Ev::Request {
                node,
                client,
                id,
                op,
            } => {
                let token = ReqToken {
                    conn: client as u64,
                    id,
                };
                self.input(node, Input::Client { token, op });
            }
            Ev::Reply {
                client,
                from,
                id,
                resp,
            } => self.reply(client, from, id, resp),
            Ev::Resend { client, id } => self.resend(client, id),
            Ev::ClientNext(c) => self.client_next(c),
            Ev::Timeout { client, id } => {
                if self.clients[client]
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.id == id)
                {
                    self.complete(client, None, Some("timeout".into()));
                    self.clients[client].hint = self.crng.random_range(0..self.nodes.len());
                }
            }
            Ev::FaultStart(i) => self.fault_start(i),
            Ev::FaultStop(i) => {
                let kind = self.schedule.steps[i].spec.kind();
                if self.in_force.get(&kind).is_some_and(|f| f.step == i) {
                    self.fault_stop(kind);
                }
            }
        }
    }

    fn up(&self, i: usize) -> bool {
        self.nodes[i].core.is_some() && !self.nodes[i].paused
    }

    /// An input arriving at node `i`: lost if it is down, kept if it is paused.
    fn input(&mut self, i: usize, input: Input<P::Msg>) {
        if self.nodes[i].core.is_none() {
            return;
        }
        if self.nodes[i].paused {
            self.nodes[i].inbox.push(input);
            return;
        }
        self.step(i, input);
    }

    fn step(&mut self, i: usize, input: Input<P::Msg>) {
        let mut out = Output::default();
        let Some(core) = self.nodes[i].core.as_mut() else {
            return;
        };
        self.steps += 1;
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| core.step(input, &mut out))) {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into());
            self.violation(format!(
                "{} panicked at {} ms: {msg}",
                self.names[i],
                self.now / 1000
            ));
            self.nodes[i].core = None;
            self.nodes[i].dead = true;
            return;
        }
        self.absorb(i, out);
        if let Some(inv) = self.hooks.invariant {
            let live: Vec<(&str, &P)> = self
                .nodes
                .iter()
                .zip(&self.names)
                .filter(|(n, _)| n.config.byzantine.is_none())
                .filter_map(|(n, name)| n.core.as_ref().map(|c| (name.as_str(), c)))
                .collect();
            if let Some(v) = inv(&live) {
                let v = format!(
                    "after a step of {} at {} ms: {v}",
                    self.names[i],
                    self.now / 1000
                );
                self.violation(v);
            }
        }
    }

    fn violation(&mut self, v: String) {
        if self.violations.len() < MAX_VIOLATIONS && !self.violations.contains(&v) {
            self.violations.push(v);
        }
    }

    /// Carries out one output in the runtime's order: disk, peers, clients, events.
    fn absorb(&mut self, i: usize, out: Output<P::Msg, P::Record>) {
        let node = &mut self.nodes[i];
        if let Some(c) = out.compact {
            node.disk = c;
        }
        node.disk.extend(out.persist);
        for (to, msg) in out.send {
            let Some(j) = self.names.iter().position(|n| *n == to) else {
                self.violation(format!("{} sent to unknown node {to:?}", self.names[i]));
                continue;
            };
            self.send(i, j, msg);
        }
        for (token, resp) in out.reply {
            if token.conn == ADMIN {
                self.admin_reply = Some(resp);
            } else if (token.conn as usize) < self.clients.len() {
                let at = self.now + self.net.random_range(50..1000);
                self.push(
                    at,
                    Ev::Reply {
                        client: token.conn as usize,
                        from: i,
                        id: token.id,
                        resp,
                    },
                );
            }
        }
        for event in out.events {
            if let NodeEvent::Leader { term } = event
                && self.leader.is_none_or(|(t, _)| term >= t)
            {
                self.leader = Some((term, i));
            }
            // Stamped as the runtime stamps a real node's, in simulated milliseconds.
            self.nodes[i].events.push(EventLine {
                node: self.names[i].clone(),
                time_ms: Some(self.now / 1000),
                event,
            });
        }
    }

    fn send(&mut self, from: usize, to: usize, msg: P::Msg) {
        if self.grudge[to].contains(&from) {
            return;
        }
        let mut msg = msg;
        if let (Some(tamper), Some(_)) = (self.hooks.tamper, self.loss)
            && self.net.random_range(0..100) < TAMPER_PCT
        {
            tamper(&mut msg, &mut self.net);
        }
        let mut delay = self.net.random_range(100..3000);
        if let Some((drop, dup, extra)) = self.loss {
            if self.net.random_range(0..100) < drop {
                return;
            }
            delay += self.net.random_range(0..=extra * 1000);
            if self.net.random_range(0..100) < dup {
                let later = delay + self.net.random_range(0..=extra * 1000);
                self.push(
                    self.now + later,
                    Ev::Deliver {
                        to,
                        from,
                        msg: msg.clone(),
                    },
                );
            }
        }
        self.push(self.now + delay, Ev::Deliver { to, from, msg });
    }

    /// A request the harness makes directly (status, dump): no network, no history.
    fn admin(&mut self, i: usize, op: Op) -> Option<Response> {
        if !self.up(i) {
            return None;
        }
        self.admin_reply = None;
        self.step(
            i,
            Input::Client {
                token: ReqToken { conn: ADMIN, id: 0 },
                op,
            },
        );
        self.admin_reply.take()
    }

    /// Every node up and reporting the same commit index.
    fn converged(&mut self) -> bool {
        let mut commits = BTreeSet::new();
        for i in 0..self.nodes.len() {
            match self.admin(i, Op::Status) {
                Some(r) if r.ok => {
                    commits.insert(r.value["commit"].as_u64().unwrap_or(0));
                }
                _ => return false,
            }
        }
        commits.len() == 1
    }

    // ---- clients ----

    fn record(
        &mut self,
        c: usize,
        kind: EventType,
        op: &Op,
        value: Value,
        error: Option<String>,
        node: usize,
    ) {
        self.history.push(Event {
            index: self.history.len() as u64,
            time: self.now * 1000,
            kind,
            process: Process::Client(self.clients[c].process),
            f: op.name().to_string(),
            key: op.key().map(str::to_string),
            value,
            error,
            node: Some(self.names[node].clone()),
            committed: None,
        });
    }

    fn client_next(&mut self, c: usize) {
        if !self.clients_on || self.clients[c].pending.is_some() {
            return;
        }
        let op = self.workload.next(&mut self.crng);
        let n = self.nodes.len();
        let node = if self.crng.random_bool(0.8) {
            self.clients[c].hint
        } else {
            self.crng.random_range(0..n)
        };
        self.record(c, EventType::Invoke, &op, op.invoke_value(), None, node);
        // A BFT client holds a connection to every node: one node down does not end the
        // operation (its resend goes to the others).
        if self.nodes[node].core.is_none() && self.hooks.replies_needed.is_none() {
            // Connection refused: the request never left, a definite failure.
            self.record(
                c,
                EventType::Fail,
                &op,
                op.invoke_value(),
                Some("connection-refused".into()),
                node,
            );
            self.clients[c].hint = self.crng.random_range(0..n);
            let at = self.now + self.crng.random_range(1000..10_000);
            self.push(at, Ev::ClientNext(c));
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.clients[c].pending = Some(Pending {
            id,
            node,
            op: op.clone(),
            replies: BTreeMap::new(),
        });
        if self.hooks.replies_needed.is_some() {
            let at = self.now + self.cfg.op_timeout_ms * 1000 / 5;
            self.push(at, Ev::Resend { client: c, id });
        }
        let at = self.now + self.net.random_range(50..1000);
        self.push(
            at,
            Ev::Request {
                node,
                client: c,
                id,
                op,
            },
        );
        self.push(
            self.now + self.cfg.op_timeout_ms * 1000,
            Ev::Timeout { client: c, id },
        );
    }

    /// A BFT client's resend: the request goes to every node.
    fn resend(&mut self, c: usize, id: u64) {
        let Some(p) = &self.clients[c].pending else {
            return;
        };
        if p.id != id {
            return;
        }
        let op = p.op.clone();
        for node in 0..self.nodes.len() {
            let at = self.now + self.net.random_range(50..1000);
            self.push(
                at,
                Ev::Request {
                    node,
                    client: c,
                    id,
                    op: op.clone(),
                },
            );
        }
    }

    fn reply(&mut self, c: usize, from: usize, id: u64, resp: Response) {
        let Some(p) = &mut self.clients[c].pending else {
            return;
        };
        if p.id != id {
            return; // the client gave up on it already
        }
        if let Some(needed) = self.hooks.replies_needed {
            // Same outcome from `needed` distinct nodes, or keep waiting (the node's view of
            // who leads is not part of the outcome).
            let key = |r: &Response| (r.ok, r.value.clone(), r.error.clone(), r.definite);
            p.replies.insert(from, resp.clone());
            let same = p.replies.values().filter(|r| key(r) == key(&resp)).count();
            if same < needed {
                return;
            }
            if let Some(l) = resp
                .leader
                .as_ref()
                .and_then(|l| self.names.iter().position(|n| n == l))
            {
                self.clients[c].hint = l;
            }
            let error = resp.error.clone();
            return self.complete(c, Some(resp), error);
        }
        if resp.error.as_deref() == Some(sunder_wire::errors::NOT_LEADER) {
            let hint = resp
                .leader
                .as_ref()
                .and_then(|l| self.names.iter().position(|n| n == l));
            self.clients[c].hint =
                hint.unwrap_or_else(|| self.crng.random_range(0..self.nodes.len()));
        }
        let error = resp.error.clone();
        self.complete(c, Some(resp), error);
    }

    /// Ends client `c`'s operation: `ok`, `fail` (definite error) or `info` (no reply or
    /// an indefinite error, after which the client takes a fresh process number).
    fn complete(&mut self, c: usize, resp: Option<Response>, error: Option<String>) {
        let p = self.clients[c]
            .pending
            .take()
            .expect("an operation in flight");
        let (kind, value) = match &resp {
            Some(r) if r.ok => (EventType::Ok, completion_value(&p.op, r)),
            Some(r) if r.definite => (EventType::Fail, p.op.invoke_value()),
            _ => (EventType::Info, p.op.invoke_value()),
        };
        if let (EventType::Ok, Some(k)) = (kind, p.op.key())
            && matches!(p.op, Op::Read { .. })
        {
            self.workload.saw(k, &value);
        }
        // Where the node says an acknowledged update was committed, for the agreement
        // checker's compacted-prefix rule (as the real client records it).
        let committed = resp
            .as_ref()
            .filter(|r| r.ok)
            .and_then(|r| r.committed)
            .map(|p| sunder_checker::history::Committed {
                index: p.index,
                term: p.term,
            });
        self.record(
            c,
            kind,
            &p.op,
            value,
            if kind == EventType::Ok { None } else { error },
            p.node,
        );
        if let Some(e) = self.history.last_mut() {
            e.committed = committed;
        }
        if kind == EventType::Info {
            self.clients[c].process += self.cfg.clients as u64;
        }
        // Think time: keeps the history a size the checker handles in milliseconds.
        let at = self.now + self.crng.random_range(0..20_000);
        self.push(at, Ev::ClientNext(c));
    }

    // ---- nemesis ----

    fn nemesis(&mut self, f: &str, value: Value) {
        self.history.push(Event {
            index: self.history.len() as u64,
            time: self.now * 1000,
            kind: EventType::Info,
            process: Process::Nemesis,
            f: f.to_string(),
            key: None,
            value,
            error: None,
            node: None,
            committed: None,
        });
    }

    fn leader_now(&self) -> Option<usize> {
        self.leader.map(|(_, i)| i).filter(|&i| self.up(i))
    }

    fn names_of(&self, nodes: &[usize]) -> Value {
        json!(
            nodes
                .iter()
                .map(|&i| self.names[i].as_str())
                .collect::<Vec<_>>()
        )
    }

    fn fault_start(&mut self, i: usize) {
        let step = self.schedule.steps[i];
        let kind = step.spec.kind();
        if self.in_force.contains_key(&kind) {
            self.fault_stop(kind); // one fault per kind at a time, as the real nemesis
        }
        let n = self.nodes.len();
        let leader = self.leader_now();
        let (nodes, value) = match step.spec {
            FaultSpec::Partition { shape } => {
                self.grudge = fault::grudge(shape, n, leader, step.seed);
                (Vec::new(), fault::grudge_value(&self.grudge, &self.names))
            }
            FaultSpec::Kill { target } => {
                let nodes = fault::select(target, n, leader, step.seed);
                for &k in &nodes {
                    self.crash(k);
                }
                (nodes.clone(), self.names_of(&nodes))
            }
            FaultSpec::Pause { target } => {
                let nodes = fault::select(target, n, leader, step.seed);
                for &k in &nodes {
                    self.nodes[k].paused = true;
                }
                (nodes.clone(), self.names_of(&nodes))
            }
            FaultSpec::Clock {
                target,
                rate_pct,
                bump_ms,
            } => {
                let nodes = fault::select(target, n, leader, step.seed);
                for &k in &nodes {
                    let now = self.now;
                    self.nodes[k].clock.set(now, rate_pct, bump_ms);
                }
                let v = json!({"nodes": self.names_of(&nodes), "rate_pct": rate_pct, "bump_ms": bump_ms});
                (nodes, v)
            }
            FaultSpec::Loss {
                drop_pct,
                dup_pct,
                delay_ms,
            } => {
                self.loss = Some((drop_pct, dup_pct, delay_ms));
                (
                    Vec::new(),
                    json!({"drop_pct": drop_pct, "dup_pct": dup_pct, "delay_ms": delay_ms}),
                )
            }
        };
        self.nemesis(step.spec.start_f(), value);
        self.in_force.insert(kind, InForce { step: i, nodes });
        self.push(self.now + step.for_ms * 1000, Ev::FaultStop(i));
    }

    fn fault_stop(&mut self, kind: FaultKind) {
        let Some(f) = self.in_force.remove(&kind) else {
            return;
        };
        let value = match kind {
            FaultKind::Partition => {
                self.grudge = vec![BTreeSet::new(); self.nodes.len()];
                Value::Null
            }
            FaultKind::Kill => {
                for &k in &f.nodes {
                    self.restart(k);
                }
                self.names_of(&f.nodes)
            }
            FaultKind::Pause => {
                for &k in &f.nodes {
                    self.resume(k);
                }
                self.names_of(&f.nodes)
            }
            FaultKind::Clock => {
                for &k in &f.nodes {
                    let now = self.now;
                    self.nodes[k].clock.set(now, 100, 0);
                }
                self.names_of(&f.nodes)
            }
            FaultKind::Loss => {
                self.loss = None;
                Value::Null
            }
        };
        self.nemesis(kind.stop_f(), value);
    }

    fn heal_all(&mut self) {
        // Pauses, then kills, then the rest, as the real controller undoes them.
        for kind in [
            FaultKind::Pause,
            FaultKind::Kill,
            FaultKind::Clock,
            FaultKind::Loss,
            FaultKind::Partition,
        ] {
            self.fault_stop(kind);
        }
    }

    /// SIGKILL: the core and everything it had not persisted are gone; clients connected
    /// to it see the connection drop (indeterminate).
    fn crash(&mut self, k: usize) {
        self.nodes[k].core = None;
        self.nodes[k].paused = false;
        self.nodes[k].inbox.clear();
        for c in 0..self.clients.len() {
            if self.hooks.replies_needed.is_none()
                && self.clients[c]
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.node == k)
            {
                self.complete(c, None, Some("connection-lost".into()));
            }
        }
    }

    /// A restart rebuilds the core from exactly what it persisted.
    fn restart(&mut self, k: usize) {
        let node = &mut self.nodes[k];
        if node.core.is_some() || node.dead {
            return;
        }
        let core = P::recover(node.config.clone(), node.disk.clone());
        // Announced as a real node's runtime announces it, for the same check.
        if let Some((term, vote)) = core.recovered_vote() {
            node.events.push(EventLine {
                node: self.names[k].clone(),
                time_ms: Some(self.now / 1000),
                event: NodeEvent::Recovered { term, vote },
            });
        }
        node.core = Some(core);
    }

    fn resume(&mut self, k: usize) {
        if !self.nodes[k].paused {
            return;
        }
        self.nodes[k].paused = false;
        let mut inbox = std::mem::take(&mut self.nodes[k].inbox);
        inbox.shuffle(&mut self.net);
        for input in inbox {
            self.step(k, input);
        }
    }
}
