//! `sunder test` (not yet built).

#[derive(clap::Args, Debug)]
pub struct TestArgs {}

pub fn run(_args: TestArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`sunder test` is not built yet")
}
