//! The native JSON-lines reader and writer: round trip, errors naming file and line, and a
//! truncated last line as a warning.

use serde_json::json;
use std::path::Path;
use sunder_checker::format::{FormatError, JsonlReader, JsonlWriter, read_jsonl, read_jsonl_path};
use sunder_checker::{Event, EventType, History, Process};

fn ev(index: u64, kind: EventType, process: Process, f: &str, value: serde_json::Value) -> Event {
    Event {
        index,
        time: index * 1000,
        kind,
        process,
        f: f.into(),
        key: None,
        value,
        error: None,
        node: None,
        committed: None,
    }
}

fn sample() -> History {
    let mut cas = ev(
        0,
        EventType::Invoke,
        Process::Client(3),
        "cas",
        json!([1, 2]),
    );
    cas.key = Some("k1".into());
    let mut done = cas.clone();
    done.index = 1;
    done.kind = EventType::Ok;
    done.node = Some("n2".into());
    let mut nem = ev(
        2,
        EventType::Info,
        Process::Nemesis,
        "partition",
        json!({"n1": ["n3"]}),
    );
    nem.error = Some("it \"broke\"\n</script>".into());
    History::new(vec![cas, done, nem])
}

fn write(h: &History) -> Vec<u8> {
    let mut w = JsonlWriter::new(Vec::new());
    for e in &h.events {
        w.write_event(e).unwrap();
    }
    w.flush().unwrap();
    w.into_inner()
}

fn parse_err(text: &str) -> (usize, String) {
    match read_jsonl(text.as_bytes(), "h.jsonl") {
        Err(FormatError::Parse {
            file,
            line,
            message,
        }) => {
            assert_eq!(file, Path::new("h.jsonl"));
            (line, message)
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn round_trip_one_line_per_event() {
    let h = sample();
    let bytes = write(&h);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.ends_with('\n'));
    assert!(text.lines().next().unwrap().starts_with("{\"index\":0,"));
    let (back, warnings) = read_jsonl(&bytes[..], "mem").unwrap();
    assert_eq!(back, h);
    assert!(warnings.is_empty());
}

#[test]
fn reader_streams_and_skips_blank_lines() {
    let mut text = String::from("\n");
    text.push_str(
        &String::from_utf8(write(&sample()))
            .unwrap()
            .replace('\n', "\n\n"),
    );
    let mut r = JsonlReader::new(text.as_bytes(), "x");
    let first = r.next().unwrap().unwrap();
    assert_eq!(first.process, Process::Client(3));
    assert_eq!(r.count(), 2);
}

#[test]
fn truncated_last_line_is_a_warning() {
    let mut bytes = write(&sample());
    bytes.extend_from_slice(br#"{"index":3,"time":4000,"type":"inv"#);
    let (h, warnings) = read_jsonl(&bytes[..], "run/history.jsonl").unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("run/history.jsonl:4"),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("truncated"), "{}", warnings[0]);
}

#[test]
fn complete_last_line_without_newline_is_kept() {
    let mut bytes = write(&sample());
    bytes.pop();
    let (h, warnings) = read_jsonl(&bytes[..], "x").unwrap();
    assert_eq!(h, sample());
    assert!(warnings.is_empty());
}

#[test]
fn a_bad_line_with_its_newline_is_an_error() {
    let mut text = String::from_utf8(write(&sample())).unwrap();
    text.push_str("{\"index\":3,\"time\"\n");
    let (line, message) = parse_err(&text);
    assert_eq!(line, 4);
    assert!(
        message.contains("expected one event object per line"),
        "{message}"
    );
}

#[test]
fn bad_json_names_the_line() {
    let text = "{\"index\":0,\"time\":0,\"type\":\"invoke\",\"process\":0,\"f\":\"read\",\"value\":null}\nnot json\n";
    let (line, message) = parse_err(text);
    assert_eq!(line, 2);
    assert!(message.contains("expected"), "{message}");
}

#[test]
fn missing_field_names_the_field() {
    let (line, message) =
        parse_err("{\"index\":0,\"time\":0,\"type\":\"invoke\",\"process\":0,\"value\":1}\n");
    assert_eq!(line, 1);
    assert!(message.contains("missing field `f`"), "{message}");
}

#[test]
fn bad_type_says_what_is_allowed() {
    let (line, message) = parse_err(
        "\n\n{\"index\":0,\"time\":0,\"type\":\"done\",\"process\":0,\"f\":\"read\",\"value\":1}\n",
    );
    assert_eq!(line, 3);
    assert!(
        message.contains("done") && message.contains("invoke"),
        "{message}"
    );
    let (_, message) =
        parse_err("{\"index\":0,\"time\":-5,\"type\":\"ok\",\"process\":0,\"f\":\"read\"}\n");
    assert!(
        message.contains("-5") || message.contains("invalid value"),
        "{message}"
    );
    let (_, message) =
        parse_err("{\"index\":0,\"time\":5,\"type\":\"ok\",\"process\":\"bob\",\"f\":\"read\"}\n");
    assert!(message.contains("bob"), "{message}");
}

#[test]
fn path_reader_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    std::fs::write(&path, "{\"index\":0}\n").unwrap();
    let err = read_jsonl_path(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:1: ", path.display())), "{err}");
    let missing = read_jsonl_path(&dir.path().join("nope.jsonl")).unwrap_err();
    assert!(matches!(missing, FormatError::Io { .. }), "{missing}");
}
