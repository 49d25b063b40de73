//! A node's event stream: what a core or its runtime announces, one JSON object per line
//! of `nodes/<id>.events.jsonl`, read back by the agreement checker.
//!
//! ```text
//! {"node":"n1","time_ms":1700000000123,"event":"leader","term":3}
//! {"node":"n2","time_ms":1700000000124,"event":"vote","term":4,"for":"n1"}
//! ```
//!
//! The same enum is written by the cores and the runtime and read by the checker, so a
//! renamed field fails to compile rather than showing up as "no term" in a report. An event
//! name this version does not know (a newer node, another protocol) reads as
//! [`NodeEvent::Other`]: a reader skips it, as it skipped unknown names before this type.

use serde::{Deserialize, Serialize};

/// One event, tagged by its `event` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum NodeEvent {
    /// The runtime is up. Informational: every field may be absent in an older stream.
    Start {
        /// Durable records recovered from disk.
        #[serde(default)]
        records: u64,
        #[serde(default)]
        members: Vec<String>,
        /// The client address it listens on.
        #[serde(default)]
        client: String,
        #[serde(default)]
        peer_listen: Option<String>,
    },
    /// The election state the node read back from disk at start, written right after
    /// `start` by nodes whose protocol votes (Raft: its current term and the vote it cast in
    /// it). A vote announced before as durable must be in it after a restart: the agreement
    /// checker holds the two against each other.
    Recovered {
        term: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vote: Option<String>,
    },
    /// The node leads `term` (Raft term, Paxos ballot round): at most one node per term.
    Leader { term: u64 },
    /// The node granted its vote in `term`, written only once the vote is durable.
    Vote {
        term: u64,
        #[serde(rename = "for")]
        candidate: String,
    },
    /// The node's commit index advanced to `index` (committed in `term`).
    Commit { index: u64, term: u64 },
    /// A Paxos acceptor promised ballot round `term` (its promise rose: a Prepare, or an
    /// Accept of a higher ballot). Promises only rise: the agreement checker holds every
    /// later `promise` and `accept` of the node against the highest so far.
    Promise { term: u64 },
    /// A Paxos acceptor accepted values under ballot round `term`, written when the round
    /// differs from the one it last announced (not once per slot).
    Accept { term: u64 },
    /// A Paxos slot was chosen and applied.
    Chosen { slot: u64 },
    /// A PBFT replica executed the batch at sequence number `seq`, ordered in `view`;
    /// `digest` is the batch's (hex SHA-256): two honest replicas that execute different
    /// digests at one sequence number broke agreement, even if one later takes the
    /// other's state.
    Execute {
        seq: u64,
        view: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
    },
    /// A chain node's best chain made the block `hash` (hex) at `height` confirmed (at
    /// least `confirmations` deep), announced for every height as it becomes confirmed and
    /// again for every height a reorganisation replaced. Honest nodes never confirm two
    /// blocks at one height, and a node never confirms another block at a height it
    /// confirmed before: the agreement checker reports either as a reversed confirmation.
    Confirm { height: u64, hash: String },
    /// A chain node's best chain changed tip: the new tip is at `height`; `dropped` blocks
    /// of the old best chain left it (0 when the new tip extends the old one, more on a
    /// reorganisation, which forked at `height − added`). For the report's plot of
    /// height and forks over time; nothing is checked on it.
    Tip {
        height: u64,
        #[serde(default)]
        dropped: u64,
        #[serde(default)]
        added: u64,
    },
    /// A PBFT checkpoint at `seq` became stable (2f+1 matching); the log below is gone.
    Stable { seq: u64 },
    /// A PBFT replica took a peer's state at checkpoint `seq` instead of replaying the log.
    StateTransfer { seq: u64 },
    /// A PBFT replica asked to move to `view` (its primary looked faulty or slow).
    ViewChange { view: u64 },
    /// A PBFT replica entered `view` on a verified new-view message.
    NewView { view: u64 },
    /// The write-ahead log ended in a torn record, dropped at start.
    WalTornTail {
        offset: u64,
        dropped: u64,
        reason: String,
    },
    /// The runtime stopped on an error it could not survive.
    Fatal { error: String },
    /// The runtime stopped on a signal.
    Stop,
    /// An event this version does not know. Never written by sunder's own nodes.
    #[serde(other)]
    Other,
}

/// One line of an event stream: the event, stamped with the node that wrote it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLine {
    pub node: String,
    /// Milliseconds: the wall clock for a real node, simulated time under `sunder sim`.
    /// Absent in hand-written streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<u64>,
    #[serde(flatten)]
    pub event: NodeEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(event: NodeEvent) -> EventLine {
        EventLine {
            node: "n1".into(),
            time_ms: Some(5),
            event,
        }
    }

    #[test]
    fn every_event_round_trips_through_its_json_line() {
        let all = [
            NodeEvent::Start {
                records: 3,
                members: vec!["n1".into(), "n2".into()],
                client: "127.0.0.1:1".into(),
                peer_listen: Some("127.0.0.1:2".into()),
            },
            NodeEvent::Recovered {
                term: 2,
                vote: Some("n2".into()),
            },
            NodeEvent::Recovered {
                term: 0,
                vote: None,
            },
            NodeEvent::Leader { term: 2 },
            NodeEvent::Vote {
                term: 2,
                candidate: "n2".into(),
            },
            NodeEvent::Commit { index: 9, term: 2 },
            NodeEvent::Promise { term: 7 },
            NodeEvent::Accept { term: 7 },
            NodeEvent::Chosen { slot: 4 },
            NodeEvent::Execute {
                seq: 3,
                view: 1,
                digest: Some("ab".into()),
            },
            NodeEvent::Stable { seq: 64 },
            NodeEvent::Confirm {
                height: 7,
                hash: "0a".into(),
            },
            NodeEvent::StateTransfer { seq: 64 },
            NodeEvent::ViewChange { view: 2 },
            NodeEvent::NewView { view: 2 },
            NodeEvent::WalTornTail {
                offset: 10,
                dropped: 3,
                reason: "crc".into(),
            },
            NodeEvent::Fatal {
                error: "disk".into(),
            },
            NodeEvent::Stop,
        ];
        for e in all {
            let text = serde_json::to_string(&line(e.clone())).unwrap();
            let back: EventLine = serde_json::from_str(&text).unwrap();
            assert_eq!(back, line(e), "{text}");
        }
    }

    #[test]
    fn the_wire_names_are_the_ones_readers_and_older_streams_use() {
        let v = serde_json::to_value(line(NodeEvent::Vote {
            term: 4,
            candidate: "n3".into(),
        }))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"node":"n1","time_ms":5,"event":"vote","term":4,"for":"n3"})
        );
        let v = serde_json::to_value(line(NodeEvent::WalTornTail {
            offset: 1,
            dropped: 2,
            reason: "r".into(),
        }))
        .unwrap();
        assert_eq!(v["event"], "wal-torn-tail");
        let v = serde_json::to_value(line(NodeEvent::Commit { index: 7, term: 1 })).unwrap();
        assert_eq!(
            (&v["event"], &v["index"], &v["term"]),
            (&"commit".into(), &7.into(), &1.into())
        );
    }

    #[test]
    fn unknown_events_and_fields_are_tolerated_known_ones_are_checked() {
        let e: EventLine =
            serde_json::from_str(r#"{"node":"n1","event":"membership-change","add":"n6"}"#)
                .unwrap();
        assert_eq!(e.event, NodeEvent::Other);
        assert_eq!(e.time_ms, None);
        let e: EventLine =
            serde_json::from_str(r#"{"node":"n1","event":"leader","term":3,"extra":1}"#).unwrap();
        assert_eq!(e.event, NodeEvent::Leader { term: 3 });
        let e: EventLine = serde_json::from_str(r#"{"node":"n1","event":"start"}"#).unwrap();
        assert!(matches!(e.event, NodeEvent::Start { records: 0, .. }));
        // A known event without the field its readers judge by is bad input, not a guess.
        assert!(serde_json::from_str::<EventLine>(r#"{"node":"n1","event":"leader"}"#).is_err());
        assert!(
            serde_json::from_str::<EventLine>(r#"{"node":"n1","event":"vote","term":1}"#).is_err()
        );
        assert!(serde_json::from_str::<EventLine>(r#"{"node":"n1","term":1}"#).is_err());
    }
}
