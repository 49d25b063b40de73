//! The boundary check on every peer message, before the core acts on it.
//!
//! A ballot naming a node that does not exist (its index is used to name the leader), a
//! Prepare or Accept whose ballot is not the sender's own, a round or slot so high that
//! the arithmetic after it would overflow, or a slot far beyond this node's window (a
//! candidate fills every slot up to the highest it hears of with no-ops) is dropped,
//! logged and counted here. Accept entries beyond the window are dropped one by one, so
//! that the rest of the message (and the catch-up it triggers) still counts.

use crate::ballot::Ballot;
use crate::core::Paxos;
use crate::msg::Msg;

/// Rounds above this are refused: `Ballot::next_for` adds to them.
pub const MAX_ROUND: u64 = 1 << 62;
/// How far beyond its applied prefix a node takes slots. Small on purpose: a candidate
/// fills every slot up to the highest in its promises with a no-op and proposes them
/// all, so this bounds what one hostile Promise can make a node allocate. A follower
/// further behind catches up through CatchUp before it accepts more.
pub const SLOT_WINDOW: u64 = 1 << 14;

impl Paxos {
    fn ballot_ok(&self, b: &Ballot) -> bool {
        (b.node as usize) < self.member_count() && b.round <= MAX_ROUND
    }

    fn slot_ok(&self, slot: u64) -> bool {
        slot >= 1 && slot <= self.commit().saturating_add(SLOT_WINDOW)
    }

    /// The message to act on (Accept entries out of the window removed), or why none.
    pub(crate) fn validate(&self, from: u32, mut msg: Msg) -> Result<Msg, &'static str> {
        let ok = match &mut msg {
            Msg::Prepare { ballot, from_slot } => {
                ballot.node == from && self.ballot_ok(ballot) && *from_slot <= MAX_ROUND
            }
            Msg::Promise { ballot, accepted } => {
                self.ballot_ok(ballot)
                    && accepted
                        .iter()
                        .all(|(s, b, _)| self.slot_ok(*s) && self.ballot_ok(b))
            }
            Msg::Accept {
                ballot, entries, ..
            } => {
                entries.retain(|(s, _)| self.slot_ok(*s));
                ballot.node == from && self.ballot_ok(ballot)
            }
            Msg::Accepted { ballot, .. } => self.ballot_ok(ballot),
            Msg::Nack { ballot, promised } => self.ballot_ok(ballot) && self.ballot_ok(promised),
            Msg::CatchUp { .. } => true,
            Msg::Chosen { entries } => entries.iter().all(|(s, _)| self.slot_ok(*s)),
        };
        if ok {
            Ok(msg)
        } else {
            Err("ballot names no member, is not the sender's, or a number is out of range")
        }
    }
}
