//! The set checker on hand-made histories: one case per finding, each next to the same
//! history without the fault, which must pass.

use serde_json::{Value, json};
use sunder_checker::set::{DISPLAY_CAP, check};
use sunder_checker::{Event, EventType, History, Process, Verdict};

/// Builds a history event by event; index and time follow the order of calls.
#[derive(Default)]
struct H(Vec<Event>);

impl H {
    fn ev(&mut self, p: u64, kind: EventType, f: &str, value: Value, node: &str) -> &mut Self {
        let i = self.0.len() as u64;
        self.0.push(Event {
            index: i,
            time: i * 1_000_000,
            kind,
            process: Process::Client(p),
            f: f.into(),
            key: Some("set".into()),
            value,
            error: None,
            node: Some(node.into()),
            committed: None,
        });
        self
    }
    /// A whole add of `x` by process `p` ending `kind`.
    fn add(&mut self, p: u64, x: i64, kind: EventType) -> &mut Self {
        self.ev(p, EventType::Invoke, "add", json!(x), "n1")
            .ev(p, kind, "add", json!(x), "n1")
    }
    /// An ok read on `node` returning `xs`.
    fn read(&mut self, p: u64, node: &str, xs: &[i64]) -> &mut Self {
        self.ev(p, EventType::Invoke, "read", Value::Null, node).ev(
            p,
            EventType::Ok,
            "read",
            json!(xs),
            node,
        )
    }
    fn history(&self) -> History {
        History::new(self.0.clone())
    }
}

use EventType::{Fail, Info, Ok};

/// Adds 1 ok, 2 fail, 3 info; `finals` are the final reads on n1 and n2.
fn base(finals: [&[i64]; 2]) -> History {
    let mut h = H::default();
    h.add(0, 1, Ok).add(1, 2, Fail).add(2, 3, Info);
    h.read(10, "n1", finals[0]).read(11, "n2", finals[1]);
    h.history()
}

#[test]
fn all_acknowledged_present_is_valid_with_or_without_indeterminate() {
    for finals in [[&[1][..], &[1]], [&[1, 3], &[1, 3]]] {
        let r = check(&base(finals));
        assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.reasons);
        assert_eq!(
            (r.attempted, r.acknowledged, r.failed, r.indeterminate),
            (3, 1, 1, 1)
        );
    }
    assert_eq!(check(&base([&[1, 3], &[1, 3]])).recovered.elements, [3]);
    assert_eq!(check(&base([&[1], &[1]])).recovered.count, 0);
}

#[test]
fn a_lost_acknowledged_add_is_invalid() {
    let r = check(&base([&[3], &[3]]));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.lost.elements, [1]);
    assert_eq!(r.final_reads["n1"].lost.elements, [1]);
    assert_eq!(r.never_read.elements, [1]);
}

#[test]
fn an_element_never_added_is_unexpected() {
    let r = check(&base([&[1, 99], &[1, 99]]));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.unexpected.elements, [99]);
    assert!(r.lost.is_empty());
}

#[test]
fn a_definitely_failed_add_that_shows_up_is_invalid() {
    let r = check(&base([&[1, 2], &[1, 2]]));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.failed_present.elements, [2]);
}

#[test]
fn nodes_that_disagree_are_named() {
    let r = check(&base([&[1, 3], &[1]]));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.disagreements.len(), 1);
    let d = &r.disagreements[0];
    assert_eq!((d.a.as_str(), d.b.as_str()), ("n1", "n2"));
    assert_eq!(
        (d.only_in_a.elements.as_slice(), d.only_in_b.count),
        (&[3][..], 0)
    );
    assert!(
        r.reasons
            .iter()
            .any(|s| s.contains("n1") && s.contains("n2")),
        "{:?}",
        r.reasons
    );
}

#[test]
fn a_missing_final_read_is_unknown_not_valid() {
    let mut h = H::default();
    h.add(0, 1, Ok).read(10, "n1", &[1]);
    // n2 took part (a read that failed) but never gave a final read.
    h.ev(11, EventType::Invoke, "read", Value::Null, "n2")
        .ev(11, Fail, "read", Value::Null, "n2");
    let r = check(&h.history());
    assert_eq!(r.verdict, Verdict::Unknown, "{:?}", r.reasons);
    assert_eq!(r.final_reads["n2"].event, None);
    assert!(r.reasons[0].contains("n2"));

    // No read at all: nothing to judge the adds by.
    let mut h = H::default();
    h.add(0, 1, Ok);
    assert_eq!(check(&h.history()).verdict, Verdict::Unknown);
}

#[test]
fn the_last_ok_read_per_node_is_final_and_earlier_misses_are_stale() {
    let mut h = H::default();
    h.add(0, 1, Ok)
        .read(10, "n1", &[])
        .read(10, "n1", &[1])
        .read(11, "n2", &[1]);
    let r = check(&h.history());
    assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.reasons);
    assert_eq!(r.stale.elements, [1]);
    assert_eq!(r.final_reads["n1"].event, Some(5));
}

#[test]
fn an_add_still_open_at_the_end_is_indeterminate() {
    let mut h = H::default();
    h.add(0, 1, Ok)
        .ev(1, EventType::Invoke, "add", json!(2), "n1")
        .read(10, "n1", &[1, 2]);
    let r = check(&h.history());
    assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.reasons);
    assert_eq!(
        (r.indeterminate, r.recovered.elements.as_slice()),
        (1, &[2][..])
    );
}

#[test]
fn malformed_values_are_listed_and_make_the_verdict_unknown() {
    let mut h = H::default();
    h.add(0, 1, Ok)
        .ev(1, EventType::Invoke, "add", json!("x"), "n1")
        .ev(1, Ok, "add", json!("x"), "n1");
    h.read(10, "n1", &[1]);
    let r = check(&h.history());
    assert_eq!(r.verdict, Verdict::Unknown);
    assert!(r.malformed[0].starts_with("event 2:"), "{:?}", r.malformed);
}

#[test]
fn long_lists_are_capped_but_counted_exactly() {
    let mut h = H::default();
    for x in 0..100 {
        h.add(x as u64, x, Ok);
    }
    h.read(1000, "n1", &[]);
    let r = check(&h.history());
    assert_eq!(r.lost.count, 100);
    assert_eq!(r.lost.elements.len(), DISPLAY_CAP);
    assert!(r.lost.truncated);
    assert_eq!(r.lost.elements[0], 0);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["verdict"], "invalid");
}
