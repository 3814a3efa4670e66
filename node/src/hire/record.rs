//! The durable record of one hire (JSON in the store's hires table) and the names of the
//! blobs kept beside it. Everything a hire needs to resume after a crash is here or in the
//! receipt chain.
//!
//! The JSON keeps the text forms of schema version 1 (ids as hex, node ids as `souk…`, states
//! and verdicts by name), so records written before these fields were typed read back as
//! they are. A record that does not parse is an error, never a default value.

use serde::{Deserialize, Serialize};
use souk_protocol::hire::{HireState, HireStatus, SettleError, Verdict};
use souk_protocol::manifest::Manifest;
use souk_protocol::negotiation::{Contract, Proposal};
use souk_protocol::signed::Signed;
use souk_protocol::{Hash, NodeId};

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
/// Blob: the running agent's sandbox (JSON `SandboxRecord`, empty when none runs), so a
/// restarted node can stop what a crash left before resuming.
pub const BLOB_SANDBOX: &str = "sandbox";

/// Which side of the hire this node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// This node hired the agent.
    Client,
    /// This node runs the agent.
    Provider,
}

impl Role {
    /// `client` or `provider`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Provider => "provider",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One hire, as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HireRecord {
    /// Hire id.
    pub hire_id: Hash,
    /// Our side.
    pub role: Role,
    /// Lifecycle state (`working`, `input-required`, ...).
    pub state: HireState,
    /// The client's verdict once settled.
    pub verdict: Option<Verdict>,
    /// Agent name.
    pub agent: String,
    /// Manifest id.
    pub manifest_id: Hash,
    /// Provider node id.
    pub provider: NodeId,
    /// Client node id.
    pub client: NodeId,
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
    /// Client side: the hire was ended here, without a terminal receipt, and why (the
    /// provider equivocated: nothing it signs for this hire can be trusted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Closed>,
}

impl HireRecord {
    /// Whether following this hire is over once its receipts up to `seen` were read: a
    /// terminal state with every receipt seen, or ended by this node (`closed`), or broken
    /// off with an error while not terminal.
    pub fn follow_done(&self, seen: u64) -> bool {
        (self.state.is_terminal() && seen >= self.entries)
            || self.closed.is_some()
            || (self.error.is_some() && !self.state.is_terminal())
    }
}

/// Why a client ended a hire whose chain has no terminal entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClosedReason {
    /// The provider signed two different entries at one seq of this hire (an equivocation
    /// proof is stored with the hire and published).
    ProviderEquivocated,
}

impl ClosedReason {
    /// `provider-equivocated`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClosedReason::ProviderEquivocated => "provider-equivocated",
        }
    }
}

/// A client's local end of a hire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    /// Why.
    pub reason: ClosedReason,
    /// When (ms).
    pub at: u64,
}

/// A stored hire record that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("unreadable hire record: {0}")]
pub struct RecordError(#[from] serde_json::Error);

impl HireRecord {
    /// A new record for a contract just formed.
    pub fn new(role: Role, contract: &Contract, manifest: &Signed<Manifest>, now: u64) -> Self {
        let terms = contract.terms();
        Self {
            hire_id: contract.hire_id(),
            role,
            state: HireState::Accepted,
            verdict: None,
            agent: manifest.body().name.clone(),
            manifest_id: manifest.id(),
            provider: contract.provider(),
            client: contract.client(),
            price: terms.price.amount,
            currency: terms.price.currency.clone(),
            deadline: terms.deadline,
            countered: matches!(contract.proposal, Proposal::Counter(_)),
            created_at: now,
            updated_at: now,
            entries: 0,
            question: None,
            error: None,
            settle_pending: false,
            closed: None,
        }
    }

    /// The hire id.
    pub fn id(&self) -> Hash {
        self.hire_id
    }

    /// Sets the state.
    pub fn set_state(&mut self, s: HireState, now: u64) {
        self.state = s;
        self.updated_at = now;
    }

    /// The state and settlement as the protocol's [`HireStatus`] (every stored hire had a
    /// contract).
    pub fn status(&self) -> HireStatus {
        HireStatus {
            state: self.state,
            verdict: self.verdict,
            contracted: true,
        }
    }

    /// Records the client's verdict, if the protocol allows settling now
    /// ([`HireStatus::settle`]: the hire has ended and is not settled yet).
    pub fn settle(&mut self, verdict: Verdict, now: u64) -> Result<(), SettleError> {
        let mut status = self.status();
        status.settle(verdict)?;
        self.verdict = status.verdict;
        self.updated_at = now;
        Ok(())
    }

    /// JSON bytes for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing this struct cannot fail: every field is a string, number, bool or a
        // JSON value, with string map keys only.
        serde_json::to_vec(self).unwrap_or_else(|e| unreachable!("hire record to JSON: {e}"))
    }

    /// From stored JSON.
    pub fn from_bytes(b: &[u8]) -> Result<Self, RecordError> {
        Ok(serde_json::from_slice(b)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as schema version 1 wrote it (all fields as text).
    const V1: &str = r#"{"hire_id":"ab00000000000000000000000000000000000000000000000000000000000000","role":"client","state":"input-required","verdict":null,"agent":"csv-analyst","manifest_id":"cd00000000000000000000000000000000000000000000000000000000000000","provider":"PROVIDER","client":"CLIENT","price":500000,"currency":"USD","deadline":1800000000000,"countered":false,"created_at":1,"updated_at":2,"entries":3,"question":{"q":"header?"},"error":null,"settle_pending":false}"#;

    fn v1() -> String {
        let p = souk_protocol::Keypair::from_seed(&[1; 32]).id().to_string();
        let c = souk_protocol::Keypair::from_seed(&[2; 32]).id().to_string();
        V1.replace("PROVIDER", &p).replace("CLIENT", &c)
    }

    #[test]
    fn version_1_records_read_back_unchanged() {
        let text = v1();
        let r = HireRecord::from_bytes(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.state, HireState::InputRequired);
        assert_eq!(r.role, Role::Client);
        assert_eq!(r.hire_id.short(), "ab000000");
        assert_eq!(String::from_utf8(r.to_bytes()).ok(), Some(text));
    }

    #[test]
    fn a_bad_field_is_an_error_not_a_default() {
        for (from, to) in [
            ("\"input-required\"", "\"sleeping\""),
            ("\"verdict\":null", "\"verdict\":\"maybe\""),
            ("\"ab000000", "\"zz000000"),
            ("\"role\":\"client\"", "\"role\":\"boss\""),
        ] {
            let text = v1().replace(from, to);
            assert!(HireRecord::from_bytes(text.as_bytes()).is_err(), "{to}");
        }
    }

    #[test]
    fn settling_follows_the_protocol() {
        let mut r = HireRecord::from_bytes(v1().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.settle(Verdict::Accepted, 5),
            Err(SettleError::NotSettleable(HireState::InputRequired))
        );
        r.state = HireState::Completed;
        assert_eq!(r.settle(Verdict::Accepted, 5), Ok(()));
        assert_eq!(r.verdict, Some(Verdict::Accepted));
        assert_eq!(
            r.settle(Verdict::Disputed, 6),
            Err(SettleError::AlreadySettled(Verdict::Accepted))
        );
    }
}
