//! Durable records. Between checkpoints a replica appends every signed message it took
//! into its state (its own and its peers'), plus catch-up certificates and transferred
//! state; recovery replays them through the same code that took them the first time.
//! At each stable checkpoint the log is replaced by a compact image of the state.

use crate::msg::{CommitCert, Digest, PreparedCert, Req, Signed, Snapshot};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Records are made once per step and written out; their size on the stack does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Record {
    /// A verified message taken into the state (replayed without re-verification).
    Msg(Signed),
    /// Commit certificates fetched from a peer.
    Cert(CommitCert),
    /// State fetched from a peer, with its checkpoint proof.
    State {
        snapshot: Snapshot,
        proof: Vec<Signed>,
    },
    // ---- the compact image written at a stable checkpoint ----
    /// The stable checkpoint: the state there and its proof.
    Stable {
        snapshot: Snapshot,
        proof: Vec<Signed>,
    },
    /// The view, whether it is active, and the new-view message that started it.
    View {
        view: u64,
        active: bool,
        new_view: Option<Signed>,
    },
    /// One slot above the stable checkpoint.
    Slot {
        seq: u64,
        pre_prepare: Option<Signed>,
        prepares: Vec<Signed>,
        commits: Vec<Signed>,
        prepared: Option<PreparedCert>,
        /// What this slot committed, when it did: its batch may have been executed in
        /// a view whose pre-prepare a later view's has since replaced, so the commits
        /// kept above no longer prove it. Our own disk, so taken as written.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        committed: Option<(Digest, Vec<Req>)>,
    },
}
