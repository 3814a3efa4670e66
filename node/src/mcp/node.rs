//! The MCP server's calls to the node: the blocking API client run off the async runtime,
//! errors as the text a model reads, and hire ids in any form the CLI prints.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use souk_protocol::Hash;

use crate::api::client::{ApiClient, ClientError};
use crate::hire::HireRecord;

/// A failed call, worded for the model (and the person) reading the tool result.
#[derive(Debug, thiserror::Error)]
pub(super) enum CallError {
    /// The node answered with an error, or could not be reached.
    #[error("{0}")]
    Node(#[from] ClientError),
    /// The arguments are wrong.
    #[error("{0}")]
    Invalid(String),
    /// The API call's task was lost (the runtime is shutting down).
    #[error("the call to the node was interrupted")]
    Interrupted,
}

/// The node's local API, shared by the session's concurrent tool calls.
#[derive(Clone)]
pub(super) struct Node {
    client: Arc<ApiClient>,
}

impl Node {
    pub(super) fn new(client: ApiClient) -> Self {
        Self {
            client: Arc::new(client),
        }
    }

    async fn call<T, F>(&self, f: F) -> Result<T, CallError>
    where
        T: Send + 'static,
        F: FnOnce(&ApiClient) -> Result<T, ClientError> + Send + 'static,
    {
        let client = self.client.clone();
        tokio::task::spawn_blocking(move || f(&client))
            .await
            .map_err(|_| CallError::Interrupted)?
            .map_err(CallError::from)
    }

    /// GET a JSON resource.
    pub(super) async fn get<T: DeserializeOwned + Send + 'static>(
        &self,
        path: String,
    ) -> Result<T, CallError> {
        self.call(move |c| c.get(&path)).await
    }

    /// POST a JSON body.
    pub(super) async fn post<B, T>(&self, path: String, body: B) -> Result<T, CallError>
    where
        B: Serialize + Send + 'static,
        T: DeserializeOwned + Send + 'static,
    {
        self.call(move |c| c.post(&path, &body)).await
    }

    /// GET raw bytes.
    pub(super) async fn get_bytes(&self, path: String) -> Result<Vec<u8>, CallError> {
        self.call(move |c| c.get_bytes(&path)).await
    }

    /// A hire id in any form the CLI prints: 64 hex digits, or a unique prefix of at least 6
    /// among this node's hires.
    pub(super) async fn hire_id(&self, given: &str) -> Result<Hash, CallError> {
        let p = given.trim().to_ascii_lowercase();
        if let Some(id) = Hash::from_hex(&p) {
            return Ok(id);
        }
        if p.len() < 6 || p.len() > 64 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CallError::Invalid(format!(
                "{given:?} is not a hire id (64 hex digits, or a unique prefix of at least 6)"
            )));
        }
        let all: Vec<HireRecord> = self.get("/v1/hires".into()).await?;
        let found: Vec<Hash> = all
            .iter()
            .map(|h| h.hire_id)
            .filter(|id| id.to_hex().starts_with(&p))
            .collect();
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(CallError::Invalid(format!("this node has no hire {p}"))),
            _ => Err(CallError::Invalid(format!(
                "{p} matches {} hires; give more digits",
                found.len()
            ))),
        }
    }
}
