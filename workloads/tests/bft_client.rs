//! The BFT client against fake replicas: it accepts a result only from f+1 replicas that
//! signed the same one for this very request, ignores the rest, and tells "never sent"
//! (fail) from "may have happened" (info).

mod common;

use common::{Action, FakeNode, dead_addr, start};
use ed25519_dalek::{Signer, SigningKey, Verifier};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use sunder_wire::bft::{
    ReplyBatch, batch_reply_bytes, merkle, reply_bytes, reply_leaf, request_bytes, to_hex,
};
use sunder_wire::{Op, ReplySig, Request, Response};
use sunder_workloads::{BftClient, Client, Dialer, Endpoint, Outcome};

/// How a fake replica answers a signed request.
#[derive(Clone, Copy, PartialEq)]
enum Replica {
    /// Signs `value` correctly.
    Honest(i64),
    /// Signs `value` with a key that is not its own.
    WrongKey(i64),
    /// Signs, for another timestamp than the request's.
    OtherTs(i64),
    /// Signs `value` as the second of three replies answered with one signature.
    Batched(i64),
    /// As `Batched`, but the proof's first sibling hash is altered.
    BadPath(i64),
    Silent,
}

fn secret(i: usize) -> [u8; 32] {
    [i as u8 + 1; 32]
}

fn client_secret() -> [u8; 32] {
    [99; 32]
}

async fn replica(i: usize, how: Replica) -> FakeNode {
    let id = format!("n{}", i + 1);
    start(Arc::new(move |req: &Request| {
        let auth = req.auth.clone().expect("data requests are signed");
        // The request's own signature must verify under the client's key.
        let client = SigningKey::from_bytes(&client_secret()).verifying_key();
        let sig =
            ed25519_dalek::Signature::from_slice(&sunder_wire::bft::from_hex(&auth.sig).unwrap())
                .unwrap();
        assert!(
            client
                .verify(&request_bytes(auth.client, auth.ts, &req.op), &sig)
                .is_ok()
        );
        let (value, key, ts) = match how {
            Replica::Silent => return Action::Silent,
            Replica::Honest(v) => (v, secret(i), auth.ts),
            Replica::WrongKey(v) => (v, [7; 32], auth.ts),
            Replica::OtherTs(v) => (v, secret(i), auth.ts + 1),
            Replica::Batched(v) | Replica::BadPath(v) => {
                let mut resp = Response::ok(req.id, json!(v));
                let mine = reply_leaf(&reply_bytes(&id, 0, auth.client, auth.ts, &resp));
                let others =
                    |c: u64| reply_leaf(&reply_bytes(&id, 0, c, 1, &Response::ok(0, json!(0))));
                let (root, paths) = merkle(&[others(7), mine, others(8)]).unwrap();
                let mut path: Vec<String> = paths[1].iter().map(|h| to_hex(h)).collect();
                if how == Replica::BadPath(v) {
                    path[0] = to_hex(&[0xab; 32]);
                }
                let bytes = batch_reply_bytes(&id, 0, 3, &root);
                resp.signed = Some(Box::new(ReplySig {
                    replica: id.clone(),
                    view: 0,
                    client: auth.client,
                    ts: auth.ts,
                    sig: to_hex(&SigningKey::from_bytes(&secret(i)).sign(&bytes).to_bytes()),
                    batch: Some(ReplyBatch {
                        index: 1,
                        count: 3,
                        path,
                    }),
                }));
                return Action::Reply(Duration::ZERO, resp);
            }
        };
        let mut resp = Response::ok(req.id, json!(value));
        let bytes = reply_bytes(&id, 0, auth.client, ts, &resp);
        resp.signed = Some(Box::new(ReplySig {
            replica: id.clone(),
            view: 0,
            client: auth.client,
            ts,
            sig: to_hex(&SigningKey::from_bytes(&key).sign(&bytes).to_bytes()),
            batch: None,
        }));
        Action::Reply(Duration::ZERO, resp)
    }))
    .await
}

async fn client(nodes: &[&FakeNode], dead: usize) -> BftClient {
    let mut endpoints: Vec<Endpoint> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| Endpoint {
            id: format!("n{}", i + 1),
            addr: n.addr,
        })
        .collect();
    for k in 0..dead {
        endpoints.push(Endpoint {
            id: format!("n{}", nodes.len() + k + 1),
            addr: dead_addr().await,
        });
    }
    let keys: Vec<(String, [u8; 32])> = (0..endpoints.len())
        .map(|i| {
            let public = SigningKey::from_bytes(&secret(i))
                .verifying_key()
                .to_bytes();
            (format!("n{}", i + 1), public)
        })
        .collect();
    BftClient::new(
        endpoints,
        Dialer::Direct,
        &[client_secret()],
        &keys,
        Duration::from_millis(20),
    )
    .unwrap()
}

fn read() -> Op {
    Op::Read { key: "k".into() }
}

#[tokio::test]
async fn f_plus_one_matching_signed_replies_are_a_result() {
    let n = [
        replica(0, Replica::Honest(5)).await,
        replica(1, Replica::Honest(5)).await,
        replica(2, Replica::Silent).await,
        replica(3, Replica::Silent).await,
    ];
    let c = client(&[&n[0], &n[1], &n[2], &n[3]], 0).await;
    let out = c.call(0, &read(), Duration::from_secs(10)).await;
    assert_eq!(out, Outcome::Ok(json!(5)));
    assert_eq!(c.bad_replies(), 0);
}

#[tokio::test]
async fn a_reply_signed_as_one_of_a_batch_counts_and_one_whose_proof_was_altered_does_not() {
    let n = [
        replica(0, Replica::Batched(5)).await,
        replica(1, Replica::Honest(5)).await,
        replica(2, Replica::Silent).await,
        replica(3, Replica::Silent).await,
    ];
    let c = client(&[&n[0], &n[1], &n[2], &n[3]], 0).await;
    assert_eq!(
        c.call(0, &read(), Duration::from_secs(10)).await,
        Outcome::Ok(json!(5))
    );
    assert_eq!(c.bad_replies(), 0);
    // The same, with the batched reply's proof altered: one valid reply is not a result.
    let n = [
        replica(0, Replica::BadPath(5)).await,
        replica(1, Replica::Honest(5)).await,
        replica(2, Replica::Silent).await,
        replica(3, Replica::Silent).await,
    ];
    let c = client(&[&n[0], &n[1], &n[2], &n[3]], 0).await;
    let out = c.call(0, &read(), Duration::from_millis(300)).await;
    assert!(matches!(out, Outcome::Info { .. }), "{out:?}");
    assert!(c.bad_replies() >= 1, "{}", c.bad_replies());
}

#[tokio::test]
async fn one_reply_or_replies_that_disagree_or_are_not_signed_for_this_request_are_not() {
    // The primary answers 5, one replica 6, one signs with a key not its own and one for
    // another timestamp: no two valid replies agree, so the call ends indefinite.
    let n = [
        replica(0, Replica::Honest(5)).await,
        replica(1, Replica::Honest(6)).await,
        replica(2, Replica::WrongKey(5)).await,
        replica(3, Replica::OtherTs(5)).await,
    ];
    let c = client(&[&n[0], &n[1], &n[2], &n[3]], 0).await;
    let out = c.call(0, &read(), Duration::from_millis(300)).await;
    assert!(matches!(out, Outcome::Info { .. }), "{out:?}");
    assert!(c.bad_replies() >= 2, "{}", c.bad_replies());
}

#[tokio::test]
async fn a_request_still_in_flight_at_the_deadline_is_info_and_one_never_sent_is_fail() {
    // Two replicas hold the request without answering, two cannot be reached: it may have
    // happened.
    let n = [
        replica(0, Replica::Silent).await,
        replica(1, Replica::Silent).await,
    ];
    let c = client(&[&n[0], &n[1]], 2).await;
    let out = c.call(0, &read(), Duration::from_millis(200)).await;
    assert!(matches!(out, Outcome::Info { .. }), "{out:?}");
    // No replica reachable at all: it certainly did not happen.
    let c = client(&[], 4).await;
    let out = c.call(0, &read(), Duration::from_millis(200)).await;
    assert!(matches!(out, Outcome::Fail { .. }), "{out:?}");
}
