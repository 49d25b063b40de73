//! The event stream the controller reads: one JSON object per line, appended across
//! restarts, each stamped with the node id and the wall clock. A line is a
//! [`sunder_wire::EventLine`], the type the agreement checker reads back.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sunder_wire::{EventLine, NodeEvent};

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
    pub fn emit(&mut self, event: NodeEvent) {
        let stamped = EventLine {
            node: self.node.clone(),
            time_ms: Some(wall_ms()),
            event,
        };
        let mut line = serde_json::to_string(&stamped).expect("an event line serialises");
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
    fn stamps_and_appends_lines_the_checker_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/events.jsonl");
        EventLog::open(&path, "n1").unwrap().emit(NodeEvent::Stop);
        EventLog::open(&path, "n1")
            .unwrap()
            .emit(NodeEvent::Leader { term: 4 });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<EventLine> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].event, NodeEvent::Stop);
        assert_eq!(lines[0].node, "n1");
        assert!(lines[0].time_ms.unwrap() > 0);
        assert_eq!(lines[1].event, NodeEvent::Leader { term: 4 });
    }
}
