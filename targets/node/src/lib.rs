//! # sunder-node
//!
//! The runtime shared by sunder's built-in targets (being built).

pub mod protocol;

pub use protocol::{CoreConfig, Input, NodeId, Output, Protocol, ReqToken};
