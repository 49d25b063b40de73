//! Unit tests of the pure core: feed inputs, assert on the emitted `Output`s.

use serde_json::json;
use sunder_core::{CoreConfig, Input, Output, Protocol, ReqToken};
use sunder_raft::{Command, Entry, Msg, Raft, Record, Role};
use sunder_wire::{Op, Response};

type Out = Output<Msg, Record>;

fn config(id: &str, bugs: &[&str], opts: &[(&str, &str)]) -> CoreConfig {
    CoreConfig {
        id: id.into(),
        members: vec!["n1".into(), "n2".into(), "n3".into()],
        bugs: bugs.iter().map(|b| b.to_string()).collect(),
        opts: opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        seed: 7,
        tick_ms: 10,
        byzantine: None,
    }
}

fn step(r: &mut Raft, input: Input<Msg>) -> Out {
    let mut out = Output::default();
    r.step(input, &mut out);
    out
}

fn peer(r: &mut Raft, from: &str, msg: Msg) -> Out {
    step(
        r,
        Input::Peer {
            from: from.into(),
            msg,
        },
    )
}

fn client(r: &mut Raft, id: u64, op: Op) -> Out {
    step(
        r,
        Input::Client {
            token: ReqToken { conn: 1, id },
            op,
        },
    )
}

/// Ticks until the core sends something.
fn tick_until_send(r: &mut Raft) -> Out {
    for t in 1..1000 {
        let out = step(r, Input::Tick { now_ms: t * 10 });
        if !out.send.is_empty() {
            return out;
        }
    }
    panic!("nothing sent in 1000 ticks");
}

fn write(key: &str, value: i64) -> Op {
    Op::Write {
        key: key.into(),
        value,
    }
}

/// n1 elected leader of term 1 in a 3-node cluster; returns it with the election's outputs.
fn leader() -> (Raft, Vec<Out>) {
    let mut r = Raft::recover(config("n1", &[], &[]), vec![]);
    let o1 = tick_until_send(&mut r);
    let o2 = peer(
        &mut r,
        "n2",
        Msg::PreVoteResp {
            term: 1,
            granted: true,
        },
    );
    let o3 = peer(
        &mut r,
        "n2",
        Msg::VoteResp {
            term: 1,
            granted: true,
        },
    );
    assert_eq!(r.role(), Role::Leader);
    (r, vec![o1, o2, o3])
}

fn ack(r: &mut Raft, from: &str, index: u64, seq: u64) -> Out {
    peer(
        r,
        from,
        Msg::AppendResp {
            term: r.term(),
            success: true,
            index,
            hint_index: 0,
            hint_term: None,
            seq,
        },
    )
}

fn last_seq(out: &Out) -> u64 {
    out.send
        .iter()
        .filter_map(|(_, m)| {
            if let Msg::Append { seq, .. } = m {
                Some(*seq)
            } else {
                None
            }
        })
        .max()
        .unwrap()
}

#[test]
fn election_pre_vote_then_vote_persisted_before_sending() {
    let (r, outs) = leader();
    // Pre-vote asks for term 1 without changing anything durable.
    assert!(outs[0].persist.is_empty());
    assert_eq!(outs[0].send.len(), 2);
    assert!(
        outs[0]
            .send
            .iter()
            .all(|(_, m)| matches!(m, Msg::PreVote { term: 1, .. }))
    );
    assert_eq!(r.term(), 1);
    // A majority of pre-votes: term and self-vote persisted in the same output as the requests.
    assert_eq!(
        outs[1].persist,
        vec![Record::HardState {
            term: 1,
            vote: Some("n1".into())
        }]
    );
    assert!(
        outs[1]
            .send
            .iter()
            .all(|(_, m)| matches!(m, Msg::Vote { term: 1, .. }))
    );
    // Leader: a no-op of its term persisted and replicated, and an event.
    assert_eq!(
        outs[2].events[0],
        sunder_wire::NodeEvent::Leader { term: 1 }
    );
    let noop = Entry {
        index: 1,
        term: 1,
        cmd: Command::Noop,
    };
    assert!(
        outs[2]
            .persist
            .contains(&Record::Entries(vec![noop.clone()]))
    );
    assert!(
        outs[2].send.iter().any(
            |(_, m)| matches!(m, Msg::Append { entries, .. } if entries == &vec![noop.clone()])
        )
    );
}

#[test]
fn vote_granted_once_per_term_and_persisted_with_the_reply() {
    let mut r = Raft::recover(config("n3", &[], &[]), vec![]);
    let out = peer(
        &mut r,
        "n1",
        Msg::Vote {
            term: 2,
            last_index: 0,
            last_term: 0,
        },
    );
    assert_eq!(
        out.persist,
        vec![Record::HardState {
            term: 2,
            vote: Some("n1".into())
        }]
    );
    assert_eq!(
        out.send,
        vec![(
            "n1".into(),
            Msg::VoteResp {
                term: 2,
                granted: true
            }
        )]
    );
    let out = peer(
        &mut r,
        "n2",
        Msg::Vote {
            term: 2,
            last_index: 5,
            last_term: 1,
        },
    );
    assert_eq!(
        out.send,
        vec![(
            "n2".into(),
            Msg::VoteResp {
                term: 2,
                granted: false
            }
        )]
    );
    // Restarted from its records, it still remembers.
    let records = vec![Record::HardState {
        term: 2,
        vote: Some("n1".into()),
    }];
    let mut again = Raft::recover(config("n3", &[], &[]), records);
    let out = peer(
        &mut again,
        "n2",
        Msg::Vote {
            term: 2,
            last_index: 5,
            last_term: 1,
        },
    );
    assert_eq!(
        out.send,
        vec![(
            "n2".into(),
            Msg::VoteResp {
                term: 2,
                granted: false
            }
        )]
    );
}

#[test]
fn forget_vote_bug_writes_the_term_but_not_the_vote() {
    let mut r = Raft::recover(config("n3", &["forget-vote"], &[]), vec![]);
    let out = peer(
        &mut r,
        "n1",
        Msg::Vote {
            term: 2,
            last_index: 0,
            last_term: 0,
        },
    );
    assert_eq!(
        out.persist,
        vec![Record::HardState {
            term: 2,
            vote: None
        }]
    );
    let mut again = Raft::recover(config("n3", &["forget-vote"], &[]), out.persist);
    let out = peer(
        &mut again,
        "n2",
        Msg::Vote {
            term: 2,
            last_index: 0,
            last_term: 0,
        },
    );
    assert_eq!(
        out.send,
        vec![(
            "n2".into(),
            Msg::VoteResp {
                term: 2,
                granted: true
            }
        )]
    );
}

#[test]
fn vote_refused_to_a_shorter_log() {
    let records = vec![Record::Entries(vec![Entry {
        index: 1,
        term: 3,
        cmd: Command::Noop,
    }])];
    let mut r = Raft::recover(config("n3", &[], &[]), records);
    let out = peer(
        &mut r,
        "n1",
        Msg::Vote {
            term: 4,
            last_index: 5,
            last_term: 2,
        },
    );
    assert_eq!(
        out.send,
        vec![(
            "n1".into(),
            Msg::VoteResp {
                term: 4,
                granted: false
            }
        )]
    );
}

#[test]
fn pre_vote_refused_while_the_leader_is_heard() {
    let mut r = Raft::recover(config("n3", &[], &[]), vec![]);
    peer(
        &mut r,
        "n1",
        Msg::Append {
            term: 1,
            prev_index: 0,
            prev_term: 0,
            entries: vec![],
            commit: 0,
            seq: 1,
        },
    );
    let out = peer(
        &mut r,
        "n2",
        Msg::PreVote {
            term: 2,
            last_index: 0,
            last_term: 0,
        },
    );
    assert_eq!(
        out.send,
        vec![(
            "n2".into(),
            Msg::PreVoteResp {
                term: 1,
                granted: false
            }
        )]
    );
    assert_eq!(r.term(), 1, "a pre-vote never changes the term");
}

#[test]
fn write_answered_only_after_a_majority_has_it() {
    let (mut r, _) = leader();
    ack(&mut r, "n2", 1, 1);
    let out = client(&mut r, 10, write("k", 5));
    assert!(out.reply.is_empty());
    assert!(matches!(&out.persist[..], [Record::Entries(e)] if e[0].index == 2));
    assert!(
        out.send
            .iter()
            .any(|(_, m)| matches!(m, Msg::Append { entries, .. } if entries.len() == 1))
    );
    let out = ack(&mut r, "n2", 2, 1);
    assert_eq!(
        out.reply,
        vec![(
            ReqToken { conn: 1, id: 10 },
            // The answer says where the write was committed: index 2, this leader's term.
            Response::committed(
                10,
                sunder_wire::LogPosition {
                    index: 2,
                    term: r.term()
                }
            )
        )]
    );
    assert_eq!(r.commit_index(), 2);
}

#[test]
fn early_ack_bug_answers_before_commit() {
    let mut r = Raft::recover(config("n1", &["early-ack"], &[]), vec![]);
    tick_until_send(&mut r);
    peer(
        &mut r,
        "n2",
        Msg::PreVoteResp {
            term: 1,
            granted: true,
        },
    );
    peer(
        &mut r,
        "n2",
        Msg::VoteResp {
            term: 1,
            granted: true,
        },
    );
    let out = client(&mut r, 10, write("k", 5));
    assert_eq!(out.reply.len(), 1);
    assert!(out.reply[0].1.ok);
    assert_eq!(r.commit_index(), 0);
}

#[test]
fn batching_and_pipelining_send_many_entries_per_append() {
    let (mut r, _) = leader();
    ack(&mut r, "n2", 1, 1);
    ack(&mut r, "n3", 1, 1);
    // The window holds 4 batches; the writes beyond it wait and then go out together.
    let mut sizes = vec![];
    for i in 0..20 {
        let out = client(&mut r, 100 + i, write("k", i as i64));
        for (to, m) in &out.send {
            if let (true, Msg::Append { entries, .. }) = (to == "n2", m) {
                sizes.push(entries.len());
            }
        }
    }
    assert_eq!(sizes, vec![1, 1, 1, 1], "four batches in flight, no more");
    let out = ack(&mut r, "n2", 5, 1);
    let n2: Vec<usize> = out
        .send
        .iter()
        .filter_map(|(to, m)| match m {
            Msg::Append { entries, .. } if to == "n2" => Some(entries.len()),
            _ => None,
        })
        .collect();
    assert_eq!(n2, vec![16], "the backlog goes in one batch");
    // With batch=off every AppendEntries carries one entry.
    let mut r = Raft::recover(config("n1", &[], &[("batch", "off")]), vec![]);
    tick_until_send(&mut r);
    peer(
        &mut r,
        "n2",
        Msg::PreVoteResp {
            term: 1,
            granted: true,
        },
    );
    peer(
        &mut r,
        "n2",
        Msg::VoteResp {
            term: 1,
            granted: true,
        },
    );
    ack(&mut r, "n2", 1, 1);
    for i in 0..10 {
        client(&mut r, 100 + i, write("k", i as i64));
    }
    let out = ack(&mut r, "n2", 5, 1);
    assert!(
        out.send
            .iter()
            .all(|(_, m)| !matches!(m, Msg::Append { entries, .. } if entries.len() > 1))
    );
}

#[test]
fn follower_rejects_a_gap_with_a_hint_and_the_leader_backs_up() {
    let mut f = Raft::recover(config("n2", &[], &[]), vec![]);
    let e = |index, term| Entry {
        index,
        term,
        cmd: Command::Noop,
    };
    let out = peer(
        &mut f,
        "n1",
        Msg::Append {
            term: 1,
            prev_index: 0,
            prev_term: 0,
            entries: vec![e(1, 1), e(2, 1)],
            commit: 0,
            seq: 1,
        },
    );
    let term1 = Record::HardState {
        term: 1,
        vote: None,
    };
    assert_eq!(
        out.persist,
        vec![term1, Record::Entries(vec![e(1, 1), e(2, 1)])]
    );
    let out = peer(
        &mut f,
        "n1",
        Msg::Append {
            term: 1,
            prev_index: 7,
            prev_term: 1,
            entries: vec![],
            commit: 0,
            seq: 2,
        },
    );
    assert_eq!(
        out.send,
        vec![(
            "n1".into(),
            Msg::AppendResp {
                term: 1,
                success: false,
                index: 7,
                hint_index: 3,
                hint_term: None,
                seq: 2
            }
        )]
    );
    // A conflicting term: the hint names the first index of the follower's term there.
    let out = peer(
        &mut f,
        "n3",
        Msg::Append {
            term: 2,
            prev_index: 2,
            prev_term: 2,
            entries: vec![],
            commit: 0,
            seq: 1,
        },
    );
    assert_eq!(
        out.send,
        vec![(
            "n3".into(),
            Msg::AppendResp {
                term: 2,
                success: false,
                index: 2,
                hint_index: 1,
                hint_term: Some(1),
                seq: 1
            }
        )]
    );
    // The new leader's entries replace the conflicting suffix, and that is what gets persisted.
    let out = peer(
        &mut f,
        "n3",
        Msg::Append {
            term: 2,
            prev_index: 1,
            prev_term: 1,
            entries: vec![e(2, 2)],
            commit: 2,
            seq: 2,
        },
    );
    // ... followed by the commit index it learned, recorded after the entries it covers.
    assert_eq!(
        out.persist[out.persist.len() - 2..],
        [Record::Entries(vec![e(2, 2)]), Record::Commit(2)]
    );
    assert_eq!(f.commit_index(), 2);
    assert_eq!(f.committed_entries(), vec![e(1, 1), e(2, 2)]);
}

#[test]
fn reads_wait_for_a_confirmed_heartbeat_round() {
    let (mut r, _) = leader();
    ack(&mut r, "n2", 1, 1);
    client(&mut r, 10, write("k", 5));
    ack(&mut r, "n2", 2, 1);
    let out = client(&mut r, 11, Op::Read { key: "k".into() });
    assert!(
        out.reply.is_empty(),
        "a read never answers before leadership is confirmed"
    );
    let seq = last_seq(&out);
    // An ack of an older round does not confirm it; one of this round does.
    assert!(ack(&mut r, "n2", 2, seq - 1).reply.is_empty());
    let out = ack(&mut r, "n3", 2, seq);
    assert_eq!(
        out.reply,
        vec![(ReqToken { conn: 1, id: 11 }, Response::ok(11, json!(5)))]
    );
}

#[test]
fn stale_read_bug_answers_at_once() {
    let mut r = Raft::recover(config("n1", &["stale-read"], &[]), vec![]);
    tick_until_send(&mut r);
    peer(
        &mut r,
        "n2",
        Msg::PreVoteResp {
            term: 1,
            granted: true,
        },
    );
    peer(
        &mut r,
        "n2",
        Msg::VoteResp {
            term: 1,
            granted: true,
        },
    );
    let out = client(&mut r, 11, Op::Read { key: "k".into() });
    assert_eq!(out.reply.len(), 1);
}

#[test]
fn lease_read_bug_answers_inside_a_lease_measured_on_the_local_clock() {
    let mut r = Raft::recover(config("n1", &["lease-read"], &[]), vec![]);
    tick_until_send(&mut r);
    peer(
        &mut r,
        "n2",
        Msg::PreVoteResp {
            term: 1,
            granted: true,
        },
    );
    peer(
        &mut r,
        "n2",
        Msg::VoteResp {
            term: 1,
            granted: true,
        },
    );
    let out = client(&mut r, 11, Op::Read { key: "k".into() });
    assert!(out.reply.is_empty(), "no lease yet: read-index");
    let out = ack(&mut r, "n2", 1, last_seq(&out));
    assert_eq!(out.reply.len(), 1);
    // Now within the lease: answered on the spot.
    let out = client(&mut r, 12, Op::Read { key: "k".into() });
    assert_eq!(out.reply.len(), 1);
    // The clock says the lease ran out (n2 was heard, so check-quorum keeps n1 leading):
    // back to read-index.
    let now = r.now_ms();
    let out = step(&mut r, Input::Tick { now_ms: now + 400 });
    assert!(out.reply.is_empty());
    assert_eq!(r.role(), Role::Leader);
    let out = client(&mut r, 13, Op::Read { key: "k".into() });
    assert!(out.reply.is_empty(), "lease over: read-index");
    // The clock is stepped back: the lease is good again, and check-quorum waits for the
    // clock too, however many ticks pass without a word from anyone.
    for _ in 0..100 {
        step(&mut r, Input::Tick { now_ms: now });
    }
    assert_eq!(r.role(), Role::Leader);
    let out = client(&mut r, 14, Op::Read { key: "k".into() });
    assert_eq!(out.reply.len(), 1, "a stepped-back clock revives the lease");
    // Once the clock moves on, the leader that heard no one steps down.
    step(&mut r, Input::Tick { now_ms: now + 400 });
    step(&mut r, Input::Tick { now_ms: now + 800 });
    assert_eq!(r.role(), Role::Follower);
}

#[test]
fn follower_redirects_and_deposed_leader_answers_indefinitely() {
    let (mut r, _) = leader();
    client(&mut r, 10, write("k", 5));
    let read = client(&mut r, 11, Op::Read { key: "k".into() });
    assert!(read.reply.is_empty());
    let out = peer(
        &mut r,
        "n2",
        Msg::Append {
            term: 3,
            prev_index: 0,
            prev_term: 0,
            entries: vec![],
            commit: 0,
            seq: 1,
        },
    );
    assert_eq!(r.role(), Role::Follower);
    let mut replies = out.reply.clone();
    replies.sort_by_key(|(t, _)| t.id);
    assert_eq!(replies[0].1.error.as_deref(), Some("unavailable"));
    assert!(!replies[0].1.definite, "the write may still commit");
    assert_eq!(replies[1].1.error.as_deref(), Some("not-leader"));
    let out = client(&mut r, 12, write("k", 6));
    assert_eq!(out.reply[0].1, Response::not_leader(12, Some("n2".into())));
}

#[test]
fn compaction_and_install_snapshot() {
    let opts = [("snapshot", "3")];
    let mut l = Raft::recover(config("n1", &[], &opts), vec![]);
    tick_until_send(&mut l);
    peer(
        &mut l,
        "n2",
        Msg::PreVoteResp {
            term: 1,
            granted: true,
        },
    );
    peer(
        &mut l,
        "n2",
        Msg::VoteResp {
            term: 1,
            granted: true,
        },
    );
    for i in 0..3 {
        client(&mut l, 10 + i, write("k", i as i64));
    }
    let out = ack(&mut l, "n2", 4, 1);
    let compact = out.compact.expect("compaction after 3 applied entries");
    assert!(matches!(&compact[0], Record::Snapshot(s) if s.index == 4));
    assert_eq!(l.snapshot_index(), 4);
    // Recovering from the compacted records gives the same state.
    let again = Raft::recover(config("n1", &[], &opts), compact);
    assert_eq!(again.state().to_json(), json!({"k": 2}));
    // n3 never answered: it needs entries the leader no longer has, so it gets the snapshot.
    let out = peer(
        &mut l,
        "n3",
        Msg::AppendResp {
            term: 1,
            success: false,
            index: 0,
            hint_index: 1,
            hint_term: None,
            seq: 1,
        },
    );
    let snap = out.send.iter().find_map(|(to, m)| match m {
        Msg::InstallSnapshot { snapshot, .. } if to == "n3" => Some(snapshot.clone()),
        _ => None,
    });
    let snap = snap.expect("InstallSnapshot to n3");
    let mut f = Raft::recover(config("n3", &[], &opts), vec![]);
    let out = peer(
        &mut f,
        "n1",
        Msg::InstallSnapshot {
            term: 1,
            snapshot: snap,
            seq: 1,
        },
    );
    assert!(out.compact.is_some());
    assert_eq!(
        out.send,
        vec![(
            "n1".into(),
            Msg::SnapshotResp {
                term: 1,
                index: 4,
                seq: 1
            }
        )]
    );
    assert_eq!(f.state().to_json(), json!({"k": 2}));
}

#[test]
fn status_and_dump() {
    let (mut r, _) = leader();
    client(&mut r, 10, write("k", 5));
    ack(&mut r, "n2", 2, 1);
    let out = client(&mut r, 11, Op::Status);
    assert_eq!(
        out.reply[0].1.value,
        json!({"node": "n1", "role": "leader", "term": 1, "leader": "n1", "commit": 2})
    );
    let out = client(&mut r, 12, Op::Dump);
    let d = &out.reply[0].1.value;
    assert_eq!(
        d["entries"][1]["command"],
        json!({"op": "write", "key": "k", "value": 5})
    );
    assert_eq!(d["entries"][1]["origin"], json!("n1/1:10"));
    assert_eq!(d["state"], json!({"k": 5}));
}

#[test]
fn a_restarted_node_recovers_its_commit_index_within_its_log() {
    let e = |index, term| Entry {
        index,
        term,
        cmd: Command::Noop,
    };
    let records = vec![
        Record::HardState {
            term: 2,
            vote: None,
        },
        Record::Entries(vec![e(1, 1), e(2, 2), e(3, 2)]),
        Record::Commit(2),
    ];
    let r = Raft::recover(config("n2", &[], &[]), records.clone());
    assert_eq!(r.commit_index(), 2);
    assert_eq!(r.committed_entries(), vec![e(1, 1), e(2, 2)]);
    // A commit index past the log (its entries were a torn tail) is cut to the log.
    let mut torn = records;
    torn.push(Record::Commit(9));
    let r = Raft::recover(config("n2", &[], &[]), torn);
    assert_eq!(r.commit_index(), 3);
}
