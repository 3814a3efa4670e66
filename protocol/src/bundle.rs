//! The receipt bundle file (`*.souk`): everything needed to verify a hire offline.
//!
//! `[ "souk-bundle", 1, manifest: bstr, contract: bstr, entries: [* bstr],
//!    attestation: bstr / null, disclosures: [* Disclosure] ]`
//!
//! Each inner object is carried as the exact canonical bytes it was signed or hashed as, so a
//! malformed entry is reported by its own rule (R1 at entry *i*) rather than as a bad file.
//! Format and limits: `spec/bundle.md`. [`crate::verify::verify_bundle`] checks one.

use crate::encoding::{self, Canonical, DecodeError, DecodeErrorKind, Encoder, Reader};
use crate::receipt::{Disclosure, MAX_ENTRY_LEN};

/// The magic text string that opens every bundle.
pub const BUNDLE_MAGIC: &str = "souk-bundle";
/// Bundle format version.
pub const BUNDLE_VERSION: u64 = 1;
/// Largest bundle file.
pub const MAX_BUNDLE_LEN: usize = 256 * 1024 * 1024;
/// Most entries in one bundle.
pub const MAX_BUNDLE_ENTRIES: usize = 1_000_000;
/// Envelope overhead allowed on top of a body's limit.
const ENVELOPE: usize = 128;

/// A bundle, with its inner objects as raw canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bundle {
    /// The signed manifest envelope.
    pub manifest: Vec<u8>,
    /// The contract.
    pub contract: Vec<u8>,
    /// Signed entry envelopes, in chain order.
    pub entries: Vec<Vec<u8>>,
    /// The client's signed attestation envelope, if the hire was settled.
    pub attestation: Option<Vec<u8>>,
    /// Opened commitments, sorted by seq.
    pub disclosures: Vec<Disclosure>,
}

impl Bundle {
    /// Canonical file bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decodes a bundle file (rule B1). Inner objects are checked by the verifier.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        encoding::decode(bytes, MAX_BUNDLE_LEN)
    }
}

impl Canonical for Bundle {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(7);
        enc.text(BUNDLE_MAGIC);
        enc.u64(BUNDLE_VERSION);
        enc.bytes(&self.manifest);
        enc.bytes(&self.contract);
        enc.array(self.entries.len());
        for e in &self.entries {
            enc.bytes(e);
        }
        match &self.attestation {
            Some(a) => enc.bytes(a),
            None => enc.null(),
        }
        enc.list(&self.disclosures);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(7)?;
        let at = r.offset();
        if r.text()? != BUNDLE_MAGIC {
            return Err(DecodeError {
                offset: at,
                kind: DecodeErrorKind::UnexpectedType {
                    expected: "the text \"souk-bundle\"",
                    found: "other text",
                },
            });
        }
        r.version(BUNDLE_VERSION)?;
        let manifest = r
            .bytes_max(crate::manifest::MAX_MANIFEST_LEN + ENVELOPE, "manifest")?
            .to_vec();
        let contract = r
            .bytes_max(crate::negotiation::MAX_CONTRACT_LEN, "contract")?
            .to_vec();
        let at = r.offset();
        let n = r.array()?;
        if n > MAX_BUNDLE_ENTRIES {
            return Err(DecodeError {
                offset: at,
                kind: DecodeErrorKind::TooLarge("too many entries"),
            });
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            entries.push(r.bytes_max(MAX_ENTRY_LEN + ENVELOPE, "entry")?.to_vec());
        }
        r.leave();
        let attestation = if r.null()? {
            None
        } else {
            Some(
                r.bytes_max(
                    crate::receipt::MAX_ATTESTATION_LEN + ENVELOPE,
                    "attestation",
                )?
                .to_vec(),
            )
        };
        let disclosures = r.list(MAX_BUNDLE_ENTRIES, "disclosures")?;
        r.leave();
        Ok(Bundle {
            manifest,
            contract,
            entries,
            attestation,
            disclosures,
        })
    }
}
