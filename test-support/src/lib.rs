//! What a test does when a prerequisite is missing (root, a Debian package, the shared
//! corpus): outside CI it skips with a printed reason; with the environment variable `CI`
//! set it fails with that reason, so CI never passes by skipping.
//!
//! ```text
//!   skip_or_fail(reason) ─► decide(CI?, test, reason) ─► Ok(line for stderr) | Err(panic)
//!   met(Option<missing>) ─► true, or skip_or_fail and false
//!   is_root · have_command(name) · shared_data(rel) ─► the usual prerequisites
//! ```
//!
//! Use: `if !met(why) { return; }`, or `skip_or_fail(..); return;` in the test itself.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Outside CI: prints `SKIPPED <test>: <reason>` to stderr and returns (the caller then
/// returns). With `CI` set: panics with the reason.
pub fn skip_or_fail(reason: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    match decide(std::env::var_os("CI").as_deref(), &test, reason) {
        Ok(line) => eprintln!("{line}"),
        Err(why) => panic!("{why}"),
    }
}

/// `true` when nothing is missing; otherwise [`skip_or_fail`] with what is, and `false`.
pub fn met(missing: Option<String>) -> bool {
    match missing {
        None => true,
        Some(why) => {
            skip_or_fail(&why);
            false
        }
    }
}

/// The decision, apart from the process environment so it can be tested without racing
/// other tests: `Ok` is the line to print (skip), `Err` the failure (CI).
pub fn decide(ci: Option<&OsStr>, test: &str, reason: &str) -> Result<String, String> {
    match ci {
        Some(_) => Err(format!(
            "{test}: CI is set, so a missing prerequisite fails the test: {reason}"
        )),
        None => Ok(format!("SKIPPED {test}: {reason}")),
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// What keeps a test from mounting sunder's disk filesystem (it needs root and
/// `/dev/fuse`), or `None`; for [`met`].
pub fn fuse_missing() -> Option<String> {
    let why = if !is_root() {
        "not root"
    } else if !std::path::Path::new("/dev/fuse").exists() {
        "no /dev/fuse"
    } else {
        return None;
    };
    Some(format!("the disk filesystem needs root and FUSE: {why}"))
}

/// An executable file called `name` in a directory of `PATH`.
pub fn have_command(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|d| {
        std::fs::metadata(d.join(name))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// The shared data directory's `rel` (e.g. `porcupine/etcd`), when it exists. The shared
/// corpus lives beside the checkout, in `../shared/data` of the repository's parent.
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel);
    p.exists().then_some(p)
}

/// The shared data's `rel`, or a skip (outside CI) / failure (CI) that names it.
pub fn shared_data_or_skip(rel: &str) -> Option<PathBuf> {
    let p = shared_data(rel);
    if p.is_none() {
        skip_or_fail(&format!(
            "the shared corpus {rel} is not at {}",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/data")
                .join(rel)
                .display()
        ));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_ci_a_missing_prerequisite_is_a_printed_skip() {
        let line = decide(None, "t", "no chromium").unwrap();
        assert_eq!(line, "SKIPPED t: no chromium");
    }

    #[test]
    fn with_ci_set_it_is_a_failure_with_the_reason() {
        for value in ["true", "1", ""] {
            let why = decide(Some(OsStr::new(value)), "t", "no chromium").unwrap_err();
            assert!(why.contains("no chromium") && why.contains("CI"), "{why}");
        }
    }

    /// The real environment, in a child process of this test binary so that setting `CI`
    /// cannot race the other tests: with it set, `skip_or_fail` panics; without, it returns.
    #[test]
    fn skip_or_fail_follows_the_environment() {
        if std::env::var_os("SUNDER_TEST_SUPPORT_CHILD").is_some() {
            skip_or_fail("a prerequisite the child lacks");
            return;
        }
        let me = std::env::current_exe().unwrap();
        let run = |ci: bool| {
            let mut c = std::process::Command::new(&me);
            c.args([
                "--exact",
                "tests::skip_or_fail_follows_the_environment",
                "--nocapture",
            ])
            .env("SUNDER_TEST_SUPPORT_CHILD", "1")
            .env_remove("CI");
            if ci {
                c.env("CI", "true");
            }
            c.output().unwrap()
        };
        let out = run(false);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains("SKIPPED tests::skip_or_fail_follows_the_environment: a prerequisite"),
            "{err}"
        );
        let out = run(true);
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}");
        assert!(text.contains("CI is set"), "{text}");
    }

    #[test]
    fn finds_what_is_there_and_not_what_is_not() {
        assert!(have_command("sh"));
        assert!(!have_command("sunder-no-such-command"));
        assert!(shared_data("sunder-no-such-file").is_none());
    }
}
