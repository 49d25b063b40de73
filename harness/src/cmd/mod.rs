//! One module per subcommand; each exposes `XArgs` (clap) and `run(args) -> exit code`.

pub mod analyze;
pub mod check;
pub mod clean;
pub mod convert;
pub mod maelstrom;
pub mod node;
pub mod seeds;
pub mod serve;
pub mod sim;
pub mod sweep;
pub mod test;

/// The `--format` flag of `check` and `convert`: a forced history format, or none to guess
/// it from the content.
pub fn forced_format(flag: Option<&str>) -> anyhow::Result<Option<sunder_checker::format::Format>> {
    flag.map(str::parse).transpose().map_err(anyhow::Error::msg)
}
