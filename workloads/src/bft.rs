//! [`BftClient`]: the client of a Byzantine-fault-tolerant target (PBFT). A single reply
//! proves nothing when up to f replicas may lie, so a result counts only when f+1 replicas
//! (at least one of them honest) signed the same one.
//!
//! ```text
//!  call(op) ─► take a client identity (id, key, next timestamp) from the pool
//!     │        sign (id, ts, op)                        (sunder_wire::bft::request_bytes)
//!     ├─► the primary it believes in (FirstSend::All: ┐
//!     │   every replica at once) ─────────────────────┤
//!     │   every `retransmit`: every replica with no   ├─► answers: each must be signed by
//!     │   exchange in flight (a killed one, later)  ──┘   the replica it came from, for
//!     │                                                   this id and ts (alone, or one of
//!     │                                                   a batch: its Merkle path leads to
//!     │                                                   the root signed); others ignored
//!     ▼
//!  f+1 matching results from distinct replicas ─► Ok / Fail as they say; the primary of
//!  their view is the next call's first stop. The op's deadline ─► Info (the request may
//!  still execute: it is never re-sent as another operation).
//! ```
//!
//! Identities: one per worker and final read at a time (the pool holds as many as the
//! controller made keys for). A timestamp is never reused, so a request that timed out
//! and executes later cannot be mistaken for the next one, and a replica executes at most
//! one request per timestamp. Admin operations (`status`, `dump`) go unsigned to the node
//! asked.

use crate::client::{Client, Endpoint, Outcome, errors};
use crate::dial::Dialer;
use crate::jsonlines::{JsonLinesClient, classify};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use sunder_wire::bft::{
    batch_reply_bytes, from_hex, reply_bytes, reply_leaf, request_bytes, result_of, root_from_path,
    to_hex,
};
use sunder_wire::{ClientSig, Op, Response};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, sleep_until};

/// The least time between retransmissions.
const MIN_RETRANSMIT: Duration = Duration::from_millis(20);

/// Where a call's request goes first.
///
/// Replies come back on the connection a request went out on, so a replica the client
/// has not asked cannot answer it: with [`FirstSend::Primary`] (Castro and Liskov's
/// client) a call needs the first retransmission to hear from f+1 replicas; with
/// [`FirstSend::All`] (as BFT-SMaRt's clients do) it completes in one round, at the cost
/// of every backup relaying the request to the primary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FirstSend {
    #[default]
    Primary,
    All,
}

impl std::str::FromStr for FirstSend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "primary" => Ok(FirstSend::Primary),
            "all" => Ok(FirstSend::All),
            _ => Err(format!("{s:?}: expected primary or all")),
        }
    }
}

/// Why a BFT client cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BftError {
    #[error("no client key: a BFT client needs at least one identity")]
    NoClients,
    #[error("replica {0} has no public key")]
    NoKey(String),
    #[error("the public key of replica {0} is not a valid ed25519 key")]
    BadKey(String),
}

struct Identity {
    id: u64,
    key: SigningKey,
    next_ts: u64,
}

/// A BFT client for one cluster. Must be used inside a tokio runtime.
pub struct BftClient {
    transport: Arc<JsonLinesClient>,
    /// Each endpoint's public key, in endpoint order.
    keys: Vec<VerifyingKey>,
    /// Endpoint indices in the replicas' own numbering (sorted ids): view v's primary is
    /// `by_rank[v % n]`.
    by_rank: Vec<usize>,
    f: usize,
    pool: Mutex<Vec<Identity>>,
    free: Semaphore,
    primary: AtomicUsize,
    retransmit: Duration,
    first_send: FirstSend,
    bad_replies: AtomicU64,
    /// Batch signatures verified lately (replica, signed bytes, signature), newest last:
    /// one signature answers every client of a batch, so the calls of one batch that
    /// share this client check it once.
    verified: Mutex<VecDeque<Verified>>,
}

/// A batch signature found valid: the replica's endpoint, the bytes signed, the signature.
type Verified = (usize, Vec<u8>, [u8; 64]);

/// How many batch signatures [`BftClient`] remembers as verified.
const VERIFIED_CACHE: usize = 64;

impl std::fmt::Debug for BftClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BftClient")
            .field("endpoints", &self.transport.endpoints())
            .field("f", &self.f)
            .finish_non_exhaustive()
    }
}

impl BftClient {
    /// A client of `endpoints` (replicas), with the clients' secret keys (client id =
    /// position) and each replica's public key by node id. `retransmit`: how long to wait
    /// on the primary before asking every replica (and then between retransmissions).
    pub fn new(
        endpoints: Vec<Endpoint>,
        dialer: Dialer,
        client_secrets: &[[u8; 32]],
        replica_keys: &[(String, [u8; 32])],
        retransmit: Duration,
    ) -> Result<BftClient, BftError> {
        if client_secrets.is_empty() {
            return Err(BftError::NoClients);
        }
        let keys = endpoints
            .iter()
            .map(|e| {
                let (_, k) = replica_keys
                    .iter()
                    .find(|(id, _)| *id == e.id)
                    .ok_or_else(|| BftError::NoKey(e.id.clone()))?;
                VerifyingKey::from_bytes(k).map_err(|_| BftError::BadKey(e.id.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut by_rank: Vec<usize> = (0..endpoints.len()).collect();
        by_rank.sort_by(|a, b| endpoints[*a].id.cmp(&endpoints[*b].id));
        let pool = client_secrets
            .iter()
            .enumerate()
            .map(|(i, s)| Identity {
                id: i as u64,
                key: SigningKey::from_bytes(s),
                next_ts: 1,
            })
            .rev() // popped from the end: client 0 first
            .collect();
        let f = (endpoints.len().max(1) - 1) / 3;
        Ok(BftClient {
            primary: AtomicUsize::new(by_rank[0]),
            transport: Arc::new(JsonLinesClient::with_dialer(endpoints, dialer)),
            keys,
            by_rank,
            f,
            free: Semaphore::new(client_secrets.len()),
            pool: Mutex::new(pool),
            retransmit: retransmit.max(MIN_RETRANSMIT),
            first_send: FirstSend::Primary,
            bad_replies: AtomicU64::new(0),
            verified: Mutex::new(VecDeque::with_capacity(VERIFIED_CACHE)),
        })
    }

    /// Where each call's request goes first (the primary unless said).
    pub fn with_first_send(mut self, first: FirstSend) -> Self {
        self.first_send = first;
        self
    }

    /// Replies ignored: unsigned, signed by someone else, for another request, or forged.
    pub fn bad_replies(&self) -> u64 {
        self.bad_replies.load(Ordering::Relaxed)
    }

    /// Whether `resp`, which came from endpoint `from`, is that replica's signed answer to
    /// client `id`'s request `ts`; its view if so.
    fn check(&self, from: usize, id: u64, ts: u64, resp: &Response) -> Option<u64> {
        let s = resp.signed.as_ref()?;
        let replica = &self.transport.endpoints()[from].id;
        if s.replica != *replica || s.client != id || s.ts != ts {
            return None;
        }
        let sig = Signature::from_slice(&from_hex(&s.sig)?).ok()?;
        let bytes = reply_bytes(replica, s.view, id, ts, resp);
        match &s.batch {
            None => self.keys[from].verify(&bytes, &sig).ok()?,
            // One signature over a batch's replies: this one's path leads to the root signed.
            Some(b) => {
                let root = root_from_path(reply_leaf(&bytes), b)?;
                let signed = batch_reply_bytes(replica, s.view, b.count, &root);
                self.verify_shared(from, signed, sig)?
            }
        }
        Some(s.view)
    }

    /// Verifies a batch signature, or finds it among the ones verified lately: the same
    /// replica, the same signed bytes, the same signature.
    fn verify_shared(&self, from: usize, signed: Vec<u8>, sig: Signature) -> Option<()> {
        let sig_bytes = sig.to_bytes();
        let seen = |cache: &VecDeque<Verified>| {
            cache
                .iter()
                .any(|(f, b, s)| *f == from && *s == sig_bytes && *b == signed)
        };
        if seen(&self.verified.lock().unwrap_or_else(|p| p.into_inner())) {
            return Some(());
        }
        self.keys[from].verify(&signed, &sig).ok()?;
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() == VERIFIED_CACHE {
            cache.pop_front();
        }
        cache.push_back((from, signed, sig_bytes));
        Some(())
    }

    async fn ordered(&self, op: &Op, deadline: Instant) -> Outcome {
        let Ok(Ok(permit)) = tokio::time::timeout_at(deadline, self.free.acquire()).await else {
            return Outcome::Fail {
                error: format!("{}: every client identity is busy", errors::SEND),
                leader: None,
            };
        };
        let mut me = self
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .expect("a permit means an identity is free");
        let ts = me.next_ts;
        me.next_ts += 1;
        let sig = me.key.sign(&request_bytes(me.id, ts, op));
        let auth = ClientSig {
            client: me.id,
            ts,
            sig: to_hex(&sig.to_bytes()),
        };
        let outcome = self.gather(op, &auth, deadline).await;
        self.pool.lock().unwrap_or_else(|p| p.into_inner()).push(me);
        drop(permit);
        outcome
    }

    /// Sends and retransmits until f+1 replicas signed one result, or the deadline.
    async fn gather(&self, op: &Op, auth: &ClientSig, deadline: Instant) -> Outcome {
        let n = self.keys.len();
        let (tx, mut rx) = mpsc::channel::<(usize, Result<Response, Outcome>)>(n * 4 + 4);
        let mut in_flight = vec![false; n];
        // Whether the request may have reached a replica: any exchange that did not end
        // in a definite "never sent" (one still running at the deadline included).
        let mut sent_any = false;
        let mut votes: BTreeMap<String, (BTreeSet<usize>, Response, u64)> = BTreeMap::new();
        // Exchanges still running at the end are left to finish by the deadline on their
        // own: aborting one part-way through writing its line would tear the line on a
        // connection other calls share.
        let mut tasks = tokio::task::JoinSet::new();
        let send = |to: usize, tasks: &mut tokio::task::JoinSet<()>| {
            let (tx, op, auth) = (tx.clone(), op.clone(), auth.clone());
            let transport = self.transport.clone();
            tasks.spawn(async move {
                let r = transport.exchange(to, &op, Some(auth), deadline).await;
                let _ = tx.send((to, r)).await;
            });
        };
        let first = self.primary.load(Ordering::Relaxed).min(n - 1);
        for (i, busy) in in_flight.iter_mut().enumerate() {
            if i == first || self.first_send == FirstSend::All {
                *busy = true;
                send(i, &mut tasks);
            }
        }
        let mut next_round = Instant::now() + self.retransmit;
        loop {
            tokio::select! {
                got = rx.recv() => {
                    let Some((from, r)) = got else { break };
                    in_flight[from] = false;
                    match r {
                        Ok(resp) => {
                            sent_any = true;
                            let Some(view) = self.check(from, auth.client, auth.ts, &resp) else {
                                let bad = self.bad_replies.fetch_add(1, Ordering::Relaxed) + 1;
                                if bad.is_power_of_two() {
                                    tracing::warn!(from, bad, "BFT reply ignored: not signed for this request by its replica");
                                }
                                continue;
                            };
                            let key = result_of(&resp).to_string();
                            let v = votes.entry(key).or_insert_with(|| (BTreeSet::new(), resp.clone(), view));
                            v.0.insert(from);
                            v.2 = v.2.max(view);
                            if v.0.len() > self.f {
                                let (_, resp, view) = v.clone();
                                let p = self.by_rank[(view % n as u64) as usize];
                                self.primary.store(p, Ordering::Relaxed);
                                tasks.detach_all();
                                return classify(resp);
                            }
                        }
                        Err(Outcome::Fail { .. }) => {} // never reached that replica
                        Err(_) => sent_any = true,
                    }
                }
                _ = sleep_until(next_round) => {
                    for (i, busy) in in_flight.iter_mut().enumerate() {
                        if !*busy {
                            *busy = true;
                            send(i, &mut tasks);
                        }
                    }
                    next_round = Instant::now() + self.retransmit;
                }
                _ = sleep_until(deadline) => break,
            }
        }
        tasks.detach_all();
        sent_any |= in_flight.iter().any(|b| *b);
        if sent_any {
            Outcome::Info {
                error: format!("{}: no f+1 matching signed replies", errors::TIMEOUT),
            }
        } else {
            Outcome::Fail {
                error: format!("{}: no replica could be reached", errors::CONNECT),
                leader: None,
            }
        }
    }
}

impl Client for BftClient {
    fn endpoints(&self) -> &[Endpoint] {
        self.transport.endpoints()
    }

    async fn call(&self, node: usize, op: &Op, timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        if !op.is_data() {
            return self.transport.call(node, op, timeout).await;
        }
        self.ordered(op, deadline).await
    }
}
