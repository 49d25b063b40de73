//! `sunder node` (not yet built).

#[derive(clap::Args, Debug)]
pub struct NodeArgs {}

pub fn run(_args: NodeArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`sunder node` is not built yet")
}
