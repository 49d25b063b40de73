//! The bank checker (Jepsen's): money is neither made nor lost, and no account goes
//! below zero, in any read of all balances.
//!
//! ```text
//!  transfer invoke/ok/fail/info ──► counts (a transfer moves money between two accounts)
//!  ok balances reads ─────────────► per read: every account present, each an integer,
//!                                    │         their sum, any below zero
//!                                    ├─ wrong total: the sum is not accounts × initial
//!                                    ├─ negative:    an account below zero
//!                                    └─ incomplete:  an account of the bank missing
//! ```
//!
//! Invalid if any read shows a wrong total, a negative balance or a missing account.
//! Unknown if no read succeeded (nothing was checked) or events could not be understood
//! (they are listed, never skipped). The bank's accounts are every account a read or a
//! transfer named; each starts at `initial`, so the total is their number times it.
//!
//! A read is an `ok` event with `f` `balances` (sunder's) or `read` with no key
//! (Jepsen's), whose value is an object account → balance.

use crate::history::{EventType, History};
use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// How many bad reads the report lists; the count is always exact.
pub const DISPLAY_CAP: usize = 32;

/// One read that broke the bank's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRead {
    /// Index of the read's `ok` event.
    pub index: u64,
    /// When it completed (ns since the start of the test).
    pub time: u64,
    pub node: Option<String>,
    /// The sum of the balances it showed.
    pub total: i64,
    /// Accounts it showed below zero, with their balances.
    pub negative: BTreeMap<String, i64>,
    /// Accounts of the bank it did not show.
    pub missing: Vec<String>,
}

/// Transfers by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfers {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

/// What the bank checker found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankReport {
    pub verdict: Verdict,
    /// Every account the history named.
    pub accounts: Vec<String>,
    /// What each read must sum to.
    pub expected_total: i64,
    /// Successful reads checked.
    pub reads: u64,
    pub transfers: Transfers,
    /// Reads with a wrong total, a negative balance or a missing account (the first
    /// [`DISPLAY_CAP`]); `bad_read_count` counts them all.
    pub bad_reads: Vec<BadRead>,
    pub bad_read_count: u64,
    /// The smallest and largest total any read showed.
    pub totals: Option<(i64, i64)>,
    /// Events the checker could not understand, by index and why.
    pub malformed: Vec<String>,
    /// One line per reason the verdict is not valid.
    pub reasons: Vec<String>,
}

impl BankReport {
    /// One line for the run's summary.
    pub fn summary(&self) -> String {
        if self.reasons.is_empty() {
            format!(
                "{} reads of {} accounts, each summing to {} with none below zero; {} transfers ok",
                self.reads,
                self.accounts.len(),
                self.expected_total,
                self.transfers.ok
            )
        } else {
            self.reasons.join("; ")
        }
    }
}

/// A successful read of the balances, as the history has it.
struct Read<'a> {
    index: u64,
    time: u64,
    node: Option<&'a str>,
    balances: &'a serde_json::Map<String, Value>,
}

fn is_read(f: &str, key: Option<&str>) -> bool {
    f == "balances" || (f == "read" && key.is_none())
}

/// Account names as the history spells them: strings, or numbers (Jepsen's).
fn account_name(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Checks a bank history whose accounts each start at `initial`.
pub fn check(history: &History, initial: i64) -> BankReport {
    let mut malformed = Vec::new();
    let mut accounts: BTreeSet<String> = BTreeSet::new();
    let mut transfers = Transfers::default();
    let mut reads: Vec<Read> = Vec::new();
    for e in history.client_events() {
        if e.f == "transfer" {
            if e.kind == EventType::Invoke {
                let ends = ["from", "to"].map(|k| e.value.get(k).and_then(account_name));
                match ends {
                    [Some(a), Some(b)] => {
                        accounts.insert(a);
                        accounts.insert(b);
                    }
                    _ => malformed.push(format!(
                        "event {}: a transfer without from and to accounts: {}",
                        e.index, e.value
                    )),
                }
            }
            match e.kind {
                EventType::Ok => transfers.ok += 1,
                EventType::Fail => transfers.fail += 1,
                EventType::Info => transfers.info += 1,
                EventType::Invoke => {}
            }
        } else if is_read(&e.f, e.key.as_deref()) && e.kind == EventType::Ok {
            match &e.value {
                Value::Object(m) => {
                    accounts.extend(m.keys().cloned());
                    reads.push(Read {
                        index: e.index,
                        time: e.time,
                        node: e.node.as_deref(),
                        balances: m,
                    });
                }
                v => malformed.push(format!(
                    "event {}: a read whose value is not an object of balances: {v}",
                    e.index
                )),
            }
        }
    }

    let expected_total = initial.saturating_mul(accounts.len() as i64);
    let mut bad_reads = Vec::new();
    let mut bad_read_count = 0u64;
    let mut totals: Option<(i64, i64)> = None;
    for &Read {
        index,
        time,
        node,
        balances,
    } in &reads
    {
        let mut total = 0i64;
        let mut negative = BTreeMap::new();
        let mut unreadable = false;
        for (account, v) in balances {
            match v.as_i64() {
                Some(b) => {
                    total = total.saturating_add(b);
                    if b < 0 {
                        negative.insert(account.clone(), b);
                    }
                }
                None => {
                    unreadable = true;
                    malformed.push(format!(
                        "event {index}: the balance of {account} is not an integer: {v}"
                    ));
                }
            }
        }
        if unreadable {
            continue;
        }
        totals = Some(totals.map_or((total, total), |(lo, hi)| (lo.min(total), hi.max(total))));
        let missing: Vec<String> = accounts
            .iter()
            .filter(|a| !balances.contains_key(*a))
            .cloned()
            .collect();
        if total != expected_total || !negative.is_empty() || !missing.is_empty() {
            bad_read_count += 1;
            if bad_reads.len() < DISPLAY_CAP {
                bad_reads.push(BadRead {
                    index,
                    time,
                    node: node.map(String::from),
                    total,
                    negative,
                    missing,
                });
            }
        }
    }

    let mut reasons = Vec::new();
    if bad_read_count > 0 {
        let wrong = bad_reads
            .iter()
            .filter(|r| r.total != expected_total)
            .count();
        let neg = bad_reads.iter().filter(|r| !r.negative.is_empty()).count();
        let first = &bad_reads[0];
        reasons.push(format!(
            "{bad_read_count} of {} reads broke the bank (of the first {}: {wrong} with a total \
             other than {expected_total}, {neg} with an account below zero); the first, event \
             {}, summed to {}",
            reads.len(),
            bad_reads.len(),
            first.index,
            first.total
        ));
    }
    if reads.is_empty() {
        reasons.push("no read of the balances succeeded: nothing was checked".into());
    }
    if !malformed.is_empty() {
        reasons.push(format!(
            "{} events could not be understood (the first: {})",
            malformed.len(),
            malformed[0]
        ));
    }
    let verdict = if bad_read_count > 0 {
        Verdict::Invalid
    } else if reasons.is_empty() {
        Verdict::Valid
    } else {
        Verdict::Unknown
    };
    BankReport {
        verdict,
        accounts: accounts.into_iter().collect(),
        expected_total,
        reads: reads.len() as u64,
        transfers,
        bad_reads,
        bad_read_count,
        totals,
        malformed,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, Process};
    use serde_json::json;

    fn ev(index: u64, kind: EventType, process: u64, f: &str, value: Value) -> Event {
        Event {
            index,
            time: index * 10,
            kind,
            process: Process::Client(process),
            f: f.into(),
            key: None,
            value,
            error: None,
            node: Some("n1".into()),
            committed: None,
        }
    }

    fn transfer(i: u64, kind: EventType, from: &str, to: &str, amount: i64) -> Event {
        ev(
            i,
            kind,
            1,
            "transfer",
            json!({"from": from, "to": to, "amount": amount}),
        )
    }

    fn read(i: u64, kind: EventType, value: Value) -> Event {
        ev(i, kind, 2, "balances", value)
    }

    #[test]
    fn conserved_totals_are_valid() {
        let h = History::new(vec![
            transfer(0, EventType::Invoke, "a0", "a1", 3),
            read(1, EventType::Invoke, Value::Null),
            transfer(2, EventType::Ok, "a0", "a1", 3),
            read(3, EventType::Ok, json!({"a0": 7, "a1": 13})),
            transfer(4, EventType::Invoke, "a1", "a0", 20),
            transfer(5, EventType::Fail, "a1", "a0", 20),
        ]);
        let r = check(&h, 10);
        assert_eq!(r.verdict, Verdict::Valid, "{r:?}");
        assert_eq!(r.expected_total, 20);
        assert_eq!(r.reads, 1);
        assert_eq!((r.transfers.ok, r.transfers.fail), (1, 1));
        assert_eq!(r.totals, Some((20, 20)));
    }

    #[test]
    fn a_wrong_total_a_negative_balance_or_a_missing_account_is_invalid() {
        for (value, what) in [
            (json!({"a0": 7, "a1": 14}), "total"),
            (json!({"a0": -1, "a1": 21}), "negative"),
            (json!({"a0": 20}), "missing"),
        ] {
            let h = History::new(vec![
                transfer(0, EventType::Invoke, "a0", "a1", 3),
                transfer(1, EventType::Ok, "a0", "a1", 3),
                read(2, EventType::Invoke, Value::Null),
                read(3, EventType::Ok, value),
            ]);
            let r = check(&h, 10);
            assert_eq!(r.verdict, Verdict::Invalid, "{what}: {r:?}");
            assert_eq!(r.bad_read_count, 1);
            let bad = &r.bad_reads[0];
            assert_eq!(bad.index, 3);
            match what {
                "total" => assert_eq!(bad.total, 21),
                "negative" => assert_eq!(bad.negative.get("a0"), Some(&-1)),
                _ => assert_eq!(bad.missing, vec!["a1".to_string()]),
            }
            assert!(r.summary().contains("broke the bank"), "{}", r.summary());
        }
    }

    #[test]
    fn without_a_read_or_with_garbage_the_verdict_is_unknown() {
        let none = History::new(vec![
            transfer(0, EventType::Invoke, "a0", "a1", 3),
            transfer(1, EventType::Ok, "a0", "a1", 3),
            read(2, EventType::Invoke, Value::Null),
            read(3, EventType::Info, Value::Null),
        ]);
        let r = check(&none, 10);
        assert_eq!(r.verdict, Verdict::Unknown);
        assert!(r.summary().contains("nothing was checked"));

        let garbage = History::new(vec![
            read(0, EventType::Invoke, Value::Null),
            read(1, EventType::Ok, json!({"a0": 10, "a1": 10})),
            read(2, EventType::Invoke, Value::Null),
            read(3, EventType::Ok, json!([10, 10])),
            read(4, EventType::Invoke, Value::Null),
            read(5, EventType::Ok, json!({"a0": "ten", "a1": 10})),
        ]);
        let r = check(&garbage, 10);
        assert_eq!(r.verdict, Verdict::Unknown, "{r:?}");
        assert_eq!(r.malformed.len(), 2);
        // A broken read still wins over garbage elsewhere.
        let mut events = garbage.events.clone();
        events.push(read(6, EventType::Invoke, Value::Null));
        events.push(read(7, EventType::Ok, json!({"a0": 10, "a1": 11})));
        assert_eq!(check(&History::new(events), 10).verdict, Verdict::Invalid);
    }

    #[test]
    fn jepsen_reads_with_numbered_accounts_count() {
        let mut r = ev(1, EventType::Ok, 2, "read", json!({"0": 60, "1": 40}));
        r.key = None;
        let h = History::new(vec![ev(0, EventType::Invoke, 2, "read", Value::Null), r]);
        let rep = check(&h, 50);
        assert_eq!(rep.verdict, Verdict::Valid, "{rep:?}");
        assert_eq!(rep.accounts, vec!["0".to_string(), "1".to_string()]);
    }
}
