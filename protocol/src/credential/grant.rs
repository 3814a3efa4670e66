//! The credential grant: a client-signed policy for one slot of one hire, with the sealed
//! secret in sealed mode, and the checks a provider runs on the grants an `accept` call carries.
//!
//! A grant travels as `Signed<CredentialGrant>` with tag `souk/v1/credential-grant`, signed by
//! the contract's client. The provider stores the envelope exactly as received (the secret
//! inside stays HPKE-encrypted at rest) and opens it only in its egress proxy
//! ([`crate::credential::open`]). Never decrypts anything here.

use crate::Timestamp;
use crate::credential::policy::{CredentialMode, CredentialPolicy, PolicyError};
use crate::credential::seal::{SealError, SealedSecret};
use crate::encoding::{Canonical, DecodeError, Encoder, Reader};
use crate::hash::Domain;
use crate::identity::NodeId;
use crate::manifest::Manifest;
use crate::negotiation::{Contract, HireId};
use crate::signed::{Signed, SignedBody, SignedError};

/// Format version of the grant body.
pub const GRANT_VERSION: u64 = 1;
/// Largest encoded grant body.
pub const MAX_GRANT_LEN: usize = 48 * 1024;
/// Largest grant envelope (body + 128).
pub const MAX_GRANT_ENVELOPE_LEN: usize = MAX_GRANT_LEN + 128;
/// Most grants in one `accept` call (the manifest's limit on slots).
pub const MAX_GRANTS: usize = 16;

/// A client-signed grant envelope.
pub type SignedGrant = Signed<CredentialGrant>;

/// What a client grants for one slot of one hire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialGrant {
    /// The policy.
    pub policy: CredentialPolicy,
    /// The HPKE-sealed secret: present exactly when the policy's mode is sealed.
    pub sealed: Option<SealedSecret>,
}

impl CredentialGrant {
    /// A relayed-mode grant (the secret stays with the client). The policy must be for
    /// relayed mode and pass [`CredentialPolicy::validate`].
    pub fn relayed(policy: CredentialPolicy) -> Result<Self, SealError> {
        if policy.mode == CredentialMode::Sealed {
            return Err(SealError::WrongMode(policy.mode.as_str()));
        }
        policy.validate()?;
        Ok(Self {
            policy,
            sealed: None,
        })
    }
}

impl SignedBody for CredentialGrant {
    const DOMAIN: Domain = Domain::CredentialGrant;
    const MAX_BODY_LEN: usize = MAX_GRANT_LEN;
    fn named_signer(&self) -> Option<NodeId> {
        None // the contract names the client
    }
}

impl Canonical for CredentialGrant {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(3);
        enc.u64(GRANT_VERSION);
        self.policy.encode(enc);
        enc.option(self.sealed.as_ref());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(3)?;
        r.version(GRANT_VERSION)?;
        let g = CredentialGrant {
            policy: CredentialPolicy::decode(r)?,
            sealed: r.option()?,
        };
        r.leave();
        Ok(g)
    }
}

/// Why a provider refuses a grant carried by an `accept` call (the call then fails with
/// `bad-call`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// More than [`MAX_GRANTS`] grants.
    #[error("{0} credential grants, at most {MAX_GRANTS} allowed")]
    TooMany(usize),
    /// The envelope does not decode, is not signed by the contract's client, or its
    /// signature does not verify.
    #[error("credential grant: {0}")]
    Envelope(#[from] SignedError),
    /// The policy names another hire.
    #[error("credential grant for hire {found}, the contract's is {expected}")]
    WrongHire {
        /// The contract's hire id.
        expected: HireId,
        /// The hire the policy names.
        found: HireId,
    },
    /// The manifest has no slot of that name.
    #[error("credential grant for slot {0:?}, which the manifest does not declare")]
    UnknownSlot(String),
    /// Two grants for the same slot.
    #[error("two credential grants for slot {0:?}")]
    DuplicateSlot(String),
    /// The policy breaks a rule against the manifest's slot.
    #[error("credential grant for slot {slot:?}: {source}")]
    Policy {
        /// The slot.
        slot: String,
        /// What is wrong.
        #[source]
        source: PolicyError,
    },
    /// A sealed policy without a sealed secret, or a relayed one with one.
    #[error("credential grant for slot {0:?}: the sealed secret does not match the mode")]
    ModeMismatch(String),
    /// Sealed to another key than the manifest's sealing key.
    #[error("credential grant for slot {0:?} is sealed to another sealing key")]
    WrongRecipient(String),
    /// Sealed under another policy than the grant's.
    #[error("credential grant for slot {0:?} carries a secret sealed under another policy")]
    Replayed(String),
    /// Already expired.
    #[error("credential grant for slot {slot:?} expired at {expires_at} (now {now})")]
    Expired {
        /// The slot.
        slot: String,
        /// The policy's expiry.
        expires_at: Timestamp,
        /// The time of the check.
        now: Timestamp,
    },
}

impl GrantError {
    /// Stable kebab-case name (used in test vectors).
    pub fn code(&self) -> &'static str {
        match self {
            GrantError::TooMany(_) => "too-many",
            GrantError::Envelope(_) => "envelope",
            GrantError::WrongHire { .. } => "wrong-hire",
            GrantError::UnknownSlot(_) => "unknown-slot",
            GrantError::DuplicateSlot(_) => "duplicate-slot",
            GrantError::Policy { .. } => "policy",
            GrantError::ModeMismatch(_) => "mode-mismatch",
            GrantError::WrongRecipient(_) => "wrong-recipient",
            GrantError::Replayed(_) => "replayed",
            GrantError::Expired { .. } => "expired",
        }
    }
}

/// Checks one grant envelope against the contract being accepted and the manifest it was
/// verified against (`spec/credentials.md`, "Checks on accept"), in order: decode, client
/// signature, hire id, slot exists, policy valid for the slot, sealed secret present iff
/// sealed mode, sealed to the manifest's sealing key and under this policy, not expired at
/// `now`. Does not decrypt.
pub fn check_grant(
    bytes: &[u8],
    contract: &Contract,
    manifest: &Manifest,
    now: Timestamp,
) -> Result<SignedGrant, GrantError> {
    let grant = SignedGrant::decode_bytes(bytes)?;
    grant.verify(&contract.client())?;
    let g = grant.body();
    let p = &g.policy;
    let hire = contract.hire_id();
    if p.hire_id != hire {
        return Err(GrantError::WrongHire {
            expected: hire,
            found: p.hire_id,
        });
    }
    let slot = manifest
        .credentials
        .iter()
        .find(|s| s.name == p.slot)
        .ok_or_else(|| GrantError::UnknownSlot(p.slot.clone()))?;
    p.validate_for(slot).map_err(|source| GrantError::Policy {
        slot: p.slot.clone(),
        source,
    })?;
    match (&g.sealed, p.mode) {
        (Some(s), CredentialMode::Sealed) => {
            if s.recipient != manifest.sealing_key {
                return Err(GrantError::WrongRecipient(p.slot.clone()));
            }
            if s.policy_hash != p.policy_hash() {
                return Err(GrantError::Replayed(p.slot.clone()));
            }
        }
        (None, CredentialMode::Relayed { .. }) => {}
        _ => return Err(GrantError::ModeMismatch(p.slot.clone())),
    }
    if now >= p.expires_at {
        return Err(GrantError::Expired {
            slot: p.slot.clone(),
            expires_at: p.expires_at,
            now,
        });
    }
    Ok(grant)
}

/// Checks every grant of an `accept` call: at most [`MAX_GRANTS`], each by [`check_grant`] in
/// order, and no two for the same slot. An empty list is valid (a hire without credentials).
pub fn check_grants(
    grants: &[Vec<u8>],
    contract: &Contract,
    manifest: &Manifest,
    now: Timestamp,
) -> Result<Vec<SignedGrant>, GrantError> {
    if grants.len() > MAX_GRANTS {
        return Err(GrantError::TooMany(grants.len()));
    }
    let mut out: Vec<SignedGrant> = Vec::with_capacity(grants.len());
    for bytes in grants {
        let g = check_grant(bytes, contract, manifest, now)?;
        let slot = &g.body().policy.slot;
        if out.iter().any(|o| &o.body().policy.slot == slot) {
            return Err(GrantError::DuplicateSlot(slot.clone()));
        }
        out.push(g);
    }
    Ok(out)
}
