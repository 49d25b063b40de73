//! A real `sunder test` writes `report.html` and names it in the terminal summary.

mod support;

use std::path::PathBuf;
use std::process::Command;

/// Kills every process whose command line names the test's results directory (the
/// controller and the nodes it spawned in their own process groups), whatever happens.
struct Reaper(PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        let marker = self.0.to_string_lossy().to_string();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if pid == std::process::id() {
                continue;
            }
            if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
                if String::from_utf8_lossy(&cmd).contains(&marker) {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
        }
    }
}

#[test]
fn sunder_test_writes_the_report_and_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let _reaper = Reaper(results.clone());
    let out = support::sunder()
        .args([
            "test",
            "--target",
            "primary",
            "--nemesis",
            "none",
            "--time-limit",
            "2s",
            "--seed",
            "7",
        ])
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("report:  "))
        .unwrap_or_else(|| panic!("no report line in:\n{stdout}"));
    let report = PathBuf::from(line.trim());
    assert!(report.ends_with("report.html"));
    assert_eq!(
        std::fs::canonicalize(report.parent().unwrap()).unwrap(),
        std::fs::canonicalize(results.join("latest")).unwrap()
    );
    let page = std::fs::read_to_string(&report).unwrap();
    assert!(page.contains("<span class=\"badge v-valid\">valid</span>"));
    assert!(page.contains("--seed 7"));
    assert!(page.contains("<a href=\"nodes/n1.log\">n1.log</a>"));
}
