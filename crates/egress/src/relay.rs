//! Relayed mode: the seam between the provider's proxy and the node's transport.
//!
//! Owns the [`Relay`] trait the node implements (carry a request to the client's node over
//! libp2p and bring back its answer) and the two messages it carries. A [`RelayedRequest`] is
//! the agent's request *before* injection (it may hold the placeholder, never the secret); a
//! [`RelayedResponse`] is what the client's node delivers after [`crate::perform`] scrubbed
//! it. This module knows nothing of libp2p; the client's side is [`crate::perform`].

use std::future::Future;
use std::pin::Pin;

use souk_protocol::credential::Denial;

/// An un-injected request for the client's node to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedRequest {
    /// The credential slot.
    pub slot: String,
    /// Request method (an HTTP token).
    pub method: String,
    /// `host[:port]`, port omitted when 443.
    pub host: String,
    /// Path and query, origin-form (`/v1/x?y=1`); the path is normalised.
    pub path: String,
    /// End-to-end headers as the agent sent them (no hop-by-hop or proxy headers, no `host`).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The request body.
    pub body: Vec<u8>,
}

/// The client's node's answer to a [`RelayedRequest`].
///
/// The provider's proxy delivers the body exactly as received (its observation's response hash
/// must equal the record's, rule R10), so the client's node must have scrubbed it already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedResponse {
    /// Upstream status.
    pub status: u16,
    /// End-to-end response headers, scrubbed.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Response body, scrubbed.
    pub body: Vec<u8>,
    /// The client-signed record of the exchange (`Signed<relay-record-body>`, opaque here;
    /// goes into the observation). Required: a relayed call without it is refused with
    /// `upstream_error`, as is one whose record is longer than the receipt allows.
    pub record: Option<Vec<u8>>,
}

/// Why a relayed call produced no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// The client's node cannot be reached now.
    #[error("the client's node is offline")]
    Offline,
    /// The client's node refused the call (its own policy check, or its upstream failed).
    #[error("the client's node refused the call: {}", denial.code)]
    Denied {
        /// The client's denial (code, message, retry), passed to the agent as it is.
        denial: Denial,
        /// A client-signed record of the refusal, if the transport carries one. Not recorded:
        /// a refused call's receipt entry carries no relay record (`spec/receipts.md`, R10),
        /// and the spec's `relay-denied` reply has none.
        record: Option<Vec<u8>>,
    },
    /// The transport failed mid-exchange (the message must not contain request data).
    #[error("relay transport failed: {0}")]
    Failed(String),
}

/// The future a [`Relay`] returns.
pub type RelayFuture<'a> =
    Pin<Box<dyn Future<Output = Result<RelayedResponse, RelayError>> + Send + 'a>>;

/// Carries a request to the client's node and back. Implemented by the node (libp2p request-
/// response); tests use an in-process fake. The proxy applies its own timeout around the call
/// and retries [`RelayError::Offline`] for as long as the policy's
/// [`souk_protocol::credential::OfflineBehaviour`] allows. The implementation checks the
/// client's record against the exchange (`souk_protocol::credential::check_record`) and
/// answers [`RelayError::Failed`] when it does not match.
pub trait Relay: Send + Sync {
    /// Sends `req` to the client's node and waits for its answer.
    fn relay(&self, req: RelayedRequest) -> RelayFuture<'_>;
}
