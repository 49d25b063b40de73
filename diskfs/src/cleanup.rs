//! [`leftover_mounts`] and [`force_unmount`]: finding and removing mounts a dead run left.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::DiskError;
use crate::mount::FS_TYPE;

/// Undoes mountinfo's octal escapes (`\040` for a space and so on).
fn unescape(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

/// Mount points of `mountinfo` text whose type is [`FS_TYPE`].
pub(crate) fn parse_mountinfo(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            if fstype != FS_TYPE {
                return None;
            }
            Some(unescape(left.split(' ').nth(4)?))
        })
        .collect()
}

/// Mount points of diskfs mounts in this mount namespace (`/proc/self/mountinfo` entries of
/// type [`FS_TYPE`]), in mount order: what `sunder clean` removes.
pub fn leftover_mounts() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse_mountinfo(&t))
        .unwrap_or_default()
}

/// Detaches the mount at `path` even if busy or its server is gone: `fusermount3 -u -z`,
/// falling back to `umount2(MNT_DETACH)`.
pub fn force_unmount(path: &Path) -> Result<(), DiskError> {
    let tool = Command::new("fusermount3")
        .arg("-u")
        .arg("-z")
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let tool_said = match tool {
        Ok(out) if out.status.success() => return Ok(()),
        Ok(out) => format!(
            "fusermount3: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("fusermount3: {e}"),
    };
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| DiskError::Unmount {
        path: path.to_path_buf(),
        detail: "path contains a NUL byte".into(),
    })?;
    // SAFETY: c is a valid C string.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    Err(DiskError::Unmount {
        path: path.to_path_buf(),
        detail: format!("{tool_said}; umount2: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_of_our_type_are_found_and_unescaped() {
        let text = "36 35 98:0 / /mnt1 rw,noatime master:1 - ext3 /dev/root rw\n\
                    40 36 0:50 / /tmp/a\\040b rw,nosuid,nodev - fuse.sunder-diskfs sunder-diskfs rw,user_id=0\n\
                    41 36 0:51 / /tmp/c rw - fuse sunder-diskfs rw\n";
        assert_eq!(parse_mountinfo(text), vec![PathBuf::from("/tmp/a b")]);
    }
}
