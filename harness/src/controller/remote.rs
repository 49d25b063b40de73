//! Nodes on remote hosts over SSH (`sunder test --hosts`, `--host`): which host carries
//! which node and how ssh reaches it ([`Hosts`], from the flags or a `hosts.toml`, checked
//! before anything connects), the run's id on the hosts ([`run_id`]) and each node's
//! process there ([`node_launches`]: the local `sunder node` command on the host's address
//! and fixed ports). The SSH work itself is `sunder_remote`'s.
//!
//! ```toml
//! # hosts.toml: one table per node id (n1..nN, exactly the run's nodes)
//! [n1]
//! address = "10.0.0.5"         # required: host name or address as ssh takes it
//! user = "root"                # optional: ssh's default otherwise
//! port = 22                    # optional
//! identity = "keys/id_ed25519" # optional: a key file (relative: to this file's directory)
//! known_hosts = "known_hosts"  # optional: instead of the user's and the system's
//! ssh_config = "/dev/null"     # optional: an ssh config file instead of ~/.ssh/config
//! ```

use super::config::TestConfig;
use super::launch::{NodeCtx, builtin_command};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use sunder_remote::{HostSpec, Launch, RunId, RunLayout};

/// Where a remote node listens for clients and for its peers. Fixed, since every node has
/// a host of its own and the controller must know the ports before the node starts; a
/// port taken on a host fails that node's start with its log saying so.
pub const CLIENT_PORT: u16 = 47_001;
pub const PEER_PORT: u16 = 47_002;

/// One node as it runs on its host: the process to start and where it is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteNode {
    pub id: String,
    pub launch: Launch,
    /// Where the controller's clients reach it.
    pub client: SocketAddr,
}

/// The run's id on the hosts (a directory and a table name): the run directory's stamp
/// and the controller's pid, so that two controllers sharing hosts never share a run.
pub fn run_id(run_dir: &Path, pid: u32) -> anyhow::Result<RunId> {
    let stamp: String = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(28)
        .collect();
    let id = format!("{}-{pid}", stamp.trim_matches('-'));
    RunId::new(id.trim_start_matches('-')).map_err(|e| anyhow::anyhow!("run id: {e}"))
}

/// Every node's `sunder node` process on its host, with the same arguments as a local
/// launch but the host's address and the run's remote directory: data in `<run>/<id>/`,
/// events `<run>/<id>.events.jsonl`, log `<run>/<id>.log`, so that a download of the
/// run's directory into `nodes/` gives the names a local run writes. `addrs`: each node's
/// host address, resolved; `exe`: where the `sunder` binary was uploaded.
pub fn node_launches(
    cfg: &TestConfig,
    layout: &RunLayout,
    addrs: &BTreeMap<String, IpAddr>,
    exe: &str,
) -> anyhow::Result<Vec<RemoteNode>> {
    let members = cfg.members();
    let mut out = Vec::new();
    for (i, id) in members.iter().enumerate() {
        let Some(ip) = addrs.get(id) else {
            bail!("no host address for node {id}");
        };
        let peers = members
            .iter()
            .filter(|p| *p != id)
            .map(|p| {
                addrs
                    .get(p)
                    .map(|a| (p.clone(), SocketAddr::new(*a, PEER_PORT)))
                    .with_context(|| format!("no host address for node {p}"))
            })
            .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
        let client = SocketAddr::new(*ip, CLIENT_PORT);
        let ctx = NodeCtx {
            id,
            index: i + 1,
            members: &members,
            client,
            peer_listen: SocketAddr::new(*ip, PEER_PORT),
            peers,
            data: PathBuf::from(layout.work_dir(id)),
            events: PathBuf::from(format!("{}/{id}.events.jsonl", layout.dir())),
            log: PathBuf::from(format!("{}/{id}.log", layout.dir())),
        };
        let cmd = builtin_command(cfg, Path::new(exe), &ctx);
        let launch = remote_launch(
            layout,
            id,
            cmd.program.display().to_string(),
            cmd.args,
            cmd.env,
        )?;
        out.push(RemoteNode {
            id: id.clone(),
            launch,
            client,
        });
    }
    Ok(out)
}

/// Node `id`'s process on its host: `program` with `args` and `env` (which must be UTF-8:
/// they travel as words of a remote command), in the run's directory, checked.
pub fn remote_launch(
    layout: &RunLayout,
    id: &str,
    program: String,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
) -> anyhow::Result<Launch> {
    let text = |s: OsString| {
        s.into_string()
            .map_err(|s| anyhow::anyhow!("node {id}: {s:?} is not UTF-8"))
    };
    let mut argv = vec![program];
    for a in args {
        argv.push(text(a)?);
    }
    let mut launch = Launch::in_run(layout, id, argv);
    for (k, v) in env {
        launch = launch.env(&text(k)?, &text(v)?);
    }
    launch
        .validate()
        .map_err(|e| anyhow::anyhow!("node {id}: {e}"))?;
    Ok(launch)
}

/// The most bytes of a hosts file read: it is a handful of short tables.
const HOSTS_FILE_LIMIT: u64 = 1 << 20;

/// How ssh reaches the host of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeHost {
    pub address: String,
    pub user: Option<String>,
    pub port: u16,
    pub identity: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub ssh_config: Option<PathBuf>,
}

/// The hosts of a run, node id → host, and where they came from (for the replay command).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hosts {
    /// `--hosts FILE`, or `None` for `--host` flags.
    pub file: Option<PathBuf>,
    /// `--ssh-identity`, `--ssh-known-hosts`: for every host that does not name its own.
    pub default_identity: Option<PathBuf>,
    pub default_known_hosts: Option<PathBuf>,
    pub nodes: BTreeMap<String, NodeHost>,
    /// `--remote-base`: where the run's directory goes on every host
    /// ([`sunder_remote::DEFAULT_BASE`] unless given).
    pub base: String,
}

/// One table of hosts.toml; any other key is an error (a typo must not silently fall back
/// to a default such as the user's keys).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    address: String,
    user: Option<String>,
    port: Option<u16>,
    identity: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    ssh_config: Option<PathBuf>,
}

impl Hosts {
    /// From `--host` flags (`n1=[user@]address[:port]`, IPv6 as `[addr]:port`) or a
    /// `--hosts` file (not both), with the `--ssh-*` defaults; `None` when neither is
    /// given. The node ids must be exactly `members`.
    pub fn from_flags(
        host_flags: &[String],
        file: Option<&Path>,
        identity: Option<&Path>,
        known_hosts: Option<&Path>,
        members: &[String],
    ) -> anyhow::Result<Option<Hosts>> {
        let mut nodes = BTreeMap::new();
        match (host_flags.is_empty(), file) {
            (true, None) => {
                if identity.is_some() || known_hosts.is_some() {
                    bail!("--ssh-identity and --ssh-known-hosts are for --hosts or --host");
                }
                return Ok(None);
            }
            (false, Some(_)) => bail!("--host and --hosts: give the hosts one way, not both"),
            (false, None) => {
                for f in host_flags {
                    let (id, host) = parse_host_flag(f).with_context(|| format!("--host {f:?}"))?;
                    if nodes.insert(id.clone(), host).is_some() {
                        bail!("--host {f:?}: node {id} is given twice");
                    }
                }
            }
            (true, Some(path)) => nodes = read_file(path)?,
        }
        let hosts = Hosts::complete(nodes, file, identity, known_hosts)?;
        let given: Vec<&String> = hosts.nodes.keys().collect();
        let mut want: Vec<&String> = members.iter().collect();
        want.sort();
        if given != want {
            bail!(
                "{}: the hosts are for nodes {} but the run has nodes {} (--nodes {})",
                hosts.source(),
                join(&given),
                join(&want),
                members.len()
            );
        }
        Ok(Some(hosts))
    }

    /// A hosts file on its own, whatever nodes it names (`sunder clean --hosts`).
    pub fn from_file(
        file: &Path,
        identity: Option<&Path>,
        known_hosts: Option<&Path>,
    ) -> anyhow::Result<Hosts> {
        Hosts::complete(read_file(file)?, Some(file), identity, known_hosts)
    }

    /// Fills in the defaults and checks every host as ssh will see it.
    fn complete(
        mut nodes: BTreeMap<String, NodeHost>,
        file: Option<&Path>,
        identity: Option<&Path>,
        known_hosts: Option<&Path>,
    ) -> anyhow::Result<Hosts> {
        for h in nodes.values_mut() {
            if h.identity.is_none() {
                h.identity = identity.map(Path::to_path_buf);
            }
            if h.known_hosts.is_none() {
                h.known_hosts = known_hosts.map(Path::to_path_buf);
            }
        }
        let hosts = Hosts {
            file: file.map(Path::to_path_buf),
            default_identity: identity.map(Path::to_path_buf),
            default_known_hosts: known_hosts.map(Path::to_path_buf),
            nodes,
            base: sunder_remote::DEFAULT_BASE.to_string(),
        };
        for id in hosts.nodes.keys() {
            hosts
                .spec(id)
                .validate()
                .map_err(|e| anyhow::anyhow!("{}: {e}", hosts.source()))?;
        }
        Ok(hosts)
    }

    /// The flag the hosts came from, for messages.
    fn source(&self) -> String {
        match &self.file {
            Some(p) => format!("--hosts {}", p.display()),
            None => "--host".to_string(),
        }
    }

    /// How `sunder_remote` reaches the host of node `id` (which must be one of ours).
    pub fn spec(&self, id: &str) -> HostSpec {
        let h = &self.nodes[id];
        let mut s = HostSpec::new(id, h.address.clone());
        s.user = h.user.clone();
        s.port = h.port;
        s.identity = h.identity.clone();
        s.known_hosts = h.known_hosts.clone();
        s.config = h.ssh_config.clone();
        s
    }

    /// Every host's spec, in node order.
    pub fn specs(&self) -> Vec<HostSpec> {
        self.nodes.keys().map(|id| self.spec(id)).collect()
    }

    /// The `sunder test` flags that give these hosts again.
    pub fn replay_args(&self) -> Vec<String> {
        let mut c = Vec::new();
        match &self.file {
            Some(p) => {
                c.push("--hosts".to_string());
                c.push(p.display().to_string());
            }
            None => {
                for (id, h) in &self.nodes {
                    c.push("--host".to_string());
                    c.push(host_flag(id, h));
                }
            }
        }
        if let Some(p) = &self.default_identity {
            c.push("--ssh-identity".to_string());
            c.push(p.display().to_string());
        }
        if let Some(p) = &self.default_known_hosts {
            c.push("--ssh-known-hosts".to_string());
            c.push(p.display().to_string());
        }
        if self.base != sunder_remote::DEFAULT_BASE {
            c.push("--remote-base".to_string());
            c.push(self.base.clone());
        }
        c
    }
}

fn join(ids: &[&String]) -> String {
    if ids.is_empty() {
        "(none)".to_string()
    } else {
        ids.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `n1=[user@]address[:port]`; an IPv6 address with a port is written `[addr]:port`, one
/// without a port may be bare.
pub fn parse_host_flag(f: &str) -> anyhow::Result<(String, NodeHost)> {
    let Some((id, dest)) = f.split_once('=') else {
        bail!("expected NODE=[USER@]ADDRESS[:PORT], e.g. n1=root@10.0.0.5");
    };
    if id.is_empty() {
        bail!("no node id before '='");
    }
    let (user, hostport) = match dest.split_once('@') {
        Some((u, h)) => {
            if u.is_empty() {
                bail!("an empty user before '@'");
            }
            (Some(u.to_string()), h)
        }
        None => (None, dest),
    };
    let (address, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            bail!("'[' without ']' in {hostport:?}");
        };
        match after {
            "" => (addr, 22),
            p => match p.strip_prefix(':') {
                Some(p) => (addr, parse_port(p)?),
                None => bail!("unexpected {after:?} after ']'"),
            },
        }
    } else if hostport.matches(':').count() == 1 {
        let (a, p) = hostport.split_once(':').expect("one ':'");
        (a, parse_port(p)?)
    } else {
        (hostport, 22)
    };
    if address.is_empty() {
        bail!("no address");
    }
    Ok((
        id.to_string(),
        NodeHost {
            address: address.to_string(),
            user,
            port,
            identity: None,
            known_hosts: None,
            ssh_config: None,
        },
    ))
}

fn parse_port(p: &str) -> anyhow::Result<u16> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("port {p:?}: expected 1 to 65535"),
    }
}

/// The `--host` value that parses back to `h` (per-host keys aside, which flags cannot say).
fn host_flag(id: &str, h: &NodeHost) -> String {
    let addr = if h.address.contains(':') {
        format!("[{}]", h.address)
    } else {
        h.address.clone()
    };
    let user = h.user.as_ref().map_or(String::new(), |u| format!("{u}@"));
    format!("{id}={user}{addr}:{}", h.port)
}

/// Reads and checks a hosts file: tables only, known keys only, bounded size. Relative
/// paths in it are relative to the file's directory, so the file means the same from
/// wherever sunder is started.
pub fn read_file(path: &Path) -> anyhow::Result<BTreeMap<String, NodeHost>> {
    use std::io::Read;
    let what = format!("--hosts {}", path.display());
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(HOSTS_FILE_LIMIT + 1).read_to_string(&mut text))
        .with_context(|| format!("{what}: cannot read"))?;
    if text.len() as u64 > HOSTS_FILE_LIMIT {
        bail!("{what}: larger than {HOSTS_FILE_LIMIT} bytes");
    }
    let table: BTreeMap<String, FileEntry> =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    if table.is_empty() {
        bail!("{what}: no hosts (expected one table per node, e.g. [n1] address = \"10.0.0.5\")");
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let resolve = |p: Option<PathBuf>| {
        p.map(|p| {
            if p.is_absolute() || p.as_os_str().is_empty() {
                p
            } else {
                dir.join(p)
            }
        })
    };
    let mut out = BTreeMap::new();
    for (id, e) in table {
        if e.port == Some(0) {
            bail!("{what}: [{id}] port 0");
        }
        out.insert(
            id,
            NodeHost {
                address: e.address,
                user: e.user,
                port: e.port.unwrap_or(22),
                identity: resolve(e.identity),
                known_hosts: resolve(e.known_hosts),
                ssh_config: resolve(e.ssh_config),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn flags(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn remote_nodes_run_the_local_command_on_their_hosts_addresses() {
        let mut cfg = crate::controller::config::tests_support::config();
        cfg.opts = vec![("batch".into(), "off".into())];
        let layout = RunLayout::new("/tmp/sunder-remote", RunId::new("r1").unwrap()).unwrap();
        let addrs: BTreeMap<String, IpAddr> = (1..=3)
            .map(|i| (format!("n{i}"), IpAddr::from([10, 0, 0, i as u8])))
            .collect();
        let nodes = node_launches(&cfg, &layout, &addrs, "/tmp/sunder-remote/r1/sunder").unwrap();
        assert_eq!(nodes.len(), 3);
        let n2 = &nodes[1];
        assert_eq!(n2.client, "10.0.0.2:47001".parse().unwrap());
        let argv = n2.launch.argv.join(" ");
        for want in [
            "/tmp/sunder-remote/r1/sunder node raft --id n2",
            "--client 10.0.0.2:47001 --peer-listen 10.0.0.2:47002",
            "--peer n1=10.0.0.1:47002 --peer n3=10.0.0.3:47002",
            "--data /tmp/sunder-remote/r1/n2 --events /tmp/sunder-remote/r1/n2.events.jsonl",
            "--seed 1",
            "--opt batch=off",
        ] {
            assert!(argv.contains(want), "{want:?} not in {argv}");
        }
        assert_eq!(n2.launch.log, "/tmp/sunder-remote/r1/n2.log");
        let mut missing = addrs.clone();
        missing.remove("n3");
        assert!(node_launches(&cfg, &layout, &missing, "/x").is_err());
    }

    #[test]
    fn run_ids_are_what_a_host_accepts_and_name_the_controller() {
        let id = run_id(Path::new("results/raft-x/20261203T180600Z-2"), 4242).unwrap();
        assert_eq!(id.as_str(), "20261203t180600z-2-4242");
        let odd = run_id(Path::new("results/x/--A+b_c"), 7).unwrap();
        assert_eq!(odd.as_str(), "a-b-c-7");
    }

    #[test]
    fn host_flags_take_user_address_and_port() {
        let (id, h) = parse_host_flag("n1=root@10.0.0.5:2222").unwrap();
        assert_eq!((id.as_str(), h.user.as_deref()), ("n1", Some("root")));
        assert_eq!((h.address.as_str(), h.port), ("10.0.0.5", 2222));
        let (_, h) = parse_host_flag("n2=db2.example").unwrap();
        assert_eq!(
            (h.address.as_str(), h.port, h.user),
            ("db2.example", 22, None)
        );
        let (_, h) = parse_host_flag("n3=u@[fd00::3]:23").unwrap();
        assert_eq!((h.address.as_str(), h.port), ("fd00::3", 23));
        let (_, h) = parse_host_flag("n3=fd00::3").unwrap();
        assert_eq!((h.address.as_str(), h.port), ("fd00::3", 22));
        for bad in [
            "n1", "=h", "n1=@h", "n1=h:0", "n1=h:x", "n1=[h", "n1=u@", "n1=[h]x",
        ] {
            assert!(parse_host_flag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_must_be_exactly_the_runs_nodes() {
        let m = members(3);
        let two = flags(&["n1=a", "n2=b"]);
        let e = Hosts::from_flags(&two, None, None, None, &m).unwrap_err();
        assert!(
            format!("{e:#}").contains("n1, n2 but the run has nodes n1, n2, n3"),
            "{e:#}"
        );
        let dup = flags(&["n1=a", "n1=b", "n2=c"]);
        let e = Hosts::from_flags(&dup, None, None, None, &m).unwrap_err();
        assert!(format!("{e:#}").contains("given twice"), "{e:#}");
        let other = flags(&["n1=a", "n2=b", "n9=c"]);
        assert!(Hosts::from_flags(&other, None, None, None, &m).is_err());
        let ok = flags(&["n1=a", "n2=b", "n3=root@c:2200"]);
        let h = Hosts::from_flags(&ok, None, Some(Path::new("/k")), None, &m)
            .unwrap()
            .unwrap();
        let s = h.spec("n3");
        assert_eq!((s.address.as_str(), s.port), ("c", 2200));
        assert_eq!(s.identity.as_deref(), Some(Path::new("/k")));
        assert!(
            Hosts::from_flags(&[], None, None, None, &m)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn what_ssh_would_read_as_an_option_is_refused() {
        let m = members(1);
        let e =
            Hosts::from_flags(&flags(&["n1=-oProxyCommand=x"]), None, None, None, &m).unwrap_err();
        assert!(format!("{e:#}").contains("address"), "{e:#}");
    }

    #[test]
    fn hosts_files_resolve_paths_and_refuse_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("sunder-hosts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hosts.toml");
        std::fs::write(
            &path,
            "[n1]\naddress = \"10.0.0.5\"\nuser = \"root\"\nport = 2222\nidentity = \"id\"\n\
             known_hosts = \"/etc/kh\"\n[n2]\naddress = \"10.0.0.6\"\n",
        )
        .unwrap();
        let h = Hosts::from_flags(
            &[],
            Some(&path),
            None,
            Some(Path::new("/d/kh")),
            &members(2),
        )
        .unwrap()
        .unwrap();
        let s1 = h.spec("n1");
        assert_eq!(s1.identity, Some(dir.join("id")));
        assert_eq!(s1.known_hosts.as_deref(), Some(Path::new("/etc/kh")));
        assert_eq!((s1.port, s1.user.as_deref()), (2222, Some("root")));
        assert_eq!(
            h.spec("n2").known_hosts.as_deref(),
            Some(Path::new("/d/kh"))
        );
        for (text, needle) in [
            ("[n1]\naddress = \"a\"\nadress = \"b\"\n", "adress"),
            ("[n1]\nuser = \"root\"\n", "address"),
            ("[n1]\naddress = \"a\"\nport = 0\n", "port 0"),
            ("[n1]\naddress = \"a\"\nport = 70000\n", "70000"),
            ("", "no hosts"),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = Hosts::from_flags(&[], Some(&path), None, None, &members(1)).unwrap_err();
            assert!(format!("{e:#}").contains(needle), "{text:?}: {e:#}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
