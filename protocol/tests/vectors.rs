//! The checked-in `spec/vectors/` must equal the generator's output, and every vector's
//! stated outcome must be what the library computes.
//!
//! Regenerate with `cargo run -p souk-protocol --features vectors --example gen-vectors`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use souk_protocol::equivocation::EquivocationProof;
use souk_protocol::identity::{Keypair, NodeId};
use souk_protocol::negotiation::Contract;
use souk_protocol::signature::{self, VerifyingKey};
use souk_protocol::verify::{SignatureCheck, verify_bundle_bytes};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors")
}

fn json(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn unhex(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap_or_default()).unwrap_or_else(|e| panic!("{v}: {e}"))
}

#[test]
fn checked_in_vectors_match_the_generator() {
    let generated = souk_protocol::vectors::generate();
    let mut expected = BTreeSet::new();
    for f in &generated {
        let on_disk = std::fs::read(dir().join(&f.path))
            .unwrap_or_else(|e| panic!("spec/vectors/{}: {e} (run gen-vectors)", f.path));
        assert!(
            on_disk == f.contents,
            "spec/vectors/{} differs from the generator: run `cargo run -p souk-protocol --features vectors --example gen-vectors`",
            f.path
        );
        expected.insert(f.path.clone());
    }
    for sub in ["", "bundles"] {
        for entry in std::fs::read_dir(dir().join(sub)).unwrap_or_else(|e| panic!("{e}")) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.is_file() && path.file_name().is_some_and(|n| n != "README.md") {
                let rel = path
                    .strip_prefix(dir())
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                assert!(
                    expected.contains(&rel),
                    "spec/vectors/{rel} is not produced by the generator"
                );
            }
        }
    }
}

#[test]
fn bundle_vectors_have_their_stated_outcome() {
    let index = json("bundles/index.json");
    let items = index.as_array().map(Vec::as_slice).unwrap_or_default();
    assert!(items.len() >= 30);
    for v in items {
        let file = v["file"].as_str().unwrap_or_default();
        let bytes = std::fs::read(dir().join("bundles").join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        for check in [SignatureCheck::Batch, SignatureCheck::OneByOne] {
            let got = verify_bundle_bytes(&bytes, check);
            if v["valid"].as_bool() == Some(true) {
                let r = got.unwrap_or_else(|e| panic!("{file}: {e}"));
                assert_eq!(Some(r.state.as_str()), v["state"].as_str(), "{file}");
                assert_eq!(Some(r.entries), v["entries"].as_u64(), "{file}");
                assert_eq!(
                    r.verdict.map(|x| x.as_str()),
                    v["verdict"].as_str(),
                    "{file}"
                );
            } else {
                let e = got
                    .err()
                    .unwrap_or_else(|| panic!("{file} verified but is invalid"));
                assert_eq!(Some(e.rule.code()), v["rule"].as_str(), "{file}: {e}");
                assert_eq!(e.entry, v["entry"].as_u64(), "{file}");
            }
        }
    }
    // Each rule a bundle can break has at least one vector.
    let rules: BTreeSet<&str> = items.iter().filter_map(|v| v["rule"].as_str()).collect();
    for code in [
        "B1", "M1", "M2", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "R1", "R2", "R3", "R4", "R5",
        "R6", "R7", "R8", "R9", "R10", "A1", "A2", "A3", "A4", "D1", "D2",
    ] {
        assert!(rules.contains(code), "no vector for rule {code}");
    }
}

#[test]
fn identity_vectors() {
    for v in json("identity.json").as_array().into_iter().flatten() {
        let seed: [u8; 32] = unhex(&v["seed"])
            .try_into()
            .unwrap_or_else(|_| panic!("seed"));
        let id = Keypair::from_seed(&seed).id();
        assert_eq!(
            hex::encode(id.as_bytes()),
            v["public_key"].as_str().unwrap_or_default()
        );
        assert_eq!(id.to_string(), v["node_id"].as_str().unwrap_or_default());
        assert_eq!(id.peer_id_text(), v["peer_id"].as_str().unwrap_or_default());
        assert_eq!(
            v["node_id"]
                .as_str()
                .unwrap_or_default()
                .parse::<NodeId>()
                .ok(),
            Some(id)
        );
    }
}

#[test]
fn signature_vectors_verify_and_tampered_copies_do_not() {
    let items = json("signatures.json");
    for v in items.as_array().into_iter().flatten() {
        let seed: [u8; 32] = unhex(&v["signer_seed"])
            .try_into()
            .unwrap_or_else(|_| panic!("seed"));
        let key = VerifyingKey::new(&Keypair::from_seed(&seed).id());
        let input = unhex(&v["signing_input"]);
        let tag = v["tag"].as_str().unwrap_or_default();
        let mut expected_input = tag.as_bytes().to_vec();
        expected_input.push(0);
        expected_input.extend(unhex(&v["body"]));
        assert_eq!(input, expected_input, "{tag}");
        assert_eq!(
            blake3::hash(&input).to_hex().as_str(),
            v["envelope_id"].as_str().unwrap_or_default()
        );
        // The object id is the envelope id, except a manifest's (its stable id).
        let want_id = if v["object"] == "manifest" {
            let m: souk_protocol::manifest::Manifest =
                souk_protocol::encoding::decode(&unhex(&v["body"]), 64 * 1024)
                    .unwrap_or_else(|e| panic!("{e}"));
            m.reference().id().to_hex()
        } else {
            blake3::hash(&input).to_hex().to_string()
        };
        assert_eq!(want_id, v["id"].as_str().unwrap_or_default(), "{tag}");
        let sig: [u8; 64] = unhex(&v["signature"])
            .try_into()
            .unwrap_or_else(|_| panic!("sig"));
        assert!(signature::verify(&key, &input, &sig));
        let mut bad = input.clone();
        bad[0] ^= 1; // another domain tag
        assert!(!signature::verify(&key, &bad, &sig));
    }
}

#[test]
fn invalid_identities_are_rejected() {
    for v in json("identity-invalid.json")
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(text) = v["text"].as_str() {
            assert!(text.parse::<NodeId>().is_err(), "{}", v["name"]);
        } else {
            let raw = unhex(&v["public_key"]);
            assert!(NodeId::from_slice(&raw).is_err(), "{}", v["name"]);
        }
    }
}

/// Every edge-case signature gets its stated verdict from the single and the batch path, alone
/// and after an honest signature in the same batch.
#[test]
fn edge_signatures_get_their_stated_verdict_on_both_paths() {
    let items = json("signatures-edge.json");
    let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
    assert!(items.len() >= 40);
    let (mut valid, mut invalid) = (0, 0);
    for v in items {
        let name = &v["name"];
        let msg = unhex(&v["message"]);
        let sig: [u8; 64] = unhex(&v["signature"])
            .try_into()
            .unwrap_or_else(|_| panic!("sig"));
        let want = v["valid"].as_bool() == Some(true);
        let id = NodeId::from_slice(&unhex(&v["public_key"]));
        assert_eq!(id.is_ok(), v["key_valid"].as_bool() == Some(true), "{name}");
        let got = match id {
            Err(_) => false, // the key rule: no signature by this key is valid
            Ok(id) => {
                let key = VerifyingKey::new(&id);
                let single = signature::verify(&key, &msg, &sig);
                let batch = signature::verify_batch(&key, &[msg.as_slice()], &[sig]);
                assert_eq!(batch.is_ok(), single, "{name}: batch");
                // Behind a valid signature: the batch names position 1 or nothing.
                let honest = provider_signature(&msg);
                let pair = signature::verify_batch(&key, &[msg.as_slice(), &msg], &[honest, sig]);
                assert_eq!(pair, if single { Ok(()) } else { Err(1) }, "{name}: pair");
                single
            }
        };
        assert_eq!(got, want, "{name}");
        if want { valid += 1 } else { invalid += 1 }
    }
    assert!(
        valid >= 20 && invalid >= 15,
        "{valid} valid, {invalid} invalid"
    );
}

fn provider_signature(msg: &[u8]) -> [u8; 64] {
    souk_protocol::vectors::Edge::Honest.sign(&souk_protocol::vectors::provider_key(), msg)
}

/// The JSON profile of the schema fields (`spec/manifest.md`, "JSON texts"): each text gets
/// its stated verdict from the checker alone and, in its signed manifest, from manifest
/// verification under the stated rule; numbers follow correct rounding (Rust's `f64` parser
/// rounds correctly): rejected exactly when the rounded value is infinite.
#[test]
fn manifest_json_vectors_have_their_stated_verdict() {
    use souk_protocol::json::{JsonError, JsonErrorKind};
    use souk_protocol::manifest::{Manifest, ManifestError};
    let items = json("manifest-json.json");
    let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
    assert!(items.len() >= 100);
    for v in items {
        let name = &v["name"];
        let want = v["valid"].as_bool() == Some(true);
        let text = unhex(&v["text_hex"]);
        assert_eq!(
            v["text"].as_str().map(str::as_bytes),
            std::str::from_utf8(&text).ok().map(str::as_bytes),
            "{name}: text and text_hex differ"
        );
        let checked = souk_protocol::json::check_object(&text);
        assert_eq!(checked.is_ok(), want, "{name}: {checked:?}");
        let got = Manifest::verify_offline(&unhex(&v["manifest"]));
        assert_eq!(got.is_ok(), want, "{name}: {got:?}");
        match v["rule"].as_str() {
            None => assert!(want, "{name}: invalid without a rule"),
            Some("M1") => assert!(
                matches!(got, Err(ManifestError::Signed(_))),
                "{name}: {got:?}"
            ),
            Some("M2") => assert!(
                matches!(
                    got,
                    Err(ManifestError::Invalid {
                        field: "input_schema",
                        ..
                    })
                ),
                "{name}: {got:?}"
            ),
            Some(other) => panic!("{name}: unknown rule {other}"),
        }
        if let Some(num) = std::str::from_utf8(&text)
            .ok()
            .and_then(|t| t.strip_prefix(r#"{"type":"number","maximum":"#))
            .and_then(|t| t.strip_suffix('}'))
        {
            // Numbers that are well-formed (accepted, or rejected for their range only):
            // the verdict is whether the correctly rounded double is finite.
            if matches!(
                &checked,
                Ok(())
                    | Err(JsonError {
                        kind: JsonErrorKind::NumberOutOfRange,
                        ..
                    })
            ) {
                let rounded: f64 = num.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(rounded.is_finite(), want, "{name}");
            }
        }
    }
}

#[test]
fn encoding_vectors() {
    use souk_protocol::negotiation::Decline;
    use souk_protocol::signed::Signed;
    for v in json("encoding.json").as_array().into_iter().flatten() {
        let bytes = unhex(&v["bytes"]);
        if v["object"] == "item" {
            // Generic decoding: any item of the subset.
            let got = souk_protocol::encoding::check_item(&bytes, usize::MAX);
            assert_eq!(
                got.is_ok(),
                v["valid"].as_bool() == Some(true),
                "{}",
                v["name"]
            );
            assert_eq!(
                got.err().map(|e| e.kind.to_string()).as_deref(),
                v["error"].as_str(),
                "{}",
                v["name"]
            );
            continue;
        }
        assert_eq!(v["object"], "decline", "{}", v["name"]);
        let got = Signed::<Decline>::decode_bytes(&bytes);
        assert_eq!(
            got.is_ok(),
            v["valid"].as_bool() == Some(true),
            "{}",
            v["name"]
        );
        if let Ok(d) = got {
            // A valid decline re-encodes to its bytes, `current` present iff superseded.
            assert_eq!(d.to_bytes(), bytes, "{}", v["name"]);
            assert_eq!(
                d.body().current.is_some(),
                d.body().reason == souk_protocol::negotiation::DeclineReason::Superseded
            );
        }
    }
}

#[test]
fn contract_and_equivocation_vectors() {
    use souk_protocol::manifest::Manifest;
    for v in json("contract.json").as_array().into_iter().flatten() {
        let c = Contract::decode_bytes(&unhex(&v["contract"])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.hire_id().to_hex(),
            v["hire_id"].as_str().unwrap_or_default()
        );
        let m = Manifest::verify_offline(&unhex(&v["manifest"])).unwrap_or_else(|e| panic!("{e}"));
        c.verify(&m).unwrap_or_else(|e| panic!("{e}"));
    }
    for v in json("equivocation.json").as_array().into_iter().flatten() {
        let got = EquivocationProof::verify_bytes(&unhex(&v["proof"]));
        match v["rule"].as_str() {
            None => assert_eq!(got.map(|e| e.seq).ok(), v["seq"].as_u64(), "{}", v["name"]),
            Some(rule) => assert_eq!(
                got.err().map(|e| e.rule.code()),
                Some(rule),
                "{}",
                v["name"]
            ),
        }
    }
    for v in json("commitment.json").as_array().into_iter().flatten() {
        let salt: [u8; 32] = unhex(&v["salt"])
            .try_into()
            .unwrap_or_else(|_| panic!("salt"));
        let c = souk_protocol::receipt::commit(&salt, &unhex(&v["payload"]));
        assert_eq!(c.to_hex(), v["commitment"].as_str().unwrap_or_default());
    }
}

fn text(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn arr32(v: &serde_json::Value) -> [u8; 32] {
    unhex(v)
        .try_into()
        .unwrap_or_else(|_| panic!("{v}: not 32 bytes"))
}

fn hash_of(v: &serde_json::Value) -> souk_protocol::hash::Hash {
    souk_protocol::hash::Hash::from_hex(text(v)).unwrap_or_else(|| panic!("{v}: not a hash"))
}

#[test]
fn credential_vectors() {
    use souk_protocol::credential::{
        self, CredentialPolicy, Denial, DenialCode, RelayReply, RelayRequest, SignedGrant,
        SignedRelayRecord,
    };
    use souk_protocol::encoding;
    use souk_protocol::hiring::{HireCall, MAX_CALL_LEN};
    use souk_protocol::manifest::{CredentialSlot, Manifest};
    use souk_protocol::receipt::{EntryKind, SignedEntry};

    let v = json("credentials.json");
    let client = Keypair::from_seed(&arr32(&v["keys"]["client_seed"])).id();
    let sealing_secret = arr32(&v["keys"]["sealing_secret"]);
    assert_eq!(
        credential::sealing_public_key(&sealing_secret),
        arr32(&v["keys"]["sealing_public"])
    );
    assert_eq!(unhex(&v["suite"]["info"]), credential::HPKE_INFO);

    // Policies: decoding outcome and hash.
    for p in v["policies"].as_array().into_iter().flatten() {
        let got = CredentialPolicy::decode_bytes(&unhex(&p["policy"]));
        assert_eq!(
            got.is_ok(),
            p["valid"].as_bool() == Some(true),
            "{}",
            p["name"]
        );
        if let Ok(policy) = got {
            assert_eq!(policy.policy_hash().to_hex(), text(&p["policy_hash"]));
        }
    }
    for p in v["policy_checks"].as_array().into_iter().flatten() {
        let slot: CredentialSlot =
            encoding::decode(&unhex(&p["slot"]), 1 << 16).unwrap_or_else(|e| panic!("{e}"));
        let policy =
            CredentialPolicy::decode_bytes(&unhex(&p["policy"])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            policy.validate_for(&slot).err().map(|e| e.code()),
            p["error"].as_str(),
            "{}",
            p["name"]
        );
    }

    // The seal is reproducible from its inputs.
    let s = &v["seal"];
    let policy =
        CredentialPolicy::decode_bytes(&unhex(&s["policy"])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(policy.policy_hash().to_hex(), text(&s["policy_hash"]));
    let hire = hash_of(&s["hire_id"]);
    assert_eq!(
        credential::seal_aad(&hire, text(&s["slot"]), &policy.policy_hash()),
        unhex(&s["aad"])
    );
    let grant = credential::seal(
        &arr32(&s["recipient_public"]),
        policy,
        &unhex(&s["secret"]),
        &arr32(&s["ephemeral_seed"]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(encoding::encode(&grant), unhex(&s["grant_body"]));
    let sealed = grant.sealed.as_ref().unwrap_or_else(|| panic!("sealed"));
    assert_eq!(sealed.enc.to_vec(), unhex(&s["enc"]));
    assert_eq!(sealed.ciphertext, unhex(&s["ciphertext"]));
    let env =
        SignedGrant::decode_bytes(&unhex(&s["grant_envelope"])).unwrap_or_else(|e| panic!("{e}"));
    env.verify(&client).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(env.id().to_hex(), text(&s["grant_id"]));
    assert_eq!(env.body(), &grant);

    for o in v["open"].as_array().into_iter().flatten() {
        let g = SignedGrant::decode_bytes(&unhex(&o["grant_envelope"]))
            .unwrap_or_else(|e| panic!("{e}"));
        g.verify(&client).unwrap_or_else(|e| panic!("{e}"));
        let got = credential::open(
            g.body(),
            &arr32(&o["recipient_secret"]),
            &hash_of(&o["expected_hire"]),
            text(&o["expected_slot"]),
        );
        match &got {
            Ok(secret) => {
                assert_eq!(text(&o["result"]), "ok", "{}", o["name"]);
                assert_eq!(secret.to_vec(), unhex(&o["secret"]), "{}", o["name"]);
            }
            Err(e) => assert_eq!(e.code(), text(&o["result"]), "{}", o["name"]),
        }
    }

    // The provider's checks on accept.
    let contract = Contract::decode_bytes(&unhex(&v["contract"])).unwrap_or_else(|e| panic!("{e}"));
    let manifest =
        Manifest::verify_offline(&unhex(&v["manifest"])).unwrap_or_else(|e| panic!("{e}"));
    contract.verify(&manifest).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(contract.hire_id().to_hex(), text(&v["hire_id"]));
    let now = v["accept_now"].as_u64().unwrap_or_default();
    for a in v["accept_checks"].as_array().into_iter().flatten() {
        let grants: Vec<Vec<u8>> = a["grants"]
            .as_array()
            .into_iter()
            .flatten()
            .map(unhex)
            .collect();
        let got = credential::check_grants(&grants, &contract, manifest.body(), now);
        assert_eq!(
            got.err().map_or("ok", |e| e.code()),
            text(&a["result"]),
            "{}",
            a["name"]
        );
    }
    for a in v["accept_calls"].as_array().into_iter().flatten() {
        let bytes = unhex(&a["call"]);
        match encoding::decode::<HireCall>(&bytes, MAX_CALL_LEN) {
            Ok(HireCall::Accept { credentials, .. }) => {
                assert_eq!(Some(credentials.len() as u64), a["credentials"].as_u64());
                let checked =
                    credential::check_grants(&credentials, &contract, manifest.body(), now);
                assert!(checked.is_ok(), "{}", a["name"]);
            }
            other => panic!("{}: {other:?}", a["name"]),
        }
    }

    for p in v["paths"].as_array().into_iter().flatten() {
        let got = credential::normalize_path(text(&p["input"]));
        assert_eq!(
            got.as_deref().ok(),
            p["normalized"].as_str(),
            "{}",
            p["input"]
        );
        assert_eq!(
            got.err().map(|e| e.code()),
            p["error"].as_str(),
            "{}",
            p["input"]
        );
    }
    let crm = CredentialPolicy::decode_bytes(&unhex(&v["policies"][0]["policy"]))
        .unwrap_or_else(|e| panic!("{e}"));
    for r in v["requests"].as_array().into_iter().flatten() {
        let got = crm.check_request(
            text(&r["method"]),
            text(&r["host"]),
            text(&r["path"]),
            r["now"].as_u64().unwrap_or_default(),
            r["used"].as_u64().unwrap_or_default(),
        );
        assert_eq!(
            got.err().map_or("ok", |d| d.as_str()),
            text(&r["result"]),
            "{r}"
        );
    }
    let denials = v["denials"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    assert_eq!(denials.len(), DenialCode::ALL.len());
    for d in denials {
        let code = DenialCode::parse(text(&d["error"])).unwrap_or_else(|| panic!("{d}"));
        assert_eq!(Some(code.code()), d["code"].as_u64());
        assert_eq!(
            Some(u64::from(code.http_status())),
            d["http_status"].as_u64()
        );
        let parsed =
            Denial::from_json(text(&d["json"]).as_bytes()).unwrap_or_else(|| panic!("{d}"));
        assert_eq!(parsed.code, code);
        assert_eq!(Some(parsed.retry), d["retry"].as_bool());
        assert_eq!(parsed.to_json(), text(&d["json"]).as_bytes());
    }

    // Relay messages and the client's record.
    let r = &v["relay"];
    let request =
        RelayRequest::decode_bytes(&unhex(&r["request"])).unwrap_or_else(|e| panic!("{e}"));
    request.validate().unwrap_or_else(|e| panic!("{e}"));
    let reply = RelayReply::decode_bytes(&unhex(&r["response"])).unwrap_or_else(|e| panic!("{e}"));
    let RelayReply::Response {
        status,
        body,
        record,
        ..
    } = &reply
    else {
        panic!("response expected");
    };
    assert_eq!(body, &unhex(&r["response_body"]));
    let rec = credential::check_record(record, &client, &request, *status, body)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rec.to_bytes(), unhex(&r["record"]["envelope"]));
    assert!(matches!(
        RelayReply::decode_bytes(&unhex(&r["denied"])),
        Ok(RelayReply::Denied {
            code: DenialCode::ClientOffline,
            retry: true,
            ..
        })
    ));
    SignedRelayRecord::decode_bytes(&unhex(&r["record"]["envelope"]))
        .unwrap_or_else(|e| panic!("{e}"))
        .verify(&client)
        .unwrap_or_else(|e| panic!("{e}"));

    for e in v["entries"].as_array().into_iter().flatten() {
        let entry =
            SignedEntry::decode_bytes(&unhex(&e["envelope"])).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(entry.id().to_hex(), text(&e["id"]));
        let EntryKind::NetworkCall(call) = &entry.body().kind else {
            panic!("{}: not a network call", e["name"]);
        };
        assert_eq!(call.mode.as_str(), text(&e["mode"]));
        assert_eq!(call.denial.map(|d| d.as_str()), e["denial"].as_str());
    }
}

#[test]
fn manifest_id_vectors() {
    use souk_protocol::hash::Domain;
    use souk_protocol::manifest::{Manifest, ManifestRef};
    let items = json("manifest-id.json");
    let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
    assert!(items.len() >= 4);
    for v in items {
        let name = text(&v["name"]);
        let m: Manifest = souk_protocol::encoding::decode(&unhex(&v["body"]), 64 * 1024)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // The terms are the body without seq, issued-at and expires-at, and 14 items long.
        let terms = unhex(&v["terms"]);
        assert_eq!(m.terms_bytes(), terms, "{name}");
        assert_eq!(terms[0], 0x8e, "{name}");
        let digest = blake3::Hasher::new()
            .update(b"souk/v1/manifest-terms\0")
            .update(&terms)
            .finalize();
        assert_eq!(digest.to_hex().as_str(), text(&v["terms_digest"]), "{name}");
        let reference: ManifestRef = souk_protocol::encoding::decode(&unhex(&v["reference"]), 256)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(reference, m.reference(), "{name}");
        let id = blake3::Hasher::new()
            .update(b"souk/v1/manifest-id\0")
            .update(&unhex(&v["reference"]))
            .finalize();
        assert_eq!(id.to_hex().as_str(), text(&v["id"]), "{name}");
        assert_eq!(reference.id().to_hex(), text(&v["id"]), "{name}");
        assert_eq!(reference.handle_string(), text(&v["handle"]), "{name}");
        assert_eq!(
            Domain::Manifest.hash(&unhex(&v["body"])).to_hex(),
            text(&v["envelope_id"]),
            "{name}"
        );
    }
    // A re-announcement keeps the id and changes the envelope id; a change of terms or name
    // changes the id.
    assert_eq!(items[0]["id"], items[1]["id"]);
    assert_ne!(items[0]["envelope_id"], items[1]["envelope_id"]);
    assert_ne!(items[1]["id"], items[2]["id"]);
    assert_ne!(items[0]["id"], items[3]["id"]);
}

#[test]
fn outcome_vectors_have_their_stated_outcome() {
    use souk_protocol::outcome::OutcomeRecord;
    let items = json("outcomes.json");
    let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut rules = BTreeSet::new();
    let mut valid = 0;
    for v in items {
        let name = text(&v["name"]);
        let bytes = unhex(&v["record"]);
        assert_eq!(Some(bytes.len() as u64), v["size"].as_u64(), "{name}");
        match OutcomeRecord::verify_bytes(&bytes) {
            Ok(o) => {
                assert_eq!(
                    v["valid"].as_bool(),
                    Some(true),
                    "{name} verified but is invalid"
                );
                valid += 1;
                let w = &v["outcome"];
                let record_id = blake3::Hasher::new()
                    .update(b"souk/v1/outcome\0")
                    .update(&bytes)
                    .finalize();
                assert_eq!(record_id.to_hex().as_str(), text(&w["record_id"]), "{name}");
                assert_eq!(o.record_id.to_hex(), text(&w["record_id"]), "{name}");
                assert_eq!(o.hire_id.to_hex(), text(&w["hire_id"]), "{name}");
                assert_eq!(o.manifest_id.to_hex(), text(&w["manifest_id"]), "{name}");
                assert_eq!(o.agent.handle_string(), text(&w["handle"]), "{name}");
                assert_eq!(o.provider.to_string(), text(&w["provider"]), "{name}");
                assert_eq!(o.client.to_string(), text(&w["client"]), "{name}");
                assert_eq!(o.end.to_string(), text(&w["end"]), "{name}");
                assert_eq!(o.verdict.as_str(), text(&w["verdict"]), "{name}");
                assert_eq!(o.reason, text(&w["reason"]), "{name}");
                assert_eq!(Some(o.entries), w["entries"].as_u64(), "{name}");
                assert_eq!(o.head.to_hex(), text(&w["head"]), "{name}");
                assert_eq!(Some(o.settled_at), w["settled_at"].as_u64(), "{name}");
                assert_eq!(
                    format!("{} {}", o.price.amount, o.price.currency),
                    text(&w["price"]),
                    "{name}"
                );
                assert_eq!(Some(o.deadline), w["deadline"].as_u64(), "{name}");
            }
            Err(e) => {
                assert_eq!(Some(e.rule.code()), v["rule"].as_str(), "{name}: {e}");
                rules.insert(e.rule.code());
            }
        }
    }
    assert!(valid >= 3, "{valid} valid outcome vectors");
    for code in ["O1", "O2", "O3", "O4", "O5", "O6", "O7", "O8", "O9", "O10"] {
        assert!(rules.contains(code), "no outcome vector for rule {code}");
    }
}
