//! What a fault did, node by node: a fault aimed at several nodes can take effect on some
//! and fail on others (a pause aimed at all while one node is down, a rule that fails in one
//! namespace), and what took effect must be known exactly so that exactly that is undone.
//!
//! In the history, a step that failed on some nodes carries its [`Outcome`] as JSON text in
//! the event's `error` field (`{"reached":["n1","n2"],"failed":{"n3":"why"}}`), beside the
//! fault's `value` as before; a step that reached every node has no `error`. An `error` that
//! is not such an object is a step that failed whole (no leader known, no backend for it).

use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The nodes an operation took effect on, and those it failed on with the error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub reached: Vec<NodeId>,
    pub failed: BTreeMap<NodeId, String>,
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
            failed: BTreeMap::new(),
        }
    }

    /// True when it failed nowhere.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
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
            } else {
                out.failed
                    .insert(n.clone(), "the backend reported no outcome".into());
            }
        }
        out
    }

    /// The history's `error` for this outcome: `None` when it reached every node, else the
    /// outcome as JSON text (see the module doc).
    pub fn error_text(&self) -> Option<String> {
        if self.failed.is_empty() {
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

    /// One line for people: `failed on n3: why; failed on n4: why`.
    pub fn describe_failures(&self) -> String {
        self.failed
            .iter()
            .map(|(n, e)| format!("failed on {n}: {e}"))
            .collect::<Vec<_>>()
            .join("; ")
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
        };
        let o = said.within(&ids(&["n1", "n2", "n3"]));
        assert_eq!(o.reached, ids(&["n1"]));
        assert_eq!(o.failed.keys().collect::<Vec<_>>(), ["n2", "n3"]);
        assert!(o.failed["n3"].contains("no outcome"));
    }
}
