//! The core driven by hand: four replicas, a pump that delivers every message in order
//! (or drops what a test cuts), and assertions on what they emit and execute.

use std::collections::BTreeMap;
use sunder_core::{CoreConfig, Input, Output, Protocol, ReqToken};
use sunder_pbft::{Body, Keys, Pbft, Record, Signed};
use sunder_wire::{Op, Response};

struct Cluster {
    nodes: Vec<Pbft>,
    disks: Vec<Vec<Record>>,
    queue: Vec<(usize, usize, Signed)>,
    replies: Vec<(usize, ReqToken, Response)>,
    /// Nodes whose messages (in and out) are lost.
    cut: Vec<usize>,
    configs: Vec<CoreConfig>,
    /// Batch sizes of the pre-prepares n1 sent to n2.
    batches: Vec<usize>,
    /// Requests relayed to a primary (`Forward`), by sender.
    forwards: Vec<usize>,
    /// Messages the pump sets aside instead of delivering, and those it set aside.
    hold: fn(&Body) -> bool,
    held: Vec<(usize, usize, Signed)>,
}

fn config(i: usize, bugs: &[&str]) -> CoreConfig {
    CoreConfig {
        id: format!("n{}", i + 1),
        members: (1..=4).map(|i| format!("n{i}")).collect(),
        bugs: bugs.iter().map(|b| b.to_string()).collect(),
        opts: BTreeMap::from([("checkpoint".to_string(), "4".to_string())]),
        seed: i as u64,
        tick_ms: 10,
        byzantine: None,
    }
}

impl Cluster {
    fn new(bugs: &[&str]) -> Cluster {
        let configs: Vec<CoreConfig> = (0..4).map(|i| config(i, bugs)).collect();
        Cluster {
            nodes: configs
                .iter()
                .map(|c| Pbft::recover(c.clone(), Vec::new()))
                .collect(),
            disks: vec![Vec::new(); 4],
            queue: Vec::new(),
            replies: Vec::new(),
            cut: Vec::new(),
            configs,
            batches: Vec::new(),
            forwards: Vec::new(),
            hold: |_| false,
            held: Vec::new(),
        }
    }

    fn step(&mut self, i: usize, input: Input<Signed>) {
        let mut out = Output::default();
        self.nodes[i].step(input, &mut out);
        if let Some(c) = out.compact {
            self.disks[i] = c;
        }
        self.disks[i].extend(out.persist);
        for (to, m) in out.send {
            let j: usize = to[1..].parse::<usize>().unwrap() - 1;
            if let (0, 1, Body::PrePrepare { batch, .. }) = (i, j, &m.body) {
                self.batches.push(batch.len());
            }
            if let Body::Forward { .. } = &m.body {
                self.forwards.push(i);
            }
            self.queue.push((i, j, m));
        }
        for (t, r) in out.reply {
            self.replies.push((i, t, r));
        }
    }

    fn pump(&mut self) {
        while !self.queue.is_empty() {
            let (from, to, m) = self.queue.remove(0);
            if self.cut.contains(&from) || self.cut.contains(&to) {
                continue;
            }
            if (self.hold)(&m.body) {
                self.held.push((from, to, m));
                continue;
            }
            self.step(
                to,
                Input::Peer {
                    from: format!("n{}", from + 1),
                    msg: m,
                },
            );
        }
    }

    fn request(&mut self, i: usize, client: u64, ts: u64, op: Op) {
        let token = ReqToken {
            conn: client,
            id: ts,
        };
        self.step(i, Input::Client { token, op });
        self.pump();
    }

    fn tick(&mut self, now_ms: u64) {
        for i in 0..4 {
            if !self.cut.contains(&i) {
                self.step(i, Input::Tick { now_ms });
            }
        }
        self.pump();
    }
}

fn write(key: &str, value: i64) -> Op {
    Op::Write {
        key: key.into(),
        value,
    }
}

#[test]
fn normal_case_executes_everywhere_in_order_and_replies_once() {
    let mut c = Cluster::new(&[]);
    c.tick(0);
    c.request(0, 7, 1, write("a", 1));
    c.request(0, 7, 2, Op::Read { key: "a".into() });
    for n in &c.nodes {
        assert_eq!(n.executed(), 2, "every replica executed both");
        assert_eq!(n.state().read("a"), serde_json::json!(1));
    }
    let chains: Vec<_> = c.nodes.iter().map(Pbft::chain).collect();
    assert!(chains.windows(2).all(|w| w[0] == w[1]));
    // Only the replica the request arrived on answers (the client resends to the others).
    assert_eq!(c.replies.len(), 2);
    assert!(c.replies.iter().all(|(i, _, r)| *i == 0 && r.ok));
    assert_eq!(c.replies[1].2.value, serde_json::json!(1));
    // A retransmission is answered from the cache, not executed again.
    c.request(2, 7, 2, Op::Read { key: "a".into() });
    assert_eq!(c.nodes[2].executed(), 2);
    assert_eq!(c.replies.last().unwrap().0, 2);
}

#[test]
fn a_forged_or_altered_message_is_dropped_and_counted() {
    let mut c = Cluster::new(&[]);
    // n4 signs a pre-prepare as if it were n1 (it does not hold n1's key).
    let forger = Keys::derived(3, 4, 99);
    let batch = vec![];
    let body = Body::PrePrepare {
        view: 0,
        seq: 1,
        digest: sunder_pbft::crypto::digest_of(&batch),
        batch,
    };
    let mut forged = forger.sign(body);
    forged.from = 0;
    c.step(
        1,
        Input::Peer {
            from: "n1".into(),
            msg: forged.clone(),
        },
    );
    // A genuine message relayed by someone else claims another sender.
    let genuine = Keys::derived(0, 4, 0).sign(Body::Fetch { from: 1 });
    c.step(
        1,
        Input::Peer {
            from: "n3".into(),
            msg: genuine,
        },
    );
    assert_eq!(c.nodes[1].bad_signatures(), 2);
    assert!(c.queue.is_empty(), "nothing answered a forgery");
    // With the planted bug, the forgery counts: the backup prepares it.
    let mut b = Cluster::new(&["skip-sig-check"]);
    b.step(
        1,
        Input::Peer {
            from: "n1".into(),
            msg: forged,
        },
    );
    assert_eq!(b.nodes[1].bad_signatures(), 0);
    assert!(
        b.queue
            .iter()
            .any(|(_, _, m)| matches!(m.body, Body::Prepare { .. }))
    );
}

#[test]
fn a_silent_primary_is_replaced_and_the_request_executes_in_the_new_view() {
    let mut c = Cluster::new(&[]);
    c.tick(0);
    c.cut = vec![0];
    // The client resends to every backup; they forward to n1, which never answers.
    for i in 1..4 {
        c.request(i, 5, 1, write("x", 3));
    }
    assert!(c.nodes[1..].iter().all(|n| n.executed() == 0));
    c.tick(100);
    assert!(c.nodes[1..].iter().all(|n| n.view() == 0));
    c.tick(400); // past view_change_ms (300): view changes, n2 leads view 1
    c.tick(410); // the new primary assigns what it was forwarded
    for n in &c.nodes[1..] {
        assert_eq!((n.view(), n.is_active()), (1, true));
        assert_eq!(n.executed(), 1);
        assert_eq!(n.state().read("x"), serde_json::json!(3));
    }
    assert_eq!(
        c.replies
            .iter()
            .filter(|(_, t, r)| t.conn == 5 && r.ok)
            .count(),
        3
    );
}

#[test]
fn a_prepared_request_survives_the_view_change() {
    // n1 pre-prepares; prepares reach everyone but commits are cut off by n1's loss.
    let mut c = Cluster::new(&[]);
    c.tick(0);
    c.step(
        0,
        Input::Client {
            token: ReqToken { conn: 1, id: 1 },
            op: write("k", 9),
        },
    );
    // Deliver only pre-prepares and prepares.
    while let Some(pos) = c
        .queue
        .iter()
        .position(|(_, _, m)| !matches!(m.body, Body::Commit { .. }))
    {
        let (from, to, m) = c.queue.remove(pos);
        c.step(
            to,
            Input::Peer {
                from: format!("n{}", from + 1),
                msg: m,
            },
        );
    }
    c.queue.clear();
    assert!(c.nodes.iter().all(|n| n.executed() == 0));
    c.cut = vec![0];
    for i in 1..4 {
        c.request(i, 2, 1, write("k", 10));
    }
    c.tick(400);
    c.tick(410);
    // The new primary re-issued n1's prepared batch at seq 1, before the new request.
    for n in &c.nodes[1..] {
        assert_eq!(n.view(), 1);
        assert_eq!(n.history()[&1].batch[0].op, write("k", 9));
        assert_eq!(n.state().read("k"), serde_json::json!(10));
    }
}

#[test]
fn a_restarted_replica_rebuilds_from_its_records() {
    let mut c = Cluster::new(&[]);
    c.tick(0);
    for ts in 1..=10 {
        c.request(0, 3, ts, write("r", ts as i64));
    }
    assert!(
        c.nodes
            .iter()
            .all(|n| n.executed() == 10 && n.stable() == 8)
    );
    // The disk was compacted at the stable checkpoint and holds the rest since.
    assert!(matches!(c.disks[2][0], Record::Stable { .. }));
    let again = Pbft::recover(c.configs[2].clone(), c.disks[2].clone());
    assert_eq!(again.executed(), 10);
    assert_eq!(again.chain(), c.nodes[2].chain());
    assert_eq!(again.state(), c.nodes[2].state());
    assert_eq!(again.stable(), 8);
}

/// A batch executed in view 0 and re-proposed by the new primary of view 1, whose own
/// prepares and commits never came before a checkpoint compacted the disk: the commits of
/// view 0 no longer match the slot's pre-prepare, yet the replica must come back having
/// executed it (a simulator run, seed 893, lost it when all replicas restarted).
#[test]
fn a_restart_keeps_a_batch_executed_in_an_earlier_view_than_its_slot_now_holds() {
    let mut c = Cluster::new(&[]);
    c.tick(0);
    for ts in 1..=3 {
        c.request(0, 3, ts, write("v", ts as i64));
    }
    c.hold = |b| matches!(b, Body::Checkpoint { .. });
    for ts in 4..=5 {
        c.request(0, 3, ts, write("v", ts as i64));
    }
    assert!(c.nodes.iter().all(|n| n.executed() == 5 && n.stable() == 0));
    // n1 goes; the others change view. View 1's prepares and commits are held back.
    c.hold = |b| match b {
        Body::Checkpoint { .. } => true,
        Body::Prepare { view, .. } | Body::Commit { view, .. } => *view >= 1,
        _ => false,
    };
    c.cut = vec![0];
    for i in 1..4 {
        c.request(i, 4, 1, write("w", 1));
    }
    c.tick(400);
    c.tick(410);
    assert!(
        c.nodes[1..]
            .iter()
            .all(|n| n.view() == 1 && n.executed() == 5)
    );
    // The checkpoint at 4 becomes stable now: each disk is compacted to its image.
    let held = std::mem::take(&mut c.held);
    c.hold = |_| true;
    for (from, to, m) in held {
        if matches!(m.body, Body::Checkpoint { .. }) && from != 0 && to != 0 {
            c.step(
                to,
                Input::Peer {
                    from: format!("n{}", from + 1),
                    msg: m,
                },
            );
        }
    }
    for i in 1..4 {
        assert_eq!(c.nodes[i].stable(), 4);
        assert!(matches!(c.disks[i][0], Record::Stable { .. }));
        let again = Pbft::recover(c.configs[i].clone(), c.disks[i].clone());
        assert_eq!(again.executed(), 5, "n{} lost an executed batch", i + 1);
        assert_eq!(again.chain(), c.nodes[i].chain());
        assert_eq!(again.state(), c.nodes[i].state());
    }
}

#[test]
fn a_replica_that_was_away_catches_up_by_state_transfer() {
    let mut c = Cluster::new(&[]);
    c.tick(0);
    c.cut = vec![3];
    for ts in 1..=9 {
        c.request(0, 3, ts, write("s", ts as i64));
    }
    assert_eq!(c.nodes[3].executed(), 0);
    c.cut.clear();
    c.tick(200); // status: n4 is behind a stable checkpoint; it fetches state, then certs
    c.tick(400);
    assert_eq!(c.nodes[3].executed(), 9);
    assert_eq!(c.nodes[3].chain(), c.nodes[0].chain());
    assert_eq!(c.nodes[3].state().read("s"), serde_json::json!(9));
}

/// Requests that arrive while a batch is in flight wait for the next tick and go out in one
/// pre-prepare; with `batch=off` each gets its own sequence number at once.
#[test]
fn batching_on_by_default_and_off_on_request() {
    let pre_prepares = |batch: Option<&str>| {
        let mut c = Cluster::new(&[]);
        if let Some(v) = batch {
            for (i, n) in c.nodes.iter_mut().enumerate() {
                let mut cfg = config(i, &[]);
                cfg.opts.insert("batch".into(), v.into());
                *n = Pbft::recover(cfg, Vec::new());
            }
        }
        c.tick(0);
        // Five requests reach the primary before any message is delivered.
        for client in 1..=5 {
            let token = ReqToken {
                conn: client,
                id: 1,
            };
            c.step(
                0,
                Input::Client {
                    token,
                    op: write("b", client as i64),
                },
            );
        }
        c.pump();
        c.tick(10);
        c.tick(20);
        for n in &c.nodes {
            assert_eq!(n.state().read("b"), serde_json::json!(5));
        }
        c.batches
    };
    assert_eq!(pre_prepares(None), vec![1, 4]);
    assert_eq!(pre_prepares(Some("off")), vec![1, 1, 1, 1, 1]);
}

/// A backup that a client asked directly relays the request to the primary once it has
/// waited a quarter of the view-change timeout (300 ms by default), and not at all when the
/// primary's pre-prepare carried it first (a client that sends to every replica at once
/// reaches the primary itself).
#[test]
fn a_backup_relays_a_request_it_held_a_while_unless_a_pre_prepare_carried_it() {
    let mut c = Cluster::new(&[]);
    c.tick(0);
    // To a backup alone: nothing relayed for 75 ms, then it executes everywhere.
    c.request(1, 7, 1, write("a", 1));
    assert!(c.forwards.is_empty());
    assert_eq!(c.nodes[0].executed(), 0);
    c.tick(10);
    c.tick(74);
    assert!(c.forwards.is_empty(), "relayed before its time");
    assert_eq!(c.nodes[0].executed(), 0);
    c.tick(75);
    assert_eq!(c.forwards, vec![1]);
    assert!(c.nodes.iter().all(|n| n.executed() == 1));
    // To every replica at once: the primary orders it, no backup relays it.
    for i in 0..4 {
        let token = ReqToken { conn: 8, id: 1 };
        c.step(
            i,
            Input::Client {
                token,
                op: write("b", 2),
            },
        );
    }
    c.pump();
    c.tick(200);
    c.tick(300);
    assert_eq!(c.forwards, vec![1], "no second relay");
    for n in &c.nodes {
        assert_eq!(n.executed(), 2);
        assert_eq!(n.state().read("b"), serde_json::json!(2));
    }
    // Each replica answered the copy it was sent.
    let answered: Vec<usize> = c.replies.iter().skip(1).map(|(i, _, _)| *i).collect();
    assert_eq!(answered, vec![0, 1, 2, 3]);
}

/// Without a quorum no view starts, and each failed view waits twice as long as the last.
#[test]
fn view_change_timers_double_per_failed_view() {
    let mut c = Cluster::new(&[]);
    c.tick(0);
    c.cut = vec![0, 1];
    for i in 2..4 {
        c.request(i, 5, 1, write("x", 1));
    }
    let views = |c: &Cluster| (c.nodes[2].view(), c.nodes[2].is_active());
    c.tick(400); // base timeout 300: view 1; the next deadline is 2 x 300 later
    assert_eq!(views(&c), (1, false));
    c.tick(999);
    assert_eq!(views(&c), (1, false));
    c.tick(1000);
    assert_eq!(views(&c), (2, false));
    c.tick(2199);
    assert_eq!(views(&c), (2, false));
    c.tick(2200);
    assert_eq!(views(&c), (3, false));
}

#[test]
fn a_new_view_relayed_by_a_backup_is_taken_not_counted_as_forged() {
    let mut c = Cluster::new(&[]);
    c.tick(0);
    c.cut = vec![0];
    for i in 1..4 {
        c.request(i, 5, 1, write("x", 3));
    }
    c.tick(400); // n2 leads view 1; n1 heard nothing of it
    assert_eq!(c.nodes[2].view(), 1);
    assert_eq!(c.nodes[0].view(), 0);
    c.cut.clear();
    // n1 learns of view 1 from n3 (a status) and asks n3 for its new-view message: n3
    // relays the one n2 signed.
    let ask = Keys::derived(0, 4, 0).sign(Body::FetchNewView { view: 1 });
    c.step(
        2,
        Input::Peer {
            from: "n1".into(),
            msg: ask,
        },
    );
    assert!(
        c.queue.iter().any(
            |(f, t, m)| (*f, *t, m.from) == (2, 0, 1) && matches!(m.body, Body::NewView { .. })
        ),
        "n3 relays n2's new view"
    );
    c.pump();
    assert_eq!((c.nodes[0].view(), c.nodes[0].is_active()), (1, true));
    assert_eq!(c.nodes[0].bad_signatures(), 0);
}
