//! The agreement checker on hand-made dumps, event streams and histories.

use serde_json::{Value, json};
use sunder_checker::agreement::{
    self, AgreementReport, Dump, EventLine, Membership, NodeEvent, parse_dump, parse_events,
};
use sunder_checker::anomaly;
use sunder_checker::{Committed, Event, EventType, History, Process, Verdict};

/// The checker with exactly the dumping nodes as the run's members.
fn check(dumps: &[Dump], events: &[EventLine], history: &History) -> AgreementReport {
    let members = Membership::of(dumps.iter().map(|d| d.node.clone()));
    agreement::check(dumps, events, history, &members)
}

fn entry(index: u64, term: u64, command: Value) -> Value {
    json!({"index": index, "term": term, "command": command})
}

fn w(key: &str, value: i64) -> Value {
    json!({"op": "write", "key": key, "value": value})
}

fn dump(node: &str, snapshot_index: u64, entries: Vec<Value>, state: Value) -> Dump {
    let v =
        json!({"node": node, "snapshot_index": snapshot_index, "entries": entries, "state": state});
    parse_dump(&v, node).unwrap()
}

fn line(node: &str, event: NodeEvent) -> EventLine {
    EventLine {
        node: node.into(),
        time_ms: None,
        event,
    }
}

fn leader(node: &str, term: u64) -> EventLine {
    line(node, NodeEvent::Leader { term })
}

fn vote(node: &str, term: u64, candidate: &str) -> EventLine {
    line(
        node,
        NodeEvent::Vote {
            term,
            candidate: candidate.into(),
        },
    )
}

fn commit(node: &str, index: u64) -> EventLine {
    line(node, NodeEvent::Commit { index, term: 1 })
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
                committed: None,
            });
        }
    }
    History::new(events)
}

fn three_agreeing() -> Vec<Dump> {
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
    let r = check(
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
    let r = check(
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
    let r = check(&three_agreeing(), &events, &History::default());
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
    let r = check(&three_agreeing(), &events, &History::default());
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

fn recovered(node: &str, term: u64, vote: Option<&str>) -> EventLine {
    line(
        node,
        NodeEvent::Recovered {
            term,
            vote: vote.map(String::from),
        },
    )
}

/// A nemesis event at `time` ns: `f` of the nodes listed.
fn nemesis(index: u64, time: u64, f: &str, nodes: &[&str]) -> Event {
    Event {
        index,
        time,
        kind: EventType::Info,
        process: Process::Nemesis,
        f: f.into(),
        key: None,
        value: json!(nodes),
        error: None,
        node: None,
        committed: None,
    }
}

#[test]
fn a_vote_read_back_at_every_restart_is_kept() {
    // Restarts that read back the last vote, a later term with no vote (a node that only
    // saw a higher term), or nothing before any vote: all as a durable vote should be.
    let events = [
        recovered("n1", 0, None),
        vote("n1", 2, "n3"),
        recovered("n1", 2, Some("n3")),
        recovered("n1", 5, None),
        vote("n2", 3, "n2"),
        recovered("n2", 3, Some("n2")),
        vote("n2", 4, "n3"),
        recovered("n2", 4, Some("n3")),
    ];
    let r = check(&three_agreeing(), &events, &History::default());
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.summary());
    assert!(r.lost_votes.is_empty());
}

#[test]
fn a_vote_missing_after_a_restart_is_reported_and_dated_by_that_restart() {
    // n2 votes for n1 in term 4 and restarts twice: the first restart (its second start)
    // reads back the vote, the second reads back no vote in term 4. n3's restart reads
    // back an earlier term than the one it voted in.
    let events = [
        recovered("n2", 0, None),
        vote("n2", 4, "n1"),
        recovered("n2", 4, Some("n1")),
        recovered("n2", 4, None),
        recovered("n3", 0, None),
        vote("n3", 6, "n3"),
        recovered("n3", 5, Some("n1")),
    ];
    let r = check(&three_agreeing(), &events, &History::default());
    assert_eq!(r.verdict, Verdict::Invalid, "{}", r.summary());
    assert_eq!(r.double_votes, vec![]);
    let lost: Vec<_> = r
        .lost_votes
        .iter()
        .map(|v| (v.node.as_str(), v.term, v.candidate.as_str(), v.restart))
        .collect();
    assert_eq!(lost, vec![("n2", 4, "n1", 2), ("n3", 6, "n3", 1)]);
    assert!(r.summary().contains(
        "n2 voted for n1 in term 4 (durable), restarted and read back no vote in term 4"
    ));
    assert!(r.summary().contains(
        "n3 voted for n3 in term 6 (durable), restarted and read back term 5 and a vote for n1"
    ));

    // Dated by the nemesis's restart of the node: n2's second, at 9 s, is later than
    // n3's first, at 7 s.
    let history = History::new(vec![
        nemesis(0, 1_000_000_000, "restart", &["n2"]),
        nemesis(1, 7_000_000_000, "restart", &["n1", "n3"]),
        nemesis(2, 9_000_000_000, "restart", &["n2"]),
    ]);
    let a = anomaly::agreement(&r, &history, None).expect("an anomaly");
    assert_eq!((a.time_s, a.history_index), (Some(7.0), Some(1)), "{a:?}");
    assert!(a.what.starts_with("n3 voted for n3 in term 6"), "{a:?}");
    // With no restart in the history to date it by, the lost vote is named, undated.
    let a = anomaly::agreement(&r, &History::default(), None).expect("an anomaly");
    assert_eq!(a.time_s, None);
}

fn at(ms: u64, node: &str, event: NodeEvent) -> EventLine {
    EventLine {
        node: node.into(),
        time_ms: Some(ms),
        event,
    }
}

#[test]
fn acceptors_that_keep_their_promises_are_valid() {
    // Promises rise; accepts are at or above the promise, across a restart too.
    let events = [
        at(10, "n1", NodeEvent::Promise { term: 1 }),
        at(11, "n1", NodeEvent::Accept { term: 1 }),
        at(20, "n1", NodeEvent::Accept { term: 3 }),
        at(30, "n1", NodeEvent::Promise { term: 7 }),
        at(31, "n1", NodeEvent::Accept { term: 7 }),
        at(12, "n2", NodeEvent::Accept { term: 2 }),
    ];
    let r = check(&three_agreeing(), &events, &History::default());
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.summary());
    assert!(r.broken_promises.is_empty());
}

#[test]
fn an_accept_below_a_promise_is_reported_and_dated_by_the_node_clock_when_vouched_for() {
    let events = [
        at(1_000, "n1", NodeEvent::Promise { term: 6 }),
        at(1_500, "n2", NodeEvent::Promise { term: 6 }),
        at(4_250, "n1", NodeEvent::Accept { term: 4 }),
        at(5_000, "n2", NodeEvent::Promise { term: 5 }),
    ];
    let r = check(&three_agreeing(), &events, &History::default());
    assert_eq!(r.verdict, Verdict::Invalid, "{}", r.summary());
    let got: Vec<_> = r
        .broken_promises
        .iter()
        .map(|b| (b.node.as_str(), b.what.as_str(), b.term, b.promised))
        .collect();
    assert_eq!(got, vec![("n1", "accept", 4, 6), ("n2", "promise", 5, 6)]);
    assert!(
        r.summary()
            .contains("n1 accepted a proposal of round 4 after promising round 6")
    );
    // The nodes' clock read 1000 ms at the history's start: n1's accept was 3.25 s in.
    let a = anomaly::agreement(&r, &History::default(), Some(1_000)).expect("an anomaly");
    assert_eq!(a.time_s, Some(3.25), "{a:?}");
    // Without an origin the node clock is not trusted: named, undated.
    let a = anomaly::agreement(&r, &History::default(), None).expect("an anomaly");
    assert_eq!(a.time_s, None, "{a:?}");
}

#[test]
fn vote_events_parse_their_candidate_from_for() {
    let text = "{\"node\":\"n2\",\"event\":\"vote\",\"term\":4,\"for\":\"n1\",\"time_ms\":1}\n";
    let (events, warnings) = parse_events(text, "n2.events.jsonl").unwrap();
    assert!(warnings.is_empty());
    let mut want = vote("n2", 4, "n1");
    want.time_ms = Some(1);
    assert_eq!(events, vec![want]);
}

#[test]
fn first_divergence_is_reported_with_both_entries() {
    let mut dumps = three_agreeing();
    dumps[2].entries[1].command = w("k", 9);
    dumps[2].entries[2].term = 7;
    let r = check(&dumps, &[], &History::default());
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
    let r = check(&three_agreeing(), &[], &history);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.missing_writes.len(), 1);
    assert_eq!(r.missing_writes[0].value, json!(5));
    assert_eq!(r.missing_writes[0].history_index, 3);
    assert!(r.summary().contains("is not committed"));
    // Dated by its acknowledgement (event 3, at 3 ns in this history).
    let a = anomaly::agreement(&r, &history, None).expect("an anomaly");
    assert_eq!((a.history_index, a.time_s), (Some(3), Some(3e-9)), "{a:?}");
    assert!(a.what.contains("write of k = 5"), "{}", a.what);
}

#[test]
fn a_divergence_dates_from_the_first_ack_committed_at_or_beyond_it() {
    let mut dumps = three_agreeing();
    dumps[2].entries[1].command = w("k", 9);
    let mut history = acked(&[("write", "k", json!(1)), ("cas", "k", json!([1, 2]))]);
    history.events[1].committed = Some(Committed { index: 1, term: 1 });
    history.events[3].committed = Some(Committed { index: 2, term: 1 });
    let r = check(&dumps, &[], &history);
    assert_eq!(r.verdict, Verdict::Invalid);
    let a = anomaly::agreement(&r, &history, None).expect("an anomaly");
    assert_eq!(a.history_index, Some(3), "{a:?}");
    assert!(a.what.contains("at index 2"), "{}", a.what);
    // Without positions in the history it is still named, with no time.
    let bare = acked(&[("write", "k", json!(1)), ("cas", "k", json!([1, 2]))]);
    let a = anomaly::agreement(&check(&dumps, &[], &bare), &bare, None).expect("an anomaly");
    assert_eq!(a.time_s, None, "{a:?}");
}

#[test]
fn compacted_writes_are_confirmed_by_state_or_unknown_naming_the_op() {
    // Every node compacted up to 10; the write of 3 is only visible through the state,
    // the write of 4 was overwritten inside the compacted prefix, and its acknowledgement
    // reported no position: it cannot be located, so the verdict cannot be valid.
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
    let r = check(&dumps, &[], &history);
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary());
    assert_eq!(
        (
            r.writes_found,
            r.writes_confirmed_by_state,
            r.writes_unverifiable
        ),
        (1, 1, 1)
    );
    assert_eq!(r.unlocated_writes.len(), 1);
    let u = &r.unlocated_writes[0];
    assert_eq!((u.history_index, u.value.clone()), (3, json!(4)));
    assert!(u.why.contains("n1, n2"), "{}", u.why);
    assert!(
        r.summary()
            .contains("acknowledged write Some(\"k\") 4 (history index 3) cannot be located"),
        "{}",
        r.summary()
    );
    // With one node holding the whole log, the same gap is a real loss.
    let mut dumps = dumps;
    dumps.push(dump(
        "n3",
        0,
        vec![entry(11, 3, w("j", 8))],
        json!({"j": 8}),
    ));
    let r = check(&dumps, &[], &history);
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
    assert_eq!(check(&dumps, &[], &history).verdict, Verdict::Valid);
    let mut keyless = history.clone();
    for e in &mut keyless.events {
        e.key = None;
    }
    let r = check(&dumps, &[], &keyless);
    assert_eq!(r.writes_found, 1);
}

/// A transfer is named by its accounts and amount, which repeat: each acknowledgement
/// needs an entry of its own in the log.
#[test]
fn each_acknowledged_transfer_takes_its_own_log_entry() {
    let t = json!({"op": "transfer", "from": "a0", "to": "a1", "amount": 2});
    let two = |n: usize| {
        let entries = (1..=n as u64).map(|i| entry(i, 1, t.clone())).collect();
        vec![dump("n1", 0, entries, json!({"a0": 6, "a1": 14}))]
    };
    let mut history = acked(&[
        (
            "transfer",
            "",
            json!({"from": "a0", "to": "a1", "amount": 2}),
        ),
        (
            "transfer",
            "",
            json!({"from": "a0", "to": "a1", "amount": 2}),
        ),
    ]);
    for e in &mut history.events {
        e.key = None;
    }
    let r = check(&two(2), &[], &history);
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.summary());
    assert_eq!(r.writes_found, 2);
    let r = check(&two(1), &[], &history);
    assert_eq!(r.verdict, Verdict::Invalid, "{}", r.summary());
    assert_eq!((r.writes_found, r.missing_writes.len()), (1, 1));
    assert_eq!(r.missing_writes[0].f, "transfer");
}

/// Of two equal transfers, the first acknowledged was compacted into a snapshot and the
/// second is in the log: the log entry is the second's (the position it reported), so
/// neither is missing, whichever is looked at first.
#[test]
fn an_acknowledgement_claims_the_entry_at_the_position_it_reported_first() {
    let t = json!({"op": "transfer", "from": "a0", "to": "a1", "amount": 2});
    let v = json!({"from": "a0", "to": "a1", "amount": 2});
    let d = json!({"node": "n1", "snapshot_index": 1, "snapshot_terms": [[1, 1]],
                   "entries": [entry(2, 1, t)], "state": {"a0": 6, "a1": 14}});
    let dumps = vec![parse_dump(&d, "n1").unwrap()];
    let mut history = acked(&[("transfer", "", v.clone()), ("transfer", "", v)]);
    for e in &mut history.events {
        e.key = None;
        // Process 0's transfer was committed at index 1, process 1's at 2.
        if let (EventType::Ok, Process::Client(p)) = (e.kind, e.process) {
            e.committed = Some(Committed {
                index: p + 1,
                term: 1,
            });
        }
    }
    let r = check(&dumps, &[], &history);
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.summary());
    assert_eq!((r.writes_found, r.writes_in_compacted_prefix), (1, 1));
}

#[test]
fn no_dumps_is_unknown() {
    assert_eq!(
        check(&[], &[], &History::default()).verdict,
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
        "{\"node\":\"n1\",\"event\":\"leader\",\"term\":1}\nnot json\n",
        "events/n1.jsonl",
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("events/n1.jsonl:2:"), "{err}");
    let err = parse_dump(&json!({"node": "n1"}), "dump n1").unwrap_err();
    assert!(err.to_string().contains("dump n1"), "{err}");
}

#[test]
fn dumps_behind_announced_commits_cannot_prove_a_write_lost() {
    // Every node was restarted just before the dumps and has not relearned its commit
    // index: the write of 5 may be at index 4, which n1 announced committed.
    let history = acked(&[("write", "k", json!(1)), ("write", "k", json!(5))]);
    let events = [commit("n1", 2), commit("n1", 4)];
    let r = check(&three_agreeing(), &events, &history);
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary());
    assert_eq!((r.writes_beyond_dumps, r.announced_commit), (1, Some(4)));
    assert!(r.missing_writes.is_empty());
    // Dumps that reach the announced index make the same absence a loss.
    let events = [commit("n1", 3)];
    let r = check(&three_agreeing(), &events, &history);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.missing_writes.len(), 1);
}

/// Five members, dumps as given.
fn five() -> Membership {
    Membership::of(["n1", "n2", "n3", "n4", "n5"])
}

#[test]
fn one_dump_of_five_is_unknown_naming_the_missing_nodes() {
    let history = acked(&[("write", "k", json!(1)), ("cas", "k", json!([1, 2]))]);
    let dumps = three_agreeing()[..1].to_vec();
    let r = agreement::check(&dumps, &[], &history, &five());
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary());
    let missing: Vec<&str> = r.missing_dumps.iter().map(|m| m.node.as_str()).collect();
    assert_eq!(missing, ["n2", "n3", "n4", "n5"]);
    for n in ["n2", "n3", "n4", "n5"] {
        assert!(
            r.summary().contains(&format!("no dump from {n}")),
            "{}",
            r.summary()
        );
    }
    // A write absent from the one dump taken cannot be called lost either: unknown, named.
    let history = acked(&[("write", "k", json!(1)), ("write", "k", json!(7))]);
    let r = agreement::check(&dumps, &[], &history, &five());
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary());
    assert!(r.missing_writes.is_empty());
    assert_eq!(r.unlocated_writes.len(), 1);
    assert!(r.unlocated_writes[0].why.contains("n2, n3, n4, n5"));
}

#[test]
fn a_failed_dump_is_unknown_with_its_reason() {
    let dumps = three_agreeing()[..2].to_vec();
    let mut members = Membership::of(["n1", "n2", "n3"]);
    members
        .dump_errors
        .insert("n3".into(), "connection refused".into());
    let r = agreement::check(&dumps, &[], &History::default(), &members);
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary());
    assert!(
        r.summary().contains("no dump from n3: connection refused"),
        "{}",
        r.summary()
    );
    // A dump from a node that is not a member is not evidence either.
    let r = agreement::check(
        &three_agreeing(),
        &[],
        &History::default(),
        &Membership::of(["n1", "n2"]),
    );
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary());
    assert_eq!(r.unexpected_dumps.len(), 1);
    // No membership at all: nothing can say a dump is missing.
    let r = agreement::check(
        &three_agreeing(),
        &[],
        &History::default(),
        &Membership::default(),
    );
    assert_eq!(r.verdict, Verdict::Unknown);
    // The same dumps with the members they came from are valid.
    let r = agreement::check(
        &three_agreeing(),
        &[],
        &History::default(),
        &Membership::of(["n1", "n2", "n3"]),
    );
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.summary());
}

/// A dump compacted through `snapshot_index` with a chain value and term runs, and entries
/// after it with their chain values.
fn compacted(
    node: &str,
    snapshot_index: u64,
    digest: &str,
    terms: Vec<(u64, u64)>,
    entries: Vec<(u64, u64, Value, &str)>,
) -> Dump {
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|(i, t, c, d)| json!({"index": i, "term": t, "command": c, "digest": d}))
        .collect();
    let v = json!({"node": node, "snapshot_index": snapshot_index, "entries": entries,
        "state": {}, "snapshot_digest": digest, "snapshot_terms": terms});
    parse_dump(&v, node).unwrap()
}

/// `acked`, with the position each acknowledgement reported.
fn acked_at(ops: &[(&str, &str, Value, u64, u64)]) -> History {
    let plain: Vec<(&str, &str, Value)> = ops
        .iter()
        .map(|(f, k, v, ..)| (*f, *k, v.clone()))
        .collect();
    let mut h = acked(&plain);
    for (i, (.., index, term)) in ops.iter().enumerate() {
        h.events[2 * i + 1].committed = Some(Committed {
            index: *index,
            term: *term,
        });
    }
    h
}

#[test]
fn a_write_in_a_compacted_prefix_is_verified_by_its_position_and_agreeing_chains() {
    // The write of 4 (overwritten since) was committed at index 5 in term 2. n1 compacted
    // through 10, n2 through 12; both know the chain at 12 and agree there.
    let dumps = || {
        vec![
            compacted(
                "n1",
                10,
                "d10",
                vec![(1, 1), (4, 2), (9, 3)],
                vec![(11, 3, w("j", 8), "d11"), (12, 3, w("k", 5), "d12")],
            ),
            compacted("n2", 12, "d12", vec![(1, 1), (4, 2), (9, 3)], vec![]),
        ]
    };
    let history = acked_at(&[("write", "k", json!(4), 5, 2)]);
    let r = check(&dumps(), &[], &history);
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.summary());
    assert_eq!(r.writes_in_compacted_prefix, 1);

    // Acknowledged as term 3 at index 5, but the snapshots say term 2 committed there: lost.
    let history = acked_at(&[("write", "k", json!(4), 5, 3)]);
    let r = check(&dumps(), &[], &history);
    assert_eq!(r.verdict, Verdict::Invalid, "{}", r.summary());
    assert_eq!(r.missing_writes[0].history_index, 1);

    // Without the reported position it is only unverifiable: unknown.
    let r = check(&dumps(), &[], &acked(&[("write", "k", json!(4))]));
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary());

    // Chains that cannot be compared (n2 knows only index 12, n1 stops at 11): unknown.
    let mut short = dumps();
    short[0].entries.pop();
    let history = acked_at(&[("write", "k", json!(4), 5, 2)]);
    let r = check(&short, &[], &history);
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary());
    assert!(
        r.unlocated_writes[0].why.contains("n1 and n2"),
        "{}",
        r.summary()
    );

    // A snapshot without term runs cannot place the write: unknown.
    let mut no_terms = dumps();
    no_terms[1].snapshot_terms.clear();
    let r = check(&no_terms, &[], &history);
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.summary());
}

#[test]
fn disagreeing_chains_are_a_prefix_divergence() {
    let dumps = vec![
        compacted(
            "n1",
            10,
            "d10",
            vec![(1, 1)],
            vec![(11, 1, w("j", 8), "d11")],
        ),
        compacted("n2", 11, "other", vec![(1, 1)], vec![]),
    ];
    let r = check(&dumps, &[], &History::default());
    assert_eq!(r.verdict, Verdict::Invalid, "{}", r.summary());
    let d = r.prefix_divergence.as_ref().unwrap();
    assert_eq!(
        (d.index, d.node_a.as_str(), d.node_b.as_str()),
        (11, "n1", "n2")
    );
    assert!(
        r.summary().contains("committed prefixes differ"),
        "{}",
        r.summary()
    );
}

#[test]
fn malformed_term_runs_are_a_bad_dump() {
    for terms in [
        json!([[2, 1]]),
        json!([[1, 1], [1, 2]]),
        json!([[1, 1], [11, 2]]),
    ] {
        let v = json!({"node": "n1", "snapshot_index": 10, "entries": [], "snapshot_terms": terms});
        let err = parse_dump(&v, "n1.dump.json").unwrap_err().to_string();
        assert!(err.contains("snapshot_terms"), "{err}");
    }
}

#[test]
fn events_of_unknown_kinds_are_skipped_and_known_ones_without_their_fields_are_bad_lines() {
    // A spec target or a newer node may write events this version does not know.
    let text = "{\"node\":\"n1\",\"event\":\"membership-change\",\"add\":\"n6\"}\n\
                {\"node\":\"n1\",\"event\":\"leader\",\"term\":2}\n";
    let (events, warnings) = parse_events(text, "n1.events.jsonl").unwrap();
    assert!(warnings.is_empty());
    assert_eq!(events[0].event, NodeEvent::Other);
    assert_eq!(events[1], leader("n1", 2));
    // A leader event without its term cannot be judged: the stream is bad input, not
    // evidence with a hole in it.
    let err = parse_events(
        "{\"node\":\"n1\",\"event\":\"leader\"}\n",
        "n1.events.jsonl",
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("n1.events.jsonl:1:"), "{err}");
    assert!(err.to_string().contains("term"), "{err}");
}

/// The checker reads what a node writes: every event the cores and the runtime emit,
/// stamped as the runtime stamps it, reaches the checks it feeds.
#[test]
fn events_written_by_a_node_are_judged_by_the_checker() {
    let written = [
        line("n1", NodeEvent::Leader { term: 3 }),
        line("n2", NodeEvent::Leader { term: 3 }),
        vote("n3", 3, "n1"),
        vote("n3", 3, "n2"),
        line("n1", NodeEvent::Commit { index: 9, term: 3 }),
    ];
    let text: String = written
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    let (events, _) = parse_events(&text, "events").unwrap();
    let r = check(&three_agreeing(), &events, &History::default());
    assert_eq!(r.duplicate_leaders.len(), 1);
    assert_eq!(r.double_votes.len(), 1);
    assert_eq!(r.announced_commit, Some(9));
}

/// A dump as a core builds it (the wire type, every field set) is the dump the checker
/// reads, field for field.
#[test]
fn a_dump_built_by_a_core_reads_back_whole() {
    let built = Dump {
        node: "n1".into(),
        snapshot_index: 2,
        entries: vec![agreement::DumpEntry {
            index: 3,
            term: 2,
            command: w("k", 1),
            origin: Some("c1:7".into()),
            digest: Some("ab".into()),
        }],
        state: json!({"k": 1}),
        snapshot_digest: Some("cd".into()),
        snapshot_terms: vec![(1, 1), (2, 2)],
    };
    let v = serde_json::to_value(&built).unwrap();
    assert_eq!(parse_dump(&v, "n1.dump.json").unwrap(), built);
}

fn exec(ms: u64, node: &str, seq: u64, digest: &str) -> EventLine {
    at(
        ms,
        node,
        NodeEvent::Execute {
            seq,
            view: 0,
            digest: Some(digest.into()),
        },
    )
}

#[test]
fn replicas_that_executed_different_batches_at_one_sequence_number_are_invalid() {
    // Agreeing executions (a replay of its own by n1 included) are valid ...
    let agreeing = [
        exec(10, "n1", 1, "aa"),
        exec(11, "n2", 1, "aa"),
        exec(12, "n3", 1, "aa"),
        exec(20, "n1", 1, "aa"),
        exec(30, "n2", 2, "bb"),
    ];
    let r = check(&three_agreeing(), &agreeing, &History::default());
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.summary());
    assert!(r.split_executions.is_empty());
    // ... a second digest at one sequence number is not, even when the final dumps agree
    // (the replica took a peer's state afterwards).
    let mut split = agreeing.to_vec();
    split.push(exec(2_400, "n3", 2, "cc"));
    let r = check(&three_agreeing(), &split, &History::default());
    assert_eq!(r.verdict, Verdict::Invalid, "{}", r.summary());
    let x = &r.split_executions[..];
    assert_eq!(x.len(), 1);
    assert_eq!(
        (x[0].seq, x[0].node_a.as_str(), x[0].node_b.as_str()),
        (2, "n2", "n3")
    );
    assert!(
        r.summary()
            .contains("n2 and n3 executed different batches at sequence number 2")
    );
    let a = anomaly::agreement(&r, &History::default(), Some(400)).expect("an anomaly");
    assert_eq!(a.time_s, Some(2.0), "{a:?}");
    // A Byzantine member's executions are not judged.
    let mut m = Membership::of(["n1", "n2", "n3"]);
    m.byzantine.insert("n3".into());
    let r = agreement::check(&three_agreeing(), &split, &History::default(), &m);
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.summary());
    assert_eq!(r.byzantine, vec!["n3".to_string()]);
    assert!(r.summary().contains("Byzantine, not judged: n3"));
}

fn confirm(ms: u64, node: &str, height: u64, hash: &str) -> EventLine {
    at(
        ms,
        node,
        NodeEvent::Confirm {
            height,
            hash: hash.into(),
        },
    )
}

/// Reversed confirmations (proof-of-work chains' `confirm` events), case by case: each
/// row's events and the reports expected, as (height, node_a, hash_a, node_b, hash_b) in
/// the order the checker finds them.
#[test]
fn confirmations_reversed_by_a_node_or_split_between_nodes_are_reported_once_per_pair() {
    type Report = (u64, &'static str, &'static str, &'static str, &'static str);
    let c = confirm;
    let table: Vec<(&str, Vec<EventLine>, Vec<Report>)> = vec![
        (
            "one node re-confirms another hash at a height, then the first again: one reversal",
            vec![
                c(1, "n1", 5, "aa"),
                c(2, "n1", 5, "bb"),
                c(3, "n1", 5, "aa"),
            ],
            vec![(5, "n1", "aa", "n1", "bb")],
        ),
        (
            "two nodes confirm different blocks at one height: a split",
            vec![c(1, "n1", 5, "aa"), c(2, "n2", 5, "bb")],
            vec![(5, "n1", "aa", "n2", "bb")],
        ),
        (
            "a node announces the same hash again, another node agrees: nothing",
            vec![
                c(1, "n1", 5, "aa"),
                c(2, "n1", 5, "aa"),
                c(3, "n2", 5, "aa"),
            ],
            vec![],
        ),
        (
            "a restarted node announces its confirmed chain again, same hashes: nothing",
            vec![
                c(1, "n1", 1, "a1"),
                c(2, "n1", 2, "a2"),
                c(3, "n2", 1, "a1"),
                c(4, "n1", 3, "a3"),
                // n1 restarted: its chain announced from height 1 again
                c(10, "n1", 1, "a1"),
                c(11, "n1", 2, "a2"),
                c(12, "n1", 3, "a3"),
                c(13, "n2", 2, "a2"),
            ],
            vec![],
        ),
        (
            "reports are deduplicated per height and node pair",
            vec![
                c(1, "n1", 5, "aa"),
                c(2, "n2", 5, "bb"),
                // n2 announces it again (a restart): the same pair, not reported again
                c(3, "n2", 5, "bb"),
                // another node, another pair
                c(4, "n3", 5, "bb"),
                // n1 reorganises to bb, back to aa, to bb: one reversal of its own
                c(5, "n1", 5, "bb"),
                c(6, "n1", 5, "aa"),
                c(7, "n1", 5, "bb"),
                // the same pair at another height is another report
                c(8, "n2", 6, "cc"),
                c(9, "n1", 6, "dd"),
                c(10, "n1", 6, "dd"),
            ],
            vec![
                (5, "n1", "aa", "n2", "bb"),
                (5, "n1", "aa", "n3", "bb"),
                (5, "n1", "aa", "n1", "bb"),
                (6, "n2", "cc", "n1", "dd"),
            ],
        ),
    ];
    for (case, events, want) in table {
        let r = check(&three_agreeing(), &events, &History::default());
        let got: Vec<(u64, &str, &str, &str, &str)> = r
            .reversed_confirmations
            .iter()
            .map(|x| {
                (
                    x.height,
                    x.node_a.as_str(),
                    x.hash_a.as_str(),
                    x.node_b.as_str(),
                    x.hash_b.as_str(),
                )
            })
            .collect();
        assert_eq!(got, want, "{case}");
        let verdict = if want.is_empty() {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        assert_eq!(r.verdict, verdict, "{case}: {}", r.summary());
    }
    // How the two kinds read, and when: at the second confirmation.
    let r = check(
        &three_agreeing(),
        &[
            c(1, "n1", 5, "aa"),
            c(2_000, "n1", 5, "bb"),
            c(3_000, "n2", 5, "cc"),
        ],
        &History::default(),
    );
    let x = &r.reversed_confirmations;
    assert_eq!(x.len(), 2, "{x:?}");
    assert_eq!(x[0].time_ms, Some(2_000));
    assert!(
        x[0].describe()
            .starts_with("n1 reversed its confirmation at height 5: block aa… confirmed, then bb…"),
        "{}",
        x[0].describe()
    );
    assert!(
        x[1].describe()
            .starts_with("n1 and n2 confirmed different blocks at height 5 (aa… and cc…)"),
        "{}",
        x[1].describe()
    );
}
