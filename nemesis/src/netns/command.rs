//! Running `ip` and `nft`, with errors that name the command and carry its stderr.

use crate::NemesisError;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Runs `program args...`, feeding `stdin` if given; its stdout on success.
///
/// The command gets a process group of its own: a Ctrl-C on the terminal reaches the
/// controller's group, and must not kill a half-done setup or teardown under it (the
/// controller cleans up itself once it sees the signal).
pub fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, NemesisError> {
    let shown = || {
        let mut s = program.to_string();
        for a in args {
            s.push(' ');
            s.push_str(a);
        }
        s
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            NemesisError::Backend(format!("`{}`: cannot start {program}: {e}", shown()))
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| NemesisError::Backend(format!("`{}`: writing its input: {e}", shown())))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NemesisError::Backend(format!("`{}`: {e}", shown())))?;
    if !out.status.success() {
        let mut msg = format!(
            "`{}` failed ({}): {}",
            shown(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        if let Some(text) = stdin {
            msg.push_str(&format!("\n--- its input:\n{text}"));
        }
        return Err(NemesisError::Backend(msg));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Why this process cannot use the netns backend, if it cannot: it needs root (to create
/// namespaces) and the `ip` and `nft` programs.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("--net netns needs root (it creates network namespaces)".into());
    }
    for (program, arg, package) in [("ip", "-V", "iproute2"), ("nft", "--version", "nftables")] {
        if let Err(e) = run(program, &[arg], None) {
            return Some(format!(
                "--net netns needs `{program}` (Debian package {package}): {e}"
            ));
        }
    }
    None
}
