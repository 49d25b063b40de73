//! `sunder clean`: removes what a killed controller left behind: network namespaces named
//! `sunder-<pid>-...` whose controller no longer runs, and the processes still in them,
//! and disk-fault mounts whose server died with it (`controller::disks::leftovers`); or,
//! with `--hosts`, on every remote host the runs' processes, nftables tables and
//! directories (`sunder_remote::clean`).

use crate::controller::remote::Hosts;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use sunder_nemesis::netns::{leftovers, remove_namespace};
use sunder_remote::{CommandLog, Host, RunId, Scope};

/// Remove network namespaces (and their processes) left by killed `sunder test` runs, or
/// with --hosts what they left on remote hosts.
#[derive(clap::Args, Debug, Clone)]
pub struct CleanArgs {
    /// Only list what would be removed (local namespaces only).
    #[arg(long = "dry-run", conflicts_with = "hosts")]
    pub dry_run: bool,
    /// Clean these remote hosts (the `sunder test --hosts` file): kill the runs' processes,
    /// delete their nftables tables and directories.
    #[arg(long)]
    pub hosts: Option<PathBuf>,
    /// With --hosts: only this run (its id) [default: every sunder run on the hosts, a run
    /// of another controller in progress included].
    #[arg(long, requires = "hosts")]
    pub run: Option<String>,
    /// With --hosts: the runs' base directory on the hosts.
    #[arg(long, requires = "hosts", default_value = sunder_remote::DEFAULT_BASE)]
    pub base: String,
    /// With --hosts: the private key for hosts that name none.
    #[arg(long = "ssh-identity", requires = "hosts")]
    pub ssh_identity: Option<PathBuf>,
    /// With --hosts: the known_hosts file for hosts that name none.
    #[arg(long = "ssh-known-hosts", requires = "hosts")]
    pub ssh_known_hosts: Option<PathBuf>,
}

pub fn run(args: CleanArgs) -> anyhow::Result<i32> {
    if let Some(file) = &args.hosts {
        return clean_hosts(&args, file);
    }
    let mounts = crate::controller::disks::leftovers();
    let mut failed = 0;
    for m in &mounts {
        if args.dry_run {
            println!("would unmount {} (its controller is gone)", m.display());
            continue;
        }
        match sunder_diskfs::force_unmount(m) {
            Ok(()) => println!("unmounted {} (its controller is gone)", m.display()),
            Err(e) => {
                eprintln!("sunder: error: unmounting {}: {e}", m.display());
                failed += 1;
            }
        }
    }
    let found = leftovers()?;
    if found.is_empty() {
        if mounts.is_empty() {
            println!("nothing to clean");
        }
        return Ok(if failed == 0 { 0 } else { 3 });
    }
    let describe = |l: &sunder_nemesis::netns::Leftover| {
        format!(
            "{} (controller pid {} is gone; {} process(es) inside)",
            l.namespace,
            l.owner,
            l.pids.len()
        )
    };
    if args.dry_run {
        for l in &found {
            println!("would remove {}", describe(l));
        }
        return Ok(0);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!(
            "removing {} network namespace(s) needs root; `sunder clean --dry-run` lists them",
            found.len()
        );
    }
    for l in &found {
        match remove_namespace(&l.namespace) {
            Ok(()) => println!("removed {}", describe(l)),
            Err(e) => {
                eprintln!("sunder: error: removing {}: {e}", l.namespace);
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 3 })
}

/// A local directory for the ssh control sockets and the command log of one clean. Removed
/// at the end unless something failed: then the log is what explains it.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!(
                "sunder: every remote command is in {}",
                self.path.join("remote.log").display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn clean_hosts(args: &CleanArgs, file: &Path) -> anyhow::Result<i32> {
    let hosts = Hosts::from_file(
        file,
        args.ssh_identity.as_deref(),
        args.ssh_known_hosts.as_deref(),
    )?;
    let scope = match &args.run {
        Some(id) => Scope::Run(RunId::new(id).map_err(|e| anyhow::anyhow!("--run: {e}"))?),
        None => Scope::All,
    };
    sunder_remote::layout::check_base(&args.base).map_err(|e| anyhow::anyhow!("--base: {e}"))?;
    let mut work = WorkDir {
        path: std::env::temp_dir().join(format!("sunder-clean-{}", std::process::id())),
        keep: false,
    };
    std::fs::create_dir_all(&work.path)?;
    let log = Arc::new(CommandLog::open(&work.path.join("remote.log"))?);
    let mut failed = 0;
    let mut connected = Vec::new();
    for spec in hosts.specs() {
        let name = spec.name.clone();
        match Host::connect(spec, &work.path, log.clone()) {
            Ok(h) => connected.push(Arc::new(h)),
            Err(e) => {
                eprintln!("sunder: error: {name}: {e}");
                failed += 1;
            }
        }
    }
    for c in sunder_remote::clean(&connected, &args.base, &scope)? {
        println!(
            "{}: killed {} process group(s), removed {} table(s) and {} run director(ies)",
            c.host,
            c.killed.len(),
            c.tables.len(),
            c.dirs.len()
        );
        for e in &c.errors {
            eprintln!("sunder: error: {}: {e}", c.host);
        }
        if !c.is_complete() {
            failed += 1;
        }
    }
    // The master connections go before the directory holding their sockets.
    drop(connected);
    work.keep = failed > 0;
    Ok(if failed == 0 { 0 } else { 3 })
}
