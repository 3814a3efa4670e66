//! The gateway's HTTP side: a loopback listener, the routes of docs/a2a.md, the bearer token
//! on every JSON-RPC call (constant-time compare), loopback `Host` only (no DNS rebinding),
//! bounded request bodies and concurrency.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::methods::Endpoint;
use super::rpc::{self, INTERNAL_ERROR, INVALID_REQUEST, RpcError};
use super::{A2aError, Gateway, Settings, card, stream};
use crate::api::async_client::AsyncApi;
use crate::api::auth::{constant_time_eq, host_is_loopback};
use crate::card::AgentCard;
use crate::service::search::SearchHit;

/// Largest JSON-RPC request body (a job input may be 16 MiB; base64 or text around it).
const MAX_BODY: usize = 17 << 20;
/// Most requests handled at once.
const MAX_CONCURRENT: usize = 256;
/// Most agents listed on the gateway's card.
const CARD_SKILLS: u32 = 100;

type Shared = Arc<Gateway>;

/// Serves the gateway on `settings.listen` until `stop` fires; `on_bound` gets the bound
/// address (port 0 picks one) once the listener is up.
///
/// # Errors
///
/// When the address is not loopback or cannot be bound.
pub async fn serve(
    api: AsyncApi,
    settings: Settings,
    stop: CancellationToken,
    on_bound: impl FnOnce(std::net::SocketAddr),
) -> Result<(), A2aError> {
    if !settings.listen.ip().is_loopback() {
        return Err(A2aError::NotLoopback(settings.listen));
    }
    let listen_err = |cause| A2aError::Listen {
        addr: settings.listen,
        cause,
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(listen_err)?;
    let bound = listener.local_addr().map_err(listen_err)?;
    let gw = Gateway::new(api, &settings, bound);
    let app = Router::new()
        .route("/.well-known/agent-card.json", get(gateway_card))
        .route("/.well-known/agent.json", get(gateway_card))
        .route(
            "/agents/{provider}/{name}/.well-known/agent-card.json",
            get(agent_card),
        )
        .route(
            "/agents/{provider}/{name}/.well-known/agent.json",
            get(agent_card),
        )
        .route("/", post(gateway_rpc))
        .route("/agents/{provider}/{name}", post(agent_rpc))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(tower::limit::ConcurrencyLimitLayer::new(MAX_CONCURRENT))
        .with_state(gw);
    on_bound(bound);
    tracing::info!(%bound, "a2a gateway listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .map_err(listen_err)
}

fn host_ok(headers: &HeaderMap) -> bool {
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next().and_then(|h| h.to_str().ok()).unwrap_or("");
    hosts.next().is_none() && host_is_loopback(host)
}

fn plain(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

async fn gateway_card(State(gw): State<Shared>, headers: HeaderMap) -> Response {
    if !host_ok(&headers) {
        return plain(
            StatusCode::FORBIDDEN,
            "only requests to a loopback host are answered",
        );
    }
    match gw
        .api
        .get::<Vec<SearchHit>>(format!("/v1/search?limit={CARD_SKILLS}"))
        .await
    {
        Ok(hits) => Json(card::gateway_card(&gw.base, &hits)).into_response(),
        Err(e) => plain(StatusCode::BAD_GATEWAY, &e.to_string()),
    }
}

async fn agent_card(
    State(gw): State<Shared>,
    headers: HeaderMap,
    Path((provider, name)): Path<(String, String)>,
) -> Response {
    if !host_ok(&headers) {
        return plain(
            StatusCode::FORBIDDEN,
            "only requests to a loopback host are answered",
        );
    }
    let Some(path) = agent_api_path(&provider, &name) else {
        return plain(StatusCode::NOT_FOUND, "not an agent handle");
    };
    match gw.api.get::<AgentCard>(path).await {
        Ok(c) if c.flagged.is_some() => plain(
            StatusCode::NOT_FOUND,
            "this agent's provider is flagged (it signed two different receipts for one hire)",
        ),
        Ok(c) => Json(card::agent_card(&gw.base, &c)).into_response(),
        Err(e) => plain(StatusCode::NOT_FOUND, &e.to_string()),
    }
}

/// `/v1/agents/<provider>/<name>` for a well-formed handle.
fn agent_api_path(provider: &str, name: &str) -> Option<String> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    (ok(provider) && ok(name)).then(|| format!("/v1/agents/{provider}/{name}"))
}

async fn gateway_rpc(State(gw): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    rpc_call(gw, Endpoint::Gateway, &headers, &body).await
}

async fn agent_rpc(
    State(gw): State<Shared>,
    headers: HeaderMap,
    Path((provider, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if agent_api_path(&provider, &name).is_none() {
        return plain(StatusCode::NOT_FOUND, "not an agent handle");
    }
    rpc_call(
        gw,
        Endpoint::Agent(format!("{provider}/{name}")),
        &headers,
        &body,
    )
    .await
}

fn authorized(gw: &Gateway, headers: &HeaderMap) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    constant_time_eq(given.trim().as_bytes(), gw.token.as_bytes())
}

async fn rpc_call(gw: Shared, endpoint: Endpoint, headers: &HeaderMap, body: &[u8]) -> Response {
    if !host_ok(headers) || headers.contains_key(header::ORIGIN) {
        return plain(
            StatusCode::FORBIDDEN,
            "only same-host requests to a loopback host are answered",
        );
    }
    if !authorized(&gw, headers) {
        let e = RpcError::new(
            INVALID_REQUEST,
            "missing or wrong bearer token (Authorization: Bearer <DATA_DIR/a2a-token>)",
        );
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(rpc::error(&Value::Null, &e)),
        )
            .into_response();
    }
    let req = match rpc::parse(body) {
        Ok(r) => r,
        Err(answer) => return Json(answer).into_response(),
    };
    if req.method == "message/stream" {
        return stream::respond(gw, endpoint, req.id, req.params).await;
    }
    let answer = match gw.call(&endpoint, &req.method, &req.params).await {
        Ok(v) => rpc::result(&req.id, v),
        Err(e) => {
            if e.code == INTERNAL_ERROR {
                tracing::warn!(method = %req.method, error = %e.message, "a2a: call failed");
            }
            rpc::error(&req.id, &e)
        }
    };
    Json(answer).into_response()
}
