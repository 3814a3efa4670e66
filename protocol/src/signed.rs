//! The signed envelope [`Signed<T>`]: which key and which bytes a signature is checked against.
//!
//! On the wire a signed object is the CBOR array `[body: bstr, signer: bstr(32),
//! signature: bstr(64)]`. `body` holds the exact canonical bytes that were signed, so a
//! receiver never re-serializes before checking. The signature is ed25519 over
//! `tag || 0x00 || body` with the type's [`Domain`] tag, and the object's id is BLAKE3 of that
//! same input.
//!
//! Whether the signature is valid is decided by [`crate::signature::verify`], the one
//! definition; this module only decides *which* key and *which* bytes it is checked against.
//!
//! Decoding an envelope does not verify it: call [`Signed::verify`] (or a verifier in
//! [`crate::verify`]) before trusting the body.

use crate::encoding::{self, Canonical, DecodeError, DecodeErrorKind, Encoder, Reader};
use crate::hash::{Domain, Hash};
use crate::identity::{Keypair, NodeId, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::signature::{self, VerifyingKey};

/// A type that travels inside a [`Signed`] envelope.
pub trait SignedBody: Canonical {
    /// The domain-separation tag for this type.
    const DOMAIN: Domain;
    /// The largest encoded body accepted, in bytes.
    const MAX_BODY_LEN: usize;
    /// The key that must have signed this body, when the body names it.
    fn named_signer(&self) -> Option<NodeId>;

    /// The object's id, from the decoded body and its exact signed bytes. The default is
    /// the envelope id `BLAKE3(tag || 0x00 || body)`; a manifest overrides it with its stable
    /// id (`spec/manifest.md`, "Manifest id"), which survives re-announcements.
    fn object_id(&self, body_bytes: &[u8]) -> Hash {
        Self::DOMAIN.hash(body_bytes)
    }
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
        let id = body.object_id(&body_bytes);
        Self {
            body,
            body_bytes,
            signer: *key.id().as_bytes(),
            signature,
            id,
        }
    }

    /// An envelope around a signature made elsewhere (the edge-case fixtures of
    /// [`crate::vectors`]).
    #[cfg(feature = "vectors")]
    pub(crate) fn from_signature(body: T, signer: NodeId, signature: [u8; SIGNATURE_LEN]) -> Self {
        let body_bytes = encoding::encode(&body);
        let id = body.object_id(&body_bytes);
        Self {
            body,
            body_bytes,
            signer: *signer.as_bytes(),
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

    /// The object's id ([`SignedBody::object_id`]): `BLAKE3(tag || 0x00 || body)` for every
    /// type except a manifest, whose id is its stable id (`spec/manifest.md`).
    pub fn id(&self) -> Hash {
        self.id
    }

    /// `BLAKE3(tag || 0x00 || body)`: the id of these exact signed bytes. Equal to
    /// [`Signed::id`] for every type except a manifest, where it names one announcement.
    pub fn envelope_id(&self) -> Hash {
        T::DOMAIN.hash(&self.body_bytes)
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

    /// Checks the envelope signer is `expected` and the signature is valid
    /// ([`crate::signature::verify`]).
    pub fn verify(&self, expected: &NodeId) -> Result<(), SignedError> {
        self.verify_with(&VerifyingKey::new(expected))
    }

    /// Like [`Signed::verify`] with a prepared key (saves a point decompression per call).
    pub fn verify_with(&self, key: &VerifyingKey) -> Result<(), SignedError> {
        let expected = key.id();
        if &self.signer != expected.as_bytes() {
            return Err(self.wrong_signer(expected));
        }
        if !signature::verify(key, &self.signing_input(), &self.signature) {
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
        let id = body.object_id(body_bytes);
        Ok(Self {
            body,
            body_bytes: body_bytes.to_vec(),
            signer,
            signature,
            id,
        })
    }
}
