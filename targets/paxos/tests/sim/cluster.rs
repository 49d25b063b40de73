use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use sunder_node::kv::{KvState, response};
use sunder_node::{CoreConfig, Input, Output, Protocol, ReqToken};
use sunder_paxos::{Entry, Msg, Paxos, Record};
use sunder_wire::{Op, Response};

/// Which faults the simulation injects, and how often.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Probability that a message is lost.
    pub drop: f64,
    pub partitions: bool,
    pub crashes: bool,
    pub pauses: bool,
    /// Most nodes down at once (crashed or paused); 0 means a minority.
    pub max_down: usize,
    /// Crashes and pauses pick the node that leads, when there is one.
    pub target_leader: bool,
    /// Milliseconds between fault decisions.
    pub interval_ms: u64,
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    pub violations: Vec<String>,
    pub ok_ops: usize,
    pub chosen: u64,
    pub leaders: usize,
}

struct ClientOp {
    node: u32,
    op: Op,
    invoke: u64,
    /// (reply, time) once answered.
    done: Option<(Response, u64)>,
}

enum Node {
    Up(Box<Paxos>),
    Down { until: u64 },
    Paused { core: Box<Paxos>, until: u64 },
}

/// The simulated cluster.
pub struct Sim {
    rng: ChaCha8Rng,
    n: usize,
    names: Vec<String>,
    bugs: Vec<String>,
    seed: u64,
    nodes: Vec<Node>,
    disk: Vec<Vec<Record>>,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), (u32, u32, Msg)>,
    /// Group per node: messages only cross within a group.
    group: Vec<u32>,
    faults: Faults,
    ops: BTreeMap<ReqToken, ClientOp>,
    next_id: u64,
    next_value: i64,
    leader_guess: u32,
    /// Slot → first value any node learned for it.
    global: BTreeMap<u64, Entry>,
    report: Report,
}

impl Sim {
    pub fn new(n: usize, seed: u64, bugs: &[&str], faults: Faults) -> Self {
        let names: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
        let bugs: Vec<String> = bugs.iter().map(|b| b.to_string()).collect();
        let mut sim = Sim {
            rng: ChaCha8Rng::seed_from_u64(seed),
            n,
            names,
            bugs,
            seed,
            nodes: Vec::new(),
            disk: vec![Vec::new(); n],
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            group: vec![0; n],
            faults,
            ops: BTreeMap::new(),
            next_id: 0,
            next_value: 0,
            leader_guess: 0,
            global: BTreeMap::new(),
            report: Report::default(),
        };
        sim.nodes = (0..n).map(|i| Node::Up(Box::new(sim.boot(i)))).collect();
        sim
    }

    fn boot(&self, i: usize) -> Paxos {
        let config = CoreConfig {
            id: self.names[i].clone(),
            members: self.names.clone(),
            bugs: self.bugs.clone(),
            opts: BTreeMap::new(),
            seed: self
                .seed
                .wrapping_mul(31)
                .wrapping_add(i as u64 * 7919 + self.now),
            tick_ms: 10,
        };
        Paxos::recover(config, self.disk[i].clone())
    }

    /// Runs for `ms` simulated milliseconds with faults, then heals everything and lets
    /// the cluster settle for `settle_ms` before checking.
    pub fn run(mut self, ms: u64, settle_ms: u64) -> Report {
        let end = ms + settle_ms;
        while self.now < end {
            self.now += 1;
            let faulty = self.now < ms;
            if faulty && self.faults.interval_ms > 0 && self.now % self.faults.interval_ms == 0 {
                self.fault();
            }
            if !faulty {
                self.heal();
            }
            self.wake();
            self.deliver();
            for i in 0..self.n {
                if (self.now + i as u64) % 10 == 0 {
                    self.input(i, Input::Tick { now_ms: self.now });
                }
            }
            if self.now % 4 == 0 && self.now + 1500 < end {
                self.client();
            }
        }
        self.check();
        self.report
    }

    fn fault(&mut self) {
        let f = self.faults;
        match self.rng.random_range(0..4u32) {
            0 if f.partitions => {
                for g in self.group.iter_mut() {
                    *g = self.rng.random_range(0..2u32);
                }
            }
            1 if f.crashes => {
                let i = self.victim();
                if matches!(self.nodes[i], Node::Up(_)) && self.down_count() < self.max_down() {
                    let until = self.now + self.rng.random_range(100..1500u64);
                    self.nodes[i] = Node::Down { until };
                }
            }
            2 if f.pauses => {
                let i = self.victim();
                let until = self.now + self.rng.random_range(100..1500u64);
                if matches!(self.nodes[i], Node::Up(_)) && self.down_count() < self.max_down() {
                    let Node::Up(core) =
                        std::mem::replace(&mut self.nodes[i], Node::Down { until: 0 })
                    else {
                        unreachable!()
                    };
                    self.nodes[i] = Node::Paused { core, until };
                }
            }
            _ => self.group.fill(0),
        }
    }

    fn max_down(&self) -> usize {
        if self.faults.max_down == 0 {
            self.n.div_ceil(2) - 1
        } else {
            self.faults.max_down
        }
    }

    fn victim(&mut self) -> usize {
        let leader = self
            .nodes
            .iter()
            .position(|n| matches!(n, Node::Up(c) if c.is_leader()));
        match leader {
            Some(l) if self.faults.target_leader && self.rng.random_bool(0.7) => l,
            _ => self.rng.random_range(0..self.n),
        }
    }

    fn down_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| !matches!(n, Node::Up(_)))
            .count()
    }

    fn heal(&mut self) {
        self.group.fill(0);
        for node in &mut self.nodes {
            match node {
                Node::Down { until } | Node::Paused { until, .. } => {
                    *until = (*until).min(self.now)
                }
                Node::Up(_) => {}
            }
        }
    }

    fn wake(&mut self) {
        for i in 0..self.n {
            match &self.nodes[i] {
                Node::Down { until } if *until <= self.now => {
                    self.nodes[i] = Node::Up(Box::new(self.boot(i)))
                }
                Node::Paused { until, .. } if *until <= self.now => {
                    let Node::Paused { core, .. } =
                        std::mem::replace(&mut self.nodes[i], Node::Down { until: 0 })
                    else {
                        unreachable!()
                    };
                    self.nodes[i] = Node::Up(core);
                }
                _ => {}
            }
        }
    }

    fn deliver(&mut self) {
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let (from, to, msg) = entry.remove();
            match &self.nodes[to as usize] {
                Node::Up(_) => self.input(
                    to as usize,
                    Input::Peer {
                        from: self.names[from as usize].clone(),
                        msg,
                    },
                ),
                // A paused process reads its socket later.
                Node::Paused { until, .. } => {
                    self.seq += 1;
                    self.queue.insert((*until + 1, self.seq), (from, to, msg));
                }
                Node::Down { .. } => {}
            }
        }
    }

    fn input(&mut self, i: usize, input: Input<Msg>) {
        let Node::Up(core) = &mut self.nodes[i] else {
            return;
        };
        let mut out = Output::default();
        core.step(input, &mut out);
        let core: &Paxos = core;
        let mut learned = Vec::new();
        for ev in &out.events {
            match ev["event"].as_str() {
                Some("chosen") => {
                    let slot = ev["slot"].as_u64().expect("slot");
                    learned.push((slot, core.chosen()[&slot].clone()));
                }
                Some("leader") => self.report.leaders += 1,
                _ => {}
            }
        }
        if core.conflicts() > 0 {
            self.report.violations.push(format!(
                "{} learned a slot twice with different values",
                self.names[i]
            ));
        }
        if let Some(c) = out.compact.take() {
            self.disk[i] = c;
        }
        self.disk[i].append(&mut out.persist);
        for (slot, entry) in learned {
            match self.global.get(&slot) {
                Some(e) if *e != entry => self.report.violations.push(format!(
                    "slot {slot}: {} learned {entry:?}, another node {e:?}",
                    self.names[i]
                )),
                Some(_) => {}
                None => {
                    self.global.insert(slot, entry);
                }
            }
        }
        for (to, msg) in out.send {
            let to = self.names.iter().position(|n| *n == to).expect("member") as u32;
            if self.group[i] != self.group[to as usize] || self.rng.random_bool(self.faults.drop) {
                continue;
            }
            let delay = self.rng.random_range(1..15u64);
            self.seq += 1;
            self.queue
                .insert((self.now + delay, self.seq), (i as u32, to, msg));
        }
        for (token, resp) in out.reply {
            if let Some(op) = self.ops.get_mut(&token)
                && op.done.is_none()
            {
                if resp.error.as_deref() == Some("not-leader") {
                    let hint = resp
                        .leader
                        .as_ref()
                        .and_then(|l| self.names.iter().position(|n| n == l));
                    self.leader_guess =
                        hint.map_or_else(|| self.rng.random_range(0..self.n as u32), |h| h as u32);
                }
                op.done = Some((resp, self.now));
            }
        }
    }

    fn client(&mut self) {
        let node = if self.rng.random_bool(0.8) {
            self.leader_guess
        } else {
            self.rng.random_range(0..self.n as u32)
        };
        let key = format!("k{}", self.rng.random_range(0..3u32));
        self.next_value += 1;
        let op = match self.rng.random_range(0..3u32) {
            0 => Op::Read { key },
            1 => Op::Write {
                key,
                value: self.next_value,
            },
            _ => Op::Cas {
                key,
                from: self.rng.random_range(0..self.next_value.max(1)),
                to: self.next_value,
            },
        };
        self.next_id += 1;
        let token = ReqToken {
            conn: 1,
            id: self.next_id,
        };
        self.ops.insert(
            token,
            ClientOp {
                node,
                op: op.clone(),
                invoke: self.now,
                done: None,
            },
        );
        self.input(node as usize, Input::Client { token, op });
    }

    /// Replays the agreed log and holds every answered operation against it.
    fn check(&mut self) {
        let mut kv = KvState::new();
        // (node index, origin) → (slot, the reply the log implies)
        let mut outcome: BTreeMap<(u32, String), (u64, Response)> = BTreeMap::new();
        let mut slot = 0;
        while let Some(e) = self.global.get(&(slot + 1)) {
            slot += 1;
            if let Some(c) = &e.cmd {
                outcome.insert(
                    (c.node, c.origin.clone()),
                    (slot, response(kv.apply(&c.op))),
                );
            }
        }
        self.report.chosen = slot;
        let mut ordered = BTreeMap::new();
        for (token, op) in &self.ops {
            let Some((resp, at)) = &op.done else { continue };
            let origin = format!("{}:{}", token.conn, token.id);
            let logged = outcome.get(&(op.node, origin));
            let indefinite = !resp.ok && !resp.definite;
            match logged {
                None if resp.ok => self.report.violations.push(format!(
                    "{op:?} acknowledged but not in the log",
                    op = op.op
                )),
                None => {}
                Some(_) if indefinite => {}
                Some((slot, expect)) => {
                    if resp.ok != expect.ok
                        || resp.value != expect.value
                        || resp.error != expect.error
                    {
                        self.report.violations.push(format!(
                            "{:?} at slot {slot}: node said {resp:?}, the log says {expect:?}",
                            op.op
                        ));
                    }
                    if resp.ok || resp.definite {
                        ordered.insert(*slot, (op.invoke, *at));
                    }
                }
            }
            if resp.ok {
                self.report.ok_ops += 1;
            }
        }
        // Real-time order: an operation that finished before another began sits in an
        // earlier slot.
        let mut max_invoke = 0;
        for (slot, (invoke, done)) in &ordered {
            if *done < max_invoke {
                self.report.violations.push(format!("slot {slot} completed at {done} before an earlier slot's operation began at {max_invoke}"));
            }
            max_invoke = max_invoke.max(*invoke);
        }
    }
}
