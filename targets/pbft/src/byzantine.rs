//! The Byzantine behaviours a run can give up to f replicas (`--byzantine-mode`). A liar
//! runs the honest core and distorts what it sends, after every step: the protocol code
//! stays honest, and a behaviour is a pure function of the outgoing messages, the liar's
//! own key, what it has heard and its seeded generator.
//!
//! | mode | what the liar's peers receive |
//! |---|---|
//! | `equivocate` | its pre-prepares, prepares and commits, true to its allies and to one half of the honest replicas, and for a null batch (empty, its digest) to the other half: two pre-prepares for one slot from a faulty primary, double votes from a faulty backup |
//! | `silent` | nothing (its clients still get its replies) |
//! | `corrupt-digest` | its pre-prepares, prepares, commits and checkpoints with a digest bit flipped, validly signed |
//! | `forge` | its messages (but its status) claiming another replica as their sender (it cannot sign as one); its catch-up answers (commit certificates, state) altered inside, other replicas' signatures and all |
//! | `replay` | its messages, and now and then an old message it sent or heard, again |
//! | `mix` | each step's messages distorted by one of the five, drawn afresh |
//!
//! Allies collude: an equivocating liar tells its allies the truth, so f+1 liars (one more
//! than PBFT tolerates) can make two halves of the honest replicas commit different batches
//! at one sequence number, which is how a run shows that the bound is tight.

use crate::core::Out;
use crate::crypto::{Keys, digest_of};
use crate::msg::{Body, Req, Signed};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeSet, VecDeque};
use sunder_core::{Byzantine, NodeId};
use sunder_wire::Op;

/// Names accepted by `--byzantine-mode` (and `sunder node pbft --byzantine`).
pub const MODES: &[&str] = &[
    "equivocate",
    "silent",
    "corrupt-digest",
    "forge",
    "replay",
    "mix",
];

/// Old messages a replaying liar keeps.
const REPLAY_KEPT: usize = 256;

/// One Byzantine behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Equivocate,
    Silent,
    CorruptDigest,
    Forge,
    Replay,
    /// Each step one of the five above, drawn by the liar's generator.
    Mix,
}

impl Behaviour {
    pub fn parse(name: &str) -> Option<Behaviour> {
        Some(match name {
            "equivocate" => Behaviour::Equivocate,
            "silent" => Behaviour::Silent,
            "corrupt-digest" => Behaviour::CorruptDigest,
            "forge" => Behaviour::Forge,
            "replay" => Behaviour::Replay,
            "mix" => Behaviour::Mix,
            _ => return None,
        })
    }
}

/// A Byzantine replica's lying part.
#[derive(Debug)]
pub(crate) struct Liar {
    behaviour: Behaviour,
    me: u32,
    members: Vec<NodeId>,
    /// Honest replicas told the null version of an equivocation: the upper half of those
    /// that are not allies.
    deceived: BTreeSet<u32>,
    rng: ChaCha8Rng,
    /// Messages sent and heard, for replays.
    seen: VecDeque<Signed>,
    /// Messages distorted, dropped or replayed so far (`lies` in `status`).
    pub(crate) lies: u64,
}

impl Liar {
    /// The liar for `part`, or `None` for a mode this core does not know (the runtime and
    /// the controller refuse those before a core is built).
    pub(crate) fn new(part: &Byzantine, me: u32, members: &[NodeId], seed: u64) -> Option<Liar> {
        let behaviour = Behaviour::parse(&part.mode)?;
        let honest: Vec<u32> = (0..members.len() as u32)
            .filter(|&i| i != me && !part.allies.contains(&members[i as usize]))
            .collect();
        let deceived = honest[honest.len() / 2..].iter().copied().collect();
        Some(Liar {
            behaviour,
            me,
            members: members.to_vec(),
            deceived,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x00b1_a50f_11a5),
            seen: VecDeque::new(),
            lies: 0,
        })
    }

    /// Remembers a message heard from a peer (for replays).
    pub(crate) fn heard(&mut self, s: &Signed) {
        if matches!(self.behaviour, Behaviour::Replay | Behaviour::Mix) {
            self.keep(s.clone());
        }
    }

    fn keep(&mut self, s: Signed) {
        if self.seen.len() == REPLAY_KEPT {
            self.seen.pop_front();
        }
        self.seen.push_back(s);
    }

    /// Distorts what one step of the honest core would send.
    pub(crate) fn distort(&mut self, keys: &Keys, out: &mut Out) {
        let behaviour = match self.behaviour {
            Behaviour::Mix => [
                Behaviour::Equivocate,
                Behaviour::Silent,
                Behaviour::CorruptDigest,
                Behaviour::Forge,
                Behaviour::Replay,
            ][self.rng.random_range(0..5)],
            b => b,
        };
        match behaviour {
            Behaviour::Silent => {
                self.lies += out.send.len() as u64;
                out.send.clear();
            }
            Behaviour::Equivocate => {
                for (to, s) in &mut out.send {
                    let deceived = self
                        .members
                        .iter()
                        .position(|m| m == to)
                        .is_some_and(|i| self.deceived.contains(&(i as u32)));
                    if deceived
                        && s.from == self.me
                        && let Some(body) = null_version(&s.body)
                    {
                        *s = keys.sign(body);
                        self.lies += 1;
                    }
                }
            }
            Behaviour::CorruptDigest => {
                for (_, s) in &mut out.send {
                    if s.from != self.me {
                        continue;
                    }
                    let mut body = s.body.clone();
                    if let Body::PrePrepare { digest, .. }
                    | Body::Prepare { digest, .. }
                    | Body::Commit { digest, .. }
                    | Body::Checkpoint { digest, .. } = &mut body
                    {
                        digest[31] ^= 1;
                        *s = keys.sign(body);
                        self.lies += 1;
                    }
                }
            }
            Behaviour::Forge => {
                let n = self.members.len() as u32;
                for (_, s) in &mut out.send {
                    let forged = -self.rng.random_range(1..1000i64);
                    if s.from == self.me
                        && let Some(body) = forge_nested(&s.body, forged)
                    {
                        // Catch-up answers carry other replicas' signed messages: the liar
                        // alters them and signs only the envelope, which is its own.
                        *s = keys.sign(body);
                        self.lies += 1;
                    } else if n > 1 && !asks_or_tells_progress(&s.body) {
                        // Its status goes out true, so that peers behind ask it to catch
                        // them up, and so do its own requests to catch up: a forger that
                        // fell behind and could never catch up would have nothing left to
                        // answer with.
                        s.from = (self.me + self.rng.random_range(1..n)) % n;
                        self.lies += 1;
                    }
                }
            }
            Behaviour::Replay => {
                for (_, s) in &out.send {
                    if s.from == self.me {
                        self.seen.push_back(s.clone());
                        if self.seen.len() > REPLAY_KEPT {
                            self.seen.pop_front();
                        }
                    }
                }
                if !self.seen.is_empty() && self.members.len() > 1 && self.rng.random_bool(0.25) {
                    let old = self.seen[self.rng.random_range(0..self.seen.len())].clone();
                    let n = self.members.len() as u32;
                    let to = (self.me + self.rng.random_range(1..n)) % n;
                    out.send.push((self.members[to as usize].clone(), old));
                    self.lies += 1;
                }
            }
            Behaviour::Mix => unreachable!("drawn above"),
        }
    }
}

/// Status and the requests to catch up, which a forger keeps true.
fn asks_or_tells_progress(body: &Body) -> bool {
    matches!(
        body,
        Body::Status { .. }
            | Body::Fetch { .. }
            | Body::FetchState { .. }
            | Body::FetchNewView { .. }
    )
}

/// A catch-up answer (commit certificates, or a transferred state) with other contents:
/// a write of `forged` in the first certificate's batch, or in the state, and every digest
/// the nested messages carry made to match. The nested signatures, other replicas', no
/// longer verify: a replica that checks them refuses the answer.
fn forge_nested(body: &Body, forged: i64) -> Option<Body> {
    let mut body = body.clone();
    match &mut body {
        Body::Certs { certs } => {
            let c = certs.first_mut()?;
            let Body::PrePrepare { digest, batch, .. } = &mut c.pre_prepare.body else {
                return None;
            };
            let req = batch.first_mut()?;
            let key = req.op.key().unwrap_or("k0").to_string();
            req.op = Op::Write { key, value: forged };
            *digest = digest_of(&*batch);
            let d = *digest;
            for cm in &mut c.commits {
                if let Body::Commit { digest, .. } = &mut cm.body {
                    *digest = d;
                }
            }
        }
        Body::State { snapshot, proof } => {
            snapshot.kv["k0"] = serde_json::json!(forged);
            let d = digest_of(&*snapshot);
            for p in proof {
                if let Body::Checkpoint { digest, .. } = &mut p.body {
                    *digest = d;
                }
            }
        }
        _ => return None,
    }
    Some(body)
}

/// The other story an equivocator tells: the same slot for a null batch.
fn null_version(body: &Body) -> Option<Body> {
    let null = digest_of(&Vec::<Req>::new());
    Some(match body {
        Body::PrePrepare { view, seq, .. } => Body::PrePrepare {
            view: *view,
            seq: *seq,
            digest: null,
            batch: Vec::new(),
        },
        Body::Prepare { view, seq, .. } => Body::Prepare {
            view: *view,
            seq: *seq,
            digest: null,
        },
        Body::Commit { view, seq, .. } => Body::Commit {
            view: *view,
            seq: *seq,
            digest: null,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sunder_core::Output;

    fn members() -> Vec<NodeId> {
        (1..=4).map(|i| format!("n{i}")).collect()
    }

    fn liar(mode: &str, allies: &[&str]) -> (Liar, Keys) {
        let part = Byzantine {
            mode: mode.into(),
            allies: allies.iter().map(|a| a.to_string()).collect(),
        };
        (
            Liar::new(&part, 0, &members(), 7).unwrap(),
            Keys::derived(0, 4, 0),
        )
    }

    fn prepare_to_all(keys: &Keys) -> Out {
        let mut out = Output::default();
        let s = keys.sign(Body::Prepare {
            view: 0,
            seq: 1,
            digest: [9; 32],
        });
        for m in &members()[1..] {
            out.send.push((m.clone(), s.clone()));
        }
        out
    }

    #[test]
    fn a_forger_alters_what_its_catch_up_answers_carry() {
        let (mut l, keys) = liar("forge", &[]);
        let primary = Keys::derived(1, 4, 0);
        let batch = vec![Req {
            client: 1,
            ts: 1,
            op: Op::Write {
                key: "k1".into(),
                value: 5,
            },
            sig: None,
        }];
        let pp = primary.sign(Body::PrePrepare {
            view: 0,
            seq: 1,
            digest: digest_of(&batch),
            batch,
        });
        let certs = keys.sign(Body::Certs {
            certs: vec![crate::msg::CommitCert {
                pre_prepare: pp.clone(),
                commits: Vec::new(),
            }],
        });
        let mut out: Out = Output::default();
        out.send.push(("n2".into(), certs));
        l.distort(&keys, &mut out);
        let s = &out.send[0].1;
        assert!(
            keys.verify(s),
            "the envelope is the liar's own, validly signed"
        );
        let Body::Certs { certs } = &s.body else {
            panic!("{s:?}")
        };
        let nested = &certs[0].pre_prepare;
        assert_ne!(nested.body, pp.body, "the batch was altered");
        assert!(
            !primary.verify(nested),
            "the primary's signature no longer holds"
        );
    }

    #[test]
    fn every_mode_parses_and_nothing_else() {
        for m in MODES {
            assert!(Behaviour::parse(m).is_some(), "{m}");
        }
        assert!(Behaviour::parse("honest").is_none());
    }

    #[test]
    fn an_equivocator_tells_its_allies_and_half_the_honest_the_truth() {
        let (mut l, keys) = liar("equivocate", &["n2"]);
        let mut out = prepare_to_all(&keys);
        l.distort(&keys, &mut out);
        let digests: Vec<(String, [u8; 32])> = out
            .send
            .iter()
            .map(|(to, s)| match &s.body {
                Body::Prepare { digest, .. } => {
                    assert!(keys.verify(s), "validly signed");
                    (to.clone(), *digest)
                }
                b => panic!("{b:?}"),
            })
            .collect();
        let null = digest_of(&Vec::<Req>::new());
        assert_eq!(
            digests,
            vec![
                ("n2".to_string(), [9; 32]),
                ("n3".to_string(), [9; 32]),
                ("n4".to_string(), null)
            ]
        );
        assert_eq!(l.lies, 1);
    }

    #[test]
    fn corrupt_forge_silent_and_replay_distort_as_named() {
        let (mut l, keys) = liar("corrupt-digest", &[]);
        let mut out = prepare_to_all(&keys);
        l.distort(&keys, &mut out);
        assert!(out.send.iter().all(|(_, s)| keys.verify(s)
            && matches!(s.body, Body::Prepare { digest, .. } if digest != [9; 32])));

        let (mut l, keys) = liar("forge", &[]);
        let mut out = prepare_to_all(&keys);
        l.distort(&keys, &mut out);
        assert!(out.send.iter().all(|(_, s)| s.from != 0 && !keys.verify(s)));
        // What keeps a forger caught up and asked goes out true.
        let mut out = Output::default();
        for body in [Body::Fetch { from: 3 }, Body::FetchState { seq: 64 }] {
            out.send.push((members()[1].clone(), keys.sign(body)));
        }
        l.distort(&keys, &mut out);
        assert!(out.send.iter().all(|(_, s)| s.from == 0 && keys.verify(s)));

        let (mut l, keys) = liar("silent", &[]);
        let mut out = prepare_to_all(&keys);
        l.distort(&keys, &mut out);
        assert!(out.send.is_empty());
        assert_eq!(l.lies, 3);

        let (mut l, keys) = liar("replay", &[]);
        let mut sent = 0;
        for _ in 0..40 {
            let mut out = prepare_to_all(&keys);
            l.distort(&keys, &mut out);
            sent += out.send.len();
        }
        assert!(sent > 120, "some old messages sent again");
        assert_eq!(sent as u64 - 120, l.lies);
    }
}
