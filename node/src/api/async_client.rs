//! The local API from async code: the blocking [`ApiClient`] run on tokio's blocking pool, so
//! a server that drives the node (`souk mcp`, `souk a2a serve`) never waits on the network
//! inline. Shared by concurrent requests (one client, cloned by reference).

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::client::{ApiClient, ClientError};

/// A failed call through [`AsyncApi`].
#[derive(Debug, thiserror::Error)]
pub enum AsyncCallError {
    /// The node answered with an error, or could not be reached.
    #[error("{0}")]
    Node(#[from] ClientError),
    /// The call's blocking task was lost (the runtime is shutting down).
    #[error("the call to the node was interrupted")]
    Interrupted,
}

/// The node's local API, callable from async code.
#[derive(Clone)]
pub struct AsyncApi {
    client: Arc<ApiClient>,
}

impl AsyncApi {
    /// Wraps a connected client.
    pub fn new(client: ApiClient) -> Self {
        Self {
            client: Arc::new(client),
        }
    }

    async fn call<T, F>(&self, f: F) -> Result<T, AsyncCallError>
    where
        T: Send + 'static,
        F: FnOnce(&ApiClient) -> Result<T, ClientError> + Send + 'static,
    {
        let client = self.client.clone();
        tokio::task::spawn_blocking(move || f(&client))
            .await
            .map_err(|_| AsyncCallError::Interrupted)?
            .map_err(AsyncCallError::from)
    }

    /// GET a JSON resource.
    ///
    /// # Errors
    ///
    /// When the node refuses or cannot be reached.
    pub async fn get<T: DeserializeOwned + Send + 'static>(
        &self,
        path: String,
    ) -> Result<T, AsyncCallError> {
        self.call(move |c| c.get(&path)).await
    }

    /// POST a JSON body.
    ///
    /// # Errors
    ///
    /// When the node refuses or cannot be reached.
    pub async fn post<B, T>(&self, path: String, body: B) -> Result<T, AsyncCallError>
    where
        B: Serialize + Send + 'static,
        T: DeserializeOwned + Send + 'static,
    {
        self.call(move |c| c.post(&path, &body)).await
    }

    /// GET raw bytes.
    ///
    /// # Errors
    ///
    /// When the node refuses or cannot be reached.
    pub async fn get_bytes(&self, path: String) -> Result<Vec<u8>, AsyncCallError> {
        self.call(move |c| c.get_bytes(&path)).await
    }
}
