//! `sunder convert` (not yet built).

#[derive(clap::Args, Debug)]
pub struct ConvertArgs {}

pub fn run(_args: ConvertArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`sunder convert` is not built yet")
}
