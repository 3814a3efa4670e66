//! Manifest-id and outcome-record fixtures and the generator of `spec/vectors/manifest-id.json`
//! and `spec/vectors/outcomes.json`.
//!
//! Deterministic like the rest of [`crate::vectors`]: fixed keys and times; every invalid
//! record breaks exactly one rule of `spec/outcomes.md`.

use serde::Serialize;

use super::{
    Ending, HireFixture, T0, VectorFile, client_key, contract, hx, json_file, mallory_key,
    manifest_body, provider_key, sign_entry, usage_of,
};
use crate::encoding;
use crate::hash::Hash;
use crate::hire::Verdict;
use crate::identity::Keypair;
use crate::manifest::{Manifest, ManifestRef};
use crate::outcome::{MAX_OUTCOME_LEN, OutcomeRecord};
use crate::receipt::{Attestation, EntryKind, SignedEntry, Usage};
use crate::signed::Signed;

#[derive(Serialize)]
struct ManifestIdVector {
    name: &'static str,
    /// The signed manifest body (canonical CBOR).
    body: String,
    /// The 14-element terms array (canonical CBOR).
    terms: String,
    terms_digest: String,
    /// The canonical reference `[provider, name, terms-digest]`.
    reference: String,
    handle: String,
    /// The manifest id.
    id: String,
    /// BLAKE3 of the signing input: the id of this one announcement.
    envelope_id: String,
}

fn manifest_id_vector(name: &'static str, m: &Manifest) -> ManifestIdVector {
    let r = m.reference();
    ManifestIdVector {
        name,
        body: hx(&encoding::encode(m)),
        terms: hx(&m.terms_bytes()),
        terms_digest: r.terms_digest.to_hex(),
        reference: hx(&encoding::encode(&r)),
        handle: r.handle_string(),
        id: r.id().to_hex(),
        envelope_id: crate::hash::Domain::Manifest
            .hash(&encoding::encode(m))
            .to_hex(),
    }
}

/// What a valid record shows, as the vector states it.
#[derive(Serialize)]
struct OutcomeFields {
    record_id: String,
    hire_id: String,
    manifest_id: String,
    handle: String,
    provider: String,
    client: String,
    end: String,
    verdict: &'static str,
    reason: String,
    entries: u64,
    head: String,
    settled_at: u64,
    price: String,
    deadline: u64,
}

#[derive(Serialize)]
struct OutcomeVector {
    name: &'static str,
    description: &'static str,
    record: String,
    size: usize,
    valid: bool,
    /// For invalid vectors: the rule broken.
    rule: Option<&'static str>,
    /// For valid vectors: what the record shows.
    outcome: Option<OutcomeFields>,
}

fn attest(
    client: &Keypair,
    hire_id: Hash,
    head: &SignedEntry,
    verdict: Verdict,
    reason: &str,
) -> Signed<Attestation> {
    Signed::sign(
        Attestation {
            hire_id,
            head_seq: head.body().seq,
            head_id: head.id(),
            verdict,
            reason: reason.into(),
            created_at: head.body().time + 1000,
        },
        client,
    )
}

/// The outcome record of a settled fixture hire (its last entry and its attestation).
pub fn record_of(fx: &HireFixture) -> Option<OutcomeRecord> {
    Some(OutcomeRecord::build(
        fx.manifest.body().reference(),
        &fx.contract.to_bytes(),
        fx.entries.last()?,
        fx.attestation.as_ref()?,
    ))
}

/// A self-hire: the provider's key also signs as the client (rule O3).
fn self_hire() -> OutcomeRecord {
    let provider = provider_key();
    let manifest = Signed::sign(manifest_body(&provider), &provider);
    let c = contract(&manifest, &provider, &provider, false);
    let hire_id = c.hire_id();
    let started = sign_entry(
        &provider,
        hire_id,
        None,
        T0 + 2000,
        EntryKind::Started {
            runtime_digest: manifest.body().runtime_digest,
        },
        None,
    );
    let done = sign_entry(
        &provider,
        hire_id,
        Some(&started),
        T0 + 2500,
        EntryKind::Completed {
            output_hash: Hash::digest(b"{\"report\":\"all good\"}"),
            usage: usage_of(&c.terms().price, std::slice::from_ref(&started), T0 + 2500),
        },
        None,
    );
    let att = attest(&provider, hire_id, &done, Verdict::Accepted, "");
    OutcomeRecord::build(manifest.body().reference(), &c.to_bytes(), &done, &att)
}

fn fields(record: &OutcomeRecord) -> Option<OutcomeFields> {
    let o = record.verify().ok()?;
    Some(OutcomeFields {
        record_id: o.record_id.to_hex(),
        hire_id: o.hire_id.to_hex(),
        manifest_id: o.manifest_id.to_hex(),
        handle: o.agent.handle_string(),
        provider: o.provider.to_string(),
        client: o.client.to_string(),
        end: o.end.to_string(),
        verdict: o.verdict.as_str(),
        reason: o.reason,
        entries: o.entries,
        head: o.head.to_hex(),
        settled_at: o.settled_at,
        price: format!("{} {}", o.price.amount, o.price.currency),
        deadline: o.deadline,
    })
}

/// Writes `manifest-id.json` and `outcomes.json`.
pub(crate) fn generate(files: &mut Vec<VectorFile>) {
    let provider = provider_key();
    let client = client_key();
    let mallory = mallory_key();

    // manifest-id.json: a manifest, its re-announcement (same id), and a change of terms.
    let m = manifest_body(&provider);
    let mut again = m.clone();
    again.seq += 1;
    again.issued_at += 6 * 3600 * 1000;
    again.expires_at += 6 * 3600 * 1000;
    let mut repriced = again.clone();
    repriced.pricing.per_hire = 2_500_000;
    let mut renamed = m.clone();
    renamed.name = "csv-analyst-pro".into();
    files.push(json_file(
        "manifest-id.json",
        &[
            manifest_id_vector("the fixture manifest (seq 3)", &m),
            manifest_id_vector(
                "re-announced: seq 4, issued and expiring 6 hours later (same id)",
                &again,
            ),
            manifest_id_vector("re-announced with a new per-hire price (new id)", &repriced),
            manifest_id_vector("the same terms under another name (new id)", &renamed),
        ],
    ));

    // outcomes.json
    let accepted = HireFixture::build(6, Ending::CompletedAccepted);
    let failed = HireFixture::build(3, Ending::FailedDisputed);
    let Some(good) = record_of(&accepted) else {
        return;
    };
    let hire_id = accepted.contract.hire_id();
    let contract_bytes = accepted.contract.to_bytes();
    let agent = accepted.manifest.body().reference();
    let n = accepted.entries.len();
    let head = &accepted.entries[n - 1];
    let before_head = &accepted.entries[n - 2];
    let with = |head: &SignedEntry, att: &Signed<Attestation>| {
        OutcomeRecord::build(agent.clone(), &contract_bytes, head, att)
    };

    let mut cases: Vec<(&'static str, &'static str, Vec<u8>)> = Vec::new();
    cases.push((
        "valid completed, accepted",
        "a completed hire the client accepted",
        good.to_bytes(),
    ));
    cases.push((
        "valid completed, disputed",
        "a completed hire the client disputed",
        with(
            head,
            &attest(
                &client,
                hire_id,
                head,
                Verdict::Disputed,
                "the report misses the south region",
            ),
        )
        .to_bytes(),
    ));
    if let (Some(fhead), Some(fx_record)) = (failed.entries.last(), record_of(&failed)) {
        let failed_accepted = OutcomeRecord {
            attestation: attest(
                &client,
                failed.contract.hire_id(),
                fhead,
                Verdict::Accepted,
                "fair: the input was malformed",
            )
            .to_bytes(),
            ..fx_record
        };
        cases.push((
            "valid failed, accepted",
            "the agent crashed; the client accepts the outcome anyway",
            failed_accepted.to_bytes(),
        ));
    }

    let mut oversized = good.to_bytes();
    oversized.resize(MAX_OUTCOME_LEN + 1, 0);
    cases.push((
        "invalid O1 oversized",
        "a valid record followed by zero bytes up to one byte past the limit",
        oversized,
    ));
    let mut non_canonical = good.to_bytes();
    // [0x85, 0x01, ...]: the version 1 written in two bytes (0x18 0x01).
    non_canonical.splice(1..2, [0x18, 0x01]);
    cases.push((
        "invalid O1 non-canonical",
        "the version written as a two-byte integer",
        non_canonical,
    ));
    let replayed = OutcomeRecord {
        agent: ManifestRef::new(agent.provider, "csv-analyst-pro".into(), agent.terms_digest),
        ..good.clone()
    };
    cases.push((
        "invalid O2 replayed under another handle",
        "the record presented for another agent name: the request names another manifest id",
        replayed.to_bytes(),
    ));
    cases.push((
        "invalid O3 self-hire",
        "the provider's key also signs as the client",
        self_hire().to_bytes(),
    ));
    // Same body, so the same entry id: the client's attestation still matches it.
    let forged_head = Signed::sign(head.body().clone(), &mallory);
    cases.push((
        "invalid O4 head signed by another key",
        "the terminal entry re-signed by a third party (same body, same entry id)",
        OutcomeRecord {
            head: forged_head.to_bytes(),
            ..good.clone()
        }
        .to_bytes(),
    ));
    let other_hire = sign_entry(
        &provider,
        Hash::digest(b"another hire"),
        Some(before_head),
        head.body().time,
        head.body().kind.clone(),
        None,
    );
    cases.push((
        "invalid O5 head of another hire",
        "a terminal entry the provider signed for another hire, attested by the client",
        with(
            &other_hire,
            &attest(&client, hire_id, &other_hire, Verdict::Accepted, ""),
        )
        .to_bytes(),
    ));
    cases.push((
        "invalid O6 head not terminal",
        "the entry before the terminal one, attested by the client",
        with(
            before_head,
            &attest(&client, hire_id, before_head, Verdict::Accepted, ""),
        )
        .to_bytes(),
    ));
    let mut cheap = head.body().kind.clone();
    let mut usage: Usage = usage_of(
        &accepted.contract.terms().price,
        &accepted.entries[..n - 1],
        head.body().time,
    );
    usage.price.amount = 1;
    cheap.set_usage(usage);
    let cheap_head = sign_entry(
        &provider,
        hire_id,
        Some(before_head),
        head.body().time,
        cheap,
        None,
    );
    cases.push((
        "invalid O7 price mismatch",
        "the terminal entry records a price other than the agreed one",
        with(
            &cheap_head,
            &attest(&client, hire_id, &cheap_head, Verdict::Accepted, ""),
        )
        .to_bytes(),
    ));
    let mallory_att = attest(&mallory, hire_id, head, Verdict::Disputed, "bad");
    cases.push((
        "invalid O8 attestation signed by another key",
        "a third party's verdict on the hire",
        with(head, &mallory_att).to_bytes(),
    ));
    cases.push((
        "invalid O9 attestation of another hire",
        "the client's attestation names another hire id",
        with(
            head,
            &attest(
                &client,
                Hash::digest(b"another hire"),
                head,
                Verdict::Accepted,
                "",
            ),
        )
        .to_bytes(),
    ));
    cases.push((
        "invalid O10 attestation over another head",
        "the client attested the entry before the record's head",
        with(
            head,
            &attest(&client, hire_id, before_head, Verdict::Accepted, ""),
        )
        .to_bytes(),
    ));
    let mut bad_contract = accepted.contract.clone();
    bad_contract.accept = Signed::sign(bad_contract.accept.body().clone(), &mallory);
    cases.push((
        "invalid C3 acceptance by another key",
        "the contract's acceptance re-signed by a third party",
        OutcomeRecord {
            contract: bad_contract.to_bytes(),
            ..good.clone()
        }
        .to_bytes(),
    ));

    let vectors: Vec<OutcomeVector> = cases
        .into_iter()
        .map(|(name, description, bytes)| {
            let got = OutcomeRecord::verify_bytes(&bytes);
            let outcome = match &got {
                Ok(_) => OutcomeRecord::decode_bytes(&bytes)
                    .ok()
                    .and_then(|r| fields(&r)),
                Err(_) => None,
            };
            OutcomeVector {
                name,
                description,
                size: bytes.len(),
                record: hx(&bytes),
                valid: got.is_ok(),
                rule: got.err().map(|v| v.rule.code()),
                outcome,
            }
        })
        .collect();
    files.push(json_file("outcomes.json", &vectors));
}
