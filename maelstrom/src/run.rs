//! One run: start the nodes, route every message, drive the clients, follow the fault
//! schedule, heal, take the final reads, stop the nodes, check the history.
//!
//! ```text
//!   client tasks c1..cK ─┐                       ┌─► node stdin writer ─► nK process
//!   node stdout readers ─┼─► input ─► router ────┼─► client inboxes
//!   (restarted by the    │   (bounded)  │ Network └─► services (reply re-enters the router)
//!    nemesis task)       │              │ (seeded: latency, loss, dup, cut links)
//!   nemesis task ────────┘ cuts ────────┘
//! ```
//!
//! The router is the one place every message passes, so it counts them, applies every
//! network fault and records each one's fate in `messages.jsonl` (through
//! [`MessageLog`], which never makes it wait); the recorder is the one place events get
//! their index and time. Both take their times from one origin, the run's start.

use crate::checkers::{self, CheckResult};
use crate::config::{Config, Workload};
pub use crate::counts::MessageCounts;
use crate::message::Message;
use crate::messages::{LogSummary, MessageFate, MessageLog, MessageRecord};
use crate::nemesis::{self, Fault, Planned};
use crate::network::{Fate, Network, is_client, is_node};
use crate::process::{Line, LineReader, NodeError, NodeProcess};
use crate::services::{Services, is_service};
use crate::workload::{self, Op, OpGen};
use nix::sys::signal::Signal;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sunder_checker::{EventType, History, Process};
use sunder_nemesis::{Clocks, FaketimeClocks};
use sunder_workloads::recorder::Recorder;
use tokio::io::AsyncWriteExt;
use tokio::process::ChildStdin;
use tokio::sync::mpsc;

/// Messages waiting for the router, and lines waiting for one node's stdin. Bounded: a
/// paused node's pipe fills, its queue fills, and what comes after is dropped and counted,
/// as a real network drops what a stopped host cannot take.
const INPUT_QUEUE: usize = 1 << 16;
const STDIN_QUEUE: usize = 4096;
/// Messages held for their delay. Bounded too: a node that floods the network under a long
/// latency would otherwise grow the router's memory with every message it sends.
const HELD_MAX: usize = 1 << 17;

/// Why the run could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("{0}")]
    Setup(String),
}

/// What a run produced, for the harness to write into `results.json`.
pub struct Outcome {
    pub checkers: Vec<CheckResult>,
    pub counterexample: Option<Value>,
    pub history: History,
    pub messages: MessageCounts,
    pub nodes: BTreeMap<String, Value>,
    pub warnings: Vec<String>,
    pub schedule: Vec<Planned>,
    /// What `messages.jsonl` holds and what it left out.
    pub message_log: LogSummary,
    /// Ctrl-C or SIGTERM cut the run short: the verdicts cover a partial history.
    pub interrupted: bool,
}

struct Shared {
    cfg: Config,
    ids: Vec<String>,
    nodes_dir: PathBuf,
    net: Mutex<Network>,
    counts: Mutex<MessageCounts>,
    stdins: Mutex<HashMap<String, mpsc::Sender<String>>>,
    procs: Mutex<HashMap<String, NodeProcess>>,
    clients: Mutex<HashMap<String, mpsc::Sender<Message>>>,
    /// Nodes the nemesis killed: their exit is expected.
    killed: Mutex<BTreeSet<String>>,
    paused: Mutex<BTreeSet<String>>,
    restarts: Mutex<BTreeMap<String, u64>>,
    /// With `--nemesis clock`: each node's libfaketime control file, and the environment
    /// that preloads it.
    clocks: Option<Mutex<FaketimeClocks>>,
    clock_env: BTreeMap<String, Vec<(String, String)>>,
    warnings: Mutex<Vec<String>>,
    /// A node broke the protocol mid-run: the run stops and exits 3.
    fatal: Mutex<Option<NodeError>>,
    abort: AtomicBool,
    interrupted: AtomicBool,
    msg_ids: AtomicU64,
    input: mpsc::Sender<Message>,
    recorder: Recorder,
    log: MessageLog,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn new(
        cfg: Config,
        ids: Vec<String>,
        nodes_dir: PathBuf,
        input: mpsc::Sender<Message>,
        recorder: Recorder,
        log: MessageLog,
        clocks: Option<ClockBackend>,
    ) -> Arc<Shared> {
        let (clocks, clock_env) = match clocks {
            Some(b) => (Some(Mutex::new(b.clocks)), b.env),
            None => (None, BTreeMap::new()),
        };
        Arc::new(Shared {
            clocks,
            clock_env,
            net: Mutex::new(
                Network::new(cfg.seed, cfg.latency, cfg.loss, cfg.duplicate)
                    .with_reorder(cfg.reorder),
            ),
            cfg,
            ids,
            nodes_dir,
            counts: Mutex::default(),
            stdins: Mutex::default(),
            procs: Mutex::default(),
            clients: Mutex::default(),
            killed: Mutex::default(),
            paused: Mutex::default(),
            restarts: Mutex::default(),
            warnings: Mutex::default(),
            fatal: Mutex::default(),
            abort: AtomicBool::new(false),
            interrupted: AtomicBool::new(false),
            msg_ids: AtomicU64::new(1),
            input,
            recorder,
            log,
        })
    }

    fn warn(&self, w: String) {
        lock(&self.warnings).push(w);
    }

    fn record_nemesis(&self, f: &str, value: Value, error: Option<String>) {
        self.recorder.record(
            Process::Nemesis,
            EventType::Info,
            f,
            None,
            value,
            error,
            None,
        );
    }

    /// Starts (or restarts) one node: init handshake, then its stdin writer and stdout
    /// reader tasks.
    async fn start_node(self: &Arc<Self>, id: &str) -> Result<(), NodeError> {
        let init_id = self.msg_ids.fetch_add(1, Ordering::Relaxed);
        let (proc, stdin, reader) = NodeProcess::start(
            id,
            &self.ids,
            &self.cfg.binary,
            &self.cfg.args,
            &self.nodes_dir,
            self.clock_env.get(id).map_or(&[][..], Vec::as_slice),
            self.cfg.init_timeout,
            init_id,
        )
        .await?;
        self.check_preload(id, proc.pid());
        let (tx, rx) = mpsc::channel(STDIN_QUEUE);
        tokio::spawn(write_stdin(stdin, rx));
        tokio::spawn(read_stdout(self.clone(), id.to_string(), reader));
        lock(&self.killed).remove(id);
        lock(&self.procs).insert(id.to_string(), proc);
        lock(&self.stdins).insert(id.to_string(), tx);
        Ok(())
    }

    async fn kill_node(&self, id: &str) -> Result<(), String> {
        lock(&self.killed).insert(id.to_string());
        lock(&self.stdins).remove(id);
        lock(&self.paused).remove(id);
        let p = lock(&self.procs).remove(id);
        match p {
            Some(p) => {
                p.kill().await;
                Ok(())
            }
            None => Err(format!("{id} is not running")),
        }
    }

    fn signal(&self, id: &str, sig: Signal) -> Result<(), String> {
        match lock(&self.procs).get(id) {
            Some(p) => p.signal(sig),
            None => Err(format!("{id} is not running")),
        }
    }

    /// With clock faults: a node whose process does not map libfaketime (a static or Go
    /// binary) keeps its real clock; its clock faults are then recorded as not applied.
    fn check_preload(&self, id: &str, pid: u32) {
        let Some(clocks) = &self.clocks else {
            return;
        };
        let why = match sunder_nemesis::clock::preloaded(pid) {
            Ok(true) => return,
            Ok(false) => "libfaketime is not loaded in the node process (a static or Go \
                 binary reads the clock without libc)"
                .to_string(),
            Err(e) => format!("cannot read the node's /proc maps: {e}"),
        };
        self.warn(format!("clock faults cannot reach {id}: {why}"));
        lock(clocks).unaffected(id, &why);
    }

    /// Applies a fault or its stop; returns (nodes reached, errors by node).
    async fn apply(self: &Arc<Self>, fault: &Fault, start: bool) -> BTreeMap<String, String> {
        let mut failed = BTreeMap::new();
        match (fault, start) {
            (Fault::Partition { cuts, .. }, true) => lock(&self.net).set_cuts(cuts.clone()),
            (Fault::Partition { .. }, false) => lock(&self.net).set_cuts(BTreeSet::new()),
            (Fault::Kill { nodes }, true) => {
                for n in nodes {
                    if let Err(e) = self.kill_node(n).await {
                        failed.insert(n.clone(), e);
                    }
                }
            }
            (Fault::Kill { nodes }, false) => {
                for n in nodes {
                    if let Err(e) = self.restart(n).await {
                        failed.insert(n.clone(), e);
                    }
                }
            }
            (Fault::Pause { nodes }, true) => {
                for n in nodes {
                    match self.signal(n, Signal::SIGSTOP) {
                        Ok(()) => {
                            lock(&self.paused).insert(n.clone());
                        }
                        Err(e) => {
                            failed.insert(n.clone(), e);
                        }
                    }
                }
            }
            (Fault::Pause { nodes }, false) => {
                for n in nodes {
                    if lock(&self.paused).remove(n)
                        && let Err(e) = self.signal(n, Signal::SIGCONT)
                    {
                        failed.insert(n.clone(), e);
                    }
                }
            }
            (Fault::Clock { fault }, start) => {
                let Some(clocks) = &self.clocks else {
                    failed.insert("*".into(), "no clock backend".into());
                    return failed;
                };
                let mut c = lock(clocks);
                let r = if start {
                    c.apply(fault)
                } else {
                    c.reset(&fault.nodes())
                };
                match r {
                    Ok(o) => failed.extend(o.failed),
                    Err(e) => {
                        for n in fault.nodes() {
                            failed.insert(n, e.to_string());
                        }
                    }
                }
            }
        }
        failed
    }

    /// A killed node comes back with a fresh `init` (and, for broadcast, its topology).
    async fn restart(self: &Arc<Self>, id: &str) -> Result<(), String> {
        if lock(&self.procs).contains_key(id) {
            return Ok(());
        }
        self.start_node(id).await.map_err(|e| e.to_string())?;
        *lock(&self.restarts).entry(id.to_string()).or_default() += 1;
        if self.cfg.workload == Workload::Broadcast {
            let top = self.cfg.topology.neighbours(&self.ids);
            let id_ = self.msg_ids.fetch_add(1, Ordering::Relaxed);
            let m = Message::new(
                "c0",
                id,
                json!({"type": "topology", "msg_id": id_, "topology": top}),
            );
            let _ = self.input.send(m).await;
        }
        Ok(())
    }

    /// Undoes every fault in force: cuts, pauses, dead nodes.
    async fn heal(self: &Arc<Self>) {
        lock(&self.net).set_cuts(BTreeSet::new());
        let paused: Vec<String> = std::mem::take(&mut *lock(&self.paused))
            .into_iter()
            .collect();
        for n in &paused {
            if let Err(e) = self.signal(n, Signal::SIGCONT) {
                self.warn(format!("heal: {e}"));
            }
        }
        let mut restarted = Vec::new();
        for n in self.ids.clone() {
            let down = !lock(&self.procs).contains_key(&n);
            if down {
                match self.restart(&n).await {
                    Ok(()) => restarted.push(n),
                    Err(e) => self.warn(format!("heal: could not restart {n}: {e}")),
                }
            }
        }
        self.record_nemesis(
            "heal-all",
            json!({"resumed": paused, "restarted": restarted}),
            None,
        );
    }
}

async fn write_stdin(mut stdin: ChildStdin, mut rx: mpsc::Receiver<String>) {
    while let Some(line) = rx.recv().await {
        if stdin.write_all(line.as_bytes()).await.is_err() {
            break;
        }
    }
}

async fn read_stdout(shared: Arc<Shared>, id: String, mut reader: LineReader) {
    loop {
        match reader.next().await {
            Line::Message(m) if m.src != id => {
                let e = NodeError::Garbage {
                    node: id.clone(),
                    line_no: reader.line_no,
                    why: format!("its `src` is {:?}, not its own id", m.src),
                    excerpt: m.to_line().trim_end().chars().take(120).collect(),
                    tail: String::new(),
                };
                lock(&shared.fatal).get_or_insert(e);
                shared.abort.store(true, Ordering::Relaxed);
                return;
            }
            Line::Message(m) => {
                if shared.input.send(m).await.is_err() {
                    return;
                }
            }
            Line::Eof => {
                if !lock(&shared.killed).contains(&id) && !shared.abort.load(Ordering::Relaxed) {
                    let status = lock(&shared.procs)
                        .get_mut(&id)
                        .and_then(NodeProcess::try_exited)
                        .unwrap_or_else(|| "stdout closed".into());
                    shared.warn(format!("{id} stopped on its own mid-run ({status})"));
                    lock(&shared.stdins).remove(&id);
                    lock(&shared.procs).remove(&id);
                }
                return;
            }
            Line::Garbage {
                line_no,
                why,
                excerpt,
            } => {
                let log = shared.nodes_dir.join(format!("{id}.log"));
                let e = NodeError::Garbage {
                    node: id.clone(),
                    line_no,
                    why,
                    excerpt,
                    tail: crate::process::settled_log_tail(&log).await,
                };
                lock(&shared.fatal).get_or_insert(e);
                shared.abort.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// A message held for its delay: when it was sent, and which copy it is (delivered,
/// duplicate or reordered: its fate if it arrives).
struct Held {
    m: Message,
    sent_ms: f64,
    copy: MessageFate,
}

/// A record of `m` for `messages.jsonl`.
fn record_of(m: &Message, sent_ms: f64, fate: MessageFate) -> MessageRecord {
    MessageRecord::new(
        sent_ms,
        &m.src,
        &m.dest,
        m.kind(),
        m.msg_id(),
        m.in_reply_to(),
        fate,
    )
}

/// Delivers one message that has spent its time in the network, and records its fate.
fn deliver(
    shared: &Shared,
    services: &mut Services,
    started: tokio::time::Instant,
    h: Held,
    back: &mut Vec<Message>,
) {
    let Held { m, sent_ms, copy } = h;
    let mut rec = record_of(&m, sent_ms, copy);
    rec.delivered_ms = Some(shared.log.now_ms());
    let fate = if is_node(&m.dest) {
        let tx = lock(&shared.stdins).get(&m.dest).cloned();
        match tx {
            Some(tx) => {
                if tx.try_send(m.to_line()).is_err() {
                    lock(&shared.counts).queue_full += 1;
                    MessageFate::QueueFull
                } else {
                    copy
                }
            }
            None => {
                lock(&shared.counts).to_down_node += 1;
                MessageFate::Down
            }
        }
    } else if is_client(&m.dest) {
        let tx = lock(&shared.clients).get(&m.dest).cloned();
        match tx {
            Some(tx) => {
                if tx.try_send(m).is_err() {
                    lock(&shared.counts).queue_full += 1;
                    MessageFate::QueueFull
                } else {
                    copy
                }
            }
            None => {
                lock(&shared.counts).unknown_dest += 1;
                MessageFate::UnknownDest
            }
        }
    } else if is_service(&m.dest) {
        let reply = services.handle(&m.dest, &m.src, &m.body, started.elapsed());
        back.push(Message::new(&m.dest, &m.src, reply));
        copy
    } else {
        lock(&shared.counts).unknown_dest += 1;
        MessageFate::UnknownDest
    };
    rec.fate = fate;
    shared.log.record(rec);
}

/// The router: every message is counted, given its fate by the network, held for its
/// delay, delivered and recorded. Ends when every sender is gone.
async fn router(shared: Arc<Shared>, mut rx: mpsc::Receiver<Message>) {
    let mut services = Services::new(shared.cfg.seed);
    let started = tokio::time::Instant::now();
    let mut due: BinaryHeap<Reverse<(tokio::time::Instant, u64)>> = BinaryHeap::new();
    let mut held: HashMap<u64, Held> = HashMap::new();
    let mut seq = 0u64;
    let mut back = Vec::new();
    let mut admit = |m: Message,
                     due: &mut BinaryHeap<Reverse<(tokio::time::Instant, u64)>>,
                     held: &mut HashMap<u64, Held>| {
        let sent_ms = shared.log.now_ms();
        let (fate, held_back) = {
            let mut c = lock(&shared.counts);
            c.count(&m.src, &m.dest);
            let mut net = lock(&shared.net);
            let before = net.reordered();
            let fate = net.route(&m.src, &m.dest);
            // The network holds back at most the first copy, and counts it when it does.
            let held_back = net.reordered() > before;
            match &fate {
                Fate::Cut => c.cut += 1,
                Fate::Lost => c.lost += 1,
                Fate::Deliver(d) => c.duplicated += d.len() as u64 - 1,
            }
            (fate, held_back)
        };
        let delays = match fate {
            Fate::Deliver(delays) => delays,
            Fate::Cut => return shared.log.record(record_of(&m, sent_ms, MessageFate::Cut)),
            Fate::Lost => return shared.log.record(record_of(&m, sent_ms, MessageFate::Lost)),
        };
        let now = tokio::time::Instant::now();
        for (i, d) in delays.into_iter().enumerate() {
            let copy = match i {
                0 if held_back => MessageFate::Reordered,
                0 => MessageFate::Delivered,
                _ => MessageFate::Duplicate,
            };
            if held.len() >= HELD_MAX {
                lock(&shared.counts).queue_full += 1;
                shared
                    .log
                    .record(record_of(&m, sent_ms, MessageFate::QueueFull));
                continue;
            }
            seq += 1;
            due.push(Reverse((now + d, seq)));
            held.insert(
                seq,
                Held {
                    m: m.clone(),
                    sent_ms,
                    copy,
                },
            );
        }
    };
    loop {
        let next = due.peek().map(|Reverse((t, _))| *t);
        tokio::select! {
            m = rx.recv() => match m {
                Some(m) => admit(m, &mut due, &mut held),
                None => break,
            },
            _ = async { tokio::time::sleep_until(next.expect("guarded")).await }, if next.is_some() => {
                let now = tokio::time::Instant::now();
                while let Some(Reverse((t, s))) = due.peek().copied() {
                    if t > now {
                        break;
                    }
                    due.pop();
                    if let Some(h) = held.remove(&s) {
                        deliver(&shared, &mut services, started, h, &mut back);
                    }
                }
                for m in back.drain(..) {
                    admit(m, &mut due, &mut held);
                }
            }
        }
    }
}

/// One request and its reply (or timeout) as a history operation.
async fn call(
    shared: &Shared,
    name: &str,
    inbox: &mut mpsc::Receiver<Message>,
    process: u64,
    node: &str,
    op: &Op,
) -> workload::Completion {
    let w = shared.cfg.workload;
    let rec = &shared.recorder;
    let p = Process::Client(process);
    rec.record(
        p,
        EventType::Invoke,
        op.f,
        op.key.as_deref(),
        op.value.clone(),
        None,
        Some(node),
    );
    let msg_id = shared.msg_ids.fetch_add(1, Ordering::Relaxed);
    let mut body = workload::request(w, op);
    body["msg_id"] = json!(msg_id);
    let _ = shared.input.send(Message::new(name, node, body)).await;
    let deadline = tokio::time::Instant::now() + shared.cfg.op_timeout;
    let c = loop {
        match tokio::time::timeout_at(deadline, inbox.recv()).await {
            Ok(Some(m)) if m.in_reply_to() == Some(msg_id) => {
                break workload::complete(w, op, &m.body);
            }
            Ok(Some(_)) => continue, // a late reply to an earlier, timed-out request
            _ => {
                break workload::Completion {
                    kind: if workload::is_read(op) {
                        EventType::Fail
                    } else {
                        EventType::Info
                    },
                    value: op.value.clone(),
                    error: Some(format!(
                        "timeout: no reply within {:?}",
                        shared.cfg.op_timeout
                    )),
                };
            }
        }
    };
    rec.record(
        p,
        c.kind,
        op.f,
        op.key.as_deref(),
        c.value.clone(),
        c.error.clone(),
        Some(node),
    );
    c
}

async fn client(
    shared: Arc<Shared>,
    i: usize,
    mut inbox: mpsc::Receiver<Message>,
    stop: Arc<AtomicBool>,
) {
    let k = shared.cfg.concurrency;
    let name = format!("c{}", i + 1);
    let node = shared.ids[i % shared.ids.len()].clone();
    let mut rng = ChaCha8Rng::seed_from_u64(shared.cfg.seed ^ ((i as u64 + 1) << 32));
    let mut ops = OpGen::new(
        shared.cfg.workload,
        shared.cfg.key_count,
        i as u64,
        k as u64,
    );
    let mut process = i as u64;
    let gap = if shared.cfg.rate > 0.0 {
        Duration::from_secs_f64(k as f64 / shared.cfg.rate)
    } else {
        Duration::ZERO
    };
    let mut next = tokio::time::Instant::now();
    while !stop.load(Ordering::Relaxed) && !shared.abort.load(Ordering::Relaxed) {
        let op = ops.next(&mut rng);
        let c = call(&shared, &name, &mut inbox, process, &node, &op).await;
        ops.observe(&op, &c);
        if c.kind == EventType::Info {
            // As in Jepsen: the process may still have its operation in flight.
            process += k as u64;
        }
        next += gap;
        tokio::time::sleep_until(next.max(tokio::time::Instant::now())).await;
    }
}

async fn follow(shared: Arc<Shared>, plan: Vec<Planned>, t0: tokio::time::Instant) {
    for p in plan {
        for (at, start) in [(p.start, true), (p.stop, false)] {
            tokio::time::sleep_until(t0 + at).await;
            if shared.abort.load(Ordering::Relaxed) {
                return;
            }
            let failed = shared.apply(&p.fault, start).await;
            let (f_start, f_stop) = p.fault.names();
            let error = (!failed.is_empty()).then(|| json!({"failed": failed}).to_string());
            shared.record_nemesis(if start { f_start } else { f_stop }, p.fault.value(), error);
        }
    }
}

/// Sends `topology` to every node from `c0` and waits for each `topology_ok`.
async fn send_topology(
    shared: &Arc<Shared>,
    inbox: &mut mpsc::Receiver<Message>,
) -> Result<(), RunError> {
    let top = shared.cfg.topology.neighbours(&shared.ids);
    for id in &shared.ids {
        let msg_id = shared.msg_ids.fetch_add(1, Ordering::Relaxed);
        let m = Message::new(
            "c0",
            id,
            json!({"type": "topology", "msg_id": msg_id, "topology": top}),
        );
        let _ = shared.input.send(m).await;
        let wait = shared.cfg.init_timeout;
        let got = tokio::time::timeout(wait, async {
            while let Some(m) = inbox.recv().await {
                if m.in_reply_to() == Some(msg_id) {
                    return Some(m);
                }
            }
            None
        })
        .await;
        match got {
            Ok(Some(m)) if m.kind() == "topology_ok" => {}
            Ok(Some(m)) => {
                return Err(RunError::Setup(format!(
                    "{id} answered topology with `{}`, not topology_ok",
                    m.kind()
                )));
            }
            _ => {
                return Err(RunError::Setup(format!(
                    "{id} did not answer topology within {wait:?}{}",
                    crate::process::log_tail(&shared.nodes_dir.join(format!("{id}.log")))
                )));
            }
        }
    }
    Ok(())
}

/// The clock faults' backend: the control files, and each node's environment that
/// preloads libfaketime reading its own.
struct ClockBackend {
    clocks: FaketimeClocks,
    env: BTreeMap<String, Vec<(String, String)>>,
}

/// With `--nemesis clock`: a control file `nodes/<id>.faketime` per node (holding `+0`) and
/// the environment that preloads libfaketime reading it; an error when libfaketime is
/// not installed.
fn clock_backend(
    cfg: &Config,
    ids: &[String],
    nodes_dir: &Path,
) -> Result<Option<ClockBackend>, RunError> {
    use sunder_nemesis::clock::{fake_monotonic_requested, faketime_env, find_libfaketime};
    if !cfg.nemesis.contains(&crate::config::FaultKind::Clock) {
        return Ok(None);
    }
    let lib = find_libfaketime().ok_or_else(|| {
        RunError::Setup(
            "--nemesis clock needs libfaketime, which was not found: install the Debian \
             package `faketime`, or point SUNDER_LIBFAKETIME at libfaketime.so.1"
                .into(),
        )
    })?;
    std::fs::create_dir_all(nodes_dir)
        .map_err(|e| RunError::Setup(format!("create {}: {e}", nodes_dir.display())))?;
    let files: BTreeMap<String, PathBuf> = ids
        .iter()
        .map(|id| (id.clone(), nodes_dir.join(format!("{id}.faketime"))))
        .collect();
    let env = files
        .iter()
        .map(|(id, f)| {
            (
                id.clone(),
                faketime_env(&lib, f, fake_monotonic_requested()),
            )
        })
        .collect();
    let clocks =
        FaketimeClocks::new(files).map_err(|e| RunError::Setup(format!("clock files: {e}")))?;
    Ok(Some(ClockBackend { clocks, env }))
}

/// Runs the test in `dir` (which exists, with `nodes/`). The history streams to
/// `dir/history.jsonl`.
pub async fn run(cfg: Config, dir: &Path) -> Result<Outcome, RunError> {
    let history = std::fs::File::create(dir.join("history.jsonl"))
        .map_err(|e| RunError::Setup(format!("create history.jsonl: {e}")))?;
    // Time 0 of the history and of messages.jsonl alike.
    let origin = Instant::now();
    let recorder = Recorder::new(origin, Box::new(std::io::BufWriter::new(history)));
    let log = MessageLog::create(dir, origin)
        .map_err(|e| RunError::Setup(format!("create {}: {e}", crate::messages::FILE)))?;
    let ids = cfg.node_ids();
    let (input, input_rx) = mpsc::channel(INPUT_QUEUE);
    let plan = nemesis::schedule(
        cfg.seed,
        &cfg.nemesis,
        &ids,
        cfg.nemesis_interval,
        cfg.time_limit,
    );
    let clocks = clock_backend(&cfg, &ids, &dir.join("nodes"))?;
    let shared = Shared::new(
        cfg,
        ids.clone(),
        dir.join("nodes"),
        input,
        recorder,
        log,
        clocks,
    );
    // Ctrl-C or SIGTERM: stop the workload and the nemesis, kill the nodes, check what
    // was recorded (the default action would leave the nodes' process groups running).
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        let s = shared.clone();
        let (mut int, mut term) = (
            signal(SignalKind::interrupt()).map_err(|e| RunError::Setup(format!("SIGINT: {e}")))?,
            signal(SignalKind::terminate())
                .map_err(|e| RunError::Setup(format!("SIGTERM: {e}")))?,
        );
        tokio::spawn(async move {
            tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
            eprintln!("sunder: interrupted: stopping the nodes");
            s.interrupted.store(true, Ordering::Relaxed);
            s.abort.store(true, Ordering::Relaxed);
        })
    };
    let result = drive(&shared, input_rx, plan.clone()).await;
    signals.abort();
    // Whatever happened, no node outlives the run.
    shared.abort.store(true, Ordering::Relaxed);
    let procs: Vec<NodeProcess> = lock(&shared.procs).drain().map(|(_, p)| p).collect();
    for p in procs {
        p.kill().await;
    }
    lock(&shared.stdins).clear();
    let _ = shared.recorder.flush();
    // As the history: complete on disk however the run ended (an interrupt comes here too).
    let message_log = {
        let s = shared.clone();
        tokio::task::spawn_blocking(move || s.log.finish())
            .await
            .map_err(|e| RunError::Setup(format!("the messages.jsonl writer: {e}")))?
    };
    result?;
    if let Some(e) = lock(&shared.fatal).take() {
        return Err(e.into());
    }
    let history = History::new(shared.recorder.events());
    let (workload, budget) = (shared.cfg.workload, Duration::from_secs(60));
    let (checkers, counterexample) = {
        let h = history.clone();
        let ids = ids.clone();
        tokio::task::spawn_blocking(move || checkers::check(workload, &h, &ids, budget))
            .await
            .map_err(|e| RunError::Setup(format!("the checkers panicked: {e}")))?
    };
    let mut messages = lock(&shared.counts).clone();
    messages.reordered = lock(&shared.net).reordered();
    messages.operations = history
        .client_events()
        .filter(|e| e.kind == EventType::Invoke)
        .count() as u64;
    if messages.operations > 0 {
        let ops = messages.operations as f64;
        messages.server_to_server_per_op = messages.server_to_server as f64 / ops;
        let all = messages.client_to_server
            + messages.server_to_client
            + messages.server_to_server
            + messages.server_to_service
            + messages.service_to_server;
        messages.all_per_op = all as f64 / ops;
    }
    let restarts = lock(&shared.restarts).clone();
    let nodes = ids
        .iter()
        .map(|id| {
            (
                id.clone(),
                json!({"restarts": restarts.get(id).copied().unwrap_or(0), "log": format!("nodes/{id}.log"), "data": format!("nodes/{id}")}),
            )
        })
        .collect();
    let warnings = lock(&shared.warnings).clone();
    Ok(Outcome {
        checkers,
        counterexample,
        history,
        messages,
        nodes,
        warnings,
        schedule: plan,
        message_log,
        interrupted: shared.interrupted.load(Ordering::Relaxed),
    })
}

async fn drive(
    shared: &Arc<Shared>,
    input_rx: mpsc::Receiver<Message>,
    plan: Vec<Planned>,
) -> Result<(), RunError> {
    let cfg = shared.cfg.clone();
    for id in &shared.ids {
        shared.start_node(id).await?;
    }
    // Clients c1..cK, c0 for setup messages, cK+1 for the final reads.
    let mut inboxes = Vec::new();
    for i in 0..=cfg.concurrency + 1 {
        let (tx, rx) = mpsc::channel(1024);
        lock(&shared.clients).insert(format!("c{i}"), tx);
        inboxes.push(rx);
    }
    tokio::spawn(router(shared.clone(), input_rx));
    let mut final_inbox = inboxes.pop().expect("pushed");
    let mut setup_inbox = inboxes.remove(0);
    if cfg.workload == Workload::Broadcast {
        send_topology(shared, &mut setup_inbox).await?;
    }
    // Keep draining c0 so replies to later topology messages do not fill its queue.
    tokio::spawn(async move { while setup_inbox.recv().await.is_some() {} });
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = tokio::time::Instant::now();
    let clients: Vec<_> = inboxes
        .into_iter()
        .enumerate()
        .map(|(i, inbox)| tokio::spawn(client(shared.clone(), i, inbox, stop.clone())))
        .collect();
    let nemesis = tokio::spawn(follow(shared.clone(), plan, t0));
    while t0.elapsed() < cfg.time_limit && !shared.abort.load(Ordering::Relaxed) {
        tokio::time::sleep(
            Duration::from_millis(50).min(cfg.time_limit.saturating_sub(t0.elapsed())),
        )
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    let _ = nemesis.await;
    if shared.abort.load(Ordering::Relaxed) {
        return Ok(());
    }
    shared.heal().await;
    if cfg.workload.has_final_reads() {
        tokio::time::sleep(cfg.recovery).await;
        let name = format!("c{}", cfg.concurrency + 1);
        if cfg.workload == Workload::Kafka {
            for id in &shared.ids {
                final_polls(shared, &name, &mut final_inbox, id).await;
            }
            return Ok(());
        }
        for id in &shared.ids {
            for _ in 0..5 {
                let p = shared.recorder.fresh_process();
                let k = call(
                    shared,
                    &name,
                    &mut final_inbox,
                    p,
                    id,
                    &workload::final_read(),
                )
                .await
                .kind;
                if k == EventType::Ok || shared.abort.load(Ordering::Relaxed) {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Polls in a row (and at most [`FINAL_POLLS`]) that read each key of `id` from offset
/// 0 to its end: a key is done when a poll from one past the last offset read returns
/// nothing for it. The checker judges lost messages only on keys read to their end.
const FINAL_POLLS: usize = 200;

async fn final_polls(
    shared: &Arc<Shared>,
    name: &str,
    inbox: &mut mpsc::Receiver<Message>,
    id: &str,
) {
    let mut next: BTreeMap<String, u64> = (0..shared.cfg.key_count)
        .map(|k| (k.to_string(), 0))
        .collect();
    let mut failures = 0;
    for _ in 0..FINAL_POLLS {
        if next.is_empty() || failures >= 5 || shared.abort.load(Ordering::Relaxed) {
            break;
        }
        let p = shared.recorder.fresh_process();
        let c = call(shared, name, inbox, p, id, &workload::final_poll(&next)).await;
        if c.kind != EventType::Ok {
            failures += 1;
            continue;
        }
        let msgs = c.value.as_object().cloned().unwrap_or_default();
        next.retain(|k, at| {
            let last = msgs
                .get(k)
                .and_then(Value::as_array)
                .and_then(|a| a.last())
                .and_then(|p| p[0].as_u64());
            match last {
                // An offset below where the poll began is the checker's to report; the
                // read of this key goes no further.
                Some(o) if o >= *at => {
                    *at = o.saturating_add(1);
                    true
                }
                Some(_) => false,
                None => false,
            }
        });
    }
}

/// The router alone, for the benchmark: `clients` tasks each send `requests` requests to
/// the `lin-kv` service, `window` at a time, through the real router (counting, the
/// network's decisions, the delay queue, the service, delivery to the client). Returns the
/// messages routed (a request and its reply are two).
pub async fn route_only(clients: usize, requests: u64, window: u64) -> u64 {
    let cfg = Config::new(PathBuf::from("none"), Vec::new(), Workload::LinKv, 1);
    let recorder = Recorder::new(Instant::now(), Box::new(std::io::sink()));
    // Recording is part of the router's cost per message, so the benchmark pays it too.
    let log = MessageLog::to_writer(
        Box::new(std::io::sink()),
        Instant::now(),
        crate::messages::MAX_RECORDS,
    )
    .expect("start the log's writer thread");
    let (input, input_rx) = mpsc::channel(INPUT_QUEUE);
    let shared = Shared::new(cfg, Vec::new(), PathBuf::new(), input, recorder, log, None);
    let mut tasks = Vec::new();
    for i in 1..=clients {
        let name = format!("c{i}");
        let (tx, mut rx) = mpsc::channel(window as usize * 2);
        lock(&shared.clients).insert(name.clone(), tx);
        let input = shared.input.clone();
        tasks.push(tokio::spawn(async move {
            let (mut sent, mut got) = (0, 0);
            while got < requests {
                while sent < requests && sent - got < window {
                    sent += 1;
                    let body = json!({"type": "write", "key": i, "value": sent, "msg_id": sent});
                    let _ = input.send(Message::new(&name, "lin-kv", body)).await;
                }
                if rx.recv().await.is_none() {
                    break;
                }
                got += 1;
            }
        }));
    }
    let router = tokio::spawn(router(shared.clone(), input_rx));
    for t in tasks {
        let _ = t.await;
    }
    let c = lock(&shared.counts).clone();
    drop(shared);
    router.abort();
    c.other
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_router_delivers_every_request_and_reply() {
        // Three clients, 200 requests each to lin-kv: every reply comes back (the clients
        // wait for all of them) and the router counted each message once.
        assert_eq!(super::route_only(3, 200, 16).await, 3 * 200 * 2);
    }
}
