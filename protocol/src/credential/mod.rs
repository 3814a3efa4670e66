//! Credential isolation, the pure part: credential policies, client-signed grants, HPKE
//! sealing of a secret to a provider, the relay protocol for secrets that never leave the
//! client, denials, and the receipt rule (R10) for observed network calls.
//!
//! The client grants each credential slot of a hire with a [`CredentialPolicy`] inside a
//! [`CredentialGrant`] it signs. In sealed mode the grant carries the secret sealed
//! ([`fn@seal`]) to the provider's X25519 sealing key, and the provider's egress proxy
//! [`open`]s it per call; in relayed mode the provider forwards calls to the client
//! ([`RelayRequest`], [`RelayReply`]), whose signed [`RelayRecord`] ends up in the receipt
//! chain. Every byte is specified in `spec/credentials.md`.
//!
//! Nothing here performs I/O, draws randomness (callers pass the ephemeral seed) or keeps a
//! secret beyond the [`zeroize::Zeroizing`] buffer [`open`] returns; no error or `Debug`
//! output contains secret material.
//!
//! ```
//! use souk_protocol::credential::{self, CredentialMode, CredentialPolicy};
//! use souk_protocol::hash::Hash;
//! use souk_protocol::manifest::Injection;
//!
//! let provider_secret = [7u8; 32]; // the provider's sealing.key
//! let provider_public = credential::sealing_public_key(&provider_secret); // in its manifest
//! let hire_id = Hash::digest(b"the contract's id");
//! let policy = CredentialPolicy {
//!     hire_id,
//!     slot: "crm".into(),
//!     hosts: vec!["api.example.com".into()],
//!     methods: vec!["GET".into()],
//!     path_prefixes: vec!["/v1/".into()],
//!     injection: Injection::Header { name: "authorization".into(), prefix: "Bearer ".into() },
//!     expires_at: 1_900_000_000_000,
//!     max_requests: 100,
//!     mode: CredentialMode::Sealed,
//! };
//! let ephemeral_seed = [42u8; 32]; // 32 fresh random bytes in real use
//! let grant = credential::seal(&provider_public, policy, b"sk-live-123", &ephemeral_seed).unwrap();
//! let secret = credential::open(&grant, &provider_secret, &hire_id, "crm").unwrap();
//! assert_eq!(secret.as_slice(), b"sk-live-123");
//! ```

pub mod denial;
pub mod grant;
pub mod observe;
pub mod policy;
pub mod relay;
pub mod seal;

pub use denial::{Denial, DenialCode};
pub use grant::{
    CredentialGrant, GrantError, MAX_GRANT_ENVELOPE_LEN, MAX_GRANTS, SignedGrant, check_grant,
    check_grants,
};
pub use observe::{NetworkRules, NetworkSummary};
pub use policy::{
    CredentialMode, CredentialPolicy, OfflineBehaviour, PathError, PolicyError, normalize_path,
    path_matches,
};
pub use relay::{
    Header, RELAY_PROTOCOL, RecordError, RelayError, RelayRecord, RelayReply, RelayRequest,
    SignedRelayRecord, check_record,
};
pub use seal::{
    HPKE_INFO, OpenError, SealError, SealedSecret, open, seal, seal_aad, sealing_public_key,
};

/// Prefix of the placeholder an agent sees instead of a secret.
pub const PLACEHOLDER_PREFIX: &str = "souk-credential:";
/// Prefix of the environment variable that holds a slot's placeholder.
pub const ENV_PREFIX: &str = "SOUK_CREDENTIAL_";

/// The placeholder of a slot: `souk-credential:<slot>`.
pub fn placeholder(slot: &str) -> String {
    format!("{PLACEHOLDER_PREFIX}{slot}")
}

/// The environment variable holding a slot's placeholder: `SOUK_CREDENTIAL_<SLOT>`, the slot
/// upper-cased with `-` replaced by `_`.
pub fn env_var(slot: &str) -> String {
    let mut out = String::with_capacity(ENV_PREFIX.len() + slot.len());
    out.push_str(ENV_PREFIX);
    out.extend(slot.chars().map(|c| {
        if c == '-' {
            '_'
        } else {
            c.to_ascii_uppercase()
        }
    }));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholder_and_env_var() {
        assert_eq!(super::placeholder("crm-eu"), "souk-credential:crm-eu");
        assert_eq!(super::env_var("crm-eu2"), "SOUK_CREDENTIAL_CRM_EU2");
    }
}
