//! The run directory `results/<name>/<timestamp>/` and the `results/latest` link.
//!
//! ```text
//!   results/latest -> primary-register-partition+kill/20261128T162400Z
//!   results/<name>/<ts>/config.json  history.jsonl  schedule.json  results.json
//!                       nodes/<id>.log  <id>.events.jsonl  <id>.dump.json  <id>/ (data)
//! ```

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates a fresh directory for this run (never reusing one: a suffix is added when
    /// two runs start in the same second) and points `results/latest` at it.
    pub fn create(results: &Path, name: &str) -> anyhow::Result<RunDir> {
        let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
            .to_string()
            .replace(['-', ':'], "");
        let parent = results.join(name);
        std::fs::create_dir_all(&parent).with_context(|| format!("create {}", parent.display()))?;
        let mut path = parent.join(&stamp);
        let mut n = 1;
        loop {
            match std::fs::create_dir(&path) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    path = parent.join(format!("{stamp}-{n}"));
                    n += 1;
                }
                Err(e) => return Err(e).with_context(|| format!("create {}", path.display())),
            }
        }
        std::fs::create_dir(path.join("nodes"))
            .with_context(|| format!("create {}/nodes", path.display()))?;
        let dir = RunDir { path };
        dir.link_latest(results, name)?;
        Ok(dir)
    }

    /// Replaces `results/latest` atomically (a temporary link renamed over it).
    fn link_latest(&self, results: &Path, name: &str) -> anyhow::Result<()> {
        let leaf = self.path.file_name().expect("a run dir has a name");
        let target = Path::new(name).join(leaf);
        let tmp = results.join(format!(".latest.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp)
            .with_context(|| format!("link {}", tmp.display()))?;
        std::fs::rename(&tmp, results.join("latest"))
            .with_context(|| format!("rename {} to latest", tmp.display()))?;
        Ok(())
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn node_file(&self, name: &str) -> PathBuf {
        self.path.join("nodes").join(name)
    }

    pub fn write_json(&self, name: &str, value: &impl serde::Serialize) -> anyhow::Result<()> {
        let p = self.file(name);
        let mut text = serde_json::to_string_pretty(value).context("serialise")?;
        text.push('\n');
        std::fs::write(&p, text).with_context(|| format!("write {}", p.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_runs_get_two_dirs_and_latest_follows() {
        let tmp = tempfile::tempdir().unwrap();
        let a = RunDir::create(tmp.path(), "t").unwrap();
        let b = RunDir::create(tmp.path(), "t").unwrap();
        assert_ne!(a.path, b.path);
        assert!(b.path.join("nodes").is_dir());
        let latest = std::fs::canonicalize(tmp.path().join("latest")).unwrap();
        assert_eq!(latest, std::fs::canonicalize(&b.path).unwrap());
    }
}
