//! `sunder check FILE_OR_DIR...`: read histories in any format, check linearizability,
//! print one verdict line per file, the evidence for each invalid one, and a total.
//!
//! ```text
//!   paths ─► expand dirs (sorted) ─► format::read_path ─► linear::check ─► Outcome
//!                                                                         │
//!                      text (anstream) / --json lines / --html pages ◄────┘ ─► exit code
//! ```

use anyhow::Context;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use sunder_checker::format::{self, Format};
use sunder_checker::linear::{
    self, CheckOptions, LinearizabilityReport, OpSummary, PartitionReport,
};
use sunder_checker::model::ModelSpec;
use sunder_checker::{EventType, Verdict, html};

const EXIT_RULE: &str = "\
Exit code: 0 when every file is linearizable (empty files count as valid;
an empty directory, or text with no operation of its format, is unreadable),
1 when any file is not linearizable, otherwise 3 when any file could not be
read, otherwise 2 when any verdict is unknown (time budget ran out).
Precedence: invalid > unreadable > unknown > valid.";

/// Check histories for linearizability.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_RULE)]
pub struct CheckArgs {
    /// History files, or directories (every regular file in them, sorted by name).
    #[arg(required = true, value_name = "FILE_OR_DIR")]
    pub paths: Vec<PathBuf>,
    /// Force the input format instead of guessing it from the content.
    #[arg(long, value_parser = ["jsonl", "edn", "etcd-log", "kv-log"])]
    pub format: Option<String>,
    /// The model to check against [default: cas-register, or kv when ops have keys; kv for
    /// Porcupine kv logs]. kv-whole checks a kv history as one store, without splitting it
    /// by key (slower; for comparison with checkers that do not partition).
    #[arg(long, value_parser = ["register", "cas-register", "kv", "kv-whole"])]
    pub model: Option<String>,
    /// The model's initial value, as JSON (e.g. `--initial 0`, `--initial '""'`) [default:
    /// nil for registers, "" for Porcupine kv logs].
    #[arg(long, value_name = "JSON")]
    pub initial: Option<String>,
    /// Time budget per file (e.g. 30s, 2m); past it the verdict is unknown, never a guess.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// Worker threads for partitions (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Search memo the whole check may hold (e.g. 2GiB, 512MiB, or bytes) [default: a
    /// quarter of physical memory, at most 4GiB]; a key that needs more is unknown.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory_limit: Option<usize>,
    /// Print one JSON object per file and a total, for programs.
    #[arg(long)]
    pub json: bool,
    /// Write an interactive HTML counterexample: to FILE with one input file; with several,
    /// FILE is a directory that gets one page per invalid file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// What happened to one input file.
enum Status {
    Checked(Box<LinearizabilityReport>),
    Empty,
    Unreadable(String),
}

struct Outcome {
    path: PathBuf,
    format: Option<Format>,
    warnings: Vec<String>,
    status: Status,
    elapsed: Duration,
}

impl Outcome {
    fn label(&self) -> &'static str {
        match &self.status {
            Status::Checked(r) => match r.verdict {
                Verdict::Valid => "valid",
                Verdict::Invalid => "INVALID",
                Verdict::Unknown => "unknown",
            },
            Status::Empty => "empty",
            Status::Unreadable(_) => "unreadable",
        }
    }

    fn ops(&self) -> usize {
        match &self.status {
            Status::Checked(r) => r.ops,
            _ => 0,
        }
    }
}

pub fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let forced = super::forced_format(args.format.as_deref())?;
    let initial = match &args.initial {
        Some(text) => Some(serde_json::from_str::<Value>(text).with_context(|| {
            format!("--initial {text:?} is not JSON (write a string as --initial '\"text\"')")
        })?),
        None => None,
    };
    if let Some(m) = &args.model {
        ModelSpec::parse(m, initial.clone()).map_err(anyhow::Error::msg)?;
    }
    let files = expand(&args.paths);
    let started = Instant::now();
    let mut out = anstream::stdout();
    let mut outcomes = Vec::new();
    for (path, empty_dir) in files {
        let outcome = match empty_dir {
            // Nothing was checked: not a valid run.
            true => Outcome {
                status: Status::Unreadable(format!(
                    "{}: the directory holds no history files",
                    path.display()
                )),
                path,
                format: None,
                warnings: Vec::new(),
                elapsed: Duration::ZERO,
            },
            false => check_one(path, forced, &args, initial.as_ref()),
        };
        if args.json {
            writeln!(out, "{}", outcome_json(&outcome))?;
        } else {
            print_outcome(&mut out, &outcome)?;
        }
        outcomes.push(outcome);
    }
    let code = exit_code(&outcomes);
    let elapsed = started.elapsed();
    if args.json {
        writeln!(out, "{}", total_json(&outcomes, code, elapsed))?;
    } else {
        print_total(&mut out, &outcomes, elapsed)?;
    }
    out.flush()?;
    // After the verdicts, so that a page that cannot be written loses nothing else.
    write_html(&args, &outcomes)?;
    Ok(code)
}

/// Directories become their regular files, sorted; a path that is neither is kept so that
/// reading it reports the problem. A directory without a regular file is kept and marked
/// (`true`): checking nothing is an error, not a valid run.
fn expand(paths: &[PathBuf]) -> Vec<(PathBuf, bool)> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut inside: Vec<PathBuf> = match std::fs::read_dir(p) {
                Ok(rd) => rd
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|f| f.is_file())
                    .collect(),
                Err(_) => vec![p.clone()],
            };
            inside.sort();
            if inside.is_empty() {
                files.push((p.clone(), true));
            }
            files.extend(inside.into_iter().map(|f| (f, false)));
        } else {
            files.push((p.clone(), false));
        }
    }
    files
}

fn check_one(
    path: PathBuf,
    forced: Option<Format>,
    args: &CheckArgs,
    initial: Option<&Value>,
) -> Outcome {
    let started = Instant::now();
    let read = match format::read_path(&path, forced) {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                path,
                format: None,
                warnings: Vec::new(),
                status: Status::Unreadable(e.to_string()),
                elapsed: started.elapsed(),
            };
        }
    };
    let status = if read.history.client_events().next().is_none() {
        Status::Empty
    } else {
        let model = choose_model(args.model.as_deref(), initial, &read.default_model);
        let opts = CheckOptions {
            timeout: args.timeout,
            threads: args.threads,
            keep_valid_partitions: false,
            nil_read_unconstrained: read.nil_read_unconstrained,
            memory_limit: args
                .memory_limit
                .or_else(|| CheckOptions::default().memory_limit),
            cancel: None,
        };
        Status::Checked(Box::new(linear::check(&read.history, &model, &opts)))
    };
    Outcome {
        path,
        format: Some(read.format),
        warnings: read.warnings,
        status,
        elapsed: started.elapsed(),
    }
}

/// `2GiB`, `512MiB`, `64KiB`, `3GB` or plain bytes.
fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 2GiB, 512MiB, 1000000)"))?;
    let mul: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "m" | "mb" => 1000 * 1000,
        "g" | "gb" => 1000 * 1000 * 1000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "`{s}`: unknown unit (use B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("`{s}` is too big"))
}

/// `--model` and `--initial` override the format's default; a bare `--model` naming the
/// default model keeps the default's initial value.
fn choose_model(name: Option<&str>, initial: Option<&Value>, default: &ModelSpec) -> ModelSpec {
    let name = name.unwrap_or(default.name());
    match initial {
        None if name == default.name() => default.clone(),
        // Already validated in `run`.
        _ => ModelSpec::parse(name, initial.cloned()).unwrap_or_else(|_| default.clone()),
    }
}

/// invalid > unreadable > unknown > valid (see `EXIT_RULE`).
fn exit_code(outcomes: &[Outcome]) -> i32 {
    let verdict = |v| {
        outcomes
            .iter()
            .any(|o| matches!(&o.status, Status::Checked(r) if r.verdict == v))
    };
    if verdict(Verdict::Invalid) {
        1
    } else if outcomes
        .iter()
        .any(|o| matches!(o.status, Status::Unreadable(_)))
    {
        3
    } else if verdict(Verdict::Unknown) {
        2
    } else {
        0
    }
}

const RED: &str = "\x1b[1;31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

fn print_outcome(out: &mut impl Write, o: &Outcome) -> anyhow::Result<()> {
    let colour = match o.label() {
        "valid" => GREEN,
        "INVALID" | "unreadable" => RED,
        "unknown" => YELLOW,
        _ => DIM,
    };
    let ms = o.elapsed.as_secs_f64() * 1000.0;
    let format = o.format.map(|f| format!(", {f}")).unwrap_or_default();
    match &o.status {
        Status::Unreadable(e) => writeln!(
            out,
            "{colour}{:<10}{RESET} {}\n           {e}",
            o.label(),
            o.path.display()
        )?,
        Status::Checked(r) => writeln!(
            out,
            "{colour}{:<10}{RESET} {}  {DIM}({} ops, {}, {ms:.1} ms{format}){RESET}",
            o.label(),
            o.path.display(),
            o.ops(),
            r.model
        )?,
        Status::Empty => writeln!(
            out,
            "{colour}{:<10}{RESET} {}  {DIM}(no operations{format}){RESET}",
            o.label(),
            o.path.display()
        )?,
    }
    for w in &o.warnings {
        writeln!(out, "           {YELLOW}warning:{RESET} {w}")?;
    }
    if let Status::Checked(r) = &o.status {
        if r.verdict == Verdict::Invalid {
            print_evidence(out, r, o.format)?;
        } else if r.verdict == Verdict::Unknown {
            writeln!(out, "           {}", r.summary)?;
        }
    }
    Ok(())
}

/// Steps of the longest prefix shown before the failing point.
const PREFIX_TAIL: usize = 6;

fn print_evidence(
    out: &mut impl Write,
    r: &LinearizabilityReport,
    format: Option<Format>,
) -> anyhow::Result<()> {
    // Porcupine's logs carry no times: their readers use the line position instead.
    let positions = matches!(format, Some(Format::EtcdLog | Format::KvLog));
    writeln!(out, "           {}", r.summary)?;
    for p in r
        .partitions
        .iter()
        .filter(|p| p.verdict == Verdict::Invalid)
    {
        let key = p
            .key
            .as_deref()
            .map(|k| format!("key {k:?}"))
            .unwrap_or_else(|| match r.model.as_str() {
                "kv-whole" => "the store".into(),
                _ => "the register".into(),
            });
        writeln!(
            out,
            "  {BOLD}{key}{RESET} ({} ops) is not linearizable",
            p.ops.len()
        )?;
        let Some(cx) = &p.counterexample else {
            continue;
        };
        let n = cx.longest_prefix.len();
        let shown = &cx.longest_prefix[n.saturating_sub(PREFIX_TAIL)..];
        if n == 0 {
            writeln!(out, "    no operation can be linearized first")?;
        } else {
            writeln!(
                out,
                "    longest linearizable prefix: {n} ops{}",
                if n > shown.len() {
                    format!(", the last {}:", shown.len())
                } else {
                    ":".into()
                }
            )?;
        }
        for (i, step) in shown.iter().enumerate() {
            let number = n - shown.len() + i + 1;
            writeln!(
                out,
                "      {number:>4}. {}  {DIM}→ state {}{RESET}",
                describe_op(p, step.op, positions),
                step.state
            )?;
        }
        writeln!(out, "    state after the prefix: {}", cx.state)?;
        writeln!(out, "    {RED}none of these can be placed next:{RESET}")?;
        for a in &cx.stuck {
            writeln!(out, "      {}", describe_op(p, a.op, positions))?;
            writeln!(
                out,
                "          {RED}met state {}: {}{RESET}",
                a.state, a.reason
            )?;
        }
    }
    Ok(())
}

fn describe_op(p: &PartitionReport, id: usize, positions: bool) -> String {
    match p.ops.get(id) {
        Some(op) => op_line(op, positions),
        None => format!("op #{id}"),
    }
}

/// `p3 cas [1,2] → ok  [1.2ms, 3.4ms]  #17/#19`
fn op_line(op: &OpSummary, positions: bool) -> String {
    let time = |t: u64| if positions { format!("@{t}") } else { nanos(t) };
    let outcome = match op.kind {
        EventType::Info => "? (info)".to_string(),
        _ if op.output.is_null() || op.output == op.input => "ok".to_string(),
        _ => compact(&op.output),
    };
    let input = if op.input.is_null() {
        String::new()
    } else {
        format!(" {}", compact(&op.input))
    };
    let ret = op.ret.map(time).unwrap_or_else(|| "end".into());
    let indices = match op.complete_index {
        Some(c) => format!("#{}/#{c}", op.invoke_index),
        None => format!("#{}", op.invoke_index),
    };
    format!(
        "p{} {}{input} → {outcome}  [{}, {ret}]  {indices}",
        op.process,
        op.f,
        time(op.call)
    )
}

fn compact(v: &Value) -> String {
    let s = if v.is_null() {
        "nil".to_string()
    } else {
        v.to_string()
    };
    if s.chars().count() > 48 {
        format!("{}…", s.chars().take(47).collect::<String>())
    } else {
        s
    }
}

/// Nanoseconds for people.
fn nanos(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.1}µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.3}ms", ns as f64 / 1e6),
        _ => format!("{:.3}s", ns as f64 / 1e9),
    }
}

fn print_total(
    out: &mut impl Write,
    outcomes: &[Outcome],
    elapsed: Duration,
) -> anyhow::Result<()> {
    let count = |l: &str| outcomes.iter().filter(|o| o.label() == l).count();
    let ops: usize = outcomes.iter().map(Outcome::ops).sum();
    writeln!(
        out,
        "{BOLD}total{RESET}: {} files, {ops} ops: {} valid, {} invalid, {} unknown, {} empty, {} unreadable ({:.1} ms)",
        outcomes.len(),
        count("valid"),
        count("INVALID"),
        count("unknown"),
        count("empty"),
        count("unreadable"),
        elapsed.as_secs_f64() * 1000.0
    )?;
    Ok(())
}

fn outcome_json(o: &Outcome) -> Value {
    let status = o.label().to_ascii_lowercase();
    let mut v = json!({
        "file": o.path.display().to_string(),
        "status": status,
        "format": o.format.map(Format::name),
        "ops": o.ops(),
        "elapsed_ms": o.elapsed.as_millis() as u64,
        "warnings": o.warnings,
    });
    match &o.status {
        Status::Checked(r) => v["report"] = serde_json::to_value(r).unwrap_or(Value::Null),
        Status::Unreadable(e) => v["error"] = Value::String(e.clone()),
        Status::Empty => {}
    }
    v
}

fn total_json(outcomes: &[Outcome], code: i32, elapsed: Duration) -> Value {
    let count = |l: &str| outcomes.iter().filter(|o| o.label() == l).count();
    json!({ "total": {
        "files": outcomes.len(),
        "ops": outcomes.iter().map(Outcome::ops).sum::<usize>(),
        "valid": count("valid"),
        "invalid": count("INVALID"),
        "unknown": count("unknown"),
        "empty": count("empty"),
        "unreadable": count("unreadable"),
        "elapsed_ms": elapsed.as_millis() as u64,
        "exit_code": code,
    }})
}

/// One input file: the page goes to `--html FILE`, whatever the verdict. Several: FILE is a
/// directory with one page per invalid file.
fn write_html(args: &CheckArgs, outcomes: &[Outcome]) -> anyhow::Result<()> {
    let Some(target) = &args.html else {
        return Ok(());
    };
    let single = args.paths.len() == 1 && !args.paths[0].is_dir();
    if single {
        let Some(Outcome {
            status: Status::Checked(r),
            path,
            ..
        }) = outcomes.first()
        else {
            eprintln!(
                "sunder check: --html: {} has no checked history to draw; no page written",
                args.paths[0].display()
            );
            return Ok(());
        };
        let page = html::render_report(&title(path), r);
        std::fs::write(target, page).with_context(|| format!("writing {}", target.display()))?;
        return Ok(());
    }
    std::fs::create_dir_all(target)
        .with_context(|| format!("creating directory {}", target.display()))?;
    let mut used = std::collections::BTreeSet::new();
    for o in outcomes {
        let Status::Checked(r) = &o.status else {
            continue;
        };
        if r.verdict != Verdict::Invalid {
            continue;
        }
        let stem = o
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "history".into());
        let mut name = format!("{stem}.html");
        let mut n = 2;
        while !used.insert(name.clone()) {
            name = format!("{stem}.{n}.html");
            n += 1;
        }
        let file = target.join(name);
        std::fs::write(&file, html::render_report(&title(&o.path), r))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

fn title(path: &Path) -> String {
    format!("sunder check: {}", path.display())
}
