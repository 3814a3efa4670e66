//! A provider that lies in its receipt stream: an honest client node must notice every lie
//! at once, keep only what verifies, and never report a lie as a finished hire.
//!
//! The liar is a bare libp2p swarm (TCP, noise, yamux) with only two behaviours: gossipsub,
//! to inject its correctly signed manifest into the client's catalog, and the hire protocol
//! `/souk/hire/1` with the node's own [`HireCodec`]. Its libp2p identity and its Souk signing
//! key come from one seed, so every offer and receipt it signs is "really" the provider's.
//! It dials the client first (the client has no other way to learn its address) and keeps
//! the connection open. Negotiation is honest (a valid signed offer within the budget and
//! deadline) unless a test says otherwise; the receipts it serves are scripted per scenario:
//!
//! - control: a valid chain ending in `completed` with the matching output (the harness
//!   itself is honest when told to be);
//! - a broken link (wrong `prev`, rule R6) or a forged signature (rule R3) at seq 1;
//! - equivocation: seq 1 is served once as X and later as X' (both validly signed);
//! - an output whose BLAKE3 differs from the `completed` entry's hash;
//! - a disclosure that does not open its entry's commitment;
//! - a gap (rule R5) in a reply, once (fetched again) or every time (given up);
//! - an `accepted` reply naming another hire id.
//!
//! The fake never answers an `answer` call (a stuck provider: one hire's slow provider must
//! not delay the client's other hires), and answers every `cancel` with `unknown-hire` (a
//! provider that lost the hire: the client's API must not turn that into a 404 for a hire
//! it holds).
//!
//! Expected client behaviour is `spec/hiring.md` ("The client follower", "Contract: accept").

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, StreamProtocol, gossipsub, noise, tcp, yamux};
use serde_json::{Value, json};
use souk_node::hire::record::BLOB_EQUIVOCATION;
use souk_node::hire::{HireError, HireRecord, NewHire};
use souk_node::swarm::HireCodec;
use souk_protocol::discovery::{MANIFEST_TOPIC, MAX_ENVELOPE_LEN};
use souk_protocol::equivocation::EquivocationProof;
use souk_protocol::hire::HireState;
use souk_protocol::hiring::{
    CallError, HIRE_PROTOCOL, HireCall, HireReply, MAX_CALL_LEN, MAX_REPLY_LEN,
};
use souk_protocol::manifest::Manifest;
use souk_protocol::negotiation::{Contract, HireRequest, Offer, Price, Terms};
use souk_protocol::receipt::{Disclosure, EntryKind, ReceiptEntry, SignedEntry, Usage, commit};
use souk_protocol::signed::Signed;
use souk_protocol::verify::{SignatureCheck, verify_bundle_bytes};
use souk_protocol::{Hash, Keypair, NodeId};
use souk_store::{Store, StoreConfig};
use support::{TestNode, agent, seed, start_node, wait_for};

/// What the fake provider speaks: manifest gossip and the hire protocol, nothing else.
#[derive(NetworkBehaviour)]
struct FakeBehaviour {
    gossipsub: gossipsub::Behaviour,
    hire: request_response::Behaviour<HireCodec>,
}

/// The hire as the fake provider knows it once the client accepted.
struct Hire {
    key: Keypair,
    id: Hash,
    runtime: Hash,
    /// Entry times start here (the acceptance time), one ms per seq.
    t0: u64,
    /// The contract's agreed price (the terminal entry's usage names it).
    price: Price,
}

impl Hire {
    fn entry(
        &self,
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
            &self.key,
        )
    }

    /// Seq 0: `started`, naming the runtime the manifest promises.
    fn started(&self) -> SignedEntry {
        self.entry(
            0,
            Hash::ZERO,
            EntryKind::Started {
                runtime_digest: self.runtime,
            },
            None,
        )
    }

    /// A `decision` at `seq` after `prev`, committing to `text`, with its opening.
    fn decision(&self, seq: u64, prev: Hash, text: &str) -> (SignedEntry, Disclosure) {
        let payload =
            serde_json::to_vec(&json!({ "text": text })).unwrap_or_else(|e| panic!("payload: {e}"));
        let salt = *blake3::hash(format!("salt {seq} {text}").as_bytes()).as_bytes();
        let e = self.entry(
            seq,
            prev,
            EntryKind::Decision,
            Some(commit(&salt, &payload)),
        );
        (e, Disclosure { seq, salt, payload })
    }

    /// An `input-requested` at `seq` after `prev`, asking `question`, with its opening.
    fn question(&self, seq: u64, prev: Hash, question: &str) -> (SignedEntry, Disclosure) {
        let payload = serde_json::to_vec(&json!({ "question": question, "type": "question" }))
            .unwrap_or_else(|e| panic!("payload: {e}"));
        let salt = *blake3::hash(format!("salt {seq} {question}").as_bytes()).as_bytes();
        let e = self.entry(
            seq,
            prev,
            EntryKind::InputRequested,
            Some(commit(&salt, &payload)),
        );
        (e, Disclosure { seq, salt, payload })
    }

    /// A `completed` entry naming `output_hash`, after `started` and `seq - 1` decisions
    /// (its usage: the agreed price, `seq` ms since `started`, `seq - 1` steps).
    fn completed(&self, seq: u64, prev: Hash, output_hash: Hash) -> SignedEntry {
        let usage = Usage {
            price: self.price.clone(),
            wall_ms: seq,
            steps: seq.saturating_sub(1),
            network_calls: 0,
        };
        self.entry(seq, prev, EntryKind::Completed { output_hash, usage }, None)
    }
}

/// Builds a `Receipts` reply.
fn receipts(
    entries: Vec<Vec<u8>>,
    disclosures: Vec<Disclosure>,
    output: Option<Vec<u8>>,
) -> HireReply {
    HireReply::Receipts {
        entries,
        disclosures,
        output,
    }
}

/// The scenario: the reply to a fetch from `from_seq`, or `None` to hold the long-poll open.
type Script = Box<dyn FnMut(&Hire, u64) -> Option<HireReply> + Send>;

/// How the fake answers an `accept` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnAccept {
    /// `accepted` with the contract's hire id.
    Honest,
    /// `accepted` naming another hire id.
    WrongHireId,
}

/// What the fake provider saw and did, for the test's assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Request,
    Accept(Hash),
    /// A fetch, and the ids of the entries sent back (empty when held open).
    Fetch {
        from_seq: u64,
        sent: Vec<Hash>,
    },
    Other(String),
}

/// A running fake provider.
struct FakeProvider {
    id: NodeId,
    manifest: Signed<Manifest>,
    log: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeProvider {
    /// Starts the fake with identity `provider_seed`, dials `client`, waits until the client
    /// subscribed to the manifest topic, gossips a valid manifest and serves `script`.
    async fn start(
        provider_seed: [u8; 32],
        client: &Multiaddr,
        on_accept: OnAccept,
        script: Script,
    ) -> FakeProvider {
        let key = Keypair::from_seed(&provider_seed);
        let mut seed_copy = provider_seed;
        let p2p_key = libp2p::identity::Keypair::ed25519_from_bytes(&mut seed_copy)
            .unwrap_or_else(|e| panic!("libp2p key: {e}"));
        let now = souk_node::now_ms();
        let body = agent(
            "receipt-liar",
            &["text"],
            "an agent whose provider lies in its receipts",
            1_000_000,
        )
        .to_manifest(key.id(), 1, [7; 32], now, now + 3_600_000)
        .unwrap_or_else(|e| panic!("manifest: {e}"));
        let manifest = Signed::sign(body, &key);

        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Anonymous)
            .message_id_fn(|m: &gossipsub::Message| {
                gossipsub::MessageId::from(&blake3::hash(&m.data).as_bytes()[..20])
            })
            .max_transmit_size(MAX_ENVELOPE_LEN + 4096)
            .heartbeat_interval(Duration::from_millis(200))
            .build()
            .unwrap_or_else(|e| panic!("gossipsub config: {e}"));
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(p2p_key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap_or_else(|e| panic!("transport: {e}"))
            .with_behaviour(|_| FakeBehaviour {
                gossipsub: gossipsub::Behaviour::new(
                    gossipsub::MessageAuthenticity::Anonymous,
                    gossip_config.clone(),
                )
                .unwrap_or_else(|e| panic!("gossipsub: {e}")),
                hire: request_response::Behaviour::with_codec(
                    HireCodec::new(MAX_CALL_LEN, MAX_REPLY_LEN),
                    [(StreamProtocol::new(HIRE_PROTOCOL), ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(120)),
                ),
            })
            .unwrap_or_else(|e| panic!("behaviour: {e}"))
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
            .build();
        let topic = gossipsub::IdentTopic::new(MANIFEST_TOPIC);
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .unwrap_or_else(|e| panic!("subscribe: {e}"));
        swarm
            .dial(client.clone())
            .unwrap_or_else(|e| panic!("dial: {e}"));
        let deadline = tokio::time::Instant::now() + support::TIMEOUT;
        loop {
            let ev = tokio::time::timeout_at(deadline, swarm.select_next_some())
                .await
                .unwrap_or_else(|_| panic!("the client never subscribed to the manifest topic"));
            if let SwarmEvent::Behaviour(FakeBehaviourEvent::Gossipsub(
                gossipsub::Event::Subscribed { .. },
            )) = ev
            {
                break;
            }
        }
        swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, manifest.to_bytes())
            .unwrap_or_else(|e| panic!("publish the manifest: {e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(serve(
            swarm,
            provider_seed,
            on_accept,
            manifest.body().runtime_digest,
            script,
            log.clone(),
        ));
        FakeProvider {
            id: key.id(),
            manifest,
            log,
            task,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.log
            .lock()
            .unwrap_or_else(|e| panic!("log lock: {e}"))
            .clone()
    }

    /// How many fetches the client made.
    fn fetches(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| matches!(s, Seen::Fetch { .. }))
            .count()
    }

    /// The ids of the entries sent in reply to the fetch from `from_seq`.
    fn sent_from(&self, from_seq: u64) -> Vec<Hash> {
        self.seen()
            .into_iter()
            .find_map(|s| match s {
                Seen::Fetch { from_seq: f, sent } if f == from_seq && !sent.is_empty() => {
                    Some(sent)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no fetch from {from_seq} was answered: {:?}", self.seen()))
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Signs an offer for exactly the request's budget and deadline.
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
    let now = souk_node::now_ms();
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

/// The fake provider's event loop: answers hire calls, holds unscripted fetches open.
async fn serve(
    mut swarm: libp2p::Swarm<FakeBehaviour>,
    provider_seed: [u8; 32],
    on_accept: OnAccept,
    runtime: Hash,
    mut script: Script,
    log: Arc<Mutex<Vec<Seen>>>,
) {
    let key = Keypair::from_seed(&provider_seed);
    let mut hire: Option<Hire> = None;
    let mut held: Vec<ResponseChannel<HireReply>> = Vec::new();
    loop {
        let ev = swarm.select_next_some().await;
        let SwarmEvent::Behaviour(FakeBehaviourEvent::Hire(request_response::Event::Message {
            message:
                request_response::Message::Request {
                    request, channel, ..
                },
            ..
        })) = ev
        else {
            continue;
        };
        let (seen, reply) = match request {
            HireCall::Request { request } => (Seen::Request, Some(offer(&key, &request))),
            HireCall::Accept { contract, .. } => match Contract::decode_bytes(&contract) {
                Ok(c) => {
                    let id = c.hire_id();
                    hire = Some(Hire {
                        key: Keypair::from_seed(&provider_seed),
                        id,
                        runtime,
                        t0: c.accept.body().created_at,
                        price: c.terms().price.clone(),
                    });
                    let hire_id = match on_accept {
                        OnAccept::Honest => id,
                        OnAccept::WrongHireId => Hash::digest(b"some other hire"),
                    };
                    (Seen::Accept(id), Some(HireReply::Accepted { hire_id }))
                }
                Err(e) => (
                    Seen::Other(format!("bad contract: {e}")),
                    Some(HireReply::Error {
                        code: CallError::BadCall,
                        message: e.to_string(),
                    }),
                ),
            },
            HireCall::Fetch {
                hire_id, from_seq, ..
            } => {
                let reply = match &hire {
                    Some(h) if h.id == hire_id => script(h, from_seq),
                    _ => Some(HireReply::Error {
                        code: CallError::UnknownHire,
                        message: "no such hire".into(),
                    }),
                };
                let sent = match &reply {
                    Some(HireReply::Receipts { entries, .. }) => entries
                        .iter()
                        .filter_map(|raw| SignedEntry::decode_bytes(raw).ok().map(|e| e.id()))
                        .collect(),
                    _ => Vec::new(),
                };
                (Seen::Fetch { from_seq, sent }, reply)
            }
            // A stuck provider: the answer is never replied to (the channel is held).
            HireCall::Answer { .. } => (Seen::Other("answer".into()), None),
            // A provider that lost the hire.
            HireCall::Cancel { hire_id, .. } => (
                Seen::Other("cancel".into()),
                Some(HireReply::Error {
                    code: CallError::UnknownHire,
                    message: format!("no hire {} here", hire_id.short()),
                }),
            ),
            other => (Seen::Other(format!("{other:?}")), Some(HireReply::Ok)),
        };
        if let Ok(mut l) = log.lock() {
            l.push(seen);
        }
        match reply {
            Some(r) => {
                let _ = swarm.behaviour_mut().hire.send_response(channel, r);
            }
            None => held.push(channel),
        }
    }
}

/// Starts a full client node in `dir` and a fake provider that connects to it, and waits
/// for the client to catalog the fake's manifest.
async fn meet_the_liar(
    dir: &Path,
    n: u16,
    on_accept: OnAccept,
    script: Script,
) -> (TestNode, FakeProvider) {
    let client = start_node(dir, seed(n), false, vec![]).await;
    let fake = FakeProvider::start(seed(n + 1), &client.addr, on_accept, script).await;
    let manifest_id = fake.manifest.id();
    wait_for(
        "the client to catalog the fake provider's manifest",
        || async { matches!(client.handle.manifest(manifest_id).await, Ok(Some(_))) },
    )
    .await;
    (client, fake)
}

/// Asks `client` to hire the fake's agent.
async fn hire(client: &TestNode, fake: &FakeProvider) -> Result<HireRecord, HireError> {
    client
        .handle
        .hires
        .create(NewHire {
            manifest_id: fake.manifest.id().to_hex(),
            input: json!({ "text": "summarize this" }),
            max_price: None,
            deadline_ms: None,
            credentials: Vec::new(),
            retry_busy_ms: None,
        })
        .await
}

/// [`meet_the_liar`] with an honest negotiation, then hires it.
async fn hire_the_liar(dir: &Path, n: u16, script: Script) -> (TestNode, FakeProvider, HireRecord) {
    let (client, fake) = meet_the_liar(dir, n, OnAccept::Honest, script).await;
    let record = hire(&client, &fake)
        .await
        .unwrap_or_else(|e| panic!("hiring the fake provider: {e}"));
    assert_eq!(record.provider, fake.id);
    (client, fake, record)
}

/// Waits until the client's record of `id` satisfies `done`; returns it.
async fn wait_record(
    client: &TestNode,
    id: Hash,
    what: &str,
    done: impl Fn(&HireRecord) -> bool,
) -> HireRecord {
    wait_for(what, || async {
        matches!(client.handle.hires.get(id).await, Ok(Some(r)) if done(&r))
    })
    .await;
    client
        .handle
        .hires
        .get(id)
        .await
        .unwrap_or_else(|e| panic!("get hire: {e}"))
        .unwrap_or_else(|| panic!("hire {} vanished", id.short()))
}

/// The client's stored receipts of `id` (entry ids, hex), from seq 0.
async fn stored(client: &TestNode, id: Hash) -> Vec<String> {
    client
        .handle
        .hires
        .receipts(id, 0, 0)
        .await
        .unwrap_or_else(|e| panic!("receipts: {e}"))
        .steps
        .into_iter()
        .map(|s| s.id)
        .collect()
}

fn tmpdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

const OUTPUT: &[u8] = br#"{"summary":"the real answer"}"#;
const OTHER_OUTPUT: &[u8] = br#"{"summary":"a substituted answer"}"#;

/// Control: told to be honest, the fake's chain is followed to the end, its output kept,
/// and the exported bundle verifies offline. The lies below differ from this in one point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_an_honest_chain_from_the_fake_completes() {
    let tmp = tmpdir();
    let script: Script = Box::new(|h: &Hire, from| {
        (from == 0).then(|| {
            let e0 = h.started();
            let (e1, d1) = h.decision(1, e0.id(), "read the input");
            let e2 = h.completed(2, e1.id(), Hash::digest(OUTPUT));
            receipts(
                vec![e0.to_bytes(), e1.to_bytes(), e2.to_bytes()],
                vec![d1],
                Some(OUTPUT.to_vec()),
            )
        })
    });
    let (client, fake, record) = hire_the_liar(tmp.path(), 70, script).await;
    let id = record.id();
    let r = wait_record(&client, id, "the hire to complete", |r| {
        r.state == HireState::Completed || r.error.is_some()
    })
    .await;
    assert_eq!(r.error, None, "{r:?}");
    assert_eq!(r.state, HireState::Completed);
    wait_for("the output to be stored", || async {
        matches!(client.handle.hires.output(id).await, Ok(Some(_)))
    })
    .await;
    let out = client.handle.hires.output(id).await;
    let want: Value = serde_json::from_slice(OUTPUT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.ok(), Some(Some(want)));
    assert_eq!(stored(&client, id).await.len(), 3);
    let view = client
        .handle
        .hires
        .receipts(id, 1, 0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        view.steps.first().and_then(|s| s.payload.clone()),
        Some(json!({ "text": "read the input" })),
        "the checked disclosure is kept"
    );
    let bundle = client
        .handle
        .hires
        .bundle(id, true)
        .await
        .unwrap_or_else(|e| panic!("bundle: {e}"));
    let report = verify_bundle_bytes(&bundle, SignatureCheck::OneByOne)
        .unwrap_or_else(|v| panic!("the bundle must verify: {v}"));
    assert_eq!(report.entries, 3);
    assert_eq!(report.state, HireState::Completed);
    assert_eq!(report.provider, fake.id);
    assert_eq!(report.disclosures, 1);
    client.handle.shutdown().await;
}

/// Shared body of the two "tampered" scenarios: seq 0 is valid, seq 1 is served as `bad`.
async fn tampered(n: u16, tamper: fn(&Hire, &SignedEntry) -> Vec<u8>, rule: &str) {
    let tmp = tmpdir();
    let script: Script = Box::new(move |h: &Hire, from| {
        (from == 0).then(|| {
            let e0 = h.started();
            let bad = tamper(h, &e0);
            receipts(vec![e0.to_bytes(), bad], Vec::new(), None)
        })
    });
    let (client, fake, record) = hire_the_liar(tmp.path(), n, script).await;
    let id = record.id();
    let r = wait_record(&client, id, "the client to stop following", |r| {
        r.error.is_some()
    })
    .await;
    let error = r.error.clone().unwrap_or_default();
    assert!(
        error.contains("receipt stream broken") && error.contains(rule),
        "error {error:?} must name the broken stream and rule {rule}"
    );
    assert_ne!(r.state, HireState::Completed, "{r:?}");
    assert_eq!(r.entries, 1, "{r:?}");
    let kept = stored(&client, id).await;
    assert_eq!(
        kept,
        vec![fake.sent_from(0)[0].to_hex()],
        "only seq 0 is kept"
    );
    assert_eq!(client.handle.hires.output(id).await.ok(), Some(None));
    assert_eq!(
        fake.fetches(),
        1,
        "the client stops at once: {:?}",
        fake.seen()
    );
    client.handle.shutdown().await;
}

/// (a) Seq 1 names the wrong previous entry: rule R6, only seq 0 is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_hash_link_stops_the_follower() {
    tampered(
        72,
        |h, _e0| {
            let (e1, _) = h.decision(1, Hash::digest(b"not the previous entry"), "step");
            e1.to_bytes()
        },
        "R6",
    )
    .await;
}

/// (a') Seq 1 links correctly but its signature bytes are flipped: rule R3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_signature_stops_the_follower() {
    tampered(
        74,
        |h, e0| {
            let (e1, _) = h.decision(1, e0.id(), "step");
            let mut raw = e1.to_bytes();
            // The envelope ends with the 64 signature bytes: flip one in R.
            let at = raw.len() - 64;
            raw[at] ^= 0x01;
            assert!(
                SignedEntry::decode_bytes(&raw).is_ok(),
                "still decodes: only the signature is wrong"
            );
            raw
        },
        "R3",
    )
    .await;
}

/// (b) The provider serves seq 1 as X, then (to the fetch from 2) as X': the client stops,
/// keeps the original chain, and stores an equivocation proof anyone can check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivocation_is_caught_and_the_proof_kept() {
    let tmp = tmpdir();
    let script: Script = Box::new(|h: &Hire, from| match from {
        0 => {
            let e0 = h.started();
            let (e1, d1) = h.decision(1, e0.id(), "plan X");
            Some(receipts(vec![e0.to_bytes(), e1.to_bytes()], vec![d1], None))
        }
        2 => {
            let e0 = h.started();
            let (e1b, d1b) = h.decision(1, e0.id(), "plan Y, rewritten history");
            let (e2, d2) = h.decision(2, e1b.id(), "carry on");
            Some(receipts(
                vec![e1b.to_bytes(), e2.to_bytes()],
                vec![d1b, d2],
                None,
            ))
        }
        _ => None,
    });
    let dir = tmp.path().to_path_buf();
    let (client, fake, record) = hire_the_liar(&dir, 76, script).await;
    let id = record.id();
    let r = wait_record(&client, id, "the client to detect the fork", |r| {
        r.error.is_some()
    })
    .await;
    let error = r.error.clone().unwrap_or_default();
    assert!(
        error.contains("equivocated") && error.contains("seq 1"),
        "{error:?}"
    );
    assert_ne!(r.state, HireState::Completed, "{r:?}");
    let first = fake.sent_from(0);
    let second = fake.sent_from(2);
    assert_eq!(
        stored(&client, id).await,
        vec![first[0].to_hex(), first[1].to_hex()],
        "the chain as first served is kept; nothing of the fork is stored"
    );
    assert_eq!(
        fake.fetches(),
        2,
        "the client stops at once: {:?}",
        fake.seen()
    );

    // The proof is in the client's store: read it once the node has let go of it.
    client.handle.shutdown().await;
    let TestNode { task, .. } = client;
    let _ = task.await;
    let store = Store::open(
        &dir.join("souk.redb"),
        &StoreConfig {
            cache_size: 4 << 20,
        },
    )
    .unwrap_or_else(|e| panic!("reopen the client's store: {e}"));
    let proof = store
        .get_hire_blob(&id, BLOB_EQUIVOCATION)
        .unwrap_or_else(|e| panic!("read the proof: {e}"))
        .unwrap_or_else(|| panic!("no equivocation proof stored"));
    let eq = EquivocationProof::verify_bytes(&proof)
        .unwrap_or_else(|v| panic!("the stored proof must verify: {v}"));
    assert_eq!(eq.seq, 1);
    assert_eq!(eq.signer, fake.id);
    assert_eq!(eq.hire_id, id);
    let mut ids = [first[1], second[0]];
    ids.sort();
    assert_eq!(eq.ids, ids, "the proof holds X and X'");
}

/// (b') The same fork seen by a network: the client's proof reaches a full node by gossip
/// and a late joiner by sync; every node flags the provider (its agent leaves default search,
/// its card says why, a new hire is refused) and the client's hire ends, closed as
/// `provider-equivocated`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_equivocation_proof_flags_the_provider_on_every_node_and_ends_the_hire() {
    let tmp = tmpdir();
    let script: Script = Box::new(|h: &Hire, from| match from {
        0 => {
            let e0 = h.started();
            let (e1, d1) = h.decision(1, e0.id(), "plan X");
            Some(receipts(vec![e0.to_bytes(), e1.to_bytes()], vec![d1], None))
        }
        2 => {
            let e0 = h.started();
            let (e1b, d1b) = h.decision(1, e0.id(), "plan Y, rewritten history");
            let (e2, d2) = h.decision(2, e1b.id(), "carry on");
            Some(receipts(
                vec![e1b.to_bytes(), e2.to_bytes()],
                vec![d1b, d2],
                None,
            ))
        }
        _ => None,
    });
    let dir = tmp.path().join("client");
    let (client, fake) = meet_the_liar(&dir, 80, OnAccept::Honest, script).await;
    // A witness that takes no part in the hire, meshed with the client before the fork.
    let witness = start_node(
        &tmp.path().join("witness"),
        seed(90),
        false,
        vec![client.addr.clone()],
    )
    .await;
    let manifest_id = fake.manifest.id();
    wait_for("the witness to catalog the fake's manifest", || async {
        matches!(witness.handle.manifest(manifest_id).await, Ok(Some(_)))
    })
    .await;
    let record = hire(&client, &fake)
        .await
        .unwrap_or_else(|e| panic!("hiring the fake provider: {e}"));
    let id = record.id();
    let r = wait_record(&client, id, "the client to end the hire", |r| {
        r.closed.is_some()
    })
    .await;
    assert_eq!(
        r.closed.as_ref().map(|c| c.reason),
        Some(souk_node::hire::record::ClosedReason::ProviderEquivocated),
        "{r:?}"
    );
    assert!(
        r.error
            .as_deref()
            .is_some_and(|e| e.contains("equivocated")),
        "{r:?}"
    );

    for (name, node) in [("client", &client), ("witness", &witness)] {
        wait_for(&format!("the {name} to flag the provider"), || async {
            node.handle.is_flagged(fake.id).await.unwrap_or(false)
        })
        .await;
    }
    // A late joiner learns it by sync.
    let late = start_node(
        &tmp.path().join("late"),
        seed(91),
        false,
        vec![witness.addr.clone()],
    )
    .await;
    wait_for("the late joiner to flag the provider", || async {
        late.handle.is_flagged(fake.id).await.unwrap_or(false)
    })
    .await;

    // Hidden from default search, shown when asked, and the card says why.
    let search = |include_flagged| souk_protocol::discovery::SearchRequest {
        text: String::new(),
        capabilities: Vec::new(),
        max_price: None,
        currency: None,
        limit: 20,
        provider: Some(fake.id.to_string()),
        include_flagged,
    };
    wait_for("the late joiner to catalog the fake's manifest", || async {
        matches!(late.handle.manifest(manifest_id).await, Ok(Some(_)))
    })
    .await;
    for node in [&witness, &late] {
        let hidden = node
            .handle
            .search(search(false))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(hidden.is_empty(), "{hidden:?}");
        let shown = node
            .handle
            .search_ranked(search(true), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(shown[0].flagged, "{shown:?}");
        let card = node.handle.agent_card(&fake.manifest).await;
        let flag = card
            .flagged
            .unwrap_or_else(|| panic!("the card of a flagged provider"));
        assert_eq!(flag.hire_id, id.to_hex());
        assert_eq!(flag.seq, 1);
    }
    // The client refuses a new hire of the flagged provider, before asking it anything.
    let fetches = fake.fetches();
    match hire(&client, &fake).await {
        Err(HireError::Flagged(p)) => assert_eq!(p, fake.id),
        other => panic!("a hire of a flagged provider: {other:?}"),
    }
    assert_eq!(fake.fetches(), fetches);
}

/// (c) A valid chain ending in `completed { H(x) }`, delivered with an output y != x.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_that_does_not_match_its_hash_is_refused() {
    let tmp = tmpdir();
    let script: Script = Box::new(|h: &Hire, from| {
        (from == 0).then(|| {
            let e0 = h.started();
            let (e1, d1) = h.decision(1, e0.id(), "compute");
            let e2 = h.completed(2, e1.id(), Hash::digest(OUTPUT));
            receipts(
                vec![e0.to_bytes(), e1.to_bytes(), e2.to_bytes()],
                vec![d1],
                Some(OTHER_OUTPUT.to_vec()),
            )
        })
    });
    let (client, fake, record) = hire_the_liar(tmp.path(), 78, script).await;
    let id = record.id();
    let r = wait_record(&client, id, "the client to refuse the output", |r| {
        r.error.is_some()
    })
    .await;
    let error = r.error.clone().unwrap_or_default();
    assert!(
        error.contains("output") && error.contains("does not match") && error.contains("hash"),
        "{error:?}"
    );
    assert_eq!(
        client.handle.hires.output(id).await.ok(),
        Some(None),
        "the substituted output must not be stored"
    );
    assert_eq!(
        fake.fetches(),
        1,
        "the client stops at once: {:?}",
        fake.seen()
    );
    client.handle.shutdown().await;
}

/// (d) Seq 1 commits to one payload; the disclosure sent with it opens to another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disclosure_that_does_not_open_its_commitment_is_refused() {
    let tmp = tmpdir();
    let script: Script = Box::new(|h: &Hire, from| {
        (from == 0).then(|| {
            let e0 = h.started();
            let (e1, mut d1) = h.decision(1, e0.id(), "what really happened");
            d1.payload = serde_json::to_vec(&json!({ "text": "a nicer story" }))
                .unwrap_or_else(|e| panic!("{e}"));
            receipts(vec![e0.to_bytes(), e1.to_bytes()], vec![d1], None)
        })
    });
    let (client, fake, record) = hire_the_liar(tmp.path(), 80, script).await;
    let id = record.id();
    let r = wait_record(&client, id, "the client to refuse the disclosure", |r| {
        r.error.is_some()
    })
    .await;
    let error = r.error.clone().unwrap_or_default();
    assert!(error.contains("does not open"), "{error:?}");
    assert_ne!(r.state, HireState::Completed, "{r:?}");
    assert_eq!(
        stored(&client, id).await,
        vec![fake.sent_from(0)[0].to_hex()],
        "the entry with the false opening is not stored"
    );
    assert_eq!(
        fake.fetches(),
        1,
        "the client stops at once: {:?}",
        fake.seen()
    );
    client.handle.shutdown().await;
}

/// The fake's script for the gap scenarios: seq 0, then to a fetch from 1 a reply that
/// skips seq 1 (rule R5) the first `gaps` times, and the full rest of the chain after.
fn gappy(gaps: u32) -> Script {
    let mut fetches_from_1 = 0u32;
    Box::new(move |h: &Hire, from| {
        let e0 = h.started();
        let (e1, d1) = h.decision(1, e0.id(), "step one");
        let e2 = h.completed(2, e1.id(), Hash::digest(OUTPUT));
        match from {
            0 => Some(receipts(vec![e0.to_bytes()], Vec::new(), None)),
            1 => {
                fetches_from_1 += 1;
                Some(if fetches_from_1 <= gaps {
                    receipts(vec![e2.to_bytes()], Vec::new(), Some(OUTPUT.to_vec()))
                } else {
                    receipts(
                        vec![e1.to_bytes(), e2.to_bytes()],
                        vec![d1],
                        Some(OUTPUT.to_vec()),
                    )
                })
            }
            _ => None,
        }
    })
}

/// A reply that skips an entry (seq 2 sent to a fetch from 1) is a gap, rule R5. As
/// `spec/receipts.md` ("Incremental verification", step 3) says, the client asks again from
/// `pos` instead of giving up on a chain that is valid so far; here the second answer is
/// complete and the hire completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_is_fetched_again() {
    let tmp = tmpdir();
    let (client, fake, record) = hire_the_liar(tmp.path(), 82, gappy(1)).await;
    let id = record.id();
    let r = wait_record(&client, id, "the hire to complete or stop", |r| {
        r.state == HireState::Completed || r.error.is_some()
    })
    .await;
    assert_eq!(r.error, None, "fake saw {:?}", fake.seen());
    assert_eq!(r.state, HireState::Completed);
    wait_for("the output to be stored", || async {
        matches!(client.handle.hires.output(id).await, Ok(Some(_)))
    })
    .await;
    assert_eq!(stored(&client, id).await.len(), 3);
    client.handle.shutdown().await;
}

/// A provider that answers every fetch with a gap is not asked forever: the follower stops
/// with an R5 error, and seq 0, which verified, stays stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_keeps_skipping_ahead_is_given_up() {
    let tmp = tmpdir();
    let (client, fake, record) = hire_the_liar(tmp.path(), 86, gappy(u32::MAX)).await;
    let id = record.id();
    let r = wait_record(&client, id, "the client to stop following", |r| {
        r.error.is_some()
    })
    .await;
    let error = r.error.clone().unwrap_or_default();
    assert!(error.contains("R5"), "{error:?}");
    assert_ne!(r.state, HireState::Completed, "{r:?}");
    assert_eq!(
        stored(&client, id).await,
        vec![fake.sent_from(0)[0].to_hex()]
    );
    assert_eq!(client.handle.hires.output(id).await.ok(), Some(None));
    let from_1 = fake
        .seen()
        .iter()
        .filter(|s| matches!(s, Seen::Fetch { from_seq: 1, .. }))
        .count();
    assert!(
        from_1 >= 2,
        "the gap was asked for again: {:?}",
        fake.seen()
    );
    client.handle.shutdown().await;
}

/// Negotiation lie: `accepted` naming another hire id. `spec/hiring.md` ("Contract: accept"):
/// the client MUST treat the call as failed; the reference marks its stored record `failed`
/// with the reason, and never follows the hire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_reply_for_another_hire_fails_the_hire() {
    let tmp = tmpdir();
    let script: Script = Box::new(|_: &Hire, _| None);
    let (client, fake) = meet_the_liar(tmp.path(), 84, OnAccept::WrongHireId, script).await;
    let e = match hire(&client, &fake).await {
        Ok(r) => panic!("a hire confirmed for another hire id must fail: {r:?}"),
        Err(e) => e,
    };
    assert!(matches!(e, HireError::Misbehaved(_)), "{e:?}");
    let list = client
        .handle
        .hires
        .list()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(list.len(), 1, "{list:?}");
    let r = &list[0];
    assert_eq!(r.state, HireState::Failed, "{r:?}");
    assert!(
        r.error
            .as_deref()
            .is_some_and(|e| e.contains("unexpected reply")),
        "{r:?}"
    );
    assert_eq!(r.entries, 0);
    let accepted = fake
        .seen()
        .iter()
        .find_map(|s| match s {
            Seen::Accept(id) => Some(*id),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the fake never saw the accept: {:?}", fake.seen()));
    assert_eq!(
        r.id(),
        accepted,
        "the record is the contract the client signed"
    );
    assert_eq!(fake.fetches(), 0, "a failed hire is not followed");
    client.handle.shutdown().await;
}

/// A script whose chain stops at an open question: `started`, `input-requested`.
fn asks_a_question() -> Script {
    Box::new(|h: &Hire, from| {
        (from == 0).then(|| {
            let e0 = h.started();
            let (e1, d1) = h.question(1, e0.id(), "which column?");
            receipts(vec![e0.to_bytes(), e1.to_bytes()], vec![d1], None)
        })
    })
}

/// One provider that never answers must not stall the client's other hires: while the
/// client's `answer` to the stuck fake is still in flight (it waits for the call's 40 s
/// timeout), a hire with an honest provider on the same client runs to completion and is
/// settled. Measured by events: the answer is still pending when the other hire is settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_never_answers_does_not_stall_other_hires() {
    let tmp = tmpdir();
    let (client, fake, record) = hire_the_liar(tmp.path(), 96, asks_a_question()).await;
    let stuck = record.id();
    wait_record(&client, stuck, "the fake's question", |r| {
        r.state == HireState::InputRequired
    })
    .await;
    // An honest provider for the other hire.
    let honest = support::start_node(
        &tmp.path().join("honest"),
        seed(98),
        false,
        vec![client.addr.clone()],
    )
    .await;
    let spec = support::script_agent(
        &tmp.path().join("pkg"),
        "quick-one",
        r#"send("decision", text="working")
send("result", output={"ok": True})"#,
        1_000_000,
    );
    let mid = support::publish_and_find(&honest.handle, &client.handle, spec, "quick-one").await;

    // The answer to the stuck provider goes out and hangs.
    let hires = client.handle.hires.clone();
    let answer = tokio::spawn(async move { hires.answer(stuck, json!("the first")).await });
    wait_for("the fake to receive the answer call", || async {
        fake.seen().contains(&Seen::Other("answer".into()))
    })
    .await;

    // Meanwhile the other hire is negotiated, followed to its end and settled.
    let other = client
        .handle
        .hires
        .create(support::new_hire(&mid, json!({}), None, None))
        .await
        .unwrap_or_else(|e| panic!("the other hire: {e}"));
    let done = support::wait_for_state(&client.handle, other.id(), HireState::Completed).await;
    assert_eq!(done.error, None);
    client
        .handle
        .hires
        .settle(
            other.id(),
            souk_protocol::hire::Verdict::Accepted,
            String::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("settle the other hire: {e}"));
    assert!(
        !answer.is_finished(),
        "the other hire waited for the stuck provider's answer call"
    );
    answer.abort();
    honest.handle.shutdown().await;
    client.handle.shutdown().await;
}

/// A provider that no longer knows a hire answers `unknown-hire`: the client's API says the
/// provider refused (a gateway error carrying the provider's code), not that the client has
/// no such hire (404), which it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_providers_unknown_hire_is_not_a_local_404() {
    let tmp = tmpdir();
    let (client, _fake, record) = hire_the_liar(tmp.path(), 99, asks_a_question()).await;
    let id = record.id();
    wait_record(&client, id, "the fake's question", |r| {
        r.state == HireState::InputRequired
    })
    .await;
    let err = match client.handle.hires.cancel(id, "never mind".into()).await {
        Ok(()) => panic!("the provider refuses the cancel"),
        Err(e) => e,
    };
    assert!(
        matches!(
            &err,
            HireError::Refused {
                code: CallError::UnknownHire,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.status(), 502, "{err}");
    assert_eq!(err.code(), "refused");
    assert_eq!(err.provider_code(), Some(CallError::UnknownHire));
    // The same through the local API, as the CLI sees it.
    let token = "ab".repeat(32);
    let stop = Arc::new(tokio::sync::Notify::new());
    let state = souk_node::api::ApiState {
        node: client.handle.clone(),
        token: Arc::new(zeroize::Zeroizing::new(token.clone())),
        shutdown: stop.clone(),
    };
    let s2 = stop.clone();
    let (addr, _task) = souk_node::api::serve(([127, 0, 0, 1], 0).into(), state, async move {
        s2.notified().await
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let api_err = tokio::task::spawn_blocking(move || {
        let api = souk_node::api::client::ApiClient::new(addr, zeroize::Zeroizing::new(token));
        api.post::<_, Value>(
            &format!("/v1/hires/{}/cancel", id.to_hex()),
            &json!({ "reason": "never mind" }),
        )
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    match api_err {
        Err(souk_node::api::client::ClientError::Api { status, body }) => {
            assert_eq!(status, 502, "{body:?}");
            assert_eq!(body.code, "refused");
            assert_eq!(body.provider_code.as_deref(), Some("unknown-hire"));
        }
        other => panic!("expected the provider's refusal, got {other:?}"),
    }
    // The hire is still ours, as the API says.
    assert!(matches!(client.handle.hires.get(id).await, Ok(Some(_))));
    stop.notify_one();
    client.handle.shutdown().await;
}
