//! Property tests: every wire type round-trips through its canonical encoding, and no
//! mutation of a valid encoding decodes to something that re-encodes differently.

use proptest::prelude::*;
use souk_protocol::bundle::Bundle;
use souk_protocol::credential::DenialCode;
use souk_protocol::encoding::{self, Canonical};
use souk_protocol::hash::Hash;
use souk_protocol::hire::Verdict;
use souk_protocol::identity::{Keypair, NodeId};
use souk_protocol::manifest::{CredentialSlot, Injection, Limits, Manifest, Pricing, Tool};
use souk_protocol::negotiation::{
    Accept, Counter, Decline, DeclineReason, HireRequest, Offer, Price, Terms,
};
use souk_protocol::receipt::{
    Attestation, CallMode, Canceler, Disclosure, EntryKind, FailureCode, NetworkCall, ReceiptEntry,
    Usage,
};
use souk_protocol::signed::{Signed, SignedBody};

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

fn node() -> impl Strategy<Value = NodeId> {
    any::<[u8; 32]>().prop_map(|s| Keypair::from_seed(&s).id())
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(".{{0,{}}}", max / 4))
        .unwrap_or_else(|_| unreachable!())
}

fn price() -> impl Strategy<Value = Price> {
    ("[A-Z]{3,12}", any::<u64>()).prop_map(|(currency, amount)| Price { currency, amount })
}

fn terms() -> impl Strategy<Value = Terms> {
    (price(), any::<u64>()).prop_map(|(price, deadline)| Terms { price, deadline })
}

fn injection() -> impl Strategy<Value = Injection> {
    prop_oneof![
        ("[a-z-]{1,20}", "[A-Za-z ]{0,10}")
            .prop_map(|(name, prefix)| Injection::Header { name, prefix }),
        Just(Injection::Basic),
        "[a-z_]{1,20}".prop_map(|param| Injection::Query { param }),
    ]
}

fn manifest() -> impl Strategy<Value = Manifest> {
    let head = (
        node(),
        "[a-z0-9-]{1,64}",
        any::<u64>(),
        proptest::collection::vec("[a-z]{1,10}", 0..5),
        text(200),
        text(200),
        text(200),
    );
    let tail = (
        proptest::collection::vec(
            ("[a-z]{1,10}", text(40)).prop_map(|(name, description)| Tool { name, description }),
            0..4,
        ),
        proptest::collection::vec("[a-z.]{1,20}", 0..4),
        proptest::collection::vec(
            (
                "[a-z]{1,10}",
                proptest::collection::vec("[a-z.]{1,20}", 0..3),
                injection(),
            )
                .prop_map(|(name, hosts, injection)| CredentialSlot {
                    name,
                    hosts,
                    injection,
                }),
            0..3,
        ),
        ("[A-Z]{3,12}", any::<u64>(), any::<u64>()).prop_map(|(currency, per_hire, per_hour)| {
            Pricing {
                currency,
                per_hire,
                per_hour,
            }
        }),
        (
            any::<u64>(),
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
        )
            .prop_map(|(d, c, i, m, p, s)| Limits {
                max_duration_ms: d,
                max_concurrency: c,
                max_input_bytes: i,
                memory_bytes: m,
                max_processes: p,
                isolation: if s {
                    souk_protocol::manifest::Isolation::Sandbox
                } else {
                    souk_protocol::manifest::Isolation::None
                },
            }),
        (hash(), any::<[u8; 32]>(), any::<u64>(), any::<u64>()),
    );
    (head, tail).prop_map(
        |(
            (provider, name, seq, capabilities, description, input_schema, output_schema),
            (
                tools,
                hosts,
                credentials,
                pricing,
                limits,
                (runtime_digest, sealing_key, issued_at, expires_at),
            ),
        )| Manifest {
            provider,
            name,
            seq,
            capabilities,
            description,
            input_schema,
            output_schema,
            tools,
            hosts,
            credentials,
            pricing,
            limits,
            runtime_digest,
            sealing_key,
            issued_at,
            expires_at,
        },
    )
}

fn entry_kind() -> impl Strategy<Value = EntryKind> {
    prop_oneof![
        hash().prop_map(|runtime_digest| EntryKind::Started { runtime_digest }),
        Just(EntryKind::Decision),
        text(100).prop_map(|tool| EntryKind::ToolCall { tool }),
        (
            text(100),
            "[A-Z]{1,8}",
            text(200),
            0u32..1000,
            any::<u64>(),
            any::<u64>(),
            hash(),
            hash(),
            (
                any::<u64>(),
                proptest::option::of("[a-z]{1,20}"),
                prop_oneof![
                    Just(CallMode::None),
                    Just(CallMode::Sealed),
                    Just(CallMode::Relayed)
                ],
                proptest::option::of(
                    (0usize..DenialCode::ALL.len()).prop_map(|i| DenialCode::ALL[i].0)
                ),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
            )
        )
            .prop_map(
                |(
                    host,
                    method,
                    path,
                    status,
                    request_bytes,
                    response_bytes,
                    request_hash,
                    response_hash,
                    (duration_ms, slot, mode, denial, relay_record),
                )| {
                    EntryKind::NetworkCall(NetworkCall {
                        host,
                        method,
                        path,
                        status,
                        request_bytes,
                        response_bytes,
                        request_hash,
                        response_hash,
                        duration_ms,
                        slot,
                        mode,
                        denial,
                        relay_record,
                    })
                }
            ),
        Just(EntryKind::InputRequested),
        Just(EntryKind::InputProvided),
        hash().prop_map(|state_hash| EntryKind::Checkpoint { state_hash }),
        (hash(), usage())
            .prop_map(|(output_hash, usage)| EntryKind::Completed { output_hash, usage }),
        (0usize..6, text(100), usage()).prop_map(|(i, message, usage)| EntryKind::Failed {
            code: [
                FailureCode::AgentCrashed,
                FailureCode::ProtocolViolation,
                FailureCode::OutputTooLarge,
                FailureCode::AgentError,
                FailureCode::Internal,
                FailureCode::ResumeFailed
            ][i],
            message,
            usage,
        }),
        (any::<bool>(), text(100), usage()).prop_map(|(c, reason, usage)| EntryKind::Canceled {
            by: if c {
                Canceler::Client
            } else {
                Canceler::Provider
            },
            reason,
            usage
        }),
        (any::<u64>(), usage())
            .prop_map(|(deadline, usage)| EntryKind::Expired { deadline, usage }),
    ]
}

fn usage() -> impl Strategy<Value = Usage> {
    (
        "[A-Z]{0,12}",
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(currency, amount, wall_ms, steps, network_calls)| Usage {
            price: Price { currency, amount },
            wall_ms,
            steps,
            network_calls,
        })
}

fn entry() -> impl Strategy<Value = ReceiptEntry> {
    (
        hash(),
        any::<u64>(),
        hash(),
        any::<u64>(),
        entry_kind(),
        proptest::option::of(hash()),
    )
        .prop_map(
            |(hire_id, seq, prev, time, kind, commitment)| ReceiptEntry {
                hire_id,
                seq,
                prev,
                time,
                kind,
                commitment,
            },
        )
}

fn round_trip<T: Canonical + PartialEq + std::fmt::Debug>(v: &T) -> Result<(), TestCaseError> {
    let bytes = encoding::encode(v);
    let back: T =
        encoding::decode(&bytes, usize::MAX).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(&back, v);
    Ok(())
}

/// Flipping any one byte either fails to decode or decodes to a value whose encoding is the
/// mutated bytes (so there is never a second encoding of one value).
fn mutations_stay_canonical<T: Canonical>(
    v: &T,
    flips: &[(usize, u8)],
) -> Result<(), TestCaseError> {
    let bytes = encoding::encode(v);
    for (pos, mask) in flips {
        let mut m = bytes.clone();
        let i = pos % m.len();
        m[i] ^= mask.max(&1);
        if let Ok(d) = encoding::decode::<T>(&m, usize::MAX) {
            prop_assert_eq!(encoding::encode(&d), m);
        }
    }
    Ok(())
}

fn signed_round_trip<T: SignedBody + Clone + PartialEq + std::fmt::Debug>(
    body: T,
    key: &Keypair,
) -> Result<(), TestCaseError> {
    let s = Signed::sign(body, key);
    let back =
        Signed::<T>::decode_bytes(&s.to_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(back.id(), s.id());
    prop_assert!(back.verify(&key.id()).is_ok());
    prop_assert_eq!(&back, &s);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn manifest_round_trips(m in manifest(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 16)) {
        round_trip(&m)?;
        mutations_stay_canonical(&m, &flips)?;
        signed_round_trip(m, &Keypair::from_seed(&[5; 32]))?;
    }

    #[test]
    fn entry_round_trips(e in entry(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 32)) {
        round_trip(&e)?;
        mutations_stay_canonical(&e, &flips)?;
        signed_round_trip(e, &Keypair::from_seed(&[6; 32]))?;
    }

    #[test]
    fn negotiation_round_trips(
        client in node(), provider in node(), ids in (hash(), hash(), hash()), budget in price(), t in terms(),
        times in (any::<u64>(), any::<u64>(), any::<u64>()), nonce in any::<[u8; 16]>(), reason in text(100), code in 0usize..7,
    ) {
        let req = HireRequest { manifest_id: ids.0, client, input_commitment: ids.1, input_size: times.2, budget, deadline: times.0, nonce, created_at: times.1 };
        let offer = Offer { request_id: ids.0, provider, terms: t.clone(), valid_until: times.0, created_at: times.1 };
        let counter = Counter { request_id: ids.1, provider, terms: t, valid_until: times.0, reason: reason.clone(), created_at: times.2 };
        let decline = match DeclineReason::ALL[code].0 {
            DeclineReason::Superseded => Decline::superseded(ids.2, provider, ids.0, reason, times.0),
            r => Decline::new(ids.2, provider, r, reason, times.0),
        };
        let accept = Accept { request_id: ids.0, proposal_id: ids.1, client, created_at: times.2 };
        round_trip(&req)?;
        round_trip(&offer)?;
        round_trip(&counter)?;
        round_trip(&decline)?;
        round_trip(&accept)?;
        let k = Keypair::from_seed(&[8; 32]);
        signed_round_trip(req, &k)?;
        signed_round_trip(decline, &k)?;
    }

    #[test]
    fn attestation_disclosure_bundle_round_trip(
        ids in (hash(), hash()), seq in any::<u64>(), accepted in any::<bool>(), reason in text(100), at in any::<u64>(),
        salt in any::<[u8; 32]>(), payload in proptest::collection::vec(any::<u8>(), 0..200),
        blobs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 0..5),
    ) {
        let a = Attestation { hire_id: ids.0, head_seq: seq, head_id: ids.1, verdict: if accepted { Verdict::Accepted } else { Verdict::Disputed }, reason, created_at: at };
        round_trip(&a)?;
        let d = Disclosure { seq, salt, payload };
        round_trip(&d)?;
        let b = Bundle { manifest: blobs.first().cloned().unwrap_or_default(), contract: vec![1, 2, 3], entries: blobs, attestation: accepted.then(|| vec![9]), disclosures: vec![d] };
        round_trip(&b)?;
    }
}
