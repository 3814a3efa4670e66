//! `GET /v1/agents/{handle|id}` and `GET /v1/manifests/{id}`: the agent card of an agent
//! named by any reference the CLI prints (handle, manifest id, or a unique prefix of one;
//! [`crate::agent_ref`]), as decoded JSON with its verified reputation and flag, or the
//! signed envelope's bytes with `?format=cbor`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::ApiState;
use super::error::{error, resolve_error};
use crate::agent_ref::{self, AgentRef};

/// Query parameters of the card endpoints.
#[derive(Debug, Default, Deserialize)]
pub(super) struct CardParams {
    /// `json` (default: the agent card) or `cbor` (the signed envelope's bytes).
    format: Option<String>,
}

type Params = Result<Query<CardParams>, axum::extract::rejection::QueryRejection>;

/// `GET /v1/agents/{reference}` and `GET /v1/manifests/{reference}`: a manifest id, a unique
/// prefix of one, or a handle whose `/` is percent-encoded.
pub(super) async fn show(
    State(s): State<ApiState>,
    Path(reference): Path<String>,
    params: Params,
) -> Response {
    card(&s, &reference, params).await
}

/// `GET /v1/agents/{provider}/{name}`: an agent by handle.
pub(super) async fn show_handle(
    State(s): State<ApiState>,
    Path((provider, name)): Path<(String, String)>,
    params: Params,
) -> Response {
    card(&s, &format!("{provider}/{name}"), params).await
}

async fn card(s: &ApiState, reference: &str, params: Params) -> Response {
    let Ok(Query(p)) = params else {
        return error(StatusCode::BAD_REQUEST, "format is json or cbor");
    };
    let cbor = match p.format.as_deref() {
        None | Some("json") => false,
        Some("cbor") => true,
        Some(_) => return error(StatusCode::BAD_REQUEST, "format is json or cbor"),
    };
    let r: AgentRef = match reference.parse() {
        Ok(r) => r,
        Err(e) => return resolve_error(e),
    };
    let manifest = match agent_ref::resolve(&s.node, &r).await {
        Ok(m) => m,
        Err(e) => return resolve_error(e),
    };
    if cbor {
        return (
            [(header::CONTENT_TYPE, "application/cbor")],
            manifest.to_bytes(),
        )
            .into_response();
    }
    Json(s.node.agent_card(&manifest).await).into_response()
}
