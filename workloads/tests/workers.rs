//! Workers and the final phase against fake nodes: the history has the shape the checkers
//! rely on, leader hints are followed, `info` hands out fresh processes, a seed replays the
//! same operations, and the set checker judges what the final phase read.

mod common;

use common::{Action, FakeNode, dead_addr, start};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sunder_checker::{Event, EventType, History, Process, Verdict};
use sunder_wire::{Op, Response, errors};
use sunder_workloads::{
    Endpoint, Recorder, WorkloadConfig, WorkloadKind, final_phase, run_workers,
};

/// A register node; `silent` ignores every tenth request (the client times out: info).
async fn register_node(silent: bool) -> FakeNode {
    let state: Mutex<HashMap<String, i64>> = Mutex::default();
    let count = AtomicUsize::new(0);
    start(Arc::new(move |req| {
        if silent && count.fetch_add(1, Ordering::SeqCst) % 10 == 9 {
            return Action::Silent;
        }
        let mut s = state.lock().unwrap();
        let resp = match &req.op {
            Op::Read { key } => Response::ok(req.id, s.get(key).map_or(Value::Null, |v| json!(v))),
            Op::Write { key, value } => {
                s.insert(key.clone(), *value);
                Response::ok(req.id, Value::Null)
            }
            Op::Cas { key, from, to } if s.get(key) == Some(from) => {
                s.insert(key.clone(), *to);
                Response::ok(req.id, Value::Null)
            }
            Op::Cas { .. } => Response::error(req.id, errors::CAS_MISMATCH, true),
            other => panic!("unexpected {other:?}"),
        };
        Action::Reply(Duration::ZERO, resp)
    }))
    .await
}

/// A node that always points at n1.
async fn follower() -> FakeNode {
    start(Arc::new(|req| {
        Action::Reply(
            Duration::ZERO,
            Response::not_leader(req.id, Some("n1".into())),
        )
    }))
    .await
}

fn cfg(kind: WorkloadKind, seed: u64) -> WorkloadConfig {
    WorkloadConfig {
        kind,
        key_count: 2,
        concurrency: 4,
        rate: Some(300.0),
        op_timeout: Duration::from_millis(150),
        seed,
    }
}

async fn run(
    cfg: &WorkloadConfig,
    endpoints: &[Endpoint],
    for_how_long: Duration,
) -> (Arc<Recorder>, sunder_workloads::WorkerSummary) {
    let rec = Arc::new(Recorder::new(Instant::now(), Box::new(std::io::sink())));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn({
        let (cfg, endpoints, rec) = (cfg.clone(), endpoints.to_vec(), rec.clone());
        async move { run_workers(&cfg, endpoints, rec, stop).await }
    });
    tokio::time::sleep(for_how_long).await;
    stop_tx.send(true).unwrap();
    let summary = workers.await.unwrap();
    (rec, summary)
}

/// Each worker's operations, as (f, key, invoke value), in order.
fn ops_by_worker(events: &[Event], concurrency: u64) -> Vec<Vec<(String, Option<String>, Value)>> {
    let mut out = vec![Vec::new(); concurrency as usize];
    for e in events.iter().filter(|e| e.kind == EventType::Invoke) {
        let Process::Client(p) = e.process else {
            continue;
        };
        out[(p % concurrency) as usize].push((e.f.clone(), e.key.clone(), e.value.clone()));
    }
    out
}

#[tokio::test]
async fn register_history_shape_hints_and_fresh_processes() {
    // Three nodes, so that following the hint (n2 → n1) differs from rotating (n2 → n3).
    let (n1, n2, n3) = (
        register_node(true).await,
        follower().await,
        follower().await,
    );
    let endpoints = vec![
        Endpoint {
            id: "n1".into(),
            addr: n1.addr,
        },
        Endpoint {
            id: "n2".into(),
            addr: n2.addr,
        },
        Endpoint {
            id: "n3".into(),
            addr: n3.addr,
        },
    ];
    let cfg = cfg(WorkloadKind::Register, 42);
    let (rec, summary) = run(&cfg, &endpoints, Duration::from_millis(700)).await;
    let events = rec.events();

    let counts = rec.counts();
    assert_eq!(
        (summary.invoked, summary.ok, summary.fail, summary.info),
        (counts.invoke, counts.ok, counts.fail, counts.info)
    );
    assert!(
        summary.ok > 20 && summary.info > 0 && summary.fail > 0,
        "{summary:?}"
    );

    // Per process: invoke then its completion, same f/key, nothing after an info.
    let mut open: HashMap<u64, &Event> = HashMap::new();
    let mut retired: BTreeSet<u64> = BTreeSet::new();
    // Per worker: the process it uses now, and where its last op failed not-leader.
    let mut current: HashMap<u64, u64> = HashMap::new();
    let mut after_hint: HashMap<u64, bool> = HashMap::new();
    let mut hints_followed = 0;
    for e in &events {
        let Process::Client(p) = e.process else {
            panic!("no nemesis here")
        };
        let w = p % 4;
        assert!(!retired.contains(&p), "process {p} reused after info");
        assert!(e.node.is_some() && e.key.is_some());
        if e.kind == EventType::Invoke {
            assert_eq!(
                *current.entry(w).or_insert(w),
                p,
                "worker {w} jumped process"
            );
            match e.f.as_str() {
                "read" => assert_eq!(e.value, Value::Null),
                "write" => assert!(e.value.is_i64()),
                "cas" => assert!(e.value.as_array().is_some_and(|a| a.len() == 2)),
                f => panic!("unexpected f {f}"),
            }
            if after_hint.remove(&w) == Some(true) {
                assert_eq!(e.node.as_deref(), Some("n1"), "hint not followed: {e:?}");
                hints_followed += 1;
            }
            assert!(open.insert(p, e).is_none(), "process {p} has two ops open");
            continue;
        }
        let inv = open.remove(&p).expect("completion without invocation");
        assert_eq!((&inv.f, &inv.key, &inv.node), (&e.f, &e.key, &e.node));
        if e.f != "read" || e.kind != EventType::Ok {
            assert_eq!(inv.value, e.value, "completion value");
        }
        if e.kind == EventType::Info {
            retired.insert(p);
            current.insert(w, p + 4);
        }
        if e.kind == EventType::Fail && e.error.as_deref() == Some(errors::NOT_LEADER) {
            after_hint.insert(w, true);
        }
    }
    assert!(open.is_empty(), "ops left open at stop: {open:?}");
    assert!(
        hints_followed > 0,
        "no not-leader answer was ever followed up"
    );
    // Written values are unique across workers and keys.
    let written: Vec<i64> = events
        .iter()
        .filter(|e| e.kind == EventType::Invoke)
        .filter_map(|e| match e.f.as_str() {
            "write" => e.value.as_i64(),
            "cas" => e.value[1].as_i64(),
            _ => None,
        })
        .collect();
    assert_eq!(written.len(), written.iter().collect::<BTreeSet<_>>().len());
}

#[tokio::test]
async fn after_a_timeout_odd_workers_stay_and_even_workers_move_on() {
    // Two nodes that each ignore every tenth request (a timeout: info) and answer the rest.
    let (n1, n2) = (register_node(true).await, register_node(true).await);
    let endpoints = vec![
        Endpoint {
            id: "n1".into(),
            addr: n1.addr,
        },
        Endpoint {
            id: "n2".into(),
            addr: n2.addr,
        },
    ];
    let cfg = cfg(WorkloadKind::Register, 7);
    let (rec, _) = run(&cfg, &endpoints, Duration::from_millis(900)).await;
    // For each worker: the node of its last info, waiting for its next invocation.
    let mut timed_out_on: HashMap<u64, String> = HashMap::new();
    let (mut stayed, mut moved) = (0, 0);
    for e in rec.events() {
        let Process::Client(p) = e.process else {
            continue;
        };
        let w = p % 4;
        let node = e.node.clone().expect("client events name their node");
        match e.kind {
            EventType::Info => {
                timed_out_on.insert(w, node);
            }
            EventType::Invoke => {
                if let Some(before) = timed_out_on.remove(&w) {
                    if w % 2 == 1 {
                        assert_eq!(node, before, "odd worker {w} left its node");
                        stayed += 1;
                    } else {
                        assert_ne!(node, before, "even worker {w} stayed");
                        moved += 1;
                    }
                }
            }
            _ => {}
        }
    }
    assert!(stayed > 0 && moved > 0, "stayed {stayed}, moved {moved}");
}

#[tokio::test]
async fn the_same_seed_replays_the_same_operations() {
    let node = register_node(false).await;
    let endpoints = vec![Endpoint {
        id: "n1".into(),
        addr: node.addr,
    }];
    let mut runs = Vec::new();
    for seed in [5, 5, 6] {
        let (rec, _) = run(
            &cfg(WorkloadKind::Register, seed),
            &endpoints,
            Duration::from_millis(500),
        )
        .await;
        runs.push(ops_by_worker(&rec.events(), 4));
    }
    let same_prefix = |a: &[_], b: &[_]| {
        let n = a.len().min(b.len());
        assert!(n > 5, "too few operations to compare");
        a[..n] == b[..n]
    };
    for (w, (a, b)) in runs[0].iter().zip(&runs[1]).enumerate() {
        assert!(same_prefix(a, b), "worker {w} differs with the same seed");
    }
    assert!(
        (0..4).any(|w| !same_prefix(&runs[0][w], &runs[2][w])),
        "another seed, same ops"
    );
}

/// Three nodes sharing one set; `lossy` acknowledges multiples of 5 without keeping them.
async fn set_cluster(lossy: bool) -> Vec<FakeNode> {
    let set: Arc<Mutex<BTreeSet<i64>>> = Arc::default();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let set = set.clone();
        nodes.push(
            start(Arc::new(move |req| {
                let mut s = set.lock().unwrap();
                let resp = match &req.op {
                    Op::Add { value, .. } => {
                        if !(lossy && value % 5 == 0) {
                            s.insert(*value);
                        }
                        Response::ok(req.id, Value::Null)
                    }
                    Op::Read { .. } => Response::ok(req.id, json!(s.iter().collect::<Vec<_>>())),
                    other => panic!("unexpected {other:?}"),
                };
                Action::Reply(Duration::ZERO, resp)
            }))
            .await,
        );
    }
    nodes
}

async fn set_run(
    nodes: &[FakeNode],
    extra: Option<Endpoint>,
) -> (History, sunder_workloads::FinalSummary) {
    let mut endpoints: Vec<Endpoint> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| Endpoint {
            id: format!("n{}", i + 1),
            addr: n.addr,
        })
        .collect();
    let cfg = cfg(WorkloadKind::Set, 3);
    let (rec, summary) = run(&cfg, &endpoints, Duration::from_millis(300)).await;
    assert!(summary.ok > 10);
    endpoints.extend(extra);
    let fin = final_phase(&cfg, &endpoints, rec.clone()).await;
    (History::new(rec.events()), fin)
}

#[tokio::test]
async fn set_final_reads_on_every_node_judged_by_the_set_checker() {
    let (history, fin) = set_run(&set_cluster(false).await, None).await;
    assert_eq!(fin.answered, ["n1", "n2", "n3"]);
    let report = sunder_checker::set::check(&history);
    assert_eq!(report.verdict, Verdict::Valid, "{:?}", report.reasons);
    assert_eq!(report.final_reads.len(), 3);
    assert!(report.acknowledged > 10);

    let (history, _) = set_run(&set_cluster(true).await, None).await;
    let report = sunder_checker::set::check(&history);
    assert_eq!(report.verdict, Verdict::Invalid);
    assert!(
        report.lost.count > 0 && report.lost.elements.iter().all(|x| x % 5 == 0),
        "{:?}",
        report.lost
    );
}

#[tokio::test]
async fn a_node_without_a_final_read_makes_the_set_unknown() {
    let extra = Endpoint {
        id: "n4".into(),
        addr: dead_addr().await,
    };
    let (history, fin) = set_run(&set_cluster(false).await, Some(extra)).await;
    assert_eq!(fin.missing, ["n4"]);
    let failed_reads = history
        .events
        .iter()
        .filter(|e| e.node.as_deref() == Some("n4") && e.kind == EventType::Fail)
        .count();
    assert_eq!(failed_reads, sunder_workloads::final_phase::FINAL_ATTEMPTS);
    let report = sunder_checker::set::check(&history);
    assert_eq!(report.verdict, Verdict::Unknown, "{:?}", report.reasons);
    assert_eq!(report.final_reads["n4"].event, None);
}

#[tokio::test]
async fn unpaced_workers_stop_when_the_stop_sender_is_dropped() {
    let node = register_node(true).await;
    let endpoints = vec![Endpoint {
        id: "n1".into(),
        addr: node.addr,
    }];
    let cfg = WorkloadConfig {
        rate: None,
        ..cfg(WorkloadKind::Register, 1)
    };
    let rec = Arc::new(Recorder::new(Instant::now(), Box::new(std::io::sink())));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn({
        let rec = rec.clone();
        async move { run_workers(&cfg, endpoints, rec, stop).await }
    });
    while rec.counts().ok < 50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(stop_tx);
    // Generous: only here so that a regression fails instead of hanging the suite.
    let summary = tokio::time::timeout(Duration::from_secs(20), workers)
        .await
        .expect("workers did not stop")
        .unwrap();
    assert_eq!(summary.invoked, rec.counts().invoke);
}
