//! The same parsed histories, translated for porcupine-rs (sunder checks them as they are).
//!
//! Shared by the criterion bench and the memory example (`#[path]`-included). Both checkers
//! see the same problem: `fail` ops left out (they never happened), `info` ops open to the
//! end (porcupine-rs: a return after everything else with an unknown result, which its
//! models accept anywhere), operations ordered by position in the history.

#![allow(dead_code)]

use porcupine_rs::{Model as PModel, Operation};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use sunder_checker::{Event, EventType, History, Process};

/// Pairs events into porcupine-rs operations.
pub fn to_porcupine<M: PModel>(
    h: &History,
    mut make: impl FnMut(&Event, Option<&Event>) -> M::Op,
) -> Vec<Operation<M>> {
    let mut open: HashMap<Process, (usize, &Event)> = HashMap::new();
    let mut ops = Vec::new();
    let end = h.len() as i64 + 1;
    let mut push = |inv: &Event, call: usize, done: Option<(usize, &Event)>| {
        ops.push(Operation {
            client_id: None,
            call_time: call as i64,
            return_time: done.map_or(end + call as i64, |(pos, _)| pos as i64),
            op: make(inv, done.map(|(_, e)| e)),
            metadata: None,
        })
    };
    for (pos, e) in h.events.iter().enumerate() {
        if !e.is_client() {
            continue;
        }
        match e.kind {
            EventType::Invoke => {
                open.insert(e.process, (pos, e));
            }
            EventType::Ok => {
                let (call, inv) = open.remove(&e.process).expect("paired");
                push(inv, call, Some((pos, e)));
            }
            EventType::Fail => {
                open.remove(&e.process);
            }
            EventType::Info => {
                let (call, inv) = open.remove(&e.process).expect("paired");
                push(inv, call, None);
            }
        }
    }
    let mut rest: Vec<_> = open.into_values().collect();
    rest.sort_by_key(|&(call, _)| call);
    for (call, inv) in rest {
        push(inv, call, None);
    }
    ops
}

// ---- etcd: a cas register starting at nil ----------------------------------------------

const NIL: i64 = i64::MIN;

#[derive(Clone, Debug)]
pub enum EtcdOp {
    Read(i64),
    ReadUnknown,
    Write(i64),
    Cas { from: i64, to: i64, unknown: bool },
}

#[derive(Clone, Debug)]
pub struct PEtcd;

impl PModel for PEtcd {
    type State = i64;
    type Op = EtcdOp;
    type Metadata = ();
    fn init() -> i64 {
        NIL
    }
    fn step(s: &i64, op: &EtcdOp) -> (bool, i64) {
        match *op {
            EtcdOp::Read(v) => (v == *s, *s),
            EtcdOp::ReadUnknown => (true, *s),
            EtcdOp::Write(v) => (true, v),
            EtcdOp::Cas { from, to, unknown } => {
                if from == *s {
                    (true, to)
                } else {
                    (unknown, *s)
                }
            }
        }
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(NIL)
}

pub fn etcd_ops(h: &History) -> Vec<Operation<PEtcd>> {
    to_porcupine(h, |inv, done| match (inv.f.as_str(), done) {
        ("read", Some(d)) => EtcdOp::Read(int(&d.value)),
        ("read", None) => EtcdOp::ReadUnknown,
        ("write", _) => EtcdOp::Write(int(&inv.value)),
        ("cas", d) => EtcdOp::Cas {
            from: int(&inv.value[0]),
            to: int(&inv.value[1]),
            unknown: d.is_none(),
        },
        (f, _) => panic!("etcd op {f}"),
    })
}

// ---- kv: per key (partitioned) and the whole store (one partition) ---------------------

#[derive(Clone, Debug)]
pub enum KvOp {
    Get { key: String, value: Option<String> },
    Put { key: String, value: String },
    Append { key: String, value: String },
}

impl KvOp {
    fn key(&self) -> &str {
        match self {
            KvOp::Get { key, .. } | KvOp::Put { key, .. } | KvOp::Append { key, .. } => key,
        }
    }
}

fn kv_op(inv: &Event, done: Option<&Event>) -> KvOp {
    let key = inv.key.clone().expect("kv ops have keys");
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    match inv.f.as_str() {
        "get" => KvOp::Get {
            key,
            value: done.map(|d| s(&d.value)),
        },
        "put" => KvOp::Put {
            key,
            value: s(&inv.value),
        },
        "append" => KvOp::Append {
            key,
            value: s(&inv.value),
        },
        f => panic!("kv op {f}"),
    }
}

/// Per key, as porcupine-rs's own kv test model.
#[derive(Clone, Debug)]
pub struct PKv;

impl PModel for PKv {
    type State = String;
    type Op = KvOp;
    type Metadata = ();
    fn init() -> String {
        String::new()
    }
    fn step(s: &String, op: &KvOp) -> (bool, String) {
        match op {
            KvOp::Get { value: Some(v), .. } => (v == s, s.clone()),
            KvOp::Get { value: None, .. } => (true, s.clone()),
            KvOp::Put { value, .. } => (true, value.clone()),
            KvOp::Append { value, .. } => (true, format!("{s}{value}")),
        }
    }
    fn partition_operations(history: &[Operation<Self>]) -> Vec<Vec<Operation<Self>>> {
        let mut by_key: HashMap<String, Vec<Operation<Self>>> = HashMap::new();
        for op in history {
            by_key
                .entry(op.op.key().to_string())
                .or_default()
                .push(op.clone());
        }
        by_key.into_values().collect()
    }
}

/// The whole store in one partition, as porcupine-rs's `KvNoPartitionModel`.
#[derive(Clone, Debug)]
pub struct PKvWhole;

impl PModel for PKvWhole {
    type State = BTreeMap<String, String>;
    type Op = KvOp;
    type Metadata = ();
    fn init() -> Self::State {
        BTreeMap::new()
    }
    fn step(s: &Self::State, op: &KvOp) -> (bool, Self::State) {
        match op {
            KvOp::Get {
                key,
                value: Some(v),
            } => (s.get(key).map_or(v.is_empty(), |cur| cur == v), s.clone()),
            KvOp::Get { value: None, .. } => (true, s.clone()),
            KvOp::Put { key, value } => {
                let mut n = s.clone();
                n.insert(key.clone(), value.clone());
                (true, n)
            }
            KvOp::Append { key, value } => {
                let mut n = s.clone();
                n.entry(key.clone()).or_default().push_str(value);
                (true, n)
            }
        }
    }
}

pub fn kv_ops<M: PModel<Op = KvOp>>(h: &History) -> Vec<Operation<M>> {
    to_porcupine(h, kv_op)
}
