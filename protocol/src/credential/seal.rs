//! HPKE sealing of a credential secret to a provider node's X25519 sealing key, and opening it.
//!
//! RFC 9180 base mode with DHKEM(X25519, HKDF-SHA256) (KEM 0x0020), HKDF-SHA256 (KDF 0x0001)
//! and ChaCha20-Poly1305 (AEAD 0x0003), single shot, through the `hpke` crate. `info` is the
//! fixed [`HPKE_INFO`]; the associated data ([`seal_aad`]) binds the hire id, the slot name and
//! the policy hash, so a sealed secret opens only for the grant it was made for.
//!
//! Randomness is an input ([`seal`] takes the 32-byte ephemeral seed, RFC 9180's `ikmE`), so
//! this module does no I/O and its output is reproducible for test vectors. Opened secrets
//! are returned in [`Zeroizing`] buffers; nothing here logs, prints or stores a secret.

use std::convert::Infallible;

use hpke::kem::X25519HkdfSha256;
use hpke::rand_core::{TryCryptoRng, TryRng};
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use crate::credential::grant::CredentialGrant;
use crate::credential::policy::{CredentialMode, CredentialPolicy, PolicyError};
use crate::encoding::{Canonical, DecodeError, Encoder, Reader};
use crate::hash::{Domain, Hash};
use crate::negotiation::HireId;

type Aead = hpke::aead::ChaCha20Poly1305;
type Kdf = hpke::kdf::HkdfSha256;

/// The HPKE `info` string of every credential seal.
pub const HPKE_INFO: &[u8] = b"souk/v1 credential seal";
/// Largest secret that can be sealed.
pub const MAX_SECRET_LEN: usize = 8 * 1024;
/// Length of the AEAD tag appended to the ciphertext.
pub const TAG_LEN: usize = 16;
/// Length of an X25519 key or encapsulated key.
pub const X25519_LEN: usize = 32;

/// The HPKE output carried in a sealed-mode grant.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// The X25519 sealing key it was sealed to (the manifest's `sealing_key`).
    pub recipient: [u8; X25519_LEN],
    /// The hash of the policy it was sealed under.
    pub policy_hash: Hash,
    /// HPKE encapsulated key (`enc`, the ephemeral public key).
    pub enc: [u8; X25519_LEN],
    /// HPKE ciphertext: the secret's length plus [`TAG_LEN`] bytes.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("policy_hash", &self.policy_hash)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// Why a secret could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The policy is for relayed mode (use [`CredentialGrant::relayed`]) or, for
    /// [`CredentialGrant::relayed`], for sealed mode.
    #[error("the policy's mode is {0}")]
    WrongMode(&'static str),
    /// The policy breaks a content rule.
    #[error("invalid policy: {0}")]
    Policy(#[from] PolicyError),
    /// An empty secret.
    #[error("the secret is empty")]
    EmptySecret,
    /// A secret above [`MAX_SECRET_LEN`].
    #[error("the secret is {0} bytes, more than {MAX_SECRET_LEN}")]
    SecretTooLarge(usize),
    /// The recipient key is a low-order point (the X25519 result would be all zero).
    #[error("the recipient's sealing key is not a usable X25519 public key")]
    InvalidRecipientKey,
}

/// Why a sealed grant does not open. Each cause has its own variant; none carries secret data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The grant is for another hire (replayed into this one).
    #[error("the grant is for hire {found}, expected {expected}")]
    WrongHire {
        /// The hire being served.
        expected: HireId,
        /// The hire the grant names.
        found: HireId,
    },
    /// The grant is for another slot.
    #[error("the grant is for slot {found:?}, expected {expected:?}")]
    WrongSlot {
        /// The slot being served.
        expected: String,
        /// The slot the grant names.
        found: String,
    },
    /// A relayed-mode grant carries no sealed secret.
    #[error("the grant is not sealed (relayed mode)")]
    NotSealed,
    /// Sealed to another X25519 key than this node's.
    #[error("the secret was sealed to another sealing key")]
    WrongRecipient,
    /// Sealed under another policy: a sealed secret lifted from another grant.
    #[error("the secret was sealed under another policy")]
    Replayed,
    /// HPKE decryption failed: the encapsulated key, the ciphertext or the bound hire, slot
    /// or policy were altered after sealing.
    #[error("the sealed secret does not authenticate (tampered)")]
    Tampered,
}

impl OpenError {
    /// Stable kebab-case name (used in test vectors).
    pub fn code(&self) -> &'static str {
        match self {
            OpenError::WrongHire { .. } => "wrong-hire",
            OpenError::WrongSlot { .. } => "wrong-slot",
            OpenError::NotSealed => "not-sealed",
            OpenError::WrongRecipient => "wrong-recipient",
            OpenError::Replayed => "replayed",
            OpenError::Tampered => "tampered",
        }
    }
}

/// The HPKE associated data of a seal: `"souk/v1/credential-seal" || 0x00 || cbor([hire-id,
/// slot, policy-hash])`.
pub fn seal_aad(hire_id: &HireId, slot: &str, policy_hash: &Hash) -> Vec<u8> {
    let mut enc = Encoder::new();
    enc.array(3);
    hire_id.encode(&mut enc);
    enc.text(slot);
    policy_hash.encode(&mut enc);
    Domain::CredentialSeal.input(&enc.into_bytes())
}

/// The X25519 public key of a sealing secret (`X25519(clamp(secret), 9)`), as published in a
/// manifest's `sealing_key`.
pub fn sealing_public_key(secret: &[u8; X25519_LEN]) -> [u8; X25519_LEN] {
    match <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(secret) {
        Ok(sk) => to_array(&<X25519HkdfSha256 as Kem>::sk_to_pk(&sk).to_bytes()),
        // A 32-byte input always deserializes.
        Err(_) => [0; X25519_LEN],
    }
}

fn to_array(bytes: &[u8]) -> [u8; X25519_LEN] {
    let mut out = [0u8; X25519_LEN];
    out.copy_from_slice(&bytes[..X25519_LEN.min(bytes.len())]);
    out
}

/// An RNG that yields the caller's 32-byte seed, then (never needed by this suite) a BLAKE3
/// stream derived from it, so the ephemeral key is exactly `DeriveKeyPair(seed)`.
struct SeedRng {
    seed: Zeroizing<[u8; X25519_LEN]>,
    pos: usize,
    overflow: Option<blake3::OutputReader>,
}

impl SeedRng {
    fn new(seed: &[u8; X25519_LEN]) -> Self {
        Self {
            seed: Zeroizing::new(*seed),
            pos: 0,
            overflow: None,
        }
    }
}

impl TryRng for SeedRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let from_seed = dst.len().min(X25519_LEN - self.pos);
        dst[..from_seed].copy_from_slice(&self.seed[self.pos..self.pos + from_seed]);
        self.pos += from_seed;
        if from_seed < dst.len() {
            let seed = &self.seed;
            self.overflow
                .get_or_insert_with(|| {
                    blake3::Hasher::new_derive_key("souk/v1 credential seal rng overflow")
                        .update(seed.as_ref())
                        .finalize_xof()
                })
                .fill(&mut dst[from_seed..]);
        }
        Ok(())
    }
}

impl TryCryptoRng for SeedRng {}

/// Seals `secret` to `recipient_pub` under `policy` (which must be for sealed mode and pass
/// [`CredentialPolicy::validate`]); the client then signs the returned grant.
///
/// `ephemeral_seed` MUST be 32 fresh uniformly random bytes for every seal: reusing it for the
/// same recipient reuses the HPKE key and nonce.
pub fn seal(
    recipient_pub: &[u8; X25519_LEN],
    policy: CredentialPolicy,
    secret: &[u8],
    ephemeral_seed: &[u8; X25519_LEN],
) -> Result<CredentialGrant, SealError> {
    if policy.mode != CredentialMode::Sealed {
        return Err(SealError::WrongMode(policy.mode.as_str()));
    }
    policy.validate()?;
    if secret.is_empty() {
        return Err(SealError::EmptySecret);
    }
    if secret.len() > MAX_SECRET_LEN {
        return Err(SealError::SecretTooLarge(secret.len()));
    }
    let policy_hash = policy.policy_hash();
    let aad = seal_aad(&policy.hire_id, &policy.slot, &policy_hash);
    let pk = <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(recipient_pub)
        .map_err(|_| SealError::InvalidRecipientKey)?;
    let mut rng = SeedRng::new(ephemeral_seed);
    let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<Aead, Kdf, X25519HkdfSha256>(
        &OpModeS::Base,
        &pk,
        HPKE_INFO,
        secret,
        &aad,
        &mut rng,
    )
    .map_err(|_| SealError::InvalidRecipientKey)?;
    Ok(CredentialGrant {
        policy,
        sealed: Some(SealedSecret {
            recipient: *recipient_pub,
            policy_hash,
            enc: to_array(&enc.to_bytes()),
            ciphertext,
        }),
    })
}

/// Opens a sealed grant for the hire and slot the caller is serving, with this node's X25519
/// sealing secret. Checks, in order: hire, slot, sealed mode, recipient key, policy hash,
/// then HPKE decryption with the AAD recomputed from `expected_hire`, `expected_slot` and
/// the grant's policy.
///
/// The grant's client signature is not checked here: check it with
/// [`crate::credential::check_grant`] when the grant is received.
pub fn open(
    grant: &CredentialGrant,
    recipient_secret: &[u8; X25519_LEN],
    expected_hire: &HireId,
    expected_slot: &str,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let policy = &grant.policy;
    if policy.hire_id != *expected_hire {
        return Err(OpenError::WrongHire {
            expected: *expected_hire,
            found: policy.hire_id,
        });
    }
    if policy.slot != expected_slot {
        return Err(OpenError::WrongSlot {
            expected: expected_slot.to_owned(),
            found: policy.slot.clone(),
        });
    }
    let sealed = match (&grant.sealed, policy.mode) {
        (Some(s), CredentialMode::Sealed) => s,
        _ => return Err(OpenError::NotSealed),
    };
    let sk = <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(recipient_secret)
        .map_err(|_| OpenError::WrongRecipient)?;
    let own = <X25519HkdfSha256 as Kem>::sk_to_pk(&sk).to_bytes();
    if own.as_slice() != sealed.recipient.as_slice() {
        return Err(OpenError::WrongRecipient);
    }
    let policy_hash = policy.policy_hash();
    if sealed.policy_hash != policy_hash {
        return Err(OpenError::Replayed);
    }
    let aad = seal_aad(expected_hire, expected_slot, &policy_hash);
    let enc = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(&sealed.enc)
        .map_err(|_| OpenError::Tampered)?;
    hpke::single_shot_open::<Aead, Kdf, X25519HkdfSha256>(
        &OpModeR::Base,
        &sk,
        &enc,
        HPKE_INFO,
        &sealed.ciphertext,
        &aad,
    )
    .map(Zeroizing::new)
    .map_err(|_| OpenError::Tampered)
}

impl Canonical for SealedSecret {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(4);
        enc.bytes(&self.recipient);
        self.policy_hash.encode(enc);
        enc.bytes(&self.enc);
        enc.bytes(&self.ciphertext);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(4)?;
        let recipient = r.array_bytes()?;
        let policy_hash = Hash::decode(r)?;
        let enc = r.array_bytes()?;
        let at = r.offset();
        let ciphertext = r
            .bytes_max(MAX_SECRET_LEN + TAG_LEN, "sealed secret")?
            .to_vec();
        if ciphertext.len() <= TAG_LEN {
            return Err(DecodeError {
                offset: at,
                kind: crate::encoding::DecodeErrorKind::WrongLength {
                    expected: TAG_LEN + 1,
                    found: ciphertext.len(),
                },
            });
        }
        r.leave();
        Ok(SealedSecret {
            recipient,
            policy_hash,
            enc,
            ciphertext,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Injection;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }

    fn arr(s: &str) -> [u8; 32] {
        to_array(&hex(s))
    }

    /// RFC 9180 Appendix A.2.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305,
    /// base mode), sequence number 0: our seed-as-`ikmE` RNG reproduces the published `enc`
    /// and ciphertext, so `ephemeral_seed` is exactly RFC 9180's `ikmE`.
    #[test]
    fn rfc9180_a21_base_mode_vector() {
        let ikm_e = arr("909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b");
        let sk_rm = arr("8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb");
        let pk_rm = arr("4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a");
        let info = hex("4f6465206f6e2061204772656369616e2055726e");
        let pt = hex("4265617574792069732074727574682c20747275746820626561757479");
        let aad = hex("436f756e742d30");
        assert_eq!(sealing_public_key(&sk_rm), pk_rm);
        let pk = <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(&pk_rm)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut rng = SeedRng::new(&ikm_e);
        let (enc, ct) = hpke::single_shot_seal_with_rng::<Aead, Kdf, X25519HkdfSha256>(
            &OpModeS::Base,
            &pk,
            &info,
            &pt,
            &aad,
            &mut rng,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            enc.to_bytes().as_slice(),
            hex("1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a")
        );
        assert_eq!(
            ct,
            hex(
                "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28"
            )
        );
        assert_eq!(rng.pos, 32, "the suite draws exactly one 32-byte ikmE");
        assert!(rng.overflow.is_none());
    }

    fn policy(mode: CredentialMode) -> CredentialPolicy {
        CredentialPolicy {
            hire_id: Hash::digest(b"hire"),
            slot: "crm".into(),
            hosts: vec!["api.example.com".into()],
            methods: vec![],
            path_prefixes: vec![],
            injection: Injection::Basic,
            expires_at: 10,
            max_requests: 1,
            mode,
        }
    }

    #[test]
    fn seal_then_open_and_every_failure_is_distinct() {
        let sk = [5u8; 32];
        let pk = sealing_public_key(&sk);
        let grant = seal(&pk, policy(CredentialMode::Sealed), b"user:pw", &[9; 32])
            .unwrap_or_else(|e| panic!("{e}"));
        let hire = grant.policy.hire_id;
        let opened = open(&grant, &sk, &hire, "crm").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(opened.as_slice(), b"user:pw");

        let other = Hash::digest(b"other");
        assert!(matches!(
            open(&grant, &sk, &other, "crm"),
            Err(OpenError::WrongHire { .. })
        ));
        assert!(matches!(
            open(&grant, &sk, &hire, "mail"),
            Err(OpenError::WrongSlot { .. })
        ));
        assert_eq!(
            open(&grant, &[6; 32], &hire, "crm"),
            Err(OpenError::WrongRecipient)
        );

        let mut tampered = grant.clone();
        if let Some(s) = tampered.sealed.as_mut() {
            s.ciphertext[0] ^= 1;
        }
        assert_eq!(open(&tampered, &sk, &hire, "crm"), Err(OpenError::Tampered));

        let mut enc_tampered = grant.clone();
        if let Some(s) = enc_tampered.sealed.as_mut() {
            s.enc[3] ^= 1;
        }
        assert_eq!(
            open(&enc_tampered, &sk, &hire, "crm"),
            Err(OpenError::Tampered)
        );

        // The same sealed secret under a wider policy: its recorded hash no longer matches.
        let mut widened = grant.clone();
        widened.policy.max_requests = 1000;
        assert_eq!(open(&widened, &sk, &hire, "crm"), Err(OpenError::Replayed));
        // ... and with the recorded hash rewritten too, the AEAD refuses.
        if let Some(s) = widened.sealed.as_mut() {
            s.policy_hash = widened.policy.policy_hash();
        }
        assert_eq!(open(&widened, &sk, &hire, "crm"), Err(OpenError::Tampered));

        let relayed = CredentialGrant::relayed(policy(CredentialMode::Relayed {
            offline: crate::credential::OfflineBehaviour::Fail,
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(open(&relayed, &sk, &hire, "crm"), Err(OpenError::NotSealed));
    }

    #[test]
    fn seal_refuses_bad_inputs() {
        let pk = sealing_public_key(&[5; 32]);
        let sealed = policy(CredentialMode::Sealed);
        assert_eq!(
            seal(&pk, sealed.clone(), b"", &[1; 32]).err(),
            Some(SealError::EmptySecret)
        );
        assert_eq!(
            seal(&pk, sealed.clone(), &[0; MAX_SECRET_LEN + 1], &[1; 32]).err(),
            Some(SealError::SecretTooLarge(MAX_SECRET_LEN + 1))
        );
        // The identity (all zero) is a low-order point: X25519 would yield zero.
        assert_eq!(
            seal(&[0; 32], sealed, b"s", &[1; 32]).err(),
            Some(SealError::InvalidRecipientKey)
        );
        let relayed = policy(CredentialMode::Relayed {
            offline: crate::credential::OfflineBehaviour::Fail,
        });
        assert_eq!(
            seal(&pk, relayed, b"s", &[1; 32]).err(),
            Some(SealError::WrongMode("relayed"))
        );
    }

    #[test]
    fn sealing_is_deterministic_in_the_seed_and_hides_the_secret() {
        let pk = sealing_public_key(&[5; 32]);
        let a = seal(&pk, policy(CredentialMode::Sealed), b"canary-123", &[1; 32]);
        let b = seal(&pk, policy(CredentialMode::Sealed), b"canary-123", &[1; 32]);
        let c = seal(&pk, policy(CredentialMode::Sealed), b"canary-123", &[2; 32]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let bytes = a.map(|g| crate::encoding::encode(&g)).unwrap_or_default();
        assert!(!bytes.windows(10).any(|w| w == b"canary-123"));
        assert!(!format!("{c:?}").contains("canary"));
    }
}
