//! The seed lists of `--seeds`: `7`, `1..10` (both ends included), `1..=10` (the same) and
//! comma-separated mixes of them (`1..5,9,20..22`).

use std::fmt;

/// Longest sweep accepted: a typo such as `1..1000000000` should be an error, not a
/// controller that starts a billion runs.
pub const MAX_SEEDS: u64 = 1_000_000;

/// An ordered list of seeds, without repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedList(Vec<u64>);

impl SeedList {
    /// `count` seeds from `first` on.
    pub fn consecutive(first: u64, count: u64) -> Result<SeedList, String> {
        if count == 0 {
            return Err("--test-count must be at least 1".into());
        }
        if count > MAX_SEEDS {
            return Err(format!("--test-count {count}: at most {MAX_SEEDS} runs"));
        }
        let last = first
            .checked_add(count - 1)
            .ok_or_else(|| format!("seeds {first} and {count} after it overflow 64 bits"))?;
        Ok(SeedList((first..=last).collect()))
    }

    pub fn seeds(&self) -> &[u64] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::str::FromStr for SeedList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for part in s.split(',').map(str::trim) {
            let num = |t: &str| {
                t.trim().parse::<u64>().map_err(|_| {
                    format!("--seeds {s:?}: {t:?} is not a seed (write 7, 1..10 or 1..5,9)")
                })
            };
            let (a, b) = match part.split_once("..") {
                Some((a, b)) => (num(a)?, num(b.strip_prefix('=').unwrap_or(b))?),
                None => {
                    let n = num(part)?;
                    (n, n)
                }
            };
            if a > b {
                return Err(format!("--seeds {s:?}: {a}..{b} runs backwards"));
            }
            if (b - a) as u128 + out.len() as u128 >= MAX_SEEDS as u128 {
                return Err(format!("--seeds {s:?}: at most {MAX_SEEDS} runs"));
            }
            for seed in a..=b {
                if seen.insert(seed) {
                    out.push(seed);
                }
            }
        }
        Ok(SeedList(out))
    }
}

impl fmt::Display for SeedList {
    /// Runs of consecutive seeds are folded: `1..5,9`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut i = 0;
        let mut first = true;
        while i < self.0.len() {
            let mut j = i;
            while j + 1 < self.0.len() && self.0[j + 1] == self.0[j] + 1 {
                j += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if i == j {
                write!(f, "{}", self.0[i])?;
            } else {
                write!(f, "{}..{}", self.0[i], self.0[j])?;
            }
            i = j + 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_include_both_ends_and_fold_back() {
        let l: SeedList = "1..5, 9,20..=22,3".parse().unwrap();
        assert_eq!(l.seeds(), [1, 2, 3, 4, 5, 9, 20, 21, 22]);
        assert_eq!(l.to_string(), "1..5,9,20..22");
        assert_eq!("7".parse::<SeedList>().unwrap().seeds(), [7]);
        assert_eq!(SeedList::consecutive(10, 3).unwrap().seeds(), [10, 11, 12]);
    }

    #[test]
    fn bad_lists_say_why() {
        for (bad, why) in [
            ("5..1", "backwards"),
            ("x", "not a seed"),
            ("1..", "not a seed"),
            ("0..2000000", "at most"),
        ] {
            let e = bad.parse::<SeedList>().unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(SeedList::consecutive(u64::MAX, 2).is_err());
        assert!(SeedList::consecutive(1, 0).is_err());
    }
}
