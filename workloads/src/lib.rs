//! # sunder-workloads
//!
//! Operation generators, the clients that speak to targets, and the recorder that turns
//! what happened into a history.
//!
//! ```text
//!  WorkloadConfig ─► Generator (per worker, seeded) ─► Worker ─► Client ──TCP──► node
//!                    Pacer (per worker, seeded) ───────┘   │  (AnyClient: JsonLinesClient
//!                                                          │   or EtcdClient, HttpKvClient
//!                                                          │   ─HTTP/1.1─►)
//!                                                          ▼
//!  nemesis events (controller) ─────────────────────► Recorder ─► history.jsonl
//!                                                          │          + in memory
//!  final_phase (set: read on every node) ──────────────────┘
//! ```
//!
//! - [`config`]: [`WorkloadKind`], [`WorkloadConfig`].
//! - [`generator`]: the pure operation generator; a seed replays the same operations.
//! - [`pacer`]: the seeded sleeps that hold the total rate.
//! - [`recorder`]: index, time, JSON lines; shared with the nemesis.
//! - [`client`]: the [`Client`] trait, [`Endpoint`], [`Outcome`] (ok / fail / info).
//! - [`dial`]: [`Dialer`], direct or from inside a network namespace (`--net netns`).
//! - [`jsonlines`]: the pipelined client of sunder's own wire protocol (answer lines capped).
//! - [`bft`]: [`BftClient`], signed requests over the same protocol, a result only from
//!   f+1 matching signed replies (PBFT).
//! - [`etcd`]: [`EtcdClient`], etcd's v3 JSON gateway; [`http`]: its HTTP/1.1 pool (bodies capped).
//! - [`http_kv`]: [`HttpKvClient`], the generic HTTP adapter: any HTTP API, described in a
//!   spec's `[client]` ([`http_config`]: [`HttpConfig`], checked whole at load), requests
//!   from [`http_template`]s (key and value encodings), answers read by
//!   [`http_answer`] rules (ok / fail / info / absent, where the value is).
//! - [`nats`]: [`NatsClient`], NATS JetStream key-value through `async-nats`, one connection
//!   per node ([`relay`]: a loopback relay that carries it into `--net netns`).
//! - [`zookeeper`]: [`ZookeeperClient`], ZooKeeper through the `zookeeper-client` crate, one
//!   session per server; [`relay`]: [`Relay`], a loopback relay that carries a library's own
//!   sockets through the [`Dialer`] (`--net netns`).
//! - [`adapter`]: [`AdapterConfig`] (a target spec's `[client]` table) → [`AnyClient`].
//! - [`worker`]: [`run_workers`], the main phase.
//! - [`final_phase`](mod@final_phase): final reads after the faults are healed.

pub mod adapter;
pub mod bft;
pub mod client;
pub mod config;
pub mod dial;
pub mod etcd;
pub mod final_phase;
pub mod generator;
pub mod http;
pub mod http_answer;
pub mod http_config;
pub mod http_kv;
pub mod http_template;
pub mod jsonlines;
pub mod nats;
pub mod pacer;
pub mod recorder;
pub mod relay;
pub mod worker;
pub mod zookeeper;

pub use adapter::{AdapterConfig, AnyClient};
pub use bft::{BftClient, BftError, FirstSend};
pub use client::{Client, Endpoint, Outcome};
pub use config::{ConfigError, SET_KEY, UnknownWorkload, WorkloadConfig, WorkloadKind};
pub use dial::{Dialer, NsDialer};
pub use etcd::{EtcdClient, EtcdConfig, ReadMode};
pub use final_phase::{FinalSummary, final_phase, final_phase_with};
pub use generator::Generator;
pub use http_config::{HttpConfig, HttpConfigError, HttpOp};
pub use http_kv::HttpKvClient;
pub use jsonlines::JsonLinesClient;
pub use nats::{NatsClient, NatsConfig, NatsReads};
pub use pacer::Pacer;
pub use recorder::{Counts, Recorder};
pub use relay::Relay;
pub use worker::{WorkerSummary, run_workers, run_workers_with};
pub use zookeeper::{ZkReads, ZookeeperClient, ZookeeperConfig};
