//! The one definition of a valid Souk signature ([`verify`]) and its batch form
//! ([`verify_batch`]).
//!
//! A signature is valid when its key is a valid [`NodeId`] (canonical, in the prime-order
//! subgroup: `spec/identity.md`) and it satisfies the cofactored Ed25519 equation under the
//! ZIP-215 decoding rules (`spec/encoding.md`, "Signature validity"), as implemented by
//! `ed25519-zebra`. Under these rules batch and single verification compute the same
//! predicate: [`verify_batch`] is a speed-up, never a second opinion. Every signature check in
//! this crate (envelopes, contracts, chains, bundles, attestations, equivocation proofs) goes
//! through this module, and a test keeps it that way.
//!
//! This module must never hold state between calls, read a clock or a random source, or decide
//! a failure any other way than by [`verify`].

use std::convert::Infallible;

use ed25519_zebra::{Signature, VerificationKey, VerificationKeyBytes};

use crate::identity::{NodeId, PUBLIC_KEY_LEN, SIGNATURE_LEN};

mod memo;

/// Whether `bytes` passed the key rule before in this process ([`memo`]).
pub(crate) fn key_known(bytes: &[u8; PUBLIC_KEY_LEN]) -> bool {
    memo::get(bytes).is_some()
}

/// Remembers that `bytes` passed the key rule (called by
/// [`NodeId::from_bytes`](crate::identity::NodeId::from_bytes) only), with its verification
/// key.
pub(crate) fn remember_key(bytes: &[u8; PUBLIC_KEY_LEN]) {
    // A canonical prime-order point always makes a verification key.
    if let Ok(key) = VerificationKey::try_from(*bytes) {
        memo::insert(*bytes, key);
    }
}

/// A [`NodeId`] with its curve point decompressed, ready to check signatures.
///
/// Decompressing costs about as much as hashing a few kilobytes; build one per signer and
/// reuse it for every signature that signer made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyingKey {
    id: NodeId,
    key: VerificationKey,
}

impl VerifyingKey {
    /// Prepares `id` for verification.
    pub fn new(id: &NodeId) -> Self {
        // Decompressed once per key (remembered when the NodeId was validated). A NodeId is a
        // canonical encoding of a prime-order point, so it always decompresses.
        let key = memo::get(id.as_bytes()).unwrap_or_else(|| {
            VerificationKey::try_from(*id.as_bytes())
                .unwrap_or_else(|_| unreachable!("a valid NodeId decompresses"))
        });
        Self { id: *id, key }
    }

    /// The node id this key belongs to.
    pub fn id(&self) -> &NodeId {
        &self.id
    }
}

impl From<NodeId> for VerifyingKey {
    fn from(id: NodeId) -> Self {
        Self::new(&id)
    }
}

impl From<&NodeId> for VerifyingKey {
    fn from(id: &NodeId) -> Self {
        Self::new(id)
    }
}

/// **The definition of a valid Souk signature**: `signature` over `message` by `key`.
///
/// `S` must be below the group order; `R` must decode as a curve point (non-canonical
/// encodings decode, as ZIP-215 requires); and `[8]([S]B − R − [k]A)` must be the identity, with
/// `k = SHA-512(R_bytes || A_bytes || message)` over the bytes as given.
pub fn verify(key: &VerifyingKey, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    equation_holds(&key.key, message, signature)
}

/// Checks many signatures by one key: `Err(i)` names the first signature, in order, for which
/// [`verify`] is false.
///
/// The signatures are checked in chunks with the cofactored batch equation, whose random
/// 128-bit coefficients are derived by hashing the whole chunk (no randomness source needed;
/// the result is a function of the input). A chunk that fails is rechecked one signature at a
/// time with [`verify`], which decides and locates the failure. Because the batch equation is
/// the sum of the single equations with those coefficients, a chunk of valid signatures always
/// passes, and a chunk holding an invalid one passes with probability at most 2^-128 per chunk,
/// whoever made the input (`spec/encoding.md`, "Batch verification").
pub fn verify_batch(
    key: &VerifyingKey,
    messages: &[&[u8]],
    signatures: &[[u8; SIGNATURE_LEN]],
) -> Result<(), usize> {
    batch_holds(&key.key, messages, signatures)
}

/// Signatures per batch equation: bounds memory (about 300 bytes each) while keeping most of
/// the multiscalar multiplication's speed-up.
const CHUNK: usize = 4096;

/// The ZIP-215 equation for any decodable key (the layer below the key rule; tests run the
/// external edge-case vectors against it directly).
pub(crate) fn equation_holds(
    key: &VerificationKey,
    message: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> bool {
    key.verify(&Signature::from_bytes(signature), message)
        .is_ok()
}

/// [`equation_holds`] over many signatures by one key; see [`verify_batch`].
pub(crate) fn batch_holds(
    key: &VerificationKey,
    messages: &[&[u8]],
    signatures: &[[u8; SIGNATURE_LEN]],
) -> Result<(), usize> {
    if messages.len() != signatures.len() {
        // A caller bug, never input-driven: fail closed at the first unmatched position.
        return Err(messages.len().min(signatures.len()));
    }
    let key_bytes = VerificationKeyBytes::from(*key);
    let mut base = 0;
    for (msgs, sigs) in messages.chunks(CHUNK).zip(signatures.chunks(CHUNK)) {
        let mut batch = ed25519_zebra::batch::Verifier::new();
        for (m, s) in msgs.iter().zip(sigs) {
            batch.queue((key_bytes, Signature::from_bytes(s), *m));
        }
        let passed = batch
            .verify(Coefficients::new(&key_bytes, msgs, sigs))
            .is_ok();
        // A failed batch is decided one by one by the definition. (If every single check
        // passed, the batch could not have failed: valid signatures satisfy the batch equation
        // by linearity. The definition wins either way.)
        let first_invalid = if passed {
            None
        } else {
            msgs.iter()
                .zip(sigs)
                .position(|(m, s)| !equation_holds(key, m, s))
        };
        if let Some(i) = first_invalid {
            return Err(base + i);
        }
        base += sigs.len();
    }
    Ok(())
}

/// The batch equation's coefficients: a BLAKE3 output stream derived from everything the
/// equation depends on (key, messages, signatures). A chunk's coefficients are a function of
/// its content, so whoever chooses the content can only retry with other content; binding the
/// messages matters (with coefficients fixed by the signatures alone, a signer could vary
/// messages to make errors cancel).
struct Coefficients(blake3::OutputReader);

impl Coefficients {
    fn new(key: &VerificationKeyBytes, msgs: &[&[u8]], sigs: &[[u8; SIGNATURE_LEN]]) -> Self {
        let mut h = blake3::Hasher::new_derive_key("souk v1 batch verification coefficients");
        h.update(key.as_ref());
        for (m, s) in msgs.iter().zip(sigs) {
            h.update(&(m.len() as u64).to_le_bytes());
            h.update(m);
            h.update(s);
        }
        Self(h.finalize_xof())
    }
}

impl rand_core::TryRng for Coefficients {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
        Ok(())
    }
}

/// BLAKE3's output stream is indistinguishable from random to anyone who does not know the
/// input; here the input is public, which is what a Fiat-Shamir derivation intends.
impl rand_core::TryCryptoRng for Coefficients {}

#[cfg(test)]
mod tests;
