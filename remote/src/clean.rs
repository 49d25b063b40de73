//! [`clean`]: what `sunder clean --hosts ...` does on each host after a controller was
//! killed: kill the run's process groups (from its pid files, only where the process still
//! carries the run's mark, so a reused pid is never hit), delete its nftables table and its
//! directory. For one run, or every sunder run under the base directory.

use crate::layout::{TABLE_PREFIX, check_base};
use crate::{Host, RemoteError, RunId};
use std::sync::Arc;

/// Kills the marked groups of the runs under `$1` (only run `$2` unless empty), waits (up
/// to `$3` rounds of 20 ms) until none of them has a live member, and prints `killed
/// <pgid>`, `dir <path>` and, for a group that would not die, `alive <pgid>` lines.
const KILL_SCRIPT: &str = r#"base=$1; want=$2; rounds=$3; killed=
live() {
  for f in /proc/[0-9]*/stat; do
    read -r l < "$f" 2>/dev/null || continue
    set -- ${l##*) }
    if [ "$3" = "$pg" ] && [ "$1" != Z ] && [ "$1" != X ]; then return 0; fi
  done
  return 1
}
[ -d "$base" ] || exit 0
for d in "$base"/*; do
  [ -d "$d" ] || continue
  id=${d##*/}
  if [ -n "$want" ] && [ "$id" != "$want" ]; then continue; fi
  for f in "$d"/pids/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat -- "$f")
    case $pid in ''|*[!0-9]*) continue;; esac
    if tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qxF "SUNDER_RUN_ID=$id"; then
      kill -s KILL -- "-$pid" 2>/dev/null && echo "killed $pid" && killed="$killed $pid"
    fi
  done
  echo "dir $d"
done
for pg in $killed; do
  i=0
  while live; do
    i=$((i+1))
    if [ "$i" -gt "$rounds" ]; then echo "alive $pg"; break; fi
    sleep 0.02
  done
done"#;

/// Which runs to clean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Run(RunId),
    /// Every sunder run on these hosts, a run in progress of another controller included.
    All,
}

/// What was cleaned on one host, and what could not be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCleaned {
    pub host: String,
    /// Process groups killed.
    pub killed: Vec<u32>,
    pub tables: Vec<String>,
    pub dirs: Vec<String>,
    pub errors: Vec<String>,
}

impl HostCleaned {
    pub fn is_complete(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The names of our tables in `nft list tables` output that the scope covers.
pub fn our_tables(listing: &str, scope: &Scope) -> Vec<String> {
    listing
        .lines()
        .filter_map(|l| l.trim().strip_prefix("table inet "))
        .map(str::trim)
        .filter(|name| match scope {
            Scope::Run(id) => *name == format!("{TABLE_PREFIX}{id}"),
            Scope::All => name.starts_with(TABLE_PREFIX),
        })
        .map(String::from)
        .collect()
}

/// Cleans every host; one host failing never keeps the others from being cleaned.
pub fn clean(
    hosts: &[Arc<Host>],
    base: &str,
    scope: &Scope,
) -> Result<Vec<HostCleaned>, RemoteError> {
    check_base(base)?;
    Ok(std::thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|h| s.spawn(move || clean_host(h, base, scope)))
            .collect();
        handles
            .into_iter()
            .zip(hosts)
            .map(|(t, h)| {
                t.join().unwrap_or_else(|_| HostCleaned {
                    host: h.name().to_string(),
                    errors: vec!["cleaning panicked".into()],
                    ..HostCleaned::default()
                })
            })
            .collect()
    }))
}

fn clean_host(host: &Host, base: &str, scope: &Scope) -> HostCleaned {
    let mut r = HostCleaned {
        host: host.name().to_string(),
        ..HostCleaned::default()
    };
    let want = match scope {
        Scope::Run(id) => id.as_str().to_string(),
        Scope::All => String::new(),
    };
    let rounds = (crate::procs::KILL_WAIT.as_millis() / 20).to_string();
    match host.run(&["sh", "-c", KILL_SCRIPT, "sh", base, &want, &rounds]) {
        Ok(out) => {
            for line in out.stdout_text().lines() {
                if let Some(p) = line.strip_prefix("killed ").and_then(|p| p.parse().ok()) {
                    r.killed.push(p);
                } else if let Some(d) = line.strip_prefix("dir ") {
                    r.dirs.push(d.to_string());
                } else if let Some(p) = line.strip_prefix("alive ") {
                    r.errors
                        .push(format!("process group {p} still lives after SIGKILL"));
                }
            }
        }
        Err(e) => r.errors.push(e.to_string()),
    }
    match host.run(&["nft", "list", "tables"]) {
        Ok(out) => {
            let tables = our_tables(&out.stdout_text(), scope);
            let text: String = tables
                .iter()
                .map(|t| format!("table inet {t}\ndelete table inet {t}\n"))
                .collect();
            if !tables.is_empty() {
                match host.nft(&text) {
                    Ok(()) => r.tables = tables,
                    Err(e) => r.errors.push(e.to_string()),
                }
            }
        }
        Err(e) => r.errors.push(e.to_string()),
    }
    // Directories last: their pid files were needed until every group was killed.
    if !r.dirs.is_empty() {
        let mut argv = vec!["rm", "-rf", "--"];
        argv.extend(r.dirs.iter().map(String::as_str));
        if let Err(e) = host.run(&argv) {
            r.errors.push(e.to_string());
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_tables_in_scope_are_picked() {
        let listing = "table inet filter\ntable inet sunder-r1\ntable inet sunder-r10\ntable ip sunder-r1\ntable inet sunder_123_0\n";
        let r1 = Scope::Run(RunId::new("r1").unwrap());
        assert_eq!(our_tables(listing, &r1), ["sunder-r1"]);
        assert_eq!(
            our_tables(listing, &Scope::All),
            ["sunder-r1", "sunder-r10"]
        );
    }
}
