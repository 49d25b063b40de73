//! The contract between a protocol core and the runtime that drives it.
//!
//! A core is a pure state machine: it never reads a clock, never draws an unseeded random
//! number, never touches a socket or a file. The runtime feeds it [`Input`]s (ticks with
//! the local clock, peer messages, client requests) and carries out what it asks for in an
//! [`Output`], in this order:
//!
//! ```text
//!   Input ──► core.step() ──► Output
//!                               │ 1. compact / persist records, then fsync   (durable first)
//!                               │    (if 2-4 have nothing, the fsync waits for the next
//!                               │     step that does: no one has seen these records' effect)
//!                               │ 2. send peer messages
//!                               │ 3. send client replies
//!                               └ 4. write events to the event stream
//! ```
//!
//! Because records are on disk before any message or reply leaves, a core only has to put
//! "persist term and vote" in the same output as the vote reply to get Raft's rule
//! "persist before answering". On restart the runtime reads the records back (a torn last
//! record is dropped, never misread) and hands them to [`Protocol::recover`].
//!
//! **Disk bugs.** Two planted bugs break the runtime's side of this contract rather than
//! a core's, so a target opts into them by listing their names ([`DISK_BUGS`]) in its
//! [`Protocol::known_bugs`]: `no-fsync` (every record written, none ever fsynced) and
//! `reply-before-persist` (a step's messages and replies, its votes and acks among them,
//! leave before its records are fsynced: they are fsynced with the next step that lets
//! something out, a group commit one batch late). A process crash cannot show either (the page
//! cache keeps what was written); a fault that drops unsynced writes (`lose-unsynced`)
//! can. The simulator has no disk and refuses them.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sunder_wire::{ClientSig, NodeEvent, Op, Response};

/// The planted bugs the node runtime acts out on a core's behalf (see the module doc).
pub const DISK_BUGS: &[&str] = &["no-fsync", "reply-before-persist"];

/// A node's name, e.g. `n1`.
pub type NodeId = String;

/// Identifies a client request so that the reply finds its way back: the connection it
/// came on (unique for the life of the process) and the client's request id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ReqToken {
    pub conn: u64,
    pub id: u64,
}

/// What the runtime feeds a core.
#[derive(Debug, Clone)]
pub enum Input<M> {
    /// Time passes. `now_ms` is the local monotonic clock in milliseconds (what a clock
    /// fault skews). Delivered every `tick_ms` of the node config.
    Tick { now_ms: u64 },
    /// A message from a peer.
    Peer { from: NodeId, msg: M },
    /// A client request (including the admin ops `status` and `dump`).
    Client { token: ReqToken, op: Op },
    /// A client request its client signed (a BFT client: PBFT). A core that does not
    /// authenticate clients answers it with a definite `bad-request`
    /// ([`refuse_signed`]): it must not act on a signature it never checked.
    Signed {
        token: ReqToken,
        op: Op,
        auth: ClientSig,
    },
}

/// The answer of a core that takes no signed requests: definite `bad-request`.
pub fn refuse_signed<M, R>(token: ReqToken, out: &mut Output<M, R>) {
    out.reply.push((
        token,
        Response::error(0, sunder_wire::errors::BAD_REQUEST, true),
    ));
}

/// What a core asks the runtime to do after one step.
#[derive(Debug)]
pub struct Output<M, R> {
    /// Replace everything durable with these records (a snapshot), atomically, before
    /// appending `persist`.
    pub compact: Option<Vec<R>>,
    /// Records to append to the durable log and fsync before anything below is sent.
    pub persist: Vec<R>,
    /// Messages to peers.
    pub send: Vec<(NodeId, M)>,
    /// Replies to client requests. The runtime sets each response's `id` from the token.
    pub reply: Vec<(ReqToken, Response)>,
    /// Structured events for the controller (leader elected, entry committed, ...).
    /// Each is written as one JSON line with the node id and a timestamp added
    /// ([`sunder_wire::EventLine`]); the agreement checker reads the same type back.
    pub events: Vec<NodeEvent>,
}

impl<M, R> Default for Output<M, R> {
    fn default() -> Self {
        Output {
            compact: None,
            persist: Vec::new(),
            send: Vec::new(),
            reply: Vec::new(),
            events: Vec::new(),
        }
    }
}

impl<M, R> Output<M, R> {
    pub fn is_empty(&self) -> bool {
        self.compact.is_none()
            && self.persist.is_empty()
            && self.send.is_empty()
            && self.reply.is_empty()
            && self.events.is_empty()
    }
}

/// Everything a core is told when it is created.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub id: NodeId,
    /// All members including this node, in a stable order.
    pub members: Vec<NodeId>,
    /// Planted bugs switched on with `--bug`.
    pub bugs: Vec<String>,
    /// Free-form `--opt key=value` settings (e.g. `batch=off`).
    pub opts: std::collections::BTreeMap<String, String>,
    /// Seed for the core's own RNG (derived from the run seed and the node id).
    pub seed: u64,
    /// Tick interval the runtime uses.
    pub tick_ms: u64,
    /// Set when the run made this node one of its Byzantine members (`--byzantine`):
    /// how it lies, and who lies with it. `None` for an honest node. Only a core that
    /// lists behaviours in [`Protocol::byzantine_modes`] is ever given one.
    pub byzantine: Option<Byzantine>,
}

/// A Byzantine node's part: its behaviour (one of the core's
/// [`Protocol::byzantine_modes`]) and the other Byzantine members of the run, its allies
/// (Byzantine nodes collude: the worst case a BFT protocol must survive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Byzantine {
    pub mode: String,
    pub allies: Vec<NodeId>,
}

impl CoreConfig {
    pub fn has_bug(&self, name: &str) -> bool {
        self.bugs.iter().any(|b| b == name)
    }

    pub fn opt(&self, key: &str) -> Option<&str> {
        self.opts.get(key).map(String::as_str)
    }

    /// This node's position among the members (the runtime and the simulator only ever
    /// build a core for a member).
    pub fn my_index(&self) -> u32 {
        self.members
            .iter()
            .position(|m| *m == self.id)
            .expect("this node is a member") as u32
    }
}

/// A protocol core.
pub trait Protocol: Send + 'static {
    /// Peer message type.
    type Msg: Serialize + DeserializeOwned + Send + std::fmt::Debug + 'static;
    /// Durable record type.
    type Record: Serialize + DeserializeOwned + Send + std::fmt::Debug + 'static;

    /// Builds the core from its configuration and the records recovered from disk (empty
    /// on first start).
    fn recover(config: CoreConfig, records: Vec<Self::Record>) -> Self
    where
        Self: Sized;

    /// The election state as recovered (the runtime asks once, right after
    /// [`Protocol::recover`], and announces it as a `recovered` event): the current term
    /// and the vote cast in it. Protocols that do not vote keep the default, `None`.
    fn recovered_vote(&self) -> Option<(u64, Option<String>)> {
        None
    }

    /// Shown the inputs the runtime is about to step, in order, before it steps them: a
    /// core may do work for all of them at once (PBFT checks their client signatures in
    /// one batch). It must not change what stepping them does: the simulator steps inputs
    /// one at a time and never calls it. Does nothing by default.
    fn prepare(&mut self, _inputs: &[Input<Self::Msg>]) {}

    /// Advances the state machine by one input.
    fn step(&mut self, input: Input<Self::Msg>, out: &mut Output<Self::Msg, Self::Record>);

    /// Bug names this protocol understands (an unknown `--bug` is a start-up error).
    fn known_bugs() -> &'static [&'static str]
    where
        Self: Sized,
    {
        &[]
    }

    /// The Byzantine behaviours this core can act out (`--byzantine-mode`); none by
    /// default. Twins need none: they are two honest processes with one identity.
    fn byzantine_modes() -> &'static [&'static str]
    where
        Self: Sized,
    {
        &[]
    }

    /// The `--opt` keys this protocol accepts (anything else is a start-up error, in the
    /// node and in the controller before any node starts).
    fn accepted_opts() -> &'static [crate::OptSpec]
    where
        Self: Sized,
    {
        &[]
    }
}
