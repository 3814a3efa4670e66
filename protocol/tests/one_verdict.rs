//! One verdict for every verifier (issue #10): every API that checks a signature reaches the
//! verdict `spec/encoding.md` gives it, whichever path it takes.
//!
//! - the source test enumerates the places that may call the signature rule, so a new path
//!   cannot bypass it unnoticed;
//! - the API test feeds every signer-made edge case to every API that checks a signature;
//! - the property test builds random chains with random edge-case signatures injected and
//!   checks that both bundle modes and incremental verification agree with the spec's verdict.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use souk_protocol::Timestamp;
use souk_protocol::equivocation::EquivocationProof;
use souk_protocol::manifest::{Manifest, ManifestError};
use souk_protocol::negotiation::{HireRequest, Proposal};
use souk_protocol::rules::{Rule, Violation};
use souk_protocol::signature::{self, VerifyingKey};
use souk_protocol::signed::Signed;
use souk_protocol::vectors::{
    Edge, Ending, HireFixture, Slot, T0, provider_key, sign_edge, sign_entry,
};
use souk_protocol::verify::{
    ChainContext, ChainError, ChainVerifier, Pushed, SignatureCheck, check_attestation,
    verify_bundle,
};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// Where the signature rule may be used. Everything else reaches it through one of these:
/// `Signed::verify`, `Signed::verify_with` and `Signed::open` (manifests, negotiation messages,
/// contracts, attestations, equivocation proofs), `ChainVerifier::push` and `verify_bundle`.
#[test]
fn signature_checks_go_through_the_one_rule() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let rel = |p: &Path| {
        p.strip_prefix(&root)
            .unwrap_or(p)
            .to_string_lossy()
            .replace('\\', "/")
    };
    // (needle, files allowed to contain it)
    let rules: [(&str, &[&str]); 6] = [
        // The Ed25519 verification library: only the module that defines validity.
        (
            "ed25519_zebra",
            &["signature.rs", "signature/tests.rs", "signature/memo.rs"],
        ),
        // Another library's verification functions: nowhere.
        ("verify_strict", &[]),
        ("ed25519_dalek::verify_batch", &[]),
        // ed25519-dalek signs (and gives fixtures the secret scalar); it verifies nothing.
        ("ed25519_dalek", &["identity.rs", "vectors/edge.rs"]),
        // Direct calls of the rule: the envelope and the chain/bundle verifier.
        ("signature::verify(", &["signed.rs", "verify.rs"]),
        ("signature::verify_batch(", &["verify.rs"]),
    ];
    let mut seen = Vec::new();
    for path in &files {
        let name = rel(path);
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (needle, allowed) in rules {
            if text.contains(needle) {
                assert!(
                    allowed.contains(&name.as_str()),
                    "{name} uses `{needle}`: route it through souk_protocol::signature"
                );
                seen.push((needle, name.clone()));
            }
        }
    }
    // The allowed call sites exist (the test would pass vacuously if they were renamed).
    for want in [
        ("signature::verify(", "signed.rs"),
        ("signature::verify(", "verify.rs"),
        ("signature::verify_batch(", "verify.rs"),
        ("ed25519_zebra", "signature.rs"),
    ] {
        assert!(
            seen.iter().any(|(n, f)| *n == want.0 && f == want.1),
            "{want:?} not found"
        );
    }
}

/// What each API says about one fixture hire whose signature in `slot` is made as `edge`.
fn outcomes(edge: Edge, slot: Slot) -> Vec<(&'static str, bool)> {
    let fx = HireFixture::build_with(4, Ending::CompletedAccepted, &|s| {
        if s == slot { edge } else { Edge::Honest }
    });
    let bundle = fx.bundle(&[]);
    let mut out = Vec::new();
    for check in [SignatureCheck::Batch, SignatureCheck::OneByOne] {
        out.push(("verify_bundle", verify_bundle(&bundle, check).is_ok()));
    }
    match slot {
        Slot::Manifest => {
            let bytes = fx.manifest.to_bytes();
            out.push((
                "Manifest::verify_offline",
                Manifest::verify_offline(&bytes).is_ok(),
            ));
            out.push(("Manifest::verify", Manifest::verify(&bytes, T0 + 1).is_ok()));
            out.push(("Signed::open", Signed::<Manifest>::open(&bytes).is_ok()));
        }
        Slot::Request | Slot::Proposal | Slot::Accept => {
            out.push(("Contract::verify", fx.contract.verify(&fx.manifest).is_ok()));
            if slot == Slot::Request {
                let bytes = fx.contract.request.to_bytes();
                out.push(("Signed::open", Signed::<HireRequest>::open(&bytes).is_ok()));
            }
            if let (Slot::Proposal, Proposal::Offer(o)) = (slot, &fx.contract.proposal) {
                let provider = fx.manifest.body().provider;
                out.push(("Signed::verify", o.verify(&provider).is_ok()));
            }
        }
        Slot::Entry(seq) => {
            let ctx = ChainContext::new(&fx.contract, fx.manifest.body());
            let mut chain = ChainVerifier::new(ctx.clone());
            let pushed = fx
                .entries
                .iter()
                .try_for_each(|e| chain.push(e.clone()).map(drop));
            out.push(("ChainVerifier::push", pushed.is_ok()));
            let entry = &fx.entries[seq as usize];
            let key = VerifyingKey::new(&ctx.provider);
            out.push(("Signed::verify_with", entry.verify_with(&key).is_ok()));
            out.push((
                "signature::verify",
                signature::verify(&key, &entry.signing_input(), entry.signature()),
            ));
            let inputs: Vec<Vec<u8>> = fx.entries.iter().map(|e| e.signing_input()).collect();
            let msgs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
            let sigs: Vec<[u8; 64]> = fx.entries.iter().map(|e| *e.signature()).collect();
            out.push((
                "signature::verify_batch",
                signature::verify_batch(&key, &msgs, &sigs).is_ok(),
            ));
            // The same entry as the second half of an equivocation proof, and pushed onto an
            // honest chain at an existing position (where only a valid one is a proof).
            let honest = HireFixture::build(4, Ending::CompletedAccepted);
            let other = sign_entry(
                &provider_key(),
                honest.contract.hire_id(),
                None,
                T0 + 1,
                honest.entries[0].body().kind.clone(),
                None,
            );
            let forked = sign_edge(
                {
                    let mut b = other.body().clone();
                    b.time += 1;
                    b
                },
                &provider_key(),
                edge,
            );
            let proof = EquivocationProof::new(other, forked.clone())
                .unwrap_or_else(|| panic!("the entries conflict"));
            out.push(("EquivocationProof::verify", proof.verify().is_ok()));
            let mut chain =
                ChainVerifier::new(ChainContext::new(&honest.contract, honest.manifest.body()));
            for e in &honest.entries {
                chain.push(e.clone()).unwrap_or_else(|e| panic!("{e}"));
            }
            out.push((
                "ChainVerifier::push (fork)",
                matches!(chain.push(forked), Err(ChainError::Equivocation(_))),
            ));
        }
        Slot::Attestation => {
            let ctx = ChainContext::new(&fx.contract, fx.manifest.body());
            let mut chain = ChainVerifier::new(ctx);
            for e in &fx.entries {
                chain.push(e.clone()).unwrap_or_else(|e| panic!("{e}"));
            }
            let raw = fx
                .attestation
                .as_ref()
                .map(Signed::to_bytes)
                .unwrap_or_default();
            out.push(("check_attestation", check_attestation(&raw, &chain).is_ok()));
        }
    }
    out
}

/// Every signer-made edge case, in every slot, through every API: the spec's verdict.
#[test]
fn every_api_gives_the_spec_verdict_on_every_edge_case() {
    let slots = [
        Slot::Manifest,
        Slot::Request,
        Slot::Proposal,
        Slot::Accept,
        Slot::Entry(2),
        Slot::Attestation,
    ];
    let mut checks = 0;
    for edge in Edge::all() {
        for slot in slots {
            for (api, ok) in outcomes(edge, slot) {
                assert_eq!(ok, edge.is_valid(), "{api} on {} in {slot:?}", edge.name());
                checks += 1;
            }
        }
    }
    assert!(checks > 500, "{checks}");
}

/// The result the spec's order of checks gives for a chain whose signatures are made as
/// `edges` says.
fn expected(
    edges: &dyn Fn(Slot) -> Edge,
    entries: u64,
    attested: bool,
) -> Result<(), (Rule, Option<u64>)> {
    let bad = |s: Slot| !edges(s).is_valid();
    if bad(Slot::Manifest) {
        return Err((Rule::M1, None));
    }
    if bad(Slot::Request) || bad(Slot::Proposal) || bad(Slot::Accept) {
        return Err((Rule::C1, None));
    }
    if let Some(seq) = (0..entries).find(|s| bad(Slot::Entry(*s))) {
        return Err((Rule::R3, Some(seq)));
    }
    if attested && bad(Slot::Attestation) {
        return Err((Rule::A1, None));
    }
    Ok(())
}

fn outcome(r: &Result<impl Sized, Violation>) -> Result<(), (Rule, Option<u64>)> {
    match r {
        Ok(_) => Ok(()),
        Err(v) => Err((v.rule, v.entry)),
    }
}

fn edge_strategy() -> impl Strategy<Value = Edge> {
    let all = Edge::all();
    prop_oneof![
        3 => Just(Edge::Honest),
        1 => proptest::sample::select(all),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random chains with random signer-made edge signatures: batch, one-by-one and
    /// incremental verification all give the spec's verdict.
    #[test]
    fn every_mode_agrees_on_random_chains_with_edge_signatures(
        steps in 0usize..24,
        ending in prop_oneof![
            Just(Ending::CompletedAccepted),
            Just(Ending::FailedDisputed),
            Just(Ending::InProgress),
        ],
        head in proptest::collection::vec(edge_strategy(), 5),
        entry_edges in proptest::collection::vec(edge_strategy(), 28),
    ) {
        let pick = |s: Slot| match s {
            Slot::Manifest => head[0],
            Slot::Request => head[1],
            Slot::Proposal => head[2],
            Slot::Accept => head[3],
            Slot::Attestation => head[4],
            Slot::Entry(seq) => entry_edges[seq as usize % entry_edges.len()],
        };
        let fx = HireFixture::build_with(steps, ending, &pick);
        let n = fx.entries.len() as u64;
        let want = expected(&pick, n, fx.attestation.is_some());
        let bundle = fx.bundle(&[]);
        for check in [SignatureCheck::Batch, SignatureCheck::OneByOne] {
            prop_assert_eq!(outcome(&verify_bundle(&bundle, check)), want, "{:?}", check);
        }
        // Incremental: the client's verifier, entry by entry, once the contract checks out.
        if want.is_err_and(|(r, _)| r == Rule::M1 || r == Rule::C1) {
            prop_assert!(fx.contract.verify(&fx.manifest).is_err()
                || Manifest::verify_offline(&fx.manifest.to_bytes()).is_err());
        } else {
            let mut chain = ChainVerifier::new(ChainContext::new(&fx.contract, fx.manifest.body()));
            let mut got = Ok(());
            for e in &fx.entries {
                match chain.push(e.clone()) {
                    Ok(Pushed::Appended) => {}
                    Ok(Pushed::Duplicate) => prop_assert!(false, "no duplicates here"),
                    Err(ChainError::Violation(v)) => { got = Err((v.rule, v.entry)); break; }
                    Err(ChainError::Equivocation(_)) => prop_assert!(false, "no forks here"),
                }
            }
            if let (Ok(()), Some(a)) = (got, &fx.attestation) {
                got = outcome(&check_attestation(&a.to_bytes(), &chain));
            }
            prop_assert_eq!(got, want);
        }
    }
}

/// Freshness is not a signature question: an expired manifest with a valid edge signature is
/// rejected for freshness only.
#[test]
fn manifest_freshness_is_separate_from_the_signature() {
    let fx = HireFixture::build_with(0, Ending::InProgress, &|s| match s {
        Slot::Manifest => Edge::TorsionR(1),
        _ => Edge::Honest,
    });
    let late: Timestamp = fx.manifest.body().expires_at;
    let bytes = fx.manifest.to_bytes();
    assert!(Manifest::verify_offline(&bytes).is_ok());
    assert!(matches!(
        Manifest::verify(&bytes, late),
        Err(ManifestError::Expired { .. })
    ));
}
