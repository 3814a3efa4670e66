//! `POST /v1/testnet/gate`: a local testnet sets the link faults of a node started with
//! `souk node run --testnet-gate` (see [`crate::swarm::gate`]): the peers it must not reach
//! (a partition) and the delay of its links to other nodes' listen ports. A node started
//! without the gate answers 404 `not-found`. Documented in docs/api.md.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use libp2p::PeerId;
use serde::Deserialize;

use super::ApiState;
use super::error::{error_with_code, node_error};
use crate::swarm::gate::Link;

/// The body: the whole gate state (each call replaces the previous one).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GateRequest {
    /// Peer ids (base58) to block.
    #[serde(default)]
    block: Vec<String>,
    /// Remote listen port → link faults.
    #[serde(default)]
    links: HashMap<u16, Link>,
}

/// Most peers or links one call may name.
const MAX_ITEMS: usize = 4096;

pub(super) async fn set(
    State(s): State<ApiState>,
    body: Result<Json<GateRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => {
            return error_with_code(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("invalid gate request: {e}"),
            );
        }
    };
    if req.block.len() > MAX_ITEMS || req.links.len() > MAX_ITEMS {
        return error_with_code(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("at most {MAX_ITEMS} peers and {MAX_ITEMS} links"),
        );
    }
    let mut block = Vec::with_capacity(req.block.len());
    for p in &req.block {
        match p.parse::<PeerId>() {
            Ok(id) => block.push(id),
            Err(e) => {
                return error_with_code(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    format!("{p:?} is not a peer id: {e}"),
                );
            }
        }
    }
    if let Some((port, l)) = req.links.iter().find(|(_, l)| {
        !(0.0..=1.0).contains(&l.loss) || l.delay_ms > 60_000 || l.jitter_ms > 60_000
    }) {
        return error_with_code(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!(
                "link to port {port}: loss is 0 to 1, delay and jitter at most 60000 ms ({l:?})"
            ),
        );
    }
    let (peers, links) = (block.len(), req.links.len());
    match s.node.set_gate(block, req.links).await {
        Ok(()) => Json(serde_json::json!({ "blocked": peers, "links": links })).into_response(),
        Err(e) => node_error(e),
    }
}
