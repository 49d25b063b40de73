//! [`CommandLog`]: every remote command's argv, exit status and stderr, one JSON line each,
//! in a file of the run directory (`remote.log`), so that a failed run can be read back.

use crate::RemoteError;
use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One line of the log.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LogEntry<'a> {
    /// Milliseconds since the Unix epoch (for people; nothing is ordered by it).
    pub at_ms: u128,
    pub host: &'a str,
    /// The command as run on the host, before quoting.
    pub argv: &'a [String],
    /// `exit 0`, `exit 1`, `signal 9`, or why it never ran.
    pub status: &'a str,
    /// Its stderr, as received (cut at [`crate::session::STDERR_KEPT`] bytes).
    pub stderr: &'a str,
}

/// Append-only and shared between hosts (one writer at a time, whole lines).
#[derive(Debug)]
pub struct CommandLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl CommandLog {
    /// Opens (appends to) the log file, creating it.
    pub fn open(path: &Path) -> Result<CommandLog, RemoteError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(RemoteError::io(format!("open {}", path.display())))?;
        Ok(CommandLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry. A log that cannot be written must not stop a heal or a cleanup:
    /// the failure is reported on stderr and through tracing instead.
    pub fn record(&self, host: &str, argv: &[String], status: &str, stderr: &str) {
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let entry = LogEntry {
            at_ms,
            host,
            argv,
            status,
            stderr,
        };
        let mut line = serde_json::to_string(&entry).expect("strings serialise");
        line.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = f.write_all(line.as_bytes()) {
            tracing::error!("writing {}: {e}", self.path.display());
            eprintln!("sunder: error: writing {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_record_is_one_json_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = CommandLog::open(&dir.path().join("remote.log")).unwrap();
        log.record("n1", &["echo".into(), "a\nb".into()], "exit 0", "");
        log.record("n2", &["false".into()], "exit 1", "oops\n");
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["argv"][1], "a\nb");
        assert_eq!(lines[1]["host"], "n2");
        assert_eq!(lines[1]["status"], "exit 1");
        assert_eq!(lines[1]["stderr"], "oops\n");
    }
}
