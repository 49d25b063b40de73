//! # sunder-remote
//!
//! Nodes on remote hosts, reached over OpenSSH as Jepsen does: the user's keys and
//! known_hosts, one multiplexed connection per host, no agent of our own on the host.
//!
//! ```text
//!   HostSpec ──connect──► Host (Session: ssh master, ControlPath in the run dir)
//!                          │  every command: argv quoted word by word ──► remote.log
//!                          │  (argv, exit status, stderr; CommandLog)
//!      ┌───────────────────┼──────────────────────┬────────────────────────┐
//!      ▼                   ▼                      ▼                        ▼
//!   upload / write_file  start(Launch) ─► pid   download (tar, bounded)   clean(hosts, Scope)
//!                        signal_group, group    remove_run_dir            pid files, tables,
//!                                                                          run dirs
//!   sunder_nemesis traits, node by node (Outcome):
//!     RemoteNet: Network      table inet sunder-<run id> per host, drops by peer address
//!     RemoteProcesses: Processes   kill / restart / pause / resume on recorded pids
//!     RemoteClocks: Clocks    libfaketime control file per node, strobe loop on the host
//! ```
//!
//! - [`spec`]: [`HostSpec`] (address, user, key, known_hosts, [`HostKeyPolicy`]).
//! - [`session`]: [`Session`], the master connection and bounded command I/O.
//! - [`quote`]: quoting for the remote shell.
//! - [`log`]: [`CommandLog`], every remote command as a JSON line.
//! - [`host`]: [`Host`], the operations on one host; [`Signal`].
//! - [`layout`]: [`RunId`], [`RunLayout`]: the run's directory, pid files, table name.
//! - [`launch`]: [`Launch`], a detached process to start.
//! - [`procstate`]: [`ProcStat`], a remote `/proc/<pid>/stat`.
//! - [`net`], [`procs`], [`clocks`]: the nemesis backends.
//! - [`parallel`]: one operation on many hosts at once, answered node by node.
//! - `testhosts` (feature `test-hosts`, tests only): hosts on this machine, namespaces each
//!   running its own sshd.
//! - [`mod@clean`]: [`clean()`], what a killed controller left.
//! - [`error`]: the one error type, [`RemoteError`].
//!
//! Every call blocks (the nemesis traits are synchronous); an async controller calls
//! through `spawn_blocking`. Every remote command runs under coreutils' `timeout` on the
//! host ([`HostSpec::command_timeout_secs`]) and the master connection sends keep-alives,
//! so neither a hung command nor a vanished host hangs a heal or a cleanup.
//!
//! ## Why the system `ssh`, driven with `std::process::Command`
//!
//! The `openssh` crate drives the same binary the same way (a ControlMaster socket, one
//! `ssh` process per command) but is async only, so the synchronous nemesis traits would
//! need a runtime to block on inside a runtime. Running `ssh` directly gives the same
//! multiplexing, the user's whole ssh configuration (agent, ProxyJump, certificates) and
//! no dependency; the ~300 lines of [`session`] it costs also own what has to be ours
//! anyway: the command log, bounded output, and errors that name the host.
//!
//! ## Security model
//!
//! - **Keys**: the user's agent and keys, or one key file (`IdentitiesOnly=yes`). sunder
//!   makes no keys and installs none; `BatchMode=yes`, so it never prompts.
//! - **Host keys**: `StrictHostKeyChecking=yes` by default: a host not in known_hosts, or
//!   whose key changed, is refused with [`RemoteError::HostKey`] naming the host and the
//!   known_hosts file. [`HostKeyPolicy::AcceptNew`] may add unknown hosts; no setting
//!   accepts a changed key. An explicit known_hosts file replaces the user's and the
//!   system's.
//! - **No shell strings**: OpenSSH hands the remote command to the login shell as one
//!   line, so every argument is single-quoted ([`quote::quote`], tested through a real
//!   shell). Steps that need a shell are constant scripts with every varying part a
//!   positional argument. Names that become paths or nftables names (run ids, node names,
//!   the base directory) are checked against a small alphabet first; what a host sends
//!   back is bounded ([`session::STDOUT_LIMIT`], download limits) and parsed, never
//!   trusted.
//! - **What is touched on a host**: one directory per run, one nftables table per run,
//!   the processes it started (each marked `SUNDER_RUN_ID=<run id>`).

pub mod clean;
pub mod clocks;
pub mod error;
pub mod host;
pub mod launch;
pub mod layout;
pub mod log;
pub mod net;
pub mod parallel;
pub mod procs;
pub mod procstate;
pub mod quote;
pub mod session;
pub mod spec;
#[cfg(feature = "test-hosts")]
pub mod testhosts;

pub use clean::{HostCleaned, Scope, clean};
pub use clocks::RemoteClocks;
pub use error::RemoteError;
pub use host::{Host, Signal};
pub use launch::Launch;
pub use layout::{DEFAULT_BASE, RunId, RunLayout, check_remote_path};
pub use log::CommandLog;
pub use net::{NetNode, RemoteNet};
pub use procs::RemoteProcesses;
pub use procstate::ProcStat;
pub use session::{Input, Output, Session};
pub use spec::{HostKeyPolicy, HostSpec};
