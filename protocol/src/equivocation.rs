//! Equivocation proofs: two entries the provider signed with the same hire and seq but
//! different contents. Anyone can check one offline ([`EquivocationProof::verify`]) and gossip
//! it; it needs nothing but the two entries.
//!
//! Wire format: `[1, a: bstr, b: bstr]`, each a canonical signed-entry envelope, with
//! `id(a) < id(b)` so a conflicting pair has exactly one proof (`spec/receipts.md`).

use crate::encoding::{self, Canonical, DecodeError, Encoder, Reader};
use crate::hash::Hash;
use crate::identity::NodeId;
use crate::negotiation::HireId;
use crate::receipt::{RECEIPT_VERSION, SignedEntry};
use crate::rules::{Rule, Violation};
use crate::signature::VerifyingKey;

/// Largest encoded proof.
pub const MAX_PROOF_LEN: usize = 2 * (crate::receipt::MAX_ENTRY_LEN + 256);

/// Two conflicting, provider-signed entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EquivocationProof {
    a: SignedEntry,
    b: SignedEntry,
}

/// What a valid proof shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equivocation {
    /// The key that signed both entries.
    pub signer: NodeId,
    /// The hire.
    pub hire_id: HireId,
    /// The contested seq.
    pub seq: u64,
    /// The two entry ids, ordered.
    pub ids: [Hash; 2],
}

impl EquivocationProof {
    /// Builds a proof from two entries with the same hire and seq and different ids (orders
    /// them). Returns `None` when they do not conflict. Signatures are checked by `verify`.
    pub fn new(x: SignedEntry, y: SignedEntry) -> Option<Self> {
        let conflict = x.body().hire_id == y.body().hire_id
            && x.body().seq == y.body().seq
            && x.id() != y.id()
            && x.signer_bytes() == y.signer_bytes();
        if !conflict {
            return None;
        }
        let (a, b) = if x.id() < y.id() { (x, y) } else { (y, x) };
        Some(Self { a, b })
    }

    /// The contested seq.
    pub fn seq(&self) -> u64 {
        self.a.body().seq
    }

    /// The two entries.
    pub fn entries(&self) -> (&SignedEntry, &SignedEntry) {
        (&self.a, &self.b)
    }

    /// Canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decodes and verifies a proof (rules E1-E3).
    pub fn verify_bytes(bytes: &[u8]) -> Result<Equivocation, Violation> {
        let proof: EquivocationProof = encoding::decode(bytes, MAX_PROOF_LEN)
            .map_err(|e| Violation::new(Rule::E1, e.to_string()))?;
        proof.verify()
    }

    /// Checks rules E1-E3.
    pub fn verify(&self) -> Result<Equivocation, Violation> {
        if self.a.signer_bytes() != self.b.signer_bytes() {
            return Err(Violation::new(
                Rule::E1,
                "the entries have different signers",
            ));
        }
        let signer = NodeId::from_bytes(self.a.signer_bytes())
            .map_err(|e| Violation::new(Rule::E1, e.to_string()))?;
        let key = VerifyingKey::new(&signer);
        for e in [&self.a, &self.b] {
            e.verify_with(&key)
                .map_err(|err| Violation::new(Rule::E1, err.to_string()))?;
        }
        let (x, y) = (self.a.body(), self.b.body());
        if x.hire_id != y.hire_id || x.seq != y.seq {
            return Err(Violation::new(
                Rule::E2,
                "the entries name different hires or seqs",
            ));
        }
        if self.a.id() >= self.b.id() {
            return Err(Violation::new(
                Rule::E3,
                "the entries are identical or not ordered by id",
            ));
        }
        Ok(Equivocation {
            signer,
            hire_id: x.hire_id,
            seq: x.seq,
            ids: [self.a.id(), self.b.id()],
        })
    }
}

impl Canonical for EquivocationProof {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(3);
        enc.u64(RECEIPT_VERSION);
        enc.bytes(&self.a.to_bytes());
        enc.bytes(&self.b.to_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(3)?;
        r.version(RECEIPT_VERSION)?;
        let entry = |r: &mut Reader<'_>| {
            let raw = r.bytes()?;
            let at = r.offset() - raw.len();
            SignedEntry::decode_bytes(raw).map_err(|e| match e {
                crate::signed::SignedError::Decode { source, .. } => DecodeError {
                    offset: at + source.offset,
                    kind: source.kind,
                },
                // decode_bytes only fails with Decode; anything else means "not canonical".
                _ => DecodeError {
                    offset: at,
                    kind: crate::encoding::DecodeErrorKind::NotCanonical,
                },
            })
        };
        let a = entry(r)?;
        let b = entry(r)?;
        r.leave();
        Ok(Self { a, b })
    }
}
