//! Faults as data: what the schedule intends ([`FaultSpec`]), what was actually done
//! ([`Fault`], recorded in the history) and their kinds ([`FaultKind`]).

use crate::{
    ClockFault, ClockSpec, DiskFault, DiskMode, DiskSpec, Grudge, Loss, LossSpec, NemesisError,
    NodeId, PartitionShape, TargetSpec,
};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// A family of faults; each has one way to start and one way to undo it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    Partition,
    Kill,
    Pause,
    Clock,
    /// Random packet loss (needs `--net netns`).
    Loss,
    /// Disk faults (see [`crate::disk`]; need the disk filesystem, root).
    LoseUnsynced,
    TornWrite,
    Corrupt,
}

impl FaultKind {
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Partition,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Clock,
        FaultKind::Loss,
        FaultKind::LoseUnsynced,
        FaultKind::TornWrite,
        FaultKind::Corrupt,
    ];

    /// The disk fault of this kind, if it is one.
    pub fn disk_mode(self) -> Option<DiskMode> {
        match self {
            FaultKind::LoseUnsynced => Some(DiskMode::LoseUnsynced),
            FaultKind::TornWrite => Some(DiskMode::TornWrite),
            FaultKind::Corrupt => Some(DiskMode::Corrupt),
            _ => None,
        }
    }

    fn of_disk(mode: DiskMode) -> FaultKind {
        match mode {
            DiskMode::LoseUnsynced => FaultKind::LoseUnsynced,
            DiskMode::TornWrite => FaultKind::TornWrite,
            DiskMode::Corrupt => FaultKind::Corrupt,
        }
    }

    /// The history's `f` for starting a fault of this kind.
    pub fn start_f(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            // the history refines this per mode: see `FaultSpec::start_f`
            FaultKind::Clock => "clock",
            FaultKind::Loss => "loss",
            FaultKind::LoseUnsynced => "lose-unsynced",
            FaultKind::TornWrite => "torn-write",
            FaultKind::Corrupt => "corrupt",
        }
    }

    /// The history's `f` for undoing it.
    pub fn stop_f(self) -> &'static str {
        match self {
            FaultKind::Partition => "heal",
            FaultKind::Kill => "restart",
            FaultKind::Pause => "resume",
            FaultKind::Clock => "clock-reset",
            FaultKind::Loss => "loss-stop",
            FaultKind::LoseUnsynced => "lose-unsynced-restart",
            FaultKind::TornWrite => "torn-write-restart",
            FaultKind::Corrupt => "corrupt-restart",
        }
    }

    /// Parses `--nemesis`: a comma-separated list of kinds (`disk` is all three disk
    /// faults), or `none`.
    pub fn parse_list(s: &str) -> Result<Vec<FaultKind>, NemesisError> {
        let s = s.trim();
        if s.is_empty() || s == "none" {
            return Ok(Vec::new());
        }
        let mut kinds = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let named: Vec<FaultKind> = if part == "disk" {
                DiskMode::ALL.into_iter().map(FaultKind::of_disk).collect()
            } else {
                vec![part.parse()?]
            };
            for k in named {
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
        }
        Ok(kinds)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.start_f())
    }
}

impl FromStr for FaultKind {
    type Err = NemesisError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "partition" => Ok(FaultKind::Partition),
            "kill" => Ok(FaultKind::Kill),
            "pause" => Ok(FaultKind::Pause),
            "clock" => Ok(FaultKind::Clock),
            "loss" => Ok(FaultKind::Loss),
            "lose-unsynced" => Ok(FaultKind::LoseUnsynced),
            "torn-write" => Ok(FaultKind::TornWrite),
            "corrupt" => Ok(FaultKind::Corrupt),
            other => Err(NemesisError::Config(format!(
                "unknown fault {other:?} (expected partition, kill, pause, clock, loss, \
                 lose-unsynced, torn-write, corrupt, disk or none)"
            ))),
        }
    }
}

/// A fault as intended by the schedule, before it meets the cluster (the leader, in
/// particular, is only known at run time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "target", rename_all = "lowercase")]
pub enum FaultSpec {
    Partition(PartitionShape),
    Kill(TargetSpec),
    Pause(TargetSpec),
    Clock(ClockSpec),
    Loss(LossSpec),
    Disk(DiskSpec),
}

impl FaultSpec {
    pub fn kind(self) -> FaultKind {
        match self {
            FaultSpec::Partition(_) => FaultKind::Partition,
            FaultSpec::Kill(_) => FaultKind::Kill,
            FaultSpec::Pause(_) => FaultKind::Pause,
            FaultSpec::Clock(_) => FaultKind::Clock,
            FaultSpec::Loss(_) => FaultKind::Loss,
            FaultSpec::Disk(d) => FaultKind::of_disk(d.mode),
        }
    }

    /// The history's `f` for starting this fault (`clock-bump`, `clock-strobe`, or the
    /// kind's).
    pub fn start_f(self) -> &'static str {
        match self {
            FaultSpec::Clock(c) => c.start_f(),
            other => other.kind().start_f(),
        }
    }

    pub fn needs_leader(self) -> bool {
        match self {
            FaultSpec::Partition(s) => s.needs_leader(),
            FaultSpec::Kill(t) | FaultSpec::Pause(t) => t.needs_leader(),
            FaultSpec::Clock(c) => c.target.needs_leader(),
            FaultSpec::Loss(l) => l.target.needs_leader(),
            FaultSpec::Disk(d) => d.target.needs_leader(),
        }
    }

    /// The concrete fault for these members and this leader.
    pub fn resolve(
        self,
        members: &[NodeId],
        leader: Option<&str>,
        rng: &mut ChaCha8Rng,
    ) -> Result<Fault, NemesisError> {
        Ok(match self {
            FaultSpec::Partition(s) => Fault::Partition(s.grudge(members, leader, rng)?),
            FaultSpec::Kill(t) => Fault::Kill(t.select(members, leader, rng)?),
            FaultSpec::Pause(t) => Fault::Pause(t.select(members, leader, rng)?),
            FaultSpec::Clock(c) => Fault::Clock(c.resolve(members, leader, rng)?),
            FaultSpec::Loss(l) => Fault::Loss(l.resolve(members, leader, rng)?),
            FaultSpec::Disk(d) => Fault::Disk(d.resolve(members, leader, rng)?),
        })
    }
}

/// A concrete fault: what the history records and the backends carry out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Fault {
    Partition(Grudge),
    Kill(Vec<NodeId>),
    Pause(Vec<NodeId>),
    Clock(ClockFault),
    Loss(Loss),
    Disk(DiskFault),
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Partition(_) => FaultKind::Partition,
            Fault::Kill(_) => FaultKind::Kill,
            Fault::Pause(_) => FaultKind::Pause,
            Fault::Clock(_) => FaultKind::Clock,
            Fault::Loss(_) => FaultKind::Loss,
            Fault::Disk(d) => FaultKind::of_disk(d.mode),
        }
    }

    /// The history's `f` for starting this fault.
    pub fn start_f(&self) -> &'static str {
        match self {
            Fault::Clock(c) => c.start_f(),
            other => other.kind().start_f(),
        }
    }

    /// The nodes the fault is carried out on, one by one: for a partition the nodes that
    /// get drop rules (those that stop hearing someone), else the nodes hit.
    pub fn nodes(&self) -> Vec<NodeId> {
        match self {
            Fault::Partition(g) => {
                g.0.iter()
                    .filter(|(_, froms)| !froms.is_empty())
                    .map(|(to, _)| to.clone())
                    .collect()
            }
            Fault::Kill(n) | Fault::Pause(n) => n.clone(),
            Fault::Clock(c) => c.nodes(),
            Fault::Loss(l) => l.nodes.clone(),
            Fault::Disk(d) => d.nodes.clone(),
        }
    }

    /// The part of the fault that concerns `nodes` only (see [`Fault::nodes`]): what is in
    /// force after it half-applied, or what is left after an undo that half-failed.
    pub fn restrict(&self, nodes: &[NodeId]) -> Fault {
        let keep = |n: &NodeId| nodes.contains(n);
        match self {
            Fault::Partition(g) => Fault::Partition(Grudge(
                g.0.iter()
                    .filter(|(to, froms)| keep(to) && !froms.is_empty())
                    .map(|(to, froms)| (to.clone(), froms.clone()))
                    .collect(),
            )),
            Fault::Kill(n) => Fault::Kill(n.iter().filter(|n| keep(n)).cloned().collect()),
            Fault::Pause(n) => Fault::Pause(n.iter().filter(|n| keep(n)).cloned().collect()),
            Fault::Clock(c) => Fault::Clock(c.restrict(nodes)),
            Fault::Loss(l) => Fault::Loss(Loss {
                nodes: l.nodes.iter().filter(|n| keep(n)).cloned().collect(),
                percent: l.percent,
            }),
            Fault::Disk(d) => Fault::Disk(DiskFault {
                nodes: d.nodes.iter().filter(|n| keep(n)).cloned().collect(),
                ..d.clone()
            }),
        }
    }

    /// The history `value`: the grudge map, or the list of nodes hit.
    pub fn value(&self) -> Value {
        match self {
            Fault::Partition(g) => serde_json::to_value(g).expect("a grudge serialises"),
            Fault::Kill(n) | Fault::Pause(n) => serde_json::to_value(n).expect("names serialise"),
            Fault::Clock(c) => c.value(),
            Fault::Loss(l) => l.value(),
            Fault::Disk(d) => d.value(),
        }
    }
}

/// One step of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", content = "fault", rename_all = "lowercase")]
pub enum NemesisOp {
    Start(FaultSpec),
    Stop(FaultKind),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_names_the_three_disk_faults_and_each_has_its_own_history_names() {
        let kinds = FaultKind::parse_list("kill, disk,torn-write").unwrap();
        assert_eq!(
            kinds,
            vec![
                FaultKind::Kill,
                FaultKind::LoseUnsynced,
                FaultKind::TornWrite,
                FaultKind::Corrupt
            ]
        );
        let mut names: Vec<&str> = FaultKind::ALL
            .iter()
            .flat_map(|k| [k.start_f(), k.stop_f()])
            .collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "every start and stop name is unique");
        for k in FaultKind::ALL {
            assert_eq!(k.start_f().parse::<FaultKind>().unwrap(), k);
            let disk = DiskMode::ALL.iter().any(|m| m.name() == k.start_f());
            assert_eq!(k.disk_mode().is_some(), disk, "{k}");
        }
        assert!(FaultKind::parse_list("disks").is_err());
    }
}
