//! What the controller knows about one node when it starts it: the values behind a
//! spec's placeholders.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// One member of the cluster, as every node's member list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `n1`, `n2`, ...
    pub id: String,
    /// 1-based, so that `{index}` of `n3` is 3 (ZooKeeper's `myid` must be at least 1).
    pub index: usize,
    /// Where its ports listen: 127.0.0.1 with the proxy backend, its namespace's address
    /// with `--net netns`.
    pub ip: IpAddr,
    pub client_port: u16,
    pub peer_port: u16,
}

impl Member {
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.client_port)
    }

    #[allow(dead_code)] // spec tests and adapters to come
    pub fn peer_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.peer_port)
    }
}

/// The node being started, among all members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeContext {
    /// Position of this node in `members`.
    pub me: usize,
    pub members: Vec<Member>,
    /// Its data directory: kept across restarts.
    pub data_dir: PathBuf,
    /// Its log file (stdout and stderr go there already; `{log}` is for programs that
    /// want a log path of their own).
    pub log: PathBuf,
    /// The run directory.
    pub run_dir: PathBuf,
}

impl NodeContext {
    /// The member being started. Panics when `me` is out of range: a caller bug.
    pub fn me(&self) -> &Member {
        &self.members[self.me]
    }
}
