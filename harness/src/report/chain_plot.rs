//! Chain height and forks over time (proof-of-work runs), as inline SVG like the other
//! charts: drawn from the agreement checker's [`ChainSeries`] in `results.json`, with the
//! reversed confirmations it found and the nemesis' faults behind.
//!
//! ```text
//!   agreement details ─► chain: per node best height (step line), highest confirmed
//!                    │   height (dashed), reorganisations (dots, bigger when deeper)
//!                    └─► reversed_confirmations (red crosses)
//!   bands (history time) ─► shaded behind, when node times are on the history's clock
//! ```
//!
//! x is seconds on the history's clock when the run recorded its nodes' clock origin
//! (local runs without clock faults, every simulation), else seconds since the first node
//! event (and then no fault bands: the two clocks cannot be lined up). Runs without `tip`
//! events have no series, and no section.

use super::bands::Band;
use super::escape::html;
use super::plot::{draw_bands, fmt_num, nice};
use super::rundata::RunData;
use std::fmt::Write;
use sunder_checker::agreement::{AgreementReport, ChainSeries, ReversedConfirmation};

const W: f64 = 1000.0;
const H: f64 = 320.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 26.0;
const BOTTOM: f64 = 28.0;
/// How far apart (px) the lines of nodes at the same height are drawn, and at most in all.
const NUDGE: f64 = 1.5;
const NUDGE_TOTAL: f64 = 8.0;
/// Node colours, `c0` to `c7` in report.css (red is kept for reversals).
const COLOURS: usize = 8;

/// The section, when the run's agreement checker has chain series; nothing otherwise.
pub fn section(s: &mut String, run: &RunData, bands: &[Band]) {
    let Some(r) = run
        .checkers()
        .iter()
        .filter(|c| c.name.starts_with("agreement"))
        .find_map(|c| serde_json::from_value::<AgreementReport>(c.details.clone()).ok())
        .filter(|r| r.chain.is_some())
    else {
        return;
    };
    let Some(chain) = &r.chain else { return };
    let origin = run.results.as_ref().and_then(|r| r.clock_origin_ms);
    s.push_str("<h2 id=\"chain\">Chain height and forks</h2>");
    let mut line: Vec<String> = chain.nodes.iter().map(|n| n.summary()).collect();
    if !r.reversed_confirmations.is_empty() {
        line.push(format!(
            "{} reversed confirmations",
            r.reversed_confirmations.len()
        ));
    }
    let _ = write!(
        s,
        "<p class=\"chain-summary\">{}</p>",
        html(&line.join(" · "))
    );
    if !r.byzantine.is_empty() {
        let _ = write!(
            s,
            "<p class=\"muted\">Byzantine nodes are not drawn: {}</p>",
            html(&r.byzantine.join(", "))
        );
    }
    s.push_str(&plot(chain, &r.reversed_confirmations, origin, bands));
}

/// The chart. `origin_ms` is the nodes' clock at the history's time 0, when known.
pub fn plot(
    chain: &ChainSeries,
    reversed: &[ReversedConfirmation],
    origin_ms: Option<u64>,
    bands: &[Band],
) -> String {
    // Series times count from chain.start_ms; reversals carry the nodes' own clock.
    let zero = origin_ms.unwrap_or(chain.start_ms) as f64;
    let sec = |ms_after_start: u64| (chain.start_ms as f64 + ms_after_start as f64 - zero) / 1e3;
    let sec_abs = |ms: u64| (ms as f64 - zero) / 1e3;
    let bands: &[Band] = if origin_ms.is_some() { bands } else { &[] };
    let reversals: Vec<(f64, &ReversedConfirmation)> = reversed
        .iter()
        .filter_map(|r| Some((sec_abs(r.time_ms?), r)))
        .collect();

    let firsts = chain
        .nodes
        .iter()
        .flat_map(|n| n.best.first().into_iter().chain(n.confirmed.first()))
        .map(|p| sec(p.0));
    let t0 = firsts
        .chain(reversals.iter().map(|r| r.0))
        .fold(0.0, f64::min);
    let t1 = chain
        .nodes
        .iter()
        .map(|n| sec(n.end_ms))
        .chain(bands.iter().map(|b| b.to as f64 / 1e9))
        .chain(reversals.iter().map(|r| r.0))
        .fold(t0 + 1.0, f64::max);
    let top_height = chain
        .nodes
        .iter()
        .flat_map(|n| n.best.iter().chain(&n.confirmed))
        .map(|p| p.1)
        .chain(reversed.iter().map(|r| r.height))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let step_y = nice(top_height / 5.0).max(1.0);
    let hi = step_y * (top_height / step_y).ceil();
    let x = |t: f64| LEFT + (t - t0) / (t1 - t0) * (W - LEFT - RIGHT);
    let y = |h: f64| H - BOTTOM - h / hi * (H - TOP - BOTTOM);

    let title = "Best chain height per node over time, with reorganisations";
    let mut s = String::new();
    let _ = write!(
        s,
        "<figure class=\"chart chain\"><figcaption>{title}</figcaption><svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{title}\">"
    );
    draw_bands(&mut s, bands, &x, TOP, H - BOTTOM);
    let _ = write!(
        s,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\"/><line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{0}\"/>",
        H - BOTTOM,
        W - RIGHT
    );
    for i in 0..=(hi / step_y).round() as u64 {
        let v = step_y * i as f64;
        let yy = y(v);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 4.0,
            yy + 4.0,
            fmt_num(v)
        );
    }
    let step_t = nice((t1 - t0) / 10.0);
    let mut t = (t0 / step_t).ceil() * step_t;
    while t <= t1 + 1e-9 {
        let _ = write!(
            s,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}s</text>",
            x(t),
            H - BOTTOM + 16.0,
            fmt_tick(t)
        );
        t += step_t;
    }
    let _ = write!(
        s,
        "<text class=\"tick\" x=\"4\" y=\"{:.1}\">height</text>",
        TOP - 14.0
    );
    // Nodes that agree draw the same line: each node's is shifted a pixel or so from the
    // next one's (a few pixels in all), so that every one shows.
    let spread = (chain.nodes.len().max(2) - 1) as f64;
    let nudge = |i: usize| (i as f64 - spread / 2.0) * NUDGE.min(NUDGE_TOTAL / spread);
    // A step line: each height holds until the next point, the last until the node's
    // last event.
    let steps = |points: &[(u64, u64)], end_ms: u64, dy: f64| -> String {
        let mut d = String::new();
        for (i, &(t, h)) in points.iter().enumerate() {
            let (px, py) = (x(sec(t)), y(h as f64) + dy);
            if i == 0 {
                let _ = write!(d, "M{px:.1},{py:.1}");
            } else {
                let _ = write!(d, "H{px:.1}V{py:.1}");
            }
        }
        if !points.is_empty() {
            let _ = write!(d, "H{:.1}", x(sec(end_ms)));
        }
        d
    };
    for (i, n) in chain.nodes.iter().enumerate() {
        let c = i % COLOURS;
        let name = html(&n.node);
        let _ = write!(
            s,
            "<path class=\"step confirmed c{c}\" d=\"{}\"><title>{name}: highest confirmed height</title></path>\
             <path class=\"step best c{c}\" d=\"{}\"><title>{name}: best chain height</title></path>",
            steps(&n.confirmed, n.end_ms, nudge(i)),
            steps(&n.best, n.end_ms, nudge(i)),
        );
    }
    // Markers over every line, so that no line hides one.
    for (i, n) in chain.nodes.iter().enumerate() {
        let c = i % COLOURS;
        for r in &n.reorgs {
            let _ = write!(
                s,
                "<circle class=\"reorg c{c}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{:.1}\"><title>{}: reorganisation at {:.2} s, {} block{} dropped, forked at height {}, new tip at {}</title></circle>",
                x(sec(r.time_ms)),
                y(r.height as f64) + nudge(i),
                2.5 + 1.5 * r.depth.min(6) as f64,
                html(&n.node),
                sec(r.time_ms),
                r.depth,
                if r.depth == 1 { "" } else { "s" },
                r.fork_height,
                r.height
            );
        }
    }
    for (t, r) in &reversals {
        let (px, py) = (x(*t), y(r.height as f64));
        let _ = write!(
            s,
            "<g class=\"reversal\"><title>at {t:.2} s: {}</title><path d=\"M{:.1},{:.1}L{:.1},{:.1}M{:.1},{:.1}L{:.1},{:.1}\"/></g>",
            html(&r.describe()),
            px - 5.0,
            py - 5.0,
            px + 5.0,
            py + 5.0,
            px - 5.0,
            py + 5.0,
            px + 5.0,
            py - 5.0
        );
    }
    s.push_str("</svg><div class=\"legend\">");
    for (i, n) in chain.nodes.iter().enumerate() {
        let _ = write!(
            s,
            "<span class=\"key node c{}\"></span>{} ",
            i % COLOURS,
            html(&n.node)
        );
    }
    s.push_str(
        "· <svg class=\"mg-key\" width=\"30\" height=\"10\"><line class=\"step\" x1=\"2\" y1=\"5\" x2=\"28\" y2=\"5\"/></svg>best height \
         <svg class=\"mg-key\" width=\"30\" height=\"10\"><line class=\"step confirmed\" x1=\"2\" y1=\"5\" x2=\"28\" y2=\"5\"/></svg>highest confirmed height \
         <svg class=\"mg-key\" width=\"16\" height=\"12\"><circle class=\"reorg\" cx=\"8\" cy=\"6\" r=\"4\"/></svg>reorganisation (bigger: deeper) \
         <svg class=\"mg-key\" width=\"14\" height=\"12\"><g class=\"reversal\"><path d=\"M3,2L11,10M3,10L11,2\"/></g></svg>reversed confirmation",
    );
    if origin_ms.is_none() {
        s.push_str(" · time since the first node event, on the nodes' clocks (not the history's)");
    }
    s.push_str("</div></figure>");
    s
}

/// A tick label: whole seconds as integers, else one decimal (ticks may be negative).
fn fmt_tick(t: f64) -> String {
    let t = if t.abs() < 1e-9 { 0.0 } else { t };
    if t.fract().abs() < 1e-9 {
        format!("{t:.0}")
    } else {
        format!("{t:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sunder_checker::agreement::{NodeChain, Reorg};

    fn node(name: &str, best: Vec<(u64, u64)>, reorgs: Vec<Reorg>) -> NodeChain {
        NodeChain {
            node: name.into(),
            confirmed: best
                .iter()
                .map(|&(t, h)| (t, h.saturating_sub(2)))
                .collect(),
            end_ms: best.last().map_or(0, |p| p.0 + 500),
            tips: best.len() as u64,
            reorg_count: reorgs.len() as u64,
            deepest_reorg: reorgs.iter().map(|r| r.depth).max().unwrap_or(0),
            best,
            reorgs,
        }
    }

    #[test]
    fn lines_markers_and_reversals_are_drawn_where_they_belong() {
        let chain = ChainSeries {
            start_ms: 10_000,
            nodes: vec![
                node("n1", vec![(0, 1), (1000, 2), (2000, 3)], vec![]),
                node(
                    "n<2>",
                    vec![(0, 1), (1500, 2), (3000, 4)],
                    vec![Reorg {
                        time_ms: 3000,
                        depth: 2,
                        fork_height: 2,
                        height: 4,
                    }],
                ),
            ],
        };
        let rc = ReversedConfirmation {
            height: 2,
            node_a: "n1".into(),
            hash_a: "aa".into(),
            node_b: "n1".into(),
            hash_b: "bb".into(),
            time_ms: Some(13_000),
        };
        let band = Band {
            kind: "partition".into(),
            from: 500_000_000,
            to: 1_500_000_000,
            label: "n1 ✗ n2".into(),
            failed: false,
            open: false,
        };
        // Node clock 10 s at the history's 0: a point at 0 ms after start is at 0 s.
        let svg = plot(
            &chain,
            std::slice::from_ref(&rc),
            Some(10_000),
            std::slice::from_ref(&band),
        );
        assert_eq!(svg.matches("<path class=\"step best c").count(), 2);
        assert_eq!(svg.matches("<path class=\"step confirmed c").count(), 2);
        assert!(svg.contains("<title>n&lt;2&gt;: best chain height</title>"));
        // n1's best line: three steps, held to its last event (2.5 s).
        let n1 = svg
            .split("<path class=\"step best c0\" d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(n1.matches('V').count(), 2, "{n1}");
        assert!(n1.starts_with(&format!("M{LEFT:.1},")), "{n1}");
        assert!(svg.contains("new tip at 4</title>"));
        assert!(svg.contains("2 blocks dropped, forked at height 2"));
        assert!(svg.contains(
            "<g class=\"reversal\"><title>at 3.00 s: n1 reversed its confirmation at height 2"
        ));
        assert_eq!(svg.matches("<g class=\"band band-partition\">").count(), 1);
        assert!(svg.contains("<span class=\"key node c1\"></span>n&lt;2&gt;"));
        assert!(!svg.contains("nodes' clocks"));

        // Without the clock origin: from the first node event, and no fault bands.
        let svg = plot(&chain, &[rc], None, &[band]);
        assert!(!svg.contains("band-partition"));
        assert!(svg.contains("at 3.00 s: n1 reversed"));
        assert!(svg.contains("nodes' clocks"));
    }

    #[test]
    fn nodes_that_start_before_the_history_reach_left_of_zero() {
        let chain = ChainSeries {
            start_ms: 9_000,
            nodes: vec![node("n1", vec![(0, 1), (4000, 2)], vec![])],
        };
        let svg = plot(&chain, &[], Some(10_000), &[]);
        assert!(svg.contains(">-1s</text>"), "{svg}");
        assert!(svg.contains(">0s</text>"));
    }
}
