//! Byzantine miners (byzantine.rs): the selfish-mining steps on scripted blocks, then
//! clusters with an attacker: honest nodes accept every block it publishes, `withhold`
//! takes more than its share of the chain, `double-spend` reverses acknowledged transfers
//! with most of the hash power and not with a tenth of it.

use super::*;
use crate::byzantine::ByzCounters;
use std::collections::BTreeSet;
use sunder_core::Byzantine;

/// A node of a cluster of `members` (`mode`: Byzantine, allied with `allies`).
fn member(
    members: &[String],
    id: &str,
    opts: &[(&str, &str)],
    seed: u64,
    mode: Option<&str>,
    allies: &[String],
) -> Pow {
    let mut c = config(id, opts, &[], seed);
    c.members = members.to_vec();
    c.byzantine = mode.map(|m| Byzantine {
        mode: m.into(),
        allies: allies.iter().filter(|a| *a != id).cloned().collect(),
    });
    Pow::recover(c, vec![])
}

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

/// `honest` honest nodes mining at `rate`, then `byz` nodes that are Byzantine in `mode`
/// (allies of each other) mining at `byz_rate`, or honest at that rate with `mode` None.
/// The genesis target is the whole cluster's rate for one block interval.
fn cluster(
    honest: usize,
    byz: usize,
    mode: Option<&str>,
    rate: u64,
    byz_rate: u64,
    seed: u64,
) -> Cluster {
    let members = names(honest + byz);
    let allies = members[honest..].to_vec();
    let work = ((honest as u64 * rate + byz as u64 * byz_rate) / 2).to_string();
    let (rate, byz_rate) = (rate.to_string(), byz_rate.to_string());
    let nodes = members
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let seed = seed * 10 + i as u64;
            let mut opts = vec![("hashrate", rate.as_str()), ("initial_work", &work)];
            if i < honest {
                member(&members, id, &opts, seed, None, &[])
            } else if mode.is_some() {
                opts.push(("byzantine_hashrate", &byz_rate));
                member(&members, id, &opts, seed, mode, &allies)
            } else {
                opts[0].1 = byz_rate.as_str();
                member(&members, id, &opts, seed, None, &[])
            }
        })
        .collect();
    let mut c = Cluster::of(nodes);
    c.delay_ms = 100;
    c
}

/// No honest node refused anything: every block the attackers published passed.
fn honest_accepted_all(c: &Cluster, honest: usize, what: &str) {
    for n in &c.nodes[..honest] {
        assert_eq!(
            (n.counters().rejected_blocks, n.rejected()),
            (0, 0),
            "{what}: {} refused something: {:?}",
            n.id,
            n.counters()
        );
    }
}

/// The attackers' counters, summed.
fn byz_counters(c: &Cluster, honest: usize) -> ByzCounters {
    let mut sum = ByzCounters::default();
    for n in &c.nodes[honest..] {
        let b = n.byzantine_counters().expect("a Byzantine node");
        sum.private_mined += b.private_mined;
        sum.published += b.published;
        sum.abandoned += b.abandoned;
        sum.races += b.races;
        sum.attacks_started += b.attacks_started;
        sum.attacks_joined += b.attacks_joined;
        sum.attacks_given_up += b.attacks_given_up;
        sum.attacks_succeeded += b.attacks_succeeded;
    }
    sum
}

#[test]
fn byzantine_hashrate_is_an_opt_and_the_modes_are_listed() {
    assert_eq!(Pow::byzantine_modes(), crate::byzantine::MODES);
    assert_eq!(&Pow::byzantine_modes()[..2], &["withhold", "double-spend"]);
    let accepted = Pow::accepted_opts();
    assert!(sunder_core::opts::check(accepted, [("byzantine_hashrate", "5000")]).is_ok());
    for bad in ["fast", "-1", "1.5", ""] {
        assert!(
            sunder_core::opts::check(accepted, [("byzantine_hashrate", bad)]).is_err(),
            "{bad:?}"
        );
    }
    let members = names(3);
    let byz = |opts: &[(&str, &str)], mode| {
        member(&members, "n3", opts, 0, mode, &[])
            .params()
            .hashrate_of(mode.is_some())
    };
    assert_eq!(byz(&[("hashrate", "7")], Some("withhold")), 7, "default");
    let set = [("hashrate", "7"), ("byzantine_hashrate", "9")];
    assert_eq!(byz(&set, Some("withhold")), 9);
    assert_eq!(byz(&set, None), 7, "an honest node mines at hashrate");
    let zero = [("byzantine_hashrate", "0")];
    assert_eq!(byz(&zero, Some("double-spend")), 1, "0 counts as 1");
}

/// What `n` sent to the honest node `n1` in `out`: block heights.
fn published_to_n1(out: &Out) -> Vec<u64> {
    out.send
        .iter()
        .filter(|(to, _)| to == "n1")
        .filter_map(|(_, m)| match m {
            Msg::Block(b) => Some(b.header.height),
            _ => None,
        })
        .collect()
}

/// The selfish miner n3 (not mining itself) with its ally n2 finding blocks, against the
/// honest n1, block by block through the strategy's cases.
#[test]
fn the_selfish_miner_publishes_only_to_win_or_to_tie() {
    let members = names(3);
    let allies = vec!["n2".to_string()];
    let node = || {
        let mut n = member(
            &members,
            "n3",
            &[("hashrate", "0")],
            1,
            Some("withhold"),
            &allies,
        );
        step(&mut n, Input::Tick { now_ms: T0 });
        n
    };
    // ally: a block by n2 on `p`; honest: by n1.
    let mine = |n: &mut Pow, p: Hash, miner: u32, ts: u64| {
        let b = block_on(n, &p, miner, ts, vec![]);
        let from = if miner == 1 { "n2" } else { "n1" };
        (b.hash(), deliver(n, from, Msg::Block(b)))
    };

    // Lead 2, the honest nodes find one: publish both, the longer chain wins.
    let mut n = node();
    let g = genesis(&n);
    let (a1, out) = mine(&mut n, g, 1, T0 + 1);
    assert!(published_to_n1(&out).is_empty() && out.persist.is_empty());
    let (a2, out) = mine(&mut n, a1, 1, T0 + 2);
    assert!(published_to_n1(&out).is_empty(), "lead 2: private");
    let b = n.byz.as_ref().unwrap();
    assert_eq!((b.tip, b.public_tip), (a2, g));
    // An honest peer asking for the private tip learns nothing.
    assert!(
        deliver(&mut n, "n1", Msg::GetBlock { hash: a2 })
            .send
            .is_empty()
    );
    let (_, out) = mine(&mut n, g, 0, T0 + 3);
    assert_eq!(published_to_n1(&out), vec![1, 2], "lead 2 fell to 1: all");
    assert_eq!(n.byz.as_ref().unwrap().public_tip, a2);
    assert_eq!(out.persist.len(), 3, "the honest block and both published");

    // Lead 1, the honest nodes find one: publish it, a race (a tie).
    let mut n = node();
    let (a1, _) = mine(&mut n, g, 1, T0 + 1);
    let (h1, out) = mine(&mut n, g, 0, T0 + 2);
    assert_eq!(published_to_n1(&out), vec![1]);
    let b = n.byz.as_ref().unwrap();
    assert_eq!((b.tip, b.public_tip, b.counters.races), (a1, h1, 1));
    // The coalition wins the race: its next block goes out at once.
    let (_, out) = mine(&mut n, a1, 1, T0 + 3);
    assert_eq!(published_to_n1(&out), vec![2]);

    // Lead 3: each honest block is matched by the private one of its height, until the
    // lead is 1 and all goes out.
    let mut n = node();
    let (a1, _) = mine(&mut n, g, 1, T0 + 1);
    let (a2, _) = mine(&mut n, a1, 1, T0 + 2);
    let (_, out) = mine(&mut n, a2, 1, T0 + 3);
    assert!(published_to_n1(&out).is_empty());
    let (h1, out) = mine(&mut n, g, 0, T0 + 4);
    assert_eq!(published_to_n1(&out), vec![1], "lead 3 fell to 2");
    let (_, out) = mine(&mut n, h1, 0, T0 + 5);
    assert_eq!(published_to_n1(&out), vec![2, 3], "lead 2 fell to 1");
    assert_eq!(n.byz.as_ref().unwrap().counters.abandoned, 0);

    // The honest chain gets two ahead at once (one answer to a GetBlock): the private
    // block is abandoned, the public tip adopted.
    let mut n = node();
    let (_, _) = mine(&mut n, g, 1, T0 + 1);
    let mut honest = judge(&[], &[]);
    let hs = extend(&mut honest, g, 2, T0 + 2);
    let blocks: Vec<Block> = hs
        .iter()
        .rev()
        .map(|h| honest.block(h).unwrap().clone())
        .collect();
    let out = deliver(&mut n, "n1", Msg::Blocks(blocks));
    assert!(published_to_n1(&out).is_empty());
    let b = n.byz.as_ref().unwrap();
    assert_eq!(
        (b.tip, b.public_tip, b.counters.abandoned),
        (hs[1], hs[1], 1)
    );
    let h2 = hs[1];
    // A race lost: the published block stays public, nothing is abandoned.
    let mut n = node();
    let (_, _) = mine(&mut n, g, 1, T0 + 1);
    let (h1, _) = mine(&mut n, g, 0, T0 + 2);
    let (h2b, _) = mine(&mut n, h1, 0, T0 + 3);
    let b = n.byz.as_ref().unwrap();
    assert_eq!((b.tip, b.counters.races, b.counters.abandoned), (h2b, 1, 0));
    // A fresh attacker catching up on the honest chain.
    let mut n = node();
    let chain = hs.iter().rev().map(|h| honest.block(h).unwrap().clone());
    let out = deliver(&mut n, "n1", Msg::Blocks(chain.collect()));
    assert!(out.send.iter().all(|(to, _)| to != "n1"), "nothing back");
    // With a private block on top, it announces the public tip, never a private one.
    let (_, _) = mine(&mut n, h2, 1, T0 + 4);
    let tip = deliver(&mut n, "n1", Msg::Tip { hash: g });
    assert!(
        matches!(&tip.send[..], [(to, Msg::Block(b))] if to == "n1" && b.hash() == h2),
        "{:?}",
        tip.send
    );
}

/// The share of honest node n1's best chain mined by the members from index `from` on.
fn share_of(c: &Cluster, from: usize) -> (usize, usize) {
    let n = &c.nodes[0];
    let chain = &n.best_chain()[1..];
    let theirs = chain
        .iter()
        .filter(|h| n.block(h).unwrap().header.miner as usize >= from)
        .count();
    (theirs, chain.len())
}

/// Three honest miners at 2000 hashes per second and one at 4900 (45% of the hash power):
/// withholding, its share of the honest nodes' chain is well above 45%; honest, about 45%.
#[test]
fn withholding_takes_more_than_the_hash_share_of_the_chain() {
    let seeds = [1u64, 2, 3, 4, 5];
    let mut above = 0;
    for seed in seeds {
        let mut report = Vec::new();
        for mode in [Some("withhold"), None] {
            let mut c = cluster(3, 1, mode, 2000, 4900, seed);
            c.run(2400); // 120 s, about 240 blocks
            honest_accepted_all(&c, 3, "withhold");
            let (theirs, len) = share_of(&c, 3);
            let share = theirs as f64 / len as f64;
            report.push((mode, theirs, len, share));
            if mode.is_some() {
                let b = byz_counters(&c, 3);
                assert!(b.published > 0 && b.private_mined > 0, "{b:?}");
                if share > 0.55 {
                    above += 1;
                }
            } else {
                assert!((0.33..0.57).contains(&share), "seed {seed}: {report:?}");
            }
        }
        eprintln!("seed {seed}: {report:?}");
    }
    assert!(above >= 4, "{above} of {} seeds above 55%", seeds.len());
}

/// The transfer ids in the blocks `n` counts as confirmed.
fn confirmed_ids(n: &Pow) -> BTreeSet<Hash> {
    let top = n.confirmed_height() as usize;
    n.best_chain()[1..=top]
        .iter()
        .flat_map(|h| n.block(h).unwrap().txs[1..].iter().map(Tx::id))
        .collect()
}

/// What a double-spend run showed on the honest nodes.
#[derive(Debug)]
struct Reversals {
    /// Transfers once confirmed on an honest node and no longer (node, id).
    reversed: Vec<(usize, Hash)>,
    /// Of those, transfers a client was told `ok`.
    acknowledged: usize,
    /// Of those, transfers whose (payer, nonce) another transfer holds in the node's
    /// chain now: double spent, not merely delayed.
    double_spent: usize,
    counters: ByzCounters,
}

/// Two honest miners at 2000 hashes per second and `byz` allied double-spenders at
/// `byz_rate` each, for
/// `secs` simulated seconds; a client transfer every second at an honest node (alternately
/// n1 and n2, one unit around accounts a0..a4). Every tick each honest node's confirmed
/// transfers are noted; a transfer confirmed there once and later missing is reversed.
fn double_spend_run(seed: u64, byz: usize, byz_rate: u64, secs: u64) -> Reversals {
    let mut c = cluster(2, byz, Some("double-spend"), 2000, byz_rate, seed);
    let mut asked: BTreeMap<u64, Hash> = BTreeMap::new();
    let mut txs: BTreeMap<Hash, Transfer> = BTreeMap::new();
    let mut ever: Vec<BTreeSet<Hash>> = vec![BTreeSet::new(); 2];
    let mut tips = [Hash::ZERO; 2];
    for tick in 0..secs * 20 {
        if tick % 20 == 10 {
            let (i, k) = ((tick / 20 % 2) as usize, tick / 20);
            let op = Op::Transfer {
                from: format!("a{}", k % 5),
                to: format!("a{}", (k + 1) % 5),
                amount: 1,
            };
            let out = client(&mut c.nodes[i], k, op);
            if let Some(t) = out.send.iter().find_map(|(_, m)| match m {
                Msg::Tx(t) => Some(t.clone()),
                _ => None,
            }) {
                let id = Tx::Transfer(t.clone()).id();
                asked.insert(k, id);
                txs.insert(id, t);
            }
            c.absorb(i, out);
        }
        c.run(1);
        for i in 0..2 {
            if c.nodes[i].tip().hash != tips[i] {
                tips[i] = c.nodes[i].tip().hash;
                ever[i].extend(confirmed_ids(&c.nodes[i]));
            }
        }
    }
    honest_accepted_all(&c, 2, "double-spend");
    let mut reversed = Vec::new();
    for (i, seen) in ever.iter().enumerate() {
        let now = confirmed_ids(&c.nodes[i]);
        reversed.extend(seen.difference(&now).map(|id| (i, *id)));
    }
    let ok: BTreeSet<Hash> = c
        .replies
        .iter()
        .filter(|(_, _, r, _)| r.ok)
        .filter_map(|(_, t, _, _)| asked.get(&t.id).copied())
        .collect();
    let double_spent = reversed
        .iter()
        .filter(|(i, id)| {
            let Some(t) = txs.get(id) else { return false };
            let n = &c.nodes[*i];
            n.best_chain()[1..].iter().any(|h| {
                n.block(h).unwrap().txs.iter().any(|x| {
                    x.as_transfer()
                        .is_some_and(|x| x.from == t.from && x.nonce == t.nonce && x != t)
                })
            })
        })
        .count();
    Reversals {
        double_spent,
        acknowledged: reversed.iter().filter(|(_, id)| ok.contains(id)).count(),
        reversed,
        counters: byz_counters(&c, 2),
    }
}

/// With three times the honest hash power (75%), the double-spender reverses transfers
/// that were `confirmations` (3) deep on an honest node and acknowledged to their client,
/// within 60 simulated seconds, on every seed.
#[test]
fn a_majority_double_spender_reverses_confirmed_transfers() {
    for seed in [1u64, 2, 3] {
        let r = double_spend_run(seed, 1, 12_000, 60);
        eprintln!(
            "seed {seed}: {} reversed, {} acknowledged, {} double spent, {:?}",
            r.reversed.len(),
            r.acknowledged,
            r.double_spent,
            r.counters
        );
        assert!(r.counters.attacks_succeeded > 0, "seed {seed}: {r:?}");
        assert!(
            r.acknowledged > 0 && r.double_spent > 0,
            "seed {seed}: {r:?}"
        );
    }
}

/// The same share split between two allies (6000 hashes per second each): they share
/// their private blocks and mine on the highest of their fork, and succeed as one. Both
/// usually see the same victim and start the same attack (their conflicts are the same
/// transfer); an ally idle when the other's fork reaches it joins it (seed 1: once).
#[test]
fn allied_double_spenders_succeed_together() {
    for seed in [1u64, 2] {
        let r = double_spend_run(seed, 2, 6_000, 60);
        eprintln!(
            "seed {seed}: {} reversed, {} acknowledged, {} double spent, {:?}",
            r.reversed.len(),
            r.acknowledged,
            r.double_spent,
            r.counters
        );
        assert!(r.counters.attacks_succeeded > 0, "seed {seed}: {r:?}");
        assert!(r.double_spent > 0, "seed {seed}: {r:?}");
    }
}

/// With a tenth of the hash power (444 against 4000), the same workload for the same time:
/// the double-spender starts forks and gives them up, and no honest confirmation is
/// reversed.
#[test]
fn a_small_double_spender_reverses_nothing_confirmed() {
    for seed in [1u64, 2, 3] {
        let r = double_spend_run(seed, 1, 444, 60);
        eprintln!(
            "seed {seed}: {} reversed, {:?}",
            r.reversed.len(),
            r.counters
        );
        assert!(r.counters.attacks_started > 0, "seed {seed}: {r:?}");
        assert!(r.counters.attacks_given_up > 0, "seed {seed}: {r:?}");
        assert_eq!(r.counters.attacks_succeeded, 0, "seed {seed}: {r:?}");
        assert!(r.reversed.is_empty(), "seed {seed}: {r:?}");
    }
}
