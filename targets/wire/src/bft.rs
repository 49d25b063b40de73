//! What a Byzantine-fault-tolerant target's clients sign, and what its replicas sign back.
//!
//! A BFT replica cannot trust the connection a request came on: another replica may relay
//! it, and a faulty primary could make one up. So a request carries its client's id, a
//! timestamp (increasing per client: a replica executes at most one request per timestamp)
//! and the client's ed25519 signature; a reply carries the replica's. The client accepts a
//! result only when f+1 replicas signed the same one.
//!
//! This crate holds only the bytes a signature covers (so that the replicas in
//! `targets/pbft` and the client in `workloads` cannot drift); each side does its own
//! cryptography.
//!
//! ```text
//!  {"id":7,"op":"write","key":"k","value":1,"auth":{"client":2,"ts":41,"sig":"<hex>"}}
//!  {"id":7,"ok":true,"committed":{..},"signed":{"replica":"n3","view":0,"client":2,"ts":41,"sig":"<hex>"}}
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
    /// ed25519, 64 bytes as lowercase hex.
    pub sig: String,
}

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
