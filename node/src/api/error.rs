//! The API's error bodies: `{"error": "...", "code": "..."}` with a stable machine `code`
//! (documented in docs/api.md), plus the provider's wire code or decline reason when a hire
//! call was refused. Statuses and codes come from the error's variant, never its text.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::agent_ref::ResolveError;
use crate::hire::HireError;
use crate::publisher::PublishError;
use crate::service::NodeError;

/// A JSON error body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong, for people.
    pub error: String,
    /// What went wrong, for programs (`not-found`, `refused`, `stopped`, ...).
    #[serde(default)]
    pub code: String,
    /// The provider's call error code (`unknown-hire`, `busy`, ...) when it refused a call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_code: Option<String>,
    /// The reason code of a provider's signed decline (`price`, `capacity`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<String>,
    /// For a `superseded` decline: the agent's current manifest id (hire that instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_manifest: Option<String>,
}

/// The code of a plain HTTP-level failure.
fn code_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad-request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not-found",
        409 => "wrong-state",
        413 => "too-large",
        422 => "invalid",
        503 => "stopped",
        _ => "internal",
    }
}

fn respond(status: StatusCode, body: ApiError) -> Response {
    (status, Json(body)).into_response()
}

/// An error response whose code follows from its status.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    respond(
        status,
        ApiError {
            error: message.into(),
            code: code_of(status).into(),
            provider_code: None,
            decline_reason: None,
            current_manifest: None,
        },
    )
}

/// An error response with an explicit machine code.
pub(crate) fn error_with_code(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> Response {
    respond(
        status,
        ApiError {
            error: message.into(),
            code: code.into(),
            provider_code: None,
            decline_reason: None,
            current_manifest: None,
        },
    )
}

/// The response for a hire error.
pub(crate) fn hire_error(e: HireError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    respond(
        status,
        ApiError {
            error: e.to_string(),
            code: e.code().into(),
            provider_code: e.provider_code().map(|c| c.as_str().into()),
            decline_reason: e.decline_reason().map(|r| r.as_str().into()),
            current_manifest: e.current_manifest().map(|h| h.to_hex()),
        },
    )
}

/// The response for a node error.
pub(crate) fn node_error(e: NodeError) -> Response {
    let (status, code) = match &e {
        NodeError::Stopped => (StatusCode::SERVICE_UNAVAILABLE, "stopped"),
        NodeError::Publish(PublishError::Unknown(_)) => (StatusCode::NOT_FOUND, "not-found"),
        NodeError::Publish(PublishError::Invalid { .. }) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
        }
        NodeError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "local"),
        NodeError::NoFullPeer => (StatusCode::SERVICE_UNAVAILABLE, "no-full-peer"),
        NodeError::Dial { .. } => (StatusCode::BAD_REQUEST, "bad-request"),
        NodeError::Gossip(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        NodeError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        NodeError::Superseded => (StatusCode::CONFLICT, "superseded"),
        NodeError::Fetch(_) => (StatusCode::BAD_GATEWAY, "unreachable"),
        NodeError::NoGate => (StatusCode::NOT_FOUND, "not-found"),
    };
    respond(
        status,
        ApiError {
            error: e.to_string(),
            code: code.into(),
            provider_code: None,
            decline_reason: None,
            current_manifest: None,
        },
    )
}

/// The response for an agent reference that names no single agent.
pub(crate) fn resolve_error(e: ResolveError) -> Response {
    match e {
        ResolveError::Malformed(_) => {
            error_with_code(StatusCode::BAD_REQUEST, "invalid", e.to_string())
        }
        ResolveError::NotFound(_) => {
            error_with_code(StatusCode::NOT_FOUND, "unknown-agent", e.to_string())
        }
        ResolveError::Ambiguous { .. } => {
            error_with_code(StatusCode::BAD_REQUEST, "ambiguous", e.to_string())
        }
        ResolveError::Corrupt(_) => {
            error_with_code(StatusCode::INTERNAL_SERVER_ERROR, "local", e.to_string())
        }
        ResolveError::Node(e) => node_error(e),
    }
}
