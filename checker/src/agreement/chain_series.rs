//! A chain node's best and confirmed height over time, and its reorganisations, from the
//! `tip` and `confirm` events of a proof-of-work run: what the report plots. Nothing here
//! is judged (the reversed confirmations are, in the parent module).
//!
//! ```text
//!  tip {height, dropped, added} ──► best height step ─┬─► per node, stream order,
//!                       dropped > 0 ──► reorganisation │   at most MAX_POINTS points
//!  confirm {height} ──► highest confirmed height ──────┘   (every reorganisation kept)
//! ```
//!
//! Times are milliseconds after `start_ms`, the earliest timestamp of any event of the
//! run; a line without a timestamp (hand-written streams) is counted in the totals but
//! cannot be placed.

use super::{EventLine, NodeEvent};
use serde::{Deserialize, Serialize};

/// Height points kept per node and series; longer series are thinned evenly.
pub const MAX_POINTS: usize = 2000;

/// Every chain node's series; built only when the run has `tip` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSeries {
    /// The earliest `time_ms` of any event line of the run (0 when none has one): every
    /// time below counts from it.
    pub start_ms: u64,
    /// In order of each node's first event.
    pub nodes: Vec<NodeChain>,
}

/// One node's chain over the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeChain {
    pub node: String,
    /// `[ms after start, height]` of the best chain's tip at each tip change, in stream
    /// order: a step line. At most [`MAX_POINTS`], evenly thinned, the last one kept.
    pub best: Vec<(u64, u64)>,
    /// `[ms after start, height]` each time the highest confirmed height rose (a `confirm`
    /// re-announced after a reorganisation is below it and adds no point). Thinned alike.
    pub confirmed: Vec<(u64, u64)>,
    /// Every reorganisation with a timestamp, in stream order.
    pub reorgs: Vec<Reorg>,
    /// Ms after start of the node's last event of any kind: where its lines end.
    pub end_ms: u64,
    /// Tip changes (`tip` events), reorganisations among them, and the most blocks one
    /// dropped: whole-run totals, timestamped or not.
    pub tips: u64,
    pub reorg_count: u64,
    pub deepest_reorg: u64,
}

/// A tip change that dropped blocks from the node's best chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reorg {
    /// Ms after start.
    pub time_ms: u64,
    /// Blocks of the old best chain that left it.
    pub depth: u64,
    /// The height of the last block the old and the new chain share.
    pub fork_height: u64,
    /// The new tip's height.
    pub height: u64,
}

impl NodeChain {
    /// `n1: 240 tips, 7 reorgs, deepest 2, height 238, confirmed 235`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: {} tips, {} reorg{}",
            self.node,
            self.tips,
            self.reorg_count,
            if self.reorg_count == 1 { "" } else { "s" }
        );
        if self.reorg_count > 0 {
            s += &format!(", deepest {}", self.deepest_reorg);
        }
        if let Some((_, h)) = self.best.last() {
            s += &format!(", height {h}");
        }
        if let Some((_, h)) = self.confirmed.last() {
            s += &format!(", confirmed {h}");
        }
        s
    }
}

impl ChainSeries {
    /// One line for the terminal: tip changes and reorganisations over all nodes.
    pub fn summary(&self) -> String {
        let tips: u64 = self.nodes.iter().map(|n| n.tips).sum();
        let reorgs: u64 = self.nodes.iter().map(|n| n.reorg_count).sum();
        let with = self.nodes.iter().filter(|n| n.reorg_count > 0).count();
        let mut s = format!(
            "chain: {tips} tip changes, {reorgs} reorganisations on {with} of {} nodes",
            self.nodes.len()
        );
        if let Some(n) = self
            .nodes
            .iter()
            .filter(|n| n.reorg_count > 0)
            .max_by(|a, b| {
                a.deepest_reorg
                    .cmp(&b.deepest_reorg)
                    .then(b.node.cmp(&a.node))
            })
        {
            let blocks = if n.deepest_reorg == 1 {
                "block"
            } else {
                "blocks"
            };
            s += &format!(", deepest {} {blocks} ({})", n.deepest_reorg, n.node);
        }
        s
    }
}

/// The series of every node that wrote `tip` events; `None` when none did (a run of a
/// target without a chain).
pub fn chain_series(events: &[EventLine]) -> Option<ChainSeries> {
    if !events
        .iter()
        .any(|e| matches!(e.event, NodeEvent::Tip { .. }))
    {
        return None;
    }
    let start_ms = events.iter().filter_map(|e| e.time_ms).min().unwrap_or(0);
    let mut nodes: Vec<NodeChain> = Vec::new();
    for e in events {
        let i = match nodes.iter().position(|n| n.node == e.node) {
            Some(i) => i,
            None => {
                nodes.push(NodeChain {
                    node: e.node.clone(),
                    best: Vec::new(),
                    confirmed: Vec::new(),
                    reorgs: Vec::new(),
                    end_ms: 0,
                    tips: 0,
                    reorg_count: 0,
                    deepest_reorg: 0,
                });
                nodes.len() - 1
            }
        };
        let n = &mut nodes[i];
        let at = e.time_ms.map(|t| t - start_ms);
        if let Some(t) = at {
            n.end_ms = n.end_ms.max(t);
        }
        match e.event {
            NodeEvent::Tip {
                height,
                dropped,
                added,
            } => {
                n.tips += 1;
                if dropped > 0 {
                    n.reorg_count += 1;
                    n.deepest_reorg = n.deepest_reorg.max(dropped);
                }
                let Some(t) = at else { continue };
                n.best.push((t, height));
                if dropped > 0 {
                    n.reorgs.push(Reorg {
                        time_ms: t,
                        depth: dropped,
                        fork_height: height.saturating_sub(added),
                        height,
                    });
                }
            }
            NodeEvent::Confirm { height, .. } => {
                let Some(t) = at else { continue };
                if n.confirmed.last().is_none_or(|&(_, h)| height > h) {
                    n.confirmed.push((t, height));
                }
            }
            _ => {}
        }
    }
    // A node that wrote no chain events (a client-only process, say) has nothing to draw.
    nodes.retain(|n| n.tips > 0 || !n.confirmed.is_empty());
    for n in &mut nodes {
        thin(&mut n.best, MAX_POINTS);
        thin(&mut n.confirmed, MAX_POINTS);
    }
    Some(ChainSeries { start_ms, nodes })
}

/// Keeps `max` points spread evenly over `points`, the first and the last among them.
fn thin<T: Copy>(points: &mut Vec<T>, max: usize) {
    let len = points.len();
    if len <= max {
        return;
    }
    if max < 2 {
        let last = points[len - 1];
        points.clear();
        points.extend((max == 1).then_some(last));
        return;
    }
    // Indices i·(len−1)/(max−1) rise strictly (len > max) and end at len − 1.
    *points = (0..max)
        .map(|i| points[i * (len - 1) / (max - 1)])
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(node: &str, time_ms: Option<u64>, event: NodeEvent) -> EventLine {
        EventLine {
            node: node.into(),
            time_ms,
            event,
        }
    }
    fn tip(node: &str, t: u64, height: u64, dropped: u64, added: u64) -> EventLine {
        at(
            node,
            Some(t),
            NodeEvent::Tip {
                height,
                dropped,
                added,
            },
        )
    }
    fn confirm(node: &str, t: u64, height: u64) -> EventLine {
        at(
            node,
            Some(t),
            NodeEvent::Confirm {
                height,
                hash: format!("{height:02x}"),
            },
        )
    }

    #[test]
    fn extensions_and_reorganisations_per_node_in_stream_order() {
        let events = vec![
            at(
                "n2",
                Some(1000),
                NodeEvent::Start {
                    records: 0,
                    members: vec![],
                    client: String::new(),
                    peer_listen: None,
                },
            ),
            tip("n2", 1200, 1, 0, 1),
            tip("n1", 1300, 1, 0, 1),
            tip("n1", 1500, 2, 0, 1),
            tip("n2", 1600, 2, 0, 1),
            confirm("n1", 1500, 1),
            // n1 leaves its block at height 2 for n2's chain of three: forked at 1.
            tip("n1", 2100, 3, 1, 2),
            confirm("n1", 2100, 2),
            tip("n2", 2000, 3, 0, 1),
            // n2 drops two blocks (3 and 2) for a chain of height 4 forking at 1.
            tip("n2", 2500, 4, 2, 3),
            // Re-announced after the reorganisation: no new confirmed point.
            confirm("n2", 2500, 2),
            confirm("n2", 2500, 1),
            at("n2", Some(2700), NodeEvent::Stop),
        ];
        let s = chain_series(&events).unwrap();
        assert_eq!(s.start_ms, 1000);
        let names: Vec<&str> = s.nodes.iter().map(|n| n.node.as_str()).collect();
        assert_eq!(names, ["n2", "n1"], "in order of first event");
        let (n2, n1) = (&s.nodes[0], &s.nodes[1]);
        assert_eq!(n1.best, [(300, 1), (500, 2), (1100, 3)]);
        assert_eq!(n1.confirmed, [(500, 1), (1100, 2)]);
        assert_eq!(
            n1.reorgs,
            [Reorg {
                time_ms: 1100,
                depth: 1,
                fork_height: 1,
                height: 3
            }]
        );
        assert_eq!((n1.tips, n1.reorg_count, n1.deepest_reorg), (3, 1, 1));
        assert_eq!(n1.end_ms, 1100);
        assert_eq!(n2.best, [(200, 1), (600, 2), (1000, 3), (1500, 4)]);
        assert_eq!(n2.confirmed, [(1500, 2)], "only the rise");
        assert_eq!(n2.reorgs.len(), 1);
        assert_eq!((n2.reorgs[0].depth, n2.reorgs[0].fork_height), (2, 1));
        assert_eq!((n2.tips, n2.reorg_count, n2.deepest_reorg), (4, 1, 2));
        assert_eq!(n2.end_ms, 1700, "its stop event, past its last tip");
        assert_eq!(
            n2.summary(),
            "n2: 4 tips, 1 reorg, deepest 2, height 4, confirmed 2"
        );
        assert_eq!(
            s.summary(),
            "chain: 7 tip changes, 2 reorganisations on 2 of 2 nodes, deepest 2 blocks (n2)"
        );
    }

    #[test]
    fn long_runs_are_thinned_to_the_bound_keeping_the_last_point_and_every_reorg() {
        let n = 3 * MAX_POINTS as u64 + 7;
        let mut events: Vec<EventLine> = (1..=n)
            .map(|h| {
                // Every hundredth tip change is a reorganisation one block deep.
                let (dropped, added) = if h % 100 == 0 { (1, 2) } else { (0, 1) };
                tip("n1", h * 10, h, dropped, added)
            })
            .collect();
        events.extend((1..=n).map(|h| confirm("n1", h * 10 + 5, h)));
        let s = chain_series(&events).unwrap();
        let c = &s.nodes[0];
        assert_eq!(c.best.len(), MAX_POINTS);
        assert_eq!(c.confirmed.len(), MAX_POINTS);
        assert_eq!(c.best.first(), Some(&(0, 1)));
        assert_eq!(
            c.best.last(),
            Some(&((n - 1) * 10, n)),
            "the last tip is kept"
        );
        assert_eq!(c.confirmed.last(), Some(&((n - 1) * 10 + 5, n)));
        assert!(c.best.windows(2).all(|w| w[0].0 < w[1].0), "in order");
        // Evenly: no gap between kept points is more than twice another.
        let gaps: Vec<u64> = c.best.windows(2).map(|w| w[1].1 - w[0].1).collect();
        let (lo, hi) = (gaps.iter().min().unwrap(), gaps.iter().max().unwrap());
        assert!(*hi <= 2 * *lo, "gaps from {lo} to {hi}");
        assert_eq!(c.reorgs.len() as u64, n / 100, "every reorganisation kept");
        assert_eq!((c.tips, c.reorg_count), (n, n / 100));
    }

    #[test]
    fn a_run_without_tip_events_has_no_series() {
        let raft = vec![
            at("n1", Some(5), NodeEvent::Leader { term: 1 }),
            at(
                "n2",
                Some(6),
                NodeEvent::Vote {
                    term: 1,
                    candidate: "n1".into(),
                },
            ),
            at("n1", Some(9), NodeEvent::Commit { index: 3, term: 1 }),
            // Confirmations alone (an older pow node) draw nothing either.
            confirm("n3", 10, 1),
        ];
        assert_eq!(chain_series(&raft), None);
        assert_eq!(chain_series(&[]), None);
    }

    #[test]
    fn lines_without_a_time_are_counted_not_placed() {
        let events = vec![
            at(
                "n1",
                None,
                NodeEvent::Tip {
                    height: 5,
                    dropped: 3,
                    added: 4,
                },
            ),
            tip("n1", 40, 6, 0, 1),
        ];
        let s = chain_series(&events).unwrap();
        let c = &s.nodes[0];
        assert_eq!(s.start_ms, 40);
        assert_eq!(c.best, [(0, 6)]);
        assert!(c.reorgs.is_empty());
        assert_eq!((c.tips, c.reorg_count, c.deepest_reorg), (2, 1, 3));
    }

    #[test]
    fn thinning_short_and_degenerate_series() {
        let mut v: Vec<u32> = (0..5).collect();
        thin(&mut v, 5);
        assert_eq!(v, [0, 1, 2, 3, 4]);
        thin(&mut v, 3);
        assert_eq!(v, [0, 2, 4]);
        let mut v: Vec<u32> = (0..10).collect();
        thin(&mut v, 1);
        assert_eq!(v, [9], "the last point stays");
    }
}
