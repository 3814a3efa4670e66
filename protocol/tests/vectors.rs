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
        "R6", "R7", "R8", "R9", "A1", "A2", "A3", "A4", "D1", "D2",
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
            v["id"].as_str().unwrap_or_default()
        );
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

/// Rule M2's number and nesting boundary: the stated verdict is what manifest verification
/// gives, and for numbers it is what correct rounding gives (Rust's `f64` parser rounds
/// correctly): rejected exactly when the rounded value is infinite.
#[test]
fn json_number_vectors_follow_correct_rounding() {
    use souk_protocol::manifest::{Manifest, ManifestError};
    let items = json("manifest-json-numbers.json");
    let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
    assert!(items.len() >= 15);
    for v in items {
        let name = &v["name"];
        let want = v["valid"].as_bool() == Some(true);
        let got = Manifest::verify_offline(&unhex(&v["manifest"]));
        assert_eq!(got.is_ok(), want, "{name}: {got:?}");
        if !want {
            assert!(
                matches!(
                    got,
                    Err(ManifestError::Invalid {
                        field: "input_schema",
                        ..
                    })
                ),
                "{name}: {got:?}"
            );
        }
        let text = v["text"].as_str().unwrap_or_default();
        if let Some(num) = text
            .strip_prefix(r#"{"type":"number","maximum":"#)
            .and_then(|t| t.strip_suffix('}'))
        {
            let rounded: f64 = num.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(rounded.is_finite(), want, "{name}");
        }
    }
}

#[test]
fn encoding_vectors() {
    use souk_protocol::negotiation::Decline;
    use souk_protocol::signed::Signed;
    for v in json("encoding.json").as_array().into_iter().flatten() {
        let got = Signed::<Decline>::decode_bytes(&unhex(&v["bytes"]));
        assert_eq!(
            got.is_ok(),
            v["valid"].as_bool() == Some(true),
            "{}",
            v["name"]
        );
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
