//! What travels between replicas. Every message is a [`Signed`] envelope; certificates
//! nest the signed messages they are made of, so a receiver checks each one itself.

use serde::{Deserialize, Serialize};
use sunder_wire::{Op, Response};

/// A SHA-256 digest (of a batch, or of a checkpoint's state).
pub type Digest = [u8; 32];

/// One client request: who sent it, its timestamp (increasing per client: at most one
/// execution per timestamp), the operation, and the client's signature over the three
/// (hex; `None` only in the simulator's unsigned mode, where a client is its connection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Req {
    pub client: u64,
    pub ts: u64,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

/// A replica's state at a checkpoint: the key-value contents, the last reply per client
/// (what deduplication needs), and the hash chain over every executed batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub seq: u64,
    pub kv: serde_json::Value,
    pub replies: Vec<(u64, u64, Response)>,
    pub chain: Digest,
}

/// A pre-prepare and the 2f matching prepares from distinct backups that prove it prepared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreparedCert {
    pub pre_prepare: Signed,
    pub prepares: Vec<Signed>,
}

/// A pre-prepare and the 2f+1 matching commits that prove it committed (for catch-up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitCert {
    pub pre_prepare: Signed,
    pub commits: Vec<Signed>,
}

/// What a message says. `view` and `seq` name the protocol slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// The primary of `view` assigns `seq` to a batch (empty: a null request).
    PrePrepare {
        view: u64,
        seq: u64,
        digest: Digest,
        batch: Vec<Req>,
    },
    Prepare {
        view: u64,
        seq: u64,
        digest: Digest,
    },
    Commit {
        view: u64,
        seq: u64,
        digest: Digest,
    },
    /// The sender's state after executing `seq` has this digest.
    Checkpoint {
        seq: u64,
        digest: Digest,
    },
    /// The sender moves to `view`: its stable checkpoint with proof (2f+1 checkpoint
    /// messages; empty for the initial state, seq 0) and every request prepared above it.
    ViewChange {
        view: u64,
        stable: u64,
        proof: Vec<Signed>,
        prepared: Vec<PreparedCert>,
    },
    /// The new primary's proof (2f+1 view changes) and the pre-prepares it re-issues.
    NewView {
        view: u64,
        view_changes: Vec<Signed>,
        pre_prepares: Vec<Signed>,
    },
    /// A backup relays a client request to the primary.
    Forward {
        req: Req,
    },
    /// Sent every `status_ms`: lets peers that fell behind (in view or execution) catch up.
    Status {
        view: u64,
        active: bool,
        stable: u64,
        executed: u64,
    },
    /// Asks for commit certificates from `from` on.
    Fetch {
        from: u64,
    },
    Certs {
        certs: Vec<CommitCert>,
    },
    /// Asks for the state at the sender's stable checkpoint (at least `seq`).
    FetchState {
        seq: u64,
    },
    State {
        snapshot: Snapshot,
        proof: Vec<Signed>,
    },
    /// Asks for the new-view message of the sender's current view.
    FetchNewView {
        view: u64,
    },
}

impl Body {
    pub fn name(&self) -> &'static str {
        match self {
            Body::PrePrepare { .. } => "pre-prepare",
            Body::Prepare { .. } => "prepare",
            Body::Commit { .. } => "commit",
            Body::Checkpoint { .. } => "checkpoint",
            Body::ViewChange { .. } => "view-change",
            Body::NewView { .. } => "new-view",
            Body::Forward { .. } => "forward",
            Body::Status { .. } => "status",
            Body::Fetch { .. } => "fetch",
            Body::Certs { .. } => "certs",
            Body::FetchState { .. } => "fetch-state",
            Body::State { .. } => "state",
            Body::FetchNewView { .. } => "fetch-new-view",
        }
    }
}

/// A message with its sender's index and ed25519 signature over `(from, body)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signed {
    pub from: u32,
    pub body: Body,
    pub sig: Vec<u8>,
}
