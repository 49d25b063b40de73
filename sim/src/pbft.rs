//! What the simulator adds for PBFT: the agreement invariant checked after every step,
//! and a network that alters messages in transit (what signatures are for).

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use sunder_pbft::{Body, Pbft, Signed, crypto::digest_of};
use sunder_wire::Op;

/// No two live replicas executed different batches at one sequence number: their hash
/// chains agree at the lower of their executed positions (a chain covers every batch up
/// to it, so one comparison covers the whole common prefix).
pub fn same_executions(nodes: &[(&str, &Pbft)]) -> Option<String> {
    for (i, (a, pa)) in nodes.iter().enumerate() {
        for (b, pb) in &nodes[i + 1..] {
            let at = pa.executed().min(pb.executed());
            let chain = |p: &Pbft| {
                if p.executed() == at {
                    Some(p.chain())
                } else {
                    p.history().get(&at).map(|e| e.chain)
                }
            };
            if at > 0
                && let (Some(x), Some(y)) = (chain(pa), chain(pb))
                && x != y
            {
                return Some(format!(
                    "{a} and {b} executed different requests at or before sequence number {at}"
                ));
            }
        }
    }
    None
}

/// The agreement invariant, and no message from an honest peer refused at the boundary
/// (altered messages fail their signature first and are counted apart).
pub fn honest(nodes: &[(&str, &Pbft)]) -> Option<String> {
    same_executions(nodes).or_else(|| {
        nodes
            .iter()
            .find(|(_, p)| p.rejected() > 0)
            .map(|(n, p)| format!("{n} refused {} message(s) from honest peers", p.rejected()))
    })
}

/// Alters a message the way a forger would, keeping it well formed: a different write in
/// a batch with the digests recomputed to match, another digest, or another sender.
pub fn tamper(s: &mut Signed, r: &mut ChaCha8Rng) -> bool {
    let forged = r.random_range(1..1000);
    match &mut s.body {
        Body::PrePrepare { digest, batch, .. } => alter_batch(batch, forged, digest),
        Body::Certs { certs } => certs.iter_mut().any(|c| {
            let Body::PrePrepare { digest, batch, .. } = &mut c.pre_prepare.body else {
                return false;
            };
            if !alter_batch(batch, forged, digest) {
                return false;
            }
            let d = *digest;
            for cm in &mut c.commits {
                if let Body::Commit { digest, .. } = &mut cm.body {
                    *digest = d;
                }
            }
            true
        }),
        // A transferred state with other contents, its proof's digests made to match.
        Body::State { snapshot, proof } => {
            snapshot.kv["k0"] = serde_json::json!(-forged);
            snapshot.chain[0] ^= 1;
            let d = digest_of(&*snapshot);
            for p in proof {
                if let Body::Checkpoint { digest, .. } = &mut p.body {
                    *digest = d;
                }
            }
            true
        }
        Body::Prepare { digest, .. } | Body::Commit { digest, .. } => {
            digest[0] ^= 1;
            true
        }
        _ => {
            s.from ^= 1;
            true
        }
    }
}

fn alter_batch(batch: &mut [sunder_pbft::Req], forged: i64, digest: &mut [u8; 32]) -> bool {
    let Some(req) = batch.first_mut() else {
        return false;
    };
    let key = req.op.key().unwrap_or("k0").to_string();
    req.op = Op::Write {
        key,
        value: -forged,
    };
    *digest = digest_of(&*batch);
    true
}
