//! Forgers (forge.rs): three honest nodes and one forger, each forgery against the honest
//! nodes with and without the planted bug that lets it in. With the bug, the forged block
//! (or the light chain) ends up on the honest nodes' best chains; without it, the same
//! seed leaves none there and the honest nodes refused what the forger sent.

use super::*;
use crate::hash::work_of;
use crate::ledger::Ledger;
use sunder_core::Byzantine;

const MEMBERS4: [&str; 4] = ["n1", "n2", "n3", "n4"];

/// Three honest nodes with `bugs` and the forger n4 in `mode`, mining at 2000 hashes a
/// second each; 100 ms between any two nodes.
fn forged(mode: &str, bugs: &[&str], seed: u64) -> Cluster {
    let nodes = MEMBERS4
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut c = config(id, &[], bugs, seed * 10 + i as u64);
            c.members = MEMBERS4.map(String::from).to_vec();
            if i == 3 {
                c.byzantine = Some(Byzantine {
                    mode: mode.into(),
                    allies: Vec::new(),
                });
            }
            Pow::recover(c, vec![])
        })
        .collect();
    let mut c = Cluster::of(nodes);
    c.delay_ms = 100;
    c
}

/// Transfers between the five accounts from the honest nodes, every second, while the
/// cluster runs `secs` seconds.
fn run_with_transfers(c: &mut Cluster, secs: u64) {
    for s in 0..secs {
        let i = (s % 3) as usize;
        let from = format!("a{}", s % 5);
        let to = format!("a{}", (s + 1) % 5);
        c.client(
            i,
            s,
            Op::Transfer {
                from,
                to,
                amount: 1,
            },
        );
        c.run(20);
    }
}

fn honest_best(c: &Cluster) -> impl Iterator<Item = (&Pow, Vec<&Block>)> {
    c.nodes[..3].iter().map(|n| {
        let blocks = n.best_chain().iter().map(|h| n.block(h).unwrap()).collect();
        (n, blocks)
    })
}

fn forger(c: &Cluster) -> &crate::byzantine::ByzCounters {
    c.nodes[3].byzantine_counters().unwrap()
}

fn refused(c: &Cluster) -> u64 {
    c.nodes[..3]
        .iter()
        .map(|n| n.counters().rejected_blocks)
        .sum()
}

#[test]
fn forged_hashes_get_in_only_past_skip_hash_check() {
    let no_work = |c: &Cluster| {
        honest_best(c)
            .map(|(_, b)| {
                b[1..]
                    .iter()
                    .filter(|b| !meets(&b.hash(), b.header.target))
                    .count()
            })
            .sum::<usize>()
    };
    for seed in 1..=2 {
        let mut bad = forged("forge-hash", &["skip-hash-check"], seed);
        bad.run(400);
        assert!(forger(&bad).forged > 0);
        assert!(no_work(&bad) > 0, "seed {seed}: the bug let them in");
        let mut good = forged("forge-hash", &[], seed);
        good.run(400);
        assert!(forger(&good).forged > 0 && refused(&good) > 0);
        assert_eq!(no_work(&good), 0, "seed {seed}");
        assert!(good.nodes[0].tip().height() > 10);
    }
}

#[test]
fn forged_double_spends_get_in_only_past_no_double_spend_check() {
    // A transfer reusing a nonce its payer spent before on the same chain.
    let reused = |c: &Cluster| {
        honest_best(c)
            .map(|(_, blocks)| {
                let mut s = Ledger::default();
                let mut bad = 0;
                for b in &blocks[1..] {
                    for t in b.txs[1..].iter().filter_map(Tx::as_transfer) {
                        if t.nonce < s.next_nonce(&t.from) || s.balance(&t.from) < t.amount {
                            bad += 1;
                        }
                    }
                    s.apply_block(b, false).unwrap();
                }
                bad
            })
            .sum::<usize>()
    };
    for seed in 1..=2 {
        let mut bad = forged("forge-spend", &["no-double-spend-check"], seed);
        run_with_transfers(&mut bad, 20);
        assert!(forger(&bad).forged > 0);
        assert!(reused(&bad) > 0, "seed {seed}: the bug let them in");
        let mut good = forged("forge-spend", &[], seed);
        run_with_transfers(&mut good, 20);
        assert!(forger(&good).forged > 0 && refused(&good) > 0);
        assert_eq!(reused(&good), 0, "seed {seed}");
    }
}

#[test]
fn forged_timestamps_get_in_only_past_accept_future_blocks() {
    let ahead = |c: &Cluster| {
        honest_best(c)
            .map(|(n, b)| {
                b.iter()
                    .filter(|b| b.header.timestamp_ms > n.now_ms + 60_000)
                    .count()
            })
            .sum::<usize>()
    };
    for seed in 1..=2 {
        let mut bad = forged("forge-future", &["accept-future-blocks"], seed);
        bad.run(400);
        assert!(forger(&bad).forged > 0);
        assert!(ahead(&bad) > 0, "seed {seed}: the bug let them in");
        let mut good = forged("forge-future", &[], seed);
        good.run(400);
        assert!(forger(&good).forged > 0 && refused(&good) > 0);
        assert_eq!(ahead(&good), 0, "seed {seed}");
    }
}

#[test]
fn a_light_chain_wins_only_past_longest_not_heaviest() {
    let work = |b: &[&Block]| {
        b[1..]
            .iter()
            .map(|b| work_of(b.header.target))
            .sum::<u128>()
    };
    // Whether the honest nodes' best chains start with the forger's block.
    let on_light = |c: &Cluster| {
        honest_best(c)
            .filter(|(_, b)| b.len() > 1 && b[1].header.miner == 3)
            .count()
    };
    for seed in 1..=2 {
        let mut bad = forged("forge-light", &["longest-not-heaviest"], seed);
        bad.run(1200);
        assert!(forger(&bad).published > 0);
        assert_eq!(
            on_light(&bad),
            3,
            "seed {seed}: all three took the light chain"
        );
        let mut good = forged("forge-light", &[], seed);
        good.run(1200);
        assert!(forger(&good).published > 0, "seed {seed}: it was offered");
        assert_eq!(on_light(&good), 0, "seed {seed}");
        // Offered a chain with more blocks and less work, and kept off it.
        let n4 = &good.nodes[3];
        let light_height = n4.height_of(&n4.byz.as_ref().unwrap().tip);
        let (honest, blocks) = honest_best(&good).next().unwrap();
        assert!(light_height > honest.tip().height(), "seed {seed}: longer");
        let light: Vec<&Block> = {
            let n = &good.nodes[3];
            let tip = n.byz.as_ref().unwrap().tip;
            n.tree.path(&tip).iter().map(|x| &x.block).collect()
        };
        assert!(work(&light) < work(&blocks), "seed {seed}: lighter");
    }
}
