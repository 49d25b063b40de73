//! [`each_parallel`]: one operation on many hosts at once. A fault lands on every host at
//! nearly the same moment instead of one round trip after another, and a slow or dead
//! host does not hold the others back.

use sunder_nemesis::{NodeId, Outcome};

/// Runs `f` for every node on a thread of its own and gathers the [`Outcome`] in node
/// order. Never stops early: every node is tried.
pub fn each_parallel<E: std::fmt::Display + Send>(
    nodes: &[NodeId],
    f: impl Fn(&NodeId) -> Result<(), E> + Sync,
) -> Outcome {
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|n| {
                let f = &f;
                s.spawn(move || f(n).map_err(|e| e.to_string()))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("the operation panicked".to_string()))
            })
            .collect()
    });
    let mut it = results.into_iter();
    Outcome::each(nodes, |_| it.next().expect("one result per node"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_is_tried_and_answered_in_order() {
        let nodes: Vec<NodeId> = ["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect();
        let o = each_parallel(&nodes, |n| if n == "n2" { Err("down") } else { Ok(()) });
        assert_eq!(o.reached, ["n1", "n3"]);
        assert_eq!(o.failed["n2"], "down");
    }
}
