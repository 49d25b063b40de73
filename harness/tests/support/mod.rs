//! Shared by the integration tests: the one way to find the `sunder` binary, a drop guard
//! that leaves no process behind, a way to run `sunder test` and read what it stored, and
//! (in [`report`]) the report and serve tests' fake run directories and HTTP client, and (in
//! [`interrupt`]) runs interrupted at random moments.
#![allow(dead_code)] // each test binary uses a different part

pub mod interrupt;
pub mod report;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

/// Whether a third-party system can run here under `--net netns`: root, `ip` and `nft`,
/// and each file of `needs` (its path, and the Debian package that brings it). If not, it
/// says why, which skips the test (or fails it when `CI` is set).
pub fn netns_system_usable(system: &str, needs: &[(&str, &str)]) -> bool {
    let why = if !sunder_test_support::is_root() {
        Some("not root (--net netns makes network namespaces)".to_string())
    } else if let Some((path, package)) = needs.iter().find(|(p, _)| !Path::new(p).exists()) {
        Some(format!("{path} is missing (apt-get install {package})"))
    } else {
        ["ip", "nft"].iter().find_map(|p| {
            (!sunder_test_support::have_command(p))
                .then(|| format!("`{p}` is missing (apt-get install iproute2 nftables)"))
        })
    };
    sunder_test_support::met(why.map(|w| format!("{system} under --net netns: {w}")))
}

/// A target spec shipped in `targets/specs/`.
pub fn shipped_spec(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../targets/specs")
        .join(file)
}

/// The `sunder` binary Cargo built for these tests.
pub fn sunder_path() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_sunder"))
}

/// A command that runs the `sunder` binary (wrap it with `assert_cmd::Command::from_std`
/// for assertions).
pub fn sunder() -> Command {
    Command::new(sunder_path())
}

/// Every live process (other than this one) whose command line mentions `marker`.
pub fn pids_mentioning(marker: &Path) -> Vec<u32> {
    let m = marker.to_string_lossy().to_string();
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(&m) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Kills the children it holds and every process that mentions `marker` (the results
/// directory of the test's runs, which every node's command line names), whatever happens
/// to the test.
pub struct Guard {
    /// A child the test drives itself (it may `take()` it to wait for its output).
    pub child: Option<Child>,
    pub children: Vec<Child>,
    pub marker: PathBuf,
}

impl Guard {
    pub fn new(marker: &Path) -> Guard {
        Guard {
            child: None,
            children: Vec::new(),
            marker: marker.to_path_buf(),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in self.child.iter_mut().chain(self.children.iter_mut()) {
            // The child may lead a process group of its own (nodes started with
            // `process_group(0)`); if it does not, this signal finds no group.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = c.kill();
            let _ = c.wait();
        }
        for pid in pids_mentioning(&self.marker) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// One finished `sunder test`: its exit code, output, and `results.json`.
pub struct Run {
    pub code: Option<i32>,
    pub output: String,
    pub results: Value,
}

impl Run {
    /// The verdict of one checker by name (`linearizability`, `agreement`, `set`, ...).
    pub fn checker(&self, name: &str) -> Option<&str> {
        self.results["checkers"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)?["verdict"]
            .as_str()
    }
}

/// Runs `sunder test ARGS --results ROOT/<name>` to the end and reads its results.
pub fn sunder_test(root: &Path, name: &str, args: &[&str]) -> Run {
    let results_dir = root.join(name);
    let out: Output = sunder()
        .arg("test")
        .args(args)
        .arg("--results")
        .arg(&results_dir)
        .output()
        .expect("start sunder test");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let results = std::fs::read_to_string(results_dir.join("latest/results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    Run {
        code: out.status.code(),
        output,
        results,
    }
}

/// The one sweep under `results` (`results/<name>/sweep-<ts>/`): its directory and its
/// `sweep.json`.
pub fn sweep_json(results: &Path) -> (PathBuf, Value) {
    let name_dir = std::fs::read_dir(results)
        .unwrap()
        .flatten()
        .find(|e| e.file_type().unwrap().is_dir())
        .expect("a test directory")
        .path();
    let sweep = std::fs::read_dir(&name_dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("sweep-"))
        .expect("a sweep directory")
        .path();
    let v =
        serde_json::from_str(&std::fs::read_to_string(sweep.join("sweep.json")).unwrap()).unwrap();
    (sweep, v)
}

/// Waits for `child` to exit, failing the test after `within`.
pub fn wait_exit(
    child: &mut std::process::Child,
    within: std::time::Duration,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sunder did not exit within {within:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
