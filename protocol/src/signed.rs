//! The signed envelope [`Signed<T>`] and signature checking, strict and batched.
//!
//! On the wire a signed object is the CBOR array `[body: bstr, signer: bstr(32),
//! signature: bstr(64)]`. `body` holds the exact canonical bytes that were signed, so a
//! receiver never re-serializes before checking. The signature is ed25519 over
//! `tag || 0x00 || body` with the type's [`Domain`] tag, and the object's id is BLAKE3 of that
//! same input.
//!
//! Validity is defined by strict verification ([`ed25519_dalek::VerifyingKey::verify_strict`]
//! by a key that passed [`NodeId::from_bytes`]). [`verify_batch`] is only a fast path: it
//! first applies the cheap deterministic checks that strict verification implies, runs
//! dalek's batch equation, and on failure falls back to strict one-by-one checks to decide and
//! to locate the bad signature.
//!
//! Decoding an envelope does not verify it: call [`Signed::verify`] (or a verifier in
//! [`crate::verify`]) before trusting the body.

use std::sync::OnceLock;

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::{Signature, VerifyingKey};

use crate::encoding::{self, Canonical, DecodeError, DecodeErrorKind, Encoder, Reader};
use crate::hash::{Domain, Hash};
use crate::identity::{Keypair, NodeId, PUBLIC_KEY_LEN, SIGNATURE_LEN};

/// A type that travels inside a [`Signed`] envelope.
pub trait SignedBody: Canonical {
    /// The domain-separation tag for this type.
    const DOMAIN: Domain;
    /// The largest encoded body accepted, in bytes.
    const MAX_BODY_LEN: usize;
    /// The key that must have signed this body, when the body names it.
    fn named_signer(&self) -> Option<NodeId>;
}

/// Why a signed object was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedError {
    /// The envelope or body is not canonical.
    #[error("{domain}: malformed: {source}")]
    Decode {
        /// Which object type.
        domain: &'static str,
        /// The decoding failure.
        #[source]
        source: DecodeError,
    },
    /// The envelope's signer differs from the key that must sign it.
    #[error("{domain} {id}: signed by {found}, expected {expected}")]
    WrongSigner {
        /// Which object type.
        domain: &'static str,
        /// The object id (short).
        id: String,
        /// Short hex of the key that signed.
        found: String,
        /// The key that should have signed.
        expected: String,
    },
    /// The signature does not verify.
    #[error("{domain} {id}: signature does not verify under {signer}")]
    BadSignature {
        /// Which object type.
        domain: &'static str,
        /// The object id (short).
        id: String,
        /// The key it was checked against.
        signer: String,
    },
}

/// A decoded signed object: its body, the exact signed bytes, signer and signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed<T> {
    body: T,
    body_bytes: Vec<u8>,
    signer: [u8; PUBLIC_KEY_LEN],
    signature: [u8; SIGNATURE_LEN],
    id: Hash,
}

impl<T: SignedBody> Signed<T> {
    /// Signs `body` with `key`.
    pub fn sign(body: T, key: &Keypair) -> Self {
        let body_bytes = encoding::encode(&body);
        let input = T::DOMAIN.input(&body_bytes);
        let signature = key.sign_raw(&input);
        let id = Hash::digest(&input);
        Self {
            body,
            body_bytes,
            signer: *key.id().as_bytes(),
            signature,
            id,
        }
    }

    /// Decodes an envelope from its canonical bytes (without checking the signature).
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, SignedError> {
        encoding::decode(bytes, T::MAX_BODY_LEN + 128).map_err(|source| SignedError::Decode {
            domain: T::DOMAIN.tag(),
            source,
        })
    }

    /// Decodes and verifies an object that names its own signer (a manifest, a request...).
    pub fn open(bytes: &[u8]) -> Result<Self, SignedError> {
        let signed = Self::decode_bytes(bytes)?;
        signed.verify_named()?;
        Ok(signed)
    }

    /// The canonical envelope bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// The body.
    pub fn body(&self) -> &T {
        &self.body
    }

    /// The exact signed body bytes.
    pub fn body_bytes(&self) -> &[u8] {
        &self.body_bytes
    }

    /// `BLAKE3(tag || 0x00 || body)`.
    pub fn id(&self) -> Hash {
        self.id
    }

    /// The signer's public key bytes as carried in the envelope (not yet validated).
    pub fn signer_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.signer
    }

    /// The raw signature.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// `tag || 0x00 || body`: the message the signature covers.
    pub fn signing_input(&self) -> Vec<u8> {
        T::DOMAIN.input(&self.body_bytes)
    }

    fn wrong_signer(&self, expected: &NodeId) -> SignedError {
        SignedError::WrongSigner {
            domain: T::DOMAIN.tag(),
            id: self.id.short(),
            found: self
                .signer
                .iter()
                .take(4)
                .map(|b| format!("{b:02x}"))
                .collect(),
            expected: expected.short(),
        }
    }

    /// Checks the envelope signer is `expected` and the signature verifies strictly.
    pub fn verify(&self, expected: &NodeId) -> Result<(), SignedError> {
        self.verify_with(expected, &expected.verifying_key())
    }

    /// Like [`Signed::verify`] with a pre-decompressed key (saves ~3 µs per call).
    pub fn verify_with(&self, expected: &NodeId, key: &VerifyingKey) -> Result<(), SignedError> {
        if &self.signer != expected.as_bytes() {
            return Err(self.wrong_signer(expected));
        }
        if !verify_strict(key, &self.signing_input(), &self.signature) {
            return Err(SignedError::BadSignature {
                domain: T::DOMAIN.tag(),
                id: self.id.short(),
                signer: expected.short(),
            });
        }
        Ok(())
    }

    /// Verifies against the signer the body names; fails if it names none.
    pub fn verify_named(&self) -> Result<(), SignedError> {
        match self.body.named_signer() {
            Some(expected) => self.verify(&expected),
            None => Err(SignedError::BadSignature {
                domain: T::DOMAIN.tag(),
                id: self.id.short(),
                signer: "(none named)".into(),
            }),
        }
    }
}

impl<T: SignedBody> Canonical for Signed<T> {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(3);
        enc.bytes(&self.body_bytes);
        enc.bytes(&self.signer);
        enc.bytes(&self.signature);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(3)?;
        let body_start = r.offset();
        let body_bytes = r.bytes()?;
        if body_bytes.len() > T::MAX_BODY_LEN {
            return Err(DecodeError {
                offset: body_start,
                kind: DecodeErrorKind::TooLarge("signed body exceeds its type's limit"),
            });
        }
        // Offsets inside the body are reported relative to the outer input.
        let content_start = r.offset() - body_bytes.len();
        let body: T = encoding::decode(body_bytes, T::MAX_BODY_LEN).map_err(|e| DecodeError {
            offset: content_start + e.offset,
            kind: e.kind,
        })?;
        let signer = r.array_bytes::<PUBLIC_KEY_LEN>()?;
        let signature = r.array_bytes::<SIGNATURE_LEN>()?;
        r.leave();
        let id = T::DOMAIN.hash(body_bytes);
        Ok(Self {
            body,
            body_bytes: body_bytes.to_vec(),
            signer,
            signature,
            id,
        })
    }
}

/// Strict verification: the definition of a valid Souk signature.
pub fn verify_strict(key: &VerifyingKey, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    let sig = Signature::from_bytes(signature);
    key.verify_strict(message, &sig).is_ok()
}

/// The encodings of small-order points that decompress (8 canonical plus the two
/// "negative zero" encodings of the points with x = 0).
fn small_order_encodings() -> &'static [[u8; 32]] {
    static SET: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    SET.get_or_init(|| {
        // Find a point with a torsion component of order 8, then take its multiples.
        let minus_one = Scalar::ZERO - Scalar::ONE; // l - 1
        let mut generator = None;
        for i in 2u8..=255 {
            let mut y = [0u8; 32];
            y[0] = i;
            if let Some(p) = CompressedEdwardsY(y).decompress() {
                let t: EdwardsPoint = p * minus_one + p; // [l]P: P's torsion component, times 5
                if !(t + t + t + t).is_identity() {
                    generator = Some(t);
                    break;
                }
            }
        }
        let mut out = Vec::with_capacity(10);
        if let Some(t) = generator {
            let mut acc = EdwardsPoint::default();
            for _ in 0..8 {
                let enc = acc.compress().to_bytes();
                out.push(enc);
                // x = 0 points (y = 1 and y = -1) also decode with the sign bit set.
                if (acc + acc).is_identity() {
                    let mut neg = enc;
                    neg[31] |= 0x80;
                    out.push(neg);
                }
                acc += t;
            }
        }
        out
    })
}

/// True when `r` is the canonical encoding of a point that is not of small order — what
/// strict verification requires of a signature's R, checked on bytes alone.
fn r_is_acceptable(r: &[u8; 32]) -> bool {
    // y must be < p = 2^255 - 19.
    let y_top = r[31] & 0x7f;
    let non_canonical_y = y_top == 0x7f && r[1..31].iter().all(|b| *b == 0xff) && r[0] >= 0xed;
    !non_canonical_y && !small_order_encodings().contains(r)
}

/// Verifies many signatures by one key. Returns `Err(i)` with the index of the first
/// signature that fails strict verification.
///
/// Fast path: deterministic pre-checks on R, then `ed25519_dalek::verify_batch`. If the batch
/// fails, every signature is checked strictly to find the first bad one. The result is the
/// strict result for every input except one class that only the key's owner can produce
/// (an R with a small-order component, which the batch equation accepts for 1/2, 1/4 or 1/8
/// of the coefficient choices depending on the component's order; dalek derives the
/// coefficients deterministically from the input): see `spec/encoding.md`, "Batch
/// verification". Such a signature is invalid by definition; `SignatureCheck::Strict` never
/// accepts it.
pub fn verify_batch(
    key: &VerifyingKey,
    messages: &[&[u8]],
    signatures: &[[u8; SIGNATURE_LEN]],
) -> Result<(), usize> {
    if messages.len() != signatures.len() {
        // A caller bug, never input-driven: fail closed at the first unmatched position.
        return Err(messages.len().min(signatures.len()));
    }
    const CHUNK: usize = 4096;
    let mut base = 0;
    for (msgs, sigs) in messages.chunks(CHUNK).zip(signatures.chunks(CHUNK)) {
        let prechecked = sigs.iter().all(|s| {
            let mut r = [0u8; 32];
            r.copy_from_slice(&s[..32]);
            r_is_acceptable(&r)
        });
        let batch_ok = prechecked && {
            let parsed: Vec<Signature> = sigs.iter().map(Signature::from_bytes).collect();
            let keys = vec![*key; sigs.len()];
            ed25519_dalek::verify_batch(msgs, &parsed, &keys).is_ok()
        };
        if !batch_ok {
            for (i, (m, s)) in msgs.iter().zip(sigs).enumerate() {
                if !verify_strict(key, m, s) {
                    return Err(base + i);
                }
            }
        }
        base += sigs.len();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_order_set_is_complete_and_rejected_by_strict() {
        let set = small_order_encodings();
        assert_eq!(set.len(), 10);
        for enc in set {
            if let Some(p) = CompressedEdwardsY(*enc).decompress() {
                assert!(p.is_small_order());
            } else {
                panic!("small-order encoding must decompress");
            }
        }
    }

    #[test]
    fn batch_agrees_with_strict_on_tampering() {
        let kp = Keypair::from_seed(&[3; 32]);
        let vk = kp.id().verifying_key();
        let msgs: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 50]).collect();
        let mut sigs: Vec<[u8; 64]> = msgs.iter().map(|m| kp.sign_raw(m)).collect();
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        assert_eq!(verify_batch(&vk, &refs, &sigs), Ok(()));
        sigs[17][5] ^= 1;
        assert_eq!(verify_batch(&vk, &refs, &sigs), Err(17));
        // A small-order R with any S: rejected by both paths.
        sigs[17] = [0; 64];
        sigs[17][..32].copy_from_slice(&small_order_encodings()[0]);
        assert!(!verify_strict(&vk, refs[17], &sigs[17]));
        assert_eq!(verify_batch(&vk, &refs, &sigs), Err(17));
    }
}
