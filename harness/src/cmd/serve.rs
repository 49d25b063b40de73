//! `sunder serve`: browse stored runs in a web browser (127.0.0.1 only).

use crate::report::server::{Limits, Server};
use anyhow::Context;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

/// Browse stored runs: a table of runs, each run's report and files.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// The results directory to browse.
    #[arg(default_value = "results")]
    pub dir: PathBuf,
    /// Port on 127.0.0.1; 0 picks a free one (the URL is printed).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Connections served at once; more wait until one is done.
    #[arg(long, default_value_t = 64)]
    pub max_connections: usize,
    /// Time a client has to send its whole request head (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub head_timeout: Duration,
}

pub fn run(args: ServeArgs) -> anyhow::Result<i32> {
    anyhow::ensure!(
        (1..=4096).contains(&args.max_connections),
        "--max-connections {}: must be between 1 and 4096",
        args.max_connections
    );
    anyhow::ensure!(
        !args.head_timeout.is_zero(),
        "--head-timeout must be more than zero"
    );
    let limits = Limits {
        max_connections: args.max_connections,
        head_deadline: args.head_timeout,
    };
    let server = Server::new(&args.dir, limits)
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
