//! Removing namespaces: the run's own at its end, and those a killed controller left
//! behind (`sunder clean`).

use super::command::run;
use super::names::{PREFIX, RunNames};
use super::net::netns_path;
use crate::NemesisError;
use std::time::{Duration, Instant};

/// How long killed processes get to leave a namespace before it is deleted anyway.
const EXIT_WAIT: Duration = Duration::from_secs(3);

/// SIGKILLs every process in namespace `ns` (never this one) and deletes it. A namespace
/// that does not exist is already removed.
pub fn remove_namespace(ns: &str) -> Result<(), NemesisError> {
    if !netns_path(ns).exists() {
        return Ok(());
    }
    let pids = pids_in(ns)?;
    let me = std::process::id();
    for &pid in pids.iter().filter(|p| **p != me) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    // A dead process leaves its namespace at exit, before it is reaped; wait for that so
    // the namespace really goes away with the delete.
    let deadline = Instant::now() + EXIT_WAIT;
    while Instant::now() < deadline {
        let still = pids_in(ns)?;
        if still.iter().all(|p| *p == me) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    run("ip", &["netns", "delete", ns], None)?;
    Ok(())
}

fn pids_in(ns: &str) -> Result<Vec<u32>, NemesisError> {
    let out = run("ip", &["netns", "pids", ns], None)?;
    Ok(out
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// A namespace of ours whose controller is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub namespace: String,
    pub owner: u32,
    /// Processes still inside it.
    pub pids: Vec<u32>,
}

/// True when `pid` is a live process (not a zombie). A pid the kernel has handed to an
/// unrelated process since hides that run's leftovers until the process ends: a rare miss,
/// where the opposite mistake (deleting a live run's network) would break a test.
fn owner_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Namespaces named `sunder-*` whose owner pid no longer runs.
pub fn leftovers() -> Result<Vec<Leftover>, NemesisError> {
    let dir = std::path::Path::new("/run/netns");
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(NemesisError::Backend(format!(
                "read {}: {e}",
                dir.display()
            )));
        }
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|e| NemesisError::Backend(format!("read {}: {e}", dir.display())))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(PREFIX) {
            continue;
        }
        let Some(owner) = RunNames::owner_pid(&name) else {
            continue;
        };
        if owner_alive(owner) {
            continue;
        }
        out.push(Leftover {
            pids: pids_in(&name)?,
            namespace: name,
            owner,
        });
    }
    out.sort_by(|a, b| a.namespace.cmp(&b.namespace));
    Ok(out)
}

/// What [`remove_leftovers`] did: the leftovers removed, and those it could not remove.
pub type Cleaned = (Vec<Leftover>, Vec<(Leftover, NemesisError)>);

/// Removes every leftover (processes first).
pub fn remove_leftovers() -> Result<Cleaned, NemesisError> {
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    for l in leftovers()? {
        match remove_namespace(&l.namespace) {
            Ok(()) => removed.push(l),
            Err(e) => failed.push((l, e)),
        }
    }
    Ok((removed, failed))
}
