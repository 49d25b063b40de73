//! The verdict every checker gives, and how several combine.

use serde::{Deserialize, Serialize};
use std::fmt;

/// `valid`, `invalid` or `unknown` (the checker ran out of time or could not decide;
/// never a guess). Several verdicts combine as invalid > unknown > valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
}

impl Verdict {
    /// The combination of two verdicts: invalid > unknown > valid.
    pub fn and(self, other: Verdict) -> Verdict {
        use Verdict::*;
        match (self, other) {
            (Invalid, _) | (_, Invalid) => Invalid,
            (Unknown, _) | (_, Unknown) => Unknown,
            _ => Valid,
        }
    }

    /// Combines any number of verdicts; no verdict at all is valid.
    pub fn all(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        verdicts.into_iter().fold(Verdict::Valid, Verdict::and)
    }

    /// The process exit code of the design brief: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Unknown => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Verdict::*;
    use super::*;

    #[test]
    fn combination_order() {
        assert_eq!(Verdict::all([]), Valid);
        assert_eq!(Verdict::all([Valid, Unknown]), Unknown);
        assert_eq!(Verdict::all([Unknown, Invalid, Valid]), Invalid);
        assert_eq!(Valid.and(Valid), Valid);
    }
}
