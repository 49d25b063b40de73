//! Hostile input at the boundary: real traffic of a four-replica cluster, mutated at
//! random (numbers at their extremes, certificates emptied or repeated, senders swapped,
//! batches altered), fed to replicas. With signatures checked every mutated message must
//! be dropped and counted, never acted on; with the `skip-sig-check` bug (so that the
//! mutations reach the validation and the core) no input may panic, and the replica must
//! keep serving. Seeded: a failure names its seed.

use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use sunder_core::{CoreConfig, Input, Output, Protocol, ReqToken};
use sunder_pbft::{Body, Pbft, Signed};
use sunder_wire::Op;

fn config(i: usize, bugs: &[&str]) -> CoreConfig {
    CoreConfig {
        id: format!("n{}", i + 1),
        members: (1..=4).map(|i| format!("n{i}")).collect(),
        bugs: bugs.iter().map(|b| b.to_string()).collect(),
        opts: BTreeMap::from([("checkpoint".to_string(), "2".to_string())]),
        seed: i as u64,
        tick_ms: 10,
        byzantine: None,
    }
}

/// Runs a healthy cluster (with a view change) and returns every message it sent.
fn traffic() -> Vec<(usize, Signed)> {
    let mut nodes: Vec<Pbft> = (0..4)
        .map(|i| Pbft::recover(config(i, &[]), vec![]))
        .collect();
    let mut queue: Vec<(usize, usize, Signed)> = Vec::new();
    let mut seen = Vec::new();
    let step = |nodes: &mut Vec<Pbft>, q: &mut Vec<(usize, usize, Signed)>, i: usize, input| {
        let mut out = Output::default();
        nodes[i].step(input, &mut out);
        for (to, m) in out.send {
            q.push((i, to[1..].parse::<usize>().unwrap() - 1, m));
        }
    };
    let mut t = 0;
    for round in 0..12u64 {
        t += 50;
        for i in 0..4 {
            step(&mut nodes, &mut queue, i, Input::Tick { now_ms: t });
        }
        // Rounds 6..8: the primary of the moment is silent, so the view changes.
        let silent = (6..9)
            .contains(&round)
            .then_some(nodes[0].view() as usize % 4);
        for i in 0..4 {
            let op = Op::Write {
                key: format!("k{}", round % 3),
                value: round as i64,
            };
            let token = ReqToken {
                conn: i as u64,
                id: round + 1,
            };
            step(&mut nodes, &mut queue, i, Input::Client { token, op });
        }
        while !queue.is_empty() {
            let (from, to, m) = queue.remove(0);
            seen.push((from, m.clone()));
            if Some(from) == silent || Some(to) == silent {
                continue;
            }
            step(
                &mut nodes,
                &mut queue,
                to,
                Input::Peer {
                    from: format!("n{}", from + 1),
                    msg: m,
                },
            );
        }
        t += 400;
        for i in 0..4 {
            step(&mut nodes, &mut queue, i, Input::Tick { now_ms: t });
        }
    }
    assert!(
        nodes.iter().any(|n| n.view() > 0),
        "the traffic includes a view change"
    );
    seen
}

const NUMS: [u64; 6] = [0, 1, 2, u64::MAX, 1 << 60, (1 << 60) + 1];

fn mutate(s: &mut Signed, r: &mut ChaCha8Rng, pool: &[(usize, Signed)]) {
    let pick = |r: &mut ChaCha8Rng| *NUMS.choose(r).unwrap();
    match r.random_range(0..6) {
        0 => s.from = r.random_range(0..6),
        1 => s.sig.truncate(r.random_range(0..64)),
        2 => s.body = pool.choose(r).unwrap().1.body.clone(),
        _ => match &mut s.body {
            Body::PrePrepare {
                view, seq, batch, ..
            } => match r.random_range(0..3) {
                0 => *view = pick(r),
                1 => *seq = pick(r),
                _ => batch.push(sunder_pbft::Req {
                    client: 1,
                    ts: pick(r),
                    op: Op::Status,
                    sig: None,
                }),
            },
            Body::Prepare { view, seq, digest } | Body::Commit { view, seq, digest } => {
                *view = pick(r);
                *seq = pick(r);
                digest[0] ^= r.random::<u8>();
            }
            Body::Checkpoint { seq, .. } => *seq = pick(r),
            Body::ViewChange {
                view,
                stable,
                proof,
                prepared,
            } => match r.random_range(0..4) {
                0 => *view = pick(r),
                1 => *stable = pick(r),
                2 => proof.extend(proof.clone()),
                _ => {
                    if let Some(c) = prepared.first().cloned() {
                        prepared.extend(std::iter::repeat_n(c, 3));
                    }
                }
            },
            Body::NewView {
                view,
                view_changes,
                pre_prepares,
            } => match r.random_range(0..3) {
                0 => *view = pick(r),
                1 => view_changes.truncate(1),
                _ => pre_prepares.reverse(),
            },
            Body::Status {
                view,
                stable,
                executed,
                ..
            } => {
                *view = pick(r);
                *stable = pick(r);
                *executed = pick(r);
            }
            Body::Fetch { from } => *from = pick(r),
            Body::FetchState { seq } => *seq = pick(r),
            Body::FetchNewView { view } => *view = pick(r),
            Body::Certs { certs } => {
                if let Some(c) = certs.first_mut() {
                    c.commits.truncate(1);
                }
            }
            Body::State { snapshot, .. } => snapshot.seq = pick(r),
            Body::Forward { req } => req.op = Op::Dump,
        },
    }
}

fn fuzz(bugs: &[&str], inputs: usize, seed: u64) {
    let pool = traffic();
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let mut node = Pbft::recover(config(1, bugs), vec![]);
    let mut out = Output::default();
    for k in 0..inputs {
        let (from, original) = pool.choose(&mut r).unwrap().clone();
        if from == 1 {
            continue;
        }
        let mut m = original.clone();
        let mutated = r.random_bool(0.7);
        if mutated {
            mutate(&mut m, &mut r, &pool);
        }
        let before = node.rejected() + node.bad_signatures();
        let input = Input::Peer {
            from: format!("n{}", from + 1),
            msg: m.clone(),
        };
        let res =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| node.step(input, &mut out)));
        assert!(res.is_ok(), "seed {seed}, input {k}: panicked on {m:?}");
        // A changed message no longer matches its signature (one claiming to be from this
        // replica included): it must be counted, whatever it says.
        if bugs.is_empty() && m != original {
            assert!(
                node.rejected() + node.bad_signatures() > before,
                "seed {seed}, input {k}: a mutated message was taken: {m:?}"
            );
        }
        if k % 64 == 0 {
            node.step(Input::Tick { now_ms: k as u64 }, &mut out);
            out = Output::default();
        }
    }
    // Still serving.
    let mut out = Output::default();
    node.step(
        Input::Client {
            token: ReqToken { conn: 9, id: 1 },
            op: Op::Status,
        },
        &mut out,
    );
    assert!(out.reply[0].1.ok);
}

#[test]
fn mutated_messages_are_dropped_and_counted() {
    fuzz(&[], 20_000, 1);
}

#[test]
fn no_input_panics_even_unverified() {
    for seed in 1..=5 {
        fuzz(&["skip-sig-check"], 20_000, seed);
    }
}
