//! Outcome records: the compact, self-verifying proof of how one settled hire ended, and
//! where such a record is verified ([`OutcomeRecord::verify_bytes`]).
//!
//! A record is `[version, agent, contract, head, attestation]`: the agent's
//! [`ManifestRef`], the contract's canonical bytes, the provider-signed terminal receipt
//! entry and the client's attestation of it. It is checked without the receipt chain and
//! without the manifest (rules O1-O10 with the contract rules, in the order fixed by
//! `spec/outcomes.md`), and what a valid record shows is an [`Outcome`]. This module never
//! decides what an outcome is worth (reputation is the index's business) and never touches
//! the network or the disk.

use crate::Timestamp;
use crate::encoding::{self, Canonical, DecodeError, Encoder, Reader};
use crate::hash::{Domain, Hash};
use crate::hire::Verdict;
use crate::identity::NodeId;
use crate::manifest::{ManifestRef, is_valid_name};
use crate::negotiation::{Contract, HireId, MAX_CONTRACT_LEN, Price};
use crate::receipt::{
    Attestation, Canceler, EntryKind, FailureCode, MAX_ATTESTATION_LEN, MAX_ENTRY_LEN, SignedEntry,
};
use crate::rules::{Rule, Violation};
use crate::signed::Signed;

/// Format version of an outcome record.
pub const OUTCOME_VERSION: u64 = 1;
/// Largest signed terminal entry (envelope) a record carries: the entry body limit plus
/// 128 bytes of envelope.
pub const MAX_OUTCOME_HEAD_LEN: usize = MAX_ENTRY_LEN + 128;
/// Largest signed attestation (envelope) a record carries: the body limit plus 128 bytes.
pub const MAX_OUTCOME_ATTESTATION_LEN: usize = MAX_ATTESTATION_LEN + 128;
/// Largest encoded outcome record: 16384 (contract) + 8320 (head) + 2176 (attestation) +
/// 256 (version, reference, headers) = 27136 bytes, rounded up to 28 KiB. Every record whose
/// parts respect their own limits fits.
pub const MAX_OUTCOME_LEN: usize = 28 * 1024;

/// An outcome record as carried on the wire: the parts as bytes, checked by
/// [`OutcomeRecord::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeRecord {
    /// The agent hired.
    pub agent: ManifestRef,
    /// The contract's canonical bytes (`spec/negotiation.md`).
    pub contract: Vec<u8>,
    /// The provider's signed terminal entry (`Signed<entry-body>` envelope bytes).
    pub head: Vec<u8>,
    /// The client's signed attestation of that entry (envelope bytes).
    pub attestation: Vec<u8>,
}

/// How the hire ended: the kind of the provider-signed terminal entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(tag = "kind", rename_all = "kebab-case")
)]
pub enum OutcomeEnd {
    /// The agent produced its result.
    Completed,
    /// The hire failed.
    Failed {
        /// Why.
        code: FailureCode,
    },
    /// The contract deadline passed first.
    Expired,
    /// The hire was canceled.
    Canceled {
        /// By whom.
        by: Canceler,
    },
}

impl OutcomeEnd {
    /// The end a terminal entry kind records; `None` for a kind that is not terminal.
    pub fn of(kind: &EntryKind) -> Option<OutcomeEnd> {
        match kind {
            EntryKind::Completed { .. } => Some(OutcomeEnd::Completed),
            EntryKind::Failed { code, .. } => Some(OutcomeEnd::Failed { code: *code }),
            EntryKind::Expired { .. } => Some(OutcomeEnd::Expired),
            EntryKind::Canceled { by, .. } => Some(OutcomeEnd::Canceled { by: *by }),
            _ => None,
        }
    }

    /// `completed`, `failed`, `expired` or `canceled`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeEnd::Completed => "completed",
            OutcomeEnd::Failed { .. } => "failed",
            OutcomeEnd::Expired => "expired",
            OutcomeEnd::Canceled { .. } => "canceled",
        }
    }
}

impl std::fmt::Display for OutcomeEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutcomeEnd::Failed { code } => write!(f, "failed ({})", code.as_str()),
            OutcomeEnd::Canceled { by } => write!(f, "canceled by {}", by.as_str()),
            other => f.write_str(other.as_str()),
        }
    }
}

/// What a valid outcome record shows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Outcome {
    /// `BLAKE3("souk/v1/outcome" || 0x00 || record bytes)`: dedupes identical records.
    pub record_id: Hash,
    /// The hire (the record's key: one record per hire).
    pub hire_id: HireId,
    /// The agent hired.
    pub agent: ManifestRef,
    /// `agent.id()`, the manifest id the request named.
    pub manifest_id: Hash,
    /// The provider, who signed the proposal and the terminal entry.
    pub provider: NodeId,
    /// The client, who signed the request, the acceptance and the attestation.
    pub client: NodeId,
    /// How the hire ended, as the provider signed it.
    pub end: OutcomeEnd,
    /// The client's verdict.
    pub verdict: Verdict,
    /// The client's reason (free text from the attestation).
    pub reason: String,
    /// Entries in the chain: the head's seq + 1.
    pub entries: u64,
    /// The terminal entry's id.
    pub head: Hash,
    /// When the client attested (the attestation's `created-at`).
    pub settled_at: Timestamp,
    /// The agreed price.
    pub price: Price,
    /// The agreed deadline.
    pub deadline: Timestamp,
}

impl OutcomeRecord {
    /// A record from its parts (it is checked by [`OutcomeRecord::verify`], not here).
    pub fn build(
        agent: ManifestRef,
        contract: &[u8],
        head: &SignedEntry,
        attestation: &Signed<Attestation>,
    ) -> OutcomeRecord {
        OutcomeRecord {
            agent,
            contract: contract.to_vec(),
            head: head.to_bytes(),
            attestation: attestation.to_bytes(),
        }
    }

    /// The canonical record bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decodes the record's outer shape (rule O1 checks the parts too: use
    /// [`OutcomeRecord::verify_bytes`]).
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        encoding::decode(bytes, MAX_OUTCOME_LEN)
    }

    /// `BLAKE3("souk/v1/outcome" || 0x00 || record bytes)`.
    pub fn id(&self) -> Hash {
        Domain::Outcome.hash(&self.to_bytes())
    }

    /// The hire id the record is about: the id of its contract bytes (whether or not the
    /// record is valid).
    pub fn hire_id(&self) -> HireId {
        Domain::Contract.hash(&self.contract)
    }

    /// Decodes and verifies a record: every rule of `spec/outcomes.md`, first failure in
    /// the normative order.
    pub fn verify_bytes(bytes: &[u8]) -> Result<Outcome, Violation> {
        if bytes.len() > MAX_OUTCOME_LEN {
            return Err(Violation::new(
                Rule::O1,
                format!("record of {} bytes exceeds {MAX_OUTCOME_LEN}", bytes.len()),
            ));
        }
        let record =
            Self::decode_bytes(bytes).map_err(|e| Violation::new(Rule::O1, e.to_string()))?;
        record.verify()
    }

    /// Verifies a decoded record (rules O1-O10 and C1, C3-C7, in the order of
    /// `spec/outcomes.md`).
    pub fn verify(&self) -> Result<Outcome, Violation> {
        let bytes = self.to_bytes();
        if bytes.len() > MAX_OUTCOME_LEN {
            return Err(Violation::new(
                Rule::O1,
                format!("record of {} bytes exceeds {MAX_OUTCOME_LEN}", bytes.len()),
            ));
        }
        // O1: every part decodes as its type within its limit.
        let contract = Contract::decode_bytes(&self.contract)
            .map_err(|e| Violation::new(Rule::O1, format!("contract: {e}")))?;
        let head = SignedEntry::decode_bytes(&self.head)
            .map_err(|e| Violation::new(Rule::O1, format!("head: {e}")))?;
        let att = Signed::<Attestation>::decode_bytes(&self.attestation)
            .map_err(|e| Violation::new(Rule::O1, format!("attestation: {e}")))?;

        if !is_valid_name(&self.agent.name, 64) {
            return Err(Violation::new(
                Rule::O1,
                format!("agent name {:?} is not a valid name", self.agent.name),
            ));
        }
        // The contract, with C2 replaced by O2.
        contract.verify_against_reference(&self.agent, Rule::O2)?;
        let provider = contract.provider();
        let client = contract.client();
        if provider == client {
            return Err(Violation::new(
                Rule::O3,
                "the client and the provider are the same key (self-hire)",
            ));
        }
        let hire_id = Domain::Contract.hash(&self.contract);
        let terms = contract.terms();

        // The head.
        head.verify(&provider)
            .map_err(|e| Violation::new(Rule::O4, e.to_string()))?;
        let entry = head.body();
        if entry.hire_id != hire_id {
            return Err(Violation::new(
                Rule::O5,
                format!(
                    "the head names hire {}, the contract is {}",
                    entry.hire_id.short(),
                    hire_id.short()
                ),
            ));
        }
        let end = OutcomeEnd::of(&entry.kind).ok_or_else(|| {
            Violation::new(
                Rule::O6,
                format!(
                    "the head is a {} entry, not a terminal one",
                    entry.kind.name()
                ),
            )
        })?;
        match entry.kind.usage() {
            Some(usage) if usage.price == terms.price => {}
            Some(usage) => {
                return Err(Violation::new(
                    Rule::O7,
                    format!(
                        "the head records price {} {}, the contract agreed {} {}",
                        usage.price.amount,
                        usage.price.currency,
                        terms.price.amount,
                        terms.price.currency
                    ),
                ));
            }
            None => return Err(Violation::new(Rule::O7, "the head records no usage")),
        }
        if let EntryKind::Expired { deadline, .. } = &entry.kind
            && *deadline != terms.deadline
        {
            return Err(Violation::new(
                Rule::O7,
                format!(
                    "the head expired at deadline {deadline}, the contract's is {}",
                    terms.deadline
                ),
            ));
        }

        // The attestation.
        att.verify(&client)
            .map_err(|e| Violation::new(Rule::O8, e.to_string()))?;
        let a = att.body();
        if a.hire_id != hire_id {
            return Err(Violation::new(
                Rule::O9,
                "the attestation names another hire",
            ));
        }
        if a.head_seq != entry.seq || a.head_id != head.id() {
            return Err(Violation::new(
                Rule::O10,
                format!(
                    "the attestation countersigns seq {} ({}), the record's head is seq {} ({})",
                    a.head_seq,
                    a.head_id.short(),
                    entry.seq,
                    head.id().short()
                ),
            ));
        }

        Ok(Outcome {
            record_id: Domain::Outcome.hash(&bytes),
            hire_id,
            manifest_id: self.agent.id(),
            agent: self.agent.clone(),
            provider,
            client,
            end,
            verdict: a.verdict,
            reason: a.reason.clone(),
            entries: entry.seq.saturating_add(1),
            head: head.id(),
            settled_at: a.created_at,
            price: terms.price.clone(),
            deadline: terms.deadline,
        })
    }
}

impl Canonical for OutcomeRecord {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(5);
        enc.u64(OUTCOME_VERSION);
        self.agent.encode(enc);
        enc.bytes(&self.contract);
        enc.bytes(&self.head);
        enc.bytes(&self.attestation);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(5)?;
        r.version(OUTCOME_VERSION)?;
        let v = OutcomeRecord {
            agent: ManifestRef::decode(r)?,
            contract: r.bytes_max(MAX_CONTRACT_LEN, "contract")?.to_vec(),
            head: r.bytes_max(MAX_OUTCOME_HEAD_LEN, "head")?.to_vec(),
            attestation: r
                .bytes_max(MAX_OUTCOME_ATTESTATION_LEN, "attestation")?
                .to_vec(),
        };
        r.leave();
        Ok(v)
    }
}
