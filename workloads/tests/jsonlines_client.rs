//! The JSON-lines client against a fake node: classification of every way a call can end,
//! pipelining on one connection, reconnection after a hang-up.

mod common;

use common::{Action, FakeNode, dead_addr, start};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use sunder_wire::{Op, Response, errors};
use sunder_workloads::{Client, Endpoint, JsonLinesClient, Outcome};

/// Answers a write by its key: `echo` echoes the value after `value` ms, the others act as named.
async fn scripted() -> FakeNode {
    start(Arc::new(|req| {
        let id = req.id;
        let Op::Write { key, value } = &req.op else {
            panic!("writes only")
        };
        let now = Duration::ZERO;
        match key.as_str() {
            "echo" => Action::Reply(
                Duration::from_millis(*value as u64),
                Response::ok(id, json!(value)),
            ),
            "not-leader" => Action::Reply(now, Response::not_leader(id, Some("n2".into()))),
            "cas-mismatch" => Action::Reply(now, Response::error(id, errors::CAS_MISMATCH, true)),
            "indefinite" => Action::Reply(now, Response::error(id, errors::TIMEOUT, false)),
            "never" => Action::Silent,
            "drop" => Action::HangUp,
            "garbage" => Action::Garbage,
            other => panic!("unscripted key {other}"),
        }
    }))
    .await
}

fn write(key: &str, value: i64) -> Op {
    Op::Write {
        key: key.into(),
        value,
    }
}

fn client(node: &FakeNode) -> JsonLinesClient {
    JsonLinesClient::new(vec![Endpoint {
        id: "n1".into(),
        addr: node.addr,
    }])
}

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn many_requests_in_flight_on_one_connection_answered_out_of_order() {
    let node = scripted().await;
    let c = Arc::new(client(&node));
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..40i64 {
        let c = c.clone();
        // The first sent is answered last.
        calls.spawn(async move { (i, c.call(0, &write("echo", (40 - i) * 5), T).await) });
    }
    while let Some(r) = calls.join_next().await {
        let (i, outcome) = r.unwrap();
        assert_eq!(outcome, Outcome::Ok(json!((40 - i) * 5)), "call {i}");
    }
    assert_eq!(node.connections.load(Ordering::SeqCst), 1);
    assert!(
        node.max_in_flight.load(Ordering::SeqCst) > 1,
        "requests were not pipelined"
    );
}

#[tokio::test]
async fn node_errors_are_fail_or_info_by_definiteness() {
    let node = scripted().await;
    let c = client(&node);
    assert_eq!(
        c.call(0, &write("not-leader", 1), T).await,
        Outcome::Fail {
            error: errors::NOT_LEADER.into(),
            leader: Some("n2".into())
        }
    );
    assert_eq!(
        c.call(0, &write("cas-mismatch", 1), T).await,
        Outcome::Fail {
            error: errors::CAS_MISMATCH.into(),
            leader: None
        }
    );
    assert_eq!(
        c.call(0, &write("indefinite", 1), T).await,
        Outcome::Info {
            error: errors::TIMEOUT.into()
        }
    );
}

#[tokio::test]
async fn no_answer_in_time_is_info_and_the_connection_stays_usable() {
    let node = scripted().await;
    let c = client(&node);
    let out = c
        .call(0, &write("never", 1), Duration::from_millis(200))
        .await;
    assert_eq!(
        out,
        Outcome::Info {
            error: sunder_workloads::client::errors::TIMEOUT.into()
        }
    );
    // A reply that comes after the timeout is dropped; the next call is unaffected.
    assert_eq!(
        c.call(0, &write("echo", 300), T).await,
        Outcome::Ok(json!(300))
    );
    let late = c
        .call(0, &write("echo", 400), Duration::from_millis(100))
        .await;
    assert!(matches!(late, Outcome::Info { .. }), "{late:?}");
    assert_eq!(c.call(0, &write("echo", 1), T).await, Outcome::Ok(json!(1)));
    assert_eq!(node.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_hang_up_makes_every_request_in_flight_info_then_reconnects() {
    let node = scripted().await;
    let c = Arc::new(client(&node));
    let c2 = c.clone();
    let pending = tokio::spawn(async move { c2.call(0, &write("echo", 3000), T).await });
    // Let the slow request reach the node before hanging up.
    while node.max_in_flight.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let lost = sunder_workloads::client::errors::CONNECTION_LOST;
    assert_eq!(
        c.call(0, &write("drop", 1), T).await,
        Outcome::Info { error: lost.into() }
    );
    assert_eq!(pending.await.unwrap(), Outcome::Info { error: lost.into() });
    assert_eq!(c.call(0, &write("echo", 1), T).await, Outcome::Ok(json!(1)));
    assert_eq!(node.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connection_refused_is_fail_and_other_nodes_still_work() {
    let node = scripted().await;
    let dead = dead_addr().await;
    let c = JsonLinesClient::new(vec![
        Endpoint {
            id: "n1".into(),
            addr: dead,
        },
        Endpoint {
            id: "n2".into(),
            addr: node.addr,
        },
    ]);
    match c.call(0, &write("echo", 1), T).await {
        Outcome::Fail {
            error,
            leader: None,
        } => {
            assert!(
                error.starts_with(sunder_workloads::client::errors::CONNECT),
                "{error}"
            )
        }
        other => panic!("expected a definite failure, got {other:?}"),
    }
    assert_eq!(c.call(1, &write("echo", 2), T).await, Outcome::Ok(json!(2)));
}

#[tokio::test]
async fn a_garbled_answer_drops_the_connection_and_its_requests_end_info() {
    let node = scripted().await;
    let c = Arc::new(client(&node));
    let c2 = c.clone();
    let pending = tokio::spawn(async move { c2.call(0, &write("echo", 3000), T).await });
    while node.max_in_flight.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let lost = sunder_workloads::client::errors::CONNECTION_LOST;
    assert_eq!(
        c.call(0, &write("garbage", 1), T).await,
        Outcome::Info { error: lost.into() }
    );
    assert_eq!(pending.await.unwrap(), Outcome::Info { error: lost.into() });
    assert_eq!(c.call(0, &write("echo", 1), T).await, Outcome::Ok(json!(1)));
}
