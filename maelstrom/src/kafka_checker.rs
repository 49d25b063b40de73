//! The kafka workload's checker: Maelstrom's anomalies over append-only logs per key, and
//! lost messages by a final read of every node.
//!
//! ```text
//!  send ok [offset, msg] ─┐
//!  poll ok {key: [[o,m]]} ┼─► (key, offset) → msg ─► inconsistent: two messages at one offset
//!  final-poll ok ─────────┘   (key, msg) → offsets ─► duplicate: one message at two offsets
//!  each poll ─► offsets strictly increasing from where it asked ─► nonmonotonic
//!            ─► a known offset between where it asked and its last offset, not returned ─► skip
//!  each process's acked sends to a key ─► offsets increasing ─► nonmonotonic send
//!  commits and committed-offset lists in real time ─► a list below an earlier one or an
//!            acknowledged commit ─► committed offset went backwards
//!  final polls of each node from 0 to the end ─► every acked send at its offset, else lost
//! ```
//!
//! Stricter than Maelstrom's (which has no recency requirement) in one place, said in the
//! README: after the heal and the recovery time, every node must return every acknowledged
//! message. A node whose final polls did not reach the end of a key leaves that key
//! unjudged there, and the verdict `unknown` unless something else is invalid.

use crate::checkers::{CheckResult, anomaly_at, missing_nodes, ok_of, operations, result};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use sunder_checker::anomaly::{Anomaly, earliest};
use sunder_checker::{Event, EventType, History, Process, Verdict};

/// Examples kept per anomaly kind; counts are exact.
const SHOWN: usize = 10;

#[derive(Default)]
struct Found {
    /// Per anomaly kind: its count and the first few examples.
    kinds: BTreeMap<&'static str, (usize, Vec<Value>)>,
    dated: Vec<Anomaly>,
}

impl Found {
    fn add(&mut self, kind: &'static str, e: &Event, example: Value, what: String) {
        let (n, shown) = self.kinds.entry(kind).or_default();
        *n += 1;
        if shown.len() < SHOWN {
            shown.push(example);
        }
        self.dated
            .push(anomaly_at("kafka", e, format!("{kind}: {what}")));
    }
}

type Pairs = Vec<(u64, Value)>;

/// A poll reply's pairs per key (the shape was checked when it was recorded; a pair that
/// does not fit is skipped here and the reply counted as malformed).
fn pairs_of(v: &Value) -> Option<BTreeMap<String, Pairs>> {
    let mut out = BTreeMap::new();
    for (k, list) in v.as_object()? {
        let mut pairs = Vec::new();
        for p in list.as_array()? {
            let p = p.as_array()?;
            pairs.push((p.first()?.as_u64()?, p.get(1)?.clone()));
        }
        out.insert(k.clone(), pairs);
    }
    Some(out)
}

fn offsets_of(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, o)| Some((k.clone(), o.as_u64()?)))
        .collect()
}

struct Poll<'a> {
    ok: &'a Event,
    node: Option<String>,
    from: BTreeMap<String, u64>,
    got: BTreeMap<String, Pairs>,
    is_final: bool,
}

pub fn check(h: &History, nodes: &[String]) -> CheckResult {
    let ops = operations(h);
    let mut found = Found::default();
    let mut malformed = Vec::new();
    // Messages attempted per key (a send that did not certainly fail).
    let mut attempted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Acknowledged sends: (key, offset, msg, ok event).
    let mut acked: Vec<(String, u64, Value, &Event)> = Vec::new();
    let mut polls: Vec<Poll> = Vec::new();
    // Commits acknowledged and lists returned: (invoke index, ok event, offsets).
    let mut commits: Vec<(u64, &Event, BTreeMap<String, u64>)> = Vec::new();
    let mut lists: Vec<(u64, &Event, BTreeMap<String, u64>)> = Vec::new();
    for (inv, c) in &ops {
        match inv.f.as_str() {
            "send" => {
                let key = inv.key.clone().unwrap_or_default();
                if c.is_none_or(|c| c.kind != EventType::Fail) {
                    attempted
                        .entry(key.clone())
                        .or_default()
                        .insert(inv.value.to_string());
                }
                if let Some(c) = ok_of(*c) {
                    match c.value[0].as_u64() {
                        Some(o) => acked.push((key, o, inv.value.clone(), c)),
                        None => malformed.push(c.index),
                    }
                }
            }
            "poll" | "final-poll" => {
                if let Some(c) = ok_of(*c) {
                    match pairs_of(&c.value) {
                        Some(got) => polls.push(Poll {
                            ok: c,
                            node: inv.node.clone(),
                            from: offsets_of(&inv.value),
                            got,
                            is_final: inv.f == "final-poll",
                        }),
                        None => malformed.push(c.index),
                    }
                }
            }
            "commit_offsets" => {
                if let Some(c) = ok_of(*c) {
                    commits.push((inv.index, c, offsets_of(&inv.value)));
                }
            }
            "list_committed_offsets" => {
                if let Some(c) = ok_of(*c) {
                    lists.push((inv.index, c, offsets_of(&c.value)));
                }
            }
            _ => {}
        }
    }

    // What each (key, offset) holds, and where each message sits, from every source.
    let mut at: BTreeMap<(String, u64), (Value, u64)> = BTreeMap::new();
    let mut placed: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    let mut observe = |found: &mut Found, key: &str, o: u64, msg: &Value, e: &Event| {
        let slot = (key.to_string(), o);
        match at.get(&slot) {
            Some((m, first)) if m != msg => found.add(
                "inconsistent-offsets",
                e,
                json!({"key": key, "offset": o, "msgs": [m, msg], "events": [first, e.index]}),
                format!("key {key} offset {o} holds {m} and {msg}"),
            ),
            Some(_) => {}
            None => {
                at.insert(slot, (msg.clone(), e.index));
            }
        }
        let id = (key.to_string(), msg.to_string());
        match placed.get(&id) {
            Some((o2, first)) if *o2 != o => found.add(
                "duplicate",
                e,
                json!({"key": key, "msg": msg, "offsets": [o2, o], "events": [first, e.index]}),
                format!("message {msg} of key {key} at offsets {o2} and {o}"),
            ),
            Some(_) => {}
            None => {
                placed.insert(id, (o, e.index));
            }
        }
    };
    for (key, o, msg, e) in &acked {
        observe(&mut found, key, *o, msg, e);
    }
    for p in &polls {
        for (key, pairs) in &p.got {
            for (o, msg) in pairs {
                observe(&mut found, key, *o, msg, p.ok);
                if !attempted
                    .get(key)
                    .is_some_and(|a| a.contains(&msg.to_string()))
                {
                    found.add(
                        "unexpected",
                        p.ok,
                        json!({"key": key, "offset": o, "msg": msg, "event": p.ok.index}),
                        format!("poll returned {msg} at key {key}, never sent there"),
                    );
                }
            }
        }
    }
    let known: BTreeMap<&str, BTreeSet<u64>> = at.keys().fold(BTreeMap::new(), |mut m, (k, o)| {
        m.entry(k.as_str()).or_default().insert(*o);
        m
    });

    // Each poll: increasing offsets from where it asked, and no known offset skipped.
    for p in &polls {
        for (key, pairs) in &p.got {
            let from = p.from.get(key).copied();
            let mut prev: Option<u64> = None;
            for (o, _) in pairs {
                let below_from = from.is_some_and(|f| *o < f);
                if prev.is_some_and(|q| *o <= q) || below_from {
                    found.add(
                        "nonmonotonic-poll",
                        p.ok,
                        json!({"key": key, "from": from, "offsets": pairs.iter().map(|x| x.0).collect::<Vec<_>>(), "event": p.ok.index}),
                        format!(
                            "poll of key {key} from {from:?} returned offset {o} after {prev:?}"
                        ),
                    );
                    break;
                }
                prev = Some(*o);
            }
            let (Some(from), Some(last)) = (from, pairs.last().map(|x| x.0)) else {
                continue;
            };
            let returned: BTreeSet<u64> = pairs.iter().map(|x| x.0).collect();
            let skipped: Vec<u64> = known
                .get(key.as_str())
                .into_iter()
                .flat_map(|s| s.range(from..=last))
                .filter(|o| !returned.contains(o))
                .copied()
                .collect();
            if !skipped.is_empty() {
                found.add(
                    "poll-skip",
                    p.ok,
                    json!({"key": key, "from": from, "last": last, "skipped": skipped, "event": p.ok.index}),
                    format!("poll of key {key} from {from} to {last} skipped offsets {skipped:?}"),
                );
            }
        }
    }

    // Each process's acknowledged sends to one key get increasing offsets.
    let mut last_send: BTreeMap<(Process, &str), u64> = BTreeMap::new();
    for (key, o, _, e) in &acked {
        if let Some(prev) = last_send.insert((e.process, key.as_str()), *o)
            && *o <= prev
        {
            found.add(
                "nonmonotonic-send",
                e,
                json!({"key": key, "process": e.process.to_string(), "offsets": [prev, o], "event": e.index}),
                format!("process {} sent to key {key} at offset {o} after {prev}", e.process),
            );
        }
    }

    // Committed offsets never go backwards: a list invoked after a commit was acknowledged
    // or after another list returned shows at least what those did, key by key.
    let mut sources: Vec<(u64, &BTreeMap<String, u64>)> = commits
        .iter()
        .chain(&lists)
        .map(|(_, ok, offs)| (ok.index, offs))
        .collect();
    sources.sort_by_key(|s| s.0);
    let mut by_invoke: Vec<&(u64, &Event, BTreeMap<String, u64>)> = lists.iter().collect();
    by_invoke.sort_by_key(|l| l.0);
    let mut floor: BTreeMap<&str, u64> = BTreeMap::new();
    let mut next_source = 0;
    for (inv, ok, offs) in by_invoke {
        while next_source < sources.len() && sources[next_source].0 < *inv {
            for (k, o) in sources[next_source].1 {
                let f = floor.entry(k.as_str()).or_default();
                *f = (*f).max(*o);
            }
            next_source += 1;
        }
        for (k, least) in &floor {
            let now = offs.get(*k).copied();
            if now.is_none_or(|o| o < *least) {
                found.add(
                    "committed-offset-backwards",
                    ok,
                    json!({"key": k, "at_least": least, "listed": now, "event": ok.index}),
                    format!("committed offset of key {k} listed as {now:?} after it was {least}"),
                );
            }
        }
    }

    // Lost: each node's final polls, per key read to its end, hold every acked send.
    let mut final_seen: BTreeMap<(&str, &str), BTreeMap<u64, &Value>> = BTreeMap::new();
    let mut complete: BTreeSet<(&str, &str)> = BTreeSet::new();
    for p in polls.iter().filter(|p| p.is_final) {
        let Some(node) = p.node.as_deref() else {
            continue;
        };
        for key in p.from.keys() {
            match p.got.get(key).filter(|g| !g.is_empty()) {
                None => {
                    complete.insert((node, key.as_str()));
                }
                Some(pairs) => {
                    let seen = final_seen.entry((node, key.as_str())).or_default();
                    for (o, m) in pairs {
                        seen.insert(*o, m);
                    }
                }
            }
        }
    }
    let mut lost: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unjudged: BTreeSet<String> = BTreeSet::new();
    for node in nodes {
        for (key, o, msg, e) in &acked {
            if !complete.contains(&(node.as_str(), key.as_str())) {
                unjudged.insert(format!("{node} key {key}"));
                continue;
            }
            let seen = final_seen.get(&(node.as_str(), key.as_str()));
            if seen.and_then(|s| s.get(o)) != Some(&msg) {
                *lost.entry(node.as_str()).or_default() += 1;
                found.add(
                    "lost",
                    e,
                    json!({"node": node, "key": key, "offset": o, "msg": msg, "ack": e.index}),
                    format!(
                        "acknowledged {msg} at key {key} offset {o}, not in {node}'s final polls"
                    ),
                );
            }
        }
    }
    let missing = missing_nodes(
        nodes,
        &complete
            .iter()
            .map(|(n, _)| (n.to_string(), Value::Null))
            .collect(),
    );
    let first = earliest(found.dated.clone());
    let counts: BTreeMap<&str, usize> = found.kinds.iter().map(|(k, (n, _))| (*k, *n)).collect();
    let examples: BTreeMap<&str, &Vec<Value>> =
        found.kinds.iter().map(|(k, (_, v))| (*k, v)).collect();
    let details = json!({
        "acknowledged_sends": acked.len(), "polls": polls.len(), "commits": commits.len(),
        "lists": lists.len(), "anomalies": counts, "examples": examples, "lost_by_node": lost,
        "unjudged": unjudged.iter().take(20).collect::<Vec<_>>(), "no_final_poll": missing,
        "malformed": malformed, "first_anomaly": first,
    });
    if !counts.is_empty() {
        let shown: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let what = first.map(|a| a.what).unwrap_or_default();
        return result(
            "kafka",
            Verdict::Invalid,
            format!("{} (first: {what})", shown.join(", ")),
            details,
        );
    }
    if !unjudged.is_empty() || !malformed.is_empty() {
        return result(
            "kafka",
            Verdict::Unknown,
            format!(
                "the final polls did not read {} to the end{}: the evidence is incomplete",
                unjudged
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if malformed.is_empty() {
                    String::new()
                } else {
                    format!(" ({} replies not understood)", malformed.len())
                }
            ),
            details,
        );
    }
    result(
        "kafka",
        Verdict::Valid,
        format!(
            "{} acknowledged sends, each at one offset and in every node's final polls; \
             {} polls in order without skips; committed offsets never went back",
            acked.len(),
            polls.len()
        ),
        details,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (process, f, key, invoke value, completion kind, completion value, node).
    type Op<'a> = (
        u64,
        &'a str,
        Option<&'a str>,
        Value,
        EventType,
        Value,
        &'a str,
    );

    /// A history of `ops`, each operation invoked and completed in turn.
    fn history(ops: &[Op]) -> History {
        let mut events = Vec::new();
        for (p, f, key, v, kind, out, node) in ops {
            for (kind, value) in [(EventType::Invoke, v), (*kind, out)] {
                let index = events.len() as u64;
                events.push(Event {
                    index,
                    time: index * 1000,
                    kind,
                    process: Process::Client(*p),
                    f: (*f).into(),
                    key: key.map(str::to_string),
                    value: value.clone(),
                    error: None,
                    node: Some((*node).into()),
                    committed: None,
                });
            }
        }
        History::new(events)
    }

    use EventType::{Fail, Info, Ok};

    fn send(p: u64, key: &str, msg: u64, offset: u64) -> Op<'_> {
        (
            p,
            "send",
            Some(key),
            json!(msg),
            Ok,
            json!([offset, msg]),
            "n1",
        )
    }

    fn fin(node: &str, from: u64, got: Value) -> Op<'_> {
        (90, "final-poll", None, json!({"a": from}), Ok, got, node)
    }

    fn verdict(ops: &[Op]) -> CheckResult {
        check(&history(ops), &["n1".to_string()])
    }

    #[test]
    fn a_clean_log_is_valid_and_every_anomaly_is_named() {
        let good = vec![
            send(1, "a", 10, 0),
            send(1, "a", 11, 1),
            (2, "send", Some("a"), json!(12), Info, json!(12), "n1"),
            (2, "send", Some("a"), json!(13), Fail, json!(13), "n1"),
            (
                3,
                "poll",
                None,
                json!({"a": 0}),
                Ok,
                json!({"a": [[0, 10], [1, 11]]}),
                "n1",
            ),
            (
                3,
                "commit_offsets",
                None,
                json!({"a": 1}),
                Ok,
                json!({"a": 1}),
                "n1",
            ),
            (
                3,
                "list_committed_offsets",
                None,
                json!(["a"]),
                Ok,
                json!({"a": 1}),
                "n1",
            ),
            fin("n1", 0, json!({"a": [[0, 10], [1, 11], [2, 12]]})),
            fin("n1", 3, json!({})),
        ];
        let r = verdict(&good);
        assert_eq!(r.verdict, Verdict::Valid, "{}", r.reason);
        let with = |i: usize, op| {
            let mut h = good.clone();
            h[i] = op;
            verdict(&h)
        };
        let cases = [
            // The final poll misses an acknowledged message.
            (7, fin("n1", 0, json!({"a": [[0, 10], [2, 12]]})), "lost"),
            // Two messages at one offset.
            (2, send(2, "a", 12, 1), "inconsistent-offsets"),
            // A poll going back, and one skipping offset 0 which a send made known.
            (
                4,
                (
                    3,
                    "poll",
                    None,
                    json!({"a": 0}),
                    Ok,
                    json!({"a": [[1, 11], [0, 10]]}),
                    "n1",
                ),
                "nonmonotonic-poll",
            ),
            (
                4,
                (
                    3,
                    "poll",
                    None,
                    json!({"a": 0}),
                    Ok,
                    json!({"a": [[1, 11]]}),
                    "n1",
                ),
                "poll-skip",
            ),
            // A message nobody sent, and one message at two offsets.
            (
                4,
                (
                    3,
                    "poll",
                    None,
                    json!({"a": 0}),
                    Ok,
                    json!({"a": [[0, 10], [1, 11], [2, 99]]}),
                    "n1",
                ),
                "unexpected",
            ),
            (
                4,
                (
                    3,
                    "poll",
                    None,
                    json!({"a": 0}),
                    Ok,
                    json!({"a": [[0, 10], [1, 11], [5, 10]]}),
                    "n1",
                ),
                "duplicate",
            ),
            // The same process's second send at a lower offset.
            (1, send(1, "a", 11, 0), "nonmonotonic-send"),
            // The committed offset listed below the acknowledged commit.
            (
                6,
                (
                    3,
                    "list_committed_offsets",
                    None,
                    json!(["a"]),
                    Ok,
                    json!({"a": 0}),
                    "n1",
                ),
                "committed-offset-backwards",
            ),
        ];
        for (i, op, kind) in cases {
            let r = with(i, op);
            assert_eq!(r.verdict, Verdict::Invalid, "{kind}: {}", r.reason);
            assert!(r.reason.contains(kind), "{kind}: {}", r.reason);
            assert!(
                r.details["first_anomaly"]["what"].is_string(),
                "{}",
                r.details
            );
        }
    }

    #[test]
    fn a_key_not_read_to_its_end_leaves_the_verdict_unknown() {
        let h = [send(1, "a", 10, 0), fin("n1", 0, json!({"a": [[0, 10]]}))];
        let r = verdict(&h);
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.reason);
        // Another node without any final poll.
        let h = [
            send(1, "a", 10, 0),
            fin("n1", 0, json!({"a": [[0, 10]]})),
            fin("n1", 1, json!({})),
        ];
        let r = check(&history(&h), &["n1".to_string(), "n2".to_string()]);
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.reason);
        assert!(r.reason.contains("n2"), "{}", r.reason);
    }
}
