//! The MCP handler: what the server says about itself, its tools (the router of
//! [`super::tools`]) and its resources: the receipts trace of each hire of this node, at
//! `souk://hires/{hire_id}/receipts` (JSON: the hire's record and every step, as
//! `GET /v1/hires/{id}/receipts` returns them).

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    Implementation, ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};
use serde_json::Value;

use super::node::{CallError, Node};
use crate::api::client::ApiClient;

const RECEIPTS_PREFIX: &str = "souk://hires/";
const RECEIPTS_SUFFIX: &str = "/receipts";

/// The Souk MCP server of one session.
#[derive(Clone)]
pub struct SoukMcp {
    pub(super) node: Node,
    pub(super) tool_router: ToolRouter<Self>,
}

impl SoukMcp {
    /// A server that drives the node behind `client`.
    pub fn new(client: ApiClient) -> Self {
        Self {
            node: Node::new(client),
            tool_router: Self::tool_router(),
        }
    }
}

fn node_error(e: CallError) -> ErrorData {
    match e {
        CallError::Invalid(m) => ErrorData::invalid_params(m, None),
        e => ErrorData::internal_error(e.to_string(), None),
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SoukMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("souk", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Souk is a peer-to-peer exchange of AI agents. search_agents finds agents (rank by \
             verified reputation, not stars), show_agent shows one's input schema and terms, \
             hire_agent hires one and waits for its output (answer_question if it asks \
             something), accept_hire or reject_hire settles the hire, and verify_receipts \
             checks the signed, hash-chained receipts of everything the agent did. Prices are \
             advisory: no money moves.",
        )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let hires = self.node.client_hires().await.map_err(node_error)?;
        let resources = hires
            .iter()
            .take(100)
            .map(|h| {
                Resource::new(
                    format!("{RECEIPTS_PREFIX}{}{RECEIPTS_SUFFIX}", h.hire_id),
                    format!("receipts of hire {}", &h.hire_id.to_hex()[..12]),
                )
                .with_description(format!(
                    "{} ({}), {}, {} receipts",
                    h.agent,
                    h.role.as_str(),
                    h.state.as_str(),
                    h.entries
                ))
                .with_mime_type("application/json")
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(
                format!("{RECEIPTS_PREFIX}{{hire_id}}{RECEIPTS_SUFFIX}"),
                "hire receipts",
            )
            .with_description(
                "A hire's record and every receipt step (decision, tool call, network call, \
                 result), as JSON",
            )
            .with_mime_type("application/json"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri;
        let Some(hire) = uri
            .strip_prefix(RECEIPTS_PREFIX)
            .and_then(|r| r.strip_suffix(RECEIPTS_SUFFIX))
        else {
            return Err(ErrorData::resource_not_found(
                format!("no resource {uri}: try {RECEIPTS_PREFIX}<hire id>{RECEIPTS_SUFFIX}"),
                None,
            ));
        };
        let id = self
            .node
            .client_hire(hire)
            .await
            .map_err(node_error)?
            .hire_id;
        let trace: Value = self
            .node
            .get(format!("/v1/hires/{id}/receipts?from=0"))
            .await
            .map_err(|e| match e {
                CallError::Node(c) if c.code() == Some("not-found") => {
                    ErrorData::resource_not_found(c.to_string(), None)
                }
                e => node_error(e),
            })?;
        let text = serde_json::to_string_pretty(&trace)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let contents = match ResourceContents::text(text, uri) {
            ResourceContents::TextResourceContents {
                uri, text, meta, ..
            } => ResourceContents::TextResourceContents {
                uri,
                mime_type: Some("application/json".into()),
                text,
                meta,
            },
            other => other,
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}
