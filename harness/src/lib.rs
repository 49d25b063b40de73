//! # sunder
//!
//! The harness as a library: the command-line tool (`main.rs` only calls [`cli_main`]) and
//! the test controller, importable by the integration tests.
//!
//! ```text
//!   sunder test   ──► controller: spawn nodes, run workload + nemesis, record, check, store
//!   sunder check  ──► read histories (any format), check linearizability, print verdicts
//!   sunder convert──► rewrite a history in another format (JSON lines ⇄ EDN)
//!   sunder sim    ──► run a built-in core under deterministic simulation, many seeds at once
//!   sunder node   ──► run one node of a built-in target (what the controller spawns)
//!   sunder serve  ──► browse stored runs: runs table, report.html, files (127.0.0.1 only)
//!   sunder analyze──► re-check a stored run; rewrite results.json and report.html
//!   sunder clean  ──► remove what a killed run left: netns namespaces, or (--hosts) remote
//!                     processes, nftables tables and run directories
//! ```
//!
//! - [`cmd`]: one module per subcommand (`cmd/<name>.rs`), each returning the exit code.
//! - [`controller`]: the run behind `sunder test`, phase by phase (its own map in
//!   `controller/mod.rs`), and target specs for third-party systems.
//! - [`targets`]: the one table of built-in targets (name, bugs, options, checkers, how to
//!   run a node, how to simulate one) that every subcommand consults.
//! - [`pbft_node`]: `sunder node pbft`, a PBFT replica that reads its key files first.
//! - [`report`]: `report.html`, the runs index and `sunder serve`.

pub mod cmd;
pub mod controller;
pub mod pbft_node;
pub mod report;
pub mod targets;

use clap::{Parser, Subcommand};

/// A Jepsen-style test harness and linearizability checker for consensus systems.
#[derive(Parser, Debug)]
#[command(name = "sunder", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// One value per process, parsed once: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a test: spawn a cluster, drive clients, inject faults, check the history.
    Test(cmd::test::TestArgs),
    /// Check histories for linearizability (sunder JSON lines, Jepsen EDN, Porcupine logs).
    Check(cmd::check::CheckArgs),
    /// Convert a history between formats (e.g. to EDN for Jepsen's own tools).
    Convert(cmd::convert::ConvertArgs),
    /// Simulate a built-in target deterministically over many seeds; write failing ones as runs.
    Sim(cmd::sim::SimArgs),
    /// Run one node of a built-in target (the controller spawns these).
    Node(cmd::node::NodeArgs),
    /// Browse stored runs in a web browser: a table of runs, their reports and files.
    Serve(cmd::serve::ServeArgs),
    /// Re-check a stored run (e.g. with a longer --timeout); rewrite its results and report.
    Analyze(cmd::analyze::AnalyzeArgs),
    /// Remove network namespaces (and their processes) left by killed `--net netns` runs.
    Clean(cmd::clean::CleanArgs),
}

/// Parses the command line, runs the subcommand and returns the process exit code.
pub fn cli_main() -> i32 {
    // A usage error is the harness failing to run a test (exit 3), not exit 2, which
    // means "unknown verdict" to CI; --help and --version still exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 3 } else { 0 };
        }
    };
    let code = match cli.command {
        Command::Test(a) => cmd::test::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Convert(a) => cmd::convert::run(a),
        Command::Sim(a) => cmd::sim::run(a),
        Command::Node(a) => cmd::node::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Analyze(a) => cmd::analyze::run(a),
        Command::Clean(a) => cmd::clean::run(a),
    };
    code.unwrap_or_else(|e| {
        eprintln!("sunder: error: {e:#}");
        3
    })
}
