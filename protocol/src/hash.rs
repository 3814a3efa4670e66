//! Hashes and domain-separated ids.
//!
//! Every id in Souk is `BLAKE3(tag || 0x00 || body)`, where `tag` is the ASCII
//! domain-separation tag of the object's type ([`Domain`]) and `body` its canonical bytes.
//! Signatures are made over exactly the same input, so an id and a signature always name the
//! same bytes and no two object types can ever share an id or a signature.

use std::fmt;

use crate::encoding::{Canonical, DecodeError, Encoder, Reader};

/// Length of every hash and id.
pub const HASH_LEN: usize = 32;

/// A 32-byte BLAKE3 hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_LEN]);

impl Hash {
    /// All zeroes: the `prev` of the first receipt entry.
    pub const ZERO: Hash = Hash([0; HASH_LEN]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// Lowercase hex of the whole hash.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// The first 8 hex digits, for logs and short displays.
    pub fn short(&self) -> String {
        self.to_hex()[..8].to_owned()
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Hash> {
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; HASH_LEN];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hi = (chunk[0] as char).to_digit(16)?;
            let lo = (chunk[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(Hash(out))
    }

    /// Plain BLAKE3 of `data` (used for content digests such as a job's input or output).
    pub fn digest(data: &[u8]) -> Hash {
        Hash(*blake3::hash(data).as_bytes())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.short())
    }
}

impl Canonical for Hash {
    fn encode(&self, enc: &mut Encoder) {
        enc.bytes(&self.0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_bytes().map(Hash)
    }
}

/// The domain-separation tags, one per signed or hashed object type (`spec/encoding.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Domain {
    /// A provider's agent manifest.
    Manifest,
    /// A client's hire request.
    HireRequest,
    /// A provider's offer on a request.
    Offer,
    /// A provider's counter-offer on a request.
    Counter,
    /// A provider's refusal of a request.
    Decline,
    /// A client's acceptance of an offer or counter-offer.
    Accept,
    /// The contract (request, proposal, acceptance); its id is the hire id.
    Contract,
    /// One receipt chain entry.
    Receipt,
    /// A client's completion attestation.
    Attestation,
    /// A salted payload commitment.
    Commitment,
    /// A credential policy (hashed, never signed on its own).
    CredentialPolicy,
    /// A client's credential grant for one slot of a hire.
    CredentialGrant,
    /// The HPKE associated data of a sealed credential (neither signed nor hashed).
    CredentialSeal,
    /// A client's signed record of one relayed call.
    RelayRecord,
    /// A manifest's terms: its body without `seq`, `issued-at` and `expires-at` (hashed,
    /// never signed).
    ManifestTerms,
    /// A manifest's stable id, from its reference `[provider, name, terms-digest]` (hashed,
    /// never signed).
    ManifestId,
    /// An outcome record (hashed, never signed: its parts carry the signatures).
    Outcome,
}

impl Domain {
    /// All domains, for tests and documentation.
    pub const ALL: [Domain; 17] = [
        Domain::Manifest,
        Domain::HireRequest,
        Domain::Offer,
        Domain::Counter,
        Domain::Decline,
        Domain::Accept,
        Domain::Contract,
        Domain::Receipt,
        Domain::Attestation,
        Domain::Commitment,
        Domain::CredentialPolicy,
        Domain::CredentialGrant,
        Domain::CredentialSeal,
        Domain::RelayRecord,
        Domain::ManifestTerms,
        Domain::ManifestId,
        Domain::Outcome,
    ];

    /// The ASCII tag. Tags never contain NUL, so `tag || 0x00 || body` is unambiguous.
    pub const fn tag(self) -> &'static str {
        match self {
            Domain::Manifest => "souk/v1/manifest",
            Domain::HireRequest => "souk/v1/hire-request",
            Domain::Offer => "souk/v1/offer",
            Domain::Counter => "souk/v1/counter",
            Domain::Decline => "souk/v1/decline",
            Domain::Accept => "souk/v1/accept",
            Domain::Contract => "souk/v1/contract",
            Domain::Receipt => "souk/v1/receipt",
            Domain::Attestation => "souk/v1/attestation",
            Domain::Commitment => "souk/v1/commitment",
            Domain::CredentialPolicy => "souk/v1/credential-policy",
            Domain::CredentialGrant => "souk/v1/credential-grant",
            Domain::CredentialSeal => "souk/v1/credential-seal",
            Domain::RelayRecord => "souk/v1/relay-record",
            Domain::ManifestTerms => "souk/v1/manifest-terms",
            Domain::ManifestId => "souk/v1/manifest-id",
            Domain::Outcome => "souk/v1/outcome",
        }
    }

    /// `tag || 0x00 || body`: the exact bytes that are signed and hashed.
    pub fn input(self, body: &[u8]) -> Vec<u8> {
        let tag = self.tag().as_bytes();
        let mut out = Vec::with_capacity(tag.len() + 1 + body.len());
        out.extend_from_slice(tag);
        out.push(0);
        out.extend_from_slice(body);
        out
    }

    /// `BLAKE3(tag || 0x00 || body)`.
    pub fn hash(self, body: &[u8]) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(self.tag().as_bytes());
        h.update(&[0]);
        h.update(body);
        Hash(*h.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_distinct_prefix_free_and_nul_free() {
        for a in Domain::ALL {
            assert!(!a.tag().contains('\0'));
            for b in Domain::ALL {
                if a != b {
                    assert_ne!(a.tag(), b.tag());
                    assert_ne!(a.hash(b"x"), b.hash(b"x"));
                }
            }
        }
    }

    #[test]
    fn hash_matches_input() {
        let d = Domain::Receipt;
        assert_eq!(d.hash(b"abc"), Hash::digest(&d.input(b"abc")));
    }

    #[test]
    fn hex_round_trip() {
        let h = Hash::digest(b"souk");
        assert_eq!(Hash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(Hash::from_hex("zz"), None);
    }
}
