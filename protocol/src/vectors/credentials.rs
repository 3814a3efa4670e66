//! Credential fixtures and the generator of `spec/vectors/credentials.json` and of the
//! credential bundles (`bundles/*-network-*`, `bundles/invalid-r10-*`).
//!
//! Deterministic like the rest of [`crate::vectors`]: fixed keys, seeds and times. The
//! canary secret below is public test data.

use serde::Serialize;

use super::{
    BundleVector, T0, VectorFile, client_key, contract, hx, json_file, mallory_key, provider_key,
    sign_entry, signature_vector, usage_of,
};
use crate::bundle::Bundle;
use crate::credential::{
    self, CredentialGrant, CredentialMode, CredentialPolicy, Denial, DenialCode, Header,
    OfflineBehaviour, RelayRecord, RelayReply, RelayRequest, SignedGrant, SignedRelayRecord,
};
use crate::encoding;
use crate::hash::Hash;
use crate::hire::Verdict;
use crate::hiring::HireCall;
use crate::identity::Keypair;
use crate::manifest::{CredentialSlot, Injection, Manifest};
use crate::negotiation::Contract;
use crate::receipt::{Attestation, CallMode, EntryKind, NetworkCall, SignedEntry, Usage};
use crate::signed::Signed;
use crate::verify::{SignatureCheck, verify_bundle};

/// The provider's fixed X25519 sealing secret (its `sealing.key`).
pub const SEALING_SECRET: [u8; 32] = [0x44; 32];
/// Another node's sealing secret (wrong-key vectors).
pub const OTHER_SEALING_SECRET: [u8; 32] = [0x55; 32];
/// The client's secret for slot `crm` (a canary: public test data).
pub const CRM_SECRET: &[u8] = b"sk-canary-7f3a9c21";
/// The fixed HPKE ephemeral seed (`ikmE`) of the sealed grant.
pub const EPHEMERAL_SEED: [u8; 32] = [0x66; 32];
/// The "now" at which the provider checks the grants of the `accept` call.
pub const ACCEPT_NOW: u64 = T0 + 1500;

/// The credential fixture manifest: a CRM sync agent with a sealed-friendly `crm` slot
/// (bearer header) and a `mail` slot (basic auth), and a real X25519 sealing key.
pub fn credential_manifest_body(provider: &Keypair) -> Manifest {
    let mut m = super::manifest_body(provider);
    m.name = "crm-sync".into();
    m.capabilities = vec!["crm".into(), "email".into()];
    m.description = "Syncs contacts from a CRM and mails a report.".into();
    m.tools = vec![];
    m.hosts = vec!["api.example.com".into(), "files.example.com".into()];
    m.credentials = vec![
        CredentialSlot {
            name: "crm".into(),
            hosts: vec!["api.example.com".into(), "eu.api.example.com".into()],
            injection: Injection::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into(),
            },
        },
        CredentialSlot {
            name: "mail".into(),
            hosts: vec!["mail.example.com".into()],
            injection: Injection::Basic,
        },
    ];
    m.runtime_digest = Hash::digest(b"crm-sync runtime package v1");
    m.sealing_key = credential::sealing_public_key(&SEALING_SECRET);
    m
}

/// A hire of the credential manifest with a sealed `crm` grant and a relayed `mail` grant.
#[derive(Debug, Clone)]
pub struct CredentialFixture {
    /// The signed manifest.
    pub manifest: Signed<Manifest>,
    /// The contract.
    pub contract: Contract,
    /// The sealed-mode policy for `crm`.
    pub crm: CredentialPolicy,
    /// The relayed-mode policy for `mail`.
    pub mail: CredentialPolicy,
    /// The client-signed sealed grant for `crm`.
    pub sealed_grant: SignedGrant,
    /// The client-signed relayed grant for `mail`.
    pub relayed_grant: SignedGrant,
    /// The relayed call.
    pub relay_request: RelayRequest,
    /// The upstream's (scrubbed) response body to it.
    pub relay_response_body: Vec<u8>,
    /// The client's signed record of it.
    pub relay_record: SignedRelayRecord,
}

fn empty() -> Hash {
    Hash::digest(b"")
}

impl CredentialFixture {
    /// Builds the fixture.
    pub fn build() -> Self {
        let provider = provider_key();
        let client = client_key();
        let manifest = Signed::sign(credential_manifest_body(&provider), &provider);
        let contract = contract(&manifest, &provider, &client, false);
        let hire_id = contract.hire_id();
        let crm = CredentialPolicy {
            hire_id,
            slot: "crm".into(),
            hosts: vec!["api.example.com".into()],
            methods: vec!["GET".into()],
            path_prefixes: vec!["/v1/contacts".into()],
            injection: Injection::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into(),
            },
            expires_at: T0 + 3600 * 1000,
            max_requests: 50,
            mode: CredentialMode::Sealed,
        };
        let mail = CredentialPolicy {
            hire_id,
            slot: "mail".into(),
            hosts: vec!["mail.example.com".into()],
            methods: vec!["POST".into()],
            path_prefixes: vec!["/v1/send".into()],
            injection: Injection::Basic,
            expires_at: T0 + 3600 * 1000,
            max_requests: 5,
            mode: CredentialMode::Relayed {
                offline: OfflineBehaviour::Wait { max_ms: 30_000 },
            },
        };
        let sealed = credential::seal(
            &manifest.body().sealing_key,
            crm.clone(),
            CRM_SECRET,
            &EPHEMERAL_SEED,
        )
        .unwrap_or_else(|e| unreachable!("fixture seal: {e}"));
        let relayed = CredentialGrant::relayed(mail.clone())
            .unwrap_or_else(|e| unreachable!("fixture relayed grant: {e}"));
        let relay_request = RelayRequest {
            hire_id,
            slot: "mail".into(),
            request_id: [0x5a; 16],
            method: "POST".into(),
            host: "mail.example.com".into(),
            target: "/v1/send?draft=false".into(),
            headers: vec![Header {
                name: "content-type".into(),
                value: b"application/json".to_vec(),
            }],
            body: br#"{"to":"ada@example.com","subject":"weekly report"}"#.to_vec(),
        };
        let relay_response_body = br#"{"id":"m-1"}"#.to_vec();
        let relay_record = Signed::sign(
            RelayRecord::for_exchange(&relay_request, 202, &relay_response_body, T0 + 2600, 140),
            &client,
        );
        CredentialFixture {
            manifest,
            contract,
            crm,
            mail,
            sealed_grant: Signed::sign(sealed, &client),
            relayed_grant: Signed::sign(relayed, &client),
            relay_request,
            relay_response_body,
            relay_record,
        }
    }

    /// A `GET /v1/contacts` the proxy made with the sealed `crm` credential.
    pub fn sealed_call(&self) -> NetworkCall {
        let body = br#"{"contacts":[{"name":"Ada"}]}"#;
        NetworkCall {
            host: "api.example.com".into(),
            method: "GET".into(),
            path: "/v1/contacts".into(),
            status: 200,
            request_bytes: 0,
            response_bytes: body.len() as u64,
            request_hash: empty(),
            response_hash: Hash::digest(body),
            duration_ms: 95,
            slot: Some("crm".into()),
            mode: CallMode::Sealed,
            denial: None,
            relay_record: None,
        }
    }

    /// The relayed `mail` call, carrying the client's record.
    pub fn relayed_call(&self) -> NetworkCall {
        let r = self.relay_record.body();
        NetworkCall {
            host: r.host.clone(),
            method: r.method.clone(),
            path: r.path.clone(),
            status: r.status,
            request_bytes: r.request_bytes,
            response_bytes: r.response_bytes,
            request_hash: r.request_hash,
            response_hash: r.response_hash,
            duration_ms: 180,
            slot: Some("mail".into()),
            mode: CallMode::Relayed,
            denial: None,
            relay_record: Some(self.relay_record.to_bytes()),
        }
    }

    /// A call to an unlisted host, refused by the proxy.
    pub fn blocked_call(&self) -> NetworkCall {
        NetworkCall {
            host: "evil.example".into(),
            method: "POST".into(),
            path: "/collect".into(),
            status: 0,
            request_bytes: 0,
            response_bytes: 0,
            request_hash: empty(),
            response_hash: empty(),
            duration_ms: 0,
            slot: None,
            mode: CallMode::None,
            denial: Some(DenialCode::BlockedByPolicy),
            relay_record: None,
        }
    }

    /// A `crm` call refused because the path is outside the policy.
    pub fn path_denied_call(&self) -> NetworkCall {
        NetworkCall {
            host: "api.example.com".into(),
            method: "GET".into(),
            path: "/v1/admin/users".into(),
            status: 0,
            request_bytes: 0,
            response_bytes: 0,
            request_hash: empty(),
            response_hash: empty(),
            duration_ms: 1,
            slot: Some("crm".into()),
            mode: CallMode::Sealed,
            denial: Some(DenialCode::PathNotAllowed),
            relay_record: None,
        }
    }

    /// A plain call (no credential) to a listed host.
    pub fn plain_call(&self) -> NetworkCall {
        let body = b"region,sales\nnorth,10\n";
        NetworkCall {
            host: "files.example.com".into(),
            method: "GET".into(),
            path: "/public/report.csv".into(),
            status: 200,
            request_bytes: 0,
            response_bytes: body.len() as u64,
            request_hash: empty(),
            response_hash: Hash::digest(body),
            duration_ms: 40,
            slot: None,
            mode: CallMode::None,
            denial: None,
            relay_record: None,
        }
    }

    /// `started`, one entry per call, and (if `complete`) `completed` with the client's
    /// accepting attestation.
    pub fn chain(
        &self,
        calls: Vec<NetworkCall>,
        complete: bool,
    ) -> (Vec<SignedEntry>, Option<Signed<Attestation>>) {
        let provider = provider_key();
        let hire_id = self.contract.hire_id();
        let mut kinds = vec![EntryKind::Started {
            runtime_digest: self.manifest.body().runtime_digest,
        }];
        kinds.extend(calls.into_iter().map(EntryKind::NetworkCall));
        if complete {
            kinds.push(EntryKind::Completed {
                output_hash: Hash::digest(b"{\"synced\":1,\"mailed\":true}"),
                usage: Usage::default(),
            });
        }
        let mut entries: Vec<SignedEntry> = Vec::with_capacity(kinds.len());
        for (i, mut kind) in kinds.into_iter().enumerate() {
            let time = T0 + 2000 + 300 * i as u64;
            if kind.is_terminal() {
                kind.set_usage(usage_of(&self.contract.terms().price, &entries, time));
            }
            let e = sign_entry(&provider, hire_id, entries.last(), time, kind, None);
            entries.push(e);
        }
        let attestation = complete.then(|| entries.last()).flatten().map(|head| {
            Signed::sign(
                Attestation {
                    hire_id,
                    head_seq: head.body().seq,
                    head_id: head.id(),
                    verdict: Verdict::Accepted,
                    reason: String::new(),
                    created_at: head.body().time + 1000,
                },
                &client_key(),
            )
        });
        (entries, attestation)
    }

    /// The bundle of a chain.
    pub fn bundle(&self, calls: Vec<NetworkCall>, complete: bool) -> Bundle {
        let (entries, attestation) = self.chain(calls, complete);
        Bundle {
            manifest: self.manifest.to_bytes(),
            contract: self.contract.to_bytes(),
            entries: entries.iter().map(|e| e.to_bytes()).collect(),
            attestation: attestation.map(|a| a.to_bytes()),
            disclosures: vec![],
        }
    }

    /// The valid bundle's calls: sealed, relayed, two denials, plain.
    pub fn valid_calls(&self) -> Vec<NetworkCall> {
        vec![
            self.sealed_call(),
            self.relayed_call(),
            self.blocked_call(),
            self.path_denied_call(),
            self.plain_call(),
        ]
    }
}

// ---- JSON shapes -----------------------------------------------------------------------------

#[derive(Serialize)]
struct Suite {
    mode: &'static str,
    kem: &'static str,
    kem_id: u16,
    kdf: &'static str,
    kdf_id: u16,
    aead: &'static str,
    aead_id: u16,
    info: String,
}

#[derive(Serialize)]
struct Keys {
    client_seed: String,
    provider_seed: String,
    sealing_secret: String,
    sealing_public: String,
    other_sealing_secret: String,
}

#[derive(Serialize)]
struct PolicyVector {
    name: String,
    policy: String,
    valid: bool,
    policy_hash: Option<String>,
    error: Option<String>,
}

#[derive(Serialize)]
struct PolicyCheckVector {
    name: &'static str,
    slot: String,
    policy: String,
    error: Option<&'static str>,
}

#[derive(Serialize)]
struct SealVector {
    recipient_public: String,
    hire_id: String,
    slot: String,
    policy: String,
    policy_hash: String,
    secret: String,
    ephemeral_seed: String,
    aad: String,
    enc: String,
    ciphertext: String,
    grant_body: String,
    grant_envelope: String,
    grant_id: String,
}

#[derive(Serialize)]
struct OpenVector {
    name: &'static str,
    grant_envelope: String,
    recipient_secret: String,
    expected_hire: String,
    expected_slot: String,
    result: &'static str,
    secret: Option<String>,
}

#[derive(Serialize)]
struct AcceptCheckVector {
    name: &'static str,
    grants: Vec<String>,
    result: &'static str,
}

#[derive(Serialize)]
struct PathVector {
    input: &'static str,
    normalized: Option<String>,
    error: Option<&'static str>,
}

#[derive(Serialize)]
struct RequestVector {
    method: &'static str,
    host: &'static str,
    path: &'static str,
    now: u64,
    used: u64,
    result: &'static str,
}

#[derive(Serialize)]
struct DenialVector {
    error: &'static str,
    code: u64,
    http_status: u16,
    retry: bool,
    json: String,
}

#[derive(Serialize)]
struct RelayVectors {
    request: String,
    response: String,
    denied: String,
    response_status: u16,
    response_body: String,
    record: super::SignatureVector,
}

#[derive(Serialize)]
struct EntryVector {
    name: &'static str,
    mode: &'static str,
    denial: Option<&'static str>,
    body: String,
    envelope: String,
    id: String,
}

#[derive(Serialize)]
struct AcceptCallVector {
    name: &'static str,
    call: String,
    credentials: usize,
}

#[derive(Serialize)]
struct CredentialVectors {
    suite: Suite,
    keys: Keys,
    contract: String,
    manifest: String,
    hire_id: String,
    accept_now: u64,
    policies: Vec<PolicyVector>,
    policy_checks: Vec<PolicyCheckVector>,
    seal: SealVector,
    open: Vec<OpenVector>,
    accept_checks: Vec<AcceptCheckVector>,
    accept_calls: Vec<AcceptCallVector>,
    paths: Vec<PathVector>,
    requests: Vec<RequestVector>,
    denials: Vec<DenialVector>,
    relay: RelayVectors,
    entries: Vec<EntryVector>,
}

fn policy_vectors(fx: &CredentialFixture) -> Vec<PolicyVector> {
    let mut out: Vec<PolicyVector> = [("crm (sealed)", &fx.crm), ("mail (relayed)", &fx.mail)]
        .into_iter()
        .map(|(name, p)| PolicyVector {
            name: name.into(),
            policy: hx(&p.to_bytes()),
            valid: true,
            policy_hash: Some(p.policy_hash().to_hex()),
            error: None,
        })
        .collect();
    // Encoding mutations of the crm policy (valid encodings of their fields otherwise).
    let good = fx.crm.to_bytes();
    let mut mutations: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut v = good.clone();
    v[1] = 0x02;
    mutations.push(("unknown version", v));
    let mut v = good.clone();
    // The mode is the last item: [0] = 0x81 0x00. Make it [2].
    let n = v.len();
    v[n - 1] = 0x02;
    mutations.push(("unknown mode code", v));
    let mut v = good.clone();
    v[n - 2] = 0x82;
    v.push(0x00);
    mutations.push(("sealed mode with an extra element", v));
    let mut v = vec![0x98, 0x0a];
    v.extend_from_slice(&good[1..]);
    mutations.push(("non-minimal array head", v));
    let mut v = good.clone();
    v.push(0x00);
    mutations.push(("trailing byte", v));
    let mut p = fx.crm.clone();
    p.methods = (0..17)
        .map(|i| format!("M{}", char::from(b'A' + i)))
        .collect();
    mutations.push(("17 methods (limit 16)", p.to_bytes()));
    for (name, bytes) in mutations {
        let got = CredentialPolicy::decode_bytes(&bytes);
        out.push(PolicyVector {
            name: name.into(),
            policy: hx(&bytes),
            valid: got.is_ok(),
            policy_hash: None,
            error: got.err().map(|e| e.kind.to_string()),
        });
    }
    out
}

/// A named change to a policy.
type Mutation = Box<dyn Fn(&mut CredentialPolicy)>;

fn policy_check_vectors(fx: &CredentialFixture) -> Vec<PolicyCheckVector> {
    let slot = &fx.manifest.body().credentials[0];
    let cases: Vec<(&'static str, Mutation)> = vec![
        ("the fixture's crm policy", Box::new(|_| {})),
        (
            "both slot hosts, any method and path",
            Box::new(|p| {
                p.hosts = vec!["api.example.com".into(), "eu.api.example.com".into()];
                p.methods.clear();
                p.path_prefixes.clear();
            }),
        ),
        (
            "a host the slot does not list",
            Box::new(|p| p.hosts = vec!["api.example.org".into()]),
        ),
        (
            "hosts not sorted",
            Box::new(|p| p.hosts = vec!["eu.api.example.com".into(), "api.example.com".into()]),
        ),
        ("no host", Box::new(|p| p.hosts.clear())),
        (
            "another injection than the slot's",
            Box::new(|p| p.injection = Injection::Basic),
        ),
        (
            "lowercase method",
            Box::new(|p| p.methods = vec!["get".into()]),
        ),
        (
            "path prefix with a dot segment",
            Box::new(|p| p.path_prefixes = vec!["/v1/../admin".into()]),
        ),
        (
            "path prefix not normalised (%7e)",
            Box::new(|p| p.path_prefixes = vec!["/%7euser".into()]),
        ),
        ("zero budget", Box::new(|p| p.max_requests = 0)),
        (
            "offline wait above 5 minutes",
            Box::new(|p| {
                p.mode = CredentialMode::Relayed {
                    offline: OfflineBehaviour::Wait { max_ms: 300_001 },
                }
            }),
        ),
        (
            "policy for another slot",
            Box::new(|p| p.slot = "mail".into()),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, f)| {
            let mut p = fx.crm.clone();
            f(&mut p);
            PolicyCheckVector {
                name,
                slot: hx(&encoding::encode(slot)),
                policy: hx(&p.to_bytes()),
                error: p.validate_for(slot).err().map(|e| e.code()),
            }
        })
        .collect()
}

/// Name, grant envelope, recipient secret, expected hire and slot.
type OpenCase = (&'static str, Vec<u8>, [u8; 32], Hash, &'static str);

fn open_vectors(fx: &CredentialFixture) -> Vec<OpenVector> {
    let client = client_key();
    let hire = fx.contract.hire_id();
    let other_hire = Hash::digest(b"another hire");
    let sealed = fx.sealed_grant.body().clone();
    let resigned = |g: CredentialGrant| Signed::sign(g, &client).to_bytes();
    let mut cases: Vec<OpenCase> = vec![(
        "the sealed grant opens",
        fx.sealed_grant.to_bytes(),
        SEALING_SECRET,
        hire,
        "crm",
    )];
    let mut g = sealed.clone();
    if let Some(s) = g.sealed.as_mut() {
        s.ciphertext[3] ^= 0x01;
    }
    cases.push((
        "ciphertext bit flipped",
        resigned(g),
        SEALING_SECRET,
        hire,
        "crm",
    ));
    let mut g = sealed.clone();
    if let Some(s) = g.sealed.as_mut() {
        s.enc[0] ^= 0x01;
    }
    cases.push((
        "encapsulated key bit flipped",
        resigned(g),
        SEALING_SECRET,
        hire,
        "crm",
    ));
    cases.push((
        "opened with another node's sealing secret",
        fx.sealed_grant.to_bytes(),
        OTHER_SEALING_SECRET,
        hire,
        "crm",
    ));
    cases.push((
        "replayed into another hire",
        fx.sealed_grant.to_bytes(),
        SEALING_SECRET,
        other_hire,
        "crm",
    ));
    cases.push((
        "opened for another slot",
        fx.sealed_grant.to_bytes(),
        SEALING_SECRET,
        hire,
        "mail",
    ));
    let mut g = sealed.clone();
    g.policy.max_requests = 1000;
    cases.push((
        "sealed secret moved under a wider policy (re-signed by the client)",
        resigned(g.clone()),
        SEALING_SECRET,
        hire,
        "crm",
    ));
    if let Some(s) = g.sealed.as_mut() {
        s.policy_hash = g.policy.policy_hash();
    }
    cases.push((
        "... and the recorded policy hash rewritten to match",
        resigned(g),
        SEALING_SECRET,
        hire,
        "crm",
    ));
    let mut g = sealed.clone();
    g.policy.hire_id = other_hire;
    cases.push((
        "sealed secret moved into a grant for another hire, opened for that hire",
        resigned(g),
        SEALING_SECRET,
        other_hire,
        "crm",
    ));
    cases.push((
        "a relayed grant has nothing to open",
        fx.relayed_grant.to_bytes(),
        SEALING_SECRET,
        hire,
        "mail",
    ));
    cases
        .into_iter()
        .map(|(name, env, sk, expected_hire, expected_slot)| {
            let got = SignedGrant::decode_bytes(&env)
                .map_err(|_| "decode")
                .and_then(|g| {
                    credential::open(g.body(), &sk, &expected_hire, expected_slot)
                        .map_err(|e| e.code())
                });
            OpenVector {
                name,
                grant_envelope: hx(&env),
                recipient_secret: hx(&sk),
                expected_hire: expected_hire.to_hex(),
                expected_slot: expected_slot.into(),
                result: got.as_ref().err().copied().unwrap_or("ok"),
                secret: got.ok().map(|s| hx(&s)),
            }
        })
        .collect()
}

fn accept_check_vectors(fx: &CredentialFixture) -> Vec<AcceptCheckVector> {
    let client = client_key();
    let sealed = fx.sealed_grant.body().clone();
    let sign = |g: CredentialGrant| Signed::sign(g, &client).to_bytes();
    let both = vec![fx.sealed_grant.to_bytes(), fx.relayed_grant.to_bytes()];
    let mut cases: Vec<(&'static str, Vec<Vec<u8>>)> = vec![
        ("no grants", vec![]),
        ("the sealed and the relayed grant", both.clone()),
        (
            "a grant signed by a third party",
            vec![Signed::sign(sealed.clone(), &mallory_key()).to_bytes()],
        ),
    ];
    let mut g = sealed.clone();
    g.policy.hire_id = Hash::digest(b"another hire");
    cases.push(("a grant for another hire", vec![sign(g)]));
    let relayed = fx.relayed_grant.body().clone();
    let mut g = relayed.clone();
    g.policy.slot = "billing".into();
    cases.push(("a grant for a slot the manifest lacks", vec![sign(g)]));
    let mut g = relayed.clone();
    g.policy.hosts = vec!["smtp.example.com".into()];
    cases.push(("a host outside the slot", vec![sign(g)]));
    let mut g = sealed.clone();
    g.sealed = None;
    cases.push(("sealed mode without a sealed secret", vec![sign(g)]));
    let other_pub = credential::sealing_public_key(&OTHER_SEALING_SECRET);
    let g = credential::seal(&other_pub, fx.crm.clone(), CRM_SECRET, &EPHEMERAL_SEED)
        .unwrap_or_else(|e| unreachable!("{e}"));
    cases.push(("sealed to another node's key", vec![sign(g)]));
    let mut g = sealed.clone();
    g.policy.max_requests = 1000;
    cases.push(("a sealed secret from a narrower policy", vec![sign(g)]));
    let mut g = relayed.clone();
    g.policy.expires_at = ACCEPT_NOW;
    cases.push(("expired at accept", vec![sign(g)]));
    cases.push((
        "two grants for one slot",
        vec![fx.relayed_grant.to_bytes(), fx.relayed_grant.to_bytes()],
    ));
    cases
        .into_iter()
        .map(|(name, grants)| {
            let result =
                credential::check_grants(&grants, &fx.contract, fx.manifest.body(), ACCEPT_NOW)
                    .err()
                    .map_or("ok", |e| e.code());
            AcceptCheckVector {
                name,
                grants: grants.iter().map(|g| hx(g)).collect(),
                result,
            }
        })
        .collect()
}

fn path_vectors() -> Vec<PathVector> {
    [
        "/",
        "/v1/contacts",
        "/v1/%63ontacts/7",
        "/v1/%7Euser/%2c",
        "/a%20b",
        "/x:y@z;p=1,2",
        "//double//slash",
        "v1/contacts",
        "/v1/contacts?limit=5",
        "/v1/%2",
        "/v1/%zz",
        "/v1/contacts%2F..%2Fadmin",
        "/v1/a%5Cb",
        "/v1/%00",
        "/v1/a b",
        "/v1/a\\b",
        "/v1/contacts/../admin",
        "/v1/%2e%2E/admin",
        "/v1/.",
        "/v1/contacts/..;/admin",
        "/v1/.;x/admin",
        "/v1/contacts;v=1/7",
    ]
    .into_iter()
    .map(|input| {
        let got = credential::normalize_path(input);
        PathVector {
            input,
            normalized: got.as_ref().ok().cloned(),
            error: got.err().map(|e| e.code()),
        }
    })
    .collect()
}

fn request_vectors(fx: &CredentialFixture) -> Vec<RequestVector> {
    let p = &fx.crm;
    let exp = p.expires_at;
    let h = "api.example.com";
    [
        ("GET", h, "/v1/contacts", T0, 0),
        ("GET", h, "/v1/contacts/42", T0, 49),
        ("GET", h, "/v1/%63ontacts", T0, 0),
        ("GET", "eu.api.example.com", "/v1/contacts", T0, 0),
        ("GET", "api.example.com:8443", "/v1/contacts", T0, 0),
        ("POST", h, "/v1/contacts", T0, 0),
        ("GET", h, "/v1/contactsx", T0, 0),
        ("GET", h, "/v1/contacts/../admin", T0, 0),
        ("GET", h, "/v1/contacts%2F..%2Fadmin", T0, 0),
        ("GET", h, "/v1/contacts", exp, 0),
        ("GET", h, "/v1/contacts", exp - 1, 50),
    ]
    .into_iter()
    .map(|(method, host, path, now, used)| RequestVector {
        method,
        host,
        path,
        now,
        used,
        result: p
            .check_request(method, host, path, now, used)
            .err()
            .map_or("ok", |d| d.as_str()),
    })
    .collect()
}

fn denial_vectors() -> Vec<DenialVector> {
    DenialCode::ALL
        .iter()
        .map(|(code, n, name)| {
            let d = Denial::new(
                *code,
                "api.example.com",
                format!("denied: {}", name.replace('_', " ")),
            );
            DenialVector {
                error: name,
                code: *n,
                http_status: code.http_status(),
                retry: code.retry(),
                json: String::from_utf8(d.to_json()).unwrap_or_default(),
            }
        })
        .collect()
}

fn entry_vectors(fx: &CredentialFixture) -> Vec<EntryVector> {
    let (entries, _) = fx.chain(fx.valid_calls(), false);
    let names = [
        "sealed call",
        "relayed call with the client's record",
        "blocked_by_policy denial",
        "path_not_allowed denial on a sealed slot",
        "plain call",
    ];
    entries
        .iter()
        .skip(1)
        .zip(names)
        .filter_map(|(e, name)| match &e.body().kind {
            EntryKind::NetworkCall(c) => Some(EntryVector {
                name,
                mode: c.mode.as_str(),
                denial: c.denial.map(|d| d.as_str()),
                body: hx(e.body_bytes()),
                envelope: hx(&e.to_bytes()),
                id: e.id().to_hex(),
            }),
            _ => None,
        })
        .collect()
}

fn accept_call_vectors(fx: &CredentialFixture) -> Vec<AcceptCallVector> {
    let base = |credentials: Vec<Vec<u8>>| HireCall::Accept {
        contract: fx.contract.to_bytes(),
        input: b"{\"since\":\"2026-10-25\"}".to_vec(),
        salt: super::salt("credential-input"),
        credentials,
    };
    [
        ("accept without credentials (5 elements)", vec![]),
        (
            "accept with a sealed and a relayed grant (6 elements)",
            vec![fx.sealed_grant.to_bytes(), fx.relayed_grant.to_bytes()],
        ),
    ]
    .into_iter()
    .map(|(name, creds)| AcceptCallVector {
        name,
        credentials: creds.len(),
        call: hx(&encoding::encode(&base(creds))),
    })
    .collect()
}

fn raw_call(fx: &CredentialFixture, f: impl Fn(&mut NetworkCall)) -> NetworkCall {
    let mut c = fx.relayed_call();
    f(&mut c);
    c
}

/// A bundle case for rule R10: `started` then the given calls, no attestation.
struct R10Case {
    file: &'static str,
    description: &'static str,
    calls: Vec<NetworkCall>,
}

fn r10_cases(fx: &CredentialFixture) -> Vec<R10Case> {
    let client = client_key();
    let record_of = |r: RelayRecord, key: &Keypair| Some(Signed::sign(r, key).to_bytes());
    let mut flipped = fx.relay_record.to_bytes();
    let n = flipped.len();
    flipped[n - 1] ^= 0x01;
    let mut other_hire = fx.relay_record.body().clone();
    other_hire.hire_id = Hash::digest(b"another hire");
    let mut other_request = fx.relay_record.body().clone();
    other_request.request_id = [0x5b; 16];
    vec![
        R10Case {
            file: "invalid-r10-relayed-without-record.souk",
            description: "a relayed call that went through without the client's record",
            calls: vec![raw_call(fx, |c| c.relay_record = None)],
        },
        R10Case {
            file: "invalid-r10-record-signer.souk",
            description: "the relay record is signed by a third party, not the client",
            calls: vec![raw_call(fx, |c| {
                c.relay_record = record_of(fx.relay_record.body().clone(), &mallory_key())
            })],
        },
        R10Case {
            file: "invalid-r10-record-signature.souk",
            description: "the relay record's signature has one bit flipped",
            calls: vec![raw_call(fx, |c| c.relay_record = Some(flipped.clone()))],
        },
        R10Case {
            file: "invalid-r10-record-mismatch.souk",
            description: "the entry's response hash differs from the client's record",
            calls: vec![raw_call(fx, |c| c.response_hash = Hash::digest(b"forged"))],
        },
        R10Case {
            file: "invalid-r10-record-other-hire.souk",
            description: "the relay record (signed by the client) is for another hire",
            calls: vec![raw_call(fx, |c| {
                c.relay_record = record_of(other_hire.clone(), &client)
            })],
        },
        R10Case {
            file: "invalid-r10-record-reused.souk",
            description: "one relay record carried by two entries",
            calls: vec![fx.relayed_call(), fx.relayed_call()],
        },
        R10Case {
            file: "invalid-r10-record-on-sealed-call.souk",
            description: "a sealed call carrying a relay record",
            calls: vec![raw_call(fx, |c| {
                c.mode = CallMode::Sealed;
                c.relay_record = record_of(other_request.clone(), &client);
            })],
        },
        R10Case {
            file: "invalid-r10-unknown-slot.souk",
            description: "a sealed call through a slot the manifest does not declare",
            calls: vec![{
                let mut c = fx.sealed_call();
                c.slot = Some("billing".into());
                c
            }],
        },
        R10Case {
            file: "invalid-r10-slot-with-mode-none.souk",
            description: "a call naming a slot with mode none",
            calls: vec![{
                let mut c = fx.sealed_call();
                c.mode = CallMode::None;
                c
            }],
        },
        R10Case {
            file: "invalid-r10-sealed-host-outside-slot.souk",
            description: "the crm secret went to a host the manifest lists, but not for the slot",
            calls: vec![{
                let mut c = fx.sealed_call();
                c.host = "files.example.com".into();
                c
            }],
        },
        R10Case {
            file: "invalid-r10-host-not-listed.souk",
            description: "a call to a host the manifest does not list went through",
            calls: vec![{
                let mut c = fx.plain_call();
                c.host = "evil.example".into();
                c
            }],
        },
        R10Case {
            file: "invalid-r10-denial-with-status.souk",
            description: "a denial recorded with an HTTP status other than 0",
            calls: vec![{
                let mut c = fx.blocked_call();
                c.status = 403;
                c
            }],
        },
        R10Case {
            file: "invalid-r10-no-status.souk",
            description: "a call that was not denied, with status 0",
            calls: vec![{
                let mut c = fx.plain_call();
                c.status = 0;
                c
            }],
        },
    ]
}

/// Appends `credentials.json` and the credential bundles (with their index records).
pub fn generate(files: &mut Vec<VectorFile>, index: &mut Vec<BundleVector>) {
    let fx = CredentialFixture::build();
    let sealed = fx.sealed_grant.body();
    let s = sealed
        .sealed
        .as_ref()
        .unwrap_or_else(|| unreachable!("the fixture's crm grant is sealed"));
    let hire_id = fx.contract.hire_id();
    let denied_reply = RelayReply::Denied {
        code: DenialCode::ClientOffline,
        message: "the client's node did not answer within 30000 ms".into(),
        retry: true,
    };
    let vectors = CredentialVectors {
        suite: Suite {
            mode: "base",
            kem: "DHKEM(X25519, HKDF-SHA256)",
            kem_id: 0x0020,
            kdf: "HKDF-SHA256",
            kdf_id: 0x0001,
            aead: "ChaCha20-Poly1305",
            aead_id: 0x0003,
            info: hx(credential::HPKE_INFO),
        },
        keys: Keys {
            client_seed: hx(&[0x22; 32]),
            provider_seed: hx(&[0x11; 32]),
            sealing_secret: hx(&SEALING_SECRET),
            sealing_public: hx(&fx.manifest.body().sealing_key),
            other_sealing_secret: hx(&OTHER_SEALING_SECRET),
        },
        contract: hx(&fx.contract.to_bytes()),
        manifest: hx(&fx.manifest.to_bytes()),
        hire_id: hire_id.to_hex(),
        accept_now: ACCEPT_NOW,
        policies: policy_vectors(&fx),
        policy_checks: policy_check_vectors(&fx),
        seal: SealVector {
            recipient_public: hx(&s.recipient),
            hire_id: hire_id.to_hex(),
            slot: sealed.policy.slot.clone(),
            policy: hx(&sealed.policy.to_bytes()),
            policy_hash: s.policy_hash.to_hex(),
            secret: hx(CRM_SECRET),
            ephemeral_seed: hx(&EPHEMERAL_SEED),
            aad: hx(&credential::seal_aad(&hire_id, "crm", &s.policy_hash)),
            enc: hx(&s.enc),
            ciphertext: hx(&s.ciphertext),
            grant_body: hx(fx.sealed_grant.body_bytes()),
            grant_envelope: hx(&fx.sealed_grant.to_bytes()),
            grant_id: fx.sealed_grant.id().to_hex(),
        },
        open: open_vectors(&fx),
        accept_checks: accept_check_vectors(&fx),
        accept_calls: accept_call_vectors(&fx),
        paths: path_vectors(),
        requests: request_vectors(&fx),
        denials: denial_vectors(),
        relay: RelayVectors {
            request: hx(&fx.relay_request.to_bytes()),
            response: hx(&RelayReply::Response {
                status: 202,
                headers: vec![Header {
                    name: "content-type".into(),
                    value: b"application/json".to_vec(),
                }],
                body: fx.relay_response_body.clone(),
                record: fx.relay_record.to_bytes(),
            }
            .to_bytes()),
            denied: hx(&denied_reply.to_bytes()),
            response_status: 202,
            response_body: hx(&fx.relay_response_body),
            record: signature_vector("relay-record", 0x22, &fx.relay_record),
        },
        entries: entry_vectors(&fx),
    };
    files.push(json_file("credentials.json", &vectors));

    // Bundles.
    let valid = fx.bundle(fx.valid_calls(), true);
    let report = verify_bundle(&valid, SignatureCheck::OneByOne).ok();
    index.push(BundleVector {
        file: "valid-network-credentials.souk".into(),
        description: "observed network calls: sealed, relayed with the client's record, a \
                      blocked host, a path denial on a sealed slot, a plain call; completed and \
                      accepted"
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
        path: "bundles/valid-network-credentials.souk".into(),
        contents: valid.to_bytes(),
    });
    for case in r10_cases(&fx) {
        let bundle = fx.bundle(case.calls, false);
        let outcome = verify_bundle(&bundle, SignatureCheck::OneByOne);
        index.push(BundleVector {
            file: case.file.into(),
            description: case.description.into(),
            valid: outcome.is_ok(),
            rule: outcome.as_ref().err().map(|v| v.rule.code().into()),
            entry: outcome.as_ref().err().and_then(|v| v.entry),
            state: None,
            verdict: None,
            entries: None,
        });
        files.push(VectorFile {
            path: format!("bundles/{}", case.file),
            contents: bundle.to_bytes(),
        });
    }
}
