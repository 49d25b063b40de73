//! The router's message counts, by the kinds of a message's two ends (results.json's
//! `messages`).

use crate::network::{is_client, is_node};
use serde::{Deserialize, Serialize};

/// Messages the router saw, by the kinds of their ends.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MessageCounts {
    pub client_to_server: u64,
    pub server_to_client: u64,
    pub server_to_server: u64,
    pub server_to_service: u64,
    pub service_to_server: u64,
    /// Between clients and services (no workload sends these; the benchmark does).
    pub other: u64,
    /// Dropped because their link was cut / by random loss / extra copies delivered.
    pub cut: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Held back so that later messages overtook them (`--reorder`).
    pub reordered: u64,
    /// Dropped at delivery: the destination was down, its queue full, or no such id.
    pub to_down_node: u64,
    pub queue_full: u64,
    pub unknown_dest: u64,
    /// Client operations, and server-to-server messages per operation.
    pub operations: u64,
    pub server_to_server_per_op: f64,
    pub all_per_op: f64,
}

impl MessageCounts {
    pub fn count(&mut self, src: &str, dest: &str) {
        match (is_node(src), is_node(dest)) {
            (true, true) => self.server_to_server += 1,
            (true, false) if is_client(dest) => self.server_to_client += 1,
            (true, false) => self.server_to_service += 1,
            (false, true) if is_client(src) => self.client_to_server += 1,
            (false, true) => self.service_to_server += 1,
            (false, false) => self.other += 1,
        }
    }
}
