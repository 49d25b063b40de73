//! The boundary check on every peer message, after its signature and before the core
//! acts on it: sizes bounded (batches, certificates, snapshots), numbers in range (so that
//! `view + 1` and window arithmetic cannot overflow), a batch matching its digest, and no
//! admin operation inside a batch. A message from an honest replica always passes: what
//! is merely stale or ahead of this replica (outside its window, for an old view) is
//! ignored later, not refused here.

use crate::core::{MAX_BATCH, Pbft};
use crate::crypto::digest_of;
use crate::msg::{Body, Req, Signed};

/// Views and sequence numbers above this are refused.
pub const MAX_NUMBER: u64 = 1 << 60;
/// Most clients in a transferred reply cache.
pub const MAX_CLIENTS: usize = 1 << 16;
/// Most commit certificates in one answer.
pub const MAX_CERTS: usize = 64;

impl Pbft {
    fn batch_ok(batch: &[Req]) -> bool {
        batch.len() <= MAX_BATCH
            && batch.iter().all(|r| {
                // A client signature is 64 bytes, in hex.
                r.op.is_data() && r.sig.as_ref().is_none_or(|s| s.len() == 128)
            })
    }

    /// Structure of a signed message nested in a certificate (its signature is checked
    /// where the certificate is).
    fn nested_ok(&self, s: &Signed, depth: u8) -> bool {
        (s.from as usize) < self.n() && s.sig.len() == 64 && self.body_ok(&s.body, depth)
    }

    fn body_ok(&self, b: &Body, depth: u8) -> bool {
        let n = self.n();
        let num = |x: u64| x <= MAX_NUMBER;
        match b {
            Body::PrePrepare {
                view,
                seq,
                digest,
                batch,
            } => num(*view) && num(*seq) && Self::batch_ok(batch) && digest_of(batch) == *digest,
            Body::Prepare { view, seq, .. } | Body::Commit { view, seq, .. } => {
                num(*view) && num(*seq)
            }
            Body::Checkpoint { seq, .. } => num(*seq),
            Body::ViewChange {
                view,
                stable,
                proof,
                prepared,
            } => {
                num(*view)
                    && num(*stable)
                    && proof.len() <= n
                    && prepared.len() as u64 <= self.window()
                    && proof.iter().all(|s| self.nested_ok(s, depth))
                    && prepared.iter().all(|c| {
                        c.prepares.len() <= n
                            && self.nested_ok(&c.pre_prepare, depth)
                            && c.prepares.iter().all(|p| self.nested_ok(p, depth))
                    })
            }
            // A new view nests view changes, which nest no new views.
            Body::NewView {
                view,
                view_changes,
                pre_prepares,
            } => {
                depth == 0
                    && num(*view)
                    && view_changes.len() <= n
                    && pre_prepares.len() as u64 <= self.window()
                    && view_changes.iter().all(|s| {
                        matches!(s.body, Body::ViewChange { .. }) && self.nested_ok(s, depth + 1)
                    })
                    && pre_prepares.iter().all(|s| self.nested_ok(s, depth + 1))
            }
            Body::Forward { req } => Self::batch_ok(std::slice::from_ref(req)),
            Body::Status {
                view,
                stable,
                executed,
                ..
            } => num(*view) && num(*stable) && num(*executed),
            Body::Fetch { from } => num(*from),
            Body::Certs { certs } => {
                certs.len() <= MAX_CERTS
                    && certs.iter().all(|c| {
                        c.commits.len() <= n
                            && self.nested_ok(&c.pre_prepare, depth)
                            && c.commits.iter().all(|p| self.nested_ok(p, depth))
                    })
            }
            Body::FetchState { seq } => num(*seq),
            Body::State { snapshot, proof } => {
                num(snapshot.seq)
                    && snapshot.replies.len() <= MAX_CLIENTS
                    && snapshot.kv.is_object()
                    && proof.len() <= n
                    && proof.iter().all(|s| self.nested_ok(s, depth))
            }
            Body::FetchNewView { view } => num(*view),
        }
    }

    /// The message to act on, or why none.
    pub(crate) fn validate(&self, s: &Signed) -> Result<(), &'static str> {
        if self.body_ok(&s.body, 0) {
            Ok(())
        } else {
            Err("oversized, out of range, or a batch that does not match its digest")
        }
    }
}
