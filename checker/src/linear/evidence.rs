//! Evidence for people: the longest linearizable prefix replayed with the state after each
//! step, and every operation that could come next with the reason the model refused it.

use super::compiled::{Compiled, REFUSED};
use super::report::{Attempt, Counterexample, LinearizabilityReport, Step};
use super::search::SearchOp;
use crate::model::Model;
use crate::verdict::Verdict;
use std::time::Duration;

/// Replays the longest prefix and asks, of every operation that could come next in real
/// time, why it cannot.
pub(crate) fn counterexample<M: Model>(
    c: &mut Compiled<'_, M>,
    ops: &[SearchOp],
    ids: &[usize],
    prefix: &[u32],
) -> Counterexample {
    let mut config = 0u32;
    let mut longest_prefix = Vec::with_capacity(prefix.len());
    let mut placed = vec![false; ops.len()];
    for &op in prefix {
        config = c.step(config, ops[op as usize].class);
        debug_assert_ne!(config, REFUSED);
        placed[op as usize] = true;
        longest_prefix.push(Step {
            op: ids[op as usize],
            state: c.render(config),
        });
    }
    // Candidates: unplaced ops invoked before the first unplaced op returned.
    let first_ret = ops
        .iter()
        .zip(&placed)
        .filter(|&(_, &done)| !done)
        .filter_map(|(o, _)| o.ret)
        .min()
        .unwrap_or(u64::MAX);
    let mut stuck = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        if placed[i] || o.call > first_ret {
            continue;
        }
        let after = c.step(config, o.class);
        let reason = if after == REFUSED {
            c.refusal(config, o.class)
        } else {
            format!(
                "allowed (state would become {}), but no linearization continues from there",
                c.render(after)
            )
        };
        stuck.push(Attempt {
            op: ids[i],
            state: c.render(config),
            reason,
        });
    }
    // Refusals first: they are the contradiction a person is looking for.
    stuck.sort_by_key(|a| a.reason.starts_with("allowed"));
    Counterexample {
        longest_prefix,
        state: c.render(config),
        stuck,
    }
}

/// The one line a person reads first.
pub(crate) fn summarize(
    r: &LinearizabilityReport,
    undecided: usize,
    skipped: usize,
    timeout: Option<Duration>,
) -> String {
    match r.verdict {
        Verdict::Valid => format!(
            "linearizable: {} operations in {} partition{} ({})",
            r.ops,
            r.partitions_total,
            if r.partitions_total == 1 { "" } else { "s" },
            r.model
        ),
        Verdict::Invalid => {
            let Some(p) = r.partitions.iter().find(|p| p.verdict == Verdict::Invalid) else {
                return "not linearizable".to_string();
            };
            let whose = match &p.key {
                Some(k) => format!("key {k}"),
                None => "the history".to_string(),
            };
            let Some(ce) = &p.counterexample else {
                return format!("{whose} is not linearizable");
            };
            let first = ce.stuck.first().map_or(String::new(), |a| {
                let op = &p.ops[a.op];
                format!(": {} by process {} ({})", op.f, op.process, a.reason)
            });
            let rest = match skipped {
                0 => String::new(),
                n => format!(" ({n} other partitions left unchecked once this one failed)"),
            };
            format!(
                "{whose} is not linearizable: after {} operations in order the state is {} and \
                 none of the {} operations that could come next fits{first}{rest}",
                ce.longest_prefix.len(),
                ce.state,
                ce.stuck.len()
            )
        }
        Verdict::Unknown => match timeout {
            _ if r.interrupted => format!(
                "unknown: interrupted with {undecided} of {} partitions undecided",
                r.partitions_total
            ),
            Some(t) if r.timed_out => format!(
                "unknown: the time budget of {t:?} ran out with {undecided} of {} partitions undecided",
                r.partitions_total
            ),
            _ => format!(
                "unknown: {undecided} of {} partitions undecided",
                r.partitions_total
            ),
        },
    }
}
