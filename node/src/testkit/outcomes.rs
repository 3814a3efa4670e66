//! Outcome-record and equivocation-proof fixtures: valid records of distinct hires (one per
//! client key) signed with real keys, and the forgeries a hostile peer would send.

use souk_protocol::equivocation::EquivocationProof;
use souk_protocol::hash::Hash;
use souk_protocol::hire::Verdict;
use souk_protocol::identity::Keypair;
use souk_protocol::manifest::Manifest;
use souk_protocol::outcome::OutcomeRecord;
use souk_protocol::receipt::{Attestation, EntryKind, SignedEntry};
use souk_protocol::signed::Signed;
use souk_protocol::vectors::{T0, contract, manifest_body, sign_entry, usage_of};

/// The parts of one settled fixture hire, to build valid records or forgeries from.
pub struct SettledHire {
    /// The provider's signed manifest.
    pub manifest: Signed<Manifest>,
    /// The contract's canonical bytes.
    pub contract: Vec<u8>,
    /// The hire id.
    pub hire_id: Hash,
    /// The `started` entry.
    pub started: SignedEntry,
    /// The terminal (`completed`) entry.
    pub head: SignedEntry,
}

/// A hire of agent `name` of `provider` by `client`, completed.
pub fn settled_hire(provider: &Keypair, client: &Keypair, name: &str) -> SettledHire {
    let mut body = manifest_body(provider);
    body.name = name.into();
    let manifest = Signed::sign(body, provider);
    let c = contract(&manifest, provider, client, false);
    let hire_id = c.hire_id();
    let started = sign_entry(
        provider,
        hire_id,
        None,
        T0 + 2000,
        EntryKind::Started {
            runtime_digest: manifest.body().runtime_digest,
        },
        None,
    );
    let head = sign_entry(
        provider,
        hire_id,
        Some(&started),
        T0 + 2500,
        EntryKind::Completed {
            output_hash: Hash::digest(b"{\"report\":\"ok\"}"),
            usage: usage_of(&c.terms().price, std::slice::from_ref(&started), T0 + 2500),
        },
        None,
    );
    SettledHire {
        manifest,
        contract: c.to_bytes(),
        hire_id,
        started,
        head,
    }
}

/// The client's attestation of `head`.
pub fn attest(
    client: &Keypair,
    hire_id: Hash,
    head: &SignedEntry,
    verdict: Verdict,
) -> Signed<Attestation> {
    Signed::sign(
        Attestation {
            hire_id,
            head_seq: head.body().seq,
            head_id: head.id(),
            verdict,
            reason: if verdict == Verdict::Disputed {
                "wrong totals".into()
            } else {
                String::new()
            },
            created_at: head.body().time + 1000,
        },
        client,
    )
}

impl SettledHire {
    /// The valid record of this hire with the client's `verdict`.
    pub fn record(&self, client: &Keypair, verdict: Verdict) -> Vec<u8> {
        let att = attest(client, self.hire_id, &self.head, verdict);
        OutcomeRecord::build(
            self.manifest.body().reference(),
            &self.contract,
            &self.head,
            &att,
        )
        .to_bytes()
    }
}

/// The valid record of a completed hire of `provider`'s agent `name` by `client`.
pub fn outcome_record(
    provider: &Keypair,
    client: &Keypair,
    name: &str,
    verdict: Verdict,
) -> Vec<u8> {
    settled_hire(provider, client, name).record(client, verdict)
}

/// A valid equivocation proof against `provider`: two `started` entries of one hire at seq 0.
pub fn equivocation_proof(provider: &Keypair, hire: u8) -> Vec<u8> {
    let entry = |digest: u8| {
        sign_entry(
            provider,
            Hash([hire; 32]),
            None,
            T0,
            EntryKind::Started {
                runtime_digest: Hash([digest; 32]),
            },
            None,
        )
    };
    EquivocationProof::new(entry(1), entry(2))
        .map(|p| p.to_bytes())
        .unwrap_or_else(|| unreachable!("two different entries at one seq conflict"))
}
