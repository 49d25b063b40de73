//! Client signatures checked ahead, a burst at a time.
//!
//! The node runtime steps a core with whatever inputs queued up while it was busy, and
//! first shows them to it ([`sunder_core::Protocol::prepare`]). PBFT checks every client
//! signature among them (signed requests, and the requests inside pre-prepares and relays
//! that it does not already hold) in one batch check ([`ClientKeys::verify_many`]) and
//! keeps each verdict until the next burst; the steps that follow look a signature up
//! here before checking it alone.
//!
//! ```text
//!   burst of inputs ─► prepare ─► verify_many (one batch check) ─► Prechecked
//!                         step(input) ─► client_sig_ok ─► Prechecked hit, or one check
//! ```
//!
//! The verdicts are exactly those of checking each signature alone (ZIP 215's rule, see
//! [`ClientKeys`]), so a core steps the same with or without them: the simulator, which
//! steps one input at a time, never calls `prepare`.

use crate::core::Pbft;
use crate::keyfile::{ClientKeys, SigItem};
use crate::msg::{Body, Req, Signed};
use std::collections::{BTreeMap, BTreeSet};
use sunder_core::Input;
use sunder_wire::Op;

/// A signature (hex), the operation it was checked against, and the verdict.
type Verdict = (String, Op, bool);

/// Verdicts on the client signatures of the current burst, by client and timestamp.
#[derive(Debug, Default)]
pub(crate) struct Prechecked {
    by_req: BTreeMap<(u64, u64), Vec<Verdict>>,
}

impl Prechecked {
    /// The verdict on this exact signature of this exact request, if the burst had it.
    fn verdict(&self, client: u64, ts: u64, op: &Op, sig: &str) -> Option<bool> {
        self.by_req
            .get(&(client, ts))?
            .iter()
            .find(|(s, o, _)| s == sig && o == op)
            .map(|(_, _, ok)| *ok)
    }
}

impl Pbft {
    /// Checks, in one batch, the client signatures of a burst of inputs about to be
    /// stepped, and keeps the verdicts for those steps.
    pub(crate) fn precheck(&mut self, inputs: &[Input<Signed>]) {
        self.prechecked = Prechecked::default();
        let Some(clients) = &self.clients else {
            return;
        };
        if self.bugs.skip_sig_check {
            return;
        }
        let mut found: Vec<SigItem<'_>> = Vec::new();
        for input in inputs {
            let reqs: &[Req] = match input {
                Input::Signed { op, auth, .. } if op.is_data() => {
                    found.push((auth.client, auth.ts, op, auth.sig.as_str()));
                    continue;
                }
                Input::Peer { msg, .. } => match &msg.body {
                    Body::PrePrepare { batch, .. } => batch,
                    Body::Forward { req } => std::slice::from_ref(req),
                    _ => continue,
                },
                _ => continue,
            };
            for r in reqs {
                if let Some(sig) = &r.sig
                    && self.pending.get(&(r.client, r.ts)) != Some(r)
                {
                    found.push((r.client, r.ts, &r.op, sig.as_str()));
                }
            }
        }
        // A request seen twice in the burst (from its client and in a pre-prepare) is
        // checked once.
        let mut seen = BTreeSet::new();
        let items: Vec<SigItem<'_>> = found
            .into_iter()
            .filter(|&(client, ts, _, sig)| seen.insert((client, ts, sig)))
            .collect();
        if items.len() < 2 {
            return; // nothing to share: the step checks it alone
        }
        let verdicts = clients.verify_many(&items);
        let mut by_req: BTreeMap<(u64, u64), Vec<Verdict>> = BTreeMap::new();
        for ((client, ts, op, sig), ok) in items.into_iter().zip(verdicts) {
            by_req
                .entry((client, ts))
                .or_default()
                .push((sig.to_owned(), op.clone(), ok));
        }
        self.prechecked = Prechecked { by_req };
    }

    /// Whether `sig` is `client`'s signature on `op` at `ts`: the burst's verdict if it
    /// had this signature, otherwise a check of it alone.
    pub(crate) fn client_sig_ok(
        &self,
        clients: &ClientKeys,
        client: u64,
        ts: u64,
        op: &Op,
        sig: &str,
    ) -> bool {
        self.prechecked
            .verdict(client, ts, op, sig)
            .unwrap_or_else(|| clients.verify_parts(client, ts, op, sig))
    }
}
