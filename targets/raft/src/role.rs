//! What a Raft node is doing, with the state that exists only while it does it.
//!
//! ```text
//!  Follower ──► PreCandidate { votes } ──► Candidate { votes } ──► Leader(Leader)
//!     ▲                                                              │
//!     └──────────────────── become_follower drops the rest ◄─────────┘
//! ```

use std::collections::BTreeSet;

use sunder_core::NodeId;

use crate::leader::Leader;

/// The role as reported: in `status`, to tests and to the simulator's election-safety check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

/// The role with its own state: votes while campaigning, the leader's bookkeeping while
/// leading (boxed: it is large, and followers are the common case).
#[derive(Debug)]
pub(crate) enum RoleState {
    Follower,
    /// Pre-votes granted for the term after the current one (this node's own included).
    PreCandidate {
        votes: BTreeSet<NodeId>,
    },
    /// Votes granted in the current term (this node's own included).
    Candidate {
        votes: BTreeSet<NodeId>,
    },
    Leader(Box<Leader>),
}

impl RoleState {
    pub fn kind(&self) -> Role {
        match self {
            RoleState::Follower => Role::Follower,
            RoleState::PreCandidate { .. } => Role::PreCandidate,
            RoleState::Candidate { .. } => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }

    pub fn is_leader(&self) -> bool {
        matches!(self, RoleState::Leader(_))
    }
}
