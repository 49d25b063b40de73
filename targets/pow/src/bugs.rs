//! The planted bugs, switched on with `--bug NAME`. Each turns off one check of what a
//! peer sends (blocks this node mines itself are built right either way):
//!
//! | bug | what it breaks | the forger that exploits it (forge.rs) | what reports it |
//! |---|---|---|---|
//! | `skip-hash-check` | the proof-of-work check compares a block's hash with itself, so any nonce passes | `forge-hash`: blocks whose hash misses the target | chain checker: a hash above its target |
//! | `no-double-spend-check` | received blocks' transfers are applied without the nonce and balance checks | `forge-spend`: a nonce spent again, an overdraft | chain checker: a coin spent twice, a balance below zero |
//! | `accept-future-blocks` | no bound on how far ahead of the local clock a timestamp may be | `forge-future`: blocks stamped an hour ahead | chain checker: a block from the future |
//! | `longest-not-heaviest` | fork choice by height instead of cumulative work | `forge-light`: a longer chain of easier blocks, by a time warp from genesis | agreement checker: confirmations reversed |

/// Names accepted by `--bug`.
pub const KNOWN: &[&str] = &[
    "skip-hash-check",
    "no-double-spend-check",
    "accept-future-blocks",
    "longest-not-heaviest",
];

/// Which planted bugs are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    pub skip_hash_check: bool,
    pub no_double_spend_check: bool,
    pub accept_future_blocks: bool,
    pub longest_not_heaviest: bool,
}

impl Bugs {
    pub fn from_names(names: &[String]) -> Self {
        let on = |n: &str| names.iter().any(|b| b == n);
        Bugs {
            skip_hash_check: on("skip-hash-check"),
            no_double_spend_check: on("no-double-spend-check"),
            accept_future_blocks: on("accept-future-blocks"),
            longest_not_heaviest: on("longest-not-heaviest"),
        }
    }
}
