//! `sunder serve` over real HTTP: the runs table, a report written on first request, and
//! path-traversal attempts refused; the limits a hostile client meets (slow heads, floods,
//! foreign Host names, symbolic links swapped mid-request, concurrent report writes).

mod support;

use serde_json::json;
use std::time::{Duration, SystemTime};
use support::report::*;

/// Two runs, the invalid one newer; a secret file next to the results directory and a
/// symbolic link inside it that points at the secret.
fn results_dir(tmp: &std::path::Path) -> std::path::PathBuf {
    let root = tmp.join("results");
    let old = root.join("primary-register/20261128T100000Z");
    let new = root.join("lww-register/20261128T110000Z");
    write_run(
        &old,
        "primary-register",
        "primary",
        "register",
        &register_history(true),
    );
    write_run(
        &new,
        "lww-register",
        "lww",
        "register",
        &register_history(false),
    );
    for (dir, verdict, age) in [(&old, "valid", 3600), (&new, "invalid", 60)] {
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        let results = json!({
            "name": cfg["config"]["name"], "seed": 42, "replay": cfg["replay"], "verdict": verdict,
            "exit_code": if verdict == "valid" { 0 } else { 1 }, "interrupted": false,
            "config": cfg["config"], "checkers": [{"name": "availability", "verdict": verdict, "reason": "made up", "details": null}],
            "stats": sunder_checker::stats::Stats { duration_s: 9.5, ..Default::default() },
            "nodes": {}, "warnings": []
        });
        std::fs::write(dir.join("results.json"), results.to_string()).unwrap();
        let t = SystemTime::now() - Duration::from_secs(age);
        std::fs::File::options()
            .write(true)
            .open(dir.join("config.json"))
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    std::os::unix::fs::symlink("lww-register/20261128T110000Z", root.join("latest")).unwrap();
    std::fs::write(tmp.join("secret.txt"), "TOP-SECRET\n").unwrap();
    std::os::unix::fs::symlink(tmp.join("secret.txt"), root.join("leak")).unwrap();
    std::os::unix::fs::symlink(tmp, root.join("up")).unwrap();
    root
}

#[test]
fn the_index_lists_runs_newest_first_and_reports_are_served() {
    let tmp = tempfile::tempdir().unwrap();
    let root = results_dir(tmp.path());
    let s = Serve::start(&root);
    let (status, head, body) = s.get("/");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("text/html"));
    let (newer, older) = (
        body.find("lww-register/20261128T110000Z").unwrap(),
        body.find("primary-register/20261128T100000Z").unwrap(),
    );
    assert!(newer < older, "newest first");
    assert!(body.contains("<span class=\"badge v-invalid\">invalid</span>"));
    assert!(body.contains("<span class=\"badge v-valid\">valid</span>"));
    assert!(body.contains("9.5 s"));
    assert!(body.contains("id=\"q\""), "the filter box");
    assert_eq!(
        body.matches("<tr data-verdict=").count(),
        2,
        "latest is a link, not a third run"
    );

    // No report yet: the first request writes it.
    assert!(
        !root
            .join("lww-register/20261128T110000Z/report.html")
            .exists()
    );
    let (status, _, page) = s.get("/lww-register/20261128T110000Z/report.html");
    assert_eq!(status, 200);
    assert!(page.contains("lww-register") && page.contains("made up"));
    assert!(
        root.join("lww-register/20261128T110000Z/report.html")
            .is_file()
    );

    let (status, head, _) = s.get("/latest");
    assert_eq!(status, 301);
    assert!(head.contains("Location: /latest/"));
    let (status, _, listing) = s.get("/latest/");
    assert_eq!(status, 200);
    assert!(listing.contains("history.jsonl") && listing.contains("nodes/"));
    let (status, head, log) = s.get("/latest/nodes/n1.log");
    assert_eq!((status, log.as_str()), (200, "n1 started\n"));
    assert!(head.contains("text/plain"));
    assert_eq!(s.get("/nope/report.html").0, 404);
}

#[test]
fn nothing_outside_the_results_directory_can_be_reached() {
    let tmp = tempfile::tempdir().unwrap();
    let root = results_dir(tmp.path());
    let s = Serve::start(&root);
    for target in [
        "/../../etc/passwd",
        "/../secret.txt",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E/secret.txt",
        "/latest/..%2f..%2f..%2fsecret.txt",
        "/lww-register/%2e%2e/%2e%2e/secret.txt",
        "/..%5csecret.txt",
        "/leak",
        "/up/secret.txt",
        "//etc/passwd",
        "/%00/etc/passwd",
    ] {
        let (status, head, body) = s.get(target);
        assert!(matches!(status, 400 | 403 | 404), "{target}: {head}");
        assert!(
            !body.contains("TOP-SECRET") && !body.contains("root:x:0"),
            "{target} leaked: {body}"
        );
    }
    // The same server still serves what is inside.
    assert_eq!(s.get("/latest/config.json").0, 200);
}

/// The number of threads of process `pid`.
fn threads(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("Threads: in /proc/PID/status")
}

#[test]
fn a_slow_request_head_is_cut_off_at_the_deadline() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let root = results_dir(tmp.path());
    let s = Serve::start_with(&root, &["--head-timeout", "1s"]);
    let mut c = std::net::TcpStream::connect(&s.addr).unwrap();
    write!(c, "GET / HTTP/1.1\r\nHost: {}\r\nX-Slow: ", s.addr).unwrap();
    // One byte every 50 ms: each read sees a byte well within any per-read timeout, so
    // only a deadline on the whole head ends it. 600 bytes would take 30 s, 30 times the
    // deadline.
    let mut answer = Vec::new();
    let mut cut = false;
    for _ in 0..600 {
        if c.write_all(b"a").is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        c.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        match c.read(&mut buf) {
            Ok(0) => cut = true,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => cut = true,
        }
        c.set_nonblocking(false).unwrap();
        if cut || !answer.is_empty() {
            break;
        }
    }
    assert!(
        cut || !answer.is_empty(),
        "the server was still reading a head sent byte by byte after 30 s"
    );
    if !answer.is_empty() {
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    }
    // The server goes on serving others.
    assert_eq!(s.get("/").0, 200);
}

#[test]
fn a_flood_of_idle_connections_keeps_the_threads_bounded_and_a_request_is_still_served() {
    let tmp = tempfile::tempdir().unwrap();
    let root = results_dir(tmp.path());
    let cap = 4;
    let s = Serve::start_with(
        &root,
        &[
            "--max-connections",
            &cap.to_string(),
            "--head-timeout",
            "1s",
        ],
    );
    let idle_threads = threads(s.pid());
    // Idle connections that never send a byte, three times the cap.
    let flood: Vec<_> = (0..3 * cap)
        .map(|_| std::net::TcpStream::connect(&s.addr).unwrap())
        .collect();
    // Then a legitimate request, which the server reaches only after the flood (accepts
    // are in order): on a server with a thread per connection, the flood's threads are
    // all alive while it is answered.
    let (status, body) = std::thread::scope(|sc| {
        let req = sc.spawn(|| {
            let (status, _, body) = s.get("/");
            (status, body)
        });
        let mut most = 0;
        while !req.is_finished() {
            most = most.max(threads(s.pid()));
            std::thread::sleep(Duration::from_millis(5));
        }
        most = most.max(threads(s.pid()));
        // A connection's slot frees as its closure ends, a moment before its thread is
        // gone from /proc: each slot may briefly show an exiting thread beside the new one.
        // A thread per connection would show the whole flood (3 * cap) and the request.
        assert!(
            most <= idle_threads + 2 * cap,
            "{most} threads with a cap of {cap} connections ({idle_threads} when idle)"
        );
        req.join().unwrap()
    });
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("lww-register"));
    drop(flood);
}

#[test]
fn a_host_other_than_the_loopback_name_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = results_dir(tmp.path());
    let s = Serve::start(&root);
    let port = s.addr.rsplit_once(':').unwrap().1.to_string();
    let req = |host: &str| {
        s.raw(&format!(
            "GET /latest/config.json HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ))
    };
    for good in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let (status, head, _) = req(&good);
        assert_eq!(status, 200, "{good}: {head}");
    }
    for bad in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
    ] {
        let (status, head, body) = req(&bad);
        assert!(matches!(status, 421 | 403), "{bad}: {head}");
        assert!(!body.contains("\"config\""), "{bad} got the file: {body}");
    }
    let (status, head, _) = s.raw("GET /latest/config.json HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 400, "no Host: {head}");
}

/// Swaps two names atomically (renameat2 RENAME_EXCHANGE): a directory and a symbolic
/// link trade places with no moment where either name is missing.
fn exchange(a: &std::path::Path, b: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let a = std::ffi::CString::new(a.as_os_str().as_bytes()).unwrap();
    let b = std::ffi::CString::new(b.as_os_str().as_bytes()).unwrap();
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    assert_eq!(r, 0, "renameat2: {}", std::io::Error::last_os_error());
}

#[test]
fn a_symlink_swapped_in_after_the_check_cannot_lead_outside() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let root = results_dir(tmp.path());
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("data.txt"), "TOP-SECRET\n").unwrap();
    // `root/flip` is a directory inside, `root/flop` a link to the outside; a thread
    // keeps trading them, so a server that checks a name and then opens it again by name
    // opens the outside file whenever the trade lands between the two.
    std::fs::create_dir(root.join("flip")).unwrap();
    std::fs::write(root.join("flip/data.txt"), "inside\n").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("flop")).unwrap();
    let s = Serve::start(&root);
    let stop = AtomicBool::new(false);
    /// Stops the swapping thread however the requests end (a failed assertion included),
    /// or the scope would wait for it forever.
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let (mut inside, mut refused) = (0, 0);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                exchange(&root.join("flip"), &root.join("flop"));
            }
        });
        let _stop = Stop(&stop);
        for _ in 0..1500 {
            let (status, head, body) = s.get("/flip/data.txt");
            assert!(!body.contains("TOP-SECRET"), "leaked after a swap: {head}");
            match status {
                200 => inside += 1,
                403 | 404 => refused += 1,
                _ => panic!("{head}"),
            }
        }
    });
    // Both states were met: the swap did race the requests.
    assert!(
        inside > 0 && refused > 0,
        "inside {inside}, refused {refused}"
    );
}

#[test]
fn concurrent_requests_for_a_missing_report_write_it_once_and_get_whole_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let root = results_dir(tmp.path());
    // A run big enough that writing its report takes a while, so that the requests
    // overlap while it is written.
    let run = root.join("big/20261128T120000Z");
    let mut events = Vec::new();
    for i in 0..20_000u64 {
        let (p, v) = (json!(i % 8), json!(i));
        events.push(ev(
            10 * i,
            "invoke",
            p.clone(),
            "write",
            Some("k1"),
            v.clone(),
        ));
        events.push(ev(10 * i + 5, "ok", p, "write", Some("k1"), v));
    }
    write_run(&run, "big", "primary", "register", &events);
    assert!(!run.join("report.html").exists());
    let s = Serve::start(&root);
    let renames = RenameWatch::new(&run);
    let n = 8;
    let barrier = std::sync::Barrier::new(n);
    let pages: Vec<(u16, String)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                sc.spawn(|| {
                    barrier.wait();
                    let (status, _, body) = s.get("/big/20261128T120000Z/report.html");
                    (status, body)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        renames.count("report.html"),
        1,
        "the report was written more than once"
    );
    let on_disk = std::fs::read_to_string(run.join("report.html")).unwrap();
    for (status, body) in &pages {
        assert_eq!(*status, 200, "{body}");
        assert!(body.trim_end().ends_with("</html>"), "a partial page");
        assert_eq!(
            body, &on_disk,
            "every request got the page that was written"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// Counts, through inotify, the files renamed into a directory: how many times a report
/// was (atomically) written there.
struct RenameWatch(std::os::fd::OwnedFd);

impl RenameWatch {
    fn new(dir: &std::path::Path) -> RenameWatch {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: plain syscalls; the fd is owned from here on.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        let wd = unsafe {
            libc::inotify_add_watch(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                path.as_ptr(),
                libc::IN_MOVED_TO,
            )
        };
        assert!(
            wd >= 0,
            "inotify_add_watch: {}",
            std::io::Error::last_os_error()
        );
        RenameWatch(fd)
    }

    /// Renames onto `name` seen so far.
    fn count(&self, name: &str) -> usize {
        let mut n = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: reads into a buffer of the length given.
            let got = unsafe {
                libc::read(
                    std::os::fd::AsRawFd::as_raw_fd(&self.0),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if got <= 0 {
                return n;
            }
            let mut at = 0;
            while at + 16 <= got as usize {
                // struct inotify_event { int wd; u32 mask, cookie, len; char name[len]; }
                let len = u32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap()) as usize;
                let raw = &buf[at + 16..at + 16 + len];
                let end = raw.iter().position(|&b| b == 0).unwrap_or(len);
                if &raw[..end] == name.as_bytes() {
                    n += 1;
                }
                at += 16 + len;
            }
        }
    }
}
