//! What a Byzantine-fault-tolerant target's clients sign, and what its replicas sign back.
//!
//! A BFT replica cannot trust the connection a request came on: another replica may relay
//! it, and a faulty primary could make one up. So a request carries its client's id, a
//! timestamp (increasing per client: a replica executes at most one request per timestamp)
//! and the client's ed25519 signature; a reply carries the replica's. The client accepts a
//! result only when f+1 replicas signed the same one.
//!
//! This crate holds only the bytes a signature covers and the hashing of batch-signed
//! replies (so that the replicas in `targets/pbft` and the client in `workloads` cannot
//! drift); each side does its own signing and verifying.
//!
//! ```text
//!  {"id":7,"op":"write","key":"k","value":1,"auth":{"client":2,"ts":41,"sig":"<hex>"}}
//!  {"id":7,"ok":true,"committed":{..},"signed":{"replica":"n3","view":0,"client":2,"ts":41,"sig":"<hex>"}}
//! ```
//!
//! **Batch-signed replies.** A replica that executes a batch answers every client of it
//! with one signature: over [`batch_reply_bytes`], which names the root of a Merkle tree
//! (SHA-256) whose leaves are the replies' [`reply_leaf`]s. Each reply carries a
//! [`ReplyBatch`]: its leaf's position, the number of leaves and the sibling hashes from
//! its leaf to the root, so the client checks its own reply against the signature without
//! seeing the others.
//!
//! ```text
//!                 root ◄── signed once: batch_reply_bytes(replica, view, count, root)
//!               /      \
//!           h(0,1)     h(2,3)          node = SHA-256(0x01 ‖ left ‖ right)
//!           /   \      /   \
//!         L0    L1    L2   EMPTY       leaf = SHA-256(0x00 ‖ reply_bytes(..)),
//!                                      padded to a power of two with SHA-256(0x02)
//!  client 1's proof: {index: 1, count: 3, path: [L0, h(2,3)]}
//! ```

use crate::{Op, Response};
use serde::{Deserialize, Serialize};

/// A client's signature on one request: over [`request_bytes`]`(client, ts, op)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSig {
    pub client: u64,
    pub ts: u64,
    /// ed25519, 64 bytes as lowercase hex.
    pub sig: String,
}

/// A replica's signature on one reply: over [`reply_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplySig {
    /// The replica's node id, e.g. `n2`.
    pub replica: String,
    /// The replica's view when it answered.
    pub view: u64,
    pub client: u64,
    pub ts: u64,
    /// ed25519, 64 bytes as lowercase hex: over [`reply_bytes`], or with `batch` over
    /// [`batch_reply_bytes`].
    pub sig: String,
    /// Set when one signature answered a batch of requests: where this reply sits in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<ReplyBatch>,
}

/// Where a reply sits among the replies a replica signed at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyBatch {
    /// The reply's leaf, from 0.
    pub index: u32,
    /// The replies signed together, at most [`MAX_REPLY_BATCH`].
    pub count: u32,
    /// Sibling hashes (32 bytes as lowercase hex) from the leaf up to the root.
    pub path: Vec<String>,
}

/// The most replies one signature may cover (a bound on the proof a client checks).
pub const MAX_REPLY_BATCH: u32 = 1 << 16;

/// What a client signs: a domain tag, its id, the timestamp and the operation.
pub fn request_bytes(client: u64, ts: u64, op: &Op) -> Vec<u8> {
    let mut b = b"sunder-bft request v1\0".to_vec();
    b.extend_from_slice(&client.to_le_bytes());
    b.extend_from_slice(&ts.to_le_bytes());
    serde_json::to_writer(&mut b, op).expect("ops serialize");
    b
}

/// What a replica signs: a domain tag, who answers whom in which view, and the result
/// (`ok`, `value`, `error`, `definite`, `committed`; not the connection's request id and
/// not the leader hint, which are about the transport, not the result).
pub fn reply_bytes(replica: &str, view: u64, client: u64, ts: u64, resp: &Response) -> Vec<u8> {
    let mut b = b"sunder-bft reply v1\0".to_vec();
    serde_json::to_writer(&mut b, &(replica, view, client, ts)).expect("serializable");
    b.push(0);
    serde_json::to_writer(&mut b, &result_of(resp)).expect("serializable");
    b
}

/// A reply's leaf in a batch's Merkle tree.
pub fn reply_leaf(reply_bytes: &[u8]) -> [u8; 32] {
    hash(&[&[0], reply_bytes])
}

const EMPTY_LEAF: u8 = 2;

fn hash(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    hash(&[&[1], left, right])
}

/// Sibling hashes from a leaf up to the root.
pub type MerklePath = Vec<[u8; 32]>;

/// The tree's depth for `count` leaves: the proof's length.
fn depth(count: u32) -> usize {
    count.max(1).next_power_of_two().trailing_zeros() as usize
}

/// The root of the tree over `leaves` and each leaf's path to it (sibling hashes, leaf
/// first). `None` for no leaves or more than [`MAX_REPLY_BATCH`].
pub fn merkle(leaves: &[[u8; 32]]) -> Option<([u8; 32], Vec<MerklePath>)> {
    let count = u32::try_from(leaves.len()).ok()?;
    if count == 0 || count > MAX_REPLY_BATCH {
        return None;
    }
    let width = 1usize << depth(count);
    let empty = hash(&[&[EMPTY_LEAF]]);
    let mut level: Vec<[u8; 32]> = leaves.to_vec();
    level.resize(width, empty);
    let mut paths = vec![Vec::with_capacity(depth(count)); leaves.len()];
    let mut pos: Vec<usize> = (0..leaves.len()).collect();
    while level.len() > 1 {
        for (path, p) in paths.iter_mut().zip(pos.iter_mut()) {
            path.push(level[*p ^ 1]);
            *p /= 2;
        }
        level = level.chunks(2).map(|c| node(&c[0], &c[1])).collect();
    }
    Some((level[0], paths))
}

/// The root a proof leads to from `leaf`; `None` when the proof cannot be one of a tree
/// of `count` leaves (index out of range, a path of the wrong length, a sibling that is
/// not 32 bytes of hex).
pub fn root_from_path(leaf: [u8; 32], batch: &ReplyBatch) -> Option<[u8; 32]> {
    if batch.count == 0 || batch.count > MAX_REPLY_BATCH || batch.index >= batch.count {
        return None;
    }
    if batch.path.len() != depth(batch.count) {
        return None;
    }
    let mut h = leaf;
    let mut i = batch.index;
    for sib in &batch.path {
        let sib: [u8; 32] = from_hex(sib)?.try_into().ok()?;
        h = if i % 2 == 0 {
            node(&h, &sib)
        } else {
            node(&sib, &h)
        };
        i /= 2;
    }
    Some(h)
}

/// What a replica signs to answer a batch at once: a domain tag, who answers in which
/// view, how many replies, and their tree's root.
pub fn batch_reply_bytes(replica: &str, view: u64, count: u32, root: &[u8; 32]) -> Vec<u8> {
    let mut b = b"sunder-bft replies v1\0".to_vec();
    serde_json::to_writer(&mut b, &(replica, view, count)).expect("serializable");
    b.push(0);
    b.extend_from_slice(root);
    b
}

/// The part of a response two replicas must agree on for a client to accept it.
pub fn result_of(resp: &Response) -> serde_json::Value {
    serde_json::json!([
        resp.ok,
        resp.value,
        resp.error,
        resp.definite,
        resp.committed
    ])
}

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from lowercase or uppercase hex; `None` for anything else (odd length included).
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_junk() {
        assert_eq!(
            from_hex(&to_hex(&[0, 1, 0xab, 0xff])).unwrap(),
            vec![0, 1, 0xab, 0xff]
        );
        assert_eq!(from_hex("ABff").unwrap(), vec![0xab, 0xff]);
        for bad in ["a", "zz", "0g", "é0"] {
            assert!(from_hex(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn signed_bytes_cover_every_field_that_matters() {
        let w = Op::Write {
            key: "k".into(),
            value: 1,
        };
        let base = request_bytes(1, 2, &w);
        assert_ne!(base, request_bytes(2, 2, &w));
        assert_ne!(base, request_bytes(1, 3, &w));
        assert_ne!(
            base,
            request_bytes(
                1,
                2,
                &Op::Write {
                    key: "k".into(),
                    value: 2
                }
            )
        );
        let r = Response::ok(0, serde_json::json!(5));
        let b = reply_bytes("n1", 0, 1, 2, &r);
        assert_ne!(b, reply_bytes("n2", 0, 1, 2, &r));
        assert_ne!(b, reply_bytes("n1", 1, 1, 2, &r));
        assert_ne!(b, reply_bytes("n1", 0, 1, 3, &r));
        assert_ne!(
            b,
            reply_bytes("n1", 0, 1, 2, &Response::ok(0, serde_json::json!(6)))
        );
        // The transport's request id and the leader hint are not part of the result.
        let mut r2 = Response::ok(9, serde_json::json!(5));
        r2.leader = Some("n4".into());
        assert_eq!(b, reply_bytes("n1", 0, 1, 2, &r2));
    }

    fn leaves(n: u32) -> Vec<[u8; 32]> {
        (0..n)
            .map(|i| {
                reply_leaf(&reply_bytes(
                    "n1",
                    0,
                    u64::from(i),
                    1,
                    &Response::ok(0, serde_json::json!(i)),
                ))
            })
            .collect()
    }

    fn proof(index: u32, count: u32, path: &[[u8; 32]]) -> ReplyBatch {
        ReplyBatch {
            index,
            count,
            path: path.iter().map(|h| to_hex(h)).collect(),
        }
    }

    #[test]
    fn every_leaf_of_every_size_proves_its_way_to_the_root() {
        for n in [1, 2, 3, 4, 5, 7, 8, 9, 33, 64] {
            let l = leaves(n);
            let (root, paths) = merkle(&l).unwrap();
            for (i, path) in paths.iter().enumerate() {
                let b = proof(i as u32, n, path);
                assert_eq!(root_from_path(l[i], &b), Some(root), "leaf {i} of {n}");
                // Another leaf, another position or another count does not lead there.
                let other = l[(i + 1) % l.len()];
                if n > 1 {
                    assert_ne!(root_from_path(other, &b), Some(root));
                    let moved = proof((i as u32 + 1) % n, n, path);
                    assert_ne!(root_from_path(l[i], &moved), Some(root), "leaf {i} of {n}");
                }
            }
        }
        assert_eq!(
            merkle(&leaves(1)).unwrap().0,
            leaves(1)[0],
            "one leaf is its own root"
        );
        assert!(merkle(&[]).is_none());
    }

    #[test]
    fn malformed_proofs_are_refused() {
        let l = leaves(3);
        let (_, paths) = merkle(&l).unwrap();
        let good = proof(2, 3, &paths[2]);
        assert!(root_from_path(l[2], &good).is_some());
        for bad in [
            ReplyBatch {
                index: 3,
                ..good.clone()
            },
            ReplyBatch {
                count: 0,
                index: 0,
                ..good.clone()
            },
            ReplyBatch {
                count: MAX_REPLY_BATCH + 1,
                ..good.clone()
            },
            ReplyBatch {
                count: 5,
                ..good.clone()
            },
            ReplyBatch {
                path: good.path[..1].to_vec(),
                ..good.clone()
            },
            ReplyBatch {
                path: vec![good.path[0].clone(), "00".into()],
                ..good.clone()
            },
            ReplyBatch {
                path: vec![good.path[0].clone(), "zz".repeat(32)],
                ..good.clone()
            },
        ] {
            assert_eq!(root_from_path(l[2], &bad), None, "{bad:?}");
        }
        // The signed bytes name the count and the view.
        let r = [7u8; 32];
        assert_ne!(
            batch_reply_bytes("n1", 0, 3, &r),
            batch_reply_bytes("n1", 0, 4, &r)
        );
        assert_ne!(
            batch_reply_bytes("n1", 0, 3, &r),
            batch_reply_bytes("n1", 1, 3, &r)
        );
        assert_ne!(
            batch_reply_bytes("n1", 0, 3, &r),
            batch_reply_bytes("n2", 0, 3, &r)
        );
    }

    #[test]
    fn a_signed_request_round_trips_and_an_unsigned_one_has_no_auth() {
        let line =
            r#"{"id":7,"op":"write","key":"k","value":1,"auth":{"client":2,"ts":41,"sig":"00"}}"#;
        let r: crate::Request = serde_json::from_str(line).unwrap();
        assert_eq!(r.auth.as_ref().unwrap().ts, 41);
        assert_eq!(serde_json::to_string(&r).unwrap(), line);
        let plain: crate::Request = serde_json::from_str(r#"{"id":1,"op":"status"}"#).unwrap();
        assert!(plain.auth.is_none());
    }
}
