//! `souk mcp`: this node as a Model Context Protocol server, so that an LLM host (Claude
//! Desktop, any MCP client) can find, hire and audit Souk agents as tools.
//!
//! The server speaks MCP over stdio, or Streamable HTTP on loopback ([`http`]) (the `rmcp`
//! SDK), and drives the running node through its
//! local API, exactly as the CLI does: it holds no state of its own, so every hire it starts
//! is an ordinary hire of the node (it survives the MCP session, `souk hire status` shows it).
//!
//! - [`http`]: the Streamable HTTP transport (bearer token, loopback only).
//! - [`server`]: the handler: server info, the tool router, resources (a hire's receipts).
//! - [`tools`]: the tools and their parameters.
//! - [`follow`]: waiting for a hire while it runs, with progress notifications.
//! - [`node`]: the calls to the node (the blocking API client off the async runtime, hire id
//!   prefixes).

mod follow;
mod http;
mod node;
mod server;
mod tools;

pub use http::{PATH as HTTP_PATH, serve_http};
pub use server::SoukMcp;

use crate::api::client::ApiClient;

/// Why the server stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The MCP session could not start (the client did not initialize).
    #[error("the MCP session could not start: {0}")]
    Start(String),
    /// The session ended with an error.
    #[error("the MCP session failed: {0}")]
    Session(String),
}

/// Serves MCP on this process's stdin and stdout until the client closes them.
///
/// # Errors
///
/// When the session cannot start or fails.
pub async fn serve_stdio(client: ApiClient) -> Result<(), McpError> {
    use rmcp::ServiceExt;
    let service = SoukMcp::new(client)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| McpError::Start(e.to_string()))?;
    service
        .waiting()
        .await
        .map_err(|e| McpError::Session(e.to_string()))?;
    Ok(())
}
