//! Signer-made Ed25519 edge cases (feature `vectors`): signatures only the key's owner can
//! produce, built from the secret scalar, with the verdict `spec/encoding.md` gives each.
//!
//! These are what let a malicious signer split verifiers that disagree on edge cases (a small-
//! order component in `R`, a small-order `R`, non-canonical encodings, a mixed-order key). The
//! expected verdicts ([`Edge::is_valid`]) follow from the spec's rules, never from running the
//! verifier, so tests can compare the two. Test fixtures only: never used to sign real objects.

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use crate::identity::Keypair;

/// The six non-canonical encodings of small-order points that decode (`y ≥ p`, or `x = 0`
/// with the sign bit set), as listed by C2SP CCTV `ed25519/README.md`.
pub const NON_CANONICAL_SMALL_ORDER: [[u8; 32]; 6] = {
    let mut out = [[0xff; 32]; 6];
    // y = p (the points (±√−1·…, 0) of order 4), sign bit clear and set.
    out[0][0] = 0xed;
    out[0][31] = 0x7f;
    out[1][0] = 0xed;
    // y = p + 1 (the identity), sign bit clear and set.
    out[2][0] = 0xee;
    out[2][31] = 0x7f;
    out[3][0] = 0xee;
    // The identity with x = −0 (y = 1, sign bit set).
    out[4] = [0; 32];
    out[4][0] = 0x01;
    out[4][31] = 0x80;
    // The point of order 2 with x = −0 (y = p − 1, sign bit set).
    out[5][0] = 0xec;
    out
};

/// How a signer-made signature is built. `R` is the signature's first half, `A` the key,
/// `a` its secret scalar, `k = SHA-512(R_bytes || A_bytes || M)` over the bytes as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Edge {
    /// An RFC 8032 signature.
    Honest,
    /// `R = [r]B + T` with `T` the small-order point `EIGHT_TORSION[i]` (`i` in 1..=7: order
    /// 8, 4, 8, 2, 8, 4, 8), `S = r + k·a`. Valid: the cofactored equation ignores `T`.
    TorsionR(u8),
    /// `R = EIGHT_TORSION[i]` itself (`i` in 0..=7, canonical encoding), `S = k·a`. Valid.
    SmallOrderR(u8),
    /// `R` = [`NON_CANONICAL_SMALL_ORDER`]`[i]` (`i` in 0..=5), `S = k·a` with `k` over those
    /// bytes. Valid: encodings are decoded as ZIP-215 says and `k` hashes the bytes as sent.
    NonCanonicalR(u8),
    /// Like `TorsionR(i)`, but `S = r + k'·a` with `k'` hashed over the encoding of `[r]B`
    /// (without `T`). Invalid: `k` must hash the `R` that was sent.
    TorsionRStaleK(u8),
    /// Like `NonCanonicalR(i)`, but `k` hashed over the canonical re-encoding of the point
    /// (CCTV's `reencoded_k`). Invalid.
    NonCanonicalRReencodedK(u8),
    /// An honest signature with `S + L` in place of `S`. Invalid: `S` must be below `L`.
    UnreducedS,
}

impl Edge {
    /// Every variant with every parameter: 1 + 7 + 8 + 6 + 7 + 6 + 1 = 36 edges.
    pub fn all() -> Vec<Edge> {
        let mut out = vec![Edge::Honest, Edge::UnreducedS];
        for i in 0..8u8 {
            out.push(Edge::SmallOrderR(i));
            if i > 0 {
                out.push(Edge::TorsionR(i));
                out.push(Edge::TorsionRStaleK(i));
            }
            if i < 6 {
                out.push(Edge::NonCanonicalR(i));
                out.push(Edge::NonCanonicalRReencodedK(i));
            }
        }
        out
    }

    /// The verdict `spec/encoding.md` ("Signature validity") gives this signature under a
    /// valid key.
    pub fn is_valid(self) -> bool {
        match self {
            Edge::Honest | Edge::TorsionR(_) | Edge::SmallOrderR(_) | Edge::NonCanonicalR(_) => {
                true
            }
            Edge::TorsionRStaleK(_) | Edge::NonCanonicalRReencodedK(_) | Edge::UnreducedS => false,
        }
    }

    /// A short name for vector files and test messages.
    pub fn name(self) -> String {
        match self {
            Edge::Honest => "honest".into(),
            Edge::TorsionR(i) => format!("torsion-r-{i}"),
            Edge::SmallOrderR(i) => format!("small-order-r-{i}"),
            Edge::NonCanonicalR(i) => format!("non-canonical-r-{i}"),
            Edge::TorsionRStaleK(i) => format!("torsion-r-{i}-stale-k"),
            Edge::NonCanonicalRReencodedK(i) => format!("non-canonical-r-{i}-reencoded-k"),
            Edge::UnreducedS => "unreduced-s".into(),
        }
    }

    /// Signs `message` (a full signing input) with `key` as this edge says.
    pub fn sign(self, key: &Keypair, message: &[u8]) -> [u8; 64] {
        let secret = Secret::of(key);
        let a_bytes = *key.id().as_bytes();
        self.sign_as(&secret, &a_bytes, message)
    }

    fn sign_as(self, secret: &Secret, a_bytes: &[u8; 32], message: &[u8]) -> [u8; 64] {
        let torsion = |i: u8| EIGHT_TORSION[usize::from(i % 8)];
        let r = secret.nonce(self, message);
        let r_point = EdwardsPoint::mul_base(&r);
        let (r_bytes, s) = match self {
            Edge::Honest => {
                let r_bytes = r_point.compress().to_bytes();
                (
                    r_bytes,
                    r + challenge(&r_bytes, a_bytes, message) * secret.a,
                )
            }
            Edge::UnreducedS => {
                let mut sig = Edge::Honest.sign_as(secret, a_bytes, message);
                add_l(&mut sig);
                return sig;
            }
            Edge::TorsionR(i) => {
                let r_bytes = (r_point + torsion(i)).compress().to_bytes();
                (
                    r_bytes,
                    r + challenge(&r_bytes, a_bytes, message) * secret.a,
                )
            }
            Edge::TorsionRStaleK(i) => {
                let stale = r_point.compress().to_bytes();
                let r_bytes = (r_point + torsion(i)).compress().to_bytes();
                (r_bytes, r + challenge(&stale, a_bytes, message) * secret.a)
            }
            Edge::SmallOrderR(i) => {
                let r_bytes = torsion(i).compress().to_bytes();
                (r_bytes, challenge(&r_bytes, a_bytes, message) * secret.a)
            }
            Edge::NonCanonicalR(i) => {
                let r_bytes = NON_CANONICAL_SMALL_ORDER[usize::from(i % 6)];
                (r_bytes, challenge(&r_bytes, a_bytes, message) * secret.a)
            }
            Edge::NonCanonicalRReencodedK(i) => {
                let r_bytes = NON_CANONICAL_SMALL_ORDER[usize::from(i % 6)];
                let canonical = CompressedEdwardsY(r_bytes)
                    .decompress()
                    .map_or(r_bytes, |p| p.compress().to_bytes());
                (r_bytes, challenge(&canonical, a_bytes, message) * secret.a)
            }
        };
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r_bytes);
        sig[32..].copy_from_slice(s.as_bytes());
        sig
    }
}

/// A key of mixed order, `A' = A + EIGHT_TORSION[i]` (`i` in 1..=7), that only the owner of
/// `key` can sign for. Not a valid `NodeId` (`spec/identity.md`).
pub fn mixed_order_key(key: &Keypair, torsion: u8) -> [u8; 32] {
    let a_point = EdwardsPoint::mul_base(&Secret::of(key).a);
    (a_point + EIGHT_TORSION[usize::from(torsion % 8)])
        .compress()
        .to_bytes()
}

/// A signature under [`mixed_order_key`]`(key, torsion)` by the owner of `key`: `S = r + k·a`
/// with `k` over the mixed key. The cofactored equation holds; the key rule rejects the key,
/// so the signature is invalid.
pub fn sign_with_mixed_order_key(key: &Keypair, torsion: u8, message: &[u8]) -> [u8; 64] {
    let mixed = mixed_order_key(key, torsion);
    Edge::Honest.sign_as(&Secret::of(key), &mixed, message)
}

/// The secret scalar and a nonce seed, derived from the key's seed as RFC 8032 does.
struct Secret {
    a: Scalar,
    seed: Zeroizing<[u8; 32]>,
}

impl Secret {
    fn of(key: &Keypair) -> Self {
        let seed = key.seed();
        let a = ed25519_dalek::SigningKey::from_bytes(&seed).to_scalar();
        Self { a, seed }
    }

    /// A deterministic nonce per (key, edge, message).
    fn nonce(&self, edge: Edge, message: &[u8]) -> Scalar {
        let digest = Sha512::new()
            .chain_update(b"souk-vector-edge-nonce")
            .chain_update(self.seed.as_slice())
            .chain_update(edge.name().as_bytes())
            .chain_update(message)
            .finalize();
        Scalar::from_bytes_mod_order_wide(&digest.into())
    }
}

/// `k = SHA-512(R || A || M) mod L`.
fn challenge(r: &[u8; 32], a: &[u8; 32], message: &[u8]) -> Scalar {
    let digest = Sha512::new()
        .chain_update(r)
        .chain_update(a)
        .chain_update(message)
        .finalize();
    Scalar::from_bytes_mod_order_wide(&digest.into())
}

/// Adds the group order `L` to the little-endian `S` half of `sig` (no overflow: `S < L` and
/// `2L < 2^256`).
fn add_l(sig: &mut [u8; 64]) {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (i, l) in L.iter().enumerate() {
        let sum = u16::from(sig[32 + i]) + u16::from(*l) + carry;
        sig[32 + i] = sum as u8;
        carry = sum >> 8;
    }
}
