//! Everything a report reads from a run directory, loaded once.
//!
//! `results.json` is read as the type the controller writes it with ([`StoredResults`]), so
//! a renamed field fails to compile instead of showing "none". A report must still render
//! for a run the harness could not finish (no results, no history) and for a results file
//! this version cannot read (its error becomes a warning on the page); the configuration
//! stays plain JSON, since simulated runs and older versions write other shapes.

use crate::controller::results::StoredResults;
use anyhow::Context;
use serde_json::Value;
use std::path::{Path, PathBuf};
use sunder_checker::History;
use sunder_checker::format::jsonl::read_jsonl_path;
use sunder_checker::stats::{self, Stats};

use super::messages::MessagesFile;
use crate::controller::checks::CheckerResult;

/// One node's files, as paths relative to the run directory (what the page links to).
#[derive(Debug, Clone)]
pub struct NodeFiles {
    pub id: String,
    pub files: Vec<String>,
}

pub struct RunData {
    pub dir: PathBuf,
    /// `results.json`; `None` when the run never wrote one or it could not be read (then
    /// a warning says why).
    pub results: Option<StoredResults>,
    /// The run's configuration: `results.json`'s, else `config.json`'s.
    pub config: Value,
    pub replay: Option<String>,
    /// `None` when there is no `history.jsonl`.
    pub history: Option<History>,
    /// Problems met while reading (a truncated history line, a missing file).
    pub warnings: Vec<String>,
    pub nodes: Vec<NodeFiles>,
    /// `messages.jsonl` (Maelstrom runs), when there is one.
    pub messages: Option<MessagesFile>,
}

impl RunData {
    pub fn load(dir: &Path) -> anyhow::Result<RunData> {
        let rpath = dir.join("results.json");
        let config_file = read_json_opt(&dir.join("config.json"))?.unwrap_or(Value::Null);
        if !rpath.is_file() && config_file.is_null() {
            anyhow::bail!(
                "{} holds neither results.json nor config.json: not a run directory",
                dir.display()
            );
        }
        let mut warnings = Vec::new();
        let results = StoredResults::read(&rpath).unwrap_or_else(|e| {
            warnings.push(format!("{e:#}"));
            None
        });
        let config = match results.as_ref().map(|r| &r.config) {
            Some(c) if !c.is_null() => c.clone(),
            _ => config_file["config"].clone(),
        };
        let replay = results
            .as_ref()
            .map(|r| r.replay.clone())
            .filter(|r| !r.is_empty())
            .or(config_file["replay"].as_str().map(str::to_string));
        let hpath = dir.join("history.jsonl");
        let history = if hpath.is_file() {
            let (h, w) =
                read_jsonl_path(&hpath).with_context(|| format!("read {}", hpath.display()))?;
            warnings.extend(w);
            Some(h)
        } else {
            warnings.push("no history.jsonl: the run stopped before its workload started".into());
            None
        };
        let messages = read_messages(dir, results.as_ref(), &mut warnings);
        Ok(RunData {
            dir: dir.to_path_buf(),
            messages,
            nodes: node_files(dir, results.as_ref()),
            results,
            config,
            replay,
            history,
            warnings,
        })
    }

    pub fn name(&self) -> String {
        self.results
            .as_ref()
            .map(|r| r.name.as_str())
            .or(self.config["name"].as_str())
            .unwrap_or("run")
            .to_string()
    }

    /// The run's statistics: recomputed from the history when there is one (so that an
    /// `analyze` or an old run agree with what is drawn), else `results.json`'s.
    pub fn stats(&self) -> Option<Stats> {
        match &self.history {
            Some(h) => Some(stats::compute(h)),
            None => self.results.as_ref().and_then(|r| r.stats.clone()),
        }
    }

    /// The checkers' verdicts, empty when there are no results.
    pub fn checkers(&self) -> &[CheckerResult] {
        self.results.as_ref().map_or(&[], |r| &r.checkers)
    }
}

/// `messages.jsonl` with `results.json`'s account of it; a file that cannot be read is a
/// warning (the rest of the report stands without the diagram).
fn read_messages(
    dir: &Path,
    results: Option<&StoredResults>,
    warnings: &mut Vec<String>,
) -> Option<MessagesFile> {
    use sunder_maelstrom::messages;
    let path = dir.join(messages::FILE);
    if !path.is_file() {
        return None;
    }
    let log = match messages::read(&path, messages::MAX_RECORDS as usize) {
        Ok(log) => log,
        Err(e) => {
            warnings.push(e.to_string());
            return None;
        }
    };
    warnings.extend(log.warnings);
    let summary = results
        .and_then(|r| r.extra.get("message_log"))
        .and_then(|v| match serde_json::from_value(v.clone()) {
            Ok(s) => Some(s),
            Err(e) => {
                warnings.push(format!("results.json's message_log: {e}"));
                None
            }
        });
    Some(MessagesFile {
        records: log.records,
        unread: log.unread,
        summary,
    })
}

fn read_json_opt(p: &Path) -> anyhow::Result<Option<Value>> {
    match std::fs::read_to_string(p) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("parse {}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", p.display())),
    }
}

/// The nodes named in `results.json` plus any with files under `nodes/`, each with the
/// log, event stream and dump that exist.
fn node_files(dir: &Path, results: Option<&StoredResults>) -> Vec<NodeFiles> {
    let mut ids: std::collections::BTreeSet<String> = results
        .map(|r| r.nodes.keys().cloned().collect())
        .unwrap_or_default();
    if let Ok(rd) = std::fs::read_dir(dir.join("nodes")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(id) = name.strip_suffix(".log") {
                ids.insert(id.to_string());
            }
        }
    }
    ids.into_iter()
        .map(|id| {
            let files = ["log", "events.jsonl", "dump.json"]
                .iter()
                .map(|ext| format!("nodes/{id}.{ext}"))
                .filter(|f| dir.join(f).is_file())
                .collect();
            NodeFiles { id, files }
        })
        .collect()
}
