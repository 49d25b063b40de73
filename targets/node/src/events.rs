//! The event stream the controller reads: one JSON object per line, appended across
//! restarts, each stamped with the node id and the wall clock.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::args::NodeError;

/// An open event stream.
#[derive(Debug)]
pub struct EventLog {
    node: String,
    path: PathBuf,
    file: File,
}

impl EventLog {
    pub fn open(path: &Path, node: &str) -> Result<Self, NodeError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| NodeError::Io {
                what: "create event stream directory",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| NodeError::Io {
                what: "open event stream",
                path: path.to_path_buf(),
                source,
            })?;
        Ok(EventLog {
            node: node.to_string(),
            path: path.to_path_buf(),
            file,
        })
    }

    /// Writes one event as one line (a single `write`, so a reader never sees half of
    /// one). Losing an event is not worth killing the node for: a failure is logged.
    pub fn emit(&mut self, event: Value) {
        let mut obj = match event {
            Value::Object(m) => m,
            other => {
                let mut m = Map::new();
                m.insert("event".into(), other);
                m
            }
        };
        obj.insert("node".into(), Value::String(self.node.clone()));
        obj.insert("time_ms".into(), Value::from(wall_ms()));
        let mut line = Value::Object(obj).to_string();
        line.push('\n');
        if let Err(e) = self.file.write_all(line.as_bytes()) {
            tracing::warn!(path = %self.path.display(), "cannot write event: {e}");
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/events.jsonl");
        EventLog::open(&path, "n1")
            .unwrap()
            .emit(serde_json::json!({"event": "start"}));
        EventLog::open(&path, "n1")
            .unwrap()
            .emit(serde_json::json!("odd"));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "start");
        assert_eq!(lines[0]["node"], "n1");
        assert!(lines[0]["time_ms"].as_u64().unwrap() > 0);
        assert_eq!(lines[1]["event"], "odd");
    }
}
