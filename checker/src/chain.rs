//! The proof-of-work chain's own checks, over the nodes' final dumps.
//!
//! A `pow` node's dump carries its whole best chain (`chain`: every block from genesis,
//! each with its hash, height, parent, miner and transactions), how deep it counts as
//! confirmed (`confirmed_height`) and the balances at that height (`state`). For every
//! honest node this checker replays the chain on its own:
//!
//! ```text
//!   links     block h has height h and names block h-1 as its parent
//!   work      its hash (the first 32 hex digits, as a number) is at most its target
//!   coinbase  every block opens with exactly one coinbase, of the reward the node
//!             reports (`reward`); what they mint is the supply
//!   spends    each account's transfers take its nonces in order, each once (a nonce seen
//!             again is a coin spent twice), and no balance goes below zero
//!   state     the balances the node reports at its confirmed height are the replay's
//! ```
//!
//! and across the honest nodes: **common prefix**, every block at or below the lowest
//! confirmed height is the same block on every node; and **no block from the future**:
//! a node takes a block only while its timestamp is at most `max_future_ms` ahead of its
//! clock, and the clock a node reports (`clock_ms`) never goes back while it runs, so no
//! honest chain holds a block stamped more than `max_future_ms` + [`FUTURE_SLACK_MS`]
//! after the latest clock an honest node reports at its dump. The slack covers a node
//! that took a block while its clock was skewed forward and was restarted since (its
//! clock is then the machine's again): the nemesis skews clocks by five minutes at most. It also reports chain quality: the
//! blocks each miner has in that common prefix. Invalid on any broken rule (the first
//! [`MAX_PROBLEMS`] named), unknown when an honest member has no dump (its reason, if
//! the run knows one) or its dump has no readable chain, and not run at all (`None`) when no dump has a chain (not a `pow` run).

use crate::Verdict;
use crate::agreement::Membership;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Most problems a report names (the count is exact).
pub const MAX_PROBLEMS: usize = 32;

/// How far beyond `max_future_ms` after the latest honest clock a block's timestamp may be
/// (the module's docs): ten minutes, twice the largest clock fault the nemesis makes.
pub const FUTURE_SLACK_MS: u64 = 600_000;

/// Accounts of miners, paid by coinbases, start empty; every other account starts with
/// the bank's initial balance.
const MINER_PREFIX: &str = "miner:";

/// What the chain checker found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainReport {
    pub verdict: Verdict,
    /// Each honest node's best height and confirmed height.
    pub heights: BTreeMap<String, (u64, u64)>,
    /// The height through which every honest node's blocks are compared (the lowest
    /// confirmed height).
    pub common_height: u64,
    /// Blocks per miner at heights 1 to `common_height`.
    pub chain_quality: BTreeMap<String, u64>,
    /// What the coinbases of the longest honest chain minted.
    pub minted: i64,
    pub problem_count: usize,
    pub problems: Vec<String>,
    /// Why the verdict is unknown, if it is.
    pub unknown: Vec<String>,
}

impl ChainReport {
    pub fn summary(&self) -> String {
        match self.verdict {
            Verdict::Invalid => format!(
                "{} problem(s) in the chains: {}",
                self.problem_count,
                self.problems.first().map_or("", String::as_str)
            ),
            Verdict::Unknown => format!("chains not judged: {}", self.unknown.join("; ")),
            Verdict::Valid => format!(
                "{} chains replayed (links, proof of work, coinbases, no coin spent twice, \
                 no overdraft, reported state, no block from the future); common prefix through height {}; blocks per miner {:?}",
                self.heights.len(),
                self.common_height,
                self.chain_quality
            ),
        }
    }
}

#[derive(Debug)]
struct Block {
    hash: String,
    height: u64,
    parent: Option<String>,
    miner: Option<String>,
    /// The target, and the hash's first 16 bytes (both as numbers), when the dump has them.
    target: Option<u128>,
    head: Option<u128>,
    timestamp_ms: Option<u64>,
    txs: Vec<Value>,
}

/// A hex number of at most 32 digits (a target, or a hash's first 32 digits).
fn hex128(s: &str) -> Option<u128> {
    u128::from_str_radix(s.get(..32.min(s.len()))?, 16).ok()
}

fn parse_chain(dump: &Value) -> Result<(Vec<Block>, u64), String> {
    let chain = dump["chain"].as_array().ok_or("no chain in the dump")?;
    let confirmed = dump["confirmed_height"]
        .as_u64()
        .ok_or("no confirmed_height in the dump")?;
    let blocks = chain
        .iter()
        .enumerate()
        .map(|(i, b)| {
            Ok(Block {
                hash: b["hash"]
                    .as_str()
                    .ok_or(format!("block {i} has no hash"))?
                    .into(),
                height: b["height"]
                    .as_u64()
                    .ok_or(format!("block {i} has no height"))?,
                parent: b["parent"].as_str().map(String::from),
                miner: b["miner"].as_str().map(String::from),
                target: b["target"].as_str().and_then(hex128),
                head: b["hash"].as_str().and_then(hex128),
                timestamp_ms: b["timestamp_ms"].as_u64(),
                txs: b["txs"].as_array().cloned().unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if confirmed >= blocks.len() as u64 {
        return Err(format!(
            "confirmed height {confirmed} beyond a chain of {} blocks",
            blocks.len()
        ));
    }
    Ok((blocks, confirmed))
}

/// Balances and next nonces by account, at one height.
#[derive(Debug, Default)]
struct Ledger {
    balances: BTreeMap<String, i64>,
    nonces: BTreeMap<String, u64>,
}

/// Replays one node's chain: its problems, the ledger at its confirmed height, and what
/// its coinbases minted.
fn replay(
    node: &str,
    blocks: &[Block],
    (confirmed, reward): (u64, Option<i64>),
    initial: i64,
    problems: &mut Vec<String>,
) -> (Ledger, i64) {
    let mut balances: BTreeMap<String, i64> = BTreeMap::new();
    let mut nonces: BTreeMap<String, u64> = BTreeMap::new();
    let mut minted = 0i64;
    let mut at_confirmed = Ledger::default();
    let start = |a: &str| {
        if a.starts_with(MINER_PREFIX) {
            0
        } else {
            initial
        }
    };
    for (i, b) in blocks.iter().enumerate() {
        if b.height != i as u64 {
            problems.push(format!(
                "{node}: block {i} of its chain has height {}",
                b.height
            ));
        }
        if i > 0 && b.parent.as_deref() != Some(blocks[i - 1].hash.as_str()) {
            problems.push(format!(
                "{node}: the block at height {i} does not name the block below it as parent"
            ));
        }
        if let (true, Some(head), Some(target)) = (i > 0, b.head, b.target)
            && head > target
        {
            problems.push(format!(
                "{node}: the block at height {i} ({}) has a hash above its target \
                 {target:032x}: no proof of work",
                b.hash
            ));
        }
        for (j, t) in b.txs.iter().enumerate() {
            let tx = &t["tx"];
            if let Some(c) = tx.get("Coinbase") {
                if i == 0 || j != 0 {
                    problems.push(format!("{node}: a coinbase at height {i}, position {j}"));
                }
                let (Some(to), Some(amount)) = (c["to"].as_str(), c["amount"].as_i64()) else {
                    problems.push(format!("{node}: an unreadable coinbase at height {i}"));
                    continue;
                };
                if reward.is_some_and(|r| r != amount) {
                    problems.push(format!(
                        "{node}: the coinbase at height {i} mints {amount}, the reward is {}",
                        reward.unwrap_or_default()
                    ));
                }
                minted = minted.saturating_add(amount);
                *balances.entry(to.into()).or_insert_with(|| start(to)) += amount;
            } else if let Some(x) = tx.get("Transfer") {
                if j == 0 {
                    problems.push(format!(
                        "{node}: the block at height {i} opens without a coinbase"
                    ));
                }
                let (Some(from), Some(to), Some(amount), Some(nonce)) = (
                    x["from"].as_str(),
                    x["to"].as_str(),
                    x["amount"].as_i64(),
                    x["nonce"].as_u64(),
                ) else {
                    problems.push(format!("{node}: an unreadable transfer at height {i}"));
                    continue;
                };
                let next = nonces.entry(from.into()).or_insert(0);
                if nonce < *next {
                    problems.push(format!(
                        "{node}: {from} spends again at height {i} (nonce {nonce} already used): \
                         a coin spent twice"
                    ));
                } else if nonce > *next {
                    problems.push(format!(
                        "{node}: {from}'s transfer at height {i} skips to nonce {nonce} (next is {next})"
                    ));
                }
                *next = (*next).max(nonce.saturating_add(1));
                let src = balances.entry(from.into()).or_insert_with(|| start(from));
                *src -= amount;
                if *src < 0 || amount <= 0 {
                    problems.push(format!(
                        "{node}: {from} pays {amount} at height {i} and is left with {src}"
                    ));
                }
                *balances.entry(to.into()).or_insert_with(|| start(to)) += amount;
            } else if i > 0 {
                problems.push(format!("{node}: an unknown transaction at height {i}"));
            }
        }
        if i as u64 == confirmed {
            at_confirmed = Ledger {
                balances: balances.clone(),
                nonces: nonces.clone(),
            };
        }
    }
    (at_confirmed, minted)
}

/// The chain checks over the nodes' dumps (node → dump JSON) of the run's `members`,
/// leaving out its Byzantine ones; `None` when no dump carries a chain.
pub fn check(
    dumps: &BTreeMap<String, Value>,
    members: &Membership,
    initial: i64,
) -> Option<ChainReport> {
    let byzantine = &members.byzantine;
    if !dumps.values().any(|d| d.get("chain").is_some()) {
        return None;
    }
    let mut problems = Vec::new();
    let mut unknown = Vec::new();
    let mut heights = BTreeMap::new();
    let mut chains: BTreeMap<&str, Vec<Block>> = BTreeMap::new();
    let mut minted = 0;
    for node in members.nodes.iter().filter(|n| !byzantine.contains(*n)) {
        let Some(dump) = dumps.get(node) else {
            unknown.push(match members.dump_errors.get(node) {
                Some(why) => format!("{node}: no dump ({why})"),
                None => format!("{node}: no dump"),
            });
            continue;
        };
        let (blocks, confirmed) = match parse_chain(dump) {
            Ok(c) => c,
            Err(e) => {
                unknown.push(format!("{node}: {e}"));
                continue;
            }
        };
        let reward = dump["reward"].as_i64();
        let (state, m) = replay(node, &blocks, (confirmed, reward), initial, &mut problems);
        // The node's state at its confirmed height: each account's balance, and its next
        // nonce when the node reports one (`{"balance": b, "nonce": n}` or just `b`).
        if let Some(reported) = dump["state"].as_object() {
            for (acct, v) in reported {
                let start = if acct.starts_with(MINER_PREFIX) {
                    0
                } else {
                    initial
                };
                let want = state.balances.get(acct).copied().unwrap_or(start);
                let got = v.as_i64().or_else(|| v["balance"].as_i64());
                if got != Some(want) {
                    problems.push(format!(
                        "{node}: reports {acct} = {v} at confirmed height {confirmed}, its chain gives balance {want}"
                    ));
                }
                let next = state.nonces.get(acct).copied().unwrap_or(0);
                if let Some(n) = v.get("nonce").and_then(Value::as_u64)
                    && n != next
                {
                    problems.push(format!(
                        "{node}: reports {acct}'s next nonce {n} at confirmed height {confirmed}, its chain gives {next}"
                    ));
                }
            }
        }
        if blocks.len() as u64 > heights.values().map(|(h, _)| h + 1).max().unwrap_or(0) {
            minted = m;
        }
        heights.insert(node.clone(), (blocks.len() as u64 - 1, confirmed));
        chains.insert(node, blocks);
    }
    from_the_future(dumps, byzantine, &chains, &mut problems);
    let common_height = heights.values().map(|(_, c)| *c).min().unwrap_or(0);
    let mut chain_quality = BTreeMap::new();
    if let Some((first, blocks)) = chains.iter().next() {
        for h in 0..=common_height as usize {
            for (other, theirs) in chains.iter().skip(1) {
                if theirs[h].hash != blocks[h].hash {
                    problems.push(format!(
                        "confirmed blocks differ at height {h}: {first} has {}, {other} has {}",
                        blocks[h].hash, theirs[h].hash
                    ));
                }
            }
        }
        for b in &blocks[1..=common_height as usize] {
            let m = b.miner.clone().unwrap_or_else(|| "?".into());
            *chain_quality.entry(m).or_insert(0) += 1;
        }
    }
    let problem_count = problems.len();
    problems.truncate(MAX_PROBLEMS);
    let verdict = if problem_count > 0 {
        Verdict::Invalid
    } else if !unknown.is_empty() || chains.is_empty() {
        if chains.is_empty() {
            unknown.push("no honest node's chain".into());
        }
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    Some(ChainReport {
        verdict,
        heights,
        common_height,
        chain_quality,
        minted,
        problem_count,
        problems,
        unknown,
    })
}

/// The first block of each honest chain stamped beyond the latest honest clock reported
/// plus `max_future_ms` and [`FUTURE_SLACK_MS`] (the module's docs); nothing when no dump
/// reports a clock.
fn from_the_future(
    dumps: &BTreeMap<String, Value>,
    byzantine: &BTreeSet<String>,
    chains: &BTreeMap<&str, Vec<Block>>,
    problems: &mut Vec<String>,
) {
    let honest = || {
        dumps
            .iter()
            .filter(|(n, _)| !byzantine.contains(*n) && chains.contains_key(n.as_str()))
    };
    let Some(clock) = honest().filter_map(|(_, d)| d["clock_ms"].as_u64()).max() else {
        return;
    };
    let ahead = honest()
        .filter_map(|(_, d)| d["max_future_ms"].as_u64())
        .max()
        .unwrap_or(0);
    let limit = clock.saturating_add(ahead).saturating_add(FUTURE_SLACK_MS);
    for (node, blocks) in chains {
        if let Some((i, ts)) = blocks
            .iter()
            .enumerate()
            .find_map(|(i, b)| b.timestamp_ms.filter(|t| *t > limit).map(|t| (i, t)))
        {
            problems.push(format!(
                "{node}: the block at height {i} is stamped {ts}, {:.1} s after the latest \
                 clock an honest node reports ({clock}; a node takes blocks up to \
                 max_future_ms = {ahead} ms ahead of its clock): a block from the future",
                (ts - clock) as f64 / 1000.0
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The check with every dump's node a member, `byzantine` among them.
    fn judge(
        dumps: &BTreeMap<String, Value>,
        byzantine: &BTreeSet<String>,
        initial: i64,
    ) -> Option<ChainReport> {
        let mut m = Membership::of(dumps.keys().cloned());
        m.byzantine = byzantine.clone();
        check(dumps, &m, initial)
    }

    fn coinbase(h: u64, miner: &str) -> Value {
        json!({"tx": {"Coinbase": {"height": h, "to": format!("miner:{miner}"), "amount": 50}}})
    }

    fn transfer(from: &str, to: &str, amount: i64, nonce: u64) -> Value {
        json!({"tx": {"Transfer": {"from": from, "to": to, "amount": amount, "nonce": nonce,
            "expires": 99, "memo": 0, "sig": ""}}})
    }

    /// A chain of blocks, each a list of transfers after its coinbase; hashes name the
    /// branch and height.
    fn chain(branch: &str, blocks: &[Vec<Value>], confirmed: u64, state: Value) -> Value {
        let mut out =
            vec![json!({"hash": "g", "height": 0, "parent": null, "miner": null, "txs": []})];
        for (i, txs) in blocks.iter().enumerate() {
            let h = i as u64 + 1;
            let mut all = vec![coinbase(h, "n1")];
            all.extend(txs.iter().cloned());
            let parent = out[i]["hash"].clone();
            out.push(
                json!({"hash": format!("{branch}{h}"), "height": h, "parent": parent,
                "miner": "n1", "txs": all}),
            );
        }
        json!({"chain": out, "confirmed_height": confirmed, "state": state})
    }

    fn two(a: Value, b: Value) -> BTreeMap<String, Value> {
        BTreeMap::from([("n1".to_string(), a), ("n2".to_string(), b)])
    }

    fn good() -> Value {
        chain(
            "b",
            &[
                vec![transfer("a0", "a1", 4, 0)],
                vec![transfer("a0", "a1", 6, 1)],
                vec![],
            ],
            2,
            json!({"a0": {"balance": 0, "nonce": 2}, "a1": 20}),
        )
    }

    #[test]
    fn agreeing_chains_that_replay_are_valid() {
        let r = judge(&two(good(), good()), &BTreeSet::new(), 10).unwrap();
        assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.problems);
        assert_eq!(r.common_height, 2);
        assert_eq!(r.minted, 150);
        assert_eq!(r.chain_quality, BTreeMap::from([("n1".to_string(), 2)]));
    }

    #[test]
    fn each_broken_rule_is_named() {
        let cases: Vec<(Value, &str)> = vec![
            (
                chain(
                    "b",
                    &[vec![transfer("a0", "a1", 4, 0), transfer("a0", "a2", 4, 0)]],
                    0,
                    json!({}),
                ),
                "a coin spent twice",
            ),
            (
                chain("b", &[vec![transfer("a0", "a1", 11, 0)]], 0, json!({})),
                "left with -1",
            ),
            (
                chain("b", &[vec![transfer("a0", "a1", 1, 3)]], 0, json!({})),
                "skips to nonce 3",
            ),
            (chain("b", &[vec![]], 1, json!({"a0": 9})), "reports a0 = 9"),
            (
                {
                    let mut c = chain("b", &[vec![]], 0, json!({}));
                    c["reward"] = json!(49);
                    c
                },
                "mints 50, the reward is 49",
            ),
            (
                chain(
                    "b",
                    &[vec![transfer("a0", "a1", 1, 0)]],
                    1,
                    json!({"a0": {"balance": 9, "nonce": 0}}),
                ),
                "next nonce 0",
            ),
        ];
        for (dump, want) in cases {
            let r = judge(&two(dump, good()), &BTreeSet::new(), 10).unwrap();
            assert_eq!(r.verdict, Verdict::Invalid, "{want}");
            assert!(
                r.problems.iter().any(|p| p.contains(want)),
                "{want}: {:?}",
                r.problems
            );
        }
        let mut broken = good();
        broken["chain"][2]["parent"] = json!("elsewhere");
        let r = judge(&two(broken, good()), &BTreeSet::new(), 10).unwrap();
        assert!(
            r.problems.iter().any(|p| p.contains("does not name")),
            "{:?}",
            r.problems
        );
    }

    #[test]
    fn confirmed_blocks_must_agree_and_only_honest_nodes_count() {
        let other = chain("c", &[vec![], vec![]], 1, json!({}));
        let r = judge(&two(good(), other.clone()), &BTreeSet::new(), 10).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid);
        assert!(
            r.problems[0].contains("differ at height 1"),
            "{:?}",
            r.problems
        );
        // The same fork on a Byzantine node is not an honest disagreement.
        let liar = BTreeSet::from(["n2".to_string()]);
        assert_eq!(
            judge(&two(good(), other), &liar, 10).unwrap().verdict,
            Verdict::Valid
        );
        // Below the lowest confirmed height only: a fork above it is not compared.
        let young = chain(
            "c",
            &[vec![transfer("a0", "a1", 4, 0)], vec![]],
            0,
            json!({}),
        );
        let mut shared = young.clone();
        shared["chain"][1] = good()["chain"][1].clone();
        shared["chain"][2]["parent"] = json!("b1");
        assert_eq!(
            judge(&two(good(), shared), &BTreeSet::new(), 10)
                .unwrap()
                .verdict,
            Verdict::Valid
        );
    }

    #[test]
    fn a_hash_above_its_target_and_a_block_from_the_future_are_named() {
        // A block's hash, and its child's parent with it.
        let rehash = |c: &mut Value, h: usize, hash: String| {
            c["chain"][h]["hash"] = json!(hash);
            if let Some(child) = c["chain"].get_mut(h + 1) {
                child["parent"] = json!(hash);
            }
        };
        let stamped = |ts: &[u64]| {
            let mut c = good();
            c["clock_ms"] = json!(1_000_000);
            c["max_future_ms"] = json!(2000);
            for (i, t) in ts.iter().enumerate() {
                c["chain"][i + 1]["timestamp_ms"] = json!(t);
                c["chain"][i + 1]["target"] = json!(format!("{:032x}", 1u128 << 120));
                rehash(&mut c, i + 1, format!("{:064x}", (i as u128 + 1) << 100));
            }
            c
        };
        let limit = 1_000_000 + 2000 + FUTURE_SLACK_MS;
        let fine = stamped(&[10, 20, limit]);
        let r = judge(&two(fine.clone(), fine.clone()), &BTreeSet::new(), 10).unwrap();
        assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.problems);

        let future = stamped(&[10, limit + 1, limit + 2]);
        let r = judge(&two(fine.clone(), future), &BTreeSet::new(), 10).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid);
        assert!(r.problems.len() == 1 && r.problems[0].starts_with("n2: the block at height 2"));
        assert!(
            r.problems[0].contains("from the future"),
            "{:?}",
            r.problems
        );
        // The latest honest clock counts: a node that reports a later one covers it.
        let mut later = fine.clone();
        later["clock_ms"] = json!(1_000_010);
        let future = stamped(&[10, limit + 1]);
        let r = judge(&two(later, future.clone()), &BTreeSet::new(), 10).unwrap();
        assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.problems);
        // ... but not a Byzantine node's clock.
        let mut liar = fine.clone();
        liar["clock_ms"] = json!(u64::MAX / 2);
        let mut three = two(fine.clone(), future);
        three.insert("n3".into(), liar);
        let r = judge(&three, &BTreeSet::from(["n3".to_string()]), 10).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid);

        let mut no_work = fine.clone();
        rehash(
            &mut no_work,
            2,
            format!("{:032x}{:032x}", (1u128 << 120) + 1, 0),
        );
        let r = judge(&two(fine, no_work), &BTreeSet::new(), 10).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid);
        assert!(
            r.problems[0].starts_with("n2: the block at height 2")
                && r.problems[0].contains("no proof of work"),
            "{:?}",
            r.problems
        );
    }

    #[test]
    fn a_member_without_a_dump_is_unknown_unless_byzantine() {
        let dumps = two(good(), good());
        let mut m = Membership::of(["n1", "n2", "n3"]);
        let r = check(&dumps, &m, 10).unwrap();
        assert_eq!(r.verdict, Verdict::Unknown);
        assert_eq!(r.unknown, vec!["n3: no dump".to_string()]);
        m.dump_errors
            .insert("n3".into(), "connection refused".into());
        let r = check(&dumps, &m, 10).unwrap();
        assert_eq!(
            r.unknown,
            vec!["n3: no dump (connection refused)".to_string()]
        );
        m.byzantine.insert("n3".into());
        assert_eq!(check(&dumps, &m, 10).unwrap().verdict, Verdict::Valid);
    }

    #[test]
    fn no_chain_is_not_a_pow_run_and_an_unreadable_one_is_unknown() {
        let plain = BTreeMap::from([("n1".to_string(), json!({"entries": []}))]);
        assert!(judge(&plain, &BTreeSet::new(), 10).is_none());
        let r = judge(
            &two(good(), json!({"chain": "garbage"})),
            &BTreeSet::new(),
            10,
        )
        .unwrap();
        assert_eq!(r.verdict, Verdict::Unknown);
        assert!(r.unknown[0].starts_with("n2:"), "{:?}", r.unknown);
    }
}
