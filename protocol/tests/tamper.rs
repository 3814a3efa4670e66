//! Tamper tests: any change to a valid bundle or receipt stream is detected.
//!
//! Every single-byte flip and every truncation of a small valid bundle fails verification;
//! dropped, reordered, duplicated and re-signed entries fail with the rule they break; a fork
//! in a live stream yields an equivocation proof; and the batch and one-by-one signature modes
//! report the same result on every input.

use proptest::prelude::*;
use souk_protocol::equivocation::EquivocationProof;
use souk_protocol::hash::Hash;
use souk_protocol::receipt::{EntryKind, SignedEntry};
use souk_protocol::rules::Rule;
use souk_protocol::signed::Signed;
use souk_protocol::vectors::{Ending, HireFixture, T0, mallory_key, provider_key, sign_entry};
use souk_protocol::verify::{
    ChainContext, ChainError, ChainVerifier, Pushed, SignatureCheck, verify_bundle,
    verify_bundle_bytes,
};

fn small_bundle() -> Vec<u8> {
    HireFixture::build(2, Ending::CompletedAccepted)
        .bundle(&[1])
        .to_bytes()
}

#[test]
fn small_bundle_is_valid() {
    let bytes = small_bundle();
    for check in [SignatureCheck::Batch, SignatureCheck::OneByOne] {
        let report =
            verify_bundle_bytes(&bytes, check).unwrap_or_else(|v| panic!("{check:?}: {v}"));
        assert_eq!(report.entries, 4);
        assert_eq!(report.disclosures, 1);
    }
}

#[test]
fn every_byte_flip_fails() {
    let bytes = small_bundle();
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut m = bytes.clone();
            m[i] ^= mask;
            let batch = verify_bundle_bytes(&m, SignatureCheck::Batch);
            let one_by_one = verify_bundle_bytes(&m, SignatureCheck::OneByOne);
            assert!(
                one_by_one.is_err(),
                "flip {mask:#x} at byte {i} of {} went undetected",
                bytes.len()
            );
            assert_eq!(
                batch, one_by_one,
                "batch and one-by-one disagree on flip {mask:#x} at {i}"
            );
        }
    }
}

#[test]
fn every_truncation_fails() {
    let bytes = small_bundle();
    for cut in 0..bytes.len() {
        let v = verify_bundle_bytes(&bytes[..cut], SignatureCheck::Batch);
        assert_eq!(v.map_err(|v| v.rule), Err(Rule::B1), "truncation at {cut}");
    }
}

fn fixture() -> HireFixture {
    HireFixture::build(5, Ending::CompletedAccepted)
}

fn rule_of(bundle: &souk_protocol::bundle::Bundle) -> Option<(Rule, Option<u64>)> {
    let one_by_one = verify_bundle(bundle, SignatureCheck::OneByOne);
    assert_eq!(verify_bundle(bundle, SignatureCheck::Batch), one_by_one);
    one_by_one.err().map(|v| (v.rule, v.entry))
}

#[test]
fn dropped_reordered_duplicated_resigned_entries_fail() {
    let fx = fixture();
    let n = fx.entries.len();
    for i in 0..n {
        let mut b = fx.bundle(&[]);
        b.entries.remove(i);
        let got = rule_of(&b);
        // Dropping the last entry leaves a valid prefix that no longer matches the attestation.
        let want = if i + 1 == n {
            (Rule::A3, None)
        } else {
            (Rule::R5, Some(i as u64))
        };
        assert_eq!(got, Some(want), "drop {i}");
    }
    for i in 0..n - 1 {
        let mut b = fx.bundle(&[]);
        b.entries.swap(i, i + 1);
        assert_eq!(rule_of(&b), Some((Rule::R5, Some(i as u64))), "swap {i}");
        let mut b = fx.bundle(&[]);
        let dup = b.entries[i].clone();
        b.entries.insert(i + 1, dup);
        assert_eq!(
            rule_of(&b),
            Some((Rule::R5, Some(i as u64 + 1))),
            "duplicate {i}"
        );
    }
    for i in 0..n {
        let mut b = fx.bundle(&[]);
        b.entries[i] = Signed::sign(fx.entries[i].body().clone(), &mallory_key()).to_bytes();
        assert_eq!(
            rule_of(&b),
            Some((Rule::R2, Some(i as u64))),
            "re-signed {i}"
        );
    }
}

#[test]
fn earlier_bad_signature_wins_over_later_structural_failure() {
    let fx = fixture();
    let mut b = fx.bundle(&[]);
    let len = b.entries[1].len();
    b.entries[1][len - 1] ^= 1; // R3 at 1
    b.entries.remove(4); // R5 at 4
    assert_eq!(rule_of(&b), Some((Rule::R3, Some(1))));
}

fn ctx(fx: &HireFixture) -> ChainContext {
    ChainContext::new(&fx.contract, fx.manifest.body())
}

#[test]
fn incremental_push_accepts_a_valid_stream() {
    let fx = fixture();
    let mut chain = ChainVerifier::new(ctx(&fx));
    for e in &fx.entries {
        assert_eq!(chain.push(e.clone()), Ok(Pushed::Appended));
        // Redelivery is harmless.
        assert_eq!(chain.push(e.clone()), Ok(Pushed::Duplicate));
    }
    assert_eq!(chain.state(), souk_protocol::hire::HireState::Completed);
    assert_eq!(
        chain.head().map(|h| h.id()),
        fx.entries.last().map(|e| e.id())
    );
}

#[test]
fn incremental_push_detects_gap_bad_signature_and_fork() {
    let fx = fixture();
    let provider = provider_key();
    let hire_id = fx.contract.hire_id();
    let mut chain = ChainVerifier::new(ctx(&fx));
    assert!(chain.push(fx.entries[0].clone()).is_ok());
    // Gap: entry 2 before entry 1.
    match chain.push(fx.entries[2].clone()) {
        Err(ChainError::Violation(v)) => assert_eq!((v.rule, v.entry), (Rule::R5, Some(1))),
        other => panic!("gap not detected: {other:?}"),
    }
    // Bad signature on the next entry.
    let mut raw = fx.entries[1].to_bytes();
    let n = raw.len();
    raw[n - 3] ^= 0x10;
    let forged = SignedEntry::decode_bytes(&raw).unwrap_or_else(|e| panic!("{e}"));
    match chain.push(forged) {
        Err(ChainError::Violation(v)) => assert_eq!(v.rule, Rule::R3),
        other => panic!("bad signature not detected: {other:?}"),
    }
    assert!(chain.push(fx.entries[1].clone()).is_ok());
    // Fork: the provider signs a different entry at seq 1.
    let fork = sign_entry(
        &provider,
        hire_id,
        Some(&fx.entries[0]),
        T0 + 2200,
        EntryKind::ToolCall { tool: "x".into() },
        None,
    );
    let proof = match chain.push(fork) {
        Err(ChainError::Equivocation(p)) => p,
        other => panic!("fork not detected: {other:?}"),
    };
    let shown = proof.verify().unwrap_or_else(|v| panic!("{v}"));
    assert_eq!(
        (shown.seq, shown.hire_id, shown.signer),
        (1, hire_id, provider.id())
    );
    // The proof survives its wire form.
    let again =
        EquivocationProof::verify_bytes(&proof.to_bytes()).unwrap_or_else(|v| panic!("{v}"));
    assert_eq!(again, shown);
    // A forged "fork" signed by someone else is not an equivocation, just a bad entry.
    let fake = Signed::sign(fx.entries[1].body().clone(), &mallory_key());
    match chain.push(fake) {
        Err(ChainError::Violation(v)) => assert_eq!(v.rule, Rule::R2),
        other => panic!("{other:?}"),
    }
}

#[derive(Debug, Clone)]
enum Tamper {
    FlipEntryByte(usize, usize, u8),
    Drop(usize),
    Swap(usize),
    Resign(usize),
    RelinkPrev(usize),
    FlipAttestation(usize),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        (any::<usize>(), any::<usize>(), 1u8..=255)
            .prop_map(|(a, b, c)| Tamper::FlipEntryByte(a, b, c)),
        any::<usize>().prop_map(Tamper::Drop),
        any::<usize>().prop_map(Tamper::Swap),
        any::<usize>().prop_map(Tamper::Resign),
        any::<usize>().prop_map(Tamper::RelinkPrev),
        any::<usize>().prop_map(Tamper::FlipAttestation),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Batch and one-by-one verification agree on every tampered chain, and tampering is always
    /// detected.
    #[test]
    fn batch_and_one_by_one_agree(steps in 0usize..12, ops in proptest::collection::vec(tamper(), 1..4)) {
        let fx = HireFixture::build(steps, Ending::CompletedAccepted);
        let provider = provider_key();
        let mut b = fx.bundle(&[]);
        let original = b.clone();
        for op in ops {
            let n = b.entries.len();
            if n < 2 { break; }
            match op {
                Tamper::FlipEntryByte(e, i, m) => { let e = e % n; let len = b.entries[e].len(); b.entries[e][i % len] ^= m; }
                Tamper::Drop(i) => { b.entries.remove(i % n); }
                Tamper::Swap(i) => { let i = i % (n - 1); b.entries.swap(i, i + 1); }
                Tamper::Resign(i) => { let i = i % n; if let Ok(e) = SignedEntry::decode_bytes(&b.entries[i]) { b.entries[i] = Signed::sign(e.body().clone(), &mallory_key()).to_bytes(); } }
                Tamper::RelinkPrev(i) => {
                    let i = i % n;
                    if let Ok(e) = SignedEntry::decode_bytes(&b.entries[i]) {
                        let mut body = e.body().clone();
                        body.prev = Hash::digest(&body.prev.0);
                        b.entries[i] = Signed::sign(body, &provider).to_bytes();
                    }
                }
                Tamper::FlipAttestation(i) => { if let Some(a) = b.attestation.as_mut() { let len = a.len(); a[i % len] ^= 0x40; } }
            }
        }
        let one_by_one = verify_bundle(&b, SignatureCheck::OneByOne);
        prop_assert_eq!(verify_bundle(&b, SignatureCheck::Batch), one_by_one.clone());
        if b != original {
            prop_assert!(one_by_one.is_err(), "tampering went undetected");
        }
    }
}
