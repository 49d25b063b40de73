//! A real 3-member etcd cluster on loopback, started from `targets/specs/etcd.toml`
//! through the spec code, then driven through the etcd client adapter.
//!
//! Skips (with a printed reason) when Debian's etcd-server is not installed. Every node
//! runs in its own process group, killed by a drop guard however the test ends; data and
//! logs live in a temporary directory, and the logs are printed when the test fails.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use sunder::controller::spec::{Member, NodeContext, TargetSpec};
use sunder_wire::Op;
use sunder_workloads::{AdapterConfig, AnyClient, Client, Dialer, Endpoint, Outcome};

const ETCD: &str = "/usr/bin/etcd";
const T: Duration = Duration::from_secs(5);

type NodeCommand = (PathBuf, Vec<OsString>, Vec<(OsString, OsString)>);

/// The nodes; dropping it kills every process group and, during a panic, prints the logs.
struct Cluster {
    children: Vec<Option<Child>>,
    commands: Vec<NodeCommand>,
    logs: Vec<PathBuf>,
    members: Vec<Member>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start(spec: &TargetSpec, n: usize) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        // Ports from the kernel, released just before etcd binds them.
        let held: Vec<TcpListener> = (0..2 * n)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let port = |i: usize| held[i].local_addr().unwrap().port();
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                id: format!("n{}", i + 1),
                index: i + 1,
                ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                client_port: port(i),
                peer_port: port(n + i),
            })
            .collect();
        drop(held);
        let mut c = Cluster {
            children: Vec::new(),
            commands: Vec::new(),
            logs: Vec::new(),
            members: members.clone(),
            _dir: tempfile::tempdir().unwrap(),
        };
        for i in 0..n {
            let ctx = NodeContext {
                me: i,
                members: members.clone(),
                data_dir: dir.path().join(&members[i].id),
                log: dir.path().join(format!("{}.log", members[i].id)),
                run_dir: dir.path().to_path_buf(),
            };
            c.commands.push(spec.node_command(&ctx));
            c.logs.push(ctx.log);
            c.children.push(None);
            c.spawn(i);
        }
        c._dir = dir;
        c
    }

    /// Starts node `i` (again: same command, same data directory), appending to its log.
    fn spawn(&mut self, i: usize) {
        let (program, args, env) = &self.commands[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.logs[i])
            .unwrap();
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap();
        self.children[i] = Some(child);
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        self.members
            .iter()
            .map(|m| Endpoint {
                id: m.id.clone(),
                addr: m.client_addr(),
            })
            .collect()
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Retries the spec's probe on every node until all pass or the spec's timeout.
    async fn wait_ready(&self, spec: &TargetSpec) {
        let deadline = Instant::now() + spec.ready.timeout;
        for m in &self.members {
            loop {
                match spec.ready(m.client_addr(), &Dialer::Direct).await {
                    Ok(()) => break,
                    Err(e) if Instant::now() > deadline => {
                        panic!("{} not ready after {:?}: {e}", m.id, spec.ready.timeout)
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
        if std::thread::panicking() {
            for log in &self.logs {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                eprintln!("--- {}:", log.display());
                for l in tail.into_iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

fn spec_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../targets/specs/etcd.toml")
}

fn read(key: &str) -> Op {
    Op::Read { key: key.into() }
}

fn write(key: &str, value: i64) -> Op {
    Op::Write {
        key: key.into(),
        value,
    }
}

fn cas(key: &str, from: i64, to: i64) -> Op {
    Op::Cas {
        key: key.into(),
        from,
        to,
    }
}

/// Retries `op` (a read or a write: repeating it changes nothing) until it is ok.
async fn until_ok(client: &AnyClient, node: usize, op: &Op) -> Value {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        match client.call(node, op, T).await {
            Outcome::Ok(v) => return v,
            other if Instant::now() > until => panic!("{op:?} on n{}: {other:?}", node + 1),
            other => {
                eprintln!("retrying {op:?} on n{}: {other:?}", node + 1);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn is_mismatch(o: &Outcome) -> bool {
    matches!(o, Outcome::Fail { error, .. } if error == "cas-mismatch")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_member_etcd_from_the_spec() {
    if !Path::new(ETCD).exists() {
        sunder_test_support::skip_or_fail(&format!(
            "{ETCD} is missing (apt-get install etcd-server)"
        ));
        return;
    }
    let spec = TargetSpec::load(spec_path()).unwrap_or_else(|e| panic!("{e}"));
    let mut cluster = Cluster::start(&spec, 3);
    cluster.wait_ready(&spec).await;

    let client = spec.client.build(cluster.endpoints(), Dialer::Direct);
    assert!(matches!(client, AnyClient::Etcd(_)), "{client:?}");

    // Linearizable (the spec's default): write, read anywhere, cas.
    assert_eq!(
        client.call(0, &read("absent"), T).await,
        Outcome::Ok(Value::Null)
    );
    assert_eq!(
        client.call(0, &write("k", 1), T).await,
        Outcome::Ok(Value::Null)
    );
    assert_eq!(client.call(1, &read("k"), T).await, Outcome::Ok(json!(1)));
    assert_eq!(
        client.call(2, &cas("k", 1, 2), T).await,
        Outcome::Ok(Value::Null)
    );
    let wrong = client.call(0, &cas("k", 1, 3), T).await;
    assert!(is_mismatch(&wrong), "{wrong:?}");
    let absent = client.call(1, &cas("absent", 1, 3), T).await;
    assert!(is_mismatch(&absent), "{absent:?}");
    for node in 0..3 {
        assert_eq!(
            client.call(node, &read("k"), T).await,
            Outcome::Ok(json!(2))
        );
    }
    assert_eq!(
        client.call(0, &read("absent"), T).await,
        Outcome::Ok(Value::Null)
    );

    // Serializable reads, chosen the way `--client-opt reads=serializable` will: a
    // member may lag for a moment, but it answers and catches up.
    let ser = spec
        .with_client_opts(&[("reads".into(), "serializable".into())])
        .unwrap();
    assert!(
        matches!(&ser.client, AdapterConfig::Etcd(e) if e.reads == sunder_workloads::ReadMode::Serializable)
    );
    let ser = ser.client.build(cluster.endpoints(), Dialer::Direct);
    for node in 0..3 {
        let until = Instant::now() + T;
        loop {
            match ser.call(node, &read("k"), T).await {
                Outcome::Ok(v) if v == json!(2) => break,
                Outcome::Ok(v) if Instant::now() < until => {
                    assert!(v == json!(1) || v.is_null(), "{v}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => panic!("serializable read on n{}: {other:?}", node + 1),
            }
        }
    }
    assert_eq!(
        ser.call(2, &read("absent"), T).await,
        Outcome::Ok(Value::Null)
    );

    // The set workload: one key per element, read back sorted by one range.
    for (node, v) in [(0, 12), (1, 3), (2, 7)] {
        let add = Op::Add {
            key: "set".into(),
            value: v,
        };
        assert_eq!(client.call(node, &add, T).await, Outcome::Ok(Value::Null));
    }
    assert_eq!(
        client.call(1, &read("set"), T).await,
        Outcome::Ok(json!([3, 7, 12]))
    );
    // The prefix keeps tests apart: under another prefix nothing is there.
    let other = spec
        .with_client_opts(&[("prefix".into(), "/other/".into())])
        .unwrap()
        .client
        .build(cluster.endpoints(), Dialer::Direct);
    assert_eq!(other.call(0, &read("k"), T).await, Outcome::Ok(Value::Null));
    assert_eq!(other.call(0, &read("set"), T).await, Outcome::Ok(json!([])));

    // More concurrent calls than connections: the pool queues them, all succeed.
    let small = Arc::new(
        spec.with_client_opts(&[("connections".into(), "2".into())])
            .unwrap()
            .client
            .build(cluster.endpoints(), Dialer::Direct),
    );
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let small = small.clone();
            tokio::spawn(async move { small.call(0, &write(&format!("c{i}"), i), T).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), Outcome::Ok(Value::Null));
    }

    // Kill n3: never ok there. The client that had connections may see the loss either
    // way; a fresh one is refused at connect, which is definite.
    cluster.kill(2);
    let o = client.call(2, &write("k", 9), T).await;
    assert!(!matches!(o, Outcome::Ok(_)), "{o:?}");
    eprintln!("write to the killed member, old client: {o:?}");
    let fresh = spec.client.build(cluster.endpoints(), Dialer::Direct);
    for op in [write("k", 9), read("k"), cas("k", 2, 9)] {
        let o = fresh.call(2, &op, T).await;
        assert!(
            matches!(&o, Outcome::Fail { error, .. } if error.starts_with("connect-failed")),
            "{o:?}"
        );
    }
    // The other two still make a quorum (after an election, if n3 led: until then etcd
    // answers "leader changed", info); the failed writes did not happen.
    assert_eq!(until_ok(&client, 1, &read("k")).await, json!(2));
    until_ok(&client, 0, &write("k", 4)).await;
    assert_eq!(until_ok(&client, 1, &read("k")).await, json!(4));

    // A paused member has the request and does not answer: indefinite.
    let n2 = cluster.children[1].as_ref().unwrap().id() as i32;
    killpg(Pid::from_raw(n2), Signal::SIGSTOP).unwrap();
    let o = client
        .call(1, &write("k", 7), Duration::from_millis(300))
        .await;
    killpg(Pid::from_raw(n2), Signal::SIGCONT).unwrap();
    assert_eq!(
        o,
        Outcome::Info {
            error: "client-timeout".into()
        }
    );

    // Kill n2 too: n1 alone loses its leader within an election timeout or two. Until
    // then its writes time out (info); after, it refuses them at once ("no leader",
    // definite, thanks to require_leader). Never ok.
    cluster.kill(1);
    let until = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    loop {
        let o = client.call(0, &write("k", 8), Duration::from_secs(1)).await;
        assert!(
            !matches!(o, Outcome::Ok(_)),
            "a write without quorum: {o:?}"
        );
        let refused = matches!(&o, Outcome::Fail { error, .. } if error == "etcdserver: no leader");
        seen.push(o);
        if refused {
            break;
        }
        assert!(Instant::now() < until, "never refused: {seen:?}");
    }
    eprintln!("writes to a member alone: {seen:?}");
    // Yet a serializable read there still answers, from its local state: this is how
    // serializable reads go stale when a member is cut off.
    assert_eq!(ser.call(0, &read("k"), T).await, Outcome::Ok(json!(4)));
    let lin = client.call(0, &read("k"), T).await;
    assert!(!matches!(lin, Outcome::Ok(_)), "{lin:?}");
}

/// The worker loop over the etcd adapter for a few seconds, one member killed and
/// restarted on its data directory halfway: the history is linearizable, and the kill
/// shows up as fail/info, never as a wrong ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_through_a_kill_are_linearizable() {
    use sunder_checker::linear::{self, CheckOptions};
    use sunder_checker::model::ModelSpec;
    use sunder_checker::{History, Verdict};
    use sunder_workloads::{Recorder, WorkloadConfig, WorkloadKind, run_workers_with};

    if !Path::new(ETCD).exists() {
        sunder_test_support::skip_or_fail(&format!(
            "{ETCD} is missing (apt-get install etcd-server)"
        ));
        return;
    }
    let spec = TargetSpec::load(spec_path()).unwrap_or_else(|e| panic!("{e}"));
    let mut cluster = Cluster::start(&spec, 3);
    cluster.wait_ready(&spec).await;
    let client = Arc::new(spec.client.build(cluster.endpoints(), Dialer::Direct));
    let cfg = WorkloadConfig {
        kind: WorkloadKind::Register,
        key_count: 3,
        concurrency: 6,
        rate: Some(200.0),
        op_timeout: Duration::from_secs(1),
        seed: 7,
    };
    let rec = Arc::new(Recorder::new(Instant::now(), Box::new(std::io::sink())));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn({
        let (cfg, client, rec) = (cfg.clone(), client.clone(), rec.clone());
        async move { run_workers_with(&cfg, client, rec, stop).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.kill(0);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.spawn(0);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop_tx.send(true).unwrap();
    let summary = workers.await.unwrap();
    eprintln!("{summary:?}");
    assert!(summary.ok > 100, "{summary:?}");
    assert!(
        summary.fail + summary.info > 0,
        "the kill went unnoticed: {summary:?}"
    );

    let history = History::new(rec.events());
    let r = linear::check(
        &history,
        &ModelSpec::Kv {
            initial: Value::Null,
        },
        &CheckOptions::default(),
    );
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.summary);
}
