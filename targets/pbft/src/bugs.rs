//! The planted bugs, switched on with `--bug NAME`.
//!
//! The simulator finds each with its default faults on 4 replicas (`sim/tests/pbft.rs`;
//! first failing seed: quorum-2f 1, no-view-change-proof 1, early-reply 1,
//! skip-sig-check 3). `skip-sig-check` needs something that forges: the simulator alters
//! messages in transit while a loss fault is in force (its `tamper` hook), and the bug
//! shows when an altered catch-up certificate or transferred state is believed.
//! `quorum-2f` and `no-view-change-proof` show as replicas that executed different
//! requests at one sequence number (the per-step invariant, or the agreement checker);
//! `early-reply` as a history that is not linearizable.

/// Names accepted by `--bug`.
pub const KNOWN: &[&str] = &[
    "quorum-2f",
    "no-view-change-proof",
    "skip-sig-check",
    "early-reply",
];

/// Which planted bugs are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Every quorum (prepared, committed, stable checkpoint, new view) counts 2f
    /// messages instead of 2f+1: two quorums no longer need to share an honest replica,
    /// so two halves of a partition can each commit a different batch at one sequence
    /// number. (Lowering the commit quorum alone survives crash faults: a request
    /// commits only where 2f+1 prepared it, and any view change hears from one of them.)
    pub quorum_2f: bool,
    /// The new primary ignores prepared certificates: it re-issues nothing above the
    /// stable checkpoint, so a batch committed somewhere in the old view can be replaced
    /// by another at the same sequence number. Backups check the new view by the same
    /// flawed rule.
    pub no_view_change_proof: bool,
    /// Signatures are never verified, so a message altered in transit (or forged) counts.
    pub skip_sig_check: bool,
    /// A replica answers a client when it accepts the pre-prepare, with the result of the
    /// operation on its current state, before the batch is committed or ordered after
    /// what is still in flight.
    pub early_reply: bool,
}

impl Bugs {
    pub fn from_names(names: &[String]) -> Self {
        let on = |n: &str| names.iter().any(|b| b == n);
        Bugs {
            quorum_2f: on("quorum-2f"),
            no_view_change_proof: on("no-view-change-proof"),
            skip_sig_check: on("skip-sig-check"),
            early_reply: on("early-reply"),
        }
    }
}
