//! Deterministic fixtures and the generator of `spec/vectors/` (feature `vectors`).
//!
//! Everything here derives from fixed seeds and fixed timestamps, so the same code always
//! produces the same bytes. `cargo run -p souk-protocol --features vectors --example
//! gen-vectors` writes the files; the `vectors` test fails if the checked-in copies differ.

use serde::Serialize;

mod edge;
mod json;
pub use edge::{Edge, NON_CANONICAL_SMALL_ORDER, mixed_order_key, sign_with_mixed_order_key};

use crate::bundle::Bundle;
use crate::encoding::{self, Encoder};
use crate::equivocation::EquivocationProof;
use crate::hash::{Domain, Hash};
use crate::hire::Verdict;
use crate::identity::Keypair;
use crate::manifest::{CredentialSlot, Injection, Limits, Manifest, Pricing, Tool};
use crate::negotiation::{
    Accept, Contract, Counter, Decline, DeclineReason, HireRequest, Offer, Price, Proposal, Terms,
};
use crate::receipt::{
    Attestation, CallMode, EntryKind, FailureCode, NetworkCall, ReceiptEntry, SignedEntry, Usage,
    commit,
};
use crate::rules::Rule;
use crate::signed::{Signed, SignedBody};
use crate::verify::{SignatureCheck, verify_bundle};

pub mod credentials;
pub mod outcomes;

/// 2026-11-01T00:00:00Z in ms: the fixed "now" of every fixture.
pub const T0: u64 = 1_793_491_200_000;

/// The provider's fixed key.
pub fn provider_key() -> Keypair {
    Keypair::from_seed(&[0x11; 32])
}

/// The client's fixed key.
pub fn client_key() -> Keypair {
    Keypair::from_seed(&[0x22; 32])
}

/// A third party's fixed key (for wrong-signer vectors).
pub fn mallory_key() -> Keypair {
    Keypair::from_seed(&[0x33; 32])
}

/// A salt derived from a label (fixtures only; real salts are random).
pub fn salt(label: &str) -> [u8; 32] {
    *blake3::hash(format!("souk-vector-salt:{label}").as_bytes()).as_bytes()
}

/// The fixture manifest: a CSV analytics agent.
pub fn manifest_body(provider: &Keypair) -> Manifest {
    Manifest {
        provider: provider.id(),
        name: "csv-analyst".into(),
        seq: 3,
        capabilities: vec!["analytics".into(), "csv".into(), "report".into()],
        description: "Computes per-column statistics and a summary report over a CSV file.".into(),
        input_schema:
            r#"{"type":"object","required":["csv"],"properties":{"csv":{"type":"string"}}}"#.into(),
        output_schema: r#"{"type":"object","properties":{"report":{"type":"string"}}}"#.into(),
        tools: vec![Tool {
            name: "stats".into(),
            description: "column statistics".into(),
        }],
        hosts: vec!["api.example.com".into()],
        credentials: vec![CredentialSlot {
            name: "crm".into(),
            hosts: vec!["api.example.com".into()],
            injection: Injection::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into(),
            },
        }],
        pricing: Pricing {
            currency: "USD".into(),
            per_hire: 2_000_000,
            per_hour: 500_000,
        },
        limits: Limits {
            max_duration_ms: 3_600_000,
            max_concurrency: 4,
            max_input_bytes: 1 << 20,
            memory_bytes: 512 << 20,
            max_processes: 64,
            isolation: crate::manifest::Isolation::Sandbox,
        },
        runtime_digest: Hash::digest(b"csv-analyst runtime package v3"),
        sealing_key: *blake3::hash(b"fixture x25519 public key").as_bytes(),
        issued_at: T0,
        expires_at: T0 + 24 * 3600 * 1000,
    }
}

/// A whole hire built from fixed inputs.
#[derive(Debug, Clone)]
pub struct HireFixture {
    /// The signed manifest.
    pub manifest: Signed<Manifest>,
    /// The contract.
    pub contract: Contract,
    /// The signed entries.
    pub entries: Vec<SignedEntry>,
    /// The client's attestation, if settled.
    pub attestation: Option<Signed<Attestation>>,
    /// Salts and payloads behind each entry's commitment, by seq.
    pub payloads: Vec<Option<([u8; 32], Vec<u8>)>>,
}

/// How the fixture hire ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Completed and accepted by the client.
    CompletedAccepted,
    /// Failed (agent crashed) and disputed.
    FailedDisputed,
    /// Still working (no terminal entry, no attestation).
    InProgress,
}

/// Which signature of a fixture hire is being made (see [`HireFixture::build_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The manifest's.
    Manifest,
    /// The hire request's.
    Request,
    /// The offer's or counter's.
    Proposal,
    /// The acceptance's.
    Accept,
    /// The receipt entry's with this seq.
    Entry(u64),
    /// The attestation's.
    Attestation,
}

/// Signs `body` with `key` the way `edge` says; [`Edge::Honest`] gives [`Signed::sign`]'s
/// bytes.
pub fn sign_edge<T: SignedBody>(body: T, key: &Keypair, edge: Edge) -> Signed<T> {
    if edge == Edge::Honest {
        return Signed::sign(body, key);
    }
    let input = T::DOMAIN.input(&encoding::encode(&body));
    Signed::from_signature(body, key.id(), edge.sign(key, &input))
}

/// Builds the request, offer and acceptance of the fixture hire.
pub fn contract(
    manifest: &Signed<Manifest>,
    provider: &Keypair,
    client: &Keypair,
    counter: bool,
) -> Contract {
    contract_with(manifest, provider, client, counter, &|_| Edge::Honest)
}

fn contract_with(
    manifest: &Signed<Manifest>,
    provider: &Keypair,
    client: &Keypair,
    counter: bool,
    pick: &dyn Fn(Slot) -> Edge,
) -> Contract {
    let request = sign_edge(
        HireRequest {
            manifest_id: manifest.id(),
            client: client.id(),
            input_commitment: commit(&salt("input"), b"region,sales\nnorth,10\nsouth,32\n"),
            input_size: 31,
            budget: Price {
                currency: "USD".into(),
                amount: 2_500_000,
            },
            deadline: T0 + 2 * 3600 * 1000,
            nonce: [7; 16],
            created_at: T0 + 1000,
        },
        client,
        pick(Slot::Request),
    );
    let terms = Terms {
        price: Price {
            currency: "USD".into(),
            amount: if counter { 3_000_000 } else { 2_000_000 },
        },
        deadline: T0 + 3600 * 1000,
    };
    let proposal = if counter {
        Proposal::Counter(sign_edge(
            Counter {
                request_id: request.id(),
                provider: provider.id(),
                terms,
                valid_until: T0 + 60_000,
                reason: "budget below the agent's price for this input size".into(),
                created_at: T0 + 1100,
            },
            provider,
            pick(Slot::Proposal),
        ))
    } else {
        Proposal::Offer(sign_edge(
            Offer {
                request_id: request.id(),
                provider: provider.id(),
                terms,
                valid_until: T0 + 60_000,
                created_at: T0 + 1100,
            },
            provider,
            pick(Slot::Proposal),
        ))
    };
    let accept = sign_edge(
        Accept {
            request_id: request.id(),
            proposal_id: proposal.id(),
            client: client.id(),
            created_at: T0 + 1200,
        },
        client,
        pick(Slot::Accept),
    );
    Contract {
        request,
        proposal,
        accept,
    }
}

/// The usage a terminal entry at `time` after `entries` records, for a hire agreed at
/// `price` (what rule R9 requires).
pub fn usage_of(price: &Price, entries: &[SignedEntry], time: u64) -> Usage {
    let mut tally = crate::verify::Tally::default();
    for e in entries {
        tally.add(&e.body().kind, e.body().time);
    }
    tally.usage(price, time)
}

/// Signs the next entry of a chain.
pub fn sign_entry(
    provider: &Keypair,
    hire_id: Hash,
    prev: Option<&SignedEntry>,
    time: u64,
    kind: EntryKind,
    commitment: Option<Hash>,
) -> SignedEntry {
    sign_entry_with(
        provider,
        hire_id,
        prev,
        time,
        kind,
        commitment,
        Edge::Honest,
    )
}

fn sign_entry_with(
    provider: &Keypair,
    hire_id: Hash,
    prev: Option<&SignedEntry>,
    time: u64,
    kind: EntryKind,
    commitment: Option<Hash>,
    edge: Edge,
) -> SignedEntry {
    sign_edge(
        ReceiptEntry {
            hire_id,
            seq: prev.map_or(0, |p| p.body().seq + 1),
            prev: prev.map_or(Hash::ZERO, |p| p.id()),
            time,
            kind,
            commitment,
        },
        provider,
        edge,
    )
}

impl HireFixture {
    /// The fixture hire with `steps` decision/tool/network steps in the middle.
    pub fn build(steps: usize, ending: Ending) -> HireFixture {
        Self::build_with(steps, ending, &|_| Edge::Honest)
    }

    /// Like [`HireFixture::build`], each signature made as `pick` says for its slot (the
    /// bodies, and so every id, are the same as with honest signatures only where no
    /// signature is hashed into a later body: the contract's signatures are, via the hire id).
    pub fn build_with(steps: usize, ending: Ending, pick: &dyn Fn(Slot) -> Edge) -> HireFixture {
        let provider = provider_key();
        let client = client_key();
        let manifest = sign_edge(manifest_body(&provider), &provider, pick(Slot::Manifest));
        let contract = contract_with(&manifest, &provider, &client, false, pick);
        let hire_id = contract.hire_id();
        let mut entries: Vec<SignedEntry> = Vec::with_capacity(steps + 4);
        let mut payloads = Vec::with_capacity(steps + 4);
        let mut t = T0 + 2000;
        let mut push =
            |mut kind: EntryKind, payload: Option<Vec<u8>>, entries: &mut Vec<SignedEntry>| {
                let seq = entries.len();
                if kind.is_terminal() {
                    kind.set_usage(usage_of(&contract.terms().price, entries, t));
                }
                let opened = payload.map(|p| (salt(&format!("entry-{seq}")), p));
                let commitment = opened.as_ref().map(|(s, p)| commit(s, p));
                let edge = pick(Slot::Entry(seq as u64));
                let e = sign_entry_with(
                    &provider,
                    hire_id,
                    entries.last(),
                    t,
                    kind,
                    commitment,
                    edge,
                );
                t += 250;
                entries.push(e);
                payloads.push(opened);
            };
        push(
            EntryKind::Started {
                runtime_digest: manifest.body().runtime_digest,
            },
            None,
            &mut entries,
        );
        for i in 0..steps {
            match i % 4 {
                0 => push(
                    EntryKind::Decision,
                    Some(format!("step {i}: compute column stats").into_bytes()),
                    &mut entries,
                ),
                1 => push(
                    EntryKind::ToolCall {
                        tool: "stats".into(),
                    },
                    Some(format!("{{\"column\":\"sales\",\"step\":{i}}}").into_bytes()),
                    &mut entries,
                ),
                2 => push(
                    EntryKind::NetworkCall(NetworkCall {
                        host: "api.example.com".into(),
                        method: "GET".into(),
                        path: "/v1/regions".into(),
                        status: 200,
                        request_bytes: 0,
                        response_bytes: 42,
                        request_hash: Hash::digest(b""),
                        response_hash: Hash::digest(b"{\"regions\":[\"north\",\"south\"]}"),
                        duration_ms: 85,
                        slot: None,
                        mode: CallMode::None,
                        denial: None,
                        relay_record: None,
                    }),
                    None,
                    &mut entries,
                ),
                _ => push(
                    EntryKind::Checkpoint {
                        state_hash: Hash::digest(format!("state {i}").as_bytes()),
                    },
                    None,
                    &mut entries,
                ),
            }
        }
        let attestation = match ending {
            Ending::InProgress => None,
            Ending::CompletedAccepted | Ending::FailedDisputed => {
                let (kind, verdict, reason) = if ending == Ending::CompletedAccepted {
                    (
                        EntryKind::Completed {
                            output_hash: Hash::digest(b"{\"report\":\"sales: mean 21, max 32\"}"),
                            usage: Usage::default(),
                        },
                        Verdict::Accepted,
                        "",
                    )
                } else {
                    (
                        EntryKind::Failed {
                            code: FailureCode::AgentCrashed,
                            message: "agent exited with status 137".into(),
                            usage: Usage::default(),
                        },
                        Verdict::Disputed,
                        "the agent crashed before producing a report",
                    )
                };
                push(kind, None, &mut entries);
                let head = entries
                    .last()
                    .map(|h| (h.body().seq, h.id()))
                    .unwrap_or((0, Hash::ZERO));
                Some(sign_edge(
                    Attestation {
                        hire_id,
                        head_seq: head.0,
                        head_id: head.1,
                        verdict,
                        reason: reason.into(),
                        created_at: t + 1000,
                    },
                    &client,
                    pick(Slot::Attestation),
                ))
            }
        };
        HireFixture {
            manifest,
            contract,
            entries,
            attestation,
            payloads,
        }
    }

    /// The bundle, disclosing the payloads of the entries in `disclose`.
    pub fn bundle(&self, disclose: &[u64]) -> Bundle {
        let disclosures = disclose
            .iter()
            .filter_map(|seq| {
                let (salt, payload) = self.payloads.get(*seq as usize)?.as_ref()?;
                Some(crate::receipt::Disclosure {
                    seq: *seq,
                    salt: *salt,
                    payload: payload.clone(),
                })
            })
            .collect();
        Bundle {
            manifest: self.manifest.to_bytes(),
            contract: self.contract.to_bytes(),
            entries: self.entries.iter().map(|e| e.to_bytes()).collect(),
            attestation: self.attestation.as_ref().map(|a| a.to_bytes()),
            disclosures,
        }
    }
}

/// One generated file.
#[derive(Debug, Clone)]
pub struct VectorFile {
    /// Path relative to `spec/vectors/`.
    pub path: String,
    /// Contents.
    pub contents: Vec<u8>,
}

fn json_file(path: &str, value: &impl Serialize) -> VectorFile {
    let mut contents = serde_json::to_vec_pretty(value).unwrap_or_default();
    contents.push(b'\n');
    VectorFile {
        path: path.into(),
        contents,
    }
}

#[derive(Serialize)]
struct IdentityVector {
    seed: String,
    public_key: String,
    node_id: String,
    peer_id: String,
}

#[derive(Serialize)]
pub(crate) struct SignatureVector {
    object: &'static str,
    tag: &'static str,
    signer_seed: String,
    body: String,
    signing_input: String,
    /// The object id (for a manifest, its stable id: `spec/manifest.md`).
    id: String,
    /// BLAKE3 of the signing input.
    envelope_id: String,
    signature: String,
    envelope: String,
}

#[derive(Serialize)]
struct EncodingVector {
    name: String,
    object: &'static str,
    bytes: String,
    valid: bool,
    /// For invalid vectors: the decoding error kind.
    error: Option<String>,
}

#[derive(Serialize)]
struct CommitmentVector {
    salt: String,
    payload: String,
    commitment: String,
}

#[derive(Serialize)]
struct ContractVector {
    name: &'static str,
    contract: String,
    hire_id: String,
    manifest: String,
}

/// Expected outcome of a bundle vector.
#[derive(Serialize)]
pub struct BundleVector {
    /// File name under `bundles/`.
    pub file: String,
    /// What the vector exercises.
    pub description: String,
    /// Whether verification succeeds.
    pub valid: bool,
    /// For invalid vectors: the rule broken.
    pub rule: Option<String>,
    /// For invalid vectors: the entry position where verification stops, if any.
    pub entry: Option<u64>,
    /// For valid vectors: the final state.
    pub state: Option<String>,
    /// For valid vectors: the verdict, if attested.
    pub verdict: Option<String>,
    /// For valid vectors: the number of entries.
    pub entries: Option<u64>,
}

#[derive(Serialize)]
struct EquivocationVector {
    name: &'static str,
    proof: String,
    valid: bool,
    rule: Option<String>,
    seq: Option<u64>,
}

fn hx(b: &[u8]) -> String {
    hex::encode(b)
}

fn signature_vector<T: SignedBody>(
    object: &'static str,
    seed: u8,
    s: &Signed<T>,
) -> SignatureVector {
    SignatureVector {
        object,
        tag: T::DOMAIN.tag(),
        signer_seed: hx(&[seed; 32]),
        body: hx(s.body_bytes()),
        signing_input: hx(&s.signing_input()),
        id: s.id().to_hex(),
        envelope_id: s.envelope_id().to_hex(),
        signature: hx(s.signature()),
        envelope: hx(&s.to_bytes()),
    }
}

/// Re-signs a body with `key` as-is (used to build wrong-signer and tampered vectors).
fn resign<T: SignedBody + Clone>(s: &Signed<T>, key: &Keypair) -> Signed<T> {
    Signed::sign(s.body().clone(), key)
}

/// Signs raw body bytes (possibly non-canonical) into an envelope, for encoding vectors.
fn raw_envelope(domain: Domain, body: &[u8], key: &Keypair) -> Vec<u8> {
    let sig = key.sign_raw(&domain.input(body));
    let mut enc = Encoder::new();
    enc.array(3);
    enc.bytes(body);
    enc.bytes(key.id().as_bytes());
    enc.bytes(&sig);
    enc.into_bytes()
}

/// A named bundle mutation for the invalid vectors.
struct Case {
    file: &'static str,
    description: &'static str,
    bundle: Bundle,
}

fn invalid_bundle_cases() -> Vec<Case> {
    let provider = provider_key();
    let client = client_key();
    let mallory = mallory_key();
    let fx = HireFixture::build(6, Ending::CompletedAccepted);
    let good = fx.bundle(&[1, 2]);
    let hire_id = fx.contract.hire_id();
    let mut cases = Vec::new();
    let mut case = |file, description, f: &dyn Fn(&mut Bundle)| {
        let mut b = good.clone();
        f(&mut b);
        cases.push(Case {
            file,
            description,
            bundle: b,
        });
    };

    case(
        "invalid-m1-manifest-signer.souk",
        "manifest re-signed by a key other than its provider",
        &|b| {
            b.manifest = resign(&fx.manifest, &mallory).to_bytes();
        },
    );
    case(
        "invalid-m2-manifest-unsorted-capabilities.souk",
        "manifest with unsorted capability tags (validly signed)",
        &|b| {
            let mut m = fx.manifest.body().clone();
            m.capabilities.reverse();
            b.manifest = Signed::sign(m, &provider).to_bytes();
        },
    );
    case(
        "invalid-c1-contract-truncated.souk",
        "contract bytes cut short",
        &|b| {
            b.contract.truncate(b.contract.len() - 1);
        },
    );
    case(
        "invalid-c1-offer-signature.souk",
        "offer signature bit flipped",
        &|b| {
            let mut bytes = fx.contract.to_bytes();
            // The offer's signature: flip a bit inside the second envelope's signature.
            if let Proposal::Offer(o) = &fx.contract.proposal {
                let env = o.to_bytes();
                if let Some(pos) = find(&bytes, &env) {
                    let sig_at = pos + env.len() - 10;
                    bytes[sig_at] ^= 0x01;
                }
            }
            b.contract = bytes;
        },
    );
    case(
        "invalid-c2-other-manifest.souk",
        "the bundle's manifest is not the one the request names (same agent, new price)",
        &|b| {
            let mut m = fx.manifest.body().clone();
            m.seq += 1;
            m.pricing.per_hire += 1;
            b.manifest = Signed::sign(m, &provider).to_bytes();
        },
    );
    case(
        "invalid-c3-request-signer.souk",
        "request signed by a key other than its client",
        &|b| {
            let mut c = fx.contract.clone();
            c.request = resign(&fx.contract.request, &mallory);
            b.contract = c.to_bytes();
        },
    );
    case(
        "invalid-c4-proposal-signer.souk",
        "offer signed by a key other than the manifest's provider",
        &|b| {
            let mut c = fx.contract.clone();
            if let Proposal::Offer(o) = &fx.contract.proposal {
                c.proposal = Proposal::Offer(resign(o, &mallory));
            }
            b.contract = c.to_bytes();
        },
    );
    case(
        "invalid-c5-accept-other-proposal.souk",
        "acceptance names a different proposal id",
        &|b| {
            let mut c = fx.contract.clone();
            let mut acc = fx.contract.accept.body().clone();
            acc.proposal_id = Hash::digest(b"another proposal");
            c.accept = Signed::sign(acc, &client);
            b.contract = c.to_bytes();
        },
    );
    case(
        "invalid-c6-accepted-after-lapse.souk",
        "acceptance made after the offer's valid_until",
        &|b| {
            let mut c = fx.contract.clone();
            let mut acc = fx.contract.accept.body().clone();
            acc.created_at = fx.contract.proposal.valid_until() + 1;
            c.accept = Signed::sign(acc, &client);
            b.contract = c.to_bytes();
        },
    );
    case(
        "invalid-c7-offer-over-budget.souk",
        "an offer (not a counter) priced above the request's budget",
        &|b| {
            let mut c = fx.contract.clone();
            if let Proposal::Offer(o) = &fx.contract.proposal {
                let mut body = o.body().clone();
                body.terms.price.amount = fx.contract.request.body().budget.amount + 1;
                let offer = Signed::sign(body, &provider);
                let mut acc = fx.contract.accept.body().clone();
                acc.proposal_id = offer.id();
                c.proposal = Proposal::Offer(offer);
                c.accept = Signed::sign(acc, &client);
            }
            b.contract = c.to_bytes();
        },
    );
    case(
        "invalid-r1-entry-non-canonical.souk",
        "entry 2's envelope has a non-minimal length head",
        &|b| {
            let e = &b.entries[2];
            // Re-encode the envelope's array head (0x83) as 0x98 0x03 (non-minimal).
            let mut bad = vec![0x98, 0x03];
            bad.extend_from_slice(&e[1..]);
            b.entries[2] = bad;
        },
    );
    case(
        "invalid-r2-entry-signer.souk",
        "entry 3 re-signed by another key",
        &|b| {
            b.entries[3] = resign(&fx.entries[3], &mallory).to_bytes();
        },
    );
    case(
        "invalid-r3-entry-signature.souk",
        "entry 4's signature has one bit flipped",
        &|b| {
            let n = b.entries[4].len();
            b.entries[4][n - 1] ^= 0x01;
        },
    );
    case(
        "invalid-r4-entry-other-hire.souk",
        "entry 1 names another hire id",
        &|b| {
            let mut e = fx.entries[1].body().clone();
            e.hire_id = Hash::digest(b"another hire");
            b.entries[1] = Signed::sign(e, &provider).to_bytes();
        },
    );
    case(
        "invalid-r5-entry-dropped.souk",
        "entry 3 removed from the middle of the chain",
        &|b| {
            b.entries.remove(3);
        },
    );
    case(
        "invalid-r5-entries-reordered.souk",
        "entries 2 and 3 swapped",
        &|b| {
            b.entries.swap(2, 3);
        },
    );
    case(
        "invalid-r5-entry-duplicated.souk",
        "entry 2 appears twice",
        &|b| {
            let e = b.entries[2].clone();
            b.entries.insert(3, e);
        },
    );
    case(
        "invalid-r6-entry-prev.souk",
        "entry 5 (re-signed) links to the wrong previous entry",
        &|b| {
            let mut e = fx.entries[5].body().clone();
            e.prev = fx.entries[3].id();
            b.entries[5] = Signed::sign(e, &provider).to_bytes();
        },
    );
    case(
        "invalid-r7-entry-time.souk",
        "entry 2 (re-signed) is older than entry 1",
        &|b| {
            let mut e = fx.entries[2].body().clone();
            e.time = fx.entries[1].body().time - 1;
            let e2 = Signed::sign(e, &provider);
            b.entries[2] = e2.to_bytes();
        },
    );
    case(
        "invalid-r8-step-before-start.souk",
        "the chain opens with a decision instead of started",
        &|b| {
            let first = sign_entry(
                &provider,
                hire_id,
                None,
                T0 + 2000,
                EntryKind::Decision,
                None,
            );
            b.entries = vec![first.to_bytes()];
            b.attestation = None;
            b.disclosures.clear();
        },
    );
    case(
        "invalid-r8-entry-after-terminal.souk",
        "a decision appended after the completed entry",
        &|b| {
            let last = fx.entries.last().cloned();
            let extra = sign_entry(
                &provider,
                hire_id,
                last.as_ref(),
                T0 + 99_000,
                EntryKind::Decision,
                None,
            );
            b.entries.push(extra.to_bytes());
            b.attestation = None;
        },
    );
    case(
        "invalid-r9-network-call-query.souk",
        "an observed network call whose path carries a query string",
        &|b| {
            let call = EntryKind::NetworkCall(NetworkCall {
                host: "api.example.com".into(),
                method: "GET".into(),
                path: "/v1/regions?token=secret".into(),
                status: 200,
                request_bytes: 0,
                response_bytes: 1,
                request_hash: Hash::digest(b""),
                response_hash: Hash::digest(b"x"),
                duration_ms: 12,
                slot: None,
                mode: CallMode::None,
                denial: None,
                relay_record: None,
            });
            let e = sign_entry(
                &provider,
                hire_id,
                Some(&fx.entries[0]),
                T0 + 2100,
                call,
                None,
            );
            b.entries = vec![fx.entries[0].to_bytes(), e.to_bytes()];
            b.attestation = None;
            b.disclosures.clear();
        },
    );
    case(
        "invalid-r9-started-runtime.souk",
        "started names a runtime package other than the manifest's",
        &|b| {
            let e = sign_entry(
                &provider,
                hire_id,
                None,
                T0 + 2000,
                EntryKind::Started {
                    runtime_digest: Hash::digest(b"some other package"),
                },
                None,
            );
            b.entries = vec![e.to_bytes()];
            b.attestation = None;
            b.disclosures.clear();
        },
    );
    // The terminal entry re-signed with a usage record the chain does not support.
    let with_usage = |b: &mut Bundle, change: &dyn Fn(&mut Usage)| {
        let n = fx.entries.len();
        let mut e = fx.entries[n - 1].body().clone();
        if let Some(mut usage) = e.kind.usage().cloned() {
            change(&mut usage);
            e.kind.set_usage(usage);
        }
        b.entries[n - 1] = Signed::sign(e, &provider).to_bytes();
        b.attestation = None;
    };
    case(
        "invalid-r9-usage-steps.souk",
        "the completed entry (re-signed) records one step fewer than the chain holds",
        &|b| with_usage(b, &|u| u.steps -= 1),
    );
    case(
        "invalid-r9-usage-price.souk",
        "the completed entry (re-signed) records a price above the contract's",
        &|b| with_usage(b, &|u| u.price.amount += 1),
    );
    case(
        "invalid-r9-usage-wall-time.souk",
        "the completed entry (re-signed) records more wall time than its started and completed entries span",
        &|b| with_usage(b, &|u| u.wall_ms += 1),
    );
    case(
        "invalid-a1-attestation-signer.souk",
        "attestation signed by the provider instead of the client",
        &|b| {
            b.attestation = fx
                .attestation
                .as_ref()
                .map(|a| resign(a, &provider).to_bytes());
        },
    );
    case(
        "invalid-a2-attestation-hire.souk",
        "attestation names another hire",
        &|b| {
            b.attestation = fx.attestation.as_ref().map(|a| {
                let mut body = a.body().clone();
                body.hire_id = Hash::digest(b"another hire");
                Signed::sign(body, &client).to_bytes()
            });
        },
    );
    case(
        "invalid-a3-attestation-truncated-chain.souk",
        "the last entry dropped: the attestation no longer matches the head",
        &|b| {
            b.entries.pop();
        },
    );
    case(
        "invalid-a4-attestation-non-terminal.souk",
        "an attestation of a chain that has not ended",
        &|b| {
            b.entries.pop();
            let head = &fx.entries[fx.entries.len() - 2];
            b.attestation = fx.attestation.as_ref().map(|a| {
                let mut body = a.body().clone();
                body.head_seq = head.body().seq;
                body.head_id = head.id();
                Signed::sign(body, &client).to_bytes()
            });
        },
    );
    case(
        "invalid-d1-disclosure-unsorted.souk",
        "disclosures out of seq order",
        &|b| {
            b.disclosures.reverse();
        },
    );
    case(
        "invalid-d1-disclosure-no-commitment.souk",
        "a disclosure for an entry without a commitment",
        &|b| {
            let mut d = b.disclosures[0].clone();
            d.seq = 0;
            b.disclosures.insert(0, d);
        },
    );
    case(
        "invalid-d2-disclosure-payload.souk",
        "a disclosed payload that does not open the commitment",
        &|b| {
            b.disclosures[0].payload.push(b'!');
        },
    );
    cases
}

#[derive(Serialize)]
struct InvalidIdentity {
    name: &'static str,
    /// Either `public_key` (hex) or `text` is given.
    public_key: Option<String>,
    text: Option<String>,
    error: String,
}

fn invalid_identities() -> Vec<InvalidIdentity> {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    let mut identity_point = [0u8; 32];
    identity_point[0] = 1;
    let mut order2 = [0xffu8; 32];
    order2[0] = 0xec;
    order2[31] = 0x7f;
    let mut y_is_p = [0xffu8; 32];
    y_is_p[0] = 0xed;
    y_is_p[31] = 0x7f;
    let honest = provider_key().id();
    // honest + (0, -1): a mixed-order point.
    let mixed = match (
        CompressedEdwardsY(*honest.as_bytes()).decompress(),
        CompressedEdwardsY(order2).decompress(),
    ) {
        (Some(p), Some(t)) => (p + t).compress().to_bytes(),
        _ => [0; 32],
    };
    let keys: [(&'static str, [u8; 32]); 4] = [
        ("identity point (small order)", identity_point),
        ("point of order 2", order2),
        ("non-canonical encoding y = p", y_is_p),
        ("mixed-order point (valid key plus a torsion point)", mixed),
    ];
    let mut out: Vec<InvalidIdentity> = keys
        .iter()
        .map(|(name, k)| InvalidIdentity {
            name,
            public_key: Some(hx(k)),
            text: None,
            error: crate::identity::NodeId::from_bytes(k)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
        })
        .collect();
    let good = honest.to_string();
    let last = if good.ends_with('a') { 'b' } else { 'a' };
    let texts: [(&'static str, String); 4] = [
        ("uppercase text form", good.to_uppercase()),
        ("missing prefix", good[4..].to_string()),
        ("one character short", good[..good.len() - 1].to_string()),
        (
            "last character changed (non-canonical base32 or another key)",
            format!("{}{}", &good[..good.len() - 1], last),
        ),
    ];
    for (name, text) in texts {
        let error = text
            .parse::<crate::identity::NodeId>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        out.push(InvalidIdentity {
            name,
            public_key: None,
            text: Some(text),
            error,
        });
    }
    out
}

#[derive(Serialize)]
struct EdgeSignature {
    name: String,
    public_key: String,
    message: String,
    signature: String,
    /// Whether `public_key` is a valid NodeId (`spec/identity.md`).
    key_valid: bool,
    /// Whether the signature is valid (`spec/encoding.md`, "Signature validity").
    valid: bool,
}

/// Signer-made and tampered signatures over one message, each with the verdict the spec gives
/// it (derived from how it was made, not by running the verifier).
fn edge_signatures() -> Vec<EdgeSignature> {
    let key = provider_key();
    let msg = Domain::Receipt.input(b"edge-case signature vectors");
    let pk = key.id();
    let v = |name: String, public_key: &[u8; 32], signature: &[u8; 64], key_valid, valid| {
        EdgeSignature {
            name,
            public_key: hx(public_key),
            message: hx(&msg),
            signature: hx(signature),
            key_valid,
            valid,
        }
    };
    let mut out: Vec<EdgeSignature> = Edge::all()
        .into_iter()
        .map(|e| {
            v(
                e.name(),
                pk.as_bytes(),
                &e.sign(&key, &msg),
                true,
                e.is_valid(),
            )
        })
        .collect();
    let mut flipped = Edge::Honest.sign(&key, &msg);
    flipped[10] ^= 0x20;
    out.push(v(
        "honest, one bit of R flipped".into(),
        pk.as_bytes(),
        &flipped,
        true,
        false,
    ));
    let mut not_a_point = Edge::Honest.sign(&key, &msg);
    let y = (2u8..)
        .map(|y| {
            let mut enc = [0u8; 32];
            enc[0] = y;
            enc
        })
        .find(|enc| {
            curve25519_dalek::edwards::CompressedEdwardsY(*enc)
                .decompress()
                .is_none()
        })
        .unwrap_or_default();
    not_a_point[..32].copy_from_slice(&y);
    out.push(v(
        "R not a curve point".into(),
        pk.as_bytes(),
        &not_a_point,
        true,
        false,
    ));
    let mut high_s = Edge::Honest.sign(&key, &msg);
    high_s[63] |= 0xe0;
    out.push(v(
        "S with its top 3 bits set".into(),
        pk.as_bytes(),
        &high_s,
        true,
        false,
    ));
    // Weak keys: the equation holds, the key rule rejects them.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut zero_sig = [0u8; 64];
    zero_sig[0] = 1;
    out.push(v(
        "weak key (identity point); R = identity, S = 0".into(),
        &identity,
        &zero_sig,
        false,
        false,
    ));
    for torsion in [4u8, 1] {
        out.push(v(
            format!("mixed-order key (provider + EIGHT_TORSION[{torsion}]) signed by its owner"),
            &mixed_order_key(&key, torsion),
            &sign_with_mixed_order_key(&key, torsion, &msg),
            false,
            false,
        ));
    }
    out
}

/// A bundle whose outcome is stated from the spec (not computed by the verifier); the vectors
/// test checks the verifier agrees.
struct EdgeBundle {
    vector: BundleVector,
    bytes: Vec<u8>,
}

fn valid_edge_bundle(file: &str, description: &str, fx: &HireFixture) -> EdgeBundle {
    let (state, verdict) = match fx.attestation.as_ref().map(|a| a.body().verdict) {
        Some(Verdict::Accepted) => ("completed", Some("accepted")),
        Some(Verdict::Disputed) => ("failed", Some("disputed")),
        None => ("working", None),
    };
    EdgeBundle {
        vector: BundleVector {
            file: file.into(),
            description: description.into(),
            valid: true,
            rule: None,
            entry: None,
            state: Some(state.into()),
            verdict: verdict.map(Into::into),
            entries: Some(fx.entries.len() as u64),
        },
        bytes: fx.bundle(&[]).to_bytes(),
    }
}

fn invalid_edge_bundle(
    file: &str,
    description: &str,
    rule: Rule,
    entry: Option<u64>,
    bundle: &Bundle,
) -> EdgeBundle {
    EdgeBundle {
        vector: BundleVector {
            file: file.into(),
            description: description.into(),
            valid: false,
            rule: Some(rule.code().into()),
            entry,
            state: None,
            verdict: None,
            entries: None,
        },
        bytes: bundle.to_bytes(),
    }
}

/// Bundles with signer-made edge-case signatures (`spec/encoding.md`, "Signature validity"):
/// the verdict is the same in every signature-check mode.
fn edge_bundles() -> Vec<EdgeBundle> {
    let provider = provider_key();
    let mut out = Vec::new();
    // The case of issue #10: two entries whose R carries a torsion component (order 8 and 2).
    let fx = HireFixture::build_with(6, Ending::CompletedAccepted, &|slot| match slot {
        Slot::Entry(1) => Edge::TorsionR(1),
        Slot::Entry(3) => Edge::TorsionR(4),
        _ => Edge::Honest,
    });
    out.push(valid_edge_bundle(
        "valid-torsion-r-entries.souk",
        "entries 1 and 3 signed with a small-order component in R (orders 8 and 2): valid",
        &fx,
    ));
    // Every signature in the bundle a different valid edge case.
    let valid_edges: Vec<Edge> = Edge::all().into_iter().filter(|e| e.is_valid()).collect();
    let fx = HireFixture::build_with(30, Ending::CompletedAccepted, &|slot| match slot {
        Slot::Manifest => Edge::TorsionR(2),
        Slot::Request => Edge::NonCanonicalR(1),
        Slot::Proposal => Edge::SmallOrderR(5),
        Slot::Accept => Edge::TorsionR(7),
        Slot::Entry(seq) => valid_edges[seq as usize % valid_edges.len()],
        Slot::Attestation => Edge::NonCanonicalR(4),
    });
    out.push(valid_edge_bundle(
        "valid-edge-signatures.souk",
        "every signature (manifest, request, offer, acceptance, each entry, attestation) made \
         with a torsion component in R, a small-order R or a non-canonical small-order R: valid",
        &fx,
    ));
    // Invalid edge cases.
    let fx = HireFixture::build_with(6, Ending::CompletedAccepted, &|slot| match slot {
        Slot::Entry(2) => Edge::TorsionRStaleK(1),
        _ => Edge::Honest,
    });
    out.push(invalid_edge_bundle(
        "invalid-r3-torsion-r-stale-k.souk",
        "entry 2's R carries a torsion component, but k was hashed over R without it",
        Rule::R3,
        Some(2),
        &fx.bundle(&[]),
    ));
    let fx = HireFixture::build_with(6, Ending::CompletedAccepted, &|slot| match slot {
        Slot::Entry(5) => Edge::NonCanonicalRReencodedK(0),
        _ => Edge::Honest,
    });
    out.push(invalid_edge_bundle(
        "invalid-r3-non-canonical-r-reencoded-k.souk",
        "entry 5's R is a non-canonical small-order encoding and k was hashed over its re-encoding",
        Rule::R3,
        Some(5),
        &fx.bundle(&[]),
    ));
    let fx = HireFixture::build_with(6, Ending::CompletedAccepted, &|slot| match slot {
        Slot::Request => Edge::UnreducedS,
        _ => Edge::Honest,
    });
    out.push(invalid_edge_bundle(
        "invalid-c1-request-unreduced-s.souk",
        "the request's signature with S + L in place of S",
        Rule::C1,
        None,
        &fx.bundle(&[]),
    ));
    let fx = HireFixture::build_with(6, Ending::CompletedAccepted, &|slot| match slot {
        Slot::Attestation => Edge::TorsionRStaleK(3),
        _ => Edge::Honest,
    });
    out.push(invalid_edge_bundle(
        "invalid-a1-attestation-torsion-r-stale-k.souk",
        "the attestation's R carries a torsion component, k hashed over R without it",
        Rule::A1,
        None,
        &fx.bundle(&[]),
    ));
    // A mixed-order provider key, signed by its owner: the equation holds, the key rule fails.
    let fx = HireFixture::build(6, Ending::CompletedAccepted);
    let mixed = mixed_order_key(&provider, 4);
    let mut body = fx.manifest.body_bytes().to_vec();
    if let Some(pos) = find(&body, provider.id().as_bytes()) {
        body[pos..pos + 32].copy_from_slice(&mixed);
    }
    let sig = sign_with_mixed_order_key(&provider, 4, &Domain::Manifest.input(&body));
    let mut enc = Encoder::new();
    enc.array(3);
    enc.bytes(&body);
    enc.bytes(&mixed);
    enc.bytes(&sig);
    let mut bundle = fx.bundle(&[]);
    bundle.manifest = enc.into_bytes();
    out.push(invalid_edge_bundle(
        "invalid-m1-mixed-order-provider.souk",
        "the manifest's provider key has a small-order component (the provider's key plus a \
         point of order 2), signed by its owner",
        Rule::M1,
        None,
        &bundle,
    ));
    // Rule M2's number boundary inside a bundle.
    let mut m = fx.manifest.body().clone();
    m.input_schema = r#"{"type":"number","maximum":1.7976931348623159e308}"#.into();
    let mut bundle = fx.bundle(&[]);
    bundle.manifest = Signed::sign(m, &provider).to_bytes();
    out.push(invalid_edge_bundle(
        "invalid-m2-json-number-overflow.souk",
        "the input schema holds 1.7976931348623159e308, which rounds to infinity",
        Rule::M2,
        None,
        &bundle,
    ));
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Generates every vector file.
pub fn generate() -> Vec<VectorFile> {
    let mut files = Vec::new();
    let provider = provider_key();
    let client = client_key();

    // identity.json
    let ids: Vec<IdentityVector> = [0x11u8, 0x22, 0x33, 0x00, 0xff]
        .iter()
        .map(|seed| {
            let kp = Keypair::from_seed(&[*seed; 32]);
            IdentityVector {
                seed: hx(&[*seed; 32]),
                public_key: hx(kp.id().as_bytes()),
                node_id: kp.id().to_string(),
                peer_id: kp.id().peer_id_text(),
            }
        })
        .collect();
    files.push(json_file("identity.json", &ids));
    files.push(json_file("identity-invalid.json", &invalid_identities()));
    files.push(json_file("signatures-edge.json", &edge_signatures()));
    files.push(json_file("manifest-json.json", &json::vectors()));

    // signatures.json: one signed object of every type.
    let fx = HireFixture::build(4, Ending::CompletedAccepted);
    let counter_contract = contract(&fx.manifest, &provider, &client, true);
    let decline = Signed::sign(
        Decline::new(
            fx.contract.request.id(),
            provider.id(),
            DeclineReason::Capacity,
            "all 4 slots busy; retry after 10 minutes".into(),
            T0 + 1100,
        ),
        &provider,
    );
    let mut sigs = vec![
        signature_vector("manifest", 0x11, &fx.manifest),
        signature_vector("hire-request", 0x22, &fx.contract.request),
    ];
    if let Proposal::Offer(o) = &fx.contract.proposal {
        sigs.push(signature_vector("offer", 0x11, o));
    }
    if let Proposal::Counter(c) = &counter_contract.proposal {
        sigs.push(signature_vector("counter", 0x11, c));
    }
    sigs.push(signature_vector("decline", 0x11, &decline));
    let superseded = Signed::sign(
        Decline::superseded(
            fx.contract.request.id(),
            provider.id(),
            Domain::ManifestId.hash(b"fixture: the agent's current manifest"),
            "csv-analyst changed since this id: hire the current version".into(),
            T0 + 1100,
        ),
        &provider,
    );
    sigs.push(signature_vector("decline", 0x11, &superseded));
    sigs.push(signature_vector("accept", 0x22, &fx.contract.accept));
    for e in &fx.entries {
        sigs.push(signature_vector("receipt", 0x11, e));
    }
    if let Some(a) = &fx.attestation {
        sigs.push(signature_vector("attestation", 0x22, a));
    }
    files.push(json_file("signatures.json", &sigs));

    // encoding.json: canonical and non-canonical forms of a decline body in an envelope.
    let body = decline.body_bytes().to_vec();
    let mut enc_vectors = vec![EncodingVector {
        name: "canonical decline envelope".into(),
        object: "decline",
        bytes: hx(&decline.to_bytes()),
        valid: true,
        error: None,
    }];
    let mutations: Vec<(&str, Vec<u8>)> = {
        let mut m = Vec::new();
        // Non-minimal array head: 0x86 -> 0x98 0x06.
        let mut v = vec![0x98, 0x06];
        v.extend_from_slice(&body[1..]);
        m.push(("non-minimal array head", v));
        // Non-minimal version: 0x01 -> 0x18 0x01.
        let mut v = vec![body[0], 0x18, 0x01];
        v.extend_from_slice(&body[2..]);
        m.push(("non-minimal integer", v));
        // Indefinite-length array.
        let mut v = vec![0x9f];
        v.extend_from_slice(&body[1..]);
        v.push(0xff);
        m.push(("indefinite-length array", v));
        // Unknown version 2.
        let mut v = body.clone();
        v[1] = 0x02;
        m.push(("unknown version", v));
        // Trailing byte.
        let mut v = body.clone();
        v.push(0x00);
        m.push(("trailing byte", v));
        // Wrong arity: drop the last element, array of 5.
        let mut v = encoding::encode(decline.body());
        v[0] = 0x85;
        let cut = v.len() - 9; // created_at is a 9-byte uint (0x1b + 8)
        v.truncate(cut);
        m.push(("wrong arity", v));
        // A map instead of an array.
        let mut v = vec![0xa3];
        v.extend_from_slice(&body[1..]);
        m.push(("map instead of array", v));
        // Unknown decline reason code 9.
        let mut v = body.clone();
        if let Some(pos) = find(&v, &[0x01, 0x78]) {
            v[pos] = 0x09;
        }
        m.push(("unknown reason code", v));
        m
    };
    enc_vectors.push(EncodingVector {
        name: "canonical superseded decline envelope (7 items)".into(),
        object: "decline",
        bytes: hx(&superseded.to_bytes()),
        valid: true,
        error: None,
    });
    let mutations: Vec<(&str, Vec<u8>)> = {
        let mut m = mutations;
        let sup = superseded.body_bytes().to_vec();
        // Superseded without `current`: 6 items.
        let mut v = sup.clone();
        v[0] = 0x86;
        v.truncate(v.len() - 34);
        m.push(("superseded without current", v));
        // Another reason with a 7th item.
        let mut v = body.clone();
        v[0] = 0x87;
        v.push(0x58);
        v.push(0x20);
        v.extend_from_slice(&[0xab; 32]);
        m.push(("current with another reason", v));
        m
    };
    for (name, bad_body) in mutations {
        let env = raw_envelope(Domain::Decline, &bad_body, &provider);
        let error = Signed::<Decline>::decode_bytes(&env)
            .err()
            .map(|e| match e {
                crate::signed::SignedError::Decode { source, .. } => source.kind.to_string(),
                other => other.to_string(),
            });
        enc_vectors.push(EncodingVector {
            name: name.into(),
            object: "decline",
            bytes: hx(&env),
            valid: error.is_none(),
            error,
        });
    }
    // Nesting depth (`spec/encoding.md`, decoding rule 6), checked on a generic item: no
    // version-1 object nests deep enough to reach the limit.
    let nest = |levels: usize| {
        let mut bytes = vec![0x81; levels];
        bytes.push(0x00);
        bytes
    };
    // The verdicts are stated from the rule; the error is the reference's (informative).
    for (name, bytes, valid) in [
        (
            "16 nested arrays: the top-level array is level 1",
            nest(encoding::MAX_DEPTH),
            true,
        ),
        (
            "17 nested arrays: level 17 is rejected at its head",
            nest(encoding::MAX_DEPTH + 1),
            false,
        ),
        ("a top-level integer is at level 0", vec![0x00], true),
    ] {
        let error = encoding::check_item(&bytes, usize::MAX)
            .err()
            .map(|e| e.kind.to_string());
        enc_vectors.push(EncodingVector {
            name: name.into(),
            object: "item",
            bytes: hx(&bytes),
            valid,
            error,
        });
    }
    files.push(json_file("encoding.json", &enc_vectors));

    // commitment.json
    let commitments: Vec<CommitmentVector> = [
        ("empty", b"".to_vec()),
        ("decision", b"use the stats tool".to_vec()),
    ]
    .into_iter()
    .map(|(label, payload)| CommitmentVector {
        salt: hx(&salt(label)),
        commitment: commit(&salt(label), &payload).to_hex(),
        payload: hx(&payload),
    })
    .collect();
    files.push(json_file("commitment.json", &commitments));

    // contract.json
    let contracts = vec![
        ContractVector {
            name: "offer accepted",
            contract: hx(&fx.contract.to_bytes()),
            hire_id: fx.contract.hire_id().to_hex(),
            manifest: hx(&fx.manifest.to_bytes()),
        },
        ContractVector {
            name: "counter accepted",
            contract: hx(&counter_contract.to_bytes()),
            hire_id: counter_contract.hire_id().to_hex(),
            manifest: hx(&fx.manifest.to_bytes()),
        },
    ];
    files.push(json_file("contract.json", &contracts));

    // equivocation.json
    let hire_id = fx.contract.hire_id();
    let fork = sign_entry(
        &provider,
        hire_id,
        Some(&fx.entries[0]),
        T0 + 2300,
        EntryKind::ToolCall {
            tool: "other".into(),
        },
        None,
    );
    let mut eq = Vec::new();
    if let Some(p) = EquivocationProof::new(fx.entries[1].clone(), fork.clone()) {
        eq.push(EquivocationVector {
            name: "two different entries at seq 1",
            proof: hx(&p.to_bytes()),
            valid: true,
            rule: None,
            seq: Some(1),
        });
        // Unordered: swap a and b in the bytes.
        let (a, b) = p.entries();
        let mut enc = Encoder::new();
        enc.array(3);
        enc.u64(1);
        enc.bytes(&b.to_bytes());
        enc.bytes(&a.to_bytes());
        eq.push(EquivocationVector {
            name: "entries not ordered by id",
            proof: hx(&enc.into_bytes()),
            valid: false,
            rule: Some(Rule::E3.code().into()),
            seq: None,
        });
    }
    {
        // Same seq, different hire: not an equivocation.
        let other_hire = sign_entry(
            &provider,
            Hash::digest(b"another hire"),
            Some(&fx.entries[0]),
            T0 + 2300,
            EntryKind::Decision,
            None,
        );
        let (a, b) = if fx.entries[1].id() < other_hire.id() {
            (&fx.entries[1], &other_hire)
        } else {
            (&other_hire, &fx.entries[1])
        };
        let mut enc = Encoder::new();
        enc.array(3);
        enc.u64(1);
        enc.bytes(&a.to_bytes());
        enc.bytes(&b.to_bytes());
        eq.push(EquivocationVector {
            name: "entries of different hires",
            proof: hx(&enc.into_bytes()),
            valid: false,
            rule: Some(Rule::E2.code().into()),
            seq: None,
        });
        // One entry signed by another key.
        let forged = resign(&fork, &mallory_key());
        let (a, b) = if fx.entries[1].id() < forged.id() {
            (&fx.entries[1], &forged)
        } else {
            (&forged, &fx.entries[1])
        };
        let mut enc = Encoder::new();
        enc.array(3);
        enc.u64(1);
        enc.bytes(&a.to_bytes());
        enc.bytes(&b.to_bytes());
        eq.push(EquivocationVector {
            name: "entries signed by different keys",
            proof: hx(&enc.into_bytes()),
            valid: false,
            rule: Some(Rule::E1.code().into()),
            seq: None,
        });
    }
    files.push(json_file("equivocation.json", &eq));

    // bundles/
    let mut index = Vec::new();
    let valid = [
        (
            "valid-completed-accepted.souk",
            "completed hire, accepted by the client, two payloads disclosed",
            HireFixture::build(6, Ending::CompletedAccepted),
            vec![1u64, 2],
        ),
        (
            "valid-failed-disputed.souk",
            "agent crashed; the client disputes",
            HireFixture::build(3, Ending::FailedDisputed),
            vec![],
        ),
        (
            "valid-in-progress.souk",
            "a running hire exported mid-way: no terminal entry, no attestation",
            HireFixture::build(5, Ending::InProgress),
            vec![],
        ),
    ];
    for (file, description, fixture, disclose) in valid {
        let bundle = fixture.bundle(&disclose);
        let report = verify_bundle(&bundle, SignatureCheck::OneByOne).ok();
        index.push(BundleVector {
            file: file.into(),
            description: description.into(),
            valid: report.is_some(),
            rule: None,
            entry: None,
            state: report.as_ref().map(|r| r.state.as_str().into()),
            verdict: report
                .as_ref()
                .and_then(|r| r.verdict.map(|v| v.as_str().into())),
            entries: report.as_ref().map(|r| r.entries),
        });
        files.push(VectorFile {
            path: format!("bundles/{file}"),
            contents: bundle.to_bytes(),
        });
    }
    {
        // The request names a manifest id; a later announcement of the same terms (new seq,
        // new validity window) has the same id, so it verifies the hire as well.
        let fx = HireFixture::build(2, Ending::CompletedAccepted);
        let mut m = fx.manifest.body().clone();
        m.seq += 1;
        m.issued_at += 6 * 3600 * 1000;
        m.expires_at += 6 * 3600 * 1000;
        let mut bundle = fx.bundle(&[]);
        bundle.manifest = Signed::sign(m, &provider).to_bytes();
        let file = "valid-reannounced-manifest.souk";
        let report = verify_bundle(&bundle, SignatureCheck::OneByOne).ok();
        index.push(BundleVector {
            file: file.into(),
            description: "the bundle carries a later announcement (seq 4) of the manifest the \
                          request names: same terms, same manifest id"
                .into(),
            valid: report.is_some(),
            rule: None,
            entry: None,
            state: report.as_ref().map(|r| r.state.as_str().into()),
            verdict: report
                .as_ref()
                .and_then(|r| r.verdict.map(|v| v.as_str().into())),
            entries: report.as_ref().map(|r| r.entries),
        });
        files.push(VectorFile {
            path: format!("bundles/{file}"),
            contents: bundle.to_bytes(),
        });
    }
    for case in edge_bundles() {
        files.push(VectorFile {
            path: format!("bundles/{}", case.vector.file),
            contents: case.bytes,
        });
        index.push(case.vector);
    }
    // B1: a valid bundle cut short and one with a wrong magic.
    let good = HireFixture::build(6, Ending::CompletedAccepted)
        .bundle(&[1, 2])
        .to_bytes();
    let mut raw_cases: Vec<(&str, &str, Vec<u8>)> = vec![(
        "invalid-b1-truncated.souk",
        "a valid bundle missing its last byte",
        good[..good.len() - 1].to_vec(),
    )];
    let mut magic = good.clone();
    if let Some(pos) = find(&magic, b"souk-bundle") {
        magic[pos] = b'S';
    }
    raw_cases.push(("invalid-b1-magic.souk", "wrong magic text", magic));
    for case in invalid_bundle_cases() {
        raw_cases.push((case.file, case.description, case.bundle.to_bytes()));
    }
    for (file, description, bytes) in raw_cases {
        let outcome = crate::verify::verify_bundle_bytes(&bytes, SignatureCheck::OneByOne);
        let (rule, entry) = match &outcome {
            Err(v) => (Some(v.rule.code().to_string()), v.entry),
            Ok(_) => (None, None),
        };
        index.push(BundleVector {
            file: file.into(),
            description: description.into(),
            valid: outcome.is_ok(),
            rule,
            entry,
            state: None,
            verdict: None,
            entries: None,
        });
        files.push(VectorFile {
            path: format!("bundles/{file}"),
            contents: bytes,
        });
    }
    credentials::generate(&mut files, &mut index);
    files.push(json_file("bundles/index.json", &index));
    outcomes::generate(&mut files);
    files
}
