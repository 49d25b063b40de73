//! Builds the preload library nodes on a disk mount get (preload/sync_file_range.c; see
//! `sunder_diskfs::preload_library`) with the system's C compiler (`$CC`, else `cc`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "preload/sync_file_range.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let lib = out.join("libsunder_diskfs_preload.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-o"])
        .arg(&lib)
        .arg(src)
        .arg("-ldl")
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?} for {src}: {e}"));
    assert!(status.success(), "{cc} failed on {src}");
}
