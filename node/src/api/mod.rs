//! The local control API: HTTP + JSON on a loopback address, every request authenticated with
//! the bearer token from `api.token`. Documented endpoint by endpoint in `docs/api.md`.
//!
//! Refused before any handler runs ([`auth`]): a request without the right token (401), one
//! that carries an `Origin` header (a browser page; 403), one whose `Host` is not a single
//! loopback name (DNS rebinding; 400/403), and one with an absolute-form target (400).
//! [`server`] bounds connections (count, header and idle time), [`body`] bounds request
//! bodies (size, time), both under [`ApiLimits`]. [`client`] is the blocking client the CLI
//! uses.

mod agents;
pub mod async_client;
pub mod auth;
mod body;
pub mod client;
pub mod error;
mod events;
mod gate;
mod hires;
pub mod limits;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use souk_protocol::discovery::{MAX_PROVIDER_PREFIX, SearchRequest};
use zeroize::Zeroizing;

use crate::agent_file::{AgentSpec, parse_amount};
use crate::service::{NodeHandle, SearchHit};

/// Shared state of the API handlers.
#[derive(Clone)]
pub struct ApiState {
    /// The node.
    pub node: NodeHandle,
    /// The bearer token.
    pub token: Arc<Zeroizing<String>>,
    /// Asks the process to stop (POST /v1/shutdown).
    pub shutdown: Arc<tokio::sync::Notify>,
}

/// The router's state: the handlers' [`ApiState`], the limits and the connection table.
#[derive(Clone)]
pub(crate) struct ServerState {
    api: ApiState,
    limits: Arc<ApiLimits>,
    connections: Arc<server::Connections>,
}

impl FromRef<ServerState> for ApiState {
    fn from_ref(s: &ServerState) -> ApiState {
        s.api.clone()
    }
}

pub use error::ApiError;
use error::{error, node_error};
pub use limits::ApiLimits;

/// The routes: authentication, then the body bound, then the handler.
fn router(state: ServerState) -> Router {
    Router::new()
        .route("/v1/info", get(info))
        .route("/v1/metrics", get(metrics))
        .route("/v1/events", get(events::stream))
        .route("/v1/testnet/gate", post(gate::set))
        .route("/v1/agents", get(list_agents).post(publish))
        .route("/v1/agents/{name}", get(agents::show).delete(retire))
        .route("/v1/agents/{provider}/{name}", get(agents::show_handle))
        .route("/v1/search", get(search))
        .route("/v1/manifests/{id}", get(agents::show))
        .route("/v1/shutdown", post(shutdown))
        .route("/v1/hires", get(hires::list).post(hires::create))
        .route("/v1/hires/{id}", get(hires::get_one))
        .route("/v1/hires/{id}/receipts", get(hires::receipts))
        .route("/v1/hires/{id}/answer", post(hires::answer))
        .route("/v1/hires/{id}/cancel", post(hires::cancel))
        .route("/v1/hires/{id}/accept", post(hires::accept))
        .route("/v1/hires/{id}/reject", post(hires::reject))
        .route("/v1/hires/{id}/bundle", get(hires::bundle))
        .route("/v1/hires/{id}/output", get(hires::output))
        .route("/v1/hires/{id}/workdir", get(hires::workdir))
        // Bodies arrive whole from `body::buffer`, already within `max_body`: raise axum's
        // 2 MiB default to match.
        .layer(axum::extract::DefaultBodyLimit::max(state.limits.max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.limits.clone(),
            body::buffer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .with_state(state)
}

/// Length of the API listener's accept queue (the kernel caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 1024;

/// Binds the API on `addr` (loopback only) with the default [`ApiLimits`] and serves until
/// `stop` resolves.
pub async fn serve(
    addr: SocketAddr,
    state: ApiState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_with(addr, state, ApiLimits::default(), stop).await
}

/// Binds the API on `addr` (loopback only) and serves under `limits` until `stop` resolves;
/// open connections then get [`ApiLimits::shutdown_grace`] to finish.
pub async fn serve_with(
    addr: SocketAddr,
    state: ApiState,
    limits: ApiLimits,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("the API only listens on loopback addresses (127.0.0.1 or ::1), not {addr}"),
        ));
    }
    // A deep accept queue: a burst of connections while the accept loop is busy shedding
    // waits there rather than being dropped (which costs the client a 1 s SYN retry).
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(LISTEN_BACKLOG)?;
    let bound = listener.local_addr()?;
    let limits = Arc::new(limits);
    let connections = Arc::new(server::Connections::default());
    let app = router(ServerState {
        api: state,
        limits: limits.clone(),
        connections: connections.clone(),
    });
    let task = tokio::spawn(server::run(listener, app, limits, connections, stop));
    Ok((bound, task))
}

async fn info(State(s): State<ServerState>) -> Response {
    match s.api.node.info().await {
        Ok(mut i) => {
            i.descriptors = Some(crate::fd_limit::Descriptors {
                limit: crate::fd_limit::soft_limit(),
                in_use: crate::fd_limit::in_use(),
                api_connections: s.connections.len(),
                api_max_connections: s.limits.max_connections,
            });
            Json(i).into_response()
        }
        Err(e) => node_error(e),
    }
}

async fn metrics(State(s): State<ApiState>) -> Response {
    Json(s.node.metrics.snapshot()).into_response()
}

/// One agent in `GET /v1/agents`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentSummary {
    /// Name.
    pub name: String,
    /// Current manifest id.
    pub manifest_id: String,
    /// Current seq.
    pub seq: u64,
    /// Capabilities.
    pub capabilities: Vec<String>,
    /// Price per hire, micro-units.
    pub per_hire: u64,
    /// Currency.
    pub currency: String,
    /// Expiry of the current manifest (ms).
    pub expires_at: u64,
    /// The command that runs it.
    pub command: Vec<String>,
}

async fn list_agents(State(s): State<ApiState>) -> Response {
    match s.node.agents().await {
        Ok(records) => Json(
            records
                .into_iter()
                .map(|r| AgentSummary {
                    name: r.spec.name,
                    manifest_id: r.manifest_id,
                    seq: r.seq,
                    capabilities: r.spec.capabilities,
                    per_hire: r.spec.per_hire,
                    currency: r.spec.currency,
                    expires_at: r.expires_at,
                    command: r.spec.run.command,
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => node_error(e),
    }
}

async fn publish(
    State(s): State<ApiState>,
    body: Result<Json<AgentSpec>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(spec) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid agent spec: {e}")),
    };
    match s.node.publish(spec).await {
        Ok(p) => (StatusCode::CREATED, Json(p)).into_response(),
        Err(e) => node_error(e),
    }
}

async fn retire(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    if let Err(e) = crate::agent_file::check_agent_name(&name) {
        return error::error_with_code(StatusCode::BAD_REQUEST, "invalid", e);
    }
    match s.node.retire(&name).await {
        Ok(id) => {
            Json(serde_json::json!({ "name": name, "retiring_manifest_id": id })).into_response()
        }
        Err(e) => node_error(e),
    }
}

/// Query string of `GET /v1/search`.
#[derive(Debug, Default, Deserialize)]
pub struct SearchParams {
    /// Free text.
    pub q: Option<String>,
    /// Comma-separated capability tags (all required).
    pub capabilities: Option<String>,
    /// Highest price per hire, decimal (e.g. `2.5`).
    pub max_price: Option<String>,
    /// Currency filter.
    pub currency: Option<String>,
    /// Provider node id, or a prefix of one (`souk...`).
    pub provider: Option<String>,
    /// Most results (default 20, at most 100).
    pub limit: Option<u32>,
    /// Only agents whose verified success lower bound is at least this (0 to 1).
    pub min_success: Option<f64>,
    /// Also agents of flagged (equivocating) providers.
    pub include_flagged: Option<bool>,
}

async fn search(
    State(s): State<ApiState>,
    params: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(p) = match params {
        Ok(p) => p,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid search parameters: {e}"),
            );
        }
    };
    let max_price = match p.max_price.as_deref().map(parse_amount) {
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "max_price is not a decimal amount (e.g. 2.50)",
            );
        }
        Some(Some(v)) => Some(v),
        None => None,
    };
    let caps: Vec<String> = p
        .capabilities
        .as_deref()
        .map(|c| {
            c.split(',')
                .map(|t| t.trim().to_lowercase())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if p.q.as_ref().is_some_and(|q| q.len() > 512) {
        return error(StatusCode::BAD_REQUEST, "q is longer than 512 bytes");
    }
    if caps.len() > 16 || caps.iter().any(|c| c.len() > 48) {
        return error(
            StatusCode::BAD_REQUEST,
            "at most 16 capabilities of at most 48 bytes each",
        );
    }
    if p.currency.as_ref().is_some_and(|c| c.len() > 12) {
        return error(
            StatusCode::BAD_REQUEST,
            "currency is longer than 12 characters",
        );
    }
    if let Some(prov) = &p.provider
        && (prov.is_empty() || prov.len() > MAX_PROVIDER_PREFIX)
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "provider is a node id or a prefix of one (1 to {MAX_PROVIDER_PREFIX} characters)"
            ),
        );
    }
    let req = SearchRequest {
        text: p.q.unwrap_or_default(),
        capabilities: caps,
        max_price,
        currency: p.currency.map(|c| c.to_uppercase()),
        limit: p.limit.unwrap_or(20),
        provider: p.provider,
        include_flagged: p.include_flagged.unwrap_or(false),
    };
    if p.min_success.is_some_and(|m| !(0.0..=1.0).contains(&m)) {
        return error(
            StatusCode::BAD_REQUEST,
            "min_success is a success rate between 0 and 1",
        );
    }
    match s.node.search_ranked(req, p.min_success).await {
        Ok(hits) => Json::<Vec<SearchHit>>(hits).into_response(),
        Err(e) => node_error(e),
    }
}

async fn shutdown(State(s): State<ApiState>) -> Response {
    s.shutdown.notify_one();
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "stopping": true })),
    )
        .into_response()
}
