//! The names and addresses of one run's namespaces, derived from a run tag.

use crate::NodeId;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};

/// Every name starts with this; `sunder clean` looks for it.
pub const PREFIX: &str = "sunder-";
/// The clients' side of the bridge.
pub const HUB_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 254);
/// Prefix length of the run's subnet, 10.77.0.0/24.
pub const PREFIX_LEN: u8 = 24;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// One run's names: namespaces `sunder-<tag>-hub` and `sunder-<tag>-<node>`, nftables table
/// `sunder_<tag>`. The tag is `<pid>-<seq>`: the pid tells `sunder clean` whether the owner
/// still runs, the sequence number keeps two runs of one process apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunNames {
    pub tag: String,
    pub members: Vec<NodeId>,
    /// Members that also have a twin namespace (`sunder-<tag>-<node>-twin`).
    pub twins: Vec<NodeId>,
}

impl RunNames {
    /// A fresh tag for this process.
    pub fn new(members: Vec<NodeId>) -> RunNames {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        RunNames {
            tag: format!("{}-{seq}", std::process::id()),
            members,
            twins: Vec::new(),
        }
    }

    pub fn hub(&self) -> String {
        format!("{PREFIX}{}-hub", self.tag)
    }

    pub fn node(&self, id: &str) -> String {
        format!("{PREFIX}{}-{id}", self.tag)
    }

    /// The namespace of a member's twin: the same address as the member, on another port
    /// of the bridge.
    pub fn twin(&self, id: &str) -> String {
        format!("{PREFIX}{}-{id}-twin", self.tag)
    }

    /// Node namespaces in member order, then the twins', then the hub.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v: Vec<String> = self.members.iter().map(|m| self.node(m)).collect();
        v.extend(self.twins.iter().map(|m| self.twin(m)));
        v.push(self.hub());
        v
    }

    /// The nftables table (family `inet`) in each node namespace.
    pub fn table(&self) -> String {
        format!("sunder_{}", self.tag.replace('-', "_"))
    }

    /// `10.77.0.<i>` for the i-th member (1-based).
    pub fn addr(&self, id: &str) -> Option<Ipv4Addr> {
        let i = self.members.iter().position(|m| m == id)?;
        Some(Ipv4Addr::new(10, 77, 0, u8::try_from(i + 1).ok()?))
    }

    /// The hub's end of the node's veth (interface names are per namespace, and short).
    pub fn hub_port(&self, id: &str) -> Option<String> {
        let i = self.members.iter().position(|m| m == id)?;
        Some(format!("v{}", i + 1))
    }

    /// The hub's end of a twin's veth.
    pub fn twin_port(&self, id: &str) -> Option<String> {
        let i = self.members.iter().position(|m| m == id)?;
        Some(format!("t{}", i + 1))
    }

    /// The pid in a namespace name of ours (`sunder-<pid>-...`).
    pub fn owner_pid(namespace: &str) -> Option<u32> {
        namespace
            .strip_prefix(PREFIX)?
            .split('-')
            .next()?
            .parse()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_owner_and_stay_apart() {
        let a = RunNames::new(vec!["n1".into(), "n2".into()]);
        let b = RunNames::new(vec!["n1".into()]);
        assert_ne!(a.tag, b.tag);
        assert_eq!(RunNames::owner_pid(&a.hub()), Some(std::process::id()));
        assert_eq!(RunNames::owner_pid(&a.node("n2")), Some(std::process::id()));
        assert_eq!(RunNames::owner_pid("other-12-hub"), None);
        assert_eq!(a.addr("n2"), Some(Ipv4Addr::new(10, 77, 0, 2)));
        assert_eq!(a.addr("n9"), None);
        assert!(!a.table().contains('-') && a.table().starts_with("sunder_"));
        assert_eq!(a.namespaces().last(), Some(&a.hub()));
        let mut t = a.clone();
        t.twins = vec!["n2".into()];
        assert_eq!(t.namespaces().len(), 4);
        assert_eq!(RunNames::owner_pid(&t.twin("n2")), Some(std::process::id()));
        assert_eq!(t.twin_port("n2").as_deref(), Some("t2"));
        assert_ne!(t.twin("n2"), t.node("n2"));
    }
}
