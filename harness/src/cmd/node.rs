//! `sunder node <TARGET> [NODE ARGS]`: runs one node of a built-in target until SIGTERM or
//! SIGINT. This is what the controller spawns, from its own executable.

use anyhow::Context;

/// Run one node of a built-in target.
#[derive(clap::Args, Debug)]
// The flattened `sunder_node::NodeArgs` has the same name, and clap names argument groups
// after the struct: skip this one's group so the two do not clash.
#[group(skip)]
pub struct NodeArgs {
    /// The built-in target: lww or primary (raft and paxos as they land).
    pub target: String,
    #[command(flatten)]
    pub node: sunder_node::NodeArgs,
}

/// Targets `sunder node` can run.
pub const TARGETS: &[&str] = &["lww", "primary", "raft", "paxos"];

/// The `--opt` keys a built-in target accepts: the list its node checks itself against,
/// so that the controller refuses a bad setting before any node starts.
pub fn accepted_opts(target: &str) -> Option<&'static [sunder_node::OptSpec]> {
    use sunder_node::Protocol;
    Some(match target {
        "lww" => sunder_toy::Lww::accepted_opts(),
        "primary" => sunder_toy::Primary::accepted_opts(),
        "raft" => sunder_raft::Raft::accepted_opts(),
        "paxos" => sunder_paxos::Paxos::accepted_opts(),
        _ => return None,
    })
}

pub fn run(args: NodeArgs) -> anyhow::Result<i32> {
    init_logging();
    let id = args.node.id.clone();
    let result = match args.target.as_str() {
        "lww" => sunder_node::run_node::<sunder_toy::Lww>(args.node),
        "primary" => sunder_node::run_node::<sunder_toy::Primary>(args.node),
        "raft" => sunder_node::run_node::<sunder_raft::Raft>(args.node),
        "paxos" => sunder_node::run_node::<sunder_paxos::Paxos>(args.node),
        other => anyhow::bail!(
            "unknown target `{other}`; known targets: {}",
            TARGETS.join(", ")
        ),
    };
    result.with_context(|| format!("node {id} ({})", args.target))?;
    Ok(0)
}

/// Logs go to stderr, which the controller captures into `nodes/<id>.log`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
