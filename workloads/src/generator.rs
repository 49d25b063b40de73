//! The pure, seeded operation generator: one per worker.
//!
//! The sequence of operations depends only on (seed, worker, concurrency, kind, key count),
//! never on what the cluster answers, so a seed replays the same operations. That is why a
//! cas takes its expected value from what this worker itself last wrote to the key rather
//! than from what it last read.

use crate::config::{
    MAX_TRANSFER, SET_KEY, WorkloadConfig, WorkloadKind, account_key, register_key,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sunder_wire::{Op, Val};

/// The ChaCha stream a worker's generator draws from; pacing uses another one so that the
/// rate does not change the operations.
const OPS_STREAM: u64 = 0;

/// The RNG of `worker`'s stream `stream` for a run seeded with `seed`.
pub(crate) fn worker_rng(seed: u64, worker: usize, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream((worker as u64) << 8 | stream);
    rng
}

/// An endless iterator of the operations of one worker.
#[derive(Debug, Clone)]
pub struct Generator {
    kind: WorkloadKind,
    rng: ChaCha8Rng,
    keys: Vec<String>,
    worker: usize,
    concurrency: usize,
    /// How many fresh values this worker has drawn.
    counter: u64,
    /// Per key, the last value this worker wrote (by write or cas), the cas candidate.
    last_written: Vec<Option<Val>>,
    /// Whether the target has a cas; without one, what would have been a cas is a write.
    cas: bool,
}

impl Generator {
    /// The generator of worker `worker` (0-based) of `concurrency`.
    ///
    /// Panics when `worker >= concurrency`, a register workload has no key or a bank fewer
    /// than two accounts: the caller validates its configuration.
    pub fn new(
        kind: WorkloadKind,
        key_count: usize,
        concurrency: usize,
        seed: u64,
        worker: usize,
    ) -> Self {
        assert!(worker < concurrency, "worker {worker} out of {concurrency}");
        let keys: Vec<String> = match kind {
            WorkloadKind::Register => {
                assert!(key_count > 0, "a register workload needs at least one key");
                (0..key_count).map(register_key).collect()
            }
            WorkloadKind::Set => vec![SET_KEY.to_string()],
            WorkloadKind::Bank => {
                assert!(key_count > 1, "a bank needs at least two accounts");
                (0..key_count).map(account_key).collect()
            }
        };
        let last_written = vec![None; keys.len()];
        Generator {
            kind,
            rng: worker_rng(seed, worker, OPS_STREAM),
            keys,
            worker,
            concurrency,
            counter: 0,
            last_written,
            cas: true,
        }
    }

    /// The same generator for a target with (`true`, the default) or without a cas. The
    /// draws are the same either way, so a seed still replays.
    pub fn with_cas(mut self, cas: bool) -> Self {
        self.cas = cas;
        self
    }

    /// The generator of `worker` for a whole workload configuration.
    pub fn for_worker(cfg: &WorkloadConfig, worker: usize) -> Self {
        Generator::new(cfg.kind, cfg.key_count, cfg.concurrency, cfg.seed, worker)
    }

    /// A value no other worker ever draws: workers interleave on the integers, and values
    /// start at 1 so that none equals a fresh register's absent value.
    fn fresh(&mut self) -> Val {
        let v = self.counter * self.concurrency as u64 + self.worker as u64 + 1;
        self.counter += 1;
        Val::try_from(v).expect("value counter overflowed i64")
    }

    fn register_op(&mut self) -> Op {
        let k = self.rng.random_range(0..self.keys.len());
        let key = self.keys[k].clone();
        let roll: f64 = self.rng.random();
        if roll < 0.5 {
            return Op::Read { key };
        }
        match self.last_written[k] {
            Some(from) if roll >= 0.8 && self.cas => {
                let to = self.fresh();
                self.last_written[k] = Some(to);
                Op::Cas { key, from, to }
            }
            _ => {
                let value = self.fresh();
                self.last_written[k] = Some(value);
                Op::Write { key, value }
            }
        }
    }
}

impl Generator {
    /// Half reads of every balance, half transfers of 1 to [`MAX_TRANSFER`] between two
    /// different accounts.
    fn bank_op(&mut self) -> Op {
        if self.rng.random_bool(0.5) {
            return Op::Balances {
                keys: self.keys.clone(),
            };
        }
        let n = self.keys.len();
        let from = self.rng.random_range(0..n);
        let to = (from + self.rng.random_range(1..n)) % n;
        Op::Transfer {
            from: self.keys[from].clone(),
            to: self.keys[to].clone(),
            amount: self.rng.random_range(1..=MAX_TRANSFER),
        }
    }
}

impl Iterator for Generator {
    type Item = Op;

    fn next(&mut self) -> Option<Op> {
        Some(match self.kind {
            WorkloadKind::Register => self.register_op(),
            WorkloadKind::Bank => self.bank_op(),
            WorkloadKind::Set => {
                let value = self.fresh();
                Op::Add {
                    key: SET_KEY.to_string(),
                    value,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(kind: WorkloadKind, seed: u64, worker: usize) -> Vec<Op> {
        Generator::new(kind, 3, 4, seed, worker).take(500).collect()
    }

    #[test]
    fn same_seed_same_ops_other_seed_other_ops() {
        for kind in [
            WorkloadKind::Register,
            WorkloadKind::Set,
            WorkloadKind::Bank,
        ] {
            assert_eq!(take(kind, 7, 2), take(kind, 7, 2));
        }
        assert_ne!(
            take(WorkloadKind::Bank, 7, 2),
            take(WorkloadKind::Bank, 8, 2)
        );
        assert_ne!(
            take(WorkloadKind::Register, 7, 2),
            take(WorkloadKind::Register, 8, 2)
        );
        assert_ne!(
            take(WorkloadKind::Register, 7, 1),
            take(WorkloadKind::Register, 7, 2)
        );
    }

    #[test]
    fn register_mix_and_unique_values() {
        let mut written = std::collections::HashSet::new();
        let (mut reads, mut writes, mut cases) = (0, 0, 0);
        for w in 0..4 {
            let mut last: std::collections::HashMap<String, Val> = Default::default();
            for op in take(WorkloadKind::Register, 3, w) {
                match op {
                    Op::Read { .. } => reads += 1,
                    Op::Write { key, value } => {
                        writes += 1;
                        assert!(written.insert(value), "value {value} written twice");
                        last.insert(key, value);
                    }
                    Op::Cas { key, from, to } => {
                        cases += 1;
                        assert_eq!(
                            last.get(&key),
                            Some(&from),
                            "cas from this worker's last write"
                        );
                        assert!(written.insert(to), "value {to} written twice");
                        last.insert(key, to);
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        let total = f64::from(reads + writes + cases);
        assert!(
            (0.4..0.6).contains(&(f64::from(reads) / total)),
            "reads {reads}/{total}"
        );
        assert!(f64::from(cases) / total > 0.1, "cas {cases}/{total}");
    }

    #[test]
    fn without_cas_the_same_draws_make_writes() {
        let with: Vec<Op> = take(WorkloadKind::Register, 5, 1);
        let without: Vec<Op> = Generator::new(WorkloadKind::Register, 3, 4, 5, 1)
            .with_cas(false)
            .take(500)
            .collect();
        assert!(with.iter().any(|o| matches!(o, Op::Cas { .. })));
        assert!(!without.iter().any(|o| matches!(o, Op::Cas { .. })));
        for (a, b) in with.iter().zip(&without) {
            match (a, b) {
                (Op::Cas { key, to, .. }, Op::Write { key: k2, value }) => {
                    assert_eq!((key, to), (k2, value));
                }
                (a, b) => assert_eq!(a, b),
            }
        }
    }

    #[test]
    fn set_adds_increase_and_never_collide() {
        let mut all = std::collections::HashSet::new();
        for w in 0..4 {
            let mut prev = 0;
            for op in take(WorkloadKind::Set, 1, w) {
                let Op::Add { key, value } = op else {
                    panic!("not an add")
                };
                assert_eq!(key, SET_KEY);
                assert!(value > prev);
                prev = value;
                assert!(all.insert(value));
            }
        }
    }

    #[test]
    fn bank_reads_every_account_and_transfers_between_two_different_ones() {
        let (mut reads, mut transfers) = (0, 0);
        let mut amounts = std::collections::BTreeSet::new();
        let mut pairs = std::collections::BTreeSet::new();
        for op in take(WorkloadKind::Bank, 4, 0) {
            match op {
                Op::Balances { keys } => {
                    reads += 1;
                    assert_eq!(keys, ["a0", "a1", "a2"]);
                }
                Op::Transfer { from, to, amount } => {
                    transfers += 1;
                    assert_ne!(from, to);
                    amounts.insert(amount);
                    pairs.insert((from, to));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!((200..300).contains(&reads), "reads {reads} of 500");
        assert_eq!(transfers + reads, 500);
        assert_eq!(amounts, (1..=MAX_TRANSFER).collect());
        assert_eq!(pairs.len(), 6, "every ordered pair of three accounts");
    }
}
