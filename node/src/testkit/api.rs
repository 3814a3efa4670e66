//! Serving a test node's local API on loopback and a client for it.

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::api::client::ApiClient;
use crate::api::{self, ApiState};
use crate::service::NodeHandle;

/// Serves `node`'s API on a free loopback port (with a fixed test token) until the process
/// ends; returns a client for it.
pub async fn serve_api(node: &NodeHandle) -> ApiClient {
    let token = "ef".repeat(32);
    let stop = Arc::new(tokio::sync::Notify::new());
    let state = ApiState {
        node: node.clone(),
        token: Arc::new(Zeroizing::new(token.clone())),
        shutdown: stop.clone(),
    };
    let (addr, _task) = api::serve(([127, 0, 0, 1], 0).into(), state, async move {
        stop.notified().await
    })
    .await
    .unwrap_or_else(|e| panic!("serve the API: {e}"));
    ApiClient::new(addr, Zeroizing::new(token))
}
