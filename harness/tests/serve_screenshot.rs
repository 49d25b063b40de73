//! Opens `sunder serve`'s index and a report in a real headless Chromium and saves
//! screenshots under `target/test-output/` for a person to look at. Skips (with a printed
//! reason) where Debian's `chromium` is not installed.

mod support;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::report::*;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Kills Chromium's whole process group (it forks renderers and helpers) on drop.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

fn output_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-output");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Screenshots `url` into `png`; returns Chromium's stderr on failure.
fn screenshot(url: &str, png: &Path, height: u32) {
    let _ = std::fs::remove_file(png);
    let profile = tempfile::tempdir().unwrap();
    let child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size=1400,{height}"))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut b = Browser(child);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if b.0.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "chromium did not finish a screenshot of {url} in 90 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(b); // helpers it left behind go with the group
}

#[test]
fn index_and_report_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() {
        sunder_test_support::skip_or_fail(&format!(
            "{CHROMIUM} is not installed (apt-get install chromium)"
        ));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("results");
    let valid = root.join("primary-register/20261128T100000Z");
    let invalid = root.join("lww-register/20261128T110000Z");
    write_run(
        &valid,
        "primary-register",
        "primary",
        "register",
        &register_history(true),
    );
    write_run(
        &invalid,
        "lww-register",
        "lww",
        "register",
        &register_history(false),
    );
    assert_eq!(analyze(&valid).0, 0);
    assert_eq!(analyze(&invalid).0, 1);
    let s = Serve::start(&root);
    let out = output_dir();
    for (name, url, height) in [
        ("serve-index.png", s.url("/"), 700),
        (
            "report-invalid.png",
            s.url("/lww-register/20261128T110000Z/report.html"),
            3000,
        ),
    ] {
        let png = out.join(name);
        screenshot(&url, &png, height);
        let len = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        // A blank page of this size compresses to a few kilobytes; content is far more.
        assert!(
            len > 20_000,
            "{} is {len} bytes: blank or missing",
            png.display()
        );
        println!("screenshot: {}", png.display());
    }
}
