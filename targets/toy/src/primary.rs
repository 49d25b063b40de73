//! `primary`: the first member (n1) alone holds the data. It applies each update, makes
//! it durable, and only then answers; every other node forwards requests to it and relays
//! the answer back, timing out with an indefinite `timeout` error after `timeout-ms`
//! (`--opt`, default 1000): the operation may have happened. Linearizable, and
//! unavailable while n1 is down or cut off.
//!
//! Planted bug `volatile`: n1 does not persist its updates, so a kill loses
//! acknowledged writes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sunder_core::kv::{self, KvState};
use sunder_core::{CoreConfig, Input, NodeId, OptKind, OptSpec, Output, Protocol, ReqToken};
use sunder_wire::{DumpEntry, Op, Response, errors};

use crate::boundary::Rejections;

/// Messages between a forwarder and the primary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Msg {
    Forward {
        epoch: u64,
        fid: u64,
        op: Op,
    },
    Reply {
        epoch: u64,
        fid: u64,
        resp: Response,
    },
}

/// The durable record: one update the primary applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub index: u64,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

type Out = Output<Msg, Applied>;

/// A node of the primary target.
#[derive(Debug)]
pub struct Primary {
    cfg: CoreConfig,
    primary: NodeId,
    timeout_ms: u64,
    volatile: bool,
    now_ms: u64,
    kv: KvState,
    log: Vec<Applied>,
    /// This incarnation of the forwarder: its first tick's time. Forward ids restart at
    /// each start, so a reply meant for a previous incarnation (delivered late, after a
    /// restart) must not answer a new request that reuses its id.
    epoch: u64,
    next_fid: u64,
    /// Forwarded requests awaiting the primary's answer: fid → (client, deadline).
    pending: BTreeMap<u64, (ReqToken, u64)>,
    rejected: Rejections,
}

impl Primary {
    fn is_primary(&self) -> bool {
        self.cfg.id == self.primary
    }

    /// The primary's handling of a data operation, wherever it came from.
    fn execute(&mut self, op: Op, origin: String, out: &mut Out) -> Response {
        if !op.is_update() {
            return kv::response(self.kv.apply(&op));
        }
        match self.kv.apply(&op) {
            Ok(v) => {
                let rec = Applied {
                    index: self.log.len() as u64 + 1,
                    op,
                    origin: Some(origin),
                };
                if !self.volatile {
                    out.persist.push(rec.clone());
                }
                self.log.push(rec);
                Response::ok(0, v)
            }
            Err(e) => Response::error(0, e.name(), true),
        }
    }

    fn admin(&self, op: &Op) -> Response {
        let leader = Some(self.primary.as_str());
        if *op == Op::Status {
            let role = if self.is_primary() {
                "primary"
            } else {
                "forwarder"
            };
            return Response::ok(
                0,
                crate::status_json(&self.cfg.id, role, leader, self.log.len() as u64),
            );
        }
        let entries = self
            .log
            .iter()
            .map(|a| DumpEntry {
                index: a.index,
                term: 0,
                command: serde_json::to_value(&a.op).expect("ops serialize"),
                origin: a.origin.clone(),
                digest: None,
            })
            .collect();
        Response::ok(
            0,
            crate::dump_json(&self.cfg.id, entries, self.kv.to_json()),
        )
    }

    fn client(&mut self, token: ReqToken, op: Op, out: &mut Out) {
        if matches!(op, Op::Status | Op::Dump) {
            out.reply.push((token, self.admin(&op)));
        } else if self.is_primary() {
            let origin = format!("{}:{}", token.conn, token.id);
            let resp = self.execute(op, origin, out);
            out.reply.push((token, resp));
        } else {
            let fid = self.next_fid;
            self.next_fid += 1;
            self.pending
                .insert(fid, (token, self.now_ms.saturating_add(self.timeout_ms)));
            out.send.push((
                self.primary.clone(),
                Msg::Forward {
                    epoch: self.epoch,
                    fid,
                    op,
                },
            ));
        }
    }

    /// Why a message from `from` must be dropped, if it must: only members talk to each
    /// other, and only the primary answers forwarded requests (a reply from anyone else
    /// would answer a client with what a stranger made up).
    fn validate(&self, from: &NodeId, msg: &Msg) -> Result<(), &'static str> {
        if *from == self.cfg.id || !self.cfg.members.contains(from) {
            return Err("sender is not a peer");
        }
        if matches!(msg, Msg::Reply { .. }) && *from != self.primary {
            return Err("reply from a node that is not the primary");
        }
        Ok(())
    }

    /// Peer messages dropped at the boundary since start.
    pub fn rejected(&self) -> u64 {
        self.rejected.count()
    }

    fn peer(&mut self, from: NodeId, msg: Msg, out: &mut Out) {
        if let Err(why) = self.validate(&from, &msg) {
            self.rejected.reject(&self.cfg.id, &from, &msg, why);
            return;
        }
        match msg {
            Msg::Forward { epoch, fid, op } => {
                let resp = if self.is_primary() {
                    self.execute(op, format!("{from}/{fid}"), out)
                } else {
                    Response::not_leader(0, Some(self.primary.clone()))
                };
                out.send.push((from, Msg::Reply { epoch, fid, resp }));
            }
            Msg::Reply { epoch, fid, resp } => {
                // A reply after the timeout finds nothing: the client was told `timeout`.
                if epoch != self.epoch {
                    return;
                }
                if let Some((token, _)) = self.pending.remove(&fid) {
                    out.reply.push((token, resp));
                }
            }
        }
    }

    fn tick(&mut self, now_ms: u64, out: &mut Out) {
        if self.epoch == 0 {
            // The monotonic clock keeps rising across restarts on one machine; the run's
            // seed alone would give every incarnation the same epoch.
            self.epoch = now_ms.max(1);
        }
        self.now_ms = now_ms;
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, (_, d))| *d <= now_ms)
            .map(|(f, _)| *f)
            .collect();
        for fid in expired {
            let (token, _) = self.pending.remove(&fid).expect("just listed");
            out.reply
                .push((token, Response::error(0, errors::TIMEOUT, false)));
        }
    }
}

/// The `--opt` keys the primary target accepts: how long n1 waits, in milliseconds.
pub const OPTS: &[OptSpec] = &[OptSpec {
    key: "timeout-ms",
    kind: OptKind::Number,
}];

impl Protocol for Primary {
    type Msg = Msg;
    type Record = Applied;

    fn recover(cfg: CoreConfig, records: Vec<Applied>) -> Self {
        let primary = cfg
            .members
            .first()
            .cloned()
            .unwrap_or_else(|| cfg.id.clone());
        let timeout_ms = sunder_core::opts::value(OPTS, &cfg, "timeout-ms", 1000);
        let volatile = cfg.has_bug("volatile");
        let mut kv = KvState::new();
        for r in &records {
            // Records are updates that succeeded when first applied; replaying them in
            // order on the same state cannot fail.
            kv.apply(&r.op).expect("a recorded update replays");
        }
        Primary {
            cfg,
            primary,
            timeout_ms,
            volatile,
            now_ms: 0,
            kv,
            log: records,
            epoch: 0,
            next_fid: 1,
            pending: BTreeMap::new(),
            rejected: Rejections::default(),
        }
    }

    fn step(&mut self, input: Input<Msg>, out: &mut Out) {
        match input {
            Input::Tick { now_ms } => self.tick(now_ms, out),
            Input::Peer { from, msg } => self.peer(from, msg, out),
            Input::Client { token, op } => self.client(token, op, out),
            Input::Signed { token, .. } => sunder_core::protocol::refuse_signed(token, out),
        }
    }

    fn known_bugs() -> &'static [&'static str] {
        &["volatile"]
    }

    fn accepted_opts() -> &'static [OptSpec] {
        OPTS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn core(id: &str, bugs: &[&str]) -> Primary {
        let cfg = CoreConfig {
            id: id.into(),
            members: vec!["n1".into(), "n2".into(), "n3".into()],
            bugs: bugs.iter().map(|b| b.to_string()).collect(),
            opts: Default::default(),
            seed: 0,
            tick_ms: 10,
            byzantine: None,
        };
        let mut c = Primary::recover(cfg, vec![]);
        c.step(Input::Tick { now_ms: 1000 }, &mut Out::default());
        c
    }

    fn step(c: &mut Primary, input: Input<Msg>) -> Out {
        let mut out = Out::default();
        c.step(input, &mut out);
        out
    }

    fn tok(id: u64) -> ReqToken {
        ReqToken { conn: 1, id }
    }

    #[test]
    fn primary_persists_updates_before_replying() {
        let mut p = core("n1", &[]);
        let out = step(
            &mut p,
            Input::Client {
                token: tok(1),
                op: Op::Write {
                    key: "k".into(),
                    value: 3,
                },
            },
        );
        assert_eq!(
            out.persist,
            vec![Applied {
                index: 1,
                op: Op::Write {
                    key: "k".into(),
                    value: 3
                },
                origin: Some("1:1".into())
            }]
        );
        assert!(out.reply[0].1.ok);
        let out = step(
            &mut p,
            Input::Client {
                token: tok(2),
                op: Op::Read { key: "k".into() },
            },
        );
        assert!(out.persist.is_empty());
        assert_eq!(out.reply[0].1.value, json!(3));
        let out = step(
            &mut p,
            Input::Client {
                token: tok(3),
                op: Op::Cas {
                    key: "k".into(),
                    from: 9,
                    to: 1,
                },
            },
        );
        assert!(out.persist.is_empty());
        assert_eq!(out.reply[0].1.error.as_deref(), Some("cas-mismatch"));
        // Restart from the records: same state.
        let q = Primary::recover(p.cfg.clone(), p.log.clone());
        assert_eq!(q.kv, p.kv);
    }

    #[test]
    fn volatile_bug_skips_persistence() {
        let mut p = core("n1", &["volatile"]);
        let out = step(
            &mut p,
            Input::Client {
                token: tok(1),
                op: Op::Write {
                    key: "k".into(),
                    value: 3,
                },
            },
        );
        assert!(out.persist.is_empty() && out.reply[0].1.ok);
    }

    #[test]
    fn forwarder_relays_and_times_out() {
        let mut f = core("n2", &[]);
        let mut p = core("n1", &[]);
        let out = step(
            &mut f,
            Input::Client {
                token: tok(7),
                op: Op::Add {
                    key: "s".into(),
                    value: 1,
                },
            },
        );
        assert!(out.reply.is_empty());
        let (to, fwd) = out.send[0].clone();
        assert_eq!(to, "n1");
        let out = step(
            &mut p,
            Input::Peer {
                from: "n2".into(),
                msg: fwd,
            },
        );
        assert_eq!(out.persist.len(), 1);
        let (to, reply) = out.send[0].clone();
        assert_eq!(to, "n2");
        let out = step(
            &mut f,
            Input::Peer {
                from: "n1".into(),
                msg: reply,
            },
        );
        assert_eq!(out.reply[0].0, tok(7));
        assert!(out.reply[0].1.ok);

        step(
            &mut f,
            Input::Client {
                token: tok(8),
                op: Op::Read { key: "s".into() },
            },
        );
        assert!(step(&mut f, Input::Tick { now_ms: 1999 }).reply.is_empty());
        let out = step(&mut f, Input::Tick { now_ms: 2000 });
        assert_eq!(out.reply[0].1.error.as_deref(), Some("timeout"));
        assert!(!out.reply[0].1.definite);
        // A reply to the same fid from before a restart answers nothing.
        let mut g = core("n2", &[]);
        g.step(Input::Tick { now_ms: 5000 }, &mut Out::default());
        let mut restarted = Primary::recover(g.cfg.clone(), vec![]);
        restarted.step(Input::Tick { now_ms: 9000 }, &mut Out::default());
        let out = step(
            &mut g,
            Input::Client {
                token: tok(1),
                op: Op::Read { key: "s".into() },
            },
        );
        let Msg::Forward { epoch, fid, .. } = out.send[0].1.clone() else {
            panic!()
        };
        step(
            &mut restarted,
            Input::Client {
                token: tok(2),
                op: Op::Write {
                    key: "s".into(),
                    value: 1,
                },
            },
        );
        let stale = Msg::Reply {
            epoch,
            fid,
            resp: Response::ok(0, json!(42)),
        };
        assert!(
            step(
                &mut restarted,
                Input::Peer {
                    from: "n1".into(),
                    msg: stale.clone()
                }
            )
            .reply
            .is_empty()
        );
        assert_eq!(
            step(
                &mut g,
                Input::Peer {
                    from: "n1".into(),
                    msg: stale
                }
            )
            .reply
            .len(),
            1
        );
        // Status is answered locally.
        let out = step(
            &mut f,
            Input::Client {
                token: tok(9),
                op: Op::Status,
            },
        );
        assert_eq!(out.reply[0].1.value["role"], "forwarder");
        assert_eq!(out.reply[0].1.value["leader"], "n1");
    }

    #[test]
    fn messages_from_strangers_and_replies_not_from_the_primary_are_dropped() {
        let mut p = core("n1", &[]);
        let fwd = Msg::Forward {
            epoch: 1,
            fid: 1,
            op: Op::Write {
                key: "k".into(),
                value: 1,
            },
        };
        for from in ["n9", "n1", ""] {
            let out = step(
                &mut p,
                Input::Peer {
                    from: from.into(),
                    msg: fwd.clone(),
                },
            );
            assert!(out.send.is_empty() && out.persist.is_empty(), "{from}");
        }
        assert_eq!(p.rejected(), 3);
        // A forwarder with a request pending ignores a forged reply from n3.
        let mut f = core("n2", &[]);
        let out = step(
            &mut f,
            Input::Client {
                token: tok(4),
                op: Op::Read { key: "k".into() },
            },
        );
        let Msg::Forward { epoch, fid, .. } = out.send[0].1.clone() else {
            panic!("{out:?}")
        };
        let forged = Msg::Reply {
            epoch,
            fid,
            resp: Response::ok(0, json!(666)),
        };
        let out = step(
            &mut f,
            Input::Peer {
                from: "n3".into(),
                msg: forged,
            },
        );
        assert!(out.reply.is_empty());
        assert_eq!(f.rejected(), 1);
        let real = Msg::Reply {
            epoch,
            fid,
            resp: Response::ok(0, json!(1)),
        };
        let out = step(
            &mut f,
            Input::Peer {
                from: "n1".into(),
                msg: real,
            },
        );
        assert_eq!(out.reply[0].1.value, json!(1));
    }
}
