//! `sunder serve`: browse stored runs in a web browser (127.0.0.1 only).

use crate::report::server::Server;
use anyhow::Context;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;

/// Browse stored runs: a table of runs, each run's report and files.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// The results directory to browse.
    #[arg(default_value = "results")]
    pub dir: PathBuf,
    /// Port on 127.0.0.1; 0 picks a free one (the URL is printed).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

pub fn run(args: ServeArgs) -> anyhow::Result<i32> {
    let server = Server::new(&args.dir)
        .with_context(|| format!("results directory {}", args.dir.display()))?;
    anyhow::ensure!(
        server.root().is_dir(),
        "{} is not a directory",
        args.dir.display()
    );
    // Loopback only: the pages show commands, paths and logs of the machine.
    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .with_context(|| format!("bind 127.0.0.1:{}", args.port))?;
    let addr = listener.local_addr().context("local address")?;
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "sunder: serving {} at http://{addr}/",
        server.root().display()
    );
    let _ = out.flush();
    server.run(listener).context("serve")?;
    Ok(0)
}
