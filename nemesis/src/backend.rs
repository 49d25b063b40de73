//! The two small traits faults are carried out through, and [`Nemesis`], which keeps track
//! of what is in force so that everything can be undone at the end.

use crate::{ClockFault, Clocks, Fault, FaultKind, Grudge, Loss, NemesisError, NodeId};
use std::collections::BTreeMap;

/// A network backend: cuts the links a grudge names, or all of none.
pub trait Network {
    /// Replaces the current partition (if any) with this one.
    fn partition(&mut self, grudge: &Grudge) -> Result<(), NemesisError>;
    /// Every link works again.
    fn heal(&mut self) -> Result<(), NemesisError>;
    /// Replaces the packet loss in force (if any) with this one. Only backends that see
    /// packets can do it; the others say so.
    fn loss(&mut self, loss: &Loss) -> Result<(), NemesisError> {
        let _ = loss;
        Err(NemesisError::NotApplicable(
            "packet loss needs --net netns".into(),
        ))
    }
    /// No packet is dropped at random any more.
    fn loss_stop(&mut self) -> Result<(), NemesisError> {
        Ok(())
    }
}

/// So that the controller can pick a backend at run time.
impl<T: Network + ?Sized> Network for Box<T> {
    fn partition(&mut self, grudge: &Grudge) -> Result<(), NemesisError> {
        (**self).partition(grudge)
    }
    fn heal(&mut self) -> Result<(), NemesisError> {
        (**self).heal()
    }
    fn loss(&mut self, loss: &Loss) -> Result<(), NemesisError> {
        (**self).loss(loss)
    }
    fn loss_stop(&mut self) -> Result<(), NemesisError> {
        (**self).loss_stop()
    }
}

/// Process faults, carried out by whoever owns the node processes (the controller).
pub trait Processes {
    /// SIGKILL the nodes' process groups.
    fn kill(&mut self, nodes: &[NodeId]) -> Result<(), NemesisError>;
    /// Start killed nodes again, on the same data directory and ports.
    fn restart(&mut self, nodes: &[NodeId]) -> Result<(), NemesisError>;
    /// SIGSTOP.
    fn pause(&mut self, nodes: &[NodeId]) -> Result<(), NemesisError>;
    /// SIGCONT.
    fn resume(&mut self, nodes: &[NodeId]) -> Result<(), NemesisError>;
}

/// Applies faults through the backends and remembers those in force.
pub struct Nemesis<N, P> {
    pub net: N,
    pub procs: P,
    /// Optional: only runs with clock faults have a clock backend.
    clocks: Option<Box<dyn Clocks + Send>>,
    active: BTreeMap<FaultKind, Fault>,
}

impl<N: Network, P: Processes> Nemesis<N, P> {
    pub fn new(net: N, procs: P) -> Self {
        Nemesis {
            net,
            procs,
            clocks: None,
            active: BTreeMap::new(),
        }
    }

    /// Adds the backend clock faults go through; without one they fail (and say so).
    pub fn with_clocks(mut self, clocks: Box<dyn Clocks + Send>) -> Self {
        self.clocks = Some(clocks);
        self
    }

    fn clocks(&mut self) -> Result<&mut (dyn Clocks + Send + 'static), NemesisError> {
        self.clocks.as_deref_mut().ok_or_else(|| {
            NemesisError::NotApplicable("no clock backend (libfaketime) in this run".into())
        })
    }

    /// Faults in force now, for the progress line.
    pub fn active(&self) -> impl Iterator<Item = &Fault> {
        self.active.values()
    }

    /// Starts a fault. A fault of the same kind already in force is undone first so that
    /// nothing is lost track of (a second kill must not forget the first victims).
    pub fn start(&mut self, fault: Fault) -> Result<(), NemesisError> {
        if self.active.contains_key(&fault.kind()) {
            self.stop(fault.kind())?;
        }
        match &fault {
            Fault::Partition(g) => self.net.partition(g)?,
            Fault::Kill(n) => self.procs.kill(n)?,
            Fault::Pause(n) => self.procs.pause(n)?,
            Fault::Clock(c) => self.clocks()?.apply(c)?,
            Fault::Loss(l) => self.net.loss(l)?,
        }
        self.active.insert(fault.kind(), fault);
        Ok(())
    }

    /// Undoes the fault of this kind in force, returning it (`None` if there was none).
    /// On error the fault stays recorded as active so that `heal_all` tries again.
    pub fn stop(&mut self, kind: FaultKind) -> Result<Option<Fault>, NemesisError> {
        let Some(fault) = self.active.get(&kind) else {
            return Ok(None);
        };
        match fault {
            Fault::Partition(_) => self.net.heal()?,
            Fault::Kill(n) => self.procs.restart(n)?,
            Fault::Pause(n) => self.procs.resume(n)?,
            Fault::Loss(_) => self.net.loss_stop()?,
            Fault::Clock(c) => {
                let nodes = c.nodes();
                let clocks = self.clocks()?;
                clocks.reset_all()?;
                // what was undone, as the history records it: those nodes back at 0
                return Ok(self
                    .active
                    .remove(&kind)
                    .map(|_| Fault::Clock(ClockFault::Reset(nodes))));
            }
        }
        Ok(self.active.remove(&kind))
    }

    /// Undoes everything in force; clocks and pauses first (a paused node cannot be healed into
    /// health), then kills, then the network (loss, then partitions). Returns what was undone and what failed.
    pub fn heal_all(&mut self) -> Vec<(FaultKind, Result<Option<Fault>, NemesisError>)> {
        let mut out = Vec::new();
        for k in [
            FaultKind::Clock,
            FaultKind::Pause,
            FaultKind::Kill,
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

    #[derive(Default)]
    struct Log(Vec<String>);

    impl Network for Log {
        fn partition(&mut self, g: &Grudge) -> Result<(), NemesisError> {
            self.0.push(format!("partition {}", g.links().len()));
            Ok(())
        }
        fn heal(&mut self) -> Result<(), NemesisError> {
            self.0.push("heal".into());
            Ok(())
        }
    }

    impl Processes for Log {
        fn kill(&mut self, n: &[NodeId]) -> Result<(), NemesisError> {
            self.0.push(format!("kill {n:?}"));
            Ok(())
        }
        fn restart(&mut self, n: &[NodeId]) -> Result<(), NemesisError> {
            self.0.push(format!("restart {n:?}"));
            Ok(())
        }
        fn pause(&mut self, n: &[NodeId]) -> Result<(), NemesisError> {
            self.0.push(format!("pause {n:?}"));
            Ok(())
        }
        fn resume(&mut self, n: &[NodeId]) -> Result<(), NemesisError> {
            self.0.push(format!("resume {n:?}"));
            Ok(())
        }
    }

    #[test]
    fn heal_all_undoes_everything_once() {
        let mut nem = Nemesis::new(Log::default(), Log::default());
        let mut g = Grudge::default();
        g.cut("n1", "n2");
        nem.start(Fault::Partition(g)).unwrap();
        nem.start(Fault::Kill(vec!["n1".into()])).unwrap();
        nem.start(Fault::Kill(vec!["n2".into()])).unwrap();
        nem.start(Fault::Pause(vec!["n3".into()])).unwrap();
        assert_eq!(nem.active().count(), 3);
        let healed = nem.heal_all();
        assert!(healed.iter().all(|(_, r)| matches!(r, Ok(Some(_)))));
        assert_eq!(nem.active().count(), 0);
        assert!(nem.heal_all().is_empty());
        assert_eq!(nem.net.0, ["partition 1", "heal"]);
        assert_eq!(
            nem.procs.0,
            [
                r#"kill ["n1"]"#,
                r#"restart ["n1"]"#,
                r#"kill ["n2"]"#,
                r#"pause ["n3"]"#,
                r#"resume ["n3"]"#,
                r#"restart ["n2"]"#
            ]
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
        fn apply(&mut self, f: &ClockFault) -> Result<(), NemesisError> {
            self.0.lock().unwrap().push(f.start_f().to_string());
            Ok(())
        }
        fn reset_all(&mut self) -> Result<(), NemesisError> {
            self.0.lock().unwrap().push("reset-all".into());
            Ok(())
        }
    }

    struct Nop;
    impl Network for Nop {
        fn partition(&mut self, _: &Grudge) -> Result<(), NemesisError> {
            Ok(())
        }
        fn heal(&mut self) -> Result<(), NemesisError> {
            Ok(())
        }
    }
    impl Processes for Nop {
        fn kill(&mut self, _: &[NodeId]) -> Result<(), NemesisError> {
            Ok(())
        }
        fn restart(&mut self, _: &[NodeId]) -> Result<(), NemesisError> {
            Ok(())
        }
        fn pause(&mut self, _: &[NodeId]) -> Result<(), NemesisError> {
            Ok(())
        }
        fn resume(&mut self, _: &[NodeId]) -> Result<(), NemesisError> {
            Ok(())
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
        nem.start(bump()).unwrap(); // the first is undone first
        let healed = nem.heal_all();
        assert_eq!(healed.len(), 1);
        let Ok(Some(undone)) = &healed[0].1 else {
            panic!("{healed:?}")
        };
        assert_eq!(undone.start_f(), "clock-reset");
        assert_eq!(undone.value(), serde_json::json!({"n2": 0}));
        assert_eq!(
            *log.0.lock().unwrap(),
            ["clock-bump", "reset-all", "clock-bump", "reset-all"]
        );
    }
}
