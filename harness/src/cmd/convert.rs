//! `sunder convert IN [-o OUT] --to edn|jsonl`: read a history in any format (as `sunder
//! check` does) and write it as sunder JSON lines or Jepsen EDN.

use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;
use sunder_checker::format;

/// Convert a history between formats.
#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// The history to read (any format `sunder check` reads).
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Where to write [default: standard output].
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// The format to write.
    #[arg(long, value_parser = ["edn", "jsonl"])]
    pub to: String,
    /// Force the input format instead of guessing it from the content.
    #[arg(long, value_parser = ["jsonl", "edn", "etcd-log", "kv-log"])]
    pub format: Option<String>,
}

pub fn run(args: ConvertArgs) -> anyhow::Result<i32> {
    let forced = super::forced_format(args.format.as_deref())?;
    let read = match format::read_path(&args.input, forced) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sunder convert: {e}");
            return Ok(3);
        }
    };
    for w in &read.warnings {
        eprintln!("sunder convert: warning: {w}");
    }
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let written = match args.to.as_str() {
        "edn" => format::write_edn(out, &read.history),
        _ => format::write_jsonl(out, &read.history),
    };
    written.with_context(|| match &args.output {
        Some(p) => format!("writing {}", p.display()),
        None => "writing to standard output".to_string(),
    })?;
    Ok(0)
}
