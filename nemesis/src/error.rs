//! The one error type of this crate.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum NemesisError {
    /// A fault aimed at the leader while no node claims to lead: recorded, not guessed.
    #[error("no leader known")]
    NoLeader,
    /// The shape or target makes no sense for this cluster (e.g. a ring of 3).
    #[error("{0}")]
    NotApplicable(String),
    /// A node named in a fault is not a member.
    #[error("unknown node {0}")]
    UnknownNode(String),
    /// The backend could not carry the fault out (signal failed, spawn failed, ...).
    #[error("{0}")]
    Backend(String),
    /// A fault of this kind (or what an undo could not reach of one) is still in force.
    #[error("{0}")]
    InForce(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A bad `--nemesis` list or duration.
    #[error("{0}")]
    Config(String),
}
