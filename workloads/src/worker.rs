//! The workers: each pulls operations from its own generator, paces itself, and records
//! every invocation and completion.
//!
//! ```text
//!  Generator ─op─► Pacer wait ─► record invoke ─► Client::call(node) ─► record ok/fail/info
//!                                                                    └─ info: fresh process
//! ```

use crate::client::{Client, Endpoint, Outcome};
use crate::config::WorkloadConfig;
use crate::generator::Generator;
use crate::jsonlines::JsonLinesClient;
use crate::pacer::Pacer;
use crate::recorder::Recorder;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use sunder_checker::{Committed, EventType, Process};
use sunder_wire::{Op, errors};
use tokio::sync::watch;
use tokio::time::Instant;

/// What the workers did, summed over all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WorkerSummary {
    /// Operations invoked (each ended ok, fail or info).
    pub invoked: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

impl WorkerSummary {
    fn add(&mut self, o: WorkerSummary) {
        self.invoked += o.invoked;
        self.ok += o.ok;
        self.fail += o.fail;
        self.info += o.info;
    }
}

/// Runs `cfg.concurrency` workers against sunder's JSON-lines protocol until `stop` holds
/// `true` (or its sender is dropped). Returns once every worker has finished the operation
/// it had in flight: it completes or times out as `info`.
pub async fn run_workers(
    cfg: &WorkloadConfig,
    endpoints: Vec<Endpoint>,
    recorder: Arc<Recorder>,
    stop: watch::Receiver<bool>,
) -> WorkerSummary {
    run_workers_with(
        cfg,
        Arc::new(JsonLinesClient::new(endpoints)),
        recorder,
        stop,
    )
    .await
}

/// [`run_workers`] with any client adapter.
///
/// Panics when the client has no endpoint: the caller validates the cluster.
pub async fn run_workers_with<C: Client>(
    cfg: &WorkloadConfig,
    client: Arc<C>,
    recorder: Arc<Recorder>,
    stop: watch::Receiver<bool>,
) -> WorkerSummary {
    assert!(
        !client.endpoints().is_empty(),
        "workers need at least one node"
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..cfg.concurrency {
        let w = Worker::new(cfg, i, client.clone(), recorder.clone());
        tasks.spawn(w.run(stop.clone()));
    }
    let mut total = WorkerSummary::default();
    while let Some(res) = tasks.join_next().await {
        match res {
            Ok(s) => total.add(s),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => tracing::warn!("worker task ended abnormally: {e}"),
        }
    }
    total
}

struct Worker<C> {
    cfg: WorkloadConfig,
    client: Arc<C>,
    recorder: Arc<Recorder>,
    generator: Generator,
    pacer: Pacer,
    process: u64,
    node: usize,
    /// Stays on its node after a timeout (odd workers) instead of moving on (even ones).
    /// A node cut off from the cluster times writes out but may still answer reads: a
    /// client that stays is the one that reads from a deposed leader, the way a real
    /// application pinned to one server would.
    sticky: bool,
    /// The last operation failed for want of a node able to take it.
    backoff: bool,
    summary: WorkerSummary,
}

/// The least pause after a failure that moved the worker to another node.
const BACKOFF: Duration = Duration::from_millis(20);

impl<C: Client> Worker<C> {
    fn new(cfg: &WorkloadConfig, i: usize, client: Arc<C>, recorder: Arc<Recorder>) -> Self {
        let node = i % client.endpoints().len();
        Worker {
            cfg: cfg.clone(),
            generator: Generator::for_worker(cfg, i).with_cas(client.can_cas()),
            pacer: Pacer::new(cfg.rate, cfg.concurrency, cfg.seed, i),
            client,
            recorder,
            process: i as u64,
            node,
            sticky: i % 2 == 1,
            backoff: false,
            summary: WorkerSummary::default(),
        }
    }

    async fn run(mut self, mut stop: watch::Receiver<bool>) -> WorkerSummary {
        let mut next_at = Instant::now();
        loop {
            // A dropped sender stops the workers too (has_changed errs once it is gone).
            if *stop.borrow() || stop.has_changed().is_err() {
                break;
            }
            let op = self.generator.next().expect("generators never end");
            let mut wake = self.pacer.next_gap().map(|gap| {
                // A worker that fell behind starts again from now rather than bursting.
                next_at = (next_at + gap).max(Instant::now());
                next_at
            });
            if self.backoff {
                wake = Some(wake.unwrap_or(Instant::now()).max(Instant::now() + BACKOFF));
            }
            if let Some(wake) = wake {
                tokio::select! {
                    _ = tokio::time::sleep_until(wake) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
            self.backoff = self.perform(&op).await;
        }
        self.summary
    }

    /// Performs `op`; true when the node could not take it, so the worker should back off.
    async fn perform(&mut self, op: &Op) -> bool {
        let outcome = call_recorded(
            &*self.client,
            &self.recorder,
            Process::Client(self.process),
            self.node,
            op,
            &self.cfg,
        )
        .await;
        self.summary.invoked += 1;
        let n = self.client.endpoints().len();
        match &outcome {
            Outcome::Ok(_) | Outcome::Committed(_) => {
                self.summary.ok += 1;
                false
            }
            Outcome::Fail { error, leader } => {
                self.summary.fail += 1;
                let hinted = leader
                    .as_deref()
                    .and_then(|l| self.client.endpoints().iter().position(|e| e.id == l));
                if let Some(i) = hinted.filter(|_| error == errors::NOT_LEADER) {
                    self.node = i;
                    false
                } else if error == errors::CAS_MISMATCH {
                    false
                } else {
                    // Down, refusing, or leaderless: try the next node, without hammering
                    // a cluster that answers every request with an instant failure.
                    self.node = (self.node + 1) % n;
                    true
                }
            }
            Outcome::Info { .. } => {
                self.summary.info += 1;
                // Jepsen's rule: the op may still be running, so this process cannot invoke
                // another; the worker carries on under a fresh id.
                self.process += self.cfg.concurrency as u64;
                if !self.sticky {
                    self.node = (self.node + 1) % n;
                }
                false
            }
        }
    }
}

/// Records `op`'s invocation, sends it to `node`, records and returns its completion.
pub(crate) async fn call_recorded<C: Client>(
    client: &C,
    recorder: &Recorder,
    process: Process,
    node: usize,
    op: &Op,
    cfg: &WorkloadConfig,
) -> Outcome {
    let node_id = client.endpoints()[node].id.as_str();
    let f = op.name();
    let key = op.key();
    recorder.record(
        process,
        EventType::Invoke,
        f,
        key,
        op.invoke_value(),
        None,
        Some(node_id),
    );
    let outcome = client.call(node, op, cfg.op_timeout).await;
    let value = completion_value(op, &outcome);
    let error = outcome.error().map(str::to_string);
    let committed = match &outcome {
        Outcome::Committed(at) => Some(Committed {
            index: at.index,
            term: at.term,
        }),
        _ => None,
    };
    recorder.record_at(
        process,
        outcome.event_type(),
        f,
        key,
        value,
        error,
        Some(node_id),
        committed,
    );
    outcome
}

/// The history value of a completion: a read's result when it succeeded, otherwise the
/// same value as the invocation.
pub fn completion_value(op: &Op, outcome: &Outcome) -> Value {
    match (op, outcome) {
        (Op::Read { .. } | Op::Balances { .. } | Op::Status | Op::Dump, Outcome::Ok(v)) => {
            v.clone()
        }
        _ => op.invoke_value(),
    }
}
