//! The keys a real run hands out, and the two files they travel in.
//!
//! The controller makes every key of a run from the run seed ([`replica_secret`],
//! [`client_secret`]: SHA-256 of a domain tag, the seed and the index), so that a run
//! replays with the same keys. These are test keys: anyone with the seed can make them,
//! which is what a reproducible test wants and what a deployment never would.
//!
//! ```text
//!   nodes/<id>/secret.key     64 hex digits (mode 0600)      ─┐
//!   nodes/<id>/public-keys.json  {"replicas":{"n1":"<hex>",..},├─► load() ─► Keys + ClientKeys
//!                                 "clients":["<hex>",..]}     ─┘    (refuses anything malformed)
//! ```
//!
//! A client's id is its position in `clients`.

use crate::crypto::{KeyError, Keys};
use ed25519_dalek::{Signature, SigningKey};
use ed25519_zebra::{VerificationKey, VerificationKeyBytes, batch};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use sunder_wire::bft::{from_hex, request_bytes};
use sunder_wire::{ClientSig, Op};

/// Most client keys a run may hand out (a bound on what a replica reads).
pub const MAX_CLIENT_KEYS: usize = 1 << 16;

/// The public-keys file: every replica's key by node id, every client's by position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeys {
    pub replicas: BTreeMap<String, String>,
    pub clients: Vec<String>,
}

/// The clients' public keys, by client id.
///
/// Client signatures are checked under ZIP 215's rule (`ed25519-zebra`): cofactored, so a
/// batch check ([`ClientKeys::verify_many`]) and one check per signature always agree.
/// That matters here: a replica that checks a burst of requests at once must accept
/// exactly what a replica checking them one by one accepts, or a client could make honest
/// replicas disagree about a pre-prepare. (ed25519-dalek's own batch check is not so: it
/// accepts some signatures with small-order components that its single check refuses.)
#[derive(Debug, Clone)]
pub struct ClientKeys {
    keys: Vec<(VerificationKeyBytes, VerificationKey)>,
}

/// One client signature to check: client, timestamp, operation, signature (hex).
pub(crate) type SigItem<'a> = (u64, u64, &'a Op, &'a str);

impl ClientKeys {
    pub fn new(public: &[[u8; 32]]) -> Result<ClientKeys, KeyError> {
        let keys = public
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let bytes = VerificationKeyBytes::from(*p);
                VerificationKey::try_from(bytes)
                    .map(|k| (bytes, k))
                    .map_err(|_| KeyError::BadClient(i))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ClientKeys { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `auth` is client `auth.client`'s signature on `op` at `auth.ts`.
    pub fn verify(&self, auth: &ClientSig, op: &Op) -> bool {
        self.verify_parts(auth.client, auth.ts, op, &auth.sig)
    }

    pub(crate) fn verify_parts(&self, client: u64, ts: u64, op: &Op, sig_hex: &str) -> bool {
        self.parse(&(client, ts, op, sig_hex))
            .is_some_and(|(_, key, sig, msg)| key.verify(&sig, &msg).is_ok())
    }

    /// The verdict of [`ClientKeys::verify_parts`] on each item, reached with one batch
    /// check when every signature is good (about half the work of checking each alone)
    /// and one check each otherwise. Deterministic: the batch's random coefficients come
    /// from a hash of the whole batch, so no one can choose signatures after them.
    pub(crate) fn verify_many(&self, items: &[SigItem<'_>]) -> Vec<bool> {
        let parsed: Vec<_> = items.iter().map(|i| self.parse(i)).collect();
        let mut seed = Sha256::new();
        let mut batch = batch::Verifier::new();
        let mut queued = 0;
        for (bytes, _, sig, msg) in parsed.iter().flatten() {
            seed.update(bytes.as_ref());
            seed.update(sig.to_bytes());
            seed.update((msg.len() as u64).to_le_bytes());
            seed.update(msg);
            batch.queue((*bytes, *sig, msg));
            queued += 1;
        }
        let all_good = queued > 1
            && batch
                .verify(ChaCha20Rng::from_seed(seed.finalize().into()))
                .is_ok();
        parsed
            .iter()
            .map(|p| {
                p.as_ref()
                    .is_some_and(|(_, key, sig, msg)| all_good || key.verify(sig, msg).is_ok())
            })
            .collect()
    }

    /// The key, the signature and the signed bytes of an item; `None` for an unknown
    /// client or a signature that is not 64 bytes of hex.
    fn parse(
        &self,
        &(client, ts, op, sig_hex): &SigItem<'_>,
    ) -> Option<(VerificationKeyBytes, &VerificationKey, Signature, Vec<u8>)> {
        let (bytes, key) = usize::try_from(client)
            .ok()
            .and_then(|c| self.keys.get(c))?;
        let sig = Signature::from_slice(&from_hex(sig_hex)?).ok()?;
        Some((*bytes, key, sig, request_bytes(client, ts, op)))
    }
}

fn derive(tag: &[u8], seed: u64, index: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(tag);
    h.update(seed.to_le_bytes());
    h.update(index.to_le_bytes());
    h.finalize().into()
}

/// Replica `index`'s secret key (its position among the sorted members) in a run.
pub fn replica_secret(seed: u64, index: usize) -> [u8; 32] {
    derive(b"sunder-pbft run replica key v1", seed, index as u64)
}

/// Client `id`'s secret key in a run.
pub fn client_secret(seed: u64, id: u64) -> [u8; 32] {
    derive(b"sunder-pbft run client key v1", seed, id)
}

/// The public key of a secret key.
pub fn public_of(secret: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(secret).verifying_key().to_bytes()
}

/// The public-keys file of a run: `members` sorted as the nodes sort them, `clients` ids.
pub fn public_keys(seed: u64, members: &[String], clients: u64) -> PublicKeys {
    let mut sorted = members.to_vec();
    sorted.sort();
    PublicKeys {
        replicas: sorted
            .iter()
            .enumerate()
            .map(|(i, m)| (m.clone(), hex(&public_of(&replica_secret(seed, i)))))
            .collect(),
        clients: (0..clients)
            .map(|c| hex(&public_of(&client_secret(seed, c))))
            .collect(),
    }
}

pub fn hex(b: &[u8]) -> String {
    sunder_wire::bft::to_hex(b)
}

fn key32(s: &str) -> Option<[u8; 32]> {
    from_hex(s.trim())?.try_into().ok()
}

/// Reads both files' contents into the replica's keys: `me` among `members` (sorted, as
/// the core numbers them). Every key must parse, every member have a key and no one else.
pub fn load(
    me: &str,
    members: &[String],
    secret_hex: &str,
    public_json: &str,
) -> Result<(Keys, ClientKeys), KeyError> {
    let secret = key32(secret_hex).ok_or(KeyError::BadSecret)?;
    let public: PublicKeys =
        serde_json::from_str(public_json).map_err(|e| KeyError::BadFile(e.to_string()))?;
    if let Some(stranger) = public.replicas.keys().find(|r| !members.contains(r)) {
        return Err(KeyError::BadFile(format!(
            "a key for {stranger}, who is not a member"
        )));
    }
    if public.clients.len() > MAX_CLIENT_KEYS {
        return Err(KeyError::BadFile(format!(
            "{} client keys (at most {MAX_CLIENT_KEYS})",
            public.clients.len()
        )));
    }
    let mut replicas = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let text = public
            .replicas
            .get(m)
            .ok_or_else(|| KeyError::BadFile(format!("no key for member {m}")))?;
        replicas.push(key32(text).ok_or(KeyError::BadPublic(i))?);
    }
    let clients = public
        .clients
        .iter()
        .enumerate()
        .map(|(i, c)| key32(c).ok_or(KeyError::BadClient(i)))
        .collect::<Result<Vec<_>, _>>()?;
    let index = members
        .iter()
        .position(|m| m == me)
        .ok_or_else(|| KeyError::BadFile(format!("{me} is not a member")))?;
    let keys = Keys::new(index as u32, secret, &replicas)?;
    Ok((keys, ClientKeys::new(&clients)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer;

    fn members() -> Vec<String> {
        ["n1", "n2", "n3", "n4"].map(String::from).to_vec()
    }

    /// Differential: a batch check gives every item the verdict of checking it alone,
    /// on seeded mixes of good signatures and each way of being bad.
    #[test]
    fn a_batch_check_agrees_with_one_check_each() {
        use rand::{RngExt, SeedableRng};
        let public: Vec<[u8; 32]> = (0..4).map(|c| public_of(&client_secret(5, c))).collect();
        let clients = ClientKeys::new(&public).unwrap();
        let sign = |c: u64, ts: u64, op: &Op| {
            hex(&SigningKey::from_bytes(&client_secret(5, c))
                .sign(&request_bytes(c, ts, op))
                .to_bytes())
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let (mut good, mut bad) = (0, 0);
        for round in 0..60 {
            let size = rng.random_range(1..12);
            let items: Vec<(u64, u64, Op, String)> = (0..size)
                .map(|i| {
                    let c = rng.random_range(0..4u64);
                    let ts = round * 100 + i;
                    let op = Op::Write {
                        key: format!("k{i}"),
                        value: i as i64,
                    };
                    let sig = sign(c, ts, &op);
                    match rng.random_range(0..8) {
                        0 => (c, ts + 1, op, sig),       // another timestamp
                        1 => ((c + 1) % 4, ts, op, sig), // another client's
                        2 => (9, ts, op, sig),           // no such client
                        3 => {
                            let mut b = from_hex(&sig).unwrap();
                            b[rng.random_range(0..64)] ^= 1 << rng.random_range(0..8);
                            (c, ts, op, hex(&b)) // a flipped bit
                        }
                        4 => (c, ts, op, sig[..126].to_string()), // too short
                        _ => (c, ts, op, sig),
                    }
                })
                .collect();
            let refs: Vec<SigItem<'_>> = items
                .iter()
                .map(|(c, ts, op, sig)| (*c, *ts, op, sig.as_str()))
                .collect();
            let alone: Vec<bool> = refs
                .iter()
                .map(|&(c, ts, op, sig)| clients.verify_parts(c, ts, op, sig))
                .collect();
            assert_eq!(clients.verify_many(&refs), alone, "round {round}");
            good += alone.iter().filter(|ok| **ok).count();
            bad += alone.iter().filter(|ok| !**ok).count();
        }
        // Both verdicts were exercised, and all-good batches too (most rounds of one).
        assert!(good > 100 && bad > 50, "{good} good, {bad} bad");
        let all_good: Vec<(u64, u64, Op, String)> = (0..20)
            .map(|i| {
                let op = Op::Read { key: "k".into() };
                let sig = sign(i % 4, i, &op);
                (i % 4, i, op, sig)
            })
            .collect();
        let refs: Vec<SigItem<'_>> = all_good
            .iter()
            .map(|(c, ts, op, sig)| (*c, *ts, op, sig.as_str()))
            .collect();
        assert!(clients.verify_many(&refs).into_iter().all(|ok| ok));
    }

    #[test]
    fn a_run_s_files_load_and_a_client_signature_verifies() {
        let public = serde_json::to_string(&public_keys(9, &members(), 3)).unwrap();
        let (keys, clients) = load("n3", &members(), &hex(&replica_secret(9, 2)), &public).unwrap();
        assert_eq!(clients.len(), 3);
        let other = load("n1", &members(), &hex(&replica_secret(9, 0)), &public)
            .unwrap()
            .0;
        assert!(other.verify(&keys.sign(crate::Body::Fetch { from: 1 })));
        let op = Op::Read { key: "k".into() };
        let sig = SigningKey::from_bytes(&client_secret(9, 1)).sign(&request_bytes(1, 5, &op));
        let auth = ClientSig {
            client: 1,
            ts: 5,
            sig: hex(&sig.to_bytes()),
        };
        assert!(clients.verify(&auth, &op));
        // Another client's id, another timestamp, another op, an unknown client: refused.
        for (c, ts, o) in [(0, 5, op.clone()), (1, 6, op.clone()), (7, 5, op.clone())] {
            let a = ClientSig {
                client: c,
                ts,
                ..auth.clone()
            };
            assert!(!clients.verify(&a, &o));
        }
        assert!(!clients.verify(&auth, &Op::Read { key: "j".into() }));
        // The same seed gives the same keys; another seed others.
        assert_eq!(public_keys(9, &members(), 3), public_keys(9, &members(), 3));
        assert_ne!(
            public_keys(9, &members(), 3),
            public_keys(10, &members(), 3)
        );
    }

    #[test]
    fn malformed_or_mismatched_files_are_refused() {
        let good = public_keys(1, &members(), 2);
        let text = |p: &PublicKeys| serde_json::to_string(p).unwrap();
        let secret = hex(&replica_secret(1, 0));
        assert!(load("n1", &members(), &secret, &text(&good)).is_ok());
        assert_eq!(
            load("n1", &members(), "abc", &text(&good)).unwrap_err(),
            KeyError::BadSecret
        );
        // Another replica's secret.
        assert_eq!(
            load("n1", &members(), &hex(&replica_secret(1, 1)), &text(&good)).unwrap_err(),
            KeyError::Mismatch(0)
        );
        assert!(matches!(
            load("n1", &members(), &secret, "{not json").unwrap_err(),
            KeyError::BadFile(_)
        ));
        let mut missing = good.clone();
        missing.replicas.remove("n4");
        assert!(matches!(
            load("n1", &members(), &secret, &text(&missing)).unwrap_err(),
            KeyError::BadFile(_)
        ));
        let mut stranger = good.clone();
        stranger
            .replicas
            .insert("n9".into(), good.replicas["n4"].clone());
        assert!(load("n1", &members(), &secret, &text(&stranger)).is_err());
        let mut bad_client = good.clone();
        bad_client.clients[1] = "00".into();
        assert_eq!(
            load("n1", &members(), &secret, &text(&bad_client)).unwrap_err(),
            KeyError::BadClient(1)
        );
        let extra = r#"{"replicas":{},"clients":[],"more":1}"#;
        assert!(load("n1", &members(), &secret, extra).is_err());
    }
}
