//! What survives `lose_unsynced` and `tear`, scenario by scenario, on real mounts.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use common::*;
use sunder_diskfs::DiskError;

#[test]
fn a_fsynced_file_is_intact_and_an_unsynced_one_loses_its_data() {
    if !can_mount() {
        return;
    }
    let fx = Fx::new();
    fs::write(fx.p("a"), b"").unwrap();
    fs::write(fx.p("b"), b"").unwrap();
    fsync_dir(&fx.mnt);
    write_at(&fx.p("a"), 0, b"synced data");
    fsync(&fx.p("a"));
    write_at(&fx.p("b"), 0, b"unsynced data");
    let pending = fx.m().pending();
    assert_eq!((pending.ops, pending.unsynced_bytes), (1, 13));
    let loss = fx.m().lose_unsynced().unwrap();
    assert_eq!((loss.ops, loss.bytes), (1, 13));
    assert_eq!(fs::read(fx.b("a")).unwrap(), b"synced data");
    assert_eq!(fs::read(fx.b("b")).unwrap(), b"");
    // Through the mount too: the kernel must not serve its stale cache.
    assert_eq!(fs::read(fx.p("b")).unwrap(), b"");
    assert_eq!(fx.m().pending().ops, 0);
}

#[test]
fn a_created_file_needs_its_directory_fsynced_and_its_data_the_file_fsynced() {
    if !can_mount() {
        return;
    }
    let fx = Fx::with(|d| fs::create_dir(d.join("sub")).unwrap());
    fs::write(fx.p("gone"), b"x").unwrap();
    fs::write(fx.p("sub/named"), b"lost data").unwrap();
    fs::write(fx.p("sub/whole"), b"kept data").unwrap();
    fsync(&fx.p("sub/whole"));
    fsync_dir(&fx.p("sub"));
    fs::write(fx.p("sub/late"), b"after the fsyncdir").unwrap();
    fx.m().lose_unsynced().unwrap();
    assert!(!fx.b("gone").exists());
    assert!(!fx.b("sub/late").exists());
    assert_eq!(fs::read(fx.b("sub/named")).unwrap(), b"");
    assert_eq!(fs::read(fx.b("sub/whole")).unwrap(), b"kept data");
}

#[test]
fn an_unlink_and_renames_without_fsyncdir_come_back_undone() {
    if !can_mount() {
        return;
    }
    let fx = Fx::with(|d| fs::create_dir(d.join("sub")).unwrap());
    for (name, data) in [("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")] {
        durable_file(&fx, name, data.as_bytes());
    }
    fs::remove_file(fx.p("a")).unwrap();
    fs::rename(fx.p("b"), fx.p("b2")).unwrap();
    fs::rename(fx.p("c"), fx.p("d")).unwrap(); // overwrites d
    fs::rename(fx.p("b2"), fx.p("sub/b3")).unwrap();
    write_at(&fx.p("sub/b3"), 0, b"BB");
    fs::create_dir(fx.p("newdir")).unwrap();
    fs::remove_dir(fx.p("sub")).unwrap_err(); // not empty
    let loss = fx.m().lose_unsynced().unwrap();
    assert!(loss.errors.is_empty(), "{loss:?}");
    for (name, data) in [("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")] {
        assert_eq!(fs::read_to_string(fx.b(name)).unwrap(), data, "{name}");
    }
    for gone in ["b2", "sub/b3", "newdir"] {
        assert!(!fx.b(gone).exists(), "{gone}");
    }
    let trash = fs::read_dir(fx.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().contains("trash"));
    let trash = trash.expect("the trash exists while mounted").path();
    assert_eq!(
        fs::read_dir(trash).unwrap().count(),
        0,
        "the trash is empty after the loss"
    );
}

#[test]
fn a_rename_fsynced_in_its_directory_stays() {
    if !can_mount() {
        return;
    }
    let fx = Fx::new();
    // The classic atomic replace: write tmp, fsync tmp, rename over, fsync dir.
    durable_file(&fx, "config", b"old");
    fs::write(fx.p("config.tmp"), b"new").unwrap();
    fsync(&fx.p("config.tmp"));
    fs::rename(fx.p("config.tmp"), fx.p("config")).unwrap();
    fsync_dir(&fx.mnt);
    fs::remove_file(fx.p("config")).unwrap();
    fx.m().lose_unsynced().unwrap();
    assert_eq!(fs::read(fx.b("config")).unwrap(), b"new");
    assert!(!fx.b("config.tmp").exists());
}

#[test]
fn appends_after_an_fsync_are_cut_back_to_the_fsynced_length() {
    if !can_mount() {
        return;
    }
    let fx = Fx::new();
    durable_file(&fx, "log", b"");
    append(&fx.p("log"), b"entry 1\n");
    append(&fx.p("log"), b"entry 2\n");
    fsync(&fx.p("log"));
    append(&fx.p("log"), b"entry 3\n");
    append(&fx.p("log"), b"entry 4\n");
    let f = OpenOptions::new().write(true).open(fx.p("log")).unwrap();
    f.set_len(4).unwrap(); // a truncation is dropped too
    drop(f);
    append(&fx.p("log"), b"entry 5\n");
    let loss = fx.m().lose_unsynced().unwrap();
    assert_eq!(fs::read(fx.b("log")).unwrap(), b"entry 1\nentry 2\n");
    assert_eq!(loss.bytes, 24);
}

#[test]
fn o_dsync_and_o_sync_writes_survive() {
    if !can_mount() {
        return;
    }
    let fx = Fx::new();
    durable_file(&fx, "d", b"");
    durable_file(&fx, "s", b"");
    for (name, flag) in [("d", libc::O_DSYNC), ("s", libc::O_SYNC)] {
        let mut f = OpenOptions::new()
            .write(true)
            .custom_flags(flag)
            .open(fx.p(name))
            .unwrap();
        f.write_all(b"durable at once").unwrap();
    }
    assert_eq!(fx.m().pending().data_ops, 0);
    fx.m().lose_unsynced().unwrap();
    assert_eq!(fs::read(fx.b("d")).unwrap(), b"durable at once");
    assert_eq!(fs::read(fx.b("s")).unwrap(), b"durable at once");
}

#[test]
fn o_trunc_is_undone() {
    if !can_mount() {
        return;
    }
    let fx = Fx::new();
    durable_file(&fx, "t", b"precious");
    fs::write(fx.p("t"), b"x").unwrap(); // O_TRUNC
    fx.m().lose_unsynced().unwrap();
    assert_eq!(fs::read(fx.b("t")).unwrap(), b"precious");
}

/// Durable "0123456789" * 20, then two unsynced writes; tears with `seed`.
fn torn(seed: u64) -> (Vec<u8>, sunder_diskfs::Loss) {
    let fx = Fx::new();
    let base: Vec<u8> = b"0123456789".repeat(20);
    durable_file(&fx, "f", &base);
    write_at(&fx.p("f"), 10, &[b'B'; 100]);
    write_at(&fx.p("f"), 150, &[b'C'; 100]); // the last write, past the end
    let loss = fx.m().tear(seed).unwrap();
    (fs::read(fx.b("f")).unwrap(), loss)
}

#[test]
fn tear_keeps_a_strict_prefix_of_the_last_write_and_is_deterministic() {
    if !can_mount() {
        return;
    }
    let base: Vec<u8> = b"0123456789".repeat(20);
    for seed in 0..6 {
        let (content, loss) = torn(seed);
        let t = loss
            .torn
            .clone()
            .expect("a file with unsynced writes is torn");
        assert_eq!((t.offset, t.len), (150, 100));
        assert!(t.kept < t.len);
        let mut want = base.clone();
        let end = 150 + t.kept as usize;
        if end > want.len() {
            want.resize(end, 0);
        }
        want[150..end].fill(b'C');
        assert_eq!(
            content, want,
            "seed {seed}: durable content plus the kept prefix"
        );
        let (again, loss2) = torn(seed);
        assert_eq!(
            (again, loss2.torn.map(|t| t.kept)),
            (content, Some(t.kept)),
            "same seed, same tear"
        );
    }
}

#[test]
fn lose_unsynced_refuses_while_a_file_is_open() {
    if !can_mount() {
        return;
    }
    let fx = Fx::new();
    let f = fs::File::create(fx.p("open")).unwrap();
    assert!(matches!(
        fx.m().lose_unsynced(),
        Err(DiskError::Busy { open: 1 })
    ));
    drop(f);
    fx.m().lose_unsynced().unwrap();
    assert!(!fx.b("open").exists());
}

#[test]
fn a_child_process_can_use_the_mount() {
    if !can_mount() {
        return;
    }
    let fx = Fx::with(|d| fs::create_dir(d.join("py")).unwrap());
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("echo x > f && mkdir d && echo y >> d/g && mv d/g h && ln -s h l && cat f l && ls && sync")
        .current_dir(&fx.mnt)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "x\ny\nd\nf\nh\nl\npy\n"
    );
    assert_eq!(fs::read(fx.b("h")).unwrap(), b"y\n");
    if which("python3") {
        // fsync of the file and of its directory through a real program's system calls
        let script = "import os\nfd = os.open('p', os.O_WRONLY | os.O_CREAT, 0o644)\nos.write(fd, b'py')\nos.fsync(fd)\nos.close(fd)\nd = os.open('.', os.O_RDONLY)\nos.fsync(d)\nos.close(d)\n";
        let st = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .current_dir(fx.p("py"))
            .status()
            .unwrap();
        assert!(st.success());
    }
    fx.m().lose_unsynced().unwrap();
    for gone in ["f", "d", "h", "l"] {
        assert!(!fx.b(gone).exists(), "{gone}");
    }
    if which("python3") {
        assert_eq!(fs::read(fx.b("py/p")).unwrap(), b"py");
    }
}

/// `sync_file_range` with a wait reaches the filesystem only through the preload: with it
/// the range is durable, without it (the kernel alone) it is not. python3 calls libc's
/// through ctypes, which finds the preloaded one first.
#[test]
fn sync_file_range_with_a_wait_is_durable_under_the_preload() {
    if !can_mount() {
        return;
    }
    if !which("python3") {
        assert!(std::env::var_os("CI").is_none(), "CI has no python3");
        eprintln!("skipped: no python3");
        return;
    }
    assert!(sunder_diskfs::preload_library().is_file());
    let fx = Fx::with(|_| {});
    // WAIT_BEFORE | WRITE | WAIT_AFTER = 7, over the whole file
    let script = |name: &str| {
        format!(
            "import os, ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n\
             fd = os.open('{name}', os.O_WRONLY | os.O_CREAT, 0o644)\n\
             os.write(fd, b'range')\n\
             r = libc.sync_file_range(fd, ctypes.c_int64(0), ctypes.c_int64(0), 7)\n\
             assert r == 0, ctypes.get_errno()\nos.close(fd)\n"
        )
    };
    // The names themselves made durable first: only the data is in question.
    for (name, preload) in [("with", true), ("without", false)] {
        let mut cmd = std::process::Command::new("python3");
        cmd.arg("-c").arg(script(name)).current_dir(&fx.mnt);
        if preload {
            cmd.env("LD_PRELOAD", sunder_diskfs::preload_library());
        }
        assert!(cmd.status().unwrap().success());
    }
    let d = fs::File::open(&fx.mnt).unwrap();
    d.sync_all().unwrap();
    drop(d);
    fx.m().lose_unsynced().unwrap();
    assert_eq!(fs::read(fx.b("with")).unwrap(), b"range");
    assert_eq!(
        fs::read(fx.b("without")).unwrap(),
        b"",
        "the kernel alone syncs nothing here"
    );
}

fn which(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok()
}

#[test]
fn a_shared_mmap_reads_and_writes_through_the_mount_and_msync_makes_it_durable() {
    if !can_mount() || !which("python3") {
        return;
    }
    let fx = Fx::new();
    durable_file(&fx, "m", &[b'.'; 8192]);
    let script = "import mmap, os\nfd = os.open('m', os.O_RDWR)\nm = mmap.mmap(fd, 8192)\nassert m[0:1] == b'.'\nm[4096:4100] = b'MMAP'\nm.flush()\nm.close()\nos.close(fd)\n";
    let st = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .current_dir(&fx.mnt)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(&fs::read(fx.b("m")).unwrap()[4096..4100], b"MMAP");
    // msync(MS_SYNC) reaches the filesystem as an fsync: what it flushed is durable.
    fx.m().lose_unsynced().unwrap();
    let after = fs::read(fx.b("m")).unwrap();
    assert_eq!(
        (after.len(), &after[4096..4100], after[0]),
        (8192, &b"MMAP"[..], b'.')
    );
}
