//! Stable manifest ids and outcome records.
//!
//! A manifest id ignores `seq`, `issued-at` and `expires-at` and changes with every other
//! field; an outcome record verifies without the chain or the manifest, every byte change
//! is rejected (and no byte replacement ever shows another outcome), and the verdict is a
//! function of the bytes.

use proptest::prelude::*;
use souk_protocol::hash::Hash;
use souk_protocol::hire::Verdict;
use souk_protocol::identity::Keypair;
use souk_protocol::manifest::{CredentialSlot, Injection, Isolation, Manifest, ManifestRef, Tool};
use souk_protocol::outcome::{MAX_OUTCOME_LEN, Outcome, OutcomeEnd, OutcomeRecord};
use souk_protocol::rules::Rule;
use souk_protocol::signed::Signed;
use souk_protocol::vectors::outcomes::record_of;
use souk_protocol::vectors::{Ending, HireFixture, manifest_body, provider_key};

fn record(ending: Ending) -> OutcomeRecord {
    let fx = HireFixture::build(2, ending);
    record_of(&fx).unwrap_or_else(|| panic!("a settled fixture has a record"))
}

/// Every field of an outcome but the record id (which names the exact bytes).
fn meaning(o: &Outcome) -> Outcome {
    Outcome {
        record_id: Hash::ZERO,
        ..o.clone()
    }
}

#[test]
fn a_settled_hire_gives_a_valid_record() {
    let fx = HireFixture::build(2, Ending::CompletedAccepted);
    let rec = record_of(&fx).unwrap_or_else(|| panic!("record"));
    let o = OutcomeRecord::verify_bytes(&rec.to_bytes()).unwrap_or_else(|v| panic!("{v}"));
    assert_eq!(o.hire_id, fx.contract.hire_id());
    assert_eq!(rec.hire_id(), fx.contract.hire_id());
    assert_eq!(o.record_id, rec.id());
    assert_eq!(o.manifest_id, fx.manifest.id());
    assert_eq!(o.agent, fx.manifest.body().reference());
    assert_eq!(o.provider, fx.manifest.body().provider);
    assert_eq!(o.client, fx.contract.client());
    assert_eq!(o.end, OutcomeEnd::Completed);
    assert_eq!(o.verdict, Verdict::Accepted);
    assert_eq!(o.entries, fx.entries.len() as u64);
    assert_eq!(Some(o.head), fx.entries.last().map(|e| e.id()));
    assert_eq!(o.price, fx.contract.terms().price);
    assert_eq!(o.deadline, fx.contract.terms().deadline);
    assert_eq!(
        Some(o.settled_at),
        fx.attestation.as_ref().map(|a| a.body().created_at)
    );
    assert_eq!(rec.verify(), Ok(o));
    let failed = OutcomeRecord::verify_bytes(&record(Ending::FailedDisputed).to_bytes())
        .unwrap_or_else(|v| panic!("{v}"));
    assert_eq!(failed.verdict, Verdict::Disputed);
    assert!(matches!(failed.end, OutcomeEnd::Failed { .. }));
}

#[test]
fn a_record_does_not_grow_with_the_chain() {
    let short = record(Ending::CompletedAccepted).to_bytes().len();
    let long = record_of(&HireFixture::build(60, Ending::CompletedAccepted))
        .unwrap_or_else(|| panic!("record"))
        .to_bytes()
        .len();
    assert!(long < 2 * 1024, "{long} bytes");
    assert!(long.abs_diff(short) < 16, "{short} vs {long}");
}

#[test]
fn oversized_input_is_refused_before_decoding() {
    let got = OutcomeRecord::verify_bytes(&vec![0u8; MAX_OUTCOME_LEN + 1]);
    assert_eq!(got.map_err(|v| v.rule), Err(Rule::O1));
}

#[test]
fn every_byte_flip_is_rejected() {
    let bytes = record(Ending::CompletedAccepted).to_bytes();
    assert!(OutcomeRecord::verify_bytes(&bytes).is_ok());
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut m = bytes.clone();
            m[i] ^= mask;
            let got = OutcomeRecord::verify_bytes(&m);
            assert!(got.is_err(), "flip {mask:#x} at byte {i} verified: {got:?}");
        }
    }
}

#[test]
fn every_truncation_is_rejected() {
    let bytes = record(Ending::FailedDisputed).to_bytes();
    for len in 0..bytes.len() {
        let got = OutcomeRecord::verify_bytes(&bytes[..len]);
        assert_eq!(got.map_err(|v| v.rule), Err(Rule::O1), "length {len}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Replacing any byte with any value: rejected, or the very same outcome.
    #[test]
    fn a_mutated_record_never_shows_another_outcome(pos in any::<prop::sample::Index>(), value in any::<u8>()) {
        let bytes = record(Ending::CompletedAccepted).to_bytes();
        let good = OutcomeRecord::verify_bytes(&bytes).unwrap_or_else(|v| panic!("{v}"));
        let mut m = bytes.clone();
        let i = pos.index(m.len());
        m[i] = value;
        if let Ok(o) = OutcomeRecord::verify_bytes(&m) {
            prop_assert_eq!(meaning(&o), meaning(&good));
        }
    }

    /// The verdict is a function of the bytes: the same bytes, decoded or not, give the same
    /// result, and a valid record re-encodes to its bytes.
    #[test]
    fn the_verdict_is_a_function_of_the_bytes(
        pos in any::<prop::sample::Index>(),
        insert in proptest::collection::vec(any::<u8>(), 0..4),
        cut in 0usize..3,
    ) {
        let bytes = record(Ending::FailedDisputed).to_bytes();
        let mut m = bytes.clone();
        let i = pos.index(m.len());
        m.splice(i..(i + cut).min(m.len()), insert);
        let first = OutcomeRecord::verify_bytes(&m);
        prop_assert_eq!(&first, &OutcomeRecord::verify_bytes(&m));
        if let Ok(rec) = OutcomeRecord::decode_bytes(&m) {
            prop_assert_eq!(&first, &rec.verify());
            prop_assert_eq!(rec.to_bytes(), m.clone());
        }
        if first.is_ok() {
            prop_assert_eq!(m, bytes);
        }
    }
}

// ---- manifest ids --------------------------------------------------------------------------

fn signed_id(m: &Manifest) -> Hash {
    Signed::sign(m.clone(), &provider_key()).id()
}

#[test]
fn the_id_is_the_reference_id_on_every_path() {
    let key = provider_key();
    let m = manifest_body(&key);
    let signed = Signed::sign(m.clone(), &key);
    let decoded =
        Signed::<Manifest>::decode_bytes(&signed.to_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(signed.id(), m.reference().id());
    assert_eq!(decoded.id(), signed.id());
    assert_ne!(signed.envelope_id(), signed.id());
    let r = m.reference();
    assert_eq!(
        r,
        ManifestRef::new(m.provider, m.name.clone(), m.terms_digest())
    );
    assert_eq!(r.handle_string(), format!("{}/{}", m.provider, m.name));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A re-announcement (any seq, any validity window) keeps the id.
    #[test]
    fn the_id_ignores_seq_and_validity(seq in any::<u64>(), issued in any::<u64>(), expires in any::<u64>()) {
        let m = manifest_body(&provider_key());
        let mut again = m.clone();
        again.seq = seq;
        again.issued_at = issued;
        again.expires_at = expires;
        prop_assert_eq!(signed_id(&again), signed_id(&m));
        prop_assert_eq!(again.terms_digest(), m.terms_digest());
    }

    /// Any other field changes it.
    #[test]
    fn the_id_follows_every_other_field(field in 0usize..21, n in 1u64..1_000_000, seed in any::<[u8; 32]>()) {
        let m = manifest_body(&provider_key());
        let mut c = m.clone();
        let word = format!("x{n}");
        match field {
            0 => c.provider = Keypair::from_seed(&seed).id(),
            1 => c.name = word,
            2 => c.capabilities.push(format!("zz{n}")),
            3 => c.description.push_str(&word),
            4 => c.input_schema = format!("{{\"title\":\"{word}\"}}"),
            5 => c.output_schema = format!("{{\"title\":\"{word}\"}}"),
            6 => c.tools.push(Tool { name: format!("zz{n}"), description: word }),
            7 => c.hosts.push(format!("zz{n}.example.com")),
            8 => c.credentials.push(CredentialSlot {
                name: format!("zz{n}"),
                hosts: vec!["api.example.com".into()],
                injection: Injection::Basic,
            }),
            9 => c.pricing.currency = format!("C{n}"),
            10 => c.pricing.per_hire ^= n,
            11 => c.pricing.per_hour ^= n,
            12 => c.limits.max_duration_ms ^= n,
            13 => c.limits.max_concurrency ^= n as u32,
            14 => c.limits.max_input_bytes ^= n,
            15 => c.limits.memory_bytes ^= n,
            16 => c.limits.max_processes ^= n,
            17 => c.limits.isolation = Isolation::None,
            18 => c.runtime_digest = Hash::digest(&seed),
            19 => c.sealing_key = seed,
            _ => c.credentials[0].injection = Injection::Query { param: word },
        }
        prop_assume!(c != m);
        prop_assert_ne!(signed_id(&c), signed_id(&m));
        prop_assert_ne!(c.terms_digest(), m.terms_digest());
    }
}
