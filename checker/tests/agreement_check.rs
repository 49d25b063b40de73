//! The agreement checker on hand-made dumps, event streams and histories.

use serde_json::{Value, json};
use sunder_checker::agreement::{self, NodeDump, NodeEvent, parse_events};
use sunder_checker::{Event, EventType, History, Process, Verdict};

fn entry(index: u64, term: u64, command: Value) -> Value {
    json!({"index": index, "term": term, "command": command})
}

fn w(key: &str, value: i64) -> Value {
    json!({"op": "write", "key": key, "value": value})
}

fn dump(node: &str, snapshot_index: u64, entries: Vec<Value>, state: Value) -> NodeDump {
    let v =
        json!({"node": node, "snapshot_index": snapshot_index, "entries": entries, "state": state});
    NodeDump::parse(&v, node).unwrap()
}

fn leader(node: &str, term: u64) -> NodeEvent {
    NodeEvent {
        node: node.into(),
        event: "leader".into(),
        term: Some(term),
        index: None,
        candidate: None,
    }
}

fn vote(node: &str, term: u64, candidate: &str) -> NodeEvent {
    NodeEvent {
        node: node.into(),
        event: "vote".into(),
        term: Some(term),
        index: None,
        candidate: Some(candidate.into()),
    }
}

fn commit(node: &str, index: u64) -> NodeEvent {
    NodeEvent {
        node: node.into(),
        event: "commit".into(),
        term: Some(1),
        index: Some(index),
        candidate: None,
    }
}

/// A history of `ok` updates: (f, key, value).
fn acked(ops: &[(&str, &str, Value)]) -> History {
    let mut events = Vec::new();
    for (i, (f, key, value)) in ops.iter().enumerate() {
        for kind in [EventType::Invoke, EventType::Ok] {
            events.push(Event {
                index: events.len() as u64,
                time: events.len() as u64,
                kind,
                process: Process::Client(i as u64),
                f: f.to_string(),
                key: Some(key.to_string()),
                value: value.clone(),
                error: None,
                node: None,
            });
        }
    }
    History::new(events)
}

fn three_agreeing() -> Vec<NodeDump> {
    let log = vec![
        entry(1, 1, Value::Null),
        entry(2, 1, w("k", 1)),
        entry(3, 2, json!({"op": "cas", "key": "k", "from": 1, "to": 2})),
    ];
    vec![
        dump("n1", 0, log.clone(), json!({"k": 2})),
        dump("n2", 0, log[..2].to_vec(), json!({"k": 1})),
        dump("n3", 0, log, json!({"k": 2})),
    ]
}

#[test]
fn agreeing_nodes_with_their_writes_are_valid() {
    let history = acked(&[("write", "k", json!(1)), ("cas", "k", json!([1, 2]))]);
    let r = agreement::check(
        &three_agreeing(),
        &[leader("n1", 1), leader("n3", 2), leader("n3", 2)],
        &history,
    );
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.summary());
    assert_eq!(r.writes_found, 2);
    assert_eq!(r.longest, Some(("n1".into(), 3)));
}

#[test]
fn two_leaders_in_one_term_are_reported() {
    let r = agreement::check(
        &three_agreeing(),
        &[leader("n1", 1), leader("n2", 2), leader("n3", 2)],
        &History::default(),
    );
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.duplicate_leaders.len(), 1);
    assert_eq!(r.duplicate_leaders[0].term, 2);
    assert_eq!(r.duplicate_leaders[0].nodes, vec!["n2", "n3"]);
}

#[test]
fn one_vote_per_node_and_term_is_valid_even_when_repeated() {
    // A candidate's self-vote, a retransmitted request granted again, and new terms.
    let events = [
        vote("n1", 2, "n1"),
        vote("n2", 2, "n1"),
        vote("n2", 2, "n1"),
        vote("n2", 3, "n3"),
        vote("n3", 3, "n3"),
        leader("n1", 2),
    ];
    let r = agreement::check(&three_agreeing(), &events, &History::default());
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.summary());
    assert!(r.double_votes.is_empty());
}

#[test]
fn a_node_voting_for_two_candidates_in_one_term_is_reported() {
    // n2 votes for n1, is restarted, and in the same term votes for n3: no second leader
    // won, but the vote was given twice.
    let events = [
        vote("n1", 4, "n1"),
        vote("n2", 4, "n1"),
        vote("n3", 4, "n3"),
        vote("n2", 4, "n3"),
        leader("n1", 4),
    ];
    let r = agreement::check(&three_agreeing(), &events, &History::default());
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.duplicate_leaders, vec![]);
    assert_eq!(r.double_votes.len(), 1);
    let d = &r.double_votes[0];
    assert_eq!((d.node.as_str(), d.term), ("n2", 4));
    assert_eq!(d.candidates, vec!["n1", "n3"]);
    assert!(
        r.summary()
            .contains("n2 voted twice in term 4: for n1 and n3")
    );
}

#[test]
fn vote_events_parse_their_candidate_from_for() {
    let text = "{\"node\":\"n2\",\"event\":\"vote\",\"term\":4,\"for\":\"n1\",\"time_ms\":1}\n";
    let (events, warnings) = parse_events(text, "n2.events.jsonl").unwrap();
    assert!(warnings.is_empty());
    assert_eq!(events, vec![vote("n2", 4, "n1")]);
}

#[test]
fn first_divergence_is_reported_with_both_entries() {
    let mut dumps = three_agreeing();
    dumps[2].entries[1].command = w("k", 9);
    dumps[2].entries[2].term = 7;
    let r = agreement::check(&dumps, &[], &History::default());
    assert_eq!(r.verdict, Verdict::Invalid);
    let d = r.divergence.unwrap();
    assert_eq!(
        (d.index, d.node_a.as_str(), d.node_b.as_str()),
        (2, "n1", "n3")
    );
    assert_eq!(d.entry_a.command, w("k", 1));
    assert_eq!(d.entry_b.command, w("k", 9));
}

#[test]
fn lost_acknowledged_write_is_missing() {
    let history = acked(&[("write", "k", json!(1)), ("write", "k", json!(5))]);
    let r = agreement::check(&three_agreeing(), &[], &history);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.missing_writes.len(), 1);
    assert_eq!(r.missing_writes[0].value, json!(5));
    assert_eq!(r.missing_writes[0].history_index, 3);
    assert!(r.summary().contains("is not committed"));
}

#[test]
fn compacted_writes_are_confirmed_by_state_or_counted_unverifiable() {
    // Every node compacted up to 10; the write of 3 is only visible through the state,
    // the write of 4 was overwritten inside the compacted prefix.
    let dumps = vec![
        dump(
            "n1",
            10,
            vec![entry(11, 3, w("j", 8))],
            json!({"k": 3, "j": 8}),
        ),
        dump("n2", 10, vec![], json!({"k": 3})),
    ];
    let history = acked(&[
        ("write", "k", json!(3)),
        ("write", "k", json!(4)),
        ("write", "j", json!(8)),
    ]);
    let r = agreement::check(&dumps, &[], &history);
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.summary());
    assert_eq!(
        (
            r.writes_found,
            r.writes_confirmed_by_state,
            r.writes_unverifiable
        ),
        (1, 1, 1)
    );
    // With one node holding the whole log, the same gap is a real loss.
    let mut dumps = dumps;
    dumps.push(dump(
        "n3",
        0,
        vec![entry(11, 3, w("j", 8))],
        json!({"j": 8}),
    ));
    let r = agreement::check(&dumps, &[], &history);
    assert_eq!(r.verdict, Verdict::Invalid);
}

#[test]
fn add_commands_and_keyless_histories_match() {
    let dumps = vec![dump(
        "n1",
        0,
        vec![entry(1, 1, json!({"op": "add", "key": "s", "value": 4}))],
        json!({"s": [4]}),
    )];
    let history = acked(&[("add", "s", json!(4))]);
    assert_eq!(
        agreement::check(&dumps, &[], &history).verdict,
        Verdict::Valid
    );
    let mut keyless = history.clone();
    for e in &mut keyless.events {
        e.key = None;
    }
    let r = agreement::check(&dumps, &[], &keyless);
    assert_eq!(r.writes_found, 1);
}

#[test]
fn no_dumps_is_unknown() {
    assert_eq!(
        agreement::check(&[], &[], &History::default()).verdict,
        Verdict::Unknown
    );
}

#[test]
fn event_streams_parse_with_a_torn_tail_and_reject_bad_lines() {
    let text = "{\"node\":\"n1\",\"time_ms\":1,\"event\":\"start\",\"records\":0}\n{\"node\":\"n1\",\"event\":\"leader\",\"term\":3}\n{\"node\":\"n1\",\"ev";
    let (events, warnings) = parse_events(text, "events/n1.jsonl").unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], leader("n1", 3));
    assert_eq!(warnings.len(), 1);
    let err = parse_events(
        "{\"node\":\"n1\",\"event\":\"leader\"}\nnot json\n",
        "events/n1.jsonl",
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("events/n1.jsonl:2:"), "{err}");
    let err = NodeDump::parse(&json!({"node": "n1"}), "dump n1").unwrap_err();
    assert!(err.to_string().contains("dump n1"), "{err}");
}

#[test]
fn dumps_behind_announced_commits_cannot_prove_a_write_lost() {
    // Every node was restarted just before the dumps and has not relearned its commit
    // index: the write of 5 may be at index 4, which n1 announced committed.
    let history = acked(&[("write", "k", json!(1)), ("write", "k", json!(5))]);
    let events = [commit("n1", 2), commit("n1", 4)];
    let r = agreement::check(&three_agreeing(), &events, &history);
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary());
    assert_eq!((r.writes_beyond_dumps, r.announced_commit), (1, Some(4)));
    assert!(r.missing_writes.is_empty());
    // Dumps that reach the announced index make the same absence a loss.
    let events = [commit("n1", 3)];
    let r = agreement::check(&three_agreeing(), &events, &history);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.missing_writes.len(), 1);
}
