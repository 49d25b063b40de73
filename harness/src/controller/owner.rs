//! Whose socket answered: the check that a node which answers on its port is the process
//! this run started, not another program that took the port.
//!
//! Two runs on one machine (CI runs tests side by side) pick their ports independently. If
//! both pick one, the node that binds second exits at once, and the first run's probe may
//! already have had its `status` answered by the other run's node: from then on its clients
//! would talk to a cluster of another run. So a node counts as up only once the listening
//! socket on its port belongs to a process of its own process group, as `/proc` shows:
//! `/proc/<pid>/net/tcp{,6}` (the node's own network namespace) names the listening
//! socket's inode, and `/proc/<p>/fd` of the group's processes holds it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Whether a process of group `pgid` holds the listening TCP socket on `port`. `None`
/// when `/proc` cannot tell (not Linux, or no live process of the group to look through):
/// the caller then goes by the answer alone.
pub fn group_listens_on(pgid: u32, port: u16) -> Option<bool> {
    // The group's live members (its leader may be gone); the sockets are looked up in the
    // network namespace of the first, which all of a node's processes share.
    let members: Vec<PathBuf> = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter(|p| {
            p.file_name()
                .to_string_lossy()
                .parse::<u32>()
                .is_ok_and(|pid| process_group(pid) == Some(pgid))
        })
        .map(|p| p.path())
        .collect();
    let first = members.first()?;
    let mut inodes = BTreeSet::new();
    let mut read_any = false;
    for table in ["tcp", "tcp6"] {
        if let Ok(text) = std::fs::read_to_string(first.join("net").join(table)) {
            read_any = true;
            inodes.extend(listening_inodes(&text, port));
        }
    }
    if !read_any {
        return None;
    }
    Some(!inodes.is_empty() && members.iter().any(|m| holds_any(m, &inodes)))
}

/// The inodes of the sockets listening on `port` in one `/proc/net/tcp`-format table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit_once(':')?.1;
            let p = u16::from_str_radix(local_port, 16).ok()?;
            (p == port && *f.get(3)? == LISTEN).then(|| f.get(9)?.parse().ok())?
        })
        .collect()
}

/// The process group of `pid`, from `/proc/<pid>/stat` (the fifth field, counted after the
/// command name, which may itself hold spaces and parentheses).
fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(2)?.parse().ok()
}

fn holds_any(proc_dir: &Path, inodes: &BTreeSet<u64>) -> bool {
    let Ok(fds) = std::fs::read_dir(proc_dir.join("fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).ok().is_some_and(|l| {
            l.to_str()
                .and_then(|s| s.strip_prefix("socket:[")?.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| inodes.contains(&n))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::process::{Command, Stdio};

    #[test]
    fn a_table_line_is_read_by_port_and_state() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n\
           1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0 20 4 30 10 -1\n\
           2: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0 100 0 0 10 0\n";
        assert_eq!(listening_inodes(table, 8080), vec![4242]);
        assert_eq!(listening_inodes(table, 8081), vec![4444]);
        assert!(listening_inodes(table, 9).is_empty());
    }

    #[test]
    fn a_port_is_ours_only_while_our_group_listens_on_it() {
        if !Path::new("/proc/self/net/tcp").exists() {
            eprintln!("skipped: no /proc/self/net/tcp");
            return;
        }
        // This test process listens (its group's leader may be long gone, as under CI's
        // job runner); a child in a group of its own does not.
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let me = std::process::id();
        let mine = process_group(me).expect("own group");
        assert_eq!(group_listens_on(mine, port), Some(true));
        let mut child = std::os::unix::process::CommandExt::process_group(
            Command::new("sleep").arg("30").stdin(Stdio::null()),
            0,
        )
        .spawn()
        .unwrap();
        assert_eq!(group_listens_on(child.id(), port), Some(false));
        drop(l);
        assert_eq!(group_listens_on(mine, port), Some(false));
        let _ = child.kill();
        let _ = child.wait();
    }
}
