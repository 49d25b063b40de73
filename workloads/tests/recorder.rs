//! The recorder under many threads: dense indexes, time that never goes back, and a JSON
//! lines stream that reads back as exactly the events kept in memory.

use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use sunder_checker::{Event, EventType, Process};
use sunder_workloads::Recorder;

/// A sink the test can read after the recorder wrote to it.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn many_threads_dense_indexes_and_parseable_lines() {
    let sink = Shared::default();
    let rec = Arc::new(Recorder::new(Instant::now(), Box::new(sink.clone())));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let rec = rec.clone();
            std::thread::spawn(move || {
                for i in 0..250i64 {
                    let p = Process::Client(t);
                    rec.record(
                        p,
                        EventType::Invoke,
                        "write",
                        Some("k1"),
                        json!(i),
                        None,
                        Some("n1"),
                    );
                    rec.record(
                        p,
                        EventType::Ok,
                        "write",
                        Some("k1"),
                        json!(i),
                        None,
                        Some("n1"),
                    );
                }
                if t == 0 {
                    rec.record(
                        Process::Nemesis,
                        EventType::Info,
                        "partition",
                        None,
                        json!({"n1": ["n2"]}),
                        None,
                        None,
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    rec.flush().unwrap();

    let events = rec.events();
    assert_eq!(events.len(), 8 * 500 + 1);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.index, i as u64);
    }
    assert!(
        events.windows(2).all(|w| w[0].time <= w[1].time),
        "time goes back"
    );
    // Each thread's own events stay in its program order.
    for t in 0..8 {
        let mine: Vec<&Event> = events
            .iter()
            .filter(|e| e.process == Process::Client(t))
            .collect();
        for (n, pair) in mine.chunks(2).enumerate() {
            assert_eq!(pair[0].kind, EventType::Invoke);
            assert_eq!(pair[1].kind, EventType::Ok);
            assert_eq!(pair[0].value, json!(n));
        }
    }

    let c = rec.counts();
    assert_eq!(
        (c.invoke, c.ok, c.fail, c.info, c.nemesis),
        (2000, 2000, 0, 0, 1)
    );
    assert_eq!(rec.fresh_process(), 8);

    let bytes = sink.0.lock().unwrap().clone();
    let text = String::from_utf8(bytes).unwrap();
    let parsed: Vec<Event> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    assert_eq!(parsed, events);
    let nemesis = text.lines().find(|l| l.contains("nemesis")).unwrap();
    assert!(nemesis.contains(r#""process":"nemesis""#), "{nemesis}");
    assert!(
        !nemesis.contains("\"key\""),
        "absent key is omitted: {nemesis}"
    );
}

/// A sink that refuses every write.
struct Broken;

impl Write for Broken {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("disk full"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_write_error_is_reported_and_events_are_kept() {
    let rec = Recorder::new(Instant::now(), Box::new(Broken));
    rec.record(
        Process::Client(0),
        EventType::Invoke,
        "read",
        Some("k0"),
        json!(null),
        None,
        None,
    );
    assert_eq!(rec.events().len(), 1);
    let err = rec.flush().unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
}
