//! The netns network backend (root): real packets, real drops, nothing in the root
//! namespace.
//!
//! ```text
//!   hub namespace sunder-<tag>-hub          node namespaces sunder-<tag>-<id>
//!   ┌──────────────────────────────┐       ┌──────────────────────────────────────┐
//!   │ br0 10.77.0.254 ◄── clients  │  veth │ eth0 10.77.0.<i>   node process      │
//!   │   ├─ v1 ─────────────────────┼───────┤ table inet sunder_<tag>             │
//!   │   ├─ v2 ...                  │       │   chain partition: ip saddr {..} drop│
//!   └──────────────────────────────┘       │   chain loss: numgen random mod 100  │
//!                                          └──────────────────────────────────────┘
//! ```
//!
//! Twins ([`TwinPlan`]): a member's twin gets a namespace `sunder-<tag>-<id>-twin` at the
//! member's address, on hub port `t<i>`, and a `table bridge` in the hub keeps each side
//! to its own (the twin side reaches the twin, everyone else the original).
//!
//! - [`names`]: the run tag (`<pid>-<seq>`) and every name and address derived from it.
//! - [`command`]: running `ip` / `nft`; errors name the command and its stderr.
//! - [`rules`]: the nftables text (pure).
//! - [`net`]: [`NetnsNet`]: setup, the [`Network`](crate::Network) impl, teardown on drop.
//! - [`handle`]: [`NsHandle`], entered by a node process in `pre_exec`.
//! - [`teardown`]: deleting namespaces, and [`leftovers`] of killed controllers.

pub mod command;
pub mod handle;
pub mod names;
pub mod net;
pub mod rules;
pub mod teardown;

pub use command::unavailable;
pub use handle::NsHandle;
pub use names::{HUB_ADDR, RunNames};
pub use net::{NetnsNet, TwinPlan, netns_path};
pub use teardown::{Leftover, leftovers, remove_leftovers, remove_namespace};
