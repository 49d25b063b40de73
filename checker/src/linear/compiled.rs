//! A model compiled on demand into integers: states and sets of states interned, and a
//! transition table filled the first time the search asks for a (configuration, op class).
//!
//! A configuration is the set of states a nondeterministic model may be in (Porcupine's
//! power-set construction); a deterministic model only ever makes singletons. Ops with the
//! same model op (say, every `read 3`) share one class, so the table stays small.

use crate::model::Model;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::hash::BuildHasher;

/// Sentinels in the transition table.
pub(crate) const UNSEEN: u32 = u32::MAX;
pub(crate) const REFUSED: u32 = u32::MAX - 1;
const NO_STATE: u32 = u32::MAX;

/// Above this many table cells the table is dropped and every step computed afresh: a
/// model with that many states rarely meets the same (state, op) twice (kv appends make a
/// new string each time), and a hash map lookup per candidate would cost more than the
/// step. (64 KiB: the register models of the etcd corpus need a few hundred cells; a kv
/// partition outgrows any table within its first thousand states, so a bigger one only
/// adds to the peak.)
const DENSE_LIMIT: usize = 1 << 14;
/// Entries of the cache of recent transitions a sparse model keeps (48 KiB).
const RECENT: usize = 1 << 12;

pub(crate) struct Compiled<'m, M: Model> {
    pub model: &'m M,
    /// Each state once; `by_hash` finds the first state with a hash, `same_hash` the next.
    states: Vec<M::State>,
    by_hash: FxHashMap<u64, u32>,
    same_hash: Vec<u32>,
    /// Every configuration's states back to back: configuration `c` is
    /// `members[start[c]..start[c + 1]]` (one allocation for all, not one each).
    members: Vec<u32>,
    start: Vec<u32>,
    /// Sets of two or more states; a singleton's configuration is `single[state]`.
    config_ids: FxHashMap<Box<[u32]>, u32>,
    single: Vec<u32>,
    pub classes: Vec<M::Op>,
    /// Per class: the model says it never changes the state.
    pub read_only: Vec<bool>,
    dense: Vec<u32>,
    sparse: bool,
    /// Once sparse: the last transitions seen, direct-mapped by (configuration, class). A
    /// search tries the same few ops from the same configuration again and again; a hit
    /// saves building a state (a kv append copies the whole string) only to find it
    /// interned already.
    recent: Vec<(u32, u32, u32)>,
    scratch: Vec<M::State>,
    ids: Vec<u32>,
    /// Rough heap held by states, configurations and the table, for the memory budget.
    pub bytes: usize,
    /// Rendered length summed over the sampled states, and how many were sampled.
    sampled: (usize, usize),
}

impl<'m, M: Model> Compiled<'m, M> {
    /// A compiled model for `classes` (the distinct ops of one partition). Configuration 0
    /// is the initial state.
    pub fn new(model: &'m M, classes: Vec<M::Op>) -> Self {
        let read_only = classes.iter().map(|op| model.is_read_only(op)).collect();
        let mut c = Compiled {
            model,
            read_only,
            states: Vec::new(),
            by_hash: FxHashMap::default(),
            same_hash: Vec::new(),
            members: Vec::new(),
            start: vec![0],
            config_ids: FxHashMap::default(),
            single: Vec::new(),
            classes,
            dense: Vec::new(),
            sparse: false,
            recent: Vec::new(),
            scratch: Vec::new(),
            ids: Vec::new(),
            bytes: 0,
            sampled: (0, 0),
        };
        let s = c.intern_state(model.init());
        c.intern_config(&[s]);
        c
    }

    fn intern_state(&mut self, s: M::State) -> u32 {
        let h = FxBuildHasher.hash_one(&s);
        let first = *self.by_hash.get(&h).unwrap_or(&NO_STATE);
        let mut at = first;
        while at != NO_STATE {
            if self.states[at as usize] == s {
                return at;
            }
            at = self.same_hash[at as usize];
        }
        let id = self.states.len() as u32;
        // The state, its heap, and its three index entries. The heap is estimated by the
        // length of the state's rendering (a model-agnostic measure), sampled: rendering
        // every state of a big model (a whole key-value store) would cost more than the
        // search itself.
        if id < 16 || id % 64 == 0 {
            self.sampled.0 += self.model.render(&s).len();
            self.sampled.1 += 1;
        }
        self.bytes += std::mem::size_of::<M::State>() + self.sampled.0 / self.sampled.1 + 24;
        self.states.push(s);
        self.same_hash.push(first);
        self.single.push(NO_STATE);
        self.by_hash.insert(h, id);
        id
    }

    fn intern_config(&mut self, ids: &[u32]) -> u32 {
        if let [s] = ids {
            let c = self.single[*s as usize];
            if c != NO_STATE {
                return c;
            }
            let c = self.new_config(ids);
            self.single[*s as usize] = c;
            return c;
        }
        if let Some(&id) = self.config_ids.get(ids) {
            return id;
        }
        let id = self.new_config(ids);
        self.config_ids.insert(ids.into(), id);
        id
    }

    fn new_config(&mut self, ids: &[u32]) -> u32 {
        let id = self.start.len() as u32 - 1;
        // Stored twice when it has several states (list and index).
        self.bytes += if ids.len() == 1 {
            8
        } else {
            2 * (16 + 4 * ids.len())
        };
        self.members.extend_from_slice(ids);
        self.start.push(self.members.len() as u32);
        if !self.sparse {
            let n = self.classes.len();
            if self.dense.len() + n > DENSE_LIMIT {
                self.bytes -= 4 * self.dense.len();
                self.dense = Vec::new();
                self.sparse = true;
                self.recent = vec![(UNSEEN, 0, 0); RECENT];
                self.bytes += 12 * RECENT;
            } else {
                self.dense.resize(self.dense.len() + n, UNSEEN);
                self.bytes += 4 * n;
            }
        }
        id
    }

    fn bounds(&self, config: u32) -> (usize, usize) {
        let c = config as usize;
        (self.start[c] as usize, self.start[c + 1] as usize)
    }

    /// The states of `config`.
    fn config(&self, config: u32) -> &[u32] {
        let (from, to) = self.bounds(config);
        &self.members[from..to]
    }

    /// The configuration after `class` from `config`, or [`REFUSED`].
    #[inline]
    pub fn step(&mut self, config: u32, class: u32) -> u32 {
        if !self.dense.is_empty() {
            let at = config as usize * self.classes.len() + class as usize;
            let t = self.dense[at];
            if t != UNSEEN {
                return t;
            }
            let t = self.compute(config, class);
            // (compute may have just given up the table)
            if let Some(slot) = self.dense.get_mut(at) {
                *slot = t;
            }
            return t;
        }
        if self.recent.is_empty() {
            return self.compute(config, class);
        }
        let at =
            (config.wrapping_mul(0x9E37_79B1) ^ class.wrapping_mul(0x85EB_CA77)) as usize % RECENT;
        let (c, k, t) = self.recent[at];
        if c == config && k == class {
            return t;
        }
        let t = self.compute(config, class);
        self.recent[at] = (config, class, t);
        t
    }

    fn compute(&mut self, config: u32, class: u32) -> u32 {
        let mut ids = std::mem::take(&mut self.ids);
        ids.clear();
        if self.read_only[class as usize] {
            // A read keeps the states that accept it: no new state to build or intern.
            let op = &self.classes[class as usize];
            let states = self.config(config);
            ids.extend(
                states
                    .iter()
                    .filter(|&&s| self.model.accepts(&self.states[s as usize], op)),
            );
            let t = if ids.is_empty() {
                REFUSED
            } else if ids.len() == states.len() {
                config
            } else {
                self.intern_config(&ids)
            };
            self.ids = ids;
            return t;
        }
        let (from, to) = self.bounds(config);
        for i in from..to {
            let s = self.members[i];
            let mut next = std::mem::take(&mut self.scratch);
            next.clear();
            self.model.step(
                &self.states[s as usize],
                &self.classes[class as usize],
                &mut next,
            );
            for n in next.drain(..) {
                let id = self.intern_state(n);
                ids.push(id);
            }
            self.scratch = next;
        }
        let t = if ids.is_empty() {
            REFUSED
        } else {
            ids.sort_unstable();
            ids.dedup();
            self.intern_config(&ids)
        };
        self.ids = ids;
        t
    }

    /// The configuration, for people: one state, or `{a | b}` for several.
    pub fn render(&self, config: u32) -> String {
        let c = self.config(config);
        if c.len() == 1 {
            return self.model.render(&self.states[c[0] as usize]);
        }
        let parts: Vec<String> = c
            .iter()
            .map(|&s| self.model.render(&self.states[s as usize]))
            .collect();
        format!("{{{}}}", parts.join(" | "))
    }

    /// Why `class` cannot take effect in `config` (one reason per state when there are
    /// several).
    pub fn refusal(&self, config: u32, class: u32) -> String {
        let op = &self.classes[class as usize];
        let reasons: Vec<String> = (self.config(config).iter())
            .map(|&s| self.model.refusal(&self.states[s as usize], op))
            .collect();
        reasons.join("; ")
    }
}
