//! One module per subcommand; each exposes `XArgs` (clap) and `run(args) -> exit code`.

pub mod check;
pub mod convert;
pub mod node;
pub mod test;
