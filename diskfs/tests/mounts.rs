//! Mount lifecycle: what `leftover_mounts` lists and what `force_unmount` cleans; `corrupt`.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sunder_diskfs::{Corruption, Damage, Mount, corrupt, force_unmount, leftover_mounts};

#[test]
fn a_dropped_mount_is_no_longer_listed() {
    if !can_mount() {
        return;
    }
    let fx = Fx::new();
    let mnt = fx.mnt.clone();
    assert!(leftover_mounts().contains(&mnt));
    fs::write(fx.p("kept"), b"current view").unwrap();
    let data = fx.data.clone();
    let Fx { mount, dir, .. } = fx;
    drop(mount);
    assert!(!leftover_mounts().contains(&mnt));
    // After unmount the backing tree holds the current view, unsynced changes included.
    assert_eq!(fs::read(data.join("kept")).unwrap(), b"current view");
    drop(dir);
}

#[test]
fn unmount_while_a_file_is_open_detaches_lazily() {
    if !can_mount() {
        return;
    }
    let fx = Fx::new();
    let f = fs::File::create(fx.p("busy")).unwrap();
    let mnt = fx.mnt.clone();
    let Fx { mount, dir, .. } = fx;
    mount.unwrap().unmount().unwrap();
    assert!(!leftover_mounts().contains(&mnt));
    drop(f);
    drop(dir);
}

const CHILD_ENV: &str = "SUNDER_DISKFS_TEST_CHILD_MOUNT";

/// Not a test of its own: run by `a_mount_whose_owner_is_gone_is_cleaned_by_force_unmount`
/// in a child process (it mounts and waits to be killed). Run directly, it does nothing.
#[test]
fn child_holding_a_mount() {
    let Some(dirs) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dirs);
    let mount = Mount::mount(&dir.join("data"), &dir.join("mnt")).expect("child mount");
    std::mem::forget(mount);
    println!("mounted");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_mount_whose_owner_is_gone_is_cleaned_by_force_unmount() {
    if !can_mount() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("data")).unwrap();
    fs::create_dir(dir.path().join("mnt")).unwrap();
    let mnt = dir.path().join("mnt").canonicalize().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holding_a_mount",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !leftover_mounts().contains(&mnt) {
        assert!(Instant::now() < deadline, "the child never mounted");
        assert!(child.try_wait().unwrap().is_none(), "the child exited");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The server is dead: the mount is left behind, unusable.
    assert!(leftover_mounts().contains(&mnt));
    force_unmount(&mnt).unwrap();
    assert!(!leftover_mounts().contains(&mnt));
}

fn tree(dir: &Path) {
    fs::create_dir(dir.join("sub")).unwrap();
    fs::write(dir.join("empty"), b"").unwrap();
    fs::write(dir.join("a"), b"aaaaaaaaaaaaaaaaaaaa").unwrap();
    fs::write(dir.join("sub/b"), b"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb").unwrap();
    fs::write(dir.join("sub/c"), b"cccccccccc").unwrap();
}

#[test]
fn corrupt_is_deterministic_and_changes_the_file() {
    for how in [Corruption::FlipBits { count: 3 }, Corruption::Truncate] {
        for seed in 0..8 {
            let (x, y) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            tree(x.path());
            tree(y.path());
            let cx = corrupt(x.path(), seed, how).unwrap();
            let cy = corrupt(y.path(), seed, how).unwrap();
            let rel = cx.path.strip_prefix(x.path()).unwrap();
            assert_eq!(rel, cy.path.strip_prefix(y.path()).unwrap());
            assert_eq!((cx.len, &cx.done), (cy.len, &cy.done));
            assert_ne!(rel, Path::new("empty"), "empty files are skipped");
            let after = fs::read(&cx.path).unwrap();
            assert_eq!(after, fs::read(&cy.path).unwrap());
            let fresh = tempfile::tempdir().unwrap();
            tree(fresh.path());
            let before = fs::read(fresh.path().join(rel)).unwrap();
            assert_ne!(after, before, "{how:?} seed {seed}");
            match &cx.done {
                Damage::Flipped(bits) => {
                    assert_eq!(bits.len(), 3);
                    let differing: u32 = before
                        .iter()
                        .zip(&after)
                        .map(|(a, b)| (a ^ b).count_ones())
                        .sum();
                    assert_eq!(differing, 3);
                }
                Damage::Truncated(to) => {
                    assert!(*to < cx.len);
                    assert_eq!(after.len() as u64, *to);
                }
            }
        }
    }
    let empty = tempfile::tempdir().unwrap();
    assert!(corrupt(empty.path(), 1, Corruption::Truncate).is_err());
}
