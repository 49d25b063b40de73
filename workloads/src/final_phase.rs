//! The final phase: after the faults are healed, read what each node ended with.
//!
//! For a set, every node is asked for the whole set, in parallel; a node that does not
//! answer is retried a few times. Each attempt is an ordinary operation in the history
//! (the set checker takes each node's last successful read as its final read).

use crate::client::{Client, Endpoint, Outcome};
use crate::config::{SET_KEY, WorkloadConfig, WorkloadKind};
use crate::jsonlines::JsonLinesClient;
use crate::recorder::Recorder;
use crate::worker::call_recorded;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use sunder_checker::Process;
use sunder_wire::Op;

/// How many times a node is asked before its final read counts as missing.
pub const FINAL_ATTEMPTS: usize = 5;
/// The pause between two attempts on the same node.
const RETRY_PAUSE: Duration = Duration::from_millis(300);

/// Which nodes gave a final read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FinalSummary {
    pub answered: Vec<String>,
    pub missing: Vec<String>,
}

/// Runs the final phase of `cfg.kind` against sunder's JSON-lines protocol. The register
/// workload has none.
pub async fn final_phase(
    cfg: &WorkloadConfig,
    endpoints: &[Endpoint],
    recorder: Arc<Recorder>,
) -> FinalSummary {
    final_phase_with(
        cfg,
        Arc::new(JsonLinesClient::new(endpoints.to_vec())),
        recorder,
    )
    .await
}

/// [`final_phase`] with any client adapter.
pub async fn final_phase_with<C: Client>(
    cfg: &WorkloadConfig,
    client: Arc<C>,
    recorder: Arc<Recorder>,
) -> FinalSummary {
    if cfg.kind != WorkloadKind::Set {
        return FinalSummary::default();
    }
    let n = client.endpoints().len();
    let base = recorder.fresh_process();
    let mut tasks = tokio::task::JoinSet::new();
    for node in 0..n {
        let (client, recorder, cfg) = (client.clone(), recorder.clone(), cfg.clone());
        tasks.spawn(async move {
            let op = Op::Read {
                key: SET_KEY.to_string(),
            };
            // Processes base+node, base+node+n, ...: fresh, and disjoint between nodes.
            let mut process = base + node as u64;
            for attempt in 0..FINAL_ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                match call_recorded(
                    &*client,
                    &recorder,
                    Process::Client(process),
                    node,
                    &op,
                    &cfg,
                )
                .await
                {
                    Outcome::Ok(_) | Outcome::Committed(_) => return (node, true),
                    Outcome::Info { .. } => process += n as u64,
                    Outcome::Fail { .. } => {}
                }
            }
            (node, false)
        });
    }
    let mut answered = vec![false; n];
    while let Some(res) = tasks.join_next().await {
        match res {
            Ok((node, ok)) => answered[node] = ok,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => tracing::warn!("final read task ended abnormally: {e}"),
        }
    }
    let mut summary = FinalSummary::default();
    for (ep, ok) in client.endpoints().iter().zip(answered) {
        if ok {
            &mut summary.answered
        } else {
            &mut summary.missing
        }
        .push(ep.id.clone());
    }
    summary
}
