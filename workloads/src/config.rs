//! What a workload is: its kind, shape, pace and seed.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Which operations the workers generate and which checkers read the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    /// read, write and cas on keys `k0..k{n-1}`; checked for linearizability.
    Register,
    /// `add` of unique elements to the key `set`, then a final read on every node.
    Set,
    /// Jepsen's bank: `transfer` between accounts `a0..a{n-1}` and `balances` reads of
    /// them all; checked for a conserved total and no negative balance.
    Bank,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::Set => "set",
            WorkloadKind::Bank => "bank",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A workload name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown workload {0:?} (expected \"register\", \"set\" or \"bank\")")]
pub struct UnknownWorkload(pub String);

impl FromStr for WorkloadKind {
    type Err = UnknownWorkload;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "register" => Ok(WorkloadKind::Register),
            "set" => Ok(WorkloadKind::Set),
            "bank" => Ok(WorkloadKind::Bank),
            other => Err(UnknownWorkload(other.to_string())),
        }
    }
}

/// The key every `set` operation uses.
pub const SET_KEY: &str = "set";

/// Everything the workers need to know, validated by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    pub kind: WorkloadKind,
    /// Register: keys `k0..k{n-1}`. Bank: accounts `a0..a{n-1}` (at least 2). Set:
    /// ignored (one key, [`SET_KEY`]).
    pub key_count: usize,
    /// Number of worker tasks, each with at most one operation in flight.
    pub concurrency: usize,
    /// Total target operations per second across all workers; `None` = as fast as possible.
    pub rate: Option<f64>,
    /// A call not answered within this time ends `info`.
    pub op_timeout: Duration,
    pub seed: u64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            kind: WorkloadKind::Register,
            key_count: 3,
            concurrency: 5,
            rate: Some(100.0),
            op_timeout: Duration::from_secs(1),
            seed: 0,
        }
    }
}

/// The name of register key `i`.
pub fn register_key(i: usize) -> String {
    format!("k{i}")
}

/// The name of bank account `i`.
pub fn account_key(i: usize) -> String {
    format!("a{i}")
}

/// The largest amount one generated transfer moves (Jepsen's bank uses 5 too).
pub const MAX_TRANSFER: i64 = 5;

/// A workload configuration that cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("--concurrency must be at least 1")]
    NoWorkers,
    #[error("--key-count must be at least 1 for the register workload")]
    NoKeys,
    #[error("--key-count must be at least 2 for the bank workload (its accounts)")]
    TooFewAccounts,
    #[error("--rate must be a positive number of operations per second, not {0}")]
    BadRate(f64),
    #[error("the client timeout must be longer than zero")]
    NoTimeout,
}

impl WorkloadConfig {
    /// Checks what the generators and workers assume; the CLI reports the error (exit 3).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.concurrency == 0 {
            return Err(ConfigError::NoWorkers);
        }
        if self.kind == WorkloadKind::Register && self.key_count == 0 {
            return Err(ConfigError::NoKeys);
        }
        if self.kind == WorkloadKind::Bank && self.key_count < 2 {
            return Err(ConfigError::TooFewAccounts);
        }
        if let Some(r) = self.rate.filter(|r| !(r.is_finite() && *r > 0.0)) {
            return Err(ConfigError::BadRate(r));
        }
        if self.op_timeout.is_zero() {
            return Err(ConfigError::NoTimeout);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_validate() {
        assert_eq!("set".parse::<WorkloadKind>(), Ok(WorkloadKind::Set));
        assert_eq!("bank".parse::<WorkloadKind>(), Ok(WorkloadKind::Bank));
        assert!(
            "queue"
                .parse::<WorkloadKind>()
                .unwrap_err()
                .to_string()
                .contains("bank")
        );
        let ok = WorkloadConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        let bad = |f: fn(&mut WorkloadConfig)| {
            let mut c = ok.clone();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(bad(|c| c.concurrency = 0), ConfigError::NoWorkers);
        assert_eq!(bad(|c| c.key_count = 0), ConfigError::NoKeys);
        assert_eq!(
            bad(|c| {
                c.kind = WorkloadKind::Bank;
                c.key_count = 1
            }),
            ConfigError::TooFewAccounts
        );
        assert_eq!(bad(|c| c.rate = Some(0.0)), ConfigError::BadRate(0.0));
        assert_eq!(
            bad(|c| c.op_timeout = Duration::ZERO),
            ConfigError::NoTimeout
        );
        let mut set = ok.clone();
        set.kind = WorkloadKind::Set;
        set.key_count = 0;
        assert_eq!(set.validate(), Ok(()));
    }
}
