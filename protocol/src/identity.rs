//! Node identity: the ed25519 key pair a node signs with, its public [`NodeId`], the stable
//! text form of that id, and the libp2p PeerId derived from the same key.
//!
//! A [`NodeId`] is only ever constructed from bytes that pass [`NodeId::from_bytes`]: a
//! canonical point encoding, in the prime-order subgroup (so not weak, and one key has one
//! encoding). That is the key rule; what makes a signature valid is decided in
//! [`crate::signature`]. Secret key material lives in [`Keypair`], which zeroizes on drop and
//! never prints itself. Keys that passed the rule are remembered (`signature::memo`), nothing else.

use std::fmt;
use std::str::FromStr;

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::{Signer, SigningKey};
use zeroize::Zeroizing;

/// Length of a public key in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of a signature in bytes.
pub const SIGNATURE_LEN: usize = 64;
/// Prefix of a node id's text form.
pub const NODE_ID_PREFIX: &str = "souk";

/// Why bytes or text are not a valid node id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Not 32 bytes.
    #[error("a node id is 32 bytes, got {0}")]
    Length(usize),
    /// Not the canonical encoding of a curve point.
    #[error("node id {0} is not a canonical ed25519 point encoding")]
    NotCanonical(String),
    /// A point of small or mixed order (a weak or malleable key).
    #[error("node id {0} is not in the prime-order subgroup (weak key)")]
    Weak(String),
    /// The text form is malformed.
    #[error("malformed node id text {0:?}: expected \"souk\" followed by 52 base32 characters")]
    Text(String),
}

/// A node's public identity: its ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId([u8; PUBLIC_KEY_LEN]);

impl NodeId {
    /// Validates and wraps a public key: the key rule of `spec/identity.md` ("NodeId
    /// validity"), separate from the signature rule of [`crate::signature::verify`].
    ///
    /// Costs one point decompression and one variable-time scalar multiplication by the group
    /// order (about one signature check's worth; `cargo bench -p souk-protocol --bench verify`
    /// reports it) the first time a key is seen: keys that pass are remembered in a bounded
    /// process-wide memo (`signature::memo`; the rule is a pure function of the bytes, so a
    /// remembered verdict is the verdict).
    pub fn from_bytes(bytes: &[u8; PUBLIC_KEY_LEN]) -> Result<Self, IdentityError> {
        if crate::signature::key_known(bytes) {
            return Ok(Self(*bytes));
        }
        let id_hex = || short_hex(bytes);
        let point = CompressedEdwardsY(*bytes)
            .decompress()
            .ok_or_else(|| IdentityError::NotCanonical(id_hex()))?;
        if point.compress().as_bytes() != bytes {
            return Err(IdentityError::NotCanonical(id_hex()));
        }
        if point.is_small_order() || !is_torsion_free(&point) {
            return Err(IdentityError::Weak(id_hex()));
        }
        crate::signature::remember_key(bytes);
        Ok(Self(*bytes))
    }

    /// Wraps a slice, checking its length first.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdentityError> {
        let arr: [u8; PUBLIC_KEY_LEN] = bytes
            .try_into()
            .map_err(|_| IdentityError::Length(bytes.len()))?;
        Self::from_bytes(&arr)
    }

    /// The raw public key.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }

    /// The libp2p PeerId bytes for this key: an identity multihash of the protobuf-encoded
    /// public key (`0x00 0x24 0x08 0x01 0x12 0x20 || key`), as specified in `spec/identity.md`.
    pub fn peer_id_bytes(&self) -> [u8; 38] {
        let mut out = [0u8; 38];
        out[..6].copy_from_slice(&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);
        out[6..].copy_from_slice(&self.0);
        out
    }

    /// The libp2p PeerId in its usual base58btc text form (`12D3KooW...`).
    pub fn peer_id_text(&self) -> String {
        bs58::encode(self.peer_id_bytes()).into_string()
    }

    /// A short form for logs: the first 8 hex digits.
    pub fn short(&self) -> String {
        short_hex(&self.0)
    }
}

/// `[L]P` is the identity, computed in variable time (a public key is public): `[L−1]P + P`,
/// with `L − 1` the largest canonical scalar.
fn is_torsion_free(point: &EdwardsPoint) -> bool {
    let l_minus_one = Scalar::ZERO - Scalar::ONE;
    (EdwardsPoint::vartime_double_scalar_mul_basepoint(&l_minus_one, point, &Scalar::ZERO) + point)
        .is_identity()
}

fn short_hex(bytes: &[u8]) -> String {
    bytes.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

const BASE32: data_encoding::Encoding = data_encoding::BASE32_NOPAD;

impl fmt::Display for NodeId {
    /// `souk` followed by the lowercase RFC 4648 base32 (no padding) of the 32 key bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NODE_ID_PREFIX)?;
        f.write_str(&BASE32.encode(&self.0).to_ascii_lowercase())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl FromStr for NodeId {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IdentityError::Text(s.chars().take(80).collect());
        let body = s.strip_prefix(NODE_ID_PREFIX).ok_or_else(bad)?;
        if body.len() != 52 || body.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        let raw = BASE32
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|_| bad())?;
        let id = Self::from_slice(&raw)?;
        // Reject non-canonical base32 (trailing bits set): the text form must round-trip.
        if id.to_string() != s {
            return Err(bad());
        }
        Ok(id)
    }
}

/// A node's signing key pair. Zeroizes its secret on drop; never prints the secret.
pub struct Keypair {
    signing: SigningKey,
    id: NodeId,
}

impl Keypair {
    /// Derives the key pair from a 32-byte secret seed (RFC 8032). The caller supplies the
    /// randomness: this crate performs no I/O.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let public = signing.verifying_key().to_bytes();
        // An honestly generated key is always a prime-order point: [8]·(scalar·B) with the
        // clamped scalar lands in the prime-order subgroup.
        let id = NodeId::from_bytes(&public).unwrap_or_else(|_| {
            unreachable!("RFC 8032 public keys are in the prime-order subgroup")
        });
        Self { signing, id }
    }

    /// The public identity.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The secret seed, for writing to the key file (0600). Zeroized when dropped.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// Signs raw bytes. Callers use [`crate::signed::Signed::sign`], which adds the
    /// domain-separation tag; this is crate-internal on purpose.
    pub(crate) fn sign_raw(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn text_form_round_trips(seed in any::<[u8; 32]>()) {
            let id = Keypair::from_seed(&seed).id();
            let text = id.to_string();
            prop_assert_eq!(text.len(), 56);
            prop_assert_eq!(text.parse::<NodeId>()?, id);
            prop_assert!(id.peer_id_text().starts_with("12D3KooW"));
        }
    }

    proptest! {
        /// The variable-time subgroup check agrees with curve25519-dalek's constant-time one,
        /// on prime-order points and on the same points plus each small-order point.
        #[test]
        fn vartime_subgroup_check_matches_dalek(seed in any::<[u8; 32]>(), t in 0usize..8) {
            let id = Keypair::from_seed(&seed).id();
            let p = CompressedEdwardsY(*id.as_bytes()).decompress();
            prop_assert!(p.is_some());
            if let Some(p) = p {
                let q = p + curve25519_dalek::constants::EIGHT_TORSION[t];
                prop_assert_eq!(is_torsion_free(&p), p.is_torsion_free());
                prop_assert_eq!(is_torsion_free(&q), q.is_torsion_free());
                prop_assert_eq!(is_torsion_free(&q), t == 0);
            }
        }
    }

    #[test]
    fn rejects_weak_and_non_canonical_keys() {
        // The identity point (y = 1) is small-order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            NodeId::from_bytes(&identity),
            Err(IdentityError::Weak(_))
        ));
        // y = p (non-canonical encoding of y = 0).
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xed;
        non_canonical[31] = 0x7f;
        assert!(NodeId::from_bytes(&non_canonical).is_err());
        // A valid key plus a torsion point is a mixed-order point.
        let honest = Keypair::from_seed(&[7; 32]).id();
        let point = CompressedEdwardsY(*honest.as_bytes()).decompress();
        let torsion = CompressedEdwardsY(identity_order2()).decompress();
        if let (Some(p), Some(t)) = (point, torsion) {
            let mixed = (p + t).compress().to_bytes();
            assert!(matches!(
                NodeId::from_bytes(&mixed),
                Err(IdentityError::Weak(_))
            ));
        } else {
            panic!("test points must decompress");
        }
    }

    /// (0, -1): the point of order 2.
    fn identity_order2() -> [u8; 32] {
        let mut b = [0xffu8; 32];
        b[0] = 0xec;
        b[31] = 0x7f;
        b
    }

    #[test]
    fn rejects_bad_text() {
        let id = Keypair::from_seed(&[1; 32]).id().to_string();
        for bad in [
            String::new(),
            id[4..].to_string(),
            id.to_uppercase(),
            format!("{id}a"),
            id.replacen("souk", "soup", 1),
        ] {
            assert!(bad.parse::<NodeId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let kp = Keypair::from_seed(&[9; 32]);
        let dbg = format!("{kp:?}");
        assert!(!dbg.contains("0909"));
        assert!(dbg.contains("souk"));
    }
}
