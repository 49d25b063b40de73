//! Certificates: checking the proofs a view change carries, and the new primary's choice
//! of what to re-issue (Castro and Liskov's set O), computed the same way by the new
//! primary and by every backup that checks its new-view message.

use crate::core::Pbft;
use crate::crypto::digest_of;
use crate::msg::{Body, Digest, PreparedCert, Req, Signed};
use std::collections::{BTreeMap, BTreeSet};

/// One re-issued slot of a new view: its sequence number, digest and batch (empty: null).
pub type Reissue = (u64, Digest, Vec<Req>);

impl Pbft {
    /// A checkpoint proof for `seq`: a quorum of distinct, valid checkpoint messages that
    /// agree on one digest (seq 0 is the initial state and needs none). The digest, if valid.
    pub(crate) fn checkpoint_proof(&self, seq: u64, proof: &[Signed]) -> Option<Option<Digest>> {
        if seq == 0 {
            return proof.is_empty().then_some(None);
        }
        let mut from = BTreeSet::new();
        let mut digest = None;
        for s in proof {
            let Body::Checkpoint {
                seq: s_seq,
                digest: d,
            } = &s.body
            else {
                return None;
            };
            if *s_seq != seq || digest.is_some_and(|x| x != *d) || !self.sig_ok(s) {
                return None;
            }
            digest = Some(*d);
            from.insert(s.from);
        }
        (from.len() >= self.quorum() && from.len() == proof.len()).then_some(digest)
    }

    /// A prepared certificate for a view below `before`: the pre-prepare from that view's
    /// primary with a batch matching its digest, and a quorum minus one of matching
    /// prepares from distinct backups. Its (view, seq, digest) if valid.
    pub(crate) fn prepared_cert(
        &self,
        c: &PreparedCert,
        before: u64,
    ) -> Option<(u64, u64, Digest)> {
        let Body::PrePrepare {
            view,
            seq,
            digest,
            batch,
        } = &c.pre_prepare.body
        else {
            return None;
        };
        if *view >= before
            || c.pre_prepare.from != self.primary_of(*view)
            || digest_of(batch) != *digest
            || !self.sig_ok(&c.pre_prepare)
        {
            return None;
        }
        let mut from = BTreeSet::new();
        for p in &c.prepares {
            let ok = matches!(&p.body, Body::Prepare { view: v, seq: s, digest: d }
                if v == view && s == seq && d == digest);
            if !ok || p.from == c.pre_prepare.from || !self.sig_ok(p) || !from.insert(p.from) {
                return None;
            }
        }
        (from.len() + 1 >= self.quorum()).then_some((*view, *seq, *digest))
    }

    /// Whether a view-change message for `view` is well formed and proves what it claims.
    pub(crate) fn view_change_ok(&self, vc: &Signed, view: u64) -> bool {
        let Body::ViewChange {
            view: v,
            stable,
            proof,
            prepared,
        } = &vc.body
        else {
            return false;
        };
        if *v != view || !self.sig_ok(vc) || self.checkpoint_proof(*stable, proof).is_none() {
            return false;
        }
        let mut seqs = BTreeSet::new();
        prepared.iter().all(|c| {
            self.prepared_cert(c, view).is_some_and(|(_, seq, _)| {
                seq > *stable && seq <= stable.saturating_add(self.window()) && seqs.insert(seq)
            })
        })
    }

    /// Set O: from a quorum of checked view changes, the stable checkpoint the new view
    /// starts from (the highest proven) and, for every sequence number above it up to the
    /// highest prepared, the batch prepared in the highest view, or a null request.
    pub(crate) fn reissue(&self, view_changes: &[Signed]) -> (u64, Vec<Reissue>) {
        let mut min_s = 0;
        let mut best: BTreeMap<u64, (u64, Digest, Vec<Req>)> = BTreeMap::new();
        for vc in view_changes {
            let Body::ViewChange {
                stable, prepared, ..
            } = &vc.body
            else {
                continue;
            };
            min_s = min_s.max(*stable);
            if self.bugs.no_view_change_proof {
                continue;
            }
            for c in prepared {
                if let Body::PrePrepare {
                    view,
                    seq,
                    digest,
                    batch,
                } = &c.pre_prepare.body
                    && best.get(seq).is_none_or(|(v, _, _)| view > v)
                {
                    best.insert(*seq, (*view, *digest, batch.clone()));
                }
            }
        }
        let max_s = best.keys().next_back().copied().unwrap_or(0).max(min_s);
        let o = (min_s + 1..=max_s)
            .map(|seq| match best.remove(&seq) {
                Some((_, d, b)) => (seq, d, b),
                None => (seq, digest_of(&Vec::<Req>::new()), Vec::new()),
            })
            .collect();
        (min_s, o)
    }

    /// Checks a new-view message: from the view's primary, a quorum of distinct valid view
    /// changes for it, and exactly the pre-prepares set O calls for, signed by the primary.
    pub(crate) fn new_view_ok(&self, nv: &Signed) -> bool {
        let Body::NewView {
            view,
            view_changes,
            pre_prepares,
        } = &nv.body
        else {
            return false;
        };
        if nv.from != self.primary_of(*view) || !self.sig_ok(nv) {
            return false;
        }
        let mut from = BTreeSet::new();
        for vc in view_changes {
            if !from.insert(vc.from) || !self.view_change_ok(vc, *view) {
                return false;
            }
        }
        if from.len() < self.quorum() {
            return false;
        }
        let (_, o) = self.reissue(view_changes);
        o.len() == pre_prepares.len()
            && o.iter().zip(pre_prepares).all(|((seq, d, b), pp)| {
                pp.from == nv.from
                    && self.sig_ok(pp)
                    && matches!(&pp.body, Body::PrePrepare { view: v, seq: s, digest, batch }
                        if v == view && s == seq && digest == d && batch == b)
            })
    }
}
