//! The message diagram of a Maelstrom run (`messages.jsonl`): a space-time (Lamport) view,
//! one row per process, each message an arrow from (its source, when it was sent) to (its
//! destination, when it left the network), drawn by `messages.js` on a canvas that zooms
//! and pans as the operation timeline does (`timeaxis.js`).
//!
//! ```text
//!   messages.jsonl ─► records, sorted by send time ─► at most MAX_EMBED, a run of them
//!                                                     around the first window
//!   procs  = ["n1", "n2", "lin-kv", "c1", ...]         lanes: nodes, services, clients
//!   msgs   = [sent_us, delivered_us, src, dest, type, fate, msg_id, in_reply_to, ...]
//!   home   = the first window: around the first anomaly, else the first two seconds
//! ```
//!
//! Eight numbers a message keep 50,000 messages to about 3 MB of the page.

use super::escape::{html, script_json};
use super::rundata::RunData;
use serde::Serialize;
use std::fmt::Write;
use sunder_maelstrom::counts::MessageCounts;
use sunder_maelstrom::messages::{LogSummary, MessageFate, MessageRecord};
use sunder_maelstrom::network::{is_client, is_node};

/// Most messages embedded in one page.
pub const MAX_EMBED: usize = 50_000;
/// Up to this many clients get a lane each; more share one.
const CLIENT_LANES: usize = 8;
/// The first window's length when no anomaly dates it, and its half-width around one.
const WINDOW_US: i64 = 2_000_000;
/// Colours for the most frequent types; the rest share [`OTHER`].
const PALETTE: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
    "#bcbd22", "#393b79",
];
const OTHER: &str = "#9a9aa6";
/// An absent time or id in `msgs`.
const NONE: i64 = -1;
/// An id too large to pass through JavaScript's numbers exactly.
const HUGE: i64 = -2;

#[derive(Debug, Serialize)]
pub struct Diagram {
    /// Every process that sent or received a message, in lane order.
    pub procs: Vec<String>,
    /// Per process, its lane.
    pub lane_of: Vec<usize>,
    pub lanes: Vec<String>,
    /// Message types, most frequent first, and each one's colour.
    pub types: Vec<String>,
    pub colors: Vec<&'static str>,
    /// Fate codes: `msgs`' sixth number indexes this.
    pub fates: Vec<&'static str>,
    /// Eight numbers per message: sent and delivered (µs since the run's start, -1 when it
    /// never left the network), source and destination (indexes into `procs`), type, fate,
    /// `msg_id` and `in_reply_to` (-1 absent, -2 too large to show).
    pub msgs: Vec<i64>,
    /// How far the view pans and zooms out (µs): the run, or the embedded part of it.
    pub lo_us: i64,
    pub hi_us: i64,
    /// The first window.
    pub home: [i64; 2],
    /// The first anomaly's time, when the run is invalid and its evidence has one.
    pub anomaly_us: Option<i64>,
}

/// What the section says about the data under the diagram.
#[derive(Debug)]
pub struct Built {
    pub diagram: Diagram,
    /// Messages read, and embedded.
    pub total: usize,
    pub embedded: usize,
    /// Send times of the first and last embedded message (µs).
    pub from_us: i64,
    pub to_us: i64,
    pub home_label: String,
}

fn us(ms: f64) -> i64 {
    (ms * 1e3).round() as i64
}

fn id(v: Option<u64>) -> i64 {
    match v {
        None => NONE,
        Some(v) if v < (1 << 53) => v as i64,
        Some(_) => HUGE,
    }
}

/// Nodes in numeric order, then services by name, then clients in numeric order.
fn proc_order(p: &str) -> (u8, u64, String) {
    let num = |s: &str| s[1..].parse::<u64>().unwrap_or(u64::MAX);
    if is_node(p) {
        (0, num(p), String::new())
    } else if is_client(p) {
        (2, num(p), String::new())
    } else {
        (1, 0, p.to_string())
    }
}

/// `records` as the diagram's data. `anomaly_s` dates the first window; `run_end_us` is
/// the history's last time, so a diagram of the whole run spans what the timeline does.
pub fn build(records: &[MessageRecord], anomaly_s: Option<f64>, run_end_us: i64) -> Built {
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by(|&a, &b| records[a].sent_ms.total_cmp(&records[b].sent_ms));
    let end_us = records
        .iter()
        .map(|r| us(r.delivered_ms.unwrap_or(r.sent_ms).max(r.sent_ms)))
        .max()
        .unwrap_or(0)
        .max(run_end_us)
        .max(1);
    let first_us = order.first().map_or(0, |&i| us(records[i].sent_ms));
    let anomaly_us = anomaly_s
        .filter(|t| t.is_finite() && *t >= 0.0)
        .map(|t| (t * 1e6) as i64);
    let (home, home_label) = match anomaly_us {
        Some(a) => (
            [
                a.saturating_sub(WINDOW_US / 2).max(0),
                a.saturating_add(WINDOW_US / 2).min(end_us),
            ],
            "around the first anomaly".to_string(),
        ),
        None => (
            [first_us, first_us.saturating_add(WINDOW_US).min(end_us)],
            "first 2 s".to_string(),
        ),
    };
    // Too many to embed: a run of MAX_EMBED by send time, starting a little before the
    // first window so that messages in flight at its start are drawn.
    let (from, to) = if order.len() <= MAX_EMBED {
        (0, order.len())
    } else {
        let at = order.partition_point(|&i| us(records[i].sent_ms) < home[0]);
        let to = (at.saturating_sub(MAX_EMBED / 10) + MAX_EMBED).min(order.len());
        (to - MAX_EMBED, to)
    };
    let chosen = &order[from..to];
    let all = chosen.len() == order.len();
    let mut procs: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &i in chosen {
        for p in [&records[i].src, &records[i].dest] {
            if seen.insert(p.as_str()) {
                procs.push(p.clone());
            }
        }
    }
    procs.sort_by_cached_key(|p| proc_order(p));
    let clients = procs.iter().filter(|p| is_client(p)).count();
    let mut lanes: Vec<String> = Vec::new();
    let mut lane_of = Vec::with_capacity(procs.len());
    for p in &procs {
        if is_client(p) && clients > CLIENT_LANES {
            if lanes.last().is_none_or(|l| !l.starts_with("clients")) {
                lanes.push(format!("clients ({clients})"));
            }
        } else {
            lanes.push(p.clone());
        }
        lane_of.push(lanes.len() - 1);
    }
    let index: std::collections::HashMap<&str, usize> = procs
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let mut freq: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for &i in chosen {
        *freq.entry(records[i].kind.as_str()).or_default() += 1;
    }
    let mut types: Vec<(&str, usize)> = freq.into_iter().collect();
    types.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let type_index: std::collections::HashMap<&str, usize> = types
        .iter()
        .enumerate()
        .map(|(i, (t, _))| (*t, i))
        .collect();
    let fate_code = |f: MessageFate| {
        MessageFate::ALL
            .iter()
            .position(|x| *x == f)
            .expect("every fate is in ALL")
    };
    let mut msgs = Vec::with_capacity(chosen.len() * 8);
    for &i in chosen {
        let r = &records[i];
        msgs.extend([
            us(r.sent_ms),
            r.delivered_ms.map_or(NONE, us),
            index[r.src.as_str()] as i64,
            index[r.dest.as_str()] as i64,
            type_index[r.kind.as_str()] as i64,
            fate_code(r.fate) as i64,
            id(r.msg_id),
            id(r.in_reply_to),
        ]);
    }
    let send = |k: Option<&usize>| k.map_or(0, |&i| us(records[i].sent_ms));
    let (from_us, to_us) = (send(chosen.first()), send(chosen.last()));
    let (lo_us, hi_us) = if all {
        (0, end_us)
    } else {
        let last = chosen
            .iter()
            .map(|&i| us(records[i].delivered_ms.unwrap_or(records[i].sent_ms)))
            .max()
            .unwrap_or(to_us);
        (from_us, last.max(from_us.saturating_add(1)))
    };
    let home = [home[0].clamp(lo_us, hi_us), home[1].clamp(lo_us, hi_us)];
    Built {
        diagram: Diagram {
            colors: (0..types.len())
                .map(|i| PALETTE.get(i).copied().unwrap_or(OTHER))
                .collect(),
            types: types.iter().map(|(t, _)| t.to_string()).collect(),
            fates: MessageFate::ALL.iter().map(|f| f.as_str()).collect(),
            procs,
            lane_of,
            lanes,
            msgs,
            lo_us,
            hi_us,
            home,
            anomaly_us,
        },
        total: records.len(),
        embedded: chosen.len(),
        from_us,
        to_us,
        home_label,
    }
}

const MESSAGES_JS: &str = include_str!("messages.js");

/// A sample of a fate's line style for the legend.
fn fate_key(f: MessageFate) -> String {
    let (dash, mark) = match f {
        MessageFate::Delivered => ("", "arrow"),
        MessageFate::Duplicate => ("2 3", "arrow"),
        MessageFate::Reordered => ("7 4", "arrow"),
        MessageFate::Lost | MessageFate::Cut => ("", "half"),
        MessageFate::Down | MessageFate::QueueFull | MessageFate::UnknownDest => ("", "end"),
    };
    let cross = match f {
        MessageFate::Cut => "#c0392b",
        _ => "#333",
    };
    let line_end = if mark == "half" { 16 } else { 30 };
    let mut svg = format!(
        "<svg class=\"mg-key\" width=\"36\" height=\"10\"><line x1=\"2\" y1=\"5\" x2=\"{line_end}\" y2=\"5\" stroke=\"#556\" stroke-width=\"1.6\" stroke-dasharray=\"{dash}\"/>"
    );
    match mark {
        "arrow" => svg.push_str("<path d=\"M34 5 L28 2 L28 8 Z\" fill=\"#556\"/>"),
        _ => {
            let _ = write!(
                svg,
                "<path d=\"M{a} 2 L{b} 8 M{a} 8 L{b} 2\" stroke=\"{cross}\" stroke-width=\"1.8\"/>",
                a = line_end - 3,
                b = line_end + 3
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The "Messages" section, for a run with `messages.jsonl` (Maelstrom runs); nothing for
/// others.
/// The router's counts from `results.json`'s `messages`, one line.
fn counts(s: &mut String, run: &RunData) {
    let Some(v) = run.results.as_ref().and_then(|r| r.extra.get("messages")) else {
        return;
    };
    let Ok(c) = serde_json::from_value::<MessageCounts>(v.clone()) else {
        return;
    };
    let _ = writeln!(
        s,
        "<p class=\"muted\">{} operations; client→server {}, server→client {}, \
         server→server {} ({:.2} per operation), server↔service {}; {:.2} messages per \
         operation in all; cut {}, lost {}, duplicated {}, reordered {}</p>",
        c.operations,
        c.client_to_server,
        c.server_to_client,
        c.server_to_server,
        c.server_to_server_per_op,
        c.server_to_service + c.service_to_server,
        c.all_per_op,
        c.cut,
        c.lost,
        c.duplicated,
        c.reordered
    );
}

pub fn section(s: &mut String, run: &RunData) {
    let Some(m) = &run.messages else {
        if run.config["target"] == "maelstrom" {
            s.push_str("<h2 id=\"messages-h\">Messages</h2><p class=\"muted\">No messages.jsonl: this run's version of sunder did not record messages.</p>\n");
        }
        return;
    };
    s.push_str("<h2 id=\"messages-h\">Messages</h2>");
    counts(s, run);
    let end_us = run
        .history
        .as_ref()
        .and_then(|h| h.events.iter().map(|e| (e.time / 1000) as i64).max())
        .unwrap_or(0);
    let anomaly = run
        .results
        .as_ref()
        .and_then(|r| r.first_anomaly.as_ref())
        .and_then(|a| a.time_s);
    let b = build(&m.records, anomaly, end_us);
    let mut notes: Vec<String> = Vec::new();
    if b.embedded < b.total {
        notes.push(format!(
            "the page holds {} of the {} messages read, those sent from {:.3} s to {:.3} s; {} has them all",
            b.embedded,
            b.total,
            b.from_us as f64 / 1e6,
            b.to_us as f64 / 1e6,
            sunder_maelstrom::messages::FILE
        ));
    }
    if m.unread > 0 {
        notes.push(format!(
            "{} lines past the first {} of the file were not read",
            m.unread,
            m.records.len()
        ));
    }
    if let Some(l) = &m.summary
        && l.omitted() > 0
    {
        notes.push(format!(
            "the run left {} messages out of the file ({} past its limit of {}, {} its writer could not keep up with, {} after a write error)",
            l.omitted(),
            l.over_limit,
            l.limit,
            l.writer_behind,
            l.failed
        ));
    }
    if m.records.is_empty() {
        s.push_str("<p class=\"muted\">messages.jsonl holds no messages.</p>\n");
        for n in &notes {
            let _ = write!(s, "<div class=\"warn\">{}</div>", html(n));
        }
        return;
    }
    let d = &b.diagram;
    let _ = write!(
        s,
        "<div class=\"tl-controls\">{} messages between {} processes in {} lanes (nodes, services, clients) · each an arrow from its sender, when sent, to its destination, when delivered · wheel to zoom, drag to pan, double-click for the first window</div>\
         <div class=\"tl-controls\">window from <input id=\"mg-from\" type=\"number\" step=\"0.1\" min=\"0\"> s to <input id=\"mg-to\" type=\"number\" step=\"0.1\" min=\"0\"> s <button id=\"mg-show\">show</button> \
         <button id=\"mg-home\">{}</button> <button id=\"mg-all\">{}</button></div>",
        b.total,
        d.procs.len(),
        d.lanes.len(),
        html(&b.home_label),
        if b.embedded < b.total {
            "all embedded"
        } else {
            "whole run"
        },
    );
    for n in &notes {
        let _ = write!(s, "<div class=\"warn\">{}</div>", html(n));
    }
    s.push_str("<div class=\"legend\">");
    for (t, c) in d.types.iter().zip(&d.colors) {
        let _ = write!(
            s,
            "<span class=\"key\" style=\"background:{c}\"></span>{}",
            html(t)
        );
    }
    s.push_str("<br>");
    for f in MessageFate::ALL {
        let _ = write!(s, " {}{}", fate_key(f), html(f.as_str()));
    }
    let _ = writeln!(
        s,
        "</div><div id=\"mg-wrap\"><canvas id=\"mgram\"></canvas></div><div id=\"mg-tip\"></div>\
         <script type=\"application/json\" id=\"messages-data\">{}</script><script>{MESSAGES_JS}</script>",
        script_json(d)
    );
}

/// `messages.jsonl` as the report reads it.
#[derive(Debug, Default)]
pub struct MessagesFile {
    pub records: Vec<MessageRecord>,
    /// Lines past the reader's bound.
    pub unread: u64,
    /// `results.json`'s `message_log`: what the run left out of the file.
    pub summary: Option<LogSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(sent: f64, src: &str, dest: &str, kind: &str, fate: MessageFate) -> MessageRecord {
        let mut r = MessageRecord::new(sent, src, dest, kind, Some(1), None, fate);
        if fate.arrived() {
            r.delivered_ms = Some(sent + 2.0);
        }
        r
    }

    #[test]
    fn lanes_put_nodes_then_services_then_clients_and_fold_many_clients() {
        let mut rs = vec![
            rec(1.0, "c2", "n10", "read", MessageFate::Delivered),
            rec(2.0, "n10", "n2", "gossip", MessageFate::Cut),
            rec(3.0, "n2", "lin-kv", "cas", MessageFate::Delivered),
            rec(4.0, "lin-kv", "n2", "cas_ok", MessageFate::Delivered),
            rec(5.0, "n10", "c2", "read_ok", MessageFate::Delivered),
        ];
        let b = build(&rs, None, 0);
        let d = &b.diagram;
        assert_eq!(d.procs, ["n2", "n10", "lin-kv", "c2"]);
        assert_eq!(d.lanes, ["n2", "n10", "lin-kv", "c2"]);
        assert_eq!(d.msgs.len(), 5 * 8);
        // The cut message: sent at 2 ms, never delivered, n10 → n2, fate `cut`.
        let cut = &d.msgs[8..16];
        assert_eq!(&cut[..4], &[2000, -1, 1, 0]);
        assert_eq!(d.fates[cut[5] as usize], "cut");
        assert_eq!(d.types[cut[4] as usize], "gossip");
        assert_eq!(d.home, [1000, 7000]);
        for i in 3..13 {
            rs.push(rec(
                6.0,
                &format!("c{i}"),
                "n2",
                "read",
                MessageFate::Delivered,
            ));
        }
        let d = build(&rs, None, 0).diagram;
        assert_eq!(d.lanes.len(), 4, "{:?}", d.lanes);
        assert_eq!(d.lanes[3], "clients (11)");
        assert!(d.lane_of[3..].iter().all(|&l| l == 3));
        assert_eq!(d.types[0], "read", "the most frequent type first");
    }

    /// A Maelstrom run's page: the section, its data as the file has it, the counts of what
    /// the run left out, and a bad line named rather than dropped in silence.
    #[test]
    fn the_page_of_a_maelstrom_run_draws_its_messages() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(
            dir.join("config.json"),
            r#"{"config":{"name":"m","target":"maelstrom","workload":"echo","seed":1},"replay":"sunder test"}"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("history.jsonl"),
            "{\"index\":0,\"time\":1000000,\"type\":\"invoke\",\"process\":0,\"f\":\"echo\",\"value\":1}\n\
             {\"index\":1,\"time\":9000000,\"type\":\"ok\",\"process\":0,\"f\":\"echo\",\"value\":1}\n",
        )
        .unwrap();
        let mut lines = String::new();
        let mut req = rec(1.5, "c1", "n1", "echo", MessageFate::Delivered);
        req.msg_id = Some(4);
        let mut reply = rec(4.0, "n1", "c1", "echo_ok", MessageFate::Delivered);
        reply.in_reply_to = Some(4);
        for r in [&req, &reply] {
            lines.push_str(&serde_json::to_string(r).unwrap());
            lines.push('\n');
        }
        lines.push_str("{\"sent_ms\":\n");
        std::fs::write(dir.join("messages.jsonl"), lines).unwrap();
        std::fs::write(
            dir.join("results.json"),
            r#"{"name":"m","seed":1,"exit_code":0,"verdict":"valid","config":{"target":"maelstrom"},
               "message_log":{"file":"messages.jsonl","limit":2,"written":2,"over_limit":3,"writer_behind":0},
               "messages":{"client_to_server":1,"server_to_client":1,"operations":1,"all_per_op":2.0}}"#,
        )
        .unwrap();
        let page = std::fs::read_to_string(super::super::write_report(dir).unwrap()).unwrap();
        assert!(page.contains("<h2 id=\"messages-h\">Messages</h2>"));
        assert!(
            page.contains("1 operations; client→server 1, server→client 1, server→server 0"),
            "the router's counts are on the page"
        );
        assert!(
            page.contains("messages.jsonl line 3: not a message record"),
            "the bad line is named"
        );
        assert!(page.contains("the run left 3 messages out of the file (3 past its limit of 2"));
        let data = page
            .split("id=\"messages-data\">")
            .nth(1)
            .and_then(|s| s.split("</script>").next())
            .unwrap();
        let d: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(d["procs"], serde_json::json!(["n1", "c1"]));
        assert_eq!(
            d["msgs"],
            serde_json::json!([1500, 3500, 1, 0, 0, 0, 4, -1, 4000, 6000, 0, 1, 1, 0, 1, 4])
        );
        // The whole run is 9 ms; the first window starts at the first message.
        assert_eq!(d["lo_us"], 0);
        assert_eq!(d["hi_us"], 9000);
        assert_eq!(d["home"], serde_json::json!([1500, 9000]));
        // Any run without messages.jsonl that is not Maelstrom's has no section.
        std::fs::remove_file(dir.join("messages.jsonl")).unwrap();
        std::fs::write(
            dir.join("results.json"),
            r#"{"name":"m","seed":1,"exit_code":0,"verdict":"valid","config":{"target":"raft"}}"#,
        )
        .unwrap();
        let page = std::fs::read_to_string(super::super::write_report(dir).unwrap()).unwrap();
        assert!(!page.contains("messages-h"));
    }

    #[test]
    fn a_large_file_embeds_a_bounded_run_around_the_first_anomaly() {
        let n = MAX_EMBED * 3;
        // One message a millisecond, so the anomaly at 100 s sits at message 100,000.
        let rs: Vec<MessageRecord> = (0..n)
            .map(|i| rec(i as f64, "n1", "n2", "gossip", MessageFate::Delivered))
            .collect();
        let b = build(&rs, Some(100.0), 0);
        assert_eq!(b.embedded, MAX_EMBED);
        assert_eq!(b.total, n);
        let d = &b.diagram;
        assert_eq!(d.msgs.len(), MAX_EMBED * 8);
        assert_eq!(d.home, [99_000_000, 101_000_000]);
        assert!(b.from_us <= d.home[0] && d.home[1] <= b.to_us, "{b:?}");
        assert_eq!(d.lo_us, b.from_us);
        assert!(
            serde_json::to_string(d).unwrap().len() < 4_000_000,
            "the data stays a few megabytes"
        );
        // No anomaly: the first messages.
        let b = build(&rs, None, 0);
        assert_eq!(b.from_us, 0);
        assert_eq!(b.diagram.home, [0, 2_000_000]);
    }
}
