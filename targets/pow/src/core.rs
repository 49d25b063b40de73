//! `Pow`: one node of the chain (miner, block tree, mempool, client front) behind the
//! `Protocol` trait.

use crate::block::{Block, Header};
use crate::bugs::{self, Bugs};
use crate::byzantine::{self, Attacker, ByzCounters};
use crate::hash::Hash;
use crate::ledger::Ledger;
use crate::mempool::Mempool;
use crate::miner::Miner;
use crate::msg::{MAX_BLOCKS_PER_MSG, Msg, TIP_EVERY_BLOCKS};
use crate::orphans::Waiting;
use crate::params::{OPTS, Params};
use crate::record::Record;
use crate::tree::{Node, Tree};
use crate::tx::{Keyring, Transfer, Tx, is_bank_account, miner_account};
use crate::validate::{BlockError, MAX_TXS};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sunder_core::{CoreConfig, Input, NodeId, OptSpec, Output, Protocol, ReqToken};
use sunder_wire::{Dump, DumpEntry, NodeEvent, Op, Response, Status, bank, errors};

type Out = Output<Msg, Record>;

/// Error name: the transfer's expiry height is confirmed and it is not in the chain.
/// Definite.
pub const TX_EXPIRED: &str = "tx-expired";
/// Error name: another transfer with the same (account, nonce) is confirmed. Definite.
pub const NONCE_TAKEN: &str = "nonce-taken";

/// How far ahead of an account's next nonce (at the tip) a gossiped transfer may be.
const NONCE_WINDOW: u64 = 64;

/// How far beyond `max_future_ms` a block's timestamp may be and still be kept aside.
const FUTURE_HORIZON_MS: u64 = 60_000;

/// What the node has counted since start (in `dump`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Blocks refused (invalid, or kept aside and dropped).
    pub rejected_blocks: u64,
    /// Transfers refused (malformed, badly signed).
    pub rejected_txs: u64,
    /// Peer messages refused outright (unknown sender, too many blocks).
    pub rejected_msgs: u64,
    pub mined: u64,
    pub accepted_blocks: u64,
    /// Blocks that waited for their parent.
    pub orphaned: u64,
    /// Blocks kept aside because their timestamp was ahead of the local clock.
    pub deferred: u64,
    /// Tip changes, and those that dropped blocks from the best chain (reorganisations).
    pub tips: u64,
    pub reorgs: u64,
    /// Most blocks one reorganisation dropped.
    pub deepest_reorg: u64,
}

/// A client's transfer waiting to be confirmed.
#[derive(Debug, Clone)]
struct Pending {
    token: ReqToken,
    tx: Transfer,
    id: Hash,
}

/// One proof-of-work node.
#[derive(Debug)]
pub struct Pow {
    pub(crate) id: NodeId,
    me: u32,
    pub(crate) members: Vec<NodeId>,
    pub(crate) params: Params,
    pub(crate) bugs: Bugs,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) keys: Keyring,
    pub(crate) tree: Tree,
    /// The state at the tip of the best chain.
    tip_state: Ledger,
    /// The state at the confirmed block (depth `confirmations`), cached by its hash.
    confirmed: (Hash, Ledger),
    mempool: Mempool,
    orphans: Waiting,
    future: Waiting,
    miner: Miner,
    pending: Vec<Pending>,
    pub(crate) now_ms: u64,
    /// Whether a tick came yet: until then the local time is unknown, and every block
    /// with a timestamp is kept aside rather than judged against a clock at 0.
    ticked: bool,
    /// When this node last announced its tip to its peers (`Msg::Tip`).
    tip_announced_ms: Option<u64>,
    counters: Counters,
    /// Set on a node run with `--byzantine` (byzantine.rs).
    pub(crate) byz: Option<Attacker>,
    /// The confirmed blocks this process announced (`confirm` events), by height − 1.
    announced: Vec<Hash>,
}

impl Pow {
    /// Peer messages, blocks and transfers refused since start.
    pub fn rejected(&self) -> u64 {
        let c = &self.counters;
        c.rejected_blocks + c.rejected_txs + c.rejected_msgs
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// What a Byzantine node did (`None` on an honest one).
    pub fn byzantine_counters(&self) -> Option<&ByzCounters> {
        self.byz.as_ref().map(|b| &b.counters)
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The tip of the best chain.
    pub fn tip(&self) -> &Node {
        self.tree.tip()
    }

    /// The best chain's block hashes, genesis first.
    pub fn best_chain(&self) -> &[Hash] {
        self.tree.best()
    }

    pub fn block(&self, hash: &Hash) -> Option<&Block> {
        self.tree.get(hash).map(|n| &n.block)
    }

    /// The account state at the tip.
    pub fn tip_state(&self) -> &Ledger {
        &self.tip_state
    }

    /// The height of the deepest block that counts as confirmed: depth = tip height −
    /// height + 1 (the tip is at depth 1), confirmed at depth ≥ `confirmations`.
    pub fn confirmed_height(&self) -> u64 {
        (self.tree.tip().height() + 1).saturating_sub(self.params.confirmations)
    }

    /// The account state at the confirmed block (what `balances` answers from).
    pub fn confirmed_state(&mut self) -> &Ledger {
        let hash = self
            .tree
            .best_at(self.confirmed_height())
            .expect("on the best chain")
            .hash;
        if self.confirmed.0 != hash {
            let node = self.tree.get(&hash).expect("in the tree");
            let state = if node.block.header.parent == self.confirmed.0 && node.height() > 0 {
                let mut s = std::mem::take(&mut self.confirmed.1);
                s.apply_block(&node.block, false).expect("forced");
                s
            } else {
                self.state_at(&hash)
            };
            self.confirmed = (hash, state);
        }
        &self.confirmed.1
    }

    /// Blocks in the tree, genesis and side branches included.
    pub fn block_count(&self) -> usize {
        self.tree.len()
    }

    pub fn mempool_len(&self) -> usize {
        self.mempool.len()
    }

    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }

    /// Hashes tried since start.
    pub fn hashes(&self) -> u64 {
        self.miner.hashes
    }

    /// The state after `hash`, replayed from genesis (every block in the tree was checked
    /// when it came, so the replay forces).
    pub(crate) fn state_at(&self, hash: &Hash) -> Ledger {
        if *hash == self.tree.tip().hash {
            return self.tip_state.clone();
        }
        let mut s = Ledger::default();
        for n in self.tree.path(hash).iter().skip(1) {
            s.apply_block(&n.block, false).expect("forced");
        }
        s
    }

    fn peers(&self) -> impl Iterator<Item = &NodeId> + '_ {
        self.members.iter().filter(move |m| **m != self.id)
    }

    pub(crate) fn broadcast(&self, msg: &Msg, except: Option<&str>, out: &mut Out) {
        for p in self.peers().filter(|p| Some(p.as_str()) != except) {
            out.send.push((p.clone(), msg.clone()));
        }
    }

    fn reject_block(&mut self, hash: &Hash, from: Option<&str>, why: &BlockError) {
        self.counters.rejected_blocks += 1;
        if self.counters.rejected_blocks.is_power_of_two() {
            tracing::warn!(
                ?hash,
                ?from,
                rejected = self.counters.rejected_blocks,
                "block dropped: {why}"
            );
        }
    }

    /// Whether the chain ending at `hash` beats the current tip: more work (or, with the
    /// planted bug, more blocks). A tie keeps the tip seen first.
    fn better(&self, node: &Node) -> bool {
        let tip = self.tree.tip();
        if self.bugs.longest_not_heaviest {
            node.height() > tip.height()
        } else {
            node.work > tip.work
        }
    }

    fn tick(&mut self, now_ms: u64, out: &mut Out) {
        self.now_ms = self.now_ms.max(now_ms);
        self.ticked = true;
        let now = self.now_ms;
        // Blocks from the future whose time has come.
        let limit = now.saturating_add(self.params.max_future_ms);
        let due = self.future.take(|b| b.header.timestamp_ms <= limit);
        for (block, from) in due {
            self.receive_block(block, from, out);
        }
        let every = self.params.block_ms.saturating_mul(TIP_EVERY_BLOCKS);
        if self
            .tip_announced_ms
            .is_none_or(|at| now.saturating_sub(at) >= every)
        {
            self.tip_announced_ms = Some(now);
            let hash = self.announced_tip();
            self.broadcast(&Msg::Tip { hash }, None, out);
        }
        let rate = self.params.hashrate_of(self.byz.is_some());
        let budget = self.miner.budget(now_ms, rate);
        if budget == 0 || self.forge_idle() {
            return;
        }
        if let Some(b) = &self.byz
            && self.miner.parent() != Some(b.tip)
        {
            self.miner.invalidate();
        }
        if !self.miner.has_template() {
            self.new_template();
        }
        if let Some(block) = self.miner.search(budget, now) {
            self.counters.mined += 1;
            tracing::debug!(hash = ?block.hash(), height = block.header.height, "mined");
            match self.forgery() {
                Some(f) => self.forge_found(f, block, out),
                None => self.receive_block(block, None, out),
            }
        }
    }

    /// Builds the next block to mine on the tip: the coinbase, then what the mempool has
    /// that applies, the nonce search starting at a seeded random point.
    /// A Byzantine node mines where its mode says, possibly starting with a transfer of
    /// its own (byzantine.rs).
    fn new_template(&mut self) {
        let (tip, byz_state, lead) = match &self.byz {
            Some(_) => {
                let (at, state, lead) = self.byz_mining_base();
                (self.tree.get(&at).expect("in the tree"), Some(state), lead)
            }
            None => (self.tree.tip(), None, Vec::new()),
        };
        let height = tip.height() + 1;
        let target = self.next_target(tip);
        let (parent, min_ts) = (tip.hash, tip.block.header.timestamp_ms + 1);
        let mut txs = vec![Tx::Coinbase {
            height,
            to: miner_account(&self.id),
            amount: self.params.reward,
        }];
        let picked = match byz_state {
            Some(mut state) => {
                for t in lead {
                    if state.transfer(&t, height).is_ok() {
                        txs.push(Tx::Transfer(t));
                    }
                }
                let room = MAX_TXS - txs.len();
                self.mempool.select(&state, height, room).0
            }
            None => self.mempool.select(&self.tip_state, height, MAX_TXS - 1).0,
        };
        txs.extend(picked.into_iter().map(Tx::Transfer));
        let mut header = Header {
            parent,
            height,
            merkle: Block::merkle_of(&txs),
            timestamp_ms: self.now_ms.max(min_ts),
            target,
            miner: self.me,
            nonce: self.rng.random(),
        };
        match self.forgery() {
            Some(f) => match self.forge_template(f, &mut header, &mut txs) {
                Some(true) => self.miner.set_template_at(header, txs),
                Some(false) => self.miner.set_template(header, txs, min_ts),
                None => {}
            },
            None => self.miner.set_template(header, txs, min_ts),
        }
    }

    /// A block from a peer, from the miner (`from` None) or back from the future pool.
    pub(crate) fn receive_block(&mut self, block: Block, from: Option<NodeId>, out: &mut Out) {
        let hash = block.hash();
        if self.tree.contains(&hash) {
            self.byz_heard(&hash, from.as_deref(), out);
            return;
        }
        if self.orphans.contains(&hash) {
            return;
        }
        if let Err(why) = self.check_body(&block, &hash) {
            self.reject_block(&hash, from.as_deref(), &why);
            return;
        }
        let parent = block.header.parent;
        if !self.tree.contains(&parent) {
            self.counters.orphaned += 1;
            if let Some(f) = &from {
                out.send.push((f.clone(), Msg::GetBlock { hash: parent }));
            }
            self.orphans.insert(hash, block, from);
            return;
        }
        let mut queue = vec![(block, from)];
        while let Some((block, from)) = queue.pop() {
            let hash = block.hash();
            if self.connect(block, hash, from, out) {
                queue.extend(self.orphans.take(|b| b.header.parent == hash));
            }
        }
    }

    /// Checks a block whose parent is in the tree against its parent and the parent's
    /// state, then takes it in; whether it was taken.
    fn connect(&mut self, block: Block, hash: Hash, from: Option<NodeId>, out: &mut Out) -> bool {
        if self.tree.contains(&hash) {
            return false;
        }
        let parent = self
            .tree
            .get(&block.header.parent)
            .expect("parent is in the tree");
        match self.check_link(parent, &block) {
            Ok(()) => {}
            Err(BlockError::Future { got, .. })
                if !self.ticked
                    || got
                        <= self
                            .now_ms
                            .saturating_add(self.params.max_future_ms)
                            .saturating_add(FUTURE_HORIZON_MS) =>
            {
                self.counters.deferred += 1;
                self.future.insert(hash, block, from);
                return false;
            }
            Err(why) => {
                self.reject_block(&hash, from.as_deref(), &why);
                return false;
            }
        }
        let mut state = self.state_at(&block.header.parent);
        // The miner built its own block against this very state: checked either way.
        let checked = from.is_none() || !self.bugs.no_double_spend_check;
        if let Err((i, e)) = state.apply_block(&block, checked) {
            self.reject_block(&hash, from.as_deref(), &BlockError::Tx(i, e));
            return false;
        }
        self.counters.accepted_blocks += 1;
        // A Byzantine node's private blocks go to its allies only, and are persisted when
        // they are published (byzantine.rs).
        let private = self.byz_is_private(&block, from.as_deref());
        if !private {
            out.persist.push(Record::Block(block.clone()));
        }
        self.relay(&block, private, from.as_deref(), out);
        let node = self.tree.insert(block).clone();
        if self.byz.is_some() {
            self.byz_connected(node.hash, private, from.is_none(), out);
        }
        if self.better(&node) {
            self.adopt(&node, state, out);
        }
        true
    }

    /// Announces (`confirm` events) every confirmed block of the best chain not announced
    /// yet: the heights above what was announced before, and every height where a
    /// reorganisation replaced an announced block (which the agreement checker reports as
    /// a reversed confirmation). A restarted node announces its confirmed chain again.
    fn announce_confirmed(&mut self, out: &mut Out) {
        let confirmed = self.confirmed_height();
        let mut same = (self.announced.len() as u64).min(confirmed);
        while same > 0
            && self.tree.best_at(same).map(|n| n.hash) != Some(self.announced[same as usize - 1])
        {
            same -= 1;
        }
        if same == confirmed {
            return;
        }
        self.announced.truncate(same as usize);
        for height in same + 1..=confirmed {
            let hash = self.tree.best_at(height).expect("on the best chain").hash;
            self.announced.push(hash);
            out.events.push(NodeEvent::Confirm {
                height,
                hash: hash.to_hex(),
            });
        }
    }

    /// Makes `node` the tip: abandoned blocks' transfers go back to the mempool (those
    /// that still apply stay), and waiting clients are settled.
    fn adopt(&mut self, node: &Node, state: Ledger, out: &mut Out) {
        let switch = self.tree.switch_to(node.hash);
        self.counters.tips += 1;
        out.events.push(NodeEvent::Tip {
            height: node.height(),
            dropped: switch.removed.len() as u64,
            added: node.height() - switch.fork_height,
        });
        if !switch.removed.is_empty() {
            self.counters.reorgs += 1;
            let depth = switch.removed.len() as u64;
            self.counters.deepest_reorg = self.counters.deepest_reorg.max(depth);
            tracing::info!(depth, fork_height = switch.fork_height, tip = ?node.hash, "reorganised");
            for h in &switch.removed {
                let txs: Vec<Transfer> = self.tree.get(h).expect("in the tree").block.txs[1..]
                    .iter()
                    .filter_map(|t| t.as_transfer().cloned())
                    .collect();
                for t in txs {
                    self.mempool.insert(t);
                }
            }
        }
        self.tip_state = state;
        self.mempool.prune(&self.tip_state, node.height() + 1);
        self.miner.invalidate();
        self.settle(out);
    }

    /// Answers the clients whose transfers are now confirmed or can no longer be.
    fn settle(&mut self, out: &mut Out) {
        if self.pending.is_empty() {
            return;
        }
        let tip_h = self.tree.tip().height();
        let confirmed_h = self.confirmed_height();
        let confirmed_nonces: Vec<u64> = {
            let pending = std::mem::take(&mut self.pending);
            let state = self.confirmed_state();
            let n = pending
                .iter()
                .map(|p| state.next_nonce(&p.tx.from))
                .collect();
            self.pending = pending;
            n
        };
        let mut still = Vec::new();
        for (p, confirmed_nonce) in std::mem::take(&mut self.pending)
            .into_iter()
            .zip(confirmed_nonces)
        {
            // Transfers apply in nonce order: while the tip's state has not used this
            // nonce, the transfer is not in the chain, and there is nothing to look for.
            // Otherwise look from the highest block it may be in down (a reorganisation
            // may have put it lower than the tip it was submitted on).
            let used = self.tip_state.next_nonce(&p.tx.from) > p.tx.nonce;
            let found = (1..=p.tx.expires.min(tip_h))
                .rev()
                .filter(|_| used)
                .find(|h| {
                    self.tree
                        .best_at(*h)
                        .is_some_and(|n| n.block.txs.iter().any(|t| t.as_transfer() == Some(&p.tx)))
                });
            let reply = match found {
                Some(h) if h <= confirmed_h => Some(Response::ok(0, Value::Null)),
                Some(_) => None,
                None if confirmed_nonce > p.tx.nonce => Some(Response::error(0, NONCE_TAKEN, true)),
                None if confirmed_h >= p.tx.expires => Some(Response::error(0, TX_EXPIRED, true)),
                None => None,
            };
            match reply {
                Some(r) => {
                    tracing::debug!(id = ?p.id, ok = r.ok, "transfer settled");
                    out.reply.push((p.token, r));
                }
                None => still.push(p),
            }
        }
        self.pending = still;
    }

    fn on_peer(&mut self, from: NodeId, msg: Msg, out: &mut Out) {
        match msg {
            Msg::Block(b) => self.receive_block(b, Some(from), out),
            Msg::Blocks(blocks) => {
                if blocks.len() > MAX_BLOCKS_PER_MSG {
                    self.counters.rejected_msgs += 1;
                    return;
                }
                // Highest first: take them lowest first, so each finds its parent.
                for b in blocks.into_iter().rev() {
                    self.receive_block(b, Some(from.clone()), out);
                }
            }
            Msg::GetBlock { hash } => {
                let mut blocks = Vec::new();
                let mut cur = self.tree.get(&hash);
                while let Some(n) = cur {
                    if n.height() == 0
                        || blocks.len() >= MAX_BLOCKS_PER_MSG
                        || !self.shareable(&n.hash, &from)
                    {
                        break;
                    }
                    blocks.push(n.block.clone());
                    cur = self.tree.get(&n.block.header.parent);
                }
                if !blocks.is_empty() {
                    out.send.push((from, Msg::Blocks(blocks)));
                }
            }
            Msg::Tx(t) => self.receive_tx(t, Some(from), out),
            Msg::Tip { hash } => {
                let tip = self.tree.get(&self.announced_tip()).expect("in the tree");
                match self.tree.get(&hash) {
                    // Ours has more work: the peer learns of it (and asks for what it lacks).
                    Some(theirs) if tip.work > theirs.work => {
                        out.send.push((from, Msg::Block(tip.block.clone())));
                    }
                    Some(_) => {}
                    None if self.orphans.contains(&hash) => {}
                    None => out.send.push((from, Msg::GetBlock { hash })),
                }
            }
        }
    }

    /// A transfer for the mempool: checked on its face and against the tip's nonces, kept
    /// and relayed if its (account, nonce) slot is free.
    fn receive_tx(&mut self, t: Transfer, from: Option<NodeId>, out: &mut Out) {
        let id = Tx::Transfer(t.clone()).id();
        if self.mempool.contains(&id) {
            return;
        }
        if let Err(why) = self.check_transfer(&t) {
            self.counters.rejected_txs += 1;
            if self.counters.rejected_txs.is_power_of_two() {
                tracing::warn!(
                    ?from,
                    rejected = self.counters.rejected_txs,
                    "transfer dropped: {why}"
                );
            }
            return;
        }
        // Only nonces a few ahead of the tip's: a peer cannot park the mempool far ahead.
        let next = self.tree.tip().height() + 1;
        let nonce = self.tip_state.next_nonce(&t.from);
        if t.nonce < nonce || t.nonce > nonce.saturating_add(NONCE_WINDOW) || t.expires < next {
            return;
        }
        if self.mempool.insert(t.clone()) {
            if let Some(b) = &mut self.byz {
                b.saw_tx(&t);
            }
            self.miner.invalidate();
            self.broadcast(&Msg::Tx(t), from.as_deref(), out);
        }
    }

    fn on_client(&mut self, token: ReqToken, op: Op, out: &mut Out) {
        let bad = |out: &mut Out| {
            out.reply
                .push((token, Response::error(0, errors::BAD_REQUEST, true)))
        };
        match op {
            Op::Status => {
                let status = Status {
                    node: self.id.clone(),
                    role: "miner".into(),
                    term: 0,
                    leader: None,
                    commit: self.confirmed_height(),
                };
                let mut v = serde_json::to_value(status).expect("serializable");
                if let Some(b) = &self.byz {
                    v["byzantine"] = b.status();
                }
                out.reply.push((token, Response::ok(0, v)));
            }
            Op::Dump => {
                let dump = self.dump();
                out.reply.push((token, Response::ok(0, dump)));
            }
            Op::Balances { ref keys } => {
                if bank::malformed(&op).is_some() {
                    return bad(out);
                }
                let v = self.confirmed_state().balances_of(keys);
                out.reply.push((token, Response::ok(0, v)));
            }
            Op::Transfer {
                ref from,
                ref to,
                amount,
            } => {
                if bank::malformed(&op).is_some() || !is_bank_account(from) || !is_bank_account(to)
                {
                    return bad(out);
                }
                self.submit(token, from, to, amount, out);
            }
            Op::Read { .. } | Op::Write { .. } | Op::Cas { .. } | Op::Add { .. } => bad(out),
        }
    }

    /// A client's transfer: refused at once if it would overdraft the state the tip and
    /// the mempool lead to; otherwise signed, kept, gossiped, and answered once confirmed.
    fn submit(&mut self, token: ReqToken, from: &str, to: &str, amount: i64, out: &mut Out) {
        let height = self.tree.tip().height() + 1;
        let (_, projected) = self.mempool.select(&self.tip_state, height, usize::MAX);
        let holds = projected.balance(from);
        if holds < amount {
            tracing::debug!(from, holds, amount, "transfer refused: insufficient funds");
            out.reply
                .push((token, Response::error(0, bank::INSUFFICIENT_FUNDS, true)));
            return;
        }
        let nonce = projected.next_nonce(from).max(
            self.mempool
                .last_nonce(from)
                .map_or(0, |n| n.saturating_add(1)),
        );
        // Unique to this request: the node, its clock and the request's token (a restarted
        // node numbers its connections again, but not at the same time).
        let mut memo = Sha256::new();
        memo.update(self.id.as_bytes());
        memo.update(self.now_ms.to_le_bytes());
        memo.update(token.conn.to_le_bytes());
        memo.update(token.id.to_le_bytes());
        let memo = u64::from_le_bytes(memo.finalize()[..8].try_into().expect("8 bytes"));
        let tx = self.keys.sign(Transfer {
            from: from.into(),
            to: to.into(),
            amount,
            nonce,
            expires: (height - 1).saturating_add(self.params.tx_ttl),
            memo,
            sig: String::new(),
        });
        if !self.mempool.insert(tx.clone()) {
            out.reply
                .push((token, Response::error(0, errors::UNAVAILABLE, true)));
            return;
        }
        if let Some(b) = &mut self.byz {
            b.saw_tx(&tx);
        }
        self.miner.invalidate();
        self.broadcast(&Msg::Tx(tx.clone()), None, out);
        self.pending.push(Pending {
            token,
            id: Tx::Transfer(tx.clone()).id(),
            tx,
        });
    }

    /// The dump: the confirmed blocks as entries (index = height, digest = block hash),
    /// so the agreement checker compares only what is `confirmations` deep; the whole best
    /// chain, the tip, its work and the counters besides.
    fn dump(&mut self) -> Value {
        let confirmed_h = self.confirmed_height();
        let state = serde_json::to_value(self.confirmed_state().to_json()).expect("json");
        let summary = |n: &Node| {
            let h = &n.block.header;
            json!({
                "hash": n.hash,
                "height": h.height,
                "parent": h.parent,
                "miner": self.members.get(h.miner as usize),
                "timestamp_ms": h.timestamp_ms,
                "target": format!("{:032x}", h.target),
                "txs": n.block.txs.iter().map(|t| json!({"id": t.id(), "tx": t})).collect::<Vec<_>>(),
            })
        };
        let best: Vec<&Node> = self
            .tree
            .best()
            .iter()
            .map(|h| self.tree.get(h).expect("in the tree"))
            .collect();
        // The replicated log the agreement checker reads: every transfer of the confirmed
        // blocks, in chain order, one entry each (coinbases are not clients' commands).
        // Its digest names the block and the position in it, and a block's hash commits
        // to everything before it: equal digests at an index mean equal confirmed prefixes.
        let mut entries = Vec::new();
        for n in &best[1..=confirmed_h as usize] {
            for (pos, t) in n.block.txs.iter().enumerate().skip(1) {
                let Some(t) = t.as_transfer() else { continue };
                let mut d = Sha256::new();
                d.update(n.hash.0);
                d.update((pos as u64).to_le_bytes());
                entries.push(DumpEntry {
                    index: entries.len() as u64 + 1,
                    term: 0,
                    command: json!({
                        "op": "transfer",
                        "from": t.from,
                        "to": t.to,
                        "amount": t.amount,
                    }),
                    origin: None,
                    digest: Some(Hash(d.finalize().into()).to_hex()),
                });
            }
        }
        let dump = Dump {
            node: self.id.clone(),
            snapshot_index: 0,
            entries,
            state,
            snapshot_digest: None,
            snapshot_terms: Vec::new(),
        };
        let mut v = serde_json::to_value(dump).expect("serializable");
        let tip = self.tree.tip();
        let extra = json!({
            "chain": best.iter().map(|n| summary(n)).collect::<Vec<_>>(),
            "tip": tip.hash,
            "height": tip.height(),
            "work": format!("{:032x}", tip.work),
            "confirmations": self.params.confirmations,
            "confirmed_height": confirmed_h,
            "clock_ms": self.now_ms,
            "max_future_ms": self.params.max_future_ms,
            "reward": self.params.reward,
            "counters": self.counters,
            "mempool": self.mempool.len(),
            "orphans": self.orphans.len(),
        });
        if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
            m.extend(e);
            if let Some(b) = &self.byz {
                m.insert("byzantine".into(), b.status());
            }
        }
        v
    }
}

impl Protocol for Pow {
    type Msg = Msg;
    type Record = Record;

    fn recover(config: CoreConfig, records: Vec<Record>) -> Self {
        let me = config.my_index();
        let params = Params::from_config(&config);
        let tree = Tree::new(params.genesis());
        let genesis = tree.tip().hash;
        let mut node = Pow {
            id: config.id.clone(),
            me,
            members: config.members.clone(),
            bugs: Bugs::from_names(&config.bugs),
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            keys: Keyring::new(params.key_seed),
            params,
            tree,
            tip_state: Ledger::default(),
            confirmed: (genesis, Ledger::default()),
            mempool: Mempool::default(),
            orphans: Waiting::default(),
            future: Waiting::default(),
            miner: Miner::default(),
            pending: Vec::new(),
            now_ms: 0,
            ticked: false,
            tip_announced_ms: None,
            counters: Counters::default(),
            byz: None,
            announced: Vec::new(),
        };
        node.restore(records);
        let tip = node.tree.tip().hash;
        node.byz = config
            .byzantine
            .as_ref()
            .map(|b| Attacker::new(b, me, &config.members, tip));
        node.light_start();
        node
    }

    fn step(&mut self, input: Input<Msg>, out: &mut Out) {
        match input {
            Input::Tick { now_ms } => self.tick(now_ms, out),
            Input::Peer { from, msg } => {
                if from == self.id || !self.members.contains(&from) {
                    self.counters.rejected_msgs += 1;
                    return;
                }
                self.on_peer(from, msg, out);
            }
            Input::Client { token, op } => self.on_client(token, op, out),
            Input::Signed { token, .. } => sunder_core::protocol::refuse_signed(token, out),
        }
        if self.byz.is_some() {
            self.byz_reconcile(out);
        }
        self.announce_confirmed(out);
    }

    fn known_bugs() -> &'static [&'static str] {
        bugs::KNOWN
    }

    fn byzantine_modes() -> &'static [&'static str] {
        byzantine::MODES
    }

    fn accepted_opts() -> &'static [OptSpec] {
        OPTS
    }
}

impl Pow {
    /// Rebuilds the tree from the blocks this node recorded, in their order. They were
    /// checked when they came, so only what keeps the tree whole is checked again: the
    /// parent is here and the height follows it. The heaviest chain becomes the tip.
    fn restore(&mut self, records: Vec<Record>) {
        let mut dropped = 0u64;
        for Record::Block(block) in records {
            let ok = self
                .tree
                .get(&block.header.parent)
                .is_some_and(|p| p.height() + 1 == block.header.height)
                && !block.txs.is_empty();
            if !ok {
                dropped += 1;
                continue;
            }
            let node = self.tree.insert(block).clone();
            if self.better(&node) {
                self.tree.switch_to(node.hash);
            }
        }
        if dropped > 0 {
            tracing::warn!(dropped, "recorded blocks without their parent dropped");
        }
        let tip = self.tree.tip().hash;
        let mut s = Ledger::default();
        for n in self.tree.path(&tip).iter().skip(1) {
            s.apply_block(&n.block, false).expect("forced");
        }
        self.tip_state = s;
    }
}
