//! Everything a report reads from a run directory, loaded once.
//!
//! `results.json` and `config.json` are read as plain JSON rather than as the controller's
//! types: a report must still render for a run the harness could not finish (no results,
//! no history) and for runs written by older versions.

use anyhow::Context;
use serde_json::Value;
use std::path::{Path, PathBuf};
use sunder_checker::History;
use sunder_checker::format::jsonl::read_jsonl_path;
use sunder_checker::stats::{self, Stats};

/// One node's files, as paths relative to the run directory (what the page links to).
#[derive(Debug, Clone)]
pub struct NodeFiles {
    pub id: String,
    pub files: Vec<String>,
}

pub struct RunData {
    pub dir: PathBuf,
    /// `results.json`, or `Null` when the run never wrote one.
    pub results: Value,
    /// The run's configuration: `results.json`'s, else `config.json`'s.
    pub config: Value,
    pub replay: Option<String>,
    /// `None` when there is no `history.jsonl`.
    pub history: Option<History>,
    /// Problems met while reading (a truncated history line, a missing file).
    pub warnings: Vec<String>,
    pub nodes: Vec<NodeFiles>,
}

impl RunData {
    pub fn load(dir: &Path) -> anyhow::Result<RunData> {
        let results = read_json_opt(&dir.join("results.json"))?.unwrap_or(Value::Null);
        let config_file = read_json_opt(&dir.join("config.json"))?.unwrap_or(Value::Null);
        if results.is_null() && config_file.is_null() {
            anyhow::bail!(
                "{} holds neither results.json nor config.json: not a run directory",
                dir.display()
            );
        }
        let config = match &results["config"] {
            Value::Null => config_file["config"].clone(),
            c => c.clone(),
        };
        let replay = results["replay"]
            .as_str()
            .or(config_file["replay"].as_str())
            .map(str::to_string);
        let mut warnings = Vec::new();
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
        Ok(RunData {
            dir: dir.to_path_buf(),
            nodes: node_files(dir, &results),
            results,
            config,
            replay,
            history,
            warnings,
        })
    }

    pub fn name(&self) -> String {
        self.results["name"]
            .as_str()
            .or(self.config["name"].as_str())
            .unwrap_or("run")
            .to_string()
    }

    /// The run's statistics: recomputed from the history when there is one (so that an
    /// `analyze` or an old run agree with what is drawn), else `results.json`'s.
    pub fn stats(&self) -> Option<Value> {
        match &self.history {
            Some(h) => Some(stats_value(&stats::compute(h))),
            None => Some(self.results["stats"].clone()).filter(|s| !s.is_null()),
        }
    }
}

fn stats_value(s: &Stats) -> Value {
    serde_json::to_value(s).expect("stats serialise")
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
fn node_files(dir: &Path, results: &Value) -> Vec<NodeFiles> {
    let mut ids: std::collections::BTreeSet<String> = results["nodes"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
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
