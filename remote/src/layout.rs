//! [`RunLayout`]: where one run keeps its things on every host, and the names `clean`
//! looks for. Everything of a run lives under one directory and one nftables table:
//!
//! ```text
//!   <base>/<run id>/                 the run's directory (default base /tmp/sunder-remote)
//!     pids/<name>.pid                a started process's pid = its process group
//!     <name>.log                     its stdout and stderr
//!     <node>/                        its working directory (data)
//!     <node>.faketime                its libfaketime control file
//!   table inet sunder-<run id>       partitions and loss
//!   SUNDER_RUN_ID=<run id>           in every started process's environment, so that
//!                                    `clean` never kills a pid that was reused since
//! ```

use crate::RemoteError;

/// The remote base directory unless the caller picks another.
pub const DEFAULT_BASE: &str = "/tmp/sunder-remote";
/// Every table of ours starts with this.
pub const TABLE_PREFIX: &str = "sunder-";
/// The environment variable that marks a process as the run's.
pub const RUN_ENV: &str = "SUNDER_RUN_ID";

/// A run id: 1 to 40 of `a-z`, `0-9`, `-`, starting with a letter or digit. It becomes a
/// path component and part of an nftables name, so nothing else gets through.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(String);

impl RunId {
    pub fn new(id: &str) -> Result<RunId, RemoteError> {
        let ok = !id.is_empty()
            && id.len() <= 40
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !id.starts_with('-');
        if !ok {
            return Err(RemoteError::Invalid(format!(
                "bad run id {id:?} (1 to 40 of a-z, 0-9, '-', not starting with '-')"
            )));
        }
        Ok(RunId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A node or process name in a path: the same alphabet as a host name.
pub fn check_name(name: &str) -> Result<(), RemoteError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(RemoteError::Invalid(format!(
            "bad name {name:?} (letters, digits, '-', '_', '.'; not starting with '-' or '.')"
        )))
    }
}

/// A remote base directory: absolute, no `..`, no odd characters, not `/`.
pub fn check_base(base: &str) -> Result<(), RemoteError> {
    let ok = base.starts_with('/')
        && base.len() > 1
        && !base.ends_with('/')
        && base.split('/').all(|p| p != ".." && p != ".")
        && base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if ok {
        Ok(())
    } else {
        Err(RemoteError::Invalid(format!(
            "bad remote base directory {base:?} (absolute, no '..', letters, digits, '-_./')"
        )))
    }
}

/// One run's names on every host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLayout {
    base: String,
    run: RunId,
}

impl RunLayout {
    pub fn new(base: &str, run: RunId) -> Result<RunLayout, RemoteError> {
        check_base(base)?;
        Ok(RunLayout {
            base: base.to_string(),
            run,
        })
    }

    pub fn run(&self) -> &RunId {
        &self.run
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn dir(&self) -> String {
        format!("{}/{}", self.base, self.run)
    }

    pub fn pid_file(&self, name: &str) -> String {
        format!("{}/pids/{name}.pid", self.dir())
    }

    pub fn log_file(&self, name: &str) -> String {
        format!("{}/{name}.log", self.dir())
    }

    pub fn work_dir(&self, name: &str) -> String {
        format!("{}/{name}", self.dir())
    }

    pub fn faketime_file(&self, node: &str) -> String {
        format!("{}/{node}.faketime", self.dir())
    }

    /// The run's nftables table (family `inet`).
    pub fn table(&self) -> String {
        format!("{TABLE_PREFIX}{}", self.run)
    }
}

/// A remote path given to a command: absolute, no `.` or `..` component, no NUL or
/// newline (quoting would carry them, but no path of ours needs them and a log line
/// should stay one line).
pub fn check_remote_path(p: &str) -> Result<(), RemoteError> {
    let ok = p.starts_with('/')
        && p.len() > 1
        && p.split('/').skip(1).all(|c| c != ".." && c != ".")
        && !p.contains(['\0', '\n', '\r']);
    if ok {
        Ok(())
    } else {
        Err(RemoteError::Invalid(format!(
            "bad remote path {p:?} (absolute, no '.' or '..' component, one line)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_and_bases_that_could_escape_are_refused() {
        for bad in ["", "-x", "A", "a/b", "a b", "..", &"x".repeat(41)] {
            assert!(RunId::new(bad).is_err(), "{bad:?}");
        }
        let id = RunId::new("r1-20260101").unwrap();
        for bad in ["rel", "/", "/a/../b", "/a/", "/a b", "/a;b"] {
            assert!(RunLayout::new(bad, id.clone()).is_err(), "{bad:?}");
        }
        let l = RunLayout::new("/tmp/s", id).unwrap();
        assert_eq!(l.dir(), "/tmp/s/r1-20260101");
        assert_eq!(l.pid_file("n1"), "/tmp/s/r1-20260101/pids/n1.pid");
        assert_eq!(l.table(), "sunder-r1-20260101");
        assert!(check_name("n1").is_ok());
        assert!(check_remote_path("/a/b c/d").is_ok());
        for bad in ["a", "/", "/a/../b", "/a/./b", "/a\nb"] {
            assert!(check_remote_path(bad).is_err(), "{bad:?}");
        }
        for bad in ["", "..", "a/b", "-n", ".x"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
