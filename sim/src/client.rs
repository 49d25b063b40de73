//! The simulated clients: the register workload's read, write and cas on a few keys, every
//! written value unique, or the bank's transfers and reads of every balance; one
//! operation in flight per client, and the history values the real workers record
//! (`Op::invoke_value`, and `sunder-workloads`' `completion_value`).

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use sunder_wire::{Op, Response};

use crate::config::SimWorkload;

/// An operation a client has sent and not yet seen complete.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: u64,
    pub node: usize,
    pub op: Op,
    /// A BFT client's replies so far, by node.
    pub replies: std::collections::BTreeMap<usize, Response>,
}

/// One simulated client: a process number (fresh after an indeterminate outcome, as in
/// Jepsen), its operation in flight, and the node it believes leads.
#[derive(Debug, Clone)]
pub struct SimClient {
    pub process: u64,
    pub pending: Option<Pending>,
    pub hint: usize,
}

/// Draws operations: 40% reads, 40% writes, 20% cas from a value the key probably holds;
/// or, for the bank, half reads of every balance and half transfers of 1 to 5 between two
/// different accounts.
pub struct Workload {
    kind: SimWorkload,
    keys: Vec<String>,
    /// The last value written or read per key, the likely `from` of a cas.
    last: Vec<i64>,
    next_value: i64,
}

impl Workload {
    pub fn new(kind: SimWorkload, keys: usize) -> Workload {
        let prefix = match kind {
            SimWorkload::Register => "k",
            SimWorkload::Bank => "a",
        };
        Workload {
            kind,
            keys: (0..keys).map(|k| format!("{prefix}{k}")).collect(),
            last: vec![0; keys],
            next_value: 0,
        }
    }

    pub fn next(&mut self, r: &mut ChaCha8Rng) -> Op {
        if self.kind == SimWorkload::Bank {
            return self.bank(r);
        }
        let k = r.random_range(0..self.keys.len());
        let key = self.keys[k].clone();
        match r.random_range(0..10) {
            0..4 => Op::Read { key },
            4..8 => {
                self.next_value += 1;
                self.last[k] = self.next_value;
                Op::Write {
                    key,
                    value: self.next_value,
                }
            }
            _ => {
                self.next_value += 1;
                let from = self.last[k];
                self.last[k] = self.next_value;
                Op::Cas {
                    key,
                    from,
                    to: self.next_value,
                }
            }
        }
    }

    fn bank(&mut self, r: &mut ChaCha8Rng) -> Op {
        let n = self.keys.len();
        if r.random_bool(0.5) {
            return Op::Balances {
                keys: self.keys.clone(),
            };
        }
        let from = r.random_range(0..n);
        let to = (from + r.random_range(1..n)) % n;
        Op::Transfer {
            from: self.keys[from].clone(),
            to: self.keys[to].clone(),
            amount: r.random_range(1..=5),
        }
    }

    /// Remember what a read saw, so that later cas operations have a chance to succeed.
    pub fn saw(&mut self, key: &str, v: &Value) {
        if let (Some(k), Some(v)) = (self.keys.iter().position(|x| x == key), v.as_i64()) {
            self.last[k] = v;
        }
    }
}

/// The history value of a completion: a read's result when it succeeded.
pub fn completion_value(op: &Op, resp: &Response) -> Value {
    match op {
        Op::Read { .. } | Op::Balances { .. } if resp.ok => resp.value.clone(),
        _ => op.invoke_value(),
    }
}
