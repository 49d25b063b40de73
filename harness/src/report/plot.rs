//! Throughput and latency over time as inline SVG, with the nemesis' faults drawn behind
//! the lines as labelled shaded bands.
//!
//! ```text
//!   stats.series (one bucket per second) ─┬─► throughput: ok / fail / info per second
//!   bands (from the history) ─────────────┴─► latency: p50 / p99 (log scale)
//! ```

use super::bands::Band;
use super::escape::html;
use std::fmt::Write;
use sunder_checker::stats::Bucket;

const W: f64 = 1000.0;
const H: f64 = 230.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 26.0;
const BOTTOM: f64 = 28.0;

pub struct Series {
    pub name: &'static str,
    pub class: &'static str,
    pub points: Vec<(f64, Option<f64>)>,
}

/// Both charts; empty when there is no series to draw.
pub fn charts(buckets: &[Bucket], bands: &[Band]) -> String {
    if buckets.is_empty() {
        return "<p class=\"muted\">No operations completed: nothing to plot.</p>".into();
    }
    let col = |field: fn(&Bucket) -> Option<f64>| -> Vec<(f64, Option<f64>)> {
        buckets
            .iter()
            .map(|b| (b.second as f64 + 0.5, field(b)))
            .collect()
    };
    let span = buckets.len() as f64;
    let span = bands
        .iter()
        .map(|b| b.to as f64 / 1e9)
        .fold(span, f64::max)
        .max(1.0);
    let tp = vec![
        Series {
            name: "ok",
            class: "ok",
            points: col(|b| Some(b.ok as f64)),
        },
        Series {
            name: "fail",
            class: "fail",
            points: col(|b| Some(b.fail as f64)),
        },
        Series {
            name: "info",
            class: "info",
            points: col(|b| Some(b.info as f64)),
        },
    ];
    let lat = vec![
        Series {
            name: "p50",
            class: "p50",
            points: col(|b| b.p50_ms),
        },
        Series {
            name: "p99",
            class: "p99",
            points: col(|b| b.p99_ms),
        },
    ];
    let mut out = String::new();
    out.push_str(&chart(
        "Throughput (operations completed per second)",
        "ops/s",
        &tp,
        bands,
        span,
        false,
    ));
    out.push_str(&chart(
        "Latency of ok operations (ms, log scale)",
        "ms",
        &lat,
        bands,
        span,
        true,
    ));
    out
}

/// Rows of band labels above a chart, and their height (the labels' font is 10.5 px).
const LABEL_ROWS: usize = 2;
const LABEL_ROW_H: f64 = 11.0;

/// A generous width for a label in the charts' font: labels are short (a fault kind and
/// its nodes), and a wide guess only hides a label that would have fitted.
fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * 6.2
}

/// For labels starting at `x` with width `w` (in start order), the row each is drawn in,
/// so that no two labels of a row overlap; `None` for a label with no room in any row.
/// Faults every second or two would otherwise print their labels over one another.
fn label_rows(labels: &[(f64, f64)], rows: usize) -> Vec<Option<usize>> {
    const GAP: f64 = 4.0;
    let mut ends = vec![f64::NEG_INFINITY; rows];
    labels
        .iter()
        .map(|&(x, w)| {
            let row = ends.iter().position(|&end| end + GAP <= x)?;
            ends[row] = x + w;
            Some(row)
        })
        .collect()
}

fn chart(
    title: &str,
    unit: &str,
    series: &[Series],
    bands: &[Band],
    span: f64,
    log: bool,
) -> String {
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.1));
    let (lo, hi) = if log {
        let pos: Vec<f64> = values.filter(|v| *v > 0.0).collect();
        let lo = pos.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = pos.iter().copied().fold(0.0, f64::max);
        if pos.is_empty() {
            (0.0, 1.0)
        } else {
            (
                lo.log10().floor(),
                hi.log10().ceil().max(lo.log10().floor() + 1.0),
            )
        }
    } else {
        let max = values.fold(0.0, f64::max).max(1.0);
        let step = nice(max / 4.0);
        (0.0, step * (max / step).ceil())
    };
    let x = |t: f64| LEFT + t / span * (W - LEFT - RIGHT);
    let y = |v: f64| {
        let v = if log { v.max(1e-9).log10() } else { v };
        H - BOTTOM - (v - lo) / (hi - lo) * (H - TOP - BOTTOM)
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<figure class=\"chart\"><figcaption>{}</figcaption><svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">",
        html(title),
        html(title)
    );
    draw_bands(&mut s, bands, &x, TOP, H - BOTTOM);
    // Axes, grid and tick labels.
    let _ = write!(
        s,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\"/><line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{0}\"/>",
        H - BOTTOM,
        W - RIGHT
    );
    let yticks: Vec<f64> = if log {
        (lo as i32..=hi as i32).map(|e| 10f64.powi(e)).collect()
    } else {
        let step = nice(hi / 4.0);
        (0..=(hi / step).round() as i32)
            .map(|i| step * f64::from(i))
            .collect()
    };
    for v in yticks {
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
    let step = nice(span / 10.0).max(1.0);
    let mut t = 0.0;
    while t <= span + 1e-9 {
        let _ = write!(
            s,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}s</text>",
            x(t),
            H - BOTTOM + 16.0,
            fmt_num(t)
        );
        t += step;
    }
    let _ = write!(
        s,
        "<text class=\"tick\" x=\"4\" y=\"{:.1}\">{}</text>",
        TOP - 14.0,
        html(unit)
    );
    for ser in series {
        // A gap (a second with no value) breaks the line rather than drawing through it.
        let mut d = String::new();
        let mut pen_up = true;
        for &(t, v) in &ser.points {
            match v {
                Some(v) if !log || v > 0.0 => {
                    let _ = write!(
                        d,
                        "{}{:.1},{:.1} ",
                        if pen_up { "M" } else { "L" },
                        x(t),
                        y(v)
                    );
                    pen_up = false;
                }
                _ => pen_up = true,
            }
        }
        let _ = write!(
            s,
            "<path class=\"line {}\" d=\"{}\"><title>{}</title></path>",
            ser.class,
            d.trim_end(),
            ser.name
        );
        // Short runs have few points, and a lone point draws no line: mark each one.
        if ser.points.len() <= 120 {
            for &(t, v) in &ser.points {
                if let Some(v) = v.filter(|v| !log || *v > 0.0) {
                    let _ = write!(
                        s,
                        "<circle class=\"dot {}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.2\"/>",
                        ser.class,
                        x(t),
                        y(v)
                    );
                }
            }
        }
    }
    s.push_str("</svg><div class=\"legend\">");
    for ser in series {
        let _ = write!(s, "<span class=\"key {}\"></span>{} ", ser.class, ser.name);
    }
    s.push_str("</div></figure>");
    s
}

/// The faults as labelled shaded bands from `top` to `bottom` (the x axis), `x` mapping
/// seconds to the chart's x; labels above `top`, in up to [`LABEL_ROWS`] rows.
pub(super) fn draw_bands(
    s: &mut String,
    bands: &[Band],
    x: &dyn Fn(f64) -> f64,
    top: f64,
    bottom: f64,
) {
    let texts: Vec<String> = bands
        .iter()
        .map(|b| format!("{} {}", b.kind, b.label))
        .collect();
    let rows = label_rows(
        &bands
            .iter()
            .zip(&texts)
            .map(|(b, t)| (x(b.from as f64 / 1e9) + 2.0, text_width(t)))
            .collect::<Vec<_>>(),
        LABEL_ROWS,
    );
    for ((b, text), row) in bands.iter().zip(&texts).zip(rows) {
        let (x0, x1) = (x(b.from as f64 / 1e9), x(b.to as f64 / 1e9));
        // A label with no room in any row is left out; the band's tooltip still names it.
        let label = row.map_or(String::new(), |r| {
            format!(
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x0 + 2.0,
                top - 4.0 - r as f64 * LABEL_ROW_H,
                html(text)
            )
        });
        let _ = write!(
            s,
            "<g class=\"band band-{k}\"><title>{k} {l} ({:.1}s–{:.1}s)</title><rect x=\"{x0:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{:.1}\"/>{label}</g>",
            b.from as f64 / 1e9,
            b.to as f64 / 1e9,
            (x1 - x0).max(2.0),
            bottom - top,
            k = html(&b.kind),
            l = html(&b.label),
        );
    }
}

/// 1, 2 or 5 times a power of ten, at least `v`.
pub(super) fn nice(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * p)
}

pub(super) fn fmt_num(v: f64) -> String {
    if v >= 1.0 && v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_of_dense_faults_never_overlap_in_a_row() {
        // A fault every 10 px, each label 60 px wide: two rows hold some, the rest wait.
        let labels: Vec<(f64, f64)> = (0..30).map(|i| (i as f64 * 10.0, 60.0)).collect();
        let rows = label_rows(&labels, 2);
        for row in 0..2 {
            let placed: Vec<&(f64, f64)> = labels
                .iter()
                .zip(&rows)
                .filter(|(_, r)| **r == Some(row))
                .map(|(l, _)| l)
                .collect();
            assert!(placed.len() >= 3, "row {row}: {placed:?}");
            for w in placed.windows(2) {
                assert!(w[0].0 + w[0].1 < w[1].0, "overlap in row {row}: {w:?}");
            }
        }
        assert!(rows.iter().any(Option::is_none));
        // Sparse faults all get the first row.
        let sparse: Vec<(f64, f64)> = (0..5).map(|i| (i as f64 * 100.0, 60.0)).collect();
        assert!(label_rows(&sparse, 2).iter().all(|r| *r == Some(0)));
    }

    #[test]
    fn a_fault_every_second_keeps_its_labels_apart_in_the_chart() {
        let series: Vec<Bucket> = (0..60)
            .map(|s| serde_json::from_value(json!({"second": s, "ok": 10, "fail": 0, "info": 0, "p50_ms": 1.0, "p99_ms": 2.0})).unwrap())
            .collect();
        let bands: Vec<Band> = (0..60)
            .map(|s| Band {
                kind: "partition".into(),
                from: s * 1_000_000_000,
                to: s * 1_000_000_000 + 500_000_000,
                label: "n1,n2 ✗ n3,n4,n5".into(),
                failed: false,
                open: false,
            })
            .collect();
        let svg = charts(&series, &bands);
        let first_chart = svg.split("<figure").nth(1).unwrap();
        let text_xy: Vec<(f64, f64)> = first_chart
            .split("<text x=\"")
            .skip(1)
            .filter(|t| t.contains("partition n1"))
            .map(|t| {
                let x: f64 = t.split('"').next().unwrap().parse().unwrap();
                let y: f64 = t
                    .split("y=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                (x, y)
            })
            .collect();
        assert!(!text_xy.is_empty());
        let width = text_width("partition n1,n2 ✗ n3,n4,n5");
        for (i, a) in text_xy.iter().enumerate() {
            for b in &text_xy[i + 1..] {
                assert!(
                    a.1 != b.1 || (a.0 - b.0).abs() > width,
                    "labels overlap: {a:?} {b:?}"
                );
            }
        }
        // Every band keeps its full description in its tooltip.
        assert_eq!(
            svg.matches("<title>partition n1,n2 ✗ n3,n4,n5").count(),
            2 * 60
        );
    }

    #[test]
    fn bands_and_lines_are_drawn() {
        let series: Vec<Bucket> = serde_json::from_value(json!([
            {"second": 0, "ok": 10, "fail": 1, "info": 0, "p50_ms": 0.5, "p99_ms": 3.0},
            {"second": 1, "ok": 0, "fail": 0, "info": 2, "p50_ms": null, "p99_ms": null},
            {"second": 2, "ok": 12, "fail": 0, "info": 0, "p50_ms": 0.4, "p99_ms": 40.0}
        ]))
        .unwrap();
        let b = Band {
            kind: "partition".into(),
            from: 500_000_000,
            to: 2_000_000_000,
            label: "n1✗n2 <x>".into(),
            failed: false,
            open: false,
        };
        let svg = charts(&series, &[b]);
        assert_eq!(svg.matches("band-partition").count(), 2);
        assert!(svg.contains("partition n1✗n2 &lt;x&gt;"));
        assert!(svg.contains("class=\"line p99\""));
        // The p50 line breaks over the empty second: two move-tos.
        let p50 = svg.split("class=\"line p50\" d=\"").nth(1).unwrap();
        assert_eq!(p50.split('"').next().unwrap().matches('M').count(), 2);
        assert_eq!(nice(7.0), 10.0);
        assert_eq!(nice(0.3), 0.5);
    }
}
