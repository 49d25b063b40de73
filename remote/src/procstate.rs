//! [`ProcStat`]: what this crate reads of a remote process, from `/proc/<pid>/stat`.

/// The state letter (`R`, `S`, `D`, `T` stopped, `Z` zombie, ...) and the process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    pub state: char,
    pub pgrp: u32,
}

impl ProcStat {
    /// One `/proc/<pid>/stat` line. The command name sits in parentheses and may itself
    /// hold `) `, so the fields are read after the last one.
    pub fn parse(line: &str) -> Option<ProcStat> {
        let (head, rest) = line.rsplit_once(") ")?;
        let pid = head.split_once(" (")?.0.trim().parse().ok()?;
        let mut f = rest.split_ascii_whitespace();
        let state = f.next()?.chars().next()?;
        let _ppid = f.next()?;
        let pgrp = f.next()?.parse().ok()?;
        Some(ProcStat { pid, state, pgrp })
    }

    /// Every parsable line of a concatenation of stat files (unparsable ones are a process
    /// that ended while being read, or not a stat line: skipped).
    pub fn parse_all(text: &str) -> Vec<ProcStat> {
        text.lines().filter_map(ProcStat::parse).collect()
    }

    /// Stopped by a signal (SIGSTOP).
    pub fn is_stopped(&self) -> bool {
        self.state == 'T'
    }

    /// A zombie has exited and only waits to be reaped (a detached process's new parent
    /// may never reap it), so it counts as gone.
    pub fn is_alive(&self) -> bool {
        self.state != 'Z' && self.state != 'X'
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_after_the_last_parenthesis() {
        let s = ProcStat::parse("42 (sleep) S 1 40 40 0 -1").unwrap();
        assert_eq!(
            s,
            ProcStat {
                pid: 42,
                state: 'S',
                pgrp: 40
            }
        );
        let odd = ProcStat::parse("7 (a) T (b) Z 1 7 7 0").unwrap();
        assert_eq!((odd.pid, odd.state, odd.pgrp), (7, 'Z', 7));
        assert!(!odd.is_alive());
        assert!(ProcStat::parse("").is_none());
        let all = ProcStat::parse_all("1 (init) S 0 1 1\ngarbage\n9 (x) T 1 9 9\n");
        assert_eq!(all.len(), 2);
        assert!(all[1].is_stopped() && all[1].is_alive());
    }
}
