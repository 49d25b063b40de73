//! What the linearizability checker reports: a verdict per partition (key) and, for an
//! invalid one, evidence a person can read.
//!
//! These types are the contract between the engine (which fills them), the terminal and
//! JSON output of `sunder check`, and the HTML counterexample view.

use crate::history::{EventType, Process};
use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A client operation as the checker sees it: an invocation paired with its completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpSummary {
    /// Position of this operation among the partition's operations (0-based); evidence
    /// refers to operations by this id.
    pub id: usize,
    pub process: Process,
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The invocation's value (what was asked).
    pub input: Value,
    /// The completion's value (what came back); `null` for an `info` operation.
    pub output: Value,
    /// `ok` or `info` (failed operations never happened and are dropped before checking).
    pub kind: EventType,
    /// Invocation time, nanoseconds since the start of the test.
    pub call: u64,
    /// Completion time; `None` for an `info` operation, which stays open to the end.
    pub ret: Option<u64>,
    /// History indices of the invoke and completion events.
    pub invoke_index: u64,
    pub complete_index: Option<u64>,
}

/// One step of a linearization: an operation and the model state after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub op: usize,
    /// The model state after the operation took effect, rendered for people.
    pub state: String,
}

/// An operation the search tried to place next, after the longest prefix, and why the
/// model refused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub op: usize,
    /// The model state it met (rendered).
    pub state: String,
    /// Why it could not be placed, e.g. `read 3 but the register holds 2`.
    pub reason: String,
}

/// Why a partition is not linearizable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counterexample {
    /// The longest linearizable prefix found, in linearization order.
    pub longest_prefix: Vec<Step>,
    /// The model state after that prefix.
    pub state: String,
    /// The operations that could be next in real time, none of which the model accepts.
    pub stuck: Vec<Attempt>,
}

/// The result for one partition (one key, or the whole history for a single register).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub verdict: Verdict,
    /// All operations of the partition (what the HTML view draws).
    pub ops: Vec<OpSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
    /// Search states explored, for the curious and the benchmarks.
    pub explored: u64,
}

/// The result of checking one history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearizabilityReport {
    pub verdict: Verdict,
    /// The model's name, e.g. `cas-register`.
    pub model: String,
    /// Client operations checked (after dropping `fail`s).
    pub ops: usize,
    /// One line a person reads first, e.g. `key k3 is not linearizable: ...`.
    pub summary: String,
    /// Partitions that are invalid or unknown always appear here; valid ones only when the
    /// caller asked for them (they can be many).
    pub partitions: Vec<PartitionReport>,
    pub partitions_total: usize,
    pub elapsed_ms: u64,
    /// True when the time budget ran out before a verdict.
    pub timed_out: bool,
    /// True when the caller cancelled the check (Ctrl-C) before a verdict.
    #[serde(default)]
    pub interrupted: bool,
}
