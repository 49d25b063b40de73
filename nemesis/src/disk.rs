//! Disk faults: a node crashes and its disk keeps only what was made durable.
//!
//! Killing a process loses nothing that sat in the page cache, so a process crash cannot
//! tell a node that fsyncs from one that does not. A disk fault can: the node is killed
//! and its data directory, served by a filesystem that holds every unsynced write
//! (`sunder-diskfs`), drops what was never fsynced, as a power cut would; the node stays
//! down until the fault stops, then restarts on what is left.
//!
//! - [`DiskMode::LoseUnsynced`]: everything not fsynced is gone (data and metadata).
//! - [`DiskMode::TornWrite`]: as above, but one file keeps a prefix of its last unsynced
//!   write (a sector-by-sector write cut short).
//! - [`DiskMode::Corrupt`]: a disk that lies: bits flipped in, or the tail cut off, one
//!   file of the node's data (one node or a minority only: a majority of lying disks is
//!   beyond what any of our targets claims to survive).
//!
//! The fault's `seed` (drawn when it is resolved) picks the file torn or corrupted, so a
//! run's seed fixes it.

use crate::{NemesisError, NodeId, Outcome, TargetSpec};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a disk fault does to the nodes it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskMode {
    LoseUnsynced,
    TornWrite,
    Corrupt,
}

impl DiskMode {
    pub const ALL: [DiskMode; 3] = [
        DiskMode::LoseUnsynced,
        DiskMode::TornWrite,
        DiskMode::Corrupt,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DiskMode::LoseUnsynced => "lose-unsynced",
            DiskMode::TornWrite => "torn-write",
            DiskMode::Corrupt => "corrupt",
        }
    }

    /// The targets the schedule draws from: any for lost and torn writes (all at once is
    /// a power cut), one node or a minority for corruption.
    pub fn targets(self) -> &'static [TargetSpec] {
        match self {
            DiskMode::Corrupt => &[TargetSpec::One, TargetSpec::Minority],
            _ => &TargetSpec::ALL,
        }
    }
}

/// A disk fault as the schedule intends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSpec {
    pub mode: DiskMode,
    pub target: TargetSpec,
}

impl DiskSpec {
    pub fn resolve(
        self,
        members: &[NodeId],
        leader: Option<&str>,
        rng: &mut ChaCha8Rng,
    ) -> Result<DiskFault, NemesisError> {
        if !self.mode.targets().contains(&self.target) {
            return Err(NemesisError::Config(format!(
                "{} cannot hit {:?} (one node or a minority only)",
                self.mode.name(),
                self.target
            )));
        }
        Ok(DiskFault {
            mode: self.mode,
            nodes: self.target.select(members, leader, rng)?,
            seed: rng.random(),
        })
    }
}

/// A disk fault in force: these nodes were killed and their disks lost, tore or
/// corrupted data as `mode` says (where the start's outcome names a node as `partial`, its
/// disk did not, or only in part); they restart when it stops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskFault {
    pub mode: DiskMode,
    pub nodes: Vec<NodeId>,
    /// Picks the file torn or corrupted, and how.
    pub seed: u64,
}

impl DiskFault {
    /// The history `value`.
    pub fn value(&self) -> Value {
        json!({ "nodes": self.nodes, "seed": self.seed })
    }
}

/// Carried out by whoever owns the node processes and their mounts (the controller).
pub trait Disks {
    /// Kills each node, then makes its disk lose, tear or corrupt data as the fault says.
    /// A node is reached when it was killed (its restart is then due, whatever its disk
    /// did); one whose disk step failed, or did only part of its work, is also in the
    /// outcome's `partial`, with why.
    fn crash(&mut self, fault: &DiskFault) -> Result<Outcome, NemesisError>;
    /// Starts the nodes again on what their disks kept.
    fn restart(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn corruption_never_reaches_a_majority_and_resolution_is_seeded() {
        let members: Vec<NodeId> = (1..=5).map(|i| format!("n{i}")).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for target in DiskMode::Corrupt.targets() {
            let s = DiskSpec {
                mode: DiskMode::Corrupt,
                target: *target,
            };
            let f = s.resolve(&members, None, &mut rng).unwrap();
            assert!(f.nodes.len() <= 2, "{f:?}");
        }
        let bad = DiskSpec {
            mode: DiskMode::Corrupt,
            target: TargetSpec::All,
        };
        assert!(bad.resolve(&members, None, &mut rng).is_err());
        let s = DiskSpec {
            mode: DiskMode::LoseUnsynced,
            target: TargetSpec::All,
        };
        let a = s.resolve(&members, None, &mut ChaCha8Rng::seed_from_u64(9));
        let b = s.resolve(&members, None, &mut ChaCha8Rng::seed_from_u64(9));
        assert_eq!(a.unwrap(), b.unwrap());
    }
}
