//! The Wing–Gong–Lowe search over one partition.
//!
//! Calls and returns sit in one doubly linked list in history order. The search walks it
//! from the front: a call is a candidate to linearize next; meeting a return means an
//! operation that has already completed was not placed, so this branch is dead and the
//! last placed operation is taken back. Placing an op removes its call and return from the
//! list; taking it back relinks them (dancing links). Every (linearized set, configuration)
//! reached is remembered, so no subproblem is explored twice.
//!
//! An `info` operation has no return entry: it stays a candidate to the end and need not
//! be placed at all. The search succeeds once every `ok` operation is placed.
//!
//! Two prunings keep the search small, both sound:
//! - A read-only op (the model says so) that fits the configuration unchanged is placed at
//!   once and nothing else is tried in its place: any linearization from here that places
//!   it later can place it now instead (it is already a candidate, so everything that must
//!   precede it is placed, and it changes nothing the ops in between see).
//! - `info` ops of the same class are interchangeable: only the earliest unplaced one is a
//!   candidate (swapping two of them in any linearization gives another).
//!
//! Order, which changes speed but not answers: each node tries its `ok` candidates before
//! its `info` ones (on the etcd corpus: a fifth fewer nodes in all, etcd_007 eight times
//! fewer).

use super::compiled::{Compiled, REFUSED};
use super::memo::Memo;
use crate::model::Model;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

const NONE: u32 = u32::MAX;

/// One operation as the search sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SearchOp {
    pub call: u64,
    /// `None` for an `info` operation.
    pub ret: Option<u64>,
    pub class: u32,
}

/// When to give up.
pub(crate) struct Stop<'a> {
    /// Rank of the best (lowest-ranked) invalid partition found so far; a search of a
    /// higher rank stops, one of a lower rank carries on so the answer does not depend on
    /// which thread got there first.
    pub first_invalid: &'a AtomicUsize,
    pub rank: usize,
    /// Set once the deadline has passed.
    pub out_of_time: &'a AtomicBool,
    pub deadline: Option<Instant>,
    /// The caller's cancel flag (see `CheckOptions::cancel`).
    pub cancel: Option<&'a AtomicBool>,
    /// Give up (as [`Outcome::OverBudget`]) past this many memo entries.
    pub nodes: Option<usize>,
    /// Give up (as [`Outcome::OutOfMemory`]) when the memo and the compiled model need
    /// more bytes than this.
    pub memory: Option<usize>,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    Valid,
    /// Not linearizable; the longest prefix found (search op indices, in order).
    Invalid(Vec<u32>),
    /// Cancelled or out of time.
    Stopped,
    /// The node budget ran out: a bigger budget may decide it.
    OverBudget,
    /// The memo would outgrow its memory share.
    OutOfMemory,
}

pub(crate) struct Search {
    pub outcome: Outcome,
    pub explored: u64,
}

/// Runs the search; configuration 0 of `compiled` is the initial state.
pub(crate) fn search<M: Model>(
    compiled: &mut Compiled<'_, M>,
    ops: &[SearchOp],
    stop: &Stop<'_>,
) -> Search {
    let n = ops.len();
    let head = 2 * n as u32;
    // Entry 2i is op i's call, 2i+1 its return.
    let mut order: Vec<(u64, u32)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        order.push((op.call, 2 * i as u32));
        if let Some(r) = op.ret {
            order.push((r, 2 * i as u32 + 1));
        }
    }
    order.sort_unstable();
    let mut next = vec![NONE; 2 * n + 1];
    let mut prev = vec![NONE; 2 * n + 1];
    let mut last = head;
    for &(_, e) in &order {
        next[last as usize] = e;
        prev[e as usize] = last;
        last = e;
    }

    let zobrist: Vec<u64> = (0..n as u64).map(splitmix).collect();
    // The previous info op of the same class, by invocation order.
    let mut twin = vec![NONE; n];
    {
        let mut by_call: Vec<u32> = (0..n as u32)
            .filter(|&i| ops[i as usize].ret.is_none())
            .collect();
        by_call.sort_unstable_by_key(|&i| ops[i as usize].call);
        let mut last_of_class = rustc_hash::FxHashMap::default();
        for i in by_call {
            if let Some(p) = last_of_class.insert(ops[i as usize].class, i) {
                twin[i as usize] = p;
            }
        }
    }
    let n_ok = ops.iter().filter(|o| o.ret.is_some()).count();
    let mut placed_ok = 0usize;
    let mut bits = vec![0u64; n.div_ceil(64).max(1)];
    let mut hash = 0u64;
    let mut config = 0u32;
    let mut stack: Vec<(u32, u32, bool)> = Vec::new();
    let mut longest: Vec<u32> = Vec::new();
    let mut memo = Memo::take();
    let mut ticks = 0u32;

    // Each node tries its `ok` candidates first, then its `info` ones: info ops are
    // optional, and placing one early mostly leads nowhere.
    let has_info = n_ok < n;
    let mut info_phase = false;
    // Set when the current node is known to have failed (see the forced rule).
    let mut dead = false;
    let mut entry = next[head as usize];
    let outcome = loop {
        if placed_ok == n_ok {
            break Outcome::Valid;
        }
        ticks = ticks.wrapping_add(1);
        if ticks & 0x3ff == 0 && stopped(stop) {
            break Outcome::Stopped;
        }
        let end_of_candidates = entry == NONE || entry & 1 == 1;
        if !dead && end_of_candidates && !info_phase && has_info {
            info_phase = true;
            entry = next[head as usize];
            continue;
        }
        if dead || end_of_candidates {
            // Dead end: take back the last placed op and try the candidate after it.
            let Some((op, before, forced)) = stack.pop() else {
                break Outcome::Invalid(longest);
            };
            let i = op as usize;
            if ops[i].ret.is_some() {
                let r = 2 * op + 1;
                next[prev[r as usize] as usize] = r;
                if next[r as usize] != NONE {
                    prev[next[r as usize] as usize] = r;
                }
                placed_ok -= 1;
            }
            let c = 2 * op;
            next[prev[c as usize] as usize] = c;
            if next[c as usize] != NONE {
                prev[next[c as usize] as usize] = c;
            }
            bits[i / 64] &= !(1 << (i % 64));
            hash ^= zobrist[i];
            config = before;
            info_phase = ops[i].ret.is_none();
            // A forced op failing means its whole node failed.
            dead = forced;
            entry = next[c as usize];
            continue;
        }
        let op = entry >> 1;
        let i = op as usize;
        if ops[i].ret.is_none() != info_phase {
            entry = next[entry as usize];
            continue;
        }
        let t = twin[i];
        if t != NONE && bits[t as usize / 64] & (1 << (t % 64)) == 0 {
            entry = next[entry as usize];
            continue;
        }
        let after = compiled.step(config, ops[i].class);
        if after != REFUSED {
            let forced = after == config && compiled.read_only[ops[i].class as usize];
            bits[i / 64] |= 1 << (i % 64);
            let h = hash ^ zobrist[i];
            if memo.insert(h ^ mix(after), after, &bits) {
                if stop.nodes.is_some_and(|n| memo.len() > n) {
                    break Outcome::OverBudget;
                }
                if stop
                    .memory
                    .is_some_and(|m| memo.bytes() + compiled.bytes > m)
                {
                    break Outcome::OutOfMemory;
                }
                hash = h;
                stack.push((op, config, forced));
                config = after;
                let c = 2 * op;
                next[prev[c as usize] as usize] = next[c as usize];
                if next[c as usize] != NONE {
                    prev[next[c as usize] as usize] = prev[c as usize];
                }
                if ops[i].ret.is_some() {
                    let r = 2 * op + 1;
                    next[prev[r as usize] as usize] = next[r as usize];
                    if next[r as usize] != NONE {
                        prev[next[r as usize] as usize] = prev[r as usize];
                    }
                    placed_ok += 1;
                }
                if stack.len() > longest.len() {
                    longest.clear();
                    longest.extend(stack.iter().map(|&(o, _, _)| o));
                }
                info_phase = false;
                entry = next[head as usize];
                continue;
            }
            bits[i / 64] &= !(1 << (i % 64));
            if forced {
                // Placing it now was already explored and failed: so did this node.
                dead = true;
                continue;
            }
        }
        entry = next[entry as usize];
    };
    let explored = memo.len() as u64;
    memo.give_back();
    Search { outcome, explored }
}

fn stopped(stop: &Stop<'_>) -> bool {
    if stop.first_invalid.load(Ordering::Relaxed) < stop.rank
        || stop.out_of_time.load(Ordering::Relaxed)
        || stop.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
    {
        return true;
    }
    match stop.deadline {
        Some(d) if Instant::now() >= d => {
            stop.out_of_time.store(true, Ordering::Relaxed);
            true
        }
        _ => false,
    }
}

/// Zobrist keys: fixed pseudo-random words per op, so the checker stays deterministic.
fn splitmix(i: u64) -> u64 {
    let mut z = i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn mix(config: u32) -> u64 {
    splitmix(u64::from(config) ^ 0xA5A5_0000_0000)
}
