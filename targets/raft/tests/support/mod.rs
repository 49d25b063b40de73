//! A deterministic in-process cluster: Raft cores wired through a seeded message queue
//! with delays, drops, partitions and crashes (a crash throws the core away and rebuilds
//! it from the records it persisted). Safety is checked as it runs; the client history is
//! kept for the read and lost-write checks at the end.

use std::collections::{BTreeMap, BTreeSet};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sunder_node::{CoreConfig, Input, Output, Protocol, ReqToken};
use sunder_raft::{Command, Msg, Raft, Record};
use sunder_wire::{Op, Response};

pub const TICK_MS: u64 = 10;

pub struct Node {
    pub id: String,
    pub raft: Option<Raft>,
    pub disk: Vec<Record>,
    pub config: CoreConfig,
    pub restart_at: u64,
    checked: u64,
}

/// One client operation as the history records it.
#[derive(Debug, Clone)]
pub struct OpRec {
    pub op: Op,
    pub invoke: u64,
    /// `None` while in flight or when indeterminate (timed out, node crashed).
    pub done: Option<(u64, Response)>,
}

pub struct Client {
    current: Option<(usize, u64, usize)>, // (history index, request id, node)
    deadline: u64,
    leader_hint: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct Faults {
    pub drop: f64,
    pub max_delay: u64,
    pub partitions: bool,
    pub crashes: bool,
    /// Pauses: a node stops stepping (no ticks, messages queue up) then resumes.
    pub pauses: bool,
    /// Crashes per simulated second, and the longest a crashed node stays down (ms).
    pub crash_rate: f64,
    pub max_down: u64,
}

enum Delivery {
    Peer(usize, Msg),
    Client(ReqToken, Op),
}

pub struct Sim {
    pub rng: ChaCha8Rng,
    pub now: u64,
    pub nodes: Vec<Node>,
    net: BTreeMap<(u64, u64), (usize, Delivery)>,
    last_delivery: BTreeMap<(usize, usize), u64>,
    msg_seq: u64,
    pub blocked: BTreeSet<(usize, usize)>,
    pub paused_until: Vec<u64>,
    pub faults: Faults,
    pub clients: Vec<Client>,
    pub history: Vec<OpRec>,
    next_value: i64,
    next_req: u64,
    /// term → leader id, from every node's events.
    pub leaders: BTreeMap<u64, String>,
    /// index → (term, command) of every entry any node has reported committed.
    pub committed: BTreeMap<u64, (u64, Command)>,
    pub violations: Vec<String>,
    pub keys: Vec<String>,
    pub clients_on: bool,
}

impl Sim {
    pub fn new(seed: u64, n: usize, bugs: &[&str], faults: Faults, clients: usize) -> Sim {
        let ids: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
        let nodes = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let config = CoreConfig {
                    id: id.clone(),
                    members: ids.clone(),
                    bugs: bugs.iter().map(|b| b.to_string()).collect(),
                    opts: [("snapshot".to_string(), "40".to_string())].into(),
                    seed: seed * 100 + i as u64,
                    tick_ms: TICK_MS,
                };
                Node {
                    id: id.clone(),
                    raft: Some(Raft::recover(config.clone(), vec![])),
                    disk: vec![],
                    config,
                    restart_at: 0,
                    checked: 0,
                }
            })
            .collect();
        Sim {
            rng: ChaCha8Rng::seed_from_u64(seed),
            now: 0,
            nodes,
            net: BTreeMap::new(),
            last_delivery: BTreeMap::new(),
            msg_seq: 0,
            blocked: BTreeSet::new(),
            paused_until: vec![0; n],
            faults,
            clients: (0..clients)
                .map(|_| Client {
                    current: None,
                    deadline: 0,
                    leader_hint: 0,
                })
                .collect(),
            history: vec![],
            next_value: 1,
            next_req: 1,
            leaders: BTreeMap::new(),
            committed: BTreeMap::new(),
            violations: vec![],
            keys: vec!["a".into(), "b".into()],
            clients_on: true,
        }
    }

    fn up(&self, i: usize) -> bool {
        self.nodes[i].raft.is_some() && self.paused_until[i] <= self.now
    }

    pub fn step_node(&mut self, i: usize, input: Input<Msg>) {
        // A snapshot installed from the leader replaces entries this node never knew to be
        // committed; only its own compactions cover entries it applied.
        let installing = matches!(
            input,
            Input::Peer {
                msg: Msg::InstallSnapshot { .. },
                ..
            }
        );
        let mut out = Output::default();
        self.nodes[i]
            .raft
            .as_mut()
            .expect("node up")
            .step(input, &mut out);
        self.absorb(i, out, installing);
    }

    fn absorb(&mut self, i: usize, out: Output<Msg, Record>, installing: bool) {
        if installing && let Some(c) = out.compact {
            self.nodes[i].disk = c;
        } else if let Some(c) = out.compact {
            // Entries covered by the new snapshot vanish from the node: note them first,
            // from what the node had written (they are all committed).
            let mut old = std::mem::take(&mut self.nodes[i].disk);
            old.extend(out.persist.iter().cloned());
            let snap_index = match &c[0] {
                Record::Snapshot(s) => s.index,
                other => panic!("compaction starts with {other:?}"),
            };
            let log = sunder_raft::record::Recovered::replay(old).log;
            let covered: Vec<_> = log
                .entries()
                .iter()
                .filter(|e| e.index <= snap_index)
                .cloned()
                .collect();
            self.observe(i, covered);
            self.nodes[i].disk = c;
        }
        self.nodes[i].disk.extend(out.persist);
        for (to, msg) in out.send {
            let j = self
                .nodes
                .iter()
                .position(|n| n.id == to)
                .expect("known peer");
            if self.blocked.contains(&(i, j)) || self.rng.random_bool(self.faults.drop) {
                continue;
            }
            let delay = self.rng.random_range(1..=self.faults.max_delay);
            let at = (self.now + delay).max(*self.last_delivery.get(&(i, j)).unwrap_or(&0));
            self.last_delivery.insert((i, j), at);
            self.msg_seq += 1;
            self.net
                .insert((at, self.msg_seq), (j, Delivery::Peer(i, msg)));
        }
        for (token, resp) in out.reply {
            self.client_reply(token, resp);
        }
        for ev in out.events {
            if ev["event"] == "leader" {
                let term = ev["term"].as_u64().unwrap();
                let id = self.nodes[i].id.clone();
                if let Some(other) = self.leaders.insert(term, id.clone()) {
                    if other != id {
                        self.violations
                            .push(format!("two leaders in term {term}: {other} and {id}"));
                    }
                }
            }
        }
        // The boundary check drops only what a correct peer never sends: in a correct
        // build a rejection is a bug the old panics would have shown.
        let rejected = self.nodes[i].raft.as_ref().map_or(0, |r| r.rejected());
        if rejected > 0 && self.nodes[i].config.bugs.is_empty() {
            self.violations.push(format!(
                "{} rejected {rejected} peer messages",
                self.nodes[i].id
            ));
        }
        self.check_committed(i);
    }

    /// State machine safety: every committed entry equals what any other node committed
    /// at that index.
    fn check_committed(&mut self, i: usize) {
        let raft = self.nodes[i].raft.as_ref().unwrap();
        if raft.commit_index() <= self.nodes[i].checked {
            return;
        }
        let from = self.nodes[i].checked;
        let entries = raft
            .committed_entries()
            .into_iter()
            .filter(|e| e.index > from)
            .collect();
        self.nodes[i].checked = raft.commit_index();
        self.observe(i, entries);
    }

    fn observe(&mut self, i: usize, entries: Vec<sunder_raft::Entry>) {
        for e in entries {
            match self.committed.get(&e.index) {
                Some((t, c)) if (*t, c) != (e.term, &e.cmd) => {
                    self.violations.push(format!(
                        "index {}: {} committed term {} but another node term {t}",
                        e.index, self.nodes[i].id, e.term
                    ));
                }
                Some(_) => {}
                None => {
                    self.committed.insert(e.index, (e.term, e.cmd));
                }
            }
        }
    }

    fn client_reply(&mut self, token: ReqToken, resp: Response) {
        let c = &mut self.clients[token.conn as usize];
        let Some((h, id, node)) = c.current else {
            return;
        };
        if id != token.id {
            return; // a reply after the client gave up
        }
        if resp.error.as_deref() == Some("not-leader") {
            let hint = resp
                .leader
                .as_ref()
                .and_then(|l| self.nodes.iter().position(|n| &n.id == l));
            c.leader_hint = hint.unwrap_or_else(|| (node + 1) % self.nodes.len());
        }
        self.history[h].done = Some((self.now, resp));
        c.current = None;
    }

    fn client_ops(&mut self) {
        for c in 0..self.clients.len() {
            if let Some((_, _, _)) = self.clients[c].current {
                if self.now >= self.clients[c].deadline {
                    self.clients[c].current = None; // indeterminate
                    self.clients[c].leader_hint = self.rng.random_range(0..self.nodes.len());
                } else {
                    continue;
                }
            }
            if !self.clients_on || !self.rng.random_bool(0.2) {
                continue;
            }
            let key = self.keys[self.rng.random_range(0..self.keys.len())].clone();
            let op = match self.rng.random_range(0..10) {
                0..4 => Op::Read { key },
                4..8 => {
                    self.next_value += 1;
                    Op::Write {
                        key,
                        value: self.next_value,
                    }
                }
                _ => {
                    self.next_value += 1;
                    let from = self
                        .rng
                        .random_range(1.max(self.next_value - 6)..self.next_value);
                    Op::Cas {
                        key,
                        from,
                        to: self.next_value,
                    }
                }
            };
            let node = self.clients[c].leader_hint;
            let id = self.next_req;
            self.next_req += 1;
            self.history.push(OpRec {
                op: op.clone(),
                invoke: self.now,
                done: None,
            });
            let h = self.history.len() - 1;
            self.clients[c].current = Some((h, id, node));
            self.clients[c].deadline = self.now + 1000;
            let token = ReqToken { conn: c as u64, id };
            if self.up(node) {
                self.step_node(node, Input::Client { token, op });
            } else if self.nodes[node].raft.is_some() {
                // Paused: the request waits in the socket buffer.
                self.msg_seq += 1;
                self.net.insert(
                    (self.paused_until[node], self.msg_seq),
                    (node, Delivery::Client(token, op)),
                );
            }
        }
    }

    fn nemesis(&mut self) {
        let n = self.nodes.len();
        if self.faults.partitions && self.rng.random_bool(0.002) {
            self.blocked.clear();
            if self.rng.random_bool(0.6) {
                let mut side: Vec<bool> = (0..n).map(|_| self.rng.random_bool(0.5)).collect();
                side[self.rng.random_range(0..n)] ^= true;
                for a in 0..n {
                    for b in 0..n {
                        if side[a] != side[b] {
                            self.blocked.insert((a, b));
                        }
                    }
                }
            }
        }
        if self.faults.crashes && self.rng.random_bool(self.faults.crash_rate / 1000.0) {
            // One node, or a majority at once (they come back into a contested election).
            let count = if self.rng.random_bool(0.5) {
                1
            } else {
                n / 2 + 1
            };
            for _ in 0..count {
                let i = self.rng.random_range(0..n);
                if self.nodes[i].raft.is_some() {
                    self.nodes[i].raft = None;
                    self.nodes[i].restart_at =
                        self.now + self.rng.random_range(20..self.faults.max_down);
                }
            }
        }
        if self.faults.pauses && self.rng.random_bool(0.001) {
            let i = self.rng.random_range(0..n);
            self.paused_until[i] = self.now + self.rng.random_range(200..2000);
        }
        for i in 0..n {
            if self.nodes[i].raft.is_none() && self.now >= self.nodes[i].restart_at {
                let node = &mut self.nodes[i];
                let raft = Raft::recover(node.config.clone(), node.disk.clone());
                node.checked = raft.snapshot_index();
                node.raft = Some(raft);
            }
        }
    }

    /// Advances simulated time by `ms`, one millisecond at a time.
    pub fn run(&mut self, ms: u64, faults_on: bool) {
        let end = self.now + ms;
        while self.now < end {
            self.now += 1;
            if faults_on {
                self.nemesis();
            }
            while let Some((&(at, seq), _)) = self.net.first_key_value() {
                if at > self.now {
                    break;
                }
                let (to, d) = self.net.remove(&(at, seq)).unwrap();
                if !self.up(to) {
                    if self.nodes[to].raft.is_some() {
                        // Paused: the message waits in the socket buffer, and what waited
                        // is read in no particular order when the node resumes.
                        let key = (
                            self.paused_until[to],
                            self.rng.random_range(0..u64::MAX / 2),
                        );
                        self.net.insert(key, (to, d));
                    }
                    continue;
                }
                match d {
                    Delivery::Peer(from, msg) => {
                        let from = self.nodes[from].id.clone();
                        self.step_node(to, Input::Peer { from, msg });
                    }
                    Delivery::Client(token, op) => self.step_node(to, Input::Client { token, op }),
                }
            }
            for i in 0..self.nodes.len() {
                if self.up(i) && (self.now + i as u64) % TICK_MS == 0 {
                    self.step_node(i, Input::Tick { now_ms: self.now });
                }
            }
            self.client_ops();
        }
    }

    /// Heals everything and lets the cluster settle.
    pub fn heal(&mut self) {
        self.blocked.clear();
        for i in 0..self.nodes.len() {
            self.paused_until[i] = 0;
            self.nodes[i].restart_at = 0;
        }
        self.nemesis_restart();
        self.run(3000, false);
        self.clients_on = false;
        self.run(1500, false);
        self.clients_on = true;
    }

    fn nemesis_restart(&mut self) {
        let saved = self.faults;
        self.faults = Faults {
            partitions: false,
            crashes: false,
            pauses: false,
            ..saved
        };
        self.nemesis();
        self.faults = saved;
    }

    pub fn ok_count(&self) -> usize {
        self.history
            .iter()
            .filter(|o| o.done.as_ref().is_some_and(|(_, r)| r.ok))
            .count()
    }
}

/// Checks the client history against the committed log: every acknowledged update is in
/// it, and every read saw a state the register held at some moment inside the read.
pub fn check_history(sim: &Sim) -> Vec<String> {
    let mut problems = vec![];
    // Which op wrote each (key, value) and where the log puts it.
    let mut writer: BTreeMap<(String, i64), usize> = BTreeMap::new();
    for (h, o) in sim.history.iter().enumerate() {
        match &o.op {
            Op::Write { key, value } => writer.insert((key.clone(), *value), h),
            Op::Cas { key, to, .. } => writer.insert((key.clone(), *to), h),
            _ => None,
        };
    }
    // Replay the committed log: each key's sequence of values, by log position.
    let mut kv = sunder_raft::kv::Kv::default();
    let mut changes: BTreeMap<String, Vec<Option<i64>>> =
        sim.keys.iter().map(|k| (k.clone(), vec![None])).collect();
    let mut in_log: BTreeSet<(String, i64)> = BTreeSet::new();
    for (expect_index, (&index, (_, cmd))) in (1..).zip(&sim.committed) {
        if index != expect_index {
            problems.push(format!("committed log has a gap before {index}"));
            return problems;
        }
        let Command::Op { op, .. } = cmd else {
            continue;
        };
        if kv.apply(op).is_ok() {
            let (key, v) = match op {
                Op::Write { key, value } => (key.clone(), *value),
                Op::Cas { key, to, .. } => (key.clone(), *to),
                _ => continue,
            };
            changes.get_mut(&key).unwrap().push(Some(v));
            in_log.insert((key, v));
        }
    }
    for (h, o) in sim.history.iter().enumerate() {
        let Some((done, resp)) = &o.done else {
            continue;
        };
        if !resp.ok {
            continue;
        }
        match &o.op {
            Op::Write { key, value } | Op::Cas { key, to: value, .. }
                if !in_log.contains(&(key.clone(), *value)) =>
            {
                problems.push(format!(
                    "acknowledged op {h} {:?} is not in the committed log",
                    o.op
                ));
            }
            Op::Read { key } => {
                let v = resp.value.as_i64();
                if !resp.value.is_null() && v.is_none() {
                    problems.push(format!("read {h} returned {:?}", resp.value));
                    continue;
                }
                let seq = &changes[key];
                let Some(pos) = seq.iter().position(|x| *x == v) else {
                    problems.push(format!("read {h} of {key} saw {v:?}, never committed"));
                    continue;
                };
                if let Some(w) = v.and_then(|v| writer.get(&(key.clone(), v))) {
                    if sim.history[*w].invoke > *done {
                        problems.push(format!(
                            "read {h} saw {v:?} before its write {w} was invoked"
                        ));
                    }
                }
                // The value that replaced it must not have been acknowledged before the read began.
                if let Some(Some(next)) = seq.get(pos + 1) {
                    let w = writer[&(key.clone(), *next)];
                    if let Some((wdone, wr)) = &sim.history[w].done {
                        if wr.ok && *wdone < o.invoke {
                            problems.push(format!(
                                "stale read {h} of {key}: saw {v:?} at {}..{done} but op {w} wrote {next} by {wdone}",
                                o.invoke
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    problems
}
