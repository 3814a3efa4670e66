//! [`HireError`]: everything that can go wrong with a hire, as one enum callers `match`.
//!
//! The local API chooses its HTTP status from the variant ([`HireError::status`]) and tells
//! clients a stable machine code ([`HireError::code`]); the CLI chooses its exit status from
//! that code. Nothing here is meant to be parsed: a provider's refusal keeps the wire's
//! [`CallError`] code, a decline its [`DeclineReason`], a disk failure its [`StoreError`].

use souk_protocol::hire::{HireState, SettleError};
use souk_protocol::hiring::CallError;
use souk_protocol::negotiation::DeclineReason;
use souk_protocol::{Hash, NodeId};
use souk_store::StoreError;

use super::record::{RecordError, Role};

/// Why a hire operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HireError {
    /// This node holds no hire with this id.
    #[error("no hire {} on this node", .0.short())]
    NotFound(Hash),
    /// The operation does not fit the hire's state.
    #[error("hire {} is {state}: {needs}", id.short())]
    WrongState {
        /// The hire.
        id: Hash,
        /// Its state.
        state: HireState,
        /// What the operation needs.
        needs: &'static str,
    },
    /// The operation belongs to the other side of the hire.
    #[error("this node is the {role} of hire {}: {needs}", id.short())]
    WrongRole {
        /// The hire.
        id: Hash,
        /// Our side.
        role: Role,
        /// Who may do it.
        needs: &'static str,
    },
    /// Settling is refused by the protocol (not ended yet, or settled already).
    #[error("hire {}: {source}", id.short())]
    Settle {
        /// The hire.
        id: Hash,
        /// Why.
        source: SettleError,
    },
    /// Another operation on the hire is in progress (e.g. a settlement being stored).
    #[error("hire {}: {what} is already in progress; try again", id.short())]
    InProgress {
        /// The hire.
        id: Hash,
        /// What.
        what: &'static str,
    },
    /// The caller's own input is unusable (too large, malformed).
    #[error("{0}")]
    Invalid(String),
    /// The caller's input or answer does not match its JSON Schema (the agent's
    /// `input-schema`, or the open question's `answer_schema`).
    #[error(transparent)]
    Schema(#[from] crate::schema::SchemaError),
    /// The manifest to hire is not known to this node.
    #[error("manifest {} is unknown here: find it with `souk search` first", .0.short())]
    UnknownManifest(Hash),
    /// The provider declined the request (signed decline).
    #[error("declined ({reason}): {message}")]
    Declined {
        /// The decline's reason code.
        reason: DeclineReason,
        /// The provider's message.
        message: String,
        /// For a `superseded` decline: the agent's current manifest id.
        current: Option<Hash>,
    },
    /// The provider is flagged: a verified equivocation proof against it is held.
    #[error(
        "provider {0} is flagged: a verified proof shows it signed two different receipt entries \
         for one hire (see `souk agent show`); hire another agent"
    )]
    Flagged(NodeId),
    /// The provider's proposal is outside what the client accepts.
    #[error("not accepted by your policy: {0}")]
    Unacceptable(#[from] super::policy::Unacceptable),
    /// The provider answered a call with an error.
    #[error("the provider refused ({code}): {message}")]
    Refused {
        /// The wire code.
        code: CallError,
        /// The provider's message (for people).
        message: String,
    },
    /// The provider could not be reached (dial failure, timeout, closed connection).
    #[error("cannot reach the provider {provider}: {reason}")]
    Unreachable {
        /// The provider.
        provider: NodeId,
        /// What the transport said.
        reason: String,
    },
    /// The provider answered with something the protocol does not allow (an unsigned or
    /// mis-signed proposal, a reply of the wrong kind, an answer to another request).
    #[error("the provider broke the protocol: {0}")]
    Misbehaved(String),
    /// The local store failed.
    #[error("local store: {0}")]
    Store(#[from] StoreError),
    /// A stored hire record is unreadable.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Stored hire data is missing or does not decode (a damaged store).
    #[error("hire {}: stored {what} is unusable: {detail}", id.short())]
    Corrupt {
        /// The hire.
        id: Hash,
        /// Which blob or row.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The node is shutting down (or a task it needed has stopped).
    #[error("the node is shutting down")]
    Stopped,
}

/// A stable, documented machine code per error kind (`docs/api.md`).
impl HireError {
    /// Whether the provider turned the hire away only because its agent is at capacity (a
    /// `capacity` decline, or `busy` to an acceptance): asking again later may succeed.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            HireError::Declined {
                reason: DeclineReason::Capacity,
                ..
            } | HireError::Refused {
                code: CallError::Busy,
                ..
            }
        )
    }

    /// The API's `code` for this error.
    pub fn code(&self) -> &'static str {
        match self {
            HireError::NotFound(_) => "not-found",
            HireError::WrongState { .. } | HireError::Settle { .. } => "wrong-state",
            HireError::WrongRole { .. } => "wrong-role",
            HireError::InProgress { .. } => "in-progress",
            HireError::Invalid(_) => "invalid",
            HireError::Schema(_) => "schema-mismatch",
            HireError::UnknownManifest(_) => "unknown-manifest",
            HireError::Declined { .. } => "declined",
            HireError::Flagged(_) => "flagged",
            HireError::Unacceptable(_) => "unacceptable",
            HireError::Refused { .. } => "refused",
            HireError::Unreachable { .. } => "unreachable",
            HireError::Misbehaved(_) => "provider-misbehaved",
            HireError::Store(_) | HireError::Record(_) | HireError::Corrupt { .. } => "local",
            HireError::Stopped => "stopped",
        }
    }

    /// The HTTP status the local API answers with.
    pub fn status(&self) -> u16 {
        match self {
            HireError::NotFound(_) | HireError::UnknownManifest(_) => 404,
            HireError::WrongState { .. }
            | HireError::Settle { .. }
            | HireError::WrongRole { .. }
            | HireError::InProgress { .. } => 409,
            HireError::Invalid(_) | HireError::Schema(_) => 400,
            HireError::Declined { .. } | HireError::Unacceptable(_) | HireError::Flagged(_) => 422,
            // The provider's answer, not ours: a gateway error, whatever its code.
            HireError::Refused { .. } | HireError::Misbehaved(_) => 502,
            HireError::Unreachable { .. } => 504,
            HireError::Store(_) | HireError::Record(_) | HireError::Corrupt { .. } => 500,
            HireError::Stopped => 503,
        }
    }

    /// The provider's wire code, for [`HireError::Refused`].
    pub fn provider_code(&self) -> Option<CallError> {
        match self {
            HireError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The agent's current manifest id, for a `superseded` [`HireError::Declined`].
    pub fn current_manifest(&self) -> Option<Hash> {
        match self {
            HireError::Declined { current, .. } => *current,
            _ => None,
        }
    }

    /// The decline reason, for [`HireError::Declined`].
    pub fn decline_reason(&self) -> Option<DeclineReason> {
        match self {
            HireError::Declined { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// Whether the failure is this node's own (disk, damaged store), not the provider's.
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            HireError::Store(_) | HireError::Record(_) | HireError::Corrupt { .. }
        )
    }

    pub(crate) fn corrupt(id: Hash, what: &'static str, detail: impl std::fmt::Display) -> Self {
        HireError::Corrupt {
            id,
            what,
            detail: detail.to_string(),
        }
    }
}

/// A blocking store task could not be joined (it panicked, or the runtime is stopping).
impl From<tokio::task::JoinError> for HireError {
    fn from(e: tokio::task::JoinError) -> Self {
        if e.is_panic() {
            tracing::error!("a store task panicked: {e}");
        }
        HireError::Stopped
    }
}
