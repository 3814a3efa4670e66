//! The durable record of one hire (JSON in the store's hires table) and the names of the
//! blobs kept beside it. Everything a hire needs to resume after a crash is here or in the
//! receipt chain.

use serde::{Deserialize, Serialize};
use souk_protocol::Hash;
use souk_protocol::hire::{HireState, Verdict};
use souk_protocol::manifest::Manifest;
use souk_protocol::negotiation::Contract;
use souk_protocol::signed::Signed;

/// Blob: the signed manifest envelope hired.
pub const BLOB_MANIFEST: &str = "manifest";
/// Blob: the contract bytes.
pub const BLOB_CONTRACT: &str = "contract";
/// Blob: the job input.
pub const BLOB_INPUT: &str = "input";
/// Blob: the salt of the input commitment.
pub const BLOB_SALT: &str = "salt";
/// Blob: the job output.
pub const BLOB_OUTPUT: &str = "output";
/// Blob: the agent's latest checkpoint.
pub const BLOB_CHECKPOINT: &str = "checkpoint";
/// Blob: the client's signed attestation envelope.
pub const BLOB_ATTESTATION: &str = "attestation";
/// Blob: an equivocation proof against the provider.
pub const BLOB_EQUIVOCATION: &str = "equivocation";
/// Blob: the client's pending answer (provider side, until the agent has it).
pub const BLOB_ANSWER: &str = "answer";

/// Which side of the hire this node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// This node hired the agent.
    Client,
    /// This node runs the agent.
    Provider,
}

/// One hire, as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HireRecord {
    /// Hire id (hex).
    pub hire_id: String,
    /// Our side.
    pub role: Role,
    /// Lifecycle state (`working`, `input-required`, ...).
    pub state: String,
    /// The client's verdict once settled.
    pub verdict: Option<String>,
    /// Agent name.
    pub agent: String,
    /// Manifest id (hex).
    pub manifest_id: String,
    /// Provider node id.
    pub provider: String,
    /// Client node id.
    pub client: String,
    /// Agreed price (micro-units).
    pub price: u64,
    /// Currency.
    pub currency: String,
    /// Agreed deadline (ms).
    pub deadline: u64,
    /// Whether the contract came from a counter-offer.
    pub countered: bool,
    /// When the contract was formed (ms).
    pub created_at: u64,
    /// Last change (ms).
    pub updated_at: u64,
    /// Receipt entries held.
    pub entries: u64,
    /// The agent's open question (client side), if any.
    pub question: Option<serde_json::Value>,
    /// What went wrong (a failed hire's reason, or a broken receipt stream).
    pub error: Option<String>,
    /// Client side: the attestation still has to reach the provider.
    pub settle_pending: bool,
}

impl HireRecord {
    /// A new record for a contract just formed.
    pub fn new(role: Role, contract: &Contract, manifest: &Signed<Manifest>, now: u64) -> Self {
        let terms = contract.terms();
        Self {
            hire_id: contract.hire_id().to_hex(),
            role,
            state: HireState::Accepted.as_str().into(),
            verdict: None,
            agent: manifest.body().name.clone(),
            manifest_id: manifest.id().to_hex(),
            provider: contract.provider().to_string(),
            client: contract.client().to_string(),
            price: terms.price.amount,
            currency: terms.price.currency.clone(),
            deadline: terms.deadline,
            countered: matches!(
                contract.proposal,
                souk_protocol::negotiation::Proposal::Counter(_)
            ),
            created_at: now,
            updated_at: now,
            entries: 0,
            question: None,
            error: None,
            settle_pending: false,
        }
    }

    /// The hire id.
    pub fn id(&self) -> Hash {
        Hash::from_hex(&self.hire_id).unwrap_or(Hash::ZERO)
    }

    /// The state as the pure type.
    pub fn state(&self) -> HireState {
        HireState::parse(&self.state).unwrap_or(HireState::Failed)
    }

    /// Sets the state.
    pub fn set_state(&mut self, s: HireState, now: u64) {
        self.state = s.as_str().into();
        self.updated_at = now;
    }

    /// The verdict as the pure type.
    pub fn verdict(&self) -> Option<Verdict> {
        match self.verdict.as_deref() {
            Some("accepted") => Some(Verdict::Accepted),
            Some("disputed") => Some(Verdict::Disputed),
            _ => None,
        }
    }

    /// JSON bytes for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// From stored JSON.
    pub fn from_bytes(b: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(b).map_err(|e| format!("unreadable hire record: {e}"))
    }
}
