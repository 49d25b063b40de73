//! Settings read from the node's `--opt` and `--bug` flags, converted to ticks (the leader's
//! check-quorum and lease stay in milliseconds of its clock).

use sunder_core::CoreConfig;
use sunder_core::opts::{self, OptKind, OptSpec};

/// The planted bugs (see the crate docs for what each does).
pub const BUGS: &[&str] = &[
    "stale-read",
    "early-ack",
    "forget-vote",
    "lease-read",
    // acted out by the node runtime (sunder_core::protocol::DISK_BUGS)
    "no-fsync",
    "reply-before-persist",
];

/// The `--opt` keys Raft accepts (times in milliseconds).
pub const OPTS: &[OptSpec] = &[
    OptSpec {
        key: "batch",
        kind: OptKind::OnOff,
    },
    OptSpec {
        key: "election_ms",
        kind: OptKind::Number,
    },
    OptSpec {
        key: "election_jitter_ms",
        kind: OptKind::Number,
    },
    OptSpec {
        key: "heartbeat_ms",
        kind: OptKind::Number,
    },
    OptSpec {
        key: "max_batch",
        kind: OptKind::Number,
    },
    OptSpec {
        key: "max_inflight",
        kind: OptKind::Number,
    },
    OptSpec {
        key: "snapshot",
        kind: OptKind::Number,
    },
    OptSpec {
        key: "lease_ms",
        kind: OptKind::Number,
    },
];

#[derive(Debug, Clone)]
pub struct Settings {
    /// Election timeout is drawn from `[election_ticks, election_ticks + jitter_ticks)`.
    pub election_ticks: u64,
    /// Spread of the election timeout (`--opt election_jitter_ms`, default `election_ms`).
    /// A narrow spread makes followers time out together and split votes: a way to test
    /// what happens when two candidates ask for votes in the same term.
    pub jitter_ticks: u64,
    pub heartbeat_ticks: u64,
    /// Most entries in one AppendEntries (1 with `batch=off`).
    pub max_batch: usize,
    /// AppendEntries with entries in flight to one peer before waiting for an ack.
    pub max_inflight: usize,
    /// Compact after this many entries applied since the last snapshot (0 = never).
    pub snapshot_every: u64,
    /// The election timeout's lower bound in milliseconds of the local clock: how long a
    /// leader goes without hearing from a majority before it steps down (check-quorum).
    pub election_ms: u64,
    /// Lease length for the `lease-read` bug, in milliseconds of the local clock.
    pub lease_ms: u64,
    pub bug_stale_read: bool,
    pub bug_early_ack: bool,
    pub bug_forget_vote: bool,
    pub bug_lease_read: bool,
}

impl Settings {
    pub fn any_bug(&self) -> bool {
        self.bug_stale_read || self.bug_early_ack || self.bug_forget_vote || self.bug_lease_read
    }

    pub fn from_config(c: &CoreConfig) -> Settings {
        let tick = c.tick_ms.max(1);
        let ms = |key: &str, default: u64| opts::value(OPTS, c, key, default);
        let batch = ms("batch", 1) == 1;
        let election_ms = ms("election_ms", 300);
        Settings {
            election_ticks: (election_ms / tick).max(2),
            jitter_ticks: (ms("election_jitter_ms", election_ms) / tick).max(1),
            heartbeat_ticks: (ms("heartbeat_ms", 50) / tick).max(1),
            max_batch: if batch {
                ms("max_batch", 512) as usize
            } else {
                1
            },
            // Without batching one AppendEntries at a time, so that a follower's fsync
            // (the runtime makes one per drained batch of inputs) holds one entry.
            max_inflight: if batch {
                ms("max_inflight", 4).max(1) as usize
            } else {
                1
            },
            snapshot_every: ms("snapshot", 100_000),
            election_ms: election_ms.max(2 * tick),
            lease_ms: ms("lease_ms", election_ms),
            bug_stale_read: c.has_bug("stale-read"),
            bug_early_ack: c.has_bug("early-ack"),
            bug_forget_vote: c.has_bug("forget-vote"),
            bug_lease_read: c.has_bug("lease-read"),
        }
    }
}
