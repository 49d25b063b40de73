//! Byzantine miners (`--byzantine N --byzantine-mode MODE`): a node given
//! [`sunder_core::Byzantine`] runs the honest core (the same tree, the same checks of what
//! it receives, the same block building) but chooses where it mines and when the blocks it
//! finds reach the honest nodes. Every block it publishes is a valid block: the attack is
//! in the timing and in the choice of parent, never in breaking a rule.
//!
//! | mode | what the attacker does |
//! |---|---|
//! | `withhold` | selfish mining (Eyal and Sirer, 2014): mines on a private chain and publishes only to win races, so that honest work is wasted and its share of the chain exceeds its share of the hash power |
//! | `double-spend` | mines honestly until a transfer it watched is in a public block, then mines a private fork from that block's parent with a conflicting transfer (same payer and nonce, another destination) and releases it once the victim is `confirmations` deep and the fork is heavier: honest nodes reorganise and an acknowledged transfer is reversed |
//! | `forge-hash`, `forge-spend`, `forge-future`, `forge-light` | a forger: publishes blocks that break one rule each, for the planted bugs that let them in (forge.rs has the table) |
//!
//! **Allies.** The Byzantine members form one coalition: a block mined by any of them is
//! *private* until published, sent to the allies only (on the honest `Msg::Block`), and an
//! ally mines on the highest private tip it knows. Each member runs the strategy on its
//! own view; two that publish the same block send a duplicate honest nodes ignore.
//!
//! **Views.** The attacker's tree holds every block it knows. Its *public tip* is the
//! heaviest block honest nodes may know (everything but unpublished coalition blocks; a
//! tie keeps the first seen, as honest fork choice does); its *tip* is where the coalition
//! mines. Only public blocks are persisted, announced (`Msg::Tip`) or given out on
//! `GetBlock` to an honest peer: a restarted attacker has lost its private blocks, as a
//! real one would.
//!
//! **Withhold**, with `lead` = tip height − public tip height, re-evaluated after every
//! input (so after each block found by either side):
//!
//! ```text
//!   public tip higher than the tip        adopt it: tip = public tip (private blocks lost)
//!   public tip on the tip's chain         keep mining in private (lead 0: honest; ≥ 1: ahead)
//!   a competing public branch, lead 0     publish the private blocks: a race (the honest
//!                                         find took a lead of 1 to 0)
//!   a competing public branch, lead 1     publish all: the longer chain wins (a lead of 2
//!                                         fell to 1, or the coalition won a race)
//!   a competing public branch, lead ≥ 2   publish the private blocks up to the public
//!                                         tip's height, keeping the honest nodes in a tie
//! ```
//!
//! **Double-spend.** Victims are transfers this node took into its mempool (gossiped or
//! submitted to it) and then sees in one of the top [`VICTIM_DEPTH`] blocks of the public
//! chain, at the payer's next nonce on the block's parent. The conflict is the same payer,
//! nonce, amount and expiry to another account the node has seen in a transfer (else the
//! same destination with a different memo), signed with the payer's key (every key comes
//! from `key_seed`); its memo is derived from the victim's id, so allies attacking the same
//! victim build the same conflict. The fork's first block carries the conflict; later
//! blocks take the mempool as usual. Released, all at once, when the victim's block is at
//! least `confirmations` deep on the public chain and the fork has strictly more work (an
//! honest node switches on more work only). Given up when the public chain is more than
//! [`GIVE_UP_LAG`] blocks higher than the fork, or the victim's block left the public chain
//! by itself. An ally's private fork that this node sees while idle is joined.

use crate::block::Block;
use crate::core::Pow;
pub use crate::forge::Forgery;
use crate::hash::Hash;
use crate::ledger::Ledger;
use crate::msg::Msg;
use crate::record::Record;
use crate::tx::{Transfer, Tx};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeSet, VecDeque};
use sunder_core::{Byzantine, NodeId, Output};

type Out = Output<Msg, Record>;

/// Names accepted by `--byzantine-mode`.
pub const MODES: &[&str] = &[
    "withhold",
    "double-spend",
    "forge-hash",
    "forge-spend",
    "forge-future",
    "forge-light",
];

/// A double-spender gives up its fork when the public chain is more than this many blocks
/// higher: catching up from further behind is hopeless below half the hash power, and
/// above half a new victim comes soon enough.
pub const GIVE_UP_LAG: u64 = 6;

/// A double-spender looks for victims in this many blocks at the top of the public chain.
pub const VICTIM_DEPTH: u64 = 2;

/// Transfer ids a double-spender remembers having seen (oldest forgotten first).
const SEEN_TXS: usize = 4096;
/// Account names it remembers as destinations for its conflicts.
const ACCOUNTS: usize = 64;
/// Public blocks it remembers having searched for victims.
const SCANNED: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Withhold,
    DoubleSpend,
    /// Forgers (forge.rs).
    Forge(Forgery),
}

impl Mode {
    pub fn parse(name: &str) -> Option<Mode> {
        match name {
            "withhold" => Some(Mode::Withhold),
            "double-spend" => Some(Mode::DoubleSpend),
            "forge-hash" => Some(Mode::Forge(Forgery::Hash)),
            "forge-spend" => Some(Mode::Forge(Forgery::Spend)),
            "forge-future" => Some(Mode::Forge(Forgery::Future)),
            "forge-light" => Some(Mode::Forge(Forgery::Light)),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Withhold => "withhold",
            Mode::DoubleSpend => "double-spend",
            Mode::Forge(Forgery::Hash) => "forge-hash",
            Mode::Forge(Forgery::Spend) => "forge-spend",
            Mode::Forge(Forgery::Future) => "forge-future",
            Mode::Forge(Forgery::Light) => "forge-light",
        }
    }
}

/// What an attacker did since start (in `status` and `dump` under `byzantine`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ByzCounters {
    /// Blocks this node mined and kept private (at least until the end of the step).
    pub private_mined: u64,
    /// Private blocks (its own or its allies') this node sent to the honest nodes.
    pub published: u64,
    /// Private blocks given up: the public chain won (withhold) or the attack was dropped.
    pub abandoned: u64,
    /// Withhold: ties published (a private block against an honest one of its height).
    pub races: u64,
    /// Double-spend: forks started on a victim of its own, and allies' forks joined.
    pub attacks_started: u64,
    pub attacks_joined: u64,
    pub attacks_given_up: u64,
    /// Forks released with the victim `confirmations` deep and more work than the public
    /// chain (whether honest nodes then reorganise is theirs to say; they should).
    pub attacks_succeeded: u64,
    /// Forgers: blocks sent that break a rule (forge-light: published light blocks are
    /// counted in `published`; they break none).
    pub forged: u64,
}

/// A double-spend in progress.
#[derive(Debug, Clone)]
struct Attack {
    /// The parent of the victim's block: where the fork starts.
    base: Hash,
    /// The conflicting transfer the fork's first block carries (`None` for an ally's fork
    /// joined, whose first block exists).
    conflict: Option<Transfer>,
}

/// A Byzantine node's state.
#[derive(Debug)]
pub(crate) struct Attacker {
    pub(crate) mode: Mode,
    allies: BTreeSet<NodeId>,
    /// Member indices of the coalition (this node and its allies).
    coalition: BTreeSet<u32>,
    /// Coalition blocks in the tree the honest nodes have not been given.
    private: BTreeSet<Hash>,
    /// The heaviest public block (the first seen among equals).
    pub(crate) public_tip: Hash,
    /// Where the coalition mines.
    pub(crate) tip: Hash,
    attack: Option<Attack>,
    /// Victims attacked already (transfer ids).
    attacked: BTreeSet<Hash>,
    seen: VecDeque<Hash>,
    seen_set: BTreeSet<Hash>,
    pub(crate) accounts: BTreeSet<String>,
    scanned: VecDeque<Hash>,
    pub(crate) counters: ByzCounters,
}

impl Attacker {
    /// The attacker for `b` (a mode the runtime checked against [`MODES`]), its tips at
    /// `tip` (the recovered best chain's).
    pub(crate) fn new(b: &Byzantine, me: u32, members: &[NodeId], tip: Hash) -> Attacker {
        let mode = Mode::parse(&b.mode).expect("a known mode (the runtime checked it)");
        let allies: BTreeSet<NodeId> = b.allies.iter().cloned().collect();
        let mut coalition: BTreeSet<u32> = members
            .iter()
            .enumerate()
            .filter(|(_, m)| allies.contains(*m))
            .map(|(i, _)| i as u32)
            .collect();
        coalition.insert(me);
        Attacker {
            mode,
            allies,
            coalition,
            private: BTreeSet::new(),
            public_tip: tip,
            tip,
            attack: None,
            attacked: BTreeSet::new(),
            seen: VecDeque::new(),
            seen_set: BTreeSet::new(),
            accounts: BTreeSet::new(),
            scanned: VecDeque::new(),
            counters: ByzCounters::default(),
        }
    }

    /// Whether the member at index `miner` is this node or an ally.
    pub(crate) fn in_coalition(&self, miner: u32) -> bool {
        self.coalition.contains(&miner)
    }

    pub(crate) fn is_ally(&self, node: &str) -> bool {
        self.allies.contains(node)
    }

    /// Remembers a transfer taken into the mempool (a candidate victim).
    pub(crate) fn saw_tx(&mut self, t: &Transfer) {
        if self.mode == Mode::Forge(Forgery::Spend) {
            for a in [&t.from, &t.to] {
                if self.accounts.len() < ACCOUNTS {
                    self.accounts.insert(a.clone());
                }
            }
        }
        if self.mode != Mode::DoubleSpend {
            return;
        }
        let id = Tx::Transfer(t.clone()).id();
        if self.seen_set.insert(id) {
            self.seen.push_back(id);
            if self.seen.len() > SEEN_TXS
                && let Some(old) = self.seen.pop_front()
            {
                self.seen_set.remove(&old);
            }
        }
        for a in [&t.from, &t.to] {
            if self.accounts.len() < ACCOUNTS {
                self.accounts.insert(a.clone());
            }
        }
    }

    pub(crate) fn status(&self) -> Value {
        json!({
            "mode": self.mode.name(),
            "counters": self.counters,
            "public_tip": self.public_tip,
            "tip": self.tip,
            "private": self.private.len(),
            "attacking": self.attack.as_ref().map(|a| a.base),
        })
    }
}

impl Pow {
    pub(crate) fn byz(&self) -> &Attacker {
        self.byz.as_ref().expect("a Byzantine node")
    }

    pub(crate) fn byz_mut(&mut self) -> &mut Attacker {
        self.byz.as_mut().expect("a Byzantine node")
    }

    pub(crate) fn height_of(&self, hash: &Hash) -> u64 {
        self.tree.get(hash).expect("in the tree").height()
    }

    pub(crate) fn work_of(&self, hash: &Hash) -> u128 {
        self.tree.get(hash).expect("in the tree").work
    }

    /// Whether `block`, arriving from `from` (`None`: mined here, or back from a pool with
    /// no sender), is a coalition block honest nodes have not been given.
    pub(crate) fn byz_is_private(&self, block: &Block, from: Option<&str>) -> bool {
        let Some(b) = &self.byz else { return false };
        b.coalition.contains(&block.header.miner) && from.is_none_or(|f| b.is_ally(f))
    }

    /// Sends a block taken into the tree on: a private one to the allies only.
    pub(crate) fn relay(&self, block: &Block, private: bool, from: Option<&str>, out: &mut Out) {
        let msg = Msg::Block(block.clone());
        match &self.byz {
            Some(b) if private => {
                for a in b.allies.iter().filter(|a| Some(a.as_str()) != from) {
                    out.send.push((a.clone(), msg.clone()));
                }
            }
            _ => self.broadcast(&msg, from, out),
        }
    }

    /// Whether `hash` may be given to `to` (a `GetBlock` answer, a tip).
    pub(crate) fn shareable(&self, hash: &Hash, to: &str) -> bool {
        match &self.byz {
            Some(b) => !b.private.contains(hash) || b.is_ally(to),
            None => true,
        }
    }

    /// The tip to announce and to compare peers' tips with.
    pub(crate) fn announced_tip(&self) -> Hash {
        match &self.byz {
            Some(b) => b.public_tip,
            None => self.tree.tip().hash,
        }
    }

    /// Where to mine, the state there, and the transfers the block must start with.
    pub(crate) fn byz_mining_base(&self) -> (Hash, Ledger, Vec<Transfer>) {
        let b = self.byz();
        let state = self.state_at(&b.tip);
        let lead = match &b.attack {
            Some(Attack {
                base,
                conflict: Some(c),
            }) if *base == b.tip => vec![c.clone()],
            _ => Vec::new(),
        };
        (b.tip, state, lead)
    }

    /// The private blocks ending at `hash`, lowest first.
    pub(crate) fn private_branch(&self, hash: &Hash) -> Vec<Hash> {
        let b = self.byz();
        let mut branch = Vec::new();
        let mut cur = *hash;
        while b.private.contains(&cur) {
            branch.push(cur);
            cur = self
                .tree
                .get(&cur)
                .expect("in the tree")
                .block
                .header
                .parent;
        }
        branch.reverse();
        branch
    }

    /// The last block `a` and `b` share.
    fn common_ancestor(&self, a: &Hash, b: &Hash) -> Hash {
        let (mut x, mut y) = (
            self.tree.get(a).expect("in the tree"),
            self.tree.get(b).expect("in the tree"),
        );
        while x.hash != y.hash {
            if x.height() >= y.height() {
                x = self.tree.get(&x.block.header.parent).expect("in the tree");
            } else {
                y = self.tree.get(&y.block.header.parent).expect("in the tree");
            }
        }
        x.hash
    }

    /// Whether `hash` descends from `ancestor` (or is it).
    pub(crate) fn descends(&self, hash: &Hash, ancestor: &Hash) -> bool {
        let h = self.height_of(ancestor);
        self.tree
            .ancestor(hash, h)
            .is_some_and(|n| n.hash == *ancestor)
    }

    /// `hash` is public: the heaviest public block so far becomes the public tip.
    fn note_public(&mut self, hash: Hash) {
        let work = self.work_of(&hash);
        let tip = self.byz().public_tip;
        if work > self.work_of(&tip) {
            self.byz_mut().public_tip = hash;
        }
    }

    /// Sends `msg` to every member outside the coalition.
    pub(crate) fn send_honest(&self, msg: &Msg, out: &mut Out) {
        let b = self.byz();
        for m in self
            .members
            .iter()
            .filter(|m| **m != self.id && !b.is_ally(m))
        {
            out.send.push((m.clone(), msg.clone()));
        }
    }

    /// Makes the private blocks ending at `hash` public, lowest first: persisted, and sent
    /// to the honest peers if `send` (else they have them already).
    pub(crate) fn make_public(&mut self, hash: &Hash, send: bool, out: &mut Out) {
        for h in self.private_branch(hash) {
            let block = self.tree.get(&h).expect("in the tree").block.clone();
            self.byz_mut().private.remove(&h);
            out.persist.push(Record::Block(block.clone()));
            if send {
                self.send_honest(&Msg::Block(block.clone()), out);
                self.byz_mut().counters.published += 1;
            }
            self.note_public(h);
        }
    }

    /// A block already in the tree arrived again: from an honest peer, it is public.
    pub(crate) fn byz_heard(&mut self, hash: &Hash, from: Option<&str>, out: &mut Out) {
        let Some(b) = &self.byz else { return };
        if from.is_some_and(|f| !b.is_ally(f)) && b.private.contains(hash) {
            self.make_public(hash, false, out);
        }
    }

    /// A block was taken into the tree (`private` as [`Pow::byz_is_private`] said).
    pub(crate) fn byz_connected(&mut self, hash: Hash, private: bool, mined: bool, out: &mut Out) {
        let parent = self
            .tree
            .get(&hash)
            .expect("in the tree")
            .block
            .header
            .parent;
        if !private {
            // Honest nodes have it, so they have its ancestors.
            if self.byz().private.contains(&parent) {
                self.make_public(&parent, false, out);
            }
            self.note_public(hash);
            if self.byz().mode == Mode::Forge(Forgery::Light) {
                self.light_follow(hash);
            }
            return;
        }
        self.byz_mut().private.insert(hash);
        let (tip, public_tip) = (self.byz().tip, self.byz().public_tip);
        if mined {
            self.byz_mut().counters.private_mined += 1;
            if parent == tip {
                self.byz_mut().tip = hash;
            }
            return;
        }
        // An ally's block.
        let higher = self.height_of(&hash) > self.height_of(&tip);
        match self.byz().mode {
            Mode::Withhold | Mode::Forge(_) => {
                if higher {
                    self.byz_mut().tip = hash;
                }
            }
            Mode::DoubleSpend => match self.byz().attack.clone() {
                Some(a) => {
                    if higher && self.descends(&hash, &a.base) {
                        self.byz_mut().tip = hash;
                    }
                }
                None => {
                    let fork = self.common_ancestor(&hash, &public_tip);
                    if fork == public_tip {
                        // An idle ally mining honestly: it publishes this block itself.
                        self.make_public(&hash, false, out);
                        if self.height_of(&hash) > self.height_of(&tip) {
                            self.byz_mut().tip = hash;
                        }
                    } else if self
                        .height_of(&public_tip)
                        .saturating_sub(self.height_of(&hash))
                        <= GIVE_UP_LAG
                        && self.conflicts(&hash, &public_tip, &fork)
                    {
                        let b = self.byz_mut();
                        b.attack = Some(Attack {
                            base: fork,
                            conflict: None,
                        });
                        b.tip = hash;
                        b.counters.attacks_joined += 1;
                    }
                }
            },
        }
    }

    /// Whether the branch to `hash` and the one to `public` part at `fork` over a double
    /// spend: the first blocks after `fork` hold two transfers of one (payer, nonce). An
    /// ally's fork of that kind is a double-spend to join; any other is a race.
    fn conflicts(&self, hash: &Hash, public: &Hash, fork: &Hash) -> bool {
        let h = self.height_of(fork) + 1;
        let (Some(a), Some(p)) = (self.tree.ancestor(hash, h), self.tree.ancestor(public, h))
        else {
            return false;
        };
        let public: Vec<&Transfer> = p.block.txs[1..]
            .iter()
            .filter_map(Tx::as_transfer)
            .collect();
        a.block.txs[1..]
            .iter()
            .filter_map(Tx::as_transfer)
            .any(|t| {
                public
                    .iter()
                    .any(|v| v.from == t.from && v.nonce == t.nonce && *v != t)
            })
    }

    /// Acts out the mode on the current view (after every input).
    pub(crate) fn byz_reconcile(&mut self, out: &mut Out) {
        match self.byz().mode {
            Mode::Withhold => self.withhold(out),
            Mode::DoubleSpend => self.double_spend(out),
            Mode::Forge(f) => self.forge_reconcile(f, out),
        }
    }

    /// Selfish mining (the table in the module's docs).
    fn withhold(&mut self, out: &mut Out) {
        let (tip, public) = (self.byz().tip, self.byz().public_tip);
        let (hp, hh) = (self.height_of(&tip), self.height_of(&public));
        if hh > hp {
            let lost = self.private_branch(&tip).len() as u64;
            let b = self.byz_mut();
            b.counters.abandoned += lost;
            b.tip = public;
            return;
        }
        if self.common_ancestor(&tip, &public) == public {
            return;
        }
        let branch = self.private_branch(&tip);
        let lead = hp - hh;
        let upto = if lead <= 1 { hp } else { hh };
        let Some(last) = branch
            .iter()
            .rev()
            .find(|h| self.height_of(h) <= upto)
            .copied()
        else {
            return;
        };
        if lead == 0 {
            self.byz_mut().counters.races += 1;
        }
        self.make_public(&last, true, out);
    }

    /// The double-spend (the module's docs).
    fn double_spend(&mut self, out: &mut Out) {
        let (tip, public) = (self.byz().tip, self.byz().public_tip);
        let (hp, hh) = (self.height_of(&tip), self.height_of(&public));
        let Some(attack) = self.byz().attack.clone() else {
            // Idle: an honest miner, publishing at once and following the public tip.
            if !self.private_branch(&tip).is_empty() && self.descends(&tip, &public) {
                self.make_public(&tip, true, out);
            }
            let public = self.byz().public_tip;
            self.byz_mut().tip = public;
            self.find_victim();
            return;
        };
        let base_h = self.height_of(&attack.base);
        let on_public = self.descends(&public, &attack.base);
        if !on_public || hh.saturating_sub(hp) > GIVE_UP_LAG {
            let lost = self.private_branch(&tip).len() as u64;
            let b = self.byz_mut();
            b.counters.abandoned += lost;
            b.counters.attacks_given_up += 1;
            b.attack = None;
            b.tip = public;
            tracing::debug!(base_h, hp, hh, on_public, "double-spend given up");
            return;
        }
        // The victim's block is at height base_h + 1: its depth is hh − base_h.
        let deep = hh.saturating_sub(base_h) >= self.params.confirmations;
        if deep && self.work_of(&tip) > self.work_of(&public) {
            tracing::info!(base_h, hp, hh, "double-spend fork released");
            self.make_public(&tip, true, out);
            let b = self.byz_mut();
            b.counters.attacks_succeeded += 1;
            b.attack = None;
        }
    }

    /// Looks for a victim in the top blocks of the public chain (idle only): a transfer
    /// seen here, not attacked yet, at its payer's next nonce on the block's parent.
    fn find_victim(&mut self) {
        let public = self.byz().public_tip;
        let hh = self.height_of(&public);
        for depth in 0..VICTIM_DEPTH.min(hh) {
            let node = self
                .tree
                .ancestor(&public, hh - depth)
                .expect("on its chain");
            let (hash, parent) = (node.hash, node.block.header.parent);
            if self.byz().scanned.contains(&hash) {
                continue;
            }
            let b = self.byz();
            let candidates: Vec<Transfer> = node.block.txs[1..]
                .iter()
                .filter_map(Tx::as_transfer)
                .filter(|t| {
                    let id = Tx::Transfer((*t).clone()).id();
                    b.seen_set.contains(&id) && !b.attacked.contains(&id)
                })
                .cloned()
                .collect();
            let b = self.byz_mut();
            b.scanned.push_back(hash);
            if b.scanned.len() > SCANNED {
                b.scanned.pop_front();
            }
            if candidates.is_empty() {
                continue;
            }
            let state = self.state_at(&parent);
            let height = self.height_of(&parent) + 1;
            for victim in candidates {
                if state.next_nonce(&victim.from) != victim.nonce {
                    continue;
                }
                let conflict = self.conflict_of(&victim);
                if state.check(&conflict, height).is_err() {
                    continue;
                }
                let id = Tx::Transfer(victim.clone()).id();
                tracing::info!(victim = ?id, height, "double-spend started");
                let b = self.byz_mut();
                b.attacked.insert(id);
                b.attack = Some(Attack {
                    base: parent,
                    conflict: Some(conflict),
                });
                b.tip = parent;
                b.counters.attacks_started += 1;
                return;
            }
        }
    }

    /// The transfer that takes `victim`'s place: same payer, nonce, amount and expiry, to
    /// another account this node has seen (else the same one), its memo derived from the
    /// victim's id, signed with the payer's key.
    fn conflict_of(&self, victim: &Transfer) -> Transfer {
        let b = self.byz();
        let to = b
            .accounts
            .iter()
            .find(|a| **a != victim.from && **a != victim.to)
            .cloned()
            .unwrap_or_else(|| victim.to.clone());
        let id = Tx::Transfer(victim.clone()).id();
        let memo = Hash::of(&[b"sunder-pow double-spend\0", &id.0]);
        self.keys.sign(Transfer {
            from: victim.from.clone(),
            to,
            amount: victim.amount,
            nonce: victim.nonce,
            expires: victim.expires,
            memo: u64::from_le_bytes(memo.0[..8].try_into().expect("8 bytes")),
            sig: String::new(),
        })
    }
}
