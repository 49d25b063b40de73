//! Thousands of small random histories, each checked by sunder and by porcupine-rs: the
//! verdicts must agree.
//!
//! Histories come from a simulated execution (each op takes effect at a random point
//! between its invocation and completion, so the history is linearizable), with fail and
//! info completions and unfinished operations; half of them have one read result
//! perturbed, which usually makes them non-linearizable. The translation to porcupine-rs
//! is written here independently of the checker: `fail` ops are left out (they never
//! happened) and `info` ops return after everything else with an unknown result.

use porcupine_rs::{Model as PModel, Operation};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::HashMap;
use sunder_checker::linear::{CheckOptions, check};
use sunder_checker::model::ModelSpec;
use sunder_checker::{Event, EventType, History, Process, Verdict};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Register,
    CasRegister,
    KvStrings,
    KvRegisters,
}

struct Pending {
    process: u64,
    f: &'static str,
    key: Option<String>,
    input: Value,
    /// `Some(output)` once it took effect; `Err(())` when it cannot (a cas whose compare
    /// failed: it completes as `fail`).
    effect: Option<Result<Value, ()>>,
}

fn ev(h: &[Event], kind: EventType, p: &Pending, value: Value) -> Event {
    Event {
        index: h.len() as u64,
        time: h.len() as u64 * 100,
        kind,
        process: Process::Client(p.process),
        f: p.f.to_string(),
        key: p.key.clone(),
        value,
        error: None,
        node: None,
        committed: None,
    }
}

fn apply(kind: Kind, state: &mut HashMap<Option<String>, Value>, p: &Pending) -> Result<Value, ()> {
    let init = if kind == Kind::KvStrings {
        json!("")
    } else {
        Value::Null
    };
    let s = state.entry(p.key.clone()).or_insert(init);
    match p.f {
        "read" | "get" => Ok(s.clone()),
        "write" | "put" => {
            *s = p.input.clone();
            Ok(p.input.clone())
        }
        "append" => {
            *s = json!(format!(
                "{}{}",
                s.as_str().unwrap(),
                p.input.as_str().unwrap()
            ));
            Ok(p.input.clone())
        }
        "cas" => {
            if *s == p.input[0] {
                *s = p.input[1].clone();
                Ok(p.input.clone())
            } else {
                Err(())
            }
        }
        f => unreachable!("{f}"),
    }
}

fn generate(rng: &mut ChaCha8Rng, kind: Kind) -> History {
    let procs = rng.random_range(1..=4usize);
    let n_ops = rng.random_range(1..=10usize);
    let keys = match kind {
        Kind::Register | Kind::CasRegister => 1,
        _ => rng.random_range(1..=3),
    };
    let mut h: Vec<Event> = Vec::new();
    let mut slots: Vec<Option<Pending>> = (0..procs).map(|_| None).collect();
    let mut ids: Vec<u64> = (0..procs as u64).collect();
    let mut next_id = procs as u64;
    let mut state = HashMap::new();
    let mut invoked = 0;
    loop {
        let idle: Vec<usize> = (0..procs).filter(|&i| slots[i].is_none()).collect();
        let busy: Vec<usize> = (0..procs).filter(|&i| slots[i].is_some()).collect();
        if invoked == n_ops && (busy.is_empty() || rng.random_bool(0.05)) {
            break; // whatever is still in flight stays unfinished
        }
        let roll = rng.random_range(0..3);
        if (roll == 0 || busy.is_empty()) && invoked < n_ops && !idle.is_empty() {
            let i = idle[rng.random_range(0..idle.len())];
            let v = rng.random_range(0..3i64);
            let key = match kind {
                Kind::Register | Kind::CasRegister => None,
                _ => Some(format!("k{}", rng.random_range(0..keys))),
            };
            let (f, input) = match (kind, rng.random_range(0..3)) {
                (Kind::KvStrings, 0) => ("get", Value::Null),
                (Kind::KvStrings, 1) => ("put", json!(["a", "b"][rng.random_range(0..2)])),
                (Kind::KvStrings, _) => ("append", json!(["x", "y"][rng.random_range(0..2)])),
                (_, 0) => ("read", Value::Null),
                (Kind::CasRegister | Kind::KvRegisters, 1) => (
                    "cas",
                    json!([rng.random_range(0..3i64), rng.random_range(0..3i64)]),
                ),
                _ => ("write", json!(v)),
            };
            let p = Pending {
                process: ids[i],
                f,
                key,
                input: input.clone(),
                effect: None,
            };
            h.push(ev(&h, EventType::Invoke, &p, input));
            slots[i] = Some(p);
            invoked += 1;
        } else if !busy.is_empty() {
            let i = busy[rng.random_range(0..busy.len())];
            let p = slots[i].as_mut().unwrap();
            if p.effect.is_none() && rng.random_bool(0.6) {
                p.effect = Some(apply(kind, &mut state, p));
                continue;
            }
            let p = slots[i].take().unwrap();
            let read = matches!(p.f, "read" | "get");
            match &p.effect {
                Some(Ok(out)) if rng.random_bool(0.85) => {
                    let out = if read { out.clone() } else { p.input.clone() };
                    h.push(ev(&h, EventType::Ok, &p, out));
                }
                Some(Err(())) => h.push(ev(&h, EventType::Fail, &p, p.input.clone())),
                None if rng.random_bool(0.5) => {
                    h.push(ev(&h, EventType::Fail, &p, p.input.clone()))
                }
                _ => {
                    // Indeterminate: as in Jepsen, the process gets a fresh id.
                    h.push(ev(&h, EventType::Info, &p, p.input.clone()));
                    ids[i] = next_id;
                    next_id += 1;
                }
            }
        }
    }
    if rng.random_bool(0.5) {
        let reads: Vec<usize> = (0..h.len())
            .filter(|&i| h[i].kind == EventType::Ok && matches!(h[i].f.as_str(), "read" | "get"))
            .collect();
        if !reads.is_empty() {
            let i = reads[rng.random_range(0..reads.len())];
            h[i].value = match kind {
                Kind::KvStrings => json!(["", "x", "ay", "b"][rng.random_range(0..4)]),
                _ => [Value::Null, json!(0), json!(1), json!(2)][rng.random_range(0..4)].clone(),
            };
        }
    }
    History::new(h)
}

// ---- porcupine-rs side ----------------------------------------------------------------

#[derive(Clone, Debug)]
enum POp {
    Read {
        key: String,
        value: Option<Value>,
        unknown: bool,
    },
    Write {
        key: String,
        value: Value,
    },
    Append {
        key: String,
        value: String,
    },
    Cas {
        key: String,
        from: Value,
        to: Value,
        unknown: bool,
    },
}

fn key_of(op: &POp) -> &str {
    match op {
        POp::Read { key, .. } | POp::Write { key, .. } | POp::Append { key, .. } => key,
        POp::Cas { key, .. } => key,
    }
}

/// Per-key values as JSON text; a key absent from the state holds its initial value.
/// `STRINGS`: keys start as "" (the kv corpus dialect), else as nil.
#[derive(Clone, Debug)]
struct PKv<const STRINGS: bool>;

type PState = Vec<(String, String)>;

fn lookup(s: &PState, key: &str, init: &str) -> String {
    s.iter()
        .find(|(k, _)| k == key)
        .map_or(init.to_string(), |(_, v)| v.clone())
}

fn store(s: &PState, key: &str, v: String) -> PState {
    let mut s: PState = s.iter().filter(|(k, _)| k != key).cloned().collect();
    s.push((key.to_string(), v));
    s.sort();
    s
}

impl<const STRINGS: bool> PModel for PKv<STRINGS> {
    type State = PState;
    type Op = POp;
    type Metadata = ();

    fn init() -> PState {
        Vec::new()
    }

    fn step(s: &PState, op: &POp) -> (bool, PState) {
        let cur = lookup(s, key_of(op), if STRINGS { "\"\"" } else { "null" });
        match op {
            POp::Read { unknown: true, .. } => (true, s.clone()),
            POp::Read { value, .. } => {
                let v = value.clone().unwrap_or(Value::Null).to_string();
                (v == cur, s.clone())
            }
            POp::Write { key, value } => (true, store(s, key, value.to_string())),
            POp::Append { key, value } => {
                let old: String = serde_json::from_str(&cur).unwrap();
                (true, store(s, key, Value::String(old + value).to_string()))
            }
            POp::Cas {
                key,
                from,
                to,
                unknown,
            } => {
                if serde_json::to_string(from).unwrap() == cur {
                    (true, store(s, key, to.to_string()))
                } else {
                    (*unknown, s.clone())
                }
            }
        }
    }

    fn partition_operations(history: &[Operation<Self>]) -> Vec<Vec<Operation<Self>>> {
        let mut by_key: HashMap<String, Vec<Operation<Self>>> = HashMap::new();
        for op in history {
            by_key
                .entry(key_of(&op.op).to_string())
                .or_default()
                .push(op.clone());
        }
        by_key.into_values().collect()
    }
}

fn porcupine_verdict(h: &History, kind: Kind) -> bool {
    if kind == Kind::KvStrings {
        verdict_with::<true>(h)
    } else {
        verdict_with::<false>(h)
    }
}

fn verdict_with<const STRINGS: bool>(h: &History) -> bool {
    let mut open: HashMap<Process, (usize, &Event)> = HashMap::new();
    let mut ops: Vec<Operation<PKv<STRINGS>>> = Vec::new();
    let end = h.len() as i64 + 1000;
    let mut finish = |inv: &Event, call: usize, done: Option<(usize, &Event)>| {
        let key = inv.key.clone().unwrap_or_default();
        let unknown = done.is_none();
        let op = match inv.f.as_str() {
            "read" | "get" => POp::Read {
                key,
                value: done.map(|(_, e)| e.value.clone()),
                unknown,
            },
            "write" | "put" => POp::Write {
                key,
                value: inv.value.clone(),
            },
            "append" => POp::Append {
                key,
                value: inv.value.as_str().unwrap().to_string(),
            },
            "cas" => POp::Cas {
                key,
                from: inv.value[0].clone(),
                to: inv.value[1].clone(),
                unknown,
            },
            f => unreachable!("{f}"),
        };
        let ret = done.map_or(end + call as i64, |(pos, _)| pos as i64);
        ops.push(Operation {
            client_id: None,
            call_time: call as i64,
            return_time: ret,
            op,
            metadata: None,
        });
    };
    for (pos, e) in h.events.iter().enumerate() {
        match e.kind {
            EventType::Invoke => {
                open.insert(e.process, (pos, e));
            }
            EventType::Ok => {
                let (call, inv) = open.remove(&e.process).unwrap();
                finish(inv, call, Some((pos, e)));
            }
            EventType::Fail => {
                open.remove(&e.process);
            }
            EventType::Info => {
                let (call, inv) = open.remove(&e.process).unwrap();
                finish(inv, call, None);
            }
        }
    }
    for (_, (call, inv)) in open {
        finish(inv, call, None);
    }
    porcupine_rs::check_operations::<PKv<STRINGS>>(&ops)
}

#[test]
fn verdicts_agree_with_porcupine() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let mut counts: HashMap<(Kind, bool), usize> = HashMap::new();
    let kinds = [
        Kind::Register,
        Kind::CasRegister,
        Kind::KvStrings,
        Kind::KvRegisters,
    ];
    let cases = 12_000;
    for case in 0..cases {
        let kind = kinds[case % kinds.len()];
        let h = generate(&mut rng, kind);
        let model = match kind {
            Kind::Register => ModelSpec::Register {
                initial: Value::Null,
            },
            Kind::CasRegister => ModelSpec::CasRegister {
                initial: Value::Null,
            },
            Kind::KvStrings => ModelSpec::Kv { initial: json!("") },
            Kind::KvRegisters => ModelSpec::Kv {
                initial: Value::Null,
            },
        };
        let threads = 1 + case % 2;
        let ours = check(
            &h,
            &model,
            &CheckOptions {
                threads,
                ..CheckOptions::default()
            },
        );
        let theirs = porcupine_verdict(&h, kind);
        let ours_valid = match ours.verdict {
            Verdict::Valid => true,
            Verdict::Invalid => false,
            Verdict::Unknown => panic!("case {case}: unknown without a budget: {}", ours.summary),
        };
        if ours_valid != theirs {
            let lines: Vec<String> = h
                .events
                .iter()
                .map(|e| serde_json::to_string(e).unwrap())
                .collect();
            panic!(
                "case {case} ({kind:?}): sunder says {}, porcupine-rs says {}\n{}\n{}",
                ours.verdict,
                if theirs { "valid" } else { "invalid" },
                ours.summary,
                lines.join("\n")
            );
        }
        *counts.entry((kind, ours_valid)).or_default() += 1;
    }
    for kind in kinds {
        for valid in [true, false] {
            let n = counts.get(&(kind, valid)).copied().unwrap_or(0);
            assert!(
                n >= 400,
                "only {n} {kind:?} histories with valid={valid}: {counts:?}"
            );
        }
    }
}

/// Linearizability is compositional: checking the store whole (`kv-whole`, one partition)
/// must give the per-key verdict on every history, several keys or one.
#[test]
fn whole_store_agrees_with_per_key() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x0e01e);
    let mut counts: HashMap<(Kind, bool), usize> = HashMap::new();
    let mut multi_key_invalid = 0;
    let kinds = [Kind::KvStrings, Kind::KvRegisters];
    for case in 0..4_000 {
        let kind = kinds[case % kinds.len()];
        let h = generate(&mut rng, kind);
        let initial = match kind {
            Kind::KvStrings => json!(""),
            _ => Value::Null,
        };
        let opts = CheckOptions {
            // Knossos' nil-read convention must mean the same in both models.
            nil_read_unconstrained: kind == Kind::KvRegisters && case % 4 == 3,
            ..CheckOptions::default()
        };
        let per_key = check(
            &h,
            &ModelSpec::Kv {
                initial: initial.clone(),
            },
            &opts,
        );
        let whole = check(&h, &ModelSpec::KvWhole { initial }, &opts);
        assert!(whole.partitions_total <= 1, "case {case}: {whole:?}");
        assert_ne!(per_key.verdict, Verdict::Unknown, "case {case}");
        if per_key.verdict != whole.verdict {
            let lines: Vec<String> = h
                .events
                .iter()
                .map(|e| serde_json::to_string(e).unwrap())
                .collect();
            panic!(
                "case {case} ({kind:?}): per key {}, whole store {}\n{}\n{}",
                per_key.verdict,
                whole.verdict,
                whole.summary,
                lines.join("\n")
            );
        }
        let valid = per_key.verdict == Verdict::Valid;
        multi_key_invalid += usize::from(!valid && per_key.partitions_total > 1);
        *counts.entry((kind, valid)).or_default() += 1;
    }
    for kind in kinds {
        for valid in [true, false] {
            let n = counts.get(&(kind, valid)).copied().unwrap_or(0);
            assert!(n >= 300, "only {n} {kind:?} with valid={valid}: {counts:?}");
        }
    }
    assert!(
        multi_key_invalid >= 200,
        "{multi_key_invalid} multi-key invalid"
    );
}
