use super::*;
use std::net::{IpAddr, Ipv4Addr};
use sunder_workloads::ReadMode;

const ETCD: &str = include_str!("../../../../targets/specs/etcd.toml");

fn parse(text: &str) -> Result<TargetSpec, SpecError> {
    TargetSpec::parse(text, Path::new("/specs/t.toml"))
}

fn ctx(me: usize) -> NodeContext {
    let members = (1..=3)
        .map(|i| Member {
            id: format!("n{i}"),
            index: i,
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8)),
            client_port: 2379,
            peer_port: 2380,
        })
        .collect();
    NodeContext {
        me,
        members,
        data_dir: "/run/x/n2".into(),
        log: "/run/x/n2.log".into(),
        run_dir: "/run/x".into(),
    }
}

const MINIMAL: &str = r#"
name = "kv"
[ports]
client = 7000
peer = 7001
[node]
program = "bin/kv"
args = ["--me={id}", "--peers", "{members}"]
member = "{index}@{ip}:{peer_port}"
separator = ";"
"#;

#[test]
fn the_etcd_spec_loads() {
    let s = parse(ETCD).unwrap();
    assert_eq!(s.name, "etcd");
    assert_eq!(
        s.ports,
        FixedPorts {
            client: 2379,
            peer: 2380
        }
    );
    assert_eq!(s.ready.http_get.as_deref(), Some("/health"));
    assert_eq!(s.stop.signal, Signal::SIGTERM);
    let AdapterConfig::Etcd(e) = &s.client else {
        panic!("{:?}", s.client)
    };
    assert_eq!(e.reads, ReadMode::Linearizable);
    assert_eq!(e.prefix, "/sunder/");
    assert!(
        s.requires
            .check("netns", &[FaultKind::Partition, FaultKind::Kill])
            .is_ok()
    );
    let e = s
        .requires
        .check("proxy", &[FaultKind::Partition])
        .unwrap_err();
    assert!(e.contains("--net netns"), "{e}");
    assert!(s.requires.check("proxy", &[FaultKind::Kill]).is_ok());
}

#[test]
fn etcd_command_for_node_two() {
    let s = parse(ETCD).unwrap();
    let (program, args, env) = s.node_command(&ctx(1));
    assert_eq!(program, PathBuf::from("/usr/bin/etcd"));
    assert!(env.is_empty());
    let args: Vec<String> = args.into_iter().map(|a| a.into_string().unwrap()).collect();
    let after = |flag: &str| {
        let i = args.iter().position(|a| a == flag).unwrap();
        args[i + 1].clone()
    };
    assert_eq!(after("--name"), "n2");
    assert_eq!(after("--data-dir"), "/run/x/n2");
    assert_eq!(after("--listen-client-urls"), "http://10.0.0.2:2379");
    assert_eq!(
        after("--initial-cluster"),
        "n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380,n3=http://10.0.0.3:2380"
    );
}

#[test]
fn placeholders_separator_env_escapes_and_relative_programs() {
    let text = MINIMAL.replace(
        "separator = \";\"",
        "separator = \";\"\nenv = { LOG = \"{log}\", RUN = \"{run}/{{x}}\" }",
    );
    let s = parse(&text).unwrap();
    let (program, args, env) = s.node_command(&ctx(2));
    assert_eq!(program, PathBuf::from("/specs/bin/kv"));
    assert_eq!(
        args,
        vec![
            OsString::from("--me=n3"),
            "--peers".into(),
            "1@10.0.0.1:2380;2@10.0.0.2:2380;3@10.0.0.3:2380".into()
        ]
    );
    assert_eq!(
        env,
        vec![
            ("LOG".into(), "/run/x/n2.log".into()),
            ("RUN".into(), "/run/x/{x}".into())
        ]
    );
    // Defaults: a TCP probe, SIGTERM, every backend, sunder's own protocol.
    assert!(s.ready.tcp && s.ready.http_get.is_none());
    assert_eq!(s.requires.net, vec!["proxy", "netns"]);
    assert_eq!(s.client, AdapterConfig::SunderJson {});
    // A bare program name is left for PATH.
    let s = parse(&MINIMAL.replace("bin/kv", "kv")).unwrap();
    assert_eq!(s.node_command(&ctx(0)).0, PathBuf::from("kv"));
}

/// Each bad file: the error names the file, the line and the key or value at fault.
#[test]
fn bad_files_say_where() {
    // MINIMAL's lines: 2 name, 3 [ports], 4 client, 5 peer, 6 [node], 7 program, 8 args,
    // 9 member, 10 separator; appended sections start at 11.
    let cases: &[(&str, usize, &str)] = &[
        // TOML syntax
        (
            &MINIMAL.replace("peer = 7001", "peer = = 7001"),
            5,
            "extra `=`",
        ),
        // an unknown key
        (
            &MINIMAL.replace("separator", "seperator"),
            10,
            "node.seperator: unknown field",
        ),
        // a wrong type, a value out of range
        (
            &MINIMAL.replace("client = 7000", "client = \"7000\""),
            4,
            "ports.client: invalid type",
        ),
        (
            &MINIMAL.replace("peer = 7001", "peer = 70001"),
            5,
            "ports.peer",
        ),
        // an unknown placeholder
        (&MINIMAL.replace("--me={id}", "--me={nmae}"), 8, "{nmae}"),
        // a node-wide placeholder in the member template
        (
            &MINIMAL.replace("{index}@", "{data_dir}@"),
            9,
            "node.member",
        ),
        (&MINIMAL.replace("{members}", "{members"), 8, "unclosed"),
        // {members} without a member template
        (
            &MINIMAL.replace("member = \"{index}@{ip}:{peer_port}\"", ""),
            8,
            "member",
        ),
        (
            &format!("{MINIMAL}[ready]\ntimeout = \"soon\"\n"),
            12,
            "ready.timeout",
        ),
        (
            &format!("{MINIMAL}[ready]\nhttp_get = \"health\"\n"),
            12,
            "must be a path",
        ),
        (
            &format!("{MINIMAL}[ready]\ntcp = false\n"),
            11,
            "no readiness check",
        ),
        (
            &format!("{MINIMAL}[stop]\nsignal = \"SIGNOPE\"\n"),
            12,
            "unknown signal",
        ),
        (
            &format!("{MINIMAL}[requires]\nnet = [\"docker\"]\n"),
            12,
            "docker",
        ),
        (
            &format!("{MINIMAL}[requires]\nfaults.netns = [\"meteor\"]\n"),
            12,
            "meteor",
        ),
        (
            &format!("{MINIMAL}[client]\nadapter = \"consul\"\n"),
            11,
            "consul",
        ),
        (
            &format!("{MINIMAL}[client]\nadapter = \"etcd\"\nreads = \"stale\"\n"),
            11,
            "stale",
        ),
        (
            &format!("{MINIMAL}[client]\nadapter = \"etcd\"\nread = \"serializable\"\n"),
            11,
            "read",
        ),
    ];
    for (text, line, needle) in cases {
        let e = parse(text).expect_err(text);
        let shown = e.to_string();
        assert!(shown.starts_with("/specs/t.toml:"), "{shown}");
        assert_eq!(e.line, Some(*line), "{shown}\n--- in:\n{text}");
        assert!(shown.contains(needle), "{shown} lacks {needle:?}");
    }
    // A missing section: no line of its own, but the key is named.
    let e = parse(&MINIMAL.replace("[ports]\nclient = 7000\npeer = 7001\n", "")).unwrap_err();
    assert!(e.to_string().contains("ports"), "{e}");
    let e = TargetSpec::load("/no/such/spec.toml").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/no/such/spec.toml: cannot read it"),
        "{e}"
    );
}

#[test]
fn client_opts_override_and_are_checked() {
    let s = parse(ETCD).unwrap();
    let ser = s
        .with_client_opts(&[("reads".into(), "serializable".into())])
        .unwrap();
    let AdapterConfig::Etcd(e) = &ser.client else {
        panic!()
    };
    assert_eq!(e.reads, ReadMode::Serializable);
    let more = s
        .with_client_opts(&[
            ("connections".into(), "2".into()),
            ("require_leader".into(), "false".into()),
        ])
        .unwrap();
    let AdapterConfig::Etcd(e) = &more.client else {
        panic!()
    };
    assert_eq!((e.connections, e.require_leader), (2, false));
    let bad = s
        .with_client_opts(&[("reeds".into(), "serializable".into())])
        .unwrap_err()
        .to_string();
    assert!(
        bad.contains("reeds") && bad.contains("--client-opt reeds=serializable"),
        "{bad}"
    );
    assert!(bad.starts_with("/specs/t.toml:"), "{bad}");
}

#[tokio::test]
async fn ready_probe_tcp_and_http() {
    let s = parse(&format!("{MINIMAL}[ready]\nhttp_get = \"/health\"\n")).unwrap();
    // Nothing listening: not ready.
    let free = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    assert!(s.ready(free, &Dialer::Direct).await.is_err());
    // A server answering 503, then 200.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for answer in ["503 Service Unavailable", "200 OK"] {
            // The TCP probe's connection, then the GET's.
            let _probe = l.accept().await.unwrap();
            let (mut c, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf).await;
            let body = "{}";
            let _ = c
                .write_all(
                    format!(
                        "HTTP/1.1 {answer}\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
        }
    });
    let e = s.ready(addr, &Dialer::Direct).await.unwrap_err();
    assert!(e.contains("http 503"), "{e}");
    s.ready(addr, &Dialer::Direct).await.unwrap();
}

#[test]
fn files_render_per_node_with_their_own_member_list_or_the_nodes() {
    let text = format!(
        "{MINIMAL}\n[[files]]\npath = \"conf/zoo.cfg\"\ntext = \"dataDir={{data_dir}}\\n{{members}}\\n\"\n\
         member = \"server.{{index}}={{ip}}:{{peer_port}}:3888\"\nseparator = \"\\n\"\n\
         [[files]]\npath = \"myid\"\ntext = \"{{index}}\"\n\
         [[files]]\npath = \"peers\"\ntext = \"{{members}}\"\n"
    );
    let s = parse(&text).unwrap();
    let files = s.node_files(&ctx(1));
    assert_eq!(files.len(), 3);
    assert_eq!(files[0].0, Path::new("/run/x/n2/conf/zoo.cfg"));
    assert_eq!(
        files[0].1,
        "dataDir=/run/x/n2\nserver.1=10.0.0.1:2380:3888\nserver.2=10.0.0.2:2380:3888\nserver.3=10.0.0.3:2380:3888\n"
    );
    assert_eq!(files[1], ("/run/x/n2/myid".into(), "2".into()));
    // No member template of its own: the node's, with the node's separator.
    assert_eq!(
        files[2].1,
        "1@10.0.0.1:2380;2@10.0.0.2:2380;3@10.0.0.3:2380"
    );
}

#[test]
fn bad_files_are_refused_naming_the_key() {
    let with = |file: &str| parse(&format!("{MINIMAL}\n[[files]]\n{file}\n"));
    for (file, says) in [
        ("path = \"/etc/passwd\"\ntext = \"x\"", "relative path"),
        ("path = \"a/../../b\"\ntext = \"x\"", "relative path"),
        ("path = \"\"\ntext = \"x\"", "relative path"),
        ("path = \"a\"\ntext = \"{nmae}\"", "unknown placeholder"),
        (
            "path = \"a\"\ntext = \"x\"\nmember = \"{data_dir}\"",
            "cannot be used here",
        ),
        (
            "path = \"a\"\ntext = \"x\"\nmode = \"0600\"",
            "unknown field",
        ),
    ] {
        let e = with(file).expect_err(file).to_string();
        assert!(e.contains(says), "{file}: {e}");
    }
    let twice = format!(
        "{MINIMAL}\n[[files]]\npath = \"a\"\ntext = \"x\"\n[[files]]\npath = \"a\"\ntext = \"y\"\n"
    );
    assert!(
        parse(&twice)
            .unwrap_err()
            .to_string()
            .contains("rendered twice")
    );
    let no_member = "name = \"kv\"\n[ports]\nclient = 1\npeer = 2\n[node]\nprogram = \"kv\"\n\
                     [[files]]\npath = \"a\"\ntext = \"{members}\"\n";
    assert!(parse(no_member).unwrap_err().to_string().contains("member"));
}

const KVSTORE: &str = include_str!("../../../../targets/specs/kvstore-http.toml");

#[test]
fn the_kvstore_http_spec_loads_with_every_operation() {
    let s = parse(KVSTORE).unwrap();
    assert!(
        KVSTORE.lines().count() < 40,
        "the worked example stays short"
    );
    let AdapterConfig::Http(h) = &s.client else {
        panic!("{:?}", s.client)
    };
    assert_eq!(h.timeout, Some(Duration::from_secs(2)));
    for op in sunder_workloads::HttpOp::ALL {
        assert!(h.op(op).is_some(), "{op:?}");
    }
    assert!(s.client.can_cas());
    assert!(
        s.client
            .missing_for(sunder_workloads::WorkloadKind::Set)
            .is_empty()
    );
    assert!(s.requires.check("proxy", &[FaultKind::Partition]).is_err());
    assert!(s.requires.check("netns", &[FaultKind::Partition]).is_ok());
    let (program, args, _) = s.node_command(&ctx(1));
    assert_eq!(program, PathBuf::from("/specs/fixtures/kvstore.py"));
    let args: Vec<String> = args.into_iter().map(|a| a.into_string().unwrap()).collect();
    let members = args.iter().position(|a| a == "--members").unwrap();
    assert_eq!(
        args[members + 1],
        "n1=10.0.0.1:2380,n2=10.0.0.2:2380,n3=10.0.0.3:2380"
    );
}

/// A spec with an HTTP `[client]` whose line `at` (1-based, of the client part) is
/// replaced by `line`.
fn http_spec(replace: Option<(usize, &str)>) -> String {
    let client = [
        "[client]",                                        // +0
        "adapter = \"http\"",                              // +1
        "info = \"5xx\"",                                  // +2
        "[client.read]",                                   // +3
        "method = \"GET\"",                                // +4
        "path = \"/kv/{key:url}\"",                        // +5
        "ok = 200",                                        // +6
        "value = { json = \"/value\" }",                   // +7
        "[client.write]",                                  // +8
        "method = \"PUT\"",                                // +9
        "path = \"/kv/{key:url}\"",                        // +10
        "body = \"{value}\"",                              // +11
        "ok = [204, { status = 200, body = \"^done$\" }]", // +12
    ];
    let mut lines: Vec<String> = client.iter().map(|l| l.to_string()).collect();
    if let Some((at, text)) = replace {
        lines[at] = text.to_string();
    }
    format!("{MINIMAL}{}\n", lines.join("\n"))
}

#[test]
fn bad_http_client_tables_say_line_and_key() {
    // MINIMAL is 10 lines (a leading newline, 9 lines): [client] is line 11.
    let base = MINIMAL.lines().count() + 1;
    let ok = parse(&http_spec(None)).unwrap();
    assert!(!ok.client.can_cas(), "no [client.cas]: no cas");
    let cases: &[(usize, &str, &str, &str)] = &[
        (
            5,
            "path = \"/kv/{kye}\"",
            "client.read.path",
            "unknown placeholder {kye}",
        ),
        (
            5,
            "path = \"/kv/{key:rot13}\"",
            "client.read.path",
            "unknown encoding",
        ),
        (
            7,
            "value = { json = \"value\" }",
            "client.read.value.json",
            "JSON pointer",
        ),
        (
            7,
            "value = { regex = \"(\" }",
            "client.read.value.regex",
            "bad regex",
        ),
        (
            6,
            "ok = { status = 200, body = \"[\" }",
            "client.read.ok.body",
            "bad regex",
        ),
        (6, "ok = \"9xx\"", "client.read.ok", "bad status"),
        (4, "methd = \"GET\"", "client.read.methd", "unknown key"),
        (2, "infos = \"5xx\"", "client.infos", "unknown key"),
        (
            11,
            "body = \"{to}\"",
            "client.write.body",
            "has no value here",
        ),
        (
            12,
            "ok = [204, { status = 200, bdy = \"x\" }]",
            "client.write.ok.bdy",
            "unknown key",
        ),
    ];
    for (at, text, key, needle) in cases {
        let e = parse(&http_spec(Some((*at, text)))).unwrap_err();
        let shown = e.to_string();
        assert_eq!(e.key.as_deref(), Some(*key), "{shown}");
        assert_eq!(e.line, Some(base + at), "{shown}");
        assert!(shown.contains(needle), "{shown}");
        assert!(shown.starts_with("/specs/t.toml:"), "{shown}");
    }
    // A key that is missing has no line of its own: its table's.
    let e = parse(&http_spec(Some((7, "")))).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("client.read.value"));
    assert_eq!(e.line, Some(base + 3), "{e}");
}

#[test]
fn http_client_opts_are_checked_like_the_file() {
    let s = parse(&http_spec(None)).unwrap();
    let t = s
        .with_client_opts(&[("timeout".into(), "3s".into())])
        .unwrap();
    let AdapterConfig::Http(h) = &t.client else {
        panic!()
    };
    assert_eq!(h.timeout, Some(Duration::from_secs(3)));
    let e = s
        .with_client_opts(&[("timeout".into(), "soon".into())])
        .unwrap_err();
    assert_eq!(e.key.as_deref(), Some("client.timeout"));
    assert!(e.to_string().contains("--client-opt timeout=soon"), "{e}");
}

const NATS: &str = include_str!("../../../../targets/specs/nats.toml");

#[test]
fn the_nats_spec_loads_routes_to_every_member_and_has_no_set_workload() {
    let s = parse(NATS).unwrap();
    assert_eq!(s.name, "nats");
    let AdapterConfig::Nats(n) = &s.client else {
        panic!("{:?}", s.client)
    };
    assert_eq!(n.reads, sunder_workloads::NatsReads::Leader);
    assert_eq!(n.bucket, "sunder");
    assert!(
        !s.client
            .missing_for(sunder_workloads::WorkloadKind::Set)
            .is_empty()
    );
    assert!(s.requires.check("proxy", &[FaultKind::Partition]).is_err());
    assert!(s.requires.check("netns", &[FaultKind::Clock]).is_err());
    assert!(
        s.requires
            .check(
                "netns",
                &[FaultKind::Partition, FaultKind::Kill, FaultKind::Pause]
            )
            .is_ok()
    );
    let (program, args, _) = s.node_command(&ctx(1));
    assert_eq!(program, PathBuf::from("/usr/sbin/nats-server"));
    let args: Vec<String> = args.into_iter().map(|a| a.into_string().unwrap()).collect();
    let routes = args.iter().position(|a| a == "--routes").unwrap();
    assert_eq!(
        args[routes + 1],
        "nats://10.0.0.1:2380,nats://10.0.0.2:2380,nats://10.0.0.3:2380"
    );
    let name = args.iter().position(|a| a == "--server_name").unwrap();
    assert_eq!(args[name + 1], "n2");
    let bad = NATS.replace("reads = \"leader\"", "reads = \"linearizable\"");
    let e = parse(&bad).unwrap_err().to_string();
    assert!(e.contains("client"), "{e}");
    let e = s
        .with_client_opts(&[("replicas".into(), "9".into())])
        .unwrap_err()
        .to_string();
    assert!(e.contains("replicas"), "{e}");
}
