//! # sunder-toy
//!
//! Two small targets that prove the harness on something simple, both pure
//! [`sunder_core::Protocol`] cores driven by `sunder_node::run_node`:
//!
//! ```text
//!   lww      client ─► any node: apply locally, reply ─► replicate to all peers (async)
//!            (last writer wins by (tick time, node id); sets merge by union)
//!            not linearizable under partitions: sunder must say so
//!
//!   primary  client ─► any node ─forward─► n1: apply, persist (fsync), reply ─► back
//!            linearizable; unavailable while n1 is down or cut off
//! ```
//!
//! - [`lww`]: [`Lww`], the last-writer-wins replica.
//! - [`primary`]: [`Primary`], the single durable primary with forwarders.
//! - [`boundary`]: [`Rejections`], the count of peer messages a core refused (from a
//!   stranger or itself; an `lww` stamp naming another node or beyond [`MAX_NUMBER`];
//!   a `primary` reply from a node that is not the primary).

pub mod boundary;
pub mod lww;
pub mod primary;

pub use boundary::{MAX_NUMBER, Rejections};
pub use lww::Lww;
pub use primary::Primary;

use serde_json::Value;
use sunder_wire::{Dump, DumpEntry, Status};

pub(crate) fn status_json(node: &str, role: &str, leader: Option<&str>, commit: u64) -> Value {
    serde_json::to_value(Status {
        node: node.to_string(),
        role: role.to_string(),
        term: 0,
        leader: leader.map(str::to_string),
        commit,
    })
    .expect("status serializes")
}

pub(crate) fn dump_json(node: &str, entries: Vec<DumpEntry>, state: Value) -> Value {
    serde_json::to_value(Dump {
        node: node.to_string(),
        snapshot_index: 0,
        entries,
        state,
        snapshot_digest: None,
        snapshot_terms: Vec::new(),
    })
    .expect("dump serializes")
}
