//! Tests of the whole core on its emitted outputs: blocks mined by one node and judged by
//! another, each validity rule and the planted bug that turns it off, fork choice,
//! orphans, recovery, determinism, and a small cluster wired by hand.

use crate::block::{Block, Header};
use crate::core::Pow;
use crate::hash::{Hash, meets};
use crate::msg::Msg;
use crate::record::Record;
use crate::tx::{Keyring, Transfer, Tx, miner_account};
use std::collections::BTreeMap;
use sunder_core::{CoreConfig, Input, Output, Protocol, ReqToken};
use sunder_wire::{Op, Response};

type Out = Output<Msg, Record>;

const MEMBERS: [&str; 3] = ["n1", "n2", "n3"];
/// The local clock at which tests start (blocks are stamped after it).
const T0: u64 = 1_000_000;

mod byzantine;
mod forge;

fn config(id: &str, opts: &[(&str, &str)], bugs: &[&str], seed: u64) -> CoreConfig {
    CoreConfig {
        id: id.into(),
        members: MEMBERS.map(String::from).to_vec(),
        bugs: bugs.iter().map(|b| b.to_string()).collect(),
        opts: opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        seed,
        tick_ms: 50,
        byzantine: None,
    }
}

/// A node that does not mine (hash rate 0), its clock at `T0`.
fn judge(opts: &[(&str, &str)], bugs: &[&str]) -> Pow {
    let mut o = vec![("hashrate", "0")];
    o.extend_from_slice(opts);
    let mut n = Pow::recover(config("n1", &o, bugs, 1), vec![]);
    step(&mut n, Input::Tick { now_ms: T0 });
    n
}

fn step(n: &mut Pow, input: Input<Msg>) -> Out {
    let mut out = Out::default();
    n.step(input, &mut out);
    out
}

fn deliver(n: &mut Pow, from: &str, msg: Msg) -> Out {
    step(
        n,
        Input::Peer {
            from: from.into(),
            msg,
        },
    )
}

fn transfer(from: &str, to: &str, amount: i64, nonce: u64) -> Transfer {
    Keyring::new(0).sign(Transfer {
        from: from.into(),
        to: to.into(),
        amount,
        nonce,
        expires: 1000,
        memo: 0,
        sig: String::new(),
    })
}

/// A block on `parent` by member `miner` at `ts`, with the right target, coinbase and
/// Merkle root, and a nonce that meets the target.
fn block_on(n: &Pow, parent: &Hash, miner: u32, ts: u64, transfers: Vec<Transfer>) -> Block {
    let p = n.tree.get(parent).expect("parent known to the judge");
    let height = p.height() + 1;
    let mut txs = vec![Tx::Coinbase {
        height,
        to: miner_account(MEMBERS[miner as usize]),
        amount: n.params.reward,
    }];
    txs.extend(transfers.into_iter().map(Tx::Transfer));
    let b = Block {
        header: Header {
            parent: *parent,
            height,
            merkle: Block::merkle_of(&txs),
            timestamp_ms: ts,
            target: n.next_target(p),
            miner,
            nonce: 0,
        },
        txs,
    };
    mine(b)
}

/// `b` with the first nonce (from its own) whose hash meets its target.
fn mine(mut b: Block) -> Block {
    while !meets(&b.hash(), b.header.target) {
        b.header.nonce += 1;
    }
    b
}

/// `b` with a nonce whose hash does not meet its target.
fn unmine(mut b: Block) -> Block {
    while meets(&b.hash(), b.header.target) {
        b.header.nonce += 1;
    }
    b
}

fn genesis(n: &Pow) -> Hash {
    n.best_chain()[0]
}

/// Builds and delivers a chain of `len` blocks on `parent` from `n2`, timestamps on
/// schedule from `ts`; their hashes.
fn extend(n: &mut Pow, parent: Hash, len: usize, ts: u64) -> Vec<Hash> {
    let mut hashes = Vec::new();
    let mut p = parent;
    for i in 0..len {
        let b = block_on(n, &p, 1, ts + 500 * i as u64, vec![]);
        p = b.hash();
        deliver(n, "n2", Msg::Block(b));
        assert!(n.tree.contains(&p), "block {i} was taken");
        hashes.push(p);
    }
    hashes
}

fn client(n: &mut Pow, id: u64, op: Op) -> Out {
    step(
        n,
        Input::Client {
            token: ReqToken { conn: 1, id },
            op,
        },
    )
}

fn mined_block(out: &Out) -> Option<Block> {
    out.send.iter().find_map(|(_, m)| match m {
        Msg::Block(b) => Some(b.clone()),
        _ => None,
    })
}

#[test]
fn a_block_mined_by_one_node_is_taken_by_another() {
    let mut miner = Pow::recover(config("n2", &[("hashrate", "8000")], &[], 7), vec![]);
    let mut judge = judge(&[], &[]);
    let mut found = None;
    for t in 0..400 {
        let out = step(
            &mut miner,
            Input::Tick {
                now_ms: T0 + 50 * t,
            },
        );
        if let Some(b) = mined_block(&out) {
            assert!(matches!(&out.persist[..], [Record::Block(p)] if *p == b));
            assert_eq!(out.send.len(), 2, "sent to both peers");
            found = Some(b);
            break;
        }
    }
    let b = found.expect("8000 hashes per second find a 4000-hash block in 20 s");
    assert!(miner.hashes() > 0 && miner.hashes() <= 8000 * 20);
    assert_eq!(b.header.miner, 1);
    assert_eq!(
        b.txs,
        vec![Tx::Coinbase {
            height: 1,
            to: "miner:n2".into(),
            amount: 50
        }]
    );
    let out = deliver(&mut judge, "n2", Msg::Block(b.clone()));
    assert_eq!(judge.tip().hash, b.hash());
    assert_eq!(judge.rejected(), 0);
    assert_eq!(out.persist, vec![Record::Block(b.clone())]);
    // Relayed to the one peer that did not send it.
    assert!(matches!(&out.send[..], [(to, Msg::Block(_))] if to == "n3"));
    assert_eq!(judge.tip_state().balance("miner:n2"), 50);
    // The same block again changes nothing and sends nothing.
    assert!(deliver(&mut judge, "n2", Msg::Block(b)).is_empty());
}

/// One way to break a block, and the planted bug that lets it through (if any).
struct Case {
    name: &'static str,
    bug: Option<&'static str>,
    make: fn(&Pow) -> Block,
}

const CASES: &[Case] = &[
    Case {
        name: "bad proof of work",
        bug: Some("skip-hash-check"),
        make: |n| unmine(block_on(n, &genesis(n), 1, T0, vec![])),
    },
    Case {
        name: "wrong target",
        bug: None,
        make: |n| {
            let mut b = block_on(n, &genesis(n), 1, T0, vec![]);
            b.header.target *= 2;
            mine(b)
        },
    },
    Case {
        name: "wrong Merkle root",
        bug: None,
        make: |n| {
            let mut b = block_on(n, &genesis(n), 1, T0, vec![transfer("a0", "a1", 1, 0)]);
            b.header.merkle = Block::merkle_of(&b.txs[..1]);
            mine(b)
        },
    },
    Case {
        name: "bad signature",
        bug: None,
        make: |n| {
            let mut t = transfer("a0", "a1", 1, 0);
            t.amount = 2;
            block_on(n, &genesis(n), 1, T0, vec![t])
        },
    },
    Case {
        name: "overdraft",
        bug: Some("no-double-spend-check"),
        make: |n| block_on(n, &genesis(n), 1, T0, vec![transfer("a0", "a1", 11, 0)]),
    },
    Case {
        name: "the same transfer twice",
        bug: Some("no-double-spend-check"),
        make: |n| {
            let t = transfer("a0", "a1", 1, 0);
            block_on(n, &genesis(n), 1, T0, vec![t.clone(), t])
        },
    },
    Case {
        name: "two transfers with one nonce",
        bug: Some("no-double-spend-check"),
        make: |n| {
            let (t, u) = (transfer("a0", "a1", 6, 0), transfer("a0", "a2", 6, 0));
            block_on(n, &genesis(n), 1, T0, vec![t, u])
        },
    },
    Case {
        name: "a coinbase above the reward",
        bug: None,
        make: |n| {
            let mut b = block_on(n, &genesis(n), 1, T0, vec![]);
            b.txs[0] = Tx::Coinbase {
                height: 1,
                to: "miner:n2".into(),
                amount: 51,
            };
            b.header.merkle = Block::merkle_of(&b.txs);
            mine(b)
        },
    },
    Case {
        name: "a coinbase to another miner",
        bug: None,
        make: |n| {
            let mut b = block_on(n, &genesis(n), 1, T0, vec![]);
            b.txs[0] = Tx::Coinbase {
                height: 1,
                to: "miner:n3".into(),
                amount: 50,
            };
            b.header.merkle = Block::merkle_of(&b.txs);
            mine(b)
        },
    },
    Case {
        name: "a timestamp beyond max_future_ms",
        bug: Some("accept-future-blocks"),
        make: |n| block_on(n, &genesis(n), 1, T0 + 2001, vec![]),
    },
    Case {
        name: "a timestamp not after the parent's",
        bug: None,
        make: |n| block_on(n, &genesis(n), 1, 0, vec![]),
    },
];

#[test]
fn each_broken_block_is_refused_and_only_its_planted_bug_lets_it_in() {
    // The control: the same block unbroken is taken.
    let mut n = judge(&[], &[]);
    let ok = block_on(&n, &genesis(&n), 1, T0, vec![transfer("a0", "a1", 10, 0)]);
    deliver(&mut n, "n2", Msg::Block(ok.clone()));
    assert_eq!(n.tip().hash, ok.hash());
    for case in CASES {
        for bug in [None]
            .into_iter()
            .chain(crate::bugs::KNOWN.iter().copied().map(Some))
        {
            let mut n = judge(&[], bug.as_slice());
            let b = (case.make)(&n);
            deliver(&mut n, "n2", Msg::Block(b.clone()));
            let taken = n.tip().hash == b.hash();
            let expected = case.bug.is_some() && case.bug == bug;
            assert_eq!(taken, expected, "{} with bug {bug:?}", case.name);
            if !taken {
                let c = n.counters();
                assert_eq!(
                    c.rejected_blocks + c.deferred,
                    1,
                    "{} with bug {bug:?}: counted",
                    case.name
                );
            }
        }
    }
}

#[test]
fn a_bug_that_lets_a_double_spend_in_leaves_its_mark_on_the_state() {
    let mut n = judge(&[], &["no-double-spend-check"]);
    let t = transfer("a0", "a1", 7, 0);
    let b = block_on(&n, &genesis(&n), 1, T0, vec![t.clone(), t]);
    deliver(&mut n, "n2", Msg::Block(b));
    assert_eq!(n.tip_state().balance("a0"), -4);
    assert_eq!(
        n.tip_state().supply_delta(),
        (0, 50),
        "money moved, not minted"
    );
}

#[test]
fn a_block_from_the_future_waits_for_the_clock() {
    let mut n = judge(&[], &[]);
    let b = block_on(&n, &genesis(&n), 1, T0 + 5000, vec![]);
    deliver(&mut n, "n2", Msg::Block(b.clone()));
    assert_eq!((n.counters().deferred, n.rejected()), (1, 0));
    step(&mut n, Input::Tick { now_ms: T0 + 2999 });
    assert_ne!(n.tip().hash, b.hash());
    step(&mut n, Input::Tick { now_ms: T0 + 3000 });
    assert_eq!(n.tip().hash, b.hash());
    // Far beyond the horizon it is dropped outright.
    let far = block_on(&n, &b.hash(), 1, T0 + 100_000, vec![]);
    deliver(&mut n, "n2", Msg::Block(far));
    assert_eq!(n.rejected(), 1);
}

#[test]
fn transfers_are_checked_against_the_chain_they_extend() {
    let mut n = judge(&[], &[]);
    let g = genesis(&n);
    let b1 = block_on(&n, &g, 1, T0, vec![transfer("a0", "a1", 6, 0)]);
    deliver(&mut n, "n2", Msg::Block(b1.clone()));
    // Nonce 0 is used on this chain: a replay in the next block is a double spend.
    let replay = block_on(&n, &b1.hash(), 1, T0 + 1, vec![transfer("a0", "a1", 6, 0)]);
    deliver(&mut n, "n2", Msg::Block(replay));
    assert_eq!((n.rejected(), n.tip().hash), (1, b1.hash()));
    // a0 holds 4 on this chain, but 10 on a fork from genesis.
    let over = block_on(&n, &b1.hash(), 1, T0 + 1, vec![transfer("a0", "a2", 5, 1)]);
    deliver(&mut n, "n2", Msg::Block(over));
    assert_eq!(n.rejected(), 2);
    let fork = block_on(&n, &g, 2, T0 + 1, vec![transfer("a0", "a2", 5, 0)]);
    deliver(&mut n, "n3", Msg::Block(fork.clone()));
    assert!(n.tree.contains(&fork.hash()));
    assert_eq!(n.tip().hash, b1.hash(), "equal work: the first seen stays");
}

#[test]
fn a_heavier_fork_wins_and_its_abandoned_transfers_return_to_the_mempool() {
    let mut n = judge(&[], &[]);
    let g = genesis(&n);
    let a = extend(&mut n, g, 2, T0);
    let t = transfer("a0", "a1", 4, 0);
    let a3 = block_on(&n, &a[1], 1, T0 + 1000, vec![t.clone()]);
    deliver(&mut n, "n2", Msg::Block(a3.clone()));
    assert_eq!(n.tip().hash, a3.hash());
    assert_eq!(n.tip_state().balance("a0"), 6);
    // A fork from a[0]: two blocks tie... three beat the main chain's three.
    let mut p = a[0];
    for i in 0..3u64 {
        let b = block_on(&n, &p, 2, T0 + 600 + 500 * i, vec![]);
        p = b.hash();
        deliver(&mut n, "n3", Msg::Block(b));
        let expect_tip = if i < 2 { a3.hash() } else { p };
        assert_eq!(n.tip().hash, expect_tip, "fork block {i}");
    }
    let c = n.counters();
    assert_eq!((c.reorgs, c.deepest_reorg), (1, 2));
    assert_eq!(
        n.tip_state().balance("a0"),
        10,
        "the state of the new chain"
    );
    assert_eq!(n.tip_state().balance("miner:n3"), 150);
    assert_eq!(n.tip_state().balance("miner:n2"), 50);
    assert_eq!(
        n.mempool_len(),
        1,
        "the abandoned transfer is waiting again"
    );
    assert_eq!(n.tip_state(), &n.state_replayed());
}

impl Pow {
    /// The tip's state computed from scratch (tests hold the cached one against it).
    fn state_replayed(&self) -> crate::ledger::Ledger {
        let mut s = crate::ledger::Ledger::default();
        for h in &self.best_chain()[1..] {
            s.apply_block(self.block(h).unwrap(), false).unwrap();
        }
        s
    }
}

/// A main chain of 4 blocks on schedule, and a fork of 5 from genesis whose slow first
/// window (blocks 1 to 3) makes blocks 4 and 5 four times easier: longer, but lighter
/// (3 + 2/4 < 4).
fn longer_but_lighter(bugs: &[&str]) -> (Pow, Hash, Hash) {
    let mut n = judge(&[("retarget", "2")], bugs);
    step(
        &mut n,
        Input::Tick {
            now_ms: T0 + 200_000,
        },
    );
    let g = genesis(&n);
    let main = extend(&mut n, g, 4, T0);
    let mut p = g;
    for i in 0..5u64 {
        let ts = if i < 2 { T0 + i } else { T0 + 100_000 + i };
        let b = block_on(&n, &p, 2, ts, vec![]);
        p = b.hash();
        deliver(&mut n, "n3", Msg::Block(b));
    }
    let (main_tip, fork_tip) = (*main.last().unwrap(), p);
    let (mw, fw) = (
        n.tree.get(&main_tip).unwrap().work,
        n.tree.get(&fork_tip).unwrap().work,
    );
    assert!(
        fw < mw && n.tree.get(&fork_tip).unwrap().height() > 4,
        "{fw} {mw}"
    );
    (n, main_tip, fork_tip)
}

#[test]
fn a_longer_but_lighter_fork_does_not_win_unless_length_is_what_counts() {
    let (n, main_tip, _) = longer_but_lighter(&[]);
    assert_eq!(n.tip().hash, main_tip);
    assert_eq!(n.counters().reorgs, 0);
    let (n, _, fork_tip) = longer_but_lighter(&["longest-not-heaviest"]);
    assert_eq!(n.tip().hash, fork_tip);
    assert_eq!(n.counters().reorgs, 1);
}

#[test]
fn the_target_follows_the_retarget_rule() {
    let mut n = judge(&[("retarget", "2")], &[]);
    step(
        &mut n,
        Input::Tick {
            now_ms: T0 + 10_000,
        },
    );
    let g = genesis(&n);
    let base = n.tree.get(&g).unwrap().block.header.target;
    // Blocks 1..3 twice as slow as block_ms: block 4 is twice as easy.
    let mut p = g;
    for i in 0..4u64 {
        let b = block_on(&n, &p, 1, T0 + 1000 * i, vec![]);
        p = b.hash();
        deliver(&mut n, "n2", Msg::Block(b));
    }
    let h4 = n.tree.get(&p).unwrap().block.header.target;
    assert_eq!(h4, base / 500 * 1000 + (base % 500) * 1000 / 500);
    assert_eq!(n.tip().height(), 4);
}

#[test]
fn orphans_wait_for_their_parent_which_is_asked_of_the_sender() {
    let mut src = judge(&[], &[]);
    let g = genesis(&src);
    let chain = extend(&mut src, g, 3, T0);
    let blocks: Vec<Block> = chain
        .iter()
        .map(|h| src.block(h).unwrap().clone())
        .collect();
    let mut n = judge(&[], &[]);
    let out = deliver(&mut n, "n2", Msg::Block(blocks[2].clone()));
    assert_eq!(n.orphan_count(), 1);
    assert_eq!(
        out.send,
        vec![("n2".to_string(), Msg::GetBlock { hash: chain[1] })]
    );
    // The sender answers with the block and its ancestors, highest first.
    let answer = deliver(&mut src, "n3", Msg::GetBlock { hash: chain[1] });
    assert_eq!(
        answer.send,
        vec![(
            "n3".to_string(),
            Msg::Blocks(vec![blocks[1].clone(), blocks[0].clone()])
        )]
    );
    let (_, msg) = answer.send.into_iter().next().unwrap();
    let out = deliver(&mut n, "n2", msg);
    assert_eq!(n.tip().hash, chain[2]);
    assert_eq!(n.orphan_count(), 0);
    assert_eq!(out.persist.len(), 3, "parents first, then the orphan");
    assert!(matches!(&out.persist[2], Record::Block(b) if b.hash() == chain[2]));
    // An orphan must still carry its proof of work.
    let fake = unmine(block_on(&src, &chain[2], 1, T0 + 5000, vec![]));
    let mut fresh = judge(&[], &[]);
    deliver(&mut fresh, "n2", Msg::Block(fake));
    assert_eq!((fresh.orphan_count(), fresh.rejected()), (0, 1));
}

#[test]
fn peers_that_are_not_members_and_oversized_messages_are_refused() {
    let mut n = judge(&[], &[]);
    let b = block_on(&n, &genesis(&n), 1, T0, vec![]);
    deliver(&mut n, "n9", Msg::Block(b.clone()));
    deliver(&mut n, "n1", Msg::Block(b.clone()));
    deliver(&mut n, "n2", Msg::Blocks(vec![b; 17]));
    assert_eq!(n.rejected(), 3);
    assert_eq!(n.tip().height(), 0);
    // A forged transfer is counted; a good one is kept and relayed.
    let mut bad = transfer("a0", "a1", 1, 0);
    bad.to = "a2".into();
    assert!(deliver(&mut n, "n2", Msg::Tx(bad)).send.is_empty());
    assert_eq!(n.rejected(), 4);
    let out = deliver(&mut n, "n2", Msg::Tx(transfer("a0", "a1", 1, 0)));
    assert_eq!(n.mempool_len(), 1);
    assert_eq!(out.send.len(), 1);
}

#[test]
fn opts_are_listed_and_unknown_or_malformed_ones_refused() {
    let accepted = Pow::accepted_opts();
    for key in [
        "hashrate",
        "block_ms",
        "retarget",
        "reward",
        "confirmations",
        "max_future_ms",
        "tx_ttl",
        "key_seed",
        "initial_work",
    ] {
        assert!(
            sunder_core::opts::check(accepted, [(key, "3")]).is_ok(),
            "{key}"
        );
    }
    assert!(sunder_core::opts::check(accepted, [("hashrate", "fast")]).is_err());
    assert!(sunder_core::opts::check(accepted, [("difficulty", "3")]).is_err());
    assert_eq!(Pow::known_bugs().len(), 4);
    let n = Pow::recover(
        config("n1", &[("reward", "7"), ("confirmations", "0")], &[], 0),
        vec![],
    );
    assert_eq!((n.params().reward, n.params().confirmations), (7, 1));
}

/// A cluster of cores wired by hand: clocks advance together by 50 ms a tick, and every
/// message is delivered `delay_ms` after it was sent (long enough for forks to happen).
struct Cluster {
    names: Vec<String>,
    nodes: Vec<Pow>,
    now: u64,
    delay_ms: u64,
    inbox: Vec<Vec<(u64, String, Msg)>>,
    /// Node, token, reply, and the node's tip height when it replied.
    replies: Vec<(usize, ReqToken, Response, u64)>,
    persisted: Vec<Vec<Record>>,
    trace: Vec<String>,
}

impl Cluster {
    fn new(seed: u64, opts: &[(&str, &str)]) -> Cluster {
        let nodes: Vec<Pow> = MEMBERS
            .iter()
            .enumerate()
            .map(|(i, id)| Pow::recover(config(id, opts, &[], seed * 10 + i as u64), vec![]))
            .collect();
        Cluster::of(nodes)
    }

    /// A cluster of these nodes (their configs name the same members, in this order).
    fn of(nodes: Vec<Pow>) -> Cluster {
        Cluster {
            names: nodes.iter().map(|n| n.id.clone()).collect(),
            inbox: vec![Vec::new(); nodes.len()],
            persisted: vec![Vec::new(); nodes.len()],
            nodes,
            now: T0,
            delay_ms: 300,
            replies: Vec::new(),
            trace: Vec::new(),
        }
    }

    fn absorb(&mut self, i: usize, out: Out) {
        for (to, msg) in out.send {
            let j = self.names.iter().position(|m| *m == to).unwrap();
            self.trace.push(format!("{i}->{j} {msg:?}"));
            self.inbox[j].push((self.now + self.delay_ms, self.names[i].clone(), msg));
        }
        for (token, r) in out.reply {
            let tip = self.nodes[i].tip().height();
            self.replies.push((i, token, r, tip));
        }
        self.persisted[i].extend(out.persist);
    }

    fn run(&mut self, ticks: usize) {
        for _ in 0..ticks {
            self.now += 50;
            for i in 0..self.nodes.len() {
                let (due, later) = std::mem::take(&mut self.inbox[i])
                    .into_iter()
                    .partition(|(at, _, _)| *at <= self.now);
                self.inbox[i] = later;
                let due: Vec<(u64, String, Msg)> = due;
                for (_, from, msg) in due {
                    let out = step(&mut self.nodes[i], Input::Peer { from, msg });
                    self.absorb(i, out);
                }
                let out = step(&mut self.nodes[i], Input::Tick { now_ms: self.now });
                self.absorb(i, out);
            }
        }
    }

    fn client(&mut self, i: usize, id: u64, op: Op) {
        let out = client(&mut self.nodes[i], id, op);
        self.absorb(i, out);
    }
}

fn accounts() -> Vec<String> {
    (0..5).map(|i| format!("a{i}")).collect()
}

#[test]
fn three_nodes_converge_confirm_a_transfer_and_conserve_the_bank() {
    let mut c = Cluster::new(3, &[]);
    c.run(60);
    let t = Op::Transfer {
        from: "a0".into(),
        to: "a3".into(),
        amount: 4,
    };
    c.client(0, 1, t);
    c.run(10);
    // Another from the same account at another node: its own nonce, both get in.
    c.client(
        1,
        2,
        Op::Transfer {
            from: "a0".into(),
            to: "a4".into(),
            amount: 5,
        },
    );
    c.run(10);
    // Refused at once: a0 holds 10, 9 of which are already on their way.
    c.client(
        2,
        3,
        Op::Transfer {
            from: "a0".into(),
            to: "a1".into(),
            amount: 2,
        },
    );
    c.run(440);
    let tips: Vec<u64> = c.nodes.iter().map(|n| n.tip().height()).collect();
    assert!(tips.iter().all(|h| *h >= 15), "blocks came: {tips:?}");
    // Common prefix: every node agrees on every block `confirmations` deep.
    let k = 3;
    let low = tips.iter().min().unwrap() + 1 - k;
    for h in 0..=low {
        let at: Vec<Hash> = c.nodes.iter().map(|n| n.best_chain()[h as usize]).collect();
        assert!(at.iter().all(|x| *x == at[0]), "height {h}: {at:?}");
    }
    let by_id: BTreeMap<u64, &Response> = c.replies.iter().map(|(_, t, r, _)| (t.id, r)).collect();
    assert!(by_id[&1].ok, "{:?}", by_id[&1]);
    assert!(by_id[&2].ok, "{:?}", by_id[&2]);
    // The delay made forks, and nodes reorganised (deterministic: the seed is fixed).
    assert!(c.nodes.iter().map(|n| n.counters().reorgs).sum::<u64>() > 0);
    assert_eq!(
        by_id[&3].error.as_deref(),
        Some(sunder_wire::bank::INSUFFICIENT_FUNDS)
    );
    assert!(by_id[&3].definite);
    // The ok came when its block was `confirmations` deep on the node that answered.
    let (i, _, _, tip_then) = c.replies.iter().find(|(_, t, _, _)| t.id == 1).unwrap();
    let n = &c.nodes[*i];
    let (h, _) = n
        .best_chain()
        .iter()
        .enumerate()
        .find(|(_, h)| {
            n.block(h).unwrap().txs.iter().any(|t| {
                t.as_transfer()
                    .is_some_and(|t| t.from == "a0" && t.to == "a3")
            })
        })
        .expect("the transfer is in the chain");
    assert_eq!(
        tip_then + 1 - h as u64,
        k,
        "answered as soon as k deep, not before"
    );
    for (j, n) in c.nodes.iter_mut().enumerate() {
        let out = client(n, 9, Op::Balances { keys: accounts() });
        let v = &out.reply[0].1.value;
        let total: i64 = accounts().iter().map(|a| v[a].as_i64().unwrap()).sum();
        assert_eq!(total, 50, "node {j}: {v}");
        assert_eq!(v["a3"], 14, "node {j}");
        assert!(n.tip_state().supply_delta().0 == 0);
        assert_eq!(n.tip_state(), &n.state_replayed());
    }
    // Recovery from the persisted records gives the same tip and balances.
    for (j, recs) in c.persisted.iter().enumerate() {
        let cfg = config(MEMBERS[j], &[], &[], 0);
        let r = Pow::recover(cfg, recs.clone());
        assert_eq!(r.tip().hash, c.nodes[j].tip().hash);
        assert_eq!(r.tip_state(), c.nodes[j].tip_state());
    }
}

#[test]
fn the_same_seed_and_inputs_give_the_same_outputs() {
    let run = |seed| {
        let mut c = Cluster::new(seed, &[("hashrate", "3000")]);
        c.run(100);
        c.client(
            0,
            1,
            Op::Transfer {
                from: "a1".into(),
                to: "a2".into(),
                amount: 1,
            },
        );
        c.run(100);
        (c.trace, c.nodes[0].tip().hash)
    };
    let (a, b) = (run(5), run(5));
    assert_eq!(a, b);
    assert!(!a.0.is_empty());
    assert_ne!(run(6).0, a.0);
}

#[test]
fn client_ops_other_than_the_bank_and_admin_are_bad_requests() {
    let mut n = judge(&[], &[]);
    for op in [
        Op::Read { key: "k".into() },
        Op::Write {
            key: "k".into(),
            value: 1,
        },
        Op::Transfer {
            from: "a0".into(),
            to: "a0".into(),
            amount: 1,
        },
        Op::Transfer {
            from: "miner:n1".into(),
            to: "a0".into(),
            amount: 1,
        },
        Op::Balances { keys: vec![] },
    ] {
        let out = client(&mut n, 1, op.clone());
        let r = &out.reply[0].1;
        assert!(
            !r.ok && r.definite && r.error.as_deref() == Some("bad-request"),
            "{op:?}"
        );
    }
    let out = client(&mut n, 2, Op::Status);
    assert_eq!(out.reply[0].1.value["role"], "miner");
    let dump = client(&mut n, 3, Op::Dump).reply[0].1.value.clone();
    let parsed: sunder_wire::Dump = serde_json::from_value(dump.clone()).unwrap();
    assert_eq!(parsed.node, "n1");
    assert_eq!(dump["height"], 0);
    assert_eq!(dump["chain"].as_array().unwrap().len(), 1);
}

fn only_reply(out: &Out) -> &Response {
    assert_eq!(out.reply.len(), 1, "{:?}", out.reply);
    &out.reply[0].1
}

#[test]
fn balances_read_the_confirmed_state_and_transfers_answer_at_depth_k() {
    let mut n = judge(&[], &[]);
    let keys = vec!["a0".to_string(), "a1".to_string()];
    let asked = client(
        &mut n,
        1,
        Op::Transfer {
            from: "a0".into(),
            to: "a1".into(),
            amount: 4,
        },
    );
    assert!(asked.reply.is_empty());
    assert_eq!(n.mempool_len(), 1);
    // What the node signed for its client and gossiped, as a peer miner would include it.
    let t = asked
        .send
        .iter()
        .find_map(|(_, m)| match m {
            Msg::Tx(t) => Some(t.clone()),
            _ => None,
        })
        .expect("the transfer is gossiped");
    assert_eq!((t.nonce, t.expires), (0, 20)); // tip height 0 + tx_ttl
    let b1 = block_on(&n, &genesis(&n), 1, T0, vec![t]);
    assert!(
        deliver(&mut n, "n2", Msg::Block(b1.clone()))
            .reply
            .is_empty()
    );
    assert_eq!(n.mempool_len(), 0, "included: out of the mempool");
    let read = |n: &mut Pow| {
        only_reply(&client(n, 9, Op::Balances { keys: keys.clone() }))
            .value
            .clone()
    };
    assert_eq!(read(&mut n), serde_json::json!({"a0": 10, "a1": 10}));
    let b2 = block_on(&n, &b1.hash(), 1, T0 + 1, vec![]);
    assert!(
        deliver(&mut n, "n2", Msg::Block(b2.clone()))
            .reply
            .is_empty(),
        "depth 2"
    );
    let b3 = block_on(&n, &b2.hash(), 1, T0 + 2, vec![]);
    let out = deliver(&mut n, "n2", Msg::Block(b3));
    let r = only_reply(&out);
    assert!(r.ok, "depth 3: {r:?}");
    assert_eq!(n.confirmed_height(), 1);
    assert_eq!(read(&mut n), serde_json::json!({"a0": 6, "a1": 14}));
}

#[test]
fn a_transfer_whose_nonce_or_expiry_is_confirmed_without_it_fails_definitely() {
    let mut n = judge(&[("tx_ttl", "5")], &[]);
    let op = |to: &str| Op::Transfer {
        from: "a0".into(),
        to: to.into(),
        amount: 1,
    };
    client(&mut n, 1, op("a1"));
    client(&mut n, 2, op("a2"));
    // Another node's transfer takes a0's nonce 0 first; nonce 1 is then out of order
    // forever (the client's second transfer waits on the first) and expires.
    let other = transfer("a0", "a3", 1, 0);
    let mut p = genesis(&n);
    let mut replies = Vec::new();
    for i in 0..8u64 {
        let txs = if i == 0 { vec![other.clone()] } else { vec![] };
        let b = block_on(&n, &p, 1, T0 + i, txs);
        p = b.hash();
        let out = deliver(&mut n, "n2", Msg::Block(b));
        replies.extend(out.reply.into_iter().map(|(t, r)| (i + 1, t.id, r)));
    }
    let errs: Vec<(u64, u64, Option<&str>, bool)> = replies
        .iter()
        .map(|(h, id, r)| (*h, *id, r.error.as_deref(), r.definite))
        .collect();
    assert_eq!(
        errs,
        vec![
            (3, 1, Some(crate::NONCE_TAKEN), true),
            (7, 2, Some(crate::TX_EXPIRED), true)
        ],
        "nonce 0 taken at depth 3 (tip 3); expiry height 5 confirmed at tip 7"
    );
}

#[test]
fn recovery_drops_recorded_blocks_whose_parent_is_missing() {
    let mut n = judge(&[], &[]);
    let g = genesis(&n);
    let chain = extend(&mut n, g, 4, T0);
    let t = transfer("a0", "a1", 3, 0);
    let b5 = block_on(&n, &chain[3], 1, T0 + 1600, vec![t]);
    let mut out = deliver(&mut n, "n2", Msg::Block(b5));
    assert_eq!(n.tip().height(), 5);
    let mut records: Vec<Record> = chain
        .iter()
        .map(|h| Record::Block(n.block(h).unwrap().clone()))
        .collect();
    records.append(&mut out.persist);
    let all = Pow::recover(config("n1", &[], &[], 0), records.clone());
    assert_eq!(all.tip().hash, n.tip().hash);
    assert_eq!(all.tip_state(), n.tip_state());
    assert_eq!(all.tip_state().balance("a1"), 13);
    records.remove(2); // block 3: blocks 4 and 5 lose their parent
    let some = Pow::recover(config("n1", &[], &[], 0), records);
    assert_eq!(some.tip().hash, chain[1]);
    assert_eq!(some.block_count(), 3);
    assert_eq!(some.tip_state().balance("a1"), 10);
}

/// Two clients ask two nodes for the same transfer at the same moment: each node signs one
/// at the same nonce. They must be two transactions, so that the chain takes one and the
/// other's client hears `nonce-taken`, never `ok` for a transfer that happened once.
#[test]
fn the_same_transfer_asked_of_two_nodes_is_two_transactions() {
    let ask = |id: &str| {
        let mut o = vec![("hashrate", "0")];
        o.push(("confirmations", "1"));
        let mut n = Pow::recover(config(id, &o, &[], 1), vec![]);
        step(&mut n, Input::Tick { now_ms: T0 });
        let out = client(
            &mut n,
            1,
            Op::Transfer {
                from: "a0".into(),
                to: "a1".into(),
                amount: 4,
            },
        );
        let t = out
            .send
            .iter()
            .find_map(|(_, m)| match m {
                Msg::Tx(t) => Some(t.clone()),
                _ => None,
            })
            .expect("gossiped");
        (n, t)
    };
    let (mut n1, t1) = ask("n1");
    let (mut n2, t2) = ask("n2");
    assert_eq!((t1.nonce, t2.nonce), (0, 0));
    assert_ne!(Tx::Transfer(t1.clone()).id(), Tx::Transfer(t2.clone()).id());
    // A block with n1's transfer: n1's client is answered ok, n2's hears nonce-taken.
    let b = block_on(&n1, &genesis(&n1), 2, T0, vec![t1]);
    let r1 = only_reply(&deliver(&mut n1, "n3", Msg::Block(b.clone()))).clone();
    let r2 = only_reply(&deliver(&mut n2, "n3", Msg::Block(b))).clone();
    assert!(r1.ok, "{r1:?}");
    assert_eq!(
        (r2.ok, r2.error.as_deref()),
        (false, Some(crate::NONCE_TAKEN))
    );
}

/// A node that starts on a stale tip (here: none but genesis) announces it; a peer with
/// more work answers with its tip, the node asks for the missing ancestors, and it is on
/// the heavier chain before anyone mines again. Peers with less work, or that know the
/// hash already at their tip, say nothing.
#[test]
fn a_starting_node_announces_its_tip_and_catches_up_from_a_heavier_peer() {
    let mut ahead = judge(&[], &[]);
    let g = genesis(&ahead);
    let chain = extend(&mut ahead, g, 3, T0 + 1);
    let mut behind = Pow::recover(config("n3", &[("hashrate", "0")], &[], 1), vec![]);
    let hello = step(&mut behind, Input::Tick { now_ms: T0 + 3000 });
    let tips: Vec<&Msg> = hello.send.iter().map(|(_, m)| m).collect();
    assert_eq!(tips.len(), MEMBERS.len() - 1, "{tips:?}");
    assert!(tips.iter().all(|m| **m == Msg::Tip { hash: g }));
    // Delivers every message between the two until none is left.
    let mut queue: Vec<(bool, Msg)> = vec![(true, Msg::Tip { hash: g })];
    let mut rounds = 0;
    while let Some((to_ahead, msg)) = queue.pop() {
        rounds += 1;
        assert!(rounds < 50, "the exchange ends");
        let out = if to_ahead {
            deliver(&mut ahead, "n3", msg)
        } else {
            deliver(&mut behind, "n1", msg)
        };
        for (to, m) in out.send {
            if to == "n3" || to == "n1" {
                queue.push((to == "n1", m));
            }
        }
    }
    assert_eq!(behind.tip().hash, *chain.last().unwrap());
    // The peer now knows the tip: announcing it again draws no answer.
    let again = deliver(
        &mut ahead,
        "n3",
        Msg::Tip {
            hash: behind.tip().hash,
        },
    );
    assert!(again.send.is_empty(), "{:?}", again.send);
    // And the node behind never answers a tip with more work than its own.
    let quiet = deliver(&mut behind, "n1", Msg::Tip { hash: chain[2] });
    assert!(quiet.send.is_empty(), "{:?}", quiet.send);
}
