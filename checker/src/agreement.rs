//! Agreement between replicas, from node dumps and event streams.
//!
//! ```text
//!  events/<node>.jsonl ─► EventLine ─┬► leader events by term ──► duplicate leaders
//!                                    ├► vote events by node and term ──► double votes
//!                                    ├► last vote before each recovered ──► lost votes
//!                                    ├► promise / accept rounds by node ──► broken promises
//!                                    └► tip / confirm by node ──► chain series (plotted only)
//!  dump of each node ───► Dump ──────┬► entries by index, compared ──► first divergence
//!                                    └► union = the committed log ─┐
//!  history.jsonl ─► ok write / cas / add ──────────────────────────┴► missing writes
//! ```
//!
//! Six properties, for any log-based protocol (Raft: index and term; Paxos: slot and
//! ballot round):
//! - **election safety**: at most one node announces itself leader of any one term;
//! - **one vote per term**: no node grants its vote to two different candidates in one
//!   term, across restarts (the event stream is appended, so it outlives a kill). This is
//!   the promise a durable vote keeps; breaking it is how two leaders can win one term,
//!   but it is caught even when the second candidate does not win. Nodes write a `vote`
//!   event (`term`, `for`) only after the vote is durable, so a correct node never shows two;
//! - **durable votes**: a node that votes (Raft) writes a `recovered` event with the term
//!   and vote it read back at every start; the last vote it announced before must be in
//!   it. A lost vote is a double vote waiting for a second candidate to ask: caught at the
//!   restart, whether or not one asks;
//! - **promises kept**: a Paxos acceptor writes a `promise` event when its promise rises and
//!   an `accept` event when it first accepts under a new round; none may be below a round
//!   it promised or accepted before (restarts included);
//! - **committed-prefix agreement**: no index at which two nodes committed different
//!   entries (by term and command);
//! - **acknowledged writes present**: every `ok` write, cas or add of the history is a
//!   committed command. Values are unique per key, so `(f, key, value)` names a command.
//!
//! `valid` means every check ran on complete evidence. The caller names the run's members
//! ([`Membership`]); a member without a dump (it failed, or was never taken) makes the
//! verdict `unknown`, naming the node and why, and so does a dump from a node that is not
//! a member. An acknowledged update is *located* when:
//! 1. a dump lists it among its committed entries (*found*); or
//! 2. some dump's state still holds the value it wrote (*confirmed by state*); or
//! 3. it lies in a compacted prefix, **verified** by this rule: its `ok` event records the
//!    position it was committed at (`committed: {index p, term t}`, reported by the node
//!    that acknowledged it), at least one dump's snapshot covers `p`, every dump whose
//!    snapshot covers `p` reports term `t` at `p` (`snapshot_terms`), no dump lists a
//!    different entry at `p`, and every two covering dumps show equal hash chains at an
//!    index at or after `p` (`snapshot_digest`, or an entry's `digest`), so they committed
//!    the same prefix through `p`. Term `t` at `p` names one entry: only the leader of `t`
//!    (one per term, checked above) proposes in `t`, once per position.
//!
//! An acknowledged update that is not located is *missing* (`invalid`) when the evidence
//! is complete (every member dumped, no dump starts after a snapshot that may hide it, no
//! index beyond the dumps was announced committed) or when a covering dump shows another
//! term at its reported position; otherwise it is *unlocated*, and the verdict `unknown`
//! names it (history index, key, value) and why. Two dumps whose hash chains differ at an
//! index both know committed different prefixes: `invalid` (a prefix divergence).
//!
//! [`check`] is pure; [`load_run_dir`] reads what a `sunder test` run left in `nodes/`
//! (`<id>.dump.json`, `<id>.events.jsonl`).
//!
//! Dumps and events are read as the very types the nodes write them with
//! ([`sunder_wire::Dump`], [`sunder_wire::EventLine`]), so the two sides cannot drift: a
//! renamed field fails to compile. An event this version does not know
//! ([`NodeEvent::Other`]) is skipped; a known event without the fields it is judged by is
//! a bad line, never a silent gap in the evidence.

mod chain_series;
mod prefix;
pub use chain_series::{ChainSeries, MAX_POINTS, NodeChain, Reorg, chain_series};
pub use prefix::PrefixDivergence;

use crate::history::{EventType, History};
use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
pub use sunder_wire::{Dump, DumpEntry, EventLine, NodeEvent};

/// Bad input, with the source and line it came from.
#[derive(Debug, thiserror::Error)]
pub enum AgreementError {
    #[error("{source_name}:{line}: {message}")]
    BadLine {
        source_name: String,
        line: usize,
        message: String,
    },
    #[error("{source_name}: not a dump: {message}")]
    BadDump {
        source_name: String,
        message: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Dumps and events of every node of a run directory, plus warnings (torn event lines).
pub type RunInputs = (Vec<Dump>, Vec<EventLine>, Vec<String>);

/// Reads `DIR/nodes/*.dump.json` and `DIR/nodes/*.events.jsonl`, in file-name order.
pub fn load_run_dir(dir: &std::path::Path) -> Result<RunInputs, AgreementError> {
    let nodes = dir.join("nodes");
    let io = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |source| AgreementError::Io { path, source }
    };
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&nodes)
        .map_err(io(&nodes))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let (mut dumps, mut events, mut warnings) = (Vec::new(), Vec::new(), Vec::new());
    for f in files {
        let name = f.display().to_string();
        let file_name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if file_name.ends_with(".dump.json") {
            let text = std::fs::read_to_string(&f).map_err(io(&f))?;
            let v: Value = serde_json::from_str(&text).map_err(|e| AgreementError::BadLine {
                source_name: name.clone(),
                line: e.line(),
                message: e.to_string(),
            })?;
            dumps.push(parse_dump(&v, &name)?);
        } else if file_name.ends_with(".events.jsonl") {
            let text = std::fs::read_to_string(&f).map_err(io(&f))?;
            let (e, w) = parse_events(&text, &name)?;
            events.extend(e);
            warnings.extend(w);
        }
    }
    Ok((dumps, events, warnings))
}

/// Who the run's members are, so that a dump that is missing is noticed, and why some
/// could not be taken (from whoever took them: the controller's per-node outcome).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Membership {
    pub nodes: Vec<String>,
    /// Node → why its dump could not be taken.
    pub dump_errors: BTreeMap<String, String>,
    /// Members the run made Byzantine (`--byzantine`): their dumps and events are left
    /// out, since a liar promises nothing; the honest members are judged.
    pub byzantine: BTreeSet<String>,
}

impl Membership {
    /// Members without anything known about failed dumps.
    pub fn of(nodes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Membership {
            nodes: nodes.into_iter().map(Into::into).collect(),
            dump_errors: BTreeMap::new(),
            byzantine: BTreeSet::new(),
        }
    }
}

/// Parses a dump payload (the `value` of a `dump` response) and checks what serde cannot
/// (the shape of `snapshot_terms`).
pub fn parse_dump(v: &Value, source_name: &str) -> Result<Dump, AgreementError> {
    let bad = |message: String| AgreementError::BadDump {
        source_name: source_name.into(),
        message,
    };
    let d: Dump = Dump::deserialize(v).map_err(|e| bad(e.to_string()))?;
    prefix::validate_terms(&d).map_err(bad)?;
    Ok(d)
}

/// Parses an event stream (JSON lines). A truncated last line (the node was killed while
/// writing it) is dropped with a warning; any other bad line is an error.
pub fn parse_events(
    text: &str,
    source_name: &str,
) -> Result<(Vec<EventLine>, Vec<String>), AgreementError> {
    let mut events = Vec::new();
    let mut warnings = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<EventLine>(line) {
            Ok(e) => events.push(e),
            Err(e) if e.is_eof() && i + 1 == lines.len() && !text.ends_with('\n') => {
                warnings.push(format!(
                    "{source_name}:{}: truncated last line dropped",
                    i + 1
                ));
            }
            Err(e) => {
                return Err(AgreementError::BadLine {
                    source_name: source_name.into(),
                    line: i + 1,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok((events, warnings))
}

/// Two nodes that announced leadership of the same term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateLeaders {
    pub term: u64,
    pub nodes: Vec<String>,
}

/// A node that granted its vote to more than one candidate in one term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoubleVote {
    pub node: String,
    pub term: u64,
    /// Every candidate it voted for in that term, in the order of its event stream.
    pub candidates: Vec<String>,
}

/// A node that announced a vote as durable and, restarted, read back an election state
/// without it: an earlier term, or the same term with no vote or another one. It may vote
/// again in that term (Raft's election safety rests on the vote surviving a crash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostVote {
    pub node: String,
    /// The vote announced before the restart.
    pub term: u64,
    pub candidate: String,
    /// What the node read back at the restart.
    pub recovered_term: u64,
    pub recovered_vote: Option<String>,
    /// Which restart of the node read it back: 1 for the first after its initial start
    /// (the node's `n`-th `restart` in the history).
    pub restart: u64,
}

/// Lost votes and broken promises the terminal summary lists before it counts the rest.
const SUMMARY_LINES: usize = 8;

/// A Paxos acceptor that promised or accepted a ballot round below a promise it had
/// already made: the one rule acceptors keep, whatever the proposers do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokenPromise {
    pub node: String,
    /// `accept` or `promise`.
    pub what: String,
    pub term: u64,
    /// The highest round it had promised or accepted before.
    pub promised: u64,
    /// The node's own timestamp of the event (its wall clock, or simulated time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<u64>,
}

impl BrokenPromise {
    pub fn describe(&self) -> String {
        let did = if self.what == "accept" {
            "accepted a proposal of"
        } else {
            "promised"
        };
        format!(
            "{} {did} round {} after promising round {}",
            self.node, self.term, self.promised
        )
    }
}

/// Two nodes that executed different batches at one sequence number (PBFT's `execute`
/// events): the first such pair for each sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitExecution {
    pub seq: u64,
    pub node_a: String,
    pub digest_a: String,
    pub node_b: String,
    pub digest_b: String,
    /// `node_b`'s timestamp of its execution (the second of the two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<u64>,
}

impl SplitExecution {
    pub fn describe(&self) -> String {
        format!(
            "{} and {} executed different batches at sequence number {} ({}… and {}…)",
            self.node_a,
            self.node_b,
            self.seq,
            &self.digest_a[..self.digest_a.len().min(12)],
            &self.digest_b[..self.digest_b.len().min(12)]
        )
    }
}

/// A confirmed block that did not stay (proof-of-work chains' `confirm` events): a node
/// confirmed `hash_b` at a height where `node_a` had confirmed `hash_a` before. When the
/// two nodes are one, a reorganisation deeper than the confirmation depth reversed the
/// node's own confirmation; when they differ, two honest nodes' confirmed prefixes split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReversedConfirmation {
    pub height: u64,
    pub node_a: String,
    pub hash_a: String,
    pub node_b: String,
    pub hash_b: String,
    /// `node_b`'s timestamp of the second confirmation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<u64>,
}

impl ReversedConfirmation {
    pub fn describe(&self) -> String {
        let (a, b) = (
            &self.hash_a[..self.hash_a.len().min(12)],
            &self.hash_b[..self.hash_b.len().min(12)],
        );
        if self.node_a == self.node_b {
            format!(
                "{} reversed its confirmation at height {}: block {a}… confirmed, then {b}… \
                 (a reorganisation deeper than the confirmation depth)",
                self.node_a, self.height
            )
        } else {
            format!(
                "{} and {} confirmed different blocks at height {} ({a}… and {b}…): no common \
                 prefix",
                self.node_a, self.node_b, self.height
            )
        }
    }
}

/// The first index at which two nodes' committed entries differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    pub index: u64,
    pub node_a: String,
    pub entry_a: DumpEntry,
    pub node_b: String,
    pub entry_b: DumpEntry,
}

/// An acknowledged update not found among the committed commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissingWrite {
    /// The `ok` event's position in the history.
    pub history_index: u64,
    pub f: String,
    pub key: Option<String>,
    pub value: Value,
}

/// A member whose dump the checker did not get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingDump {
    pub node: String,
    /// Why, when the caller knows (the dump request failed, the run was interrupted).
    pub reason: String,
}

/// An acknowledged update the dumps can neither show nor rule out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnlocatedWrite {
    pub history_index: u64,
    pub f: String,
    pub key: Option<String>,
    pub value: Value,
    /// Why it cannot be located, naming the nodes concerned.
    pub why: String,
}

/// The agreement checker's finding, as `results.json` holds it (a checker's `details`)
/// and the report reads it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementReport {
    pub verdict: Verdict,
    /// The nodes that dumped.
    pub nodes: Vec<String>,
    /// The run's members (who should have dumped).
    pub members: Vec<String>,
    pub missing_dumps: Vec<MissingDump>,
    /// Dumps from nodes that are not members (or a second dump of one member).
    pub unexpected_dumps: Vec<String>,
    /// Highest committed index of any dump, and the node that has it.
    pub longest: Option<(String, u64)>,
    pub duplicate_leaders: Vec<DuplicateLeaders>,
    pub double_votes: Vec<DoubleVote>,
    /// Votes announced as durable and missing from what the node read back at a restart.
    #[serde(default)]
    pub lost_votes: Vec<LostVote>,
    /// Acceptors that went below a promise (`promise` and `accept` events).
    #[serde(default)]
    pub broken_promises: Vec<BrokenPromise>,
    /// Honest replicas that executed different batches at one sequence number (PBFT).
    #[serde(default)]
    pub split_executions: Vec<SplitExecution>,
    /// Confirmed blocks that were replaced, on one node or between two (pow).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reversed_confirmations: Vec<ReversedConfirmation>,
    pub divergence: Option<Divergence>,
    /// Two nodes' hash chains differ: their compacted prefixes differ.
    pub prefix_divergence: Option<PrefixDivergence>,
    pub missing_writes: Vec<MissingWrite>,
    /// Acknowledged updates neither found nor shown missing: the verdict is unknown.
    pub unlocated_writes: Vec<UnlocatedWrite>,
    /// Acknowledged updates found among the committed entries.
    pub writes_found: usize,
    /// Not among the entries, but their value is in a dump's state (compacted away).
    pub writes_confirmed_by_state: usize,
    /// In a compacted prefix, verified by their reported position (see the module docs).
    pub writes_in_compacted_prefix: usize,
    /// Not among the entries, possibly in a compacted prefix: neither confirmed nor missing.
    pub writes_unverifiable: usize,
    /// Not among the entries, and the dumps end before an index some node announced
    /// committed (dumped before the cluster caught up): neither confirmed nor missing.
    pub writes_beyond_dumps: usize,
    /// The highest index any `commit` event announced.
    pub announced_commit: Option<u64>,
    pub warnings: Vec<String>,
    /// Byzantine members, not judged (see [`Membership::byzantine`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub byzantine: Vec<String>,
    /// Chain nodes' best and confirmed heights over time and their reorganisations (the
    /// honest nodes' `tip` and `confirm` events), for the report's plot; `None` when no
    /// node wrote a `tip` event. Not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainSeries>,
}

impl AgreementReport {
    /// One line per finding, for the terminal.
    pub fn summary(&self) -> String {
        let mut s = format!("agreement: {}", self.verdict);
        if let Some((node, index)) = &self.longest {
            s += &format!(
                " ({} nodes, longest log {node} up to {index})",
                self.nodes.len()
            );
        }
        if !self.byzantine.is_empty() {
            s += &format!("; Byzantine, not judged: {}", self.byzantine.join(", "));
        }
        for d in &self.duplicate_leaders {
            s += &format!("\n  two leaders in term {}: {}", d.term, d.nodes.join(", "));
        }
        for d in &self.double_votes {
            s += &format!(
                "\n  {} voted twice in term {}: for {}",
                d.node,
                d.term,
                d.candidates.join(" and ")
            );
        }
        // Both can repeat at every restart or ballot: the first few, and how many.
        let lines = self
            .lost_votes
            .iter()
            .map(LostVote::describe)
            .chain(self.broken_promises.iter().map(BrokenPromise::describe))
            .chain(self.split_executions.iter().map(SplitExecution::describe))
            .chain(
                self.reversed_confirmations
                    .iter()
                    .map(ReversedConfirmation::describe),
            );
        let total = self.lost_votes.len()
            + self.broken_promises.len()
            + self.split_executions.len()
            + self.reversed_confirmations.len();
        for line in lines.take(SUMMARY_LINES) {
            s += &format!("\n  {line}");
        }
        if total > SUMMARY_LINES {
            s += &format!(
                "\n  ... {} more lost votes, broken promises, split executions or reversed confirmations (results.json has them all)",
                total - SUMMARY_LINES
            );
        }
        if let Some(d) = &self.divergence {
            s += &format!(
                "\n  index {}: {} committed term {} {}, {} committed term {} {}",
                d.index,
                d.node_a,
                d.entry_a.term,
                d.entry_a.command,
                d.node_b,
                d.entry_b.term,
                d.entry_b.command
            );
        }
        if let Some(d) = &self.prefix_divergence {
            s += &format!(
                "\n  committed prefixes differ: through index {} {} has chain {}, {} has {}",
                d.index, d.node_a, d.digest_a, d.node_b, d.digest_b
            );
        }
        for m in &self.missing_dumps {
            s += &format!("\n  no dump from {}: {}", m.node, m.reason);
        }
        for n in &self.unexpected_dumps {
            s += &format!("\n  unexpected dump: {n}");
        }
        for w in &self.warnings {
            s += &format!("\n  warning: {w}");
        }
        for m in &self.missing_writes {
            s += &format!(
                "\n  acknowledged {} {:?} {} (history index {}) is not committed",
                m.f, m.key, m.value, m.history_index
            );
        }
        const SHOWN: usize = 10;
        for u in self.unlocated_writes.iter().take(SHOWN) {
            s += &format!(
                "\n  acknowledged {} {:?} {} (history index {}) cannot be located: {}",
                u.f, u.key, u.value, u.history_index, u.why
            );
        }
        if self.unlocated_writes.len() > SHOWN {
            s += &format!(
                "\n  ... and {} more that cannot be located (see details)",
                self.unlocated_writes.len() - SHOWN
            );
        }
        s += &format!(
            "\n  acknowledged updates: {} in the log, {} confirmed by state, {} verified in \
             a compacted prefix, {} unverifiable (compacted), {} beyond the dumps, {} missing",
            self.writes_found,
            self.writes_confirmed_by_state,
            self.writes_in_compacted_prefix,
            self.writes_unverifiable,
            self.writes_beyond_dumps,
            self.missing_writes.len()
        );
        // Informational, so last: the findings above come first in a one-line reason.
        if let Some(c) = &self.chain {
            s += &format!("\n  {}", c.summary());
        }
        s
    }
}

/// The `(f, key, value)` a committed command stands for, in the history's terms.
fn command_key(cmd: &Value) -> Option<(String, Option<String>, Value)> {
    let f = cmd.get("op")?.as_str()?.to_string();
    let key = cmd.get("key").and_then(Value::as_str).map(String::from);
    let value = match f.as_str() {
        "cas" => Value::Array(vec![cmd.get("from")?.clone(), cmd.get("to")?.clone()]),
        "transfer" => serde_json::json!({
            "from": cmd.get("from")?,
            "to": cmd.get("to")?,
            "amount": cmd.get("amount")?,
        }),
        _ => cmd.get("value")?.clone(),
    };
    Some((f, key, value))
}

/// Whether a dump's state shows the effect of an update (the value it wrote is there).
fn state_holds(state: &Value, f: &str, key: Option<&str>, value: &Value) -> bool {
    let Some(key) = key else { return false };
    let Some(cell) = state.get(key) else {
        return false;
    };
    match f {
        "write" => cell == value,
        "cas" => value.get(1).is_some_and(|to| cell == to),
        "add" => cell.as_array().is_some_and(|a| a.contains(value)),
        _ => false,
    }
}

/// Every node that voted for two different candidates in one term. Events keep their
/// stream order (one file per node), so the candidates are listed as they were granted.
fn double_votes(events: &[EventLine]) -> Vec<DoubleVote> {
    let mut votes: BTreeMap<(&str, u64), Vec<&str>> = BTreeMap::new();
    for e in events {
        if let NodeEvent::Vote { term, candidate } = &e.event {
            let v = votes.entry((&e.node, *term)).or_default();
            if !v.contains(&candidate.as_str()) {
                v.push(candidate);
            }
        }
    }
    votes
        .into_iter()
        .filter(|(_, c)| c.len() > 1)
        .map(|((node, term), c)| DoubleVote {
            node: node.into(),
            term,
            candidates: c.into_iter().map(String::from).collect(),
        })
        .collect()
}

/// Every vote a node announced (its `vote` events, written once durable) that a later
/// restart of that node did not read back (its `recovered` events). A node's events are
/// in stream order, so the last vote before a `recovered` is the one the disk must hold;
/// the first `recovered` of a node (its initial start) counts as restart 0.
fn lost_votes(events: &[EventLine]) -> Vec<LostVote> {
    /// A node's last announced vote (term, candidate) and its `recovered` events so far.
    type Seen<'a> = (Option<(u64, &'a str)>, u64);
    let mut state: BTreeMap<&str, Seen> = BTreeMap::new();
    let mut lost = Vec::new();
    for e in events {
        let (last, restarts) = state.entry(&e.node).or_default();
        match &e.event {
            NodeEvent::Vote { term, candidate } => *last = Some((*term, candidate)),
            NodeEvent::Recovered { term, vote } => {
                if let Some((t, c)) = *last
                    && (*term < t || (*term == t && vote.as_deref() != Some(c)))
                {
                    lost.push(LostVote {
                        node: e.node.clone(),
                        term: t,
                        candidate: c.to_string(),
                        recovered_term: *term,
                        recovered_vote: vote.clone(),
                        restart: *restarts,
                    });
                }
                *last = vote.as_deref().map(|v| (*term, v));
                *restarts += 1;
            }
            _ => {}
        }
    }
    lost
}

/// For each sequence number, the first `execute` event whose digest differs from the
/// first one seen there (by another node: a node's own replays carry its digest).
fn split_executions(events: &[EventLine]) -> Vec<SplitExecution> {
    let mut first: BTreeMap<u64, (&str, &str)> = BTreeMap::new();
    let mut split: BTreeMap<u64, SplitExecution> = BTreeMap::new();
    for e in events {
        let NodeEvent::Execute {
            seq,
            digest: Some(d),
            ..
        } = &e.event
        else {
            continue;
        };
        match first.get(seq) {
            None => {
                first.insert(*seq, (&e.node, d));
            }
            Some(&(node, d0)) if d0 != d && !split.contains_key(seq) => {
                split.insert(
                    *seq,
                    SplitExecution {
                        seq: *seq,
                        node_a: node.to_string(),
                        digest_a: d0.to_string(),
                        node_b: e.node.clone(),
                        digest_b: d.clone(),
                        time_ms: e.time_ms,
                    },
                );
            }
            Some(_) => {}
        }
    }
    split.into_values().collect()
}

/// Every `confirm` event at a height where another block was confirmed before, by the
/// same node (a reversal) or by another (a split): the first of each kind per height and
/// node pair, in stream order.
fn reversed_confirmations(events: &[EventLine]) -> Vec<ReversedConfirmation> {
    // height → the first (node, hash) confirmed there; (node, height) → its last hash.
    let mut first: BTreeMap<u64, (&str, &str)> = BTreeMap::new();
    let mut own: BTreeMap<(&str, u64), &str> = BTreeMap::new();
    let mut seen: BTreeSet<(u64, String, String)> = BTreeSet::new();
    let mut out = Vec::new();
    for e in events {
        let NodeEvent::Confirm { height, hash } = &e.event else {
            continue;
        };
        let mut report = |node_a: &str, hash_a: &str| {
            if seen.insert((*height, node_a.to_string(), e.node.clone())) {
                out.push(ReversedConfirmation {
                    height: *height,
                    node_a: node_a.to_string(),
                    hash_a: hash_a.to_string(),
                    node_b: e.node.clone(),
                    hash_b: hash.clone(),
                    time_ms: e.time_ms,
                });
            }
        };
        if let Some(&before) = own.get(&(e.node.as_str(), *height))
            && before != hash
        {
            report(&e.node, before);
        }
        match first.get(height) {
            Some(&(node, h0)) if node != e.node && h0 != hash => report(node, h0),
            Some(_) => {}
            None => {
                first.insert(*height, (&e.node, hash));
            }
        }
        own.insert((&e.node, *height), hash);
    }
    out
}

/// Every `promise` or `accept` event below the highest round its node promised or
/// accepted before, in stream order (restarts included: a promise is durable).
fn broken_promises(events: &[EventLine]) -> Vec<BrokenPromise> {
    let mut highest: BTreeMap<&str, u64> = BTreeMap::new();
    let mut broken = Vec::new();
    for e in events {
        let (what, term) = match e.event {
            NodeEvent::Promise { term } => ("promise", term),
            NodeEvent::Accept { term } => ("accept", term),
            _ => continue,
        };
        let h = highest.entry(&e.node).or_default();
        if term < *h {
            broken.push(BrokenPromise {
                node: e.node.clone(),
                what: what.into(),
                term,
                promised: *h,
                time_ms: e.time_ms,
            });
        }
        *h = (*h).max(term);
    }
    broken
}

impl LostVote {
    /// One line: what was announced and what came back.
    pub fn describe(&self) -> String {
        let back = match (&self.recovered_vote, self.recovered_term == self.term) {
            (None, true) => format!("no vote in term {}", self.term),
            (Some(v), true) => format!("a vote for {v}"),
            (v, false) => format!(
                "term {}{}",
                self.recovered_term,
                v.as_ref()
                    .map(|v| format!(" and a vote for {v}"))
                    .unwrap_or_default()
            ),
        };
        format!(
            "{} voted for {} in term {} (durable), restarted and read back {back}",
            self.node, self.candidate, self.term
        )
    }
}

/// Runs the six checks. `history` supplies the acknowledged updates (`ok` events with
/// `f` of `write`, `cas` or `add`); nemesis and read events are ignored. `members` says
/// whose dumps there should be.
pub fn check(
    dumps: &[Dump],
    events: &[EventLine],
    history: &History,
    members: &Membership,
) -> AgreementReport {
    if !members.byzantine.is_empty() {
        return check_honest(dumps, events, history, members);
    }
    let mut warnings = Vec::new();
    let (missing_dumps, unexpected_dumps) = membership_gaps(dumps, members);

    let mut leaders: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
    for e in events {
        if let NodeEvent::Leader { term } = e.event {
            leaders.entry(term).or_default().insert(&e.node);
        }
    }
    let duplicate_leaders: Vec<DuplicateLeaders> = leaders
        .into_iter()
        .filter(|(_, n)| n.len() > 1)
        .map(|(term, n)| DuplicateLeaders {
            term,
            nodes: n.into_iter().map(String::from).collect(),
        })
        .collect();
    let double_votes = double_votes(events);
    let lost_votes = lost_votes(events);
    let broken_promises = broken_promises(events);
    let split_executions = split_executions(events);
    let reversed_confirmations = reversed_confirmations(events);

    // index → the first node seen with an entry there, and that entry.
    let mut log: BTreeMap<u64, (&str, &DumpEntry)> = BTreeMap::new();
    let mut divergence: Option<Divergence> = None;
    for d in dumps {
        for e in &d.entries {
            if e.index <= d.snapshot_index {
                warnings.push(format!(
                    "{}: entry {} at or before its snapshot index {}",
                    d.node, e.index, d.snapshot_index
                ));
            }
            match log.get(&e.index) {
                None => {
                    log.insert(e.index, (&d.node, e));
                }
                Some((node, first)) if (first.term, &first.command) != (e.term, &e.command) => {
                    if divergence.as_ref().is_none_or(|dv| e.index < dv.index) {
                        divergence = Some(Divergence {
                            index: e.index,
                            node_a: node.to_string(),
                            entry_a: (*first).clone(),
                            node_b: d.node.clone(),
                            entry_b: e.clone(),
                        });
                    }
                }
                Some(_) => {}
            }
        }
    }

    let longest = dumps
        .iter()
        .map(|d| {
            (
                d.node.clone(),
                d.entries.last().map_or(d.snapshot_index, |e| e.index),
            )
        })
        // Ties go to the first node named, so that the report is stable.
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
    let (chains, prefix_divergence) = prefix::Chains::compare(dumps);
    // Below this index no dump shows entries: an update may be committed there unseen.
    let hidden_below = dumps.iter().map(|d| d.snapshot_index).min().unwrap_or(0);
    // The log's updates by what they stand for (f, value), each with its key and index.
    // An acknowledgement claims one entry, so two equal acknowledged transfers need two
    // (register and set values are unique anyway): first the entry at the position it
    // reported, if that one matches, then any left over.
    type Entries = Vec<(u64, Option<String>)>;
    let mut unclaimed: BTreeMap<(String, String), Entries> = BTreeMap::new();
    for (index, (_, e)) in &log {
        if let Some((f, k, v)) = command_key(&e.command) {
            unclaimed
                .entry((f, v.to_string()))
                .or_default()
                .push((*index, k));
        }
    }
    let acked_updates = || {
        history.client_events().filter(|e| {
            e.kind == EventType::Ok && matches!(e.f.as_str(), "write" | "cas" | "add" | "transfer")
        })
    };
    let mut claim = |ev: &crate::history::Event, at: Option<u64>| -> bool {
        let Some(entries) = unclaimed.get_mut(&(ev.f.clone(), ev.value.to_string())) else {
            return false;
        };
        let fits = |(i, k): &(u64, Option<String>)| {
            at.is_none_or(|p| p == *i) && (ev.key.is_none() || k.as_deref() == ev.key.as_deref())
        };
        match entries.iter().position(fits) {
            Some(pos) => {
                entries.swap_remove(pos);
                true
            }
            None => false,
        }
    };
    let mut claimed_at_position = BTreeSet::new();
    for ev in acked_updates() {
        if let Some(c) = ev.committed
            && claim(ev, Some(c.index))
        {
            claimed_at_position.insert(ev.index);
        }
    }

    let announced = events
        .iter()
        .filter_map(|e| match e.event {
            NodeEvent::Commit { index, .. } => Some(index),
            _ => None,
        })
        .max();
    let dumps_end = longest.as_ref().map_or(0, |(_, i)| *i);
    let behind = announced.is_some_and(|a| a > dumps_end);
    if let (true, Some(a)) = (behind, announced) {
        warnings.push(format!(
            "the dumps end at index {dumps_end} but index {a} was announced committed: \
             acknowledged updates not in the dumps cannot be called missing"
        ));
    }
    let absent: Vec<&str> = missing_dumps.iter().map(|m| m.node.as_str()).collect();
    let (mut found, mut by_state, mut compacted, mut unverifiable, mut beyond) = (0, 0, 0, 0, 0);
    let mut missing_writes = Vec::new();
    let mut unlocated_writes = Vec::new();
    for ev in acked_updates() {
        if claimed_at_position.contains(&ev.index) || claim(ev, None) {
            found += 1;
            continue;
        }
        if dumps
            .iter()
            .any(|d| state_holds(&d.state, &ev.f, ev.key.as_deref(), &ev.value))
        {
            by_state += 1;
            continue;
        }
        let at = ev.committed.map(|c| locate_at(dumps, &log, &chains, c));
        let why = match at {
            Some(Located::Verified) => {
                compacted += 1;
                continue;
            }
            Some(Located::Elsewhere(why)) => Err(why),
            Some(Located::Unsure(why)) => Ok(why),
            None if hidden_below > 0 => {
                unverifiable += 1;
                Ok(format!(
                    "every dump starts after a snapshot (the lowest at index {hidden_below}, \
                     nodes {}) and the acknowledgement reported no log position",
                    nodes_at_or_above(dumps, hidden_below)
                ))
            }
            None if behind => {
                beyond += 1;
                Ok(format!(
                    "the dumps end at index {dumps_end}, before index {} that was announced \
                     committed",
                    announced.unwrap_or_default()
                ))
            }
            None if !absent.is_empty() => Ok(format!(
                "not in the dumps taken, and there is no dump from {}",
                absent.join(", ")
            )),
            None => Err(String::new()),
        };
        match why {
            Ok(why) => unlocated_writes.push(UnlocatedWrite {
                history_index: ev.index,
                f: ev.f.clone(),
                key: ev.key.clone(),
                value: ev.value.clone(),
                why,
            }),
            Err(why) => {
                if !why.is_empty() {
                    warnings.push(format!("history index {}: {why}", ev.index));
                }
                missing_writes.push(MissingWrite {
                    history_index: ev.index,
                    f: ev.f.clone(),
                    key: ev.key.clone(),
                    value: ev.value.clone(),
                })
            }
        }
    }

    let bad = !duplicate_leaders.is_empty()
        || !double_votes.is_empty()
        || !lost_votes.is_empty()
        || !broken_promises.is_empty()
        || !split_executions.is_empty()
        || !reversed_confirmations.is_empty()
        || divergence.is_some()
        || prefix_divergence.is_some()
        || !missing_writes.is_empty();
    let verdict = if bad {
        Verdict::Invalid
    } else if dumps.is_empty() {
        warnings.push("no node dumps: nothing to compare".into());
        Verdict::Unknown
    } else if members.nodes.is_empty() {
        warnings.push("the run's members are not known: a missing dump would go unseen".into());
        Verdict::Unknown
    } else if !missing_dumps.is_empty()
        || !unexpected_dumps.is_empty()
        || !unlocated_writes.is_empty()
    {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    AgreementReport {
        verdict,
        nodes: dumps.iter().map(|d| d.node.clone()).collect(),
        members: members.nodes.clone(),
        missing_dumps,
        unexpected_dumps,
        longest,
        duplicate_leaders,
        double_votes,
        lost_votes,
        broken_promises,
        split_executions,
        reversed_confirmations,
        divergence,
        prefix_divergence,
        missing_writes,
        unlocated_writes,
        writes_found: found,
        writes_confirmed_by_state: by_state,
        writes_in_compacted_prefix: compacted,
        writes_unverifiable: unverifiable,
        writes_beyond_dumps: beyond,
        announced_commit: announced,
        warnings,
        byzantine: Vec::new(),
        chain: chain_series(events),
    }
}

/// [`check`] over the honest members alone: the Byzantine ones' dumps, events and
/// missing dumps are left out, and named in the report.
fn check_honest(
    dumps: &[Dump],
    events: &[EventLine],
    history: &History,
    members: &Membership,
) -> AgreementReport {
    let honest = |n: &String| !members.byzantine.contains(n);
    let dumps: Vec<Dump> = dumps.iter().filter(|d| honest(&d.node)).cloned().collect();
    let events: Vec<EventLine> = events.iter().filter(|e| honest(&e.node)).cloned().collect();
    let judged = Membership {
        nodes: members
            .nodes
            .iter()
            .filter(|n| honest(n))
            .cloned()
            .collect(),
        dump_errors: members
            .dump_errors
            .iter()
            .filter(|(n, _)| honest(n))
            .map(|(n, e)| (n.clone(), e.clone()))
            .collect(),
        byzantine: BTreeSet::new(),
    };
    let mut r = check(&dumps, &events, history, &judged);
    r.byzantine = members.byzantine.iter().cloned().collect();
    r
}

/// Members without a dump, and dumps from non-members or repeated.
fn membership_gaps(dumps: &[Dump], members: &Membership) -> (Vec<MissingDump>, Vec<String>) {
    let mut seen = BTreeSet::new();
    let mut unexpected = Vec::new();
    for d in dumps {
        if !members.nodes.contains(&d.node) {
            unexpected.push(format!("{} is not a member of the run", d.node));
        } else if !seen.insert(d.node.as_str()) {
            unexpected.push(format!("{} dumped twice", d.node));
        }
    }
    let missing = members
        .nodes
        .iter()
        .filter(|n| !seen.contains(n.as_str()))
        .map(|n| MissingDump {
            node: n.clone(),
            reason: members
                .dump_errors
                .get(n)
                .cloned()
                .unwrap_or_else(|| "its dump was not taken or could not be read".into()),
        })
        .collect();
    (missing, unexpected)
}

/// The nodes whose snapshots reach `index`, for a reason a person reads.
fn nodes_at_or_above(dumps: &[Dump], index: u64) -> String {
    let n: Vec<&str> = dumps
        .iter()
        .filter(|d| d.snapshot_index >= index)
        .map(|d| d.node.as_str())
        .collect();
    n.join(", ")
}

/// What the dumps say about an acknowledged update at its reported position.
enum Located {
    /// In a compacted prefix, by the rule of the module docs.
    Verified,
    /// Another entry was committed at that position: the update is not there.
    Elsewhere(String),
    /// Neither: why.
    Unsure(String),
}

/// Applies the compacted-prefix rule to an update not found among the entries.
fn locate_at(
    dumps: &[Dump],
    log: &BTreeMap<u64, (&str, &DumpEntry)>,
    chains: &prefix::Chains,
    at: crate::history::Committed,
) -> Located {
    let p = at.index;
    if let Some((node, e)) = log.get(&p) {
        // The update itself would have been found among the entries.
        return Located::Elsewhere(format!(
            "acknowledged as committed at index {p} (term {}), where {node} committed term {} \
             {}",
            at.term, e.term, e.command
        ));
    }
    let covering: Vec<usize> = (0..dumps.len())
        .filter(|&i| dumps[i].snapshot_index >= p)
        .collect();
    if covering.is_empty() {
        return Located::Unsure(format!(
            "acknowledged as committed at index {p}, which no dump shows (no snapshot reaches it, \
             no entry is there)"
        ));
    }
    for &i in &covering {
        let d = &dumps[i];
        match prefix::compacted_term(d, p) {
            Some(t) if t == at.term => {}
            Some(t) => {
                return Located::Elsewhere(format!(
                    "acknowledged as committed at index {p} in term {}, but {}'s snapshot \
                     records term {t} there",
                    at.term, d.node
                ));
            }
            None => {
                return Located::Unsure(format!(
                    "acknowledged as committed at index {p}, inside {}'s snapshot (index {}), \
                     which reports no terms for its compacted positions",
                    d.node, d.snapshot_index
                ));
            }
        }
    }
    for (n, &a) in covering.iter().enumerate() {
        for &b in &covering[n + 1..] {
            if !chains.agree_through(a, b, p) {
                return Located::Unsure(format!(
                    "acknowledged as committed at index {p}, inside the snapshots of {} and {}, \
                     which cannot be shown to agree through it (no equal hash chains at a common \
                     index at or after {p})",
                    dumps[a].node, dumps[b].node
                ));
            }
        }
    }
    Located::Verified
}
