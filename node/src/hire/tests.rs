//! The provider side of the hire actor against a fake network: every answer `serve.rs`
//! gives, without libp2p, TCP or Python. Calls go in through [`InboundSender`] with a
//! one-shot responder, exactly as the swarm loop delivers them.

use std::sync::{Arc, Mutex};

use libp2p::PeerId;
use souk_protocol::hiring::{CallError, HireCall, HireReply};
use souk_protocol::negotiation::{
    Accept, Contract, Decline, DeclineReason, HireRequest, Offer, Price, Proposal,
};
use souk_protocol::receipt::commit;
use souk_protocol::signed::Signed;
use souk_protocol::{Hash, Keypair};
use souk_store::{Store, StoreConfig};
use tokio::sync::oneshot;

use super::ctx::peer_of;
use super::offers::{OfferBook, Offerable, Offers};
use super::transport::{BoxFuture, HireNetwork, TransportError};
use super::{HireActor, HireOps, InboundSender};
use crate::agent_file::RunSpec;
use crate::now_ms;

/// A network where nobody answers (the provider side never calls out).
struct Offline;

impl HireNetwork for Offline {
    fn call(&self, _: PeerId, _: HireCall) -> BoxFuture<Result<HireReply, TransportError>> {
        Box::pin(async { Err(TransportError::NoReply("offline".into())) })
    }
    fn lookup_manifest(
        &self,
        _: Hash,
    ) -> BoxFuture<Result<Option<Signed<souk_protocol::manifest::Manifest>>, TransportError>> {
        Box::pin(async { Ok(None) })
    }
    fn relay(
        &self,
        _: PeerId,
        _: souk_protocol::credential::RelayRequest,
    ) -> BoxFuture<Result<souk_protocol::credential::RelayReply, TransportError>> {
        Box::pin(async { Err(TransportError::NoReply("offline".into())) })
    }
    fn publish(&self, _: super::PublicRecord) -> BoxFuture<Result<(), TransportError>> {
        Box::pin(async { Ok(()) })
    }
    fn successor(&self, _: Hash) -> BoxFuture<Result<Option<Hash>, TransportError>> {
        Box::pin(async { Ok(None) })
    }
    fn is_flagged(&self, _: souk_protocol::NodeId) -> BoxFuture<Result<bool, TransportError>> {
        Box::pin(async { Ok(false) })
    }
    fn check_provider(&self, _: souk_protocol::NodeId) -> BoxFuture<Result<bool, TransportError>> {
        Box::pin(async { Ok(false) })
    }
}

struct Provider {
    _dir: tempfile::TempDir,
    key: Keypair,
    inbound: InboundSender,
    ops: HireOps,
    store: Arc<Store>,
    manifest: Signed<souk_protocol::manifest::Manifest>,
}

/// A provider offering one agent (`max_concurrency` slots) whose package is a directory
/// holding one file; its agent reads the start line and then waits (the hire stays
/// `working` for the test's duration; the process is killed with the runtime).
async fn provider(max_concurrency: u32) -> Provider {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let package = dir.path().join("pkg");
    std::fs::create_dir_all(&package).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(package.join("agent.sh"), "exit 0\n").unwrap_or_else(|e| panic!("{e}"));
    let key = Keypair::from_seed(&[11; 32]);
    let mut spec = crate::testkit::agent("unit-agent", &["testing"], "unit test agent", 1_000_000);
    spec.max_concurrency = max_concurrency;
    spec.runtime_digest = crate::agent_file::package_digest(&package)
        .unwrap_or_else(|e| panic!("{e}"))
        .to_hex();
    let now = now_ms();
    let body = spec
        .to_manifest(
            key.id(),
            1,
            souk_protocol::credential::sealing_public_key(&[13; 32]),
            now,
            now + 3_600_000,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let manifest = Signed::sign(body, &key);
    let offers: Offers = Arc::new(Mutex::new(OfferBook::new()));
    offers.lock().unwrap_or_else(|e| e.into_inner()).insert(
        Offerable {
            manifest: manifest.clone(),
            run: RunSpec {
                command: vec!["sh".into(), "-c".into(), "read start; sleep 120".into()],
                workdir: package,
                ..Default::default()
            },
        },
        &[],
    );
    let store = Arc::new(
        Store::open(
            &dir.path().join("souk.redb"),
            &StoreConfig {
                cache_size: 1 << 20,
            },
        )
        .unwrap_or_else(|e| panic!("{e}")),
    );
    let (actor, ops, inbound) = HireActor::new(super::HireDeps {
        store: store.clone(),
        key: Arc::new(Keypair::from_seed(&[11; 32])),
        work_dir: dir.path().join("hires"),
        net: Arc::new(Offline),
        offers,
        sealing: Arc::new(zeroize::Zeroizing::new([13; 32])),
        settings: Arc::new(super::HireSettings::default()),
        metrics: Arc::default(),
        events: crate::service::EventSender::new(),
    });
    tokio::spawn(actor.run());
    Provider {
        _dir: dir,
        key,
        inbound,
        ops,
        store,
        manifest,
    }
}

impl Provider {
    async fn call(&self, from: &Keypair, call: HireCall) -> HireReply {
        let (tx, rx) = oneshot::channel();
        assert!(self.inbound.deliver(peer_of(&from.id()), call, tx));
        rx.await
            .unwrap_or_else(|_| panic!("the actor dropped the call"))
    }

    fn request(&self, client: &Keypair, input: &[u8], salt: &[u8; 32]) -> Signed<HireRequest> {
        let now = now_ms();
        Signed::sign(
            HireRequest {
                manifest_id: self.manifest.id(),
                client: client.id(),
                input_commitment: commit(salt, input),
                input_size: input.len() as u64,
                budget: Price {
                    currency: "USD".into(),
                    amount: 1_000_000,
                },
                deadline: now + 600_000,
                nonce: [client.id().as_bytes()[0]; 16],
                created_at: now,
            },
            client,
        )
    }

    /// Negotiates a contract for `client` (request -> offer -> accept), not yet delivered.
    async fn contract(&self, client: &Keypair, input: &[u8], salt: &[u8; 32]) -> Contract {
        let request = self.request(client, input, salt);
        let reply = self
            .call(
                client,
                HireCall::Request {
                    request: request.to_bytes(),
                },
            )
            .await;
        let HireReply::Offer(raw) = reply else {
            panic!("expected an offer, got {reply:?}");
        };
        let offer = Signed::<Offer>::open(&raw).unwrap_or_else(|e| panic!("{e}"));
        let accept = Signed::sign(
            Accept {
                request_id: request.id(),
                proposal_id: offer.id(),
                client: client.id(),
                created_at: now_ms(),
            },
            client,
        );
        Contract {
            request,
            proposal: Proposal::Offer(offer),
            accept,
        }
    }
}

fn error_code(reply: &HireReply) -> Option<CallError> {
    match reply {
        HireReply::Error { code, .. } => Some(*code),
        _ => None,
    }
}

const INPUT: &[u8] = br#"{"csv":"a,b\n1,2\n"}"#;

/// The acceptance of `contract` with [`INPUT`] under `salt` (the one its request committed to).
fn accept(contract: &Contract, salt: [u8; 32]) -> HireCall {
    HireCall::Accept {
        contract: contract.to_bytes(),
        input: INPUT.to_vec(),
        salt,
        credentials: Vec::new(),
    }
}

#[tokio::test]
async fn a_request_for_a_manifest_not_offered_gets_a_signed_decline() {
    let p = provider(2).await;
    let client = Keypair::from_seed(&[21; 32]);
    let mut body = p.request(&client, INPUT, &[1; 32]).body().clone();
    body.manifest_id = Hash::digest(b"some other agent");
    let request = Signed::sign(body, &client);
    let reply = p
        .call(
            &client,
            HireCall::Request {
                request: request.to_bytes(),
            },
        )
        .await;
    let HireReply::Decline(raw) = reply else {
        panic!("expected a decline, got {reply:?}");
    };
    let decline = Signed::<Decline>::decode_bytes(&raw).unwrap_or_else(|e| panic!("{e}"));
    decline
        .verify(&p.key.id())
        .unwrap_or_else(|e| panic!("the decline is signed by the provider: {e}"));
    assert_eq!(decline.body().reason, DeclineReason::UnknownManifest);
    assert_eq!(decline.body().request_id, request.id());
}

#[tokio::test]
async fn a_request_with_a_forged_signature_is_a_bad_call() {
    let p = provider(2).await;
    let client = Keypair::from_seed(&[22; 32]);
    let mut raw = p.request(&client, INPUT, &[1; 32]).to_bytes();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let reply = p.call(&client, HireCall::Request { request: raw }).await;
    assert_eq!(error_code(&reply), Some(CallError::BadCall), "{reply:?}");
}

#[tokio::test]
async fn an_accepted_contract_is_stored_once_and_redelivery_is_idempotent() {
    let p = provider(2).await;
    let client = Keypair::from_seed(&[23; 32]);
    let contract = p.contract(&client, INPUT, &[2; 32]).await;
    let id = contract.hire_id();
    for _ in 0..2 {
        let reply = p.call(&client, accept(&contract, [2; 32])).await;
        assert_eq!(reply, HireReply::Accepted { hire_id: id });
    }
    let hires = p.ops.list().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(hires.len(), 1);
    assert_eq!(hires[0].hire_id, id);
    assert_eq!(hires[0].client, client.id());
    let stored = p.store.get_hire(&id).unwrap_or_else(|e| panic!("{e}"));
    assert!(stored.is_some(), "the contract is stored before `accepted`");
}

#[tokio::test]
async fn an_input_that_does_not_match_its_commitment_is_refused_and_nothing_stored() {
    let p = provider(2).await;
    let client = Keypair::from_seed(&[24; 32]);
    let contract = p.contract(&client, INPUT, &[3; 32]).await;
    let reply = p
        .call(
            &client,
            HireCall::Accept {
                contract: contract.to_bytes(),
                input: br#"{"csv":"other"}"#.to_vec(),
                salt: [3; 32],
                credentials: Vec::new(),
            },
        )
        .await;
    assert_eq!(error_code(&reply), Some(CallError::BadCall), "{reply:?}");
    assert!(
        p.ops
            .list()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty()
    );
    assert_eq!(
        p.store.list_hires().unwrap_or_else(|e| panic!("{e}")).len(),
        0
    );
}

/// Accept check 8: inputs that only a lenient reader takes (invalid UTF-8 inside a string, an
/// escaped lone surrogate, a number out of range, nesting beyond 127 levels) are refused, even
/// when they match their commitment, and nothing is stored.
#[tokio::test]
async fn an_input_the_node_cannot_read_as_json_is_refused() {
    let p = provider(4).await;
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let inputs: Vec<Vec<u8>> = vec![
        b"{\"csv\":\"\xff\xfe\"}".to_vec(),
        br#"{"csv":"\ud800"}"#.to_vec(),
        br#"{"n":1e400}"#.to_vec(),
        deep.into_bytes(),
    ];
    for (i, input) in inputs.iter().enumerate() {
        let client = Keypair::from_seed(&[40 + i as u8; 32]);
        let salt = [9; 32];
        let contract = p.contract(&client, input, &salt).await;
        let reply = p
            .call(
                &client,
                HireCall::Accept {
                    contract: contract.to_bytes(),
                    input: input.clone(),
                    salt,
                    credentials: Vec::new(),
                },
            )
            .await;
        assert_eq!(
            error_code(&reply),
            Some(CallError::BadCall),
            "input {i}: {reply:?}"
        );
    }
    assert_eq!(
        p.store.list_hires().unwrap_or_else(|e| panic!("{e}")).len(),
        0
    );
}

/// The provider's signed decline reason, or `None` for any other reply.
fn decline_reason(reply: &HireReply) -> Option<DeclineReason> {
    match reply {
        HireReply::Decline(raw) => Signed::<Decline>::decode_bytes(raw)
            .ok()
            .map(|d| d.body().reason),
        _ => None,
    }
}

#[tokio::test]
async fn an_offer_holds_the_slot_so_a_second_request_is_declined_for_capacity() {
    let p = provider(1).await;
    let (a, b) = (Keypair::from_seed(&[25; 32]), Keypair::from_seed(&[26; 32]));
    // The one slot is reserved by the offer to `a`...
    let first = p.contract(&a, INPUT, &[4; 32]).await;
    // ... so `b` is declined at once (signed, with the reason), not offered a contract whose
    // acceptance would then be refused.
    let request = p.request(&b, INPUT, &[5; 32]);
    let reply = p
        .call(
            &b,
            HireCall::Request {
                request: request.to_bytes(),
            },
        )
        .await;
    assert_eq!(
        decline_reason(&reply),
        Some(DeclineReason::Capacity),
        "{reply:?}"
    );
    let r1 = p.call(&a, accept(&first, [4; 32])).await;
    assert_eq!(
        r1,
        HireReply::Accepted {
            hire_id: first.hire_id()
        }
    );
    // The slot is now the running hire's: still declined.
    let again = p.request(&b, INPUT, &[6; 32]);
    let reply = p
        .call(
            &b,
            HireCall::Request {
                request: again.to_bytes(),
            },
        )
        .await;
    assert_eq!(decline_reason(&reply), Some(DeclineReason::Capacity));
    assert_eq!(
        p.ops.list().await.unwrap_or_else(|e| panic!("{e}")).len(),
        1
    );
}

#[tokio::test]
async fn only_the_hires_client_may_fetch_answer_cancel_or_settle() {
    let p = provider(2).await;
    let client = Keypair::from_seed(&[27; 32]);
    let stranger = Keypair::from_seed(&[28; 32]);
    let contract = p.contract(&client, INPUT, &[6; 32]).await;
    let id = contract.hire_id();
    let reply = p.call(&client, accept(&contract, [6; 32])).await;
    assert_eq!(reply, HireReply::Accepted { hire_id: id });
    let calls = [
        HireCall::Fetch {
            hire_id: id,
            from_seq: 0,
            wait_ms: 0,
        },
        HireCall::Answer {
            hire_id: id,
            answer: b"\"yes\"".to_vec(),
        },
        HireCall::Cancel {
            hire_id: id,
            reason: "mine now".into(),
        },
    ];
    for call in calls.clone() {
        let reply = p.call(&stranger, call).await;
        assert_eq!(
            error_code(&reply),
            Some(CallError::NotYourHire),
            "{reply:?}"
        );
    }
    let unknown = Hash::digest(b"no such hire");
    let reply = p
        .call(
            &client,
            HireCall::Fetch {
                hire_id: unknown,
                from_seq: 0,
                wait_ms: 0,
            },
        )
        .await;
    assert_eq!(
        error_code(&reply),
        Some(CallError::UnknownHire),
        "{reply:?}"
    );
    // The client's own fetch is served (whatever the chain holds by now).
    let reply = p.call(&client, calls[0].clone()).await;
    assert!(matches!(reply, HireReply::Receipts { .. }), "{reply:?}");
    // No question is open: an answer does not fit the state.
    let reply = p.call(&client, calls[1].clone()).await;
    assert_eq!(error_code(&reply), Some(CallError::WrongState), "{reply:?}");
    // Garbage instead of an attestation.
    let reply = p
        .call(
            &client,
            HireCall::Settle {
                attestation: vec![0xff, 0x00],
            },
        )
        .await;
    assert_eq!(error_code(&reply), Some(CallError::BadCall), "{reply:?}");
}
