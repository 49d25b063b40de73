//! The spec file as written (serde, with spans) and its checks into a [`TargetSpec`].

use super::template::{Template, Var};
use super::{
    FileTemplate, FixedPorts, NET_BACKENDS, NodeTemplate, ReadyCheck, Requires, SpecError,
    StopSpec, TargetSpec,
};
use nix::sys::signal::Signal;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;
use sunder_nemesis::FaultKind;
use sunder_workloads::{AdapterConfig, HttpConfig};
use toml::Spanned;

type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: S<String>,
    description: Option<String>,
    ports: RawPorts,
    node: RawNode,
    ready: Option<S<RawReady>>,
    #[serde(default)]
    stop: RawStop,
    #[serde(default)]
    requires: RawRequires,
    client: Option<S<toml::Table>>,
    #[serde(default)]
    files: Vec<RawFile>,
}

/// `[[files]]`: a config file rendered into each node's data directory before it starts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    path: S<String>,
    text: S<String>,
    member: Option<S<String>>,
    separator: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPorts {
    client: u16,
    peer: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    program: S<String>,
    #[serde(default)]
    args: Vec<S<String>>,
    member: Option<S<String>>,
    separator: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReady {
    tcp: Option<bool>,
    http_get: Option<S<String>>,
    timeout: Option<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStop {
    signal: Option<S<String>>,
    grace: Option<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRequires {
    net: Option<Vec<S<String>>>,
    #[serde(default)]
    faults: BTreeMap<String, Vec<S<String>>>,
    #[serde(default)]
    twins: bool,
}

/// Line numbers of byte offsets in one text.
struct Lines<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Lines<'_> {
    fn line(&self, at: usize) -> usize {
        let at = at.min(self.text.len());
        self.text.as_bytes()[..at]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    /// The dotted key written at `at`, best effort: toml's errors carry a span, not a key.
    /// The table header in force there, plus the `key =` on that line if there is one.
    fn key_at(&self, at: usize) -> String {
        let at = at.min(self.text.len());
        let start = self.text[..at].rfind('\n').map_or(0, |i| i + 1);
        let line = self.text[start..].lines().next().unwrap_or("").trim();
        let header = |l: &str| {
            l.starts_with('[')
                .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
        };
        if let Some(h) = header(line) {
            return h;
        }
        let table = self.text[..start]
            .lines()
            .rev()
            .find_map(|l| header(l.trim()))
            .unwrap_or_default();
        let key = line
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_string())
            .filter(|k| !k.is_empty() && !k.starts_with('#'))
            .unwrap_or_default();
        match (table.is_empty(), key.is_empty()) {
            (_, true) => table,
            (true, false) => key,
            (false, false) => format!("{table}.{key}"),
        }
    }

    fn err(&self, span: Option<Range<usize>>, key: &str, message: impl Into<String>) -> SpecError {
        SpecError {
            file: self.path.to_path_buf(),
            line: span.map(|s| self.line(s.start)),
            key: (!key.is_empty()).then(|| key.to_string()),
            message: message.into(),
        }
    }

    fn template(&self, s: &S<String>, key: &str, allowed: &[Var]) -> Result<Template, SpecError> {
        Template::parse(s.get_ref(), allowed).map_err(|m| self.err(Some(s.span()), key, m))
    }

    fn duration(
        &self,
        s: &Option<S<String>>,
        key: &str,
        default: std::time::Duration,
    ) -> Result<std::time::Duration, SpecError> {
        match s {
            None => Ok(default),
            Some(s) => humantime::parse_duration(s.get_ref()).map_err(|e| {
                self.err(
                    Some(s.span()),
                    key,
                    format!(
                        "bad duration {:?}: {e} (write e.g. \"500ms\" or \"5s\")",
                        s.get_ref()
                    ),
                )
            }),
        }
    }
}

/// A `[client]` table that cannot be used: the dotted key under `[client]` when known,
/// and why.
pub(super) struct ClientError {
    pub key: Option<String>,
    pub message: String,
}

/// The adapter settings in a `[client]` table. The HTTP adapter's table is checked by its
/// own reader, whose errors name the key (`read.value.json`) for the line lookup.
pub(super) fn adapter(table: &toml::Table) -> Result<AdapterConfig, ClientError> {
    let mut t = table.clone();
    t.entry("adapter")
        .or_insert_with(|| toml::Value::String("sunder-json".into()));
    if t.get("adapter").and_then(toml::Value::as_str) == Some("http") {
        let json = serde_json::to_value(&t).map_err(|e| ClientError {
            key: None,
            message: e.to_string(),
        })?;
        return HttpConfig::from_json(&json)
            .map(AdapterConfig::Http)
            .map_err(|e| ClientError {
                key: (!e.key.is_empty()).then_some(e.key),
                message: e.message,
            });
    }
    toml::Value::Table(t)
        .try_into::<AdapterConfig>()
        .map_err(|e| ClientError {
            key: None,
            message: e.message().to_string(),
        })
}

/// The line of every key under `[client]`, dotted (`read.ok.body`); in an array of
/// tables, the first element's keys stand for all. Best effort: empty when the text does
/// not parse (its error is reported elsewhere).
pub(super) fn client_key_lines(text: &str) -> BTreeMap<String, usize> {
    use toml::de::{DeTable, DeValue};
    fn walk(
        v: &DeValue<'_>,
        at: &str,
        line: &dyn Fn(usize) -> usize,
        out: &mut BTreeMap<String, usize>,
    ) {
        match v {
            DeValue::Table(t) => {
                for (k, v) in t.iter() {
                    let key = if at.is_empty() {
                        k.get_ref().to_string()
                    } else {
                        format!("{at}.{}", k.get_ref())
                    };
                    out.entry(key.clone())
                        .or_insert_with(|| line(k.span().start));
                    walk(v.get_ref(), &key, line, out);
                }
            }
            DeValue::Array(items) => {
                for i in items.iter() {
                    walk(i.get_ref(), at, line, out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    let at = Lines {
        text,
        path: Path::new(""),
    };
    if let Ok(doc) = DeTable::parse(text)
        && let Some(client) = doc.get_ref().get("client")
    {
        walk(client.get_ref(), "", &|o| at.line(o), &mut out);
    }
    out
}

/// A [`ClientError`] as a spec error: the line of the key at fault, or of the longest
/// part of it that is written (a key whose value is wrong, the table of a missing one).
pub(super) fn client_error(
    path: &Path,
    e: ClientError,
    lines: &BTreeMap<String, usize>,
    table_line: Option<usize>,
) -> SpecError {
    let line = e.key.as_deref().and_then(|k| {
        let parts: Vec<&str> = k.split('.').collect();
        (1..=parts.len())
            .rev()
            .find_map(|n| lines.get(&parts[..n].join(".")).copied())
    });
    SpecError {
        file: path.to_path_buf(),
        line: line.or(table_line),
        key: Some(e.key.map_or("client".into(), |k| format!("client.{k}"))),
        message: e.message,
    }
}

/// Each `[[files]]` entry: a path that stays inside the data directory (relative, no `..`,
/// named once), its text a template like the command line's, its member list rendered with
/// its own `member`/`separator` or else the node's.
fn check_files(
    at: &Lines<'_>,
    raw: &[RawFile],
    node_member: &Option<Template>,
    node_separator: &Option<String>,
    member_vars: &[Var],
) -> Result<Vec<FileTemplate>, SpecError> {
    use std::path::Component;
    let mut seen = std::collections::BTreeSet::new();
    let mut files = Vec::with_capacity(raw.len());
    for f in raw {
        let p = Path::new(f.path.get_ref());
        let inside = !f.path.get_ref().trim().is_empty()
            && p.components().all(|c| matches!(c, Component::Normal(_)));
        if !inside {
            return Err(at.err(
                Some(f.path.span()),
                "files.path",
                format!(
                    "{:?} must be a relative path inside the node's data directory (no `..`, not absolute)",
                    f.path.get_ref()
                ),
            ));
        }
        if !seen.insert(p.to_path_buf()) {
            return Err(at.err(
                Some(f.path.span()),
                "files.path",
                format!("{:?} is rendered twice", f.path.get_ref()),
            ));
        }
        let text = at.template(&f.text, "files.text", &Var::ALL)?;
        let member = match &f.member {
            Some(m) => Some(at.template(m, "files.member", member_vars)?),
            None => node_member.clone(),
        };
        if text.uses(Var::Members) && member.is_none() {
            return Err(at.err(
                Some(f.text.span()),
                "files.member",
                "{members} is used but neither this file nor [node] has a `member` template",
            ));
        }
        files.push(FileTemplate {
            path: p.to_path_buf(),
            text,
            member,
            separator: f
                .separator
                .clone()
                .or_else(|| node_separator.clone())
                .unwrap_or_else(|| ",".into()),
        });
    }
    Ok(files)
}

pub(super) fn check(text: &str, path: &Path) -> Result<TargetSpec, SpecError> {
    let at = Lines { text, path };
    let raw: RawSpec = toml::from_str(text).map_err(|e| {
        let key = e.span().map(|s| at.key_at(s.start)).unwrap_or_default();
        at.err(e.span(), &key, e.message().trim())
    })?;

    let name = raw.name.get_ref().trim();
    if name.is_empty() {
        return Err(at.err(Some(raw.name.span()), "name", "must not be empty"));
    }

    let node_vars: Vec<Var> = Var::ALL.to_vec();
    let member_vars: Vec<Var> = Var::ALL.into_iter().filter(|v| v.is_per_member()).collect();
    let program = at.template(&raw.node.program, "node.program", &node_vars)?;
    if raw.node.program.get_ref().trim().is_empty() {
        return Err(at.err(
            Some(raw.node.program.span()),
            "node.program",
            "must not be empty",
        ));
    }
    let args = raw
        .node
        .args
        .iter()
        .map(|a| at.template(a, "node.args", &node_vars))
        .collect::<Result<Vec<_>, _>>()?;
    let env = raw
        .node
        .env
        .iter()
        .map(|(k, v)| {
            Ok((
                k.clone(),
                at.template(v, &format!("node.env.{k}"), &node_vars)?,
            ))
        })
        .collect::<Result<Vec<_>, SpecError>>()?;
    let member = raw
        .node
        .member
        .as_ref()
        .map(|m| at.template(m, "node.member", &member_vars))
        .transpose()?;
    let uses_members = program.uses(Var::Members)
        || args.iter().any(|a| a.uses(Var::Members))
        || env.iter().any(|(_, v)| v.uses(Var::Members));
    if uses_members && member.is_none() {
        let span = raw
            .node
            .args
            .iter()
            .find(|a| a.get_ref().contains("{members}"))
            .map(|a| a.span());
        return Err(at.err(
            span,
            "node.member",
            "{members} is used but there is no `member` template to render each member \
             with (e.g. member = \"{id}=http://{ip}:{peer_port}\")",
        ));
    }

    let files = check_files(&at, &raw.files, &member, &raw.node.separator, &member_vars)?;

    let ready_span = raw.ready.as_ref().map(|r| r.span());
    let raw_ready = raw.ready.map(Spanned::into_inner).unwrap_or_default();
    let ready = ReadyCheck {
        tcp: raw_ready.tcp.unwrap_or(true),
        http_get: match &raw_ready.http_get {
            Some(p) if !p.get_ref().starts_with('/') => {
                return Err(at.err(
                    Some(p.span()),
                    "ready.http_get",
                    format!("{:?} must be a path starting with /", p.get_ref()),
                ));
            }
            p => p.as_ref().map(|p| p.get_ref().clone()),
        },
        timeout: at.duration(
            &raw_ready.timeout,
            "ready.timeout",
            std::time::Duration::from_secs(30),
        )?,
    };
    if !ready.tcp && ready.http_get.is_none() {
        return Err(at.err(
            ready_span,
            "ready",
            "no readiness check: set tcp = true, http_get = \"/path\", or both",
        ));
    }

    let signal = match &raw.stop.signal {
        None => Signal::SIGTERM,
        Some(s) => {
            let name = s.get_ref().to_ascii_uppercase();
            let name = if name.starts_with("SIG") {
                name
            } else {
                format!("SIG{name}")
            };
            Signal::from_str(&name).map_err(|_| {
                at.err(
                    Some(s.span()),
                    "stop.signal",
                    format!(
                        "unknown signal {:?} (e.g. \"SIGTERM\", \"SIGINT\")",
                        s.get_ref()
                    ),
                )
            })?
        }
    };
    let stop = StopSpec {
        signal,
        grace: at.duration(
            &raw.stop.grace,
            "stop.grace",
            std::time::Duration::from_secs(5),
        )?,
    };

    let backend = |s: &S<String>, key: &str| -> Result<String, SpecError> {
        if NET_BACKENDS.contains(&s.get_ref().as_str()) {
            Ok(s.get_ref().clone())
        } else {
            Err(at.err(
                Some(s.span()),
                key,
                format!(
                    "unknown network backend {:?}; known: {}",
                    s.get_ref(),
                    NET_BACKENDS.join(", ")
                ),
            ))
        }
    };
    let net = match &raw.requires.net {
        None => NET_BACKENDS.iter().map(|s| s.to_string()).collect(),
        Some(list) => list
            .iter()
            .map(|s| backend(s, "requires.net"))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let mut faults = BTreeMap::new();
    for (b, list) in &raw.requires.faults {
        if !NET_BACKENDS.contains(&b.as_str()) {
            let span = list.first().map(|s| s.span());
            return Err(at.err(
                span,
                &format!("requires.faults.{b}"),
                format!(
                    "unknown network backend {b:?}; known: {}",
                    NET_BACKENDS.join(", ")
                ),
            ));
        }
        let kinds = list
            .iter()
            .map(|f| {
                FaultKind::from_str(f.get_ref()).map_err(|e| {
                    at.err(
                        Some(f.span()),
                        &format!("requires.faults.{b}"),
                        e.to_string(),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        faults.insert(b.clone(), kinds);
    }

    let (client_table, client_line) = match &raw.client {
        Some(t) => (t.get_ref().clone(), Some(at.line(t.span().start))),
        None => (toml::Table::new(), None),
    };
    let client_lines = client_key_lines(text);
    let client =
        adapter(&client_table).map_err(|e| client_error(path, e, &client_lines, client_line))?;

    Ok(TargetSpec {
        path: path.to_path_buf(),
        name: name.to_string(),
        description: raw.description,
        ports: FixedPorts {
            client: raw.ports.client,
            peer: raw.ports.peer,
        },
        node: NodeTemplate {
            program,
            args,
            env,
            member,
            separator: raw.node.separator.clone().unwrap_or_else(|| ",".into()),
        },
        ready,
        stop,
        requires: Requires {
            net,
            faults,
            twins: raw.requires.twins,
        },
        client,
        files,
        client_table,
        client_line,
        client_lines,
    })
}
