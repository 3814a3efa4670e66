//! The published Ed25519 edge-case vectors (`protocol/tests/data/ed25519/README.md`) against
//! both paths of the signature rule.
//!
//! Each vector is checked at two layers: the ZIP-215 equation alone (any key that decodes), and
//! the full Souk verdict (the key must also be a valid [`NodeId`]). The expected outcome of
//! each is derived from the vector's own description and the rules of `spec/encoding.md`, not
//! from running a library; the single and batch paths must both give it.

use std::collections::BTreeMap;

use ed25519_zebra::VerificationKey;

use super::{VerifyingKey, batch_holds, equation_holds, verify, verify_batch};
use crate::identity::NodeId;

fn data(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/data/ed25519/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn unhex<const N: usize>(v: &serde_json::Value) -> [u8; N] {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    let mut out = [0u8; N];
    assert_eq!(s.len(), 2 * N, "{s}");
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    out
}

/// One vector, decoded.
struct Case {
    name: String,
    key: [u8; 32],
    msg: Vec<u8>,
    sig: [u8; 64],
    /// Expected: the key is a valid NodeId (`spec/identity.md`).
    key_valid: bool,
    /// Expected: the ZIP-215 equation holds (key merely decoded).
    equation: bool,
}

impl Case {
    /// Expected full verdict: both rules.
    fn valid(&self) -> bool {
        self.key_valid && self.equation
    }
}

/// Runs every case through both layers and both paths; returns how many pass the equation
/// alone and how many are valid Souk signatures.
fn check(cases: &[Case]) -> (usize, usize) {
    let mut by_key: BTreeMap<[u8; 32], Vec<&Case>> = BTreeMap::new();
    for c in cases {
        by_key.entry(c.key).or_default().push(c);
        let decoded = VerificationKey::try_from(c.key)
            .unwrap_or_else(|e| panic!("{}: key does not decode: {e}", c.name));
        // The equation layer, single and batch.
        assert_eq!(
            equation_holds(&decoded, &c.msg, &c.sig),
            c.equation,
            "{}: equation, single",
            c.name
        );
        let batch = batch_holds(&decoded, &[c.msg.as_slice()], &[c.sig]);
        assert_eq!(batch.is_ok(), c.equation, "{}: equation, batch", c.name);
        // The key rule.
        let id = NodeId::from_bytes(&c.key);
        assert_eq!(id.is_ok(), c.key_valid, "{}: key rule {id:?}", c.name);
        // The full verdict, single and batch.
        if let Ok(id) = id {
            let key = VerifyingKey::new(&id);
            assert_eq!(
                verify(&key, &c.msg, &c.sig),
                c.valid(),
                "{}: single",
                c.name
            );
            let batch = verify_batch(&key, &[c.msg.as_slice()], &[c.sig]);
            assert_eq!(batch.is_ok(), c.valid(), "{}: batch", c.name);
        }
    }
    // Per key, every vector in one batch (and the batch of all but the first): the batch path
    // names the first vector whose single check fails.
    for (key, group) in &by_key {
        let Ok(decoded) = VerificationKey::try_from(*key) else {
            continue;
        };
        let msgs: Vec<&[u8]> = group.iter().map(|c| c.msg.as_slice()).collect();
        let sigs: Vec<[u8; 64]> = group.iter().map(|c| c.sig).collect();
        for skip in [0, 1] {
            let want = group[skip..]
                .iter()
                .position(|c| !c.equation)
                .map_or(Ok(()), Err);
            assert_eq!(batch_holds(&decoded, &msgs[skip..], &sigs[skip..]), want);
            if let Ok(id) = NodeId::from_bytes(key) {
                let want = group[skip..]
                    .iter()
                    .position(|c| !c.valid())
                    .map_or(Ok(()), Err);
                let got = verify_batch(&VerifyingKey::new(&id), &msgs[skip..], &sigs[skip..]);
                assert_eq!(got, want);
            }
        }
    }
    (
        cases.iter().filter(|c| c.equation).count(),
        cases.iter().filter(|c| c.valid()).count(),
    )
}

/// C2SP CCTV `ed25519vectors.json`: 914 signatures with low-order, mixed-order and
/// non-canonical `A` and `R`.
///
/// Expected, from each vector's flags: the key is a valid NodeId exactly when no `A` flag is
/// set (a flagged `A` is of small order, has a small-order component, or is a non-canonical
/// encoding, which only small-order points have). The signature was computed as
/// `S = k·a + r` with `k` over the bytes as given, so the cofactored equation holds (the
/// low-order components of `R` and `k·A` vanish under `[8]`), except for `reencoded_k`
/// vectors, whose `k` was computed over a re-encoding of a non-canonical point: then the
/// equation holds only if that `k` is irrelevant, i.e. when `A` is of small order (`a = 0`).
#[test]
fn cctv_ed25519_vectors() {
    let vectors = data("cctv-ed25519vectors.json");
    let items = vectors.as_array().map(Vec::as_slice).unwrap_or_default();
    assert_eq!(items.len(), 914);
    let cases: Vec<Case> = items
        .iter()
        .map(|v| {
            let flags: Vec<&str> = v["flags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .collect();
            let has = |f: &str| flags.contains(&f);
            let any_a_flag = flags.iter().any(|f| f.ends_with("_A"));
            Case {
                name: format!("cctv #{} {flags:?}", v["number"]),
                key: unhex(&v["key"]),
                msg: v["msg"].as_str().unwrap_or_default().as_bytes().to_vec(),
                sig: unhex(&v["sig"]),
                key_valid: !any_a_flag,
                // A re-encoded k breaks the equation unless a = 0 (A of small order).
                equation: !has("reencoded_k") || has("low_order_A"),
            }
        })
        .collect();
    let (equation, valid) = check(&cases);
    eprintln!(
        "CCTV ed25519vectors: {} vectors; ZIP-215 equation holds for {equation}; valid Souk \
         signatures {valid} (single and batch agree on all)",
        cases.len()
    );
    // 28 vectors have a valid key, 6 of them reencoded_k; the 88 reencoded_k vectors whose `A`
    // has a prime-order component fail the equation.
    assert_eq!((equation, valid), (826, 22));
}

/// "Taming the many EdDSAs" (ed25519-speccheck) `cases.json`, 12 cases. Expected values from
/// its condition table (README): cases 0-5 and 8-11 have a small or mixed-order `A` (key
/// rule: invalid); 6 and 7 have `S >= L` (invalid). For the equation alone, ZIP-215 accepts
/// every case with `S < L` except 8, whose `k` was computed over a re-encoded `R` while `A` has
/// a prime-order component (the table's cofactored column with `S < L` required and `k` over
/// the bytes as given: the paper's "Zebra" row).
#[test]
fn speccheck_cases() {
    let vectors = data("speccheck-cases.json");
    let items = vectors.as_array().map(Vec::as_slice).unwrap_or_default();
    assert_eq!(items.len(), 12);
    const KEY_VALID: [bool; 12] = [
        false, false, false, false, false, false, true, true, false, false, false, false,
    ];
    const EQUATION: [bool; 12] = [
        true, true, true, true, true, true, false, false, false, true, true, true,
    ];
    let cases: Vec<Case> = items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let msg = v["message"].as_str().unwrap_or_default();
            let bytes: Vec<u8> = (0..msg.len() / 2)
                .map(|j| u8::from_str_radix(&msg[2 * j..2 * j + 2], 16).unwrap_or(0))
                .collect();
            Case {
                name: format!("speccheck case {i}"),
                key: unhex(&v["pub_key"]),
                msg: bytes,
                sig: unhex(&v["signature"]),
                key_valid: KEY_VALID[i],
                equation: EQUATION[i],
            }
        })
        .collect();
    let (equation, valid) = check(&cases);
    eprintln!(
        "speccheck cases: {} cases; ZIP-215 equation holds for {equation}; valid Souk \
         signatures {valid} (single and batch agree on all)",
        cases.len()
    );
    assert_eq!((equation, valid), (9, 0));
}

/// Across chunk boundaries the batch path names the first invalid signature overall, and a
/// length mismatch (a caller bug) fails closed.
#[test]
fn batch_reports_the_first_invalid_signature_across_chunks() {
    use crate::vectors::{Edge, provider_key};
    let key = provider_key();
    let vk = VerifyingKey::new(&key.id());
    let n = super::CHUNK + 5;
    let msgs: Vec<Vec<u8>> = (0..n as u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    let mut sigs: Vec<[u8; 64]> = msgs.iter().map(|m| Edge::Honest.sign(&key, m)).collect();
    assert_eq!(verify_batch(&vk, &refs, &sigs), Ok(()));
    // Valid edge signatures anywhere change nothing.
    sigs[7] = Edge::TorsionR(1).sign(&key, &msgs[7]);
    sigs[super::CHUNK + 1] = Edge::NonCanonicalR(3).sign(&key, &msgs[super::CHUNK + 1]);
    assert_eq!(verify_batch(&vk, &refs, &sigs), Ok(()));
    // Invalid ones in both chunks: the first overall; then the one in the second chunk.
    let late = super::CHUNK + 3;
    sigs[late] = Edge::TorsionRStaleK(2).sign(&key, &msgs[late]);
    assert_eq!(verify_batch(&vk, &refs, &sigs), Err(late));
    sigs[100] = Edge::UnreducedS.sign(&key, &msgs[100]);
    assert_eq!(verify_batch(&vk, &refs, &sigs), Err(100));
    assert_eq!(verify_batch(&vk, &refs[..3], &sigs[..2]), Err(2));
    assert_eq!(verify_batch(&vk, &[], &[]), Ok(()));
}
