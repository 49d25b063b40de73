//! The planted bugs, switched on with `--bug NAME`, and the fault mixes that find them.
//! `sunder sim --target paxos --bug NAME` finds each with its default faults (first
//! failing seed: string-ballots 9, ignore-accepted 1, no-persist 4).
//!
//! | bug | `sunder test --target paxos --nodes 5` mix |
//! |---|---|
//! | `string-ballots` | `--nemesis partition,pause --fault-lengths fixed --nemesis-interval 900ms --concurrency 20 --time-limit 20s` |
//! | `ignore-accepted` | `--nemesis partition,kill,pause --time-limit 60s` |
//! | `no-persist` | `--nemesis partition,kill,pause --time-limit 60s` |
//! | `no-fsync` | `--nemesis lose-unsynced --nemesis-interval 500ms --fault-lengths fixed --time-limit 120s` (root) |
//!
//! `no-fsync` is acted out by the node runtime (records written, never fsynced:
//! `sunder_core::protocol::DISK_BUGS`); only disk faults can show it, and the simulator
//! refuses it.
//!
//! `string-ballots` needs a deposed leader that is still proposing when it hears from the
//! others again: faults shorter than twice the election timeout (default 500 ms), so that
//! the majority elects a successor but the old leader has not yet stepped down.
//! `string-ballots` and `ignore-accepted` mostly show as slots whose chosen values differ
//! between nodes' dumps (the agreement checker); `no-persist` as lost acknowledged writes
//! (linearizability). `string-ballots` also shows earlier, as an acceptor that accepts a
//! deposed leader's round below its promise: acceptors announce their promises and the
//! rounds they accept under (`promise` and `accept` events), which the agreement checker
//! holds against each other.

/// Names accepted by `--bug`.
pub const KNOWN: &[&str] = &[
    "string-ballots",
    "ignore-accepted",
    "no-persist",
    // acted out by the node runtime (sunder_core::protocol::DISK_BUGS)
    "no-fsync",
];

/// Which planted bugs are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Ballots compared as `n1-10`-style strings, as in the design we were handed, in the
    /// two places that compare one proposal with another: the acceptor's check of an
    /// Accept against its promise (a deposed leader whose name sorts higher gets its stale
    /// proposals accepted) and phase-1 recovery's "highest accepted ballot" (an older value
    /// can beat a newer, possibly chosen, one). The Prepare check compares numbers.
    pub string_ballots: bool,
    /// Phase-1 recovery ignores accepted values and proposes the new leader's own commands
    /// from its first unchosen slot on.
    pub ignore_accepted: bool,
    /// Promises and accepted values (and learned values) are never written to disk.
    pub no_persist: bool,
}

impl Bugs {
    pub fn from_names(names: &[String]) -> Self {
        let on = |n: &str| names.iter().any(|b| b == n);
        Bugs {
            string_ballots: on("string-ballots"),
            ignore_accepted: on("ignore-accepted"),
            no_persist: on("no-persist"),
        }
    }
}
