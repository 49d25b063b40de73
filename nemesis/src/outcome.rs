//! What a fault did, node by node: a fault aimed at several nodes can take effect on some
//! and fail on others (a pause aimed at all while one node is down, a rule that fails in one
//! namespace), and what took effect must be known exactly so that exactly that is undone.
//!
//! A node can also be reached only in part: a disk fault kills the node (which its stop
//! undoes by restarting it) and then acts on its disk, and that second step can fail or
//! leave some of its work undone. Such a node is reached (in force, undone at the stop) and
//! is also named in `partial`, with what did not take effect.
//!
//! In the history, a step that failed on some nodes, or took effect only in part on some,
//! carries its [`Outcome`] as JSON text in the event's `error` field
//! (`{"reached":["n1","n2"],"failed":{"n3":"why"}}`, with `"partial":{"n2":"what not"}`
//! when there is any), beside the fault's `value` as before; a step that took full effect
//! on every node has no `error`. An `error` that is not such an object is a step that failed
//! whole (no leader known, no backend for it).

use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The nodes an operation took effect on, and those it failed on with the error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub reached: Vec<NodeId>,
    pub failed: BTreeMap<NodeId, String>,
    /// Nodes of `reached` where it took effect only in part, with what did not.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partial: BTreeMap<NodeId, String>,
}

impl Outcome {
    /// Runs `f` on each node in turn and records where it worked. Never stops early: a
    /// failure on one node must not keep the others from being reached (or undone).
    pub fn each<E: std::fmt::Display>(
        nodes: &[NodeId],
        mut f: impl FnMut(&NodeId) -> Result<(), E>,
    ) -> Outcome {
        let mut out = Outcome::default();
        for n in nodes {
            match f(n) {
                Ok(()) => out.reached.push(n.clone()),
                Err(e) => {
                    out.failed.insert(n.clone(), e.to_string());
                }
            }
        }
        out
    }

    /// Every node reached.
    pub fn all(nodes: &[NodeId]) -> Outcome {
        Outcome {
            reached: nodes.to_vec(),
            ..Outcome::default()
        }
    }

    /// True when it took full effect everywhere: failed nowhere, partial nowhere.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.partial.is_empty()
    }

    /// The backend's word checked against what was asked: a node it was not asked about is
    /// dropped, a node it reports both ways counts as failed (the undo will try it again), a
    /// node it says nothing about counts as failed. So the bookkeeping never claims more
    /// than the backend said it did.
    pub fn within(self, asked: &[NodeId]) -> Outcome {
        let mut out = Outcome::default();
        for n in asked {
            if let Some(e) = self.failed.get(n) {
                out.failed.insert(n.clone(), e.clone());
            } else if self.reached.contains(n) {
                out.reached.push(n.clone());
                if let Some(what) = self.partial.get(n) {
                    out.partial.insert(n.clone(), what.clone());
                }
            } else {
                out.failed
                    .insert(n.clone(), "the backend reported no outcome".into());
            }
        }
        out
    }

    /// The history's `error` for this outcome: `None` when it took full effect on every
    /// node, else the outcome as JSON text (see the module doc).
    pub fn error_text(&self) -> Option<String> {
        if self.is_complete() {
            None
        } else {
            Some(serde_json::to_string(self).expect("names and strings serialise"))
        }
    }

    /// Reads back an `error` written by [`Outcome::error_text`]; `None` for any other text
    /// (a step that failed whole).
    pub fn from_error_text(text: &str) -> Option<Outcome> {
        if !text.starts_with('{') {
            return None;
        }
        serde_json::from_str(text).ok()
    }

    /// One line for people: `failed on n3: why; partly on n4: what not`.
    pub fn describe_failures(&self) -> String {
        let failed = self
            .failed
            .iter()
            .map(|(n, e)| format!("failed on {n}: {e}"));
        let partial = self
            .partial
            .iter()
            .map(|(n, e)| format!("partly on {n}: {e}"));
        failed.chain(partial).collect::<Vec<_>>().join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<NodeId> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_keeps_going_past_a_failure() {
        let o = Outcome::each(&ids(&["n1", "n2", "n3"]), |n| {
            if n == "n2" { Err("down") } else { Ok(()) }
        });
        assert_eq!(o.reached, ids(&["n1", "n3"]));
        assert_eq!(o.failed, [("n2".to_string(), "down".to_string())].into());
        let text = o.error_text().unwrap();
        assert_eq!(text, r#"{"reached":["n1","n3"],"failed":{"n2":"down"}}"#);
        assert_eq!(Outcome::from_error_text(&text), Some(o));
        assert_eq!(Outcome::from_error_text("no leader known"), None);
        assert_eq!(Outcome::all(&ids(&["n1"])).error_text(), None);
    }

    #[test]
    fn a_backend_never_claims_more_than_it_was_asked() {
        let said = Outcome {
            reached: ids(&["n1", "n2", "n9"]),
            failed: [("n2".to_string(), "half".to_string())].into(),
            partial: [("n9".to_string(), "not asked".to_string())].into(),
        };
        let o = said.within(&ids(&["n1", "n2", "n3"]));
        assert_eq!(o.reached, ids(&["n1"]));
        assert_eq!(o.failed.keys().collect::<Vec<_>>(), ["n2", "n3"]);
        assert!(o.failed["n3"].contains("no outcome"));
        assert!(o.partial.is_empty(), "{o:?}");
    }

    /// A node reached in part stays reached (in force, undone later), is named with what
    /// did not take effect, and makes the step's `error` say so; an outcome without any
    /// reads and writes as before.
    #[test]
    fn a_node_reached_in_part_is_reached_and_says_what_did_not_happen() {
        let o = Outcome {
            reached: ids(&["n1", "n2"]),
            failed: [("n3".to_string(), "down".to_string())].into(),
            partial: [("n2".to_string(), "disk busy".to_string())].into(),
        };
        let o = o.within(&ids(&["n1", "n2", "n3"]));
        assert_eq!(o.reached, ids(&["n1", "n2"]));
        assert_eq!(
            o.partial,
            [("n2".to_string(), "disk busy".to_string())].into()
        );
        assert!(!o.is_complete());
        let text = o.error_text().unwrap();
        assert_eq!(
            text,
            r#"{"reached":["n1","n2"],"failed":{"n3":"down"},"partial":{"n2":"disk busy"}}"#
        );
        assert_eq!(Outcome::from_error_text(&text), Some(o.clone()));
        assert_eq!(
            o.describe_failures(),
            "failed on n3: down; partly on n2: disk busy"
        );
        // partial alone is enough for an `error`
        let only = Outcome {
            reached: ids(&["n1"]),
            partial: [("n1".to_string(), "x".to_string())].into(),
            ..Outcome::default()
        };
        assert_eq!(
            only.error_text().as_deref(),
            Some(r#"{"reached":["n1"],"failed":{},"partial":{"n1":"x"}}"#)
        );
        // the old shape reads back with no partial
        let old = Outcome::from_error_text(r#"{"reached":["n1"],"failed":{"n2":"y"}}"#).unwrap();
        assert!(old.partial.is_empty());
    }
}
