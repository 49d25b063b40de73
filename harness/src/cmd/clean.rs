//! `sunder clean`: removes what a killed controller left behind: network namespaces named
//! `sunder-<pid>-...` whose controller no longer runs, and the processes still in them.

use sunder_nemesis::netns::{leftovers, remove_namespace};

/// Remove network namespaces (and their processes) left by killed `sunder test` runs.
#[derive(clap::Args, Debug, Clone)]
pub struct CleanArgs {
    /// Only list what would be removed.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

pub fn run(args: CleanArgs) -> anyhow::Result<i32> {
    let found = leftovers()?;
    if found.is_empty() {
        println!("nothing to clean");
        return Ok(0);
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
    let mut failed = 0;
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
