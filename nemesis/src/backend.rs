//! The small traits faults are carried out through, and [`Nemesis`], which keeps track of
//! what is in force so that everything can be undone at the end.
//!
//! A fault aimed at several nodes can take effect on some and fail on others, so every
//! backend operation answers node by node ([`Outcome`]): `Err` means it took effect
//! nowhere. [`Nemesis`] keeps in force exactly the part that took effect, undoes exactly
//! that part, and keeps whatever an undo could not reach in force, for the next stop or
//! `heal_all` to try again.

use crate::{
    ClockFault, Clocks, Disks, Fault, FaultKind, Grudge, Loss, NemesisError, NodeId, Outcome,
};
use std::collections::BTreeMap;

/// A network backend. Partitions and loss are carried out per receiving node (a node's
/// drop rules, or the relays into it): the outcome names those nodes.
pub trait Network {
    /// On each node the grudge names as a receiver ([`Fault::nodes`]), drops what comes
    /// from the nodes it holds a grudge against.
    fn partition(&mut self, grudge: &Grudge) -> Result<Outcome, NemesisError>;
    /// These nodes hear everyone again.
    fn heal(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError>;
    /// Random packet loss on `loss.nodes`. Only backends that see packets can do it; the
    /// others say so.
    fn loss(&mut self, loss: &Loss) -> Result<Outcome, NemesisError> {
        let _ = loss;
        Err(NemesisError::NotApplicable(
            "packet loss needs --net netns".into(),
        ))
    }
    /// These nodes drop nothing at random any more.
    fn loss_stop(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        Ok(Outcome::all(nodes))
    }
}

/// So that the controller can pick a backend at run time.
impl<T: Network + ?Sized> Network for Box<T> {
    fn partition(&mut self, grudge: &Grudge) -> Result<Outcome, NemesisError> {
        (**self).partition(grudge)
    }
    fn heal(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        (**self).heal(nodes)
    }
    fn loss(&mut self, loss: &Loss) -> Result<Outcome, NemesisError> {
        (**self).loss(loss)
    }
    fn loss_stop(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        (**self).loss_stop(nodes)
    }
}

/// Process faults, carried out by whoever owns the node processes (the controller).
pub trait Processes {
    /// SIGKILL the nodes' process groups.
    fn kill(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError>;
    /// Start killed nodes again, on the same data directory and ports.
    fn restart(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError>;
    /// SIGSTOP.
    fn pause(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError>;
    /// SIGCONT.
    fn resume(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError>;
}

/// One start or stop as it happened: the fault it aimed at (for a start, the fault as
/// resolved; for a stop, the part in force it undid, as its stop event records it) and, node
/// by node, where it took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub fault: Fault,
    pub outcome: Outcome,
}

impl Applied {
    /// The history's `value`: the fault's, as before per-node outcomes existed.
    pub fn value(&self) -> serde_json::Value {
        self.fault.value()
    }

    /// The history's `error`: the outcome when some node failed (see [`Outcome`]).
    pub fn error(&self) -> Option<String> {
        self.outcome.error_text()
    }
}

/// Applies faults through the backends and remembers the parts in force.
pub struct Nemesis<N, P> {
    pub net: N,
    pub procs: P,
    /// Optional: only runs with clock faults have a clock backend.
    clocks: Option<Box<dyn Clocks + Send>>,
    /// Optional: only runs with disk faults have a disk backend.
    disks: Option<Box<dyn Disks + Send>>,
    /// Per kind, the part of the last fault that took effect and is not undone yet.
    active: BTreeMap<FaultKind, Fault>,
}

impl<N: Network, P: Processes> Nemesis<N, P> {
    pub fn new(net: N, procs: P) -> Self {
        Nemesis {
            net,
            procs,
            clocks: None,
            disks: None,
            active: BTreeMap::new(),
        }
    }

    /// Adds the backend clock faults go through; without one they fail (and say so).
    pub fn with_clocks(mut self, clocks: Box<dyn Clocks + Send>) -> Self {
        self.clocks = Some(clocks);
        self
    }

    /// Adds the backend disk faults go through; without one they fail (and say so).
    pub fn with_disks(mut self, disks: Box<dyn Disks + Send>) -> Self {
        self.disks = Some(disks);
        self
    }

    fn disks(&mut self) -> Result<&mut (dyn Disks + Send + 'static), NemesisError> {
        self.disks.as_deref_mut().ok_or_else(|| {
            NemesisError::NotApplicable(
                "no disk backend in this run (disk faults need the disk filesystem)".into(),
            )
        })
    }

    fn clocks(&mut self) -> Result<&mut (dyn Clocks + Send + 'static), NemesisError> {
        self.clocks.as_deref_mut().ok_or_else(|| {
            NemesisError::NotApplicable("no clock backend (libfaketime) in this run".into())
        })
    }

    /// The parts of faults in force now, for the progress line.
    pub fn active(&self) -> impl Iterator<Item = &Fault> {
        self.active.values()
    }

    /// Starts a fault and keeps in force the part that took effect. One fault per kind:
    /// while one of this kind is in force (or a remainder an undo could not reach), the new
    /// one is refused whole, so that nothing is lost track of; stop it first.
    pub fn start(&mut self, fault: Fault) -> Result<Applied, NemesisError> {
        if let Some(old) = self.active.get(&fault.kind()) {
            return Err(NemesisError::InForce(format!(
                "a {} fault is still in force on {} (stop it first)",
                fault.kind(),
                old.nodes().join(",")
            )));
        }
        let outcome = match &fault {
            Fault::Partition(g) => self.net.partition(g)?,
            Fault::Kill(n) => self.procs.kill(n)?,
            Fault::Pause(n) => self.procs.pause(n)?,
            Fault::Clock(c) => self.clocks()?.apply(c)?,
            Fault::Loss(l) => self.net.loss(l)?,
            Fault::Disk(d) => self.disks()?.crash(d)?,
        }
        .within(&fault.nodes());
        if !outcome.reached.is_empty() {
            self.active
                .insert(fault.kind(), fault.restrict(&outcome.reached));
        }
        Ok(Applied { fault, outcome })
    }

    /// Undoes the part of the fault of this kind in force (`None` if there is none). What
    /// the undo could not reach stays in force, for `heal_all` to try again; an `Err` (the
    /// undo failed whole) keeps all of it.
    pub fn stop(&mut self, kind: FaultKind) -> Result<Option<Applied>, NemesisError> {
        let Some(fault) = self.active.get(&kind).cloned() else {
            return Ok(None);
        };
        let nodes = fault.nodes();
        let outcome = match &fault {
            Fault::Partition(_) => self.net.heal(&nodes)?,
            Fault::Kill(n) => self.procs.restart(n)?,
            Fault::Pause(n) => self.procs.resume(n)?,
            Fault::Loss(_) => self.net.loss_stop(&nodes)?,
            Fault::Clock(_) => self.clocks()?.reset(&nodes)?,
            Fault::Disk(_) => self.disks()?.restart(&nodes)?,
        }
        .within(&nodes);
        let left: Vec<NodeId> = outcome.failed.keys().cloned().collect();
        if left.is_empty() {
            self.active.remove(&kind);
        } else {
            self.active.insert(kind, fault.restrict(&left));
        }
        // What the undo aimed at, as the history records it (a clock: those nodes back at 0).
        let undone = match fault {
            Fault::Clock(_) => Fault::Clock(ClockFault::Reset(nodes)),
            other => other,
        };
        Ok(Some(Applied {
            fault: undone,
            outcome,
        }))
    }

    /// Undoes everything in force; clocks and pauses first (a paused node cannot be healed into
    /// health), then kills and disk faults (restarts), then the network (loss, then partitions). Returns, per kind, what
    /// was undone and where it failed; what failed stays in force.
    pub fn heal_all(&mut self) -> Vec<(FaultKind, Result<Option<Applied>, NemesisError>)> {
        let mut out = Vec::new();
        for k in [
            FaultKind::Clock,
            FaultKind::Pause,
            FaultKind::Kill,
            FaultKind::LoseUnsynced,
            FaultKind::TornWrite,
            FaultKind::Corrupt,
            FaultKind::Loss,
            FaultKind::Partition,
        ] {
            if self.active.contains_key(&k) {
                out.push((k, self.stop(k)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClockFault, Outcome};
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    /// A fake of every backend: logs what it does node by node, and refuses the nodes in
    /// `fail` (starting a fault) or `undo_fail` (undoing one).
    #[derive(Default, Clone)]
    struct Flaky {
        log: Arc<Mutex<Vec<String>>>,
        fail: Arc<Mutex<BTreeSet<NodeId>>>,
        undo_fail: Arc<Mutex<BTreeSet<NodeId>>>,
    }

    impl Flaky {
        fn failing(node: &str) -> Flaky {
            let f = Flaky::default();
            f.fail.lock().unwrap().insert(node.into());
            f
        }
        fn run(&self, op: &str, undo: bool, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
            let refused = if undo { &self.undo_fail } else { &self.fail };
            let refused = refused.lock().unwrap().clone();
            Ok(Outcome::each(nodes, |n| {
                if refused.contains(n) {
                    Err(format!("{op} refused on {n}"))
                } else {
                    self.log.lock().unwrap().push(format!("{op} {n}"));
                    Ok(())
                }
            }))
        }
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.log.lock().unwrap())
        }
    }

    impl Network for Flaky {
        fn partition(&mut self, g: &Grudge) -> Result<Outcome, NemesisError> {
            self.run("partition", false, &Fault::Partition(g.clone()).nodes())
        }
        fn heal(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
            self.run("heal", true, n)
        }
        fn loss(&mut self, l: &Loss) -> Result<Outcome, NemesisError> {
            self.run("loss", false, &l.nodes)
        }
        fn loss_stop(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
            self.run("loss-stop", true, n)
        }
    }

    impl Processes for Flaky {
        fn kill(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
            self.run("kill", false, n)
        }
        fn restart(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
            self.run("restart", true, n)
        }
        fn pause(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
            self.run("pause", false, n)
        }
        fn resume(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
            self.run("resume", true, n)
        }
    }

    impl Clocks for Flaky {
        fn apply(&mut self, f: &ClockFault) -> Result<Outcome, NemesisError> {
            self.run(f.start_f(), false, &f.nodes())
        }
        fn reset(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
            self.run("clock-reset", true, n)
        }
    }

    fn ids(v: &[&str]) -> Vec<NodeId> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn nemesis(backend: &Flaky) -> Nemesis<Flaky, Flaky> {
        Nemesis::new(backend.clone(), backend.clone()).with_clocks(Box::new(backend.clone()))
    }

    /// One fault of each kind (a strobe too), each aimed at n1, n2 and n3.
    fn every_kind() -> Vec<Fault> {
        let all = ids(&["n1", "n2", "n3"]);
        vec![
            // n1 alone: every node gets a rule, so each can fail on its own
            Fault::Partition(Grudge::complete(&all, &[ids(&["n1"]), ids(&["n2", "n3"])])),
            Fault::Loss(Loss {
                nodes: all.clone(),
                percent: 30,
            }),
            Fault::Kill(all.clone()),
            Fault::Pause(all.clone()),
            Fault::Clock(ClockFault::Bump(
                [("n1".into(), 500), ("n2".into(), -70), ("n3".into(), 9000)].into(),
            )),
            Fault::Clock(ClockFault::Strobe {
                offsets: [
                    ("n1".into(), [0, 50]),
                    ("n2".into(), [0, -20]),
                    ("n3".into(), [0, 8]),
                ]
                .into(),
                period_ms: 5,
                duration_ms: 2000,
            }),
        ]
    }

    fn undo_op(f: &Fault) -> &'static str {
        match f {
            Fault::Clock(_) => "clock-reset",
            other => other.kind().stop_f(),
        }
    }

    #[test]
    fn a_fault_that_fails_on_one_node_keeps_in_force_and_undoes_exactly_the_rest() {
        for fault in every_kind() {
            let backend = Flaky::failing("n3");
            let mut nem = nemesis(&backend);
            let start_op = match &fault {
                Fault::Clock(c) => c.start_f(),
                other => other.kind().start_f(),
            };
            let undo = undo_op(&fault);

            // started: reached n1, n2; failed on n3 with its error
            let applied = nem.start(fault.clone()).unwrap();
            assert_eq!(
                applied.value(),
                fault.value(),
                "the value is the fault as aimed"
            );
            assert_eq!(applied.outcome.reached, ids(&["n1", "n2"]), "{fault:?}");
            assert_eq!(
                applied.outcome.failed,
                [("n3".to_string(), format!("{start_op} refused on n3"))].into()
            );
            let error = applied.error().expect("a failure is recorded");
            assert_eq!(
                Outcome::from_error_text(&error),
                Some(applied.outcome.clone())
            );
            assert_eq!(
                backend.take(),
                [format!("{start_op} n1"), format!("{start_op} n2")]
            );

            // in force: exactly the part that took effect
            let active: Vec<Fault> = nem.active().cloned().collect();
            assert_eq!(active, [fault.restrict(&ids(&["n1", "n2"]))], "{fault:?}");
            assert_eq!(active[0].nodes(), ids(&["n1", "n2"]));

            // its stop undoes exactly that part, and nothing is left in force
            let stopped = nem.stop(fault.kind()).unwrap().unwrap();
            assert!(stopped.outcome.is_complete() && stopped.error().is_none());
            assert_eq!(stopped.fault.nodes(), ids(&["n1", "n2"]));
            assert_eq!(backend.take(), [format!("{undo} n1"), format!("{undo} n2")]);
            assert_eq!(nem.active().count(), 0);

            // heal_all undoes the same part when no stop came
            nem.start(fault.clone()).unwrap();
            backend.take();
            let healed = nem.heal_all();
            assert_eq!(healed.len(), 1, "{fault:?}");
            let Ok(Some(undone)) = &healed[0].1 else {
                panic!("{healed:?}")
            };
            assert_eq!(undone.outcome.reached, ids(&["n1", "n2"]));
            assert_eq!(backend.take(), [format!("{undo} n1"), format!("{undo} n2")]);
            assert_eq!(nem.active().count(), 0);
        }
    }

    #[test]
    fn a_fault_that_fails_everywhere_is_not_in_force() {
        for fault in every_kind() {
            let backend = Flaky::default();
            backend
                .fail
                .lock()
                .unwrap()
                .extend(ids(&["n1", "n2", "n3"]));
            let mut nem = nemesis(&backend);
            let applied = nem.start(fault.clone()).unwrap();
            assert!(applied.outcome.reached.is_empty());
            assert_eq!(applied.outcome.failed.len(), 3);
            assert_eq!(nem.active().count(), 0, "{fault:?}");
            assert!(nem.stop(fault.kind()).unwrap().is_none());
            assert!(backend.take().is_empty());
        }
    }

    #[test]
    fn an_undo_that_fails_on_a_node_keeps_that_part_for_heal_all() {
        for fault in every_kind() {
            let backend = Flaky::default();
            backend.undo_fail.lock().unwrap().insert("n2".into());
            let mut nem = nemesis(&backend);
            assert!(nem.start(fault.clone()).unwrap().outcome.is_complete());
            let undo = undo_op(&fault);
            backend.take();

            let stopped = nem.stop(fault.kind()).unwrap().unwrap();
            assert_eq!(stopped.outcome.reached, ids(&["n1", "n3"]), "{fault:?}");
            assert!(stopped.error().unwrap().contains("refused on n2"));
            let left: Vec<Fault> = nem.active().cloned().collect();
            assert_eq!(left, [fault.restrict(&ids(&["n2"]))]);

            // a new fault of the kind is refused while the remainder is in force
            let e = nem.start(fault.clone()).unwrap_err();
            assert!(matches!(e, NemesisError::InForce(_)), "{e}");
            assert!(e.to_string().contains("on n2"), "{e}");
            assert_eq!(backend.take(), [format!("{undo} n1"), format!("{undo} n3")]);

            // heal_all tries n2 again, says it failed again, and keeps it in force
            let healed = nem.heal_all();
            let Ok(Some(again)) = &healed[0].1 else {
                panic!("{healed:?}")
            };
            assert_eq!(again.fault.nodes(), ids(&["n2"]));
            assert!(again.outcome.reached.is_empty() && again.error().is_some());
            assert_eq!(nem.active().count(), 1);

            // once n2 can be undone, the next heal_all does it and nothing is left
            backend.undo_fail.lock().unwrap().clear();
            let healed = nem.heal_all();
            let Ok(Some(last)) = &healed[0].1 else {
                panic!("{healed:?}")
            };
            assert_eq!(last.outcome.reached, ids(&["n2"]));
            assert_eq!(backend.take(), [format!("{undo} n2")]);
            assert_eq!(nem.active().count(), 0);
            assert!(nem.heal_all().is_empty());
        }
    }

    #[test]
    fn heal_all_undoes_everything_once() {
        let backend = Flaky::default();
        let mut nem = nemesis(&backend);
        let mut g = Grudge::default();
        g.cut("n1", "n2");
        nem.start(Fault::Partition(g)).unwrap();
        nem.start(Fault::Kill(ids(&["n1"]))).unwrap();
        assert!(
            nem.start(Fault::Kill(ids(&["n2"]))).is_err(),
            "one kill at a time"
        );
        nem.stop(FaultKind::Kill).unwrap();
        nem.start(Fault::Kill(ids(&["n2"]))).unwrap();
        nem.start(Fault::Pause(ids(&["n3"]))).unwrap();
        assert_eq!(nem.active().count(), 3);
        let healed = nem.heal_all();
        assert!(healed.iter().all(|(_, r)| matches!(r, Ok(Some(_)))));
        assert_eq!(nem.active().count(), 0);
        assert!(nem.heal_all().is_empty());
        assert_eq!(
            backend.take(),
            [
                "partition n2",
                "kill n1",
                "restart n1",
                "kill n2",
                "pause n3",
                "resume n3",
                "restart n2",
                "heal n2"
            ]
        );
    }

    /// A backend that says more than it was asked, or nothing about a node, is not
    /// believed beyond what it was asked and what it said.
    #[test]
    fn the_bookkeeping_never_claims_more_than_the_backend_said() {
        struct Liar;
        impl Processes for Liar {
            fn kill(&mut self, _: &[NodeId]) -> Result<Outcome, NemesisError> {
                Ok(Outcome {
                    reached: ids(&["n1", "n9"]),
                    ..Outcome::default()
                })
            }
            fn restart(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
                Ok(Outcome::all(n))
            }
            fn pause(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
                Ok(Outcome::all(n))
            }
            fn resume(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
                Ok(Outcome::all(n))
            }
        }
        let mut nem = Nemesis::new(Flaky::default(), Liar);
        let a = nem.start(Fault::Kill(ids(&["n1", "n2"]))).unwrap();
        assert_eq!(a.outcome.reached, ids(&["n1"]));
        assert!(a.outcome.failed["n2"].contains("no outcome"));
        assert_eq!(
            nem.active().cloned().collect::<Vec<_>>(),
            [Fault::Kill(ids(&["n1"]))]
        );
    }
}

#[cfg(test)]
mod clock_tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Default, Clone)]
    struct ClockLog(Arc<Mutex<Vec<String>>>);

    impl Clocks for ClockLog {
        fn apply(&mut self, f: &ClockFault) -> Result<Outcome, NemesisError> {
            self.0.lock().unwrap().push(f.start_f().to_string());
            Ok(Outcome::all(&f.nodes()))
        }
        fn reset(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
            self.0
                .lock()
                .unwrap()
                .push(format!("reset {}", n.join(",")));
            Ok(Outcome::all(n))
        }
    }

    struct Nop;
    impl Network for Nop {
        fn partition(&mut self, g: &Grudge) -> Result<Outcome, NemesisError> {
            Ok(Outcome::all(&Fault::Partition(g.clone()).nodes()))
        }
        fn heal(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
            Ok(Outcome::all(n))
        }
    }
    impl Processes for Nop {
        fn kill(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
            Ok(Outcome::all(n))
        }
        fn restart(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
            Ok(Outcome::all(n))
        }
        fn pause(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
            Ok(Outcome::all(n))
        }
        fn resume(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
            Ok(Outcome::all(n))
        }
    }

    fn bump() -> Fault {
        Fault::Clock(ClockFault::Bump([("n2".to_string(), 700)].into()))
    }

    #[test]
    fn clock_faults_need_a_backend_and_heal_as_a_reset() {
        let mut bare = Nemesis::new(Nop, Nop);
        let e = bare.start(bump()).unwrap_err();
        assert!(e.to_string().contains("libfaketime"), "{e}");
        assert_eq!(bare.active().count(), 0);

        let log = ClockLog::default();
        let mut nem = Nemesis::new(Nop, Nop).with_clocks(Box::new(log.clone()));
        nem.start(bump()).unwrap();
        let healed = nem.heal_all();
        assert_eq!(healed.len(), 1);
        let Ok(Some(undone)) = &healed[0].1 else {
            panic!("{healed:?}")
        };
        assert_eq!(undone.fault.start_f(), "clock-reset");
        assert_eq!(undone.value(), serde_json::json!({"n2": 0}));
        assert_eq!(*log.0.lock().unwrap(), ["clock-bump", "reset n2"]);
    }
}
