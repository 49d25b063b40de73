//! Test hosts on this machine: a network namespace per host (the netns backend's, on a
//! private bridge), each running its own `sshd` with a host key made here, its own private
//! tmpfs at the remote base directory (so hosts do not share their files, as real hosts
//! do not), and a user key and known_hosts made here. The controller side runs `ssh` in the
//! bridge's hub namespace. Everything goes on drop: sshd killed, namespaces deleted (with
//! whatever still runs in them), the tmpfs with its mount namespace.
//!
//! Needs root, `ip`, `nft`, `unshare`, `ssh`, `ssh-keygen` and `/usr/sbin/sshd` (Debian
//! `openssh-server`); without them a test skips with the reason, or fails under `CI`.
//!
//! For tests only: compiled with the `test-hosts` feature, which this crate's own tests and
//! the harness's enable as a dev-dependency.

use crate::{CommandLog, Host, HostSpec};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use sunder_nemesis::NetnsNet;
use sunder_nemesis::netns::{self, NsHandle};
use sunder_test_support::{have_command, met};

pub const SSHD: &str = "/usr/sbin/sshd";

/// Why these tests cannot run here, if they cannot.
pub fn missing() -> Option<String> {
    if let Some(why) = netns::unavailable() {
        return Some(why);
    }
    if !Path::new(SSHD).is_file() {
        return Some(format!("{SSHD} is missing (Debian package openssh-server)"));
    }
    for (c, pkg) in [
        ("ssh", "openssh-client"),
        ("ssh-keygen", "openssh-client"),
        ("unshare", "util-linux"),
        ("tar", "tar"),
    ] {
        if !have_command(c) {
            return Some(format!("`{c}` is missing (Debian package {pkg})"));
        }
    }
    None
}

fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A key pair made by ssh-keygen: (private key path, public key line).
pub fn keygen(path: &Path) -> String {
    sh(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "sunder-test",
            "-f",
            path.to_str().unwrap(),
        ],
    );
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

pub struct TestHosts {
    /// Kept first so that sshd dies before the namespaces go.
    sshd: Vec<Child>,
    pub net: NetnsNet,
    pub dir: tempfile::TempDir,
    pub names: Vec<String>,
    /// The remote base directory: on every host a tmpfs of its own.
    pub base: String,
    pub user_key: PathBuf,
    pub known_hosts: PathBuf,
    /// Each host's public host key line.
    pub host_keys: Vec<String>,
    pub log: Arc<CommandLog>,
}

impl TestHosts {
    /// `n` hosts named n1..nN at 10.77.0.1.. in their namespaces; `None` (after a printed
    /// skip) when this machine cannot.
    pub fn new(n: usize) -> Option<TestHosts> {
        if !met(missing()) {
            return None;
        }
        let names: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
        let net = NetnsNet::setup(names.clone()).expect("namespaces");
        let dir = tempfile::tempdir().unwrap();
        let base = format!("/tmp/sunder-rt-{}", net.names().tag);
        std::fs::create_dir_all(&base).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let user_key = dir.path().join("user_key");
        let user_pub = keygen(&user_key);
        let auth = dir.path().join("authorized_keys");
        std::fs::write(&auth, &user_pub).unwrap();
        let mut hosts = TestHosts {
            sshd: Vec::new(),
            net,
            names: names.clone(),
            base,
            user_key,
            known_hosts: dir.path().join("known_hosts"),
            host_keys: Vec::new(),
            log: Arc::new(CommandLog::open(&dir.path().join("remote.log")).unwrap()),
            dir,
        };
        let mut known = String::new();
        for id in &names {
            let addr = hosts.addr(id);
            let key = hosts.dir.path().join(format!("hostkey-{id}"));
            let line = keygen(&key);
            let mut f = line.split_whitespace();
            let (kind, b64) = (f.next().unwrap(), f.next().unwrap());
            known.push_str(&format!("{addr} {kind} {b64}\n"));
            hosts.host_keys.push(format!("{kind} {b64}"));
            let cfg = hosts.dir.path().join(format!("sshd-{id}.conf"));
            std::fs::write(
                &cfg,
                format!(
                    "ListenAddress {addr}:22\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
                     PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPrintMotd no\n\
                     MaxSessions 64\nMaxStartups 64\nLogLevel ERROR\n",
                    key.display(),
                    hosts.dir.path().join(format!("sshd-{id}.pid")).display(),
                    auth.display()
                ),
            )
            .unwrap();
            let err =
                std::fs::File::create(hosts.dir.path().join(format!("sshd-{id}.log"))).unwrap();
            // A mount namespace of its own with a tmpfs at the base: this host's files.
            let child = Command::new("ip")
                .args(["netns", "exec", &hosts.net.names().node(id)])
                .args(["unshare", "-m", "--propagation", "private", "sh", "-c"])
                .arg(r#"mount -t tmpfs -o size=1g sunder-test "$0" && exec "$@""#)
                .arg(&hosts.base)
                .args([SSHD, "-D", "-e", "-f"])
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(err)
                .spawn()
                .expect("start sshd");
            hosts.sshd.push(child);
        }
        std::fs::write(&hosts.known_hosts, known).unwrap();
        for id in &names {
            hosts.wait_listening(id);
        }
        Some(hosts)
    }

    pub fn addr(&self, id: &str) -> Ipv4Addr {
        self.net.addr(id).unwrap()
    }

    pub fn handle(&self, id: &str) -> Arc<NsHandle> {
        Arc::new(self.net.node_handle(id).unwrap())
    }

    /// sshd listens once a connect from the hub succeeds; bounded, so a broken sshd fails
    /// the test with its log instead of hanging it.
    fn wait_listening(&self, id: &str) {
        let hub = Arc::new(NsHandle::open(self.net.hub_path()).unwrap());
        let addr = SocketAddr::from((self.addr(id), 22));
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            let h = hub.clone();
            if inside(h, move || {
                TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
            }) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(self.dir.path().join(format!("sshd-{id}.log")));
        panic!("sshd of {id} does not listen: {log:?}");
    }

    /// How to reach host `id`: root with the test's key and known_hosts, nothing of the
    /// machine's ssh configuration.
    pub fn spec(&self, id: &str) -> HostSpec {
        let mut s = HostSpec::new(id, self.addr(id).to_string());
        s.user = Some("root".into());
        s.identity = Some(self.user_key.clone());
        s.known_hosts = Some(self.known_hosts.clone());
        s.config = Some("/dev/null".into());
        s.ssh_program = vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            self.net.names().hub(),
            "ssh".into(),
        ];
        s
    }

    pub fn connect(&self, id: &str) -> Arc<Host> {
        Arc::new(Host::connect(self.spec(id), self.dir.path(), self.log.clone()).expect("connect"))
    }

    /// Can `from` open a TCP connection to `to`'s sshd, from inside its namespace? For a
    /// link expected open: an open link answers at once, the bound only keeps a broken
    /// one from hanging the test.
    pub fn connects(&self, from: &str, to: &str) -> bool {
        self.try_connect(from, to, Duration::from_secs(5))
    }

    /// Is the link from `from` to `to` cut? A dropped SYN never connects however long one
    /// waits; an open link answers a SYN in the kernel, far within the short bound.
    pub fn cut(&self, from: &str, to: &str) -> bool {
        !self.try_connect(from, to, Duration::from_millis(500))
    }

    fn try_connect(&self, from: &str, to: &str, bound: Duration) -> bool {
        let addr = SocketAddr::from((self.addr(to), 22));
        inside(self.handle(from), move || {
            TcpStream::connect_timeout(&addr, bound).is_ok()
        })
    }

    /// Pids of the processes in host `id`'s namespace that are not its sshd, with their
    /// command names.
    pub fn foreign_processes(&self, id: &str) -> Vec<(u32, String)> {
        let pids = sh("ip", &["netns", "pids", &self.net.names().node(id)]);
        pids.split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .filter_map(|p| {
                let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).ok()?;
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
                let zombie = stat
                    .rsplit_once(") ")
                    .is_some_and(|(_, r)| r.starts_with('Z'));
                let comm = comm.trim().to_string();
                (!zombie && !comm.starts_with("sshd")).then_some((p, comm))
            })
            .collect()
    }

    /// The nftables tables in host `id`'s namespace.
    pub fn tables(&self, id: &str) -> String {
        sh(
            "ip",
            &[
                "netns",
                "exec",
                &self.net.names().node(id),
                "nft",
                "list",
                "tables",
            ],
        )
    }
}

impl Drop for TestHosts {
    fn drop(&mut self) {
        for c in &mut self.sshd {
            let _ = c.kill();
            let _ = c.wait();
        }
        // The namespaces (and whatever still runs in them) go with `net`; the tmpfs mounts
        // went with their mount namespaces. The mount point itself is empty.
        let _ = std::fs::remove_dir(&self.base);
    }
}

/// Runs `f` on a thread that has entered the namespace: sockets it makes live there.
pub fn inside<T: Send + 'static>(h: Arc<NsHandle>, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        h.enter().expect("setns");
        f()
    })
    .join()
    .expect("the namespace thread panicked")
}
