//! [`Session`]: one multiplexed OpenSSH connection to one host, and the remote commands
//! run over it.
//!
//! ```text
//!   open():  ssh -M -N -f -o ControlPath=S -o ControlPersist=600s  ── master, stderr → file
//!   exec():  ssh -o ControlMaster=no -o ControlPath=S -- HOST 'timeout' .. 'quoted' 'argv'
//!              stdin ◄── bytes | file,  stdout ──► bounded sink,  stderr ──► kept, logged
//!   close(): ssh -O exit (and on drop)
//! ```
//!
//! The master is started apart, its stderr into a file: a master forked from a command
//! whose stderr is a pipe would hold that pipe open and hang whoever reads it. A command
//! that finds no master (it ended after `persist_secs` idle) starts one again first; if the
//! master ends between that check and the command, ssh falls back to a connection of its
//! own with the same options, so nothing but speed is lost.

use crate::quote::{check_arg, command_line};
use crate::{CommandLog, HostSpec, RemoteError};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Bytes of a command's stderr kept for errors and the log; the rest is read and dropped.
pub const STDERR_KEPT: usize = 64 * 1024;
/// Bytes of stdout a command may send back unless the caller says otherwise.
pub const STDOUT_LIMIT: u64 = 16 << 20;
/// A unix socket path must fit in `sun_path` (108 bytes with its NUL).
const SOCKET_PATH_MAX: usize = 100;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// What a remote command reads on stdin.
pub enum Input<'a> {
    None,
    Bytes(&'a [u8]),
    File(File),
}

/// A finished remote command.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// The first [`STDERR_KEPT`] bytes, lossily decoded.
    pub stderr: String,
}

impl Output {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// `exit 0`, `signal 9`: for logs and errors.
pub fn status_text(s: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => "unknown status".into(),
    }
}

/// One host's master connection.
#[derive(Debug)]
pub struct Session {
    spec: HostSpec,
    socket: PathBuf,
    /// A private directory made for the socket when the caller's was too long; removed
    /// at close.
    own_dir: Option<PathBuf>,
    master_err: PathBuf,
    log: Arc<CommandLog>,
    /// Held while checking for and starting the master: two commands finding it gone at
    /// once must start one master, not two (the second could not bind the socket and would
    /// stay in the background as a plain connection).
    starting: Mutex<()>,
}

impl Session {
    /// Validates the spec, starts the master connection and checks it. `dir` (the run
    /// directory) holds the control socket and the master's stderr.
    pub fn open(spec: HostSpec, dir: &Path, log: Arc<CommandLog>) -> Result<Session, RemoteError> {
        spec.validate()?;
        let mut socket = dir.join(format!("ssh-{}.sock", spec.name));
        let mut own_dir = None;
        if socket.as_os_str().len() > SOCKET_PATH_MAX {
            let d = std::env::temp_dir().join(format!(
                "sunder-ssh-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir(&d).map_err(RemoteError::io(format!("mkdir {}", d.display())))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))
                .map_err(RemoteError::io(format!("chmod {}", d.display())))?;
            socket = d.join(format!("{}.sock", spec.name));
            own_dir = Some(d);
        }
        let s = Session {
            master_err: dir.join(format!("ssh-{}.master.log", spec.name)),
            spec,
            socket,
            own_dir,
            log,
            starting: Mutex::new(()),
        };
        s.start_master()?;
        Ok(s)
    }

    pub fn spec(&self) -> &HostSpec {
        &self.spec
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    fn ssh(&self) -> Command {
        let mut c = Command::new(&self.spec.ssh_program[0]);
        c.args(&self.spec.ssh_program[1..])
            .args(self.spec.options())
            .arg("-o")
            .arg(format!("ControlPath={}", self.socket.display()))
            // A Ctrl-C on the terminal is the controller's to handle: it must not kill
            // the ssh that heals a partition on the way out.
            .process_group(0);
        c
    }

    fn start_master(&self) -> Result<(), RemoteError> {
        let err = File::create(&self.master_err).map_err(RemoteError::io(format!(
            "create {}",
            self.master_err.display()
        )))?;
        let mut c = self.ssh();
        c.args(["-o", "ControlMaster=yes"])
            .arg("-o")
            .arg(format!("ControlPersist={}s", self.spec.persist_secs))
            .args(["-N", "-f", "--", &self.spec.address])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        let shown: Vec<String> = std::iter::once(c.get_program())
            .chain(c.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let status = c.status().map_err(|source| RemoteError::Spawn {
            host: self.spec.name.clone(),
            program: self.spec.ssh_program[0].clone(),
            source,
        })?;
        let stderr = std::fs::read_to_string(&self.master_err).unwrap_or_default();
        self.log
            .record(&self.spec.name, &shown, &status_text(&status), &stderr);
        if !status.success() {
            return Err(self.classify(stderr));
        }
        Ok(())
    }

    /// A failed connection: a host-key problem is told apart, naming the host.
    fn classify(&self, stderr: String) -> RemoteError {
        let key = [
            "Host key verification failed",
            "REMOTE HOST IDENTIFICATION HAS CHANGED",
            "host key is known",
        ];
        let detail = stderr.trim().to_string();
        if key.iter().any(|k| stderr.contains(k)) {
            RemoteError::HostKey {
                host: format!("{} ({})", self.spec.name, self.spec.address),
                known_hosts: self.spec.known_hosts_shown(),
                detail,
            }
        } else {
            RemoteError::Connect {
                host: format!("{} ({})", self.spec.name, self.spec.address),
                detail,
            }
        }
    }

    /// Runs `argv` on the host, stdout into a `Vec` of at most `limit` bytes. Logged
    /// whatever happens. A non-zero exit is returned as such (see [`Session::check`]);
    /// ssh's own 255 (no connection) is an error.
    pub fn exec(
        &self,
        argv: &[String],
        input: Input<'_>,
        limit: u64,
    ) -> Result<Output, RemoteError> {
        let mut out = Vec::new();
        let (status, stderr) = self.exec_into(argv, input, &mut out, limit, "its output")?;
        Ok(Output {
            status,
            stdout: out,
            stderr,
        })
    }

    /// As [`Session::exec`], stdout streamed into `sink`, at most `limit` bytes.
    pub fn exec_into(
        &self,
        argv: &[String],
        input: Input<'_>,
        sink: &mut dyn Write,
        limit: u64,
        what: &str,
    ) -> Result<(ExitStatus, String), RemoteError> {
        for a in argv {
            check_arg(a)?;
        }
        {
            let _one = self.starting.lock().unwrap_or_else(|p| p.into_inner());
            if !self.socket.exists() {
                self.start_master()?;
            }
        }
        let mut c = self.ssh();
        c.args(["-o", "ControlMaster=no", "--", &self.spec.address])
            .arg(command_line(&self.bounded(argv)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut bytes = None;
        match input {
            Input::None => {
                c.stdin(Stdio::null());
            }
            Input::Bytes(b) => {
                c.stdin(Stdio::piped());
                bytes = Some(b.to_vec());
            }
            Input::File(f) => {
                c.stdin(f);
            }
        }
        let mut child = c.spawn().map_err(|source| RemoteError::Spawn {
            host: self.spec.name.clone(),
            program: self.spec.ssh_program[0].clone(),
            source,
        })?;
        let writer = bytes.map(|b| {
            let mut pipe = child.stdin.take().expect("piped");
            std::thread::spawn(move || {
                // A command that exits without reading all of it is its own answer.
                let _ = pipe.write_all(&b);
            })
        });
        let mut err_pipe = child.stderr.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut kept = Vec::new();
            let _ = (&mut err_pipe)
                .take(STDERR_KEPT as u64)
                .read_to_end(&mut kept);
            let _ = std::io::copy(&mut err_pipe, &mut std::io::sink());
            String::from_utf8_lossy(&kept).into_owned()
        });
        let copied = copy_bounded(&mut child, sink, limit);
        let status = child.wait();
        if let Some(w) = writer {
            let _ = w.join();
        }
        let stderr = reader.join().unwrap_or_default();
        let status = status.map_err(|source| RemoteError::Spawn {
            host: self.spec.name.clone(),
            program: self.spec.ssh_program[0].clone(),
            source,
        })?;
        // coreutils' timeout exits 124 when it stopped the command with TERM, 137 when the
        // command outlived TERM and was killed; `--verbose` tells those from the
        // command's own 124 or 137.
        let timed_out = matches!(status.code(), Some(124) | Some(137))
            && stderr.contains("timeout: sending signal");
        let shown = match (&copied, timed_out) {
            (_, true) => format!(
                "{} (killed: over {} s)",
                status_text(&status),
                self.spec.command_timeout_secs
            ),
            (Ok(_), false) => status_text(&status),
            (Err(_), false) => {
                format!("{} (cut: output over {limit} bytes)", status_text(&status))
            }
        };
        self.log.record(&self.spec.name, argv, &shown, &stderr);
        if timed_out {
            return Err(RemoteError::Timeout {
                host: self.spec.name.clone(),
                command: argv.join(" "),
                secs: self.spec.command_timeout_secs,
            });
        }
        match copied {
            Err(CopyError::TooLarge) => {
                return Err(RemoteError::TooLarge {
                    host: self.spec.name.clone(),
                    what: what.into(),
                    limit,
                });
            }
            Err(CopyError::Io(e)) => {
                return Err(RemoteError::Io {
                    context: format!("{}: receiving {what}", self.spec.name),
                    source: e,
                });
            }
            Ok(()) => {}
        }
        if status.code() == Some(255) {
            return Err(self.classify(stderr));
        }
        Ok((status, stderr))
    }

    /// The command as sent: under coreutils' `timeout` on the host, so that a command that
    /// hangs there ends there. Killing the local ssh would not do: with a master
    /// connection, the master holds the command's stdout and stderr, not the client.
    /// (A host that stops answering is found by the master's keep-alives instead.)
    fn bounded(&self, argv: &[String]) -> Vec<String> {
        let mut v = vec![
            "timeout".to_string(),
            "--verbose".into(),
            "-k".into(),
            "5".into(),
            self.spec.command_timeout_secs.to_string(),
        ];
        v.extend(argv.iter().cloned());
        v
    }

    /// [`Session::exec`], a non-zero exit as an error naming the command.
    pub fn check(&self, argv: &[String], input: Input<'_>) -> Result<Output, RemoteError> {
        let out = self.exec(argv, input, STDOUT_LIMIT)?;
        if !out.status.success() {
            return Err(RemoteError::Command {
                host: self.spec.name.clone(),
                command: argv.join(" "),
                status: status_text(&out.status),
                stderr: out.stderr.trim().to_string(),
            });
        }
        Ok(out)
    }

    /// Ends the master connection (idempotent) and removes a private socket directory.
    pub fn close(&self) {
        if self.socket.exists() {
            let mut c = self.ssh();
            c.args(["-O", "exit", "--", &self.spec.address])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = c.status();
        }
        if let Some(d) = &self.own_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}

enum CopyError {
    TooLarge,
    Io(std::io::Error),
}

/// Copies the child's stdout into `sink`; past `limit` bytes it kills the child.
fn copy_bounded(child: &mut Child, sink: &mut dyn Write, limit: u64) -> Result<(), CopyError> {
    let mut pipe = child.stdout.take().expect("piped");
    let mut buf = [0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Io(e)),
        };
        total += n as u64;
        if total > limit {
            let _ = child.kill();
            return Err(CopyError::TooLarge);
        }
        if let Err(e) = sink.write_all(&buf[..n]) {
            let _ = child.kill();
            return Err(CopyError::Io(e));
        }
    }
}
