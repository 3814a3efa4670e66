//! Secrets and where they come from.
//!
//! Owns [`Secret`] (a zeroizing byte buffer with no `Debug`/`Display`) and [`SecretSource`]
//! (sealed: the node opens the HPKE-sealed grant on each use; relayed: the client's node holds
//! it). Placeholders are the protocol's (`souk_protocol::credential::placeholder`). Nothing
//! here logs, formats or stores a secret; a `Secret` lives only for the duration of one call.

use std::sync::Arc;

use souk_protocol::receipt::CallMode;
use zeroize::Zeroizing;

use crate::relay::Relay;

/// A credential in clear, zeroized on drop. Deliberately not `Debug`, `Display` or `Clone`.
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps bytes already held in a zeroizing buffer.
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Secret {
        Secret(bytes)
    }

    /// The secret's bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

/// Why the node could not open a sealed secret. Carries no detail that could leak the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No sealed credential is stored for this hire and slot (or it was deleted).
    #[error("no credential is stored for this slot")]
    Missing,
    /// The sealed credential does not open for this hire, slot and policy (tampered,
    /// replayed from another hire, or sealed to another key).
    #[error("the sealed credential does not open for this hire, slot and policy")]
    Invalid,
}

/// Opens the sealed secret for one call (HPKE open with the node's sealing key, AAD = hire
/// id, slot, policy hash). Called once per credentialed call; the result is dropped (and
/// zeroized) when the call ends.
pub type SealedOpener = Arc<dyn Fn() -> Result<Zeroizing<Vec<u8>>, SecretError> + Send + Sync>;

/// Where a slot's secret comes from.
#[derive(Clone)]
pub enum SecretSource {
    /// Sealed mode: the provider's node opens the secret just before injecting it.
    Sealed(SealedOpener),
    /// Relayed mode: the call is carried to the client's node, which injects and performs it.
    Relayed(Arc<dyn Relay>),
}

impl SecretSource {
    /// How a call through this source is recorded in its receipt entry.
    pub(crate) fn call_mode(&self) -> CallMode {
        match self {
            SecretSource::Sealed(_) => CallMode::Sealed,
            SecretSource::Relayed(_) => CallMode::Relayed,
        }
    }
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecretSource::Sealed(_) => "Sealed(..)",
            SecretSource::Relayed(_) => "Relayed(..)",
        })
    }
}
