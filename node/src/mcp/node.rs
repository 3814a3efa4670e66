//! The MCP server's calls to the node: the blocking API client run off the async runtime,
//! errors as the text a model reads, and hire ids in any form the CLI prints.

use serde::Serialize;
use serde::de::DeserializeOwned;
use souk_protocol::Hash;

use crate::api::async_client::{AsyncApi, AsyncCallError};
use crate::api::client::{ApiClient, ClientError};
use crate::hire::{HireRecord, Role};

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

impl From<AsyncCallError> for CallError {
    fn from(e: AsyncCallError) -> Self {
        match e {
            AsyncCallError::Node(e) => CallError::Node(e),
            AsyncCallError::Interrupted => CallError::Interrupted,
        }
    }
}

/// The node's local API, shared by the session's concurrent tool calls.
#[derive(Clone)]
pub(super) struct Node {
    api: AsyncApi,
}

impl Node {
    pub(super) fn new(client: ApiClient) -> Self {
        Self {
            api: AsyncApi::new(client),
        }
    }

    /// GET a JSON resource.
    pub(super) async fn get<T: DeserializeOwned + Send + 'static>(
        &self,
        path: String,
    ) -> Result<T, CallError> {
        Ok(self.api.get(path).await?)
    }

    /// POST a JSON body.
    pub(super) async fn post<B, T>(&self, path: String, body: B) -> Result<T, CallError>
    where
        B: Serialize + Send + 'static,
        T: DeserializeOwned + Send + 'static,
    {
        Ok(self.api.post(path, body).await?)
    }

    /// GET raw bytes.
    pub(super) async fn get_bytes(&self, path: String) -> Result<Vec<u8>, CallError> {
        Ok(self.api.get_bytes(path).await?)
    }

    /// One of this node's client hires, named in any form the CLI prints: 64 hex digits, or
    /// a unique prefix of at least 6. Hires this node runs as a provider (other clients'
    /// inputs and outputs) are not reachable through MCP: a model reads provider-written
    /// text and must not be steered into another client's work.
    pub(super) async fn client_hire(&self, given: &str) -> Result<HireRecord, CallError> {
        let p = given.trim().to_ascii_lowercase();
        if let Some(id) = Hash::from_hex(&p) {
            let r: HireRecord = self.get(format!("/v1/hires/{id}")).await?;
            if r.role != Role::Client {
                return Err(CallError::Invalid(format!(
                    "hire {} is one this node runs as a provider; MCP reaches only the hires it made",
                    id.short()
                )));
            }
            return Ok(r);
        }
        if p.len() < 6 || p.len() > 64 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CallError::Invalid(format!(
                "{given:?} is not a hire id (64 hex digits, or a unique prefix of at least 6)"
            )));
        }
        let mut found: Vec<HireRecord> = self
            .client_hires()
            .await?
            .into_iter()
            .filter(|h| h.hire_id.to_hex().starts_with(&p))
            .collect();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(CallError::Invalid(format!(
                "this node made no hire {p}; list_hires shows them"
            ))),
            n => Err(CallError::Invalid(format!(
                "{p} matches {n} hires; give more digits"
            ))),
        }
    }

    /// This node's client hires, newest first.
    pub(super) async fn client_hires(&self) -> Result<Vec<HireRecord>, CallError> {
        let mut all: Vec<HireRecord> = self.get("/v1/hires".into()).await?;
        all.retain(|h| h.role == Role::Client);
        all.sort_by_key(|h| std::cmp::Reverse(h.created_at));
        Ok(all)
    }
}
