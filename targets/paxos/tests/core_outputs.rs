//! Unit tests of the core on what it emits: records in the same output as the replies they
//! must precede, not-leader hints, promises and refusals, learning from a commit index.

use serde_json::json;
use std::collections::BTreeMap;
use sunder_core::{CoreConfig, Input, Output, Protocol, ReqToken};
use sunder_paxos::{Ballot, Entry, Msg, Paxos, Record};
use sunder_wire::Op;

type Out = Output<Msg, Record>;

fn core(id: &str, members: &[&str], bugs: &[&str]) -> Paxos {
    let config = CoreConfig {
        id: id.into(),
        members: members.iter().map(|m| m.to_string()).collect(),
        bugs: bugs.iter().map(|b| b.to_string()).collect(),
        opts: BTreeMap::new(),
        seed: 1,
        tick_ms: 10,
        byzantine: None,
    };
    Paxos::recover(config, Vec::new())
}

fn step(p: &mut Paxos, input: Input<Msg>) -> Out {
    let mut out = Out::default();
    p.step(input, &mut out);
    out
}

fn write(id: u64, value: i64) -> Input<Msg> {
    Input::Client {
        token: ReqToken { conn: 1, id },
        op: Op::Write {
            key: "k".into(),
            value,
        },
    }
}

/// Ticks until the single node leads.
fn lone_leader(bugs: &[&str]) -> Paxos {
    let mut p = core("n1", &["n1"], bugs);
    let mut leader = false;
    for t in 0..200 {
        let out = step(&mut p, Input::Tick { now_ms: t * 10 });
        leader |= out
            .events
            .iter()
            .any(|e| matches!(e, sunder_wire::NodeEvent::Leader { .. }));
    }
    assert!(leader && p.is_leader());
    p
}

#[test]
fn a_lone_node_persists_before_it_replies() {
    let mut p = lone_leader(&[]);
    let out = step(&mut p, write(1, 5));
    assert!(
        matches!(
            out.persist.as_slice(),
            [
                Record::Accepted { slot: 1, .. },
                Record::Chosen { slot: 1, .. }
            ]
        ),
        "{:?}",
        out.persist
    );
    assert_eq!(out.reply.len(), 1);
    assert!(out.reply[0].1.ok);
    // The first accept under the leader's round is announced (for the agreement checker's
    // promise check), then the choice.
    let term = p.ballot().round;
    assert_eq!(
        out.events,
        vec![
            sunder_wire::NodeEvent::Accept { term },
            sunder_wire::NodeEvent::Chosen { slot: 1 }
        ]
    );

    let read = step(
        &mut p,
        Input::Client {
            token: ReqToken { conn: 1, id: 2 },
            op: Op::Read { key: "k".into() },
        },
    );
    assert_eq!(read.reply[0].1.value, json!(5), "reads go through the log");
    assert_eq!(p.commit(), 2);
    // the write says where it was chosen, as the dump will list it; a read does not
    let Record::Chosen { entry, .. } = &out.persist[1] else {
        unreachable!()
    };
    assert_eq!(
        out.reply[0].1.committed,
        Some(sunder_wire::LogPosition {
            index: 1,
            term: entry.round
        })
    );
    assert_eq!(read.reply[0].1.committed, None);
    let dump = step(
        &mut p,
        Input::Client {
            token: ReqToken { conn: 1, id: 3 },
            op: Op::Dump,
        },
    );
    let first = &dump.reply[0].1.value["entries"][0];
    assert_eq!(
        (first["index"].clone(), first["term"].clone()),
        (json!(1), json!(entry.round))
    );
    // Later accepts under the same round are not announced again.
    let again = step(&mut p, write(3, 6));
    assert_eq!(
        again.events,
        vec![sunder_wire::NodeEvent::Chosen { slot: 3 }]
    );
}

#[test]
fn no_persist_writes_nothing() {
    let mut p = lone_leader(&["no-persist"]);
    let out = step(&mut p, write(1, 5));
    assert!(out.persist.is_empty());
    assert!(out.reply[0].1.ok);
}

#[test]
fn a_follower_answers_not_leader_with_a_hint() {
    let mut p = core("n2", &["n1", "n2", "n3"], &[]);
    let out = step(&mut p, write(1, 1));
    assert_eq!(out.reply[0].1.error.as_deref(), Some("not-leader"));
    assert_eq!(out.reply[0].1.leader, None, "nobody known to lead yet");
    let b = Ballot { round: 1, node: 0 };
    step(
        &mut p,
        Input::Peer {
            from: "n1".into(),
            msg: Msg::Accept {
                ballot: b,
                entries: vec![],
                commit: 0,
            },
        },
    );
    let out = step(&mut p, write(2, 1));
    assert_eq!(out.reply[0].1.leader.as_deref(), Some("n1"));
    assert!(out.reply[0].1.definite);
}

#[test]
fn promises_are_durable_and_lower_ballots_refused() {
    let mut p = core("n2", &["n1", "n2", "n3"], &[]);
    let high = Ballot { round: 6, node: 0 };
    let out = step(
        &mut p,
        Input::Peer {
            from: "n1".into(),
            msg: Msg::Prepare {
                ballot: high,
                from_slot: 1,
            },
        },
    );
    assert_eq!(out.persist, vec![Record::Promise(high)]);
    assert_eq!(
        out.send,
        vec![(
            "n1".to_string(),
            Msg::Promise {
                ballot: high,
                accepted: vec![]
            }
        )]
    );
    let low = Ballot { round: 3, node: 2 };
    let e = Entry {
        round: 3,
        cmd: None,
    };
    let out = step(
        &mut p,
        Input::Peer {
            from: "n3".into(),
            msg: Msg::Accept {
                ballot: low,
                entries: vec![(1, e)],
                commit: 0,
            },
        },
    );
    assert!(out.persist.is_empty());
    assert_eq!(
        out.send,
        vec![(
            "n3".to_string(),
            Msg::Nack {
                ballot: low,
                promised: high
            }
        )]
    );
}

#[test]
fn string_ballots_accept_a_stale_proposal_after_a_promise() {
    let mut p = core("n2", &["n1", "n2", "n3"], &["string-ballots"]);
    let high = Ballot { round: 10, node: 0 }; // "n1-10"
    step(
        &mut p,
        Input::Peer {
            from: "n1".into(),
            msg: Msg::Prepare {
                ballot: high,
                from_slot: 1,
            },
        },
    );
    let stale = Ballot { round: 3, node: 2 }; // "n3-3" sorts after "n1-10"
    let e = Entry {
        round: 3,
        cmd: None,
    };
    let out = step(
        &mut p,
        Input::Peer {
            from: "n3".into(),
            msg: Msg::Accept {
                ballot: stale,
                entries: vec![(1, e)],
                commit: 0,
            },
        },
    );
    assert_eq!(
        out.send,
        vec![(
            "n3".to_string(),
            Msg::Accepted {
                ballot: stale,
                slots: vec![1]
            }
        )]
    );
}

#[test]
fn a_follower_learns_from_the_commit_index_and_catches_up() {
    let mut p = core("n2", &["n1", "n2", "n3"], &[]);
    let b = Ballot { round: 1, node: 0 };
    let e = |v: i64| Entry {
        round: 1,
        cmd: Some(sunder_paxos::Command {
            op: Op::Write {
                key: "k".into(),
                value: v,
            },
            node: 0,
            origin: format!("1:{v}"),
        }),
    };
    let out = step(
        &mut p,
        Input::Peer {
            from: "n1".into(),
            msg: Msg::Accept {
                ballot: b,
                entries: vec![(2, e(2))],
                commit: 0,
            },
        },
    );
    assert_eq!(
        out.send,
        vec![(
            "n1".to_string(),
            Msg::Accepted {
                ballot: b,
                slots: vec![2]
            }
        )]
    );
    // Slot 1 was never received: the follower learns nothing yet and asks for it.
    let out = step(
        &mut p,
        Input::Peer {
            from: "n1".into(),
            msg: Msg::Accept {
                ballot: b,
                entries: vec![],
                commit: 2,
            },
        },
    );
    assert!(
        out.send
            .contains(&("n1".to_string(), Msg::CatchUp { from: 1 })),
        "{:?}",
        out.send
    );
    assert_eq!(p.commit(), 0);
    let out = step(
        &mut p,
        Input::Peer {
            from: "n1".into(),
            msg: Msg::Chosen {
                entries: vec![(1, e(1))],
            },
        },
    );
    assert_eq!(
        p.commit(),
        2,
        "slot 2 was chosen at the leader's ballot, slot 1 from the catch-up"
    );
    assert!(
        out.persist
            .iter()
            .all(|r| matches!(r, Record::Chosen { .. }))
    );
}

/// n1 leads n1..n3, just acknowledged by n2; returns its ballot and the local time.
fn leader_of_three() -> (Paxos, Ballot, u64) {
    let mut p = core("n1", &["n1", "n2", "n3"], &[]);
    for t in 0..200 {
        let now_ms = t * 10;
        let out = step(&mut p, Input::Tick { now_ms });
        let bid = out.send.iter().find_map(|(_, m)| match m {
            Msg::Prepare { ballot, .. } => Some(*ballot),
            _ => None,
        });
        let Some(ballot) = bid else { continue };
        let promise = Msg::Promise {
            ballot,
            accepted: vec![],
        };
        step(
            &mut p,
            Input::Peer {
                from: "n2".into(),
                msg: promise,
            },
        );
        assert!(p.is_leader());
        let ack = Msg::Accepted {
            ballot,
            slots: vec![],
        };
        step(
            &mut p,
            Input::Peer {
                from: "n2".into(),
                msg: ack,
            },
        );
        return (p, ballot, now_ms);
    }
    panic!("n1 never bid");
}

/// Seed 9843 of the simulation: n3 comes back from a partition with a ballot its own
/// bids raised while it was cut off, and refuses the working leader's Accept. The leader,
/// which still hears a majority, bids above it instead of following a node that cannot
/// win (the followers ignore it while they hear their leader).
#[test]
fn a_leader_bids_above_a_lone_bidder_that_refuses_it() {
    let (mut p, ballot, _) = leader_of_three();
    let lone = Ballot {
        round: ballot.round + 10,
        node: 2,
    };
    let out = step(
        &mut p,
        Input::Peer {
            from: "n3".into(),
            msg: Msg::Nack {
                ballot,
                promised: lone,
            },
        },
    );
    let bids: Vec<Ballot> = out
        .send
        .iter()
        .filter_map(|(_, m)| match m {
            Msg::Prepare { ballot, .. } => Some(*ballot),
            _ => None,
        })
        .collect();
    assert_eq!(bids.len(), 2, "a Prepare to each peer: {:?}", out.send);
    assert!(bids.iter().all(|b| *b > lone && b.node == 0), "{bids:?}");
    assert_eq!(p.ballot(), bids[0]);
}

/// A refusal in favour of a third node (which gathered that promise) is a rival that may
/// hold a majority: the leader steps down as before. So does a leader that no longer
/// hears a majority.
#[test]
fn a_leader_steps_down_for_a_rival_or_when_cut_off() {
    let (mut p, ballot, _) = leader_of_three();
    let rival = Ballot {
        round: ballot.round + 10,
        node: 2,
    };
    let nack = Msg::Nack {
        ballot,
        promised: rival,
    };
    let out = step(
        &mut p,
        Input::Peer {
            from: "n2".into(),
            msg: nack.clone(),
        },
    );
    assert!(!p.is_leader());
    assert!(
        !out.send
            .iter()
            .any(|(_, m)| matches!(m, Msg::Prepare { .. }))
    );

    let (mut p, _, now_ms) = leader_of_three();
    // Nothing heard from n2 or n3 for more than an election timeout (500 ms by default),
    // not yet long enough for the leader's own check to depose it.
    step(
        &mut p,
        Input::Tick {
            now_ms: now_ms + 600,
        },
    );
    assert!(p.is_leader());
    let out = step(
        &mut p,
        Input::Peer {
            from: "n3".into(),
            msg: nack,
        },
    );
    assert!(!p.is_leader());
    assert!(
        !out.send
            .iter()
            .any(|(_, m)| matches!(m, Msg::Prepare { .. }))
    );
}
