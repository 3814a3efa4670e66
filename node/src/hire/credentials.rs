//! Credentials of a hire on this node (`spec/credentials.md`): the grants a client signs for
//! the credential slots of the agent it hires, and how both sides keep them.
//!
//! - Client: for each slot the user grants, a policy (hosts, methods, paths, expiry, budget)
//!   and either the secret HPKE-sealed to the provider's sealing key (sealed mode) or nothing
//!   (relayed mode: the secret stays here, sealed at rest to this node's own sealing key, and
//!   the provider's proxy forwards calls to us). Grants travel in the `accept` call.
//! - Provider: the grants are checked on `accept` and stored with the contract, still sealed;
//!   [`open_sealed`] opens one per proxied call for the egress proxy, and nothing else does.
//!
//! Secrets are held in [`Zeroizing`] buffers, never logged, never in errors.

use serde::{Deserialize, Serialize};
use souk_protocol::Hash;
use souk_protocol::credential::{
    self, CredentialGrant, CredentialMode, CredentialPolicy, OfflineBehaviour,
};
use souk_protocol::encoding::{Encoder, Reader};
use souk_protocol::identity::Keypair;
use souk_protocol::manifest::Manifest;
use souk_protocol::negotiation::Contract;
use souk_protocol::signed::Signed;
use souk_store::Store;
use zeroize::Zeroizing;

use super::error::HireError;

/// Blob: the signed grant envelopes of the hire (CBOR array of byte strings), both sides.
pub const BLOB_GRANTS: &str = "grants";
/// Blob prefix, client side, relayed mode: `relay-secret/<slot>` holds the secret sealed to
/// this node's own sealing key (a [`CredentialGrant`] in canonical CBOR).
pub const BLOB_RELAY_SECRET: &str = "relay-secret/";

/// Requests a client's grants default to, when the user sets no budget.
pub const DEFAULT_MAX_REQUESTS: u64 = 1_000;

/// A secret as the API receives it (a JSON string). Never printed; zeroized when dropped.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Secret(Zeroizing::new(String::deserialize(d)?)))
    }
}

impl Secret {
    /// A secret from its text.
    pub fn new(text: String) -> Self {
        Secret(Zeroizing::new(text))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Sealed or relayed, as the API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantMode {
    /// The secret goes to the provider, sealed to its node key.
    #[default]
    Sealed,
    /// The secret stays on this node; the provider's proxy relays calls here.
    Relayed,
}

/// What the client grants for one credential slot (part of a new hire).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CredentialRequest {
    /// The manifest's slot name.
    pub slot: String,
    /// The secret.
    pub secret: Secret,
    /// Sealed (default) or relayed.
    #[serde(default)]
    pub mode: GrantMode,
    /// Allowed methods (empty: any).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Allowed path prefixes (empty: any).
    #[serde(default)]
    pub path_prefixes: Vec<String>,
    /// Most requests the secret may be used for [default: 1000].
    pub max_requests: Option<u64>,
    /// Relayed mode: how long a call may wait for this node to come back online (ms); none:
    /// fail at once.
    pub offline_wait_ms: Option<u64>,
}

/// A client's grants, ready to send and to keep.
pub(crate) struct Granted {
    /// Signed grant envelopes (the `accept` call's `credentials`).
    pub envelopes: Vec<Vec<u8>>,
    /// Relayed slots: the blob name and the secret sealed to our own key.
    pub kept: Vec<(String, Vec<u8>)>,
}

/// Builds and signs the grants of `requests` for `contract`. `own_sealing` is this node's
/// sealing secret (relayed secrets are kept sealed to it). `random` gives 32 fresh bytes.
pub(crate) fn grant(
    contract: &Contract,
    manifest: &Manifest,
    requests: &[CredentialRequest],
    key: &Keypair,
    own_sealing: &[u8; 32],
    mut random: impl FnMut() -> Result<[u8; 32], HireError>,
) -> Result<Granted, HireError> {
    let hire_id = contract.hire_id();
    let expires_at = contract.terms().deadline;
    let mut out = Granted {
        envelopes: Vec::new(),
        kept: Vec::new(),
    };
    for r in requests {
        let slot = manifest
            .credentials
            .iter()
            .find(|s| s.name == r.slot)
            .ok_or_else(|| {
                HireError::Invalid(format!(
                    "the agent has no credential slot {:?} (it has: {})",
                    r.slot,
                    manifest
                        .credentials
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let mut methods: Vec<String> = r.methods.iter().map(|m| m.to_uppercase()).collect();
        methods.sort();
        methods.dedup();
        let mut path_prefixes = r
            .path_prefixes
            .iter()
            .map(|p| credential::normalize_path(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| HireError::Invalid(format!("slot {}: path prefix: {e}", r.slot)))?;
        path_prefixes.sort();
        path_prefixes.dedup();
        let mode = match r.mode {
            GrantMode::Sealed => CredentialMode::Sealed,
            GrantMode::Relayed => CredentialMode::Relayed {
                offline: match r.offline_wait_ms {
                    None | Some(0) => OfflineBehaviour::Fail,
                    Some(max_ms) => OfflineBehaviour::Wait { max_ms },
                },
            },
        };
        let policy = CredentialPolicy {
            hire_id,
            slot: r.slot.clone(),
            hosts: slot.hosts.clone(),
            methods,
            path_prefixes,
            injection: slot.injection.clone(),
            expires_at,
            max_requests: r.max_requests.unwrap_or(DEFAULT_MAX_REQUESTS),
            mode,
        };
        policy
            .validate_for(slot)
            .map_err(|e| HireError::Invalid(format!("slot {}: {e}", r.slot)))?;
        let invalid =
            |e: credential::SealError| HireError::Invalid(format!("slot {}: {e}", r.slot));
        let grant = match r.mode {
            GrantMode::Sealed => {
                credential::seal(&manifest.sealing_key, policy, r.secret.bytes(), &random()?)
                    .map_err(invalid)?
            }
            GrantMode::Relayed => {
                // Kept at rest sealed to ourselves, under the same policy but sealed mode.
                let mut own = policy.clone();
                own.mode = CredentialMode::Sealed;
                let own_public = credential::sealing_public_key(own_sealing);
                let kept = credential::seal(&own_public, own, r.secret.bytes(), &random()?)
                    .map_err(invalid)?;
                out.kept.push((
                    format!("{BLOB_RELAY_SECRET}{}", r.slot),
                    souk_protocol::encoding::encode(&kept),
                ));
                CredentialGrant::relayed(policy).map_err(invalid)?
            }
        };
        out.envelopes.push(Signed::sign(grant, key).to_bytes());
    }
    Ok(out)
}

/// The grant envelopes as stored (CBOR array of byte strings).
pub(crate) fn encode_grants(envelopes: &[Vec<u8>]) -> Vec<u8> {
    let mut enc = Encoder::new();
    enc.array(envelopes.len());
    for e in envelopes {
        enc.bytes(e);
    }
    enc.into_bytes()
}

/// The stored grant envelopes of hire `id` (none if it has no credentials).
pub(crate) fn stored_grants(store: &Store, id: &Hash) -> Result<Vec<Vec<u8>>, HireError> {
    match store.get_hire_blob(id, BLOB_GRANTS)? {
        None => Ok(Vec::new()),
        Some(raw) => parse_grants(&raw).map_err(|e| HireError::corrupt(*id, BLOB_GRANTS, e)),
    }
}

/// The envelopes of a stored [`BLOB_GRANTS`] blob (none if it does not decode; for tests and
/// tools that inspect a store).
pub fn decode_grants(raw: &[u8]) -> Vec<Vec<u8>> {
    parse_grants(raw).unwrap_or_default()
}

fn parse_grants(raw: &[u8]) -> Result<Vec<Vec<u8>>, souk_protocol::encoding::DecodeError> {
    let mut r = Reader::new(raw);
    let n = r.array()?;
    let mut out = Vec::with_capacity(n.min(credential::MAX_GRANTS));
    for _ in 0..n {
        out.push(r.bytes()?.to_vec());
    }
    r.finish()?;
    Ok(out)
}

/// Opens the sealed secret of `grant` for hire `id` with the provider's sealing secret: the
/// only place a provider ever sees a client's secret (for one proxied call).
pub(crate) fn open_sealed(
    grant: &CredentialGrant,
    sealing_secret: &[u8; 32],
    id: &Hash,
) -> Result<Zeroizing<Vec<u8>>, credential::OpenError> {
    credential::open(grant, sealing_secret, id, &grant.policy.slot)
}

/// Client, relayed mode: the kept secret of `slot` for hire `id`, opened with our own
/// sealing secret.
pub(crate) fn open_relayed(
    store: &Store,
    id: &Hash,
    slot: &str,
    own_sealing: &[u8; 32],
) -> Result<Option<Zeroizing<Vec<u8>>>, HireError> {
    let name = format!("{BLOB_RELAY_SECRET}{slot}");
    let Some(raw) = store.get_hire_blob(id, &name)? else {
        return Ok(None);
    };
    let kept: CredentialGrant =
        souk_protocol::encoding::decode(&raw, credential::MAX_GRANT_ENVELOPE_LEN)
            .map_err(|e| HireError::corrupt(*id, BLOB_RELAY_SECRET, e))?;
    credential::open(&kept, own_sealing, id, slot)
        .map(Some)
        .map_err(|e| HireError::corrupt(*id, BLOB_RELAY_SECRET, e))
}
