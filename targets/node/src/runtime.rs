//! [`run_node`]: the thin driver that does a core's I/O.
//!
//! ```text
//!   client tasks  ─┐ (wait for room)          ┌─► 1. WAL compact/append + fsync (one per batch)
//!   peer tasks   ──┼─► input queue ─► driver ┼─► 2. peer queues (try_send; full = dropped)
//!   ticker thread ─┘  (INPUT_QUEUE; step     ├─► 3. client reply queues (try_send)
//!   (sleep, send)      peers: full = dropped) └─► 4. event stream
//! ```
//!
//! The driver runs on its own blocking thread so that fsync never stalls the sockets. It
//! drains every input that is ready, steps the core on each, and makes all their records
//! durable with one fsync before any of their messages or replies leave: the order
//! protocol.rs promises, at the price of one fsync per batch instead of per input. The
//! first input a core ever sees is a `Tick`, so it always knows the time.
//!
//! Ticks come from a thread that sleeps for one tick (a relative `nanosleep`) and posts a
//! wake-up; the driver then reads CLOCK_MONOTONIC for the tick's `now_ms`. Nothing here
//! waits with a timeout: std's timed waits hand the kernel an absolute CLOCK_MONOTONIC
//! deadline computed from the clock libfaketime fakes, so under a faked monotonic clock
//! they would never (or too early) time out. A relative sleep still returns (libfaketime
//! scales it by the clock's rate, so a slowed clock ticks slowly, as a slow clock would).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sunder_core::twins::Twins;
use sunder_wire::NodeEvent;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{self, error::TryRecvError, error::TrySendError};

use crate::args::{NodeArgs, NodeError};
use crate::client::{self, Replies};
use crate::events::EventLog;
use crate::peer;
use crate::protocol::{Input, NodeId, Output, Protocol};
use crate::wal::Wal;

/// Inputs stepped before one fsync; bounds the latency a batch adds.
const MAX_BATCH: usize = 512;
/// Inputs waiting for the driver. Clients wait for room (their requests are not lost, and
/// a flood slows its sender down); peer messages that find the queue full are dropped and
/// counted, as a lossy network would drop them (the protocols retransmit), so a fast peer
/// can never stall the connection tasks.
pub const INPUT_QUEUE: usize = 8192;

enum DriverMsg<M> {
    Input(Input<M>),
    /// One tick's sleep is over.
    Tick,
    Stop,
}

/// Runs one node of protocol `P` until SIGTERM or SIGINT (then `Ok`), or until it cannot
/// go on (a bind failure, an unusable data directory or log: `Err`).
pub fn run_node<P: Protocol>(args: NodeArgs) -> Result<(), NodeError>
where
    P::Msg: Clone,
{
    if args.secret_key.is_some() || args.public_keys.is_some() {
        return Err(NodeError::Config(
            "--secret-key and --public-keys are for a target that signs (pbft); this one takes no keys"
                .into(),
        ));
    }
    run_node_with(args, P::recover)
}

/// [`run_node`] with the core built by `build` (twice for twins) from its configuration and recovered records
/// instead of [`Protocol::recover`]: for a core that needs more than its command line gives
/// (PBFT: the keys its key files hold, read by the caller before anything starts).
pub fn run_node_with<P: Protocol>(
    args: NodeArgs,
    build: impl Fn(crate::CoreConfig, Vec<P::Record>) -> P,
) -> Result<(), NodeError>
where
    P::Msg: Clone,
{
    args.validate(P::known_bugs(), P::byzantine_modes())?;
    crate::opts::check(
        P::accepted_opts(),
        args.opts.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .map_err(|e| NodeError::Config(e.to_string()))?;
    std::fs::create_dir_all(&args.data).map_err(|source| NodeError::Io {
        what: "create data directory",
        path: args.data.clone(),
        source,
    })?;
    let mut events = EventLog::open(&args.events_path(), &args.id)?;
    let opened = Wal::open(&args.data.join("wal.log"))?;
    if let Some(t) = &opened.torn {
        tracing::warn!(
            "{}: dropped a torn last record ({} bytes at byte {}: {}); the node was killed mid-write",
            opened.wal.path().display(),
            t.dropped,
            t.offset,
            t.reason
        );
        events.emit(NodeEvent::WalTornTail {
            offset: t.offset,
            dropped: t.dropped,
            reason: t.reason.to_string(),
        });
    }
    let records: Vec<P::Record> = opened.wal.decode_all(&opened.payloads)?;
    let recovered = records.len();
    let mut wal = opened.wal;
    let durability = Durability::of(&args.bugs);
    if durability == Durability::Never {
        wal.skip_fsync();
    }
    // A node given `--byzantine twins` is two cores with its one identity
    // (sunder_core::twins); any other node is its one core, passed through.
    let core = Twins::build(args.core_config(), records, build);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| NodeError::Runtime(format!("cannot start tokio: {e}")))?;
    let result = rt.block_on(serve::<Twins<P>>(
        args, core, wal, durability, events, recovered,
    ));
    rt.shutdown_timeout(Duration::from_millis(200));
    result
}

async fn serve<P: Protocol>(
    args: NodeArgs,
    core: P,
    wal: Wal,
    durability: Durability,
    mut events: EventLog,
    recovered: usize,
) -> Result<(), NodeError> {
    let signal_err =
        |e: std::io::Error| NodeError::Runtime(format!("cannot install signal handler: {e}"));
    let mut sigterm = signal(SignalKind::terminate()).map_err(signal_err)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(signal_err)?;

    let bind = |what, addr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| NodeError::Bind { what, addr, source })
    };
    let client_listener = bind("client", args.client).await?;
    let peer_listener = match args.peer_listen {
        Some(a) => Some(bind("peer", a).await?),
        None => None,
    };

    // With port 0 the OS picks: log and record the address actually bound.
    let client_addr = client_listener.local_addr().map_or(args.client, |a| a);
    let peer_addr = peer_listener.as_ref().and_then(|l| l.local_addr().ok());
    let (tx, rx) = mpsc::channel::<DriverMsg<P::Msg>>(INPUT_QUEUE);
    let replies = Replies::default();
    let peers: BTreeMap<NodeId, peer::PeerSender<P::Msg>> = args
        .peers
        .iter()
        .map(|(id, addr)| {
            (
                id.clone(),
                peer::spawn_sender(args.id.clone(), id.clone(), *addr),
            )
        })
        .collect();
    let submit_tx = tx.clone();
    tokio::spawn(client::serve(
        client_listener,
        replies.clone(),
        args.max_clients,
        move |token, req: sunder_wire::Request| {
            let submit_tx = submit_tx.clone();
            let input = match req.auth {
                Some(auth) => Input::Signed {
                    token,
                    op: req.op,
                    auth,
                },
                None => Input::Client { token, op: req.op },
            };
            async move { submit_tx.send(DriverMsg::Input(input)).await.is_ok() }
        },
    ));
    if let Some(l) = peer_listener {
        let peer_tx = tx.clone();
        let dropped = Arc::new(AtomicU64::new(0));
        // Only peers may say hello: a connection naming this node itself is a stranger too.
        let peer_ids: Vec<NodeId> = args.peers.iter().map(|(id, _)| id.clone()).collect();
        tokio::spawn(peer::serve(
            l,
            peer_ids,
            args.max_peer_conns,
            move |from, msg| match peer_tx.try_send(DriverMsg::Input(Input::Peer { from, msg })) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    let n = dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.is_power_of_two() {
                        tracing::warn!(
                            dropped = n,
                            "driver input queue full; peer messages dropped"
                        );
                    }
                    true
                }
                Err(TrySendError::Closed(_)) => false,
            },
        ));
    }

    events.emit(NodeEvent::Start {
        records: recovered as u64,
        members: args.members(),
        client: client_addr.to_string(),
        peer_listen: peer_addr.map(|a| a.to_string()),
    });
    if let Some((term, vote)) = core.recovered_vote() {
        events.emit(NodeEvent::Recovered { term, vote });
    }
    let id = args.id.clone();
    spawn_ticker(tx.clone(), Duration::from_millis(args.tick_ms.max(1)))?;
    let mut driver = tokio::task::spawn_blocking(move || {
        drive(core, wal, durability, events, rx, peers, replies, &id)
    });
    tracing::info!(node = %args.id, client = %client_addr, peer_listen = ?peer_addr, recovered, "ready");

    let stopped_by_signal = tokio::select! {
        _ = sigterm.recv() => true,
        _ = sigint.recv() => true,
        r = &mut driver => return joined(r),
    };
    if stopped_by_signal {
        tracing::info!("signal received; stopping");
    }
    let _ = tx.send(DriverMsg::Stop).await;
    joined(driver.await)
}

/// The tick source: sleeps, posts, until the driver is gone. A node stopped by SIGSTOP
/// stops this thread too, so a resumed node gets one tick, not a burst.
fn spawn_ticker<M: Send + 'static>(
    tx: mpsc::Sender<DriverMsg<M>>,
    tick: Duration,
) -> Result<(), NodeError> {
    std::thread::Builder::new()
        .name("ticker".into())
        .spawn(move || {
            while tx.blocking_send(DriverMsg::Tick).is_ok() {
                std::thread::sleep(tick);
            }
        })
        .map(|_| ())
        .map_err(|e| NodeError::Runtime(format!("cannot start the ticker thread: {e}")))
}

fn joined(r: Result<Result<(), NodeError>, tokio::task::JoinError>) -> Result<(), NodeError> {
    r.map_err(|e| NodeError::Runtime(format!("driver thread failed: {e}")))?
}

#[allow(clippy::too_many_arguments)]
/// When the driver fsyncs a batch's records: before anything leaves (the contract), or
/// as a planted disk bug ([`sunder_core::protocol::DISK_BUGS`]) has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    BeforeLeaving,
    /// `reply-before-persist`: a step's messages and replies leave with its records
    /// written but not fsynced; they are fsynced when the next step lets something out
    /// (a group commit one batch late), so the last answers a node gave are always at
    /// the disk's mercy.
    AfterLeaving,
    /// `no-fsync`: never (the log skips every fsync).
    Never,
}

impl Durability {
    fn of(bugs: &[String]) -> Durability {
        if bugs.iter().any(|b| b == "no-fsync") {
            Durability::Never
        } else if bugs.iter().any(|b| b == "reply-before-persist") {
            Durability::AfterLeaving
        } else {
            Durability::BeforeLeaving
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn drive<P: Protocol>(
    mut core: P,
    mut wal: Wal,
    durability: Durability,
    mut events: EventLog,
    mut rx: mpsc::Receiver<DriverMsg<P::Msg>>,
    peers: BTreeMap<NodeId, peer::PeerSender<P::Msg>>,
    replies: Replies,
    me: &str,
) -> Result<(), NodeError> {
    let mut dropped = 0u64;
    // The ticker posts its first tick before it first sleeps, but inputs may be queued
    // ahead of it: the core's very first input must be a tick all the same.
    let mut ticked = false;
    loop {
        let mut batch = Vec::new();
        let mut stop = false;
        let mut tick = false;
        match rx.blocking_recv() {
            Some(DriverMsg::Input(i)) => batch.push(i),
            Some(DriverMsg::Tick) => tick = true,
            Some(DriverMsg::Stop) | None => stop = true,
        }
        while !stop && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(DriverMsg::Input(i)) => batch.push(i),
                Ok(DriverMsg::Tick) => tick = true,
                Ok(DriverMsg::Stop) | Err(TryRecvError::Disconnected) => stop = true,
                Err(TryRecvError::Empty) => break,
            }
        }
        if tick || !ticked {
            // First in the batch, so the core sees the others with a fresh clock. Ticks
            // that piled up behind a slow fsync count once: a stalled driver must not
            // fire a burst of election timeouts.
            batch.insert(
                0,
                Input::Tick {
                    now_ms: monotonic_ms(),
                },
            );
            ticked = true;
        }

        core.prepare(&batch);
        let mut outputs: Vec<Output<P::Msg, P::Record>> = Vec::with_capacity(batch.len());
        for input in batch {
            let mut out = Output::default();
            core.step(input, &mut out);
            if !out.is_empty() {
                outputs.push(out);
            }
        }
        if let Err(e) = persist(&mut wal, &mut outputs, durability) {
            events.emit(NodeEvent::Fatal {
                error: e.to_string(),
            });
            return Err(e);
        }

        for out in outputs {
            for (to, msg) in out.send {
                match peers.get(&to) {
                    Some(q) => {
                        if !q.send(msg) {
                            dropped += 1;
                            if dropped.is_power_of_two() {
                                tracing::debug!(peer = %to, dropped, "peer queue full; messages dropped");
                            }
                        }
                    }
                    None if to == me => tracing::warn!("core sent a message to itself; dropped"),
                    None => {
                        tracing::warn!(peer = %to, "core sent a message to an unknown node; dropped")
                    }
                }
            }
            for (token, resp) in out.reply {
                replies.send(token, resp);
            }
            for e in out.events {
                events.emit(e);
            }
        }
        if stop {
            // A clean stop leaves nothing unsynced behind.
            if let Err(e) = wal.sync() {
                tracing::warn!("log not synced at stop: {e}");
            }
            events.emit(NodeEvent::Stop);
            return Ok(());
        }
    }
}

/// Makes a batch's records durable: the last compaction in the batch replaces the log
/// (appends before it are inside the snapshot), then every later record is appended,
/// and fsynced when anything is about to leave the node.
fn persist<M, R: serde::Serialize>(
    wal: &mut Wal,
    outputs: &mut [Output<M, R>],
    durability: Durability,
) -> Result<(), NodeError> {
    let mut compact = None;
    let mut appends = Vec::new();
    // Whether anything leaves the node after these steps: then every record written so
    // far must be on disk first. Records of steps that send, answer and announce nothing
    // are written now and fsynced with the next that does: no one has seen their effect,
    // so a crash that loses them is the same as the inputs never arriving.
    let leaves = outputs
        .iter()
        .any(|o| !o.send.is_empty() || !o.reply.is_empty() || !o.events.is_empty());
    for o in outputs.iter_mut() {
        if let Some(c) = o.compact.take() {
            compact = Some(c);
            appends.clear();
        }
        appends.append(&mut o.persist);
    }
    if let Some(c) = compact {
        wal.compact_json(&c)?;
    }
    if durability == Durability::AfterLeaving {
        // The bug: the earlier batches' records, not these, are made durable.
        if leaves {
            wal.sync()?;
        }
        wal.append_json_unsynced(&appends)?;
        return Ok(());
    }
    wal.append_json_unsynced(&appends)?;
    if leaves {
        wal.sync()?;
    }
    Ok(())
}

/// The local monotonic clock in milliseconds (CLOCK_MONOTONIC: since boot, so it keeps
/// rising across a node's restarts, and libfaketime can skew it).
pub fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_MONOTONIC is always available on Linux");
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(compact: Option<Vec<u32>>, persist: Vec<u32>) -> Output<(), u32> {
        Output {
            compact,
            persist,
            ..Output::default()
        }
    }

    #[test]
    fn batch_persists_the_last_compaction_then_later_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        let mut wal = Wal::open(&path).unwrap().wal;
        wal.append_json(&[1u32, 2]).unwrap();
        let mut outputs = vec![
            out(None, vec![3]),
            out(Some(vec![10, 11]), vec![4]),
            out(None, vec![5]),
            out(Some(vec![20]), vec![]),
            out(None, vec![6, 7]),
        ];
        persist(&mut wal, &mut outputs, Durability::BeforeLeaving).unwrap();
        let o = Wal::open(&path).unwrap();
        let back: Vec<u32> = o.wal.decode_all(&o.payloads).unwrap();
        assert_eq!(back, vec![20, 6, 7]);

        // Without a compaction everything is appended, in order.
        let mut outputs = vec![out(None, vec![8]), out(None, vec![]), out(None, vec![9])];
        let mut wal = o.wal;
        persist(&mut wal, &mut outputs, Durability::BeforeLeaving).unwrap();
        let o = Wal::open(&path).unwrap();
        let back: Vec<u32> = o.wal.decode_all(&o.payloads).unwrap();
        assert_eq!(back, vec![20, 6, 7, 8, 9]);
    }

    /// Records of steps that send, answer and announce nothing are written but not
    /// fsynced; the first step that lets anything leave fsyncs them with its own.
    #[test]
    fn records_are_synced_before_anything_leaves_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        let mut wal = Wal::open(&path).unwrap().wal;
        let silent = || vec![out(None, vec![1]), out(None, vec![2])];
        persist(&mut wal, &mut silent(), Durability::BeforeLeaving).unwrap();
        persist(&mut wal, &mut silent(), Durability::BeforeLeaving).unwrap();
        assert_eq!(wal.syncs(), 0);
        let leaving: [fn(&mut Output<(), u32>); 3] = [
            |o| o.send.push(("n2".into(), ())),
            |o| {
                let token = sunder_core::ReqToken { conn: 1, id: 1 };
                o.reply
                    .push((token, sunder_wire::Response::ok(1, serde_json::Value::Null)))
            },
            |o| o.events.push(NodeEvent::Stop),
        ];
        for (i, leave) in leaving.iter().enumerate() {
            // A step that persists nothing but sends still syncs what came before it.
            let mut outputs = vec![out(None, vec![]), out(None, vec![])];
            leave(&mut outputs[1]);
            persist(&mut wal, &mut outputs, Durability::BeforeLeaving).unwrap();
            assert_eq!(wal.syncs(), 1 + i as u64);
            persist(&mut wal, &mut outputs, Durability::BeforeLeaving).unwrap(); // nothing new: no second fsync
            assert_eq!(wal.syncs(), 1 + i as u64);
            persist(&mut wal, &mut silent(), Durability::BeforeLeaving).unwrap();
        }
        let o = Wal::open(&path).unwrap();
        let back: Vec<u32> = o.wal.decode_all(&o.payloads).unwrap();
        assert_eq!(back.len(), 10);
    }

    /// The planted disk bugs: `reply-before-persist` fsyncs a batch's records only with the
    /// next batch that lets something out, `no-fsync` never syncs at all.
    #[test]
    fn disk_bugs_move_or_skip_the_fsync() {
        assert_eq!(Durability::of(&[]), Durability::BeforeLeaving);
        assert_eq!(
            Durability::of(&["reply-before-persist".into()]),
            Durability::AfterLeaving
        );
        assert_eq!(Durability::of(&["no-fsync".into()]), Durability::Never);
        let dir = tempfile::tempdir().unwrap();
        let sending = || {
            let mut o = out(None, vec![1]);
            o.send.push(("n2".into(), ()));
            vec![o]
        };
        let mut wal = Wal::open(&dir.path().join("a.log")).unwrap().wal;
        persist(&mut wal, &mut sending(), Durability::AfterLeaving).unwrap();
        assert_eq!(
            wal.syncs(),
            0,
            "records still unsynced when the message leaves"
        );
        persist(&mut wal, &mut sending(), Durability::AfterLeaving).unwrap();
        assert_eq!(
            wal.syncs(),
            1,
            "the first batch synced by the second, not the second"
        );
        persist(&mut wal, &mut sending(), Durability::AfterLeaving).unwrap();
        assert_eq!(wal.syncs(), 2);
        let mut wal = Wal::open(&dir.path().join("b.log")).unwrap().wal;
        wal.skip_fsync();
        persist(&mut wal, &mut sending(), Durability::BeforeLeaving).unwrap();
        wal.compact_json(&[7u32]).unwrap();
        wal.append_json(&[8u32]).unwrap();
        assert_eq!(wal.syncs(), 0);
        let o = Wal::open(&dir.path().join("b.log")).unwrap();
        let back: Vec<u32> = o.wal.decode_all(&o.payloads).unwrap();
        assert_eq!(back, vec![7, 8], "written all the same");
    }

    #[test]
    fn monotonic_clock_rises() {
        let a = monotonic_ms();
        std::thread::sleep(Duration::from_millis(5));
        assert!(monotonic_ms() > a);
    }
}
