//! Receipt entries: what one step of a hire looked like, signed by the provider, and the
//! client's completion [`Attestation`].
//!
//! An entry is `{hire id, seq, prev, time, kind, commitment}`; its id is
//! `BLAKE3("souk/v1/receipt" || 0x00 || body)` and the next entry's `prev` is that id, so the
//! entries form a hash chain. Public facts (a tool's name, the host of an observed network
//! call, an output hash) are in the kind; private payloads (the decision text, tool
//! arguments, the question asked) are behind a salted [`commit`]ment that can be opened
//! selectively with a [`Disclosure`]. Wire format and rules: `spec/receipts.md`. Appending and
//! checking entries is [`crate::verify::ChainVerifier`]'s job.

use crate::Timestamp;
use crate::credential::denial::DenialCode;
use crate::credential::relay::MAX_RELAY_RECORD_ENVELOPE_LEN;
use crate::encoding::{Canonical, DecodeError, Encoder, Reader};
use crate::hash::{Domain, Hash};
use crate::hire::{HireEvent, Verdict};
use crate::identity::NodeId;
use crate::negotiation::{HireId, Price};
use crate::signed::{Signed, SignedBody};

/// Format version of receipt entries and attestations.
pub const RECEIPT_VERSION: u64 = 1;
/// Largest encoded entry body.
pub const MAX_ENTRY_LEN: usize = 8 * 1024;
/// Largest encoded attestation body.
pub const MAX_ATTESTATION_LEN: usize = 2 * 1024;
/// Longest free-text field in an entry (failure message, cancel reason, tool name...).
pub const MAX_ENTRY_TEXT: usize = 512;
/// Longest observed URL path.
pub const MAX_PATH_LEN: usize = 2048;
/// Largest disclosed payload.
pub const MAX_DISCLOSURE_LEN: usize = 1024 * 1024;

/// A signed receipt entry.
pub type SignedEntry = Signed<ReceiptEntry>;

/// Why a hire failed (receipt `failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum FailureCode {
    /// The agent process exited or crashed before a result.
    AgentCrashed,
    /// The agent broke the agent protocol (bad JSON, oversized line, silence).
    ProtocolViolation,
    /// The result exceeded the size limit.
    OutputTooLarge,
    /// The agent reported an error.
    AgentError,
    /// The provider node failed.
    Internal,
    /// The hire could not be resumed after a restart.
    ResumeFailed,
}

impl FailureCode {
    const ALL: [(FailureCode, u64, &'static str); 6] = [
        (FailureCode::AgentCrashed, 0, "agent-crashed"),
        (FailureCode::ProtocolViolation, 1, "protocol-violation"),
        (FailureCode::OutputTooLarge, 2, "output-too-large"),
        (FailureCode::AgentError, 3, "agent-error"),
        (FailureCode::Internal, 4, "internal"),
        (FailureCode::ResumeFailed, 5, "resume-failed"),
    ];
    /// Wire code.
    pub fn code(self) -> u64 {
        Self::ALL.iter().find(|x| x.0 == self).map_or(4, |x| x.1)
    }
    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|x| x.0 == self)
            .map_or("internal", |x| x.2)
    }
    fn from_code(code: u64) -> Option<Self> {
        Self::ALL.iter().find(|x| x.1 == code).map(|x| x.0)
    }
}

/// Who canceled a hire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum Canceler {
    /// The client asked for it.
    Client,
    /// The provider stopped it.
    Provider,
}

impl Canceler {
    /// `client` or `provider`.
    pub fn as_str(self) -> &'static str {
        match self {
            Canceler::Client => "client",
            Canceler::Provider => "provider",
        }
    }
}

/// How a credential was involved in an observed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallMode {
    /// No credential (a plain call or a `CONNECT` tunnel).
    None,
    /// A sealed credential, injected by the provider's proxy.
    Sealed,
    /// Relayed to the client's node, which injected its secret and made the call.
    Relayed,
}

impl CallMode {
    /// Wire code.
    pub fn code(self) -> u64 {
        match self {
            CallMode::None => 0,
            CallMode::Sealed => 1,
            CallMode::Relayed => 2,
        }
    }

    /// The mode for a wire code, if known.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            0 => Some(CallMode::None),
            1 => Some(CallMode::Sealed),
            2 => Some(CallMode::Relayed),
            _ => None,
        }
    }

    /// `"none"`, `"sealed"` or `"relayed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallMode::None => "none",
            CallMode::Sealed => "sealed",
            CallMode::Relayed => "relayed",
        }
    }
}

impl std::fmt::Display for CallMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An HTTP call the provider's egress proxy observed the agent make (or refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkCall {
    /// Host (and port if not 443).
    pub host: String,
    /// HTTP method, uppercase.
    pub method: String,
    /// Path without the query string (queries may carry injected secrets).
    pub path: String,
    /// Response status, or 0 if the call was denied or got no response.
    pub status: u32,
    /// Request body size (as sent upstream, without the secret).
    pub request_bytes: u64,
    /// Response body size (as delivered to the agent, after scrubbing).
    pub response_bytes: u64,
    /// BLAKE3 of the request body.
    pub request_hash: Hash,
    /// BLAKE3 of the response body.
    pub response_hash: Hash,
    /// How long the call took as the proxy saw it, in ms.
    pub duration_ms: u64,
    /// The credential slot used, if any.
    pub slot: Option<String>,
    /// How a credential was involved.
    pub mode: CallMode,
    /// Why the call was refused, if it was.
    pub denial: Option<DenialCode>,
    /// In relayed mode, the client's `Signed<RelayRecord>` envelope, as received.
    pub relay_record: Option<Vec<u8>>,
}

/// Longest `method` of a `network-call` entry.
pub const MAX_METHOD_LEN: usize = 16;

impl NetworkCall {
    /// The field rules of a `network-call` (R9); `None` when well formed. A denied call may
    /// leave `method`, `host` and `path` empty (the proxy refused a request it could not
    /// parse); a `CONNECT` tunnel records an empty `path`.
    pub fn field_problem(&self) -> Option<String> {
        let denied = self.denial.is_some();
        let printable = |s: &str| s.bytes().all(|b| (0x21..=0x7e).contains(&b));
        if self.host.is_empty() {
            if !denied {
                return Some("a call that was not denied names no host".into());
            }
        } else if self.host.len() > crate::manifest::MAX_OBSERVED_HOST_LEN
            || !printable(&self.host)
            || self.host.bytes().any(|b| b.is_ascii_uppercase())
        {
            return Some(format!(
                "observed host {:?} is not a lowercase host[:port]",
                self.host
            ));
        }
        if self.method.is_empty() {
            if !denied {
                return Some("a call that was not denied names no method".into());
            }
        } else if self.method.len() > MAX_METHOD_LEN
            || !self.method.bytes().all(|b| b.is_ascii_uppercase())
        {
            return Some(format!(
                "method {:?} is not an uppercase token",
                self.method
            ));
        }
        let tunnel = self.method == "CONNECT";
        if self.path.is_empty() {
            if !denied && !tunnel {
                return Some("a call that was not denied names no path".into());
            }
        } else if !self.path.starts_with('/') || self.path.contains('?') || self.path.contains('#')
        {
            return Some("path must start with '/' and carry no query or fragment".into());
        }
        if self.status > 999 {
            return Some(format!("status {} is not an HTTP status", self.status));
        }
        None
    }
}

/// What an entry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// The agent started: the runtime package it ran.
    Started {
        /// BLAKE3 of the runtime package (must match the manifest's digest for honest runs).
        runtime_digest: Hash,
    },
    /// An LLM decision or reasoning step (content under the commitment).
    Decision,
    /// A tool call reported by the agent (arguments and result under the commitment).
    ToolCall {
        /// The tool's name.
        tool: String,
    },
    /// A network call observed by the proxy.
    NetworkCall(NetworkCall),
    /// The agent asked the client a question (under the commitment).
    InputRequested,
    /// The client's answer reached the agent (under the commitment).
    InputProvided,
    /// The agent saved state it can resume from.
    Checkpoint {
        /// BLAKE3 of the checkpoint state.
        state_hash: Hash,
    },
    /// The agent produced its result.
    Completed {
        /// BLAKE3 of the output.
        output_hash: Hash,
        /// What the hire used (R9: as the chain shows).
        usage: Usage,
    },
    /// The hire failed.
    Failed {
        /// Why.
        code: FailureCode,
        /// Details.
        message: String,
        /// What the hire used (R9: as the chain shows).
        usage: Usage,
    },
    /// The hire was canceled.
    Canceled {
        /// By whom.
        by: Canceler,
        /// Why.
        reason: String,
        /// What the hire used (R9: as the chain shows).
        usage: Usage,
    },
    /// The contract deadline passed before the work finished.
    Expired {
        /// The deadline that passed.
        deadline: Timestamp,
        /// What the hire used (R9: as the chain shows).
        usage: Usage,
    },
}

/// What a hire used, recorded in its terminal entry so that a bill can be computed from a
/// verified chain alone. Every field is determined by the contract and the entries before the
/// terminal one (rule R9 checks it): the record is a signed summary, not a new claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// The agreed price: the contract's `terms.price`.
    pub price: Price,
    /// Wall time from the `started` entry to this one, ms (0 if the agent never started).
    pub wall_ms: u64,
    /// `decision` and `tool-call` entries before this one.
    pub steps: u64,
    /// `network-call` entries before this one (calls the egress proxy saw, allowed or denied).
    pub network_calls: u64,
}

impl Canonical for Usage {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(4);
        self.price.encode(enc);
        enc.u64(self.wall_ms);
        enc.u64(self.steps);
        enc.u64(self.network_calls);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(4)?;
        let u = Usage {
            price: Price::decode(r)?,
            wall_ms: r.u64()?,
            steps: r.u64()?,
            network_calls: r.u64()?,
        };
        r.leave();
        Ok(u)
    }
}

impl EntryKind {
    /// Wire code of the kind.
    pub fn code(&self) -> u64 {
        match self {
            EntryKind::Started { .. } => 0,
            EntryKind::Decision => 1,
            EntryKind::ToolCall { .. } => 2,
            EntryKind::NetworkCall(_) => 3,
            EntryKind::InputRequested => 4,
            EntryKind::InputProvided => 5,
            EntryKind::Checkpoint { .. } => 6,
            EntryKind::Completed { .. } => 7,
            EntryKind::Failed { .. } => 8,
            EntryKind::Canceled { .. } => 9,
            EntryKind::Expired { .. } => 10,
        }
    }

    /// Kebab-case name, as shown by `souk hire watch`.
    pub fn name(&self) -> &'static str {
        match self {
            EntryKind::Started { .. } => "started",
            EntryKind::Decision => "decision",
            EntryKind::ToolCall { .. } => "tool-call",
            EntryKind::NetworkCall(_) => "network-call",
            EntryKind::InputRequested => "input-requested",
            EntryKind::InputProvided => "input-provided",
            EntryKind::Checkpoint { .. } => "checkpoint",
            EntryKind::Completed { .. } => "completed",
            EntryKind::Failed { .. } => "failed",
            EntryKind::Canceled { .. } => "canceled",
            EntryKind::Expired { .. } => "expired",
        }
    }

    /// The lifecycle event this entry drives, if any (steps inside `working` drive none).
    pub fn event(&self) -> Option<HireEvent> {
        match self {
            EntryKind::Started { .. } => Some(HireEvent::Started),
            EntryKind::InputRequested => Some(HireEvent::InputRequested),
            EntryKind::InputProvided => Some(HireEvent::InputProvided),
            EntryKind::Completed { .. } => Some(HireEvent::Completed),
            EntryKind::Failed { .. } => Some(HireEvent::Failed),
            EntryKind::Canceled { .. } => Some(HireEvent::Canceled),
            EntryKind::Expired { .. } => Some(HireEvent::DeadlinePassed),
            EntryKind::Decision
            | EntryKind::ToolCall { .. }
            | EntryKind::NetworkCall(_)
            | EntryKind::Checkpoint { .. } => None,
        }
    }

    /// True for kinds that end a chain.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EntryKind::Completed { .. }
                | EntryKind::Failed { .. }
                | EntryKind::Canceled { .. }
                | EntryKind::Expired { .. }
        )
    }

    /// The usage a terminal entry records.
    pub fn usage(&self) -> Option<&Usage> {
        match self {
            EntryKind::Completed { usage, .. }
            | EntryKind::Failed { usage, .. }
            | EntryKind::Canceled { usage, .. }
            | EntryKind::Expired { usage, .. } => Some(usage),
            _ => None,
        }
    }

    /// Replaces the usage of a terminal entry (the appender fills it in from its chain);
    /// does nothing for other kinds.
    pub fn set_usage(&mut self, new: Usage) {
        match self {
            EntryKind::Completed { usage, .. }
            | EntryKind::Failed { usage, .. }
            | EntryKind::Canceled { usage, .. }
            | EntryKind::Expired { usage, .. } => *usage = new,
            _ => {}
        }
    }

    /// Field rules beyond shape (R9); `None` when well formed.
    pub fn field_problem(&self) -> Option<String> {
        match self {
            EntryKind::ToolCall { tool } if tool.is_empty() => Some("empty tool name".into()),
            EntryKind::NetworkCall(c) => c.field_problem(),
            _ => None,
        }
    }
}

/// One receipt entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptEntry {
    /// The hire this entry belongs to.
    pub hire_id: HireId,
    /// Position in the chain, from 0.
    pub seq: u64,
    /// Id of the previous entry (zero for seq 0).
    pub prev: Hash,
    /// When the step happened (provider clock, ms since the Unix epoch).
    pub time: Timestamp,
    /// What happened.
    pub kind: EntryKind,
    /// Salted commitment to the private payload, if the step has one.
    pub commitment: Option<Hash>,
}

impl SignedBody for ReceiptEntry {
    const DOMAIN: Domain = Domain::Receipt;
    const MAX_BODY_LEN: usize = MAX_ENTRY_LEN;
    fn named_signer(&self) -> Option<NodeId> {
        None // the contract names the provider
    }
}

/// `BLAKE3("souk/v1/commitment" || 0x00 || salt || payload)`: a hiding, binding commitment
/// to a private payload. The salt is 32 random bytes supplied by the caller.
pub fn commit(salt: &[u8; 32], payload: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(Domain::Commitment.tag().as_bytes());
    h.update(&[0]);
    h.update(salt);
    h.update(payload);
    Hash(*h.finalize().as_bytes())
}

/// An opened commitment: the salt and payload behind entry `seq`'s commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disclosure {
    /// The entry whose commitment this opens.
    pub seq: u64,
    /// The salt.
    pub salt: [u8; 32],
    /// The payload.
    pub payload: Vec<u8>,
}

impl Disclosure {
    /// True when this opens `commitment`.
    pub fn opens(&self, commitment: &Hash) -> bool {
        &commit(&self.salt, &self.payload) == commitment
    }
}

/// The client's countersignature on the final head of a chain, with its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// The hire.
    pub hire_id: HireId,
    /// The head entry's seq.
    pub head_seq: u64,
    /// The head entry's id.
    pub head_id: Hash,
    /// Accepted or disputed.
    pub verdict: Verdict,
    /// Why (required in practice for disputes; may be empty).
    pub reason: String,
    /// When the client settled.
    pub created_at: Timestamp,
}

impl SignedBody for Attestation {
    const DOMAIN: Domain = Domain::Attestation;
    const MAX_BODY_LEN: usize = MAX_ATTESTATION_LEN;
    fn named_signer(&self) -> Option<NodeId> {
        None // the contract names the client
    }
}

// ---- canonical encodings -------------------------------------------------------------------

/// Longest slot name in a `network-call` entry.
const MAX_SLOT_NAME: usize = 64;

impl Canonical for NetworkCall {
    fn encode(&self, enc: &mut Encoder) {
        enc.text(&self.host);
        enc.text(&self.method);
        enc.text(&self.path);
        enc.u64(u64::from(self.status));
        enc.u64(self.request_bytes);
        enc.u64(self.response_bytes);
        self.request_hash.encode(enc);
        self.response_hash.encode(enc);
        enc.u64(self.duration_ms);
        match &self.slot {
            Some(s) => enc.text(s),
            None => enc.null(),
        }
        enc.u64(self.mode.code());
        enc.option(self.denial.as_ref());
        match &self.relay_record {
            Some(r) => enc.bytes(r),
            None => enc.null(),
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NetworkCall {
            host: r.text_max(259, "host")?,
            method: r.text_max(16, "method")?,
            path: r.text_max(MAX_PATH_LEN, "path")?,
            status: r.u32()?,
            request_bytes: r.u64()?,
            response_bytes: r.u64()?,
            request_hash: Hash::decode(r)?,
            response_hash: Hash::decode(r)?,
            duration_ms: r.u64()?,
            slot: if r.null()? {
                None
            } else {
                Some(r.text_max(MAX_SLOT_NAME, "slot name")?)
            },
            mode: {
                let at = r.offset();
                let code = r.u64()?;
                CallMode::from_code(code)
                    .ok_or_else(|| Reader::unknown_code(at, "call mode", code))?
            },
            denial: r.option()?,
            relay_record: if r.null()? {
                None
            } else {
                Some(
                    r.bytes_max(MAX_RELAY_RECORD_ENVELOPE_LEN, "relay record")?
                        .to_vec(),
                )
            },
        })
    }
}

impl Canonical for EntryKind {
    fn encode(&self, enc: &mut Encoder) {
        let arity = match self {
            EntryKind::Decision | EntryKind::InputRequested | EntryKind::InputProvided => 1,
            EntryKind::Started { .. }
            | EntryKind::ToolCall { .. }
            | EntryKind::Checkpoint { .. } => 2,
            EntryKind::Completed { .. } | EntryKind::Expired { .. } => 3,
            EntryKind::Failed { .. } | EntryKind::Canceled { .. } => 4,
            EntryKind::NetworkCall(_) => 14,
        };
        enc.array(arity);
        enc.u64(self.code());
        match self {
            EntryKind::Started { runtime_digest } => runtime_digest.encode(enc),
            EntryKind::Decision | EntryKind::InputRequested | EntryKind::InputProvided => {}
            EntryKind::ToolCall { tool } => enc.text(tool),
            EntryKind::NetworkCall(c) => c.encode(enc),
            EntryKind::Checkpoint { state_hash } => state_hash.encode(enc),
            EntryKind::Completed { output_hash, usage } => {
                output_hash.encode(enc);
                usage.encode(enc);
            }
            EntryKind::Failed {
                code,
                message,
                usage,
            } => {
                enc.u64(code.code());
                enc.text(message);
                usage.encode(enc);
            }
            EntryKind::Canceled { by, reason, usage } => {
                enc.u64(match by {
                    Canceler::Client => 0,
                    Canceler::Provider => 1,
                });
                enc.text(reason);
                usage.encode(enc);
            }
            EntryKind::Expired { deadline, usage } => {
                enc.u64(*deadline);
                usage.encode(enc);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let len = r.array()? as u64;
        let code_at = r.offset();
        let code = r.u64()?;
        let want = match code {
            1 | 4 | 5 => 1,
            0 | 2 | 6 => 2,
            7 | 10 => 3,
            8 | 9 => 4,
            3 => 14,
            _ => return Err(Reader::unknown_code(code_at, "entry kind", code)),
        };
        if len != want {
            return Err(DecodeError {
                offset: start,
                kind: crate::encoding::DecodeErrorKind::WrongArity {
                    expected: want,
                    found: len,
                },
            });
        }
        let kind = match code {
            0 => EntryKind::Started {
                runtime_digest: Hash::decode(r)?,
            },
            1 => EntryKind::Decision,
            2 => EntryKind::ToolCall {
                tool: r.text_max(MAX_ENTRY_TEXT, "tool name")?,
            },
            3 => EntryKind::NetworkCall(NetworkCall::decode(r)?),
            4 => EntryKind::InputRequested,
            5 => EntryKind::InputProvided,
            6 => EntryKind::Checkpoint {
                state_hash: Hash::decode(r)?,
            },
            7 => EntryKind::Completed {
                output_hash: Hash::decode(r)?,
                usage: Usage::decode(r)?,
            },
            8 => {
                let at = r.offset();
                let c = r.u64()?;
                let code = FailureCode::from_code(c)
                    .ok_or_else(|| Reader::unknown_code(at, "failure code", c))?;
                EntryKind::Failed {
                    code,
                    message: r.text_max(MAX_ENTRY_TEXT, "failure message")?,
                    usage: Usage::decode(r)?,
                }
            }
            9 => {
                let at = r.offset();
                let by = match r.u64()? {
                    0 => Canceler::Client,
                    1 => Canceler::Provider,
                    other => return Err(Reader::unknown_code(at, "canceler", other)),
                };
                EntryKind::Canceled {
                    by,
                    reason: r.text_max(MAX_ENTRY_TEXT, "cancel reason")?,
                    usage: Usage::decode(r)?,
                }
            }
            _ => EntryKind::Expired {
                deadline: r.u64()?,
                usage: Usage::decode(r)?,
            },
        };
        r.leave();
        Ok(kind)
    }
}

impl Canonical for ReceiptEntry {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(7);
        enc.u64(RECEIPT_VERSION);
        self.hire_id.encode(enc);
        enc.u64(self.seq);
        self.prev.encode(enc);
        enc.u64(self.time);
        self.kind.encode(enc);
        enc.option(self.commitment.as_ref());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(7)?;
        r.version(RECEIPT_VERSION)?;
        let e = ReceiptEntry {
            hire_id: Hash::decode(r)?,
            seq: r.u64()?,
            prev: Hash::decode(r)?,
            time: r.u64()?,
            kind: EntryKind::decode(r)?,
            commitment: r.option()?,
        };
        r.leave();
        Ok(e)
    }
}

impl Canonical for Disclosure {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(3);
        enc.u64(self.seq);
        enc.bytes(&self.salt);
        enc.bytes(&self.payload);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(3)?;
        let seq = r.u64()?;
        let salt = r.array_bytes()?;
        let at = r.offset();
        let payload = r.bytes()?;
        if payload.len() > MAX_DISCLOSURE_LEN {
            return Err(DecodeError {
                offset: at,
                kind: crate::encoding::DecodeErrorKind::TooLarge("disclosed payload"),
            });
        }
        r.leave();
        Ok(Disclosure {
            seq,
            salt,
            payload: payload.to_vec(),
        })
    }
}

impl Canonical for Attestation {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(7);
        enc.u64(RECEIPT_VERSION);
        self.hire_id.encode(enc);
        enc.u64(self.head_seq);
        self.head_id.encode(enc);
        enc.u64(self.verdict.code());
        enc.text(&self.reason);
        enc.u64(self.created_at);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(7)?;
        r.version(RECEIPT_VERSION)?;
        let hire_id = Hash::decode(r)?;
        let head_seq = r.u64()?;
        let head_id = Hash::decode(r)?;
        let at = r.offset();
        let code = r.u64()?;
        let verdict =
            Verdict::from_code(code).ok_or_else(|| Reader::unknown_code(at, "verdict", code))?;
        let a = Attestation {
            hire_id,
            head_seq,
            head_id,
            verdict,
            reason: r.text_max(MAX_ENTRY_TEXT, "attestation reason")?,
            created_at: r.u64()?,
        };
        r.leave();
        Ok(a)
    }
}
