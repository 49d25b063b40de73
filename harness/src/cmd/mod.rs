//! One module per subcommand; each exposes `XArgs` (clap) and `run(args) -> exit code`.

pub mod analyze;
pub mod check;
pub mod convert;
pub mod node;
pub mod serve;
pub mod test;
