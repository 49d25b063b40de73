//! Porcupine's corpus formats: the etcd Jepsen logs and the kv logs.
//!
//! Neither has usable times, so an event's `time` is its line number (monotonic, and the
//! order is all the checker needs).
//!
//! ```text
//! INFO  jepsen.util - 2  :invoke  :cas  [2 4]                 etcd: one cas register,
//! INFO  jepsen.util - 1  :info  :write  1  :timed-out        key None (tabs or spaces)
//! {:process 9, :type :invoke, :f :append, :key "0", :value "x 9 0 y"}   kv: key = :key
//! ```

use super::FormatError;
use crate::history::{Event, EventType, History, Process};
use serde_json::Value;
use std::path::Path;

const ETCD_MARK: &str = "jepsen.util - ";

/// Reads an etcd Jepsen log. Lines without `jepsen.util - <process>` are log noise and
/// skipped; an op line that does not parse is an error naming the line.
pub fn parse_etcd_log(src: &str, file: &Path) -> Result<History, FormatError> {
    let mut events = Vec::new();
    for (i, line) in src.lines().enumerate() {
        let lineno = i + 1;
        let Some(at) = line.find(ETCD_MARK) else {
            continue;
        };
        let rest = &line[at + ETCD_MARK.len()..];
        let mut tokens = rest.split_whitespace();
        let Some(process) = tokens.next().and_then(|t| t.parse::<u64>().ok()) else {
            continue; // a jepsen.util message that is not an operation
        };
        let err = |m: String| FormatError::parse(file, lineno, m);
        let kind = match tokens.next() {
            Some(":invoke") => EventType::Invoke,
            Some(":ok") => EventType::Ok,
            Some(":fail") => EventType::Fail,
            Some(":info") => EventType::Info,
            t => {
                return Err(err(format!(
                    "expected :invoke, :ok, :fail or :info after process {process}, found {}",
                    t.unwrap_or("end of line")
                )));
            }
        };
        let f = match tokens.next() {
            Some(":read") => "read",
            Some(":write") => "write",
            Some(":cas") => "cas",
            t => {
                return Err(err(format!(
                    "expected :read, :write or :cas, found {}",
                    t.unwrap_or("end of line")
                )));
            }
        };
        let rest: Vec<&str> = tokens.collect();
        let (value, error) = etcd_value(&rest).map_err(err)?;
        events.push(Event {
            index: events.len() as u64,
            time: lineno as u64,
            kind,
            process: Process::Client(process),
            f: f.to_string(),
            key: None,
            value,
            error,
            node: None,
            committed: None,
        });
    }
    Ok(History::new(events))
}

/// `nil`, an integer, `[a b]`, each maybe followed by a keyword (the error, as in
/// `:timed-out`); or the keyword alone.
fn etcd_value(tokens: &[&str]) -> Result<(Value, Option<String>), String> {
    let int = |t: &str| {
        t.parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("expected an integer, found {t:?}"))
    };
    let (value, used) = match tokens {
        [] => return Err("expected a value, found end of line".to_string()),
        [t, ..] if t.starts_with(':') => (Value::Null, 0),
        ["nil", ..] => (Value::Null, 1),
        [a, b, ..] if a.starts_with('[') && b.ends_with(']') => {
            let a = int(&a[1..])?;
            let b = int(&b[..b.len() - 1])?;
            (Value::Array(vec![a, b]), 2)
        }
        [t, ..] if t.starts_with('[') => return Err(format!("expected [from to], found {t:?}")),
        [t, ..] => (int(t)?, 1),
    };
    let error = match &tokens[used..] {
        [] => None,
        [kw] if kw.starts_with(':') => Some(kw[1..].to_string()),
        extra => return Err(format!("unexpected {:?} after the value", extra.join(" "))),
    };
    Ok((value, error))
}

/// Reads a kv log: one EDN map per line with `:process`, `:type`, `:f`, `:key`, `:value`.
pub fn parse_kv_log(src: &str, file: &Path) -> Result<History, FormatError> {
    super::edn::check_nesting(src, file)?;
    let mut events = Vec::new();
    for (i, line) in src.lines().enumerate() {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let err = |m: String| FormatError::parse(file, lineno, m);
        let fields = edn_map(line.trim()).map_err(err)?;
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
        let need = |k: &str| get(k).ok_or_else(|| err(format!("missing :{k}")));
        let process = match need("process")? {
            Edn::Int(p) if *p >= 0 => Process::Client(*p as u64),
            Edn::Keyword(k) if k == "nemesis" => Process::Nemesis,
            v => return Err(err(format!("expected a process number, found {v:?}"))),
        };
        let kind = match need("type")? {
            Edn::Keyword(k) if k == "invoke" => EventType::Invoke,
            Edn::Keyword(k) if k == "ok" => EventType::Ok,
            Edn::Keyword(k) if k == "fail" => EventType::Fail,
            Edn::Keyword(k) if k == "info" => EventType::Info,
            v => {
                return Err(err(format!(
                    "expected :type :invoke/:ok/:fail/:info, found {v:?}"
                )));
            }
        };
        let f = match need("f")? {
            Edn::Keyword(k) => k.clone(),
            v => return Err(err(format!("expected :f to be a keyword, found {v:?}"))),
        };
        let key = match get("key") {
            None | Some(Edn::Nil) => None,
            Some(Edn::Str(s)) => Some(s.clone()),
            Some(Edn::Int(i)) => Some(i.to_string()),
            Some(v) => return Err(err(format!("expected :key to be a string, found {v:?}"))),
        };
        let value = match get("value") {
            None | Some(Edn::Nil) => Value::Null,
            Some(Edn::Str(s)) => Value::String(s.clone()),
            Some(Edn::Int(i)) => Value::from(*i),
            Some(Edn::Keyword(k)) => Value::String(k.clone()),
        };
        events.push(Event {
            index: events.len() as u64,
            time: lineno as u64,
            kind,
            process,
            f,
            key,
            value,
            error: None,
            node: None,
            committed: None,
        });
    }
    Ok(History::new(events))
}

#[derive(Debug, Clone, PartialEq)]
enum Edn {
    Nil,
    Int(i64),
    Str(String),
    Keyword(String),
}

/// A flat EDN map of keyword keys to scalars: all this format holds.
fn edn_map(line: &str) -> Result<Vec<(String, Edn)>, String> {
    let body = line
        .strip_prefix('{')
        .and_then(|l| l.strip_suffix('}'))
        .ok_or("expected a map {...} on one line")?;
    let mut chars = body.char_indices().peekable();
    let mut out = Vec::new();
    let skip = |chars: &mut std::iter::Peekable<std::str::CharIndices>| {
        while chars
            .peek()
            .is_some_and(|&(_, c)| c.is_whitespace() || c == ',')
        {
            chars.next();
        }
    };
    loop {
        skip(&mut chars);
        if chars.peek().is_none() {
            return Ok(out);
        }
        let key = match atom(body, &mut chars)? {
            Edn::Keyword(k) => k,
            v => return Err(format!("expected a keyword key, found {v:?}")),
        };
        skip(&mut chars);
        if chars.peek().is_none() {
            return Err(format!("no value for :{key}"));
        }
        let v = atom(body, &mut chars).map_err(|e| format!(":{key}: {e}"))?;
        out.push((key, v));
    }
}

fn atom(body: &str, chars: &mut std::iter::Peekable<std::str::CharIndices>) -> Result<Edn, String> {
    let &(start, c) = chars.peek().ok_or("unexpected end of map")?;
    if c == '"' {
        chars.next();
        let mut s = String::new();
        loop {
            match chars.next() {
                None => return Err("unterminated string".to_string()),
                Some((_, '"')) => return Ok(Edn::Str(s)),
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => s.push('\n'),
                    Some((_, 't')) => s.push('\t'),
                    Some((_, c)) => s.push(c),
                    None => return Err("unterminated string".to_string()),
                },
                Some((_, c)) => s.push(c),
            }
        }
    }
    let mut end = body.len();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() || c == ',' {
            end = i;
            break;
        }
        chars.next();
    }
    let tok = &body[start..end];
    if tok == "nil" {
        Ok(Edn::Nil)
    } else if let Some(k) = tok.strip_prefix(':') {
        Ok(Edn::Keyword(k.to_string()))
    } else {
        tok.parse::<i64>()
            .map(Edn::Int)
            .map_err(|_| format!("unexpected {tok:?}"))
    }
}

/// True when `src` looks like an etcd Jepsen log (an op line near the top).
pub fn looks_like_etcd_log(src: &str) -> bool {
    src.lines().take(50).any(|l| {
        l.find(ETCD_MARK).is_some_and(|at| {
            let mut t = l[at + ETCD_MARK.len()..].split_whitespace();
            t.next().is_some_and(|p| p.parse::<u64>().is_ok())
                && t.next().is_some_and(|k| k.starts_with(':'))
        })
    })
}

/// True when `src` looks like a Porcupine kv log (flat one-line maps with `:process` and
/// `:key`).
pub fn looks_like_kv_log(src: &str) -> bool {
    src.lines().find(|l| !l.trim().is_empty()).is_some_and(|l| {
        let l = l.trim();
        l.starts_with("{:process") && l.ends_with('}') && l.contains(":key") && !l.contains('#')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_etcd_lines() {
        let src = "noise\nINFO  jepsen.util - 2\t:invoke\t:cas\t[2 4]\n\
                   INFO  jepsen.util - 2   :fail   :cas    [2 4]\n\
                   INFO  jepsen.util - 1\t:info\t:write\t1\t:timed-out\n\
                   INFO  jepsen.util - 4\t:invoke\t:read\tnil\n";
        let h = parse_etcd_log(src, Path::new("e.log")).unwrap();
        assert_eq!(h.len(), 4);
        assert_eq!(h.events[0].value, json!([2, 4]));
        assert_eq!(h.events[0].time, 2);
        assert_eq!(h.events[1].kind, EventType::Fail);
        assert_eq!(h.events[2].error.as_deref(), Some("timed-out"));
        assert_eq!(h.events[3].value, Value::Null);
        assert!(looks_like_etcd_log(src));
        assert!(!looks_like_kv_log(src));
    }

    #[test]
    fn etcd_errors_name_the_line() {
        let e = parse_etcd_log(
            "x\nINFO  jepsen.util - 2\t:invoke\t:cas\t[2 x]\n",
            Path::new("e.log"),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "e.log:2: expected an integer, found \"x\"");
        let e = parse_etcd_log(
            "INFO  jepsen.util - 2\t:invoke\t:pop\t1",
            Path::new("e.log"),
        );
        assert!(
            e.unwrap_err()
                .to_string()
                .contains("e.log:1: expected :read")
        );
        assert!(parse_etcd_log("", Path::new("e.log")).unwrap().is_empty());
    }

    #[test]
    fn reads_kv_lines() {
        let src = "{:process 9, :type :invoke, :f :append, :key \"0\", :value \"x 9 0 y\"}\n\
                   {:process 9, :type :ok, :f :get, :key \"0\", :value nil}\n";
        let h = parse_kv_log(src, Path::new("c.txt")).unwrap();
        assert_eq!(h.events[0].f, "append");
        assert_eq!(h.events[0].key.as_deref(), Some("0"));
        assert_eq!(h.events[0].value, json!("x 9 0 y"));
        assert_eq!(h.events[1].value, Value::Null);
        assert!(looks_like_kv_log(src));
        assert!(!looks_like_etcd_log(src));
        let e = parse_kv_log(
            "{:process 9, :type :invoke, :f :get, :key \"0",
            Path::new("c.txt"),
        );
        assert!(
            e.unwrap_err()
                .to_string()
                .starts_with("c.txt:1: expected a map")
        );
        let e = parse_kv_log("{:process 9, :type :done, :f :get}", Path::new("c.txt"));
        assert!(e.unwrap_err().to_string().contains(":type"));
    }
}
