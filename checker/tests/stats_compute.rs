//! Statistics of a hand-made history whose numbers can be worked out by hand.

use serde_json::{Value, json};
use sunder_checker::stats::compute;
use sunder_checker::{Event, EventType, History, Process};

const MS: u64 = 1_000_000;

fn ev(time_ms: u64, process: Process, kind: EventType, f: &str) -> Event {
    Event {
        index: 0,
        time: time_ms * MS,
        kind,
        process,
        f: f.into(),
        key: Some("k0".into()),
        value: Value::Null,
        error: None,
        node: None,
        committed: None,
    }
}

/// One operation: invoked at `at` ms, completed `latency` ms later as `kind`.
fn op(events: &mut Vec<Event>, p: u64, f: &str, at: u64, latency: u64, kind: EventType) {
    events.push(ev(at, Process::Client(p), EventType::Invoke, f));
    events.push(ev(at + latency, Process::Client(p), kind, f));
}

fn history() -> History {
    let mut e = Vec::new();
    // Ten ok reads with latencies 1..=10 ms in the first second.
    for i in 0..10 {
        op(&mut e, 0, "read", i * 50, i + 1, EventType::Ok);
    }
    // In the third second: two ok writes (20, 40 ms), a fail and an info.
    op(&mut e, 1, "write", 2000, 20, EventType::Ok);
    op(&mut e, 1, "write", 2100, 40, EventType::Ok);
    op(&mut e, 1, "write", 2200, 5, EventType::Fail);
    op(&mut e, 1, "cas", 2300, 100, EventType::Info);
    // A cas that never completed, and nemesis noise that must be ignored.
    e.push(ev(2500, Process::Client(5), EventType::Invoke, "cas"));
    e.push(ev(3999, Process::Nemesis, EventType::Info, "partition"));
    e.sort_by_key(|x| x.time);
    for (i, x) in e.iter_mut().enumerate() {
        x.index = i as u64;
    }
    History::new(e)
}

#[test]
fn counts_latency_throughput_and_series() {
    let s = compute(&history());
    let o = &s.overall;
    assert_eq!(
        (o.invoked, o.ok, o.fail, o.info, o.pending),
        (15, 12, 1, 1, 1)
    );
    let r = &s.by_f["read"];
    assert_eq!((r.ok, r.fail, r.info), (10, 0, 0));
    let l = r.latency.unwrap();
    assert_eq!(
        (l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms),
        (10, 5.0, 9.0, 10.0, 10.0)
    );
    assert!((l.mean_ms - 5.5).abs() < 1e-9);
    let w = &s.by_f["write"];
    assert_eq!(
        (w.ok, w.fail, w.info, w.latency.unwrap().max_ms),
        (2, 1, 0, 40.0)
    );
    let c = &s.by_f["cas"];
    assert_eq!((c.ok, c.info, c.pending, c.latency), (0, 1, 1, None));
    assert_eq!(o.latency.unwrap().max_ms, 40.0);

    // Client events span 0 .. 2500 ms; nemesis events do not count.
    assert!((s.duration_s - 2.5).abs() < 1e-9, "{}", s.duration_s);
    assert!((s.throughput - 12.0 / 2.5).abs() < 1e-9);

    assert_eq!(s.series.len(), 3);
    assert_eq!(
        (s.series[0].ok, s.series[0].p50_ms, s.series[0].p99_ms),
        (10, Some(5.0), Some(10.0))
    );
    assert_eq!((s.series[1].ok, s.series[1].p50_ms), (0, None));
    assert_eq!(
        (
            s.series[2].second,
            s.series[2].ok,
            s.series[2].fail,
            s.series[2].info
        ),
        (2, 2, 1, 1)
    );
    assert_eq!(s.series[2].p99_ms, Some(40.0));

    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["overall"]["ok"], json!(12));
}

#[test]
fn an_empty_history_has_zero_stats() {
    let s = compute(&History::default());
    assert_eq!((s.overall.ok, s.throughput, s.series.len()), (0, 0.0, 0));
}
