//! Command templates: text with `{placeholder}`s, parsed once when the spec is loaded so
//! that a misspelt placeholder is an error with its line, not a literal `{nmae}` passed to
//! the node. `{{` and `}}` stand for literal braces.

use super::context::{Member, NodeContext};
use std::fmt::Write as _;

/// What a placeholder stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    Id,
    Index,
    Ip,
    ClientPort,
    PeerPort,
    DataDir,
    Log,
    Run,
    Members,
}

impl Var {
    pub const ALL: [Var; 9] = [
        Var::Id,
        Var::Index,
        Var::Ip,
        Var::ClientPort,
        Var::PeerPort,
        Var::DataDir,
        Var::Log,
        Var::Run,
        Var::Members,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Var::Id => "id",
            Var::Index => "index",
            Var::Ip => "ip",
            Var::ClientPort => "client_port",
            Var::PeerPort => "peer_port",
            Var::DataDir => "data_dir",
            Var::Log => "log",
            Var::Run => "run",
            Var::Members => "members",
        }
    }

    /// Whether it describes one member, so that the `member` template may use it.
    pub fn is_per_member(self) -> bool {
        matches!(
            self,
            Var::Id | Var::Index | Var::Ip | Var::ClientPort | Var::PeerPort
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Var(Var),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text`; `allowed` says which placeholders this template may use.
    pub fn parse(text: &str, allowed: &[Var]) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(['{', '}']) {
            lit.push_str(&rest[..i]);
            let (c, after) = (rest.as_bytes()[i], &rest[i + 1..]);
            if after.as_bytes().first() == Some(&c) {
                lit.push(c as char);
                rest = &after[1..];
                continue;
            }
            if c == b'}' {
                return Err(format!(
                    "a lone `}}` in {text:?} (write `}}}}` for a literal brace)"
                ));
            }
            let Some(end) = after.find('}') else {
                return Err(format!(
                    "an unclosed `{{` in {text:?} (write `{{{{` for a literal brace)"
                ));
            };
            let name = &after[..end];
            let var = Var::ALL
                .into_iter()
                .find(|v| v.name() == name)
                .ok_or_else(|| {
                    format!(
                        "unknown placeholder {{{name}}}; known: {}",
                        Var::ALL.map(|v| format!("{{{}}}", v.name())).join(" ")
                    )
                })?;
            if !allowed.contains(&var) {
                return Err(format!(
                    "placeholder {{{name}}} cannot be used here; allowed: {}",
                    allowed
                        .iter()
                        .map(|v| format!("{{{}}}", v.name()))
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
            }
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(&mut lit)));
            }
            pieces.push(Piece::Var(var));
            rest = &after[end + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Ok(Template { pieces })
    }

    pub fn uses(&self, var: Var) -> bool {
        self.pieces.contains(&Piece::Var(var))
    }

    /// The text for one node; `members` is the member list already rendered.
    pub fn render(&self, ctx: &NodeContext, members: &str) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Var(Var::DataDir) => out.push_str(&ctx.data_dir.to_string_lossy()),
                Piece::Var(Var::Log) => out.push_str(&ctx.log.to_string_lossy()),
                Piece::Var(Var::Run) => out.push_str(&ctx.run_dir.to_string_lossy()),
                Piece::Var(Var::Members) => out.push_str(members),
                Piece::Var(v) => member_var(&mut out, *v, ctx.me()),
            }
        }
        out
    }

    /// The text for one entry of the member list.
    pub fn render_member(&self, m: &Member) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Var(v) => member_var(&mut out, *v, m),
            }
        }
        out
    }
}

fn member_var(out: &mut String, v: Var, m: &Member) {
    let _ = match v {
        Var::Id => write!(out, "{}", m.id),
        Var::Index => write!(out, "{}", m.index),
        Var::Ip => write!(out, "{}", m.ip),
        Var::ClientPort => write!(out, "{}", m.client_port),
        Var::PeerPort => write!(out, "{}", m.peer_port),
        other => unreachable!("{{{}}} is checked out of member templates", other.name()),
    };
}
