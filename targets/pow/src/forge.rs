//! Forgers (`--byzantine-mode forge-*`): a Byzantine miner that publishes blocks breaking
//! one rule each, so that a planted bug letting such a block in has something to let in.
//! An honest miner never makes these blocks; a correct node refuses every one of them (or,
//! for `forge-light`, keeps it off its best chain), so the same run with the correct build
//! is valid.
//!
//! | mode | what the forger publishes | a correct node | let in by | what reports it |
//! |---|---|---|---|---|
//! | `forge-hash` | a block it mined, its nonce then moved until the hash misses the target | refuses it (proof of work) | `skip-hash-check` | chain checker: a hash above its target |
//! | `forge-spend` | a mined block with a transfer reusing a nonce its payer already spent on the chain (the payer's whole balance again, to another account), or before any account has spent, one paying more than its payer holds | refuses it (state) | `no-double-spend-check` | chain checker: a coin spent twice, a balance below zero |
//! | `forge-future` | a mined block timestamped [`FORGE_AHEAD_MS`] ahead of its clock | refuses it (beyond `max_future_ms` and the 60 s it keeps aside) | `accept-future-blocks` | chain checker: a timestamp ahead of every honest clock |
//! | `forge-light` | a valid chain from genesis, its timestamps spread so every retarget eases (a time warp), until its blocks are [`LIGHT_EASE`] times cheaper than the public chain's; published whenever it is higher than the heaviest public block and has less work | keeps it as a side branch (less work) | `longest-not-heaviest` | agreement checker: confirmations reversed down to height 1 |
//!
//! The forger does not take its own forged blocks (`hash`, `spend`, `future`) into its tree:
//! it sends them to the honest nodes and mines the next one on the public tip. A node
//! that took one passes it on, and the forger then judges it like any peer's block.
//! `forge-spend` mines nothing until it has seen transfers naming two accounts. `forge-light`
//! mines its chain as private coalition blocks (byzantine.rs), at most [`LIGHT_LEAD`]
//! blocks above the heaviest public block, and follows the highest public block that grew
//! on its chain (honest nodes that took it mine there); a restarted forger starts again
//! from genesis (its private blocks are lost).

use crate::block::{Block, Header};
use crate::byzantine::Mode;
use crate::core::Pow;
use crate::hash::{Hash, meets};
use crate::msg::Msg;
use crate::record::Record;
use crate::tx::{Transfer, Tx, is_bank_account};
use crate::validate::MAX_TXS;
use rand::RngExt;
use sunder_core::Output;

type Out = Output<Msg, Record>;

/// Which rule a forger breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forgery {
    Hash,
    Spend,
    Future,
    Light,
}

/// How far ahead of its clock `forge-future` stamps its blocks: an hour, beyond any clock
/// fault the nemesis makes (five minutes at most) and beyond the slack the chain checker
/// gives honest clocks.
pub const FORGE_AHEAD_MS: u64 = 3_600_000;

/// `forge-light` eases its chain's target until its blocks are this many times cheaper
/// than the public tip's, then keeps the target there.
pub const LIGHT_EASE: u128 = 64;

/// `forge-light` mines at most this many blocks above the highest public block.
pub const LIGHT_LEAD: u64 = 2;

/// Moves tried to find a nonce whose hash misses the target (`forge-hash`); a target so
/// easy that every hash meets it leaves nothing to forge.
const MISS_TRIES: u32 = 1024;

impl Pow {
    /// The rule this node breaks, if it is a forger.
    pub(crate) fn forgery(&self) -> Option<Forgery> {
        match self.byz.as_ref()?.mode {
            Mode::Forge(f) => Some(f),
            _ => None,
        }
    }

    /// Whether a forger mines nothing this tick (`forge-light` far enough ahead).
    pub(crate) fn forge_idle(&self) -> bool {
        self.forgery() == Some(Forgery::Light)
            && self.height_of(&self.byz().tip) > self.height_of(&self.byz().public_tip) + LIGHT_LEAD
    }

    /// Turns the template the honest code built into the forgery: `Some(fixed)` to mine it
    /// (`fixed`: its timestamp stays as set here), `None` when there is nothing to forge
    /// yet.
    pub(crate) fn forge_template(
        &mut self,
        f: Forgery,
        header: &mut Header,
        txs: &mut Vec<Tx>,
    ) -> Option<bool> {
        match f {
            Forgery::Hash => Some(false),
            Forgery::Future => {
                header.timestamp_ms = self.now_ms.saturating_add(FORGE_AHEAD_MS);
                Some(true)
            }
            Forgery::Spend => {
                let t = self.spent_again(header)?;
                if txs.len() >= MAX_TXS {
                    txs.pop();
                }
                txs.push(Tx::Transfer(t));
                header.merkle = Block::merkle_of(txs);
                Some(false)
            }
            Forgery::Light => {
                let parent = self
                    .tree
                    .get(&header.parent)
                    .expect("the tip is in the tree");
                let parent_ts = parent.block.header.timestamp_ms;
                let public = self
                    .tree
                    .get(&self.byz().public_tip)
                    .expect("in the tree")
                    .block
                    .header
                    .target;
                let step = if header.target < public.saturating_mul(LIGHT_EASE) {
                    4 * self.params.block_ms
                } else {
                    self.params.block_ms
                };
                let cap = self.now_ms.saturating_add(self.params.max_future_ms);
                let least = parent_ts.saturating_add(1);
                if least > cap {
                    return None;
                }
                header.timestamp_ms = parent_ts.saturating_add(step).min(cap);
                Some(true)
            }
        }
    }

    /// A transfer spending again what an account already spent on the chain the header
    /// extends (its last nonce, its whole balance, to another account); while no account
    /// has spent there, one spending more than an account holds (its next nonce, its
    /// balance plus one), among the accounts in transfers the forger has seen; `None`
    /// before it has seen two.
    fn spent_again(&mut self, header: &Header) -> Option<Transfer> {
        let state = self.state_at(&header.parent);
        let spenders: Vec<(String, u64)> = state
            .nonces()
            .filter(|(a, n)| *n > 0 && is_bank_account(a))
            .map(|(a, n)| (a.to_string(), n))
            .collect();
        let seen: Vec<String> = self.byz().accounts.iter().cloned().collect();
        let (from, nonce, amount) = if spenders.is_empty() {
            let from = seen.first()?.clone();
            let (next, holds) = (state.next_nonce(&from), state.balance(&from));
            (from, next, holds.saturating_add(1))
        } else {
            let (from, next) = spenders[self.rng.random_range(0..spenders.len())].clone();
            let holds = state.balance(&from);
            (from, next - 1, holds)
        };
        let to = state
            .accounts()
            .chain(seen.iter().map(String::as_str))
            .find(|a| *a != from && is_bank_account(a))?
            .to_string();
        let amount = amount.clamp(1, sunder_wire::bank::MAX_AMOUNT);
        Some(self.keys.sign(Transfer {
            from,
            to,
            amount,
            nonce,
            expires: header.height.saturating_add(self.params.tx_ttl),
            memo: self.rng.random(),
            sig: String::new(),
        }))
    }

    /// A block the forger's miner found.
    pub(crate) fn forge_found(&mut self, f: Forgery, mut block: Block, out: &mut Out) {
        match f {
            Forgery::Light => {
                self.receive_block(block, None, out);
                return;
            }
            Forgery::Hash => {
                let mut tries = 0;
                while meets(&block.hash(), block.header.target) {
                    tries += 1;
                    if tries > MISS_TRIES {
                        return;
                    }
                    block.header.nonce = block.header.nonce.wrapping_add(1);
                }
            }
            Forgery::Spend | Forgery::Future => {}
        }
        tracing::debug!(hash = ?block.hash(), height = block.header.height, ?f, "forged");
        self.send_honest(&Msg::Block(block), out);
        self.byz_mut().counters.forged += 1;
    }

    /// After every input: `hash`, `spend` and `future` mine on the public tip; `light`
    /// publishes its private blocks once they are higher than every public one.
    pub(crate) fn forge_reconcile(&mut self, f: Forgery, out: &mut Out) {
        if f != Forgery::Light {
            let public = self.byz().public_tip;
            self.byz_mut().tip = public;
            return;
        }
        let (tip, public) = (self.byz().tip, self.byz().public_tip);
        if !self.private_branch(&tip).is_empty()
            && self.height_of(&tip) > self.height_of(&public)
            && self.work_of(&tip) < self.work_of(&public)
        {
            tracing::debug!(height = self.height_of(&tip), "light chain published");
            self.make_public(&tip, true, out);
        }
    }

    /// A public block: `forge-light` mines on it if it is higher than its tip and grew on
    /// the forger's chain (its block at height 1 is the coalition's).
    pub(crate) fn light_follow(&mut self, hash: Hash) {
        let tip = self.byz().tip;
        if self.height_of(&hash) <= self.height_of(&tip) {
            return;
        }
        let ours = self
            .tree
            .ancestor(&hash, 1)
            .is_some_and(|n| self.byz().in_coalition(n.block.header.miner));
        if ours {
            self.byz_mut().tip = hash;
        }
    }

    /// Where a `forge-light` forger starts: genesis.
    pub(crate) fn light_start(&mut self) {
        if self.forgery() == Some(Forgery::Light) {
            let genesis = self.tree.best()[0];
            self.byz_mut().tip = genesis;
        }
    }
}
