//! Signed clients (the node runtime's mode): requests carry a client id, a timestamp and
//! the client's ed25519 signature, replicas verify them before acting (in direct requests,
//! relayed ones and the primary's batches) and sign their replies.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use std::collections::BTreeMap;
use sunder_core::{CoreConfig, Input, Output, Protocol, ReqToken};
use sunder_pbft::keyfile::{self, client_secret};
use sunder_pbft::{Body, Digest, Keys, Pbft, Req, Signed};
use sunder_wire::bft::{
    batch_reply_bytes, reply_bytes, reply_leaf, request_bytes, root_from_path, to_hex,
};
use sunder_wire::{ClientSig, Op, Response};

const SEED: u64 = 3;

fn members() -> Vec<String> {
    (1..=4).map(|i| format!("n{i}")).collect()
}

fn keys_of(i: usize) -> (Keys, keyfile::ClientKeys) {
    let public = serde_json::to_string(&keyfile::public_keys(SEED, &members(), 2)).unwrap();
    let secret = keyfile::hex(&keyfile::replica_secret(SEED, i));
    keyfile::load(&members()[i], &members(), &secret, &public).unwrap()
}

fn replica(i: usize, bugs: &[&str]) -> Pbft {
    let config = CoreConfig {
        id: members()[i].clone(),
        members: members(),
        bugs: bugs.iter().map(|b| b.to_string()).collect(),
        opts: BTreeMap::new(),
        seed: 0,
        tick_ms: 10,
        byzantine: None,
    };
    let (keys, clients) = keys_of(i);
    Pbft::with_keys(config, keys, Some(clients), Vec::new())
}

struct Four {
    nodes: Vec<Pbft>,
    replies: Vec<(usize, Response)>,
    /// Show each burst to the replica before stepping it, as the node runtime does.
    prepare: bool,
}

impl Four {
    fn new(bugs: &[&str]) -> Four {
        let mut c = Four {
            nodes: (0..4).map(|i| replica(i, bugs)).collect(),
            replies: Vec::new(),
            prepare: false,
        };
        for i in 0..4 {
            c.run(i, Input::Tick { now_ms: 0 });
        }
        c
    }

    /// Steps replica `i` and delivers every message that follows, in order.
    fn run(&mut self, i: usize, input: Input<Signed>) {
        self.run_all(i, vec![input]);
    }

    /// Steps replica `i` with each input before any message it sends is delivered.
    fn run_all(&mut self, i: usize, inputs: Vec<Input<Signed>>) {
        let mut queue: Vec<(usize, Vec<Input<Signed>>)> = vec![(i, inputs)];
        while !queue.is_empty() {
            let (i, inputs) = queue.remove(0);
            let mut out = Output::default();
            if self.prepare {
                self.nodes[i].prepare(&inputs);
            }
            for input in inputs {
                self.nodes[i].step(input, &mut out);
            }
            for (to, msg) in out.send {
                let j = to[1..].parse::<usize>().unwrap() - 1;
                let from = members()[i].clone();
                queue.push((j, vec![Input::Peer { from, msg }]));
            }
            self.replies
                .extend(out.reply.into_iter().map(|(_, r)| (i, r)));
        }
    }
}

fn signed(client: u64, ts: u64, op: &Op) -> ClientSig {
    let sig =
        SigningKey::from_bytes(&client_secret(SEED, client)).sign(&request_bytes(client, ts, op));
    ClientSig {
        client,
        ts,
        sig: to_hex(&sig.to_bytes()),
    }
}

fn write(v: i64) -> Op {
    Op::Write {
        key: "a".into(),
        value: v,
    }
}

fn token(id: u64) -> ReqToken {
    ReqToken { conn: 1, id }
}

/// Whether `resp` carries replica `i`'s valid signature for `client`'s request `ts`.
fn signed_by(i: usize, client: u64, ts: u64, resp: &Response) -> bool {
    let Some(s) = &resp.signed else { return false };
    let public = keyfile::public_of(&keyfile::replica_secret(SEED, i));
    let key = VerifyingKey::from_bytes(&public).unwrap();
    let sig = Signature::from_slice(&sunder_wire::bft::from_hex(&s.sig).unwrap()).unwrap();
    let bytes = reply_bytes(&s.replica, s.view, client, ts, resp);
    let covered = match &s.batch {
        None => bytes,
        Some(b) => match root_from_path(reply_leaf(&bytes), b) {
            Some(root) => batch_reply_bytes(&s.replica, s.view, b.count, &root),
            None => return false,
        },
    };
    s.replica == members()[i]
        && s.client == client
        && s.ts == ts
        && key.verify(&covered, &sig).is_ok()
}

#[test]
fn a_signed_request_executes_everywhere_and_each_reply_is_signed_by_its_replica() {
    let mut c = Four::new(&[]);
    let op = write(5);
    let auth = signed(1, 1, &op);
    c.run(
        0,
        Input::Signed {
            token: token(1),
            op: op.clone(),
            auth: auth.clone(),
        },
    );
    assert!(c.nodes.iter().all(|n| n.executed() == 1));
    // The client retransmits to a backup, which answers from its reply cache.
    c.run(
        2,
        Input::Signed {
            token: token(2),
            op,
            auth,
        },
    );
    assert_eq!(c.replies.len(), 2, "{:?}", c.replies);
    for (i, r) in &c.replies {
        assert!(r.ok && r.committed.is_some(), "{r:?}");
        assert!(signed_by(*i, 1, 1, r), "replica {i}: {r:?}");
    }
    // A reply is bound to its replica: n1's signature does not pass as n3's.
    let mut as_other = c.replies[0].1.clone();
    as_other.signed.as_mut().unwrap().replica = "n3".into();
    assert!(!signed_by(2, 1, 1, &as_other));
    assert_eq!(c.nodes[0].bad_client_signatures(), 0);
}

#[test]
fn the_replies_to_one_batch_share_one_signature_and_each_proves_its_own() {
    let mut c = Four::new(&[]);
    // The first request goes out at once; two more arrive at the primary before its
    // messages are delivered, queue, and go out together as the next batch.
    let ops = [write(1), write(2), write(3)];
    let auths = [
        signed(0, 1, &ops[0]),
        signed(1, 1, &ops[1]),
        signed(0, 2, &ops[2]),
    ];
    let inputs = (0..3)
        .map(|k| Input::Signed {
            token: token(k as u64 + 1),
            op: ops[k].clone(),
            auth: auths[k].clone(),
        })
        .collect();
    c.run_all(0, inputs);
    assert!(c.nodes.iter().all(|n| n.executed() == 2), "two batches");
    // Client 0 moved on to its second request, so the primary answers two: (1, 1), (0, 2).
    assert_eq!(c.replies.len(), 2, "{:?}", c.replies);
    let sigs: Vec<_> = c
        .replies
        .iter()
        .map(|(_, r)| r.signed.clone().unwrap())
        .collect();
    assert_eq!(sigs[0].sig, sigs[1].sig, "one signature for the batch");
    assert!(
        sigs.iter()
            .all(|s| s.batch.as_ref().is_some_and(|b| b.count == 2))
    );
    assert!(signed_by(0, 1, 1, &c.replies[0].1));
    assert!(signed_by(0, 0, 2, &c.replies[1].1));
    // A reply's proof does not carry another result, nor serve the other client.
    let mut altered = c.replies[0].1.clone();
    altered.value = serde_json::json!(7);
    assert!(!signed_by(0, 1, 1, &altered));
    let mut swapped = c.replies[0].1.clone();
    swapped.signed = c.replies[1].1.signed.clone();
    assert!(!signed_by(0, 0, 2, &swapped));
}

#[test]
fn unsigned_and_forged_requests_are_refused_and_counted() {
    let mut c = Four::new(&[]);
    c.run(
        0,
        Input::Client {
            token: token(1),
            op: write(1),
        },
    );
    let (_, r) = c.replies.pop().expect("an unsigned request is answered");
    assert_eq!(
        (r.ok, r.error.as_deref(), r.definite),
        (false, Some("bad-request"), true)
    );
    // Client 1 signs, claiming to be client 0: dropped without a reply, and counted.
    let op = write(2);
    let mut forged = signed(1, 1, &op);
    forged.client = 0;
    c.run(
        0,
        Input::Signed {
            token: token(2),
            op: op.clone(),
            auth: forged.clone(),
        },
    );
    // Another op under a valid signature is no better.
    c.run(
        0,
        Input::Signed {
            token: token(3),
            op: write(3),
            auth: signed(1, 1, &op),
        },
    );
    assert!(c.replies.is_empty(), "{:?}", c.replies);
    assert_eq!(c.nodes[0].bad_client_signatures(), 2);
    assert!(c.nodes.iter().all(|n| n.executed() == 0));

    // With signatures never checked (planted bug skip-sig-check) the forgery executes.
    let mut b = Four::new(&["skip-sig-check"]);
    b.run(
        0,
        Input::Signed {
            token: token(2),
            op,
            auth: forged,
        },
    );
    assert!(b.nodes.iter().all(|n| n.executed() == 1));
}

#[test]
fn a_backup_drops_a_primary_s_batch_holding_a_request_no_client_signed() {
    let (n1, _) = keys_of(0);
    let pre_prepare = |req: Req| {
        let batch = vec![req];
        let digest: Digest = sunder_pbft::crypto::digest_of(&batch);
        n1.sign(Body::PrePrepare {
            view: 0,
            seq: 1,
            digest,
            batch,
        })
    };
    let op = write(9);
    let good = signed(0, 1, &op);
    let req = |sig: Option<String>| Req {
        client: 0,
        ts: 1,
        op: op.clone(),
        sig,
    };
    for (sig, prepares) in [
        (Some(good.sig.clone()), true),
        (Some(signed(1, 1, &op).sig), false), // another client's signature
        (None, false),                        // none at all
    ] {
        let mut backup = replica(1, &[]);
        let mut out = Output::default();
        backup.step(Input::Tick { now_ms: 0 }, &mut out);
        let mut out = Output::default();
        backup.step(
            Input::Peer {
                from: "n1".into(),
                msg: pre_prepare(req(sig.clone())),
            },
            &mut out,
        );
        let sent_prepare = out
            .send
            .iter()
            .any(|(_, m)| matches!(m.body, Body::Prepare { .. }));
        assert_eq!(sent_prepare, prepares, "{sig:?}");
        assert_eq!(backup.bad_client_signatures(), u64::from(!prepares));
    }
    // A signature field of the wrong size is refused at the boundary, before any check.
    let mut backup = replica(1, &[]);
    let mut out = Output::default();
    backup.step(Input::Tick { now_ms: 0 }, &mut out);
    backup.step(
        Input::Peer {
            from: "n1".into(),
            msg: pre_prepare(req(Some("ab".repeat(1000)))),
        },
        &mut out,
    );
    assert_eq!((backup.rejected(), backup.bad_client_signatures()), (1, 0));
}

/// The runtime shows a replica each burst of inputs first, and PBFT checks the burst's
/// client signatures in one batch: the replicas must then do exactly what they do when
/// each signature is checked as its step comes, forged requests in the burst included.
#[test]
fn checking_a_burst_of_client_signatures_at_once_changes_nothing() {
    let burst = |primary: bool| -> Vec<Input<Signed>> {
        let mut inputs = Vec::new();
        for ts in 1..=12u64 {
            let client = ts % 2;
            let op = write(ts as i64);
            let mut auth = signed(client, ts, &op);
            let op = match ts {
                3 => write(99), // a valid signature over another op
                5 => {
                    auth.client = 1 - client; // claims to be the other client
                    op
                }
                _ => op,
            };
            inputs.push(Input::Signed {
                token: token(ts),
                op: op.clone(),
                auth: auth.clone(),
            });
            if ts == 7 {
                inputs.push(Input::Signed {
                    token: token(100 + ts),
                    op,
                    auth, // sent twice in one burst
                });
            }
        }
        if !primary {
            inputs.truncate(6); // a backup has heard part of the burst directly
        }
        inputs
    };
    let mut runs = Vec::new();
    for prepare in [false, true] {
        let mut c = Four::new(&[]);
        c.prepare = prepare;
        for i in (0..4).rev() {
            // Backups first: the primary's batch then carries requests they hold and
            // requests they never saw.
            c.run_all(i, burst(i == 0));
        }
        let executed: Vec<u64> = c.nodes.iter().map(|n| n.executed()).collect();
        let bad: Vec<u64> = c.nodes.iter().map(|n| n.bad_client_signatures()).collect();
        let chains: Vec<Digest> = c.nodes.iter().map(|n| n.chain()).collect();
        let mut replies: Vec<String> = c
            .replies
            .iter()
            .map(|(i, r)| format!("{i} {}", serde_json::to_string(r).unwrap()))
            .collect();
        replies.sort();
        runs.push((executed, bad, chains, replies));
    }
    let (executed, bad, _, replies) = &runs[0];
    // The forged requests were dropped and counted, the others executed and answered.
    assert!(executed.iter().all(|e| *e >= 1), "{executed:?}");
    assert_eq!(bad[0], 2, "{bad:?}");
    // (A client waits for one answer at a time: each replica answers each client's last.)
    assert_eq!(replies.len(), 4 * 2, "{replies:?}");
    assert_eq!(runs[0], runs[1]);
}
