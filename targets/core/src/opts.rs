//! The `--opt KEY=VALUE` settings a protocol accepts, and one parser for them.
//!
//! Each protocol lists its keys ([`crate::Protocol::accepted_opts`]); the node checks its
//! own command line against the list before the core is built, and the controller checks
//! a test's options against the same list before any node starts, so the two cannot
//! disagree about what a setting means.

use std::fmt;

/// What a setting's value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptKind {
    /// A whole number (`0` and up).
    Number,
    /// `on` or `off`.
    OnOff,
}

impl fmt::Display for OptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OptKind::Number => "a whole number",
            OptKind::OnOff => "on or off",
        })
    }
}

/// One accepted key.
#[derive(Debug, Clone, Copy)]
pub struct OptSpec {
    pub key: &'static str,
    pub kind: OptKind,
}

/// A setting the protocol does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptError {
    #[error("unknown --opt `{key}` (this target accepts: {accepted})")]
    Unknown { key: String, accepted: String },
    #[error("--opt {key}={value}: `{key}` takes {kind} (this target accepts: {accepted})")]
    BadValue {
        key: String,
        value: String,
        kind: OptKind,
        accepted: String,
    },
}

fn names(accepted: &[OptSpec]) -> String {
    if accepted.is_empty() {
        return "no options".into();
    }
    accepted
        .iter()
        .map(|s| s.key)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses one value as `kind` says: a number, or `on`/`off` as 1/0.
pub fn parse(kind: OptKind, value: &str) -> Option<u64> {
    match kind {
        OptKind::Number => value.parse().ok(),
        OptKind::OnOff => match value {
            "on" => Some(1),
            "off" => Some(0),
            _ => None,
        },
    }
}

/// Checks every setting against the accepted keys and their kinds.
pub fn check<'a>(
    accepted: &[OptSpec],
    opts: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), OptError> {
    for (key, value) in opts {
        let Some(spec) = accepted.iter().find(|s| s.key == key) else {
            return Err(OptError::Unknown {
                key: key.into(),
                accepted: names(accepted),
            });
        };
        if parse(spec.kind, value).is_none() {
            return Err(OptError::BadValue {
                key: key.into(),
                value: value.into(),
                kind: spec.kind,
                accepted: names(accepted),
            });
        }
    }
    Ok(())
}

/// A setting's value for a core, or `default` when it is not set. The runtime checked the
/// settings before building the core, so a value that does not parse here is a broken
/// invariant (a core reading a key it does not list, or a test building a bad config).
pub fn value(accepted: &[OptSpec], config: &crate::CoreConfig, key: &str, default: u64) -> u64 {
    let spec = accepted
        .iter()
        .find(|s| s.key == key)
        .unwrap_or_else(|| panic!("--opt {key} is read but not in the accepted list"));
    match config.opt(key) {
        None => default,
        Some(v) => {
            parse(spec.kind, v).unwrap_or_else(|| panic!("--opt {key}={v}: expected {}", spec.kind))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[OptSpec] = &[
        OptSpec {
            key: "batch",
            kind: OptKind::OnOff,
        },
        OptSpec {
            key: "election_ms",
            kind: OptKind::Number,
        },
    ];

    #[test]
    fn unknown_keys_and_bad_values_name_the_key_and_the_accepted_ones() {
        assert_eq!(check(A, [("batch", "off"), ("election_ms", "30")]), Ok(()));
        let e = check(A, [("batch", "of")]).unwrap_err().to_string();
        assert!(e.contains("batch=of") && e.contains("on or off"), "{e}");
        assert!(e.contains("batch, election_ms"), "{e}");
        let e = check(A, [("elction_ms", "3")]).unwrap_err().to_string();
        assert!(
            e.contains("`elction_ms`") && e.contains("batch, election_ms"),
            "{e}"
        );
        let e = check(A, [("election_ms", "-1")]).unwrap_err().to_string();
        assert!(e.contains("a whole number"), "{e}");
        let e = check(&[], [("x", "1")]).unwrap_err().to_string();
        assert!(e.contains("no options"), "{e}");
    }
}
