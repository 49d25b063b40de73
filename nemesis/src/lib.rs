//! # sunder-nemesis
//!
//! Faults as data, the shapes they take, their seeded schedule, and the backends that
//! carry them out. Knows nothing of protocols or histories: the controller resolves the
//! leader, records each fault in the history and owns the node processes.
//!
//! ```text
//!   ScheduleConfig ──► schedule() ──► [Step { at, Start(FaultSpec) | Stop(FaultKind), seed }]
//!                                              │ at run time, with members + leader
//!                                              ▼
//!                          FaultSpec::resolve() ──► Fault ──► Nemesis::start / stop / heal_all
//!                          (PartitionShape → Grudge,            │                │
//!                           TargetSpec → nodes)                 ▼                ▼
//!                                                   impl Network             impl Processes
//!                                                   ProxyNet: relays cut     (controller: kill,
//!                                                     per link               restart, pause)
//!                                                   NetnsNet: nftables drop
//!                                                     and loss rules in a
//!                                                     namespace per node
//!                                                   impl Clocks
//!                                                   (FaketimeClocks: a file per node)
//!
//!   every backend call answers node by node: Outcome { reached, failed: node → error,
//!   partial: reached node → what did not take effect }
//!   Nemesis keeps in force exactly Fault::restrict(reached); a stop undoes exactly that
//!   and keeps in force what its undo failed on, for heal_all to retry
//! ```
//!
//! History: the controller records each start and stop with the fault's `value` as always
//! and, when it failed on some nodes or took effect only in part on some, its [`Outcome`]
//! as JSON in the event's `error` (`{"reached":[..],"failed":{"n3":"why"}}`, plus
//! `"partial":{"n2":"what not"}` when there is any); see [`outcome`].
//!
//! - [`grudge`]: a partition, as "for each node, the nodes it no longer hears from".
//! - [`shape`]: partition shapes after Jepsen (one, halves, ring, bridge, ...).
//! - [`target`]: which nodes a process fault hits.
//! - [`fault`]: [`FaultKind`], [`FaultSpec`] (intent), [`Fault`] (resolved), [`NemesisOp`].
//! - [`schedule`]: the seeded list of steps.
//! - [`backend`]: the [`Network`] and [`Processes`] traits and the [`Nemesis`] bookkeeper.
//! - [`outcome`]: [`Outcome`], where one operation took effect and where it failed.
//! - [`loss`]: random packet loss ([`LossSpec`] intended, [`Loss`] resolved).
//! - [`proxy`]: the unprivileged network backend, a TCP relay per directed pair.
//! - [`netns`]: the root network backend: a namespace per node on a private bridge,
//!   partitions and loss as nftables rules, teardown on every path, leftovers for
//!   `sunder clean`.
//! - [`clock`]: clock faults (bump, strobe, reset) through libfaketime control files.
//! - [`disk`]: disk faults (lose-unsynced, torn-write, corrupt) through the [`Disks`]
//!   backend the controller provides (its node processes and their `sunder-diskfs` mounts).

pub mod backend;
pub mod clock;
pub mod disk;
pub mod error;
pub mod fault;
pub mod grudge;
pub mod loss;
pub mod netns;
pub mod outcome;
pub mod proxy;
pub mod schedule;
pub mod shape;
pub mod target;

pub use backend::{Applied, Nemesis, Network, Processes};
pub use clock::{ClockFault, ClockMode, ClockSpec, Clocks, FaketimeClocks};
pub use disk::{DiskFault, DiskMode, DiskSpec, Disks};
pub use error::NemesisError;
pub use fault::{Fault, FaultKind, FaultSpec, NemesisOp};
pub use grudge::Grudge;
pub use loss::{Loss, LossSpec};
pub use netns::NetnsNet;
pub use outcome::Outcome;
pub use proxy::ProxyNet;
pub use schedule::{FaultLengths, LEADER_WEIGHT, ScheduleConfig, Step, schedule};
pub use shape::PartitionShape;
pub use target::TargetSpec;

/// A node's name, e.g. `n1`.
pub type NodeId = String;
