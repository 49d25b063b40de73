//! The netns backend against the real kernel: needs root, `ip` and `nft` (CI has them);
//! elsewhere each test prints why it skips.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use sunder_nemesis::netns::{self, NsHandle, netns_path};
use sunder_nemesis::{Fault, Grudge, Loss, Nemesis, NemesisError, NetnsNet, Network, NodeId};
use sunder_nemesis::{Outcome, Processes};

fn usable() -> bool {
    // CI has root, `ip` and `nft`: there a missing one is a failure, not a skip.
    sunder_test_support::met(netns::unavailable())
}

/// Runs `f` on a thread that has entered the namespace: sockets it makes live there.
fn inside<T: Send + 'static>(h: Arc<NsHandle>, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        h.enter().expect("setns");
        f()
    })
    .join()
    .expect("the namespace thread panicked")
}

/// A listener in `to`'s namespace on its bridge address.
fn listen(net: &NetnsNet, to: &str) -> (TcpListener, SocketAddr) {
    let ip = net.addr(to).unwrap();
    let l = inside(Arc::new(net.node_handle(to).unwrap()), move || {
        TcpListener::bind((ip, 0)).unwrap()
    });
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// Can `from` open a TCP connection to `addr`?
fn connects(net: &NetnsNet, from: &str, addr: SocketAddr) -> bool {
    inside(Arc::new(net.node_handle(from).unwrap()), move || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(700)).is_ok()
    })
}

fn ours_listed(net: &NetnsNet) -> Vec<String> {
    net.names()
        .namespaces()
        .into_iter()
        .filter(|n| netns_path(n).exists())
        .collect()
}

#[test]
fn setup_then_teardown_or_drop_leaves_no_namespace() {
    if !usable() {
        return;
    }
    let net = NetnsNet::setup(vec!["n1".into(), "n2".into(), "n3".into()]).unwrap();
    assert_eq!(ours_listed(&net).len(), 4, "three nodes and the hub");
    // the table exists, empty, in every node namespace
    let rules = net.ruleset("n2").unwrap();
    assert!(
        rules.contains(&format!("table inet {}", net.names().table())),
        "{rules}"
    );
    // a process started inside is killed by teardown
    let h = net.node_handle("n1").unwrap();
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("300");
    let h = Arc::new(h);
    let hc = h.clone();
    // SAFETY: enter() allocates nothing and takes no lock.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || hc.enter());
    }
    let mut child = cmd.spawn().unwrap();
    net.teardown().unwrap();
    assert!(ours_listed(&net).is_empty());
    let status = child.wait().unwrap();
    assert!(!status.success(), "the sleeper was killed: {status}");
    net.teardown().unwrap(); // idempotent

    let dropped = NetnsNet::setup(vec!["n1".into()]).unwrap();
    let names = dropped.names().namespaces();
    assert!(names.iter().all(|n| netns_path(n).exists()));
    drop(dropped);
    assert!(names.iter().all(|n| !netns_path(n).exists()), "{names:?}");
}

#[test]
fn a_partition_drops_packets_and_heal_lets_them_through() {
    if !usable() {
        return;
    }
    let mut net = Arc::new(NetnsNet::setup(vec!["n1".into(), "n2".into(), "n3".into()]).unwrap());
    let (_l2, a2) = listen(&net, "n2");
    let (_l1, a1) = listen(&net, "n1");
    assert!(connects(&net, "n1", a2), "before the partition");

    let mut g = Grudge::default();
    g.cut("n1", "n2"); // n2 no longer hears n1
    assert!(net.partition(&g).unwrap().is_complete());
    assert!(!connects(&net, "n1", a2), "n2 drops n1's SYN");
    // TCP needs both ways: n2's SYN reaches n1, but n1's answer is dropped at n2
    assert!(!connects(&net, "n2", a1));
    assert!(connects(&net, "n3", a2), "n3 is not cut");
    let rules = net.ruleset("n2").unwrap();
    assert!(
        rules.contains("ip saddr 10.77.0.1 drop") || rules.contains("10.77.0.1 }"),
        "{rules}"
    );

    assert!(net.heal(&["n2".into()]).unwrap().is_complete());
    assert!(connects(&net, "n1", a2), "after heal");
    assert!(!net.ruleset("n2").unwrap().contains("drop"));
    Arc::get_mut(&mut net).unwrap().teardown().unwrap();
}

#[test]
fn loss_rules_are_installed_and_removed() {
    if !usable() {
        return;
    }
    let mut net = Arc::new(NetnsNet::setup(vec!["n1".into(), "n2".into()]).unwrap());
    let (_l2, a2) = listen(&net, "n2");
    let o = net
        .loss(&Loss {
            nodes: vec!["n2".into()],
            percent: 35,
        })
        .unwrap();
    assert!(o.is_complete(), "{o:?}");
    let rules = net.ruleset("n2").unwrap();
    assert!(rules.contains("numgen random mod 100 < 35"), "{rules}");
    assert!(
        !net.ruleset("n1").unwrap().contains("numgen"),
        "n1 is spared"
    );
    // at 100 % nothing gets through: the rule really sits in the packets' path
    net.loss(&Loss {
        nodes: vec!["n2".into()],
        percent: 100,
    })
    .unwrap();
    assert!(!connects(&net, "n1", a2));
    net.loss_stop(&["n2".into()]).unwrap();
    assert!(!net.ruleset("n2").unwrap().contains("numgen"));
    assert!(connects(&net, "n1", a2));
    // loss and partitions live in separate chains: stopping one keeps the other
    let mut g = Grudge::default();
    g.cut("n1", "n2");
    net.partition(&g).unwrap();
    net.loss(&Loss {
        nodes: vec!["n2".into()],
        percent: 20,
    })
    .unwrap();
    net.loss_stop(&["n2".into()]).unwrap();
    assert!(net.ruleset("n2").unwrap().contains("drop"));
    net.teardown().unwrap();
}

/// No process faults in these tests.
struct NoProcs;
impl Processes for NoProcs {
    fn kill(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
        Ok(Outcome::all(n))
    }
    fn restart(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
        Ok(Outcome::all(n))
    }
    fn pause(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
        Ok(Outcome::all(n))
    }
    fn resume(&mut self, n: &[NodeId]) -> Result<Outcome, NemesisError> {
        Ok(Outcome::all(n))
    }
}

/// n3's table is deleted before the faults, so every rule meant for n3 fails: the partition
/// and the loss still reach n1 and n2, say that n3 failed and why, and their stops remove
/// exactly the rules that were installed.
#[test]
fn a_rule_that_fails_in_one_namespace_is_applied_and_removed_on_the_others() {
    if !usable() {
        return;
    }
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<NodeId>>();
    let net = Arc::new(NetnsNet::setup(ids(&["n1", "n2", "n3"])).unwrap());
    let table = net.names().table();
    netns::command::run(
        "ip",
        &[
            "netns",
            "exec",
            &net.names().node("n3"),
            "nft",
            "delete",
            "table",
            "inet",
            &table,
        ],
        None,
    )
    .unwrap();
    let mut nem = Nemesis::new(net.clone(), NoProcs);
    let members = ids(&["n1", "n2", "n3"]);
    let isolate_n2 = Grudge::complete(&members, &[ids(&["n2"]), ids(&["n1", "n3"])]);
    let started = nem.start(Fault::Partition(isolate_n2.clone())).unwrap();
    assert_eq!(started.outcome.reached, ids(&["n1", "n2"]));
    assert!(
        started.outcome.failed["n3"].contains("nft"),
        "the failing command is named: {:?}",
        started.outcome
    );
    assert!(net.ruleset("n1").unwrap().contains("10.77.0.2 drop"));
    assert!(net.ruleset("n2").unwrap().contains("drop"));
    let in_force: Vec<Fault> = nem.active().cloned().collect();
    assert_eq!(in_force[0].nodes(), ids(&["n1", "n2"]));
    let (_l1, a1) = listen(&net, "n1");
    assert!(
        !connects(&net, "n2", a1),
        "the rules are in the packets' path"
    );

    let loss = Loss {
        nodes: members.clone(),
        percent: 40,
    };
    let lost = nem.start(Fault::Loss(loss)).unwrap();
    assert_eq!(lost.outcome.reached, ids(&["n1", "n2"]));
    assert!(lost.outcome.failed.contains_key("n3"));
    assert!(
        net.ruleset("n2")
            .unwrap()
            .contains("numgen random mod 100 < 40")
    );

    let healed = nem.heal_all();
    assert_eq!(healed.len(), 2);
    for (kind, r) in &healed {
        let undone = r.as_ref().unwrap().as_ref().unwrap();
        assert!(undone.outcome.is_complete(), "{kind}: {undone:?}");
        assert_eq!(undone.outcome.reached, ids(&["n1", "n2"]), "{kind}");
    }
    assert_eq!(nem.active().count(), 0);
    for n in ["n1", "n2"] {
        let rules = net.ruleset(n).unwrap();
        assert!(!rules.contains("drop"), "{n}: {rules}");
    }
    assert!(connects(&net, "n2", a1), "healed");
}

#[test]
fn unknown_nodes_are_refused() {
    if !usable() {
        return;
    }
    let mut net = Arc::new(NetnsNet::setup(vec!["n1".into(), "n2".into()]).unwrap());
    let mut g = Grudge::default();
    g.cut("n9", "n1");
    assert!(net.partition(&g).is_err());
    assert!(net.node_handle("n9").is_err());
}

#[test]
fn leftovers_of_a_dead_owner_are_found_and_removed() {
    if !usable() {
        return;
    }
    // a pid that just ended: the owner of a namespace nobody will clean up
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let dead = c.id();
    c.wait().unwrap();
    let name = format!("sunder-{dead}-0-hub");
    netns::command::run("ip", &["netns", "add", &name], None).unwrap();
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = netns::remove_namespace(&self.0);
        }
    }
    let _remove = Remove(name.clone());
    let ours = NetnsNet::setup(vec!["n1".into()]).unwrap();
    let found = netns::leftovers().unwrap();
    assert!(
        found.iter().any(|l| l.namespace == name && l.owner == dead),
        "{found:?}"
    );
    assert!(
        !found
            .iter()
            .any(|l| ours.names().namespaces().contains(&l.namespace)),
        "a live owner's namespaces are not leftovers"
    );
    let (removed, failed) = netns::remove_leftovers().unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(removed.iter().any(|l| l.namespace == name));
    assert!(!netns_path(&name).exists());
    assert!(
        ours.names()
            .namespaces()
            .iter()
            .all(|n| netns_path(n).exists())
    );
}

/// Twins: a second namespace at a member's address. The honest members on the twin side
/// reach the twin, the others and the clients reach the original, honest members still
/// reach each other, and a partition aimed at the member reaches both of its namespaces.
#[test]
fn a_twin_shares_its_address_and_each_side_reaches_only_its_own() {
    if !usable() {
        return;
    }
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<NodeId>>();
    let plan = netns::TwinPlan {
        twinned: ids(&["n2"]),
        twin_side: ids(&["n4"]),
    };
    let mut net =
        Arc::new(NetnsNet::setup_with_twins(ids(&["n1", "n2", "n3", "n4"]), plan.clone()).unwrap());
    assert_eq!(
        ours_listed(&net).len(),
        6,
        "four members, a twin and the hub"
    );
    // One port at n2's address in both of its namespaces.
    let ip = net.addr("n2").unwrap();
    let original = inside(Arc::new(net.node_handle("n2").unwrap()), move || {
        TcpListener::bind((ip, 0)).unwrap()
    });
    let port = original.local_addr().unwrap().port();
    let twin = inside(Arc::new(net.twin_handle("n2").unwrap()), move || {
        TcpListener::bind((ip, port)).unwrap()
    });
    for l in [&original, &twin] {
        l.set_nonblocking(true).unwrap();
    }
    let addr = SocketAddr::new(ip.into(), port);
    // Which of the two accepted a connection from `h`'s namespace (None: neither).
    let reached = |h: NsHandle| -> Option<&'static str> {
        if !inside(Arc::new(h), move || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(700)).is_ok()
        }) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
        match (original.accept().is_ok(), twin.accept().is_ok()) {
            (true, false) => Some("original"),
            (false, true) => Some("twin"),
            other => panic!("both or neither accepted: {other:?}"),
        }
    };
    let node = |id: &str| net.node_handle(id).unwrap();
    assert_eq!(reached(node("n1")), Some("original"));
    assert_eq!(reached(node("n3")), Some("original"));
    assert_eq!(reached(node("n4")), Some("twin"));
    let hub = NsHandle::open(net.hub_path()).unwrap();
    assert_eq!(
        reached(hub),
        Some("original"),
        "the clients reach the original"
    );
    // Honest members still reach each other; the twin reaches only its side, the
    // original only the other.
    let (_l4, a4) = listen(&net, "n4");
    let (_l1, a1) = listen(&net, "n1");
    assert!(connects(&net, "n1", a4));
    let from_twin = |a: SocketAddr| {
        inside(Arc::new(net.twin_handle("n2").unwrap()), move || {
            TcpStream::connect_timeout(&a, Duration::from_millis(700)).is_ok()
        })
    };
    assert!(from_twin(a4) && !from_twin(a1));
    assert!(connects(&net, "n2", a1) && !connects(&net, "n2", a4));
    assert!(net.twin_handle("n1").is_err(), "n1 has no twin");

    // A partition with n2 as the receiver lands in both of n2's namespaces.
    let mut g = Grudge::default();
    g.cut("n4", "n2");
    assert!(net.apply_partition(&g).unwrap().is_complete());
    let twin_rules = netns::command::run(
        "ip",
        &[
            "netns",
            "exec",
            &net.names().twin("n2"),
            "nft",
            "list",
            "ruleset",
        ],
        None,
    )
    .unwrap();
    assert!(twin_rules.contains("10.77.0.4"), "{twin_rules}");
    assert!(net.ruleset("n2").unwrap().contains("10.77.0.4"));
    assert!(!from_twin(a4), "n4 is cut from the twin now");
    assert!(net.heal_nodes(&["n2".into()]).unwrap().is_complete());
    assert!(from_twin(a4), "healed");

    let names = net.names().namespaces();
    Arc::get_mut(&mut net).unwrap().teardown().unwrap();
    assert!(names.iter().all(|n| !netns_path(n).exists()), "{names:?}");

    // A plan with a stranger, or a member on both sides, is refused before anything exists.
    let bad = netns::TwinPlan {
        twinned: ids(&["n9"]),
        twin_side: vec![],
    };
    assert!(NetnsNet::setup_with_twins(ids(&["n1", "n2"]), bad).is_err());
    let both = netns::TwinPlan {
        twinned: ids(&["n1"]),
        twin_side: ids(&["n1"]),
    };
    assert!(NetnsNet::setup_with_twins(ids(&["n1", "n2"]), both).is_err());
}
