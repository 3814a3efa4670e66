//! `souk mcp --http ADDR`: the same MCP server over Streamable HTTP on a loopback address
//! (rmcp's server transport, sessions in memory), for MCP hosts that connect to a URL rather
//! than start a process. Every request needs `Authorization: Bearer <DATA_DIR/mcp-token>`;
//! `Host` must be loopback (no DNS rebinding) and browser `Origin`s are refused.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use super::{McpError, SoukMcp};
use crate::api::auth::constant_time_eq;
use crate::api::client::ApiClient;

/// The path MCP is served at.
pub const PATH: &str = "/mcp";

async fn bearer(State(token): State<Arc<Zeroizing<String>>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(given.trim().as_bytes(), token.as_bytes()) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or wrong bearer token (Authorization: Bearer <DATA_DIR/mcp-token>)\n",
        )
            .into_response()
    }
}

/// Serves MCP over Streamable HTTP at `http://LISTEN/mcp` until `stop`; `on_bound` gets the
/// bound address.
///
/// # Errors
///
/// When the address is not loopback or cannot be bound.
pub async fn serve_http(
    client: ApiClient,
    listen: SocketAddr,
    token: Zeroizing<String>,
    stop: CancellationToken,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), McpError> {
    if !listen.ip().is_loopback() {
        return Err(McpError::Start(format!(
            "{listen} is not a loopback address: the MCP server hires with this node's key and money, so it listens on 127.0.0.1 or ::1 only"
        )));
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| McpError::Start(format!("cannot listen on {listen}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| McpError::Start(format!("cannot listen on {listen}: {e}")))?;
    let server = SoukMcp::new(client);
    let config = StreamableHttpServerConfig::default()
        .enforce_origin_validation()
        .with_cancellation_token(stop.child_token());
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app =
        Router::new()
            .nest_service(PATH, service)
            .layer(axum::middleware::from_fn_with_state(
                Arc::new(token),
                bearer,
            ));
    on_bound(bound);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .map_err(|e| McpError::Session(e.to_string()))
}
