//! A partition as data: for each node, the set of nodes it no longer hears from.

use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// For each node, the nodes whose messages it no longer receives. A node absent from the
/// map hears everyone. Directed on purpose: one-way cuts are grudges too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Grudge(pub BTreeMap<NodeId, BTreeSet<NodeId>>);

impl Grudge {
    /// Every node hears only the members of its own component. Nodes in no component are
    /// treated as a component of their own.
    pub fn complete(members: &[NodeId], components: &[Vec<NodeId>]) -> Grudge {
        let mut g = Grudge::default();
        for a in members {
            let mine = components.iter().find(|c| c.contains(a));
            for b in members {
                let together = a == b || mine.is_some_and(|c| c.contains(b));
                if !together {
                    g.cut(b, a);
                }
            }
        }
        g
    }

    /// `to` stops hearing from `from`.
    pub fn cut(&mut self, from: &str, to: &str) {
        self.0
            .entry(to.to_string())
            .or_default()
            .insert(from.to_string());
    }

    /// True when messages from `from` no longer reach `to`.
    pub fn is_cut(&self, from: &str, to: &str) -> bool {
        self.0.get(to).is_some_and(|s| s.contains(from))
    }

    /// True when the grudge cuts nothing.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeSet::is_empty)
    }

    /// The directed links it cuts, `(from, to)`, in a stable order.
    pub fn links(&self) -> Vec<(NodeId, NodeId)> {
        let mut v: Vec<_> = self
            .0
            .iter()
            .flat_map(|(to, froms)| froms.iter().map(|f| (f.clone(), to.clone())))
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<NodeId> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn complete_cuts_across_components_only() {
        let m = ids(&["n1", "n2", "n3"]);
        let g = Grudge::complete(&m, &[ids(&["n1"]), ids(&["n2", "n3"])]);
        assert!(g.is_cut("n1", "n2") && g.is_cut("n2", "n1") && g.is_cut("n3", "n1"));
        assert!(!g.is_cut("n2", "n3") && !g.is_cut("n3", "n2"));
        assert_eq!(g.links().len(), 4);
        assert_eq!(
            serde_json::to_string(&g).unwrap(),
            r#"{"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]}"#
        );
    }
}
