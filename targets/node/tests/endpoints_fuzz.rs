//! Hostile bytes against a node's two TCP faces, through the very functions the node runs
//! on its sockets (`sunder_node::peer::incoming`, `sunder_node::client::connection`), fed
//! from memory: seeded random and mutated lines (valid lines truncated, bytes flipped,
//! numbers made huge or negative, unknown ops and message kinds, deep nesting, invalid
//! UTF-8, fields missing, extra or duplicated, ids repeated, lines over the caps).
//!
//! The peer face decodes Raft's messages and delivers them to a real Raft core, as the
//! driver does; the client face hands requests to a stand-in driver that answers each at
//! once (the driver is the layer below this test). Zero panics is the test; besides, every
//! client line must get exactly one reply (a `bad-request` for the malformed), a refused
//! hello or an over-long or non-UTF-8 line must end the connection with nothing more
//! delivered, and a valid request on a fresh connection after a bad one must still be
//! answered. Both accepted and rejected counts must be large, so the inputs did reach the
//! parsers.
//!
//! `cargo test -p sunder-node --test endpoints_fuzz` runs 100,000 lines per face; the
//! nightly tier runs 1,000,000 (`-- --ignored`), or any count with `SUNDER_FUZZ_INPUTS=N`.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use sunder_node::client::{Replies, connection, parse_request};
use sunder_node::line::{MAX_CLIENT_LINE, MAX_HELLO_LINE};
use sunder_node::peer::{HelloError, incoming, parse_hello};
use sunder_node::{CoreConfig, Input, Output, Protocol};
use sunder_raft::{Command, Entry, MAX_NUMBER, Msg, Raft, Snapshot};
use sunder_wire::{Op, Request, Response, errors};
use tokio::io::AsyncReadExt;

const MEMBERS: [&str; 3] = ["n1", "n2", "n3"];

fn members() -> Vec<String> {
    MEMBERS.iter().map(|s| s.to_string()).collect()
}

fn number(rng: &mut ChaCha8Rng) -> u64 {
    match rng.random_range(0..6) {
        0 => 0,
        1 => u64::MAX,
        2 => MAX_NUMBER + rng.random_range(0..2),
        3 => rng.random(),
        _ => rng.random_range(0..50),
    }
}

fn op(rng: &mut ChaCha8Rng) -> Op {
    let key = format!("k{}", rng.random_range(0..3));
    let v = |rng: &mut ChaCha8Rng| rng.random_range(-3..100);
    match rng.random_range(0..6) {
        0 => Op::Read { key },
        1 => Op::Write { key, value: v(rng) },
        2 => Op::Cas {
            key,
            from: v(rng),
            to: v(rng),
        },
        3 => Op::Add { key, value: v(rng) },
        4 => Op::Status,
        _ => Op::Dump,
    }
}

fn raft_msg(rng: &mut ChaCha8Rng) -> Msg {
    let term = number(rng);
    let seq = number(rng);
    match rng.random_range(0..8) {
        0 => Msg::PreVote {
            term,
            last_index: number(rng),
            last_term: number(rng),
        },
        1 => Msg::PreVoteResp {
            term,
            granted: rng.random(),
        },
        2 => Msg::Vote {
            term,
            last_index: number(rng),
            last_term: number(rng),
        },
        3 => Msg::VoteResp {
            term,
            granted: rng.random(),
        },
        4 => {
            let prev_index = number(rng);
            let entries = (0..rng.random_range(0..4))
                .map(|k| Entry {
                    index: prev_index.wrapping_add(k + 1),
                    term,
                    cmd: if rng.random_bool(0.3) {
                        Command::Noop
                    } else {
                        Command::Op {
                            op: op(rng),
                            origin: "n2/1:1".into(),
                        }
                    },
                })
                .collect();
            Msg::Append {
                term,
                prev_index,
                prev_term: number(rng),
                entries,
                commit: number(rng),
                seq,
            }
        }
        5 => Msg::AppendResp {
            term,
            success: rng.random(),
            index: number(rng),
            hint_index: number(rng),
            hint_term: rng.random_bool(0.5).then(|| number(rng)),
            seq,
        },
        6 => Msg::InstallSnapshot {
            term,
            snapshot: Snapshot {
                index: number(rng),
                term: number(rng),
                state: Default::default(),
                prefix: Default::default(),
            },
            seq,
        },
        _ => Msg::SnapshotResp {
            term,
            index: number(rng),
            seq,
        },
    }
}

/// A JSON value of the wrong kind, or a number no u64 holds.
fn odd_value(rng: &mut ChaCha8Rng) -> Value {
    match rng.random_range(0..9) {
        0 => Value::Null,
        1 => json!("12"),
        2 => json!(-1),
        3 => json!(1.5),
        4 => json!(1e300),
        5 => json!([1, 2, 3]),
        6 => json!({"a": {"b": [null]}}),
        7 => json!(true),
        // One past u64::MAX: serde_json reads it as a float.
        _ => serde_json::from_str("18446744073709551616").expect("a number"),
    }
}

/// Changes one thing in a JSON object, at any depth.
fn mutate_value(rng: &mut ChaCha8Rng, v: &mut Value, depth: u32) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let k = keys[rng.random_range(0..keys.len())].clone();
            match rng.random_range(0..7) {
                0 => {
                    map.remove(&k);
                }
                1 => {
                    map.insert(format!("extra{}", rng.random_range(0..3)), odd_value(rng));
                }
                2 => {
                    map.insert(k, odd_value(rng));
                }
                3 => {
                    // An unknown tag or op name.
                    let renamed = map.remove(&k).expect("present");
                    map.insert(format!("{k}X"), renamed);
                }
                4 if depth < 4 => mutate_value(rng, map.get_mut(&k).expect("present"), depth + 1),
                5 => {
                    if let Some(Value::String(s)) = map.get_mut(&k) {
                        *s = ["", "bogus", "n9", "read\u{0}", "ÿ"][rng.random_range(0..5)].into();
                    } else {
                        map.insert(k, json!(u64::MAX));
                    }
                }
                _ => {
                    map.insert(k, json!(rng.random::<u64>()));
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let i = rng.random_range(0..a.len());
            if rng.random_bool(0.5) {
                a.remove(i);
            } else if depth < 4 {
                mutate_value(rng, &mut a[i], depth + 1);
            }
        }
        other => *other = odd_value(rng),
    }
}

/// Damage done to the bytes of a line.
fn mutate_bytes(rng: &mut ChaCha8Rng, mut b: Vec<u8>) -> Vec<u8> {
    match rng.random_range(0..7) {
        0 if !b.is_empty() => {
            b.truncate(rng.random_range(0..b.len()));
        }
        1 if !b.is_empty() => {
            let i = rng.random_range(0..b.len());
            b[i] = rng.random();
        }
        2 => {
            // Invalid UTF-8 somewhere.
            let i = rng.random_range(0..=b.len());
            b.insert(i, [0xff, 0xc0, 0x80][rng.random_range(0..3)]);
        }
        3 => {
            // A duplicate field: serde rejects it or takes one, it must not panic.
            if let Some(i) = b.iter().position(|c| *c == b'{') {
                b.splice(i + 1..i + 1, br#""id":1,"id":2,"#.iter().copied());
            }
        }
        4 => {
            let depth = rng.random_range(100..5000);
            b = [vec![b'['; depth], vec![b']'; depth]].concat();
        }
        5 => {
            b = (0..rng.random_range(0..200))
                .map(|_| rng.random())
                .collect()
        }
        _ => b.extend_from_slice(b"}]\"\\"),
    }
    // A newline inside would split the line; the framing is tested elsewhere.
    b.retain(|c| *c != b'\n');
    b
}

/// One line of hostile traffic from `valid`: itself, its JSON changed, or its bytes.
fn line_from(rng: &mut ChaCha8Rng, valid: Value, cap: usize) -> Vec<u8> {
    match rng.random_range(0..1000) {
        0 => vec![b'{'; cap + 1 + rng.random_range(0..100)],
        1..300 => serde_json::to_vec(&valid).expect("json"),
        300..650 => {
            let mut v = valid;
            for _ in 0..rng.random_range(1..3) {
                mutate_value(rng, &mut v, 0);
            }
            serde_json::to_vec(&v).expect("json")
        }
        _ => mutate_bytes(rng, serde_json::to_vec(&valid).expect("json")),
    }
}

#[derive(Debug, Default)]
struct Tally {
    lines: u64,
    accepted: u64,
    rejected: u64,
    connections: u64,
    closed_early: u64,
}

/// The client face: streams of 1 to 4 request lines, each on a fresh connection.
async fn fuzz_client(seed: u64, lines: u64) -> Tally {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = Tally::default();
    let mut ids = 0u64;
    while t.lines < lines {
        let mut stream = Vec::new();
        let mut sent = Vec::new();
        for _ in 0..rng.random_range(1..5) {
            // Repeated ids now and then: the node answers each request all the same.
            let id = if rng.random_bool(0.2) { ids } else { ids + 1 };
            ids = id;
            let valid = serde_json::to_value(Request {
                id,
                op: op(&mut rng),
                auth: None,
            })
            .expect("json");
            let line = line_from(&mut rng, valid, MAX_CLIENT_LINE);
            stream.extend_from_slice(&line);
            stream.push(b'\n');
            sent.push(line);
        }
        t.lines += sent.len() as u64;
        t.connections += 1;
        let replies = serve_client(&stream, t.connections).await;
        let mut bad_seen = false;
        // Replies come in the order of the lines that owe one (blank lines owe none).
        let mut next = 0;
        let mut cut = false;
        for line in &sent {
            if line.len() > MAX_CLIENT_LINE {
                // Answered `bad-request`, and nothing after it is read.
                assert_eq!(replies.len(), next + 1, "over-long line: {replies:?}");
                assert_bad(&replies[next]);
                t.rejected += 1;
                t.closed_early += 1;
                bad_seen = true;
                cut = true;
                break;
            }
            let text = std::str::from_utf8(line);
            if text.is_ok_and(|s| s.trim().is_empty()) {
                continue;
            }
            let reply = replies
                .get(next)
                .unwrap_or_else(|| panic!("no reply {next} to {sent:?}: {replies:?}"));
            next += 1;
            match text.ok().map(parse_request) {
                Some(Ok(req)) => {
                    assert!(reply.ok, "{reply:?}");
                    assert_eq!(reply.id, req.id);
                    assert_eq!(reply.value, json!(req.op.name()));
                    t.accepted += 1;
                }
                _ => {
                    assert_bad(reply);
                    t.rejected += 1;
                    bad_seen = true;
                }
            }
        }
        if !cut {
            assert_eq!(replies.len(), next, "{replies:?}");
        }
        if bad_seen {
            // A fresh connection after the bad one is served as ever.
            let good = br#"{"id":77,"op":"read","key":"k1"}"#;
            let r = serve_client(&[&good[..], b"\n"].concat(), u64::MAX - t.connections).await;
            assert_eq!(r.len(), 1);
            assert!(r[0].ok && r[0].id == 77, "{r:?}");
        }
    }
    t
}

fn assert_bad(r: &Response) {
    assert!(!r.ok, "{r:?}");
    assert_eq!(r.error.as_deref(), Some(errors::BAD_REQUEST));
    assert!(r.definite, "{r:?}");
}

/// Runs `client::connection` over `input`, with a driver that answers every request at
/// once with its op's name, and returns the replies written, in order.
async fn serve_client(input: &[u8], conn: u64) -> Vec<Response> {
    let (wr, mut out) = tokio::io::duplex(1 << 16);
    let replies = Replies::default();
    let driver = replies.clone();
    let submit = move |token: sunder_node::ReqToken, req: sunder_wire::Request| {
        driver.send(token, Response::ok(token.id, json!(req.op.name())));
        async { true }
    };
    let mut written = Vec::new();
    let (_, read) = tokio::join!(
        connection(input, wr, conn, replies, submit),
        out.read_to_end(&mut written)
    );
    read.expect("in-memory read");
    written
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("the node writes valid responses"))
        .collect()
}

/// The peer face: a hello (valid or not) and then 0 to 5 message lines, per connection,
/// delivered to a real Raft core.
async fn fuzz_peer(seed: u64, lines: u64) -> (Tally, u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = Tally::default();
    let core = RefCell::new(Raft::recover(config(seed), vec![]));
    let delivered = Cell::new(0u64);
    let mut now = 0;
    while t.lines < lines {
        let from = ["n2", "n3", "n2", "n3", "n2", "n3", "n1", "n9", ""][rng.random_range(0..9)];
        let hello = json!({ "hello": from });
        let hello = match rng.random_range(0..10) {
            0..8 => serde_json::to_vec(&hello).expect("json"),
            _ => line_from(&mut rng, hello, MAX_HELLO_LINE),
        };
        let mut stream = [&hello[..], b"\n"].concat();
        let mut msgs = Vec::new();
        for _ in 0..rng.random_range(0..6) {
            let valid = serde_json::to_value(raft_msg(&mut rng)).expect("json");
            let line = line_from(&mut rng, valid, 1 << 16);
            stream.extend_from_slice(&line);
            stream.push(b'\n');
            msgs.push(line);
        }
        t.lines += 1 + msgs.len() as u64;
        t.connections += 1;
        // What the node must make of it: a hello naming a member, then every message that
        // decodes, up to a line that is not UTF-8 (the peer's stream is not to be trusted
        // from there on).
        let hello_ok = std::str::from_utf8(&hello)
            .map_err(|_| HelloError::NotText)
            .and_then(|h| parse_hello(h, &members()));
        let mut expected = 0;
        if hello_ok.is_ok() {
            t.accepted += 1;
            for m in &msgs {
                let Ok(text) = std::str::from_utf8(m) else {
                    t.closed_early += 1;
                    break;
                };
                if serde_json::from_str::<Msg>(text).is_ok() {
                    expected += 1;
                    t.accepted += 1;
                } else if !text.trim().is_empty() {
                    t.rejected += 1;
                }
            }
        } else {
            t.rejected += 1;
            t.closed_early += 1;
        }
        let before = delivered.get();
        now += 10;
        core.borrow_mut()
            .step(Input::Tick { now_ms: now }, &mut Output::default());
        incoming(&stream[..], "fuzz", &members(), |from: String, msg: Msg| {
            assert_ne!(from, "n9");
            delivered.set(delivered.get() + 1);
            core.borrow_mut()
                .step(Input::Peer { from, msg }, &mut Output::default());
            true
        })
        .await;
        assert_eq!(
            delivered.get() - before,
            expected,
            "hello {hello_ok:?}, stream {:?}",
            String::from_utf8_lossy(&stream)
        );
    }
    let rejected_by_core = core.borrow().rejected();
    (t, rejected_by_core)
}

fn config(seed: u64) -> CoreConfig {
    CoreConfig {
        id: "n1".into(),
        members: members(),
        bugs: vec![],
        opts: Default::default(),
        seed,
        tick_ms: 10,
        byzantine: None,
    }
}

fn inputs(default: u64) -> u64 {
    std::env::var("SUNDER_FUZZ_INPUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn run_client(count: u64) {
    let started = Instant::now();
    let t = rt().block_on(fuzz_client(1, count));
    println!(
        "client endpoint fuzz: {} lines on {} connections, 0 panics, {} accepted, {} answered bad-request, {} connections closed by an over-long line, {:.1?}",
        t.lines,
        t.connections,
        t.accepted,
        t.rejected,
        t.closed_early,
        started.elapsed()
    );
    assert!(t.lines >= count);
    // Not vacuous: both kinds in bulk, and the cap was met.
    assert!(t.accepted > count / 10, "{t:?}");
    assert!(t.rejected > count / 10, "{t:?}");
    assert!(t.closed_early > 0, "{t:?}");
}

fn run_peer(count: u64) {
    let started = Instant::now();
    let (t, by_core) = rt().block_on(fuzz_peer(2, count));
    println!(
        "peer endpoint fuzz: {} lines on {} connections, 0 panics, {} accepted (hellos and messages), {} rejected (hellos refused, messages undecodable), {} connections closed early, {} delivered messages dropped by the core's validation, {:.1?}",
        t.lines,
        t.connections,
        t.accepted,
        t.rejected,
        t.closed_early,
        by_core,
        started.elapsed()
    );
    assert!(t.lines >= count);
    assert!(t.accepted > count / 10, "{t:?}");
    assert!(t.rejected > count / 10, "{t:?}");
    assert!(by_core > 0);
}

#[test]
fn hostile_client_lines_get_bad_request_and_never_panic_the_node() {
    run_client(inputs(100_000));
}

#[test]
fn hostile_peer_lines_are_refused_or_dropped_and_never_panic_the_node() {
    run_peer(inputs(100_000));
}

#[test]
#[ignore = "nightly tier: 1,000,000 lines"]
fn nightly_hostile_client_lines_get_bad_request_and_never_panic_the_node() {
    run_client(inputs(1_000_000));
}

#[test]
#[ignore = "nightly tier: 1,000,000 lines"]
fn nightly_hostile_peer_lines_are_refused_or_dropped_and_never_panic_the_node() {
    run_peer(inputs(1_000_000));
}
