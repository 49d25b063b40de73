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
//!                                                   impl Network (ProxyNet)  impl Processes
//!                                                   relays cut per link      (controller: kill,
//!                                                   impl Clocks               restart, pause)
//!                                                   (FaketimeClocks: a file per node)
//! ```
//!
//! - [`grudge`]: a partition, as "for each node, the nodes it no longer hears from".
//! - [`shape`]: partition shapes after Jepsen (one, halves, ring, bridge, ...).
//! - [`target`]: which nodes a process fault hits.
//! - [`fault`]: [`FaultKind`], [`FaultSpec`] (intent), [`Fault`] (resolved), [`NemesisOp`].
//! - [`schedule`]: the seeded list of steps.
//! - [`backend`]: the [`Network`] and [`Processes`] traits and the [`Nemesis`] bookkeeper.
//! - [`proxy`]: the unprivileged network backend, a TCP relay per directed pair.
//! - [`clock`]: clock faults (bump, strobe, reset) through libfaketime control files.

pub mod backend;
pub mod clock;
pub mod error;
pub mod fault;
pub mod grudge;
pub mod proxy;
pub mod schedule;
pub mod shape;
pub mod target;

pub use backend::{Nemesis, Network, Processes};
pub use clock::{ClockFault, ClockMode, ClockSpec, Clocks, FaketimeClocks};
pub use error::NemesisError;
pub use fault::{Fault, FaultKind, FaultSpec, NemesisOp};
pub use grudge::Grudge;
pub use proxy::ProxyNet;
pub use schedule::{ScheduleConfig, Step, schedule};
pub use shape::PartitionShape;
pub use target::TargetSpec;

/// A node's name, e.g. `n1`.
pub type NodeId = String;
