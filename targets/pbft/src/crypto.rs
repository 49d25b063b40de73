//! Keys, signatures and digests. Pure: nothing here reads the OS's entropy.
//!
//! Until the controller hands out real keys (the node slice of issue #13), every replica
//! derives all key pairs from the run's `key_seed` (`--opt key_seed=N`, default 0) and the
//! replica's index, so all replicas agree on the public keys without any exchange.
//! [`Keys::new`] takes a secret key and the public keys as given, which is what a
//! controller-made key file will feed it.

use crate::msg::{Body, Digest, Signed};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// SHA-256 of a value's JSON encoding (struct fields in declaration order, maps sorted:
/// every replica computes the same bytes).
pub fn digest_of<T: Serialize + ?Sized>(v: &T) -> Digest {
    let bytes = serde_json::to_vec(v).expect("serializable");
    Sha256::digest(&bytes).into()
}

/// Chains a batch digest onto the hash chain of everything executed before it.
pub fn chain(prev: &Digest, batch: &Digest) -> Digest {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(batch);
    h.finalize().into()
}

/// This replica's signing key and every replica's public key, by index.
#[derive(Debug, Clone)]
pub struct Keys {
    me: u32,
    secret: SigningKey,
    public: Vec<VerifyingKey>,
}

/// Why a key set cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("public key {0} is not a valid ed25519 point")]
    BadPublic(usize),
    #[error("the secret key does not match public key {0}")]
    Mismatch(u32),
    #[error("the secret key is not 64 hex digits")]
    BadSecret,
    #[error("client key {0} is not a valid ed25519 public key")]
    BadClient(usize),
    #[error("public keys file: {0}")]
    BadFile(String),
}

fn secret_for(key_seed: u64, index: u32) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"sunder-pbft replica key v1");
    h.update(key_seed.to_le_bytes());
    h.update(index.to_le_bytes());
    h.finalize().into()
}

impl Keys {
    /// A key set from a secret key and every replica's public key (32 bytes each).
    pub fn new(me: u32, secret: [u8; 32], public: &[[u8; 32]]) -> Result<Keys, KeyError> {
        let public = public
            .iter()
            .enumerate()
            .map(|(i, p)| VerifyingKey::from_bytes(p).map_err(|_| KeyError::BadPublic(i)))
            .collect::<Result<Vec<_>, _>>()?;
        let secret = SigningKey::from_bytes(&secret);
        if public.get(me as usize) != Some(&secret.verifying_key()) {
            return Err(KeyError::Mismatch(me));
        }
        Ok(Keys { me, secret, public })
    }

    /// The key set every replica derives from `key_seed` (see the module doc).
    pub fn derived(me: u32, n: usize, key_seed: u64) -> Keys {
        let public: Vec<[u8; 32]> = (0..n as u32)
            .map(|i| {
                SigningKey::from_bytes(&secret_for(key_seed, i))
                    .verifying_key()
                    .to_bytes()
            })
            .collect();
        Keys::new(me, secret_for(key_seed, me), &public).expect("derived keys match")
    }

    /// The secret key of replica `index` under `key_seed` (tests forge with it).
    pub fn derived_secret(key_seed: u64, index: u32) -> [u8; 32] {
        secret_for(key_seed, index)
    }

    pub fn sign(&self, body: Body) -> Signed {
        let sig = self.secret.sign(&signed_bytes(self.me, &body));
        Signed {
            from: self.me,
            body,
            sig: sig.to_bytes().to_vec(),
        }
    }

    /// This replica's signature on raw bytes (a reply to a client).
    pub fn sign_bytes(&self, bytes: &[u8]) -> [u8; 64] {
        self.secret.sign(bytes).to_bytes()
    }

    /// Whether `s` carries a valid signature of the replica it names.
    pub fn verify(&self, s: &Signed) -> bool {
        let Some(key) = self.public.get(s.from as usize) else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(&s.sig) else {
            return false;
        };
        key.verify(&signed_bytes(s.from, &s.body), &sig).is_ok()
    }
}

/// What a signature covers: a domain tag, the sender and the body.
fn signed_bytes(from: u32, body: &Body) -> Vec<u8> {
    let mut b = b"sunder-pbft msg v1\0".to_vec();
    b.extend_from_slice(&from.to_le_bytes());
    serde_json::to_writer(&mut b, body).expect("serializable");
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_sender_and_body() {
        let a = Keys::derived(0, 4, 7);
        let b = Keys::derived(1, 4, 7);
        let s = a.sign(Body::FetchState { seq: 3 });
        assert!(b.verify(&s) && a.verify(&s));
        let mut claims_other = s.clone();
        claims_other.from = 2;
        assert!(!b.verify(&claims_other));
        let mut altered = s.clone();
        altered.body = Body::FetchState { seq: 4 };
        assert!(!b.verify(&altered));
        let mut short = s;
        short.sig.pop();
        assert!(!b.verify(&short));
        // Another run's keys do not verify this run's messages.
        assert!(!Keys::derived(1, 4, 8).verify(&a.sign(Body::Fetch { from: 1 })));
    }

    #[test]
    fn a_secret_that_is_not_the_named_replicas_is_refused() {
        let p: Vec<[u8; 32]> = (0..4)
            .map(|i| {
                SigningKey::from_bytes(&Keys::derived_secret(1, i))
                    .verifying_key()
                    .to_bytes()
            })
            .collect();
        assert!(Keys::new(2, Keys::derived_secret(1, 2), &p).is_ok());
        assert_eq!(
            Keys::new(2, Keys::derived_secret(1, 3), &p).unwrap_err(),
            KeyError::Mismatch(2)
        );
    }
}
