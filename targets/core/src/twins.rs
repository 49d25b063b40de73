//! Twins (Bano et al., "Twins: BFT Systems Made Robust"): a Byzantine node made of two
//! honest cores with one identity and one key. The run gives a node `--byzantine twins`;
//! [`Twins`] then holds the original and its twin, hands every honest peer's messages to
//! one of the two (the upper half of the honest members, by id, talk to the twin, the rest
//! to the original; the other Byzantine members, its allies, to both), ticks both, and
//! sends what each sends to its own side and to the allies, under the one identity. Peers see exactly what two processes behind a partition would show them:
//! equivocation, double votes, and a twin that knows nothing of what the original did,
//! without a line of Byzantine code in the protocol. Clients talk to the original.
//!
//! The original persists as any node does; the twin keeps its state in memory only, so a
//! restart of the node brings the twin back empty (lost internal state, the other thing
//! twins show). A node that is not a twin is its original alone, unchanged.

use crate::protocol::{CoreConfig, Input, NodeId, Output, Protocol};
use std::collections::BTreeSet;

/// The name of the twins mode (`--byzantine-mode twins`), which every core accepts.
pub const MODE: &str = "twins";

/// One identity, two cores.
#[derive(Debug)]
pub struct Twins<P> {
    original: P,
    twin: Option<P>,
    /// The peers whose messages go to the twin.
    to_twin: BTreeSet<NodeId>,
    /// The other Byzantine members: both of the two hear them and talk to them (twins
    /// collude, as Byzantine members do).
    allies: BTreeSet<NodeId>,
}

impl<P: Protocol> Twins<P> {
    /// Builds the original from the records, and, when `config` makes this node a twin,
    /// the twin from none, each with `build` (given a configuration without the Byzantine
    /// part: both are honest code). The twin's generator is seeded apart.
    pub fn build(
        config: CoreConfig,
        records: Vec<P::Record>,
        build: impl Fn(CoreConfig, Vec<P::Record>) -> P,
    ) -> Twins<P> {
        let part = config.byzantine.clone().filter(|b| b.mode == MODE);
        // The two cores of a twin are honest code; any other Byzantine part (a behaviour
        // the core acts out itself) passes through to the one core.
        let mut honest = config.clone();
        if part.is_some() {
            honest.byzantine = None;
        }
        let to_twin = match &part {
            Some(b) => {
                let others: Vec<&NodeId> = config
                    .members
                    .iter()
                    .filter(|m| **m != config.id && !b.allies.contains(m))
                    .collect();
                others[others.len() / 2..]
                    .iter()
                    .map(|m| (*m).clone())
                    .collect()
            }
            None => BTreeSet::new(),
        };
        let allies = part
            .as_ref()
            .map(|b| b.allies.iter().cloned().collect())
            .unwrap_or_default();
        let twin = part.map(|_| {
            let mut c = honest.clone();
            c.seed ^= 0x7717_5e3d_7717_5e3d;
            build(c, Vec::new())
        });
        Twins {
            original: build(honest, records),
            twin,
            to_twin,
            allies,
        }
    }

    pub fn original(&self) -> &P {
        &self.original
    }

    pub fn is_twin(&self) -> bool {
        self.twin.is_some()
    }

    /// The peers whose messages the twin gets.
    pub fn twin_peers(&self) -> &BTreeSet<NodeId> {
        &self.to_twin
    }
}

impl<P: Protocol> Protocol for Twins<P>
where
    P::Msg: Clone,
{
    type Msg = P::Msg;
    type Record = P::Record;

    fn recover(config: CoreConfig, records: Vec<P::Record>) -> Self {
        Twins::build(config, records, P::recover)
    }

    fn recovered_vote(&self) -> Option<(u64, Option<String>)> {
        self.original.recovered_vote()
    }

    fn prepare(&mut self, inputs: &[Input<P::Msg>]) {
        // A hint only: both halves may look at everything (each steps its own share).
        self.original.prepare(inputs);
        if let Some(twin) = &mut self.twin {
            twin.prepare(inputs);
        }
    }

    fn step(&mut self, input: Input<P::Msg>, out: &mut Output<P::Msg, P::Record>) {
        let Some(twin) = &mut self.twin else {
            return self.original.step(input, out);
        };
        let mut t = Output::default();
        match input {
            Input::Tick { now_ms } => {
                self.original.step(Input::Tick { now_ms }, out);
                twin.step(Input::Tick { now_ms }, &mut t);
            }
            Input::Peer { from, msg } if self.to_twin.contains(&from) => {
                twin.step(Input::Peer { from, msg }, &mut t);
            }
            Input::Peer { from, msg } if self.allies.contains(&from) => {
                twin.step(
                    Input::Peer {
                        from: from.clone(),
                        msg: msg.clone(),
                    },
                    &mut t,
                );
                self.original.step(Input::Peer { from, msg }, out);
            }
            input => self.original.step(input, out),
        }
        // Each of the two talks to its own side (and to the allies) only, as behind a
        // partition.
        out.send.retain(|(to, _)| !self.to_twin.contains(to));
        out.send.extend(
            t.send
                .into_iter()
                .filter(|(to, _)| self.to_twin.contains(to) || self.allies.contains(to)),
        );
    }

    fn known_bugs() -> &'static [&'static str] {
        P::known_bugs()
    }

    fn byzantine_modes() -> &'static [&'static str] {
        P::byzantine_modes()
    }

    fn accepted_opts() -> &'static [crate::OptSpec] {
        P::accepted_opts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Byzantine;

    /// A core that answers every message and tick with a message to every peer, naming
    /// how many inputs it has seen.
    #[derive(Debug)]
    struct Echo {
        id: NodeId,
        members: Vec<NodeId>,
        seen: u64,
        byzantine: Option<Byzantine>,
    }

    impl Protocol for Echo {
        type Msg = u64;
        type Record = u64;
        fn recover(c: CoreConfig, records: Vec<u64>) -> Self {
            Echo {
                id: c.id,
                members: c.members,
                seen: records.len() as u64,
                byzantine: c.byzantine,
            }
        }
        fn step(&mut self, _input: Input<u64>, out: &mut Output<u64, u64>) {
            self.seen += 1;
            out.persist.push(self.seen);
            for m in &self.members {
                if *m != self.id {
                    out.send.push((m.clone(), self.seen));
                }
            }
        }
    }

    fn config(byzantine: Option<&str>) -> CoreConfig {
        CoreConfig {
            id: "n1".into(),
            members: (1..=5).map(|i| format!("n{i}")).collect(),
            bugs: Vec::new(),
            opts: Default::default(),
            seed: 1,
            tick_ms: 10,
            byzantine: byzantine.map(|m| Byzantine {
                mode: m.into(),
                allies: Vec::new(),
            }),
        }
    }

    fn peer(from: &str) -> Input<u64> {
        Input::Peer {
            from: from.into(),
            msg: 0,
        }
    }

    #[test]
    fn each_twin_hears_and_talks_to_its_own_half() {
        let mut t = Twins::<Echo>::recover(config(Some(MODE)), vec![7, 7]);
        assert!(t.is_twin());
        assert_eq!(t.original().byzantine, None, "both cores are honest code");
        let half: Vec<&str> = t.twin_peers().iter().map(String::as_str).collect();
        assert_eq!(half, ["n4", "n5"]);
        // n2 talks to the original (which recovered 2 records), n4 to the twin (none).
        let mut out = Output::default();
        t.step(peer("n2"), &mut out);
        assert_eq!(out.send, vec![("n2".into(), 3), ("n3".into(), 3)]);
        assert_eq!(out.persist, vec![3], "the original persists");
        let mut out = Output::default();
        t.step(peer("n4"), &mut out);
        assert_eq!(out.send, vec![("n4".into(), 1), ("n5".into(), 1)]);
        assert!(out.persist.is_empty(), "the twin keeps nothing on disk");
        // A tick reaches both; each speaks to its side.
        let mut out = Output::default();
        t.step(Input::Tick { now_ms: 1 }, &mut out);
        assert_eq!(
            out.send,
            vec![
                ("n2".into(), 4),
                ("n3".into(), 4),
                ("n4".into(), 2),
                ("n5".into(), 2)
            ]
        );
    }

    #[test]
    fn a_node_that_is_not_a_twin_is_its_original_alone() {
        for mode in [None, Some("silent")] {
            let mut t = Twins::<Echo>::recover(config(mode), Vec::new());
            assert!(!t.is_twin());
            // A behaviour the core acts out itself reaches it unchanged.
            assert_eq!(
                t.original().byzantine.as_ref().map(|b| b.mode.as_str()),
                mode
            );
            let mut out = Output::default();
            t.step(peer("n4"), &mut out);
            assert_eq!(out.send.len(), 4, "everyone hears the one core");
        }
    }
}
