//! [`Host`]: what the controller does on one remote host, over its [`Session`]: commands,
//! uploads, detached processes and their signals, downloads, removing the run.
//!
//! Commands that need more than one program (a redirect, a loop) are constant `sh -c`
//! scripts in this file with every varying part passed as a positional argument
//! (`sh -c SCRIPT sh ARG...`, each quoted): nothing from outside is ever pasted into
//! shell text.

use crate::layout::{RunLayout, check_remote_path};
use crate::session::{Input, Output, STDOUT_LIMIT, Session, status_text};
use crate::{CommandLog, HostSpec, Launch, ProcStat, RemoteError};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// Signals the nemesis and cleanup send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Kill,
    Term,
    Stop,
    Cont,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Kill => "KILL",
            Signal::Term => "TERM",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
        }
    }
}

/// Writes stdin to `$1` atomically (a `.part` file renamed over it) with mode `$2`.
const WRITE_SCRIPT: &str = r#"set -e
mkdir -p -- "$(dirname -- "$1")"
cat > "$1.part"
chmod "$2" "$1.part"
mv -f -- "$1.part" "$1""#;

/// Starts `env "$@"` (after cwd, log and pid file) detached: its own session and process
/// group (setsid), stdin from /dev/null, output appended to the log. The process writes
/// its own pid before it execs, so the pid is right whether or not setsid had to fork;
/// the script waits (at most 10 s) for that file and prints it.
const START_SCRIPT: &str = r#"set -e
cwd=$1; log=$2; pidf=$3; shift 3
mkdir -p -- "$cwd" "$(dirname -- "$log")" "$(dirname -- "$pidf")"
rm -f -- "$pidf"
cd -- "$cwd"
setsid sh -c 'echo $$ > "$0.part" && mv -f -- "$0.part" "$0" && exec env "$@"' "$pidf" "$@" </dev/null >>"$log" 2>&1 &
i=0
while [ ! -s "$pidf" ]; do
  i=$((i+1))
  if [ "$i" -gt 1000 ]; then echo "no pid file $pidf after 10 s" >&2; exit 1; fi
  sleep 0.01
done
cat -- "$pidf""#;

/// Sends signal `$2` (none if empty) to process group `$1`, then waits (up to `$3` rounds of
/// 20 ms) until the group has no live member, reading `/proc/*/stat` with shell builtins
/// only (no fork per process); prints `gone` or `alive`. A zombie counts as gone: a
/// detached process's new parent may never reap it. Waiting on the host costs one round
/// trip instead of one per poll.
const KILL_WAIT_SCRIPT: &str = r#"pg=$1; sig=$2; rounds=$3
live() {
  for f in /proc/[0-9]*/stat; do
    read -r l < "$f" 2>/dev/null || continue
    set -- ${l##*) }
    if [ "$3" = "$pg" ] && [ "$1" != Z ] && [ "$1" != X ]; then return 0; fi
  done
  return 1
}
if [ -n "$sig" ]; then kill -s "$sig" -- "-$pg" 2>/dev/null || true; fi
i=0
while live; do
  i=$((i+1))
  if [ "$i" -gt "$rounds" ]; then echo alive; exit 0; fi
  sleep 0.02
done
echo gone"#;

/// Every process's stat line (a process that ends meanwhile is skipped).
const STATS_SCRIPT: &str = r#"cat /proc/[0-9]*/stat 2>/dev/null; true"#;

/// One remote host.
#[derive(Debug)]
pub struct Host {
    session: Session,
}

impl Host {
    /// Connects (one master connection, host key checked). `dir` is the local run
    /// directory: control socket and the master's stderr go there.
    pub fn connect(spec: HostSpec, dir: &Path, log: Arc<CommandLog>) -> Result<Host, RemoteError> {
        Ok(Host {
            session: Session::open(spec, dir, log)?,
        })
    }

    pub fn name(&self) -> &str {
        self.session.name()
    }

    pub fn spec(&self) -> &HostSpec {
        self.session.spec()
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Runs `argv`; a non-zero exit is an error naming the command and its stderr.
    pub fn run(&self, argv: &[&str]) -> Result<Output, RemoteError> {
        self.session.check(&owned(argv), Input::None)
    }

    /// Runs `argv` and returns however it ended (only ssh's own failure is an error).
    pub fn exec(&self, argv: &[&str]) -> Result<Output, RemoteError> {
        self.session.exec(&owned(argv), Input::None, STDOUT_LIMIT)
    }

    /// Runs `argv` with `input` on stdin; a non-zero exit is an error.
    pub fn run_with_input(&self, argv: &[&str], input: &[u8]) -> Result<Output, RemoteError> {
        self.session.check(&owned(argv), Input::Bytes(input))
    }

    fn script(&self, script: &str, args: &[&str], input: Input<'_>) -> Result<Output, RemoteError> {
        let mut argv = vec!["sh".to_string(), "-c".into(), script.into(), "sh".into()];
        argv.extend(args.iter().map(|s| s.to_string()));
        self.session.check(&argv, input)
    }

    /// Writes `bytes` to `remote` (made atomically, parents created) with `mode`.
    pub fn write_file(&self, remote: &str, bytes: &[u8], mode: u32) -> Result<(), RemoteError> {
        check_remote_path(remote)?;
        let mode = check_mode(mode)?;
        self.script(WRITE_SCRIPT, &[remote, &mode], Input::Bytes(bytes))
            .map(|_| ())
    }

    /// Copies the local file `local` to `remote` with `mode`, streamed over the
    /// connection (the sunder binary, a spec's files, keys).
    pub fn upload(&self, local: &Path, remote: &str, mode: u32) -> Result<(), RemoteError> {
        check_remote_path(remote)?;
        let mode = check_mode(mode)?;
        let f = std::fs::File::open(local)
            .map_err(RemoteError::io(format!("open {}", local.display())))?;
        self.script(WRITE_SCRIPT, &[remote, &mode], Input::File(f))
            .map(|_| ())
    }

    /// Starts `launch` detached in its own process group, marked as the run's; returns its
    /// pid (also its process group id, and in its pid file).
    pub fn start(&self, layout: &RunLayout, launch: &Launch) -> Result<u32, RemoteError> {
        launch.validate()?;
        let args = launch.script_args(layout);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.script(START_SCRIPT, &refs, Input::None)?;
        let text = out.stdout_text();
        match text.trim().parse::<u32>() {
            Ok(pid) if pid > 1 => Ok(pid),
            _ => Err(RemoteError::Answer {
                host: self.name().into(),
                what: format!("starting {}", launch.name),
                detail: format!("pid file holds {:?}", text.trim()),
            }),
        }
    }

    /// Sends `sig` to process group `pgid` (a pid [`Host::start`] returned). A group that
    /// no longer exists is an error (the caller knows what it expected).
    pub fn signal_group(&self, pgid: u32, sig: Signal) -> Result<(), RemoteError> {
        if pgid <= 1 {
            return Err(RemoteError::Invalid(format!("process group {pgid}")));
        }
        let target = format!("-{pgid}");
        self.script(
            r#"kill -s "$1" -- "$2""#,
            &[sig.name(), &target],
            Input::None,
        )
        .map(|_| ())
    }

    /// Every process on the host (its pid namespace), from `/proc/*/stat`.
    pub fn processes(&self) -> Result<Vec<ProcStat>, RemoteError> {
        let out = self.script(STATS_SCRIPT, &[], Input::None)?;
        Ok(ProcStat::parse_all(&out.stdout_text()))
    }

    /// One process, `None` when there is no such pid.
    pub fn process(&self, pid: u32) -> Result<Option<ProcStat>, RemoteError> {
        let path = format!("/proc/{pid}/stat");
        let out = self.script(r#"cat -- "$1" 2>/dev/null || true"#, &[&path], Input::None)?;
        Ok(ProcStat::parse(out.stdout_text().trim()))
    }

    /// The live (not zombie) members of process group `pgid`.
    pub fn group(&self, pgid: u32) -> Result<Vec<ProcStat>, RemoteError> {
        Ok(self
            .processes()?
            .into_iter()
            .filter(|p| p.pgrp == pgid && p.is_alive())
            .collect())
    }

    /// Sends `sig` (if any) to group `pgid`, then waits on the host until the group has
    /// no live member: true when it is gone, false if some member still lives after
    /// `bound` (a bound on waiting, not a claim about timing). A group already gone is gone.
    pub fn signal_and_wait_gone(
        &self,
        pgid: u32,
        sig: Option<Signal>,
        bound: Duration,
    ) -> Result<bool, RemoteError> {
        if pgid <= 1 {
            return Err(RemoteError::Invalid(format!("process group {pgid}")));
        }
        let rounds = (bound.as_millis() / 20).max(1).to_string();
        let out = self.script(
            KILL_WAIT_SCRIPT,
            &[&pgid.to_string(), sig.map_or("", Signal::name), &rounds],
            Input::None,
        )?;
        match out.stdout_text().trim() {
            "gone" => Ok(true),
            "alive" => Ok(false),
            other => Err(RemoteError::Answer {
                host: self.name().into(),
                what: format!("waiting for process group {pgid}"),
                detail: format!("{other:?}"),
            }),
        }
    }

    /// [`Host::signal_and_wait_gone`] without a signal.
    pub fn wait_group_gone(&self, pgid: u32, bound: Duration) -> Result<bool, RemoteError> {
        self.signal_and_wait_gone(pgid, None, bound)
    }

    /// Downloads `remote` (a file or a directory) into `local_dir` as `local_dir/<name>`,
    /// through `tar` on both ends; at most `limit` bytes of archive are accepted. GNU tar
    /// refuses members with `..` and absolute names, and runs with `--no-same-owner`.
    pub fn download(&self, remote: &str, local_dir: &Path, limit: u64) -> Result<(), RemoteError> {
        check_remote_path(remote)?;
        let (parent, name) = remote.rsplit_once('/').expect("absolute");
        let parent = if parent.is_empty() { "/" } else { parent };
        std::fs::create_dir_all(local_dir)
            .map_err(RemoteError::io(format!("mkdir {}", local_dir.display())))?;
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(local_dir)
            .args(["-xf", "-", "--no-same-owner"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| RemoteError::Spawn {
                host: self.name().into(),
                program: "tar".into(),
                source,
            })?;
        let argv = owned(&["tar", "-C", parent, "-cf", "-", "--", name]);
        let mut sink = tar.stdin.take().expect("piped");
        let sent = self.session.exec_into(
            &argv,
            Input::None,
            &mut sink as &mut dyn Write,
            limit,
            &format!("the archive of {remote}"),
        );
        drop(sink);
        let local = tar
            .wait_with_output()
            .map_err(|source| RemoteError::Spawn {
                host: self.name().into(),
                program: "tar".into(),
                source,
            })?;
        let (status, stderr) = sent?;
        if !status.success() {
            return Err(RemoteError::Command {
                host: self.name().into(),
                command: argv.join(" "),
                status: status_text(&status),
                stderr: stderr.trim().into(),
            });
        }
        if !local.status.success() {
            return Err(RemoteError::Io {
                context: format!(
                    "{}: unpacking {remote} into {}",
                    self.name(),
                    local_dir.display()
                ),
                source: std::io::Error::other(
                    String::from_utf8_lossy(&local.stderr).trim().to_string(),
                ),
            });
        }
        Ok(())
    }

    /// Applies nftables text (`nft -f -`, one transaction).
    pub fn nft(&self, text: &str) -> Result<(), RemoteError> {
        self.run_with_input(&["nft", "-f", "-"], text.as_bytes())
            .map(|_| ())
    }

    /// Removes the run's directory (and only that: the path comes from the layout).
    pub fn remove_run_dir(&self, layout: &RunLayout) -> Result<(), RemoteError> {
        self.run(&["rm", "-rf", "--", &layout.dir()]).map(|_| ())
    }

    /// Whether a path exists on the host.
    pub fn exists(&self, remote: &str) -> Result<bool, RemoteError> {
        check_remote_path(remote)?;
        Ok(self.exec(&["test", "-e", remote])?.status.success())
    }
}

fn owned(argv: &[&str]) -> Vec<String> {
    argv.iter().map(|s| s.to_string()).collect()
}

fn check_mode(mode: u32) -> Result<String, RemoteError> {
    if mode > 0o7777 {
        return Err(RemoteError::Invalid(format!("file mode {mode:o}")));
    }
    Ok(format!("{mode:o}"))
}
