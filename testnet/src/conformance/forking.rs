//! A forking (equivocating) provider for testnet scenarios (`action = "forking-provider"`).
//!
//! The kit's own libp2p peer joins the network through one full node, publishes one validly
//! signed manifest (agent [`AGENT`]), listens on loopback in Kademlia server mode (so a
//! client that is not connected to it finds its address, spec/discovery.md "Kademlia") and
//! negotiates honestly. Then it lies: to the fetch from seq 0 it serves `started` and a
//! `decision` X at seq 1; to the fetch from seq 2 it serves a different `decision` X' at
//! seq 1 and a seq 2 after it. X and X' are both validly signed, so the client holds an
//! equivocation proof (spec/receipts.md, "Equivocation proofs"). The fork is held until
//! `fork_after` hires were accepted (or [`FORK_HOLD`] passed), so that every hire a
//! scenario makes is contracted before any node flags the provider. The first `stuck` hires
//! it accepts are never shown the fork (their fetches from seq 2 are never answered): their
//! clients can only learn of the equivocation from the network's proof.
//!
//! It owns no judgement: what the nodes did about the fork (closed hires, flags, refusals)
//! is read by the scenario from their events and hire records. It must never serve an
//! honest chain to the end: every hire it accepts is forked.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use libp2p::request_response::ResponseChannel;
use libp2p::{Multiaddr, kad};
use souk_protocol::hiring::{CallError, HireCall, HireReply};
use souk_protocol::negotiation::{Contract, HireRequest, Offer, Terms};
use souk_protocol::receipt::{Disclosure, EntryKind, ReceiptEntry, SignedEntry, commit};
use souk_protocol::signed::Signed;
use souk_protocol::{Hash, Keypair};

use super::checks::subscribed;
use super::fixtures;
use super::peer::Peer;
use crate::network::now_ms;

/// The name of the agent the forking provider offers.
pub(crate) const AGENT: &str = "forked";

/// The longest the fork waits for the expected hires to be accepted.
pub(crate) const FORK_HOLD: Duration = Duration::from_secs(15);

/// What the forking provider has done so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Served {
    /// Hires it accepted (hire ids, hex).
    pub(crate) hires: Vec<String>,
    /// Forks it served: (hire id hex, when, Unix ms).
    pub(crate) forks: Vec<(String, u64)>,
    /// Hires it kept waiting, never shown the fork (hire ids, hex).
    pub(crate) stuck: Vec<String>,
}

/// A running forking provider; stopped by [`ForkingProvider::stop`] (or when dropped).
pub(crate) struct ForkingProvider {
    /// Its libp2p peer id (base58).
    pub(crate) peer_id: String,
    /// Its Souk node id (`souk…`), the provider its manifest names.
    pub(crate) node_id: String,
    /// Its manifest id (hex).
    pub(crate) manifest_id: String,
    served: Arc<Mutex<Served>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Who the provider is, once it is up.
struct Ready {
    peer_id: String,
    node_id: String,
    manifest_id: String,
}

impl ForkingProvider {
    /// Connects to the full node at `addr` (a multiaddr with `/p2p/`), publishes the
    /// manifest and serves hires on its own thread until stopped; forks are held until
    /// `fork_after` hires were accepted, and the first `stuck` hires are never forked.
    /// Returns once the manifest is published.
    pub(crate) fn start(addr: &str, fork_after: u32, stuck: u32) -> anyhow::Result<Self> {
        let addr: Multiaddr = addr.parse()?;
        let served = Arc::new(Mutex::new(Served::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel::<anyhow::Result<Ready>>();
        let thread = {
            let (served, stop) = (served.clone(), stop.clone());
            std::thread::spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e.into()));
                        return;
                    }
                };
                rt.block_on(async move {
                    match join(&addr).await {
                        Ok((mut p, ready, runtime)) => {
                            let _ = tx.send(Ok(ready));
                            serve(&mut p, runtime, (fork_after, stuck), &served, &stop).await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })
        };
        let mut me = ForkingProvider {
            peer_id: String::new(),
            node_id: String::new(),
            manifest_id: String::new(),
            served,
            stop,
            thread: Some(thread),
        };
        let ready = rx
            .recv_timeout(Duration::from_secs(40))
            .context("the forking provider did not start within 40 s")??;
        me.peer_id = ready.peer_id;
        me.node_id = ready.node_id;
        me.manifest_id = ready.manifest_id;
        Ok(me)
    }

    /// The agent's handle (`<node id>/forked`), as `souk hire` takes it.
    pub(crate) fn handle(&self) -> String {
        format!("{}/{AGENT}", self.node_id)
    }

    /// What it has done so far.
    pub(crate) fn served(&self) -> Served {
        self.served
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops it (its connections close) and returns what it did.
    pub(crate) fn stop(mut self) -> Served {
        self.halt();
        self.served()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ForkingProvider {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Listens, connects to `addr`, and publishes the manifest once the node subscribed; returns
/// the peer, who it is, and the runtime digest its manifest promises.
async fn join(addr: &Multiaddr) -> anyhow::Result<(Peer, Ready, Hash)> {
    let mut p = Peer::new()?;
    // Server mode: the node it joins adds its address to Kademlia (identify lists the
    // protocol), so clients elsewhere can look it up.
    p.swarm
        .behaviour_mut()
        .kad
        .set_mode(Some(kad::Mode::Server));
    p.swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    anyhow::ensure!(
        p.pump(Duration::from_secs(10), |p| p
            .swarm
            .listeners()
            .next()
            .is_some())
            .await,
        "no listen address within 10 s"
    );
    p.connect(addr).await?;
    anyhow::ensure!(
        subscribed(&mut p).await,
        "the node did not subscribe to the manifest topic within 10 s"
    );
    let manifest = fixtures::valid(&p.key, AGENT, "forked provider", 1, now_ms())?;
    p.publish(manifest.to_bytes())
        .map_err(|e| anyhow::anyhow!("publishing the manifest: {e}"))?;
    let ready = Ready {
        peer_id: p.swarm.local_peer_id().to_base58(),
        node_id: p.key.id().to_string(),
        manifest_id: manifest.id().to_hex(),
    };
    Ok((p, ready, manifest.body().runtime_digest))
}

/// A hire as the provider knows it once the client accepted.
struct Hire {
    id: Hash,
    /// The runtime its `started` entry names (the manifest's).
    runtime: Hash,
    /// Entry times start here (the acceptance time), one ms per seq.
    t0: u64,
    forked: bool,
    /// Never forked: its fetches from seq 2 wait forever.
    stuck: bool,
}

impl Hire {
    fn entry(
        &self,
        key: &Keypair,
        seq: u64,
        prev: Hash,
        kind: EntryKind,
        commitment: Option<Hash>,
    ) -> SignedEntry {
        Signed::sign(
            ReceiptEntry {
                hire_id: self.id,
                seq,
                prev,
                time: self.t0 + seq,
                kind,
                commitment,
            },
            key,
        )
    }

    fn started(&self, key: &Keypair) -> SignedEntry {
        let kind = EntryKind::Started {
            runtime_digest: self.runtime,
        };
        self.entry(key, 0, Hash::ZERO, kind, None)
    }

    /// A `decision` committing to `text`, with its opening.
    fn decision(
        &self,
        key: &Keypair,
        seq: u64,
        prev: Hash,
        text: &str,
    ) -> (SignedEntry, Disclosure) {
        let payload = serde_json::json!({ "text": text }).to_string().into_bytes();
        let salt =
            *blake3::hash(format!("salt {} {seq} {text}", self.id.to_hex()).as_bytes()).as_bytes();
        let e = self.entry(
            key,
            seq,
            prev,
            EntryKind::Decision,
            Some(commit(&salt, &payload)),
        );
        (e, Disclosure { seq, salt, payload })
    }

    /// The honest-looking start: `started`, then X at seq 1.
    fn first(&self, key: &Keypair) -> HireReply {
        let e0 = self.started(key);
        let (e1, d1) = self.decision(key, 1, e0.id(), "plan X");
        HireReply::Receipts {
            entries: vec![e0.to_bytes(), e1.to_bytes()],
            disclosures: vec![d1],
            output: None,
        }
    }

    /// The fork: X' at seq 1 (another validly signed entry), and seq 2 after it.
    fn fork(&self, key: &Keypair) -> HireReply {
        let e0 = self.started(key);
        let (e1, d1) = self.decision(key, 1, e0.id(), "plan Y: history rewritten");
        let (e2, d2) = self.decision(key, 2, e1.id(), "carry on");
        HireReply::Receipts {
            entries: vec![e1.to_bytes(), e2.to_bytes()],
            disclosures: vec![d1, d2],
            output: None,
        }
    }
}

/// An honest offer: exactly the request's budget and deadline.
fn offer(key: &Keypair, raw: &[u8]) -> HireReply {
    let request = match Signed::<HireRequest>::open(raw) {
        Ok(r) => r,
        Err(e) => {
            return HireReply::Error {
                code: CallError::BadCall,
                message: e.to_string(),
            };
        }
    };
    let now = now_ms();
    let req = request.body();
    HireReply::Offer(
        Signed::sign(
            Offer {
                request_id: request.id(),
                provider: key.id(),
                terms: Terms {
                    price: req.budget.clone(),
                    deadline: req.deadline,
                },
                valid_until: now + 60_000,
                created_at: now,
            },
            key,
        )
        .to_bytes(),
    )
}

/// Updates what the provider has done.
fn note(served: &Mutex<Served>, f: impl FnOnce(&mut Served)) {
    f(&mut served.lock().unwrap_or_else(PoisonError::into_inner));
}

/// Answers hire calls until `stop`; fetches from seq 2 wait for the fork (forever for the
/// first `stuck` hires of `(fork_after, stuck)`).
async fn serve(
    p: &mut Peer,
    runtime: Hash,
    (fork_after, stuck): (u32, u32),
    served: &Mutex<Served>,
    stop: &AtomicBool,
) {
    let mut hires: HashMap<Hash, Hire> = HashMap::new();
    // Fetches from seq 2, waiting for the fork.
    let mut waiting: Vec<(Hash, ResponseChannel<HireReply>)> = Vec::new();
    let mut waiting_since: Option<Instant> = None;
    // Calls never answered (an answer, a fetch after the fork): held until the end.
    let mut held: Vec<ResponseChannel<HireReply>> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        p.pump(Duration::from_millis(100), |p| !p.calls.is_empty())
            .await;
        for (_, call, channel) in std::mem::take(&mut p.calls) {
            let reply = match call {
                HireCall::Request { request } => Some(offer(&p.key, &request)),
                HireCall::Accept { contract, .. } => match Contract::decode_bytes(&contract) {
                    Ok(c) => {
                        let id = c.hire_id();
                        let keep_waiting = hires.len() < stuck as usize;
                        let new = !hires.contains_key(&id);
                        hires.entry(id).or_insert(Hire {
                            id,
                            runtime,
                            t0: c.accept.body().created_at,
                            forked: false,
                            stuck: keep_waiting,
                        });
                        note(served, |s| {
                            if !s.hires.contains(&id.to_hex()) {
                                s.hires.push(id.to_hex());
                            }
                            if new && keep_waiting {
                                s.stuck.push(id.to_hex());
                            }
                        });
                        Some(HireReply::Accepted { hire_id: id })
                    }
                    Err(e) => Some(HireReply::Error {
                        code: CallError::InvalidContract,
                        message: e.to_string(),
                    }),
                },
                HireCall::Fetch {
                    hire_id, from_seq, ..
                } => match hires.get(&hire_id) {
                    None => Some(HireReply::Error {
                        code: CallError::UnknownHire,
                        message: format!("no hire {} here", hire_id.short()),
                    }),
                    Some(h) if from_seq <= 1 => Some(h.first(&p.key)),
                    Some(h) if h.stuck => None,
                    Some(h) if from_seq == 2 && !h.forked => {
                        waiting.push((hire_id, channel));
                        waiting_since.get_or_insert_with(Instant::now);
                        continue;
                    }
                    Some(_) => None,
                },
                HireCall::Answer { .. } => None,
                HireCall::Cancel { .. } | HireCall::Settle { .. } => Some(HireReply::Ok),
            };
            match reply {
                Some(r) => {
                    let _ = p.swarm.behaviour_mut().hire.send_response(channel, r);
                }
                None => held.push(channel),
            }
        }
        let accepted = hires.len() as u32;
        let release =
            waiting_since.is_some_and(|t| accepted >= fork_after || t.elapsed() >= FORK_HOLD);
        if release {
            waiting_since = None;
            for (id, channel) in std::mem::take(&mut waiting) {
                let Some(h) = hires.get_mut(&id) else {
                    continue;
                };
                if h.forked {
                    held.push(channel);
                    continue;
                }
                h.forked = true;
                let fork = h.fork(&p.key);
                if p.swarm
                    .behaviour_mut()
                    .hire
                    .send_response(channel, fork)
                    .is_ok()
                {
                    note(served, |s| s.forks.push((id.to_hex(), now_ms())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use souk_protocol::equivocation::EquivocationProof;

    use super::*;

    fn entries(reply: HireReply) -> Vec<SignedEntry> {
        match reply {
            HireReply::Receipts { entries, .. } => entries
                .iter()
                .map(|raw| SignedEntry::decode_bytes(raw).unwrap())
                .collect(),
            other => panic!("not receipts: {other:?}"),
        }
    }

    #[test]
    fn the_two_fetches_serve_two_validly_signed_entries_at_seq_1() {
        let key = Keypair::from_seed(&[3; 32]);
        let hire = Hire {
            id: Hash::digest(b"a hire"),
            runtime: Hash([7; 32]),
            t0: 1_000,
            forked: false,
            stuck: false,
        };
        let first = entries(hire.first(&key));
        // Served again, the first version is the same bytes: a refetch is no fork.
        assert_eq!(
            entries(hire.first(&key))
                .iter()
                .map(SignedEntry::id)
                .collect::<Vec<_>>(),
            first.iter().map(SignedEntry::id).collect::<Vec<_>>()
        );
        let fork = entries(hire.fork(&key));
        assert_eq!(first[1].body().seq, 1);
        assert_eq!(fork[0].body().seq, 1);
        assert_eq!(
            fork[0].body().prev,
            first[0].id(),
            "both versions follow seq 0"
        );
        assert_eq!(fork[1].body().prev, fork[0].id(), "seq 2 follows the fork");
        let proof = EquivocationProof::new(first[1].clone(), fork[0].clone()).unwrap();
        let eq = proof.verify().unwrap();
        assert_eq!(eq.seq, 1);
        assert_eq!(eq.signer, key.id());
        assert_eq!(eq.hire_id, hire.id);
    }
}
