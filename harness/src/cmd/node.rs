//! `sunder node <TARGET> [NODE ARGS]`: runs one node of a built-in target until SIGTERM or
//! SIGINT. This is what the controller spawns, from its own executable.

use anyhow::Context;

/// Run one node of a built-in target.
#[derive(clap::Args, Debug)]
// The flattened `sunder_node::NodeArgs` has the same name, and clap names argument groups
// after the struct: skip this one's group so the two do not clash.
#[group(skip)]
pub struct NodeArgs {
    #[arg(
        help = "The built-in target (--help lists them)",
        long_help = crate::targets::help("The built-in target:", false)
    )]
    pub target: String,
    #[command(flatten)]
    pub node: sunder_node::NodeArgs,
}

pub fn run(args: NodeArgs) -> anyhow::Result<i32> {
    init_logging();
    let id = args.node.id.clone();
    let Some(run_node) = crate::targets::find_node(&args.target).and_then(|t| t.run_node) else {
        anyhow::bail!(
            "unknown target `{}`; known targets: {}",
            args.target,
            crate::targets::names()
        );
    };
    run_node(args.node).with_context(|| format!("node {id} ({})", args.target))?;
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
