//! What survives `lose_unsynced` under `Metadata::Journal`, where any durability point
//! commits every namespace change made before it, against the same scenario under `Strict`.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use common::*;
use sunder_diskfs::Metadata;

fn journal() -> Fx {
    Fx::with_metadata(Metadata::Journal, |d| {
        fs::create_dir(d.join("sub")).unwrap();
        fs::write(d.join("other"), b"other durable").unwrap();
        fs::write(d.join("sub/unrelated"), b"").unwrap();
    })
}

#[test]
fn a_mkdir_is_made_durable_by_the_fsync_of_a_file_inside_it_only_under_journal() {
    if !can_mount() {
        return;
    }
    for (metadata, survives) in [(Metadata::Journal, true), (Metadata::Strict, false)] {
        let fx = Fx::with_metadata(metadata, |_| {});
        fs::create_dir(fx.p("dir")).unwrap();
        fs::write(fx.p("dir/f"), b"data").unwrap();
        fsync(&fx.p("dir/f")); // the root is never fsynced, nor is dir
        let loss = fx.m().lose_unsynced().unwrap();
        assert!(loss.errors.is_empty(), "{metadata}: {loss:?}");
        assert_eq!(fx.b("dir").is_dir(), survives, "{metadata}: dir");
        if survives {
            assert_eq!(fs::read(fx.b("dir/f")).unwrap(), b"data");
        }
    }
}

#[test]
fn other_files_data_stays_unsynced_under_journal() {
    if !can_mount() {
        return;
    }
    let fx = journal();
    write_at(&fx.p("other"), 0, b"OTHER");
    append(&fx.p("other"), b" and more");
    fs::write(fx.p("new"), b"never fsynced").unwrap();
    fsync(&fx.p("sub/unrelated"));
    let pending = fx.m().pending();
    assert_eq!(pending.metadata_ops, 0, "{pending:?}");
    assert!(pending.data_ops > 0, "{pending:?}");
    let loss = fx.m().lose_unsynced().unwrap();
    assert!(loss.errors.is_empty(), "{loss:?}");
    assert_eq!(fs::read(fx.b("other")).unwrap(), b"other durable");
    // Its name is durable, its data is not: it stays, empty.
    assert_eq!(fs::read(fx.b("new")).unwrap(), b"");
}

#[test]
fn a_create_and_rename_committed_by_an_unrelated_fsync_keep_the_new_name() {
    if !can_mount() {
        return;
    }
    let fx = journal();
    fs::write(fx.p("tmp"), b"unsynced").unwrap();
    fs::rename(fx.p("tmp"), fx.p("sub/final")).unwrap();
    fsync(&fx.p("other"));
    fs::write(fx.p("late"), b"after the commit").unwrap();
    let loss = fx.m().lose_unsynced().unwrap();
    assert!(loss.errors.is_empty(), "{loss:?}");
    assert!(!fx.b("tmp").exists());
    assert_eq!(fs::read(fx.b("sub/final")).unwrap(), b"");
    assert!(
        !fx.b("late").exists(),
        "a change after the last commit is dropped"
    );
}

#[test]
fn undoing_data_finds_the_file_at_its_committed_name() {
    if !can_mount() {
        return;
    }
    let fx = journal();
    durable_file(&fx, "a", b"durable a");
    durable_file(&fx, "t", b"durable t");
    write_at(&fx.p("a"), 0, b"UNSYNCED A");
    fs::rename(fx.p("a"), fx.p("sub/a2")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(fx.p("t"))
        .unwrap()
        .set_len(2)
        .unwrap();
    fs::rename(fx.p("t"), fx.p("t2")).unwrap();
    // fsyncdir of the root alone: under Strict it would not make sub/a2 durable.
    fsync_dir(&fx.mnt);
    let loss = fx.m().lose_unsynced().unwrap();
    assert!(loss.errors.is_empty(), "{loss:?}");
    assert!(!fx.b("a").exists() && !fx.b("t").exists());
    assert_eq!(fs::read(fx.b("sub/a2")).unwrap(), b"durable a");
    assert_eq!(fs::read(fx.b("t2")).unwrap(), b"durable t");
}

#[test]
fn an_unlink_committed_by_the_journal_stays_and_its_data_undo_is_skipped() {
    if !can_mount() {
        return;
    }
    let fx = journal();
    durable_file(&fx, "doomed", b"old");
    write_at(&fx.p("doomed"), 0, b"new data");
    fs::remove_file(fx.p("doomed")).unwrap();
    fs::remove_file(fx.p("sub/unrelated")).unwrap();
    fs::remove_dir(fx.p("sub")).unwrap();
    fsync(&fx.p("other"));
    let loss = fx.m().lose_unsynced().unwrap();
    assert!(loss.errors.is_empty(), "{loss:?}");
    assert!(!fx.b("doomed").exists());
    assert!(!fx.b("sub").exists());
    let trash = fs::read_dir(fx.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().contains("trash"))
        .expect("the trash exists while mounted");
    assert_eq!(fs::read_dir(trash.path()).unwrap().count(), 0);
}

#[test]
fn an_o_dsync_write_commits_the_journal() {
    if !can_mount() {
        return;
    }
    let fx = journal();
    fs::create_dir(fx.p("made")).unwrap();
    fs::rename(fx.p("sub/unrelated"), fx.p("made/moved")).unwrap();
    let mut f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DSYNC)
        .open(fx.p("other"))
        .unwrap();
    f.write_all(b"OTHER").unwrap();
    drop(f);
    fs::create_dir(fx.p("after")).unwrap();
    let loss = fx.m().lose_unsynced().unwrap();
    assert!(loss.errors.is_empty(), "{loss:?}");
    assert!(fx.b("made/moved").exists());
    assert!(!fx.b("sub/unrelated").exists());
    assert!(!fx.b("after").exists());
    assert_eq!(fs::read(fx.b("other")).unwrap(), b"OTHER durable");
}

#[test]
fn a_tear_under_journal_cuts_a_file_whose_name_is_committed() {
    if !can_mount() {
        return;
    }
    let fx = journal();
    fs::write(fx.p("f"), b"").unwrap();
    fsync(&fx.p("other"));
    write_at(&fx.p("f"), 0, &[b'x'; 100]);
    let loss = fx.m().tear(7).unwrap();
    let torn = loss
        .torn
        .expect("f has an unsynced write and a durable name");
    assert_eq!(torn.path, fx.b("f"));
    assert_eq!(fs::read(fx.b("f")).unwrap(), vec![b'x'; torn.kept as usize]);
}
