//! Jepsen EDN: the shapes Jepsen writes, value mapping, errors naming the line, and the
//! JSON lines → EDN → JSON lines round trip.

use serde_json::json;
use std::path::Path;
use sunder_checker::format::{FormatError, parse_edn, read_jsonl, write_edn, write_jsonl};
use sunder_checker::{Event, EventType, History, Process};

fn parse(src: &str) -> History {
    parse_edn(src, Path::new("history.edn")).unwrap()
}

fn parse_err(src: &str) -> (usize, String) {
    match parse_edn(src, Path::new("history.edn")) {
        Err(FormatError::Parse {
            file,
            line,
            message,
        }) => {
            assert_eq!(file, Path::new("history.edn"));
            (line, message)
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

const LINES: &str = r#"{:type :invoke, :f :write, :value 3, :process 0, :time 10, :index 0}
{:type :ok, :f :write, :value 3, :process 0, :time 20, :index 1}
{:type :invoke, :f :cas, :value [3 4], :process 1, :time 30, :index 2}
{:type :info, :f :start, :value {"n1" #{"n2" "n3"}, :x nil}, :process :nemesis, :time 35, :index 3}
{:type :fail, :f :cas, :value [3 4], :process 1, :time 40, :index 4, :error :timeout}
{:type :invoke, :f :read, :value nil, :process 2, :time 50, :index 5}
{:type :ok, :f :read, :value nil, :process 2, :time 60, :index 6}
"#;

#[test]
fn one_op_map_per_line() {
    let h = parse(LINES);
    assert_eq!(h.len(), 7);
    let e = &h.events[2];
    assert_eq!(
        (e.kind, e.process, e.f.as_str(), e.time, e.index),
        (EventType::Invoke, Process::Client(1), "cas", 30, 2)
    );
    assert_eq!(e.value, json!([3, 4]));
    let nemesis = &h.events[3];
    assert_eq!(nemesis.process, Process::Nemesis);
    assert_eq!(nemesis.value, json!({"n1": ["n2", "n3"], "x": null}));
    assert_eq!(h.events[4].error.as_deref(), Some("timeout"));
    assert_eq!(h.events[6].value, json!(null));
    assert_eq!(h.client_events().count(), 6);
}

#[test]
fn top_level_vector_and_list_and_records() {
    let vector = format!("[{}]", LINES);
    assert_eq!(parse(&vector), parse(LINES));
    let list = format!("({})", LINES.replace('\n', ",\n"));
    assert_eq!(parse(&list), parse(LINES));
    let records = LINES.replace("{:type", "#jepsen.history.Op{:type");
    assert_eq!(parse(&records), parse(LINES));
    let mixed = format!(
        "; a comment\n[{}]\n\n#jepsen.history.Op{{:type :ok, :f :read, :process 5, :value 1}}\n",
        LINES
    );
    let h = parse(&mixed);
    assert_eq!(h.len(), 8);
    assert_eq!(h.events[7].index, 7, "a missing :index is the position");
    assert_eq!(h.events[7].time, 7, "a missing :time is the position");
}

#[test]
fn keys_and_value_mapping() {
    let h = parse(
        r#"{:type :invoke, :process 0, :f :txn, :key 7, :value [[:append 1 2] (:r 3 nil) #{:a} {1 "x"} true 1.5 \c "s"]}
{:type :ok, :process 0, :f :put, :key :k1, :value "v"}"#,
    );
    assert_eq!(h.events[0].key.as_deref(), Some("7"));
    assert_eq!(
        h.events[0].value,
        json!([["append", 1, 2], ["r", 3, null], ["a"], {"1": "x"}, true, 1.5, "c", "s"])
    );
    assert_eq!(h.events[1].key.as_deref(), Some("k1"));
}

#[test]
fn independent_tuples_are_left_as_they_are() {
    let h = parse("{:type :invoke, :process 0, :f :write, :value [5 3]}");
    assert_eq!(h.events[0].key, None);
    assert_eq!(h.events[0].value, json!([5, 3]));
}

#[test]
fn unbalanced_form_names_its_line() {
    let src = "{:type :invoke, :f :read, :process 0, :value nil}\n{:type :ok, :f :read, :process 0, :value 1\n";
    let (line, message) = parse_err(src);
    assert_eq!(line, 2);
    assert!(message.contains("unbalanced"), "{message}");
    let (line, message) = parse_err("{:type :ok, :f :read, :process 0, :value 1}}\n");
    assert_eq!(line, 1);
    assert!(message.contains("unexpected `}`"), "{message}");
    let (line, message) = parse_err("\n[{:type :ok, :f :read, :process 0, :value 1}\n");
    assert_eq!(line, 2);
    assert!(message.contains("never closed"), "{message}");
}

#[test]
fn not_a_map_is_an_error() {
    let (line, message) = parse_err("{:type :ok, :f :read, :process 0, :value 1}\n\n:ok\n");
    assert_eq!(line, 3);
    assert!(
        message.contains("not a map") && message.contains("expected an op map"),
        "{message}"
    );
    let (line, _) = parse_err("[{:type :ok, :f :read, :process 0}\n 42]");
    assert_eq!(
        line, 2,
        "an element of a top-level vector is named by its own line"
    );
}

#[test]
fn bad_fields_say_what_was_expected() {
    let (line, message) =
        parse_err("{:type :ok, :f :read, :process 0}\n{:type :done, :f :read, :process 0}\n");
    assert_eq!(line, 2);
    assert!(
        message.contains(":done") && message.contains(":invoke :ok :fail :info"),
        "{message}"
    );
    let (_, message) = parse_err("{:type :ok, :f :read}");
    assert!(message.contains("missing :process"), "{message}");
    let (_, message) = parse_err("{:type :ok, :process -1, :f :read}");
    assert!(message.contains("bad :process"), "{message}");
    let (_, message) = parse_err("{:type :ok, :process 1, :f :read, :time \"soon\"}");
    assert!(message.contains("bad :time"), "{message}");
    let (_, message) = parse_err("{:process 1, :f :read}");
    assert!(message.contains("missing :type"), "{message}");
}

#[test]
fn jsonl_to_edn_to_jsonl_is_the_same_history() {
    let mut events = Vec::new();
    let mut add = |kind, process, f: &str, key: Option<&str>, value| {
        let index = events.len() as u64;
        events.push(Event {
            index,
            time: 1_000_000 + index * 12_345,
            kind,
            process,
            f: f.into(),
            key: key.map(Into::into),
            value,
            error: None,
            node: None,
            committed: None,
        });
    };
    add(
        EventType::Invoke,
        Process::Client(0),
        "cas",
        Some("k1"),
        json!([1, 2]),
    );
    add(
        EventType::Invoke,
        Process::Client(1),
        "read",
        Some("k 2"),
        json!(null),
    );
    add(
        EventType::Info,
        Process::Nemesis,
        "partition",
        None,
        json!({"n1": ["n3"], "weird key \"q\"": {"a": 1.25}}),
    );
    add(
        EventType::Ok,
        Process::Client(0),
        "cas",
        Some("k1"),
        json!([1, 2]),
    );
    add(
        EventType::Ok,
        Process::Client(1),
        "read",
        Some("k 2"),
        json!("tab\there \"quoted\" back\\slash\nnewline"),
    );
    add(
        EventType::Invoke,
        Process::Client(2),
        "odd f name",
        None,
        json!([true, false, -7, []]),
    );
    add(
        EventType::Fail,
        Process::Client(2),
        "odd f name",
        None,
        json!(null),
    );
    events[6].error = Some("not-leader: n2".into());
    events[3].node = Some("n1".into());
    let original = History::new(events);

    let mut jsonl = Vec::new();
    write_jsonl(&mut jsonl, &original).unwrap();
    let (from_jsonl, _) = read_jsonl(&jsonl[..], "a.jsonl").unwrap();
    let mut edn = Vec::new();
    write_edn(&mut edn, &from_jsonl).unwrap();
    let edn = String::from_utf8(edn).unwrap();
    assert_eq!(edn.lines().count(), original.len());
    assert!(
        edn.contains(":type :invoke")
            && edn.contains(":f :cas")
            && edn.contains(":process :nemesis"),
        "{edn}"
    );
    let back = parse(&edn);
    let mut jsonl2 = Vec::new();
    write_jsonl(&mut jsonl2, &back).unwrap();
    assert_eq!(back, original);
    assert_eq!(jsonl2, jsonl);
}
