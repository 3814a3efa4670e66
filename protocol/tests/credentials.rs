//! Property tests of the credential formats: every encoder round-trips, no mutation decodes
//! to a second encoding of a value, non-canonical forms are rejected, sealing always opens
//! and never opens after tampering, and path normalisation is idempotent.

use proptest::prelude::*;
use souk_protocol::credential::{
    self, CredentialGrant, CredentialMode, CredentialPolicy, DenialCode, Header, OfflineBehaviour,
    OpenError, RelayRecord, RelayReply, RelayRequest, SealedSecret,
};
use souk_protocol::encoding::{self, Canonical, DecodeErrorKind};
use souk_protocol::hash::Hash;
use souk_protocol::hiring::{HireCall, MAX_CALL_LEN};
use souk_protocol::identity::Keypair;
use souk_protocol::manifest::Injection;
use souk_protocol::signed::Signed;

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

fn injection() -> impl Strategy<Value = Injection> {
    prop_oneof![
        ("[a-z-]{1,20}", "[A-Za-z ]{0,10}")
            .prop_map(|(name, prefix)| Injection::Header { name, prefix }),
        Just(Injection::Basic),
        "[a-z_]{1,20}".prop_map(|param| Injection::Query { param }),
    ]
}

fn mode() -> impl Strategy<Value = CredentialMode> {
    prop_oneof![
        Just(CredentialMode::Sealed),
        Just(CredentialMode::Relayed {
            offline: OfflineBehaviour::Fail
        }),
        any::<u64>().prop_map(|max_ms| CredentialMode::Relayed {
            offline: OfflineBehaviour::Wait { max_ms }
        }),
    ]
}

prop_compose! {
    fn policy()(
        hire_id in hash(),
        slot in "[a-z0-9-]{1,64}",
        hosts in proptest::collection::vec("[a-z0-9.-]{1,40}(:[0-9]{1,5})?", 0..5),
        methods in proptest::collection::vec("[A-Z]{1,16}", 0..5),
        path_prefixes in proptest::collection::vec("/[a-z0-9/%~.-]{0,60}", 0..5),
        injection in injection(),
        expires_at in any::<u64>(),
        max_requests in any::<u64>(),
        mode in mode(),
    ) -> CredentialPolicy {
        CredentialPolicy { hire_id, slot, hosts, methods, path_prefixes, injection, expires_at, max_requests, mode }
    }
}

fn sealed_secret() -> impl Strategy<Value = SealedSecret> {
    (
        any::<[u8; 32]>(),
        hash(),
        any::<[u8; 32]>(),
        proptest::collection::vec(any::<u8>(), 17..200),
    )
        .prop_map(|(recipient, policy_hash, enc, ciphertext)| SealedSecret {
            recipient,
            policy_hash,
            enc,
            ciphertext,
        })
}

fn headers() -> impl Strategy<Value = Vec<Header>> {
    proptest::collection::vec(
        (
            "[a-z-]{1,30}",
            proptest::collection::vec(any::<u8>(), 0..60),
        )
            .prop_map(|(name, value)| Header { name, value }),
        0..6,
    )
}

prop_compose! {
    fn relay_request()(
        hire_id in hash(),
        slot in "[a-z0-9-]{1,64}",
        request_id in any::<[u8; 16]>(),
        method in "[A-Z]{1,16}",
        host in "[a-z0-9.-]{1,60}",
        target in "/[ -~]{0,100}",
        headers in headers(),
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) -> RelayRequest {
        RelayRequest { hire_id, slot, request_id, method, host, target, headers, body }
    }
}

prop_compose! {
    fn relay_record()(
        hire_id in hash(),
        slot in "[a-z0-9-]{1,64}",
        request_id in any::<[u8; 16]>(),
        method in "[A-Z]{1,16}",
        host in "[a-z0-9.-]{1,60}",
        path in "/[a-z0-9/]{0,100}",
        status in any::<u32>(),
        bytes in (any::<u64>(), any::<u64>()),
        hashes in (hash(), hash()),
        times in (any::<u64>(), any::<u64>()),
    ) -> RelayRecord {
        RelayRecord {
            hire_id, slot, request_id, method, host, path, status,
            request_bytes: bytes.0, response_bytes: bytes.1,
            request_hash: hashes.0, response_hash: hashes.1,
            started_at: times.0, duration_ms: times.1,
        }
    }
}

fn relay_reply() -> impl Strategy<Value = RelayReply> {
    prop_oneof![
        (
            any::<u16>(),
            headers(),
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(status, headers, body, record)| RelayReply::Response {
                status,
                headers,
                body,
                record,
            }),
        (0usize..DenialCode::ALL.len(), "[ -~]{0,100}", any::<bool>()).prop_map(
            |(i, message, retry)| RelayReply::Denied {
                code: DenialCode::ALL[i].0,
                message,
                retry,
            }
        ),
    ]
}

/// Encodes, decodes, re-encodes; then checks that single-byte flips, truncations, a trailing
/// byte and a non-minimal outer array head are never accepted as another encoding.
fn canonical<T: Canonical + PartialEq + std::fmt::Debug>(
    v: &T,
    flips: &[(usize, u8)],
) -> Result<(), TestCaseError> {
    let bytes = encoding::encode(v);
    let back: T =
        encoding::decode(&bytes, usize::MAX).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(&back, v);
    for (pos, mask) in flips {
        let mut m = bytes.clone();
        let i = pos % m.len();
        m[i] ^= (*mask).max(1);
        if let Ok(d) = encoding::decode::<T>(&m, usize::MAX) {
            prop_assert_eq!(encoding::encode(&d), m);
        }
    }
    for cut in [1, bytes.len() / 2, bytes.len() - 1] {
        prop_assert!(
            encoding::decode::<T>(&bytes[..cut.min(bytes.len() - 1)], usize::MAX).is_err()
        );
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    prop_assert!(encoding::decode::<T>(&trailing, usize::MAX).is_err());
    // Outer head 0x8N (N < 24) rewritten as 0x98 0x0N: same value, non-minimal head.
    if bytes[0] & 0xe0 == 0x80 && bytes[0] & 0x1f < 24 {
        let mut long = vec![0x98, bytes[0] & 0x1f];
        long.extend_from_slice(&bytes[1..]);
        prop_assert_eq!(
            encoding::decode::<T>(&long, usize::MAX)
                .err()
                .map(|e| e.kind),
            Some(DecodeErrorKind::NonMinimal)
        );
    }
    Ok(())
}

fn flips() -> impl Strategy<Value = Vec<(usize, u8)>> {
    proptest::collection::vec((any::<usize>(), any::<u8>()), 24)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn policy_encoding(p in policy(), f in flips()) {
        canonical(&p, &f)?;
        prop_assert_eq!(p.policy_hash(), CredentialPolicy::decode_bytes(&p.to_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?.policy_hash());
    }

    #[test]
    fn grant_encoding(p in policy(), sealed in proptest::option::of(sealed_secret()), f in flips()) {
        let g = CredentialGrant { policy: p, sealed };
        canonical(&g, &f)?;
        let signed = Signed::sign(g, &Keypair::from_seed(&[2; 32]));
        let back = Signed::<CredentialGrant>::decode_bytes(&signed.to_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &signed);
    }

    #[test]
    fn relay_request_encoding(r in relay_request(), f in flips()) {
        canonical(&r, &f)?;
    }

    #[test]
    fn relay_reply_encoding(r in relay_reply(), f in flips()) {
        canonical(&r, &f)?;
    }

    #[test]
    fn relay_record_encoding(r in relay_record(), f in flips()) {
        canonical(&r, &f)?;
    }

    #[test]
    fn accept_call_encoding(
        contract in proptest::collection::vec(any::<u8>(), 0..100),
        input in proptest::collection::vec(any::<u8>(), 0..100),
        salt in any::<[u8; 32]>(),
        credentials in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..4),
        f in flips(),
    ) {
        let call = HireCall::Accept { contract, input, salt, credentials };
        canonical(&call, &f)?;
        let bytes = encoding::encode(&call);
        prop_assert!(bytes.len() <= MAX_CALL_LEN);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = CredentialPolicy::decode_bytes(&bytes);
        let _ = Signed::<CredentialGrant>::decode_bytes(&bytes);
        let _ = RelayRequest::decode_bytes(&bytes);
        let _ = RelayReply::decode_bytes(&bytes);
        let _ = Signed::<RelayRecord>::decode_bytes(&bytes);
    }

    #[test]
    fn seal_opens_and_every_flip_is_refused(
        secret in proptest::collection::vec(any::<u8>(), 1..200),
        sk in any::<[u8; 32]>(),
        seed in any::<[u8; 32]>(),
        hire in hash(),
        at in any::<usize>(),
        mask in 1u8..,
    ) {
        let pk = credential::sealing_public_key(&sk);
        let policy = CredentialPolicy {
            hire_id: hire,
            slot: "crm".into(),
            hosts: vec!["api.example.com".into()],
            methods: vec![],
            path_prefixes: vec![],
            injection: Injection::Basic,
            expires_at: 1,
            max_requests: 1,
            mode: CredentialMode::Sealed,
        };
        let grant = credential::seal(&pk, policy, &secret, &seed).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let opened = credential::open(&grant, &sk, &hire, "crm").map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(opened.as_slice(), secret.as_slice());
        let mut bad = grant.clone();
        if let Some(s) = bad.sealed.as_mut() {
            let n = s.ciphertext.len() + s.enc.len();
            let i = at % n;
            if i < s.enc.len() { s.enc[i] ^= mask } else { s.ciphertext[i - s.enc.len()] ^= mask }
        }
        prop_assert_eq!(credential::open(&bad, &sk, &hire, "crm"), Err(OpenError::Tampered));
    }

    #[test]
    fn normalisation_is_idempotent(raw in "/[a-zA-Z0-9%./~:@!$&'()*+,;=_-]{0,60}") {
        if let Ok(n) = credential::normalize_path(&raw) {
            prop_assert_eq!(credential::normalize_path(&n), Ok(n.clone()));
            prop_assert!(credential::path_matches(&n, &n));
        }
    }
}

/// The incremental verifier applies R10 as entries stream in, including the check that a
/// relay record is carried by one entry only.
#[test]
fn chain_verifier_applies_r10_incrementally() {
    use souk_protocol::rules::Rule;
    use souk_protocol::vectors::credentials::CredentialFixture;
    use souk_protocol::verify::{ChainContext, ChainError, ChainVerifier, Pushed};

    let fx = CredentialFixture::build();
    let ctx = ChainContext::new(&fx.contract, fx.manifest.body());
    let (good, _) = fx.chain(fx.valid_calls(), true);
    let mut v = ChainVerifier::new(ctx.clone());
    for e in good {
        assert_eq!(v.push(e), Ok(Pushed::Appended));
    }
    let (reused, _) = fx.chain(vec![fx.relayed_call(), fx.relayed_call()], false);
    let mut v = ChainVerifier::new(ctx);
    let mut results = reused.into_iter().map(|e| v.push(e));
    assert_eq!(results.next(), Some(Ok(Pushed::Appended)));
    assert_eq!(results.next(), Some(Ok(Pushed::Appended)));
    match results.next() {
        Some(Err(ChainError::Violation(violation))) => {
            assert_eq!((violation.rule, violation.entry), (Rule::R10, Some(2)));
        }
        other => panic!("expected R10 at entry 2, got {other:?}"),
    }
}
