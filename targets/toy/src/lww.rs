//! `lww`: every node serves reads and writes from its own copy and sends each update to
//! every peer once, without waiting. Registers keep the value with the highest
//! `(tick time, node id)` stamp; sets merge by union. Replicas converge when every update
//! arrives, but nothing retransmits, so a partition leaves them apart: stale reads and
//! lost elements, which is what sunder must catch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sunder_core::kv::{self, KvState};
use sunder_core::{CoreConfig, Input, NodeId, Output, Protocol};
use sunder_wire::{DumpEntry, Op, Response, Val};

use crate::boundary::{MAX_NUMBER, Rejections};

/// One replicated change; also the durable record (every change this node applied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Update {
    /// Set a register, stamped.
    Set {
        key: String,
        value: Val,
        ts: u64,
        node: NodeId,
    },
    /// Add an element to a set.
    Add { key: String, value: Val },
}

impl Update {
    fn command(&self) -> Value {
        match self {
            Update::Set { key, value, .. } => json!({"op": "write", "key": key, "value": value}),
            Update::Add { key, value } => json!({"op": "add", "key": key, "value": value}),
        }
    }
}

/// A last-writer-wins replica.
#[derive(Debug)]
pub struct Lww {
    cfg: CoreConfig,
    now_ms: u64,
    kv: KvState,
    stamps: BTreeMap<String, (u64, NodeId)>,
    /// Every update applied here, in order (for `dump`).
    applied: Vec<Update>,
    rejected: Rejections,
}

impl Lww {
    /// Why an update from `from` must be dropped, if it must. Stamps decide which write
    /// wins everywhere, so they must be unique per write: an update is only ever sent by
    /// the node that made it, and a stamp naming another node (or this one) would let two
    /// different values share a stamp, and replicas keep whichever came first.
    fn validate(&self, from: &NodeId, u: &Update) -> Result<(), &'static str> {
        if *from == self.cfg.id || !self.cfg.members.contains(from) {
            return Err("sender is not a peer");
        }
        match u {
            Update::Set { node, .. } if node != from => Err("stamp names another node"),
            Update::Set { ts, .. } if *ts > MAX_NUMBER => Err("timestamp beyond any run"),
            _ => Ok(()),
        }
    }

    /// Peer messages dropped at the boundary since start.
    pub fn rejected(&self) -> u64 {
        self.rejected.count()
    }

    /// Applies an update; false when it does not fit the key's type (a set written as a
    /// register), which only a client can cause and is refused before it spreads.
    fn apply(&mut self, u: &Update) -> bool {
        match u {
            Update::Set {
                key,
                value,
                ts,
                node,
            } => {
                if matches!(self.kv.get(key), Some(kv::Entry::Set(_))) {
                    return false;
                }
                let stamp = (*ts, node.clone());
                if self.stamps.get(key).is_none_or(|s| *s < stamp) {
                    self.kv.put(key, *value);
                    self.stamps.insert(key.clone(), stamp);
                }
            }
            Update::Add { key, value } => {
                if self
                    .kv
                    .apply(&Op::Add {
                        key: key.clone(),
                        value: *value,
                    })
                    .is_err()
                {
                    return false;
                }
            }
        }
        self.applied.push(u.clone());
        true
    }

    fn local_update(&mut self, u: Update, out: &mut Output<Update, Update>) -> Response {
        if !self.apply(&u) {
            return Response::error(0, "wrong-type", true);
        }
        for peer in self.cfg.members.iter().filter(|m| **m != self.cfg.id) {
            out.send.push((peer.clone(), u.clone()));
        }
        out.persist.push(u);
        Response::ok(0, Value::Null)
    }

    fn set(&self, key: &str, value: Val) -> Update {
        Update::Set {
            key: key.to_string(),
            value,
            ts: self.now_ms,
            node: self.cfg.id.clone(),
        }
    }

    fn client(&mut self, op: Op, out: &mut Output<Update, Update>) -> Response {
        match op {
            Op::Read { key } => Response::ok(0, self.kv.read(&key)),
            Op::Write { key, value } => {
                let u = self.set(&key, value);
                self.local_update(u, out)
            }
            Op::Cas { key, from, to } => match self.kv.get(&key) {
                Some(kv::Entry::Register(v)) if *v == from => {
                    let u = self.set(&key, to);
                    self.local_update(u, out)
                }
                _ => kv::response(self.kv.apply(&Op::Cas { key, from, to })),
            },
            Op::Add { key, value } => self.local_update(Update::Add { key, value }, out),
            Op::Balances { .. } => kv::response(self.kv.apply(&op)),
            // Worked out on this replica's copy and sent on as two independent register
            // writes: concurrent transfers elsewhere overwrite one another's halves, so
            // money appears and vanishes (what the bank checker must catch).
            Op::Transfer {
                ref from, ref to, ..
            } => {
                let mut scratch = self.kv.clone();
                if let Err(e) = scratch.apply(&op) {
                    return kv::response(Err(e));
                }
                for key in [from, to] {
                    let Some(kv::Entry::Register(v)) = scratch.get(key) else {
                        return Response::error(0, "wrong-type", true);
                    };
                    let u = self.set(key, *v);
                    let r = self.local_update(u, out);
                    if !r.ok {
                        return r;
                    }
                }
                Response::ok(0, Value::Null)
            }
            Op::Status => Response::ok(
                0,
                crate::status_json(&self.cfg.id, "replica", None, self.applied.len() as u64),
            ),
            Op::Dump => {
                let entries = self
                    .applied
                    .iter()
                    .enumerate()
                    .map(|(i, u)| DumpEntry {
                        index: i as u64 + 1,
                        term: 0,
                        command: u.command(),
                        origin: None,
                        digest: None,
                    })
                    .collect();
                Response::ok(
                    0,
                    crate::dump_json(&self.cfg.id, entries, self.kv.to_json()),
                )
            }
        }
    }
}

impl Protocol for Lww {
    type Msg = Update;
    type Record = Update;

    fn recover(cfg: CoreConfig, records: Vec<Update>) -> Self {
        let mut core = Lww {
            cfg,
            now_ms: 0,
            kv: KvState::new(),
            stamps: BTreeMap::new(),
            applied: Vec::new(),
            rejected: Rejections::default(),
        };
        for r in &records {
            core.apply(r);
        }
        core
    }

    fn step(&mut self, input: Input<Update>, out: &mut Output<Update, Update>) {
        match input {
            Input::Tick { now_ms } => self.now_ms = now_ms,
            Input::Peer { from, msg } => {
                if let Err(why) = self.validate(&from, &msg) {
                    self.rejected.reject(&self.cfg.id, &from, &msg, why);
                } else if self.apply(&msg) {
                    out.persist.push(msg);
                }
            }
            Input::Client { token, op } => {
                let resp = self.client(op, out);
                out.reply.push((token, resp));
            }
            Input::Signed { token, .. } => sunder_core::protocol::refuse_signed(token, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sunder_core::ReqToken;

    fn core(id: &str) -> Lww {
        let cfg = CoreConfig {
            id: id.into(),
            members: vec!["n1".into(), "n2".into(), "n3".into()],
            bugs: vec![],
            opts: Default::default(),
            seed: 0,
            tick_ms: 10,
            byzantine: None,
        };
        Lww::recover(cfg, vec![])
    }

    fn step(c: &mut Lww, input: Input<Update>) -> Output<Update, Update> {
        let mut out = Output::default();
        c.step(input, &mut out);
        out
    }

    fn client(c: &mut Lww, id: u64, op: Op) -> Output<Update, Update> {
        step(
            c,
            Input::Client {
                token: ReqToken { conn: 1, id },
                op,
            },
        )
    }

    #[test]
    fn write_replicates_persists_and_replies() {
        let mut a = core("n1");
        step(&mut a, Input::Tick { now_ms: 100 });
        let out = client(
            &mut a,
            1,
            Op::Write {
                key: "k".into(),
                value: 5,
            },
        );
        assert_eq!(out.persist.len(), 1);
        assert_eq!(
            out.send.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            vec!["n2", "n3"]
        );
        assert!(out.reply[0].1.ok);
        let mut b = core("n2");
        let u = out.send[0].1.clone();
        let out = step(
            &mut b,
            Input::Peer {
                from: "n1".into(),
                msg: u,
            },
        );
        assert_eq!(out.persist.len(), 1);
        assert!(out.send.is_empty() && out.reply.is_empty());
        let r = client(&mut b, 2, Op::Read { key: "k".into() });
        assert_eq!(r.reply[0].1.value, json!(5));
    }

    #[test]
    fn last_writer_wins_by_stamp_and_sets_union() {
        let mut a = core("n1");
        step(&mut a, Input::Tick { now_ms: 100 });
        client(
            &mut a,
            1,
            Op::Write {
                key: "k".into(),
                value: 1,
            },
        );
        // An older remote write loses, a newer one wins, a tie goes to the larger id.
        let older = Update::Set {
            key: "k".into(),
            value: 2,
            ts: 99,
            node: "n3".into(),
        };
        step(
            &mut a,
            Input::Peer {
                from: "n3".into(),
                msg: older,
            },
        );
        assert_eq!(a.kv.read("k"), json!(1));
        let tie = Update::Set {
            key: "k".into(),
            value: 3,
            ts: 100,
            node: "n2".into(),
        };
        step(
            &mut a,
            Input::Peer {
                from: "n2".into(),
                msg: tie,
            },
        );
        assert_eq!(a.kv.read("k"), json!(3));
        client(
            &mut a,
            2,
            Op::Add {
                key: "s".into(),
                value: 4,
            },
        );
        step(
            &mut a,
            Input::Peer {
                from: "n2".into(),
                msg: Update::Add {
                    key: "s".into(),
                    value: 1,
                },
            },
        );
        assert_eq!(a.kv.read("s"), json!([1, 4]));
        // Recovery replays the same records to the same state.
        let records = a.applied.clone();
        let b = Lww::recover(a.cfg.clone(), records);
        assert_eq!(b.kv, a.kv);
    }

    #[test]
    fn cas_checks_the_local_copy() {
        let mut a = core("n1");
        step(&mut a, Input::Tick { now_ms: 1 });
        let out = client(
            &mut a,
            1,
            Op::Cas {
                key: "k".into(),
                from: 0,
                to: 1,
            },
        );
        assert_eq!(out.reply[0].1.error.as_deref(), Some("cas-mismatch"));
        assert!(out.persist.is_empty() && out.send.is_empty());
        client(
            &mut a,
            2,
            Op::Write {
                key: "k".into(),
                value: 0,
            },
        );
        step(&mut a, Input::Tick { now_ms: 2 });
        let out = client(
            &mut a,
            3,
            Op::Cas {
                key: "k".into(),
                from: 0,
                to: 1,
            },
        );
        assert!(out.reply[0].1.ok);
        assert_eq!(out.send.len(), 2);
        assert_eq!(a.kv.read("k"), json!(1));
    }

    #[test]
    fn updates_from_strangers_or_with_forged_stamps_are_dropped_and_counted() {
        let mut a = core("n1");
        let set = |ts, node: &str| Update::Set {
            key: "k".into(),
            value: 9,
            ts,
            node: node.into(),
        };
        for (from, u) in [
            ("n9", set(5, "n9")),
            ("n1", set(5, "n1")),
            ("n2", set(5, "n3")),
            ("n2", set(MAX_NUMBER + 1, "n2")),
            (
                "",
                Update::Add {
                    key: "s".into(),
                    value: 1,
                },
            ),
        ] {
            let out = step(
                &mut a,
                Input::Peer {
                    from: from.into(),
                    msg: u,
                },
            );
            assert!(out.persist.is_empty() && out.send.is_empty());
        }
        assert_eq!(a.rejected(), 5);
        assert_eq!(a.kv.read("k"), serde_json::Value::Null);
        // The same update from the node it names is applied.
        let out = step(
            &mut a,
            Input::Peer {
                from: "n2".into(),
                msg: set(MAX_NUMBER, "n2"),
            },
        );
        assert_eq!(out.persist.len(), 1);
        assert_eq!((a.kv.read("k"), a.rejected()), (json!(9), 5));
    }
}
